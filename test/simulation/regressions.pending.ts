// Regression tests for bugs the simulation found below the testing layer.
// Named *.pending.ts so that the default run (which picks up *.test.ts)
// stays green until the bugs are fixed; run them with
//   node scripts/run-tests.mjs test/simulation/regressions.pending.ts
// and rename the file to regressions.test.ts once they pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Simulation, SimulationError } from '../../src/testing/simulation/index.js';

async function violationsOf(sim: Simulation, ms: number): Promise<readonly string[]> {
  try {
    await sim.run(ms);
  } catch (err) {
    if (!(err instanceof SimulationError)) throw err;
  }
  return sim.violations();
}

test('a member with a pending linearizable read survives losing its leader (RaftNode re-issues the ReadIndex only once a leader is known)', async () => {
  // RaftNode.onSoftState calls reissueRead() on every leader change, also
  // to "no leader" (a follower that becomes a pre-candidate); issueRead
  // calls RawNode.readIndex, which throws QUORUMKV_NO_LEADER; the throw
  // escapes handleReady and stops the member (onFatal).
  const sim = new Simulation({ seed: 1, nodes: 3 });
  try {
    await sim.start();
    await sim.until(() => sim.leaderId() !== undefined && sim.ids.every((id) => sim.raft(id).leader === sim.leaderId()), {
      what: 'a leader known to every member',
    });
    const follower = sim.ids.find((id) => id !== sim.leaderId())!;
    sim.isolate(follower);
    const read = sim.client(follower).get('k').catch((err: unknown) => err);
    assert.deepEqual(await violationsOf(sim, 1000), []);
    sim.heal();
    await sim.drive(read);
  } finally {
    await sim.close();
  }
});
