/**
 * A follower's replication progress as the leader tracks it (etcd-io/raft
 * `tracker/progress.go`), with its flow-control state machine:
 *
 * - `probe`: the leader does not know where the follower's log matches; it
 *   sends at most one MsgApp per heartbeat interval and waits for the answer
 *   (Raft §5.3, backing off `next` on rejection);
 * - `replicate`: the follower's log is known; the leader streams MsgApps
 *   optimistically, bounded by the {@link Inflights} window;
 * - `snapshot`: the follower needs a snapshot (its next entry was compacted);
 *   nothing else is sent until the snapshot is reported done.
 * @module
 */
import type { ProgressState } from '../types.js';
import { Inflights } from './inflights.js';

/** What the leader knows about one peer's log. */
export class Progress {
  /** Highest index known to match the leader's log. */
  match: number;
  /**
   * Next index to send. Entries in `(match, next)` are in flight.
   * Invariant: `match < next`.
   */
  next: number;
  /** Highest commit index in flight to the follower. Invariant: `pendingCommit < next`. */
  pendingCommit = 0;
  state: ProgressState = 'probe';
  /** Index of the snapshot in flight (`snapshot` state), else 0. */
  pendingSnapshot = 0;
  /** Heard from within the last election timeout (CheckQuorum, thesis §6.2). Always true for the leader itself. */
  recentActive = false;
  /**
   * Pauses empty "probe" MsgApps: set after each MsgApp, cleared by a
   * heartbeat response (or a change of state), so that a follower whose
   * messages were all lost is probed again once per heartbeat. An
   * acknowledgement does not clear it (as in etcd's raft): in `replicate`
   * a follower that acknowledges an index while later entries are in
   * flight needs no empty MsgApp.
   */
  msgAppProbesPaused = false;
  readonly inflights: Inflights;
  isLearner: boolean;

  /** @param inflights - the window to use (a fresh empty one of `maxInflight` by default) */
  constructor(match: number, next: number, maxInflight: number, isLearner: boolean, inflights?: Inflights) {
    this.match = match;
    this.next = next;
    this.inflights = inflights ?? new Inflights(maxInflight);
    this.isLearner = isLearner;
  }

  /**
   * An independent copy with every field, the messages in flight included
   * (as etcd's conf change code copies a Progress, sharing its Inflights):
   * a changed configuration does not reopen a full window.
   */
  clone(): Progress {
    const c = new Progress(this.match, this.next, this.inflights.size, this.isLearner, this.inflights.clone());
    c.pendingCommit = this.pendingCommit;
    c.state = this.state;
    c.pendingSnapshot = this.pendingSnapshot;
    c.recentActive = this.recentActive;
    c.msgAppProbesPaused = this.msgAppProbesPaused;
    return c;
  }

  /** Moves to `state`, clearing the pause, the pending snapshot and the inflights. */
  resetState(state: ProgressState): void {
    this.msgAppProbesPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  /**
   * Enters `probe`: `next` goes back to `match + 1`, or just after the
   * snapshot when leaving the `snapshot` state (it was sent successfully).
   */
  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pendingSnapshot = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pendingSnapshot + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
      this.pendingCommit = Math.min(this.pendingCommit, this.match);
    }
  }

  /** Enters `replicate` with `next = match + 1`. */
  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
    this.pendingCommit = Math.min(this.pendingCommit, this.match);
  }

  /** Enters `snapshot` with the snapshot at `snapshotIndex` in flight. */
  becomeSnapshot(snapshotIndex: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /**
   * A MsgApp with `entries` consecutive entries from `next` was sent: in
   * `replicate`, `next` moves past them optimistically and the message joins
   * the inflights. Probes are paused until the next heartbeat response.
   */
  sentEntries(entries: number): void {
    if (this.state === 'replicate' && entries > 0) {
      this.next += entries;
      this.inflights.add(this.next - 1);
    }
    this.msgAppProbesPaused = true;
  }

  /** True when the flow control allows sending at least one entry (`probe`/`replicate`). */
  canSendEntries(lastIndex: number): boolean {
    return this.next <= lastIndex && (this.state === 'probe' || !this.inflights.full());
  }

  /** True when sending commit index `index` may advance the follower's commit. */
  canBumpCommit(index: number): boolean {
    return this.pendingCommit < Math.min(index, this.next - 1);
  }

  /** A commit index was sent (in a MsgApp or heartbeat). */
  sentCommit(commit: number): void {
    this.pendingCommit = Math.min(Math.max(this.pendingCommit, commit), this.next - 1);
  }

  /**
   * A MsgAppResp acknowledged index `n`. Returns false when it is stale
   * (`n <= match`); otherwise updates `match` (and `next` if needed).
   */
  maybeUpdate(n: number): boolean {
    if (n <= this.match) return false;
    this.match = n;
    this.next = Math.max(this.next, n + 1);
    return true;
  }

  /**
   * A MsgApp at `rejected` was refused, with the follower's hint `matchHint`
   * (the largest index where the logs may still match). Returns false when
   * the rejection is stale (out-of-order or duplicated); otherwise lowers
   * `next` and allows the next probe.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      // The rejection must be stale if the progress has matched and
      // "rejected" is smaller than "match".
      if (rejected <= this.match) return false;
      // Directly decrease next to match + 1.
      this.next = this.match + 1;
      this.pendingCommit = Math.min(this.pendingCommit, this.match);
      return true;
    }
    // The rejection must be stale if "rejected" does not match next - 1:
    // non-replicating followers are probed one message at a time.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.pendingCommit = Math.min(this.pendingCommit, this.next - 1);
    this.msgAppProbesPaused = false;
    return true;
  }

  /** True when sending MsgApps to this peer is throttled (diagnostics and tests). */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.msgAppProbesPaused;
      case 'replicate':
        return this.msgAppProbesPaused && this.inflights.full();
      case 'snapshot':
        return true;
    }
  }

  /**
   * Whether the leader should send a MsgApp now, given its last and commit
   * index: in `probe`, one message per heartbeat (unpaused); in `replicate`,
   * when there are entries not yet in flight and room in the window, when
   * the commit index can be bumped, or for a periodic empty probe; never in
   * `snapshot`.
   */
  shouldSendMsgApp(last: number, commit: number): boolean {
    switch (this.state) {
      case 'probe':
        return !this.msgAppProbesPaused;
      case 'replicate':
        return this.canBumpCommit(commit) || (this.match < last && (!this.msgAppProbesPaused || this.canSendEntries(last)));
      case 'snapshot':
        return false;
    }
  }

  toString(): string {
    let s = `${this.state} match=${this.match} next=${this.next}`;
    if (this.isLearner) s += ' learner';
    if (this.isPaused()) s += ' paused';
    if (this.pendingSnapshot > 0) s += ` pendingSnap=${this.pendingSnapshot}`;
    if (!this.recentActive) s += ' inactive';
    const n = this.inflights.length;
    if (n > 0) s += ` inflight=${n}${this.inflights.full() ? '[full]' : ''}`;
    return s;
  }
}
