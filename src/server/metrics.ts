/**
 * Prometheus metrics of KvNode members, with etcd's names and meanings
 * (etcd's "Metrics" documentation, `etcdserver/metrics.go`,
 * `wal/metrics.go`, `mvcc/metrics.go`, `rafthttp/metrics.go`), through a
 * `prom-client` {@link Registry}.
 *
 * Every series carries a `member` label (the member id), so several members
 * can share one registry (an in-process cluster, or a service embedding
 * more than one member). A registry holds each metric once: the metric
 * objects are created on first use per registry and shared by its members
 * ({@link serverMetrics}); a closing member removes its gauge series (its
 * state), while its counters and histograms keep their totals, so that a
 * member reopened under the same id counts on from them.
 *
 * | metric | type | meaning |
 * |---|---|---|
 * | `etcd_server_has_leader` | gauge | 1 when this member knows a leader, else 0 (0 once it is stopped by a fatal error or removed) |
 * | `etcd_server_is_leader` | gauge | 1 when this member is the leader |
 * | `etcd_server_leader_changes_seen_total` | counter | leaders seen (each time a new leader becomes known) |
 * | `etcd_server_proposals_committed_total` | gauge | the Raft commit index (etcd: a gauge of committed proposals) |
 * | `etcd_server_proposals_applied_total` | gauge | the applied index |
 * | `etcd_server_proposals_pending` | gauge | requests of this member proposed and not applied yet |
 * | `etcd_server_proposals_failed_total` | counter | proposals that failed (timeout, no leader, dropped, closed) |
 * | `etcd_server_quota_backend_bytes` | gauge | the quota (`quotaBackendBytes`) |
 * | `etcd_disk_wal_fsync_duration_seconds` | histogram | synced writes of the Raft log (HardState, entries, snapshots) |
 * | `etcd_disk_backend_commit_duration_seconds` | histogram | the store's batch writes (one per group of applied entries) |
 * | `etcd_mvcc_db_total_size_in_bytes` | gauge | database size (`dbSize`, see `maintenance-size.ts`) |
 * | `etcd_mvcc_db_total_size_in_use_in_bytes` | gauge | size in use (`dbSizeInUse`) |
 * | `etcd_debugging_mvcc_current_revision` | gauge | the store's revision |
 * | `etcd_debugging_mvcc_compact_revision` | gauge | the compaction revision |
 * | `etcd_debugging_mvcc_watcher_total` | gauge | watchers on this member |
 * | `etcd_debugging_mvcc_slow_watcher_total` | gauge | watchers behind the current revision (unsynced or blocked) |
 * | `etcd_debugging_lease_total` | gauge | leases in the store (quorumkv; etcd has no such gauge) |
 * | `etcd_debugging_lease_granted_total` | counter | leases granted (applied on this member) |
 * | `etcd_debugging_lease_revoked_total` | counter | leases revoked, expired ones included |
 * | `etcd_network_peer_round_trip_time_seconds` | histogram, label `To` | leader only: from a heartbeat to the peer's response to it (`metrics-transport.ts`) |
 * | `quorumkv_server_alarms` | gauge, label `alarm` | active alarms of each kind, as applied on this member |
 * @module
 */
import { Counter, Gauge, Histogram, Registry, exponentialBuckets } from 'prom-client';
import { ErrorCode, UsageError } from '../errors.js';
import { ALARM_TYPES, type AlarmMember } from './alarms.js';

/** What the metrics read from a member at scrape time. */
export interface MetricsSource {
  /** The member id: the `member` label of its series; one source per id in a registry. */
  readonly id: string;
  /** True when this member knows a leader and still takes part in the cluster (not stopped by a fatal error, not removed) (`etcd_server_has_leader`). */
  hasLeader(): boolean;
  /** True when this member is the leader (`etcd_server_is_leader`). */
  isLeader(): boolean;
  /** The Raft commit index (`etcd_server_proposals_committed_total`). */
  commitIndex(): number;
  /** The Raft index last applied to the store (`etcd_server_proposals_applied_total`). */
  appliedIndex(): number;
  /** Requests of this member proposed and neither applied nor failed yet (`etcd_server_proposals_pending`). */
  pendingProposals(): number;
  /** The backend quota in bytes (`etcd_server_quota_backend_bytes`). */
  quotaBackendBytes(): number;
  /**
   * The latest measure of the database, in bytes: `dbSize` physical,
   * `dbSizeInUse` live data (`etcd_mvcc_db_total_size_in_bytes`,
   * `..._in_use_in_bytes`). Cached, not measured at scrape time; 0 before
   * the first measure.
   */
  dbSize(): { dbSize: number; dbSizeInUse: number };
  /** The store's current revision (`etcd_debugging_mvcc_current_revision`). */
  revision(): number;
  /** The store's compaction revision, -1 before any compaction (`etcd_debugging_mvcc_compact_revision`). */
  compactRevision(): number;
  /**
   * Watchers on this member: all of them, and the slow ones, behind the
   * current revision (unsynced or blocked) (`etcd_debugging_mvcc_watcher_total`,
   * `etcd_debugging_mvcc_slow_watcher_total`).
   */
  watchers(): { total: number; slow: number };
  /** Leases in the store (`etcd_debugging_lease_total`). */
  leaseCount(): number;
  /** Active alarms as applied on this member (`quorumkv_server_alarms`). */
  alarmList(): AlarmMember[];
}

type M = 'member';

/** The metric objects of one registry, shared by the members that use it. */
export class ServerMetrics {
  /** The prom-client registry these metrics are registered in. */
  readonly registry: Registry;
  private readonly sources = new Map<string, MetricsSource>();
  /** Ids whose counter and histogram series exist (created by {@link reserve} or {@link attach}, kept once attached). */
  private readonly withSeries = new Set<string>();
  private readonly everAttached = new Set<string>();
  /** Ids claimed by {@link reserve} for members still opening. */
  private readonly reserved = new Set<string>();

  /** `etcd_server_leader_changes_seen_total`: incremented each time a leader becomes known to the member (not when it loses one). */
  readonly leaderChanges: Counter<M>;
  /** `etcd_server_proposals_failed_total`: proposals of the member that failed (no leader known, timeout, dropped, closed). */
  readonly proposalsFailed: Counter<M>;
  /** `etcd_disk_wal_fsync_duration_seconds`: duration in seconds of each synced write of the Raft log. */
  readonly walFsync: Histogram<M>;
  /** `etcd_disk_backend_commit_duration_seconds`: duration in seconds of each batch write of the store. */
  readonly backendCommit: Histogram<M>;
  /** `etcd_network_peer_round_trip_time_seconds`, label `To` (the peer): seconds from a leader's heartbeat to the peer's response. */
  readonly peerRoundTrip: Histogram<M | 'To'>;
  /** `etcd_debugging_lease_granted_total`: lease grants applied on the member. */
  readonly leaseGranted: Counter<M>;
  /** `etcd_debugging_lease_revoked_total`: lease revokes applied on the member, expired leases' included. */
  readonly leaseRevoked: Counter<M>;
  private readonly gauges: Gauge<M>[] = [];
  private readonly alarmGauge: Gauge<M | 'alarm'>;

  constructor(registry: Registry) {
    this.registry = registry;
    // registered at the end, all or none: a clash with a metric already in
    // the registry leaves it as it was
    const registers: Registry[] = [];
    const labelNames = ['member'] as const;
    const self = this;
    const gauge = (name: string, help: string, value: (s: MetricsSource) => number): void => {
      const g = new Gauge<M>({
        name,
        help,
        labelNames,
        registers,
        collect() {
          for (const s of self.sources.values()) this.set({ member: s.id }, value(s));
        },
      });
      this.gauges.push(g);
    };
    gauge('etcd_server_has_leader', 'Whether or not a leader exists. 1 is existence, 0 is not.', (s) => (s.hasLeader() ? 1 : 0));
    gauge('etcd_server_is_leader', 'Whether or not this member is a leader. 1 if is, 0 otherwise.', (s) => (s.isLeader() ? 1 : 0));
    gauge('etcd_server_proposals_committed_total', 'The total number of consensus proposals committed.', (s) => s.commitIndex());
    gauge('etcd_server_proposals_applied_total', 'The total number of consensus proposals applied.', (s) => s.appliedIndex());
    gauge('etcd_server_proposals_pending', 'The current number of pending proposals to commit.', (s) => s.pendingProposals());
    gauge('etcd_server_quota_backend_bytes', 'Current backend storage quota size in bytes.', (s) => s.quotaBackendBytes());
    gauge('etcd_mvcc_db_total_size_in_bytes', 'Total size of the underlying database physically allocated in bytes.', (s) => s.dbSize().dbSize);
    gauge('etcd_mvcc_db_total_size_in_use_in_bytes', 'Total size of the underlying database logically in use in bytes.', (s) => s.dbSize().dbSizeInUse);
    gauge('etcd_debugging_mvcc_current_revision', 'The current revision of store.', (s) => s.revision());
    gauge('etcd_debugging_mvcc_compact_revision', 'The revision of the last compaction in store.', (s) => s.compactRevision());
    gauge('etcd_debugging_mvcc_watcher_total', 'Total number of watchers.', (s) => s.watchers().total);
    gauge('etcd_debugging_mvcc_slow_watcher_total', 'Total number of unsynced slow watchers.', (s) => s.watchers().slow);
    gauge('etcd_debugging_lease_total', 'The number of leases in the store.', (s) => s.leaseCount());
    this.alarmGauge = new Gauge<M | 'alarm'>({
      name: 'quorumkv_server_alarms',
      help: 'Active alarms of each kind (NOSPACE, CORRUPT), as applied on this member.',
      labelNames: ['member', 'alarm'],
      registers,
      collect() {
        for (const s of self.sources.values()) {
          const list = s.alarmList();
          for (const alarm of ALARM_TYPES) this.set({ member: s.id, alarm }, list.filter((a) => a.alarm === alarm).length);
        }
      },
    });
    this.leaderChanges = new Counter({ name: 'etcd_server_leader_changes_seen_total', help: 'The number of leader changes seen.', labelNames, registers });
    this.proposalsFailed = new Counter({ name: 'etcd_server_proposals_failed_total', help: 'The total number of failed proposals seen.', labelNames, registers });
    const diskBuckets = exponentialBuckets(0.001, 2, 14);
    this.walFsync = new Histogram({
      name: 'etcd_disk_wal_fsync_duration_seconds',
      help: 'The latency distributions of fsync called by WAL.',
      labelNames,
      buckets: diskBuckets,
      registers,
    });
    this.backendCommit = new Histogram({
      name: 'etcd_disk_backend_commit_duration_seconds',
      help: 'The latency distributions of commit called by backend.',
      labelNames,
      buckets: diskBuckets,
      registers,
    });
    this.peerRoundTrip = new Histogram({
      name: 'etcd_network_peer_round_trip_time_seconds',
      help: 'Round-Trip-Time histogram between peers (leader heartbeat to heartbeat response).',
      labelNames: ['member', 'To'],
      buckets: exponentialBuckets(0.0001, 2, 16),
      registers,
    });
    this.leaseGranted = new Counter({ name: 'etcd_debugging_lease_granted_total', help: 'The total number of granted leases.', labelNames, registers });
    this.leaseRevoked = new Counter({ name: 'etcd_debugging_lease_revoked_total', help: 'The total number of revoked leases.', labelNames, registers });
    const all = [
      ...this.gauges,
      this.alarmGauge,
      this.leaderChanges,
      this.proposalsFailed,
      this.walFsync,
      this.backendCommit,
      this.peerRoundTrip,
      this.leaseGranted,
      this.leaseRevoked,
    ];
    const before = new Set(registry.getMetricsAsArray().map((m) => m.name));
    try {
      for (const m of all) registry.registerMetric(m);
    } catch (err) {
      for (const { name } of registry.getMetricsAsArray()) if (!before.has(name)) registry.removeSingleMetric(name);
      throw err;
    }
  }

  /**
   * Claims `id` for a member about to open, before it opens anything: a
   * second member of that id is then refused before it writes to its data.
   * The member's {@link attach} takes the claim over; {@link unreserve}
   * gives it up (a failed open).
   * @throws UsageError `QUORUMKV_INVALID_CONFIG` when a member with the same id reports to this registry, or is opening with it
   */
  reserve(id: string): void {
    if (this.sources.has(id) || this.reserved.has(id)) {
      throw new UsageError(ErrorCode.INVALID_CONFIG, `member ${id} already reports metrics to this registry`);
    }
    this.reserved.add(id);
    this.createSeries(id);
  }

  /**
   * Gives up a claim of {@link reserve} that no {@link attach} took over
   * (the member failed to open); the series it created go with it unless a
   * member of that id reported before.
   */
  unreserve(id: string): void {
    if (!this.reserved.delete(id) || this.everAttached.has(id)) return;
    this.withSeries.delete(id);
    const member = { member: id };
    for (const m of [...this.memberCounters(), ...this.memberHistograms()]) m.remove(member);
  }

  /** The counters with a series per member, created at 0 ({@link createSeries}). */
  private memberCounters(): Counter<M>[] {
    return [this.leaderChanges, this.proposalsFailed, this.leaseGranted, this.leaseRevoked];
  }

  /** The histograms with a series per member, created empty ({@link createSeries}). */
  private memberHistograms(): Histogram<M>[] {
    return [this.walFsync, this.backendCommit];
  }

  /**
   * The member's counters and histograms at 0, so that rates and alerts see
   * them before the first event: once per id, before the member's first
   * observation (a member that comes back, a restart in the same process,
   * keeps its totals).
   */
  private createSeries(id: string): void {
    if (this.withSeries.has(id)) return;
    this.withSeries.add(id);
    const member = { member: id };
    for (const c of this.memberCounters()) c.inc(member, 0);
    for (const h of this.memberHistograms()) h.zero(member);
  }

  /**
   * Starts reporting a member's series (taking over its {@link reserve} claim, if any).
   * @throws UsageError `QUORUMKV_INVALID_CONFIG` when a member with the same id already reports to this registry
   */
  attach(source: MetricsSource): void {
    if (this.sources.has(source.id)) {
      throw new UsageError(ErrorCode.INVALID_CONFIG, `member ${source.id} already reports metrics to this registry`);
    }
    this.reserved.delete(source.id);
    this.sources.set(source.id, source);
    this.everAttached.add(source.id);
    this.createSeries(source.id);
  }

  /** Stops reporting a member's gauges (its counters and histograms keep their totals). */
  detach(source: MetricsSource): void {
    if (this.sources.get(source.id) !== source) return;
    this.sources.delete(source.id);
    for (const g of this.gauges) g.remove({ member: source.id });
    for (const alarm of ALARM_TYPES) this.alarmGauge.remove({ member: source.id, alarm });
  }
}

const perRegistry = new WeakMap<Registry, ServerMetrics>();

/**
 * The quorumkv metrics of `registry`, registered on first use and shared by
 * every member that uses this registry.
 * @throws UsageError `QUORUMKV_INVALID_CONFIG` when the registry already has a metric of one of these names from elsewhere
 *   (none of them is then registered)
 */
export function serverMetrics(registry: Registry): ServerMetrics {
  let m = perRegistry.get(registry);
  if (m === undefined) {
    try {
      m = new ServerMetrics(registry);
    } catch (err) {
      throw new UsageError(ErrorCode.INVALID_CONFIG, `cannot register the metrics: ${(err as Error).message}`, { cause: err });
    }
    perRegistry.set(registry, m);
  }
  return m;
}
