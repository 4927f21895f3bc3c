/**
 * The liveness check of a message stream of {@link TcpTransport}, on both
 * sides (etcd's rafthttp link heartbeat and `ConnReadTimeout`).
 * @module
 */
import type { Socket } from 'node:net';
import { HEARTBEAT_FRAME } from './frame-bodies.js';

/**
 * Every `heartbeatMs`, writes a heartbeat frame if nothing was written since
 * the last look, and calls `onDead` once nothing has been read for
 * `readTimeoutMs`. It reads the socket's byte counters, so the hot path
 * pays nothing. A stall of this process (a look more than two heartbeats
 * late) starts the read window over. Started once the handshake is done; stopped with the
 * stream.
 */
export class LinkHeartbeat {
  private readonly socket: Socket;
  private readonly readTimeoutMs: number;
  private readonly onDead: (why: string) => void;
  private readonly timer: NodeJS.Timeout;
  private readMark: number;
  private writeMark: number;
  private readAt = performance.now();
  private lookedAt = performance.now();
  private readonly heartbeatMs: number;

  /**
   * @param o.heartbeatMs - how often to look, ms; also the longest a side writes nothing
   * @param o.readTimeoutMs - how long a stream may read nothing before `onDead`, ms
   * @param onDead - called once, with the reason, when the stream is to be closed
   */
  constructor(socket: Socket, o: { heartbeatMs: number; readTimeoutMs: number }, onDead: (why: string) => void) {
    this.socket = socket;
    this.readTimeoutMs = o.readTimeoutMs;
    this.heartbeatMs = o.heartbeatMs;
    this.onDead = onDead;
    this.readMark = socket.bytesRead;
    this.writeMark = socket.bytesWritten;
    this.timer = setInterval(() => this.look(), o.heartbeatMs);
  }

  /** Stops looking (idempotent). */
  stop(): void {
    clearInterval(this.timer);
  }

  private look(): void {
    const s = this.socket;
    if (s.destroyed) {
      this.stop();
      return;
    }
    const now = performance.now();
    // After this process stalled (a long synchronous task, a debugger, a
    // paused VM), timers run before the sockets are read: what the peer sent
    // meanwhile is not counted yet, so the read window starts over.
    if (now - this.lookedAt > 2 * this.heartbeatMs) this.readAt = now;
    this.lookedAt = now;
    if (s.bytesRead !== this.readMark) {
      this.readMark = s.bytesRead;
      this.readAt = now;
    } else if (now - this.readAt >= this.readTimeoutMs) {
      this.stop();
      this.onDead(`nothing read for ${this.readTimeoutMs} ms`);
      return;
    }
    if (s.bytesWritten === this.writeMark && s.writable && !s.writableNeedDrain) s.write(HEARTBEAT_FRAME);
    this.writeMark = s.bytesWritten;
  }
}
