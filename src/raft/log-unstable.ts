/**
 * The unstable part of the Raft log (etcd-io/raft `log_unstable.go`): entries
 * and possibly a snapshot that the core has accepted but the driver has not
 * yet written to stable storage.
 * @module
 */
import type { Entry, Snapshot } from '../raftpb/index.js';

/**
 * Unstable entries and snapshot.
 *
 * Invariants: `entries[i].index === offset + i`; when `snapshot` is set,
 * `offset === snapshot.metadata.index + 1`.
 */
export class Unstable {
  /** The incoming snapshot, if any, not yet persisted. */
  snapshot: Snapshot | undefined = undefined;
  /** Entries not yet persisted. */
  entries: Entry[] = [];
  /** Index of `entries[0]` (or of the next entry to append). */
  offset: number;

  constructor(offset: number) {
    this.offset = offset;
  }

  /** Index of the first entry when a snapshot is pending, else undefined. */
  maybeFirstIndex(): number | undefined {
    return this.snapshot !== undefined ? this.snapshot.metadata.index + 1 : undefined;
  }

  /** Last index if there are unstable entries or a snapshot, else undefined. */
  maybeLastIndex(): number | undefined {
    if (this.entries.length !== 0) return this.offset + this.entries.length - 1;
    if (this.snapshot !== undefined) return this.snapshot.metadata.index;
    return undefined;
  }

  /** Term of entry `i` if it is held here (entry or snapshot position), else undefined. */
  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot !== undefined && this.snapshot.metadata.index === i) return this.snapshot.metadata.term;
      return undefined;
    }
    const k = i - this.offset;
    if (k >= this.entries.length) return undefined;
    return this.entries[k]!.term;
  }

  /**
   * Entries up to `(i, t)` have been persisted: drop them. Ignored when the
   * entry at `i` no longer has term `t` (it was replaced meanwhile by a newer
   * leader's entry, which still has to be persisted).
   */
  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i);
    if (gt === undefined || gt !== t || i < this.offset) return;
    const n = i + 1 - this.offset;
    if (n >= this.entries.length) this.entries = [];
    else this.entries = this.entries.slice(n);
    this.offset = i + 1;
  }

  /** The snapshot at index `i` has been persisted. */
  stableSnapTo(i: number): void {
    if (this.snapshot !== undefined && this.snapshot.metadata.index === i) this.snapshot = undefined;
  }

  /** Replaces everything with a snapshot received from the leader. */
  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1;
    this.entries = [];
    this.snapshot = s;
  }

  /**
   * Appends `ents` (consecutive), first truncating any existing suffix from
   * `ents[0].index` on (the conflicting tail a new leader overwrites).
   */
  truncateAndAppend(ents: readonly Entry[]): void {
    const after = ents[0]!.index;
    if (after === this.offset + this.entries.length) {
      // after is the next index in the entries: append directly
      for (let i = 0; i < ents.length; i++) this.entries.push(ents[i]!);
    } else if (after <= this.offset) {
      // the log is being truncated to before our current offset portion:
      // replace the unstable entries altogether
      this.offset = after;
      this.entries = ents.slice();
    } else {
      // truncate to after and copy, then append
      const kept = this.entries.slice(0, after - this.offset);
      for (let i = 0; i < ents.length; i++) kept.push(ents[i]!);
      this.entries = kept;
    }
  }

  /** Entries in `[lo, hi)`; the caller checks `offset <= lo <= hi <= offset + entries.length`. */
  slice(lo: number, hi: number): Entry[] {
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}
