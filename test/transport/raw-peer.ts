// A hand-driven peer for TcpTransport tests: speaks (or breaks) the wire
// protocol byte by byte.
import net, { type Socket } from 'node:net';
import tls from 'node:tls';
import { encodeMessage, pack } from '../../src/codec/index.js';
import type { Message } from '../../src/raftpb/index.js';
import { FrameDecoder, FrameKind, encodeFrame } from '../../src/transport/index.js';
import { helloFrame, PROTOCOL_VERSION, StreamKind, type Hello } from '../../src/transport/frame-bodies.js';
import type { TcpTlsOptions } from '../../src/transport/index.js';

/** A client connection to a transport's port that records what it gets back. */
export class RawPeer {
  readonly socket: Socket;
  /** Frames received (kind and raw body). */
  readonly frames: Array<{ kind: FrameKind; body: Uint8Array }> = [];
  bytesReceived = 0;
  readonly closed: Promise<void>;
  private isClosed = false;
  private readonly decoder = new FrameDecoder(64 * 1024 * 1024);

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.isClosed = true;
        resolve();
      }),
    );
    socket.on('data', (chunk: Buffer) => {
      this.bytesReceived += chunk.length;
      try {
        this.decoder.push(chunk, (kind, body) => this.frames.push({ kind, body }));
      } catch {
        // recorded as bytes only
      }
    });
  }

  /** Connects (TLS when `tlsOptions` is given; resolves once connected or, for TLS, after the handshake). */
  static async connect(port: number, tlsOptions?: TcpTlsOptions): Promise<RawPeer> {
    const socket = tlsOptions
      ? tls.connect({ host: '127.0.0.1', port, key: tlsOptions.key, cert: tlsOptions.cert, ca: tlsOptions.ca, rejectUnauthorized: true })
      : net.connect({ host: '127.0.0.1', port });
    const peer = new RawPeer(socket);
    await new Promise<void>((resolve) => {
      socket.once(tlsOptions ? 'secureConnect' : 'connect', () => resolve());
      socket.once('close', () => resolve());
    });
    return peer;
  }

  get isOpen(): boolean {
    return !this.isClosed;
  }

  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** Sends a handshake; fields default to a valid one from `from` to `to` in cluster `clusterId`. */
  hello(h: Partial<Hello> & Pick<Hello, 'from' | 'to' | 'clusterId'>): void {
    this.write(helloFrame({ version: PROTOCOL_VERSION, stream: StreamKind.Messages, ...h }));
  }

  /** Sends one message frame. */
  message(m: Message): void {
    this.write(messageFrame(m));
  }

  /** Resolves when the other side closed the connection; rejects after `timeoutMs`. */
  async waitClosed(timeoutMs = 5000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.closed,
      new Promise<void>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`connection still open after ${timeoutMs} ms`)), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** The frame of one message. */
export function messageFrame(m: Message): Buffer {
  return encodeFrame(FrameKind.Message, encodeMessage(m));
}

/** A frame with a valid CRC around an arbitrary msgpack value. */
export function valueFrame(kind: FrameKind, value: unknown): Buffer {
  return encodeFrame(kind, pack(value));
}
