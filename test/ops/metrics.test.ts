// Metrics: etcd's names through a prom-client registry shared by the members
// of an in-process cluster (a `member` label on every series), moving as the
// cluster does; a member's own registry by default; slow fsyncs logged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { format } from 'node:util';
import createDebug from 'debug';
import { Histogram, Registry } from 'prom-client';
import { MemoryLevel } from 'memory-level';
import { ErrorCode, type QuorumError } from '../../src/errors.js';
import { DiskCluster, OpsCluster, tempDir } from './ops-cluster.js';
import { RoundTripTransport } from '../../src/server/metrics-transport.js';
import { KvNode, serverMetrics } from '../../src/server/index.js';
import type { Message, MessageType } from '../../src/raftpb/index.js';
import type { Transport, TransportHandler } from '../../src/transport/index.js';

const IDS = ['a', 'b', 'c'];

type Json = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** The value of `name` for `labels` (summed over other labels); histograms by `_count`/`_sum` suffix. */
function value(json: Json, name: string, labels: Record<string, string>): number {
  let base = name;
  let suffix = '';
  const m = /^(.*)(_count|_sum)$/.exec(name);
  if (m !== null && json.some((x) => x.name === m[1])) {
    base = m[1]!;
    suffix = m[2]!;
  }
  const metric = json.find((x) => x.name === base);
  if (metric === undefined) throw new Error(`no metric ${name}`);
  let total = 0;
  let seen = false;
  for (const v of metric.values as { value: number; labels: Record<string, string | number>; metricName?: string }[]) {
    if (suffix !== '' && v.metricName !== `${base}${suffix}`) continue;
    if (suffix === '' && v.metricName !== undefined && v.metricName !== base) continue;
    if (!Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)) continue;
    total += v.value;
    seen = true;
  }
  if (!seen) throw new Error(`no series of ${name} with ${JSON.stringify(labels)}`);
  return total;
}

test('a shared registry reports every member, and the metrics move with leader changes, proposals, fsyncs, watches and leases', async () => {
  const registry = new Registry();
  const c = new OpsCluster(IDS, 51);
  c.extra = () => ({ metrics: { registry } });
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    for (const id of IDS) await c.waitFor(() => c.node(id).status().leader !== '', 2_000, `member ${id} knows the leader`);
    let json = await registry.getMetricsAsJSON();
    for (const id of IDS) {
      assert.equal(value(json, 'etcd_server_has_leader', { member: id }), 1);
      assert.ok(value(json, 'etcd_server_leader_changes_seen_total', { member: id }) >= 1);
      assert.equal(value(json, 'etcd_server_is_leader', { member: id }), id === leader.id ? 1 : 0);
      assert.ok(value(json, 'etcd_disk_wal_fsync_duration_seconds_count', { member: id }) > 0, 'the fsync histogram fills');
    }
    const committed = value(json, 'etcd_server_proposals_committed_total', { member: leader.id });
    const follower = c.followers()[0]!;
    const w = follower.watch('w', { prefix: true });
    const lease = await c.run(leader.leaseGrant(600));
    for (let i = 0; i < 5; i++) await c.run(follower.put(`w${i}`, `${i}`));
    await c.clock.advanceAsync(50);
    json = await registry.getMetricsAsJSON();
    assert.ok(value(json, 'etcd_server_proposals_committed_total', { member: leader.id }) >= committed + 6, 'proposals committed grows');
    assert.ok(value(json, 'etcd_server_proposals_applied_total', { member: follower.id }) >= committed + 6);
    assert.equal(value(json, 'etcd_server_proposals_pending', { member: follower.id }), 0);
    assert.ok(value(json, 'etcd_disk_backend_commit_duration_seconds_count', { member: follower.id }) >= 1);
    assert.equal(value(json, 'etcd_debugging_mvcc_watcher_total', { member: follower.id }), 1);
    assert.equal(value(json, 'etcd_debugging_mvcc_watcher_total', { member: leader.id }), 0);
    assert.equal(value(json, 'etcd_debugging_mvcc_slow_watcher_total', { member: follower.id }), 0);
    assert.equal(value(json, 'etcd_debugging_lease_total', { member: follower.id }), 1);
    assert.equal(value(json, 'etcd_debugging_lease_granted_total', { member: follower.id }), 1);
    assert.equal(value(json, 'etcd_debugging_mvcc_current_revision', { member: follower.id }), 6);
    assert.ok(value(json, 'etcd_mvcc_db_total_size_in_bytes', { member: follower.id }) >= 0);
    assert.equal(value(json, 'etcd_server_quota_backend_bytes', { member: follower.id }), 2 * 1024 ** 3);
    assert.ok(value(json, 'etcd_network_peer_round_trip_time_seconds_count', { member: leader.id, To: follower.id }) > 0, 'the leader times heartbeats');
    await w.cancel();
    await c.run(leader.leaseRevoke(lease.id));

    // an isolated follower loses its leader after an election timeout; the others keep theirs
    const isolated = c.followers()[0]!;
    c.net.isolate(isolated.id);
    await c.clock.advanceAsync(450);
    json = await registry.getMetricsAsJSON();
    assert.equal(value(json, 'etcd_server_has_leader', { member: isolated.id }), 0);
    for (const n of c.nodes.values()) if (n !== isolated) assert.equal(value(json, 'etcd_server_has_leader', { member: n.id }), 1);
    const failedBefore = value(json, 'etcd_server_proposals_failed_total', { member: isolated.id });
    await assert.rejects(c.run(isolated.put('x', 'y'), 3_000));
    c.net.heal();

    // a new leader is counted by the members that see it
    const seen = value(json, 'etcd_server_leader_changes_seen_total', { member: isolated.id });
    await c.stop(leader.id);
    const next = await c.waitLeader();
    await c.waitFor(() => isolated.status().leader === next.id, 3_000, 'the formerly isolated member follows the new leader');
    json = await registry.getMetricsAsJSON();
    assert.ok(value(json, 'etcd_server_leader_changes_seen_total', { member: isolated.id }) > seen, 'the leader change is counted');
    assert.ok(value(json, 'etcd_server_proposals_failed_total', { member: isolated.id }) > failedBefore, 'the failed proposal is counted');
    assert.throws(() => value(json, 'etcd_server_has_leader', { member: leader.id }), 'a closed member no longer reports gauges');
    const text = await registry.metrics();
    assert.match(text, new RegExp(`etcd_server_has_leader\\{member="${next.id}"\\} 1`));
  } finally {
    await c.closeAll();
  }
});

test('without a registry each member gets its own, with only its own series', async () => {
  const c = new OpsCluster(['a', 'b'], 52);
  try {
    await c.startAll();
    await c.waitLeader();
    const a = c.node('a');
    const b = c.node('b');
    assert.notEqual(a.metricsRegistry, b.metricsRegistry);
    const json = await a.metricsRegistry.getMetricsAsJSON();
    assert.equal(value(json, 'etcd_server_has_leader', { member: 'a' }), 1);
    assert.throws(() => value(json, 'etcd_server_has_leader', { member: 'b' }));
  } finally {
    await c.closeAll();
  }
});

test('a Raft log write slower than slowFsyncMs is logged as a warning', async () => {
  const lines: string[] = [];
  const saved = { log: createDebug.log, enabled: createDebug.disable() };
  createDebug.log = (...args: unknown[]) => lines.push(format(...args));
  createDebug.enable('quorumkv:server');
  const c = new OpsCluster(['a'], 53);
  c.extra = () => ({ slowFsyncMs: 0 });
  try {
    await c.startAll();
    const n = await c.waitLeader();
    await c.run(n.put('k', 'v'));
    assert.ok(lines.some((l) => /\[a\] WARN slow fsync of the Raft log: \d+ ms \(threshold 0 ms\)/.test(l)), lines.join('\n'));
  } finally {
    await c.closeAll();
    createDebug.log = saved.log;
    createDebug.enable(saved.enabled);
  }
});

test('a member stopped by a fatal error, or removed from the cluster, reports no leader', async () => {
  const registry = new Registry();
  const c = new OpsCluster(['a', 'b', 'c', 'd'], 54);
  c.extra = () => ({ metrics: { registry } });
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    for (const n of c.nodes.values()) await c.waitFor(() => n.status().leader !== '', 2_000, `member ${n.id} knows the leader`);
    const [stopped, removed] = c.followers();
    stopped!.on('error', () => undefined);
    stopped!.raft.stopOnFatal(new Error('a broken invariant'));
    await c.run(leader.removeMember(removed!.id));
    await c.waitFor(() => removed!.raft.removed, 2_000, 'the removed member stops');
    await c.clock.advanceAsync(1_000);
    const json = await registry.getMetricsAsJSON();
    // it takes no part in the cluster any more: it follows no leader
    assert.equal(value(json, 'etcd_server_has_leader', { member: stopped!.id }), 0, 'the stopped member');
    assert.equal(value(json, 'etcd_server_has_leader', { member: removed!.id }), 0, 'the removed member');
    assert.equal(value(json, 'etcd_server_has_leader', { member: leader.id }), 1);
  } finally {
    await c.closeAll();
  }
});

test('the peer round trip is timed from the heartbeat a response answers: a lost heartbeat adds no inflated sample', async () => {
  // the response to any later heartbeat was taken for the answer to the
  // lost one, timed from it: one sample of up to an election timeout
  const sent: Message[] = [];
  let handler!: TransportHandler;
  const inner: Transport = {
    id: 'a',
    maxMessageBytes: undefined,
    start: (h) => {
      handler = h;
      return Promise.resolve();
    },
    send: (ms) => void sent.push(...ms),
    addPeer: () => undefined,
    removePeer: () => undefined,
    close: () => Promise.resolve(),
  };
  let t = 0;
  const samples: number[] = [];
  const rt = new RoundTripTransport(inner, () => t, (_to, s) => samples.push(s), 100);
  const received: Message[] = [];
  await rt.start({ receive: (m) => received.push(m), reportUnreachable: () => undefined, reportSnapshot: () => undefined });
  const emptyMessage = (type: MessageType, to: string): Message => ({ type, to, from: '', term: 0, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 });
  const heartbeat = (context?: Uint8Array): Message => ({ ...emptyMessage('MsgHeartbeat', 'b'), from: 'a', term: 1, ...(context !== undefined ? { context } : {}) });
  /** What the follower's Raft answers to `hb`: its context echoed. */
  const answer = (hb: Message): Message => ({ ...emptyMessage('MsgHeartbeatResp', 'a'), from: 'b', term: 1, ...(hb.context !== undefined ? { context: hb.context } : {}) });

  rt.send([heartbeat()]); // lost
  t = 10;
  rt.send([heartbeat()]); // lost too
  t = 20;
  rt.send([heartbeat()]);
  t = 21;
  handler.receive(answer(sent[2]!));
  assert.ok(samples.every((s) => s <= 0.0015), `samples ${JSON.stringify(samples)}: none longer than the 1 ms round trip`);
  assert.equal(received.length, 1);
  assert.equal(received[0]!.context, undefined, 'the member receives the response as Raft sent it');

  // a heartbeat timed once the lost ones are forgotten gives its round trip
  t = 200;
  rt.send([heartbeat()]);
  t = 203;
  handler.receive(answer(sent[3]!));
  assert.deepEqual(samples, [0.003]);

  // a ReadIndex heartbeat keeps its context both ways
  const ctx = new TextEncoder().encode('a/1');
  t = 300;
  rt.send([heartbeat(ctx)]);
  assert.deepEqual(sent[4]!.context, ctx);
  handler.receive(answer(sent[4]!));
  assert.deepEqual(received[2]!.context, ctx);
});

test('etcd_debugging_lease_total counts the leases without listing them in order on each scrape', async () => {
  // before: each scrape sorted every lease (Lessor.leases()) to count them
  const c = new OpsCluster(['a'], 54);
  try {
    await c.startAll();
    const n = await c.waitLeader();
    for (let i = 0; i < 3; i++) await c.run(n.leaseGrant(60));
    const lessor = n.store.lessor;
    const leases = lessor.leases.bind(lessor);
    let listed = 0;
    lessor.leases = () => {
      listed++;
      return leases();
    };
    const json = await n.metricsRegistry.getMetricsAsJSON();
    assert.equal(value(json, 'etcd_debugging_lease_total', { member: 'a' }), 3);
    assert.equal(listed, 0, 'the scrape listed the leases');
  } finally {
    await c.closeAll();
  }
});

test('a registry holding a metric of the same name is refused without registering any: freed, it takes the metrics', async () => {
  // before: the metrics registered before the clash stayed, and every later
  // open with the registry failed on them
  const registry = new Registry();
  new Histogram({ name: 'etcd_disk_wal_fsync_duration_seconds', help: 'the application’s own', registers: [registry] });
  const c = new OpsCluster(['a'], 55);
  c.extra = () => ({ metrics: { registry } });
  try {
    await assert.rejects(c.start('a'), (err: QuorumError) => {
      assert.equal(err.code, ErrorCode.INVALID_CONFIG);
      assert.match(err.message, /etcd_disk_wal_fsync_duration_seconds/);
      return true;
    });
    assert.deepEqual(
      registry.getMetricsAsArray().map((m) => m.name),
      ['etcd_disk_wal_fsync_duration_seconds'],
      'nothing of the failed open is left in the registry',
    );
    registry.removeSingleMetric('etcd_disk_wal_fsync_duration_seconds');
    await c.start('a');
    await c.waitLeader();
    const json = await registry.getMetricsAsJSON();
    assert.equal(value(json, 'etcd_server_has_leader', { member: 'a' }), 1);
  } finally {
    await c.closeAll();
  }
});

test('a second member of the same id in a registry is refused before it opens anything', async () => {
  // before: it was refused only once fully open, its Raft node started on
  // the data, which it kept as its own, and its log writes counted in the
  // other member's fsync histogram
  const registry = new Registry();
  const c = new OpsCluster(['a', 'b', 'c'], 56);
  c.extra = () => ({ metrics: { registry } });
  const other = new OpsCluster(['a'], 57);
  const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
  try {
    await c.startAll();
    await c.waitLeader();
    const fsyncs = value(await registry.getMetricsAsJSON(), 'etcd_disk_wal_fsync_duration_seconds_count', { member: 'a' });
    await assert.rejects(
      KvNode.open({ id: 'a', members: ['a'], transport: other.net.transport('a'), db, clock: other.clock, tickMs: 10, metrics: { registry } }),
      (err: QuorumError) => {
        assert.equal(err.code, ErrorCode.INVALID_CONFIG);
        assert.match(err.message, /member a already reports metrics to this registry/);
        return true;
      },
    );
    assert.equal(value(await registry.getMetricsAsJSON(), 'etcd_disk_wal_fsync_duration_seconds_count', { member: 'a' }), fsyncs);
    if (db.status !== 'open') await db.open();
    assert.deepEqual(await db.keys().all(), [], 'the failed open wrote nothing');
    // an open that fails gives its id up
    await assert.rejects(
      KvNode.open({ id: 'd', transport: other.net.transport('d'), db: c.dbs.get('b')!, clock: other.clock, metrics: { registry } }),
      /the data belongs to member b/,
    );
    const afterFailed = await registry.getMetricsAsJSON();
    assert.throws(() => value(afterFailed, 'etcd_disk_wal_fsync_duration_seconds_count', { member: 'd' }), /no series/, 'the failed open leaves no series');
    serverMetrics(registry).reserve('d');
    serverMetrics(registry).unreserve('d');
    // the id is free again once the member closes
    await c.stop('a');
    await c.start('a');
    const json = await registry.getMetricsAsJSON();
    assert.ok(value(json, 'etcd_disk_wal_fsync_duration_seconds_count', { member: 'a' }) >= fsyncs);
  } finally {
    await c.closeAll();
    await db.close();
  }
});

test('the fsync histogram keeps the log writes made while the member opened', async () => {
  // before: the member's series were set to zero once it was open, after its
  // first synced log writes (a new member's bootstrap) had been observed
  const lines: string[] = [];
  const saved = { log: createDebug.log, enabled: createDebug.disable() };
  createDebug.log = (...args: unknown[]) => lines.push(format(...args));
  createDebug.enable('quorumkv:server');
  const { dir, cleanup } = await tempDir('metrics-open');
  const registry = new Registry();
  // every synced write is logged as slow, and observed just before
  const c = new DiskCluster(['a'], () => dir, () => ({ metrics: { registry }, slowFsyncMs: 0 }));
  const synced = (): number => lines.filter((l) => /\[a\] WARN slow fsync of the Raft log/.test(l)).length;
  try {
    await c.start('a');
    const before = synced();
    const json = await registry.getMetricsAsJSON();
    const after = synced();
    assert.ok(before > 0, 'the log was written as the member opened');
    const counted = value(json, 'etcd_disk_wal_fsync_duration_seconds_count', { member: 'a' });
    assert.ok(counted >= before && counted <= after, `every synced write is counted: ${counted} of ${before}`);
  } finally {
    await c.closeAll();
    await cleanup();
    createDebug.log = saved.log;
    createDebug.enable(saved.enabled);
  }
});
