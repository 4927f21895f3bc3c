/**
 * Raft wire types: what the Raft core exchanges with its peers and hands to
 * storage. They mirror etcd's `raftpb` (raft.proto) with three differences:
 * node ids are non-empty strings (`''` means "none"), data is `Uint8Array`,
 * and membership changes are single-server changes (see {@link ConfChange}).
 *
 * Terms and indexes are JavaScript numbers; they are exact below 2^53, which
 * no realistic cluster reaches.
 * @module
 */

/** What an {@link Entry} carries. */
export type EntryType =
  /** Application data (or an empty no-op when `data` is empty). */
  | 'Normal'
  /** An encoded {@link ConfChange}; applied through `RawNode.applyConfChange`. */
  | 'ConfChange';

/**
 * One entry of the replicated log (Raft §5.3). `index` starts at 1; index 0
 * with term 0 is the empty log's sentinel.
 */
export interface Entry {
  /** Term of the leader that created the entry. */
  term: number;
  /** Position in the log, 1-based. */
  index: number;
  /** What `data` holds: application bytes (`'Normal'`) or an encoded {@link ConfChange}. */
  type: EntryType;
  /** Payload bytes; empty for the no-op a new leader appends. */
  data: Uint8Array;
}

/**
 * The state Raft must persist before it answers any message that depends on
 * it (Raft Figure 2, "persistent state on all servers"; `commit` is persisted
 * as etcd does, to avoid re-applying on restart).
 */
export interface HardState {
  /** Latest term this node has seen. */
  term: number;
  /** Candidate voted for in `term`, or `''` for none. */
  vote: string;
  /** Highest index known committed. */
  commit: number;
}

/** The membership a snapshot captures: who votes and who only learns. */
export interface ConfState {
  /** Voting members. */
  voters: string[];
  /** Non-voting members that receive the log (Raft thesis §4.2.1). */
  learners: string[];
}

/** Position and membership of a snapshot. */
export interface SnapshotMetadata {
  /** Voters and learners as of the entry at `index`; a restored node takes this membership. */
  confState: ConfState;
  /** Index of the last entry the snapshot covers. */
  index: number;
  /** Term of that entry. */
  term: number;
}

/** A state-machine snapshot (Raft §7): opaque data plus its metadata. */
export interface Snapshot {
  /** The state machine's serialized state, opaque to Raft (for a KvNode, the MVCC and lease state). */
  data: Uint8Array;
  /** Log position (index, term) and membership the snapshot stands for. */
  metadata: SnapshotMetadata;
}

/**
 * A single-server membership change (Raft thesis §4.1). One change may be
 * pending at a time; it takes effect when applied.
 * - `AddNode`: add a voter, or promote an existing learner to voter;
 * - `AddLearnerNode`: add a learner (a voter cannot be demoted this way);
 * - `RemoveNode`: remove a voter or learner;
 * - `UpdateNode`: change nothing in the membership; the application
 *   carries a member's new address in `context` (etcd's
 *   `ConfChangeUpdateNode`, which `MemberUpdate` proposes).
 */
export interface ConfChange {
  /** Which change: add a voter (or promote a learner), add a learner, remove a member, or update a member (no change to the membership). */
  type: ConfChangeType;
  /** Id of the member added, promoted, removed or updated (etcd's `NodeID`, here a non-empty string). */
  nodeId: string;
  /** Application bytes carried along (for instance the peer's address). */
  context?: Uint8Array;
}

/** Kinds of {@link ConfChange}. */
export type ConfChangeType = 'AddNode' | 'AddLearnerNode' | 'RemoveNode' | 'UpdateNode';

/**
 * Every Raft message type, as in etcd's raftpb. Local messages (`MsgHup`,
 * `MsgBeat`, `MsgUnreachable`, `MsgSnapStatus`, `MsgCheckQuorum`) never cross
 * the network.
 */
export type MessageType =
  | 'MsgHup'
  | 'MsgBeat'
  | 'MsgProp'
  | 'MsgApp'
  | 'MsgAppResp'
  | 'MsgVote'
  | 'MsgVoteResp'
  | 'MsgSnap'
  | 'MsgHeartbeat'
  | 'MsgHeartbeatResp'
  | 'MsgUnreachable'
  | 'MsgSnapStatus'
  | 'MsgCheckQuorum'
  | 'MsgTransferLeader'
  | 'MsgTimeoutNow'
  | 'MsgReadIndex'
  | 'MsgReadIndexResp'
  | 'MsgPreVote'
  | 'MsgPreVoteResp';

/** All message types, in etcd's numbering order (the codec uses the position). */
export const MESSAGE_TYPES: readonly MessageType[] = [
  'MsgHup',
  'MsgBeat',
  'MsgProp',
  'MsgApp',
  'MsgAppResp',
  'MsgVote',
  'MsgVoteResp',
  'MsgSnap',
  'MsgHeartbeat',
  'MsgHeartbeatResp',
  'MsgUnreachable',
  'MsgSnapStatus',
  'MsgCheckQuorum',
  'MsgTransferLeader',
  'MsgTimeoutNow',
  'MsgReadIndex',
  'MsgReadIndexResp',
  'MsgPreVote',
  'MsgPreVoteResp',
];

/**
 * A Raft message. Fields unused by a type are 0, `''`, `false` or empty.
 * Meaning of the overloaded fields follows etcd's raftpb:
 * - `MsgApp`: `index`/`logTerm` are the previous entry's index and term,
 *   `entries` the entries after it, `commit` the leader's commit index;
 * - `MsgAppResp`: `index` is the last index matched (or, when `reject`, the
 *   rejected index), `rejectHint` the follower's hint and `logTerm` its term
 *   at the hint (fast backtracking, Raft thesis §5.3 optimisation);
 * - `MsgVote`/`MsgPreVote`: `index`/`logTerm` describe the candidate's last entry;
 * - `MsgReadIndex`/`MsgReadIndexResp`/`MsgHeartbeat(Resp)`: `context` carries
 *   the read request id;
 * - `MsgSnap`: `snapshot` is set.
 */
export interface Message {
  /** Kind of message; it decides which of the other fields are meaningful. */
  type: MessageType;
  /** Id of the recipient. */
  to: string;
  /** Id of the sender; the Raft core fills in its own id when `''`. */
  from: string;
  /**
   * Sender's current term (Raft §5.1). 0 on local messages and on `MsgProp`
   * / `MsgReadIndex`, which are not term-checked; a vote request carries the
   * term of the election it starts (current term + 1 for `MsgPreVote`).
   */
  term: number;
  /**
   * A log term: of the entry at `index` (`MsgApp`), of the candidate's last
   * entry (`MsgVote`/`MsgPreVote`), or of the follower's entry at
   * `rejectHint` (rejected `MsgAppResp`); 0 otherwise.
   */
  logTerm: number;
  /**
   * A Raft log index: the entry preceding `entries` (`MsgApp`), the last
   * index matched or the rejected index (`MsgAppResp`), the candidate's last
   * index (votes), the read index (`MsgReadIndexResp`); 0 otherwise.
   */
  index: number;
  /** Log entries: to append (`MsgApp`) or to propose (`MsgProp`); empty otherwise. */
  entries: Entry[];
  /**
   * Leader's commit index (`MsgApp`); on `MsgHeartbeat`, the smaller of the
   * follower's match index and the leader's commit index. 0 otherwise.
   */
  commit: number;
  /** True when a response refuses: a vote not granted, or an append that did not match. */
  reject: boolean;
  /**
   * On a rejected `MsgAppResp`: the largest index at which the follower's
   * log may match the leader's (the leader probes from there); 0 otherwise.
   */
  rejectHint: number;
  /** The snapshot sent to a follower that lags behind the leader's compacted log (`MsgSnap` only). */
  snapshot?: Snapshot;
  /**
   * Opaque bytes: the ReadIndex request id (`MsgReadIndex`, its response,
   * and heartbeats under the `safe` read option), or
   * the ASCII bytes `CampaignTransfer` on a leadership-transfer vote request
   * (etcd's `campaignTransfer`).
   * Absent otherwise.
   */
  context?: Uint8Array;
}

/** True for message types that only ever travel inside one node. */
export function isLocalMessage(type: MessageType): boolean {
  return (
    type === 'MsgHup' ||
    type === 'MsgBeat' ||
    type === 'MsgUnreachable' ||
    type === 'MsgSnapStatus' ||
    type === 'MsgCheckQuorum'
  );
}

/** True for responses (they never start an election or get forwarded). */
export function isResponseMessage(type: MessageType): boolean {
  return (
    type === 'MsgAppResp' ||
    type === 'MsgVoteResp' ||
    type === 'MsgHeartbeatResp' ||
    type === 'MsgUnreachable' ||
    type === 'MsgReadIndexResp' ||
    type === 'MsgPreVoteResp'
  );
}

/** The vote response type that answers a vote request type. */
export function voteResponseType(type: MessageType): MessageType {
  switch (type) {
    case 'MsgVote':
      return 'MsgVoteResp';
    case 'MsgPreVote':
      return 'MsgPreVoteResp';
    default:
      throw new Error(`not a vote message: ${type}`);
  }
}

/** An empty HardState (term 0, no vote, commit 0). */
export function emptyHardState(): HardState {
  return { term: 0, vote: '', commit: 0 };
}

/** True when `hs` equals the empty HardState. */
export function isEmptyHardState(hs: HardState): boolean {
  return hs.term === 0 && hs.vote === '' && hs.commit === 0;
}

/** True when two HardStates are equal field by field. */
export function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

/** True when the snapshot is the empty one (index 0). */
export function isEmptySnapshot(s: Snapshot | undefined): boolean {
  return s === undefined || s.metadata.index === 0;
}

/** An empty snapshot (index 0, term 0, no members). */
export function emptySnapshot(): Snapshot {
  return { data: new Uint8Array(0), metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } } };
}

/**
 * Builds a message with every field defaulted, so callers name only what
 * their type uses.
 */
export function message(fields: Partial<Message> & Pick<Message, 'type'>): Message {
  return {
    to: '',
    from: '',
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    ...fields,
  };
}

/**
 * Payload size of an entry as Raft's size caps count it (`maxSizePerMsg`,
 * `maxUncommittedEntriesSize`): the data length in bytes.
 */
export function entryPayloadSize(e: Entry): number {
  return e.data.length;
}
