// A KvNode whose maxRequestBytes is raised above what the default TCP
// transport's frames used to hold: a request it accepts must reach the
// other members, not stall the cluster.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLevel } from 'memory-level';
import { freePort } from '../../examples/lib/free-port.js';
import { KvNode, text } from '../../src/server/index.js';

const IDS = ['a', 'b', 'c'];

test('with maxRequestBytes above 4 MiB, a write that large is replicated over the default TCP transport and the cluster goes on', async () => {
  // before: its MsgApp encoded above the transport's 4 MiB maxFrameBytes was
  // dropped at every send and the follower reported unreachable, for good:
  // nothing committed after it, on any member
  const members: Record<string, string> = {};
  for (const id of IDS) members[id] = `127.0.0.1:${await freePort()}`;
  const nodes = await Promise.all(
    IDS.map((id) =>
      KvNode.open({
        id,
        members,
        db: new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' }),
        tickMs: 20,
        electionTicks: 10,
        maxRequestBytes: 8 * 1024 * 1024,
        requestTimeoutMs: 5_000,
      }),
    ),
  );
  try {
    await nodes[0]!.put('before', 'x');
    const big = new Uint8Array(6 * 1024 * 1024).fill(7);
    await nodes[0]!.put('big', big);
    await nodes[1]!.put('after', 'y');
    for (const n of nodes) {
      const kv = await n.get('big');
      assert.equal(kv?.value.length, big.length, 'every member has the large value');
      assert.equal(text((await n.get('after'))!.value), 'y');
    }
  } finally {
    await Promise.all(nodes.map((n) => n.close()));
  }
});

test('concurrent writes near maxRequestBytes made on a follower are forwarded and applied over the default TCP transport', async () => {
  // before: the follower handed them to Raft in one batch, forwarded as one
  // MsgProp of every entry (3 x 1.4 MiB): above the 4 MiB maxFrameBytes, it
  // was dropped at the sender and each write timed out, never applied
  const members: Record<string, string> = {};
  for (const id of IDS) members[id] = `127.0.0.1:${await freePort()}`;
  const nodes = await Promise.all(
    IDS.map((id) =>
      KvNode.open({
        id,
        members,
        db: new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' }),
        tickMs: 20,
        electionTicks: 10,
        requestTimeoutMs: 5_000,
      }),
    ),
  );
  try {
    await nodes[0]!.put('before', 'x');
    const follower = nodes.find((n) => !n.raft.isLeader)!;
    const big = new Uint8Array(1400 * 1024).fill(7);
    const results = await Promise.allSettled([0, 1, 2].map((i) => follower.put(`big/${i}`, big)));
    assert.deepEqual(
      results.map((r) => (r.status === 'fulfilled' ? 'ok' : String((r.reason as Error).message))),
      ['ok', 'ok', 'ok'],
    );
    for (const n of nodes) assert.equal((await n.range({ key: 'big/', prefix: true, countOnly: true })).count, 3);
  } finally {
    await Promise.all(nodes.map((n) => n.close()));
  }
});
