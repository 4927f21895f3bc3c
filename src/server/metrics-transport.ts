/**
 * A {@link Transport} that measures the round trip to each peer for
 * `etcd_network_peer_round_trip_time_seconds`: on the leader, the time from
 * a heartbeat sent to a peer to that peer's response to it. One heartbeat
 * per peer is timed at a time (later ones are not timed until it is
 * answered); a heartbeat that is not answered within `maxAgeMs` (lost) is
 * forgotten. The timed heartbeat carries a tag of its own in its `context`
 * (a plain heartbeat has none; Raft echoes it in the response), and only
 * the response carrying that tag is timed, the tag taken off before the
 * member sees it: the response to a later heartbeat is never timed from a
 * lost one. Heartbeats that carry a ReadIndex context are not timed, nor
 * changed. etcd measures the same path with its own probing messages,
 * which carry their send time.
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { Message } from '../raftpb/index.js';
import type { Transport, TransportHandler } from '../transport/index.js';

/** Wraps a transport and reports round trips in seconds. */
export class RoundTripTransport implements Transport {
  /** Per peer, the heartbeat being timed: when it was sent and its tag. */
  private readonly sent = new Map<string, { at: number; tag: Uint8Array }>();
  /** What every tag of this transport begins with: a NUL, then random bytes. */
  private readonly tagPrefix = new Uint8Array([0, ...randomBytes(8)]);
  private seq = 0;
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
        handler.receive(m.type === 'MsgHeartbeatResp' && m.context !== undefined ? this.answered(m) : m);
      },
      reportUnreachable: (id) => handler.reportUnreachable(id),
      reportSnapshot: (id, status) => handler.reportSnapshot(id, status),
      reportRemoved: (id) => handler.reportRemoved?.(id),
    });
  }

  send(messages: Message[]): void {
    const t = this.now();
    let out = messages;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      if (m.type !== 'MsgHeartbeat' || (m.context !== undefined && m.context.length > 0)) continue;
      const timed = this.sent.get(m.to);
      if (timed !== undefined && t - timed.at <= this.maxAgeMs) continue;
      const tag = new Uint8Array(this.tagPrefix.length + 8);
      tag.set(this.tagPrefix);
      new DataView(tag.buffer).setFloat64(this.tagPrefix.length, ++this.seq);
      this.sent.set(m.to, { at: t, tag });
      if (out === messages) out = messages.slice();
      out[i] = { ...m, context: tag };
    }
    this.inner.send(out);
  }

  /** `m` (a heartbeat response with a context) without this transport's tag; timed when it answers the heartbeat being timed. */
  private answered(m: Message): Message {
    const ctx = m.context!;
    if (!this.isTag(ctx)) return m;
    const timed = this.sent.get(m.from);
    if (timed !== undefined && sameBytes(timed.tag, ctx)) {
      this.sent.delete(m.from);
      const ms = this.now() - timed.at;
      if (ms <= this.maxAgeMs) this.observe(m.from, ms / 1000);
    }
    const plain = { ...m };
    delete plain.context;
    return plain;
  }

  private isTag(ctx: Uint8Array): boolean {
    const p = this.tagPrefix;
    return ctx.length === p.length + 8 && sameBytes(ctx.subarray(0, p.length), p);
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

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
