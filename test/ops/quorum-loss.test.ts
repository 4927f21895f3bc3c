// Quorum loss: the surviving member of a 3-member cluster keeps serving
// serializable reads, refuses writes at once with QUORUMKV_NO_LEADER instead
// of waiting for the request timeout, and its data can seed a new cluster
// through a backup (recovery when a majority is lost for good).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { MemoryLevel } from 'memory-level';
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import { KvNode, text } from '../../src/server/index.js';
import { OpsCluster, tempDir } from './ops-cluster.js';

const IDS = ['a', 'b', 'c'];
const noLeader = (e: unknown) => isQuorumError(e, ErrorCode.NO_LEADER);

test('with two of three members stopped, the survivor serves serializable reads and fails writes and linearizable reads fast with QUORUMKV_NO_LEADER', async () => {
  const c = new OpsCluster(IDS, 41);
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    await c.run(leader.put('k', 'v'));
    // stop two members, the leader among them when possible
    const survivor = c.followers()[0]!;
    await c.waitFor(() => survivor.status().revision === 2, 2_000, 'the survivor applies the write');
    for (const id of IDS) if (id !== survivor.id) await c.stop(id);

    await c.waitFor(() => survivor.status().leader === '', 1_000, 'the survivor loses its leader after an election timeout');
    assert.deepEqual(survivor.status().errors, ['etcdserver: no leader'], "status() says so in etcd's words");
    await c.clock.advanceAsync(2 * 100 + 10); // two election timeouts without a leader
    const started = c.clock.now();
    await assert.rejects(c.run(survivor.put('k', 'w'), 50), noLeader);
    await assert.rejects(c.run(survivor.delete('k'), 50), noLeader);
    await assert.rejects(c.run(survivor.leaseGrant(60), 50), noLeader);
    assert.ok(c.clock.now() - started <= 50, 'refused at once, not after the 2 s request timeout');
    // linearizable reads too (etcd's docs list ErrNoLeader for every request)
    const reads = c.clock.now();
    await assert.rejects(c.run(survivor.get('k'), 50), noLeader);
    await assert.rejects(c.run(survivor.leaseTimeToLive(1), 50), noLeader);
    await assert.rejects(c.run(survivor.leases(), 50), noLeader);
    assert.ok(c.clock.now() - reads <= 50, 'reads refused at once too');
    assert.equal(text((await survivor.get('k', { serializable: true }))?.value), 'v');
    assert.equal(survivor.status().revision, 2);

    // a member coming back restores the quorum: writes work again
    const back = IDS.find((id) => id !== survivor.id)!;
    await c.start(back);
    await c.waitLeader();
    const put = await c.run(survivor.put('k', 'again'), 5_000);
    assert.equal(put.header.revision, 3);
  } finally {
    await c.closeAll();
  }
});

test('when a majority is lost for good, a backup of the survivor seeds a new one-member cluster', async () => {
  const { dir, cleanup } = await tempDir('minority');
  const c = new OpsCluster(IDS, 42);
  const fresh = new OpsCluster(['a2'], 43);
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    for (let i = 0; i < 5; i++) await c.run(leader.put(`m${i}`, `${i}`));
    const survivor = c.followers()[0]!;
    await c.waitFor(() => survivor.status().revision === 6, 2_000, 'the survivor applies the writes');
    for (const id of IDS) if (id !== survivor.id) await c.stop(id);
    await c.clock.advanceAsync(500);

    const path = join(dir, 'survivor.qkv');
    const saved = await survivor.snapshotSave(path); // works without a leader
    assert.equal(saved.revision, 6);
    await c.closeAll();

    const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
    fresh.dbs.set('a2', db);
    await KvNode.restore(path, { id: 'a2', members: ['a2'], db });
    await fresh.startAll();
    const n = await fresh.waitLeader();
    assert.equal(text((await fresh.run(n.get('m4')))?.value), '4');
    assert.equal((await fresh.run(n.put('m5', '5'))).header.revision, 7);
  } finally {
    await c.closeAll();
    await fresh.closeAll();
    await cleanup();
  }
});
