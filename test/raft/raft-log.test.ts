// The Raft log (stable storage + unstable tail), after etcd-io/raft
// log_test.go and log_unstable_test.go: conflict detection, the
// log-matching append (Raft §5.3), up-to-date comparison (§5.4.1), commit
// and applied cursors, slicing across storage and unstable, and stability.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import type { Entry } from '../../src/raftpb/index.js';
import { Unstable } from '../../src/raft/log-unstable.js';
import { MemoryStorage } from '../../src/raft/memory-storage.js';
import { RaftLog } from '../../src/raft/raft-log.js';
import { ent, entsWithTerms } from './helpers/harness.js';

function newLog(storage = new MemoryStorage(), maxSize = Infinity): RaftLog {
  return new RaftLog(storage, maxSize);
}

function logWith(...terms: number[]): RaftLog {
  const l = newLog();
  l.append(entsWithTerms(...terms));
  return l;
}

function indexes(ents: Entry[]): number[] {
  return ents.map((e) => e.index);
}

function throwsCode(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (err) {
    return isQuorumError(err) ? err.code : 'other';
  }
}

test('findConflict returns the first index whose term differs, or the first new index, or 0 (etcd TestFindConflict)', () => {
  const prev = [ent(1, 1), ent(2, 2), ent(3, 3)];
  const cases: { ents: Entry[]; want: number }[] = [
    // no conflict, empty ent
    { ents: [], want: 0 },
    // no conflict
    { ents: [ent(1, 1), ent(2, 2), ent(3, 3)], want: 0 },
    { ents: [ent(2, 2), ent(3, 3)], want: 0 },
    { ents: [ent(3, 3)], want: 0 },
    // no conflict, but has new entries
    { ents: [ent(1, 1), ent(2, 2), ent(3, 3), ent(4, 4), ent(5, 4)], want: 4 },
    { ents: [ent(3, 3), ent(4, 4), ent(5, 4)], want: 4 },
    { ents: [ent(4, 4), ent(5, 4)], want: 4 },
    // conflicts with existing entries
    { ents: [ent(1, 4), ent(2, 4)], want: 1 },
    { ents: [ent(2, 1), ent(3, 4), ent(4, 4)], want: 2 },
    { ents: [ent(3, 1), ent(4, 2), ent(5, 4), ent(6, 4)], want: 3 },
  ];
  for (const [i, tt] of cases.entries()) {
    const l = newLog();
    l.append(prev);
    assert.equal(l.findConflict(tt.ents), tt.want, `#${i}`);
  }
});

test('findConflictByTerm returns the largest index at or below with a term <= the given term (fast backtracking, etcd TestFindConflictByTerm)', () => {
  const cases: { terms: number[]; snapIndex: number; index: number; term: number; want: [number, number] }[] = [
    // Log starts from index 1.
    { terms: [2, 2, 5, 5, 5], snapIndex: 0, index: 100, term: 2, want: [100, 0] }, // ErrUnavailable
    { terms: [2, 2, 5, 5, 5], snapIndex: 0, index: 5, term: 6, want: [5, 5] },
    { terms: [2, 2, 5, 5, 5], snapIndex: 0, index: 5, term: 5, want: [5, 5] },
    { terms: [2, 2, 5, 5, 5], snapIndex: 0, index: 5, term: 4, want: [2, 2] },
    { terms: [2, 2, 5, 5, 5], snapIndex: 0, index: 5, term: 2, want: [2, 2] },
    { terms: [2, 2, 5, 5, 5], snapIndex: 0, index: 5, term: 1, want: [0, 0] },
    { terms: [2, 2, 5, 5, 5], snapIndex: 0, index: 1, term: 2, want: [1, 2] },
    { terms: [2, 2, 5, 5, 5], snapIndex: 0, index: 1, term: 1, want: [0, 0] },
    { terms: [2, 2, 5, 5, 5], snapIndex: 0, index: 0, term: 0, want: [0, 0] },
    // Log with compacted entries (snapshot at 10, term 3; entries 11..15).
    { terms: [3, 3, 3, 4, 4, 4], snapIndex: 10, index: 30, term: 3, want: [30, 0] }, // ErrUnavailable
    { terms: [3, 3, 3, 4, 4, 4], snapIndex: 10, index: 14, term: 9, want: [14, 4] },
    { terms: [3, 3, 3, 4, 4, 4], snapIndex: 10, index: 14, term: 4, want: [14, 4] },
    { terms: [3, 3, 3, 4, 4, 4], snapIndex: 10, index: 14, term: 3, want: [12, 3] },
    { terms: [3, 3, 3, 4, 4, 4], snapIndex: 10, index: 14, term: 2, want: [9, 0] }, // compacted
    { terms: [3, 3, 3, 4, 4, 4], snapIndex: 10, index: 11, term: 5, want: [11, 3] },
    { terms: [3, 3, 3, 4, 4, 4], snapIndex: 10, index: 10, term: 5, want: [10, 3] },
    { terms: [3, 3, 3, 4, 4, 4], snapIndex: 10, index: 10, term: 3, want: [10, 3] },
    { terms: [3, 3, 3, 4, 4, 4], snapIndex: 10, index: 10, term: 2, want: [9, 0] },
    { terms: [3, 3, 3, 4, 4, 4], snapIndex: 10, index: 9, term: 2, want: [9, 0] },
  ];
  for (const [i, tt] of cases.entries()) {
    if (tt.snapIndex === 0) {
      // no snapshot: entries from index 1
      const s2 = new MemoryStorage();
      s2.append(tt.terms.map((t, k) => ent(k + 1, t)));
      const l = newLog(s2);
      assert.deepEqual(l.findConflictByTerm(tt.index, tt.term), tt.want, `#${i}`);
      continue;
    }
    // terms[0] is the snapshot's term; the rest are entries after it
    const s3 = new MemoryStorage();
    s3.applySnapshot({ data: new Uint8Array(0), metadata: { index: tt.snapIndex, term: tt.terms[0]!, confState: { voters: [], learners: [] } } });
    s3.append(tt.terms.slice(1).map((t, k) => ent(tt.snapIndex + 1 + k, t)));
    const l = newLog(s3);
    assert.deepEqual(l.findConflictByTerm(tt.index, tt.term), tt.want, `#${i}`);
  }
});

test('isUpToDate prefers the later last term, then the longer log (Raft §5.4.1, etcd TestIsUpToDate)', () => {
  const l = logWith(1, 2, 3);
  const cases: [number, number, boolean][] = [
    // greater term, ignore lastIndex
    [l.lastIndex() - 1, 4, true],
    [l.lastIndex(), 4, true],
    [l.lastIndex() + 1, 4, true],
    // smaller term, ignore lastIndex
    [l.lastIndex() - 1, 2, false],
    [l.lastIndex(), 2, false],
    [l.lastIndex() + 1, 2, false],
    // equal term, equal or larger lastIndex wins
    [l.lastIndex() - 1, 3, false],
    [l.lastIndex(), 3, true],
    [l.lastIndex() + 1, 3, true],
  ];
  for (const [i, [lastIndex, term, want]] of cases.entries()) {
    assert.equal(l.isUpToDate(lastIndex, term), want, `#${i}`);
  }
});

test('append() truncates a conflicting unstable suffix and refuses to overwrite committed entries (etcd TestAppend)', () => {
  const cases: { ents: Entry[]; windex: number; wterms: number[]; wunstable: number }[] = [
    { ents: [], windex: 2, wterms: [1, 2], wunstable: 3 },
    { ents: [ent(3, 2)], windex: 3, wterms: [1, 2, 2], wunstable: 3 },
    // conflicts with index 1
    { ents: [ent(1, 2)], windex: 1, wterms: [2], wunstable: 1 },
    // conflicts with index 2
    { ents: [ent(2, 3), ent(3, 3)], windex: 3, wterms: [1, 3, 3], wunstable: 2 },
  ];
  for (const [i, tt] of cases.entries()) {
    const s = new MemoryStorage();
    s.append(entsWithTerms(1, 2));
    const l = newLog(s);
    assert.equal(l.append(tt.ents), tt.windex, `#${i}`);
    assert.deepEqual(l.allEntries().map((e) => e.term), tt.wterms, `#${i}`);
    assert.equal(l.unstable.offset, tt.wunstable, `#${i}`);
  }
  const l = logWith(1, 2);
  l.commitTo(2);
  assert.equal(throwsCode(() => l.append([ent(2, 3)])), ErrorCode.CORRUPT_LOG, 'appending before commit is a fault');
});

test('maybeAppend() applies the log-matching check, truncates conflicts and commits up to the last new entry (etcd TestLogMaybeAppend)', () => {
  const previousEnts = [ent(1, 1), ent(2, 2), ent(3, 3)];
  const lastindex = 3;
  const lastterm = 3;
  const commit = 1;
  const cases: { logTerm: number; index: number; committed: number; ents: Entry[]; wlasti: number; wcommit: number; wfault?: boolean }[] = [
    // not match: term is different
    { logTerm: lastterm - 1, index: lastindex, committed: lastindex, ents: [ent(lastindex + 1, 4)], wlasti: -1, wcommit: commit },
    // not match: index out of bound
    { logTerm: lastterm, index: lastindex + 1, committed: lastindex, ents: [ent(lastindex + 2, 4)], wlasti: -1, wcommit: commit },
    // match with the last existing entry
    { logTerm: lastterm, index: lastindex, committed: lastindex, ents: [], wlasti: lastindex, wcommit: lastindex },
    { logTerm: lastterm, index: lastindex, committed: lastindex + 1, ents: [], wlasti: lastindex, wcommit: lastindex }, // do not increase commit higher than lastnewi
    { logTerm: lastterm, index: lastindex, committed: lastindex - 1, ents: [], wlasti: lastindex, wcommit: lastindex - 1 }, // commit up to the commit in the message
    { logTerm: lastterm, index: lastindex, committed: 0, ents: [], wlasti: lastindex, wcommit: commit }, // commit do not decrease
    { logTerm: 0, index: 0, committed: lastindex, ents: [], wlasti: 0, wcommit: commit }, // commit do not decrease
    { logTerm: lastterm, index: lastindex, committed: lastindex, ents: [ent(lastindex + 1, 4)], wlasti: lastindex + 1, wcommit: lastindex },
    { logTerm: lastterm, index: lastindex, committed: lastindex + 1, ents: [ent(lastindex + 1, 4)], wlasti: lastindex + 1, wcommit: lastindex + 1 },
    { logTerm: lastterm, index: lastindex, committed: lastindex + 2, ents: [ent(lastindex + 1, 4)], wlasti: lastindex + 1, wcommit: lastindex + 1 }, // do not increase commit higher than lastnewi
    { logTerm: lastterm, index: lastindex, committed: lastindex + 2, ents: [ent(lastindex + 1, 4), ent(lastindex + 2, 4)], wlasti: lastindex + 2, wcommit: lastindex + 2 },
    // match with the entry in the middle
    { logTerm: lastterm - 1, index: lastindex - 1, committed: lastindex, ents: [ent(lastindex, 4)], wlasti: lastindex, wcommit: lastindex },
    { logTerm: lastterm - 2, index: lastindex - 2, committed: lastindex, ents: [ent(lastindex - 1, 4)], wlasti: lastindex - 1, wcommit: lastindex - 1 },
    { logTerm: lastterm - 3, index: lastindex - 3, committed: lastindex, ents: [ent(lastindex - 2, 4)], wlasti: lastindex - 2, wcommit: lastindex - 2, wfault: true }, // conflict with existing committed entry
    { logTerm: lastterm - 2, index: lastindex - 2, committed: lastindex, ents: [ent(lastindex - 1, 4), ent(lastindex, 4)], wlasti: lastindex, wcommit: lastindex },
  ];
  for (const [i, tt] of cases.entries()) {
    const l = newLog();
    l.append(previousEnts);
    l.committed = commit;
    if (tt.wfault) {
      assert.equal(throwsCode(() => l.maybeAppend(tt.index, tt.logTerm, tt.committed, tt.ents)), ErrorCode.CORRUPT_LOG, `#${i}`);
      continue;
    }
    const glasti = l.maybeAppend(tt.index, tt.logTerm, tt.committed, tt.ents);
    assert.equal(glasti, tt.wlasti, `#${i} lasti`);
    assert.equal(l.committed, tt.wcommit, `#${i} commit`);
    if (glasti >= 0 && tt.ents.length !== 0) {
      const got = l.slice(l.lastIndex() - tt.ents.length + 1, l.lastIndex() + 1, Infinity);
      assert.deepEqual(got, tt.ents, `#${i} ents`);
    }
  }
});

test('committed entries are handed out from applied+1 to commit, including unstable ones, capped by size (etcd TestNextCommittedEnts)', () => {
  const snap = { data: new Uint8Array(0), metadata: { index: 3, term: 1, confState: { voters: [], learners: [] } } };
  const ents = [ent(4, 1, new Uint8Array(100)), ent(5, 1, new Uint8Array(100)), ent(6, 1, new Uint8Array(100))];
  const cases: { applied: number; maxSize: number; wents: number[] }[] = [
    { applied: 0, maxSize: Infinity, wents: [4, 5, 6] },
    { applied: 3, maxSize: Infinity, wents: [4, 5, 6] },
    { applied: 4, maxSize: Infinity, wents: [5, 6] },
    { applied: 5, maxSize: Infinity, wents: [6] },
    { applied: 3, maxSize: 150, wents: [4] },
    { applied: 3, maxSize: 200, wents: [4, 5] },
    { applied: 3, maxSize: 1, wents: [4] },
  ];
  for (const [i, tt] of cases.entries()) {
    const s = new MemoryStorage();
    s.applySnapshot(snap);
    s.append(ents.slice(0, 1));
    const l = newLog(s, tt.maxSize);
    l.append(ents.slice(1));
    l.commitTo(6);
    if (tt.applied > 3) l.appliedTo(tt.applied);
    assert.equal(l.hasNextCommittedEnts(), true, `#${i}`);
    assert.deepEqual(indexes(l.nextCommittedEnts()), tt.wents, `#${i}`);
  }
});

test('no committed entries are handed out while a snapshot waits to be persisted', () => {
  const l = logWith(1, 1, 1);
  l.commitTo(2);
  assert.equal(l.hasNextCommittedEnts(), true);
  l.restore({ data: new Uint8Array(0), metadata: { index: 10, term: 2, confState: { voters: ['1'], learners: [] } } });
  assert.equal(l.committed, 10);
  assert.equal(l.hasNextCommittedEnts(), false);
  assert.deepEqual(l.nextCommittedEnts(), []);
  assert.equal(l.firstIndex(), 11);
  assert.equal(l.lastIndex(), 10);
  assert.equal(l.termOrZero(10), 2);
});

test('commitTo() never decreases commit and refuses an index beyond the last entry (etcd TestCommitTo)', () => {
  const cases: { commit: number; wcommit: number; wfault: boolean }[] = [
    { commit: 3, wcommit: 3, wfault: false },
    { commit: 1, wcommit: 2, wfault: false }, // never decrease
    { commit: 4, wcommit: 0, wfault: true }, // commit out of range -> fault
  ];
  for (const [i, tt] of cases.entries()) {
    const l = logWith(1, 2, 3);
    l.committed = 2;
    if (tt.wfault) {
      assert.equal(throwsCode(() => l.commitTo(tt.commit)), ErrorCode.CORRUPT_LOG, `#${i}`);
      assert.equal(l.committed, 2);
    } else {
      l.commitTo(tt.commit);
      assert.equal(l.committed, tt.wcommit, `#${i}`);
    }
  }
});

test('maybeCommit() only commits an index whose entry has the given (current) term (Raft §5.4.2)', () => {
  const l = logWith(1, 1, 2, 2);
  assert.equal(l.maybeCommit(2, 2), false, 'entry 2 is of term 1');
  assert.equal(l.committed, 0);
  assert.equal(l.maybeCommit(4, 2), true);
  assert.equal(l.committed, 4);
  assert.equal(l.maybeCommit(3, 2), false, 'never decreases');
});

test('stableTo() drops persisted unstable entries only when the term still matches (etcd TestStableTo)', () => {
  const cases: { stablei: number; stablet: number; wunstable: number }[] = [
    { stablei: 1, stablet: 1, wunstable: 2 },
    { stablei: 2, stablet: 2, wunstable: 3 },
    { stablei: 2, stablet: 1, wunstable: 1 }, // bad term
    { stablei: 3, stablet: 1, wunstable: 1 }, // bad index
  ];
  for (const [i, tt] of cases.entries()) {
    const l = logWith(1, 2);
    l.stableTo(tt.stablei, tt.stablet);
    assert.equal(l.unstable.offset, tt.wunstable, `#${i}`);
  }
});

test('slice() reads across storage and unstable entries and reports compacted indexes (etcd TestSlice)', () => {
  const offset = 100;
  const num = 100;
  const last = offset + num;
  const half = offset + num / 2;
  const s = new MemoryStorage();
  s.applySnapshot({ data: new Uint8Array(0), metadata: { index: offset, term: offset, confState: { voters: [], learners: [] } } });
  for (let i = 1; i < num / 2; i++) s.append([ent(offset + i, offset + i, new Uint8Array(10))]);
  const l = newLog(s);
  for (let i = num / 2; i < num; i++) l.append([ent(offset + i, offset + i, new Uint8Array(10))]);
  assert.equal(l.unstable.offset, half);
  assert.equal(throwsCode(() => l.slice(offset - 1, offset + 1, Infinity)), ErrorCode.LOG_COMPACTED);
  assert.equal(throwsCode(() => l.slice(offset, offset + 1, Infinity)), ErrorCode.LOG_COMPACTED);
  assert.deepEqual(indexes(l.slice(half - 1, half + 1, Infinity)), [half - 1, half]);
  assert.deepEqual(indexes(l.slice(half, half + 1, Infinity)), [half]);
  assert.deepEqual(indexes(l.slice(last - 1, last, Infinity)), [last - 1]);
  // a size limit that stops in storage, and one that stops in the unstable part
  assert.deepEqual(indexes(l.slice(half - 2, half + 2, 15)), [half - 2]);
  assert.deepEqual(indexes(l.slice(half - 1, half + 2, 25)), [half - 1, half]);
  assert.deepEqual(indexes(l.slice(half - 1, half + 2, 0)), [half - 1]);
  assert.equal(throwsCode(() => l.slice(last, last + 2, Infinity)), ErrorCode.CORRUPT_LOG, 'slice beyond the last index');
});

test('term lookups cover the snapshot index, compacted and unavailable indexes (etcd TestTermWithUnstableSnapshot)', () => {
  const s = new MemoryStorage();
  s.applySnapshot({ data: new Uint8Array(0), metadata: { index: 100, term: 1, confState: { voters: [], learners: [] } } });
  const l = newLog(s);
  l.restore({ data: new Uint8Array(0), metadata: { index: 105, term: 5, confState: { voters: [], learners: [] } } });
  assert.equal(l.termOrUndefined(100), undefined, 'compacted by the unstable snapshot');
  assert.equal(l.termOrUndefined(104), undefined);
  assert.equal(l.termOrZero(105), 5);
  assert.equal(l.termOrUndefined(106), undefined);
});

test('the unstable log truncates and appends like etcd (TestUnstableTruncateAndAppend)', () => {
  const cases: { entries: Entry[]; offset: number; toappend: Entry[]; woffset: number; wentries: Entry[] }[] = [
    // append to the end
    { entries: [ent(5, 1)], offset: 5, toappend: [ent(6, 1), ent(7, 1)], woffset: 5, wentries: [ent(5, 1), ent(6, 1), ent(7, 1)] },
    // replace the unstable entries
    { entries: [ent(5, 1)], offset: 5, toappend: [ent(5, 2), ent(6, 2)], woffset: 5, wentries: [ent(5, 2), ent(6, 2)] },
    { entries: [ent(5, 1)], offset: 5, toappend: [ent(4, 2), ent(5, 2), ent(6, 2)], woffset: 4, wentries: [ent(4, 2), ent(5, 2), ent(6, 2)] },
    // truncate the existing entries and append
    { entries: [ent(5, 1), ent(6, 1), ent(7, 1)], offset: 5, toappend: [ent(6, 2)], woffset: 5, wentries: [ent(5, 1), ent(6, 2)] },
    { entries: [ent(5, 1), ent(6, 1), ent(7, 1)], offset: 5, toappend: [ent(7, 2), ent(8, 2)], woffset: 5, wentries: [ent(5, 1), ent(6, 1), ent(7, 2), ent(8, 2)] },
  ];
  for (const [i, tt] of cases.entries()) {
    const u = new Unstable(tt.offset);
    u.entries = tt.entries.slice();
    u.truncateAndAppend(tt.toappend);
    assert.equal(u.offset, tt.woffset, `#${i}`);
    assert.deepEqual(u.entries, tt.wentries, `#${i}`);
  }
});

test('the unstable log answers first/last index and term from its snapshot and entries (etcd TestUnstableMaybe*)', () => {
  const snap = { data: new Uint8Array(0), metadata: { index: 4, term: 1, confState: { voters: [], learners: [] } } };
  const u = new Unstable(5);
  assert.equal(u.maybeFirstIndex(), undefined);
  assert.equal(u.maybeLastIndex(), undefined);
  u.entries = [ent(5, 1)];
  assert.equal(u.maybeLastIndex(), 5);
  assert.equal(u.maybeTerm(5), 1);
  assert.equal(u.maybeTerm(6), undefined);
  assert.equal(u.maybeTerm(4), undefined);
  u.snapshot = snap;
  assert.equal(u.maybeFirstIndex(), 5);
  assert.equal(u.maybeTerm(4), 1);
  u.entries = [];
  assert.equal(u.maybeLastIndex(), 4);
  u.stableSnapTo(3);
  assert.equal(u.snapshot, snap, 'a different index leaves the snapshot');
  u.stableSnapTo(4);
  assert.equal(u.snapshot, undefined);
});

test('a new log starts with commit and applied at the storage snapshot (etcd TestLogRestore)', () => {
  const s = new MemoryStorage();
  s.applySnapshot({ data: new Uint8Array(0), metadata: { index: 1000, term: 1000, confState: { voters: [], learners: [] } } });
  const l = newLog(s);
  assert.deepEqual(l.allEntries(), []);
  assert.equal(l.firstIndex(), 1001);
  assert.equal(l.committed, 1000);
  assert.equal(l.applied, 1000);
  assert.equal(l.unstable.offset, 1001);
  assert.equal(l.termOrZero(1000), 1000);
});

test('appliedTo() refuses to go backwards or past commit', () => {
  const l = logWith(1, 1, 1);
  l.commitTo(2);
  l.appliedTo(1);
  assert.equal(throwsCode(() => l.appliedTo(3)), ErrorCode.CORRUPT_LOG);
  l.appliedTo(2);
  assert.equal(throwsCode(() => l.appliedTo(1)), ErrorCode.CORRUPT_LOG);
  assert.equal(l.applied, 2);
});
