// Child of bench/kv.ts: one KvNode on classic-level, 100,000 keys of 256
// bytes written 64 at a time, then its resident set size after a GC.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KvNode, MemoryNetwork } from '../src/index.js';
import { runLoad } from './lib/stats.js';

const root = mkdtempSync(join(tmpdir(), 'quorumkv-bench-rss-'));
const net = new MemoryNetwork({ seed: 1 });
const node = await KvNode.open({ id: 'a', members: ['a'], transport: net.transport('a'), dataDir: join(root, 'a') });
while (!node.raft.isLeader) await new Promise((r) => setTimeout(r, 10));
const value = 'x'.repeat(256);
await runLoad(100_000, 64, (i) => node.put(`rss/${String(i).padStart(6, '0')}`, value));
await new Promise((r) => setTimeout(r, 1000));
(globalThis as { gc?: () => void }).gc?.();
console.log(`RSS ${process.memoryUsage().rss}`);
await node.close();
rmSync(root, { recursive: true, force: true });
