// Snapshots (Raft §7): a leader sends MsgSnap to a follower whose next
// entry is compacted (Progress enters the snapshot state, reportSnapshot
// moves it back to probe); a follower restores from a snapshot newer than
// its commit and takes the ConfState from its metadata. Ported from
// etcd-io/raft raft_snap_test.go and raft_test.go (TestRestore*,
// TestProvideSnap, TestSlowNodeRestore, TestLeaderTransferAfterSnapshot).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Message, Snapshot } from '../../src/raftpb/index.js';
import { MemoryStorage } from '../../src/raft/memory-storage.js';
import { RawNode } from '../../src/raft/raw-node.js';
import { encodeConfChangeData } from '../../src/raft/conf-change-codec.js';
import type { Raft } from '../../src/raft/raft.js';
import { bytes, m, newTestRaft, newTestStorage, nextEnts, prop, readMessages, setRandomizedElectionTimeout } from './helpers/harness.js';
import { Network } from './helpers/network.js';
import { Cluster } from './helpers/cluster.js';

function snap(index: number, term: number, voters: string[], learners: string[] = []): Snapshot {
  return { data: new Uint8Array(0), metadata: { index, term, confState: { voters, learners } } };
}

const testingSnap = (): Snapshot => snap(11, 11, ['1', '2']);

/** A leader whose log starts with the testing snapshot (index 11, term 11). */
function leaderFromSnapshot(): Raft {
  const sm = newTestRaft('1', 10, 1, newTestStorage(['1']));
  assert.equal(sm.restore(testingSnap()), true);
  sm.becomeCandidate();
  sm.becomeLeader();
  return sm;
}

/** Persists and applies a node's pending snapshot (etcd's `appliedSnap`). */
function appliedSnap(r: Raft, s: MemoryStorage): void {
  const sn = r.raftLog.unstable.snapshot!;
  s.applySnapshot(sn);
  r.raftLog.stableSnapTo(sn.metadata.index);
  r.raftLog.appliedTo(sn.metadata.index);
}

test('a leader that must send a snapshot enters the snapshot state with its index (Raft §7, etcd TestSendingSnapshotSetPendingSnapshot)', () => {
  const sm = leaderFromSnapshot();
  // node 2 needs a snapshot
  const pr = sm.trk.progress.get('2')!;
  pr.next = sm.raftLog.firstIndex();
  sm.step(m({ type: 'MsgAppResp', from: '2', to: '1', index: pr.next - 1, reject: true }));
  assert.equal(pr.state, 'snapshot');
  assert.equal(pr.pendingSnapshot, 11);
  const msgs = readMessages(sm);
  assert.deepEqual(msgs.map((x) => [x.type, x.to, x.snapshot?.metadata.index]), [['MsgSnap', '2', 11]]);
});

test('nothing is replicated to a follower while its snapshot is pending (etcd TestPendingSnapshotPauseReplication)', () => {
  const sm = leaderFromSnapshot();
  sm.trk.progress.get('2')!.becomeSnapshot(11);
  sm.step(prop('1', 'somedata'));
  assert.deepEqual(readMessages(sm), []);
});

test('a failed snapshot sends the follower back to probing from its match (etcd TestSnapshotFailure)', () => {
  const sm = leaderFromSnapshot();
  const pr = sm.trk.progress.get('2')!;
  pr.next = 1;
  pr.becomeSnapshot(11);
  sm.step(m({ type: 'MsgSnapStatus', from: '2', to: '1', reject: true }));
  assert.equal(pr.state, 'probe');
  assert.equal(pr.pendingSnapshot, 0);
  assert.equal(pr.next, 1);
  assert.equal(pr.msgAppProbesPaused, true);
});

test('a finished snapshot sends the follower to probing from after the snapshot (etcd TestSnapshotSucceed)', () => {
  const sm = leaderFromSnapshot();
  const pr = sm.trk.progress.get('2')!;
  pr.next = 1;
  pr.becomeSnapshot(11);
  sm.step(m({ type: 'MsgSnapStatus', from: '2', to: '1', reject: false }));
  assert.equal(pr.state, 'probe');
  assert.equal(pr.pendingSnapshot, 0);
  assert.equal(pr.next, 12);
  assert.equal(pr.msgAppProbesPaused, true);
});

test('an acknowledgement at or beyond the snapshot ends the snapshot state and resumes replication (etcd TestSnapshotAbort)', () => {
  const sm = leaderFromSnapshot();
  const pr = sm.trk.progress.get('2')!;
  pr.next = 1;
  pr.becomeSnapshot(11);
  sm.step(m({ type: 'MsgAppResp', from: '2', to: '1', index: 11 }));
  assert.equal(pr.pendingSnapshot, 0);
  assert.equal(pr.state, 'replicate');
  // the leader sent its no-op (index 12) optimistically
  assert.equal(pr.next, 13);
  assert.equal(pr.inflights.length, 1);
});

test('a node restores log and configuration from a newer snapshot, and does not campaign before persisting it (Raft §7, etcd TestRestore)', () => {
  const s = snap(11, 11, ['1', '2', '3']);
  const sm = newTestRaft('1', 10, 1, newTestStorage(['1', '2']));
  assert.equal(sm.restore(s), true);
  assert.equal(sm.raftLog.lastIndex(), 11);
  assert.equal(sm.raftLog.termOrZero(11), 11);
  assert.equal(sm.raftLog.committed, 11);
  assert.deepEqual(sm.trk.voterIds(), ['1', '2', '3']);
  assert.equal(sm.restore(s), false, 'the same snapshot again is ignored');
  for (let i = 0; i < 2 * sm.randomizedElectionTimeout; i++) sm.tickFn();
  assert.equal(sm.state, 'follower');
});

test('a snapshot can make a node a learner, or promote a learner (etcd TestRestoreWithLearner/VoterToLearner/LearnerPromotion)', () => {
  const r = newTestRaft('3', 10, 1, newTestStorage(['1', '2', '3']));
  assert.equal(r.restore(snap(11, 11, ['1', '2'], ['3'])), true);
  assert.equal(r.isLearner, true);
  assert.deepEqual(r.trk.confState(), { voters: ['1', '2'], learners: ['3'] });
  assert.equal(r.trk.progress.get('3')!.isLearner, true);
  const l = newTestRaft('3', 10, 1, newTestStorage(['1', '2'], ['3']));
  assert.equal(l.isLearner, true);
  assert.equal(l.restore(snap(11, 11, ['1', '2', '3'])), true);
  assert.equal(l.isLearner, false);
});

test('a malformed snapshot ConfState is ignored', () => {
  const r = newTestRaft('4', 10, 1, newTestStorage(['1', '2', '3']));
  assert.equal(r.restore(snap(11, 11, ['4', '4'])), false);
  assert.equal(r.restore(snap(11, 11, ['4'], ['4'])), false);
  assert.equal(r.restore(snap(11, 11, ['4', ''])), false);
  assert.equal(r.raftLog.lastIndex(), 0);
  assert.equal(r.raftLog.committed, 0);
});

test('a snapshot taken before this node was added is restored; the node is a member once it applies its addition', () => {
  const r = newTestRaft('4', 10, 1, newTestStorage([]));
  assert.equal(r.restore(snap(11, 11, ['1', '2', '3'])), true);
  assert.equal(r.raftLog.committed, 11);
  assert.equal(r.promotable(), false);
  assert.equal(r.trk.progress.has('4'), false);
  for (let i = 0; i < 3 * r.electionTimeout; i++) r.tickFn();
  assert.equal(r.state, 'follower', 'a non-member never campaigns');
  r.applyConfChange({ type: 'AddLearnerNode', nodeId: '4' });
  assert.equal(r.isLearner, true);
});

test('a snapshot older than the commit is ignored; one matching the log only fast-forwards the commit (etcd TestRestoreIgnoreSnapshot)', () => {
  const sm = newTestRaft('1', 10, 1, newTestStorage(['1', '2']));
  sm.raftLog.append([
    { term: 1, index: 1, type: 'Normal', data: new Uint8Array(0) },
    { term: 1, index: 2, type: 'Normal', data: new Uint8Array(0) },
    { term: 1, index: 3, type: 'Normal', data: new Uint8Array(0) },
  ]);
  sm.raftLog.commitTo(1);
  assert.equal(sm.restore(snap(1, 1, ['1', '2'])), false);
  assert.equal(sm.raftLog.committed, 1);
  assert.equal(sm.restore(snap(2, 1, ['1', '2'])), false);
  assert.equal(sm.raftLog.committed, 2);
  assert.equal(sm.raftLog.unstable.snapshot, undefined);
});

test('a leader sends a snapshot to a follower that needs compacted entries (Raft §7, etcd TestProvideSnap)', () => {
  const sm = leaderFromSnapshot();
  const pr = sm.trk.progress.get('2')!;
  pr.next = sm.raftLog.firstIndex();
  sm.step(m({ type: 'MsgAppResp', from: '2', to: '1', index: pr.next - 1, reject: true }));
  const msgs = readMessages(sm);
  assert.equal(msgs.length, 1);
  assert.equal(msgs[0]!.type, 'MsgSnap');
});

test('a leader does not send a snapshot to a follower that is not recently active (etcd TestIgnoreProvidingSnap)', () => {
  const sm = leaderFromSnapshot();
  const pr = sm.trk.progress.get('2')!;
  pr.next = sm.raftLog.firstIndex() - 1;
  pr.recentActive = false;
  sm.step(prop('1', 'somedata'));
  assert.deepEqual(readMessages(sm), []);
});

test('a follower that restores from MsgSnap takes the sender as leader (etcd TestRestoreFromSnapMsg)', () => {
  const sm = newTestRaft('2', 10, 1, newTestStorage(['1', '2']));
  sm.step(m({ type: 'MsgSnap', from: '1', to: '2', term: 2, snapshot: snap(11, 11, ['1', '2']) }));
  assert.equal(sm.lead, '1');
  const msgs = readMessages(sm);
  assert.deepEqual(msgs.map((x) => [x.type, x.index]), [['MsgAppResp', 11]]);
});

test('a learner catches up through a snapshot (etcd TestLearnerReceiveSnapshot)', () => {
  const s = snap(11, 11, ['1'], ['2']);
  const store = newTestStorage(['1'], ['2']);
  const n1 = newTestRaft('1', 10, 1, store);
  const n2 = newTestRaft('2', 10, 1, newTestStorage(['1'], ['2']));
  n1.restore(s);
  appliedSnap(n1, store);
  const nt = new Network([n1, n2]);
  setRandomizedElectionTimeout(n1, n1.electionTimeout);
  for (let i = 0; i < n1.electionTimeout; i++) n1.tickFn();
  assert.equal(n1.state, 'leader');
  nt.send(m({ type: 'MsgBeat', from: '1', to: '1' }));
  assert.equal(n2.raftLog.committed, n1.raftLog.committed);
  assert.equal(n2.raftLog.lastIndex(), 12);
});

test('a node that fell behind a compaction is restored by snapshot and catches up (etcd TestSlowNodeRestore)', () => {
  const nt = new Network([null, null, null]);
  nt.send(m({ type: 'MsgHup', from: '1', to: '1' }));
  nt.isolate('3');
  for (let j = 0; j <= 100; j++) nt.send(prop('1'));
  const lead = nt.raft('1');
  const s1 = nt.storage.get('1')!;
  nextEnts(lead, s1);
  s1.createSnapshot(lead.raftLog.applied, { voters: lead.trk.voterIds().slice(), learners: [] }, new Uint8Array(0));
  s1.compact(lead.raftLog.applied);
  nt.recover();
  // heartbeats until the leader knows 3 is active
  for (let i = 0; i < 10 && !lead.trk.progress.get('3')!.recentActive; i++) nt.send(m({ type: 'MsgBeat', from: '1', to: '1' }));
  assert.equal(lead.trk.progress.get('3')!.recentActive, true);
  const sent: Message[] = [];
  nt.msgHook = (x) => {
    sent.push(x);
    return true;
  };
  // trigger a snapshot, then a commit
  nt.send(prop('1'));
  nt.send(prop('1'));
  assert.ok(sent.some((x) => x.type === 'MsgSnap' && x.to === '3'), 'a snapshot was sent');
  const follower = nt.raft('3');
  assert.equal(follower.raftLog.committed, lead.raftLog.committed);
});

test('leadership can be transferred to a node that first needs a snapshot (thesis §3.10, etcd TestLeaderTransferAfterSnapshot)', () => {
  const nt = new Network([null, null, null]);
  nt.send(m({ type: 'MsgHup', from: '1', to: '1' }));
  nt.isolate('3');
  nt.send(prop('1'));
  const lead = nt.raft('1');
  const s1 = nt.storage.get('1')!;
  nextEnts(lead, s1);
  s1.createSnapshot(lead.raftLog.applied, { voters: lead.trk.voterIds().slice(), learners: [] }, new Uint8Array(0));
  s1.compact(lead.raftLog.applied);
  nt.recover();
  assert.equal(lead.trk.progress.get('3')!.match, 1);
  let filtered: Message | undefined;
  // the snapshot must be persisted before the follower acknowledges it
  nt.msgHook = (x) => {
    if (x.type !== 'MsgAppResp' || x.from !== '3' || x.reject) return true;
    filtered = x;
    return false;
  };
  nt.send(m({ type: 'MsgTransferLeader', from: '3', to: '1' }));
  assert.equal(lead.state, 'leader');
  assert.ok(filtered !== undefined);
  const follower = nt.raft('3');
  assert.equal(follower.promotable(), false, 'no campaign with an unpersisted snapshot');
  appliedSnap(follower, nt.storage.get('3')!);
  nt.msgHook = undefined;
  nt.send(filtered);
  assert.equal(lead.state, 'follower');
  assert.equal(lead.lead, '3');
  assert.equal(lead.leadTransferee, '');
});

test('through RawNode: a new node gets a snapshot in a Ready, applies it, reports it, and catches up (Raft §7)', () => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  for (let i = 0; i < 5; i++) c.get('a').node.propose(bytes(`v${i}`));
  c.stabilize();
  // the leader snapshots its state machine at the applied index and compacts
  const la = c.get('a');
  const applied = la.node.status().applied;
  la.storage.createSnapshot(applied, la.node.status().config, bytes('state-at-' + applied));
  la.storage.compact(applied);
  // d joins as a learner
  c.add('d');
  la.node.proposeConfChange({ type: 'AddLearnerNode', nodeId: 'd' });
  c.stabilize();
  c.tickAndStabilize(2);
  const d = c.get('d');
  const snapReady = d.readies.find((rd) => rd.snapshot !== undefined);
  assert.ok(snapReady !== undefined, 'd received a snapshot in a Ready');
  assert.equal(snapReady.mustSync, true);
  assert.equal(new TextDecoder().decode(snapReady.snapshot!.data), 'state-at-' + applied);
  assert.deepEqual(snapReady.committedEntries, [], 'no committed entries with the snapshot');
  // d's acknowledgement of the snapshot already resumed replication; the
  // driver's report after the send is then a no-op
  assert.equal(la.node.status().progress!.d!.state, 'replicate');
  la.node.reportSnapshot('d', 'finish');
  assert.equal(la.node.status().progress!.d!.state, 'replicate');
  c.tickAndStabilize(3);
  const st = la.node.status().progress!.d!;
  assert.equal(st.state, 'replicate');
  assert.equal(st.match, la.node.status().hardState.commit);
  assert.equal(d.node.status().applied, la.node.status().applied);
  assert.deepEqual(d.node.status().config, { voters: ['a', 'b', 'c'], learners: ['d'] });
  // the entries after the snapshot (the conf change) were applied by d
  assert.deepEqual(d.applied.map((e) => e.type), ['ConfChange']);
  la.node.propose(bytes('after'));
  c.stabilize();
  assert.deepEqual(c.appliedData('d'), ['after']);
});

test('a failed snapshot report makes the leader retry with a new snapshot', () => {
  const c = new Cluster(['a', 'b']);
  c.elect('a');
  const la = c.get('a');
  la.node.propose(bytes('x'));
  c.stabilize();
  const applied = la.node.status().applied;
  la.storage.createSnapshot(applied, la.node.status().config, bytes('s'));
  la.storage.compact(applied);
  c.add('z');
  la.node.proposeConfChange({ type: 'AddLearnerNode', nodeId: 'z' });
  // drop the first snapshot
  let dropped = 0;
  c.filter = (x) => {
    if (x.type === 'MsgSnap' && dropped === 0) {
      dropped++;
      return false;
    }
    return true;
  };
  c.tickAndStabilize(3);
  assert.equal(dropped, 1);
  assert.equal(la.node.status().progress!.z!.state, 'snapshot');
  la.node.reportSnapshot('z', 'failure');
  assert.equal(la.node.status().progress!.z!.state, 'probe');
  c.tickAndStabilize(3);
  la.node.reportSnapshot('z', 'finish');
  c.tickAndStabilize(3);
  assert.equal(la.node.status().progress!.z!.state, 'replicate');
  assert.equal(c.get('z').node.status().applied, la.node.status().applied);
});

test('a snapshot older than the storage is refused by MemoryStorage.applySnapshot but the core never hands one out', () => {
  const s = new MemoryStorage();
  s.applySnapshot(snap(5, 2, ['1']));
  const r = newTestRaft('1', 10, 1, s);
  assert.equal(r.raftLog.committed, 5);
  assert.equal(r.restore(snap(4, 2, ['1'])), false);
  assert.equal(r.raftLog.unstable.snapshot, undefined);
});

test('a snapshot arriving while a committed conf change is being applied is not overtaken by it: the configuration ends as the snapshot says', () => {
  // Node 2 follows 1 at term 1. Entry 1, committed, adds voter 4; the
  // snapshot at 5 (taken after 4 was removed again at a later index) says
  // the voters are 1, 2, 3. The snapshot arrives between ready() (which
  // hands out entry 1 to apply) and advance(), as it does when the driver
  // steps messages while it persists a Ready.
  const storage = newTestStorage(['1', '2', '3']);
  storage.setHardState({ term: 1, vote: '', commit: 0 });
  const node = new RawNode({ id: '2', storage, electionTick: 10, heartbeatTick: 1, random: () => 0 });
  const cc = encodeConfChangeData({ type: 'AddNode', nodeId: '4' });
  node.step(m({ type: 'MsgApp', from: '1', to: '2', term: 1, index: 0, logTerm: 0, commit: 1, entries: [{ term: 1, index: 1, type: 'ConfChange', data: cc }] }));
  const rd = node.ready();
  assert.deepEqual(rd.committedEntries.map((e) => e.type), ['ConfChange']);
  const msnap = m({ type: 'MsgSnap', from: '1', to: '2', term: 1, snapshot: snap(5, 1, ['1', '2', '3']) });
  node.step(msnap);
  // the driver persists the Ready, applies entry 1 and advances
  storage.append(rd.entries);
  if (rd.hardState !== undefined) storage.setHardState(rd.hardState);
  node.applyConfChange({ type: 'AddNode', nodeId: '4' });
  node.advance();
  // the leader sends its snapshot again if the first was not restored
  node.step(msnap);
  for (let i = 0; i < 3 && node.hasReady(); i++) {
    const r2 = node.ready();
    if (r2.snapshot !== undefined) storage.applySnapshot(r2.snapshot);
    storage.append(r2.entries);
    if (r2.hardState !== undefined) storage.setHardState(r2.hardState);
    node.advance();
  }
  assert.equal(node.status().applied, 5);
  assert.deepEqual(node.status().config, { voters: ['1', '2', '3'], learners: [] });
});
