/**
 * The linearizability checker.
 * @module
 */
import { checkOptionsArg } from '../../option-keys.js';
import { ErrorCode, UsageError } from '../../errors.js';
import { describeValue } from '../../arg-values.js';
import type { Operation } from '../history.js';
import { defaultStateKey, determinize, isNondeterministic } from '../models/model.js';
import type { AnyModel, Model } from '../models/model.js';
import { defaultDescribeOperation, describeResult } from './result.js';
import type { CheckResult, LinearizabilityResult, PartitionResult } from './result.js';
import { searchLinearization } from './search.js';

/** Options of {@link checkLinearizable}. */
export interface CheckOptions {
  /**
   * Time budget for the whole check (all partitions), ms. When it runs out
   * the undecided partitions are `unknown`, and so is the result unless a
   * partition was already found illegal. Default: no limit.
   */
  readonly timeoutMs?: number;
  /**
   * After an illegal verdict, look for a small illegal sub-history (each
   * attempt re-runs the search on a few operations). Default `true`.
   */
  readonly shrink?: boolean;
  /** Time budget for shrinking, ms, on top of `timeoutMs`. Default 1000. */
  readonly shrinkTimeoutMs?: number;
  /** Clock for the budgets, ms. Default `performance.now`. */
  readonly now?: () => number;
}

function validate<I, O>(history: readonly Operation<I, O>[]): void {
  if (!Array.isArray(history)) throw new UsageError(ErrorCode.INVALID_ARGUMENT, `the history must be an array of operations, not ${history === null ? 'null' : typeof history}`);
  for (const op of history as unknown[] as Operation<I, O>[]) {
    if (op === null || typeof op !== 'object') throw new UsageError(ErrorCode.INVALID_ARGUMENT, `the history holds ${op === null ? 'null' : typeof op}, not an operation`);
    // an id orders operations invoked at one time; a client id is printed
    // in describe(), where a Symbol or an object without a prototype threw
    if (!Number.isSafeInteger(op.id)) throw new UsageError(ErrorCode.INVALID_ARGUMENT, `an operation id must be an integer, not ${describeValue(op.id)}`);
    if (typeof op.clientId !== 'string' && typeof op.clientId !== 'number') {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `operation ${op.id} has client id ${describeValue(op.clientId)}: a client id must be a string or a number`);
    }
    if (op.status !== 'ok' && op.status !== 'fail' && op.status !== 'unknown') {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `operation ${describeValue(op.id)} has status ${describeValue(op.status)}`);
    }
    if (!Number.isFinite(op.callTime)) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `operation ${describeValue(op.id)} has invocation time ${describeValue(op.callTime)}, not finite`);
    }
    const ret = op.status === 'unknown' ? Infinity : op.returnTime;
    if (typeof ret !== 'number' || !(ret >= op.callTime) || (op.status !== 'unknown' && !Number.isFinite(ret))) {
      throw new UsageError(
        ErrorCode.INVALID_ARGUMENT,
        `operation ${describeValue(op.id)} returns at ${describeValue(op.returnTime)}, before its invocation at ${op.callTime} or not finite`,
      );
    }
  }
}

/**
 * Checks that a history is linearizable with respect to a model: that there
 * is a total order of its operations, consistent with real time (an
 * operation that returned before another was invoked comes first) in which
 * every operation is legal for the model (Herlihy and Wing, 1990).
 *
 * The search is Wing and Gong's, with Lowe's memoization of (set of
 * linearized operations, model state) and per-partition checking, as
 * porcupine implements it; see `searchLinearization`. The history is
 * split with `model.partition` and each partition checked on its own.
 *
 * Operation outcomes:
 * - `ok`: must be linearized, with its output checked by the model;
 * - `fail`: left out (it did not take effect);
 * - `unknown`: may be linearized anywhere after its invocation (its return
 *   time is +infinity), with no output to check, or never: the search
 *   succeeds once every `ok` operation is placed. If the model says the
 *   input is read-only, it is left out altogether; if the model proves it
 *   took effect (`proveOutcomes`), it is required, before the proof
 *   returned; if the model proves it can be left out, it is.
 *
 * Worst case exponential in the number of concurrent operations; use
 * `timeoutMs` to bound it (the result is then `unknown`).
 *
 * @param history - operations in any order, e.g. {@link HistoryRecorder.history}
 * @param model - a {@link Model} or {@link NondeterministicModel}
 * @returns the verdict, per-partition details and `describe()`
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when the history is not an
 *   array of operation objects, an operation has an id that is not an
 *   integer, a client id that is neither a string nor a number, an invalid
 *   status, a non-finite invocation time, or returns before it is invoked, or when the
 *   model has no `init` and `step` functions
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an option of a name the options do not declare,
 *   a `timeoutMs` or `shrinkTimeoutMs` that is not a number >= 0 (NaN included), or a `now` that is
 *   not a function
 */
export function checkLinearizable<S, I, O>(
  history: readonly Operation<I, O>[],
  model: AnyModel<S, I, O>,
  options: CheckOptions = {},
): LinearizabilityResult<I, O> {
  checkOptionsArg(options, ['timeoutMs', 'shrink', 'shrinkTimeoutMs', 'now'] satisfies (keyof CheckOptions)[], 'check options');
  // NaN compared false with every time, so a budget of NaN never ran out
  for (const k of ['timeoutMs', 'shrinkTimeoutMs'] as const) {
    const v = options[k];
    if (v !== undefined && (typeof v !== 'number' || Number.isNaN(v) || v < 0)) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `check options.${k} must be a number of ms >= 0, not ${describeValue(v)}`);
    }
  }
  if (options.now !== undefined && typeof options.now !== 'function') {
    throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'check options.now must be a function');
  }
  validate(history);
  const mm = model as { init?: unknown; step?: unknown } | null;
  if (mm === null || typeof mm !== 'object' || Array.isArray(mm) || typeof mm.init !== 'function' || typeof mm.step !== 'function') {
    throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'the model must be a Model or NondeterministicModel (an object with init and step functions), such as kvModel() or registerModel()');
  }
  const now = options.now ?? (() => performance.now());
  const started = now();
  const deadline = options.timeoutMs === undefined ? Infinity : started + options.timeoutMs;
  const m = (isNondeterministic(model) ? determinize(model) : model) as Model<unknown, I, O>;
  const describeOp = m.describeOperation?.bind(m) ?? defaultDescribeOperation;
  const describeState = m.describeState?.bind(m) ?? ((s: unknown) => defaultStateKey(s));

  const kept = prepare(m, history);
  const parts = m.partition !== undefined ? m.partition(kept) : [kept.slice()];

  const partitions: PartitionResult<I, O>[] = [];
  for (const ops of parts) {
    const outcome =
      now() > deadline ? undefined : searchLinearization(m, ops, deadline, now);
    const pick = (ix: readonly number[]): Operation<I, O>[] => ix.map((i) => ops[i]!);
    if (outcome === undefined) {
      partitions.push({
        result: 'unknown',
        operations: ops,
        linearization: [],
        longestPrefix: [],
        stateAfterPrefix: describeState(m.init()),
        blocker: undefined,
        rejected: [],
        illegal: [],
        steps: 0,
      });
      continue;
    }
    partitions.push({
      result: outcome.result,
      operations: ops,
      linearization: pick(outcome.linearization),
      longestPrefix: pick(outcome.longestPrefix),
      stateAfterPrefix: describeState(outcome.stateAfterPrefix),
      blocker: outcome.result === 'illegal' && outcome.blocker !== undefined ? ops[outcome.blocker] : undefined,
      rejected: outcome.result === 'illegal' ? pick(outcome.rejected) : [],
      illegal: [],
      steps: outcome.steps,
    });
  }

  const illegalPartition = partitions.findIndex((p) => p.result === 'illegal');
  if (illegalPartition >= 0 && options.shrink !== false) {
    const shrinkDeadline = now() + (options.shrinkTimeoutMs ?? 1000);
    for (let i = 0; i < partitions.length; i++) {
      const p = partitions[i]!;
      if (p.result !== 'illegal') continue;
      partitions[i] = { ...p, illegal: shrinkIllegal(m, p, shrinkDeadline, now) };
    }
  }

  const result: CheckResult =
    illegalPartition >= 0 ? 'illegal' : partitions.some((p) => p.result === 'unknown') ? 'unknown' : 'ok';
  const base = {
    result,
    partitions,
    illegalPartition,
    operationCount: kept.length,
    elapsedMs: now() - started,
  };
  return { ...base, describe: () => describeResult(base, describeOp) };
}

/**
 * The operations the search takes: failed ones and unknown read-only ones
 * left out; an unknown outcome returning at +infinity, whatever the record
 * says, unless the model proves it took effect (then it returns at the
 * proof) or had none (then it is left out).
 */
function prepare<I, O>(m: Model<unknown, I, O>, history: readonly Operation<I, O>[]): Operation<I, O>[] {
  const kept = history
    .filter((op) => op.status !== 'fail' && !(op.status === 'unknown' && m.readOnly !== undefined && m.readOnly(op.input)))
    .map((op) => (op.status === 'unknown' && op.returnTime !== Infinity ? { ...op, returnTime: Infinity } : op));
  if (m.proveOutcomes !== undefined) {
    const { tookEffect, noEffect } = m.proveOutcomes(kept);
    let w = 0;
    for (const op of kept) {
      if (op.status === 'unknown' && noEffect.has(op)) continue;
      const by = op.status === 'unknown' ? tookEffect.get(op) : undefined;
      kept[w++] = by !== undefined && by >= op.callTime && by < Infinity ? { ...op, returnTime: by } : op;
    }
    kept.length = w;
  }
  return kept;
}

function byCallTime<I, O>(ops: Iterable<Operation<I, O>>): Operation<I, O>[] {
  return [...ops].sort((a, b) => a.callTime - b.callTime || a.id - b.id);
}

/**
 * Finds a small illegal sub-history of an illegal partition. It starts from
 * the first of (longest prefix + blocker), (everything invoked before the
 * blocker returned), (the whole partition) that is illegal on its own, then
 * drops operations one at a time, earliest first, while the rest stays
 * illegal. When the blocker's output is possible after some of the other
 * operations in some order (real time and their outputs ignored: the usual
 * case, a stale read or a lost write), a drop must also keep that true, so
 * the operations that explain the blocker's output stay in (a stale read
 * keeps the write it read and the write it missed).
 * Every candidate is re-checked, so the result is always illegal; it is
 * only as small as the budget allows.
 */
function shrinkIllegal<I, O>(
  model: Model<unknown, I, O>,
  p: PartitionResult<I, O>,
  deadline: number,
  now: () => number,
): Operation<I, O>[] {
  /**
   * The verdict on a candidate, prepared and partitioned again like a
   * history of its own: an unknown outcome the whole history proved to have
   * taken effect is required only if the candidate still proves it.
   */
  const verdict = (ops: Operation<I, O>[]): CheckResult => {
    if (now() > deadline) return 'unknown';
    const perTry = Math.min(deadline, now() + 250);
    const kept = prepare(model, ops);
    const parts = model.partition !== undefined ? model.partition(kept) : [kept];
    let result: CheckResult = 'ok';
    for (const part of parts) {
      const r = searchLinearization(model, byCallTime(part), perTry, now).result;
      if (r === 'illegal') return 'illegal';
      if (r === 'unknown') result = 'unknown';
    }
    return result;
  };
  const isIllegal = (ops: Operation<I, O>[]): boolean => verdict(ops) === 'illegal';
  const blocker = p.blocker;
  const relaxed: Operation<I, O> | undefined =
    blocker === undefined ? undefined : { ...blocker, callTime: -Number.MAX_VALUE, returnTime: Number.MAX_VALUE };
  /**
   * The blocker's output is possible after some of the other operations of
   * `ops`, in some order, with real time and their own outputs ignored.
   */
  const explained = (ops: Operation<I, O>[]): boolean =>
    relaxed === undefined ||
    verdict(
      ops.map((op): Operation<I, O> =>
        op === blocker ? relaxed : { ...op, status: 'unknown', output: undefined, returnTime: Infinity },
      ),
    ) === 'ok';

  const candidates: Operation<I, O>[][] = [];
  if (blocker !== undefined) {
    candidates.push([...new Set([...p.longestPrefix, blocker])]);
    candidates.push(p.operations.filter((op) => op.callTime <= blocker.returnTime));
  }
  let current: Operation<I, O>[] = p.operations.slice();
  for (const c of candidates) {
    if (c.length < current.length && isIllegal(c)) {
      current = c;
      break;
    }
  }
  if (current.length <= 200) {
    const keepExplained = blocker !== undefined && current.includes(blocker) && explained(current);
    // drop one at a time, earliest first, the blocker last
    const order = byCallTime(current).filter((op) => op !== blocker);
    if (blocker !== undefined && current.includes(blocker) && !keepExplained) order.push(blocker);
    for (const op of order) {
      if (now() > deadline) break;
      const without = current.filter((o) => o !== op);
      if (without.length > 0 && isIllegal(without) && (!keepExplained || explained(without))) current = without;
    }
  }
  return byCallTime(current);
}
