/**
 * The outbound message stream of {@link TcpTransport} to one peer: one
 * connection, a bounded FIFO send queue, batched writes, and reconnection
 * with exponential backoff.
 * @module
 */
import type { Socket } from 'node:net';
import { FaultError, ErrorCode } from '../errors.js';
import type { HostPort } from './address.js';
import { FrameDecoder, FrameKind } from './frame.js';
import { checkHeartbeat, decodeHello, helloFrame, PROTOCOL_VERSION, StreamKind } from './frame-bodies.js';
import { LinkHeartbeat } from './link-heartbeat.js';
import { refusalError, tuneSocket, withAddress, type TcpContext } from './tcp-context.js';
import { backoffDelay } from './tcp-options.js';

/**
 * - `idle`: no connection, nothing to send;
 * - `dialing`: connecting, waiting for the peer's handshake; frames wait in the queue;
 * - `open`: handshake done, frames are written as they come;
 * - `backoff`: the last connection failed; redial when the timer fires;
 * - `closed`: removed or transport closed; everything is dropped.
 */
type LinkState = 'idle' | 'dialing' | 'open' | 'backoff' | 'closed';

/** Largest number of bytes concatenated into one socket write. */
const MAX_WRITE_BYTES = 4 * 1024 * 1024;

/**
 * One peer's outbound stream. Frames are queued by {@link enqueue} and
 * written once per tick (one `write` of the concatenated frames), so the
 * many small messages of a Ready cost one system call. The queue is bounded
 * by count and bytes; on overflow the oldest frames are dropped and the peer
 * reported unreachable (Raft retransmits). While the connection is down the
 * peer is reported unreachable on every tick that sends to it.
 */
export class PeerLink {
  readonly peer: string;
  readonly address: HostPort;
  private readonly ctx: TcpContext;
  private state: LinkState = 'idle';
  private queue: Buffer[] = [];
  private queueBytes = 0;
  private droppedSinceTick = 0;
  private tickScheduled = false;
  private socket: Socket | undefined;
  private writable = true;
  private attempt = 0;
  /** When the current stream opened (performance.now() ms). */
  private openedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Set by {@link connect}: the stream is kept up with nothing to send. */
  private persistent = false;
  /** The open stream's heartbeat and read timeout. */
  private heartbeat: LinkHeartbeat | undefined;

  constructor(ctx: TcpContext, peer: string, address: HostPort) {
    this.ctx = ctx;
    this.peer = peer;
    this.address = address;
  }

  /**
   * Keeps a stream to the peer from now on, with or without something to
   * send, as etcd's rafthttp keeps its streams: dials now if idle, and after
   * a stream fails or closes, redials when the backoff ends. The peer
   * answers the handshake and the stream waits open, or it refuses this node
   * as removed from the cluster, which is reported.
   */
  connect(): void {
    this.persistent = true;
    if (this.state === 'idle') this.dial();
  }

  /**
   * The peer has just dialed this node and passed the handshake: it is up
   * again. A link waiting out its backoff dials now instead of when the
   * timer fires (a restarted peer otherwise waited up to `backoff.maxMs`
   * for this side; etcd's rafthttp redials every 100 ms). The backoff is
   * not started over: a stream that fails again still waits longer.
   */
  peerUp(): void {
    if (this.state !== 'backoff') return;
    this.clearTimer();
    this.state = 'idle';
    if (this.queue.length > 0 || this.persistent) this.dial();
  }

  /** Queues one encoded frame; it is written on the next tick, in order. */
  enqueue(frame: Buffer): void {
    if (this.state === 'closed') return;
    this.queue.push(frame);
    this.queueBytes += frame.length;
    const { maxQueuedMessages, maxQueuedBytes } = this.ctx.options;
    while (this.queue.length > 1 && (this.queue.length > maxQueuedMessages || this.queueBytes > maxQueuedBytes)) {
      const old = this.queue.shift()!;
      this.queueBytes -= old.length;
      this.droppedSinceTick++;
    }
    if (!this.tickScheduled) {
      this.tickScheduled = true;
      queueMicrotask(() => this.tick());
    }
  }

  /**
   * Drops everything and closes the connection; the link cannot be used again.
   * @returns whether queued messages were dropped (their peer is then to be
   *   reported unreachable, so that Raft retransmits)
   */
  close(): boolean {
    if (this.state === 'closed') return false;
    this.state = 'closed';
    this.clearTimer();
    const dropped = this.queue.length > 0;
    this.queue = [];
    this.queueBytes = 0;
    const s = this.socket;
    this.socket = undefined;
    s?.destroy();
    return dropped;
  }

  private tick(): void {
    this.tickScheduled = false;
    if (this.state === 'closed') return;
    if (this.droppedSinceTick > 0) {
      this.ctx.log('%s: send queue to %s full, dropped %d oldest messages', this.ctx.options.id, this.peer, this.droppedSinceTick);
      this.droppedSinceTick = 0;
      this.ctx.reportUnreachable(this.peer);
    }
    switch (this.state) {
      case 'idle':
        if (this.queue.length > 0) this.dial();
        break;
      case 'backoff':
        this.ctx.reportUnreachable(this.peer);
        break;
      case 'open':
        this.flush();
        break;
      case 'dialing':
        break;
    }
  }

  private dial(): void {
    const { id, clusterId, dialTimeoutMs, maxFrameBytes } = this.ctx.options;
    this.state = 'dialing';
    this.writable = true;
    const socket = this.ctx.connect(this.address);
    this.socket = socket;
    tuneSocket(socket);
    const decoder = new FrameDecoder(maxFrameBytes);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.ctx.log('%s: no handshake from %s within %d ms', id, this.peer, dialTimeoutMs);
      socket.destroy();
    }, dialTimeoutMs);
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk, (kind, body) => {
          if (kind === FrameKind.Refused && this.state === 'dialing' && this.socket === socket) throw refusalError(this.ctx, this.peer, body);
          if (kind === FrameKind.Heartbeat && this.state === 'open' && this.socket === socket) {
            checkHeartbeat(body);
            return;
          }
          if (kind !== FrameKind.Hello || this.state !== 'dialing' || this.socket !== socket) {
            throw new FaultError(ErrorCode.MALFORMED_FRAME, `unexpected frame kind ${kind} on an outbound stream`);
          }
          const h = decodeHello(body);
          if (h.version !== PROTOCOL_VERSION || h.clusterId !== clusterId || h.from !== this.peer || h.to !== id || h.stream !== StreamKind.Messages) {
            throw new FaultError(ErrorCode.CLUSTER_ID_MISMATCH, `handshake reply ${JSON.stringify(h)} does not match`);
          }
          this.opened();
        });
      } catch (err) {
        this.ctx.log('%s: closing stream to %s: %s', id, this.peer, (err as Error).message);
        socket.destroy();
      }
    });
    socket.on('drain', () => {
      if (this.socket !== socket) return;
      this.writable = true;
      this.flush();
    });
    socket.on('error', (err) => this.ctx.log('%s: stream to %s: %s', id, this.peer, err.message));
    socket.on('close', () => this.closed(socket));
    socket.write(helloFrame(withAddress({ version: PROTOCOL_VERSION, clusterId, from: id, to: this.peer, stream: StreamKind.Messages }, this.ctx.advertised())));
  }

  private opened(): void {
    this.clearTimer();
    this.state = 'open';
    this.openedAt = performance.now();
    const socket = this.socket!;
    this.heartbeat = new LinkHeartbeat(socket, this.ctx.options, (why) => {
      this.ctx.log('%s: closing stream to %s: %s', this.ctx.options.id, this.peer, why);
      socket.destroy();
    });
    this.ctx.log('%s: stream to %s open', this.ctx.options.id, this.peer);
    this.flush();
  }

  private closed(socket: Socket): void {
    if (this.socket !== socket) return;
    this.socket = undefined;
    this.clearTimer();
    if (this.state === 'closed') return;
    this.ctx.log('%s: stream to %s closed (was %s)', this.ctx.options.id, this.peer, this.state);
    // the backoff starts over only after a stream that lasted: one the peer
    // closes right after each handshake (a second member with its id, an
    // impostor) is redialed ever more slowly, not at the first delay forever
    if (this.state === 'open' && performance.now() - this.openedAt >= this.ctx.options.backoff.maxMs) this.attempt = 0;
    this.ctx.reportUnreachable(this.peer);
    this.state = 'backoff';
    const delay = backoffDelay(this.attempt++, this.ctx.options.backoff, Math.random());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.state !== 'backoff') return;
      this.state = 'idle';
      if (this.queue.length > 0 || this.persistent) this.dial();
    }, delay);
  }

  private flush(): void {
    const socket = this.socket;
    if (this.state !== 'open' || socket === undefined) return;
    while (this.writable && this.queue.length > 0) {
      let n = 0;
      let bytes = 0;
      while (n < this.queue.length && (n === 0 || bytes + this.queue[n]!.length <= MAX_WRITE_BYTES)) {
        bytes += this.queue[n]!.length;
        n++;
      }
      const batch = n === 1 ? this.queue[0]! : Buffer.concat(this.queue.slice(0, n), bytes);
      this.queue = n === this.queue.length ? [] : this.queue.slice(n);
      this.queueBytes -= bytes;
      this.writable = socket.write(batch);
    }
  }

  private clearTimer(): void {
    this.heartbeat?.stop();
    this.heartbeat = undefined;
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }
}
