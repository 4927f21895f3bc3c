// A member whose data directory is lost comes back under its old id and
// options (docs/operations.md, "A member that lost its data"): on classic-level
// in directories, on real time. It must not elect a member that lacks writes
// it had acknowledged: the cluster waits for one that has them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { text } from '../../src/server/index.js';
import { DiskCluster, tempDir } from './ops-cluster.js';

const IDS = ['a', 'b', 'c'];

test('a founding member restarted on an empty data dir while the leader is down does not elect a member missing acknowledged writes', async () => {
  const { dir, cleanup } = await tempDir('lost-data');
  const c = new DiskCluster(IDS, (id) => join(dir, id));
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const [wiped, lagging] = IDS.filter((id) => id !== leader.id) as [string, string];
    await leader.put('first', '0');
    await c.waitFor(() => c.node(lagging).status().revision === 2, 5_000, 'every member applies the first write');
    // the lagging member is down while 50 writes are acknowledged by the leader and the other member
    await c.stop(lagging);
    for (let i = 0; i < 50; i++) await leader.put(`k${i}`, `v${i}`);
    await c.waitFor(() => c.node(wiped).status().revision === 52, 5_000, 'the other member applies them');
    // that member loses its data directory; the leader goes down too
    await c.stop(wiped);
    await rm(join(dir, wiped), { recursive: true, force: true });
    await c.stop(leader.id);
    await c.start(lagging);
    await c.start(wiped);
    await delay(1_500); // seven election timeouts and more
    assert.equal([...c.nodes.values()].find((n) => n.raft.isLeader)?.id, undefined, 'no leader without a member that has the writes');
    // the old leader comes back: every acknowledged write is there, on every member
    await c.start(leader.id);
    const back = await c.waitLeader();
    await back.put('after', '1');
    for (const id of IDS) {
      const n = c.node(id);
      await c.waitFor(() => n.status().revision >= 53, 5_000, `${id} catches up`);
      const got = await n.range({ key: 'k', prefix: true, serializable: true });
      assert.equal(got.count, 50, `${id} holds the 50 acknowledged writes`);
      assert.equal(text((await n.get('k49', { serializable: true }))?.value), 'v49');
    }
  } finally {
    await c.closeAll();
    await cleanup();
  }
});
