// On-demand snapshots for a state machine that is durable by itself (one
// with `sync()`, Raft thesis §5.2): periodic snapshots are records of index,
// term and membership taken after `sync()`, the state is taken from the
// state machine only when a lagging follower needs it, and a restart relies
// on the state machine's own applied index.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import { unwrapSnapshot } from '../../src/node/index.js';
import { LevelLogStorage } from '../../src/storage/index.js';
import { TestCluster, cmd } from './helpers.js';

const IDS = ['a', 'b', 'c'];

async function storedSnapshotData(c: TestCluster, id: string): Promise<{ index: number; hasState: boolean }> {
  const db = c.dbs.get(id)!;
  const storage = await LevelLogStorage.open({ db: db.sublevel<Uint8Array, Uint8Array>('raft', { keyEncoding: 'view', valueEncoding: 'view' }) as never });
  const { snapshot } = await storage.load();
  await storage.close();
  if (snapshot === undefined || snapshot.metadata.index === 0) return { index: 0, hasState: false };
  return { index: snapshot.metadata.index, hasState: unwrapSnapshot(snapshot.data).data !== undefined };
}

test('with a state machine that syncs itself, periodic snapshots keep no state and a new member gets one taken on demand', async () => {
  const c = new TestCluster({ seed: 7, snapshotEntries: 20, snapshotCatchUpEntries: 5, syncedStateMachines: true });
  try {
    await c.startAll(IDS);
    const leader = await c.waitLeader();
    const follower = IDS.find((id) => id !== leader.id)!;
    for (let i = 0; i < 60; i++) await c.run(leader.node.propose(cmd(`k${i}`, `v${i}`)));
    await c.waitFor(() => [...c.members.values()].every((m) => m.node.status().snapshotIndex >= 40), 5_000, 'snapshots everywhere');
    for (const m of c.members.values()) {
      assert.ok(m.sm.calls.sync >= 2, `${m.id} synced its state machine before each snapshot (${m.sm.calls.sync})`);
      assert.equal(m.sm.calls.snapshot, 0, `${m.id} took no state for its periodic snapshots`);
      const stored = await storedSnapshotData(c, m.id);
      assert.ok(stored.index >= 40 && !stored.hasState, `${m.id}'s stored snapshot is a record: ${JSON.stringify(stored)}`);
    }
    // replace a follower by a new member: the log it needs is compacted away
    await c.stop(follower);
    await c.run(leader.node.removeMember(follower));
    for (let i = 60; i < 80; i++) await c.run(leader.node.propose(cmd(`k${i}`, `v${i}`)));
    await c.run(leader.node.addVoter('d'));
    const ids = [...IDS.filter((id) => id !== follower), 'd'];
    const back = await c.start('d', undefined, ids);
    await c.waitFor(() => back.sm.kv.size === 80, 10_000, 'snapshot install');
    assert.ok(leader.sm.calls.snapshot >= 1, 'the leader took the state from its state machine for the new member');
    assert.ok(back.node.status().snapshotIndex > 0, 'the new member installed a snapshot');
    assert.deepEqual([...back.sm.kv].sort(), [...leader.sm.kv].sort());
    // the installed snapshot carries the state (it came from the leader)
    assert.equal((await storedSnapshotData(c, 'd')).hasState, true);
    // the leader restarts from its state machine and its log behind the record
    await c.stop(leader.id);
    const again = await c.start(leader.id, undefined, ids);
    assert.equal(again.sm.kv.size, 80);
    await c.waitLeader();
    await c.run(c.leader()!.node.propose(cmd('after', 'restart')));
    await c.waitFor(() => [...c.members.values()].every((m) => m.sm.kv.get('after') === 'restart'), 5_000, 'replication after restart');
  } finally {
    await c.closeAll();
  }
});

/** Whether the member's in-memory base snapshot carries the state (what it holds in memory for followers). */
function memoryBaseHasState(m: { node: unknown }): boolean {
  const base = (m.node as { mem: { baseSnapshot(): { metadata: { index: number }; data: Uint8Array } } }).mem.baseSnapshot();
  return base.metadata.index > 0 && unwrapSnapshot(base.data).data !== undefined;
}

test('a member that installed the snapshot of its leader keeps its state in the state machine and on disk, not in memory; as leader it takes one on demand', async () => {
  const c = new TestCluster({ seed: 11, snapshotEntries: 20, snapshotCatchUpEntries: 5, syncedStateMachines: true });
  try {
    await c.startAll(IDS);
    const leader = await c.waitLeader();
    const follower = IDS.find((id) => id !== leader.id)!;
    for (let i = 0; i < 60; i++) await c.run(leader.node.propose(cmd(`k${i}`, `v${i}`)));
    await c.stop(follower);
    await c.run(leader.node.removeMember(follower));
    await c.run(leader.node.addVoter('d'));
    const ids = [...IDS.filter((id) => id !== follower), 'd'];
    const d = await c.start('d', undefined, ids);
    await c.waitFor(() => d.sm.kv.size === 60, 10_000, 'snapshot install');
    assert.ok(d.node.status().snapshotIndex > 0, 'd installed a snapshot from its leader');
    assert.equal((await storedSnapshotData(c, 'd')).hasState, true, 'the stored snapshot carries the state');
    assert.equal(memoryBaseHasState(d), false, 'd holds the installed state in memory besides its state machine');
    // restarted, d again leaves the state to its state machine
    await c.stop('d');
    const d2 = await c.start('d', undefined, ids);
    assert.equal(d2.sm.kv.size, 60);
    assert.equal((await storedSnapshotData(c, 'd')).hasState, true);
    assert.equal(memoryBaseHasState(d2), false, 'after a restart, d holds the stored state in memory besides its state machine');
    // d leads and a new member needs a snapshot: d takes it from its state machine
    await c.waitLeader();
    await c.run(c.leader()!.node.transferLeader('d'));
    await c.waitFor(() => c.leader()?.id === 'd', 5_000, 'd leads');
    for (let i = 60; i < 70; i++) await c.run(d2.node.propose(cmd(`k${i}`, `v${i}`)));
    const before = d2.sm.calls.snapshot;
    await c.run(d2.node.addVoter('e'));
    const e = await c.start('e', undefined, [...ids, 'e']);
    await c.waitFor(() => e.sm.kv.size === 70, 10_000, 'e installs a snapshot taken on demand');
    assert.ok(e.node.status().snapshotIndex > 0, 'e installed a snapshot');
    assert.ok(d2.sm.calls.snapshot > before, 'd took the state from its state machine for e');
    assert.deepEqual([...e.sm.kv].sort(), [...d2.sm.kv].sort());
  } finally {
    await c.closeAll();
  }
});

test('a restart whose state machine lost the state a snapshot record relies on fails with QUORUMKV_CORRUPT_SNAPSHOT', async () => {
  const c = new TestCluster({ seed: 8, snapshotEntries: 10, snapshotCatchUpEntries: 2, syncedStateMachines: true });
  try {
    await c.startAll(['a']);
    const a = await c.waitLeader();
    for (let i = 0; i < 15; i++) await c.run(a.node.propose(cmd(`k${i}`, 'v')));
    await c.waitFor(() => a.node.status().snapshotIndex >= 10, 5_000, 'a snapshot');
    await c.stop('a');
    await c.dbs.get('a')!.sublevel('sm').clear();
    await assert.rejects(c.start('a', undefined, ['a']), (e: unknown) => isQuorumError(e, ErrorCode.CORRUPT_SNAPSHOT));
  } finally {
    await c.closeAll();
  }
});
