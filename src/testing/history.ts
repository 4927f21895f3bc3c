/**
 * Recording a concurrent history of client operations for the linearizability
 * checker: each operation has an invocation time, a return time and an
 * outcome. The model of a history is Herlihy and Wing's ("Linearizability: a
 * correctness condition for concurrent objects", 1990): an operation takes
 * effect atomically at some instant between its invocation and its response.
 * @module
 */
import { checkOptionsArg } from '../option-keys.js';
import { ErrorCode, UsageError } from '../errors.js';
import { describeValue } from '../arg-values.js';

/**
 * The outcome of a recorded operation.
 *
 * - `ok`: the operation returned; its output is known and it took effect once.
 * - `fail`: the operation definitely did not take effect (for instance it was
 *   rejected before being proposed). The checker leaves it out.
 * - `unknown`: the client does not know (timed out, connection lost): it may
 *   have taken effect at any instant after its invocation, or never. Its
 *   return time is `Infinity` and it has no output.
 */
export type OperationStatus = 'ok' | 'fail' | 'unknown';

/**
 * One operation of a history.
 *
 * Times are in ms of whatever clock recorded them (only their order matters).
 * Two operations are concurrent unless one returned strictly before the other
 * was invoked; equal times count as overlapping.
 */
export interface Operation<I, O> {
  /** Position of the operation in its history (the recorder numbers from 0). */
  readonly id: number;
  /** The client that issued it (used for display only). */
  readonly clientId: string | number;
  /** What the client asked for. */
  readonly input: I;
  /** What it got back; `undefined` unless `status` is `ok`. */
  readonly output: O | undefined;
  /** The outcome; see {@link OperationStatus}. */
  readonly status: OperationStatus;
  /** Invocation time, ms. Finite. */
  readonly callTime: number;
  /** Return time, ms; `Infinity` when `status` is `unknown`; never below `callTime`. */
  readonly returnTime: number;
}

/**
 * The handle of one invoked operation: complete it exactly once with
 * {@link OpHandle.ok}, {@link OpHandle.fail} or {@link OpHandle.unknown}.
 *
 * Completing it twice throws `UsageError` with code
 * `QUORUMKV_OPERATION_COMPLETED` and changes nothing.
 */
export interface OpHandle<O> {
  /** The id of the operation in the recorder's history. */
  readonly id: number;
  /** The operation returned `output`; the return time is read from the clock now. */
  ok(output: O): void;
  /** The operation definitely did not take effect (rejected before it was proposed). */
  fail(): void;
  /** The outcome is unknown (timeout, lost connection): it may or may not have taken effect. */
  unknown(): void;
}

/** Options of {@link HistoryRecorder}. */
export interface HistoryRecorderOptions {
  /**
   * The clock, in ms. It must never go backwards. The default is a counter
   * that returns 0, 1, 2, ... on successive reads, so a history recorded from
   * a deterministic run is itself deterministic (the order of invocations
   * and returns is all the checker needs).
   */
  readonly clock?: () => number;
}

interface Slot<I, O> {
  clientId: string | number;
  input: I;
  output: O | undefined;
  status: OperationStatus | 'pending';
  callTime: number;
  returnTime: number;
}

/**
 * Records a history of concurrent operations.
 *
 * ```ts
 * const rec = new HistoryRecorder<KvInput, KvOutput>();
 * const op = rec.invoke('client-1', { type: 'put', key: 'a', value: '1' });
 * try { const res = await kv.put('a', '1'); op.ok({ revision: res.header.revision }); }
 * catch (err) { definitelyNotApplied(err) ? op.fail() : op.unknown(); }
 * const result = checkLinearizable(rec.history(), kvModel());
 * ```
 *
 * Read the clock as close as possible to the real invocation (just before
 * sending) and return (just after the response arrives): the checker assumes
 * the operation took effect between the two readings.
 *
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` from `invoke` or a completion
 *   if the clock went backwards or returned a value that is not finite.
 */
export class HistoryRecorder<I, O> {
  readonly #slots: Slot<I, O>[] = [];
  readonly #clock: () => number;
  #counter = 0;
  #last = -Infinity;

  /**
   * @param options - `clock` (see {@link HistoryRecorderOptions})
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an option of a name the options do not declare, or a `clock` that is not a function
   */
  constructor(options: HistoryRecorderOptions = {}) {
    checkOptionsArg(options, ['clock'] satisfies (keyof HistoryRecorderOptions)[], 'HistoryRecorder options');
    if (options.clock !== undefined && typeof options.clock !== 'function') throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'HistoryRecorder options.clock must be a function');
    this.#clock = options.clock ?? (() => this.#counter++);
  }

  /** Number of operations invoked so far. */
  get size(): number {
    return this.#slots.length;
  }

  /**
   * Records the invocation of `input` by `clientId` now and returns the
   * handle to complete it with.
   * @param clientId - the client: a string or a number, as `RecordingKV`'s `clientId`
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `clientId` is neither a string nor a
   *   number (nothing is recorded and the clock is not read), or the clock went backwards or
   *   returned a value that is not finite
   */
  invoke(clientId: string | number, input: I): OpHandle<O> {
    // a Symbol made the checker's report throw a TypeError; an object was shown as [object Object]
    if (typeof clientId !== 'string' && typeof clientId !== 'number') {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `a client id must be a string or a number, not ${describeValue(clientId)}`);
    }
    const callTime = this.#now();
    const id = this.#slots.length;
    const slot: Slot<I, O> = { clientId, input, output: undefined, status: 'pending', callTime, returnTime: Infinity };
    this.#slots.push(slot);
    const complete = (status: OperationStatus, output: O | undefined): void => {
      if (slot.status !== 'pending') {
        throw new UsageError(ErrorCode.OPERATION_COMPLETED, `operation ${id} was already completed as ${slot.status}`);
      }
      const returnTime = status === 'unknown' ? Infinity : this.#now();
      slot.status = status;
      slot.output = output;
      slot.returnTime = returnTime;
    };
    return {
      id,
      ok: (output: O) => complete('ok', output),
      fail: () => complete('fail', undefined),
      unknown: () => complete('unknown', undefined),
    };
  }

  /**
   * The operations recorded so far, in invocation order (`id` = index).
   * Operations not completed yet are reported as `unknown` (they are still in
   * flight, so they may or may not take effect). The result is a copy.
   */
  history(): Operation<I, O>[] {
    return this.#slots.map((s, id) => ({
      id,
      clientId: s.clientId,
      input: s.input,
      output: s.status === 'ok' ? s.output : undefined,
      status: s.status === 'pending' ? 'unknown' : s.status,
      callTime: s.callTime,
      returnTime: s.status === 'pending' || s.status === 'unknown' ? Infinity : s.returnTime,
    }));
  }

  #now(): number {
    const t = this.#clock();
    if (!Number.isFinite(t)) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `history clock returned ${describeValue(t)}, not a finite number`);
    }
    if (t < this.#last) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `history clock went backwards from ${this.#last} to ${t}`);
    }
    this.#last = t;
    return t;
  }
}
