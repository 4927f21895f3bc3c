/**
 * The MVCC store: etcd's v3 key-value store with watch and leases, as a
 * deterministic state machine for Raft (etcd's `mvcc.watchableStore` plus
 * the `applierV3backend` and `lessor` around it).
 *
 * A server runs it like this: every write request (put, delete-range, txn,
 * compaction, lease grant, lease revoke, lease-expiry revoke) becomes one
 * Raft log entry; committed entries are applied on every member in log
 * order with their index through {@link MvccStore.applyBatch}; reads are
 * served locally with {@link MvccStore.range} (after a ReadIndex wait for
 * linearizable reads). Apply is deterministic: no clock, no randomness;
 * lease ids are assigned from replicated state; lease expiry is decided by
 * the leader's lessor outside apply. See docs/mvcc.md.
 * @module
 */
import createDebug from 'debug';
import { pack, unpack, withCrc, checkCrc, crc32 } from '../codec/index.js';
import { CompactedError, ErrorCode, FaultError, QuorumError, UsageError, isQuorumError } from '../errors.js';
import { describeValue } from '../arg-values.js';
import { callIsolated } from '../isolated-emit.js';
import { Lessor, leaseItemToBytes } from '../lease/index.js';
import { MAX_TIMER_MS } from '../timer-limit.js';
import type {
  KeyValue,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseTimeToLiveRequest,
  LeaseTimeToLiveResponse,
  RangeRequest,
  RangeResponse,
  TxnRequest,
  TxnResponse,
  WatchCreateRequest,
} from '../mvccpb/index.js';
import {
  applyCompaction,
  applyDeleteRange,
  applyLeaseGrant,
  applyLeaseRevoke,
  applyPut,
  applyTxn,
  finishRange,
  loadRange,
  planRange,
  planTxn,
  checkTxnPuts,
  checkTxnRanges,
  prepareTxn,
} from './apply.js';
import { Backend, META, leaseIdToBytes, type AnyLevel, type PendingBatch } from './backend.js';
import { IndexBuilder, KvCore, freezeKv, type ScheduledCompaction } from './kv-core.js';
import { decodeKeyValue } from './kv-codec.js';
import { MARKED_REV_BYTES_LEN, REV_BYTES_LEN, bytesToRev, isTombstoneKey, revToBytes, revisionId } from './revision.js';
import { toSkey } from './skey.js';
import { limitsProblem } from './limits.js';
import { checkLeaseId, checkLeaseTimeToLiveRequest, checkRangeRequest, checkWriteRequest, DEFAULT_REQUEST_LIMITS, type RequestLimits } from './validate.js';
import { WatchableStore, type StoredEvent, type WatchOptions } from './watchable-store.js';
import type { Watcher } from './watcher.js';
import { isTxnReadOnly, type WriteRequest, type WriteResponse } from './write-request.js';

/**
 * Checks a store snapshot ({@link MvccStore.snapshot}) whole, as
 * {@link MvccStore.restore} does before it changes anything: what a caller
 * that saves state of its own before the restore checks first: CRC,
 * version, shape, the numbers (revision 1 or more, compaction revision -1
 * up to the revision, applied index and last lease id 0 or more) and every
 * record (key length, revision at most the snapshot's, KeyValue).
 * @throws FaultError `QUORUMKV_CORRUPT_SNAPSHOT`
 */
export function checkStoreSnapshot(data: Uint8Array): void {
  parseStoreSnapshot(data);
}

/**
 * Decodes and checks a store snapshot ({@link MvccStore.snapshot}) whole:
 * CRC, version, shape, the numbers (revision 1 or more, compaction revision
 * -1 up to the revision, applied index and last lease id 0 or more), and
 * every record (key length, revision at most the snapshot's, KeyValue).
 * @throws FaultError `QUORUMKV_CORRUPT_SNAPSHOT`
 */
function parseStoreSnapshot(data: Uint8Array): {
  applied: number;
  currentRev: number;
  compactRev: number;
  lastLeaseId: number;
  leases: number[];
  records: unknown[];
} {
  let t: unknown;
  try {
    t = unpack(checkCrc(data, 'mvcc snapshot', ErrorCode.CORRUPT_SNAPSHOT));
  } catch (err) {
    if (isQuorumError(err, ErrorCode.CORRUPT_SNAPSHOT)) throw err;
    throw new FaultError(ErrorCode.CORRUPT_SNAPSHOT, `mvcc: malformed snapshot: ${(err as Error).message}`, { cause: err });
  }
  if (!Array.isArray(t) || t.length !== 7 || t[0] !== SNAPSHOT_VERSION || !Array.isArray(t[5]) || !Array.isArray(t[6])) {
    throw new FaultError(ErrorCode.CORRUPT_SNAPSHOT, 'mvcc: malformed snapshot');
  }
  const applied = num(t[1]);
  const currentRev = num(t[2]);
  const compactRev = num(t[3]);
  const lastLeaseId = num(t[4]);
  // checked before the backend is cleared, as the lessor's reset would refuse it after
  if (lastLeaseId < 0) throw new FaultError(ErrorCode.CORRUPT_SNAPSHOT, 'mvcc: malformed snapshot: a negative last lease id');
  // a store's revision is 1 or more, its compaction revision -1 (none) up to
  // it, its applied index 0 or more: one out of range would restore a state
  // no store has (a revision other than the one watches were told of)
  if (currentRev < 1) throw new FaultError(ErrorCode.CORRUPT_SNAPSHOT, `mvcc: malformed snapshot: revision ${currentRev}, below 1`);
  if (compactRev < -1 || compactRev > currentRev) {
    throw new FaultError(ErrorCode.CORRUPT_SNAPSHOT, `mvcc: malformed snapshot: compaction revision ${compactRev} outside -1..${currentRev}`);
  }
  if (applied < 0) throw new FaultError(ErrorCode.CORRUPT_SNAPSHOT, `mvcc: malformed snapshot: a negative applied index ${applied}`);
  const leases = (t[5] as unknown[]).map(num);
  const records = t[6] as unknown[];
  if (leases.length % 2 !== 0 || records.length % 2 !== 0 || !records.every((r) => r instanceof Uint8Array)) {
    throw new FaultError(ErrorCode.CORRUPT_SNAPSHOT, 'mvcc: malformed snapshot');
  }
  // every record decoded before the backend is cleared: a snapshot with
  // a malformed one (CRC-valid, built wrong) leaves the store as it was
  for (let i = 0; i < records.length; i += 2) {
    const k = records[i] as Uint8Array;
    try {
      if (k.length !== REV_BYTES_LEN && k.length !== MARKED_REV_BYTES_LEN) throw new Error(`a record key of ${k.length} bytes`);
      const rev = bytesToRev(k);
      if (rev.main > currentRev) throw new Error(`a record at revision ${rev.main}, above the snapshot's revision ${currentRev}`);
      decodeKeyValue(records[i + 1] as Uint8Array);
    } catch (err) {
      throw new FaultError(ErrorCode.CORRUPT_SNAPSHOT, `mvcc: malformed snapshot record: ${(err as Error).message}`, { cause: err });
    }
  }
  return { applied, currentRev, compactRev, lastLeaseId, leases, records };
}

/** Options of {@link MvccStore.open}. */
export interface MvccStoreOptions {
  /**
   * Minimum lease TTL in seconds (shorter grants are raised to it when
   * applied). It changes replicated state: every member must use the same
   * value. Default 2 (etcd's with a 1 s election timeout). etcd's minimum is
   * `ceil(1.5 × election timeout in s)`, which members may set differently:
   * a server should raise the TTL before proposing and pass 1 here, as
   * `KvNode` does.
   */
  minLeaseTtl?: number;
  /** Clock in ms for lease expiry on the leader, monotonic. Default `performance.now()`. */
  now?: () => number;
  /** Ms (a positive finite number) before an expired lease that is still there is reported again. Default 3000. */
  expiredLeaseRetryMs?: number;
  /**
   * Request limits: {@link precheck} checks all of them, apply every one but
   * the size. Apply must not depend on a member's own settings, so a server
   * whose members may differ in them checks them before proposing and
   * passes `maxTxnOps: Infinity` here, as `KvNode` does.
   */
  limits?: Partial<RequestLimits>;
  /**
   * Write applied batches with fsync. Default false: the Raft log is the
   * durable record; after a crash, entries after the stored applied index
   * are applied again.
   */
  sync?: boolean;
  /** Watch options. */
  watch?: Omit<WatchOptions, 'onError'>;
  /** Revisions deleted per backend batch by physical compaction, a positive integer. Default 1000 (etcd). */
  compactionBatchLimit?: number;
  /**
   * Called after each backend write of applied batches with its duration in
   * seconds (etcd's `backend_commit_duration_seconds`). Applied batches
   * queued while a write runs are written together in the next one. An
   * error it throws is thrown again on its own (an uncaught exception);
   * the store goes on.
   */
  onBackendCommit?: (seconds: number) => void;
  /**
   * How long (ms, a finite number, 0 or more) the backend writer, when idle, waits before writing
   * batches acknowledged at apply (`acknowledge: 'applied'`), so that the
   * batches applied meanwhile land in the same backend write: etcd's
   * backend batch interval (`--backend-batch-interval`, 100 ms there).
   * Default 0: the write starts once the current turn of the event loop
   * ends. A batch whose caller waits for its write, {@link MvccStore.sync},
   * snapshots, hashes and `close()` start the writer at once. What is
   * applied while a write runs waits for the interval too once that write
   * ends (at once if a caller waits for it, or past the queue limit), so
   * the store writes at most once per interval under a steady load, as
   * etcd commits its backend. With `sync`, fewer writes also mean fewer
   * fsyncs competing with the Raft log's.
   */
  batchIntervalMs?: number;
  /**
   * The timer for `batchIntervalMs` and the watchers' progress
   * notifications (default: the global `setTimeout`); a server passes its
   * clock, so that a simulation on a virtual clock stays reproducible.
   */
  timer?: BatchTimer;
}

/** A timer for {@link MvccStoreOptions.batchIntervalMs} (a `Clock` of the node layer is one). */
export interface BatchTimer {
  /** Calls `fn` once after `ms` milliseconds; returns a handle for `clearTimeout`. */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Cancels a pending call. */
  clearTimeout(handle: never): void;
}

/** Node runs a timer of more than 2^31 - 1 ms after 1 ms: a longer interval waits that long. */
const globalTimer: BatchTimer = {
  setTimeout: (fn, ms) => setTimeout(fn, Math.min(ms, MAX_TIMER_MS)),
  clearTimeout: (h: ReturnType<typeof setTimeout>) => clearTimeout(h),
};

function resultsOf(executed: { results: ApplyResult[] }): ApplyResult[] {
  return executed.results;
}

/** Options of {@link MvccStore.applyBatch}. */
export interface ApplyBatchOptions {
  /**
   * When the returned promise resolves:
   * - `'written'` (default): once the batch is written to the backend;
   * - `'applied'`: once it is applied in memory (reads, current and past,
   *   see it; watchers are notified once it is written). A server whose Raft
   *   log is the durable record answers clients then, as etcd does (its
   *   backend commits every 100 ms): after a crash, entries after the stored
   *   applied index are applied again from the log, and a snapshot or hash
   *   waits for every queued write.
   */
  acknowledge?: 'written' | 'applied';
}

/** One committed Raft entry to apply: its index and its request (`null` for an entry that carries none, such as a leader's empty entry). */
export interface ApplyEntry {
  /** Raft log index of the entry; at or below the store's applied index, the entry is skipped. */
  index: number;
  /** The write to apply, or `null` when the entry carries none (only the applied index moves). */
  request: WriteRequest | null;
}

/**
 * What applying one entry gave:
 * - `applied`: the response; for a compaction, `physical` settles once the
 *   old revisions are removed from the backend (await it for `physical: true`);
 * - `failed`: the request was refused by a state-dependent check, the same on
 *   every member (unknown lease, compacted revision, key not found, ...);
 *   nothing changed but the applied index;
 * - `noop`: an entry without a request (the applied index moved);
 * - `skipped`: the index was at or below the applied index (already applied).
 */
export type ApplyResult =
  | { status: 'applied'; response: WriteResponse; physical?: Promise<void> }
  | { status: 'failed'; error: QuorumError }
  | { status: 'noop' }
  | { status: 'skipped' };

/** What {@link MvccStore.hash} reports (etcd's `HashKV`). */
export interface HashResult {
  /** CRC-32 over every revision kept up to `revision`, the compaction revision and the lease table. */
  hash: number;
  /** The revision hashed up to. */
  revision: number;
  /** The store's compaction revision. */
  compactRevision: number;
}

/**
 * A consistent view of the store at one applied index (see
 * {@link MvccStore.readView}).
 */
export interface StoreReadView {
  /** The applied Raft index the view is at. */
  appliedIndex: number;
  /** The store's revision at that index. */
  revision: number;
  /** The compaction revision (-1 before any). */
  compactRevision: number;
  /** The last lease id assigned (lease ids are assigned from replicated state). */
  lastLeaseId: number;
  /** Every lease: id and granted TTL in seconds. */
  leases: { id: number; ttl: number }[];
  /** Every record the store keeps (backend key and value), the tombstones at the compaction revision included, in revision order. */
  records(): AsyncIterable<[Uint8Array, Uint8Array]>;
}

/**
 * Encodes a store state in the format of {@link MvccStore.snapshot} (what
 * {@link MvccStore.restore} takes), from the parts a {@link StoreReadView}
 * gives; `records` alternates backend keys and values.
 */
export function encodeStoreSnapshot(s: {
  appliedIndex: number;
  revision: number;
  compactRevision: number;
  lastLeaseId: number;
  leases: { id: number; ttl: number }[];
  records: Uint8Array[];
}): Uint8Array {
  const leases: number[] = [];
  for (const l of s.leases) leases.push(l.id, l.ttl);
  return withCrc(pack([SNAPSHOT_VERSION, s.appliedIndex, s.revision, s.compactRevision, s.lastLeaseId, leases, s.records]));
}

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/** An executed batch waiting to be written: its backend ops, its last revision, and what waits for it. */
interface QueuedWrite {
  batch: PendingBatch | undefined;
  lastRev: number;
  compactions: [ScheduledCompaction, Deferred][];
  done: Deferred;
}

/**
 * Backend ops queued for writing past which a new batch waits for the
 * writer before it executes (memory stays bounded when apply outruns the
 * disk).
 */
const MAX_QUEUED_OPS = 20_000;
/** A read at the current revision that a compaction overtakes is tried this many times in all (see {@link MvccStore.range}). */
const MAX_READ_ATTEMPTS = 3;

const SNAPSHOT_VERSION = 1;

const log = createDebug('quorumkv:mvcc');

function badConfig(msg: string): never {
  throw new UsageError(ErrorCode.INVALID_CONFIG, `mvcc: ${msg}`);
}

/**
 * Checks the options of {@link MvccStore.open} that the store reads itself
 * (the lessor and the watchable store check theirs), before anything is
 * opened.
 * @throws UsageError `QUORUMKV_INVALID_CONFIG`
 */
function checkStoreOptions(o: MvccStoreOptions): void {
  if (o === null || typeof o !== 'object') badConfig('options must be an object');
  const cb = o.compactionBatchLimit;
  // NaN or Infinity deleted every compacted revision in one backend batch, however many
  if (cb !== undefined && !(typeof cb === 'number' && Number.isSafeInteger(cb) && cb > 0)) badConfig(`compactionBatchLimit must be a positive integer, got ${describeValue(cb)}`);
  const bi = o.batchIntervalMs;
  // Infinity never wrote what was acknowledged at apply; NaN and negatives were taken as 0
  if (bi !== undefined && !(typeof bi === 'number' && Number.isFinite(bi) && bi >= 0)) badConfig(`batchIntervalMs must be a finite number of ms, 0 or more, got ${describeValue(bi)}`);
  if (o.sync !== undefined && typeof o.sync !== 'boolean') badConfig(`sync must be a boolean, got ${describeValue(o.sync)}`);
  if (o.onBackendCommit !== undefined && typeof o.onBackendCommit !== 'function') badConfig('onBackendCommit must be a function');
  const t = o.timer as unknown;
  if (t !== undefined && (t === null || typeof t !== 'object' || typeof (t as BatchTimer).setTimeout !== 'function' || typeof (t as BatchTimer).clearTimeout !== 'function')) {
    badConfig('timer must be { setTimeout, clearTimeout }');
  }
  if (o.watch !== undefined && (o.watch === null || typeof o.watch !== 'object')) badConfig('watch must be an object of watch options');
  if (o.limits !== undefined) {
    const problem = limitsProblem(o.limits);
    if (problem !== undefined) badConfig(problem);
  }
}

function num(v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new FaultError(ErrorCode.CORRUPT_SNAPSHOT, 'mvcc: malformed snapshot');
  return v;
}

/**
 * The store. Open it on an abstract-level database (typically a sublevel of
 * the database that also holds the Raft log):
 *
 * ```ts
 * const store = await MvccStore.open(db.sublevel('mvcc'));
 * const [r] = await store.applyBatch([{ index: 1, request: { put: { key: toBytes('a'), value: toBytes('1') } } }]);
 * const { kvs } = await store.range({ key: toBytes('a') });
 * ```
 */
export class MvccStore {
  /** The lessor: the server promotes/demotes it with leadership and asks it for expired leases. */
  readonly lessor: Lessor;
  private readonly core: KvCore;
  private readonly backend: Backend;
  private readonly hub: WatchableStore;
  private readonly limits: RequestLimits;
  private readonly compactionBatchLimit: number;
  private applied = 0;
  /** Every revision at or below it is written to the backend database. */
  private flushedRev = 1;
  /**
   * Set while a snapshot restore replaces the database's records: reads
   * wait for it (the old key index points at records being removed).
   */
  private restoring: Promise<void> | undefined;
  /** Ranges between their plan and their last backend read; a restore waits for them. */
  private readsUnderWay = 0;
  private readsDone: Deferred | undefined;
  /** Every revision at or below it has been offered to watchers (applied revisions are, at once). */
  private notifiedRev = 1;
  private lock: Promise<unknown> = Promise.resolve();
  /** Settles once every batch queued so far is written (or the store failed). */
  private commits: Promise<void> = Promise.resolve();
  /** Executed batches waiting for the writer, in apply order. */
  private writeQueue: QueuedWrite[] = [];
  /** Backend ops in {@link writeQueue}. */
  private queuedOps = 0;
  private writing = false;
  /** Someone waits for the batches queued while a write runs: the writer goes on without the batch interval. */
  private urgentWrite = false;
  private readonly batchIntervalMs: number;
  private readonly timer: BatchTimer;
  /** The handle of the writer's pending start (see `batchIntervalMs`). */
  private writeTimer: unknown;
  private readonly onBackendCommit: ((seconds: number) => void) | undefined;
  private compactionChain: Promise<void> = Promise.resolve();
  private compactionsRunning = 0;
  private failure: FaultError | undefined;
  private status: 'open' | 'closing' | 'closed' = 'open';

  private constructor(db: AnyLevel, options: MvccStoreOptions) {
    checkStoreOptions(options);
    this.lessor = new Lessor({ minTtl: options.minLeaseTtl, now: options.now, expiredRetryMs: options.expiredLeaseRetryMs });
    this.backend = new Backend(db, options.sync ?? false);
    this.core = new KvCore(this.lessor, this.backend);
    this.limits = { ...DEFAULT_REQUEST_LIMITS, ...options.limits };
    this.compactionBatchLimit = options.compactionBatchLimit ?? 1000;
    this.onBackendCommit = options.onBackendCommit;
    this.batchIntervalMs = options.batchIntervalMs ?? 0;
    this.timer = options.timer ?? globalTimer;
    const self = this;
    this.hub = new WatchableStore(
      {
        flushedRevision: () => self.notifiedRev,
        compactRevision: () => self.core.compactRev,
        readEvents: (from, to) => self.readEvents(from, to),
        kvAt: (key, rev) => self.kvAt(key, rev),
        kvAtNow: (key, rev) => self.kvAtNow(key, rev),
      },
      { ...(options.timer !== undefined ? { timer: options.timer } : {}), ...options.watch, onError: (err) => this.fail(err) },
    );
    // events carry prevKv only while a watcher asks for it
    this.core.prevKvWanted = () => self.hub.wantsPrevKv();
  }

  /**
   * Opens the store on `db` (opened if needed) and rebuilds its in-memory
   * state from it: key index, current values, leases, revisions; an
   * unfinished physical compaction resumes. A store whose snapshot restore
   * was interrupted by a crash opens empty (applied index 0).
   * @throws FaultError `QUORUMKV_STORAGE_IO`, `QUORUMKV_INTERNAL` (corrupt backend)
   * @throws UsageError `QUORUMKV_INVALID_CONFIG` for options that are not an object; a
   *   `compactionBatchLimit` that is not a positive integer; a `batchIntervalMs` that is not a
   *   finite number, 0 or more; a `limits.maxTxnOps` that is neither a positive integer nor
   *   `Infinity`, a `limits.maxRequestBytes` that is not a positive integer; a `timer` without
   *   `setTimeout` and `clearTimeout`, an `onBackendCommit` that is not a function, a `sync`
   *   that is not a boolean; bad `watch` options (see `WatchOptions`), and bad `minLeaseTtl`,
   *   `expiredLeaseRetryMs` or `now` (see the `Lessor` constructor)
   */
  static async open(db: AnyLevel, options: MvccStoreOptions = {}): Promise<MvccStore> {
    const s = new MvccStore(db, options);
    try {
      await s.backend.open();
      await s.load();
    } catch (err) {
      s.hub.close(); // its progress timer
      throw err;
    }
    return s;
  }

  private async load(): Promise<void> {
    const b = this.backend;
    if ((await b.getMeta(META.restoring)) !== undefined) {
      await b.clearAll();
      await b.writeNow([
        { sublevel: 'meta', key: META.state },
        { sublevel: 'meta', key: META.compactScheduled },
        { sublevel: 'meta', key: META.compactFinished },
        { sublevel: 'meta', key: META.restoring },
      ]);
    }
    const state = await b.getMeta(META.state);
    let knownRev = 1;
    let lastLeaseId = 0;
    if (state !== undefined) {
      const t = unpack(state) as unknown[];
      this.applied = num(t[0]);
      knownRev = num(t[1]);
      lastLeaseId = num(t[2]);
    }
    const scheduledB = await b.getMeta(META.compactScheduled);
    const finishedB = await b.getMeta(META.compactFinished);
    const scheduled = scheduledB === undefined ? -1 : num(unpack(scheduledB));
    const finished = finishedB === undefined ? -1 : num(unpack(finishedB));
    this.lessor.reset(lastLeaseId);
    for await (const [id, v] of b.scanLeases()) this.lessor.restoreLease(id, num((unpack(v) as unknown[])[0]));
    const core = this.core;
    core.compactRev = finished;
    const builder = new IndexBuilder(core);
    for await (const [k, v] of b.scan(undefined, undefined)) builder.add(k, v);
    builder.finish(knownRev);
    if (scheduled > core.compactRev) {
      const keep = core.index.compact(scheduled);
      core.compactRev = scheduled;
      this.startCompaction({ revision: scheduled, keep }, deferred());
    }
    this.flushedRev = core.currentRev;
    this.notifiedRev = core.currentRev;
  }

  /** Index of the last entry applied (0 for a new store). Entries at or below it are skipped. */
  appliedIndex(): number {
    return this.applied;
  }

  /** The store's current revision (1 for an empty store). */
  currentRevision(): number {
    return this.core.currentRev;
  }

  /** The revision of the last compaction, -1 before any (etcd's starting value). */
  compactRevision(): number {
    return this.core.compactRev;
  }

  /** The limits requests are checked against. */
  requestLimits(): Readonly<RequestLimits> {
    return this.limits;
  }

  private assertUsable(): void {
    if (this.failure !== undefined) throw this.failure;
    if (this.status !== 'open') throw new FaultError(ErrorCode.STORAGE_CLOSED, 'mvcc: store is closed');
  }

  private fail(err: unknown): FaultError {
    const f =
      err instanceof FaultError ? err : new FaultError(ErrorCode.INTERNAL, `mvcc: store failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    if (this.failure === undefined) {
      this.failure = f;
      log('store failed, refusing every call: %s', f.message);
      // no watch would hear of anything again: end them, saying why
      this.hub.close(`mvcc: store failed: ${f.message}`);
    }
    return f;
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn);
    this.lock = run.catch(() => {});
    return run;
  }

  /**
   * Applies one committed entry (see {@link applyBatch}); `request` is
   * `null` for an entry that carries no write (result `noop`).
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` as {@link applyBatch}
   *   (`request` neither an object nor `null`, `index` not a safe integer;
   *   nothing is applied)
   * @throws FaultError when the store fails (it then refuses every call)
   */
  async apply(index: number, request: WriteRequest | null): Promise<ApplyResult> {
    return (await this.applyBatch([{ index, request }]))[0]!;
  }

  /**
   * Applies committed entries in order and writes all their changes, with
   * the new applied index, in one backend batch (exactly-once apply across
   * crashes). Entries at or below the applied index are skipped. Readers
   * never see part of an entry. Watchers are notified once the batch is
   * written. May be called again before the previous call resolves: the
   * next batch executes while the previous one is written; writes land in
   * call order; each call resolves when its own batch is written. A request
   * the checks refuse (`checkWriteRequest`), or cannot read (a getter or
   * proxy trap of the caller's throws: `QUORUMKV_INVALID_ARGUMENT` with the
   * thrown error as `cause`), or that the state refuses, is answered
   * `{ status: 'failed', error }` and changes nothing but the applied index.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `entries` is not an
   *   array of objects, an entry's `request` is neither an object nor
   *   `null` (`undefined` included), `options` not an object or its
   *   `acknowledge` neither `'written'` nor `'applied'`, or indexes are not
   *   increasing safe integers (nothing is applied)
   * @throws FaultError `QUORUMKV_STORAGE_IO` / `QUORUMKV_INTERNAL`: the
   *   store has failed and must be reopened (entries after the stored applied
   *   index are then applied again)
   */
  applyBatch(entries: ApplyEntry[], options: ApplyBatchOptions = {}): Promise<ApplyResult[]> {
    if (options === null || typeof options !== 'object' || (options.acknowledge !== undefined && options.acknowledge !== 'written' && options.acknowledge !== 'applied')) {
      return Promise.reject(new UsageError(ErrorCode.INVALID_ARGUMENT, "mvcc: applyBatch options must be an object whose acknowledge is 'written' or 'applied'"));
    }
    const executed = this.exclusive(async () => {
      this.assertUsable();
      if (!Array.isArray(entries)) throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'mvcc: entries must be an array');
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i];
        if (e === null || typeof e !== 'object') throw new UsageError(ErrorCode.INVALID_ARGUMENT, `mvcc: an entry must be an object { index, request }, got ${describeValue(e)}`);
        // an absent request is neither a write nor the documented `null` of an entry without one
        if (e.request !== null && typeof e.request !== 'object') {
          throw new UsageError(ErrorCode.INVALID_ARGUMENT, `mvcc: entry request must be a write request object or null, got ${describeValue(e.request)}`);
        }
        // a NaN or infinite index passed the order checks and became the applied index
        if (!Number.isSafeInteger(entries[i]!.index)) {
          throw new UsageError(ErrorCode.INVALID_ARGUMENT, `mvcc: entry index must be a safe integer, got ${describeValue(entries[i]!.index)}`);
        }
      }
      for (let i = 1; i < entries.length; i++) {
        if (entries[i]!.index <= entries[i - 1]!.index) {
          throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'mvcc: entries must be given in increasing index order');
        }
      }
      if (this.queuedOps > MAX_QUEUED_OPS) await this.writesDone();
      this.assertUsable();
      const results: ApplyResult[] = [];
      const compactions: [ScheduledCompaction, Deferred][] = [];
      const before = this.applied;
      try {
        for (const e of entries) {
          if (e.index <= this.applied) {
            results.push({ status: 'skipped' });
            continue;
          }
          results.push(await this.execute(e.request, compactions));
          this.applied = e.index;
        }
        if (this.applied !== before) {
          this.backend.putMeta(META.state, pack([this.applied, this.core.currentRev, this.lessor.lastLeaseId()]));
        }
      } catch (err) {
        throw this.fail(err);
      }
      // The write is queued behind earlier ones; the next batch may execute
      // meanwhile (its reads see this one in memory and in the write buffer).
      // Watchers hear of the entries now, as etcd notifies them when a write
      // transaction ends, before its backend commit: a catch-up read beyond
      // the written revisions takes the records still waiting to be written.
      const revs = this.core.drainRevisions();
      this.notifiedRev = this.core.currentRev;
      this.hub.notify(revs);
      const written = this.queueWrite(
        {
          batch: this.backend.takeBatch(),
          lastRev: this.core.currentRev,
          compactions,
          done: deferred(),
        },
        options.acknowledge !== 'applied',
      );
      return { results, written };
    });
    if (options.acknowledge === 'applied') return executed.then(resultsOf);
    return executed.then(async ({ results, written }) => {
      try {
        await written;
      } catch (err) {
        throw this.fail(err);
      }
      return results;
    });
  }

  /**
   * Queues an executed batch for the writer; the promise settles once it is
   * written. `urgent`: its caller waits for the write (no batch interval).
   */
  private queueWrite(item: QueuedWrite, urgent: boolean): Promise<void> {
    this.writeQueue.push(item);
    this.queuedOps += item.batch?.ops.length ?? 0;
    this.commits = item.done.promise.catch((err) => {
      this.fail(err);
    });
    // a physical compaction starts once its batch is written: no interval for it
    this.startWriter(urgent || item.compactions.length > 0);
    return item.done.promise;
  }

  /**
   * Starts the writer unless it runs (it takes what is queued when its
   * write ends): after the current turn when `now` or without a batch
   * interval, else once the interval has passed.
   */
  private startWriter(now: boolean): void {
    if (this.writing) {
      if (now) this.urgentWrite = true;
      return;
    }
    if (!now && this.batchIntervalMs > 0) {
      this.writeTimer ??= this.timer.setTimeout(() => {
        this.writeTimer = undefined;
        this.startWriter(true);
      }, this.batchIntervalMs);
      return;
    }
    if (this.writeTimer !== undefined) {
      this.timer.clearTimeout(this.writeTimer as never);
      this.writeTimer = undefined;
    }
    this.writing = true;
    // started after the current turn: callers answered at apply go first
    setImmediate(() => void this.writeLoop());
  }

  /**
   * Writes queued batches in apply order, everything queued at once in one
   * backend batch (the later record of a key wins inside a batch, as in
   * apply order); then, batch by batch, moves the flushed revision, notifies
   * watchers and starts scheduled compactions.
   */
  private async writeLoop(): Promise<void> {
    let first = true;
    let later = false;
    try {
      while (this.writeQueue.length > 0) {
        // what was applied while a write ran waits for the interval too,
        // unless someone waits for it: back-to-back writes (each with its
        // fsync) would compete with the Raft log's appends all along
        if (!first && !this.urgentWrite && this.batchIntervalMs > 0 && this.queuedOps <= MAX_QUEUED_OPS && this.failure === undefined) {
          later = true;
          break;
        }
        first = false;
        this.urgentWrite = false;
        const items = this.writeQueue;
        this.writeQueue = [];
        this.queuedOps = 0;
        const batches = items.flatMap((it) => (it.batch === undefined ? [] : [it.batch]));
        try {
          if (this.failure !== undefined) throw this.failure;
          if (batches.length > 0) {
            const started = performance.now();
            await this.backend.writeBatches(batches);
            // the caller's callback: one that throws must not fail a store whose write went through
            if (this.onBackendCommit !== undefined) callIsolated(this.onBackendCommit, (performance.now() - started) / 1000);
          }
        } catch (err) {
          const f = this.fail(err);
          for (const it of items) {
            it.done.reject(f);
            // a physical compaction whose batch was not written never starts
            for (const [, d] of it.compactions) d.reject(f);
          }
          continue;
        }
        // one synchronous step: the records leave the write buffer as the
        // written mark passes them
        this.backend.settle(batches);
        this.flushedRev = items[items.length - 1]!.lastRev;
        this.core.evictWritten(this.flushedRev);
        for (const it of items) {
          for (const [c, d] of it.compactions) this.startCompaction(c, d);
          it.done.resolve();
        }
      }
    } finally {
      this.writing = false;
      if (later) this.startWriter(false);
    }
  }

  /**
   * Makes everything applied so far durable: waits for the queued batch
   * writes, then syncs the database (one small fsynced write). A server
   * calls it before compacting its Raft log behind the store's applied index.
   * @throws FaultError when the store has failed
   */
  sync(): Promise<void> {
    return this.exclusive(async () => {
      this.assertUsable();
      await this.writesDone();
      this.assertUsable();
      await this.backend.syncAll();
    });
  }

  /**
   * Resolves once every batch applied so far is written to the backend, in
   * the order applied (fsynced when the store syncs), without waiting for
   * the batch interval. A caller that writes records of its own to the same
   * database after an entry waits for this first, so that its records are
   * never durable ahead of the store's earlier entries.
   * @throws FaultError the store's failure (`QUORUMKV_STORAGE_IO`, ...), `QUORUMKV_STORAGE_CLOSED`
   */
  async written(): Promise<void> {
    this.assertUsable();
    await this.writesDone();
    this.assertUsable();
  }

  /** Starts the writer now if batches wait for it; resolves once every queued batch is written (or the store failed). */
  private async writesDone(): Promise<void> {
    if (this.writeQueue.length > 0) this.startWriter(true);
    await this.commits;
  }

  private async execute(req: WriteRequest | null, compactions: [ScheduledCompaction, Deferred][]): Promise<ApplyResult> {
    if (req === null) return { status: 'noop' };
    const core = this.core;
    try {
      checkWriteRequest(req, this.limits);
    } catch (err) {
      if (err instanceof UsageError) return { status: 'failed', error: err };
      // the checks could not read the request (a getter or proxy trap of the
      // caller's threw): nothing has changed, and the store has not failed
      const error = new UsageError(ErrorCode.INVALID_ARGUMENT, `mvcc: the request cannot be read: ${err instanceof Error ? err.message : describeValue(err)}`, { cause: err });
      return { status: 'failed', error };
    }
    try {
      if ('put' in req) return { status: 'applied', response: { put: applyPut(core, req.put) } };
      if ('deleteRange' in req) return { status: 'applied', response: { deleteRange: applyDeleteRange(core, req.deleteRange) } };
      if ('txn' in req) {
        const prepared = await prepareTxn(core, req.txn);
        return { status: 'applied', response: { txn: applyTxn(core, prepared) } };
      }
      if ('compaction' in req) {
        const { response, scheduled } = applyCompaction(core, req.compaction.revision);
        this.backend.putMeta(META.compactScheduled, pack(scheduled.revision));
        const d = deferred();
        compactions.push([scheduled, d]);
        return { status: 'applied', response: { compaction: response }, physical: d.promise };
      }
      if ('leaseGrant' in req) {
        const response = applyLeaseGrant(core, req.leaseGrant);
        this.backend.putLease(response.id, pack([response.ttl]));
        return { status: 'applied', response: { leaseGrant: response } };
      }
      const response = applyLeaseRevoke(core, req.leaseRevoke.id);
      this.backend.delLease(req.leaseRevoke.id);
      return { status: 'applied', response: { leaseRevoke: response } };
    } catch (err) {
      if (err instanceof UsageError) return { status: 'failed', error: err };
      throw err;
    }
  }

  /**
   * Checks a write request against the limits and the current state without
   * changing anything: what a leader can reject before proposing (unknown
   * lease of a plain put, `ignoreValue`/`ignoreLease` on a missing key, a
   * txn whose branch would fail its checks, a compaction out of range, a
   * lease id in use, an unknown lease to revoke). Apply checks again: the
   * state may change before the entry commits.
   * @throws UsageError with the codes of `checkWriteRequest` and of apply
   */
  precheck(req: WriteRequest): void {
    this.assertUsable();
    checkWriteRequest(req, this.limits);
    // during a restore the state is being replaced: apply checks on the new one
    if (this.restoring !== undefined) return;
    const core = this.core;
    if ('put' in req) {
      const p = req.put;
      if ((p.lease ?? 0) !== 0 && this.lessor.lookup(p.lease!) === undefined) throw new UsageError(ErrorCode.LEASE_NOT_FOUND, 'etcdserver: requested lease not found');
      if ((p.ignoreValue || p.ignoreLease) && !core.exists(p.key)) throw new UsageError(ErrorCode.KEY_NOT_FOUND, 'etcdserver: key not found');
    } else if ('txn' in req) {
      const plan = planTxn(core, req.txn);
      if (!isTxnReadOnly(req.txn)) checkTxnPuts(core, plan);
      checkTxnRanges(core, plan);
    } else if ('compaction' in req) {
      core.checkCompact(req.compaction.revision);
    } else if ('leaseGrant' in req) {
      this.lessor.checkGrant(req.leaseGrant.id ?? 0, req.leaseGrant.ttl);
    } else if ('leaseRevoke' in req) {
      if (this.lessor.lookup(req.leaseRevoke.id) === undefined) throw new UsageError(ErrorCode.LEASE_NOT_FOUND, 'etcdserver: requested lease not found');
    }
  }

  /**
   * Reads keys at the current or a past revision (a local read; the server
   * waits for ReadIndex first for a linearizable one). At the current
   * revision, values come from memory while their records wait to be
   * written, else from the database (a synchronous point read each, or
   * `getMany` for a range of 16 keys or more); past versions are read from
   * the backend. A read waits for a snapshot restore that runs when it comes,
   * and a restore waits for the reads of past versions under way. A read at
   * the current revision (no `revision`) whose versions a compaction removes
   * while it reads them (the keys changed meanwhile) is read again at the new
   * current revision, up to 3 times in all.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT`, `QUORUMKV_FUTURE_REVISION`; CompactedError
   */
  async range(req: RangeRequest): Promise<RangeResponse> {
    this.assertUsable();
    checkRangeRequest(req);
    while (this.restoring !== undefined) {
      await this.restoring;
      this.assertUsable();
    }
    const current = (req.revision ?? 0) <= 0;
    for (let attempt = 1; ; attempt++) {
      const curRev = this.core.currentRev;
      const plan = planRange(this.core, req, curRev);
      this.readsUnderWay++;
      try {
        const values = await loadRange(this.core, plan);
        return finishRange(plan, values, curRev);
      } catch (err) {
        // A read at the current revision asked for none: when a compaction
        // removed a version it was reading (the key changed meanwhile), it is
        // read again at the new current revision, as linearizable as the
        // first (etcd's read transaction sees one consistent snapshot).
        if (!(current && err instanceof CompactedError && attempt < MAX_READ_ATTEMPTS)) throw err;
        log('a read at revision %d lost a version to a compaction: read again at %d', curRev, this.core.currentRev);
      } finally {
        if (--this.readsUnderWay === 0) this.readsDone?.resolve();
      }
    }
  }

  /**
   * Runs a read-only txn locally (every operation of both branches a range;
   * see `isTxnReadOnly`). Its header revision is the current revision.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when the txn writes, or as `checkTxnRequest`;
   *   `QUORUMKV_FUTURE_REVISION`; CompactedError
   */
  async readTxn(req: TxnRequest): Promise<TxnResponse> {
    this.assertUsable();
    checkWriteRequest({ txn: req }, this.limits);
    if (!isTxnReadOnly(req)) throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'mvcc: readTxn needs a txn of ranges only');
    // between applies: reading values may await the backend, and an apply
    // batch running meanwhile would move the revision between the compares
    // and the ranges
    return this.exclusive(async () => {
      while (this.restoring !== undefined) {
        await this.restoring;
        this.assertUsable();
      }
      return applyTxn(this.core, await prepareTxn(this.core, req));
    });
  }

  /**
   * A lease's remaining time (served by the leader, whose lessor knows
   * expiry times; elsewhere the remaining time is the granted TTL). An
   * unknown lease is not an error: TTL -1, granted TTL 0.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for a request that is not
   *   an object, an id that is not a safe integer, a `keys` that is not a boolean
   */
  leaseTimeToLive(req: LeaseTimeToLiveRequest): LeaseTimeToLiveResponse {
    this.assertUsable();
    checkLeaseTimeToLiveRequest(req);
    const t = this.lessor.timeToLive(req.id, { keys: req.keys === true });
    return { header: { revision: this.core.currentRev }, id: t.id, ttl: t.ttl, grantedTtl: t.grantedTtl, keys: t.keys.map(leaseItemToBytes) };
  }

  /** Every lease id, ascending. */
  leaseLeases(): LeaseLeasesResponse {
    this.assertUsable();
    return { header: { revision: this.core.currentRev }, leases: this.lessor.leases().map((l) => ({ id: l.id })) };
  }

  /**
   * Renews a lease (keep-alive) on the leader's lessor.
   * @throws FaultError `QUORUMKV_NOT_LEADER` when the lessor is not promoted
   * @throws UsageError `QUORUMKV_LEASE_NOT_FOUND`; `QUORUMKV_INVALID_ARGUMENT`
   *   for an id that is not a safe integer
   */
  leaseKeepAlive(id: number): LeaseKeepAliveResponse {
    this.assertUsable();
    checkLeaseId(id);
    const ttl = this.lessor.renew(id);
    return { header: { revision: this.core.currentRev }, id, ttl };
  }

  /**
   * Ends every watch now, with a last response `canceled: true` and
   * `cancelReason` (after what each had queued); later watches are refused as
   * on a closed store. For a member that stops serving (removed from the
   * cluster) while its store stays open for maintenance. Idempotent.
   */
  endWatches(cancelReason: string): void {
    this.hub.close(cancelReason);
  }

  /**
   * Watches a key or range (see `WatchCreateRequest` and `Watcher`).
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT`
   * @throws FaultError `QUORUMKV_STORAGE_CLOSED` on a closed store or after
   *   {@link endWatches}; the store's failure once it has failed
   */
  watch(req: WatchCreateRequest): Watcher {
    this.assertUsable();
    return this.hub.watch(req);
  }

  /**
   * Sends a progress notification to every watcher, or to one (etcd's
   * on-demand progress): at once to a caught-up watcher, once it has caught
   * up (and has room in its queue) to one that has not, as etcd defers it;
   * a watcher that has ended gets none.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `w` is given and is
   *   not a watcher this store created (nothing is sent)
   */
  requestProgress(w?: Watcher): void {
    this.hub.requestProgress(w);
  }

  /**
   * Number of watchers per group (synced, unsynced, victims), and of
   * watches from now waiting to start ({@link holdWatchesFromNow}), for
   * metrics and tests.
   */
  watcherGroups(): { synced: number; unsynced: number; victims: number; waiting: number } {
    return this.hub.sizes();
  }

  /**
   * Holds back the watches from now (no start revision, or 0) created from
   * this call until the matching {@link releaseWatchesFromNow}: {@link watch}
   * returns each at once (its id taken, `cancel()` working, a progress
   * notification asked for kept), but it starts only when the last hold is
   * released, after the revision the store has then, and delivers nothing
   * before. For a server whose store may be behind what it answered before
   * it restarted (`KvNode` holds them until it has caught up, as etcd
   * serves no request before its restarted server is ready, and while it
   * installs a snapshot). Holds nest; watches with a start revision are not
   * held. Ending the watches ({@link endWatches}, {@link close}) ends the
   * held ones too.
   */
  holdWatchesFromNow(): void {
    this.hub.holdFromNow();
  }

  /**
   * Releases a hold of {@link holdWatchesFromNow}; the last one starts the
   * watches from now created meanwhile, each after the revision the store
   * has then (while a restore runs, the restored revision), as if created
   * now; a progress notification asked for meanwhile goes out then, at
   * that revision.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when no hold is left to
   *   release (nothing changes)
   */
  releaseWatchesFromNow(): void {
    this.hub.releaseFromNow();
  }

  /**
   * Resolves when every revision applied so far has been written and offered
   * to watchers, and no watcher catch-up is running (for tests).
   */
  async watchIdle(): Promise<void> {
    await this.writesDone();
    await this.hub.idle();
  }

  /**
   * The events of revisions `from..to`: from the database up to the written
   * revision, then from the records still waiting to be written (the
   * written mark and the write buffer move together, so none is missed or
   * read twice).
   */
  private async readEvents(from: number, to: number): Promise<StoredEvent[]> {
    const out: StoredEvent[] = [];
    const add = (k: Uint8Array, v: Uint8Array): void => {
      const rev = bytesToRev(k);
      const kv = decodeKeyValue(v);
      const skey = toSkey(kv.key);
      if (isTombstoneKey(k)) {
        out.push({ revision: rev.main, skey, event: Object.freeze({ type: 'DELETE', kv: freezeKv({ ...kv, modRevision: rev.main }) }) });
      } else {
        out.push({ revision: rev.main, skey, event: Object.freeze({ type: 'PUT', kv: freezeKv(kv) }) });
      }
    };
    // both taken now, before the scan yields: the writer may settle records meanwhile
    const written = this.flushedRev;
    const unwritten = to > written ? this.backend.unwrittenRevisions(revToBytes({ main: Math.max(from, written + 1), sub: 0 }), revToBytes({ main: to + 1, sub: 0 })) : [];
    if (from <= written) {
      for await (const [k, v] of this.backend.scan(revToBytes({ main: from, sub: 0 }), revToBytes({ main: Math.min(to, written) + 1, sub: 0 }))) add(k, v);
    }
    for (const r of unwritten) add(r.key, r.value);
    return out;
  }

  private async kvAt(key: Uint8Array, rev: number): Promise<KeyValue | undefined> {
    const core = this.core;
    if (rev < core.compactRev || rev < 1) return undefined;
    const ki = core.index.get(toSkey(key));
    const at = ki?.get(rev);
    if (ki === undefined || at === undefined) return undefined;
    const cached = core.cached({ ki, at });
    if (cached !== undefined) return cached;
    const data = await this.backend.getRevision(revToBytes(at.modified));
    return data === undefined ? undefined : freezeKv(decodeKeyValue(data));
  }

  /**
   * {@link kvAt} without waiting: from memory, the write buffer or a
   * database that reads synchronously; null when only a read that waits
   * could tell, or the read failed (the caller then reads from history).
   */
  private kvAtNow(key: Uint8Array, rev: number): KeyValue | undefined | null {
    try {
      const core = this.core;
      if (rev < core.compactRev || rev < 1) return undefined;
      const ki = core.index.get(toSkey(key));
      const at = ki?.get(rev);
      if (ki === undefined || at === undefined) return undefined;
      if (ki.modMain === at.modified.main && (ki.val !== undefined || this.backend.readsSync)) return core.current(ki);
      const k = revToBytes(at.modified);
      const buffered = this.backend.bufferedRevision(k);
      if (buffered !== undefined) return freezeKv(decodeKeyValue(buffered));
      if (!this.backend.readsSync) return null;
      const data = this.backend.getWrittenRevisionSync(k);
      return data === undefined ? null : freezeKv(decodeKeyValue(data));
    } catch {
      return null;
    }
  }

  // ------------------------------------------------------------ compaction

  private startCompaction(c: ScheduledCompaction, d: Deferred): void {
    this.compactionsRunning++;
    this.compactionChain = this.compactionChain
      .then(() => this.physicalCompact(c))
      .then(
        () => d.resolve(),
        (err) => {
          d.reject(this.fail(err));
        },
      )
      .finally(() => {
        this.compactionsRunning--;
      });
  }

  private async physicalCompact(c: ScheduledCompaction): Promise<void> {
    if (this.status === 'closed' || this.failure !== undefined) throw this.failure ?? new FaultError(ErrorCode.STORAGE_CLOSED, 'mvcc: store is closed');
    // The records at the compaction revision itself all stay until the next
    // compaction: the live versions are kept anyway, and the others (its
    // tombstones, and the put of a key the same txn then deletes) are the
    // events a watch resuming at that revision still gets (etcd #18089: a
    // watch at the compaction revision lost the DELETEs, and a lagging one
    // skipped them without being cancelled). Those are not in `keep`, so
    // reads and hashes pass them over as before.
    const lt = revToBytes({ main: c.revision, sub: 0 });
    let batch: Uint8Array[] = [];
    for await (const [k] of this.backend.scan(undefined, lt, undefined, false)) {
      if (c.keep.has(revisionId(bytesToRev(k)))) continue;
      batch.push(k);
      if (batch.length >= this.compactionBatchLimit) {
        await this.backend.deleteRevisions(batch);
        batch = [];
        await new Promise((r) => setImmediate(r)); // let applies run between batches
      }
    }
    await this.backend.deleteRevisions(batch, [META.compactFinished, pack(c.revision)]);
    log('physical compaction to revision %d done', c.revision);
  }

  /** Resolves once every scheduled physical compaction is done. */
  async compactionIdle(): Promise<void> {
    while (this.compactionsRunning > 0) await this.compactionChain.catch(() => {});
  }

  // ------------------------------------------------------- snapshot, hash

  /**
   * Serialises the whole replicated state (every kept revision, leases,
   * revisions, compaction point and applied index) for a Raft snapshot.
   * Waits for physical compactions to finish; consistent with the applied
   * index at the time it is called.
   * @returns `[crc32][msgpack]` bytes (see docs/mvcc.md)
   */
  async snapshot(): Promise<Uint8Array> {
    return (await this.beginSnapshot())();
  }

  /**
   * {@link snapshot} in two steps: this call takes the state at the applied
   * index between two applies (numbers, leases and a database snapshot,
   * quickly), and the function it returns reads and serialises the records
   * from that database snapshot while applies go on. A backend without
   * explicit snapshots reads its records in this call instead. Call the
   * function exactly once: it releases the database snapshot.
   * @returns a function resolving to the `[crc32][msgpack]` bytes
   */
  async beginSnapshot(): Promise<() => Promise<Uint8Array>> {
    const taken = await this.exclusive(async () => {
      await this.writesDone();
      this.assertUsable();
      await this.compactionIdle();
      // a physical compaction that failed meanwhile failed the store: its
      // records due for deletion must not go out in a snapshot
      this.assertUsable();
      const snap = this.backend.snapshot();
      const meta = [SNAPSHOT_VERSION, this.applied, this.core.currentRev, this.core.compactRev, this.lessor.lastLeaseId()];
      const leases: number[] = [];
      for (const l of this.lessor.leases()) leases.push(l.id, l.ttl);
      if (snap === undefined) return { meta, leases, records: await this.collect(undefined), snap };
      return { meta, leases, records: undefined, snap };
    });
    return async () => {
      try {
        const records = taken.records ?? (await this.collect(taken.snap));
        return withCrc(pack([...taken.meta, taken.leases, records]));
      } finally {
        await taken.snap?.close();
      }
    };
  }

  /**
   * Runs `fn` on a consistent view of the store at the current applied index
   * (for streaming backups). The view's numbers and leases are taken between
   * two applies, with an explicit database snapshot that its `records()`
   * read from, so applies go on while `fn` streams. A backend without
   * explicit snapshots runs `fn` between two applies instead, holding the
   * next apply back until it returns. The snapshot is closed when `fn` settles.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `fn` is not a
   *   function (nothing is taken)
   * @throws FaultError when the store has failed or is closed
   */
  async readView<T>(fn: (view: StoreReadView) => Promise<T>): Promise<T> {
    if (typeof fn !== 'function') throw new UsageError(ErrorCode.INVALID_ARGUMENT, `mvcc: readView needs a function, got ${fn === null ? 'null' : typeof fn}`);
    const taken = await this.exclusive(async () => {
      await this.writesDone(); // the database must hold everything applied so far
      this.assertUsable();
      const core = this.core;
      const compactRev = core.compactRev;
      const keep = compactRev >= 0 ? core.index.keep(compactRev) : new Set<string>();
      const backend = this.backend;
      const snap = backend.snapshot();
      const view: StoreReadView = {
        appliedIndex: this.applied,
        revision: core.currentRev,
        compactRevision: compactRev,
        lastLeaseId: this.lessor.lastLeaseId(),
        leases: this.lessor.leases().map((l) => ({ id: l.id, ttl: l.ttl })),
        records: async function* (this: void) {
          for await (const [k, v] of backend.scan(undefined, undefined, snap)) {
            const r = bytesToRev(k);
            // below the compaction revision: awaiting physical removal; the
            // records at it (its tombstones too) stay until the next compaction
            if (r.main < compactRev && !keep.has(revisionId(r))) continue;
            yield [k, v] as [Uint8Array, Uint8Array];
          }
        },
      };
      if (snap === undefined) return { snap, value: await fn(view), view };
      return { snap, value: undefined, view };
    });
    if (taken.snap === undefined) return taken.value as T;
    try {
      return await fn(taken.view);
    } finally {
      await taken.snap.close();
    }
  }

  private async collect(snap: unknown): Promise<Uint8Array[]> {
    const out: Uint8Array[] = [];
    for await (const [k, v] of this.backend.scan(undefined, undefined, snap)) out.push(k, v);
    return out;
  }

  /**
   * Replaces the whole state with a {@link snapshot} (from the leader). The
   * applied index becomes the snapshot's. Watchers catch up from the new
   * state (or are cancelled if their revision is compacted in it); a watch
   * from now created while the restore runs starts after the restored
   * revision, as reads made meanwhile wait for it. A crash
   * during restore leaves an empty store (applied index 0) on reopen.
   * @throws FaultError `QUORUMKV_CORRUPT_SNAPSHOT` on bad data, as `checkStoreSnapshot` finds it (nothing changed), `QUORUMKV_STORAGE_IO`
   */
  restore(data: Uint8Array): Promise<void> {
    return this.exclusive(async () => {
      await this.writesDone();
      this.assertUsable();
      const { applied, currentRev, compactRev, lastLeaseId, leases, records } = parseStoreSnapshot(data);
      let restored!: () => void;
      this.restoring = new Promise<void>((resolve) => (restored = resolve));
      try {
        // as reads from now: catch-up reads stop until onRestore, and a watch
        // from now created meanwhile starts after the restored revision
        this.hub.beginRestore(currentRev);
        // no new read starts now; the reads of past versions under way end on the old records
        while (this.readsUnderWay > 0) {
          this.readsDone = deferred();
          await this.readsDone.promise;
        }
        this.readsDone = undefined;
        await this.compactionIdle();
        const b = this.backend;
        await b.writeNow([{ sublevel: 'meta', key: META.restoring, value: new Uint8Array([1]) }]);
        await b.clearAll();
        const CHUNK = 5000;
        for (let i = 0; i < records.length; i += CHUNK * 2) {
          const ops: { sublevel: 'kv'; key: Uint8Array; value: Uint8Array }[] = [];
          for (let j = i; j < Math.min(records.length, i + CHUNK * 2); j += 2) {
            ops.push({ sublevel: 'kv', key: records[j] as Uint8Array, value: records[j + 1] as Uint8Array });
          }
          await b.writeNow(ops);
        }
        const metaOps: { sublevel: 'lease' | 'meta'; key: Uint8Array; value?: Uint8Array }[] = [];
        for (let i = 0; i < leases.length; i += 2) metaOps.push({ sublevel: 'lease', key: leaseIdToBytes(leases[i]!), value: pack([leases[i + 1]]) });
        metaOps.push({ sublevel: 'meta', key: META.state, value: pack([applied, currentRev, lastLeaseId]) });
        if (compactRev >= 0) {
          metaOps.push({ sublevel: 'meta', key: META.compactScheduled, value: pack(compactRev) });
          metaOps.push({ sublevel: 'meta', key: META.compactFinished, value: pack(compactRev) });
        } else {
          metaOps.push({ sublevel: 'meta', key: META.compactScheduled }, { sublevel: 'meta', key: META.compactFinished });
        }
        metaOps.push({ sublevel: 'meta', key: META.restoring });
        await b.writeNow(metaOps);
        // in-memory state
        const core = this.core;
        core.reset();
        core.compactRev = compactRev;
        this.lessor.reset(lastLeaseId);
        for (let i = 0; i < leases.length; i += 2) this.lessor.restoreLease(leases[i]!, leases[i + 1]!);
        const builder = new IndexBuilder(core);
        for (let i = 0; i < records.length; i += 2) builder.add(records[i] as Uint8Array, records[i + 1] as Uint8Array);
        builder.finish(currentRev);
        this.applied = applied;
        this.flushedRev = core.currentRev;
        this.notifiedRev = core.currentRev;
      } catch (err) {
        throw this.fail(err);
      } finally {
        this.restoring = undefined;
        restored();
      }
      log('restored a snapshot: applied index %d, revision %d, compaction revision %d, %d records, %d leases', applied, currentRev, compactRev, records.length / 2, leases.length / 2);
      this.hub.onRestore();
    });
  }

  /**
   * A hash of the replicated key-value state up to `rev` (default: current),
   * for comparing members (etcd's `HashKV`): CRC-32 over every revision kept
   * at or below `rev` (backend key and record, in revision order), then the
   * compaction revision and, with `withLeases` (the default), the lease
   * table (id, TTL). Independent of how far physical compaction has got.
   * Lease grants and revokes of leases without keys change no revision: a
   * hash with the leases compares members at one applied index (the
   * corruption check), one without them at one revision (etcd's `HashKV`).
   * @param rev - a non-negative safe integer; 0: the current revision
   * @param options.withLeases - hash the lease table too (a boolean, default true)
   * @throws CompactedError when `rev` is at or below the compaction revision
   * @throws UsageError `QUORUMKV_FUTURE_REVISION`; `QUORUMKV_INVALID_ARGUMENT` for a `rev` that
   *   is not a non-negative safe integer (as `KvNode.hashKv`), `options` that are not an object,
   *   or a `withLeases` that is not a boolean
   */
  async hash(rev = 0, options: { withLeases?: boolean } = {}): Promise<HashResult> {
    // NaN or a string hashed the current revision and reported the argument
    // as its revision; 2.5 hashed up to 3 and reported 2.5
    if (typeof rev !== 'number' || !Number.isSafeInteger(rev) || rev < 0) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `mvcc: hash revision must be a non-negative safe integer, got ${describeValue(rev)}`);
    }
    if (options === null || typeof options !== 'object') throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'mvcc: hash options must be an object');
    // anything but false counted as true: 'no' or 0 hashed the leases
    if (options.withLeases !== undefined && typeof options.withLeases !== 'boolean') {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `mvcc: hash options.withLeases must be a boolean, got ${describeValue(options.withLeases)}`);
    }
    const taken = await this.exclusive(async () => {
      await this.writesDone();
      this.assertUsable();
      const core = this.core;
      if (rev > 0 && rev <= core.compactRev) throw new CompactedError(core.compactRev);
      if (rev > core.currentRev) throw new UsageError(ErrorCode.FUTURE_REVISION, 'mvcc: required revision is a future revision');
      const upTo = rev > 0 ? rev : core.currentRev;
      const keep = core.compactRev >= 0 ? core.index.keep(core.compactRev) : new Set<string>();
      const leases: number[] = [];
      if (options.withLeases !== false) for (const l of this.lessor.leases()) leases.push(l.id, l.ttl);
      const snap = this.backend.snapshot();
      if (snap === undefined) {
        return { upTo, keep, leases, compactRev: core.compactRev, snap, h: await this.hashRecords(upTo, core.compactRev, keep, undefined) };
      }
      return { upTo, keep, leases, compactRev: core.compactRev, snap, h: undefined };
    });
    try {
      let h = taken.h ?? (await this.hashRecords(taken.upTo, taken.compactRev, taken.keep, taken.snap));
      h = crc32(options.withLeases !== false ? pack([taken.compactRev, taken.leases]) : pack([taken.compactRev]), h);
      return { hash: h >>> 0, revision: taken.upTo, compactRevision: taken.compactRev };
    } finally {
      await taken.snap?.close();
    }
  }

  private async hashRecords(upTo: number, compactRev: number, keep: Set<string>, snap: unknown): Promise<number> {
    let h = 0;
    const lt = revToBytes({ main: upTo + 1, sub: 0 });
    for await (const [k, v] of this.backend.scan(undefined, lt, snap)) {
      const r = bytesToRev(k);
      if (r.main <= compactRev && !keep.has(revisionId(r))) continue; // awaiting physical removal
      h = crc32(k, h);
      h = crc32(v, h);
    }
    return h;
  }

  /**
   * Closes the store: ends every watch, waits for the running apply and
   * physical compaction. Does not close the database (it may be shared).
   */
  async close(): Promise<void> {
    if (this.status !== 'open') return;
    this.status = 'closing';
    this.hub.close();
    await this.lock.catch(() => {});
    await this.writesDone();
    await this.compactionIdle().catch(() => {});
    this.status = 'closed';
  }
}
