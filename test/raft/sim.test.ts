// Randomized simulation of the Raft core (test/raft/sim): 3- and 5-node
// clusters of RawNodes over a network that drops, duplicates and reorders
// messages, with partitions, crashes and restarts, snapshots, learner and
// voter changes and leadership transfers; Raft's safety properties are
// checked after every step and liveness at the end. See test/raft/sim/raft-simulation.ts.
//
// Replay a failing seed (it prints these commands):
//   QUORUMKV_RAFT_SEED=<seed> [QUORUMKV_RAFT_NODES=3|5] node scripts/run-tests.mjs test/raft/sim.test.ts
//   npm run test:raft-sim -- --seed <seed> --nodes 3|5      (with a trace of every step)
// Many more seeds: npm run test:raft-sim -- --seeds 20000
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSimulation, type SimOptions } from './sim/raft-simulation.js';
import { SimFailure } from './sim/sim-failure.js';
import type { DriverMutation } from './sim/sim-node.js';

const STEPS = 1000;
const SEEDS_PER_SIZE = 1000;
const CHUNK = 250;

/** Runs one seed; on failure, prints the end of its trace and the replay commands, and fails the test. */
function runSeed(opts: SimOptions): void {
  const trace: string[] = [];
  try {
    runSimulation({ ...opts, trace: (line) => trace.push(line) });
  } catch (err) {
    if (!(err instanceof SimFailure)) throw err;
    const tail = trace.slice(-60).join('\n');
    const replay = err.replayCommands(opts.steps).join('\n  ');
    console.error(`${err.message}\nlast steps:\n${tail}\nreplay with:\n  ${replay}`);
    assert.fail(`${err.message}; replay with:\n  ${replay}`);
  }
}

function runSeeds(nodes: number, from: number, to: number): void {
  for (let seed = from; seed <= to; seed++) runSeed({ seed, nodes, steps: STEPS });
}

const replaySeed = process.env.QUORUMKV_RAFT_SEED;

if (replaySeed !== undefined) {
  const seed = Number(replaySeed);
  const sizes = process.env.QUORUMKV_RAFT_NODES !== undefined ? [Number(process.env.QUORUMKV_RAFT_NODES)] : [3, 5];
  for (const nodes of sizes) {
    test(`seed ${seed} of a ${nodes}-node cluster keeps every safety property and ends with a committed proposal`, () => {
      runSeed({ seed, nodes, steps: STEPS });
    });
  }
} else {
  for (const nodes of [3, 5]) {
    for (let from = 1; from <= SEEDS_PER_SIZE; from += CHUNK) {
      const to = from + CHUNK - 1;
      test(`a ${nodes}-node cluster keeps every safety property and ends with a proposal committed everywhere (seeds ${from}-${to}, ${STEPS} steps each)`, () => {
        runSeeds(nodes, from, to);
      });
    }
  }

  test('a seed replays the same run step for step', () => {
    for (const nodes of [3, 5]) {
      const a: string[] = [];
      const b: string[] = [];
      runSimulation({ seed: 4242, nodes, steps: 400, trace: (l) => a.push(l) });
      runSimulation({ seed: 4242, nodes, steps: 400, trace: (l) => b.push(l) });
      // steps that find nothing to do leave no line
      assert.ok(a.length > 200, `the trace records the run (${a.length} lines)`);
      assert.deepEqual(a, b);
    }
  });

  /** The reason of the first seed from 1 to `maxSeed` that fails with `mutation`, or undefined. */
  function firstFailure(mutation: DriverMutation, maxSeed: number, restartFactor?: number): string | undefined {
    for (let seed = 1; seed <= maxSeed; seed++) {
      try {
        runSimulation({ seed, nodes: 3, steps: STEPS, mutation, restartFactor });
      } catch (err) {
        if (!(err instanceof SimFailure)) throw err;
        return err.reason;
      }
    }
    return undefined;
  }

  // The checker must be able to fail: with a driver that forgets the vote it
  // persisted when a node restarts, a node can vote twice in a term and two
  // leaders get elected in the same term on some seeds.
  test('the simulation catches a node that votes twice in a term (its vote lost on restart)', () => {
    const reason = firstFailure('forget-vote', 400, 20);
    assert.ok(reason !== undefined, 'some seed fails');
    assert.match(reason, /two leaders in term \d+/);
  });

  // Likewise a node whose last acknowledged entry is lost in a crash (an
  // fsync that lied) breaks Leader Completeness or stalls replication.
  test('the simulation catches a node that loses an acknowledged entry in a crash', () => {
    const reason = firstFailure('lose-last-entry', 200);
    assert.ok(reason !== undefined, 'some seed fails');
    assert.match(reason, /leader completeness|log matching|state machine safety|does not quiesce|liveness/);
  });

  // And a driver that drops a committed conf change (here a voter's
  // removal) holds another configuration at that index than the others.
  test('the simulation catches a node that skips a committed voter removal', () => {
    const reason = firstFailure('skip-remove-node', 400);
    assert.ok(reason !== undefined, 'some seed fails');
    assert.match(reason, /configuration: /);
  });
}
