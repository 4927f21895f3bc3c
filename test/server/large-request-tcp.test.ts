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
