// The conformance suite of LogStorage: every backend runs it in one line,
// `runLogStorageConformance(name, makeStorage)`. Corruption tests flip bytes
// through the raw database, so they rely on LevelLogStorage's key layout
// (src/storage/keys.ts), which every backend here shares.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkCrc, decodeEntry, encodeEntry, withCrc } from '../../src/codec/index.js';
import { ErrorCode, isQuorumError, type ErrorCode as Code } from '../../src/errors.js';
import type { Entry, HardState, Snapshot } from '../../src/raftpb/index.js';
import {
  HARD_STATE_KEY,
  SNAPSHOT_KEY,
  entryKey,
  type LevelDatabase,
  type LoadedLogState,
  type LogStorage,
  type LogStorageUpdate,
} from '../../src/storage/index.js';

/** One backend under test. A fresh fixture is made for every test. */
export interface StorageFixture {
  /** Opens a storage on the current database. */
  open(): Promise<LogStorage>;
  /**
   * The database (or sublevel) the storage writes to; changes after
   * `restart()`. Absent for a storage that is not on a database: the tests
   * that read or damage stored records directly are then not registered.
   */
  db?: () => LevelDatabase;
  /**
   * A process restart, once every storage on it is closed: the database is
   * reopened (a crashable one first loses its unsynced writes).
   */
  restart(): Promise<void>;
  /** Frees the backend (closes databases, removes temp dirs). */
  destroy(): Promise<void>;
}

const VIEW = { keyEncoding: 'view', valueEncoding: 'view' } as const;
const RAW_SYNC = { ...VIEW, sync: true } as const;

/** An entry with a small payload derived from its index and term. */
export function ent(index: number, term: number, size = 8): Entry {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = (index * 31 + term * 7 + i) & 0xff;
  return { index, term, type: 'Normal', data };
}

export function ents(from: number, to: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(ent(i, term));
  return out;
}

export function snap(index: number, term: number, voters = ['a', 'b', 'c']): Snapshot {
  return { metadata: { index, term, confState: { voters, learners: [] } }, data: Uint8Array.of(1, 2, index & 0xff) };
}

/** Entries as plain values (the codec may hand back Buffers for Uint8Arrays). */
export function norm(entries: readonly Entry[]): Array<[number, number, string, string]> {
  return entries.map((e) => [e.index, e.term, e.type, Buffer.from(e.data).toString('hex')]);
}

export function normState(s: LoadedLogState): unknown {
  return {
    hardState: s.hardState,
    snapshot:
      s.snapshot === undefined
        ? undefined
        : { metadata: s.snapshot.metadata, data: Buffer.from(s.snapshot.data).toString('hex') },
    entries: norm(s.entries),
  };
}

export async function rejectsWith(p: Promise<unknown>, code: Code, messageIncludes?: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isQuorumError(err, code), `expected ${code}, got ${String((err as Error)?.stack ?? err)}`);
    if (messageIncludes !== undefined) {
      assert.ok((err as Error).message.includes(messageIncludes), `message "${(err as Error).message}" lacks "${messageIncludes}"`);
    }
    return true;
  });
}

/** Flips one byte of the payload of the record under `key` (after its CRC), durably. */
export async function flipByte(db: LevelDatabase, key: Uint8Array, offset = -1): Promise<void> {
  const rec = (await db.get(key, VIEW)) as Uint8Array | undefined;
  assert.ok(rec !== undefined, 'record to corrupt exists');
  const copy = new Uint8Array(rec);
  const at = offset < 0 ? copy.length + offset : offset;
  copy[at] = copy[at]! ^ 0x5a;
  await db.put(key, copy, RAW_SYNC as never);
}

async function storedIndexes(db: LevelDatabase): Promise<number[]> {
  const keys = (await db.keys({ gte: entryKey(0), lt: Uint8Array.of(0x66), keyEncoding: 'view' }).all()) as Uint8Array[];
  return keys.map((k) => Buffer.from(k).readUIntBE(3, 6));
}

/**
 * Records every write on `db`, with its `sync` option, until `restore()`:
 * the calls of the implementation's `_batch` (its operation count) and
 * `_put` (one), which both the public `batch()`/`put()` and the storage's
 * direct writes to classic-level end in.
 */
function spyBatches(db: LevelDatabase): { calls: Array<{ ops: number; sync: unknown }>; restore(): void } {
  const calls: Array<{ ops: number; sync: unknown }> = [];
  type Impl = { _batch: (...args: unknown[]) => unknown; _put: (...args: unknown[]) => unknown };
  const target = db as unknown as Impl;
  const had = { _batch: Object.hasOwn(target, '_batch'), _put: Object.hasOwn(target, '_put') };
  const { _batch, _put } = target;
  target._batch = function (this: unknown, ...args: unknown[]) {
    calls.push({ ops: (args[0] as unknown[]).length, sync: (args[1] as { sync?: unknown } | undefined)?.sync });
    return _batch.apply(this, args);
  };
  target._put = function (this: unknown, ...args: unknown[]) {
    calls.push({ ops: 1, sync: (args[2] as { sync?: unknown } | undefined)?.sync });
    return _put.apply(this, args);
  };
  return {
    calls,
    restore() {
      if (had._batch) target._batch = _batch;
      else delete (target as Partial<Impl>)._batch;
      if (had._put) target._put = _put;
      else delete (target as Partial<Impl>)._put;
    },
  };
}

const HS = (term: number, vote: string, commit: number): HardState => ({ term, vote, commit });

/**
 * Registers the LogStorage conformance tests for one backend under
 * `describe(name)`.
 * @param makeStorage - makes a fresh, empty backend for each test
 */
export function runLogStorageConformance(name: string, makeStorage: () => Promise<StorageFixture>, options: { raw?: boolean } = {}): void {
  /** A test that reads or damages the stored records through the database (registered for database backends only). */
  const rawTest: typeof test = options.raw === false ? ((() => undefined) as unknown as typeof test) : test;
  /** The fixture's database (for the raw tests). */
  const dbOf = (f: StorageFixture): LevelDatabase => f.db!();
  /** Runs `fn` with a fresh fixture and cleans up, closing storages it opened. */
  function withFixture(fn: (f: StorageFixture, open: () => Promise<LogStorage>) => Promise<void>) {
    return async () => {
      const f = await makeStorage();
      const opened: LogStorage[] = [];
      const open = async () => {
        const s = await f.open();
        opened.push(s);
        return s;
      };
      try {
        await fn(f, open);
      } finally {
        for (const s of opened) await s.close().catch(() => undefined);
        await f.destroy();
      }
    };
  }

  /** Closes `s`, restarts the backend and opens a new storage. */
  async function reopen(f: StorageFixture, s: LogStorage, open: () => Promise<LogStorage>): Promise<LogStorage> {
    await s.close();
    await f.restart();
    return open();
  }

  describe(`LogStorage conformance: ${name}`, () => {
    test(
      'an empty storage loads the empty HardState, no snapshot and no entries',
      withFixture(async (_f, open) => {
        const s = await open();
        assert.equal(s.status, 'open');
        const loaded = await s.load();
        assert.deepEqual(loaded.hardState, HS(0, '', 0));
        assert.equal(loaded.snapshot, undefined);
        assert.deepEqual(loaded.entries, []);
      }),
    );

    test(
      'entries and HardState saved together load back identical, in index order',
      withFixture(async (_f, open) => {
        const s = await open();
        // 300 entries cross the 256 boundary of the low key byte and the load chunk size is exercised with more below.
        const batch1 = ents(1, 300, 1);
        await s.save({ hardState: HS(1, 'a', 0), entries: batch1 }, { sync: true });
        await s.save({ hardState: HS(2, 'b', 250), entries: ents(301, 1500, 2) }, { sync: true });
        const loaded = await s.load();
        assert.deepEqual(loaded.hardState, HS(2, 'b', 250));
        assert.deepEqual(norm(loaded.entries), norm([...batch1, ...ents(301, 1500, 2)]));
      }),
    );

    test(
      'appending inside the log replaces the conflicting suffix, beyond the last new entry too (Raft §5.3)',
      withFixture(async (f, open) => {
        const s = await open();
        await s.save({ entries: ents(1, 10, 1) }, { sync: true });
        await s.save({ entries: ents(6, 7, 2) }, { sync: true });
        const loaded = await s.load();
        assert.deepEqual(norm(loaded.entries), norm([...ents(1, 5, 1), ...ents(6, 7, 2)]));
        if (f.db !== undefined) assert.deepEqual(await storedIndexes(dbOf(f)), [1, 2, 3, 4, 5, 6, 7]);
        // Appending right after the last entry keeps everything before it.
        await s.save({ entries: ents(8, 9, 3) }, { sync: true });
        assert.deepEqual(norm((await s.load()).entries), norm([...ents(1, 5, 1), ...ents(6, 7, 2), ...ents(8, 9, 3)]));
      }),
    );

    test(
      'a HardState-only update replaces the HardState and keeps the log',
      withFixture(async (f, open) => {
        let s = await open();
        await s.save({ hardState: HS(1, '', 0), entries: ents(1, 5, 1) }, { sync: true });
        await s.save({ hardState: HS(2, 'c', 3) }, { sync: true });
        await s.save({ hardState: HS(3, '', 5) }, { sync: true });
        s = await reopen(f, s, open);
        const loaded = await s.load();
        assert.deepEqual(loaded.hardState, HS(3, '', 5));
        assert.deepEqual(norm(loaded.entries), norm(ents(1, 5, 1)));
      }),
    );

    test(
      'saving a snapshot drops the entries it covers and keeps the matching entries after it',
      withFixture(async (f, open) => {
        let s = await open();
        await s.save({ hardState: HS(2, 'a', 8), entries: [...ents(1, 4, 1), ...ents(5, 10, 2)] }, { sync: true });
        await s.save({ snapshot: snap(6, 2) }, { sync: true });
        if (f.db !== undefined) assert.deepEqual(await storedIndexes(dbOf(f)), [7, 8, 9, 10]);
        s = await reopen(f, s, open);
        const loaded = await s.load();
        assert.deepEqual(loaded.snapshot?.metadata, snap(6, 2).metadata);
        assert.equal(Buffer.from(loaded.snapshot!.data).toString('hex'), Buffer.from(snap(6, 2).data).toString('hex'));
        assert.deepEqual(norm(loaded.entries), norm(ents(7, 10, 2)));
        assert.deepEqual(loaded.hardState, HS(2, 'a', 8));
      }),
    );

    test(
      'a snapshot that does not match the log discards the whole log (Raft §7, InstallSnapshot rule 7)',
      withFixture(async (f, open) => {
        const s = await open();
        await s.save({ hardState: HS(2, '', 3), entries: ents(1, 10, 2) }, { sync: true });
        // The leader's entry 6 has term 3: our entries 6..10 are a divergent suffix.
        await s.save({ hardState: HS(3, '', 6), snapshot: snap(6, 3) }, { sync: true });
        if (f.db !== undefined) assert.deepEqual(await storedIndexes(dbOf(f)), []);
        let loaded = await s.load();
        assert.deepEqual(loaded.entries, []);
        assert.equal(loaded.snapshot?.metadata.index, 6);
        // A snapshot beyond the end of the log also leaves nothing, and appends continue after it.
        await s.save({ snapshot: snap(20, 4), hardState: HS(4, '', 20), entries: ents(19, 22, 4) }, { sync: true });
        loaded = await s.load();
        assert.deepEqual(norm(loaded.entries), norm(ents(21, 22, 4)));
        await s.save({ entries: ents(23, 23, 4) }, { sync: true });
        assert.deepEqual(norm((await s.load()).entries), norm(ents(21, 23, 4)));
      }),
    );

    test(
      'a snapshot older than the stored one is rejected and changes nothing',
      withFixture(async (_f, open) => {
        const s = await open();
        await s.save({ entries: ents(1, 10, 1), hardState: HS(1, '', 8) }, { sync: true });
        await s.save({ snapshot: snap(8, 1) }, { sync: true });
        await rejectsWith(s.save({ snapshot: snap(5, 1), hardState: HS(9, '', 9) }, { sync: true }), ErrorCode.SNAPSHOT_OUT_OF_DATE);
        const loaded = await s.load();
        assert.equal(loaded.snapshot?.metadata.index, 8);
        assert.deepEqual(loaded.hardState, HS(1, '', 8));
        assert.deepEqual(norm(loaded.entries), norm(ents(9, 10, 1)));
      }),
    );

    test(
      're-saving the same snapshot keeps the entries after it',
      withFixture(async (_f, open) => {
        const s = await open();
        await s.save({ entries: ents(1, 10, 1), hardState: HS(1, '', 10) }, { sync: true });
        await s.save({ snapshot: snap(5, 1) }, { sync: true });
        await s.save({ snapshot: { ...snap(5, 1), data: Uint8Array.of(9) } }, { sync: true });
        const loaded = await s.load();
        assert.deepEqual(norm(loaded.entries), norm(ents(6, 10, 1)));
        assert.deepEqual([...loaded.snapshot!.data], [9]);
      }),
    );

    rawTest(
      'compact deletes stored entries up to its index, unsynced, and refuses an index no snapshot covers',
      withFixture(async (f, open) => {
        // Entries below the snapshot left by a lost compaction, written raw.
        const db = dbOf(f);
        for (let i = 1; i <= 10; i++) await db.put(entryKey(i), withCrc(encodeEntry(ent(i, 1))), RAW_SYNC as never);
        let s = await open();
        await s.save({ hardState: HS(1, '', 10), snapshot: snap(7, 1) }, { sync: true });
        assert.deepEqual(await storedIndexes(dbOf(f)), [8, 9, 10]);
        await rejectsWith(s.compact(8), ErrorCode.INVALID_ARGUMENT, 'index 8');
        await rejectsWith(s.compact(-1), ErrorCode.INVALID_ARGUMENT);
        s = await reopen(f, s, open);
        // Stale entries below the snapshot again (as if the snapshot's own deletes were lost).
        await dbOf(f).put(entryKey(3), withCrc(encodeEntry(ent(3, 1))), RAW_SYNC as never);
        await s.close();
        await f.restart();
        s = await open();
        assert.deepEqual(norm((await s.load()).entries), norm(ents(8, 10, 1)), 'load skips entries below the snapshot');
        const spy = spyBatches(dbOf(f));
        try {
          await s.compact(7);
        } finally {
          spy.restore();
        }
        assert.deepEqual(spy.calls.map((c) => c.sync === true), [false], 'compact writes one unsynced batch');
        assert.deepEqual(await storedIndexes(dbOf(f)), [8, 9, 10]);
        assert.deepEqual(norm((await s.load()).entries), norm(ents(8, 10, 1)));
      }),
    );

    test(
      'compact drops the entries a snapshot covers, keeps the rest across a restart, and refuses an index no snapshot covers',
      withFixture(async (f, open) => {
        let s = await open();
        await s.save({ hardState: HS(1, '', 10), entries: ents(1, 10, 1) }, { sync: true });
        await rejectsWith(s.compact(1), ErrorCode.INVALID_ARGUMENT, 'index 1');
        await s.save({ snapshot: snap(7, 1) }, { sync: true });
        await rejectsWith(s.compact(8), ErrorCode.INVALID_ARGUMENT, 'index 8');
        await rejectsWith(s.compact(-1), ErrorCode.INVALID_ARGUMENT);
        await s.compact(7);
        await s.compact(7); // again: nothing left to drop
        await s.save({ entries: ents(11, 12, 1), hardState: HS(1, '', 12) }, { sync: true });
        s = await reopen(f, s, open);
        const loaded = await s.load();
        assert.equal(loaded.snapshot?.metadata.index, 7);
        assert.deepEqual(norm(loaded.entries), norm(ents(8, 12, 1)));
        assert.deepEqual(loaded.hardState, HS(1, '', 12));
      }),
    );

    test(
      'a restart keeps every synced write',
      withFixture(async (f, open) => {
        let s = await open();
        await s.save({ hardState: HS(1, 'a', 0), entries: ents(1, 3, 1) }, { sync: true });
        await s.save({ hardState: HS(2, 'b', 3), entries: ents(4, 6, 2) }, { sync: true });
        await s.save({ snapshot: snap(3, 1) }, { sync: true });
        await s.save({ entries: ents(5, 8, 3), hardState: HS(3, 'c', 4) }, { sync: true });
        const before = normState(await s.load());
        s = await reopen(f, s, open);
        assert.deepEqual(normState(await s.load()), before);
        // And the reopened storage keeps appending where the log ends.
        await s.save({ entries: ents(9, 9, 3) }, { sync: true });
        s = await reopen(f, s, open);
        assert.deepEqual(norm((await s.load()).entries), norm([...ents(4, 4, 2), ...ents(5, 9, 3)]));
      }),
    );

    test(
      'a closed storage rejects every operation with QUORUMKV_STORAGE_CLOSED',
      withFixture(async (_f, open) => {
        const s = await open();
        await s.save({ entries: ents(1, 2, 1) }, { sync: true });
        const closing = s.close();
        assert.equal(s.status, 'closing');
        await rejectsWith(s.load(), ErrorCode.STORAGE_CLOSED);
        await closing;
        assert.equal(s.status, 'closed');
        await s.close(); // idempotent
        await rejectsWith(s.load(), ErrorCode.STORAGE_CLOSED);
        await rejectsWith(s.save({ entries: ents(3, 3, 1) }, { sync: true }), ErrorCode.STORAGE_CLOSED);
        await rejectsWith(s.save({ hardState: HS(1, '', 0) }, { sync: false }), ErrorCode.STORAGE_CLOSED);
        await rejectsWith(s.compact(1), ErrorCode.STORAGE_CLOSED);
      }),
    );

    test(
      'close waits for a save in flight, which completes',
      withFixture(async (f, open) => {
        let s = await open();
        const saving = s.save({ entries: ents(1, 50, 1) }, { sync: true });
        await s.close();
        await saving;
        await f.restart();
        s = await open();
        assert.equal((await s.load()).entries.length, 50);
      }),
    );

    test(
      'updates that would break the log are rejected with a UsageError and change nothing',
      withFixture(async (_f, open) => {
        const s = await open();
        await s.save({ hardState: HS(1, '', 2), entries: ents(1, 5, 1) }, { sync: true });
        await rejectsWith(s.save({ entries: ents(8, 9, 1) }, { sync: true }), ErrorCode.INVALID_ARGUMENT, 'gap');
        await rejectsWith(s.save({ entries: [ent(6, 1), ent(8, 1)] }, { sync: true }), ErrorCode.INVALID_ARGUMENT);
        await rejectsWith(s.save({ entries: [ent(6, 2), ent(7, 1)] }, { sync: true }), ErrorCode.INVALID_ARGUMENT);
        await rejectsWith(s.save({ hardState: HS(1, '', 6) }, { sync: true }), ErrorCode.INVALID_ARGUMENT, 'commit 6');
        await rejectsWith(
          s.save({ hardState: HS(2, '', 2), entries: ents(10, 10, 1) }, { sync: true }),
          ErrorCode.INVALID_ARGUMENT,
        );
        const loaded = await s.load();
        assert.deepEqual(loaded.hardState, HS(1, '', 2));
        assert.deepEqual(norm(loaded.entries), norm(ents(1, 5, 1)));
      }),
    );

    test(
      'an update without a HardState that would leave the stored commit beyond the log (entries or a snapshot replacing committed entries) is rejected and changes nothing: the log still loads after a restart',
      withFixture(async (f, open) => {
        let s = await open();
        await s.save({ hardState: HS(1, 'a', 8), entries: ents(1, 10, 1) }, { sync: true });
        // a conflicting suffix from index 5 that ends before the commit
        await rejectsWith(s.save({ entries: ents(5, 6, 2) }, { sync: true }), ErrorCode.INVALID_ARGUMENT, 'commit 8');
        // a snapshot whose term the log does not hold at its index wipes the log after it
        await rejectsWith(s.save({ snapshot: snap(6, 2) }, { sync: true }), ErrorCode.INVALID_ARGUMENT, 'commit 8');
        // with a HardState of its own the commit is the new one's: accepted when within the log
        await s.save({ entries: ents(9, 12, 2) }, { sync: true });
        s = await reopen(f, s, open);
        const loaded = await s.load();
        assert.deepEqual(loaded.hardState, HS(1, 'a', 8));
        assert.deepEqual(norm(loaded.entries), norm([...ents(1, 8, 1), ...ents(9, 12, 2)]));
      }),
    );

    test(
      'entries and snapshots the storage could not read back are rejected with QUORUMKV_INVALID_ARGUMENT and change nothing, across a restart',
      withFixture(async (f, open) => {
        let s = await open();
        await s.save({ hardState: HS(1, '', 2), entries: ents(1, 5, 1) }, { sync: true });
        const malformed: Array<[string, Parameters<LogStorage['save']>[0]]> = [
          // written, a synced save like this one resolved, and then on load it
          // was dropped as a torn tail (with the valid entries of its record)
          // or made the log refuse to open
          ['entry data that is a string', { entries: [ent(6, 1), { ...ent(7, 1), data: 'abc' as unknown as Uint8Array }] }],
          ['entry data that is missing', { entries: [{ ...ent(6, 1), data: undefined as unknown as Uint8Array }] }],
          // stored as a ConfChange entry
          ['an entry type of another name', { entries: [{ ...ent(6, 1), type: 'Bogus' as unknown as Entry['type'] }] }],
          ['a snapshot whose voters are not strings', { snapshot: { ...snap(3, 1), metadata: { index: 3, term: 1, confState: { voters: [1 as unknown as string], learners: [] } } } }],
          ['a snapshot without a conf state', { snapshot: { ...snap(3, 1), metadata: { index: 3, term: 1 } as Snapshot['metadata'] } }],
          ['a snapshot whose learners are missing', { snapshot: { ...snap(3, 1), metadata: { index: 3, term: 1, confState: { voters: ['a'] } as Snapshot['metadata']['confState'] } } }],
          ['entries that are not an array', { entries: ent(6, 1) as unknown as Entry[] }],
        ];
        for (const [what, update] of malformed) {
          await rejectsWith(s.save(update, { sync: true }), ErrorCode.INVALID_ARGUMENT).catch((err: Error) => {
            throw new Error(`${what}: ${err.message}`);
          });
        }
        // a later save goes on from the log as it was
        await s.save({ hardState: HS(1, '', 6), entries: ents(6, 6, 1) }, { sync: true });
        await s.close();
        await f.restart();
        s = await open();
        const loaded = await s.load();
        assert.deepEqual(loaded.hardState, HS(1, '', 6));
        assert.equal(loaded.snapshot, undefined);
        assert.deepEqual(norm(loaded.entries), norm(ents(1, 6, 1)));
        await s.close();
      }),
    );

    test(
      'a save whose update is not an object, or whose sync is not a boolean, is QUORUMKV_INVALID_ARGUMENT and writes nothing',
      withFixture(async (f, open) => {
        let s = await open();
        await s.save({ hardState: HS(1, '', 2), entries: ents(1, 2, 1) }, { sync: true });
        const bad: Array<[string, () => Promise<void>]> = [
          // a truthy sync that is not true was taken for false: an unsynced
          // write the caller meant to be durable, lost in a crash once acknowledged
          ['sync 1', () => s.save({ entries: ents(3, 3, 1) }, { sync: 1 as unknown as boolean })],
          ["sync 'yes'", () => s.save({ entries: ents(3, 3, 1) }, { sync: 'yes' as unknown as boolean })],
          ['no sync', () => s.save({ entries: ents(3, 3, 1) }, {} as { sync: boolean })],
          ['no options', () => s.save({ entries: ents(3, 3, 1) }, undefined as unknown as { sync: boolean })],
          ['a null update', () => s.save(null as unknown as LogStorageUpdate, { sync: true })],
          ['an array for an update', () => s.save([] as unknown as LogStorageUpdate, { sync: true })],
        ];
        for (const [what, call] of bad) {
          await rejectsWith(call(), ErrorCode.INVALID_ARGUMENT).catch((err: Error) => {
            throw new Error(`${what}: ${err.message}`);
          });
        }
        s = await reopen(f, s, open);
        const loaded = await s.load();
        assert.deepEqual(loaded.hardState, HS(1, '', 2));
        assert.deepEqual(norm(loaded.entries), norm(ents(1, 2, 1)));
        await s.close();
      }),
    );

    rawTest(
      'a corrupt entry in the middle of the log is QUORUMKV_CORRUPT_LOG naming its index',
      withFixture(async (f, open) => {
        let s = await open();
        await s.save({ hardState: HS(1, '', 3), entries: ents(1, 10, 1) }, { sync: true });
        await s.close();
        await flipByte(dbOf(f), entryKey(6));
        await f.restart();
        s = await open();
        await rejectsWith(s.load(), ErrorCode.CORRUPT_LOG, 'entry 6');
        // Nothing was dropped: a second load reports the same.
        await rejectsWith(s.load(), ErrorCode.CORRUPT_LOG, 'entry 6');
        assert.deepEqual(await storedIndexes(dbOf(f)), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      }),
    );

    rawTest(
      'a corrupt HardState is QUORUMKV_CORRUPT_LOG and a corrupt snapshot QUORUMKV_CORRUPT_SNAPSHOT',
      withFixture(async (f, open) => {
        let s = await open();
        await s.save({ hardState: HS(1, '', 5), entries: ents(1, 5, 1) }, { sync: true });
        await s.save({ snapshot: snap(3, 1) }, { sync: true });
        await s.close();
        await flipByte(dbOf(f), SNAPSHOT_KEY, 5);
        await f.restart();
        s = await open();
        await rejectsWith(s.load(), ErrorCode.CORRUPT_SNAPSHOT, 'snapshot');
        await s.close();
        await flipByte(dbOf(f), HARD_STATE_KEY);
        await f.restart();
        s = await open();
        await rejectsWith(s.load(), ErrorCode.CORRUPT_LOG, 'HardState');
      }),
    );

    rawTest(
      'a gap in the stored indexes is QUORUMKV_CORRUPT_LOG naming the missing index',
      withFixture(async (f, open) => {
        let s = await open();
        await s.save({ hardState: HS(1, '', 2), entries: ents(1, 8, 1) }, { sync: true });
        await s.close();
        await dbOf(f).del(entryKey(4), RAW_SYNC as never);
        await f.restart();
        s = await open();
        await rejectsWith(s.load(), ErrorCode.CORRUPT_LOG, 'entry 4 is missing');
      }),
    );

    rawTest(
      'a HardState commit beyond the stored log is QUORUMKV_CORRUPT_LOG (committed entries lost)',
      withFixture(async (f, open) => {
        let s = await open();
        await s.save({ hardState: HS(1, '', 8), entries: ents(1, 8, 1) }, { sync: true });
        await s.close();
        for (const i of [7, 8]) await dbOf(f).del(entryKey(i), RAW_SYNC as never);
        await f.restart();
        s = await open();
        await rejectsWith(s.load(), ErrorCode.CORRUPT_LOG, 'commit 8');
      }),
    );

    rawTest(
      'a torn tail above the commit is dropped on load, and the drop is persisted',
      withFixture(async (f, open) => {
        let s = await open();
        await s.save({ hardState: HS(1, '', 7), entries: ents(1, 10, 1) }, { sync: true });
        await s.close();
        await flipByte(dbOf(f), entryKey(9), 2);
        await flipByte(dbOf(f), entryKey(10));
        await f.restart();
        s = await open();
        const loaded = await s.load();
        assert.deepEqual(norm(loaded.entries), norm(ents(1, 8, 1)));
        assert.deepEqual(await storedIndexes(dbOf(f)), [1, 2, 3, 4, 5, 6, 7, 8]);
        // The storage keeps working from the truncated end, across a restart.
        await s.save({ entries: ents(9, 9, 2) }, { sync: true });
        s = await reopen(f, s, open);
        assert.deepEqual(norm((await s.load()).entries), norm([...ents(1, 8, 1), ent(9, 2)]));
      }),
    );

    rawTest(
      'a torn record at or below the commit is QUORUMKV_CORRUPT_LOG, not dropped',
      withFixture(async (f, open) => {
        let s = await open();
        await s.save({ hardState: HS(1, '', 9), entries: ents(1, 10, 1) }, { sync: true });
        await s.close();
        await flipByte(dbOf(f), entryKey(9));
        await flipByte(dbOf(f), entryKey(10));
        await f.restart();
        s = await open();
        await rejectsWith(s.load(), ErrorCode.CORRUPT_LOG, 'entry 9');
        assert.deepEqual((await storedIndexes(dbOf(f))).length, 10);
      }),
    );

    rawTest(
      'a corrupt record decodes to nothing: its CRC check fails (sanity check of the corruption helper)',
      withFixture(async (f, open) => {
        const s = await open();
        await s.save({ entries: ents(1, 1, 1) }, { sync: true });
        await flipByte(dbOf(f), entryKey(1));
        const rec = (await dbOf(f).get(entryKey(1), VIEW)) as Uint8Array;
        assert.throws(() => decodeEntry(checkCrc(rec, 'entry 1')), (err: unknown) => isQuorumError(err, ErrorCode.CORRUPT_LOG));
      }),
    );

    rawTest(
      'save passes sync: true to the database exactly when asked, in one write per save',
      withFixture(async (f, open) => {
        const s = await open();
        const spy = spyBatches(dbOf(f));
        try {
          await s.save({ hardState: HS(1, 'a', 0), entries: ents(1, 64, 1) }, { sync: true });
          await s.save({ hardState: HS(1, 'a', 10) }, { sync: false });
          await s.save({ entries: ents(65, 70, 1), hardState: HS(1, 'a', 64) }, { sync: true });
          await s.save({ entries: ents(71, 71, 1) }, { sync: true });
        } finally {
          spy.restore();
        }
        assert.deepEqual(spy.calls, [
          { ops: 65, sync: true },
          { ops: 1, sync: false },
          { ops: 7, sync: true },
          { ops: 1, sync: true },
        ]);
        assert.deepEqual((await s.load()).entries.map((e) => e.index).slice(-2), [70, 71]);
      }),
    );

    test(
      'concurrent saves are applied in call order',
      withFixture(async (_f, open) => {
        const s = await open();
        const saves: Promise<void>[] = [];
        for (let i = 1; i <= 20; i++) saves.push(s.save({ entries: [ent(i, 1)], hardState: HS(1, '', Math.min(i - 1, 10)) }, { sync: i % 5 === 0 }));
        // Overwrite 15.. in term 2 while the earlier saves are still queued.
        saves.push(s.save({ entries: ents(15, 16, 2) }, { sync: true }));
        await Promise.all(saves);
        assert.deepEqual(norm((await s.load()).entries), norm([...ents(1, 14, 1), ...ents(15, 16, 2)]));
      }),
    );
  });
}
