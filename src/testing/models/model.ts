/**
 * The sequential specification a history is checked against: a state
 * machine that says, for a state and one operation (input and output),
 * whether the operation is legal there and which state follows. This is
 * porcupine's `Model` (anishathalye/porcupine, `model.go`), typed.
 * @module
 */
import type { Operation } from '../history.js';

/**
 * A deterministic sequential specification.
 *
 * @typeParam S - the state; treat it as immutable (`step` returns a new one)
 * @typeParam I - operation input
 * @typeParam O - operation output
 */
export interface Model<S, I, O> {
  /** The state before any operation. */
  init(): S;
  /**
   * Applies one operation to `state`.
   *
   * `output` is `undefined` for an operation whose outcome is unknown (see
   * {@link OperationStatus}): the model then applies the input without
   * checking anything and should return `[true, next]` unless the input can
   * never take effect in `state`. Whether such an operation happened at all
   * is handled by the checker, not by the model.
   *
   * @returns `[true, next]` if the operation is legal in `state`, else
   *   `[false, state]`
   */
  step(state: S, input: I, output: O | undefined): readonly [boolean, S];
  /**
   * A string that identifies `state` for memoization: two states with the
   * same key must behave identically. Without `equal`, equal keys mean equal
   * states; with `equal`, keys only group candidates (a hash). Default:
   * {@link defaultStateKey}.
   */
  key?(state: S): string;
  /** State equality, when `key` is only a hash. */
  equal?(a: S, b: S): boolean;
  /**
   * Splits a history into independent sub-histories checked one by one
   * (Herlihy and Wing's locality: a history is linearizable iff each object's
   * sub-history is). Only split where the specification is truly
   * independent. Default: one partition.
   */
  partition?(history: readonly Operation<I, O>[]): Operation<I, O>[][];
  /**
   * True for an input that, with an unknown output, never changes the
   * state. An operation with an unknown outcome and a read-only input
   * constrains nothing, so the checker drops it; completed ones are tried
   * first. Default: nothing is read-only.
   */
  readOnly?(input: I): boolean;
  /**
   * True when the operation, with this (known) output, leaves the state
   * unchanged in every state where it is legal. The checker then places it
   * as soon as it is legal without trying alternatives, which is sound only
   * if this holds everywhere, so answer `false` when unsure. Default: never.
   */
  pure?(input: I, output: O): boolean;
  /**
   * What the outputs of the history prove about its unknown-outcome
   * operations, to spare the search from guessing (it is exponential in the
   * number of pending operations):
   * - `tookEffect`: operations that certainly took effect, each with a time
   *   by which they did (typically the only write of a value another
   *   operation read, by the time that reader returned). The checker
   *   requires them, linearized before that time.
   * - `noEffect`: operations that can be left out because in every legal
   *   linearization they either did not take effect or took effect where no
   *   output can tell. The checker drops them.
   * Only return what is certain: a wrong proof can turn a linearizable
   * history illegal. Default: nothing proven.
   */
  proveOutcomes?(history: readonly Operation<I, O>[]): OutcomeProofs<I, O>;
  /** One readable line for an operation; `output` is `undefined` when the outcome is unknown. */
  describeOperation?(input: I, output: O | undefined): string;
  /** A readable rendering of a state, for failure reports. */
  describeState?(state: S): string;
}

/** What {@link Model.proveOutcomes} proves about unknown-outcome operations. */
export interface OutcomeProofs<I, O> {
  /** Operations that took effect, each with a time (ms) by which it did. */
  readonly tookEffect: ReadonlyMap<Operation<I, O>, number>;
  /** Operations that may be left out of the check. */
  readonly noEffect: ReadonlySet<Operation<I, O>>;
}

/**
 * A nondeterministic sequential specification: `step` returns every state
 * the operation may lead to (empty = illegal). The checker runs it as the
 * deterministic model whose state is the set of possible states (porcupine's
 * `NondeterministicModel`).
 */
export interface NondeterministicModel<S, I, O> {
  /** Marks the model as nondeterministic. */
  readonly nondeterministic: true;
  /** The possible initial states. */
  init(): readonly S[];
  /** Every state the operation may lead to from `state`; empty when it is illegal there. */
  step(state: S, input: I, output: O | undefined): readonly S[];
  /** As {@link Model.key}; equal keys mean equal states. Default: {@link defaultStateKey}. */
  key?(state: S): string;
  /** As {@link Model.partition}. */
  partition?(history: readonly Operation<I, O>[]): Operation<I, O>[][];
  /** As {@link Model.readOnly}. */
  readOnly?(input: I): boolean;
  /** As {@link Model.pure}: true only if the step returns exactly the given state wherever it is legal. */
  pure?(input: I, output: O): boolean;
  /** As {@link Model.proveOutcomes}. */
  proveOutcomes?(history: readonly Operation<I, O>[]): OutcomeProofs<I, O>;
  /** As {@link Model.describeOperation}. */
  describeOperation?(input: I, output: O | undefined): string;
  /** As {@link Model.describeState}. */
  describeState?(state: S): string;
}

/** A deterministic or a nondeterministic model. */
export type AnyModel<S, I, O> = Model<S, I, O> | NondeterministicModel<S, I, O>;

/** True when `model` is a {@link NondeterministicModel}. */
export function isNondeterministic<S, I, O>(model: AnyModel<S, I, O>): model is NondeterministicModel<S, I, O> {
  return (model as { nondeterministic?: unknown }).nondeterministic === true;
}

function withCollections(_key: string, value: unknown): unknown {
  if (value instanceof Map) return { '<Map>': [...value] };
  if (value instanceof Set) return { '<Set>': [...value] };
  if (typeof value === 'number' && (!Number.isFinite(value) || Object.is(value, -0))) {
    return { '<Number>': Object.is(value, -0) ? '-0' : String(value) };
  }
  if (typeof value === 'bigint') return { '<BigInt>': value.toString() };
  return value;
}

/**
 * The memoization key of a model without `key`: `JSON.stringify` of the
 * state, with a `Map` or `Set` written as its entries in iteration order
 * (plain `JSON.stringify` writes any of them as `{}`, so every state held
 * in one would have the same key, and the checker would call histories
 * illegal that are not), `Infinity`, `-Infinity`, `NaN` and `-0` written as
 * themselves (plain `JSON.stringify` writes the first three as `null` and
 * `-0` as `0`: one key for different states again) and a `bigint` as its
 * digits (which `JSON.stringify` refuses). Equal states inserted in another
 * order get other keys: less memoization, never a wrong verdict.
 */
export function defaultStateKey(state: unknown): string {
  return JSON.stringify(state, withCollections);
}

/**
 * Turns a nondeterministic model into the deterministic model over sets of
 * its states: a step maps every possible state and keeps the union (deduped
 * by key); it is legal while the union is non-empty.
 */
export function determinize<S, I, O>(model: NondeterministicModel<S, I, O>): Model<readonly S[], I, O> {
  const keyOf = model.key !== undefined ? model.key.bind(model) : defaultStateKey;
  const dedupe = (states: readonly S[]): readonly S[] => {
    if (states.length <= 1) return states;
    const seen = new Map<string, S>();
    for (const s of states) {
      const k = keyOf(s);
      if (!seen.has(k)) seen.set(k, s);
    }
    return seen.size === states.length ? states : [...seen.values()];
  };
  const det: Model<readonly S[], I, O> = {
    init: () => dedupe(model.init()),
    step(states, input, output) {
      if (states.length === 1) {
        const next = dedupe(model.step(states[0]!, input, output));
        return [next.length > 0, next.length > 0 ? next : states];
      }
      const next: S[] = [];
      for (const s of states) next.push(...model.step(s, input, output));
      const out = dedupe(next);
      return [out.length > 0, out.length > 0 ? out : states];
    },
    // Injective as the model's key is: the keys of a set are written as a
    // JSON array (joined with a separator, keys holding it could make two
    // sets one key, and the search would skip the second as explored), and
    // a single state's key that could pass for a set's is marked.
    key(states) {
      if (states.length === 1) {
        const k = keyOf(states[0]!);
        return k.charCodeAt(0) === 1 ? `\u0001one:${k}` : k;
      }
      return `\u0001set:${JSON.stringify(states.map(keyOf).sort())}`;
    },
  };
  if (model.partition !== undefined) det.partition = model.partition.bind(model);
  if (model.readOnly !== undefined) det.readOnly = model.readOnly.bind(model);
  if (model.pure !== undefined) det.pure = model.pure.bind(model);
  if (model.proveOutcomes !== undefined) det.proveOutcomes = model.proveOutcomes.bind(model);
  if (model.describeOperation !== undefined) det.describeOperation = model.describeOperation.bind(model);
  if (model.describeState !== undefined) {
    const d = model.describeState.bind(model);
    det.describeState = (states) => (states.length === 1 ? d(states[0]!) : `one of: ${states.map(d).join(' | ')}`);
  }
  return det;
}
