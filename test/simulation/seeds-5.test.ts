// 150 seeds of 5-member clusters (even seeds 2..300): random traffic (get,
// put, delete, range, txn compare-and-swap, leases, watches, compaction)
// under random faults (partitions, splits, bridges, one-way links, leader
// isolation, crashes losing unsynced writes, pauses, drop/delay/duplicate/
// reorder rates). Every seed checks the safety invariants at each virtual
// millisecond, progress after the faults end, linearizability of the
// history and every watch guarantee.
// Replay a failing seed: npm run test:sim -- --seed <n>
// (or QUORUMKV_SIM_SEED=<n> node scripts/run-tests.mjs test/simulation/seeds-5.test.ts)
import { test } from 'node:test';
import { runSeeds, seedList } from './seeds.js';

test('5-member clusters under random faults keep every invariant, stay linearizable, keep the watch guarantees and make progress once healed (150 seeds)', async () => {
  await runSeeds(seedList(2, 150, 2));
});
