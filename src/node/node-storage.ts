/**
 * The in-memory Raft log of a {@link RaftNode}: etcd's MemoryStorage, plus
 * snapshots produced on demand for a state machine that is durable by itself
 * (one with `sync()`, see {@link StateMachine}).
 *
 * Such a node records only a snapshot's index, term and membership when it
 * compacts its log (the state machine holds the state); the snapshot Raft
 * sends to a lagging follower is taken from the state machine when the core
 * first asks for it, as etcd sends its backend database on demand. Until it
 * is ready, {@link snapshot} throws `QUORUMKV_SNAPSHOT_TEMPORARILY_UNAVAILABLE`,
 * which the core treats as "try again at the next heartbeat response"
 * (etcd-io/raft's `ErrSnapshotTemporarilyUnavailable`).
 * @module
 */
import { ErrorCode, FaultError } from '../errors.js';
import { MemoryStorage } from '../raft/index.js';
import type { Snapshot } from '../raftpb/index.js';

/**
 * A {@link MemoryStorage} whose base snapshot may be a record without the
 * state (on-demand mode, see the module doc); {@link NodeStorage.snapshot}
 * then serves a snapshot taken for followers, or throws
 * `QUORUMKV_SNAPSHOT_TEMPORARILY_UNAVAILABLE` and asks for one.
 */
export class NodeStorage extends MemoryStorage {
  /** Whether the base snapshot (the one the log is compacted behind) carries the state. */
  private baseSendable = true;
  /** A snapshot taken for a follower, at or after the base snapshot's index. */
  private sendable: Snapshot | undefined;
  /**
   * The followers the core took {@link sendable} for (a MsgSnap in flight to
   * each until the transport reports it, see {@link settle}); `''` for a
   * request that named none.
   */
  private readonly servedTo = new Set<string>();
  /** When (caller's clock) {@link sendable} was offered. */
  sendableAt = 0;
  private wanted: (() => void) | undefined;
  private backingOff: ((peer: string) => boolean) | undefined;

  /**
   * Turns on-demand snapshots on: `want` is called (at most once per request
   * of the core) when a snapshot with the state is needed and none is ready;
   * the node then takes one and hands it to {@link offer}. (A follower
   * waiting out a back-off gets none, taken or not: {@link holdBack}.)
   */
  produceOnDemand(want: () => void): void {
    this.wanted = want;
  }

  /**
   * `backingOff(peer)` tells whether the sends of snapshots to `peer` wait
   * out a back-off (after failed ones): while it does, {@link snapshot}
   * serves none for it and throws `QUORUMKV_SNAPSHOT_TEMPORARILY_UNAVAILABLE`
   * (the core asks again at the follower's next heartbeat response),
   * whether or not the state machine makes snapshots on demand.
   */
  holdBack(backingOff: (peer: string) => boolean): void {
    this.backingOff = backingOff;
  }

  /** The base snapshot: index, term and membership always; its data only when it carries the state. */
  baseSnapshot(): Snapshot {
    return super.snapshot();
  }

  /**
   * The snapshot the core sends to a follower that needs entries compacted
   * away (`forPeer`, when the core names it).
   * @throws FaultError `QUORUMKV_SNAPSHOT_TEMPORARILY_UNAVAILABLE` while
   *   `forPeer` waits out a back-off ({@link holdBack}), and in on-demand
   *   mode while a snapshot with the state is being taken
   */
  override snapshot(forPeer?: string): Snapshot {
    const base = super.snapshot();
    if (base.metadata.index === 0) return base;
    if (forPeer !== undefined && this.backingOff?.(forPeer) === true) {
      throw new FaultError(ErrorCode.SNAPSHOT_TEMPORARILY_UNAVAILABLE, `the next snapshot for ${forPeer} waits for the back-off after its failed sends`);
    }
    if (this.wanted === undefined) return base;
    if (this.sendable !== undefined && this.sendable.metadata.index >= this.firstIndex() - 1) {
      this.servedTo.add(forPeer ?? '');
      return this.sendable;
    }
    if (this.baseSendable) return base;
    this.wanted();
    throw new FaultError(ErrorCode.SNAPSHOT_TEMPORARILY_UNAVAILABLE, `a snapshot after index ${base.metadata.index} is being taken`);
  }

  /** A snapshot with the state, taken for a follower; kept until {@link release}. */
  offer(snapshot: Snapshot, at = 0): void {
    this.sendable = snapshot;
    this.servedTo.clear();
    this.sendableAt = at;
  }

  /** Drops the snapshot taken for followers (it is taken again when needed). */
  release(): void {
    this.sendable = undefined;
    this.servedTo.clear();
  }

  /** Whether the core took the snapshot held for followers for some follower, whose send is not reported yet. */
  get sendableServed(): boolean {
    return this.servedTo.size > 0;
  }

  /**
   * The transport reported the send of a snapshot to `peer` (finished or
   * failed). The snapshot held for followers is dropped once no send of it
   * is in flight: another follower's may still need the entries after it.
   * A report for a follower it was not served to (an earlier term's send,
   * or the base snapshot's) changes nothing.
   */
  settle(peer: string): void {
    if (!this.servedTo.delete(peer) && !this.servedTo.delete('')) return;
    if (this.servedTo.size === 0) this.release();
  }

  /** The index of the snapshot taken for followers, if one is held. */
  sendableIndex(): number | undefined {
    return this.sendable?.metadata.index;
  }

  /** Whether a snapshot taken for followers is held. */
  get holdsSendable(): boolean {
    return this.sendable !== undefined;
  }

  /** Installs a snapshot that carries the state (received from the leader, or loaded with its data). */
  override applySnapshot(snap: Snapshot): void {
    super.applySnapshot(snap);
    this.baseSendable = true;
    if (this.sendable !== undefined && this.sendable.metadata.index < snap.metadata.index) this.sendable = undefined;
  }

  /**
   * On demand only: the state machine holds the base snapshot's state
   * durably (restored from it), so the base keeps `record` (its index,
   * term, membership and addresses, without the state) instead of the state
   * itself. A snapshot for a follower is then taken from the state machine
   * when needed. Without it, a follower kept the whole state it installed
   * from its leader in memory until its next local snapshot.
   * @returns whether the base snapshot at `index` was replaced
   */
  shedBaseState(index: number, record: Uint8Array): boolean {
    if (this.wanted === undefined || !this.baseSendable) return false;
    if (!this.replaceSnapshotData(index, record)) return false;
    this.baseSendable = false;
    return true;
  }

  /** Installs a snapshot loaded from storage; `sendable` tells whether it carries the state. */
  loadSnapshot(snap: Snapshot, sendable: boolean): void {
    super.applySnapshot(snap);
    this.baseSendable = sendable;
  }

  /**
   * Records a local snapshot at index `i`; `sendable` tells whether `data`
   * carries the state (false for an on-demand node's metadata record).
   */
  createLocalSnapshot(i: number, confState: Parameters<MemoryStorage['createSnapshot']>[1], data: Uint8Array, sendable: boolean): Snapshot {
    const snap = super.createSnapshot(i, confState, data);
    this.baseSendable = sendable;
    return snap;
  }
}
