// RaftNode end to end on a MemoryNetwork, memory-level and a virtual clock:
// election, replication, leader loss, membership changes (Raft thesis §4.1),
// leadership transfer (§3.10), log compaction and snapshot install (§5),
// ReadIndex (§6.4). Deterministic: no seed to replay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import { TestCluster, cmd } from './helpers.js';

const IDS = ['a', 'b', 'c'];

async function proposeOn(c: TestCluster, id: string, k: string, v: string): Promise<number> {
  return c.run(c.members.get(id)!.node.propose(cmd(k, v)));
}

function applyLogs(c: TestCluster): Map<string, string[]> {
  return new Map([...c.members].map(([id, m]) => [id, m.sm.applyLog]));
}

test('three nodes elect one leader and replicate proposals in the same order everywhere', async () => {
  const c = new TestCluster();
  try {
    await c.startAll(IDS);
    const leader = await c.waitLeader();
    const leaders = [...c.members.values()].filter((m) => m.node.isLeader);
    assert.equal(leaders.length, 1);
    for (let i = 0; i < 20; i++) await proposeOn(c, leader.id, `k${i}`, `v${i}`);
    // proposals from a follower are forwarded to the leader
    const follower = IDS.find((id) => id !== leader.id)!;
    const idx = await proposeOn(c, follower, 'from-follower', 'x');
    assert.ok(idx > 20);
    await c.waitFor(() => [...c.members.values()].every((m) => m.sm.applyLog.length === 21), 5_000, 'replication');
    const logs = [...applyLogs(c).values()];
    assert.deepEqual(logs[1], logs[0]);
    assert.deepEqual(logs[2], logs[0]);
    assert.equal(logs[0]!.length, 21);
  } finally {
    await c.closeAll();
  }
});

test('the cluster elects a new leader after the leader stops and keeps every applied entry', async () => {
  const c = new TestCluster({ seed: 2 });
  try {
    await c.startAll(IDS);
    const first = await c.waitLeader();
    for (let i = 0; i < 5; i++) await proposeOn(c, first.id, `a${i}`, 'x');
    await c.stop(first.id);
    const second = await c.waitLeader();
    assert.notEqual(second.id, first.id);
    for (let i = 0; i < 5; i++) await proposeOn(c, second.id, `b${i}`, 'y');
    const log = second.sm.applyLog.map((l) => l.split(' ')[1]);
    for (let i = 0; i < 5; i++) assert.ok(log.includes(`a${i}=x`), `a${i} survived the leader change`);
    // the stopped member restarts from its data and catches up
    await c.start(first.id, undefined, IDS);
    await c.waitFor(() => c.members.get(first.id)!.sm.applyLog.length === 10, 5_000, 'catch-up');
    assert.deepEqual(c.members.get(first.id)!.sm.applyLog, second.sm.applyLog);
  } finally {
    await c.closeAll();
  }
});

test('a learner receives the log without voting, is promoted, and a voter is removed', async () => {
  const c = new TestCluster({ seed: 3 });
  try {
    await c.startAll(IDS);
    const leader = await c.waitLeader();
    await proposeOn(c, leader.id, 'before', '1');
    const cs = await c.run(leader.node.addLearner('d'));
    assert.deepEqual(cs.learners, ['d']);
    await c.start('d', undefined, ['a', 'b', 'c', 'd']);
    await c.waitFor(() => c.members.get('d')!.sm.applyLog.length === 1, 5_000, 'learner catch-up');
    assert.equal(c.members.get('d')!.node.status().role, 'follower');
    const promoted = await c.run(c.leader()!.node.promoteLearner('d'));
    assert.ok(promoted.voters.includes('d'));
    assert.deepEqual(promoted.learners, []);
    const victim = IDS.find((id) => id !== c.leader()!.id)!;
    const after = await c.run(c.leader()!.node.removeMember(victim));
    assert.ok(!after.voters.includes(victim));
    await c.waitFor(() => c.members.get(victim)!.node.status().removed, 5_000, 'removed member stops');
    await assert.rejects(c.members.get(victim)!.node.propose(cmd('x', 'y')), (e: unknown) => isQuorumError(e, ErrorCode.REMOVED));
    await proposeOn(c, c.leader()!.id, 'after', '2');
    await c.waitFor(() => c.members.get('d')!.sm.applyLog.length === 2, 5_000, 'new voter applies');
  } finally {
    await c.closeAll();
  }
});

test('leadership moves to the chosen voter with transferLeader', async () => {
  const c = new TestCluster({ seed: 4 });
  try {
    await c.startAll(IDS);
    const leader = await c.waitLeader();
    await proposeOn(c, leader.id, 'k', 'v');
    const target = IDS.find((id) => id !== leader.id)!;
    await c.run(leader.node.transferLeader(target));
    await c.waitFor(() => c.leader()?.id === target, 5_000, 'new leader');
    assert.equal(c.leader()!.id, target);
    await proposeOn(c, target, 'k2', 'v2');
  } finally {
    await c.closeAll();
  }
});

test('logs are compacted behind snapshots; a wiped follower stops with QUORUMKV_CORRUPT_LOG (as etcd panics), and its replacement under a new id comes back by snapshot', async () => {
  const c = new TestCluster({ seed: 5, snapshotEntries: 20, snapshotCatchUpEntries: 5 });
  try {
    await c.startAll(IDS);
    const leader = await c.waitLeader();
    const follower = IDS.find((id) => id !== leader.id)!;
    for (let i = 0; i < 60; i++) await proposeOn(c, leader.id, `k${i}`, `v${i}`);
    await c.waitFor(() => leader.node.status().snapshotIndex >= 40, 5_000, 'leader snapshot');
    // wipe the follower: stop it, throw away its database, start it empty
    await c.stop(follower);
    await c.dbs.get(follower)!.close();
    c.dbs.delete(follower);
    for (let i = 60; i < 80; i++) await proposeOn(c, leader.id, `k${i}`, `v${i}`);
    const wiped = await c.start(follower, undefined, IDS);
    const errors: Error[] = [];
    wiped.node.on('error', (err: Error) => errors.push(err));
    // the leader's heartbeat says more is committed than the member acknowledged
    // and no longer holds: a voter that lost its log must not vote (or serve) again
    await c.waitFor(() => errors.length > 0, 2_000, 'the wiped member stops');
    assert.ok(isQuorumError(errors[0], ErrorCode.CORRUPT_LOG), String(errors[0]));
    await c.stop(follower);
    // replace it: remove the old id, add a new one, start it empty
    await c.run(leader.node.removeMember(follower));
    await c.run(leader.node.addVoter('d'));
    const back = await c.start('d', undefined, [...IDS.filter((id) => id !== follower), 'd']);
    await c.waitFor(() => back.sm.kv.size === 80, 10_000, 'snapshot install');
    assert.ok(back.node.status().snapshotIndex > 0, 'the new member installed a snapshot');
    assert.deepEqual([...back.sm.kv].sort(), [...leader.sm.kv].sort());
  } finally {
    await c.closeAll();
  }
});

test('a founding voter restarted on an empty data dir does not vote for a member missing writes it acknowledged; the cluster waits for the leader, losing nothing', async () => {
  const c = new TestCluster({ seed: 7 });
  try {
    await c.startAll(IDS);
    const leader = await c.waitLeader();
    const [wipedId, laggingId] = IDS.filter((id) => id !== leader.id) as [string, string];
    await proposeOn(c, leader.id, 'first', '0');
    await c.waitFor(() => c.members.get(laggingId)!.sm.applyLog.length === 1, 2_000, 'every member has the first entry');
    // the lagging member misses the next writes, acknowledged by the leader and the other member
    c.net.isolate(laggingId);
    for (let i = 0; i < 10; i++) await proposeOn(c, leader.id, `k${i}`, `v${i}`);
    // that member loses its data and comes back empty, under its old id and options; the leader stops
    await c.stop(wipedId);
    await c.dbs.get(wipedId)!.close();
    c.dbs.delete(wipedId);
    await c.stop(leader.id);
    c.net.heal();
    await c.start(wipedId, IDS, IDS);
    // the lagging member campaigns; the empty one must not elect it (it would lose k0..k9)
    await c.clock.advanceAsync(3_000);
    assert.equal(c.leader(), undefined, `no leader without the old leader, got ${c.leader()?.id}`);
    // the old leader comes back: it is elected and every acknowledged write is still there
    await c.start(leader.id, undefined, IDS);
    const back = await c.waitLeader();
    await proposeOn(c, back.id, 'after', '1');
    for (const id of IDS) {
      await c.waitFor(() => c.members.get(id)!.sm.kv.get('after') === '1', 5_000, `${id} applies`);
      for (let i = 0; i < 10; i++) assert.equal(c.members.get(id)!.sm.kv.get(`k${i}`), `v${i}`, `${id} holds k${i}`);
    }
  } finally {
    await c.closeAll();
  }
});

test('a founding member that never started does not vote its peers back in when it bootstraps, and does when started with join', async () => {
  const c = new TestCluster({ seed: 8 });
  try {
    // c never starts; a and b form the cluster and commit writes
    await c.start('a', IDS, IDS);
    await c.start('b', IDS, IDS);
    const leader = await c.waitLeader();
    const other = leader.id === 'a' ? 'b' : 'a';
    for (let i = 0; i < 5; i++) await proposeOn(c, leader.id, `k${i}`, `v${i}`);
    await c.stop(leader.id);
    // bootstrapped, c cannot tell whether it lost its data: it refuses the longer log
    await c.start('c', IDS, IDS);
    await c.clock.advanceAsync(3_000);
    assert.equal(c.leader(), undefined, `no leader, got ${c.leader()?.id}`);
    await c.stop('c');
    await c.dbs.get('c')!.close();
    c.dbs.delete('c');
    // started with join (no bootstrap) on an empty data dir, it votes as usual
    await c.start('c', undefined, IDS);
    const back = await c.waitLeader();
    assert.equal(back.id, other);
    await proposeOn(c, back.id, 'after', '1');
    await c.waitFor(() => c.members.get('c')!.sm.kv.get('after') === '1', 5_000, 'c applies');
    for (let i = 0; i < 5; i++) assert.equal(c.members.get('c')!.sm.kv.get(`k${i}`), `v${i}`);
  } finally {
    await c.closeAll();
  }
});

test('readIndex resolves on leader and followers once the read point is applied', async () => {
  const c = new TestCluster({ seed: 6 });
  try {
    await c.startAll(IDS);
    const leader = await c.waitLeader();
    const at = await proposeOn(c, leader.id, 'r', '1');
    for (const id of IDS) {
      const m = c.members.get(id)!;
      const idx = await c.run(m.node.readIndex());
      assert.ok(idx >= at, `read index ${idx} covers the write at ${at}`);
      assert.ok(m.node.appliedIndex >= idx);
      assert.equal(m.sm.kv.get('r'), '1');
    }
  } finally {
    await c.closeAll();
  }
});

test('bad options are rejected with QUORUMKV_INVALID_CONFIG before anything starts', async () => {
  const c = new TestCluster();
  await assert.rejects(
    (async () => {
      const { RaftNode } = await import('../../src/node/index.js');
      await RaftNode.create({ id: '', storage: {} as never, transport: {} as never, stateMachine: {} as never });
    })(),
    (e: unknown) => isQuorumError(e, ErrorCode.INVALID_CONFIG),
  );
  // an id UTF-8 cannot carry (a lone surrogate): a member knows its own proposals by the id's bytes
  for (const id of ['a\uD800', '\uDC00b']) {
    await assert.rejects(
      (async () => {
        const { RaftNode } = await import('../../src/node/index.js');
        await RaftNode.create({ id, storage: {} as never, transport: {} as never, stateMachine: {} as never });
      })(),
      (e: unknown) => isQuorumError(e, ErrorCode.INVALID_CONFIG) && /lone surrogate/.test((e as Error).message),
    );
  }
  // founding peers that cannot be member ids (a lone surrogate became two
  // voters, the id and its UTF-8 rendering; an id over 255 bytes a voter
  // that can never start), duplicates, or not a list
  for (const [peers, message] of [
    [['a', 'b\uD800'], /lone surrogate/],
    // a leading BOM: msgpackr without its native reader drops it from a
    // string of 65 bytes or more, and the id would come back as another
    [['a', '\uFEFF' + 'n'.repeat(70)], /U\+FEFF/],
    [['a', 'x'.repeat(300)], /255/],
    [['a', 'b', 'a'], /unique/],
    ['a', /list/],
  ] as const) {
    await assert.rejects(
      (async () => {
        const { RaftNode } = await import('../../src/node/index.js');
        await RaftNode.create({ id: 'a', peers: peers as unknown as string[], storage: {} as never, transport: {} as never, stateMachine: {} as never });
      })(),
      (e: unknown) => isQuorumError(e, ErrorCode.INVALID_CONFIG) && message.test((e as Error).message),
      String(peers).slice(0, 20),
    );
  }
  await c.closeAll();
});

test('a member id beginning with U+FEFF is refused: a decoder that drops the BOM would make it another member\'s id', async () => {
  // '\uFEFFa' and 'a' would be two members; msgpackr without its native
  // reader (and any default TextDecoder) reads the first back as the second
  const c = new TestCluster({ seed: 5 });
  try {
    await assert.rejects(c.start('\uFEFFa', ['\uFEFFa', 'a', 'b'], ['\uFEFFa', 'a', 'b']), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_CONFIG) && /U\+FEFF/.test((e as Error).message));
    await assert.rejects(c.start('a', ['\uFEFFa', 'a', 'b'], ['\uFEFFa', 'a', 'b']), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_CONFIG) && /U\+FEFF/.test((e as Error).message));
  } finally {
    await c.closeAll();
  }
});
