// Regression tests: KvNode accepts a watch with an empty key, as etcd 3.4
// does (etcd checks no key in a WatchCreateRequest), and reads it as "\0",
// the smallest key, as etcd's watch server rewrites it (v3rpc/watch.go): key
// "" alone watches the key "\0", key "" with a range end every key below it,
// and with the range end "\0" every key. Found by the differential test (a
// watch {"key":"","startRevision":17,"prevKv":true} created by etcd and the
// store, refused by kvnode-1 and kvnode-3 with QUORUMKV_INVALID_ARGUMENT;
// the differential test now sends such watches to the KvNode targets too),
// and by a comparison with etcd 3.4.23 (watch("") saw a put of "\0" on etcd
// and nothing here).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { text } from '../../src/server/index.js';
import { withSingleMember } from './single-member.js';

test('a watch with an empty key and the range end "\\0" sees every key, as on etcd', () =>
  withSingleMember(async (node) => {
    await node.put('a', '1');
    const w = node.watch('', { rangeEnd: '\0', startRevision: 1 });
    await node.put('z', '2');
    const seen: string[] = [];
    for await (const res of w) {
      for (const e of res.events) seen.push(`${e.type} ${text(e.kv.key)}@${e.kv.modRevision}`);
      if (seen.length >= 2) break;
    }
    assert.deepEqual(seen, ['PUT a@2', 'PUT z@3']);
  }));

test('a watch with an empty key and a range end sees the keys below it, as on etcd', () =>
  withSingleMember(async (node) => {
    const w = node.watch('', { rangeEnd: 'b' });
    await node.put('b', 'no');
    await node.put('a', 'yes');
    for await (const res of w) {
      assert.deepEqual(
        res.events.map((e) => text(e.kv.key)),
        ['a'],
      );
      break;
    }
  }));

test('a watch of the empty key alone watches the key "\\0", as on etcd', () =>
  withSingleMember(async (node) => {
    const w = node.watch('');
    assert.equal(typeof w.id, 'number');
    await node.put('a', 'not watched');
    await node.put('\0', 'watched');
    for await (const res of w) {
      assert.deepEqual(
        res.events.map((e) => `${e.type} ${JSON.stringify(text(e.kv.key))}@${e.kv.modRevision}`),
        ['PUT "\\u0000"@3'],
      );
      break;
    }
    await w.cancel();
  }));
