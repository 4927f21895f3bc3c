/**
 * A {@link Transport} that measures the round trip to each peer for
 * `etcd_network_peer_round_trip_time_seconds`: on the leader, the time from
 * a heartbeat sent to a peer to the next heartbeat response from that peer.
 * One heartbeat per peer is timed at a time (later ones are not timed until
 * it is answered), so a sample is never matched to the wrong heartbeat when
 * the round trip is longer than the heartbeat interval; a heartbeat that is
 * not answered within `maxAgeMs` (lost) is forgotten. etcd measures the same
 * path with its own probing messages.
 * @module
 */
import type { Message } from '../raftpb/index.js';
import type { Transport, TransportHandler } from '../transport/index.js';

/** Wraps a transport and reports round trips in seconds. */
export class RoundTripTransport implements Transport {
  private readonly sent = new Map<string, number>();
  /** The inner transport's `refusePeer`, where it has one. */
  readonly refusePeer?: (id: string) => void;

  /**
   * @param inner - the transport used
   * @param now - time source in ms (sub-millisecond resolution helps)
   * @param observe - gets each round trip to peer `to`, in seconds
   * @param maxAgeMs - a heartbeat without response for this long is forgotten
   */
  constructor(
    private readonly inner: Transport,
    private readonly now: () => number,
    private readonly observe: (to: string, seconds: number) => void,
    private readonly maxAgeMs: number,
  ) {
    const refuse = inner.refusePeer?.bind(inner);
    if (refuse !== undefined) {
      this.refusePeer = (id) => {
        this.sent.delete(id);
        refuse(id);
      };
    }
  }

  get id(): string {
    return this.inner.id;
  }

  get maxMessageBytes(): number | undefined {
    return this.inner.maxMessageBytes;
  }

  start(handler: TransportHandler): Promise<void> {
    return this.inner.start({
      receive: (m: Message) => {
        if (m.type === 'MsgHeartbeatResp') this.answered(m.from);
        handler.receive(m);
      },
      reportUnreachable: (id) => handler.reportUnreachable(id),
      reportSnapshot: (id, status) => handler.reportSnapshot(id, status),
      reportRemoved: (id) => handler.reportRemoved?.(id),
    });
  }

  send(messages: Message[]): void {
    const t = this.now();
    for (const m of messages) {
      if (m.type !== 'MsgHeartbeat') continue;
      const at = this.sent.get(m.to);
      if (at === undefined || t - at > this.maxAgeMs) this.sent.set(m.to, t);
    }
    this.inner.send(messages);
  }

  private answered(from: string): void {
    const at = this.sent.get(from);
    if (at === undefined) return;
    this.sent.delete(from);
    const ms = this.now() - at;
    if (ms <= this.maxAgeMs) this.observe(from, ms / 1000);
  }

  addPeer(id: string, address?: string): void {
    this.inner.addPeer(id, address);
  }

  removePeer(id: string): void {
    this.sent.delete(id);
    this.inner.removePeer(id);
  }

  close(): Promise<void> {
    this.sent.clear();
    return this.inner.close();
  }
}
