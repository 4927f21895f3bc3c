// Regression test: KvNode accepts a watch with an empty key, as etcd 3.4 and
// the MVCC store do (etcd checks no key in a WatchCreateRequest): key ""
// alone watches the key "" (which no put can write), key "" with a range
// end every key below it, and with the range end "\0" every key. Found by
// the differential test (a watch {"key":"","startRevision":17,"prevKv":true}
// created by etcd and the store, refused by kvnode-1 and kvnode-3 with
// QUORUMKV_INVALID_ARGUMENT); the differential test now sends such watches
// to the KvNode targets too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLevel } from 'memory-level';
import { KvNode, text } from '../../src/server/index.js';
import { MemoryNetwork } from '../../src/transport/index.js';

async function singleMember(): Promise<{ node: KvNode; db: MemoryLevel<Uint8Array, Uint8Array> }> {
  const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
  const node = await KvNode.open({ id: 'm1', members: ['m1'], transport: new MemoryNetwork({ seed: 1 }).transport('m1'), db });
  node.raft.campaign();
  for (let i = 0; i < 1000 && !node.raft.isLeader; i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(node.raft.isLeader);
  return { node, db };
}

test('a watch with an empty key and the range end "\\0" sees every key, as on etcd', async () => {
  const { node, db } = await singleMember();
  try {
    await node.put('a', '1');
    const w = node.watch('', { rangeEnd: '\0', startRevision: 1 });
    await node.put('z', '2');
    const seen: string[] = [];
    for await (const res of w) {
      for (const e of res.events) seen.push(`${e.type} ${text(e.kv.key)}@${e.kv.modRevision}`);
      if (seen.length >= 2) break;
    }
    assert.deepEqual(seen, ['PUT a@2', 'PUT z@3']);
  } finally {
    await node.close();
    await db.close();
  }
});

test('a watch with an empty key and a range end sees the keys below it, as on etcd', async () => {
  const { node, db } = await singleMember();
  try {
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
  } finally {
    await node.close();
    await db.close();
  }
});

test('a watch of the empty key alone is created, as on etcd', async () => {
  const { node, db } = await singleMember();
  try {
    const w = node.watch('');
    assert.equal(typeof w.id, 'number');
    await w.cancel();
  } finally {
    await node.close();
    await db.close();
  }
});
