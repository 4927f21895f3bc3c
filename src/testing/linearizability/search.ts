/**
 * The search for a linearization of one (sub-)history: Wing and Gong's
 * algorithm ("Testing and verifying concurrent objects", 1993) with Lowe's
 * memoization of configurations ("Testing for linearizability", 2017), in
 * the shape porcupine gives it (anishathalye/porcupine, `checker.go`).
 *
 * The history becomes a doubly linked list of call and return entries sorted
 * by time (calls before returns at equal times, so equal times overlap). The
 * search walks the list from its head: at a call entry it tries to apply the
 * operation to the model; if legal and the pair (set of linearized
 * operations, model state) was never reached before, it lifts the call and
 * its return out of the list, pushes the step and restarts from the head. A
 * return entry reached before its call was lifted means no pending operation
 * can go next: the search backtracks (pops the last step, puts its entries
 * back and continues after them).
 *
 * Operations with an unknown outcome return at +infinity, so they can be
 * linearized anywhere after their invocation; the search succeeds as soon as
 * every operation with a known outcome is linearized, so an unknown one may
 * also never take effect. An unknown-outcome operation with a finite return
 * time (one the model proved took effect) is required like any other.
 * @module
 */
import type { Operation } from '../history.js';
import { defaultStateKey, type Model } from '../models/model.js';

/** The outcome of {@link searchLinearization}. */
export interface SearchOutcome<S> {
  /** `ok`: linearizable; `illegal`: not; `unknown`: the deadline passed first. */
  readonly result: 'ok' | 'illegal' | 'unknown';
  /** `ok`: indexes (into the input) of a linearization, in order (unknown-outcome operations that never happened are absent). */
  readonly linearization: readonly number[];
  /** The deepest linearizable prefix found (indexes in order). */
  readonly longestPrefix: readonly number[];
  /** The model state after {@link longestPrefix}. */
  readonly stateAfterPrefix: S;
  /** `illegal`: the operation whose return was reached at the deepest dead end (it could not be placed next). */
  readonly blocker: number | undefined;
  /** `illegal`: the other pending operations tried and rejected at that dead end. */
  readonly rejected: readonly number[];
  /** Number of model steps tried. */
  readonly steps: number;
}

const HEAD = 0;
const NIL = -1;

/** 32-bit finalizer of MurmurHash3: a fixed pseudo-random 32-bit value per operation, for the incremental set hash. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

interface CacheEntry<S> {
  readonly bits: Uint32Array;
  readonly state: S;
}

/**
 * Searches for a linearization of `ops` (already partitioned and filtered:
 * no `fail` operations) against `model`.
 *
 * Optional operations (unknown outcome, return at +infinity) make the
 * search exponential in how many are pending at once: every dead end would
 * try every subset of them. So the search runs with a budget of optional
 * operations it may linearize (0, 1, 2, 4, ... up to all of them), each
 * round from scratch, and stops at the first round that finds a
 * linearization, or that finds none without ever being refused by the
 * budget (a larger budget would search the same space). Legal histories
 * usually need few of them; the verdict is the same as one unbounded
 * search.
 *
 * @param deadline - `now()` value after which the search gives up with `unknown`
 * @param now - a clock in ms (checked every 1024 steps)
 */
export function searchLinearization<S, I, O>(
  model: Model<S, I, O>,
  ops: readonly Operation<I, O>[],
  deadline: number,
  now: () => number,
): SearchOutcome<S> {
  const optional = ops.filter((o) => o.status === 'unknown' && o.returnTime === Infinity).length;
  let steps = 0;
  for (let budget = 0; ; budget = budget === 0 ? 1 : budget * 2) {
    const round = searchRound(model, ops, deadline, now, Math.min(budget, optional));
    steps += round.outcome.steps;
    if (round.outcome.result !== 'illegal' || !round.budgetHit || budget >= optional) {
      return { ...round.outcome, steps };
    }
  }
}

/** One round of {@link searchLinearization}: at most `budget` optional operations linearized at once. */
function searchRound<S, I, O>(
  model: Model<S, I, O>,
  ops: readonly Operation<I, O>[],
  deadline: number,
  now: () => number,
  budget: number,
): { outcome: SearchOutcome<S>; budgetHit: boolean } {
  const n = ops.length;
  const keyOf = model.key !== undefined ? model.key.bind(model) : defaultStateKey;
  const equal = model.equal?.bind(model);

  // Entries: position 0 is the head sentinel, then 2n entries sorted by time.
  const order: number[] = [];
  for (let i = 0; i < n; i++) order.push(2 * i, 2 * i + 1); // even = call, odd = return
  const timeOf = (e: number): number => (e & 1 ? ops[e >> 1]!.returnTime : ops[e >> 1]!.callTime);
  // by time, calls before returns at equal times; the sort is stable, so ties keep op order
  order.sort((a, b) => {
    const ta = timeOf(a);
    const tb = timeOf(b);
    return ta < tb ? -1 : ta > tb ? 1 : (a & 1) - (b & 1);
  });
  const size = 2 * n + 1;
  const next = new Int32Array(size);
  const prev = new Int32Array(size);
  const opOf = new Int32Array(size);
  const isCall = new Uint8Array(size);
  const match = new Int32Array(size).fill(NIL);
  const posOfReturn = new Int32Array(n);
  for (let p = 1; p < size; p++) {
    const e = order[p - 1]!;
    opOf[p] = e >> 1;
    if ((e & 1) === 0) isCall[p] = 1;
    else posOfReturn[e >> 1] = p;
  }
  for (let p = 1; p < size; p++) if (isCall[p]) match[p] = posOfReturn[opOf[p]!]!;
  for (let p = 0; p < size; p++) {
    next[p] = p + 1 < size ? p + 1 : NIL;
    prev[p] = p - 1;
  }

  const lift = (e: number): void => {
    next[prev[e]!] = next[e]!;
    if (next[e]! !== NIL) prev[next[e]!] = prev[e]!;
    const m = match[e]!;
    next[prev[m]!] = next[m]!;
    if (next[m]! !== NIL) prev[next[m]!] = prev[m]!;
  };
  const unlift = (e: number): void => {
    const m = match[e]!;
    next[prev[m]!] = m;
    if (next[m]! !== NIL) prev[next[m]!] = m;
    next[prev[e]!] = e;
    if (next[e]! !== NIL) prev[next[e]!] = e;
  };

  // The pass in which each operation is tried: 0 = known outcome, read-only
  // input; 1 = known outcome, other input; 2 = unknown outcome (optional).
  const PASS_READ = 0;
  const PASS_WRITE = 1;
  const PASS_UNKNOWN = 2;
  const passOf = new Uint8Array(n);
  const readOnly = model.readOnly?.bind(model);
  let remaining = 0;
  for (let i = 0; i < n; i++) {
    const o = ops[i]!;
    if (o.status === 'unknown' && o.returnTime === Infinity) passOf[i] = PASS_UNKNOWN;
    else {
      remaining++;
      passOf[i] = readOnly !== undefined && readOnly(o.input) ? PASS_READ : PASS_WRITE;
    }
  }
  const firstPass = readOnly !== undefined ? PASS_READ : PASS_WRITE;

  const words = (n + 31) >>> 5;
  const bits = new Uint32Array(words);
  const r1 = new Uint32Array(n);
  const r2 = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    r1[i] = mix32(i + 0x9e3779b9);
    r2[i] = mix32(i ^ 0x5bd1e995) ^ mix32(~i);
  }
  let h1 = 0;
  let h2 = 0;
  const cache = new Map<string, CacheEntry<S>[]>();
  const sameBits = (a: Uint32Array): boolean => {
    for (let w = 0; w < words; w++) if (a[w] !== bits[w]) return false;
    return true;
  };

  const stackPos: number[] = [];
  const stackState: S[] = [];
  let state = model.init();

  // deepest dead end seen so far
  const best: number[] = [];
  let low = 0; // lowest stack height since `best` was taken: best[0..low) is still the stack's bottom
  let bestState = state;
  let blocker: number | undefined;
  let rejected: number[] = [];

  let steps = 0;
  let iter = 0;
  let entry = next[HEAD]!;
  const finish = (result: SearchOutcome<S>['result']): { outcome: SearchOutcome<S>; budgetHit: boolean } => {
    const linearization = result === 'ok' ? stackPos.map((p) => opOf[p]!) : [];
    if (result === 'ok') {
      best.length = 0;
      best.push(...linearization);
      bestState = state;
    }
    return { outcome: { result, linearization, longestPrefix: best, stateAfterPrefix: bestState, blocker, rejected, steps }, budgetHit };
  };

  // Each configuration tries its candidates in up to three passes: in list
  // order the known-outcome operations with a read-only input, then the
  // other known-outcome ones; then, from the latest invoked back to the
  // earliest, the unknown-outcome ones. The order changes nothing to the
  // verdict, only to how soon a linearization is found: reads are cheap to
  // place, and an unknown operation stays a candidate to the end, so putting
  // it off loses nothing (when one is needed it is most often the latest).
  //
  // Two prunings keep the search small, both sound:
  // - a completed operation the model says is pure (never changes the
  //   state where it is legal: a read, mostly) is forced once legal, when
  //   it left the state as it was: any completion of this configuration can
  //   be reordered to start with it (it is pending, so nothing must come
  //   before it, and it changes nothing for the others), so if the search
  //   fails after it, the configuration fails;
  // - an unknown-outcome operation that leaves the state as it is is never
  //   tried: leaving it pending reaches everything it would.
  const anyUnknown = remaining < n;
  const pure = model.pure?.bind(model);
  const stackForced: boolean[] = [];
  let optionalUsed = 0;
  let budgetHit = false;
  let configFailed = false;
  let pass = firstPass;

  /** Tries to linearize the call at `e` next; true if the search moved on. */
  const tryStep = (e: number): boolean => {
    const op = opOf[e]!;
    const o = ops[op]!;
    if (passOf[op] === PASS_UNKNOWN && optionalUsed >= budget) {
      budgetHit = true;
      return false;
    }
    steps++;
    const [ok, nextState] = model.step(state, o.input, o.status === 'ok' ? o.output : undefined);
    if (!ok) return false;
    const nextKey = keyOf(nextState);
    const unchanged = nextKey === keyOf(state) && (equal === undefined || equal(state, nextState));
    if (passOf[op] === PASS_UNKNOWN) {
      if (unchanged) return false;
      optionalUsed++;
    }
    bits[op >>> 5] |= 1 << (op & 31);
    h1 ^= r1[op]!;
    h2 ^= r2[op]!;
    const key = `${h1.toString(36)}.${h2.toString(36)}.${nextKey}`;
    let bucket = cache.get(key);
    const seen = bucket !== undefined && bucket.some((c) => sameBits(c.bits) && (equal === undefined || equal(c.state, nextState)));
    // only where it left the state as it was: a pure operation of a
    // nondeterministic model narrows the set of possible states (determinize)
    // wherever it is legal in some of them only, and a state it dropped might
    // have made it legal after another operation, and the rest of the history
    // legal too
    const forced = unchanged && o.status === 'ok' && pure !== undefined && pure(o.input, o.output as O);
    if (seen) {
      bits[op >>> 5] &= ~(1 << (op & 31));
      h1 ^= r1[op]!;
      h2 ^= r2[op]!;
      if (passOf[op] === PASS_UNKNOWN) optionalUsed--;
      // a forced step into an explored (so failed) configuration: this one fails too
      if (forced) configFailed = true;
      return false;
    }
    if (bucket === undefined) cache.set(key, (bucket = []));
    bucket.push({ bits: bits.slice(), state: nextState });
    stackPos.push(e);
    stackState.push(state);
    stackForced.push(forced);
    state = nextState;
    if (passOf[op] !== PASS_UNKNOWN) remaining--;
    lift(e);
    return true;
  };

  const firstReturn = (): number => {
    let p = next[HEAD]!;
    while (p !== NIL && isCall[p]) p = next[p]!;
    return p;
  };

  for (;;) {
    if (remaining === 0) return finish('ok');
    if ((++iter & 1023) === 0 && now() > deadline) return finish('unknown');
    if (entry === NIL) throw new Error('linearizability search ran off the entry list');
    if (configFailed) {
      configFailed = false;
    } else if (pass !== PASS_UNKNOWN) {
      if (isCall[entry]) {
        if (passOf[opOf[entry]!] === pass && tryStep(entry)) {
          entry = next[HEAD]!;
          pass = firstPass;
        } else if (!configFailed) entry = next[entry]!;
        continue;
      }
      // reached the first return entry: on to the next pass
      if (pass === PASS_READ) {
        pass = PASS_WRITE;
        entry = next[HEAD]!;
        continue;
      }
      if (anyUnknown) {
        pass = PASS_UNKNOWN;
        entry = prev[entry]!;
        continue;
      }
    } else if (entry !== HEAD) {
      if (passOf[opOf[entry]!] === PASS_UNKNOWN && tryStep(entry)) {
        entry = next[HEAD]!;
        pass = firstPass;
      } else entry = prev[entry]!;
      continue;
    }
    // Dead end: no pending operation can go next before the first return entry.
    const ret = isCall[entry] || entry === HEAD ? firstReturn() : entry;
    if (stackPos.length > best.length || (blocker === undefined && stackPos.length === best.length)) {
      best.length = Math.min(low, best.length);
      for (let i = best.length; i < stackPos.length; i++) best.push(opOf[stackPos[i]!]!);
      low = stackPos.length;
      bestState = state;
      blocker = opOf[ret]!;
      rejected = collectRejected(ret);
    }
    // Backtrack: undo the last step; if it was forced, its configuration
    // failed as a whole, so undo the step before it too.
    for (;;) {
      if (stackPos.length === 0) return finish('illegal');
      const top = stackPos.pop()!;
      state = stackState.pop()!;
      const forced = stackForced.pop()!;
      if (stackPos.length < low) low = stackPos.length;
      const op = opOf[top]!;
      bits[op >>> 5] &= ~(1 << (op & 31));
      h1 ^= r1[op]!;
      h2 ^= r2[op]!;
      if (passOf[op] !== PASS_UNKNOWN) remaining++;
      else optionalUsed--;
      unlift(top);
      if (forced) continue;
      pass = passOf[op]!;
      entry = pass === PASS_UNKNOWN ? prev[top]! : next[top]!;
      break;
    }
  }

  function collectRejected(upTo: number): number[] {
    const out: number[] = [];
    const self = opOf[upTo]!;
    for (let p = next[HEAD]!; p !== upTo && p !== NIL; p = next[p]!) if (isCall[p] && opOf[p] !== self) out.push(opOf[p]!);
    return out;
  }
}
