// Snapshot and restore checks of the store (each test fails on the code before its
// fix): restore() cleared the backend before it decoded the records, so a
// CRC-valid snapshot with a malformed record failed the store and lost its
// data; snapshot() handed out the records of a store whose physical
// compaction had failed meanwhile; the server's state machine saved a
// snapshot's alarms before its store part was refused; and readTxn read
// its compares and its ranges at two revisions when an apply batch ran.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLevel } from 'memory-level';
import { pack, withCrc } from '../../src/codec/index.js';
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import { MvccStore, encodeStoreSnapshot, revToBytes } from '../../src/mvcc/index.js';
import { KvStateMachine } from '../../src/server/kv-state-machine.js';
import { encodeAlarmEntry } from '../../src/server/server-entry.js';
import { encodeKeyValue } from '../../src/mvcc/kv-codec.js';
import { b, s } from './helpers.js';

test('a snapshot with a malformed record is refused with QUORUMKV_CORRUPT_SNAPSHOT and changes nothing', async () => {
  for (const records of [
    [revToBytes({ main: 2, sub: 0 }), b('not msgpack \xc1')],
    [b('short'), b('x')],
  ]) {
    const st = await MvccStore.open(new MemoryLevel().sublevel('mvcc'));
    await st.apply(1, { put: { key: b('keep'), value: b('me') } });
    const bad = encodeStoreSnapshot({ appliedIndex: 5, revision: 3, compactRevision: -1, lastLeaseId: 0, leases: [], records });
    await assert.rejects(st.restore(bad), (e: unknown) => isQuorumError(e, ErrorCode.CORRUPT_SNAPSHOT));
    assert.deepEqual((await st.range({ key: b('keep') })).kvs.map((kv) => s(kv.value)), ['me']);
    assert.equal(st.appliedIndex(), 1);
    await st.close();
  }
});

test('a snapshot with a negative last lease id is refused with QUORUMKV_CORRUPT_SNAPSHOT and changes nothing', async () => {
  const st = await MvccStore.open(new MemoryLevel().sublevel('mvcc'));
  await st.apply(1, { put: { key: b('keep'), value: b('me') } });
  const bad = encodeStoreSnapshot({ appliedIndex: 5, revision: 3, compactRevision: -1, lastLeaseId: -4, leases: [], records: [] });
  await assert.rejects(st.restore(bad), (e: unknown) => isQuorumError(e, ErrorCode.CORRUPT_SNAPSHOT));
  assert.deepEqual((await st.range({ key: b('keep') })).kvs.map((kv) => s(kv.value)), ['me']);
  assert.equal(st.appliedIndex(), 1);
  await st.close();
});

test('a snapshot whose revision, compaction revision or applied index is out of range is refused with QUORUMKV_CORRUPT_SNAPSHOT and changes nothing', async () => {
  const rec = (main: number): Uint8Array[] => [
    revToBytes({ main, sub: 0 }),
    encodeKeyValue({ key: b('k'), createRevision: main, modRevision: main, version: 1, value: b('v'), lease: 0 }),
  ];
  const cases: { name: string; appliedIndex: number; revision: number; compactRevision: number; records?: Uint8Array[] }[] = [
    { name: 'revision 0', appliedIndex: 5, revision: 0, compactRevision: -1 },
    { name: 'a negative revision', appliedIndex: 5, revision: -3, compactRevision: -1 },
    { name: 'a compaction revision below -1', appliedIndex: 5, revision: 3, compactRevision: -2 },
    { name: 'a compaction revision above the revision', appliedIndex: 5, revision: 3, compactRevision: 4 },
    { name: 'a negative applied index', appliedIndex: -1, revision: 3, compactRevision: -1 },
    { name: 'a record above the revision', appliedIndex: 5, revision: 3, compactRevision: -1, records: rec(5) },
  ];
  // what the bad ones are checked against: snapshots of real stores
  const fresh = await MvccStore.open(new MemoryLevel().sublevel('mvcc'));
  const compactedAt0 = await MvccStore.open(new MemoryLevel().sublevel('mvcc'));
  await compactedAt0.apply(1, { compaction: { revision: 0 } });
  const good = [await fresh.snapshot(), await compactedAt0.snapshot()];
  assert.equal(compactedAt0.compactRevision(), 0);
  for (const c of cases) {
    const st = await MvccStore.open(new MemoryLevel().sublevel('mvcc'));
    await st.apply(1, { put: { key: b('keep'), value: b('me') } });
    const bad = encodeStoreSnapshot({ ...c, lastLeaseId: 0, leases: [], records: c.records ?? [] });
    await assert.rejects(st.restore(bad), (e: unknown) => isQuorumError(e, ErrorCode.CORRUPT_SNAPSHOT), c.name);
    assert.deepEqual((await st.range({ key: b('keep') })).kvs.map((kv) => s(kv.value)), ['me'], c.name);
    assert.equal(st.appliedIndex(), 1, c.name);
    assert.equal(st.currentRevision(), 2, c.name);
    // a valid snapshot of the same numbers' kind is taken
    for (const g of good) await st.restore(g);
    assert.equal(st.currentRevision(), 1);
    assert.equal(st.compactRevision(), 0);
    await st.close();
  }
  await fresh.close();
  await compactedAt0.close();
});

test('snapshot() fails when the physical compaction it waited for failed the store', async () => {
  const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
  const st = await MvccStore.open(db.sublevel('mvcc') as never);
  let i = 0;
  for (let k = 0; k < 5; k++) await st.apply(++i, { put: { key: b('a'), value: b(`v${k}`) } });
  await st.apply(++i, { deleteRange: { key: b('a') } });
  const failing = db as unknown as { batch: (ops: { type: string; key: Uint8Array }[], ...rest: unknown[]) => Promise<void> };
  const orig = failing.batch.bind(db);
  failing.batch = (ops, ...rest) =>
    ops.every((o) => o.type === 'del') || ops.some((o) => Buffer.from(o.key).toString('latin1').includes('compactFinished'))
      ? Promise.reject(new Error('disk on fire'))
      : orig(ops, ...rest);
  const [c] = await st.applyBatch([{ index: ++i, request: { compaction: { revision: st.currentRevision() } } }], { acknowledge: 'applied' });
  (c as { physical?: Promise<unknown> }).physical?.catch(() => undefined);
  await assert.rejects(st.snapshot(), (e: unknown) => isQuorumError(e, ErrorCode.STORAGE_IO));
});

test("a server snapshot whose store part is refused leaves the server's alarms as they were", async () => {
  const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
  const store = await MvccStore.open(db.sublevel('mvcc') as never);
  const serverDb = db.sublevel('server');
  const sm = await KvStateMachine.open(store, serverDb as never);
  sm.attach({ voters: () => ['m1'], keepAliveApplied() {}, keepAliveAnswered() {}, hashCheckApplied() {}, alarmsChanged() {}, storeBatchApplied() {} } as never);
  await sm.apply([{ index: 1, term: 1, kind: 'normal', data: encodeAlarmEntry({ action: 'activate', memberId: 'm1', alarm: 'NOSPACE' }) }] as never);
  const alarms = JSON.stringify(sm.alarms.list());
  const storeSnap = withCrc(pack([2, 10, 5, -1, 0, [], []])); // another format version
  const snap = withCrc(pack(['quorumkv/kv-state', 1, [[], []], storeSnap]));
  await assert.rejects(sm.restore({ data: snap, index: 10, term: 2 } as never), (e: unknown) => isQuorumError(e, ErrorCode.CORRUPT_SNAPSHOT));
  assert.equal(JSON.stringify(sm.alarms.list()), alarms);
  const reopened = await KvStateMachine.open(store, serverDb as never);
  assert.equal(JSON.stringify(reopened.alarms.list()), alarms);
});

test('readTxn reads its compares and its ranges at one revision while a batch is applied', async () => {
  const store = await MvccStore.open(new MemoryLevel().sublevel('mvcc'));
  await store.apply(1, { put: { key: b('a'), value: b('old') } }); // rev 2
  const applying = store.applyBatch([
    { index: 2, request: { put: { key: b('x'), value: b('1') } } },
    { index: 3, request: { put: { key: b('a'), value: b('new') } } },
  ]);
  await Promise.resolve(); // the first entry of the batch has run
  const t = await store.readTxn({
    compare: [{ key: b('a'), target: 'VALUE', result: 'EQUAL', value: b('old') }],
    success: [{ requestRange: { key: b('a') } }],
    failure: [{ requestRange: { key: b('a') } }],
  });
  await applying;
  const seen = s((t.responses[0] as { responseRange: { kvs: { value: Uint8Array }[] } }).responseRange.kvs[0]!.value);
  assert.equal(t.succeeded, seen === 'old', `compare a == "old" ${t.succeeded}, range read ${seen} at ${t.header.revision}`);
  await store.close();
});
