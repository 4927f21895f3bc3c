// Put and delete-range (etcd's PutRequest/DeleteRangeRequest), revision
// accounting (what advances the revision and what does not), request checks
// and the apply interface (skipped indexes, failed entries, no-op entries).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RANGE_END_ALL } from '../../src/mvccpb/index.js';
import { b, del, detachedView, kvStr, openStore, proxiedView, put, shrunkView } from './helpers.js';

test('a fresh store is at revision 1 and every put advances it by one', async () => {
  const t = await openStore();
  assert.equal(t.store.currentRevision(), 1);
  assert.equal((await t.store.range({ key: b('x') })).header.revision, 1);
  assert.equal((await put(t, 'a', '1')).header.revision, 2);
  assert.equal((await put(t, 'b', '1')).header.revision, 3);
  assert.equal((await put(t, 'a', '2')).header.revision, 4);
  assert.equal(t.store.currentRevision(), 4);
});

test('versions count modifications since creation; a delete restarts them', async () => {
  const t = await openStore();
  await put(t, 'k', '1'); // 2
  await put(t, 'k', '2'); // 3
  assert.deepEqual((await t.store.range({ key: b('k') })).kvs.map(kvStr), ['k=2@2/3/2']);
  await del(t, 'k'); // 4
  await put(t, 'k', '3'); // 5
  assert.deepEqual((await t.store.range({ key: b('k') })).kvs.map(kvStr), ['k=3@5/5/1']);
});

test('no-op writes do not advance the revision', async () => {
  const t = await openStore();
  await put(t, 'a', '1'); // rev 2
  const cases: { name: string; req: Parameters<typeof t.write>[0] }[] = [
    { name: 'delete of a missing key', req: { deleteRange: { key: b('zz') } } },
    { name: 'delete of an empty range', req: { deleteRange: { key: b('b'), rangeEnd: b('c') } } },
    { name: 'read-only txn', req: { txn: { success: [{ requestRange: { key: b('a') } }] } } },
    { name: 'txn deleting nothing', req: { txn: { success: [{ requestDeleteRange: { key: b('q') } }] } } },
    { name: 'empty txn', req: { txn: {} } },
    { name: 'lease grant', req: { leaseGrant: { ttl: 10 } } },
  ];
  for (const c of cases) {
    const r = await t.write(c.req);
    const rev = Object.values(r)[0].header.revision;
    assert.equal(rev, 2, `${c.name}: header revision`);
    assert.equal(t.store.currentRevision(), 2, `${c.name}: store revision`);
  }
  const lease = (await t.store.leaseLeases()).leases[0]!.id;
  await t.write({ leaseRevoke: { id: lease } }); // no keys attached
  assert.equal(t.store.currentRevision(), 2, 'revoking a lease without keys');
});

test('put with prevKv returns the previous version, or nothing for a new key', async () => {
  const t = await openStore();
  assert.equal((await put(t, 'a', '1', { prevKv: true })).prevKv, undefined);
  assert.equal(kvStr((await put(t, 'a', '2', { prevKv: true })).prevKv), 'a=1@2/2/1');
  assert.equal((await put(t, 'a', '3')).prevKv, undefined);
});

test('ignoreValue and ignoreLease keep the current value and lease; a put without them drops the lease', async () => {
  const t = await openStore();
  const g = await t.write({ leaseGrant: { ttl: 30 } });
  const lease = 'leaseGrant' in g ? g.leaseGrant.id : 0;
  const get = async () => (await t.store.range({ key: b('k') })).kvs.map(kvStr);
  await put(t, 'k', 'v1', { lease });
  await t.write({ put: { key: b('k'), ignoreValue: true, ignoreLease: true } });
  assert.deepEqual(await get(), [`k=v1@2/3/2/L${lease}`]);
  await t.write({ put: { key: b('k'), value: b('v2'), ignoreLease: true } });
  assert.deepEqual(await get(), [`k=v2@2/4/3/L${lease}`]);
  await t.write({ put: { key: b('k'), ignoreValue: true } });
  assert.deepEqual(await get(), ['k=v2@2/5/4'], 'ignoreValue alone puts lease 0');
  assert.deepEqual(t.store.leaseTimeToLive({ id: lease, keys: true }).keys, []);
});

test('write errors change nothing but the applied index', async () => {
  const t = await openStore();
  await put(t, 'a', '1');
  const cases: { name: string; req: Parameters<typeof t.write>[0]; code: string }[] = [
    { name: 'ignoreValue on a missing key', req: { put: { key: b('zz'), ignoreValue: true } }, code: 'QUORUMKV_KEY_NOT_FOUND' },
    { name: 'ignoreLease on a missing key', req: { put: { key: b('zz'), value: b('x'), ignoreLease: true } }, code: 'QUORUMKV_KEY_NOT_FOUND' },
    { name: 'ignoreValue with a value', req: { put: { key: b('a'), value: b('x'), ignoreValue: true } }, code: 'QUORUMKV_INVALID_ARGUMENT' },
    { name: 'ignoreLease with a lease', req: { put: { key: b('a'), lease: 5, ignoreLease: true } }, code: 'QUORUMKV_INVALID_ARGUMENT' },
    { name: 'unknown lease', req: { put: { key: b('a'), value: b('x'), lease: 12345 } }, code: 'QUORUMKV_LEASE_NOT_FOUND' },
    { name: 'empty key', req: { put: { key: new Uint8Array(0), value: b('x') } }, code: 'QUORUMKV_INVALID_ARGUMENT' },
    { name: 'empty delete key', req: { deleteRange: { key: new Uint8Array(0) } }, code: 'QUORUMKV_INVALID_ARGUMENT' },
    // parts of a txn that are not objects failed the store (QUORUMKV_INTERNAL) for good
    { name: 'txn with a null range', req: { txn: { success: [{ requestRange: null as never }] } }, code: 'QUORUMKV_INVALID_ARGUMENT' },
    { name: 'txn with a null put', req: { txn: { success: [{ requestPut: null as never }] } }, code: 'QUORUMKV_INVALID_ARGUMENT' },
    { name: 'txn with a null nested txn', req: { txn: { failure: [{ requestTxn: null as never }] } }, code: 'QUORUMKV_INVALID_ARGUMENT' },
    { name: 'txn with a null compare', req: { txn: { compare: [null as never] } }, code: 'QUORUMKV_INVALID_ARGUMENT' },
  ];
  for (const c of cases) {
    const before = t.store.appliedIndex();
    const hashBefore = (await t.store.hash()).hash;
    const r = await t.store.apply(before + 1, c.req);
    assert.equal(r.status, 'failed', c.name);
    assert.equal(r.status === 'failed' && r.error.code, c.code, c.name);
    assert.equal(t.store.appliedIndex(), before + 1, `${c.name}: the entry is consumed`);
    assert.equal((await t.store.hash()).hash, hashBefore, `${c.name}: state unchanged`);
    assert.equal(t.store.currentRevision(), 2, `${c.name}: revision unchanged`);
  }
});

test('delete-range deletes a key, a range, everything from a key, and returns prevKvs', async () => {
  const t = await openStore();
  for (const k of ['a', 'b', 'c', 'd', 'e']) await put(t, k, k.toUpperCase()); // revs 2..6
  const one = await del(t, 'a', undefined, true);
  assert.deepEqual([one.deleted, one.header.revision, one.prevKvs.map(kvStr)], [1, 7, ['a=A@2/2/1']]);
  const range = await del(t, 'b', 'd', true);
  assert.deepEqual([range.deleted, range.header.revision, range.prevKvs.map(kvStr)], [2, 8, ['b=B@3/3/1', 'c=C@4/4/1']]);
  const noPrev = await del(t, 'd', 'e');
  assert.deepEqual([noPrev.deleted, noPrev.prevKvs.length], [1, 0]);
  await put(t, 'x', '1'); // 10
  const fromKey = await t.write({ deleteRange: { key: b('e'), rangeEnd: RANGE_END_ALL } });
  assert.ok('deleteRange' in fromKey);
  assert.deepEqual([fromKey.deleteRange.deleted, fromKey.deleteRange.header.revision], [2, 11]);
  assert.equal((await t.store.range({ key: RANGE_END_ALL, rangeEnd: RANGE_END_ALL })).count, 0);
  // the history is still there
  assert.deepEqual((await t.store.range({ key: b('a'), rangeEnd: b('z'), revision: 6 })).kvs.length, 5);
});

test('entries at or below the applied index are skipped; indexes must increase', async () => {
  const t = await openStore();
  assert.equal((await t.store.apply(5, { put: { key: b('a'), value: b('1') } })).status, 'applied');
  assert.equal(t.store.appliedIndex(), 5);
  assert.equal((await t.store.apply(5, { put: { key: b('a'), value: b('2') } })).status, 'skipped');
  assert.equal((await t.store.apply(3, { put: { key: b('a'), value: b('3') } })).status, 'skipped');
  assert.deepEqual((await t.store.range({ key: b('a') })).kvs.map(kvStr), ['a=1@2/2/1']);
  const rs = await t.store.applyBatch([
    { index: 5, request: { put: { key: b('a'), value: b('x') } } },
    { index: 6, request: null },
    { index: 8, request: { put: { key: b('a'), value: b('4') } } },
  ]);
  assert.deepEqual(rs.map((r) => r.status), ['skipped', 'noop', 'applied']);
  assert.equal(t.store.appliedIndex(), 8);
  await assert.rejects(
    t.store.applyBatch([
      { index: 10, request: null },
      { index: 9, request: null },
    ]),
    { code: 'QUORUMKV_INVALID_ARGUMENT' },
  );
  assert.equal(t.store.appliedIndex(), 8);
});

test('an entry index that is not a safe integer (NaN, Infinity, 2.5) is refused and applies nothing; the store still reopens', async () => {
  // NaN and Infinity passed the order checks: the put was applied, the
  // applied index became NaN or Infinity, and with Infinity saved the store
  // no longer opened (QUORUMKV_CORRUPT_SNAPSHOT)
  const t = await openStore();
  await put(t, 'a', '1');
  for (const index of [Number.NaN, Number.POSITIVE_INFINITY, 2.5, 2 ** 53]) {
    await assert.rejects(t.store.applyBatch([{ index, request: { put: { key: b('a'), value: b('bad') } } }]), { code: 'QUORUMKV_INVALID_ARGUMENT' }, String(index));
    await assert.rejects(
      t.store.applyBatch([
        { index: 5, request: { put: { key: b('a'), value: b('bad') } } },
        { index, request: null },
      ]),
      { code: 'QUORUMKV_INVALID_ARGUMENT' },
      `${index} after a good one`,
    );
  }
  assert.equal(t.store.appliedIndex(), 1);
  assert.equal(t.store.currentRevision(), 2);
  assert.deepEqual((await t.store.range({ key: b('a') })).kvs.map(kvStr), ['a=1@2/2/1']);
  await t.store.close();
  const again = await openStore({}, t.db);
  assert.equal(again.store.appliedIndex(), 1);
  assert.deepEqual((await again.store.range({ key: b('a') })).kvs.map(kvStr), ['a=1@2/2/1']);
  await again.store.close();
});

test('applyBatch refuses entries that are not an array of objects, and bad options, with QUORUMKV_INVALID_ARGUMENT; the store goes on', async () => {
  const t = await openStore();
  await put(t, 'a', '1');
  const ok = { index: 2, request: { put: { key: b('a'), value: b('bad') } } };
  // these threw a raw TypeError (options null: synchronously, out of applyBatch)
  const calls: [string, () => Promise<unknown>][] = [
    ['entries null', () => t.store.applyBatch(null as never)],
    ['entries {}', () => t.store.applyBatch({} as never)],
    ['a null entry', () => t.store.applyBatch([ok, null as never])],
    ['options null', () => t.store.applyBatch([ok], null as never)],
    // a misspelt acknowledge was taken as 'written'
    ["acknowledge 'apply'", () => t.store.applyBatch([ok], { acknowledge: 'apply' as never })],
  ];
  for (const [name, call] of calls) {
    let p: Promise<unknown> | undefined;
    assert.doesNotThrow(() => (p = call()), name);
    await assert.rejects(p!, { name: 'UsageError', code: 'QUORUMKV_INVALID_ARGUMENT' }, name);
  }
  assert.equal(t.store.appliedIndex(), 1);
  assert.deepEqual((await t.store.range({ key: b('a') })).kvs.map(kvStr), ['a=1@2/2/1']);
  assert.equal((await put(t, 'a', '2')).header.revision, 3, 'the store goes on');
});

test('returned key-values cannot be reassigned (they are shared with the store)', async () => {
  const t = await openStore();
  await put(t, 'a', '1');
  const kv = (await t.store.range({ key: b('a') })).kvs[0]!;
  assert.throws(() => {
    (kv as { version: number }).version = 99;
  }, TypeError);
});

test('an entry whose request is neither a write request nor null (undefined, a number, a string) is refused and applies nothing', async () => {
  const t = await openStore();
  await put(t, 'a', '1');
  const index = t.store.appliedIndex();
  const revision = t.store.currentRevision();
  for (const request of [undefined, 5, 'put', true]) {
    await assert.rejects(t.store.apply(index + 1, request as never), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `apply(i, ${String(request)})`);
    await assert.rejects(
      t.store.applyBatch([
        { index: index + 1, request: { put: { key: b('a'), value: b('2') } } },
        { index: index + 2, request: request as never },
      ]),
      { code: 'QUORUMKV_INVALID_ARGUMENT' },
      `applyBatch([put, ${String(request)}])`,
    );
    assert.equal(t.store.appliedIndex(), index, 'the applied index did not move');
    assert.equal(t.store.currentRevision(), revision, 'nothing was written');
  }
  assert.deepEqual((await t.store.range({ key: b('a') })).kvs.map(kvStr), ['a=1@2/2/1']);
  // null is the documented entry without a write
  assert.equal((await t.store.apply(index + 1, null)).status, 'noop');
  assert.equal(t.store.appliedIndex(), index + 1);
  await t.store.close();
});

test('readView refuses an fn that is not a function with QUORUMKV_INVALID_ARGUMENT, and the store goes on', async () => {
  const t = await openStore();
  await put(t, 'a', '1');
  for (const fn of [undefined, null, 5, 'fn', {}]) {
    await assert.rejects(t.store.readView(fn as never), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `readView(${String(fn)})`);
  }
  await put(t, 'a', '2');
  assert.equal(await t.store.readView(async (v) => v.revision), 3);
  await t.store.close();
});

test('a malformed field the check names in its message is refused as any other, whatever its value: an object without a prototype, a Symbol or a toString that throws', async () => {
  // before: the message was made with String(value), which threw a
  // TypeError on an object without a prototype (or ran the caller's
  // toString); thrown while an entry was applied, it failed the store,
  // which then refused every call with QUORUMKV_INTERNAL
  const t = await openStore();
  await put(t, 'k', '1');
  const odd: unknown[] = [Object.create(null), Symbol('s'), { toString: () => { throw new Error('toString ran'); } }, 10n];
  for (const v of odd) {
    const what = typeof v === 'symbol' ? 'a Symbol' : typeof v;
    const r = await t.store.apply(t.takeIndex(), { put: { key: b('k'), value: b('2'), lease: v as number } });
    assert.equal(r.status === 'failed' && r.error.code, 'QUORUMKV_INVALID_ARGUMENT', `a put with lease ${what}`);
    await assert.rejects(t.store.range({ key: b('k'), sortOrder: v as 'NONE' }), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `sortOrder ${what}`);
    assert.throws(() => t.store.watch({ key: b('k'), filters: [v as 'NOPUT'] }), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `a filter ${what}`);
    assert.throws(() => t.store.leaseTimeToLive({ id: v as number }), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `a lease id ${what}`);
    await assert.rejects(t.store.hash(v as number), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `a hash revision ${what}`);
    await assert.rejects(t.store.apply(v as number, null), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `an index ${what}`);
  }
  assert.deepEqual((await t.store.range({ key: b('k') })).kvs.map(kvStr), ['k=1@2/2/1']);
  await put(t, 'k', '3');
  assert.equal(t.store.currentRevision(), 3);
});

test('bytes that are a view of a detached ArrayBuffer are refused with QUORUMKV_INVALID_ARGUMENT, and the store goes on', async () => {
  // before: such a value (its length reads 0) threw a TypeError when the
  // put was applied, which failed the store for good (QUORUMKV_INTERNAL)
  const t = await openStore();
  await put(t, 'k', '1');
  const refused: [string, () => Promise<{ status: string; error?: { code: string } }>][] = [
    ['a put value', () => t.store.apply(t.takeIndex(), { put: { key: b('k'), value: detachedView() } })],
    ['a delete range end', () => t.store.apply(t.takeIndex(), { deleteRange: { key: b('k'), rangeEnd: detachedView() } })],
    ['a compare value', () => t.store.apply(t.takeIndex(), { txn: { compare: [{ key: b('k'), target: 'VALUE', result: 'EQUAL', value: detachedView() }], success: [{ requestPut: { key: b('k'), value: b('2') } }] } })],
  ];
  for (const [what, call] of refused) {
    const r = await call();
    assert.equal(r.status === 'failed' && r.error?.code, 'QUORUMKV_INVALID_ARGUMENT', what);
  }
  await assert.rejects(t.store.range({ key: b('k'), rangeEnd: detachedView() }), { code: 'QUORUMKV_INVALID_ARGUMENT' }, 'a range end');
  assert.throws(() => t.store.watch({ key: detachedView() }), { code: 'QUORUMKV_INVALID_ARGUMENT' }, 'a watch key');
  assert.throws(() => t.store.watch({ key: b('k'), rangeEnd: detachedView() }), { code: 'QUORUMKV_INVALID_ARGUMENT' }, 'a watch range end');
  assert.deepEqual((await t.store.range({ key: b('k') })).kvs.map(kvStr), ['k=1@2/2/1']);
  await put(t, 'k', '3');
  assert.equal(t.store.currentRevision(), 3);
});

test('a request whose getter or proxy trap throws when checked is answered failed with QUORUMKV_INVALID_ARGUMENT, and the store goes on', async () => {
  // before: the error thrown while the request was checked failed the store
  // for good (QUORUMKV_INTERNAL: every later call refused), though nothing had changed
  const t = await openStore();
  await put(t, 'k', '1');
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  const unreadable: [string, unknown][] = [
    [
      'a put whose value getter throws',
      {
        put: {
          key: b('k'),
          get value(): Uint8Array {
            throw new Error('getter threw');
          },
        },
      },
    ],
    ['a revoked proxy as put', { put: revoked.proxy }],
    ['a revoked proxy as request', revoked.proxy],
  ];
  for (const [what, request] of unreadable) {
    const r = await t.store.apply(t.takeIndex(), request as never);
    assert.equal(r.status === 'failed' && r.error.code, 'QUORUMKV_INVALID_ARGUMENT', what);
  }
  assert.deepEqual((await t.store.range({ key: b('k') })).kvs.map(kvStr), ['k=1@2/2/1']);
  await put(t, 'k', '3');
  assert.equal(t.store.currentRevision(), 3);
});

test('hash refuses a withLeases that is not a boolean with QUORUMKV_INVALID_ARGUMENT; true, false and left out hash as before', async () => {
  // before: anything but false hashed the leases ('no' and 0 included)
  const t = await openStore();
  await put(t, 'k', '1');
  const granted = await t.store.apply(t.takeIndex(), { leaseGrant: { ttl: 60 } });
  assert.equal(granted.status, 'applied');
  const withLeases = await t.store.hash(0);
  const without = await t.store.hash(0, { withLeases: false });
  assert.notEqual(withLeases.hash, without.hash, 'the lease table is hashed');
  assert.deepEqual(await t.store.hash(0, { withLeases: true }), withLeases);
  assert.deepEqual(await t.store.hash(0, {}), withLeases);
  assert.deepEqual(await t.store.hash(0, { withLeases: undefined }), withLeases);
  for (const bad of ['no', 'false', 0, 1, null, Symbol('s'), Object.create(null), { toString: () => { throw new Error('toString ran'); } }, 5n]) {
    const what = typeof bad === 'symbol' ? 'a Symbol' : typeof bad === 'object' && bad !== null ? 'an object' : `${typeof bad} ${String(bad)}`;
    await assert.rejects(t.store.hash(0, { withLeases: bad as boolean }), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `withLeases ${what}`);
  }
  await t.store.close();
});

test('bytes that are a view out of the bounds of a shrunk resizable ArrayBuffer are refused with QUORUMKV_INVALID_ARGUMENT, as a detached one', async () => {
  // before: its length reads 0 (copying it throws a TypeError, as from a
  // detached view), so a put stored an empty value, a delete with it as range
  // end deleted the single key and a compare compared the empty value
  const t = await openStore();
  await put(t, 'k', '1');
  const refused: [string, () => Promise<{ status: string; error?: { code: string } }>][] = [
    ['a put value', () => t.store.apply(t.takeIndex(), { put: { key: b('k'), value: shrunkView() } })],
    ['a delete range end', () => t.store.apply(t.takeIndex(), { deleteRange: { key: b('k'), rangeEnd: shrunkView() } })],
    ['a compare value', () => t.store.apply(t.takeIndex(), { txn: { compare: [{ key: b('k'), target: 'VALUE', result: 'EQUAL', value: shrunkView() }], success: [{ requestPut: { key: b('k'), value: b('2') } }] } })],
  ];
  for (const [what, call] of refused) {
    const r = await call();
    assert.equal(r.status === 'failed' && r.error?.code, 'QUORUMKV_INVALID_ARGUMENT', what);
  }
  await assert.rejects(t.store.range({ key: b('k'), rangeEnd: shrunkView() }), { code: 'QUORUMKV_INVALID_ARGUMENT' }, 'a range end');
  assert.throws(() => t.store.watch({ key: shrunkView() }), { code: 'QUORUMKV_INVALID_ARGUMENT' }, 'a watch key');
  assert.throws(() => t.store.watch({ key: b('k'), rangeEnd: shrunkView() }), { code: 'QUORUMKV_INVALID_ARGUMENT' }, 'a watch range end');
  assert.deepEqual((await t.store.range({ key: b('k') })).kvs.map(kvStr), ['k=1@2/2/1']);
});

test('a key, value or range end that is a Proxy of a Uint8Array is refused with QUORUMKV_INVALID_ARGUMENT, and nothing changes', async () => {
  // before: it passes instanceof Uint8Array, then reading its byteLength
  // threw a raw TypeError from range and watch, and an applied put failed
  // with the TypeError's message
  const t = await openStore();
  await put(t, 'k', '1');
  const refused: [string, () => Promise<{ status: string; error?: { code: string; message: string } }>][] = [
    ['a put key', () => t.store.apply(t.takeIndex(), { put: { key: proxiedView(), value: b('2') } })],
    ['a put value', () => t.store.apply(t.takeIndex(), { put: { key: b('k'), value: proxiedView() } })],
    ['a delete range end', () => t.store.apply(t.takeIndex(), { deleteRange: { key: b('a'), rangeEnd: proxiedView() } })],
    ['a compare value', () => t.store.apply(t.takeIndex(), { txn: { compare: [{ key: b('k'), target: 'VALUE', result: 'EQUAL', value: proxiedView() }], success: [{ requestPut: { key: b('k'), value: b('2') } }] } })],
  ];
  for (const [what, call] of refused) {
    const r = await call();
    assert.equal(r.status === 'failed' && r.error?.code, 'QUORUMKV_INVALID_ARGUMENT', what);
    assert.match(r.status === 'failed' ? r.error!.message : '', /is not a Uint8Array itself \(a Proxy of one/, what);
  }
  await assert.rejects(t.store.range({ key: proxiedView() }), { code: 'QUORUMKV_INVALID_ARGUMENT' }, 'a range key');
  await assert.rejects(t.store.range({ key: b('a'), rangeEnd: proxiedView() }), { code: 'QUORUMKV_INVALID_ARGUMENT' }, 'a range end');
  assert.throws(() => t.store.watch({ key: proxiedView() }), { code: 'QUORUMKV_INVALID_ARGUMENT' }, 'a watch key');
  assert.throws(() => t.store.watch({ key: b('k'), rangeEnd: proxiedView() }), { code: 'QUORUMKV_INVALID_ARGUMENT' }, 'a watch range end');
  assert.deepEqual((await t.store.range({ key: b('k') })).kvs.map(kvStr), ['k=1@2/2/1']);
  assert.equal(t.store.currentRevision(), 2);
  await put(t, 'k', '3');
  assert.equal(t.store.currentRevision(), 3);
});
