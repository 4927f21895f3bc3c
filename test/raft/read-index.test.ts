// ReadIndex (Raft thesis §6.4): 'safe' reads confirmed by a heartbeat
// quorum, held until the leader commits an entry of its term; 'leaseBased'
// reads (§6.4.1) answered from the leader's lease; followers forward; a
// single voter answers at once; learners never count. Ported from
// etcd-io/raft raft_test.go (TestReadOnlyOption*, TestReadOnlyForNewLeader).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from '../../src/raftpb/index.js';
import { MemoryStorage } from '../../src/raft/memory-storage.js';
import type { Raft } from '../../src/raft/raft.js';
import { RawNode } from '../../src/raft/raw-node.js';
import { bytes, m, newTestRaft, newTestStorage, prop, readMessages, setRandomizedElectionTimeout, str, type TestRaftOptions } from './helpers/harness.js';
import { Network } from './helpers/network.js';
import { Cluster } from './helpers/cluster.js';

function readIndexMsg(id: string, ctx: string): Message {
  return m({ type: 'MsgReadIndex', from: id, to: id, context: bytes(ctx) });
}

function threeNodes(opts: TestRaftOptions = {}): { nt: Network; a: Raft; b: Raft; c: Raft } {
  const a = newTestRaft('1', 10, 1, newTestStorage(['1', '2', '3']), opts);
  const b = newTestRaft('2', 10, 1, newTestStorage(['1', '2', '3']), opts);
  const c = newTestRaft('3', 10, 1, newTestStorage(['1', '2', '3']), opts);
  const nt = new Network([a, b, c]);
  setRandomizedElectionTimeout(b, b.electionTimeout + 1);
  for (let i = 0; i < b.electionTimeout; i++) b.tickFn();
  nt.send(m({ type: 'MsgHup', from: '1', to: '1' }));
  assert.equal(a.state, 'leader');
  return { nt, a, b, c };
}

function checkReads(nt: Network, rafts: Record<string, Raft>): void {
  const cases: { id: string; proposals: number; wri: number; wctx: string }[] = [
    { id: '1', proposals: 10, wri: 11, wctx: 'ctx1' },
    { id: '2', proposals: 10, wri: 21, wctx: 'ctx2' },
    { id: '3', proposals: 10, wri: 31, wctx: 'ctx3' },
    { id: '1', proposals: 10, wri: 41, wctx: 'ctx4' },
    { id: '2', proposals: 10, wri: 51, wctx: 'ctx5' },
    { id: '3', proposals: 10, wri: 61, wctx: 'ctx6' },
  ];
  for (const [i, tt] of cases.entries()) {
    const r = rafts[tt.id];
    if (r === undefined) continue;
    for (let j = 0; j < tt.proposals; j++) nt.send(prop('1'));
    nt.send(readIndexMsg(tt.id, tt.wctx));
    assert.ok(r.readStates.length > 0, `#${i}: no read state on ${tt.id}`);
    const rs = r.readStates[0]!;
    assert.equal(rs.index, tt.wri, `#${i}`);
    assert.equal(str(rs.requestCtx), tt.wctx, `#${i}`);
    r.readStates = [];
  }
}

test('safe ReadIndex answers the commit index after a heartbeat quorum, on the leader and through followers (thesis §6.4, etcd TestReadOnlyOptionSafe)', () => {
  const { nt, a, b, c } = threeNodes();
  checkReads(nt, { '1': a, '2': b, '3': c });
});

test('lease-based ReadIndex answers at once from the leader (thesis §6.4.1, etcd TestReadOnlyOptionLease)', () => {
  const { nt, a, b, c } = threeNodes({ readOnlyOption: 'leaseBased', checkQuorum: true });
  checkReads(nt, { '1': a, '2': b, '3': c });
  // no heartbeat round is needed: the leader answers without sending anything
  nt.send(prop('1'));
  a.step(readIndexMsg('1', 'lease'));
  assert.equal(a.readStates.length, 1);
  assert.deepEqual(readMessages(a), []);
});

test('a single voter answers ReadIndex at once, also for a learner (etcd TestReadOnlyWithLearner)', () => {
  const a = newTestRaft('1', 10, 1, newTestStorage(['1'], ['2']));
  const b = newTestRaft('2', 10, 1, newTestStorage(['1'], ['2']));
  const nt = new Network([a, b]);
  setRandomizedElectionTimeout(b, b.electionTimeout + 1);
  for (let i = 0; i < b.electionTimeout; i++) b.tickFn();
  nt.send(m({ type: 'MsgHup', from: '1', to: '1' }));
  assert.equal(a.state, 'leader');
  const cases: { r: Raft; id: string; wri: number; wctx: string }[] = [
    { r: a, id: '1', wri: 11, wctx: 'ctx1' },
    { r: b, id: '2', wri: 21, wctx: 'ctx2' },
    { r: a, id: '1', wri: 31, wctx: 'ctx3' },
    { r: b, id: '2', wri: 41, wctx: 'ctx4' },
  ];
  for (const [i, tt] of cases.entries()) {
    for (let j = 0; j < 10; j++) nt.send(prop('1'));
    nt.send(readIndexMsg(tt.id, tt.wctx));
    assert.equal(tt.r.readStates.length, 1, `#${i}`);
    assert.equal(tt.r.readStates[0]!.index, tt.wri, `#${i}`);
    assert.equal(str(tt.r.readStates[0]!.requestCtx), tt.wctx, `#${i}`);
    tt.r.readStates = [];
  }
});

test('a new leader holds ReadIndex requests until it commits an entry of its term, then answers them (thesis §6.4, etcd TestReadOnlyForNewLeader)', () => {
  const configs = [
    { id: '1', committed: 1, applied: 1, compact: 0 },
    { id: '2', committed: 2, applied: 2, compact: 2 },
    { id: '3', committed: 2, applied: 2, compact: 2 },
  ];
  const peers = configs.map((c) => {
    const s = newTestStorage(['1', '2', '3']);
    s.append([
      { index: 1, term: 1, type: 'Normal', data: new Uint8Array(0) },
      { index: 2, term: 1, type: 'Normal', data: new Uint8Array(0) },
    ]);
    s.setHardState({ term: 1, vote: '', commit: c.committed });
    if (c.compact !== 0) s.compact(c.compact);
    return newTestRaft(c.id, 10, 1, s, { applied: c.applied });
  });
  const nt = new Network(peers);
  // no MsgApp: the leader cannot commit an entry of its term
  nt.ignore('MsgApp');
  nt.send(m({ type: 'MsgHup', from: '1', to: '1' }));
  const sm = nt.raft('1');
  assert.equal(sm.state, 'leader');
  const windex = 4;
  nt.send(readIndexMsg('1', 'ctx'));
  assert.equal(sm.readStates.length, 0, 'held');
  assert.equal(sm.pendingReadIndexMessages.length, 1);
  nt.recover();
  // make the leader commit an entry of its term
  for (let i = 0; i < sm.heartbeatTimeout; i++) sm.tickFn();
  nt.send(prop('1'));
  assert.equal(sm.raftLog.committed, 4);
  assert.equal(sm.raftLog.termOrZero(sm.raftLog.committed), sm.term);
  // the held request was answered after the commit
  assert.equal(sm.readStates.length, 1);
  assert.equal(sm.readStates[0]!.index, windex);
  assert.equal(str(sm.readStates[0]!.requestCtx), 'ctx');
  // and a new request is answered directly
  nt.send(readIndexMsg('1', 'ctx'));
  assert.equal(sm.readStates.length, 2);
  assert.equal(sm.readStates[1]!.index, windex);
});

test('heartbeat acknowledgements of learners do not confirm a read (learners never count in ReadIndex)', () => {
  const r = newTestRaft('1', 10, 1, newTestStorage(['1', '2', '3'], ['4', '5']));
  r.becomeCandidate();
  r.becomeLeader();
  // commit the no-op with the learners' acks only: nothing commits
  r.step(m({ type: 'MsgAppResp', from: '4', to: '1', term: r.term, index: 1 }));
  r.step(m({ type: 'MsgAppResp', from: '5', to: '1', term: r.term, index: 1 }));
  assert.equal(r.raftLog.committed, 0, 'learners do not count for commit');
  r.step(m({ type: 'MsgAppResp', from: '2', to: '1', term: r.term, index: 1 }));
  assert.equal(r.raftLog.committed, 1);
  readMessages(r);
  r.step(readIndexMsg('1', 'q'));
  const hbs = readMessages(r).filter((x) => x.type === 'MsgHeartbeat');
  assert.deepEqual(hbs.map((x) => x.to).sort(), ['2', '3', '4', '5']);
  for (const h of hbs) assert.equal(str(h.context!), 'q');
  r.step(m({ type: 'MsgHeartbeatResp', from: '4', to: '1', term: r.term, context: bytes('q') }));
  r.step(m({ type: 'MsgHeartbeatResp', from: '5', to: '1', term: r.term, context: bytes('q') }));
  assert.equal(r.readStates.length, 0);
  r.step(m({ type: 'MsgHeartbeatResp', from: '3', to: '1', term: r.term, context: bytes('q') }));
  assert.equal(r.readStates.length, 1);
  assert.equal(r.readStates[0]!.index, 1);
});

test('confirming a later read confirms the earlier ones, in order; a duplicate context is merged', () => {
  const r = newTestRaft('1', 10, 1, newTestStorage(['1', '2', '3']));
  r.becomeCandidate();
  r.becomeLeader();
  r.step(m({ type: 'MsgAppResp', from: '2', to: '1', term: r.term, index: 1 }));
  readMessages(r);
  r.step(readIndexMsg('1', 'a'));
  r.step(prop('1', 'x'));
  r.step(m({ type: 'MsgAppResp', from: '2', to: '1', term: r.term, index: 2 }));
  r.step(readIndexMsg('1', 'b'));
  r.step(readIndexMsg('1', 'b'));
  assert.equal(r.readOnly.size, 2);
  readMessages(r);
  // the next heartbeat carries the newest context
  r.step(m({ type: 'MsgBeat', from: '1', to: '1' }));
  const hbs = readMessages(r).filter((x) => x.type === 'MsgHeartbeat');
  for (const h of hbs) assert.equal(str(h.context!), 'b');
  r.step(m({ type: 'MsgHeartbeatResp', from: '3', to: '1', term: r.term, context: bytes('b') }));
  assert.deepEqual(r.readStates.map((rs) => [str(rs.requestCtx), rs.index]), [
    ['a', 1],
    ['b', 2],
  ]);
  assert.equal(r.readOnly.size, 0);
  // a late acknowledgement of a confirmed read does nothing
  r.step(m({ type: 'MsgHeartbeatResp', from: '2', to: '1', term: r.term, context: bytes('a') }));
  assert.equal(r.readStates.length, 2);
});

test('a node without a known leader drops ReadIndex requests, as etcd does (callers retry)', () => {
  const f = newTestRaft('2', 10, 1, newTestStorage(['1', '2', '3']));
  f.step(readIndexMsg('2', 'x'));
  assert.deepEqual(readMessages(f), []);
  const n = new RawNode({ id: 'a', storage: new MemoryStorage() });
  n.bootstrap(['a', 'b', 'c']);
  n.ready();
  n.advance();
  n.readIndex(bytes('x'));
  assert.equal(n.hasReady(), false, 'nothing sent, nothing answered');
  // a candidate drops it too
  n.campaign();
  const rd = n.ready();
  n.advance();
  n.readIndex(bytes('y'));
  assert.deepEqual(rd.readStates, []);
  assert.equal(n.hasReady(), false);
});

test('through RawNode, reads on the leader and on followers arrive as ReadStates in a Ready (thesis §6.4)', () => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  c.get('a').node.propose(bytes('v1'));
  c.stabilize();
  c.get('a').node.readIndex(bytes('r-leader'));
  c.get('b').node.readIndex(bytes('r-follower'));
  c.stabilize();
  const la = c.get('a').readStates.map((rs) => [str(rs.requestCtx), rs.index]);
  const lb = c.get('b').readStates.map((rs) => [str(rs.requestCtx), rs.index]);
  assert.deepEqual(la, [['r-leader', 5]]);
  assert.deepEqual(lb, [['r-follower', 5]]);
});

test('a single-voter RawNode puts the ReadState in the very next Ready', () => {
  const c = new Cluster(['a']);
  c.elect('a');
  c.get('a').node.readIndex(bytes('now'));
  const rd = c.get('a').node.ready();
  assert.deepEqual(rd.readStates.map((rs) => [str(rs.requestCtx), rs.index]), [['now', 2]]);
  assert.deepEqual(rd.messages, []);
  c.get('a').node.advance();
});

test('leaseBased: a leader that sent MsgTimeoutNow no longer answers from its lease, which the transfer overrides (thesis §3.10, §6.4.1)', () => {
  const { nt, a, b } = threeNodes({ checkQuorum: true, readOnlyOption: 'leaseBased' });
  // 1 sends MsgTimeoutNow to 2 and is cut off right after: 2 wins the
  // election with 3's vote (a transfer overrides 3's lease), and commits
  nt.msgHook = (x) => x.type === 'MsgTimeoutNow' || (x.to !== '1' && x.from !== '1');
  nt.send(m({ type: 'MsgTransferLeader', from: '2', to: '1' }));
  assert.equal(b.state, 'leader');
  assert.equal(a.state, 'leader');
  nt.send(prop('2', 'written after the transfer'));
  const committed = b.raftLog.committed;
  assert.ok(committed > a.raftLog.committed);
  // a read on 1 (within its lease, clocks exact) must not miss that write
  a.step(readIndexMsg('1', 'ctx'));
  for (const rs of a.readStates) assert.ok(rs.index >= committed, `1 answered a read at ${rs.index}, below ${committed} committed by 2`);
  // once 1 hears from the others it learns the new term and steps down
  nt.msgHook = undefined;
  nt.send(...readMessages(a));
  assert.equal(a.state, 'follower');
  assert.deepEqual(a.readStates, []);
});
