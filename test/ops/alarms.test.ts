// Alarms: the backend quota raises NOSPACE cluster-wide (writes that grow
// the store are refused before proposing and at apply; reads, deletes, lease
// revoke and compaction go on; disarm after reclaiming space), and the
// periodic corruption check raises CORRUPT for a member whose store was
// altered behind Raft's back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { format } from 'node:util';
import createDebug from 'debug';
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import { prepareWriteRequest, revToBytes } from '../../src/mvcc/index.js';
import { putRequest, deleteRequest, text, type KvNode } from '../../src/server/index.js';
import { EntryKind, encodeAlarmEntry, serverEntry } from '../../src/server/server-entry.js';
import { OpsCluster } from './ops-cluster.js';

const IDS = ['a', 'b', 'c'];
const VIEW = { keyEncoding: 'view', valueEncoding: 'view' } as const;

const noSpace = (e: unknown) => isQuorumError(e, ErrorCode.NO_SPACE);
const corrupt = (e: unknown) => isQuorumError(e, ErrorCode.CORRUPT);

test('a member past the quota raises NOSPACE for the whole cluster; growth is refused, reads, deletes, revokes and compaction go on; disarm restores writes', async () => {
  const c = new OpsCluster(IDS, 31);
  c.extra = () => ({ quotaBackendBytes: 16 * 1024 });
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const follower = c.followers()[0]!;
    const lease = await c.run(leader.leaseGrant(600));
    let refused: unknown;
    let written = 0;
    for (let i = 0; i < 200 && refused === undefined; i++) {
      try {
        await c.run(follower.put(`big${i}`, 'x'.repeat(500)));
        written++;
      } catch (err) {
        refused = err;
      }
      await c.clock.advanceAsync(50);
    }
    assert.ok(noSpace(refused), `a put is refused with QUORUMKV_NO_SPACE after ${written} puts (${String(refused)})`);
    assert.ok(written >= 10, 'the quota let the first puts through');
    await c.waitFor(() => IDS.every((id) => c.node(id).alarms().some((a) => a.alarm === 'NOSPACE')), 2_000, 'NOSPACE on every member');
    assert.ok(leader.alarms().every((a) => a.alarm === 'NOSPACE'));
    assert.ok(leader.alarms().some((a) => a.memberId === follower.id), 'the member that refused the put raised the alarm');
    assert.deepEqual(leader.status().alarms, leader.alarms());
    assert.deepEqual(
      leader.status().errors,
      leader.alarms().map((a) => `memberID:${a.memberId} alarm:NOSPACE`),
      "status().errors lists the alarms, as etcd's StatusResponse does",
    );

    // refused before proposing: nothing reaches the log
    const index = leader.status().raftIndex;
    for (const n of [leader, follower]) {
      await assert.rejects(c.run(n.put('one-more', 'y')), noSpace);
      await assert.rejects(c.run(n.txn({ success: [{ put: { key: 'tx', value: 'y' } }] })), noSpace);
      await assert.rejects(c.run(n.leaseGrant(60)), noSpace);
    }
    await c.clock.advanceAsync(100);
    assert.equal(leader.status().raftIndex, index, 'no entry was proposed for the refused requests');

    // what still works
    assert.equal(text((await c.run(follower.get('big0')))?.value), 'x'.repeat(500));
    assert.equal((await c.run(follower.txn({ success: [{ range: { key: 'big1' } }] }))).succeeded, true);
    await c.run(leader.leaseRevoke(lease.id));
    const del = await c.run(follower.delete('big', { prefix: true }));
    assert.equal(del.deleted, written);
    await c.run(leader.compact(del.header.revision, { physical: true }));

    // space reclaimed: disarm, and writes go through again
    const remaining = await c.run(follower.disarmAlarm('NOSPACE'));
    assert.deepEqual(remaining, []);
    for (const id of IDS) await c.waitFor(() => c.node(id).alarms().length === 0, 2_000, `member ${id} clears the alarm`);
    await c.clock.advanceAsync(1_100);
    const ok = await c.run(follower.put('after', 'ok'));
    assert.equal(ok.header.revision, del.header.revision + 1);
  } finally {
    await c.closeAll();
  }
});

test('entries already in the log behind a NOSPACE alarm are refused at apply on every member, deletes still apply', async () => {
  const c = new OpsCluster(IDS, 32);
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    await c.run(leader.put('keep', '1'));
    const revision = leader.status().revision;
    // the alarm and the writes enter the log back to back, before any is applied
    const alarm = leader.raft.propose(encodeAlarmEntry({ action: 'activate', memberId: 'b', alarm: 'NOSPACE' }));
    const put = leader.raft.propose(serverEntry(EntryKind.WRITE, prepareWriteRequest({ put: putRequest('inflight', 'x') })));
    const del = leader.raft.propose(serverEntry(EntryKind.WRITE, prepareWriteRequest({ deleteRange: deleteRequest({ key: 'keep' }) })));
    const [a, p, d] = await c.run(Promise.all([alarm, put, del]));
    assert.equal(a.status, 'alarms');
    assert.equal(p.status, 'failed');
    assert.ok(p.status === 'failed' && noSpace(p.error));
    assert.equal(d.status, 'applied');
    for (const id of IDS) {
      const n = c.node(id);
      await c.waitFor(() => n.status().revision === revision + 1, 2_000, `member ${id} applies the delete`);
      assert.equal(await c.run(n.get('inflight')), undefined);
      assert.deepEqual(n.alarms(), [{ memberId: 'b', alarm: 'NOSPACE' }]);
    }
    // the alarm survives a restart (saved with the applied state)
    await c.stop('c');
    const restarted = await c.start('c');
    assert.deepEqual(restarted.alarms(), [{ memberId: 'b', alarm: 'NOSPACE' }]);
  } finally {
    await c.closeAll();
  }
});

test('the corruption check raises CORRUPT for a member whose store was altered, which then refuses reads while writes stop cluster-wide', async () => {
  const lines: string[] = [];
  const saved = { log: createDebug.log, enabled: createDebug.disable() };
  createDebug.log = (...args: unknown[]) => lines.push(format(...args));
  createDebug.enable('quorumkv:server');
  const c = new OpsCluster(IDS, 33);
  c.extra = () => ({ corruptCheckMs: 300 });
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    for (let i = 0; i < 10; i++) await c.run(leader.put(`c${i}`, `${i}`));
    await c.clock.advanceAsync(1_000);
    assert.ok(lines.filter((l) => l.includes('corruption check at index')).length >= 6, 'checks ran on every member');
    assert.deepEqual(leader.alarms(), [], 'a healthy cluster raises no alarm');

    // alter one follower's store directly: a bogus record at revision 2
    const victim = c.followers()[0]!;
    const db = c.dbs.get(victim.id)!;
    await db.sublevel<Uint8Array, Uint8Array>('mvcc', VIEW).sublevel<Uint8Array, Uint8Array>('k', VIEW).put(revToBytes({ main: 2, sub: 9 }), new TextEncoder().encode('bogus'));
    await c.waitFor(
      () => IDS.every((id) => c.node(id).alarms().some((a) => a.alarm === 'CORRUPT' && a.memberId === victim.id)),
      3_000,
      'CORRUPT for the altered member on every member',
    );
    assert.equal(leader.alarms().length, 1, 'only the altered member is flagged');
    assert.ok(lines.some((l) => l.includes(`ALARM CORRUPT raised for member ${victim.id}`)), 'the alarm is logged');
    await assert.rejects(c.run(victim.get('c1')), corrupt);
    assert.equal(text((await c.run(leader.get('c1')))?.value), '1');
    await assert.rejects(c.run(leader.put('x', 'y')), corrupt);
    await assert.rejects(c.run(leader.delete('c1')), corrupt);
    // a read-only txn is a read (etcd serves it as one, not through its
    // corrupt applier): served by the healthy members, refused by the
    // flagged one; it was refused on every member
    const readTxn = { compare: [{ key: 'c1', target: 'VERSION' as const, result: 'GREATER' as const, version: 0 }], success: [{ range: { key: 'c1' } }], failure: [{ range: { key: 'c2' } }] };
    const res = await c.run(leader.txn(readTxn));
    assert.equal(res.succeeded, true);
    assert.equal(text((res.responses[0] as { responseRange: { kvs: { value: Uint8Array }[] } }).responseRange.kvs[0]!.value), '1');
    await assert.rejects(c.run(victim.txn(readTxn)), corrupt);
    await assert.rejects(c.run(leader.txn({ success: [{ range: { key: 'c1' } }, { put: { key: 'x', value: 'y' } }] })), corrupt);

    // replace the member, then disarm
    await c.run(leader.removeMember(victim.id));
    await c.waitFor(() => victim.raft.removed, 3_000, 'the victim applies its removal');
    // removed, it serves nothing: every read says so, leases() included (it answered QUORUMKV_CORRUPT)
    const removed = (e: unknown) => isQuorumError(e, ErrorCode.REMOVED);
    await assert.rejects(c.run(victim.get('c1', { serializable: true })), removed);
    await assert.rejects(c.run(victim.leaseTimeToLive(1)), removed);
    await assert.rejects(c.run(victim.leases()), removed);
    c.nodes.delete(victim.id);
    await victim.close();
    await c.run(leader.disarmAlarm());
    assert.equal((await c.run(leader.put('x', 'y'))).header.revision, 12);
    await c.clock.advanceAsync(1_000);
    assert.deepEqual(leader.alarms(), [], 'the two remaining members agree');
  } finally {
    await c.closeAll();
    createDebug.log = saved.log;
    createDebug.enable(saved.enabled);
  }
});

test('a member killed right after it applied an alarm replays the writes before it as the others applied them', async () => {
  // The alarm state is saved when its entry is applied; the store writes
  // the entries before it later (it answers them once applied in memory).
  // Saved first, it was ahead of the store after a crash: the replayed put
  // was judged against the NOSPACE alarm that came after it in the log and
  // refused, so this member's store lacked a key the client was told was
  // written (found by an audit of apply determinism). The disk image is a
  // copy of the member's database taken the moment it applies the alarm.
  type Db = import('memory-level').MemoryLevel<Uint8Array, Uint8Array>;
  const { MemoryLevel } = await import('memory-level');
  const copyDb = async (db: Db): Promise<Db> => {
    const entries = await db.iterator(VIEW).all();
    const out = new MemoryLevel<Uint8Array, Uint8Array>(VIEW);
    await out.open();
    await out.batch(entries.map(([key, value]) => ({ type: 'put' as const, key, value })));
    return out;
  };
  for (const interval of [200, 10, 0]) {
    const c = new OpsCluster(IDS, 51);
    c.extra = (id) => ({ ...(id === 'a' ? { quotaBackendBytes: 20_000 } : {}), backendBatchIntervalMs: interval });
    try {
      await c.startAll();
      const leader = await c.waitLeader();
      const victim = ['b', 'c'].find((id) => id !== leader.id)!;
      await c.run(leader.put('k0', 'v0'));
      let image: Promise<Db> | undefined;
      c.node(victim).on('alarm', () => {
        image ??= copyDb(c.dbs.get(victim)!);
      });
      const [k1] = await c.run(
        Promise.all([leader.put('k1', 'v1'), c.node('a').put('big', 'x'.repeat(30_000)).then(() => 'written', (e: unknown) => (noSpace(e) ? 'refused' : e))]),
      );
      await c.waitFor(() => image !== undefined, 2_000, `the alarm applied on ${victim}`);
      const disk = await image!;
      await c.stop(victim); // its clean close writes to the old database, left behind: a kill
      c.dbs.set(victim, disk);
      await c.start(victim);
      await c.waitFor(() => c.node(victim).raft.appliedIndex >= leader.raft.appliedIndex, 5_000, `${victim} catches up`);
      const seen = [];
      for (const id of IDS) {
        const n = c.node(id);
        seen.push({ id, revision: n.store.currentRevision(), hash: (await c.run(n.hashKv())).hash, k1: text((await c.run(n.get('k1', { serializable: true })))?.value) });
      }
      for (const s of seen) assert.deepEqual({ ...s, id: '' }, { ...seen[0]!, id: '' }, `interval ${interval}: ${JSON.stringify(seen)}`);
      assert.equal(seen[0]!.k1, 'v1');
      assert.equal(seen[0]!.revision, k1.header.revision);
    } finally {
      await c.closeAll();
    }
  }
});

test('the quota holds between size measures: writes applied since the last one count', async () => {
  // the database is measured at most once a second; before, a second of
  // writes could pass the quota unseen (1.2 MB was seen written under a
  // quota of 400 KB); now the cost of every write applied since the last
  // measure is added to it
  const c = new OpsCluster(IDS, 52);
  c.extra = () => ({ quotaBackendBytes: 50_000 });
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    let written = 0;
    for (let i = 0; i < 1_000; i++) {
      const outcome = await c.run(leader.put(`q${i}`, 'x'.repeat(1_000)).then(() => 'ok', (e: unknown) => (noSpace(e) ? 'refused' : e)));
      if (outcome === 'refused') break;
      assert.equal(outcome, 'ok');
      written += 1_000;
    }
    assert.ok(written > 0 && written < 50_000, `${written} bytes of values written under a quota of 50,000 bytes`);
    await c.waitFor(() => leader.alarms().some((a) => a.alarm === 'NOSPACE'), 2_000, 'the NOSPACE alarm');
  } finally {
    await c.closeAll();
  }
});

test('a member that catches up through a Raft snapshot holding a new alarm fires its alarm event', async () => {
  const c = new OpsCluster(IDS, 34);
  // a snapshot every 10 entries, none kept behind it: a member cut off catches up by snapshot
  c.extra = () => ({ snapshotEntries: 10, snapshotCatchUpEntries: 0 });
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const lagging = c.followers()[0]!;
    const events: { index: number; raised: unknown[]; cleared: unknown[] }[] = [];
    lagging.on('alarm', (e) => events.push(e));
    let installed = 0;
    lagging.raft.on('snapshot', (_index, source) => {
      if (source === 'leader') installed++;
    });
    c.net.isolate(lagging.id);
    await c.run(leader.raft.propose(encodeAlarmEntry({ action: 'activate', memberId: leader.id, alarm: 'NOSPACE' })));
    for (let i = 0; i < 30; i++) await c.run(leader.delete(`k${i}`));
    c.net.heal();
    await c.waitFor(() => lagging.alarms().length === 1, 5_000, 'the lagging member has the alarm');
    assert.ok(installed > 0, 'it caught up through a snapshot');
    assert.deepEqual(
      events.map((e) => ({ raised: e.raised, cleared: e.cleared })),
      [{ raised: [{ memberId: leader.id, alarm: 'NOSPACE' }], cleared: [] }],
    );
  } finally {
    await c.closeAll();
  }
});

test('a linearizable read on a member whose CORRUPT alarm it applies before the read point is refused, as a read-only txn is', async () => {
  // the alarm was checked only when the read began: a range or a lease list
  // that waited for its read point, behind the alarm, was served from the
  // member the alarm names
  const reads = {
    get: (n: KvNode) => n.get('k'),
    range: (n: KvNode) => n.range({ key: 'k', prefix: true }),
    leases: (n: KvNode) => n.leases(),
    leaseTimeToLive0: (n: KvNode) => n.leaseTimeToLive(0),
    readOnlyTxn: (n: KvNode) => n.txn({ success: [{ range: { key: 'k' } }] }),
  };
  for (const [what, read] of Object.entries(reads)) {
    const c = new OpsCluster(IDS, 35);
    try {
      await c.startAll();
      const leader = await c.waitLeader();
      await c.run(leader.put('k', 'v'));
      const victim = c.followers()[0]!;
      await c.waitFor(() => victim.status().raftAppliedIndex === leader.status().raftAppliedIndex, 2_000, 'the victim catches up');
      // the leader's entries reach the victim late (within an election timeout)
      c.net.setDelay({ minMs: 60, maxMs: 60 }, { from: leader.id, to: victim.id });
      const alarm = leader.raft.propose(encodeAlarmEntry({ action: 'activate', memberId: victim.id, alarm: 'CORRUPT' }));
      await c.waitFor(() => leader.alarms().length === 1, 2_000, 'the alarm committed and applied on the leader');
      assert.deepEqual(victim.alarms(), [], `${what}: not applied on the victim when the read begins`);
      const outcome = await c.run(read(victim).then(() => 'served', (e: unknown) => (corrupt(e) ? 'refused' : e)));
      assert.deepEqual(victim.alarms(), [{ memberId: victim.id, alarm: 'CORRUPT' }]);
      assert.equal(outcome, 'refused', `${what} on the corrupt member at a read point after its alarm`);
      await c.run(alarm);
    } finally {
      await c.closeAll();
    }
  }
});

test('the quota refuses a request whose cost brings the database exactly to quotaBackendBytes (etcd: available while size + cost < quota)', async () => {
  // etcd 3.4 with a fresh 20,480-byte database and a put of cost 258 (key
  // 'k', value 'v') refuses it under --quota-backend-bytes=20738 and raises
  // NOSPACE, and accepts it under 20739
  const quota = 20_000;
  const attempt = async (seed: number, send: (n: KvNode, valueBytes: number) => Promise<unknown>, costBeyondValue: number, slack: number) => {
    const c = new OpsCluster(IDS, seed);
    c.extra = () => ({ quotaBackendBytes: quota });
    try {
      await c.startAll();
      const leader = await c.waitLeader();
      await c.run(leader.put('filler', 'f'.repeat(2_000)));
      await c.clock.advanceAsync(1_500); // measured since the last apply
      const size = leader.status().dbSize;
      assert.ok(size > 2_000 && size < quota / 2, `measured ${size} bytes`);
      // value bytes such that size + cost = quota - slack
      const valueBytes = quota - slack - size - costBeyondValue;
      const outcome = await c.run(send(leader, valueBytes).then(() => 'ok', (e: unknown) => (noSpace(e) ? 'refused' : e)));
      if (outcome === 'refused') await c.waitFor(() => leader.alarms().some((a) => a.alarm === 'NOSPACE' && a.memberId === leader.id), 2_000, 'NOSPACE');
      return outcome;
    } finally {
      await c.closeAll();
    }
  };
  const put = (n: KvNode, valueBytes: number) => n.put('key', 'v'.repeat(valueBytes));
  const putCost = 'key'.length + 256;
  assert.equal(await attempt(61, put, putCost, 0), 'refused', 'a put that brings the database to the quota');
  assert.equal(await attempt(62, put, putCost, 1), 'ok', 'a put that brings it one byte below');
  // a txn costs the puts of its costlier branch
  const txn = (n: KvNode, valueBytes: number) =>
    n.txn({ success: [{ put: { key: 't1', value: 'v'.repeat(valueBytes) } }, { put: { key: 't2', value: '' } }], failure: [{ put: { key: 't3', value: 'x' } }] });
  const txnCost = 't1'.length + 256 + 't2'.length + 256;
  assert.equal(await attempt(63, txn, txnCost, 0), 'refused', 'a txn that brings the database to the quota');
  assert.equal(await attempt(64, txn, txnCost, 1), 'ok', 'a txn that brings it one byte below');
});
