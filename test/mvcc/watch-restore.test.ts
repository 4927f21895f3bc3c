// A watcher catching up from history while the store restores a snapshot:
// the catch-up read that overlapped the restore is dropped and the watcher
// continues from the restored history, as etcd moves watchers back to
// unsynced on restore.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MvccStore, WatchableStore, type StoredEvent, type WatchSource } from '../../src/mvcc/index.js';
import type { KeyValue } from '../../src/mvccpb/index.js';
import { b, openStore } from './helpers.js';

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
