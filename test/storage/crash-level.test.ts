// CrashableLevel: unsynced writes are volatile until a synced write (or
// flush()), a crash throws them away. Tested directly, with sublevels shared
// by a log storage and a state machine, and against a model with random ops.
//
// The randomized test draws a fresh seed each run and prints it on failure
// (fast-check's report); replay with QUORUMKV_SEED=<seed> (and
// QUORUMKV_PATH=<path> from the same report to jump to the shrunk case).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CrashableLevel, LevelLogStorage, type LevelDatabase } from '../../src/storage/index.js';
import { ent, ents, norm } from './conformance.js';

const SYNC = { sync: true } as never;

async function contents(db: LevelDatabase): Promise<Array<[string, string]>> {
  return (await db.iterator({ keyEncoding: 'utf8', valueEncoding: 'utf8' }).all()) as Array<[string, string]>;
}

async function restart(root: CrashableLevel): Promise<void> {
  await root.crash();
  await root.open();
}

test('an unsynced write is lost in a crash and a synced one survives', async () => {
  const db = new CrashableLevel();
  await db.put('a', '1', SYNC);
  await db.put('b', '2');
  assert.deepEqual(await contents(db), [['a', '1'], ['b', '2']], 'unsynced writes are visible before the crash');
  assert.equal(db.volatileOperations, 1);
  await restart(db);
  assert.deepEqual(await contents(db), [['a', '1']]);
  assert.equal(db.crashes, 1);
  await db.close();
});

test('a synced write makes every earlier unsynced write durable, in order', async () => {
  const db = new CrashableLevel();
  await db.put('a', '1');
  await db.put('b', '1');
  await db.del('a');
  await db.put('b', '2');
  await db.batch([{ type: 'put', key: 'c', value: '3' }], SYNC);
  await db.put('d', 'lost');
  await db.del('b');
  assert.equal(db.syncedWrites, 1);
  assert.equal(db.unsyncedWrites, 6);
  await restart(db);
  assert.deepEqual(await contents(db), [['b', '2'], ['c', '3']]);
  await db.close();
});

test('flush() makes every earlier write durable without writing', async () => {
  const db = new CrashableLevel();
  await db.put('a', '1');
  db.flush();
  assert.equal(db.volatileOperations, 0);
  await db.put('b', '2');
  await restart(db);
  assert.deepEqual(await contents(db), [['a', '1']]);
  await db.close();
});

test('a crash closes the database: operations reject until open() restarts it', async () => {
  const db = new CrashableLevel();
  const sub = db.sublevel('sm');
  await sub.put('k', 'v', SYNC);
  await db.crash();
  assert.equal(db.status, 'closed');
  assert.equal(sub.status, 'closed');
  await assert.rejects(db.put('x', 'y'), { code: 'LEVEL_DATABASE_NOT_OPEN' });
  await assert.rejects(sub.get('k'), { code: 'LEVEL_DATABASE_NOT_OPEN' });
  await db.open();
  assert.equal(await db.sublevel('sm').get('k'), 'v');
  await db.close();
});

test('a chained batch and clear() follow the same rules', async () => {
  const db = new CrashableLevel();
  await db.open(); // a chained batch is not deferred while opening
  await db.batch().put('a', '1').put('b', '2').put('c', '3').write();
  await db.batch().put('d', '4').write(SYNC);
  await db.clear({ gte: 'b', lt: 'd' });
  assert.deepEqual(await contents(db), [['a', '1'], ['d', '4']]);
  await restart(db);
  assert.deepEqual(await contents(db), [['a', '1'], ['b', '2'], ['c', '3'], ['d', '4']], 'the unsynced clear is lost');
  await db.clear({ gte: 'b', lt: 'd' });
  await db.put('e', '5', SYNC);
  await restart(db);
  assert.deepEqual(await contents(db), [['a', '1'], ['d', '4'], ['e', '5']], 'a later synced write keeps the clear');
  await db.close();
});

test('a log storage and a state machine in sublevels share one durability order', async () => {
  const root = new CrashableLevel();
  let raft = root.sublevel('raft', { keyEncoding: 'view', valueEncoding: 'view' });
  let sm = root.sublevel('sm');
  let storage = await LevelLogStorage.open({ db: raft });
  await storage.save({ entries: ents(1, 3, 1), hardState: { term: 1, vote: '', commit: 0 } }, { sync: true });
  await storage.save({ entries: ents(4, 5, 1) }, { sync: false });
  // The state machine's synced write flushes the log's earlier unsynced append.
  await sm.batch([{ type: 'put', key: 'applied', value: '2' }], SYNC);
  await storage.save({ entries: ents(6, 6, 1) }, { sync: false });
  await sm.put('applied', '3');
  await storage.close();
  await restart(root);
  raft = root.sublevel('raft', { keyEncoding: 'view', valueEncoding: 'view' });
  sm = root.sublevel('sm');
  storage = await LevelLogStorage.open({ db: raft });
  assert.deepEqual(norm((await storage.load()).entries), norm(ents(1, 5, 1)));
  assert.equal(await sm.get('applied'), '2');
  await storage.close();
  await root.close();
});

test('a batch spanning sublevels is atomic across a crash', async () => {
  const root = new CrashableLevel();
  const raft = root.sublevel('raft');
  const sm = root.sublevel('sm');
  const both = (v: string) =>
    [
      { type: 'put', sublevel: raft, key: 'applied', value: v },
      { type: 'put', sublevel: sm, key: 'value', value: v },
    ] as never;
  await root.batch(both('1'), SYNC);
  await root.batch(both('2'));
  await restart(root);
  assert.deepEqual(await contents(root), [
    ['!raft!applied', '1'],
    ['!sm!value', '1'],
  ]);
  await root.close();
});

test('no synced save of a log storage is lost across random crashes (model check)', async () => {
  const seed = process.env.QUORUMKV_SEED !== undefined ? Number(process.env.QUORUMKV_SEED) : Date.now() % 2 ** 31;
  const path = process.env.QUORUMKV_PATH;
  type Op = { kind: 'append' | 'hardState' | 'snapshot' | 'divergent' | 'compact' | 'crash'; r: number; sync: boolean };
  const opArb: fc.Arbitrary<Op> = fc.record({
    kind: fc.constantFrom('append', 'append', 'append', 'hardState', 'snapshot', 'divergent', 'compact', 'crash'),
    r: fc.nat(1000),
    sync: fc.boolean(),
  });

  interface Model {
    term: number;
    commit: number;
    snapIndex: number;
    snapTerm: number;
    entries: Map<number, number>; // index -> term, indexes > snapIndex
  }
  const clone = (m: Model): Model => ({ ...m, entries: new Map(m.entries) });
  const lastOf = (m: Model) => (m.entries.size === 0 ? m.snapIndex : Math.max(...m.entries.keys()));
  const expected = (m: Model) => ({
    hardState: { term: m.term, vote: '', commit: m.commit },
    snapIndex: m.snapIndex,
    entries: norm([...m.entries].sort((a, b) => a[0] - b[0]).map(([i, t]) => ent(i, t))),
  });

  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { maxLength: 40 }), async (ops) => {
      const root = new CrashableLevel();
      const open = () => LevelLogStorage.open({ db: root.sublevel('raft', { keyEncoding: 'view', valueEncoding: 'view' }) });
      let storage = await open();
      let model: Model = { term: 0, commit: 0, snapIndex: 0, snapTerm: 0, entries: new Map() };
      let durable = clone(model);
      const check = async (m: Model) => {
        const loaded = await storage.load();
        assert.deepEqual(
          { hardState: loaded.hardState, snapIndex: loaded.snapshot?.metadata.index ?? 0, entries: norm(loaded.entries) },
          expected(m),
        );
      };
      try {
        for (const op of ops) {
          const last = lastOf(model);
          const floor = Math.max(model.snapIndex, model.commit);
          switch (op.kind) {
            case 'append': {
              const lo = floor + 1 + (op.r % (last - floor + 1));
              const n = 1 + (op.r % 4);
              if (op.r % 3 === 0) model.term++;
              for (const i of [...model.entries.keys()]) if (i >= lo) model.entries.delete(i);
              for (let i = lo; i < lo + n; i++) model.entries.set(i, model.term);
              model.commit = Math.min(lo + n - 1, model.commit + (op.r % 3));
              await storage.save(
                { entries: ents(lo, lo + n - 1, model.term), hardState: { term: model.term, vote: '', commit: model.commit } },
                { sync: op.sync },
              );
              break;
            }
            case 'hardState': {
              model.commit = model.commit + (op.r % (last - model.commit + 1));
              await storage.save({ hardState: { term: model.term, vote: '', commit: model.commit } }, { sync: op.sync });
              break;
            }
            case 'snapshot': {
              // A local snapshot at an index in the log: entries after it stay.
              if (model.commit <= model.snapIndex) continue;
              const index = model.snapIndex + 1 + (op.r % (model.commit - model.snapIndex));
              const term = model.entries.get(index)!;
              for (const i of [...model.entries.keys()]) if (i <= index) model.entries.delete(i);
              model.snapIndex = index;
              model.snapTerm = term;
              await storage.save({ snapshot: snapOf(index, term) }, { sync: op.sync });
              break;
            }
            case 'divergent': {
              // A snapshot from a leader whose log differs: the whole log goes.
              const index = floor + (op.r % (last - floor + 3));
              model.term++;
              model.entries.clear();
              model.snapIndex = index;
              model.snapTerm = model.term;
              model.commit = index;
              await storage.save(
                { snapshot: snapOf(index, model.term), hardState: { term: model.term, vote: '', commit: index } },
                { sync: op.sync },
              );
              break;
            }
            case 'compact':
              // compact() never syncs.
              await storage.compact(op.r % (model.snapIndex + 1));
              continue;
            case 'crash':
              await storage.close();
              await restart(root);
              storage = await open();
              model = clone(durable);
              await check(model);
              continue;
          }
          if (op.sync) durable = clone(model);
        }
        await check(model);
        await storage.close();
        await restart(root);
        storage = await open();
        await check(durable);
      } finally {
        await storage.close();
        await root.close();
      }
    }),
    { seed, path, numRuns: 150, verbose: 1 },
  );
});

function snapOf(index: number, term: number) {
  return { metadata: { index, term, confState: { voters: ['a'], learners: [] } }, data: Uint8Array.of(index & 0xff) };
}

test('random writes through the root and sublevels match a model of durable and volatile state', async () => {
  const seed = process.env.QUORUMKV_SEED !== undefined ? Number(process.env.QUORUMKV_SEED) : (Date.now() + 1) % 2 ** 31;
  const path = process.env.QUORUMKV_PATH;
  const key = fc.constantFrom('a', 'b', 'c', 'd');
  const where = fc.constantFrom('root', 'x', 'y');
  const opArb = fc.oneof(
    fc.record({ t: fc.constant('put' as const), where, key, value: fc.string({ maxLength: 3 }), sync: fc.boolean() }),
    fc.record({ t: fc.constant('del' as const), where, key, sync: fc.boolean() }),
    fc.record({
      t: fc.constant('batch' as const),
      ops: fc.array(fc.record({ where, key, value: fc.option(fc.string({ maxLength: 3 })) }), { maxLength: 4 }),
      sync: fc.boolean(),
    }),
    fc.record({ t: fc.constant('clear' as const), where, gte: key }),
    fc.constant({ t: 'flush' as const }),
    fc.constant({ t: 'crash' as const }),
  );
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { maxLength: 30 }), async (ops) => {
      const root = new CrashableLevel();
      const live = new Map<string, string>();
      let durable = new Map<string, string>();
      const full = (w: string, k: string) => (w === 'root' ? k : `!${w}!${k}`);
      const sub = (w: string) => (w === 'root' ? root : root.sublevel(w));
      try {
        for (const op of ops) {
          switch (op.t) {
            case 'put':
              await sub(op.where).put(op.key, op.value, { sync: op.sync } as never);
              live.set(full(op.where, op.key), op.value);
              if (op.sync) durable = new Map(live);
              break;
            case 'del':
              await sub(op.where).del(op.key, { sync: op.sync } as never);
              live.delete(full(op.where, op.key));
              if (op.sync) durable = new Map(live);
              break;
            case 'batch':
              await root.batch(
                op.ops.map((o) =>
                  o.value === null
                    ? { type: 'del', key: o.key, ...(o.where === 'root' ? {} : { sublevel: root.sublevel(o.where) }) }
                    : { type: 'put', key: o.key, value: o.value, ...(o.where === 'root' ? {} : { sublevel: root.sublevel(o.where) }) },
                ) as never,
                { sync: op.sync } as never,
              );
              for (const o of op.ops) {
                if (o.value === null) live.delete(full(o.where, o.key));
                else live.set(full(o.where, o.key), o.value);
              }
              // abstract-level skips an empty batch entirely: it syncs nothing.
              if (op.sync && op.ops.length > 0) durable = new Map(live);
              break;
            case 'clear':
              await sub(op.where).clear({ gte: op.gte });
              for (const k of [...live.keys()]) {
                const inScope = op.where === 'root' ? true : k.startsWith(`!${op.where}!`);
                const local = op.where === 'root' ? k : k.slice(op.where.length + 2);
                if (inScope && local >= op.gte) live.delete(k);
              }
              break;
            case 'flush':
              root.flush();
              durable = new Map(live);
              break;
            case 'crash':
              await restart(root);
              live.clear();
              for (const [k, v] of durable) live.set(k, v);
              break;
          }
          assert.deepEqual(await contents(root), [...live].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
        }
      } finally {
        await root.close();
      }
    }),
    { seed, path, numRuns: 200 },
  );
});

test('a crash after a clean close still loses the unsynced writes, and crashing twice is harmless', async () => {
  const db = new CrashableLevel();
  await db.put('a', '1', SYNC);
  await db.put('b', '2');
  await db.close();
  await db.crash();
  await db.crash();
  await db.open();
  assert.deepEqual(await contents(db), [['a', '1']]);
  assert.equal(db.crashes, 2);
  await db.close();
});

test('CrashableLevel refuses options it cannot use with QUORUMKV_INVALID_ARGUMENT: not an object, a name of another option (storeEncoding too: always view), an encoding of another type', async () => {
  // before: abstract-level ignored a misspelt name and overrode storeEncoding
  // silently, and threw a raw TypeError for an encoding of another type
  for (const bad of [42, 'x', null, [], { keyEncodnig: 'view' }, { storeEncoding: 'utf8' }, { valueEncoding: 42 }, { keyEncoding: null }]) {
    assert.throws(() => new CrashableLevel(bad as never), { code: 'QUORUMKV_INVALID_ARGUMENT' }, JSON.stringify(bad));
  }
  const db = new CrashableLevel({ keyEncoding: 'utf8', valueEncoding: 'utf8', createIfMissing: true });
  await db.open();
  await db.put('k', 'v');
  assert.equal(await db.get('k'), 'v');
  await db.close();
  const plain = new CrashableLevel(undefined);
  await plain.open();
  await plain.close();
});
