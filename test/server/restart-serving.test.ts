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
import type { WatchResponse } from '../../src/mvccpb/index.js';
import { CrashableLevel } from '../../src/storage/index.js';
import { MemoryNetwork, type Transport } from '../../src/transport/index.js';
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

/**
 * A three-member cluster (a, b, c) on a virtual clock that has written,
 * then added 'd' as a learner: one put of `k` (v1), or with `bigPuts` that
 * many puts of `k0`, `k1`, ... of 200 KiB each, a log longer than one
 * message (maxSizePerMsg, 1 MiB). `revision` is the last write's.
 */
async function clusterAddingD(netSeed: number, nodeSeed: number, bigPuts?: number): Promise<{ clock: VirtualClock; net: MemoryNetwork; nodes: Map<string, KvNode>; leader: KvNode; revision: number }> {
  const clock = new VirtualClock();
  const net = new MemoryNetwork({ seed: netSeed, scheduler: clockScheduler(clock) });
  const ids = ['a', 'b', 'c'];
  const nodes = new Map<string, KvNode>();
  for (const [i, id] of ids.entries()) nodes.set(id, await KvNode.open(options(id, ids, net, new CrashableLevel<Uint8Array, Uint8Array>(VIEW), clock, nodeSeed + i)));
  await advanceUntil(clock, () => ids.some((id) => nodes.get(id)!.raft.isLeader), 5_000, 'leader');
  const leader = nodes.get(ids.find((id) => nodes.get(id)!.raft.isLeader)!)!;
  let revision = 0;
  if (bigPuts === undefined) {
    revision = (await settle(clock, leader.put('k', 'v1'))).value!.header.revision;
  } else {
    const big = 'x'.repeat(200 * 1024);
    for (let i = 0; i < bigPuts; i++) revision = (await settle(clock, leader.put(`k${i}`, big))).value!.header.revision;
  }
  await settle(clock, leader.addMember('d', undefined, { learner: true }));
  return { clock, net, nodes, leader, revision };
}

test('a joining member answers serializable reads only once it has heard from the cluster, not from its empty store', async () => {
  // etcd serves no request of a new member before its publish entry is
  // applied, after the leader's snapshot and entries
  const { clock, net, nodes, revision } = await clusterAddingD(5, 30);
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

// A watch from now is a request too: created on a restarted member before it
// has caught up, it starts after the revision the member has once caught up
// (as etcd's client would open it once the restarted server is ready), not
// after the older one its store reopened with, whose events the member
// replays and the cluster acknowledged before the restart.

/** A three-member cluster whose follower answered a write and was killed before its store wrote it, reopened cut off. */
async function restartedCutOff(seed: number): Promise<{
  clock: VirtualClock;
  net: MemoryNetwork;
  g: KvNode;
  others: KvNode[];
  follower: string;
  revision: number;
}> {
  const clock = new VirtualClock();
  const net = new MemoryNetwork({ seed, scheduler: clockScheduler(clock) });
  const ids = ['a', 'b', 'c'];
  const dbs = new Map(ids.map((id) => [id, new CrashableLevel<Uint8Array, Uint8Array>(VIEW)]));
  const nodes = new Map<string, KvNode>();
  for (const [i, id] of ids.entries()) nodes.set(id, await KvNode.open(options(id, ids, net, dbs.get(id)!, clock, seed * 10 + i)));
  await advanceUntil(clock, () => ids.some((id) => nodes.get(id)!.raft.isLeader), 5_000, 'leader');
  const leader = ids.find((id) => nodes.get(id)!.raft.isLeader)!;
  const follower = ids.find((id) => id !== leader)!;
  const f = nodes.get(follower)!;
  const put = await settle(clock, f.put('k', 'v1'));
  const revision = put.value!.header.revision;
  await advanceUntil(clock, () => f.store.currentRevision() >= revision, 5_000, 'follower applied');
  const db = dbs.get(follower)!;
  await db.crash();
  await f.close().catch(() => undefined);
  await db.open();
  net.isolate(follower);
  const g = await KvNode.open(options(follower, ids, net, db, clock, seed * 10 + 5));
  g.on('error', () => undefined);
  // the scenario: the store reopened behind the write it answered
  assert.ok(g.store.currentRevision() < revision, `store at ${g.store.currentRevision()}, the write at ${revision}`);
  return { clock, net, g, others: ids.filter((id) => id !== follower).map((id) => nodes.get(id)!), follower, revision };
}

/** Collects a watch's responses as they come. */
function collect(w: { on(e: 'response', fn: (r: WatchResponse) => void): unknown }): WatchResponse[] {
  const out: WatchResponse[] = [];
  w.on('response', (r) => out.push(r));
  return out;
}

test('a watch from now created on a restarted member before it caught up starts after the revision it has once caught up', async () => {
  const { clock, net, g, others, revision } = await restartedCutOff(7);
  const w = g.watch('k');
  const zero = g.watch('k', { startRevision: 0 });
  const responses = collect(w);
  const zeroResponses = collect(zero);
  // a progress asked for meanwhile says nothing older than the watch's start
  g.requestProgress();
  // an explicit start revision is served at once, from what it has applied
  const fromOne = g.watch('k', { startRevision: 1 });
  const fromOneResponses = collect(fromOne);
  // cut off longer than a few request timeouts: nothing is delivered meanwhile
  for (let t = 0; t < 8_000; t += 10) await clock.advanceAsync(10);
  const cutOff = [...responses, ...zeroResponses];
  net.heal();
  await advanceUntil(clock, () => g.raft.leader !== '', 5_000, 'the leader heard again');
  await advanceUntil(clock, () => g.store.currentRevision() >= revision, 5_000, 'the member replays the write');
  const later = await settle(clock, others[0]!.put('k', 'v2'));
  const next = later.value!.header.revision;
  await advanceUntil(clock, () => responses.some((r) => r.events.length > 0) && zeroResponses.some((r) => r.events.length > 0), 5_000, 'the watches deliver the write made after the heal');
  for (const rs of [responses, zeroResponses]) {
    const first = rs.find((r) => r.events.length > 0)!;
    assert.equal(first.events[0]!.kv.modRevision, next, `first event at ${first.events[0]!.kv.modRevision}, ${revision} acknowledged before the restart`);
  }
  for (const r of cutOff) assert.ok(r.header.revision >= revision, `a response at ${r.header.revision} (events: ${r.events.length}) while cut off, ${revision} acknowledged before the restart`);
  for (const rs of [responses, zeroResponses]) {
    const progress = rs.filter((r) => r.events.length === 0 && !r.canceled);
    assert.equal(progress.length, 1, 'the progress asked for during the wait comes once the watch has started');
    assert.ok(progress[0]!.header.revision >= revision && progress[0]!.header.revision < next);
  }
  // the explicit start revision got the replayed write, as before
  assert.equal(fromOneResponses.find((r) => r.events.length > 0)?.events[0]?.kv.modRevision, revision);
  await g.close();
  for (const n of others) await n.close();
});

test('a watch from now waiting for a restarted member to catch up can be cancelled, and ends when the member closes', async () => {
  const { clock, net, g, others } = await restartedCutOff(9);
  const cancelled = g.watch('k');
  const cancelledResponses = collect(cancelled);
  let cancelledEnded = false;
  cancelled.on('end', () => (cancelledEnded = true));
  const kept = g.watch('k');
  const keptResponses = collect(kept);
  let keptEnded = false;
  kept.on('end', () => (keptEnded = true));
  await clock.advanceAsync(100);
  await cancelled.cancel();
  await advanceUntil(clock, () => cancelledEnded, 1_000, 'the cancelled watch ends');
  assert.deepEqual(cancelledResponses, []);
  assert.equal(g.store.watcherGroups().waiting, 1);
  net.heal();
  await advanceUntil(clock, () => g.store.watcherGroups().waiting === 0, 5_000, 'the kept watch starts');
  assert.deepEqual(cancelledResponses, []);
  // cut off again and closed: the started watch ends with a cancelled response
  net.isolate(g.id);
  await g.close();
  await advanceUntil(clock, () => keptEnded, 1_000, 'the kept watch ends');
  assert.equal(keptResponses.at(-1)?.canceled, true);
  net.heal();
  for (const n of others) await n.close();
});

test('a watch from now waiting for a restarted member cut off ends with a cancelled response when the member closes', async () => {
  const { clock, g, others, revision } = await restartedCutOff(11);
  const w = g.watch('k');
  const responses = collect(w);
  let ended = false;
  w.on('end', () => (ended = true));
  await clock.advanceAsync(100);
  await g.close();
  await advanceUntil(clock, () => ended, 1_000, 'the watch ends');
  assert.equal(responses.length, 1);
  assert.equal(responses[0]!.canceled, true);
  assert.equal(responses[0]!.cancelReason, 'mvcc: store closed');
  assert.ok(responses[0]!.header.revision < revision);
  for (const n of others) await n.close();
});

test('a watch from now on a joining member that has not heard from the cluster starts after what the leader sends it', async () => {
  const { clock, net, nodes, leader, revision } = await clusterAddingD(13, 50);
  net.isolate('d');
  const d = await KvNode.open({ ...options('d', [], net, new CrashableLevel<Uint8Array, Uint8Array>(VIEW), clock, 60), members: undefined, join: true });
  d.on('error', () => undefined);
  const w = d.watch('k');
  const responses = collect(w);
  await clock.advanceAsync(1_000);
  net.heal();
  await advanceUntil(clock, () => d.store.currentRevision() >= revision, 5_000, 'the joiner catches up');
  await clock.advanceAsync(500);
  const later = await settle(clock, leader.put('k', 'v2'));
  await advanceUntil(clock, () => responses.some((r) => r.events.length > 0), 5_000, 'the watch delivers');
  assert.equal(responses.find((r) => r.events.length > 0)!.events[0]!.kv.modRevision, later.value!.header.revision);
  await d.close();
  for (const n of nodes.values()) await n.close();
});

test('a watch from now on a restarted member whose log ends with entries the cluster dropped starts once a ReadIndex round completes', async () => {
  // Its log ends with two entries of an old leader that never committed;
  // the leader after it writes one entry of its own over them, so applying
  // never reaches the end of the log it reopened with: the member catches
  // up by a ReadIndex round, which the waiting watch takes itself
  const clock = new VirtualClock();
  const net = new MemoryNetwork({ seed: 15, scheduler: clockScheduler(clock) });
  const ids = ['a', 'b', 'c', 'd', 'e'];
  const dbs = new Map(ids.map((id) => [id, new CrashableLevel<Uint8Array, Uint8Array>(VIEW)]));
  const nodes = new Map<string, KvNode>();
  for (const [i, id] of ids.entries()) nodes.set(id, await KvNode.open(options(id, ids, net, dbs.get(id)!, clock, 70 + i)));
  await advanceUntil(clock, () => ids.some((id) => nodes.get(id)!.raft.isLeader), 5_000, 'leader');
  const old = ids.find((id) => nodes.get(id)!.raft.isLeader)!;
  const victim = ids.find((id) => id !== old)!;
  const rest = ids.filter((id) => id !== old && id !== victim);
  const put = await settle(clock, nodes.get(old)!.put('k', 'v1'));
  const revision = put.value!.header.revision;
  await advanceUntil(clock, () => ids.every((id) => nodes.get(id)!.store.currentRevision() >= revision), 5_000, 'every member applied');
  const committed = nodes.get(victim)!.raft.status().commit;
  // the old leader reaches the victim alone: its next two entries are not committed
  net.partition([old, victim], rest);
  const lost = [nodes.get(old)!.put('k', 'lost1'), nodes.get(old)!.put('k', 'lost2')];
  for (const p of lost) p.catch(() => undefined);
  await advanceUntil(clock, () => nodes.get(victim)!.raft.status().lastIndex >= committed + 2, 5_000, 'the victim appended the entries');
  for (const id of [old, victim]) await nodes.get(id)!.close();
  net.heal();
  await advanceUntil(clock, () => rest.some((id) => nodes.get(id)!.raft.isLeader), 10_000, 'a new leader among the rest');
  const leader = nodes.get(rest.find((id) => nodes.get(id)!.raft.isLeader)!)!;
  net.isolate(victim);
  const v = await KvNode.open(options(victim, ids, net, dbs.get(victim)!, clock, 80));
  v.on('error', () => undefined);
  assert.ok(v.raft.status().lastIndex >= committed + 2 && v.raft.appliedIndex <= committed);
  const w = v.watch('k');
  const responses = collect(w);
  net.heal();
  await advanceUntil(clock, () => v.raft.leader === leader.id, 5_000, 'the victim hears the new leader');
  await clock.advanceAsync(1_000);
  const later = await settle(clock, leader.put('k', 'v2'));
  await advanceUntil(clock, () => responses.some((r) => r.events.length > 0), 5_000, 'the watch delivers the write made after the heal');
  assert.equal(responses.find((r) => r.events.length > 0)!.events[0]!.kv.modRevision, later.value!.header.revision);
  await v.close();
  for (const id of rest) await nodes.get(id)!.close();
});

test('a joining member that receives the log in several messages answers serializable reads only once it has all of it', async () => {
  // The leader sends a log longer than one message (maxSizePerMsg, 1 MiB)
  // in several appends; a serializable read made as the first of them is
  // applied must not answer from that part of the history: etcd's new
  // member serves only once its publish entry, after all of it, is applied
  const { clock, net, nodes, revision } = await clusterAddingD(17, 90, 16);
  const d = await KvNode.open({ ...options('d', [], net, new CrashableLevel<Uint8Array, Uint8Array>(VIEW), clock, 99), members: undefined, join: true });
  d.on('error', () => undefined);
  let first: Promise<{ value?: Awaited<ReturnType<KvNode['range']>>; error?: unknown }> | undefined;
  let firstApplied = 0;
  d.raft.on('applied', (index: number) => {
    if (first !== undefined) return;
    firstApplied = index;
    first = settle(clock, d.range({ key: 'k15', serializable: true }));
  });
  await advanceUntil(clock, () => first !== undefined, 5_000, 'the joiner applies');
  const read = await first!;
  assert.equal(read.error, undefined, String(read.error));
  assert.ok(read.value!.header.revision >= revision, `a joiner that had applied up to index ${firstApplied} served revision ${read.value!.header.revision}, ${revision} committed before it joined`);
  assert.equal(read.value!.kvs.length, 1);
  await d.close();
  for (const n of nodes.values()) await n.close();
});

test('a watch from now created as the rounds taken for the watches that waited end (the last of them cancelled) still starts on a joining member', async () => {
  // The member takes ReadIndex rounds while a watch from now waits for it
  // to catch up, and stops when none waits any more. A watch created right
  // after the last one is cancelled, a few microtasks later, must take them
  // up again: a joining member with an empty log catches up only by a
  // ReadIndex round, so that watch would wait while the member is healthy
  for (let depth = 0; depth <= 4; depth++) {
    const { clock, net, nodes, leader } = await clusterAddingD(19, 100);
    net.isolate('d');
    const d = await KvNode.open({ ...options('d', [], net, new CrashableLevel<Uint8Array, Uint8Array>(VIEW), clock, 110), members: undefined, join: true });
    d.on('error', () => undefined);
    const first = d.watch('k');
    // cut off longer than a request timeout: its rounds fail at once (no leader), each followed by a pause
    await clock.advanceAsync(3_000);
    let second: ReturnType<KvNode['watch']> | undefined;
    let responses: WatchResponse[] = [];
    d.on('leaderChange', (id) => {
      if (id === '' || second !== undefined) return;
      // the pause ends as the leader is heard of; the watch that waited is cancelled
      void first.cancel();
      let hops = depth;
      const create = (): void => {
        if (hops-- > 0) {
          queueMicrotask(create);
          return;
        }
        second = d.watch('k');
        responses = collect(second);
      };
      create();
    });
    net.heal();
    await advanceUntil(clock, () => second !== undefined, 5_000, 'the joiner hears of the leader');
    await clock.advanceAsync(1_000);
    const later = await settle(clock, leader.put('k', 'v2'));
    await advanceUntil(clock, () => responses.some((r) => r.events.length > 0), 5_000, `the watch created ${depth} microtasks after the cancel delivers`);
    assert.equal(responses.find((r) => r.events.length > 0)!.events[0]!.kv.modRevision, later.value!.header.revision);
    await d.close();
    for (const n of nodes.values()) await n.close();
  }
});

test('a joining member restarted with part of the log the leader sent answers serializable reads only once it has all of it', async () => {
  // It went down after the first of the leader's appends and reopens,
  // again with `join: true`, with a log that is no longer empty: applying
  // that part does not catch it up with what was committed when it joined
  const { clock, net, nodes, revision } = await clusterAddingD(19, 110, 16);
  const db = new CrashableLevel<Uint8Array, Uint8Array>(VIEW);
  // (its options' own transport is replaced: the one made last for an id is the one that works)
  const dOptions = { ...options('d', [], net, db, clock, 119), members: undefined, join: true };
  // the joiner receives the first part of the log, then nothing more
  const inner = net.transport('d');
  let gotEntries = false;
  const partial: Transport = {
    id: 'd',
    start: (handler) =>
      inner.start({
        ...handler,
        receive: (msg) => {
          if (gotEntries) return;
          // the first append it can take: from the start of the log (a probe at the leader's last index is refused)
          if (msg.type === 'MsgApp' && msg.index === 0 && msg.entries.length > 0) gotEntries = true;
          handler.receive(msg);
        },
        reportUnreachable: (id) => handler.reportUnreachable(id),
        reportSnapshot: (id, status) => handler.reportSnapshot(id, status),
      }),
    send: (messages) => inner.send(messages),
    addPeer: (id, address) => inner.addPeer(id, address),
    removePeer: (id) => inner.removePeer(id),
    close: () => inner.close(),
  };
  const d = await KvNode.open({ ...dOptions, transport: partial });
  d.on('error', () => undefined);
  await advanceUntil(clock, () => d.raft.appliedIndex > 0, 5_000, 'the joiner applies');
  await clock.advanceAsync(1_100);
  const applied = d.raft.appliedIndex;
  assert.equal(d.raft.status().lastIndex, applied);
  await d.close();
  net.isolate('d');
  const again = await KvNode.open({ ...dOptions, transport: net.transport('d') });
  again.on('error', () => undefined);
  const read = await settle(clock, again.range({ key: 'k15', serializable: true }));
  if (read.value !== undefined) {
    assert.ok(read.value.header.revision >= revision, `a restarted joiner that had applied up to index ${applied} served revision ${read.value.header.revision}, ${revision} committed before it joined`);
  } else {
    assert.match(String((read.error as { code?: string }).code), /^QUORUMKV_(NO_LEADER|TIMEOUT)$/, String(read.error));
  }
  net.heal();
  await advanceUntil(clock, () => again.raft.leader !== '', 5_000, 'the restarted joiner hears the leader');
  const healed = await settle(clock, again.range({ key: 'k15', serializable: true }));
  assert.equal(healed.error, undefined, String(healed.error));
  assert.ok(healed.value!.header.revision >= revision);
  await again.close();
  for (const n of nodes.values()) await n.close();
});
