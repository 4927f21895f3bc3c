/**
 * One node's endpoint on a {@link MemoryNetwork}. Created by
 * `MemoryNetwork.transport(id)`; all the fault logic lives in the network.
 * @module
 */
import createDebug from 'debug';
import { ErrorCode, UsageError } from '../errors.js';
import { isLocalMessage, type Message } from '../raftpb/index.js';
import type { SnapshotStatus, Transport, TransportHandler } from './transport.js';

const log = createDebug('quorumkv:transport');

/** What a {@link MemoryTransport} needs from its network (implemented by `MemoryNetwork`). */
export interface MemoryHub {
  /** Takes a message from `sender` to a peer it knows. */
  transmit(sender: MemoryTransport, msg: Message): void;
  /** Schedules `fn` at delay 0 on the network's scheduler (reports are never synchronous). */
  later(fn: () => void): void;
  /**
   * `sender` reaches out to `to` with nothing to send (as a TCP transport
   * dials a new peer): if `to` refuses it as removed from the cluster, the
   * sender is told (`reportRemoved`), later.
   */
  connect(sender: MemoryTransport, to: string): void;
  /** This transport refused a peer: the network tells it, where it can (see `MemoryNetwork`). */
  refused(): void;
  /** The transport was closed; the network forgets it. */
  detach(t: MemoryTransport): void;
}

type State = 'new' | 'started' | 'closed';

/**
 * Most senders that are not peers this endpoint keeps as remotes it can
 * answer; past it the one heard from least recently is forgotten.
 */
export const MAX_REMOTES = 64;

/**
 * A {@link Transport} whose wire is a {@link MemoryHub}. Exported for the
 * network's use; users get it typed as `Transport`.
 */
export class MemoryTransport implements Transport {
  readonly id: string;
  private readonly hub: MemoryHub;
  private readonly peers = new Set<string>();
  /** Ids removed from the cluster: told so when they reach this endpoint. */
  private readonly refused = new Set<string>();
  /**
   * Senders that are not peers, least recently heard from first: messages
   * may be sent to them (etcd's rafthttp "remotes"). At most {@link MAX_REMOTES}.
   */
  private readonly remotes = new Set<string>();
  private handler: TransportHandler | undefined;
  private state: State = 'new';

  constructor(id: string, hub: MemoryHub) {
    this.id = id;
    this.hub = hub;
  }

  start(handler: TransportHandler): Promise<void> {
    if (this.state === 'closed') {
      return Promise.reject(new UsageError(ErrorCode.TRANSPORT_CLOSED, `transport ${this.id} is closed`));
    }
    if (this.state === 'started') {
      return Promise.reject(new UsageError(ErrorCode.INVALID_ARGUMENT, `transport ${this.id} is already started`));
    }
    this.handler = handler;
    this.state = 'started';
    for (const id of this.peers) this.hub.connect(this, id);
    // refusals made before start (a restart's snapshot lists removed ids)
    if (this.refused.size > 0) this.hub.refused();
    return Promise.resolve();
  }

  send(messages: Message[]): void {
    if (this.state === 'closed') return;
    if (this.state === 'new') {
      throw new UsageError(ErrorCode.TRANSPORT_NOT_STARTED, `transport ${this.id} is not started`);
    }
    for (const m of messages) {
      if (isLocalMessage(m.type) || m.from !== this.id) {
        log('%s: not sending %s from %s to %s (local type or foreign from)', this.id, m.type, m.from, m.to);
        continue;
      }
      if (!this.peers.has(m.to) && !this.remotes.has(m.to)) {
        log('%s: %s to unknown peer %s', this.id, m.type, m.to);
        const to = m.to;
        const snap = m.type === 'MsgSnap';
        this.hub.later(() => {
          this.reportUnreachable(to);
          if (snap) this.reportSnapshot(to, 'failure');
        });
        continue;
      }
      this.hub.transmit(this, m);
    }
  }

  addPeer(id: string, _address?: string): void {
    if (typeof id !== 'string' || id === '') {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'peer id must be a non-empty string');
    }
    if (id === this.id) return;
    const known = this.peers.has(id);
    this.remotes.delete(id);
    this.peers.add(id);
    if (!known && this.state === 'started') this.hub.connect(this, id);
  }

  removePeer(id: string): void {
    this.peers.delete(id);
    this.remotes.delete(id);
  }

  refusePeer(id: string): void {
    if (typeof id !== 'string' || id === '') {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'peer id must be a non-empty string');
    }
    this.peers.delete(id);
    this.remotes.delete(id);
    if (id === this.id || this.refused.has(id)) return;
    this.refused.add(id);
    if (this.state === 'started') this.hub.refused();
  }

  close(): Promise<void> {
    if (this.state !== 'closed') {
      this.state = 'closed';
      this.handler = undefined;
      this.peers.clear();
      this.remotes.clear();
      this.refused.clear();
      this.hub.detach(this);
    }
    return Promise.resolve();
  }

  /**
   * True when this endpoint is started, open, and does not refuse `from` as
   * removed from the cluster: a sender that is not a peer is accepted too
   * (and becomes a remote, see {@link deliver}), as etcd's rafthttp takes
   * messages from any member not removed. A member that missed the
   * addition of a new one must still hear from it once it leads.
   */
  accepts(from: string): boolean {
    return this.state === 'started' && !this.refused.has(from);
  }

  /** True when this endpoint is started, open, and was told `from` was removed from the cluster. */
  refuses(from: string): boolean {
    return this.state === 'started' && this.refused.has(from);
  }

  /** True when this endpoint is started, open, and knows `id` as a peer. */
  knows(id: string): boolean {
    return this.state === 'started' && this.peers.has(id);
  }

  /** The ids this endpoint refuses as removed from the cluster. */
  refusedIds(): Iterable<string> {
    return this.refused;
  }

  /** True once closed. */
  get closed(): boolean {
    return this.state === 'closed';
  }

  /** True once started, and until closed. */
  get started(): boolean {
    return this.state === 'started';
  }

  /**
   * Hands a delivered message to the handler (no-op once closed). A sender
   * that is not a peer becomes (or stays, as the most recently heard from)
   * a remote, which this endpoint can answer; the least recently heard
   * from is forgotten past {@link MAX_REMOTES}.
   */
  deliver(msg: Message): void {
    const h = this.handler;
    if (h === undefined) return;
    if (!this.peers.has(msg.from)) {
      this.remotes.delete(msg.from);
      this.remotes.add(msg.from);
      if (this.remotes.size > MAX_REMOTES) {
        const oldest = this.remotes.values().next().value as string;
        this.remotes.delete(oldest);
        log('%s: forgot remote %s (more than %d senders that are not peers)', this.id, oldest, MAX_REMOTES);
      }
    }
    try {
      h.receive(msg);
    } catch (err) {
      log('%s: handler.receive threw: %O', this.id, err);
    }
  }

  /** Calls the handler's `reportUnreachable` (no-op once closed). */
  reportUnreachable(peerId: string): void {
    const h = this.handler;
    if (h === undefined) return;
    try {
      h.reportUnreachable(peerId);
    } catch (err) {
      log('%s: handler.reportUnreachable threw: %O', this.id, err);
    }
  }

  /** Calls the handler's `reportRemoved`, where it has one (no-op once closed). */
  reportRemoved(peerId: string): void {
    const h = this.handler;
    if (h?.reportRemoved === undefined) return;
    try {
      h.reportRemoved(peerId);
    } catch (err) {
      log('%s: handler.reportRemoved threw: %O', this.id, err);
    }
  }

  /** Calls the handler's `reportSnapshot` (no-op once closed). */
  reportSnapshot(peerId: string, status: SnapshotStatus): void {
    const h = this.handler;
    if (h === undefined) return;
    try {
      h.reportSnapshot(peerId, status);
    } catch (err) {
      log('%s: handler.reportSnapshot threw: %O', this.id, err);
    }
  }
}
