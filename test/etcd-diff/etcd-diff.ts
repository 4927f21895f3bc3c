// Differential test against real etcd 3.4: the same seeded random sequences
// of operations (put, range with every option, delete, txn, compaction,
// lease grant/revoke/keep-alive/time-to-live/list, watch) run against etcd
// and, in lockstep, against other targets whose answers must match etcd's
// exactly: revisions, versions, create/mod revisions, txn outcomes, prevKv,
// error kinds and watch event streams (lease TTLs within one second, as they
// count down in real time). The targets:
// - `store`: the bare MVCC store behind a tiny apply loop (store-target.ts),
//   the fastest way to tell an MVCC difference from a server one;
// - `kvnode-1`: a single-member KvNode on classic-level (kvnode-target.ts),
//   restarted from its data directory before 1% of the operations (its
//   watches resumed from the next revision, as a client does);
// - `kvnode-3`: a 3-member KvNode cluster in this process (MemoryNetwork,
//   memory-level, one follower lagging by 1-2 ms); each operation goes to a
//   seeded random member, so followers forward writes and serve
//   linearizable reads, lease queries and watches; before 3% of the
//   operations leadership moves to another member, and before 2% a member
//   stops for 1-20 operations (leadership moved away first, as etcd does on
//   a graceful stop) and then catches up from the log or the leader's
//   snapshot, its watches resumed on another member meanwhile (the next
//   operation waits until it has caught up).
// When etcd itself stops answering (its watch stream breaks, the client
// reports a connection fault, or an operation hangs for 60 s) the sequence
// runs again from the start, at most twice; the summary counts those runs.
// The etcd client never retries on its own: a write it sent again after a
// connection fault could be applied twice on etcd and once on the targets.
// Known differences (docs/mvcc.md, "Where the store differs from etcd") are
// normalized by the targets.
//
// etcd comes from Debian's `etcd-server` package (`apt-get install -y
// etcd-server`; the CI script installs it) or `ETCD_BIN`. Without it the test
// fails (with a clear message under CI): it never passes silently.
//
// Knobs: ETCD_DIFF_SEQS (default 200) sequences in all (half in each file)
// of ETCD_DIFF_OPS (default 200) operations, ETCD_DIFF_WORKERS (default 3)
// etcd processes per file running sequences in parallel, ETCD_DIFF_TARGETS (default `store,kvnode`) the
// targets compared with etcd, where `kvnode` is kvnode-1 on even sequences
// and kvnode-3 on odd ones (by default every sequence runs on the store and
// on one KvNode shape). The operations of a sequence depend on its seed only,
// not on the targets; kvnode-1 draws its restarts, kvnode-3 its first
// leader, its lagging follower, the member of each operation, its stops and
// the leadership moves from that seed too. A difference the targets'
// owners have not fixed yet gets a `*.pending.ts` reproduction here (left
// out of the default run), and its shape is left out of the sequences of
// the targets it concerns until the reproduction passes.
//
// The sequences are split in two halves, each run by a test file of its
// own (etcd-diff-1.test.ts, etcd-diff-2.test.ts, each with its own base
// seed), so that each stays inside the runner's 5-minute limit per file on
// a loaded machine.
//
// A failure prints the sequence, its seed and the targets that differ, with
// the last operations (and the member each went to). Replay one sequence with
//   ETCD_DIFF_SEED=<seed> ETCD_DIFF_SEQ=<n> node scripts/run-tests.mjs test/etcd-diff/etcd-diff-1.test.ts
// and a KvNode target's failure on that target, next to the store (to see
// whether the bare store differs too), with the command the failure prints:
//   ETCD_DIFF_SEED=<seed> ETCD_DIFF_SEQ=<n> ETCD_DIFF_TARGETS=store,kvnode-3 node scripts/run-tests.mjs test/etcd-diff/etcd-diff-1.test.ts
// (`<seed>` is the run's base seed; sequence n uses seed + n.) The runner
// stops a file after 5 minutes; for longer runs (more or longer sequences)
// add `--test-timeout=3600000`. etcd processes and data directories are
// removed even when the runner stops the file (exit-cleanup.ts).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { alignCompactionTombstones } from './align.js';
import type { DiffTarget, NWatchLog, Outcome, ReferenceTarget } from './diff-target.js';
import { findEtcd, startEtcd, type EtcdProcess } from './etcd-process.js';
import { EtcdTarget, EtcdUnavailable } from './etcd-target.js';
import { describe, SequenceGenerator, type DiffOp } from './generator.js';
import { KvNodeTarget } from './kvnode-target.js';
import { StoreTarget } from './store-target.js';

const SEQS = Number(process.env.ETCD_DIFF_SEQS ?? 200);
const OPS = Number(process.env.ETCD_DIFF_OPS ?? 200);
const WORKERS = Number(process.env.ETCD_DIFF_WORKERS ?? 3);
const BASE_SEED = process.env.ETCD_DIFF_SEED !== undefined ? Number(process.env.ETCD_DIFF_SEED) : Math.floor(Math.random() * 2 ** 31);
const ONLY_SEQ = process.env.ETCD_DIFF_SEQ !== undefined ? Number(process.env.ETCD_DIFF_SEQ) : undefined;
const TARGET_NAMES = ['store', 'kvnode-1', 'kvnode-3'] as const;
type TargetName = (typeof TARGET_NAMES)[number];
/** `kvnode` stands for kvnode-1 on even sequences and kvnode-3 on odd ones. */
const TARGET_SPEC = (process.env.ETCD_DIFF_TARGETS ?? 'store,kvnode')
  .split(',')
  .map((s) => s.trim())
  .filter((s) => s !== '');
for (const t of TARGET_SPEC) {
  if (t !== 'kvnode' && !(TARGET_NAMES as readonly string[]).includes(t)) {
    throw new Error(`ETCD_DIFF_TARGETS: unknown target ${t} (known: ${TARGET_NAMES.join(', ')}, kvnode)`);
  }
}
if (TARGET_SPEC.length === 0) throw new Error('ETCD_DIFF_TARGETS names no target');

/** The targets sequence `seq` runs against (next to etcd); the first is the generator's reference. */
function targetsOf(seq: number): TargetName[] {
  const names = TARGET_SPEC.map((t) => (t === 'kvnode' ? (seq % 2 === 0 ? 'kvnode-1' : 'kvnode-3') : t)) as TargetName[];
  return [...new Set(names)];
}

function makeTarget(name: TargetName): ReferenceTarget {
  return name === 'store' ? new StoreTarget() : new KvNodeTarget(name);
}

const running: EtcdProcess[] = [];
after(async () => {
  await Promise.all(running.map((p) => p.stop()));
});

async function exec(t: DiffTarget, op: DiffOp): Promise<Outcome> {
  switch (op.kind) {
    case 'put':
      return t.put(op.req);
    case 'range':
      return t.range(op.req);
    case 'delete':
      return t.deleteRange(op.req);
    case 'txn':
      return t.txn(op.req);
    case 'compact':
      return t.compact(op.req);
    case 'grant':
      return t.leaseGrant(op.op);
    case 'grantShort': {
      const g = await t.leaseGrant(op.op);
      const r = await t.leaseRevoke(op.op.handle);
      return { ok: { grant: g, revoke: r } };
    }
    case 'revoke':
      return t.leaseRevoke(op.handle);
    case 'keepAlive':
      return t.leaseKeepAlive(op.handle);
    case 'ttl':
      return t.leaseTimeToLive(op.handle, op.keys);
    case 'leases':
      return t.leaseLeases();
    case 'watch': {
      const w = await t.watch(op.req);
      return typeof w === 'number' ? { ok: { watch: w } } : w;
    }
  }
}

/**
 * Lease TTLs count down in real time on both sides: accept one second apart.
 * A leader elected since the grant restarted the TTL with one
 * election timeout (1 s) to spare (docs/mvcc.md), marked `ttlBound:
 * 'restarted'`: accept from etcd's TTL (less a second) to the granted TTL plus
 * one second.
 */
function alignTtl(op: DiffOp, a: Outcome, b: Outcome): void {
  if (op.kind !== 'ttl' || !('ok' in a) || !('ok' in b)) return;
  const ta = a.ok.ttl as number;
  const tb = b.ok.ttl as number;
  const granted = b.ok.granted as number;
  const bound = b.ok.ttlBound;
  delete b.ok.ttlBound;
  if (Math.abs(ta - tb) <= 1) b.ok.ttl = ta;
  else if (bound === 'restarted' && ta - 1 <= tb && tb <= granted + 1) b.ok.ttl = ta;
}

class Mismatch extends Error {}

/** How long one operation may take on one target before the sequence fails (a hang names its operation). */
const OP_DEADLINE_MS = 60_000;

function inTime<T>(p: Promise<T>, what: string, history: string[], onEtcd = false): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const msg = `${what} did not finish in ${OP_DEADLINE_MS / 1000} s\nlast operations:\n  ${history.slice(-12).join('\n  ')}`;
      reject(onEtcd ? new EtcdUnavailable(msg) : new Mismatch(msg));
    },
      OP_DEADLINE_MS,
    );
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/**
 * etcd catches up a watch that starts in the past in a background loop
 * (every 100 ms); until then a compaction would cancel it, while the store
 * catches up at once. Wait until etcd and every other target have delivered
 * what the reference did (or one loop period when there was nothing to
 * deliver) so later operations meet every watch in the same state.
 */
async function settleWatch(etcd: EtcdTarget, targets: ReferenceTarget[], i: number, start: number, rev: number): Promise<void> {
  if (start === 0 || start > rev) return;
  const log = await targets[0]!.watchLog(i);
  await Promise.all([etcd.watchLog(i, log), ...targets.slice(1).map((t) => t.watchLog(i, log))]);
  if (log.events.length === 0 && log.canceled === undefined) await new Promise((r) => setTimeout(r, 120));
}

/** The keys live at `rev` on `target` (a revision it can still read). */
async function liveKeysAt(target: ReferenceTarget, rev: number, history: string[]): Promise<Set<string>> {
  const op = { kind: 'range', req: { key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]), revision: rev, keysOnly: true } } as const;
  const out = await inTime(exec(target, op), `${target.name}: keys live at compaction revision ${rev}`, history, false);
  if (!('ok' in out)) throw new Error(`${target.name} could not read the keys live at compaction revision ${rev}: ${JSON.stringify(out)}`);
  return new Set((out.ok as { kvs: { key: string }[] }).kvs.map((kv) => kv.key));
}

/**
 * etcd reads an event's prevKv when it sends the event, and sends none if a
 * compaction removed the previous version meanwhile (a watcher that fell
 * behind, for instance after a large value); the store takes it when it
 * applies the event (docs/mvcc.md). Drop the target's prevKv where etcd has
 * none and a compaction of the sequence reached the event's revision.
 */
function alignPrevKv(want: NWatchLog, got: NWatchLog, compacted: number): NWatchLog {
  return {
    ...got,
    events: got.events.map((e, i) => {
      const w = want.events[i];
      if (w === undefined || w.prev !== undefined || e.prev === undefined || compacted < e.kv.mod || !same(w.kv, e.kv)) return e;
      const { prev: _prev, ...rest } = e;
      return rest;
    }),
  };
}

/** For two watch logs: where their events first differ (long logs are hard to compare by eye). */
function eventDifference(want: unknown, got: unknown, name: string): string {
  const w = want as Partial<NWatchLog>;
  const g = got as Partial<NWatchLog>;
  if (!Array.isArray(w?.events) || !Array.isArray(g?.events)) return '';
  let i = 0;
  while (i < w.events.length && i < g.events.length && same(w.events[i], g.events[i])) i++;
  return [
    `first difference of etcd and ${name}: event ${i} (etcd ${w.events.length} events${w.canceled ? ', canceled' : ''}, ${name} ${g.events.length}${g.canceled ? ', canceled' : ''})`,
    `  etcd:  ${JSON.stringify(w.events.slice(i, i + 2))}${w.canceled ? ` canceled ${JSON.stringify(w.canceled)}` : ''}`,
    `  ${name}: ${JSON.stringify(g.events.slice(i, i + 2))}${g.canceled ? ` canceled ${JSON.stringify(g.canceled)}` : ''}`,
  ].join('\n');
}

function same(a: unknown, b: unknown): boolean {
  try {
    assert.deepEqual(a, b);
    return true;
  } catch {
    return false;
  }
}

/** Sequences run again because etcd itself stopped answering (see {@link EtcdUnavailable}). */
let etcdRetries = 0;

/**
 * Runs sequence `seq`; when etcd itself stops answering (not a difference),
 * runs it again from the start on a fresh namespace, at most twice.
 */
async function runSequence(seq: number, etcd: EtcdTarget, targets: ReferenceTarget[]): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await runSequenceOnce(seq, attempt, etcd, targets);
    } catch (err) {
      if (!(err instanceof EtcdUnavailable) || attempt >= 2) throw err;
      etcdRetries++;
      console.log(`sequence ${seq}: ${err.message.split('\n')[0]}; running it again`);
    }
  }
}

async function runSequenceOnce(seq: number, attempt: number, etcd: EtcdTarget, targets: ReferenceTarget[]): Promise<number> {
  const seed = BASE_SEED + seq;
  const gen = new SequenceGenerator(seed);
  await etcd.begin(seq, attempt);
  await Promise.all(targets.map((t) => t.begin(seq, seed)));
  const ref = targets[0]!;
  const history: string[] = [];
  let watches = 0;
  /** Every compaction revision of the sequence, with the keys live at it (read when it was made). */
  const compactions = new Map<number, Set<string>>();
  const check = (what: string, want: unknown, got: unknown[]): void => {
    const differ = targets.filter((_, k) => !same(got[k], want));
    if (differ.length === 0) return;
    throw new Mismatch(
      [
        `etcd and ${differ.map((t) => t.name).join(', ')} differ in sequence ${seq} (seed ${seed}; replay: ETCD_DIFF_SEED=${BASE_SEED} ETCD_DIFF_SEQ=${seq}${OPS === 200 ? '' : ` ETCD_DIFF_OPS=${OPS}`} ETCD_DIFF_TARGETS=${[...new Set(['store', ...differ.map((t) => t.name)])].join(',')})`,
        `at: ${what}`,
        `last operations:\n  ${history.slice(-12).join('\n  ')}`,
        `etcd:  ${JSON.stringify(want)}`,
        ...targets.map((t, k) => `${t.name}${differ.includes(t) ? '' : ' (same as etcd)'}: ${JSON.stringify(got[k])}${t instanceof KvNodeTarget ? ` [members: ${t.describe()}]` : ''}`),
        ...differ.map((t) => eventDifference(want, got[targets.indexOf(t)], t.name)),
      ].join('\n'),
    );
  };
  try {
    for (let i = 0; i < OPS; i++) {
      const s = ref.genState();
      const op = gen.next(s);
      const member = await Promise.all(targets.map((t) => (t instanceof KvNodeTarget ? t.next() : undefined)));
      history.push(`#${i} ${describe(op).slice(0, 600)}${member.some((m) => m !== undefined) ? ` -> ${targets.map((t, k) => (member[k] === undefined ? '' : `${t.name}:${member[k]}`)).filter((x) => x !== '').join(' ')}` : ''}`);
      const [want, ...got] = await Promise.all([etcd, ...targets].map((t) => inTime(exec(t, op), `${t.name}: operation #${i}`, history, t === etcd)));
      for (const g of got) alignTtl(op, want!, g);
      check(`operation #${i}`, want, got);
      const compactRev = ref.genState().compactRev;
      if (compactRev > 0 && !compactions.has(compactRev)) compactions.set(compactRev, await liveKeysAt(ref, compactRev, history));
      if (op.kind === 'watch' && 'ok' in want!) {
        await settleWatch(etcd, targets, watches, op.req.startRevision ?? 0, s.rev);
        watches++;
      }
    }
    const all = { kind: 'range', req: { key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) } } as const;
    const [wantAll, ...gotAll] = await Promise.all([etcd, ...targets].map((t) => inTime(exec(t, all), `${t.name}: final contents`, history, t === etcd)));
    check('final contents', wantAll, gotAll);
    const compacted = ref.genState().compactRev;
    for (let w = 0; w < watches; w++) {
      const want = await etcd.watchLog(w, await ref.watchLog(w));
      const got: NWatchLog[] = await Promise.all(targets.map((t) => t.watchLog(w, want)));
      check(`events of watch ${w}`, want, got.map((g) => alignPrevKv(want, alignCompactionTombstones(want, g, compactions), compacted)));
    }
    return OPS;
  } finally {
    await etcd.end();
    for (const t of targets) await t.end();
  }
}

/**
 * Registers the test of part `part` (from 0) of `parts`: the sequences
 * from SEQS * part / parts up to the next part's first (every part runs
 * ETCD_DIFF_SEQ alone when it is set). Each part is a test file of its own
 * (etcd-diff-1.test.ts, etcd-diff-2.test.ts), so that each runs in a
 * process of its own, inside the runner's 5-minute limit per file.
 */
export function diffTest(part: number, parts: number): void {
  const from = Math.floor((SEQS * part) / parts);
  const to = Math.floor((SEQS * (part + 1)) / parts);
  const seqs = ONLY_SEQ !== undefined ? [ONLY_SEQ] : Array.from({ length: to - from }, (_, i) => from + i);
  const what = ONLY_SEQ !== undefined ? `sequence ${ONLY_SEQ}` : `random sequences ${from}..${to - 1} (of ${SEQS})`;
  test(`etcd 3.4 and ${TARGET_SPEC.join(', ')} answer alike on ${what} of ${OPS} operations`, () => runDiff(seqs));
}

async function runDiff(seqs: number[]): Promise<void> {
  const bin = findEtcd();
  if (bin === undefined) {
    const msg =
      'etcd differential test NOT RUN: no etcd binary found (install Debian\'s etcd-server with `apt-get install -y etcd-server`, or set ETCD_BIN)';
    if (process.env.CI) assert.fail(`${msg}; CI must install it (see .ci/run)`);
    console.log(msg);
    assert.fail(msg);
  }
  const workers = Math.max(1, Math.min(WORKERS, seqs.length));
  const procs: EtcdProcess[] = [];
  for (let i = 0; i < workers; i++) {
    const p = await startEtcd(bin); // one at a time: no two ever share a port
    running.push(p);
    procs.push(p);
  }
  const run = `diff-${BASE_SEED}`;
  let next = 0;
  const started = Date.now();
  const counts = new Map<TargetName, number>();
  const kvnodes: KvNodeTarget[] = [];
  await Promise.all(
    procs.map(async (p) => {
      const etcd = new EtcdTarget(p.url, run);
      const mine = new Map<TargetName, ReferenceTarget>();
      const target = (name: TargetName): ReferenceTarget => {
        let t = mine.get(name);
        if (t === undefined) {
          mine.set(name, (t = makeTarget(name)));
          if (t instanceof KvNodeTarget) kvnodes.push(t);
        }
        return t;
      };
      try {
        while (next < seqs.length) {
          const seq = seqs[next++]!;
          const names = targetsOf(seq);
          const n = await runSequence(seq, etcd, names.map(target));
          for (const name of names) counts.set(name, (counts.get(name) ?? 0) + n);
        }
      } finally {
        next = seqs.length; // stop the other workers on a failure
        await etcd.close();
        for (const t of mine.values()) await t.close();
      }
    }),
  );
  const served = (name: string) => {
    const sum = { leader: 0, follower: 0, followerTtl: 0, followerWatches: 0, transfers: 0, restarts: 0, snapshotsInstalled: 0 };
    for (const t of kvnodes) if (t.name === name) for (const k of Object.keys(sum) as (keyof typeof sum)[]) sum[k] += t.served[k];
    return sum;
  };
  const one = served('kvnode-1');
  const three = served('kvnode-3');
  const perTarget = [...counts].map(([name, n]) => `${name} ${n / OPS} sequences`).join(', ');
  console.log(
    [
      `etcd diff: ${seqs.length} sequences of ${OPS} operations (${perTarget}), seed ${BASE_SEED}, ${Date.now() - started} ms, ${etcdRetries} run again because etcd stopped answering`,
      counts.has('kvnode-1') ? `kvnode-1: ${one.restarts} restarts` : '',
      counts.has('kvnode-3')
        ? `kvnode-3: operations served by the leader ${three.leader}, by followers ${three.follower} (${three.followerTtl} TTLs, ${three.followerWatches} watches), ${three.transfers} leadership moves, ${three.restarts} members stopped and started again, ${three.snapshotsInstalled} snapshots installed from the leader`
        : '',
    ]
      .filter((x) => x !== '')
      .join('; '),
  );
  const expected = new Map<TargetName, number>();
  for (const seq of seqs) for (const name of targetsOf(seq)) expected.set(name, (expected.get(name) ?? 0) + OPS);
  assert.deepEqual(counts, expected);
  // the KvNode targets do what they are meant to (the odds of failing by chance are below 1e-8)
  if ((counts.get('kvnode-3') ?? 0) >= 50) assert.ok(three.follower > 0 && three.leader > 0, `kvnode-3 operations by role: ${JSON.stringify(three)}`);
  if ((counts.get('kvnode-3') ?? 0) >= 2000) assert.ok(three.transfers > 0 && three.restarts > 0, `kvnode-3 moved leadership and restarted members: ${JSON.stringify(three)}`);
  if ((counts.get('kvnode-1') ?? 0) >= 2000) assert.ok(one.restarts > 0, `kvnode-1 restarted: ${JSON.stringify(one)}`);
  if ((counts.get('kvnode-3') ?? 0) >= 10_000) assert.ok(three.snapshotsInstalled > 0, `kvnode-3 installed snapshots: ${JSON.stringify(three)}`);
}
