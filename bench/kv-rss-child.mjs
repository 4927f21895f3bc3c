// Child of bench/kv.ts: one KvNode on classic-level, 100,000 keys of 256
// bytes written 64 at a time, then, after IDLE_MS without load and a GC, its
// resident set size. It runs the compiled package (dist/, built by
// `npm run bench:kv`), as a service that installs quorumkv would, without
// the TypeScript loader's own thread and heap.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KvNode, MemoryNetwork } from '../dist/index.js';

const KEYS = 100_000;
const IN_FLIGHT = 64;
const IDLE_MS = Number(process.argv[2] ?? 10_000);

const root = mkdtempSync(join(tmpdir(), 'quorumkv-bench-rss-'));
const net = new MemoryNetwork({ seed: 1 });
const node = await KvNode.open({ id: 'a', members: ['a'], transport: net.transport('a'), dataDir: join(root, 'a') });
while (!node.raft.isLeader) await new Promise((r) => setTimeout(r, 10));
const value = 'x'.repeat(256);
let next = 0;
await Promise.all(
  Array.from({ length: IN_FLIGHT }, async () => {
    while (next < KEYS) {
      const i = next++;
      await node.put(`rss/${String(i).padStart(6, '0')}`, value);
    }
  }),
);
await new Promise((r) => setTimeout(r, IDLE_MS));
globalThis.gc?.();
const m = process.memoryUsage();
console.log(`RSS ${m.rss} heapTotal ${m.heapTotal} heapUsed ${m.heapUsed} external ${m.external}`);
await node.close();
rmSync(root, { recursive: true, force: true });
