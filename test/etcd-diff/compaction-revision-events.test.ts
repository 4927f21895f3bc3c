// Regression test: the differential test's alignment of watch logs at a
// compaction revision. The store keeps every record at the compaction
// revision until the next compaction; etcd 3.4.23 removes the ones the
// compaction does not keep, among them the version of a key that one txn
// put and then deleted (a delete with the range end "\0") at that revision.
// Found by the differential test (ETCD_DIFF_SEED=1833038694 ETCD_DIFF_SEQ=140:
// a txn put c1 and deleted every key at revision 13, the sequence compacted
// at 13, and a watch of c1 from 13 got PUT c1@13 from the store and
// kvnode-1, nothing at 13 from etcd; the alignment dropped only DELETEs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Event } from '../../src/mvccpb/index.js';
import { b, openStore, put, s } from '../mvcc/helpers.js';
import { alignCompactionTombstones } from './align.js';
import type { NEvent, NWatchLog } from './diff-target.js';

function norm(e: Event): NEvent {
  const kv = e.kv;
  return { type: e.type, kv: { key: s(kv.key), create: kv.createRevision, mod: kv.modRevision, ver: kv.version, value: s(kv.value), lease: String(kv.lease) } };
}

test("a key put and deleted by one txn at the compaction revision: the store's two events there align with etcd 3.4.23's none", async () => {
  const t = await openStore();
  await put(t, 'c1', 'v0'); // 2
  await t.write({
    txn: { compare: [], success: [{ requestPut: { key: b('c1'), value: b('v1') } }, { requestDeleteRange: { key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) } }], failure: [] },
  }); // 3
  await t.write({ compaction: { revision: 3 } });
  await t.store.compactionIdle();
  const w = t.store.watch({ key: b('c1'), startRevision: 3 });
  await put(t, 'c1', 'v2'); // 4
  const events: NEvent[] = [];
  while (events.length < 3) {
    const r = await w.next();
    if (r.done) break;
    events.push(...r.value.events.map(norm));
  }
  await w.cancel();
  const got: NWatchLog = { events };
  assert.deepEqual(
    events.map((e) => `${e.type} ${e.kv.key}@${e.kv.mod}`),
    ['PUT c1@3', 'DELETE c1@3', 'PUT c1@4'],
    'every event of the compaction revision',
  );
  // etcd 3.4.23: the compaction removed both records at 3
  const etcd: NWatchLog = { events: [{ type: 'PUT', kv: { key: 'c1', create: 4, mod: 4, ver: 1, value: 'v2', lease: '0' } }] };
  // no key was live at 3, as read at the compaction
  assert.deepEqual(alignCompactionTombstones(etcd, got, new Map([[3, new Set<string>()]])), etcd);
  // a PUT etcd lacks at a compaction revision, of a key live there, still differs
  const lone: NWatchLog = { events: [got.events[0]!, got.events[2]!] };
  assert.deepEqual(alignCompactionTombstones(etcd, lone, new Map([[3, new Set(['c1'])]])), lone);
});

test('a NODELETE watch: the PUT at the compaction revision of a key that revision deletes aligns, though the log has no DELETE to show it', () => {
  // ETCD_DIFF_SEED=1003075251 ETCD_DIFF_SEQ=112: a txn put d and deleted
  // every key at 5, the sequence compacted at 5, and a watch of d from 5
  // with the NODELETE filter got PUT d@5 from the store, nothing at 5 from
  // etcd; the alignment looked for the DELETE in the filtered log
  const put5: NEvent = { type: 'PUT', kv: { key: 'd', create: 5, mod: 5, ver: 1, value: 'v2', lease: '0' } };
  const put30: NEvent = { type: 'PUT', kv: { key: 'd', create: 30, mod: 30, ver: 1, value: 'v0', lease: '0' } };
  const etcd: NWatchLog = { events: [put30] };
  const got: NWatchLog = { events: [put5, put30] };
  assert.deepEqual(alignCompactionTombstones(etcd, got, new Map([[5, new Set(['b0'])], [14, new Set(['d'])]])), etcd);
  // d live at 5: the PUT is a difference
  assert.deepEqual(alignCompactionTombstones(etcd, got, new Map([[5, new Set(['d'])]])), got);
});

test("a DELETE at a compaction revision that etcd has too stays, though only the store's copy carries a prevKv", () => {
  // ETCD_DIFF_SEED=1182444515 ETCD_DIFF_SEQ=16: a prevKv watch got DELETE z@62
  // from both; etcd had dropped its prevKv (compacted at 62), so the exact
  // comparison found no match and the alignment removed the store's event
  const del: NEvent = { type: 'DELETE', kv: { key: 'z', create: 0, mod: 62, ver: 0, value: '', lease: '0' } };
  const next: NEvent = { type: 'PUT', kv: { key: 'ab', create: 49, mod: 63, ver: 3, value: 'v10', lease: '0' } };
  const etcd: NWatchLog = { events: [del, next] };
  const got: NWatchLog = { events: [{ ...del, prev: { key: 'z', create: 52, mod: 54, ver: 3, value: 'V', lease: '0' } }, next] };
  assert.deepEqual(alignCompactionTombstones(etcd, got, new Map([[62, new Set<string>()]])), got);
});
