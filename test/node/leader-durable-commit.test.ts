// A leader sends its MsgApps while it writes the same entries (Raft thesis
// §10.2.1), but never a commit index that covers entries it has not made
// durable yet: with one voter, the leader's own append commits an entry at
// once, and a learner told of that commit would apply an entry that a power
// loss of the leader then erases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CrashableLevel, type LevelLogStorage, type LogStorageSaveOptions, type LogStorageUpdate } from '../../src/storage/index.js';
import { TestCluster, cmd } from './helpers.js';

type Db = CrashableLevel<Uint8Array, Uint8Array>;

test('a one-voter leader tells its learner of a commit only once the committed entries are durable on the leader', async () => {
  const c = new TestCluster({
    seed: 3,
    dbFactory: () => new CrashableLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' }) as never,
  });
  try {
    await c.start('a', ['a'], ['a', 'b']);
    const a = await c.waitLeader();
    await c.run(a.node.addLearner('b'));
    const b = await c.start('b', undefined, ['a', 'b']);
    const first = await c.run(a.node.propose(cmd('k', 'kept')));
    await c.waitFor(() => b.node.appliedIndex >= first, 2_000, 'the learner applies the first entry');

    // the leader's next save of entries never reaches its disk
    let held: number[] | undefined;
    const storage = (a.node as unknown as { storage: LevelLogStorage }).storage;
    const save = storage.save.bind(storage);
    storage.save = (update: LogStorageUpdate, opts: LogStorageSaveOptions) => {
      if (update.entries !== undefined && update.entries.length > 0) {
        held = update.entries.map((e) => e.index);
        return new Promise<void>(() => {});
      }
      return save(update, opts);
    };
    void a.node.propose(cmd('k', 'lost')).catch(() => undefined);
    await c.waitFor(() => held !== undefined, 1_000, "the leader's save of the new entry");
    for (let t = 0; t < 300; t += 10) await c.clock.advanceAsync(10);
    assert.ok(
      b.node.appliedIndex < held![0]!,
      `the learner applied index ${b.node.appliedIndex} (${b.sm.applyLog.join(', ')}) while the leader had not saved ${held!.join(', ')}`,
    );

    // power loss of the leader, then a restart: the learner agrees with it
    const db = a.db as unknown as Db;
    await c.stop('a');
    await db.crash();
    await db.open();
    const a2 = await c.start('a', undefined, ['a', 'b']);
    await c.waitLeader();
    const next = await c.run(a2.node.propose(cmd('k', 'next')));
    await c.waitFor(() => b.node.appliedIndex >= next, 2_000, 'the learner applies the entry after the restart');
    assert.deepEqual(b.sm.applyLog, a2.sm.applyLog);
  } finally {
    await c.closeAll();
  }
});
