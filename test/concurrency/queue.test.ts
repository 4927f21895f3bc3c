// Queue and PriorityQueue (etcd's recipes) on a 3-member cluster with a
// virtual clock, after etcd's recipes tests: FIFO for one reader and one
// writer, every item exactly once with many readers and writers, blocking
// dequeue, priorities. Seeded (printed; replay with
// QUORUMKV_CONCURRENCY_SEED=<seed>).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, FaultError } from '../../src/errors.js';
import { PriorityQueue, Queue } from '../../src/concurrency/index.js';
import { background, hasCode, rng, seedFor, sleep, startCluster } from './helpers.js';

test('one writer and one reader: items come out in the order they went in', async () => {
  const c = await startCluster(91);
  try {
    const [f1, f2] = c.followers();
    const w = new Queue(f1!, 'queues/q1');
    const r = new Queue(f2!, 'queues/q1');
    for (let i = 0; i < 10; i++) await c.run(w.enqueue(`item-${i}`));
    assert.equal(await c.run(r.size()), 10);
    const out: string[] = [];
    for (let i = 0; i < 10; i++) out.push(await c.run(r.dequeue()));
    assert.deepEqual(
      out,
      Array.from({ length: 10 }, (_, i) => `item-${i}`),
    );
    assert.equal(await c.run(r.size()), 0);
  } finally {
    await c.closeAll();
  }
});

test('many writers and readers on every member: each item is dequeued exactly once, and each writer items in order', async () => {
  const seed = seedFor('queue', 606);
  const r = rng(seed);
  const c = await startCluster(seed);
  try {
    const members = [...c.nodes.values()];
    const got: string[][] = [[], [], []];
    const readers = got.map((list, i) =>
      (async () => {
        const q = new Queue(members[i]!, 'queues/mm');
        for (let k = 0; k < 10; k++) list.push(await q.dequeue());
      })(),
    );
    const writers = [0, 1, 2].map((i) =>
      (async () => {
        const q = new Queue(members[(i + 1) % 3]!, 'queues/mm');
        for (let k = 0; k < 10; k++) {
          await q.enqueue(`w${i}-${String(k).padStart(2, '0')}`);
          await sleep(c, r.int(40));
        }
      })(),
    );
    await c.run(Promise.all([...readers, ...writers]), 30_000);
    const all = got.flat();
    assert.equal(all.length, 30);
    assert.equal(new Set(all).size, 30, `seed ${seed}: an item was dequeued twice`);
    // each reader sees each writer's items in the order they were written
    for (const list of got) {
      for (const w of ['w0', 'w1', 'w2']) {
        const mine = list.filter((x) => x.startsWith(w));
        assert.deepEqual(mine, [...mine].sort(), `seed ${seed}: ${w} out of order for a reader`);
      }
    }
  } finally {
    await c.closeAll();
  }
});

test('dequeue on an empty queue blocks until an item arrives, and can be aborted', async () => {
  const c = await startCluster(92);
  try {
    const [f1, f2] = c.followers();
    const q = new Queue(f1!, 'queues/block');
    const p = background(q.dequeue());
    await c.clock.advanceAsync(500);
    assert.equal(p.done(), false);
    await c.run(new Queue(f2!, 'queues/block').enqueue('late'));
    await c.run(p.promise);
    assert.equal(p.value(), 'late');
    const ac = new AbortController();
    const pa = background(q.dequeue({ signal: ac.signal }));
    await c.clock.advanceAsync(100);
    ac.abort();
    await c.run(pa.promise);
    assert.equal((pa.error() as FaultError).code, ErrorCode.ABORTED);
    await assert.rejects(q.enqueue(42 as unknown as string), hasCode(ErrorCode.INVALID_ARGUMENT));
  } finally {
    await c.closeAll();
  }
});

test('a priority queue serves the lowest priority number first, FIFO among equals', async () => {
  const seed = seedFor('priority queue', 707);
  const r = rng(seed);
  const c = await startCluster(93);
  try {
    const [f1, f2] = c.followers();
    const w = new PriorityQueue(f1!, 'queues/pq');
    const items: { v: string; p: number; n: number }[] = [];
    for (let n = 0; n < 12; n++) {
      const p = r.int(4) * 10;
      items.push({ v: `p${p}-n${n}`, p, n });
      await c.run(w.enqueue(`p${p}-n${n}`, p));
    }
    const rd = new PriorityQueue(f2!, 'queues/pq');
    const out: string[] = [];
    for (let i = 0; i < items.length; i++) out.push(await c.run(rd.dequeue()));
    const expected = [...items].sort((a, b) => a.p - b.p || a.n - b.n).map((x) => x.v);
    assert.deepEqual(out, expected, `seed ${seed}`);
    // a blocked reader gets the next item
    const p = background(rd.dequeue());
    await c.clock.advanceAsync(200);
    await c.run(w.enqueue('urgent', 0));
    await c.run(p.promise);
    assert.equal(p.value(), 'urgent');
    await assert.rejects(w.enqueue('x', -1), hasCode(ErrorCode.INVALID_ARGUMENT));
    await assert.rejects(w.enqueue('x', 100_000), hasCode(ErrorCode.INVALID_ARGUMENT));
  } finally {
    await c.closeAll();
  }
});
