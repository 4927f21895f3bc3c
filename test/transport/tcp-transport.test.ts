// TcpTransport behaviour beyond the conformance suite: option checks,
// listen failures, reconnection with backoff (and when it starts over), the
// bounded send queue, one write per tick, oversized messages and snapshots,
// snapshot timeouts, and nothing left behind by close().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net, { type Server, type Socket } from 'node:net';
import { format } from 'node:util';
import createDebug from 'debug';
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import { decodeMessage, pack } from '../../src/codec/index.js';
import { message, type Message } from '../../src/raftpb/index.js';
import { FrameDecoder, FrameKind, MemoryNetwork, TcpTransport, encodeFrame, formatAddress, parseAddress, type TcpTransportOptions } from '../../src/transport/index.js';
import { decodeHello, decodeRefusal, helloFrame, PROTOCOL_VERSION, StreamKind } from '../../src/transport/frame-bodies.js';
import { Recorder } from './conformance.js';
import { sleep, tcpOptions, tlsFor } from './clusters.js';
import { RawPeer } from './raw-peer.js';

function hb(from: string, to: string, index: number): Message {
  return message({ type: 'MsgHeartbeat', from, to, term: 1, index });
}

function addr(t: TcpTransport): string {
  return formatAddress(t.address().host, t.address().port);
}

/**
 * A hand-written peer server: answers handshakes (after `replyDelayMs`) as
 * `id`, or, when `id` is undefined, as the node each handshake was meant for
 * (a stand-in for the nodes that dial in), and records the messages and
 * snapshot chunks it gets, without acknowledging.
 */
async function rawServer(id: string | undefined, replyDelayMs = 0): Promise<{ server: Server; port: number; messages: Message[]; chunks: number; sockets: Set<Socket>; close(): Promise<void> }> {
  const state = { messages: [] as Message[], chunks: 0, sockets: new Set<Socket>() };
  const server = net.createServer((socket) => {
    state.sockets.add(socket);
    socket.on('error', () => {});
    const decoder = new FrameDecoder(64 * 1024 * 1024);
    socket.on('data', (chunk) => {
      decoder.push(chunk, (kind, body) => {
        if (kind === FrameKind.Hello) {
          const h = decodeHello(body);
          setTimeout(() => socket.write(helloFrame({ version: PROTOCOL_VERSION, clusterId: h.clusterId, from: id ?? h.to, to: h.from, stream: h.stream })), replyDelayMs);
        } else if (kind === FrameKind.Message) {
          state.messages.push(decodeMessage(body));
        } else if (kind === FrameKind.SnapshotChunk) {
          state.chunks++;
        }
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    server,
    port,
    get messages() {
      return state.messages;
    },
    get chunks() {
      return state.chunks;
    },
    sockets: state.sockets,
    close: async () => {
      for (const s of state.sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

test('invalid options throw UsageError INVALID_CONFIG', () => {
  const base = tcpOptions('a');
  const bad: Array<[string, Partial<TcpTransportOptions>]> = [
    ['empty id', { id: '' }],
    ['empty cluster id', { clusterId: '' }],
    // both travel in every handshake: an acceptor refused one over 16 KiB, and a lone surrogate arrives as U+FFFD
    ['a cluster id of 20,000 bytes', { clusterId: 'c'.repeat(20_000) }],
    ['a cluster id with a lone surrogate', { clusterId: 'c\uD800' }],
    ['a cluster id beginning with U+FEFF (a decoder may drop it)', { clusterId: '\uFEFF' + 'c'.repeat(70) }],
    ['an id over 255 bytes', { id: 'a'.repeat(256) }],
    ['negative port', { listen: { host: '127.0.0.1', port: -1 } }],
    ['malformed peer address', { peers: { b: 'no-port' } }],
    ['port out of range', { peers: { b: '127.0.0.1:70000' } }],
    ['unbracketed ipv6', { peers: { b: '::1:2380' } }],
    // an array of addresses was taken for peers '0', '1', ...; a number or null for no peer
    ['peers as an array of addresses', { peers: ['127.0.0.1:2380', '127.0.0.1:2381'] as never }],
    ['peers as a number', { peers: 5 as never }],
    ['peers null', { peers: null as never }],
    // a Map's entries are no own keys: it was taken for no peer
    ['peers as a Map', { peers: new Map([['b', '127.0.0.1:2380']]) as never }],
    ['tiny maxFrameBytes', { maxFrameBytes: 100 }],
    ['chunk above the frame limit', { maxFrameBytes: 4096, snapshotChunkBytes: 4096 }],
    ['backoff max below initial', { backoff: { initialMs: 100, maxMs: 10 } }],
    ['zero dial timeout', { dialTimeoutMs: 0 }],
    ['read timeout under 3 heartbeats', { heartbeatMs: 100, readTimeoutMs: 299 }],
    ['zero heartbeat', { heartbeatMs: 0 }],
    ['incomplete tls', { tls: { key: 'k', cert: 'c' } as never }],
    // timers above 2^31 - 1 ms fire after 1 ms in Node.js: every dial timed out at once
    ['a dial timeout over 2^31 - 1 ms', { dialTimeoutMs: 2 ** 31 }],
    ['a heartbeat over 2^31 - 1 ms', { heartbeatMs: 2 ** 31, readTimeoutMs: 2 ** 33 }],
    ['a snapshot idle timeout over 2^31 - 1 ms', { snapshotIdleTimeoutMs: 30 * 24 * 3600 * 1000 }],
    ['a backoff over 2^31 - 1 ms', { backoff: { initialMs: 100, maxMs: 2 ** 31 } }],
  ];
  for (const [name, o] of bad) {
    assert.throws(() => new TcpTransport({ ...base, ...o }), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_CONFIG), name);
  }
  assert.doesNotThrow(() => new TcpTransport({ ...base, peers: { b: '[::1]:2380', c: 'node-c.example:2380', a: 'ignored:1' } }));
  // a heartbeat raised alone raises the default read timeout with it
  assert.doesNotThrow(() => new TcpTransport({ ...base, heartbeatMs: 2_000 }), 'heartbeatMs 2000 with the default read timeout');
  assert.doesNotThrow(() => new TcpTransport({ ...base, dialTimeoutMs: 2 ** 31 - 1 }), 'the longest timer');
});

test('using a transport before start, twice, or after close fails with a typed error', async () => {
  const t = new TcpTransport(tcpOptions('a'));
  assert.throws(() => t.address(), (e: unknown) => isQuorumError(e, ErrorCode.TRANSPORT_NOT_STARTED));
  assert.throws(() => t.send([hb('a', 'b', 1)]), (e: unknown) => isQuorumError(e, ErrorCode.TRANSPORT_NOT_STARTED));
  assert.throws(() => t.addPeer('b', 'nonsense'), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_ARGUMENT));
  await t.start(new Recorder());
  assert.ok(t.address().port > 0, 'port 0 resolves to the bound port');
  await assert.rejects(t.start(new Recorder()), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_ARGUMENT));
  await t.close();
  await assert.rejects(t.start(new Recorder()), (e: unknown) => isQuorumError(e, ErrorCode.TRANSPORT_CLOSED));
});

test('listening on a port in use rejects with LISTEN_FAILED', async () => {
  const first = new TcpTransport(tcpOptions('a'));
  await first.start(new Recorder());
  const second = new TcpTransport(tcpOptions('b', { listen: { host: '127.0.0.1', port: first.address().port } }));
  try {
    await assert.rejects(second.start(new Recorder()), (e: unknown) => isQuorumError(e, ErrorCode.LISTEN_FAILED) && e.name === 'FaultError');
  } finally {
    await Promise.all([first.close(), second.close()]);
  }
});

test('a transport closed while its start fails stays closed', async () => {
  // before: the failed start reset it to new, so it could start again after close()
  const first = new TcpTransport(tcpOptions('a'));
  await first.start(new Recorder());
  const second = new TcpTransport(tcpOptions('b', { listen: { host: '127.0.0.1', port: first.address().port } }));
  try {
    const starting = second.start(new Recorder());
    await second.close();
    await assert.rejects(starting, (e: unknown) => isQuorumError(e));
    await assert.rejects(second.start(new Recorder()), (e: unknown) => isQuorumError(e, ErrorCode.TRANSPORT_CLOSED));
  } finally {
    await Promise.all([first.close(), second.close()]);
  }
});

/**
 * `a` and `b` connected (a first message from a to b delivered), then `b`
 * stopped: `restartB()` starts a new `b` on the same port, a peer of `a`.
 */
async function pairWithStoppedB(aOptions: Partial<TcpTransportOptions> = {}): Promise<{
  a: TcpTransport;
  recA: Recorder;
  b: () => TcpTransport;
  restartB(): Promise<Recorder>;
  close(): Promise<void>;
}> {
  const recA = new Recorder();
  const a = new TcpTransport(tcpOptions('a', aOptions));
  await a.start(recA);
  const recB = new Recorder();
  let b = new TcpTransport(tcpOptions('b'));
  await b.start(recB);
  const port = b.address().port;
  const close = () => Promise.all([a.close(), b.close()]).then(() => undefined);
  try {
    b.addPeer('a', addr(a));
    a.addPeer('b', formatAddress('127.0.0.1', port));
    a.send([hb('a', 'b', 1)]);
    await recB.until(() => recB.received.length === 1, 'first message');
    await b.close();
    await recA.until(() => recA.unreachable.includes('b'), 'b reported unreachable once its connection dropped');
  } catch (err) {
    await close();
    throw err;
  }
  return {
    a,
    recA,
    b: () => b,
    async restartB() {
      const rec = new Recorder();
      b = new TcpTransport(tcpOptions('b', { listen: { host: '127.0.0.1', port } }));
      await b.start(rec);
      b.addPeer('a', addr(a));
      return rec;
    },
    close,
  };
}

test('peers reach each other at an IPv6 address in brackets and at a host name, over TLS too (the certificate names both)', async (t) => {
  const probe = net.createServer();
  const ipv6 = await new Promise<boolean>((resolve) => {
    probe.once('error', () => resolve(false));
    probe.listen(0, '::1', () => probe.close(() => resolve(true)));
  });
  const cases: [string, string][] = [['127.0.0.1', 'localhost']];
  if (ipv6) cases.push(['::1', '::1']);
  else t.diagnostic('no IPv6 loopback on this machine: only the host name is dialed');
  for (const useTls of [false, true]) {
    for (const [listenHost, dialHost] of cases) {
      const recA = new Recorder();
      const recB = new Recorder();
      const make = (id: string): TcpTransport =>
        new TcpTransport(tcpOptions(id, { listen: { host: listenHost, port: 0 }, ...(useTls ? { tls: tlsFor(id) } : {}) }));
      const a = make('a');
      const b = make('b');
      try {
        await a.start(recA);
        await b.start(recB);
        a.addPeer('b', formatAddress(dialHost, b.address().port));
        b.addPeer('a', formatAddress(dialHost, a.address().port));
        a.send([hb('a', 'b', 1)]);
        b.send([hb('b', 'a', 2)]);
        const what = `${useTls ? 'TLS' : 'plain'}, dialing ${formatAddress(dialHost, 1)}`;
        await recB.until(() => recB.received.length === 1, `a's message at b (${what})`);
        await recA.until(() => recA.received.length === 1, `b's message at a (${what})`);
        assert.deepEqual([recA.unreachable, recB.unreachable], [[], []], what);
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    }
  }
});

test('a restarted peer is reached again after backoff; while it is down the sender reports it unreachable', async () => {
  const p = await pairWithStoppedB();
  const { a, recA } = p;
  try {
    recA.unreachable.length = 0;
    a.send([hb('a', 'b', 2)]);
    await recA.until(() => recA.unreachable.includes('b'), 'sending to a down peer reports it unreachable');
    const recB = await p.restartB();
    let i = 3;
    const timer = setInterval(() => a.send([hb('a', 'b', i++)]), 20);
    try {
      await recB.until(() => recB.received.length > 0, 'a message at the restarted b');
    } finally {
      clearInterval(timer);
    }
    const idx = recB.received.map((m) => m.index);
    assert.deepEqual(idx, [...idx].sort((x, y) => x - y), 'still in order after the reconnection');
  } finally {
    await p.close();
  }
});

test('a restarted peer that dials in is dialed back at once, not after the backoff', async () => {
  // a backoff far longer than the test waits: only the peer's own dial can bring the link back in time
  const p = await pairWithStoppedB({ backoff: { initialMs: 20_000, maxMs: 20_000 } });
  const { a, recA } = p;
  try {
    const recB = await p.restartB();
    p.b().send([hb('b', 'a', 1)]); // b dials a
    await recA.until(() => recA.received.some((m) => m.from === 'b'), "b's message at a");
    a.send([hb('a', 'b', 2)]);
    // well within a's 20 s backoff
    await recB.until(() => recB.received.length > 0, 'a message at the restarted b', 5_000);
  } finally {
    await p.close();
  }
});

test('a stream the peer closes right after each handshake is redialed ever more slowly; one that stayed open for backoff.maxMs starts the backoff over', async () => {
  // The peer answers every handshake and closes at once, except the connection
  // accepted while `hold` is set, which it keeps open for 1,100 ms (> maxMs).
  const accepts: number[] = [];
  let hold = false;
  let heldClosedAt: number | undefined;
  const sockets = new Set<Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    accepts.push(performance.now());
    socket.on('error', () => {});
    const held = hold;
    hold = false;
    const decoder = new FrameDecoder(64 * 1024 * 1024);
    socket.on('data', (chunk) => {
      decoder.push(chunk, (kind, body) => {
        if (kind !== FrameKind.Hello) return;
        const h = decodeHello(body);
        const reply = helloFrame({ version: PROTOCOL_VERSION, clusterId: h.clusterId, from: 'b', to: h.from, stream: h.stream });
        if (!held) {
          socket.end(reply);
          return;
        }
        socket.write(reply);
        setTimeout(() => {
          heldClosedAt = performance.now();
          socket.destroy();
        }, 1100);
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const a = new TcpTransport(tcpOptions('a', { backoff: { initialMs: 10, maxMs: 1000 } }));
  let i = 1;
  // something is always queued, so each backoff timer redials as soon as it fires
  const timer = setInterval(() => a.send([hb('a', 'b', i++)]), 5);
  const gaps = (): number[] => accepts.slice(1).map((t, k) => Math.round(t - accepts[k]!));
  try {
    await a.start(new Recorder());
    a.addPeer('b', formatAddress('127.0.0.1', port));
    a.send([hb('a', 'b', 0)]);
    await sleep(1000);
    // growing backoff (10, 20, 40, ... ms, jittered): about 8 dials in 1 s;
    // starting over at each handshake (10 ms): dozens
    const quick = accepts.length;
    assert.ok(quick >= 3, `redialed (${quick} connections)`);
    assert.ok(quick <= 20, `${quick} connections in 1 s, gaps ${JSON.stringify(gaps())} ms: the backoff did not grow`);

    hold = true;
    const deadline = performance.now() + 5000;
    while (heldClosedAt === undefined && performance.now() < deadline) await sleep(5);
    assert.ok(heldClosedAt !== undefined, 'the held stream was opened and closed');
    const n = accepts.length;
    while (accepts.length === n && performance.now() < deadline) await sleep(5);
    assert.ok(accepts.length > n, 'redialed after the held stream closed');
    const gap = accepts[n]! - heldClosedAt;
    // started over: the first delay (5-10 ms); not started over: 500-1,000 ms
    assert.ok(gap < 250, `redialed ${Math.round(gap)} ms after a stream that stayed open 1,100 ms: the backoff did not start over`);
  } finally {
    clearInterval(timer);
    await a.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('when the send queue overflows, the oldest messages are dropped and the peer is reported unreachable', async () => {
  const peer = await rawServer('b', 150);
  const recA = new Recorder();
  const a = new TcpTransport(tcpOptions('a', { maxQueuedMessages: 10 }));
  try {
    await a.start(recA);
    a.addPeer('b', formatAddress('127.0.0.1', peer.port));
    a.send(Array.from({ length: 100 }, (_, i) => hb('a', 'b', i + 1)));
    await recA.until(() => recA.unreachable.includes('b'), 'overflow reported');
    const deadline = Date.now() + 5000;
    while (peer.messages.length < 10 && Date.now() < deadline) await sleep(10);
    await sleep(50);
    assert.deepEqual(
      peer.messages.map((m) => m.index),
      Array.from({ length: 10 }, (_, i) => 91 + i),
    );
  } finally {
    await a.close();
    await peer.close();
  }
});

test('the messages of one tick to one peer go out in a single socket write', async () => {
  const peer = await rawServer('b');
  const a = new TcpTransport(tcpOptions('a'));
  const proto = net.Socket.prototype as unknown as { write: (...args: unknown[]) => boolean };
  const original = proto.write;
  let writes = 0;
  try {
    await a.start(new Recorder());
    a.addPeer('b', formatAddress('127.0.0.1', peer.port));
    a.send([hb('a', 'b', 0)]);
    while (peer.messages.length < 1) await sleep(5);
    proto.write = function (this: Socket, ...args: unknown[]) {
      if (this.remotePort === peer.port) writes++;
      return original.apply(this, args);
    };
    a.send(Array.from({ length: 1000 }, (_, i) => hb('a', 'b', i + 1)));
    while (peer.messages.length < 1001) await sleep(5);
    assert.equal(writes, 1);
  } finally {
    proto.write = original;
    await a.close();
    await peer.close();
  }
});

test('a message larger than maxFrameBytes is dropped at the sender and reported; later messages still flow', async () => {
  const recA = new Recorder();
  const recB = new Recorder();
  const a = new TcpTransport(tcpOptions('a', { maxFrameBytes: 4096 }));
  const b = new TcpTransport(tcpOptions('b'));
  try {
    await a.start(recA);
    await b.start(recB);
    a.addPeer('b', addr(b));
    b.addPeer('a', addr(a));
    const big = message({ type: 'MsgApp', from: 'a', to: 'b', index: 1, entries: [{ term: 1, index: 2, type: 'Normal', data: new Uint8Array(5000) }] });
    a.send([big, hb('a', 'b', 2)]);
    await recA.until(() => recA.unreachable.includes('b'), 'oversized message reported');
    await recB.until(() => recB.received.length === 1, 'the next message');
    assert.equal(recB.received[0]!.index, 2);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('a member whose maxFrameBytes is smaller than a peer\'s closes the stream that brings a larger frame, and logs that maxFrameBytes must match', async () => {
  // maxFrameBytes (KvNode: raised with maxRequestBytes) must be the same on
  // every member: the receiver cannot take the frame, and Raft resends it
  const lines: string[] = [];
  const saved = { log: createDebug.log, enabled: createDebug.disable() };
  createDebug.log = (...args: unknown[]) => lines.push(format(...args));
  createDebug.enable('quorumkv:transport');
  const recA = new Recorder();
  const recB = new Recorder();
  const a = new TcpTransport(tcpOptions('a', { maxFrameBytes: 64 * 1024 }));
  const b = new TcpTransport(tcpOptions('b', { maxFrameBytes: 8 * 1024 }));
  try {
    await a.start(recA);
    await b.start(recB);
    a.addPeer('b', addr(b));
    b.addPeer('a', addr(a));
    a.send([hb('a', 'b', 1)]);
    await recB.until(() => recB.received.length === 1, 'a small message');
    recA.unreachable.length = 0;
    const big = message({ type: 'MsgApp', from: 'a', to: 'b', index: 1, entries: [{ term: 1, index: 2, type: 'Normal', data: new Uint8Array(20_000) }] });
    a.send([big]);
    await recA.until(() => recA.unreachable.includes('b'), 'the stream closed by b, reported at a');
    const line = lines.find((l) => /b: inbound connection from a closed: frame of \d+ bytes exceeds the limit of 8192 bytes/.test(l));
    assert.ok(line !== undefined, `b logs the refused frame (${lines.filter((l) => /exceeds/.test(l)).join(' | ')})`);
    assert.match(line, /maxFrameBytes/, 'the log names the option to set the same on every member');
    assert.equal(recB.received.length, 1, 'the large message is not delivered');
  } finally {
    createDebug.log = saved.log;
    createDebug.enable(saved.enabled);
    await Promise.all([a.close(), b.close()]);
  }
});

test('maxFrameBytes must leave room for a snapshot chunk: below 2048 it is refused, and at 2048 a snapshot arrives in 1 KiB chunks', async () => {
  // before: 1024 was accepted and left snapshotChunkBytes at 0; every
  // snapshot was written as empty chunks, which the receiver refuses
  for (const maxFrameBytes of [1024, 1500, 2047]) {
    assert.throws(() => new TcpTransport(tcpOptions('a', { maxFrameBytes })), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_CONFIG), `maxFrameBytes ${maxFrameBytes}`);
  }
  const recA = new Recorder();
  const recB = new Recorder();
  const a = new TcpTransport(tcpOptions('a', { maxFrameBytes: 2048 }));
  const b = new TcpTransport(tcpOptions('b', { maxFrameBytes: 2048 }));
  try {
    await a.start(recA);
    await b.start(recB);
    a.addPeer('b', addr(b));
    b.addPeer('a', addr(a));
    const data = new Uint8Array(10_000).map((_, i) => i % 251);
    a.send([message({ type: 'MsgSnap', from: 'a', to: 'b', term: 1, snapshot: { data, metadata: { index: 1, term: 1, confState: { voters: ['a', 'b'], learners: [] } } } })]);
    await recA.until(() => recA.snapshots.length === 1, 'the snapshot reported');
    assert.deepEqual(recA.snapshots, [{ peer: 'b', status: 'finish' }]);
    assert.deepEqual(Buffer.from(recB.received[0]!.snapshot!.data), Buffer.from(data));
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('a snapshot above the receiver maxSnapshotBytes fails, and one the receiver never acknowledges times out', async () => {
  const snap = (to: string, bytes: number): Message =>
    message({ type: 'MsgSnap', from: 'a', to, term: 1, snapshot: { data: new Uint8Array(bytes), metadata: { index: 9, term: 1, confState: { voters: ['a', to], learners: [] } } } });
  const recA = new Recorder();
  const recB = new Recorder();
  const a = new TcpTransport(tcpOptions('a', { snapshotIdleTimeoutMs: 300 }));
  const b = new TcpTransport(tcpOptions('b', { maxSnapshotBytes: 100_000 }));
  const silent = await rawServer('c');
  try {
    await a.start(recA);
    await b.start(recB);
    a.addPeer('b', addr(b));
    b.addPeer('a', addr(a));
    a.addPeer('c', formatAddress('127.0.0.1', silent.port));
    a.send([snap('b', 200_000)]);
    await recA.until(() => recA.snapshots.length === 1, 'snapshot outcome for b');
    assert.deepEqual(recA.snapshots, [{ peer: 'b', status: 'failure' }]);
    assert.equal(recB.received.length, 0);
    const t0 = Date.now();
    a.send([snap('c', 1000)]);
    await recA.until(() => recA.snapshots.length === 2, 'snapshot outcome for c');
    assert.deepEqual(recA.snapshots[1], { peer: 'c', status: 'failure' });
    assert.ok(silent.chunks >= 1, 'the chunks were sent');
    assert.ok(Date.now() - t0 >= 250, 'failed by the idle timeout');
  } finally {
    await Promise.all([a.close(), b.close(), silent.close()]);
  }
});

test('addPeer with a new address redirects later sends, without one keeps the known address; removePeer then addPeer restores a peer', async () => {
  const recA = new Recorder();
  const recB = new Recorder();
  const a = new TcpTransport(tcpOptions('a'));
  const b = new TcpTransport(tcpOptions('b'));
  try {
    await a.start(recA);
    await b.start(recB);
    b.addPeer('a', addr(a));
    a.addPeer('b', '127.0.0.1:1'); // nothing listens there
    a.send([hb('a', 'b', 1)]);
    await recA.until(() => recA.unreachable.includes('b'), 'wrong address is unreachable');
    await sleep(20);
    const reports = recA.unreachable.length;
    a.addPeer('b', addr(b)); // drops the message still queued for the old address: reported
    await sleep(0);
    assert.equal(recA.unreachable.length, reports + 1, 'the dropped message is reported');
    a.addPeer('b'); // no address: the known one stays
    a.send([hb('a', 'b', 2)]);
    await recB.until(() => recB.received.some((m) => m.index === 2), 'delivered at the new address');
    b.removePeer('a');
    b.addPeer('a', addr(a));
    a.send([hb('a', 'b', 3)]);
    const timer = setInterval(() => a.send([hb('a', 'b', 4)]), 20);
    try {
      await recB.until(() => recB.received.some((m) => m.index === 4), 'accepted again after re-adding');
    } finally {
      clearInterval(timer);
    }
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('close leaves no sockets, servers or timers behind', async () => {
  await sleep(50); // let the previous tests' sockets finish closing
  const before = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap');
  const recA = new Recorder();
  const recB = new Recorder();
  // A long backoff, so the link to the down peer still has its timer when close() runs.
  const a = new TcpTransport(tcpOptions('a', { backoff: { initialMs: 10_000, maxMs: 10_000 } }));
  const b = new TcpTransport(tcpOptions('b'));
  await a.start(recA);
  await b.start(recB);
  a.addPeer('b', addr(b));
  b.addPeer('a', addr(a));
  a.addPeer('down', '127.0.0.1:1'); // a link in backoff, with its timer
  a.send([hb('a', 'b', 1), hb('a', 'down', 1), message({ type: 'MsgSnap', from: 'a', to: 'b', snapshot: { data: new Uint8Array(10), metadata: { index: 1, term: 1, confState: { voters: ['a'], learners: [] } } } })]);
  b.send([hb('b', 'a', 1)]);
  await recB.until(() => recB.received.length === 2, 'traffic at b');
  await recA.until(() => recA.unreachable.includes('down'), 'the down peer in backoff');
  await Promise.all([a.close(), b.close()]);
  await sleep(20);
  const after = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap');
  assert.deepEqual(after.sort(), before.sort());
});

test('a refused dialer gets a Refused frame naming it, and its connection is closed even when it keeps its side open', async () => {
  const a = new TcpTransport(tcpOptions('a', { dialTimeoutMs: 200 }));
  const sockets: Socket[] = [];
  try {
    await a.start(new Recorder());
    a.refusePeer('x');
    const { port } = a.address();
    const n = 100;
    const refusals: string[] = [];
    let closed = 0;
    for (let i = 0; i < n; i++) {
      const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
      sockets.push(s);
      s.on('error', () => {});
      s.on('close', () => closed++);
      const decoder = new FrameDecoder(64 * 1024);
      s.on('data', (chunk) =>
        decoder.push(chunk, (kind, body) => {
          if (kind === FrameKind.Refused) {
            const r = decodeRefusal(body);
            refusals.push(`${r.from}->${r.to}:${r.reason}`);
          }
        }),
      );
      await new Promise((r) => s.once('connect', r));
      // the handshake of a removed member; it then keeps its side open
      s.write(helloFrame({ version: PROTOCOL_VERSION, clusterId: 'conformance', from: 'x', to: 'a', stream: StreamKind.Messages }));
    }
    let deadline = performance.now() + 5_000;
    while (refusals.length < n && performance.now() < deadline) await sleep(10);
    assert.equal(refusals.length, n, 'every dialer was told it was removed');
    assert.deepEqual([...new Set(refusals)], ['a->x:removed']);
    // a has closed its side for good (not only half-closed): what a dialer
    // writes now is answered with a reset, and its socket closes
    await sleep(400);
    for (const s of sockets) s.write(Buffer.from([0]));
    await sleep(50);
    for (const s of sockets) if (!s.destroyed) s.write(Buffer.from([0]));
    deadline = performance.now() + 5_000;
    while (closed < n && performance.now() < deadline) await sleep(10);
    assert.equal(closed, n, 'a closed every refused connection, though the dialers kept their side open');
  } finally {
    for (const s of sockets) s.destroy();
    await a.close();
  }
});

test('a snapshot sent to a peer that refuses the sender as removed fails, and the sender is told it was removed', async () => {
  const recA = new Recorder();
  const recB = new Recorder();
  const a = new TcpTransport(tcpOptions('a'));
  const b = new TcpTransport(tcpOptions('b'));
  try {
    await a.start(recA);
    await b.start(recB);
    a.addPeer('b', addr(b));
    b.addPeer('a', addr(a));
    b.refusePeer('a');
    a.send([message({ type: 'MsgSnap', from: 'a', to: 'b', term: 1, snapshot: { data: new Uint8Array(1000), metadata: { index: 9, term: 1, confState: { voters: ['a', 'b'], learners: [] } } } })]);
    await recA.until(() => recA.snapshots.length === 1 && recA.removed.includes('b'), 'the snapshot outcome and the refusal');
    assert.deepEqual(recA.snapshots, [{ peer: 'b', status: 'failure' }]);
    assert.equal(recB.received.length, 0);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('a transport dials its peers when it starts, with nothing to send: a peer that refuses it as removed says so', async () => {
  const recA = new Recorder();
  const recB = new Recorder();
  const a = new TcpTransport(tcpOptions('a'));
  let b: TcpTransport | undefined;
  try {
    await a.start(recA);
    a.refusePeer('b');
    // b (re)starts knowing a's address, and has nothing to send
    b = new TcpTransport(tcpOptions('b', { peers: { a: addr(a) } }));
    await b.start(recB);
    await recB.until(() => recB.removed.includes('a'), 'b is told that a refuses it as removed');
    assert.equal(recA.received.length, 0);
  } finally {
    await Promise.all([a.close(), b?.close()]);
  }
});

test('a transport keeps a stream to each peer with nothing to send, as rafthttp does: it hears of a refusal from a peer that starts after it, or that accepted it and refuses it later', async () => {
  // a free port for a, which starts after b
  const freePort = async (): Promise<number> => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    return port;
  };
  let port = await freePort();
  const recA = new Recorder();
  const recB = new Recorder();
  const recC = new Recorder();
  const b = new TcpTransport(tcpOptions('b', { peers: { a: formatAddress('127.0.0.1', port) } }));
  let a = new TcpTransport(tcpOptions('a', { listen: { host: '127.0.0.1', port } }));
  const c = new TcpTransport(tcpOptions('c'));
  try {
    await b.start(recB);
    await recB.until(() => recB.unreachable.includes('a'), "b's first dial to a fails");
    // the port may have been taken meanwhile (tests run two files at once): then a starts on another, which b learns
    for (let attempt = 0; ; attempt++) {
      const started = await a.start(recA).then(
        () => true,
        (err: unknown) => {
          if (attempt >= 3 || !isQuorumError(err, ErrorCode.LISTEN_FAILED)) throw err;
          return false;
        },
      );
      if (started) break;
      port = await freePort();
      a = new TcpTransport(tcpOptions('a', { listen: { host: '127.0.0.1', port } }));
      b.addPeer('a', formatAddress('127.0.0.1', port));
    }
    a.refusePeer('b');
    await recB.until(() => recB.removed.includes('a'), 'b hears that a, started later, refuses it');

    // c accepts b's stream, then refuses b: b redials and hears so
    await c.start(recC);
    c.addPeer('b');
    b.addPeer('c', addr(c));
    b.send([hb('b', 'c', 1)]);
    await recC.until(() => recC.received.length === 1, "b's stream to c is up");
    assert.ok(!recB.removed.includes('c'));
    c.refusePeer('b');
    await recB.until(() => recB.removed.includes('c'), 'b hears that c now refuses it');
    assert.equal(recA.received.length, 0, 'nothing reached a');
    assert.equal(recC.received.length, 1, 'nothing more reached c');
  } finally {
    await Promise.all([a.close(), b.close(), c.close()]);
  }
});

/**
 * A TCP proxy to `target` whose `cut()` makes every connection it carries
 * go silent, as a silent partition does (a dropped route, lost NAT or
 * firewall state: no FIN, no RST): bytes are read and dropped, both sockets
 * stay open. Connections made after the cut are carried as usual.
 */
async function silentProxy(target: number): Promise<{ port: number; connections: number; closedSides: () => number; cut(): void; close(): Promise<void> }> {
  const pairs: Array<{ down: Socket; up: Socket; silent: boolean; closed: number }> = [];
  const server = net.createServer((down) => {
    const up = net.connect(target, '127.0.0.1');
    const pair = { down, up, silent: false, closed: 0 };
    pairs.push(pair);
    for (const [from, to] of [
      [down, up],
      [up, down],
    ] as const) {
      from.on('error', () => {});
      from.on('data', (chunk) => (pair.silent ? undefined : to.write(chunk)));
      // a side that closes is not passed on once the pair is silent: the other side must find out by itself
      from.on('close', () => {
        pair.closed++;
        if (!pair.silent) to.destroy();
      });
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return pairs.length;
    },
    closedSides: () => pairs.reduce((n, p) => n + p.closed, 0),
    cut() {
      for (const p of pairs) p.silent = true;
    },
    close: async () => {
      for (const p of pairs) {
        p.down.destroy();
        p.up.destroy();
      }
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/**
 * Two transports with a heartbeat of 50 ms and a read timeout of 200 ms; a
 * dials b through a {@link silentProxy}, b dials a directly. Resolves once a
 * first message from a has reached b.
 */
async function throughSilentProxy() {
  const opts = { heartbeatMs: 50, readTimeoutMs: 200 };
  const recA = new Recorder();
  const recB = new Recorder();
  const a = new TcpTransport(tcpOptions('a', opts));
  const b = new TcpTransport(tcpOptions('b', opts));
  await a.start(recA);
  await b.start(recB);
  const proxy = await silentProxy(b.address().port);
  b.addPeer('a', addr(a));
  a.addPeer('b', formatAddress('127.0.0.1', proxy.port));
  a.send([hb('a', 'b', 1)]);
  await recB.until(() => recB.received.length === 1, 'a message through the proxy');
  return { a, b, recA, recB, proxy };
}

test('a message stream that goes silent (no FIN, no RST) is closed by both sides within the read timeout, and the dialer redials: messages flow again', async () => {
  // Without a heartbeat and a read timeout, such a stream stayed open: the
  // dialer wrote into it for as long as TCP kept retransmitting (minutes),
  // and the acceptor waited on it for good.
  const { a, b, recA, recB, proxy } = await throughSilentProxy();
  try {
    assert.equal(proxy.connections, 1);
    proxy.cut();
    const cutAt = performance.now();
    let i = 2;
    const timer = setInterval(() => a.send([hb('a', 'b', i++)]), 20);
    try {
      await recB.until(() => recB.received.length > 1, 'a message on a new stream after the cut', 3_000);
    } finally {
      clearInterval(timer);
    }
    const after = performance.now() - cutAt;
    assert.ok(proxy.connections >= 2, 'the dialer redialed');
    for (const deadline = performance.now() + 3_000; proxy.closedSides() < 2; await sleep(10)) {
      assert.ok(performance.now() < deadline, `both sides closed the silent stream (closed: ${proxy.closedSides()})`);
    }
    // the read timeout, one look later at most, and the first backoff (20-40 ms here)
    assert.ok(after < 200 + 50 + 40 + 300, `messages flowed again ${after.toFixed(0)} ms after the cut`);
    const idx = recB.received.map((m) => m.index);
    assert.deepEqual(idx, [...idx].sort((x, y) => x - y), 'still in order');
  } finally {
    await Promise.all([a.close(), b.close(), proxy.close()]);
  }
});

test('a quiet message stream stays open: its heartbeats keep both read timeouts from firing', async () => {
  const { a, b, recA, recB, proxy } = await throughSilentProxy();
  try {
    await sleep(1_000); // five read timeouts with nothing to send
    assert.equal(proxy.connections, 1, 'no redial');
    assert.equal(proxy.closedSides(), 0, 'neither side closed the stream');
    assert.deepEqual(recA.unreachable, [], 'b was never reported unreachable');
    a.send([hb('a', 'b', 2)]);
    await recB.until(() => recB.received.length === 2, 'a message on the same stream');
    assert.equal(proxy.connections, 1);
  } finally {
    await Promise.all([a.close(), b.close(), proxy.close()]);
  }
});

test('a stall of the process longer than the read timeout (a long synchronous task) does not close its streams: the read window starts over', async () => {
  // Timers run before sockets are read: after a stall, the look at the
  // stream came before the bytes the peer had sent meanwhile were counted,
  // and both sides took their stream for dead. (Both sides and the proxy
  // stall together here, in one process: a peer in another process, which
  // got no heartbeat during the stall, closes its side, as etcd's would.)
  const { a, b, recA, recB, proxy } = await throughSilentProxy();
  try {
    await sleep(100);
    // busy for three read timeouts, in the check phase of the event loop,
    // so that the timers' phase comes next, before the sockets are polled
    await new Promise<void>((resolve) =>
      setImmediate(() => {
        const until = performance.now() + 600;
        while (performance.now() < until) {
          // nothing else runs
        }
        resolve();
      }),
    );
    await sleep(300);
    assert.equal(proxy.closedSides(), 0, 'neither side closed the stream');
    assert.equal(proxy.connections, 1, 'no redial');
    assert.deepEqual(recA.unreachable, []);
    a.send([hb('a', 'b', 2)]);
    await recB.until(() => recB.received.length === 2, 'a message on the same stream');
  } finally {
    await Promise.all([a.close(), b.close(), proxy.close()]);
  }
});


for (const variant of [
  { name: 'plain TCP', tls: false, host: '127.0.0.1', aHost: '127.0.0.1' },
  { name: 'TLS', tls: true, host: '127.0.0.1', aHost: '127.0.0.1' },
  { name: 'a dialer listening on 0.0.0.0', tls: false, host: '0.0.0.0', aHost: '127.0.0.1' },
  // the acceptor sees the dialer's IPv4 address mapped to IPv6, and dials
  // it back as IPv4: the certificate names 127.0.0.1
  { name: 'TLS, a dialer listening on 0.0.0.0, the acceptor on ::', tls: true, host: '0.0.0.0', aHost: '::' },
]) {
  test(`a dialer that is not a peer and not refused is heard, and answered at the address its handshake gives; a refused one is neither (${variant.name})`, async () => {
    const recA = new Recorder();
    const recX = new Recorder();
    // x (certificate of c, with TLS) knows a; a does not know x: it missed x's addition
    const a = new TcpTransport(tcpOptions('a', { listen: { host: variant.aHost, port: 0 }, ...(variant.tls ? { tls: tlsFor('a') } : {}) }));
    const x = new TcpTransport(tcpOptions('x', { listen: { host: variant.host, port: 0 }, ...(variant.tls ? { tls: tlsFor('c') } : {}) }));
    try {
      await a.start(recA);
      await x.start(recX);
      a.send([hb('a', 'x', 1)]);
      await recA.until(() => recA.unreachable.includes('x'), 'a cannot send to x before x reached it');
      x.addPeer('a', `127.0.0.1:${a.address().port}`);
      x.send([hb('x', 'a', 2)]);
      await recA.until(() => recA.from('x').length === 1, 'a takes the message of x');
      const snap = message({ type: 'MsgSnap', from: 'a', to: 'x', term: 1, snapshot: { data: new Uint8Array(5000), metadata: { index: 5, term: 1, confState: { voters: ['a', 'x'], learners: [] } } } });
      a.send([hb('a', 'x', 3), snap]);
      await recX.until(() => recX.received.length === 2, 'x gets the answers of a');
      await recA.until(() => recA.snapshots.length === 1, 'the snapshot to x is reported');
      assert.deepEqual(recA.snapshots, [{ peer: 'x', status: 'finish' }]);
      // refused: x is told, and nothing more is taken from it nor sent to it
      a.refusePeer('x');
      const resend = setInterval(() => x.send([hb('x', 'a', 4)]), 20);
      try {
        await recX.until(() => recX.removed.includes('a'), 'x is told it was removed');
      } finally {
        clearInterval(resend);
      }
      a.send([hb('a', 'x', 5)]);
      await sleep(100);
      assert.equal(recA.from('x').length, 1, 'nothing taken from x once refused');
      assert.equal(recX.received.length, 2, 'nothing sent to x once refused');
    } finally {
      await Promise.all([a.close(), x.close()]);
    }
  });
}

test('the address of a handshake is where a dialer that is not a peer is answered; a handshake without one (as older members send) is still taken, its dialer not answered', async () => {
  const recA = new Recorder();
  const a = new TcpTransport(tcpOptions('a'));
  const server = await rawServer(undefined);
  try {
    await a.start(recA);
    const port = a.address().port;
    const withAddress = await RawPeer.connect(port);
    withAddress.hello({ clusterId: 'conformance', from: 'r1', to: 'a', address: `127.0.0.1:${server.port}` });
    withAddress.message(hb('r1', 'a', 1));
    // the older form: five fields, no address
    const old = await RawPeer.connect(port);
    old.write(encodeFrame(FrameKind.Hello, pack([PROTOCOL_VERSION, 'conformance', 'r2', 'a', StreamKind.Messages])));
    old.message(hb('r2', 'a', 1));
    await recA.until(() => recA.received.length === 2, 'both messages taken');
    await until(() => old.frames.length > 0, 'the answer to the older handshake');
    assert.equal(decodeHello(old.frames[0]!.body).to, 'r2', 'the older handshake is answered');
    a.send([hb('a', 'r1', 2), hb('a', 'r2', 2)]);
    await recA.until(() => recA.unreachable.includes('r2'), 'r2 gave no address: unreachable');
    await until(() => server.messages.length === 1, 'the answer to r1 reaches the address of its handshake');
    assert.deepEqual(server.messages.map((m) => [m.to, m.index]), [['r1', 2]]);
    withAddress.destroy();
    old.destroy();
  } finally {
    await a.close();
    await server.close();
  }
});

test('a transport keeps at most 64 remotes: the one that dialed in least recently is forgotten; addPeer makes a remote a peer', async () => {
  const recA = new Recorder();
  const a = new TcpTransport(tcpOptions('a'));
  const server = await rawServer(undefined);
  const raws: RawPeer[] = [];
  try {
    await a.start(recA);
    const port = a.address().port;
    const dialIn = async (id: string, index: number): Promise<void> => {
      const raw = await RawPeer.connect(port);
      raws.push(raw);
      raw.hello({ clusterId: 'conformance', from: id, to: 'a', address: `127.0.0.1:${server.port}` });
      raw.message(hb(id, 'a', index));
      await recA.until(() => recA.received.some((m) => m.from === id && m.index === index), `the message of ${id}`);
    };
    // r0, r1, r0 again (it dialed in more recently than r1), then r2..r64: 65 in all
    await dialIn('r0', 1);
    await dialIn('r1', 1);
    await dialIn('r0', 2);
    for (let i = 2; i <= 64; i++) await dialIn(`r${i}`, 1);
    const ids = Array.from({ length: 65 }, (_, i) => `r${i}`);
    a.send(ids.map((id) => hb('a', id, 9)));
    await until(() => server.messages.length === 64, 'the answers to the 64 remotes kept');
    await recA.until(() => recA.unreachable.includes('r1'), 'r1, forgotten, is unreachable');
    await sleep(50);
    assert.deepEqual(new Set(server.messages.map((m) => m.to)), new Set(ids.filter((id) => id !== 'r1')));
    // addPeer turns a remote into a peer (keeping the address it gave), which the bound does not count
    a.addPeer('r2');
    for (let i = 64; i >= 3; i--) await dialIn(`r${i}`, 3);
    await dialIn('r1', 3);
    await dialIn('r65', 1); // 65 remotes without r2: the oldest (r0) goes
    server.messages.length = 0;
    a.send([hb('a', 'r2', 10), hb('a', 'r0', 10)]);
    await until(() => server.messages.length === 1, 'the answer to r2');
    await recA.until(() => recA.unreachable.includes('r0'), 'r0, forgotten, is unreachable');
    assert.deepEqual(server.messages.map((m) => m.to), ['r2']);
  } finally {
    for (const r of raws) r.destroy();
    await a.close();
    await server.close();
  }
});

async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

test('refusePeer of a remote already forgotten (past 64 remotes) still closes its streams: it redials and is told it was removed', async () => {
  const recA = new Recorder();
  const recX = new Recorder();
  const a = new TcpTransport(tcpOptions('a'));
  const x = new TcpTransport(tcpOptions('x'));
  const server = await rawServer(undefined);
  const raws: RawPeer[] = [];
  try {
    await a.start(recA);
    await x.start(recX);
    const port = a.address().port;
    // x knows a and keeps a stream to it; a does not know x: x is a remote of a
    x.addPeer('a', addr(a));
    x.send([hb('x', 'a', 1)]);
    await recA.until(() => recA.from('x').length === 1, 'the message of x');
    // 64 more dialers that are not peers: x, the one that dialed in least recently, is forgotten
    for (let i = 0; i < 64; i++) {
      const raw = await RawPeer.connect(port);
      raws.push(raw);
      raw.hello({ clusterId: 'conformance', from: `r${i}`, to: 'a', address: `127.0.0.1:${server.port}` });
      raw.message(hb(`r${i}`, 'a', 1));
      await recA.until(() => recA.from(`r${i}`).length === 1, `the message of r${i}`);
    }
    a.send([hb('a', 'x', 2)]);
    await recA.until(() => recA.unreachable.includes('x'), 'x, forgotten, is unreachable');
    // x is removed from the cluster: its stream to a, still open, is closed, and its redial refused
    a.refusePeer('x');
    await recX.until(() => recX.removed.includes('a'), 'x is told it was removed', 3000);
  } finally {
    for (const r of raws) r.destroy();
    await Promise.all([a.close(), x.close()]);
    await server.close();
  }
});

test('TcpTransport options, addPeer, parseAddress and MemoryNetwork refuse a malformed value of any kind with their typed error, not a TypeError', () => {
  // before: the check's message was made with String(value) (or
  // JSON.stringify, which throws on a BigInt), which threw a TypeError on an
  // object without a prototype and ran the caller's toString
  const odd: [string, unknown][] = [
    ['an object without a prototype', Object.create(null)],
    ['a Symbol', Symbol('s')],
    ['an object whose toString throws', { toString: () => { throw new Error('toString ran'); }, valueOf: () => { throw new Error('valueOf ran'); } }],
    ['a BigInt', 5n],
  ];
  const invalid = (code: string, what: string, fn: () => unknown): void => assert.throws(fn, (e: unknown) => isQuorumError(e, code as never), what);
  const base = tcpOptions('a');
  const t = new TcpTransport(base);
  const net = new MemoryNetwork({ seed: 1 });
  for (const [what, v] of odd) {
    for (const option of ['maxFrameBytes', 'snapshotChunkBytes', 'heartbeatMs', 'readTimeoutMs', 'dialTimeoutMs']) {
      invalid(ErrorCode.INVALID_CONFIG, `${option} ${what}`, () => new TcpTransport({ ...base, [option]: v }));
    }
    invalid(ErrorCode.INVALID_CONFIG, `backoff.initialMs ${what}`, () => new TcpTransport({ ...base, backoff: { initialMs: v as number, maxMs: 5000 } }));
    invalid(ErrorCode.INVALID_CONFIG, `a peer address ${what}`, () => new TcpTransport({ ...base, peers: { b: v as string } }));
    invalid(ErrorCode.INVALID_ARGUMENT, `addPeer address ${what}`, () => t.addPeer('b', v as string));
    invalid(ErrorCode.INVALID_ARGUMENT, `parseAddress ${what}`, () => parseAddress(v as string));
    invalid(ErrorCode.INVALID_ARGUMENT, `setDropRate ${what}`, () => net.setDropRate(v as number));
    invalid(ErrorCode.INVALID_ARGUMENT, `setDuplicateRate ${what}`, () => net.setDuplicateRate(v as number));
    invalid(ErrorCode.INVALID_ARGUMENT, `setReorderRate ${what}`, () => net.setReorderRate(v as number));
    invalid(ErrorCode.INVALID_ARGUMENT, `isolate ${what}`, () => net.isolate(v as string));
    invalid(ErrorCode.INVALID_ARGUMENT, `partition ${what}`, () => net.partition([v as string], ['b']));
    invalid(ErrorCode.INVALID_ARGUMENT, `partitionOneWay ${what}`, () => net.partitionOneWay('a', v as string));
  }
});
