// Single-server membership changes (Raft thesis §4.1): AddNode (voter or
// promotion), AddLearnerNode, RemoveNode; one pending change at a time;
// a new leader commits an entry of its term first; learners never count;
// a removed leader steps down. Ported in part from etcd-io/raft
// raft_test.go (TestStepConfig, TestAddNode, TestRemoveNode, ...), plus
// whole-cluster scenarios through RawNode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, FaultError, UsageError, isQuorumError } from '../../src/errors.js';
import type { ConfChange, Entry, Message } from '../../src/raftpb/index.js';
import { encodeConfChangeData } from '../../src/raft/conf-change-codec.js';
import type { Raft } from '../../src/raft/raft.js';
import { bytes, commitNoopEntry, m, newTestRaft, newTestStorage, nextEnts, prop, readMessages, str } from './helpers/harness.js';
import { Cluster } from './helpers/cluster.js';

function ccEntry(cc: ConfChange): Entry {
  return { term: 0, index: 0, type: 'ConfChange', data: encodeConfChangeData(cc) };
}

function ccProp(from: string, to: string, cc: ConfChange): Message {
  return m({ type: 'MsgProp', from, to, entries: [ccEntry(cc)] });
}

function voters(r: Raft): string[] {
  return r.trk.confState().voters;
}

function learners(r: Raft): string[] {
  return r.trk.confState().learners;
}

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (err) {
    return isQuorumError(err) ? err.code : `not a QuorumError: ${String(err)}`;
  }
}

/** A leader of {1, 2} that has committed and applied its no-op. */
function leaderOf12(): { r: Raft; s: ReturnType<typeof newTestStorage> } {
  const s = newTestStorage(['1', '2']);
  const r = newTestRaft('1', 10, 1, s);
  r.becomeCandidate();
  r.becomeLeader();
  commitNoopEntry(r, s);
  return { r, s };
}

test('a leader appends a conf change and records it as pending (etcd TestStepConfig)', () => {
  const { r } = leaderOf12();
  const index = r.raftLog.lastIndex();
  assert.equal(r.step(ccProp('1', '1', { type: 'AddNode', nodeId: '3' })), undefined);
  assert.equal(r.raftLog.lastIndex(), index + 1);
  assert.equal(r.pendingConfIndex, index + 1);
});

test('a second conf change while one is pending is refused locally and blanked when forwarded (thesis §4.1, etcd TestStepIgnoreConfig)', () => {
  const { r } = leaderOf12();
  r.step(ccProp('1', '1', { type: 'AddNode', nodeId: '3' }));
  const index = r.raftLog.lastIndex();
  const pendingConfIndex = r.pendingConfIndex;
  // local: refused to the caller, nothing appended
  const refusal = r.step(ccProp('1', '1', { type: 'AddNode', nodeId: '4' }));
  assert.equal(refusal?.code, ErrorCode.CONF_CHANGE_PENDING);
  assert.equal(r.raftLog.lastIndex(), index);
  // forwarded by a follower: becomes an empty entry, as in etcd
  assert.equal(r.step(ccProp('2', '1', { type: 'AddNode', nodeId: '4' })), undefined);
  const ents = r.raftLog.entries(index + 1, Infinity);
  assert.deepEqual(ents.map((e) => [e.index, e.term, e.type, e.data.length]), [[index + 1, 1, 'Normal', 0]]);
  assert.equal(r.pendingConfIndex, pendingConfIndex);
});

test('a new leader treats everything in its log as possibly pending (etcd TestNewLeaderPendingConfig)', () => {
  for (const [addEntry, wpending] of [
    [false, 0],
    [true, 1],
  ] as const) {
    const r = newTestRaft('1', 10, 1, newTestStorage(['1', '2']));
    if (addEntry) r.raftLog.append([{ term: 0, index: 1, type: 'Normal', data: new Uint8Array(0) }]);
    r.becomeCandidate();
    r.becomeLeader();
    assert.equal(r.pendingConfIndex, wpending);
  }
});

test('a new leader refuses conf changes until it has committed an entry of its term (thesis §4.1 safeguard)', () => {
  // every entry of the old term is committed and applied: only the new rule stops the change
  const s = newTestStorage(['1', '2', '3']);
  s.append([{ term: 1, index: 1, type: 'Normal', data: new Uint8Array(0) }]);
  s.setHardState({ term: 1, vote: '', commit: 1 });
  const r = newTestRaft('1', 10, 1, s, { applied: 1 });
  r.becomeCandidate();
  r.becomeLeader();
  assert.equal(r.pendingConfIndex, 1);
  assert.equal(r.raftLog.applied, 1);
  const refusal = r.step(ccProp('1', '1', { type: 'AddNode', nodeId: '4' }));
  assert.equal(refusal?.code, ErrorCode.CONF_CHANGE_PENDING);
  assert.match(refusal!.message, /not yet committed an entry in term 2/);
  // commit the no-op (index 2) and apply it: now the change is accepted
  readMessages(r);
  r.step(m({ type: 'MsgAppResp', from: '2', to: '1', term: r.term, index: 2 }));
  assert.equal(r.raftLog.committed, 2);
  nextEnts(r, s);
  assert.equal(r.step(ccProp('1', '1', { type: 'AddNode', nodeId: '4' })), undefined);
  assert.equal(r.pendingConfIndex, 3);
});

test('conf changes invalid for the current configuration are refused at proposal time', () => {
  const { r } = leaderOf12();
  const pendingBefore = r.pendingConfIndex;
  const lastBefore = r.raftLog.lastIndex();
  assert.equal(r.step(ccProp('1', '1', { type: 'AddLearnerNode', nodeId: '2' }))?.code, ErrorCode.INVALID_ARGUMENT, 'demoting a voter');
  const single = newTestRaft('1', 10, 1, newTestStorage(['1']));
  single.becomeCandidate();
  single.becomeLeader();
  nextEnts(single, single.raftLog.storage as ReturnType<typeof newTestStorage>);
  assert.equal(single.step(ccProp('1', '1', { type: 'RemoveNode', nodeId: '1' }))?.code, ErrorCode.INVALID_ARGUMENT, 'removing the last voter');
  const bad = m({ type: 'MsgProp', from: '1', to: '1', entries: [{ term: 0, index: 0, type: 'ConfChange', data: new Uint8Array([1, 2, 3]) }] });
  assert.equal(r.step(bad)?.code, ErrorCode.INVALID_ARGUMENT, 'malformed data');
  assert.equal(r.pendingConfIndex, pendingBefore, 'nothing pending');
  assert.equal(r.raftLog.lastIndex(), lastBefore, 'nothing appended');
});

test('AddNode adds a voter, AddLearnerNode a learner, AddNode promotes a learner (thesis §4.1, §4.2.1, etcd TestAddNode/TestAddLearner)', () => {
  const r = newTestRaft('1', 10, 1, newTestStorage(['1']));
  r.applyConfChange({ type: 'AddNode', nodeId: '2' });
  assert.deepEqual(voters(r), ['1', '2']);
  r.applyConfChange({ type: 'AddLearnerNode', nodeId: '3' });
  assert.deepEqual(learners(r), ['3']);
  assert.equal(r.trk.progress.get('3')!.isLearner, true);
  r.applyConfChange({ type: 'AddNode', nodeId: '3' });
  assert.deepEqual(voters(r), ['1', '2', '3']);
  assert.deepEqual(learners(r), []);
  assert.equal(r.trk.progress.get('3')!.isLearner, false);
  // idempotent
  r.applyConfChange({ type: 'AddNode', nodeId: '3' });
  assert.deepEqual(voters(r), ['1', '2', '3']);
});

test('a node learns it is a learner, and that it was promoted, from applying conf changes', () => {
  const r = newTestRaft('2', 10, 1, newTestStorage(['1']));
  assert.equal(r.promotable(), false);
  r.applyConfChange({ type: 'AddLearnerNode', nodeId: '2' });
  assert.equal(r.isLearner, true);
  assert.equal(r.promotable(), false);
  r.applyConfChange({ type: 'AddNode', nodeId: '2' });
  assert.equal(r.isLearner, false);
  assert.equal(r.promotable(), true);
});

test('a node added to the configuration counts as active for CheckQuorum for one election timeout (etcd TestAddNodeCheckQuorum)', () => {
  const r = newTestRaft('1', 10, 1, newTestStorage(['1']), { checkQuorum: true });
  r.becomeCandidate();
  r.becomeLeader();
  for (let i = 0; i < r.electionTimeout - 1; i++) r.tickFn();
  r.applyConfChange({ type: 'AddNode', nodeId: '2' });
  // this tick reaches electionTimeout: a quorum check
  r.tickFn();
  assert.equal(r.state, 'leader');
  // after another election timeout without hearing from 2, the leader steps down
  for (let i = 0; i < r.electionTimeout; i++) r.tickFn();
  assert.equal(r.state, 'follower');
});

test('RemoveNode removes voters and learners; removing the last voter is ignored (etcd TestRemoveNode/TestRemoveLearner)', () => {
  const r = newTestRaft('1', 10, 1, newTestStorage(['1', '2'], ['3']));
  r.applyConfChange({ type: 'RemoveNode', nodeId: '2' });
  assert.deepEqual(voters(r), ['1']);
  r.applyConfChange({ type: 'RemoveNode', nodeId: '3' });
  assert.deepEqual(learners(r), []);
  assert.equal(r.trk.progress.has('3'), false);
  const cs = r.applyConfChange({ type: 'RemoveNode', nodeId: '1' });
  assert.deepEqual(cs, { voters: ['1'], learners: [] });
  assert.deepEqual(voters(r), ['1']);
  // removing a non-member changes nothing
  assert.deepEqual(r.applyConfChange({ type: 'RemoveNode', nodeId: '9' }), { voters: ['1'], learners: [] });
});

test("UpdateNode changes no membership and no progress, for a member or not (etcd's raft applies ConfChangeUpdateNode as a no-op)", () => {
  const r = newTestRaft('1', 10, 1, newTestStorage(['1', '2'], ['3']));
  const progress = new Map(r.trk.progress);
  assert.deepEqual(r.applyConfChange({ type: 'UpdateNode', nodeId: '2' }), { voters: ['1', '2'], learners: ['3'] });
  assert.deepEqual(r.applyConfChange({ type: 'UpdateNode', nodeId: '3' }), { voters: ['1', '2'], learners: ['3'] });
  assert.deepEqual(r.applyConfChange({ type: 'UpdateNode', nodeId: '9' }), { voters: ['1', '2'], learners: ['3'] });
  for (const [id, pr] of progress) assert.equal(r.trk.progress.get(id), pr, `progress of ${id} kept`);
});

test('demoting a voter with AddLearnerNode is ignored when applied', () => {
  const r = newTestRaft('1', 10, 1, newTestStorage(['1', '2']));
  assert.deepEqual(r.applyConfChange({ type: 'AddLearnerNode', nodeId: '2' }), { voters: ['1', '2'], learners: [] });
});

test('only voters of the configuration can campaign (etcd TestPromotable)', () => {
  const cases: [string[], boolean][] = [
    [['1'], true],
    [['1', '2', '3'], true],
    [[], false],
    [['2', '3'], false],
  ];
  for (const [peers, wp] of cases) assert.equal(newTestRaft('1', 5, 1, newTestStorage(peers)).promotable(), wp, peers.join(','));
});

test('applying a removal lowers the quorum, so pending entries commit (etcd TestCommitAfterRemoveNode)', () => {
  const { r, s } = leaderOf12();
  r.step(ccProp('1', '1', { type: 'RemoveNode', nodeId: '2' }));
  // nothing is committed yet
  assert.deepEqual(nextEnts(r, s), []);
  const ccIndex = r.raftLog.lastIndex();
  // while the config change is pending, make another proposal
  r.step(prop('1', 'hello'));
  // node 2 acknowledges the conf change, committing it
  r.step(m({ type: 'MsgAppResp', from: '2', to: '1', term: r.term, index: ccIndex }));
  let ents = nextEnts(r, s);
  assert.deepEqual(ents.map((e) => e.type), ['ConfChange']);
  // apply it: the quorum is now just 1, so the pending command commits
  r.applyConfChange({ type: 'RemoveNode', nodeId: '2' });
  ents = nextEnts(r, s);
  assert.deepEqual(ents.map((e) => [e.type, str(e.data)]), [['Normal', 'hello']]);
});

test('a leader that applies its own removal steps down and stops taking proposals', () => {
  const { r } = leaderOf12();
  r.applyConfChange({ type: 'RemoveNode', nodeId: '1' });
  assert.equal(r.state, 'follower');
  assert.equal(r.lead, '');
  assert.equal(r.promotable(), false);
  assert.equal(r.step(prop('1', 'x'))?.code, ErrorCode.PROPOSAL_DROPPED);
});

test('through RawNode: a node joins as a learner from an empty storage, is promoted, and counts in the quorum', () => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  c.get('a').node.propose(bytes('before'));
  c.stabilize();
  // d starts empty, without bootstrap: it learns the configuration from the log
  c.add('d');
  c.get('a').node.proposeConfChange({ type: 'AddLearnerNode', nodeId: 'd', context: bytes('addr-d') });
  c.tickAndStabilize(3);
  const st = c.get('a').node.status();
  assert.deepEqual(st.config, { voters: ['a', 'b', 'c'], learners: ['d'] });
  assert.equal(st.progress!.d!.isLearner, true);
  assert.deepEqual(c.get('d').confState, { voters: ['a', 'b', 'c'], learners: ['d'] });
  assert.deepEqual(c.appliedData('d'), ['before'], 'the learner replicated the log from the start');
  // the learner's conf change entry carries its context
  const learnerEntry = c.get('d').applied.filter((e) => e.type === 'ConfChange').pop()!;
  assert.ok(learnerEntry.data.length > 0);
  // promote d
  c.get('a').node.proposeConfChange({ type: 'AddNode', nodeId: 'd' });
  c.stabilize();
  assert.deepEqual(c.get('a').node.status().config, { voters: ['a', 'b', 'c', 'd'], learners: [] });
  // with b and c down, a and d are not a quorum of four
  c.filter = (x) => x.to !== 'b' && x.to !== 'c' && x.from !== 'b' && x.from !== 'c';
  const commitBefore = c.get('a').node.status().hardState.commit;
  c.get('a').node.propose(bytes('needs-3-of-4'));
  c.stabilize();
  assert.equal(c.get('a').node.status().hardState.commit, commitBefore);
  c.filter = () => true;
  c.tickAndStabilize(2);
  assert.deepEqual(c.appliedData('b'), ['before', 'needs-3-of-4']);
});

test('through RawNode: a learner never counts for commit', () => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  c.add('d');
  c.get('a').node.proposeConfChange({ type: 'AddLearnerNode', nodeId: 'd' });
  c.tickAndStabilize(3);
  // only the learner answers: nothing commits
  c.filter = (x) => x.to !== 'b' && x.to !== 'c' && x.from !== 'b' && x.from !== 'c';
  const before = c.get('a').node.status().hardState.commit;
  c.get('a').node.propose(bytes('x'));
  c.tickAndStabilize(3);
  assert.equal(c.get('a').node.status().hardState.commit, before);
  assert.equal(c.get('a').node.status().progress!.d!.match, before + 1, 'the learner has the entry');
});

test('through RawNode: removing the leader makes it step down once applied, and the rest elect a new leader', () => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  c.get('a').node.proposeConfChange({ type: 'RemoveNode', nodeId: 'a' });
  c.stabilize();
  assert.equal(c.get('a').node.status().softState.raftState, 'follower');
  assert.deepEqual(c.get('b').node.status().config, { voters: ['b', 'c'], learners: [] });
  // a no longer campaigns; b or c takes over after an election timeout
  c.tickAndStabilize(30);
  const leaders = c.leaders();
  assert.equal(leaders.length, 1);
  assert.notEqual(leaders[0], 'a');
  const lead = leaders[0]!;
  c.get(lead).node.propose(bytes('after'));
  c.stabilize();
  const other = lead === 'b' ? 'c' : 'b';
  assert.deepEqual(c.appliedData(other), ['after']);
});

test('through RawNode: proposeConfChange throws CONF_CHANGE_PENDING until the previous change is applied', () => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  const n = c.get('a').node;
  n.proposeConfChange({ type: 'AddLearnerNode', nodeId: 'd' });
  const err = (() => {
    try {
      n.proposeConfChange({ type: 'AddLearnerNode', nodeId: 'e' });
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  assert.ok(err instanceof FaultError);
  assert.equal(err.code, ErrorCode.CONF_CHANGE_PENDING);
  c.stabilize();
  n.proposeConfChange({ type: 'AddLearnerNode', nodeId: 'e' });
  c.stabilize();
  assert.deepEqual(n.status().config.learners, ['d', 'e']);
});

test('through RawNode: an invalid conf change is a UsageError that changes nothing', () => {
  const c = new Cluster(['a', 'b']);
  c.elect('a');
  const n = c.get('a').node;
  const before = JSON.stringify(n.status());
  const err = (() => {
    try {
      n.proposeConfChange({ type: 'AddLearnerNode', nodeId: 'b' });
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  assert.ok(err instanceof UsageError);
  assert.equal(err.code, ErrorCode.INVALID_ARGUMENT);
  assert.equal(JSON.stringify(n.status()), before);
  assert.equal(n.hasReady(), false);
  assert.equal(codeOf(() => n.proposeConfChange({ type: 'RemoveNode', nodeId: 'b' })), undefined, 'a valid change still goes through');
});

test('a conf change forwarded by a follower is applied through the leader', () => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  c.stabilize();
  c.get('b').node.proposeConfChange({ type: 'AddLearnerNode', nodeId: 'z' });
  c.stabilize();
  for (const id of ['a', 'b', 'c']) assert.deepEqual(c.get(id).confState?.learners, ['z'], id);
});

test('a conf change dropped for the uncommitted-size cap is not left pending: the next one is accepted once the log is applied', () => {
  const s = newTestStorage(['1', '2']);
  const r = newTestRaft('1', 10, 1, s, { maxUncommittedEntriesSize: 8 });
  r.becomeCandidate();
  r.becomeLeader();
  commitNoopEntry(r, s);
  // an uncommitted entry fills the cap: the conf change behind it is dropped
  assert.equal(r.step(prop('1', '123456789')), undefined);
  const index = r.raftLog.lastIndex();
  assert.equal(r.step(ccProp('1', '1', { type: 'AddLearnerNode', nodeId: '3' }))?.code, ErrorCode.PROPOSAL_DROPPED);
  assert.equal(r.raftLog.lastIndex(), index);
  // the entry commits and is applied; nothing else is proposed
  for (const msg of readMessages(r)) {
    if (msg.type === 'MsgApp') r.step(m({ type: 'MsgAppResp', from: msg.to, to: '1', term: r.term, index: msg.index + msg.entries.length }));
  }
  readMessages(r);
  nextEnts(r, s);
  assert.equal(r.raftLog.applied, index);
  r.reduceUncommittedSize(9);
  assert.equal(r.step(ccProp('1', '1', { type: 'AddLearnerNode', nodeId: '3' })), undefined);
  assert.equal(r.pendingConfIndex, index + 1);
});
