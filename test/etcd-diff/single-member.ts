// A one-member KvNode on memory-level for the regression tests that pin
// behaviours the differential test found: opened, elected, passed to `fn`,
// then closed with its database.
import assert from 'node:assert/strict';
import { MemoryLevel } from 'memory-level';
import { KvNode } from '../../src/server/index.js';
import { MemoryNetwork } from '../../src/transport/index.js';

export async function withSingleMember(fn: (node: KvNode) => Promise<void>): Promise<void> {
  const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
  const node = await KvNode.open({ id: 'm1', members: ['m1'], transport: new MemoryNetwork({ seed: 1 }).transport('m1'), db });
  try {
    node.raft.campaign();
    for (let i = 0; i < 1000 && !node.raft.isLeader; i++) await new Promise((r) => setTimeout(r, 5));
    assert.ok(node.raft.isLeader);
    await fn(node);
  } finally {
    await node.close();
    await db.close();
  }
}
