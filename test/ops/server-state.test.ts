// The server's replicated state on its own: the corruption check's decision
// rule, the alarm table, what counts as growing the store and its cost, and
// the state machine's snapshot carrying the alarms to another member.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLevel } from 'memory-level';
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import { MvccStore, prepareWriteRequest } from '../../src/mvcc/index.js';
import type { WatchResponse } from '../../src/mvccpb/index.js';
import type { ApplyEntry } from '../../src/node/index.js';
import { AlarmTable, growsStore, type AlarmMember } from '../../src/server/alarms.js';
import { HashReports } from '../../src/server/corruption-check.js';
import { KvStateMachine, type KvStateMachineHost } from '../../src/server/kv-state-machine.js';
import { requestCost, KV_OVERHEAD_BYTES, LEASE_OVERHEAD_BYTES } from '../../src/server/quota.js';
import { putRequest } from '../../src/server/requests.js';
import { EntryKind, encodeAlarmEntry, encodeHashReportEntry, serverEntry } from '../../src/server/server-entry.js';

const VIEW = { keyEncoding: 'view', valueEncoding: 'view' } as const;

test('a hash that a quorum of voters reports makes every other reporter corrupt, late reports included', () => {
  const r = new HashReports();
  const voters = ['a', 'b', 'c'];
  assert.deepEqual(r.apply({ check: 10, memberId: 'a', hash: 1, revision: 5 }, voters), []);
  assert.deepEqual(r.apply({ check: 10, memberId: 'c', hash: 2, revision: 5 }, voters), [], 'no quorum yet');
  assert.deepEqual(r.apply({ check: 10, memberId: 'b', hash: 1, revision: 5 }, voters), [{ memberId: 'c', alarm: 'CORRUPT' }]);
  assert.deepEqual(r.apply({ check: 10, memberId: 'b', hash: 9, revision: 5 }, voters), [], 'a second report of a member is ignored');
  // a later check: the late reporter that differs is flagged when it reports
  assert.deepEqual(r.apply({ check: 20, memberId: 'a', hash: 3, revision: 6 }, voters), []);
  assert.deepEqual(r.apply({ check: 20, memberId: 'b', hash: 3, revision: 6 }, voters), []);
  assert.deepEqual(r.apply({ check: 20, memberId: 'c', hash: 4, revision: 6 }, voters), [{ memberId: 'c', alarm: 'CORRUPT' }]);
  // every voter reported and no hash has a quorum: every reporter is flagged
  const s = new HashReports();
  s.apply({ check: 1, memberId: 'a', hash: 1, revision: 1 }, ['a', 'b']);
  assert.deepEqual(
    s.apply({ check: 1, memberId: 'b', hash: 2, revision: 1 }, ['a', 'b']).map((x) => x.memberId),
    ['a', 'b'],
  );
  // the state survives encoding (it is saved and snapshotted)
  const t = new HashReports();
  t.reset(r.toTuples());
  assert.deepEqual(t.apply({ check: 20, memberId: 'd', hash: 5, revision: 6 }, [...voters, 'd']), [{ memberId: 'd', alarm: 'CORRUPT' }]);
});

test("only voters' reports make the quorum; a learner that differs from it is flagged", () => {
  // before, a learner's report counted: with voters a, b, c, the learner l
  // and one voter agreeing made a "quorum" of two that flagged the other two
  // voters
  const r = new HashReports();
  const voters = ['a', 'b', 'c'];
  assert.deepEqual(r.apply({ check: 1, memberId: 'l', hash: 7, revision: 3 }, voters), []);
  assert.deepEqual(r.apply({ check: 1, memberId: 'a', hash: 7, revision: 3 }, voters), [], 'a learner and one voter are no quorum');
  assert.deepEqual(r.apply({ check: 1, memberId: 'b', hash: 8, revision: 3 }, voters), []);
  assert.deepEqual(
    r.apply({ check: 1, memberId: 'c', hash: 8, revision: 3 }, voters).map((x) => x.memberId).sort(),
    ['a', 'l'],
    'b and c agree: a and the learner differ from them',
  );
});

test('alarms are a set: raising twice or clearing what is absent changes nothing, filters clear by kind and member', () => {
  const t = new AlarmTable();
  assert.equal(t.activate({ memberId: 'b', alarm: 'NOSPACE' }), true);
  assert.equal(t.activate({ memberId: 'b', alarm: 'NOSPACE' }), false);
  t.activate({ memberId: 'a', alarm: 'NOSPACE' });
  t.activate({ memberId: 'c', alarm: 'CORRUPT' });
  assert.deepEqual(t.list(), [
    { memberId: 'c', alarm: 'CORRUPT' },
    { memberId: 'a', alarm: 'NOSPACE' },
    { memberId: 'b', alarm: 'NOSPACE' },
  ]);
  assert.equal(t.has('CORRUPT', 'c'), true);
  assert.equal(t.has('CORRUPT', 'a'), false);
  assert.deepEqual(t.deactivate({ alarm: 'NOSPACE', memberId: 'a' }), [{ memberId: 'a', alarm: 'NOSPACE' }]);
  assert.deepEqual(t.deactivate({ alarm: 'NOSPACE', memberId: 'a' }), []);
  assert.equal(t.deactivate({}).length, 2);
  assert.deepEqual(t.list(), []);
});

test('puts, txns with a put at any depth and lease grants grow the store, at etcd costs; the rest does not', () => {
  const put = { put: putRequest('key', 'value') };
  assert.equal(growsStore(put), true);
  assert.equal(requestCost(put), 3 + 5 + KV_OVERHEAD_BYTES);
  const nested = { txn: { success: [{ requestRange: { key: new Uint8Array([1]) } }], failure: [{ requestTxn: { success: [{ requestPut: putRequest('k', 'vv') }] } }] } };
  assert.equal(growsStore(nested), true);
  assert.equal(requestCost(nested), 1 + 2 + KV_OVERHEAD_BYTES);
  assert.equal(growsStore({ leaseGrant: { ttl: 10 } }), true);
  assert.equal(requestCost({ leaseGrant: { ttl: 10 } }), LEASE_OVERHEAD_BYTES);
  for (const req of [
    { deleteRange: { key: new Uint8Array([1]) } },
    { leaseRevoke: { id: 1 } },
    { compaction: { revision: 2 } },
    { txn: { success: [{ requestRange: { key: new Uint8Array([1]) } }] } },
  ]) {
    assert.equal(growsStore(req), false);
    assert.equal(requestCost(req), 0);
  }
});

async function machine(): Promise<{ sm: KvStateMachine; store: MvccStore }> {
  const db = new MemoryLevel<Uint8Array, Uint8Array>(VIEW);
  const store = await MvccStore.open(db.sublevel<Uint8Array, Uint8Array>('mvcc', VIEW));
  const sm = await KvStateMachine.open(store, db.sublevel('server', { keyEncoding: 'utf8', valueEncoding: 'view' }));
  const host: KvStateMachineHost = {
    voters: () => ['a', 'b', 'c'],
    keepAliveApplied: () => undefined,
    keepAliveAnswered: () => undefined,
    hashCheckApplied: () => undefined,
    alarmsChanged: () => undefined,
    storeBatchApplied: () => undefined,
  };
  sm.attach(host);
  return { sm, store };
}

const entry = (index: number, data: Uint8Array): ApplyEntry => ({ index, term: 1, kind: 'normal', data });

test('a Raft snapshot of the state machine carries the alarms and hash reports to the member that installs it', async () => {
  const { sm: from } = await machine();
  const put = (i: number, k: string) => entry(i, serverEntry(EntryKind.WRITE, prepareWriteRequest({ put: putRequest(k, 'v') })));
  const res = await from.apply([
    put(1, 'x'),
    entry(2, encodeAlarmEntry({ action: 'activate', memberId: 'b', alarm: 'NOSPACE' })),
    put(3, 'y'),
    entry(4, encodeHashReportEntry({ check: 4, memberId: 'a', hash: 7, revision: 2 })),
  ]);
  assert.equal(res[0]!.status, 'applied');
  assert.equal(res[1]!.status, 'alarms');
  assert.ok(res[2]!.status === 'failed' && isQuorumError(res[2]!.error, ErrorCode.NO_SPACE), 'refused at apply behind the alarm');
  const snap = await from.snapshot();

  const { sm: to, store } = await machine();
  await to.restore({ data: snap, index: 4, term: 1 });
  assert.deepEqual(to.alarms.list(), [{ memberId: 'b', alarm: 'NOSPACE' }]);
  assert.equal(store.currentRevision(), 2);
  assert.equal(to.appliedIndex(), 4);
  // the reports came along: two more agreeing reports decide the check
  await to.apply([entry(5, encodeHashReportEntry({ check: 4, memberId: 'b', hash: 7, revision: 2 })), entry(6, encodeHashReportEntry({ check: 4, memberId: 'c', hash: 8, revision: 2 }))]);
  assert.ok(to.alarms.has('CORRUPT', 'c'));

  // a bare store snapshot (no server state) restores with no alarms
  const { sm: bare } = await machine();
  const { store: plain } = await machine();
  await bare.restore({ data: await plain.snapshot(), index: 9, term: 1 });
  assert.deepEqual(bare.alarms.list(), []);
  await assert.rejects(bare.restore({ data: new Uint8Array([1, 2, 3, 4, 5]), index: 10, term: 1 }), (e: unknown) => isQuorumError(e, ErrorCode.CORRUPT_SNAPSHOT));
});

test('installing a Raft snapshot reports the alarms it raises and clears to the member, as applying their entries does', async () => {
  const { sm: from } = await machine();
  await from.apply([entry(1, encodeAlarmEntry({ action: 'activate', memberId: 'b', alarm: 'NOSPACE' }))]);
  const snap = await from.snapshot();

  const db = new MemoryLevel<Uint8Array, Uint8Array>(VIEW);
  const store = await MvccStore.open(db.sublevel<Uint8Array, Uint8Array>('mvcc', VIEW));
  const to = await KvStateMachine.open(store, db.sublevel('server', { keyEncoding: 'utf8', valueEncoding: 'view' }));
  const changes: { index: number; raised: AlarmMember[]; cleared: AlarmMember[] }[] = [];
  to.attach({
    voters: () => ['a', 'b', 'c'],
    keepAliveApplied: () => undefined,
    keepAliveAnswered: () => undefined,
    hashCheckApplied: () => undefined,
    alarmsChanged: (index, raised, cleared) => changes.push({ index, raised, cleared }),
    storeBatchApplied: () => undefined,
  });
  // this member had a CORRUPT alarm of its own when it fell behind
  await to.apply([entry(1, encodeAlarmEntry({ action: 'activate', memberId: 'c', alarm: 'CORRUPT' }))]);
  assert.deepEqual(changes, [{ index: 1, raised: [{ memberId: 'c', alarm: 'CORRUPT' }], cleared: [] }]);
  changes.length = 0;
  await to.restore({ data: snap, index: 7, term: 2 });
  assert.deepEqual(to.alarms.list(), [{ memberId: 'b', alarm: 'NOSPACE' }]);
  assert.deepEqual(changes, [{ index: 7, raised: [{ memberId: 'b', alarm: 'NOSPACE' }], cleared: [{ memberId: 'c', alarm: 'CORRUPT' }] }]);
  // the same alarms again: no change to report
  changes.length = 0;
  await to.restore({ data: snap, index: 8, term: 2 });
  assert.deepEqual(changes, []);
});

test('a watch from now created while a Raft snapshot is installed, its alarms saved and the store not yet restoring, starts after the restored revision', async () => {
  // the snapshot's history is compacted past the revision the member had:
  // a watch that started there would be cancelled as compacted
  const write = (i: number, req: Parameters<typeof prepareWriteRequest>[0]) => entry(i, serverEntry(EntryKind.WRITE, prepareWriteRequest(req)));
  const { sm: from } = await machine();
  await from.apply([write(1, { put: putRequest('k', 'a') }), write(2, { put: putRequest('k', 'b') }), write(3, { put: putRequest('k', 'c') }), write(4, { compaction: { revision: 4 } })]);
  await from.apply([entry(5, encodeAlarmEntry({ action: 'activate', memberId: 'b', alarm: 'NOSPACE' }))]);
  const snap = await from.snapshot();
  const { sm: to, store } = await machine();
  assert.equal(store.currentRevision(), 1);
  const installing = to.restore({ data: snap, index: 5, term: 1 });
  // the snapshot's alarms are this member's already; the store restores next
  assert.deepEqual(to.alarms.list(), [{ memberId: 'b', alarm: 'NOSPACE' }]);
  const w = store.watch({ key: new TextEncoder().encode('k') });
  const responses: WatchResponse[] = [];
  w.on('response', (r) => responses.push(r));
  await installing;
  assert.equal(store.currentRevision(), 4);
  await store.watchIdle();
  // the snapshot's NOSPACE alarm refuses puts; a delete, which does not grow the store, is applied
  await to.apply([write(6, { deleteRange: { key: new TextEncoder().encode('k') } })]);
  await store.watchIdle();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(
    responses.map((r) => ({ canceled: r.canceled, compactRevision: r.compactRevision, events: r.events.map((e) => `${e.type}@${e.kv.modRevision}`) })),
    [{ canceled: false, compactRevision: 0, events: ['DELETE@5'] }],
  );
  await w.cancel();
});
