// 150 seeds of 5-member clusters (even seeds 2..300): random traffic (get,
// put, delete, range, txn compare-and-swap, leases, watches, compaction)
// under random faults (partitions, splits, bridges, one-way links, leader
// isolation, crashes losing unsynced writes, pauses, drop/delay/duplicate/
// reorder rates, leadership transfers, member replacements). Every seed
// checks the safety invariants at each virtual millisecond, progress after
// the faults end, that the members converge to one store, linearizability
// of the history and every watch guarantee.
// Replay a failing seed: npm run test:sim -- --seed <n>
// (or QUORUMKV_SIM_SEED=<n> node scripts/run-tests.mjs test/simulation/seeds-5.test.ts)
import { test } from 'node:test';
import { runSeeds, seedList } from './seeds.js';

// Three tests of 50 seeds each, so that each stays well inside the runner's
// per-test limit on a loaded machine.
const all = seedList(2, 150, 2);
const replay = Number(process.env.QUORUMKV_SIM_SEED);
for (let batch = 0; batch < 3; batch++) {
  const seeds = all.slice(batch * 50, batch * 50 + 50);
  test(`5-member clusters under random faults keep every invariant, stay linearizable, keep the watch guarantees and make progress once healed (seeds ${seeds[0]}..${seeds[seeds.length - 1]})`, async (t) => {
    await runSeeds(seeds, { replayHere: batch === 0 && !all.includes(replay), signal: t.signal });
  });
}
