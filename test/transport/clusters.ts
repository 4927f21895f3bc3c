// Cluster factories for the Transport conformance suite and the transport
// tests: MemoryNetwork, TcpTransport, TcpTransport over mutual TLS (with the
// committed test certificates of test/fixtures/tls, see generate.sh there).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MemoryNetwork, TcpTransport, formatAddress, type TcpTransportOptions, type Transport } from '../../src/transport/index.js';
import type { ConformanceCluster, MakeCluster } from './conformance.js';

const TLS_DIR = fileURLToPath(new URL('../fixtures/tls/', import.meta.url));

/** Reads one PEM file of the test fixtures (`ca.crt`, `node-a.key`, ...). */
export function tlsFile(name: string): Buffer {
  return readFileSync(join(TLS_DIR, name));
}

/** Mutual-TLS options for node `a`, `b` or `c`, signed by the test CA. */
export function tlsFor(node: string, caName = 'ca'): NonNullable<TcpTransportOptions['tls']> {
  const base = ['a', 'b', 'c'].includes(node) ? `node-${node}` : node;
  return { key: tlsFile(`${base}.key`), cert: tlsFile(`${base}.crt`), ca: tlsFile(`${caName}.crt`) };
}

/** Waits `ms` of real time. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A MemoryNetwork cluster on the real-time scheduler, with small random delays to exercise FIFO. */
export function memoryCluster(seed = 7): MakeCluster {
  return async (ids, handlers) => {
    const net = new MemoryNetwork({ seed });
    net.setDelay({ minMs: 0, maxMs: 3 });
    const transports: Record<string, Transport> = {};
    for (const id of ids) {
      const t = net.transport(id);
      for (const p of ids) t.addPeer(p);
      await t.start(handlers[id]!);
      transports[id] = t;
    }
    const cluster: ConformanceCluster = {
      transports,
      settle: () => sleep(20),
      close: async () => {
        for (const t of Object.values(transports)) await t.close();
      },
    };
    return cluster;
  };
}

/** Options every test TcpTransport uses: loopback, port 0, small frames (to force chunking), fast backoff. */
export function tcpOptions(id: string, extra: Partial<TcpTransportOptions> = {}): TcpTransportOptions {
  return {
    id,
    clusterId: 'conformance',
    listen: { host: '127.0.0.1', port: 0 },
    maxFrameBytes: 256 * 1024,
    dialTimeoutMs: 2000,
    backoff: { initialMs: 20, maxMs: 200 },
    ...extra,
  };
}

/** A TcpTransport cluster on 127.0.0.1 (mutual TLS when `tls` is true). */
export function tcpCluster(opts: { tls?: boolean } = {}): MakeCluster {
  return async (ids, handlers) => {
    const transports: Record<string, TcpTransport> = {};
    for (const id of ids) {
      const t = new TcpTransport(tcpOptions(id, opts.tls ? { tls: tlsFor(id) } : {}));
      await t.start(handlers[id]!);
      transports[id] = t;
    }
    for (const id of ids) {
      for (const p of ids) {
        const a = transports[p]!.address();
        transports[id]!.addPeer(p, formatAddress(a.host, a.port));
      }
    }
    const cluster: ConformanceCluster = {
      transports,
      settle: () => sleep(100),
      close: async () => {
        await Promise.all(Object.values(transports).map((t) => t.close()));
      },
    };
    return cluster;
  };
}
