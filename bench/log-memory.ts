// bench/log-memory: memory held by the Raft log entries members keep.
//
//   npm run bench:log-memory
//
// Three KvNode members in one process, first on TCP over loopback, then on
// MemoryNetwork, each taking 9,000 puts of 256-byte values one at a time
// (below the 10,000 entries after which a member snapshots and compacts its
// log, so every member still holds every entry), then on to 30,000 (each
// member has compacted its log behind snapshots). After each, and a GC: the
// growth of the process's ArrayBuffers (where entries' data lives) per entry
// kept, against the value each entry carries, and the resident set.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { KvNode, MemoryNetwork, TcpTransport, type Transport } from '../src/index.js';
import { freePort } from '../examples/lib/free-port.js';
import { fmt } from './lib/stats.js';

const PUTS = 9_000;
/** Then on to this many, past snapshots that compact each member's log. */
const PUTS_COMPACTED = 30_000;
const VALUE = 'x'.repeat(256);
const IDS = ['a', 'b', 'c'];

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

async function run(kind: 'tcp' | 'memory'): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'quorumkv-bench-log-memory-'));
  const net = new MemoryNetwork({ seed: 1 });
  const transports = new Map<string, Transport>();
  if (kind === 'tcp') {
    const ports = await Promise.all(IDS.map(() => freePort()));
    IDS.forEach((id, i) => {
      const peers = Object.fromEntries(IDS.flatMap((p, j) => (p === id ? [] : [[p, `127.0.0.1:${ports[j]}`]])));
      transports.set(id, new TcpTransport({ id, clusterId: 'bench', listen: { host: '127.0.0.1', port: ports[i]! }, peers }));
    });
  } else {
    for (const id of IDS) transports.set(id, net.transport(id));
  }
  const nodes = await Promise.all(IDS.map((id) => KvNode.open({ id, members: IDS, transport: transports.get(id)!, dataDir: join(root, id) })));
  try {
    while (!nodes.some((n) => n.raft.isLeader)) await new Promise((r) => setTimeout(r, 10));
    gc();
    gc();
    const before = process.memoryUsage().arrayBuffers;
    const leader = nodes.find((n) => n.raft.isLeader)!;
    let done = 0;
    for (const upTo of [PUTS, PUTS_COMPACTED]) {
      for (; done < upTo; done++) await leader.put(`k/${done}`, VALUE);
      await new Promise((r) => setTimeout(r, 500));
      gc();
      gc();
      const m = process.memoryUsage();
      const grown = `ArrayBuffers ${fmt((m.arrayBuffers - before) / 2 ** 20, 1)} MiB more than before the puts`;
      const rest = `heap used ${fmt(m.heapUsed / 2 ** 20, 1)} MiB, RSS ${fmt(m.rss / 2 ** 20, 1)} MiB`;
      if (upTo === PUTS) {
        // no snapshot yet: each member holds every entry since its first
        // (the per-entry figure is over all three members' entries, the
        // leader's own included)
        const kept = nodes.reduce((sum, n) => sum + n.raft.status().lastIndex, 0);
        const perEntry = (m.arrayBuffers - before) / kept;
        console.log(`${kind.padEnd(6)} after ${fmt(done).padStart(6)} puts: ${fmt(kept)} entries kept by three members; ${grown}, ${fmt(perEntry)} B per entry (${fmt(perEntry / VALUE.length, 2)}× the 256-byte value it carries); ${rest}`);
      } else {
        // each member keeps the entries since its last snapshot and 5,000 behind it
        const snaps = nodes.map((n) => n.raft.status().snapshotIndex).join(', ');
        console.log(`${kind.padEnd(6)} after ${fmt(done).padStart(6)} puts: snapshots at ${snaps}; ${grown}; ${rest}`);
      }
    }
  } finally {
    await Promise.all(nodes.map((n) => n.close()));
    rmSync(root, { recursive: true, force: true });
  }
}

console.log(`bench/log-memory: node ${process.version}, ${PUTS} puts of ${VALUE.length} B one at a time, three members in one process`);
await run('tcp');
await run('memory');
