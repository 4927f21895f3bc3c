/**
 * `RaftNode`: a Raft member a service can run. It drives the pure
 * {@link RawNode} with a {@link Clock}, durable {@link LogStorage}, a
 * {@link Transport} and a user {@link StateMachine}, in the Ready loop of
 * etcd's `raft.Node` and `etcdserver/raft.go`.
 *
 * The write path, per Ready:
 * 1. HardState, entries and any received snapshot are saved in one batch,
 *    synced when Raft says `mustSync` (group commit: proposals that arrive
 *    while a write is in flight go into the next Ready, so there is one
 *    fsync per Ready, not one per proposal). A HardState whose only change
 *    is its commit index may wait (see {@link COMMIT_SAVE_DELAY_MS});
 * 2. the Ready's messages are sent: a leader's while step 1 runs (Raft
 *    thesis §10.2.1) unless they carry a commit index beyond its durable
 *    log (a lone voter's own append commits), everyone else's once step 1
 *    is durable (votes and acknowledgements vouch for what was written);
 * 3. committed entries go to the apply queue, which applies them in order and
 *    resolves the proposers' promises; `advance()` is called and the loop goes on.
 * @module
 */
import createDebug from 'debug';
import { EventEmitter } from 'eventemitter3';
import { emitIsolated } from '../isolated-emit.js';
import { decodeConfChange, encodeConfChange, pack, unpack } from '../codec/index.js';
import { checkOptionKeys, checkOptionsArg, type NoKeyMissing } from '../option-keys.js';
import { ErrorCode, FaultError, QuorumError, UsageError, isQuorumError } from '../errors.js';
import { describeValue, viewProblem } from '../arg-values.js';
import { RawNode } from '../raft/index.js';
import { resolveConfig } from '../raft/config.js';
import { checkConfChange } from '../raft/confchange.js';
import { refusalError } from '../raft/refusal.js';
import type { ConfChangeRefusal, ProgressStatus, RaftConfig, RaftLogger, Ready, ReadOnlyOption, StateRole } from '../raft/types.js';
import type { ConfChange, ConfChangeType, ConfState, Entry, HardState, Message, Snapshot } from '../raftpb/index.js';
import type { LoadedLogState, LogStorage } from '../storage/index.js';
import { checkHardState, checkNoGap, checkSnapshot, holdsNothing } from '../storage/checks.js';
import { checkEntries } from '../raft/entry-checks.js';
import type { SnapshotStatus, Transport } from '../transport/index.js';
import { systemClock, type Clock, type TimerHandle } from './clock.js';
import { encodeOrigin, type ConfRefusal, unwrapConfRefusal, unwrapProposalFor, unwrapSnapshot, wrapConfRefusal, wrapProposal, wrapSnapshot } from './envelope.js';
import { NodeStorage } from './node-storage.js';
import type { ApplyEntry, StateMachine } from './state-machine.js';

const log = createDebug('quorumkv:node');

/**
 * How long (ms) a HardState whose only change is its commit index may go
 * unsaved. The commit index is volatile state in Raft (Raft paper, Figure 2):
 * a member that restarts with an older one learns the commit again from the
 * leader (or, alone, by committing its no-op), and starts from at least the
 * index its state machine reports applied. Saving it is for a faster
 * restart, and it is not worth turning the one-entry write of a proposal
 * made alone (one member, one in flight) into a two-record batch, nor a
 * write of its own: with one proposal in flight, every member learns each
 * commit in a Ready that holds nothing else to save (a leader from an
 * acknowledgement, a follower from the leader's next message), and an
 * unsynced write of it would leave the log's next synced append a write
 * plus an `fdatasync` instead of one `O_DSYNC` write (`FileLogStorage`).
 * A save of at most one entry leaves such a HardState out; the first save
 * of entries half this long after (or more) carries it, and a timer saves
 * it (unsynced) this long after if no save wrote it by then (the member
 * went idle). A timer that wrote it under load, once per 100 ms and
 * member, would still turn one append in 200 of each of three members in
 * one process taking 2,000 puts per second into a write plus an
 * `fdatasync`. A HardState with
 * a new term or vote is always saved, synced, in its own Ready, and so is
 * one that commits a membership change (membership is rebuilt on restart
 * from the entries up to the saved commit).
 */
const COMMIT_SAVE_DELAY_MS = 100;
const raftDebug = createDebug('quorumkv:raft');

/**
 * Options of {@link RaftNode.create}. Times are whole milliseconds unless
 * named in ticks. An option left out (or `undefined`) takes its default; a
 * `null` is refused with `QUORUMKV_INVALID_CONFIG`, as any other value of
 * the wrong type.
 */
export interface RaftNodeOptions<R> {
  /**
   * This member's id: a non-empty string of at most 255 UTF-8 bytes, with no
   * lone surrogate and no leading U+FEFF (it must encode to UTF-8 and back
   * unchanged: members recognise their own proposals by its bytes).
   */
  id: string;
  /**
   * Initial voters, used only to bootstrap a new cluster when the storage is
   * empty (every founding member must be given the same list, including
   * itself). A member restarting from its data, or joining an existing
   * cluster (added with `addVoter`/`addLearner` by the leader), omits it.
   */
  peers?: string[];
  /**
   * Durable Raft log, HardState and snapshots of this member (for example
   * `LevelLogStorage` or `FileLogStorage`), loaded by `create`. The node
   * owns it from then on: `close()` closes it.
   */
  storage: LogStorage;
  /** Carries Raft messages to and from the peers; started by `create`, closed by `close()`. Its `id` must be this member's `id` (`QUORUMKV_INVALID_CONFIG` otherwise). */
  transport: Transport;
  /**
   * What the log replicates: committed entries are applied to it in order,
   * and it is snapshotted and restored by the node. It stays the caller's:
   * `close()` does not close it.
   */
  stateMachine: StateMachine<R>;
  /** Time source. Default: real time ({@link systemClock}). */
  clock?: Clock;
  /** Length of one Raft tick: a whole number of ms, above 0. Default 100. */
  tickMs?: number;
  /** Election timeout in ticks (randomized in `[n, 2n)`, Raft §5.2): a positive integer. Default 10. */
  electionTicks?: number;
  /** Heartbeat interval in ticks: a positive integer, below `electionTicks`. Default 1. */
  heartbeatTicks?: number;
  /** Take a snapshot (and compact the log) every this many applied entries. Default 10,000. */
  snapshotEntries?: number;
  /** Entries kept in memory behind a snapshot so slow followers catch up without one (etcd's SnapshotCatchUpEntries). Default 5,000. */
  snapshotCatchUpEntries?: number;
  /** How long `propose` waits for the entry to be applied before `QUORUMKV_TIMEOUT`: a whole number of ms, above 0. Default 10,000. */
  proposalTimeoutMs?: number;
  /** How long `readIndex` waits before `QUORUMKV_TIMEOUT`: a whole number of ms, above 0. Default 10,000. */
  readTimeoutMs?: number;
  /** Raft: payload bytes per MsgApp. Default 1 MiB. */
  maxSizePerMsg?: number;
  /** Raft: MsgApp in flight per follower. Default 256. */
  maxInflightMsgs?: number;
  /** Raft: cap on the leader's uncommitted payload bytes. Default 64 MiB. */
  maxUncommittedEntriesSize?: number;
  /** Raft: PreVote (thesis §9.6). Default true. */
  preVote?: boolean;
  /** Raft: CheckQuorum (thesis §6.2). Default true. */
  checkQuorum?: boolean;
  /** Raft: ReadIndex mode (thesis §6.4). Default `'safe'`. */
  readOnlyOption?: ReadOnlyOption;
  /** Raft: reject proposals on followers instead of forwarding them. Default false. */
  disableProposalForwarding?: boolean;
  /**
   * etcd's `--strict-reconfig-check` (on by default there too): the leader
   * refuses with `QUORUMKV_UNHEALTHY` a new voter unless every voter has
   * been heard from within an election timeout and the voters that vote
   * freely are a quorum of the larger configuration (a one-voter cluster
   * may always add a second, as in etcd), and the removal of a voter
   * it hears from unless the voters it hears from, less that one, are
   * still a quorum of the voters left, counting only voters that vote freely
   * (a founding voter that acknowledged no leader's entry yet withholds its
   * vote from longer logs). Default true. (A learner's promotion
   * is refused with `QUORUMKV_LEARNER_NOT_READY` while its log matches less
   * than 90% of the leader's, whatever this says, as in etcd.)
   */
  strictReconfigCheck?: boolean;
  /** Uniform random numbers in [0, 1) for election jitter; inject a seeded one for determinism (proposal ids still come from the platform CSPRNG, see {@link initialSequence}). */
  random?: () => number;
}

/** Status of a {@link RaftNode}, as `RaftNode.status()` reports it. */
export interface RaftNodeStatus {
  /** This member's id. */
  id: string;
  /** Current Raft term (etcd's `raft_term`). */
  term: number;
  /** Member this node voted for in `term`, `''` for none. */
  vote: string;
  /** Current leader id, `''` when none is known. */
  leader: string;
  /** This member's Raft role: follower, preCandidate, candidate or leader. */
  role: StateRole;
  /** Highest index known committed. */
  commit: number;
  /**
   * Index of the last entry of the log as persisted (entries still being
   * written are not counted); the snapshot's index when the log is empty.
   */
  lastIndex: number;
  /** Highest index applied to the state machine. */
  applied: number;
  /** Index of the latest snapshot. */
  snapshotIndex: number;
  /** Voters and learners as this member has applied them (not counting a change still in the log). */
  membership: ConfState;
  /** Per-peer replication progress; only on the leader. */
  progress?: Record<string, ProgressStatus>;
  /** True once this member was removed from the cluster. */
  removed: boolean;
}

/** Events a {@link RaftNode} emits. */
export interface RaftNodeEvents {
  /** The known leader changed (`leader` is `''` while unknown). */
  leaderChange: (leader: string, term: number) => void;
  /** This member's role changed. */
  roleChange: (role: StateRole) => void;
  /** Entries up to `index` were applied to the state machine. */
  applied: (index: number) => void;
  /** A snapshot at `index` was taken locally (`source: 'local'`) or installed from the leader. */
  snapshot: (index: number, source: 'local' | 'leader') => void;
  /** The membership changed (a conf change was applied). */
  membershipChange: (membership: ConfState) => void;
  /** This member was removed from the cluster and stopped. */
  removed: () => void;
  /** A fatal error stopped the node (storage failure, state machine failure). */
  error: (err: Error) => void;
}

interface PendingProposal<R> {
  resolve(result: R): void;
  reject(err: Error): void;
  timer: TimerHandle;
  /** Encoded entry data, kept until Raft accepts it (re-proposed after a leader change). */
  data: Uint8Array | undefined;
}

interface PendingConfChange {
  resolve(cs: ConfState): void;
  reject(err: Error): void;
  timer: TimerHandle;
  cc: ConfChange | undefined;
}

interface ReadWaiter {
  resolve(index: number): void;
  reject(err: Error): void;
  timer: TimerHandle;
}

interface ReadRound {
  /** Every context this round was issued with (it is issued again while unanswered). */
  ctxs: Set<string>;
  waiters: ReadWaiter[];
  retry: TimerHandle | undefined;
}

type ApplyTask = { kind: 'entries'; entries: Entry[] } | { kind: 'snapshot'; snapshot: Snapshot } | { kind: 'takeSnapshot' };

/** What a conf-change entry's context carries: the address, who proposed it, and whether an `AddNode` promotes a learner. */
interface ConfContext {
  address?: string;
  origin?: string;
  seq?: number;
  /**
   * An `AddNode` that promotes a learner (etcd's `IsPromote`): without it,
   * an `AddNode` adds a new member, and the leader refuses it for an id
   * that is a member already.
   */
  promote?: boolean;
  /** For an `AddLearnerNode`: the most learners its proposer lets the cluster have with the new one. */
  maxLearners?: number;
}

/** etcd's ErrIDRemoved, naming the id. */
function idRemoved(id: string): string {
  return `etcdserver: ID removed (${id} was removed from the cluster)`;
}

/** etcd's ErrTooManyLearners, with the limit. */
function tooManyLearners(max: number): string {
  return `etcdserver: too many learner members in cluster (at most ${max})`;
}

/** etcd's ErrIDExists, naming the id. */
function idExists(id: string): string {
  return `etcdserver: member ID already exist (${id})`;
}

/** etcd's ErrIDNotFound, naming the id. */
function idNotFound(id: string): string {
  return `etcdserver: member not found (${id})`;
}

/** An id removed from the cluster is never added back (etcd's ErrIDRemoved). */
function removedNotAddedBack(id: string): string {
  return `member id ${id} was removed from the cluster and cannot be added back: use a new id`;
}

const EMPTY = new Uint8Array(0);

/**
 * The refusal of a leader's Raft core as its proposer is to get it. The
 * core checks a change before the leader's membership check: an
 * `AddLearnerNode` of an id that is a voter by now (`isVoter`) it refuses
 * as the demotion of a voter, but its proposer did not know the id and made
 * an addition that another member's overtook: etcd's ErrIDExists, as the
 * leader's own check says (`QUORUMKV_MEMBER_EXISTS`). Any other refusal
 * as it is.
 */
function proposerRefusal(cc: ConfChange | undefined, refusal: ConfChangeRefusal, isVoter: (id: string) => boolean): ConfChangeRefusal {
  if (refusal.code === ErrorCode.INVALID_ARGUMENT && cc?.type === 'AddLearnerNode' && isVoter(cc.nodeId)) {
    return { code: ErrorCode.MEMBER_EXISTS, message: idExists(cc.nodeId) };
  }
  return refusal;
}

/**
 * The entry a leader appends in place of a membership change a follower
 * forwarded and it refused: the refusal (see {@link proposerRefusal}), for
 * the proposer to read when it applies the entry (etcd's leader answers
 * the member that forwarded the change); an empty entry when the change
 * carries no proposer.
 */
function refusedConfChangeEntry(entry: Entry, refusal: ConfChangeRefusal, isVoter: (id: string) => boolean): Entry {
  let cc: ConfChange | undefined;
  let ctx: ConfContext;
  try {
    cc = decodeConfChange(entry.data);
    ctx = confContextOf(cc);
  } catch {
    ctx = {};
  }
  if (typeof ctx.origin !== 'string' || typeof ctx.seq !== 'number') return { ...entry, type: 'Normal', data: EMPTY };
  const { code, message } = proposerRefusal(cc, refusal, isVoter);
  return { ...entry, type: 'Normal', data: wrapConfRefusal({ origin: ctx.origin, seq: ctx.seq, code, message }) };
}
/** The context a member puts in its membership changes (`{}` when there is none or it does not decode). */
function confContextOf(cc: ConfChange): ConfContext {
  if (cc.context === undefined || cc.context.length === 0) return {};
  try {
    return unpack(cc.context) as ConfContext;
  } catch {
    return {};
  }
}

/** Reads a ReadIndex context back: `<member id>/...`, every byte as written (ignoreBOM). */
const READ_CTX_DECODER = new TextDecoder('utf-8', { ignoreBOM: true });

/** A MsgApp with no entries: it only carries the leader's commit index (or probes). */
function isCommitOnlyApp(m: Message): boolean {
  return m.type === 'MsgApp' && m.entries.length === 0;
}

/**
 * Where a run of a node starts numbering its proposals: a uniform integer in
 * [0, 2^52) from the platform's CSPRNG, also when a `random` is injected for
 * election jitter. Entries carry `(origin, seq)`; after a restart, entries of
 * the previous run may still commit, and a counter that restarted where the
 * previous run started would match them to new proposals (resolving a caller
 * with another command's result): a seeded `random`, which gives every run
 * the same numbers, did exactly that. With a random start two runs overlap
 * only if their ranges collide, about `n / 2^52` for `n` proposals; etcd's
 * request ids (member id, time, counter) serve the same purpose. The seq is
 * a fixed 8 bytes in the envelope and is only ever compared, so a seeded
 * simulation behaves the same whatever it is.
 */
/** 16 hex digits from the platform's CSPRNG: what tells one run of a member from another. */
function runId(): string {
  const w = new Uint32Array(2);
  globalThis.crypto.getRandomValues(w);
  return w[0]!.toString(16).padStart(8, '0') + w[1]!.toString(16).padStart(8, '0');
}

function initialSequence(): number {
  const w = new Uint32Array(2);
  globalThis.crypto.getRandomValues(w);
  return (w[0]! & 0xfffff) * 2 ** 32 + w[1]!;
}

/**
 * Most UTF-8 bytes of a member's address in a membership change (a DNS name
 * has at most 253 characters): the address is replicated in the change's log
 * entry and kept in every snapshot, so it must stay far below what a
 * transport frame holds.
 */
const MAX_MEMBER_ADDRESS_BYTES = 1024;
/**
 * Bytes kept, in a message of the transport's largest size, for what
 * surrounds a proposal's entry: a `MsgApp` (or a forwarded `MsgProp`) with its
 * two member ids (at most 255 bytes each), its numbers and the entry's own
 * fields.
 */
const MESSAGE_OVERHEAD_BYTES = 1024;

/** A UTF-16 surrogate without its pair: UTF-8 cannot carry it (it becomes U+FFFD). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * What is wrong with a member id, if anything: it must be a non-empty
 * string of well-formed Unicode, not beginning with U+FEFF (msgpackr without
 * its native reader drops a leading byte order mark from a string of 65
 * bytes or more), at most 255 bytes in UTF-8 (it travels in every proposal's
 * envelope and in conf-change contexts).
 * @returns a message naming the problem (to follow "member id must"), or undefined
 */
export function memberIdProblem(id: unknown): string | undefined {
  if (typeof id !== 'string' || id === '') return 'be a non-empty string';
  if (LONE_SURROGATE.test(id)) return 'be well-formed Unicode (it holds a lone surrogate)';
  // msgpackr without its native reader decodes a string of 65 bytes or
  // more with a TextDecoder that drops a leading BOM: the id would come
  // back from the log, a snapshot or a peer as another one
  if (id.charCodeAt(0) === 0xfeff) return 'not begin with U+FEFF (a byte order mark, which some decoders drop)';
  if (encodeOrigin(id).length > 255) return 'be at most 255 UTF-8 bytes';
  return undefined;
}

/**
 * What is wrong with the first of `ids` that is not a member id (see
 * {@link memberIdProblem}), naming it (cut at 40 characters), or undefined.
 * @returns a message `member id "..." must ...`, or undefined
 */
export function memberIdsProblem(ids: readonly string[]): string | undefined {
  for (const i of ids) {
    const problem = memberIdProblem(i);
    if (problem !== undefined) return `member id ${JSON.stringify(i.length > 40 ? `${i.slice(0, 40)}...` : i)} must ${problem}`;
  }
  return undefined;
}

/**
 * A call's `{ timeoutMs }` options that are not an object, have a key of
 * another name (`timeoutMS` would leave the default in force), or a
 * `timeoutMs` given and not a positive finite number, as an error.
 */
function timeoutProblem(options: { timeoutMs?: number } | undefined): UsageError | undefined {
  if (options !== undefined) {
    try {
      checkOptionsArg(options, ['timeoutMs'], 'call options');
    } catch (err) {
      return err as UsageError;
    }
  }
  const t = options?.timeoutMs;
  if (t === undefined || (typeof t === 'number' && Number.isFinite(t) && t > 0)) return undefined;
  return new UsageError(ErrorCode.INVALID_ARGUMENT, 'timeoutMs must be a positive number');
}

/** Every key of {@link RaftNodeOptions}: any other is refused. */
const RAFT_NODE_OPTION_KEYS = [
  'id',
  'peers',
  'storage',
  'transport',
  'stateMachine',
  'clock',
  'tickMs',
  'electionTicks',
  'heartbeatTicks',
  'snapshotEntries',
  'snapshotCatchUpEntries',
  'proposalTimeoutMs',
  'readTimeoutMs',
  'maxSizePerMsg',
  'maxInflightMsgs',
  'maxUncommittedEntriesSize',
  'preVote',
  'checkQuorum',
  'readOnlyOption',
  'disableProposalForwarding',
  'strictReconfigCheck',
  'random',
] as const satisfies readonly (keyof RaftNodeOptions<unknown>)[];
// compiles only while the list names every key of the interface
type RaftNodeOptionKeysComplete = NoKeyMissing<Exclude<keyof RaftNodeOptions<unknown>, (typeof RAFT_NODE_OPTION_KEYS)[number]>>;

/**
 * The Raft core's settings taken from the options, renamed; those left
 * undefined take the core's defaults (`resolveConfig`: the same as these
 * options document), and a `null` is refused there as by {@link validateOptions}.
 */
function coreOptions<R>(o: RaftNodeOptions<R>): Omit<RaftConfig, 'id' | 'storage'> {
  return {
    electionTick: o.electionTicks,
    heartbeatTick: o.heartbeatTicks,
    maxSizePerMsg: o.maxSizePerMsg,
    maxInflightMsgs: o.maxInflightMsgs,
    maxUncommittedEntriesSize: o.maxUncommittedEntriesSize,
    preVote: o.preVote,
    checkQuorum: o.checkQuorum,
    readOnlyOption: o.readOnlyOption,
    disableProposalForwarding: o.disableProposalForwarding,
    random: o.random,
  };
}

function validateOptions<R>(o: RaftNodeOptions<R>): void {
  const bad = (msg: string): never => {
    throw new UsageError(ErrorCode.INVALID_CONFIG, msg);
  };
  checkOptionKeys(o, RAFT_NODE_OPTION_KEYS, 'RaftNode.create options');
  const idProblem = memberIdProblem(o.id);
  if (idProblem !== undefined) bad(`id must ${idProblem}`);
  if (o.peers !== undefined) {
    // each becomes a voter of the new cluster: an id that cannot be one (a
    // lone surrogate is a different id once UTF-8 encoded in the bootstrap
    // entries) must not be bootstrapped
    if (!Array.isArray(o.peers)) bad('peers must be a list of member ids');
    for (const p of o.peers) {
      const problem = memberIdProblem(p);
      if (problem !== undefined) bad(`every peer id must ${problem}`);
    }
    if (new Set(o.peers).size !== o.peers.length) bad('peer ids must be unique');
  }
  if (o.snapshotEntries !== undefined && (!Number.isSafeInteger(o.snapshotEntries) || o.snapshotEntries <= 0)) {
    bad('snapshotEntries must be a positive integer');
  }
  // whole ms, as etcd takes them (uint ms): clocks keep no fraction (a
  // VirtualClock fires a 1e-9 ms timer at 1 ms, a 1.5 ms one at 1 ms), so
  // the timeouts computed from a fraction drifted from the time that passed
  for (const [name, v] of Object.entries({
    tickMs: o.tickMs,
    proposalTimeoutMs: o.proposalTimeoutMs,
    readTimeoutMs: o.readTimeoutMs,
  })) {
    if (v !== undefined && !(typeof v === 'number' && Number.isSafeInteger(v) && v > 0)) bad(`${name} must be a positive whole number of ms (got ${describeValue(v)})`);
  }
  // the Raft core's options, named as here: left out (undefined) they take
  // the default; a null is refused, as for every other option
  for (const [name, v] of Object.entries({ electionTicks: o.electionTicks, heartbeatTicks: o.heartbeatTicks })) {
    if (v !== undefined && !(typeof v === 'number' && Number.isSafeInteger(v) && v > 0)) bad(`${name} must be a positive integer (got ${describeValue(v)})`);
  }
  for (const [name, v] of Object.entries({ preVote: o.preVote, checkQuorum: o.checkQuorum, disableProposalForwarding: o.disableProposalForwarding })) {
    if (v !== undefined && typeof v !== 'boolean') bad(`${name} must be a boolean (got ${describeValue(v)})`);
  }
  const readOnly: unknown = o.readOnlyOption;
  if (readOnly !== undefined && readOnly !== 'safe' && readOnly !== 'leaseBased') bad(`readOnlyOption must be 'safe' or 'leaseBased' (got ${describeValue(readOnly)})`);
  if (o.snapshotCatchUpEntries !== undefined && (!Number.isInteger(o.snapshotCatchUpEntries) || o.snapshotCatchUpEntries < 0)) {
    bad('snapshotCatchUpEntries must be a non-negative integer');
  }
  if (o.strictReconfigCheck !== undefined && typeof o.strictReconfigCheck !== 'boolean') bad('strictReconfigCheck must be a boolean');
  if (o.storage === undefined || o.transport === undefined || o.stateMachine === undefined) {
    bad('storage, transport and stateMachine are required');
  }
  // a transport sends only messages from its own id (both of ours drop the
  // others silently): a member on another's transport never sent a message
  const transportId = o.transport !== null && typeof o.transport === 'object' ? (o.transport as { id?: unknown }).id : undefined;
  if (transportId !== o.id) bad(`transport.id must be this member's id ${o.id}, got ${describeValue(transportId)}: a transport sends only messages from its own id`);
  // checked here, before the storage is loaded and the transport started:
  // otherwise a TypeError from the first call, with a transport listening
  const isFn = (v: unknown): boolean => typeof v === 'function';
  const sm = o.stateMachine as unknown as Record<string, unknown>;
  if (typeof sm !== 'object' || sm === null || !['appliedIndex', 'apply', 'snapshot', 'restore'].every((m) => isFn(sm[m]))) {
    bad('stateMachine must have appliedIndex, apply, snapshot and restore methods');
  }
  for (const m of ['sync', 'beginSnapshot']) if (sm[m] !== undefined && !isFn(sm[m])) bad(`stateMachine.${m} must be a method when given`);
  if (o.clock !== undefined) {
    const clock = o.clock as unknown as Record<string, unknown>;
    if (typeof clock !== 'object' || clock === null || !['now', 'setTimeout', 'clearTimeout'].every((m) => isFn(clock[m])) || (clock.soon !== undefined && !isFn(clock.soon))) {
      bad('clock must have now, setTimeout and clearTimeout methods (and soon, when given, a method)');
    }
  }
  // the Raft core's own checks (tick counts, sizes, read option...), made
  // here on an empty log: before the storage is loaded and the state
  // machine restored from its snapshot
  resolveConfig({ id: o.id, storage: new NodeStorage(), ...coreOptions(o) });
}

/**
 * What a storage's `load()` resolved with, checked before anything is built
 * from it: an object holding a well-formed HardState, a well-formed snapshot
 * or `undefined`, and entries that are contiguous, with terms that do not
 * decrease, that start at or before the index after the snapshot's (index 1
 * without one; those at or below it are ignored) and whose first one after
 * the snapshot has a term no lower than its term. A custom storage that
 * broke one of these made `create` fail with `QUORUMKV_INVALID_ARGUMENT` or
 * a TypeError, or took it as it was (a NaN term).
 * @throws FaultError `QUORUMKV_CORRUPT_LOG` when it is not such a state
 */
function checkLoadedState(state: unknown): LoadedLogState {
  try {
    if (state === null || typeof state !== 'object' || Array.isArray(state)) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `it is not an object of hardState, snapshot and entries (got ${describeValue(state)})`);
    }
    const { hardState, snapshot, entries } = state as Partial<LoadedLogState>;
    checkHardState(hardState as HardState);
    // a placeholder at index 0 is no snapshot: it is ignored, as it always was
    const placeholder = (snapshot as { metadata?: { index?: unknown } } | null | undefined)?.metadata?.index === 0;
    if (snapshot !== undefined && !placeholder) checkSnapshot(snapshot);
    checkEntries(entries as Entry[]);
    const loaded = entries as Entry[];
    const first = loaded[0];
    if (first !== undefined) {
      const snapIndex = snapshot?.metadata.index ?? 0;
      checkNoGap(first.index, snapIndex);
      const next = loaded[snapIndex + 1 - first.index];
      if (snapshot !== undefined && next !== undefined && next.term < snapshot.metadata.term) {
        throw new UsageError(
          ErrorCode.INVALID_ARGUMENT,
          `entry ${next.index} has term ${next.term}, below the term ${snapshot.metadata.term} of the snapshot at index ${snapIndex}`,
        );
      }
    }
    return state as LoadedLogState;
  } catch (err) {
    throw new FaultError(ErrorCode.CORRUPT_LOG, `storage.load() returned a malformed log state: ${err instanceof Error ? err.message : describeValue(err)}`, { cause: err });
  }
}

/**
 * A Raft member driving a user {@link StateMachine}.
 *
 * ```ts
 * const node = await RaftNode.create({ id: 'a', peers: ['a', 'b', 'c'], storage, transport, stateMachine });
 * const result = await node.propose(new TextEncoder().encode('set x 1'));
 * ```
 *
 * @typeParam R - what the state machine returns for one entry
 */
export class RaftNode<R = unknown> extends EventEmitter<RaftNodeEvents> {
  /** This member's id. */
  readonly id: string;

  private readonly raw: RawNode;
  private readonly mem: NodeStorage;
  /** A snapshot for a follower is queued to be taken (on-demand mode). */
  private snapshotWanted = false;
  /** A snapshot for followers is being read (`StateMachine.beginSnapshot`), off the apply queue. */
  private snapshotReading = false;
  /**
   * Per follower, failed snapshot sends in a row and the time (clock ms)
   * before which no snapshot is taken for it: the back-off after failures.
   */
  private readonly snapshotBackoff = new Map<string, { failures: number; retryAt: number }>();
  /** MsgSnaps handed to the transport per follower, not reported yet (any term). */
  private readonly snapsInFlight = new Map<string, number>();
  /** Followers one of whose MsgSnaps in flight was reported arrived. */
  private readonly snapsFinished = new Set<string>();
  private readonly storage: LogStorage;
  private readonly transport: Transport;
  private readonly sm: StateMachine<R>;
  private readonly clock: Clock;
  private readonly tickMs: number;
  private readonly electionMs: number;
  private readonly snapshotEntries: number;
  private readonly catchUpEntries: number;
  private readonly proposalTimeoutMs: number;
  private readonly readTimeoutMs: number;
  private readonly forwarding: boolean;
  private readonly origin: Uint8Array;

  /**
   * Sequence number of the last local proposal or conf change. It starts at
   * a random point below 2^52, so that an entry proposed by an earlier run of
   * this member (before a restart) and committed later is never mistaken for
   * a proposal of this run (see {@link initialSequence}).
   */
  private seq: number;
  private readonly pending = new Map<number, PendingProposal<R>>();
  /** Proposals not yet accepted by Raft (no leader known, or dropped during a transfer). */
  private readonly waiting: number[] = [];
  /**
   * Proposals made since the Ready loop last ran, handed to Raft together
   * (one MsgProp, so one append and one MsgApp per follower) right before
   * the next Ready is collected.
   */
  private batch: number[] = [];
  private readonly pendingConf = new Map<number, PendingConfChange>();
  /**
   * Leadership transfers in progress, each with the member it moves to:
   * settled when that member becomes the leader (before the `leaderChange`
   * listeners run: one that throws must not keep it waiting), or failed
   * with the node when it stops.
   */
  private readonly transfers = new Map<(err?: Error) => void, string>();
  /** Transport addresses of members added with one (from conf changes and snapshots). */
  private readonly addresses = new Map<string, string>();
  /** Ids removed from the cluster, as applied here (from conf changes and snapshots): never added back. */
  private readonly removedIds = new Set<string>();
  private readonly waitingConf: number[] = [];
  /** A membership change was applied here and `raw.advance()` has not yet told Raft (see {@link tryProposeConf}). */
  private confAwaitingAdvance = false;
  private readRound: ReadRound | undefined;
  private readQueue: ReadWaiter[] = [];
  private readonly confirmedReads: { index: number; waiters: ReadWaiter[] }[] = [];
  private readCounter = 0;
  /**
   * Tells this run's read contexts from an earlier run's: an answer to the
   * earlier run's `<id>/1`, still in flight after a restart, would confirm
   * this run's first read at an index older than the read (a stale read).
   */
  private readonly readRun = runId();

  private lead = '';
  private role: StateRole = 'follower';
  private currentTerm = 0;
  private confState: ConfState = { voters: [], learners: [] };
  /** The last entry the state machine has applied: its `apply` (or `restore`) returned. */
  private smApplied: number;
  /**
   * The last entry this node has handed to the state machine, or gone past
   * because the state machine had it already (a restart's replay). Ahead of
   * {@link smApplied} only while an apply runs.
   */
  private applied: number;
  private snapshotIndex: number;

  private tickTimer: TimerHandle | undefined;
  /** The last HardState given to the storage, and the latest from Raft when its commit has not been saved yet. */
  private savedHardState: HardState | undefined;
  private unsavedHardState: HardState | undefined;
  /** When (clock ms) {@link unsavedHardState} was first left unsaved. */
  private unsavedSince = 0;
  private hardStateTimer: TimerHandle | undefined;
  /** Commit-only MsgApps of this leader, held until the end of the turn (see {@link sendAsLeader}). */
  private heldApps: Message[] = [];
  private heldScheduled = false;
  private loopScheduled = false;
  private looping = false;
  private readonly applyQueue: ApplyTask[] = [];
  private applying = false;
  private applyKickScheduled = false;
  private closed = false;
  /** The transport's close, once called (by {@link close}, a fatal error or a removal). */
  private transportClosing: Promise<void> | undefined;
  /** The close in progress or done: later calls of {@link close} wait for it. */
  private closing: Promise<void> | undefined;
  private removedFromCluster = false;
  /** When (clock ms) each member of the configuration was last heard from: etcd's `ActiveSince`, for {@link leaderConfCheck}. */
  private readonly lastHeard = new Map<string, number>();
  private readonly strictReconfigCheck: boolean;
  /**
   * A leader that applied its own removal still takes part in elections
   * until this timer fires ({@link onRemoved}); undefined otherwise.
   */
  private lingerTimer: TimerHandle | undefined;
  /** Most bytes of proposal data handed to Raft in one batch (`maxSizePerMsg`): see {@link flushProposals}. */
  private readonly maxBatchBytes: number;
  private fatal: Error | undefined;
  private idleWaiters: (() => void)[] = [];

  private constructor(
    opts: RaftNodeOptions<R>,
    raw: RawNode,
    mem: NodeStorage,
    smApplied: number,
    snapshot: Snapshot | undefined,
  ) {
    super();
    this.id = opts.id;
    this.raw = raw;
    this.currentTerm = raw.status().hardState.term;
    this.mem = mem;
    this.storage = opts.storage;
    this.transport = opts.transport;
    this.sm = opts.stateMachine;
    this.clock = opts.clock ?? systemClock;
    this.tickMs = opts.tickMs ?? 100;
    this.electionMs = this.tickMs * (opts.electionTicks ?? 10);
    this.strictReconfigCheck = opts.strictReconfigCheck ?? true;
    this.snapshotEntries = opts.snapshotEntries ?? 10_000;
    // no snapshot goes to a follower while it waits out a back-off after failed sends
    this.mem.holdBack((peer) => this.clock.now() < (this.snapshotBackoff.get(peer)?.retryAt ?? 0));
    if (this.sm.sync !== undefined) {
      // Raft asks for the snapshot from inside step(): take it as an apply task
      this.mem.produceOnDemand(() => {
        if (this.snapshotWanted || this.snapshotReading || this.closed) return;
        this.snapshotWanted = true;
        queueMicrotask(() => this.pushApply({ kind: 'takeSnapshot' }));
      });
    }
    this.catchUpEntries = opts.snapshotCatchUpEntries ?? 5_000;
    this.proposalTimeoutMs = opts.proposalTimeoutMs ?? 10_000;
    this.readTimeoutMs = opts.readTimeoutMs ?? 10_000;
    this.forwarding = !(opts.disableProposalForwarding ?? false);
    this.maxBatchBytes = opts.maxSizePerMsg ?? 1024 * 1024;
    this.origin = encodeOrigin(opts.id);
    this.seq = initialSequence();
    this.smApplied = smApplied;
    this.snapshotIndex = snapshot?.metadata.index ?? 0;
    this.applied = this.snapshotIndex;
    this.confState = snapshot?.metadata.confState ?? { voters: [], learners: [] };
  }

  /**
   * Opens a member: loads what `storage` holds, restores the state machine
   * from the latest snapshot when it is behind it, bootstraps a new cluster
   * from `peers` when the storage is empty, starts the transport and the tick
   * timer.
   * @throws UsageError `QUORUMKV_INVALID_CONFIG` for bad options, an option
   *   of another name than {@link RaftNodeOptions}' included, a `tickMs`,
   *   `proposalTimeoutMs` or `readTimeoutMs` that is not a whole number of
   *   ms above 0, a `null` option (only one left out, or `undefined`, takes
   *   the default), and those the Raft core refuses (`electionTicks` not
   *   above `heartbeatTicks`, a size or `maxInflightMsgs` that is not
   *   positive...): checked before the storage is loaded, so nothing is
   *   restored or started
   * @throws FaultError `QUORUMKV_CORRUPT_LOG` when the storage is corrupt
   *   (its `load()` throws so), or `load()` resolves with a malformed state
   *   (not an object; a malformed HardState, snapshot or entry; entries not
   *   contiguous, with a term that decreases, or leaving a gap after the
   *   snapshot, or after index 0 without one), when the saved commit is
   *   beyond the log (the Raft core's check), or when the state machine reports an applied index beyond the log's last
   *   index (entries it applied are missing); `QUORUMKV_CORRUPT_SNAPSHOT`
   *   when the log is compacted behind an on-demand snapshot record and the
   *   state machine, which held that snapshot's state, reports an applied
   *   index below it (its data was lost or replaced by an older copy)
   */
  static async create<R>(opts: RaftNodeOptions<R>): Promise<RaftNode<R>> {
    validateOptions(opts);
    // a custom storage's state is checked as the built-in ones check theirs
    const persisted = checkLoadedState(await opts.storage.load());
    const mem = new NodeStorage();
    const snap = persisted.snapshot;
    const snapEnv = snap !== undefined && snap.metadata.index > 0 ? unwrapSnapshot(snap.data) : undefined;
    if (snap !== undefined && snapEnv !== undefined) mem.loadSnapshot(snap, snapEnv.data !== undefined);
    if (persisted.entries.length > 0) mem.append(persisted.entries);
    const empty = holdsNothing(persisted);

    let smApplied = await opts.stateMachine.appliedIndex();
    if (snap !== undefined && snapEnv !== undefined && snap.metadata.index > smApplied) {
      if (snapEnv.data === undefined) {
        // the record of an on-demand snapshot: the log behind it is gone and
        // the state machine, synced before the record was written, lost it
        throw new FaultError(
          ErrorCode.CORRUPT_SNAPSHOT,
          `the log is compacted behind index ${snap.metadata.index}, whose state the state machine holds, but it reports index ${smApplied}`,
        );
      }
      await opts.stateMachine.restore({ data: snapEnv.data, index: snap.metadata.index, term: snap.metadata.term });
      smApplied = snap.metadata.index;
    }
    // The saved commit may be older than the snapshot and than what the
    // state machine applied (see COMMIT_SAVE_DELAY_MS). Both were committed:
    // start from there, so that membership is rebuilt from every change the
    // state machine has seen.
    const snapIndex = snap?.metadata.index ?? 0;
    const lastIndex = Math.max(snapIndex, persisted.entries.at(-1)?.index ?? 0);
    if (smApplied > lastIndex) {
      // Entries reach the state machine only once durable in the log: a
      // shorter log lost acknowledged entries (a corrupt tail the storage
      // dropped on load, say, which it may take for an unacknowledged one
      // when the saved commit lags).
      throw new FaultError(
        ErrorCode.CORRUPT_LOG,
        `the state machine reports index ${smApplied} applied, but the log ends at index ${lastIndex}: entries it applied are missing from the log`,
      );
    }
    const commit = Math.max(persisted.hardState.commit, snapIndex, smApplied);
    mem.setHardState(commit === persisted.hardState.commit ? persisted.hardState : { ...persisted.hardState, commit });

    const logger: RaftLogger = {
      debug: (m) => raftDebug(`[${opts.id}] ${m}`),
      info: (m) => raftDebug(`[${opts.id}] ${m}`),
      warn: (m) => raftDebug(`[${opts.id}] WARN ${m}`),
      error: (m) => raftDebug(`[${opts.id}] ERROR ${m}`),
    };
    const raw = new RawNode({
      id: opts.id,
      storage: mem,
      // Conf changes after the snapshot are handed out again so Raft's
      // membership is rebuilt; the apply queue skips what the state machine has.
      applied: snap?.metadata.index ?? 0,
      ...coreOptions(opts),
      logger,
      checkConfChange: (cc: ConfChange, matchOf: (id: string) => number | undefined): ConfChangeRefusal | undefined => node.leaderConfCheck(cc, matchOf),
      refusedConfChange: (entry, refusal) => refusedConfChangeEntry(entry, refusal, (id) => node.confState.voters.includes(id)),
    });
    if (empty && opts.peers !== undefined && opts.peers.length > 0) raw.bootstrap(opts.peers);

    const node: RaftNode<R> = new RaftNode<R>(opts, raw, mem, smApplied, snap);
    for (const [id, address] of Object.entries(snapEnv?.addresses ?? {})) node.addresses.set(id, address);
    for (const id of snapEnv?.removed ?? []) node.removedIds.add(id);
    // the state machine holds the snapshot's state: memory need not too
    if (snap !== undefined && snapEnv?.data !== undefined && smApplied >= snap.metadata.index) node.shedSnapshotState(snap.metadata.index);
    node.syncPeers({ voters: [], learners: [] }, node.confState);
    await opts.transport.start({
      receive: (m) => node.onMessage(m),
      reportUnreachable: (id) => {
        if (!node.closed) node.raw.reportUnreachable(id);
      },
      reportSnapshot: (id, status) => {
        if (node.closed) return;
        const left = (node.snapsInFlight.get(id) ?? 1) - 1;
        if (status === 'finish') node.snapsFinished.add(id);
        if (left > 0) {
          node.snapsInFlight.set(id, left);
          return; // another send to it is still in flight: acted on once every one is reported
        }
        node.snapsInFlight.delete(id);
        // any of them that arrived counts (reports may come out of order)
        const outcome: SnapshotStatus = node.snapsFinished.delete(id) ? 'finish' : status;
        node.mem.settle(id); // dropped once no send of it is in flight: taken again if another follower needs one
        if (!node.removedIds.has(id)) node.snapshotSent(id, outcome);
        node.raw.reportSnapshot(id, outcome);
        node.scheduleLoop();
      },
      reportRemoved: (id) => {
        if (node.closed || node.fatal !== undefined || node.removedFromCluster) return;
        log('[%s] %s says this member was removed from the cluster', node.id, id);
        node.onRemoved();
      },
    });
    node.tickTimer = node.clock.setTimeout(() => node.onTick(), node.tickMs);
    log('[%s] started: applied=%d snapshot=%d bootstrap=%s', opts.id, smApplied, node.snapshotIndex, empty && !!opts.peers);
    node.scheduleLoop();
    return node;
  }

  // ---------------------------------------------------------------- public API

  /**
   * Replicates `data` and resolves with the state machine's result once the
   * entry is applied on this member. From a follower the proposal is
   * forwarded to the leader; while no leader is known it waits for one.
   * @param data - the entry payload, passed to `StateMachine.apply` unchanged
   * @param options.timeoutMs - overrides `proposalTimeoutMs`
   * @throws FaultError `QUORUMKV_TIMEOUT` when not applied in time (it may still be applied later)
   * @throws UsageError `QUORUMKV_NOT_LEADER` on a follower with forwarding disabled (nothing proposed),
   *   also when the proposal was made while no leader was known and the leader turns out to be another member
   * @throws FaultError `QUORUMKV_PROPOSAL_DROPPED` when Raft refuses it for good (uncommitted-size cap)
   * @throws FaultError `QUORUMKV_NODE_CLOSED`, `QUORUMKV_REMOVED`: for a proposal that was
   *   pending when the member closed, stopped or was removed, the outcome is unknown (it may be
   *   in the log and still be applied), as for `QUORUMKV_TIMEOUT`
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `data` is not a `Uint8Array` (or is a Proxy of
   *   one, or a view of a detached or shrunk `ArrayBuffer`: its bytes cannot be read),
   *   `timeoutMs` not a positive number, or the options not `{ timeoutMs }` (nothing proposed)
   * @throws UsageError `QUORUMKV_REQUEST_TOO_LARGE` when the entry would not fit, with 1 KiB
   *   to spare, in the transport's largest message (`Transport.maxMessageBytes`; TCP:
   *   `maxFrameBytes`): no follower could ever receive it (nothing proposed)
   */
  propose(data: Uint8Array, options: { timeoutMs?: number } = {}): Promise<R> {
    const gone = this.unavailable();
    if (gone !== undefined) return Promise.reject(gone);
    // checked before anything is set up: the envelope would copy a string or
    // an array into bytes (a string as zeros) and replicate that
    if (!(data instanceof Uint8Array)) return Promise.reject(new UsageError(ErrorCode.INVALID_ARGUMENT, 'proposal data must be a Uint8Array'));
    // a Proxy of one, or a view of a detached or shrunk buffer: the envelope's copy threw a TypeError
    const unreadable = viewProblem(data);
    if (unreadable !== undefined) return Promise.reject(new UsageError(ErrorCode.INVALID_ARGUMENT, `proposal data is ${unreadable}`));
    const badTimeout = timeoutProblem(options);
    if (badTimeout !== undefined) return Promise.reject(badTimeout);
    if (!this.forwarding && this.role !== 'leader' && this.lead !== '') {
      return Promise.reject(new UsageError(ErrorCode.NOT_LEADER, `not the leader (leader is ${this.lead}) and proposal forwarding is disabled`));
    }
    const seq = this.seq + 1;
    const wrapped = wrapProposal(this.origin, seq, data);
    // an entry no message of the transport can carry would never reach a
    // follower, and every entry after it would wait behind it for good
    const limit = this.transport.maxMessageBytes;
    if (limit !== undefined && wrapped.length + MESSAGE_OVERHEAD_BYTES > limit) {
      return Promise.reject(
        new UsageError(
          ErrorCode.REQUEST_TOO_LARGE,
          `a proposal of ${data.length} bytes does not fit in a message of the transport (at most ${limit} bytes, ${MESSAGE_OVERHEAD_BYTES} of them kept for the message around the entry)`,
        ),
      );
    }
    this.seq = seq;
    return new Promise<R>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        const p = this.pending.get(seq);
        if (p === undefined) return;
        this.pending.delete(seq);
        // the message leaves out the seq: it comes from the platform CSPRNG
        // (see initialSequence), and an error message that differs from run
        // to run would keep a seeded simulation that logs it from replaying
        p.reject(new FaultError(ErrorCode.TIMEOUT, `the proposal was not applied within ${options.timeoutMs ?? this.proposalTimeoutMs} ms; it may still be applied`));
      }, options.timeoutMs ?? this.proposalTimeoutMs);
      this.pending.set(seq, { resolve, reject, timer, data: wrapped });
      this.batch.push(seq);
      this.scheduleLoop();
    });
  }

  /**
   * Resolves once this member's state machine has applied everything
   * committed before the call: a linearizable read point (Raft thesis §6.4,
   * ReadIndex). Concurrent calls share one ReadIndex round.
   * @returns the read index
   * @throws FaultError `QUORUMKV_TIMEOUT`, `QUORUMKV_NODE_CLOSED`, `QUORUMKV_REMOVED`
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `timeoutMs` is not a positive number, or
   *   the options not `{ timeoutMs }`
   */
  readIndex(options: { timeoutMs?: number } = {}): Promise<number> {
    const gone = this.unavailable();
    if (gone !== undefined) return Promise.reject(gone);
    const badTimeout = timeoutProblem(options);
    if (badTimeout !== undefined) return Promise.reject(badTimeout);
    return new Promise<number>((resolve, reject) => {
      const waiter: ReadWaiter = {
        resolve,
        reject,
        timer: this.clock.setTimeout(() => {
          waiter.timer = undefined;
          this.dropReadWaiter(waiter);
          reject(new FaultError(ErrorCode.TIMEOUT, `read index not confirmed within ${options.timeoutMs ?? this.readTimeoutMs} ms`));
        }, options.timeoutMs ?? this.readTimeoutMs),
      };
      this.readQueue.push(waiter);
      this.startReadRound();
    });
  }

  /** Starts an election now (Raft §5.2), as if the election timeout had elapsed. */
  campaign(): void {
    if (this.unavailable() !== undefined) return;
    this.raw.campaign();
    this.scheduleLoop();
  }

  /**
   * Transfers leadership to `to` (Raft thesis §3.10) and resolves once `to`
   * is the leader.
   * @throws UsageError `QUORUMKV_NOT_LEADER` when this member is not the leader
   * @throws UsageError `QUORUMKV_BAD_LEADER_TRANSFEREE` when `to` is not a
   *   voter (a learner, or no member: etcd's ErrBadLeaderTransferee),
   *   `QUORUMKV_INVALID_ARGUMENT` for a `to` that is not a string, or
   *   options that are not `{ timeoutMs }` with a positive number
   * @throws FaultError `QUORUMKV_TIMEOUT` when the transfer did not finish within two election timeouts
   */
  async transferLeader(to: string, options: { timeoutMs?: number } = {}): Promise<void> {
    const gone = this.unavailable();
    if (gone !== undefined) throw gone;
    const badTimeout = timeoutProblem(options);
    if (badTimeout !== undefined) throw badTimeout;
    if (typeof to !== 'string') throw new UsageError(ErrorCode.INVALID_ARGUMENT, `the member to move leadership to must be an id (a string), got ${typeof to}`);
    if (!this.confState.voters.includes(to)) throw new UsageError(ErrorCode.BAD_LEADER_TRANSFEREE, `etcdserver: bad leader transferee (${to} is not a voter)`);
    if (this.lead === to) return;
    if (this.role !== 'leader') throw new UsageError(ErrorCode.NOT_LEADER, `not the leader (leader is ${this.lead || 'unknown'})`);
    const timeoutMs = options.timeoutMs ?? 2 * this.electionMs;
    await new Promise<void>((resolve, reject) => {
      const settle = (err?: Error): void => {
        this.clock.clearTimeout(timer);
        this.transfers.delete(settle);
        if (err === undefined) resolve();
        else reject(err);
      };
      const timer = this.clock.setTimeout(() => settle(new FaultError(ErrorCode.TIMEOUT, `leadership did not move to ${to} within ${timeoutMs} ms`)), timeoutMs);
      this.transfers.set(settle, to);
      this.raw.transferLeader(to);
      this.scheduleLoop();
    });
  }

  /** Same as {@link transferLeader} (etcd's name). */
  moveLeader(to: string, options: { timeoutMs?: number } = {}): Promise<void> {
    return this.transferLeader(to, options);
  }

  /**
   * Adds a voter, or promotes a learner (Raft thesis §4.1: one server at a
   * time). Resolves with the new membership once the change is applied here.
   * An id that was removed cannot be added back (replaying the log, the new
   * member would apply its own removal and stop); use a new id, as in etcd.
   * @param address - where the transport reaches the member (`host:port` for
   *   TCP); kept in snapshots, so it survives log compaction
   * @throws FaultError `QUORUMKV_CONF_CHANGE_PENDING` when another change is still pending;
   *   `QUORUMKV_LEARNER_NOT_READY` when promoting a learner whose log matches
   *   less than 90% of the leader's; `QUORUMKV_UNHEALTHY` for a new voter
   *   while a voter is down, or while the voters that vote freely (a founding
   *   voter that acknowledged no leader's entry yet does not) would not be a
   *   quorum of the larger configuration (`strictReconfigCheck`)
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an id that is not
   *   a valid member id, or an address that is not a non-empty string of at
   *   most 1024 UTF-8 bytes; `QUORUMKV_MEMBER_ID_REMOVED` for a removed id
   *   (etcd's ErrIDRemoved). From the leader, through the log when called
   *   on a follower (etcd's `ValidateConfigurationChange`), for a change
   *   that the membership the leader applied no longer allows as made here:
   *   `QUORUMKV_MEMBER_EXISTS` for an id that is a voter, or that another
   *   member's change added meanwhile (etcd's ErrIDExists: "etcdserver:
   *   member ID already exist"; a learner added so is not promoted),
   *   `QUORUMKV_MEMBER_ID_REMOVED` for one removed meanwhile (a learner
   *   this member would promote included), `QUORUMKV_PEER_ADDRESS_EXISTS`
   *   for an address another member was added or updated with
   *   (ErrPeerURLexists: "etcdserver: Peer URLs already exists"), and, for
   *   the promotion of a learner, `QUORUMKV_MEMBER_NOT_LEARNER` when it is a
   *   voter by now (ErrMemberNotLearner: "etcdserver: can only promote a
   *   learner member")
   */
  addVoter(id: string, address?: string): Promise<ConfState> {
    return this.changeMembership('AddNode', id, address);
  }

  /**
   * Adds a learner: it receives the log but never votes or counts in a quorum (thesis §4.2.1).
   * @param options.maxLearners - most learners the cluster may have with
   *   this one (a positive integer; no limit when omitted), checked here and
   *   by the leader against the membership it applied (etcd's
   *   ErrTooManyLearners, which etcd checks at apply): a learner another
   *   member added meanwhile counts
   * @throws as {@link addVoter}; UsageError `QUORUMKV_MEMBER_EXISTS` for an
   *   id that is a voter here, `QUORUMKV_TOO_MANY_LEARNERS` ("etcdserver:
   *   too many learner members in cluster", etcd's ErrTooManyLearners)
   *   beyond `maxLearners` (here, or on the leader, through the log when
   *   called on a follower), `QUORUMKV_INVALID_ARGUMENT` for options that
   *   are not `{ maxLearners }` with a positive integer
   */
  addLearner(id: string, address?: string, options: { maxLearners?: number } = {}): Promise<ConfState> {
    try {
      checkOptionsArg(options, ['maxLearners'], 'addLearner options');
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const max = options.maxLearners;
    if (max !== undefined && !(typeof max === 'number' && Number.isSafeInteger(max) && max > 0)) {
      return Promise.reject(new UsageError(ErrorCode.INVALID_ARGUMENT, 'maxLearners must be a positive integer'));
    }
    // (a malformed id, one that is a member and one removed are refused as
    // such whatever the room: etcd's ValidateConfigurationChange checks
    // ErrIDRemoved and ErrIDExists before ErrTooManyLearners)
    const { voters, learners } = this.confState;
    const newMember = memberIdProblem(id) === undefined && !voters.includes(id) && !learners.includes(id) && !this.removedIds.has(id);
    if (max !== undefined && this.unavailable() === undefined && newMember && learners.length >= max) {
      return Promise.reject(new UsageError(ErrorCode.TOO_MANY_LEARNERS, tooManyLearners(max)));
    }
    return this.changeMembership('AddLearnerNode', id, address, max);
  }

  /**
   * Promotes a learner to voter, once its log matches at least 90% of the
   * leader's (etcd's `isLearnerReady`).
   * @throws UsageError when `id` is not a learner (checked here, and by
   *   the leader: one another member's change promoted or removed meanwhile
   *   fails so through the log): `QUORUMKV_MEMBER_NOT_LEARNER` for a voter
   *   ("etcdserver: can only promote a learner member", etcd's
   *   ErrMemberNotLearner), `QUORUMKV_MEMBER_ID_REMOVED` for a removed id
   *   (ErrIDRemoved), `QUORUMKV_MEMBER_NOT_FOUND` for another
   *   ("etcdserver: member not found", ErrIDNotFound);
   *   `QUORUMKV_INVALID_ARGUMENT` for an id that is not a valid member id
   * @throws FaultError `QUORUMKV_LEARNER_NOT_READY`, `QUORUMKV_CONF_CHANGE_PENDING`
   */
  promoteLearner(id: string): Promise<ConfState> {
    if (!this.confState.learners.includes(id)) {
      const refused = this.notMember(id) ?? new UsageError(ErrorCode.MEMBER_NOT_LEARNER, `etcdserver: can only promote a learner member (${id} is a voter)`);
      return Promise.reject(refused);
    }
    return this.changeMembership('AddNode', id, undefined);
  }

  /**
   * Removes a voter or learner; a removed member stops.
   * @throws UsageError for an id that is not a member (checked here, and
   *   by the leader: one another member's change removed meanwhile fails so
   *   through the log): `QUORUMKV_MEMBER_ID_REMOVED` for a removed id
   *   (etcd's ErrIDRemoved), `QUORUMKV_MEMBER_NOT_FOUND` for another
   *   ("etcdserver: member not found", ErrIDNotFound);
   *   `QUORUMKV_INVALID_ARGUMENT` for an id that is not a valid member id
   * @throws FaultError `QUORUMKV_UNHEALTHY` (`strictReconfigCheck`) when the
   *   voter is up and the voters up, less it, would not be a quorum of the
   *   voters left
   * @throws FaultError `QUORUMKV_REMOVED` when this member removes itself and
   *   hears of its removal from a peer before it applies it (the removal
   *   still holds), as for any call pending when a member stops
   */
  removeMember(id: string): Promise<ConfState> {
    const refused = this.notMember(id);
    if (refused !== undefined) return Promise.reject(refused);
    return this.changeMembership('RemoveNode', id, undefined);
  }

  /**
   * Why `id` is no member of the membership applied here, or undefined: not
   * a valid member id (`QUORUMKV_INVALID_ARGUMENT`), removed (etcd's
   * ErrIDRemoved, `QUORUMKV_MEMBER_ID_REMOVED`) or unknown (ErrIDNotFound,
   * `QUORUMKV_MEMBER_NOT_FOUND`).
   */
  private notMember(id: string): UsageError | undefined {
    const idProblem = memberIdProblem(id);
    if (idProblem !== undefined) return new UsageError(ErrorCode.INVALID_ARGUMENT, `member id must ${idProblem}`);
    if (this.confState.voters.includes(id) || this.confState.learners.includes(id)) return undefined;
    if (this.removedIds.has(id)) return new UsageError(ErrorCode.MEMBER_ID_REMOVED, idRemoved(id));
    return new UsageError(ErrorCode.MEMBER_NOT_FOUND, idNotFound(id));
  }

  /**
   * Changes the address at which the transports reach member `id` (etcd's
   * `MemberUpdate`, a `ConfChangeUpdateNode`): a replicated change that
   * leaves the membership as it is. Every member applies it in log order
   * and tells its transport ({@link Transport.addPeer} with the new
   * address); the address is kept in snapshots, as an added member's is.
   * Update first, then restart the member at its new address, as with
   * etcd's `member update`. One change at a time (Raft thesis §4.1).
   * Resolves with the membership once the change is applied here.
   * @param address - the new address (`host:port` for TCP)
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an id that is not a
   *   valid member id or an address that is not a non-empty string of at
   *   most 1024 UTF-8 bytes, `QUORUMKV_MEMBER_ID_REMOVED` for an id that was
   *   removed (etcd's ErrIDRemoved; all checked here),
   *   `QUORUMKV_MEMBER_NOT_FOUND` for an id that is not a member
   *   ("etcdserver: member not found", ErrIDNotFound) and
   *   `QUORUMKV_PEER_ADDRESS_EXISTS` for an address that another member was
   *   added or updated with ("etcdserver: Peer URLs already exists",
   *   ErrPeerURLexists): both checked by the leader against the membership
   *   it applied, through the log when called on a follower (which may not
   *   have applied the change that added the id or freed the address yet)
   * @throws FaultError `QUORUMKV_CONF_CHANGE_PENDING` when another change made
   *   here is still pending, `QUORUMKV_TIMEOUT`, `QUORUMKV_NODE_CLOSED`,
   *   `QUORUMKV_REMOVED`
   */
  updateMember(id: string, address: string): Promise<ConfState> {
    if (address === undefined) return Promise.reject(new UsageError(ErrorCode.INVALID_ARGUMENT, 'updateMember needs the new address'));
    return this.changeMembership('UpdateNode', id, address);
  }

  /**
   * The address member `id` was added or last updated with (`addVoter`,
   * `addLearner`, `updateMember`), as applied on this member; undefined for
   * one given none, and for a founding member, whose address only the
   * transports' configuration holds.
   */
  addressOf(id: string): string | undefined {
    return this.addresses.get(id);
  }

  /** The current membership, as applied on this member. */
  members(): ConfState {
    return { voters: [...this.confState.voters], learners: [...this.confState.learners] };
  }

  /** Id of the current leader, `''` when none is known. */
  get leader(): string {
    return this.lead;
  }

  /** The current term as of the last Ready processed (the term of `status()`, without building it). */
  get term(): number {
    return this.currentTerm;
  }

  /**
   * True once this member was removed from the cluster: it applied its own
   * removal, or a member that applied it refused this one as removed (see
   * `Transport.refusePeer`). A removed member is stopped: its proposals,
   * reads and membership calls fail with `QUORUMKV_REMOVED`; `status()` and
   * `members()` still answer.
   */
  get removed(): boolean {
    return this.removedFromCluster;
  }

  /** True while this member is the leader. */
  get isLeader(): boolean {
    return this.role === 'leader' && this.unavailable() === undefined;
  }

  /**
   * Index of the last entry the state machine has applied (its `apply`
   * returned). Entries handed to it and still being applied do not count:
   * a linearizable read is released only once this reaches its read index
   * (Raft thesis §6.4, step 4).
   */
  get appliedIndex(): number {
    return this.smApplied;
  }

  /** A snapshot of this member's Raft state. */
  status(): RaftNodeStatus {
    const st = this.raw.status();
    return {
      id: this.id,
      term: st.hardState.term,
      vote: st.hardState.vote,
      leader: st.softState.lead,
      role: st.softState.raftState,
      commit: st.hardState.commit,
      lastIndex: this.mem.lastIndex(),
      applied: this.appliedIndex,
      snapshotIndex: this.snapshotIndex,
      membership: this.members(),
      progress: st.progress,
      removed: this.removedFromCluster,
    };
  }

  /**
   * Resolves once nothing is left to persist or apply, or at once when the
   * node is closed or stopped by a fatal error (test helper; in a live
   * cluster new work may arrive at any time).
   */
  async idle(): Promise<void> {
    while (
      !this.closed &&
      this.fatal === undefined &&
      (this.looping || this.loopScheduled || this.applying || this.applyQueue.length > 0 || this.batch.length > 0 || this.raw.hasReady())
    ) {
      await new Promise<void>((r) => this.idleWaiters.push(r));
    }
  }

  /**
   * Stops the member: stops ticking, saves the commit index it may leave
   * unsaved for up to 100 ms (docs/node.md, "The Ready loop"), closes the transport and the storage,
   * and rejects every pending call with `QUORUMKV_NODE_CLOSED`. Idempotent:
   * every call settles once the member is closed (one made while another
   * runs waits for it). The storage is closed even when the transport fails
   * to close or that last save fails; every call then rejects with the first
   * failure, as the transport or the storage reported it (also a failure of
   * the transport's close begun when a fatal error or a removal stopped the
   * member, which is not thrown elsewhere).
   * The state machine is not closed (it belongs to the caller): a call to
   * it in progress is waited for, and none is made once this settles.
   */
  close(): Promise<void> {
    this.closing ??= this.closeNow();
    return this.closing;
  }

  private async closeNow(): Promise<void> {
    this.closed = true;
    this.stopTimers();
    this.failAll(new FaultError(ErrorCode.NODE_CLOSED, 'node is closed'));
    let failure: { error: unknown } | undefined;
    try {
      await this.closeTransport();
    } catch (error) {
      failure = { error };
    }
    // The state machine is the caller's, who may close it once this
    // resolves: a call to it in progress (apply, snapshot, restore) ends
    // first, and no other is made (the apply queue stops at `closed`).
    while (this.applying) await new Promise<void>((r) => this.idleWaiters.push(r));
    // Let an in-flight save finish before the storage goes away.
    for (let i = 0; i < 1000 && (this.looping || this.applying); i++) await new Promise((r) => setImmediate(r));
    // A failed save of the commit left unsaved is reported, and the storage
    // is closed all the same.
    try {
      await this.saveDeferredHardState();
    } catch (error) {
      failure ??= { error };
    }
    try {
      await this.storage.close();
    } catch (error) {
      failure ??= { error };
    }
    this.wakeIdle();
    if (failure !== undefined) {
      log('[%s] closed, with a failure: %s', this.id, (failure.error as Error)?.message);
      throw failure.error;
    }
    log('[%s] closed', this.id);
  }

  // ---------------------------------------------------------------- internals

  private unavailable(): QuorumError | undefined {
    if (this.fatal !== undefined) return new FaultError(ErrorCode.NODE_CLOSED, `node stopped after a fatal error: ${this.fatal.message}`, { cause: this.fatal });
    if (this.removedFromCluster) return new FaultError(ErrorCode.REMOVED, 'this member was removed from the cluster');
    if (this.closed) return new FaultError(ErrorCode.NODE_CLOSED, 'node is closed');
    return undefined;
  }

  private changeMembership(type: ConfChangeType, id: string, address: string | undefined, maxLearners?: number): Promise<ConfState> {
    const gone = this.unavailable();
    if (gone !== undefined) return Promise.reject(gone);
    const idProblem = memberIdProblem(id);
    if (idProblem !== undefined) return Promise.reject(new UsageError(ErrorCode.INVALID_ARGUMENT, `member id must ${idProblem}`));
    if ((type === 'AddNode' || type === 'AddLearnerNode') && this.removedIds.has(id)) {
      // replaying the log, the new member would apply its own removal and stop (etcd's ErrIDRemoved)
      return Promise.reject(new UsageError(ErrorCode.MEMBER_ID_REMOVED, removedNotAddedBack(id)));
    }
    // one change at a time (thesis §4.1): a second one from this member
    // would be dropped by the leader and only time out
    if (this.pendingConf.size > 0) {
      return Promise.reject(new FaultError(ErrorCode.CONF_CHANGE_PENDING, 'a membership change made on this member is not applied yet'));
    }
    if (address !== undefined && (typeof address !== 'string' || address === '')) {
      return Promise.reject(new UsageError(ErrorCode.INVALID_ARGUMENT, 'a member address must be a non-empty string'));
    }
    // the address travels in the change's entry and in every later snapshot:
    // one that makes the entry too large for the transport's frames would
    // stall replication for good, on every member
    if (address !== undefined && Buffer.byteLength(address, 'utf8') > MAX_MEMBER_ADDRESS_BYTES) {
      return Promise.reject(new UsageError(ErrorCode.INVALID_ARGUMENT, `a member address must be at most ${MAX_MEMBER_ADDRESS_BYTES} UTF-8 bytes`));
    }
    // what the leader would refuse (a forwarded change it refuses becomes an
    // empty entry, and its proposer would only time out): checked here
    // against this member's membership, which the leader's can only be ahead of
    if (type === 'UpdateNode' && this.removedIds.has(id)) {
      return Promise.reject(new UsageError(ErrorCode.MEMBER_ID_REMOVED, idRemoved(id)));
    }
    // a voter added as a learner: etcd's ErrIDExists (the Raft core would
    // refuse it as the demotion of a voter)
    if (type === 'AddLearnerNode' && this.confState.voters.includes(id)) {
      return Promise.reject(new UsageError(ErrorCode.MEMBER_EXISTS, idExists(id)));
    }
    const refused = checkConfChange({ voters: new Set(this.confState.voters), learners: new Set(this.confState.learners) }, { type, nodeId: id });
    if (refused !== undefined) return Promise.reject(new UsageError(ErrorCode.INVALID_ARGUMENT, refused));
    // Not checked here: an id this member does not know yet for UpdateNode,
    // an address taken (ErrPeerURLexists), an id that is a member already
    // for an addition (the leader refuses an AddNode of it). The leader's membership may have
    // added that id, or freed that address (a removal or an update this
    // member has not applied yet): only the leader's answer is the log's
    // (overtakenConfChange), through the log when it comes from a follower.
    const seq = ++this.seq;
    const ctx: ConfContext = { origin: this.id, seq };
    if (address !== undefined) ctx.address = address;
    // what the change is meant to do, as this member sees the membership: the
    // leader refuses it if the membership it applied no longer allows that
    if (type === 'AddNode' && this.confState.learners.includes(id)) ctx.promote = true;
    if (maxLearners !== undefined) ctx.maxLearners = maxLearners;
    const cc: ConfChange = { type, nodeId: id, context: pack(ctx) };
    return new Promise<ConfState>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        if (!this.pendingConf.delete(seq)) return;
        reject(new FaultError(ErrorCode.TIMEOUT, `membership change ${type} ${id} was not applied within ${this.proposalTimeoutMs} ms; it may still be applied`));
      }, this.proposalTimeoutMs);
      this.pendingConf.set(seq, { resolve, reject, timer, cc });
      this.tryProposeConf(seq);
      this.scheduleLoop();
    });
  }

  /**
   * Whether a proposal Raft dropped is to wait for a leader rather than
   * fail: no leader is known, or one is handing over. Asked of the Raft
   * core, not of `lead`, which is updated only by the next Ready (a member
   * that a tick or message just made a follower or candidate still had it).
   */
  private proposalsWait(): boolean {
    const st = this.raw.status();
    return st.softState.lead === '' || st.leadTransferee !== '';
  }

  /** Whether this member knows a commit of an entry of its current term. */
  private committedInCurrentTerm(): boolean {
    const { commit, term } = this.raw.status().hardState;
    try {
      return this.mem.term(commit) === term;
    } catch {
      return false; // not stored here yet (or compacted: a snapshot of an earlier term)
    }
  }

  private tryPropose(seq: number): void {
    const p = this.pending.get(seq);
    if (p === undefined || p.data === undefined) return;
    if (this.lead === '') {
      this.waiting.push(seq);
      return;
    }
    if (!this.forwarding && this.role !== 'leader') {
      // Made while no leader was known; now one is, and it is another member.
      this.pending.delete(seq);
      this.clock.clearTimeout(p.timer);
      p.reject(new UsageError(ErrorCode.NOT_LEADER, `not the leader (leader is ${this.lead}) and proposal forwarding is disabled`));
      return;
    }
    try {
      this.raw.propose(p.data);
      p.data = undefined;
    } catch (err) {
      if (isQuorumError(err, ErrorCode.PROPOSAL_DROPPED) && this.proposalsWait()) {
        this.waiting.push(seq); // no leader or a transfer in progress: retry when a leader is known
        return;
      }
      this.pending.delete(seq);
      this.clock.clearTimeout(p.timer);
      p.reject(err as Error);
    }
  }

  private tryProposeConf(seq: number): void {
    const p = this.pendingConf.get(seq);
    if (p === undefined || p.cc === undefined) return;
    // A leader refuses a change until it has committed an entry of its term
    // (raft.ts checkConfChangeProposal), silently when the change comes from
    // a follower: wait until this member has seen such a commit, as it will
    // within a round trip of a new leader's election.
    if (this.lead === '' || !this.committedInCurrentTerm()) {
      this.waitingConf.push(seq);
      return;
    }
    // A change applied here resolves its proposer's call before advance()
    // tells Raft it is applied: a change proposed in that window would be
    // refused as pending (one at a time, thesis §4.1). It waits for advance().
    if (this.confAwaitingAdvance) {
      this.waitingConf.push(seq);
      return;
    }
    try {
      this.raw.proposeConfChange(p.cc);
      p.cc = undefined;
    } catch (err) {
      if (isQuorumError(err, ErrorCode.PROPOSAL_DROPPED) && this.proposalsWait()) {
        this.waitingConf.push(seq);
        return;
      }
      this.pendingConf.delete(seq);
      this.clock.clearTimeout(p.timer);
      // refused by this member's Raft core, as the leader's: answered as a
      // change forwarded to it would be (a change that waited here for an
      // entry of a new term to commit may have been overtaken meanwhile)
      if (isQuorumError(err, ErrorCode.INVALID_ARGUMENT)) {
        const { code, message } = proposerRefusal(p.cc, { code: err.code, message: err.message }, (id) => this.confState.voters.includes(id));
        if (code !== err.code) err = refusalError(code, message);
      }
      p.reject(err as Error);
    }
  }

  /**
   * Hands the proposals made since the last Ready to Raft in MsgProps
   * (`RawNode.proposeBatch`) of at most `maxSizePerMsg` bytes of data each
   * (one larger proposal alone). A batch is accepted or dropped as a whole;
   * when dropped, each proposal is tried alone (so that, for instance, the
   * uncommitted-size cap refuses only those that do not fit).
   */
  private flushProposals(): void {
    if (this.batch.length === 0) return;
    const seqs = this.batch;
    this.batch = [];
    const live: number[] = [];
    const datas: Uint8Array[] = [];
    for (const seq of seqs) {
      const data = this.pending.get(seq)?.data;
      if (data === undefined) continue;
      live.push(seq);
      datas.push(data);
    }
    if (live.length === 0) return;
    if (live.length > 1 && this.lead !== '' && (this.forwarding || this.role === 'leader')) {
      // in batches of at most maxSizePerMsg bytes (a proposal larger than
      // that goes alone): a follower forwards each batch to the leader as one
      // MsgProp, which must fit in one transport frame as a MsgApp does
      let start = 0;
      while (start < live.length) {
        let end = start + 1;
        let bytes = datas[start]!.length;
        while (end < live.length && bytes + datas[end]!.length <= this.maxBatchBytes) bytes += datas[end++]!.length;
        this.proposeSome(live.slice(start, end), datas.slice(start, end));
        start = end;
      }
      return;
    }
    for (const seq of live) this.tryPropose(seq);
  }

  /** Proposes `seqs` (whose data is `datas`) in one MsgProp, or one by one when Raft drops the batch. */
  private proposeSome(seqs: number[], datas: Uint8Array[]): void {
    if (seqs.length > 1) {
      try {
        this.raw.proposeBatch(datas);
        for (const seq of seqs) this.pending.get(seq)!.data = undefined;
        return;
      } catch {
        // fall through: one by one
      }
    }
    for (const seq of seqs) this.tryPropose(seq);
  }

  private retryWaiting(): void {
    if (this.lead === '') return;
    const props = this.waiting.splice(0);
    for (const seq of props) this.batch.push(seq);
    this.flushProposals();
    const confs = this.waitingConf.splice(0);
    for (const seq of confs) this.tryProposeConf(seq);
  }

  private onTick(): void {
    if (this.closed || (this.removedFromCluster && this.lingerTimer === undefined)) return;
    this.raw.tick();
    this.releaseUntakenSnapshot();
    if (this.waiting.length > 0 || this.waitingConf.length > 0) this.retryWaiting();
    this.scheduleLoop();
    this.tickTimer = this.clock.setTimeout(() => this.onTick(), this.tickMs);
  }

  private onMessage(m: Message): void {
    if (this.closed || (this.removedFromCluster && this.lingerTimer === undefined) || this.fatal !== undefined) return;
    // Kept for the members of the configuration only: a transport also
    // hands over messages from senders outside it (a leader this member
    // has not learned of yet), whose ids must not pile up here.
    if (this.confState.voters.includes(m.from) || this.confState.learners.includes(m.from)) this.lastHeard.set(m.from, this.clock.now());
    if (m.type === 'MsgHeartbeat' && m.term >= this.currentTerm && m.commit > this.mem.lastIndex()) {
      // A leader sends at most what this member acknowledged (min(match,
      // commit)), and it acknowledges only what it has saved: its log lost
      // entries it acknowledged (a damaged disk, a wiped data directory).
      // etcd panics here; the Raft core would only ignore the commit, and
      // the leader would send appends this log rejects, forever.
      this.onFatal(
        new FaultError(
          ErrorCode.CORRUPT_LOG,
          `the leader ${m.from} says entries up to ${m.commit} are committed and acknowledged by this member, whose log ends at ${this.mem.lastIndex()}: the log lost acknowledged entries (corrupt, truncated or wiped); replace this member (removeMember, then addMember under a new id)`,
        ),
      );
      return;
    }
    this.raw.step(m);
    this.scheduleLoop();
  }

  private scheduleLoop(): void {
    if (this.loopScheduled || this.closed || this.fatal !== undefined) return;
    this.loopScheduled = true;
    queueMicrotask(() => {
      this.loopScheduled = false;
      void this.runLoop();
    });
  }

  private async runLoop(): Promise<void> {
    if (this.looping || this.closed || this.fatal !== undefined) return;
    this.looping = true;
    try {
      for (;;) {
        this.flushProposals();
        if (this.closed || this.fatal !== undefined || !this.raw.hasReady()) break;
        const rd = this.raw.ready();
        const commitsChange = await this.handleReady(rd);
        // advance() tells Raft the committed entries are applied. For a
        // membership change that must be true (etcd's raft loop waits the
        // same way): until the change is applied, Raft must still count it
        // as pending (one change at a time, thesis §4.1) and must not
        // campaign or count votes with the old configuration.
        if (commitsChange) await this.applyDrained();
        this.raw.advance();
        this.confAwaitingAdvance = false;
        if (this.waiting.length > 0 || this.waitingConf.length > 0) this.retryWaiting();
      }
    } catch (err) {
      this.onFatal(err as Error);
    } finally {
      this.looping = false;
      this.confAwaitingAdvance = false;
      this.wakeIdle();
    }
  }

  /** Persists, sends and queues the apply of one Ready; returns whether it commits a membership change. */
  private async handleReady(rd: Ready): Promise<boolean> {
    if (rd.softState !== undefined) this.onSoftState(rd.softState.lead, rd.softState.raftState);
    if (rd.hardState !== undefined && rd.hardState.term !== this.currentTerm) {
      this.currentTerm = rd.hardState.term;
    }
    for (const rs of rd.readStates) this.onReadState(rs.index, rs.requestCtx);

    // Raft thesis §10.2.1: a leader sends its messages while it writes its own
    // log (etcd's raft loop does the same). The core counts the leader's
    // entries towards a commit as soon as they are appended. With other
    // voters, a commit of entries this write holds needs an acknowledgement
    // of a message of this very Ready, so it only leaves this node in a
    // later Ready, taken once this write is durable. A lone voter commits
    // its entries as it appends them: the messages of that Ready (to its
    // learners) carry a commit index that covers this write, and a learner
    // would apply entries a crash of the leader erases. Those messages wait
    // for the write, as everyone else's do, since a commit index vouches for
    // the log below it. Everyone else answers only once what it vouches
    // for (a vote, an acknowledged entry) is durable.
    const commitsChange = rd.committedEntries.some((e) => e.type === 'ConfChange');
    const leading = this.role === 'leader';
    const parallel = leading && rd.messages.length > 0 && (rd.hardState === undefined || rd.hardState.commit <= this.mem.lastIndex());
    if (parallel) this.sendAsLeader(rd.messages, commitsChange);

    let hardState = rd.hardState !== undefined && this.deferCommit(rd, rd.hardState, commitsChange) ? undefined : rd.hardState;
    // A membership change is rebuilt on restart from the entries up to the
    // saved commit: a commit left unsaved by an earlier Ready (whose
    // committed entries Raft handed out in parts) goes with this one.
    // So does one left unsaved for half the delay, with the next entries:
    // under a steady load it then never needs a write of its own.
    if (hardState === undefined && this.unsavedHardState !== undefined && (commitsChange || (rd.entries.length > 0 && this.deferredFor() >= COMMIT_SAVE_DELAY_MS / 2))) {
      hardState = this.unsavedHardState;
    }
    const saving = hardState !== undefined || rd.entries.length > 0 || rd.snapshot !== undefined;
    // Committed entries this node already has durably (the first ones, up
    // to the last index saved before this Ready and below the first entry
    // this save writes) are applied while the save runs, as etcd's server
    // applies while its WAL write runs. An entry this save writes is not
    // among them, even at an index the saved log has: the save may be
    // replacing a conflicting uncommitted entry there (a follower's tail
    // from an older term), and until it is done, the log (and a snapshot
    // taken from it) would still say the old entry's term. A membership
    // change (rebuilt on restart from the saved commit) and a snapshot
    // keep the order save, then apply.
    let early = 0;
    if (saving && !commitsChange && rd.snapshot === undefined) {
      const stable = Math.min(this.mem.lastIndex(), (rd.entries[0]?.index ?? Infinity) - 1);
      const ents = rd.committedEntries;
      while (early < ents.length && ents[early]!.index <= stable) early++;
    }
    let saved: Promise<void> | undefined;
    if (saving) {
      const update: Parameters<LogStorage['save']>[0] = {};
      if (hardState !== undefined) {
        update.hardState = hardState;
        this.savedHardState = hardState;
        this.unsavedHardState = undefined;
      }
      if (rd.entries.length > 0) update.entries = rd.entries;
      if (rd.snapshot !== undefined && rd.snapshot.metadata.index > 0) update.snapshot = rd.snapshot;
      // the commit of a membership change is synced too: membership is
      // rebuilt on restart from the entries up to the saved commit
      const sync = rd.mustSync || update.snapshot !== undefined || (commitsChange && update.hardState !== undefined);
      saved = this.storage.save(update, { sync });
    }
    if (early > 0) {
      // Queued now, so that it goes before what this save's entries commit;
      // started once the write is under way. A follower starts it after the
      // current turn, so that messages waiting in this turn (another
      // member's, in one process) go first: a proposal it forwarded or a
      // read it serves waits one turn longer.
      const ents = rd.committedEntries;
      this.pushApply({ kind: 'entries', entries: early === ents.length ? ents : ents.slice(0, early) }, this.role !== 'leader');
    }
    if (saved !== undefined) await saved;
    if (rd.snapshot !== undefined && rd.snapshot.metadata.index > 0) {
      this.mem.applySnapshot(rd.snapshot);
      this.pushApply({ kind: 'snapshot', snapshot: rd.snapshot });
    }
    if (rd.entries.length > 0) this.mem.append(rd.entries);
    if (rd.hardState !== undefined) this.mem.setHardState(rd.hardState);

    if (!parallel && rd.messages.length > 0 && !this.closed) {
      if (leading) this.sendAsLeader(rd.messages, commitsChange);
      else this.transport.send(this.countSnaps(rd.messages));
    }

    if (rd.committedEntries.length > early) this.pushApply({ kind: 'entries', entries: early === 0 ? rd.committedEntries : rd.committedEntries.slice(early) });
    return commitsChange;
  }

  /**
   * Sends a leader's messages, holding back each MsgApp that carries no
   * entries (it only tells a follower the new commit index) until the end
   * of the current turn of the event loop ({@link Clock.soon}). A MsgApp
   * with entries for the same follower, from the same term and the same
   * previous entry, with a commit index at least as high, makes the held
   * one redundant, and it is dropped: the follower learns the commit from
   * the entries' message. Under a steady stream of proposals, a follower
   * then gets one message per proposal instead of two, and answers once.
   * Dropping a message is safe in Raft (the network may lose any); what
   * the held message would have told the follower, the later one tells it.
   * A held message is otherwise sent, in order, before the next message to
   * the same follower or when the turn ends. Nothing is held when the
   * commit covers a membership change (`commitsChange`): a member it
   * removes must learn that commit before the leader, applying it, drops
   * the member from its transport.
   */
  private sendAsLeader(msgs: Message[], commitsChange: boolean): void {
    if (commitsChange || (this.heldApps.length === 0 && !msgs.some(isCommitOnlyApp))) {
      if (this.heldApps.length > 0) {
        this.transport.send(this.heldApps);
        this.heldApps = [];
      }
      this.transport.send(this.countSnaps(msgs));
      return;
    }
    const out: Message[] = [];
    for (const m of msgs) {
      if (m.type === 'MsgApp') {
        const i = this.heldApps.findIndex((h) => h.to === m.to);
        if (i >= 0) {
          const h = this.heldApps[i]!;
          this.heldApps.splice(i, 1);
          if (m.term !== h.term || m.index !== h.index || m.commit < h.commit) out.push(h);
        }
        if (m.entries.length === 0) {
          this.heldApps.push(m);
          continue;
        }
      }
      out.push(m);
    }
    if (out.length > 0) this.transport.send(this.countSnaps(out));
    if (this.heldApps.length > 0 && !this.heldScheduled) {
      this.heldScheduled = true;
      this.soon(() => this.sendHeld());
    }
  }

  private countSnaps(msgs: Message[]): Message[] {
    for (const m of msgs) if (m.type === 'MsgSnap') this.snapsInFlight.set(m.to, (this.snapsInFlight.get(m.to) ?? 0) + 1);
    return msgs;
  }

  /** Sends the held commit-only MsgApps (end of the turn). */
  private sendHeld(): void {
    this.heldScheduled = false;
    const held = this.heldApps;
    if (held.length === 0) return;
    this.heldApps = [];
    if (!this.closed) this.transport.send(held);
  }

  /**
   * True when the Ready's HardState changes only the commit index and the
   * save is otherwise one entry or nothing (see {@link COMMIT_SAVE_DELAY_MS}): it is
   * left out, and saved by a timer unless a later save carries it.
   */
  private deferCommit(rd: Ready, hs: HardState, commitsChange: boolean): boolean {
    const saved = this.savedHardState;
    if (
      saved === undefined ||
      hs.term !== saved.term ||
      hs.vote !== saved.vote ||
      rd.entries.length > 1 ||
      rd.snapshot !== undefined ||
      commitsChange
    ) {
      return false;
    }
    if (this.unsavedHardState === undefined) this.unsavedSince = this.clock.now();
    this.unsavedHardState = hs;
    this.hardStateTimer ??= this.clock.setTimeout(() => this.onHardStateTimer(), COMMIT_SAVE_DELAY_MS);
    return true;
  }

  /**
   * How long (clock ms) the HardState has waited unsaved. A clock that went
   * back (the system clock is the wall clock) counts as the full delay.
   */
  private deferredFor(): number {
    const waited = this.clock.now() - this.unsavedSince;
    return waited < 0 ? COMMIT_SAVE_DELAY_MS : waited;
  }

  /** The timer of a deferred HardState: saves it once it has waited the full delay, else waits the rest. */
  private onHardStateTimer(): void {
    this.hardStateTimer = undefined;
    if (this.unsavedHardState === undefined) return;
    const rest = COMMIT_SAVE_DELAY_MS - this.deferredFor();
    if (rest > 0) this.hardStateTimer = this.clock.setTimeout(() => this.onHardStateTimer(), rest);
    else {
      this.saveDeferredHardState().catch((err: unknown) => {
        if (!this.closed) this.onFatal(err as Error);
      });
    }
  }

  /**
   * Saves (unsynced) a HardState left out of the Ready saves, if one still
   * is; rejects with the storage's failure (the timer makes it fatal,
   * {@link close} reports it).
   */
  private saveDeferredHardState(): Promise<void> {
    this.hardStateTimer = undefined;
    const hs = this.unsavedHardState;
    if (hs === undefined || this.fatal !== undefined || this.storage.status !== 'open') return Promise.resolve();
    this.unsavedHardState = undefined;
    this.savedHardState = hs;
    return this.storage.save({ hardState: hs }, { sync: false });
  }

  private onSoftState(lead: string, role: StateRole): void {
    if (role !== this.role) {
      if (this.role === 'leader') this.mem.release(); // a snapshot taken for followers is not needed any more
      if (role === 'leader') this.snapshotBackoff.clear(); // the failures were another term's
      this.role = role;
      log('[%s] role %s (term %d)', this.id, role, this.raw.status().hardState.term);
      emitIsolated(this, 'roleChange', role);
    }
    if (lead !== this.lead) {
      this.lead = lead;
      const term = this.raw.status().hardState.term;
      log('[%s] leader is now %s (term %d)', this.id, lead || '(none)', term);
      for (const [settle, to] of [...this.transfers]) if (to === lead) settle();
      emitIsolated(this, 'leaderChange', lead, term);
      if (lead !== '') this.retryWaiting();
      // A ReadIndex request may be lost with the old leader: ask again.
      if (this.readRound !== undefined) this.reissueRead();
    }
  }

  // ------------------------------------------------------------ apply queue

  /** Queues an apply task and starts the apply queue, now or (`later`) at the end of the turn. */
  private pushApply(task: ApplyTask, later = false): void {
    this.applyQueue.push(task);
    if (this.applying) return;
    if (!later) {
      void this.drainApply();
    } else if (!this.applyKickScheduled) {
      this.applyKickScheduled = true;
      this.soon(() => {
        this.applyKickScheduled = false;
        if (!this.applying && !this.closed && this.applyQueue.length > 0) void this.drainApply();
      });
    }
  }

  /** Runs `fn` at the end of the turn ({@link Clock.soon}; a 0 ms timer on a clock without it). */
  private soon(fn: () => void): void {
    if (this.clock.soon !== undefined) this.clock.soon(fn);
    else this.clock.setTimeout(fn, 0);
  }

  /** Resolves once the apply queue is empty (or the node stopped). */
  private async applyDrained(): Promise<void> {
    while (!this.closed && this.fatal === undefined && (this.applying || this.applyQueue.length > 0)) {
      await new Promise<void>((r) => this.idleWaiters.push(r));
    }
  }

  private async drainApply(): Promise<void> {
    this.applying = true;
    try {
      while (this.applyQueue.length > 0 && this.fatal === undefined && !this.closed) {
        const task = this.applyQueue.shift()!;
        if (task.kind === 'snapshot') await this.installSnapshot(task.snapshot);
        else if (task.kind === 'takeSnapshot') await this.takeSnapshotForFollowers();
        else await this.applyEntries(task.entries);
        this.releaseReads();
        // checked here first: an async call costs a promise even when it returns at once
        // not while a snapshot for followers is read: it would compact the log
        // past the read's index and the read would be thrown away
        if (this.snapshotDue() && !this.snapshotReading) await this.maybeSnapshot();
      }
    } catch (err) {
      this.onFatal(err as Error);
    } finally {
      this.applying = false;
      this.wakeIdle();
    }
  }

  /**
   * With an on-demand state machine (one with `sync()`), which now holds the
   * state of the base snapshot at `index`: the base keeps only its record
   * (membership and addresses), as after a local snapshot, and a follower
   * that needs a snapshot gets one taken from the state machine. The state
   * stays in the log storage's snapshot file until the next snapshot.
   */
  private shedSnapshotState(index: number): void {
    const record = wrapSnapshot({ addresses: Object.fromEntries(this.addresses), removed: [...this.removedIds] });
    if (this.mem.shedBaseState(index, record)) log('[%s] the snapshot at %d: its state is left to the state machine', this.id, index);
  }

  private async installSnapshot(snap: Snapshot): Promise<void> {
    const { index, term, confState } = snap.metadata;
    if (index <= this.appliedIndex) return;
    const env = unwrapSnapshot(snap.data);
    if (env.data === undefined) throw new FaultError(ErrorCode.CORRUPT_SNAPSHOT, `the snapshot at ${index} from the leader carries no state`);
    await this.sm.restore({ data: env.data, index, term });
    this.smApplied = index;
    this.applied = index;
    this.snapshotIndex = index;
    // Members added or removed in the entries the snapshot replaces: the
    // transport learns them here, with the addresses the snapshot carries.
    const before = this.confState;
    this.addresses.clear();
    for (const [id, address] of Object.entries(env.addresses)) this.addresses.set(id, address);
    this.removedIds.clear();
    for (const id of env.removed ?? []) this.removedIds.add(id);
    this.syncPeers(before, confState);
    this.setConfState(confState);
    this.shedSnapshotState(index);
    log('[%s] installed snapshot at %d from the leader', this.id, index);
    emitIsolated(this, 'snapshot', index, 'leader');
    emitIsolated(this, 'applied', index);
  }

  private async applyEntries(entries: Entry[]): Promise<void> {
    let batch: ApplyEntry[] = [];
    /** For each batch item, the local proposal it answers (a sequence number), if any. */
    let mine: number[] = [];
    for (const e of entries) {
      if (e.index <= this.applied) continue;
      const known = e.index <= this.smApplied; // already in the state machine (restart replay)
      // nothing new after this member's removal (a removed leader lingering
      // a while still receives entries): its state machine is done; what its
      // own log held is still replayed, so that members() shows its last view
      if (this.removedFromCluster && !known) break;
      if (e.type === 'ConfChange') {
        if (batch.length > 0) {
          await this.applyNormal(batch, mine);
          batch = [];
          mine = [];
        }
        const cc = decodeConfChange(e.data);
        this.confAwaitingAdvance = true;
        this.applyConfChangeEntry(cc);
        if (!known) {
          await this.sm.apply([{ index: e.index, term: e.term, kind: 'confChange', data: EMPTY, confChange: cc }]);
          this.smApplied = e.index;
        }
      } else if (!known) {
        const refusal = e.data.length === 0 ? undefined : unwrapConfRefusal(e.data);
        if (refusal !== undefined) this.onConfRefusal(refusal);
        if (e.data.length === 0 || refusal !== undefined) {
          batch.push({ index: e.index, term: e.term, kind: 'noop', data: EMPTY });
          mine.push(0);
        } else {
          const env = unwrapProposalFor(e.data, this.origin);
          batch.push({ index: e.index, term: e.term, kind: 'normal', data: env.payload });
          mine.push(env.seq);
        }
      }
      this.applied = e.index;
    }
    if (batch.length > 0) await this.applyNormal(batch, mine);
    if (entries.length > 0) emitIsolated(this, 'applied', this.appliedIndex);
  }

  /**
   * Applies normal entries (and no-ops) in one state machine call and
   * answers the local proposals among them (`seqs[i]`: the sequence number
   * item i answers, 0 when none).
   */
  private async applyNormal(items: ApplyEntry[], seqs: number[]): Promise<void> {
    const results = await this.sm.apply(items);
    this.smApplied = items[items.length - 1]!.index;
    for (let i = 0; i < items.length; i++) {
      const seq = seqs[i]!;
      if (seq === 0) continue;
      const p = this.pending.get(seq);
      if (p === undefined) continue;
      this.pending.delete(seq);
      this.clock.clearTimeout(p.timer);
      p.resolve(results[i] as R);
    }
  }

  private applyConfChangeEntry(cc: ConfChange): void {
    const ctx = confContextOf(cc);
    if ((cc.type === 'AddNode' || cc.type === 'AddLearnerNode') && this.removedIds.has(cc.nodeId)) {
      // A removed id is never added back (etcd checks it again at apply,
      // ValidateConfigurationChange, and applies such a change as a no-op).
      // The proposer's own check can pass while the removal is committed but
      // not yet applied there; every member sees the removal first in the
      // log, so every member skips this change alike.
      log('[%s] ignored conf change %s %s: the id was removed from the cluster', this.id, cc.type, cc.nodeId);
      this.takePendingConf(ctx)?.reject(new UsageError(ErrorCode.MEMBER_ID_REMOVED, removedNotAddedBack(cc.nodeId)));
      this.scheduleLoop();
      return;
    }
    const wasLeader = this.raw.status().softState.raftState === 'leader';
    const cs = this.raw.applyConfChange(cc);
    if (cc.type === 'RemoveNode') {
      this.addresses.delete(cc.nodeId);
      this.lastHeard.delete(cc.nodeId);
      this.removedIds.add(cc.nodeId);
      this.snapshotBackoff.delete(cc.nodeId);
    } else if (typeof ctx.address === 'string') {
      this.addresses.set(cc.nodeId, ctx.address);
    }
    if (cc.nodeId !== this.id) {
      if (cc.type === 'RemoveNode') this.refuse(cc.nodeId);
      else this.addPeer(cc.nodeId);
    }
    this.setConfState(cs);
    log('[%s] applied conf change %s %s -> voters=%j learners=%j', this.id, cc.type, cc.nodeId, cs.voters, cs.learners);
    this.takePendingConf(ctx)?.resolve(this.members());
    if (cc.type === 'RemoveNode' && cc.nodeId === this.id) this.onRemoved(wasLeader);
    this.scheduleLoop();
  }

  /** A membership change was refused by the leader in its log: its proposer's call fails. */
  private onConfRefusal(r: ConfRefusal): void {
    this.takePendingConf({ origin: r.origin, seq: r.seq })?.reject(refusalError(r.code as ErrorCode, r.message));
    this.scheduleLoop();
  }

  /**
   * The leader's checks of a membership change beyond the Raft core's (see
   * `RaftConfig.checkConfChange`), as etcd's server makes them: a learner
   * is promoted only once its log matches at least 90% of the leader's
   * (`isLearnerReady`); with {@link RaftNodeOptions.strictReconfigCheck}, a
   * voter is added only while every voter is active and those that vote
   * freely are a quorum of the larger configuration (but to a one-voter
   * cluster), and an active voter is removed only if the active voters left
   * are a quorum of the voters left (`mayAddMember`, `mayRemoveMember`),
   * counting only those that vote freely: a founding voter that acknowledged no entry past the bootstrap
   * withholds its vote from longer logs (RawNode's `withholdsVote`). Active:
   * heard from within an election timeout (etcd: its transport's
   * `ActiveSince`, 5 s).
   */
  private leaderConfCheck(cc: ConfChange, matchOf: (id: string) => number | undefined): ConfChangeRefusal | undefined {
    const { voters, learners } = this.confState;
    const overtaken = this.overtakenConfChange(cc);
    if (overtaken !== undefined) return overtaken;
    if (cc.type === 'AddNode' && learners.includes(cc.nodeId)) {
      const learnerMatch = matchOf(cc.nodeId) ?? 0;
      const leaderMatch = matchOf(this.id) ?? 0;
      if (learnerMatch < leaderMatch * 0.9) {
        return {
          code: ErrorCode.LEARNER_NOT_READY,
          message: `etcdserver: can only promote a learner member which is in sync with leader (${cc.nodeId} has ${learnerMatch} of ${leaderMatch} entries)`,
        };
      }
      return undefined;
    }
    if (!this.strictReconfigCheck) return undefined;
    const now = this.clock.now();
    const active = (id: string): boolean => id === this.id || now - (this.lastHeard.get(id) ?? Number.NEGATIVE_INFINITY) <= this.electionMs;
    if (cc.type === 'AddNode' && !voters.includes(cc.nodeId)) {
      const down = voters.filter((id) => !active(id));
      if (down.length > 0) {
        return { code: ErrorCode.UNHEALTHY, message: `etcdserver: unhealthy cluster (voters not heard from within an election timeout: ${down.join(', ')}; a new voter would count towards the quorum before it is up)` };
      }
      // The new voter has nothing to vote on until it catches up, and a
      // founder that acknowledged no leader entry withholds its vote: the
      // voters that vote freely must be a quorum of the larger configuration
      // (etcd's isReadyToAddVotingMember counts started members; as etcd, a
      // one-voter cluster may add a second).
      if (voters.length > 1) {
        const pastBootstrap = this.firstIndexPastBootstrap();
        const behind = voters.filter((id) => id !== this.id && (matchOf(id) ?? 0) < pastBootstrap);
        const freeVoters = voters.length - behind.length;
        const quorumAfter = Math.floor((voters.length + 1) / 2) + 1;
        if (freeVoters < quorumAfter) {
          return {
            code: ErrorCode.UNHEALTHY,
            message: `etcdserver: unhealthy cluster (adding ${cc.nodeId} would leave ${freeVoters} voters that vote freely of the ${quorumAfter} a quorum of ${voters.length + 1} voters needs: ${behind.join(', ')} acknowledged no entry of a leader yet)`,
          };
        }
      }
      return undefined;
    }
    if (cc.type === 'RemoveNode' && voters.includes(cc.nodeId) && active(cc.nodeId)) {
      const activeVoters = voters.filter(active).length;
      const quorumLeft = Math.floor((voters.length - 1) / 2) + 1;
      if (activeVoters - 1 < quorumLeft) {
        return {
          code: ErrorCode.UNHEALTHY,
          message: `etcdserver: unhealthy cluster (removing ${cc.nodeId} would leave ${activeVoters - 1} active voters of the ${quorumLeft} a quorum of the rest needs)`,
        };
      }
      // A founding voter that has acknowledged no entry past the bootstrap
      // withholds its vote from candidates with longer logs (it may have
      // lost its data: RawNode's withholdsVote) until a leader reaches it.
      // Left with too few voters that vote freely, the cluster could never
      // elect a leader again once this one is gone (it restarts, or steps
      // down): the removal waits until they have caught up.
      const pastBootstrap = this.firstIndexPastBootstrap();
      const freeVoters = voters.filter((id) => id !== cc.nodeId && active(id) && (id === this.id || (matchOf(id) ?? 0) >= pastBootstrap)).length;
      if (freeVoters < quorumLeft) {
        const behind = voters.filter((id) => id !== cc.nodeId && id !== this.id && (matchOf(id) ?? 0) < pastBootstrap);
        return {
          code: ErrorCode.UNHEALTHY,
          message: `etcdserver: unhealthy cluster (removing ${cc.nodeId} would leave ${freeVoters} voters that vote freely of the ${quorumLeft} a quorum of the rest needs: ${behind.join(', ')} acknowledged no entry of a leader yet)`,
        };
      }
    }
    return undefined;
  }

  /**
   * Why the membership this leader applied refuses `cc` as made (etcd's
   * `ValidateConfigurationChange`), or undefined. The proposer checked it
   * against the membership it had applied, which can lag the leader's: a
   * change another member made meanwhile may have added, removed or
   * promoted the same id. The leader has applied every earlier change when
   * it accepts one (one at a time), so its answer is the log's. Each
   * refusal has its own code, as etcd's errors: `QUORUMKV_MEMBER_ID_REMOVED`
   * (ErrIDRemoved), `QUORUMKV_MEMBER_NOT_FOUND` (ErrIDNotFound),
   * `QUORUMKV_MEMBER_EXISTS` (ErrIDExists), `QUORUMKV_PEER_ADDRESS_EXISTS`
   * (ErrPeerURLexists), `QUORUMKV_MEMBER_NOT_LEARNER` (ErrMemberNotLearner),
   * `QUORUMKV_TOO_MANY_LEARNERS` (ErrTooManyLearners).
   */
  private overtakenConfChange(cc: ConfChange): ConfChangeRefusal | undefined {
    const { voters, learners } = this.confState;
    const id = cc.nodeId;
    const member = voters.includes(id) || learners.includes(id);
    const removed: ConfChangeRefusal | undefined = this.removedIds.has(id) ? { code: ErrorCode.MEMBER_ID_REMOVED, message: idRemoved(id) } : undefined;
    const notFound: ConfChangeRefusal = { code: ErrorCode.MEMBER_NOT_FOUND, message: idNotFound(id) };
    if (cc.type === 'RemoveNode') return member ? undefined : (removed ?? notFound);
    const ctx = confContextOf(cc);
    const address = ctx.address;
    const taken = typeof address === 'string' ? this.addressTaken(id, address) : undefined;
    if (cc.type === 'UpdateNode') return removed ?? (member ? taken : notFound);
    if (cc.type === 'AddNode' && ctx.promote === true) {
      if (learners.includes(id)) return undefined;
      if (voters.includes(id)) return { code: ErrorCode.MEMBER_NOT_LEARNER, message: `etcdserver: can only promote a learner member (${id} is a voter)` };
      return removed ?? notFound;
    }
    if (removed !== undefined) return removed;
    if (member) return { code: ErrorCode.MEMBER_EXISTS, message: idExists(id) };
    if (taken !== undefined) return taken;
    const max = cc.type === 'AddLearnerNode' ? ctx.maxLearners : undefined;
    if (typeof max === 'number' && learners.length >= max) return { code: ErrorCode.TOO_MANY_LEARNERS, message: tooManyLearners(max) };
    return undefined;
  }

  /**
   * Why `address` cannot be `id`'s (etcd's ErrPeerURLexists,
   * `QUORUMKV_PEER_ADDRESS_EXISTS`), or undefined: another member of the
   * membership applied here was added or updated with it. Addresses are
   * compared as given; a founding member's address, which only the
   * transports' configuration holds, is not known here.
   */
  private addressTaken(id: string, address: string): ConfChangeRefusal | undefined {
    const { voters, learners } = this.confState;
    for (const [other, a] of this.addresses) {
      if (other !== id && a === address && (voters.includes(other) || learners.includes(other))) {
        return { code: ErrorCode.PEER_ADDRESS_EXISTS, message: `etcdserver: Peer URLs already exists (${address} is the address of member ${other})` };
      }
    }
    return undefined;
  }

  /**
   * Index of the first entry a leader wrote, after the bootstrap's term-1
   * entries (or a restored cluster's term-1 snapshot); the log's first index
   * when those are compacted away. A founding voter whose log reaches no
   * further has acknowledged nothing from a leader.
   */
  private firstIndexPastBootstrap(): number {
    const first = this.mem.firstIndex();
    const last = this.mem.lastIndex();
    let i = first;
    if (this.mem.term(first - 1) > 1) return first;
    while (i <= last && this.mem.term(i) <= 1) i++;
    return i;
  }

  /** The conf change this member proposed that `ctx` belongs to, no longer pending (its timer cleared); else undefined. */
  private takePendingConf(ctx: ConfContext): PendingConfChange | undefined {
    if (ctx.origin !== this.id || ctx.seq === undefined) return undefined;
    const p = this.pendingConf.get(ctx.seq);
    if (p === undefined) return undefined;
    this.pendingConf.delete(ctx.seq);
    this.clock.clearTimeout(p.timer);
    return p;
  }

  /** Makes the transport know `id`, with its address when one is known. */
  private addPeer(id: string): void {
    const address = this.addresses.get(id);
    try {
      this.transport.addPeer(id, address);
    } catch (err) {
      // A committed address the transport cannot parse must not stop the
      // member (every member applies the same entry): keep the peer known
      // without it; the transport's own configuration may still reach it.
      log('[%s] transport refused address %s of %s: %s', this.id, address, id, (err as Error).message);
      if (address !== undefined) this.transport.addPeer(id);
    }
  }

  /** Brings the transport's peers from membership `before` to `after` (this member excluded). */
  private syncPeers(before: ConfState, after: ConfState): void {
    const next = new Set([...after.voters, ...after.learners]);
    for (const id of [...before.voters, ...before.learners]) {
      if (id !== this.id && !next.has(id)) this.transport.removePeer(id);
    }
    for (const id of next) if (id !== this.id) this.addPeer(id);
    // (a removed id is never in a configuration again: applyConfChangeEntry
    // skips a change that would add one back; checked all the same)
    for (const id of this.removedIds) if (!next.has(id)) this.refuse(id);
  }

  /**
   * Forgets member `id`, removed from the cluster; where the transport can,
   * it tells `id` so whenever `id` reaches this member, and `id` stops (etcd's
   * rafthttp answers a removed member with `410 Gone`). A member removed while
   * it was down or cut off never applies its own removal: this is how it
   * finds out.
   */
  private refuse(id: string): void {
    if (id === this.id) return;
    if (this.transport.refusePeer !== undefined) this.transport.refusePeer(id);
    else this.transport.removePeer(id);
  }

  private setConfState(cs: ConfState): void {
    this.confState = { voters: [...cs.voters], learners: [...cs.learners] };
    emitIsolated(this, 'membershipChange', this.members());
  }

  /**
   * This member was removed: it serves nothing more and stops. A leader
   * that applied its own removal (`linger`) first goes on answering votes
   * for three election timeouts (with pre-vote, an election takes two
   * rounds), as etcd keeps a removed leader running a while
   * (`stopWithDelay`): the others may not have heard that the removal is
   * committed (the messages that said so can be lost, and the removed
   * leader sends no more heartbeats), and until a new leader commits it,
   * their configuration still counts this member's vote. Two voters down to
   * one would otherwise never elect a leader.
   */
  private onRemoved(linger = false): void {
    if (this.removedFromCluster) return;
    this.removedFromCluster = true;
    log('[%s] removed from the cluster; stopping%s', this.id, linger ? ' after three election timeouts' : '');
    this.failAll(new FaultError(ErrorCode.REMOVED, 'this member was removed from the cluster'));
    if (linger && !this.closed) {
      this.lingerTimer = this.clock.setTimeout(() => this.stopRemoved(), 3 * this.electionMs);
    } else {
      this.stopRemoved();
    }
    emitIsolated(this, 'removed');
  }

  /** The end of {@link onRemoved}: no more ticks or messages. */
  private stopRemoved(): void {
    this.lingerTimer = undefined;
    this.stopTimers();
    if (!this.closed) this.closeTransportInBackground();
  }

  /**
   * Takes the snapshot a lagging follower needs (on-demand mode), at the
   * applied index, from the state machine (run as an apply task: never
   * concurrently with apply or restore). With `beginSnapshot`, only the
   * capture runs as the apply task; the state is read after it, while
   * applies go on, and offered when read.
   */
  private async takeSnapshotForFollowers(): Promise<void> {
    this.snapshotWanted = false;
    // while a restart replays entries the state machine already holds, the
    // membership lags the state machine: no consistent snapshot yet (Raft
    // asks again at the follower's next heartbeat response)
    if (this.closed || this.mem.holdsSendable || this.snapshotReading || this.applied < this.smApplied) return;
    const applied = this.applied;
    if (applied < this.mem.baseSnapshot().metadata.index) return;
    const addresses = Object.fromEntries(this.addresses);
    const removed = [...this.removedIds];
    const metadata = { index: applied, term: this.mem.term(applied), confState: this.members() };
    const offer = (state: Uint8Array): void => {
      // a member that stopped leading meanwhile sends no snapshot: do not keep one
      if (this.closed || this.role !== 'leader' || applied < this.mem.firstIndex() - 1) return;
      this.mem.offer({ data: wrapSnapshot({ addresses, removed, data: state }), metadata }, this.clock.now());
      log('[%s] took a snapshot at %d for a follower', this.id, applied);
    };
    if (this.sm.beginSnapshot === undefined) {
      offer(await this.sm.snapshot());
      return;
    }
    // the state at `applied` is captured now; it is read while applies go on
    const read = await this.sm.beginSnapshot();
    this.snapshotReading = true;
    void read().then(
      (state) => {
        this.snapshotReading = false;
        offer(state);
      },
      (err: Error) => {
        this.snapshotReading = false;
        if (!this.closed) this.onFatal(err);
      },
    );
  }

  /**
   * After a snapshot send fails (the follower refused it, as too large for
   * its `maxSnapshotBytes`, or the stream broke), the next one is sent to
   * (and, on demand, taken for) that follower only after a back-off: one
   * election timeout, doubled at each failure in a row up to 32 of them
   * (reset by a send that finishes, a new term of leadership, the
   * follower's removal). Without it, Raft asks again at the follower's next
   * heartbeat response, and each snapshot costs the leader an encoding and
   * a transfer of the whole state, and on demand a read of its whole store
   * (applies wait behind it) and its memory.
   */
  private snapshotSent(peer: string, status: SnapshotStatus): void {
    if (status === 'finish') {
      this.snapshotBackoff.delete(peer);
      return;
    }
    const failures = (this.snapshotBackoff.get(peer)?.failures ?? 0) + 1;
    const wait = this.electionMs * 2 ** Math.min(failures - 1, 5);
    this.snapshotBackoff.set(peer, { failures, retryAt: this.clock.now() + wait });
    log('[%s] snapshot to %s failed (%d in a row): the next one for it in %d ms', this.id, peer, failures, wait);
  }

  /**
   * Lets go of a snapshot taken for followers that none took within four
   * election timeouts of its offer (the follower it was taken for went
   * down, was cut off or removed, or caught up otherwise): it holds a copy
   * of the whole state, and the entries after it stay in the log while it
   * is held. Checked at every tick, so that an idle leader, which takes no
   * local snapshot, lets it go too; one that a follower needs again is
   * taken again.
   */
  private releaseUntakenSnapshot(): void {
    if (this.mem.holdsSendable && !this.mem.sendableServed && this.clock.now() - this.mem.sendableAt > 4 * this.electionMs) {
      this.mem.release();
      log('[%s] let go of a snapshot taken for followers that none took', this.id);
    }
  }

  /** Whether {@link maybeSnapshot} would take a snapshot now. */
  private snapshotDue(): boolean {
    // not while a restart replays entries the state machine already holds:
    // the membership would lag the index the snapshot is stamped with
    if (this.applied < this.smApplied) return false;
    return this.applied - this.snapshotIndex >= this.snapshotEntries && !this.removedFromCluster && !this.closed;
  }

  private async maybeSnapshot(): Promise<void> {
    if (!this.snapshotDue()) return;
    const applied = this.applied;
    const onDemand = this.sm.sync !== undefined;
    // on demand: the state machine makes what it applied durable, and the
    // record keeps only the index, term, membership and addresses
    if (onDemand) await this.sm.sync!();
    const addresses = Object.fromEntries(this.addresses);
    const removed = [...this.removedIds];
    const data = wrapSnapshot(onDemand ? { addresses, removed } : { addresses, removed, data: await this.sm.snapshot() });
    // While the state machine was writing its snapshot, a newer one may have
    // arrived from the leader (the Ready loop stores it and queues its
    // restore behind this task): this one is then obsolete.
    if (this.mem.baseSnapshot().metadata.index >= applied || this.closed) return;
    const snap = this.mem.createLocalSnapshot(applied, this.members(), data, !onDemand);
    try {
      await this.storage.save({ snapshot: snap }, { sync: true });
    } catch (err) {
      if (isQuorumError(err, ErrorCode.SNAPSHOT_OUT_OF_DATE)) return; // the leader's, stored meanwhile, is newer
      throw err;
    }
    this.snapshotIndex = Math.max(this.snapshotIndex, applied);
    // not past a snapshot held for followers: the entries after it must stay
    // (it would be read again otherwise, and again if that takes as long)
    this.releaseUntakenSnapshot();
    const held = this.mem.sendableIndex();
    const compactTo = Math.min(applied - this.catchUpEntries, held ?? Infinity);
    if (compactTo > this.mem.firstIndex()) this.mem.compact(compactTo);
    log('[%s] snapshot at %d, log compacted to %d', this.id, applied, Math.max(compactTo, 0));
    emitIsolated(this, 'snapshot', applied, 'local');
  }

  // ------------------------------------------------------------ ReadIndex

  private startReadRound(): void {
    if (this.readRound !== undefined || this.readQueue.length === 0 || this.closed) return;
    const round: ReadRound = { ctxs: new Set(), waiters: this.readQueue, retry: undefined };
    this.readQueue = [];
    this.readRound = round;
    this.issueRead(round);
  }

  private issueRead(round: ReadRound): void {
    const ctx = `${this.id}/${this.readRun}/${++this.readCounter}`;
    round.ctxs.add(ctx);
    this.raw.readIndex(new TextEncoder().encode(ctx));
    this.scheduleLoop();
    if (round.retry !== undefined) this.clock.clearTimeout(round.retry);
    // A request can be dropped (no leader, leader change): ask again after an election timeout.
    round.retry = this.clock.setTimeout(() => {
      if (this.readRound === round) this.reissueRead();
    }, this.electionMs);
  }

  private reissueRead(): void {
    const round = this.readRound;
    if (round === undefined || this.closed) return;
    this.issueRead(round);
  }

  private onReadState(index: number, ctx: Uint8Array): void {
    const round = this.readRound;
    // an answer to any of the round's contexts will do: each was issued after
    // every waiter of the round called, so its index covers them all (a
    // round slower than an election timeout used to wait for the latest only)
    if (round === undefined || !round.ctxs.has(READ_CTX_DECODER.decode(ctx))) return;
    if (round.retry !== undefined) this.clock.clearTimeout(round.retry);
    this.readRound = undefined;
    this.confirmedReads.push({ index, waiters: round.waiters });
    this.releaseReads();
    this.startReadRound();
  }

  private releaseReads(): void {
    const applied = this.appliedIndex;
    while (this.confirmedReads.length > 0 && this.confirmedReads[0]!.index <= applied) {
      const { index, waiters } = this.confirmedReads.shift()!;
      for (const w of waiters) {
        if (w.timer === undefined) continue;
        this.clock.clearTimeout(w.timer);
        w.resolve(index);
      }
    }
  }

  /**
   * Forgets a waiter that timed out. A round left without waiters is given
   * up: it is not asked again (etcd stops retrying a ReadIndex request once
   * its request timed out), and the reads queued behind it start a round of
   * their own at once.
   */
  private dropReadWaiter(w: ReadWaiter): void {
    this.readQueue = this.readQueue.filter((x) => x !== w);
    for (let i = 0; i < this.confirmedReads.length; i++) {
      const c = this.confirmedReads[i]!;
      c.waiters = c.waiters.filter((x) => x !== w);
      if (c.waiters.length === 0) this.confirmedReads.splice(i--, 1);
    }
    const round = this.readRound;
    if (round === undefined) return;
    round.waiters = round.waiters.filter((x) => x !== w);
    if (round.waiters.length > 0) return;
    if (round.retry !== undefined) this.clock.clearTimeout(round.retry);
    round.retry = undefined;
    this.readRound = undefined;
    this.startReadRound();
  }

  // ------------------------------------------------------------ teardown

  private stopTimers(): void {
    if (this.lingerTimer !== undefined) this.clock.clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
    if (this.tickTimer !== undefined) this.clock.clearTimeout(this.tickTimer);
    this.tickTimer = undefined;
    if (this.hardStateTimer !== undefined) this.clock.clearTimeout(this.hardStateTimer);
    this.hardStateTimer = undefined;
    this.heldApps = []; // its callback finds nothing to send
    if (this.readRound?.retry !== undefined) this.clock.clearTimeout(this.readRound.retry);
  }

  private failAll(err: Error): void {
    for (const settle of [...this.transfers.keys()]) settle(err);
    for (const p of this.pending.values()) {
      this.clock.clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
    this.waiting.length = 0;
    this.batch = [];
    for (const p of this.pendingConf.values()) {
      this.clock.clearTimeout(p.timer);
      p.reject(err);
    }
    this.pendingConf.clear();
    this.waitingConf.length = 0;
    const readers = [...this.readQueue, ...(this.readRound?.waiters ?? []), ...this.confirmedReads.flatMap((r) => r.waiters)];
    // the round's retry timer goes with it (stopTimers, which runs after this
    // on a removal, no longer finds the round)
    if (this.readRound?.retry !== undefined) this.clock.clearTimeout(this.readRound.retry);
    this.readQueue = [];
    this.readRound = undefined;
    this.confirmedReads.length = 0;
    for (const w of readers) {
      if (w.timer === undefined) continue;
      this.clock.clearTimeout(w.timer);
      w.timer = undefined;
      w.reject(err);
    }
  }

  /**
   * Stops this member after a fatal error of the layer built on it (a
   * broken invariant in a listener of this node's events that must not go
   * on half done), as after a storage or state machine failure: pending
   * calls fail with `QUORUMKV_NODE_CLOSED`, the `error` event reports `err`.
   * @internal
   */
  stopOnFatal(err: Error): void {
    this.onFatal(err);
  }

  private onFatal(err: Error): void {
    if (this.fatal !== undefined || this.closed) return;
    this.fatal = err;
    log('[%s] fatal: %s', this.id, err.message);
    this.stopTimers();
    // A member whose storage or state machine failed takes no further part in
    // the cluster (etcd panics): no more messages in or out.
    this.closeTransportInBackground();
    this.failAll(new FaultError(ErrorCode.NODE_CLOSED, `node stopped after a fatal error: ${err.message}`, { cause: err }));
    emitIsolated(this, 'error', err);
  }

  /** Closes the transport once: every later call gets the first call's outcome. */
  private closeTransport(): Promise<void> {
    this.transportClosing ??= this.transport.close();
    return this.transportClosing;
  }

  /**
   * Closes the transport without waiting (a fatal error, a removal): a
   * failure is left for {@link close} to report, not thrown as an unhandled
   * rejection.
   */
  private closeTransportInBackground(): void {
    this.closeTransport().catch((err: unknown) => log('[%s] the transport failed to close: %s', this.id, (err as Error)?.message));
  }

  private wakeIdle(): void {
    const ws = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of ws) w();
  }
}
