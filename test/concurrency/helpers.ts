// Shared pieces of the recipe tests: a 3-member KvCluster on a virtual clock
// (tick 10 ms, election timeout 100-200 ms, minimum lease TTL 1 s), sessions
// on that clock, a seeded PRNG with replay from an env var, and a fenced
// register that rejects writes carrying a token below the highest it has seen.
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { ErrorCode, FaultError, isQuorumError } from '../../src/errors.js';
import { Session, type SessionOptions } from '../../src/concurrency/index.js';
import type { KV } from '../../src/server/kv.js';
import { KvCluster } from '../server/helpers.js';

export const IDS = ['a', 'b', 'c'];

/** Starts a 3-member cluster and waits for a leader. */
export async function startCluster(seed = 1): Promise<KvCluster> {
  const c = new KvCluster(IDS, seed);
  await c.startAll();
  await c.waitLeader();
  return c;
}

/** A session on the cluster's virtual clock. */
export function session(c: KvCluster, kv: KV, options: SessionOptions = {}): Promise<Session> {
  return c.run(Session.create(kv, { ttl: 1, clock: c.clock, ...options }));
}

/** Seed of a randomized test: `QUORUMKV_CONCURRENCY_SEED` when set (replay), else `fallback`. Printed. */
export function seedFor(name: string, fallback: number): number {
  const env = process.env.QUORUMKV_CONCURRENCY_SEED;
  const seed = env !== undefined && env !== '' ? Number(env) : fallback;
  console.log(`# ${name}: seed ${seed} (replay with QUORUMKV_CONCURRENCY_SEED=${seed})`);
  return seed;
}

/** A seeded PRNG: `int(n)` in [0, n). */
export function rng(seed: number): { int(n: number): number; pick<T>(xs: readonly T[]): T } {
  const g = xoroshiro128plus(seed);
  const int = (n: number): number => uniformInt(g, 0, n - 1);
  return { int, pick: (xs) => xs[int(xs.length)]! };
}

/** True when `err` is a quorumkv error with this code. */
export function hasCode(code: (typeof ErrorCode)[keyof typeof ErrorCode]): (err: unknown) => boolean {
  return (err: unknown) => isQuorumError(err, code);
}

/**
 * A resource that checks fencing tokens: it accepts a write only if its
 * token is at least the highest token it has accepted, and records what it
 * accepted and rejected.
 */
export class FencedRegister {
  lastToken = 0;
  readonly accepted: { token: number; who: string; seq: number; at: number }[] = [];
  readonly rejected: { token: number; who: string; seq: number; at: number }[] = [];

  write(token: number, who: string, seq: number, at: number): boolean {
    if (token < this.lastToken) {
      this.rejected.push({ token, who, seq, at });
      return false;
    }
    this.lastToken = token;
    this.accepted.push({ token, who, seq, at });
    return true;
  }
}

/** Lets a promise run in the background, keeping its outcome for later inspection. */
export function background<T>(p: Promise<T>): { done: () => boolean; value: () => T | undefined; error: () => unknown; promise: Promise<void> } {
  let done = false;
  let value: T | undefined;
  let error: unknown;
  const promise = p.then(
    (v) => {
      done = true;
      value = v;
    },
    (e: unknown) => {
      done = true;
      error = e;
    },
  );
  return { done: () => done, value: () => value, error: () => error, promise };
}

/** Resolves after `ms` of the cluster's virtual time. */
export function sleep(c: KvCluster, ms: number): Promise<void> {
  return new Promise((resolve) => c.clock.setTimeout(resolve, ms));
}

/** Polls `cond` (an async read) every 10 virtual ms until it holds, driving the clock. */
export async function until(c: KvCluster, cond: () => Promise<boolean>, maxMs = 10_000, what = 'condition'): Promise<void> {
  const poll = async (): Promise<void> => {
    for (;;) {
      if (await cond()) return;
      await sleep(c, 10);
    }
  };
  await c.run(poll(), maxMs).catch((err: Error) => {
    throw new Error(`${what}: ${err.message}`);
  });
}

/** Number of keys under `prefix`, read linearizably from `kv`. */
export async function countKeys(kv: KV, prefix: string): Promise<number> {
  return (await kv.range({ key: prefix, prefix: true, countOnly: true })).count;
}

/** A KV that records the keys it is asked to watch (to see who waits on what). */
export function recordingWatches(kv: KV, log: string[]): KV {
  return new Proxy(kv, {
    get(target, prop) {
      if (prop === 'watch') {
        return (key: string | Uint8Array, options?: Parameters<KV['watch']>[1]) => {
          log.push(typeof key === 'string' ? key : new TextDecoder().decode(key));
          return target.watch(key, options);
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/**
 * A KV on `member` that, once `slow.on` is set, answers `method` 1.5 s late
 * (virtual) and keep-alives not at all: a session on it is lost while such a
 * call is under way.
 */
export function slowMember(c: KvCluster, member: KV, method: 'txn' | 'range'): { kv: KV; slow: { on: boolean } } {
  const slow = { on: false };
  const kv = new Proxy(member, {
    get(target, prop) {
      if (prop === method) {
        return async (...args: unknown[]) => {
          const res = await (target[method] as (...a: unknown[]) => Promise<unknown>)(...args);
          if (slow.on) await sleep(c, 1_500);
          return res;
        };
      }
      if (prop === 'leaseKeepAlive') {
        return async (id: number) => {
          if (slow.on) throw new FaultError(ErrorCode.TIMEOUT, 'no answer');
          return target.leaseKeepAlive(id);
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { kv, slow };
}
