// Regression tests (each fails on the code
// before its fix): a key an aborted Mutex or RWMutex lock, Election campaign or
// DoubleBarrier enter could not delete (its member cut off) stayed for the session's whole life,
// blocking the next lock, the same client's retry included, or counting as a
// participant; and a DoubleBarrier enter took a ready key left by an earlier
// round for its own, releasing with one participant of two. Deterministic
// (virtual clock, seeded network).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DoubleBarrier, Election, Mutex, RWMutex } from '../../src/concurrency/index.js';
import { ErrorCode, FaultError } from '../../src/errors.js';
import type { KV } from '../../src/server/kv.js';
import { text } from '../../src/server/index.js';
import { background, countKeys, session, sleep, startCluster } from './helpers.js';

test('a key an aborted lock() could not delete is deleted once its member is back: neither a retry nor another client waits behind it', async () => {
  const c = await startCluster(1);
  try {
    const leader = c.leader()!;
    const F = c.followers()[0]!;
    const keys = async () => (await c.run(leader.range({ key: 'locks/', prefix: true }))).kvs.map((k) => text(k.key));
    const s1 = await session(c, leader, { ttl: 10 });
    const s2 = await session(c, F, { ttl: 10 });
    const holder = new RWMutex(s1, 'locks/rw');
    await c.run(holder.lock());
    const waiter = new RWMutex(s2, 'locks/rw');
    const ac = new AbortController();
    const first = background(waiter.lock({ signal: ac.signal }));
    await c.run(sleep(c, 200));
    c.net.isolate(F.id);
    await c.run(sleep(c, 50));
    ac.abort(); // its key cannot be deleted now
    await c.run(first.promise, 10_000);
    await c.run(sleep(c, 2_500));
    c.net.heal();
    await c.run(sleep(c, 1_000));
    assert.equal((await keys()).length, 1, `only the holder's key is left: ${JSON.stringify(await keys())}`);
    await c.run(holder.unlock());
    const other = background(new RWMutex(s1, 'locks/rw').rlock());
    await c.run(sleep(c, 1_000));
    assert.ok(other.done() && other.error() === undefined, 'another client gets the read side');
    await c.run(s1.close());
    const retry = background(waiter.lock());
    await c.run(sleep(c, 1_000));
    assert.ok(retry.done() && retry.error() === undefined, 'the same client gets the lock on retry');
  } finally {
    await c.closeAll();
  }
});

test('a Mutex key an aborted lock() could not delete is deleted once its member is back: nobody waits behind a holder nobody is', async () => {
  const c = await startCluster(1);
  try {
    const leader = c.leader()!;
    const F = c.followers()[0]!;
    const keys = async () => (await c.run(leader.range({ key: 'locks/', prefix: true }))).kvs.map((k) => text(k.key));
    const s1 = await session(c, leader, { ttl: 10 });
    const s2 = await session(c, F, { ttl: 10 });
    const s3 = await session(c, leader, { ttl: 10 });
    const holder = new Mutex(s1, 'locks/m');
    await c.run(holder.lock());
    const waiter = new Mutex(s2, 'locks/m');
    const ac = new AbortController();
    const first = background(waiter.lock({ signal: ac.signal }));
    await c.run(sleep(c, 200));
    c.net.isolate(F.id);
    await c.run(sleep(c, 50));
    ac.abort(); // its key cannot be deleted now
    await c.run(first.promise, 10_000);
    assert.equal((first.error() as FaultError).code, ErrorCode.ABORTED);
    await c.run(sleep(c, 2_500));
    c.net.heal();
    await c.run(sleep(c, 1_000));
    assert.ok(s2.isAlive);
    assert.deepEqual(await keys(), [holder.key], 'only the holder\'s key is left');
    await c.run(holder.unlock());
    const other = background(new Mutex(s3, 'locks/m').lock());
    await c.run(sleep(c, 1_000));
    assert.ok(other.done() && other.error() === undefined, 'another client gets the lock');
    await c.run(s3.close());
    const retry = background(waiter.lock());
    await c.run(sleep(c, 1_000));
    assert.ok(retry.done() && retry.error() === undefined, 'the same client gets the lock on retry');
  } finally {
    await c.closeAll();
  }
});

test("a campaign aborted while its member is cut off leaves no candidate key once the member is back: no leader nobody is", async () => {
  const c = await startCluster(43);
  try {
    const leader = c.leader()!;
    const F = c.followers()[0]!;
    const s1 = await session(c, leader, { ttl: 10 });
    const s2 = await session(c, F, { ttl: 10 });
    const s3 = await session(c, leader, { ttl: 10 });
    const e1 = new Election(s1, 'el');
    await c.run(e1.campaign('one'));
    const ac = new AbortController();
    const e2 = new Election(s2, 'el');
    const second = background(e2.campaign('two', { signal: ac.signal }));
    await c.run(sleep(c, 200));
    c.net.isolate(F.id);
    await c.run(sleep(c, 50));
    ac.abort(); // its key cannot be deleted now
    await c.run(second.promise, 10_000);
    assert.equal((second.error() as FaultError).code, ErrorCode.ABORTED);
    await c.run(sleep(c, 2_500));
    c.net.heal();
    await c.run(sleep(c, 1_000));
    await c.run(e1.resign());
    const third = background(new Election(s3, 'el').campaign('three'));
    await c.run(sleep(c, 2_000));
    const keys = (await c.run(leader.range({ key: 'el/', prefix: true }))).kvs.map((k) => `${text(k.key)}=${text(k.value)}`);
    assert.ok(third.done() && third.error() === undefined, `the third candidate leads; keys: ${keys.join(', ')}`);
    assert.equal(await c.run(countKeys(leader, 'el/')), 1);
    // the aborted candidate campaigns again: behind the leader, with a key of its own
    const again = background(e2.campaign('two again'));
    await c.run(sleep(c, 500));
    assert.equal(again.done(), false, 'it waits behind the leader');
    assert.equal(await c.run(countKeys(leader, 'el/')), 2);
  } finally {
    await c.closeAll();
  }
});

test('a participant whose enter was aborted while cut off is not counted once its member is back', async () => {
  const c = await startCluster(1);
  try {
    const leader = c.leader()!;
    const F = c.followers()[0]!;
    const sA = await session(c, F, { ttl: 10 });
    const A = new DoubleBarrier(sA, 'b/x', 2);
    const ac = new AbortController();
    const entering = background(A.enter({ signal: ac.signal }));
    await c.run(sleep(c, 200));
    c.net.isolate(F.id);
    await c.run(sleep(c, 50));
    ac.abort();
    await c.run(entering.promise);
    await c.run(sleep(c, 2_500));
    c.net.heal();
    await c.run(sleep(c, 1_000));
    assert.ok(sA.isAlive);
    const sB = await session(c, leader, { ttl: 10 });
    const B = background(new DoubleBarrier(sB, 'b/x', 2).enter());
    await c.run(sleep(c, 1_000));
    assert.equal(B.done(), false, 'B is the only live participant of 2: it waits');
  } finally {
    await c.closeAll();
  }
});

test('a ready key left by an earlier round does not release an enter, also when the watch from its key is compacted away', async () => {
  const c = await startCluster(1);
  try {
    const node = c.leader()!;
    const sA = await session(c, node, { ttl: 2 });
    const sB = await session(c, node, { ttl: 2 });
    const B = new DoubleBarrier(sB, 'b/round', 2);
    await c.run(Promise.all([new DoubleBarrier(sA, 'b/round', 2).enter(), B.enter()]));
    const leaving = background(B.leave());
    await c.run(sleep(c, 100));
    await c.run(sA.close()); // A dies before it leaves: the ready key stays
    await c.run(leaving.promise);
    assert.equal(leaving.error(), undefined);
    assert.equal((await c.run(node.get('b/round/ready'))) !== undefined, true, 'a ready key is left');
    // round 2: C alone, and a compaction lands as its watch on ready starts
    let compacted = false;
    const kvC = new Proxy(node, {
      get(t, prop) {
        if (prop === 'range') {
          return async (input: Parameters<KV['range']>[0]) => {
            const res = await t.range(input);
            if (!compacted && input.sortTarget === 'CREATE' && String(input.key).endsWith('waiters/')) {
              compacted = true;
              const p = await t.put('other', 'x');
              await t.compact(p.header.revision);
            }
            return res;
          };
        }
        const v = Reflect.get(t, prop, t) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
      },
    }) as KV;
    const sC = await session(c, kvC, { ttl: 10 });
    const C = background(new DoubleBarrier(sC, 'b/round', 2).enter());
    await c.run(sleep(c, 1_000));
    assert.ok(compacted);
    assert.equal(C.done(), false, 'one participant of two: C waits');
  } finally {
    await c.closeAll();
  }
});
