// The watch checker: correct streams pass; reordered, duplicated, gapped,
// split-revision, wrong-prevKv and otherwise wrong streams each fail with a
// violation naming the broken guarantee (etcd API guarantees, "Watch APIs").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, UsageError } from '../../src/errors.js';
import { checkWatch, inKeyRange, prefixRange } from '../../src/testing/index.js';
import type { WatchEventRecord, WatchFilter, WatchKeyValue, WatchResponseRecord, WatchStreamRecord } from '../../src/testing/index.js';

const kv = (key: string, value: string, createRevision: number, modRevision: number, version: number): WatchKeyValue => ({
  key,
  value,
  createRevision,
  modRevision,
  version,
});
const put = (k: WatchKeyValue): WatchEventRecord => ({ type: 'PUT', kv: k });
const del = (key: string, rev: number): WatchEventRecord => ({ type: 'DELETE', kv: { key, modRevision: rev } });

// The committed history: revision 5 is a txn touching three keys.
const committed: WatchEventRecord[] = [
  put(kv('a', '1', 2, 2, 1)),
  put(kv('b', '1', 3, 3, 1)),
  put(kv('a', '2', 2, 4, 2)),
  del('a', 5),
  put(kv('b', '2', 3, 5, 2)),
  put(kv('c', '1', 5, 5, 1)),
  put(kv('a', '3', 6, 6, 1)),
  del('c', 7),
  put(kv('ab', '1', 8, 8, 1)),
];

/** What a correct server sends: matching events, one response per revision, prevKv from the history. */
function correctStream(
  range: { key: string; rangeEnd?: string },
  opts: { startRevision?: number; prevKv?: boolean; filters?: WatchFilter[]; name?: string } = {},
): WatchStreamRecord {
  const last = new Map<string, WatchKeyValue>();
  const responses: WatchResponseRecord[] = [];
  let current: { rev: number; events: WatchEventRecord[] } | undefined;
  for (const e of committed) {
    const prev = last.get(e.kv.key);
    if (e.type === 'PUT') last.set(e.kv.key, e.kv);
    else last.delete(e.kv.key);
    const rev = e.kv.modRevision;
    if (!inKeyRange(range, e.kv.key) || rev < (opts.startRevision ?? 0)) continue;
    if (opts.filters?.includes('NOPUT') && e.type === 'PUT') continue;
    if (opts.filters?.includes('NODELETE') && e.type === 'DELETE') continue;
    const event: WatchEventRecord = opts.prevKv === true && prev !== undefined ? { ...e, prevKv: prev } : { type: e.type, kv: e.kv };
    if (current === undefined || current.rev !== rev) {
      current = { rev, events: [] };
      responses.push({ revision: rev, events: current.events });
    }
    current.events.push(event);
  }
  return { name: opts.name ?? 'w', ...range, startRevision: opts.startRevision, prevKv: opts.prevKv, filters: opts.filters, responses };
}

const all = { key: '\0', rangeEnd: '\0' };

function violations(stream: WatchStreamRecord): string[] {
  return checkWatch(committed, [stream]).violations;
}

test('correct streams pass: all keys, a prefix, a range, one key, filters, a late start, prevKv', () => {
  const streams = [
    correctStream(all, { startRevision: 1, prevKv: true, name: 'all' }),
    correctStream(prefixRange('a'), { startRevision: 1, prevKv: true, name: 'prefix' }),
    correctStream({ key: 'b', rangeEnd: 'c' }, { startRevision: 2, name: 'range' }),
    correctStream({ key: 'a' }, { startRevision: 1, name: 'one-key' }),
    correctStream(all, { startRevision: 1, filters: ['NODELETE'], name: 'no-delete' }),
    correctStream(all, { startRevision: 1, filters: ['NOPUT'], prevKv: true, name: 'no-put' }),
    correctStream(all, { startRevision: 5, prevKv: true, name: 'late' }),
    correctStream(all, { name: 'from-now' }),
  ];
  const res = checkWatch(committed, streams);
  assert.deepEqual(res.violations, []);
  assert.equal(res.ok, true);
  // the streams are not trivially empty
  assert.equal(streams[0]!.responses.length, 7);
  assert.equal(streams[1]!.responses.flatMap((r) => r.events).length, 5);
});

test('several revisions may share one response', () => {
  const s = correctStream(all, { startRevision: 1, prevKv: true });
  const batched: WatchResponseRecord[] = [
    { revision: 4, events: s.responses.slice(0, 3).flatMap((r) => r.events) },
    { revision: 8, events: s.responses.slice(3).flatMap((r) => r.events) },
  ];
  assert.deepEqual(violations({ ...s, responses: batched }), []);
  const headerTooLow = [{ revision: 3, events: batched[0]!.events }, batched[1]!];
  assert.ok(violations({ ...s, responses: headerTooLow }).some((m) => /bookmarkable: response 0 has header revision 3, below its event at revision 4/.test(m)));
});

test('a stream whose responses are reordered breaks "ordered"', () => {
  const s = correctStream(all, { startRevision: 1 });
  const responses = [...s.responses];
  [responses[1], responses[2]] = [responses[2]!, responses[1]!];
  const v = violations({ ...s, responses });
  assert.ok(v.some((m) => /: ordered: PUT "b" at revision 3 \(response 2\) came after revision 4/.test(m)), v.join('\n'));
});

test('events of one revision out of commit order break "ordered"', () => {
  const s = correctStream(all, { startRevision: 1 });
  const responses = s.responses.map((r) => (r.revision === 5 ? { ...r, events: [...r.events].reverse() } : r));
  const v = violations({ ...s, responses });
  assert.ok(v.some((m) => /ordered: .* came after a later event of the same revision/.test(m)), v.join('\n'));
});

test('a duplicated event breaks "unique"', () => {
  const s = correctStream(all, { startRevision: 1 });
  const responses = [...s.responses.slice(0, 3), s.responses[2]!, ...s.responses.slice(3)];
  const v = violations({ ...s, responses });
  assert.ok(v.some((m) => /unique: PUT "a" at revision 4 was delivered twice/.test(m)), v.join('\n'));
});

test('a gap breaks "reliable" and names the missing event', () => {
  const s = correctStream(all, { startRevision: 1 });
  const responses = s.responses.filter((r) => r.revision !== 3);
  const v = violations({ ...s, responses });
  assert.deepEqual(v, ['watch w on all keys: reliable: PUT "b" at revision 3 was never delivered']);
});

test('a missing first event after the start revision breaks "reliable" (resumable from that revision)', () => {
  const s = correctStream(all, { startRevision: 4 });
  const v = violations({ ...s, responses: s.responses.slice(1) });
  assert.ok(v.some((m) => /reliable: PUT "a" at revision 4 was never delivered/.test(m)), v.join('\n'));
});

test('a revision split over two responses breaks "atomic"', () => {
  const s = correctStream(all, { startRevision: 1 });
  const responses: WatchResponseRecord[] = [];
  for (const r of s.responses) {
    if (r.revision === 5) {
      responses.push({ revision: 5, events: r.events.slice(0, 1) }, { revision: 5, events: r.events.slice(1) });
    } else responses.push(r);
  }
  const v = violations({ ...s, responses });
  assert.deepEqual(v, ['watch w on all keys: atomic: the events of revision 5 are split over responses 3 and 4']);
});

test('a response with only part of a revision breaks "atomic" and "reliable"', () => {
  const s = correctStream(all, { startRevision: 1 });
  const responses = s.responses.map((r) => (r.revision === 5 ? { ...r, events: r.events.slice(0, 2) } : r));
  const v = violations({ ...s, responses });
  assert.ok(v.some((m) => /atomic: response 3 carries only part of revision 5: missing PUT "c" at revision 5/.test(m)), v.join('\n'));
  assert.ok(v.some((m) => /reliable: PUT "c" at revision 5 was never delivered/.test(m)), v.join('\n'));
});

test('a wrong prevKv breaks "prevKv"', () => {
  const s = correctStream(all, { startRevision: 1, prevKv: true });
  const responses = s.responses.map((r) =>
    r.revision === 4 ? { ...r, events: [{ ...r.events[0]!, prevKv: kv('a', 'stale', 2, 1, 1) }] } : r,
  );
  const v = violations({ ...s, responses });
  assert.deepEqual(v, [
    'watch w on all keys: prevKv: PUT "a" at revision 4 has a prevKv with modRevision 1 (expected 2), value "stale" (expected "1")',
  ]);
});

test('a prevKv on a creation, a missing prevKv and an unrequested prevKv break "prevKv"', () => {
  const s = correctStream(all, { startRevision: 1, prevKv: true });
  const onCreate = s.responses.map((r) => (r.revision === 2 ? { ...r, events: [{ ...r.events[0]!, prevKv: kv('a', '0', 1, 1, 1) }] } : r));
  assert.ok(violations({ ...s, responses: onCreate }).some((m) => /prevKv: PUT "a" at revision 2 carries prevKv "0" although the key did not exist before/.test(m)));
  const missing = s.responses.map((r) => (r.revision === 7 ? { ...r, events: [{ type: 'DELETE' as const, kv: r.events[0]!.kv }] } : r));
  assert.ok(violations({ ...s, responses: missing }).some((m) => /prevKv: DELETE "c" at revision 7 lacks prevKv \(expected "1" at modRevision 5\)/.test(m)));
  const plain = correctStream(all, { startRevision: 1 });
  const unasked = plain.responses.map((r) => (r.revision === 4 ? { ...r, events: [{ ...r.events[0]!, prevKv: kv('a', '1', 2, 2, 1) }] } : r));
  assert.ok(violations({ ...plain, responses: unasked }).some((m) => /prevKv: PUT "a" at revision 4 carries a prevKv the watch did not ask for/.test(m)));
});

test('wrong kv fields and events that were never committed break "kv"', () => {
  const s = correctStream(all, { startRevision: 1 });
  const wrongValue = s.responses.map((r) => (r.revision === 4 ? { ...r, events: [put(kv('a', 'x', 2, 4, 2))] } : r));
  assert.ok(violations({ ...s, responses: wrongValue }).some((m) => /kv: PUT "a" at revision 4 has value "x" \(expected "2"\)/.test(m)));
  const wrongVersion = s.responses.map((r) => (r.revision === 4 ? { ...r, events: [put(kv('a', '2', 2, 4, 7))] } : r));
  assert.ok(violations({ ...s, responses: wrongVersion }).some((m) => /kv: PUT "a" at revision 4 has version 7 \(expected 2\)/.test(m)));
  const deleteWithValue = s.responses.map((r) =>
    r.revision === 7 ? { ...r, events: [{ type: 'DELETE' as const, kv: { key: 'c', modRevision: 7, value: '1' } }] } : r,
  );
  assert.ok(violations({ ...s, responses: deleteWithValue }).some((m) => /kv: DELETE "c" at revision 7 carries value "1"; a deletion carries none/.test(m)));
  const invented = [...s.responses, { revision: 9, events: [put(kv('z', '1', 9, 9, 1))] }];
  assert.ok(violations({ ...s, responses: invented }).some((m) => /kv: PUT "z" at revision 9 is not in the committed history/.test(m)));
  const wrongType = s.responses.map((r) => (r.revision === 7 ? { ...r, events: [put(kv('c', '1', 5, 7, 2))] } : r));
  assert.ok(violations({ ...s, responses: wrongType }).some((m) => /kv: PUT "c" at revision 7 should be a DELETE event/.test(m)));
});

test('events outside the range, filtered out or before the start break "range"', () => {
  const s = correctStream(prefixRange('a'), { startRevision: 1 });
  const outside = [...s.responses];
  outside.splice(1, 0, { revision: 3, events: [put(kv('b', '1', 3, 3, 1))] });
  assert.ok(violations({ ...s, responses: outside }).some((m) => /range: PUT "b" at revision 3 is outside the watched range/.test(m)));
  const f = correctStream(all, { startRevision: 1, filters: ['NOPUT'] });
  const filtered = [{ revision: 2, events: [put(kv('a', '1', 2, 2, 1))] }, ...f.responses];
  assert.ok(violations({ ...f, responses: filtered }).some((m) => /range: PUT "a" at revision 2 was delivered although the watch filters PUT events/.test(m)));
  const late = correctStream(all, { startRevision: 4 });
  const early = [{ revision: 3, events: [put(kv('b', '1', 3, 3, 1))] }, ...late.responses];
  assert.ok(violations({ ...late, responses: early }).some((m) => /range: PUT "b" at revision 3 is before the start revision 4/.test(m)));
});

test('a progress notification claims every event up to its revision ("bookmarkable")', () => {
  const s = correctStream(all, { startRevision: 1 });
  const upTo4 = s.responses.filter((r) => (r.revision ?? 0) <= 4);
  const gapBeforeNotify = [...upTo4.filter((r) => r.revision !== 3), { revision: 4, events: [], progressNotify: true }];
  assert.ok(violations({ ...s, responses: gapBeforeNotify }).some((m) => /reliable: PUT "b" at revision 3 was never delivered/.test(m)));
  const notifyThenOld = [...upTo4.slice(0, 2), { revision: 4, events: [], progressNotify: true }, upTo4[2]!];
  assert.ok(violations({ ...s, responses: notifyThenOld }).some((m) => /bookmarkable: PUT "a" at revision 4 \(response 3\) came after a progress notification at revision 4/.test(m)));
  // a notification after the events it covers is fine, and a silent tail is not a gap
  assert.deepEqual(violations({ ...s, responses: [...upTo4, { revision: 4, events: [], progressNotify: true }] }), []);
});

test('a watch from now that got a progress notification must deliver every event after it', () => {
  const fromNow = correctStream(all);
  const after3 = fromNow.responses.filter((r) => (r.revision ?? 0) > 3);
  const notified = { ...fromNow, responses: [{ revision: 3, events: [], progressNotify: true }, ...after3] };
  assert.deepEqual(violations(notified), []);
  // revision 4 comes after the notification at 3: skipping it is a gap, not a late start
  const gap = { ...fromNow, responses: [{ revision: 3, events: [], progressNotify: true }, ...after3.filter((r) => r.revision !== 4)] };
  assert.ok(violations(gap).some((m) => /reliable: PUT "a" at revision 4 was never delivered/.test(m)));
});

test('a compaction cancel is only legitimate below the compact revision ("resumable")', () => {
  const justified: WatchStreamRecord = { name: 'w', key: 'a', startRevision: 2, responses: [], canceled: true, compactRevision: 5 };
  assert.deepEqual(checkWatch(committed, [justified]).violations, []);
  const spurious: WatchStreamRecord = { ...justified, startRevision: 6 };
  assert.ok(checkWatch(committed, [spurious]).violations.some((m) => /resumable: cancelled with compactRevision 5 although it needed revision 6/.test(m)));
  // a progress notification at 6 says it had everything up to 6: it needed 7
  const synced: WatchStreamRecord = { ...justified, startRevision: undefined, responses: [{ revision: 6, events: [], progressNotify: true }] };
  assert.ok(checkWatch(committed, [synced]).violations.some((m) => /resumable: cancelled with compactRevision 5 although it needed revision 7/.test(m)));
});

test('violations name the stream and each stream is checked on its own', () => {
  const good = correctStream(all, { startRevision: 1, name: 'good' });
  const bad = correctStream(all, { startRevision: 1, name: 'bad' });
  const res = checkWatch(committed, [good, { ...bad, responses: bad.responses.slice(1) }]);
  assert.equal(res.ok, false);
  assert.deepEqual(res.violations, ['watch bad on all keys: reliable: PUT "a" at revision 2 was never delivered']);
});

test('a committed history out of revision order is a usage error', () => {
  assert.throws(
    () => checkWatch([put(kv('a', '1', 3, 3, 1)), put(kv('b', '1', 2, 2, 1))], []),
    (e: unknown) => e instanceof UsageError && e.code === ErrorCode.INVALID_ARGUMENT,
  );
  assert.throws(() => checkWatch([put(kv('a', '1', 3, 3, 1)), put(kv('a', '2', 3, 3, 2))], []), UsageError);
});

test('committed events or streams that are not arrays of objects are a usage error', () => {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const check = (c: unknown, s: unknown) => () => checkWatch(c as any, s as any);
  const usage = (e: unknown) => e instanceof UsageError && e.code === ErrorCode.INVALID_ARGUMENT;
  for (const bad of [undefined, null, 5, 'events', {}, [null], [5]]) {
    assert.throws(check(bad, []), usage, `committed ${String(bad)}`);
    assert.throws(check([], bad), usage, `streams ${String(bad)}`);
  }
  assert.throws(check([{ type: 'PUT' }], []), usage, 'a committed event without kv');
});

test('revisions the committed history lacks: reports about them are unknown, not violations', () => {
  // The history lacks revision 4 (nobody reported it): a watch that did get
  // PUT "a" at 4 is not wrong, and the prevKv of DELETE "a" at 5 is then
  // the pair written at 4, not the one at 2.
  const gapped = committed.filter((e) => e.kv.modRevision !== 4);
  const s = correctStream(all, { startRevision: 1, prevKv: true });
  const res = checkWatch(gapped, [s], { unknownRevisions: [4] });
  assert.deepEqual(res.violations, []);
  assert.equal(res.ok, true);
  assert.ok(res.unknown.some((m) => /kv: PUT "a" at revision 4 is not in the committed history/.test(m)), res.unknown.join('\n'));
  assert.ok(res.unknown.some((m) => /prevKv: DELETE "a" at revision 5: the key.s previous pair is not known/.test(m)), res.unknown.join('\n'));
  // without knowing about the gap, the same input reads as violations
  assert.equal(checkWatch(gapped, [s]).ok, false);
  // a real violation elsewhere is still one
  const responses = s.responses.filter((r) => r.revision !== 3);
  const bad = checkWatch(gapped, [{ ...s, responses }], { unknownRevisions: [4] });
  assert.deepEqual(bad.violations, ['watch w on all keys: reliable: PUT "b" at revision 3 was never delivered']);
  // a prevKv that the gap does not touch is still checked: "b" at 5 must carry "b"=1 from revision 3
  const wrongPrev = s.responses.map((r) =>
    r.revision === 5 ? { ...r, events: r.events.map((e) => (e.kv.key === 'b' ? { ...e, prevKv: kv('b', 'x', 3, 3, 1) } : e)) } : r,
  );
  const v = checkWatch(gapped, [{ ...s, responses: wrongPrev }], { unknownRevisions: [4] }).violations;
  assert.ok(v.some((m) => /prevKv: PUT "b" at revision 5 has a prevKv with value "x"/.test(m)), v.join('\n'));
  // an event the history lacks at a revision it does know is still a violation
  const extra = [...s.responses, { revision: 9, events: [put(kv('zz', '1', 9, 9, 1))] }];
  const ex = checkWatch(committed, [{ ...s, responses: extra }], { unknownRevisions: [4] }).violations;
  assert.ok(ex.some((m) => /kv: PUT "zz" at revision 9 is not in the committed history/.test(m)), ex.join('\n'));
});

test('unknownRevisions that are not a list of revisions are a usage error', () => {
  const usage = (e: unknown) => e instanceof UsageError && e.code === ErrorCode.INVALID_ARGUMENT;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  for (const bad of [5, 'x', [1.5], [Number.NaN], ['3'], null] as any[]) {
    assert.throws(() => checkWatch(committed, [], { unknownRevisions: bad }), usage, String(bad));
  }
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  assert.throws(() => checkWatch(committed, [], { other: 1 } as any), usage);
});
