/**
 * An accepted connection of {@link TcpTransport}: checks the handshake, then
 * decodes and checks every frame before anything reaches the handler.
 * @module
 */
import { isIPv4, type Socket } from 'node:net';
import { decodeMessage } from '../codec/index.js';
import { ErrorCode, FaultError } from '../errors.js';
import { isLocalMessage, type Message } from '../raftpb/index.js';
import { parseAddress, type HostPort } from './address.js';
import { FrameDecoder, FrameKind } from './frame.js';
import { checkHeartbeat, decodeHello, decodeSnapshotChunk, helloFrame, PROTOCOL_VERSION, refusedFrame, snapshotAckFrame, StreamKind, type Hello } from './frame-bodies.js';
import { LinkHeartbeat } from './link-heartbeat.js';
import { tuneSocket, type TcpContext } from './tcp-context.js';

/**
 * Largest frame accepted before the handshake, in bytes: a handshake takes
 * well under 1 KiB (two ids of at most 255 bytes, the cluster id), and a
 * connection that has not said who it is must not make this node allocate
 * `maxFrameBytes` (the decoder allocates a frame's payload from its header).
 */
export const HANDSHAKE_MAX_FRAME_BYTES = 16 * 1024;

/** Hooks of the owning transport. */
export interface InboundHooks {
  /** The handshake of `conn` was accepted (its `peer` and `stream` are set). */
  accepted(conn: InboundConnection): void;
  /** `conn` is closed for good. */
  closed(conn: InboundConnection): void;
}

/**
 * One accepted connection. The first frame must be a handshake with this
 * cluster's id, this node as `to` and as `from` an id not refused as removed
 * from the cluster (a peer, or a remote: see `TcpTransport`), within
 * `dialTimeoutMs`; then, on a message stream, only `Message` frames whose
 * message is from that peer to this node (not a local type, not a
 * `MsgSnap`); on a snapshot stream, the chunks of one `MsgSnap`, acknowledged
 * once whole. Any violation closes the connection; frames already delivered
 * stay delivered, nothing partial or foreign ever reaches the handler.
 */
/** The first buffer of a snapshot being received: 4 MiB (or the snapshot's size if smaller). */
const SNAP_FIRST_BYTES = 4 * 1024 * 1024;

export class InboundConnection {
  /** The authenticated peer, once the handshake is accepted. */
  peer: string | undefined;
  /** The stream kind, once the handshake is accepted. */
  stream: StreamKind | undefined;
  private readonly ctx: TcpContext;
  private readonly socket: Socket;
  private readonly hooks: InboundHooks;
  private readonly decoder: FrameDecoder;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /**
   * The snapshot being received: a first buffer of at most
   * {@link SNAP_FIRST_BYTES}, doubled as the sender fills it, then the
   * announced size once past half of it; a stream announcing a large
   * snapshot reserves at most four times what it actually sent.
   */
  private snap: Buffer | undefined;
  private snapFill = 0;
  private snapTotal = 0;
  private snapDone = false;
  /** A message stream's heartbeat and read timeout, once its handshake is done. */
  private heartbeat: LinkHeartbeat | undefined;

  constructor(ctx: TcpContext, socket: Socket, hooks: InboundHooks) {
    this.ctx = ctx;
    this.socket = socket;
    this.hooks = hooks;
    this.decoder = new FrameDecoder(Math.min(HANDSHAKE_MAX_FRAME_BYTES, ctx.options.maxFrameBytes), 'the limit before the handshake');
    tuneSocket(socket);
    const { dialTimeoutMs } = ctx.options;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.close(`no handshake within ${dialTimeoutMs} ms`);
    }, dialTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    // an error closes the connection: not every one destroys the socket
    // (a TLS socket reports a renegotiation with an error and stays open)
    socket.on('error', (err) => this.close(`socket error: ${err.message}`));
    socket.on('close', () => this.close('closed by the peer'));
  }

  /** Closes the connection (idempotent). */
  close(why: string): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.heartbeat?.stop();
    this.snap = undefined;
    this.ctx.log('%s: inbound connection from %s closed: %s', this.ctx.options.id, this.peer ?? this.socket.remoteAddress, why);
    this.socket.destroy();
    this.hooks.closed(this);
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    try {
      this.decoder.push(chunk, (kind, body) => this.onFrame(kind, body));
    } catch (err) {
      this.close((err as Error).message);
    }
  }

  private onFrame(kind: FrameKind, body: Uint8Array): void {
    if (this.closed) throw new FaultError(ErrorCode.TRANSPORT_CLOSED, 'connection closed');
    if (this.peer === undefined) {
      if (kind !== FrameKind.Hello) throw new FaultError(ErrorCode.MALFORMED_FRAME, 'the first frame is not a handshake');
      this.handshake(decodeHello(body));
      return;
    }
    if (this.stream === StreamKind.Messages) {
      if (kind === FrameKind.Heartbeat) {
        checkHeartbeat(body);
        return;
      }
      if (kind !== FrameKind.Message) throw new FaultError(ErrorCode.MALFORMED_FRAME, `unexpected frame kind ${kind} on a message stream`);
      const m = decodeMessage(body);
      this.check(m);
      if (m.type === 'MsgSnap') throw new FaultError(ErrorCode.MALFORMED_FRAME, 'MsgSnap on a message stream');
      this.ctx.deliver(m);
      return;
    }
    this.onSnapshotFrame(kind, body);
  }

  private handshake(h: Hello): void {
    const { id, clusterId } = this.ctx.options;
    if (h.version !== PROTOCOL_VERSION) {
      throw new FaultError(ErrorCode.MALFORMED_FRAME, `protocol version ${h.version} (this node speaks ${PROTOCOL_VERSION})`);
    }
    if (h.clusterId !== clusterId) {
      throw new FaultError(ErrorCode.CLUSTER_ID_MISMATCH, `cluster id ${JSON.stringify(h.clusterId)} is not ${JSON.stringify(clusterId)}`);
    }
    if (h.to !== id) throw new FaultError(ErrorCode.UNKNOWN_PEER, `handshake is for ${JSON.stringify(h.to)}, not this node`);
    if (this.ctx.isRefused(h.from)) {
      this.refuse(h.from);
      return;
    }
    if (h.from === id || h.from === '') throw new FaultError(ErrorCode.UNKNOWN_PEER, `handshake from ${JSON.stringify(h.from)}`);
    // A dialer that is not a peer is taken all the same (etcd's rafthttp
    // takes messages from any member not removed): a member that missed
    // the addition of a new one must hear from it once it leads, and
    // answer it, at the address its handshake gives.
    if (!this.ctx.admit(h.from, this.answerAddress(h))) throw new FaultError(ErrorCode.TRANSPORT_CLOSED, 'transport closed');
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.peer = h.from;
    this.stream = h.stream;
    // a peer whose maxFrameBytes is larger sends frames this node refuses:
    // its stream is closed and redialed, and Raft resends them in vain
    this.decoder.setMaxFrameBytes(
      this.ctx.options.maxFrameBytes,
      `this node's maxFrameBytes; ${h.from}'s must not be larger: set the same on every member`,
    );
    if (h.stream === StreamKind.Snapshot) {
      const idle = this.ctx.options.snapshotIdleTimeoutMs;
      this.socket.setTimeout(idle, () => this.close(`snapshot stream idle for ${idle} ms`));
    }
    this.socket.write(helloFrame({ version: PROTOCOL_VERSION, clusterId, from: id, to: h.from, stream: h.stream }));
    if (h.stream === StreamKind.Messages) this.heartbeat = new LinkHeartbeat(this.socket, this.ctx.options, (why) => this.close(why));
    this.ctx.log('%s: accepted %s stream from %s', id, h.stream === StreamKind.Messages ? 'message' : 'snapshot', h.from);
    this.hooks.accepted(this);
  }

  /**
   * Where the dialer of `h` is answered when it is not a peer: its
   * handshake's address, with an unspecified host (`0.0.0.0`, `::`: it
   * listens on every interface) replaced by the address this connection
   * came from (an IPv4-mapped IPv6 address as the IPv4 address it maps);
   * undefined without an address.
   */
  private answerAddress(h: Hello): HostPort | undefined {
    if (h.address === undefined) return undefined;
    const hp = parseAddress(h.address);
    if (hp.host !== '0.0.0.0' && hp.host !== '::') return hp;
    let from = this.socket.remoteAddress;
    if (from === undefined) return undefined;
    // an IPv4 dialer as a dual-stack server sees it: dialed (and, with TLS,
    // checked against the certificate) as the IPv4 address it is
    if (from.startsWith('::ffff:') && isIPv4(from.slice(7))) from = from.slice(7);
    return { host: from, port: hp.port };
  }

  /**
   * Answers a dialer removed from the cluster with a refusal saying so, and
   * closes once it is written (etcd's rafthttp answers such a member with
   * `410 Gone`; the member stops).
   */
  private refuse(peer: string): void {
    const { id, clusterId } = this.ctx.options;
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.ctx.log('%s: refused %s: removed from the cluster', id, peer);
    // closed for good once the refusal is written, or after dialTimeoutMs at
    // the latest: a dialer that keeps its side open holds nothing here
    const socket = this.socket;
    const destroy = (): void => {
      clearTimeout(timer);
      socket.destroy();
    };
    const timer = setTimeout(destroy, this.ctx.options.dialTimeoutMs);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
    socket.end(refusedFrame({ version: PROTOCOL_VERSION, clusterId, from: id, to: peer, reason: 'removed' }), destroy);
    this.hooks.closed(this);
  }

  private check(m: Message): void {
    if (m.from !== this.peer || m.to !== this.ctx.options.id) {
      throw new FaultError(ErrorCode.UNKNOWN_PEER, `message from ${JSON.stringify(m.from)} to ${JSON.stringify(m.to)} on ${this.peer}'s stream`);
    }
    if (isLocalMessage(m.type)) throw new FaultError(ErrorCode.MALFORMED_FRAME, `local message type ${m.type} from the network`);
  }

  private onSnapshotFrame(kind: FrameKind, body: Uint8Array): void {
    if (kind !== FrameKind.SnapshotChunk || this.snapDone) {
      throw new FaultError(ErrorCode.MALFORMED_FRAME, `unexpected frame kind ${kind} on a snapshot stream`);
    }
    const c = decodeSnapshotChunk(body);
    if (this.snap === undefined) {
      const max = this.ctx.options.maxSnapshotBytes;
      if (c.offset !== 0) throw new FaultError(ErrorCode.MALFORMED_FRAME, 'the first snapshot chunk does not start at 0');
      if (c.totalBytes > max) throw new FaultError(ErrorCode.FRAME_TOO_LARGE, `snapshot of ${c.totalBytes} bytes exceeds the limit of ${max} bytes (maxSnapshotBytes)`);
      this.snap = Buffer.allocUnsafe(Math.min(c.totalBytes, SNAP_FIRST_BYTES));
      this.snapFill = 0;
      this.snapTotal = c.totalBytes;
    }
    if (c.totalBytes !== this.snapTotal || c.offset !== this.snapFill || c.bytes.length > this.snapTotal - this.snapFill) {
      throw new FaultError(ErrorCode.MALFORMED_FRAME, 'snapshot chunk out of sequence');
    }
    const need = this.snapFill + c.bytes.length;
    if (need > this.snap.length) {
      // doubling while under half the announced size, then the whole size:
      // at most four times what was sent is reserved, and growing holds at
      // most one and a half times the snapshot
      let size = this.snap.length;
      while (size < need) size *= 2;
      if (size * 2 > this.snapTotal) size = this.snapTotal;
      const grown = Buffer.allocUnsafe(size);
      this.snap.copy(grown, 0, 0, this.snapFill);
      this.snap = grown;
    }
    this.snap.set(c.bytes, c.offset);
    this.snapFill = need;
    if (this.snapFill < this.snapTotal) return;
    const m = decodeMessage(this.snap);
    this.snap = undefined;
    this.check(m);
    if (m.type !== 'MsgSnap' || m.snapshot === undefined) {
      throw new FaultError(ErrorCode.MALFORMED_FRAME, `a snapshot stream carried ${m.type}`);
    }
    this.snapDone = true;
    // Acknowledge only what the handler actually got; otherwise the sender reports failure.
    if (this.ctx.deliver(m)) this.socket.write(snapshotAckFrame(true));
    else throw new FaultError(ErrorCode.TRANSPORT_CLOSED, 'snapshot not delivered');
  }
}
