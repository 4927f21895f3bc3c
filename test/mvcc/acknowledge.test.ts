// applyBatch with `acknowledge: 'applied'`: answered once applied in memory,
// written later (batches applied meanwhile land together, in apply order),
// with snapshot, hash and close waiting for every queued write, watchers
// notified at apply (catch-up reads take the records still to be written),
// and a lost unwritten batch applied again after reopening.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { MemoryLevel } from 'memory-level';
import { MvccStore } from '../../src/mvcc/index.js';
import { runFixture } from '../fixtures/run-fixture.js';
import { b, kvStr } from './helpers.js';

type Db = MemoryLevel<Uint8Array, Uint8Array>;

/** A memory-level whose batch writes wait until `release()`; counts them and their sizes. */
function gatedDb(): { db: Db; writes: number[]; hold(): void; release(): void } {
  const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
  const writes: number[] = [];
  let gate: Promise<void> | undefined;
  let open: (() => void) | undefined;
  const batch = db.batch.bind(db) as (ops: unknown[], opts?: object) => Promise<void>;
  (db as unknown as { batch: unknown }).batch = async (ops: unknown[], opts?: object) => {
    if (!Array.isArray(ops)) return batch(ops as never, opts);
    writes.push(ops.length);
    if (gate !== undefined) await gate;
    return batch(ops, opts);
  };
  return {
    db,
    writes,
    hold() {
      gate = new Promise((r) => (open = r));
    },
    release() {
      gate = undefined;
      open?.();
    },
  };
}

const put = (key: string, value: string) => ({ put: { key: b(key), value: b(value) } });

test("acknowledge 'applied' answers before the write; reads see the entry; batches applied during a write land together, in order", async () => {
  const g = gatedDb();
  const store = await MvccStore.open(g.db);
  g.hold();
  const [r1] = await store.applyBatch([{ index: 1, request: put('a', '1') }], { acknowledge: 'applied' });
  assert.equal(r1!.status, 'applied');
  await new Promise((r) => setImmediate(r)); // the writer starts and waits at the gate
  assert.equal(g.writes.length, 1);
  const [r2] = await store.applyBatch([{ index: 2, request: put('a', '2') }], { acknowledge: 'applied' });
  const [r3] = await store.applyBatch([{ index: 3, request: put('b', '3') }], { acknowledge: 'applied' });
  assert.equal(r2!.status, 'applied');
  assert.equal(r3!.status, 'applied');
  // reads, current and past, see what is applied but not written
  assert.deepEqual((await store.range({ key: b('a') })).kvs.map(kvStr), ['a=2@2/3/2']);
  assert.deepEqual((await store.range({ key: b('a'), revision: 2 })).kvs.map(kvStr), ['a=1@2/2/1']);
  assert.equal(store.appliedIndex(), 3);
  let hashed = false;
  const hash = store.hash().then((h) => {
    hashed = true;
    return h;
  });
  await new Promise((r) => setImmediate(r));
  assert.equal(hashed, false, 'hash waits for the queued writes');
  g.release();
  await hash;
  // the first write alone, then entries 2 and 3 in one backend batch
  assert.equal(g.writes.length, 2, `backend writes: ${JSON.stringify(g.writes)}`);
  await store.close();
  const again = await MvccStore.open(g.db);
  assert.equal(again.appliedIndex(), 3);
  assert.deepEqual((await again.range({ key: b('a'), rangeEnd: b('c') })).kvs.map(kvStr), ['a=2@2/3/2', 'b=3@4/4/1']);
  await again.close();
});

test('watchers hear of an applied revision before it is written, and a watch from that revision catches up from the write buffer', async () => {
  const g = gatedDb();
  const store = await MvccStore.open(g.db);
  const live: number[] = [];
  const w = store.watch({ key: b('k'), startRevision: 0 });
  w.on('put', (e: { kv: { modRevision: number } }) => live.push(e.kv.modRevision));
  await store.applyBatch([{ index: 1, request: put('k', 'v1') }]); // written: revision 2
  g.hold();
  await store.applyBatch([{ index: 2, request: put('k', 'v2') }], { acknowledge: 'applied' }); // revision 3, held
  await store.applyBatch([{ index: 3, request: put('k', 'v3') }], { acknowledge: 'applied' }); // revision 4, queued
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(live, [2, 3, 4], 'the live watcher heard of every applied revision, written or not');
  // a new watch from revision 2 reads 2 from the database and 3, 4 from the write buffer
  const past: { rev: number; value: string; prev?: string }[] = [];
  const w2 = store.watch({ key: b('k'), startRevision: 2, prevKv: true });
  w2.on('put', (e: { kv: { modRevision: number; value: Uint8Array }; prevKv?: { value: Uint8Array } }) =>
    past.push({ rev: e.kv.modRevision, value: new TextDecoder().decode(e.kv.value), ...(e.prevKv ? { prev: new TextDecoder().decode(e.prevKv.value) } : {}) }),
  );
  for (let i = 0; i < 20 && past.length < 3; i++) await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(past, [
    { rev: 2, value: 'v1' },
    { rev: 3, value: 'v2', prev: 'v1' },
    { rev: 4, value: 'v3', prev: 'v2' },
  ]);
  g.release();
  await store.watchIdle();
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(live, [2, 3, 4], 'nothing twice once written');
  assert.equal(past.length, 3, 'nothing twice once written');
  await w.cancel();
  await w2.cancel();
  await store.close();
});

test('a batch acknowledged but never written (a crash) is applied again from the log after reopening', async () => {
  const g = gatedDb();
  const store = await MvccStore.open(g.db);
  await store.applyBatch([{ index: 1, request: put('x', '1') }]); // written
  g.hold();
  await store.applyBatch([{ index: 2, request: put('x', '2') }], { acknowledge: 'applied' });
  // crash: a copy of the database as it is on disk, without the held write
  const copy = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
  for await (const [k, v] of g.db.iterator()) await copy.put(k, v);
  g.release();
  await store.close();
  const reopened = await MvccStore.open(copy);
  assert.equal(reopened.appliedIndex(), 1);
  const [again] = await reopened.applyBatch([{ index: 2, request: put('x', '2') }]);
  assert.equal(again!.status, 'applied');
  assert.deepEqual((await reopened.range({ key: b('x') })).kvs.map(kvStr), ['x=2@2/3/2']);
  await reopened.close();
});

test('sync() on classic-level leaves nothing that lives only in a write-ahead log: the write buffers are flushed to fsynced tables', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'quorumkv-sync-'));
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
  try {
    const store = await MvccStore.open(db);
    for (let i = 1; i <= 50; i++) await store.applyBatch([{ index: i, request: put(`k${i}`, 'x'.repeat(100)) }], { acknowledge: 'applied' });
    const logBytes = async (): Promise<number> => {
      let total = 0;
      for (const f of await readdir(dir)) if (f.endsWith('.log')) total += (await stat(join(dir, f))).size;
      return total;
    };
    await store.watchIdle(); // written, not synced
    assert.ok((await logBytes()) > 5_000, 'the writes sit in the write-ahead log');
    await store.sync();
    assert.equal(await logBytes(), 0, 'after sync() the write-ahead log holds nothing');
    assert.ok((await readdir(dir)).some((f) => f.endsWith('.ldb')), 'the data is in a table file');
    await store.close();
  } finally {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  }
});

/** A timer that fires only when told to. */
function manualTimer(): { timer: { setTimeout(fn: () => void, ms: number): unknown; clearTimeout(h: unknown): void }; pending: Set<() => void>; fire(): void; delays: number[] } {
  const pending = new Set<() => void>();
  const delays: number[] = [];
  return {
    pending,
    delays,
    timer: {
      setTimeout(fn, ms) {
        delays.push(ms);
        pending.add(fn);
        return fn;
      },
      clearTimeout(h) {
        pending.delete(h as () => void);
      },
    },
    fire() {
      const fns = [...pending];
      pending.clear();
      for (const fn of fns) fn();
    },
  };
}

test('with a batch interval, batches acknowledged at apply wait for the timer and land in one write, the applied index once', async () => {
  const g = gatedDb();
  const t = manualTimer();
  const store = await MvccStore.open(g.db, { batchIntervalMs: 25, timer: t.timer, watch: { progressIntervalMs: 0 } });
  for (let i = 1; i <= 5; i++) await store.applyBatch([{ index: i, request: put(`k${i}`, `v${i}`) }], { acknowledge: 'applied' });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(g.writes, [], 'nothing written before the interval');
  assert.deepEqual(t.delays, [25], 'one timer for the five batches');
  t.fire();
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  // five revision records and one applied-index record (four superseded ones left out)
  assert.deepEqual(g.writes, [6]);
  assert.deepEqual((await store.range({ key: b('k'), rangeEnd: b('l') })).kvs.map(kvStr), ['k1=v1@2/2/1', 'k2=v2@3/3/1', 'k3=v3@4/4/1', 'k4=v4@5/5/1', 'k5=v5@6/6/1']);
  await store.close();
  const again = await MvccStore.open(g.db);
  assert.equal(again.appliedIndex(), 5, 'the last applied index was written');
  await again.close();
});

test('with a batch interval, a batch whose caller waits for the write, sync() and close() write at once', async () => {
  const g = gatedDb();
  const t = manualTimer();
  const store = await MvccStore.open(g.db, { batchIntervalMs: 1_000, timer: t.timer, watch: { progressIntervalMs: 0 } });
  await store.applyBatch([{ index: 1, request: put('a', '1') }], { acknowledge: 'applied' });
  assert.equal(t.pending.size, 1);
  // the default acknowledgement waits for the write: the writer starts now and takes both
  await store.applyBatch([{ index: 2, request: put('b', '2') }]);
  assert.deepEqual(g.writes, [3]);
  assert.equal(t.pending.size, 0, 'the timer was cancelled');
  await store.applyBatch([{ index: 3, request: put('c', '3') }], { acknowledge: 'applied' });
  assert.equal(t.pending.size, 1);
  await store.sync();
  assert.equal(t.pending.size, 0, 'sync() cancelled the timer');
  assert.equal(g.writes[1], 2, 'and wrote the batch (then its synced marker)');
  await store.applyBatch([{ index: 4, request: put('d', '4') }], { acknowledge: 'applied' });
  const before = g.writes.length;
  await store.close();
  assert.equal(g.writes.length, before + 1, 'close() wrote the last batch');
  assert.equal(t.pending.size, 0);
  const again = await MvccStore.open(g.db);
  assert.equal(again.appliedIndex(), 4);
  await again.close();
});

test('with a batch interval, what is applied during a write waits for the interval again, unless a caller waits for it', async () => {
  const g = gatedDb();
  const t = manualTimer();
  const store = await MvccStore.open(g.db, { batchIntervalMs: 25, timer: t.timer, watch: { progressIntervalMs: 0 } });
  await store.applyBatch([{ index: 1, request: put('a', '1') }], { acknowledge: 'applied' });
  g.hold();
  t.fire();
  await new Promise((r) => setImmediate(r)); // the write of entry 1 starts and waits at the gate
  assert.equal(g.writes.length, 1);
  await store.applyBatch([{ index: 2, request: put('b', '2') }], { acknowledge: 'applied' });
  await store.applyBatch([{ index: 3, request: put('c', '3') }], { acknowledge: 'applied' });
  g.release();
  for (let i = 0; i < 4; i++) await new Promise((r) => setImmediate(r));
  assert.equal(g.writes.length, 1, 'entries 2 and 3 are not written right after the first write');
  assert.deepEqual(t.delays, [25, 25], 'they wait for a second interval');
  t.fire();
  for (let i = 0; i < 4; i++) await new Promise((r) => setImmediate(r));
  assert.equal(g.writes.length, 2, 'and then land in one write');
  assert.equal(g.writes[1], 3, 'two revision records and the applied index');
  // a caller waiting for its write does not wait for the interval, even behind a running write
  await store.applyBatch([{ index: 4, request: put('d', '4') }], { acknowledge: 'applied' });
  g.hold();
  t.fire();
  await new Promise((r) => setImmediate(r));
  const waited = store.applyBatch([{ index: 5, request: put('e', '5') }]);
  g.release();
  await waited;
  assert.equal(g.writes.length, 4, 'entry 5 was written right after the write of entry 4');
  assert.equal(t.pending.size, 0);
  await store.close();
});

test('with a batch interval, a compaction applied while a write runs is written right after it: its physical removal waits for no timer', async () => {
  const g = gatedDb();
  const t = manualTimer();
  const store = await MvccStore.open(g.db, { batchIntervalMs: 25, timer: t.timer, watch: { progressIntervalMs: 0 } });
  await store.applyBatch([{ index: 1, request: put('a', '1') }], { acknowledge: 'applied' });
  await store.applyBatch([{ index: 2, request: put('a', '2') }], { acknowledge: 'applied' });
  g.hold();
  t.fire();
  await new Promise((r) => setImmediate(r)); // the write of entries 1 and 2 starts and waits at the gate
  const [c] = await store.applyBatch([{ index: 3, request: { compaction: { revision: 3, physical: true } } }], { acknowledge: 'applied' });
  assert.equal(c!.status, 'applied');
  g.release();
  for (let i = 0; i < 6; i++) await new Promise((r) => setImmediate(r));
  assert.equal(g.writes.length >= 2, true, `the compaction's batch was written without the timer (writes: ${JSON.stringify(g.writes)})`);
  assert.equal(t.pending.size, 0, 'no interval was waited for');
  await store.close();
});

test('MvccStore.open refuses options it cannot work with: QUORUMKV_INVALID_CONFIG', async () => {
  const bad: [string, object][] = [
    // Infinity: what was acknowledged at apply was never written (a timer of 2^31 - 1 ms)
    ['batchIntervalMs Infinity', { batchIntervalMs: Number.POSITIVE_INFINITY }],
    // NaN and negatives were taken as 0 without a word
    ['batchIntervalMs NaN', { batchIntervalMs: Number.NaN }],
    ['batchIntervalMs -5', { batchIntervalMs: -5 }],
    ['batchIntervalMs "10"', { batchIntervalMs: '10' }],
    // NaN or Infinity: a physical compaction deleted everything in one batch
    ['compactionBatchLimit NaN', { compactionBatchLimit: Number.NaN }],
    ['compactionBatchLimit Infinity', { compactionBatchLimit: Number.POSITIVE_INFINITY }],
    ['compactionBatchLimit 0', { compactionBatchLimit: 0 }],
    ['compactionBatchLimit -1', { compactionBatchLimit: -1 }],
    ['compactionBatchLimit 2.5', { compactionBatchLimit: 2.5 }],
    // NaN let a txn of any size through; 0 or less refused every txn
    ['limits.maxTxnOps NaN', { limits: { maxTxnOps: Number.NaN } }],
    ['limits.maxTxnOps 0', { limits: { maxTxnOps: 0 } }],
    ['limits.maxTxnOps -1', { limits: { maxTxnOps: -1 } }],
    ['limits.maxRequestBytes NaN', { limits: { maxRequestBytes: Number.NaN } }],
    ['limits null', { limits: null }],
    // failed the store (QUORUMKV_INTERNAL) at its first backend write
    ['onBackendCommit "x"', { onBackendCommit: 'x' }],
    // a raw TypeError, or one thrown by applyBatch after the entry was applied
    ['timer {}', { timer: {} }],
    ['timer null', { timer: null }],
    ['sync "yes"', { sync: 'yes' }],
    ['watch "x"', { watch: 'x' }],
    ['options null', null as unknown as object],
  ];
  for (const [name, options] of bad) {
    const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
    await assert.rejects(MvccStore.open(db, options as never), { name: 'UsageError', code: 'QUORUMKV_INVALID_CONFIG' }, name);
  }
  // the limits of the domain are accepted
  const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
  const store = await MvccStore.open(db, { batchIntervalMs: 0.5, compactionBatchLimit: 1, limits: { maxTxnOps: Number.POSITIVE_INFINITY, maxRequestBytes: 1 } });
  assert.equal((await store.apply(1, put('a', '1'))).status, 'applied');
  await store.close();
});

test('an onBackendCommit that throws does not fail the store: its error is thrown on its own and the writes go on', () => {
  // it failed the store (QUORUMKV_INTERNAL, every call refused from then
  // on), rejecting an entry whose batch had been written
  const out = runFixture<{ statuses: string[]; value: string; thrown: string[] }>('backend-commit-throws.mjs');
  assert.deepEqual(out.statuses, ['applied', 'applied', 'applied']);
  assert.equal(out.value, '3');
  assert.deepEqual(out.thrown, ['callback failed at write 1', 'callback failed at write 2', 'callback failed at write 3']);
});
