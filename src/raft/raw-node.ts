/**
 * The public face of the Raft core (etcd-io/raft `rawnode.go`): a
 * synchronous, single-threaded Raft node driven by `tick()`, `step()` and the
 * local requests, whose output is collected with `ready()` / `advance()`.
 * @module
 */
import { ErrorCode, FaultError, UsageError } from '../errors.js';
import { describeValue, viewProblem } from '../arg-values.js';
import type { ConfChange, ConfState, Entry, HardState, Message, MessageType } from '../raftpb/index.js';
import { MESSAGE_TYPES, emptyHardState, isLocalMessage, isResponseMessage } from '../raftpb/index.js';
import { encodeConfChangeData } from './conf-change-codec.js';
import { resolveConfig } from './config.js';
import { payloadsSize } from './entry-size.js';
import { Raft, type StepRefusal } from './raft.js';
import { refusalError } from './refusal.js';
import type { ProgressStatus, RaftConfig, RaftStatus, Ready, SnapshotStatus, SoftState } from './types.js';

const KNOWN_TYPES: ReadonlySet<string> = new Set<string>(MESSAGE_TYPES);
const CONF_CHANGE_TYPES: ReadonlySet<string> = new Set(['AddNode', 'AddLearnerNode', 'RemoveNode', 'UpdateNode']);

/** What `advance()` must acknowledge about the Ready handed out. */
interface PendingReady {
  lastEntryIndex: number;
  lastEntryTerm: number;
  snapshotIndex: number;
  /** Index of the last committed entry handed out (or the snapshot's), 0 for none. */
  appliedTo: number;
  committedSize: number;
}

function invalidArgument(msg: string): never {
  throw new UsageError(ErrorCode.INVALID_ARGUMENT, msg);
}

function isNonNegativeInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Bytes the caller hands in: a Uint8Array whose bytes can be read, not a
 * Proxy of one nor a view of a detached or shrunk buffer (see
 * `viewProblem`): such an entry would be appended, then throw a TypeError
 * where its size is read or it is encoded.
 */
function checkBytesArg(v: unknown, what: string): asserts v is Uint8Array {
  if (!(v instanceof Uint8Array)) invalidArgument(`${what} must be a Uint8Array`);
  const problem = viewProblem(v);
  if (problem !== undefined) invalidArgument(`${what} is ${problem}`);
}

function checkConfChangeArg(cc: ConfChange): void {
  if (cc === null || typeof cc !== 'object') invalidArgument('conf change must be an object');
  if (!CONF_CHANGE_TYPES.has(cc.type)) invalidArgument(`unknown conf change type ${describeValue(cc.type)}`);
  if (typeof cc.nodeId !== 'string' || cc.nodeId === '') invalidArgument('conf change node id must be a non-empty string');
  if (cc.context !== undefined) checkBytesArg(cc.context, 'conf change context');
}

/**
 * A Raft node as a pure state machine (Ready/Advance style of etcd-io/raft).
 * Nothing happens by itself: the driver calls {@link RawNode.tick} at a
 * fixed interval, hands every message from peers to {@link RawNode.step},
 * and loops:
 *
 * ```ts
 * if (node.hasReady()) {
 *   const rd = node.ready();
 *   // 1. persist rd.snapshot, rd.entries, rd.hardState (fsync if rd.mustSync)
 *   // 2. send rd.messages
 *   // 3. apply rd.committedEntries (applyConfChange for ConfChange entries)
 *   node.advance();
 * }
 * ```
 *
 * Not thread-safe and not re-entrant: one caller at a time. Nothing here
 * does I/O, reads the clock or draws random numbers itself (`config.random`).
 */
export class RawNode {
  private readonly raft: Raft;
  private prevSoftSt: SoftState;
  private prevHardSt: HardState;
  private pending: PendingReady | undefined = undefined;

  /**
   * Validates the configuration and restores the state found in
   * `config.storage` (HardState, ConfState, log).
   * @throws UsageError `QUORUMKV_INVALID_CONFIG` on an invalid configuration (see `RaftConfig`)
   * @throws FaultError `QUORUMKV_CORRUPT_LOG` when the storage's HardState or ConfState contradicts its log,
   *   or `config.applied` is beyond the stored commit index
   */
  constructor(config: RaftConfig) {
    const c = resolveConfig(config);
    this.raft = new Raft(c);
    this.prevSoftSt = this.raft.softState();
    this.prevHardSt = this.raft.hardState();
  }

  /** This node's id. */
  get id(): string {
    return this.raft.id;
  }

  /**
   * Bootstraps a new cluster on an empty storage (etcd's
   * `RawNode.Bootstrap`): appends one `ConfChange` `AddNode` entry per voter
   * at term 1, indexes 1..n, and marks them committed; the configuration
   * takes effect at once. The first Ready carries the entries, the HardState
   * `{ term: 1, vote: '', commit: n }` and the entries as committed entries
   * (applying them with `applyConfChange` again is harmless).
   * Every node of the new cluster bootstraps with the same voters; nodes
   * added later start with an empty storage and no bootstrap. The entries
   * are persisted only with the first Ready: a node that stops before that
   * finds its storage empty and must bootstrap again.
   * @param voters - the initial voters, including this node
   * @throws UsageError `QUORUMKV_INVALID_CONFIG` when the storage or this node is not empty, or
   *   `voters` is empty, has duplicates or empty ids, or does not include this node
   */
  bootstrap(voters: string[]): void {
    if (!Array.isArray(voters) || voters.length === 0) {
      throw new UsageError(ErrorCode.INVALID_CONFIG, 'bootstrap needs at least one voter');
    }
    const seen = new Set<string>();
    for (const v of voters) {
      if (typeof v !== 'string' || v === '') throw new UsageError(ErrorCode.INVALID_CONFIG, 'bootstrap voter ids must be non-empty strings');
      if (seen.has(v)) throw new UsageError(ErrorCode.INVALID_CONFIG, `bootstrap voter ${v} is listed twice`);
      seen.add(v);
    }
    const r = this.raft;
    if (!seen.has(r.id)) throw new UsageError(ErrorCode.INVALID_CONFIG, `bootstrap voters do not include this node (${r.id})`);
    const hs = r.hardState();
    if (
      r.raftLog.storage.lastIndex() !== 0 ||
      r.raftLog.lastIndex() !== 0 ||
      hs.term !== 0 ||
      hs.vote !== '' ||
      hs.commit !== 0 ||
      r.trk.memberIds().length !== 0
    ) {
      throw new UsageError(ErrorCode.INVALID_CONFIG, 'cannot bootstrap a non-empty storage');
    }
    // Nothing has been persisted yet: the first Ready carries the HardState.
    this.prevHardSt = emptyHardState();
    r.becomeFollower(1, '');
    const ents: Entry[] = voters.map((v, i) => ({
      term: 1,
      index: i + 1,
      type: 'ConfChange',
      data: encodeConfChangeData({ type: 'AddNode', nodeId: v }),
    }));
    r.raftLog.append(ents);
    // Committed by construction (every node starts from the same entries);
    // not applied, so that the driver sees them in Ready.committedEntries.
    r.raftLog.committed = ents.length;
    for (const v of voters) r.applyConfChange({ type: 'AddNode', nodeId: v });
  }

  /**
   * Advances the logical clock by one tick: followers and candidates
   * campaign after their randomized election timeout (Raft §5.2); a leader
   * sends heartbeats every `heartbeatTick` and, every `electionTick`, checks
   * its quorum (thesis §6.2) and abandons an unfinished leadership transfer.
   */
  tick(): void {
    this.raft.tickFn();
  }

  /**
   * Starts an election now (etcd `Campaign`): with PreVote, a pre-vote round
   * first (thesis §9.6). Ignored (logged) when this node leads already, is
   * not a voter, or has an unapplied committed conf change.
   */
  campaign(): void {
    this.stepLocal({ type: 'MsgHup', from: this.raft.id });
  }

  /**
   * Proposes `data` to be appended to the log. On a follower the proposal is
   * forwarded to the leader (unless `disableProposalForwarding`); there is
   * no acknowledgement: the driver learns the outcome when the entry is
   * committed (or never, if the leader changed).
   * @param data - the entry payload (bytes, not copied; do not mutate it afterwards)
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `data` is not a Uint8Array, or is a Proxy of one
   *   or a view of a detached or shrunk `ArrayBuffer` (its bytes cannot be read)
   * @throws FaultError `QUORUMKV_PROPOSAL_DROPPED` when no leader is known, forwarding is disabled,
   *   a leadership transfer is in progress, the leader was removed, or the uncommitted-size cap is exceeded
   */
  propose(data: Uint8Array): void {
    checkBytesArg(data, 'proposal data');
    this.proposeEntries([{ term: 0, index: 0, type: 'Normal', data }]);
  }

  /**
   * Proposes several payloads as one MsgProp (one append and one broadcast):
   * all are accepted or all are dropped. Same errors as {@link RawNode.propose}.
   */
  proposeBatch(data: readonly Uint8Array[]): void {
    if (!Array.isArray(data) || data.length === 0) invalidArgument('proposal batch must be a non-empty array');
    const ents: Entry[] = new Array<Entry>(data.length);
    for (let i = 0; i < data.length; i++) {
      const d = data[i];
      checkBytesArg(d, 'proposal data');
      ents[i] = { term: 0, index: 0, type: 'Normal', data: d };
    }
    this.proposeEntries(ents);
  }

  /**
   * Proposes a single-server membership change (thesis §4.1): the entry's
   * data is the ConfChange encoded as `src/codec`'s `encodeConfChange` does.
   * It takes effect when the driver applies the committed entry and calls
   * {@link RawNode.applyConfChange}.
   *
   * Unlike etcd, which turns a refused conf change into an empty entry, a
   * leader refuses it to the caller: while an earlier conf change is not yet
   * applied, or before the leader has committed an entry of its own term,
   * it throws `QUORUMKV_CONF_CHANGE_PENDING` (retry later). A conf change
   * forwarded by a follower and refused at the leader becomes an empty entry,
   * as in etcd.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for a malformed change, or one invalid for the
   *   leader's configuration (demoting a voter with `AddLearnerNode`, removing the last voter)
   * @throws FaultError `QUORUMKV_CONF_CHANGE_PENDING` (see above)
   * @throws FaultError `QUORUMKV_PROPOSAL_DROPPED` as for {@link RawNode.propose}
   * @throws the refusal of {@link RaftConfig.checkConfChange}, with its
   *   code: a UsageError for `QUORUMKV_INVALID_ARGUMENT` and etcd's
   *   membership errors (`QUORUMKV_MEMBER_EXISTS`, `QUORUMKV_MEMBER_NOT_FOUND`,
   *   `QUORUMKV_MEMBER_ID_REMOVED`, `QUORUMKV_PEER_ADDRESS_EXISTS`,
   *   `QUORUMKV_MEMBER_NOT_LEARNER`, `QUORUMKV_TOO_MANY_LEARNERS`), a
   *   FaultError otherwise
   */
  proposeConfChange(cc: ConfChange): void {
    checkConfChangeArg(cc);
    const data = encodeConfChangeData(cc);
    this.proposeEntries([{ term: 0, index: 0, type: 'ConfChange', data }]);
  }

  private proposeEntries(entries: Entry[]): void {
    const refusal = this.stepLocal({ type: 'MsgProp', from: this.raft.id, entries });
    if (refusal !== undefined) throw refusalError(refusal.code, refusal.message);
  }

  /**
   * Applies a committed conf change to the configuration (call it after
   * applying a `ConfChange` entry, as etcd). Returns the new ConfState,
   * which the driver should persist with the applied index. A change that
   * is invalid for the current configuration (removing the last voter,
   * demoting a voter) is ignored and the unchanged ConfState returned — all
   * nodes ignore it alike. A leader removed (or made a learner) steps down.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `cc` is malformed (nothing changes)
   */
  applyConfChange(cc: ConfChange): ConfState {
    checkConfChangeArg(cc);
    return this.raft.applyConfChange(cc);
  }

  /**
   * Hands a message from a peer to the state machine. Never throws for
   * message content: messages of local-only types, addressed to another
   * node, from `''` or from itself, with a malformed shape, responses from
   * nodes outside the configuration, and messages with a stale term are
   * ignored or answered as the Raft paper and etcd say (logged at debug
   * through `config.logger`). A term of 0 is only accepted on the types
   * that are forwarded without one (MsgProp, MsgReadIndex, MsgTransferLeader).
   */
  step(m: Message): void {
    const why = this.rejectNetworkMessage(m);
    if (why !== undefined) {
      this.raft.logger?.debug(`${this.raft.id} ignored ${typeof m?.type === 'string' ? m.type : 'message'} from ${describeValue(m?.from)}: ${why}`);
      return;
    }
    const refusal = this.raft.step(m);
    if (refusal !== undefined) {
      this.raft.logger?.debug(`${this.raft.id} dropped ${m.type} from ${m.from}: ${refusal.message}`);
    }
  }

  /** Why a message from the network must be ignored, or undefined when it may be stepped. */
  private rejectNetworkMessage(m: Message): string | undefined {
    if (m === null || typeof m !== 'object') return 'not a message';
    const type = m.type as MessageType;
    if (typeof type !== 'string' || !KNOWN_TYPES.has(type)) return 'unknown message type';
    if (isLocalMessage(type)) return 'local message type';
    if (m.to !== this.raft.id) return `addressed to ${describeValue(m.to)}`;
    if (typeof m.from !== 'string' || m.from === '') return 'no sender';
    if (m.from === this.raft.id) return 'sent by this node';
    if (!isNonNegativeInt(m.term) || !isNonNegativeInt(m.index) || !isNonNegativeInt(m.logTerm) || !isNonNegativeInt(m.commit)) {
      return 'malformed term, index or commit';
    }
    if (!isNonNegativeInt(m.rejectHint) || typeof m.reject !== 'boolean' || !Array.isArray(m.entries)) return 'malformed message';
    if (m.context !== undefined && !(m.context instanceof Uint8Array)) return 'malformed context';
    if (m.term === 0 && type !== 'MsgProp' && type !== 'MsgReadIndex' && type !== 'MsgTransferLeader') return 'term 0';
    if (isResponseMessage(type) && !this.raft.trk.progress.has(m.from)) return 'response from a node outside the configuration';
    switch (type) {
      case 'MsgApp': {
        // Consecutive entries after (index, logTerm), with terms that never
        // decrease and never exceed the leader's term.
        let prevTerm = m.logTerm;
        for (let i = 0; i < m.entries.length; i++) {
          const e = m.entries[i];
          if (e === null || typeof e !== 'object' || !(e.data instanceof Uint8Array)) return 'malformed entry';
          if (e.index !== m.index + 1 + i || !isNonNegativeInt(e.term) || e.term < prevTerm || e.term > m.term) {
            return 'entries are not consecutive after the previous entry';
          }
          if (e.type !== 'Normal' && e.type !== 'ConfChange') return 'malformed entry type';
          prevTerm = e.term;
        }
        if (m.logTerm > m.term) return 'previous entry term beyond the message term';
        return undefined;
      }
      case 'MsgProp': {
        if (m.entries.length === 0) return 'empty proposal';
        for (const e of m.entries) {
          if (e === null || typeof e !== 'object' || !(e.data instanceof Uint8Array)) return 'malformed entry';
          if (e.type !== 'Normal' && e.type !== 'ConfChange') return 'malformed entry type';
        }
        return undefined;
      }
      case 'MsgSnap': {
        const s = m.snapshot;
        if (s === undefined || s === null || typeof s !== 'object' || s.metadata === null || typeof s.metadata !== 'object') {
          return 'MsgSnap without a snapshot';
        }
        if (!(s.data instanceof Uint8Array)) return 'malformed snapshot data';
        const md = s.metadata;
        if (!isNonNegativeInt(md.index) || !isNonNegativeInt(md.term) || (md.index > 0 && md.term === 0)) return 'malformed snapshot metadata';
        const cs = md.confState;
        if (cs === null || typeof cs !== 'object' || !Array.isArray(cs.voters) || !Array.isArray(cs.learners)) return 'malformed snapshot conf state';
        if (md.term > m.term) return 'snapshot term beyond the message term';
        return undefined;
      }
      case 'MsgReadIndex':
        if (m.context === undefined || m.context.length === 0) return 'MsgReadIndex without a context';
        return undefined;
      default:
        return undefined;
    }
  }

  private stepLocal(fields: Partial<Message> & Pick<Message, 'type'>): StepRefusal | undefined {
    const m: Message = {
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
    return this.raft.step(m);
  }

  /**
   * Requests a linearizable read (Raft thesis §6.4). When confirmed, a
   * {@link ReadState} `{ index, requestCtx: context }` appears in a later
   * Ready: serve the read once the state machine has applied up to `index`.
   * With `'safe'` reads the leader confirms its leadership with a heartbeat
   * round, and holds requests until it has committed an entry of its term;
   * with `'leaseBased'` it answers from its lease. A single-voter cluster
   * answers at once. Followers forward the request to the leader.
   * A request may be silently lost: as in etcd, one made while no leader is
   * known is dropped (logged), and a leader change or a lost message loses
   * it too. Callers retry after a timeout (or when a leader is known again,
   * see `status().softState.lead`).
   * @param context - a unique, non-empty request id (bytes); requests with a context already pending are merged
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `context` is empty or not a Uint8Array whose bytes can be read
   */
  readIndex(context: Uint8Array): void {
    checkBytesArg(context, 'read index context');
    if (context.length === 0) invalidArgument('read index context must be a non-empty Uint8Array');
    this.stepLocal({ type: 'MsgReadIndex', from: this.raft.id, context });
  }

  /**
   * Asks the leader to hand leadership to `to` (thesis §3.10): the leader
   * stops accepting proposals, brings `to` up to date, then sends it
   * MsgTimeoutNow so that it campaigns at once. The transfer is abandoned
   * after an election timeout. On a follower the request is forwarded to the
   * leader; without a known leader it is ignored. Transfers to learners or
   * non-members are ignored.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `to` is not a non-empty string
   */
  transferLeader(to: string): void {
    if (typeof to !== 'string' || to === '') invalidArgument('transfer target must be a non-empty node id');
    this.stepLocal({ type: 'MsgTransferLeader', from: to });
  }

  /**
   * Tells the leader that the last message to `id` could not be delivered:
   * a peer in the replicate state goes back to probing.
   */
  reportUnreachable(id: string): void {
    if (typeof id !== 'string' || id === '') invalidArgument('node id must be a non-empty string');
    this.stepLocal({ type: 'MsgUnreachable', from: id });
  }

  /**
   * Reports the outcome of sending a MsgSnap to `id`: the peer leaves the
   * snapshot state for probe, from after the snapshot on `'finish'` and from
   * its match index on `'failure'`; the next MsgApp waits for a heartbeat
   * response (etcd `ReportSnapshot`).
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` on an empty id or unknown status
   */
  reportSnapshot(id: string, status: SnapshotStatus): void {
    if (typeof id !== 'string' || id === '') invalidArgument('node id must be a non-empty string');
    if (status !== 'finish' && status !== 'failure') invalidArgument(`unknown snapshot status ${describeValue(status)}`);
    this.stepLocal({ type: 'MsgSnapStatus', from: id, reject: status === 'failure' });
  }

  /**
   * True when a call to {@link RawNode.ready} would return something to do.
   * Cheap (no log reads beyond index lookups). False while a Ready is
   * outstanding (between `ready()` and `advance()`): check again after
   * `advance()`.
   */
  hasReady(): boolean {
    if (this.pending !== undefined) return false;
    const r = this.raft;
    if (r.msgs.length !== 0 || r.readStates.length !== 0) return true;
    const u = r.raftLog.unstable;
    if (u.entries.length !== 0 || u.snapshot !== undefined) return true;
    if (r.lead !== this.prevSoftSt.lead || r.state !== this.prevSoftSt.raftState) return true;
    const hs = this.prevHardSt;
    if (r.term !== hs.term || r.vote !== hs.vote || r.raftLog.committed !== hs.commit) return true;
    return r.raftLog.hasNextCommittedEnts();
  }

  /**
   * Collects the work to do (see {@link Ready} for the order the driver must
   * follow). Must be followed by {@link RawNode.advance} before the next
   * `ready()`.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when the previous Ready was not advanced
   */
  ready(): Ready {
    if (this.pending !== undefined) invalidArgument('advance() must be called before the next ready()');
    const r = this.raft;
    const log = r.raftLog;
    const entries = log.unstableEntries();
    const committedEntries = log.nextCommittedEnts();
    const rd: Ready = {
      readStates: r.readStates,
      entries,
      committedEntries,
      messages: r.msgs,
      mustSync: false,
    };
    r.readStates = [];
    r.msgs = [];
    if (r.lead !== this.prevSoftSt.lead || r.state !== this.prevSoftSt.raftState) {
      const ss = r.softState();
      rd.softState = ss;
      this.prevSoftSt = ss;
    }
    const prev = this.prevHardSt;
    let mustSync = entries.length > 0;
    if (r.term !== prev.term || r.vote !== prev.vote || log.committed !== prev.commit) {
      const hs = r.hardState();
      rd.hardState = hs;
      if (hs.term !== prev.term || hs.vote !== prev.vote) mustSync = true;
      this.prevHardSt = hs;
    }
    const snap = log.unstable.snapshot;
    if (snap !== undefined) {
      rd.snapshot = snap;
      mustSync = true;
    }
    rd.mustSync = mustSync;
    r.confChangeApplying = committedEntries.some((e) => e.type === 'ConfChange');
    const lastEntry = entries.length > 0 ? entries[entries.length - 1]! : undefined;
    const lastCommitted = committedEntries.length > 0 ? committedEntries[committedEntries.length - 1]! : undefined;
    this.pending = {
      lastEntryIndex: lastEntry?.index ?? 0,
      lastEntryTerm: lastEntry?.term ?? 0,
      snapshotIndex: snap?.metadata.index ?? 0,
      appliedTo: lastCommitted !== undefined ? lastCommitted.index : (snap?.metadata.index ?? 0),
      committedSize: committedEntries.length > 0 ? payloadsSize(committedEntries) : 0,
    };
    return rd;
  }

  /**
   * Acknowledges the last Ready: its entries and snapshot are now in the
   * storage, its committed entries (or snapshot) applied. The driver must
   * have done everything the Ready asked first.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when no Ready is outstanding
   */
  advance(): void {
    const p = this.pending;
    if (p === undefined) invalidArgument('advance() called without an outstanding ready()');
    this.pending = undefined;
    const r = this.raft;
    r.confChangeApplying = false;
    if (p.appliedTo > r.raftLog.applied) r.raftLog.appliedTo(p.appliedTo);
    if (p.committedSize > 0) r.reduceUncommittedSize(p.committedSize);
    if (p.lastEntryIndex > 0) r.raftLog.stableTo(p.lastEntryIndex, p.lastEntryTerm);
    if (p.snapshotIndex > 0) r.raftLog.stableSnapTo(p.snapshotIndex);
  }

  /** A snapshot of the node's state for diagnostics (`progress` only on the leader). */
  status(): RaftStatus {
    const r = this.raft;
    const st: RaftStatus = {
      id: r.id,
      hardState: r.hardState(),
      softState: r.softState(),
      applied: r.raftLog.applied,
      config: r.trk.confState(),
      leadTransferee: r.leadTransferee,
    };
    if (r.state === 'leader') {
      const progress: Record<string, ProgressStatus> = {};
      r.trk.visit((id, pr) => {
        progress[id] = {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          pendingSnapshot: pr.pendingSnapshot,
          recentActive: pr.recentActive,
          isLearner: pr.isLearner,
          inflightsFull: pr.inflights.full(),
        };
      });
      st.progress = progress;
    }
    return st;
  }
}
