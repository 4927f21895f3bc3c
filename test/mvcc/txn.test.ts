// Txn (etcd's TxnRequest): every compare target × result on existing and
// missing keys and on ranges, branch selection, one revision per txn, reads
// seeing earlier writes, nested txns, duplicate-key and op-count rules,
// state-dependent checks only in the branch that runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Compare, CompareResult, CompareTarget, RequestOp, TxnRequest, TxnResponse } from '../../src/mvccpb/index.js';
import { RANGE_END_ALL } from '../../src/mvccpb/index.js';
import { b, kvStr, openStore, put, type TestStore } from './helpers.js';

async function txn(t: TestStore, req: TxnRequest): Promise<TxnResponse> {
  const r = await t.write({ txn: req });
  if (!('txn' in r)) throw new Error('not a txn response');
  return r.txn;
}

/**
 * k1: value 'v5', version 3, create 2, mod 4, lease L (=1); k2: value 'v2',
 * version 1, create 5, mod 5, no lease; e: empty value (create 6).
 */
async function fixture(): Promise<{ t: TestStore; lease: number }> {
  const t = await openStore();
  const g = await t.write({ leaseGrant: { ttl: 60 } });
  const lease = 'leaseGrant' in g ? g.leaseGrant.id : 0;
  await put(t, 'k1', 'a');
  await put(t, 'k1', 'b');
  await put(t, 'k1', 'v5', { lease });
  await put(t, 'k2', 'v2');
  await put(t, 'e', '');
  return { t, lease };
}

function cmp(target: CompareTarget, result: CompareResult, key: string, operand: number | string, rangeEnd?: Uint8Array): Compare {
  const c: Compare = { target, result, key: b(key) };
  if (rangeEnd !== undefined) c.rangeEnd = rangeEnd;
  switch (target) {
    case 'VERSION':
      c.version = operand as number;
      break;
    case 'CREATE':
      c.createRevision = operand as number;
      break;
    case 'MOD':
      c.modRevision = operand as number;
      break;
    case 'LEASE':
      c.lease = operand as number;
      break;
    case 'VALUE':
      c.value = b(operand as string);
      break;
  }
  return c;
}

async function holds(t: TestStore, ...compares: Compare[]): Promise<boolean> {
  return (await txn(t, { compare: compares })).succeeded;
}

/** What each result says for "actual is below / equal to / above the operand". */
const TRUTH: Record<CompareResult, [boolean, boolean, boolean]> = {
  EQUAL: [false, true, false],
  NOT_EQUAL: [true, false, true],
  GREATER: [false, false, true],
  LESS: [true, false, false],
};
const RESULTS: CompareResult[] = ['EQUAL', 'NOT_EQUAL', 'GREATER', 'LESS'];

test('every compare target and result on an existing key', async () => {
  const { t, lease } = await fixture();
  // operands below, equal to and above k1's actual field
  const operands: Record<CompareTarget, [number | string, number | string, number | string]> = {
    VERSION: [2, 3, 4],
    CREATE: [1, 2, 3],
    MOD: [3, 4, 5],
    VALUE: ['v4', 'v5', 'v6'],
    LEASE: [lease - 1, lease, lease + 1],
  };
  for (const target of Object.keys(operands) as CompareTarget[]) {
    for (const result of RESULTS) {
      for (let rel = 0; rel < 3; rel++) {
        // rel 0: operand below actual → actual is above (index 2 of TRUTH)
        const want = TRUTH[result][2 - rel]!;
        assert.equal(await holds(t, cmp(target, result, 'k1', operands[target][rel]!)), want, `${target} ${result} ${operands[target][rel]}`);
      }
    }
  }
});

test('a missing key compares as zero, except that a value compare is always false', async () => {
  const { t } = await fixture();
  for (const target of ['VERSION', 'CREATE', 'MOD', 'LEASE'] as CompareTarget[]) {
    for (const result of RESULTS) {
      assert.equal(await holds(t, cmp(target, result, 'missing', 0)), TRUTH[result][1], `${target} ${result} 0`);
      assert.equal(await holds(t, cmp(target, result, 'missing', 1)), TRUTH[result][0], `${target} ${result} 1`);
    }
  }
  for (const result of RESULTS) {
    for (const v of ['', 'x']) assert.equal(await holds(t, cmp('VALUE', result, 'missing', v)), false, `VALUE ${result} '${v}'`);
  }
  // an existing empty value is a real value
  assert.equal(await holds(t, cmp('VALUE', 'EQUAL', 'e', '')), true);
  assert.equal(await holds(t, cmp('VALUE', 'LESS', 'e', 'a')), true);
});

test('values compare as bytes, a prefix being smaller', async () => {
  const { t } = await fixture();
  assert.equal(await holds(t, cmp('VALUE', 'GREATER', 'k1', 'v')), true);
  assert.equal(await holds(t, cmp('VALUE', 'LESS', 'k1', 'v50')), true);
  assert.equal(await holds(t, cmp('VALUE', 'GREATER', 'k1', 'V9')), true, 'lowercase sorts after uppercase');
});

test('a compare over a range needs every key to match; an empty range acts as a missing key', async () => {
  const { t, lease } = await fixture();
  const k3 = b('k3');
  assert.equal(await holds(t, cmp('VERSION', 'GREATER', 'k1', 0, k3)), true);
  assert.equal(await holds(t, cmp('VERSION', 'EQUAL', 'k1', 3, k3)), false, 'k2 has version 1');
  assert.equal(await holds(t, cmp('VERSION', 'LESS', 'k1', 4, k3)), true);
  assert.equal(await holds(t, cmp('LEASE', 'EQUAL', 'k1', lease, k3)), false);
  assert.equal(await holds(t, cmp('LEASE', 'EQUAL', 'k2', 0, k3)), true);
  assert.equal(await holds(t, cmp('VALUE', 'NOT_EQUAL', 'k1', 'zz', k3)), true);
  assert.equal(await holds(t, cmp('MOD', 'LESS', 'a', 5, RANGE_END_ALL)), false, 'from key a: k2 has mod 5');
  assert.equal(await holds(t, cmp('VERSION', 'EQUAL', 'x', 0, b('y'))), true, 'empty range = missing key');
  assert.equal(await holds(t, cmp('CREATE', 'GREATER', 'x', 0, b('y'))), false);
  assert.equal(await holds(t, cmp('VALUE', 'NOT_EQUAL', 'x', 'q', b('y'))), false, 'value compare on an empty range');
});

test('all compares must hold for the success branch', async () => {
  const { t } = await fixture();
  assert.equal(await holds(t, cmp('VERSION', 'EQUAL', 'k1', 3), cmp('VALUE', 'EQUAL', 'k2', 'v2')), true);
  assert.equal(await holds(t, cmp('VERSION', 'EQUAL', 'k1', 3), cmp('VALUE', 'EQUAL', 'k2', 'nope')), false);
  assert.equal(await holds(t), true, 'no compares: success');
});

test('the branch taken runs at one revision; the other does nothing', async () => {
  const { t } = await fixture(); // rev 6
  const ops = (v: string): RequestOp[] => [
    { requestPut: { key: b('x'), value: b(v) } },
    { requestPut: { key: b('y'), value: b(v), prevKv: true } },
    { requestDeleteRange: { key: b('k2'), prevKv: true } },
  ];
  const r = await txn(t, { compare: [cmp('VALUE', 'EQUAL', 'k1', 'nope')], success: ops('s'), failure: ops('f') });
  assert.equal(r.succeeded, false);
  assert.equal(r.header.revision, 7);
  assert.equal(t.store.currentRevision(), 7);
  const [p1, p2, d] = r.responses;
  assert.ok(p1 && 'responsePut' in p1 && p2 && 'responsePut' in p2 && d && 'responseDeleteRange' in d);
  assert.deepEqual([p1.responsePut.header.revision, p2.responsePut.header.revision], [7, 7]);
  assert.equal(p2.responsePut.prevKv, undefined);
  assert.deepEqual([d.responseDeleteRange.deleted, d.responseDeleteRange.prevKvs.map(kvStr)], [1, ['k2=v2@5/5/1']]);
  const all = await t.store.range({ key: b('x'), rangeEnd: b('z') });
  assert.deepEqual(all.kvs.map(kvStr), ['x=f@7/7/1', 'y=f@7/7/1']);
});

test('reads in a txn see its earlier writes; revisions of inner responses follow etcd', async () => {
  const { t } = await fixture(); // rev 6
  const r = await txn(t, {
    success: [
      { requestRange: { key: b('n') } },
      { requestDeleteRange: { key: b('nothing') } },
      { requestPut: { key: b('n'), value: b('1') } },
      { requestRange: { key: b('n') } },
      { requestDeleteRange: { key: b('k2') } },
      { requestRange: { key: b('k1'), rangeEnd: b('k3') } },
      { requestDeleteRange: { key: b('nothing2') } },
    ],
  });
  const revs = r.responses.map((x) => Object.values(x)[0].header.revision);
  assert.deepEqual(revs, [6, 6, 7, 7, 7, 7, 7], 'range and delete-nothing headers before and after the first write');
  const [r0, , , r3, , r5] = r.responses;
  assert.ok(r0 && 'responseRange' in r0 && r3 && 'responseRange' in r3 && r5 && 'responseRange' in r5);
  assert.equal(r0.responseRange.count, 0);
  assert.deepEqual(r3.responseRange.kvs.map(kvStr), ['n=1@7/7/1']);
  assert.deepEqual(r5.responseRange.kvs.map(kvStr), ['k1=v5@2/4/3/L1'], 'k2 deleted earlier in the txn');
  assert.equal(r.header.revision, 7);
});

test('a past-revision read in a txn ignores the txn writes to that key', async () => {
  const { t } = await fixture(); // rev 6
  const r = await txn(t, {
    success: [
      { requestPut: { key: b('k1'), value: b('new') } },
      { requestRange: { key: b('k1'), revision: 6 } },
      { requestRange: { key: b('k1'), revision: 3 } },
      { requestRange: { key: b('k1') } },
    ],
  });
  const vals = r.responses.slice(1).map((x) => ('responseRange' in x ? x.responseRange.kvs.map(kvStr) : []));
  assert.deepEqual(vals, [['k1=v5@2/4/3/L1'], ['k1=b@2/3/2'], ['k1=new@2/7/4']]);
});

test('nested txns: compares see the state before the txn, reads see earlier writes, headers are 0', async () => {
  const { t } = await fixture(); // rev 6
  const nested = (c: Compare, failKey: string): RequestOp => ({
    requestTxn: { compare: [c], success: [{ requestRange: { key: b('n') } }], failure: [{ requestPut: { key: b(failKey), value: b('1') } }] },
  });
  const r = await txn(t, {
    success: [
      { requestPut: { key: b('n'), value: b('x') } },
      nested(cmp('VERSION', 'EQUAL', 'n', 0), 'f'),
      nested(cmp('VERSION', 'GREATER', 'n', 0), 'g'),
    ],
  });
  const [, n1, n2] = r.responses;
  assert.ok(n1 && 'responseTxn' in n1 && n2 && 'responseTxn' in n2);
  assert.equal(n1.responseTxn.succeeded, true, 'n did not exist before the txn');
  assert.equal(n2.responseTxn.succeeded, false);
  assert.equal(n1.responseTxn.header.revision, 0);
  const inner = n1.responseTxn.responses[0];
  assert.ok(inner && 'responseRange' in inner);
  assert.deepEqual(inner.responseRange.kvs.map(kvStr), ['n=x@7/7/1'], 'the nested read sees the outer put');
  assert.deepEqual((await t.store.range({ key: b('f'), rangeEnd: b('h') })).kvs.map(kvStr), ['g=1@7/7/1'], 'one revision for everything');
  assert.equal(t.store.currentRevision(), 7);
});

test('duplicate keys are refused in either branch, before the compares', async () => {
  const { t } = await fixture();
  const P = (k: string): RequestOp => ({ requestPut: { key: b(k), value: b('v') } });
  const D = (k: string, end?: string | Uint8Array): RequestOp => ({
    requestDeleteRange: { key: b(k), rangeEnd: end === undefined ? undefined : typeof end === 'string' ? b(end) : end },
  });
  const T = (success: RequestOp[], failure: RequestOp[] = []): RequestOp => ({ requestTxn: { success, failure } });
  const cases: { name: string; ops: RequestOp[]; dup: boolean; inFailure?: boolean }[] = [
    { name: 'two puts of one key', ops: [P('a'), P('a')], dup: true },
    { name: 'two puts of one key in the failure branch', ops: [P('a'), P('a')], dup: true, inFailure: true },
    { name: 'put and delete of one key', ops: [P('a'), D('a')], dup: true },
    { name: 'delete then put of one key', ops: [D('a'), P('a')], dup: true },
    { name: 'put inside a deleted range', ops: [D('a', 'c'), P('b')], dup: true },
    { name: 'put at a deleted range end is outside', ops: [D('a', 'c'), P('c')], dup: false },
    { name: 'delete to the end (\\0) overlaps nothing', ops: [D('a', RANGE_END_ALL), P('b')], dup: false },
    { name: 'empty delete range overlaps nothing', ops: [D('c', 'a'), P('b')], dup: false },
    { name: 'two overlapping deletes', ops: [D('a', 'c'), D('b', 'd')], dup: false },
    { name: 'distinct puts', ops: [P('a'), P('b')], dup: false },
    { name: 'outer put and nested put', ops: [P('a'), T([P('a')])], dup: true },
    { name: 'nested then and else put one key', ops: [T([P('a')], [P('a')])], dup: false },
    { name: 'two nested txns put one key', ops: [T([P('a')]), T([], [P('a')])], dup: true },
    { name: 'outer delete range, nested put inside', ops: [D('a', 'c'), T([P('b')])], dup: true },
    { name: 'nested delete, outer put inside', ops: [T([D('a', 'c')]), P('b')], dup: true },
    { name: 'nested put and delete in one branch', ops: [T([P('a'), D('a')])], dup: true },
  ];
  for (const c of cases) {
    const req: TxnRequest = c.inFailure
      ? { compare: [cmp('VERSION', 'EQUAL', 'k1', 3)], success: [P('zz')], failure: c.ops }
      : { compare: [cmp('VERSION', 'EQUAL', 'k1', 99)], success: c.ops, failure: [] };
    const before = t.store.currentRevision();
    const r = await t.store.apply(t.takeIndex(), { txn: req });
    if (c.dup) {
      assert.equal(r.status, 'failed', c.name);
      assert.equal(r.status === 'failed' && r.error.code, 'QUORUMKV_DUPLICATE_KEY', c.name);
    } else {
      assert.notEqual(r.status, 'failed', c.name);
    }
    assert.equal(t.store.currentRevision(), before, `${c.name}: the branch not taken changed nothing`);
    await put(t, 'pad', c.name); // keep indexes moving through the helper
  }
});

test('more than maxTxnOps compares or operations are refused, nested txns get what is left', async () => {
  const { t } = await openStore({ limits: { maxTxnOps: 8 } }).then((t) => ({ t }));
  const puts = (n: number, p = 'k'): RequestOp[] => Array.from({ length: n }, (_, i) => ({ requestPut: { key: b(`${p}${i}`), value: b('v') } }));
  const cases: { name: string; req: TxnRequest; ok: boolean }[] = [
    { name: '8 puts', req: { success: puts(8) }, ok: true },
    { name: '9 puts', req: { success: puts(9) }, ok: false },
    { name: '9 failure ops', req: { failure: puts(9) }, ok: false },
    { name: '9 compares', req: { compare: Array.from({ length: 9 }, () => cmp('VERSION', 'EQUAL', 'a', 0)) }, ok: false },
    // 5 operations at the top leave 8 - 5 = 3 for the nested txn
    { name: 'nested within the budget', req: { success: [...puts(4), { requestTxn: { success: puts(3, 'n') } }] }, ok: true },
    { name: 'nested over the budget', req: { success: [...puts(4), { requestTxn: { success: puts(4, 'n') } }] }, ok: false },
  ];
  for (const c of cases) {
    const r = await t.store.apply(t.takeIndex(), { txn: c.req });
    if (c.ok) assert.equal(r.status, 'applied', c.name);
    else assert.equal(r.status === 'failed' && r.error.code, 'QUORUMKV_TOO_MANY_TXN_OPS', c.name);
    await put(t, 'pad', c.name);
  }
});

test('a chain of nested txns beyond what the operation count allows is "too many operations", as in etcd, not too deep', async () => {
  // etcd's default of 128 operations: one operation per level (the nested
  // txn) leaves one less to each next level, 0 to the 129th and less to
  // the 130th; etcd counts at each level before anything else there
  const t = await openStore();
  const chain = (depth: number, last: RequestOp[]): TxnRequest => {
    let r: TxnRequest = { success: last };
    for (let d = 1; d < depth; d++) r = { success: [{ requestTxn: r }] };
    return r;
  };
  const one: RequestOp[] = [{ requestPut: { key: b('deep'), value: b('v') } }];
  for (const [name, req] of [
    ['129 levels, an operation at the last', chain(129, one)],
    ['130 levels', chain(130, [])],
  ] as const) {
    const r = await t.store.apply(t.takeIndex(), { txn: req });
    assert.equal(r.status === 'failed' && r.error.code, 'QUORUMKV_TOO_MANY_TXN_OPS', name);
  }
  assert.equal((await t.store.range({ key: b('deep') })).count, 0);
});

test('unknown leases, missing keys for ignoreValue and bad revisions fail a txn only in the branch that runs', async () => {
  const { t } = await fixture(); // rev 6
  await t.write({ compaction: { revision: 3 } });
  const bad: { name: string; op: RequestOp; code: string }[] = [
    { name: 'unknown lease', op: { requestPut: { key: b('x'), value: b('1'), lease: 999 } }, code: 'QUORUMKV_LEASE_NOT_FOUND' },
    { name: 'ignoreValue on a missing key', op: { requestPut: { key: b('missing'), ignoreValue: true } }, code: 'QUORUMKV_KEY_NOT_FOUND' },
    { name: 'future revision', op: { requestRange: { key: b('k1'), revision: 100 } }, code: 'QUORUMKV_FUTURE_REVISION' },
    { name: 'compacted revision', op: { requestRange: { key: b('k1'), revision: 2 } }, code: 'QUORUMKV_REVISION_COMPACTED' },
    {
      name: 'unknown lease in a nested txn',
      op: { requestTxn: { success: [{ requestPut: { key: b('x'), value: b('1'), lease: 999 } }] } },
      code: 'QUORUMKV_LEASE_NOT_FOUND',
    },
  ];
  for (const c of bad) {
    const ok = { requestPut: { key: b('ok'), value: b(c.name) } };
    const before = t.store.currentRevision();
    const runs = await t.store.apply(t.takeIndex(), { txn: { success: [ok, c.op] } });
    assert.equal(runs.status === 'failed' && runs.error.code, c.code, `${c.name}: in the branch taken`);
    assert.equal(t.store.currentRevision(), before, `${c.name}: nothing written`);
    const skipped = await t.store.apply(t.takeIndex(), { txn: { compare: [cmp('VERSION', 'EQUAL', 'k1', 3)], success: [ok], failure: [c.op] } });
    assert.equal(skipped.status, 'applied', `${c.name}: in the branch not taken`);
    await t.write({ deleteRange: { key: b('ok') } });
  }
});

test('a txn deleting and putting keys produces its events in operation order at one revision', async () => {
  const { t } = await fixture(); // rev 6
  const w = t.store.watch({ key: b('a'), rangeEnd: RANGE_END_ALL });
  await txn(t, {
    success: [
      { requestPut: { key: b('z'), value: b('1') } },
      { requestDeleteRange: { key: b('k1'), rangeEnd: b('k3') } },
      { requestPut: { key: b('b'), value: b('2') } },
    ],
  });
  const resp = await w.next();
  assert.equal(resp.done, false);
  const evs = resp.value!.events.map((e) => `${e.type} ${new TextDecoder().decode(e.kv.key)}@${e.kv.modRevision}`);
  assert.deepEqual(evs, ['PUT z@7', 'DELETE k1@7', 'DELETE k2@7', 'PUT b@7']);
  await w.cancel();
});

test('a txn that deletes a key through a "\\0" range end and then puts it with ignoreValue fails whole (etcd 3.4 panics)', async () => {
  const { t } = await fixture();
  const before = await t.store.hash();
  for (const nested of [false, true]) {
    const putIgnore: RequestOp = { requestPut: { key: b('k2'), ignoreValue: true } };
    const r = await t.store.apply(t.takeIndex(), {
      txn: {
        success: [
          { requestPut: { key: b('new'), value: b('1') } },
          { requestDeleteRange: { key: b('k1'), rangeEnd: RANGE_END_ALL } },
          nested ? { requestTxn: { success: [putIgnore] } } : putIgnore,
        ],
      },
    });
    assert.equal(r.status === 'failed' && r.error.code, 'QUORUMKV_KEY_NOT_FOUND', nested ? 'nested' : 'flat');
    assert.deepEqual(await t.store.hash(), before, 'nothing changed');
  }
  // the same put before the delete is fine
  const ok = await t.store.apply(t.takeIndex(), {
    txn: { success: [{ requestPut: { key: b('k2'), ignoreValue: true } }, { requestDeleteRange: { key: b('k3'), rangeEnd: RANGE_END_ALL } }] },
  });
  assert.equal(ok.status, 'applied');
});

test('a txn that is an array is refused with QUORUMKV_INVALID_ARGUMENT, not run as an empty txn', async () => {
  const t = await openStore();
  await put(t, 'k', '1');
  const r = await t.store.apply(t.takeIndex(), { txn: [] as unknown as TxnRequest });
  assert.equal(r.status === 'failed' && r.error.code, 'QUORUMKV_INVALID_ARGUMENT');
  await assert.rejects(t.store.readTxn([] as unknown as TxnRequest), { code: 'QUORUMKV_INVALID_ARGUMENT' });
  const nested = await t.store.apply(t.takeIndex(), { txn: { success: [{ requestTxn: [] as unknown as TxnRequest }] } });
  assert.equal(nested.status === 'failed' && nested.error.code, 'QUORUMKV_INVALID_ARGUMENT', 'nested');
});
