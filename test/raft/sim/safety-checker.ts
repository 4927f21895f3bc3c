// The safety properties of Raft (paper Figure 3), checked while a
// simulation runs, from what the nodes persist, apply and report:
//
// - Election Safety: at most one leader per term, over every leader ever
//   observed on any node;
// - Log Matching: two stable logs with an entry of the same index and term
//   are identical up to it. Checked incrementally: every (index, term) ever
//   persisted is recorded with its entry and the term of the entry before
//   it; by induction on the index, equal (index, term) with equal entry and
//   equal previous term everywhere means identical prefixes. A full
//   pairwise comparison of the stable logs backs it up from time to time;
// - Leader Completeness: an entry committed in term T is in the log of
//   every leader of a term after T. An entry is recorded as committed when a
//   node's persisted commit index passes it, with that node's current term
//   (the entry was committed in that term or earlier, so the check is never
//   wrong), and checked against the persisted log of every new leader;
// - State Machine Safety: no two nodes apply different entries at the same
//   index (and a snapshot restores the same history digest as the nodes
//   that applied up to its index); nothing is applied beyond the commit index;
// - commit indexes never go back on a node, except that a restart resets
//   the in-memory commit to the persisted one, which itself never goes back;
// - ReadIndex (thesis §6.4): a read index is at least the highest commit
//   index observed anywhere when the request was made;
// - configurations: every node that has applied up to an index holds the
//   same configuration there (conf changes applied in log order, snapshots
//   carrying the configuration of their index), and once a node has handled
//   every Ready its Raft core uses the configuration it applied.
import type { ConfState, Entry, HardState, Snapshot } from '../../../src/raftpb/index.js';
import type { MemoryStorage } from '../../../src/raft/memory-storage.js';
import type { ReadState } from '../../../src/raft/types.js';
import { entryKey } from './entry-digest.js';

/** Called with a description of a broken invariant; never returns. */
export type FailFn = (reason: string) => never;

interface PersistedEntry {
  key: string;
  prevTerm: number;
}

interface CommittedEntry {
  term: number;
  key: string;
  /** A term at or after the one in which the entry was committed. */
  commitTerm: number;
}

const decoder = new TextDecoder();

/** A configuration as a comparable string: voters and learners, each sorted. */
function describeConfig(cs: ConfState): string {
  return `voters [${[...cs.voters].sort().join(',')}] learners [${[...cs.learners].sort().join(',')}]`;
}

/** Records what the nodes do and fails as soon as a safety property breaks. */
export class SafetyChecker {
  private readonly leaders = new Map<number, string>();
  private readonly persisted = new Map<string, PersistedEntry>();
  private readonly committed = new Map<number, CommittedEntry>();
  private readonly applied = new Map<number, string>();
  /** State machine digest after applying index i (from any node). */
  private readonly digests = new Map<number, number>();
  private readonly memCommit = new Map<string, number>();
  private readonly persistedCommit = new Map<string, number>();
  private readonly checkedLeaders = new Set<string>();
  private readonly reads = new Map<string, number>();
  /** The configuration at each applied index, as the first node to reach it held it. */
  private readonly configs = new Map<number, string>();
  /**
   * Indexes of the bootstrap's conf changes, whose configurations are not
   * compared: a founder's Raft core starts with the whole initial
   * configuration (as etcd's Bootstrap), while a member that joins later
   * applies those entries one voter at a time.
   */
  private bootstrapEntries = 0;
  /** The highest commit index observed on any node. */
  maxCommit = 0;
  /** Counters for the run summary. */
  readonly stats = { leaders: 0, committed: 0, readStates: 0 };

  constructor(private readonly fail: FailFn) {}

  /** Election Safety: `id` is leader of `term`. */
  observeLeader(id: string, term: number): void {
    const prev = this.leaders.get(term);
    if (prev === undefined) {
      this.leaders.set(term, id);
      this.stats.leaders++;
    } else if (prev !== id) {
      this.fail(`two leaders in term ${term}: ${prev} and ${id}`);
    }
  }

  /** The in-memory commit index of `id` (RawNode.status()). */
  observeCommit(id: string, commit: number): void {
    const prev = this.memCommit.get(id) ?? 0;
    if (commit < prev) this.fail(`commit index of ${id} went back from ${prev} to ${commit}`);
    this.memCommit.set(id, commit);
    if (commit > this.maxCommit) this.maxCommit = commit;
  }

  /** `id` restarted: its in-memory commit is now the persisted one. */
  onRestart(id: string, commit: number): void {
    const persisted = this.persistedCommit.get(id) ?? 0;
    if (commit !== persisted) this.fail(`${id} restarted with commit ${commit}, but ${persisted} was persisted`);
    this.memCommit.set(id, commit);
  }

  /** Log Matching, incrementally: `entries` were just appended to `storage`. */
  onEntriesPersisted(id: string, entries: readonly Entry[], storage: MemoryStorage): void {
    // Entries at or before the snapshot are not stored (they are committed and applied).
    const first = storage.firstIndex();
    const stored = entries.length > 0 && entries[0]!.index < first ? entries.filter((e) => e.index >= first) : entries;
    if (stored.length === 0) return;
    let prevTerm = storage.term(stored[0]!.index - 1);
    for (const e of stored) {
      const k = `${e.index}/${e.term}`;
      const key = entryKey(e);
      const seen = this.persisted.get(k);
      if (seen === undefined) {
        this.persisted.set(k, { key, prevTerm });
      } else {
        if (seen.key !== key) this.fail(`log matching: ${id} persisted ${k} as ${key}, another node as ${seen.key}`);
        if (seen.prevTerm !== prevTerm) {
          this.fail(`log matching: ${id} has ${k} after an entry of term ${prevTerm}, another node after term ${seen.prevTerm}`);
        }
      }
      prevTerm = e.term;
    }
  }

  /** A snapshot was persisted: its last entry is committed. */
  onSnapshotPersisted(id: string, snap: Snapshot, term: number): void {
    const { index, term: sterm } = snap.metadata;
    const c = this.committed.get(index);
    if (c !== undefined && c.term !== sterm) {
      this.fail(`${id} installed a snapshot at ${index}/${sterm} but ${index}/${c.term} was committed`);
    }
    this.persistedCommitAdvance(id, index);
    if (c === undefined) this.committed.set(index, { term: sterm, key: '', commitTerm: term });
  }

  /**
   * A HardState was persisted with the entries of the same Ready: the commit
   * index never goes back, and entries up to it are now known committed.
   */
  onHardStatePersisted(id: string, hs: HardState, storage: MemoryStorage): void {
    const prev = this.persistedCommit.get(id) ?? 0;
    if (hs.commit < prev) this.fail(`persisted commit of ${id} went back from ${prev} to ${hs.commit}`);
    if (hs.commit > storage.lastIndex()) this.fail(`${id} persisted commit ${hs.commit} beyond its last index ${storage.lastIndex()}`);
    const from = Math.max(prev + 1, storage.firstIndex());
    if (hs.commit >= from) {
      const ents = storage.entries(from, hs.commit + 1, Infinity);
      for (const e of ents) this.recordCommitted(id, e, hs.term);
    }
    this.persistedCommitAdvance(id, hs.commit);
  }

  private persistedCommitAdvance(id: string, commit: number): void {
    const prev = this.persistedCommit.get(id) ?? 0;
    if (commit > prev) this.persistedCommit.set(id, commit);
  }

  private recordCommitted(id: string, e: Entry, term: number): void {
    const key = entryKey(e);
    const c = this.committed.get(e.index);
    if (c === undefined) {
      this.committed.set(e.index, { term: e.term, key, commitTerm: term });
      this.stats.committed++;
    } else if (c.term !== e.term || (c.key !== '' && c.key !== key)) {
      this.fail(`${id} committed ${e.index} as ${key}, but ${c.key || `term ${c.term}`} was committed there before`);
    } else if (c.key === '') {
      c.key = key;
    }
  }

  /**
   * Leader Completeness: `id` leads `term`; its persisted log must hold
   * every entry committed in an earlier term. Checked once per leader and term.
   */
  onLeader(id: string, term: number, storage: MemoryStorage): void {
    const k = `${id}@${term}`;
    if (this.checkedLeaders.has(k)) return;
    this.checkedLeaders.add(k);
    this.checkCompleteness(`${id} leads term ${term}`, term, storage);
  }

  /** Every entry known committed is in `storage` (the final leader's log, at the end of a run). */
  checkHasCommitted(id: string, storage: MemoryStorage): void {
    this.checkCompleteness(`${id} leads at the end`, Infinity, storage);
  }

  private checkCompleteness(who: string, term: number, storage: MemoryStorage): void {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    for (const [index, c] of this.committed) {
      if (c.commitTerm >= term) continue;
      if (index < first) continue; // compacted: it was applied, hence committed, on this node
      if (index > last) this.fail(`leader completeness: ${who} without ${index}/${c.term}, committed by term ${c.commitTerm}`);
      const t = storage.term(index);
      if (t !== c.term) this.fail(`leader completeness: ${who} with ${index}/${t}, but ${index}/${c.term} was committed by term ${c.commitTerm}`);
    }
  }

  /** State Machine Safety: `id` applied `e`, reaching `digest`. */
  onApply(id: string, e: Entry, digest: number): void {
    const commit = this.persistedCommit.get(id) ?? 0;
    if (e.index > commit) this.fail(`${id} applied ${e.index} beyond its commit index ${commit}`);
    const key = entryKey(e);
    const prev = this.applied.get(e.index);
    if (prev === undefined) this.applied.set(e.index, key);
    else if (prev !== key) this.fail(`state machine safety: ${id} applied ${e.index} as ${key}, another node as ${prev}`);
    const c = this.committed.get(e.index);
    if (c !== undefined && c.key !== '' && c.key !== key) this.fail(`${id} applied ${e.index} as ${key}, but ${c.key} was committed there`);
    this.recordDigest(id, e.index, digest);
  }

  /** `id` restored a snapshot at `index` whose history digest is `digest`. */
  onSnapshotRestored(id: string, index: number, digest: number): void {
    this.recordDigest(id, index, digest);
  }

  private recordDigest(id: string, index: number, digest: number): void {
    const prev = this.digests.get(index);
    if (prev === undefined) this.digests.set(index, digest);
    else if (prev !== digest) this.fail(`state machine safety: ${id} reached a different history digest at ${index}`);
  }

  /**
   * The cluster was bootstrapped with `n` conf changes (indexes 1 to `n`),
   * not compared by {@link onAppliedConfig} and {@link checkCoreConfig}.
   */
  setBootstrapEntries(n: number): void {
    this.bootstrapEntries = n;
  }

  /**
   * `id` has applied up to `applied` (an entry or a snapshot) and holds the
   * configuration `cs` there.
   */
  onAppliedConfig(id: string, applied: number, cs: ConfState): void {
    if (applied <= this.bootstrapEntries) return;
    const key = describeConfig(cs);
    const prev = this.configs.get(applied);
    if (prev === undefined) this.configs.set(applied, key);
    else if (prev !== key) this.fail(`configuration: ${id} holds ${key} at applied index ${applied}, another node held ${prev}`);
  }

  /**
   * `id` has handled every Ready, up to `appliedIndex`: its Raft core's
   * configuration `core` must be the one it applied, `applied` (after a conf
   * change or a snapshot).
   */
  checkCoreConfig(id: string, appliedIndex: number, core: ConfState, applied: ConfState): void {
    if (appliedIndex <= this.bootstrapEntries) return;
    const a = describeConfig(applied);
    const c = describeConfig(core);
    if (a !== c) this.fail(`configuration: ${id}'s Raft core uses ${c}, but it applied ${a}`);
  }

  /** A ReadIndex request with context `ctx` was just made. */
  onReadRequested(ctx: Uint8Array): void {
    this.reads.set(decoder.decode(ctx), this.maxCommit);
  }

  /** A ReadState came out of `id`'s Ready. */
  onReadState(id: string, rs: ReadState): void {
    const ctx = decoder.decode(rs.requestCtx);
    const floor = this.reads.get(ctx);
    if (floor === undefined) this.fail(`${id} answered an unknown read request ${ctx}`);
    if (rs.index < floor) this.fail(`ReadIndex: ${id} answered read ${ctx} at index ${rs.index}, below the commit index ${floor} known when it was made`);
    this.stats.readStates++;
  }

  /**
   * Log Matching, in full: for every pair of stable logs, the entries up to
   * the last index where both have the same term are identical.
   */
  checkLogsPairwise(logs: ReadonlyMap<string, MemoryStorage>): void {
    const ids = [...logs.keys()];
    const snapshots = ids.map((id) => {
      const s = logs.get(id)!;
      const first = s.firstIndex();
      const last = s.lastIndex();
      return { id, first, ents: last >= first ? s.entries(first, last + 1, Infinity) : [] };
    });
    for (let a = 0; a < snapshots.length; a++) {
      for (let b = a + 1; b < snapshots.length; b++) {
        const x = snapshots[a]!;
        const y = snapshots[b]!;
        const lo = Math.max(x.first, y.first);
        const hi = Math.min(x.first + x.ents.length, y.first + y.ents.length) - 1;
        let match = -1;
        for (let i = hi; i >= lo; i--) {
          if (x.ents[i - x.first]!.term === y.ents[i - y.first]!.term) {
            match = i;
            break;
          }
        }
        for (let i = lo; i <= match; i++) {
          const ex = x.ents[i - x.first]!;
          const ey = y.ents[i - y.first]!;
          if (entryKey(ex) !== entryKey(ey)) {
            this.fail(`log matching: ${x.id} and ${y.id} both have ${match}/${x.ents[match - x.first]!.term} but differ at ${i}: ${entryKey(ex)} vs ${entryKey(ey)}`);
          }
        }
      }
    }
  }
}
