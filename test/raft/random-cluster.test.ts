// Randomized runs of whole clusters of RawNodes (3 or 5 voters) under
// message loss, reordering, duplication, partitions, crash-restarts and log
// compaction, checking the safety properties of Raft (§5.2, §5.4, Figure 3)
// after every step:
// - Election Safety: at most one leader per term;
// - State Machine Safety: no two nodes apply different entries at an index;
// - Log Matching: two logs with an entry of the same index and term are
//   identical up to it;
// - commit never moves back, applied never passes commit;
// and, after healing, that the cluster elects a leader and commits again.
//
// Each run is seeded; a failure names its seed. Replay one run with
// QUORUMKV_RAFT_SEED=<seed> (and QUORUMKV_RAFT_STEPS=<n> to change its length).
import { test } from 'node:test';
import { ChaosCluster } from './helpers/chaos-cluster.js';

const ENV_SEED = process.env.QUORUMKV_RAFT_SEED;
const STEPS = Number(process.env.QUORUMKV_RAFT_STEPS ?? 1500);
const SEEDS = ENV_SEED !== undefined ? [Number(ENV_SEED)] : Array.from({ length: 40 }, (_, i) => i + 1);

test(`random clusters keep Raft's safety properties and recover after healing (${SEEDS.length} seeds x ${STEPS} steps)`, () => {
  for (const seed of SEEDS) {
    const sim = new ChaosCluster(seed);
    try {
      for (let i = 0; i < STEPS; i++) {
        sim.step();
        if (i % 250 === 0) sim.checkLogMatching();
      }
      sim.checkLogMatching();
      sim.converge();
      sim.checkLogMatching();
    } catch (err) {
      const e = err as Error;
      throw new Error(`seed ${seed} (replay: QUORUMKV_RAFT_SEED=${seed}) ${JSON.stringify(sim.opts)}: ${e.message}`, { cause: err });
    }
  }
});
