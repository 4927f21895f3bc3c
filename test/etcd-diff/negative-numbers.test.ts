// Regression test: KvNode takes negative range limits, range filters and
// txn compare operands as etcd 3.4 and the MVCC store do, instead of
// refusing them with QUORUMKV_INVALID_ARGUMENT. Found by the differential
// test (a txn whose success branch reads with minCreateRevision -3: etcd
// and the store answered QUORUMKV_DUPLICATE_KEY, kvnode-1
// QUORUMKV_INVALID_ARGUMENT); it now sends these shapes to the KvNode
// targets too.
//
// etcd (observed through the etcd3 client, keys a@2 and b@3):
// - range [a, z) with limit -1: both keys, count 2 (a limit <= 0 is none);
// - maxModRevision -1: no key, count 2 (nothing is at or below -1);
// - minCreateRevision -1 (or minModRevision): both keys (no minimum);
// - compare version/createRevision/modRevision of a GREATER -1: true;
// - the same inside a txn;
// - compare lease of a GREATER -1: true (lease ids compare as int64);
// - put with lease -1: "etcdserver: requested lease not found", nothing
//   written; in the branch of a txn that does not run, no error at all.
//   (Found by a comparison with etcd 3.4.23.)
// - a watch from a negative start revision (-1, -9) after a compaction at
//   c: created, then cancelled with compactRevision c, as one below c;
//   before any compaction, a watch from -1 gets the next revisions. (The
//   store took every negative start as "from now", and the watch stayed.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CompareInput, KvNode } from '../../src/server/index.js';
import type { WatchResponse } from '../../src/mvccpb/index.js';
import { text } from '../../src/server/index.js';
import { ErrorCode } from '../../src/errors.js';
import { withSingleMember } from './single-member.js';

/** One member holding a@2 and b@3. */
function withMember(fn: (node: KvNode) => Promise<void>): Promise<void> {
  return withSingleMember(async (node) => {
    await node.put('a', '1');
    await node.put('b', '2');
    await fn(node);
  });
}

test('a negative range limit means no limit, as on etcd', () =>
  withMember(async (node) => {
    const r = await node.range({ key: 'a', rangeEnd: 'z', limit: -1 });
    assert.deepEqual(r.kvs.map((kv) => text(kv.key)), ['a', 'b']);
    assert.equal(r.count, 2);
    assert.equal(r.more, false);
  }));

test('a negative maximum revision filter keeps no key and a negative minimum keeps every key, as on etcd', () =>
  withMember(async (node) => {
    const none = await node.range({ key: 'a', rangeEnd: 'z', maxModRevision: -1 });
    assert.deepEqual(none.kvs, []);
    assert.equal(none.count, 2);
    for (const f of ['minCreateRevision', 'minModRevision'] as const) {
      const all = await node.range({ key: 'a', rangeEnd: 'z', [f]: -1 });
      assert.deepEqual(all.kvs.map((kv) => text(kv.key)), ['a', 'b']);
    }
  }));

test('txn compares with a negative operand compare numerically, as on etcd', () =>
  withMember(async (node) => {
    const compares: CompareInput[] = [
      { key: 'a', target: 'VERSION', result: 'GREATER', version: -1 },
      { key: 'a', target: 'CREATE', result: 'GREATER', createRevision: -1 },
      { key: 'a', target: 'MOD', result: 'GREATER', modRevision: -1 },
      { key: 'a', target: 'LEASE', result: 'GREATER', lease: -1 },
    ];
    for (const c of compares) {
      const r = await node.txn({ compare: [c], success: [{ range: { key: 'a', rangeEnd: 'z', limit: -1 } }] });
      assert.equal(r.succeeded, true, `${c.target} GREATER -1`);
      const first = r.responses[0]!;
      assert.ok('responseRange' in first);
      assert.equal(first.responseRange.kvs.length, 2);
    }
  }));

test('a put with a negative lease id is lease-not-found and changes nothing; in the branch that does not run it is no error, as on etcd', () =>
  withMember(async (node) => {
    const before = (await node.status()).header.revision;
    await assert.rejects(node.put('c', '3', { lease: -1 }), { code: ErrorCode.LEASE_NOT_FOUND });
    await assert.rejects(node.txn({ success: [{ put: { key: 'c', value: '3', lease: -1 } }] }), { code: ErrorCode.LEASE_NOT_FOUND });
    assert.equal((await node.status()).header.revision, before);
    assert.equal(await node.get('c'), undefined);
    const r = await node.txn({
      compare: [{ key: 'a', target: 'VERSION', result: 'EQUAL', version: 1 }],
      success: [{ put: { key: 'c', value: '3' } }],
      failure: [{ put: { key: 'd', value: '4', lease: -1 } }],
    });
    assert.equal(r.succeeded, true);
    assert.equal(text((await node.get('c'))?.value), '3');
  }));

test('a watch from a negative start revision is cancelled as compacted once there is a compaction, as on etcd', () =>
  withMember(async (node) => {
    const next = async (w: AsyncIterator<WatchResponse>): Promise<WatchResponse> => {
      const r = await Promise.race([w.next(), new Promise<never>((_, rej) => setTimeout(() => rej(new Error('no watch response in time')), 5000))]);
      assert.equal(r.done, false);
      return r.value as WatchResponse;
    };
    const early = node.watch('a', { startRevision: -1 })[Symbol.asyncIterator]();
    await node.put('a', '3'); // 4
    assert.deepEqual((await next(early)).events.map((e) => e.kv.modRevision), [4]);
    await early.return?.();
    await node.compact(3);
    for (const startRevision of [-1, -9]) {
      const w = node.watch('a', { startRevision })[Symbol.asyncIterator]();
      const r = await next(w);
      assert.deepEqual([r.canceled, r.compactRevision, r.events.length], [true, 3, 0], `start ${startRevision}`);
      assert.equal((await w.next()).done, true, `start ${startRevision}`);
    }
  }));
