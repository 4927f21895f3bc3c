// Regression test: KvNode checks a txn in etcd's order (v3rpc
// `checkTxnRequest`): at each level the number of operations first, then the
// compares' keys, then the success and the failure operations in turn, a
// nested txn getting what its parent's largest list leaves of the 128. It
// refused every empty key first, so a txn with too many operations and an
// empty key somewhere got QUORUMKV_INVALID_ARGUMENT where etcd and the MVCC
// store answer "too many operations".
//
// etcd 3.4.23 (observed through the etcd3 client):
// - 129 puts in success and a put of an empty key in failure: "too many
//   operations in txn request";
// - a compare of an empty key and 129 puts in success: the same;
// - 100 puts and a nested txn of 28 puts and a put of an empty key: the same
//   (128 - 100 = 28 operations left for the nested txn);
// - a put of an empty key, 99 puts and a nested txn of 29 puts: "key is not
//   provided" (the empty key comes first);
// - a nested txn with a compare of an empty key and 127 puts: "key is not
//   provided"; with 128 puts: "too many operations".
// - a chain of nested txns, one operation per level (each level leaves one
//   less to the next): 129 levels, the last one empty, succeed; 129 levels
//   whose last has an operation, and 130 levels, are "too many operations"
//   (the count at a level comes before anything else there, and etcd has no
//   limit of its own on the depth). Observed through etcd's JSON gateway
//   (/v3/kv/txn): the etcd3 client's encoder refuses nesting that deep.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode } from '../../src/errors.js';
import type { RequestOpInput, TxnInput } from '../../src/server/index.js';
import { withSingleMember } from './single-member.js';

const puts = (n: number, p: string): RequestOpInput[] => Array.from({ length: n }, (_, i) => ({ put: { key: `${p}${i}`, value: 'x' } }));
const emptyKeyPut: RequestOpInput = { put: { key: '', value: 'x' } };
const emptyKeyCompare = { key: '', target: 'VERSION', result: 'GREATER', version: 0 } as const;

test('a txn with too many operations and an empty key gets the error etcd gives first', () =>
  withSingleMember(async (node) => {
    const tooMany = { code: ErrorCode.TOO_MANY_TXN_OPS };
    const invalid = { code: ErrorCode.INVALID_ARGUMENT };
    await assert.rejects(node.txn({ success: puts(129, 'm'), failure: [emptyKeyPut] }), tooMany);
    await assert.rejects(node.txn({ compare: [emptyKeyCompare], success: puts(129, 'm') }), tooMany);
    await assert.rejects(node.txn({ success: [...puts(100, 'm'), { txn: { success: [...puts(28, 'n'), emptyKeyPut] } }] }), tooMany);
    await assert.rejects(node.txn({ success: [emptyKeyPut, ...puts(99, 'm'), { txn: { success: puts(29, 'n') } }] }), invalid);
    await assert.rejects(node.txn({ success: [{ txn: { compare: [emptyKeyCompare], success: puts(127, 'n') } }] }), invalid);
    await assert.rejects(node.txn({ success: [{ txn: { compare: [emptyKeyCompare], success: puts(128, 'n') } }] }), tooMany);
    assert.equal((await node.range({ key: '\0', rangeEnd: '\0', countOnly: true })).count, 0);
  }));

test('a chain of nested txns beyond the depth the operation count allows gets etcd\'s "too many operations"', () =>
  withSingleMember(async (node) => {
    // depth levels, each with one operation: the nested txn, and at the last `last`
    const chain = (depth: number, last: RequestOpInput[]): TxnInput => {
      let t: TxnInput = { success: last };
      for (let d = 1; d < depth; d++) t = { success: [{ txn: t }] };
      return t;
    };
    const tooMany = { code: ErrorCode.TOO_MANY_TXN_OPS };
    assert.equal((await node.txn(chain(128, [{ range: { key: 'a' } }]))).succeeded, true);
    await assert.rejects(node.txn(chain(129, [{ range: { key: 'a' } }])), tooMany);
    await assert.rejects(node.txn(chain(130, [])), tooMany);
    await assert.rejects(node.txn(chain(200, [{ put: { key: 'deep', value: 'x' } }])), tooMany);
    assert.equal((await node.range({ key: '\0', rangeEnd: '\0', countOnly: true })).count, 0);
  }));
