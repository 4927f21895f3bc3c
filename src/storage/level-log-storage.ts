/**
 * {@link LevelLogStorage}: the {@link LogStorage} of a Raft node on any
 * `abstract-level` database — classic-level (LevelDB) on disk, memory-level in
 * tests, or a sublevel of a database shared with the state machine.
 * @module
 */
import type { AbstractLevel } from 'abstract-level';
import { ClassicLevel } from 'classic-level';
import createDebug from 'debug';
import {
  checkCrc,
  decodeEntry,
  decodeHardState,
  decodeSnapshot,
  encodeEntry,
  encodeHardState,
  encodeSnapshot,
  withCrc,
} from '../codec/index.js';
import { ErrorCode, FaultError, UsageError, isQuorumError } from '../errors.js';
import { checkOptionKeys } from '../option-keys.js';
import { putPrepared, writePrepared } from '../level-write.js';
import { emptyHardState, type Entry, type HardState, type Snapshot } from '../raftpb/index.js';
import { checkCommitWithin, checkCompactCovered, checkCompactIndex, checkNoGap, checkSaveOptions, checkSnapshotNotOlder, checkUpdate } from './checks.js';
import { ENTRY_KEY_END, HARD_STATE_KEY, SNAPSHOT_KEY, entryIndexOf, entryKey } from './keys.js';
import type {
  LoadedLogState,
  LogStorage,
  LogStorageSaveOptions,
  LogStorageStatus,
  LogStorageUpdate,
} from './log-storage.js';

const log = createDebug('quorumkv:storage');

/**
 * Any abstract-level database or sublevel, whatever its default encodings:
 * {@link LevelLogStorage} passes `keyEncoding: 'view'` and
 * `valueEncoding: 'view'` (Uint8Array) on every operation.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type LevelDatabase = AbstractLevel<any, any, any>;

/**
 * How to open a {@link LevelLogStorage}:
 * - `{ db }`: use this database or sublevel. The caller owns it: `close()`
 *   leaves it open. It may be a sublevel of a database shared with the state
 *   machine (see {@link LevelLogStorage});
 * - `{ dataDir }`: create (or open) a classic-level database in that directory
 *   (created if missing). The storage owns it and closes it on `close()`.
 */
export type LevelLogStorageOptions = { db: LevelDatabase } | { dataDir: string };

type Op = { type: 'put'; key: Uint8Array; value: Uint8Array } | { type: 'del'; key: Uint8Array };

const VIEW = { keyEncoding: 'view', valueEncoding: 'view' } as const;

/** Entries read per iterator step on load. */
const LOAD_CHUNK = 1024;

/**
 * A {@link LogStorage} on an abstract-level database. Key layout (see
 * `keys.ts`): entries under `'e'` + u64 big-endian index, the HardState under
 * `'h'`, the latest snapshot (metadata and data) under `'s'`; every value is
 * `withCrc(encode...(record))` from the codec, so each record carries a CRC-32.
 *
 * Writes are serialized in call order. `save()` is one `db.batch()` of
 * prepared operations (puts of the new entries and HardState, deletes of the
 * replaced suffix), or one `db.put()` when that is a single put, with `sync`
 * exactly as requested; `compact()` is one
 * unsynced batch of deletes; `load()` streams the log with an iterator.
 *
 * Sharing a database with a state machine: open one classic-level database,
 * give `db.sublevel('raft', { keyEncoding: 'view', valueEncoding: 'view' })` to
 * this storage and another sublevel to the state machine. Both write to the
 * same LevelDB, so a batch on the root database may span sublevels (pass
 * `sublevel` on each operation) and is atomic, and a synced write of either
 * makes the earlier writes of both in the same LevelDB write-ahead log
 * durable (not those in a log LevelDB switched away from when its write
 * buffer filled, closed without fsync until its table is flushed:
 * google/leveldb#193).
 *
 * Recovery on {@link load} (Raft §5.3, etcd's WAL rules):
 * - a HardState that fails its CRC or decode: `QUORUMKV_CORRUPT_LOG`;
 * - a snapshot that fails its CRC or decode: `QUORUMKV_CORRUPT_SNAPSHOT`;
 * - a missing index between the snapshot and the last entry, an entry stored
 *   under another index, or terms that decrease: `QUORUMKV_CORRUPT_LOG`;
 * - a corrupt entry followed by any valid entry: `QUORUMKV_CORRUPT_LOG`;
 * - a corrupt tail (one or more corrupt entries with no valid entry after
 *   them): dropped, and the drop persisted with a synced write, when its first
 *   index is above the saved HardState's commit; `QUORUMKV_CORRUPT_LOG` when
 *   it starts at or below it. The saved commit may lag the real one (a
 *   `RaftNode` saves a commit-only change late), so a dropped tail may hold
 *   committed entries: `RaftNode` refuses to start when its state machine
 *   applied entries the log no longer has;
 * - a HardState commit beyond the last entry (and the snapshot):
 *   `QUORUMKV_CORRUPT_LOG` (committed entries were lost).
 *
 * @example
 * ```ts
 * const storage = await LevelLogStorage.open({ dataDir: '/var/lib/app/raft' });
 * const { hardState, snapshot, entries } = await storage.load();
 * await storage.save({ hardState: rd.hardState, entries: rd.entries }, { sync: rd.mustSync });
 * ```
 */
export class LevelLogStorage implements LogStorage {
  /** The database (or sublevel) this storage writes to. */
  readonly db: LevelDatabase;
  readonly #ownsDb: boolean;
  #status: LogStorageStatus = 'opening';
  #closing: Promise<void> | undefined;
  /** Tail of the write queue; never rejects. */
  #queue: Promise<void> = Promise.resolve();
  /** Index of the first and last stored entry keys; the log is empty when `#last < #first`. */
  #first = 1;
  #last = 0;
  #snapshotIndex = 0;
  /** The stored HardState's commit (0 when none, or when it is corrupt: load() reports that). */
  #commit = 0;
  #snapshotTerm = 0;

  private constructor(db: LevelDatabase, ownsDb: boolean) {
    this.db = db;
    this.#ownsDb = ownsDb;
  }

  /**
   * Opens a storage on `options.db` or in `options.dataDir` (see
   * {@link LevelLogStorageOptions}). Reads only the bounds of the log and the
   * snapshot's metadata; call {@link load} to read and verify the rest.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when neither `db` nor
   *   `dataDir` is given, or for an option of another name
   * @throws FaultError `QUORUMKV_STORAGE_IO` when the database cannot be opened
   *   (for instance locked by another process)
   */
  static async open(options: LevelLogStorageOptions): Promise<LevelLogStorage> {
    if (options === null || typeof options !== 'object') throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'LevelLogStorage.open needs { db } or { dataDir }');
    checkOptionKeys(options, ['db', 'dataDir'], 'LevelLogStorage.open options', ErrorCode.INVALID_ARGUMENT);
    let storage: LevelLogStorage;
    if ('db' in options && options.db !== undefined) {
      storage = new LevelLogStorage(options.db, false);
    } else if ('dataDir' in options && typeof options.dataDir === 'string' && options.dataDir !== '') {
      storage = new LevelLogStorage(new ClassicLevel<Uint8Array, Uint8Array>(options.dataDir, VIEW), true);
    } else {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'LevelLogStorage.open needs a db or a dataDir');
    }
    try {
      if (storage.db.status !== 'open') await storage.db.open();
      await storage.#readBounds(true);
    } catch (err) {
      storage.#status = 'closed';
      if (storage.#ownsDb) await storage.db.close().catch(() => undefined);
      if (isQuorumError(err)) throw err;
      throw new FaultError(ErrorCode.STORAGE_IO, `cannot open the log storage: ${reason(err)}`, { cause: err });
    }
    storage.#status = 'open';
    return storage;
  }

  /** Current lifecycle state. */
  get status(): LogStorageStatus {
    return this.#status;
  }

  /**
   * Reads and verifies the HardState, the snapshot and the entries after it;
   * drops a torn tail above the commit (see the class documentation for every
   * rule), logging a warning on `quorumkv:storage`.
   * @throws FaultError `QUORUMKV_CORRUPT_LOG`, `QUORUMKV_CORRUPT_SNAPSHOT`,
   *   `QUORUMKV_STORAGE_CLOSED`, `QUORUMKV_STORAGE_IO`
   */
  async load(): Promise<LoadedLogState> {
    this.#assertOpen();
    return this.#enqueue(() => this.#load());
  }

  /**
   * Persists `update` in one atomic `db.batch()` with `sync: options.sync`
   * (see {@link LogStorage.save}). Entries replace the stored ones from the
   * first new index on, and stored entries beyond the last new one are deleted.
   *
   * A snapshot drops the stored entries at or below its index. The entries
   * above it are kept only when the log holds the snapshot's last entry (same
   * index and term) or the stored snapshot is the same one; otherwise the whole
   * log is discarded (Raft §7, InstallSnapshot receiver rules 6 and 7). New
   * entries at or below the snapshot's index in the same update are ignored.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` (entries not contiguous, terms
   *   decreasing, or starting after a gap; a HardState commit, the update's
   *   or else the stored one, beyond the last index after the update;
   *   malformed fields; an update that is not an object;
   *   options whose `sync` is not a boolean), `QUORUMKV_SNAPSHOT_OUT_OF_DATE`
   *   (snapshot index below the stored snapshot's); nothing is written
   * @throws FaultError `QUORUMKV_STORAGE_CLOSED`, `QUORUMKV_STORAGE_IO`
   */
  async save(update: LogStorageUpdate, options: LogStorageSaveOptions): Promise<void> {
    this.#assertOpen();
    checkUpdate(update);
    checkSaveOptions(options);
    const sync = options.sync;
    return this.#enqueue(() => this.#save(update, sync));
  }

  /**
   * Deletes stored entries up to and including `index` in one unsynced batch.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `index` is not a
   *   non-negative safe integer or is above the stored snapshot's index
   * @throws FaultError `QUORUMKV_STORAGE_CLOSED`, `QUORUMKV_STORAGE_IO`
   */
  async compact(index: number): Promise<void> {
    this.#assertOpen();
    checkCompactIndex(index);
    return this.#enqueue(async () => {
      checkCompactCovered(index, this.#snapshotIndex);
      const to = Math.min(index, this.#last);
      if (to < this.#first) return;
      const ops: Op[] = [];
      for (let i = this.#first; i <= to; i++) ops.push({ type: 'del', key: entryKey(i) });
      await writePrepared(this.db, ops, false);
      this.#first = to + 1;
    });
  }

  /**
   * Waits for queued writes, then closes (and closes the database when it was
   * opened from `dataDir`). Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#status = 'closing';
    this.#closing = (async () => {
      await this.#queue;
      try {
        if (this.#ownsDb) await this.db.close();
      } finally {
        this.#status = 'closed';
      }
    })();
    return this.#closing;
  }

  #assertOpen(): void {
    if (this.#status !== 'open') {
      throw new FaultError(ErrorCode.STORAGE_CLOSED, `the log storage is ${this.#status}`);
    }
  }

  /** Runs `task` after every earlier queued task; database errors become typed errors. */
  #enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task).catch((err: unknown) => {
      throw ioError(err, 'log storage operation failed');
    });
    this.#queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Reads the first and last entry keys and (when asked) the snapshot's index and term. */
  async #readBounds(withSnapshot: boolean): Promise<void> {
    if (withSnapshot) {
      const rec = (await this.db.get(SNAPSHOT_KEY, VIEW)) as Uint8Array | undefined;
      let meta = { index: 0, term: 0 };
      if (rec !== undefined) {
        // A corrupt snapshot is reported by load(); until then it counts as none.
        try {
          meta = decodeSnapshotRecord(rec).metadata;
        } catch {
          meta = { index: 0, term: 0 };
        }
      }
      this.#snapshotIndex = meta.index;
      this.#snapshotTerm = meta.term;
      const hs = (await this.db.get(HARD_STATE_KEY, VIEW)) as Uint8Array | undefined;
      try {
        this.#commit = hs === undefined ? 0 : decodeHardState(checkCrc(hs, 'HardState')).commit;
      } catch {
        this.#commit = 0;
      }
    }
    const range = { gte: entryKey(0), lt: ENTRY_KEY_END, limit: 1, keyEncoding: 'view' } as const;
    const [firstKey] = (await this.db.keys(range).all()) as Uint8Array[];
    const [lastKey] = (await this.db.keys({ ...range, reverse: true }).all()) as Uint8Array[];
    const first = firstKey === undefined ? undefined : entryIndexOf(firstKey);
    const last = lastKey === undefined ? undefined : entryIndexOf(lastKey);
    if (first === undefined || last === undefined) {
      this.#first = this.#snapshotIndex + 1;
      this.#last = this.#snapshotIndex;
    } else {
      this.#first = first;
      this.#last = last;
    }
  }

  async #save(update: LogStorageUpdate, sync: boolean): Promise<void> {
    const ops: Op[] = [];
    let first = this.#first;
    let last = this.#last;
    let snapshotIndex = this.#snapshotIndex;
    let snapshotTerm = this.#snapshotTerm;
    let entries = update.entries ?? [];

    if (update.hardState !== undefined) {
      ops.push({ type: 'put', key: HARD_STATE_KEY, value: withCrc(encodeHardState(update.hardState)) });
    }

    const snapshot = update.snapshot;
    if (snapshot !== undefined) {
      const { index, term } = snapshot.metadata;
      checkSnapshotNotOlder(index, snapshotIndex);
      let keepAbove = index === snapshotIndex && term === snapshotTerm;
      if (!keepAbove && index >= first && index <= last) {
        keepAbove = (await this.#storedTerm(index)) === term;
      }
      ops.push({ type: 'put', key: SNAPSHOT_KEY, value: withCrc(encodeSnapshot(snapshot)) });
      const dropTo = keepAbove ? Math.min(index, last) : last;
      for (let i = first; i <= dropTo; i++) ops.push({ type: 'del', key: entryKey(i) });
      if (keepAbove) {
        first = Math.max(first, index + 1);
      } else {
        first = index + 1;
        last = index;
      }
      snapshotIndex = index;
      snapshotTerm = term;
      if (entries.length > 0 && entries[0]!.index <= index) entries = entries.filter((e) => e.index > index);
    }

    if (entries.length > 0) {
      const lo = entries[0]!.index;
      const hi = entries[entries.length - 1]!.index;
      const empty = last < first;
      const tail = empty ? snapshotIndex : Math.max(last, snapshotIndex);
      checkNoGap(lo, tail);
      for (const e of entries) ops.push({ type: 'put', key: entryKey(e.index), value: withCrc(encodeEntry(e)) });
      if (!empty) {
        for (let i = Math.max(hi + 1, first); i <= last; i++) ops.push({ type: 'del', key: entryKey(i) });
      }
      if (empty || lo < first) first = lo;
      last = hi;
    }

    // the stored commit too, when the update brings none: entries or a
    // snapshot that replace committed entries would leave a log that no
    // longer loads (its commit beyond its last index)
    checkCommitWithin(update.hardState?.commit ?? this.#commit, last < first ? snapshotIndex : Math.max(last, snapshotIndex));

    if (ops.length === 0) return;
    const only = ops.length === 1 ? ops[0]! : undefined;
    // a single record (one entry alone, say) as a put: the same write to
    // LevelDB's log, with less work in abstract-level than a batch of one
    if (only?.type === 'put') await putPrepared(this.db, only.key, only.value, sync);
    else await writePrepared(this.db, ops, sync);
    this.#first = first;
    this.#last = last;
    this.#snapshotIndex = snapshotIndex;
    this.#snapshotTerm = snapshotTerm;
    if (update.hardState !== undefined) this.#commit = update.hardState.commit;
  }

  /** Term of the stored entry at `index`, or `undefined` when missing or unreadable. */
  async #storedTerm(index: number): Promise<number | undefined> {
    const rec = (await this.db.get(entryKey(index), VIEW)) as Uint8Array | undefined;
    if (rec === undefined) return undefined;
    try {
      return decodeEntryRecord(rec, index).term;
    } catch {
      return undefined;
    }
  }

  async #load(): Promise<LoadedLogState> {
    const hsRec = (await this.db.get(HARD_STATE_KEY, VIEW)) as Uint8Array | undefined;
    let hardState: HardState = emptyHardState();
    if (hsRec !== undefined) {
      try {
        hardState = decodeHardState(checkCrc(hsRec, 'HardState'));
      } catch (err) {
        throw new FaultError(ErrorCode.CORRUPT_LOG, `HardState record is corrupt: ${reason(err)}`, { cause: err });
      }
    }

    const snapRec = (await this.db.get(SNAPSHOT_KEY, VIEW)) as Uint8Array | undefined;
    let snapshot: Snapshot | undefined;
    if (snapRec !== undefined) {
      try {
        snapshot = decodeSnapshotRecord(snapRec);
      } catch (err) {
        throw new FaultError(ErrorCode.CORRUPT_SNAPSHOT, `snapshot record is corrupt: ${reason(err)}`, {
          cause: err,
        });
      }
    }
    const base = snapshot?.metadata.index ?? 0;
    let prevTerm = snapshot?.metadata.term ?? 0;

    const entries: Entry[] = [];
    /** Indexes of the corrupt entries seen since the last valid one (a torn tail candidate). */
    const corrupt: number[] = [];
    let firstCorruptReason = '';
    let expect = base + 1;
    const it = this.db.iterator({ gt: entryKey(base), lt: ENTRY_KEY_END, ...VIEW });
    try {
      for (;;) {
        const chunk = (await it.nextv(LOAD_CHUNK)) as Array<[Uint8Array, Uint8Array]>;
        if (chunk.length === 0) break;
        for (const [key, value] of chunk) {
          const index = entryIndexOf(key);
          if (index === undefined) {
            throw new FaultError(ErrorCode.CORRUPT_LOG, `malformed entry key after index ${expect - 1}`);
          }
          if (index !== expect) {
            throw new FaultError(
              ErrorCode.CORRUPT_LOG,
              `log has a gap: entry ${expect} is missing (the next stored entry is ${index})`,
            );
          }
          expect++;
          let entry: Entry;
          try {
            entry = decodeEntry(checkCrc(value, `entry ${index}`));
          } catch (err) {
            if (corrupt.length === 0) firstCorruptReason = reason(err);
            corrupt.push(index);
            continue;
          }
          if (corrupt.length > 0) {
            throw new FaultError(
              ErrorCode.CORRUPT_LOG,
              `entry ${corrupt[0]} is corrupt (${firstCorruptReason}) and is followed by the valid entry ${index}`,
            );
          }
          if (entry.index !== index) {
            throw new FaultError(ErrorCode.CORRUPT_LOG, `entry ${index} is stored with index ${entry.index}`);
          }
          if (entry.term < prevTerm) {
            throw new FaultError(
              ErrorCode.CORRUPT_LOG,
              `entry ${index} has term ${entry.term}, below the term ${prevTerm} before it`,
            );
          }
          prevTerm = entry.term;
          entries.push(entry);
        }
      }
    } finally {
      await it.close();
    }

    if (corrupt.length > 0) {
      const from = corrupt[0]!;
      if (from <= hardState.commit) {
        throw new FaultError(
          ErrorCode.CORRUPT_LOG,
          `entry ${from} is corrupt (${firstCorruptReason}) at or below the commit index ${hardState.commit}`,
        );
      }
      const to = corrupt[corrupt.length - 1]!;
      log(
        'warning: dropping a torn log tail, entries %d..%d (above the commit index %d): %s',
        from,
        to,
        hardState.commit,
        firstCorruptReason,
      );
      await writePrepared(
        this.db,
        corrupt.map((i): Op => ({ type: 'del', key: entryKey(i) })),
        true,
      );
    }

    const lastIndex = entries.length > 0 ? entries[entries.length - 1]!.index : base;
    if (hardState.commit > lastIndex) {
      throw new FaultError(
        ErrorCode.CORRUPT_LOG,
        `HardState commit ${hardState.commit} is beyond the last entry ${lastIndex}: committed entries are missing`,
      );
    }

    this.#snapshotIndex = base;
    this.#snapshotTerm = snapshot?.metadata.term ?? 0;
    this.#commit = hardState.commit;
    await this.#readBounds(false);
    return { hardState, snapshot, entries };
  }
}

function decodeSnapshotRecord(rec: Uint8Array): Snapshot {
  return decodeSnapshot(checkCrc(rec, 'snapshot', ErrorCode.CORRUPT_SNAPSHOT));
}

function decodeEntryRecord(rec: Uint8Array, index: number): Entry {
  return decodeEntry(checkCrc(rec, `entry ${index}`));
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Passes quorumkv errors through; a closed database becomes `STORAGE_CLOSED`, anything else `STORAGE_IO`. */
function ioError(err: unknown, message: string): unknown {
  if (isQuorumError(err)) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'LEVEL_DATABASE_NOT_OPEN') {
    return new FaultError(ErrorCode.STORAGE_CLOSED, 'the database of the log storage is not open', { cause: err });
  }
  return new FaultError(ErrorCode.STORAGE_IO, `${message}: ${reason(err)}`, { cause: err });
}
