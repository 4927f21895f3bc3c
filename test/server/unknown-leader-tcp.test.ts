// A member that is down while a new member is added, and comes back once
// that new member leads, over the default TCP transport: its applied
// membership does not hold the leader, whose appends it must take all the
// same (as etcd's rafthttp takes messages from any member not removed) and
// answer at the address the leader's handshake gives, to catch up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLevel } from 'memory-level';
import { freePort } from '../../examples/lib/free-port.js';
import { KvNode, text } from '../../src/server/index.js';
import { untilReal as until } from './helpers.js';

const VIEW = { keyEncoding: 'view', valueEncoding: 'view' } as const;

test('over TCP, a member down while another is replaced catches up once the new member leads', async () => {
  const members: Record<string, string> = {};
  for (const id of ['a', 'b', 'c', 'd']) members[id] = `127.0.0.1:${await freePort()}`;
  const founders = { a: members.a!, b: members.b!, c: members.c! };
  const dbs: Record<string, MemoryLevel<Uint8Array, Uint8Array>> = {};
  const nodes: Record<string, KvNode | undefined> = {};
  // strictReconfigCheck off: with c down, a voter is added all the same
  const open = async (id: string, extra: { members: Record<string, string>; join?: boolean }): Promise<KvNode> => {
    dbs[id] ??= new MemoryLevel<Uint8Array, Uint8Array>(VIEW);
    const n = await KvNode.open({ id, db: dbs[id], tickMs: 20, electionTicks: 10, requestTimeoutMs: 5_000, strictReconfigCheck: false, ...extra });
    nodes[id] = n;
    return n;
  };
  try {
    await Promise.all(['a', 'b', 'c'].map((id) => open(id, { members: founders })));
    const a = nodes.a!;
    await a.put('k', 'v1');
    await until(async () => text((await nodes.c!.get('k', { serializable: true }))?.value ?? new Uint8Array()) === 'v1', 'c has v1');
    await nodes.c!.close();
    nodes.c = undefined;
    // while c is down: b leads and adds d, d leads and removes b, b stops.
    // (A leader's stream to c queues what it sends while c is down, and
    // sends it when c is back; b, which sent c the addition of d, is gone
    // by then, and a, a follower since, sent c nothing.)
    const leader = (): KvNode | undefined => Object.values(nodes).find((n) => n?.raft.isLeader === true);
    const moveTo = async (to: KvNode, id: string): Promise<void> =>
      until(async () => {
        const l = leader();
        if (l !== undefined && l !== to) await l.moveLeader(id).catch(() => undefined);
        return to.raft.isLeader;
      }, `${id} leads`);
    await moveTo(nodes.b!, 'b');
    await nodes.b!.addMember('d', members.d!);
    const d = await open('d', { members, join: true });
    await until(async () => text((await d.get('k', { serializable: true }))?.value ?? new Uint8Array()) === 'v1', 'd caught up');
    await moveTo(d, 'd');
    await d.removeMember('b');
    await nodes.b!.close().catch(() => undefined);
    nodes.b = undefined;
    await d.put('k', 'v2');
    const term = d.raft.term;
    // c comes back knowing a, b and c only
    const c = await open('c', { members: founders });
    const known = c.raft.members();
    assert.ok(!known.voters.includes('d') && !known.learners.includes('d'), 'c does not know d when it restarts');
    await until(async () => text((await c.get('k', { serializable: true }))?.value ?? new Uint8Array()) === 'v2', 'c catches up from d');
    assert.ok(d.raft.isLeader && d.raft.term === term, `d still leads, in the same term (${term}, now ${d.raft.term}): c caught up from it, not through another election`);
    assert.deepEqual([...c.raft.members().voters].sort(), ['a', 'c', 'd'], 'c applied the replacement');
    // and c takes part: a linearizable read through it, a write through it
    await c.put('k', 'v3');
    assert.equal(text((await a.get('k'))!.value), 'v3');
  } finally {
    await Promise.all(Object.values(nodes).map((n) => n?.close().catch(() => undefined)));
  }
});
