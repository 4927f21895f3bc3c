// Flow control of the replicate state: the inflight window bounded by
// maxInflightMsgs (etcd-io/raft raft_flow_control_test.go).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Raft } from '../../src/raft/raft.js';
import { m, newTestRaft, newTestStorage, prop, readMessages } from './helpers/harness.js';

function leaderWithReplicatingFollower(maxInflightMsgs = 256): Raft {
  const r = newTestRaft('1', 5, 1, newTestStorage(['1', '2']), { maxInflightMsgs });
  r.becomeCandidate();
  r.becomeLeader();
  r.trk.progress.get('2')!.becomeReplicate();
  return r;
}

test('a replicating follower gets MsgApps until the inflight window is full, then none (etcd TestMsgAppFlowControlFull)', () => {
  const r = leaderWithReplicatingFollower();
  const pr2 = r.trk.progress.get('2')!;
  for (let i = 0; i < r.trk.maxInflight; i++) {
    r.step(prop('1', 'somedata'));
    const ms = readMessages(r);
    assert.deepEqual(ms.map((x) => x.type), ['MsgApp'], `#${i}`);
  }
  assert.equal(pr2.inflights.full(), true);
  for (let i = 0; i < 10; i++) {
    r.step(prop('1', 'somedata'));
    assert.deepEqual(readMessages(r), [], `#${i}`);
  }
});

test('an acknowledgement frees the window for exactly as many messages as it acknowledges (etcd TestMsgAppFlowControlMoveForward)', () => {
  const r = leaderWithReplicatingFollower();
  const pr2 = r.trk.progress.get('2')!;
  for (let i = 0; i < r.trk.maxInflight; i++) {
    r.step(prop('1', 'somedata'));
    readMessages(r);
  }
  // 1 is the no-op, 2 is the first proposal (both in the first message)
  for (let tt = 2; tt < r.trk.maxInflight; tt++) {
    // move the window forward
    r.step(m({ type: 'MsgAppResp', from: '2', to: '1', index: tt }));
    readMessages(r);
    // fill the window again
    r.step(prop('1', 'somedata'));
    const ms = readMessages(r);
    assert.deepEqual(ms.map((x) => x.type), ['MsgApp'], `#${tt}`);
    assert.equal(pr2.inflights.full(), true, `#${tt}`);
    // stale acknowledgements free nothing
    for (let i = 0; i < tt; i++) {
      r.step(m({ type: 'MsgAppResp', from: '2', to: '1', index: i }));
      assert.equal(pr2.inflights.full(), true, `#${tt}.${i}`);
    }
  }
});

test('a heartbeat response lets an empty probe MsgApp through a full window, and nothing else (etcd TestMsgAppFlowControlRecvHeartbeat)', () => {
  const r = leaderWithReplicatingFollower();
  const pr2 = r.trk.progress.get('2')!;
  for (let i = 0; i < r.trk.maxInflight; i++) {
    r.step(prop('1', 'somedata'));
    readMessages(r);
  }
  for (let tt = 1; tt < 5; tt++) {
    for (let i = 0; i < tt; i++) {
      assert.equal(pr2.inflights.full(), true);
      // unpauses the progress, sends an empty MsgApp, and pauses it again
      r.step(m({ type: 'MsgHeartbeatResp', from: '2', to: '1' }));
      const ms = readMessages(r);
      assert.equal(ms.length, 1);
      assert.equal(ms[0]!.type, 'MsgApp');
      assert.equal(ms[0]!.entries.length, 0);
    }
    // no more appends without heartbeats
    for (let i = 0; i < 10; i++) {
      assert.equal(pr2.isPaused(), true);
      r.step(prop('1', 'somedata'));
      assert.deepEqual(readMessages(r), []);
    }
    r.step(m({ type: 'MsgHeartbeatResp', from: '2', to: '1' }));
    readMessages(r);
  }
});

test('an unreachable replicating follower goes back to probing (etcd MsgUnreachable)', () => {
  const r = leaderWithReplicatingFollower();
  r.step(prop('1', 'x'));
  readMessages(r);
  const pr2 = r.trk.progress.get('2')!;
  assert.equal(pr2.state, 'replicate');
  r.step(m({ type: 'MsgUnreachable', from: '2', to: '1' }));
  assert.equal(pr2.state, 'probe');
  assert.equal(pr2.next, pr2.match + 1);
  // a probing follower ignores the report
  r.step(m({ type: 'MsgUnreachable', from: '2', to: '1' }));
  assert.equal(pr2.state, 'probe');
});

test('a small maxInflightMsgs bounds the messages in flight', () => {
  const r = leaderWithReplicatingFollower(3);
  let sent = 0;
  for (let i = 0; i < 10; i++) {
    r.step(prop('1', 'x'));
    sent += readMessages(r).length;
  }
  assert.equal(sent, 3);
  assert.equal(r.trk.progress.get('2')!.inflights.full(), true);
});

test('promoting a learner keeps its inflight window: a full window still holds back the next MsgApp (etcd confchange copies Progress sharing its Inflights)', () => {
  const r = newTestRaft('1', 5, 1, newTestStorage(['1'], ['2']), { maxInflightMsgs: 1 });
  r.becomeCandidate();
  r.becomeLeader();
  readMessages(r);
  r.trk.progress.get('2')!.becomeReplicate();
  r.step(prop('1', 'a'));
  assert.deepEqual(readMessages(r).map((x) => [x.type, x.to, x.entries.length]), [['MsgApp', '2', 2]]);
  assert.equal(r.trk.progress.get('2')!.inflights.full(), true);
  r.step(prop('1', 'b'));
  assert.deepEqual(readMessages(r), [], 'the window of one message is full');

  r.applyConfChange({ type: 'AddNode', nodeId: '2' });
  const pr2 = r.trk.progress.get('2')!;
  assert.equal(pr2.isLearner, false);
  assert.equal(pr2.state, 'replicate');
  // Still one message in flight: the promotion sends nothing more.
  assert.equal(pr2.inflights.length, 1);
  assert.equal(pr2.inflights.full(), true);
  assert.deepEqual(readMessages(r).filter((x) => x.type === 'MsgApp' && x.entries.length > 0), []);
  // The acknowledgement of the message in flight frees the window as before.
  r.step(m({ type: 'MsgAppResp', from: '2', to: '1', term: r.term, index: 2 }));
  assert.deepEqual(readMessages(r).filter((x) => x.to === '2').map((x) => [x.type, x.index, x.entries.length]), [['MsgApp', 2, 1]]);
});
