// Range reads (etcd's RangeRequest): single key, ranges, prefixes, "from key"
// and "all keys" range ends; limit/count/more; sort orders and targets with
// ties; keysOnly/countOnly; min/max mod and create revision filters; reads at
// a past revision. Expectations follow etcd 3.4 (see ETCD-SEMANTICS).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prefixEnd, RANGE_END_ALL, type RangeRequest } from '../../src/mvccpb/index.js';
import { b, kvStr, openStore, put, s, type TestStore } from './helpers.js';

/**
 * a=v3@2, b=v1@3, c=v2@4, d=v1@5, e=v3@6, b=v2@7, ab=x@8.
 * Final: a=v3 (c2 m2 v1), ab=x (c8 m8 v1), b=v2 (c3 m7 v2), c=v2 (c4 m4),
 * d=v1 (c5 m5), e=v3 (c6 m6).
 */
async function fixture(): Promise<TestStore> {
  const t = await openStore();
  for (const [k, v] of [['a', 'v3'], ['b', 'v1'], ['c', 'v2'], ['d', 'v1'], ['e', 'v3'], ['b', 'v2'], ['ab', 'x']] as const) {
    await put(t, k, v);
  }
  return t;
}

const ALL = { key: RANGE_END_ALL, rangeEnd: RANGE_END_ALL };

test('range options select, sort, filter and limit as etcd does', async () => {
  const t = await fixture();
  const cases: { name: string; req: RangeRequest; wantKeys: string[]; wantCount: number; wantMore?: boolean }[] = [
    { name: 'one key', req: { key: b('a') }, wantKeys: ['a'], wantCount: 1 },
    { name: 'missing key', req: { key: b('zz') }, wantKeys: [], wantCount: 0 },
    { name: 'empty range end = one key', req: { key: b('a'), rangeEnd: new Uint8Array(0) }, wantKeys: ['a'], wantCount: 1 },
    { name: '[a, c)', req: { key: b('a'), rangeEnd: b('c') }, wantKeys: ['a', 'ab', 'b'], wantCount: 3 },
    { name: 'prefix a', req: { key: b('a'), rangeEnd: prefixEnd('a') }, wantKeys: ['a', 'ab'], wantCount: 2 },
    { name: 'from c (range end \\0)', req: { key: b('c'), rangeEnd: RANGE_END_ALL }, wantKeys: ['c', 'd', 'e'], wantCount: 3 },
    { name: 'all keys', req: ALL, wantKeys: ['a', 'ab', 'b', 'c', 'd', 'e'], wantCount: 6 },
    { name: 'range end below key: nothing', req: { key: b('c'), rangeEnd: b('a') }, wantKeys: [], wantCount: 0 },
    { name: 'range end equal to key: nothing', req: { key: b('c'), rangeEnd: b('c') }, wantKeys: [], wantCount: 0 },
    { name: 'limit 2: count ignores limit, more', req: { ...ALL, limit: 2 }, wantKeys: ['a', 'ab'], wantCount: 6, wantMore: true },
    { name: 'limit = size: no more', req: { ...ALL, limit: 6 }, wantKeys: ['a', 'ab', 'b', 'c', 'd', 'e'], wantCount: 6, wantMore: false },
    { name: 'limit 0 = no limit', req: { ...ALL, limit: 0 }, wantKeys: ['a', 'ab', 'b', 'c', 'd', 'e'], wantCount: 6 },
    { name: 'countOnly', req: { ...ALL, countOnly: true }, wantKeys: [], wantCount: 6, wantMore: false },
    { name: 'countOnly with limit', req: { ...ALL, countOnly: true, limit: 1 }, wantKeys: [], wantCount: 6, wantMore: false },
    { name: 'key descend', req: { ...ALL, sortOrder: 'DESCEND' }, wantKeys: ['e', 'd', 'c', 'b', 'ab', 'a'], wantCount: 6 },
    { name: 'key ascend', req: { ...ALL, sortOrder: 'ASCEND', sortTarget: 'KEY' }, wantKeys: ['a', 'ab', 'b', 'c', 'd', 'e'], wantCount: 6 },
    { name: 'value ascend, ties by key', req: { ...ALL, sortOrder: 'ASCEND', sortTarget: 'VALUE' }, wantKeys: ['d', 'b', 'c', 'a', 'e', 'ab'], wantCount: 6 },
    { name: 'value descend, ties by ascending key', req: { ...ALL, sortOrder: 'DESCEND', sortTarget: 'VALUE' }, wantKeys: ['ab', 'a', 'e', 'b', 'c', 'd'], wantCount: 6 },
    { name: 'value with order NONE sorts ascending', req: { ...ALL, sortTarget: 'VALUE' }, wantKeys: ['d', 'b', 'c', 'a', 'e', 'ab'], wantCount: 6 },
    { name: 'version descend', req: { ...ALL, sortOrder: 'DESCEND', sortTarget: 'VERSION' }, wantKeys: ['b', 'a', 'ab', 'c', 'd', 'e'], wantCount: 6 },
    { name: 'create descend', req: { ...ALL, sortOrder: 'DESCEND', sortTarget: 'CREATE' }, wantKeys: ['ab', 'e', 'd', 'c', 'b', 'a'], wantCount: 6 },
    { name: 'mod ascend', req: { ...ALL, sortOrder: 'ASCEND', sortTarget: 'MOD' }, wantKeys: ['a', 'c', 'd', 'e', 'b', 'ab'], wantCount: 6 },
    { name: 'mod with NONE sorts ascending', req: { ...ALL, sortTarget: 'MOD' }, wantKeys: ['a', 'c', 'd', 'e', 'b', 'ab'], wantCount: 6 },
    { name: 'sort then limit', req: { ...ALL, sortOrder: 'ASCEND', sortTarget: 'VALUE', limit: 2 }, wantKeys: ['d', 'b'], wantCount: 6, wantMore: true },
    { name: 'minModRevision', req: { ...ALL, minModRevision: 5 }, wantKeys: ['b', 'd', 'e', 'ab'].sort(), wantCount: 6 },
    { name: 'maxModRevision', req: { ...ALL, maxModRevision: 4 }, wantKeys: ['a', 'c'], wantCount: 6 },
    { name: 'minCreateRevision', req: { ...ALL, minCreateRevision: 4 }, wantKeys: ['ab', 'c', 'd', 'e'], wantCount: 6 },
    { name: 'maxCreateRevision', req: { ...ALL, maxCreateRevision: 3 }, wantKeys: ['a', 'b'], wantCount: 6 },
    { name: 'filters combine', req: { ...ALL, minModRevision: 3, maxCreateRevision: 5 }, wantKeys: ['b', 'c', 'd'], wantCount: 6 },
    { name: 'filter then limit gives more', req: { ...ALL, minModRevision: 5, limit: 2 }, wantKeys: ['ab', 'b'], wantCount: 6, wantMore: true },
    { name: 'filter leaves fewer than limit', req: { ...ALL, maxModRevision: 4, limit: 2 }, wantKeys: ['a', 'c'], wantCount: 6, wantMore: false },
    { name: 'past revision 4', req: { ...ALL, revision: 4 }, wantKeys: ['a', 'b', 'c'], wantCount: 3 },
    { name: 'past revision with limit', req: { ...ALL, revision: 6, limit: 1 }, wantKeys: ['a'], wantCount: 5, wantMore: true },
    { name: 'revision 1: empty store', req: { ...ALL, revision: 1 }, wantKeys: [], wantCount: 0 },
    { name: 'negative revision = current', req: { key: b('a'), revision: -3 }, wantKeys: ['a'], wantCount: 1 },
  ];
  for (const c of cases) {
    const r = await t.store.range(c.req);
    assert.deepEqual(r.kvs.map((kv) => s(kv.key)), c.wantKeys, c.name);
    assert.equal(r.count, c.wantCount, `${c.name}: count`);
    assert.equal(r.more, c.wantMore ?? false, `${c.name}: more`);
    assert.equal(r.header.revision, 8, `${c.name}: header is the current revision`);
  }
});

test('range returns create/mod revisions, versions and values; keysOnly empties values', async () => {
  const t = await fixture();
  const r = await t.store.range(ALL);
  assert.deepEqual(r.kvs.map(kvStr), ['a=v3@2/2/1', 'ab=x@8/8/1', 'b=v2@3/7/2', 'c=v2@4/4/1', 'd=v1@5/5/1', 'e=v3@6/6/1']);
  const ko = await t.store.range({ ...ALL, keysOnly: true });
  assert.deepEqual(ko.kvs.map(kvStr), ['a=@2/2/1', 'ab=@8/8/1', 'b=@3/7/2', 'c=@4/4/1', 'd=@5/5/1', 'e=@6/6/1']);
  // keysOnly must not empty the stored values
  assert.deepEqual((await t.store.range({ key: b('a') })).kvs.map(kvStr), ['a=v3@2/2/1']);
  const past = await t.store.range({ key: b('b'), revision: 6 });
  assert.deepEqual(past.kvs.map(kvStr), ['b=v1@3/3/1']);
});

test('a read above the current revision fails with a future-revision error', async () => {
  const t = await fixture();
  await assert.rejects(t.store.range({ key: b('a'), revision: 9 }), { code: 'QUORUMKV_FUTURE_REVISION' });
});

test('a read with an empty key is refused', async () => {
  const t = await fixture();
  await assert.rejects(t.store.range({ key: new Uint8Array(0) }), { code: 'QUORUMKV_INVALID_ARGUMENT' });
});

test('a range request that is not an object, or with flags that are not booleans, is refused with QUORUMKV_INVALID_ARGUMENT', async () => {
  const t = await fixture();
  for (const req of [null, undefined, 'a', 5]) {
    await assert.rejects(t.store.range(req as unknown as RangeRequest), { name: 'UsageError', code: 'QUORUMKV_INVALID_ARGUMENT' }, String(req));
    await assert.rejects(t.store.readTxn({ success: [{ requestRange: req as unknown as RangeRequest }] }), { name: 'UsageError', code: 'QUORUMKV_INVALID_ARGUMENT' }, String(req));
  }
  // a flag that is not a boolean: countOnly 'false' answered a count without the key-values
  for (const flag of ['keysOnly', 'countOnly', 'serializable']) {
    await assert.rejects(t.store.range({ key: b('a'), [flag]: 'false' }), { name: 'UsageError', code: 'QUORUMKV_INVALID_ARGUMENT' }, flag);
  }
  assert.equal((await t.store.range({ key: b('a') })).kvs.length, 1, 'the store still serves reads');
});

test('reads at, below and above the compaction revision', async () => {
  const t = await fixture();
  await t.write({ compaction: { revision: 5 } });
  await assert.rejects(t.store.range({ key: b('b'), revision: 4 }), (err: { code: string; compactRevision: number }) => {
    assert.equal(err.code, 'QUORUMKV_REVISION_COMPACTED');
    assert.equal(err.compactRevision, 5);
    return true;
  });
  const at = await t.store.range({ ...ALL, revision: 5 });
  assert.deepEqual(at.kvs.map(kvStr), ['a=v3@2/2/1', 'b=v1@3/3/1', 'c=v2@4/4/1', 'd=v1@5/5/1']);
  const above = await t.store.range({ ...ALL, revision: 7 });
  assert.deepEqual(above.kvs.map(kvStr), ['a=v3@2/2/1', 'b=v2@3/7/2', 'c=v2@4/4/1', 'd=v1@5/5/1', 'e=v3@6/6/1']);
  await t.store.compactionIdle();
  // still readable once the old revisions are physically gone
  assert.deepEqual((await t.store.range({ ...ALL, revision: 5 })).kvs.map(kvStr), at.kvs.map(kvStr));
});
