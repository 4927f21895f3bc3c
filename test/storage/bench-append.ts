// Append throughput of LevelLogStorage on classic-level: 100,000 entries of
// 256 bytes in batches of 64 (one synced save each, as a leader's group commit
// would write them), next to raw classic-level batches of the same shape.
// Not part of the test suite. Run: node --import tsx test/storage/bench-append.ts
// Options (env): BENCH_ENTRIES (default 100000), BENCH_BATCH (64), BENCH_SIZE (256).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import type { Entry } from '../../src/raftpb/index.js';
import { LevelLogStorage } from '../../src/storage/index.js';

const TOTAL = Number(process.env.BENCH_ENTRIES ?? 100_000);
const BATCH = Number(process.env.BENCH_BATCH ?? 64);
const SIZE = Number(process.env.BENCH_SIZE ?? 256);

function report(name: string, ms: number, batches: number): void {
  const s = ms / 1000;
  console.log(
    `${name.padEnd(34)} ${TOTAL} entries in ${s.toFixed(2)} s: ${Math.round(TOTAL / s)} entries/s, ${Math.round(batches / s)} batches/s`,
  );
}

async function benchStorage(dir: string): Promise<number> {
  const storage = await LevelLogStorage.open({ dataDir: join(dir, 'storage') });
  const data = new Uint8Array(SIZE).fill(7);
  let batches = 0;
  const start = performance.now();
  for (let index = 1; index <= TOTAL; index += BATCH) {
    const entries: Entry[] = [];
    for (let i = index; i < Math.min(index + BATCH, TOTAL + 1); i++) entries.push({ term: 1, index: i, type: 'Normal', data });
    const last = entries[entries.length - 1]!.index;
    await storage.save({ entries, hardState: { term: 1, vote: 'n1', commit: last } }, { sync: true });
    batches++;
  }
  const ms = performance.now() - start;
  report('LevelLogStorage.save, sync', ms, batches);
  const t = performance.now();
  const { entries } = await storage.load();
  console.log(`${'LevelLogStorage.load'.padEnd(34)} ${entries.length} entries in ${((performance.now() - t) / 1000).toFixed(2)} s`);
  await storage.close();
  return TOTAL / (ms / 1000);
}

async function benchRaw(dir: string): Promise<number> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(join(dir, 'raw'), { keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  const value = new Uint8Array(SIZE + 16).fill(7);
  let batches = 0;
  const start = performance.now();
  for (let index = 1; index <= TOTAL; index += BATCH) {
    const ops: Array<{ type: 'put'; key: Uint8Array; value: Uint8Array }> = [];
    for (let i = index; i < Math.min(index + BATCH, TOTAL + 1); i++) {
      const key = new Uint8Array(9);
      new DataView(key.buffer).setUint32(5, i);
      ops.push({ type: 'put', key, value });
    }
    await db.batch(ops, { sync: true } as never);
    batches++;
  }
  const ms = performance.now() - start;
  report('raw classic-level batch, sync', ms, batches);
  await db.close();
  return TOTAL / (ms / 1000);
}

const dir = await mkdtemp(join(tmpdir(), 'quorumkv-bench-'));
try {
  const raw = await benchRaw(dir);
  const storage = await benchStorage(dir);
  console.log(`LevelLogStorage / raw classic-level: ${(storage / raw).toFixed(2)}`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
