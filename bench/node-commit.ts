// bench/node-commit: RaftNode commit throughput and latency with the Raft
// log on disk (classic-level through LevelLogStorage, and files through
// FileLogStorage; synced on every Ready that needs it), beside this
// machine's limits measured in the same run.
//
//   npm run bench:node
//
// One node and three nodes (in one process, MemoryNetwork without faults,
// real timers), 256-byte proposals, 1 and 64 in flight. The state machine
// only counts (it is not the subject here). Targets: 1 node / 1 in flight
// at least 0.85x the classic-level synced single-put rate; 1 node / 64 in
// flight at least 50,000 proposals/s; 3 nodes / 64 in flight at least
// 30,000 proposals/s.
//
// Machine limits: sequential fdatasync appends; O_DSYNC writes into a file
// filled with zeros beforehand, one at a time, on the main thread (what a
// FileLogStorage append of up to 64 KiB is) and through the thread pool
// (what a larger one is); classic-level synced single
// puts and synced batches of 64 puts; and the same batches from three
// databases at once (the three members share one disk here, so this is the
// ceiling of 3 nodes / 64 in flight: every round needs the leader's and a
// follower's synced write while the third member's competes for the disk).
// The disk of a shared machine is noisy: compare ratios within one run.
import { closeSync, constants, fdatasyncSync, mkdtempSync, openSync, rmSync, write, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { FileLogStorage, LevelLogStorage, MemoryNetwork, RaftNode, type ApplyEntry, type StateMachine } from '../src/index.js';
import { fmt, runLoad, type RunResult } from './lib/stats.js';

const quick = process.argv.includes('--quick');
const COUNTS = quick ? { one: 500, many: 20_000, limits: 500 } : { one: 2_000, many: 100_000, limits: 2_000 };
const PAYLOAD = new Uint8Array(256).fill(7);

class Counter implements StateMachine<number> {
  private applied = 0;
  appliedIndex(): number {
    return this.applied;
  }
  apply(entries: ApplyEntry[]): number[] {
    for (const e of entries) this.applied = e.index;
    return entries.map((e) => e.index);
  }
  snapshot(): Uint8Array {
    return new Uint8Array(0);
  }
  restore(s: { index: number }): void {
    this.applied = s.index;
  }
}

function tmp(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `quorumkv-bench-${prefix}-`));
}

/** Synced batches of 64 puts from `writers` databases at once; puts/s over all of them. */
async function concurrentBatches(dir: string, writers: number): Promise<number> {
  const dbs = await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      const db = new ClassicLevel<Uint8Array, Uint8Array>(join(dir, `w${writers}-${w}`), { keyEncoding: 'view', valueEncoding: 'view' });
      await db.open();
      return db;
    }),
  );
  const batches = Math.max(1, Math.floor(COUNTS.limits / 4));
  const t0 = performance.now();
  await Promise.all(
    dbs.map(async (db) => {
      for (let b = 0; b < batches; b++) {
        await db.batch(
          Array.from({ length: 64 }, (_, j) => ({ type: 'put' as const, key: new TextEncoder().encode(`k${String(b * 64 + j).padStart(8, '0')}`), value: PAYLOAD })),
          { sync: true },
        );
      }
    }),
  );
  const rate = (writers * batches * 64) / ((performance.now() - t0) / 1000);
  for (const db of dbs) await db.close();
  return rate;
}

async function limits(): Promise<{ fdatasync: number; dsync: number; dsyncPool: number; syncPut: number; syncBatch64: number; syncBatch64x3: number }> {
  const dir = tmp('limits');
  try {
    const fd = openSync(join(dir, 'append'), 'a');
    let t0 = performance.now();
    for (let i = 0; i < COUNTS.limits; i++) {
      writeSync(fd, PAYLOAD);
      fdatasyncSync(fd);
    }
    const fdatasync = COUNTS.limits / ((performance.now() - t0) / 1000);
    closeSync(fd);
    const zeroed = join(dir, 'zeroed');
    writeFileSync(zeroed, new Uint8Array(COUNTS.limits * PAYLOAD.length));
    const zfd = openSync(zeroed, 'r+');
    fdatasyncSync(zfd);
    closeSync(zfd);
    if (constants.O_DSYNC === undefined) throw new Error('bench/node-commit: this platform has no O_DSYNC');
    const dfd = openSync(zeroed, constants.O_RDWR | constants.O_DSYNC);
    t0 = performance.now();
    for (let i = 0; i < COUNTS.limits; i++) {
      await new Promise<void>((resolve, reject) => write(dfd, PAYLOAD, 0, PAYLOAD.length, i * PAYLOAD.length, (err) => (err === null ? resolve() : reject(err))));
    }
    const dsyncPool = COUNTS.limits / ((performance.now() - t0) / 1000);
    t0 = performance.now();
    for (let i = 0; i < COUNTS.limits; i++) writeSync(dfd, PAYLOAD, 0, PAYLOAD.length, i * PAYLOAD.length);
    const dsync = COUNTS.limits / ((performance.now() - t0) / 1000);
    closeSync(dfd);
    const db = new ClassicLevel<Uint8Array, Uint8Array>(join(dir, 'db'), { keyEncoding: 'view', valueEncoding: 'view' });
    await db.open();
    const key = (i: number) => new TextEncoder().encode(`k${String(i).padStart(8, '0')}`);
    t0 = performance.now();
    for (let i = 0; i < COUNTS.limits; i++) await db.put(key(i), PAYLOAD, { sync: true });
    const syncPut = COUNTS.limits / ((performance.now() - t0) / 1000);
    t0 = performance.now();
    const batches = Math.max(1, Math.floor(COUNTS.limits / 4));
    for (let b = 0; b < batches; b++) {
      await db.batch(Array.from({ length: 64 }, (_, j) => ({ type: 'put' as const, key: key(1e7 + b * 64 + j), value: PAYLOAD })), { sync: true });
    }
    const syncBatch64 = (batches * 64) / ((performance.now() - t0) / 1000);
    await db.close();
    const syncBatch64x3 = await concurrentBatches(dir, 3);
    return { fdatasync, dsync, dsyncPool, syncPut, syncBatch64, syncBatch64x3 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

type LogKind = 'level' | 'files';

async function cluster(n: number, kind: LogKind = 'level'): Promise<{ leader: () => RaftNode<number>; close: () => Promise<void> }> {
  const dir = tmp(`node${n}`);
  const ids = ['a', 'b', 'c'].slice(0, n);
  const net = new MemoryNetwork({ seed: 1 });
  const nodes = await Promise.all(
    ids.map(async (id) =>
      RaftNode.create<number>({
        id,
        peers: ids,
        storage: kind === 'files' ? await FileLogStorage.open({ dir: join(dir, id) }) : await LevelLogStorage.open({ dataDir: join(dir, id) }),
        transport: net.transport(id),
        stateMachine: new Counter(),
        tickMs: 100,
        snapshotEntries: 1_000_000,
      }),
    ),
  );
  while (!nodes.some((x) => x.isLeader)) await new Promise((r) => setTimeout(r, 10));
  return {
    leader: () => nodes.find((x) => x.isLeader) ?? nodes[0]!,
    async close() {
      await Promise.all(nodes.map((x) => x.close()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function measure(n: number, inFlight: number, kind: LogKind): Promise<RunResult> {
  const c = await cluster(n, kind);
  try {
    // Warm-up. One in flight gets a longer one: the first seconds of a new
    // database (and of the disk after the limits phase deleted its files)
    // are slower than what follows, which a short run would mostly measure.
    if (inFlight === 1) await runLoad(COUNTS.one, 1, () => c.leader().propose(PAYLOAD));
    else await runLoad(200, 8, () => c.leader().propose(PAYLOAD));
    return await runLoad(inFlight === 1 ? COUNTS.one : COUNTS.many, inFlight, () => c.leader().propose(PAYLOAD));
  } finally {
    await c.close();
  }
}

const lim = await limits();
console.log(`bench/node-commit${quick ? ' (quick)' : ''}: node ${process.version}`);
console.log(
  `machine limits: fdatasync appends ${fmt(lim.fdatasync)}/s, O_DSYNC writes into a zeroed file ${fmt(lim.dsync)}/s (${fmt(lim.dsyncPool)}/s through the thread pool), classic-level sync put ${fmt(lim.syncPut)}/s, ` +
    `sync batch of 64 ${fmt(lim.syncBatch64)} puts/s, the same from 3 databases at once ${fmt(lim.syncBatch64x3)} puts/s in all ` +
    `(${fmt(lim.syncBatch64x3 / 3)} each)`,
);
const rows: [string, RunResult, string][] = [];
for (const [n, inFlight, kind, target] of [
  [1, 1, 'level', `≥ 0.85× sync put (${fmt(0.85 * lim.syncPut)}/s)`],
  [1, 1, 'files', ''],
  [1, 64, 'level', '≥ 50,000/s'],
  [1, 64, 'files', ''],
  [3, 1, 'level', ''],
  [3, 1, 'files', ''],
  [3, 64, 'level', '≥ 30,000/s'],
  [3, 64, 'files', ''],
] as const) {
  const r = await measure(n, inFlight, kind);
  rows.push([`${n} node${n > 1 ? 's' : ''}, ${inFlight} in flight, ${kind}`, r, target]);
  console.log(`  ${rows.at(-1)![0].padEnd(29)} ${fmt(r.perSecond).padStart(8)} proposals/s  p50 ${fmt(r.p50Ms, 2)} ms  p99 ${fmt(r.p99Ms, 2)} ms`);
}
// The synced-batch limit that bounds each setup: one database for one node,
// one database's share of three concurrent writers for three nodes.
const batchLimit = (name: string): number => (name.startsWith('1 ') ? lim.syncBatch64 : lim.syncBatch64x3 / 3);
console.log('\n| setup (Raft log) | proposals/s | p50 ms | p99 ms | × sync put | × fdatasync | × O_DSYNC write | × sync batch 64 | target |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---|');
for (const [name, r, target] of rows) {
  console.log(
    `| ${name} | ${fmt(r.perSecond)} | ${fmt(r.p50Ms, 2)} | ${fmt(r.p99Ms, 2)} | ${fmt(r.perSecond / lim.syncPut, 2)} | ` +
      // O_DSYNC: a lone writer's rate, so for one node only; sync batch: classic-level's, so for its rows only
      `${fmt(r.perSecond / lim.fdatasync, 2)} | ${name.startsWith('1 ') ? fmt(r.perSecond / lim.dsync, 2) : ''} | ${name.includes(' 64 in flight') && name.endsWith('level') ? fmt(r.perSecond / batchLimit(name), 2) : ''} | ${target} |`,
  );
}
console.log('\n× O_DSYNC write (1 node only): against one writer of O_DSYNC appends on the main thread. × sync batch 64 (classic-level, 64 in flight only): against synced batches of 64 puts on one database (1 node), or per database with three writing at once (3 nodes).');

/**
 * The disk's synced-write latency drifts several-fold within minutes, so a
 * rate measured once at the start is a poor yardstick for a run that comes
 * later. Here blocks of classic-level synced single puts and of one-node,
 * one-in-flight proposals alternate, and each proposal block is compared
 * with the put blocks just before and after it.
 */
async function paired(rounds: number, perBlock: number): Promise<{ ratios: number[]; puts: number; proposals: number }> {
  const c = await cluster(1);
  const dir = tmp('paired');
  const db = new ClassicLevel<Uint8Array, Uint8Array>(join(dir, 'db'), { keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  let k = 0;
  const putBlock = async (): Promise<number> => {
    const t0 = performance.now();
    for (let i = 0; i < perBlock; i++) await db.put(new TextEncoder().encode(`k${String(k++).padStart(8, '0')}`), PAYLOAD, { sync: true });
    return perBlock / ((performance.now() - t0) / 1000);
  };
  try {
    await runLoad(200, 1, () => c.leader().propose(PAYLOAD)); // warm-up
    const ratios: number[] = [];
    let putSum = 0;
    let propSum = 0;
    let before = await putBlock();
    putSum += before;
    for (let r = 0; r < rounds; r++) {
      const t0 = performance.now();
      for (let i = 0; i < perBlock; i++) await c.leader().propose(PAYLOAD);
      const prop = perBlock / ((performance.now() - t0) / 1000);
      const after = await putBlock();
      putSum += after;
      propSum += prop;
      ratios.push(prop / ((before + after) / 2));
      before = after;
    }
    return { ratios, puts: putSum / (rounds + 1), proposals: propSum / rounds };
  } finally {
    await db.close();
    await c.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const pairedRun = await paired(quick ? 4 : 10, quick ? 200 : 500);
const sorted = [...pairedRun.ratios].sort((a, b) => a - b);
const median = sorted[Math.floor(sorted.length / 2)]!;
console.log(
  `\n1 node, 1 in flight, alternating with synced single puts (${pairedRun.ratios.length} pairs of blocks): ` +
    `proposals ${fmt(pairedRun.proposals)}/s, sync puts ${fmt(pairedRun.puts)}/s; ` +
    `× sync put per pair: ${pairedRun.ratios.map((x) => fmt(x, 2)).join(' ')}; median ${fmt(median, 2)} (target ≥ 0.85)`,
);
