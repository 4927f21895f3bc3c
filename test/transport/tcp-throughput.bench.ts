// Throughput of TcpTransport on loopback: N small MsgApp messages (one
// 256-byte entry each) from node a to node b, with at most WINDOW messages in
// flight (as Raft's inflights window bounds a leader), and prints messages/s.
// Not part of the test suite (no .test.ts suffix). Run:
//   node --import tsx test/transport/tcp-throughput.bench.ts [count] [window] [--tls]
import { message, type Message } from '../../src/raftpb/index.js';
import { TcpTransport, formatAddress, type SnapshotStatus, type TransportHandler } from '../../src/transport/index.js';
import { tlsFor } from './clusters.js';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const useTls = process.argv.includes('--tls');
const N = Number(args[0] ?? 200_000);
const WINDOW = Number(args[1] ?? 4096);
const BATCH = 256;

let received = 0;
let unreachable = 0;
let wake: (() => void) | undefined;
const handlerB: TransportHandler = {
  receive(_m: Message) {
    received++;
    if (wake !== undefined) {
      const w = wake;
      wake = undefined;
      w();
    }
  },
  reportUnreachable() {},
  reportSnapshot(_p: string, _s: SnapshotStatus) {},
};
const handlerA: TransportHandler = {
  receive() {},
  reportUnreachable() {
    unreachable++;
  },
  reportSnapshot() {},
};

const common = { clusterId: 'bench', listen: { host: '127.0.0.1', port: 0 } };
const a = new TcpTransport({ id: 'a', ...common, ...(useTls ? { tls: tlsFor('a') } : {}) });
const b = new TcpTransport({ id: 'b', ...common, ...(useTls ? { tls: tlsFor('b') } : {}) });
await a.start(handlerA);
await b.start(handlerB);
a.addPeer('b', formatAddress(b.address().host, b.address().port));
b.addPeer('a', formatAddress(a.address().host, a.address().port));

const data = new Uint8Array(256).fill(7);
function msgApp(i: number): Message {
  return message({ type: 'MsgApp', from: 'a', to: 'b', term: 1, logTerm: 1, index: i, commit: i, entries: [{ term: 1, index: i + 1, type: 'Normal', data }] });
}

// Warm up the connection (and the JIT) before timing.
a.send([msgApp(0)]);
while (received < 1) await new Promise<void>((r) => (wake = r));
received = 0;

const t0 = process.hrtime.bigint();
let sent = 0;
while (received < N) {
  while (sent < N && sent - received < WINDOW) {
    const n = Math.min(BATCH, N - sent, WINDOW - (sent - received));
    const batch: Message[] = new Array(n);
    for (let i = 0; i < n; i++) batch[i] = msgApp(++sent);
    a.send(batch);
  }
  await new Promise<void>((r) => (wake = r));
}
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
console.log(
  `TcpTransport${useTls ? ' (TLS)' : ''} loopback: ${N} MsgApp (1 x 256-byte entry) in ${seconds.toFixed(2)} s = ${Math.round(N / seconds).toLocaleString('en-US')} messages/s` +
    ` (window ${WINDOW}, batches of ${BATCH}, unreachable reports ${unreachable})`,
);
await Promise.all([a.close(), b.close()]);
