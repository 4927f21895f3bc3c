/**
 * The Raft state machine (etcd-io/raft `raft.go`): roles, elections, log
 * replication, commit, ReadIndex, leadership transfer and membership, as a
 * pure synchronous object. It consumes messages and ticks and produces
 * messages (`msgs`), read states and log changes; {@link RawNode} packages
 * those into Ready batches. Not exported from the package: {@link RawNode} is
 * the public face.
 *
 * The roles are functions swapped on transition, as in etcd: `stepFn` is one
 * of `stepLeader` / `stepCandidate` / `stepFollower` and `tickFn` one of
 * `tickElection` / `tickHeartbeat`.
 *
 * Synchronous storage contract (the Ready rules): the leader counts its own
 * new entries as matched at once and a candidate counts its own vote at once,
 * because the driver persists a Ready's entries and HardState before sending
 * its messages and before applying its committed entries.
 * @module
 */
import { ErrorCode, FaultError, isQuorumError } from '../errors.js';
import type { ConfChange, ConfState, Entry, HardState, Message, MessageType, Snapshot } from '../raftpb/index.js';
import { isEmptySnapshot, voteResponseType } from '../raftpb/index.js';
import { applySimple, checkConfChange, restoreConfState, type ConfigAndProgress } from './confchange.js';
import { decodeConfChangeData } from './conf-change-codec.js';
import type { ResolvedRaftConfig } from './config.js';
import { payloadsSize } from './entry-size.js';
import type { VoteResult } from './quorum/majority-config.js';
import { RaftLog } from './raft-log.js';
import { ReadOnly } from './read-only.js';
import type { Progress } from './tracker/progress.js';
import { ProgressTracker } from './tracker/progress-tracker.js';
import type { RaftLogger, ReadOnlyOption, ReadState, SoftState, StateRole } from './types.js';

/** Why a campaign starts. */
export type CampaignType =
  /** First phase of an election with PreVote (thesis §9.6). */
  | 'preElection'
  /** A normal election (Raft §5.2). */
  | 'election'
  /** A leadership transfer (thesis §3.10): no pre-vote, and it overrides the CheckQuorum lease. */
  | 'transfer';

/** The context bytes of a leadership-transfer vote request (etcd's `campaignTransfer`). */
export const CAMPAIGN_TRANSFER_CONTEXT: Uint8Array = new TextEncoder().encode('CampaignTransfer');

/** A local request the state machine refused (a proposal dropped, a conf change refused). */
export interface StepRefusal {
  code: ErrorCode;
  message: string;
}

const EMPTY_BYTES = new Uint8Array(0);

function isCampaignTransfer(ctx: Uint8Array | undefined): boolean {
  if (ctx === undefined || ctx.length !== CAMPAIGN_TRANSFER_CONTEXT.length) return false;
  for (let i = 0; i < ctx.length; i++) if (ctx[i] !== CAMPAIGN_TRANSFER_CONTEXT[i]) return false;
  return true;
}

/** A message with every field defaulted; callers set what their type uses. */
function msg(type: MessageType, to: string): Message {
  return { type, to, from: '', term: 0, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 };
}

function refuse(code: ErrorCode, message: string): StepRefusal {
  return { code, message };
}

/** More entries than this in a log is not a bootstrap (one entry per founding voter). */
const MAX_BOOTSTRAP_ENTRIES = 1024;

/** The Raft state machine of one node. */
export class Raft {
  readonly id: string;
  term = 0;
  vote = '';
  /** Answers to ReadIndex requests, handed out in the next Ready. */
  readStates: ReadState[] = [];
  raftLog: RaftLog;
  readonly maxMsgSize: number;
  readonly maxUncommittedSize: number;
  trk: ProgressTracker;
  state: StateRole = 'follower';
  /** True when this node is a learner in the current configuration. */
  isLearner = false;
  /** Messages to send, handed out in the next Ready. */
  msgs: Message[] = [];
  /** Current leader id, `''` when unknown. */
  lead = '';
  /** Target of a leadership transfer in progress (thesis §3.10), `''` when none. */
  leadTransferee = '';
  /**
   * True once this leader sent MsgTimeoutNow in its term: the target's vote
   * requests override the other voters' leases, so a new leader may exist
   * before this one hears of it, and lease-based reads take a heartbeat
   * round for the rest of the term.
   */
  leaseRevoked = false;
  /**
   * Only one conf change may be pending (in the log, not yet applied) at a
   * time; this is at least the index of the latest one. Conf changes are
   * only accepted when `applied >= pendingConfIndex`.
   */
  pendingConfIndex = 0;
  /** Estimate of the uncommitted tail's payload bytes (leader only). */
  uncommittedSize = 0;
  readOnly: ReadOnly;
  /**
   * Ticks since the last election timeout was reached (leader, candidate) or
   * since a valid message from the current leader (follower).
   */
  electionElapsed = 0;
  /** Ticks since the last heartbeat (leader only). */
  heartbeatElapsed = 0;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly heartbeatTimeout: number;
  readonly electionTimeout: number;
  /** Drawn from `[electionTimeout, 2 * electionTimeout)` on each reset (Raft §5.2). */
  randomizedElectionTimeout = 0;
  readonly disableProposalForwarding: boolean;
  /** MsgReadIndex requests held until the leader commits an entry of its term (thesis §6.4 step 1). */
  pendingReadIndexMessages: Message[] = [];
  /**
   * The commit index announced by the first leader this node heard from
   * while its log held only the bootstrap entries; no vote until the log
   * reaches it (0: none). See `withholdsVote`.
   */
  bootstrapCatchUp = 0;
  /**
   * True while a Ready that handed out a committed ConfChange entry is not
   * yet advanced: the driver is still to call `applyConfChange` for it, on
   * the configuration it follows in the log. Set and cleared by RawNode.
   */
  confChangeApplying = false;
  readonly logger: RaftLogger | undefined;
  private readonly random: () => number;
  private readonly extraConfCheck: ResolvedRaftConfig['checkConfChange'];
  private readonly refusedConfChange: ResolvedRaftConfig['refusedConfChange'];

  /** The role's step function. */
  stepFn: (m: Message) => StepRefusal | undefined;
  /** The role's tick function. */
  tickFn: () => void;

  /**
   * Builds the state machine from the configuration and the storage's
   * initial state.
   * @throws FaultError `QUORUMKV_CORRUPT_LOG` when the stored HardState or ConfState is inconsistent with the log
   */
  constructor(c: ResolvedRaftConfig) {
    this.id = c.id;
    this.raftLog = new RaftLog(c.storage, c.maxCommittedSizePerReady, c.logger);
    this.maxMsgSize = c.maxSizePerMsg;
    this.maxUncommittedSize = c.maxUncommittedEntriesSize;
    this.trk = new ProgressTracker(c.maxInflightMsgs);
    this.electionTimeout = c.electionTick;
    this.heartbeatTimeout = c.heartbeatTick;
    this.logger = c.logger;
    this.checkQuorum = c.checkQuorum;
    this.preVote = c.preVote;
    this.readOnly = new ReadOnly(c.readOnlyOption);
    this.disableProposalForwarding = c.disableProposalForwarding;
    this.random = c.random;
    this.extraConfCheck = c.checkConfChange;
    this.refusedConfChange = c.refusedConfChange;
    this.stepFn = this.stepFollower;
    this.tickFn = this.tickElection;

    const { hardState, confState } = c.storage.initialState();
    const restored = restoreConfState(this.trk, this.raftLog.lastIndex(), confState);
    if (typeof restored === 'string') throw new FaultError(ErrorCode.CORRUPT_LOG, `invalid stored conf state: ${restored}`);
    this.switchToConfig(restored);
    if (hardState.term !== 0 || hardState.vote !== '' || hardState.commit !== 0) this.loadState(hardState);
    if (c.applied > this.raftLog.applied) {
      if (c.applied > this.raftLog.committed) {
        throw new FaultError(ErrorCode.CORRUPT_LOG, `applied index ${c.applied} is beyond the stored commit index ${this.raftLog.committed}`);
      }
      this.raftLog.appliedTo(c.applied);
    }
    this.becomeFollower(this.term, '');
    this.logger?.info(
      `${this.id} newRaft [peers: [${this.trk.voterIds().join(',')}], term: ${this.term}, commit: ${this.raftLog.committed}, applied: ${this.raftLog.applied}, lastindex: ${this.raftLog.lastIndex()}, lastterm: ${this.raftLog.lastTerm()}]`,
    );
  }

  get readOnlyOption(): ReadOnlyOption {
    return this.readOnly.option;
  }

  softState(): SoftState {
    return { lead: this.lead, raftState: this.state };
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.raftLog.committed };
  }

  /**
   * Queues a message for the next Ready. Sets `from`, and `term` for every
   * type but MsgProp and MsgReadIndex (forwarded requests, treated as local
   * by the receiver); vote messages carry the term they are for.
   */
  send(m: Message): void {
    if (m.from === '') m.from = this.id;
    if (m.type === 'MsgVote' || m.type === 'MsgVoteResp' || m.type === 'MsgPreVote' || m.type === 'MsgPreVoteResp') {
      if (m.term === 0) throw new Error(`term should be set when sending ${m.type}`);
    } else if (m.type !== 'MsgProp' && m.type !== 'MsgReadIndex') {
      m.term = this.term;
    }
    if (m.to === this.id) throw new Error(`message should not be self-addressed when sending ${m.type}`);
    this.msgs.push(m);
  }

  /**
   * Sends a MsgApp (entries from `next`, and the commit index) to `to` if its
   * flow control allows, or a MsgSnap when the entries it needs are
   * compacted. Returns true when a message was sent.
   */
  maybeSendAppend(to: string): boolean {
    const pr = this.trk.progress.get(to);
    if (pr === undefined) return false;
    const last = this.raftLog.lastIndex();
    const commit = this.raftLog.committed;
    if (!pr.shouldSendMsgApp(last, commit)) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.raftLog.termOrUndefined(prevIndex);
    if (prevTerm === undefined) {
      // The log got compacted at or after pr.next: only a snapshot can
      // catch this follower up.
      return this.maybeSendSnapshot(to, pr);
    }
    let ents: Entry[] = [];
    if (pr.canSendEntries(last)) {
      try {
        ents = this.raftLog.entries(pr.next, this.maxMsgSize);
      } catch (err) {
        if (isQuorumError(err, ErrorCode.LOG_COMPACTED)) return this.maybeSendSnapshot(to, pr);
        throw err;
      }
    }
    const m = msg('MsgApp', to);
    m.index = prevIndex;
    m.logTerm = prevTerm;
    m.entries = ents;
    m.commit = commit;
    this.send(m);
    pr.sentEntries(ents.length);
    pr.sentCommit(commit);
    return true;
  }

  /** Sends the storage's snapshot to `to` (Raft §7) if it is recently active. */
  private maybeSendSnapshot(to: string, pr: Progress): boolean {
    if (!pr.recentActive) {
      this.logger?.debug(`${this.id} ignore sending snapshot to ${to} since it is not recently active`);
      return false;
    }
    let snapshot: Snapshot;
    try {
      snapshot = this.raftLog.snapshot(to);
    } catch (err) {
      if (isQuorumError(err, ErrorCode.SNAPSHOT_TEMPORARILY_UNAVAILABLE)) {
        this.logger?.debug(`${this.id} failed to send snapshot to ${to} because snapshot is temporarily unavailable`);
        return false;
      }
      throw err;
    }
    if (isEmptySnapshot(snapshot)) {
      this.logger?.error(`${this.id} needs a non-empty snapshot to catch up ${to}, but the storage has none`);
      return false;
    }
    const sindex = snapshot.metadata.index;
    this.logger?.debug(
      `${this.id} [firstindex: ${this.raftLog.firstIndex()}, commit: ${this.raftLog.committed}] sent snapshot[index: ${sindex}, term: ${snapshot.metadata.term}] to ${to} [${pr.toString()}]`,
    );
    pr.becomeSnapshot(sindex);
    const m = msg('MsgSnap', to);
    m.snapshot = snapshot;
    this.send(m);
    return true;
  }

  /** Sends a heartbeat carrying `min(match, commit)`: never a commit index the follower may not have. */
  sendHeartbeat(to: string, ctx: Uint8Array | undefined): void {
    const pr = this.trk.progress.get(to);
    if (pr === undefined) return;
    const commit = Math.min(pr.match, this.raftLog.committed);
    const m = msg('MsgHeartbeat', to);
    m.commit = commit;
    if (ctx !== undefined) m.context = ctx;
    this.send(m);
    pr.sentCommit(commit);
  }

  /** MsgApp to every other member that needs one. */
  bcastAppend(): void {
    const ids = this.trk.memberIds();
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (id !== this.id) this.maybeSendAppend(id);
    }
  }

  /** Heartbeat to every other member, carrying the newest pending ReadIndex context. */
  bcastHeartbeat(): void {
    this.bcastHeartbeatWithCtx(this.readOnly.lastPendingRequestCtx());
  }

  private bcastHeartbeatWithCtx(ctx: Uint8Array | undefined): void {
    const ids = this.trk.memberIds();
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (id !== this.id) this.sendHeartbeat(id, ctx);
    }
  }

  /** Advances commit to what a majority of voters has (only entries of the current term, §5.4.2). */
  maybeCommit(): boolean {
    return this.raftLog.maybeCommit(this.trk.committed(), this.term);
  }

  /** Volatile state reset on every role change. */
  reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = '';
    }
    this.lead = '';
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.leaseRevoked = false;
    this.trk.resetVotes();
    const last = this.raftLog.lastIndex();
    const self = this.id;
    this.trk.visit((id, pr) => {
      pr.resetState('probe');
      pr.match = id === self ? last : 0;
      pr.next = last + 1;
      pr.pendingCommit = 0;
      pr.recentActive = false;
    });
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.readOnly = new ReadOnly(this.readOnly.option);
    // Requests waiting for a commit in a term that is over are dropped; the
    // requester retries (a ReadIndex request can always be retried).
    this.pendingReadIndexMessages = [];
  }

  /**
   * Appends entries proposed to the leader at its term. Returns false (and
   * changes nothing) when the uncommitted-size cap would be exceeded.
   */
  appendEntry(es: readonly Entry[]): boolean {
    let li = this.raftLog.lastIndex();
    // New entry objects: the proposed ones belong to a message, which an
    // in-memory transport may deliver twice; entries in the log are never
    // mutated.
    const ents: Entry[] = [];
    const term = this.term;
    for (let i = 0; i < es.length; i++) {
      const e = es[i]!;
      ents.push({ term, index: li + 1 + i, type: e.type, data: e.data });
    }
    if (!this.increaseUncommittedSize(ents)) {
      this.logger?.warn(`${this.id} appending new entries to log would exceed uncommitted entry size limit; dropping proposal`);
      return false;
    }
    li = this.raftLog.append(ents);
    // The leader's own entries count as replicated at once: the Ready
    // contract persists them before any message of the Ready is sent and
    // before any committed entry is applied.
    this.trk.progress.get(this.id)?.maybeUpdate(li);
    this.maybeCommit();
    return true;
  }

  /** Tick of followers and candidates: campaign after the randomized election timeout. */
  tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.pastElectionTimeout()) {
      this.electionElapsed = 0;
      this.step(this.localMsg('MsgHup'));
    }
  }

  /** Tick of the leader: heartbeats, and CheckQuorum / transfer timeout every election timeout. */
  tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.step(this.localMsg('MsgCheckQuorum'));
      // A transfer that did not finish within an election timeout is abandoned (thesis §3.10).
      if (this.state === 'leader' && this.leadTransferee !== '') this.abortLeaderTransfer();
    }
    if (this.state !== 'leader') return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step(this.localMsg('MsgBeat'));
    }
  }

  private localMsg(type: MessageType): Message {
    const m = msg(type, '');
    m.from = this.id;
    return m;
  }

  becomeFollower(term: number, lead: string): void {
    this.stepFn = this.stepFollower;
    this.reset(term);
    this.tickFn = this.tickElection;
    this.lead = lead;
    this.state = 'follower';
    this.logger?.info(`${this.id} became follower at term ${this.term}`);
  }

  becomeCandidate(): void {
    if (this.state === 'leader') throw new Error('invalid transition [leader -> candidate]');
    this.stepFn = this.stepCandidate;
    this.reset(this.term + 1);
    this.tickFn = this.tickElection;
    this.vote = this.id;
    this.state = 'candidate';
    this.logger?.info(`${this.id} became candidate at term ${this.term}`);
  }

  /**
   * Pre-candidate (thesis §9.6): same term, same vote, but the leader is
   * forgotten, so that this node grants votes again.
   */
  becomePreCandidate(): void {
    if (this.state === 'leader') throw new Error('invalid transition [leader -> pre-candidate]');
    this.stepFn = this.stepCandidate;
    this.trk.resetVotes();
    this.tickFn = this.tickElection;
    this.lead = '';
    this.state = 'preCandidate';
    this.logger?.info(`${this.id} became pre-candidate at term ${this.term}`);
  }

  becomeLeader(): void {
    if (this.state === 'follower') throw new Error('invalid transition [follower -> leader]');
    this.stepFn = this.stepLeader;
    this.reset(this.term);
    this.tickFn = this.tickHeartbeat;
    this.lead = this.id;
    this.state = 'leader';
    // The leader is trivially in the replicate state, and always active.
    const pr = this.trk.progress.get(this.id);
    if (pr !== undefined) {
      pr.becomeReplicate();
      pr.recentActive = true;
    }
    // Conservatively, there may be an unapplied conf change anywhere in the
    // log: refuse new ones until everything up to here is applied (and the
    // no-op below is committed, see committedEntryInCurrentTerm).
    this.pendingConfIndex = this.raftLog.lastIndex();
    // The no-op entry of a new term (Raft §8): committing it commits every
    // earlier entry, and lets ReadIndex and conf changes proceed.
    const noop: Entry = { term: 0, index: 0, type: 'Normal', data: EMPTY_BYTES };
    if (!this.appendEntry([noop])) throw new Error('empty entry was dropped');
    this.logger?.info(`${this.id} became leader at term ${this.term}`);
  }

  /** Starts an election unless this node leads already, cannot be promoted, or has an unapplied conf change. */
  hup(t: CampaignType): void {
    if (this.state === 'leader') {
      this.logger?.debug(`${this.id} ignoring MsgHup because already leader`);
      return;
    }
    if (!this.promotable()) {
      this.logger?.warn(`${this.id} is unpromotable and can not campaign`);
      return;
    }
    if (this.hasUnappliedConfChanges()) {
      this.logger?.warn(`${this.id} cannot campaign at term ${this.term} since there are still pending configuration changes to apply`);
      return;
    }
    this.logger?.info(`${this.id} is starting a new election at term ${this.term}`);
    this.campaign(t);
  }

  /** True when a committed entry not yet applied is a conf change. */
  private hasUnappliedConfChanges(): boolean {
    const log = this.raftLog;
    if (log.applied >= log.committed) return false;
    let lo = Math.max(log.applied + 1, log.firstIndex());
    const hi = log.committed + 1;
    while (lo < hi) {
      const ents = log.slice(lo, hi, log.maxNextCommittedSize);
      if (ents.length === 0) break;
      for (let i = 0; i < ents.length; i++) if (ents[i]!.type === 'ConfChange') return true;
      lo += ents.length;
    }
    return false;
  }

  /** Becomes (pre-)candidate and asks every voter for its vote. */
  campaign(t: CampaignType): void {
    let term: number;
    let voteMsg: MessageType;
    if (t === 'preElection') {
      this.becomePreCandidate();
      voteMsg = 'MsgPreVote';
      // PreVote requests are sent for the next term before the term is incremented.
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteMsg = 'MsgVote';
      term = this.term;
    }
    // The vote for ourselves counts at once (it is persisted with the
    // HardState of the same Ready, before any message is sent).
    const { result } = this.poll(this.id, voteResponseType(voteMsg), true);
    if (result === 'won') {
      // We won by voting for ourselves: a single-voter cluster.
      if (t === 'preElection') this.campaign('election');
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.raftLog.lastIndex();
    const lastTerm = this.raftLog.lastTerm();
    const voters = this.trk.voterIds();
    for (let i = 0; i < voters.length; i++) {
      const id = voters[i]!;
      if (id === this.id) continue;
      this.logger?.info(`${this.id} [logterm: ${lastTerm}, index: ${lastIndex}] sent ${voteMsg} request to ${id} at term ${this.term}`);
      const m = msg(voteMsg, id);
      m.term = term;
      m.index = lastIndex;
      m.logTerm = lastTerm;
      if (t === 'transfer') m.context = CAMPAIGN_TRANSFER_CONTEXT;
      this.send(m);
    }
  }

  private poll(id: string, t: MessageType, v: boolean): { granted: number; rejected: number; result: VoteResult } {
    if (v) this.logger?.info(`${this.id} received ${t} from ${id} at term ${this.term}`);
    else this.logger?.info(`${this.id} received ${t} rejection from ${id} at term ${this.term}`);
    this.trk.recordVote(id, v);
    return this.trk.tallyVotes();
  }

  /**
   * Processes one message (local or from a peer). Returns a refusal for
   * local requests that were dropped (proposals, conf changes); never
   * throws for messages from peers that passed `RawNode.step`'s checks.
   */
  step(m: Message): StepRefusal | undefined {
    // Handle the message term, which may result in our stepping down to a follower.
    if (m.term === 0) {
      // local message
    } else if (m.term > this.term) {
      if (m.type === 'MsgVote' || m.type === 'MsgPreVote') {
        const force = isCampaignTransfer(m.context);
        const inLease = this.checkQuorum && this.lead !== '' && this.electionElapsed < this.electionTimeout;
        if (!force && inLease) {
          // If a server receives a RequestVote request within the minimum
          // election timeout of hearing from a current leader, it does not
          // update its term or grant its vote (thesis §4.2.3, §6.2).
          this.logger?.info(
            `${this.id} [logterm: ${this.raftLog.lastTerm()}, index: ${this.raftLog.lastIndex()}, vote: ${this.vote}] ignored ${m.type} from ${m.from} [logterm: ${m.logTerm}, index: ${m.index}] at term ${this.term}: lease is not expired (remaining ticks: ${this.electionTimeout - this.electionElapsed})`,
          );
          return undefined;
        }
      }
      if (m.type === 'MsgPreVote') {
        // Never change our term in response to a PreVote.
      } else if (m.type === 'MsgPreVoteResp' && !m.reject) {
        // We send pre-vote requests with a term in our future. If the
        // pre-vote is granted, we increment our term when we get a quorum.
        // If it is not, the term comes from the node that rejected our vote
        // so we should become a follower at the new term.
      } else {
        this.logger?.info(`${this.id} [term: ${this.term}] received a ${m.type} message with higher term from ${m.from} [term: ${m.term}]`);
        if (m.type === 'MsgApp' || m.type === 'MsgHeartbeat' || m.type === 'MsgSnap') this.becomeFollower(m.term, m.from);
        else this.becomeFollower(m.term, '');
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === 'MsgHeartbeat' || m.type === 'MsgApp')) {
        // A leader at a lower term may be a node that has been partitioned
        // away; our term is higher than anything it can reach. With
        // CheckQuorum or PreVote we may not advance our term on its votes,
        // so tell it about our term: it steps down.
        this.send(msg('MsgAppResp', m.from));
      } else if (m.type === 'MsgPreVote') {
        // Before PreVote was enabled there may be a candidate with a higher
        // term but a shorter log; rejecting (rather than dropping) lets it
        // learn our term, or the cluster could deadlock.
        this.logger?.info(`${this.id} [term: ${this.term}] rejected ${m.type} from ${m.from} [term: ${m.term}]`);
        const r = msg('MsgPreVoteResp', m.from);
        r.term = this.term;
        r.reject = true;
        this.send(r);
      } else {
        this.logger?.debug(`${this.id} [term: ${this.term}] ignored a ${m.type} message with lower term from ${m.from} [term: ${m.term}]`);
      }
      return undefined;
    }

    switch (m.type) {
      case 'MsgHup':
        this.hup(this.preVote ? 'preElection' : 'election');
        return undefined;
      case 'MsgVote':
      case 'MsgPreVote': {
        // We can vote if this is a repeat of a vote we've already cast...
        const canVote =
          this.vote === m.from ||
          // ...we haven't voted and we don't think there's a leader yet in this term...
          (this.vote === '' && this.lead === '') ||
          // ...or this is a PreVote for a future term...
          (m.type === 'MsgPreVote' && m.term > this.term);
        // ...and we believe the candidate is up to date (Raft §5.4.1)...
        // ...and, if our log holds only the bootstrap entries, the candidate's
        // does too (see `onlyBootstrapLog`).
        if (canVote && this.raftLog.isUpToDate(m.index, m.logTerm) && !this.withholdsVote(m)) {
          // Note: a learner also answers vote requests. A learner that was
          // promoted may not know it yet, and the candidate (which counts
          // only the voters of its own configuration) may need its vote.
          this.logger?.info(`${this.id} [logterm: ${this.raftLog.lastTerm()}, index: ${this.raftLog.lastIndex()}, vote: ${this.vote}] cast ${m.type} for ${m.from} [logterm: ${m.logTerm}, index: ${m.index}] at term ${this.term}`);
          // The response carries the message's term, not ours: for a
          // pre-vote they differ, and the pre-candidate ignores responses
          // with a term other than the one it campaigns for.
          const r = msg(voteResponseType(m.type), m.from);
          r.term = m.term;
          this.send(r);
          if (m.type === 'MsgVote') {
            // Only real votes are recorded.
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.logger?.info(`${this.id} [logterm: ${this.raftLog.lastTerm()}, index: ${this.raftLog.lastIndex()}, vote: ${this.vote}] rejected ${m.type} from ${m.from} [logterm: ${m.logTerm}, index: ${m.index}] at term ${this.term}`);
          const r = msg(voteResponseType(m.type), m.from);
          r.term = this.term;
          r.reject = true;
          this.send(r);
        }
        return undefined;
      }
      default:
        return this.stepFn(m);
    }
  }

  /**
   * True when this node's log holds the bootstrap entries (term 1, see
   * `RawNode.bootstrap`; or a restored snapshot at term 1) and nothing else. Such a founding voter cannot tell
   * whether it never started or lost its data: in the second case it may
   * have acknowledged entries that a quorum counted on, and a vote for a
   * candidate without them would lose them (Raft §5.4 assumes every voter
   * keeps what it acknowledged). It therefore votes only for candidates whose
   * log holds nothing beyond the bootstrap either (a new cluster's first
   * elections); the first entry it receives from a leader (term 2 or more)
   * lifts the restriction. etcd reaches the same end by asking its peers at
   * startup whether the member was started before (`isMemberBootstrapped`).
   * Nodes that joined (empty log, no bootstrap) are not restricted: a voter
   * added to a one-member cluster must be able to elect its leader again.
   */
  onlyBootstrapLog(): boolean {
    const log = this.raftLog;
    if (log.lastTerm() !== 1 || log.lastIndex() === 0) return false;
    // Term 1 holds the bootstrap's ConfChange entries (one per founding
    // voter), after a snapshot at term 1 for a restored cluster; any other
    // entry came from elsewhere.
    const first = log.firstIndex();
    const last = log.lastIndex();
    if (last - first + 1 > MAX_BOOTSTRAP_ENTRIES) return false;
    return last < first || log.slice(first, last + 1, Infinity).every((e) => e.type === 'ConfChange');
  }

  /**
   * Whether this node withholds its vote (or pre-vote) from the candidate of
   * `m`: while its log holds only the bootstrap entries and the candidate's
   * holds more (see {@link onlyBootstrapLog}), and after that until its log
   * reaches the commit index the first leader it heard from announced
   * ({@link bootstrapCatchUp}). Without the second part, one entry from a
   * leader that fails again would lift the restriction, and the node could
   * elect a member that lacks entries it had acknowledged before losing its
   * data. The mark is kept in memory: a restart while catching up forgets it.
   */
  private withholdsVote(m: Message): boolean {
    if (this.bootstrapCatchUp > 0) {
      if (this.raftLog.lastIndex() < this.bootstrapCatchUp) return true;
      this.bootstrapCatchUp = 0;
    }
    return m.logTerm > 1 && this.onlyBootstrapLog();
  }

  stepLeader(m: Message): StepRefusal | undefined {
    // These message types do not require any progress for m.from.
    switch (m.type) {
      case 'MsgBeat':
        this.bcastHeartbeat();
        return undefined;
      case 'MsgCheckQuorum': {
        if (!this.trk.quorumActive()) {
          this.logger?.warn(`${this.id} stepped down to follower since quorum is not active`);
          this.becomeFollower(this.term, '');
        }
        // Mark everyone (but ourselves) as inactive in preparation for the next CheckQuorum.
        const self = this.id;
        this.trk.visit((id, pr) => {
          if (id !== self) pr.recentActive = false;
        });
        return undefined;
      }
      case 'MsgProp':
        return this.leaderPropose(m);
      case 'MsgReadIndex': {
        // Only one voter (the leader): answer at once.
        if (this.trk.isSingleton()) {
          const resp = this.responseToReadIndexReq(m.from, m.context ?? EMPTY_BYTES, this.raftLog.committed);
          if (resp !== undefined) this.send(resp);
          return undefined;
        }
        // Postpone the request until this leader has committed an entry in
        // its term (thesis §6.4: until then its commit index may be stale).
        if (!this.committedEntryInCurrentTerm()) {
          this.pendingReadIndexMessages.push(m);
          return undefined;
        }
        this.sendMsgReadIndexResponse(m);
        return undefined;
      }
    }

    // All other message types require a progress for m.from.
    const pr = this.trk.progress.get(m.from);
    if (pr === undefined) {
      this.logger?.debug(`${this.id} no progress available for ${m.from}`);
      return undefined;
    }
    switch (m.type) {
      case 'MsgAppResp':
        this.handleAppendResponse(m, pr);
        return undefined;
      case 'MsgHeartbeatResp': {
        pr.recentActive = true;
        pr.msgAppProbesPaused = false;
        // A paused or probing follower gets a MsgApp now: this lets replication
        // recover when every message that filled the inflights was lost.
        this.maybeSendAppend(m.from);
        // (also in leaseBased mode: see leaseRevoked)
        if (m.context === undefined || m.context.length === 0) return undefined;
        const acks = this.readOnly.recvAck(m.from, m.context);
        if (acks === undefined || this.trk.voteResultOf(acks) !== 'won') return undefined;
        const done = this.readOnly.advance(m.context);
        for (const rs of done) {
          const resp = this.responseToReadIndexReq(rs.from, rs.context, rs.index);
          if (resp !== undefined) this.send(resp);
        }
        return undefined;
      }
      case 'MsgSnapStatus': {
        if (pr.state !== 'snapshot') return undefined;
        if (!m.reject) {
          pr.becomeProbe();
          this.logger?.debug(`${this.id} snapshot succeeded, resumed sending replication messages to ${m.from} [${pr.toString()}]`);
        } else {
          // The order matters: otherwise we would probe from the snapshot
          // index although the snapshot never applied.
          pr.pendingSnapshot = 0;
          pr.becomeProbe();
          this.logger?.debug(`${this.id} snapshot failed, resumed sending replication messages to ${m.from} [${pr.toString()}]`);
        }
        // After a snapshot, wait for the follower's MsgAppResp (or the next
        // heartbeat) before the next MsgApp.
        pr.msgAppProbesPaused = true;
        return undefined;
      }
      case 'MsgUnreachable':
        // During optimistic replication a MsgApp was probably lost.
        if (pr.state === 'replicate') pr.becomeProbe();
        this.logger?.debug(`${this.id} failed to send message to ${m.from} because it is unreachable [${pr.toString()}]`);
        return undefined;
      case 'MsgTransferLeader': {
        if (pr.isLearner) {
          this.logger?.debug(`${this.id} ignored transferring leadership to learner ${m.from}`);
          return undefined;
        }
        const leadTransferee = m.from;
        const lastLeadTransferee = this.leadTransferee;
        if (lastLeadTransferee !== '') {
          if (lastLeadTransferee === leadTransferee) {
            this.logger?.info(`${this.id} [term ${this.term}] transfer leadership to ${leadTransferee} is in progress, ignores request to same node`);
            return undefined;
          }
          this.abortLeaderTransfer();
          this.logger?.info(`${this.id} [term ${this.term}] abort previous transferring leadership to ${lastLeadTransferee}`);
        }
        if (leadTransferee === this.id) {
          this.logger?.debug(`${this.id} is already leader. Ignored transferring leadership to self`);
          return undefined;
        }
        // Transfer leadership to a third party (thesis §3.10). It must
        // finish within one election timeout.
        this.logger?.info(`${this.id} [term ${this.term}] starts to transfer leadership to ${leadTransferee}`);
        this.electionElapsed = 0;
        this.leadTransferee = leadTransferee;
        if (pr.match === this.raftLog.lastIndex()) {
          this.sendTimeoutNow(leadTransferee);
          this.logger?.info(`${this.id} sends MsgTimeoutNow to ${leadTransferee} immediately as it already has up-to-date log`);
        } else {
          // Catch the target up now rather than at the next heartbeat
          // response: the transfer must finish within an election timeout.
          // (A replicating follower whose entries are all in flight would
          // otherwise get nothing until then.)
          pr.msgAppProbesPaused = false;
          this.maybeSendAppend(leadTransferee);
        }
        return undefined;
      }
    }
    return undefined;
  }

  private leaderPropose(m: Message): StepRefusal | undefined {
    if (m.entries.length === 0) return refuse(ErrorCode.PROPOSAL_DROPPED, 'empty proposal');
    if (!this.trk.progress.has(this.id)) {
      // This node was removed from the configuration while leading.
      return refuse(ErrorCode.PROPOSAL_DROPPED, `${this.id} is not a member of the configuration; dropping proposal`);
    }
    if (this.leadTransferee !== '') {
      this.logger?.debug(`${this.id} [term ${this.term}] transfer leadership to ${this.leadTransferee} is in progress; dropping proposal`);
      return refuse(ErrorCode.PROPOSAL_DROPPED, `leadership transfer to ${this.leadTransferee} is in progress; dropping proposal`);
    }
    const local = m.from === this.id;
    let entries = m.entries;
    // A proposal dropped below leaves no change of its own pending.
    const pendingBefore = this.pendingConfIndex;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (e.type !== 'ConfChange') continue;
      const failed = this.checkConfChangeProposal(e);
      if (failed !== undefined) {
        // A local proposal is refused to the caller; a forwarded one is
        // turned into an empty entry, as etcd does (in a copy: the message
        // is not ours to modify).
        if (local) {
          this.pendingConfIndex = pendingBefore;
          return failed;
        }
        this.logger?.info(`${this.id} ignoring conf change proposed by ${m.from}: ${failed.message}`);
        if (entries === m.entries) entries = entries.slice();
        const replaced = this.refusedConfChange?.(e, failed);
        entries[i] = replaced === undefined ? { term: 0, index: 0, type: 'Normal', data: EMPTY_BYTES } : { ...replaced, term: 0, index: 0, type: 'Normal' };
      } else {
        this.pendingConfIndex = this.raftLog.lastIndex() + i + 1;
      }
    }
    if (!this.appendEntry(entries)) {
      this.pendingConfIndex = pendingBefore;
      return refuse(ErrorCode.PROPOSAL_DROPPED, 'the uncommitted entries exceed maxUncommittedEntriesSize; dropping proposal');
    }
    this.bcastAppend();
    return undefined;
  }

  /** The safeguards of single-server changes (thesis §4.1, see confchange.ts). */
  private checkConfChangeProposal(e: Entry): StepRefusal | undefined {
    if (this.pendingConfIndex > this.raftLog.applied) {
      return refuse(
        ErrorCode.CONF_CHANGE_PENDING,
        `possible unapplied conf change at index ${this.pendingConfIndex} (applied to ${this.raftLog.applied})`,
      );
    }
    if (!this.committedEntryInCurrentTerm()) {
      return refuse(ErrorCode.CONF_CHANGE_PENDING, `the leader has not yet committed an entry in term ${this.term}`);
    }
    const cc = decodeConfChangeData(e.data);
    if (cc === undefined) return refuse(ErrorCode.INVALID_ARGUMENT, 'malformed conf change');
    const err = checkConfChange(this.trk.config, cc);
    if (err !== undefined) return refuse(ErrorCode.INVALID_ARGUMENT, err);
    return this.extraConfCheck?.(cc, (id) => this.trk.progress.get(id)?.match);
  }

  private handleAppendResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    if (m.reject) {
      // rejectHint is the suggested next base entry for appending (we try
      // rejectHint+1 next), and logTerm is the follower's term at it. With
      // the leader's own log we can skip further: every index whose term is
      // above the follower's term there cannot match (Raft thesis §5.3,
      // etcd's findConflictByTerm); at most one probe per term.
      this.logger?.debug(`${this.id} received MsgAppResp(rejected, hint: (index ${m.rejectHint}, term ${m.logTerm})) from ${m.from} for index ${m.index}`);
      let nextProbeIdx = m.rejectHint;
      if (m.logTerm > 0) nextProbeIdx = this.raftLog.findConflictByTerm(m.rejectHint, m.logTerm)[0];
      if (pr.maybeDecrTo(m.index, nextProbeIdx)) {
        this.logger?.debug(`${this.id} decreased progress of ${m.from} to [${pr.toString()}]`);
        if (pr.state === 'replicate') pr.becomeProbe();
        this.maybeSendAppend(m.from);
      }
      return;
    }
    if (m.index > this.raftLog.lastIndex()) {
      this.logger?.debug(`${this.id} ignored MsgAppResp from ${m.from} acknowledging index ${m.index} beyond the last index ${this.raftLog.lastIndex()}`);
      return;
    }
    // Update the tracking if the response moves match, or if it can move a
    // probing peer back into replicate.
    if (pr.maybeUpdate(m.index) || (pr.match === m.index && pr.state === 'probe')) {
      if (pr.state === 'probe') {
        pr.becomeReplicate();
      } else if (pr.state === 'snapshot' && pr.match + 1 >= this.raftLog.firstIndex()) {
        // The follower caught up (from a snapshot, whichever index it had):
        // resume replication through probe, which accounts for the snapshot.
        this.logger?.debug(`${this.id} recovered from needing snapshot, resumed sending replication messages to ${m.from} [${pr.toString()}]`);
        pr.becomeProbe();
        pr.becomeReplicate();
      } else if (pr.state === 'replicate') {
        pr.inflights.freeLE(m.index);
      }
      if (this.maybeCommit()) {
        // Committed index moved for the term: pending ReadIndex requests may go on.
        this.releasePendingReadIndexMessages();
        this.bcastAppend();
      }
      // The flow control may allow several (size-limited) messages now.
      if (m.from !== this.id) {
        while (this.maybeSendAppend(m.from)) {
          // keep sending
        }
      }
      // Leadership transfer in progress: the target is caught up.
      if (m.from === this.leadTransferee && pr.match === this.raftLog.lastIndex()) {
        this.logger?.info(`${this.id} sent MsgTimeoutNow to ${m.from} after received MsgAppResp`);
        this.sendTimeoutNow(m.from);
      }
    }
  }

  stepCandidate(m: Message): StepRefusal | undefined {
    // Only handle vote responses of our own candidacy (a candidate may still
    // receive stale MsgPreVoteResp from its pre-candidate phase).
    const myVoteRespType: MessageType = this.state === 'preCandidate' ? 'MsgPreVoteResp' : 'MsgVoteResp';
    switch (m.type) {
      case 'MsgProp':
        this.logger?.info(`${this.id} no leader at term ${this.term}; dropping proposal`);
        return refuse(ErrorCode.PROPOSAL_DROPPED, `no leader at term ${this.term}; dropping proposal`);
      case 'MsgApp':
        this.becomeFollower(m.term, m.from); // always m.term === this.term
        this.handleAppendEntries(m);
        return undefined;
      case 'MsgHeartbeat':
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return undefined;
      case 'MsgSnap':
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return undefined;
      case 'MsgTimeoutNow':
        this.logger?.debug(`${this.id} [term ${this.term} state ${this.state}] ignored MsgTimeoutNow from ${m.from}`);
        return undefined;
    }
    if (m.type === myVoteRespType) {
      const { granted, rejected, result } = this.poll(m.from, m.type, !m.reject);
      this.logger?.info(`${this.id} has received ${granted} ${m.type} votes and ${rejected} vote rejections`);
      if (result === 'won') {
        if (this.state === 'preCandidate') {
          this.campaign('election');
        } else {
          this.becomeLeader();
          this.bcastAppend();
        }
      } else if (result === 'lost') {
        // A MsgPreVoteResp carries the pre-candidate's future term: keep ours.
        this.becomeFollower(this.term, '');
      }
    }
    return undefined;
  }

  stepFollower(m: Message): StepRefusal | undefined {
    switch (m.type) {
      case 'MsgProp':
        if (this.lead === '') {
          this.logger?.info(`${this.id} no leader at term ${this.term}; dropping proposal`);
          return refuse(ErrorCode.PROPOSAL_DROPPED, `no leader at term ${this.term}; dropping proposal`);
        }
        if (this.disableProposalForwarding) {
          this.logger?.info(`${this.id} not forwarding to leader ${this.lead} at term ${this.term}; dropping proposal`);
          return refuse(ErrorCode.PROPOSAL_DROPPED, 'proposal forwarding is disabled; dropping proposal');
        }
        this.send({ ...m, to: this.lead });
        return undefined;
      case 'MsgApp':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return undefined;
      case 'MsgHeartbeat':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return undefined;
      case 'MsgSnap':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return undefined;
      case 'MsgTransferLeader':
        if (this.lead === '') {
          this.logger?.info(`${this.id} no leader at term ${this.term}; dropping leader transfer msg`);
          return undefined;
        }
        this.send({ ...m, to: this.lead });
        return undefined;
      case 'MsgTimeoutNow':
        // Leadership transfers never use pre-vote: we know we are not
        // recovering from a partition (thesis §3.10).
        this.logger?.info(`${this.id} [term ${this.term}] received MsgTimeoutNow from ${m.from} and starts an election to get leadership`);
        this.hup('transfer');
        return undefined;
      case 'MsgReadIndex':
        if (this.lead === '') {
          this.logger?.info(`${this.id} no leader at term ${this.term}; dropping index reading msg`);
          return undefined;
        }
        this.send({ ...m, to: this.lead });
        return undefined;
      case 'MsgReadIndexResp':
        this.readStates.push({ index: m.index, requestCtx: m.context ?? EMPTY_BYTES });
        return undefined;
    }
    return undefined;
  }

  /** Follower side of AppendEntries (Raft §5.3). */
  handleAppendEntries(m: Message): void {
    // the first leader heard from while the log holds only the bootstrap
    // entries: no vote until the log holds what it says is committed
    if (m.commit > this.raftLog.lastIndex() && this.bootstrapCatchUp === 0 && this.onlyBootstrapLog()) this.bootstrapCatchUp = m.commit;
    if (m.index < this.raftLog.committed) {
      const r = msg('MsgAppResp', m.from);
      r.index = this.raftLog.committed;
      this.send(r);
      return;
    }
    let lastNew: number;
    try {
      lastNew = this.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    } catch (err) {
      if (isQuorumError(err, ErrorCode.CORRUPT_LOG)) {
        this.logger?.error(`${this.id} ignored MsgApp from ${m.from}: ${(err as Error).message}`);
        return;
      }
      throw err;
    }
    if (lastNew >= 0) {
      const r = msg('MsgAppResp', m.from);
      r.index = lastNew;
      this.send(r);
      return;
    }
    this.logger?.debug(`${this.id} [logterm: ${this.raftLog.termOrZero(m.index)}, index: ${m.index}] rejected MsgApp [logterm: ${m.logTerm}, index: ${m.index}] from ${m.from}`);
    // Our log does not match the leader's at m.index. Hint the largest
    // (index, term) at which the logs may match: the largest index with a
    // term <= m.logTerm, at or below m.index; this skips all of our
    // uncommitted tail with terms above the leader's (thesis §5.3).
    const hintIndex0 = Math.min(m.index, this.raftLog.lastIndex());
    const [hintIndex, hintTerm] = this.raftLog.findConflictByTerm(hintIndex0, m.logTerm);
    const r = msg('MsgAppResp', m.from);
    r.index = m.index;
    r.reject = true;
    r.rejectHint = hintIndex;
    r.logTerm = hintTerm;
    this.send(r);
  }

  handleHeartbeat(m: Message): void {
    if (m.commit > this.raftLog.lastIndex()) {
      // The leader only sends min(match, commit); anything else is not from
      // a correct leader and must not move our commit past our log.
      this.logger?.warn(`${this.id} ignored commit ${m.commit} of a heartbeat from ${m.from} beyond the last index ${this.raftLog.lastIndex()}`);
    } else {
      this.raftLog.commitTo(m.commit);
    }
    const r = msg('MsgHeartbeatResp', m.from);
    if (m.context !== undefined) r.context = m.context;
    this.send(r);
  }

  handleSnapshot(m: Message): void {
    const s = m.snapshot;
    const sindex = s?.metadata.index ?? 0;
    const sterm = s?.metadata.term ?? 0;
    const r = msg('MsgAppResp', m.from);
    if (s !== undefined && this.restore(s)) {
      this.logger?.info(`${this.id} [commit: ${this.raftLog.committed}] restored snapshot [index: ${sindex}, term: ${sterm}]`);
      r.index = this.raftLog.lastIndex();
    } else {
      this.logger?.info(`${this.id} [commit: ${this.raftLog.committed}] ignored snapshot [index: ${sindex}, term: ${sterm}]`);
      r.index = this.raftLog.committed;
    }
    this.send(r);
  }

  /**
   * Restores the log and configuration from a snapshot newer than the
   * commit index. Returns false when the snapshot was ignored (old,
   * malformed, or arriving while a committed conf change is being applied)
   * or only fast-forwarded the commit.
   */
  restore(s: Snapshot): boolean {
    if (s.metadata.index <= this.raftLog.committed) return false;
    if (this.state !== 'follower') {
      // Defense in depth: this should never happen.
      this.logger?.warn(`${this.id} attempted to restore snapshot as ${this.state}; should never happen`);
      this.becomeFollower(this.term + 1, '');
      return false;
    }
    const cs = s.metadata.confState;
    if (!cs.voters.includes(this.id) && !cs.learners.includes(this.id)) {
      // Unlike etcd, accept it: the snapshot the leader sends is the one in
      // its storage, taken at some applied index, and may predate the conf
      // change that added this node. Outside its configuration the node
      // cannot campaign; it joins when it applies the entry adding it.
      this.logger?.info(`${this.id} restores a snapshot whose ConfState ${JSON.stringify(cs)} does not include it yet`);
    }
    if (this.raftLog.matchTerm(s.metadata.index, s.metadata.term)) {
      // Our log already has the snapshot's last entry: just commit up to it.
      this.logger?.info(`${this.id} [commit: ${this.raftLog.committed}, lastindex: ${this.raftLog.lastIndex()}] fast-forwarded commit to snapshot [index: ${s.metadata.index}, term: ${s.metadata.term}]`);
      this.raftLog.commitTo(s.metadata.index);
      return false;
    }
    if (this.confChangeApplying) {
      // The driver has yet to apply a conf change of the log this snapshot
      // replaces; applied after the restore, it would change the snapshot's
      // (newer) configuration. The leader sends the snapshot again.
      this.logger?.info(`${this.id} ignored snapshot [index: ${s.metadata.index}, term: ${s.metadata.term}] while a committed conf change is being applied`);
      return false;
    }
    const tracker = new ProgressTracker(this.trk.maxInflight);
    const restored = restoreConfState(tracker, s.metadata.index, cs);
    if (typeof restored === 'string') {
      this.logger?.warn(`${this.id} ignored a snapshot with an invalid conf state: ${restored}`);
      return false;
    }
    this.raftLog.restore(s);
    this.trk = tracker;
    this.switchToConfig(restored);
    return true;
  }

  /** True when this node may campaign: a voter of its configuration, with no snapshot waiting to be persisted. */
  promotable(): boolean {
    const pr = this.trk.progress.get(this.id);
    return pr !== undefined && !pr.isLearner && this.raftLog.unstable.snapshot === undefined;
  }

  /**
   * Applies a committed conf change (called by the driver after applying the
   * entry). An invalid change is ignored (logged), and the unchanged
   * configuration returned: every node ignores it the same way.
   */
  applyConfChange(cc: ConfChange): ConfState {
    const res = applySimple(this.trk, this.raftLog.lastIndex(), cc);
    if (typeof res === 'string') {
      this.logger?.warn(`${this.id} ignored conf change ${cc.type} ${cc.nodeId}: ${res}`);
      return this.trk.confState();
    }
    return this.switchToConfig(res);
  }

  /**
   * Installs a configuration, and reacts: a leader that was removed (or is
   * no longer a voter) steps down; a leader commits what the new quorum
   * allows and probes new members; a transfer to a removed node is aborted.
   */
  switchToConfig(cp: ConfigAndProgress): ConfState {
    this.trk.setConfig(cp.config, cp.progress);
    this.logger?.info(`${this.id} switched to configuration voters=(${this.trk.voterIds().join(' ')}) learners=(${[...cp.config.learners].sort().join(' ')})`);
    const cs = this.trk.confState();
    const pr = this.trk.progress.get(this.id);
    this.isLearner = pr !== undefined && pr.isLearner;
    if ((pr === undefined || this.isLearner) && this.state === 'leader') {
      // This leader was removed or demoted: step down. The others elect a
      // new leader after an election timeout.
      this.becomeFollower(this.term, '');
      return cs;
    }
    // The remaining steps only make sense for a leader with voters.
    if (this.state !== 'leader' || cs.voters.length === 0) return cs;
    if (this.maybeCommit()) {
      // The new quorum commits more: tell everyone.
      this.bcastAppend();
    } else {
      // Still probe the new members at once rather than at the next heartbeat.
      const ids = this.trk.memberIds();
      for (const id of ids) if (id !== this.id) this.maybeSendAppend(id);
    }
    if (this.leadTransferee !== '' && !this.trk.config.voters.has(this.leadTransferee)) this.abortLeaderTransfer();
    return cs;
  }

  private loadState(hs: HardState): void {
    if (hs.commit < this.raftLog.committed || hs.commit > this.raftLog.lastIndex()) {
      throw new FaultError(
        ErrorCode.CORRUPT_LOG,
        `stored commit ${hs.commit} is out of range [${this.raftLog.committed}, ${this.raftLog.lastIndex()}]`,
      );
    }
    this.raftLog.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  pastElectionTimeout(): boolean {
    return this.electionElapsed >= this.randomizedElectionTimeout;
  }

  resetRandomizedElectionTimeout(): void {
    const r = this.random();
    let extra = Math.floor((Number.isFinite(r) ? r : 0) * this.electionTimeout);
    if (extra < 0) extra = 0;
    if (extra > this.electionTimeout - 1) extra = this.electionTimeout - 1;
    this.randomizedElectionTimeout = this.electionTimeout + extra;
  }

  private sendTimeoutNow(to: string): void {
    this.leaseRevoked = true;
    this.send(msg('MsgTimeoutNow', to));
  }

  abortLeaderTransfer(): void {
    this.leadTransferee = '';
  }

  /** True when the entry at the commit index is of the current term. */
  committedEntryInCurrentTerm(): boolean {
    return this.raftLog.termOrZero(this.raftLog.committed) === this.term;
  }

  /**
   * The answer to a ReadIndex request: a ReadState for a local request, or a
   * MsgReadIndexResp to the follower that forwarded it.
   */
  private responseToReadIndexReq(from: string, ctx: Uint8Array, readIndex: number): Message | undefined {
    if (from === '' || from === this.id) {
      this.readStates.push({ index: readIndex, requestCtx: ctx });
      return undefined;
    }
    const m = msg('MsgReadIndexResp', from);
    m.index = readIndex;
    m.context = ctx;
    return m;
  }

  /**
   * Records the size of proposed entries; false when they would push the
   * uncommitted tail over the cap. An empty uncommitted tail accepts any
   * size, and empty entries are never refused (the leader's no-op).
   */
  private increaseUncommittedSize(ents: readonly Entry[]): boolean {
    const s = payloadsSize(ents);
    if (this.uncommittedSize > 0 && s > 0 && this.uncommittedSize + s > this.maxUncommittedSize) return false;
    this.uncommittedSize += s;
    return true;
  }

  /** Committed entries no longer count against the cap. */
  reduceUncommittedSize(s: number): void {
    if (s > this.uncommittedSize) this.uncommittedSize = 0;
    else this.uncommittedSize -= s;
  }

  private releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0) return;
    if (!this.committedEntryInCurrentTerm()) {
      this.logger?.error('pending MsgReadIndex should be released only after first commit in current term');
      return;
    }
    const msgs = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of msgs) this.sendMsgReadIndexResponse(m);
  }

  private sendMsgReadIndexResponse(m: Message): void {
    const ctx = m.context ?? EMPTY_BYTES;
    if (this.readOnly.option === 'safe' || this.leaseRevoked) {
      // Confirm leadership with a heartbeat round (thesis §6.4 step 3); the
      // leader acknowledges its own heartbeat. A lease-based leader does so
      // too once it sent MsgTimeoutNow (see leaseRevoked).
      this.readOnly.addRequest(this.raftLog.committed, m.from, ctx);
      this.readOnly.recvAck(this.id, ctx);
      this.bcastHeartbeatWithCtx(ctx);
    } else {
      // Lease-based (thesis §6.4.1): CheckQuorum keeps the leader from
      // serving after losing its quorum, within a bounded clock drift.
      const resp = this.responseToReadIndexReq(m.from, ctx, this.raftLog.committed);
      if (resp !== undefined) this.send(resp);
    }
  }
}
