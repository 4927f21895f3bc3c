/**
 * The error hierarchy of quorumkv. Every error the library throws or rejects
 * with is a {@link QuorumError} carrying a stable `code` (one of
 * {@link ErrorCode}); messages are in sentence case without a final period.
 *
 * - {@link UsageError}: API misuse or bad input, or a request the state
 *   refuses as made (a lease or member not found, or one that exists
 *   already). Nothing was changed.
 * - {@link FaultError}: a runtime fault (no leader, timeout, corruption, a
 *   closed node). The operation may or may not have taken effect where the
 *   code says so (`QUORUMKV_TIMEOUT` after a proposal was sent, for instance).
 *
 * This module is the bottom of the layer stack: every layer may import it.
 * @module
 */

/**
 * Every stable error code. Codes never change meaning; new ones are added.
 */
export const ErrorCode = {
  // configuration and arguments
  /** A configuration object is invalid (bad ticks, duplicate or empty ids, ...). */
  INVALID_CONFIG: 'QUORUMKV_INVALID_CONFIG',
  /** An argument is malformed (wrong type, empty key, negative TTL, ...). */
  INVALID_ARGUMENT: 'QUORUMKV_INVALID_ARGUMENT',

  // raft
  /** A proposal was dropped by Raft (no leader, transfer in progress, uncommitted-size cap, forwarding disabled). */
  PROPOSAL_DROPPED: 'QUORUMKV_PROPOSAL_DROPPED',
  /** The operation needs the leader and this node is not it. */
  NOT_LEADER: 'QUORUMKV_NOT_LEADER',
  /** No leader is known right now. */
  NO_LEADER: 'QUORUMKV_NO_LEADER',
  /** A configuration change is already pending (one at a time, Raft thesis §4.1). */
  CONF_CHANGE_PENDING: 'QUORUMKV_CONF_CHANGE_PENDING',
  /** "etcdserver: can only promote a learner member which is in sync with leader": the learner is too far behind to be promoted. */
  LEARNER_NOT_READY: 'QUORUMKV_LEARNER_NOT_READY',
  /** "etcdserver: unhealthy cluster": a membership change refused because too few voters are up (etcd's strict reconfiguration check). */
  UNHEALTHY: 'QUORUMKV_UNHEALTHY',
  /** A message of a local-only type was given to `step()`. Not thrown by this version: `RawNode.step` ignores such a message (logged at debug). */
  STEP_LOCAL_MESSAGE: 'QUORUMKV_STEP_LOCAL_MESSAGE',
  /** A message came from a node that is not in the configuration. Not thrown by this version: `RawNode.step` ignores such a response (logged at debug). */
  STEP_PEER_NOT_FOUND: 'QUORUMKV_STEP_PEER_NOT_FOUND',
  /** The requested log index has been compacted into a snapshot. */
  LOG_COMPACTED: 'QUORUMKV_LOG_COMPACTED',
  /** The requested log index is not available (beyond the last index). */
  LOG_UNAVAILABLE: 'QUORUMKV_LOG_UNAVAILABLE',
  /** A snapshot older than the current one was offered. */
  SNAPSHOT_OUT_OF_DATE: 'QUORUMKV_SNAPSHOT_OUT_OF_DATE',
  /** The snapshot is being produced and is not available yet; retry later. */
  SNAPSHOT_TEMPORARILY_UNAVAILABLE: 'QUORUMKV_SNAPSHOT_TEMPORARILY_UNAVAILABLE',

  // node
  /** The node is closed or closing. */
  NODE_CLOSED: 'QUORUMKV_NODE_CLOSED',
  /** The operation did not finish in time; a write may or may not have taken effect. */
  TIMEOUT: 'QUORUMKV_TIMEOUT',
  /** This node has been removed from the cluster. */
  REMOVED: 'QUORUMKV_REMOVED',
  /**
   * A quorum is not reachable. Not thrown by this version: a member cut off
   * from a quorum fails writes and linearizable reads with
   * `QUORUMKV_NO_LEADER` (no leader known for two election timeouts) or
   * `QUORUMKV_TIMEOUT`.
   */
  NO_QUORUM: 'QUORUMKV_NO_QUORUM',
  /** The operation was aborted through an AbortSignal, or withdrawn by its caller (a campaign by `Election.resign`). */
  ABORTED: 'QUORUMKV_ABORTED',

  // storage
  /** A stored entry, HardState or snapshot failed its CRC or could not be decoded. */
  CORRUPT_LOG: 'QUORUMKV_CORRUPT_LOG',
  /** A snapshot or backup file is corrupt or truncated. */
  CORRUPT_SNAPSHOT: 'QUORUMKV_CORRUPT_SNAPSHOT',
  /** The storage is closed. */
  STORAGE_CLOSED: 'QUORUMKV_STORAGE_CLOSED',
  /** The storage's database failed a read or write (I/O error, disk full, locked); the cause is attached. */
  STORAGE_IO: 'QUORUMKV_STORAGE_IO',

  // transport
  /** A frame is larger than the configured maximum. */
  FRAME_TOO_LARGE: 'QUORUMKV_FRAME_TOO_LARGE',
  /** A frame could not be decoded or failed its CRC. */
  MALFORMED_FRAME: 'QUORUMKV_MALFORMED_FRAME',
  /** A peer announced another cluster id. */
  CLUSTER_ID_MISMATCH: 'QUORUMKV_CLUSTER_ID_MISMATCH',
  /** A peer id is not known to the transport. */
  UNKNOWN_PEER: 'QUORUMKV_UNKNOWN_PEER',
  /** The transport is closed. */
  TRANSPORT_CLOSED: 'QUORUMKV_TRANSPORT_CLOSED',
  /** The transport was used before `start()`. */
  TRANSPORT_NOT_STARTED: 'QUORUMKV_TRANSPORT_NOT_STARTED',
  /** The transport could not listen on its address (port in use, permission denied, ...). */
  LISTEN_FAILED: 'QUORUMKV_LISTEN_FAILED',

  // mvcc, lease, watch
  /** "mvcc: required revision has been compacted". Carries `compactRevision`. */
  REVISION_COMPACTED: 'QUORUMKV_REVISION_COMPACTED',
  /** "mvcc: required revision is a future revision". */
  FUTURE_REVISION: 'QUORUMKV_FUTURE_REVISION',
  /** "etcdserver: too many operations in txn request". */
  TOO_MANY_TXN_OPS: 'QUORUMKV_TOO_MANY_TXN_OPS',
  /** "etcdserver: duplicate key given in txn request". */
  DUPLICATE_KEY: 'QUORUMKV_DUPLICATE_KEY',
  /** "etcdserver: request is too large". */
  REQUEST_TOO_LARGE: 'QUORUMKV_REQUEST_TOO_LARGE',
  /** "etcdserver: key not found" (put with ignoreValue/ignoreLease on a missing key). */
  KEY_NOT_FOUND: 'QUORUMKV_KEY_NOT_FOUND',
  /** "etcdserver: requested lease not found". */
  LEASE_NOT_FOUND: 'QUORUMKV_LEASE_NOT_FOUND',
  /** "etcdserver: lease already exists". */
  LEASE_EXISTS: 'QUORUMKV_LEASE_EXISTS',
  /**
   * A watch was cancelled. Not thrown by this version: a cancelled watch
   * ends with a response that has `canceled: true` and a `cancelReason`
   * (and `compactRevision` when a compaction cancelled it).
   */
  WATCH_CANCELED: 'QUORUMKV_WATCH_CANCELED',
  /** "etcdserver: mvcc: database space exceeded" (NOSPACE alarm active). */
  NO_SPACE: 'QUORUMKV_NO_SPACE',
  /** A CORRUPT alarm is active. */
  CORRUPT: 'QUORUMKV_CORRUPT',
  /** An internal invariant of the MVCC store was broken (a bug or a corrupt backend); the store stops. */
  INTERNAL: 'QUORUMKV_INTERNAL',

  // concurrency recipes
  /** The session's lease expired or could not be renewed. */
  SESSION_EXPIRED: 'QUORUMKV_SESSION_EXPIRED',
  /** Unlock of a lock that is not held. */
  LOCK_NOT_HELD: 'QUORUMKV_LOCK_NOT_HELD',
  /** tryLock found the lock held by another session. */
  LOCKED: 'QUORUMKV_LOCKED',
  /** "election: not leader". */
  ELECTION_NOT_LEADER: 'QUORUMKV_ELECTION_NOT_LEADER',
  /** "election: no leader". */
  ELECTION_NO_LEADER: 'QUORUMKV_ELECTION_NO_LEADER',
  /** An STM transaction kept conflicting past its retry limit. */
  STM_CONFLICT: 'QUORUMKV_STM_CONFLICT',
  /** A double barrier already has its count of participants (etcd recipes' "too many clients"). */
  BARRIER_FULL: 'QUORUMKV_BARRIER_FULL',

  // testing
  /** A recorded history operation was completed twice (ok, fail or unknown). */
  OPERATION_COMPLETED: 'QUORUMKV_OPERATION_COMPLETED',
  /** A simulation found a broken safety invariant (two leaders in a term, diverging stores, ...). */
  INVARIANT_VIOLATED: 'QUORUMKV_INVARIANT_VIOLATED',

  // membership (etcd's membership errors, as its clients tell them apart)
  /**
   * "etcdserver: member ID already exist" (etcd's `ErrGRPCMemberExist`,
   * membership `ErrIDExists`): an id added as a member is one already.
   */
  MEMBER_EXISTS: 'QUORUMKV_MEMBER_EXISTS',
  /**
   * "etcdserver: member not found" (etcd's `ErrGRPCMemberNotFound`,
   * membership `ErrIDNotFound`): an id removed, promoted or updated is not
   * a member (and never was: see {@link ErrorCode.MEMBER_ID_REMOVED}).
   */
  MEMBER_NOT_FOUND: 'QUORUMKV_MEMBER_NOT_FOUND',
  /**
   * "etcdserver: ID removed" (etcd's membership `ErrIDRemoved`, "membership:
   * ID removed"; etcd's v3 API answers it as `ErrGRPCMemberNotFound`, its
   * members HTTP API as 410 Gone): the id was removed from the cluster and
   * can neither be added back nor changed; use a new id. Not
   * `QUORUMKV_REMOVED`, which says that the member called was removed.
   */
  MEMBER_ID_REMOVED: 'QUORUMKV_MEMBER_ID_REMOVED',
  /**
   * "etcdserver: Peer URLs already exists" (etcd's `ErrGRPCPeerURLExist`,
   * membership `ErrPeerURLexists`): another member was added or updated
   * with that address.
   */
  PEER_ADDRESS_EXISTS: 'QUORUMKV_PEER_ADDRESS_EXISTS',
  /**
   * "etcdserver: can only promote a learner member" (etcd's
   * `ErrGRPCMemberNotLearner`, membership `ErrMemberNotLearner`): the
   * member promoted is a voter.
   */
  MEMBER_NOT_LEARNER: 'QUORUMKV_MEMBER_NOT_LEARNER',
  /**
   * "etcdserver: too many learner members in cluster" (etcd's
   * `ErrGRPCTooManyLearners`, membership `ErrTooManyLearners`): a learner
   * added beyond `maxLearners`.
   */
  TOO_MANY_LEARNERS: 'QUORUMKV_TOO_MANY_LEARNERS',
  /**
   * "etcdserver: bad leader transferee" (etcd's
   * `ErrGRPCBadLeaderTransferee`): leadership moved to an id that is not a
   * voter (a learner, or no member).
   */
  BAD_LEADER_TRANSFEREE: 'QUORUMKV_BAD_LEADER_TRANSFEREE',
} as const;

/** One of the stable error codes of {@link ErrorCode}. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * Base class of every quorumkv error.
 * @param code - a stable {@link ErrorCode}
 * @param message - sentence case, no final period
 * @param details - extra fields copied onto the error (for example `compactRevision`)
 */
export class QuorumError extends Error {
  /** The stable error code. */
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** API misuse or bad input, or a request the state refuses as made (a lease or member not found, one that exists already): the call changed nothing. */
export class UsageError extends QuorumError {}

/** A runtime fault: unavailable leader or quorum, timeout, corruption, closed resource. */
export class FaultError extends QuorumError {}

/**
 * "mvcc: required revision has been compacted": a read or watch asked for a
 * revision below the compaction point. `compactRevision` is the current
 * compaction revision (etcd's `CompactRevision` in a cancelled watch response).
 */
export class CompactedError extends UsageError {
  /**
   * The store's compaction revision when the request was refused: the
   * oldest revision a range can still read; a compaction must go above it.
   */
  readonly compactRevision: number;
  constructor(compactRevision: number, message = 'mvcc: required revision has been compacted') {
    super(ErrorCode.REVISION_COMPACTED, message);
    this.compactRevision = compactRevision;
  }
}

/** True when `err` is a {@link QuorumError} with the given code. */
export function isQuorumError(err: unknown, code?: ErrorCode): err is QuorumError {
  return err instanceof QuorumError && (code === undefined || err.code === code);
}
