// Mutex (etcd's concurrency.Mutex) on a 3-member cluster with a virtual
// clock: key layout, FIFO service, no thundering herd, tryLock, abort,
// unlock errors, loss of the session while waiting or holding.
// Deterministic (no seed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, FaultError, UsageError } from '../../src/errors.js';
import { Mutex, type HeldLock } from '../../src/concurrency/index.js';
import { background, countKeys, hasCode, recordingWatches, session, sleep, slowMember, startCluster, until } from './helpers.js';

test('an uncontended lock creates <prefix>/<lease hex> on the session lease; its createRevision is the fencing token', async () => {
  const c = await startCluster(31);
  try {
    const leader = c.leader()!;
    const f = c.followers()[0]!;
    const s = await session(c, f, { ttl: 5 });
    const m = new Mutex(s, 'locks/a');
    assert.equal(m.key, `locks/a/${s.lease.toString(16)}`);
    assert.equal(m.isHeld, false);
    assert.throws(() => m.fencingToken, (e: unknown) => e instanceof UsageError && e.code === ErrorCode.LOCK_NOT_HELD);
    const lock = await c.run(m.lock());
    assert.equal(m.isHeld, true);
    assert.equal(lock.key, m.key);
    const kv = await c.run(leader.get(lock.key));
    assert.ok(kv !== undefined, 'the lock key exists');
    assert.equal(kv.lease, s.lease);
    assert.equal(kv.createRevision, lock.fencingToken);
    assert.equal(m.fencingToken, lock.fencingToken);
    assert.deepEqual(m.isOwner(), { key: m.key, target: 'CREATE', result: 'EQUAL', createRevision: lock.fencingToken });
    assert.equal(await c.run(m.lock()), lock, 'locking a held mutex returns the held lock');
    await c.run(m.unlock());
    assert.equal(m.isHeld, false);
    assert.equal(await c.run(leader.get(lock.key)), undefined);
    const again = await c.run(m.lock());
    assert.ok(again.fencingToken > lock.fencingToken, 'a new holding gets a new, greater token');
    await c.run(s.close());
  } finally {
    await c.closeAll();
  }
});

test('waiters on different members are served in FIFO order of their keys with increasing tokens', async () => {
  const c = await startCluster(32);
  try {
    const members = [...c.nodes.values()];
    const holder = new Mutex(await session(c, members[0]!, { ttl: 5 }), 'fifo');
    const first = await c.run(holder.lock());
    const order: { who: number; token: number }[] = [];
    const waiters: ReturnType<typeof background>[] = [];
    for (let i = 0; i < 5; i++) {
      const m = new Mutex(await session(c, members[(i + 1) % 3]!, { ttl: 5 }), 'fifo');
      waiters.push(
        background(
          (async () => {
            const l = await m.lock();
            order.push({ who: i, token: l.fencingToken });
            await sleep(c, 20);
            await m.unlock();
          })(),
        ),
      );
      await until(c, async () => (await countKeys(members[0]!, 'fifo/')) === i + 2, 5_000, `waiter ${i} queued`);
    }
    await c.clock.advanceAsync(500);
    assert.equal(order.length, 0, 'nobody gets the lock while it is held');
    await c.run(holder.unlock());
    await c.run(Promise.all(waiters.map((w) => w.promise)));
    for (const w of waiters) assert.equal(w.error(), undefined);
    assert.deepEqual(
      order.map((o) => o.who),
      [0, 1, 2, 3, 4],
    );
    const tokens = [first.fencingToken, ...order.map((o) => o.token)];
    for (let i = 1; i < tokens.length; i++) assert.ok(tokens[i]! > tokens[i - 1]!, `tokens increase: ${tokens.join(', ')}`);
  } finally {
    await c.closeAll();
  }
});

test('a waiter watches only the key just before its own (no thundering herd) and moves up when it goes', async () => {
  const c = await startCluster(33);
  try {
    const [f1, f2] = c.followers();
    const leader = c.leader()!;
    const h = new Mutex(await session(c, leader, { ttl: 5 }), 'herd');
    await c.run(h.lock());
    const w1 = new Mutex(await session(c, f1!, { ttl: 5 }), 'herd');
    const ac1 = new AbortController();
    const p1 = background(w1.lock({ signal: ac1.signal }));
    await until(c, async () => (await countKeys(leader, 'herd/')) === 2, 5_000, 'w1 queued');
    const watched: string[] = [];
    const w2 = new Mutex(await session(c, recordingWatches(f2!, watched), { ttl: 5 }), 'herd');
    const p2 = background(w2.lock());
    await until(c, async () => watched.length === 1, 5_000, 'w2 waiting');
    assert.deepEqual(watched, [w1.key], 'w2 watches w1, not the holder');
    ac1.abort();
    await c.run(p1.promise);
    assert.equal((p1.error() as FaultError).code, ErrorCode.ABORTED);
    await until(c, async () => watched.length === 2, 5_000, 'w2 moves up');
    assert.deepEqual(watched, [w1.key, h.key], 'then the holder');
    await c.clock.advanceAsync(300);
    assert.equal(p2.done(), false, 'w2 still waits for the holder');
    await c.run(h.unlock());
    await c.run(p2.promise);
    assert.equal(p2.error(), undefined);
    assert.equal(w2.isHeld, true);
  } finally {
    await c.closeAll();
  }
});

test('tryLock on a held lock fails with QUORUMKV_LOCKED and removes its key; on a free lock it takes it', async () => {
  const c = await startCluster(34);
  try {
    const [f1, f2] = c.followers();
    const a = new Mutex(await session(c, f1!, { ttl: 5 }), 'try');
    const b = new Mutex(await session(c, f2!, { ttl: 5 }), 'try');
    await c.run(a.tryLock());
    await assert.rejects(c.run(b.tryLock()), (e: unknown) => e instanceof FaultError && e.code === ErrorCode.LOCKED);
    assert.equal(b.isHeld, false);
    assert.equal(await c.run(countKeys(f1!, 'try/')), 1, 'the failed tryLock left no key');
    await c.run(a.unlock());
    const l = await c.run(b.tryLock());
    assert.equal(b.isHeld, true);
    assert.ok(l.fencingToken > 0, 'a token');
  } finally {
    await c.closeAll();
  }
});

test('lock({ signal }) fails with QUORUMKV_ABORTED and removes its key, and the queue goes on without it', async () => {
  const c = await startCluster(35);
  try {
    const [f1, f2] = c.followers();
    const leader = c.leader()!;
    const h = new Mutex(await session(c, leader, { ttl: 5 }), 'abort');
    await c.run(h.lock());
    const w = new Mutex(await session(c, f1!, { ttl: 5 }), 'abort');
    const ac = new AbortController();
    const pw = background(w.lock({ signal: ac.signal }));
    const x = new Mutex(await session(c, f2!, { ttl: 5 }), 'abort');
    const px = background(x.lock());
    await until(c, async () => (await countKeys(leader, 'abort/')) === 3, 5_000, 'both queued');
    ac.abort(new Error('user gave up'));
    await c.run(pw.promise);
    const err = pw.error() as FaultError;
    assert.equal(err.code, ErrorCode.ABORTED);
    assert.equal((err.cause as Error).message, 'user gave up');
    assert.equal(await c.run(leader.get(w.key)), undefined, 'the aborted waiter removed its key');
    assert.equal(w.isHeld, false);
    await c.run(h.unlock());
    await c.run(px.promise);
    assert.equal(x.isHeld, true);
    // an already-aborted signal creates nothing
    await assert.rejects(c.run(w.lock({ signal: AbortSignal.abort() })), hasCode(ErrorCode.ABORTED));
    assert.equal(await c.run(leader.get(w.key)), undefined);
  } finally {
    await c.closeAll();
  }
});

test('unlock and isOwner report QUORUMKV_LOCK_NOT_HELD; a lost key fails the isOwner guard and the unlock', async () => {
  const c = await startCluster(36);
  try {
    const leader = c.leader()!;
    const f = c.followers()[0]!;
    const m = new Mutex(await session(c, f, { ttl: 5 }), 'held');
    await assert.rejects(m.unlock(), (e: unknown) => e instanceof UsageError && e.code === ErrorCode.LOCK_NOT_HELD);
    assert.throws(() => m.isOwner(), hasCode(ErrorCode.LOCK_NOT_HELD));
    const lock = await c.run(m.lock());
    const guarded = (l: HeldLock, v: string) => c.run(f.txn({ compare: [l.isOwner()], success: [{ put: { key: 'resource', value: v } }] }));
    assert.equal((await guarded(lock, 'one')).succeeded, true);
    await c.run(leader.delete(lock.key)); // as when the lease expires
    assert.equal((await guarded(lock, 'two')).succeeded, false, 'a write guarded by isOwner fails once the key is gone');
    await assert.rejects(c.run(m.unlock()), (e: unknown) => e instanceof FaultError && e.code === ErrorCode.LOCK_NOT_HELD);
    assert.equal(m.isHeld, false);
  } finally {
    await c.closeAll();
  }
});

test('a waiter whose session is lost fails with QUORUMKV_SESSION_EXPIRED instead of acquiring', async () => {
  const c = await startCluster(37);
  try {
    const leader = c.leader()!;
    const f = c.followers()[0]!;
    const h = new Mutex(await session(c, leader, { ttl: 5 }), 'expire');
    await c.run(h.lock());
    const ws = await session(c, f, { ttl: 1 });
    const w = new Mutex(ws, 'expire');
    const pw = background(w.lock());
    await until(c, async () => (await countKeys(leader, 'expire/')) === 2, 5_000, 'queued');
    c.net.isolate(f.id);
    await c.run(pw.promise, 10_000);
    assert.equal((pw.error() as FaultError).code, ErrorCode.SESSION_EXPIRED);
    assert.equal(w.isHeld, false);
    c.net.heal();
    // the leader expires the lease: the waiter's key is gone
    await until(c, async () => (await countKeys(leader, 'expire/')) === 1, 5_000, 'the key expired');
    await assert.rejects(c.run(w.lock()), hasCode(ErrorCode.SESSION_EXPIRED));
  } finally {
    await c.closeAll();
  }
});

test('the partitioned holder sees lost before the next waiter acquires (virtual timestamps)', async (t) => {
  const c = await startCluster(38);
  try {
    const leader = c.leader()!;
    const f = c.followers()[0]!;
    const hs = await session(c, f, { ttl: 1 });
    const h = new Mutex(hs, 'part');
    const held = await c.run(h.lock());
    let lostAt = -1;
    hs.on('lost', () => (lostAt = c.clock.now()));
    const w = new Mutex(await session(c, leader, { ttl: 5 }), 'part');
    let acquiredAt = -1;
    const pw = background(
      w.lock().then((l) => {
        acquiredAt = c.clock.now();
        return l;
      }),
    );
    await until(c, async () => (await countKeys(leader, 'part/')) === 2, 5_000, 'queued');
    const isolatedAt = c.clock.now();
    c.net.isolate(f.id);
    await c.run(pw.promise, 10_000);
    t.diagnostic(`isolated at ${isolatedAt} ms, holder lost at ${lostAt} ms, next holder acquired at ${acquiredAt} ms`);
    assert.ok(lostAt > 0 && acquiredAt > 0, 'both happened');
    assert.ok(lostAt < acquiredAt, `lost at ${lostAt} ms must come before the next acquisition at ${acquiredAt} ms`);
    assert.ok(lostAt <= isolatedAt + 1_000, 'lost within one TTL of the partition');
    assert.ok((pw.value() as HeldLock).fencingToken > held.fencingToken, 'the next token is greater');
    assert.equal(h.isHeld, false, 'a mutex on a lost session does not count as held');
    assert.equal(h.current, held, 'but it still has the lock it acquired (to unlock or inspect)');
    await assert.rejects(h.lock(), hasCode(ErrorCode.SESSION_EXPIRED), 'lock() does not hand back a lock held through a lost session');
    c.net.heal();
  } finally {
    await c.closeAll();
  }
});

test('a holder whose member is the leader, cut off with it: the session is lost at its deadline, the next leader revokes the lease and deletes the lock key, the waiter takes the lock with a greater token, and the old leader brings nothing back', async (t) => {
  const c = await startCluster(39);
  try {
    const leader = c.leader()!;
    const f = c.followers()[0]!;
    const hs = await session(c, leader, { ttl: 2 });
    const h = new Mutex(hs, 'cut');
    const held = await c.run(h.lock());
    let lostAt = -1;
    hs.on('lost', () => (lostAt = c.clock.now()));
    const w = new Mutex(await session(c, f, { ttl: 5 }), 'cut');
    let acquiredAt = -1;
    const pw = background(
      w.lock().then((l) => {
        acquiredAt = c.clock.now();
        return l;
      }),
    );
    await until(c, async () => (await countKeys(f, 'cut/')) === 2, 5_000, 'queued');
    await c.clock.advanceAsync(700); // a keep-alive of the holder acknowledged meanwhile
    const deadline = hs.expiresAt;
    const isolatedAt = c.clock.now();
    c.net.isolate(leader.id);
    await c.run(pw.promise, 15_000);
    t.diagnostic(`isolated at ${isolatedAt} ms, holder lost at ${lostAt} ms (deadline ${deadline} ms), next holder acquired at ${acquiredAt} ms`);
    assert.equal(hs.error?.reason, 'keepAliveFailed');
    assert.equal(lostAt, deadline, 'lost at the deadline of the last acknowledged keep-alive');
    assert.ok(lostAt < acquiredAt, `lost at ${lostAt} ms must come before the next acquisition at ${acquiredAt} ms`);
    assert.ok((pw.value() as HeldLock).fencingToken > held.fencingToken, 'the next token is greater');
    // healed, the old leader follows: the holder's key does not come back
    c.net.heal();
    await c.waitFor(() => !leader.raft.isLeader && leader.raft.leader !== '', 5_000, 'the old leader follows');
    await c.clock.advanceAsync(1_000);
    for (const n of [leader, f]) {
      const keys = await c.run(n.range({ key: 'cut/', rangeEnd: 'cut0' }));
      assert.deepEqual(keys.kvs.map((kv) => kv.createRevision), [(pw.value() as HeldLock).fencingToken], `${n.id}: only the new holder's key`);
    }
  } finally {
    await c.closeAll();
  }
});

test('withLock runs the function under the lock and releases it, also when it throws', async () => {
  const c = await startCluster(39);
  try {
    const leader = c.leader()!;
    const f = c.followers()[0]!;
    const s = await session(c, f, { ttl: 5 });
    const m = new Mutex(s, 'with');
    const value = await c.run(
      m.withLock(async (lock, signal) => {
        assert.equal(signal.aborted, false);
        assert.equal((await leader.get(lock.key))?.createRevision, lock.fencingToken);
        return 42;
      }),
    );
    assert.equal(value, 42);
    assert.equal(await c.run(countKeys(leader, 'with/')), 0);
    await assert.rejects(
      c.run(
        m.withLock(() => {
          throw new Error('boom');
        }),
      ),
      /boom/,
    );
    assert.equal(m.isHeld, false);
    assert.equal(await c.run(countKeys(leader, 'with/')), 0);
    // the signal handed to the function fires when the session is lost
    const s2 = await session(c, f, { ttl: 1 });
    const m2 = new Mutex(s2, 'with');
    let reason: unknown;
    const p = background(
      m2.withLock(
        (_lock, signal) =>
          new Promise<void>((_resolve, reject) => {
            signal.addEventListener('abort', () => {
              reason = signal.reason;
              reject(signal.reason as Error);
            });
          }),
      ),
    );
    await c.clock.advanceAsync(200);
    c.net.isolate(f.id);
    await c.run(p.promise, 10_000);
    assert.equal((reason as FaultError).code, ErrorCode.SESSION_EXPIRED);
    assert.equal((p.error() as FaultError).code, ErrorCode.SESSION_EXPIRED);
    c.net.heal();
  } finally {
    await c.closeAll();
  }
});

test('withLock on a mutex that is held already is refused: an inner section would unlock the outer one', async () => {
  const c = await startCluster(41);
  try {
    const leader = c.leader()!;
    const f = c.followers()[0]!;
    const m = new Mutex(await session(c, f, { ttl: 5 }), 'nested');
    const other = new Mutex(await session(c, leader, { ttl: 5 }), 'nested');
    let inner: unknown;
    let overlap = false;
    let outerRunning = false;
    let theirs: ReturnType<typeof background<HeldLock>> | undefined;
    await c.run(
      m.withLock(async () => {
        outerRunning = true;
        inner = await m.withLock(async () => 'inner').catch((e: unknown) => e);
        theirs = background(
          other.lock().then((l) => {
            if (outerRunning) overlap = true;
            return l;
          }),
        );
        await sleep(c, 500);
        outerRunning = false;
      }),
    );
    assert.ok(inner instanceof UsageError && inner.code === ErrorCode.INVALID_ARGUMENT, `the inner withLock: ${String(inner)}`);
    await c.run(theirs!.promise, 5_000);
    assert.equal(overlap, false, 'another session took the lock while the outer section ran');
  } finally {
    await c.closeAll();
  }
});

test('lock() after an unlock that was applied but answered with a timeout takes the lock anew, not the old one', async () => {
  const c = await startCluster(42);
  try {
    const leader = c.leader()!;
    const f = c.followers()[0]!;
    let failNextDelete = false;
    // a KV whose next delete is applied but answered with a timeout, as the KV contract allows
    const flaky = new Proxy(f, {
      get(target, prop) {
        if (prop === 'txn') {
          return async (input: Parameters<typeof f.txn>[0]) => {
            const res = await target.txn(input);
            if (failNextDelete && input.success?.some((op) => 'deleteRange' in op)) {
              failNextDelete = false;
              throw new FaultError(ErrorCode.TIMEOUT, 'applied, answer lost');
            }
            return res;
          };
        }
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const m = new Mutex(await session(c, flaky, { ttl: 5 }), 'stale');
    const other = new Mutex(await session(c, leader, { ttl: 5 }), 'stale');
    await c.run(m.lock());
    failNextDelete = true;
    await assert.rejects(c.run(m.unlock()), (e: unknown) => e instanceof FaultError && e.code === ErrorCode.TIMEOUT);
    const held = await c.run(other.lock());
    const retry = background(m.lock());
    await c.run(sleep(c, 500));
    assert.equal(retry.done(), false, `lock() resolved while another session holds token ${held.fencingToken}`);
    await c.run(other.unlock());
    await c.run(retry.promise, 5_000);
    const mine = retry.value()!;
    assert.ok(mine.fencingToken > held.fencingToken);
    assert.equal((await c.run(leader.get(mine.key)))?.createRevision, mine.fencingToken);
  } finally {
    await c.closeAll();
  }
});

test('lock() with an aborted signal fails with QUORUMKV_ABORTED also on a mutex that holds the lock', async () => {
  const c = await startCluster(43);
  try {
    const f = c.followers()[0]!;
    const m = new Mutex(await session(c, f, { ttl: 5 }), 'aborted');
    await c.run(m.lock());
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(c.run(m.lock({ signal: ac.signal })), (e: unknown) => e instanceof FaultError && e.code === ErrorCode.ABORTED);
    assert.equal(m.isHeld, true, 'the lock itself is still held');
  } finally {
    await c.closeAll();
  }
});

test('lock() on a mutex that holds the lock does not resolve once the session is lost or the signal aborted while it reads its key', async () => {
  const c = await startCluster(44);
  try {
    const f = c.followers()[0]!;
    // a member that answers reads late and keep-alives not at all, once `slow.on` is set
    const { kv, slow } = slowMember(c, f, 'range');
    const s = await session(c, kv, { ttl: 1 });
    const m = new Mutex(s, 'relock');
    await c.run(m.lock());
    slow.on = true;
    await assert.rejects(c.run(m.lock()), hasCode(ErrorCode.SESSION_EXPIRED), 'lock() resolved on a lost session');
    assert.equal(s.isLost, true);

    slow.on = false;
    const m2 = new Mutex(await session(c, kv, { ttl: 5 }), 'relock-abort');
    await c.run(m2.lock());
    slow.on = true;
    const ac = new AbortController();
    c.clock.setTimeout(() => ac.abort(), 500);
    await assert.rejects(c.run(m2.lock({ signal: ac.signal })), hasCode(ErrorCode.ABORTED), 'lock() resolved after its signal aborted');
    assert.equal(m2.current !== undefined, true, 'the lock itself is still held');
  } finally {
    await c.closeAll();
  }
});
