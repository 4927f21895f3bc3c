/**
 * Recording the operations clients make on a real cluster (any `KV`: a
 * `KvNode` over TCP, a client library in front of one) for the
 * linearizability checker, as the simulation's clients do on a simulated
 * one. See docs/testing.md, "Checking a real cluster".
 * @module
 */
import { ErrorCode, UsageError } from '../errors.js';
import type {
  DeleteRangeResponse,
  KeyValue,
  LeaseGrantResponse,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseRevokeResponse,
  LeaseTimeToLiveResponse,
  PutResponse,
  RangeResponse,
  TxnResponse,
} from '../mvccpb/index.js';
import type {
  BytesLike,
  DeleteOptions,
  KV,
  PutOptions,
  RangeInput,
  RangeOptions,
  TxnInput,
  Watch,
  WatchOptions,
} from '../server/index.js';
import { HistoryRecorder, type HistoryRecorderOptions, type OpHandle, type Operation } from './history.js';
import type { KeyRange } from './key-range.js';
import { checkLinearizable, type CheckOptions } from './linearizability/check.js';
import type { CheckResult } from './linearizability/result.js';
import { kvModel } from './models/kv.js';
import type { KvInput, KvOutput } from './models/kv-types.js';
import { buildCheckedHistory } from './simulation/checked-history.js';
import { deleteCall, putCall, rangeCall, txnCall, type ModelCall } from './simulation/kv-convert.js';
import { definitelyNotApplied } from './simulation/sim-client.js';

/**
 * Where a {@link RecordingKV} records. {@link KvHistory} is one; a process
 * whose history is checked elsewhere (a member of a multi-process test)
 * can give its own, sending each invocation and completion on, with times
 * of a clock every process shares (`process.hrtime`, the system's
 * monotonic clock, on one machine).
 */
export interface KvRecordingSink {
  /** An operation the model expresses is invoked now; complete the handle once it returns. */
  invoke(clientId: string | number, input: KvInput): OpHandle<KvOutput>;
  /**
   * A write the model cannot express touches these ranges (a range
   * delete, a nested txn, a put with a lease, ...): every operation on them
   * is left out of the check.
   */
  exclude(ranges: readonly KeyRange[]): void;
}

/** Options of {@link RecordingKV}. */
export interface RecordingKVOptions {
  /** Where to record. */
  sink: KvRecordingSink;
  /** The client's name in the history (one client makes one call at a time, or several: the history does not care). */
  clientId: string | number;
}

/**
 * A `KV` that records what its client asked and what came back, for
 * {@link checkKvHistory}, and otherwise passes every call through.
 *
 * Recorded: linearizable gets and ranges without options, puts, single-key
 * deletes, and txns of value/version/createRevision/modRevision compares
 * and single-key get/put/delete operations (the operations of
 * `kvModel()`). Outcome: `ok` with the output; for a read that failed,
 * `fail`; for a write that failed, `fail` when it certainly did not apply
 * (a `UsageError`, or a proposal Raft dropped: `definitelyNotApplied`),
 * else `unknown` (a timeout, a closed member: it may still apply).
 *
 * Left out of the check, with every operation on the keys they touch:
 * writes the model cannot express (range deletes, nested txns, lease or
 * range compares, `ignoreValue`, `ignoreLease`) and puts that attach a
 * lease, since a lease's expiry deletes its keys at a revision no client
 * sees. Serializable and historical reads are not recorded (they are not
 * linearizable by design, etcd's API guarantees). Watches and lease calls
 * pass through unrecorded.
 *
 * Every client that writes the keys a check covers must record into the
 * same history: a write it does not see makes the history look illegal.
 */
export class RecordingKV implements KV {
  readonly #kv: KV;
  readonly #sink: KvRecordingSink;
  readonly #clientId: string | number;

  /**
   * @param kv - the `KV` calls go to
   * @param options - where to record, and the client's name
   */
  constructor(kv: KV, options: RecordingKVOptions) {
    this.#kv = kv;
    this.#sink = options.sink;
    this.#clientId = options.clientId;
  }

  /** {@inheritDoc KV.put} */
  async put(key: BytesLike, value: BytesLike, options: PutOptions = {}): Promise<PutResponse> {
    return this.#call(putCall(key, value, options, 'excluded'), () => this.#kv.put(key, value, options));
  }

  /** {@inheritDoc KV.get} */
  async get(key: BytesLike, options: RangeOptions = {}): Promise<KeyValue | undefined> {
    const res = await this.range({ ...options, key });
    return res.kvs[0];
  }

  /** {@inheritDoc KV.range} */
  async range(input: RangeInput): Promise<RangeResponse> {
    return this.#call(rangeCall(input), () => this.#kv.range(input));
  }

  /** {@inheritDoc KV.delete} */
  async delete(key: BytesLike, options: DeleteOptions = {}): Promise<DeleteRangeResponse> {
    return this.#call(deleteCall(key, options), () => this.#kv.delete(key, options));
  }

  /** {@inheritDoc KV.txn} */
  async txn(input: TxnInput): Promise<TxnResponse> {
    return this.#call(txnCall(input, 'excluded'), () => this.#kv.txn(input));
  }

  /** {@inheritDoc KV.watch} Not recorded. */
  watch(key: BytesLike, options?: WatchOptions): Watch {
    return this.#kv.watch(key, options);
  }

  /** {@inheritDoc KV.leaseGrant} Not recorded. */
  leaseGrant(ttlSeconds: number, options?: { id?: number }): Promise<LeaseGrantResponse> {
    return this.#kv.leaseGrant(ttlSeconds, options);
  }

  /** {@inheritDoc KV.leaseRevoke} Not recorded: the keys it deletes were left out by the puts that attached them. */
  leaseRevoke(id: number): Promise<LeaseRevokeResponse> {
    return this.#kv.leaseRevoke(id);
  }

  /** {@inheritDoc KV.leaseKeepAlive} Not recorded. */
  leaseKeepAlive(id: number): Promise<LeaseKeepAliveResponse> {
    return this.#kv.leaseKeepAlive(id);
  }

  /** {@inheritDoc KV.leaseTimeToLive} Not recorded. */
  leaseTimeToLive(id: number, options?: { keys?: boolean }): Promise<LeaseTimeToLiveResponse> {
    return this.#kv.leaseTimeToLive(id, options);
  }

  /** {@inheritDoc KV.leases} Not recorded. */
  leases(): Promise<LeaseLeasesResponse> {
    return this.#kv.leases();
  }

  async #call<T>(c: ModelCall<T>, run: () => Promise<T>): Promise<T> {
    if (c.input === undefined && c.kind === 'write') this.#sink.exclude(c.ranges);
    const op = c.input !== undefined ? this.#sink.invoke(this.#clientId, c.input) : undefined;
    let res: T;
    try {
      res = await run();
    } catch (err) {
      if (c.kind === 'read' || definitelyNotApplied(err)) op?.fail();
      else op?.unknown();
      throw err;
    }
    op?.ok(c.output(res));
    return res;
  }

}

/** The verdict of {@link checkKvHistory}. */
export interface KvCheckVerdict {
  /** True when the checked history is linearizable. */
  ok: boolean;
  /** `ok`, `illegal` (a violation was found) or `unknown` (out of time). */
  result: CheckResult;
  /** Operations checked. */
  checked: number;
  /** Operations left out because they touch keys excluded by unmodeled writes. */
  excluded: number;
  /** A readable report: the verdict, and for a violation the operations that show it. */
  describe(): string;
}

/**
 * Checks a recorded history of KV operations for linearizability against
 * `kvModel()` (per-key revisions; see {@link kvModel}), leaving out the
 * operations on `excludedRanges`. Operations may come from several
 * recorders (several processes), merged: their ids must be unique, and
 * their times read from one clock.
 *
 * @param operations - the history, e.g. {@link KvHistory.operations}
 * @param excludedRanges - key ranges of writes outside the model ({@link KvRecordingSink.exclude})
 * @param options - the checker's budgets; default `timeoutMs` 20,000 ms of real time
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when two operations share an
 *   id, or one is malformed (see `checkLinearizable`)
 */
export function checkKvHistory(
  operations: readonly Operation<KvInput, KvOutput>[],
  excludedRanges: readonly KeyRange[] = [],
  options: CheckOptions = {},
): KvCheckVerdict {
  const ids = new Set<number>();
  for (const op of operations) {
    if (ids.has(op.id)) throw new UsageError(ErrorCode.INVALID_ARGUMENT, `two operations have id ${op.id}: give merged histories unique ids`);
    ids.add(op.id);
  }
  const built = buildCheckedHistory(operations, [], [], excludedRanges);
  const res = checkLinearizable(built.operations, kvModel(), { timeoutMs: 20_000, ...options });
  return {
    ok: res.result === 'ok',
    result: res.result,
    checked: built.operations.length,
    excluded: built.excluded,
    describe: () => `${res.describe()}\n${built.operations.length} operations checked, ${built.excluded} left out (keys written outside the model)`,
  };
}

/**
 * A history of one process's clients, and its check:
 *
 * ```ts
 * const history = new KvHistory();
 * const kv = history.client(node, 'worker-1');   // a KV that records
 * await kv.put('k', 'v1'); await kv.get('k');
 * const verdict = history.check();
 * if (!verdict.ok) console.log(verdict.describe());
 * ```
 *
 * Times come from `performance.now()` unless `options.clock` says
 * otherwise (it must never go backwards).
 */
export class KvHistory implements KvRecordingSink {
  readonly #recorder: HistoryRecorder<KvInput, KvOutput>;
  readonly #excluded: KeyRange[] = [];

  /** @param options - `clock`, in ms (default `performance.now`) */
  constructor(options: HistoryRecorderOptions = {}) {
    this.#recorder = new HistoryRecorder({ clock: options.clock ?? (() => performance.now()) });
  }

  /** A `KV` in front of `kv` that records into this history as `clientId`. */
  client(kv: KV, clientId: string | number): RecordingKV {
    return new RecordingKV(kv, { sink: this, clientId });
  }

  /** {@inheritDoc KvRecordingSink.invoke} */
  invoke(clientId: string | number, input: KvInput): OpHandle<KvOutput> {
    return this.#recorder.invoke(clientId, input);
  }

  /** {@inheritDoc KvRecordingSink.exclude} */
  exclude(ranges: readonly KeyRange[]): void {
    this.#excluded.push(...ranges);
  }

  /** The operations so far (in flight ones as `unknown`), a copy. */
  operations(): Operation<KvInput, KvOutput>[] {
    return this.#recorder.history();
  }

  /** The ranges excluded so far, a copy. */
  excludedRanges(): KeyRange[] {
    return [...this.#excluded];
  }

  /**
   * Checks the history so far ({@link checkKvHistory}).
   * @param options - the checker's budgets; default `timeoutMs` 20,000 ms
   */
  check(options: CheckOptions = {}): KvCheckVerdict {
    return checkKvHistory(this.operations(), this.#excluded, options);
  }
}

