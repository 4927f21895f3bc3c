// Differential test against real etcd 3.4: the same seeded random sequences
// of operations (put, range with every option, delete, txn, compaction, lease
// grant/revoke/time-to-live/list, watch) run against etcd and against the
// MVCC store, and the answers must match exactly: revisions, versions,
// create/mod revisions, txn outcomes, prevKv, error kinds and watch event
// streams (lease TTLs within one second, as they count down in real time).
//
// etcd comes from Debian's `etcd-server` package (`apt-get install -y
// etcd-server`; the CI script installs it) or `ETCD_BIN`. Without it the test
// fails (with a clear message under CI): it never passes silently.
//
// Knobs: ETCD_DIFF_SEQS (default 200) sequences of ETCD_DIFF_OPS (default
// 200) operations, ETCD_DIFF_WORKERS (default 2) etcd processes in
// parallel. A failure prints its seed and sequence; replay one sequence with
//   ETCD_DIFF_SEED=<seed> ETCD_DIFF_SEQ=<n> node scripts/run-tests.mjs test/etcd-diff/etcd-diff.test.ts
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { DiffTarget, NWatchLog, Outcome } from './diff-target.js';
import { findEtcd, startEtcd, type EtcdProcess } from './etcd-process.js';
import { EtcdTarget } from './etcd-target.js';
import { describe, SequenceGenerator, type DiffOp } from './generator.js';
import { StoreTarget } from './store-target.js';

const SEQS = Number(process.env.ETCD_DIFF_SEQS ?? 200);
const OPS = Number(process.env.ETCD_DIFF_OPS ?? 200);
const WORKERS = Number(process.env.ETCD_DIFF_WORKERS ?? 2);
const BASE_SEED = process.env.ETCD_DIFF_SEED !== undefined ? Number(process.env.ETCD_DIFF_SEED) : Math.floor(Math.random() * 2 ** 31);
const ONLY_SEQ = process.env.ETCD_DIFF_SEQ !== undefined ? Number(process.env.ETCD_DIFF_SEQ) : undefined;

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
    case 'ttl':
      return t.leaseTimeToLive(op.handle, op.keys);
    case 'leases':
      return t.leaseLeases();
    case 'watch':
      return { ok: { watch: await t.watch(op.req) } };
  }
}

/** Lease TTLs count down in real time on both sides: accept one second apart. */
function alignTtl(op: DiffOp, a: Outcome, b: Outcome): void {
  if (op.kind !== 'ttl' || !('ok' in a) || !('ok' in b)) return;
  const ta = a.ok.ttl as number;
  const tb = b.ok.ttl as number;
  if (Math.abs(ta - tb) <= 1) b.ok.ttl = ta;
}

class Mismatch extends Error {}

/**
 * etcd catches up a watch that starts in the past in a background loop
 * (every 100 ms); until then a compaction would cancel it, while the store
 * catches up at once. Wait until etcd has delivered what the store did (or
 * one loop period when there was nothing to deliver) so later operations
 * meet both watches in the same state.
 */
async function settleWatch(etcd: EtcdTarget, store: StoreTarget, i: number, start: number, rev: number): Promise<void> {
  if (start <= 0 || start > rev) return;
  const log = await store.watchLog(i);
  await etcd.watchLog(i, log);
  if (log.events.length === 0 && log.canceled === undefined) await new Promise((r) => setTimeout(r, 120));
}

async function runSequence(seq: number, etcd: EtcdTarget, store: StoreTarget): Promise<number> {
  const seed = BASE_SEED + seq;
  const gen = new SequenceGenerator(seed);
  await etcd.begin(seq);
  await store.begin();
  const history: string[] = [];
  let watches = 0;
  const fail = (what: string, want: unknown, got: unknown): never => {
    throw new Mismatch(
      [
        `etcd and the MVCC store differ in sequence ${seq} (replay: ETCD_DIFF_SEED=${BASE_SEED} ETCD_DIFF_SEQ=${seq})`,
        `at: ${what}`,
        `last operations:\n  ${history.slice(-12).join('\n  ')}`,
        `etcd:  ${JSON.stringify(want)}`,
        `store: ${JSON.stringify(got)}`,
      ].join('\n'),
    );
  };
  try {
    for (let i = 0; i < OPS; i++) {
      const s = store.current();
      const op = gen.next({ rev: s.currentRevision(), compactRev: s.compactRevision() });
      history.push(`#${i} ${describe(op).slice(0, 600)}`);
      const [want, got] = await Promise.all([exec(etcd, op), exec(store, op)]);
      alignTtl(op, want, got);
      try {
        assert.deepEqual(got, want);
      } catch {
        fail(`operation #${i}`, want, got);
      }
      if (op.kind === 'watch') {
        await settleWatch(etcd, store, watches, op.req.startRevision ?? 0, s.currentRevision());
        watches++;
      }
    }
    const all = { kind: 'range', req: { key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) } } as const;
    const [wantAll, gotAll] = [await exec(etcd, all), await exec(store, all)];
    if (JSON.stringify(wantAll) !== JSON.stringify(gotAll)) fail('final contents', wantAll, gotAll);
    for (let w = 0; w < watches; w++) {
      const got: NWatchLog = await store.watchLog(w);
      const want = await etcd.watchLog(w, got);
      try {
        assert.deepEqual(got, want);
      } catch {
        fail(`events of watch ${w}`, want, got);
      }
    }
    return OPS;
  } finally {
    await etcd.end();
    await store.end();
  }
}

test(`the MVCC store answers like etcd 3.4 on ${SEQS} random sequences of ${OPS} operations`, { timeout: 600_000 }, async () => {
  const bin = findEtcd();
  if (bin === undefined) {
    const msg =
      'etcd differential test NOT RUN: no etcd binary found (install Debian\'s etcd-server with `apt-get install -y etcd-server`, or set ETCD_BIN)';
    if (process.env.CI) assert.fail(`${msg}; CI must install it (see .ci/run)`);
    console.log(msg);
    assert.fail(msg);
  }
  const seqs = ONLY_SEQ !== undefined ? [ONLY_SEQ] : Array.from({ length: SEQS }, (_, i) => i);
  const workers = Math.max(1, Math.min(WORKERS, seqs.length));
  const procs: EtcdProcess[] = [];
  for (let i = 0; i < workers; i++) {
    const p = await startEtcd(bin); // one at a time: no two ever share a port
    running.push(p);
    procs.push(p);
  }
  const run = `diff-${BASE_SEED}`;
  let ops = 0;
  let next = 0;
  const started = Date.now();
  await Promise.all(
    procs.map(async (p) => {
      const etcd = new EtcdTarget(p.url, run);
      const store = new StoreTarget();
      try {
        while (next < seqs.length) {
          const seq = seqs[next++]!;
          const n = await runSequence(seq, etcd, store);
          ops += n;
        }
      } finally {
        next = seqs.length; // stop the other workers on a failure
        await etcd.close();
      }
    }),
  );
  console.log(`etcd diff: ${seqs.length} sequences, ${ops} operations, seed ${BASE_SEED}, ${Date.now() - started} ms`);
  assert.equal(ops, seqs.length * OPS);
});
