// Bad input to the recipes gets QUORUMKV_INVALID_ARGUMENT, not a TypeError,
// and leaves nothing behind (no key written). Found by calling every recipe
// with values of the wrong type: `null` options, a `transact` without a
// function and a session TTL that is a Symbol threw TypeErrors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DoubleBarrier, Election, Mutex, PriorityQueue, Queue, RWMutex, Barrier, Session, electionLeader, observeElection, transact } from '../../src/concurrency/index.js';
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import { session, startCluster } from './helpers.js';
import { assertEachInvalid } from '../server/helpers.js';
import { detachedView, proxiedView } from '../mvcc/helpers.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

test('recipe calls with options or functions of the wrong type fail with QUORUMKV_INVALID_ARGUMENT and write nothing', async () => {
  const c = await startCluster(41);
  try {
    const kv = c.leader()!;
    const s = await session(c, kv);
    const revision = kv.status().revision;
    const wantInvalid: { name: string; call: () => unknown }[] = [
      { name: 'Session.create with null options', call: () => Session.create(kv, null as Any) },
      { name: 'Session.create with a Symbol ttl', call: () => Session.create(kv, { ttl: Symbol('ttl') as Any }) },
      { name: 'Mutex.lock with null options', call: () => new Mutex(s, 'm').lock(null as Any) },
      { name: 'Mutex.lock with a signal that is not an AbortSignal', call: () => new Mutex(s, 'm').lock({ signal: {} as Any }) },
      { name: 'Mutex.withLock without a function', call: () => new Mutex(s, 'm').withLock(5 as Any) },
      { name: 'RWMutex.rlock with null options', call: () => new RWMutex(s, 'rw').rlock(null as Any) },
      { name: 'RWMutex.withLock without a function', call: () => new RWMutex(s, 'rw').withLock(null as Any) },
      { name: 'Election.campaign with null options', call: () => new Election(s, 'e').campaign('v', null as Any) },
      { name: 'Election.observe with null options', call: () => new Election(s, 'e').observe(null as Any) },
      { name: 'Barrier.wait with null options', call: () => new Barrier(kv, 'b').wait(null as Any) },
      { name: 'Barrier.hold with null options', call: () => new Barrier(kv, 'b').hold(null as Any) },
      { name: 'Barrier.hold with a null lease', call: () => new Barrier(kv, 'b').hold({ lease: null as Any }) },
      { name: 'Barrier.hold with a lease id that is a string', call: () => new Barrier(kv, 'b').hold({ lease: '7' as Any }) },
      { name: 'DoubleBarrier.enter with null options', call: () => new DoubleBarrier(s, 'db', 2).enter(null as Any) },
      { name: 'Queue.dequeue with null options', call: () => new Queue(kv, 'q').dequeue(null as Any) },
      { name: 'PriorityQueue.dequeue with null options', call: () => new PriorityQueue(kv, 'pq').dequeue(null as Any) },
      { name: 'transact without a function', call: () => transact(kv, 5 as Any) },
      { name: 'transact with null options', call: () => transact(kv, async () => undefined, null as Any) },
      { name: 'transact without a KV', call: () => transact(null as Any, async () => undefined) },
      { name: 'Session.create without a KV', call: () => Session.create(undefined as Any) },
      { name: 'Session.create with a clock that is not one', call: () => Session.create(kv, { clock: 5 as Any }) },
      { name: 'Session.create with an infinite keep-alive interval', call: () => Session.create(kv, { ttl: 5, keepAliveIntervalMs: Infinity }) },
      { name: 'Session.create with a keep-alive interval as long as the TTL', call: () => Session.create(kv, { ttl: 5, keepAliveIntervalMs: 5_000 }) },
      { name: 'a Mutex without a session', call: () => new Mutex(undefined as Any, 'm') },
      { name: 'an RWMutex given a KV for a session', call: () => new RWMutex(kv as Any, 'rw') },
      { name: 'an Election without a session', call: () => new Election(null as Any, 'e') },
      { name: 'a DoubleBarrier without a session', call: () => new DoubleBarrier({} as Any, 'db', 2) },
      // its trailing '/' is dropped: the barrier's key would be empty
      { name: 'a DoubleBarrier on the key /', call: () => new DoubleBarrier(s, '/', 2) },
      { name: 'a Barrier without a KV', call: () => new Barrier(undefined as Any, 'b') },
      { name: 'a Queue given a session for a KV', call: () => new Queue(s as Any, 'q') },
      { name: 'a PriorityQueue without a KV', call: () => new PriorityQueue(null as Any, 'pq') },
      { name: 'observeElection without a KV', call: () => observeElection(undefined as Any, 'e') },
      { name: 'electionLeader without a KV', call: () => electionLeader(undefined as Any, 'e') },
      { name: 'electionLeader given a session for a KV', call: () => electionLeader(s as Any, 'e') },
    ];
    for (const w of wantInvalid) {
      let outcome: unknown;
      try {
        outcome = await c.run(Promise.resolve().then(w.call));
      } catch (err) {
        outcome = err;
      }
      assert.ok(isQuorumError(outcome, ErrorCode.INVALID_ARGUMENT), `${w.name}: got ${outcome instanceof Error ? `${outcome.name} ${outcome.message}` : String(outcome)}`);
    }
    assert.equal(kv.status().revision, revision, 'nothing was written');
    await c.run(s.close());
  } finally {
    await c.closeAll();
  }
});

test('a campaign with a value of the wrong type fails with QUORUMKV_INVALID_ARGUMENT and leaves the leader key of its session alone', async () => {
  const c = await startCluster(42);
  try {
    const kv = c.leader()!;
    const s = await session(c, kv, { ttl: 5 });
    const leading = new Election(s, 'e');
    const lead = await c.run(leading.campaign('v'));
    // a Proxy of a Uint8Array, or a detached view: before, a TypeError
    const values: [string, unknown][] = [['5', 5], ['null', null], ['undefined', undefined], ['an object', { key: 'v' }], ['a Proxy of a Uint8Array', proxiedView()], ['a detached view', detachedView()]];
    for (const [what, value] of values) {
      let outcome: unknown;
      try {
        outcome = await c.run(new Election(s, 'e').campaign(value as Any));
      } catch (err) {
        outcome = err;
      }
      assert.ok(isQuorumError(outcome, ErrorCode.INVALID_ARGUMENT), `campaign(${what}): got ${String(outcome)}`);
      assert.equal((await c.run(kv.get(leading.key)))?.createRevision, lead.term, `campaign(${what}) left the leader key`);
    }
  } finally {
    await c.closeAll();
  }
});

test('a proclaim with a value of the wrong type (undefined included) fails with QUORUMKV_INVALID_ARGUMENT and leaves the leader\'s value alone', async () => {
  const c = await startCluster(43);
  try {
    const kv = c.leader()!;
    const s = await session(c, kv, { ttl: 5 });
    const e = new Election(s, 'e');
    await c.run(e.campaign('v'));
    const revision = kv.status().revision;
    const values: [string, unknown][] = [['5', 5], ['null', null], ['undefined', undefined], ['an object', { key: 'v' }], ['a Proxy of a Uint8Array', proxiedView()], ['a detached view', detachedView()]];
    for (const [what, value] of values) {
      let outcome: unknown;
      try {
        outcome = await c.run(e.proclaim(value as Any));
      } catch (err) {
        outcome = err;
      }
      assert.ok(isQuorumError(outcome, ErrorCode.INVALID_ARGUMENT), `proclaim(${what}): got ${String(outcome)}`);
    }
    assert.equal(kv.status().revision, revision, 'nothing was written');
    assert.equal((await c.run(e.leader())).value, 'v');
    assert.equal(e.isLeader, true);
  } finally {
    await c.closeAll();
  }
});

test('transact with a prefetch that is not an array of keys fails with QUORUMKV_INVALID_ARGUMENT', async () => {
  const c = await startCluster(44);
  try {
    const kv = c.leader()!;
    for (const prefetch of [5, 'ab', { 0: 'a' }]) {
      let outcome: unknown;
      try {
        outcome = await c.run(transact(kv, async () => 1, { prefetch: prefetch as Any }));
      } catch (err) {
        outcome = err;
      }
      assert.ok(isQuorumError(outcome, ErrorCode.INVALID_ARGUMENT), `prefetch ${JSON.stringify(prefetch)}: got ${outcome instanceof Error ? `${outcome.name} ${outcome.message}` : String(outcome)}`);
    }
  } finally {
    await c.closeAll();
  }
});

test('transact options and stm.put options that are null fail with QUORUMKV_INVALID_ARGUMENT instead of taking the default, and write nothing', async () => {
  const c = await startCluster(45);
  try {
    const kv = c.leader()!;
    const revision = kv.status().revision;
    const cases: { name: string; call: () => Promise<unknown> }[] = [
      { name: 'isolation null', call: () => transact(kv, (stm) => stm.put('n1', 'v'), { isolation: null as Any }) },
      { name: 'retries null', call: () => transact(kv, (stm) => stm.put('n1', 'v'), { retries: null as Any }) },
      { name: 'prefetch null', call: () => transact(kv, (stm) => stm.put('n1', 'v'), { prefetch: null as Any }) },
      // a null lease wrote the key without a lease (lease 0), as Barrier.hold refuses it
      { name: 'put with a null lease', call: () => transact(kv, (stm) => stm.put('n1', 'v', { lease: null as Any })) },
      { name: 'put with a string lease', call: () => transact(kv, (stm) => stm.put('n1', 'v', { lease: '7' as Any })) },
    ];
    for (const w of cases) {
      let outcome: unknown;
      try {
        outcome = await c.run(w.call());
      } catch (err) {
        outcome = err;
      }
      assert.ok(isQuorumError(outcome, ErrorCode.INVALID_ARGUMENT), `${w.name}: got ${outcome instanceof Error ? `${outcome.name} ${outcome.message}` : JSON.stringify(outcome)}`);
    }
    assert.equal(kv.status().revision, revision, 'nothing was written');
  } finally {
    await c.closeAll();
  }
});

test('Session.create with a null ttl or clock fails with QUORUMKV_INVALID_ARGUMENT instead of taking the default (60 s, the real clock), and grants no lease', async () => {
  const c = await startCluster(46);
  try {
    const kv = c.leader()!;
    const before = (await c.run(kv.leases())).leases.length;
    const cases: { name: string; options: Any }[] = [
      { name: 'ttl null', options: { ttl: null, clock: c.clock } },
      { name: 'clock null', options: { ttl: 1, clock: null } },
      { name: 'lease null', options: { lease: null, clock: c.clock } },
    ];
    for (const w of cases) {
      let outcome: unknown;
      try {
        outcome = await c.run(Session.create(kv, w.options));
      } catch (err) {
        outcome = err;
      }
      if (outcome instanceof Session) await c.run(outcome.close());
      assert.ok(isQuorumError(outcome, ErrorCode.INVALID_ARGUMENT), `${w.name}: got ${outcome instanceof Error ? `${outcome.name} ${outcome.message}` : (outcome as object).constructor.name}`);
    }
    assert.equal((await c.run(kv.leases())).leases.length, before, 'no lease was granted');
  } finally {
    await c.closeAll();
  }
});

test('a session TTL or an STM isolation level of any kind of malformed value fails with QUORUMKV_INVALID_ARGUMENT, not a TypeError, and writes nothing', async () => {
  // before: the message was made with String(value), which threw a
  // TypeError on an object without a prototype and ran the caller's toString
  const c = await startCluster(43);
  try {
    const kv = c.leader()!;
    const revision = kv.status().revision;
    const leases = (await c.run(kv.leases())).leases.length;
    const odd: [string, unknown][] = [
      ['an object without a prototype', Object.create(null)],
      ['a Symbol', Symbol('s')],
      ['an object whose toString throws', { toString: () => { throw new Error('toString ran'); }, valueOf: () => { throw new Error('valueOf ran'); } }],
    ];
    for (const [what, v] of odd) {
      const calls: [string, () => unknown][] = [
        ['Session.create ttl', () => Session.create(kv, { ttl: v as number, clock: c.clock })],
        ['transact isolation', () => transact(kv, async () => undefined, { isolation: v as 'serializable' })],
      ];
      await assertEachInvalid((p) => c.run(p), calls, ` ${what}`);
    }
    assert.equal(kv.status().revision, revision, 'nothing was written');
    assert.equal((await c.run(kv.leases())).leases.length, leases, 'no lease was granted');
  } finally {
    await c.closeAll();
  }
});
