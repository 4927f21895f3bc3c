// MemoryNetwork faults on a virtual clock: partitions (symmetric, one-way,
// isolation), drop/duplicate/reorder rates (statistically plausible: within
// 4.5 standard deviations of the binomial expectation), delays, per-link
// overrides, snapshot reports, and reproducibility (same seed, same trace).
//
// Randomized: the PRNG seed is printed when a test fails and can be replayed
// with QUORUMKV_TRANSPORT_SEED=<n>.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isQuorumError, ErrorCode } from '../../src/errors.js';
import { message, type Message } from '../../src/raftpb/index.js';
import { MemoryNetwork, type NetworkEvent, type Transport } from '../../src/transport/index.js';
import { Recorder } from './conformance.js';
import { VirtualScheduler } from './virtual-scheduler.js';

const SEED = process.env.QUORUMKV_TRANSPORT_SEED === undefined ? 1234567 : Number.parseInt(process.env.QUORUMKV_TRANSPORT_SEED, 10);

interface Net {
  net: MemoryNetwork;
  clock: VirtualScheduler;
  t: Record<string, Transport>;
  rec: Record<string, Recorder>;
  events: NetworkEvent[];
}

async function makeNet(ids: string[], seed = SEED): Promise<Net> {
  const clock = new VirtualScheduler();
  const events: NetworkEvent[] = [];
  const net = new MemoryNetwork({ seed, scheduler: clock, onEvent: (e) => events.push(e) });
  const t: Record<string, Transport> = {};
  const rec: Record<string, Recorder> = {};
  for (const id of ids) {
    t[id] = net.transport(id);
    rec[id] = new Recorder();
    for (const p of ids) t[id]!.addPeer(p);
    await t[id]!.start(rec[id]!);
  }
  return { net, clock, t, rec, events };
}

function hb(from: string, to: string, index: number): Message {
  return message({ type: 'MsgHeartbeat', from, to, index, term: 1 });
}

/** Runs `body` and prints the seed if it fails. */
async function seeded(body: () => Promise<void> | void): Promise<void> {
  try {
    await body();
  } catch (err) {
    console.error(`failed with QUORUMKV_TRANSPORT_SEED=${SEED}`);
    throw err;
  }
}

/** Asserts `count` is within 4.5 sigma of a Binomial(n, p) mean. */
function assertBinomial(count: number, n: number, p: number, what: string): void {
  const mean = n * p;
  const sigma = Math.sqrt(n * p * (1 - p));
  assert.ok(Math.abs(count - mean) <= 4.5 * sigma + 1, `${what}: ${count} of ${n}, expected about ${mean.toFixed(0)} (sigma ${sigma.toFixed(1)})`);
}

test('nothing is delivered or reported synchronously inside send; the scheduler delivers', async () => {
  const { t, rec, clock } = await makeNet(['a', 'b']);
  t.a!.send([hb('a', 'b', 1), hb('a', 'nobody', 2)]);
  assert.equal(rec.b!.received.length, 0);
  assert.deepEqual(rec.a!.unreachable, []);
  clock.runAll();
  assert.equal(rec.b!.received.length, 1);
  assert.deepEqual(rec.a!.unreachable, ['nobody']);
});

test('a symmetric partition blocks both directions between the groups and nothing else; heal restores them', async () => {
  const { net, t, rec, clock } = await makeNet(['a', 'b', 'c', 'd']);
  net.partition(['a', 'b'], ['c']);
  for (const from of ['a', 'b', 'c', 'd']) {
    t[from]!.send(['a', 'b', 'c', 'd'].filter((x) => x !== from).map((to) => hb(from, to, 1)));
  }
  clock.runAll();
  const got = (id: string): string[] => rec[id]!.received.map((m) => m.from).sort();
  assert.deepEqual(got('a'), ['b', 'd']);
  assert.deepEqual(got('b'), ['a', 'd']);
  assert.deepEqual(got('c'), ['d']);
  assert.deepEqual(got('d'), ['a', 'b', 'c']);
  assert.deepEqual([...rec.a!.unreachable].sort(), ['c'], 'a partitioned link is reported unreachable');
  assert.deepEqual([...rec.c!.unreachable].sort(), ['a', 'b']);
  assert.equal(net.stats().dropped, 4);
  net.heal();
  t.a!.send([hb('a', 'c', 2)]);
  t.c!.send([hb('c', 'a', 2)]);
  clock.runAll();
  assert.deepEqual(got('c'), ['a', 'd']);
  assert.deepEqual(got('a'), ['b', 'c', 'd']);
});

test('a one-way partition blocks only from -> to', async () => {
  const { net, t, rec, clock } = await makeNet(['a', 'b']);
  net.partitionOneWay('a', 'b');
  t.a!.send([hb('a', 'b', 1)]);
  t.b!.send([hb('b', 'a', 1)]);
  clock.runAll();
  assert.equal(rec.b!.received.length, 0);
  assert.equal(rec.a!.received.length, 1);
  assert.deepEqual(net.stats({ from: 'a', to: 'b' }), { sent: 1, delivered: 0, dropped: 1, duplicated: 0, reordered: 0 });
  assert.deepEqual(net.stats({ from: 'b', to: 'a' }), { sent: 1, delivered: 1, dropped: 0, duplicated: 0, reordered: 0 });
});

test('isolate blocks every link of a node, also to nodes whose transport is created later', async () => {
  const { net, t, rec, clock } = await makeNet(['a', 'b', 'c']);
  net.isolate('c');
  t.a!.send([hb('a', 'b', 1), hb('a', 'c', 1)]);
  t.c!.send([hb('c', 'a', 1), hb('c', 'b', 1)]);
  const late = net.transport('e');
  late.addPeer('c');
  const lateRec = new Recorder();
  await late.start(lateRec);
  t.c!.addPeer('e');
  t.c!.send([hb('c', 'e', 1)]);
  clock.runAll();
  assert.equal(rec.b!.received.length, 1);
  assert.equal(rec.c!.received.length, 0);
  assert.equal(rec.a!.received.length, 0);
  assert.equal(lateRec.received.length, 0);
  assert.deepEqual([...rec.c!.unreachable].sort(), ['a', 'b', 'e']);
});

test('messages in flight when a partition starts are dropped at delivery', async () => {
  const { net, t, rec, clock } = await makeNet(['a', 'b']);
  net.setDelay({ minMs: 10, maxMs: 10 });
  t.a!.send([hb('a', 'b', 1), hb('a', 'b', 2)]);
  clock.advance(5);
  net.partition(['a'], ['b']);
  clock.runAll();
  assert.equal(rec.b!.received.length, 0);
  assert.equal(net.stats().dropped, 2);
});

test('with random delays and no reordering, each link is FIFO and every message arrives within [minMs, maxMs] of its send', async () => {
  await seeded(async () => {
    const { net, t, rec, clock } = await makeNet(['a', 'b', 'c']);
    net.setDelay({ minMs: 3, maxMs: 40 });
    const sentAt = new Map<string, number>();
    const arrivedAt = new Map<string, number>();
    const orig = rec.b!.receive.bind(rec.b!);
    rec.b!.receive = (m) => {
      arrivedAt.set(`${m.from}:${m.index}`, clock.now);
      orig(m);
    };
    for (let i = 1; i <= 500; i++) {
      t.a!.send([hb('a', 'b', i)]);
      t.c!.send([hb('c', 'b', i)]);
      sentAt.set(`a:${i}`, clock.now);
      sentAt.set(`c:${i}`, clock.now);
      clock.advance(i % 3); // 0, 1 or 2 ms between sends: plenty of overlap
    }
    clock.runAll();
    for (const from of ['a', 'c']) {
      const order = rec.b!.from(from).map((m) => m.index);
      assert.deepEqual(order, Array.from({ length: 500 }, (_, i) => i + 1), `FIFO from ${from}`);
    }
    for (const [k, at] of arrivedAt) {
      const d = at - sentAt.get(k)!;
      assert.ok(d >= 3 && d <= 40, `${k} took ${d} ms`);
    }
    assert.equal(arrivedAt.size, 1000);
  });
});

test('the drop rate drops about p of the messages, and the counters add up', async () => {
  await seeded(async () => {
    const { net, t, rec, clock } = await makeNet(['a', 'b']);
    net.setDropRate(0.3);
    const n = 10_000;
    for (let i = 0; i < n; i += 100) {
      t.a!.send(Array.from({ length: 100 }, (_, j) => hb('a', 'b', i + j)));
    }
    clock.runAll();
    const s = net.stats();
    assertBinomial(s.dropped, n, 0.3, 'dropped');
    assert.equal(s.sent, n);
    assert.equal(s.delivered, rec.b!.received.length);
    assert.equal(s.delivered + s.dropped, s.sent + s.duplicated);
    assert.deepEqual(rec.a!.unreachable, [], 'random loss is not reported unreachable');
    const idx = rec.b!.received.map((m) => m.index);
    assert.deepEqual(idx, [...idx].sort((x, y) => x - y), 'survivors keep their order');
  });
});

test('the duplicate rate delivers about p of the messages twice, in order, as distinct copies', async () => {
  await seeded(async () => {
    const { net, t, rec, clock } = await makeNet(['a', 'b']);
    net.setDuplicateRate(0.1);
    const n = 5000;
    t.a!.send(Array.from({ length: n }, (_, i) => hb('a', 'b', i)));
    clock.runAll();
    const s = net.stats();
    assertBinomial(s.duplicated, n, 0.1, 'duplicated');
    assert.equal(rec.b!.received.length, n + s.duplicated);
    const counts = new Map<number, number>();
    for (const m of rec.b!.received) counts.set(m.index, (counts.get(m.index) ?? 0) + 1);
    assert.equal(counts.size, n);
    assert.ok([...counts.values()].every((c) => c === 1 || c === 2));
    const dup = rec.b!.received.findIndex((m, i) => i > 0 && rec.b!.received[i - 1]!.index === m.index);
    assert.ok(dup > 0);
    assert.notEqual(rec.b!.received[dup], rec.b!.received[dup - 1], 'each delivery is its own copy');
  });
});

test('the duplicate rate never copies a MsgProp (a forwarded proposal would be applied twice), and draws for it all the same', async () => {
  const prop = (i: number): Message => message({ type: 'MsgProp', from: 'a', to: 'b', entries: [{ term: 0, index: 0, type: 'Normal', data: Uint8Array.of(i) }] });
  const { net, t, rec, clock } = await makeNet(['a', 'b']);
  net.setDuplicateRate(1);
  t.a!.send([prop(1), hb('a', 'b', 1), prop(2), hb('a', 'b', 2)]);
  clock.runAll();
  assert.deepEqual(
    rec.b!.received.map((m) => `${m.type}:${m.type === 'MsgProp' ? m.entries[0]!.data[0] : m.index}`),
    ['MsgProp:1', 'MsgHeartbeat:1', 'MsgHeartbeat:1', 'MsgProp:2', 'MsgHeartbeat:2', 'MsgHeartbeat:2'],
  );
  assert.deepEqual(net.stats(), { sent: 4, delivered: 6, dropped: 0, duplicated: 2, reordered: 0 });
  // The draws: the heartbeats between proposals are copied, delayed and
  // reordered alike, with the same seed, as when the proposals are
  // heartbeats too.
  await seeded(async () => {
    const copiesOf = async (propose: boolean): Promise<number[]> => {
      const n = await makeNet(['a', 'b']);
      n.net.setDuplicateRate(0.5);
      n.net.setDelay({ minMs: 0, maxMs: 20 });
      n.net.setReorderRate(0.2);
      n.t.a!.send(Array.from({ length: 400 }, (_, i) => (propose && i % 2 === 0 ? prop(i % 256) : hb('a', 'b', i))));
      n.clock.runAll();
      return n.rec.b!.received.filter((m) => m.type === 'MsgHeartbeat' && m.index % 2 === 1).map((m) => m.index);
    };
    assert.deepEqual(await copiesOf(true), await copiesOf(false));
  });
});

test('the reorder rate makes about p of the messages jump ahead, each still delivered exactly once', async () => {
  await seeded(async () => {
    const { net, t, rec, clock, events } = await makeNet(['a', 'b']);
    net.setReorderRate(0.2);
    const n = 5000;
    t.a!.send(Array.from({ length: n }, (_, i) => hb('a', 'b', i)));
    clock.runAll();
    const s = net.stats();
    // The first message finds nothing in flight to jump over.
    assertBinomial(s.reordered, n - 1, 0.2, 'reordered');
    assert.equal(events.filter((e) => e.kind === 'reorder').length, s.reordered);
    const idx = rec.b!.received.map((m) => m.index);
    assert.deepEqual([...idx].sort((x, y) => x - y), Array.from({ length: n }, (_, i) => i));
    let inversions = 0;
    for (let i = 1; i < idx.length; i++) if (idx[i]! < idx[i - 1]!) inversions++;
    assert.ok(inversions > 0 && inversions <= s.reordered, `${inversions} inversions for ${s.reordered} reordered`);
  });
});

test('per-link settings override the global ones, in one direction only', async () => {
  const { net, t, rec, clock } = await makeNet(['a', 'b', 'c']);
  net.setDropRate(1, { from: 'a', to: 'b' });
  t.a!.send([hb('a', 'b', 1), hb('a', 'c', 1)]);
  t.b!.send([hb('b', 'a', 1)]);
  clock.runAll();
  assert.equal(rec.b!.received.length, 0);
  assert.equal(rec.c!.received.length, 1);
  assert.equal(rec.a!.received.length, 1);
  net.setDropRate(1);
  net.setDropRate(0, { from: 'a', to: 'c' });
  net.setDelay({ minMs: 7, maxMs: 7 }, { from: 'a', to: 'c' });
  t.a!.send([hb('a', 'c', 2)]);
  t.b!.send([hb('b', 'a', 2)]);
  clock.advance(6);
  assert.equal(rec.c!.received.length, 1, 'the per-link delay holds the message');
  clock.advance(1);
  assert.equal(rec.c!.received.length, 2);
  assert.equal(rec.a!.received.length, 1, 'the global drop rate applies to b -> a');
  net.resetFaults();
  t.a!.send([hb('a', 'b', 3)]);
  clock.runAll();
  assert.equal(rec.b!.received.length, 1, 'resetFaults clears per-link rates');
});

test('a MsgSnap reports finish once delivered (once, even when duplicated) and failure when dropped', async () => {
  const { net, t, rec, clock } = await makeNet(['a', 'b', 'c']);
  const snap = (to: string): Message =>
    message({ type: 'MsgSnap', from: 'a', to, term: 2, snapshot: { data: Uint8Array.of(9, 9), metadata: { index: 5, term: 2, confState: { voters: ['a', 'b', 'c'], learners: [] } } } });
  net.setDuplicateRate(1, { from: 'a', to: 'b' });
  net.setDropRate(1, { from: 'a', to: 'c' });
  t.a!.send([snap('b'), snap('c')]);
  clock.runAll();
  assert.equal(rec.b!.received.length, 2);
  assert.deepEqual(rec.a!.snapshots, [
    { peer: 'c', status: 'failure' },
    { peer: 'b', status: 'finish' },
  ]);
});

test('the same seed and the same sends give the same delivery trace; another seed gives another', async () => {
  const scenario = async (seed: number): Promise<string[]> => {
    const { net, t, rec, clock, events } = await makeNet(['a', 'b', 'c'], seed);
    net.setDelay({ minMs: 0, maxMs: 25 });
    net.setDropRate(0.1);
    net.setDuplicateRate(0.05);
    net.setReorderRate(0.1);
    net.setDelay({ minMs: 5, maxMs: 50 }, { from: 'c', to: 'a' });
    const trace: string[] = [];
    for (const id of ['a', 'b', 'c']) {
      const r = rec[id]!;
      const orig = r.receive.bind(r);
      r.receive = (m) => {
        trace.push(`${clock.now} ${m.from}->${id} #${m.index}`);
        orig(m);
      };
    }
    for (let i = 0; i < 300; i++) {
      const from = ['a', 'b', 'c'][i % 3]!;
      const to = ['a', 'b', 'c'][(i + 1 + (i % 2)) % 3]!;
      t[from]!.send([hb(from, to, i), hb(from, to, i + 1000)]);
      if (i === 150) net.partition(['a'], ['b', 'c']);
      if (i === 200) net.heal();
      clock.advance(1);
    }
    clock.runAll();
    return [...trace, ...events.map((e) => `${e.kind} ${e.from}->${e.to} ${e.reason ?? ''}`)];
  };
  await seeded(async () => {
    const one = await scenario(SEED);
    const two = await scenario(SEED);
    assert.ok(one.length > 500);
    assert.deepEqual(one, two);
    const other = await scenario(SEED + 1);
    assert.notDeepEqual(one, other);
  });
});

test('invalid rates and delays throw UsageError INVALID_ARGUMENT and change nothing', async () => {
  const { net, t, rec, clock } = await makeNet(['a', 'b']);
  const bad = (fn: () => void): void =>
    assert.throws(fn, (e: unknown) => isQuorumError(e, ErrorCode.INVALID_ARGUMENT) && e.name === 'UsageError');
  bad(() => net.setDropRate(1.5));
  bad(() => net.setDuplicateRate(-0.1));
  bad(() => net.setReorderRate(Number.NaN));
  bad(() => net.setDelay({ minMs: 5, maxMs: 1 }));
  bad(() => net.setDelay({ minMs: 0.5, maxMs: 1 }));
  bad(() => net.setDropRate(0.5, { from: '', to: 'b' }));
  bad(() => new MemoryNetwork({ seed: 1.5 }));
  t.a!.send([hb('a', 'b', 1)]);
  clock.runAll();
  assert.equal(rec.b!.received.length, 1, 'no fault was installed');
  assert.equal(clock.now, 0, 'no delay was installed');
});

test('partition, partitionOneWay and isolate refuse ids that are not non-empty strings with INVALID_ARGUMENT, and block nothing', async () => {
  // a string for a group was taken character by character: partition('ab', ['c']) cut a and b off c
  const { net, t, rec, clock } = await makeNet(['a', 'b', 'c']);
  const bad = (fn: () => void): void =>
    assert.throws(fn, (e: unknown) => isQuorumError(e, ErrorCode.INVALID_ARGUMENT) && e.name === 'UsageError');
  bad(() => net.partition('ab' as never, ['c']));
  bad(() => net.partition(['c'], 'ab' as never));
  bad(() => net.partition(['a', ''], ['c']));
  bad(() => net.partition(['a', 7 as never], ['c']));
  bad(() => net.partitionOneWay('a', undefined as never));
  bad(() => net.isolate('' as never));
  bad(() => net.isolate(['a'] as never));
  t.a!.send([hb('a', 'c', 1)]);
  t.c!.send([hb('c', 'b', 1)]);
  clock.runAll();
  assert.equal(rec.c!.received.length, 1, 'a still reaches c');
  assert.equal(rec.b!.received.length, 1, 'c still reaches b');
});

test('one open transport per id; after close the id can be reused and in-flight messages reach the new transport', async () => {
  const { net, t, clock } = await makeNet(['a', 'b']);
  assert.throws(() => net.transport('b'), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_ARGUMENT));
  net.setDelay({ minMs: 5, maxMs: 5 });
  t.a!.send([hb('a', 'b', 1)]);
  await t.b!.close();
  const b2 = net.transport('b');
  b2.addPeer('a');
  const rec2 = new Recorder();
  await b2.start(rec2);
  clock.runAll();
  assert.equal(rec2.received.length, 1);
});

test('a transport never started does not hold its id: a new one of that id replaces it (closed), and messages reach the new one', async () => {
  const { net, t, clock } = await makeNet(['a']);
  const left = net.transport('b'); // given to an open that failed before starting it, say
  const b = net.transport('b');
  await assert.rejects(left.start(new Recorder()), (e: unknown) => isQuorumError(e, ErrorCode.TRANSPORT_CLOSED));
  b.addPeer('a');
  t.a!.addPeer('b');
  const rec = new Recorder();
  await b.start(rec);
  t.a!.send([hb('a', 'b', 1)]);
  clock.runAll();
  assert.equal(rec.received.length, 1);
  assert.throws(() => net.transport('b'), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_ARGUMENT), 'a started one still holds it');
});

test('send before start throws TRANSPORT_NOT_STARTED; a second start and a start after close reject', async () => {
  const net = new MemoryNetwork({ seed: 1, scheduler: new VirtualScheduler() });
  const a = net.transport('a');
  assert.throws(() => a.send([hb('a', 'b', 1)]), (e: unknown) => isQuorumError(e, ErrorCode.TRANSPORT_NOT_STARTED));
  await a.start(new Recorder());
  await assert.rejects(a.start(new Recorder()), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_ARGUMENT));
  await a.close();
  await assert.rejects(a.start(new Recorder()), (e: unknown) => isQuorumError(e, ErrorCode.TRANSPORT_CLOSED));
  assert.throws(() => a.addPeer(''), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_ARGUMENT));
});

test('a transport hears that a peer refuses it as removed, with nothing to send: when it starts or learns the peer, when the peer starts refusing it, and when a partition between them heals', async () => {
  const clock = new VirtualScheduler();
  const net = new MemoryNetwork({ seed: SEED, scheduler: clock });
  const a = net.transport('a');
  const c = net.transport('c');
  const recA = new Recorder();
  const recB = new Recorder();
  const recC = new Recorder();
  a.addPeer('c');
  await a.start(recA);
  await c.start(recC);
  a.refusePeer!('b');
  c.refusePeer!('b');
  net.isolate('c');
  // b restarts knowing a and c; it sends nothing
  const b = net.transport('b');
  b.addPeer('a');
  b.addPeer('c');
  await b.start(recB);
  await clock.runAll();
  assert.deepEqual([...new Set(recB.removed)], ['a'], 'a refused b (reports may repeat); c, cut off, could not say so');
  net.heal();
  await clock.runAll();
  assert.ok(recB.removed.includes('c'), 'once healed, c says so');
  // a peer that starts refusing b later (it applies b's removal) says so then
  const d = net.transport('d');
  const recD = new Recorder();
  d.addPeer('b');
  await d.start(recD);
  b.addPeer('d');
  await clock.runAll();
  assert.ok(!recB.removed.includes('d'), 'd does not refuse b yet');
  d.refusePeer!('b');
  await clock.runAll();
  assert.ok(recB.removed.includes('d'), 'd says so once it refuses b');
  assert.deepEqual([...recA.removed, ...recC.removed, ...recD.removed], [], 'no one else was refused');
  assert.equal(net.stats().sent, 0, 'no message travelled');
  await Promise.all([a.close(), b.close(), c.close(), d.close()]);
});

test('a sender that is not a peer and not refused is heard and can be answered (a remote); a refused one is neither', async () => {
  const clock = new VirtualScheduler();
  const net = new MemoryNetwork({ seed: SEED, scheduler: clock });
  const a = net.transport('a');
  const x = net.transport('x');
  const recA = new Recorder();
  const recX = new Recorder();
  x.addPeer('a'); // x knows a; a does not know x (it missed x's addition)
  await a.start(recA);
  await x.start(recX);
  a.send([hb('a', 'x', 1)]);
  clock.runAll();
  assert.deepEqual(recA.unreachable, ['x'], 'x has not reached a yet: a cannot send to it');
  assert.equal(recX.received.length, 0);
  x.send([hb('x', 'a', 2)]);
  clock.runAll();
  assert.deepEqual(recA.received.map((m) => [m.from, m.index]), [['x', 2]], 'a takes the message of x');
  a.send([hb('a', 'x', 3), message({ type: 'MsgSnap', from: 'a', to: 'x', term: 1, snapshot: { data: new Uint8Array([1]), metadata: { index: 5, term: 1, confState: { voters: ['a', 'x'], learners: [] } } } })]);
  clock.runAll();
  assert.deepEqual(recX.received.map((m) => [m.type, m.from]), [['MsgHeartbeat', 'a'], ['MsgSnap', 'a']], 'a answers x');
  assert.deepEqual(recA.snapshots, [{ peer: 'x', status: 'finish' }]);
  // a removePeer forgets the remote: a cannot send to it until it is heard again
  a.removePeer('x');
  a.send([hb('a', 'x', 4)]);
  clock.runAll();
  assert.equal(recX.received.length, 2);
  // refused: nothing is taken from x, nor sent to it, and x is told
  a.refusePeer!('x');
  x.send([hb('x', 'a', 5)]);
  clock.runAll();
  a.send([hb('a', 'x', 6)]);
  clock.runAll();
  assert.equal(recA.from('x').length, 1, 'nothing taken from x once refused');
  assert.equal(recX.received.length, 2, 'nothing sent to x once refused');
  assert.ok(recX.removed.includes('a'), 'x is told it was removed');
  await Promise.all([a.close(), x.close()]);
});

test('a transport keeps at most 64 remotes: the one heard from least recently is forgotten; addPeer makes a remote a peer', async () => {
  const clock = new VirtualScheduler();
  const net = new MemoryNetwork({ seed: SEED, scheduler: clock });
  const a = net.transport('a');
  const recA = new Recorder();
  await a.start(recA);
  const senders: Array<{ t: Transport; rec: Recorder }> = [];
  for (let i = 0; i <= 65; i++) {
    const t = net.transport(`s${i}`);
    const rec = new Recorder();
    t.addPeer('a');
    await t.start(rec);
    senders.push({ t, rec });
  }
  // s0 and s1 first, then s0 again (heard from more recently than s1), then 63 others: 65 in all
  senders[0]!.t.send([hb('s0', 'a', 1)]);
  clock.runAll();
  senders[1]!.t.send([hb('s1', 'a', 1)]);
  clock.runAll();
  senders[0]!.t.send([hb('s0', 'a', 2)]);
  clock.runAll();
  for (let i = 2; i <= 64; i++) {
    senders[i]!.t.send([hb(`s${i}`, 'a', 1)]);
    clock.runAll();
  }
  assert.equal(recA.received.length, 66, 'every message was taken');
  a.send(senders.map((_, i) => hb('a', `s${i}`, 9)));
  clock.runAll();
  const heard = senders.map((s) => s.rec.received.length);
  assert.equal(heard[1], 0, 's1, heard from least recently, was forgotten');
  assert.equal(heard[65], 0, 's65 never reached a');
  assert.deepEqual(heard.filter((n) => n === 1).length, 64, 'the 64 others are answered');
  assert.deepEqual([...new Set(recA.unreachable)].sort(), ['s1', 's65']);
  // addPeer turns a remote into a peer, which the bound does not count
  a.addPeer('s2');
  for (let i = 65; i >= 1; i--) {
    if (i === 2) continue;
    senders[i]!.t.send([hb(`s${i}`, 'a', 3)]);
    clock.runAll();
  }
  a.send([hb('a', 's2', 10)]);
  clock.runAll();
  assert.equal(senders[2]!.rec.received.length, 2, 's2, a peer now, is still reached');
  await Promise.all([a.close(), ...senders.map((s) => s.t.close())]);
});

test('a scheduler without schedule(), or an onEvent that is not a function, is refused with QUORUMKV_INVALID_ARGUMENT when the network is made', () => {
  // before: they were taken, and the first send threw a TypeError (a clock
  // given as the scheduler has setTimeout, not schedule), or every event
  // threw one as an uncaught exception
  const bad: [string, object][] = [
    ['a clock as scheduler', { scheduler: { setTimeout: () => undefined } }],
    ['a function as scheduler', { scheduler: () => undefined }],
    ['null scheduler', { scheduler: null }],
    ['onEvent a string', { onEvent: 'log' }],
    ['onEvent null', { onEvent: null }],
  ];
  for (const [name, o] of bad) {
    assert.throws(() => new MemoryNetwork({ seed: 1, ...o } as never), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_ARGUMENT), name);
  }
  assert.doesNotThrow(() => new MemoryNetwork({ seed: 1, scheduler: new VirtualScheduler(), onEvent: () => undefined }));
});
