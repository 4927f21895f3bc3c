// A single KvNode on a CrashableLevel (a crash loses every unsynced write)
// and a virtual clock, driven by one client making one request at a time:
// puts (some with a lease), deletes, txns whose branch depends on the state,
// compactions (some physical), lease grants and revokes. The member crashes
// at random points (while a request is in flight, or right after its
// answer, before the store's batch interval has passed) and restarts. Every
// answered request is applied, in the same order, to a reference MvccStore;
// the request in flight at a crash is applied to it too when the restarted
// member shows its effect. Checked per seed:
// - each answer's revision (and lease id) is the reference's;
// - a serializable read right after each restart is at no revision below
//   the last one answered (the member first catches up);
// - after each restart, once the member has applied its log: the same
//   revision, compaction revision, store hash and lease table as the
//   reference (nothing acknowledged lost, nothing applied twice).
//
// Seeds: QUORUMKV_KV_REPLAY_SEED=<n> replays one seed;
// QUORUMKV_KV_REPLAY_SEEDS=<n> runs seeds 1..n (default 12).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLevel } from 'memory-level';
import { MvccStore, type WriteRequest } from '../../src/mvcc/index.js';
import { VirtualClock } from '../../src/node/index.js';
import { KvNode } from '../../src/server/index.js';
import { putRequest, deleteRequest, txnRequest } from '../../src/server/requests.js';
import { CrashableLevel } from '../../src/storage/index.js';
import { MemoryNetwork } from '../../src/transport/index.js';
import { Rng } from '../node/crash-sim.js';
import { clockScheduler, electionJitter, advanceUntil } from '../node/helpers.js';

const VIEW = { keyEncoding: 'view', valueEncoding: 'view' } as const;
const enc = new TextEncoder();

async function runSeed(seed: number, steps = 120): Promise<{ crashes: number; ops: number; noSpace: number }> {
  const rng = new Rng(seed);
  const clock = new VirtualClock();
  const net = new MemoryNetwork({ seed, scheduler: clockScheduler(clock) });
  const db = new CrashableLevel<Uint8Array, Uint8Array>(VIEW);
  const syncStore = rng.float() < 0.5;
  const backendBatchIntervalMs = rng.pick([0, 10, 50]);
  const snapshotEntries = rng.pick([5, 15, 1000]);
  const snapshotCatchUpEntries = rng.pick([0, 3]);
  const quota = process.env.QUORUMKV_KV_REPLAY_QUOTA !== undefined ? rng.pick([3_000, 6_000, 12_000]) : undefined;
  const ref = await MvccStore.open(new MemoryLevel<Uint8Array, Uint8Array>(VIEW), { minLeaseTtl: 1, limits: { maxTxnOps: Infinity } });
  let refIndex = 0;
  const applyRef = async (req: WriteRequest): Promise<unknown> => {
    const [r] = await ref.applyBatch([{ index: ++refIndex, request: req }]);
    if (r!.status === 'applied') {
      const resp = r!.response as Record<string, { header?: { revision: number }; id?: number }>;
      const inner = Object.values(resp)[0]!;
      if (r!.physical !== undefined) await r!.physical;
      return { revision: inner.header?.revision, id: inner.id };
    }
    return r!.status === 'failed' ? { failed: (r!.error as { code?: string }).code } : { status: r!.status };
  };
  let node: KvNode | undefined;
  let incarnation = 0;
  let crashes = 0;
  let ops = 0;
  let noSpace = 0;
  const ctx = `seed ${seed} (syncStore ${syncStore}, backendBatchIntervalMs ${backendBatchIntervalMs}, snapshotEntries ${snapshotEntries}, catchUp ${snapshotCatchUpEntries})`;
  /**
   * Opens the member; after a crash (`answered`: the last revision answered
   * before it), a serializable read made as soon as it is open must be at
   * no revision below that one (the member first catches up).
   */
  const boot = async (answered?: number, when = ''): Promise<void> => {
    if (db.status !== 'open') await db.open();
    incarnation++;
    node = await KvNode.open({
      id: 'a',
      members: ['a'],
      transport: net.transport('a'),
      db,
      clock,
      tickMs: 10,
      electionTicks: 10,
      requestTimeoutMs: 5_000,
      leaseCheckMs: 50,
      snapshotEntries,
      snapshotCatchUpEntries,
      syncStore,
      backendBatchIntervalMs,
      ...(quota !== undefined ? { quotaBackendBytes: quota } : {}),
      random: electionJitter(seed * 31 + incarnation),
    });
    node.on('error', () => undefined);
    const n = node;
    let got: number | undefined;
    let failed: unknown;
    if (answered !== undefined) {
      n.range({ key: 'k0', serializable: true }).then(
        (r) => (got = r.header.revision),
        (err: unknown) => (failed = err),
      );
    }
    await advanceUntil(clock, () => n.raft.isLeader, 5_000, 'leader');
    if (answered !== undefined) {
      await advanceUntil(clock, () => got !== undefined || failed !== undefined, 5_000, 'serializable read');
      assert.equal(failed, undefined, `${ctx}: ${when}: ${String(failed)}`);
      assert.ok(got! >= answered, `${ctx}: ${when}: a serializable read right after the restart at revision ${got}, ${answered} answered before`);
    }
  };
  const crash = async (): Promise<void> => {
    const n = node!;
    node = undefined;
    await db.crash();
    await n.close().catch(() => undefined);
    crashes++;
  };
  const leases: number[] = [];
  const keys = ['k0', 'k1', 'k2', 'k3'];
  const compare = async (when: string): Promise<void> => {
    const n = node!;
    // everything in the log applied
    await advanceUntil(clock, () => n.raft.appliedIndex >= n.raft.status().commit, 5_000, 'apply');
    await clock.advanceAsync(200);
    const mine = await n.store.hash(0);
    const theirs = await ref.hash(0);
    const got = { rev: n.store.currentRevision(), compact: n.store.compactRevision(), hash: mine.hash, leases: n.store.lessor.leases().map((l) => `${l.id}:${l.ttl}`).join(','), lastLease: n.store.lessor.lastLeaseId() };
    const want = { rev: ref.currentRevision(), compact: ref.compactRevision(), hash: theirs.hash, leases: ref.lessor.leases().map((l) => `${l.id}:${l.ttl}`).join(','), lastLease: ref.lessor.lastLeaseId() };
    assert.deepEqual(got, want, `${ctx}: ${when}`);
  };

  try {
    await boot();
    for (let step = 0; step < steps; step++) {
      const n = node!;
      const r = rng.float();
      let req: WriteRequest;
      let call: () => Promise<unknown>;
      const key = rng.pick(keys);
      if (quota !== undefined && rng.float() < 0.08) {
        // clears NOSPACE through the log (the next write over the quota raises it again)
        await Promise.race([n.disarmAlarm('NOSPACE').catch(() => undefined), clock.advanceAsync(500)]);
        continue;
      }
      if (r < 0.35) {
        const lease = leases.length > 0 && rng.float() < 0.3 ? rng.pick(leases) : 0;
        const value = `v${step}`.padEnd(quota !== undefined ? 300 : 0, '.');
        req = { put: putRequest(key, value, lease !== 0 ? { lease } : {}) };
        call = () => n.put(key, value, lease !== 0 ? { lease } : {}).then((x) => ({ revision: x.header.revision, id: undefined }));
      } else if (r < 0.45) {
        req = { deleteRange: deleteRequest({ key }) };
        call = () => n.delete(key).then((x) => ({ revision: x.header.revision, id: undefined }));
      } else if (r < 0.65) {
        const input = {
          compare: [{ key, target: 'VERSION' as const, result: 'EQUAL' as const, version: 0 }],
          success: [{ put: { key, value: `t${step}` } }],
          failure: [{ deleteRange: { key } }, { put: { key: rng.pick(keys), value: `f${step}` } }],
        };
        req = { txn: txnRequest(input) };
        call = () => n.txn(input).then((x) => ({ revision: x.header.revision, id: undefined }));
      } else if (r < 0.75) {
        const cur = n.store.currentRevision();
        const from = Math.max(1, n.store.compactRevision() + 1);
        const rev = from <= cur ? rng.int(from, cur) : cur;
        const physical = rng.float() < 0.5;
        req = { compaction: { revision: rev, physical } };
        call = () => n.compact(rev, { physical }).then((x) => ({ revision: x.header.revision, id: undefined }));
      } else if (r < 0.88) {
        const ttl = 1000;
        req = { leaseGrant: { ttl } };
        call = () =>
          n.leaseGrant(ttl).then((x) => {
            leases.push(x.id);
            return { revision: x.header.revision, id: x.id };
          });
      } else {
        if (leases.length === 0) continue;
        const id = leases.splice(rng.int(0, leases.length - 1), 1)[0]!;
        req = { leaseRevoke: { id } };
        call = () => n.leaseRevoke(id).then((x) => ({ revision: x.header.revision, id: undefined }));
      }
      let settled = false;
      let outcome: unknown;
      let failed: unknown;
      const p = call().then(
        (v) => {
          settled = true;
          outcome = v;
        },
        (err: unknown) => {
          settled = true;
          failed = err;
        },
      );
      const crashWhileInFlight = rng.float() < 0.06;
      const crashAfter = !crashWhileInFlight && rng.float() < 0.08;
      let waited = 0;
      const crashAt = rng.int(0, 3);
      while (!settled) {
        if (crashWhileInFlight && waited >= crashAt) break;
        await clock.advanceAsync(1);
        waited++;
        if (waited > 20_000) assert.fail(`${ctx}: step ${step} never settled`);
      }
      if (settled) {
        await p;
        ops++;
        if (failed !== undefined) {
          const code = (failed as { code?: string }).code;
          // refused for the quota, before or at apply: nothing in the store
          if (code === 'QUORUMKV_NO_SPACE') {
            noSpace++;
            continue;
          }
          // a refused request changes nothing on either side
          const want = await applyRef(req);
          assert.deepEqual({ failed: code }, want, `${ctx}: step ${step} ${JSON.stringify(Object.keys(req))} failed with ${String(failed)}`);
        } else {
          const want = (await applyRef(req)) as { revision: number; id?: number };
          assert.deepEqual(outcome, { revision: want.revision, id: want.id }, `${ctx}: step ${step} ${Object.keys(req)[0]} answer`);
        }
        if (crashAfter) {
          await clock.advanceAsync(rng.int(0, backendBatchIntervalMs + 2));
          await crash();
          await boot(ref.currentRevision(), `after a crash following step ${step}`);
          await compare(`after a crash following step ${step} (${Object.keys(req)[0]})`);
        }
      } else {
        // crash with the request in flight: applied after the restart or not
        const before = { rev: ref.currentRevision(), compact: ref.compactRevision(), leases: ref.lessor.leases().length };
        await crash();
        await p;
        await boot(before.rev, `after a crash with step ${step} in flight`);
        const n2 = node!;
        await advanceUntil(clock, () => n2.raft.appliedIndex >= n2.raft.status().commit, 5_000, 'apply');
        await clock.advanceAsync(200);
        let applied: boolean;
        if ('leaseGrant' in req) applied = n2.store.lessor.leases().length > before.leases;
        else if ('leaseRevoke' in req) applied = n2.store.lessor.leases().length < before.leases;
        else if ('compaction' in req) applied = n2.store.compactRevision() !== before.compact;
        else applied = n2.store.currentRevision() !== before.rev;
        if (applied) {
          const out = (await applyRef(req)) as { id?: number };
          if ('leaseGrant' in req && out.id !== undefined) leases.push(out.id);
        } else if ('leaseRevoke' in req) {
          leases.push(req.leaseRevoke.id);
        }
        await compare(`after a crash with step ${step} (${Object.keys(req)[0]}) in flight (applied: ${applied})`);
      }
    }
    await crash();
    await boot(ref.currentRevision(), 'at the end');
    await compare('at the end');
  } finally {
    await node?.close().catch(() => undefined);
    await ref.close();
  }
  return { crashes, ops, noSpace };
}

const one = process.env.QUORUMKV_KV_REPLAY_SEED;
const seeds = one !== undefined ? [Number(one)] : Array.from({ length: Number(process.env.QUORUMKV_KV_REPLAY_SEEDS ?? 12) }, (_, i) => i + 1);
for (const seed of seeds) {
  test(`KvNode crash and replay, seed ${seed}: the state after each restart is the reference's`, async () => {
    const r = await runSeed(seed);
    console.log(`seed ${seed}: ${JSON.stringify(r)}`);
    assert.ok(r.ops > 0);
  });
}
