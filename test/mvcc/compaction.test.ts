// Compaction (etcd's CompactionRequest): which revisions it accepts, what
// stays readable, physical removal of old revisions from the backend (also
// resumed after a crash), and re-compaction.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { MemoryLevel } from 'memory-level';
import { pack } from '../../src/codec/index.js';
import { bytesToRev, isTombstoneKey } from '../../src/mvcc/index.js';
import { RANGE_END_ALL } from '../../src/mvccpb/index.js';
import { b, del, kvStr, openStore, put, type TestStore } from './helpers.js';

/** Revisions physically in the backend, as `main[t]` strings. */
async function storedRevisions(t: TestStore): Promise<string[]> {
  const out: string[] = [];
  const k = t.db.sublevel('mvcc').sublevel<Uint8Array, Uint8Array>('k', { keyEncoding: 'view', valueEncoding: 'view' });
  for await (const key of k.keys()) {
    const r = bytesToRev(key);
    out.push(`${r.main}${r.sub ? '.' + r.sub : ''}${isTombstoneKey(key) ? 't' : ''}`);
  }
  return out;
}

async function compact(t: TestStore, revision: number) {
  const r = await t.store.apply(t.takeIndex(), { compaction: { revision } });
  return r;
}

test('compaction revisions: at or below the previous one is compacted, above the current one is future', async () => {
  const t = await openStore();
  const first = await compact(t, 1);
  assert.equal(first.status, 'applied', 'compacting a fresh store to 1 succeeds once');
  const again = await compact(t, 1);
  assert.equal(again.status === 'failed' && again.error.code, 'QUORUMKV_REVISION_COMPACTED');
  assert.equal(again.status === 'failed' && (again.error as unknown as { compactRevision: number }).compactRevision, 1);
  await put(t, 'a', '1'); // 2
  await put(t, 'a', '2'); // 3
  const future = await compact(t, 4);
  assert.equal(future.status === 'failed' && future.error.code, 'QUORUMKV_FUTURE_REVISION');
  assert.equal((await compact(t, 3)).status, 'applied');
  const below = await compact(t, 2);
  assert.equal(below.status === 'failed' && below.error.code, 'QUORUMKV_REVISION_COMPACTED');
  assert.equal(t.store.compactRevision(), 3);
});

test('compacting a fresh store to 0 works once (etcd starts below 0)', async () => {
  const t = await openStore();
  assert.equal(t.store.compactRevision(), -1);
  assert.equal((await compact(t, 0)).status, 'applied');
  const r = await compact(t, 0);
  assert.equal(r.status === 'failed' && r.error.code, 'QUORUMKV_REVISION_COMPACTED');
});

test('physical compaction keeps the latest version of every live key at the compaction revision', async () => {
  const t = await openStore({ compactionBatchLimit: 2 });
  await put(t, 'a', '1'); // 2
  await put(t, 'a', '2'); // 3
  await put(t, 'b', '1'); // 4
  await del(t, 'b'); // 5 (tombstone)
  await put(t, 'c', '1'); // 6
  await t.write({
    txn: { success: [{ requestPut: { key: b('d'), value: b('1') } }, { requestPut: { key: b('e'), value: b('1') } }] },
  }); // 7.0, 7.1
  await put(t, 'a', '3'); // 8
  await del(t, 'c'); // 9
  assert.deepEqual(await storedRevisions(t), ['2', '3', '4', '5t', '6', '7', '7.1', '8', '9t']);
  const r = await compact(t, 7);
  assert.ok(r.status === 'applied' && r.physical);
  await r.physical;
  // a@3 is the latest of a at 7; b's generation ended in a tombstone; c@6 stays (deleted after 7)
  assert.deepEqual(await storedRevisions(t), ['3', '6', '7', '7.1', '8', '9t']);
  assert.deepEqual((await t.store.range({ key: RANGE_END_ALL, rangeEnd: RANGE_END_ALL, revision: 7 })).kvs.map(kvStr), [
    'a=2@2/3/2',
    'c=1@6/6/1',
    'd=1@7/7/1',
    'e=1@7/7/1',
  ]);
  // compacting again at the latest revision drops the deleted key's value and
  // a's old version; the tombstone at the compaction revision itself stays
  // until the next compaction (a watch resuming at 9 gets its DELETE)
  const r2 = await compact(t, 9);
  assert.ok(r2.status === 'applied');
  await r2.physical;
  assert.deepEqual(await storedRevisions(t), ['7', '7.1', '8', '9t']);
  assert.deepEqual((await t.store.range({ key: RANGE_END_ALL, rangeEnd: RANGE_END_ALL })).kvs.map(kvStr), ['a=3@2/8/3', 'd=1@7/7/1', 'e=1@7/7/1']);
  assert.deepEqual((await t.store.range({ key: RANGE_END_ALL, rangeEnd: RANGE_END_ALL, countOnly: true, revision: 9 })).count, 3);
  await put(t, 'f', '1'); // 10
  const r3 = await compact(t, 10);
  assert.ok(r3.status === 'applied');
  await r3.physical;
  assert.deepEqual(await storedRevisions(t), ['7', '7.1', '8', '10']);
});

test('versions and create revisions survive compaction of their history', async () => {
  const t = await openStore();
  for (let i = 0; i < 5; i++) await put(t, 'k', String(i)); // 2..6
  await compact(t, 6);
  await t.store.compactionIdle();
  await put(t, 'k', 'x'); // 7
  assert.deepEqual((await t.store.range({ key: b('k') })).kvs.map(kvStr), ['k=x@2/7/6']);
});

test('applies go on while a physical compaction runs, and nothing above it is lost', async () => {
  const t = await openStore({ compactionBatchLimit: 3 });
  for (let i = 0; i < 200; i++) await put(t, `k${i % 20}`, String(i)); // revs 2..201
  const r = await compact(t, 150);
  assert.ok(r.status === 'applied');
  const writes: Promise<unknown>[] = [];
  for (let i = 0; i < 30; i++) writes.push(put(t, `k${i % 20}`, `late${i}`));
  await Promise.all(writes);
  await r.physical;
  const stored = await storedRevisions(t);
  // 20 keys keep their latest version at or below 150, plus everything after 150
  assert.equal(stored.filter((x) => Number.parseInt(x) <= 150).length, 20);
  assert.equal(stored.filter((x) => Number.parseInt(x) > 150).length, 51 + 30);
  const all = await t.store.range({ key: b('k'), rangeEnd: b('l') });
  assert.equal(all.count, 20);
});

test('a compaction scheduled before a crash is finished when the store reopens', async () => {
  const db = new MemoryLevel<string, string>();
  const t = await openStore({}, db);
  for (let i = 0; i < 10; i++) await put(t, 'k', String(i)); // 2..11
  await t.store.close();
  // a crash right after the entry that scheduled compaction at 8 was committed
  const meta = db.sublevel('mvcc').sublevel<Uint8Array, Uint8Array>('m', { keyEncoding: 'view', valueEncoding: 'view' });
  await meta.put(new TextEncoder().encode('compactScheduled'), pack(8));
  const t2 = await openStore({}, db);
  assert.equal(t2.store.compactRevision(), 8);
  await assert.rejects(t2.store.range({ key: b('k'), revision: 7 }), { code: 'QUORUMKV_REVISION_COMPACTED' });
  await t2.store.compactionIdle();
  assert.deepEqual(await storedRevisions(t2), ['8', '9', '10', '11']);
  assert.deepEqual((await t2.store.range({ key: b('k'), revision: 8 })).kvs.map(kvStr), ['k=6@2/8/7']);
});

test('the compaction response carries the current revision', async () => {
  const t = await openStore();
  await put(t, 'a', '1');
  await put(t, 'a', '2');
  const r = await compact(t, 2);
  assert.ok(r.status === 'applied' && 'compaction' in r.response);
  assert.equal(r.response.compaction.header.revision, 3);
});

test('a read at the current revision whose records a compaction removes while it reads them is read again at the new revision, not failed as compacted', async () => {
  // a range of 16 keys or more on classic-level reads its values with one
  // getMany; a key overwritten and compacted away meanwhile left its old
  // record missing, and the read failed with QUORUMKV_REVISION_COMPACTED
  // although it asked for no revision (etcd's read transaction sees a
  // consistent snapshot instead)
  const dir = await mkdtemp(join(tmpdir(), 'quorumkv-mvcc-'));
  const db = new ClassicLevel<string, string>(dir);
  try {
    const t = await openStore({}, db as never);
    for (let i = 0; i < 20; i++) await put(t, `k${String(i).padStart(2, '0')}`, 'old');
    // white box: hold the store's batched reads of written records
    const backend = (t.store as unknown as { core: { backend: { getWrittenRevisions: (keys: Uint8Array[]) => Promise<unknown> } } }).core.backend;
    const real = backend.getWrittenRevisions.bind(backend);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let reads = 0;
    backend.getWrittenRevisions = async (keys) => {
      reads++;
      await held;
      return real(keys);
    };
    const reading = t.store.range({ key: b('k'), rangeEnd: b('l') });
    while (reads === 0) await new Promise((r) => setImmediate(r));
    const after = await put(t, 'k00', 'new');
    const r = await compact(t, after.header.revision);
    assert.ok(r.status === 'applied' && r.physical);
    await r.physical;
    release();
    const res = await reading;
    assert.equal(res.count, 20);
    assert.equal(res.header.revision, after.header.revision, 'read at the revision after the compaction');
    assert.equal(kvStr(res.kvs[0]!).split('@')[0], 'k00=new');
    await t.store.close();
  } finally {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a physical compaction whose batch fails to be written settles with the store\'s failure instead of never', async () => {
  // a caller waiting for the compaction's physical part (KvNode's
  // compact(rev, { physical: true })) waited forever when the write of the
  // batch that scheduled it failed
  const t = await openStore();
  for (let i = 0; i < 5; i++) await put(t, 'k', `v${i}`);
  // white box: the store's next batch write fails (a disk error, a database closed under it)
  const root = (t.store as unknown as { backend: { root: { batch: (...args: unknown[]) => Promise<void> } } }).backend.root;
  root.batch = () => Promise.reject(new Error('disk on fire'));
  const r = await t.store.applyBatch([{ index: t.takeIndex(), request: { compaction: { revision: 4 } } }], { acknowledge: 'applied' });
  const [res] = r;
  assert.ok(res !== undefined && res.status === 'applied' && res.physical !== undefined);
  const settled = await Promise.race([
    res.physical.then(
      () => 'resolved',
      (err: { code?: string }) => err.code,
    ),
    new Promise((resolve) => setTimeout(() => resolve('pending after 1 s'), 1000)),
  ]);
  assert.equal(settled, 'QUORUMKV_STORAGE_IO');
});
