// Calls of one recipe object that overlap: an unlock or a resign whose
// answer arrives after the same object has taken the lock or the leadership
// anew, and two unlocks at once. Deterministic (virtual clock, no seed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, UsageError } from '../../src/errors.js';
import { Election, Mutex, RWMutex } from '../../src/concurrency/index.js';
import type { KV, TxnInput } from '../../src/server/kv.js';
import type { KvNode } from '../../src/server/index.js';
import { background, session, startCluster, until } from './helpers.js';

/**
 * A KV on `member` that, once `late.armed` is set, holds back the answer of
 * its next txn that deletes a key (the txn itself is applied at once) until
 * `late.answer()` is called: a delayed answer, as any KV over a network may give.
 */
function lateDeletes(member: KvNode): { kv: KV; late: { armed: boolean; held: boolean; answer: () => void } } {
  const late = { armed: false, held: false, answer: () => undefined as void };
  const kv = new Proxy(member, {
    get(target, prop) {
      if (prop === 'txn') {
        return async (input: TxnInput) => {
          const res = await target.txn(input);
          if (late.armed && input.success?.some((op) => 'deleteRange' in op)) {
            late.armed = false;
            await new Promise<void>((resolve) => {
              late.held = true;
              late.answer = resolve;
            });
          }
          return res;
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as unknown as KV;
  return { kv, late };
}

const notHeld = (e: unknown): boolean => e instanceof UsageError && e.code === ErrorCode.LOCK_NOT_HELD;

test('an unlock answered after the mutex has locked anew does not drop the new lock: the mutex still holds it and can unlock it', async () => {
  const c = await startCluster(71);
  try {
    const leader = c.leader()!;
    const { kv, late } = lateDeletes(c.followers()[0]!);
    const m = new Mutex(await session(c, kv, { ttl: 5 }), 'late-unlock');
    const first = await c.run(m.lock());
    late.armed = true;
    const unlocking = background(m.unlock());
    await until(c, async () => late.held, 5_000, 'the unlock applied');
    // the key is gone: lock() takes the lock anew
    const again = await c.run(m.lock());
    assert.ok(again.fencingToken > first.fencingToken);
    late.answer();
    await c.run(unlocking.promise);
    assert.equal(unlocking.error(), undefined);
    assert.equal(m.current, again, 'the late answer of the first unlock released the new lock');
    assert.equal(m.isHeld, true);
    assert.equal((await c.run(leader.get(m.key)))?.createRevision, again.fencingToken);
    await c.run(m.unlock());
    assert.equal(await c.run(leader.get(m.key)), undefined, 'the new lock could not be unlocked: its key stays for the session\'s life');
  } finally {
    await c.closeAll();
  }
});

test('a resign answered after the election has won anew does not drop the new leadership: still leader, and it can resign', async () => {
  const c = await startCluster(72);
  try {
    const leader = c.leader()!;
    const { kv, late } = lateDeletes(c.followers()[0]!);
    const e = new Election(await session(c, kv, { ttl: 5 }), 'late-resign');
    const first = await c.run(e.campaign('one'));
    late.armed = true;
    const resigning = background(e.resign());
    await until(c, async () => late.held, 5_000, 'the resign applied');
    // the key is gone: campaign() campaigns anew
    const again = await c.run(e.campaign('two'));
    assert.ok(again.term > first.term);
    late.answer();
    await c.run(resigning.promise);
    assert.equal(resigning.error(), undefined);
    assert.equal(e.leadership, again, 'the late answer of the first resign dropped the new leadership');
    assert.equal(e.isLeader, true);
    await c.run(e.resign());
    assert.equal(await c.run(leader.get(e.key)), undefined, 'the new leader key could not be resigned: it stays for the session\'s life');
  } finally {
    await c.closeAll();
  }
});

test('two unlock() calls at once: the first releases the lock, the second fails as an unlock of a mutex not held (not as a lock lost)', async () => {
  const c = await startCluster(73);
  try {
    const leader = c.leader()!;
    const f = c.followers()[0]!;
    const s = await session(c, f, { ttl: 5 });
    const m = new Mutex(s, 'twice');
    await c.run(m.lock());
    const a = background(m.unlock());
    const b = background(m.unlock());
    await c.run(Promise.all([a.promise, b.promise]));
    assert.equal(a.error(), undefined);
    assert.ok(notHeld(b.error()), `the second unlock: ${String(b.error())}`);
    assert.equal(m.isHeld, false);
    assert.equal(await c.run(leader.get(m.key)), undefined);

    const rw = new RWMutex(s, 'twice-rw');
    await c.run(rw.rlock());
    const ra = background(rw.runlock());
    const rb = background(rw.runlock());
    await c.run(Promise.all([ra.promise, rb.promise]));
    assert.equal(ra.error(), undefined);
    assert.ok(notHeld(rb.error()), `the second runlock: ${String(rb.error())}`);
    assert.equal(rw.mode, undefined);
  } finally {
    await c.closeAll();
  }
});
