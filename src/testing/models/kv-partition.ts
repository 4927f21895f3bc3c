/**
 * Splitting a KV history into independent sub-histories by key. Operations
 * that touch several keys (a range, a multi-key txn) glue their keys into one
 * connected component, so every operation lands in the partition of all the
 * keys it reads or writes. Sound by Herlihy and Wing's locality theorem, as
 * long as the model checks nothing across keys (so not with a global
 * revision).
 * @module
 */
import type { Operation } from '../history.js';
import { compareKeys, inKeyRange } from '../key-range.js';
import type { KvInput, KvOutput, KvRangeOutput } from './kv-types.js';

/** The keys an input names directly (a range names none: it covers keys). */
function namedKeys(input: KvInput): string[] {
  switch (input.type) {
    case 'get':
    case 'put':
    case 'delete':
      return [input.key];
    case 'range':
      return [];
    case 'txn':
      return [...input.compare.map((c) => c.key), ...input.success.map((o) => o.key), ...input.failure.map((o) => o.key)];
  }
}

class UnionFind {
  readonly #parent = new Map<string, string>();
  find(x: string): string {
    let p = this.#parent.get(x);
    if (p === undefined) {
      this.#parent.set(x, x);
      return x;
    }
    let root = x;
    while (p !== root) {
      root = p;
      p = this.#parent.get(root)!;
    }
    // path compression
    let cur = x;
    while (cur !== root) {
      const next = this.#parent.get(cur)!;
      this.#parent.set(cur, root);
      cur = next;
    }
    return root;
  }
  union(a: string, b: string): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra !== rb) this.#parent.set(ra, rb);
  }
}

/**
 * Partitions a KV history into the connected components of the keys its
 * operations touch. A range touches every key of the history (named by an
 * input or returned by a range) that lies in it. Operations that touch no key
 * at all (ranges over an empty part of the key space) share one partition.
 * Partitions come in the order of their first operation; operations keep
 * their order.
 */
export function partitionKvHistory<O extends KvOutput>(
  history: readonly Operation<KvInput, O>[],
): Operation<KvInput, O>[][] {
  const universe = new Set<string>();
  for (const op of history) {
    for (const k of namedKeys(op.input)) universe.add(k);
    if (op.input.type === 'range' && op.output !== undefined) {
      for (const kv of (op.output as KvRangeOutput).kvs ?? []) universe.add(kv.key);
    }
  }
  const sorted = [...universe].sort(compareKeys);
  const lowerBound = (key: string): number => {
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareKeys(sorted[mid]!, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const uf = new UnionFind();
  const anchor: (string | undefined)[] = [];
  for (const op of history) {
    let keys: string[];
    if (op.input.type === 'range') {
      const range = op.input;
      keys = [];
      for (let i = lowerBound(range.key); i < sorted.length && inKeyRange(range, sorted[i]!); i++) keys.push(sorted[i]!);
    } else {
      keys = namedKeys(op.input);
    }
    anchor.push(keys[0]);
    for (let i = 1; i < keys.length; i++) uf.union(keys[0]!, keys[i]!);
  }
  const groups = new Map<string, Operation<KvInput, O>[]>();
  const NONE = '\u0000none';
  history.forEach((op, i) => {
    const a = anchor[i];
    const root = a === undefined ? NONE : `=${uf.find(a)}`;
    let g = groups.get(root);
    if (g === undefined) groups.set(root, (g = []));
    g.push(op);
  });
  return [...groups.values()];
}
