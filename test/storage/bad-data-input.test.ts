// Entry and snapshot data that is not a genuine Uint8Array whose bytes can be
// read (a Proxy of one, a view of a detached or shrunk buffer, a number) is
// refused by every log storage with a UsageError QUORUMKV_INVALID_ARGUMENT
// before anything is stored. A Proxy passes `instanceof Uint8Array`:
// MemoryStorage kept it (and any snapshot data at all), and the durable
// storages failed deep inside with a FaultError QUORUMKV_STORAGE_IO
// ("Method get TypedArray.prototype.byteLength called on incompatible
// receiver").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLevel } from 'memory-level';
import { ErrorCode, UsageError, isQuorumError } from '../../src/errors.js';
import { MemoryStorage } from '../../src/raft/memory-storage.js';
import type { ConfState, Entry, Snapshot } from '../../src/raftpb/index.js';
import { FileLogStorage, LevelLogStorage, type LogStorage } from '../../src/storage/index.js';
import { detachedView, proxiedView, shrunkView } from '../mvcc/helpers.js';
import { ent, ents, normState, snap } from './conformance.js';
import { withTempDir } from './fixtures.js';

const CS: ConfState = { voters: ['a', 'b', 'c'], learners: [] };

/** Data whose bytes cannot be read, with what the refusal's message names. */
const UNREADABLE: Array<[string, () => Uint8Array, string]> = [
  ['a Proxy of a Uint8Array', proxiedView, 'a Proxy of one'],
  ['a view of a detached ArrayBuffer', detachedView, 'detached'],
  ['a view of a shrunk ArrayBuffer', shrunkView, 'shrunk'],
];

/** Snapshot data MemoryStorage kept without a look: the unreadable views, and values that are no Uint8Array at all. */
const BAD_SNAPSHOT_DATA: Array<[string, () => unknown, string]> = [
  ...UNREADABLE,
  ['a number', () => 42, 'not a Uint8Array (got'],
  ['a string', () => 'abc', 'not a Uint8Array (got'],
  ['undefined', () => undefined, 'not a Uint8Array (got'],
];

/** Asserts `err` is a UsageError QUORUMKV_INVALID_ARGUMENT whose message has every one of `parts`. */
function isInvalidArgument(err: unknown, parts: string[], what: string): true {
  assert.ok(err instanceof UsageError && isQuorumError(err, ErrorCode.INVALID_ARGUMENT), `${what}: expected a UsageError ${ErrorCode.INVALID_ARGUMENT}, got ${String((err as Error)?.stack ?? err)}`);
  for (const p of parts) assert.ok(err.message.includes(p), `${what}: message "${err.message}" lacks "${p}"`);
  return true;
}

function withData(e: Entry, data: unknown): Entry {
  return { ...e, data } as Entry;
}

// ---------------------------------------------------------------- MemoryStorage

/** A MemoryStorage with a snapshot at 2/1 and entries 3..5 at term 1. */
function memory(): MemoryStorage {
  const s = new MemoryStorage();
  s.applySnapshot({ data: Uint8Array.of(9), metadata: { index: 2, term: 1, confState: CS } });
  s.append(ents(3, 5, 1));
  return s;
}

function memoryState(s: MemoryStorage): unknown {
  return {
    first: s.firstIndex(),
    last: s.lastIndex(),
    terms: s.entries(s.firstIndex(), s.lastIndex() + 1).map((e) => [e.index, e.term, Buffer.from(e.data).toString('hex')]),
    snapshot: { metadata: s.snapshot().metadata, data: Buffer.from(s.snapshot().data).toString('hex') },
    initial: s.initialState(),
  };
}

test('MemoryStorage.append refuses entry data that is a Proxy of a Uint8Array or a detached or shrunk view with QUORUMKV_INVALID_ARGUMENT, appending nothing', () => {
  for (const [what, bad, names] of UNREADABLE) {
    for (const [how, batch] of [
      ['alone', [withData(ent(6, 1), bad())]],
      ['after a good entry', [ent(6, 1), withData(ent(7, 1), bad())]],
      ['replacing a suffix', [withData(ent(4, 2), bad())]],
    ] as Array<[string, Entry[]]>) {
      const s = memory();
      const before = memoryState(s);
      const bad1 = batch[batch.length - 1]!.index;
      assert.throws(() => s.append(batch), (err) => isInvalidArgument(err, [`entry ${bad1}`, names], `${what} ${how}`));
      assert.deepEqual(memoryState(s), before, `${what} ${how}: the storage is unchanged`);
      s.append([ent(6, 1)]);
      assert.equal(s.lastIndex(), 6, `${what} ${how}: a later good append works`);
    }
  }
});

test('MemoryStorage.applySnapshot refuses snapshot data that is a Proxy of a Uint8Array, an unreadable view or no Uint8Array with QUORUMKV_INVALID_ARGUMENT, keeping snapshot and log', () => {
  for (const [what, bad, names] of BAD_SNAPSHOT_DATA) {
    const s = memory();
    const before = memoryState(s);
    const junk = { data: bad(), metadata: { index: 8, term: 2, confState: { voters: ['x'], learners: [] } } } as Snapshot;
    assert.throws(() => s.applySnapshot(junk), (err) => isInvalidArgument(err, ['snapshot data', names], what));
    assert.deepEqual(memoryState(s), before, `${what}: the storage is unchanged`);
    s.applySnapshot({ data: Uint8Array.of(1), metadata: { index: 8, term: 2, confState: CS } });
    assert.equal(s.snapshot().metadata.index, 8, `${what}: a later good snapshot is applied`);
    assert.equal(s.lastIndex(), 8, what);
  }
});

test('MemoryStorage.createSnapshot refuses snapshot data that is a Proxy of a Uint8Array, an unreadable view or no Uint8Array with QUORUMKV_INVALID_ARGUMENT, keeping snapshot and membership', () => {
  for (const [what, bad, names] of BAD_SNAPSHOT_DATA) {
    for (const cs of [undefined, { voters: ['x'], learners: [] }]) {
      const s = memory();
      const before = memoryState(s);
      assert.throws(() => s.createSnapshot(4, cs, bad() as Uint8Array), (err) => isInvalidArgument(err, ['snapshot data', names], what));
      assert.deepEqual(memoryState(s), before, `${what}: the storage is unchanged`);
      assert.equal(s.createSnapshot(4, cs, Uint8Array.of(1)).metadata.index, 4, `${what}: a later good snapshot is made`);
      assert.equal(s.snapshot().metadata.index, 4, what);
    }
  }
});

test('MemoryStorage.replaceSnapshotData refuses data that is a Proxy of a Uint8Array, an unreadable view or no Uint8Array with QUORUMKV_INVALID_ARGUMENT, keeping the snapshot', () => {
  for (const [what, bad, names] of BAD_SNAPSHOT_DATA) {
    const s = memory();
    const before = memoryState(s);
    assert.throws(() => s.replaceSnapshotData(2, bad() as Uint8Array), (err) => isInvalidArgument(err, ['snapshot data', names], what));
    assert.deepEqual(memoryState(s), before, `${what}: the storage is unchanged`);
    assert.equal(s.replaceSnapshotData(2, Uint8Array.of(7)), true, `${what}: a later good replacement works`);
    assert.deepEqual([...s.snapshot().data], [7], what);
  }
});

// ------------------------------------------------------- the durable storages

interface Durable {
  name: string;
  /** Runs `fn` with a way to open the storage (again) on the same backend. */
  run(fn: (open: () => Promise<LogStorage>) => Promise<void>): Promise<void>;
}

const DURABLE: Durable[] = [
  {
    name: 'LevelLogStorage (memory-level)',
    run: async (fn) => {
      const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
      await db.open();
      try {
        await fn(() => LevelLogStorage.open({ db }));
      } finally {
        await db.close();
      }
    },
  },
  {
    name: 'FileLogStorage',
    run: (fn) => withTempDir((dir) => fn(() => FileLogStorage.open({ dir, segmentBytes: 64 * 1024 }))),
  },
];

/**
 * Saves entries 1..5 (term 2) and a snapshot at 2, refuses each bad update
 * of `bad` with QUORUMKV_INVALID_ARGUMENT, and checks that the loaded state
 * is unchanged (also after a reopen: nothing was written), that a later good
 * save works and that the storage still loads.
 */
async function refusesAndKeeps(d: Durable, bad: Array<[string, () => Parameters<LogStorage['save']>[0], string[]]>): Promise<void> {
  await d.run(async (open) => {
    let s = await open();
    try {
      await s.save({ hardState: { term: 2, vote: 'a', commit: 4 }, entries: ents(1, 5, 2) }, { sync: true });
      await s.save({ snapshot: snap(2, 2) }, { sync: true });
      const before = normState(await s.load());
      for (const [what, update, parts] of bad) {
        for (const sync of [true, false]) {
          await assert.rejects(s.save(update(), { sync }), (err) => isInvalidArgument(err, parts, `${d.name}: ${what} (sync ${sync})`));
          assert.deepEqual(normState(await s.load()), before, `${d.name}: ${what}: the storage is unchanged`);
        }
      }
      await s.close();
      s = await open();
      assert.deepEqual(normState(await s.load()), before, `${d.name}: nothing was written (reopened)`);
      // a later good save of the same shape works
      await s.save({ hardState: { term: 3, vote: 'b', commit: 6 }, entries: [ent(6, 3), ent(7, 3)], snapshot: snap(4, 2) }, { sync: true });
      const after = await s.load();
      assert.equal(after.snapshot?.metadata.index, 4, d.name);
      assert.deepEqual(after.entries.map((e) => [e.index, e.term]), [[5, 2], [6, 3], [7, 3]], d.name);
    } finally {
      await s.close();
    }
  });
}

for (const d of DURABLE) {
  test(`${d.name}.save refuses entry data that is a Proxy of a Uint8Array or a detached or shrunk view with QUORUMKV_INVALID_ARGUMENT, storing nothing`, () =>
    refusesAndKeeps(
      d,
      UNREADABLE.flatMap(([what, bad, names]): Array<[string, () => Parameters<LogStorage['save']>[0], string[]]> => [
        [`${what} as the data of an appended entry`, () => ({ entries: [withData(ent(6, 2), bad())] }), ['entry 6', names]],
        [`${what} as the data of the last of several entries`, () => ({ entries: [ent(6, 2), ent(7, 2), withData(ent(8, 2), bad())] }), ['entry 8', names]],
        [`${what} replacing a suffix, with a HardState`, () => ({ hardState: { term: 3, vote: 'b', commit: 4 }, entries: [withData(ent(4, 3), bad())] }), ['entry 4', names]],
        [`${what} as entry data beside a good snapshot`, () => ({ entries: [withData(ent(6, 2), bad())], snapshot: snap(3, 2) }), ['entry 6', names]],
      ]),
    ));

  test(`${d.name}.save refuses snapshot data that is a Proxy of a Uint8Array or a detached or shrunk view with QUORUMKV_INVALID_ARGUMENT, storing nothing`, () =>
    refusesAndKeeps(
      d,
      UNREADABLE.flatMap(([what, bad, names]): Array<[string, () => Parameters<LogStorage['save']>[0], string[]]> => [
        [`${what} as snapshot data`, () => ({ snapshot: { ...snap(4, 2), data: bad() } }), ['snapshot data', names]],
        [`${what} as the data of a snapshot ahead of the log`, () => ({ snapshot: { ...snap(9, 3), data: bad() } }), ['snapshot data', names]],
        [`${what} as snapshot data beside good entries and a HardState`, () => ({ hardState: { term: 3, vote: 'b', commit: 6 }, entries: [ent(6, 3)], snapshot: { ...snap(4, 2), data: bad() } }), ['snapshot data', names]],
      ]),
    ));
}
