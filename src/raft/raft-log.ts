/**
 * The Raft log as the core sees it (etcd-io/raft `log.go`): the stable part in
 * {@link Storage} followed by the {@link Unstable} part, plus the commit and
 * applied cursors.
 *
 * Invariant: `applied <= committed <= lastIndex()`, and
 * `firstIndex() - 1 <= committed`.
 * @module
 */
import { ErrorCode, FaultError, isQuorumError } from '../errors.js';
import type { Entry, Snapshot } from '../raftpb/index.js';
import { limitSize } from './entry-size.js';
import { Unstable } from './log-unstable.js';
import type { RaftLogger, Storage } from './types.js';

/** A fault the core cannot recover from: the log contradicts itself or the storage misbehaves. */
function fatal(msg: string): FaultError {
  return new FaultError(ErrorCode.CORRUPT_LOG, msg);
}

/** The log: storage + unstable entries, with commit/applied cursors. */
export class RaftLog {
  readonly storage: Storage;
  readonly unstable: Unstable;
  /** Highest index known to be stored on a quorum. */
  committed: number;
  /** Highest index the driver has applied (acknowledged by `advance()`). */
  applied: number;
  /** Cap on the payload bytes of committed entries handed out per Ready. */
  readonly maxNextCommittedSize: number;
  private readonly logger: RaftLogger | undefined;

  constructor(storage: Storage, maxNextCommittedSize: number, logger?: RaftLogger) {
    this.storage = storage;
    this.maxNextCommittedSize = maxNextCommittedSize;
    this.logger = logger;
    const firstIndex = storage.firstIndex();
    const lastIndex = storage.lastIndex();
    this.unstable = new Unstable(lastIndex + 1);
    // Initialize the committed and applied pointers to the last compaction.
    this.committed = firstIndex - 1;
    this.applied = firstIndex - 1;
  }

  /**
   * Appends the entries of a MsgApp (previous entry `(index, logTerm)`) if
   * the log matches there (Raft §5.3, the log-matching check), truncating a
   * conflicting suffix, and advances commit to `min(committed, last new
   * index)`. Returns the last index of the new entries, or -1 when the log
   * does not match.
   * @throws FaultError `QUORUMKV_CORRUPT_LOG` if the entries conflict with a committed entry
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: readonly Entry[]): number {
    if (!this.matchTerm(index, logTerm)) return -1;
    const lastNewIndex = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      if (ci <= this.committed) {
        throw fatal(`entry ${ci} conflicts with committed entry [committed(${this.committed})]`);
      }
      const offset = index + 1;
      this.append(ci === offset ? ents : ents.slice(ci - offset));
    }
    this.commitTo(Math.min(committed, lastNewIndex));
    return lastNewIndex;
  }

  /** Appends entries at the end (truncating from `ents[0].index`); returns the new last index. */
  append(ents: readonly Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index - 1;
    if (after < this.committed) throw fatal(`after(${after}) is out of range [committed(${this.committed})]`);
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /**
   * The index of the first entry of `ents` whose term differs from the
   * log's entry at that index (or that the log does not have); 0 when the
   * log already contains all of `ents`.
   */
  findConflict(ents: readonly Entry[]): number {
    for (let i = 0; i < ents.length; i++) {
      const ne = ents[i]!;
      if (!this.matchTerm(ne.index, ne.term)) {
        if (ne.index <= this.lastIndex() && this.logger !== undefined) {
          this.logger.info(`found conflict at index ${ne.index} [existing term: ${this.termOrZero(ne.index)}, conflicting term: ${ne.term}]`);
        }
        return ne.index;
      }
    }
    return 0;
  }

  /**
   * The best guess of where this log stops matching another log of which
   * only the entry `(index, term)` is known: the largest `i <= index` with
   * `term(i) <= term` (or whose term is unknown, compacted or missing). Used
   * by both follower and leader for fast backtracking after a rejected
   * MsgApp (Raft thesis §5.3 "fast log backtracking"; etcd
   * `findConflictByTerm`). Returns `[index, termAtIndex]`, term 0 when unknown.
   */
  findConflictByTerm(index: number, term: number): [number, number] {
    for (; index > 0; index--) {
      const t = this.termOrUndefined(index);
      if (t === undefined) return [index, 0];
      if (t <= term) return [index, t];
    }
    return [0, 0];
  }

  /** Unstable entries to hand out in a Ready (a copy). */
  unstableEntries(): Entry[] {
    return this.unstable.entries.length === 0 ? [] : this.unstable.entries.slice();
  }

  /** True when there are committed entries to hand out (a cheap check). */
  hasNextCommittedEnts(): boolean {
    if (this.unstable.snapshot !== undefined) return false;
    return Math.max(this.applied + 1, this.firstIndex()) <= this.committed;
  }

  /**
   * Committed entries not yet applied, from `applied + 1`, capped at
   * `maxNextCommittedSize` payload bytes (at least one). Empty while a
   * snapshot is waiting to be persisted: it must be applied first.
   * Committed entries may still be unstable; the Ready contract persists
   * before it applies.
   */
  nextCommittedEnts(): Entry[] {
    if (this.unstable.snapshot !== undefined) return [];
    const lo = Math.max(this.applied + 1, this.firstIndex());
    const hi = this.committed + 1;
    if (lo >= hi) return [];
    return this.slice(lo, hi, this.maxNextCommittedSize);
  }

  /** The pending snapshot if any, else the storage's latest (`forPeer`: see `Storage.snapshot`). */
  snapshot(forPeer?: string): Snapshot {
    if (this.unstable.snapshot !== undefined) return this.unstable.snapshot;
    return this.storage.snapshot(forPeer);
  }

  firstIndex(): number {
    const i = this.unstable.maybeFirstIndex();
    if (i !== undefined) return i;
    return this.storage.firstIndex();
  }

  lastIndex(): number {
    const i = this.unstable.maybeLastIndex();
    if (i !== undefined) return i;
    return this.storage.lastIndex();
  }

  /**
   * Raises commit to `toCommit` (never lowers it).
   * @throws FaultError `QUORUMKV_CORRUPT_LOG` when `toCommit > lastIndex()`
   */
  commitTo(toCommit: number): void {
    if (this.committed < toCommit) {
      if (this.lastIndex() < toCommit) {
        throw fatal(`tocommit(${toCommit}) is out of range [lastIndex(${this.lastIndex()})]; was the raft log corrupted, truncated, or lost?`);
      }
      this.committed = toCommit;
    }
  }

  /** Records that entries up to `i` were applied (`applied <= i <= committed`). */
  appliedTo(i: number): void {
    if (i === 0) return;
    if (this.committed < i || i < this.applied) {
      throw fatal(`applied(${i}) is out of range [prevApplied(${this.applied}), committed(${this.committed})]`);
    }
    this.applied = i;
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  lastTerm(): number {
    const t = this.termOrUndefined(this.lastIndex());
    if (t === undefined) throw fatal(`unexpected error when getting the last term`);
    return t;
  }

  /**
   * Term of entry `i`, or undefined when it is compacted or beyond the last
   * index. The valid range is `[firstIndex() - 1, lastIndex()]`: the term of
   * the entry just before the first one is kept (the snapshot's).
   */
  termOrUndefined(i: number): number | undefined {
    // The unstable log first: a hit there is always in range.
    const ut = this.unstable.maybeTerm(i);
    if (ut !== undefined) return ut;
    if (i + 1 < this.firstIndex()) return undefined;
    if (i > this.lastIndex()) return undefined;
    try {
      return this.storage.term(i);
    } catch (err) {
      if (isQuorumError(err, ErrorCode.LOG_COMPACTED) || isQuorumError(err, ErrorCode.LOG_UNAVAILABLE)) return undefined;
      throw err;
    }
  }

  /** Term of entry `i`, 0 when it is out of bounds (etcd's `zeroTermOnOutOfBounds`). */
  termOrZero(i: number): number {
    return this.termOrUndefined(i) ?? 0;
  }

  /**
   * Entries from `i` to the end, capped at `maxSize` payload bytes.
   * @throws FaultError `QUORUMKV_LOG_COMPACTED` when `i < firstIndex()`
   */
  entries(i: number, maxSize: number): Entry[] {
    const last = this.lastIndex();
    if (i > last) return [];
    return this.slice(i, last + 1, maxSize);
  }

  /** Every entry in the log (tests and diagnostics). */
  allEntries(): Entry[] {
    return this.entries(this.firstIndex(), Infinity);
  }

  /**
   * True when a log whose last entry is `(lasti, term)` is at least as
   * up-to-date as this one (Raft §5.4.1): a later last term wins, and with
   * equal last terms the longer log wins.
   */
  isUpToDate(lasti: number, term: number): boolean {
    const lastTerm = this.lastTerm();
    return term > lastTerm || (term === lastTerm && lasti >= this.lastIndex());
  }

  matchTerm(i: number, term: number): boolean {
    const t = this.termOrUndefined(i);
    return t !== undefined && t === term;
  }

  /**
   * Commits up to `maxIndex` if that entry has term `term` (the leader's
   * current term: Raft §5.4.2, a leader only commits entries of its own term
   * by counting replicas). Returns true when commit moved.
   */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && term !== 0 && this.termOrZero(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  /** Resets the log to a snapshot received from the leader. */
  restore(s: Snapshot): void {
    this.logger?.info(`log [committed=${this.committed}, applied=${this.applied}] starts to restore snapshot [index: ${s.metadata.index}, term: ${s.metadata.term}]`);
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }

  /**
   * Entries in `[lo, hi)`, capped at `maxSize` payload bytes (at least one).
   * @throws FaultError `QUORUMKV_LOG_COMPACTED` when `lo < firstIndex()`
   */
  slice(lo: number, hi: number, maxSize: number): Entry[] {
    this.mustCheckOutOfBounds(lo, hi);
    if (lo === hi) return [];
    const off = this.unstable.offset;
    let ents: Entry[] = [];
    if (lo < off) {
      const stop = Math.min(hi, off);
      let stored: Entry[];
      try {
        stored = this.storage.entries(lo, stop, maxSize);
      } catch (err) {
        if (isQuorumError(err, ErrorCode.LOG_UNAVAILABLE)) {
          throw fatal(`entries[${lo}:${stop}) is unavailable from storage`);
        }
        throw err;
      }
      // the storage capped the size: stop here
      if (stored.length < stop - lo) return stored;
      ents = stored;
    }
    if (hi > off) {
      const unstable = this.unstable.slice(Math.max(lo, off), hi);
      if (ents.length > 0) {
        const combined = ents.slice();
        for (let i = 0; i < unstable.length; i++) combined.push(unstable[i]!);
        ents = combined;
      } else {
        ents = unstable;
      }
    }
    return limitSize(ents, maxSize);
  }

  /** Checks `firstIndex() <= lo <= hi <= lastIndex() + 1`. */
  private mustCheckOutOfBounds(lo: number, hi: number): void {
    if (lo > hi) throw fatal(`invalid slice ${lo} > ${hi}`);
    const fi = this.firstIndex();
    if (lo < fi) {
      throw new FaultError(ErrorCode.LOG_COMPACTED, `requested index ${lo} is unavailable due to compaction (first index ${fi})`);
    }
    const length = this.lastIndex() + 1 - fi;
    if (hi > fi + length) throw fatal(`slice[${lo},${hi}) out of bound [${fi},${this.lastIndex()}]`);
  }
}
