// Regression tests for bugs the cluster simulation found below the testing
// layer, each reduced to a minimal scenario. (Bugs not fixed yet live in
// regressions.pending.ts, out of the default run.)
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

test('a member with a pending linearizable read survives losing its leader, and the read completes once the partition heals', async () => {
  // RaftNode.onSoftState calls reissueRead() on every leader change, also
  // to "no leader" (a follower that becomes a pre-candidate), and so does
  // the read's retry timer; RawNode.readIndex used to throw
  // QUORUMKV_NO_LEADER there, which escaped handleReady (or the timer) and
  // stopped the member. Fixed by 4f7fd2b (RawNode.readIndex drops the
  // request when no leader is known, as etcd does).
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
