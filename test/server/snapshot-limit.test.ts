// Snapshots a leader makes for lagging followers (on-demand mode): a
// follower refusing one as larger than its maxSnapshotBytes is tried again
// after a back-off of its own; the store is read off the apply queue; a
// snapshot held for followers keeps the entries after it until every send of
// it is reported, across slow reads, slow transfers, failures of another
// follower's send and a lost-and-regained leadership, and one no follower
// takes is let go by an idle leader. Real TCP on 127.0.0.1
// where named, else the in-process cluster on a virtual clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLevel } from 'memory-level';
import { freePort } from '../../examples/lib/free-port.js';
import { KvNode, text } from '../../src/server/index.js';
import { MvccStore } from '../../src/mvcc/index.js';
import type { Message } from '../../src/raftpb/index.js';
import { KvStateMachine } from '../../src/server/kv-state-machine.js';
import { MemoryTransport } from '../../src/transport/memory-transport.js';
import { KvCluster } from './helpers.js';

const IDS = ['a', 'b', 'c'];

/** One put every 10 virtual ms to whichever member leads; returns what stops them. */
function steadyWrites(c: KvCluster): () => void {
  let stop = false;
  let n = 0;
  const writer = (): void => {
    if (stop) return;
    c.leader()
      ?.put(`w${n++}`, 'x')
      .catch(() => {});
    c.clock.setTimeout(writer, 10);
  };
  writer();
  return () => (stop = true);
}

/**
 * Hands every MsgSnap the in-process transports send to `route` (with what
 * delivers it, and the sending transport) instead of sending it; other
 * messages go out as usual. Returns what restores the transports.
 */
function routeSnapshots(route: (m: Message, deliver: () => void, from: MemoryTransport) => void): () => void {
  const send = MemoryTransport.prototype.send;
  MemoryTransport.prototype.send = function (this: MemoryTransport, msgs) {
    for (const m of msgs) if (m.type === 'MsgSnap') route(m, () => send.call(this, [m]), this);
    send.call(
      this,
      msgs.filter((m) => m.type !== 'MsgSnap'),
    );
  };
  return () => (MemoryTransport.prototype.send = send);
}

/** Runs `before` ahead of each read of the store's records for a snapshot; returns what undoes it. */
function beforeSnapshotReads(before: () => Promise<void>): () => void {
  const proto = MvccStore.prototype as unknown as { collect(snap: unknown): Promise<Uint8Array[]> };
  const collect = proto.collect;
  proto.collect = async function (this: unknown, snap: unknown) {
    await before();
    return collect.call(this, snap);
  };
  return () => (proto.collect = collect);
}

/** Stops `ids`, then makes 200 writes on the leader they miss. */
async function fallBehind(c: KvCluster, leader: KvNode, ids: string[]): Promise<void> {
  for (const id of ids) await c.stop(id);
  for (let i = 0; i < 200; i++) await c.run(leader.put(`k${i}`, `v${i}`));
}

test('a follower refusing a snapshot as larger than its maxSnapshotBytes gets fewer and fewer tries, and catches up once the limit is raised', async () => {
  const members: Record<string, string> = {};
  for (const id of IDS) members[id] = `127.0.0.1:${await freePort()}`;
  const dbs = new Map(IDS.map((id) => [id, new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' })]));
  const nodes = new Map<string, KvNode>();
  const open = async (id: string, maxSnapshotBytes?: number): Promise<KvNode> => {
    const n = await KvNode.open({ id, members, db: dbs.get(id)!, tickMs: 10, electionTicks: 10, snapshotEntries: 100, snapshotCatchUpEntries: 10, ...(maxSnapshotBytes === undefined ? {} : { maxSnapshotBytes }) });
    nodes.set(id, n);
    return n;
  };
  // counts the snapshots the state machines take for followers
  const original = KvStateMachine.prototype.beginSnapshot;
  let taken = 0;
  KvStateMachine.prototype.beginSnapshot = function (this: KvStateMachine) {
    taken++;
    return original.call(this);
  };
  const until = async (cond: () => boolean, what: string, ms = 10_000): Promise<void> => {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  try {
    for (const id of IDS) await open(id);
    await until(() => [...nodes.values()].some((n) => n.raft.isLeader), 'a leader');
    const leader = [...nodes.values()].find((n) => n.raft.isLeader)!;
    const lagging = IDS.find((id) => id !== leader.id)!;
    await nodes.get(lagging)!.close();
    nodes.delete(lagging);
    for (let i = 0; i < 1000; i += 100) await Promise.all(Array.from({ length: 100 }, (_, j) => leader.put(`k${i + j}`, 'v'.repeat(2000))));
    // the store is about 2 MB: the lagging member accepts 512 KiB
    const small = await open(lagging, 512 * 1024);
    taken = 0;
    await new Promise((r) => setTimeout(r, 3_000));
    // heartbeat responses every 10 ms: about 300 tries without a back-off; with it (100 ms, 200, 400, 800, 1600) at most 6
    assert.ok(taken >= 1 && taken <= 7, `snapshots taken in 3 s: ${taken}`);
    assert.ok(small.status().revision < leader.status().revision, 'the follower has not caught up');
    await small.close();
    nodes.delete(lagging);
    // raised, the limit lets it catch up (after the back-off, at most 3.2 s)
    const big = await open(lagging, 64 * 1024 * 1024);
    await until(() => big.status().revision === leader.status().revision, 'the follower catches up');
    assert.equal((await big.get('k999', { serializable: true }))?.value.length, 2000);
  } finally {
    KvStateMachine.prototype.beginSnapshot = original;
    for (const n of nodes.values()) await n.close();
  }
});


test('while the leader reads its store for a lagging follower, its applies go on (the state is captured between two applies, read after)', async () => {
  const c = new KvCluster(IDS, 5);
  c.extra = () => ({ snapshotEntries: 50, snapshotCatchUpEntries: 5 });
  // the store's read of its records for a snapshot waits for this gate
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  let reading = 0;
  const undo = beforeSnapshotReads(async () => {
    reading++;
    await gate;
  });
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const lagging = c.followers()[0]!.id;
    await fallBehind(c, leader, [lagging]);
    await c.start(lagging);
    await c.waitFor(() => reading > 0, 5_000, 'the leader reads its store for the follower');
    // the read is held: writes are still applied and answered
    const put = await c.run(leader.put('during', 'the read'), 2_000);
    assert.ok(put.header.revision > 200);
    open();
    await c.waitFor(() => c.node(lagging).status().revision === leader.status().revision, 10_000, 'the follower catches up');
    assert.equal(text((await c.run(c.node(lagging).get('k0', { serializable: true })))?.value), 'v0');
  } finally {
    open();
    undo();
    await c.closeAll();
  }
});

test('a snapshot read that takes longer than the leader takes to apply snapshotEntries entries still reaches the follower under a steady write load', async () => {
  const c = new KvCluster(IDS, 5);
  c.extra = () => ({ snapshotEntries: 50, snapshotCatchUpEntries: 5 });
  let reads = 0;
  let slow = false;
  const undo = beforeSnapshotReads(async () => {
    if (!slow) return;
    reads++;
    await new Promise<void>((r) => c.clock.setTimeout(() => r(), 1_000)); // a large store: 1 s to read
  });
  let stopWrites = (): void => {};
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const lagging = c.followers()[0]!.id;
    await fallBehind(c, leader, [lagging]);
    slow = true;
    // one write every 10 ms: 100 entries applied during each read, two local snapshots' worth
    stopWrites = steadyWrites(c);
    await c.start(lagging);
    await c.waitFor(() => c.node(lagging).status().revision >= 200, 20_000, 'the follower gets a snapshot');
    assert.ok(reads <= 2, `the leader read its whole store ${reads} times`);
  } finally {
    stopWrites();
    undo();
    await c.closeAll();
  }
});

test('the back-off is per follower: a new member gets its snapshot at once while another keeps refusing its own', async () => {
  const founders = ['a', 'b', 'c'];
  const c = new KvCluster([...founders, 'd'], 7);
  c.extra = () => ({ snapshotEntries: 100, snapshotCatchUpEntries: 10 });
  let refusing = '';
  /** Virtual time of each MsgSnap sent, per follower. */
  const sent: Record<string, number[]> = {};
  // the refusing follower's sends fail 10 ms after they start (as a refusal
  // by its maxSnapshotBytes would); the others' arrive at once
  const undo = routeSnapshots((m, deliver, from) => {
    (sent[m.to] ??= []).push(c.clock.now());
    if (m.to === refusing) c.clock.setTimeout(() => from.reportSnapshot(m.to, 'failure'), 10);
    else deliver();
  });
  try {
    for (const id of founders) await c.start(id, { members: founders });
    const leader = await c.waitLeader();
    refusing = c.followers()[0]!.id;
    await fallBehind(c, leader, [refusing]);
    await c.start(refusing, { members: founders });
    // its refusals pile up: after the sixth, its back-off is 3.2 s (an election timeout of 100 ms, doubled 5 times)
    await c.waitFor(() => (sent[refusing]?.length ?? 0) >= 6, 10_000, `six snapshots refused by ${refusing}`);
    const added = c.clock.now();
    await c.run(leader.addMember('d', undefined, { learner: true }));
    const d = await c.start('d', { join: true });
    await c.waitFor(() => d.status().revision === leader.status().revision, 10_000, 'd catches up');
    const took = c.clock.now() - added;
    // behind a back-off shared with the other follower, d would wait for that follower's next try, 3.2 s after its last
    assert.ok(took < 1_000, `d caught up ${took} ms after it was added`);
    assert.ok(c.node(refusing).status().revision < leader.status().revision, 'the refusing follower is still behind');
  } finally {
    undo();
    await c.closeAll();
  }
});

test('a snapshot that takes longer to reach the follower than the leader takes to apply snapshotEntries entries: the entries after it stay until it is reported, and one snapshot suffices', async () => {
  const c = new KvCluster(IDS, 7);
  c.extra = () => ({ snapshotEntries: 50, snapshotCatchUpEntries: 5 });
  // every MsgSnap takes 1 s (virtual) to arrive, as a large store's would over TCP
  const snaps: number[] = [];
  const undo = routeSnapshots((m, deliver) => {
    snaps.push(m.snapshot!.metadata.index);
    c.clock.setTimeout(deliver, 1_000);
  });
  let stopWrites = (): void => {};
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const lagging = c.followers()[0]!.id;
    await fallBehind(c, leader, [lagging]);
    // one write every 10 ms: 100 entries applied while a snapshot is in flight
    stopWrites = steadyWrites(c);
    await c.start(lagging);
    await c.waitFor(() => snaps.length > 0 && c.node(lagging).raft.status().applied >= leader.raft.status().applied - 20, 15_000, 'the follower within 20 entries of the leader');
    assert.ok(snaps.length <= 2, `the follower was sent ${snaps.length} snapshots (at ${snaps.join(', ')})`);
  } finally {
    stopWrites();
    undo();
    await c.closeAll();
  }
});

test('a failed snapshot send to one follower does not drop the snapshot still in flight to another', async () => {
  const c = new KvCluster(['a', 'b', 'c', 'd', 'e'], 7);
  c.extra = () => ({ snapshotEntries: 50, snapshotCatchUpEntries: 5 });
  let failing = '';
  const snaps: Record<string, number[]> = {};
  // the failing follower's sends fail after 200 ms (as a refusal would); the other's arrive after 1 s
  const undo = routeSnapshots((m, deliver, from) => {
    (snaps[m.to] ??= []).push(m.snapshot!.metadata.index);
    if (m.to === failing) c.clock.setTimeout(() => from.reportSnapshot(m.to, 'failure'), 200);
    else c.clock.setTimeout(deliver, 1_000);
  });
  let stopWrites = (): void => {};
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const [slow, refusing] = c.followers().map((f) => f.id) as [string, string];
    failing = refusing;
    await fallBehind(c, leader, [slow, refusing]);
    stopWrites = steadyWrites(c);
    for (const id of [slow, refusing]) await c.start(id);
    await c.waitFor(() => (snaps[slow]?.length ?? 0) > 0 && c.node(slow).raft.status().applied >= leader.raft.status().applied - 20, 15_000, `${slow} within 20 entries of the leader`);
    assert.ok(snaps[slow]!.length <= 1, `${slow} was sent ${snaps[slow]!.length} snapshots (${snaps[slow]!.join(', ')})`);
  } finally {
    stopWrites();
    undo();
    await c.closeAll();
  }
});

test("a leader that loses leadership and wins it back: the earlier term's snapshot report does not drop the snapshot in flight in the new term", async () => {
  const c = new KvCluster(IDS, 7);
  c.extra = () => ({ snapshotEntries: 20, snapshotCatchUpEntries: 5 });
  const snaps: { from: string; term: number; index: number }[] = [];
  // a large store: the first snapshot takes 1.5 s to arrive, later ones 3 s
  const undo = routeSnapshots((m, deliver) => {
    snaps.push({ from: m.from, term: m.term, index: m.snapshot!.metadata.index });
    c.clock.setTimeout(deliver, snaps.length === 1 ? 1_500 : 3_000);
  });
  let stopWrites = (): void => {};
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const [other, lagging] = c.followers().map((f) => f.id) as [string, string];
    await fallBehind(c, leader, [lagging]);
    stopWrites = steadyWrites(c);
    await c.start(lagging);
    await c.waitFor(() => snaps.length > 0, 5_000, 'a first snapshot');
    // leadership moves away and back while that snapshot is in flight
    await c.run(leader.moveLeader(other));
    await c.waitFor(() => c.node(other).raft.isLeader, 2_000, `${other} leads`);
    await c.run(c.node(other).moveLeader(leader.id));
    await c.waitFor(() => leader.raft.isLeader, 2_000, `${leader.id} leads again`);
    const term = leader.raft.term;
    await c.waitFor(() => c.node(lagging).raft.status().applied >= leader.raft.status().applied - 20, 20_000, 'the follower within 20 entries of the leader');
    const mine = snaps.filter((s) => s.from === leader.id && s.term === term);
    assert.ok(mine.length <= 1, `in term ${term} ${leader.id} sent ${mine.length} snapshots (${mine.map((s) => s.index).join(', ')})`);
  } finally {
    stopWrites();
    undo();
    await c.closeAll();
  }
});

test('a snapshot taken for a follower that went away before it was sent is let go by an idle leader', async () => {
  const c = new KvCluster(IDS, 5);
  c.extra = () => ({ snapshotEntries: 50, snapshotCatchUpEntries: 5 });
  // the leader's read of its store for the follower waits for this gate
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  let reading = 0;
  const undo = beforeSnapshotReads(async () => {
    reading++;
    await gate;
  });
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const lagging = c.followers()[0]!.id;
    await fallBehind(c, leader, [lagging]);
    await c.start(lagging);
    await c.waitFor(() => reading > 0, 5_000, 'the leader reads its store for the follower');
    // the follower stops while the leader reads: nobody takes the snapshot, and no write comes
    await c.stop(lagging);
    open();
    const mem = (leader.raft as unknown as { mem: { holdsSendable: boolean } }).mem;
    await c.waitFor(() => mem.holdsSendable, 1_000, 'the snapshot is offered');
    // a copy of the whole store: kept until the next local snapshot, which an idle leader never takes
    await c.waitFor(() => !mem.holdsSendable, 2_000, 'the leader lets the snapshot go');
    // back, the follower gets one taken again
    await c.start(lagging);
    await c.waitFor(() => c.node(lagging).status().revision === leader.status().revision, 10_000, 'the follower catches up');
  } finally {
    open();
    undo();
    await c.closeAll();
  }
});
