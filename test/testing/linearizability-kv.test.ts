// The linearizability checker with the KV model on hand-written histories:
// values, ranges, deletes, revisions (per-key and global), prevValue, txn
// compare-and-swap, unknown outcomes and partitioning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkLinearizable, inKeyRange, kvModel, partitionKvHistory, prefixRange } from '../../src/testing/index.js';
import type { KvCompare, KvInput, KvOutput, KvTxnOp, KvTxnOpResult } from '../../src/testing/index.js';
import { history, ok, unknown } from './build-history.js';

const put = (key: string, value: string) => ({ type: 'put', key, value }) as const;
const get = (key: string) => ({ type: 'get', key }) as const;
const del = (key: string) => ({ type: 'delete', key }) as const;
const txn = (compare: KvCompare[], success: KvTxnOp[], failure: KvTxnOp[] = []): KvInput => ({ type: 'txn', compare, success, failure });
const H = (...ops: Parameters<typeof history<KvInput, KvOutput>>) => history<KvInput, KvOutput>(...ops);

test('puts, gets, deletes and a prefix range in sequence are linearizable', () => {
  const h = H(
    ok(1, 0, 1, put('a/1', 'x'), { revision: 2 }),
    ok(1, 2, 3, put('a/2', 'y'), { revision: 3 }),
    ok(1, 4, 5, put('b', 'z'), { revision: 4 }),
    ok(2, 6, 7, { type: 'range', ...prefixRange('a/') }, {
      kvs: [
        { key: 'a/1', value: 'x', modRevision: 2, createRevision: 2, version: 1 },
        { key: 'a/2', value: 'y', modRevision: 3, createRevision: 3, version: 1 },
      ],
      revision: 4,
    }),
    ok(2, 8, 9, del('a/1'), { deleted: 1, revision: 5, prevValue: 'x' }),
    ok(2, 10, 11, get('a/1'), { value: null, revision: 5 }),
    ok(3, 12, 13, { type: 'range', key: '\0', rangeEnd: '\0' }, {
      kvs: [
        { key: 'a/2', value: 'y' },
        { key: 'b', value: 'z' },
      ],
      revision: 5,
    }),
  );
  assert.equal(checkLinearizable(h, kvModel()).result, 'ok');
  assert.equal(checkLinearizable(h, kvModel({ globalRevision: true })).result, 'ok');
});

test('a range that misses a key, returns an extra one or is out of key order is illegal', () => {
  const base = [ok<KvInput, KvOutput>(1, 0, 1, put('a', '1'), {}), ok<KvInput, KvOutput>(1, 2, 3, put('b', '2'), {})];
  const all: KvInput = { type: 'range', key: '\0', rangeEnd: '\0' };
  const missing = H(...base, ok(2, 4, 5, all, { kvs: [{ key: 'a', value: '1' }] }));
  const extra = H(...base, ok(2, 4, 5, all, { kvs: [{ key: 'a', value: '1' }, { key: 'b', value: '2' }, { key: 'c', value: '3' }] }));
  const unordered = H(...base, ok(2, 4, 5, all, { kvs: [{ key: 'b', value: '2' }, { key: 'a', value: '1' }] }));
  const right = H(...base, ok(2, 4, 5, all, { kvs: [{ key: 'a', value: '1' }, { key: 'b', value: '2' }] }));
  assert.equal(checkLinearizable(missing, kvModel()).result, 'illegal');
  assert.equal(checkLinearizable(extra, kvModel()).result, 'illegal');
  assert.equal(checkLinearizable(unordered, kvModel()).result, 'illegal');
  assert.equal(checkLinearizable(right, kvModel()).result, 'ok');
});

test('a stale get is illegal', () => {
  const h = H(ok(1, 0, 1, put('a', '1'), {}), ok(1, 2, 3, put('a', '2'), {}), ok(2, 4, 5, get('a'), { value: '1' }));
  const res = checkLinearizable(h, kvModel());
  assert.equal(res.result, 'illegal');
  assert.match(res.describe(), /get\("a"\) → "1"/);
});

test('the history is partitioned per key, and a range glues the keys it covers', () => {
  const perKey = H(ok(1, 0, 1, put('a', '1'), {}), ok(1, 2, 3, put('b', '1'), {}), ok(2, 4, 5, get('a'), { value: '1' }));
  assert.equal(checkLinearizable(perKey, kvModel()).partitions.length, 2);
  const glued = H(
    ok(1, 0, 1, put('a', '1'), {}),
    ok(1, 2, 3, put('b', '1'), {}),
    ok(1, 2, 3, put('z', '1'), {}),
    ok(2, 4, 5, { type: 'range', key: 'a', rangeEnd: 'c' }, { kvs: [{ key: 'a', value: '1' }, { key: 'b', value: '1' }] }),
  );
  const parts = partitionKvHistory(glued);
  assert.deepEqual(parts.map((p) => p.map((o) => o.id)), [[0, 1, 3], [2]]);
  assert.equal(checkLinearizable(glued, kvModel()).result, 'ok');
  assert.equal(checkLinearizable(glued, kvModel({ globalRevision: true })).partitions.length, 1);
});

test('a multi-key txn glues its keys into one partition', () => {
  const h = H(
    ok(1, 0, 1, put('a', '1'), {}),
    ok(1, 2, 3, put('b', '1'), {}),
    ok(1, 4, 5, put('c', '1'), {}),
    ok(2, 6, 7, txn([{ key: 'a', target: 'value', result: '=', value: '1' }], [put('b', '2')]), { succeeded: true }),
  );
  assert.deepEqual(partitionKvHistory(h).map((p) => p.map((o) => o.id)), [[0, 1, 3], [2]]);
});

test('per-key mode: a write revision that goes backwards is illegal', () => {
  const h = H(ok(1, 0, 1, put('a', '1'), { revision: 5 }), ok(1, 2, 3, put('a', '2'), { revision: 4 }));
  assert.equal(checkLinearizable(h, kvModel()).result, 'illegal');
  const fine = H(ok(1, 0, 1, put('a', '1'), { revision: 5 }), ok(1, 2, 3, put('a', '2'), { revision: 9 }));
  assert.equal(checkLinearizable(fine, kvModel()).result, 'ok');
});

test('per-key mode: a read whose header revision is older than a write it follows is illegal', () => {
  const h = H(ok(1, 0, 1, put('a', '1'), { revision: 5 }), ok(2, 2, 3, get('a'), { value: '1', revision: 4 }));
  assert.equal(checkLinearizable(h, kvModel()).result, 'illegal');
});

test('per-key mode: modRevision, createRevision and version are checked when reported', () => {
  const writes = [
    ok<KvInput, KvOutput>(1, 0, 1, put('a', '1'), { revision: 2 }),
    ok<KvInput, KvOutput>(1, 2, 3, put('a', '2'), { revision: 7 }),
  ];
  const right = H(...writes, ok(2, 4, 5, get('a'), { value: '2', modRevision: 7, createRevision: 2, version: 2, revision: 9 }));
  assert.equal(checkLinearizable(right, kvModel()).result, 'ok');
  for (const wrong of [
    { value: '2', modRevision: 2 },
    { value: '2', createRevision: 7 },
    { value: '2', version: 1 },
    { value: '2', modRevision: 7, revision: 6 },
  ]) {
    const h = H(...writes, ok(2, 4, 5, get('a'), wrong));
    assert.equal(checkLinearizable(h, kvModel()).result, 'illegal', JSON.stringify(wrong));
  }
});

test('per-key mode: a read whose version does not fit between its createRevision and modRevision, or created above its header, is illegal', () => {
  // version 2: the key was last written by a second put, at a revision above the one that created it
  const twoPuts = (read: KvOutput) => H(ok(1, 0, 1, put('a', '1'), {}), ok(1, 2, 3, put('a', '2'), {}), ok(2, 4, 5, get('a'), read));
  assert.equal(checkLinearizable(twoPuts({ value: '2', version: 2, createRevision: 3, modRevision: 3 }), kvModel()).result, 'illegal');
  assert.equal(checkLinearizable(twoPuts({ value: '2', version: 2, createRevision: 3, modRevision: 4 }), kvModel()).result, 'ok');
  // three writes since a creation at revision 4 end at revision 6 or later
  const threePuts = (modRevision: number) =>
    H(
      unknown(1, 0, put('a', '1')),
      unknown(1, 1, put('a', '2')),
      unknown(1, 2, put('a', '3')),
      ok(2, 4, 5, get('a'), { value: '3', version: 3, createRevision: 4, modRevision }),
    );
  assert.equal(checkLinearizable(threePuts(5), kvModel()).result, 'illegal');
  assert.equal(checkLinearizable(threePuts(6), kvModel()).result, 'ok');
  // the creating write is not above the revision the read was served at
  const created = (createRevision: number) => H(ok(1, 0, 1, put('a', '1'), {}), ok(2, 2, 3, get('a'), { value: '1', createRevision, revision: 5 }));
  assert.equal(checkLinearizable(created(9), kvModel()).result, 'illegal');
  assert.equal(checkLinearizable(created(5), kvModel()).result, 'ok');
  // a txn that puts a key twice (etcd refuses it) writes both at its one revision
  const twice = H(
    ok(1, 0, 1, txn([], [put('a', '1'), put('a', '2')]), { succeeded: true, revision: 2 }),
    ok(2, 2, 3, get('a'), { value: '2', version: 2, createRevision: 2, modRevision: 2, revision: 2 }),
  );
  assert.equal(checkLinearizable(twice, kvModel()).result, 'ok');
  // its createRevision and modRevision are that one revision
  const twiceUnreported = (createRevision: number) =>
    H(ok(1, 0, 1, txn([], [put('a', '1'), put('a', '2')]), { succeeded: true }), ok(2, 2, 3, get('a'), { value: '2', version: 2, createRevision, modRevision: 3 }));
  assert.equal(checkLinearizable(twiceUnreported(2), kvModel()).result, 'illegal');
  assert.equal(checkLinearizable(twiceUnreported(3), kvModel()).result, 'ok');
});

test('per-key mode: a later write at a known revision bounds a creation revision no write reported, and a read of it raises the store revision', () => {
  // the second put made revision 3, so the first one, which created the key, made 2 or less
  const created = (createRevision: number) =>
    H(
      ok(1, 0, 1, put('a', '1'), {}),
      ok(1, 2, 3, put('a', '2'), { revision: 3 }),
      ok(1, 4, 5, put('a', '3'), { revision: 5 }),
      ok(2, 6, 7, get('a'), { value: '3', version: 3, createRevision, modRevision: 5 }),
    );
  assert.equal(checkLinearizable(created(3), kvModel()).result, 'illegal');
  assert.equal(checkLinearizable(created(2), kvModel()).result, 'ok');
  // a key created at revision 7 was read: the store is at 7 or later afterwards
  const read = (revision: number) =>
    H(ok(1, 0, 1, put('a', '1'), {}), ok(2, 2, 3, get('a'), { value: '1', createRevision: 7, version: 1 }), ok(2, 4, 5, get('a'), { value: '1', revision }));
  assert.equal(checkLinearizable(read(5), kvModel()).result, 'illegal');
  assert.equal(checkLinearizable(read(7), kvModel()).result, 'ok');
});

test('per-key mode: a read that reports one of createRevision and modRevision bounds the other by the version', () => {
  // created at 3 and written again since: modRevision 4 or later, above the header
  const modAbove = (revision: number) =>
    H(ok(1, 0, 1, put('a', '1'), {}), ok(1, 2, 3, put('a', '2'), {}), ok(2, 4, 5, get('a'), { value: '2', version: 2, createRevision: 3, revision }));
  assert.equal(checkLinearizable(modAbove(3), kvModel()).result, 'illegal');
  assert.equal(checkLinearizable(modAbove(4), kvModel()).result, 'ok');
  // at version 2 last written at 3: created at 2 or earlier, whatever a later write's revision
  const createdBefore = (createRevision: number) =>
    H(
      ok(1, 0, 1, put('a', '1'), {}),
      ok(1, 2, 3, put('a', '2'), {}),
      ok(2, 4, 5, get('a'), { value: '2', version: 2, modRevision: 3 }),
      ok(1, 6, 7, put('a', '3'), {}),
      ok(2, 8, 9, get('a'), { value: '3', version: 3, createRevision, modRevision: 9 }),
    );
  assert.equal(checkLinearizable(createdBefore(3), kvModel()).result, 'illegal');
  assert.equal(checkLinearizable(createdBefore(2), kvModel()).result, 'ok');
});

test('per-key mode: a revision not reported by a write is learnt from a later read', () => {
  const h = H(
    ok(1, 0, 1, put('a', '1'), {}),
    ok(2, 2, 3, get('a'), { value: '1', modRevision: 4, createRevision: 4, version: 1 }),
    ok(2, 4, 5, get('a'), { value: '1', modRevision: 4 }),
  );
  assert.equal(checkLinearizable(h, kvModel()).result, 'ok');
  const inconsistent = H(
    ok(1, 0, 1, put('a', '1'), {}),
    ok(2, 2, 3, get('a'), { value: '1', modRevision: 4 }),
    ok(2, 4, 5, get('a'), { value: '1', modRevision: 5 }),
  );
  assert.equal(checkLinearizable(inconsistent, kvModel()).result, 'illegal');
});

test('per-key mode: a write whose revision is unknown still comes after every revision seen before it', () => {
  // b's put was invoked after revision 6 was reached, so its revision is above 6
  const oldMod = H(
    ok(1, 0, 1, put('a', '1'), { revision: 5 }),
    ok(1, 2, 3, del('a'), { deleted: 1, revision: 6 }),
    unknown(2, 4, put('a', 'b')),
    ok(3, 5, 6, get('a'), { value: 'b', modRevision: 4, createRevision: 4, version: 1, revision: 7 }),
  );
  assert.equal(checkLinearizable(oldMod, kvModel()).result, 'illegal');
  // the get sees 3 writes, so b's put came between revisions 5 and 6: no revision is left for it
  const squeezed = H(
    ok(1, 0, 1, put('a', '1'), { revision: 5 }),
    unknown(2, 2, put('a', 'b')),
    ok(1, 3, 4, put('a', '3'), { revision: 6 }),
    ok(3, 5, 6, get('a'), { value: '3', modRevision: 6, version: 3, revision: 6 }),
  );
  assert.equal(checkLinearizable(squeezed, kvModel()).result, 'illegal');
  const unreported = H(
    ok(1, 0, 1, put('a', '1'), { revision: 5 }),
    ok(2, 2, 3, put('a', '2'), {}),
    ok(1, 4, 5, put('a', '3'), { revision: 6 }),
  );
  assert.equal(checkLinearizable(unreported, kvModel()).result, 'illegal');
  const fine = H(
    ok(1, 0, 1, put('a', '1'), { revision: 5 }),
    ok(1, 2, 3, del('a'), { deleted: 1, revision: 6 }),
    unknown(2, 4, put('a', 'b')),
    ok(3, 5, 6, get('a'), { value: 'b', modRevision: 7, createRevision: 7, version: 1, revision: 7 }),
  );
  assert.equal(checkLinearizable(fine, kvModel()).result, 'ok');
});

test('per-key mode: a txn that writes comes after the revisions its own reads of other keys report', () => {
  // the get of "a" saw revision 5 before the txn wrote "b": the txn made revision 6 or later
  const read: KvTxnOp[] = [get('a'), put('b', '2')];
  const txnOut = (revision: number | undefined): KvOutput => ({
    succeeded: true,
    results: [{ value: '1', modRevision: 5 }, {}],
    ...(revision === undefined ? {} : { revision }),
  });
  const sameRevision = H(ok(1, 0, 1, put('a', '1'), {}), ok(2, 2, 3, txn([], read), txnOut(5)));
  assert.equal(checkLinearizable(sameRevision, kvModel()).result, 'illegal');
  const next = H(ok(1, 0, 1, put('a', '1'), {}), ok(2, 2, 3, txn([], read), txnOut(6)));
  assert.equal(checkLinearizable(next, kvModel()).result, 'ok');
  // its revision unreported: "b" cannot show revision 4 afterwards, nor the store still be at 5
  const bBelow = H(ok(1, 0, 1, put('a', '1'), {}), ok(2, 2, 3, txn([], read), txnOut(undefined)), ok(3, 4, 5, get('b'), { value: '2', modRevision: 4 }));
  assert.equal(checkLinearizable(bBelow, kvModel()).result, 'illegal');
  const storeBehind = H(ok(1, 0, 1, put('a', '1'), {}), ok(2, 2, 3, txn([], read), txnOut(undefined)), ok(3, 4, 5, get('a'), { value: '1', revision: 5 }));
  assert.equal(checkLinearizable(storeBehind, kvModel()).result, 'illegal');
  const bAbove = H(ok(1, 0, 1, put('a', '1'), {}), ok(2, 2, 3, txn([], read), txnOut(undefined)), ok(3, 4, 5, get('b'), { value: '2', modRevision: 6, revision: 6 }));
  assert.equal(checkLinearizable(bAbove, kvModel()).result, 'ok');
  // a read after the txn's own write of that key reports the txn's revision
  const own = H(ok(1, 0, 1, txn([], [put('a', '1'), get('a')]), { succeeded: true, results: [{}, { value: '1', modRevision: 5 }], revision: 5 }));
  assert.equal(checkLinearizable(own, kvModel()).result, 'ok');
});

test('global revision: a stale header revision on another key is caught only in global mode', () => {
  const h = H(
    ok(1, 0, 1, put('x', '1'), { revision: 2 }),
    ok(1, 2, 3, put('y', '1'), { revision: 3 }),
    ok(2, 4, 5, get('x'), { value: '1', modRevision: 2, revision: 2 }),
  );
  assert.equal(checkLinearizable(h, kvModel()).result, 'ok');
  const res = checkLinearizable(h, kvModel({ globalRevision: true }));
  assert.equal(res.result, 'illegal');
  assert.match(res.describe(), /@2/);
});

test('global revision: each changing write bumps the revision by exactly one; a delete of nothing does not', () => {
  const right = H(
    ok(1, 0, 1, put('a', '1'), { revision: 2 }),
    ok(1, 2, 3, del('b'), { deleted: 0, revision: 2 }),
    ok(1, 4, 5, put('c', '1'), { revision: 3 }),
    ok(1, 6, 7, del('a'), { deleted: 1, revision: 4 }),
  );
  assert.equal(checkLinearizable(right, kvModel({ globalRevision: true })).result, 'ok');
  const bumpedByNothing = H(
    ok(1, 0, 1, put('a', '1'), { revision: 2 }),
    ok(1, 2, 3, del('b'), { deleted: 0, revision: 3 }),
  );
  assert.equal(checkLinearizable(bumpedByNothing, kvModel({ globalRevision: true })).result, 'illegal');
  const skipped = H(ok(1, 0, 1, put('a', '1'), { revision: 2 }), ok(1, 2, 3, put('a', '2'), { revision: 4 }));
  assert.equal(checkLinearizable(skipped, kvModel({ globalRevision: true })).result, 'illegal');
  assert.equal(checkLinearizable(skipped, kvModel()).result, 'ok');
});

test('global revision: concurrent writes on different keys take consecutive revisions in some order', () => {
  const h = H(
    ok(1, 0, 10, put('a', '1'), { revision: 3 }),
    ok(2, 0, 10, put('b', '1'), { revision: 2 }),
    ok(3, 11, 12, { type: 'range', key: '\0', rangeEnd: '\0' }, {
      kvs: [
        { key: 'a', value: '1', modRevision: 3 },
        { key: 'b', value: '1', modRevision: 2 },
      ],
      revision: 3,
    }),
  );
  assert.equal(checkLinearizable(h, kvModel({ globalRevision: true })).result, 'ok');
});

test('prevValue of put and delete is checked', () => {
  const right = H(
    ok(1, 0, 1, put('a', '1'), { prevValue: null }),
    ok(1, 2, 3, put('a', '2'), { prevValue: '1' }),
    ok(1, 4, 5, del('a'), { deleted: 1, prevValue: '2' }),
    ok(1, 6, 7, del('a'), { deleted: 0, prevValue: null }),
  );
  assert.equal(checkLinearizable(right, kvModel()).result, 'ok');
  const wrong = H(ok(1, 0, 1, put('a', '1'), {}), ok(1, 2, 3, put('a', '2'), { prevValue: null }));
  assert.equal(checkLinearizable(wrong, kvModel()).result, 'illegal');
  const deletedNothing = H(ok(1, 0, 1, del('a'), { deleted: 1 }));
  assert.equal(checkLinearizable(deletedNothing, kvModel()).result, 'illegal');
});

test('txn CAS on version: one of two concurrent creators wins', () => {
  const create = (v: string): KvInput =>
    txn([{ key: 'lock', target: 'version', result: '=', value: 0 }], [put('lock', v)], [get('lock')]);
  const oneWins = H(
    ok(1, 0, 10, create('c1'), { succeeded: true, results: [{ prevValue: undefined }], revision: 2 }),
    ok(2, 0, 10, create('c2'), { succeeded: false, results: [{ value: 'c1', version: 1, modRevision: 2 }], revision: 2 }),
    ok(3, 11, 12, get('lock'), { value: 'c1' }),
  );
  assert.equal(checkLinearizable(oneWins, kvModel()).result, 'ok');
  assert.equal(checkLinearizable(oneWins, kvModel({ globalRevision: true })).result, 'ok');
  const bothWin = H(ok(1, 0, 10, create('c1'), { succeeded: true }), ok(2, 0, 10, create('c2'), { succeeded: true }));
  assert.equal(checkLinearizable(bothWin, kvModel()).result, 'illegal');
  const failedWrongly = H(ok(1, 0, 1, create('c1'), { succeeded: false }));
  assert.equal(checkLinearizable(failedWrongly, kvModel()).result, 'illegal');
});

test('txn compares: a value compare on a missing key is false; modRevision and createRevision of a missing key are 0', () => {
  const onMissing = H(
    ok(1, 0, 1, txn([{ key: 'a', target: 'value', result: '!=', value: 'x' }], [put('a', 'y')]), { succeeded: false }),
    ok(1, 2, 3, txn([{ key: 'a', target: 'modRevision', result: '=', value: 0 }], [put('a', 'y')]), { succeeded: true }),
    ok(1, 4, 5, txn([{ key: 'a', target: 'createRevision', result: '<', value: 1 }], [put('a', 'z')]), { succeeded: false }),
    ok(1, 6, 7, txn([{ key: 'a', target: 'value', result: '>', value: 'x' }], [put('a', 'z')]), { succeeded: true }),
    ok(1, 8, 9, get('a'), { value: 'z', version: 2 }),
  );
  assert.equal(checkLinearizable(onMissing, kvModel()).result, 'ok');
});

test('txn: reads in a branch see the branch\'s earlier writes; a txn bumps the revision once', () => {
  const h = H(
    ok(1, 0, 1, txn([], [put('a', '1'), put('b', '2'), get('a')]), {
      succeeded: true,
      results: [{ prevValue: null }, { prevValue: null }, { value: '1', modRevision: 2, version: 1 }],
      revision: 2,
    }),
    ok(1, 2, 3, get('b'), { value: '2', modRevision: 2, revision: 2 }),
    ok(1, 4, 5, txn([], [get('a')]), { succeeded: true, results: [{ value: '1' }], revision: 2 }),
  );
  assert.equal(checkLinearizable(h, kvModel({ globalRevision: true })).result, 'ok');
  const twoRevisions = H(ok(1, 0, 1, txn([], [put('a', '1'), put('b', '2')]), { succeeded: true, revision: 3 }));
  assert.equal(checkLinearizable(twoRevisions, kvModel({ globalRevision: true })).result, 'illegal');
});

test('txn: a branch result with the fields of another operation (the other branch ran) is illegal', () => {
  // the txn may come before the put (then version 0 holds and the get runs) or after it (the delete runs)
  const h = (succeeded: boolean, results: KvTxnOpResult[]) =>
    H(
      ok(1, 0, 10, put('a', '1'), {}),
      ok(2, 2, 3, txn([{ key: 'a', target: 'version', result: '=', value: 0 }], [get('a')], [del('a')]), { succeeded, results }),
    );
  assert.equal(checkLinearizable(h(true, [{ deleted: 1, prevValue: '1' }]), kvModel()).result, 'illegal');
  assert.equal(checkLinearizable(h(false, [{ deleted: 1, prevValue: '1' }]), kvModel()).result, 'ok');
  assert.equal(checkLinearizable(h(true, [{ value: null }]), kvModel()).result, 'ok');
  const write = (op: KvTxnOp, result: KvTxnOpResult) => H(ok(1, 0, 1, put('a', '1'), {}), ok(2, 2, 3, txn([], [op]), { succeeded: true, results: [result] }));
  assert.equal(checkLinearizable(write(put('a', '2'), { value: '1' }), kvModel()).result, 'illegal');
  assert.equal(checkLinearizable(write(put('a', '2'), { prevValue: '1' }), kvModel()).result, 'ok');
  assert.equal(checkLinearizable(write(del('a'), { deleted: 1, modRevision: 2 }), kvModel()).result, 'illegal');
  assert.equal(checkLinearizable(write(del('a'), { deleted: 1 }), kvModel()).result, 'ok');
});

test('an unknown put that took effect shows up with its revision; one that never did leaves revisions contiguous', () => {
  const tookEffect = H(
    ok(1, 0, 1, put('a', '1'), { revision: 2 }),
    unknown(2, 2, put('a', '2')),
    ok(3, 10, 11, get('a'), { value: '2', modRevision: 3, revision: 3 }),
    ok(3, 12, 13, put('b', '1'), { revision: 4 }),
  );
  assert.equal(checkLinearizable(tookEffect, kvModel({ globalRevision: true })).result, 'ok');
  assert.equal(checkLinearizable(tookEffect, kvModel()).result, 'ok');
  const never = H(
    ok(1, 0, 1, put('a', '1'), { revision: 2 }),
    unknown(2, 2, put('a', '2')),
    ok(3, 10, 11, get('a'), { value: '1', modRevision: 2, revision: 2 }),
    ok(3, 12, 13, put('b', '1'), { revision: 3 }),
  );
  assert.equal(checkLinearizable(never, kvModel({ globalRevision: true })).result, 'ok');
  assert.equal(checkLinearizable(never, kvModel()).result, 'ok');
});

test('an unknown put after which a revision gap appears must have taken effect in the gap', () => {
  const h = H(
    ok(1, 0, 1, put('a', '1'), { revision: 2 }),
    unknown(2, 2, put('b', 'x')),
    ok(3, 10, 11, put('c', '1'), { revision: 4 }),
    ok(3, 12, 13, get('b'), { value: null, revision: 4 }),
  );
  // revision 3 was taken by someone, but b is missing: only possible if b was deleted, so illegal
  assert.equal(checkLinearizable(h, kvModel({ globalRevision: true })).result, 'illegal');
});

test('an unknown txn whose compare depends on an unreported revision may have taken either branch', () => {
  const h = H(
    ok(1, 0, 1, put('a', '1'), {}),
    unknown(2, 2, txn([{ key: 'a', target: 'modRevision', result: '=', value: 7 }], [put('b', 'yes')], [put('b', 'no')])),
    ok(3, 10, 11, get('b'), { value: 'no' }),
  );
  assert.equal(checkLinearizable(h, kvModel()).result, 'ok');
  const yes = H(
    ok(1, 0, 1, put('a', '1'), {}),
    unknown(2, 2, txn([{ key: 'a', target: 'modRevision', result: '=', value: 7 }], [put('b', 'yes')], [put('b', 'no')])),
    ok(3, 10, 11, get('b'), { value: 'yes' }),
  );
  assert.equal(checkLinearizable(yes, kvModel()).result, 'ok');
  const learnt = H(
    ok(1, 0, 1, put('a', '1'), {}),
    ok(3, 2, 3, get('a'), { value: '1', modRevision: 5 }),
    unknown(2, 4, txn([{ key: 'a', target: 'modRevision', result: '=', value: 7 }], [put('b', 'yes')], [put('b', 'no')])),
    ok(3, 10, 11, get('b'), { value: 'yes' }),
  );
  assert.equal(checkLinearizable(learnt, kvModel()).result, 'illegal');
});

test('a txn compare on a revision the history never revealed is held to what is known of it, and tells it', () => {
  const cmp = (value: number): KvCompare => ({ key: 'a', target: 'modRevision', result: '=', value });
  // after revision 5, b's put cannot have revision 3
  const below = H(
    ok(1, 0, 1, put('a', '1'), { revision: 5 }),
    unknown(2, 2, put('a', 'b')),
    ok(3, 3, 4, txn([cmp(3)], [put('a', 'c')]), { succeeded: true, revision: 8 }),
  );
  assert.equal(checkLinearizable(below, kvModel()).result, 'illegal');
  // the txn saw b's put at revision 7; a later read cannot see it at 8
  const seen = (mod: number) =>
    H(
      ok(1, 0, 1, put('a', '1'), { revision: 5 }),
      unknown(2, 2, put('a', 'b')),
      ok(3, 3, 4, txn([cmp(7)], [get('a')]), { succeeded: true }),
      ok(3, 5, 6, get('a'), { value: 'b', modRevision: mod, revision: 9 }),
    );
  assert.equal(checkLinearizable(seen(8), kvModel()).result, 'illegal');
  assert.equal(checkLinearizable(seen(7), kvModel()).result, 'ok');
  // modRevision > 7 held: a later read cannot report 6
  const above = (mod: number) =>
    H(
      ok(1, 0, 1, put('a', '1'), { revision: 5 }),
      unknown(2, 2, put('a', 'b')),
      ok(3, 3, 4, txn([{ key: 'a', target: 'modRevision', result: '>', value: 7 }], [get('a')]), { succeeded: true }),
      ok(3, 5, 6, get('a'), { value: 'b', modRevision: mod, revision: 9 }),
    );
  assert.equal(checkLinearizable(above(6), kvModel()).result, 'illegal');
  assert.equal(checkLinearizable(above(8), kvModel()).result, 'ok');
});

test('a txn compare that failed, or held with <, > or !=, on a revision the history never revealed tells what it was not', () => {
  const cmp = (result: KvCompare['result'], value: number): KvCompare => ({ key: 'a', target: 'modRevision', result, value });
  // b's put took effect (the txn read its value) at a revision above 5 that no write reported
  const after = (compare: KvCompare[], succeeded: boolean, mod: number) =>
    H(
      ok(1, 0, 1, put('a', '1'), { revision: 5 }),
      unknown(2, 2, put('a', 'b')),
      ok(3, 3, 4, txn(compare, [get('a')], [get('a')]), { succeeded, results: [{ value: 'b' }] }),
      ok(3, 5, 6, get('a'), { value: 'b', modRevision: mod, revision: 20 }),
    );
  const cases: [KvCompare[], boolean, number, 'ok' | 'illegal'][] = [
    [[cmp('=', 7)], false, 7, 'illegal'],
    [[cmp('=', 7)], false, 8, 'ok'],
    [[cmp('!=', 7)], true, 7, 'illegal'],
    [[cmp('!=', 7)], true, 8, 'ok'],
    [[cmp('<', 7)], true, 7, 'illegal'],
    [[cmp('<', 7)], true, 6, 'ok'],
    [[cmp('<', 7)], false, 6, 'illegal'],
    [[cmp('<', 7)], false, 7, 'ok'],
    [[cmp('>', 7)], false, 8, 'illegal'],
    [[cmp('>', 7)], false, 7, 'ok'],
    // one of two compares the state cannot decide failed, whichever
    [[cmp('>', 6), cmp('<', 9)], false, 7, 'illegal'],
    [[cmp('>', 6), cmp('<', 9)], false, 6, 'ok'],
    [[cmp('>', 6), cmp('<', 9)], false, 9, 'ok'],
    [[cmp('>', 6), cmp('<', 9)], true, 9, 'illegal'],
    [[cmp('>', 6), cmp('<', 9)], true, 8, 'ok'],
    // a compare the state decides failed: the other tells nothing
    [[{ key: 'a', target: 'version', result: '=', value: 5 }, cmp('<', 9)], false, 7, 'ok'],
  ];
  for (const [compare, succeeded, mod, want] of cases) {
    assert.equal(checkLinearizable(after(compare, succeeded, mod), kvModel()).result, want, `${JSON.stringify(compare)} ${succeeded} then modRevision ${mod}`);
  }
  // what a failed compare told decides a later one: modRevision <= 7, so < 8 holds
  const decided = (succeeded: boolean) =>
    H(
      ok(1, 0, 1, put('a', '1'), { revision: 5 }),
      unknown(2, 2, put('a', 'b')),
      ok(3, 3, 4, txn([cmp('>', 7)], [get('a')], [get('a')]), { succeeded: false, results: [{ value: 'b' }] }),
      ok(3, 5, 6, txn([cmp('<', 8)], [], []), { succeeded }),
    );
  assert.equal(checkLinearizable(decided(false), kvModel()).result, 'illegal');
  assert.equal(checkLinearizable(decided(true), kvModel()).result, 'ok');
});

test('a lower bound a txn compare tells of a key\'s revision raises the store revision: a later write is above it', () => {
  const cmp = (result: KvCompare['result'], value: number): KvCompare => ({ key: 'a', target: 'modRevision', result, value });
  // the put took effect (the delete deleted it) at a revision no write reported
  const h = (compare: KvCompare, succeeded: boolean, revision: number) =>
    H(
      unknown(1, 0, put('a', '1')),
      ok(2, 1, 2, txn([compare], [get('a')], [get('a')]), { succeeded, results: [{ value: '1' }] }),
      ok(3, 3, 4, del('a'), { deleted: 1, revision }),
    );
  // modRevision > 5: the delete comes at 7 or later
  assert.equal(checkLinearizable(h(cmp('>', 5), true, 4), kvModel()).result, 'illegal');
  assert.equal(checkLinearizable(h(cmp('>', 5), true, 7), kvModel()).result, 'ok');
  // the put came at 2 or later, and not at 2: the delete comes at 4 or later
  assert.equal(checkLinearizable(h(cmp('=', 2), false, 3), kvModel()).result, 'illegal');
  assert.equal(checkLinearizable(h(cmp('=', 2), false, 4), kvModel()).result, 'ok');
});

test('the failure report describes KV operations readably', () => {
  const h = H(
    ok('alice', 0, 1, put('k', 'v1'), { revision: 2 }),
    ok('alice', 2, 3, put('k', 'v2'), { revision: 3 }),
    ok('bob', 4, 5, get('k'), { value: 'v1', modRevision: 2, revision: 2 }),
  );
  const text = checkLinearizable(h, kvModel()).describe();
  assert.match(text, /#0 client alice \[0, 1\] put\("k", "v1"\) → ok @2/);
  assert.match(text, /cannot be linearized next:\n\s+#2 client bob \[4, 5\] get\("k"\) → "v1" \{mod 2\} @2/);
  assert.match(text, /state after it: revision 3: \{"k": "v2"/);
});

test('the illegal sub-history of a stale read keeps the write it saw and the write it missed, not other keys', () => {
  const h = H(
    ok('alice', 0, 1, put('k', 'v1'), { revision: 2 }),
    ok('alice', 2, 3, put('k', 'v2'), { revision: 3 }),
    ok('carol', 0, 9, put('j', 'x'), { revision: 4 }),
    ok('bob', 4, 5, get('k'), { value: 'v1', modRevision: 2, revision: 3 }),
  );
  const res = checkLinearizable(h, kvModel());
  assert.equal(res.result, 'illegal');
  const p = res.partitions[res.illegalPartition]!;
  assert.deepEqual(p.illegal.map((o) => o.id), [0, 1, 3]);
  // and it is illegal on its own
  assert.equal(checkLinearizable(p.illegal, kvModel()).result, 'illegal');
  assert.equal(res.partitions.find((q) => q !== p)!.result, 'ok');
});

test('an input that is not a KvInput is refused with QUORUMKV_INVALID_ARGUMENT, not read as another operation', async () => {
  // a compare with `op` for `result` held for no outcome, so a compare-and-swap
  // that succeeded twice passed; `type: 'Put'` threw a TypeError
  const { isQuorumError, ErrorCode } = await import('../../src/errors.js');
  const bad: [string, unknown][] = [
    ['a compare with op instead of result', { type: 'txn', compare: [{ key: 'k', target: 'value', op: '=', value: 'a' }], success: [put('k', 'b')], failure: [] }],
    ['an unknown compare target', { type: 'txn', compare: [{ key: 'k', target: 'mod', result: '=', value: 1 }], success: [], failure: [] }],
    ['a capitalised type', { type: 'Put', key: 'k', value: 'v' }],
    ['a put without a value', { type: 'put', key: 'k' }],
    ['a branch op of another type', { type: 'txn', compare: [], success: [{ type: 'range', key: 'k' }], failure: [] }],
    // a revision compared with '' was read as 0, and with 'x' (NaN) made even != false
    ['a modRevision compared with an empty string', { type: 'txn', compare: [{ key: 'k', target: 'modRevision', result: '=', value: '' }], success: [], failure: [] }],
    ['a version compared with a word', { type: 'txn', compare: [{ key: 'k', target: 'version', result: '!=', value: 'x' }], success: [], failure: [] }],
    ['a createRevision compared with a fraction', { type: 'txn', compare: [{ key: 'k', target: 'createRevision', result: '<', value: 1.5 }], success: [], failure: [] }],
  ];
  for (const [name, input] of bad) {
    const h = H(ok(1, 0, 1, input as KvInput, { revision: 2 }));
    for (const globalRevision of [false, true]) {
      assert.throws(() => checkLinearizable(h, kvModel({ globalRevision })), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_ARGUMENT) && /kvModel/.test((e as Error).message), name);
    }
  }
});

test('a model whose state is a Map is memoized by its entries (a plain JSON key made every state alike)', async () => {
  const { checkLinearizable: check } = await import('../../src/testing/index.js');
  type S = Map<string, string>;
  const model = {
    init: (): S => new Map(),
    step: (s: S, input: { op: 'w' | 'r'; v: string }, output: string | undefined): readonly [boolean, S] => {
      if (input.op === 'w') return [true, new Map(s).set('x', input.v)];
      return [output === undefined || output === (s.get('x') ?? ''), s];
    },
  };
  // two concurrent writers, then reads of the first one's value: linearizable
  // (b, then a); the search tries a, then b first, and with every state
  // keyed alike it then skipped the order that works
  const h = history<{ op: 'w' | 'r'; v: string }, string>(
    ok(1, 0, 10, { op: 'w', v: 'a' }, ''),
    ok(2, 1, 11, { op: 'w', v: 'b' }, ''),
    ok(3, 12, 13, { op: 'r', v: '' }, 'a'),
    ok(3, 14, 15, { op: 'r', v: '' }, 'a'),
  );
  assert.equal(check(h, model).result, 'ok');
  // a read of a value never written is not
  const wrong = history<{ op: 'w' | 'r'; v: string }, string>(ok(1, 0, 1, { op: 'w', v: 'a' }, ''), ok(2, 2, 3, { op: 'r', v: '' }, 'z'));
  assert.equal(check(wrong, model).result, 'illegal');
});

test('states whose keys or values hold separator characters are memoized apart (key "a" = "p\\0v" is not key "a\\0p" = "v")', () => {
  // Linearizable only with put("a") last, at revision 4: put("a\0p"),
  // delete("a\0p") (revision 3) and delete("a") of nothing before it. The search first
  // reaches the same four operations in another order that leaves "a\0p" =
  // "v" at revision 4 instead, which the range refutes; with keys and values
  // written raw into the memo key, both states had one key and the search
  // skipped the order that works.
  const h = H(
    ok(1, 2, 20, put('a', 'p\u0000v'), {}),
    ok(2, 3, 20, del('a'), {}),
    ok(3, 4, 20, del('a\u0000p'), {}),
    ok(4, 5, 20, put('a\u0000p', 'v'), {}),
    ok(0, 30, 31, { type: 'range', key: 'a', rangeEnd: 'b' }, { kvs: [{ key: 'a', value: 'p\u0000v', modRevision: 4 }], revision: 4 }),
  );
  const res = checkLinearizable(h, kvModel({ globalRevision: true }));
  assert.equal(res.result, 'ok', res.describe());
  assert.deepEqual(res.partitions[0]!.linearization.slice(-2).map((o) => o.id), [0, 4]);
  // the state key tells the two states apart
  const m = kvModel();
  const run = (ops: KvInput[]) => ops.reduce((s, i) => m.step(s, i, {})[0]!, m.init()[0]!);
  const a = run([put('a\u0000p', 'v'), del('a\u0000p'), del('a'), put('a', 'p\u0000v')]);
  const b = run([put('a', 'p\u0000v'), del('a'), del('a\u0000p'), put('a\u0000p', 'v')]);
  assert.notEqual(m.key!(a), m.key!(b));
});

test('prefixRange covers exactly the keys that start with the prefix, by code point (U+1F3FF, U+FFFF, U+D7FF, U+10FFFF)', () => {
  const cases: [string, string[], string[]][] = [
    // U+1F3FF is "\uD83C\uDFFF": incrementing its low surrogate gave U+E000, below the prefix
    ['\u{1F3FF}', ['\u{1F3FF}', '\u{1F3FF}x', '\u{1F3FF}\u{10FFFF}'], ['\u{1F400}', '\u{1F3FE}z', '\uE000', 'x']],
    ['k/\u{1F3FF}', ['k/\u{1F3FF}', 'k/\u{1F3FF}/1'], ['k/\u{1F400}', 'k/\uE000', 'k0']],
    // U+FFFF is followed by U+10000, not by the character before it incremented
    ['a\uFFFF', ['a\uFFFF', 'a\uFFFF\u{10000}'], ['a\u{10000}', 'a\u{1F600}', 'b', 'a\uFFFE']],
    // after U+D7FF come U+E000 and up, not the surrogates (which sort above U+FFFF)
    ['a\uD7FF', ['a\uD7FF', 'a\uD7FFz'], ['a\uE000', 'a\uFFFF', 'a\u{10000}', 'b']],
    ['\u{10FFFF}', ['\u{10FFFF}', '\u{10FFFF}a'], ['\u{10FFFE}', 'z']],
    ['a\u{10FFFF}', ['a\u{10FFFF}', 'a\u{10FFFF}\u{10FFFF}'], ['b', 'a\u{10FFFE}']],
  ];
  for (const [prefix, inside, outside] of cases) {
    const r = prefixRange(prefix);
    for (const k of inside) assert.ok(inKeyRange(r, k), `${JSON.stringify(k)} in prefix ${JSON.stringify(prefix)}`);
    for (const k of outside) assert.ok(!inKeyRange(r, k), `${JSON.stringify(k)} not in prefix ${JSON.stringify(prefix)}`);
  }
  // a history whose prefix range read sees the key just written
  const h = H(
    ok(1, 0, 1, put('\u{1F3FF}x', '1'), {}),
    ok(1, 2, 3, { type: 'range', ...prefixRange('\u{1F3FF}') }, { kvs: [{ key: '\u{1F3FF}x', value: '1' }] }),
  );
  assert.equal(checkLinearizable(h, kvModel()).result, 'ok');
});
