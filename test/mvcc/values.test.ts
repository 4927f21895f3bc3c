// Where current values live: on the key index from a write until the store
// has written its record, then only in the database (read back with a
// synchronous point read); in memory for good on a database that cannot
// read synchronously.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLevel } from 'memory-level';
import type { KvCore } from '../../src/mvcc/kv-core.js';
import { toSkey } from '../../src/mvcc/skey.js';
import { MvccStore, WatchableStore, type StoredEvent, type WatchSource } from '../../src/mvcc/index.js';
import { VirtualClock } from '../../src/node/clock.js';
import type { KeyValue, WatchResponse } from '../../src/mvccpb/index.js';
import { b, del, kvStr, openStore, put, s, type TestStore } from './helpers.js';

function coreOf(store: MvccStore): KvCore {
  return (store as unknown as { core: KvCore }).core;
}

function cachedValue(store: MvccStore, key: string): string | undefined {
  return coreOf(store).index.get(toSkey(b(key)))?.val;
}

/** Every read path at the current revision, as one string per key. */
async function readAll(t: TestStore, keys: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const k of keys) {
    const { kvs } = await t.store.range({ key: b(k) });
    const txn = await t.store.readTxn({ compare: [{ key: b(k), target: 'VALUE', result: 'EQUAL', value: kvs[0]?.value ?? b('') }], success: [{ requestRange: { key: b(k) } }] });
    out.push(`${kvStr(kvs[0])} txn=${txn.succeeded}`);
  }
  return out;
}

/**
 * History of key `k` (created at revision 2): `values[i]` at revision
 * `i + 2`, version `i + 1`, as stored events, and a watch source serving
 * them up to `state.top` (default: the last revision). `onKvAt` hears each
 * prevKv read.
 */
function keyHistory(values: string[], onKvAt?: (rev: number) => void): { stored: StoredEvent[]; source: WatchSource; state: { top: number } } {
  const stored: StoredEvent[] = values.map((value, i) => ({
    revision: i + 2,
    skey: 'k',
    event: { type: 'PUT', kv: { key: b('k'), value: b(value), createRevision: 2, modRevision: i + 2, version: i + 1, lease: 0 } },
  }));
  const state = { top: values.length + 1 };
  const source: WatchSource = {
    flushedRevision: () => state.top,
    compactRevision: () => -1,
    readEvents: async (from, to) => stored.filter((e) => e.revision >= from && e.revision <= to),
    kvAt: async (_key, rev) => {
      onKvAt?.(rev);
      return stored.filter((e) => e.revision <= rev).pop()?.event.kv;
    },
  };
  return { stored, source, state };
}

test('written values leave memory and every read path gets them from the database', async () => {
  const t = await openStore();
  await put(t, 'a', 'one');
  await put(t, 'b', 'two');
  await put(t, 'a', 'three');
  await del(t, 'b');
  await put(t, 'c', 'four');
  // each write above resolved once its batch was written: nothing is left in memory
  for (const k of ['a', 'b', 'c']) assert.equal(cachedValue(t.store, k), undefined, k);
  assert.deepEqual(await readAll(t, ['a', 'b', 'c']), ['a=three@2/4/2 txn=true', '- txn=false', 'c=four@6/6/1 txn=true']);
  // prevKv, ignoreValue and a value compare read the written value back
  const r = await put(t, 'a', '', { prevKv: true });
  assert.equal(kvStr(r.prevKv), 'a=three@2/4/2');
  const w = await t.write({ put: { key: b('c'), ignoreValue: true, lease: 0 } });
  assert.ok('put' in w);
  assert.equal(kvStr((await t.store.range({ key: b('c') })).kvs[0]), 'c=four@6/8/2');
  const txn = await t.write({
    txn: { compare: [{ key: b('c'), target: 'VALUE', result: 'EQUAL', value: b('four') }], success: [{ requestPut: { key: b('d'), value: b('five') } }] },
  });
  assert.ok('txn' in txn && txn.txn.succeeded);
  // and reads of the same key return arrays no other reader holds
  const x = (await t.store.range({ key: b('c') })).kvs[0]!;
  const y = (await t.store.range({ key: b('c') })).kvs[0]!;
  assert.notEqual(x.value, y.value);
  assert.equal(s(x.value), 'four');
});

test('a value stays in memory until the record of that same put is written', async () => {
  const t = await openStore();
  await put(t, 'k', 'v1');
  const core = coreOf(t.store);
  const ki = core.index.get(toSkey(b('k')))!;
  assert.equal(ki.val, undefined);
  // a put the writer has not written yet (the txn alone, outside apply)
  const txn = core.writeTxn();
  txn.put(b('k'), b('v2'), 0);
  txn.end();
  const rev = core.currentRev;
  assert.equal(ki.val, 'v2');
  core.evictWritten(rev - 1); // an earlier revision written: v2 stays
  assert.equal(ki.val, 'v2');
  assert.equal(s(core.currentOf(b('k'))!.value), 'v2');
  core.evictWritten(rev);
  assert.equal(ki.val, undefined);
});

test('a database without synchronous reads keeps every current value in memory', async () => {
  const db = new MemoryLevel<string, string>();
  Object.defineProperty(db, 'supports', { value: { ...db.supports, getSync: false } });
  const t = await openStore({}, db);
  await put(t, 'a', 'one');
  await put(t, 'a', 'two');
  assert.equal(cachedValue(t.store, 'a'), 'two');
  assert.deepEqual(await readAll(t, ['a']), ['a=two@2/3/2 txn=true']);
  // and a reopened store loads them from the database
  await t.store.close();
  const again = await openStore({}, db);
  assert.equal(cachedValue(again.store, 'a'), 'two');
});

test('a store reopened on its database reads current values from it', async () => {
  const db = new MemoryLevel<string, string>();
  const t = await openStore({}, db);
  await put(t, 'a', 'one');
  await put(t, 'b', 'two');
  await put(t, 'a', 'three');
  await t.store.close();
  const again = await openStore({}, db);
  assert.equal(cachedValue(again.store, 'a'), undefined);
  assert.deepEqual(await readAll(again, ['a', 'b']), ['a=three@2/4/2 txn=true', 'b=two@3/3/1 txn=true']);
});

test('reads during a snapshot restore wait for it and see the restored state', async () => {
  const all = async (t: TestStore) => (await t.store.range({ key: b('k'), rangeEnd: b('l') })).kvs.map(kvStr).join(' ');
  const source = await openStore();
  for (let i = 0; i < 300; i++) await put(source, `k${i % 50}`, `new${i}`);
  const snap = await source.store.snapshot();
  const want = await all(source);
  const t = await openStore();
  for (let i = 0; i < 50; i++) await put(t, `k${i}`, `old${i}`);
  const old = await all(t);
  let restored = false;
  const restore = t.store.restore(snap).then(() => (restored = true));
  // reads issued all along the restore: each sees the old
  // state or the new one, never a missing record
  const seen = new Set<string>();
  let duringRestore = 0; // reads issued while the restore replaced the records
  while (!restored) {
    if ((t.store as unknown as { restoring?: Promise<void> }).restoring !== undefined) duringRestore++;
    seen.add(await all(t));
    await Promise.resolve(); // the restore runs on microtasks (memory-level): yield at their grain
  }
  await restore;
  assert.equal(await all(t), want);
  for (const v of seen) assert.ok(v === old || v === want, v);
  assert.ok(duringRestore > 0, 'no read came while the restore replaced the records');
});

test('a read of past versions under way when a restore starts ends on the old records', async () => {
  const source = await openStore();
  await put(source, 'other', 'state');
  const snap = await source.store.snapshot();
  const t = await openStore();
  for (let i = 0; i < 200; i++) await put(t, `k${String(i).padStart(3, '0')}`, 'v1');
  const past = t.store.currentRevision();
  for (let i = 1; i < 200; i += 2) await put(t, `k${String(i).padStart(3, '0')}`, 'v2');
  // the odd keys' versions at `past` are read from the backend, one by one
  const read = t.store.range({ key: b('k'), rangeEnd: b('l'), revision: past });
  const restore = t.store.restore(snap);
  const { kvs } = await read;
  assert.equal(kvs.length, 200);
  assert.ok(kvs.every((kv) => s(kv.value) === 'v1'));
  await restore;
  assert.deepEqual((await t.store.range({ key: b('k'), rangeEnd: b('l') })).kvs, []);
  assert.equal(kvStr((await t.store.range({ key: b('other') })).kvs[0]), kvStr((await source.store.range({ key: b('other') })).kvs[0]));
});

test('what a read returns is its own: changing it changes nothing in the store', async () => {
  const t = await openStore();
  await put(t, 'a', 'one');
  await put(t, 'a', 'two');
  const past = (await t.store.range({ key: b('a'), revision: 2 })).kvs[0]!;
  const now = (await t.store.range({ key: b('a') })).kvs[0]!;
  assert.equal(Object.getPrototypeOf(now.value), Uint8Array.prototype);
  past.value[0] = 0x58;
  past.key[0] = 0x58;
  now.value[0] = 0x58;
  now.key[0] = 0x58;
  assert.equal(kvStr((await t.store.range({ key: b('a'), revision: 2 })).kvs[0]), 'a=one@2/2/1');
  assert.equal(kvStr((await t.store.range({ key: b('a') })).kvs[0]), 'a=two@2/3/2');
});

test('an overwrite reads no previous version unless a watcher asks for prevKv', async () => {
  const t = await openStore();
  let reads = 0;
  const db = t.db as unknown as { _getSync(...args: unknown[]): unknown };
  const original = db._getSync.bind(db);
  db._getSync = (...args: unknown[]) => {
    reads++;
    return original(...args);
  };
  await put(t, 'a', 'one');
  await put(t, 'a', 'two'); // 'one' was written: its value is no longer in memory
  assert.equal(reads, 0);
  const plain = t.store.watch({ key: b('a') });
  await put(t, 'a', 'three');
  assert.equal(reads, 0, 'a watcher without prevKv needs no read');
  const w = t.store.watch({ key: b('a'), prevKv: true });
  const got: string[] = [];
  w.on('put', (e: { kv: KeyValue; prevKv?: KeyValue }) => got.push(`${s(e.kv.value)} after ${e.prevKv === undefined ? '-' : s(e.prevKv.value)}`));
  await put(t, 'a', 'four');
  assert.equal(reads, 1);
  // a put asking for prevKv itself reads it once, for its answer and the event alike
  const answered = await put(t, 'a', 'four-b', { prevKv: true });
  assert.equal(s(answered.prevKv!.value), 'four');
  assert.equal(reads, 2);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(got, ['four after three', 'four-b after four']);
  await w.cancel();
  await put(t, 'a', 'five');
  assert.equal(reads, 2, 'none once that watcher is gone');
  await plain.cancel();
});

test('a watcher asking for prevKv that meets an event written without it gets that event with its previous version read from the backend', async () => {
  const { stored, source, state } = keyHistory(['v1', 'v2']);
  state.top = 2;
  const hub = new WatchableStore(source);
  const withPrev = hub.watch({ key: b('k'), prevKv: true });
  const without = hub.watch({ key: b('k') });
  assert.equal(hub.wantsPrevKv(), true);
  const seen = (w: ReturnType<typeof hub.watch>, out: string[]) => w.on('put', (e: { kv: KeyValue; prevKv?: KeyValue }) => out.push(`${s(e.kv.value)}/${e.prevKv === undefined ? '-' : s(e.prevKv.value)}`));
  const a: string[] = [];
  const c: string[] = [];
  seen(withPrev, a);
  seen(without, c);
  // revision 3 as a store writes it when no watcher asked for prevKv
  state.top = 3;
  hub.notify([{ revision: 3, events: [stored[1]!.event], withPrevKv: false }]);
  await hub.idle();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(a, ['v2/v1']);
  assert.deepEqual(c, ['v2/-']);
  assert.deepEqual(hub.sizes(), { synced: 2, unsynced: 0, victims: 0, waiting: 0 });
  await withPrev.cancel();
  assert.equal(hub.wantsPrevKv(), false);
  await without.cancel();
  hub.close();
});

test('a range of many written keys reads them in batched backend calls and gets what a store with values in memory gets', async () => {
  const noSync = new MemoryLevel<string, string>();
  Object.defineProperty(noSync, 'supports', { value: { ...noSync.supports, getSync: false } });
  const evicting = await openStore();
  const inMemory = await openStore({}, noSync);
  for (const t of [evicting, inMemory]) {
    for (let i = 0; i < 200; i++) await put(t, `k${String((i * 37) % 150).padStart(3, '0')}`, `v${i}`);
    await del(t, 'k010');
  }
  let manyCalls = 0;
  const kv = (evicting.store as unknown as { backend: { kv: { getMany(...a: unknown[]): Promise<unknown> } } }).backend.kv;
  const original = kv.getMany.bind(kv);
  kv.getMany = (...a: unknown[]) => {
    manyCalls++;
    return original(...a);
  };
  const reqs = [
    { key: b('k'), rangeEnd: b('l') },
    { key: b('k'), rangeEnd: b('l'), limit: 40 },
    { key: b('k1'), rangeEnd: b('l'), sortOrder: 'DESCEND' as const, sortTarget: 'VALUE' as const },
    { key: b('k'), rangeEnd: b('l'), revision: 150 },
  ];
  for (const req of reqs) {
    const got = await evicting.store.range(req);
    const want = await inMemory.store.range(req);
    assert.deepEqual(got.kvs.map(kvStr), want.kvs.map(kvStr), JSON.stringify(req));
    assert.equal(got.count, want.count);
    assert.equal(got.more, want.more);
  }
  assert.ok(manyCalls >= 3, `getMany was called ${manyCalls} times`);
  // a record a batched read misses (as one a compaction removed meanwhile) is read on its own
  kv.getMany = async (...a: unknown[]) => {
    const got = (await original(...a)) as unknown[];
    got[0] = undefined;
    return got;
  };
  const got = await evicting.store.range(reqs[0]!);
  assert.deepEqual(got.kvs.map(kvStr), (await inMemory.store.range(reqs[0]!)).kvs.map(kvStr));
});

test('a prevKv watcher sent to catch up while its queue is full gets the events once its consumer makes room', async () => {
  const { stored, source, state } = keyHistory(['v1', 'v2']);
  state.top = 2;
  const hub = new WatchableStore(source, { queueCapacity: 1 });
  const w = hub.watch({ key: b('k'), prevKv: true });
  hub.requestProgress(w); // the queue is full now, with nothing refused yet
  state.top = 3;
  hub.notify([{ revision: 3, events: [stored[1]!.event], withPrevKv: false }]);
  await hub.idle(); // the catch-up pass skips the full watcher
  const first = await w.next();
  assert.equal(first.done, false);
  assert.deepEqual(first.value!.events, []);
  const second = await Promise.race([w.next(), new Promise<'stalled'>((r) => setTimeout(() => r('stalled'), 500))]);
  assert.notEqual(second, 'stalled');
  const ev = (second as IteratorResult<{ events: { kv: KeyValue; prevKv?: KeyValue }[] }>).value.events[0]!;
  assert.deepEqual([s(ev.kv.value), s(ev.prevKv!.value)], ['v2', 'v1']);
  await w.cancel();
  hub.close();
});

test('a store that fails to open leaves no progress timer behind', async () => {
  const clock = new VirtualClock();
  const db = new MemoryLevel<string, string>();
  await db.open();
  await db.close(); // a closed database: opening the store fails
  const broken = db.sublevel('mvcc');
  await assert.rejects(MvccStore.open(broken as never, { timer: clock, watch: { progressIntervalMs: 1000 } }));
  assert.equal(clock.pendingTimers(), 0);
});

test('a catch-up pass reads no prevKv once a restore has begun (the key index would point at removed records)', async () => {
  let hub: WatchableStore | undefined;
  const asked: number[] = [];
  const { source } = keyHistory(['v2', 'v3', 'v4', 'v5'], (rev) => {
    asked.push(rev);
    if (asked.length === 1) hub!.beginRestore(); // the store starts replacing its records
  });
  hub = new WatchableStore(source);
  const w = hub.watch({ key: b('k'), prevKv: true, startRevision: 3 });
  const got: string[] = [];
  w.on('put', (e: { kv: KeyValue; prevKv?: KeyValue }) => got.push(`${s(e.kv.value)}/${e.prevKv === undefined ? '-' : s(e.prevKv.value)}`));
  await hub.idle();
  assert.deepEqual(asked, [2], 'no prevKv read after the restore began');
  assert.deepEqual(got, [], 'what that pass read is dropped');
  hub.onRestore();
  await hub.idle();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(got, ['v3/v2', 'v4/v3', 'v5/v4']);
  await w.cancel();
  hub.close();
});

test('a notification waiting for prevKv reads holds back later ones: every revision once, in order; closed meanwhile, it says what was sent', async () => {
  for (const closeEarly of [false, true]) {
    const { stored, source, state } = keyHistory(['v1', 'v2', 'v3', 'v4']);
    const gate: (() => void)[] = [];
    const kvAt = source.kvAt;
    let calls = 0;
    source.kvAt = async (key, rev) => {
      // the first read (of the notification's prevKv) waits for the test
      if (calls++ === 0) await new Promise<void>((r) => gate.push(r));
      return kvAt(key, rev);
    };
    state.top = 2;
    const hub = new WatchableStore(source);
    const w = hub.watch({ key: b('k'), prevKv: true });
    state.top = 3;
    hub.notify([{ revision: 3, events: [stored[1]!.event], withPrevKv: false }]); // v1 needs a read that waits
    state.top = 5;
    hub.notify([
      { revision: 4, events: [{ ...stored[2]!.event, prevKv: stored[1]!.event.kv }], withPrevKv: true },
      { revision: 5, events: [{ ...stored[3]!.event, prevKv: stored[2]!.event.kv }], withPrevKv: true },
    ]);
    assert.deepEqual(hub.sizes(), { synced: 0, unsynced: 0, victims: 1, waiting: 0 });
    assert.equal(w.queued, 0, 'nothing goes out before the read');
    if (closeEarly) {
      hub.close();
      const last = (await w.next()).value!;
      assert.equal(last.canceled, true);
      assert.equal(last.header.revision, 2, 'the watch was sent events up to revision 2 only');
      gate.shift()!();
      await hub.idle();
      assert.equal((await w.next()).done, true);
      continue;
    }
    gate.shift()!();
    await hub.idle();
    const got: string[] = [];
    while (w.queued > 0) for (const e of (await w.next()).value!.events) got.push(`${e.kv.modRevision}:${s(e.kv.value)}/${e.prevKv === undefined ? '-' : s(e.prevKv.value)}`);
    assert.deepEqual(got, ['3:v2/v1', '4:v3/v2', '5:v4/v3']);
    assert.deepEqual(hub.sizes(), { synced: 1, unsynced: 0, victims: 0, waiting: 0 });
    await w.cancel();
    hub.close();
  }
});

test('notifications that come while a prevKv read waits are kept behind it: a compaction past them does not cancel the watch', async () => {
  // etcd reads prevKv when it sends an event and its watcher stays synced,
  // so later revisions reach it as they are applied. They were left to be
  // read from history once the read was done: a compaction past them
  // (here at 6, revision 4 of k and two revisions of another key) had
  // removed them, and the watch was cancelled.
  const { stored, source, state } = keyHistory(['v1', 'v2', 'v3', 'v4']);
  const gate: (() => void)[] = [];
  const kvAt = source.kvAt;
  let calls = 0;
  source.kvAt = async (key, rev) => {
    if (calls++ === 0) await new Promise<void>((r) => gate.push(r));
    return kvAt(key, rev);
  };
  let compacted = -1;
  source.compactRevision = () => compacted;
  state.top = 2;
  const hub = new WatchableStore(source);
  const w = hub.watch({ key: b('k'), prevKv: true });
  const other = (rev: number) => ({ type: 'PUT' as const, kv: { key: b('z'), value: b('z'), createRevision: 5, modRevision: rev, version: rev - 4, lease: 0 } });
  state.top = 3;
  hub.notify([{ revision: 3, events: [stored[1]!.event], withPrevKv: false }]); // v1 needs a read that waits
  state.top = 4;
  hub.notify([{ revision: 4, events: [{ ...stored[2]!.event, prevKv: stored[1]!.event.kv }], withPrevKv: true }]);
  state.top = 6;
  hub.notify([
    { revision: 5, events: [other(5)], withPrevKv: true },
    { revision: 6, events: [other(6)], withPrevKv: true },
  ]);
  compacted = 6;
  assert.equal(w.queued, 0, 'nothing goes out before the read');
  gate.shift()!();
  await hub.idle();
  const got: string[] = [];
  while (w.queued > 0) {
    const r: WatchResponse = (await w.next()).value!;
    if (r.canceled) got.push(`cancelled, compactRevision ${r.compactRevision}`);
    else got.push(`@${r.header.revision} ${r.events.map((e) => `${e.kv.modRevision}:${s(e.kv.value)}/${e.prevKv === undefined ? '-' : s(e.prevKv.value)}`).join(' ')}`);
  }
  assert.deepEqual(got, ['@3 3:v2/v1', '@4 4:v3/v2']);
  assert.deepEqual(hub.sizes(), { synced: 1, unsynced: 0, victims: 0, waiting: 0 });
  state.top = 7;
  hub.notify([{ revision: 7, events: [{ ...stored[3]!.event, kv: { ...stored[3]!.event.kv, modRevision: 7 }, prevKv: stored[2]!.event.kv }], withPrevKv: true }]);
  assert.equal((await w.next()).value!.header.revision, 7);
  await w.cancel();
  hub.close();
});

test('while a prevKv read waits, a watcher keeps later notifications as far as its queue has room, then catches up from history: every revision once, in order', async () => {
  const { stored, source, state } = keyHistory(['v1', 'v2', 'v3', 'v4', 'v5']);
  const gate: (() => void)[] = [];
  const kvAt = source.kvAt;
  let calls = 0;
  source.kvAt = async (key, rev) => {
    if (calls++ === 0) await new Promise<void>((r) => gate.push(r));
    return kvAt(key, rev);
  };
  state.top = 2;
  const hub = new WatchableStore(source, { queueCapacity: 2 });
  const w = hub.watch({ key: b('k'), prevKv: true });
  hub.requestProgress(w); // one response queued: room for one more
  state.top = 3;
  hub.notify([{ revision: 3, events: [stored[1]!.event], withPrevKv: false }]); // v1 needs a read that waits
  for (const rev of [4, 5, 6]) {
    state.top = rev;
    hub.notify([{ revision: rev, events: [{ ...stored[rev - 2]!.event, prevKv: stored[rev - 3]!.event.kv }], withPrevKv: true }]);
  }
  gate.shift()!();
  await hub.idle();
  const got: string[] = [];
  for (;;) {
    const r = await Promise.race([w.next(), new Promise<undefined>((res) => setTimeout(() => res(undefined), 50))]);
    if (r === undefined || r.done) break;
    got.push(`@${r.value.header.revision} ${r.value.events.map((e) => `${e.kv.modRevision}:${s(e.kv.value)}/${e.prevKv === undefined ? '-' : s(e.prevKv.value)}`).join(' ')}`);
  }
  // 3 and 4 were kept (with the progress response, its queue's capacity plus one); 5 and 6 came from history
  assert.deepEqual(got, ['@2 ', '@3 3:v2/v1', '@4 4:v3/v2', '@6 5:v4/v3 6:v5/v4']);
  assert.deepEqual(hub.sizes(), { synced: 1, unsynced: 0, victims: 0, waiting: 0 });
  await w.cancel();
  hub.close();
});

test('a prevKv read that fails is reported, and the watcher catches up from history instead of waiting for good', async () => {
  // A catch-up pass that fails leaves its watchers to catch up on the next
  // one. A failed read of a notification's prevKv left that watcher aside
  // for good: no response, and no later notification, ever reached it.
  const { stored, source, state } = keyHistory(['v1', 'v2', 'v3']);
  const kvAt = source.kvAt;
  let calls = 0;
  source.kvAt = async (key, rev) => {
    if (calls++ === 0) throw new Error('read failed');
    return kvAt(key, rev);
  };
  state.top = 2;
  const errors: unknown[] = [];
  const hub = new WatchableStore(source, { onError: (err) => errors.push(err) });
  const w = hub.watch({ key: b('k'), prevKv: true });
  state.top = 3;
  hub.notify([{ revision: 3, events: [stored[1]!.event], withPrevKv: false }]);
  await hub.idle();
  assert.equal(errors.length, 1);
  state.top = 4;
  hub.notify([{ revision: 4, events: [{ ...stored[2]!.event, prevKv: stored[1]!.event.kv }], withPrevKv: true }]);
  await hub.idle();
  const got: string[] = [];
  while (w.queued > 0) for (const e of (await w.next()).value!.events) got.push(`${e.kv.modRevision}:${s(e.kv.value)}/${e.prevKv === undefined ? '-' : s(e.prevKv.value)}`);
  assert.deepEqual(got, ['3:v2/v1', '4:v3/v2']);
  assert.deepEqual(hub.sizes(), { synced: 1, unsynced: 0, victims: 0, waiting: 0 });
  await w.cancel();
  hub.close();
});

test('a restore while a prevKv read waits keeps the notifications already made: the watch is not cancelled for revisions it was notified of', async () => {
  // etcd's watcher stays synced while it reads prevKvs, so a restore moves
  // it back to catch up from after the last revision notified. The
  // notifications kept for the read were dropped and read again from the
  // restored history, from their first revision, which the snapshot had
  // compacted (at 4, revision 3 being the first kept): the watch was
  // cancelled.
  const { stored, source, state } = keyHistory(['v1', 'v2', 'v3', 'v4']);
  const gate: (() => void)[] = [];
  let compacted = -1;
  source.compactRevision = () => compacted;
  source.kvAt = async (_key, rev) => {
    if (gate.length === 0 && rev === 2 && compacted === -1) await new Promise<void>((r) => gate.push(r));
    return rev < compacted ? undefined : stored.filter((e) => e.revision <= rev).pop()?.event.kv;
  };
  const reads: [number, number][] = [];
  const readEvents = source.readEvents;
  source.readEvents = async (from, to) => {
    reads.push([from, to]);
    return (await readEvents(from, to)).filter((e) => e.revision >= compacted);
  };
  state.top = 2;
  const hub = new WatchableStore(source);
  const w = hub.watch({ key: b('k'), prevKv: true });
  state.top = 3;
  hub.notify([{ revision: 3, events: [stored[1]!.event], withPrevKv: false }]); // v1 needs a read that waits
  await new Promise((r) => setImmediate(r));
  assert.equal(gate.length, 1, 'the read of v1 waits');
  // a snapshot up to revision 5, compacted at 4, replaces the history
  hub.beginRestore();
  state.top = 5;
  compacted = 4;
  hub.onRestore();
  gate.shift()!();
  await hub.idle();
  const got: string[] = [];
  while (w.queued > 0) {
    const r: WatchResponse = (await w.next()).value!;
    if (r.canceled) got.push(`cancelled, compactRevision ${r.compactRevision}`);
    else got.push(`@${r.header.revision} ${r.events.map((e) => `${e.kv.modRevision}:${s(e.kv.value)}/${e.prevKv === undefined ? '-' : s(e.prevKv.value)}`).join(' ')}`);
  }
  // v1 is gone with the compaction: revision 3 goes without it, as etcd sends it
  assert.deepEqual(got, ['@3 3:v2/-', '@5 4:v3/- 5:v4/v3']);
  assert.deepEqual(reads, [[4, 5]], 'history is read from the revision after the last one notified');
  await w.cancel();
  hub.close();
});
