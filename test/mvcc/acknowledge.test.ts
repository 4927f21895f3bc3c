// applyBatch with `acknowledge: 'applied'`: answered once applied in memory,
// written later (batches applied meanwhile land together, in apply order),
// with snapshot, hash and close waiting for every queued write, watchers
// notified only of written revisions, and a lost unwritten batch applied
// again after reopening.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLevel } from 'memory-level';
import { MvccStore } from '../../src/mvcc/index.js';
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

test('a watcher hears of an applied revision only once it is written, with a header revision that is written', async () => {
  const g = gatedDb();
  const store = await MvccStore.open(g.db);
  const w = store.watch({ key: b('k'), startRevision: 0 });
  const seen: number[] = [];
  const headers: number[] = [];
  w.on('response', (resp: { header: { revision: number }; events: { kv: { modRevision: number } }[] }) => {
    headers.push(resp.header.revision);
    for (const e of resp.events) seen.push(e.kv.modRevision);
  });
  g.hold();
  await store.applyBatch([{ index: 1, request: put('k', 'v') }], { acknowledge: 'applied' });
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(seen, [], 'nothing before the write lands');
  g.release();
  await store.watchIdle();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(seen, [2]);
  assert.ok(headers.every((h) => h <= 2));
  await w.cancel();
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
