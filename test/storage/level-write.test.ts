// src/level-write.ts: prepared records go to classic-level's own
// implementation only when nothing of abstract-level's public path would
// matter (open, no prewrite hook, no write listener); otherwise, and for any
// other database, through the public API, with its hooks and events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { MemoryLevel } from 'memory-level';
import { putPrepared, writePrepared, type PreparedOp } from '../../src/level-write.js';

const enc = new TextEncoder();
const op = (k: string, v?: string): PreparedOp => (v === undefined ? { type: 'del', key: enc.encode(k) } : { type: 'put', key: enc.encode(k), value: enc.encode(v) });
const VIEW = { keyEncoding: 'view', valueEncoding: 'view' } as const;

async function withClassic(fn: (db: ClassicLevel<Uint8Array, Uint8Array>) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'quorumkv-level-write-'));
  const db = new ClassicLevel<Uint8Array, Uint8Array>(join(dir, 'db'), VIEW);
  try {
    await fn(db);
  } finally {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Counts calls of the public batch() and put(). */
function countPublic(db: object): { batch: number; put: number } {
  const calls = { batch: 0, put: 0 };
  const target = db as { batch: (...a: unknown[]) => unknown; put: (...a: unknown[]) => unknown };
  const { batch, put } = target;
  target.batch = function (this: unknown, ...a: unknown[]) {
    calls.batch++;
    return batch.apply(this, a);
  };
  target.put = function (this: unknown, ...a: unknown[]) {
    calls.put++;
    return put.apply(this, a);
  };
  return calls;
}

test('an open classic-level database without hooks or listeners is written directly, with the same result', async () => {
  await withClassic(async (db) => {
    await db.open();
    const calls = countPublic(db);
    await writePrepared(db, [op('a', '1'), op('b', '2'), op('c', '3'), op('b')], true);
    await putPrepared(db, enc.encode('d'), enc.encode('4'), false);
    assert.deepEqual(calls, { batch: 0, put: 0 }, 'the public API was not used');
    const got = (await db.iterator().all()).map(([k, v]) => `${Buffer.from(k).toString()}=${Buffer.from(v).toString()}`);
    assert.deepEqual(got, ['a=1', 'c=3', 'd=4']);
  });
});

test('a prewrite hook or a write listener sends the writes through the public API, which runs them', async () => {
  await withClassic(async (db) => {
    await db.open();
    const hooked: string[] = [];
    db.hooks.prewrite.add((o: { key: Uint8Array }) => {
      hooked.push(Buffer.from(o.key).toString());
    });
    await writePrepared(db, [op('a', '1'), op('b', '2')], false);
    await putPrepared(db, enc.encode('c'), enc.encode('3'), false);
    assert.deepEqual(hooked, ['a', 'b', 'c']);
  });
  await withClassic(async (db) => {
    await db.open();
    const events: number[] = [];
    db.on('write', (ops: unknown[]) => events.push(ops.length));
    await writePrepared(db, [op('a', '1'), op('b', '2')], false);
    await putPrepared(db, enc.encode('c'), enc.encode('3'), false);
    assert.deepEqual(events, [2, 1]);
  });
});

test('a database still opening, and memory-level, take the public API', async () => {
  await withClassic(async (db) => {
    const calls = countPublic(db);
    assert.equal(db.status, 'opening');
    await writePrepared(db, [op('a', '1')], false); // deferred until open by abstract-level
    assert.equal(calls.batch, 1);
    assert.deepEqual(Buffer.from((await db.get(enc.encode('a')))!).toString(), '1');
  });
  const mem = new MemoryLevel<Uint8Array, Uint8Array>(VIEW);
  await mem.open();
  const calls = countPublic(mem);
  await writePrepared(mem, [op('a', '1'), op('b', '2')], true);
  await putPrepared(mem, enc.encode('c'), enc.encode('3'), true);
  assert.deepEqual(calls, { batch: 1, put: 1 });
  assert.equal((await mem.keys().all()).length, 3);
  await mem.close();
});
