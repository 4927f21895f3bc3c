/**
 * Software transactional memory on the KV (etcd's `concurrency.STM`): run a
 * function that reads and writes keys, commit its writes as one txn guarded
 * by compares on what it read, and run it again on conflict.
 * @module
 */
import { ErrorCode, FaultError, UsageError } from '../errors.js';
import { describeValue } from '../arg-values.js';
import type { KeyValue, RangeResponse, TxnResponse } from '../mvccpb/index.js';
import { text, type CompareInput, type KV, type RangeOptions, type RequestOpInput } from '../server/kv.js';
import { kvOf, rangeOfOp } from './keys.js';
import { abortedError, optionsOf } from './scope.js';

/**
 * Isolation levels (etcd's `concurrency.Isolation`), strongest first:
 * - `'serializableSnapshot'` (default): every read sees the snapshot of the
 *   first read's revision (reads started while it is in flight, with
 *   `Promise.all`, wait for it and read at that revision); commit checks that nothing read changed and that
 *   no written key changed since that revision. Serializable, and no write
 *   skew on the written keys either.
 * - `'serializable'`: reads at the first read's revision; commit checks that
 *   nothing read changed. Serializable.
 * - `'repeatableReads'`: each key is read once (member-local reads) and
 *   commit checks that nothing read changed; reads of different keys may
 *   come from different revisions. Serializable for transactions that write
 *   only keys they read.
 * - `'readCommitted'`: member-local reads, no commit checks: never retries,
 *   but a transaction may overwrite concurrent updates (lost updates).
 */
export type Isolation = 'serializableSnapshot' | 'serializable' | 'repeatableReads' | 'readCommitted';

/** The operations available inside a {@link transact} function. Keys and values are UTF-8 strings. */
export interface STM {
  /** The value of `key` (this transaction's own write if any), `undefined` when it does not exist. */
  get(key: string): Promise<string | undefined>;
  /** The modRevision of `key` as read by this transaction (0 when it does not exist). */
  rev(key: string): Promise<number>;
  /**
   * Writes `key` = `value` at commit (optionally attached to `lease`, a lease id; 0 or left out: none).
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an empty key, a value that is not a string, or a lease that is not an integer (`null` included)
   */
  put(key: string, value: string, options?: { lease?: number }): void;
  /** Deletes `key` at commit. */
  del(key: string): void;
}

/** Options of {@link transact}. */
export interface TransactOptions {
  /** Default `'serializableSnapshot'`. */
  isolation?: Isolation;
  /**
   * How many times to run the function again after a conflict (etcd retries
   * forever). Default 16. Past it, `QUORUMKV_STM_CONFLICT`.
   */
  retries?: number;
  /** Keys to read in one round trip before the first run (etcd's `WithPrefetch`). */
  prefetch?: string[];
  /** Stops retrying: the call fails with `QUORUMKV_ABORTED` (a commit in flight still completes). */
  signal?: AbortSignal;
}

/** What {@link transact} resolves with. */
export interface TransactResult<T> {
  /** What the function returned on the committed run. */
  value: T;
  /** The committed txn's response (`header.revision` is the commit revision when something was written). */
  response: TxnResponse;
  /** How many times the function ran (1 = no conflict). */
  attempts: number;
}

interface Write {
  op: RequestOpInput;
  value: string | undefined;
}

interface Read {
  kv: KeyValue | undefined;
  /** Revision the read was made at. */
  revision: number;
}

/** One run of the function: read set, write set, and how it reads. */
class Attempt implements STM {
  readonly reads = new Map<string, Read>();
  readonly writes = new Map<string, Write>();
  /** Reads in flight, by key. */
  private readonly pending = new Map<string, Promise<Read>>();
  /** Revision of the first read (snapshot levels read at it). */
  snapshot = 0;
  /** The first read while it is in flight (snapshot levels): the reads started meanwhile wait for its revision. */
  private firstRead: Promise<void> | undefined;

  constructor(
    private readonly kv: KV,
    private readonly isolation: Isolation,
    private readonly prefetched: Map<string, Read>,
  ) {}

  async get(key: string): Promise<string | undefined> {
    checkKey(key);
    const w = this.writes.get(key);
    if (w !== undefined) return w.value;
    const r = await this.fetch(key);
    return r.kv === undefined ? undefined : text(r.kv.value);
  }

  async rev(key: string): Promise<number> {
    checkKey(key);
    const r = await this.fetch(key);
    return r.kv?.modRevision ?? 0;
  }

  put(key: string, value: string, options: { lease?: number } = {}): void {
    options = optionsOf(options, 'put options', ['lease']);
    checkKey(key);
    if (typeof value !== 'string') throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'stm: value must be a string');
    const lease = options.lease;
    // a null lease is not "no lease": it is refused, as the KV's put refuses it
    if (lease !== undefined && !Number.isSafeInteger(lease)) throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'stm: lease must be an integer lease id');
    this.writes.set(key, { op: { put: { key, value, lease: lease ?? 0 } }, value });
  }

  del(key: string): void {
    checkKey(key);
    this.writes.set(key, { op: { deleteRange: { key } }, value: undefined });
  }

  /**
   * The read of `key`: one read per key and run. A second read of a key
   * whose first is still in flight (`Promise.all([stm.get(k), stm.rev(k)])`)
   * shares it: a read of its own could see a newer value, and the commit
   * would then check that one, not the one the function used.
   */
  private fetch(key: string): Promise<Read> {
    const known = this.reads.get(key);
    if (known !== undefined) return Promise.resolve(known);
    const inFlight = this.pending.get(key);
    if (inFlight !== undefined) return inFlight;
    const read = this.load(key).finally(() => this.pending.delete(key));
    this.pending.set(key, read);
    return read;
  }

  private async load(key: string): Promise<Read> {
    const snap = this.isolation === 'serializableSnapshot' || this.isolation === 'serializable';
    // the first read fixes the snapshot; later reads are local reads at it,
    // also those started while it is in flight (Promise.all): a read of
    // their own, or a prefetched value, could be of another revision
    while (snap && this.snapshot === 0 && this.firstRead !== undefined) {
      const pending = this.firstRead;
      await pending;
      if (this.firstRead === pending) this.firstRead = undefined; // it failed: the next read is the first
    }
    const pre = this.prefetched.get(key);
    if (pre !== undefined && (!snap || this.snapshot === 0 || pre.revision === this.snapshot)) {
      this.prefetched.delete(key);
      this.note(key, pre);
      return pre;
    }
    let opts: RangeOptions = {};
    if (snap) {
      if (this.snapshot > 0) opts = { revision: this.snapshot, serializable: true };
    } else {
      opts = { serializable: true };
    }
    const reading = this.kv.range({ key, ...opts }).then((res: RangeResponse) => {
      const read: Read = { kv: res.kvs[0], revision: opts.revision ?? res.header.revision };
      this.note(key, read);
      return read;
    });
    // settles once the snapshot is noted (or the read failed)
    if (snap && this.snapshot === 0) this.firstRead = reading.then(() => undefined, () => undefined);
    return reading;
  }

  private note(key: string, read: Read): void {
    if (this.snapshot === 0) this.snapshot = read.revision;
    this.reads.set(key, read);
  }

  /** The commit's compares for this isolation level. */
  compares(): CompareInput[] {
    if (this.isolation === 'readCommitted') return [];
    const out: CompareInput[] = [];
    for (const [key, r] of this.reads) {
      out.push({ key, target: 'MOD', result: 'EQUAL', modRevision: r.kv?.modRevision ?? 0 });
    }
    if (this.isolation === 'serializableSnapshot' && this.snapshot > 0) {
      for (const key of this.writes.keys()) {
        if (!this.reads.has(key)) out.push({ key, target: 'MOD', result: 'LESS', modRevision: this.snapshot + 1 });
      }
    }
    return out;
  }
}

function checkKey(key: string): void {
  if (typeof key !== 'string' || key === '') throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'stm: key must be a non-empty string');
}

/**
 * Runs `fn` as a transaction (etcd's `concurrency.NewSTM`): `fn` reads with
 * `stm.get` / `stm.rev` and buffers writes with `stm.put` / `stm.del`; when
 * it returns, its writes are committed as one txn whose compares check, at
 * the chosen {@link Isolation} level, that what it read is unchanged. On a
 * conflict `fn` runs again (with the keys it read prefetched at the
 * conflicting revision, in the same round trip), up to `retries` times.
 *
 * `fn` must be free of side effects other than through `stm`: it may run
 * several times. When it throws, nothing is committed and the error is
 * rethrown.
 *
 * Guarantees: with `'serializableSnapshot'`, `'serializable'` (and
 * `'repeatableReads'` for functions that write only keys they read), the
 * committed transactions are serializable: for instance transfers between
 * accounts keep the total constant under any concurrency. Not guaranteed:
 * progress under heavy contention (`QUORUMKV_STM_CONFLICT` past the retry
 * limit), and with `'readCommitted'`, isolation from concurrent writers.
 *
 * ```ts
 * const { value } = await transact(node, async (stm) => {
 *   const from = Number(await stm.get('accounts/alice'));
 *   const to = Number(await stm.get('accounts/bob'));
 *   stm.put('accounts/alice', String(from - 10));
 *   stm.put('accounts/bob', String(to + 10));
 *   return from - 10;
 * }, { isolation: 'serializableSnapshot', retries: 10 });
 * ```
 * @throws FaultError `QUORUMKV_STM_CONFLICT` after `retries` conflicting
 *   re-runs; `QUORUMKV_ABORTED` when `signal` aborts between runs; errors of
 *   the KV (which end the transaction: a commit that timed out may or may not
 *   have been applied)
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for bad options (an option
 *   that is `null` included: only a left-out option takes its default) or
 *   keys, or a `kv` that is not a KV
 */
export async function transact<T>(kv: KV, fn: (stm: STM) => T | Promise<T>, options: TransactOptions = {}): Promise<TransactResult<T>> {
  kvOf(kv, 'transact\'s kv');
  options = optionsOf(options, 'transact options', ['isolation', 'retries', 'prefetch', 'signal']);
  if (typeof fn !== 'function') throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'transact needs a function');
  // a null option is refused, not taken for the default (only undefined is)
  for (const name of ['isolation', 'retries', 'prefetch'] as const) {
    if (options[name] === null) throw new UsageError(ErrorCode.INVALID_ARGUMENT, `stm: ${name} must not be null (leave it out for the default)`);
  }
  const isolation = options.isolation ?? 'serializableSnapshot';
  if (!['serializableSnapshot', 'serializable', 'repeatableReads', 'readCommitted'].includes(isolation)) {
    throw new UsageError(ErrorCode.INVALID_ARGUMENT, `stm: unknown isolation level ${describeValue(isolation)}`);
  }
  const retries = options.retries ?? 16;
  if (!Number.isSafeInteger(retries) || retries < 0) throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'stm: retries must be a non-negative integer');
  const prefetched = new Map<string, Read>();
  const prefetch = options.prefetch ?? [];
  if (!Array.isArray(prefetch)) throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'stm: prefetch must be an array of keys');
  for (const key of prefetch) checkKey(key);
  if (prefetch.length > 0) {
    const res = await kv.txn({ success: prefetch.map((key) => ({ range: { key } })) });
    prefetch.forEach((key, i) => prefetched.set(key, { kv: rangeOfOp(res.responses[i]).kvs[0], revision: res.header.revision }));
  }
  for (let attempt = 1; ; attempt++) {
    if (options.signal?.aborted === true) throw abortedError(options.signal.reason);
    const stm = new Attempt(kv, isolation, prefetched);
    const value = await fn(stm);
    const readKeys = [...stm.reads.keys()];
    const snap = isolation === 'serializableSnapshot' || isolation === 'serializable';
    const res = await kv.txn({
      compare: stm.compares(),
      success: [...stm.writes.values()].map((w) => w.op),
      // on conflict, read the read set again in the same round trip (etcd's prefetch on retry)
      failure: snap ? readKeys.map((key) => ({ range: { key } })) : [],
    });
    if (res.succeeded) return { value, response: res, attempts: attempt };
    if (attempt > retries) {
      throw new FaultError(ErrorCode.STM_CONFLICT, `stm: transaction conflicted ${attempt} times (retries: ${retries})`);
    }
    prefetched.clear();
    if (snap) readKeys.forEach((key, i) => prefetched.set(key, { kv: rangeOfOp(res.responses[i]).kvs[0], revision: res.header.revision }));
  }
}
