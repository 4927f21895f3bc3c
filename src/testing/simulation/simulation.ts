/**
 * `Simulation`: a whole quorumkv cluster in one process, on one virtual
 * clock and one faulty in-memory network, driven by one seed.
 * @module
 */
import { checkOptionsArg, type NoKeyMissing } from '../../option-keys.js';
import type { AbstractLevel } from 'abstract-level';
import { ErrorCode, FaultError, UsageError, isQuorumError } from '../../errors.js';
import { checkFiniteMs, describeJson, describeValue } from '../../arg-values.js';
import { GatedClock, NodeGate } from './node-gate.js';
import { RaftNode, VirtualClock, type StateMachine } from '../../node/index.js';
import { KvNode, type Watch } from '../../server/index.js';
import { CrashableLevel, LevelLogStorage } from '../../storage/index.js';
import { MemoryNetwork, type DelayRange, type Link, type NetworkEvent } from '../../transport/index.js';
import { HistoryRecorder, type Operation } from '../history.js';
import type { ConfState } from '../../raftpb/index.js';
import type { KeyRange as ModelKeyRange } from '../key-range.js';
import { checkLinearizable, type CheckOptions } from '../linearizability/check.js';
import type { CheckResult } from '../linearizability/result.js';
import { kvModel } from '../models/kv.js';
import type { KvInput, KvOutput } from '../models/kv-types.js';
import { checkWatch, type WatchEventRecord, type WatchStreamRecord } from '../watch-checker.js';
import { buildCheckedHistory, highestRevisionSeen, resolveUnknownWrites } from './checked-history.js';
import { CommittedHistory } from './committed-history.js';
import { checkFault, describeFault, newMemberId, randomFaultSchedule, type Fault, type MemberChoice, type RandomFaultOptions, type ScheduledFault } from './faults.js';
import { InvariantMonitor } from './invariants.js';
import type { MutableWatchStream } from './recorded-watch.js';
import { SimClient, type ClientTarget, type LeaseRecord, type SimClientHost, type SimClientOptions } from './sim-client.js';
import { SimRandom } from './sim-random.js';
import { SimTransport } from './sim-transport.js';
import { SimulationError } from './simulation-error.js';
import { Trace } from './trace.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyLevel = AbstractLevel<any, Uint8Array, Uint8Array>;
type Db = CrashableLevel<Uint8Array, Uint8Array>;

const VIEW = { keyEncoding: 'view', valueEncoding: 'view' } as const;

/**
 * Builds the state machine of one member for `kind: 'raft'`, on each start
 * and restart. `db` is the member's own sublevel (durable like the Raft log:
 * it loses its unsynced writes in a crash); `lifetime` is 0 on the first
 * start and counts restarts.
 */
export type StateMachineFactory = (context: { id: string; db: AnyLevel; lifetime: number }) => StateMachine<unknown> | Promise<StateMachine<unknown>>;

/** Rates and delay of the simulated network (all links). */
export interface NetworkFaultOptions {
  /** Probability that a message is lost. Default 0. */
  dropRate?: number;
  /** Probability that a message is delivered twice (never a forwarded proposal; see `NEVER_DUPLICATED`), in [0, 1]. Default 0. */
  duplicateRate?: number;
  /** Probability that a message overtakes others in flight on its link. Default 0. */
  reorderRate?: number;
  /** Per-message delay, uniform in whole virtual ms. Default 1 to 3. */
  delay?: DelayRange;
}

/** Options of {@link Simulation}. Times are virtual milliseconds unless named in ticks. */
export interface SimulationOptions {
  /** The seed of every random choice (network faults, election jitter, random faults, traffic). A safe integer. */
  seed: number;
  /** 3 or 5 members (ids `a`, `b`, `c`, ...), or the ids themselves. Default 3. */
  nodes?: 3 | 5 | readonly string[];
  /** `'kv'` (default): every member is a `KvNode`. `'raft'`: a `RaftNode` with the state machine of `stateMachine`. */
  kind?: 'kv' | 'raft';
  /** The state machine factory, required with `kind: 'raft'`. */
  stateMachine?: StateMachineFactory;
  /** Raft tick: a positive whole number of ms, as the members take it. Default 10. */
  tickMs?: number;
  /** Election timeout in ticks (randomized in `[n, 2n)`): a positive integer greater than `heartbeatTicks`. Default 10. */
  electionTicks?: number;
  /** Heartbeat interval in ticks: a positive integer. Default 1. */
  heartbeatTicks?: number;
  /** How long a member waits for a proposal or a ReadIndex before `QUORUMKV_TIMEOUT`: a positive whole number of ms. Default 1000. */
  requestTimeoutMs?: number;
  /** How often the leader looks for expired leases (`kind: 'kv'`): a positive whole number of ms. Default 50. */
  leaseCheckMs?: number;
  /** Snapshot every this many applied entries: a positive integer. Default 1000. */
  snapshotEntries?: number;
  /** Entries kept behind a snapshot for slow followers (a non-negative integer, as KvNode's); one further behind gets the snapshot (`MsgSnap`). Default 5000. */
  snapshotCatchUpEntries?: number;
  /**
   * KvNode's `syncStore`: fsync the store's batch writes (a boolean). Default true (as
   * KvNode); with false, a crash also loses the store's unsynced batches,
   * which the members apply again from their Raft logs.
   */
  syncStore?: boolean;
  /** Network rates and delay at the start (and what `calm` returns to). */
  faults?: NetworkFaultOptions;
  /** How often the store hashes of the members are compared, in virtual ms (a non-negative number). Default 100; 0 turns it off. */
  hashEveryMs?: number;
  /** How many trace lines to keep for failure reports and {@link Simulation.traceLines}: a non-negative integer. Default 1000; `Infinity` keeps every line. */
  traceLines?: number;
  /**
   * Event-loop turns (`setImmediate`) given to asynchronous work after each
   * virtual millisecond: a positive integer. Default 3. Work needing more turns continues in the
   * next millisecond; the run stays deterministic either way.
   */
  settleRounds?: number;
  /**
   * Fatal member errors (a member stopping itself) whose message matches
   * one of these are treated as a crash of that member, recorded in
   * {@link Simulation.knownIssues}, instead of failing the simulation: for
   * bugs that are reported but not fixed yet, so that a run can go on
   * looking for others. Default: none (every fatal error is a violation).
   * An array of `RegExp`; a global or sticky one is matched as if it were
   * neither (its `lastIndex` would make `test` fail every other time).
   */
  knownFatalErrors?: readonly RegExp[];
}

/** The outcome of a check ({@link Simulation.checkLinearizable}, {@link Simulation.checkWatches}, {@link Simulation.checkProgress}). */
export interface SimulationVerdict {
  /** True when the check passed. */
  ok: boolean;
  /** `ok`, `illegal` (a violation was found) or `unknown` (the check could not decide, e.g. out of time). */
  result: CheckResult;
  /** A readable report: the verdict, and on failure the evidence and the seed. */
  describe(): string;
}

/** What {@link Simulation.checkConvergence} found. */
export interface ConvergenceVerdict extends SimulationVerdict {
  /** Each member's state when they were compared (or, on a timeout, when the budget ran out). */
  members: { id: string; up: boolean; applied: number | undefined; revision: number | undefined; compactRevision: number | undefined; hash: number | undefined }[];
}

/** What {@link Simulation.checkProgress} measured. */
export interface ProgressVerdict extends SimulationVerdict {
  /** Virtual ms from the start of the check until a write committed (the budget when none did). */
  ms: number;
}

interface Member {
  readonly id: string;
  /** A founding member (else one a replacement added, opened with `join: true`). */
  readonly founding: boolean;
  /** Still in the cluster: false once its removal is applied (see {@link Simulation.replace}). */
  inCluster: boolean;
  /** Added as a learner and not promoted yet. */
  learner: boolean;
  /** Shut down for good after its removal. */
  retired: boolean;
  readonly db: Db;
  lifetime: number;
  gate: NodeGate;
  status: 'up' | 'down';
  kv: KvNode | undefined;
  raft: RaftNode<unknown> | undefined;
  sm: StateMachine<unknown> | undefined;
  /** Serializes crash and restart of this member. */
  chain: Promise<void>;
  /** Counts pauses and resumes: a pause's timer resumes the member only if nothing paused or resumed it since. */
  pauses: number;
}

const immediate = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** @throws UsageError `QUORUMKV_INVALID_ARGUMENT` unless `rate` is a probability in [0, 1] */
function checkDuplicateRate(rate: unknown): void {
  if (typeof rate !== 'number' || !(rate >= 0 && rate <= 1)) {
    throw new UsageError(ErrorCode.INVALID_ARGUMENT, `duplicate rate must be a probability in [0, 1], got ${describeValue(rate)}`);
  }
}

/** A check's time budget: absent, or a finite number of virtual ms >= 0. */
function checkBudget(v: unknown, what: string): void {
  if (v !== undefined) checkFiniteMs(v, what);
}

function memberIds(nodes: SimulationOptions['nodes']): string[] {
  if (nodes === undefined || nodes === 3) return ['a', 'b', 'c'];
  if (nodes === 5) return ['a', 'b', 'c', 'd', 'e'];
  if (!Array.isArray(nodes) || nodes.length === 0 || nodes.some((n) => typeof n !== 'string' || n === '') || new Set(nodes).size !== nodes.length) {
    throw new UsageError(ErrorCode.INVALID_CONFIG, 'nodes must be 3, 5 or a list of unique non-empty ids');
  }
  return [...nodes];
}

/** A positive whole number of ms, as KvNode.open and RaftNode.create take it (clocks keep no fraction). */
function positiveMs(v: number | undefined, name: string, def: number): number {
  if (v === undefined) return def;
  if (!(typeof v === 'number' && Number.isSafeInteger(v) && v > 0)) throw new UsageError(ErrorCode.INVALID_CONFIG, `${name} must be a positive whole number of ms (got ${describeValue(v)})`);
  return v;
}

/** A count, checked as KvNode.open checks it: a safe integer at least `min` (1 or 0). */
function count(v: number | undefined, name: string, def: number, min: 0 | 1): number {
  if (v === undefined) return def;
  if (!(typeof v === 'number' && Number.isSafeInteger(v) && v >= min)) {
    throw new UsageError(ErrorCode.INVALID_CONFIG, `${name} must be a ${min === 1 ? 'positive' : 'non-negative'} integer`);
  }
  return v;
}

/** A number of trace lines to keep: a non-negative safe integer, or `Infinity` (every line). */
function traceLinesOf(v: number | undefined): number {
  if (v === undefined) return 1000;
  // a fraction wrote lines at fractional ring positions, NaN or a negative number kept none
  if (v !== Infinity && !(typeof v === 'number' && Number.isSafeInteger(v) && v >= 0)) {
    throw new UsageError(ErrorCode.INVALID_CONFIG, `traceLines must be a non-negative integer or Infinity, got ${describeValue(v)}`);
  }
  return v;
}

/**
 * The patterns of `knownFatalErrors`: an array of `RegExp`, each copied
 * without the global and sticky flags, whose `lastIndex` made `test` start
 * where the last match ended (and fail every other time).
 */
function fatalPatterns(v: readonly RegExp[] | undefined): readonly RegExp[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every((re) => re instanceof RegExp)) {
    throw new UsageError(ErrorCode.INVALID_CONFIG, `knownFatalErrors must be an array of RegExp, got ${describeValue(v)}`);
  }
  return v.map((re: RegExp) => (re.global || re.sticky ? new RegExp(re.source, re.flags.replace(/[gy]/g, '')) : re));
}

/** Every key of {@link SimulationOptions}: any other is refused. */
const SIMULATION_OPTION_KEYS = [
  'seed',
  'nodes',
  'kind',
  'stateMachine',
  'tickMs',
  'electionTicks',
  'heartbeatTicks',
  'requestTimeoutMs',
  'leaseCheckMs',
  'snapshotEntries',
  'snapshotCatchUpEntries',
  'syncStore',
  'faults',
  'hashEveryMs',
  'traceLines',
  'settleRounds',
  'knownFatalErrors',
] as const satisfies readonly (keyof SimulationOptions)[];
// compiles only while the list names every key of the interface
type SimulationOptionKeysComplete = NoKeyMissing<Exclude<keyof SimulationOptions, (typeof SIMULATION_OPTION_KEYS)[number]>>;

/**
 * A deterministic cluster for tests: N members in one process on one
 * {@link VirtualClock} and one {@link MemoryNetwork}, every random choice
 * drawn from one seed, safety invariants checked at every virtual
 * millisecond, client operations recorded for the linearizability and watch
 * checkers.
 *
 * ```ts
 * const sim = new Simulation({ seed: 7, nodes: 3 });
 * await sim.start();
 * await sim.until(() => sim.leader() !== undefined);
 * const c = sim.client('a');
 * await sim.drive(c.put('k', 'v1'));
 * sim.partition(['a'], ['b', 'c']);
 * const write = c.put('k', 'v2');       // a is cut off: this waits, then times out
 * await sim.run(2000);
 * sim.heal();
 * await sim.drive(write.catch(() => undefined));
 * assert.ok(sim.checkLinearizable().ok);
 * await sim.close();
 * ```
 *
 * How time moves: only {@link run}, {@link until} and {@link drive} move
 * virtual time, one millisecond at a time; after each millisecond's timers
 * fire, asynchronous work gets a fixed number of event-loop turns
 * (`settleRounds`), then the invariants are checked. Nothing reads real
 * time, so a seed replays exactly: {@link traceHash} is the same on every
 * run with the same seed and the same calls. A test must not read it
 * either: bound a wait with {@link timeoutSignal}, not
 * `AbortSignal.timeout`, and use {@link clock} for timers and {@link now}
 * for the time.
 */
export class Simulation {
  /** The seed. */
  readonly seed: number;
  /** Every member id ever, in the order they joined. */
  private readonly order: string[] = [];
  /** The founding members. */
  private readonly founders: readonly string[];
  /** Every id taken: members, removed members, and the new ids of scheduled replacements. */
  private readonly usedIds = new Set<string>();
  /** `kv` or `raft`. */
  readonly kind: 'kv' | 'raft';
  /** The virtual clock every member runs on. */
  readonly clock = new VirtualClock();
  /** The simulated network (for its counters; change faults through the simulation). */
  readonly network: MemoryNetwork;
  /** The root random stream; use `random.fork(name)` for choices of your own. */
  readonly random: SimRandom;
  /** Election timeout in virtual ms (`tickMs × electionTicks`). */
  readonly electionTimeoutMs: number;

  private readonly opts: Required<Omit<SimulationOptions, 'stateMachine' | 'nodes' | 'faults' | 'kind' | 'knownFatalErrors'>>;
  private readonly knownFatal: readonly RegExp[];
  private readonly known: string[] = [];
  private readonly factory: StateMachineFactory | undefined;
  private readonly base: { dropRate: number; duplicateRate: number; reorderRate: number; delay: DelayRange };
  private duplicateRate = 0;
  private readonly trace: Trace;
  private readonly monitor: InvariantMonitor;
  private readonly recorder: HistoryRecorder<KvInput, KvOutput>;
  private readonly committed: CommittedHistory;
  /** Names of the clients made with a `wrap`: their unknown outcomes are not settled by the committed history. */
  private readonly wrappedClients = new Set<string | number>();
  private readonly members = new Map<string, Member>();
  private readonly faultRng: SimRandom;
  private readonly dupRng: SimRandom;
  private readonly watchStreams: MutableWatchStream[] = [];
  private readonly leaseLog: LeaseRecord[] = [];
  private readonly unmodeled: ModelKeyRange[] = [];
  private readonly clientHost: SimClientHost;
  private clients = 0;
  private failure: SimulationError | undefined;
  private reported = 0;
  private started = false;
  private closed = false;
  private driving = false;
  private nextHashAt: number;
  private histMs = -1;
  private histSeq = 0;
  private background: Promise<void> = Promise.resolve();
  private progressSeq = 0;
  private maxCompactRevision = 0;
  /** Replacements run one at a time: each waits for the one before. */
  private reconfig: Promise<unknown> = Promise.resolve();
  private readonly reconfigRng: SimRandom;
  private pendingReplacements = 0;
  /** The virtual timers of the {@link timeoutSignal} signals not aborted yet: `close()` cancels them. */
  private readonly signalTimers = new Set<unknown>();

  /**
   * @throws UsageError `QUORUMKV_INVALID_CONFIG` for bad options, an option
   *   of a name the options (or `faults`) do not declare included: a
   *   `traceLines` that is not a non-negative integer or `Infinity`, a
   *   `settleRounds` that is not a positive integer, `knownFatalErrors` that
   *   are not an array of `RegExp`, ...
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for a rate of `faults`
   *   outside [0, 1] or a `delay` that is not integers
   *   `0 <= minMs <= maxMs` (as {@link setDropRate} and the others refuse them)
   */
  constructor(options: SimulationOptions) {
    if (options === null || typeof options !== 'object') throw new UsageError(ErrorCode.INVALID_CONFIG, 'options are required');
    if (!Number.isSafeInteger(options.seed)) throw new UsageError(ErrorCode.INVALID_CONFIG, 'seed must be a safe integer');
    checkOptionsArg(options, SIMULATION_OPTION_KEYS, 'Simulation options', ErrorCode.INVALID_CONFIG);
    checkOptionsArg(options.faults, ['dropRate', 'duplicateRate', 'reorderRate', 'delay'] satisfies (keyof NetworkFaultOptions)[], 'Simulation options.faults', ErrorCode.INVALID_CONFIG);
    checkOptionsArg(options.faults?.delay, ['minMs', 'maxMs'] satisfies (keyof DelayRange)[], 'Simulation options.faults.delay', ErrorCode.INVALID_CONFIG);
    this.seed = options.seed;
    this.founders = memberIds(options.nodes);
    this.kind = options.kind ?? 'kv';
    if (this.kind !== 'kv' && this.kind !== 'raft') throw new UsageError(ErrorCode.INVALID_CONFIG, "kind must be 'kv' or 'raft'");
    if (this.kind === 'raft' && typeof options.stateMachine !== 'function') {
      throw new UsageError(ErrorCode.INVALID_CONFIG, "kind 'raft' needs a stateMachine factory");
    }
    this.factory = options.stateMachine;
    this.opts = {
      seed: options.seed,
      tickMs: positiveMs(options.tickMs, 'tickMs', 10),
      electionTicks: count(options.electionTicks, 'electionTicks', 10, 1),
      heartbeatTicks: count(options.heartbeatTicks, 'heartbeatTicks', 1, 1),
      requestTimeoutMs: positiveMs(options.requestTimeoutMs, 'requestTimeoutMs', 1000),
      leaseCheckMs: positiveMs(options.leaseCheckMs, 'leaseCheckMs', 50),
      snapshotEntries: count(options.snapshotEntries, 'snapshotEntries', 1000, 1),
      snapshotCatchUpEntries: count(options.snapshotCatchUpEntries, 'snapshotCatchUpEntries', 5000, 0),
      syncStore: options.syncStore ?? true,
      hashEveryMs: options.hashEveryMs ?? 100,
      traceLines: traceLinesOf(options.traceLines),
      // NaN ran no turn at all, Infinity never ended a millisecond
      settleRounds: count(options.settleRounds, 'settleRounds', 3, 1),
    };
    // as KvNode.open (and Raft's own configuration) checks them: found here,
    // not when the first member opens
    if (this.opts.heartbeatTicks >= this.opts.electionTicks) throw new UsageError(ErrorCode.INVALID_CONFIG, 'electionTicks must be greater than heartbeatTicks');
    if (typeof this.opts.syncStore !== 'boolean') throw new UsageError(ErrorCode.INVALID_CONFIG, 'syncStore must be a boolean');
    const hashEvery = this.opts.hashEveryMs;
    if (!(typeof hashEvery === 'number' && Number.isFinite(hashEvery) && hashEvery >= 0)) {
      throw new UsageError(ErrorCode.INVALID_CONFIG, 'hashEveryMs must be a non-negative number of ms (0 turns the comparison off)');
    }
    this.electionTimeoutMs = this.opts.tickMs * this.opts.electionTicks;
    this.knownFatal = fatalPatterns(options.knownFatalErrors);
    const f = options.faults ?? {};
    this.base = {
      dropRate: f.dropRate ?? 0,
      duplicateRate: f.duplicateRate ?? 0,
      reorderRate: f.reorderRate ?? 0,
      delay: f.delay ?? { minMs: 1, maxMs: 3 },
    };
    // the network checks the other rates and the delay (applyBaseFaults)
    checkDuplicateRate(this.base.duplicateRate);
    this.random = new SimRandom(options.seed);
    this.faultRng = this.random.fork('faults');
    this.dupRng = this.random.fork('duplicate');
    this.reconfigRng = this.random.fork('reconfig');
    this.trace = new Trace(this.opts.traceLines);
    this.monitor = new InvariantMonitor(() => this.clock.now());
    this.recorder = new HistoryRecorder<KvInput, KvOutput>({ clock: () => this.historyNow() });
    this.committed = new CommittedHistory(this.monitor);
    this.nextHashAt = this.opts.hashEveryMs;
    this.network = new MemoryNetwork({
      seed: this.random.fork('network').seed,
      scheduler: {
        schedule: (delayMs, fn) => {
          if (delayMs <= 0) queueMicrotask(fn);
          else this.clock.setTimeout(fn, delayMs);
        },
      },
      onEvent: (e) => this.onNetworkEvent(e),
    });
    this.applyBaseFaults();
    for (const id of this.founders) this.addMemberRecord(id, true);
    this.clientHost = {
      recorder: this.recorder,
      historyNow: () => this.historyNow(),
      trace: (text) => this.log(text),
      target: (id) => this.target(id),
      unmodeledWrite: (ranges) => this.unmodeled.push(...ranges),
      lease: (r) => this.leaseLog.push(r),
      watchOpened: (r) => this.watchStreams.push(r),
    };
  }

  /**
   * The members of the cluster, in the order they joined: the founding
   * members, less those a replacement removed, plus the members it added
   * (from when they are added as learners). Without replacements, the ids
   * of `nodes`.
   */
  get ids(): readonly string[] {
    return this.order.filter((id) => this.members.get(id)!.inCluster);
  }

  private addMemberRecord(id: string, founding: boolean): Member {
    const m: Member = {
      id,
      founding,
      inCluster: true,
      learner: !founding,
      retired: false,
      db: new CrashableLevel<Uint8Array, Uint8Array>(VIEW),
      lifetime: 0,
      gate: new NodeGate(),
      status: 'down',
      kv: undefined,
      raft: undefined,
      sm: undefined,
      chain: Promise.resolve(),
      pauses: 0,
    };
    this.members.set(id, m);
    this.order.push(id);
    this.usedIds.add(id);
    return m;
  }

  // ------------------------------------------------------------ lifecycle

  /**
   * Opens every member (a new cluster). Resolves once they are running; a
   * leader is elected only as virtual time moves:
   * `await sim.until(() => sim.leader() !== undefined)`.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when already started
   */
  async start(): Promise<void> {
    if (this.started) throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'the simulation is already started');
    this.started = true;
    this.log(`start seed ${this.seed} members ${this.ids.join(',')} kind ${this.kind}`);
    for (const id of this.founders) await this.open(this.member(id));
  }

  /**
   * Stops every member and closes their databases, and cancels the timers of
   * the {@link timeoutSignal} signals not aborted yet (they never abort).
   * The simulation cannot be used afterwards. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const timer of this.signalTimers) this.clock.clearTimeout(timer);
    this.signalTimers.clear();
    for (const m of this.members.values()) {
      await m.chain.catch(() => undefined);
      const node = m.kv ?? m.raft;
      m.gate.kill();
      m.status = 'down';
      m.kv = undefined;
      m.raft = undefined;
      if (node !== undefined) await node.close().catch(() => undefined);
      if (m.db.status === 'open') await m.db.close().catch(() => undefined);
    }
  }

  /** Same as {@link close}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ------------------------------------------------------------ members

  /**
   * The `KvNode` of a running member (`kind: 'kv'`).
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an unknown or crashed member, or with `kind: 'raft'`
   */
  node(id: string): KvNode {
    const m = this.member(id);
    if (this.kind !== 'kv') throw new UsageError(ErrorCode.INVALID_ARGUMENT, "node() needs kind 'kv'; use raft()");
    if (m.kv === undefined) throw new UsageError(ErrorCode.INVALID_ARGUMENT, `member ${id} is not running`);
    return m.kv;
  }

  /**
   * The `RaftNode` of a running member (for `kind: 'kv'`, the one under its `KvNode`).
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an unknown or crashed member
   */
  raft(id: string): RaftNode<unknown> {
    const m = this.member(id);
    const r = m.kv?.raft ?? m.raft;
    if (r === undefined || m.status !== 'up') throw new UsageError(ErrorCode.INVALID_ARGUMENT, `member ${id} is not running`);
    return r as RaftNode<unknown>;
  }

  /**
   * The state machine of a running member (`kind: 'raft'`).
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an unknown or crashed member, or with `kind: 'kv'`
   */
  stateMachine(id: string): StateMachine<unknown> {
    const m = this.member(id);
    if (m.sm === undefined) throw new UsageError(ErrorCode.INVALID_ARGUMENT, `member ${id} has no running state machine`);
    return m.sm;
  }

  /** True while member `id` runs (not crashed, nor shut down after its removal). */
  isUp(id: string): boolean {
    return this.member(id).status === 'up';
  }

  /** Ids of the running members. */
  upMembers(): string[] {
    return this.ids.filter((id) => this.member(id).status === 'up');
  }

  /**
   * The id of the leader: among running members that believe they lead,
   * the one with the highest term (a deposed leader cut off from the others
   * may still believe it leads an older term). `undefined` when none.
   */
  leaderId(): string | undefined {
    let best: string | undefined;
    let bestTerm = -1;
    for (const id of this.ids) {
      const m = this.member(id);
      const r = m.kv?.raft ?? m.raft;
      if (m.status !== 'up' || r === undefined || !r.isLeader) continue;
      const term = r.status().term;
      if (term > bestTerm) {
        best = id;
        bestTerm = term;
      }
    }
    return best;
  }

  /**
   * The leader's `KvNode` (see {@link leaderId}); `undefined` when none.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` with `kind: 'raft'` (no
   *   `KvNode`s: use {@link leaderId})
   */
  leader(): KvNode | undefined {
    if (this.kind !== 'kv') throw new UsageError(ErrorCode.INVALID_ARGUMENT, "leader() needs kind 'kv' (use leaderId() with kind 'raft')");
    const id = this.leaderId();
    return id === undefined ? undefined : this.member(id).kv;
  }

  /**
   * A client bound to member `id` that records its operations (see
   * {@link SimClient}). The member may crash and restart: the client
   * follows it.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an unknown member or with `kind: 'raft'`, or an option of another name
   */
  client(id: string, options: SimClientOptions = {}): SimClient {
    checkOptionsArg(options, ['name', 'wrap'] satisfies (keyof SimClientOptions)[], 'client options');
    this.member(id);
    if (this.kind !== 'kv') throw new UsageError(ErrorCode.INVALID_ARGUMENT, "clients need kind 'kv'");
    this.clients++;
    const name = options.name ?? `c${this.clients}@${id}`;
    if (options.wrap !== undefined) this.wrappedClients.add(name);
    return new SimClient(this.clientHost, id, name, options.wrap, this.random.fork(`client:${this.clients}:${name}`).asFunction());
  }

  // ------------------------------------------------------------ time

  /** Current virtual time, ms since the start. */
  now(): number {
    return this.clock.now();
  }

  /**
   * An `AbortSignal` aborted `ms` virtual milliseconds from now: the
   * simulation's `AbortSignal.timeout(ms)`, to bound a wait (a recipe's
   * `lock`, `campaign`, `wait`, `dequeue`...) inside a simulation.
   * `AbortSignal.timeout` counts real time, which has nothing to do with
   * virtual time (virtual seconds pass in real milliseconds, and not
   * evenly): it aborts at a virtual moment that changes from run to run,
   * and the seed no longer replays.
   *
   * The signal's timer is one of the clock's timers, as the members' ticks
   * and the network's deliveries are: it fires while `run`, `until` or
   * `drive` move time, in the millisecond it is due, in order of due time
   * then creation among the timers due then, and the signal's `abort`
   * listeners run at that virtual time (`sim.now()` is now + `ms`). With
   * `ms` = 0 it aborts when time next moves, not at once (as
   * `AbortSignal.timeout(0)`). It holds no real timer, so it never keeps
   * the process alive; `close()` cancels it, and a signal not aborted by
   * then never is.
   *
   * The abort reason is a `FaultError` `QUORUMKV_TIMEOUT` ("timed out after
   * `ms` virtual ms"), where `AbortSignal.timeout` gives a `TimeoutError`
   * DOMException (WHATWG DOM, "AbortSignal.timeout"). A recipe aborted by
   * it fails, as on any abort, with `QUORUMKV_ABORTED`, this reason as its
   * `cause`.
   *
   * @param ms - virtual milliseconds from now: a whole number >= 0 (the
   *   simulation moves in whole milliseconds)
   * @returns a new signal, not aborted yet
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an `ms` that is not
   *   a safe integer >= 0 (a fraction, a negative number, `NaN`,
   *   `Infinity`: use no signal to wait without limit), or after `close()`;
   *   no timer is created
   */
  timeoutSignal(ms: number): AbortSignal {
    if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || ms < 0) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `timeoutSignal(ms) needs a whole number of virtual ms >= 0, not ${describeValue(ms)}`);
    }
    if (this.closed) throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'timeoutSignal(ms) after close(): the simulation is closed and its time no longer moves');
    const controller = new AbortController();
    const timer = this.clock.setTimeout(() => {
      this.signalTimers.delete(timer);
      controller.abort(new FaultError(ErrorCode.TIMEOUT, `timed out after ${ms} virtual ms (the signal of timeoutSignal(${ms}))`));
    }, ms);
    this.signalTimers.add(timer);
    return controller.signal;
  }

  /**
   * Moves virtual time forward by `ms` (a fraction is dropped).
   * @throws SimulationError `QUORUMKV_INVARIANT_VIOLATED` as soon as an invariant breaks
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when called while another run is in progress, or before `start()`,
   *   or for an `ms` that is not a finite number >= 0 (`Infinity` would never return, `NaN` ran nothing)
   */
  async run(ms: number): Promise<void> {
    checkFiniteMs(ms, 'run(ms)');
    const end = this.clock.now() + Math.max(0, Math.floor(ms));
    await this.advanceWhile(() => this.clock.now() < end);
  }

  /**
   * Moves virtual time forward until `cond()` holds (checked before each millisecond).
   * @param options.maxMs - give up after this much virtual time (default 10,000; `Infinity`: never)
   * @param options.what - what is awaited, for the error message ("timed out after 500 virtual ms waiting for <what> (seed 7)")
   * @throws FaultError `QUORUMKV_TIMEOUT` when `cond` does not hold within `maxMs`
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `cond` is not a function (a condition
   *   already evaluated, such as `sim.leaderId() !== undefined`), for an option of another name,
   *   a `maxMs` that is NaN or negative, or a `what` that is not a string
   * @throws SimulationError `QUORUMKV_INVARIANT_VIOLATED` as soon as an invariant breaks
   */
  async until(cond: () => boolean, options: { maxMs?: number; what?: string } = {}): Promise<void> {
    if (typeof cond !== 'function') {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `until(cond) needs a function to call before each millisecond, not ${describeValue(cond)}`);
    }
    checkOptionsArg(options, ['maxMs', 'what'], 'until options');
    if (options.what !== undefined && typeof options.what !== 'string') {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `until options.what must be a string, not ${describeValue(options.what)}`);
    }
    const maxMs = options.maxMs ?? 10_000;
    if (typeof maxMs !== 'number' || Number.isNaN(maxMs) || maxMs < 0) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `maxMs needs a number of virtual ms >= 0, not ${describeValue(maxMs)}`);
    }
    const end = this.clock.now() + maxMs;
    await this.advanceWhile(() => !cond() && this.clock.now() < end);
    if (!cond()) {
      throw new FaultError(ErrorCode.TIMEOUT, `timed out after ${maxMs} virtual ms waiting for ${options.what ?? 'the condition given to until()'} (seed ${this.seed})`);
    }
  }

  /**
   * Moves virtual time forward until `promise` settles, and returns its value (or throws its error).
   * @param options.maxMs - give up after this much virtual time (default 10,000; `Infinity`: never)
   * @throws FaultError `QUORUMKV_TIMEOUT` when it does not settle within `maxMs`
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `promise` is not a promise (or another
   *   thenable), for an option of another name, or a `maxMs` that is NaN or negative
   */
  async drive<T>(promise: Promise<T>, options: { maxMs?: number } = {}): Promise<T> {
    if (!(promise instanceof Promise) && typeof (promise as { then?: unknown } | null | undefined)?.then !== 'function') {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `drive(promise) needs a promise, not ${describeValue(promise)}`);
    }
    checkOptionsArg(options, ['maxMs'], 'drive options');
    let settled = false;
    let value: T | undefined;
    let error: unknown;
    let failed = false;
    Promise.resolve(promise).then(
      (v) => {
        settled = true;
        value = v;
      },
      (e: unknown) => {
        settled = true;
        failed = true;
        error = e;
      },
    );
    await immediate();
    await this.until(() => settled, { maxMs: options.maxMs ?? 10_000, what: 'the promise given to drive() to settle' });
    if (failed) throw error;
    return value as T;
  }

  private async advanceWhile(cond: () => boolean): Promise<void> {
    if (!this.started || this.closed) throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'the simulation is not running (call start(), not after close())');
    if (this.driving) throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'run, until and drive cannot overlap: await the one in progress');
    this.throwIfFailed();
    this.driving = true;
    try {
      while (cond()) await this.step();
    } finally {
      this.driving = false;
    }
  }

  private async step(): Promise<void> {
    try {
      this.clock.advance(1);
    } catch (err) {
      this.violation(`a timer callback threw: ${(err as Error)?.stack ?? String(err)}`);
    }
    for (let i = 0; i < this.opts.settleRounds; i++) await immediate();
    this.poll();
    if (this.opts.hashEveryMs > 0 && this.clock.now() >= this.nextHashAt) {
      this.nextHashAt = this.clock.now() + this.opts.hashEveryMs;
      await this.sampleHashes();
    }
    this.throwIfFailed();
  }

  // ------------------------------------------------------------ invariants

  /** Fatal errors matched by `knownFatalErrors` (each turned into a crash), one line each. */
  knownIssues(): readonly string[] {
    return this.known;
  }

  /** Every invariant violation found so far (empty while all hold). */
  violations(): readonly string[] {
    return this.monitor.violations;
  }

  private violation(text: string): void {
    this.monitor.violations.push(`at ${this.clock.now()} ms: ${text}`);
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
    const v = this.monitor.violations;
    if (v.length > this.reported) {
      this.reported = v.length;
      this.log(`violation ${v[v.length - 1]}`);
      this.failure = new SimulationError(this.seed, this.clock.now(), [...v], this.trace.lines());
      throw this.failure;
    }
  }

  private poll(): void {
    for (const m of this.members.values()) {
      if (m.status !== 'up' || m.gate.isDead) continue;
      const r = m.kv?.raft ?? m.raft;
      if (r === undefined) continue;
      const st = r.status();
      const store = m.kv?.store;
      if (store !== undefined && store.compactRevision() > this.maxCompactRevision) this.maxCompactRevision = store.compactRevision();
      this.monitor.sample({
        id: m.id,
        lifetime: m.lifetime,
        term: st.term,
        commit: st.commit,
        applied: st.applied,
        revision: store?.currentRevision(),
        compactRevision: store?.compactRevision(),
      });
    }
  }

  private async sampleHashes(): Promise<void> {
    for (const m of this.members.values()) {
      const node = m.kv;
      if (m.status !== 'up' || node === undefined) continue;
      const lifetime = m.lifetime;
      const store = node.store;
      const applied = store.appliedIndex();
      let h;
      try {
        h = await store.hash();
      } catch {
        continue; // closing or crashed meanwhile
      }
      if (m.status !== 'up' || m.lifetime !== lifetime || store.appliedIndex() !== applied) continue;
      this.monitor.hashSample(m.id, lifetime, applied, h.revision, h.compactRevision, h.hash);
    }
  }

  // ------------------------------------------------------------ trace

  /** The CRC-32 of the whole trace so far (8 hex digits): equal for two runs of one seed with the same calls. */
  traceHash(): string {
    return this.trace.hash();
  }

  /** The latest trace lines (see `traceLines`), oldest first. */
  traceLines(): string[] {
    return this.trace.lines();
  }

  /**
   * Calls `fn` with every trace line from now on (e.g. to print a replay live).
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `fn` is not a function (it would
   *   have thrown at the next line, inside a fault or a client call)
   */
  onTrace(fn: (line: string) => void): void {
    if (typeof fn !== 'function') throw new UsageError(ErrorCode.INVALID_ARGUMENT, `onTrace needs a function, not ${describeValue(fn)}`);
    this.trace.onLine(fn);
  }

  /**
   * Adds a line of your own to the trace (it counts in {@link traceHash}).
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `text` is not a string (nothing is added)
   */
  log(text: string): void {
    if (typeof text !== 'string') throw new UsageError(ErrorCode.INVALID_ARGUMENT, `log needs a string, not ${describeValue(text)}`);
    this.trace.add(this.clock.now(), text);
  }

  private onNetworkEvent(e: NetworkEvent): void {
    if (e.kind === 'send') return; // a send is implied by its delivery or drop
    this.trace.add(this.clock.now(), `net ${e.kind} ${e.from}>${e.to} ${e.type}${e.reason !== undefined ? ` ${e.reason}` : ''}`);
  }

  /**
   * The history clock's time now, without taking a reading: not before any
   * reading taken so far, and before any taken later (unlike
   * {@link historyNow}, it uses none of the ms's 9,999 tie-breaking steps).
   */
  private historyPeek(): number {
    const ms = this.clock.now();
    return ms === this.histMs ? ms + this.histSeq / 10_000 : ms;
  }

  private historyNow(): number {
    const ms = this.clock.now();
    if (ms !== this.histMs) {
      this.histMs = ms;
      this.histSeq = 0;
    }
    // later readings within one virtual ms are ordered as they happened
    this.histSeq = Math.min(this.histSeq + 1, 9999);
    return ms + this.histSeq / 10_000;
  }

  // ------------------------------------------------------------ faults

  /**
   * Blocks every link between group `a` and group `b` (default: every
   * member not in `a`), both ways. Messages in flight on those links are
   * dropped too.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `a` (or `b`) is not an array of
   *   member ids, or names an unknown member (nothing changes)
   */
  partition(a: readonly string[], b?: readonly string[]): void {
    if (!Array.isArray(a) || (b !== undefined && !Array.isArray(b))) {
      // a string was taken for the list of its characters
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `partition(a, b) needs arrays of member ids, not ${describeValue(Array.isArray(a) ? b : a)}`);
    }
    for (const id of a) this.member(id);
    const other = b ?? this.ids.filter((id) => !a.includes(id));
    for (const id of other) this.member(id);
    this.network.partition(a, other);
    this.log(`fault partition [${a.join(',')}] | [${other.join(',')}]`);
  }

  /**
   * A majority/minority split: the minority has `floor((n - 1) / 2)`
   * members; the leader (if any) is put on the side `leaderIn` names
   * (default: drawn from the seed). Returns the two sides.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an option of another name, or a
   *   `leaderIn` other than `'majority'` and `'minority'` (nothing changes)
   */
  split(options: { leaderIn?: 'majority' | 'minority' } = {}): { majority: string[]; minority: string[] } {
    checkOptionsArg(options, ['leaderIn'], 'split options');
    // another value put the leader in the majority
    if (options.leaderIn !== undefined && options.leaderIn !== 'majority' && options.leaderIn !== 'minority') {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `split options.leaderIn is 'majority' or 'minority', not ${describeValue(options.leaderIn)}`);
    }
    const n = this.ids.length;
    const minSize = Math.max(1, Math.floor((n - 1) / 2));
    const leader = this.leaderId();
    const side = options.leaderIn ?? (this.faultRng.chance(0.5) ? 'minority' : 'majority');
    const rest = this.faultRng.shuffle(this.ids.filter((id) => id !== leader));
    let minority: string[];
    if (leader !== undefined && side === 'minority') minority = [leader, ...rest.slice(0, minSize - 1)];
    else minority = rest.slice(0, minSize);
    const majority = this.ids.filter((id) => !minority.includes(id));
    this.network.partition(minority, majority);
    this.log(`fault split minority [${minority.join(',')}] majority [${majority.join(',')}]`);
    return { majority, minority };
  }

  /**
   * etcd's "bridge" partition: the members but one are split in two sides
   * that cannot reach each other; the remaining member (the bridge, not the
   * leader when there is a choice) reaches both. Returns the layout.
   */
  bridge(): { bridge: string; sides: [string[], string[]] } {
    const leader = this.leaderId();
    const candidates = this.ids.filter((id) => id !== leader);
    const bridge = this.faultRng.pick(candidates.length > 0 ? candidates : this.ids);
    const rest = this.faultRng.shuffle(this.ids.filter((id) => id !== bridge));
    const half = Math.ceil(rest.length / 2);
    const sides: [string[], string[]] = [rest.slice(0, half), rest.slice(half)];
    this.network.partition(sides[0], sides[1]);
    this.log(`fault bridge ${bridge} between [${sides[0].join(',')}] and [${sides[1].join(',')}]`);
    return { bridge, sides };
  }

  /** Blocks messages from `from` to `to` only. */
  partitionOneWay(from: string, to: string): void {
    this.member(from);
    this.member(to);
    this.network.partitionOneWay(from, to);
    this.log(`fault one-way ${from}>${to}`);
  }

  /** Cuts member `id` off from every other member. */
  isolate(id: string): void {
    this.member(id);
    this.network.isolate(id);
    this.log(`fault isolate ${id}`);
  }

  /** Isolates the current leader; returns its id (`undefined`, and nothing done, when there is none). */
  isolateLeader(): string | undefined {
    const id = this.leaderId();
    if (id !== undefined) this.isolate(id);
    else this.log('fault isolate-leader skipped: no leader');
    return id;
  }

  /** Removes every partition and isolation (rates and delays stay). */
  heal(): void {
    this.network.heal();
    this.log('fault heal');
  }

  /** Drops each message with probability `rate`, on every link or on one directed link. */
  setDropRate(rate: number, link?: Link): void {
    this.network.setDropRate(rate, link);
    this.log(`fault drop-rate ${rate}${link !== undefined ? ` ${link.from}>${link.to}` : ''}`);
  }

  /** Delays each message uniformly in `[minMs, maxMs]` virtual ms, on every link or one. */
  setDelay(range: DelayRange, link?: Link): void {
    this.network.setDelay(range, link);
    this.log(`fault delay ${range.minMs}-${range.maxMs}${link !== undefined ? ` ${link.from}>${link.to}` : ''}`);
  }

  /** Lets each message overtake others in flight with probability `rate`. */
  setReorderRate(rate: number, link?: Link): void {
    this.network.setReorderRate(rate, link);
    this.log(`fault reorder-rate ${rate}${link !== undefined ? ` ${link.from}>${link.to}` : ''}`);
  }

  /**
   * Sends each message twice with probability `rate` (every link), except
   * forwarded proposals and snapshots (`NEVER_DUPLICATED`: Raft does not
   * deduplicate proposals, and TCP never duplicates them).
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `rate` is not in [0, 1]
   */
  setDuplicateRate(rate: number): void {
    checkDuplicateRate(rate);
    this.duplicateRate = rate;
    this.log(`fault duplicate-rate ${rate}`);
  }

  /**
   * Crashes member `id` now: it stops without any flush (its timers and
   * messages are dropped at once), its database loses every write not made
   * durable by a synced write (`CrashableLevel.crash()`), and pending calls
   * on it fail. Restart it with {@link restart}.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when it is not running
   */
  async crash(id: string): Promise<void> {
    const m = this.member(id);
    if (m.status !== 'up') throw new UsageError(ErrorCode.INVALID_ARGUMENT, `member ${id} is not running`);
    await this.crashMember(m);
  }

  /**
   * Starts crashed member `id` again from its durable data (new process:
   * new timers, transport and random stream).
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when it is running, or
   *   was removed from the cluster by a replacement
   */
  async restart(id: string): Promise<void> {
    const m = this.member(id);
    if (m.status !== 'down') throw new UsageError(ErrorCode.INVALID_ARGUMENT, `member ${id} is running`);
    if (!m.inCluster) throw new UsageError(ErrorCode.INVALID_ARGUMENT, `member ${id} was removed from the cluster`);
    await this.restartMember(m);
  }

  /**
   * Stops member `id`'s process for `ms` virtual ms, as SIGSTOP or a long
   * GC pause would: its timers and incoming messages are held and delivered
   * in order when it resumes (overdue timers fire at once), its sends wait,
   * and client calls to it wait. Its clock is not stopped: it reads the
   * true virtual time on resume, having missed `ms` of it. Asynchronous
   * work already running (a storage write) is not stopped. Pausing a
   * member that is paused already makes it resume `ms` from now instead;
   * `calm()` resumes it at once.
   * @param ms - virtual ms: a finite number >= 0 (a fraction is dropped)
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when it is not running, or for an `ms`
   *   that is not a finite number >= 0 (nothing changes)
   */
  pauseClock(id: string, ms: number): void {
    // a negative ms resumed it at once, NaN or Infinity never
    checkFiniteMs(ms, 'pauseClock(id, ms)');
    const m = this.member(id);
    if (m.status !== 'up') throw new UsageError(ErrorCode.INVALID_ARGUMENT, `member ${id} is not running`);
    const gate = m.gate;
    gate.pause();
    const pause = ++m.pauses;
    this.log(`fault pause ${id} ${ms} ms`);
    this.clock.setTimeout(() => {
      // a later pause, or calm(), has taken over
      if (m.gate !== gate || gate.isDead || m.pauses !== pause) return;
      this.log(`fault resume ${id}`);
      gate.resume();
    }, Math.floor(ms));
  }

  /**
   * Ends every fault: heals partitions, restarts crashed members, resumes
   * paused ones (their pauses' timers then do nothing) and sets rates and
   * delay back to the configured ones, those set on one link included.
   */
  async calm(): Promise<void> {
    this.network.resetFaults();
    this.applyBaseFaults();
    this.log('fault calm');
    for (const m of this.members.values()) {
      m.pauses++;
      if (m.gate.isPaused) m.gate.resume();
    }
    for (const m of this.members.values()) {
      await m.chain.catch(() => undefined);
      if (m.status === 'down' && m.inCluster) await this.restartMember(m);
    }
  }

  /**
   * Schedules faults at virtual times (ms since the start); each fires when
   * time reaches it. Crashes and restarts run in the background; a failure
   * to restart fails the simulation.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for a time in the past or
   *   not finite, or a fault {@link checkFault} refuses (an unknown type or
   *   member, a rate outside [0, 1], ...); nothing is scheduled then
   */
  schedule(faults: readonly ScheduledFault[]): void {
    const now = this.clock.now();
    const known = [...this.usedIds];
    const reserved: string[] = [];
    for (const f of faults) {
      if (typeof f.at !== 'number' || !(f.at >= now) || !Number.isFinite(f.at)) {
        throw new UsageError(ErrorCode.INVALID_ARGUMENT, `fault at ${describeValue(f.at)} ms is in the past or not finite (now ${now})`);
      }
      checkFault(f.fault, known);
      // a later fault of this schedule may name the new member
      if (f.fault.type === 'replace' && f.fault.by !== undefined) {
        known.push(f.fault.by);
        reserved.push(f.fault.by);
      }
    }
    for (const id of reserved) this.usedIds.add(id);
    for (const f of faults) {
      this.clock.setTimeout(() => this.applyFault(f.fault), f.at - now);
    }
  }

  /**
   * Draws a fault schedule from the seed (see {@link randomFaultSchedule}:
   * partitions, splits, bridges, one-way links, leader isolation, crashes,
   * pauses, drop/delay/duplicate/reorder rates, and with a weight of their
   * own leadership transfers and member replacements; a `calm` at
   * `until`), schedules it and returns it. `from` defaults to now.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `options` is not an object, or for
   *   options {@link randomFaultSchedule} refuses, or a `from` in the past (nothing is scheduled)
   */
  randomFaults(options: RandomFaultOptions): ScheduledFault[] {
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `random fault options must be an object ({ until, ... }), not ${describeValue(options)}`);
    }
    const schedule = randomFaultSchedule(
      this.faultRng.fork(`schedule@${this.clock.now()}`),
      this.ids,
      { ...options, from: options.from ?? this.clock.now() },
      this.base,
      [...this.usedIds],
    );
    this.schedule(schedule);
    return schedule;
  }

  /**
   * Applies one fault now (what a scheduled fault does when it fires).
   * Crashes and restarts run in the background. A fault that names a
   * member not running then (crashed, or removed since) is skipped, as
   * when a scheduled one fires.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for a fault {@link checkFault} refuses,
   *   as {@link schedule} does: an unknown type, a member that never was one, a rate outside
   *   [0, 1], a negative or infinite pause, a delay range that is not integers
   *   `0 <= minMs <= maxMs`, a replacement's `by` that is an id used already (nothing changes)
   */
  inject(fault: Fault): void {
    // unchecked, an unknown type did nothing, an unknown member was skipped,
    // a negative pause resumed at once, and a malformed one threw a TypeError
    checkFault(fault, [...this.usedIds]);
    if (fault.type === 'replace' && fault.by !== undefined) this.usedIds.add(fault.by);
    this.applyFault(fault);
  }

  /** Applies a checked fault (a scheduled one, when it fires). */
  private applyFault(fault: Fault): void {
    this.log(`inject ${describeFault(fault)}`);
    // a fault drawn ahead of a replacement may name a member that is not
    // started yet (a replacement still under way) or one shut down since
    const exists = (id: string | undefined): id is string => id !== undefined && this.members.has(id);
    switch (fault.type) {
      case 'partition': {
        const a = fault.a.filter(exists);
        const b = fault.b?.filter(exists);
        if (a.length > 0) this.partition(a, b);
        break;
      }
      case 'split':
        this.split(fault.leaderIn !== undefined ? { leaderIn: fault.leaderIn } : {});
        break;
      case 'bridge':
        this.bridge();
        break;
      case 'oneWay': {
        const from = this.choose(fault.from);
        const to = this.choose(fault.to, from);
        if (exists(from) && exists(to) && from !== to) this.partitionOneWay(from, to);
        break;
      }
      case 'isolate': {
        const id = this.choose(fault.member);
        if (exists(id)) this.isolate(id);
        break;
      }
      case 'heal':
        this.heal();
        break;
      case 'crash': {
        const id = this.choose(fault.member);
        const m = exists(id) ? this.member(id) : undefined;
        if (m !== undefined && m.status === 'up') this.backgroundTask(() => this.crashMember(m));
        break;
      }
      case 'restart':
        for (const m of this.members.values()) {
          if ((fault.member === 'all' || fault.member === m.id) && m.status === 'down' && m.inCluster) this.backgroundTask(() => this.restartMember(m));
        }
        break;
      case 'pause': {
        const id = this.choose(fault.member);
        if (exists(id) && this.member(id).status === 'up' && !this.member(id).gate.isPaused) this.pauseClock(id, fault.ms);
        break;
      }
      case 'dropRate':
        this.setDropRate(fault.rate);
        break;
      case 'duplicateRate':
        this.setDuplicateRate(fault.rate);
        break;
      case 'reorderRate':
        this.setReorderRate(fault.rate);
        break;
      case 'delay':
        this.setDelay({ minMs: fault.minMs, maxMs: fault.maxMs });
        break;
      case 'calm':
        this.backgroundTask(() => this.calm());
        break;
      case 'moveLeader':
        this.injectMoveLeader(fault.to);
        break;
      case 'replace':
        this.queueReplace(fault.member, fault.by).catch((err: unknown) => {
          if (!(err instanceof UsageError)) this.violation(`replacement failed: ${(err as Error)?.stack ?? String(err)}`);
        });
        break;
    }
  }

  // ------------------------------------------------------------ leadership and membership

  /**
   * Asks the leader to hand its leadership to voter `to` (`KvNode.moveLeader`,
   * etcd's `MoveLeader`; `RaftNode.moveLeader` with `kind: 'raft'`).
   * Resolves once `to` leads; the transfer runs on virtual time, so drive
   * it: `await sim.drive(sim.moveLeader('b'))`.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when there is no leader
   *   or `to` is not a running member; otherwise the leader's answer
   *   (`QUORUMKV_BAD_LEADER_TRANSFEREE` when `to` is a learner,
   *   `QUORUMKV_TIMEOUT` when the transfer did not complete, ...)
   */
  moveLeader(to: string): Promise<void> {
    const from = this.leaderId();
    if (from === undefined) return Promise.reject(new UsageError(ErrorCode.INVALID_ARGUMENT, 'no leader to move the leadership from'));
    const m = this.members.get(to);
    if (m === undefined || m.status !== 'up') return Promise.reject(new UsageError(ErrorCode.INVALID_ARGUMENT, `member ${describeValue(to)} is not running`));
    const leader = this.member(from);
    this.log(`fault move-leader ${from} -> ${to}`);
    return leader.kv !== undefined ? leader.kv.moveLeader(to) : leader.raft!.moveLeader(to);
  }

  private injectMoveLeader(choice: MemberChoice | undefined): void {
    const from = this.leaderId();
    if (from === undefined) {
      this.log('fault move-leader skipped: no leader');
      return;
    }
    const r = this.member(from).kv?.raft ?? this.member(from).raft!;
    const voters = r.members().voters.filter((id) => id !== from && this.members.get(id)?.status === 'up');
    const to = typeof choice === 'string' ? choice : voters.length > 0 ? this.faultRng.pick(voters) : undefined;
    if (to === undefined || to === from || this.members.get(to)?.status !== 'up') {
      this.log(`fault move-leader skipped: no running voter to move to from ${from}`);
      return;
    }
    this.moveLeader(to).then(
      () => this.log(`move-leader ${from} -> ${to} done`),
      (err: unknown) => this.log(`move-leader ${from} -> ${to} failed: ${isQuorumError(err) ? err.code : String(err)}`),
    );
  }

  /**
   * Replaces member `member` as an operator replaces a machine: removes it
   * from the cluster (`removeMember`, through the leader or another
   * member), shuts its process down for good a little later (0 to 2
   * election timeouts, drawn from the seed: it may hear of its removal
   * first), adds `by` as a learner (`addMember(by, undefined, { learner: true })`),
   * starts it with an empty database and `join: true`, and promotes it once
   * it caught up (`promoteMember`). Each step is retried every election
   * timeout until it holds, whatever the faults meanwhile. Replacements run
   * one at a time, in the order they are asked for. Runs on virtual time:
   * `await sim.drive(sim.replace('b'), { maxMs })`.
   *
   * From the removal on, {@link ids} no longer lists `member`; from the
   * learner's addition on, it lists `by`. An id is never used twice
   * (a removed id cannot be added back, as in etcd).
   * @param by - the new member's id (default: {@link newMemberId} of every id used so far)
   * @returns the new member's id
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` (the promise rejects) when,
   *   `member` is not a string, or, once the replacements before it are
   *   done, `member` is not in the cluster or `by` is an id used already
   */
  replace(member: string, by?: string): Promise<string> {
    // checked now: a member of another type failed the replacement with a TypeError when its turn came
    if (typeof member !== 'string') return Promise.reject(new UsageError(ErrorCode.INVALID_ARGUMENT, `replace(member) needs a member id, not ${describeValue(member)}`));
    if (by !== undefined && (typeof by !== 'string' || by === '' || this.usedIds.has(by))) {
      return Promise.reject(new UsageError(ErrorCode.INVALID_ARGUMENT, `a new member needs an id no member ever had, not ${describeJson(by)}`));
    }
    if (by !== undefined) this.usedIds.add(by);
    return this.queueReplace(member, by);
  }

  /** How many replacements are queued or under way. */
  get replacementsPending(): number {
    return this.pendingReplacements;
  }

  /** Resolves once every replacement asked for so far (and those they queued behind) is done. */
  async membershipSettled(): Promise<void> {
    let p: Promise<unknown>;
    do {
      p = this.reconfig;
      await p.catch(() => undefined);
    } while (p !== this.reconfig);
  }

  private queueReplace(choice: MemberChoice, by: string | undefined): Promise<string> {
    this.pendingReplacements++;
    const run = this.reconfig
      .catch(() => undefined)
      .then(() => this.runReplace(choice, by))
      .finally(() => {
        this.pendingReplacements--;
      });
    this.reconfig = run.catch(() => undefined);
    return run;
  }

  private async runReplace(choice: MemberChoice, by: string | undefined): Promise<string> {
    if (this.closed) throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'the simulation is closed');
    const victim = this.choose(choice);
    if (victim === undefined || this.members.get(victim)?.inCluster !== true) {
      this.log(`reconfig replace skipped: ${victim ?? 'no member'} is not in the cluster`);
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `member ${String(victim)} is not in the cluster`);
    }
    const id = by ?? newMemberId(this.usedIds);
    if (this.members.has(id)) {
      this.log(`reconfig replace skipped: id ${id} is taken`);
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `member id ${id} is taken`);
    }
    this.usedIds.add(id);
    this.log(`reconfig replace ${victim} by ${id}`);
    const removed = await this.reconfigStep(
      `remove ${victim}`,
      (ep) => ep.remove(victim),
      (cs) => !cs.voters.includes(victim) && !cs.learners.includes(victim),
      victim,
    );
    if (!removed) throw new FaultError(ErrorCode.NODE_CLOSED, 'the simulation closed during a replacement');
    const old = this.member(victim);
    old.inCluster = false;
    const delay = this.reconfigRng.int(0, 2 * this.electionTimeoutMs);
    this.log(`reconfig ${victim} removed; shut down in ${delay} ms`);
    this.clock.setTimeout(() => this.backgroundTask(() => this.retireMember(old)), delay);
    const added = await this.reconfigStep(`add learner ${id}`, (ep) => ep.addLearner(id), (cs) => cs.learners.includes(id) || cs.voters.includes(id));
    if (!added || this.closed) throw new FaultError(ErrorCode.NODE_CLOSED, 'the simulation closed during a replacement');
    const m = this.addMemberRecord(id, false);
    await this.joinMember(m);
    const promoted = await this.reconfigStep(`promote ${id}`, (ep) => ep.promote(id), (cs) => cs.voters.includes(id));
    if (!promoted) throw new FaultError(ErrorCode.NODE_CLOSED, 'the simulation closed during a replacement');
    m.learner = false;
    this.log(`reconfig ${id} replaced ${victim}`);
    return id;
  }

  /**
   * One membership change, retried every election timeout through the
   * leader or another running voter until `done` holds on the member asked
   * (it applied the change: it is committed). False when the simulation closed.
   */
  private async reconfigStep(
    what: string,
    call: (ep: { remove(id: string): Promise<unknown>; addLearner(id: string): Promise<unknown>; promote(id: string): Promise<unknown> }) => Promise<unknown>,
    done: (cs: ConfState) => boolean,
    victim?: string,
  ): Promise<boolean> {
    const sleep = (ms: number): Promise<void> => new Promise((resolve) => this.clock.setTimeout(resolve, ms));
    for (;;) {
      if (this.closed) return false;
      const leader = this.leaderId();
      const voters = this.ids.filter((id) => this.member(id).status === 'up' && !this.member(id).learner);
      const epId = leader !== undefined && (voters.length === 0 || this.reconfigRng.chance(0.5)) ? leader : voters.length > 0 ? this.reconfigRng.pick(voters) : undefined;
      const ep = epId === undefined ? undefined : this.member(epId);
      const kv = ep?.kv;
      const raft = ep?.kv?.raft ?? ep?.raft;
      if (ep !== undefined && raft !== undefined) {
        const members = (): ConfState | undefined => (ep.status === 'up' && !ep.gate.isDead ? raft.members() : undefined);
        const before = members();
        if (before !== undefined && done(before)) {
          this.log(`reconfig ${what}: applied on ${epId}`);
          return true;
        }
        try {
          await call(
            kv !== undefined
              ? { remove: (id) => kv.removeMember(id), addLearner: (id) => kv.addMember(id, undefined, { learner: true }), promote: (id) => kv.promoteMember(id) }
              : { remove: (id) => raft.removeMember(id), addLearner: (id) => raft.addLearner(id), promote: (id) => raft.promoteLearner(id) },
          );
          this.log(`reconfig ${what} via ${epId}: done`);
          return true;
        } catch (err) {
          const after = members();
          if (after !== undefined && done(after)) {
            this.log(`reconfig ${what} via ${epId}: applied`);
            return true;
          }
          // the member removed itself and heard of it from a peer that applied it
          if (epId === victim && isQuorumError(err, ErrorCode.REMOVED)) {
            this.log(`reconfig ${what} via ${epId}: it heard of its removal`);
            return true;
          }
          this.log(`reconfig ${what} via ${epId} failed: ${isQuorumError(err) ? err.code : String(err)}; retrying`);
        }
      } else {
        this.log(`reconfig ${what}: no running voter to ask; retrying`);
      }
      await sleep(this.electionTimeoutMs);
    }
  }

  private joinMember(m: Member): Promise<void> {
    const run = async (): Promise<void> => {
      if (m.status !== 'down' || this.closed) return;
      await this.open(m);
      this.log(`reconfig ${m.id} started (join)`);
    };
    const p = m.chain.then(run);
    m.chain = p.catch(() => undefined);
    return p;
  }

  /** Shuts down a member removed from the cluster, for good. */
  private retireMember(m: Member): Promise<void> {
    const run = async (): Promise<void> => {
      if (m.retired) return;
      m.retired = true;
      this.log(`reconfig ${m.id} shut down${m.status === 'up' ? '' : ' (was down)'}`);
      const node = m.kv ?? m.raft;
      m.status = 'down';
      m.gate.kill();
      m.kv = undefined;
      m.raft = undefined;
      m.sm = undefined;
      if (node !== undefined) await node.close().catch(() => undefined);
    };
    const p = m.chain.then(run);
    m.chain = p.catch(() => undefined);
    return p;
  }

  /**
   * Resolves once the crashes and restarts started by scheduled faults (and
   * those started before this call) are done. When they are not done after
   * `settleRounds` rounds of the event loop (a restart may wait on virtual
   * time: a state machine opening with a delay, a member's work in
   * progress), moves virtual time until they are, at most `maxMs`; while
   * another run is in progress, or before `start()` or after `close()`, it
   * only waits.
   * @param options.maxMs - virtual ms to move at most (default 10,000; `Infinity`: no limit)
   * @throws FaultError `QUORUMKV_TIMEOUT` when they are not done within `maxMs`
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an option of another name, or a `maxMs` that is NaN or negative
   * @throws SimulationError `QUORUMKV_INVARIANT_VIOLATED` as soon as an invariant breaks while time moves
   */
  async settled(options: { maxMs?: number } = {}): Promise<void> {
    checkOptionsArg(options, ['maxMs'], 'settled options');
    const maxMs = options.maxMs ?? 10_000;
    if (typeof maxMs !== 'number' || Number.isNaN(maxMs) || maxMs < 0) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `maxMs needs a number of virtual ms >= 0, not ${describeValue(maxMs)}`);
    }
    const background = this.background;
    let done = false;
    void background.then(() => {
      done = true;
    });
    for (let i = 0; i < this.opts.settleRounds && !done; i++) await immediate();
    if (!done && this.started && !this.closed && !this.driving) {
      await this.until(() => done, { maxMs, what: 'the background crashes and restarts' });
    }
    await background;
  }

  private choose(c: MemberChoice, not?: string): string | undefined {
    if (typeof c === 'string') return c;
    const up = this.upMembers().filter((id) => id !== not);
    if ('leader' in c) {
      const l = this.leaderId();
      if (l !== undefined && l !== not) return l;
    }
    return up.length === 0 ? undefined : this.faultRng.pick(up);
  }

  private backgroundTask(fn: () => Promise<void>): void {
    const run = fn().catch((err: unknown) => this.violation(`fault injection failed: ${(err as Error)?.stack ?? String(err)}`));
    this.background = this.background.then(() => run);
  }

  private applyBaseFaults(): void {
    this.network.setDropRate(this.base.dropRate);
    this.network.setReorderRate(this.base.reorderRate);
    this.network.setDelay(this.base.delay);
    this.duplicateRate = this.base.duplicateRate;
  }

  // ------------------------------------------------------------ checks

  /** The recorded client history (operations still in flight are `unknown`). */
  history(): Operation<KvInput, KvOutput>[] {
    return this.recorder.history();
  }

  /** The committed events, by revision, as the members' reference watches reported them. */
  committedEvents(): WatchEventRecord[] {
    return this.committed.events();
  }

  /**
   * Checks the recorded history for linearizability against the KV model
   * (`kvModel()`, per-key revisions), with unknown outcomes handled
   * non-deterministically, lease revocations added as deletions and keys
   * written outside the model left out (see `buildCheckedHistory`).
   * Unknown-outcome writes identified by a value they put are first
   * settled with the committed history (`resolveUnknownWrites`, as etcd's
   * robustness tests patch their histories with watch events): `ok` at the
   * revision that carries the value, or left out when the history, with no
   * gap, shows they never took effect. The description counts both.
   * @param options - the checker's budgets (default `timeoutMs` 20,000 ms of real time)
   */
  checkLinearizable(options: CheckOptions = {}): SimulationVerdict {
    const gaps = this.committed.gaps();
    const committed = this.committed.eventsWithLease();
    const recorded = this.recorder.history();
    // the committed history settles unknown outcomes; it shows an absence
    // only when it has no gap and reaches every revision a client saw. Not
    // for clients with a wrapper: what they store may differ from what they
    // record. Settled first, so that a settled write's revision is not
    // taken for a lease revocation's.
    const complete = gaps.length === 0 && highestRevisionSeen(recorded) <= this.committed.revision;
    const resolved = resolveUnknownWrites(recorded, committed, complete, (op) => !this.wrappedClients.has(op.clientId));
    const built = buildCheckedHistory(resolved.operations, committed, this.leaseLog, this.unmodeled);
    const res = checkLinearizable(built.operations, kvModel(), { timeoutMs: 20_000, ...options });
    const seed = this.seed;
    const note =
      `${built.operations.length} operations (${built.revocations} lease revocations added, ${built.excluded} left out; ` +
      `of the unknown outcomes, ${resolved.found} settled by the committed history and ${resolved.absent} left out as never committed)` +
      (gaps.length > 0 ? `; the committed history misses revisions ${gaps.slice(0, 10).join(', ')}` : '');
    return {
      ok: res.result === 'ok' && gaps.length === 0,
      result: gaps.length > 0 && res.result === 'ok' ? 'unknown' : res.result,
      describe: () => `seed ${seed}: ${res.describe()}\n${note}`,
    };
  }

  /**
   * Checks every watch opened through a client against the committed
   * history (`checkWatch`: ordered, unique, reliable, atomic, prevKv,
   * bookmarkable, resumable).
   *
   * One relaxation: an event at or below the highest compaction revision
   * the cluster reached may come without its prevKv, because the previous
   * version may be compacted away before the event is sent (etcd's watch
   * API: "If the previous KV is already compacted, nothing will be
   * returned"); `checkWatch` does not know about compaction, so those
   * reports are set aside (and counted in the description).
   *
   * Revisions no member's reference watch reported (a gap in the committed
   * history: every reference watch was cancelled by a compaction that
   * removed revisions none of them had reported yet) are passed as `unknownRevisions`:
   * events delivered at them, and prevKvs that depend on them, cannot be
   * checked, so they make the result `unknown`, not `illegal`; a violation
   * elsewhere still makes it `illegal`.
   *
   * @param options.lostTombstonesAtCompaction - also set aside a DELETE at
   *   or below the highest compaction revision that a watch never got:
   *   the behaviour of etcd before 3.4.34 and 3.5.15 (compaction at revision
   *   R dropped the tombstones written at R, which a watch at R then missed;
   *   etcd #18089). The store keeps them until the next compaction, so its
   *   watches pass without it. Default false.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an option of another name, or a
   *   `lostTombstonesAtCompaction` that is not a boolean
   */
  checkWatches(options: { lostTombstonesAtCompaction?: boolean } = {}): SimulationVerdict {
    checkOptionsArg(options, ['lostTombstonesAtCompaction'], 'checkWatches options');
    // a string such as 'yes' was taken as false
    if (options.lostTombstonesAtCompaction !== undefined && typeof options.lostTombstonesAtCompaction !== 'boolean') {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `checkWatches options.lostTombstonesAtCompaction must be a boolean, not ${describeValue(options.lostTombstonesAtCompaction)}`);
    }
    const gaps = this.committed.gaps();
    const streams: WatchStreamRecord[] = this.watchStreams;
    const res = checkWatch(this.committed.events(), streams, { unknownRevisions: gaps });
    const compacted = this.maxCompactRevision;
    const excused: string[] = [];
    const violations = res.violations.filter((v) => {
      const m = /: prevKv: (?:PUT|DELETE) .* at revision (\d+) lacks prevKv/.exec(v);
      if (m !== null && Number(m[1]) <= compacted) {
        excused.push(v);
        return false;
      }
      const t = /: (?:reliable: DELETE .* at revision (\d+) was never delivered|atomic: response \d+ carries only part of revision (\d+): missing DELETE)/.exec(v);
      if (options.lostTombstonesAtCompaction === true && t !== null && Number(t[1] ?? t[2]) <= compacted) {
        excused.push(v);
        return false;
      }
      return true;
    });
    const seed = this.seed;
    const result: CheckResult = violations.length > 0 ? 'illegal' : gaps.length > 0 ? 'unknown' : 'ok';
    const revisions = this.committed.revision - 1;
    const note = excused.length > 0 ? ` (${excused.length} reports about events at or below compaction revision ${compacted} set aside)` : '';
    return {
      ok: result === 'ok',
      result,
      describe: () =>
        result === 'ok'
          ? `seed ${seed}: ${streams.length} watches checked against ${revisions} committed revisions: every guarantee holds${note}`
          : `seed ${seed}: ${violations.length} watch violations${gaps.length > 0 ? ` (committed history misses revisions ${gaps.slice(0, 10).join(', ')}; ${res.unknown.length} reports about them undecided)` : ''}${note}${violations.length > 0 ? `:\n  ${violations.slice(0, 50).join('\n  ')}` : ''}`,
    };
  }

  /**
   * Progress: ends every fault ({@link calm}), then writes a key through
   * the members in turn (a new attempt every election timeout) until one
   * write commits. Passes when that happens within `withinMs` (default 10
   * election timeouts) of virtual time. `kind: 'kv'` only.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` with `kind: 'raft'`, for an option of
   *   another name, or a `withinMs` that is not a finite number >= 0 (nothing is done)
   */
  async checkProgress(options: { withinMs?: number } = {}): Promise<ProgressVerdict> {
    checkOptionsArg(options, ['withinMs'], 'checkProgress options');
    checkBudget(options.withinMs, 'checkProgress options.withinMs');
    if (this.kind !== 'kv') throw new UsageError(ErrorCode.INVALID_ARGUMENT, "checkProgress needs kind 'kv'");
    await this.calm();
    const budget = options.withinMs ?? 10 * this.electionTimeoutMs;
    const start = this.clock.now();
    let done = false;
    let attempt = 0;
    const seed = this.seed;
    const tryOnce = (): void => {
      const id = this.leaderId() ?? this.ids[attempt % this.ids.length]!;
      attempt++;
      const c = new SimClient(this.clientHost, id, `progress@${id}`, undefined);
      c.put('__progress', String(++this.progressSeq)).then(
        () => {
          done = true;
        },
        () => undefined,
      );
    };
    tryOnce();
    let nextAttempt = start + this.electionTimeoutMs;
    await this.advanceWhile(() => {
      if (done || this.clock.now() - start >= budget) return false;
      if (this.clock.now() >= nextAttempt) {
        nextAttempt += this.electionTimeoutMs;
        tryOnce();
      }
      return true;
    });
    const ms = this.clock.now() - start;
    this.log(`progress ${done ? `write committed after ${ms} ms` : `no write committed within ${budget} ms`}`);
    return {
      ok: done,
      result: done ? 'ok' : 'illegal',
      ms,
      describe: () =>
        done
          ? `seed ${seed}: a write committed ${ms} virtual ms after the faults ended`
          : `seed ${seed}: no write committed within ${budget} virtual ms (${budget / this.electionTimeoutMs} election timeouts) after the faults ended; leader: ${this.leaderId() ?? 'none'}`,
    };
  }

  /**
   * Convergence: moves virtual time until every member of the cluster
   * ({@link ids}) runs, is not paused, and has applied the leader's whole
   * committed log, then takes each member's `MvccStore.hash()` with nothing
   * applied in between: passes when they all have the same revision,
   * compaction revision and hash (etcd's HashKV corruption check over the
   * whole cluster). A member that never catches up within `withinMs`
   * (default 20 election timeouts) fails the check. `kind: 'kv'` only;
   * call it once the traffic stopped and the faults ended.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` with `kind: 'raft'`, for an option of
   *   another name, or a `withinMs` that is not a finite number >= 0
   */
  async checkConvergence(options: { withinMs?: number } = {}): Promise<ConvergenceVerdict> {
    checkOptionsArg(options, ['withinMs'], 'checkConvergence options');
    checkBudget(options.withinMs, 'checkConvergence options.withinMs');
    if (this.kind !== 'kv') throw new UsageError(ErrorCode.INVALID_ARGUMENT, "checkConvergence needs kind 'kv'");
    const budget = options.withinMs ?? 20 * this.electionTimeoutMs;
    const start = this.clock.now();
    const seed = this.seed;
    const snapshot = (): ConvergenceVerdict['members'] =>
      this.ids.map((id) => {
        const m = this.member(id);
        const store = m.status === 'up' ? m.kv?.store : undefined;
        return { id, up: m.status === 'up', applied: store?.appliedIndex(), revision: store?.currentRevision(), compactRevision: store?.compactRevision(), hash: undefined };
      });
    for (;;) {
      const leaderId = this.leaderId();
      const nodes = this.ids.map((id) => this.member(id));
      const commit = leaderId === undefined ? undefined : this.member(leaderId).kv?.raft.status().commit;
      const ready =
        commit !== undefined &&
        nodes.every((m) => m.status === 'up' && !m.gate.isPaused && m.kv !== undefined && m.kv.raft.status().applied === commit && m.kv.store.appliedIndex() === commit);
      if (ready) {
        const states: ConvergenceVerdict['members'] = [];
        let stable = true;
        for (const m of nodes) {
          const store = m.kv!.store;
          const applied = store.appliedIndex();
          let h;
          try {
            h = await store.hash();
          } catch {
            stable = false;
            break;
          }
          if (m.status !== 'up' || store.appliedIndex() !== applied) {
            stable = false;
            break;
          }
          this.monitor.hashSample(m.id, m.lifetime, applied, h.revision, h.compactRevision, h.hash);
          states.push({ id: m.id, up: true, applied, revision: h.revision, compactRevision: h.compactRevision, hash: h.hash });
        }
        if (stable && states.every((x) => x.applied === states[0]!.applied)) {
          const same = states.every((x) => x.revision === states[0]!.revision && x.compactRevision === states[0]!.compactRevision && x.hash === states[0]!.hash);
          const list = states.map((x) => `${x.id}: applied ${x.applied}, revision ${x.revision}, compaction ${x.compactRevision}, hash ${x.hash!.toString(16).padStart(8, '0')}`).join('; ');
          this.log(`convergence ${same ? 'ok' : 'FAILED'}: ${list}`);
          return {
            ok: same,
            result: same ? 'ok' : 'illegal',
            members: states,
            describe: () =>
              same
                ? `seed ${seed}: members ${states.map((x) => x.id).join(', ')} converged at applied index ${states[0]!.applied}, revision ${states[0]!.revision}`
                : `seed ${seed}: members differ at applied index ${states[0]!.applied}: ${list}`,
          };
        }
      }
      if (this.clock.now() - start >= budget) {
        const states = snapshot();
        const list = states.map((x) => `${x.id}: ${x.up ? `applied ${x.applied}, revision ${x.revision}` : 'down'}`).join('; ');
        this.log(`convergence FAILED: not caught up within ${budget} ms: ${list}`);
        return {
          ok: false,
          result: 'illegal',
          members: states,
          describe: () => `seed ${seed}: the members did not all apply the leader's log within ${budget} virtual ms (leader ${leaderId ?? 'none'}, commit ${commit ?? '-'}): ${list}`,
        };
      }
      await this.run(1);
    }
  }

  // ------------------------------------------------------------ internals

  private member(id: string): Member {
    const m = this.members.get(id);
    if (m === undefined) throw new UsageError(ErrorCode.INVALID_ARGUMENT, `unknown member ${describeJson(id)} (members: ${this.ids.join(', ')})`);
    return m;
  }

  private target(id: string): ClientTarget | undefined {
    const m = this.members.get(id);
    if (m === undefined || m.status !== 'up' || m.kv === undefined) return undefined;
    return { node: m.kv, lifetime: m.lifetime, gate: m.gate };
  }

  private crashMember(m: Member): Promise<void> {
    const run = async (): Promise<void> => {
      if (m.status !== 'up') return;
      this.log(`fault crash ${m.id} (lifetime ${m.lifetime}, ${m.db.volatileOperations} unsynced writes lost)`);
      m.status = 'down';
      m.gate.kill();
      const node = m.kv ?? m.raft;
      m.kv = undefined;
      m.raft = undefined;
      m.sm = undefined;
      await m.db.crash();
      if (node !== undefined) await node.close().catch(() => undefined);
    };
    const p = m.chain.then(run);
    m.chain = p.catch(() => undefined);
    return p;
  }

  private restartMember(m: Member): Promise<void> {
    const run = async (): Promise<void> => {
      if (m.status !== 'down' || this.closed || !m.inCluster) return;
      m.lifetime++;
      m.gate = new NodeGate();
      await m.db.open();
      await this.open(m);
      const r = m.kv?.raft ?? m.raft;
      this.log(`fault restart ${m.id} (lifetime ${m.lifetime}) term ${r?.status().term} applied ${r?.appliedIndex}`);
      if (r !== undefined) this.monitor.restarted(m.id, r.status().term);
    };
    const p = m.chain.then(run);
    m.chain = p.catch(() => undefined);
    return p;
  }

  private async open(m: Member): Promise<void> {
    const id = m.id;
    const gate = m.gate;
    const lifetime = m.lifetime;
    const clock = new GatedClock(this.clock, gate, (err) => this.memberFailed(m, gate, `${id} threw from a timer (an uncaught exception stops a process)`, err));
    const transport = new SimTransport(this.network.transport(id), gate, {
      observe: (msgs) => this.monitor.observeSent(id, msgs),
      duplicate: (msg) => {
        if (this.duplicateRate <= 0 || !this.dupRng.chance(this.duplicateRate)) return false;
        this.log(`net duplicate ${msg.from}>${msg.to} ${msg.type}`);
        return true;
      },
    });
    const random = this.random.fork(`node/${id}/${lifetime}`).asFunction();
    let raft: RaftNode<unknown>;
    if (this.kind === 'kv') {
      const node = await KvNode.open({
        id,
        // a member a replacement added joins the cluster as it is then
        members: m.founding ? [...this.founders] : [...this.ids],
        ...(m.founding ? {} : { join: true }),
        transport,
        db: m.db,
        clock,
        tickMs: this.opts.tickMs,
        electionTicks: this.opts.electionTicks,
        heartbeatTicks: this.opts.heartbeatTicks,
        requestTimeoutMs: this.opts.requestTimeoutMs,
        leaseCheckMs: this.opts.leaseCheckMs,
        snapshotEntries: this.opts.snapshotEntries,
        snapshotCatchUpEntries: this.opts.snapshotCatchUpEntries,
        syncStore: this.opts.syncStore,
        random,
      });
      m.kv = node;
      raft = node.raft as RaftNode<unknown>;
    } else {
      const storage = await LevelLogStorage.open({ db: m.db.sublevel('raft', VIEW) as never });
      const sm = await this.factory!({ id, db: m.db.sublevel('sm', VIEW) as AnyLevel, lifetime });
      raft = await RaftNode.create<unknown>({
        id,
        peers: m.founding ? [...this.founders] : undefined,
        storage,
        transport,
        stateMachine: sm,
        clock,
        tickMs: this.opts.tickMs,
        electionTicks: this.opts.electionTicks,
        heartbeatTicks: this.opts.heartbeatTicks,
        snapshotEntries: this.opts.snapshotEntries,
        snapshotCatchUpEntries: this.opts.snapshotCatchUpEntries,
        proposalTimeoutMs: this.opts.requestTimeoutMs,
        readTimeoutMs: this.opts.requestTimeoutMs,
        random,
      });
      m.raft = raft;
      m.sm = sm;
    }
    m.status = 'up';
    raft.on('leaderChange', (leader, term) => {
      if (gate.isDead) return;
      this.log(`${id} leader ${leader === '' ? '-' : leader} term ${term}`);
      this.monitor.leaderSeen(id, leader, term);
    });
    raft.on('roleChange', (role) => {
      if (gate.isDead) return;
      if (role === 'leader') this.monitor.leaderElected(id, raft.status().term);
    });
    raft.on('snapshot', (index, source) => {
      if (gate.isDead) return;
      this.log(source === 'leader' ? `${id} installed the leader's snapshot at ${index}` : `${id} snapshot at ${index}`);
    });
    raft.on('error', (err) => this.memberFailed(m, gate, `${id} stopped after a fatal error`, err));
    // After a restart, from the revision after the last one any member
    // reported, not from now: a member that restarts behind its log holds a
    // watch from now until it has caught up, and starts it after what it
    // applied meanwhile. A write in flight when every member crashed was
    // then reported by none of them.
    if (m.kv !== undefined) this.openReferenceWatch(m, m.kv, lifetime === 0 ? 1 : this.committed.revision + 1);
  }

  /**
   * Member `m` stopped itself (a fatal error) or would have (an uncaught
   * exception): a violation, unless `knownFatalErrors` matches, in which
   * case the member is crashed and the issue recorded.
   */
  private memberFailed(m: Member, gate: NodeGate, what: string, err: unknown): void {
    if (gate.isDead || m.gate !== gate) return;
    const message = err instanceof Error ? err.message : String(err);
    const text = `${what}: ${message}`;
    if (!this.knownFatal.some((re) => re.test(message))) {
      this.violation(err instanceof Error && err.stack !== undefined ? `${text}\n${err.stack}` : text);
      return;
    }
    this.known.push(`at ${this.clock.now()} ms: ${text}`);
    this.log(`known issue: ${text}; crashing it`);
    this.backgroundTask(() => this.crashMember(m));
  }

  /** Member `m`'s watch of every key, feeding the committed history. */
  private openReferenceWatch(m: Member, node: KvNode, startRevision: number): void {
    const lifetime = m.lifetime;
    let w: Watch;
    try {
      w = node.watch('\0', { rangeEnd: '\0', prevKv: true, startRevision });
    } catch {
      return; // closing
    }
    w.on('response', (res) => {
      this.committed.add(m.id, res, this.historyPeek());
      // cancelled at a compaction (not when the member is removed and ends its watches)
      if (res.canceled && res.compactRevision > 0 && m.status === 'up' && m.lifetime === lifetime && m.kv === node) {
        this.log(`${m.id} reference watch cancelled at compaction ${res.compactRevision}; reopened`);
        this.openReferenceWatch(m, node, Math.max(this.committed.revision + 1, res.compactRevision));
      }
    });
  }
}
