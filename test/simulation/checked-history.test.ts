// Settling unknown-outcome writes with the committed history
// (resolveUnknownWrites): found at a revision, they become `ok` with it;
// absent from a complete history, they are left out; anything ambiguous
// stays unknown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Operation } from '../../src/testing/history.js';
import type { KvInput, KvOutput } from '../../src/testing/models/kv-types.js';
import type { CommittedEvent } from '../../src/testing/simulation/committed-history.js';
import type { LeaseRecord } from '../../src/testing/simulation/sim-client.js';
import { buildCheckedHistory, highestRevisionSeen, resolveUnknownWrites } from '../../src/testing/simulation/checked-history.js';
import { checkLinearizable, kvModel } from '../../src/testing/index.js';

type Op = Operation<KvInput, KvOutput>;

function op(id: number, input: KvInput, status: Op['status'], callTime: number, returnTime = Infinity, output?: KvOutput): Op {
  return { id, clientId: `c${id}`, input, output, status, callTime, returnTime };
}

function put(key: string, value: string, revision: number, seenAt: number): CommittedEvent {
  return { record: { type: 'PUT', kv: { key, value, modRevision: revision, createRevision: revision, version: 1 } }, prevLease: 0, seenAt };
}

test('an unknown put found in the committed history becomes ok with its revision, returning when it was first reported', () => {
  const ops = [op(1, { type: 'put', key: 'a', value: 'v1' }, 'unknown', 10)];
  const r = resolveUnknownWrites(ops, [put('a', 'v1', 2, 15.5)], false);
  assert.equal(r.found, 1);
  assert.deepEqual(r.operations, [{ ...ops[0]!, status: 'ok', output: { revision: 2 }, returnTime: 15.5 }]);
});

test('an unknown put absent from the committed history is left out only when the history is complete', () => {
  const ops = [op(1, { type: 'put', key: 'a', value: 'v1' }, 'unknown', 10), op(2, { type: 'put', key: 'a', value: 'v2' }, 'ok', 11, 12, { revision: 2 })];
  const events = [put('a', 'v2', 2, 12)];
  const complete = resolveUnknownWrites(ops, events, true);
  assert.equal(complete.absent, 1);
  assert.deepEqual(complete.operations, [ops[1]]);
  const partial = resolveUnknownWrites(ops, events, false);
  assert.equal(partial.absent, 0);
  assert.deepEqual(partial.operations, ops);
});

test('a value two operations put to one key, two events carrying it, or an event reported before the call leave the write unknown', () => {
  const twoWriters = [op(1, { type: 'put', key: 'a', value: 'v' }, 'unknown', 10), op(2, { type: 'put', key: 'a', value: 'v' }, 'unknown', 11)];
  const r1 = resolveUnknownWrites(twoWriters, [put('a', 'v', 2, 20)], true);
  assert.deepEqual([r1.found, r1.absent], [0, 0]);
  assert.deepEqual(r1.operations, twoWriters);

  const one = [op(1, { type: 'put', key: 'a', value: 'v' }, 'unknown', 10)];
  const r2 = resolveUnknownWrites(one, [put('a', 'v', 2, 20), put('a', 'v', 3, 21)], true);
  assert.deepEqual(r2.operations, one);
  const r3 = resolveUnknownWrites(one, [put('a', 'v', 2, 5)], true);
  assert.deepEqual(r3.operations, one);
});

test("a txn is settled by its branch's puts: found together at one revision, with succeeded from the branch", () => {
  const txn: KvInput = {
    type: 'txn',
    compare: [{ key: 'a', target: 'version', result: '=', value: 0 }],
    success: [{ type: 'put', key: 'a', value: 's1' }, { type: 'put', key: 'b', value: 's2' }],
    failure: [{ type: 'put', key: 'c', value: 'f1' }],
  };
  const ops = [op(1, txn, 'unknown', 10)];
  const ok = resolveUnknownWrites(ops, [put('a', 's1', 4, 12), put('b', 's2', 4, 12)], true);
  assert.deepEqual(ok.operations, [{ ...ops[0]!, status: 'ok', output: { succeeded: true, revision: 4 }, returnTime: 12 }]);
  const failed = resolveUnknownWrites(ops, [put('c', 'f1', 3, 11)], true);
  assert.deepEqual(failed.operations, [{ ...ops[0]!, status: 'ok', output: { succeeded: false, revision: 3 }, returnTime: 11 }]);
  // one put of the branch at another revision, or missing: not settled
  assert.deepEqual(resolveUnknownWrites(ops, [put('a', 's1', 4, 12), put('b', 's2', 5, 13)], true).operations, ops);
  assert.deepEqual(resolveUnknownWrites(ops, [put('a', 's1', 4, 12)], true).operations, ops);
  // neither branch's puts anywhere in a complete history: it never took effect
  assert.equal(resolveUnknownWrites(ops, [], true).absent, 1);
});

test('a txn whose other branch could have changed the store without a put of its own stays unknown when its puts are absent', () => {
  const withDelete: KvInput = { type: 'txn', compare: [], success: [{ type: 'put', key: 'a', value: 'x' }], failure: [{ type: 'delete', key: 'a' }] };
  const readOnly: KvInput = { type: 'txn', compare: [], success: [{ type: 'put', key: 'a', value: 'y' }], failure: [{ type: 'get', key: 'a' }] };
  const ops = [op(1, withDelete, 'unknown', 10), op(2, readOnly, 'unknown', 10)];
  const r = resolveUnknownWrites(ops, [], true);
  assert.equal(r.absent, 1);
  assert.deepEqual(r.operations, [ops[0]]);
});

test('operations with a known outcome, reads and deletes pass through unchanged', () => {
  const ops = [
    op(1, { type: 'put', key: 'a', value: 'v' }, 'ok', 1, 2, { revision: 2 }),
    op(2, { type: 'put', key: 'b', value: 'w' }, 'fail', 3, 4),
    op(3, { type: 'delete', key: 'a' }, 'unknown', 5),
    op(4, { type: 'get', key: 'a' }, 'unknown', 6),
  ];
  const r = resolveUnknownWrites(ops, [put('a', 'v', 2, 2), put('b', 'w', 3, 5)], true);
  assert.deepEqual(r.operations, ops);
  assert.deepEqual([r.found, r.absent], [0, 0]);
});

test('highestRevisionSeen takes header, create and mod revisions of completed operations only', () => {
  const ops = [
    op(1, { type: 'get', key: 'a' }, 'ok', 1, 2, { value: 'v', revision: 5, modRevision: 4, createRevision: 3 }),
    op(2, { type: 'range', key: 'a', rangeEnd: 'z' }, 'ok', 1, 2, { kvs: [{ key: 'b', value: 'w', modRevision: 7, createRevision: 6 }] }),
    op(3, { type: 'put', key: 'a', value: 'x' }, 'unknown', 1, Infinity, undefined),
  ];
  assert.equal(highestRevisionSeen(ops), 7);
  assert.equal(highestRevisionSeen([]), 0);
});

test('a key or value holding NUL is matched as itself: a PUT of "a\\0b" = "c" does not settle a put of "a" = "b\\0c"', () => {
  const ops = [op(1, { type: 'put', key: 'a', value: 'b\u0000c' }, 'unknown', 1)];
  const r = resolveUnknownWrites(ops, [put('a\u0000b', 'c', 2, 5)], false);
  assert.deepEqual([r.found, r.absent], [0, 0]);
  assert.deepEqual(r.operations, ops);
});

test('an operation settles refuses stays as it is, found or absent (a client writing through a wrapper may store other keys)', () => {
  const ops = [op(1, { type: 'put', key: 'a', value: 'v' }, 'unknown', 1), op(2, { type: 'put', key: 'b', value: 'w' }, 'unknown', 1)];
  const r = resolveUnknownWrites(ops, [put('a', 'v', 2, 5)], true, () => false);
  assert.deepEqual([r.found, r.absent], [0, 0]);
  assert.deepEqual(r.operations, ops);
});

test('settled before the lease revocations are added, a txn that deleted a leased key at the revision a revoke answered is no revocation of its own', () => {
  // lease 7's key l put at 2; an unknown txn deletes l and puts a at 3; the
  // revoke then found no key and answered the current revision, 3
  const leases: LeaseRecord[] = [
    { kind: 'grant', id: 7, status: 'ok', callTime: 0, returnTime: 1, revision: 1 },
    { kind: 'revoke', id: 7, status: 'ok', callTime: 20, returnTime: 21, revision: 3 },
  ];
  const txn: KvInput = { type: 'txn', compare: [], success: [{ type: 'delete', key: 'l' }, { type: 'put', key: 'a', value: 'x' }], failure: [] };
  const ops = [
    op(1, { type: 'put', key: 'l', value: 'v1' }, 'ok', 2, 3, { revision: 2 }),
    op(2, txn, 'unknown', 10),
    op(3, { type: 'get', key: 'l' }, 'ok', 30, 31, { value: null, revision: 3 }),
  ];
  const deleteL: CommittedEvent = { record: { type: 'DELETE', kv: { key: 'l', modRevision: 3 } }, prevLease: 7, seenAt: 15 };
  const committed = [put('l', 'v1', 2, 2.5), deleteL, put('a', 'x', 3, 15)];
  const settled = resolveUnknownWrites(ops, committed, true);
  assert.equal(settled.found, 1);
  const built = buildCheckedHistory(settled.operations, committed, leases, []);
  assert.equal(built.revocations, 0, 'revision 3 is the txn’s');
  assert.equal(checkLinearizable(built.operations, kvModel()).result, 'ok');
});
