/**
 * Streams one `MsgSnap` to a peer on a connection of its own (as etcd's
 * rafthttp does), in chunks, and reports the outcome once the receiver
 * acknowledged it.
 * @module
 */
import type { Socket } from 'node:net';
import { encodeMessage } from '../codec/index.js';
import { ErrorCode, FaultError } from '../errors.js';
import type { Message } from '../raftpb/index.js';
import type { HostPort } from './address.js';
import { FrameDecoder, FrameKind } from './frame.js';
import { decodeHello, decodeSnapshotAck, helloFrame, PROTOCOL_VERSION, snapshotChunkFrame, StreamKind } from './frame-bodies.js';
import { refusalError, tuneSocket, withAddress, type TcpContext } from './tcp-context.js';

/**
 * One snapshot transfer: dial, handshake (stream kind `Snapshot`), chunks of
 * `snapshotChunkBytes` written with backpressure, then wait for the receiver's
 * acknowledgement. `'finish'` is reported on a positive acknowledgement;
 * `'failure'` (and unreachable) on anything else: refused handshake, closed
 * connection, no progress for `snapshotIdleTimeoutMs`, `cancel()`.
 */
export class SnapshotSender {
  readonly peer: string;
  private readonly ctx: TcpContext;
  private readonly address: HostPort;
  private readonly onDone: (s: SnapshotSender) => void;
  private readonly encoded: Uint8Array;
  private socket: Socket | undefined;
  private offset = 0;
  private handshaken = false;
  private done = false;
  private timer: NodeJS.Timeout | undefined;

  /** Encodes `msg` and starts the transfer at once. `onDone` runs when it ends either way. */
  constructor(ctx: TcpContext, peer: string, address: HostPort, msg: Message, onDone: (s: SnapshotSender) => void) {
    this.ctx = ctx;
    this.peer = peer;
    this.address = address;
    this.onDone = onDone;
    this.encoded = encodeMessage(msg);
    this.start();
  }

  /** Aborts the transfer. `report` false: end silently (transport closing). */
  cancel(report: boolean): void {
    this.finish(report ? 'failure' : undefined, 'cancelled');
  }

  private start(): void {
    const { id, clusterId, dialTimeoutMs, maxFrameBytes, snapshotIdleTimeoutMs } = this.ctx.options;
    const socket = this.ctx.connect(this.address);
    this.socket = socket;
    tuneSocket(socket);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.finish('failure', `no handshake within ${dialTimeoutMs} ms`);
    }, dialTimeoutMs);
    socket.setTimeout(snapshotIdleTimeoutMs, () => this.finish('failure', `no progress for ${snapshotIdleTimeoutMs} ms`));
    const decoder = new FrameDecoder(maxFrameBytes);
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk, (kind, body) => {
          if (this.done) return;
          if (!this.handshaken) {
            if (kind === FrameKind.Refused) throw refusalError(this.ctx, this.peer, body);
            if (kind !== FrameKind.Hello) throw new FaultError(ErrorCode.MALFORMED_FRAME, 'expected a handshake');
            const h = decodeHello(body);
            if (h.version !== PROTOCOL_VERSION || h.clusterId !== clusterId || h.from !== this.peer || h.to !== id || h.stream !== StreamKind.Snapshot) {
              throw new FaultError(ErrorCode.CLUSTER_ID_MISMATCH, 'handshake reply does not match');
            }
            this.handshaken = true;
            this.clearTimer();
            this.writeChunks();
            return;
          }
          if (kind !== FrameKind.SnapshotAck || this.offset < this.encoded.length) {
            throw new FaultError(ErrorCode.MALFORMED_FRAME, `unexpected frame kind ${kind} on a snapshot stream`);
          }
          const ok = decodeSnapshotAck(body);
          this.finish(ok ? 'finish' : 'failure', ok ? 'acknowledged' : 'refused by the receiver');
        });
      } catch (err) {
        this.finish('failure', (err as Error).message);
      }
    });
    socket.on('drain', () => this.writeChunks());
    socket.on('error', (err) => this.ctx.log('%s: snapshot stream to %s: %s', id, this.peer, err.message));
    socket.on('close', () => this.finish('failure', 'connection closed before the acknowledgement'));
    socket.write(helloFrame(withAddress({ version: PROTOCOL_VERSION, clusterId, from: id, to: this.peer, stream: StreamKind.Snapshot }, this.ctx.advertised())));
  }

  private writeChunks(): void {
    const socket = this.socket;
    if (this.done || socket === undefined || !this.handshaken) return;
    const total = this.encoded.length;
    const size = this.ctx.options.snapshotChunkBytes;
    while (this.offset < total) {
      const end = Math.min(total, this.offset + size);
      const frame = snapshotChunkFrame({ totalBytes: total, offset: this.offset, bytes: this.encoded.subarray(this.offset, end) });
      this.offset = end;
      if (!socket.write(frame)) return; // resumes on 'drain'
    }
  }

  private finish(status: 'finish' | 'failure' | undefined, why: string): void {
    if (this.done) return;
    this.done = true;
    this.clearTimer();
    this.ctx.log('%s: snapshot to %s (%d bytes) ended: %s', this.ctx.options.id, this.peer, this.encoded.length, why);
    const socket = this.socket;
    this.socket = undefined;
    socket?.destroy(); // after an acknowledgement there is nothing left to exchange
    if (status !== undefined) {
      if (status === 'failure') this.ctx.reportUnreachable(this.peer);
      this.ctx.reportSnapshot(this.peer, status);
    }
    this.onDone(this);
  }

  private clearTimer(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }
}
