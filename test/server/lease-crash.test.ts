// Leases across a power loss of members (CrashableLevel: a crash loses
// every write not synced; the store writes its backend once a second, so a
// crash loses what was applied since): the lease table comes back from the
// store and the log, an expired and revoked lease stays revoked with its
// keys deleted, a lease kept alive lives on, and every member ends with
// the same store. 3 members on a MemoryNetwork and a virtual clock;
// deterministic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MemoryLevel } from 'memory-level';
import { CrashableLevel } from '../../src/storage/index.js';
import { KvCluster } from './helpers.js';

const IDS = ['a', 'b', 'c'];
const VIEW = { keyEncoding: 'view', valueEncoding: 'view' } as const;

function crashableCluster(seed: number): { c: KvCluster; dbs: Map<string, CrashableLevel<Uint8Array, Uint8Array>> } {
  const c = new KvCluster(IDS, seed);
  const dbs = new Map(IDS.map((id) => [id, new CrashableLevel<Uint8Array, Uint8Array>(VIEW)]));
  for (const [id, db] of dbs) c.dbs.set(id, db as unknown as MemoryLevel<Uint8Array, Uint8Array>);
  c.extra = () => ({ backendBatchIntervalMs: 1_000 });
  return { c, dbs };
}

/** Kills member `id` (power loss: unsynced writes are lost) and starts it again on what its database kept; returns the leases its store opened with. */
async function killAndRestart(c: KvCluster, dbs: Map<string, CrashableLevel<Uint8Array, Uint8Array>>, id: string): Promise<number[]> {
  const n = c.node(id);
  c.nodes.delete(id);
  const db = dbs.get(id)!;
  await db.crash();
  await n.close().catch(() => undefined);
  await db.open();
  const again = await c.start(id);
  again.on('error', () => undefined);
  return again.store.lessor.leases().map((l) => l.id);
}

async function leaseState(c: KvCluster, id: string): Promise<string> {
  const n = c.node(id);
  const keys = (await c.run(n.range({ key: 'k/', rangeEnd: 'k0', serializable: true }))).kvs.map((kv) => `${new TextDecoder().decode(kv.key)}@${kv.lease}`);
  const leases = n.store.lessor.leases().map((l) => `${l.id}:${l.ttl}:${l.sortedItems().length}`);
  return `rev ${n.store.currentRevision()} keys [${keys.join(' ')}] leases [${leases.join(' ')}]`;
}

for (const who of ['the leader', 'every member'] as const) {
  test(`${who} killed right after expired leases were revoked: once restarted, the revoked leases and their keys stay gone, the lease kept alive lives, every member agrees`, async () => {
    const { c, dbs } = crashableCluster(who === 'the leader' ? 21 : 22);
    try {
      await c.startAll();
      const leader = await c.waitLeader();
      const dying = await c.run(Promise.all([leader.leaseGrant(1), leader.leaseGrant(2), leader.leaseGrant(1)]));
      const kept = await c.run(leader.leaseGrant(2));
      for (const [i, l] of dying.entries()) await c.run(leader.put(`k/dying${i}`, 'v', { lease: l.id }));
      await c.run(leader.put('k/kept', 'v', { lease: kept.id }));
      // the holder of `kept` keeps it alive through a follower; the others are gone
      const f = c.node(IDS.find((id) => id !== leader.id)!);
      let keepAlives = true;
      const loop = (async () => {
        while (keepAlives) {
          await f.leaseKeepAlive(kept.id).catch(() => undefined);
          await new Promise<void>((r) => c.clock.setTimeout(r, 500));
        }
      })();
      await c.waitFor(() => IDS.every((id) => dying.every((l) => c.node(id).store.lessor.lookup(l.id) === undefined)), 10_000, 'the revokes applied everywhere');
      const before = await leaseState(c, leader.id);
      assert.doesNotMatch(before, /dying/);
      keepAlives = false;
      const victims = who === 'the leader' ? [leader.id] : IDS;
      const reopened: number[] = [];
      for (const id of victims) reopened.push(...(await killAndRestart(c, dbs, id)));
      // what the stores had written: a revoked lease back (its revoke was
      // applied within the store's batch interval), its revoke replayed from the log
      assert.ok(reopened.some((l) => dying.some((d) => d.id === l)), `no revoked lease in a store as reopened: ${reopened.join(', ')}`);
      const next = await c.waitLeader();
      // the holder of `kept` resumes (a session would, on its next keep-alive)
      await c.run(next.leaseKeepAlive(kept.id));
      await c.waitFor(() => IDS.every((id) => c.node(id).raft.appliedIndex >= next.raft.appliedIndex), 5_000, 'every member catches up');
      await c.run(loop);
      for (const id of IDS) {
        const after = await leaseState(c, id);
        assert.equal(after, before, `${id} after the restart`);
      }
      // expiry still works after the restart: `kept`, no longer kept alive, goes too
      await c.waitFor(() => IDS.every((id) => c.node(id).store.lessor.lookup(kept.id) === undefined), 10_000, 'kept expires once no longer kept alive');
      for (const id of IDS) assert.deepEqual((await c.run(c.node(id).range({ key: 'k/', rangeEnd: 'k0', serializable: true }))).kvs, [], id);
    } finally {
      await c.closeAll();
    }
  });
}

test('an expiry revoke proposed again while the first waits to commit is applied once: the second fails as lease-not-found and changes nothing, on every member', async () => {
  const c = new KvCluster(IDS, 23);
  // expired leases are looked for every 50 ms
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const lease = await c.run(leader.leaseGrant(1));
    await c.run(leader.put('held', 'v', { lease: lease.id }));
    const rev = leader.store.currentRevision();
    const lessor = leader.store.lessor as unknown as { expiredRetryMs: number };
    // reported again 20 ms after it was (3 s by default); the leader's
    // appends reach the others after 60 ms: the first revoke commits after
    // the next check has reported the lease again
    lessor.expiredRetryMs = 20;
    for (const id of IDS) if (id !== leader.id) c.net.setDelay({ minMs: 60, maxMs: 60 }, { from: leader.id, to: id });
    const proposed: number[] = [];
    const expired = leader.store.lessor.expired.bind(leader.store.lessor);
    leader.store.lessor.expired = (limit?: number) => {
      const ids = expired(limit);
      if (ids.includes(lease.id)) proposed.push(c.clock.now());
      return ids;
    };
    await c.waitFor(() => IDS.every((id) => c.node(id).store.lessor.lookup(lease.id) === undefined), 10_000, 'the revoke applied everywhere');
    assert.ok(leader.raft.isLeader, 'still the leader');
    c.net.resetFaults();
    assert.ok(proposed.length >= 2, `the revoke was proposed ${proposed.length} times`);
    await c.clock.advanceAsync(2_000);
    for (const id of IDS) {
      const n = c.node(id);
      assert.equal(n.store.currentRevision(), rev + 1, `${id}: one revision for the revoke`);
      assert.equal(await c.run(n.get('held', { serializable: true })), undefined);
    }
  } finally {
    await c.closeAll();
  }
});
