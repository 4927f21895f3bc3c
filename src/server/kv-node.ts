/**
 * `KvNode`: one member of a quorumkv cluster — the etcd-v3-style MVCC store
 * ({@link MvccStore}) run as the state machine of a {@link RaftNode}.
 *
 * - Writes (put, delete, txn, compaction, lease grant/revoke/keep-alive) are
 *   checked, then proposed; a follower forwards them to the leader. They
 *   resolve once applied on this member (etcd: linearizable writes).
 * - Reads are linearizable by default: ReadIndex (Raft thesis §6.4), then a
 *   local read once this member has applied up to the read index; with
 *   `serializable: true` they are answered locally at once (may be stale).
 * - Leases expire by the leader's clock only: the leader's lessor is promoted
 *   on election (every TTL restarts, as in etcd) and the leader proposes the
 *   revoke of each expired lease.
 * @module
 */
import { mkdirSync } from 'node:fs';
import type { AbstractLevel } from 'abstract-level';
import { ClassicLevel } from 'classic-level';
import createDebug from 'debug';
import { EventEmitter } from 'eventemitter3';
import { pack, unpack } from '../codec/index.js';
import { ErrorCode, FaultError, QuorumError, UsageError } from '../errors.js';
import {
  MvccStore,
  decodeWriteRequest,
  prepareWriteRequest,
  type ApplyEntry as StoreEntry,
  type ApplyResult,
  type WriteRequest,
  type WriteResponse,
} from '../mvcc/index.js';
import type {
  CompactionResponse,
  DeleteRangeResponse,
  KeyValue,
  LeaseGrantResponse,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseRevokeResponse,
  LeaseTimeToLiveResponse,
  PutResponse,
  RangeResponse,
  ResponseHeader,
  TxnResponse,
} from '../mvccpb/index.js';
import { RaftNode, systemClock, type ApplyEntry, type Clock, type RaftNodeStatus, type StateMachine, type TimerHandle } from '../node/index.js';
import type { ConfState } from '../raftpb/index.js';
import { LevelLogStorage } from '../storage/index.js';
import { TcpTransport, parseAddress, type TcpTlsOptions, type Transport } from '../transport/index.js';
import type { BytesLike, DeleteOptions, KV, PutOptions, RangeInput, RangeOptions, TxnInput, Watch, WatchOptions } from './kv.js';
import { deleteRequest, putRequest, rangeRequest, txnRequest, watchRequest } from './requests.js';

const log = createDebug('quorumkv:server');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = AbstractLevel<any, any, any>;

/** Kinds of server log entries (first byte of a normal entry's data). */
const ENTRY_WRITE = 0;
const ENTRY_KEEPALIVE = 1;

/** Automatic compaction (etcd's `--auto-compaction-mode` / `--auto-compaction-retention`). */
export type AutoCompaction =
  /** Keep the last `retention` revisions: compact to `current - retention` every `intervalMs`. */
  | { mode: 'revision'; retention: number; intervalMs?: number }
  /** Keep `retentionMs` of history: compact to the revision current `retentionMs` ago, checked every `intervalMs`. */
  | { mode: 'periodic'; retentionMs: number; intervalMs?: number };

/** Options of {@link KvNode.open}. Times are in ms unless named in ticks. */
export interface KvNodeOptions {
  /** This member's id (non-empty, at most 255 UTF-8 bytes). */
  id: string;
  /**
   * The founding members, for a new cluster: ids, or ids mapped to their
   * `host:port` (then, without `transport`, a {@link TcpTransport} listening on
   * this member's address is created). Ignored when the data directory
   * already holds a member; a joining member (added with `addMember` by the
   * cluster) passes the current members with `join: true`.
   */
  members?: string[] | Record<string, string>;
  /** Join an existing cluster instead of founding one (the cluster must have added this member first). */
  join?: boolean;
  /** Message transport. Default: a TcpTransport built from `members` addresses. */
  transport?: Transport;
  /** Directory for a classic-level database (created if missing). */
  dataDir?: string;
  /** Or an abstract-level database to use (for instance memory-level in tests); the caller closes it. */
  db?: AnyDb;
  /** Cluster id for the TCP handshake (frames of other clusters are refused). Default `'quorumkv'`. */
  clusterId?: string;
  /** TLS for the default TCP transport (mutual authentication). */
  tls?: TcpTlsOptions;
  /** Time source. Default: real time. */
  clock?: Clock;
  /** Raft tick in ms. Default 100. */
  tickMs?: number;
  /** Election timeout in ticks. Default 10. */
  electionTicks?: number;
  /** Heartbeat interval in ticks. Default 1. */
  heartbeatTicks?: number;
  /** Snapshot every this many applied entries. Default 10,000. */
  snapshotEntries?: number;
  /** How long a request waits before `QUORUMKV_TIMEOUT`. Default 10,000 ms. */
  requestTimeoutMs?: number;
  /** Largest encoded write request in bytes (etcd's `--max-request-bytes`). Default 1.5 MiB. */
  maxRequestBytes?: number;
  /** Most operations in each of a txn's compare, success and failure lists. Default 128. */
  maxTxnOps?: number;
  /** How often the leader looks for expired leases, in ms. Default 500. */
  leaseCheckMs?: number;
  /** Automatic compaction; off by default. */
  autoCompaction?: AutoCompaction;
  /** Uniform random numbers in [0, 1) for election jitter (inject a seeded one for determinism). */
  random?: () => number;
  /** Write the store's applied batches with fsync too. Default false (the Raft log is the durable record). */
  syncStore?: boolean;
}

/** What `KvNode.status()` reports (etcd's `StatusResponse`, plus Raft details). */
export interface KvNodeStatus {
  header: ResponseHeader;
  /** This member's id. */
  memberId: string;
  /** Leader id, `''` when unknown. */
  leader: string;
  raftTerm: number;
  raftIndex: number;
  raftAppliedIndex: number;
  /** The store's current revision. */
  revision: number;
  /** The store's compaction revision (-1 before any). */
  compactRevision: number;
  isLearner: boolean;
  raft: RaftNodeStatus;
}

/** Events a {@link KvNode} emits. */
export interface KvNodeEvents {
  leaderChange: (leader: string, term: number) => void;
  error: (err: Error) => void;
}

/** What one applied server entry returns to its proposer. */
type EntryResult = ApplyResult | { status: 'keepAlive'; ttl: number } | { status: 'failed'; error: QuorumError };

function membersOf(m: KvNodeOptions['members']): { ids: string[]; addresses: Record<string, string> } {
  if (m === undefined) return { ids: [], addresses: {} };
  if (Array.isArray(m)) return { ids: [...m], addresses: {} };
  return { ids: Object.keys(m), addresses: { ...m } };
}

/**
 * A quorumkv member.
 *
 * ```ts
 * const node = await KvNode.open({
 *   id: 'a',
 *   members: { a: '127.0.0.1:7001', b: '127.0.0.1:7002', c: '127.0.0.1:7003' },
 *   dataDir: './data/a',
 * });
 * await node.put('greeting', 'hello');
 * const kv = await node.get('greeting'); // linearizable read
 * ```
 */
export class KvNode extends EventEmitter<KvNodeEvents> implements KV {
  /** This member's id. */
  readonly id: string;
  /** The Raft member underneath (for status and membership details). */
  readonly raft: RaftNode<EntryResult>;
  /** The MVCC store this member applies to. */
  readonly store: MvccStore;

  private readonly db: AnyDb;
  private readonly ownsDb: boolean;
  private readonly clock: Clock;
  private readonly clusterId: string;
  private readonly requestTimeoutMs: number;
  private readonly limits: { maxRequestBytes?: number; maxTxnOps?: number };
  private readonly electionMs: number;
  private readonly leaseCheckMs: number;
  private readonly autoCompaction: AutoCompaction | undefined;
  private leaseTimer: TimerHandle | undefined;
  private compactTimer: TimerHandle | undefined;
  private readonly revisionSamples: { at: number; revision: number }[] = [];
  private readonly watches = new Set<Watch>();
  private closed = false;

  private constructor(id: string, raft: RaftNode<EntryResult>, store: MvccStore, db: AnyDb, ownsDb: boolean, opts: KvNodeOptions) {
    super();
    this.id = id;
    this.raft = raft;
    this.store = store;
    this.db = db;
    this.ownsDb = ownsDb;
    this.clock = opts.clock ?? systemClock;
    this.clusterId = opts.clusterId ?? 'quorumkv';
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
    this.limits = {};
    if (opts.maxRequestBytes !== undefined) this.limits.maxRequestBytes = opts.maxRequestBytes;
    if (opts.maxTxnOps !== undefined) this.limits.maxTxnOps = opts.maxTxnOps;
    this.electionMs = (opts.tickMs ?? 100) * (opts.electionTicks ?? 10);
    this.leaseCheckMs = opts.leaseCheckMs ?? 500;
    this.autoCompaction = opts.autoCompaction;
  }

  /**
   * Opens (or creates) a member: its database, store, Raft node and
   * transport. A new cluster is founded when the data is empty and
   * `members` is given; a member restarting from its data needs only `id`,
   * the data and a transport (or `members` addresses for the TCP default).
   * @throws UsageError `QUORUMKV_INVALID_CONFIG` for bad options (nothing is created)
   * @throws FaultError `QUORUMKV_STORAGE_IO` when the database cannot be opened
   *   (for instance locked by another process), `QUORUMKV_CORRUPT_LOG`
   */
  static async open(opts: KvNodeOptions): Promise<KvNode> {
    if (opts === null || typeof opts !== 'object') throw new UsageError(ErrorCode.INVALID_CONFIG, 'options are required');
    if (typeof opts.id !== 'string' || opts.id === '') throw new UsageError(ErrorCode.INVALID_CONFIG, 'id must be a non-empty string');
    if ((opts.dataDir === undefined) === (opts.db === undefined)) {
      throw new UsageError(ErrorCode.INVALID_CONFIG, 'exactly one of dataDir and db is required');
    }
    const { ids, addresses } = membersOf(opts.members);
    if (ids.length > 0 && !ids.includes(opts.id)) {
      throw new UsageError(ErrorCode.INVALID_CONFIG, `members must include this member's id ${opts.id}`);
    }
    if (new Set(ids).size !== ids.length || ids.some((i) => typeof i !== 'string' || i === '')) {
      throw new UsageError(ErrorCode.INVALID_CONFIG, 'member ids must be unique non-empty strings');
    }
    let transport = opts.transport;
    if (transport === undefined) {
      const own = addresses[opts.id];
      if (own === undefined) throw new UsageError(ErrorCode.INVALID_CONFIG, 'without a transport, members must map every id to its host:port');
      const peers: Record<string, string> = {};
      for (const [id, addr] of Object.entries(addresses)) if (id !== opts.id) peers[id] = addr;
      const listen = parseAddress(own);
      const tcpOpts: ConstructorParameters<typeof TcpTransport>[0] = { id: opts.id, clusterId: opts.clusterId ?? 'quorumkv', listen, peers };
      if (opts.tls !== undefined) tcpOpts.tls = opts.tls;
      transport = new TcpTransport(tcpOpts);
    } else {
      for (const [id, addr] of Object.entries(addresses)) if (id !== opts.id) transport.addPeer(id, addr);
    }

    let db: AnyDb;
    const ownsDb = opts.db === undefined;
    if (opts.db !== undefined) {
      db = opts.db;
    } else {
      mkdirSync(opts.dataDir!, { recursive: true });
      db = new ClassicLevel<Uint8Array, Uint8Array>(opts.dataDir!, { keyEncoding: 'view', valueEncoding: 'view' });
    }
    try {
      if (db.status !== 'open') await db.open();
    } catch (err) {
      throw new FaultError(ErrorCode.STORAGE_IO, `cannot open the database: ${(err as Error).message}`, { cause: err });
    }
    const tickMs = opts.tickMs ?? 100;
    const electionTicks = opts.electionTicks ?? 10;
    const clock = opts.clock ?? systemClock;
    const store = await MvccStore.open(db.sublevel('mvcc', { keyEncoding: 'view', valueEncoding: 'view' }), {
      // etcd: minimum lease TTL is 1.5 × the election timeout (rounded up, in seconds)
      minLeaseTtl: Math.max(1, Math.ceil((1.5 * tickMs * electionTicks) / 1000)),
      now: () => clock.now(),
      sync: opts.syncStore ?? false,
      limits: {
        ...(opts.maxRequestBytes !== undefined ? { maxRequestBytes: opts.maxRequestBytes } : {}),
        ...(opts.maxTxnOps !== undefined ? { maxTxnOps: opts.maxTxnOps } : {}),
      },
    });
    const storage = await LevelLogStorage.open({ db: db.sublevel('raft', { keyEncoding: 'view', valueEncoding: 'view' }) });
    const sm = new KvStateMachine(store);
    let raft: RaftNode<EntryResult>;
    try {
      raft = await RaftNode.create<EntryResult>({
        id: opts.id,
        peers: opts.join === true || ids.length === 0 ? undefined : ids,
        storage,
        transport,
        stateMachine: sm,
        clock,
        tickMs,
        electionTicks,
        heartbeatTicks: opts.heartbeatTicks ?? 1,
        snapshotEntries: opts.snapshotEntries,
        proposalTimeoutMs: opts.requestTimeoutMs ?? 10_000,
        readTimeoutMs: opts.requestTimeoutMs ?? 10_000,
        random: opts.random,
      });
    } catch (err) {
      await store.close().catch(() => undefined);
      if (ownsDb) await db.close().catch(() => undefined);
      throw err;
    }
    const node = new KvNode(opts.id, raft, store, db, ownsDb, opts);
    sm.node = node;
    raft.on('leaderChange', (leader, term) => node.onLeaderChange(leader, term));
    raft.on('error', (err) => node.emit('error', err));
    node.scheduleLeaseCheck();
    node.scheduleAutoCompaction();
    return node;
  }

  // ------------------------------------------------------------------ KV

  /** {@inheritDoc KV.put} */
  async put(key: BytesLike, value: BytesLike, options: PutOptions = {}): Promise<PutResponse> {
    const res = await this.write({ put: putRequest(key, value, options) });
    return (res as { put: PutResponse }).put;
  }

  /** {@inheritDoc KV.get} */
  async get(key: BytesLike, options: RangeOptions = {}): Promise<KeyValue | undefined> {
    const res = await this.range({ ...options, key });
    return res.kvs[0];
  }

  /** {@inheritDoc KV.range} */
  async range(input: RangeInput): Promise<RangeResponse> {
    const req = rangeRequest(input);
    if (req.serializable !== true) await this.linearize();
    const res = await this.store.range(req);
    this.fillHeader(res.header);
    return res;
  }

  /** {@inheritDoc KV.delete} */
  async delete(key: BytesLike, options: DeleteOptions = {}): Promise<DeleteRangeResponse> {
    const res = await this.write({ deleteRange: deleteRequest({ key, ...options }) });
    return (res as { deleteRange: DeleteRangeResponse }).deleteRange;
  }

  /** {@inheritDoc KV.txn} */
  async txn(input: TxnInput): Promise<TxnResponse> {
    const req = txnRequest(input);
    const res = await this.write({ txn: req });
    return (res as { txn: TxnResponse }).txn;
  }

  /**
   * {@inheritDoc KV.watch}
   * A watch is served by this member from what it has applied: a member that
   * is cut off from the leader delivers nothing new until it catches up.
   */
  watch(key: BytesLike, options: WatchOptions = {}): Watch {
    this.assertOpen();
    const w = this.store.watch(watchRequest(key, options));
    this.watches.add(w);
    w.on('end', () => this.watches.delete(w));
    return w;
  }

  /** Sends a progress notification to every caught-up watch of this member (etcd's `RequestProgress`). */
  requestProgress(): void {
    this.store.requestProgress();
  }

  /**
   * Compacts the history below `revision` (etcd's `Compact`).
   * @param options.physical - resolve only once the old revisions are removed from the backend
   * @throws CompactedError when `revision` is at or below the last compaction; UsageError `QUORUMKV_FUTURE_REVISION`
   */
  async compact(revision: number, options: { physical?: boolean } = {}): Promise<CompactionResponse> {
    const res = await this.write({ compaction: { revision, physical: options.physical === true } });
    return (res as { compaction: CompactionResponse }).compaction;
  }

  /** {@inheritDoc KV.leaseGrant} */
  async leaseGrant(ttlSeconds: number, options: { id?: number } = {}): Promise<LeaseGrantResponse> {
    const res = await this.write({ leaseGrant: { ttl: ttlSeconds, ...(options.id !== undefined ? { id: options.id } : {}) } });
    return (res as { leaseGrant: LeaseGrantResponse }).leaseGrant;
  }

  /** {@inheritDoc KV.leaseRevoke} */
  async leaseRevoke(id: number): Promise<LeaseRevokeResponse> {
    const res = await this.write({ leaseRevoke: { id } });
    return (res as { leaseRevoke: LeaseRevokeResponse }).leaseRevoke;
  }

  /**
   * {@inheritDoc KV.leaseKeepAlive}
   * Replicated through the log so any member can serve it; the leader's
   * lessor renews the lease when it applies the entry.
   */
  async leaseKeepAlive(id: number): Promise<LeaseKeepAliveResponse> {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'lease id must be a positive safe integer');
    }
    this.assertOpen();
    const payload = pack(id);
    const data = new Uint8Array(payload.length + 1);
    data[0] = ENTRY_KEEPALIVE;
    data.set(payload, 1);
    const result = await this.raft.propose(data, { timeoutMs: this.requestTimeoutMs });
    if (result.status === 'failed') throw result.error;
    if (result.status !== 'keepAlive') throw new FaultError(ErrorCode.INTERNAL, `unexpected keep-alive result ${result.status}`);
    return { header: this.header(), id, ttl: result.ttl };
  }

  /**
   * {@inheritDoc KV.leaseTimeToLive}
   * Exact on the leader (whose lessor tracks expiry); elsewhere the
   * remaining TTL is reported as the granted TTL (an upper bound).
   */
  async leaseTimeToLive(id: number, options: { keys?: boolean } = {}): Promise<LeaseTimeToLiveResponse> {
    await this.linearize();
    const res = this.store.leaseTimeToLive({ id, keys: options.keys === true });
    this.fillHeader(res.header);
    return res;
  }

  /** {@inheritDoc KV.leases} */
  async leases(): Promise<LeaseLeasesResponse> {
    await this.linearize();
    const res = this.store.leaseLeases();
    this.fillHeader(res.header);
    return res;
  }

  // ------------------------------------------------------------ cluster

  /** Status of this member (etcd's `Status`). */
  status(): KvNodeStatus {
    const raft = this.raft.status();
    return {
      header: this.header(),
      memberId: this.id,
      leader: raft.leader,
      raftTerm: raft.term,
      raftIndex: raft.commit,
      raftAppliedIndex: raft.applied,
      revision: this.store.currentRevision(),
      compactRevision: this.store.compactRevision(),
      isLearner: raft.membership.learners.includes(this.id),
      raft,
    };
  }

  /** The current membership as applied on this member. */
  members(): ConfState {
    return this.raft.members();
  }

  /**
   * Adds a member (a voter, or a learner with `learner: true`) at `address`
   * (`host:port` for TCP). Start the new member with `join: true` after this
   * resolves.
   * @throws FaultError `QUORUMKV_CONF_CHANGE_PENDING`, `QUORUMKV_TIMEOUT`
   */
  addMember(id: string, address?: string, options: { learner?: boolean } = {}): Promise<ConfState> {
    return options.learner === true ? this.raft.addLearner(id, address) : this.raft.addVoter(id, address);
  }

  /** Removes a member; a removed member stops. */
  removeMember(id: string): Promise<ConfState> {
    return this.raft.removeMember(id);
  }

  /** Promotes a learner to voter (etcd's `MemberPromote`). */
  promoteMember(id: string): Promise<ConfState> {
    return this.raft.promoteLearner(id);
  }

  /**
   * Moves leadership to `to` (etcd's `MoveLeader`). Must be called on the leader.
   * @throws UsageError `QUORUMKV_NOT_LEADER`; FaultError `QUORUMKV_TIMEOUT`
   */
  moveLeader(to: string): Promise<void> {
    return this.raft.moveLeader(to);
  }

  /**
   * Stops the member: cancels its watches, stops Raft and the transport,
   * closes the store and (when it opened it) the database. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.leaseTimer !== undefined) this.clock.clearTimeout(this.leaseTimer);
    if (this.compactTimer !== undefined) this.clock.clearTimeout(this.compactTimer);
    for (const w of [...this.watches]) await w.cancel();
    await this.raft.close();
    await this.store.close();
    if (this.ownsDb) await this.db.close();
    log('[%s] closed', this.id);
  }

  // ---------------------------------------------------------- internals

  private assertOpen(): void {
    if (this.closed) throw new FaultError(ErrorCode.NODE_CLOSED, 'node is closed');
  }

  private header(): ResponseHeader {
    return { revision: this.store.currentRevision(), clusterId: this.clusterId, memberId: this.id, raftTerm: this.raft.status().term };
  }

  private fillHeader(h: ResponseHeader): void {
    h.clusterId = this.clusterId;
    h.memberId = this.id;
    h.raftTerm = this.raft.status().term;
  }

  private async linearize(): Promise<void> {
    this.assertOpen();
    await this.raft.readIndex({ timeoutMs: this.requestTimeoutMs });
  }

  private async write(req: WriteRequest): Promise<WriteResponse> {
    this.assertOpen();
    const encoded = prepareWriteRequest(req, this.limits);
    const data = new Uint8Array(encoded.length + 1);
    data[0] = ENTRY_WRITE;
    data.set(encoded, 1);
    const result = await this.raft.propose(data, { timeoutMs: this.requestTimeoutMs });
    if (result.status === 'failed') throw result.error;
    if (result.status !== 'applied') throw new FaultError(ErrorCode.INTERNAL, `unexpected apply result ${result.status}`);
    if ('compaction' in req && req.compaction.physical === true && result.physical !== undefined) await result.physical;
    const res = result.response;
    const inner = Object.values(res)[0] as { header: ResponseHeader };
    this.fillHeader(inner.header);
    return res;
  }

  private onLeaderChange(leader: string, term: number): void {
    if (leader === this.id) {
      // etcd: leases restart their TTL on a new leader, extended by an election timeout
      this.store.lessor.promote(this.electionMs);
      log('[%s] leader in term %d: lessor promoted', this.id, term);
    } else if (this.store.lessor.isPrimary()) {
      this.store.lessor.demote();
    }
    this.emit('leaderChange', leader, term);
  }

  private scheduleLeaseCheck(): void {
    if (this.closed) return;
    this.leaseTimer = this.clock.setTimeout(() => {
      this.revokeExpired();
      this.scheduleLeaseCheck();
    }, this.leaseCheckMs);
  }

  private revokeExpired(): void {
    if (!this.raft.isLeader || this.closed) return;
    for (const id of this.store.lessor.expired(64)) {
      log('[%s] lease %d expired: proposing its revoke', this.id, id);
      this.write({ leaseRevoke: { id } }).catch((err: Error) => log('[%s] revoke of expired lease %d failed: %s', this.id, id, err.message));
    }
  }

  private scheduleAutoCompaction(): void {
    const ac = this.autoCompaction;
    if (ac === undefined || this.closed) return;
    const interval = ac.intervalMs ?? (ac.mode === 'periodic' ? Math.max(1000, Math.floor(ac.retentionMs / 10)) : 60_000);
    this.compactTimer = this.clock.setTimeout(() => {
      this.autoCompact(ac);
      this.scheduleAutoCompaction();
    }, interval);
  }

  private autoCompact(ac: AutoCompaction): void {
    const now = this.clock.now();
    const current = this.store.currentRevision();
    this.revisionSamples.push({ at: now, revision: current });
    if (!this.raft.isLeader) return;
    let target = 0;
    if (ac.mode === 'revision') {
      target = current - ac.retention;
    } else {
      while (this.revisionSamples.length > 1 && this.revisionSamples[1]!.at <= now - ac.retentionMs) this.revisionSamples.shift();
      const oldest = this.revisionSamples[0]!;
      if (oldest.at <= now - ac.retentionMs) target = oldest.revision;
    }
    if (target <= Math.max(0, this.store.compactRevision())) return;
    log('[%s] auto-compaction to revision %d', this.id, target);
    this.compact(target).catch((err: Error) => log('[%s] auto-compaction failed: %s', this.id, err.message));
  }

  /** @internal applies a keep-alive entry on this member */
  keepAliveApplied(id: number): EntryResult {
    const lessor = this.store.lessor;
    if (lessor.lookup(id) === undefined) return { status: 'failed', error: new UsageError(ErrorCode.LEASE_NOT_FOUND, 'lease not found') };
    if (lessor.isPrimary()) {
      try {
        return { status: 'keepAlive', ttl: lessor.renew(id) };
      } catch (err) {
        if (err instanceof QuorumError) return { status: 'failed', error: err };
        throw err;
      }
    }
    return { status: 'keepAlive', ttl: lessor.lookup(id)!.ttl };
  }
}

/** The MVCC store as a Raft {@link StateMachine}. */
class KvStateMachine implements StateMachine<EntryResult> {
  node: KvNode | undefined;

  constructor(private readonly store: MvccStore) {}

  appliedIndex(): number {
    return this.store.appliedIndex();
  }

  async apply(entries: ApplyEntry[]): Promise<EntryResult[]> {
    const out: EntryResult[] = new Array(entries.length);
    let chunk: StoreEntry[] = [];
    let chunkAt: number[] = [];
    const flush = async (): Promise<void> => {
      if (chunk.length === 0) return;
      const results = await this.store.applyBatch(chunk);
      for (let i = 0; i < results.length; i++) out[chunkAt[i]!] = results[i]!;
      chunk = [];
      chunkAt = [];
    };
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (e.kind !== 'normal' || e.data.length === 0) {
        chunk.push({ index: e.index, request: null });
        chunkAt.push(i);
        continue;
      }
      if (e.data[0] === ENTRY_KEEPALIVE) {
        await flush();
        const id = unpack(e.data.subarray(1)) as number;
        out[i] = this.node !== undefined ? this.node.keepAliveApplied(id) : { status: 'noop' };
        chunk.push({ index: e.index, request: null });
        chunkAt.push(i);
        // the noop result for the index must not overwrite the keep-alive's
        const keep = out[i]!;
        await flush();
        out[i] = keep;
        continue;
      }
      chunk.push({ index: e.index, request: decodeWriteRequest(e.data.subarray(1)) });
      chunkAt.push(i);
    }
    await flush();
    return out;
  }

  snapshot(): Promise<Uint8Array> {
    return this.store.snapshot();
  }

  restore(s: { data: Uint8Array; index: number }): Promise<void> {
    return this.store.restore(s.data);
  }
}
