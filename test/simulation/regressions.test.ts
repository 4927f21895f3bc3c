// Regression tests for bugs the cluster simulation found below the testing
// layer, each reduced to a minimal scenario.
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

test('a member cut off while a new member joins catches up once that new member leads', async () => {
  // A member misses the addition of a new one, which then leads. Its
  // applied membership does not hold the new leader. Both transports used
  // to take messages only from the peers they knew (MemoryTransport.accepts,
  // TcpTransport's handshake: "is not a peer"), so it dropped every append
  // and heartbeat of that leader for as long as it led; and were they
  // taken, it could not have answered a peer it did not know. As etcd's
  // rafthttp, they now take messages from any sender not refused as
  // removed, and answer it as a "remote" (addRemoteFromRequest), so such a
  // member catches up.
  const sim = new Simulation({ seed: 5, nodes: 5 });
  try {
    await sim.start();
    await sim.until(() => sim.leaderId() !== undefined && sim.upMembers().every((id) => sim.raft(id).leader === sim.leaderId()), { what: 'a leader' });
    const lagging = sim.ids.find((id) => id !== sim.leaderId())!;
    await sim.drive(sim.client(sim.leaderId()!).put('k', 'v1'));
    sim.isolate(lagging);
    const other = sim.ids.find((id) => id !== lagging && id !== sim.leaderId())!;
    const added = await sim.drive(sim.replace(other), { maxMs: 5000 });
    await sim.run(300); // the new member catches up
    await sim.drive(sim.moveLeader(added));
    assert.equal(sim.leaderId(), added);
    await sim.drive(sim.client(added).put('k', 'v2'));
    const members = sim.raft(lagging).members();
    assert.ok(!members.voters.includes(added) && !members.learners.includes(added), 'the cut-off member does not know the new leader');
    sim.heal();
    const conv = await sim.checkConvergence();
    assert.ok(conv.ok, conv.describe());
  } finally {
    await sim.close();
  }
});
