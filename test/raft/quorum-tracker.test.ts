// Majority quorums, the inflight window and the Progress flow-control state
// machine (etcd-io/raft quorum/, tracker/inflights_test.go,
// tracker/progress_test.go).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { committedIndex, voteResult } from '../../src/raft/quorum/majority-config.js';
import { Inflights } from '../../src/raft/tracker/inflights.js';
import { Progress } from '../../src/raft/tracker/progress.js';
import { ProgressTracker } from '../../src/raft/tracker/progress-tracker.js';
import { applySimple, restoreConfState } from '../../src/raft/confchange.js';

test('the committed index is the largest index acked by a majority of voters (Raft §5.3)', () => {
  const cases: { acked: Record<string, number>; voters: string[]; want: number }[] = [
    { voters: ['1'], acked: { '1': 5 }, want: 5 },
    { voters: ['1', '2'], acked: { '1': 5, '2': 3 }, want: 3 },
    { voters: ['1', '2', '3'], acked: { '1': 5, '2': 3, '3': 4 }, want: 4 },
    { voters: ['1', '2', '3'], acked: { '1': 5 }, want: 0 },
    { voters: ['1', '2', '3'], acked: { '1': 5, '2': 5 }, want: 5 },
    { voters: ['1', '2', '3', '4'], acked: { '1': 9, '2': 8, '3': 7, '4': 1 }, want: 7 },
    { voters: ['1', '2', '3', '4', '5'], acked: { '1': 9, '2': 8, '3': 7, '4': 1, '5': 2 }, want: 7 },
    { voters: ['1', '2', '3', '4', '5'], acked: { '1': 9, '2': 9, '3': 1, '4': 1, '5': 2 }, want: 2 },
    // an empty configuration commits nothing
    { voters: [], acked: { '1': 9 }, want: 0 },
  ];
  const scratch: number[] = [];
  for (const [i, tt] of cases.entries()) {
    assert.equal(committedIndex(tt.voters, (id) => tt.acked[id], scratch), tt.want, `#${i}`);
  }
});

test('a vote is won by a majority of yes, lost by a majority of no, pending otherwise', () => {
  const v = (o: Record<string, boolean>): Map<string, boolean> => new Map(Object.entries(o));
  assert.equal(voteResult([], v({})), 'won');
  assert.equal(voteResult(['1'], v({})), 'pending');
  assert.equal(voteResult(['1'], v({ '1': true })), 'won');
  assert.equal(voteResult(['1'], v({ '1': false })), 'lost');
  assert.equal(voteResult(['1', '2', '3'], v({ '1': true })), 'pending');
  assert.equal(voteResult(['1', '2', '3'], v({ '1': true, '2': false })), 'pending');
  assert.equal(voteResult(['1', '2', '3'], v({ '1': true, '2': true })), 'won');
  assert.equal(voteResult(['1', '2', '3'], v({ '1': false, '2': false })), 'lost');
  assert.equal(voteResult(['1', '2', '3', '4'], v({ '1': true, '2': true, '3': false })), 'pending');
  assert.equal(voteResult(['1', '2', '3', '4'], v({ '1': true, '2': false, '3': false })), 'lost');
  // votes from non-voters (learners) do not count
  assert.equal(voteResult(['1', '2', '3'], v({ '1': true, '9': true, '8': true })), 'pending');
});

test('learners never count toward the commit index, votes or CheckQuorum', () => {
  const trk = new ProgressTracker(10);
  const res = restoreConfState(trk, 10, { voters: ['1', '2', '3'], learners: ['4', '5'] });
  assert.ok(typeof res !== 'string');
  trk.setConfig(res.config, res.progress);
  trk.progress.get('1')!.match = 10;
  trk.progress.get('4')!.match = 10;
  trk.progress.get('5')!.match = 10;
  assert.equal(trk.committed(), 0, 'two learners and one voter are not a quorum');
  trk.progress.get('2')!.match = 7;
  assert.equal(trk.committed(), 7);
  trk.recordVote('1', true);
  trk.recordVote('4', true);
  trk.recordVote('5', true);
  assert.equal(trk.tallyVotes().result, 'pending');
  assert.equal(trk.tallyVotes().granted, 1);
  for (const pr of trk.progress.values()) pr.recentActive = false;
  trk.progress.get('1')!.recentActive = true;
  trk.progress.get('4')!.recentActive = true;
  trk.progress.get('5')!.recentActive = true;
  assert.equal(trk.quorumActive(), false);
  trk.progress.get('3')!.recentActive = true;
  assert.equal(trk.quorumActive(), true);
});

test('the first vote of a node counts; repeated votes do not change it', () => {
  const trk = new ProgressTracker(10);
  const res = restoreConfState(trk, 0, { voters: ['1', '2', '3'], learners: [] });
  assert.ok(typeof res !== 'string');
  trk.setConfig(res.config, res.progress);
  trk.recordVote('2', false);
  trk.recordVote('2', true);
  assert.deepEqual(trk.tallyVotes(), { granted: 0, rejected: 1, result: 'pending' });
});

test('the inflight window adds in order, frees up to an index, and wraps around (etcd TestInflightsAdd/FreeTo)', () => {
  const inf = new Inflights(10);
  for (let i = 0; i < 5; i++) inf.add(i);
  assert.equal(inf.length, 5);
  assert.equal(inf.full(), false);
  for (let i = 5; i < 10; i++) inf.add(i);
  assert.equal(inf.full(), true);
  assert.throws(() => inf.add(10), /full/);
  inf.freeLE(4);
  assert.equal(inf.length, 5);
  inf.freeLE(4); // stale
  assert.equal(inf.length, 5);
  // rotate: add 10..14 into the freed slots
  for (let i = 10; i < 15; i++) inf.add(i);
  assert.equal(inf.full(), true);
  inf.freeLE(8);
  assert.equal(inf.length, 6);
  inf.freeLE(12);
  assert.equal(inf.length, 2);
  inf.freeLE(100);
  assert.equal(inf.length, 0);
  inf.add(20);
  inf.reset();
  assert.equal(inf.length, 0);
});

test('inflights freeLE below the first index frees nothing', () => {
  const inf = new Inflights(3);
  inf.add(5);
  inf.add(7);
  inf.freeLE(4);
  assert.equal(inf.length, 2);
  inf.freeLE(6);
  assert.equal(inf.length, 1);
});

test('a progress is paused in probe after a message, in snapshot always, in replicate when the window is full (etcd TestProgressIsPaused)', () => {
  const cases: { state: 'probe' | 'replicate' | 'snapshot'; paused: boolean; w: boolean }[] = [
    { state: 'probe', paused: false, w: false },
    { state: 'probe', paused: true, w: true },
    { state: 'replicate', paused: false, w: false },
    { state: 'replicate', paused: true, w: false },
    { state: 'snapshot', paused: false, w: true },
    { state: 'snapshot', paused: true, w: true },
  ];
  for (const [i, tt] of cases.entries()) {
    const p = new Progress(0, 1, 256, false);
    p.state = tt.state;
    p.msgAppProbesPaused = tt.paused;
    assert.equal(p.isPaused(), tt.w, `#${i}`);
  }
});

test('a rejection resumes a paused probe; an acknowledgement does not (etcd TestProgressResume, MsgAppProbesPaused)', () => {
  const p = new Progress(0, 2, 256, false);
  p.msgAppProbesPaused = true;
  p.maybeDecrTo(1, 1);
  assert.equal(p.msgAppProbesPaused, false);
  p.msgAppProbesPaused = true;
  assert.equal(p.maybeUpdate(2), true);
  assert.equal(p.msgAppProbesPaused, true, 'the next probe waits for a heartbeat response');
});

test('in replicate, an acknowledgement while later entries are in flight calls for no MsgApp; a heartbeat response allows one probe', () => {
  const p = new Progress(5, 6, 256, false);
  p.becomeReplicate();
  p.sentEntries(2); // entries 6 and 7 in flight
  p.sentCommit(5);
  const last = 7;
  const commit = 5;
  assert.equal(p.shouldSendMsgApp(last, commit), false, 'everything is in flight');
  assert.equal(p.maybeUpdate(6), true);
  p.inflights.freeLE(6);
  assert.equal(p.shouldSendMsgApp(last, commit), false, 'the acknowledgement of 6 needs no empty MsgApp: 7 is in flight');
  assert.equal(p.shouldSendMsgApp(8, commit), true, 'a new entry is sent');
  assert.equal(p.shouldSendMsgApp(last, 6), true, 'a commit the follower may not know is sent');
  p.msgAppProbesPaused = false; // what a heartbeat response does
  assert.equal(p.shouldSendMsgApp(last, commit), true, 'after a heartbeat response, one probe');
});

test('leaving the snapshot state probes from after the snapshot (etcd TestProgressBecomeProbe)', () => {
  const match = 1;
  const cases: { p: () => Progress; wnext: number }[] = [
    { p: () => Object.assign(new Progress(match, 5, 256, false), { state: 'replicate' as const }), wnext: 2 },
    // snapshot finish
    { p: () => Object.assign(new Progress(match, 5, 256, false), { state: 'snapshot' as const, pendingSnapshot: 10 }), wnext: 11 },
    // snapshot failure
    { p: () => Object.assign(new Progress(match, 5, 256, false), { state: 'snapshot' as const, pendingSnapshot: 0 }), wnext: 2 },
  ];
  for (const [i, tt] of cases.entries()) {
    const p = tt.p();
    p.becomeProbe();
    assert.equal(p.state, 'probe', `#${i}`);
    assert.equal(p.match, match, `#${i}`);
    assert.equal(p.next, tt.wnext, `#${i}`);
  }
});

test('replicate starts at match+1 and snapshot records its index (etcd TestProgressBecomeReplicate/Snapshot)', () => {
  const p = new Progress(1, 5, 256, false);
  p.becomeReplicate();
  assert.deepEqual([p.state, p.match, p.next], ['replicate', 1, 2]);
  const q = new Progress(1, 5, 256, false);
  q.becomeSnapshot(10);
  assert.deepEqual([q.state, q.match, q.pendingSnapshot], ['snapshot', 1, 10]);
});

test('maybeUpdate moves match and next forward only (etcd TestProgressUpdate)', () => {
  const prevM = 3;
  const prevN = 5;
  const cases: { update: number; wm: number; wn: number; wok: boolean }[] = [
    { update: prevM - 1, wm: prevM, wn: prevN, wok: false }, // do not decrease match, next
    { update: prevM, wm: prevM, wn: prevN, wok: false }, // do not decrease next
    { update: prevM + 1, wm: prevM + 1, wn: prevN, wok: true }, // increase match, do not decrease next
    { update: prevM + 2, wm: prevM + 2, wn: prevN + 1, wok: true }, // increase match, next
  ];
  for (const [i, tt] of cases.entries()) {
    const p = new Progress(prevM, prevN, 256, false);
    assert.equal(p.maybeUpdate(tt.update), tt.wok, `#${i}`);
    assert.equal(p.match, tt.wm, `#${i}`);
    assert.equal(p.next, tt.wn, `#${i}`);
  }
});

test('maybeDecrTo ignores stale rejections and backs next off to the hint (etcd TestProgressMaybeDecr)', () => {
  const cases: { state: 'probe' | 'replicate'; m: number; n: number; rejected: number; last: number; w: boolean; wn: number }[] = [
    // state replicate and rejected is not greater than match
    { state: 'replicate', m: 5, n: 10, rejected: 5, last: 5, w: false, wn: 10 },
    // state replicate and rejected is not greater than match
    { state: 'replicate', m: 5, n: 10, rejected: 4, last: 4, w: false, wn: 10 },
    // state replicate and rejected is greater than match: directly decrease to match+1
    { state: 'replicate', m: 5, n: 10, rejected: 9, last: 9, w: true, wn: 6 },
    // next-1 != rejected is always false
    { state: 'probe', m: 0, n: 0, rejected: 0, last: 0, w: false, wn: 0 },
    // next-1 != rejected is always false
    { state: 'probe', m: 0, n: 10, rejected: 5, last: 5, w: false, wn: 10 },
    // next>1 = decremented by 1
    { state: 'probe', m: 0, n: 10, rejected: 9, last: 9, w: true, wn: 9 },
    // next>1 = decremented by 1
    { state: 'probe', m: 0, n: 2, rejected: 1, last: 1, w: true, wn: 1 },
    // next<=1 = reset to 1
    { state: 'probe', m: 0, n: 1, rejected: 0, last: 0, w: true, wn: 1 },
    // decrease to min(rejected, last+1)
    { state: 'probe', m: 0, n: 10, rejected: 9, last: 2, w: true, wn: 3 },
    // rejected < 1, reset to 1
    { state: 'probe', m: 0, n: 10, rejected: 9, last: 0, w: true, wn: 1 },
  ];
  for (const [i, tt] of cases.entries()) {
    const p = new Progress(tt.m, tt.n, 256, false);
    p.state = tt.state;
    assert.equal(p.maybeDecrTo(tt.rejected, tt.last), tt.w, `#${i}`);
    assert.equal(p.match, tt.m, `#${i} match`);
    assert.equal(p.next, tt.wn, `#${i} next`);
  }
});

test('single-server changes add, promote and remove members without touching the tracker', () => {
  const trk = new ProgressTracker(10);
  const r0 = restoreConfState(trk, 5, { voters: ['1'], learners: [] });
  assert.ok(typeof r0 !== 'string');
  trk.setConfig(r0.config, r0.progress);
  const r1 = applySimple(trk, 5, { type: 'AddLearnerNode', nodeId: '2' });
  assert.ok(typeof r1 !== 'string');
  assert.deepEqual([...r1.config.learners], ['2']);
  assert.equal(trk.config.learners.size, 0, 'the tracker is not modified');
  trk.setConfig(r1.config, r1.progress);
  const learnerPr = trk.progress.get('2')!;
  learnerPr.match = 4;
  const r2 = applySimple(trk, 5, { type: 'AddNode', nodeId: '2' });
  assert.ok(typeof r2 !== 'string');
  assert.deepEqual([...r2.config.voters].sort(), ['1', '2']);
  assert.equal(r2.config.learners.size, 0);
  assert.equal(r2.progress.get('2')!.match, 4, 'a promoted learner keeps its progress');
  assert.equal(r2.progress.get('2')!.isLearner, false);
  assert.equal(learnerPr.isLearner, true, 'the old progress object is untouched');
  trk.setConfig(r2.config, r2.progress);
  assert.match(applySimple(trk, 5, { type: 'AddLearnerNode', nodeId: '2' }) as string, /cannot be demoted/);
  const r3 = applySimple(trk, 5, { type: 'RemoveNode', nodeId: '2' });
  assert.ok(typeof r3 !== 'string');
  trk.setConfig(r3.config, r3.progress);
  assert.match(applySimple(trk, 5, { type: 'RemoveNode', nodeId: '1' }) as string, /last voter/);
  const noop = applySimple(trk, 5, { type: 'RemoveNode', nodeId: '9' });
  assert.ok(typeof noop !== 'string');
  assert.deepEqual([...noop.config.voters], ['1']);
  const newPr = applySimple(trk, 7, { type: 'AddNode', nodeId: '3' });
  assert.ok(typeof newPr !== 'string');
  assert.equal(newPr.progress.get('3')!.next, 7, 'a new member is probed from the last index');
  assert.equal(newPr.progress.get('3')!.recentActive, true, 'a new member counts as recently active');
});

test('restoring a malformed ConfState is refused', () => {
  const trk = new ProgressTracker(10);
  assert.match(restoreConfState(trk, 0, { voters: ['1', '1'], learners: [] }) as string, /twice/);
  assert.match(restoreConfState(trk, 0, { voters: ['1'], learners: ['1'] }) as string, /both/);
  assert.match(restoreConfState(trk, 0, { voters: [''], learners: [] }) as string, /empty/);
  const ok = restoreConfState(trk, 0, { voters: [], learners: [] });
  assert.ok(typeof ok !== 'string', 'an empty ConfState is a node waiting to join');
});
