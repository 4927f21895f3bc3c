/**
 * An in-memory {@link Storage}, after etcd-io/raft's `MemoryStorage`
 * (`storage.go`): the log as an array whose slot 0 is a dummy entry holding
 * the index and term of the latest snapshot (or 0/0 for an empty log).
 *
 * The driver writes to it in the Ready cycle (`append`, `setHardState`,
 * `applySnapshot`) and compacts it after taking snapshots (`createSnapshot`,
 * `compact`); the Raft core only reads.
 * @module
 */
import { ErrorCode, FaultError, UsageError } from '../errors.js';
import { describeValue } from '../arg-values.js';
import type { ConfState, Entry, HardState, Snapshot } from '../raftpb/index.js';
import { emptyHardState, emptySnapshot } from '../raftpb/index.js';
import { checkEntries, checkSnapshot, checkSnapshotData } from './entry-checks.js';
import { limitSize } from './entry-size.js';
import type { Storage } from './types.js';

function compacted(i: number, first: number): FaultError {
  return new FaultError(ErrorCode.LOG_COMPACTED, `requested index ${i} is unavailable due to compaction (first index ${first})`);
}

function unavailable(i: number, last: number): FaultError {
  return new FaultError(ErrorCode.LOG_UNAVAILABLE, `requested index ${i} is unavailable (last index ${last})`);
}

/** @throws UsageError `QUORUMKV_INVALID_ARGUMENT` unless `v` is a non-negative safe integer */
function checkIndex(v: unknown, what: string): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new UsageError(ErrorCode.INVALID_ARGUMENT, `${what} must be a non-negative integer, got ${describeValue(v)}`);
  }
}

function copyConfState(cs: ConfState): ConfState {
  return { voters: cs.voters.slice(), learners: cs.learners.slice() };
}

/**
 * A {@link Storage} kept in memory. Entries are treated as immutable: the
 * arrays it returns are fresh, the entry objects are shared.
 *
 * Errors (`FaultError`, as etcd's `ErrCompacted`, `ErrUnavailable`,
 * `ErrSnapOutOfDate`):
 * - `QUORUMKV_LOG_COMPACTED`: an index before the first available one;
 * - `QUORUMKV_LOG_UNAVAILABLE`: an index after the last one;
 * - `QUORUMKV_SNAPSHOT_OUT_OF_DATE`: a snapshot not newer than the current one.
 *
 * @example
 * ```ts
 * const storage = new MemoryStorage();
 * const node = new RawNode({ id: 'a', storage });
 * node.bootstrap(['a', 'b', 'c']);
 * const rd = node.ready();
 * if (rd.snapshot) storage.applySnapshot(rd.snapshot);
 * storage.append(rd.entries);
 * if (rd.hardState) storage.setHardState(rd.hardState);
 * // send rd.messages, apply rd.committedEntries, then:
 * node.advance();
 * ```
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = emptyHardState();
  private snap: Snapshot = emptySnapshot();
  /** Conf state reported by `initialState()` (the snapshot's, or the last `setConfState`). */
  private confState: ConfState = { voters: [], learners: [] };
  /** `ents[0]` is a dummy entry at the snapshot's index and term. */
  private ents: Entry[] = [{ term: 0, index: 0, type: 'Normal', data: new Uint8Array(0) }];

  /** The HardState last set and the current ConfState. */
  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: { ...this.hardState }, confState: copyConfState(this.confState) };
  }

  /** Saves the HardState (term, vote, commit). */
  setHardState(hs: HardState): void {
    this.hardState = { term: hs.term, vote: hs.vote, commit: hs.commit };
  }

  /**
   * Records the ConfState `initialState()` reports, for drivers that persist
   * the membership after applying a conf change (an addition to etcd's
   * MemoryStorage, whose ConfState only comes from snapshots).
   */
  setConfState(cs: ConfState): void {
    this.confState = copyConfState(cs);
  }

  /**
   * Entries in `[lo, hi)`, capped at `maxSize` payload bytes (at least one
   * entry is returned).
   * @throws FaultError `QUORUMKV_LOG_COMPACTED` when `lo <= snapshot index`
   * @throws FaultError `QUORUMKV_LOG_UNAVAILABLE` when `hi > lastIndex() + 1` or the log is empty
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `lo` or `hi` is not a non-negative integer
   */
  entries(lo: number, hi: number, maxSize: number = Infinity): Entry[] {
    checkIndex(lo, 'lo');
    checkIndex(hi, 'hi');
    const offset = this.ents[0]!.index;
    if (lo <= offset) throw compacted(lo, offset + 1);
    if (hi > this.lastIndex() + 1) throw unavailable(hi - 1, this.lastIndex());
    // only contains the dummy entry
    if (this.ents.length === 1) throw unavailable(lo, this.lastIndex());
    if (lo >= hi) return [];
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxSize);
  }

  /**
   * Term of the entry at `i`, for `firstIndex() - 1 <= i <= lastIndex()`.
   * @throws FaultError `QUORUMKV_LOG_COMPACTED` / `QUORUMKV_LOG_UNAVAILABLE`
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `i` is not a non-negative integer
   */
  term(i: number): number {
    checkIndex(i, 'index');
    const offset = this.ents[0]!.index;
    if (i < offset) throw compacted(i, offset + 1);
    if (i - offset >= this.ents.length) throw unavailable(i, this.lastIndex());
    return this.ents[i - offset]!.term;
  }

  /** Index of the last entry (the snapshot's index when no entry follows it). */
  lastIndex(): number {
    return this.ents[0]!.index + this.ents.length - 1;
  }

  /** Index of the first available entry (snapshot index + 1). */
  firstIndex(): number {
    return this.ents[0]!.index + 1;
  }

  /** The most recent snapshot (the empty one, index 0, before any). */
  snapshot(): Snapshot {
    return this.snap;
  }

  /**
   * Replaces the contents with a snapshot received from the leader
   * (`Ready.snapshot`): the log becomes empty after the snapshot's index, and
   * the ConfState becomes the snapshot's.
   * @throws FaultError `QUORUMKV_SNAPSHOT_OUT_OF_DATE` when it is not newer than the current snapshot
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when it has no metadata, its index or term is not a
   *   non-negative integer, its confState not `{ voters, learners }` arrays of ids, or its data is not a `Uint8Array` whose bytes can be read (not one at
   *   all, a Proxy of one, or a view of a detached or shrunk buffer); nothing changes
   */
  applySnapshot(snap: Snapshot): void {
    // before anything changes: a missing confState threw a TypeError once the snapshot was taken
    checkSnapshot(snap);
    const msIndex = this.snap.metadata.index;
    const snapIndex = snap.metadata.index;
    if (msIndex >= snapIndex) {
      throw new FaultError(ErrorCode.SNAPSHOT_OUT_OF_DATE, `snapshot ${snapIndex} is not newer than the current one (${msIndex})`);
    }
    this.snap = snap;
    this.confState = copyConfState(snap.metadata.confState);
    this.ents = [{ term: snap.metadata.term, index: snapIndex, type: 'Normal', data: new Uint8Array(0) }];
  }

  /**
   * Makes and stores a snapshot at applied index `i` (the driver's state
   * machine state `data`, membership `cs`), so that `compact(i)` can then
   * drop the entries it covers. Returns it.
   * @throws FaultError `QUORUMKV_SNAPSHOT_OUT_OF_DATE` when `i <=` the current snapshot's index
   * @throws FaultError `QUORUMKV_LOG_UNAVAILABLE` when `i > lastIndex()`
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `i` is not a non-negative integer, or
   *   `data` is not a `Uint8Array` whose bytes can be read (not one at all, a Proxy of one, or a
   *   view of a detached or shrunk buffer); nothing changes
   */
  createSnapshot(i: number, cs: ConfState | undefined, data: Uint8Array): Snapshot {
    checkIndex(i, 'snapshot index');
    checkSnapshotData(data);
    if (i <= this.snap.metadata.index) {
      throw new FaultError(ErrorCode.SNAPSHOT_OUT_OF_DATE, `snapshot ${i} is not newer than the current one (${this.snap.metadata.index})`);
    }
    const offset = this.ents[0]!.index;
    if (i > this.lastIndex()) throw unavailable(i, this.lastIndex());
    const confState = cs === undefined ? copyConfState(this.confState) : copyConfState(cs);
    this.snap = { data, metadata: { index: i, term: this.ents[i - offset]!.term, confState } };
    if (cs !== undefined) this.confState = copyConfState(cs);
    return this.snap;
  }

  /**
   * Replaces the data of the current snapshot, if its index is `index`,
   * keeping its metadata: a driver whose state machine now holds that state
   * durably stops holding the state in memory too. Returns whether it did.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `data` is not a `Uint8Array` whose bytes
   *   can be read (not one at all, a Proxy of one, or a view of a detached or shrunk buffer);
   *   nothing changes
   */
  replaceSnapshotData(index: number, data: Uint8Array): boolean {
    checkSnapshotData(data);
    if (this.snap.metadata.index !== index) return false;
    this.snap = { data, metadata: this.snap.metadata };
    return true;
  }

  /**
   * Discards the entries up to `compactIndex` (which must have been applied
   * and should be covered by a snapshot); the entry at `compactIndex` stays
   * as the dummy, so its term remains available.
   * @throws FaultError `QUORUMKV_LOG_COMPACTED` when `compactIndex <= ` the current snapshot index
   * @throws FaultError `QUORUMKV_LOG_UNAVAILABLE` when `compactIndex > lastIndex()`
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `compactIndex` is not a non-negative integer
   */
  compact(compactIndex: number): void {
    checkIndex(compactIndex, 'compact index');
    const offset = this.ents[0]!.index;
    if (compactIndex <= offset) throw compacted(compactIndex, offset + 1);
    if (compactIndex > this.lastIndex()) throw unavailable(compactIndex, this.lastIndex());
    const i = compactIndex - offset;
    const dummy: Entry = { term: this.ents[i]!.term, index: this.ents[i]!.index, type: 'Normal', data: new Uint8Array(0) };
    const rest = this.ents.slice(i + 1);
    rest.unshift(dummy);
    this.ents = rest;
  }

  /**
   * Appends entries (`Ready.entries`), replacing any conflicting suffix.
   * Entries before the first available index are ignored. The entries must
   * be well formed (as the durable storages check them: an index of at
   * least 1 and a term that are safe integers, type `'Normal'` or
   * `'ConfChange'`, data that is a `Uint8Array` whose bytes can be read, not
   * a Proxy of one nor a view of a detached or shrunk buffer), consecutive,
   * with terms that never decrease, and must neither leave a gap after the
   * last index nor start with a term below that of the entry they follow in
   * the log (Raft §5.3: the terms of a log never decrease).
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `entries` is not an array, an entry is
   *   malformed (its data not a `Uint8Array`, a Proxy of one, or a view of a detached or shrunk
   *   buffer included), the entries are not consecutive or their term decreases, on a gap, or
   *   when the first new entry's term is below the term of the entry before it (nothing changes)
   */
  append(entries: readonly Entry[]): void {
    checkEntries(entries);
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[entries.length - 1]!.index;
    // shortcut if there is no new entry
    if (last < first) return;
    // truncate compacted entries
    let ents = entries;
    if (first > entries[0]!.index) ents = entries.slice(first - entries[0]!.index);
    const offset = ents[0]!.index - this.ents[0]!.index;
    if (offset > this.ents.length) {
      throw new UsageError(
        ErrorCode.INVALID_ARGUMENT,
        `missing log entry [last: ${this.lastIndex()}, append at: ${ents[0]!.index}]`,
      );
    }
    // offset >= 1: the first new entry follows the dummy at least
    const before = this.ents[offset - 1]!;
    if (ents[0]!.term < before.term) {
      throw new UsageError(
        ErrorCode.INVALID_ARGUMENT,
        `entry ${ents[0]!.index} has term ${ents[0]!.term}, below the term ${before.term} of entry ${before.index} before it in the log`,
      );
    }
    if (offset < this.ents.length) this.ents.length = offset;
    for (let j = 0; j < ents.length; j++) this.ents.push(ents[j]!);
  }
}
