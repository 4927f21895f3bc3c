// Barrier and DoubleBarrier (etcd's recipes) on a 3-member cluster with a
// virtual clock, after etcd's recipes tests: waiters block until release;
// a double barrier lets its participants in and out together, refuses one
// too many, and survives a participant whose session ends. Deterministic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, FaultError } from '../../src/errors.js';
import { Barrier, DoubleBarrier } from '../../src/concurrency/index.js';
import { background, countKeys, hasCode, session, startCluster, until } from './helpers.js';

/** Whether a KV call (`put` or `txn`, with its first argument) writes the double barrier's ready key `ready`. */
function writesReady(prop: string | symbol, arg: unknown, ready: string): boolean {
  if (prop === 'put') return arg === ready;
  if (prop !== 'txn') return false;
  const ops = (arg as { success?: { put?: { key?: unknown } }[] }).success ?? [];
  return ops.some((op) => op.put?.key === ready);
}

test('barrier waiters on every member block while it is held and all go through on release', async () => {
  const c = await startCluster(81);
  try {
    const members = [...c.nodes.values()];
    const b = new Barrier(members[0]!, 'barriers/b1');
    assert.equal(await c.run(b.hold()), true);
    assert.equal(await c.run(b.hold()), false, 'already held');
    const waiters = Array.from({ length: 5 }, (_, i) => background(new Barrier(members[i % 3]!, 'barriers/b1').wait()));
    await c.clock.advanceAsync(1_000);
    for (const w of waiters) assert.equal(w.done(), false, 'blocked while held');
    assert.equal(await c.run(b.release()), true);
    await c.run(Promise.all(waiters.map((w) => w.promise)));
    for (const w of waiters) assert.equal(w.error(), undefined);
    // no key: wait returns at once
    await c.run(new Barrier(members[1]!, 'barriers/b1').wait());
    assert.equal(await c.run(b.release()), false, 'nothing to release');
    // an aborted wait
    await c.run(b.hold());
    const ac = new AbortController();
    const pa = background(new Barrier(members[2]!, 'barriers/b1').wait({ signal: ac.signal }));
    await c.clock.advanceAsync(100);
    ac.abort();
    await c.run(pa.promise);
    assert.equal((pa.error() as FaultError).code, ErrorCode.ABORTED);
  } finally {
    await c.closeAll();
  }
});

test('double barrier: nobody enters before all have arrived, nobody leaves before all have left', async () => {
  const c = await startCluster(82);
  try {
    const members = [...c.nodes.values()];
    const N = 5;
    const barriers: DoubleBarrier[] = [];
    for (let i = 0; i < N; i++) barriers.push(new DoubleBarrier(await session(c, members[i % 3]!, { ttl: 5 }), 'barriers/db', N));
    const entered: ReturnType<typeof background>[] = [];
    for (let i = 0; i < N - 1; i++) {
      entered.push(background(barriers[i]!.enter()));
      await until(c, async () => (await countKeys(members[0]!, 'barriers/db/waiters/')) === i + 1, 5_000, `participant ${i} in`);
    }
    await c.clock.advanceAsync(500);
    for (const e of entered) assert.equal(e.done(), false, 'waiting for the last participant');
    await c.run(barriers[N - 1]!.enter());
    await c.run(Promise.all(entered.map((e) => e.promise)));
    for (const e of entered) assert.equal(e.error(), undefined);
    const left: ReturnType<typeof background>[] = [];
    for (let i = 0; i < N - 1; i++) left.push(background(barriers[i]!.leave()));
    await c.clock.advanceAsync(500);
    for (const l of left) assert.equal(l.done(), false, 'waiting for the last participant to leave');
    await c.run(barriers[N - 1]!.leave());
    await c.run(Promise.all(left.map((l) => l.promise)));
    for (const l of left) assert.equal(l.error(), undefined);
    assert.equal(await c.run(countKeys(members[0]!, 'barriers/db/')), 0, 'the last one out removed every key');
  } finally {
    await c.closeAll();
  }
});

test('double barrier: one participant too many is refused with QUORUMKV_BARRIER_FULL', async () => {
  const c = await startCluster(83);
  try {
    const [f1, f2] = c.followers();
    const a = new DoubleBarrier(await session(c, f1!, { ttl: 5 }), 'barriers/full', 2);
    const b = new DoubleBarrier(await session(c, f2!, { ttl: 5 }), 'barriers/full', 2);
    const x = new DoubleBarrier(await session(c, f2!, { ttl: 5 }), 'barriers/full', 2);
    const pa = background(a.enter());
    await until(c, async () => (await countKeys(f1!, 'barriers/full/waiters/')) === 1, 5_000, 'a in');
    await c.run(b.enter());
    await c.run(pa.promise);
    await assert.rejects(c.run(x.enter()), (e: unknown) => e instanceof FaultError && e.code === ErrorCode.BARRIER_FULL);
    assert.equal(await c.run(countKeys(f1!, 'barriers/full/waiters/')), 2);
    await assert.rejects(c.run(x.leave()), hasCode(ErrorCode.INVALID_ARGUMENT));
  } finally {
    await c.closeAll();
  }
});

test('double barrier: when a participant session ends after entering, the others can still leave', async () => {
  const c = await startCluster(84);
  try {
    const members = [...c.nodes.values()];
    const sessions = [];
    const barriers: DoubleBarrier[] = [];
    for (let i = 0; i < 3; i++) {
      const s = await session(c, members[i]!, { ttl: 5 });
      sessions.push(s);
      barriers.push(new DoubleBarrier(s, 'barriers/fo', 3));
    }
    const entered = barriers.map((b) => background(b.enter()));
    await c.run(Promise.all(entered.map((e) => e.promise)));
    for (const e of entered) assert.equal(e.error(), undefined);
    // participant 0 goes away: its key goes with its lease
    await c.run(sessions[0]!.close());
    await c.run(Promise.all([barriers[1]!.leave(), barriers[2]!.leave()]));
    assert.equal(await c.run(countKeys(members[0]!, 'barriers/fo/')), 0);
  } finally {
    await c.closeAll();
  }
});

test('double barrier: a second enter() of the same object while the first waits is refused and adds no participant', async () => {
  const c = await startCluster(85);
  try {
    const kv = c.leader()!;
    const s = await session(c, kv, { ttl: 5 });
    const one = new DoubleBarrier(s, 'barriers/twice', 2);
    const first = background(one.enter());
    const second = background(one.enter());
    await c.run(second.promise);
    assert.ok(hasCode(ErrorCode.INVALID_ARGUMENT)(second.error()), `the second enter: ${String(second.error())}`);
    await c.clock.advanceAsync(500);
    assert.equal(first.done(), false, 'one object is one participant: the barrier of 2 stays closed');
    assert.equal(await c.run(countKeys(kv, 'barriers/twice/waiters/')), 1);
    assert.equal(await c.run(countKeys(kv, 'barriers/twice/ready')), 0);
    const other = new DoubleBarrier(await session(c, kv, { ttl: 5 }), 'barriers/twice', 2);
    await c.run(other.enter());
    await c.run(first.promise);
    assert.equal(first.error(), undefined);
    await c.run(Promise.all([one.leave(), other.leave()]));
    assert.equal(await c.run(countKeys(kv, 'barriers/twice/')), 0);
  } finally {
    await c.closeAll();
  }
});

test('double barrier: an abort that comes while the last participant puts ready does not fail its enter (the others are already released)', async () => {
  const c = await startCluster(86);
  try {
    const kv = c.leader()!;
    const ac = new AbortController();
    // the last participant's KV: the caller aborts while its ready put is on its way
    const aborting = new Proxy(kv, {
      get(target, prop) {
        if (prop === 'put' || prop === 'txn') {
          return (arg: unknown, ...rest: unknown[]) => {
            if (writesReady(prop, arg, 'barriers/late/ready')) ac.abort();
            return (target[prop] as (...a: unknown[]) => unknown)(arg, ...rest);
          };
        }
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const first = new DoubleBarrier(await session(c, kv, { ttl: 5 }), 'barriers/late', 2);
    const last = new DoubleBarrier(await session(c, aborting, { ttl: 5 }), 'barriers/late', 2);
    const pf = background(first.enter());
    await until(c, async () => (await countKeys(kv, 'barriers/late/waiters/')) === 1, 5_000, 'first in');
    const pl = background(last.enter({ signal: ac.signal }));
    await c.run(Promise.all([pf.promise, pl.promise]));
    assert.equal(ac.signal.aborted, true);
    assert.equal(pf.error(), undefined, 'the first participant was released');
    assert.equal(pl.error(), undefined, `the last participant, whose ready put released the first, has entered too: ${String(pl.error())}`);
    assert.equal(await c.run(countKeys(kv, 'barriers/late/waiters/')), 2, 'both participants are in');
    await c.run(Promise.all([first.leave(), last.leave()]));
    assert.equal(await c.run(countKeys(kv, 'barriers/late/')), 0, 'the last one out removed every key');
  } finally {
    await c.closeAll();
  }
});

test('double barrier: a waiting participant whose abort comes once the last one has put ready has entered (it was counted)', async () => {
  const c = await startCluster(87);
  try {
    const kv = c.leader()!;
    const f = c.followers()[0]!;
    const ac = new AbortController();
    // the last participant's KV: once its ready put is applied, the waiting participant's caller aborts
    const aborting = new Proxy(kv, {
      get(target, prop) {
        if (prop === 'put' || prop === 'txn') {
          return async (arg: unknown, ...rest: unknown[]) => {
            const res = await (target[prop] as (...a: unknown[]) => Promise<unknown>)(arg, ...rest);
            if (writesReady(prop, arg, 'barriers/counted/ready')) ac.abort();
            return res;
          };
        }
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const first = new DoubleBarrier(await session(c, f, { ttl: 5 }), 'barriers/counted', 2);
    const last = new DoubleBarrier(await session(c, aborting, { ttl: 5 }), 'barriers/counted', 2);
    const pf = background(first.enter({ signal: ac.signal }));
    await until(c, async () => (await countKeys(kv, 'barriers/counted/waiters/')) === 1, 5_000, 'first in');
    const pl = background(last.enter());
    await c.run(Promise.all([pf.promise, pl.promise]));
    assert.equal(ac.signal.aborted, true);
    assert.equal(pl.error(), undefined, 'the last participant was released');
    assert.equal(pf.error(), undefined, `the first participant, counted by the ready put that released the last one, has entered too: ${String(pf.error())}`);
    assert.equal(await c.run(countKeys(kv, 'barriers/counted/waiters/')), 2, 'both participants are in');
    await c.run(Promise.all([first.leave(), last.leave()]));
    assert.equal(await c.run(countKeys(kv, 'barriers/counted/')), 0);
  } finally {
    await c.closeAll();
  }
});

test('double barrier: a waiting participant that leaves between the last one\'s count and its ready put is not counted: the last one waits for another participant', async () => {
  const c = await startCluster(88);
  try {
    const kv = c.leader()!;
    const f = c.followers()[0]!;
    const ac = new AbortController();
    let left: Promise<void> | undefined;
    // the last participant's KV: just before its ready write goes out, the
    // waiting participant's caller aborts, and its key is deleted
    const leaving = new Proxy(kv, {
      get(target, prop) {
        if (prop === 'put' || prop === 'txn') {
          return async (arg: unknown, ...rest: unknown[]) => {
            if (left === undefined && writesReady(prop, arg, 'barriers/gone/ready')) {
              ac.abort();
              left = until(c, async () => (await countKeys(kv, 'barriers/gone/waiters/')) === 1, 5_000, 'the first participant left');
              await left;
            }
            return (target[prop] as (...a: unknown[]) => Promise<unknown>)(arg, ...rest);
          };
        }
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const first = new DoubleBarrier(await session(c, f, { ttl: 5 }), 'barriers/gone', 2);
    const last = new DoubleBarrier(await session(c, leaving, { ttl: 5 }), 'barriers/gone', 2);
    const pf = background(first.enter({ signal: ac.signal }));
    await until(c, async () => (await countKeys(kv, 'barriers/gone/waiters/')) === 1, 5_000, 'first in');
    const pl = background(last.enter());
    await c.run(pf.promise);
    assert.ok(hasCode(ErrorCode.ABORTED)(pf.error()), `the first participant left: ${String(pf.error())}`);
    await c.clock.advanceAsync(1_000);
    assert.equal(pl.done(), false, `the last one is not released with one participant in: ${String(pl.error())}`);
    assert.equal(await c.run(countKeys(kv, 'barriers/gone/ready')), 0, 'no ready key');
    // a new participant makes two: both go through
    const third = new DoubleBarrier(await session(c, kv, { ttl: 5 }), 'barriers/gone', 2);
    await c.run(Promise.all([third.enter(), pl.promise]));
    assert.equal(pl.error(), undefined);
    assert.equal(await c.run(countKeys(kv, 'barriers/gone/waiters/')), 2);
    await c.run(Promise.all([third.leave(), last.leave()]));
    assert.equal(await c.run(countKeys(kv, 'barriers/gone/')), 0);
  } finally {
    await c.closeAll();
  }
});
