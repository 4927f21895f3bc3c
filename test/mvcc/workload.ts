// A seeded random workload of write requests for determinism tests.
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import type { WriteRequest } from '../../src/mvcc/index.js';
import { RANGE_END_ALL } from '../../src/mvccpb/index.js';
import { b } from './helpers.js';

/** The seed of a randomized test: `MVCC_SEED` when set (to replay), else a fresh one. */
export function testSeed(): number {
  const env = process.env.MVCC_SEED;
  return env !== undefined ? Number.parseInt(env, 10) : Math.floor(Math.random() * 2 ** 31);
}

/**
 * `n` write requests: puts (some with leases, prevKv), deletes of keys and
 * ranges, txns, lease grants and revokes, and compactions. Requests may fail
 * at apply (unknown leases, compacted revisions): that is part of the test.
 */
export function randomWrites(seed: number, n: number): WriteRequest[] {
  const rng = xoroshiro128plus(seed);
  const int = (lo: number, hi: number) => uniformInt(rng, lo, hi);
  const key = () => b(`k${int(0, 15)}`);
  const out: WriteRequest[] = [];
  let leases = 0;
  let revGuess = 1;
  for (let i = 0; i < n; i++) {
    const r = int(0, 99);
    if (r < 45) {
      out.push({ put: { key: key(), value: b(`v${int(0, 99)}`), lease: int(0, 4) === 0 && leases > 0 ? int(1, leases + 1) : 0, prevKv: int(0, 1) === 1 } });
      revGuess++;
    } else if (r < 55) {
      const k = int(0, 15);
      out.push({ deleteRange: { key: b(`k${k}`), rangeEnd: int(0, 2) === 0 ? b(`k${k + int(0, 5)}`) : undefined, prevKv: true } });
    } else if (r < 75) {
      const k = key();
      out.push({
        txn: {
          compare: [{ target: 'VERSION', result: int(0, 1) ? 'GREATER' : 'EQUAL', key: k, version: int(0, 2) }],
          success: [{ requestPut: { key: k, value: b(`t${i}`) } }, { requestRange: { key: b('k'), rangeEnd: b('l') } }],
          failure: [{ requestDeleteRange: { key: b(`k${int(0, 15)}`) } }, { requestRange: { key: RANGE_END_ALL, rangeEnd: RANGE_END_ALL, limit: 3 } }],
        },
      });
      revGuess++;
    } else if (r < 85) {
      out.push({ leaseGrant: { ttl: int(1, 100) } });
      leases++;
    } else if (r < 92) {
      out.push({ leaseRevoke: { id: int(1, leases + 1) } });
    } else {
      out.push({ compaction: { revision: int(1, revGuess) } });
    }
  }
  return out;
}
