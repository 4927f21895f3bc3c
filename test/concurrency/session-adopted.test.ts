// Session with an adopted lease (etcd's WithLease): the lease may be shared
// with other sessions or hold the caller's own keys, so a session that loses
// it, or fails to start on it, leaves it alone; only close() revokes it.
// Deterministic (no seed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Session, SessionLostError, type RecipeClock } from '../../src/concurrency/index.js';
import { text, type KV } from '../../src/server/kv.js';
import { session, sleep, startCluster } from './helpers.js';

test('a session on an adopted lease that resumes past its deadline is lost but does not revoke the lease another session keeps alive', async () => {
  const c = await startCluster(41);
  try {
    const f = c.followers()[0]!;
    const granted = await c.run(f.leaseGrant(2));
    await c.run(f.put('shared', 'v', { lease: granted.id }));
    const healthy = await session(c, f, { lease: granted.id });
    // the paused one: its clock jumps ahead, no timer ran
    let skew = 0;
    const clock: RecipeClock = {
      now: () => c.clock.now() + skew,
      setTimeout: (fn, ms) => c.clock.setTimeout(fn, ms),
      clearTimeout: (h) => c.clock.clearTimeout(h),
    };
    const paused = await session(c, f, { lease: granted.id, clock });
    let lost: SessionLostError | undefined;
    paused.on('lost', (err) => (lost = err));
    skew = 3_000;
    assert.equal(paused.isLost, true);
    assert.equal(lost?.reason, 'expired');
    assert.equal(await paused.done, 'expired');
    await c.clock.advanceAsync(5_000);
    assert.equal(healthy.isAlive, true, `the other session was lost: ${healthy.error?.reason}`);
    assert.notEqual(c.leader()!.store.lessor.lookup(granted.id), undefined, 'the adopted lease was revoked');
    assert.equal(text((await c.run(f.get('shared')))?.value), 'v');
    await c.run(healthy.close());
  } finally {
    await c.closeAll();
  }
});

test('Session.create on an adopted lease whose renewal takes longer than the TTL fails with expired and leaves the lease and its keys', async () => {
  const c = await startCluster(42);
  try {
    const f = c.followers()[0]!;
    const granted = await c.run(f.leaseGrant(3));
    await c.run(f.put('owned', 'v', { lease: granted.id }));
    // a member whose keep-alive answers arrive 2.7 s late: past the local
    // deadline (3 s minus the 500 ms margin), not past the leader's expiry
    const slow = new Proxy(f, {
      get(target, prop) {
        if (prop === 'leaseKeepAlive') {
          return async (id: number) => {
            const res = await target.leaseKeepAlive(id);
            await sleep(c, 2_700);
            return res;
          };
        }
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as KV;
    await assert.rejects(
      c.run(Session.create(slow, { lease: granted.id, marginMs: 500, clock: c.clock })),
      (err: unknown) => err instanceof SessionLostError && err.reason === 'expired' && err.lease === granted.id,
    );
    await c.clock.advanceAsync(200);
    assert.notEqual(c.leader()!.store.lessor.lookup(granted.id), undefined, 'the adopted lease was revoked');
    assert.equal(text((await c.run(f.get('owned')))?.value), 'v');
    // the lease is still the caller's: a session can adopt it afterwards
    const s = await session(c, f, { lease: granted.id });
    assert.equal(s.isAlive, true);
    await c.run(s.close());
    assert.equal(await c.run(f.get('owned')), undefined, 'close() revokes the adopted lease');
  } finally {
    await c.closeAll();
  }
});
