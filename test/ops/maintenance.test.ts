// Maintenance: automatic compaction in both modes, defragmentation on
// classic-level (space reclaimed) and elsewhere (sizes only), hashKv equal on
// every member, and what status() reports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AbstractLevel } from 'abstract-level';
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import { logicalSize } from '../../src/server/maintenance-size.js';
import { MemoryLevel } from 'memory-level';
import { KvNode } from '../../src/server/index.js';
import { VERSION } from '../../src/server/version.js';
import { MemoryNetwork } from '../../src/transport/index.js';
import { DiskCluster, OpsCluster, tempDir } from './ops-cluster.js';

const IDS = ['a', 'b', 'c'];

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = AbstractLevel<any, any, any>;

test('revision auto-compaction keeps the last `retention` revisions on every member', async () => {
  const c = new OpsCluster(IDS, 21);
  c.extra = () => ({ autoCompaction: { mode: 'revision', retention: 5, intervalMs: 200 } });
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    for (let i = 0; i < 20; i++) await c.run(leader.put('k', `v${i}`));
    const current = leader.status().revision;
    for (const id of IDS) {
      const n = c.node(id);
      await c.waitFor(() => n.status().compactRevision === current - 5, 2_000, `member ${id} compacts to current - retention`);
      await assert.rejects(c.run(n.get('k', { revision: current - 6, serializable: true })), (e: unknown) => isQuorumError(e, ErrorCode.REVISION_COMPACTED));
      assert.equal((await c.run(n.get('k', { revision: current - 5, serializable: true })))?.modRevision, current - 5);
    }
  } finally {
    await c.closeAll();
  }
});

test('periodic auto-compaction compacts to the revision current `retentionMs` ago', async () => {
  const c = new OpsCluster(IDS, 22);
  c.extra = () => ({ autoCompaction: { mode: 'periodic', retentionMs: 1_000, intervalMs: 100 } });
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    for (let i = 0; i < 5; i++) await c.run(leader.put('p', `early${i}`));
    const early = leader.status().revision;
    const start = c.clock.now();
    // a put every 50 ms until the early revisions are compacted
    const puts: { at: number; revision: number }[] = [];
    while (leader.status().compactRevision < early) {
      assert.ok(c.clock.now() - start < 5_000, 'the early revisions are compacted within 5 s');
      puts.push({ at: c.clock.now(), revision: (await c.run(leader.put('p', 'late'))).header.revision });
      await c.clock.advanceAsync(50);
    }
    const compacted = leader.status().compactRevision;
    assert.ok(c.clock.now() - start >= 1_000 - 50, 'nothing of the early revisions compacted before the retention has passed');
    // every revision of the last retentionMs is kept
    const recent = puts.filter((p) => p.at > c.clock.now() - 1_000);
    assert.ok(recent.length > 0 && recent.every((p) => p.revision > compacted), `compacted to ${compacted}, the last second's revisions from ${recent[0]?.revision}`);
    for (const id of IDS) await c.waitFor(() => c.node(id).status().compactRevision === compacted, 2_000, `member ${id} compacts`);
  } finally {
    await c.closeAll();
  }
});

/** For runs of many virtual minutes: tick 200 ms (election timeout 2-4 s), leases checked once a second. */
const COARSE_TIMERS = { tickMs: 200, leaseCheckMs: 1_000 };

test("periodic auto-compaction follows etcd 3.4's cadence: a sample every min(retention, 1 h) / 10, a compaction at most every min(retention, 1 h)", async () => {
  // etcd's v3compactor/periodic.go: with --auto-compaction-retention=10m
  // it compacts every 10 minutes, with 2h every hour, each time to the
  // revision sampled a retention ago; a compaction every sample (every
  // minute for 10m) compacts ten times as often as etcd would
  const minute = 60_000;
  for (const { retentionMs, runMs, most } of [
    { retentionMs: 10 * minute, runMs: 45 * minute, most: 4 },
    { retentionMs: 120 * minute, runMs: 330 * minute, most: 4 },
  ]) {
    const c = new OpsCluster(['a'], 23);
    // hours of virtual time: a tick and a lease check twenty times coarser
    // than the cluster's (10 ms, 50 ms) run the timers twenty times less often
    c.extra = () => ({ autoCompaction: { mode: 'periodic', retentionMs }, ...COARSE_TIMERS });
    try {
      await c.startAll();
      const n = await c.waitLeader();
      const compactions: { at: number; revision: number }[] = [];
      const compact = n.compact.bind(n);
      n.compact = ((revision: number, options?: { physical?: boolean }) => {
        compactions.push({ at: c.clock.now(), revision });
        return compact(revision, options);
      }) as typeof n.compact;
      const revisionAt: { at: number; revision: number }[] = [];
      const start = c.clock.now();
      while (c.clock.now() - start < runMs) {
        const put = await c.run(n.put('k', String(c.clock.now())));
        revisionAt.push({ at: c.clock.now(), revision: put.header.revision });
        await c.clock.advanceAsync(minute / 2);
      }
      assert.ok(compactions.length >= 2, `${retentionMs} ms: ${compactions.length} compactions in ${runMs} ms`);
      assert.ok(compactions.length <= most, `${retentionMs} ms: ${compactions.length} compactions in ${runMs} ms, at most ${most} expected`);
      const every = Math.min(retentionMs, 60 * minute);
      // etcd samples at start: the first compaction comes a retention after it (at the check then)
      assert.ok(compactions[0]!.at - start <= retentionMs + minute / 2, `first compaction ${compactions[0]!.at - start} ms after the start, retention ${retentionMs}`);
      for (let i = 1; i < compactions.length; i++) {
        assert.ok(compactions[i]!.at - compactions[i - 1]!.at >= every, `compactions ${compactions[i - 1]!.at} and ${compactions[i]!.at} less than ${every} ms apart`);
      }
      for (const { at, revision } of compactions) {
        // the revision current a retention ago (a sample at most a tenth of it older)
        const kept = revisionAt.filter((r) => r.at <= at - retentionMs);
        // (none of the test's puts that old: the revision before the first)
        const bound = kept.length > 0 ? kept[kept.length - 1]!.revision : revisionAt[0]!.revision - 1;
        assert.ok(revision <= bound, `compaction at ${at} to ${revision} keeps less than the retention`);
        const tooOld = revisionAt.filter((r) => r.at <= at - retentionMs - every / 10 - minute / 2);
        assert.ok(tooOld.length === 0 || revision >= tooOld[tooOld.length - 1]!.revision, `compaction at ${at} to ${revision} keeps more than a tenth of the retention extra`);
      }
    } finally {
      await c.closeAll();
    }
  }
});

test('periodic auto-compaction: a period whose target a compact() call has compacted already counts as done, as etcd\'s ErrCompacted does, and the next compaction waits a whole period', async () => {
  const minute = 60_000;
  const c = new OpsCluster(['a'], 24);
  c.extra = () => ({ autoCompaction: { mode: 'periodic', retentionMs: 10 * minute }, ...COARSE_TIMERS });
  try {
    await c.startAll();
    const n = await c.waitLeader();
    const start = c.clock.now();
    const auto: number[] = [];
    let manual = true;
    const compact = n.compact.bind(n);
    n.compact = ((revision: number, options?: { physical?: boolean }) => {
      if (!manual) auto.push(c.clock.now() - start);
      return compact(revision, options);
    }) as typeof n.compact;
    while (c.clock.now() - start < 25 * minute) {
      await c.run(n.put('k', String(c.clock.now())));
      if (manual && c.clock.now() - start >= 5 * minute) {
        await c.run(n.compact(n.status().revision));
        manual = false;
      }
      await c.clock.advanceAsync(minute / 2);
    }
    // at 10 minutes the target (the revision at the start) was compacted
    // already: done then, so the next compaction comes at 20 minutes
    assert.ok(auto.length > 0, 'an automatic compaction within 25 minutes');
    // (the member starts a moment before `start`, and checks once a minute)
    assert.ok(auto[0]! >= 19 * minute, `the first automatic compaction came ${auto[0]} ms after the start, before 20 minutes`);
  } finally {
    await c.closeAll();
  }
});

for (const ac of [
  { mode: 'revision' as const, retention: 5, intervalMs: 100 },
  { mode: 'periodic' as const, retentionMs: 1_000, intervalMs: 100 },
]) {
  test(`${ac.mode} auto-compaction keeps a bounded number of revision samples on every member, leader or not`, async () => {
    const c = new OpsCluster(IDS, 23);
    c.extra = () => ({ autoCompaction: ac });
    try {
      await c.startAll();
      await c.waitLeader();
      await c.clock.advanceAsync(60_000); // 600 intervals
      for (const id of IDS) {
        // white box: the samples the periodic mode reads, one per interval of the last retentionMs
        const samples = (c.node(id) as unknown as { revisionSamples: unknown[] }).revisionSamples.length;
        assert.ok(samples <= (ac.mode === 'periodic' ? 12 : 0), `${id} keeps ${samples} samples`);
      }
    } finally {
      await c.closeAll();
    }
  });
}

test('auto-compaction proposes one compaction at a time: a compaction slower than intervalMs is not proposed again (each duplicate failed with ErrCompacted)', async () => {
  // etcd's compactors call Compact and wait for it before their next check
  // (v3compactor revision.go, periodic.go); a check every intervalMs that
  // did not wait proposed the same revision again while the first was in
  // flight, and every duplicate entry failed with ErrCompacted on every
  // member, logged as a failed auto-compaction
  for (const ac of [
    { mode: 'revision' as const, retention: 2, intervalMs: 10 },
    { mode: 'periodic' as const, retentionMs: 1_000, intervalMs: 10 },
  ]) {
    const c = new OpsCluster(IDS, 24);
    c.extra = () => ({ autoCompaction: ac });
    try {
      await c.startAll();
      // white box: the compaction entries each member applies, with their outcome
      const applied = new Map<string, string[]>(IDS.map((id) => [id, []]));
      for (const id of IDS) {
        const store = (c.node(id) as unknown as { store: { applyBatch: (e: { request: { compaction?: { revision: number } } | null }[], o?: unknown) => Promise<{ status: string }[]> } }).store;
        const applyBatch = store.applyBatch.bind(store);
        store.applyBatch = async (entries, o) => {
          const results = await applyBatch(entries, o);
          entries.forEach((e, i) => {
            if (e.request?.compaction !== undefined) applied.get(id)!.push(`${e.request.compaction.revision}:${results[i]!.status}`);
          });
          return results;
        };
      }
      const leader = await c.waitLeader();
      c.net.setDelay({ minMs: 30, maxMs: 30 }); // a commit takes longer than intervalMs
      for (let i = 0; i < 10; i++) {
        await c.run(leader.put('k', `v${i}`));
        await c.clock.advanceAsync(150);
      }
      const current = leader.status().revision;
      await c.clock.advanceAsync(2_000);
      const target = ac.mode === 'revision' ? current - 2 : current;
      for (const id of IDS) {
        await c.waitFor(() => c.node(id).status().compactRevision === target, 3_000, `${ac.mode}: member ${id} compacts to ${target}`);
        const entries = applied.get(id)!;
        assert.ok(entries.length > 0, `${ac.mode}: ${id} applied compactions`);
        assert.deepEqual(entries.filter((e) => !e.endsWith(':applied')), [], `${ac.mode}: ${id} applied ${entries.join(' ')}`);
      }
    } finally {
      await c.closeAll();
    }
  }
});

test('an auto-compaction interval longer than a timer can wait (2^31 ms and more) is waited whole on the system clock, not replaced by 1 ms', async () => {
  // Node's setTimeout fires after 1 ms for a delay above 2^31 - 1 ms: a
  // 30-day intervalMs compacted every millisecond, and a periodic retention
  // of 400 days (checked every 40 days) took a revision sample every
  // millisecond, kept for the whole retention
  const day = 24 * 3600 * 1000;
  for (const autoCompaction of [
    { mode: 'revision' as const, retention: 0, intervalMs: 30 * day },
    { mode: 'periodic' as const, retentionMs: 400 * day },
  ]) {
    const node = await KvNode.open({
      id: 'a',
      members: ['a'],
      transport: new MemoryNetwork({ seed: 1 }).transport('a'),
      db: new MemoryLevel({ keyEncoding: 'view', valueEncoding: 'view' }),
      tickMs: 10,
      autoCompaction,
    });
    try {
      while (!node.raft.isLeader) await new Promise((r) => setTimeout(r, 5));
      for (let i = 0; i < 3; i++) await node.put('k', `v${i}`);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(node.status().compactRevision, -1, `${autoCompaction.mode}: nothing compacted before the interval`);
      // white box: the periodic mode takes one sample as it starts, then one per check
      const samples = (node as unknown as { revisionSamples: unknown[] }).revisionSamples.length;
      assert.equal(samples, autoCompaction.mode === 'periodic' ? 1 : 0, `${autoCompaction.mode}: no check before the interval`);
    } finally {
      await node.close();
    }
  }
});

test('defragment reclaims the space of compacted and deleted revisions on classic-level', async () => {
  const { dir, cleanup } = await tempDir('defrag');
  // frequent Raft snapshots keep the Raft log (which shares the database) short
  const c = new DiskCluster(['a'], (id) => `${dir}/${id}`, () => ({ snapshotEntries: 100 }));
  try {
    await c.startAll();
    const n = await c.waitLeader();
    for (let round = 0; round < 4; round++) {
      const puts: Promise<unknown>[] = [];
      for (let i = 0; i < 300; i++) puts.push(n.put(`key${i}`, randomBytes(1024))); // incompressible
      await Promise.all(puts);
    }
    await n.delete('key', { prefix: true });
    await n.compact(n.status().revision, { physical: true });
    for (let i = 0; i < 120; i++) await n.put('small', `${i}`); // a new, small Raft snapshot
    const res = await n.defragment();
    assert.ok(res.sizeBefore > 1_000_000, `the database held the writes (${res.sizeBefore} bytes)`);
    assert.ok(res.sizeAfter < res.sizeBefore / 2, `defragmentation reclaimed space: ${res.sizeBefore} -> ${res.sizeAfter} bytes`);
    assert.equal(n.status().dbSize, res.sizeAfter);
    await n.put('still', 'writable');
  } finally {
    await c.closeAll();
    await cleanup();
  }
});

test('defragment on memory-level reports the size without changing anything', async () => {
  const c = new OpsCluster(['a'], 23);
  try {
    await c.startAll();
    const n = await c.waitLeader();
    for (let i = 0; i < 10; i++) await c.run(n.put(`k${i}`, 'value'));
    const hash = (await n.hashKv()).hash;
    const res = await n.defragment();
    assert.ok(res.sizeBefore > 10 * 'value'.length);
    assert.equal(res.sizeAfter, res.sizeBefore);
    assert.equal((await n.hashKv()).hash, hash);
  } finally {
    await c.closeAll();
  }
});

test('a forced size measure asked for while another is under way measures again after it (defragment reports no older measure)', async () => {
  const c = new OpsCluster(['a'], 25);
  let release = (): void => undefined;
  try {
    await c.startAll();
    const n = await c.waitLeader();
    await c.run(n.put('k0', 'value'));
    // every size measure takes a fresh `mvcc` sublevel of the member's
    // database: the first one begun from here on is held until `release`
    const db = c.dbs.get('a')!;
    const sublevel = db.sublevel.bind(db) as (name: string, opts: object) => AnyDb;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let measures = 0;
    (db as unknown as { sublevel: typeof sublevel }).sublevel = (name, opts) => {
      const sub = sublevel(name, opts);
      if (name !== 'mvcc' || ++measures > 1) return sub;
      const iterator = sub.iterator.bind(sub);
      sub.iterator = ((o: Parameters<typeof iterator>[0]) => {
        const it = iterator(o); // memory-level: a snapshot of the data now
        const nextv = it.nextv.bind(it) as (size: number) => Promise<unknown>;
        (it as unknown as { nextv: typeof nextv }).nextv = async (size) => {
          await gate;
          return nextv(size);
        };
        return it;
      }) as typeof sub.iterator;
      return sub;
    };
    // a background measure (the last one is over a second old) begins with the next apply
    await c.clock.advanceAsync(1_100);
    await c.run(n.put('k1', 'value'));
    assert.equal(measures, 1, 'a background measure is under way');
    await c.run(n.put('big', 'x'.repeat(10_000)));
    await c.clock.advanceAsync(100); // the store's writer has written it
    const current = await logicalSize(sublevel('mvcc', { keyEncoding: 'view', valueEncoding: 'view' }));
    assert.ok(current > 10_000, `the store holds the large value (${current} bytes)`);
    assert.equal(measures, 1, 'the first measure is still under way');

    const defrag = n.defragment(); // its first (forced) measure is asked for now
    release();
    const res = await c.run(defrag);
    assert.equal(res.sizeBefore, current, `sizeBefore ${res.sizeBefore} is a measure begun after defragment() was called, not the one under way`);
    assert.equal(res.sizeAfter, current);
    assert.ok(measures >= 3, `the forced measure measured again after the one under way (${measures} measures)`);
  } finally {
    release();
    await c.closeAll();
  }
});

test('an idle member measures its size within about a second of its last change: the end of a burst of writes, a physical compaction', async () => {
  const c = new OpsCluster(IDS, 26);
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const measured = async (id: string): Promise<number> =>
      logicalSize(c.dbs.get(id)!.sublevel('mvcc', { keyEncoding: 'view', valueEncoding: 'view' }) as unknown as AnyDb);
    const gauge = async (n: KvNode): Promise<number | undefined> =>
      (await n.metricsRegistry.getSingleMetric('etcd_mvcc_db_total_size_in_bytes')!.get()).values.find((v) => v.labels.member === n.id)?.value;
    const check = async (what: string): Promise<void> => {
      for (const id of IDS) {
        const n = c.node(id);
        const size = await measured(id);
        assert.equal(n.status().dbSize, size, `${what}: member ${id} reports the size its store has had for 2 s`);
        assert.equal(n.status().dbSizeInUse, size, `${what}: member ${id}, size in use`);
        assert.equal(await gauge(n), size, `${what}: member ${id}, etcd_mvcc_db_total_size_in_bytes`);
      }
    };
    // the last measure is over a second old: the first put of the burst
    // starts one, and the rest come within the second after it
    await c.clock.advanceAsync(1_100);
    const rev = leader.status().revision;
    for (let i = 0; i < 10; i++) await c.run(leader.put(`burst/${i}`, 'x'.repeat(1_000)));
    for (const id of IDS) await c.waitFor(() => c.node(id).status().revision === rev + 10, 2_000, `member ${id} applies the burst`);
    await c.clock.advanceAsync(2_000); // idle
    await check('after a burst of writes');

    // the old records go once the compaction is applied, in the background
    await c.clock.advanceAsync(1_100);
    const del = await c.run(leader.delete('burst/', { prefix: true }));
    await c.run(leader.compact(del.header.revision, { physical: true }));
    for (const id of IDS) await c.waitFor(() => c.node(id).status().compactRevision === del.header.revision, 2_000, `member ${id} compacts`);
    await c.clock.advanceAsync(2_000); // idle
    assert.ok((await measured(leader.id)) < 5_000, 'the compaction freed the values');
    await check('after a physical compaction');
  } finally {
    await c.closeAll();
  }
});

test('hashKv is equal on every member at the same revision and differs once the data does', async () => {
  const c = new OpsCluster(IDS, 24);
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    for (let i = 0; i < 10; i++) await c.run(leader.put(`h${i}`, `${i}`));
    await c.run(leader.compact(4));
    for (let i = 0; i < 5; i++) await c.run(leader.put(`h${i}`, 'again'));
    const rev = leader.status().revision;
    for (const id of IDS) await c.waitFor(() => c.node(id).status().revision === rev, 2_000, `member ${id} catches up`);
    const at = await Promise.all(IDS.map((id) => c.node(id).hashKv(rev - 3)));
    const now = await Promise.all(IDS.map((id) => c.node(id).hashKv()));
    assert.equal(new Set(at.map((h) => h.hash)).size, 1);
    assert.equal(new Set(now.map((h) => h.hash)).size, 1);
    assert.notEqual(at[0]!.hash, now[0]!.hash);
    assert.equal(now[0]!.revision, rev);
    assert.equal(now[0]!.compactRevision, 4);
    // a lease grant changes no revision, and no hashKv (etcd's HashKV covers
    // the keys only): a member that has not applied it hashes the same
    const lagging = IDS.map((id) => c.node(id)).find((n) => n !== leader)!;
    c.net.isolate(lagging.id);
    await c.run(leader.leaseGrant(60));
    assert.equal(leader.status().revision, rev);
    assert.equal((await leader.hashKv(rev)).hash, now[0]!.hash);
    assert.equal((await lagging.hashKv(rev)).hash, now[0]!.hash);
    c.net.heal();
    await assert.rejects(leader.hashKv(3), (e: unknown) => isQuorumError(e, ErrorCode.REVISION_COMPACTED));
    await assert.rejects(leader.hashKv(rev + 1), (e: unknown) => isQuorumError(e, ErrorCode.FUTURE_REVISION));
  } finally {
    await c.closeAll();
  }
});

test('hashKv differs at one revision between a member that applied a compaction and one that has not: compare it where compactRevision is equal too', async () => {
  const c = new OpsCluster(IDS, 27);
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    for (let i = 0; i < 5; i++) await c.run(leader.put(`h${i}`, `${i}`));
    await c.run(leader.put('h0', 'again'));
    const rev = leader.status().revision;
    for (const id of IDS) await c.waitFor(() => c.node(id).status().revision === rev, 2_000, `member ${id} catches up`);
    const lagging = c.followers()[0]!;
    c.net.isolate(lagging.id);
    await c.run(leader.compact(rev - 1)); // a compaction changes no revision
    const [ahead, behind] = [await leader.hashKv(), await lagging.hashKv()];
    assert.equal(ahead.revision, behind.revision);
    assert.equal(leader.status().revision, lagging.status().revision);
    assert.notEqual(ahead.hash, behind.hash);
    assert.notEqual(ahead.compactRevision, behind.compactRevision);
    c.net.heal();
    await c.waitFor(() => lagging.status().compactRevision === rev - 1, 2_000, 'the lagging member compacts');
    assert.equal((await lagging.hashKv()).hash, ahead.hash);
  } finally {
    await c.closeAll();
  }
});

test('status reports the database size, revisions, Raft term and indexes, leader, learner flag and alarms', async () => {
  const c = new OpsCluster(IDS, 25);
  c.extra = () => ({ quotaBackendBytes: 64 * 1024 * 1024 });
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    await c.run(leader.put('s', 'x'.repeat(2000)));
    await c.run(leader.addMember('d', undefined, { learner: true }));
    const d = await c.start('d', { join: true, members: [...IDS, 'd'] });
    await c.waitFor(() => d.status().revision === 2, 3_000, 'the learner catches up');
    await c.clock.advanceAsync(1_100); // sizes are measured at most every second
    await c.run(leader.put('t', '1'));
    await c.clock.advanceAsync(50);
    for (const n of [leader, d]) {
      const st = n.status();
      assert.equal(st.leader, leader.id);
      assert.equal(st.revision, 3);
      assert.ok(st.raftTerm >= 2);
      assert.ok(st.raftIndex >= st.raftAppliedIndex && st.raftAppliedIndex > 0);
      assert.ok(st.dbSize >= 2000, `dbSize ${st.dbSize}`);
      assert.ok(st.dbSizeInUse >= 2000 && st.dbSizeInUse <= st.dbSize);
      assert.equal(st.quotaBackendBytes, 64 * 1024 * 1024);
      assert.deepEqual(st.alarms, []);
    }
    assert.equal(leader.status().isLearner, false);
    assert.equal(d.status().isLearner, true);
  } finally {
    await c.closeAll();
  }
});

test('close() waits for the size measures and starts none: a quota check that queued one behind a measure under way fails with QUORUMKV_NODE_CLOSED', async () => {
  // a put over the cached size waits for a fresh measure; asked for while
  // a background one ran, its measure began after that one, once close()
  // had stopped waiting for measures: it read the database after close()
  // resolved (the caller may close the database then), and the put failed
  // with QUORUMKV_STORAGE_IO
  const c = new OpsCluster(['a'], 28);
  c.extra = () => ({ quotaBackendBytes: 20_000 });
  let release = (): void => undefined;
  let releaseLater = (): void => undefined;
  try {
    await c.startAll();
    const n = await c.waitLeader();
    await c.run(n.put('k0', 'value'));
    const db = c.dbs.get('a')!;
    const sublevel = db.sublevel.bind(db) as (name: string, opts: object) => AnyDb;
    // the first measure waits for `release`, the later ones for `releaseLater`
    const gate = new Promise<void>((resolve) => (release = resolve));
    const laterGate = new Promise<void>((resolve) => (releaseLater = resolve));
    let measures = 0;
    let reading = 0; // measures reading the database now
    (db as unknown as { sublevel: typeof sublevel }).sublevel = (name, opts) => {
      const sub = sublevel(name, opts);
      if (name !== 'mvcc') return sub;
      const held = ++measures === 1 ? gate : laterGate;
      const iterator = sub.iterator.bind(sub);
      sub.iterator = ((o: Parameters<typeof iterator>[0]) => {
        reading++;
        const it = iterator(o);
        const close = it.close.bind(it);
        it.close = (async () => {
          reading--;
          return close();
        }) as typeof it.close;
        const nextv = it.nextv.bind(it) as (size: number) => Promise<unknown>;
        (it as unknown as { nextv: typeof nextv }).nextv = async (size) => {
          await held;
          return nextv(size);
        };
        return it;
      }) as typeof sub.iterator;
      return sub;
    };
    await c.clock.advanceAsync(1_100);
    await c.run(n.put('k1', 'value')); // a background measure begins with its apply
    assert.equal(measures, 1, 'a background measure is under way');
    const put = n.put('big', 'x'.repeat(25_000)).then(() => 'written', (e: unknown) => e);
    const closing = n.close();
    await c.clock.advanceAsync(100);
    release();
    await c.run(closing);
    assert.equal(reading, 0, 'no measure is reading the database once close() has resolved');
    await db.close(); // the caller's database, closed once the member is
    releaseLater();
    await c.clock.advanceAsync(100);
    const outcome = await c.run(put);
    assert.ok(isQuorumError(outcome, ErrorCode.NODE_CLOSED), `the put fails with QUORUMKV_NODE_CLOSED (${String(outcome)})`);
  } finally {
    release();
    releaseLater();
    await c.closeAll();
  }
});

test("status() reports the package's version, as etcd's StatusResponse reports the server's", async () => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  assert.equal(VERSION, pkg.version, 'VERSION is the version of package.json');
  const net = new MemoryNetwork({ seed: 1 });
  const n = await KvNode.open({ id: 'a', members: ['a'], transport: net.transport('a'), db: new MemoryLevel() as unknown as AnyDb });
  try {
    assert.equal(n.status().version, pkg.version);
  } finally {
    await n.close();
  }
});
