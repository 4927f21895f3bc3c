// Exactly-once apply across crashes, reopening from the backend (memory-level
// and classic-level), determinism (same entries → same hash and snapshot),
// snapshot/restore round trips.
//
// Randomized tests print their seed on failure; replay one with
// MVCC_SEED=<seed> node scripts/run-tests.mjs test/mvcc/durability.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { MemoryLevel } from 'memory-level';
import { pack } from '../../src/codec/index.js';
import { MvccStore, type WriteRequest } from '../../src/mvcc/index.js';
import { RANGE_END_ALL } from '../../src/mvccpb/index.js';
import { b, kvStr, openStore, put, type TestStore } from './helpers.js';
import { randomWrites, testSeed } from './workload.js';

async function applyAll(store: MvccStore, reqs: WriteRequest[], firstIndex = 1, batch = 7): Promise<string[]> {
  const statuses: string[] = [];
  for (let i = 0; i < reqs.length; i += batch) {
    const entries = reqs.slice(i, i + batch).map((request, j) => ({ index: firstIndex + i + j, request }));
    for (const r of await store.applyBatch(entries)) statuses.push(r.status === 'failed' ? r.error.code : r.status);
  }
  await store.compactionIdle();
  return statuses;
}

async function dump(store: MvccStore): Promise<string[]> {
  return (await store.range({ key: RANGE_END_ALL, rangeEnd: RANGE_END_ALL })).kvs.map(kvStr);
}

function withSeed(seed: number, fn: () => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await fn();
    } catch (err) {
      console.error(`failing seed: MVCC_SEED=${seed}`);
      throw err;
    }
  };
}

const seed = testSeed();

test(
  'the same entries give the same state, hash and snapshot bytes, whatever the batching',
  withSeed(seed, async () => {
    const reqs = randomWrites(seed, 300);
    const a = await openStore();
    const c = await openStore();
    const sa = await applyAll(a.store, reqs, 1, 1);
    const sc = await applyAll(c.store, reqs, 1, 64);
    assert.deepEqual(sa, sc);
    assert.ok(sa.some((x) => x === 'applied'));
    assert.deepEqual(await a.store.hash(), await c.store.hash());
    assert.deepEqual(Buffer.from(await a.store.snapshot()), Buffer.from(await c.store.snapshot()));
  }),
);

test(
  'a store reopened from its backend has the same state and goes on identically',
  withSeed(seed, async () => {
    const reqs = randomWrites(seed + 1, 240);
    const db = new MemoryLevel<string, string>();
    const a = await openStore({}, db);
    await applyAll(a.store, reqs.slice(0, 120));
    const before = { hash: await a.store.hash(), dump: await dump(a.store), leases: a.store.leaseLeases().leases };
    await a.store.close();
    const reopened = await MvccStore.open(db.sublevel('mvcc'));
    assert.equal(reopened.appliedIndex(), 120);
    assert.deepEqual(await reopened.hash(), before.hash);
    assert.deepEqual(await dump(reopened), before.dump);
    assert.deepEqual(reopened.leaseLeases().leases, before.leases);
    // re-applying entries already applied does nothing
    const again = await reopened.applyBatch(reqs.slice(100, 120).map((request, i) => ({ index: 101 + i, request })));
    assert.ok(again.every((r) => r.status === 'skipped'));
    await applyAll(reopened, reqs.slice(120), 121);
    const reference = await openStore();
    await applyAll(reference.store, reqs);
    assert.deepEqual(await reopened.hash(), await reference.store.hash());
  }),
);

test(
  'a crash between entries is safe: the failed batch is applied again after reopening',
  withSeed(seed, async () => {
    const reqs = randomWrites(seed + 2, 100);
    const db = new MemoryLevel<string, string>();
    const a = await openStore({}, db);
    await applyAll(a.store, reqs.slice(0, 50));
    // the next batch write fails (as if the process died before it was durable)
    const sub = (a.store as unknown as { backend: { root: { batch: (...args: unknown[]) => Promise<void> } } }).backend.root;
    const original = sub.batch;
    sub.batch = () => Promise.reject(new Error('disk on fire'));
    await assert.rejects(a.store.applyBatch(reqs.slice(50, 60).map((request, i) => ({ index: 51 + i, request }))), {
      code: 'QUORUMKV_STORAGE_IO',
    });
    // a failed store refuses everything
    await assert.rejects(a.store.range({ key: b('k1') }), { code: 'QUORUMKV_STORAGE_IO' });
    sub.batch = original; // the "restarted process" has a working disk
    const reopened = await MvccStore.open(db.sublevel('mvcc'));
    assert.equal(reopened.appliedIndex(), 50);
    await applyAll(reopened, reqs.slice(50), 51);
    const reference = await openStore();
    await applyAll(reference.store, reqs);
    assert.deepEqual(await reopened.hash(), await reference.store.hash());
    assert.deepEqual(await dump(reopened), await dump(reference.store));
  }),
);

test(
  'snapshot and restore give an identical hash, and both go on identically',
  withSeed(seed, async () => {
    const reqs = randomWrites(seed + 3, 200);
    const a = await openStore();
    await applyAll(a.store, reqs.slice(0, 150));
    const snap = await a.store.snapshot();
    const r = await openStore();
    await put(r, 'stale', 'state'); // replaced by the restore
    await r.store.restore(snap);
    assert.equal(r.store.appliedIndex(), 150);
    assert.equal(r.store.currentRevision(), a.store.currentRevision());
    assert.equal(r.store.compactRevision(), a.store.compactRevision());
    assert.deepEqual(await r.store.hash(), await a.store.hash());
    assert.deepEqual(await dump(r.store), await dump(a.store));
    await applyAll(a.store, reqs.slice(150), 151);
    await applyAll(r.store, reqs.slice(150), 151);
    assert.deepEqual(await r.store.hash(), await a.store.hash());
    // and survives a reopen
    const reopened = await MvccStore.open(r.db.sublevel('mvcc'));
    assert.deepEqual(await reopened.hash(), await a.store.hash());
  }),
);

test('a corrupt snapshot is refused and changes nothing', async () => {
  const a = await openStore();
  await put(a, 'a', '1');
  const snap = await a.store.snapshot();
  const bad = Uint8Array.from(snap);
  bad[bad.length - 1] ^= 0xff;
  const t = await openStore();
  await put(t, 'x', '1');
  const before = await t.store.hash();
  await assert.rejects(t.store.restore(bad), { code: 'QUORUMKV_CORRUPT_SNAPSHOT' });
  assert.deepEqual(await t.store.hash(), before);
});

test('a restore interrupted by a crash leaves an empty store on reopen', async () => {
  const db = new MemoryLevel<string, string>();
  const t = await openStore({}, db);
  await put(t, 'a', '1');
  await t.store.close();
  const meta = db.sublevel('mvcc').sublevel<Uint8Array, Uint8Array>('m', { keyEncoding: 'view', valueEncoding: 'view' });
  await meta.put(new TextEncoder().encode('restoring'), pack(1));
  const reopened = await openStore({}, db);
  assert.equal(reopened.store.appliedIndex(), 0);
  assert.equal(reopened.store.currentRevision(), 1);
  assert.deepEqual(await dump(reopened.store), []);
});

test('hash at a past revision, and its errors', async () => {
  const t: TestStore = await openStore();
  await put(t, 'a', '1'); // 2
  const at2 = await t.store.hash();
  await put(t, 'a', '2'); // 3
  assert.deepEqual(await t.store.hash(2), at2);
  assert.notEqual((await t.store.hash()).hash, at2.hash);
  await assert.rejects(t.store.hash(4), { code: 'QUORUMKV_FUTURE_REVISION' });
  await t.write({ compaction: { revision: 2 } });
  await assert.rejects(t.store.hash(2), { code: 'QUORUMKV_REVISION_COMPACTED' });
});

test('hash refuses a revision that is not a non-negative safe integer with QUORUMKV_INVALID_ARGUMENT', async () => {
  const t: TestStore = await openStore();
  await put(t, 'a', '1'); // 2
  await put(t, 'a', '2'); // 3
  // NaN and '2' hashed the current revision and answered revision NaN or '2'; 2.5 hashed up to 3
  for (const rev of [Number.NaN, 2.5, '2', Number.POSITIVE_INFINITY, null, -1]) {
    await assert.rejects(t.store.hash(rev as number), { name: 'UsageError', code: 'QUORUMKV_INVALID_ARGUMENT' }, String(rev));
  }
  await assert.rejects(t.store.hash(0, null as never), { name: 'UsageError', code: 'QUORUMKV_INVALID_ARGUMENT' });
  assert.equal((await t.store.hash(0)).revision, 3, '0 is the current revision');
});

test('the store works on classic-level and survives closing the database', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'quorumkv-mvcc-'));
  try {
    const reqs = randomWrites(seed + 4, 80);
    let db = new ClassicLevel<string, string>(dir);
    let store = await MvccStore.open(db.sublevel('mvcc'), { sync: true });
    await applyAll(store, reqs);
    const hash = await store.hash();
    const state = await dump(store);
    await store.close();
    await db.close();
    db = new ClassicLevel<string, string>(dir);
    store = await MvccStore.open(db.sublevel('mvcc'));
    assert.equal(store.appliedIndex(), 80);
    assert.deepEqual(await store.hash(), hash);
    assert.deepEqual(await dump(store), state);
    await store.close();
    await db.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test(
  'batches applied without waiting for the previous one execute and are written in order; reads see them at once',
  withSeed(seed, async () => {
    const reqs = randomWrites(seed + 5, 210);
    const t = await openStore();
    const w = t.store.watch({ key: b('k'), rangeEnd: b('l'), startRevision: 1 });
    const pending: Promise<unknown>[] = [];
    const observed: string[] = [];
    for (let i = 0; i < reqs.length; i += 30) {
      pending.push(t.store.applyBatch(reqs.slice(i, i + 30).map((request, j) => ({ index: i + j + 1, request }))));
      // a read right after queueing: sees every entry executed so far, including unwritten ones
      pending.push(t.store.range({ key: b('k'), rangeEnd: b('l') }).then((r) => observed.push(`${r.header.revision}:${r.count}`)));
    }
    await Promise.all(pending);
    await t.store.compactionIdle();
    const reference = await openStore();
    await applyAll(reference.store, reqs, 1, 30);
    assert.deepEqual(await t.store.hash(), await reference.store.hash());
    assert.equal(observed.length, 7);
    // history of every revision is readable, whether it came from memory, the write buffer or the backend
    const rev = t.store.currentRevision();
    const from = Math.max(t.store.compactRevision(), 1);
    for (let r = from; r <= rev; r += 7) {
      assert.deepEqual(
        (await t.store.range({ key: b('k'), rangeEnd: b('l'), revision: r })).kvs.map(kvStr),
        (await reference.store.range({ key: b('k'), rangeEnd: b('l'), revision: r })).kvs.map(kvStr),
      );
    }
    await w.cancel();
  }),
);
