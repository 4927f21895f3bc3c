// A restarted member answers serializable reads only once it has caught up
// with what it had applied before it went down. The store writes its
// backend in batches (backendBatchIntervalMs) and the Raft node saves the
// commit index lazily, so a member killed after answering a write reopens
// with a store that may be older than that answer; it replays the rest of
// its log only once it learns the commit again. etcd serves no client
// request before its server is ready (`ReadyNotify`: its publish entry is
// applied, after every entry committed before it), so a serializable read
// from a restarted etcd never goes back before what that member answered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../src/node/index.js';
import { KvNode, type KvNodeOptions } from '../../src/server/index.js';
import { CrashableLevel } from '../../src/storage/index.js';
import { MemoryNetwork } from '../../src/transport/index.js';
import { advanceUntil, clockScheduler, electionJitter } from '../node/helpers.js';

const VIEW = { keyEncoding: 'view', valueEncoding: 'view' } as const;

/** Settles `p` by advancing the virtual clock (ms at a time), up to `limitMs`. */
async function settle<T>(clock: VirtualClock, p: Promise<T>, limitMs = 10_000): Promise<{ value?: T; error?: unknown }> {
  let out: { value?: T; error?: unknown } | undefined;
  p.then(
    (value) => (out = { value }),
    (error: unknown) => (out = { error }),
  );
  for (let t = 0; out === undefined && t < limitMs; t++) await clock.advanceAsync(1);
  assert.ok(out !== undefined, `not settled within ${limitMs} virtual ms`);
  return out;
}

function options(id: string, members: string[], net: MemoryNetwork, db: CrashableLevel<Uint8Array, Uint8Array>, clock: VirtualClock, seed: number): KvNodeOptions {
  return {
    id,
    members,
    transport: net.transport(id),
    db,
    clock,
    tickMs: 10,
    electionTicks: 10,
    requestTimeoutMs: 2_000,
    // the store's writes wait a second: a crash loses what was applied since
    backendBatchIntervalMs: 1_000,
    random: electionJitter(seed),
  };
}

test('a member killed after answering a write answers no serializable read from before it once restarted', async () => {
  const clock = new VirtualClock();
  const net = new MemoryNetwork({ seed: 1, scheduler: clockScheduler(clock) });
  const db = new CrashableLevel<Uint8Array, Uint8Array>(VIEW);
  let node = await KvNode.open(options('a', ['a'], net, db, clock, 1));
  await advanceUntil(clock, () => node.raft.isLeader, 5_000, 'leader');
  const put = await settle(clock, node.put('k', 'v1'));
  const revision = put.value!.header.revision;
  const before = await node.range({ key: 'k', serializable: true });
  assert.equal(before.header.revision, revision);
  // killed within the store's batch interval: its write of the put is lost
  await db.crash();
  await node.close().catch(() => undefined);
  await db.open();
  node = await KvNode.open(options('a', ['a'], net, db, clock, 2));
  node.on('error', () => undefined);
  const after = await settle(clock, node.range({ key: 'k', serializable: true }));
  assert.equal(after.error, undefined, String(after.error));
  assert.ok(after.value!.header.revision >= revision, `revision ${after.value!.header.revision} after the restart, ${revision} answered before it`);
  assert.equal(new TextDecoder().decode(after.value!.kvs[0]?.value), 'v1');
  // the same for a serializable read-only txn
  const txn = await settle(clock, node.txn({ success: [{ range: { key: 'k', serializable: true } }] }));
  assert.ok(txn.value!.header.revision >= revision);
  await node.close();
});

test('a restarted follower cut off from the quorum fails serializable reads until it catches up, then serves them cut off', async () => {
  const clock = new VirtualClock();
  const net = new MemoryNetwork({ seed: 3, scheduler: clockScheduler(clock) });
  const ids = ['a', 'b', 'c'];
  const dbs = new Map(ids.map((id) => [id, new CrashableLevel<Uint8Array, Uint8Array>(VIEW)]));
  const nodes = new Map<string, KvNode>();
  for (const [i, id] of ids.entries()) nodes.set(id, await KvNode.open(options(id, ids, net, dbs.get(id)!, clock, 10 + i)));
  await advanceUntil(clock, () => ids.some((id) => nodes.get(id)!.raft.isLeader), 5_000, 'leader');
  const leader = ids.find((id) => nodes.get(id)!.raft.isLeader)!;
  const follower = ids.find((id) => id !== leader)!;
  const f = nodes.get(follower)!;
  const put = await settle(clock, f.put('k', 'v1'));
  const revision = put.value!.header.revision;
  await advanceUntil(clock, () => f.store.currentRevision() >= revision, 5_000, 'follower applied');
  // killed before its store's batch is written, and restarted cut off
  const db = dbs.get(follower)!;
  await db.crash();
  await f.close().catch(() => undefined);
  await db.open();
  net.isolate(follower);
  const g = await KvNode.open(options(follower, ids, net, db, clock, 20));
  g.on('error', () => undefined);
  const cutOff = await settle(clock, g.range({ key: 'k', serializable: true }));
  if (cutOff.value !== undefined) {
    assert.ok(cutOff.value.header.revision >= revision, `served revision ${cutOff.value.header.revision} cut off, ${revision} answered before the restart`);
  } else {
    assert.match(String((cutOff.error as { code?: string }).code), /^QUORUMKV_(NO_LEADER|TIMEOUT)$/, String(cutOff.error));
  }
  net.heal();
  await advanceUntil(clock, () => g.raft.leader !== '', 5_000, 'the leader heard again');
  const healed = await settle(clock, g.range({ key: 'k', serializable: true }));
  assert.equal(healed.error, undefined, String(healed.error));
  assert.ok(healed.value!.header.revision >= revision);
  // caught up once: cut off again, it serves serializable reads as before
  net.isolate(follower);
  const again = await settle(clock, g.range({ key: 'k', serializable: true }), 50);
  assert.equal(again.error, undefined, String(again.error));
  assert.ok(again.value!.header.revision >= revision);
  net.heal();
  await g.close();
  for (const id of ids) if (id !== follower) await nodes.get(id)!.close();
});

test('a joining member answers serializable reads only once it has heard from the cluster, not from its empty store', async () => {
  // etcd serves no request of a new member before its publish entry is
  // applied, after the leader's snapshot and entries
  const clock = new VirtualClock();
  const net = new MemoryNetwork({ seed: 5, scheduler: clockScheduler(clock) });
  const ids = ['a', 'b', 'c'];
  const nodes = new Map<string, KvNode>();
  for (const [i, id] of ids.entries()) nodes.set(id, await KvNode.open(options(id, ids, net, new CrashableLevel<Uint8Array, Uint8Array>(VIEW), clock, 30 + i)));
  await advanceUntil(clock, () => ids.some((id) => nodes.get(id)!.raft.isLeader), 5_000, 'leader');
  const leader = nodes.get(ids.find((id) => nodes.get(id)!.raft.isLeader)!)!;
  const put = await settle(clock, leader.put('k', 'v1'));
  const revision = put.value!.header.revision;
  await settle(clock, leader.addMember('d', undefined, { learner: true }));
  net.isolate('d');
  const d = await KvNode.open({ ...options('d', [], net, new CrashableLevel<Uint8Array, Uint8Array>(VIEW), clock, 40), members: undefined, join: true });
  d.on('error', () => undefined);
  const cutOff = await settle(clock, d.range({ key: 'k', serializable: true }));
  if (cutOff.value !== undefined) {
    assert.ok(cutOff.value.header.revision >= revision, `a joiner served revision ${cutOff.value.header.revision} before hearing from the cluster`);
  } else {
    assert.match(String((cutOff.error as { code?: string }).code), /^QUORUMKV_(NO_LEADER|TIMEOUT)$/, String(cutOff.error));
  }
  net.heal();
  await advanceUntil(clock, () => d.raft.leader !== '', 5_000, 'the joiner hears the leader');
  const heard = await settle(clock, d.range({ key: 'k', serializable: true }));
  assert.equal(heard.error, undefined, String(heard.error));
  assert.equal(new TextDecoder().decode(heard.value!.kvs[0]?.value), 'v1');
  await d.close();
  for (const n of nodes.values()) await n.close();
});
