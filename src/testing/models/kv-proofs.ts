/**
 * What the outputs of a KV history prove about its unknown-outcome writes
 * (see {@link Model.proveOutcomes}): the search for a linearization is
 * exponential in the number of operations pending at once, and a lost
 * response stays pending to the end, so every proof here saves a lot.
 * @module
 */
import { checkOptionsArg } from '../../option-keys.js';
import type { Operation } from '../history.js';
import type { OutcomeProofs } from './model.js';
import type {
  KvDeleteOutput,
  KvGetOutput,
  KvInput,
  KvOutput,
  KvPutOutput,
  KvRangeOutput,
  KvTxnOutput,
} from './kv-types.js';

/** Options of {@link proveKvOutcomes}; the same as the model's. */
export interface KvProofOptions {
  /** The model checks the global revision exactly (enables the `noEffect` proof). */
  readonly globalRevision?: boolean;
  /** The revision of the empty store. Default 1. */
  readonly initialRevision?: number;
}

/** The header revision an output reports, if any. */
function revisionOf(op: Operation<KvInput, KvOutput>): number | undefined {
  return op.status === 'ok' && op.output !== undefined ? (op.output as { revision?: number }).revision : undefined;
}

/**
 * Whether a completed operation certainly changed the store (so its
 * revision is its own): a put; a delete that deleted; a txn whose branch
 * has a put, or a delete reported as deleting.
 */
function changed(op: Operation<KvInput, KvOutput>): boolean {
  const input = op.input;
  switch (input.type) {
    case 'put':
      return true;
    case 'delete':
      return (op.output as KvDeleteOutput).deleted === 1;
    case 'txn': {
      const o = op.output as KvTxnOutput;
      if (o.succeeded === undefined) return false;
      const branch = o.succeeded ? input.success : input.failure;
      return branch.some((t, i) => t.type === 'put' || (t.type === 'delete' && o.results?.[i]?.deleted === 1));
    }
    default:
      return false;
  }
}

/**
 * Proofs about the unknown-outcome writes of a KV history.
 *
 * `tookEffect`: a write whose value (for a key) another completed operation
 * observed — a get, a range, a txn get, or the `prevValue` of a put or
 * delete — when no other operation writes that value to that key, took
 * effect before the earliest such observer returned.
 *
 * `noEffect` (global revision only, and only when every completed operation
 * reports its revision): an unknown write `u` changes the store only with a
 * revision of its own, above every revision reported by an operation that
 * returned before `u` was invoked (R0) and, to be observable, at most the
 * highest revision reported (Rmax). When the revisions in (R0, Rmax] that
 * no completed write claims are no more than the writes proven above that
 * must also take one of them (those invoked after an operation reporting
 * R0 or more returned), no revision is left for `u`: it can be left out.
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an option of a name the options do not declare
 */
export function proveKvOutcomes(
  history: readonly Operation<KvInput, KvOutput>[],
  options: KvProofOptions = {},
): OutcomeProofs<KvInput, KvOutput> {
  checkOptionsArg(options, ['globalRevision', 'initialRevision'] satisfies (keyof KvProofOptions)[], 'proveKvOutcomes options');
  const tookEffect = proveObservedWrites(history);
  const noEffect = new Set<Operation<KvInput, KvOutput>>();
  if (options.globalRevision !== true) return { tookEffect, noEffect };
  const completed = history.filter((op) => op.status === 'ok');
  if (completed.some((op) => revisionOf(op) === undefined)) return { tookEffect, noEffect };

  const initial = options.initialRevision ?? 1;
  const claimed = new Set<number>();
  let rmax = initial;
  for (const op of completed) {
    const rev = revisionOf(op)!;
    rmax = Math.max(rmax, rev);
    if (op.input.type !== 'get' && op.input.type !== 'range' && changed(op)) claimed.add(rev);
  }
  // R0(t): the highest revision reported by an operation that returned before t
  const byReturn = completed
    .map((op) => [op.returnTime, revisionOf(op)!] as const)
    .sort((a, b) => a[0] - b[0]);
  const prefixMax: number[] = [];
  let m = initial;
  for (const [, rev] of byReturn) prefixMax.push((m = Math.max(m, rev)));
  const r0 = (t: number): number => {
    let lo = 0;
    let hi = byReturn.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (byReturn[mid]![0] < t) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? initial : prefixMax[lo - 1]!;
  };
  // free revisions above each bound, counted from the top
  const freeAbove = (bound: number): number => {
    let free = 0;
    for (let r = bound + 1; r <= rmax; r++) if (!claimed.has(r)) free++;
    return free;
  };
  const provenWrites = [...tookEffect.keys()].filter((op) => {
    const input = op.input;
    return input.type === 'put' || (input.type === 'txn' && [...input.success, ...input.failure].some((t) => t.type === 'put'));
  });
  const provenR0 = provenWrites.map((op) => r0(op.callTime));
  for (const u of history) {
    if (u.status !== 'unknown' || tookEffect.has(u) || u.input.type === 'get' || u.input.type === 'range') continue;
    const bound = r0(u.callTime);
    const free = freeAbove(bound);
    const needed = provenR0.filter((r) => r >= bound).length;
    if (free <= needed) noEffect.add(u);
  }
  return { tookEffect, noEffect };
}

/** The `tookEffect` half of {@link proveKvOutcomes}. */
function proveObservedWrites(history: readonly Operation<KvInput, KvOutput>[]): Map<Operation<KvInput, KvOutput>, number> {
  const writers = new Map<string, Operation<KvInput, KvOutput>[]>();
  const slot = (key: string, value: string): string => `${key}\u0000${value}`;
  const addWriter = (key: string, value: string, op: Operation<KvInput, KvOutput>): void => {
    const k = slot(key, value);
    const list = writers.get(k);
    if (list === undefined) writers.set(k, [op]);
    else if (!list.includes(op)) list.push(op);
  };
  for (const op of history) {
    const input = op.input;
    if (input.type === 'put') addWriter(input.key, input.value, op);
    else if (input.type === 'txn') {
      for (const t of [...input.success, ...input.failure]) if (t.type === 'put') addWriter(t.key, t.value, op);
    }
  }
  const proven = new Map<Operation<KvInput, KvOutput>, number>();
  const observe = (key: string, value: string | null | undefined, by: Operation<KvInput, KvOutput>): void => {
    if (value === null || value === undefined) return;
    const list = writers.get(slot(key, value));
    if (list === undefined || list.length !== 1) return;
    const w = list[0]!;
    if (w === by || w.status !== 'unknown') return;
    const prev = proven.get(w);
    if (prev === undefined || by.returnTime < prev) proven.set(w, by.returnTime);
  };
  for (const op of history) {
    if (op.status !== 'ok' || op.output === undefined) continue;
    const input = op.input;
    switch (input.type) {
      case 'get':
        observe(input.key, (op.output as KvGetOutput).value, op);
        break;
      case 'range':
        for (const kv of (op.output as KvRangeOutput).kvs ?? []) observe(kv.key, kv.value, op);
        break;
      case 'put':
        observe(input.key, (op.output as KvPutOutput).prevValue, op);
        break;
      case 'delete':
        observe(input.key, (op.output as KvDeleteOutput).prevValue, op);
        break;
      case 'txn': {
        const o = op.output as KvTxnOutput;
        if (o.succeeded === undefined || o.results === undefined) break;
        const branch = o.succeeded ? input.success : input.failure;
        branch.forEach((t, i) => {
          const r = o.results![i];
          if (r !== undefined) observe(t.key, t.type === 'get' ? r.value : r.prevValue, op);
        });
        break;
      }
    }
  }
  return proven;
}
