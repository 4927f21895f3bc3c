// Session: a lease kept alive in the background on a 3-member cluster with a
// virtual clock. Deterministic (no seed): the cluster's own seeds are fixed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { ErrorCode } from '../../src/errors.js';
import { Session, SessionLostError, type RecipeClock } from '../../src/concurrency/index.js';
import { text, type KV } from '../../src/server/kv.js';
import { hasCode, session, startCluster } from './helpers.js';

test('a session keeps its lease alive for many TTLs with keep-alives every third of the TTL', async () => {
  const c = await startCluster(11);
  try {
    const f = c.followers()[0]!;
    const s = await session(c, f, { ttl: 1 });
    assert.equal(s.ttl, 1);
    let keepAlives = 0;
    s.on('keepAlive', () => keepAlives++);
    await c.run(f.put('owned', 'x', { lease: s.lease }));
    await c.clock.advanceAsync(5_000);
    assert.equal(s.isLost, false);
    assert.ok(keepAlives >= 13 && keepAlives <= 16, `about 15 keep-alives in 5 s, got ${keepAlives}`);
    assert.equal(text((await c.run(c.leader()!.get('owned')))?.value), 'x');
    assert.ok(s.remainingMs() > 0 && s.remainingMs() <= 1_000, `remaining ${s.remainingMs()} ms`);
    await c.run(s.close());
  } finally {
    await c.closeAll();
  }
});

test('close revokes the lease, deletes its keys, aborts the signal and resolves done with closed', async () => {
  const c = await startCluster(12);
  try {
    const f = c.followers()[0]!;
    const s = await session(c, f, { ttl: 5 });
    await c.run(f.put('eph', 'v', { lease: s.lease }));
    let lost = false;
    s.on('lost', () => (lost = true));
    await c.run(s.close());
    assert.equal(s.isClosed, true);
    assert.equal(s.isAlive, false);
    assert.equal(s.isLost, false);
    assert.equal(lost, false, 'closing is not a loss');
    assert.equal(await s.done, 'closed');
    assert.equal(s.signal.aborted, true);
    assert.throws(() => s.assertAlive(), hasCode(ErrorCode.SESSION_EXPIRED));
    assert.equal(await c.run(c.leader()!.get('eph')), undefined);
    assert.equal((await c.run(c.leader()!.leaseTimeToLive(s.lease))).ttl, -1);
    await c.run(s.close()); // idempotent
  } finally {
    await c.closeAll();
  }
});

test('a partitioned session is lost before the leader expires its lease (virtual timestamps)', async () => {
  const c = await startCluster(13);
  try {
    const leader = c.leader()!;
    const f = c.followers()[0]!;
    const s = await session(c, f, { ttl: 1 });
    await c.run(f.put('held', 'x', { lease: s.lease }));
    await c.clock.advanceAsync(700);
    let lostAt = -1;
    let lostErr: SessionLostError | undefined;
    s.on('lost', (err) => {
      lostAt = c.clock.now();
      lostErr = err;
    });
    let deletedAt = -1;
    const w = leader.watch('held');
    w.on('delete', () => (deletedAt = c.clock.now()));
    const deadlineBefore = s.expiresAt;
    const isolatedAt = c.clock.now();
    c.net.isolate(f.id);
    await c.waitFor(() => deletedAt >= 0, 10_000, 'the lease to expire on the leader');
    // the session's deadline was fixed by the last keep-alive confirmed before the partition
    assert.ok(lostAt >= 0, 'lost fired');
    assert.ok(lostErr instanceof SessionLostError, 'a SessionLostError');
    assert.equal(lostErr.code, ErrorCode.SESSION_EXPIRED);
    assert.equal(lostErr.reason, 'keepAliveFailed');
    assert.equal(lostAt, deadlineBefore, 'lost fires exactly at the local deadline');
    assert.ok(deadlineBefore <= isolatedAt + 1_000, 'the deadline was at most one TTL away');
    assert.ok(lostAt < deletedAt, `lost at ${lostAt} ms, key deleted by the leader at ${deletedAt} ms`);
    assert.equal(await s.done, 'keepAliveFailed');
    assert.equal((s.signal.reason as SessionLostError).reason, 'keepAliveFailed');
    await w.cancel();
    c.net.heal();
  } finally {
    await c.closeAll();
  }
});

test('a lease revoked by another client makes the session lost with reason revoked', async () => {
  const c = await startCluster(14);
  try {
    const [f1, f2] = c.followers();
    const s = await session(c, f1!, { ttl: 10 });
    await c.run(f2!.leaseRevoke(s.lease));
    await c.waitFor(() => s.error !== undefined, 5_000, 'the session to notice');
    assert.equal(s.error!.reason, 'revoked');
    assert.ok(c.clock.now() < s.expiresAt, 'noticed by a keep-alive, long before the local deadline');
    assert.equal(await s.done, 'revoked');
  } finally {
    await c.closeAll();
  }
});

test('a process that resumes after a pause past its TTL sees its session lost before any timer runs', async () => {
  const c = await startCluster(15);
  try {
    // the session's clock jumps ahead as a paused process would see it: time passed, no timer ran
    let skew = 0;
    const clock: RecipeClock = {
      now: () => c.clock.now() + skew,
      setTimeout: (fn, ms) => c.clock.setTimeout(fn, ms),
      clearTimeout: (h) => c.clock.clearTimeout(h),
    };
    const f = c.followers()[0]!;
    const s = await session(c, f, { ttl: 1, clock });
    assert.equal(s.isLost, false);
    skew = 1_500;
    assert.equal(s.isLost, true, 'reading isLost checks the deadline');
    assert.equal(s.error!.reason, 'expired');
    assert.throws(() => s.assertAlive(), (e: unknown) => e instanceof SessionLostError && e.reason === 'expired');
    // the lost session revokes its lease (best effort) so the keys go at once
    await c.waitFor(() => c.leader()!.store.lessor.lookup(s.lease) === undefined, 2_000, 'the revoke');
  } finally {
    await c.closeAll();
  }
});

test('a session survives a leader change', async () => {
  const c = await startCluster(16);
  try {
    const leader = c.leader()!;
    const f = c.followers()[0]!;
    const other = c.followers()[1]!;
    const s = await session(c, f, { ttl: 2 });
    await c.clock.advanceAsync(1_000);
    await c.run(leader.moveLeader(other.id));
    await c.clock.advanceAsync(3_000);
    assert.equal(c.leader()?.id, other.id);
    assert.equal(s.isLost, false);
    await c.stop(other.id);
    await c.waitLeader();
    await c.clock.advanceAsync(3_000);
    assert.equal(s.isLost, false, 'still alive after the leader stopped and another was elected');
    await c.run(s.close());
  } finally {
    await c.closeAll();
  }
});

test('Session.create checks its options and can adopt an existing lease', async () => {
  const c = await startCluster(17);
  try {
    const f = c.followers()[0]!;
    await assert.rejects(Session.create(f, { ttl: 0 }), hasCode(ErrorCode.INVALID_ARGUMENT));
    await assert.rejects(Session.create(f, { ttl: 1.5 }), hasCode(ErrorCode.INVALID_ARGUMENT));
    await assert.rejects(Session.create(f, { keepAliveIntervalMs: -1 }), hasCode(ErrorCode.INVALID_ARGUMENT));
    await assert.rejects(c.run(Session.create(f, { lease: 424242, clock: c.clock })), hasCode(ErrorCode.LEASE_NOT_FOUND));
    const granted = await c.run(f.leaseGrant(3));
    const s = await session(c, f, { lease: granted.id });
    assert.equal(s.lease, granted.id);
    assert.equal(s.ttl, 3);
    await c.run(s.close());
    assert.equal((await c.run(f.leaseTimeToLive(granted.id))).ttl, -1);
  } finally {
    await c.closeAll();
  }
});

test('on the default clock, a wall clock set back does not keep a session alive past its TTL (the leader expires leases on a monotonic clock)', async (t) => {
  // a lease granted at once whose keep-alives are never answered (a partition)
  const kv = {
    leaseGrant: async (ttl: number) => ({ header: { revision: 1 }, id: 7, ttl }),
    leaseKeepAlive: () => new Promise<never>(() => undefined),
    leaseRevoke: async () => ({ header: { revision: 1 } }),
  } as unknown as KV;
  const s = await Session.create(kv, { ttl: 1 });
  try {
    const wall = Date.now;
    // NTP steps the wall clock back one hour
    t.mock.method(Date, 'now', () => wall() - 3_600_000);
    await delay(1_100);
    assert.equal(s.isLost, true, 'lost once its TTL has run out, whatever the wall clock says');
  } finally {
    await s.close();
  }
});

test('on the default clock, a session with a TTL of weeks arms timers that Node can hold: no keep-alive every millisecond, no deadline timer spinning', async (t) => {
  // Node runs a timer of more than 2^31 - 1 ms (24.8 days) after 1 ms
  for (const days of [80, 30]) {
    const ttl = days * 86_400;
    let keepAlives = 0;
    const kv = {
      leaseGrant: async (asked: number) => ({ header: { revision: 1 }, id: 7, ttl: asked }),
      leaseKeepAlive: async () => {
        keepAlives++;
        return { header: { revision: 1 }, id: 7, ttl };
      },
      leaseRevoke: async () => ({ header: { revision: 1 } }),
    } as unknown as KV;
    const timers = t.mock.method(globalThis, 'setTimeout');
    const s = await Session.create(kv, { ttl });
    try {
      await delay(100);
      assert.equal(keepAlives, 0, `${days} days: keep-alives sent within 100 ms`);
      // the keep-alive timer, the deadline timer and this test's delay
      assert.ok(timers.mock.callCount() <= 3, `${days} days: ${timers.mock.callCount()} timers armed within 100 ms`);
      assert.equal(s.isAlive, true);
    } finally {
      timers.mock.restore();
      await s.close();
    }
  }
});

test('Session.create with a margin or keep-alive interval not below the TTL is refused with QUORUMKV_INVALID_ARGUMENT, and an adopted lease and its keys stay', async () => {
  const c = await startCluster(18);
  try {
    const f = c.followers()[0]!;
    const before = (await c.run(f.leases())).leases.length;
    await assert.rejects(c.run(Session.create(f, { ttl: 2, marginMs: 2_000, clock: c.clock })), hasCode(ErrorCode.INVALID_ARGUMENT));
    assert.equal((await c.run(f.leases())).leases.length, before, 'no lease granted');
    const granted = await c.run(f.leaseGrant(3));
    await c.run(f.put('owned', 'v', { lease: granted.id }));
    for (const bad of [{ marginMs: 3_000 }, { keepAliveIntervalMs: 3_000 }]) {
      await assert.rejects(c.run(Session.create(f, { lease: granted.id, clock: c.clock, ...bad })), hasCode(ErrorCode.INVALID_ARGUMENT), JSON.stringify(bad));
      assert.equal(text((await c.run(f.get('owned')))?.value), 'v', `${JSON.stringify(bad)}: the adopted lease was revoked`);
    }
    const s = await session(c, f, { lease: granted.id, marginMs: 100 });
    assert.equal(s.isAlive, true);
    await c.run(s.close());
  } finally {
    await c.closeAll();
  }
});

test('a second close() while the first is revoking resolves only once the lease is revoked, and rejects as the first does', async () => {
  const c = await startCluster(19);
  try {
    const f = c.followers()[0]!;
    const s = await session(c, f, { ttl: 5 });
    await c.run(f.put('eph', 'v', { lease: s.lease }));
    const first = s.close();
    let secondDone = false;
    const second = s.close().then(() => (secondDone = true));
    // without the virtual clock moving, the revoke cannot be applied
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(secondDone, false, 'the second close() resolved before the lease was revoked');
    await c.run(Promise.all([first, second]));
    assert.equal(secondDone, true);
    assert.equal(c.leader()!.store.lessor.lookup(s.lease), undefined);
    // a revoke that fails: both calls report it
    const t = await session(c, f, { ttl: 5 });
    c.net.isolate(f.id);
    const a = c.run(t.close(), 10_000).then(() => 'ok', (e: unknown) => e);
    const b = c.run(t.close(), 10_000).then(() => 'ok', (e: unknown) => e);
    const [ra, rb] = await Promise.all([a, b]);
    assert.ok(hasCode(ErrorCode.TIMEOUT)(ra) || hasCode(ErrorCode.NO_LEADER)(ra), `first close: ${String(ra)}`);
    assert.equal(rb, ra, 'the second close() reports the same outcome');
    c.net.heal();
  } finally {
    await c.closeAll();
  }
});
