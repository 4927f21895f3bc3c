// Regression test: a keep-alive of the lease id 0 fails with
// QUORUMKV_LEASE_NOT_FOUND, as etcd 3.4 answers it (TTL 0, which clientv3's
// KeepAliveOnce reads as "lease not found") and as the MVCC store does;
// KvNode used to refuse it as QUORUMKV_INVALID_ARGUMENT. Found with the
// keep-alives of the differential test, which now sends them to the KvNode
// targets too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLevel } from 'memory-level';
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import { KvNode } from '../../src/server/index.js';
import { MemoryNetwork } from '../../src/transport/index.js';

test('a keep-alive of the lease id 0 fails with lease not found, as on etcd', async () => {
  const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
  const node = await KvNode.open({ id: 'm1', members: ['m1'], transport: new MemoryNetwork({ seed: 1 }).transport('m1'), db });
  try {
    node.raft.campaign();
    for (let i = 0; i < 1000 && !node.raft.isLeader; i++) await new Promise((r) => setTimeout(r, 5));
    assert.ok(node.raft.isLeader);
    await assert.rejects(node.leaseRevoke(0), (err) => isQuorumError(err) && err.code === ErrorCode.LEASE_NOT_FOUND);
    await assert.rejects(node.leaseKeepAlive(0), (err) => isQuorumError(err) && err.code === ErrorCode.LEASE_NOT_FOUND);
  } finally {
    await node.close();
    await db.close();
  }
});
