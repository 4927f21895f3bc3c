// A snapshot restore and a power loss, on a model of LevelDB whose write-ahead
// log switches files (log-switch-level.ts): with `sync`, the store after the
// crash is the restored one or an empty one (a restore cut short), never the
// restored one with records of the state it replaced.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLevel } from 'memory-level';
import { MvccStore } from '../../src/mvcc/index.js';
import { RANGE_END_ALL } from '../../src/mvccpb/index.js';
import { b, kvStr } from './helpers.js';
import { LogSwitchLevel } from './log-switch-level.js';

const VIEW = { keyEncoding: 'view', valueEncoding: 'view' } as const;

async function dump(store: MvccStore): Promise<string[]> {
  return (await store.range({ key: RANGE_END_ALL, rangeEnd: RANGE_END_ALL })).kvs.map(kvStr);
}

async function fill(store: MvccStore, prefix: string, n: number, first: number): Promise<void> {
  for (let i = 0; i < n; i += 10) {
    const entries = Array.from({ length: Math.min(10, n - i) }, (_, j) => ({ index: first + i + j, request: { put: { key: b(`${prefix}-${i + j}`), value: b('v') } } }));
    await store.applyBatch(entries);
  }
  await store.written();
}

async function restored(): Promise<{ snapshot: Uint8Array; expected: string[] }> {
  // the state to restore: 30 keys at applied index 500
  const src = await MvccStore.open(new MemoryLevel<Uint8Array, Uint8Array>(VIEW).sublevel('mvcc', VIEW));
  await fill(src, 'new', 30, 471);
  const out = { snapshot: await src.snapshot(), expected: await dump(src) };
  await src.close();
  return out;
}

/** A store of 100 keys that restores `snapshot`, with a power loss after write `crashAt` (or after the restore); the store reopened. */
async function restoreAndCrash(switchAfterOps: number, snapshot: Uint8Array, crashAt?: (writesBefore: number) => number): Promise<{ reopened: MvccStore; writes: number }> {
  const db = new LogSwitchLevel(switchAfterOps);
  const store = await MvccStore.open(db.sublevel('mvcc', VIEW), { sync: true, batchIntervalMs: 0 });
  await fill(store, 'old', 100, 1);
  const before = db.writes;
  if (crashAt !== undefined) db.crashAt(crashAt(before));
  await store.restore(snapshot);
  const writes = db.writes - before;
  await store.close();
  await db.crash();
  await db.open();
  return { reopened: await MvccStore.open(db.sublevel('mvcc', VIEW), { sync: true }), writes };
}

async function check(reopened: MvccStore, expected: string[], where: string): Promise<void> {
  try {
    const state = await dump(reopened);
    if (reopened.appliedIndex() === 0) {
      assert.deepEqual(state, [], `${where}: a restore cut short leaves an empty store`);
    } else {
      assert.equal(reopened.appliedIndex(), 500, where);
      assert.deepEqual(state, expected, `${where}: the store holds the restored state and nothing else`);
    }
  } finally {
    await reopened.close();
  }
}

for (const switchAfterOps of [20, 60, 150, 400]) {
  test(`a power loss during or right after a synced restore leaves the restored state or an empty store, never records of the old one (log switch every ${switchAfterOps} ops)`, async () => {
    const { snapshot, expected } = await restored();
    const { reopened, writes } = await restoreAndCrash(switchAfterOps, snapshot);
    await check(reopened, expected, 'a power loss after the restore');
    for (let k = 1; k <= writes; k++) {
      const r = await restoreAndCrash(switchAfterOps, snapshot, (before) => before + k);
      await check(r.reopened, expected, `a power loss after write ${k} of ${writes} of the restore`);
    }
  });
}
