// The conformance suite of the Transport interface: every implementation runs
// it in one line (`runTransportConformance(name, makeCluster)`), as
// abstract-level's suite does for its implementations.
//
// Message contents are random bytes from a seeded PRNG (pure-rand); the seed
// is printed when a test fails and can be replayed with
// QUORUMKV_TRANSPORT_SEED=<n>.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';
import { message, type Entry, type Message, type MessageType } from '../../src/raftpb/index.js';
import type { SnapshotStatus, Transport, TransportHandler } from '../../src/transport/index.js';

/** A cluster of started transports, each knowing every other one as a peer. */
export interface ConformanceCluster {
  transports: Record<string, Transport>;
  /**
   * Lets in-flight work settle before a test checks that something did NOT
   * happen (real-time transports wait a little; virtual ones run their queue).
   */
  settle(): Promise<void>;
  /** Closes everything still open (transports, networks, temp files). */
  close(): Promise<void>;
}

/**
 * Builds a cluster of `ids`: creates one transport per id, starts each with
 * `handlers[id]`, and adds every other id as a peer (with its address, for
 * transports that need one).
 */
export type MakeCluster = (ids: string[], handlers: Record<string, TransportHandler>) => Promise<ConformanceCluster>;

/** Every callback a transport made, with a way to wait for a condition on them. */
export class Recorder implements TransportHandler {
  readonly received: Message[] = [];
  readonly unreachable: string[] = [];
  readonly snapshots: Array<{ peer: string; status: SnapshotStatus }> = [];
  /** Peers that refused this node as removed from the cluster. */
  readonly removed: string[] = [];
  private waiters: Array<() => void> = [];

  receive(msg: Message): void {
    this.received.push(msg);
    this.wake();
  }
  reportUnreachable(peerId: string): void {
    this.unreachable.push(peerId);
    this.wake();
  }
  reportSnapshot(peerId: string, status: SnapshotStatus): void {
    this.snapshots.push({ peer: peerId, status });
    this.wake();
  }
  reportRemoved(peerId: string): void {
    this.removed.push(peerId);
    this.wake();
  }

  /** Messages received from `from`, in arrival order. */
  from(from: string): Message[] {
    return this.received.filter((m) => m.from === from);
  }

  /** Resolves once `cond()` holds; rejects after `timeoutMs` with `what`. */
  async until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    if (cond()) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${what} (received ${this.received.length}, unreachable [${this.unreachable.join(',')}], snapshots ${JSON.stringify(this.snapshots)})`,
          ),
        );
      }, timeoutMs);
      const check = (): void => {
        if (!cond()) return;
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
        resolve();
      };
      this.waiters.push(check);
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}

/** A JSON-comparable form of a message: bytes become hex strings, key presence is kept. */
export function normalize(m: Message): unknown {
  const hex = (u: Uint8Array): string => Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString('hex');
  const out: Record<string, unknown> = { ...m, entries: m.entries.map((e) => ({ ...e, data: hex(e.data) })) };
  if (m.snapshot !== undefined) {
    out.snapshot = { metadata: structuredClone(m.snapshot.metadata), data: hex(m.snapshot.data) };
  }
  if (m.context !== undefined) out.context = hex(m.context);
  return out;
}

function seedFromEnv(): number {
  const s = process.env.QUORUMKV_TRANSPORT_SEED;
  return s === undefined ? 20240601 : Number.parseInt(s, 10);
}

function randomBytes(rng: RandomGenerator, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 4) {
    const v = rng.next();
    out[i] = v & 0xff;
    if (i + 1 < n) out[i + 1] = (v >>> 8) & 0xff;
    if (i + 2 < n) out[i + 2] = (v >>> 16) & 0xff;
    if (i + 3 < n) out[i + 3] = (v >>> 24) & 0xff;
  }
  return out;
}

const TYPES: MessageType[] = ['MsgApp', 'MsgAppResp', 'MsgHeartbeat', 'MsgHeartbeatResp', 'MsgVote', 'MsgVoteResp', 'MsgPreVote', 'MsgReadIndex', 'MsgReadIndexResp', 'MsgTimeoutNow', 'MsgProp', 'MsgTransferLeader'];

/** A message of a random type with random fields; `seq` goes into `index` to check order. */
function randomMessage(rng: RandomGenerator, from: string, to: string, seq: number): Message {
  const type = TYPES[uniformInt(rng, 0, TYPES.length - 1)]!;
  const entries: Entry[] = [];
  const nEntries = type === 'MsgApp' || type === 'MsgProp' ? uniformInt(rng, 0, 4) : 0;
  for (let i = 0; i < nEntries; i++) {
    entries.push({ term: uniformInt(rng, 1, 9), index: seq * 10 + i, type: i === 3 ? 'ConfChange' : 'Normal', data: randomBytes(rng, uniformInt(rng, 0, 300)) });
  }
  const m = message({
    type,
    from,
    to,
    term: uniformInt(rng, 0, 1000),
    logTerm: uniformInt(rng, 0, 1000),
    index: seq,
    commit: uniformInt(rng, 0, 2 ** 40),
    reject: uniformInt(rng, 0, 1) === 1,
    rejectHint: uniformInt(rng, 0, 100),
    entries,
  });
  if (uniformInt(rng, 0, 2) === 0) m.context = randomBytes(rng, uniformInt(rng, 0, 40));
  return m;
}

function snapMessage(rng: RandomGenerator, from: string, to: string, bytes: number): Message {
  return message({
    type: 'MsgSnap',
    from,
    to,
    term: 7,
    snapshot: {
      data: randomBytes(rng, bytes),
      metadata: { index: 1234, term: 6, confState: { voters: ['a', 'b', 'c'], learners: ['d'] } },
    },
  });
}

async function withCluster(makeCluster: MakeCluster, ids: string[], body: (c: ConformanceCluster, r: Record<string, Recorder>, rng: RandomGenerator) => Promise<void>): Promise<void> {
  const seed = seedFromEnv();
  const rng = xoroshiro128plus(seed);
  const recorders: Record<string, Recorder> = {};
  for (const id of ids) recorders[id] = new Recorder();
  const cluster = await makeCluster(ids, recorders);
  try {
    await body(cluster, recorders, rng);
  } catch (err) {
    console.error(`transport conformance failed with QUORUMKV_TRANSPORT_SEED=${seed}`);
    throw err;
  } finally {
    await cluster.close();
  }
}

/**
 * Registers the Transport conformance tests (node:test) for one
 * implementation. `makeCluster` builds a fresh cluster for each test.
 */
export function runTransportConformance(name: string, makeCluster: MakeCluster): void {
  describe(`Transport conformance: ${name}`, () => {
    test('messages arrive in order per link, as deep copies with every field intact', async () => {
      await withCluster(makeCluster, ['a', 'b', 'c'], async (cluster, rec, rng) => {
        const { a, b, c } = cluster.transports as Record<'a' | 'b' | 'c', Transport>;
        const sent: Record<string, unknown[]> = { 'a->b': [], 'c->b': [], 'a->c': [] };
        let seq = 0;
        for (let round = 0; round < 8; round++) {
          const fromA: Message[] = [];
          const fromC: Message[] = [];
          for (let i = 0; i < 25; i++) {
            const mb = randomMessage(rng, 'a', 'b', ++seq);
            fromA.push(mb);
            sent['a->b']!.push(normalize(mb));
            const mc = randomMessage(rng, 'a', 'c', ++seq);
            fromA.push(mc);
            sent['a->c']!.push(normalize(mc));
            const cb = randomMessage(rng, 'c', 'b', ++seq);
            fromC.push(cb);
            sent['c->b']!.push(normalize(cb));
          }
          a.send(fromA);
          c.send(fromC);
          // The sender may reuse its buffers right away: nothing may be shared.
          for (const m of [...fromA, ...fromC]) {
            for (const e of m.entries) e.data.fill(0xee);
            m.context?.fill(0xee);
            m.term = -1;
          }
          if (round % 2 === 1) await new Promise((r) => setImmediate(r));
        }
        await rec.b!.until(() => rec.b!.received.length === 400, '400 messages at b');
        await rec.c!.until(() => rec.c!.received.length === 200, '200 messages at c');
        assert.deepEqual(rec.b!.from('a').map(normalize), sent['a->b']);
        assert.deepEqual(rec.b!.from('c').map(normalize), sent['c->b']);
        assert.deepEqual(rec.c!.from('a').map(normalize), sent['a->c']);
        await cluster.settle();
        assert.equal(rec.b!.received.length, 400, 'no duplicates');
        assert.deepEqual(rec.a!.unreachable, []);
        assert.deepEqual(rec.b!.unreachable, []);
      });
    });

    test('a MsgSnap arrives whole with its metadata, and the sender gets reportSnapshot finish', async () => {
      await withCluster(makeCluster, ['a', 'b'], async (cluster, rec, rng) => {
        const snap = snapMessage(rng, 'a', 'b', 1000);
        snap.context = Uint8Array.of(1, 2, 3);
        const want = normalize(snap);
        cluster.transports.a!.send([snap]);
        snap.snapshot!.data.fill(0);
        await rec.b!.until(() => rec.b!.received.length === 1, 'the snapshot at b');
        assert.deepEqual(normalize(rec.b!.received[0]!), want);
        await rec.a!.until(() => rec.a!.snapshots.length === 1, 'reportSnapshot at a');
        assert.deepEqual(rec.a!.snapshots, [{ peer: 'b', status: 'finish' }]);
      });
    });

    test('a large snapshot (several MiB, more than one frame) arrives whole and reports finish', async () => {
      await withCluster(makeCluster, ['a', 'b'], async (cluster, rec, rng) => {
        const size = 3 * 1024 * 1024 + 12_345;
        const snap = snapMessage(rng, 'a', 'b', size);
        const data = Buffer.from(snap.snapshot!.data); // a copy to compare with
        const metadata = structuredClone(snap.snapshot!.metadata);
        cluster.transports.a!.send([snap, randomMessage(rng, 'a', 'b', 1)]);
        await rec.b!.until(() => rec.b!.received.some((m) => m.type === 'MsgSnap'), 'the large snapshot at b', 30_000);
        const got = rec.b!.received.find((m) => m.type === 'MsgSnap')!;
        assert.equal(got.snapshot!.data.length, size);
        assert.ok(data.equals(got.snapshot!.data), 'snapshot bytes differ');
        assert.deepEqual(got.snapshot!.metadata, metadata);
        assert.equal(got.term, 7);
        await rec.a!.until(() => rec.a!.snapshots.length === 1, 'reportSnapshot at a', 30_000);
        assert.deepEqual(rec.a!.snapshots, [{ peer: 'b', status: 'finish' }]);
        await rec.b!.until(() => rec.b!.received.length === 2, 'the message sent with the snapshot');
      });
    });

    test('send to an unknown peer reports it unreachable (and a MsgSnap as failed) and does not throw', async () => {
      await withCluster(makeCluster, ['a', 'b'], async (cluster, rec, rng) => {
        const a = cluster.transports.a!;
        assert.doesNotThrow(() => a.send([randomMessage(rng, 'a', 'nobody', 1), snapMessage(rng, 'a', 'ghost', 10)]));
        assert.deepEqual(rec.a!.unreachable, [], 'reports are asynchronous');
        await rec.a!.until(() => rec.a!.unreachable.includes('nobody') && rec.a!.unreachable.includes('ghost'), 'unreachable reports');
        await rec.a!.until(() => rec.a!.snapshots.length === 1, 'snapshot failure');
        assert.deepEqual(rec.a!.snapshots, [{ peer: 'ghost', status: 'failure' }]);
        // The known peer still works.
        a.send([randomMessage(rng, 'a', 'b', 2)]);
        await rec.b!.until(() => rec.b!.received.length === 1, 'a message at b');
      });
    });

    test('after removePeer nothing is sent to the removed peer; what it sends later is taken as from a sender that is not a peer, which can be answered', async () => {
      await withCluster(makeCluster, ['a', 'b', 'c'], async (cluster, rec, rng) => {
        const { a, b, c } = cluster.transports as Record<'a' | 'b' | 'c', Transport>;
        // Warm up every link so connections exist before the removal.
        a.send([randomMessage(rng, 'a', 'b', 1), randomMessage(rng, 'a', 'c', 1)]);
        b.send([randomMessage(rng, 'b', 'a', 1)]);
        await rec.b!.until(() => rec.b!.received.length === 1, 'warm-up at b');
        await rec.a!.until(() => rec.a!.received.length === 1, 'warm-up at a');
        a.removePeer('b');
        a.send([randomMessage(rng, 'a', 'b', 2)]);
        await rec.a!.until(() => rec.a!.unreachable.includes('b'), 'a reports b unreachable');
        a.send([randomMessage(rng, 'a', 'c', 2)]);
        await rec.c!.until(() => rec.c!.received.length === 2, 'a still reaches c');
        await cluster.settle();
        assert.equal(rec.b!.from('a').length, 1, 'b got nothing from a after the removal');
        // b, no longer a's peer, is not refused: a takes what it sends (as
        // etcd's rafthttp takes messages from any member not removed) ...
        // b keeps sending, as Raft does (a stream a closed is redialed on the next send)
        b.send([randomMessage(rng, 'b', 'a', 2)]);
        const resend = setInterval(() => b.send([randomMessage(rng, 'b', 'a', 3)]), 20);
        try {
          await rec.a!.until(() => rec.a!.from('b').length >= 2, 'a takes a message from b, not its peer');
        } finally {
          clearInterval(resend);
        }
        // ... and can answer it, a snapshot included
        a.send([randomMessage(rng, 'a', 'b', 4), snapMessage(rng, 'a', 'b', 3000)]);
        await rec.b!.until(() => rec.b!.from('a').length === 3, 'b gets a message and a snapshot from a');
        await rec.a!.until(() => rec.a!.snapshots.length === 1, 'the snapshot to b is reported');
        assert.deepEqual(rec.a!.snapshots, [{ peer: 'b', status: 'finish' }]);
        assert.deepEqual(rec.b!.removed, [], 'b was not refused');
      });
    });

    test('after refusePeer nothing is accepted from the refused peer, which is told it was removed (reportRemoved)', async () => {
      await withCluster(makeCluster, ['a', 'b', 'c'], async (cluster, rec, rng) => {
        const { a, b, c } = cluster.transports as Record<'a' | 'b' | 'c', Transport>;
        assert.equal(typeof a.refusePeer, 'function', 'this transport implements refusePeer');
        a.send([randomMessage(rng, 'a', 'b', 1)]);
        b.send([randomMessage(rng, 'b', 'a', 1)]);
        await rec.b!.until(() => rec.b!.received.length === 1, 'warm-up at b');
        await rec.a!.until(() => rec.a!.received.length === 1, 'warm-up at a');
        a.refusePeer!('b');
        // b keeps sending, as Raft does (a stream a closed is redialed on the next send)
        b.send([randomMessage(rng, 'b', 'a', 2)]);
        const resend = setInterval(() => b.send([randomMessage(rng, 'b', 'a', 3)]), 20);
        try {
          await rec.b!.until(() => rec.b!.removed.includes('a'), 'b is told that a refuses it as removed');
        } finally {
          clearInterval(resend);
        }
        a.send([randomMessage(rng, 'a', 'b', 2)]);
        await rec.a!.until(() => rec.a!.unreachable.includes('b'), 'a reports b unreachable');
        // b's other links are untouched
        b.send([randomMessage(rng, 'b', 'c', 1)]);
        c.send([randomMessage(rng, 'c', 'b', 1)]);
        await rec.c!.until(() => rec.c!.from('b').length === 1, 'b still reaches c');
        await rec.b!.until(() => rec.b!.from('c').length === 1, 'c still reaches b');
        await cluster.settle();
        assert.equal(rec.a!.from('b').length, 1, 'a accepted nothing from b after refusing it');
        assert.equal(rec.b!.from('a').length, 1, 'b got nothing from a after the refusal');
        assert.deepEqual([...new Set(rec.b!.removed)], ['a'], 'only a refused b');
        assert.deepEqual(rec.a!.removed, [], 'a was refused by no one');
        assert.deepEqual(rec.c!.removed, [], 'c was refused by no one');
      });
    });

    test('after close nothing is delivered to the closed transport and senders see it unreachable', async () => {
      await withCluster(makeCluster, ['a', 'b', 'c'], async (cluster, rec, rng) => {
        const { a, b } = cluster.transports as Record<'a' | 'b', Transport>;
        a.send([randomMessage(rng, 'a', 'b', 1)]);
        await rec.b!.until(() => rec.b!.received.length === 1, 'warm-up at b');
        await b.close();
        await b.close(); // idempotent
        assert.doesNotThrow(() => b.send([randomMessage(rng, 'b', 'a', 1)]), 'send after close is ignored');
        a.send([randomMessage(rng, 'a', 'b', 2), snapMessage(rng, 'a', 'b', 100)]);
        await rec.a!.until(() => rec.a!.unreachable.includes('b'), 'a reports b unreachable');
        await rec.a!.until(() => rec.a!.snapshots.length === 1, 'the snapshot to b fails');
        assert.deepEqual(rec.a!.snapshots, [{ peer: 'b', status: 'failure' }]);
        await cluster.settle();
        assert.equal(rec.b!.received.length, 1, 'nothing delivered after close');
        assert.equal(rec.a!.from('b').length, 0, 'nothing sent by a closed transport');
      });
    });

    test('local message types and messages with a foreign from are not sent', async () => {
      await withCluster(makeCluster, ['a', 'b'], async (cluster, rec, rng) => {
        const a = cluster.transports.a!;
        a.send([
          message({ type: 'MsgHup', from: 'a', to: 'b' }),
          message({ type: 'MsgBeat', from: 'a', to: 'b' }),
          message({ type: 'MsgHeartbeat', from: 'c', to: 'b' }),
          randomMessage(rng, 'a', 'b', 42),
        ]);
        await rec.b!.until(() => rec.b!.received.length === 1, 'the one valid message');
        await cluster.settle();
        assert.equal(rec.b!.received.length, 1);
        assert.equal(rec.b!.received[0]!.index, 42);
      });
    });
  });
}
