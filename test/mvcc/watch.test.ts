// Watch (etcd's watch API guarantees): ordered, unique, atomic per revision,
// resumable from history; prevKv; filters; compaction cancellation; empty
// ranges; progress notifications only to caught-up watchers; slow consumers
// never block apply and catch up from the backend.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLevel } from 'memory-level';
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import { VirtualClock } from '../../src/node/clock.js';
import type { Event, WatchCreateRequest, WatchResponse } from '../../src/mvccpb/index.js';
import { prefixEnd, RANGE_END_ALL } from '../../src/mvccpb/index.js';
import type { Watcher } from '../../src/mvcc/index.js';
import { b, del, kvStr, nextResp, openStore, put, s, type TestStore } from './helpers.js';

/** `TYPE key@mod` plus `<prev` when the event has a prevKv. */
function evStr(e: Event): string {
  return `${e.type} ${s(e.kv.key)}@${e.kv.modRevision}${e.prevKv ? ` <${kvStr(e.prevKv)}` : ''}`;
}

/** Reads responses until `n` events have come; returns them (and the responses). */
async function events(w: Watcher, n: number): Promise<{ evs: string[]; resps: WatchResponse[] }> {
  const evs: string[] = [];
  const resps: WatchResponse[] = [];
  while (evs.length < n) {
    const r = await nextResp(w);
    resps.push(r);
    evs.push(...r.events.map(evStr));
  }
  return { evs, resps };
}

async function noResponse(w: Watcher, ms = 50): Promise<void> {
  const r = await Promise.race([w.next().then((x) => x), new Promise((res) => setTimeout(() => res('none'), ms))]);
  assert.equal(r, 'none', `unexpected response ${JSON.stringify(r)}`);
}

test('a watch from now gets later events of its key only, DELETE events carrying key and revision only', async () => {
  const t = await openStore();
  await put(t, 'a', 'old');
  const w = t.store.watch({ key: b('a') });
  await put(t, 'b', '1');
  await put(t, 'a', '1');
  await del(t, 'a');
  const { evs, resps } = await events(w, 2);
  assert.deepEqual(evs, ['PUT a@4', 'DELETE a@5']);
  const del5 = resps.flatMap((r) => r.events)[1]!;
  assert.deepEqual(
    { ...del5.kv, key: s(del5.kv.key), value: s(del5.kv.value) },
    { key: 'a', createRevision: 0, modRevision: 5, version: 0, value: '', lease: 0 },
  );
  assert.equal(del5.prevKv, undefined, 'no prevKv unless asked');
  await w.cancel();
});

test('key, range, prefix and from-key watches match the right keys', async () => {
  const t = await openStore();
  const ws = {
    key: t.store.watch({ key: b('ab') }),
    range: t.store.watch({ key: b('ab'), rangeEnd: b('b') }),
    prefix: t.store.watch({ key: b('a'), rangeEnd: prefixEnd('a') }),
    fromKey: t.store.watch({ key: b('b'), rangeEnd: RANGE_END_ALL }),
    all: t.store.watch({ key: RANGE_END_ALL, rangeEnd: RANGE_END_ALL }),
  };
  for (const k of ['a', 'ab', 'abc', 'b', 'c']) await put(t, k, '1'); // 2..6
  await t.store.watchIdle();
  const want = {
    key: ['PUT ab@3'],
    range: ['PUT ab@3', 'PUT abc@4'],
    prefix: ['PUT a@2', 'PUT ab@3', 'PUT abc@4'],
    fromKey: ['PUT b@5', 'PUT c@6'],
    all: ['PUT a@2', 'PUT ab@3', 'PUT abc@4', 'PUT b@5', 'PUT c@6'],
  };
  for (const [name, w] of Object.entries(ws)) {
    assert.deepEqual((await events(w, want[name as keyof typeof want].length)).evs, want[name as keyof typeof want], name);
    await noResponse(w);
    await w.cancel();
  }
});

test('a watch from a past revision replays history, then goes on live, each event once and in order', async () => {
  const t = await openStore({ watch: { maxRevisionsPerSync: 3 } });
  for (let i = 0; i < 10; i++) await put(t, `k${i % 3}`, String(i)); // 2..11
  const w = t.store.watch({ key: b('k'), rangeEnd: b('l'), startRevision: 4 });
  // writes keep coming while the watcher catches up
  const writes = (async () => {
    for (let i = 10; i < 20; i++) await put(t, `k${i % 3}`, String(i)); // 12..21
  })();
  const { evs, resps } = await events(w, 18);
  await writes;
  const want = Array.from({ length: 18 }, (_, i) => `PUT k${(i + 2) % 3}@${i + 4}`);
  assert.deepEqual(evs, want);
  for (const r of resps) {
    const revs = r.events.map((e) => e.kv.modRevision);
    assert.ok(r.header.revision >= Math.max(...revs), 'the header covers the events of the response');
  }
  await noResponse(w);
  assert.deepEqual(t.store.watcherGroups(), { synced: 1, unsynced: 0, victims: 0, waiting: 0 });
  await w.cancel();
});

test('a txn revision arrives whole in one response, in operation order', async () => {
  const t = await openStore({ watch: { maxRevisionsPerSync: 1 } });
  await t.write({
    txn: { success: ['c', 'a', 'b'].map((k) => ({ requestPut: { key: b(k), value: b('1') } })) },
  }); // 2
  await put(t, 'd', '1'); // 3
  const w = t.store.watch({ key: RANGE_END_ALL, rangeEnd: RANGE_END_ALL, startRevision: 1 });
  const first = await nextResp(w);
  assert.deepEqual(first.events.map(evStr), ['PUT c@2', 'PUT a@2', 'PUT b@2']);
  assert.deepEqual((await nextResp(w)).events.map(evStr), ['PUT d@3']);
  await w.cancel();
});

test('prevKv: absent for a creation, present for updates and deletes, live and from history', async () => {
  const t = await openStore();
  const live = t.store.watch({ key: b('k'), prevKv: true });
  await put(t, 'k', '1'); // 2
  await put(t, 'k', '2'); // 3
  await del(t, 'k'); // 4
  const want = ['PUT k@2', 'PUT k@3 <k=1@2/2/1', 'DELETE k@4 <k=2@2/3/2'];
  assert.deepEqual((await events(live, 3)).evs, want);
  const hist = t.store.watch({ key: b('k'), prevKv: true, startRevision: 1 });
  assert.deepEqual((await events(hist, 3)).evs, want);
  await live.cancel();
  await hist.cancel();
});

test('prevKv: a key put and deleted in one txn has none, and the watcher stays live; a compaction at that revision right after takes nothing from it', async () => {
  const t = await openStore();
  await put(t, 'a', '1'); // 2
  const w = t.store.watch({ key: RANGE_END_ALL, rangeEnd: RANGE_END_ALL, prevKv: true });
  // revision 3 creates and deletes n, and deletes a; compacted at 3 in the same batch
  const i = t.takeIndex();
  await t.store.applyBatch([
    {
      index: i,
      request: {
        txn: {
          // two nested txns may write the same key (as on etcd)
          success: [
            { requestTxn: { success: [{ requestPut: { key: b('n'), value: b('x') } }] } },
            { requestTxn: { success: [{ requestDeleteRange: { key: b('n') } }] } },
            { requestDeleteRange: { key: b('a') } },
          ],
        },
      },
    },
    { index: i + 1, request: { compaction: { revision: 3 } } },
  ]);
  assert.deepEqual((await events(w, 3)).evs, ['PUT n@3', 'DELETE n@3', 'DELETE a@3 <a=1@2/2/1']);
  assert.equal(t.store.watcherGroups().synced, 1, 'the watcher stayed synced');
  await w.cancel();
});

test('filters drop puts or deletes; a response with everything filtered is not sent', async () => {
  const t = await openStore();
  const noPut = t.store.watch({ key: b('k'), filters: ['NOPUT'] });
  const noDel = t.store.watch({ key: b('k'), filters: ['NODELETE'] });
  await put(t, 'k', '1'); // 2
  await del(t, 'k'); // 3
  assert.deepEqual((await events(noPut, 1)).evs, ['DELETE k@3']);
  assert.deepEqual((await events(noDel, 1)).evs, ['PUT k@2']);
  await noResponse(noPut);
  await noResponse(noDel);
  const histNoPut = t.store.watch({ key: b('k'), filters: ['NOPUT'], startRevision: 2 });
  assert.deepEqual((await events(histNoPut, 1)).evs, ['DELETE k@3']);
  for (const w of [noPut, noDel, histNoPut]) await w.cancel();
});

test('a watch starting below the compaction revision is created, then cancelled with it', async () => {
  const t = await openStore();
  for (let i = 0; i < 5; i++) await put(t, 'k', String(i)); // 2..6
  await t.write({ compaction: { revision: 4 } });
  const w = t.store.watch({ key: b('k'), startRevision: 3 });
  const r = await nextResp(w);
  assert.deepEqual([r.canceled, r.compactRevision, r.events.length], [true, 4, 0]);
  assert.equal((await w.next()).done, true);
});

test('a negative start revision is below the compaction revision once there is one: created, then cancelled with it, as in etcd', async () => {
  // etcd 3.4.23: after a compaction at c, a watch from -1 (or -9) is created
  // and cancelled with compactRevision c; before any compaction, one from
  // -1 gets the next revisions, as one from 0
  const t = await openStore();
  for (let i = 0; i < 5; i++) await put(t, 'k', String(i)); // 2..6
  const early = t.store.watch({ key: b('k'), startRevision: -1 });
  await put(t, 'k', 'x'); // 7
  assert.deepEqual((await events(early, 1)).evs, ['PUT k@7']);
  await early.cancel();
  await t.write({ compaction: { revision: 4 } });
  for (const start of [-1, -9]) {
    const w = t.store.watch({ key: b('k'), startRevision: start });
    const r = await nextResp(w);
    assert.deepEqual([r.canceled, r.compactRevision, r.events.length], [true, 4, 0], `start ${start}`);
    assert.equal((await w.next()).done, true, `start ${start}`);
  }
});

test('a watch at exactly the compaction revision gets its deletes, without their prevKvs (etcd #18089)', async () => {
  const t = await openStore();
  await put(t, 'a', '1'); // 2
  await put(t, 'b', '1'); // 3
  await t.write({
    txn: { success: [{ requestDeleteRange: { key: b('a') } }, { requestPut: { key: b('b'), value: b('2') } }, { requestPut: { key: b('c'), value: b('1') } }] },
  }); // 4
  await put(t, 'c', '2'); // 5
  await t.write({ compaction: { revision: 4 } });
  const w = t.store.watch({ key: RANGE_END_ALL, rangeEnd: RANGE_END_ALL, startRevision: 4, prevKv: true });
  assert.deepEqual((await events(w, 4)).evs, ['DELETE a@4', 'PUT b@4', 'PUT c@4', 'PUT c@5 <c=1@4/4/1']);
  await w.cancel();
});

test("a lagging watch whose next revision becomes the compaction revision gets that revision's deletes, uncancelled (etcd #18089)", async () => {
  const t = await openStore({ watch: { queueCapacity: 1, maxRevisionsPerSync: 1 } });
  await put(t, 'k', '1'); // 2
  await put(t, 'k', '2'); // 3
  await del(t, 'k'); // 4
  await put(t, 'k', '3'); // 5
  const w = t.store.watch({ key: b('k'), startRevision: 2 });
  await t.store.watchIdle(); // revision 2 queued, and the queue is full
  const first = await events(w, 1);
  await t.store.watchIdle(); // revision 3 queued: the watch's next revision is 4
  await t.write({ compaction: { revision: 4 } }); // not below its position: not cancelled
  await t.store.compactionIdle();
  const rest = await events(w, 3);
  assert.deepEqual([...first.evs, ...rest.evs], ['PUT k@2', 'PUT k@3', 'DELETE k@4', 'PUT k@5']);
  assert.equal(rest.resps.some((r) => r.canceled), false);
  await w.cancel();
});

test("the compaction revision's tombstones stay until the next compaction, across a reopen", async () => {
  const t = await openStore();
  await put(t, 'a', '1'); // 2
  await put(t, 'b', '1'); // 3
  await del(t, 'a'); // 4
  await t.write({ compaction: { revision: 4 } });
  await t.store.compactionIdle();
  const hash = await t.store.hash();
  await t.store.close();
  const again = await openStore({}, t.db);
  assert.equal((await again.store.hash()).hash, hash.hash);
  assert.equal((await again.store.range({ key: RANGE_END_ALL, rangeEnd: RANGE_END_ALL, countOnly: true })).count, 1);
  const w = again.store.watch({ key: RANGE_END_ALL, rangeEnd: RANGE_END_ALL, startRevision: 4 });
  assert.deepEqual((await events(w, 1)).evs, ['DELETE a@4']);
  await put(again, 'c', '1'); // 5
  await again.write({ compaction: { revision: 5 } });
  await again.store.compactionIdle();
  const late = again.store.watch({ key: RANGE_END_ALL, rangeEnd: RANGE_END_ALL, startRevision: 4 });
  const r = await nextResp(late);
  assert.equal(r.canceled, true);
  assert.equal(r.compactRevision, 5);
  assert.deepEqual((await events(w, 1)).evs, ['PUT c@5']);
  await w.cancel();
});

test('a caught-up watch is not affected by a later compaction', async () => {
  const t = await openStore();
  const w = t.store.watch({ key: b('k'), startRevision: 1 });
  await put(t, 'k', '1'); // 2
  assert.deepEqual((await events(w, 1)).evs, ['PUT k@2']);
  await t.store.watchIdle();
  await put(t, 'k', '2'); // 3
  await t.write({ compaction: { revision: 3 } });
  await put(t, 'k', '3'); // 4
  assert.deepEqual((await events(w, 2)).evs, ['PUT k@3', 'PUT k@4']);
  await w.cancel();
});

test('an empty range is created and cancelled at once; a future start waits for its revision', async () => {
  const t = await openStore();
  const empty = t.store.watch({ key: b('b'), rangeEnd: b('a') });
  const r = await nextResp(empty);
  assert.equal(r.canceled, true);
  assert.match(r.cancelReason, /empty/);
  assert.equal((await empty.next()).done, true);
  const future = t.store.watch({ key: b('k'), startRevision: 4 });
  await put(t, 'k', '1'); // 2
  await put(t, 'k', '2'); // 3
  await put(t, 'k', '3'); // 4
  assert.deepEqual((await events(future, 1)).evs, ['PUT k@4']);
  await future.cancel();
});

test('progress notifications go only to caught-up watchers, after their events', async () => {
  const t = await openStore({ watch: { queueCapacity: 2 } });
  await put(t, 'x', '0'); // 2
  const synced = t.store.watch({ key: b('k') });
  const behind = t.store.watch({ key: b('x'), startRevision: 1 });
  // fill `behind` and let it fall behind
  for (let i = 0; i < 5; i++) await put(t, 'x', String(i + 1)); // 3..7
  await put(t, 'k', '1'); // 8
  await t.store.watchIdle();
  t.store.requestProgress();
  const e = await nextResp(synced);
  assert.deepEqual(e.events.map(evStr), ['PUT k@8']);
  const p = await nextResp(synced);
  assert.deepEqual([p.events.length, p.canceled, p.header.revision], [0, false, 8]);
  const seen: WatchResponse[] = [];
  while (seen.flatMap((r) => r.events).length < 6) seen.push(await nextResp(behind));
  assert.ok(seen.every((r) => r.events.length > 0), 'no progress notification while catching up');
  await synced.cancel();
  await behind.cancel();
});

test('a progress notification asked for while a watcher catches up, or while its queue is full, comes once it has caught up and has room, after its events', async () => {
  const t = await openStore({ watch: { queueCapacity: 2 } });
  await put(t, 'x', '0'); // 2
  const full = t.store.watch({ key: b('k') });
  const behind = t.store.watch({ key: b('x'), startRevision: 1 });
  await put(t, 'k', '1'); // 3
  await put(t, 'k', '2'); // 4: `full` has no room left
  for (let i = 0; i < 4; i++) await put(t, 'x', String(i + 1)); // 5..8: `behind` falls behind
  t.store.requestProgress();
  t.store.requestProgress(); // asked twice meanwhile: one notification
  await put(t, 'y', '1'); // 9
  await t.store.watchIdle();
  const got: string[] = [];
  for (;;) {
    const r = await nextResp(full);
    got.push(r.events.length > 0 ? r.events.map(evStr).join(' ') : `progress@${r.header.revision}`);
    if (r.events.length === 0) break;
  }
  assert.deepEqual(got, ['PUT k@3', 'PUT k@4', 'progress@9']);
  const seen: string[] = [];
  for (;;) {
    const r = await nextResp(behind);
    seen.push(...(r.events.length > 0 ? r.events.map(evStr) : [`progress@${r.header.revision}`]));
    if (r.events.length === 0) break;
  }
  assert.deepEqual(seen, ['PUT x@2', 'PUT x@5', 'PUT x@6', 'PUT x@7', 'PUT x@8', 'progress@9']);
  await noResponse(full);
  await full.cancel();
  await noResponse(behind);
  await behind.cancel();
  await t.store.close();
});

test('periodic progress notifications reach idle watchers that asked for them', async () => {
  const t = await openStore({ watch: { progressIntervalMs: 20 } });
  const asked = t.store.watch({ key: b('k'), progressNotify: true });
  const notAsked = t.store.watch({ key: b('k') });
  const p = await nextResp(asked, 1000);
  assert.deepEqual([p.events.length, p.header.revision], [0, 1]);
  await noResponse(notAsked, 60);
  await asked.cancel();
  await notAsked.cancel();
});

test('progress notifications run on the store timer: virtual time decides when they come, and close stops them', async () => {
  const clock = new VirtualClock();
  const t = await openStore({ timer: clock, watch: { progressIntervalMs: 1000 } });
  const asked = t.store.watch({ key: b('k'), progressNotify: true });
  const got: number[] = [];
  asked.on('progress', (r: WatchResponse) => got.push(r.header.revision));
  const settle = () => new Promise((r) => setTimeout(r, 20));
  await settle(); // real time passing changes nothing
  clock.advance(999);
  await settle();
  assert.deepEqual(got, []);
  clock.advance(1);
  await settle();
  assert.deepEqual(got, [1]);
  clock.advance(1000);
  await settle();
  assert.deepEqual(got, [1, 1]);
  await asked.cancel();
  await t.store.close();
  assert.equal(clock.pendingTimers(), 0, 'no timer left behind');
});

test('a progress interval longer than a timer can wait (2^31 ms and more) is waited whole, not replaced by 1 ms', async () => {
  // Node's setTimeout fires after 1 ms for a delay above 2^31 - 1 ms: an
  // interval of 25 days sent a progress notification every millisecond
  const day = 24 * 3600 * 1000;
  const real = await openStore({ watch: { progressIntervalMs: 25 * day } });
  const idle = real.store.watch({ key: b('k'), progressNotify: true });
  await noResponse(idle, 50);
  await idle.cancel();
  await real.store.close();
  const clock = new VirtualClock();
  const t = await openStore({ timer: clock, watch: { progressIntervalMs: 25 * day } });
  const asked = t.store.watch({ key: b('k'), progressNotify: true });
  const got: number[] = [];
  asked.on('progress', (r: WatchResponse) => got.push(r.header.revision));
  const settle = () => new Promise((r) => setTimeout(r, 20));
  clock.advance(25 * day - 1);
  await settle();
  assert.deepEqual(got, [], 'nothing before the interval');
  clock.advance(1);
  await settle();
  assert.deepEqual(got, [1], 'one at the interval');
  clock.advance(25 * day - 1);
  await settle();
  assert.deepEqual(got, [1]);
  clock.advance(1);
  await settle();
  assert.deepEqual(got, [1, 1]);
  await asked.cancel();
  await t.store.close();
  assert.equal(clock.pendingTimers(), 0, 'no timer left behind');
});

test('bad watch options (counts that are not positive integers, a timer without its methods) are refused with QUORUMKV_INVALID_CONFIG when the store opens', async () => {
  // maxRevisionsPerSync NaN opened a store whose catch-up passes read
  // nothing and began again, forever: a watch from history got nothing and
  // the process spun; queueCapacity NaN left every queue unbounded
  // a timer without its methods threw a raw TypeError
  for (const watch of [{ maxRevisionsPerSync: Number.NaN }, { maxRevisionsPerSync: 2.5 }, { queueCapacity: Number.NaN }, { queueCapacity: 0 }, { progressIntervalMs: Number.NaN }, { timer: {} as never }, { timer: null as never }]) {
    await assert.rejects(openStore({ watch }), { code: 'QUORUMKV_INVALID_CONFIG' }, JSON.stringify(watch, (_k, v: unknown) => (Number.isNaN(v) ? 'NaN' : v)));
  }
});

test('a slow consumer never blocks apply; it catches up from the backend, each event once', async () => {
  const t = await openStore({ watch: { queueCapacity: 2, maxRevisionsPerSync: 7 } });
  const slow = t.store.watch({ key: b('k'), rangeEnd: b('l'), prevKv: true });
  const N = 300;
  for (let i = 0; i < N; i += 10) {
    // 10 entries per batch, nobody reading
    await t.store.applyBatch(
      Array.from({ length: 10 }, (_, j) => ({ index: t.takeIndex(), request: { put: { key: b(`k${(i + j) % 7}`), value: b(String(i + j)) } } })),
    );
  }
  assert.equal(t.store.currentRevision(), N + 1, 'every apply finished without a reader');
  const groups = t.store.watcherGroups();
  assert.equal(groups.synced, 0, 'the slow watcher left the synced group');
  const { evs } = await events(slow, N);
  const want = Array.from({ length: N }, (_, i) => `PUT k${i % 7}@${i + 2}${i >= 7 ? ` <k${i % 7}=${i - 7}@${(i % 7) + 2}/${i - 5}/${Math.floor(i / 7)}` : ''}`);
  assert.deepEqual(evs, want);
  await t.store.watchIdle();
  assert.deepEqual(t.store.watcherGroups(), { synced: 1, unsynced: 0, victims: 0, waiting: 0 }, 'caught up: synced again');
  await put(t, 'k0', 'live');
  assert.deepEqual((await events(slow, 1)).evs.map((x) => x.split(' <')[0]), [`PUT k0@${N + 2}`]);
  await slow.cancel();
});

test('a slow consumer whose missing revisions get compacted is cancelled with the compaction revision', async () => {
  const t = await openStore({ watch: { queueCapacity: 1 } });
  const slow = t.store.watch({ key: b('k') });
  for (let i = 0; i < 10; i++) await put(t, 'k', String(i)); // 2..11
  await t.write({ compaction: { revision: 9 } });
  const got: WatchResponse[] = [];
  for (;;) {
    const r = await nextResp(slow);
    got.push(r);
    if (r.canceled) break;
  }
  const last = got[got.length - 1]!;
  assert.equal(last.compactRevision, 9);
  const revs = got.flatMap((r) => r.events.map((e) => e.kv.modRevision));
  assert.deepEqual(revs, revs.slice().sort((a, b2) => a - b2), 'what it got before is in order');
  assert.ok(revs.length < 10);
});

test('cancel ends the iterator and the emitter face; the emitter sees put and delete events', async () => {
  const t = await openStore();
  const w = t.store.watch({ key: b('k') });
  const seen: string[] = [];
  const ended = new Promise<void>((res) => w.on('end', () => res()));
  w.on('put', (e) => seen.push(evStr(e)));
  w.on('delete', (e) => seen.push(evStr(e)));
  await put(t, 'k', '1');
  await del(t, 'k');
  while (seen.length < 2) await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(seen, ['PUT k@2', 'DELETE k@3']);
  await w.cancel();
  await ended;
  assert.equal(w.done, true);
  await put(t, 'k', '2');
  assert.deepEqual(t.store.watcherGroups(), { synced: 0, unsynced: 0, victims: 0, waiting: 0 });
});

test("the emitter face says end after its listeners got every response, the last one the store's cancellation", async () => {
  const t = await openStore();
  const w = t.store.watch({ key: b('k') });
  await put(t, 'k', '1');
  await put(t, 'k', '2');
  t.store.endWatches('the member stops');
  // the listeners come once every response is queued: the emitter reads them from the queue
  const order: string[] = [];
  const ended = new Promise<void>((res) =>
    w.on('end', () => {
      order.push('end');
      res();
    }),
  );
  w.on('response', (r) => order.push(r.canceled ? `canceled: ${r.cancelReason}` : `events at ${r.header.revision}`));
  w.on('canceled', () => order.push('canceled event'));
  await ended;
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, ['events at 2', 'events at 3', 'canceled: the member stops', 'canceled event', 'end']);
});

test('a watch request that is not an object, with filters that are not an array or flags that are not booleans, is refused with QUORUMKV_INVALID_ARGUMENT', async () => {
  const t = await openStore();
  // these threw a raw TypeError
  // prevKv 'false' gave every event its prevKv
  for (const req of [null, undefined, 'a', { key: b('a'), filters: {} }, { key: b('a'), prevKv: 'false' }, { key: b('a'), progressNotify: 1 }]) {
    assert.throws(() => t.store.watch(req as unknown as WatchCreateRequest), { name: 'UsageError', code: 'QUORUMKV_INVALID_ARGUMENT' }, String(req));
  }
  assert.deepEqual(t.store.watcherGroups(), { synced: 0, unsynced: 0, victims: 0, waiting: 0 });
  await t.store.close();
});

test("a watch keeps the options it was created with when the caller then changes its request object", async () => {
  const t = await openStore();
  await put(t, 'a', '1'); // 2
  const req: WatchCreateRequest = { key: b('a'), prevKv: true, filters: [] };
  const first = t.store.watch(req);
  // the same object, changed to create a second watch: the first one read
  // its options from it, lost its PUTs and its prevKvs, and the count of
  // prevKv watchers never went back to 0
  req.prevKv = false;
  req.filters!.push('NOPUT');
  const second = t.store.watch(req);
  await put(t, 'a', '2'); // 3
  await del(t, 'a'); // 4
  await t.store.watchIdle();
  const evs = async (w: Watcher) => {
    const out: string[] = [];
    while (w.queued > 0) {
      const r = await w.next();
      for (const e of r.value!.events) out.push(`${e.type} ${s(e.kv.key)}@${e.kv.modRevision} prev ${kvStr(e.prevKv)}`);
    }
    return out;
  };
  assert.deepEqual(await evs(first), ['PUT a@3 prev a=1@2/2/1', 'DELETE a@4 prev a=2@2/3/2']);
  assert.deepEqual(await evs(second), ['DELETE a@4 prev -']);
  assert.equal(first.request.prevKv, true);
  assert.deepEqual(first.request.filters, []);
  await first.cancel();
  await second.cancel();
  assert.equal(t.store['hub'].wantsPrevKv(), false, 'no watcher asks for prevKv any more');
  await t.store.close();
});

test("a watch's request keeps its own key and range end: bytes the caller changes afterwards do not reach watcher.request", async () => {
  const t = await openStore();
  const key = b('a');
  const rangeEnd = b('c');
  const w = t.store.watch({ key, rangeEnd });
  key[0] = 0x78;
  rangeEnd[0] = 0x7a;
  assert.equal(s(w.request.key), 'a');
  assert.equal(s(w.request.rangeEnd!), 'c');
  await put(t, 'b', '1');
  await t.store.watchIdle();
  const r = await w.next();
  assert.deepEqual(r.value!.events.map((e: Event) => s(e.kv.key)), ['b']);
  await w.cancel();
  await t.store.close();
});

test('watch ids are unique; closing the store ends every watch', async () => {
  const t = await openStore();
  const below = t.store.watch({ key: new Uint8Array(0), rangeEnd: b('b') }); // an empty key is allowed, as in etcd
  await put(t, 'a', '0');
  assert.deepEqual((await events(below, 1)).evs, ['PUT a@2']);
  const w1 = t.store.watch({ key: b('a'), watchId: 7 });
  assert.throws(() => t.store.watch({ key: b('a'), watchId: 7 }), { code: 'QUORUMKV_INVALID_ARGUMENT' });
  const w2 = t.store.watch({ key: b('a') });
  assert.notEqual(w2.id, w1.id);
  await t.store.close();
  for (const w of [w1, w2]) {
    const last = await w.next();
    assert.equal(last.done, false);
    assert.equal(last.value?.canceled, true, 'a last response says the watch was cancelled');
    assert.equal(last.value?.cancelReason, 'mvcc: store closed');
    assert.equal((await w.next()).done, true);
  }
});

test('events are frozen: a consumer cannot change the event another watcher of the same key gets', async () => {
  const t = await openStore();
  await put(t, 'a', '1'); // 2
  const live = [t.store.watch({ key: b('a'), prevKv: true }), t.store.watch({ key: b('a'), prevKv: true })];
  await put(t, 'a', '2'); // 3
  // two watchers catching up from history read the same stored events
  const past = [t.store.watch({ key: b('a'), startRevision: 2 }), t.store.watch({ key: b('a'), startRevision: 2 })];
  await t.store.watchIdle();
  for (const [first, second] of [live, past] as [Watcher, Watcher][]) {
    const mine: readonly Event[] = (await first.next()).value!.events;
    for (const ev of mine) {
      assert.ok(Object.isFrozen(ev), 'the event is frozen');
      // the first consumer rewriting its event changed the second one's (the same object)
      assert.throws(() => {
        (ev as { type: string }).type = 'DELETE';
      }, TypeError);
      if (ev.prevKv !== undefined) assert.throws(() => delete (ev as { prevKv?: unknown }).prevKv, TypeError);
    }
    const theirs: readonly Event[] = (await second.next()).value!.events;
    assert.deepEqual(
      theirs.map((e) => `${e.type} ${s(e.kv.key)}@${e.kv.modRevision} prev ${kvStr(e.prevKv)}`),
      mine.map((e) => `${e.type} ${s(e.kv.key)}@${e.kv.modRevision} prev ${kvStr(e.prevKv)}`),
    );
    assert.equal(theirs[theirs.length - 1]!.type, 'PUT');
  }
  await t.store.close();
});

test('after endWatches, a new watch is refused as on a closed store: FaultError QUORUMKV_STORAGE_CLOSED', async () => {
  const t = await openStore();
  t.store.endWatches('the member was removed');
  // it was a UsageError with that code (bad input), where a closed store throws a FaultError
  assert.throws(() => t.store.watch({ key: b('a') }), { name: 'FaultError', code: 'QUORUMKV_STORAGE_CLOSED' });
  await t.store.close();
  assert.throws(() => t.store.watch({ key: b('a') }), { name: 'FaultError', code: 'QUORUMKV_STORAGE_CLOSED' });
});

test('after a snapshot restore, watchers catch up from the restored state', async () => {
  const src = await openStore();
  for (let i = 0; i < 5; i++) await put(src, 'k', String(i)); // 2..6
  const dst: TestStore = await openStore();
  await put(dst, 'k', 'x'); // 2
  const w = dst.store.watch({ key: b('k') }); // from 3 on
  await dst.store.restore(await src.store.snapshot());
  assert.deepEqual((await events(w, 4)).evs, ['PUT k@3', 'PUT k@4', 'PUT k@5', 'PUT k@6']);
  await w.cancel();
});

test('when the store fails, every watch ends with a cancelled response that gives the failure', async () => {
  // before, the store refused every call after a failed write but its
  // watchers stayed synced: no response, no end
  const db = new MemoryLevel<string, string>();
  const t = await openStore({}, db);
  const w = t.store.watch({ key: b('k') });
  await put(t, 'k', '1');
  assert.deepEqual((await events(w, 1)).evs, ['PUT k@2']);
  const failing = db as unknown as { _batch: () => Promise<never>; batch: () => Promise<never> };
  failing._batch = () => Promise.reject(new Error('disk gone'));
  failing.batch = () => Promise.reject(new Error('disk gone'));
  const r = await t.store.apply(t.takeIndex(), { put: { key: b('k'), value: b('2') } }).catch((e: unknown) => e);
  assert.ok(isQuorumError(r, ErrorCode.STORAGE_IO));
  const rest: string[] = [];
  for await (const res of w) {
    for (const e of res.events) rest.push(`${e.type} ${s(e.kv.key)}@${e.kv.modRevision}`);
    if (res.canceled) rest.push(`canceled: ${res.cancelReason}`);
  }
  // revision 3 was notified at apply, before its write failed (the Raft log
  // applies it again when the store is reopened)
  assert.equal(rest.length, 2);
  assert.equal(rest[0], 'PUT k@3');
  assert.match(rest[1]!, /^canceled: mvcc: store failed: .*disk gone/);
});

/** Every response until none comes for `ms` real ms or the watch ends. */
async function drain(w: Watcher, ms = 100): Promise<WatchResponse[]> {
  const out: WatchResponse[] = [];
  for (;;) {
    const r = await Promise.race([w.next(), new Promise<'idle'>((res) => setTimeout(() => res('idle'), ms))]);
    if (r === 'idle' || r.done) return out;
    out.push(r.value);
  }
}

test('a watch from now created while a batch executes misses no revision above its progress notification', async () => {
  const t = await openStore();
  const i = t.takeIndex();
  // the txn makes the apply wait (a backend read) after revision 2 is
  // executed and before the batch is notified
  const applying = t.store.applyBatch([
    { index: i, request: { put: { key: b('k'), value: b('1') } } },
    { index: i + 1, request: { txn: { success: [{ requestPut: { key: b('k'), value: b('2') } }] } } },
  ]);
  while (t.store.currentRevision() < 2) await Promise.resolve();
  const w = t.store.watch({ key: b('k') }); // start 0: from now
  t.store.requestProgress(w);
  await applying;
  await t.store.watchIdle();
  const resps = await drain(w);
  const progress = resps.find((r) => r.events.length === 0 && !r.canceled);
  assert.ok(progress !== undefined, 'a progress notification');
  const after = resps.slice(resps.indexOf(progress) + 1).flatMap((r) => r.events.map((e) => e.kv.modRevision));
  // etcd: a progress notification at R means every event up to R was sent and every later one will be
  assert.deepEqual(after, [2, 3].filter((r) => r > progress.header.revision), `progress at ${progress.header.revision}`);
  await w.cancel();
  await t.store.close();
});

test('a prevKv watch from now created while a batch executes is not cancelled by a compaction in that batch', async () => {
  // Revisions the batch executed before the watch came were written without
  // prevKv (no watcher asked for it), so the watch read them from history,
  // from its first event in the batch on: a compaction in the same batch had
  // passed that revision, and the watch, which asked for nothing older than
  // now, was cancelled as compacted.
  for (const c of [
    // the event lacking prevKv is at 3; its previous version (2) is compacted at 4: it goes without one, as etcd sends it
    { compactAt: 4, watchAt: 3, want: ['PUT k@3 prev -', 'PUT k@5 prev k=1@2/3/2'] },
    // a@3 goes at once; k@5 is read from history, its previous version k@2 kept at 4
    { compactAt: 4, watchAt: 5, creation: true, want: ['PUT a@3 prev -', 'PUT k@5 prev k=0@2/2/1', 'PUT k@7 prev k=1@2/5/2'] },
  ]) {
    const t = await openStore();
    await put(t, 'k', '0'); // 2
    const i = t.takeIndex();
    const entries = c.creation
      ? [
          { index: i, request: { put: { key: b('a'), value: b('x') } } }, // 3
          { index: i + 1, request: { put: { key: b('x'), value: b('x') } } }, // 4
          { index: i + 2, request: { put: { key: b('k'), value: b('1') } } }, // 5
          { index: i + 3, request: { txn: { success: [{ requestPut: { key: b('y'), value: b('y') } }] } } }, // 6
          { index: i + 4, request: { compaction: { revision: c.compactAt } } },
        ]
      : [
          { index: i, request: { put: { key: b('k'), value: b('1') } } }, // 3
          { index: i + 1, request: { txn: { success: [{ requestPut: { key: b('y'), value: b('y') } }] } } }, // 4
          { index: i + 2, request: { compaction: { revision: c.compactAt } } },
        ];
    const applying = t.store.applyBatch(entries);
    // the txn makes the apply wait after the puts, before the batch is notified
    while (t.store.currentRevision() < c.watchAt) await Promise.resolve();
    const w = t.store.watch({ key: b(c.creation ? 'a' : 'k'), rangeEnd: b('l'), prevKv: true }); // from now
    await applying;
    await t.store.watchIdle();
    await put(t, 'k', '2');
    await t.store.watchIdle();
    const got: string[] = [];
    for (const r of await drain(w)) {
      assert.equal(r.canceled, false, `cancelled (compactRevision ${r.compactRevision}) after ${got.join(', ')}`);
      for (const e of r.events) got.push(`${e.type} ${s(e.kv.key)}@${e.kv.modRevision} prev ${kvStr(e.prevKv)}`);
    }
    assert.deepEqual(got, c.want);
    await w.cancel();
    await t.store.close();
  }
});

test('a prevKv watch from now created while a batch executes is not cancelled by a compaction applied right after that batch', async () => {
  // Pipelined applies (acknowledged at apply, as a server makes them): the
  // compaction past revision 3 executes before the watch, which lacked the
  // prevKv of k@3, could read it from history, and the watch was cancelled
  // as compacted. The previous version is now read at once.
  const t = await openStore();
  await put(t, 'k', '0'); // 2
  const i = t.takeIndex();
  const applying = t.store.applyBatch(
    [
      { index: i, request: { put: { key: b('k'), value: b('1') } } }, // 3
      { index: i + 1, request: { txn: { success: [{ requestPut: { key: b('x'), value: b('x') } }] } } }, // 4
    ],
    { acknowledge: 'applied' },
  );
  const compacting = t.store.applyBatch([{ index: i + 2, request: { compaction: { revision: 4 } } }], { acknowledge: 'applied' });
  while (t.store.currentRevision() < 3) await Promise.resolve();
  const w = t.store.watch({ key: b('k'), prevKv: true }); // from now
  await applying;
  await compacting;
  await t.store.watchIdle();
  t.takeIndex();
  t.takeIndex();
  await put(t, 'k', '2'); // 5
  await t.store.watchIdle();
  const got: string[] = [];
  for (const r of await drain(w)) {
    assert.equal(r.canceled, false, `cancelled (compactRevision ${r.compactRevision}) after ${got.join(', ')}`);
    for (const e of r.events) got.push(`${e.type} ${s(e.kv.key)}@${e.kv.modRevision} prev ${kvStr(e.prevKv)}`);
  }
  assert.deepEqual(got, ['PUT k@3 prev k=0@2/2/1', 'PUT k@5 prev k=1@2/3/2']);
  await w.cancel();
  await t.store.close();
});

test("closing the store delivers a slow consumer's responses kept aside, and the last response's revision is what the watch was sent", async () => {
  const t = await openStore({ watch: { queueCapacity: 1 } });
  const w = t.store.watch({ key: b('k') });
  const late = t.store.watch({ key: b('k'), startRevision: 1 }); // catching up from history, never read
  for (let i = 0; i < 3; i++) await put(t, 'k', String(i)); // revisions 2 (queued), 3 (kept aside), 4 (missed)
  await t.store.close();
  for (const [watch, want] of [
    [w, [2, 3]],
    [late, [2]],
  ] as const) {
    const resps: WatchResponse[] = [];
    for await (const r of watch) resps.push(r);
    const sent = resps.flatMap((r) => r.events.map((e) => e.kv.modRevision));
    const last = resps.at(-1)!;
    assert.equal(last.canceled, true);
    assert.deepEqual(sent.slice(0, want.length), want);
    // a client resuming after the last response's revision misses nothing
    assert.equal(last.header.revision, Math.max(1, ...sent), `cancelled at ${last.header.revision} after ${sent.join(', ')}`);
  }
});

test('consuming a watch both ways fails where it is done, with QUORUMKV_INVALID_ARGUMENT, never as an unhandled rejection', async () => {
  const t = await openStore();
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown) => unhandled.push(err);
  process.on('unhandledRejection', onUnhandled);
  try {
    // an iterator waiting, then a listener: the listener's registration throws
    const iterated = t.store.watch({ key: b('k') });
    const waiting = iterated.next();
    assert.throws(
      () => iterated.on('put', () => {}),
      (err: unknown) => isQuorumError(err, ErrorCode.INVALID_ARGUMENT),
    );
    await put(t, 'k', '1'); // 2
    const first = await waiting;
    assert.deepEqual(first.done ? [] : first.value.events.map(evStr), ['PUT k@2'], 'the iterator still gets its events');
    // a listener, then the iterator: next() rejects with the typed error
    const listened = t.store.watch({ key: b('k') });
    listened.on('put', () => {});
    await new Promise((r) => setImmediate(r));
    await assert.rejects(listened.next(), (err: unknown) => isQuorumError(err, ErrorCode.INVALID_ARGUMENT));
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(unhandled, []);
    await iterated.cancel();
    await listened.cancel();
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

test('a next() right after a listener is added fails with QUORUMKV_INVALID_ARGUMENT, and the listener gets every event, with no unhandled rejection', async () => {
  const t = await openStore();
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown) => unhandled.push(err);
  process.on('unhandledRejection', onUnhandled);
  try {
    const w = t.store.watch({ key: b('k') });
    const seen: string[] = [];
    w.on('put', (ev) => seen.push(evStr(ev)));
    // in the same turn: before the listeners' reads have begun
    await assert.rejects(w.next(), (err: unknown) => isQuorumError(err, ErrorCode.INVALID_ARGUMENT));
    await put(t, 'k', '1'); // 2
    await put(t, 'k', '2'); // 3
    await t.store.watchIdle();
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(seen, ['PUT k@2', 'PUT k@3']);
    assert.deepEqual(unhandled, []);
    await w.cancel();
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

test('requestProgress refuses a watcher this store did not create with QUORUMKV_INVALID_ARGUMENT and sends nothing', async () => {
  const t = await openStore();
  const other = await openStore();
  await put(t, 'k', '1'); // 2
  const mine = t.store.watch({ key: b('k') });
  const foreign = other.store.watch({ key: b('k') });
  await t.store.watchIdle();
  const bad: unknown[] = [foreign, null, 5, 'w', {}, { id: mine.id }];
  for (const w of bad) {
    assert.throws(
      () => t.store.requestProgress(w as Watcher),
      (e: unknown) => isQuorumError(e) && e.code === ErrorCode.INVALID_ARGUMENT,
      `requestProgress(${w === foreign ? 'a watcher of another store' : String(w)})`,
    );
  }
  assert.deepEqual(await drain(foreign), [], 'nothing sent to the other store\'s watcher');
  // its own watcher gets one progress notification: the one asked for here
  t.store.requestProgress(mine);
  const got = await drain(mine);
  assert.deepEqual(
    got.map((p) => [p.events.length, p.canceled, p.header.revision]),
    [[0, false, 2]],
  );
  await mine.cancel();
  await foreign.cancel();
  await t.store.close();
  await other.store.close();
});

test('a prevKv watch from now with a full queue, created while a batch executes on a database without synchronous reads, is kept through a compaction in that batch', async () => {
  // etcd keeps a synced watcher whose channel is full as a victim with the
  // batch's events and delivers them once its consumer reads: a compaction
  // in the same batch does not cancel it. The events before the one lacking
  // prevKv could not be queued and were read again from history, from a
  // revision that compaction had just removed: the watch was cancelled.
  const db = new MemoryLevel<string, string>();
  Object.defineProperty(db, 'supports', { value: { ...db.supports, getSync: false } });
  const t = await openStore({ watch: { queueCapacity: 1 } }, db);
  await put(t, 'k', '0'); // 2, written: its value at 4 needs a read that waits
  const i = t.takeIndex();
  const applying = t.store.applyBatch([
    { index: i, request: { put: { key: b('a'), value: b('x') } } }, // 3
    { index: i + 1, request: { put: { key: b('x'), value: b('x') } } }, // 4
    { index: i + 2, request: { put: { key: b('k'), value: b('1') } } }, // 5
    { index: i + 3, request: { txn: { success: [{ requestPut: { key: b('y'), value: b('y') } }] } } }, // 6
    { index: i + 4, request: { compaction: { revision: 4 } } },
  ]);
  // the txn makes the apply wait after the puts, before the batch is notified
  while (t.store.currentRevision() < 5) await Promise.resolve();
  const w = t.store.watch({ key: b('a'), rangeEnd: b('l'), prevKv: true }); // from now
  t.store.requestProgress(w); // its queue is full
  await applying;
  await t.store.watchIdle();
  await put(t, 'k', '2'); // 7
  await t.store.watchIdle();
  const got: string[] = [];
  for (const r of await drain(w)) {
    assert.equal(r.canceled, false, `cancelled (compactRevision ${r.compactRevision}) after ${got.join(', ')}`);
    for (const e of r.events) got.push(`${e.type} ${s(e.kv.key)}@${e.kv.modRevision} prev ${kvStr(e.prevKv)}`);
  }
  assert.deepEqual(got, ['PUT a@3 prev -', 'PUT k@5 prev k=0@2/2/1', 'PUT k@7 prev k=1@2/5/2']);
  await w.cancel();
  await t.store.close();
});

test('a prevKv watch from now created while a batch executes on a database without synchronous reads is not cancelled by a compaction applied right after that batch', async () => {
  // The previous version of k@3 (k@2, written) needs a read that waits on
  // such a database: the watch read revision 3 on from history instead, a
  // pipelined compaction past it came first, and the watch was cancelled
  // as compacted where etcd sends the event. The read now happens before
  // the response goes out, and history is not read again.
  const db = new MemoryLevel<string, string>();
  Object.defineProperty(db, 'supports', { value: { ...db.supports, getSync: false } });
  const t = await openStore({}, db);
  await put(t, 'k', '0'); // 2
  const i = t.takeIndex();
  const applying = t.store.applyBatch(
    [
      { index: i, request: { put: { key: b('k'), value: b('1') } } }, // 3
      { index: i + 1, request: { txn: { success: [{ requestPut: { key: b('x'), value: b('x') } }] } } }, // 4
    ],
    { acknowledge: 'applied' },
  );
  const compacting = t.store.applyBatch([{ index: i + 2, request: { compaction: { revision: 4 } } }], { acknowledge: 'applied' });
  while (t.store.currentRevision() < 3) await Promise.resolve();
  const w = t.store.watch({ key: b('k'), prevKv: true }); // from now
  await applying;
  await compacting;
  await t.store.watchIdle();
  t.takeIndex();
  t.takeIndex();
  await put(t, 'k', '2'); // 5
  await t.store.watchIdle();
  const got: string[] = [];
  for (const r of await drain(w)) {
    assert.equal(r.canceled, false, `cancelled (compactRevision ${r.compactRevision}) after ${got.join(', ')}`);
    for (const e of r.events) got.push(`${e.type} ${s(e.kv.key)}@${e.kv.modRevision}`);
  }
  assert.deepEqual(got, ['PUT k@3', 'PUT k@5']);
  await w.cancel();
  await t.store.close();
});

test('a prevKv watch from now created while a batch executes on a database without synchronous reads is not cancelled by a compaction past the batches applied while it waits for a read', async () => {
  // The previous version of k@3 (k@2, written) takes a read that waits on
  // such a database. The batches applied meanwhile (revisions 5 and 6)
  // were left to be read from history after it, and a compaction at 6 had
  // removed them: the watch was cancelled, where etcd's stays synced.
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
  await put(t, 'k', '0'); // 2
  const i = t.takeIndex();
  const applying = t.store.applyBatch(
    [
      { index: i, request: { put: { key: b('k'), value: b('1') } } }, // 3
      { index: i + 1, request: { txn: { success: [{ requestPut: { key: b('x'), value: b('x') } }] } } }, // 4
    ],
    { acknowledge: 'applied' },
  );
  while (t.store.currentRevision() < 3) await Promise.resolve();
  const w = t.store.watch({ key: b('k'), prevKv: true }); // from now
  hold = true; // the read of k@2
  await applying;
  hold = false;
  assert.equal(held.length, 1, 'the read of k@2 waits');
  await put(t, 'z', '1'); // 5
  await put(t, 'z', '2'); // 6
  await t.write({ compaction: { revision: 6 } });
  held.shift()!();
  await t.store.watchIdle();
  await put(t, 'k', '2'); // 7
  await t.store.watchIdle();
  const got: string[] = [];
  for (const r of await drain(w)) {
    assert.equal(r.canceled, false, `cancelled (compactRevision ${r.compactRevision}) after ${got.join(', ')}`);
    for (const e of r.events) got.push(`${e.type} ${s(e.kv.key)}@${e.kv.modRevision} prev ${kvStr(e.prevKv)}`);
  }
  assert.deepEqual(got, ['PUT k@3 prev k=0@2/2/1', 'PUT k@7 prev k=1@2/3/2']);
  await w.cancel();
  await t.store.close();
});

test('watches from now created while held start after the revision the store has when the last hold is released; a progress asked for meanwhile comes then', async () => {
  const t = await openStore();
  await put(t, 'a', '0');
  t.store.holdWatchesFromNow();
  t.store.holdWatchesFromNow(); // holds nest
  const w = t.store.watch({ key: b('a') });
  const zero = t.store.watch({ key: b('a'), startRevision: 0 });
  const past = t.store.watch({ key: b('a'), startRevision: 2 });
  const future = t.store.watch({ key: b('a'), startRevision: 5 });
  assert.deepEqual([w.state, zero.state, past.state, future.state], ['waiting', 'waiting', 'unsynced', 'synced']);
  assert.equal(t.store.watcherGroups().waiting, 2);
  t.store.requestProgress();
  await put(t, 'a', '1'); // revision 3
  assert.deepEqual((await events(past, 2)).evs, ['PUT a@2', 'PUT a@3'], 'a watch with a start revision is not held');
  assert.equal(w.queued, 0);
  t.store.releaseWatchesFromNow();
  assert.equal(w.state, 'waiting', 'until the last hold is released');
  await put(t, 'a', '2'); // revision 4
  await t.store.watchIdle();
  assert.deepEqual([w.queued, zero.queued], [0, 0]);
  t.store.releaseWatchesFromNow();
  assert.equal(t.store.watcherGroups().waiting, 0);
  for (const x of [w, zero]) {
    const progress = await nextResp(x);
    assert.deepEqual([progress.header.revision, progress.events.length], [4, 0], 'the progress asked for during the wait, at the revision the watch starts after');
  }
  await put(t, 'a', '3'); // revision 5
  for (const x of [w, zero, future]) assert.deepEqual((await events(x, 1)).evs, ['PUT a@5']);
  assert.throws(() => t.store.releaseWatchesFromNow(), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_ARGUMENT), 'no hold left');
  const after = t.store.watch({ key: b('a') });
  assert.equal(after.state, 'synced', 'nothing held after the refused release');
  for (const x of [w, zero, past, future, after]) await x.cancel();
});

test('a watch from now held back can be cancelled, ends with the store at its revision, and an empty range is still cancelled at once', async () => {
  const t = await openStore();
  await put(t, 'a', '0');
  t.store.holdWatchesFromNow();
  const cancelled = t.store.watch({ key: b('a') });
  const kept = t.store.watch({ key: b('a'), watchId: 9 });
  assert.throws(() => t.store.watch({ key: b('a'), watchId: 9 }), { code: 'QUORUMKV_INVALID_ARGUMENT' }, 'its id is taken');
  const empty = t.store.watch({ key: b('b'), rangeEnd: b('a') });
  const e = await empty.next();
  assert.equal(e.value?.canceled, true);
  await cancelled.cancel();
  assert.equal((await cancelled.next()).done, true);
  assert.equal(t.store.watcherGroups().waiting, 1);
  await put(t, 'a', '1'); // revision 3
  await t.store.close();
  const last = await kept.next();
  assert.deepEqual([last.value?.canceled, last.value?.cancelReason, last.value?.header.revision], [true, 'mvcc: store closed', 3]);
  assert.equal((await kept.next()).done, true);
  t.store.releaseWatchesFromNow(); // nothing left to start: no error
});
