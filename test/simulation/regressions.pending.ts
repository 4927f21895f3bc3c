// Regression tests for bugs the cluster simulation found below the testing
// layer that are not fixed yet. Named *.pending.ts so that the default run
// (which picks up *.test.ts) stays green until they are; run them with
//   node scripts/run-tests.mjs test/simulation/regressions.pending.ts
// and move each test to regressions.test.ts once it passes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Simulation } from '../../src/testing/simulation/index.js';

test('a watch from the compaction revision gets the deletion made at that revision (etcd #18089, fixed by etcd #18274: keep a tombstone whose revision equals the compaction revision)', async () => {
  // Compaction at revision R removes the tombstone written at R (the MVCC
  // key index drops a generation whose tombstone is at or below R), yet a
  // watch may start at R (only a start below R is compacted): the watch
  // replays revision R from the backend and misses its DELETE events.
  // Found by seed 403 (npm run test:sim -- --seed 403 --duration 5000).
  const sim = new Simulation({ seed: 2, nodes: 3 });
  try {
    await sim.start();
    await sim.until(() => sim.leaderId() !== undefined, { what: 'a leader' });
    const c = sim.client(sim.leaderId()!);
    await sim.drive(c.put('k', 'v'));
    const del = await sim.drive(c.delete('k'));
    const r = del.header.revision;
    await sim.drive(c.compact(r, { physical: true }));
    const w = c.watch('k', { startRevision: r });
    const events: string[] = [];
    w.on('response', (res) => {
      for (const e of res.events) events.push(`${e.type} ${e.kv.modRevision}`);
    });
    await sim.run(200);
    assert.deepEqual(events, [`DELETE ${r}`]);
    assert.equal(sim.checkWatches().ok, true, sim.checkWatches().describe());
    await w.cancel();
  } finally {
    await sim.close();
  }
});
