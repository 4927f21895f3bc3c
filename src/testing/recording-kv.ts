/**
 * Recording the operations clients make on a real cluster (any `KV`: a
 * `KvNode` over TCP, a client library in front of one) for the
 * linearizability checker, as the simulation's clients do on a simulated
 * one. See docs/testing.md, "Checking a real cluster".
 * @module
 */
import { checkOptionsArg } from '../option-keys.js';
import { RANGE_OPTION_KEYS, optionsWith } from '../server/requests.js';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { ErrorCode, FaultError, UsageError } from '../errors.js';
import { describeJson, describeValue } from '../arg-values.js';
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
import type { HistoryRecorderOptions, OpHandle, Operation } from './history.js';
import type { KeyRange } from './key-range.js';
import { checkLinearizable, type CheckOptions } from './linearizability/check.js';
import type { CheckResult } from './linearizability/result.js';
import { checkKvInput, kvModel } from './models/kv.js';
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

/** Whether `v` is an object with these methods. */
function hasMethods(v: unknown, names: readonly string[]): boolean {
  return v !== null && typeof v === 'object' && names.every((n) => typeof (v as Record<string, unknown>)[n] === 'function');
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
 * (a `UsageError`, a proposal Raft dropped, or `QUORUMKV_NO_LEADER`:
 * `definitelyNotApplied`),
 * else `unknown` (a timeout, a closed member: it may still apply).
 *
 * Left out of the check, with every operation on the keys they touch:
 * writes the model cannot express (range deletes, nested txns, lease or
 * range compares, `ignoreValue`, `ignoreLease`) and puts that attach a
 * lease, since a lease's expiry deletes its keys at a revision no client
 * sees. Serializable and historical reads are not recorded (they are not
 * linearizable by design, etcd's API guarantees), nor is a read-only txn
 * (ranges alone) that has ranges, all serializable (the member serves it
 * from its own store, as etcd does); a read-only txn
 * leaves no key out. Watches and lease calls pass through unrecorded.
 *
 * Every client that writes the keys a check covers must record into the
 * same history, and those keys must not exist when recording starts (the
 * model starts from an empty store): a write the history does not hold
 * makes it look illegal.
 */
export class RecordingKV implements KV {
  readonly #kv: KV;
  readonly #sink: KvRecordingSink;
  readonly #clientId: string | number;

  /**
   * @param kv - the `KV` calls go to
   * @param options - where to record, and the client's name
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an option of a name the options do not declare,
   *   missing options, a `kv` that is not a KV, a `sink` without `invoke` and `exclude`, or a
   *   `clientId` that is neither a string nor a number
   */
  constructor(kv: KV, options: RecordingKVOptions) {
    if (options === undefined) throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'RecordingKV options are required: { sink, clientId }');
    checkOptionsArg(options, ['sink', 'clientId'] satisfies (keyof RecordingKVOptions)[], 'RecordingKV options');
    if (!hasMethods(kv, ['put', 'range', 'delete', 'txn', 'watch'])) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'RecordingKV kv must be a KV (a KvNode, or another implementation of the KV interface)');
    }
    if (!hasMethods(options.sink, ['invoke', 'exclude'])) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'RecordingKV options.sink must be a KvRecordingSink ({ invoke, exclude }: a KvHistory or a KvEventSink)');
    }
    if (typeof options.clientId !== 'string' && typeof options.clientId !== 'number') {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `RecordingKV options.clientId must be a string or a number, not ${options.clientId === null ? 'null' : typeof options.clientId}`);
    }
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
    // as KvNode.get: a range's fields (prefix, rangeEnd) would read a range
    const res = await this.range({ ...optionsWith(options, 'get options', RANGE_OPTION_KEYS), key });
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

/** @throws UsageError `QUORUMKV_INVALID_ARGUMENT` unless `r` is `{ key: string, rangeEnd?: string }` */
function checkRange(r: unknown): void {
  const x = r as { key?: unknown; rangeEnd?: unknown } | null;
  if (typeof x !== 'object' || x === null || typeof x.key !== 'string' || (x.rangeEnd !== undefined && typeof x.rangeEnd !== 'string')) {
    throw new UsageError(ErrorCode.INVALID_ARGUMENT, `an excluded range must be { key: string, rangeEnd?: string }, got ${describeJson(r)}`);
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
 *   id, an input is not a `KvInput` (`checkKvInput`), an excluded range is
 *   not `{ key: string, rangeEnd?: string }`, or an operation's status or
 *   times are malformed (see `checkLinearizable`)
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
    checkKvInput(op.input);
  }
  for (const r of excludedRanges) checkRange(r);
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
 * The machine's monotonic clock in ms (`process.hrtime`: `CLOCK_MONOTONIC`
 * on Linux, `mach_absolute_time` on macOS, `QueryPerformanceCounter` on
 * Windows), one clock for every process of the machine: the times of
 * histories recorded in several processes can be merged.
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/**
 * What a {@link KvEventSink} sends: an operation invoked, an operation
 * completed, or ranges left out. `tag` numbers one sink's operations from
 * 0; `at` is the sink's clock (ms). Plain data (JSON), for a channel that
 * hands each event over before the operation goes on: {@link KvEventFile}
 * where the process may be killed (child_process IPC queues inside the
 * process while its pipe is full, and a killed process loses what it
 * queued).
 */
export type KvRecordEvent =
  | { t: 'invoke'; tag: number; clientId: string | number; input: KvInput; at: number }
  | { t: 'done'; tag: number; status: 'ok' | 'fail' | 'unknown'; output?: KvOutput; at: number }
  | { t: 'exclude'; ranges: KeyRange[] };

/**
 * A {@link KvRecordingSink} that sends each invocation and completion on
 * at once, as a {@link KvRecordEvent}, for a {@link KvHistoryMerger} in
 * another process. Through a channel that does not hold events back
 * ({@link KvEventFile}), a process killed with operations in flight has
 * handed over their invocations, not their completions, and they count as
 * unknown.
 */
export class KvEventSink implements KvRecordingSink {
  readonly #send: (event: KvRecordEvent) => void;
  readonly #clock: () => number;
  #tag = 0;

  /**
   * @param send - called with each event, in order
   * @param options - `clock` in ms (default {@link monotonicMs}: the same in every process of the machine)
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `send` or `clock` is not a function, or for an option of another name
   */
  constructor(send: (event: KvRecordEvent) => void, options: { clock?: () => number } = {}) {
    checkOptionsArg(options, ['clock'], 'KvEventSink options');
    if (typeof send !== 'function') throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'KvEventSink send must be a function');
    if (options.clock !== undefined && typeof options.clock !== 'function') throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'KvEventSink options.clock must be a function');
    this.#send = send;
    this.#clock = options.clock ?? monotonicMs;
  }

  /** {@inheritDoc KvRecordingSink.invoke} */
  invoke(clientId: string | number, input: KvInput): OpHandle<KvOutput> {
    const tag = this.#tag++;
    this.#send({ t: 'invoke', tag, clientId, input, at: this.#clock() });
    let done = false;
    const complete = (status: 'ok' | 'fail' | 'unknown', output?: KvOutput): void => {
      if (done) throw new UsageError(ErrorCode.OPERATION_COMPLETED, `operation ${tag} was already completed`);
      this.#send({ t: 'done', tag, status, ...(output !== undefined ? { output } : {}), at: this.#clock() });
      done = true;
    };
    return { id: tag, ok: (output) => complete('ok', output), fail: () => complete('fail'), unknown: () => complete('unknown') };
  }

  /** {@inheritDoc KvRecordingSink.exclude} */
  exclude(ranges: readonly KeyRange[]): void {
    this.#send({ t: 'exclude', ranges: [...ranges] });
  }
}

interface MergedOp {
  id: number;
  clientId: string | number;
  input: KvInput;
  output: KvOutput | undefined;
  status: 'ok' | 'fail' | 'unknown';
  callTime: number;
  returnTime: number;
}

/**
 * Builds one history from the events of several {@link KvEventSink}s (one
 * per process, or per process lifetime: a restarted process is a new
 * source), and checks it:
 *
 * ```ts
 * // each member process records into a KvEventFile of its own (a restarted
 * // process writes a new file: a new source); once the clients stop:
 * const merger = new KvHistoryMerger();
 * for (const f of readdirSync(dir)) for (const e of KvEventFile.read(join(dir, f))) merger.add(f, e);
 * const verdict = merger.check();
 * ```
 *
 * An operation invoked and never completed (its process died, or is still
 * waiting) is `unknown`. Every source's clock must be one clock
 * ({@link monotonicMs} on one machine).
 */
export class KvHistoryMerger {
  readonly #ops: MergedOp[] = [];
  readonly #excluded: KeyRange[] = [];
  readonly #tags = new Map<unknown, Map<number, MergedOp>>();
  readonly #completed = new WeakSet<MergedOp>();
  /** Per source, the time of its last invocation or completion: a source's clock never goes back. */
  readonly #last = new Map<unknown, number>();

  /**
   * Takes one event of `source` (any value naming one sink: a child
   * process, a worker, a string).
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an event whose shape
   *   is not a {@link KvRecordEvent} (an input that is not a `KvInput`, a
   *   range that is not `{ key, rangeEnd? }`, an `ok` without an output
   *   object), a time earlier than the source's last, a tag invoked twice,
   *   or a completion of a tag never invoked or already completed; nothing
   *   is changed. An output is not checked
   *   field by field here: the model checks the fields it holds, and a
   *   field left out is not checked.
   */
  add(source: unknown, event: KvRecordEvent): void {
    let tags = this.#tags.get(source);
    const bad = (why: string): never => {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `KvHistoryMerger: ${why}`);
    };
    const e = event as Partial<Record<string, unknown>> | null;
    if (typeof e !== 'object' || e === null) return bad(`an event must be an object, got ${describeValue(event)}`);
    if (e.t === 'exclude') {
      if (!Array.isArray(e.ranges)) return bad('an exclude event needs ranges of { key, rangeEnd? }');
      for (const r of e.ranges as unknown[]) checkRange(r);
      this.#excluded.push(...(e.ranges as KeyRange[]));
      return;
    }
    if (!Number.isSafeInteger(e.tag) || typeof e.at !== 'number' || !Number.isFinite(e.at)) return bad(`an event needs an integer tag and a finite time, got ${describeJson(event)}`);
    const tag = e.tag as number;
    const at = e.at;
    const last = this.#last.get(source) ?? -Infinity;
    if (at < last) return bad(`the clock of this source went backwards from ${last} to ${at}`);
    if (e.t === 'invoke') {
      if (tags?.has(tag) === true) return bad(`operation ${tag} of this source was invoked twice`);
      if (typeof e.clientId !== 'string' && typeof e.clientId !== 'number') return bad(`an invoke event needs a clientId, got ${describeJson(event)}`);
      checkKvInput(e.input);
      if (tags === undefined) this.#tags.set(source, (tags = new Map()));
      const op: MergedOp = { id: this.#ops.length, clientId: e.clientId, input: e.input as KvInput, output: undefined, status: 'unknown', callTime: at, returnTime: Infinity };
      this.#ops.push(op);
      tags.set(tag, op);
      this.#last.set(source, at);
      return;
    }
    if (e.t === 'done') {
      const op = tags?.get(tag);
      if (op === undefined) return bad(`operation ${tag} of this source completed but was never invoked`);
      if (this.#completed.has(op)) return bad(`operation ${tag} of this source was already completed`);
      if (e.status !== 'ok' && e.status !== 'fail' && e.status !== 'unknown') return bad(`a done event needs a status ok, fail or unknown, got ${describeValue(e.status)}`);
      if (e.status === 'ok' && (typeof e.output !== 'object' || e.output === null)) return bad(`operation ${tag} completed ok without an output`);
      this.#completed.add(op);
      op.status = e.status;
      op.output = e.status === 'ok' ? (e.output as KvOutput) : undefined;
      op.returnTime = e.status === 'unknown' ? Infinity : at;
      this.#last.set(source, at);
      return;
    }
    bad(`an event's t must be invoke, done or exclude, got ${describeValue(e.t)}`);
  }

  /** The merged operations so far (not completed ones as `unknown`), copies. */
  operations(): Operation<KvInput, KvOutput>[] {
    return this.#ops.map((op) => ({ ...op }));
  }

  /** The ranges excluded so far, a copy. */
  excludedRanges(): KeyRange[] {
    return [...this.#excluded];
  }

  /**
   * Checks the merged history ({@link checkKvHistory}).
   * @param options - the checker's budgets; default `timeoutMs` 20,000 ms
   */
  check(options: CheckOptions = {}): KvCheckVerdict {
    return checkKvHistory(this.#ops, this.#excluded, options);
  }
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
 * It is a {@link KvHistoryMerger} of one source, fed by a
 * {@link KvEventSink}. Times come from `performance.now()` unless
 * `options.clock` says otherwise; an invocation or completion whose time
 * is not finite or goes backwards throws `UsageError`
 * `QUORUMKV_INVALID_ARGUMENT` and is not recorded.
 */
export class KvHistory extends KvHistoryMerger implements KvRecordingSink {
  readonly #sink: KvEventSink;

  /**
   * @param options - `clock`, in ms (default `performance.now`)
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `clock` is not a function, or for an option of another name
   */
  constructor(options: HistoryRecorderOptions = {}) {
    checkOptionsArg(options, ['clock'] satisfies (keyof HistoryRecorderOptions)[], 'KvHistory options');
    if (options.clock !== undefined && typeof options.clock !== 'function') throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'KvHistory options.clock must be a function');
    super();
    this.#sink = new KvEventSink((event) => this.add(this, event), { clock: options.clock ?? (() => performance.now()) });
  }

  /** A `KV` in front of `kv` that records into this history as `clientId`. */
  client(kv: KV, clientId: string | number): RecordingKV {
    return new RecordingKV(kv, { sink: this, clientId });
  }

  /** {@inheritDoc KvRecordingSink.invoke} */
  invoke(clientId: string | number, input: KvInput): OpHandle<KvOutput> {
    return this.#sink.invoke(clientId, input);
  }

  /** {@inheritDoc KvRecordingSink.exclude} */
  exclude(ranges: readonly KeyRange[]): void {
    this.#sink.exclude(ranges);
  }
}

/**
 * A channel for {@link KvEventSink} that survives a SIGKILL of its
 * process: each event is appended to a file as one JSON line by a
 * synchronous `write`, so once `send` returns the event is the kernel's
 * (nothing is fsynced: it survives the process, not the machine). A
 * channel that queues in the process, as `process.send` does while the
 * pipe is full, loses what it queued when the process is killed; an
 * invocation lost so, whose write still applied, makes a correct history
 * look illegal.
 *
 * ```ts
 * const events = new KvEventFile(join(dir, `${process.pid}.jsonl`));
 * const kv = new RecordingKV(node, { sink: new KvEventSink(events.send), clientId: 'w1' });
 * // later, in the checking process: for each file
 * for (const e of KvEventFile.read(path)) merger.add(path, e);
 * ```
 */
export class KvEventFile {
  /** The file's path. */
  readonly path: string;
  #fd: number | undefined;

  /**
   * Opens `path` for appending (created if missing).
   * @throws FaultError `QUORUMKV_STORAGE_IO` when it cannot be opened
   */
  constructor(path: string) {
    this.path = path;
    try {
      this.#fd = openSync(path, 'a');
    } catch (err) {
      throw new FaultError(ErrorCode.STORAGE_IO, `cannot open the event file ${path}: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Appends one event (a bound function: pass it to {@link KvEventSink}).
   * @throws UsageError `QUORUMKV_STORAGE_CLOSED` after {@link close}
   * @throws FaultError `QUORUMKV_STORAGE_IO` when the write fails
   */
  readonly send = (event: KvRecordEvent): void => {
    if (this.#fd === undefined) throw new UsageError(ErrorCode.STORAGE_CLOSED, `the event file ${this.path} is closed`);
    const line = Buffer.from(`${JSON.stringify(event)}\n`);
    try {
      for (let at = 0; at < line.length; ) at += writeSync(this.#fd, line, at);
    } catch (err) {
      throw new FaultError(ErrorCode.STORAGE_IO, `cannot write the event file ${this.path}: ${(err as Error).message}`, { cause: err });
    }
  };

  /** Closes the file; later sends throw. Closing twice does nothing. */
  close(): void {
    if (this.#fd === undefined) return;
    const fd = this.#fd;
    this.#fd = undefined;
    closeSync(fd);
  }

  /**
   * The events of a file written by a {@link KvEventFile}, in order. A last
   * line without its newline (a write cut short) is left out.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when a complete line is not JSON
   * @throws FaultError `QUORUMKV_STORAGE_IO` when the file cannot be read
   */
  static read(path: string): KvRecordEvent[] {
    let body: string;
    try {
      body = readFileSync(path, 'utf8');
    } catch (err) {
      throw new FaultError(ErrorCode.STORAGE_IO, `cannot read the event file ${path}: ${(err as Error).message}`, { cause: err });
    }
    const lines = body.split('\n');
    lines.pop(); // after the last newline: empty, or a line cut short
    return lines.map((line, i) => {
      try {
        return JSON.parse(line) as KvRecordEvent;
      } catch {
        throw new UsageError(ErrorCode.INVALID_ARGUMENT, `the event file ${path}: line ${i + 1} is not JSON`);
      }
    });
  }
}
