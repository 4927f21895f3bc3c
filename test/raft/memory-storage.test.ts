// MemoryStorage, after etcd-io/raft storage_test.go: reads over a log that
// starts at a snapshot (dummy entry at index 3), compaction, snapshots and
// appends, and the error codes of etcd's ErrCompacted / ErrUnavailable /
// ErrSnapOutOfDate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import type { Entry, Snapshot } from '../../src/raftpb/index.js';
import { MemoryStorage } from '../../src/raft/memory-storage.js';

function e(index: number, term: number, size = 0): Entry {
  return { index, term, type: 'Normal', data: new Uint8Array(size) };
}

/** A storage whose snapshot is at 3/3 and whose log holds 4/4 and 5/5 (etcd's test log). */
function storage345(): MemoryStorage {
  const s = new MemoryStorage();
  s.applySnapshot({ data: new Uint8Array(0), metadata: { index: 3, term: 3, confState: { voters: ['1'], learners: [] } } });
  s.append([e(4, 4), e(5, 5)]);
  return s;
}

function code(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (err) {
    return isQuorumError(err) ? err.code : 'not a QuorumError';
  }
}

test('term() answers from the snapshot index on and reports compacted and unavailable indexes (etcd TestStorageTerm)', () => {
  const s = storage345();
  const cases: [number, number | string][] = [
    [2, ErrorCode.LOG_COMPACTED],
    [3, 3],
    [4, 4],
    [5, 5],
    [6, ErrorCode.LOG_UNAVAILABLE],
  ];
  for (const [i, want] of cases) {
    if (typeof want === 'number') assert.equal(s.term(i), want, `term(${i})`);
    else assert.equal(code(() => s.term(i)), want, `term(${i})`);
  }
});

test('entries() returns [lo, hi) capped by payload size, always at least one entry (etcd TestStorageEntries)', () => {
  const s = new MemoryStorage();
  s.applySnapshot({ data: new Uint8Array(0), metadata: { index: 3, term: 3, confState: { voters: [], learners: [] } } });
  s.append([e(4, 4, 10), e(5, 5, 10), e(6, 6, 10)]);
  assert.equal(code(() => s.entries(2, 6, Infinity)), ErrorCode.LOG_COMPACTED);
  assert.equal(code(() => s.entries(3, 4, Infinity)), ErrorCode.LOG_COMPACTED);
  assert.deepEqual(s.entries(4, 5, Infinity).map((x) => x.index), [4]);
  assert.deepEqual(s.entries(4, 6, Infinity).map((x) => x.index), [4, 5]);
  assert.deepEqual(s.entries(4, 7, Infinity).map((x) => x.index), [4, 5, 6]);
  // even if maxSize is zero, the first entry is returned
  assert.deepEqual(s.entries(4, 7, 0).map((x) => x.index), [4]);
  // limit to 2 entries
  assert.deepEqual(s.entries(4, 7, 20).map((x) => x.index), [4, 5]);
  assert.deepEqual(s.entries(4, 7, 29).map((x) => x.index), [4, 5]);
  assert.deepEqual(s.entries(4, 7, 30).map((x) => x.index), [4, 5, 6]);
  assert.equal(code(() => s.entries(4, 8, Infinity)), ErrorCode.LOG_UNAVAILABLE);
});

test('an empty storage has first index 1, last index 0, and no entries to read', () => {
  const s = new MemoryStorage();
  assert.equal(s.firstIndex(), 1);
  assert.equal(s.lastIndex(), 0);
  assert.equal(s.term(0), 0);
  assert.equal(code(() => s.entries(1, 2, Infinity)), ErrorCode.LOG_UNAVAILABLE);
  assert.deepEqual(s.initialState(), { hardState: { term: 0, vote: '', commit: 0 }, confState: { voters: [], learners: [] } });
});

test('firstIndex and lastIndex follow the snapshot and the appended entries (etcd TestStorageFirstIndex/LastIndex)', () => {
  const s = storage345();
  assert.equal(s.firstIndex(), 4);
  assert.equal(s.lastIndex(), 5);
  s.append([e(6, 5)]);
  assert.equal(s.lastIndex(), 6);
  s.compact(4);
  assert.equal(s.firstIndex(), 5);
});

test('compact() drops entries up to the index, keeps its term, and rejects compacted or future indexes (etcd TestStorageCompact)', () => {
  const cases: { i: number; err?: string; wIndex: number; wTerm: number; wLen: number }[] = [
    { i: 2, err: ErrorCode.LOG_COMPACTED, wIndex: 3, wTerm: 3, wLen: 3 },
    { i: 3, err: ErrorCode.LOG_COMPACTED, wIndex: 3, wTerm: 3, wLen: 3 },
    { i: 4, wIndex: 4, wTerm: 4, wLen: 2 },
    { i: 5, wIndex: 5, wTerm: 5, wLen: 1 },
    { i: 6, err: ErrorCode.LOG_UNAVAILABLE, wIndex: 3, wTerm: 3, wLen: 3 },
  ];
  for (const tt of cases) {
    const s = storage345();
    assert.equal(code(() => s.compact(tt.i)), tt.err, `compact(${tt.i})`);
    assert.equal(s.firstIndex() - 1, tt.wIndex);
    assert.equal(s.term(tt.wIndex), tt.wTerm);
    assert.equal(s.lastIndex() - s.firstIndex() + 2, tt.wLen);
  }
});

test('createSnapshot() snapshots an index with its term and refuses old ones (etcd TestStorageCreateSnapshot)', () => {
  const cs = { voters: ['1', '2', '3'], learners: [] };
  const data = new Uint8Array([1, 2, 3]);
  const s1 = storage345();
  const snap = s1.createSnapshot(4, cs, data);
  assert.deepEqual(snap.metadata, { index: 4, term: 4, confState: cs });
  assert.equal(snap.data, data);
  assert.equal(s1.snapshot(), snap);
  const s2 = storage345();
  assert.deepEqual(s2.createSnapshot(5, cs, data).metadata, { index: 5, term: 5, confState: cs });
  assert.equal(code(() => storage345().createSnapshot(3, cs, data)), ErrorCode.SNAPSHOT_OUT_OF_DATE);
  assert.equal(code(() => storage345().createSnapshot(6, cs, data)), ErrorCode.LOG_UNAVAILABLE);
});

test('append() truncates conflicting suffixes, ignores compacted entries and refuses gaps (etcd TestStorageAppend)', () => {
  const terms = (s: MemoryStorage): number[] => {
    const out: number[] = [];
    for (let i = s.firstIndex() - 1; i <= s.lastIndex(); i++) out.push(s.term(i));
    return out;
  };
  const cases: { ents: Entry[]; err?: string; want: number[] }[] = [
    { ents: [e(4, 4), e(5, 5)], want: [3, 4, 5] },
    { ents: [e(4, 4), e(5, 6), e(6, 6)], want: [3, 4, 6, 6] },
    { ents: [e(4, 4), e(5, 5), e(6, 5)], want: [3, 4, 5, 5] },
    // overwrite compacted entries
    { ents: [e(2, 3), e(3, 3), e(4, 5)], want: [3, 5] },
    // truncate incoming entries, truncate the existing entries and append
    { ents: [e(3, 3), e(4, 4), e(5, 5)], want: [3, 4, 5] },
    // truncate the existing entries and append
    { ents: [e(5, 5)], want: [3, 4, 5] },
    // direct append
    { ents: [e(6, 5)], want: [3, 4, 5, 5] },
    // a gap
    { ents: [e(7, 5)], err: ErrorCode.INVALID_ARGUMENT, want: [3, 4, 5] },
  ];
  for (const [i, tt] of cases.entries()) {
    const s = storage345();
    assert.equal(code(() => s.append(tt.ents)), tt.err, `#${i}`);
    assert.deepEqual(terms(s), tt.want, `#${i}`);
  }
});

test('applySnapshot() replaces the log and conf state, and refuses a snapshot that is not newer (etcd TestStorageApplySnapshot)', () => {
  const cs = { voters: ['1', '2', '3'], learners: [] };
  const s = new MemoryStorage();
  s.applySnapshot({ data: new Uint8Array(0), metadata: { index: 4, term: 4, confState: cs } });
  assert.equal(s.firstIndex(), 5);
  assert.equal(s.lastIndex(), 4);
  assert.equal(s.term(4), 4);
  assert.deepEqual(s.initialState().confState, cs);
  assert.equal(
    code(() => s.applySnapshot({ data: new Uint8Array(0), metadata: { index: 3, term: 3, confState: cs } })),
    ErrorCode.SNAPSHOT_OUT_OF_DATE,
  );
  assert.equal(s.firstIndex(), 5, 'nothing changed');
});

test('initialState() returns copies of what was set', () => {
  const s = new MemoryStorage();
  s.setHardState({ term: 2, vote: 'a', commit: 0 });
  s.setConfState({ voters: ['a'], learners: ['b'] });
  const st = st0(s);
  st.hardState.term = 99;
  st.confState.voters.push('zz');
  assert.deepEqual(s.initialState(), { hardState: { term: 2, vote: 'a', commit: 0 }, confState: { voters: ['a'], learners: ['b'] } });
});

function st0(s: MemoryStorage): ReturnType<MemoryStorage['initialState']> {
  return s.initialState();
}

test('indexes that are not non-negative integers, and a missing entry list or snapshot, are QUORUMKV_INVALID_ARGUMENT and change nothing', () => {
  const mk = (): MemoryStorage => {
    const s = new MemoryStorage();
    s.append([1, 2, 3, 4].map((i) => ({ term: 1, index: i, type: 'Normal' as const, data: new Uint8Array([i]) })));
    return s;
  };
  const calls: Array<[string, (s: MemoryStorage) => unknown]> = [
    ['compact(1.5)', (s) => s.compact(1.5)],
    ['compact(NaN)', (s) => s.compact(Number.NaN)],
    ["compact('2')", (s) => s.compact('2' as unknown as number)],
    ['createSnapshot(2.5)', (s) => s.createSnapshot(2.5, undefined, new Uint8Array(0))],
    ['createSnapshot(NaN)', (s) => s.createSnapshot(Number.NaN, undefined, new Uint8Array(0))],
    ['term(1.5)', (s) => s.term(1.5)],
    ['term(NaN)', (s) => s.term(Number.NaN)],
    ['entries(NaN, 3)', (s) => s.entries(Number.NaN, 3)],
    ['entries(1, 2.5)', (s) => s.entries(1, 2.5)],
    ['append(null)', (s) => s.append(null as unknown as Entry[])],
    ['applySnapshot(null)', (s) => s.applySnapshot(null as unknown as Snapshot)],
  ];
  for (const [name, call] of calls) {
    const s = mk();
    assert.throws(() => call(s), (err: unknown) => isQuorumError(err, ErrorCode.INVALID_ARGUMENT), name);
    assert.deepEqual([s.firstIndex(), s.lastIndex(), s.snapshot().metadata.index], [1, 4, 0], name);
  }
});

test('append() refuses malformed entries, entries that are not consecutive and terms that go backwards with QUORUMKV_INVALID_ARGUMENT, as the durable storages do, and changes nothing', () => {
  // before: only a gap was refused; the others were appended as they were
  // (a string index, a fractional or negative term, an entry after a hole)
  // or threw a TypeError (a null entry)
  const terms = (s: MemoryStorage): number[] => {
    const out: number[] = [];
    for (let i = s.firstIndex() - 1; i <= s.lastIndex(); i++) out.push(s.term(i));
    return out;
  };
  const odd = (fields: Record<string, unknown>): Entry => ({ ...e(6, 5), ...fields }) as Entry;
  const cases: [string, unknown[]][] = [
    ['a fractional term', [odd({ term: 5.5 })]],
    ['a negative term', [odd({ term: -1 })]],
    ['a term that is a string', [odd({ term: '5' })]],
    ['an index that is a string', [odd({ index: '6' })]],
    ['an index that is NaN', [odd({ index: Number.NaN })]],
    ['an index of 0', [odd({ index: 0 })]],
    ['a type that is neither Normal nor ConfChange', [odd({ type: 'Bogus' })]],
    ['data that is not a Uint8Array', [odd({ data: 'abc' })]],
    ['a null entry', [e(6, 5), null]],
    ['an entry after a hole', [e(6, 5), e(8, 5)]],
    ['entries out of order', [e(6, 5), e(5, 5)]],
    ['a term that decreases within the entries', [e(6, 6), e(7, 5)]],
    ['a term below the last entry', [e(6, 4)]],
    ['a term below the entry kept before a replaced suffix', [e(5, 3), e(6, 3)]],
    ['a term below the snapshot after compacted entries', [e(3, 2), e(4, 2)]],
    ['a malformed entry among compacted ones', [odd({ index: 2, term: Number.NaN }), e(3, 3), e(4, 4)]],
  ];
  for (const [what, ents] of cases) {
    const s = storage345();
    assert.equal(code(() => s.append(ents as Entry[])), ErrorCode.INVALID_ARGUMENT, what);
    assert.deepEqual(terms(s), [3, 4, 5], what);
    assert.deepEqual(s.entries(4, 6).map((x) => [x.index, x.term]), [[4, 4], [5, 5]], what);
  }
  // well formed: replacing a suffix with a term at least that of the entry before, a ConfChange
  const s = storage345();
  s.append([e(5, 4), { index: 6, term: 6, type: 'ConfChange', data: new Uint8Array(1) }]);
  assert.deepEqual(terms(s), [3, 4, 4, 6]);
});
