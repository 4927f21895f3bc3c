// KvNode on a 3-member in-process cluster (MemoryNetwork, memory-level,
// virtual clock): linearizable writes and reads from any member, txn, watch,
// leases expiring by the leader's clock, and bad input that changes nothing.
// Deterministic: no seed to replay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import { KvNode, text } from '../../src/server/index.js';
import { encodeAlarmEntry } from '../../src/server/server-entry.js';
import { MemoryNetwork } from '../../src/transport/index.js';
import { MemoryLevel } from 'memory-level';
import type { Clock } from '../../src/node/index.js';
import { KvCluster } from './helpers.js';

const IDS = ['a', 'b', 'c'];

test('a write on any member is readable linearizably on every member with etcd revisions', async () => {
  const c = new KvCluster(IDS);
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const follower = c.followers()[0]!;
    const r1 = await c.run(follower.put('k', 'v1'));
    assert.equal(r1.header.revision, 2);
    const r2 = await c.run(leader.put('k', 'v2', { prevKv: true }));
    assert.equal(r2.header.revision, 3);
    assert.equal(text(r2.prevKv?.value), 'v1');
    for (const id of IDS) {
      const kv = await c.run(c.node(id).get('k'));
      assert.ok(kv !== undefined);
      assert.equal(text(kv.value), 'v2');
      assert.equal(kv.version, 2);
      assert.equal(kv.createRevision, 2);
      assert.equal(kv.modRevision, 3);
    }
    const del = await c.run(follower.delete('k', { prevKv: true }));
    assert.equal(del.deleted, 1);
    assert.equal(del.header.revision, 4);
    assert.equal(await c.run(leader.get('k')), undefined);
  } finally {
    await c.closeAll();
  }
});

test("with MemoryNetwork's duplicate rate at 1, a follower's puts and compare-and-swaps are applied once each", async () => {
  const c = new KvCluster(IDS, 3);
  try {
    await c.startAll();
    await c.waitLeader();
    const follower = c.followers()[0]!;
    const base = (await c.run(follower.put('k', 'v0'))).header.revision;
    c.net.setDuplicateRate(1);
    for (let i = 1; i <= 5; i++) {
      const r = await c.run(follower.put('k', `v${i}`));
      assert.equal(r.header.revision, base + i, `put ${i} has one revision`);
    }
    const cas = await c.run(follower.txn({ compare: [{ key: 'k', target: 'VERSION', result: 'EQUAL', version: 6 }], success: [{ put: { key: 'k', value: 'cas' } }] }));
    assert.equal(cas.succeeded, true);
    assert.equal(cas.header.revision, base + 6);
    assert.ok(c.net.stats().duplicated > 0, 'other messages were duplicated');
    for (const id of IDS) {
      const kv = await c.run(c.node(id).get('k'));
      assert.equal(kv?.version, 7, `member ${id}`);
      assert.equal(kv?.modRevision, base + 6, `member ${id}`);
    }
  } finally {
    await c.closeAll();
  }
});

test('a txn compare-and-swap succeeds once and fails on a stale modRevision', async () => {
  const c = new KvCluster(IDS, 2);
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const put = await c.run(leader.put('lock', 'free'));
    const cas = (value: string) =>
      c.run(
        c.followers()[0]!.txn({
          compare: [{ key: 'lock', target: 'MOD', result: 'EQUAL', modRevision: put.header.revision }],
          success: [{ put: { key: 'lock', value } }],
          failure: [{ range: { key: 'lock' } }],
        }),
      );
    const first = await cas('mine');
    assert.equal(first.succeeded, true);
    const second = await cas('theirs');
    assert.equal(second.succeeded, false);
    const r = second.responses[0]!;
    assert.ok('responseRange' in r);
    assert.equal(text(r.responseRange.kvs[0]!.value), 'mine');
  } finally {
    await c.closeAll();
  }
});

test('prefix: true with a Node Buffer key reads, deletes and watches the prefix and leaves the Buffer as it was', async () => {
  // the prefix end was computed with Buffer#slice, a view of the key: the
  // key itself became its prefix end ("cfg/" -> "cfg0"), so the range
  // [cfg0, cfg0) was empty and the caller's Buffer was changed
  const c = new KvCluster(['a']);
  try {
    await c.startAll();
    const node = await c.waitLeader();
    await c.run(node.put('cfg/a', '1'));
    await c.run(node.put('cfg/b', '2'));
    await c.run(node.put('cfg0', 'outside'));
    const key = Buffer.from('cfg/');
    const r = await c.run(node.range({ key, prefix: true }));
    assert.deepEqual(r.kvs.map((kv) => text(kv.key)), ['cfg/a', 'cfg/b']);
    assert.equal(key.toString(), 'cfg/');
    const w = node.watch(key, { prefix: true });
    assert.equal(key.toString(), 'cfg/');
    const seen: string[] = [];
    w.on('delete', (ev) => seen.push(text(ev.kv.key)));
    const d = await c.run(node.delete(key, { prefix: true }));
    assert.equal(d.deleted, 2);
    assert.equal(key.toString(), 'cfg/');
    await c.waitFor(() => seen.length === 2, 2_000, 'watch events');
    assert.deepEqual(seen, ['cfg/a', 'cfg/b']);
    await w.cancel();
    assert.equal(text((await c.run(node.get('cfg0')))?.value), 'outside');
  } finally {
    await c.closeAll();
  }
});

test("'' with prefix: true is every key in range and delete, as etcd's client makes it (clientv3 WithPrefix); '' alone, and in a compare, is still refused", async () => {
  const c = new KvCluster(['a']);
  try {
    await c.startAll();
    const node = await c.waitLeader();
    await c.run(node.put('a', '1'));
    await c.run(node.put('\xff', '2'));
    const all = await c.run(node.range({ key: '', prefix: true }));
    assert.deepEqual(all.kvs.map((kv) => text(kv.key)), ['a', '\xff']);
    const counted = await c.run(node.txn({ compare: [{ key: '\0', rangeEnd: '\0', target: 'VERSION', result: 'GREATER', version: 0 }], success: [{ range: { key: '', prefix: true, countOnly: true } }] }));
    assert.equal(counted.succeeded, true);
    assert.equal((counted.responses[0] as { responseRange: { count: number } }).responseRange.count, 2);
    // clientv3's Cmp.WithPrefix keeps the empty key (its range end '\0'),
    // which etcd refuses: "etcdserver: key is not provided"
    const before = node.store.currentRevision();
    await assert.rejects(node.txn({ compare: [{ key: '', prefix: true, target: 'VERSION', result: 'GREATER', version: 0 }], success: [{ put: { key: 'c', value: '3' } }] }), { code: 'QUORUMKV_INVALID_ARGUMENT', message: /key is not provided/ });
    assert.equal(node.store.currentRevision(), before);
    await assert.rejects(node.range({ key: '' }), { code: 'QUORUMKV_INVALID_ARGUMENT' });
    await assert.rejects(node.range({ key: '', rangeEnd: 'b' }), { code: 'QUORUMKV_INVALID_ARGUMENT' });
    const d = await c.run(node.delete('', { prefix: true }));
    assert.equal(d.deleted, 2);
    assert.equal((await c.run(node.range({ key: '\0', rangeEnd: '\0' }))).count, 0);
  } finally {
    await c.closeAll();
  }
});

test("lease errors carry etcd's server messages: 'etcdserver: requested lease not found', 'etcdserver: lease already exists'", async () => {
  const c = new KvCluster(['a']);
  try {
    await c.startAll();
    const node = await c.waitLeader();
    const notFound = { code: 'QUORUMKV_LEASE_NOT_FOUND', message: 'etcdserver: requested lease not found' };
    await assert.rejects(c.run(node.put('k', 'v', { lease: 77 })), notFound);
    await assert.rejects(c.run(node.leaseRevoke(77)), notFound);
    await assert.rejects(c.run(node.leaseKeepAlive(77)), notFound);
    await assert.rejects(c.run(node.txn({ success: [{ put: { key: 'k', value: 'v', lease: 77 } }] })), notFound);
    await c.run(node.leaseGrant(60, { id: 5 }));
    await assert.rejects(c.run(node.leaseGrant(60, { id: 5 })), { code: 'QUORUMKV_LEASE_EXISTS', message: 'etcdserver: lease already exists' });
  } finally {
    await c.closeAll();
  }
});

test('a watch on a follower sees the leader writes in revision order with prevKv', async () => {
  const c = new KvCluster(IDS, 3);
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const follower = c.followers()[0]!;
    const w = follower.watch('cfg/', { prefix: true, prevKv: true });
    const seen: string[] = [];
    w.on('put', (ev) => seen.push(`PUT ${text(ev.kv.key)}=${text(ev.kv.value)}@${ev.kv.modRevision} prev=${text(ev.prevKv?.value)}`));
    w.on('delete', (ev) => seen.push(`DELETE ${text(ev.kv.key)}@${ev.kv.modRevision}`));
    await c.run(leader.put('cfg/a', '1'));
    await c.run(leader.put('cfg/a', '2'));
    await c.run(leader.put('other', 'x'));
    await c.run(leader.delete('cfg/a'));
    await c.waitFor(() => seen.length === 3, 2_000, 'watch events');
    assert.deepEqual(seen, ['PUT cfg/a=1@2 prev=', 'PUT cfg/a=2@3 prev=1', 'DELETE cfg/a@5']);
    await w.cancel();
  } finally {
    await c.closeAll();
  }
});

test('watchProgressNotifyIntervalMs sets how often idle progressNotify watches hear the revision', async () => {
  const c = new KvCluster(['a'], 5);
  c.extra = () => ({ watchProgressNotifyIntervalMs: 1_000 });
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    await c.run(leader.put('k', 'v'));
    const w = leader.watch('k', { progressNotify: true });
    const progress: number[] = [];
    w.on('progress', (r) => progress.push(r.header.revision));
    await c.waitFor(() => progress.length >= 2, 2_500, 'two progress notifications');
    assert.deepEqual(progress.slice(0, 2), [2, 2]);
    await w.cancel();
  } finally {
    await c.closeAll();
  }
});

test('requestProgress reaches a watch that is catching up once it has caught up, even with no event to send (etcd #17507)', async () => {
  const c = new KvCluster(['a'], 6);
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const { header } = await c.run(leader.put('bar', '1'));
    // from a past revision: the watch catches up from history first, and
    // finds nothing for its key there
    const w = leader.watch('foo', { startRevision: header.revision });
    const it = w[Symbol.asyncIterator]();
    leader.requestProgress();
    const first = await c.run(it.next(), 2_000);
    assert.equal(first.done, false);
    assert.deepEqual([first.value!.events.length, first.value!.canceled, first.value!.header.revision], [0, false, header.revision]);
    // one request, one notification
    leader.requestProgress();
    const second = await c.run(it.next(), 2_000);
    assert.deepEqual([second.value!.events.length, second.value!.header.revision], [0, header.revision]);
    await w.cancel();
  } finally {
    await c.closeAll();
  }
});

test('a lease expires by the leader clock and its keys are deleted; keep-alive holds it', async () => {
  const c = new KvCluster(IDS, 4);
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const follower = c.followers()[0]!;
    const kept = await c.run(follower.leaseGrant(2));
    const dropped = await c.run(follower.leaseGrant(2));
    assert.ok(dropped.id > kept.id, 'lease ids grow in grant order');
    await c.run(follower.put('kept', 'x', { lease: kept.id }));
    await c.run(follower.put('dropped', 'y', { lease: dropped.id }));
    // keep one lease alive for 5 s of virtual time; let the other expire
    for (let t = 0; t < 5_000; t += 500) {
      await c.run(follower.leaseKeepAlive(kept.id));
      await c.clock.advanceAsync(500);
    }
    assert.equal(await c.run(leader.get('dropped')), undefined);
    assert.equal(text((await c.run(leader.get('kept')))?.value), 'x');
    const ttl = await c.run(leader.leaseTimeToLive(dropped.id));
    assert.equal(ttl.ttl, -1);
    await assert.rejects(c.run(follower.leaseKeepAlive(dropped.id)), (e: unknown) => isQuorumError(e, ErrorCode.LEASE_NOT_FOUND));
    const revoked = await c.run(follower.leaseRevoke(kept.id));
    assert.ok(revoked.header.revision > 0);
    assert.equal(await c.run(leader.get('kept')), undefined);
  } finally {
    await c.closeAll();
  }
});

test('a keep-alive of a lease expired on the leader but not yet revoked waits for the revoke, and if leadership moves first the lease lives on and is renewed (etcd lessor.Renew)', async () => {
  // a long lease check: a wide window between the lease's expiry and its revoke
  const c = new KvCluster(IDS, 41);
  c.extra = () => ({ leaseCheckMs: 10_000 });
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const [b, other] = c.followers();
    const moved = await c.run(leader.leaseGrant(1));
    const revoked = await c.run(leader.leaseGrant(1));
    await c.run(leader.put('held', 'v', { lease: moved.id }));
    await c.clock.advanceAsync(1_200); // past both expiries on the leader, before its lease check
    // (1) leadership moves before the revoke: the keep-alive is not "not found"
    // but served by the new leader, which restarted the TTL
    let answer: string | undefined;
    b!.leaseKeepAlive(moved.id).then(
      (r) => (answer = `ttl ${r.ttl}`),
      (e: Error) => (answer = (e as { code?: string }).code ?? e.message),
    );
    await c.clock.advanceAsync(100);
    assert.equal(answer, undefined, 'no answer while the expired lease is not revoked');
    await c.run(leader.moveLeader(b!.id));
    await c.waitFor(() => answer !== undefined, 5_000, 'the keep-alive answer');
    assert.equal(answer, 'ttl 1');
    assert.equal(text((await c.run(b!.get('held')))?.value), 'v');
    // (2) the other lease expires on the new leader too (its TTL restarted
    // with the election): a keep-alive then waits for the revoke, and is
    // "not found" once it is applied
    await c.clock.advanceAsync(1_500);
    let second: string | undefined;
    other!.leaseKeepAlive(revoked.id).then(
      (r) => (second = `ttl ${r.ttl}`),
      (e: Error) => (second = (e as { code?: string }).code ?? e.message),
    );
    await c.clock.advanceAsync(100);
    assert.equal(second, undefined, 'no answer while the expired lease is not revoked');
    await c.run(b!.leaseRevoke(revoked.id));
    await c.waitFor(() => second !== undefined, 1_000, 'the keep-alive answer');
    assert.equal(second, ErrorCode.LEASE_NOT_FOUND);
  } finally {
    await c.closeAll();
  }
});

test('bad input is rejected with a typed error and changes nothing', async () => {
  const c = new KvCluster(IDS, 5);
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    await c.run(leader.put('a', '1'));
    const before = leader.status().revision;
    await assert.rejects(c.run(leader.put('', 'x')), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_ARGUMENT));
    await assert.rejects(c.run(leader.put('big', new Uint8Array(2 * 1024 * 1024))), (e: unknown) => isQuorumError(e, ErrorCode.REQUEST_TOO_LARGE));
    const ops = Array.from({ length: 129 }, (_, i) => ({ put: { key: `k${i}`, value: 'v' } }));
    await assert.rejects(c.run(leader.txn({ success: ops })), (e: unknown) => isQuorumError(e, ErrorCode.TOO_MANY_TXN_OPS));
    await assert.rejects(
      c.run(leader.txn({ success: [{ put: { key: 'd', value: '1' } }, { put: { key: 'd', value: '2' } }] })),
      (e: unknown) => isQuorumError(e, ErrorCode.DUPLICATE_KEY),
    );
    await assert.rejects(c.run(leader.put('x', 'y', { lease: 12345 })), (e: unknown) => isQuorumError(e, ErrorCode.LEASE_NOT_FOUND));
    await assert.rejects(c.run(leader.get('a', { revision: 99 })), (e: unknown) => isQuorumError(e, ErrorCode.FUTURE_REVISION));
    assert.equal(leader.status().revision, before);
    assert.equal(text((await c.run(leader.get('a')))?.value), '1');
  } finally {
    await c.closeAll();
  }
});

test('compaction makes old revisions unreadable on every member', async () => {
  const c = new KvCluster(IDS, 6);
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    for (let i = 0; i < 5; i++) await c.run(leader.put('k', `v${i}`));
    await c.run(leader.compact(4, { physical: true }));
    for (const id of IDS) {
      const n = c.node(id);
      await c.waitFor(() => n.status().compactRevision === 4, 2_000, 'compaction applied');
      await assert.rejects(c.run(n.get('k', { revision: 3 })), (e: unknown) => isQuorumError(e, ErrorCode.REVISION_COMPACTED));
      assert.equal(text((await c.run(n.get('k', { revision: 4 })))?.value), 'v2');
    }
  } finally {
    await c.closeAll();
  }
});

test('serializable reads are served locally without a ReadIndex round', async () => {
  const c = new KvCluster(IDS, 7);
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    await c.run(leader.put('s', '1'));
    const f = c.followers()[0]!;
    await c.waitFor(() => f.status().revision >= 2, 2_000, 'follower applies');
    // partition the follower away: a serializable read still answers, a linearizable one cannot
    c.net.isolate(f.id);
    const local = await f.get('s', { serializable: true });
    assert.equal(text(local?.value), '1');
    await assert.rejects(c.run(f.get('s'), 5_000), (e: unknown) => isQuorumError(e, ErrorCode.TIMEOUT));
    c.net.heal();
  } finally {
    await c.closeAll();
  }
});

test('a read-only txn is a read, as in etcd (v3_server.go Txn): a ReadIndex round and no log entry, or served locally when all its ranges are serializable', async () => {
  const c = new KvCluster(IDS, 8);
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    await c.run(leader.put('s', '1'));
    const f = c.followers()[0]!;
    await c.waitFor(() => f.status().revision >= 2, 2_000, 'follower applies');
    const ro = { compare: [{ key: 's', target: 'VALUE' as const, result: 'EQUAL' as const, value: '1' }], success: [{ range: { key: 's' } }], failure: [] };
    const index = leader.raft.status().lastIndex;
    for (const n of [leader, f]) {
      const r = await c.run(n.txn(ro));
      assert.equal(r.succeeded, true);
      assert.equal(r.header.revision, 2);
      assert.equal(text((r.responses[0] as { responseRange: { kvs: { value: Uint8Array }[] } }).responseRange.kvs[0]!.value), '1');
    }
    assert.equal(leader.raft.status().lastIndex, index, 'no entry was proposed for the read-only txns');
    // linearizable: it sees a write acknowledged before it began, on any member
    await c.run(leader.put('s', '2'));
    const after = await c.run(f.txn({ success: [{ range: { key: 's' } }] }));
    assert.equal(text((after.responses[0] as { responseRange: { kvs: { value: Uint8Array }[] } }).responseRange.kvs[0]!.value), '2');
    // cut off: a linearizable one cannot answer, a serializable one does, locally
    await c.waitFor(() => f.status().revision >= 3, 2_000, 'follower applies');
    c.net.isolate(f.id);
    const local = await f.txn({ success: [{ range: { key: 's', serializable: true } }] });
    assert.equal(text((local.responses[0] as { responseRange: { kvs: { value: Uint8Array }[] } }).responseRange.kvs[0]!.value), '2');
    await assert.rejects(c.run(f.txn({ success: [{ range: { key: 's' } }, { range: { key: 't', serializable: true } }] }), 5_000), (e: unknown) => isQuorumError(e, ErrorCode.TIMEOUT));
    // compares alone: nothing to mark serializable, so linearizable (etcd
    // 3.4 answers it locally, possibly stale)
    // (no leader known for two election timeouts by now: it fails at once)
    await assert.rejects(c.run(f.txn({ compare: [{ key: 's', target: 'VALUE', result: 'EQUAL', value: '2' }] }), 5_000), (e: unknown) => isQuorumError(e, ErrorCode.NO_LEADER));
    c.net.heal();
  } finally {
    await c.closeAll();
  }
});

test('a bad backendBatchIntervalMs is refused with QUORUMKV_INVALID_CONFIG', async () => {
  const { KvNode } = await import('../../src/server/index.js');
  const { MemoryLevel } = await import('memory-level');
  const { MemoryNetwork } = await import('../../src/transport/index.js');
  for (const bad of [-1, Number.NaN, Infinity, '10' as unknown as number]) {
    const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
    await assert.rejects(
      KvNode.open({ id: 'a', members: ['a'], transport: new MemoryNetwork({ seed: 1 }).transport('a'), db, backendBatchIntervalMs: bad }),
      (e: unknown) => isQuorumError(e, ErrorCode.INVALID_CONFIG) && /backendBatchIntervalMs/.test((e as Error).message),
    );
  }
});

test('members whose election timeouts and txn limits differ apply the same state', async () => {
  // Both settings are per member. The minimum lease TTL follows the election
  // timeout and was applied from each member's own setting (a lease's
  // granted TTL then differed between members, and the hash check raised a
  // CORRUPT alarm); maxTxnOps was checked again at apply (a txn within the
  // proposer's limit failed on a member with a lower one). Both are now
  // decided by the proposer and carried in the entry.
  const c = new KvCluster(IDS, 33);
  c.extra = (id) => (id === 'c' ? { electionTicks: 400, maxTxnOps: 4 } : { maxTxnOps: 16 });
  try {
    await c.startAll();
    await c.waitLeader();
    const a = c.node('a');
    const grant = await c.run(a.leaseGrant(1));
    const ops = Array.from({ length: 8 }, (_, i) => ({ put: { key: `t${i}`, value: 'v' } }));
    await c.run(a.txn({ success: ops }));
    await assert.rejects(c.run(c.node('c').txn({ success: ops })), (e: unknown) => isQuorumError(e, ErrorCode.TOO_MANY_TXN_OPS));
    const revision = a.status().revision;
    for (const id of IDS) await c.waitFor(() => c.node(id).status().raftAppliedIndex >= a.status().raftAppliedIndex, 2_000, `${id} applies`);
    const seen = await Promise.all(
      IDS.map(async (id) => {
        const n = c.node(id);
        const ttl = n.store.leaseTimeToLive({ id: grant.id });
        return { id, grantedTtl: ttl.grantedTtl, revision: n.status().revision, hash: (await c.run(n.hashKv())).hash };
      }),
    );
    for (const s of seen) assert.deepEqual({ ...s, id: 'a' }, { ...seen[0]!, id: 'a' }, `member ${s.id} differs from a: ${JSON.stringify(seen)}`);
    assert.equal(seen[0]!.revision, revision);
    assert.equal(seen[0]!.grantedTtl, grant.ttl);
  } finally {
    await c.closeAll();
  }
});

test('with the system clock, a step of the wall clock does not expire leases', async () => {
  // lease expiry runs on performance.now(): an NTP step or a resumed VM
  // moves Date.now() and must not expire every lease at once (etcd's lessor
  // uses Go's monotonic clock); before, a jump of an hour deleted the key
  const { MemoryLevel } = await import('memory-level');
  const { MemoryNetwork } = await import('../../src/transport/index.js');
  const { KvNode } = await import('../../src/server/index.js');
  const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
  const node = await KvNode.open({ id: 'a', members: ['a'], transport: new MemoryNetwork({ seed: 1 }).transport('a'), db, tickMs: 10, leaseCheckMs: 10 });
  const realNow = Date.now;
  try {
    while (!node.raft.isLeader) await new Promise((r) => setTimeout(r, 5));
    const lease = await node.leaseGrant(600);
    await node.put('held', 'v', { lease: lease.id });
    Date.now = () => realNow() + 3_600_000;
    await new Promise((r) => setTimeout(r, 150)); // many lease checks
    assert.equal(text((await node.get('held'))?.value), 'v');
    assert.ok((await node.leaseTimeToLive(lease.id)).ttl > 590);
  } finally {
    Date.now = realNow;
    await node.close();
    await db.close();
  }
});

test('the leader revokes expired leases at up to 1,000 a second, as etcd does', async () => {
  // etcd's leaseRevokeRate; before, at most 64 revokes per lease check
  // (128 a second with the default 500 ms checks)
  const c = new KvCluster(IDS, 34);
  c.extra = () => ({ leaseCheckMs: 500 });
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const leases = await c.run(Promise.all(Array.from({ length: 600 }, () => leader.leaseGrant(1))));
    await c.run(Promise.all(leases.map((l, i) => leader.put(`l/${i}`, 'v', { lease: l.id }))));
    const granted = c.clock.now();
    await c.waitFor(() => leader.store.leaseLeases().leases.length === 0, 10_000, 'every lease revoked');
    const took = c.clock.now() - granted;
    assert.ok(took <= 2_500, `600 leases of 1 s revoked ${took} virtual ms after the grant`);
    assert.equal((await c.run(leader.range({ key: 'l/', prefix: true, countOnly: true }))).count, 0);
  } finally {
    await c.closeAll();
  }
});

test("a member restarted with the same seeded random answers a new put with its own result, not an old run's", async () => {
  // Proposals are matched to their callers by (origin, seq), and each run
  // starts its seq at a random point. That point came from the injected
  // random, so every run of a member with a seeded one started at the same
  // seq: an entry of the previous run that committed after the restart
  // resolved the new run's first put with its own result (found by an audit).
  const c = new KvCluster(IDS, 35);
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const b = IDS.find((id) => id !== leader.id)!;
    await c.run(leader.put('k0', 'v0'));
    await c.stop(b);
    await c.start(b);
    await c.run(leader.put('k1', 'v1'));
    await c.waitFor(() => c.node(b).raft.appliedIndex >= leader.raft.appliedIndex, 2_000, `${b} catches up`);
    // b's proposal commits without b hearing of it; then b restarts
    c.net.partitionOneWay(leader.id, b);
    const first = c.node(b).put('x', 'from the earlier run').catch(() => undefined);
    const before = leader.raft.status().commit;
    await c.waitFor(() => leader.raft.status().commit > before, 2_000, 'x committed');
    await c.stop(b);
    await first;
    c.net.heal();
    const nb = await c.start(b);
    const y = await c.run(nb.put('y', 'from this run'));
    await c.waitFor(() => nb.raft.appliedIndex >= leader.raft.appliedIndex, 2_000, `${b} applies`);
    const ky = await c.run(nb.get('y', { serializable: true }));
    const kx = await c.run(nb.get('x', { serializable: true }));
    assert.ok(kx !== undefined && ky !== undefined);
    assert.equal(y.header.revision, ky.modRevision, `put y answered at revision ${y.header.revision}; x is at ${kx.modRevision}, y at ${ky.modRevision}`);
  } finally {
    await c.closeAll();
  }
});

test("a keep-alive of a member restarted on a clock that stepped back is answered by its own request, not an earlier run's", async () => {
  // Keep-alives are matched to their callers by a nonce in the request and
  // the leader's answer. The nonce was (clock ms)/(counter from 1), so a run
  // that started again at the time an earlier run had sent a keep-alive (a
  // wall clock stepped back across the restart) took that run's nonce, and
  // the earlier run's answer, applied after the restart, answered it.
  const c = new KvCluster(IDS, 36);
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const b = IDS.find((id) => id !== leader.id)!;
    const lease = await c.run(leader.leaseGrant(60));
    await c.waitFor(() => c.node(b).raft.appliedIndex >= leader.raft.appliedIndex, 2_000, `${b} catches up`);
    // b's keep-alive is applied and answered (lease alive) without b hearing the answer
    c.net.partitionOneWay(leader.id, b);
    const sentAt = c.clock.now();
    const first = c.node(b).leaseKeepAlive(lease.id).catch(() => undefined);
    const before = leader.raft.appliedIndex;
    await c.waitFor(() => leader.raft.appliedIndex >= before + 2, 2_000, 'the keep-alive and its answer applied');
    await c.stop(b);
    await first;
    await c.run(leader.leaseRevoke(lease.id));
    c.net.heal();
    // b restarts with its clock back at the time of the earlier run's keep-alive
    const back = c.clock.now() - sentAt;
    const stepped: Clock = {
      now: () => c.clock.now() - back,
      setTimeout: (fn, ms) => c.clock.setTimeout(fn, ms),
      clearTimeout: (h) => c.clock.clearTimeout(h),
    };
    const nb = await c.start(b, { clock: stepped });
    await assert.rejects(
      c.run(nb.leaseKeepAlive(lease.id)),
      (e: unknown) => isQuorumError(e, ErrorCode.LEASE_NOT_FOUND),
      "the revoked lease's keep-alive took the earlier run's answer",
    );
  } finally {
    await c.closeAll();
  }
});

/** Starts the cluster, writes k = v1 and returns a follower that has applied it. */
async function withCaughtUpFollower(c: KvCluster): Promise<string> {
  await c.startAll();
  const leader = await c.waitLeader();
  await c.run(leader.put('k', 'v1'));
  const follower = IDS.find((id) => id !== leader.id)!;
  await c.waitFor(() => c.node(follower).raft.appliedIndex >= leader.raft.appliedIndex, 2_000, `${follower} catches up`);
  return follower;
}

test('a member removed while it was down is told so by the others when it restarts, and stops serving (etcd: "permanently removed")', async () => {
  const c = new KvCluster(IDS, 37);
  try {
    const gone = await withCaughtUpFollower(c);
    await c.stop(gone);
    await c.run(c.leader()!.removeMember(gone));
    await c.run(c.leader()!.put('k', 'v2'));

    // back on its data, it still counts itself a member (its store says v1);
    // its transport reaches out to the others, which refuse it as removed
    const back = await c.start(gone);
    await c.waitFor(() => back.raft.removed, 5_000, `${gone} is told it was removed`);
    for (const call of [
      () => back.get('k', { serializable: true }),
      () => back.get('k'),
      () => back.put('k', 'v3'),
      () => back.leaseGrant(10),
      () => back.disarmAlarm(),
    ]) {
      await assert.rejects(call(), (e: unknown) => isQuorumError(e, ErrorCode.REMOVED));
    }
    assert.throws(() => back.watch('k'), (e: unknown) => isQuorumError(e, ErrorCode.REMOVED));
    assert.equal(back.status().raftAppliedIndex > 0, true, 'status still answers');
    assert.ok(back.members().voters.includes(gone), 'members() answers (its own last view)');
    assert.ok((await c.run(back.hashKv())).hash !== 0, 'hashKv still answers');
    await c.run(back.defragment());
    // the cluster goes on without it
    const l = c.leader()!;
    assert.notEqual(l.id, gone);
    assert.deepEqual(l.members().voters.sort(), IDS.filter((id) => id !== gone));
    assert.equal(text((await c.run(l.get('k')))!.value), 'v2');
  } finally {
    await c.closeAll();
  }
});

test("a removed member's status() names no leader, as etcd_server_has_leader says", async () => {
  // before: status().leader kept the leader it last followed, for good
  const c = new KvCluster(IDS, 1);
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const gone = c.followers()[0]!;
    assert.equal(gone.status().leader, leader.id);
    await c.run(leader.removeMember(gone.id));
    await c.waitFor(() => gone.raft.removed, 5_000, `${gone.id} stops`);
    const hasLeader = await gone.metricsRegistry.getSingleMetric('etcd_server_has_leader')!.get();
    assert.equal(hasLeader.values[0]?.value, 0);
    assert.equal(gone.status().leader, '');
  } finally {
    await c.closeAll();
  }
});

test('a member cut off while it was removed is told so once it reaches the others: its watches end and its waiting calls fail', async () => {
  const c = new KvCluster(IDS, 38);
  try {
    const gone = await withCaughtUpFollower(c);
    const node = c.node(gone);
    c.net.isolate(gone);
    await c.run(c.leader()!.removeMember(gone));
    assert.equal(node.raft.removed, false, 'cut off, it has not applied its removal');
    const w = node.watch('k');
    const seen: string[] = [];
    const ended = (async () => {
      for await (const res of w) if (res.canceled) seen.push(res.cancelReason);
    })();
    c.net.heal();
    await c.waitFor(() => node.raft.removed, 5_000, `${gone} is told it was removed`);
    await ended;
    assert.deepEqual(seen, ['etcdserver: the member has been permanently removed from the cluster'], 'its watch ended');
    await assert.rejects(node.get('k', { serializable: true }), (e: unknown) => isQuorumError(e, ErrorCode.REMOVED));
  } finally {
    await c.closeAll();
  }
});

test('a member removed while a linearizable read of its waited for the leader leaves no timer of its own behind once closed', async () => {
  // the read's retry timer (a ReadIndex request is asked again after an
  // election timeout) outlived the removal and the close: with the system
  // clock it kept the process alive after close() had resolved
  const c = new KvCluster(IDS, 39);
  /** Each member's timers not fired or cleared yet. */
  const live = new Map<string, Set<unknown>>();
  const tracked = (id: string): Clock => {
    const mine = new Set<unknown>();
    live.set(id, mine);
    return {
      now: () => c.clock.now(),
      setTimeout: (fn, ms) => {
        const h = c.clock.setTimeout(() => {
          mine.delete(h);
          fn();
        }, ms);
        mine.add(h);
        return h;
      },
      clearTimeout: (h) => {
        mine.delete(h);
        c.clock.clearTimeout(h);
      },
    };
  };
  try {
    for (const id of IDS) await c.start(id, { clock: tracked(id) });
    const leader = await c.waitLeader();
    await c.run(leader.put('k', 'v1'));
    const node = c.followers()[0]!;
    await c.waitFor(() => node.raft.appliedIndex >= leader.raft.appliedIndex, 2_000, `${node.id} catches up`);
    c.net.isolate(node.id);
    let read: string | undefined;
    node.get('k').then(
      () => (read = 'served'),
      (e: Error) => (read = (e as { code?: string }).code ?? e.message),
    );
    await c.clock.advanceAsync(50);
    await c.run(leader.removeMember(node.id));
    c.net.heal();
    await c.waitFor(() => read !== undefined, 5_000, 'the read fails');
    assert.equal(read, ErrorCode.REMOVED);
    await c.stop(node.id);
    assert.equal(live.get(node.id)!.size, 0, 'timers of the closed member still pending');
  } finally {
    await c.closeAll();
  }
});

test('a second close() made while the first runs resolves once the member is closed: its data directory opens again at once', async () => {
  // before: the second call returned at once, with the database still open
  // (and locked), so a reopen right after it failed with QUORUMKV_STORAGE_IO
  const dir = mkdtempSync(join(tmpdir(), 'quorumkv-close-twice-'));
  const net = new MemoryNetwork({ seed: 1 });
  try {
    const node = await KvNode.open({ id: 'a', members: ['a'], transport: net.transport('a'), dataDir: dir, tickMs: 10 });
    await node.put('k', 'v');
    const first = node.close();
    await node.close();
    const again = await KvNode.open({ id: 'a', transport: net.transport('a'), dataDir: dir, tickMs: 10 });
    try {
      assert.equal(text((await again.get('k', { serializable: true }))?.value), 'v');
    } finally {
      await first;
      await again.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('defragment, hashKv and snapshotSave that close() overtakes fail with QUORUMKV_NODE_CLOSED, not as a storage fault', async () => {
  // before: the database or the store closed under them, and they failed
  // with QUORUMKV_STORAGE_IO ("defragmentation failed: Database is not
  // open") or QUORUMKV_STORAGE_CLOSED, codes that say the disk failed
  const dir = mkdtempSync(join(tmpdir(), 'quorumkv-close-maintenance-'));
  const net = new MemoryNetwork({ seed: 1 });
  try {
    const node = await KvNode.open({ id: 'a', members: ['a'], transport: net.transport('a'), dataDir: dir, tickMs: 10 });
    for (let i = 0; i < 20; i++) await node.put(`k${i}`, 'v'.repeat(100));
    const outcome = (p: Promise<unknown>): Promise<string> => p.then(() => 'ok', (e: unknown) => (isQuorumError(e) ? e.code : `not a QuorumError: ${String(e)}`));
    const calls: Promise<string>[] = [];
    for (let i = 0; i < 5; i++) {
      calls.push(outcome(node.defragment()), outcome(node.hashKv()), outcome(node.snapshotSave(join(dir, `backup-${i}`))));
    }
    await node.close();
    const seen = new Set(await Promise.all(calls));
    for (const o of seen) assert.ok(o === 'ok' || o === ErrorCode.NODE_CLOSED, `an outcome ${o}`);
    assert.ok(seen.has(ErrorCode.NODE_CLOSED), 'close() overtook some of them');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a second open of a dataDir that is open already fails with QUORUMKV_STORAGE_IO saying it is in use, with the path', async () => {
  // before: "cannot open the database: Database failed to open", abstract-level's
  // message, with the reason (the LOCK held) two causes down
  const dir = mkdtempSync(join(tmpdir(), 'quorumkv-open-twice-'));
  const net = new MemoryNetwork({ seed: 1 });
  try {
    const node = await KvNode.open({ id: 'a', members: ['a'], transport: net.transport('a'), dataDir: dir, tickMs: 10 });
    try {
      await assert.rejects(KvNode.open({ id: 'a', transport: new MemoryNetwork({ seed: 2 }).transport('a'), dataDir: dir, tickMs: 10 }), (err: Error) => {
        assert.ok(isQuorumError(err));
        assert.equal(err.code, ErrorCode.STORAGE_IO);
        assert.match(err.message, /in use by another open/);
        assert.ok(err.message.includes(join(dir, 'kv')), err.message);
        return true;
      });
      // the first member is untouched
      await node.put('k', 'v');
      assert.equal(text((await node.get('k'))?.value), 'v');
    } finally {
      await node.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a dataDir that is not a directory path, or where a file is, fails with a QuorumError: nothing is opened', async () => {
  // before: a raw TypeError (a number), ENOENT (''), EEXIST or ENOTDIR from
  // mkdir, none of them a QuorumError with a code
  const dir = mkdtempSync(join(tmpdir(), 'quorumkv-bad-datadir-'));
  try {
    writeFileSync(join(dir, 'file'), 'x');
    const open = (dataDir: unknown) =>
      KvNode.open({ id: 'a', members: ['a'], transport: new MemoryNetwork({ seed: 1 }).transport('a'), dataDir: dataDir as string, tickMs: 10 });
    for (const bad of ['', 5, {}]) {
      await assert.rejects(open(bad), (err: Error) => {
        assert.ok(isQuorumError(err), `${String(bad)}: ${err.message}`);
        assert.equal(err.code, ErrorCode.INVALID_CONFIG);
        assert.match(err.message, /dataDir must be a non-empty string/);
        return true;
      });
    }
    for (const bad of [join(dir, 'file'), join(dir, 'file', 'sub')]) {
      await assert.rejects(open(bad), (err: Error) => {
        assert.ok(isQuorumError(err), `${bad}: ${err.message}`);
        assert.equal(err.code, ErrorCode.STORAGE_IO);
        assert.ok(err.message.includes(`cannot create the data directory ${bad}`), err.message);
        return true;
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('close() whose Raft log fails to close still closes the store and the database, and reports the failure: the data directory opens again', async () => {
  // before: the failure ended close() before the store and the database
  // were closed, and the data directory stayed locked until the process ended
  const dir = mkdtempSync(join(tmpdir(), 'quorumkv-close-fails-'));
  const net = new MemoryNetwork({ seed: 1 });
  let node: KvNode | undefined;
  try {
    node = await KvNode.open({ id: 'a', members: ['a'], transport: net.transport('a'), dataDir: dir, tickMs: 10 });
    await node.put('k', 'v');
    const storage = (node.raft as unknown as { storage: { close(): Promise<void> } }).storage;
    const closeLog = storage.close.bind(storage);
    storage.close = async () => {
      await closeLog();
      throw new Error('the disk went away');
    };
    await assert.rejects(node.close(), /the disk went away/);
    await assert.rejects(node.close(), /the disk went away/, 'a later call reports the same outcome');
    const again = await KvNode.open({ id: 'a', transport: net.transport('a'), dataDir: dir, tickMs: 10 });
    try {
      assert.equal(text((await again.get('k', { serializable: true }))?.value), 'v');
    } finally {
      await again.close();
    }
  } finally {
    // what a failed close left open (nothing once it closes everything it can)
    const left = node as unknown as { store?: { close(): Promise<void> }; db?: { close(): Promise<void> } } | undefined;
    await left?.store?.close().catch(() => undefined);
    await left?.db?.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('QUORUMKV_NO_LEADER says for how many whole ms no leader has been known', async () => {
  // before: the time came from a clock with fractions of a ms (the system
  // clock's performance.now()) unrounded: "none known for 9799.291555 ms"
  const c = new KvCluster(IDS, 9);
  const fractional: Clock = {
    now: () => c.clock.now() * 1.000001 + 0.291555, // a little fast, in fractions of a ms
    setTimeout: (fn, ms) => c.clock.setTimeout(fn, ms),
    clearTimeout: (h) => c.clock.clearTimeout(h),
  };
  try {
    // alone of three: no leader is ever known
    const a = await c.start('a', { clock: fractional });
    await c.clock.advanceAsync(250);
    await assert.rejects(
      a.put('k', 'v'),
      (e: unknown) => isQuorumError(e, ErrorCode.NO_LEADER) && /none known for \d+ ms/.test((e as Error).message),
    );
  } finally {
    await c.closeAll();
  }
});

test('a lease TTL is raised to ceil(1.5 × election timeout) seconds of the member granting it (etcd minTTL)', async () => {
  // election timeout 10 ms × 250 = 2.5 s: the minimum is ceil(3.75) = 4 s
  const c = new KvCluster(['a'], 35);
  c.extra = () => ({ electionTicks: 250 });
  try {
    await c.startAll();
    const n = await c.waitLeader();
    const ttls: number[] = [];
    for (const ttl of [1, 3, 4, 5]) ttls.push((await c.run(n.leaseGrant(ttl))).ttl);
    assert.deepEqual(ttls, [4, 4, 4, 5]);
  } finally {
    await c.closeAll();
  }
});

test('the minimum lease TTL counts whole ticks first, as etcd: 3 × electionTicks / 2 ticks, rounded down, then up to seconds', async () => {
  // 67 ticks of 10 ms: etcd's (3 × 67) / 2 = 100 ticks = 1 s, so a TTL of
  // 1 s stands (before: ceil(1.5 × 670 ms) = 2 s)
  const c = new KvCluster(['a'], 37);
  c.extra = () => ({ electionTicks: 67 });
  try {
    await c.startAll();
    const n = await c.waitLeader();
    const ttls: number[] = [];
    for (const ttl of [1, 2]) ttls.push((await c.run(n.leaseGrant(ttl))).ttl);
    assert.deepEqual(ttls, [1, 2]);
  } finally {
    await c.closeAll();
  }
});

test('the minimum lease TTL is the whole ticks times tickMs, rounded up to seconds', async () => {
  // 3000 ticks (electionTicks 2000) of 83 ms are 249 s exactly (tickMs is a
  // whole number of ms: with 66.4, the product in binary floating point was
  // 249000.00000000003 ms, and rounded up gave 250 s)
  const c = new KvCluster(['a'], 38);
  c.extra = () => ({ tickMs: 83, electionTicks: 2000, requestTimeoutMs: 60_000 });
  try {
    await c.startAll();
    const n = c.node('a');
    n.raft.campaign();
    await c.waitFor(() => n.raft.isLeader, 10_000, 'a leads');
    const ttls: number[] = [];
    for (const ttl of [1, 249, 250]) ttls.push((await c.run(n.leaseGrant(ttl), 60_000)).ttl);
    assert.deepEqual(ttls, [249, 249, 250]);
  } finally {
    await c.closeAll();
  }
});

test('under a CORRUPT alarm keep-alives are served on every member, lease grants, revokes and compactions fail on every member, lease time-to-live and list on the member named', async () => {
  const c = new KvCluster(IDS, 36);
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const [named, other] = c.followers() as [KvNode, KvNode];
    const lease = await c.run(leader.leaseGrant(60));
    await c.run(leader.put('k', 'v', { lease: lease.id }));
    await c.run(leader.raft.propose(encodeAlarmEntry({ action: 'activate', memberId: named.id, alarm: 'CORRUPT' })));
    await c.waitFor(() => IDS.every((id) => c.node(id).alarms().length === 1), 2_000, 'every member applies the alarm');
    const corrupt = (e: unknown): boolean => isQuorumError(e, ErrorCode.CORRUPT);
    for (const n of [leader, named, other]) {
      assert.equal((await c.run(n.leaseKeepAlive(lease.id))).ttl, 60, `${n.id}: keep-alive`);
      await assert.rejects(c.run(n.leaseGrant(5)), corrupt, `${n.id}: grant`);
      await assert.rejects(c.run(n.leaseRevoke(lease.id)), corrupt, `${n.id}: revoke`);
      await assert.rejects(c.run(n.compact(2)), corrupt, `${n.id}: compact`);
    }
    await assert.rejects(c.run(named.leaseTimeToLive(lease.id)), corrupt);
    await assert.rejects(c.run(named.leases()), corrupt);
    assert.deepEqual((await c.run(other.leaseTimeToLive(lease.id, { keys: true }))).keys.map(text), ['k']);
    assert.deepEqual((await c.run(other.leases())).leases, [{ id: lease.id }]);
  } finally {
    await c.closeAll();
  }
});

test('a member opening data that holds nothing of it, without members or join, is refused with QUORUMKV_INVALID_CONFIG, and opens afterwards as asked', async () => {
  // before: it opened as a joining member (Raft without peers) that no
  // leader would ever reach, and every request timed out; etcd refuses to
  // start a new member without its initial cluster
  const dir = mkdtempSync(join(tmpdir(), 'quorumkv-no-members-'));
  try {
    const net = new MemoryNetwork({ seed: 1 });
    for (const dataDir of [join(dir, 'new'), undefined]) {
      const open = () =>
        dataDir === undefined
          ? KvNode.open({ id: 'a', transport: net.transport('a'), db: new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' }), tickMs: 10 })
          : KvNode.open({ id: 'a', transport: net.transport('a'), dataDir, tickMs: 10 });
      await assert.rejects(open(), (err: Error) => {
        assert.ok(isQuorumError(err, ErrorCode.INVALID_CONFIG), err.message);
        assert.match(err.message, /members.*join: true/);
        return true;
      });
    }
    // nothing was claimed: the same directory opens as a founding member,
    // then again from its data with the id alone
    const dataDir = join(dir, 'new');
    let node = await KvNode.open({ id: 'a', members: ['a'], transport: net.transport('a'), dataDir, tickMs: 10 });
    await node.put('k', 'v');
    await node.close();
    node = await KvNode.open({ id: 'a', transport: net.transport('a'), dataDir, tickMs: 10 });
    try {
      assert.equal(text((await node.get('k'))?.value), 'v');
    } finally {
      await node.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
