/**
 * `KvNode`: one member of a quorumkv cluster — the etcd-v3-style MVCC store
 * ({@link MvccStore}) run as the state machine of a {@link RaftNode}.
 *
 * - Writes (put, delete, txn, compaction, lease grant/revoke/keep-alive) are
 *   checked, then proposed; a follower forwards them to the leader. They
 *   resolve once applied on this member (etcd: linearizable writes).
 * - Reads are linearizable by default: ReadIndex (Raft thesis §6.4), then a
 *   local read once this member has applied up to the read index; with
 *   `serializable: true` they are answered locally at once (may be stale;
 *   a restarted member first catches up with what it applied before).
 * - Leases expire by the leader's clock only: the leader's lessor is promoted
 *   once the new leader has applied the entries of earlier terms (every TTL
 *   restarts, as in etcd, and keep-alives among those entries count) and
 *   the leader proposes the revoke of each expired lease.
 * - Maintenance and operations (etcd's maintenance API; see
 *   docs/operations.md): backups ({@link KvNode.snapshotSave},
 *   {@link KvNode.restore}), {@link KvNode.defragment},
 *   {@link KvNode.hashKv} and the periodic corruption check, the backend
 *   quota and alarms ({@link KvNode.alarms}, {@link KvNode.disarmAlarm}),
 *   Prometheus metrics with etcd's names ({@link KvNode.metricsRegistry}).
 * @module
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { AbstractLevel } from 'abstract-level';
import { ClassicLevel } from 'classic-level';
import createDebug from 'debug';
import { EventEmitter } from 'eventemitter3';
import { emitIsolated } from '../isolated-emit.js';
import { LEASE_REVOKE_RATE, type Lease } from '../lease/index.js';
import { Registry } from 'prom-client';
import { pack } from '../codec/index.js';
import { ErrorCode, FaultError, QuorumError, UsageError, isQuorumError } from '../errors.js';
import { describeValue } from '../arg-values.js';
import { DEFAULT_REQUEST_LIMITS, MvccStore, isTxnReadOnly, isTxnSerializable, prepareWriteRequest, type ApplyResult, type HashResult, type WriteRequest, type WriteResponse } from '../mvcc/index.js';
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
  TxnRequest,
  TxnResponse,
} from '../mvccpb/index.js';
import { RaftNode, systemClock, type Clock, type RaftNodeStatus, type TimerHandle } from '../node/index.js';
import { memberIdProblem, memberIdsProblem } from '../node/raft-node.js';
import type { ConfState } from '../raftpb/index.js';
import { LevelLogStorage, type LogStorage } from '../storage/index.js';
import { fsyncMadeDirs } from '../storage/durable-fs.js';
import { holdsNothing } from '../storage/checks.js';
import { DEFAULT_MAX_FRAME_BYTES, TcpTransport, checkTlsOptions, parseAddress, type TcpTlsOptions, type Transport } from '../transport/index.js';
import { growsStore, isAlarmType, type AlarmMember, type AlarmType } from './alarms.js';
import { filePathProblem, writeBackupFile } from './backup-file.js';
import { CLUSTER_ID_KEY, MEMBER_ID_KEY, dataDirLayout, isLevelDb, openDataDirLog, restoreBackup, type RestoreOptions, type RestoreResult } from './backup-restore.js';
import type { BytesLike, DeleteOptions, KV, PutOptions, RangeInput, RangeOptions, TxnInput, Watch, WatchOptions } from './kv.js';
import { KvStateMachine, type EntryResult, type KvStateMachineHost } from './kv-state-machine.js';
import { compactWholeRange, measureDbSize, type DbSize, type DefragmentResult } from './maintenance-size.js';
import { serverMetrics, type MetricsSource, type ServerMetrics } from './metrics.js';
import { TimedLogStorage } from './metrics-log-storage.js';
import { ClaimingLogStorage } from './claiming-log-storage.js';
import { RoundTripTransport } from './metrics-transport.js';
import { DEFAULT_QUOTA_BACKEND_BYTES, requestCost } from './quota.js';
import { VERSION } from './version.js';
import { checkOptionKeys, type NoKeyMissing } from '../option-keys.js';
import { RANGE_OPTION_KEYS, deleteRequest, flagOf, optionsWith, ownRange, ownReadTxn, putRequest, rangeRequest, txnRequest, watchRequest } from './requests.js';
import {
  EntryKind,
  encodeAlarmEntry,
  encodeHashCheckEntry,
  encodeHashReportEntry,
  encodeKeepAliveAnswer,
  encodeKeepAliveRequest,
  encodeLeaseExpiry,
  serverEntry,
  type KeepAliveAnswer,
  type KeepAliveRequest,
} from './server-entry.js';

const log = createDebug('quorumkv:server');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = AbstractLevel<any, any, any>;

/** One hour in ms: the longest interval of etcd's periodic compactor. */
const HOUR_MS = 3_600_000;

/** How often the database size is measured at most (ms of the node's clock). */
const SIZE_REFRESH_MS = 1000;

/**
 * Automatic compaction (etcd's `--auto-compaction-mode` / `--auto-compaction-retention`), run by
 * the leader, one compaction at a time: a check while the previous one is not yet applied proposes none.
 */
export type AutoCompaction =
  /**
   * Keep the last `retention` revisions (a non-negative integer): compact to
   * `current - retention` every `intervalMs` ms (default 300,000, etcd's
   * revision compactor's 5 minutes).
   */
  | { mode: 'revision'; retention: number; intervalMs?: number }
  /**
   * Keep `retentionMs` ms of history, as etcd 3.4's periodic compactor
   * (v3compactor/periodic.go): sample the revision at start and every `intervalMs` ms
   * (default a tenth of `min(retentionMs, 1 h)`, at least 1,000), and
   * compact, at most once every `min(retentionMs, 1 h)` since the last
   * compaction (or since the member began), to the revision sampled
   * `retentionMs` ago.
   */
  | { mode: 'periodic'; retentionMs: number; intervalMs?: number };

/** Options of {@link KvNode.open}. Times are whole ms unless named in ticks (a fraction is refused with `QUORUMKV_INVALID_CONFIG`). */
export interface KvNodeOptions {
  /** This member's id (non-empty, well-formed Unicode, not beginning with U+FEFF, at most 255 UTF-8 bytes). */
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
  /** Message transport, whose `id` is this member's `id` (`QUORUMKV_INVALID_CONFIG` otherwise). Default: a TcpTransport built from `members` addresses. */
  transport?: Transport;
  /**
   * Directory for the member's data (created if missing): `kv/`, the store
   * (a classic-level database), and `wal/`, the Raft log (`FileLogStorage`);
   * a directory of an earlier version keeps its classic-level log in `raft/`.
   */
  dataDir?: string;
  /**
   * Or an abstract-level database to use (for instance memory-level in
   * tests); the caller closes it. Current values are read back from it with
   * `getSync` once written; a database without `getSync` keeps every
   * current value in memory.
   */
  db?: AnyDb;
  /**
   * Cluster id for the TCP handshake (frames of other clusters are refused)
   * and response headers, kept with the data when it is first opened: a
   * later open with another id fails with `QUORUMKV_INVALID_CONFIG`.
   * Default: the id the data holds (from its first open, or from
   * {@link KvNode.restore}), else `'quorumkv'`. Non-empty, well-formed
   * Unicode, not beginning with U+FEFF, at most 255 UTF-8 bytes (as member
   * ids: it travels in every TCP handshake).
   */
  clusterId?: string;
  /**
   * TLS for the default TCP transport (mutual authentication). Refused with
   * a `transport` of your own (`QUORUMKV_INVALID_CONFIG`): give it that one.
   */
  tls?: TcpTlsOptions;
  /**
   * Bytes: the largest snapshot the default TCP transport accepts from the
   * leader (a member far behind gets the whole store: every key's kept
   * revisions, uncompressed, so several times the database's size on
   * disk). A larger one is refused, and the leader tries again after a
   * back-off: raise it on every member when the store outgrows it.
   * Default 1 GiB (`TcpTransportOptions.maxSnapshotBytes`). Refused with a
   * `transport` of your own (`QUORUMKV_INVALID_CONFIG`): give it that one.
   */
  maxSnapshotBytes?: number;
  /** Time source. Default: real time. */
  clock?: Clock;
  /** Raft tick: a whole number of ms, above 0. Default 100. */
  tickMs?: number;
  /** Election timeout in ticks. Default 10. */
  electionTicks?: number;
  /** Heartbeat interval in ticks. Default 1. */
  heartbeatTicks?: number;
  /** Snapshot every this many applied entries. Default 10,000. */
  snapshotEntries?: number;
  /** Entries kept behind a snapshot for slow followers (etcd's SnapshotCatchUpEntries); a follower further behind gets the snapshot. Default 5,000. */
  snapshotCatchUpEntries?: number;
  /** How long a request waits before `QUORUMKV_TIMEOUT`: a whole number of ms, above 0. Default 10,000. */
  requestTimeoutMs?: number;
  /**
   * Largest encoded write request in bytes (etcd's `--max-request-bytes`).
   * Default 1.5 MiB. The default TCP transport's `maxFrameBytes` (4 MiB) is
   * raised by as much as this is, so that the entries of such a request fit
   * in its frames; set the same on every member (a member with a smaller
   * one refuses the others' larger frames). With a `transport` of your own,
   * give it a `maxFrameBytes` to match.
   */
  maxRequestBytes?: number;
  /** Most operations in each of a txn's compare, success and failure lists. Default 128. */
  maxTxnOps?: number;
  /**
   * Most learners `addMember` lets the cluster have, the limit of the member
   * that adds one (etcd 3.4 allows one; 3.5's `--experimental-max-learners`,
   * default 1), checked on that member and by the leader, against the
   * membership each applied (beyond it: `QUORUMKV_TOO_MANY_LEARNERS`,
   * etcd's ErrTooManyLearners). Default 1.
   */
  maxLearners?: number;
  /**
   * etcd's `--strict-reconfig-check`: the leader refuses with
   * `QUORUMKV_UNHEALTHY` a new voter while any voter is down or while the
   * voters that vote freely would not be a quorum of the larger
   * configuration, and the removal of a voter that is up if the voters up,
   * less that one, would not be a quorum of the voters left, or those of them
   * that vote freely would not (down: not heard from within an election
   * timeout; a founding voter that acknowledged no leader's entry yet does
   * not vote freely: see RaftNodeOptions.strictReconfigCheck). Default true,
   * as in etcd.
   */
  strictReconfigCheck?: boolean;
  /** How often the leader looks for expired leases: a whole number of ms, above 0. Default 500. */
  leaseCheckMs?: number;
  /**
   * Automatic compaction by the leader (see {@link AutoCompaction}); off by default.
   * Refused with `QUORUMKV_INVALID_CONFIG` (from {@link KvNode.open}): an unknown
   * `mode`, a `retention` that is not a non-negative integer, a `retentionMs`
   * or `intervalMs` that is not a positive whole number of ms, a field of
   * another name.
   */
  autoCompaction?: AutoCompaction;
  /** Uniform random numbers in [0, 1) for election jitter (inject a seeded one for determinism; proposal ids still come from the platform CSPRNG, so restarts never reuse them). */
  random?: () => number;
  /**
   * Write the store's batches with fsync. Default true. They are written
   * after the client has its answer and coalesce while one is in flight, so
   * this costs little (docs/performance.md), and it keeps the store a
   * prefix of what was applied after a machine crash: with false, a power
   * loss can leave LevelDB holding later batches without earlier ones (an
   * unsynced write-ahead log is not written to disk in order), and the
   * store's applied index would then cover writes it lost. A process crash
   * (kill -9) loses nothing either way.
   */
  syncStore?: boolean;
  /**
   * How long (ms) the store's writer, when idle, waits for more applied
   * entries before it writes what was applied (etcd's
   * `--backend-batch-interval`, 100 ms there). Clients are answered at apply,
   * from memory, either way; the Raft log is the durable record. Batching
   * the store's writes over a few milliseconds makes one write (and one
   * fsync, with `syncStore`) of what would be one per proposal at low
   * concurrency, so they compete less with the Raft log's fsyncs. What is
   * applied while a write runs waits for the interval too, so under a steady
   * load the store writes once per interval. A whole number of ms, 0 or
   * more. Default 10.
   * @throws UsageError `QUORUMKV_INVALID_CONFIG` (from {@link KvNode.open}) when not a non-negative whole number of ms
   */
  backendBatchIntervalMs?: number;
  /**
   * Interval in ms of the progress notifications sent to idle, caught-up
   * watches that asked for them (`progressNotify`): etcd's
   * `--experimental-watch-progress-notify-interval`. Default 600000 (10
   * minutes, etcd's default); 0 sends none (a client can still ask with
   * `requestProgress`). A whole number of ms.
   * @throws UsageError `QUORUMKV_INVALID_CONFIG` (from {@link KvNode.open}) when not a non-negative whole number of ms
   */
  watchProgressNotifyIntervalMs?: number;
  /**
   * The backend quota in bytes (etcd's `--quota-backend-bytes`): a request
   * whose cost (see `requestCost`) would bring the database to it (`dbSize +
   * cost >= quotaBackendBytes`; etcd's `backendQuota.Available`) is refused
   * with `QUORUMKV_NO_SPACE` and raises a `NOSPACE` alarm. A whole number
   * of bytes, above 0 (an int64 in etcd). Default 2 GiB (etcd's default).
   * @throws UsageError `QUORUMKV_INVALID_CONFIG` (from {@link KvNode.open}) when not a positive whole number
   */
  quotaBackendBytes?: number;
  /**
   * Run the corruption check every this many ms on the leader (etcd's
   * `--experimental-corrupt-check-time`): a whole number of ms, above 0;
   * off by default. A member whose store hash differs from the majority's
   * gets a `CORRUPT` alarm.
   */
  corruptCheckMs?: number;
  /**
   * Metrics: the prom-client registry to register them in (members may
   * share one; every series has a `member` label). Default: a new registry
   * for this member ({@link KvNode.metricsRegistry}).
   */
  metrics?: { registry?: Registry };
  /** A synced Raft log write slower than this (a whole number of ms; 0 warns of every one) is logged as a warning on `quorumkv:server`. Default 100. */
  slowFsyncMs?: number;
}

/** A member of the cluster, as {@link KvNode.memberList} gives it (etcd's `Member`). */
export interface Member {
  /** The member's id. */
  id: string;
  /** True for a learner (etcd's `isLearner`). */
  isLearner: boolean;
  /** Where the transports reach it (`host:port` on TCP; etcd's `peerURLs`), when known. */
  address?: string;
}

/** What {@link KvNode.memberList} returns (etcd's `MemberListResponse`). */
export interface MemberListResponse {
  /** The store's current revision, the cluster id, this member's id and its Raft term. */
  header: ResponseHeader;
  /** Voters, then learners, each in id order. */
  members: Member[];
}

/** What `KvNode.status()` reports (etcd's `StatusResponse`, plus Raft details). */
export interface KvNodeStatus {
  /** The store's current revision, the cluster id, this member's id and its Raft term. */
  header: ResponseHeader;
  /** This member's id. */
  memberId: string;
  /**
   * The quorumkv version this member runs ({@link VERSION}; etcd's
   * `version`, the server's version, which `etcdctl endpoint status` shows).
   */
  version: string;
  /**
   * Leader id, `''` when unknown, and on a member removed from the cluster
   * or stopped by a fatal error, which follows no leader (`raft.leader`
   * keeps the one its Raft node last knew).
   */
  leader: string;
  /** This member's current Raft term (etcd's `raftTerm`). */
  raftTerm: number;
  /** This member's Raft commit index (etcd's `raftIndex`, the committed index since etcd 3.4). */
  raftIndex: number;
  /** Raft index of the last entry applied to the store (etcd's `raftAppliedIndex`). */
  raftAppliedIndex: number;
  /** The store's current revision. */
  revision: number;
  /** The store's compaction revision (-1 before any). */
  compactRevision: number;
  /** True when this member is a learner in the membership it has applied (etcd's `isLearner`). */
  isLearner: boolean;
  /** The Raft node's own status: role, vote, last and snapshot indexes, membership, and the leader's per-peer progress. */
  raft: RaftNodeStatus;
  /**
   * Physical size of the database in bytes (etcd's `dbSize`; see
   * `maintenance-size.ts` for how each backend measures it), measured
   * within about a second of this member's last change (an apply, the end
   * of a physical compaction), at most once a second.
   */
  dbSize: number;
  /** Bytes of the database in use by live data (etcd's `dbSizeInUse`), measured with `dbSize`. */
  dbSizeInUse: number;
  /** The backend quota in bytes. */
  quotaBackendBytes: number;
  /** Active alarms, as applied on this member. */
  alarms: AlarmMember[];
  /**
   * What is wrong, in etcd's words (etcd's `errors`, the ERRORS column of
   * `etcdctl endpoint status`): `'etcdserver: no leader'` while `leader` is
   * `''`, then one `'memberID:<id> alarm:<NOSPACE|CORRUPT>'` per alarm.
   * Empty when all is well.
   */
  errors: string[];
}

/** What {@link KvNode.snapshotSave} reports. */
export interface SnapshotSaveResult {
  /** The store's revision in the backup. */
  revision: number;
  /** The Raft index the backup is at. */
  appliedIndex: number;
  /** Size of the backup file in bytes. */
  size: number;
  /** Where the file is. */
  path: string;
}

/** What {@link KvNode.hashKv} reports (etcd's `HashKVResponse`). */
export interface HashKvResponse {
  /** The store's current revision (not the revision hashed), the cluster id, this member's id and its Raft term. */
  header: ResponseHeader;
  /** CRC-32 of the store up to `revision` (see `MvccStore.hash`). */
  hash: number;
  /** The revision hashed up to (etcd's `hash_revision`). */
  revision: number;
  /** The compaction revision. */
  compactRevision: number;
}

/** A change of the active alarms, as applied on this member. */
export interface AlarmChange {
  /** Log index of the entry that changed them. */
  index: number;
  /** Alarms that became active with this entry (empty when none). */
  raised: AlarmMember[];
  /** Alarms that this entry cleared (empty when none). */
  cleared: AlarmMember[];
}

/** Events a {@link KvNode} emits. */
export interface KvNodeEvents {
  /**
   * The leader known to this member changed: its id (`''` when none is
   * known, e.g. during an election) and this member's Raft term then.
   */
  leaderChange: (leader: string, term: number) => void;
  /**
   * Alarms were raised or cleared (on every member, when it applies the
   * change, or installs a Raft snapshot that holds it: `index` is then the
   * snapshot's).
   */
  alarm: (change: AlarmChange) => void;
  /**
   * A fatal error stopped the member's Raft node (a storage or state machine
   * failure): it takes no further part in the cluster, and calls fail with
   * `QUORUMKV_NODE_CLOSED` (serializable reads and new watches included; its
   * watches end with a cancelled response), but for `status()`,
   * `members()`, `alarms()` and maintenance. Close the member and investigate.
   */
  error: (err: Error) => void;
}

function membersOf(m: KvNodeOptions['members']): { ids: string[]; addresses: Record<string, string> } {
  if (m === undefined) return { ids: [], addresses: {} };
  if (Array.isArray(m)) return { ids: [...m], addresses: {} };
  if (m === null || typeof m !== 'object') badConfig('members must be a list of ids or an object of ids to host:port');
  // a Map (or any object that is not plain) has no own keys to read: it was taken for no member
  const proto = Object.getPrototypeOf(m) as unknown;
  if (proto !== Object.prototype && proto !== null) badConfig('members must be a list of ids or a plain object of ids to host:port (for a Map, pass Object.fromEntries(map))');
  return { ids: Object.keys(m), addresses: { ...m } };
}

/** ms on `clock`, from `performance.now()` for the system clock (monotonic, unlike `Date.now()`). */
function monotonicNow(clock: Clock): () => number {
  return clock === systemClock ? () => performance.now() : () => clock.now();
}

/**
 * The error of a database that failed to open: abstract-level's own message
 * ("Database failed to open") says nothing, its cause says why. A database
 * locked by another open (another `KvNode` on the same `dataDir`, in this
 * process or another) is named as such.
 */
function openFailure(err: unknown, path: string | undefined): FaultError {
  const causes: string[] = [];
  let locked = false;
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if ((e as { code?: unknown }).code === 'LEVEL_LOCKED') locked = true;
    if (!causes.includes(e.message)) causes.push(e.message);
  }
  const where = path === undefined ? 'the database' : `the database ${path}`;
  const detail = causes.length > 0 ? causes.join(': ') : String(err);
  const msg = locked
    ? `cannot open ${where}: it is in use by another open (another KvNode on the same dataDir, in this process or another; close that one first): ${detail}`
    : `cannot open ${where}: ${detail}`;
  return new FaultError(ErrorCode.STORAGE_IO, msg, { cause: err });
}

function badConfig(msg: string): never {
  throw new UsageError(ErrorCode.INVALID_CONFIG, msg);
}

/** Whether `v` is a whole number (of ms, or bytes) of at least `min`: a safe integer. */
function wholeMs(v: unknown, min: 0 | 1): boolean {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= min;
}

/** Every key of {@link KvNodeOptions}: any other is refused. */
const KV_NODE_OPTION_KEYS = [
  'id',
  'members',
  'join',
  'transport',
  'dataDir',
  'db',
  'clusterId',
  'tls',
  'maxSnapshotBytes',
  'clock',
  'tickMs',
  'electionTicks',
  'heartbeatTicks',
  'snapshotEntries',
  'snapshotCatchUpEntries',
  'requestTimeoutMs',
  'maxRequestBytes',
  'maxTxnOps',
  'maxLearners',
  'strictReconfigCheck',
  'leaseCheckMs',
  'autoCompaction',
  'random',
  'syncStore',
  'backendBatchIntervalMs',
  'watchProgressNotifyIntervalMs',
  'quotaBackendBytes',
  'corruptCheckMs',
  'metrics',
  'slowFsyncMs',
] as const satisfies readonly (keyof KvNodeOptions)[];
// compiles only while the list names every key of the interface
type KvNodeOptionKeysComplete = NoKeyMissing<Exclude<keyof KvNodeOptions, (typeof KV_NODE_OPTION_KEYS)[number]>>;

/**
 * The `maxFrameBytes` of the default TCP transport for a member accepting
 * write requests of up to `maxRequestBytes`: the transport's default (4 MiB,
 * room for a 1 MiB `MsgApp` plus one entry of the default 1.5 MiB request
 * limit), raised by as much as the request limit is. A message that does not
 * fit in a frame is never sent, and Raft sends the entry that made it too
 * large again and again: a write the member accepted would stall every
 * later one.
 * @param maxRequestBytes - the member's `maxRequestBytes` (default 1.5 MiB)
 */
function maxFrameBytesFor(maxRequestBytes: number | undefined): number {
  const limit = maxRequestBytes ?? DEFAULT_REQUEST_LIMITS.maxRequestBytes;
  return Math.max(DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_FRAME_BYTES - DEFAULT_REQUEST_LIMITS.maxRequestBytes + limit);
}

/**
 * Checks the options {@link KvNode.open} can check without touching the data,
 * so that bad ones fail before anything is created.
 * @throws UsageError `QUORUMKV_INVALID_CONFIG`
 */
function checkOpenOptions(opts: KvNodeOptions): void {
  if (opts === null || typeof opts !== 'object') badConfig('options are required');
  checkOptionKeys(opts, KV_NODE_OPTION_KEYS, 'KvNode.open options');
  if (opts.metrics !== undefined) {
    if (opts.metrics === null || typeof opts.metrics !== 'object') badConfig('metrics must be { registry? }');
    checkOptionKeys(opts.metrics, ['registry'], 'KvNode.open options.metrics');
  }
  const idProblem = memberIdProblem(opts.id);
  if (idProblem !== undefined) badConfig(`id must ${idProblem}`);
  // whole ms, as etcd takes them (uint ms): clocks keep no fraction (a
  // VirtualClock fires a 1e-9 ms timer at 1 ms, a 1.5 ms one at 1 ms), so
  // the timeouts computed from a fraction drifted from the time that passed
  const positiveMs = { tickMs: opts.tickMs, requestTimeoutMs: opts.requestTimeoutMs, leaseCheckMs: opts.leaseCheckMs, corruptCheckMs: opts.corruptCheckMs };
  for (const [name, v] of Object.entries(positiveMs)) {
    if (v !== undefined && !wholeMs(v, 1)) badConfig(`${name} must be a positive whole number of ms (got ${describeValue(v)})`);
  }
  // a threshold, not a timer: 0 warns of every synced write
  if (opts.slowFsyncMs !== undefined && !wholeMs(opts.slowFsyncMs, 0)) badConfig(`slowFsyncMs must be a non-negative whole number of ms (got ${describeValue(opts.slowFsyncMs)})`);
  // a byte count (etcd's QuotaBackendBytes is an int64)
  const quota = opts.quotaBackendBytes;
  if (quota !== undefined && !wholeMs(quota, 1)) badConfig(`quotaBackendBytes must be a positive whole number of bytes (got ${describeValue(quota)})`);
  const counts = {
    electionTicks: opts.electionTicks,
    heartbeatTicks: opts.heartbeatTicks,
    snapshotEntries: opts.snapshotEntries,
    maxRequestBytes: opts.maxRequestBytes,
    maxTxnOps: opts.maxTxnOps,
    maxLearners: opts.maxLearners,
    maxSnapshotBytes: opts.maxSnapshotBytes,
  };
  for (const [name, v] of Object.entries(counts)) {
    if (v !== undefined && !(typeof v === 'number' && Number.isSafeInteger(v) && v > 0)) badConfig(`${name} must be a positive integer`);
  }
  if ((opts.heartbeatTicks ?? 1) >= (opts.electionTicks ?? 10)) badConfig('electionTicks must be greater than heartbeatTicks');
  const catchUp = opts.snapshotCatchUpEntries;
  if (catchUp !== undefined && !(typeof catchUp === 'number' && Number.isSafeInteger(catchUp) && catchUp >= 0)) {
    badConfig('snapshotCatchUpEntries must be a non-negative integer');
  }
  const bi = opts.backendBatchIntervalMs;
  if (bi !== undefined && !wholeMs(bi, 0)) badConfig(`backendBatchIntervalMs must be a non-negative whole number of ms (got ${describeValue(bi)})`);
  const pi = opts.watchProgressNotifyIntervalMs;
  if (pi !== undefined && !wholeMs(pi, 0)) badConfig(`watchProgressNotifyIntervalMs must be a non-negative whole number of ms, 0 for none (got ${describeValue(pi)})`);
  for (const [name, v] of Object.entries({ join: opts.join, syncStore: opts.syncStore, strictReconfigCheck: opts.strictReconfigCheck })) {
    if (v !== undefined && typeof v !== 'boolean') badConfig(`${name} must be a boolean`);
  }
  if (opts.random !== undefined && typeof opts.random !== 'function') badConfig('random must be a function returning a number in [0, 1)');
  // carried in every TCP handshake, which an acceptor reads under 16 KiB and
  // compares once decoded: one longer, or one UTF-8 cannot carry (a lone
  // surrogate), had every handshake refused and the cluster never formed
  if (opts.clusterId !== undefined) {
    const problem = memberIdProblem(opts.clusterId);
    if (problem !== undefined) badConfig(`clusterId must ${problem}`);
  }
  const hasMethods = (v: unknown, names: string[]): boolean =>
    v !== null && typeof v === 'object' && names.every((n) => typeof (v as Record<string, unknown>)[n] === 'function');
  if (opts.clock !== undefined && !hasMethods(opts.clock, ['now', 'setTimeout', 'clearTimeout'])) badConfig('clock must be { now, setTimeout, clearTimeout }');
  if (opts.transport !== undefined && !hasMethods(opts.transport, ['start', 'send', 'addPeer', 'removePeer', 'close'])) {
    badConfig('transport must be a Transport ({ start, send, addPeer, removePeer, close }): a TcpTransport or MemoryNetwork.transport(id)');
  }
  // a transport sends only messages from its own id: a member on another's
  // never sent a message (a cluster went on without it, its writes timed out)
  if (opts.transport !== undefined && opts.transport.id !== opts.id) {
    badConfig(`transport.id must be this member's id ${opts.id}, got ${describeValue(opts.transport.id)}: a transport sends only messages from its own id`);
  }
  if (opts.tls !== undefined) checkTlsOptions(opts.tls);
  // options of the default TCP transport: with a transport of the caller's
  // they were ignored without a word (a member believed to be on mutual TLS
  // talked plain TCP)
  if (opts.transport !== undefined) {
    for (const [name, v] of Object.entries({ tls: opts.tls, maxSnapshotBytes: opts.maxSnapshotBytes })) {
      if (v !== undefined) badConfig(`${name} configures the default TCP transport: with a transport of your own, give it to that transport (TcpTransportOptions.${name})`);
    }
  }
  const ac = opts.autoCompaction;
  if (ac !== undefined) {
    if (ac === null || typeof ac !== 'object') badConfig("autoCompaction must be { mode: 'revision', retention } or { mode: 'periodic', retentionMs }");
    checkOptionKeys(ac, ac.mode === 'periodic' ? ['mode', 'retentionMs', 'intervalMs'] : ['mode', 'retention', 'intervalMs'], 'KvNode.open options.autoCompaction');
    if (ac.mode === 'revision') {
      if (!(typeof ac.retention === 'number' && Number.isSafeInteger(ac.retention) && ac.retention >= 0)) badConfig('autoCompaction.retention must be a non-negative integer (revisions)');
    } else if (ac.mode === 'periodic') {
      if (!wholeMs(ac.retentionMs, 1)) badConfig(`autoCompaction.retentionMs must be a positive whole number of ms (got ${describeValue(ac.retentionMs)})`);
    } else {
      badConfig(`unknown autoCompaction mode ${describeValue((ac as { mode?: unknown }).mode)} (revision or periodic)`);
    }
    if (ac.intervalMs !== undefined && !wholeMs(ac.intervalMs, 1)) {
      badConfig(`autoCompaction.intervalMs must be a positive whole number of ms (got ${describeValue(ac.intervalMs)})`);
    }
  }
}

/** A keep-alive or time-to-live call of this member waiting for the leader's answer. */
interface KeepAliveWaiter {
  request: KeepAliveRequest;
  /** Called with the leader's answer, at the apply of the answer here. */
  resolve(ttl: number): void;
  reject(err: Error): void;
  timer: TimerHandle;
  /**
   * A time-to-live question: the lease this member's store held at the last
   * apply of the question here (`undefined`: none), and whether every apply
   * of it found that same lease; `null` until the question is applied here
   * (again after a snapshot from the leader, which may cover it). The
   * leader's answer may come from any apply of the question (it is proposed
   * again while it waits): it is that lease's only if the lease stayed the
   * same since.
   */
  seen?: { lease: Lease | undefined; stable: boolean } | null;
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
  /** The prom-client registry this member's metrics are in (the one given in `metrics.registry`, or its own). */
  readonly metricsRegistry: Registry;

  private readonly db: AnyDb;
  private readonly ownsDb: boolean;
  private readonly sm: KvStateMachine;
  private readonly metrics: ServerMetrics;
  private readonly metricsSource: MetricsSource;
  private readonly clock: Clock;
  /** ms for durations: monotonic with the system clock (see {@link monotonicNow}). */
  private readonly now: () => number;
  /** etcd's minimum lease TTL in seconds: `(3 × electionTicks) / 2` whole ticks (about 1.5 × the election timeout), rounded up to seconds. */
  private readonly minLeaseTtl: number;
  private readonly clusterId: string;
  private readonly requestTimeoutMs: number;
  private readonly limits: { maxRequestBytes?: number; maxTxnOps?: number };
  private readonly maxLearners: number;
  private readonly electionMs: number;
  private readonly leaseCheckMs: number;
  private readonly autoCompaction: AutoCompaction | undefined;
  private readonly quotaBytes: number;
  private readonly corruptCheckMs: number | undefined;
  private leaseTimer: TimerHandle | undefined;
  private compactTimer: TimerHandle | undefined;
  private corruptTimer: TimerHandle | undefined;
  /** Whether peers are reached by TCP (`host:port` addresses, checked by addMember). */
  private tcpAddresses = false;
  /** The addresses `members` gave this member when it opened, by id. */
  private configuredAddresses: Readonly<Record<string, string>> = {};
  private readonly revisionSamples: { at: number; revision: number }[] = [];
  /** An auto-compaction is proposed and not yet settled: the next checks propose none. */
  private autoCompacting = false;
  /**
   * Whether this member has caught up, since it opened, with everything it
   * may have answered before: it has applied the last entry its log held
   * when it opened, or completed a ReadIndex round (a member opened with
   * `join: true`: only the round). Until then serializable reads take a
   * ReadIndex round too (see {@link range}), and the store holds back the
   * watches from now (see {@link watch}).
   */
  private caughtUp = false;
  /** The last index of the log as loaded when this member opened (infinite for a member opened with `join: true`: only a ReadIndex round catches it up). */
  private caughtUpIndex = 0;
  /** ReadIndex rounds are taken for the watches from now waiting for this member to catch up ({@link catchUpForWatches}). */
  private watchCatchUp = false;
  /** The pause before the next of those rounds, and what ends it early (a leader heard of, a close). */
  private watchCatchUpPause: { timer: TimerHandle; wake: () => void } | undefined;
  /** When the last automatic compaction succeeded, or when this member began (ms of its clock; periodic mode). */
  private lastAutoCompactAt = 0;
  private closed = false;
  /** The fatal error that stopped this member's Raft node (see {@link onStopped}). */
  private stopped: Error | undefined;
  /** The close in progress or done: later calls of {@link close} wait for it. */
  private closing: Promise<void> | undefined;
  /** Keep-alive calls of this member waiting for the leader's answer, by nonce (see {@link resendKeepAlives}). */
  private readonly keepAliveWaiters = new Map<string, KeepAliveWaiter>();
  private keepAliveSeq = 0;
  /**
   * Keep-alives this leader applied while their lease had expired and its
   * revoke was not applied yet, by lease id. etcd's `lessor.Renew` waits in
   * that case: lease-not-found once the revoke is applied, "not primary"
   * (the client tries again) if the lessor is demoted first, for a new
   * leader restarts every TTL and the lease lives on. So they are answered
   * when the revoke is applied, and proposed again if this member stops
   * leading first.
   */
  private readonly expiredKeepAlives = new Map<number, KeepAliveRequest[]>();
  /**
   * Set while this member leads but has not applied the entries of earlier
   * terms yet: its lessor is promoted once it has applied `index` (the last
   * entry of its log when elected, its term's empty entry) in `term` (see
   * `maybePromote`).
   */
  private promoteAfter: { term: number; index: number } | undefined;
  /** Keep-alives applied by this leader before its lessor was promoted: answered at the promotion. */
  private keepAlivesBeforePromotion: KeepAliveRequest[] = [];
  /**
   * Tells this run's keep-alive nonces from an earlier run's (whose answers
   * may still be applied after a restart): random, not the clock, which may
   * step back.
   */
  private readonly keepAliveRun = randomBytes(8).toString('hex');
  /** Since when (clock ms) no leader is known; undefined while one is. */
  private noLeaderSince: number | undefined;
  private pending = 0;
  private size: DbSize = { dbSize: 0, dbSizeInUse: 0 };
  private sizeAt = -Infinity;
  /**
   * Bytes (etcd's request costs) of the growing writes applied since the
   * last size measure began: the quota check adds them to the measured size,
   * which is taken at most once a second (etcd reads its backend's size on
   * every request; measuring classic-level is a scan of its tables).
   */
  private grownSinceMeasure = 0;
  private sizing: Promise<DbSize> | undefined;
  /**
   * The measure due after a change that came too soon after the last one
   * (see {@link refreshSizeSoon}): an idle member's size is then at most
   * about a second older than its last change.
   */
  private sizeTimer: TimerHandle | undefined;
  private raisingNoSpace = false;

  private constructor(
    id: string,
    raft: RaftNode<EntryResult>,
    store: MvccStore,
    sm: KvStateMachine,
    db: AnyDb,
    ownsDb: boolean,
    clusterId: string,
    metrics: ServerMetrics,
    opts: KvNodeOptions,
  ) {
    super();
    this.id = id;
    this.raft = raft;
    this.store = store;
    this.sm = sm;
    this.db = db;
    this.ownsDb = ownsDb;
    this.metrics = metrics;
    this.metricsRegistry = metrics.registry;
    this.clock = opts.clock ?? systemClock;
    this.now = monotonicNow(this.clock);
    this.clusterId = clusterId;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
    this.limits = {};
    if (opts.maxRequestBytes !== undefined) this.limits.maxRequestBytes = opts.maxRequestBytes;
    if (opts.maxTxnOps !== undefined) this.limits.maxTxnOps = opts.maxTxnOps;
    this.maxLearners = opts.maxLearners ?? 1;
    this.electionMs = (opts.tickMs ?? 100) * (opts.electionTicks ?? 10);
    // etcd: (3 × electionTicks) / 2 whole ticks, then rounded up to seconds;
    // tickMs is a whole number of ms, so their product is exact (a
    // fractional one made ticks of whole seconds round up by the binary
    // product: 3750 × 66.4 ms is 249000.00000000003 ms in doubles)
    const minTtlMs = Math.floor((3 * (opts.electionTicks ?? 10)) / 2) * (opts.tickMs ?? 100);
    this.minLeaseTtl = Math.max(1, Math.ceil(minTtlMs / 1000));
    this.leaseCheckMs = opts.leaseCheckMs ?? 500;
    this.autoCompaction = opts.autoCompaction;
    this.quotaBytes = opts.quotaBackendBytes ?? DEFAULT_QUOTA_BACKEND_BYTES;
    this.corruptCheckMs = opts.corruptCheckMs;
    this.noLeaderSince = raft.leader === '' ? this.now() : undefined;
    const self = this;
    this.metricsSource = {
      id,
      // a member stopped by a fatal error, or removed, follows no leader any
      // more: the one it last knew stays in its Raft state, never updated
      hasLeader: () => self.raft.leader !== '' && self.stopped === undefined && !self.raft.removed,
      isLeader: () => self.raft.isLeader,
      commitIndex: () => self.raft.status().commit,
      appliedIndex: () => self.raft.appliedIndex,
      pendingProposals: () => self.pending,
      quotaBackendBytes: () => self.quotaBytes,
      dbSize: () => self.size,
      revision: () => self.store.currentRevision(),
      compactRevision: () => self.store.compactRevision(),
      watchers: () => {
        const g = self.store.watcherGroups();
        return { total: g.synced + g.unsynced + g.victims + g.waiting, slow: g.unsynced + g.victims };
      },
      leaseCount: () => self.store.lessor.leaseCount(),
      alarmList: () => self.sm.alarms.list(),
    };
  }

  /**
   * Opens (or creates) a member: its database, store, Raft node and
   * transport. A new cluster is founded when the data is empty and
   * `members` is given; a member restarting from its data needs only `id`,
   * the data and a transport (or `members` addresses for the TCP default).
   * The data holds its cluster id from the first open on (or from
   * {@link KvNode.restore}), used when `clusterId` is not given.
   * @throws UsageError `QUORUMKV_INVALID_CONFIG` for bad options (a
   *   malformed `host:port` in `members`, a time in ms that is not a whole
   *   number of ms, `quotaBackendBytes` that is not a whole number of
   *   bytes, and an option of a name {@link KvNodeOptions} does not declare
   *   included; nothing is created), a
   *   `clusterId` that differs from the one the data holds, data another
   *   member opened first (its id is kept with the data, durably before
   *   the Raft log's first write), a `metrics.registry`
   *   that a member of the same id (open, or opening) already uses (refused
   *   before anything is opened), or one holding a metric of one of the
   *   metrics' names from elsewhere (none is registered), or data that
   *   holds nothing of this member opened without `members` and without
   *   `join: true` (a new member needs its founding members or must join;
   *   nothing is claimed)
   * @throws FaultError `QUORUMKV_STORAGE_IO` when the data directory cannot be created (a file
   *   in its place) or the database cannot be opened
   *   (for instance locked by another open of the same `dataDir`, in this
   *   process or another: the message says so and names the directory), `QUORUMKV_CORRUPT_LOG`,
   *   `QUORUMKV_CORRUPT_SNAPSHOT` when the Raft log is compacted behind a
   *   snapshot whose state the store no longer holds (the store's database,
   *   `kv/`, lost or replaced by an older copy while `wal/` was kept),
   *   `QUORUMKV_LISTEN_FAILED` when the default TCP transport cannot listen
   *   (a port in use)
   */
  static async open(opts: KvNodeOptions): Promise<KvNode> {
    checkOpenOptions(opts);
    if ((opts.dataDir === undefined) === (opts.db === undefined)) {
      throw new UsageError(ErrorCode.INVALID_CONFIG, 'exactly one of dataDir and db is required');
    }
    if (opts.dataDir !== undefined && (typeof opts.dataDir !== 'string' || opts.dataDir === '')) {
      badConfig(`dataDir must be a non-empty string (a directory), got ${opts.dataDir === '' ? "''" : typeof opts.dataDir}`);
    }
    if (opts.db !== undefined && !isLevelDb(opts.db)) badConfig('db must be an abstract-level database (such as a ClassicLevel or MemoryLevel)');
    const { ids, addresses } = membersOf(opts.members);
    if (ids.length > 0 && !ids.includes(opts.id)) {
      throw new UsageError(ErrorCode.INVALID_CONFIG, `members must include this member's id ${opts.id}`);
    }
    if (new Set(ids).size !== ids.length || ids.some((i) => typeof i !== 'string' || i === '')) {
      throw new UsageError(ErrorCode.INVALID_CONFIG, 'member ids must be unique non-empty strings');
    }
    // each founding member becomes a voter: one whose id no member can open
    // with (over 255 bytes, a lone surrogate, which UTF-8 turns into another
    // id) would be a voter that never starts
    const idsProblem = memberIdsProblem(ids);
    if (idsProblem !== undefined) badConfig(idsProblem);
    if (opts.transport === undefined && addresses[opts.id] === undefined) badConfig('without a transport, members must map every id to its host:port');
    // the TCP transport refuses a malformed address when it learns it (a
    // given one below, with QUORUMKV_INVALID_ARGUMENT): refused here, before
    // anything is opened, as a bad option
    if (opts.transport === undefined || opts.transport instanceof TcpTransport) {
      for (const [id, address] of Object.entries(addresses)) {
        try {
          parseAddress(address);
        } catch (err) {
          badConfig(`member ${id}: ${(err as Error).message}`);
        }
      }
    }
    const registry = opts.metrics?.registry ?? new Registry();
    const metrics = serverMetrics(registry);
    // a second member of this id in the registry is refused here, before
    // it writes to its data or starts Raft
    metrics.reserve(opts.id);
    try {
      return await KvNode.openMember(opts, ids, addresses, metrics);
    } catch (err) {
      metrics.unreserve(opts.id);
      throw err;
    }
  }

  /** {@link open} once the options are checked and the id is reserved in `metrics`. */
  private static async openMember(opts: KvNodeOptions, ids: string[], addresses: Record<string, string>, metrics: ServerMetrics): Promise<KvNode> {
    let db: AnyDb;
    /** The first directory made for `dataDir` (by `mkdirSync`), if any. */
    let madeDirs: string | undefined;
    const ownsDb = opts.db === undefined;
    if (opts.db !== undefined) {
      db = opts.db;
    } else {
      if (existsSync(join(opts.dataDir!, 'CURRENT'))) {
        // a LevelDB database in dataDir itself: the one-database layout of earlier versions
        throw new UsageError(
          ErrorCode.INVALID_CONFIG,
          `${opts.dataDir} holds a database in the layout of an earlier version (one database for the store and the Raft log); ` +
            'this version keeps them apart below dataDir (kv/ and wal/): take a backup with the earlier version (snapshotSave) and KvNode.restore it into a new dataDir',
        );
      }
      try {
        madeDirs = mkdirSync(opts.dataDir!, { recursive: true });
      } catch (err) {
        // a file where the directory should be (EEXIST, ENOTDIR), no permission
        throw new FaultError(ErrorCode.STORAGE_IO, `cannot create the data directory ${opts.dataDir}: ${(err as Error).message}`, { cause: err });
      }
      db = new ClassicLevel<Uint8Array, Uint8Array>(dataDirLayout(opts.dataDir!).kv, { keyEncoding: 'view', valueEncoding: 'view' });
    }
    try {
      if (db.status !== 'open') await db.open();
    } catch (err) {
      throw openFailure(err, ownsDb ? dataDirLayout(opts.dataDir!).kv : undefined);
    }
    const closeDb = async (): Promise<void> => {
      if (ownsDb) await db.close().catch(() => undefined);
    };
    const serverDb = db.sublevel('server', { keyEncoding: 'utf8', valueEncoding: 'view' });
    const idsDb = db.sublevel('server', { keyEncoding: 'utf8', valueEncoding: 'utf8' });
    /**
     * The ids this open is to keep with the data: saved before the Raft
     * log's first write (see {@link ClaimingLogStorage}) or once the member
     * is up, whichever comes first. An open that fails before either claims
     * nothing; data that holds any of this member's Raft state is its own.
     */
    const unsavedIds: [string, string][] = [];
    let clusterId: string;
    /** Whether the data names this member as its owner (it then holds this member's Raft state, or held it). */
    let owned = false;
    try {
      const saved = await idsDb.get(CLUSTER_ID_KEY);
      if (saved !== undefined && opts.clusterId !== undefined && saved !== opts.clusterId) {
        throw new UsageError(ErrorCode.INVALID_CONFIG, `the data belongs to cluster ${saved}, not ${opts.clusterId}`);
      }
      // the data is one member's (its log, its votes), as etcd keeps the
      // member id in its WAL: another member opening it could vote twice
      const owner = await idsDb.get(MEMBER_ID_KEY);
      if (owner !== undefined && owner !== opts.id) {
        throw new UsageError(ErrorCode.INVALID_CONFIG, `the data belongs to member ${owner}, not ${opts.id}`);
      }
      owned = owner !== undefined;
      if (owner === undefined) unsavedIds.push([MEMBER_ID_KEY, opts.id]);
      clusterId = opts.clusterId ?? saved ?? 'quorumkv';
      // kept with the data from the first open on, as etcd keeps its cluster
      // id in its WAL: a later open with another id is refused, and one that
      // leaves the option out uses it
      if (saved === undefined) unsavedIds.push([CLUSTER_ID_KEY, clusterId]);
    } catch (err) {
      await closeDb();
      if (err instanceof QuorumError) throw err;
      throw new FaultError(ErrorCode.STORAGE_IO, `cannot read the cluster id: ${(err as Error).message}`, { cause: err });
    }

    let transport = opts.transport;
    try {
      if (transport === undefined) {
        const peers: Record<string, string> = {};
        for (const [id, addr] of Object.entries(addresses)) if (id !== opts.id) peers[id] = addr;
        const listen = parseAddress(addresses[opts.id]!);
        const tcpOpts: ConstructorParameters<typeof TcpTransport>[0] = { id: opts.id, clusterId, listen, peers, maxFrameBytes: maxFrameBytesFor(opts.maxRequestBytes) };
        if (opts.tls !== undefined) tcpOpts.tls = opts.tls;
        if (opts.maxSnapshotBytes !== undefined) tcpOpts.maxSnapshotBytes = opts.maxSnapshotBytes;
        transport = new TcpTransport(tcpOpts);
      } else {
        // every listed member, also for a joining member (whose Raft knows no peer until the leader's snapshot)
        for (const id of ids) if (id !== opts.id) transport.addPeer(id, addresses[id]);
      }
    } catch (err) {
      await closeDb();
      throw err;
    }

    const tickMs = opts.tickMs ?? 100;
    const electionTicks = opts.electionTicks ?? 10;
    const clock = opts.clock ?? systemClock;
    const slowFsyncMs = opts.slowFsyncMs ?? 100;
    let store: MvccStore | undefined;
    let sm: KvStateMachine;
    let storage: ClaimingLogStorage | undefined;
    let raft: RaftNode<EntryResult> | undefined;
    // every watch response carries the whole header, as etcd's watchStream
    // fills it when it sends one (v3rpc/watch.go sendLoop): the term is
    // this member's when the response is made
    const memberId = opts.id;
    const watchHeader = (revision: number): ResponseHeader => ({ revision, clusterId, memberId, raftTerm: raft === undefined ? 0 : raft.term });
    try {
      store = await MvccStore.open(db.sublevel('mvcc', { keyEncoding: 'view', valueEncoding: 'view' }), {
        // Applying an entry must not depend on this member's options, which
        // may differ from other members' (a rolling change of the election
        // timeout or of maxTxnOps): the proposer raises a lease's TTL to its
        // minimum (leaseGrant) and checks the request limits (write), and
        // the store applies what the entry says.
        minLeaseTtl: 1,
        limits: { maxTxnOps: Number.POSITIVE_INFINITY },
        // lease expiry on a monotonic clock: a step of the wall clock (NTP,
        // a resumed VM) must not expire every lease at once
        now: monotonicNow(clock),
        sync: opts.syncStore ?? true,
        batchIntervalMs: opts.backendBatchIntervalMs ?? 10,
        watch: {
          responseHeader: watchHeader,
          ...(opts.watchProgressNotifyIntervalMs !== undefined ? { progressIntervalMs: opts.watchProgressNotifyIntervalMs } : {}),
        },
        timer: clock,
        onBackendCommit: (seconds) => metrics.backendCommit.observe({ member: opts.id }, seconds),
      });
      sm = await KvStateMachine.open(store, serverDb, { sync: opts.syncStore ?? true });
      // the entries of the directories made for dataDir, and of kv/ in it,
      // outlive a power loss, as the log does (the log's storage makes wal/
      // durable in dataDir)
      if (opts.dataDir !== undefined) await fsyncMadeDirs(opts.dataDir, madeDirs);
      // with a dataDir the Raft log is kept apart (dataDirLayout), and the storage closes it
      const inner =
        opts.dataDir !== undefined
          ? await openDataDirLog(opts.dataDir)
          : await LevelLogStorage.open({ db: db.sublevel('raft', { keyEncoding: 'view', valueEncoding: 'view' }) });
      if (!owned && ids.length === 0 && opts.join !== true) {
        // data that holds nothing of this member: without founding members
        // or `join`, its Raft would wait for a leader that never comes (etcd
        // refuses to start a new member without its initial cluster)
        const loaded = await inner.load().catch(async (err: unknown) => {
          await inner.close().catch(() => undefined);
          throw err;
        });
        if (holdsNothing(loaded)) {
          await inner.close().catch(() => undefined);
          throw new UsageError(
            ErrorCode.INVALID_CONFIG,
            `member ${opts.id} has no data yet: give it the founding members (members) to start a new cluster, or join: true with the current members to join one`,
          );
        }
      }
      const timed = new TimedLogStorage(inner, (seconds) => {
        metrics.walFsync.observe({ member: opts.id }, seconds);
        if (seconds * 1000 > slowFsyncMs) {
          log('[%s] WARN slow fsync of the Raft log: %d ms (threshold %d ms)', opts.id, Math.round(seconds * 1000), slowFsyncMs);
        }
      });
      storage = new ClaimingLogStorage(timed, async () => {
        try {
          // one batch: a failure or a crash leaves both ids or neither (a
          // member id alone would claim data that holds nothing of its own)
          if (unsavedIds.length > 0) await idsDb.batch(unsavedIds.map(([key, value]) => ({ type: 'put' as const, key, value })), { sync: true } as object);
        } catch (err) {
          throw new FaultError(ErrorCode.STORAGE_IO, `cannot save the member and cluster ids: ${(err as Error).message}`, { cause: err });
        }
      });
    } catch (err) {
      // the store runs a progress timer: a failed open must not leave it behind
      await store?.close().catch(() => undefined);
      await closeDb();
      throw err;
    }
    const now = monotonicNow(clock);
    const measured = new RoundTripTransport(transport, now, (to, seconds) => metrics.peerRoundTrip.observe({ member: opts.id, To: to }, seconds), tickMs * electionTicks);
    try {
      raft = await RaftNode.create<EntryResult>({
        id: opts.id,
        peers: opts.join === true || ids.length === 0 ? undefined : ids,
        storage,
        transport: measured,
        stateMachine: sm,
        clock,
        tickMs,
        electionTicks,
        heartbeatTicks: opts.heartbeatTicks ?? 1,
        snapshotEntries: opts.snapshotEntries,
        snapshotCatchUpEntries: opts.snapshotCatchUpEntries,
        proposalTimeoutMs: opts.requestTimeoutMs ?? 10_000,
        readTimeoutMs: opts.requestTimeoutMs ?? 10_000,
        random: opts.random,
        strictReconfigCheck: opts.strictReconfigCheck,
      });
      // a member that has written nothing yet (a joining one that has heard
      // from no leader) keeps its ids with the data too
      await storage.claim();
    } catch (err) {
      // whichever of them opened before the failure; an apply the Raft node
      // started waits for the member, which will not come: it fails, and
      // the close (which waits for it) ends
      sm.abandon(new FaultError(ErrorCode.NODE_CLOSED, 'the member failed to open'));
      await raft?.close().catch(() => undefined);
      await store?.close().catch(() => undefined);
      await storage?.close().catch(() => undefined);
      await closeDb();
      throw err;
    }
    const node = new KvNode(opts.id, raft, store, sm, db, ownsDb, clusterId, metrics, opts);
    // Every entry this member applied (and so may have answered) before it
    // went down is in the log it loaded: entries are applied only once
    // durable. Its store, written in batches, and the commit index, saved
    // lazily, may be older than those answers.
    // A joining member's store is empty, or holds what came of the leader's
    // snapshot and entries before it restarted, which the leader may send
    // in several messages. etcd serves a new member's clients only once
    // its publish entry is applied, after all of them: here, once a
    // ReadIndex round completes (applied up to the leader's commit index),
    // whatever its log holds.
    node.caughtUpIndex = opts.join === true ? Number.POSITIVE_INFINITY : raft.status().lastIndex;
    node.caughtUp = raft.appliedIndex >= node.caughtUpIndex;
    // its watches from now start once it has (see watch)
    if (!node.caughtUp) store.holdWatchesFromNow();
    node.tcpAddresses = transport instanceof TcpTransport;
    node.configuredAddresses = { ...addresses };
    sm.attach(node.stateMachineHost());
    try {
      metrics.attach(node.metricsSource);
    } catch (err) {
      await node.close();
      throw err;
    }
    // The member's own listeners: an error in one is a broken invariant of
    // the member, which stops it, as an error of its state machine does (a
    // caller's listener that throws is isolated instead: see emitIsolated).
    const own =
      <A extends unknown[]>(f: (...args: A) => void) =>
      (...args: A): void => {
        try {
          f(...args);
        } catch (err) {
          raft.stopOnFatal(err instanceof Error ? err : new Error(String(err)));
        }
      };
    raft.on('leaderChange', own((leader: string, term: number) => node.onLeaderChange(leader, term)));
    raft.on('snapshot', (index, source) => {
      log('[%s] snapshot at index %d (%s)', opts.id, index, source === 'local' ? 'taken locally' : 'installed from the leader');
      // the answers to this member's keep-alives may be among the entries it replaces
      if (source === 'leader') {
        for (const w of node.keepAliveWaiters.values()) if (w.seen !== undefined) w.seen = null;
        node.resendKeepAlives(`snapshot at index ${index} installed`);
      }
    });
    raft.on(
      'applied',
      own((index: number) => {
        if (!node.caughtUp && index >= node.caughtUpIndex) node.markCaughtUp();
        node.maybePromote();
        node.refreshSizeSoon();
      }),
    );
    // a member whose Raft node stopped serves nothing more: its watches end
    raft.on('error', own((err: Error) => node.onStopped(err)));
    raft.on('error', (err) => emitIsolated(node, 'error', err));
    // a removed member serves nothing more: its watches end, as its etcd
    // server's streams do when it stops
    raft.on('removed', own(() => node.onRemoved()));
    await node.refreshSize().catch((err: Error) => log('[%s] cannot measure the database size: %s', opts.id, err.message));
    node.scheduleLeaseCheck();
    node.lastAutoCompactAt = node.now();
    // etcd's periodic compactor takes its first sample as it starts
    if (node.autoCompaction?.mode === 'periodic') node.revisionSamples.push({ at: node.now(), revision: node.store.currentRevision() });
    node.scheduleAutoCompaction();
    node.scheduleCorruptCheck();
    return node;
  }

  /**
   * Builds a new member's data from a backup made by {@link snapshotSave},
   * as a member of a new cluster (etcd's `etcdutl snapshot restore`): run it
   * for every member with the same file and the same `members`, then open
   * each member with {@link KvNode.open} on the data. Every member starts
   * with the store exactly as it was at the backup's revision, and a Raft
   * log that starts with a snapshot at index 1 whose ConfState is `members`
   * (see `backup-restore.ts`). The new cluster gets a new cluster id
   * (`clusterId`, or one derived from the backup and the member list), saved
   * with the data, with the member id `id`: the data is that member's (an
   * open under another id is refused). Alarms are not restored.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `path` is not a
   *   non-empty string or holds a NUL character; `QUORUMKV_INVALID_CONFIG`
   *   for bad options (one of a name {@link RestoreOptions} does not declare
   *   included, a `dataDir` holding a NUL character) or a data directory (or
   *   database) that is not empty; nothing is created
   * @throws FaultError `QUORUMKV_CORRUPT_SNAPSHOT` when the file is corrupt
   *   or truncated (checked whole before anything is created); `QUORUMKV_STORAGE_IO`
   */
  static restore(path: string, options: RestoreOptions): Promise<RestoreResult> {
    return restoreBackup(path, options);
  }

  // ------------------------------------------------------------------ KV

  /** {@inheritDoc KV.put} */
  async put(key: BytesLike, value: BytesLike, options: PutOptions = {}): Promise<PutResponse> {
    const res = await this.write({ put: putRequest(key, value, options, true) });
    return (res as { put: PutResponse }).put;
  }

  /** {@inheritDoc KV.get} */
  async get(key: BytesLike, options: RangeOptions = {}): Promise<KeyValue | undefined> {
    const res = await this.range({ ...optionsWith(options, 'get options', RANGE_OPTION_KEYS), key });
    return res.kvs[0];
  }

  /**
   * {@inheritDoc KV.range}
   * @throws FaultError `QUORUMKV_CORRUPT` on a member with a `CORRUPT` alarm
   *   (for a linearizable read, also one this member applies before the read point)
   */
  async range(input: RangeInput): Promise<RangeResponse> {
    // its own bytes: the caller may change its own while the read waits
    const req = ownRange(rangeRequest(input));
    this.assertServing();
    this.assertNotCorrupt();
    if (req.serializable !== true || !this.caughtUp) await this.linearize();
    const res = await this.store.range(req);
    this.fillHeader(res.header);
    return res;
  }

  /** {@inheritDoc KV.delete} */
  async delete(key: BytesLike, options: DeleteOptions = {}): Promise<DeleteRangeResponse> {
    const res = await this.write({ deleteRange: deleteRequest({ key, ...optionsWith(options, 'delete options', ['rangeEnd', 'prefix', 'prevKv']) }) });
    return (res as { deleteRange: DeleteRangeResponse }).deleteRange;
  }

  /**
   * {@inheritDoc KV.txn}
   * A read-only txn (ranges alone, in both branches) is served as a read, as
   * etcd serves it (`EtcdServer.Txn`): after a ReadIndex round, unless it
   * has ranges and every one is `serializable` (and this member has caught
   * up since it opened, as for a serializable {@link range}), this member evaluates it on
   * what it has applied, and nothing goes through the log. (etcd 3.4 also
   * takes a txn of compares alone as serializable; here it is linearizable.)
   */
  async txn(input: TxnInput): Promise<TxnResponse> {
    const req = txnRequest(input, 1, this.limits.maxTxnOps ?? DEFAULT_REQUEST_LIMITS.maxTxnOps);
    // its own bytes: the caller may change its own while the read waits (a write is encoded at once)
    if (isTxnReadOnly(req)) return this.readOnlyTxn(ownReadTxn(req));
    const res = await this.write({ txn: req });
    return (res as { txn: TxnResponse }).txn;
  }

  /**
   * {@inheritDoc KV.watch}
   * A watch is served by this member from what it has applied: a member that
   * is cut off from the leader delivers nothing new until it catches up.
   * Each of its responses (events, progress notifications, cancellations)
   * has the whole header, as etcd's: `clusterId`, this member's `memberId`,
   * `revision`, and `raftTerm`, this member's term when the response was
   * made.
   *
   * A watch from now (no `startRevision`, or 0) created on a member that
   * restarted and has not caught up yet with what it applied before it
   * went down (as for a serializable {@link range}: it has applied the log
   * it reopened with, or completed a ReadIndex round), or on a member
   * opened with `join: true` that has not completed a ReadIndex round yet
   * (whatever its log brought),
   * is returned at once but starts only once the member has caught up,
   * after the revision it has then: before, its store may be older than
   * revisions the cluster, and this member, acknowledged. etcd serves no
   * request before its restarted server is ready; its client waits, and
   * opens the watch then. Meanwhile the watch delivers nothing, a progress
   * notification asked for ({@link requestProgress}) goes out when it
   * starts, at the revision it starts after, and `cancel()` ends it at
   * once. The member takes ReadIndex rounds to catch up, again and again
   * (every election timeout, or as soon as it hears of a leader) while it
   * is cut off from the quorum: the watch waits as long as that lasts, and
   * ends, with its last response `canceled: true`, only when the member
   * closes or stops serving, as every watch does (its `header.revision`
   * then the revision the member has). A watch with a `startRevision`
   * starts at once, from what the member has applied. A watch from now
   * created while the member installs a snapshot from the leader starts
   * after the snapshot's revision, as reads made meanwhile wait for it.
   */
  watch(key: BytesLike, options: WatchOptions = {}): Watch {
    this.assertServing();
    const w = this.store.watch(watchRequest(key, options));
    if (w.state === 'waiting') this.catchUpForWatches();
    return w;
  }

  /**
   * Sends a progress notification to every watch of this member (etcd's
   * `RequestProgress`): at once to a caught-up one, and to one catching up
   * from history (or whose queue is full) once it has caught up (and has
   * room), as etcd defers it; requests made meanwhile make one notification.
   * A watch from now waiting for this member to catch up after a restart
   * (see {@link watch}) gets it when it starts, at the revision it starts
   * after.
   * @throws FaultError `QUORUMKV_NODE_CLOSED`, `QUORUMKV_REMOVED`
   */
  requestProgress(): void {
    this.assertServing();
    this.store.requestProgress();
  }

  /**
   * Compacts the history below `revision` (etcd's `Compact`).
   * @param options.physical - resolve only once the old revisions are removed from the backend
   * @throws CompactedError when `revision` is at or below the last compaction; UsageError `QUORUMKV_FUTURE_REVISION`,
   *   `QUORUMKV_INVALID_ARGUMENT` (a revision that is not a safe integer, options of the wrong type); FaultError as {@link KV.put}
   */
  async compact(revision: number, options: { physical?: boolean } = {}): Promise<CompactionResponse> {
    const physical = flagOf(optionsWith(options, 'compact options', ['physical']).physical, 'physical');
    const res = await this.write({ compaction: { revision, physical } });
    return (res as { compaction: CompactionResponse }).compaction;
  }

  /** {@inheritDoc KV.leaseGrant} */
  async leaseGrant(ttlSeconds: number, options: { id?: number } = {}): Promise<LeaseGrantResponse> {
    const { id } = optionsWith(options, 'leaseGrant options', ['id']);
    // raised here, not where the entry is applied: the minimum follows this
    // member's election timeout, and every member must apply the same TTL
    const ttl = typeof ttlSeconds === 'number' && Number.isSafeInteger(ttlSeconds) ? Math.max(ttlSeconds, this.minLeaseTtl) : ttlSeconds;
    const res = await this.write({ leaseGrant: { ttl, ...(id !== undefined ? { id } : {}) } });
    return (res as { leaseGrant: LeaseGrantResponse }).leaseGrant;
  }

  /** {@inheritDoc KV.leaseRevoke} */
  async leaseRevoke(id: number): Promise<LeaseRevokeResponse> {
    const res = await this.write({ leaseRevoke: { id } });
    return (res as { leaseRevoke: LeaseRevokeResponse }).leaseRevoke;
  }

  /**
   * {@inheritDoc KV.leaseKeepAlive}
   * Served through the log so any member can take it: the request is a log
   * entry, and the leader's lessor renews the lease when it applies it and
   * answers (etcd serves keep-alives on the leader). An answer from the
   * leader that the lease is unknown or revoked is
   * `QUORUMKV_LEASE_NOT_FOUND`, as etcd's client reports a TTL of 0. A
   * lease that has expired on the leader but whose revoke is not applied
   * yet is neither: as etcd's `lessor.Renew` does, the answer waits for the
   * revoke (then not found), and if leadership moves first the request is
   * served by the new leader, which has restarted the lease's TTL. While it
   * waits for the answer, this member proposes the request again whenever it
   * learns of a new leader or installs a snapshot from the leader (the
   * answer may have been lost with the old leader, or be covered by the
   * snapshot), as etcd's client sends a keep-alive again to the new leader:
   * a keep-alive renews the lease whenever applied, and the first answer,
   * from the lessor that renewed it, is the result.
   * @throws UsageError `QUORUMKV_LEASE_NOT_FOUND`
   * @throws FaultError `QUORUMKV_TIMEOUT` when no leader answered within
   *   `requestTimeoutMs` (for instance while no leader could be elected),
   *   `QUORUMKV_NO_LEADER` when no leader has been known for two election
   *   timeouts
   */
  async leaseKeepAlive(id: number): Promise<LeaseKeepAliveResponse> {
    if (typeof id !== 'number' || !Number.isSafeInteger(id)) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'lease id must be a safe integer');
    }
    this.assertServing();
    // etcd answers a keep-alive of an id no lease can have like one of an unknown lease
    if (id <= 0) throw new UsageError(ErrorCode.LEASE_NOT_FOUND, 'etcdserver: requested lease not found');
    const ttl = await this.askLeader(id, false, this.requestTimeoutMs, (t) => t);
    if (ttl < 0) throw new UsageError(ErrorCode.LEASE_NOT_FOUND, 'etcdserver: requested lease not found');
    return { header: this.header(), id, ttl };
  }

  /**
   * Proposes a keep-alive of lease `id` (or, with `timeToLive`, a question
   * for its remaining TTL) and waits for the leader's answer: the TTL in
   * seconds, -1 when the lease is unknown (or, for a keep-alive, expired),
   * passed to `read` at the apply of the answer here. The request is
   * proposed again while it waits (see {@link resendKeepAlives}).
   */
  private askLeader<T>(id: number, timeToLive: boolean, timeoutMs: number, read: (ttl: number) => T): Promise<T> {
    const nonce = `${this.keepAliveRun}/${++this.keepAliveSeq}`;
    const request: KeepAliveRequest = { lease: id, origin: this.id, nonce, ...(timeToLive ? { timeToLive: true as const } : {}) };
    const what = timeToLive ? 'time-to-live' : 'keep-alive';
    const answered = new Promise<T>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        this.keepAliveWaiters.delete(nonce);
        reject(new FaultError(ErrorCode.TIMEOUT, `no answer to the ${what} of lease ${id} within ${timeoutMs} ms`));
      }, timeoutMs);
      const settle = (ttl: number): void => {
        try {
          resolve(read(ttl));
        } catch (err) {
          reject(err as Error);
        }
      };
      this.keepAliveWaiters.set(nonce, { request, resolve: settle, reject, timer, ...(timeToLive ? { seen: null } : {}) });
    });
    answered.catch(() => undefined);
    // not awaited: the answer may come to a request proposed again (see
    // resendKeepAlives) while this proposal is never applied here (lost
    // with the old leader, or covered by a snapshot)
    this.proposeEntry(encodeKeepAliveRequest(request)).catch((err: Error) => this.settleKeepAlive(nonce, undefined, err));
    return answered;
  }

  /**
   * {@inheritDoc KV.leaseTimeToLive}
   * The remaining TTL is the leader's, whose lessor alone tracks expiry
   * (etcd forwards `LeaseTimeToLive` to the leader): on the leader it is
   * read once a ReadIndex round confirms its leadership; elsewhere (or on a
   * leader that stepped down meanwhile) the member proposes the question as
   * a log entry, as it does a keep-alive, and the leader answers when it
   * applies it (renewing nothing). The granted TTL and the attached keys are
   * read from this member's store once the answer is applied here; a lease
   * revoked since the leader answered (granted again with the same id or
   * not) is reported unknown, as it was at the revoke. After a
   * change of leader the remaining time can exceed the granted TTL by up to
   * the new leader's election timeout (its lessor restarts every TTL with
   * that extension, as etcd's `Promote` does), and, with 1,000 leases or
   * more, by the time their expiries are spread by (see
   * `Lessor.promote`).
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` (an id that is not a safe
   *   integer, options other than `{ keys }`)
   * @throws FaultError `QUORUMKV_TIMEOUT` when neither the read index nor
   *   the leader's answer came within `requestTimeoutMs` (for instance
   *   while no leader could be elected), `QUORUMKV_NO_LEADER` when no leader
   *   has been known for two election timeouts, `QUORUMKV_CORRUPT` (this
   *   member has a `CORRUPT` alarm), `QUORUMKV_NODE_CLOSED`,
   *   `QUORUMKV_REMOVED`
   */
  async leaseTimeToLive(id: number, options: { keys?: boolean } = {}): Promise<LeaseTimeToLiveResponse> {
    if (typeof id !== 'number' || !Number.isSafeInteger(id)) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'lease id must be a safe integer');
    }
    const keys = flagOf(optionsWith(options, 'leaseTimeToLive options', ['keys']).keys, 'keys');
    this.assertServing();
    this.assertNotCorrupt();
    const deadline = this.now() + this.requestTimeoutMs;
    if (this.store.lessor.isPrimary() || id <= 0) {
      await this.linearize();
      // a lessor demoted while the read waited no longer tracks expiry (it
      // would report the granted TTL): the leader is asked, as below
      if (this.store.lessor.isPrimary() || id <= 0) {
        const res = this.store.leaseTimeToLive({ id, keys });
        this.fillHeader(res.header);
        return res;
      }
      this.assertServing();
    }
    // read at the apply of the answer here, which comes after the question,
    // which the leader applied after this call began: what this member has
    // applied then includes every write committed before the call (a
    // linearizable read); the lease is the one the leader answered for, or
    // the TTL is -1 (see settleKeepAlive)
    const res = await this.askLeader(id, true, Math.max(1, deadline - this.now()), (ttl) => {
      const r = this.store.leaseTimeToLive({ id, keys: keys && ttl >= 0 });
      if (ttl < 0) Object.assign(r, { ttl: -1, grantedTtl: 0, keys: [] });
      else if (r.ttl >= 0) r.ttl = ttl;
      return r;
    });
    this.assertServing();
    this.assertNotCorrupt();
    this.fillHeader(res.header);
    return res;
  }

  /** {@inheritDoc KV.leases} */
  async leases(): Promise<LeaseLeasesResponse> {
    this.assertServing();
    this.assertNotCorrupt();
    await this.linearize();
    const res = this.store.leaseLeases();
    this.fillHeader(res.header);
    return res;
  }

  // ------------------------------------------------------------ cluster

  /**
   * Status of this member (etcd's `Status`): its version, Raft term, commit and applied
   * indexes, leader, learner flag, revisions, database size and size in use
   * (bytes), quota, and active alarms. Answered locally, at once.
   */
  status(): KvNodeStatus {
    const raft = this.raft.status();
    // as etcd_server_has_leader (metricsSource.hasLeader): a member that
    // was removed or stopped follows no leader, whatever Raft last knew
    const leader = this.stopped === undefined && !raft.removed ? raft.leader : '';
    const alarms = this.sm.alarms.list();
    return {
      header: this.header(),
      memberId: this.id,
      version: VERSION,
      leader,
      raftTerm: raft.term,
      raftIndex: raft.commit,
      raftAppliedIndex: raft.applied,
      revision: this.store.currentRevision(),
      compactRevision: this.store.compactRevision(),
      isLearner: raft.membership.learners.includes(this.id),
      raft,
      dbSize: this.size.dbSize,
      dbSizeInUse: this.size.dbSizeInUse,
      quotaBackendBytes: this.quotaBytes,
      alarms,
      // etcd's maintenance server: ErrNoLeader, then each AlarmMember
      errors: [...(leader === '' ? ['etcdserver: no leader'] : []), ...alarms.map((a) => `memberID:${a.memberId} alarm:${a.alarm}`)],
    };
  }

  /** The current membership as applied on this member. */
  members(): ConfState {
    return this.raft.members();
  }

  /**
   * The members, with their addresses (etcd's `MemberList`, whose members
   * carry their peer URLs), as applied on this member, answered locally as
   * etcd 3.4 does: voters, then learners, each in id order.
   * @returns `{ header, members }`, each member `{ id, isLearner, address? }`:
   *   `address` is the one replicated for it (`addMember`, `updateMember`),
   *   else the one this member's `members` option gave it when it opened,
   *   else absent (a member added without one, on a transport that needs none)
   */
  memberList(): MemberListResponse {
    const { voters, learners } = this.raft.members();
    const entry = (id: string, isLearner: boolean): Member => {
      const address = this.raft.addressOf(id) ?? this.configuredAddresses[id];
      return address === undefined ? { id, isLearner } : { id, isLearner, address };
    };
    return {
      header: this.header(),
      members: [...voters].sort().map((id) => entry(id, false)).concat([...learners].sort().map((id) => entry(id, true))),
    };
  }

  /**
   * Adds a member (a voter, or a learner with `learner: true`) at `address`
   * (`host:port` for TCP). Start the new member with `join: true` after this
   * resolves. One change at a time (Raft thesis §4.1).
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for malformed input (an
   *   id that is empty, not well-formed Unicode, begins with U+FEFF or is
   *   over 255 UTF-8 bytes; an address that is not a non-empty string of at
   *   most 1024 UTF-8 bytes (it is replicated in the change and in every
   *   snapshot), or missing or not `host:port` / `[ipv6]:port` on the TCP
   *   transport; options of the wrong type). The membership refuses, each
   *   with etcd's error: `QUORUMKV_MEMBER_EXISTS` an id that is a member
   *   already ("etcdserver: member ID already exist", ErrIDExists; promote a
   *   learner with `promoteMember`), `QUORUMKV_MEMBER_ID_REMOVED` one that
   *   was removed from the cluster (ErrIDRemoved), `QUORUMKV_TOO_MANY_LEARNERS`
   *   a learner beyond `maxLearners` ("etcdserver: too many learner members
   *   in cluster", ErrTooManyLearners). These read the membership applied
   *   on this member; the leader makes them again against the membership it
   *   applied (etcd's `ValidateConfigurationChange`): an id that another
   *   member's change added or removed meanwhile, or a learner another
   *   member's took the last place of, fails so, with the same codes,
   *   through the log when called on a follower. An address another member
   *   was added or updated with (`QUORUMKV_PEER_ADDRESS_EXISTS`,
   *   "etcdserver: Peer URLs already exists", ErrPeerURLexists; the
   *   founding members' addresses are not compared) is refused by the
   *   leader alone: one freed by a removal or an update that this member has
   *   not applied yet is accepted.
   * @throws FaultError `QUORUMKV_CONF_CHANGE_PENDING`, `QUORUMKV_TIMEOUT`,
   *   `QUORUMKV_NODE_CLOSED`, `QUORUMKV_UNHEALTHY` (`strictReconfigCheck`: a
   *   new voter while a voter is down, or while the voters that vote freely
   *   would not be a quorum of the larger configuration)
   */
  addMember(id: string, address?: string, options: { learner?: boolean } = {}): Promise<ConfState> {
    let learner: boolean;
    try {
      this.assertServing();
      learner = flagOf(optionsWith(options, 'addMember options', ['learner']).learner, 'learner');
      // etcd's MemberAdd refuses a peer URL it cannot parse, and requires one:
      // over TCP no member could send to a member added without an address
      // (a voter added so to one voter stalled the cluster for good)
      if (this.tcpAddresses) {
        if (address === undefined) throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'on the TCP transport a new member needs its address (host:port): no member could reach it without one');
        parseAddress(address);
      }
    } catch (err) {
      return Promise.reject(err);
    }
    const { voters, learners } = this.raft.members();
    if (voters.includes(id) || learners.includes(id)) {
      return Promise.reject(new UsageError(ErrorCode.MEMBER_EXISTS, `etcdserver: member ID already exist (${id})`));
    }
    // (the leader counts the learners again, as etcd does at apply: one
    // another member added meanwhile counts)
    return learner ? this.raft.addLearner(id, address, { maxLearners: this.maxLearners }) : this.raft.addVoter(id, address);
  }

  /**
   * Changes the address at which the other members reach member `id`
   * (etcd's `MemberUpdate`): a replicated change that leaves the membership
   * as it is. Every member applies it and redials `id` at `address`. To
   * move a member: update it, then restart it listening at the new address
   * (with the same `dataDir`), as with etcd's `member update`; a member that
   * moves first cannot be reached until the update is applied. One change
   * at a time (Raft thesis §4.1).
   * @param address - the new address (`host:port` or `[ipv6]:port` on the
   *   TCP transport)
   * @returns the membership, once the change is applied on this member
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an id that is not a
   *   valid member id or an address that is missing, not a non-empty string
   *   of at most 1024 UTF-8 bytes or, on the TCP transport, not `host:port`;
   *   `QUORUMKV_MEMBER_ID_REMOVED` for an id that was removed ("etcdserver:
   *   ID removed", etcd's ErrIDRemoved; all checked on this member);
   *   `QUORUMKV_MEMBER_NOT_FOUND` for an id that is not a member
   *   ("etcdserver: member not found", etcd's ErrIDNotFound) and
   *   `QUORUMKV_PEER_ADDRESS_EXISTS` for an address another member was
   *   added or updated with ("etcdserver: Peer URLs already exists", etcd's
   *   ErrPeerURLexists; the founding members' addresses are only in the
   *   transports' configuration and are not compared): these two are
   *   checked by the leader against the membership it applied, through the
   *   log when called on a follower, which may not have applied yet the
   *   change that added the id or freed the address
   * @throws FaultError `QUORUMKV_CONF_CHANGE_PENDING`, `QUORUMKV_TIMEOUT`,
   *   `QUORUMKV_NODE_CLOSED`, `QUORUMKV_REMOVED`
   */
  updateMember(id: string, address: string): Promise<ConfState> {
    try {
      this.assertServing();
      if (typeof address !== 'string' || address === '') throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'updateMember needs the new address, a non-empty string');
      if (this.tcpAddresses) parseAddress(address);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.raft.updateMember(id, address);
  }

  /**
   * Removes a member (a replicated configuration change, Raft thesis §4.1);
   * a removed member stops. One that was down or cut off, and so never
   * applies its own removal, is told so by the others when it reaches them
   * (etcd's rafthttp `410 Gone`) and stops then: its transport keeps a
   * stream to its peers, so it hears soon after it can reach one that
   * applied its removal, a learner without a leader included. A
   * stopped member ends its watches (`cancelReason` `'etcdserver: the member
   * has been permanently removed from the cluster'`) and serves nothing
   * (`QUORUMKV_REMOVED`) but `status()`, `members()`, `alarms()` and
   * maintenance (`snapshotSave`, `defragment`, `hashKv`).
   * @throws UsageError when `id` is not a member (on this member, or on
   *   the leader, through the log when called on a follower, for one another
   *   member's change removed meanwhile): `QUORUMKV_MEMBER_ID_REMOVED` for a
   *   removed id ("etcdserver: ID removed", etcd's ErrIDRemoved),
   *   `QUORUMKV_MEMBER_NOT_FOUND` for another ("etcdserver: member not
   *   found", ErrIDNotFound); `QUORUMKV_INVALID_ARGUMENT` for an id that is
   *   not a valid member id
   * @throws FaultError `QUORUMKV_CONF_CHANGE_PENDING`, `QUORUMKV_TIMEOUT`, `QUORUMKV_NODE_CLOSED`,
   *   `QUORUMKV_REMOVED` (this member removed itself and heard of it from a
   *   peer before applying it: the removal holds), `QUORUMKV_UNHEALTHY`
   *   (`strictReconfigCheck`: the voters up, less this one, would not be a
   *   quorum of the voters left)
   */
  removeMember(id: string): Promise<ConfState> {
    const refused = this.refusedIfNotServing();
    if (refused !== undefined) return refused;
    return this.raft.removeMember(id);
  }

  /**
   * Promotes a learner to voter (etcd's `MemberPromote`), once its log
   * matches at least 90% of the leader's (etcd's `isLearnerReady`).
   * @throws UsageError when `id` is not a learner (on this member, or on
   *   the leader, through the log when called on a follower, for one another
   *   member's change promoted or removed meanwhile):
   *   `QUORUMKV_MEMBER_NOT_LEARNER` for a voter ("etcdserver: can only
   *   promote a learner member", etcd's ErrMemberNotLearner),
   *   `QUORUMKV_MEMBER_ID_REMOVED` for a removed id (ErrIDRemoved),
   *   `QUORUMKV_MEMBER_NOT_FOUND` for another ("etcdserver: member not
   *   found", ErrIDNotFound); `QUORUMKV_INVALID_ARGUMENT` for an id that is
   *   not a valid member id
   * @throws FaultError `QUORUMKV_LEARNER_NOT_READY` (the learner is behind),
   *   `QUORUMKV_CONF_CHANGE_PENDING`, `QUORUMKV_TIMEOUT`, `QUORUMKV_NODE_CLOSED`
   */
  promoteMember(id: string): Promise<ConfState> {
    const refused = this.refusedIfNotServing();
    if (refused !== undefined) return refused;
    return this.raft.promoteLearner(id);
  }

  /**
   * Moves leadership to `to` (etcd's `MoveLeader`, Raft thesis §3.10). Must be called on the leader.
   * @throws UsageError `QUORUMKV_NOT_LEADER`, `QUORUMKV_BAD_LEADER_TRANSFEREE` when `to` is not a voter (a learner, or no member: etcd's ErrBadLeaderTransferee), `QUORUMKV_INVALID_ARGUMENT` when it is not a string; FaultError `QUORUMKV_TIMEOUT`
   */
  moveLeader(to: string): Promise<void> {
    const refused = this.refusedIfNotServing();
    if (refused !== undefined) return refused;
    // etcd's maintenance server answers ErrNotLeader on a follower, whoever `to` is
    if (!this.raft.isLeader) return Promise.reject(new UsageError(ErrorCode.NOT_LEADER, `not the leader (leader is ${this.raft.leader || 'unknown'})`));
    return this.raft.moveLeader(to);
  }

  // -------------------------------------------------------- maintenance

  /**
   * Writes a point-in-time backup of this member's store to `path` (etcd's
   * `Snapshot` / `etcdctl snapshot save`): every kept revision, the leases,
   * the revision, compaction revision and applied Raft index, and the
   * cluster id, in a CRC-checked file (format in `backup-file.ts`). Works on
   * any member, with or without a leader. The state is taken at one applied
   * index between two applies, then streamed from a database snapshot while
   * writes go on (a backend without explicit snapshots holds applies back
   * while it streams). The file appears under `path` only once complete
   * and synced.
   * @returns the backup's revision, applied index, size in bytes and path
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `path` is not a
   *   non-empty string or holds a NUL character (no file system takes one)
   * @throws FaultError `QUORUMKV_STORAGE_IO`, `QUORUMKV_NODE_CLOSED` (also
   *   when the member is closed before the backup is done)
   */
  async snapshotSave(path: string): Promise<SnapshotSaveResult> {
    const pathProblem = filePathProblem(path);
    if (pathProblem !== undefined) throw new UsageError(ErrorCode.INVALID_ARGUMENT, `path must ${pathProblem}`);
    this.assertOpen();
    const started = performance.now();
    const res = await this.untilClosed(this.store.readView(async (view) => {
      const size = await writeBackupFile(path, {
        header: {
          format: 1,
          clusterId: this.clusterId,
          memberId: this.id,
          revision: view.revision,
          compactRevision: view.compactRevision,
          appliedIndex: view.appliedIndex,
          lastLeaseId: view.lastLeaseId,
          createdAt: Date.now(),
        },
        leases: view.leases,
        records: view.records(),
      });
      return { revision: view.revision, appliedIndex: view.appliedIndex, size, path };
    }));
    log('[%s] backup saved to %s: revision %d, applied index %d, %d bytes in %d ms', this.id, path, res.revision, res.appliedIndex, res.size, Math.round(performance.now() - started));
    return res;
  }

  /**
   * Reclaims disk space after compactions and deletes (etcd's
   * `Defragment`): classic-level compacts its whole key range; other
   * backends have nothing to reclaim (the sizes are only reported). Local to
   * this member; run it on each member in turn. Writes go on meanwhile.
   * @returns the database size before and after, in bytes (`dbSize`)
   * @throws FaultError `QUORUMKV_STORAGE_IO`, `QUORUMKV_NODE_CLOSED` (also
   *   when the member is closed before it is done)
   */
  async defragment(): Promise<DefragmentResult> {
    this.assertOpen();
    const before = await this.untilClosed(this.refreshSize(true));
    this.assertOpen();
    const started = performance.now();
    await this.untilClosed(compactWholeRange(this.db));
    this.assertOpen();
    const after = await this.untilClosed(this.refreshSize(true));
    log('[%s] defragmented in %d ms: %d -> %d bytes', this.id, Math.round(performance.now() - started), before.dbSize, after.dbSize);
    return { sizeBefore: before.dbSize, sizeAfter: after.dbSize };
  }

  /**
   * The hash of this member's store up to `revision` (default: the current
   * revision), etcd's `HashKV`: the keys' revisions and the compaction
   * revision, not the leases (as etcd's), so it is equal on every member
   * at the same revision and compaction revision (a compaction changes no
   * revision: compare `compactRevision` too), and a backup's restored members hash as its
   * source did at the backup's revision. Local (no ReadIndex). The
   * corruption check compares the lease table as well.
   * @throws CompactedError when `revision` is at or below the compaction
   *   revision; UsageError `QUORUMKV_FUTURE_REVISION`, `QUORUMKV_INVALID_ARGUMENT`
   *   (a revision that is not a non-negative safe integer)
   * @throws FaultError `QUORUMKV_NODE_CLOSED` once the member is closed
   *   (also when it is closed before the hash is done)
   */
  async hashKv(revision = 0): Promise<HashKvResponse> {
    this.assertOpen();
    if (typeof revision !== 'number' || !Number.isSafeInteger(revision) || revision < 0) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'revision must be a non-negative safe integer');
    }
    const h = await this.untilClosed(this.store.hash(revision, { withLeases: false }));
    return { header: this.header(), hash: h.hash, revision: h.revision, compactRevision: h.compactRevision };
  }

  /**
   * The active alarms (etcd's `AlarmList`), as applied on this member:
   * `NOSPACE` (a member's database exceeded `quotaBackendBytes`) and
   * `CORRUPT` (a member's store hash differs from the majority's).
   */
  alarms(): AlarmMember[] {
    return this.sm.alarms.list();
  }

  /**
   * Clears alarms through the log (etcd's `AlarmRequest` with `DEACTIVATE`,
   * `etcdctl alarm disarm`): every alarm of kind `alarm` (every kind when
   * omitted), of `options.memberId` (every member when omitted). Reclaim
   * space first for `NOSPACE` (compact, then defragment every member): a
   * request that still finds the database over the quota raises it again.
   * For `CORRUPT`, replace the corrupt member first.
   * @returns the alarms still active once the change is applied here
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an unknown alarm
   *   kind, or a `memberId` that is neither `''` nor a member id (non-empty,
   *   well-formed Unicode, not beginning with U+FEFF, at most 255 UTF-8 bytes)
   * @throws FaultError `QUORUMKV_NO_LEADER`, `QUORUMKV_TIMEOUT`
   */
  async disarmAlarm(alarm?: AlarmType, options: { memberId?: string } = {}): Promise<AlarmMember[]> {
    if (alarm !== undefined && !isAlarmType(alarm)) throw new UsageError(ErrorCode.INVALID_ARGUMENT, `unknown alarm ${describeValue(alarm)}`);
    // checked here: every member decodes the entry when it applies it, and
    // one it cannot decode stops it (as a corrupt log would)
    const { memberId = '' } = optionsWith(options, 'disarmAlarm options', ['memberId']);
    if (typeof memberId !== 'string') throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'memberId must be a string');
    // a member id, or '' for every member: one of any length would be
    // proposed as it is, and an entry too large for the transport's frames
    // stalls replication on every member
    const idProblem = memberId === '' ? undefined : memberIdProblem(memberId);
    if (idProblem !== undefined) throw new UsageError(ErrorCode.INVALID_ARGUMENT, `memberId must ${idProblem}`);
    this.assertServing();
    const result = await this.proposeEntry(encodeAlarmEntry({ action: 'deactivate', memberId, alarm }));
    if (result.status !== 'alarms') throw new FaultError(ErrorCode.INTERNAL, `unexpected alarm result ${result.status}`);
    return result.alarms;
  }

  /**
   * Stops the member: stops Raft and the transport, closes the store (each
   * watch then ends with a last response, `canceled: true` and
   * `cancelReason` `'mvcc: store closed'`, after what it had queued) and
   * (when it opened it) the database. Idempotent: every call resolves once
   * the member is closed (a second call made while the first runs waits for
   * it, so the data can be opened again once either resolves). When a part
   * fails to close (the Raft log's storage, say), the others are closed all
   * the same, and every call rejects with the first failure, as that part
   * reported it.
   */
  close(): Promise<void> {
    this.closing ??= this.closeNow();
    return this.closing;
  }

  private async closeNow(): Promise<void> {
    this.closed = true;
    if (this.leaseTimer !== undefined) this.clock.clearTimeout(this.leaseTimer);
    if (this.compactTimer !== undefined) this.clock.clearTimeout(this.compactTimer);
    if (this.corruptTimer !== undefined) this.clock.clearTimeout(this.corruptTimer);
    if (this.sizeTimer !== undefined) this.clock.clearTimeout(this.sizeTimer);
    this.watchCatchUpPause?.wake();
    this.metrics.detach(this.metricsSource);
    for (const nonce of [...this.keepAliveWaiters.keys()]) this.settleKeepAlive(nonce, undefined);
    this.expiredKeepAlives.clear();
    // each part is closed even when an earlier one fails to (the data
    // directory stays locked while the store's database is open), and the
    // first failure is reported
    let failure: { error: unknown } | undefined;
    const attempt = async (part: () => Promise<void>): Promise<void> => {
      try {
        await part();
      } catch (error) {
        failure ??= { error };
      }
    };
    await attempt(() => this.raft.close());
    // (a measure queued behind the one under way is refused: none begins once closed)
    while (this.sizing !== undefined) await this.sizing.catch(() => undefined);
    await attempt(() => this.store.close());
    if (this.ownsDb) await attempt(() => this.db.close());
    if (failure !== undefined) {
      log('[%s] closed, with a failure: %s', this.id, (failure.error as Error)?.message);
      throw failure.error;
    }
    log('[%s] closed', this.id);
  }

  // ---------------------------------------------------------- internals

  private assertOpen(): void {
    if (this.closed) throw new FaultError(ErrorCode.NODE_CLOSED, 'node is closed');
  }

  /**
   * `work`'s result; a fault it meets once {@link close} has begun is
   * `QUORUMKV_NODE_CLOSED` (with the fault as its cause): the store or the
   * database was closed under it, which says nothing of the disk. A
   * refusal of bad input stays as it is.
   */
  private async untilClosed<T>(work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (err) {
      if (!this.closed || err instanceof UsageError || isQuorumError(err, ErrorCode.NODE_CLOSED)) throw err;
      throw new FaultError(ErrorCode.NODE_CLOSED, 'node is closed', { cause: err });
    }
  }

  /**
   * {@link assertOpen}, and the member still in the cluster: a removed etcd
   * member stops serving, reads included (its data may be stale for good).
   * Maintenance (snapshotSave, defragment, hashKv, status) still works.
   */
  private assertServing(): void {
    this.assertOpen();
    if (this.raft.removed) throw new FaultError(ErrorCode.REMOVED, 'this member was removed from the cluster');
    if (this.stopped !== undefined) {
      throw new FaultError(ErrorCode.NODE_CLOSED, `node stopped after a fatal error: ${this.stopped.message}`, { cause: this.stopped });
    }
  }

  /** {@link assertServing} for methods that return a rejected promise instead of throwing. */
  private refusedIfNotServing(): Promise<never> | undefined {
    try {
      this.assertServing();
      return undefined;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private assertNotCorrupt(): void {
    if (this.sm.alarms.has('CORRUPT', this.id)) {
      throw new FaultError(ErrorCode.CORRUPT, `member ${this.id} has a CORRUPT alarm: its data is not served`);
    }
  }

  private header(): ResponseHeader {
    return { revision: this.store.currentRevision(), clusterId: this.clusterId, memberId: this.id, raftTerm: this.raft.term };
  }

  private fillHeader(h: ResponseHeader): void {
    h.clusterId = this.clusterId;
    h.memberId = this.id;
    h.raftTerm = this.raft.term;
  }

  /**
   * Waits for a linearizable read point (ReadIndex). A `CORRUPT` alarm
   * naming this member that was applied while waiting refuses the read.
   */
  private async linearize(): Promise<void> {
    this.assertServing();
    this.assertLeaderKnown(false);
    await this.raft.readIndex({ timeoutMs: this.requestTimeoutMs });
    // applied up to a read index: everything committed before the read
    // began, so everything this member answered before it went down
    this.markCaughtUp();
    this.assertNotCorrupt();
  }

  /**
   * This member has caught up with what it may have answered before it
   * went down (see {@link caughtUp}): its serializable reads are answered
   * locally from now on, and the watches from now held back meanwhile
   * start, after the revision it has now.
   */
  private markCaughtUp(): void {
    if (this.caughtUp) return;
    this.caughtUp = true;
    this.store.releaseWatchesFromNow();
  }

  /**
   * Takes ReadIndex rounds until this member has caught up, for the
   * watches from now waiting for it (see {@link watch}): one after another,
   * each failed one (no leader, a timeout) followed by a pause of an
   * election timeout, cut short when a leader is heard of. It stops once
   * the member has caught up (by a round, a read, or its applies), no
   * watch waits any more, or the member no longer serves.
   */
  private catchUpForWatches(): void {
    if (this.caughtUp || this.watchCatchUp) return;
    this.watchCatchUp = true;
    // decided and recorded in one synchronous step: a watch created once
    // the rounds have decided to stop takes them up again (one that came
    // before the flag was cleared, a few microtasks later, waited with no
    // round taken for it, for good on a joining member)
    const waits = (): boolean => {
      const go = !this.caughtUp && !this.closed && this.stopped === undefined && !this.raft.removed && this.store.watcherGroups().waiting > 0;
      if (!go) this.watchCatchUp = false;
      return go;
    };
    const run = async (): Promise<void> => {
      while (waits()) {
        try {
          await this.linearize();
        } catch (err) {
          if (!waits()) return;
          log('[%s] watches from now wait for this member to catch up: %s', this.id, (err as Error).message);
          await new Promise<void>((resolve) => {
            const wake = (): void => {
              const pause = this.watchCatchUpPause;
              if (pause === undefined || pause.wake !== wake) return;
              this.clock.clearTimeout(pause.timer);
              this.watchCatchUpPause = undefined;
              resolve();
            };
            this.watchCatchUpPause = { timer: this.clock.setTimeout(wake, this.electionMs), wake };
          });
        }
      }
    };
    run().catch((err: unknown) => {
      this.watchCatchUp = false;
      log('[%s] catching up for the watches from now failed: %s', this.id, (err as Error)?.message);
    });
  }

  /**
   * Fails fast while no leader has been known for two election timeouts
   * (the randomized election timeout is below twice the configured one, so
   * by then every reachable member has campaigned): a lost quorum, or a
   * member cut off from it. CheckQuorum makes a leader cut off from its
   * quorum step down after an election timeout, so it fails fast too.
   * Proposals (`proposal`) count in `etcd_server_proposals_failed_total`;
   * linearizable reads do not.
   */
  private assertLeaderKnown(proposal = true): void {
    if (this.raft.leader !== '' || this.noLeaderSince === undefined) return;
    const since = this.now() - this.noLeaderSince;
    if (since >= 2 * this.electionMs) {
      if (proposal) this.metrics.proposalsFailed.inc({ member: this.id });
      throw new FaultError(ErrorCode.NO_LEADER, `etcdserver: no leader (none known for ${Math.round(since)} ms; is a quorum of members reachable?)`);
    }
  }

  /** Proposes a server entry, counting it pending and, when it fails, failed. */
  private async proposeEntry(data: Uint8Array): Promise<EntryResult> {
    this.assertLeaderKnown();
    this.pending++;
    try {
      return await this.raft.propose(data, { timeoutMs: this.requestTimeoutMs });
    } catch (err) {
      this.metrics.proposalsFailed.inc({ member: this.id });
      throw err;
    } finally {
      this.pending--;
    }
  }

  /** A read-only txn, as a read (see {@link txn}). */
  private async readOnlyTxn(req: TxnRequest): Promise<TxnResponse> {
    this.assertServing();
    // the checks of a txn that writes: its size and number of operations
    prepareWriteRequest({ txn: req }, this.limits);
    this.assertNotCorrupt();
    if (!isTxnSerializable(req) || !this.caughtUp) await this.linearize();
    const res = await this.store.readTxn(req);
    this.fillHeader(res.header);
    return res;
  }

  private async write(req: WriteRequest): Promise<WriteResponse> {
    this.assertServing();
    const encoded = prepareWriteRequest(req, this.limits);
    const refused = this.sm.refusal(req);
    if (refused !== undefined) throw refused;
    if (growsStore(req)) {
      const cost = requestCost(req);
      // the cached size first: only a request it brings to the quota waits for a fresh one
      if (this.size.dbSize + this.grownSinceMeasure + cost >= this.quotaBytes) await this.checkQuota(cost);
    }
    const result = await this.proposeEntry(serverEntry(EntryKind.WRITE, encoded));
    if (result.status === 'failed') throw result.error;
    if (result.status !== 'applied') throw new FaultError(ErrorCode.INTERNAL, `unexpected apply result ${result.status}`);
    if ('compaction' in req && req.compaction.physical === true && result.physical !== undefined) await result.physical;
    const res = result.response;
    const inner = Object.values(res)[0] as { header: ResponseHeader };
    this.fillHeader(inner.header);
    return res;
  }

  /**
   * etcd's quota check before proposing, for a request of `cost` bytes that
   * the cached database size brings to the quota: with a fresh size, the
   * request is refused when `size + cost` reaches the quota (etcd's
   * `backendQuota.Available`: `size + cost < quota`) and this member raises
   * a `NOSPACE` alarm (replicated: every member then refuses growth).
   */
  private async checkQuota(cost: number): Promise<void> {
    const fresh = await this.refreshSize(true); // the cached size may predate a defragmentation
    if (fresh.dbSize + this.grownSinceMeasure + cost < this.quotaBytes) return;
    this.raiseNoSpace(fresh.dbSize);
    throw new FaultError(ErrorCode.NO_SPACE, `etcdserver: mvcc: database space exceeded (${fresh.dbSize + this.grownSinceMeasure} bytes + ${cost} >= quota ${this.quotaBytes})`);
  }

  private raiseNoSpace(dbSize: number): void {
    if (this.raisingNoSpace || this.sm.alarms.has('NOSPACE', this.id) || this.closed) return;
    this.raisingNoSpace = true;
    log('[%s] database size %d bytes exceeds the quota of %d bytes: raising NOSPACE', this.id, dbSize, this.quotaBytes);
    this.proposeEntry(encodeAlarmEntry({ action: 'activate', memberId: this.id, alarm: 'NOSPACE' }))
      .catch((err: Error) => log('[%s] raising NOSPACE failed: %s', this.id, err.message))
      .finally(() => {
        this.raisingNoSpace = false;
      });
  }

  /**
   * Measures the database size now (`force`) or when the last measure is
   * older than a second. None begins once {@link close} has: close() waits
   * for the one under way, and a measure begun after that would read the
   * database while it closes, or after.
   * @throws FaultError `QUORUMKV_NODE_CLOSED` once the member is closing
   */
  private refreshSize(force = false): Promise<DbSize> {
    if (this.closed) return Promise.reject(new FaultError(ErrorCode.NODE_CLOSED, 'node is closed'));
    if (this.sizing !== undefined) {
      // a forced measure begins after its call (a defragment or a quota
      // check right after one must not get a measure from before it)
      return force ? this.sizing.then(() => this.refreshSize(true), () => this.refreshSize(true)) : this.sizing;
    }
    if (!force && this.now() - this.sizeAt < SIZE_REFRESH_MS) return Promise.resolve(this.size);
    const storeDb = this.db.sublevel('mvcc', { keyEncoding: 'view', valueEncoding: 'view' });
    const grownBefore = this.grownSinceMeasure;
    // what was applied so far is measured once the store has written it (it
    // writes applied batches a little later: measured at once, the writes of
    // the apply that asked for the measure were left out)
    this.sizing = this.store
      .written()
      .catch(() => undefined)
      .then(() => measureDbSize(this.db, storeDb.prefix, storeDb))
      .then((s) => {
        this.size = s;
        this.sizeAt = this.now();
        // what was applied while measuring may be missing from the measure: kept
        this.grownSinceMeasure -= grownBefore;
        return s;
      })
      .finally(() => {
        this.sizing = undefined;
      });
    return this.sizing;
  }

  /**
   * After a change (an apply, the end of a physical compaction): measures
   * the size now, or, when the last measure is under way or less than a
   * second old, once more a second after it. Skipped instead, the last
   * changes of a burst were never measured while the member stayed idle:
   * `status().dbSize` and `etcd_mvcc_db_total_size_in_bytes` kept a size
   * from before them (or before a compaction freed space) for good.
   */
  private refreshSizeSoon(): void {
    if (this.closed || this.sizeTimer !== undefined) return;
    const wait = this.sizing !== undefined ? SIZE_REFRESH_MS : this.sizeAt + SIZE_REFRESH_MS - this.now();
    if (wait > 0) {
      this.sizeTimer = this.clock.setTimeout(() => {
        this.sizeTimer = undefined;
        this.refreshSizeSoon();
      }, wait);
      return;
    }
    this.refreshSize().then(
      (s) => {
        if (s.dbSize + this.grownSinceMeasure > this.quotaBytes) this.raiseNoSpace(s.dbSize + this.grownSinceMeasure);
      },
      (err: Error) => log('[%s] cannot measure the database size: %s', this.id, err.message),
    );
  }

  private onLeaderChange(leader: string, term: number): void {
    if (leader === '') {
      this.noLeaderSince = this.now();
      log('[%s] lost the leader in term %d (leader stepped down, or an election started after an election timeout without heartbeats)', this.id, term);
    } else {
      this.noLeaderSince = undefined;
      this.metrics.leaderChanges.inc({ member: this.id });
      log('[%s] leader is %s in term %d', this.id, leader, term);
    }
    if (leader !== '') this.resendKeepAlives(`leader is ${leader} in term ${term}`);
    // the watches from now waiting for this member to catch up try again at once
    if (leader !== '') this.watchCatchUpPause?.wake();
    if (leader === this.id) {
      // etcd promotes the lessor once the new leader has applied the
      // entries of earlier terms (at the apply of its term's empty entry):
      // a keep-alive among them must count before any lease expires here.
      // The index is the last of its log, its term's empty entry included
      // (its own progress's match: the entry may not be in the stable log yet).
      const st = this.raft.status();
      this.promoteAfter = { term, index: Math.max(st.lastIndex, st.progress?.[this.id]?.match ?? 0) };
      this.maybePromote();
    } else {
      this.promoteAfter = undefined;
      this.retryKeepAlivesBeforePromotion();
      if (this.store.lessor.isPrimary()) {
        this.store.lessor.demote();
        this.retryExpiredKeepAlives();
      }
    }
    emitIsolated(this, 'leaderChange', leader, term);
  }

  /**
   * Promotes the lessor of a new leader that has applied every entry of the
   * earlier terms (etcd: `lessor.Promote` at the apply of the leader's
   * empty entry): leases restart their TTL, extended by an election
   * timeout, and the keep-alives applied meanwhile are answered.
   */
  private maybePromote(): void {
    const p = this.promoteAfter;
    if (p === undefined || this.closed) return;
    if (this.raft.leader !== this.id || this.raft.term !== p.term) return;
    if (this.raft.appliedIndex < p.index) return;
    this.promoteAfter = undefined;
    this.store.lessor.promote(this.electionMs);
    log('[%s] leader in term %d, entries of earlier terms applied: lessor promoted', this.id, p.term);
    const waiting = this.keepAlivesBeforePromotion;
    this.keepAlivesBeforePromotion = [];
    for (const r of waiting) this.keepAliveApplied(r);
  }

  /**
   * Proposes again (same request, same nonce) every keep-alive of this
   * member still waiting for its answer: after a change of leader, whose
   * answer may have been lost with the old leader (its answer entry not
   * committed, or the request applied by no promoted lessor: the old leader
   * stepped down before applying it, the new one applied it before it was
   * elected), and after a snapshot from the leader, which may cover the
   * request and its answer. A keep-alive may be applied more than once:
   * each renews the lease, and the first answer settles the call.
   */
  private resendKeepAlives(why: string): void {
    if (this.keepAliveWaiters.size === 0 || this.closed || this.stopped !== undefined) return;
    log('[%s] %s: proposing the %d keep-alives waiting for an answer again', this.id, why, this.keepAliveWaiters.size);
    for (const { request: r } of this.keepAliveWaiters.values()) {
      this.proposeEntry(encodeKeepAliveRequest(r)).catch((err: Error) =>
        log('[%s] keep-alive of lease %d not proposed again: %s', this.id, r.lease, err.message),
      );
    }
  }

  /** Proposes again the keep-alives applied while this member waited to promote its lessor, for the next leader to answer. */
  private retryKeepAlivesBeforePromotion(): void {
    const waiting = this.keepAlivesBeforePromotion;
    this.keepAlivesBeforePromotion = [];
    for (const r of waiting) {
      this.proposeEntry(encodeKeepAliveRequest(r)).catch((err: Error) =>
        log('[%s] keep-alive of lease %d from %s not proposed again: %s', this.id, r.lease, r.origin, err.message),
      );
    }
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
    const term = this.raft.term; // this leader's
    // etcd's leaseRevokeRate: at most 1,000 revokes a second, spread over the checks
    for (const id of this.store.lessor.expired(Math.max(1, Math.ceil((LEASE_REVOKE_RATE * this.leaseCheckMs) / 1000)))) {
      log('[%s] lease %d expired: proposing its revoke (term %d)', this.id, id, term);
      const refused = this.sm.refusal({ leaseRevoke: { id } });
      if (refused !== undefined) {
        log('[%s] revoke of expired lease %d failed: %s', this.id, id, refused.message);
        continue;
      }
      // tagged with this leader's term: were the entry to reach the log in a
      // later term (proposed during a leadership transfer, or after this
      // member stepped down, and forwarded), it revokes nothing
      this.proposeEntry(encodeLeaseExpiry({ lease: id, term })).then(
        (r) => {
          if (r.status === 'failed') log('[%s] revoke of expired lease %d not applied: %s', this.id, id, r.error.message);
        },
        (err: Error) => log('[%s] revoke of expired lease %d failed: %s', this.id, id, err.message),
      );
    }
  }

  private scheduleAutoCompaction(): void {
    const ac = this.autoCompaction;
    if (ac === undefined || this.closed) return;
    const interval = ac.intervalMs ?? (ac.mode === 'periodic' ? Math.max(1000, Math.floor(Math.min(ac.retentionMs, HOUR_MS) / 10)) : 5 * 60_000);
    this.compactTimer = this.clock.setTimeout(() => {
      this.autoCompact(ac);
      this.scheduleAutoCompaction();
    }, interval);
  }

  private autoCompact(ac: AutoCompaction): void {
    const now = this.now();
    const current = this.store.currentRevision();
    if (ac.mode === 'periodic') {
      // Every member samples (a follower that becomes leader knows the
      // revisions of the last period) and keeps one sample older than it.
      this.revisionSamples.push({ at: now, revision: current });
      while (this.revisionSamples.length > 1 && this.revisionSamples[1]!.at <= now - ac.retentionMs) this.revisionSamples.shift();
    }
    // one at a time, as etcd's compactors wait for Compact: a check while
    // one is in flight would propose its revision again, and the duplicate
    // would fail with ErrCompacted on every member
    if (!this.raft.isLeader || this.autoCompacting) return;
    let target = 0;
    if (ac.mode === 'revision') {
      target = current - ac.retention;
    } else {
      // etcd's periodic compactor: at most one compaction every
      // min(retention, 1 h) since the last that succeeded (or since it began)
      if (now - this.lastAutoCompactAt < Math.min(ac.retentionMs, HOUR_MS)) return;
      const oldest = this.revisionSamples[0]!;
      if (oldest.at <= now - ac.retentionMs) target = oldest.revision;
    }
    if (target <= Math.max(0, this.store.compactRevision())) {
      // compacted there already (a compact() call): done for this period, as
      // etcd's periodic compactor takes ErrCompacted
      if (ac.mode === 'periodic' && target > 0) this.lastAutoCompactAt = now;
      return;
    }
    log('[%s] auto-compaction to revision %d', this.id, target);
    this.autoCompacting = true;
    this.compact(target)
      .then(
        () => {
          this.lastAutoCompactAt = this.now();
          log('[%s] auto-compaction to revision %d done', this.id, target);
        },
        // compacted there or beyond meanwhile (a compact() call): done, as for etcd's compactors
        (err: Error) => {
          if (isQuorumError(err, ErrorCode.REVISION_COMPACTED)) {
            this.lastAutoCompactAt = this.now();
            log('[%s] auto-compaction to revision %d: already compacted', this.id, target);
          } else {
            log('[%s] auto-compaction to revision %d failed: %s', this.id, target, err.message);
          }
        },
      )
      .finally(() => {
        this.autoCompacting = false;
      });
  }

  private scheduleCorruptCheck(): void {
    const every = this.corruptCheckMs;
    if (every === undefined || this.closed) return;
    this.corruptTimer = this.clock.setTimeout(() => {
      if (this.raft.isLeader && !this.closed) {
        log('[%s] corruption check: proposing a hash check', this.id);
        this.proposeEntry(encodeHashCheckEntry()).catch((err: Error) => log('[%s] corruption check not proposed: %s', this.id, err.message));
      }
      this.scheduleCorruptCheck();
    }, every);
  }

  private stateMachineHost(): KvStateMachineHost {
    return {
      voters: () => this.raft.members().voters,
      keepAliveApplied: (r) => this.keepAliveApplied(r),
      keepAliveAnswered: (a) => this.keepAliveAnswered(a),
      hashCheckApplied: (index, hash) => this.reportHash(index, hash),
      alarmsChanged: (index, raised, cleared) => {
        for (const a of raised) log('[%s] ALARM %s raised for member %s (index %d)', this.id, a.alarm, a.memberId, index);
        for (const a of cleared) log('[%s] alarm %s of member %s cleared (index %d)', this.id, a.alarm, a.memberId, index);
        emitIsolated(this, 'alarm', { index, raised, cleared });
      },
      storeBatchApplied: (requests, results) => this.countApplied(requests, results),
    };
  }

  private reportHash(check: number, hash: Promise<HashResult>): void {
    hash.then(
      (h) => {
        if (this.closed) return;
        log('[%s] corruption check at index %d: revision %d hash %s', this.id, check, h.revision, h.hash.toString(16));
        this.proposeEntry(encodeHashReportEntry({ check, memberId: this.id, hash: h.hash, revision: h.revision })).catch((err: Error) =>
          log('[%s] hash report for check %d not proposed: %s', this.id, check, err.message),
        );
      },
      (err: Error) => log('[%s] cannot hash the store for check %d: %s', this.id, check, err.message),
    );
  }

  private countApplied(requests: (WriteRequest | null)[], results: ApplyResult[]): void {
    const member = { member: this.id };
    for (let i = 0; i < requests.length; i++) {
      const r = requests[i];
      if (r === null || r === undefined || results[i]?.status !== 'applied') continue;
      if (growsStore(r)) this.grownSinceMeasure += requestCost(r);
      const physical = (results[i] as { physical?: Promise<void> }).physical;
      // the compacted records are deleted after the apply, in the background
      if (physical !== undefined) physical.then(() => this.refreshSizeSoon(), () => undefined);
      if ('leaseGrant' in r) this.metrics.leaseGranted.inc(member);
      else if ('leaseRevoke' in r) {
        this.metrics.leaseRevoked.inc(member);
        const waiting = this.expiredKeepAlives.get(r.leaseRevoke.id);
        if (waiting !== undefined) {
          this.expiredKeepAlives.delete(r.leaseRevoke.id);
          for (const k of waiting) this.answerKeepAlive(k, -1);
        }
      }
    }
  }

  /**
   * This member stopped leading with keep-alives waiting for the revoke of
   * an expired lease: the new leader has restarted the lease's TTL, so each
   * is proposed again (same proposer and nonce) for whoever leads when it is
   * applied to answer, as etcd's client sends a keep-alive again on "not
   * primary".
   */
  private retryExpiredKeepAlives(): void {
    if (this.expiredKeepAlives.size === 0) return;
    const waiting = [...this.expiredKeepAlives.values()].flat();
    this.expiredKeepAlives.clear();
    for (const r of waiting) {
      this.proposeEntry(encodeKeepAliveRequest(r)).catch((err: Error) =>
        log('[%s] keep-alive of lease %d from %s not proposed again: %s', this.id, r.lease, r.origin, err.message),
      );
    }
  }

  /**
   * A keep-alive request was applied: the leader's lessor renews the lease
   * and the leader answers (directly when it proposed the request itself,
   * else through a log entry the proposer applies).
   */
  private keepAliveApplied(r: KeepAliveRequest): void {
    const lessor = this.store.lessor;
    const w = r.origin === this.id ? this.keepAliveWaiters.get(r.nonce) : undefined;
    if (w?.seen !== undefined) {
      // this member's own time-to-live question: the lease it names here
      const lease = lessor.lookup(r.lease);
      w.seen = w.seen === null ? { lease, stable: true } : { lease, stable: w.seen.stable && w.seen.lease === lease };
    }
    if (!lessor.isPrimary()) {
      // a leader applying earlier terms' entries: answered once promoted
      if (this.promoteAfter !== undefined) this.keepAlivesBeforePromotion.push(r);
      return;
    }
    let ttl = -1;
    if (r.timeToLive === true) {
      if (lessor.lookup(r.lease) !== undefined) ttl = lessor.timeToLive(r.lease).ttl;
    } else if (lessor.lookup(r.lease) !== undefined) {
      try {
        ttl = lessor.renew(r.lease);
      } catch (err) {
        if (!isQuorumError(err, ErrorCode.LEASE_NOT_FOUND)) throw err;
        // expired, its revoke not applied yet: wait for it (expiredKeepAlives)
        const waiting = this.expiredKeepAlives.get(r.lease);
        if (waiting === undefined) this.expiredKeepAlives.set(r.lease, [r]);
        else waiting.push(r);
        return;
      }
    }
    this.answerKeepAlive(r, ttl);
  }

  /** Answers a keep-alive: directly when this member proposed it, else through a log entry its proposer applies. */
  private answerKeepAlive(r: KeepAliveRequest, ttl: number): void {
    if (r.origin === this.id) {
      this.settleKeepAlive(r.nonce, { ...r, ttl });
      return;
    }
    this.proposeEntry(encodeKeepAliveAnswer({ ...r, ttl })).catch((err: Error) =>
      log('[%s] answer to the keep-alive of lease %d from %s not proposed: %s', this.id, r.lease, r.origin, err.message),
    );
  }

  /**
   * This member was removed from the cluster and stopped: it serves nothing
   * more. Its watches end, as its etcd server's streams do when it stops,
   * and the keep-alives waiting for the leader's answer fail now.
   */
  private onRemoved(): void {
    this.store.endWatches('etcdserver: the member has been permanently removed from the cluster');
    const err = new FaultError(ErrorCode.REMOVED, 'this member was removed from the cluster');
    for (const nonce of [...this.keepAliveWaiters.keys()]) this.settleKeepAlive(nonce, undefined, err);
    this.expiredKeepAlives.clear();
  }

  /**
   * A fatal error stopped this member's Raft node (a storage or state
   * machine failure): it takes no further part in the cluster and applies
   * nothing more, so it serves nothing more either, serializable reads
   * included (what it holds only grows staler). Its watches end, saying why,
   * as its etcd server's streams do when it stops (etcd panics), and the
   * keep-alives waiting for the leader's answer fail now.
   */
  private onStopped(err: Error): void {
    if (this.stopped !== undefined) return;
    this.stopped = err;
    this.store.endWatches(`etcdserver: the member stopped after a fatal error: ${err.message}`);
    const closed = new FaultError(ErrorCode.NODE_CLOSED, `node stopped after a fatal error: ${err.message}`, { cause: err });
    for (const nonce of [...this.keepAliveWaiters.keys()]) this.settleKeepAlive(nonce, undefined, closed);
    this.expiredKeepAlives.clear();
  }

  /** The leader's answer to a keep-alive request was applied. */
  private keepAliveAnswered(a: KeepAliveAnswer): void {
    if (a.origin === this.id) this.settleKeepAlive(a.nonce, a);
  }

  private settleKeepAlive(nonce: string, answer: KeepAliveAnswer | undefined, error?: Error): void {
    const w = this.keepAliveWaiters.get(nonce);
    if (w === undefined || (answer !== undefined && answer.lease !== w.request.lease)) return;
    let ttl = answer?.ttl ?? -1;
    if (answer !== undefined && w.seen !== undefined) {
      // a time-to-live question not applied here since the snapshot installed
      // last: the answer to the one proposed again then settles it
      if (w.seen === null) return;
      // the leader answered at some apply of the question; a lease revoked
      // (and maybe granted again with that id) since, or granted after an
      // apply that found none, is not the one it answered for: unknown, as
      // it was at the revoke, or at that apply
      if (!w.seen.stable || w.seen.lease !== this.store.lessor.lookup(w.request.lease)) ttl = -1;
    }
    this.keepAliveWaiters.delete(nonce);
    this.clock.clearTimeout(w.timer);
    if (answer !== undefined) w.resolve(ttl);
    else w.reject(error ?? new FaultError(ErrorCode.NODE_CLOSED, 'node is closed'));
  }

}
