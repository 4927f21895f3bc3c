// Leases through the store: grant/revoke/time-to-live/list as write requests
// and reads, keys attached by puts, revoke deleting keys in one revision in
// ascending order, lease state across reopen and snapshot, and the
// leader-side expiry flow (lessor decides, a revoke entry deletes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLevel } from 'memory-level';
import { MvccStore } from '../../src/mvcc/index.js';
import { RANGE_END_ALL } from '../../src/mvccpb/index.js';
import { b, kvStr, openStore, put, s, type TestStore } from '../mvcc/helpers.js';

async function grant(t: TestStore, ttl: number, id?: number): Promise<number> {
  const r = await t.write({ leaseGrant: { ttl, id } });
  assert.ok('leaseGrant' in r);
  return r.leaseGrant.id;
}

test('lease grant answers with the id and the TTL raised to the minimum', async () => {
  const t = await openStore({ minLeaseTtl: 3 });
  const r = await t.write({ leaseGrant: { ttl: 1 } });
  assert.ok('leaseGrant' in r);
  assert.deepEqual([r.leaseGrant.id, r.leaseGrant.ttl, r.leaseGrant.header.revision], [1, 3, 1]);
  assert.equal(await grant(t, 10), 2);
  const dup = await t.store.apply(t.takeIndex(), { leaseGrant: { ttl: 10, id: 2 } });
  assert.equal(dup.status === 'failed' && dup.error.code, 'QUORUMKV_LEASE_EXISTS');
  const big = await t.store.apply(t.takeIndex(), { leaseGrant: { ttl: 9_000_000_001 } });
  assert.equal(big.status === 'failed' && big.error.code, 'QUORUMKV_INVALID_ARGUMENT');
  assert.deepEqual(t.store.leaseLeases().leases, [{ id: 1 }, { id: 2 }]);
});

test('revoking a lease deletes its keys in one revision, in ascending key order', async () => {
  const t = await openStore();
  const l1 = await grant(t, 60);
  const l2 = await grant(t, 60);
  for (const k of ['c', 'a', 'b']) await put(t, k, '1', { lease: l1 }); // revs 2..4
  await put(t, 'x', '1', { lease: l2 }); // 5
  await put(t, 'b', '2', { lease: l2 }); // 6: b moves to l2
  assert.deepEqual(t.store.leaseTimeToLive({ id: l1, keys: true }).keys.map(s), ['a', 'c']);
  const w = t.store.watch({ key: RANGE_END_ALL, rangeEnd: RANGE_END_ALL });
  const r = await t.write({ leaseRevoke: { id: l1 } });
  assert.ok('leaseRevoke' in r);
  assert.equal(r.leaseRevoke.header.revision, 7);
  const resp = await w.next();
  assert.equal(resp.done, false);
  assert.deepEqual(
    resp.value!.events.map((e) => `${e.type} ${s(e.kv.key)}@${e.kv.modRevision}`),
    ['DELETE a@7', 'DELETE c@7'],
  );
  assert.deepEqual((await t.store.range({ key: RANGE_END_ALL, rangeEnd: RANGE_END_ALL })).kvs.map(kvStr), [
    `b=2@4/6/2/L${l2}`,
    `x=1@5/5/1/L${l2}`,
  ]);
  assert.deepEqual(t.store.leaseTimeToLive({ id: l1 }), { header: { revision: 7 }, id: l1, ttl: -1, grantedTtl: 0, keys: [] });
  const again = await t.store.apply(t.takeIndex(), { leaseRevoke: { id: l1 } });
  assert.equal(again.status === 'failed' && again.error.code, 'QUORUMKV_LEASE_NOT_FOUND');
  // deleting a key detaches it
  await t.write({ deleteRange: { key: b('x') } });
  assert.deepEqual(t.store.leaseTimeToLive({ id: l2, keys: true }).keys.map(s), ['b']);
  await w.cancel();
});

test('a put with a revoked lease fails', async () => {
  const t = await openStore();
  const l = await grant(t, 60);
  await t.write({ leaseRevoke: { id: l } });
  const r = await t.store.apply(t.takeIndex(), { put: { key: b('k'), value: b('v'), lease: l } });
  assert.equal(r.status === 'failed' && r.error.code, 'QUORUMKV_LEASE_NOT_FOUND');
});

test('leases, their keys and the id counter survive a reopen and a snapshot', async () => {
  const db = new MemoryLevel<string, string>();
  const t = await openStore({}, db);
  const l1 = await grant(t, 30);
  const l2 = await grant(t, 40);
  await grant(t, 50, 1000);
  await put(t, 'a', '1', { lease: l1 });
  await put(t, 'b', '1', { lease: l2 });
  await t.write({ leaseRevoke: { id: 1000 } });
  await t.store.close();
  const re = await openStore({}, db);
  const view = (st: MvccStore) => [st.leaseLeases().leases, st.leaseTimeToLive({ id: l1, keys: true }), st.leaseTimeToLive({ id: l2, keys: true })];
  assert.deepEqual(view(re.store)[0], [{ id: l1 }, { id: l2 }]);
  assert.deepEqual(
    (view(re.store)[1] as { keys: Uint8Array[]; grantedTtl: number }).keys.map(s),
    ['a'],
  );
  assert.equal(await grant(re, 10), 1001, 'automatic ids continue after the largest ever granted');
  const snapTarget = await openStore();
  await snapTarget.store.restore(await re.store.snapshot());
  assert.deepEqual(view(snapTarget.store), view(re.store));
  assert.equal(await grant(snapTarget, 10), 1002);
});

test('the leader lessor reports expired leases; their revoke entries delete the keys', async () => {
  let now = 0;
  const t = await openStore({ now: () => now });
  const l = await grant(t, 5);
  await put(t, 'session', 'x', { lease: l });
  t.store.lessor.promote();
  now += 4000;
  assert.deepEqual(t.store.leaseKeepAlive(l), { header: { revision: 2 }, id: l, ttl: 5 });
  assert.equal(t.store.leaseTimeToLive({ id: l }).ttl, 5);
  now += 4000;
  assert.deepEqual(t.store.lessor.expired(), []);
  now += 1001;
  const expired = t.store.lessor.expired();
  assert.deepEqual(expired, [l]);
  for (const id of expired) await t.write({ leaseRevoke: { id } });
  assert.equal((await t.store.range({ key: b('session') })).count, 0);
  assert.deepEqual(t.store.leaseLeases().leases, []);
});

test('keep-alive on a member that is not the leader is refused', async () => {
  const t = await openStore();
  const l = await grant(t, 5);
  assert.throws(() => t.store.leaseKeepAlive(l), { code: 'QUORUMKV_NOT_LEADER' });
});

test('after an explicit id of 2^53 - 1, automatic ids take the lowest free one, and the store reopens', async () => {
  // before: the next automatic id was 2^53 (not a safe integer: no request
  // could name it), the one after it the same number again, and the stored
  // id counter made the store fail to reopen
  const db = new MemoryLevel<string, string>();
  const t = await openStore({}, db);
  assert.equal(await grant(t, 60, Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER);
  assert.equal(await grant(t, 60, 2), 2);
  const autos = [await grant(t, 60), await grant(t, 60), await grant(t, 60)];
  assert.deepEqual(autos, [1, 3, 4], 'the lowest ids no lease holds');
  for (const id of autos) await put(t, `k${id}`, 'v', { lease: id });
  await t.store.close();
  const re = await openStore({}, db);
  assert.deepEqual(
    re.store.leaseLeases().leases.map((l) => l.id),
    [1, 2, 3, 4, Number.MAX_SAFE_INTEGER],
  );
  assert.equal(await grant(re, 60), 5);
});

test('lease time-to-live and keep-alive refuse a malformed request or id with QUORUMKV_INVALID_ARGUMENT, and renew nothing', async () => {
  let now = 0;
  const t = await openStore({ now: () => now });
  const l = await grant(t, 10);
  const bad: [string, () => unknown][] = [
    ['time-to-live of null', () => t.store.leaseTimeToLive(null as never)],
    ['time-to-live without a request', () => t.store.leaseTimeToLive(undefined as never)],
    ['time-to-live without an id', () => t.store.leaseTimeToLive({} as never)],
    ['time-to-live of a string id', () => t.store.leaseTimeToLive({ id: String(l) as never })],
    ['time-to-live of a fractional id', () => t.store.leaseTimeToLive({ id: 1.5 })],
    ['time-to-live of an id past 2^53', () => t.store.leaseTimeToLive({ id: 2 ** 64 })],
    ['time-to-live with keys "yes"', () => t.store.leaseTimeToLive({ id: l, keys: 'yes' as never })],
  ];
  for (const [name, call] of bad) assert.throws(call, { code: 'QUORUMKV_INVALID_ARGUMENT' }, name);
  t.store.lessor.promote();
  now = 9000;
  for (const id of [String(l), 1.5, Number.NaN, undefined]) {
    assert.throws(() => t.store.leaseKeepAlive(id as never), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `keep-alive of ${String(id)}`);
  }
  assert.equal(t.store.leaseTimeToLive({ id: l }).ttl, 1, 'not renewed');
  // good requests as before: an unknown id is not an error
  assert.equal(t.store.leaseTimeToLive({ id: -5 }).ttl, -1);
  assert.throws(() => t.store.leaseKeepAlive(-5), { code: 'QUORUMKV_LEASE_NOT_FOUND' });
  assert.equal(t.store.leaseKeepAlive(l).ttl, 10);
});
