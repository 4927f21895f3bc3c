// The Raft-log encoding of write requests (positional msgpack) and the
// checks a server runs before proposing (size, op count, duplicates, shapes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  decodeWriteRequest,
  encodeWriteRequest,
  isTxnReadOnly,
  prepareWriteRequest,
  validateWriteRequest,
  writeRequestKind,
  type WriteRequest,
} from '../../src/mvcc/index.js';
import { pack } from '../../src/codec/index.js';
import type { Compare, RequestOp, TxnRequest } from '../../src/mvccpb/index.js';
import { b } from './helpers.js';

/** Decoded bytes may be Buffers: compare as plain arrays. */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return { bytes: Array.from(v) };
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

const full: TxnRequest = {
  compare: [
    { target: 'VERSION', result: 'EQUAL', key: b('a'), version: 3 },
    { target: 'CREATE', result: 'GREATER', key: b('a'), rangeEnd: b('b'), createRevision: 2 },
    { target: 'MOD', result: 'LESS', key: b('a'), modRevision: 9 },
    { target: 'VALUE', result: 'NOT_EQUAL', key: b('a'), value: b('x') },
    { target: 'LEASE', result: 'EQUAL', key: b('a'), lease: 77 },
  ],
  success: [
    {
      requestRange: {
        key: b('a'),
        rangeEnd: b('z'),
        limit: 5,
        revision: 3,
        sortOrder: 'DESCEND',
        sortTarget: 'VALUE',
        keysOnly: true,
        countOnly: true,
        serializable: true,
        minModRevision: 1,
        maxModRevision: 2,
        minCreateRevision: 3,
        maxCreateRevision: 4,
      },
    },
    { requestPut: { key: b('p'), value: b('v'), lease: 5, prevKv: true } },
    { requestPut: { key: b('q'), value: new Uint8Array(0), ignoreValue: true, ignoreLease: true } },
    { requestDeleteRange: { key: b('d'), rangeEnd: b('e'), prevKv: true } },
    { requestTxn: { compare: [], success: [{ requestDeleteRange: { key: b('n') } }], failure: [] } },
  ],
  failure: [{ requestRange: { key: b('f') } }],
};

test('every kind of write request survives encode/decode', () => {
  const reqs: WriteRequest[] = [
    { put: { key: b('k'), value: b('v'), lease: 3, prevKv: true } },
    { put: { key: b('k'), value: new Uint8Array(0) } },
    { deleteRange: { key: b('k'), rangeEnd: b('l'), prevKv: true } },
    { deleteRange: { key: b('k') } },
    { txn: full },
    { compaction: { revision: 12, physical: true } },
    { compaction: { revision: 0 } },
    { leaseGrant: { ttl: 30, id: 9 } },
    { leaseGrant: { ttl: 30 } },
    { leaseRevoke: { id: 9 } },
  ];
  for (const r of reqs) {
    assert.deepEqual(plain(decodeWriteRequest(encodeWriteRequest(r))), plain(r), writeRequestKind(r));
  }
});

test('random puts and txns survive encode/decode (property)', () => {
  const bytes = fc.uint8Array({ minLength: 1, maxLength: 8 });
  const put = fc.record({ key: bytes, value: fc.uint8Array({ maxLength: 8 }), lease: fc.nat(), prevKv: fc.boolean() }).map((p) => {
    const out: Record<string, unknown> = { key: p.key, value: p.value };
    if (p.lease !== 0) out.lease = p.lease;
    if (p.prevKv) out.prevKv = true;
    return out;
  });
  const op = put.map((p) => ({ requestPut: p }) as unknown as RequestOp);
  const txn = fc.record({ success: fc.array(op, { maxLength: 4 }), failure: fc.array(op, { maxLength: 4 }) });
  fc.assert(
    fc.property(txn, (t) => {
      const req: WriteRequest = { txn: { compare: [], ...t } };
      assert.deepEqual(plain(decodeWriteRequest(encodeWriteRequest(req))), plain(req));
    }),
    { numRuns: 200 },
  );
});

test('every request prepareWriteRequest accepts decodes from its log entry: a malformed one is refused before it is proposed, never when every member applies it (property)', () => {
  // fields of every shape, left out or not: a request the validation lets
  // through but the decoder refuses would stop each member that applies it
  const seed = process.env.QUORUMKV_WRITE_REQUEST_SEED === undefined ? Date.now() % 2 ** 31 : Number(process.env.QUORUMKV_WRITE_REQUEST_SEED);
  const val = fc.oneof(fc.constant(undefined), fc.constant(null), fc.integer(), fc.double(), fc.boolean(), fc.string(), fc.uint8Array({ maxLength: 3 }), fc.constantFrom(-1, 0, 1));
  const bytes = fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 3 }), val);
  const obj = (fields: Record<string, fc.Arbitrary<unknown>>) => fc.record(fields, { requiredKeys: [] });
  const range = obj({ key: bytes, rangeEnd: bytes, limit: val, revision: val, sortOrder: fc.oneof(val, fc.constantFrom('NONE', 'ASCEND', 'DESCEND')), sortTarget: fc.oneof(val, fc.constantFrom('KEY', 'VALUE')), keysOnly: val, countOnly: val, minModRevision: val, maxModRevision: val, minCreateRevision: val, maxCreateRevision: val });
  const put = obj({ key: bytes, value: bytes, lease: val, prevKv: val, ignoreValue: val, ignoreLease: val });
  const del = obj({ key: bytes, rangeEnd: bytes, prevKv: val });
  const compare = obj({ key: bytes, rangeEnd: bytes, target: fc.oneof(val, fc.constantFrom('VERSION', 'CREATE', 'MOD', 'VALUE', 'LEASE')), result: fc.oneof(val, fc.constantFrom('EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL')), version: val, createRevision: val, modRevision: val, value: bytes, lease: val });
  const op = fc.oneof(range.map((r) => ({ requestRange: r })), put.map((p) => ({ requestPut: p })), del.map((d) => ({ requestDeleteRange: d })));
  const txn = obj({ compare: fc.oneof(val, fc.array(compare, { maxLength: 2 })), success: fc.oneof(val, fc.array(op, { maxLength: 2 })), failure: fc.oneof(val, fc.array(op, { maxLength: 2 })) });
  const req = fc.oneof(
    put.map((p) => ({ put: p })),
    del.map((d) => ({ deleteRange: d })),
    txn.map((t) => ({ txn: t })),
    obj({ revision: val, physical: val }).map((c) => ({ compaction: c })),
    obj({ ttl: val, id: val }).map((g) => ({ leaseGrant: g })),
    obj({ id: val }).map((r) => ({ leaseRevoke: r })),
  );
  let accepted = 0;
  try {
    fc.assert(
      fc.property(req, (r) => {
        let data: Uint8Array;
        try {
          data = prepareWriteRequest(r as WriteRequest);
        } catch (err) {
          assert.ok((err as { code?: unknown }).code !== undefined, `refused without a code: ${String(err)}`);
          return;
        }
        accepted++;
        decodeWriteRequest(data);
      }),
      { numRuns: 20_000, seed },
    );
  } catch (err) {
    console.error(`failed with QUORUMKV_WRITE_REQUEST_SEED=${seed}`);
    throw err;
  }
  assert.ok(accepted > 1_000, `only ${accepted} requests accepted: the generator hardly reaches the decoder`);
});

test('garbage in the log decodes to a malformed-frame error', () => {
  const cases: Uint8Array[] = [new Uint8Array([0xc1]), pack([9, 1]), pack([0, 'not bytes', b('v'), 0, 0]), pack({ put: 1 }), pack([2, [], [[7]], []])];
  for (const c of cases) assert.throws(() => decodeWriteRequest(c), { code: 'QUORUMKV_MALFORMED_FRAME' });
});

test('requests larger than the limit are refused before they are proposed', () => {
  const big = new Uint8Array(1.5 * 1024 * 1024);
  assert.throws(() => validateWriteRequest({ put: { key: b('k'), value: big } }), { code: 'QUORUMKV_REQUEST_TOO_LARGE' });
  const ok = prepareWriteRequest({ put: { key: b('k'), value: big.subarray(0, 1024 * 1024) } });
  assert.ok(ok.length > 1024 * 1024);
  const data = prepareWriteRequest({ put: { key: b('k'), value: b('v') } });
  assert.throws(() => validateWriteRequest({ put: { key: b('k'), value: b('v') } }, { maxRequestBytes: data.length - 1 }), {
    code: 'QUORUMKV_REQUEST_TOO_LARGE',
  });
  validateWriteRequest({ put: { key: b('k'), value: b('v') } }, { maxRequestBytes: data.length });
});

test('checks come in etcd order: op count, then keys, then duplicates, then size', () => {
  const dupOps: RequestOp[] = Array.from({ length: 129 }, () => ({ requestPut: { key: new Uint8Array(0), value: b('v') } }));
  assert.throws(() => validateWriteRequest({ txn: { success: dupOps } }), { code: 'QUORUMKV_TOO_MANY_TXN_OPS' });
  const emptyAndDup: RequestOp[] = [{ requestPut: { key: b('a') } }, { requestPut: { key: b('a') } }, { requestPut: { key: new Uint8Array(0) } }];
  assert.throws(() => validateWriteRequest({ txn: { success: emptyAndDup } }), { code: 'QUORUMKV_INVALID_ARGUMENT' });
  const dupBig: RequestOp[] = [{ requestPut: { key: b('a'), value: new Uint8Array(2e6) } }, { requestPut: { key: b('a') } }];
  assert.throws(() => validateWriteRequest({ txn: { success: dupBig } }), { code: 'QUORUMKV_DUPLICATE_KEY' });
});

test('malformed fields are refused', () => {
  const cases: WriteRequest[] = [
    { put: { key: 'k' as unknown as Uint8Array } },
    { put: { key: b('k'), lease: 1.5 } },
    { txn: { compare: [{ target: 'SIZE' as 'VERSION', result: 'EQUAL', key: b('k') }] } },
    { txn: { success: [{ requestRange: { key: b('k'), sortOrder: 'UP' as 'ASCEND' } }] } },
    { txn: { success: [{} as RequestOp] } },
    { leaseGrant: { ttl: 1.5 } },
    { leaseGrant: { ttl: 9_000_000_001 } },
    { compaction: { revision: Number.NaN } },
    {} as WriteRequest,
    { compaction: null } as unknown as WriteRequest,
    { leaseRevoke: null } as unknown as WriteRequest,
    { put: null } as unknown as WriteRequest,
    { put: { key: b('k') }, leaseRevoke: { id: 1 } } as unknown as WriteRequest,
    // a txn's parts that are not objects threw a raw TypeError
    { txn: { success: [{ requestRange: null } as unknown as RequestOp] } },
    { txn: { success: [{ requestPut: null } as unknown as RequestOp] } },
    { txn: { failure: [{ requestDeleteRange: null } as unknown as RequestOp] } },
    { txn: { success: [{ requestTxn: null } as unknown as RequestOp] } },
    { txn: { success: [{ requestTxn: 'x' } as unknown as RequestOp] } },
    { txn: { compare: [null as unknown as Compare] } },
    // flags that are not booleans were taken as set when truthy ('false' included)
    { put: { key: b('k'), prevKv: 'false' as unknown as boolean } },
    { put: { key: b('k'), ignoreValue: 1 as unknown as boolean } },
    { deleteRange: { key: b('k'), prevKv: 'yes' as unknown as boolean } },
    { txn: { success: [{ requestRange: { key: b('k'), countOnly: 'false' as unknown as boolean } }] } },
    { compaction: { revision: 1, physical: 'no' as unknown as boolean } },
  ];
  for (const c of cases) assert.throws(() => validateWriteRequest(c), { code: 'QUORUMKV_INVALID_ARGUMENT' }, JSON.stringify(plain(c)));
});

test('a txn is read-only when both branches hold only ranges', () => {
  assert.equal(isTxnReadOnly({ success: [{ requestRange: { key: b('a') } }], failure: [{ requestRange: { key: b('b') } }] }), true);
  assert.equal(isTxnReadOnly({}), true);
  assert.equal(isTxnReadOnly({ failure: [{ requestPut: { key: b('a') } }] }), false);
  assert.equal(isTxnReadOnly({ success: [{ requestTxn: {} }] }), false, 'a nested txn counts as a write, as in etcd');
});

test('prepareWriteRequest and validateWriteRequest refuse limits that are not RequestLimits with QUORUMKV_INVALID_ARGUMENT', () => {
  const put: WriteRequest = { put: { key: b('k'), value: b('v') } };
  const ops = Array.from({ length: 3 }, (_, i) => ({ requestPut: { key: b(`k${i}`), value: b('v') } }));
  const txn: WriteRequest = { txn: { success: ops } };
  const bad: unknown[] = [
    null,
    5,
    'limits',
    { maxTxnOps: Number.NaN },
    { maxTxnOps: -1 },
    { maxTxnOps: 0 },
    { maxTxnOps: 1.5 },
    { maxTxnOps: '2' },
    { maxRequestBytes: Number.NaN },
    { maxRequestBytes: -1 },
    { maxRequestBytes: 0 },
    { maxRequestBytes: Number.POSITIVE_INFINITY },
  ];
  for (const limits of bad) {
    for (const req of [put, txn]) {
      for (const fn of [prepareWriteRequest, validateWriteRequest]) {
        assert.throws(() => fn(req, limits as never), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `${fn.name}(${Object.keys(req)[0]}, ${String(JSON.stringify(limits))})`);
      }
    }
  }
  // well-formed limits keep working, Infinity txn ops included
  assert.ok(prepareWriteRequest(txn, { maxTxnOps: Number.POSITIVE_INFINITY, maxRequestBytes: 1024 }).length > 0);
  assert.throws(() => validateWriteRequest(txn, { maxTxnOps: 2 }), { code: 'QUORUMKV_TOO_MANY_TXN_OPS' });
  validateWriteRequest(put, undefined);
});
