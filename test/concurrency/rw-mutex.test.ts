// RWMutex (etcd's recipes RWMutex) on a 3-member cluster with a virtual
// clock: shared readers, exclusive writers, FIFO order without writer
// starvation, abort, session loss, and a seeded mix of readers and writers
// (seed printed; replay with QUORUMKV_CONCURRENCY_SEED=<seed>).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, FaultError } from '../../src/errors.js';
import { RWMutex, Session, type HeldLock } from '../../src/concurrency/index.js';
import { background, countKeys, hasCode, rng, seedFor, session, sleep, startCluster, until } from './helpers.js';

test('readers share the lock; a writer waits for them; readers after a waiting writer wait for it', async () => {
  const c = await startCluster(71);
  try {
    const members = [...c.nodes.values()];
    const mk = async (i: number) => new RWMutex(await session(c, members[i % 3]!, { ttl: 5 }), 'rw');
    const r1 = await mk(0);
    const r2 = await mk(1);
    const w = await mk(2);
    const r3 = await mk(0);
    await c.run(r1.rlock());
    await c.run(r2.rlock());
    assert.equal(r1.mode, 'read');
    const pw = background(w.lock());
    await until(c, async () => (await countKeys(members[0]!, 'rw/')) === 3, 5_000, 'writer queued');
    const pr3 = background(r3.rlock());
    await until(c, async () => (await countKeys(members[0]!, 'rw/')) === 4, 5_000, 'reader queued');
    await c.clock.advanceAsync(300);
    assert.equal(pw.done(), false, 'the writer waits for the readers');
    assert.equal(pr3.done(), false, 'a reader after a waiting writer waits');
    await c.run(r1.runlock());
    await c.clock.advanceAsync(200);
    assert.equal(pw.done(), false, 'one reader is still in');
    await c.run(r2.runlock());
    await c.run(pw.promise);
    assert.equal(w.mode, 'write');
    await c.clock.advanceAsync(300);
    assert.equal(pr3.done(), false, 'the writer excludes the reader');
    await c.run(w.unlock());
    await c.run(pr3.promise);
    assert.equal(r3.mode, 'read');
    assert.ok((pr3.value() as HeldLock).fencingToken > (pw.value() as HeldLock).fencingToken, 'the reader token is above the writer token before it');
    await assert.rejects(c.run(r3.unlock()), hasCode(ErrorCode.LOCK_NOT_HELD));
    await c.run(r3.runlock());
    assert.equal(await c.run(countKeys(members[0]!, 'rw/')), 0);
  } finally {
    await c.closeAll();
  }
});

test('writers exclude each other and are served in FIFO order with increasing tokens', async () => {
  const c = await startCluster(72);
  try {
    const members = [...c.nodes.values()];
    const writers: RWMutex[] = [];
    for (let i = 0; i < 4; i++) writers.push(new RWMutex(await session(c, members[i % 3]!, { ttl: 5 }), 'ww'));
    await c.run(writers[0]!.lock());
    const order: number[] = [];
    const tokens: number[] = [writers[0]!.current!.fencingToken];
    const pending = [];
    for (let i = 1; i < 4; i++) {
      const w = writers[i]!;
      pending.push(
        background(
          w.withLock(async (lock) => {
            order.push(i);
            tokens.push(lock.fencingToken);
            await sleep(c, 30);
          }),
        ),
      );
      await until(c, async () => (await countKeys(members[0]!, 'ww/')) === i + 1, 5_000, `writer ${i} queued`);
    }
    await c.run(writers[0]!.unlock());
    await c.run(Promise.all(pending.map((p) => p.promise)));
    assert.deepEqual(order, [1, 2, 3]);
    for (let i = 1; i < tokens.length; i++) assert.ok(tokens[i]! > tokens[i - 1]!, `tokens increase: ${tokens.join(', ')}`);
  } finally {
    await c.closeAll();
  }
});

test('an aborted rlock removes its key; a lost session fails the wait with QUORUMKV_SESSION_EXPIRED', async () => {
  const c = await startCluster(73);
  try {
    const leader = c.leader()!;
    const [f1, f2] = c.followers();
    const w = new RWMutex(await session(c, leader, { ttl: 5 }), 'ab');
    await c.run(w.lock());
    const r = new RWMutex(await session(c, f1!, { ttl: 5 }), 'ab');
    const ac = new AbortController();
    const pr = background(r.rlock({ signal: ac.signal }));
    await until(c, async () => (await countKeys(leader, 'ab/')) === 2, 5_000, 'queued');
    ac.abort();
    await c.run(pr.promise);
    assert.equal((pr.error() as FaultError).code, ErrorCode.ABORTED);
    assert.equal(await c.run(countKeys(leader, 'ab/')), 1);
    const lost = new RWMutex(await session(c, f2!, { ttl: 1 }), 'ab');
    const pl = background(lost.lock());
    await until(c, async () => (await countKeys(leader, 'ab/')) === 2, 5_000, 'queued');
    c.net.isolate(f2!.id);
    await c.run(pl.promise, 10_000);
    assert.equal((pl.error() as FaultError).code, ErrorCode.SESSION_EXPIRED);
    c.net.heal();
  } finally {
    await c.closeAll();
  }
});

test('a seeded mix of readers and writers never has a writer together with anyone else', async () => {
  const seed = seedFor('rwmutex mix', 505);
  const r = rng(seed);
  const c = await startCluster(seed);
  try {
    const members = [...c.nodes.values()];
    let readers = 0;
    let writers = 0;
    let maxReaders = 0;
    let sections = 0;
    const client = async (i: number): Promise<void> => {
      const rw = new RWMutex(await Session.create(members[i % 3]!, { ttl: 5, clock: c.clock }), 'mix');
      for (let k = 0; k < 5; k++) {
        const write = r.int(3) === 0;
        const body = async (): Promise<void> => {
          if (write) writers++;
          else readers++;
          maxReaders = Math.max(maxReaders, readers);
          assert.ok(writers <= 1 && (writers === 0 || readers === 0), `seed ${seed}: ${writers} writers with ${readers} readers`);
          await sleep(c, 10 + r.int(60));
          assert.ok(writers <= 1 && (writers === 0 || readers === 0), `seed ${seed}: ${writers} writers with ${readers} readers`);
          if (write) writers--;
          else readers--;
          sections++;
        };
        if (write) await rw.withLock(body);
        else await rw.withRLock(body);
        await sleep(c, r.int(50));
      }
    };
    await c.run(Promise.all(Array.from({ length: 6 }, (_, i) => client(i))), 60_000);
    assert.equal(sections, 30);
    assert.ok(maxReaders >= 2, `seed ${seed}: readers did share the lock (max ${maxReaders})`);
  } finally {
    await c.closeAll();
  }
});
