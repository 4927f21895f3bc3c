// The commit index is volatile state in Raft (Raft paper, Figure 2): a
// RaftNode leaves a HardState whose only change is its commit out of a save
// that is otherwise one entry or nothing, and saves it on a timer. These tests check that
// the deferral happens, that the timer and close() save it, and that a member
// restarting with an older saved commit (after a power loss) loses nothing,
// also when its saved commit is below its latest snapshot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import { CrashableLevel, LevelLogStorage, entryKey, type LogStorageSaveOptions, type LogStorageUpdate } from '../../src/storage/index.js';
import type { Clock, RaftNodeStatus } from '../../src/node/index.js';
import type { Ready } from '../../src/raft/types.js';
import { TestCluster, cmd, type Member } from './helpers.js';

type Db = CrashableLevel<Uint8Array, Uint8Array>;

function crashableCluster(snapshotEntries?: number): TestCluster {
  return new TestCluster({
    snapshotEntries,
    dbFactory: () => new CrashableLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' }) as never,
  });
}

/** The HardState commit saved in a member's database now. */
async function savedCommit(db: Member['db']): Promise<number> {
  const storage = await LevelLogStorage.open({ db: db.sublevel<Uint8Array, Uint8Array>('raft', { keyEncoding: 'view', valueEncoding: 'view' }) as never });
  const { hardState } = await storage.load();
  await storage.close();
  return hardState.commit;
}

/**
 * Starts member `a` alone, proposes `k1..k<count>` one at a time, closes it
 * and cuts the power: its database keeps only what was synced.
 * @returns the proposals' indexes, the member's status before it closed, and its database
 */
async function proposeThenPowerLoss(c: TestCluster, count: number): Promise<{ indexes: number[]; before: RaftNodeStatus; db: Db }> {
  await c.start('a', ['a'], ['a']);
  const a = await c.waitLeader();
  const indexes = await proposeOneByOne(c, a, 1, count);
  const before = a.node.status();
  const db = a.db as unknown as Db;
  await c.stop('a');
  await db.crash();
  await db.open();
  return { indexes, before, db };
}

/** Calls `seen` with each save of member `m`'s log storage once the save is done. */
function afterSaves(m: Member, seen: (update: LogStorageUpdate, opts: LogStorageSaveOptions) => void): void {
  const storage = (m.node as unknown as { storage: LevelLogStorage }).storage;
  const save = storage.save.bind(storage);
  storage.save = async (update, opts) => {
    await save(update, opts);
    seen(update, opts);
  };
}

async function proposeOneByOne(c: TestCluster, m: Member, from: number, to: number): Promise<number[]> {
  const indexes: number[] = [];
  for (let i = from; i <= to; i++) indexes.push(await c.run(m.node.propose(cmd(`k${i}`, `v${i}`))));
  return indexes;
}

test('a lone member leaves commit-only HardStates out of one-entry saves, and saves the latest on a timer and on close', async () => {
  const c = crashableCluster();
  try {
    await c.start('a', ['a'], ['a']);
    const a = await c.waitLeader();
    const indexes = await proposeOneByOne(c, a, 1, 5);
    const last = indexes.at(-1)!;
    assert.ok((await savedCommit(a.db)) < last, 'the commit of the last proposals is not saved yet');
    await c.clock.advanceAsync(150);
    assert.equal(await savedCommit(a.db), last, 'the timer saved the latest commit');

    const [more] = await proposeOneByOne(c, a, 6, 6);
    assert.ok((await savedCommit(a.db)) < more!);
    await c.stop('a');
    assert.equal(await savedCommit(a.db), more, 'close() saved the latest commit');
  } finally {
    await c.closeAll();
  }
});

test('a lone member restarted after a power loss with an older saved commit applies every acknowledged proposal once', async () => {
  const c = crashableCluster();
  try {
    const { indexes, db } = await proposeThenPowerLoss(c, 8);
    let a = await c.start('a', undefined, ['a']);
    assert.ok(a.node.term > 0 && a.node.term === a.node.status().term, 'the term getter knows the saved term at once');
    assert.ok((await savedCommit(db)) < indexes.at(-1)!, 'the power loss took the unsynced commit');
    a = await c.waitLeader();
    await proposeOneByOne(c, a, 9, 9);
    const applied = a.sm.applyLog.map((line) => line.split(' ')[1]);
    assert.deepEqual(applied, Array.from({ length: 9 }, (_, i) => `k${i + 1}=v${i + 1}`));
    assert.deepEqual(
      a.sm.applyLog.slice(0, 8).map((line) => Number(line.split(' ')[0])),
      indexes,
    );
  } finally {
    await c.closeAll();
  }
});

test('a member whose saved commit is below its latest snapshot restarts from the snapshot', async () => {
  const c = crashableCluster(3);
  try {
    const { indexes, before, db } = await proposeThenPowerLoss(c, 10);
    assert.ok(before.snapshotIndex > 0, 'snapshots were taken');
    const saved = await savedCommit(db);
    assert.ok(saved < before.snapshotIndex, `saved commit ${saved} is below the snapshot at ${before.snapshotIndex}`);
    let a = await c.start('a', undefined, ['a']);
    a = await c.waitLeader();
    await proposeOneByOne(c, a, 11, 11);
    assert.deepEqual(
      a.sm.applyLog.map((line) => line.split(' ')[1]),
      Array.from({ length: 11 }, (_, i) => `k${i + 1}=v${i + 1}`),
    );
    assert.equal(Number(a.sm.applyLog[9]!.split(' ')[0]), indexes[9]);
  } finally {
    await c.closeAll();
  }
});

test('a restart whose log lost entries the state machine applied fails with QUORUMKV_CORRUPT_LOG instead of dropping them as a torn tail', async () => {
  const c = crashableCluster();
  try {
    const { indexes, db } = await proposeThenPowerLoss(c, 8);
    const saved = await savedCommit(db);
    assert.ok(saved < indexes[6]!, 'the saved commit lags');
    // every entry above the saved commit turns corrupt: load() takes them for a torn, unacknowledged tail
    const raft = db.sublevel<Uint8Array, Uint8Array>('raft', { keyEncoding: 'view', valueEncoding: 'view' });
    for (let i = saved + 1; i <= indexes.at(-1)!; i++) {
      const rec = await raft.get(entryKey(i));
      if (rec === undefined) continue;
      const bad = rec.slice();
      bad[bad.length - 1] = bad[bad.length - 1]! ^ 0xff;
      await raft.put(entryKey(i), bad);
    }
    await assert.rejects(c.start('a', undefined, ['a']), (e: unknown) => isQuorumError(e, ErrorCode.CORRUPT_LOG) && /missing from the log/.test((e as Error).message));
  } finally {
    await c.closeAll();
  }
});

test('a restart takes no snapshot while it replays entries its state machine already holds', async () => {
  const c = new TestCluster();
  try {
    await c.start('a', ['a'], ['a']);
    let a = await c.waitLeader();
    // entries of 300 KB: Raft hands committed entries out at most 1 MiB per
    // Ready, so the replay spans several apply steps
    const big = 'x'.repeat(300_000);
    const indexes: number[] = [];
    for (let i = 1; i <= 10; i++) indexes.push(await c.run(a.node.propose(cmd(`k${i}`, big))));
    const held = a.sm.appliedIndex();
    assert.equal(held, indexes.at(-1));
    await c.stop('a');
    // snapshots every 3 entries from now on: the replay of 1..held must not take one
    a = await c.start('a', undefined, ['a'], { snapshotEntries: 3 });
    const taken: number[] = [];
    a.node.on('snapshot', (index: number, source: string) => {
      if (source === 'local') taken.push(index);
    });
    a = await c.waitLeader();
    await proposeOneByOne(c, a, 11, 14);
    assert.ok(taken.length > 0, 'snapshots were taken after the replay');
    assert.ok(
      taken.every((i) => i >= held),
      `snapshots at ${taken.join(', ')}: none below ${held}, the index the state machine held at the restart`,
    );
    assert.deepEqual(
      a.sm.applyLog.map((line) => line.split(' ')[1]!.split('=')[0]),
      Array.from({ length: 14 }, (_, i) => `k${i + 1}`),
    );
  } finally {
    await c.closeAll();
  }
});

test('members of a cluster leave a commit-only HardState unsaved when their Ready has nothing else to save, carry it with later entries, and save it on the timer once idle', async () => {
  const c = new TestCluster();
  try {
    await c.startAll(['a', 'b', 'c']);
    const leader = await c.waitLeader();
    await c.run(leader.node.propose(cmd('k0', 'v0')));
    const commitOnly = new Map<string, number>();
    for (const m of c.members.values()) {
      afterSaves(m, (update) => {
        if (update.hardState !== undefined && (update.entries ?? []).length === 0 && update.snapshot === undefined) {
          commitOnly.set(m.id, (commitOnly.get(m.id) ?? 0) + 1);
        }
      });
    }
    const started = c.clock.now();
    const proposals = 40;
    const indexes = await proposeOneByOne(c, leader, 1, proposals);
    const elapsed = c.clock.now() - started;
    assert.ok(elapsed >= 300, `the proposals took ${elapsed} virtual ms, too short for the timer to matter`);
    for (const m of c.members.values()) {
      // one per proposal without the deferral; one per 100 ms if the timer wrote it during the load
      assert.equal(commitOnly.get(m.id) ?? 0, 0, `${m.id}: commit-only saves during ${proposals} proposals in ${elapsed} virtual ms`);
      const saved = await savedCommit(m.db);
      assert.ok(saved >= indexes[proposals / 2]!, `${m.id}: the commit was carried by later saves (saved ${saved}, proposals up to ${indexes.at(-1)})`);
    }
    await c.clock.advanceAsync(150);
    for (const m of c.members.values()) {
      assert.equal(await savedCommit(m.db), indexes.at(-1), `${m.id}: the timer saved the latest commit`);
    }
  } finally {
    await c.closeAll();
  }
});

test('a commit left unsaved is saved, synced, before a membership change it covers is applied, when Raft hands the committed entries out over several Readies', async () => {
  const c = new TestCluster();
  try {
    const ids = ['a', 'b', 'c'];
    // Raft hands out committed entries of at most 1 KiB per Ready (at least one)
    for (const id of ids) await c.start(id, ids, ids, { maxSizePerMsg: 1024 });
    const leader = await c.waitLeader();
    await c.run(leader.node.propose(cmd('k0', 'v0')));
    const DELAY = 5;
    c.net.setDelay({ minMs: DELAY, maxMs: DELAY });
    const settle = async (): Promise<void> => {
      for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    };
    /** Per member, the highest commit saved with a synced save. */
    const saved = new Map<string, number>();
    const violations: string[] = [];
    /** Members that got a Ready whose commit is beyond the entries it hands out. */
    const splits = new Set<string>();
    let changesApplied = 0;
    for (const m of c.members.values()) {
      afterSaves(m, (update, opts) => {
        if (update.hardState !== undefined && opts.sync) saved.set(m.id, Math.max(saved.get(m.id) ?? 0, update.hardState.commit));
      });
      const raw = (m.node as unknown as { raw: { ready(): Ready } }).raw;
      const ready = raw.ready.bind(raw);
      raw.ready = () => {
        const rd = ready();
        const handedOut = rd.committedEntries.at(-1)?.index;
        if (rd.hardState !== undefined && handedOut !== undefined && rd.hardState.commit > handedOut) splits.add(m.id);
        return rd;
      };
      const apply = m.sm.apply.bind(m.sm);
      m.sm.apply = (items) => {
        for (const it of items) {
          if (it.kind !== 'confChange') continue;
          changesApplied++;
          const commit = saved.get(m.id);
          if (commit === undefined || commit < it.index) {
            violations.push(`${m.id} applied the change at ${it.index} with ${commit === undefined ? 'no commit synced during the test' : `commit ${commit} synced`}`);
          }
        }
        return apply(items);
      };
    }
    for (let round = 0; round < 2; round++) {
      // an entry larger than the limit, then a membership change behind it:
      // both reach the followers at the same virtual instant, and their
      // acknowledgements reach the leader at the same instant, so the
      // commit moves past both at once; Raft then hands out the entry in
      // one Ready (with the new commit, left unsaved: nothing else to save)
      // and the change in the next (with no HardState)
      const put = leader.node.propose(cmd(`x${round}`, 'v'.repeat(2048)));
      await settle();
      const change = round === 0 ? leader.node.addLearner('l') : leader.node.removeMember('l');
      await settle();
      c.clock.advance(DELAY); // both MsgApps, delivered without a turn of the event loop between them
      await settle();
      c.clock.advance(DELAY); // the acknowledgements of both followers, the same way
      await settle();
      await c.run(Promise.all([put, change]));
      await c.waitFor(() => changesApplied >= (round + 1) * ids.length, 5_000, 'every member to apply the change');
    }
    assert.ok(splits.has(leader.id), 'the leader got the commit of an entry and a change in one Ready, and the entry alone');
    assert.deepEqual(violations, []);
  } finally {
    await c.closeAll();
  }
});

test('a commit deferred again right after a carry is saved once the member goes idle', async () => {
  const c = new TestCluster();
  try {
    await c.startAll(['a', 'b', 'c']);
    const leader = await c.waitLeader();
    await c.run(leader.node.propose(cmd('k0', 'v0')));
    await c.clock.advanceAsync(300);
    // deferred at t (its timer due at t + 100); at t + 60 the next proposal
    // carries it and a new commit is deferred: the timer then finds it
    // waiting for 40 ms only, and must wait the rest rather than give up
    const first = await c.run(leader.node.propose(cmd('k1', 'v1')));
    await c.clock.advanceAsync(60);
    const second = await c.run(leader.node.propose(cmd('k2', 'v2')));
    const carried = await savedCommit(leader.db);
    assert.ok(carried >= first && carried < second, `the first commit was carried (saved ${carried}, proposals at ${first} and ${second})`);
    await c.clock.advanceAsync(400);
    assert.equal(await savedCommit(leader.db), second, 'the idle member saved its latest commit');
  } finally {
    await c.closeAll();
  }
});

test('a wall clock that goes back while a commit waits unsaved does not hold it back', async () => {
  const c = new TestCluster();
  try {
    let offset = 0;
    // the cluster's virtual clock, read 10 minutes earlier once `offset` is set
    const skewed: Clock = { now: () => c.clock.now() + offset, setTimeout: (fn, ms) => c.clock.setTimeout(fn, ms), clearTimeout: (h) => c.clock.clearTimeout(h) };
    await c.start('a', ['a'], ['a'], { clock: skewed });
    const a = await c.waitLeader();
    const [last] = await proposeOneByOne(c, a, 1, 1);
    assert.ok((await savedCommit(a.db)) < last!, 'the commit waits');
    offset = -600_000;
    await c.clock.advanceAsync(150);
    assert.equal(await savedCommit(a.db), last, 'the timer saved it after its 100 ms');
  } finally {
    await c.closeAll();
  }
});

test('close() rejects with the failure of its save of the commit left unsaved, and still closes the storage', async () => {
  const c = crashableCluster();
  try {
    await c.start('a', ['a'], ['a']);
    const a = await c.waitLeader();
    const [last] = await proposeOneByOne(c, a, 1, 1);
    assert.ok((await savedCommit(a.db)) < last!, 'the commit of the proposal is not saved yet');
    const storage = (a.node as unknown as { storage: LevelLogStorage }).storage;
    const save = storage.save.bind(storage);
    storage.save = async (update, opts) => {
      if (update.hardState !== undefined && update.entries === undefined) throw new Error('the disk is full');
      return save(update, opts);
    };
    c.members.delete('a'); // closed here
    await assert.rejects(a.node.close(), /the disk is full/);
    assert.equal(storage.status, 'closed', 'the storage was closed');
  } finally {
    await c.closeAll();
  }
});
