// Leadership transfer (Raft thesis §3.10): the leader catches the target up,
// sends MsgTimeoutNow, drops proposals meanwhile and gives up after an
// election timeout. Ported from etcd-io/raft raft_test.go
// (TestLeaderTransfer*).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode } from '../../src/errors.js';
import type { Message } from '../../src/raftpb/index.js';
import type { Raft } from '../../src/raft/raft.js';
import type { StateRole } from '../../src/raft/types.js';
import { bytes, m, newTestRaft, newTestStorage, prop, readMessages, setRandomizedElectionTimeout, str } from './helpers/harness.js';
import { Network } from './helpers/network.js';
import { Cluster } from './helpers/cluster.js';

function transfer(to: string, leader: string): Message {
  // etcd's convention: the request is "from" the transferee
  return m({ type: 'MsgTransferLeader', from: to, to: leader });
}

function checkLeaderTransferState(r: Raft, state: StateRole, lead: string): void {
  assert.equal(r.state, state, 'state');
  assert.equal(r.lead, lead, 'lead');
  assert.equal(r.leadTransferee, '', 'no transfer in progress');
}

function elected(opts = {}): { nt: Network; lead: Raft } {
  const nt = new Network([null, null, null], opts);
  nt.send(m({ type: 'MsgHup', from: '1', to: '1' }));
  return { nt, lead: nt.raft('1') };
}

test('leadership moves to an up-to-date node and back (thesis §3.10, etcd TestLeaderTransferToUpToDateNode)', () => {
  const { nt, lead } = elected();
  assert.equal(lead.lead, '1');
  nt.send(transfer('2', '1'));
  checkLeaderTransferState(lead, 'follower', '2');
  // after some log replication, transfer back to 1
  nt.send(prop('1'));
  nt.send(transfer('1', '2'));
  checkLeaderTransferState(lead, 'leader', '1');
});

test('a transfer request sent to a follower is forwarded to the leader (etcd TestLeaderTransferToUpToDateNodeFromFollower)', () => {
  const { nt, lead } = elected();
  nt.send(transfer('2', '2'));
  checkLeaderTransferState(lead, 'follower', '2');
  nt.send(prop('1'));
  nt.send(transfer('1', '1'));
  checkLeaderTransferState(lead, 'leader', '1');
});

test('a transfer overrides the CheckQuorum lease of the other followers (thesis §3.10, etcd TestLeaderTransferWithCheckQuorum)', () => {
  const nt = new Network([null, null, null], { checkQuorum: true });
  for (const id of ['1', '2', '3']) {
    const r = nt.raft(id);
    setRandomizedElectionTimeout(r, r.electionTimeout + Number(id));
  }
  // letting the peer election timeouts elapse so that the first election succeeds
  const f = nt.raft('2');
  for (let i = 0; i < f.electionTimeout; i++) f.tickFn();
  nt.send(m({ type: 'MsgHup', from: '1', to: '1' }));
  const lead = nt.raft('1');
  assert.equal(lead.lead, '1');
  nt.send(transfer('2', '1'));
  checkLeaderTransferState(lead, 'follower', '2');
  nt.send(prop('1'));
  nt.send(transfer('1', '2'));
  checkLeaderTransferState(lead, 'leader', '1');
});

test('a lagging target is caught up first, then gets MsgTimeoutNow (thesis §3.10, etcd TestLeaderTransferToSlowFollower)', () => {
  const { nt, lead } = elected();
  nt.isolate('3');
  nt.send(prop('1'));
  nt.recover();
  assert.equal(lead.trk.progress.get('3')!.match, 1);
  nt.send(transfer('3', '1'));
  checkLeaderTransferState(lead, 'follower', '3');
  assert.equal(nt.raft('3').raftLog.lastIndex(), 3, 'the new leader has the old entries and its no-op');
});

test('the target campaigns without a pre-vote round (thesis §3.10)', () => {
  const { nt, lead } = elected({ preVote: true });
  const target = nt.raft('2');
  lead.step(transfer('2', '1'));
  const timeoutNow = readMessages(lead);
  assert.deepEqual(timeoutNow.map((x) => [x.type, x.to]), [['MsgTimeoutNow', '2']]);
  target.step(timeoutNow[0]!);
  assert.equal(target.state, 'candidate');
  const votes = readMessages(target);
  assert.deepEqual(votes.map((x) => x.type), ['MsgVote', 'MsgVote']);
  assert.equal(str(votes[0]!.context!), 'CampaignTransfer');
  void nt;
});

test('transferring to self or to a non-member does nothing (etcd TestLeaderTransferToSelf/ToNonExistingNode)', () => {
  const { nt, lead } = elected();
  nt.send(transfer('1', '1'));
  checkLeaderTransferState(lead, 'leader', '1');
  nt.send(transfer('4', '1'));
  checkLeaderTransferState(lead, 'leader', '1');
});

test('a transfer to a learner is ignored', () => {
  const s = newTestStorage(['1', '2'], ['3']);
  const r = newTestRaft('1', 10, 1, s);
  r.becomeCandidate();
  r.becomeLeader();
  r.step(transfer('3', '1'));
  assert.equal(r.leadTransferee, '');
  assert.deepEqual(readMessages(r).filter((x) => x.type === 'MsgTimeoutNow'), []);
});

test('an unfinished transfer is abandoned after an election timeout (thesis §3.10, etcd TestLeaderTransferTimeout)', () => {
  const { nt, lead } = elected();
  nt.isolate('3');
  nt.send(transfer('3', '1'));
  assert.equal(lead.leadTransferee, '3');
  for (let i = 0; i < lead.heartbeatTimeout; i++) lead.tickFn();
  assert.equal(lead.leadTransferee, '3');
  for (let i = 0; i < lead.electionTimeout - lead.heartbeatTimeout; i++) lead.tickFn();
  checkLeaderTransferState(lead, 'leader', '1');
});

test('proposals are dropped while a transfer is in progress (thesis §3.10, etcd TestLeaderTransferIgnoreProposal)', () => {
  const { nt, lead } = elected();
  nt.isolate('3');
  nt.send(transfer('3', '1'));
  assert.equal(lead.leadTransferee, '3');
  const refusal = lead.step(prop('1'));
  assert.equal(refusal?.code, ErrorCode.PROPOSAL_DROPPED);
  assert.equal(lead.trk.progress.get('1')!.match, 1);
});

test('a vote with a higher term during a transfer makes the leader step down (etcd TestLeaderTransferReceiveHigherTermVote)', () => {
  const { nt, lead } = elected();
  nt.isolate('3');
  nt.send(transfer('3', '1'));
  assert.equal(lead.leadTransferee, '3');
  nt.send(m({ type: 'MsgHup', from: '2', to: '2', index: 1, term: 2 }));
  checkLeaderTransferState(lead, 'follower', '2');
});

test('removing the transfer target aborts the transfer (etcd TestLeaderTransferRemoveNode)', () => {
  const { nt, lead } = elected();
  nt.ignore('MsgTimeoutNow');
  // the leadTransferee is removed while the transfer is in progress
  nt.send(transfer('3', '1'));
  assert.equal(lead.leadTransferee, '3');
  lead.applyConfChange({ type: 'RemoveNode', nodeId: '3' });
  checkLeaderTransferState(lead, 'leader', '1');
});

test('a transfer back to the leader itself cancels the transfer (etcd TestLeaderTransferBack)', () => {
  const { nt, lead } = elected();
  nt.isolate('3');
  nt.send(transfer('3', '1'));
  assert.equal(lead.leadTransferee, '3');
  nt.send(transfer('1', '1'));
  checkLeaderTransferState(lead, 'leader', '1');
});

test('a second transfer to another node replaces the first (etcd TestLeaderTransferSecondTransferToAnotherNode)', () => {
  const { nt, lead } = elected();
  nt.isolate('3');
  nt.send(transfer('3', '1'));
  assert.equal(lead.leadTransferee, '3');
  nt.send(transfer('2', '1'));
  checkLeaderTransferState(lead, 'follower', '2');
});

test('a second transfer to the same node does not extend the timeout (etcd TestLeaderTransferSecondTransferToSameNode)', () => {
  const { nt, lead } = elected();
  nt.isolate('3');
  nt.send(transfer('3', '1'));
  assert.equal(lead.leadTransferee, '3');
  for (let i = 0; i < lead.heartbeatTimeout; i++) lead.tickFn();
  nt.send(transfer('3', '1'));
  for (let i = 0; i < lead.electionTimeout - lead.heartbeatTimeout; i++) lead.tickFn();
  checkLeaderTransferState(lead, 'leader', '1');
});

test('a node outside the configuration ignores MsgTimeoutNow and cannot win (etcd TestTransferNonMember)', () => {
  const r = newTestRaft('1', 5, 1, newTestStorage(['2', '3', '4']));
  r.step(m({ type: 'MsgTimeoutNow', from: '2', to: '1' }));
  r.step(m({ type: 'MsgVoteResp', from: '2', to: '1' }));
  r.step(m({ type: 'MsgVoteResp', from: '3', to: '1' }));
  assert.equal(r.state, 'follower');
});

test('through RawNode, transferLeader on a follower moves leadership to the target', () => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  c.get('a').node.propose(bytes('x'));
  c.stabilize();
  c.get('b').node.transferLeader('c');
  c.stabilize();
  assert.deepEqual(c.leaders(), ['c']);
  assert.equal(c.get('c').node.status().softState.lead, 'c');
  assert.equal(c.get('a').node.status().softState.lead, 'c');
});
