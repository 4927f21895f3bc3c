// bench/kv: KvNode (one member, and three members in one process) against a
// local etcd (one member, and three) running the same workloads through the
// etcd3 client, printed as ratios. Data on disk for both: for quorumkv the
// store on classic-level and the Raft log in WAL files (FileLogStorage), for
// etcd its bbolt and its WAL; both fsync what they acknowledge.
//
//   npm run bench:kv                # full run
//   npm run bench:kv -- --quick     # smaller counts
//
// Workloads: put (1 and 64 in flight), serializable and linearizable get
// (1 and 64 in flight), txn compare-and-swap (64 in flight), watch latency
// from put to event (p50/p99), and RSS after 100,000 keys of 256 bytes
// (measured in a separate process for each side). Then puts with 1 in
// flight again, in blocks alternating between the two sides, for a ratio
// the disk's drift between the two measurements does not skew.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { KvNode, MemoryNetwork } from '../src/index.js';
import { replicatedAppendRounds, syncedAppendRounds } from './lib/disk.js';
import { etcdAvailable, etcdVersion, startEtcd, type EtcdCluster } from './lib/etcd.js';
import { fmt, percentile, runLoad, type RunResult } from './lib/stats.js';

const quick = process.argv.includes('--quick');
const N = quick ? { warm: 1_000, put1: 300, put64: 5_000, get1: 2_000, get64: 20_000, cas: 3_000, watch: 200 } : { warm: 3_000, put1: 3_000, put64: 20_000, get1: 5_000, get64: 50_000, cas: 10_000, watch: 3_000 };
const VALUE = 'x'.repeat(256);
/** Bytes of the Raft log record of one put of `watch/<i>` with VALUE (header, entry, HardState). */
const RECORD_BYTES = 308;

interface Target {
  name: string;
  put(key: string, value: string): Promise<unknown>;
  get(key: string, serializable: boolean): Promise<unknown>;
  /** compare-and-swap: put `value` if the key's mod revision is `rev`; returns the new mod revision or 0. */
  cas(key: string, rev: number, value: string): Promise<number>;
  modRevision(key: string): Promise<number>;
  /** ms from the start of a put to the watcher's event, `n` times. */
  watchLatency(n: number): Promise<number[]>;
  /**
   * The disk's floor for that latency, `n` times, sorted (ms): synced
   * appends of one put's Raft log record, as this side's members write them
   * (quorumkv only).
   */
  floor?(n: number): Promise<number[]>;
  /**
   * For three members in one process, the floor with the hand-offs a put
   * needs as well (appends through the thread pool, turns of the event loop
   * between members), `n` times, sorted (ms): no Raft or store work at all.
   */
  handoffFloor?(n: number): Promise<number[]>;
  close(): Promise<void>;
}

function kvTarget(name: string, nodes: KvNode[], cleanup: () => Promise<void>): Target {
  const leader = (): KvNode => nodes.find((n) => n.raft.isLeader) ?? nodes[0]!;
  return {
    name,
    put: (k, v) => leader().put(k, v),
    get: (k, serializable) => leader().get(k, { serializable }),
    async cas(k, rev, v) {
      const r = await leader().txn({ compare: [{ key: k, target: 'MOD', result: 'EQUAL', modRevision: rev }], success: [{ put: { key: k, value: v } }] });
      return r.succeeded ? r.header.revision : 0;
    },
    async modRevision(k) {
      return (await leader().get(k))?.modRevision ?? 0;
    },
    async watchLatency(n) {
      const l = leader();
      const w = l.watch('watch/', { prefix: true });
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        const seen = new Promise<void>((r) => w.on('put', () => r()));
        await l.put(`watch/${i}`, VALUE);
        await seen;
        out.push(performance.now() - t0);
        w.off('put');
      }
      await w.cancel();
      return out;
    },
    close: cleanup,
  };
}

async function quorumkv(members: number): Promise<Target> {
  const root = mkdtempSync(join(tmpdir(), 'quorumkv-bench-kv-'));
  const ids = ['a', 'b', 'c'].slice(0, members);
  const net = new MemoryNetwork({ seed: 1 });
  const nodes = await Promise.all(ids.map((id) => KvNode.open({ id, members: ids, transport: net.transport(id), dataDir: join(root, id), tickMs: 100 })));
  while (!nodes.some((n) => n.raft.isLeader)) await new Promise((r) => setTimeout(r, 10));
  const target = kvTarget(`quorumkv ×${members}`, nodes, async () => {
    await Promise.all(nodes.map((n) => n.close()));
    rmSync(root, { recursive: true, force: true });
  });
  // one member appends on the calling thread; members in one process
  // through the thread pool, and a put is committed once 2 of 3 are durable
  target.floor = (n) =>
    syncedAppendRounds(root, { files: members, quorum: Math.floor(members / 2) + 1, rounds: n, bytes: RECORD_BYTES, mode: members === 1 ? 'inline' : 'pool' });
  if (members === 3) target.handoffFloor = (n) => replicatedAppendRounds(root, { rounds: n, bytes: RECORD_BYTES });
  return target;
}

async function etcd(members: number): Promise<Target & { cluster: EtcdCluster }> {
  const cluster = await startEtcd(members);
  const client = new Etcd3({ hosts: cluster.clients });
  const enc = (s: string) => Buffer.from(s);
  return {
    name: `etcd ×${members}`,
    cluster,
    put: (k, v) => client.kv.put({ key: enc(k), value: enc(v) }),
    get: (k, serializable) => client.kv.range({ key: enc(k), serializable }),
    async cas(k, rev, v) {
      const r = await client.kv.txn({
        compare: [{ key: enc(k), target: 'Mod', result: 'Equal', mod_revision: String(rev) }],
        success: [{ request_put: { key: enc(k), value: enc(v) } }],
      });
      return r.succeeded ? Number(r.header.revision) : 0;
    },
    async modRevision(k) {
      const r = await client.kv.range({ key: enc(k) });
      return r.kvs.length === 0 ? 0 : Number(r.kvs[0]!.mod_revision);
    },
    async watchLatency(n) {
      const w = await client.watch().prefix('watch/').create();
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        const seen = new Promise<void>((r) => w.once('put', () => r()));
        await client.kv.put({ key: enc(`watch/${i}`), value: enc(VALUE) });
        await seen;
        out.push(performance.now() - t0);
      }
      await w.cancel();
      return out;
    },
    async close() {
      client.close();
      await cluster.stop();
    },
  };
}

interface Row {
  workload: string;
  values: Map<string, number>;
  unit: string;
}

async function measure(t: Target, rows: Row[]): Promise<void> {
  const rec = (workload: string, unit: string, v: number): void => {
    let row = rows.find((r) => r.workload === workload);
    if (row === undefined) {
      row = { workload, values: new Map(), unit };
      rows.push(row);
    }
    row.values.set(t.name, v);
  };
  const log = (w: string, r: RunResult): void =>
    console.log(`  ${t.name.padEnd(12)} ${w.padEnd(28)} ${fmt(r.perSecond).padStart(9)} ops/s  p50 ${fmt(r.p50Ms, 2)} ms  p99 ${fmt(r.p99Ms, 2)} ms`);
  // Warm-up (and the keys to read), one at a time: the first seconds of a
  // new database are slower than what follows, on both sides.
  for (let i = 0; i < N.warm; i++) await t.put(`k/${i % 1000}`, VALUE);
  let r = await runLoad(N.put1, 1, (i) => t.put(`p1/${i}`, VALUE));
  log('put, 1 in flight', r);
  rec('put, 1 in flight', 'ops/s', r.perSecond);
  r = await runLoad(N.put64, 64, (i) => t.put(`p64/${i}`, VALUE));
  log('put, 64 in flight', r);
  rec('put, 64 in flight', 'ops/s', r.perSecond);
  for (const serializable of [true, false]) {
    const kind = serializable ? 'serializable' : 'linearizable';
    r = await runLoad(N.get1, 1, (i) => t.get(`k/${i % 1000}`, serializable));
    log(`${kind} get, 1 in flight`, r);
    rec(`${kind} get, 1 in flight`, 'ops/s', r.perSecond);
    r = await runLoad(N.get64, 64, (i) => t.get(`k/${i % 1000}`, serializable));
    log(`${kind} get, 64 in flight`, r);
    rec(`${kind} get, 64 in flight`, 'ops/s', r.perSecond);
  }
  // txn compare-and-swap: 64 clients, each on its own key, each CAS on the revision it last wrote
  const clients = 64;
  const revs = await Promise.all(Array.from({ length: clients }, (_, c) => t.put(`cas/${c}`, '0').then(() => t.modRevision(`cas/${c}`))));
  const perClient = Math.ceil(N.cas / clients);
  const casLat: number[] = [];
  const t0 = performance.now();
  await Promise.all(
    revs.map(async (_, c) => {
      for (let j = 0; j < perClient; j++) {
        const s = performance.now();
        const next = await t.cas(`cas/${c}`, revs[c]!, String(j));
        casLat.push(performance.now() - s);
        if (next === 0) throw new Error(`${t.name}: CAS on cas/${c} failed unexpectedly`);
        revs[c] = next;
      }
    }),
  );
  casLat.sort((a, b) => a - b);
  const casSeconds = (performance.now() - t0) / 1000;
  r = { ops: casLat.length, seconds: casSeconds, perSecond: casLat.length / casSeconds, p50Ms: percentile(casLat, 50), p99Ms: percentile(casLat, 99) };
  log('txn CAS, 64 in flight', r);
  rec('txn CAS, 64 in flight', 'ops/s', r.perSecond);
  // the disk's floor just before the watch latency: it drifts within minutes
  const floor = t.floor === undefined ? undefined : await t.floor(N.watch);
  const handoff = t.handoffFloor === undefined ? undefined : await t.handoffFloor(N.watch);
  const lat = (await t.watchLatency(N.watch)).sort((a, b) => a - b);
  console.log(`  ${t.name.padEnd(12)} ${'watch put→event'.padEnd(28)} p50 ${fmt(percentile(lat, 50), 3)} ms  p99 ${fmt(percentile(lat, 99), 3)} ms`);
  rec('watch latency p50', 'ms', percentile(lat, 50));
  rec('watch latency p99', 'ms', percentile(lat, 99));
  if (floor !== undefined) {
    const what = floorLabel(t.name);
    console.log(`  ${t.name.padEnd(12)} ${'disk floor'.padEnd(28)} p50 ${fmt(percentile(floor, 50), 3)} ms  p99 ${fmt(percentile(floor, 99), 3)} ms (${what})`);
    floors.push(
      `${t.name}: watch p50 ${fmt(percentile(lat, 50), 3)} / ${fmt(percentile(floor, 50), 3)} ms = ${fmt(percentile(lat, 50) / percentile(floor, 50), 2)}×, ` +
        `p99 ${fmt(percentile(lat, 99), 3)} / ${fmt(percentile(floor, 99), 3)} ms = ${fmt(percentile(lat, 99) / percentile(floor, 99), 2)}× the floor (${what})`,
    );
  }
  if (handoff !== undefined) {
    const what = 'the same appends with the hand-offs of a put between the event loop, the pool and the members, and no other work';
    console.log(`  ${t.name.padEnd(12)} ${'hand-off floor'.padEnd(28)} p50 ${fmt(percentile(handoff, 50), 3)} ms  p99 ${fmt(percentile(handoff, 99), 3)} ms (${what})`);
    floors.push(
      `${t.name}: watch p50 ${fmt(percentile(lat, 50), 3)} / ${fmt(percentile(handoff, 50), 3)} ms = ${fmt(percentile(lat, 50) / percentile(handoff, 50), 2)}×, ` +
        `p99 ${fmt(percentile(lat, 99), 3)} / ${fmt(percentile(handoff, 99), 3)} ms = ${fmt(percentile(lat, 99) / percentile(handoff, 99), 2)}× the hand-off floor (${what})`,
    );
  }
}

/**
 * Puts with one in flight, in blocks that alternate between the two sides,
 * each quorumkv block compared with the etcd blocks on either side: the
 * disk's synced-write latency drifts by a third within minutes, and the
 * workloads above measure the two sides minutes apart.
 */
const BLOCK_PAUSE_MS = 300;
const BLOCK_WARM_UP = 100;

async function pairedPuts(q: Target, e: Target, pairs: number, perBlock: number): Promise<{ ratios: number[]; median: number; q: number; e: number }> {
  let block = 0;
  const rate = async (t: Target): Promise<number> => {
    const b = block++;
    // the other side's background writes (etcd commits its backend every
    // 100 ms, quorumkv's store writes every 10) end before a block starts,
    // and an untimed warm-up takes the first puts after the pause (slower
    // on both sides, which weighs more on the faster one's short block)
    await new Promise((r) => setTimeout(r, BLOCK_PAUSE_MS));
    await runLoad(BLOCK_WARM_UP, 1, (i) => t.put(`paired/${b}/warm/${i}`, VALUE));
    return (await runLoad(perBlock, 1, (i) => t.put(`paired/${b}/${i}`, VALUE))).perSecond;
  };
  const qRates: number[] = [];
  const eRates = [await rate(e)];
  for (let i = 0; i < pairs; i++) {
    qRates.push(await rate(q));
    eRates.push(await rate(e));
  }
  const ratios = qRates.map((r, i) => r / ((eRates[i]! + eRates[i + 1]!) / 2));
  const mean = (a: number[]): number => a.reduce((x, y) => x + y, 0) / a.length;
  return { ratios, median: percentile([...ratios].sort((a, b) => a - b), 50), q: mean(qRates), e: mean(eRates) };
}

/**
 * Both processes are measured after this long without load: V8 and Go give
 * back memory the load needed and the data does not. V8 shrinks its heap
 * some 20-40 s after the load stops (its memory reducer, which compacts:
 * sampled every 5 s in three runs, the resident set fell from 193-196 MiB
 * to 122-125 MiB between 20 and 40 s, and stayed there to 60 s), so a
 * reading at 30 s caught either side; etcd's resident set is the same from
 * 0 to 60 s after the load.
 */
const RSS_IDLE_MS = 60_000;

function rssQuorumkv(): { rss: number; detail: string } {
  const res = spawnSync(process.execPath, ['--expose-gc', join(import.meta.dirname, 'kv-rss-child.mjs'), String(RSS_IDLE_MS)], { encoding: 'utf8' });
  const m = /RSS (\d+) heapTotal (\d+) heapUsed (\d+) external (\d+)/.exec(res.stdout);
  if (m === null) throw new Error(`kv-rss-child failed (is dist/ built? npm run bench:kv builds it): ${res.stderr}`);
  const mib = (i: number) => fmt(Number(m[i]) / 2 ** 20, 1);
  return { rss: Number(m[1]), detail: `V8 heap ${mib(3)} MiB used of ${mib(2)}, external ${mib(4)}` };
}

async function rssEtcd(): Promise<number> {
  const e = await etcd(1);
  try {
    await runLoad(100_000, 64, (i) => e.put(`rss/${String(i).padStart(6, '0')}`, VALUE));
    await new Promise((r) => setTimeout(r, RSS_IDLE_MS));
    return e.cluster.rss()[0]!;
  } finally {
    await e.close();
  }
}

/** Watch latency against the machine's floors, one line per floor and quorumkv target. */
const floors: string[] = [];

function floorLabel(name: string): string {
  return name.endsWith('×1')
    ? `synced appends of ${RECORD_BYTES} B on the calling thread, one at a time`
    : `three synced appends of ${RECORD_BYTES} B at once through the thread pool, until two are done`;
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  const haveEtcd = etcdAvailable();
  console.log(`bench/kv${quick ? ' (quick)' : ''}: node ${process.version}, etcd ${haveEtcd ? etcdVersion() : 'not installed'}`);
  const pairs: [string, string][] = [];
  const paired: string[] = [];
  const pairedMedian = new Map<string, number>();
  for (const members of [1, 3]) {
    const q = await quorumkv(members);
    try {
      await measure(q, rows);
      if (haveEtcd) {
        const e = await etcd(members);
        try {
          await measure(e, rows);
          const blocks = quick ? 4 : 10;
          const per = quick ? 200 : 500;
          const p = await pairedPuts(q, e, blocks, per);
          const line = `${q.name} / ${e.name}, put, 1 in flight, ${blocks} pairs of blocks of ${per}: ${fmt(p.q)} against ${fmt(p.e)} puts/s; per pair ${p.ratios.map((x) => fmt(x, 2) + '×').join(' ')}; median ${fmt(p.median, 2)}×`;
          console.log(`  ${line}`);
          paired.push(line);
          pairedMedian.set(q.name, p.median);
        } finally {
          await e.close();
        }
        pairs.push([q.name, e.name]);
      }
    } finally {
      await q.close();
    }
  }
  console.log(`\nRSS after 100,000 keys of 256 bytes and ${RSS_IDLE_MS / 1000} s idle (one member, separate process):`);
  const { rss: rq, detail } = rssQuorumkv();
  console.log(`  quorumkv ×1   ${fmt(rq / 2 ** 20, 1)} MiB (${detail})`);
  let re = NaN;
  if (haveEtcd) {
    re = await rssEtcd();
    console.log(`  etcd ×1       ${fmt(re / 2 ** 20, 1)} MiB`);
  }

  console.log('\n| workload | ' + pairs.map(([q, e]) => `${q} | ${e} | ratio`).join(' | ') + ' |');
  console.log('|---|' + pairs.map(() => '---:|---:|---:').join('|') + '|');
  for (const row of rows) {
    const cells = pairs.map(([q, e]) => {
      const a = row.values.get(q) ?? NaN;
      const b = row.values.get(e) ?? NaN;
      // for latencies lower is better: ratio = etcd / quorumkv, so > 1 means quorumkv is faster
      const ratio = row.unit === 'ms' ? b / a : a / b;
      return `${fmt(a, row.unit === 'ms' ? 3 : 0)} | ${fmt(b, row.unit === 'ms' ? 3 : 0)} | ${fmt(ratio, 2)}×`;
    });
    console.log(`| ${row.workload} (${row.unit}) | ${cells.join(' | ')} |`);
  }
  console.log(`\nRSS, 100k × 256 B: quorumkv ${fmt(rq / 2 ** 20, 1)} MiB, etcd ${fmt(re / 2 ** 20, 1)} MiB (quorumkv/etcd = ${fmt(rq / re, 2)})`);
  if (paired.length > 0) console.log(`\nPaired (alternating blocks):\n${paired.map((l) => `  ${l}`).join('\n')}`);
  if (floors.length > 0) console.log(`\nWatch latency against the machine's floors, measured just before it:\n${floors.map((l) => `  ${l}`).join('\n')}`);
  if (pairs.length > 0) {
    // the targets of the store's issue: every throughput at least 3× etcd's,
    // watch p99 under 1 ms, RSS at most etcd's
    const verdict = (ok: boolean): string => (ok ? 'met' : 'NOT met');
    console.log('\nTargets:');
    for (const [q, e] of pairs) {
      const ratios = rows.filter((r) => r.unit === 'ops/s').map((r) => ({ w: r.workload, x: (r.values.get(q) ?? NaN) / (r.values.get(e) ?? NaN) }));
      const low = ratios.filter((r) => !(r.x >= 3));
      const median = pairedMedian.get(q) ?? NaN;
      const p99 = rows.find((r) => r.workload === 'watch latency p99')?.values.get(q) ?? NaN;
      console.log(
        `  ${q}: throughput ≥ 3× etcd ${verdict(low.length === 0 && median >= 3)} (lowest ${fmt(Math.min(...ratios.map((r) => r.x)), 2)}×${low.length > 0 ? `: ${low.map((r) => r.w).join(', ')}` : ''}; paired puts ${fmt(median, 2)}×); ` +
          `watch p99 < 1 ms ${verdict(p99 < 1)} (${fmt(p99, 3)} ms)`,
      );
    }
    console.log(`  RSS ≤ etcd's (one member): ${verdict(rq <= re)} (${fmt(rq / re, 2)}×)`);
  }
}

await main();
