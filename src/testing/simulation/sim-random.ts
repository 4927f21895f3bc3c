/**
 * The seeded randomness of a simulation: one pure-rand xoroshiro128+
 * generator per purpose, all derived from the simulation's seed.
 * @module
 */
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';
import { ErrorCode, UsageError } from '../../errors.js';
import { describeValue } from '../../arg-values.js';

/** FNV-1a (32 bits) over the UTF-16 code units of `s`. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Mixes two 32-bit values into one (the MurmurHash3 finalizer over their combination). */
function mix(a: number, b: number): number {
  let x = (Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ b) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) | 0;
}

/**
 * A deterministic source of random choices (pure-rand xoroshiro128+).
 * {@link SimRandom.fork} derives an independent stream by name, so that the
 * choices of one purpose (faults, traffic, a node's election jitter) do not
 * shift when another purpose draws more or fewer numbers.
 *
 * ```ts
 * const rng = new SimRandom(42);
 * const faults = rng.fork('faults');
 * faults.int(1, 6); // the same on every run with seed 42
 * ```
 */
export class SimRandom {
  /** The seed this stream was created from (after forking: the derived seed). */
  readonly seed: number;
  private readonly g: RandomGenerator;

  /** @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `seed` is not a safe integer */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new UsageError(ErrorCode.INVALID_ARGUMENT, `a seed must be a safe integer, got ${describeValue(seed)}`);
    this.seed = seed;
    this.g = xoroshiro128plus(mix(seed | 0, Math.floor(seed / 0x100000000) | 0));
  }

  /** An independent stream named `label`, a function of this stream's seed and the label only. */
  fork(label: string): SimRandom {
    return new SimRandom(mix(mix(this.seed | 0, Math.floor(this.seed / 0x100000000) | 0), fnv1a(label)));
  }

  /** A uniform integer in `[lo, hi]` (both included). */
  int(lo: number, hi: number): number {
    return uniformInt(this.g, lo, hi);
  }

  /** A uniform number in `[0, 1)`. */
  float(): number {
    return uniformFloat64(this.g);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return p > 0 && this.float() < p;
  }

  /**
   * A uniformly chosen element.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an empty list
   */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'cannot pick from an empty list');
    return items[this.int(0, items.length - 1)]!;
  }

  /** A copy of `items` in a uniformly random order (Fisher-Yates). */
  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      const x = out[i]!;
      out[i] = out[j]!;
      out[j] = x;
    }
    return out;
  }

  /** Picks a key of `weights` with probability proportional to its (non-negative) weight. */
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K {
    const keys = (Object.keys(weights) as K[]).filter((k) => weights[k] > 0);
    if (keys.length === 0) throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'weights must have a positive entry');
    let total = 0;
    for (const k of keys) total += weights[k];
    let x = this.float() * total;
    for (const k of keys) {
      x -= weights[k];
      if (x < 0) return k;
    }
    return keys[keys.length - 1]!;
  }

  /** A function returning uniform numbers in `[0, 1)` from this stream (for a node's `random` option). */
  asFunction(): () => number {
    return () => this.float();
  }
}
