// A watcher catching up from history while the store restores a snapshot:
// the catch-up read that overlapped the restore is dropped and the watcher
// continues from the restored history, as etcd moves watchers back to
// unsynced on restore.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLevel } from 'memory-level';
import { MvccStore, WatchableStore, type StoredEvent, type WatchSource, type WriteRequest } from '../../src/mvcc/index.js';
import type { KeyValue } from '../../src/mvccpb/index.js';
import { b, kvStr, openStore, s } from './helpers.js';

/** Puts `count` versions of `key` into a fresh store, 500 entries per batch. */
async function fill(store: MvccStore, key: string, tag: string, count: number): Promise<void> {
  for (let i = 0; i < count; i += 500) {
    const entries = [];
    for (let j = i; j < Math.min(count, i + 500); j++) entries.push({ index: j + 1, request: { put: { key: b(key), value: b(`${tag}${j}`) } } });
    await store.applyBatch(entries);
  }
}

function history(tag: string, upTo: number): StoredEvent[] {
  const out: StoredEvent[] = [];
  for (let rev = 2; rev <= upTo; rev++) {
    const kv: KeyValue = { key: b('k'), value: b(`${tag}${rev}`), createRevision: 2, modRevision: rev, version: rev - 1, lease: 0 };
    out.push({ revision: rev, skey: 'k', event: { type: 'PUT', kv } });
  }
  return out;
}

test('a catch-up read overlapping a restore is dropped; the watcher continues from the restored history', async () => {
  let events = history('old', 5);
  let top = 5;
  let gate: Promise<void> | undefined;
  let open: () => void = () => {};
  let reads = 0;
  const source: WatchSource = {
    flushedRevision: () => top,
    compactRevision: () => -1,
    async readEvents(from, to) {
      reads++;
      const seen = events.filter((e) => e.revision >= from && e.revision <= to); // what the scan saw
      if (gate !== undefined) await gate;
      return seen;
    },
    kvAt: async () => undefined,
  };
  const hub = new WatchableStore(source);
  gate = new Promise((r) => (open = r));
  const w = hub.watch({ key: b('k'), startRevision: 2 });
  const got: string[] = [];
  w.on('put', (e: { kv: KeyValue }) => got.push(new TextDecoder().decode(e.kv.value)));
  for (let i = 0; i < 10 && reads === 0; i++) await new Promise((r) => setImmediate(r));
  assert.equal(reads, 1, 'the catch-up read started');
  // the store restores a snapshot with another history while the read waits
  events = history('new', 8);
  top = 8;
  hub.onRestore();
  gate = undefined;
  open();
  await hub.idle();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(got, ['new2', 'new3', 'new4', 'new5', 'new6', 'new7', 'new8']);
  await w.cancel();
  hub.close();
});

test('a synced watcher moved back to catch-up by a restore continues after the last revision it was notified of: nothing twice', async () => {
  let events = history('v', 3);
  let top = 3;
  const source: WatchSource = {
    flushedRevision: () => top,
    compactRevision: () => -1,
    readEvents: async (from, to) => events.filter((e) => e.revision >= from && e.revision <= to),
    kvAt: async () => undefined,
  };
  const hub = new WatchableStore(source);
  const w = hub.watch({ key: b('k'), startRevision: 2 });
  const got: number[] = [];
  w.on('put', (e: { kv: KeyValue }) => got.push(e.kv.modRevision));
  await hub.idle();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(got, [2, 3], 'caught up from history, now synced');
  // revisions 4 and 5 are applied and notified live
  events = history('v', 5);
  top = 5;
  hub.notify(events.slice(2).map((e) => ({ revision: e.revision, events: [e.event], withPrevKv: true })));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(got, [2, 3, 4, 5]);
  // a snapshot restore brings revisions up to 7; the watcher reads 6 and 7 only
  events = history('v', 7);
  top = 7;
  hub.onRestore();
  await hub.idle();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(got, [2, 3, 4, 5, 6, 7]);
  await w.cancel();
  hub.close();
});

test('a watcher catching up while a store restores a snapshot gets every revision once, across the restore', async () => {
  // the restore clears the database and writes the snapshot's records in
  // chunks: a catch-up read in that window must not count as progress
  const source = await openStore();
  await fill(source.store, 'k', 'source', 9000); // revisions 2..9001
  const snap = await source.store.snapshot();
  const t = await openStore({ watch: { maxRevisionsPerSync: 1 } }); // one revision per catch-up pass
  await fill(t.store, 'k', 'target', 8000); // revisions 2..8001
  const got: number[] = [];
  let restoring: Promise<void> | undefined;
  const w = t.store.watch({ key: b('k'), startRevision: 2 });
  w.on('put', (e: { kv: KeyValue }) => {
    got.push(e.kv.modRevision);
    if (got.length === 100) restoring = t.store.restore(snap);
  });
  for (let i = 0; i < 10_000 && restoring === undefined; i++) await new Promise((r) => setImmediate(r));
  await restoring;
  await t.store.watchIdle();
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  const want = Array.from({ length: 9000 }, (_, i) => i + 2);
  assert.deepEqual(got, want);
  await w.cancel();
  await t.store.close();
  await source.store.close();
});

test('a prevKv watch from now waiting for a read when a snapshot compacted past its first revision is restored gets what it was notified of, then the restored history', async () => {
  // On a database without synchronous reads, the previous version of k@3
  // (k@2, written) takes a read that waits. The notifications kept for it
  // were dropped by the restore and read again from the restored history,
  // from revision 3, which the snapshot had compacted (at 4): the watch was
  // cancelled, where etcd's watcher, synced, resumes after revision 4.
  const db = new MemoryLevel<string, string>();
  Object.defineProperty(db, 'supports', { value: { ...db.supports, getSync: false } });
  const held: (() => void)[] = [];
  let hold = false;
  const raw = db as unknown as { _get: (k: unknown, o: unknown) => Promise<unknown> };
  const get = raw._get.bind(db);
  raw._get = async (k, o) => {
    if (hold) await new Promise<void>((r) => held.push(r));
    return get(k, o);
  };
  const t = await openStore({}, db);
  const twin = await MvccStore.open(new MemoryLevel<string, string>().sublevel('mvcc'));
  const entries = (first: number, reqs: WriteRequest[]) => reqs.map((request, j) => ({ index: first + j, request }));
  const put = (key: string, value: string): WriteRequest => ({ put: { key: b(key), value: b(value) } });
  await t.store.applyBatch(entries(1, [put('k', '0')])); // 2
  await twin.applyBatch(entries(1, [put('k', '0')]));
  const batch = entries(2, [put('k', '1'), { txn: { success: [{ requestPut: { key: b('x'), value: b('x') } }] } }]); // 3, 4
  await twin.applyBatch(batch);
  const applying = t.store.applyBatch(batch, { acknowledge: 'applied' });
  while (t.store.currentRevision() < 3) await Promise.resolve();
  const w = t.store.watch({ key: b('k'), prevKv: true }); // from now
  hold = true; // the read of k@2
  await applying;
  hold = false;
  assert.equal(held.length, 1, 'the read of k@2 waits');
  // entries this store missed: it installs the twin's snapshot instead
  await twin.applyBatch(entries(4, [put('k', '2'), { compaction: { revision: 4 } }])); // 5
  await t.store.restore(await twin.snapshot());
  held.shift()!();
  await t.store.watchIdle();
  await t.store.applyBatch(entries(6, [put('k', '3')])); // 6
  await t.store.watchIdle();
  const got: string[] = [];
  while (w.queued > 0) {
    const r = (await w.next()).value!;
    assert.equal(r.canceled, false, `cancelled (compactRevision ${r.compactRevision}) after ${got.join(', ')}`);
    for (const e of r.events) got.push(`${e.type} ${s(e.kv.key)}@${e.kv.modRevision} prev ${kvStr(e.prevKv)}`);
  }
  // k@2 is gone with the compaction: k@3 goes without it, as etcd sends it
  assert.deepEqual(got, ['PUT k@3 prev -', 'PUT k@5 prev k=1@2/3/2', 'PUT k@6 prev k=2@2/5/3']);
  await w.cancel();
  await t.store.close();
  await twin.close();
});

/**
 * A database whose reads (`_get`, getSync off) or clears wait while `hold`
 * says so; `held` has the releases of those waiting.
 */
/** Turns of the event loop until the database holds an operation back (at most 1,000). */
async function untilHeld(held: (() => void)[]): Promise<void> {
  for (let i = 0; i < 1000 && held.length === 0; i++) await new Promise((r) => setImmediate(r));
}

function holdingDb(): { db: MemoryLevel<string, string>; hold: { get: boolean; clear: boolean }; held: (() => void)[] } {
  const db = new MemoryLevel<string, string>();
  Object.defineProperty(db, 'supports', { value: { ...db.supports, getSync: false } });
  const hold = { get: false, clear: false };
  const held: (() => void)[] = [];
  const raw = db as unknown as { _get: (k: unknown, o: unknown) => Promise<unknown>; _clear: (o: unknown) => Promise<void> };
  const get = raw._get.bind(db);
  const clear = raw._clear.bind(db);
  raw._get = async (k, o) => {
    if (hold.get) await new Promise<void>((r) => held.push(r));
    return get(k, o);
  };
  raw._clear = async (o) => {
    if (hold.clear) await new Promise<void>((r) => held.push(r));
    return clear(o);
  };
  return { db, hold, held };
}

/**
 * A store at revision 4 and the snapshot of a twin that went on to revision
 * 10 and compacted at 8 (the store's next revision, 5, is compacted in it).
 */
async function storeAndCompactedSnapshot(db: MemoryLevel<string, string>): Promise<{ t: Awaited<ReturnType<typeof openStore>>; snap: Uint8Array; close: () => Promise<void> }> {
  const t = await openStore({}, db);
  const twin = await MvccStore.open(new MemoryLevel<string, string>().sublevel('mvcc'));
  const put = (key: string, value: string): WriteRequest => ({ put: { key: b(key), value: b(value) } });
  for (let i = 1; i <= 3; i++) {
    await t.store.applyBatch([{ index: i, request: put('k', `a${i}`) }]); // 2..4
    await twin.applyBatch([{ index: i, request: put('k', `a${i}`) }]);
  }
  for (let i = 4; i <= 9; i++) await twin.applyBatch([{ index: i, request: put('k', `b${i}`) }]); // 5..10
  await twin.applyBatch([{ index: 10, request: { compaction: { revision: 8 } } }]);
  const snap = await twin.snapshot();
  await twin.close();
  return { t, snap, close: () => t.store.close() };
}

/** What `w` has queued: `PUT k@rev` per event, `CANCEL cr` for a cancellation. */
async function drain(w: ReturnType<MvccStore['watch']>): Promise<string[]> {
  const got: string[] = [];
  while (w.queued > 0) {
    const r = (await w.next()).value!;
    if (r.canceled) got.push(`CANCEL ${r.compactRevision}`);
    for (const e of r.events) got.push(`${e.type} ${s(e.kv.key)}@${e.kv.modRevision}`);
  }
  return got;
}

test('a watch from now created while a snapshot restore replaces the history starts after the restored revision: not cancelled as compacted', async () => {
  // etcd's watchableStore.Restore holds the store's lock: a watch created
  // meanwhile starts at the restored revision. Here it started at the old
  // one (5), which the snapshot compacted (at 8): it was cancelled with
  // compactRevision 8 though it asked for what comes next.
  const { db, hold, held } = holdingDb();
  const { t, snap, close } = await storeAndCompactedSnapshot(db);
  hold.clear = true; // the restore clears the old records
  const restoring = t.store.restore(snap);
  await untilHeld(held);
  assert.equal(held.length, 1, 'the restore is clearing the old records');
  hold.clear = false;
  const w = t.store.watch({ key: b('k') });
  held.shift()!();
  await restoring;
  await t.store.watchIdle();
  await t.store.applyBatch([{ index: 11, request: { put: { key: b('k'), value: b('c') } } }]); // 11
  await t.store.watchIdle();
  assert.deepEqual(await drain(w), ['PUT k@11']);
  await w.cancel();
  await close();
});

test('a watch from now created while a restore waits for the reads under way starts after the restored revision', async () => {
  // The restore stops new reads first (they wait for it and read the
  // restored state), then waits for the reads under way: a watch from now
  // created then is created as during the restore
  const { db, hold, held } = holdingDb();
  const { t, snap, close } = await storeAndCompactedSnapshot(db);
  hold.get = true;
  const read = t.store.range({ key: b('k'), revision: 3 }); // a past version: a database read
  await untilHeld(held);
  assert.equal(held.length, 1, 'the read waits');
  hold.get = false;
  const restoring = t.store.restore(snap);
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  const w = t.store.watch({ key: b('k') });
  held.shift()!();
  assert.equal(s((await read).kvs[0]!.value), 'a2');
  await restoring;
  await t.store.watchIdle();
  await t.store.applyBatch([{ index: 11, request: { put: { key: b('k'), value: b('c') } } }]); // 11
  await t.store.watchIdle();
  assert.deepEqual(await drain(w), ['PUT k@11']);
  await w.cancel();
  await close();
});

test('a watch from a past revision created while a snapshot restore runs reads the restored history, or is cancelled when it is compacted there', async () => {
  const { db, hold, held } = holdingDb();
  const { t, snap, close } = await storeAndCompactedSnapshot(db);
  hold.clear = true;
  const restoring = t.store.restore(snap);
  await untilHeld(held);
  hold.clear = false;
  const compacted = t.store.watch({ key: b('k'), startRevision: 3 });
  const kept = t.store.watch({ key: b('k'), startRevision: 9 }); // past the old revision, in the restored history
  held.shift()!();
  await restoring;
  await t.store.watchIdle();
  assert.deepEqual(await drain(compacted), ['CANCEL 8']);
  assert.deepEqual(await drain(kept), ['PUT k@9', 'PUT k@10']);
  await kept.cancel();
  await close();
});

test('WatchableStore.beginRestore refuses a restored revision that is not a non-negative safe integer, changing nothing', async () => {
  const source: WatchSource = { flushedRevision: () => 3, compactRevision: () => -1, readEvents: async () => [], kvAt: async () => undefined };
  const hub = new WatchableStore(source);
  for (const bad of [-1, 1.5, Number.NaN, Infinity, '5' as unknown as number, null as unknown as number]) {
    assert.throws(() => hub.beginRestore(bad), (e: unknown) => (e as { code?: string }).code === 'QUORUMKV_INVALID_ARGUMENT', String(bad));
  }
  // not restoring: a watch from now starts after the revision notified last
  const w = hub.watch({ key: b('k') });
  assert.equal(w.minRev, 4);
  hub.close();
});

test('a watch created while a snapshot restore runs is told, by a progress notification or its cancellation, the revision it covers in the restored history', async () => {
  // The store is at 4; the snapshot at 10, compacted at 8. A watch from now
  // created meanwhile starts at 11: a progress notification or a
  // cancellation saying 4 made a client that resumes from it (at 5) meet
  // the compaction, though the watch needed nothing before 11. One from 9
  // needs nothing before 9.
  const { db, hold, held } = holdingDb();
  const { t, snap } = await storeAndCompactedSnapshot(db);
  const before = t.store.watch({ key: b('k') }); // from 5: it needs 5..10
  hold.clear = true;
  const restoring = t.store.restore(snap);
  await untilHeld(held);
  assert.equal(held.length, 1, 'the restore is clearing the old records');
  hold.clear = false;
  const now = t.store.watch({ key: b('k') });
  const from9 = t.store.watch({ key: b('k'), startRevision: 9 });
  t.store.requestProgress();
  const headers = async (w: ReturnType<MvccStore['watch']>): Promise<string[]> => {
    const got: string[] = [];
    while (w.queued > 0) {
      const r = (await w.next()).value!;
      got.push(`${r.canceled ? 'CANCEL' : r.events.length > 0 ? 'EVENTS' : 'PROGRESS'} ${r.header.revision}`);
    }
    return got;
  };
  assert.deepEqual(await headers(now), ['PROGRESS 10'], 'a watch from now created during the restore has every revision up to 10');
  assert.deepEqual(await headers(before), ['PROGRESS 4'], 'one created before it has had 4 only');
  const closing = t.store.close();
  held.shift()!();
  await restoring;
  await closing;
  assert.deepEqual(await headers(now), ['CANCEL 10']);
  assert.deepEqual(await headers(from9), ['CANCEL 8'], 'a watch from 9 has had everything before 9');
  assert.deepEqual(await headers(before), ['CANCEL 4']);
});
