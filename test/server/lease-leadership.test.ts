// Lease expiry across a change of leader on a 3-member in-process cluster
// (MemoryNetwork, memory-level, virtual clock): only the leader that found a
// lease expired may revoke it, in its own term. Deterministic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LEASE_REVOKE_RATE, Lessor } from '../../src/lease/index.js';
import { text } from '../../src/server/index.js';
import { KvCluster } from './helpers.js';

const IDS = ['a', 'b', 'c'];

test('a lease the leader finds expired during a leadership transfer is not revoked by the next leader, which restarted its TTL', async () => {
  const c = new KvCluster(IDS, 5);
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const b = c.node(IDS.find((id) => id !== leader.id)!);
    const lease = await c.run(leader.leaseGrant(1));
    await c.run(leader.put('held', 'v', { lease: lease.id }));
    // the transfer starts 20 ms before the lease expires on the leader; what
    // the others send the leader takes 80 ms, so it hears of the new term
    // only after a lease check (every 50 ms) has found the lease expired
    // while it was still leading, handing over: Raft drops its proposals then,
    // and the revoke waited for the next leader
    await c.clock.advanceAsync(leader.store.lessor.lookup(lease.id)!.expiry - c.clock.now() - 20);
    let found = false;
    const expired = leader.store.lessor.expired.bind(leader.store.lessor);
    leader.store.lessor.expired = (limit?: number) => {
      const ids = expired(limit);
      if (ids.includes(lease.id) && leader.raft.isLeader) found = true;
      return ids;
    };
    for (const id of IDS) if (id !== leader.id) c.net.setDelay({ minMs: 80, maxMs: 80 }, { from: id, to: leader.id });
    const moved = c.run(leader.moveLeader(b.id));
    await c.waitFor(() => b.raft.isLeader, 2_000, 'b leading');
    const since = c.clock.now();
    await moved;
    await c.waitFor(() => leader.raft.leader === b.id, 1_000, 'the old leader following b');
    c.net.resetFaults();
    assert.ok(found, 'the old leader found the lease expired while leading');
    // b restarted the lease's TTL when elected: it lives at least 1 s more
    await c.clock.advanceAsync(since + 900 - c.clock.now());
    for (const id of IDS) {
      const kv = await c.run(c.node(id).get('held', { serializable: true }));
      assert.equal(kv === undefined ? undefined : text(kv.value), 'v', `the key is gone on ${id} ${c.clock.now() - since} ms after b took over`);
    }
    // and then expires by b's clock
    await c.waitFor(() => b.store.lessor.lookup(lease.id) === undefined, 2_000, 'the revoke by b');
    assert.equal(await c.run(b.get('held')), undefined);
  } finally {
    await c.closeAll();
  }
});

test('a new leader expires no lease before it has applied the entries of earlier terms: keep-alives among them count (etcd promotes its lessor at its empty entry)', async () => {
  const c = new KvCluster(IDS, 6);
  let release = (): void => undefined;
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const [b, other] = IDS.filter((id) => id !== leader.id).map((id) => c.node(id));
    const lease = await c.run(leader.leaseGrant(1));
    const ttlMs = leader.store.lessor.lookup(lease.id)!.ttl * 1000;
    await c.run(leader.put('held', 'v', { lease: lease.id }));
    await c.waitFor(() => b!.store.lessor.lookup(lease.id) !== undefined, 2_000, 'b applies the grant');
    // b stops applying (its log still takes entries): a slow state machine
    const sm = (b as unknown as { sm: { apply(entries: unknown[]): Promise<unknown> } }).sm;
    const apply = sm.apply.bind(sm);
    const gate = new Promise<void>((r) => (release = r));
    sm.apply = async (entries) => {
      await gate;
      return apply(entries);
    };
    await c.run(leader.moveLeader(b!.id));
    await c.waitFor(() => b!.raft.isLeader, 2_000, 'b leading');
    assert.equal(b!.store.lessor.isPrimary(), false, 'b promoted its lessor with entries of earlier terms not applied');
    // the client keeps the lease alive through another member, for three
    // TTLs: the keep-alives are committed in b's log, which b cannot apply yet
    const until = c.clock.now() + 3 * ttlMs;
    const answers: Promise<unknown>[] = [];
    while (c.clock.now() < until) {
      answers.push(other!.leaseKeepAlive(lease.id).catch((err: unknown) => err));
      await c.clock.advanceAsync(ttlMs / 4);
    }
    for (const id of IDS) {
      if (id === b!.id) continue;
      const kv = await c.run(c.node(id).get('held', { serializable: true }));
      assert.equal(kv === undefined ? undefined : text(kv.value), 'v', `${id}: the lease was revoked while it was kept alive`);
    }
    // b catches up: its lessor is promoted, the lease lives, the keep-alives are answered
    release();
    await c.waitFor(() => b!.store.lessor.isPrimary(), 2_000, 'b promotes its lessor');
    const ttls = await c.run(Promise.all(answers));
    const answered = ttls.filter((t): t is { ttl: number } => typeof (t as { ttl?: unknown }).ttl === 'number');
    assert.ok(answered.length > 0 && answered.every((t) => t.ttl > 0), `no keep-alive was answered once b caught up: ${ttls.map(String).join(', ')}`);
    assert.equal(text((await c.run(b!.get('held')))!.value), 'v');
  } finally {
    release(); // a member closes after the apply in progress
    await c.closeAll();
  }
});

test("a follower's time-to-live is the leader's: the remaining TTL counts down, and after a change of leader it can exceed the granted TTL (etcd forwards LeaseTimeToLive to the leader)", async () => {
  const c = new KvCluster(IDS, 7);
  // an election timeout of 1.5 s: the extension shows in whole seconds
  c.extra = () => ({ tickMs: 100, electionTicks: 15 });
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const [b, other] = IDS.filter((id) => id !== leader.id).map((id) => c.node(id));
    const lease = await c.run(leader.leaseGrant(10));
    await c.run(leader.put('held', 'v', { lease: lease.id }));
    await c.clock.advanceAsync(4_000);
    const onLeader = await c.run(leader.leaseTimeToLive(lease.id, { keys: true }));
    const onFollower = await c.run(b!.leaseTimeToLive(lease.id, { keys: true }));
    assert.ok(onLeader.ttl <= 6, `the leader reports ${onLeader.ttl} s left of 10 after 4 s`);
    assert.ok(onFollower.ttl <= 6 && onFollower.ttl >= onLeader.ttl - 1, `a follower reports ${onFollower.ttl} s left, the leader ${onLeader.ttl}`);
    assert.equal(onFollower.grantedTtl, 10);
    assert.deepEqual(onFollower.keys.map((k) => text(k)), ['held']);
    // an unknown lease, asked of a follower
    const unknown = await c.run(other!.leaseTimeToLive(lease.id + 1));
    assert.equal(unknown.ttl, -1);
    assert.equal(unknown.grantedTtl, 0);
    // a new leader restarts the TTL extended by its election timeout: a
    // follower reports that too, above the granted TTL
    const short = await c.run(leader.leaseGrant(3));
    await c.run(leader.moveLeader(b!.id));
    await c.waitFor(() => b!.store.lessor.isPrimary(), 5_000, 'b promotes its lessor');
    const onNewLeader = await c.run(b!.leaseTimeToLive(short.id));
    const onOldLeader = await c.run(leader.leaseTimeToLive(short.id));
    assert.ok(onNewLeader.ttl > short.ttl, `the new leader reports ${onNewLeader.ttl} s left of ${short.ttl}`);
    assert.ok(Math.abs(onOldLeader.ttl - onNewLeader.ttl) <= 1, `the old leader, now a follower, reports ${onOldLeader.ttl} s, the leader ${onNewLeader.ttl}`);
    // a revoked lease, asked of a follower right after
    await c.run(b!.leaseRevoke(lease.id));
    assert.equal((await c.run(other!.leaseTimeToLive(lease.id))).ttl, -1);
  } finally {
    await c.closeAll();
  }
});

test("a leader that steps down while its time-to-live waits for the read index asks the new leader: it does not report the granted TTL as the time left", async () => {
  const c = new KvCluster(IDS, 7);
  c.extra = () => ({ tickMs: 100, electionTicks: 15, requestTimeoutMs: 30_000 });
  try {
    await c.startAll();
    const a = await c.waitLeader();
    const lease = await c.run(a.leaseGrant(30));
    await c.clock.advanceAsync(10_000);
    // cut off, a learns of no read index: it steps down (CheckQuorum) and
    // its lessor is demoted while the read waits
    c.net.isolate(a.id);
    let answer: { ttl: number; grantedTtl: number } | Error | undefined;
    a.leaseTimeToLive(lease.id).then(
      (r) => (answer = r),
      (e: Error) => (answer = e),
    );
    await c.waitFor(() => !a.raft.isLeader && c.leader() !== undefined && c.leader() !== a, 10_000, 'another leader');
    const b = c.leader()!;
    await c.waitFor(() => b.store.lessor.isPrimary(), 10_000, 'the new leader promotes its lessor');
    // the new leader restarted the TTL (30 s and an election timeout): 10 s later 21 s are left
    await c.clock.advanceAsync(10_000);
    c.net.resetFaults();
    await c.waitFor(() => answer !== undefined, 20_000, 'the answer');
    assert.ok(!(answer instanceof Error), `failed: ${String(answer)}`);
    const left = b.store.lessor.timeToLive(lease.id).ttl;
    assert.equal(answer!.grantedTtl, 30);
    assert.ok(Math.abs(answer!.ttl - left) <= 1, `the old leader reports ${answer!.ttl} s left, the leader ${left} s`);
  } finally {
    await c.closeAll();
  }
});

test('a follower asking the time-to-live of a lease revoked and granted again with the same id before the answer does not mix the two leases', async () => {
  const c = new KvCluster(IDS, 8);
  let release = (): void => undefined;
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const follower = c.node(IDS.find((id) => id !== leader.id)!);
    const old = await c.run(leader.leaseGrant(100));
    await c.clock.advanceAsync(30_000);
    // the leader stops applying (its log still takes entries): a slow state machine
    const sm = (leader as unknown as { sm: { apply(entries: unknown[]): Promise<unknown> } }).sm;
    const apply = sm.apply.bind(sm);
    const gate = new Promise<void>((r) => (release = r));
    sm.apply = async (entries) => {
      await gate;
      return apply(entries);
    };
    let answer: { ttl: number; grantedTtl: number } | Error | undefined;
    follower.leaseTimeToLive(old.id).then(
      (r) => (answer = r),
      (e: Error) => (answer = e),
    );
    await c.clock.advanceAsync(100); // the question is in the log
    // revoked and granted again with the same id: after the question in the
    // log, before the leader's answer to it
    const revoked = leader.leaseRevoke(old.id);
    const granted = leader.leaseGrant(5, { id: old.id });
    await c.clock.advanceAsync(100);
    release();
    await c.run(Promise.all([revoked, granted]));
    await c.waitFor(() => answer !== undefined, 5_000, 'the answer');
    assert.ok(!(answer instanceof Error), `failed: ${String(answer)}`);
    // no state had a lease of 5 s with about 70 s left: either the old lease
    // (70 s of 100), none (revoked), or the new one (5 s of 5)
    assert.ok(answer!.ttl <= answer!.grantedTtl, `ttl ${answer!.ttl} s of a lease granted for ${answer!.grantedTtl} s`);
  } finally {
    release();
    await c.closeAll();
  }
});

test("after a change of leader, the leases of gone holders expiring together do not hold back the revoke of a lease expiring after them (etcd's Promote spreads the pile-up)", async (t) => {
  const c = new KvCluster(IDS, 3);
  const revokedAt = new Map<number, number>();
  const revoke = Lessor.prototype.revoke;
  Lessor.prototype.revoke = function (this: Lessor, id: number): void {
    if (!revokedAt.has(id)) revokedAt.set(id, c.clock.now());
    revoke.call(this, id);
  };
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    // three times the revoke rate's worth of leases whose holders are gone
    const pile: number[] = [];
    for (let i = 0; i < 3 * LEASE_REVOKE_RATE; i += 500) {
      const granted = await c.run(Promise.all(Array.from({ length: 500 }, () => leader.leaseGrant(10))), 60_000);
      pile.push(...granted.map((g) => g.id));
    }
    const b = c.node(IDS.find((id) => id !== leader.id)!);
    await c.run(leader.moveLeader(b.id));
    await c.waitFor(() => b.store.lessor.isPrimary(), 5_000, 'b promotes its lessor');
    const promotedAt = c.clock.now();
    // a lease whose holder goes away too, expiring about a second after the pile
    await c.clock.advanceAsync(1_000);
    const late = await c.run(b.leaseGrant(10));
    const lateExpiry = b.store.lessor.lookup(late.id)!.expiry;
    await c.waitFor(() => pile.every((id) => revokedAt.has(id)) && revokedAt.has(late.id), 60_000, 'every lease revoked');
    const first = Math.min(...pile.map((id) => revokedAt.get(id)!));
    const last = Math.max(...pile.map((id) => revokedAt.get(id)!));
    t.diagnostic(`promoted at ${promotedAt} ms; the pile revoked from ${first} to ${last} ms; the late lease expired at ${lateExpiry} ms, revoked at ${revokedAt.get(late.id)} ms`);
    assert.ok(first >= promotedAt + 10_000, `a lease of the pile revoked at ${first} ms, less than its TTL after the promotion at ${promotedAt} ms`);
    // before, every lease of the pile expired at once and was revoked at the
    // revoke rate: the late one waited for all of them (2 s past its expiry)
    assert.ok(revokedAt.get(late.id)! - lateExpiry < 500, `the late lease revoked ${revokedAt.get(late.id)! - lateExpiry} ms after it expired`);
  } finally {
    Lessor.prototype.revoke = revoke;
    await c.closeAll();
  }
});
