/**
 * The public contract of the pure Raft core: its configuration, the
 * read-only log {@link Storage} it consults, and the {@link Ready} batches it
 * hands to whoever drives it. Modelled on etcd-io/raft (`rawnode.go`,
 * `storage.go`, `node.go`).
 * @module
 */
import type { ErrorCode } from '../errors.js';
import type { ConfChange, ConfState, Entry, HardState, Message, Snapshot } from '../raftpb/index.js';

/**
 * The log as the Raft core reads it: synchronous, already persisted (or about
 * to be, in the same Ready cycle). The driver keeps it in step with durable
 * storage; {@link MemoryStorage} is the usual implementation. Errors are
 * thrown as `FaultError`s with these codes:
 * - `QUORUMKV_LOG_COMPACTED`: the index is before `firstIndex()`;
 * - `QUORUMKV_LOG_UNAVAILABLE`: the index is after `lastIndex()`;
 * - `QUORUMKV_SNAPSHOT_TEMPORARILY_UNAVAILABLE`: `snapshot()` is not ready yet.
 */
export interface Storage {
  /** The persisted HardState and the ConfState of the latest snapshot or applied conf change. */
  initialState(): { hardState: HardState; confState: ConfState };
  /**
   * Entries in `[lo, hi)`, at least one, at most `maxSize` bytes of payload
   * (the first entry is returned even when larger).
   */
  entries(lo: number, hi: number, maxSize: number): Entry[];
  /** Term of the entry at index `i`; `i` may be `firstIndex() - 1` (the snapshot's). */
  term(i: number): number;
  /** Index of the last entry (the snapshot's index when the log is empty). */
  lastIndex(): number;
  /** Index of the first entry available (snapshot index + 1). */
  firstIndex(): number;
  /**
   * The most recent snapshot. `forPeer` names the follower it is for, when
   * the core asks in order to send one (a storage that produces snapshots on
   * demand may pace them per follower); it is not given otherwise.
   */
  snapshot(forPeer?: string): Snapshot;
}

/** How ReadIndex confirms leadership (Raft thesis §6.4). */
export type ReadOnlyOption =
  /** Confirm with a heartbeat round to a quorum (linearizable, clock-independent). */
  | 'safe'
  /** Rely on the leader lease; needs CheckQuorum; unsafe under unbounded clock drift (thesis §6.4.1). */
  | 'leaseBased';

/** A sink for the core's log lines; the node layer wires it to `debug`. */
export interface RaftLogger {
  /** Fine-grained detail: appends rejected, rejections received, probes. */
  debug(msg: string): void;
  /** Role and term changes, votes, leadership transfers, proposals dropped for lack of a leader. */
  info(msg: string): void;
  /** Conditions worth attention: a leader stepping down for lost quorum, a proposal over the uncommitted-size limit, a bad commit ignored. */
  warn(msg: string): void;
  /** Faults the core survived: a corrupt append ignored, no snapshot to catch up a follower. */
  error(msg: string): void;
}

/**
 * Configuration of a {@link RawNode}. Times are in ticks: the driver decides
 * how long a tick is (RaftNode's default is 100 ms).
 */
export interface RaftConfig {
  /** This node's id; non-empty. */
  id: string;
  /**
   * Ticks without hearing from a leader before a follower campaigns. The
   * actual timeout is drawn uniformly from `[electionTick, 2*electionTick)`
   * (Raft §5.2). Must be greater than `heartbeatTick`. Default 10.
   */
  electionTick?: number;
  /** Ticks between leader heartbeats. Default 1. */
  heartbeatTick?: number;
  /** The log the core reads from. */
  storage: Storage;
  /** Last applied index, when restarting; entries up to it are not handed out again. Default 0. */
  applied?: number;
  /** Payload bytes per MsgApp (at least one entry is always sent). Default 1 MiB. */
  maxSizePerMsg?: number;
  /** Payload bytes of committed entries per Ready. Default: `maxSizePerMsg`. */
  maxCommittedSizePerReady?: number;
  /**
   * Cap on the leader's uncommitted payload bytes; proposals past it are
   * dropped (`QUORUMKV_PROPOSAL_DROPPED`). Default 64 MiB; 0 disables the cap.
   */
  maxUncommittedEntriesSize?: number;
  /** MsgApp messages in flight per follower in the replicate state. Default 256. */
  maxInflightMsgs?: number;
  /** Leader steps down without a quorum of recent contact (thesis §6.2). Default true. */
  checkQuorum?: boolean;
  /** Pre-vote before campaigning (thesis §9.6). Default true. */
  preVote?: boolean;
  /** ReadIndex mode. Default `'safe'`. `'leaseBased'` requires `checkQuorum`. */
  readOnlyOption?: ReadOnlyOption;
  /** When true, a follower drops proposals instead of forwarding them to the leader. */
  disableProposalForwarding?: boolean;
  /**
   * Uniform random numbers in `[0, 1)` for election timeout jitter. Default:
   * a small deterministic generator seeded from `id`, so the core never
   * touches the platform's random source.
   */
  random?: () => number;
  /** Where log lines go. Default: nowhere. */
  logger?: RaftLogger;
  /**
   * Checks a leader makes of a membership change before it appends it, on
   * top of the core's own (one change at a time, thesis §4.1; no demotion
   * of a voter; not the last voter): etcd's server makes such checks
   * (a learner in sync before its promotion, `--strict-reconfig-check`).
   * Gets the change and the leader's view of how far each member's log
   * matches its own (`matchOf(id)`: the index, or undefined for a
   * non-member); returns why it is refused, or undefined. Default: none.
   */
  checkConfChange?: (cc: ConfChange, matchOf: (id: string) => number | undefined) => ConfChangeRefusal | undefined;
  /**
   * What a membership change forwarded by a follower becomes when the
   * leader refuses it: the entry appended in its place. Default: an empty
   * normal entry, as etcd (the proposer is not told; its call times out).
   * A node layer can put the refusal in the entry for the proposer to read
   * when it applies it.
   */
  refusedConfChange?: (entry: Entry, refusal: ConfChangeRefusal) => Entry;
}

/** Why a leader refuses a membership change (see {@link RaftConfig.checkConfChange}). */
export interface ConfChangeRefusal {
  /** A stable code, `QUORUMKV_...`. */
  code: ErrorCode;
  /** Sentence case, no final period. */
  message: string;
}

/** The role a node plays. */
export type StateRole = 'follower' | 'candidate' | 'leader' | 'preCandidate';

/** Volatile state that the driver may want to observe (not persisted). */
export interface SoftState {
  /** Current leader id, `''` when unknown. */
  lead: string;
  /** This node's role: follower, preCandidate, candidate or leader. */
  raftState: StateRole;
}

/**
 * The answer to a `readIndex(context)` request: once the state machine has
 * applied up to `index`, a read started before the request is linearizable
 * (Raft thesis §6.4).
 */
export interface ReadState {
  /** Raft log index (the leader's commit index when it got the request) to apply up to before reading. */
  index: number;
  /** The `context` bytes given to `readIndex`, identifying the request. */
  requestCtx: Uint8Array;
}

/**
 * One batch of work the core hands to its driver. The driver must, in order:
 * 1. persist `hardState`, `entries` and `snapshot` (with fsync when
 *    `mustSync`), before sending any message that depends on them — except
 *    that a leader may send its MsgApp messages in parallel with its own
 *    write (Raft thesis §10.2.1), unless `hardState.commit` is beyond its
 *    durable log (a lone voter commits its entries as it appends them);
 * 2. send `messages` (votes and vote responses only after step 1);
 * 3. apply `committedEntries` in order (they are already durable on a quorum);
 *    for `ConfChange` entries, call `RawNode.applyConfChange`;
 * 4. call `advance()` before asking for the next Ready.
 */
export interface Ready {
  /** Set only when the leader or role changed since the last Ready. Not persisted. */
  softState?: SoftState;
  /**
   * Set only when the HardState changed since the last Ready; persist it
   * with the entries (after the snapshot, if any). Its `commit` may cover
   * entries of this very Ready.
   */
  hardState?: HardState;
  /**
   * Answers to ReadIndex requests confirmed since the last Ready, in the
   * order they were confirmed (a request is never confirmed before one made
   * earlier on the same leader). Serve each once `applied >= index`.
   */
  readStates: ReadState[];
  /**
   * Entries to append to stable storage: consecutive, in log order. They may
   * start at or below the last stored index (a new leader overwrote a
   * suffix): replace the stored entries from `entries[0].index` on.
   */
  entries: Entry[];
  /**
   * A snapshot received from the leader: persist it and restore the state
   * machine from it before (and instead of) applying entries; its metadata's
   * ConfState is the new membership. When set, `committedEntries` is empty.
   */
  snapshot?: Snapshot;
  /**
   * Entries committed and not yet applied, consecutive in log order, from
   * the last applied index + 1, capped at `maxCommittedSizePerReady` bytes
   * (at least one). They may include entries of `entries` (persist first).
   * Entry objects are shared with the log: treat them as immutable.
   */
  committedEntries: Entry[];
  /**
   * Messages to send after persisting (see above), in the order they were
   * produced; deliver each to `message.to`. `from` is this node, except on
   * requests forwarded to the leader as etcd does: a forwarded
   * MsgTransferLeader carries the transfer target in `from`, and a MsgProp
   * a follower relays for another node keeps the proposer's id.
   */
  messages: Message[];
  /**
   * True when `hardState`'s term or vote changed, `entries` is non-empty or
   * a `snapshot` is set: persist with fsync (a commit-only HardState change
   * may be written lazily, as in etcd).
   */
  mustSync: boolean;
}

/** Replication state of a follower, as tracked by the leader (etcd's `tracker.StateType`). */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** What the leader knows about one follower's log. */
export interface ProgressStatus {
  /** Highest index known to match the leader's log. */
  match: number;
  /** Next index to send. */
  next: number;
  /** Replication state: `probe` (one MsgApp at a time), `replicate` (pipelined) or `snapshot`. */
  state: ProgressState;
  /** Index of the snapshot in flight (`snapshot` state), else 0. */
  pendingSnapshot: number;
  /** Heard from within the last election timeout (CheckQuorum). */
  recentActive: boolean;
  /** True for a learner (a non-voting member, Raft thesis §4.2.1). */
  isLearner: boolean;
  /** Inflight window full: no more MsgApp until acks arrive. */
  inflightsFull: boolean;
}

/** A snapshot of a node's Raft state, for diagnostics and `RaftNode.status()`. */
export interface RaftStatus {
  /** This node's id. */
  id: string;
  /** Current term, vote and commit index (the Raft persistent state). */
  hardState: HardState;
  /** Current leader and role. */
  softState: SoftState;
  /** Raft index of the last entry the driver reported applied (through `advance()`). */
  applied: number;
  /** Current membership. */
  config: ConfState;
  /** Id of the node leadership is being transferred to, `''` when none. */
  leadTransferee: string;
  /** Per-peer progress; only on the leader. */
  progress?: Record<string, ProgressStatus>;
}

/** Outcome of a snapshot send the driver reports back (etcd's `SnapshotStatus`). */
export type SnapshotStatus = 'finish' | 'failure';
