// A member that moves to a new address, over the default TCP transport:
// updateMember (etcd's MemberUpdate) while it is down, then it restarts at
// the new address, and the others reach it there, also after they restart
// with their original configuration (the replicated address wins).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLevel } from 'memory-level';
import { freePort } from '../../examples/lib/free-port.js';
import { KvNode, text } from '../../src/server/index.js';
import { untilReal as until } from './helpers.js';

const VIEW = { keyEncoding: 'view', valueEncoding: 'view' } as const;

test('over TCP, a member updated to a new address and restarted there is reached at it, by members that restart with the old address too', async () => {
  const founders: Record<string, string> = {};
  for (const id of ['a', 'b', 'c']) founders[id] = `127.0.0.1:${await freePort()}`;
  const moved = `127.0.0.1:${await freePort()}`;
  const dbs: Record<string, MemoryLevel<Uint8Array, Uint8Array>> = {};
  const nodes: Record<string, KvNode | undefined> = {};
  const open = async (id: string, members: Record<string, string>): Promise<KvNode> => {
    dbs[id] ??= new MemoryLevel<Uint8Array, Uint8Array>(VIEW);
    const n = await KvNode.open({ id, db: dbs[id], members, tickMs: 20, electionTicks: 10, requestTimeoutMs: 5_000 });
    nodes[id] = n;
    return n;
  };
  const stop = async (id: string): Promise<void> => {
    await nodes[id]!.close();
    nodes[id] = undefined;
  };
  const value = async (n: KvNode): Promise<string | undefined> => {
    const kv = await n.get('k', { serializable: true });
    return kv === undefined ? undefined : text(kv.value);
  };
  try {
    await Promise.all(['a', 'b', 'c'].map((id) => open(id, founders)));
    await nodes.a!.put('k', 'v1');
    await until(async () => (await value(nodes.c!)) === 'v1', 'c has v1');
    await stop('c');

    // a and b, a quorum, commit c's new address; a and b redial c there
    const addressesOf = (n: KvNode): Record<string, string | undefined> => Object.fromEntries(n.memberList().members.map((m) => [m.id, m.address]));
    assert.deepEqual(addressesOf(nodes.a!), founders, "memberList gives the founders' addresses, from the members option");
    const cs = await nodes.a!.updateMember('c', moved);
    assert.deepEqual([...cs.voters].sort(), ['a', 'b', 'c'], 'the membership is unchanged');
    assert.deepEqual(addressesOf(nodes.a!), { ...founders, c: moved }, "memberList gives c's new address");
    await until(() => nodes.b!.raft.status().applied >= nodes.a!.raft.status().applied, 'b applies the update');

    // c restarts listening at the new address, and catches up
    await nodes.a!.put('k', 'v2');
    await open('c', { ...founders, c: moved });
    await until(async () => (await value(nodes.c!)) === 'v2', 'c, at its new address, catches up');

    // with b down, a and c are the quorum: a write needs a and c to talk
    await stop('b');
    await until(async () => (await nodes.a!.put('k', 'v3').then(() => true, () => false)), 'a write with b down');
    await until(async () => (await value(nodes.c!)) === 'v3', 'c has v3');

    // a restarts with its original configuration (c at the old address):
    // the update it applied again redirects it to c's new address
    await stop('a');
    await open('a', founders);
    assert.equal(addressesOf(nodes.a!).c, moved, 'the replicated address, not the one of the options');
    await until(async () => (await nodes.c!.put('k', 'v4').then(() => true, () => false)), 'a write through a and c after a restarts');
    await until(async () => (await value(nodes.a!)) === 'v4', 'a has v4');
  } finally {
    await Promise.all(Object.values(nodes).map((n) => n?.close().catch(() => undefined)));
  }
});
