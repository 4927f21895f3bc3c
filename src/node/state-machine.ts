/**
 * The seam between a {@link RaftNode} and what it replicates. Any
 * application state machine can be plugged in, not only the MVCC store.
 * @module
 */
import type { ConfChange } from '../raftpb/index.js';

/**
 * One committed log entry as the state machine receives it.
 * - `kind: 'normal'`: `data` is exactly the bytes given to `RaftNode.propose`;
 * - `kind: 'noop'`: the empty entry a new leader appends (Raft §5.4.2); nothing to do
 *   but remember the index;
 * - `kind: 'confChange'`: a membership change, already applied to Raft by the node;
 *   `confChange` says which. `data` is empty.
 */
export interface ApplyEntry {
  /** Raft log index (1-based). */
  index: number;
  /** Term of the leader that created the entry. */
  term: number;
  /** What the entry is: a proposal, a new leader's empty entry, or a membership change. */
  kind: 'normal' | 'noop' | 'confChange';
  /** The proposed bytes (`normal`); empty for `noop` and `confChange`. */
  data: Uint8Array;
  /** The membership change that was applied (`confChange` only; absent otherwise). */
  confChange?: ConfChange;
}

/** A snapshot handed to {@link StateMachine.restore}. */
export interface StateMachineSnapshot {
  /** What {@link StateMachine.snapshot} produced on some member. */
  data: Uint8Array;
  /** Log index the snapshot covers (the machine's applied index after restore). */
  index: number;
  /** Term of the entry at `index`. */
  term: number;
}

/**
 * A deterministic state machine replicated by Raft (Raft §2: replicated state
 * machines). Every member applies the same entries in the same order, so
 * `apply` must depend only on its input and the current state (no clock, no
 * randomness).
 *
 * Exactly-once across crashes: a durable state machine stores the index of
 * the last entry it applied in the same atomic write as the entry's effects,
 * and reports it from {@link appliedIndex}; the node then never hands it an
 * entry at or below that index again. A purely in-memory state machine
 * returns 0 after a restart and is rebuilt from the latest snapshot and the log.
 *
 * @typeParam R - the result of applying one entry, returned to the proposer
 */
export interface StateMachine<R = unknown> {
  /** Index of the last entry whose effects this machine holds (0 when fresh). */
  appliedIndex(): number | Promise<number>;
  /**
   * Applies committed entries, in log order, and returns one result per
   * entry (the results of `noop` and `confChange` entries are ignored). The
   * node does not call `apply`, `snapshot` or `restore` concurrently.
   * Throwing is fatal for the node (the replicated state would diverge).
   */
  apply(entries: ApplyEntry[]): R[] | Promise<R[]>;
  /** The whole state at the current applied index, as bytes (Raft §7). */
  snapshot(): Uint8Array | Promise<Uint8Array>;
  /** Replaces the whole state with a snapshot; afterwards `appliedIndex()` is `snapshot.index`. */
  restore(snapshot: StateMachineSnapshot): void | Promise<void>;
  /**
   * Optional, for a state machine that is durable by itself: makes the
   * effects of every entry applied so far durable (fsync), so that they and
   * {@link appliedIndex} survive a machine crash. A node whose state machine
   * has it records only the index, term and membership of its periodic
   * snapshots (calling `sync()` first, then compacting the log behind them)
   * and calls {@link snapshot} only when a lagging follower needs the state,
   * as etcd sends its backend database on demand instead of keeping a copy
   * (Raft thesis §5.2, snapshotting disk-based state machines: the state machine's own durable state serves as
   * the snapshot). Without it, every periodic snapshot carries
   * {@link snapshot}'s bytes and is stored with the log.
   */
  sync?(): void | Promise<void>;
  /**
   * Optional: {@link snapshot} in two steps, for a state machine that can
   * read a consistent view while it goes on applying (a database snapshot).
   * The node calls it between two applies, like `snapshot`; it captures the
   * state at the applied index and returns a function that produces the
   * bytes, which the node calls once, while later entries are applied. A
   * node with it sends lagging followers their snapshot without holding
   * its applies back for the time it takes to read the whole state (etcd
   * streams its backend's read transaction the same way).
   */
  beginSnapshot?(): Promise<() => Promise<Uint8Array>>;
}
