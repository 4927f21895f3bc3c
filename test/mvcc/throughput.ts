// Throughput of the MVCC store (a script, not a test):
//   node --import tsx test/mvcc/throughput.ts
// - puts/s applied on classic-level in batches of 64 entries (each entry
//   decoded from its Raft log encoding, as a member applies it; the next
//   batch executes while the previous one is written), 8-byte
//   keys over 100k distinct keys, 256-byte values;
// - single-key range gets/s at the current revision;
// - for comparison, when an etcd binary is installed: etcd 3.4's put
//   throughput on the same machine (64 concurrent clients' worth of
//   requests through the etcd3 client, data on /dev/shm when there is one).
// Env: PUTS (default 200000), GETS (default 200000), NO_ETCD=1 to skip etcd.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { Etcd3 } from 'etcd3';
import { decodeWriteRequest, MvccStore, prepareWriteRequest } from '../../src/mvcc/index.js';
import { findEtcd, startEtcd } from '../etcd-diff/etcd-process.js';

const PUTS = Number(process.env.PUTS ?? 200_000);
const GETS = Number(process.env.GETS ?? 200_000);
const BATCH = 64;
const KEYS = 100_000;
const value = new Uint8Array(256).fill(0x61);
const key = (i: number) => Buffer.from(String(i % KEYS).padStart(8, '0'));

async function storeBench(): Promise<{ putsPerSec: number; getsPerSec: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'quorumkv-mvcc-bench-'));
  const db = new ClassicLevel<string, string>(dir);
  const store = await MvccStore.open(db.sublevel('mvcc'));
  try {
    // entries as they come out of the Raft log (encoding is the proposer's work)
    const log: Uint8Array[] = [];
    for (let j = 0; j < PUTS; j++) log.push(prepareWriteRequest({ put: { key: key(j * 7919), value } }));
    let index = 0;
    const t0 = performance.now();
    // a member applies the next batch while the previous one is written: two in flight
    let previous: Promise<unknown> = Promise.resolve();
    for (let i = 0; i < PUTS; i += BATCH) {
      const entries = [];
      for (let j = i; j < Math.min(PUTS, i + BATCH); j++) entries.push({ index: ++index, request: decodeWriteRequest(log[j]!) });
      const current = store.applyBatch(entries);
      await previous;
      previous = current;
    }
    await previous;
    const putSec = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    for (let i = 0; i < GETS; i++) await store.range({ key: key(i * 31) });
    const getSec = (performance.now() - t1) / 1000;
    return { putsPerSec: PUTS / putSec, getsPerSec: GETS / getSec };
  } finally {
    await store.close();
    await db.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function etcdBench(bin: string): Promise<number> {
  const p = await startEtcd(bin);
  const client = new Etcd3({ hosts: p.url });
  try {
    const n = Math.min(PUTS, 50_000);
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: BATCH }, async () => {
        while (next < n) {
          const i = next++;
          await client.kv.put({ key: key(i * 7919), value: Buffer.from(value) });
        }
      }),
    );
    return n / ((performance.now() - t0) / 1000);
  } finally {
    client.close();
    await p.stop();
  }
}

const store = await storeBench();
console.log(`MVCC store on classic-level: ${Math.round(store.putsPerSec)} puts/s (batches of ${BATCH} entries), ${Math.round(store.getsPerSec)} range gets/s`);
const bin = process.env.NO_ETCD ? undefined : findEtcd();
if (bin !== undefined) {
  const etcd = await etcdBench(bin);
  console.log(`etcd 3.4 (same machine, ${BATCH} concurrent puts): ${Math.round(etcd)} puts/s; store / etcd = ${(store.putsPerSec / etcd).toFixed(1)}x`);
} else {
  console.log('etcd not installed: no comparison');
}
