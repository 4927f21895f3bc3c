// LevelLogStorage beyond the LogStorage contract: opening from a dataDir,
// ownership of the database, sharing one classic-level database with a state
// machine through sublevels, and the torn-tail warning on quorumkv:storage.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { format } from 'node:util';
import { ClassicLevel } from 'classic-level';
import createDebug from 'debug';
import { MemoryLevel } from 'memory-level';
import { ErrorCode } from '../../src/errors.js';
import { LevelLogStorage, entryKey, type LevelDatabase } from '../../src/storage/index.js';
import { ents, flipByte, norm, rejectsWith } from './conformance.js';
import { withTempDir } from './fixtures.js';


test('open with a dataDir creates a classic-level database that close() closes and a reopen reads back', async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, 'raft');
    let storage = await LevelLogStorage.open({ dataDir: path });
    await storage.save({ hardState: { term: 3, vote: 'n1', commit: 2 }, entries: ents(1, 4, 3) }, { sync: true });
    await storage.close();
    assert.equal(storage.db.status, 'closed');
    storage = await LevelLogStorage.open({ dataDir: path });
    const loaded = await storage.load();
    assert.deepEqual(loaded.hardState, { term: 3, vote: 'n1', commit: 2 });
    assert.deepEqual(norm(loaded.entries), norm(ents(1, 4, 3)));
    await storage.close();
  });
});

test('a dataDir held by another open storage fails with QUORUMKV_STORAGE_IO', async () => {
  await withTempDir(async (dir) => {
    const first = await LevelLogStorage.open({ dataDir: dir });
    try {
      await rejectsWith(LevelLogStorage.open({ dataDir: dir }), ErrorCode.STORAGE_IO, 'cannot open');
    } finally {
      await first.close();
    }
  });
});

test('open without a db or a dataDir is a UsageError', async () => {
  await rejectsWith(LevelLogStorage.open({} as never), ErrorCode.INVALID_ARGUMENT);
  await rejectsWith(LevelLogStorage.open({ dataDir: '' }), ErrorCode.INVALID_ARGUMENT);
});

test('close() leaves an injected database open for its owner', async () => {
  const db = new MemoryLevel();
  const storage = await LevelLogStorage.open({ db });
  await storage.close();
  assert.equal(storage.status, 'closed');
  assert.equal(db.status, 'open');
  await db.close();
});

test('operations reject with QUORUMKV_STORAGE_CLOSED when the injected database is closed underneath', async () => {
  const db = new MemoryLevel();
  const storage = await LevelLogStorage.open({ db });
  await db.close();
  await rejectsWith(storage.save({ entries: ents(1, 1, 1) }, { sync: true }), ErrorCode.STORAGE_CLOSED);
  await storage.close();
});

test('a log storage and a state machine share one classic-level database, each in its own sublevel', async () => {
  await withTempDir(async (dir) => {
    let root = new ClassicLevel(dir);
    const sublevels = (r: ClassicLevel) => ({
      raft: r.sublevel('raft', { keyEncoding: 'view', valueEncoding: 'view' }) as LevelDatabase,
      kv: r.sublevel('kv'),
    });
    let { raft, kv } = sublevels(root);
    let storage = await LevelLogStorage.open({ db: raft });
    await storage.save({ entries: ents(1, 3, 1), hardState: { term: 1, vote: '', commit: 3 } }, { sync: true });
    // The state machine applies entries 1..3 and records the applied index in the same batch.
    await root.batch(
      [
        { type: 'put', sublevel: kv, key: 'x', value: 'from entry 3' },
        { type: 'put', sublevel: kv, key: 'applied', value: '3' },
      ],
      { sync: true } as never,
    );
    await storage.close();
    await root.close();
    root = new ClassicLevel(dir);
    ({ raft, kv } = sublevels(root));
    storage = await LevelLogStorage.open({ db: raft });
    assert.deepEqual(norm((await storage.load()).entries), norm(ents(1, 3, 1)));
    assert.equal(await kv.get('applied'), '3');
    assert.equal(await kv.get('x'), 'from entry 3');
    await storage.close();
    await root.close();
  });
});

test('dropping a torn tail logs a warning on quorumkv:storage naming the indexes', async () => {
  const lines: string[] = [];
  const previousLog = createDebug.log;
  const previousNamespaces = createDebug.disable();
  createDebug.enable('quorumkv:storage');
  createDebug.log = (...args: unknown[]) => {
    lines.push(format(...args));
  };
  try {
    const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
    let storage = await LevelLogStorage.open({ db });
    await storage.save({ entries: ents(1, 6, 1), hardState: { term: 1, vote: '', commit: 4 } }, { sync: true });
    await storage.close();
    await flipByte(db, entryKey(6));
    storage = await LevelLogStorage.open({ db });
    assert.equal((await storage.load()).entries.length, 5);
    await storage.close();
    await db.close();
  } finally {
    createDebug.log = previousLog;
    createDebug.disable();
    if (previousNamespaces) createDebug.enable(previousNamespaces);
  }
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /quorumkv:storage.*torn log tail, entries 6\.\.6 \(above the commit index 4\)/);
});

test('a storage opened on a sublevel of a database that is still opening waits for it', async () => {
  const root = new MemoryLevel();
  const sub = root.sublevel('raft', { keyEncoding: 'view', valueEncoding: 'view' });
  const storage = await LevelLogStorage.open({ db: sub });
  assert.equal(storage.status, 'open');
  await storage.save({ entries: ents(1, 2, 1) }, { sync: false });
  assert.equal((await storage.load()).entries.length, 2);
  await storage.close();
  await root.close();
});
