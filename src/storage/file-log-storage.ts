/**
 * {@link FileLogStorage}: the {@link LogStorage} of a Raft node as a
 * write-ahead log in plain files, the layout of etcd's WAL: preallocated
 * segment files that records are written into, and snapshot files beside
 * them.
 * @module
 */
import { constants as FS, promises as fsp } from 'node:fs';
import * as fs from 'node:fs';
import { dirname, join } from 'node:path';
import { fsyncDir, fsyncMadeDirs, writeFully } from './durable-fs.js';
import { ClassicLevel } from 'classic-level';
import createDebug from 'debug';
import {
  checkCrc,
  crc32,
  decodeSnapshot,
  encodeSnapshot,
  keptEntryFromTuple,
  entryToTuple,
  pack,
  unpack,
  withCrc,
} from '../codec/index.js';
import { checkOptionKeys } from '../option-keys.js';
import { ErrorCode, FaultError, UsageError, isQuorumError } from '../errors.js';
import { describeValue } from '../arg-values.js';
import { emptyHardState, type ConfState, type Entry, type HardState, type Snapshot, type SnapshotMetadata } from '../raftpb/index.js';
import { checkCommitWithin, checkCompactCovered, checkCompactIndex, checkNoGap, checkSaveOptions, checkSnapshotNotOlder, checkUpdate } from './checks.js';
import type {
  LoadedLogState,
  LogStorage,
  LogStorageSaveOptions,
  LogStorageStatus,
  LogStorageUpdate,
} from './log-storage.js';

const log = createDebug('quorumkv:storage');

/** How to open a {@link FileLogStorage}. */
export interface FileLogStorageOptions {
  /** Directory of the log (created if missing); the storage owns everything in it. */
  dir: string;
  /**
   * Bytes each segment file is preallocated to, written with zeros before
   * it is used (default 8 MiB, at least 64 KiB). A record larger than a
   * segment goes alone into a new segment, which grows to hold it.
   */
  segmentBytes?: number;
  /**
   * Synced appends of at most this many bytes (a record with its header)
   * are written on the calling thread, a blocking `writeSync` on the
   * `O_DSYNC` descriptor; larger ones go through libuv's thread pool.
   * Default 64 KiB; 0 sends every append through the thread pool. On the
   * reference machine (a 2-core VM) the round trip through the pool (a
   * worker's wakeup, then the main thread's) cost about 100 µs and had a
   * long tail, more than the write itself: a `KvNode` member took 4,100-4,600
   * one-at-a-time puts per second with it, 7,500 without (docs/performance.md).
   * The event loop waits for such a write (110-250 µs on that disk), and
   * the save then resolves after one turn of the event loop
   * (`setImmediate`), so that timers and I/O still run between writes. An
   * append on the calling thread that takes over 20 ms (a stalled disk)
   * sends the appends of the next second through the pool, so that a disk
   * stall does not stop the event loop, and with it a leader's heartbeats.
   *
   * This holds only while the storage is the one open `FileLogStorage` of
   * the process. With several open (the members of a cluster run in one
   * process, as in tests and benchmarks), every append goes through the
   * pool: on the calling thread each member's write would wait for the
   * others' one after another, whereas through the pool they overlap on
   * the disk (three members in one process, one put at a time: about 1.3×
   * the puts per second, docs/performance.md).
   */
  inlineWriteBytes?: number;
}

/** Default preallocated size of a segment: 8 MiB. */
export const DEFAULT_SEGMENT_BYTES = 8 * 1024 * 1024;
/** Default largest synced append written on the calling thread: 64 KiB. */
export const DEFAULT_INLINE_WRITE_BYTES = 64 * 1024;
/** An append on the calling thread slower than this (ms) sends the next ones through the pool... */
const SLOW_INLINE_MS = 20;
/** ...for this long (ms). */
const POOL_AFTER_SLOW_MS = 1_000;
const MIN_SEGMENT_BYTES = 64 * 1024;
const ZEROS = Buffer.alloc(256 * 1024);
/** Open storages of this process: appends are written on the calling thread only while there is one. */
let openStorages = 0;
/** Pause (ms) between two preallocated chunks of the next segment while the current one has room. */
const PACE_MS = 10;
/** Record header: payload length (u32 LE, never 0) and CRC-32 of the payload (u32 LE). */
const HEADER = 8;
/** First record of every segment: the HardState and snapshot as they were when it began. */
const KIND_START = 1;
/** The record of one {@link FileLogStorage.save} without `sync`. */
const KIND_SAVE = 2;
/**
 * The record of one synced save. Durable when its save returned, and only
 * after every byte before it (see the durability rule): a gap before it
 * on load is damage, not a crash's torn write.
 */
const KIND_SAVE_SYNCED = 3;

/**
 * Directories held open by a storage of this thread (a second open is
 * refused). Kept on the global object, so that two copies of this module in
 * one thread (an ES module and a CommonJS build, say) share it: a second
 * open must never reach the LevelDB lock (see `#lock`). A worker has a
 * global object, and so a set, of its own: see `LOCK` in {@link FileLogStorage}.
 */
const openDirs: Set<string> = ((globalThis as Record<symbol, unknown>)[Symbol.for('quorumkv.fileLogStorage.openDirs')] ??= new Set<string>()) as Set<string>;

interface Segment {
  seq: number;
  path: string;
  /** Highest entry index written into it (0 when none). */
  maxIndex: number;
  /** Whether it begins with a durable start record (the segments before it may then go). */
  started: boolean;
}

type MetaTuple = [number, number, [string[], string[]]];

/** One decoded record. */
interface WalRecord {
  kind: number;
  hardState: HardState | undefined;
  snapshot: SnapshotMetadata | undefined;
  /** Whether the snapshot kept the entries above it (decided when it was saved). */
  keepAbove: boolean;
  entries: Entry[];
}

/** What the log holds, as replayed from the records or kept up to date by saves. */
class LogState {
  hardState: HardState = emptyHardState();
  snapshot: SnapshotMetadata | undefined;
  first = 1;
  last = 0;
  /** Terms of the entries `first..last`. */
  terms: number[] = [];
  /** The entries themselves, kept only while loading. */
  entries: Entry[] | undefined;

  get snapIndex(): number {
    return this.snapshot?.index ?? 0;
  }

  termAt(i: number): number | undefined {
    return i >= this.first && i <= this.last ? this.terms[i - this.first] : undefined;
  }

  /** The last index of the log (the snapshot's when it holds no entry). */
  lastIndex(): number {
    return this.last < this.first ? this.snapIndex : Math.max(this.last, this.snapIndex);
  }

  keepsAbove(meta: SnapshotMetadata): boolean {
    return (meta.index === this.snapIndex && meta.term === (this.snapshot?.term ?? 0)) || this.termAt(meta.index) === meta.term;
  }

  /**
   * Applies a snapshot (Raft §7, InstallSnapshot rules 6 and 7): entries at or
   * below it go; those above stay when `keepAbove` (the log held its last entry).
   */
  applySnapshot(meta: SnapshotMetadata, keepAbove: boolean): void {
    if (keepAbove && meta.index < this.last) {
      this.dropThrough(meta.index);
    } else {
      this.first = meta.index + 1;
      this.last = meta.index;
      this.terms = [];
      if (this.entries !== undefined) this.entries = [];
    }
    this.snapshot = meta;
  }

  /** Drops the entries up to and including `index`. */
  dropThrough(index: number): void {
    if (index < this.first) return;
    const n = Math.min(index, this.last) - this.first + 1;
    this.terms.splice(0, n);
    this.entries?.splice(0, n);
    this.first = index + 1;
    if (this.last < index) this.last = index;
  }

  /** Appends contiguous entries, replacing the stored ones from their first index on. */
  append(entries: readonly Entry[]): void {
    let list = entries;
    const floor = this.snapIndex;
    if (list.length > 0 && list[0]!.index <= floor) list = list.filter((e) => e.index > floor);
    if (list.length === 0) {
      // all at or below the snapshot: as in LevelLogStorage, the stored
      // entries after the last of them go (Raft does not make such an update)
      if (entries.length > 0 && this.last >= this.first) {
        this.first = floor + 1;
        this.last = floor;
        this.terms = [];
        if (this.entries !== undefined) this.entries = [];
      }
      return;
    }
    const lo = list[0]!.index;
    if (this.last < this.first) {
      this.first = lo;
      this.terms = [];
      if (this.entries !== undefined) this.entries = [];
    } else if (lo < this.first) {
      this.first = lo;
      this.terms = [];
      if (this.entries !== undefined) this.entries = [];
    } else {
      if (lo > this.last + 1) throw new FaultError(ErrorCode.CORRUPT_LOG, `log has a gap: entries ${this.last + 1}..${lo - 1} are missing`);
      this.terms.length = lo - this.first;
      if (this.entries !== undefined) this.entries.length = lo - this.first;
    }
    for (const e of list) {
      this.terms.push(e.term);
      this.entries?.push(e);
    }
    this.last = list[list.length - 1]!.index;
  }

  apply(r: { hardState?: HardState | undefined; snapshot?: SnapshotMetadata | undefined; keepAbove: boolean; entries?: readonly Entry[] }): void {
    if (r.hardState !== undefined) this.hardState = r.hardState;
    if (r.snapshot !== undefined) this.applySnapshot(r.snapshot, r.keepAbove);
    if (r.entries !== undefined && r.entries.length > 0) this.append(r.entries);
  }
}

/**
 * A {@link LogStorage} in files, as etcd keeps its WAL: the Raft log is a
 * sequence of records written into segment files under `dir`, each segment
 * preallocated with zeros before use, so that a synced append changes no
 * file metadata and costs one data write (`O_DSYNC`) instead of a write and
 * an fsync of a growing file (etcd's `wal` package preallocates its segments
 * for the same reason). On a shared virtual disk, such an append took
 * 105-145 µs at the median against 190-220 µs for a synced classic-level
 * put (docs/performance.md).
 *
 * Layout:
 * - `wal/<seq>.wal`: segments, `seq` as 16 hex digits. A record is
 *   `[length u32 LE][CRC-32 u32 LE][payload]` (msgpack); a zero length ends
 *   the segment's records. Every segment begins with a record of the
 *   HardState and snapshot metadata of that moment, so the segments before
 *   it can be deleted once the log is compacted past them; each `save()` is
 *   one record (HardState, snapshot metadata, entries), written in one
 *   positional write, so a save is atomic: a record that fails its CRC is
 *   not replayed.
 * - `snap/<index>-<term>.snap`: a snapshot (metadata and data, with a
 *   CRC-32), written to a temporary name, fsynced, renamed and the directory
 *   fsynced before the record naming it is written. Older snapshot files
 *   are deleted once a synced record follows the newer one.
 * - `lock.db/`: a LevelDB database (classic-level) opened only for its lock,
 *   an operating-system lock (`fcntl` on POSIX, a file opened without
 *   sharing on Windows) that the system releases when the process ends,
 *   however it ends: another process opening the log is refused, and
 *   nothing is ever stale. A second storage of this thread is refused
 *   before it gets there.
 * - `LOCK`: the holder's process id (on Linux with its boot id and start
 *   time, and the holding thread's id and start time), for the refusal's
 *   message; on Linux it also refuses another thread of the holder's
 *   process (a worker) that opens the log while the holding thread lives.
 *   Open a log from one thread of a process: elsewhere, or when two threads
 *   open it at the same moment, the second reaches LevelDB's lock too,
 *   whose refusal on POSIX drops the process's lock (its `fcntl` locks go
 *   with any descriptor of the file that the process closes).
 *
 * Durability: a synced save is written with `O_DSYNC` when nothing unsynced
 * was written before it, else written and followed by `fdatasync`, so that
 * a synced record never survives a crash that lost an earlier one. Where
 * the platform has no `O_DSYNC` (Windows), every synced save is a write
 * and an `fdatasync`. A
 * synced append of up to `inlineWriteBytes` is written on the calling
 * thread while this is the only open `FileLogStorage` of the process (see
 * {@link FileLogStorageOptions.inlineWriteBytes}). An open fsyncs the last
 * segment, `wal/` and the log's directory before anything is appended: a
 * process killed before its own fsyncs left what it wrote, and the names
 * it made, in the page cache only.
 *
 * Recovery on {@link load} (etcd's WAL rules):
 * - a record that fails its CRC or its decode in a segment other than the
 *   last, or followed by a valid record but for the torn write below:
 *   `QUORUMKV_CORRUPT_LOG`;
 * - a bad record in the last segment after which no valid record (bytes
 *   that pass their CRC and decode as a record: a frame inside an entry's
 *   data is none) starts at any byte offset, or after which no durable
 *   record starts (a synced save with another record after it) and that
 *   lost a whole 512-byte
 *   sector (aligned zeros: an unsynced record a crash tore while the saves
 *   after it reached the disk) and whose own bytes do not say it is a
 *   synced save (one with a record after it returned, and an aligned
 *   sector of zeros in it is its data): a torn write (the save that wrote it never
 *   returned, or was not synced), zeroed with everything after it and the
 *   zeroing fsynced, with a warning on
 *   `quorumkv:storage`. As with etcd, a synced record whose bytes were later
 *   damaged at the very end of the log cannot be told from a torn write;
 *   `RaftNode` then refuses to start if its state machine applied entries
 *   the log no longer has;
 * - bytes past the last record of the last segment (a crash kept a later
 *   unsynced write and lost an earlier one): zeroed, so that they are never
 *   replayed once new records reach them; but a durable record among them
 *   (a start record or a synced save with a record after it: its save
 *   returned, and it never outlives an earlier lost write), or any bytes
 *   past the last record of an earlier segment:
 *   `QUORUMKV_CORRUPT_LOG`, as is a segment whose start record differs
 *   from the state the records before it give;
 * - every repair is made only after the whole log checked out;
 * - a gap between the snapshot and the entries, or terms that decrease:
 *   `QUORUMKV_CORRUPT_LOG`; a HardState commit beyond the last entry:
 *   `QUORUMKV_CORRUPT_LOG` (committed entries were lost);
 * - a missing or corrupt snapshot file: `QUORUMKV_CORRUPT_SNAPSHOT`.
 *
 * @example
 * ```ts
 * const storage = await FileLogStorage.open({ dir: '/var/lib/app/wal' });
 * const { hardState, snapshot, entries } = await storage.load();
 * await storage.save({ hardState: rd.hardState, entries: rd.entries }, { sync: rd.mustSync });
 * ```
 */
export class FileLogStorage implements LogStorage {
  /** The directory of the log. */
  readonly dir: string;
  readonly #segmentBytes: number;
  readonly #inlineWriteBytes: number;
  readonly #walDir: string;
  readonly #snapDir: string;
  #status: LogStorageStatus = 'opening';
  #closing: Promise<void> | undefined;
  /** Tail of the write queue; never rejects. */
  #queue: Promise<void> = Promise.resolve();
  /** A failed write leaves the end of the log unknown: every later call fails. */
  #failure: FaultError | undefined;
  #state = new LogState();
  /** The replayed state handed out by the first {@link load} (until a write changes the log). */
  #loaded: LoadedLogState | undefined;
  #segments: Segment[] = [];
  /** Descriptors of the last segment: plain, and with `O_DSYNC`. */
  #fd = -1;
  #fdSync = -1;
  /** Where the next record goes in the last segment. */
  #offset = 0;
  /** Whether unsynced bytes were written to the last segment since its last sync. */
  #dirty = false;
  /** Until when (performance.now() ms) appends go through the pool after a slow one on the calling thread. */
  #poolUntil = 0;
  /** The next segment, being preallocated, and its temporary path. */
  #next: Promise<string> | undefined;
  #nextPath = '';
  /** Snapshot index of the last synced write; older snapshot files may go. */
  #durableSnapIndex = 0;
  #snapFilesUpTo = 0;

  private constructor(dir: string, segmentBytes: number, inlineWriteBytes: number) {
    this.dir = dir;
    this.#segmentBytes = segmentBytes;
    this.#inlineWriteBytes = inlineWriteBytes;
    this.#walDir = join(dir, 'wal');
    this.#snapDir = join(dir, 'snap');
  }

  /**
   * Opens (or creates) the log in `options.dir` and replays it; see the
   * class documentation for the recovery rules.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for a missing `dir`, a
   *   `segmentBytes` that is not an integer of at least 64 KiB, or an
   *   `inlineWriteBytes` that is not a non-negative integer, or an option
   *   of another name
   * @throws FaultError `QUORUMKV_STORAGE_IO` when the directory cannot be
   *   used or another process (or storage) holds it; `QUORUMKV_CORRUPT_LOG`,
   *   `QUORUMKV_CORRUPT_SNAPSHOT` as {@link load}
   */
  static async open(options: FileLogStorageOptions): Promise<FileLogStorage> {
    if (options === null || typeof options !== 'object' || typeof options.dir !== 'string' || options.dir === '') {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'FileLogStorage.open needs a dir');
    }
    checkOptionKeys(options, ['dir', 'segmentBytes', 'inlineWriteBytes'] satisfies (keyof FileLogStorageOptions)[], 'FileLogStorage.open options', ErrorCode.INVALID_ARGUMENT);
    const segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    if (!Number.isSafeInteger(segmentBytes) || segmentBytes < MIN_SEGMENT_BYTES) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `segmentBytes must be an integer of at least ${MIN_SEGMENT_BYTES}, got ${describeValue(segmentBytes)}`);
    }
    const inlineWriteBytes = options.inlineWriteBytes ?? DEFAULT_INLINE_WRITE_BYTES;
    if (!Number.isSafeInteger(inlineWriteBytes) || inlineWriteBytes < 0) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `inlineWriteBytes must be a non-negative integer, got ${describeValue(inlineWriteBytes)}`);
    }
    const storage = new FileLogStorage(options.dir, segmentBytes, inlineWriteBytes);
    let locked = false;
    try {
      const made = await fsp.mkdir(storage.#walDir, { recursive: true });
      await fsp.mkdir(storage.#snapDir, { recursive: true });
      // the new directories' entries must outlive a power loss with the log:
      // each is in its parent, so every directory from the log's own up to
      // the parent of the first one made is fsynced. The log's own is
      // fsynced at every open: a process killed after it made wal/ and
      // snap/, before its fsync, left their entries in the page cache only,
      // and the records appended from now on would go with them.
      if (made !== undefined) await fsyncMadeDirs(options.dir, made);
      else await fsyncDir(options.dir);
      await storage.#lock();
      locked = true;
      storage.#loaded = await storage.#replay();
    } catch (err) {
      storage.#status = 'closed';
      try {
        storage.#closeFds();
      } catch {
        // the open's own error is the one to report
      }
      if (locked) await storage.#unlock();
      if (isQuorumError(err)) throw err;
      throw new FaultError(ErrorCode.STORAGE_IO, `cannot open the log storage in ${options.dir}: ${reason(err)}`, { cause: err });
    }
    storage.#status = 'open';
    openStorages++;
    return storage;
  }

  /** Current lifecycle state. */
  get status(): LogStorageStatus {
    return this.#status;
  }

  /**
   * The HardState, the snapshot and the entries after it, as replayed from
   * the files (see the class documentation for the recovery rules).
   * @throws FaultError `QUORUMKV_CORRUPT_LOG`, `QUORUMKV_CORRUPT_SNAPSHOT`,
   *   `QUORUMKV_STORAGE_CLOSED`, `QUORUMKV_STORAGE_IO`
   */
  async load(): Promise<LoadedLogState> {
    this.#assertOpen();
    return this.#enqueue(async () => {
      let loaded = this.#loaded;
      if (loaded === undefined) {
        try {
          loaded = await this.#replay();
        } catch (err) {
          // the files are closed and the state is gone: nothing can be written now
          this.#failure = ioError(err, 'cannot replay the log') as FaultError;
          throw this.#failure;
        }
      }
      this.#loaded = undefined;
      return loaded;
    });
  }

  /**
   * Appends `update` as one record, durable before it resolves when
   * `options.sync` (see {@link LogStorage.save}). Entries replace the stored
   * ones from the first new index on, and stored entries beyond the last new
   * one are dropped. A snapshot drops the entries at or below its index; the
   * entries above it are kept only when the log holds the snapshot's last
   * entry (same index and term) or the stored snapshot is the same one
   * (Raft §7, InstallSnapshot receiver rules 6 and 7). New entries at or
   * below the snapshot's index in the same update are ignored. The
   * snapshot's data is written to its own file first.
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
   * Drops the entries up to and including `index` from the log, and deletes
   * the segment files that hold nothing else (not synced: a crash before the
   * deletion leaves entries that load ignores below the snapshot, Raft §7).
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `index` is not a
   *   non-negative safe integer or is above the stored snapshot's index
   * @throws FaultError `QUORUMKV_STORAGE_CLOSED`, `QUORUMKV_STORAGE_IO`
   */
  async compact(index: number): Promise<void> {
    this.#assertOpen();
    checkCompactIndex(index);
    return this.#enqueue(async () => {
      const s = this.#state;
      checkCompactCovered(index, s.snapIndex);
      if (index >= s.first) s.dropThrough(Math.min(index, s.last));
      await this.#releaseSegments(Math.min(index, this.#durableSnapIndex));
    });
  }

  /**
   * Deletes the oldest segments while each of them, and every one before
   * it, holds no entry above `bound` and the segment after it begins with a
   * durable start record: the segments left then replay to the same log.
   * `bound` must be at or below a snapshot named by a synced record. The
   * deletions are made durable one at a time, in order (see the body).
   */
  async #releaseSegments(bound: number): Promise<void> {
    const segs = this.#segments;
    let drop = 0;
    while (drop < segs.length - 1 && segs[drop]!.maxIndex <= bound && segs[drop + 1]!.started) drop++;
    if (drop === 0) return;
    const gone = segs.splice(0, drop);
    // oldest first, each deletion fsynced before the next: POSIX orders no
    // update of a directory before its fsync, and a power loss that kept
    // the deletion of a later segment and not of an earlier one would leave
    // a gap in the sequence, which the next open refuses
    for (const seg of gone) {
      await fsp.rm(seg.path, { force: true });
      await fsyncDir(this.#walDir);
    }
  }

  /** Waits for queued writes, then closes the files and releases the directory. Idempotent. */
  async close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    if (this.#status === 'open') openStorages--;
    this.#status = 'closing';
    this.#closing = (async () => {
      await this.#queue;
      try {
        const next = this.#next;
        this.#next = undefined;
        if (next !== undefined) {
          // it gives up at its next chunk now that the status is not 'open'
          await next.catch(() => undefined);
          await fsp.rm(this.#nextPath, { force: true }).catch(() => undefined);
        }
        try {
          this.#closeFds();
        } finally {
          await this.#unlock();
        }
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

  /** Runs `task` after every earlier queued task; file errors become typed errors. */
  #enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue
      .then(() => {
        if (this.#failure !== undefined) throw this.#failure;
        return task();
      })
      .catch(rethrowAsIoError);
    this.#queue = run.then(ignore, ignore);
    return run;
  }

  async #save(update: LogStorageUpdate, sync: boolean): Promise<void> {
    const s = this.#state;
    const snapshot = update.snapshot;
    let entries = update.entries ?? [];
    // validate against a copy of the bounds; nothing is written on a refusal
    let first = s.first;
    let last = s.last;
    let snapIndex = s.snapIndex;
    let keepAbove = false;
    if (snapshot !== undefined) {
      const { index } = snapshot.metadata;
      checkSnapshotNotOlder(index, snapIndex);
      keepAbove = s.keepsAbove(snapshot.metadata);
      if (keepAbove && index < last) {
        first = Math.max(first, index + 1);
      } else {
        first = index + 1;
        last = index;
      }
      snapIndex = index;
      if (entries.length > 0 && entries[0]!.index <= index) entries = entries.filter((e) => e.index > index);
    }
    if (entries.length > 0) {
      const lo = entries[0]!.index;
      checkNoGap(lo, last < first ? snapIndex : Math.max(last, snapIndex));
      if (last < first || lo < first) first = lo;
      last = entries[entries.length - 1]!.index;
    }
    // the stored commit too, when the update brings none: entries or a
    // snapshot that replace committed entries would leave a log that no
    // longer loads (its commit beyond its last index)
    checkCommitWithin(update.hardState?.commit ?? s.hardState.commit, last < first ? snapIndex : Math.max(last, snapIndex));
    if (update.hardState === undefined && snapshot === undefined && entries.length === 0) return;

    if (snapshot !== undefined) await this.#writeSnapshotFile(snapshot);
    const payload = pack([
      sync ? KIND_SAVE_SYNCED : KIND_SAVE,
      update.hardState === undefined ? null : hardStateTuple(update.hardState),
      snapshot === undefined ? null : metaTuple(snapshot.metadata),
      entries.map(entryToTuple),
      keepAbove,
    ]);
    this.#loaded = undefined;
    try {
      await this.#append(frame(payload), sync, entries.length > 0 ? entries[entries.length - 1]!.index : 0);
    } catch (err) {
      this.#failure = ioError(err, 'cannot write to the log') as FaultError;
      throw this.#failure;
    }
    s.apply({ hardState: update.hardState, snapshot: snapshot?.metadata, keepAbove, entries });
    if (sync) await this.#synced();
  }

  /** Writes a framed record at the end of the log, starting a new segment when it does not fit. */
  async #append(rec: Uint8Array, sync: boolean, maxIndex: number): Promise<void> {
    if (this.#offset > 0 && this.#offset + rec.length > this.#segmentBytes) await this.#roll();
    const seg = this.#segments[this.#segments.length - 1]!;
    if (this.#offset === 0) {
      // every segment begins with the state of the moment, durably: the
      // segments before it may then be deleted (a torn first write is
      // zeroed on load, and the next write here begins it again)
      const start = frame(this.#startPayload());
      const both = new Uint8Array(start.length + rec.length);
      both.set(start, 0);
      both.set(rec, start.length);
      rec = both;
      sync = true;
    }
    const at = this.#offset;
    if (sync && !this.#dirty && this.#fdSync >= 0) {
      if (rec.length <= this.#inlineWriteBytes && openStorages === 1 && performance.now() >= this.#poolUntil) {
        const started = performance.now();
        writeAtSync(this.#fdSync, rec, at);
        const took = performance.now() - started;
        if (took > SLOW_INLINE_MS) {
          // a stalled disk would stall the event loop (heartbeats, timers,
          // I/O) with it: go through the pool for a while
          this.#poolUntil = performance.now() + POOL_AFTER_SLOW_MS;
          log('an append on the calling thread took %d ms: appends go through the thread pool for %d ms', Math.round(took), POOL_AFTER_SLOW_MS);
        }
        // one turn of the event loop, as a write through the pool gives:
        // without it, a caller awaiting one write after another in
        // promise callbacks alone would starve timers and I/O
        await new Promise((resolve) => setImmediate(resolve));
      } else {
        await writeAt(this.#fdSync, rec, at);
      }
    } else {
      await writeAt(this.#fd, rec, at);
      if (sync) await fdatasync(this.#fd);
      this.#dirty = !sync;
    }
    this.#offset = at + rec.length;
    seg.started = true;
    if (maxIndex > seg.maxIndex) seg.maxIndex = maxIndex;
    if (this.#next === undefined && this.#offset > this.#segmentBytes / 2) this.#prepareNext();
  }

  /** Closes the last segment (synced) and opens the next one, preallocated. */
  async #roll(): Promise<void> {
    if (this.#dirty) await fdatasync(this.#fd);
    this.#dirty = false;
    const seq = this.#segments[this.#segments.length - 1]!.seq + 1;
    let tmp: string | undefined;
    if (this.#next !== undefined) tmp = await this.#next.catch(() => undefined);
    this.#next = undefined;
    tmp ??= await preallocate(join(this.#walDir, `${hex(seq)}.wal.tmp`), this.#segmentBytes);
    const path = join(this.#walDir, `${hex(seq)}.wal`);
    await fsp.rename(tmp, path);
    await fsyncDir(this.#walDir);
    this.#closeFds();
    this.#openFds(path);
    this.#segments.push({ seq, path, maxIndex: 0, started: false });
    this.#offset = 0;
  }

  #prepareNext(): void {
    const seq = this.#segments[this.#segments.length - 1]!.seq + 1;
    // paced while the last segment is less than 3/4 full: a burst of zeros
    // on the disk would delay the synced appends behind it
    this.#nextPath = join(this.#walDir, `${hex(seq)}.wal.tmp`);
    const next = preallocate(
      this.#nextPath,
      this.#segmentBytes,
      () => this.#offset < (this.#segmentBytes * 3) / 4,
      () => this.#status !== 'open',
    );
    next.catch((err: unknown) => log('preallocating segment %d failed (retried at the roll): %s', seq, reason(err)));
    this.#next = next;
  }

  #startPayload(): Uint8Array {
    const s = this.#state;
    return pack([KIND_START, hardStateTuple(s.hardState), s.snapshot === undefined ? null : metaTuple(s.snapshot), [], false]);
  }

  /**
   * After a synced write: the segments behind the latest snapshot recorded,
   * and the snapshot files older than it, are no longer needed.
   */
  async #synced(): Promise<void> {
    this.#durableSnapIndex = this.#state.snapIndex;
    if (this.#durableSnapIndex <= this.#snapFilesUpTo) return;
    this.#snapFilesUpTo = this.#durableSnapIndex;
    // a saved snapshot drops the entries it covers (LogStorage.save): the
    // segments that hold nothing else go once it is durable
    await this.#releaseSegments(this.#durableSnapIndex);
    try {
      for (const name of await fsp.readdir(this.#snapDir)) {
        const parsed = parseSnapName(name);
        if (parsed !== undefined && parsed.index < this.#durableSnapIndex) await fsp.rm(join(this.#snapDir, name), { force: true });
      }
    } catch (err) {
      // the save itself is durable; an old file left behind is deleted after the next snapshot
      log('cannot delete old snapshot files: %s', reason(err));
    }
  }

  async #writeSnapshotFile(snapshot: Snapshot): Promise<void> {
    const name = snapName(snapshot.metadata);
    const path = join(this.#snapDir, name);
    // the same snapshot again (same index and term) replaces the file in one
    // rename: either content goes with a record of that index and term
    const tmp = `${path}.tmp`;
    const fh = await fsp.open(tmp, 'w');
    try {
      await fh.writeFile(withCrc(encodeSnapshot(snapshot)));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, path);
    await fsyncDir(this.#snapDir);
  }

  async #readSnapshotFile(meta: SnapshotMetadata): Promise<Snapshot> {
    const path = join(this.#snapDir, snapName(meta));
    let bytes: Uint8Array;
    try {
      bytes = await fsp.readFile(path);
    } catch (err) {
      throw new FaultError(ErrorCode.CORRUPT_SNAPSHOT, `snapshot file ${snapName(meta)} cannot be read: ${reason(err)}`, { cause: err });
    }
    let snap: Snapshot;
    try {
      snap = decodeSnapshot(checkCrc(bytes, 'snapshot', ErrorCode.CORRUPT_SNAPSHOT));
    } catch (err) {
      throw new FaultError(ErrorCode.CORRUPT_SNAPSHOT, `snapshot file ${snapName(meta)} is corrupt: ${reason(err)}`, { cause: err });
    }
    if (snap.metadata.index !== meta.index || snap.metadata.term !== meta.term) {
      throw new FaultError(ErrorCode.CORRUPT_SNAPSHOT, `snapshot file ${snapName(meta)} holds the snapshot at index ${snap.metadata.index}, term ${snap.metadata.term}`);
    }
    return { metadata: snap.metadata, data: new Uint8Array(snap.data) };
  }

  /**
   * Reads every segment, replays the records and checks the result; zeroes
   * a torn write at the end; leaves the last segment open for appends.
   */
  async #replay(): Promise<LoadedLogState> {
    this.#closeFds();
    if (this.#next !== undefined) {
      await this.#next.catch(() => undefined);
      this.#next = undefined;
    }
    const names = (await fsp.readdir(this.#walDir)).sort();
    for (const name of names) if (name.endsWith('.tmp')) await fsp.rm(join(this.#walDir, name), { force: true });
    for (const name of await fsp.readdir(this.#snapDir)) if (name.endsWith('.tmp')) await fsp.rm(join(this.#snapDir, name), { force: true });
    const segments: Segment[] = [];
    for (const name of names) {
      const m = /^([0-9a-f]{16})\.wal$/.exec(name);
      if (m !== null) segments.push({ seq: parseInt(m[1]!, 16), path: join(this.#walDir, name), maxIndex: 0, started: false });
    }
    for (let i = 1; i < segments.length; i++) {
      if (segments[i]!.seq !== segments[i - 1]!.seq + 1) {
        throw new FaultError(ErrorCode.CORRUPT_LOG, `log segment ${hex(segments[i - 1]!.seq + 1)} is missing`);
      }
    }
    if (segments.length === 0) {
      const path = join(this.#walDir, `${hex(0)}.wal`);
      await fsp.rename(await preallocate(`${path}.tmp`, this.#segmentBytes), path);
      segments.push({ seq: 0, path, maxIndex: 0, started: false });
    }
    // A segment is durable under its name only once wal/ is fsynced after
    // its rename. A process killed between the two (in a roll) left the
    // name in the page cache only: this open sees the segment and appends
    // to it, and a power loss would then take the name back, and with it
    // every record appended since (the next open deletes a .tmp file).
    await fsyncDir(this.#walDir);

    const state = new LogState();
    state.entries = [];
    let offset = 0;
    /** Bytes of the last segment to zero once everything checked out: a torn write, or what a crash left past the end. */
    let repair: { from: number; to: number; why: string } | undefined;
    for (let si = 0; si < segments.length; si++) {
      const seg = segments[si]!;
      const lastSeg = si === segments.length - 1;
      const buf = SegmentFile.open(seg.path);
      try {
        let off = 0;
        for (;;) {
          if (off + HEADER > buf.size) break;
          const len = buf.u32(off);
          if (len === 0) {
            // The end of the records: only zeros may follow, but for what a
            // crash left in the last segment (unsynced writes kept out of
            // order, zeroed below, and the last write, a synced one whose
            // fdatasync never returned, written back before an earlier
            // unsynced one). A synced record with another record after it
            // (its save returned: everything before it was durable), or
            // anything in an earlier segment (fsynced whole before the next
            // began), means the bytes of durable records were lost:
            // refused, not dropped. So does a synced save here whose length
            // alone was lost, with a record after it (see syncedSaveAt).
            const end = buf.lastNonZero() + 1;
            if (end > off && (!lastSeg || buf.durableRecordWithin(off + 1, end) || (buf.syncedSaveAt(off) && buf.recordsWithin(off + 1, end).next().done !== true))) {
              throw new FaultError(
                ErrorCode.CORRUPT_LOG,
                `log segment ${hex(seg.seq)}: the records end at byte ${off}, but ${lastSeg ? 'a synced record and a later one' : 'data'} follow: durable records were damaged`,
              );
            }
            break;
          }
          const rec = readRecord(buf, off, len);
          if (rec instanceof Error) {
            // A torn write (see SegmentFile.tornAt) in the last segment is
            // dropped with everything after it; anything else (a bad record
            // in an earlier segment, or one with a durable record after it)
            // is corruption.
            const end = buf.lastNonZero() + 1;
            if (!lastSeg || !buf.tornAt(off, end)) {
              throw new FaultError(ErrorCode.CORRUPT_LOG, `log segment ${hex(seg.seq)}: the record at byte ${off} is corrupt (${rec.message}) and is not a torn write at the end of the log`);
            }
            repair = { from: off, to: end, why: `a torn write (${rec.message})` };
            break;
          }
          if (off === 0) seg.started = rec.kind === KIND_START;
          if (rec.kind === KIND_START) {
            // the state as this segment began: the base when the segments
            // before it are gone, else what the records before it must give
            if (off === 0 && si > 0 && !sameStart(rec, state)) {
              throw new FaultError(
                ErrorCode.CORRUPT_LOG,
                `log segment ${hex(seg.seq)} begins with HardState ${JSON.stringify(rec.hardState)} and snapshot ${rec.snapshot?.index ?? 0}, ` +
                  `but the segments before it give ${JSON.stringify(state.hardState)} and ${state.snapIndex}: records before it were lost`,
              );
            }
            if (off === 0 && si === 0) {
              state.hardState = rec.hardState ?? state.hardState;
              if (rec.snapshot !== undefined && rec.snapshot.index > state.snapIndex) {
                state.snapshot = rec.snapshot;
                state.first = rec.snapshot.index + 1;
                state.last = rec.snapshot.index;
              }
            }
          } else {
            let max = 0;
            for (const e of rec.entries) if (e.index > max) max = e.index;
            if (max > seg.maxIndex) seg.maxIndex = max;
            state.apply(rec);
          }
          off += HEADER + len;
        }
        if (lastSeg) {
          offset = off;
          // A crash can keep a later unsynced write and lose an earlier one
          // (nothing orders their writeback): bytes past the end of the
          // records would be replayed once new records reach them.
          if (repair === undefined && !buf.allZero(off, buf.size)) repair = { from: off, to: buf.lastNonZero() + 1, why: 'bytes left past the last record' };
        }
      } finally {
        buf.close();
      }
    }

    // the log after the snapshot must be contiguous with non-decreasing terms
    const entries = state.entries!;
    let prevTerm = state.snapshot?.term ?? 0;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (e.index !== state.first + i) throw new FaultError(ErrorCode.CORRUPT_LOG, `log has a gap before entry ${e.index}`);
      if (e.term < prevTerm) throw new FaultError(ErrorCode.CORRUPT_LOG, `entry ${e.index} has term ${e.term}, below the term ${prevTerm} before it`);
      prevTerm = e.term;
    }
    if (entries.length > 0 && state.first > state.snapIndex + 1) {
      throw new FaultError(ErrorCode.CORRUPT_LOG, `log has a gap: entries ${state.snapIndex + 1}..${state.first - 1} are missing`);
    }
    const lastIndex = state.lastIndex();
    if (state.hardState.commit > lastIndex) {
      throw new FaultError(
        ErrorCode.CORRUPT_LOG,
        `HardState commit ${state.hardState.commit} is beyond the last entry ${lastIndex}: committed entries are missing`,
      );
    }
    const snapshot = state.snapshot === undefined ? undefined : await this.#readSnapshotFile(state.snapshot);
    if (repair !== undefined) {
      const last = segments[segments.length - 1]!;
      log('warning: zeroing %s at the end of the log (segment %s, bytes %d..%d)', repair.why, hex(last.seq), repair.from, repair.to);
      await zeroFrom(last.path, repair.from, repair.to);
    }

    state.entries = undefined;
    this.#state = state;
    this.#segments = segments;
    this.#openFds(segments[segments.length - 1]!.path);
    // what was read may have been written by a process that died before its
    // sync: make it durable before anything is decided from it
    await fdatasync(this.#fd);
    this.#offset = offset;
    this.#dirty = false;
    this.#durableSnapIndex = state.snapIndex;
    this.#snapFilesUpTo = 0;
    return { hardState: { ...state.hardState }, snapshot, entries };
  }

  #openFds(path: string): void {
    this.#fd = fs.openSync(path, FS.O_RDWR);
    // without O_DSYNC (Windows), a synced save is a write and an fdatasync
    if (FS.O_DSYNC !== undefined) this.#fdSync = fs.openSync(path, FS.O_RDWR | FS.O_DSYNC);
  }

  /**
   * Closes both descriptors, each once: forgotten before they are closed, as
   * a close that reports an error (EIO) has released the descriptor all the
   * same, and closing it again would close whatever file got its number.
   * @throws the first close error, once both were tried
   */
  #closeFds(): void {
    const fds = [this.#fd, this.#fdSync];
    this.#fd = -1;
    this.#fdSync = -1;
    let failed: unknown;
    for (const fd of fds) {
      if (fd < 0) continue;
      try {
        fs.closeSync(fd);
      } catch (err) {
        failed ??= err;
      }
    }
    if (failed !== undefined) throw failed;
  }

  /** The directory's real path (one directory, however it is spelled), while this storage holds it. */
  #lockPath: string | undefined;
  /** The database whose LevelDB lock holds the directory (see {@link FileLogStorage}, `lock.db/`). */
  #lockDb: ClassicLevel | undefined;

  async #lock(): Promise<void> {
    const real = await fsp.realpath(this.dir);
    const refuse = (why: string, cause?: unknown): never => {
      throw new FaultError(ErrorCode.STORAGE_IO, `cannot open the log storage in ${this.dir}: ${why}`, cause === undefined ? undefined : { cause });
    };
    if (openDirs.has(real)) refuse('it is open in this process');
    // Claimed before the first await: a second open of this thread started
    // meanwhile is refused above. It must never reach the LevelDB lock: a
    // second open of a LevelDB in one process closes a descriptor of its
    // lock file, and with it the first open's lock (POSIX record locks).
    openDirs.add(real);
    try {
      // Another thread of this process (a worker, which has a set of its
      // own) that holds the log has written this process's identity and its
      // own, which name them exactly where they include start times (Linux).
      // A LOCK naming a thread that ended (a worker terminated while it held
      // the log: its database was closed) or this very thread (which holds
      // nothing here, by the set above) is a leftover. Without the thread's
      // part (no /proc/thread-self), any other thread is taken to hold it.
      const named = (await fsp.readFile(join(real, 'LOCK'), 'utf8').catch(() => '')).trim().split(' ');
      if (SELF.includes(' ') && named.slice(0, 3).join(' ') === SELF) {
        const otherThreadLives = named.length === 5 && named.join(' ') !== OWNER && threadStart(named[3]!) === named[4];
        if (named.length === 3 || otherThreadLives) refuse('it is open in another thread of this process');
      }
      const db = new ClassicLevel(join(real, LOCK_DB));
      try {
        await db.open();
      } catch (err) {
        const inner = innermostMessage(err);
        if ((err as { cause?: { code?: string } }).cause?.code === 'LEVEL_LOCKED') {
          if (/already held by process/.test(inner)) {
            refuse('another thread of this process holds it or is opening it (and its lock may now be lost: open a log from one thread of a process)', err);
          }
          // fcntl's EAGAIN or EACCES (POSIX), a sharing violation (Windows)
          if (/Resource temporarily unavailable|Permission denied|being used by another process/.test(inner)) {
            // on Windows another thread of this process is refused so too
            // (POSIX tells this process apart, with "already held" above)
            const pid = await lockHolder(join(real, 'LOCK'), process.platform === 'win32');
            refuse(`${pid === process.pid ? 'another thread of this process' : pid !== undefined ? `process ${pid}` : 'another process'} holds it`, err);
          }
          refuse(`another process holds it, or its file system has no file locks (${inner})`, err);
        }
        refuse(`cannot open ${LOCK_DB}/, a LevelDB database kept only for its lock (it holds no data: if it is damaged, delete it while no process has the log open): ${inner}`, err);
      }
      this.#lockDb = db;
      this.#lockPath = real;
    } catch (err) {
      openDirs.delete(real);
      throw err;
    }
    try {
      // who holds it, for the message of a refused open (written in place:
      // one read half written only names no one)
      await fsp.writeFile(join(real, 'LOCK'), `${OWNER}\n`);
    } catch (err) {
      await this.#unlock();
      throw err;
    }
  }

  async #unlock(): Promise<void> {
    const real = this.#lockPath;
    const db = this.#lockDb;
    if (real === undefined || db === undefined) return;
    this.#lockPath = undefined;
    this.#lockDb = undefined;
    // the process id goes first, while the lock still keeps other opens out
    await fsp.rm(join(real, 'LOCK'), { force: true }).catch(() => undefined);
    await db.close().catch(() => undefined);
    openDirs.delete(real);
  }
}

/**
 * The live process that `LOCK` names, for a refusal's message: read again
 * once after 100 ms when it names none (a holder that has just taken the
 * lock writes its id a moment later, over what a dead holder left). This
 * process is named only when `self` (where the lock cannot tell this
 * process's threads from other processes: Windows).
 */
async function lockHolder(path: string, self: boolean): Promise<number | undefined> {
  for (let i = 0; i < 2; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 100));
    const named = (await fsp.readFile(path, 'utf8').catch(() => '')).trim().split(' ');
    const pid = parseInt(named[0] ?? '', 10);
    // where LOCK gives its boot id and start time, they must be that process's (its id may have been reused)
    if (Number.isSafeInteger(pid) && pid > 0 && (self || pid !== process.pid) && alive(pid) && (named.length < 3 || processIdentity(`/proc/${pid}/stat`, pid) === named.slice(0, 3).join(' '))) {
      return pid;
    }
  }
  return undefined;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM';
  }
}

/**
 * The directory, below a log's, of the LevelDB database whose lock holds
 * the log (a name that differs from `LOCK` in more than case: the two are
 * one name on case-insensitive file systems).
 */
const LOCK_DB = 'lock.db';

/**
 * This process as `LOCK` names it: its id, then, where `/proc` tells them
 * (Linux), the boot id and its start time, which tell it from a process of
 * another boot or an earlier one with the same id (a restarted container's
 * process often has the same id). Every thread of the process reads the
 * same; `LOCK` adds the holding thread's id and start time.
 */
const SELF = processIdentity('/proc/self/stat', process.pid);

/** A process's identity as {@link SELF} gives it, from its `stat` file (`/proc/<pid>/stat`). */
function processIdentity(statPath: string, pid: number): string {
  try {
    const boot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const start = startTime(fs.readFileSync(statPath, 'utf8'));
    if (boot !== '' && start !== undefined) return `${pid} ${boot} ${start}`;
  } catch {
    // no /proc
  }
  return String(pid);
}

/** The start time (clock ticks after boot) in a `/proc` `stat` file, its 22nd field. */
function startTime(stat: string): string | undefined {
  // the fields after the command name (which may hold spaces and parentheses), in parentheses
  const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  return start === undefined || start === '' ? undefined : start;
}

/**
 * What this thread writes in `LOCK`: {@link SELF}, then, where `/proc` tells
 * them (Linux, `/proc/thread-self`), this thread's id and start time.
 */
const OWNER = ((): string => {
  if (!SELF.includes(' ')) return SELF;
  try {
    const tid = fs.readlinkSync('/proc/thread-self').split('/').at(-1)!;
    const start = threadStart(tid);
    return start === undefined ? SELF : `${SELF} ${tid} ${start}`;
  } catch {
    return SELF;
  }
})();

/** The start time of thread `tid` of this process; `undefined` when it has ended (or there is no `/proc`). */
function threadStart(tid: string): string | undefined {
  if (!/^\d+$/.test(tid)) return undefined;
  try {
    return startTime(fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The message at the end of an error's chain of causes (classic-level puts LevelDB's own there). */
function innermostMessage(err: unknown): string {
  let e = err as { message?: unknown; cause?: unknown } | undefined;
  let message = String(err);
  for (let depth = 0; e !== undefined && e !== null && depth < 10; depth++) {
    if (typeof e.message === 'string') message = e.message;
    e = e.cause as typeof e;
  }
  return message;
}

function hex(n: number): string {
  return n.toString(16).padStart(16, '0');
}

function snapName(meta: SnapshotMetadata): string {
  return `${hex(meta.index)}-${hex(meta.term)}.snap`;
}

function parseSnapName(name: string): { index: number; term: number } | undefined {
  const m = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/.exec(name);
  return m === null ? undefined : { index: parseInt(m[1]!, 16), term: parseInt(m[2]!, 16) };
}

function hardStateTuple(hs: HardState): unknown[] {
  return [hs.term, hs.vote, hs.commit];
}

function metaTuple(m: SnapshotMetadata): MetaTuple {
  return [m.index, m.term, [m.confState.voters, m.confState.learners]];
}

/** `[length][crc][payload]`. */
function frame(payload: Uint8Array): Uint8Array {
  const out = Buffer.allocUnsafe(HEADER + payload.length);
  out.writeUInt32LE(payload.length, 0);
  out.writeUInt32LE(crc32(payload), 4);
  out.set(payload, HEADER);
  return out;
}

/** Whether a segment's start record holds the state the records before it give. */
function sameStart(rec: WalRecord, state: LogState): boolean {
  const a = rec.hardState ?? emptyHardState();
  const b = state.hardState;
  if (a.term !== b.term || a.vote !== b.vote || a.commit !== b.commit) return false;
  return (rec.snapshot?.index ?? 0) === state.snapIndex && (rec.snapshot?.term ?? 0) === (state.snapshot?.term ?? 0);
}

/**
 * Whether `head`, the first two bytes of a payload, begin as every record's
 * does: a msgpack array of five (`0x95`), then a kind (a positive fixint).
 */
function isRecordStart(head: Uint8Array): boolean {
  return head[0] === 0x95 && (head[1] === KIND_START || head[1] === KIND_SAVE || head[1] === KIND_SAVE_SYNCED);
}

/**
 * Whether `head`, the first two bytes of a payload, begin as a synced
 * save's does (see {@link isRecordStart}).
 */
function isSyncedSaveStart(head: Uint8Array): boolean {
  return head[0] === 0x95 && head[1] === KIND_SAVE_SYNCED;
}

/** Decodes the record at `off`, or returns why it is bad. */
function readRecord(buf: SegmentFile, off: number, len: number): WalRecord | Error {
  if (off + HEADER + len > buf.size) return new Error(`its length ${len} runs past the end of the segment`);
  const crc = buf.u32(off + 4);
  const payload = buf.bytes(off + HEADER, len);
  if (crc32(payload) !== crc) return new Error('checksum mismatch');
  try {
    const t = unpack(payload);
    if (!Array.isArray(t) || t.length !== 5 || typeof t[4] !== 'boolean' || (t[0] !== KIND_START && t[0] !== KIND_SAVE && t[0] !== KIND_SAVE_SYNCED) || !Array.isArray(t[3])) throw new Error('not a log record');
    const hs = t[1] as unknown;
    const meta = t[2] as unknown;
    return {
      kind: t[0] as number,
      hardState: hs === null ? undefined : hardStateFrom(hs),
      snapshot: meta === null ? undefined : metaFrom(meta),
      keepAbove: t[4] as boolean,
      // out of the segment's buffer, which they would otherwise keep alive
      entries: (t[3] as unknown[]).map(keptEntryFromTuple),
    };
  } catch (err) {
    return new Error(`undecodable: ${reason(err)}`);
  }
}

function hardStateFrom(t: unknown): HardState {
  if (!Array.isArray(t) || t.length !== 3 || typeof t[0] !== 'number' || typeof t[1] !== 'string' || typeof t[2] !== 'number') {
    throw new Error('malformed HardState');
  }
  return { term: t[0], vote: t[1], commit: t[2] };
}

function metaFrom(t: unknown): SnapshotMetadata {
  if (!Array.isArray(t) || t.length !== 3 || typeof t[0] !== 'number' || typeof t[1] !== 'number' || !Array.isArray(t[2])) {
    throw new Error('malformed snapshot metadata');
  }
  const [voters, learners] = t[2] as [unknown, unknown];
  if (!Array.isArray(voters) || !Array.isArray(learners)) throw new Error('malformed conf state');
  const confState: ConfState = { voters: voters.map(String), learners: learners.map(String) };
  return { index: t[0], term: t[1], confState };
}

/** The unit a disk writes whole (bytes): a write torn by a power loss lost whole sectors. */
const SECTOR = 512;

/** Bytes of a segment read through one window at a time. */
const WINDOW = 64 * 1024;

/**
 * A segment file read for replay through a 64 KiB window, never as one
 * buffer: freeing a buffer of a whole segment (8 MiB) raised glibc's mmap
 * threshold to that size, and the C heap then kept about 7-10 MiB more
 * after a load (docs/performance.md). The views it hands out are valid
 * until its next read.
 */
class SegmentFile {
  readonly size: number;
  readonly #fd: number;
  readonly #win = Buffer.allocUnsafe(WINDOW);
  #winStart = 0;
  #winLen = 0;

  private constructor(fd: number, size: number) {
    this.#fd = fd;
    this.size = size;
  }

  static open(path: string): SegmentFile {
    const fd = fs.openSync(path, 'r');
    try {
      return new SegmentFile(fd, fs.fstatSync(fd).size);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  close(): void {
    fs.closeSync(this.#fd);
  }

  /** Bytes `[off, off + len)`: a view of the window, or a buffer of their own when longer than it. */
  bytes(off: number, len: number): Buffer {
    if (len > WINDOW) {
      const out = Buffer.allocUnsafe(len);
      this.#readFully(out, off);
      return out;
    }
    if (off < this.#winStart || off + len > this.#winStart + this.#winLen) {
      this.#winLen = Math.min(WINDOW, this.size - off);
      this.#winStart = off;
      this.#readFully(this.#win.subarray(0, this.#winLen), off);
    }
    return this.#win.subarray(off - this.#winStart, off - this.#winStart + len);
  }

  u32(off: number): number {
    return this.bytes(off, 4).readUInt32LE(0);
  }

  allZero(from: number, to: number): boolean {
    for (let at = from; at < to; at += WINDOW) {
      if (!allZero(this.bytes(at, Math.min(WINDOW, to - at)), 0, Math.min(WINDOW, to - at))) return false;
    }
    return true;
  }

  /** Offset of the last nonzero byte (-1 when the segment is all zeros). */
  lastNonZero(): number {
    for (let to = this.size; to > 0; ) {
      const from = Math.max(0, to - WINDOW);
      const chunk = this.bytes(from, to - from);
      for (let i = chunk.length - 1; i >= 0; i--) if (chunk[i] !== 0) return from + i;
      to = from;
    }
    return -1;
  }

  /**
   * The records that start at some byte offset in `[from, to)` and end by
   * `to` (a damaged length is why every offset is tried), in offset order:
   * bytes with a matching CRC that decode as a record of the log. A frame
   * with a matching CRC that is no record (the data of an entry may hold
   * bytes framed as the log frames its records) is not one. The CRC is
   * checked only where the payload begins as every record's does (see
   * {@link isRecordStart}): an entry's data whose words are all lengths
   * that fit what follows them made a CRC over each of them, quadratic in
   * the bytes scanned (a torn record of 1 MiB took 50 GB of CRC).
   */
  *recordsWithin(from: number, to: number): Generator<{ at: number; len: number; rec: WalRecord }> {
    for (let p = from; p + HEADER < to; p++) {
      const len = this.u32(p);
      if (len < 2 || p + HEADER + len > to || !isRecordStart(this.bytes(p + HEADER, 2))) continue;
      if (crc32(this.bytes(p + HEADER, len)) !== this.u32(p + 4)) continue;
      const rec = readRecord(this, p, len);
      if (!(rec instanceof Error)) yield { at: p, len, rec };
    }
  }

  /**
   * Whether the bad record at `off`, in the last segment whose last nonzero
   * byte is before `end`, is a write a crash tore: either no record (see
   * {@link recordsWithin}) starts anywhere after it (its own length may be
   * what was damaged, so every byte offset is tried), or the records after it were
   * not durable (no synced record with another after it, see
   * {@link durableRecordWithin}) and it lost a whole sector: an aligned
   * {@link SECTOR} bytes of zeros (what it was written over) between it and
   * the next record. An unsynced record may lose a sector while the writes
   * after it reach the disk (nothing orders their writeback); a synced one
   * that returned never does (see {@link syncedSaveAt}: zeros in it are
   * its data), and a record damaged in place (a flipped bit) keeps its
   * sectors.
   */
  tornAt(off: number, end: number): boolean {
    const next = this.recordsWithin(off + 1, end).next();
    if (next.done === true) return true;
    if (this.syncedSaveAt(off) || this.durableRecordWithin(off + 1, end)) return false;
    for (let s = Math.ceil(off / SECTOR) * SECTOR; s + SECTOR <= next.value.at; s += SECTOR) {
      if (this.allZero(s, s + SECTOR)) return true;
    }
    return false;
  }

  /**
   * Whether the bytes of the record at `off` still say it is a synced save
   * (its payload begins as one does, see {@link isSyncedSaveStart}),
   * whatever else of it was damaged. With a record after it, its save
   * returned (writes are one at a time, and the record of a synced save is
   * the last of its write): it was durable, and a crash did not tear it, so
   * its own damage is no torn write, even where its data holds an aligned
   * sector of zeros (what a lost sector looks like). A lost sector reads as
   * zeros, never as this kind.
   */
  syncedSaveAt(off: number): boolean {
    return off + HEADER + 2 <= this.size && isSyncedSaveStart(this.bytes(off + HEADER, 2));
  }

  /**
   * Whether `[from, to)` holds a record that was durable (a start record
   * or a synced save whose save returned): a synced one with another valid
   * record starting after it. Writes are one at a time, so only the last
   * record written can be a synced one still in flight at a crash. A record
   * is one that passes its CRC and decodes (see {@link recordsWithin}).
   */
  durableRecordWithin(from: number, to: number): boolean {
    let syncedEnd = Number.POSITIVE_INFINITY;
    for (const { at, len, rec } of this.recordsWithin(from, to)) {
      if (at >= syncedEnd) return true;
      if (rec.kind === KIND_START || rec.kind === KIND_SAVE_SYNCED) syncedEnd = Math.min(syncedEnd, at + HEADER + len);
    }
    return false;
  }

  #readFully(into: Uint8Array, position: number): void {
    for (let done = 0; done < into.length; ) {
      const n = fs.readSync(this.#fd, into, done, into.length - done, position + done);
      if (n === 0) throw new Error(`segment ended at byte ${position + done} of ${this.size}`);
      done += n;
    }
  }
}

function allZero(buf: Uint8Array, from: number, to: number): boolean {
  for (let at = from; at < to; at += ZEROS.length) {
    const n = Math.min(ZEROS.length, to - at);
    if (Buffer.compare(buf.subarray(at, at + n), ZEROS.subarray(0, n)) !== 0) return false;
  }
  return true;
}

function writeAt(fd: number, data: Uint8Array, position: number): Promise<void> {
  return new Promise((resolve, reject) => {
    fs.write(fd, data, 0, data.length, position, (err, written) => {
      if (err !== null) reject(err);
      else if (written !== data.length) reject(new Error(`short write: ${written} of ${data.length} bytes`));
      else resolve();
    });
  });
}

function writeAtSync(fd: number, data: Uint8Array, position: number): void {
  const written = fs.writeSync(fd, data, 0, data.length, position);
  if (written !== data.length) throw new Error(`short write: ${written} of ${data.length} bytes`);
}

function fdatasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    fs.fdatasync(fd, (err) => (err !== null ? reject(err) : resolve()));
  });
}

/**
 * Creates `path` filled with `bytes` zeros, fsynced; returns `path`. Each
 * chunk of zeros is synced on its own, so that the disk never has a large
 * flush to make; with `paced`, it waits {@link PACE_MS} between chunks while
 * `paced()` says so; it gives up (rejects) once `stop()` says so.
 */
async function preallocate(path: string, bytes: number, paced?: () => boolean, stop?: () => boolean): Promise<string> {
  const fh = await fsp.open(path, 'w');
  try {
    for (let at = 0; at < bytes; at += ZEROS.length) {
      if (stop?.() === true) throw new Error('the storage is closing');
      await writeFully(fh, ZEROS, Math.min(ZEROS.length, bytes - at), at);
      if (paced !== undefined) {
        await fh.datasync();
        if (paced()) await new Promise((r) => setTimeout(r, PACE_MS));
      }
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return path;
}

/** The queue's error handler: a storage error with the cause attached. */
function rethrowAsIoError(err: unknown): never {
  throw ioError(err, 'log storage operation failed');
}

function ignore(): void {}

/** Overwrites `[from, to)` of `path` with zeros and fsyncs it. */
async function zeroFrom(path: string, from: number, to: number): Promise<void> {
  const fh = await fsp.open(path, 'r+');
  try {
    for (let at = from; at < to; at += ZEROS.length) {
      await writeFully(fh, ZEROS, Math.min(ZEROS.length, to - at), at);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Passes quorumkv errors through; anything else becomes `STORAGE_IO`. */
function ioError(err: unknown, message: string): unknown {
  if (isQuorumError(err)) return err;
  return new FaultError(ErrorCode.STORAGE_IO, `${message}: ${reason(err)}`, { cause: err });
}
