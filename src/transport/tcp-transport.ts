/**
 * The production {@link Transport}: length-prefixed, checksummed frames over
 * node:net, or node:tls with mutual certificate authentication.
 * @module
 */
import { constants as cryptoConstants } from 'node:crypto';
import net, { type Server, type Socket } from 'node:net';
import tls from 'node:tls';
import createDebug from 'debug';
import { encodeMessage } from '../codec/index.js';
import { ErrorCode, FaultError, UsageError } from '../errors.js';
import { isLocalMessage, type Message } from '../raftpb/index.js';
import { formatAddress, parseAddress, type HostPort } from './address.js';
import { encodeFrame, FrameKind } from './frame.js';
import { StreamKind } from './frame-bodies.js';
import { InboundConnection } from './inbound-connection.js';
import { PeerLink } from './peer-link.js';
import { SnapshotSender } from './snapshot-sender.js';
import type { TcpContext } from './tcp-context.js';
import { resolveTcpOptions, type ResolvedTcpOptions, type TcpTransportOptions } from './tcp-options.js';
import type { SnapshotStatus, Transport, TransportHandler } from './transport.js';

const log = createDebug('quorumkv:transport');

/**
 * Most inbound connections in their handshakes at once (with TLS, the TLS
 * handshake and then this protocol's count alike); past it the oldest one
 * is closed to make room. A peer goes through its handshakes as soon as it
 * is connected, so connections left idle (a client that never sends a TLS
 * ClientHello or never says who it is) are the oldest and go first, and
 * such clients cannot lock peers out.
 */
const MAX_PENDING_HANDSHAKES = 64;

/**
 * Most remotes kept (dialers that are not peers, answered at the address
 * their handshake gives); past it the one that dialed least recently is
 * forgotten, so that connectors this node does not know cannot make it
 * keep ever more.
 */
export const MAX_REMOTES = 64;

/** A connection's addresses and ports, the same on a raw socket and on the TLS socket over it; undefined if unknown. */
function endpoints(s: Socket): string | undefined {
  const { localAddress, localPort, remoteAddress, remotePort } = s;
  if (localAddress === undefined || localPort === undefined || remoteAddress === undefined || remotePort === undefined) return undefined;
  return `${localAddress}|${localPort}|${remoteAddress}|${remotePort}`;
}

/**
 * A {@link Transport} over TCP, optionally TLS with mutual authentication.
 *
 * Wire (see `docs/transport.md`): every connection starts with a handshake
 * frame `{ protocolVersion, clusterId, from, to, stream, address? }` in each
 * direction (`address`, where the dialer listens, in the dialer's only);
 * the acceptor checks the cluster id, that `to` is itself and that `from`
 * is not refused as removed, and otherwise closes the connection (logged
 * under the debug namespace `quorumkv:transport`). A dialer that is not a
 * peer is taken, as etcd's rafthttp takes any member not removed, and kept
 * as a remote that messages are sent to at its handshake's `address` (at
 * most {@link MAX_REMOTES}; `addPeer` makes it a peer, `removePeer` and
 * `refusePeer` forget it). Then frames
 * `[u32 length][u32 crc32][msgpack payload]` follow. A malformed frame (bad
 * CRC, bad msgpack, wrong shape), a length prefix above `maxFrameBytes`
 * (checked before the body is buffered) or a message whose `from` is not the
 * handshake's peer closes that connection and changes nothing else.
 *
 * - One outbound message connection per peer, kept up (dialed when the transport starts or learns the peer, and redialed), with a
 *   bounded FIFO queue (oldest dropped and the peer reported unreachable on
 *   overflow) and reconnection with exponential backoff and jitter. Messages
 *   queued while dialing are sent once the peer's handshake arrives.
 * - Each side of a message stream writes a heartbeat frame when it has
 *   written nothing for `heartbeatMs`, and closes the stream when it has read
 *   nothing for `readTimeoutMs` (etcd's link heartbeat and
 *   `ConnReadTimeout`), so that a stream a silent partition killed is
 *   redialed in seconds, not after TCP's minutes of retransmissions.
 * - Each `MsgSnap` travels on a connection of its own in chunks (so it is not
 *   bound by `maxFrameBytes`), is reassembled by the receiver into one message
 *   before `receive`, and is reported `'finish'` once the receiver
 *   acknowledges it (`'failure'` otherwise). As in etcd's rafthttp it is not
 *   ordered against the other messages to that peer.
 * - Frames of one tick are written with a single `write` per peer.
 * - `close()` destroys every socket, closes the server and clears every timer.
 *
 * @example
 * ```ts
 * const t = new TcpTransport({ id: 'a', clusterId: 'prod-1', listen: { host: '0.0.0.0', port: 2380 },
 *   peers: { b: '10.0.0.2:2380', c: '10.0.0.3:2380' } });
 * await t.start({ receive: (m) => node.step(m), reportUnreachable: (p) => node.reportUnreachable(p),
 *   reportSnapshot: (p, s) => node.reportSnapshot(p, s) });
 * ```
 */
export class TcpTransport implements Transport {
  readonly id: string;
  /** The largest encoded message sent, bytes: `maxFrameBytes` less 2 (see {@link Transport.maxMessageBytes}). */
  readonly maxMessageBytes: number;
  private readonly options: ResolvedTcpOptions;
  private readonly peers: Map<string, HostPort | undefined>;
  /** Ids removed from the cluster ({@link refusePeer}): their handshakes are refused, saying so. */
  private readonly refused = new Set<string>();
  /**
   * Dialers that are not peers, with the address their handshake gave
   * (undefined without one), the one that dialed least recently first:
   * messages to them are sent there (etcd's rafthttp "remotes"). At most
   * {@link MAX_REMOTES}.
   */
  private readonly remotes = new Map<string, HostPort | undefined>();
  private readonly links = new Map<string, PeerLink>();
  private readonly snapshots = new Set<SnapshotSender>();
  private readonly inbound = new Set<InboundConnection>();
  private readonly rawSockets = new Set<Socket>();
  /**
   * Accepted connections not through their handshakes yet, oldest first,
   * each with what closes it: with TLS, raw sockets in their TLS handshake,
   * then each {@link InboundConnection} until its handshake is accepted. At
   * most {@link MAX_PENDING_HANDSHAKES}.
   */
  private readonly handshaking = new Map<Socket | InboundConnection, (why: string) => void>();
  /** With TLS, the raw sockets in `handshaking` by their {@link endpoints}: found again when their TLS handshake is done. */
  private readonly tlsHandshaking = new Map<string, Socket>();
  private readonly ctx: TcpContext;
  private server: Server | undefined;
  private handler: TransportHandler | undefined;
  private state: 'new' | 'starting' | 'started' | 'closed' = 'new';
  private bound: { host: string; port: number } | undefined;

  /**
   * Validates the options; nothing is opened until {@link start}.
   * @throws UsageError `QUORUMKV_INVALID_CONFIG` on invalid options (see
   *   {@link TcpTransportOptions}), and on an option of another name
   */
  constructor(options: TcpTransportOptions) {
    this.options = resolveTcpOptions(options);
    this.id = this.options.id;
    this.maxMessageBytes = this.options.maxFrameBytes - 2;
    this.peers = this.options.peers;
    this.ctx = {
      options: this.options,
      connect: (hp) => this.connect(hp),
      admit: (id, address) => this.admit(id, address),
      advertised: () => (this.bound === undefined ? undefined : formatAddress(this.options.listen.host, this.bound.port)),
      isRefused: (id) => this.refused.has(id) && this.state !== 'closed',
      deliver: (m) => this.deliver(m),
      reportUnreachable: (peer) => this.report((h) => h.reportUnreachable(peer)),
      reportRemoved: (peer) => this.report((h) => h.reportRemoved?.(peer)),
      reportSnapshot: (peer, status) => this.report((h) => h.reportSnapshot(peer, status)),
      log: (format, ...args) => log(format, ...args),
    };
  }

  /**
   * Listens on `listen.host:listen.port` and starts accepting peers.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when already started
   * @throws UsageError `QUORUMKV_TRANSPORT_CLOSED` when closed
   * @throws FaultError `QUORUMKV_LISTEN_FAILED` when the address cannot be bound (the cause is attached)
   */
  async start(handler: TransportHandler): Promise<void> {
    if (this.state === 'closed') throw new UsageError(ErrorCode.TRANSPORT_CLOSED, `transport ${this.id} is closed`);
    if (this.state !== 'new') throw new UsageError(ErrorCode.INVALID_ARGUMENT, `transport ${this.id} is already started`);
    this.state = 'starting';
    const { tls: tlsOptions, listen, dialTimeoutMs } = this.options;
    const onSecure = (socket: Socket): void => {
      if (tlsOptions) {
        // a peer has no use for a TLS 1.2 renegotiation (etcd's Go peers
        // never renegotiate): each is a full handshake, and Node only reports
        // the fourth in ten minutes, on a socket it leaves open. With this,
        // the first one errors the socket, and InboundConnection closes it.
        (socket as tls.TLSSocket).disableRenegotiation();
        this.tlsDone(socket);
      }
      this.accept(socket);
    };
    const server = tlsOptions
      ? tls.createServer(
          { key: tlsOptions.key, cert: tlsOptions.cert, ca: tlsOptions.ca, requestCert: true, rejectUnauthorized: true, handshakeTimeout: dialTimeoutMs },
          onSecure,
        )
      : net.createServer(onSecure);
    server.on('connection', (raw: Socket) => {
      if (this.state === 'closed') {
        raw.destroy();
        return;
      }
      this.rawSockets.add(raw);
      const key = tlsOptions ? endpoints(raw) : undefined;
      raw.on('close', () => {
        this.rawSockets.delete(raw);
        this.handshaking.delete(raw);
        if (key !== undefined && this.tlsHandshaking.get(key) === raw) this.tlsHandshaking.delete(key);
      });
      raw.on('error', (err) => log('%s: connection from %s: %s', this.id, raw.remoteAddress, err.message));
      if (!tlsOptions) return; // accept() has counted it
      // in its TLS handshake (up to dialTimeoutMs): counted as well, or
      // clients that never send a ClientHello would pile up
      this.makeRoom();
      this.handshaking.set(raw, (why) => {
        log('%s: connection from %s closed in its TLS handshake: %s', this.id, raw.remoteAddress, why);
        raw.destroy();
      });
      if (key !== undefined) this.tlsHandshaking.set(key, raw);
    });
    if (tlsOptions) {
      server.on('tlsClientError', (err, socket) => {
        // a client certificate that does not verify (expired, another CA)
        // ends the connection without an error of its own: Node reports a
        // "socket hang up" and keeps the reason in authorizationError
        const why = socket.authorizationError === undefined ? '' : ` (client certificate refused: ${String(socket.authorizationError)})`;
        log('%s: TLS handshake with %s failed: %s%s', this.id, socket.remoteAddress ?? 'a client', err.message, why);
        socket.destroy();
      });
    }
    this.server = server;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(listen.port, listen.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      this.server = undefined;
      // startable again, unless close() ran meanwhile
      if (this.state === 'starting') this.state = 'new';
      throw new FaultError(ErrorCode.LISTEN_FAILED, `cannot listen on ${listen.host}:${listen.port}: ${(err as Error).message}`, { cause: err });
    }
    server.on('error', (err) => log('%s: server error: %s', this.id, err.message));
    const a = server.address();
    if (a !== null && typeof a === 'object') this.bound = { host: a.address, port: a.port };
    if (this.state !== 'starting') {
      // close() ran while listening started.
      server.close();
      throw new UsageError(ErrorCode.TRANSPORT_CLOSED, `transport ${this.id} was closed while starting`);
    }
    this.handler = handler;
    this.state = 'started';
    log('%s: listening on %s:%d%s', this.id, this.bound?.host, this.bound?.port, tlsOptions ? ' (TLS)' : '');
    for (const id of this.peers.keys()) this.dialPeer(id);
  }

  /**
   * Keeps a stream to `id` from now on, when it has an address (see
   * `PeerLink.connect`): a member removed from the cluster learns it from
   * the first peer that refuses it, even when it has nothing to send (a
   * learner without a leader), as an etcd member does from rafthttp's
   * streams.
   */
  private dialPeer(id: string): void {
    if (this.state !== 'started' || this.links.has(id)) return;
    const address = this.peers.get(id);
    if (address === undefined) return;
    const link = new PeerLink(this.ctx, id, address);
    this.links.set(id, link);
    link.connect();
  }

  /**
   * The address the server is bound to (the actual port when `listen.port` was 0).
   * @throws UsageError `QUORUMKV_TRANSPORT_NOT_STARTED` before `start()` resolved
   */
  address(): { host: string; port: number } {
    if (this.bound === undefined) throw new UsageError(ErrorCode.TRANSPORT_NOT_STARTED, `transport ${this.id} is not started`);
    return { ...this.bound };
  }

  /**
   * Queues `messages` on their peers' streams (a `MsgSnap` starts its own
   * snapshot stream); see {@link Transport.send}. Unknown peers, peers without
   * an address and messages above `maxFrameBytes` are reported unreachable.
   * @throws UsageError `QUORUMKV_TRANSPORT_NOT_STARTED` before `start()`
   */
  send(messages: Message[]): void {
    if (this.state === 'closed') return;
    if (this.state !== 'started') throw new UsageError(ErrorCode.TRANSPORT_NOT_STARTED, `transport ${this.id} is not started`);
    for (const m of messages) {
      if (isLocalMessage(m.type) || m.from !== this.id) {
        log('%s: not sending %s from %s to %s (local type or foreign from)', this.id, m.type, m.from, m.to);
        continue;
      }
      const address = this.peers.get(m.to) ?? this.remotes.get(m.to);
      if (address === undefined) {
        log('%s: %s to %s, an unknown peer or one without an address', this.id, m.type, m.to);
        this.unreachable(m);
        continue;
      }
      if (m.type === 'MsgSnap') {
        const s = new SnapshotSender(this.ctx, m.to, address, m, (done) => this.snapshots.delete(done));
        this.snapshots.add(s);
        continue;
      }
      const body = encodeMessage(m);
      if (body.length > this.maxMessageBytes) {
        log('%s: %s to %s encodes to %d bytes, above maxFrameBytes; dropped', this.id, m.type, m.to, body.length);
        this.unreachable(m);
        continue;
      }
      let link = this.links.get(m.to);
      if (link === undefined) {
        link = new PeerLink(this.ctx, m.to, address);
        this.links.set(m.to, link);
      }
      link.enqueue(encodeFrame(FrameKind.Message, body));
    }
  }

  /**
   * Adds or updates a peer; see {@link Transport.addPeer}. Without `address`
   * a known peer keeps its address, and a new peer may connect to us but sends
   * to it are reported unreachable until an address is given. A new address
   * closes the current outbound stream. Once started, the transport keeps a
   * stream to every peer with an address, with or without something to send
   * (dialed when it starts or learns the peer, redialed with backoff), as
   * etcd's rafthttp keeps its streams: a peer that refuses this node as
   * removed says so on the next dial.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an empty id or a malformed address
   */
  addPeer(id: string, address?: string): void {
    if (typeof id !== 'string' || id === '') throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'peer id must be a non-empty string');
    const hp = address === undefined ? undefined : parseAddress(address);
    if (id === this.id || this.state === 'closed') return;
    if (this.remotes.has(id)) {
      // a remote becomes a peer: without an address, it keeps the one its
      // handshake gave; at that address, its stream is kept, and kept up
      const remote = this.remotes.get(id);
      this.remotes.delete(id);
      const address = hp ?? remote;
      this.peers.set(id, address);
      const link = this.links.get(id);
      if (link !== undefined && address !== undefined && sameAddress(link.address, address)) {
        if (this.state === 'started') link.connect();
        return;
      }
      if (this.links.get(id)?.close() === true) this.ctx.reportUnreachable(id);
      this.links.delete(id);
      this.dialPeer(id);
      return;
    }
    // no address: make the peer known, keeping any address it already has
    if (hp === undefined && this.peers.has(id)) return;
    const old = this.peers.get(id);
    if (this.peers.has(id) && old?.host === hp?.host && old?.port === hp?.port) return;
    this.peers.set(id, hp);
    // messages queued for the old address are dropped: reported, as any drop is
    if (this.links.get(id)?.close() === true) this.ctx.reportUnreachable(id);
    this.links.delete(id);
    this.dialPeer(id);
  }

  /**
   * Forgets a peer: drops its queue, closes its outbound and inbound streams,
   * fails its snapshot transfers (`reportSnapshot(id, 'failure')`); see
   * {@link Transport.removePeer}. A remote forgotten past
   * {@link MAX_REMOTES} is no longer known, but the streams it opened
   * before may still be: they are closed as well.
   */
  removePeer(id: string): void {
    this.peers.delete(id);
    this.remotes.delete(id);
    this.links.get(id)?.close();
    this.links.delete(id);
    for (const s of [...this.snapshots]) if (s.peer === id) s.cancel(true);
    for (const c of [...this.inbound]) if (c.peer === id) c.close('peer removed');
  }

  /**
   * Forgets a peer as {@link removePeer} does, and answers its later
   * handshakes with a refusal saying it was removed from the cluster, on
   * which its transport reports `reportRemoved`; see
   * {@link Transport.refusePeer}.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an empty id
   */
  refusePeer(id: string): void {
    if (typeof id !== 'string' || id === '') throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'peer id must be a non-empty string');
    if (id === this.id || this.state === 'closed') return;
    this.refused.add(id);
    this.removePeer(id);
  }

  /**
   * Destroys every socket, closes the server, clears every timer; queued
   * messages and snapshot transfers are dropped without reports. Idempotent.
   */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.handler = undefined;
    for (const l of this.links.values()) l.close();
    this.links.clear();
    this.remotes.clear();
    for (const s of [...this.snapshots]) s.cancel(false);
    this.snapshots.clear();
    for (const c of [...this.inbound]) c.close('transport closed');
    this.inbound.clear();
    for (const raw of this.rawSockets) raw.destroy();
    this.rawSockets.clear();
    this.handshaking.clear();
    this.tlsHandshaking.clear();
    const server = this.server;
    this.server = undefined;
    if (server !== undefined && server.listening) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    log('%s: closed', this.id);
  }

  private connect(hp: HostPort): Socket {
    const { tls: tlsOptions } = this.options;
    if (!tlsOptions) return net.connect({ host: hp.host, port: hp.port });
    return tls.connect({
      host: hp.host,
      port: hp.port,
      key: tlsOptions.key,
      cert: tlsOptions.cert,
      ca: tlsOptions.ca,
      rejectUnauthorized: true,
      // a server asking for a TLS 1.2 renegotiation is refused, as a Go
      // client (etcd's peers) refuses it: OpenSSL answers its HelloRequest
      // with a no_renegotiation alert, and the connection fails. Node's
      // client would otherwise go through every one, each a full handshake
      // (socket.disableRenegotiation() only acts on the server side).
      secureOptions: cryptoConstants.SSL_OP_NO_RENEGOTIATION,
      ...(net.isIP(hp.host) === 0 ? { servername: hp.host } : {}),
    });
  }

  private accept(socket: Socket): void {
    if (this.state === 'closed') {
      socket.destroy();
      return;
    }
    this.makeRoom();
    const conn = new InboundConnection(this.ctx, socket, {
      accepted: (c) => {
        // A peer redialed: the newest stream of each kind wins (the old one
        // is dead or dying; a leader sends one snapshot at a time, and each
        // snapshot stream holds a buffer of up to maxSnapshotBytes).
        for (const other of this.inbound) {
          if (other !== c && other.peer === c.peer && other.stream === c.stream) other.close('replaced by a newer stream');
        }
        // the peer is up: a stream to it waiting out a backoff dials now
        if (c.stream === StreamKind.Messages && c.peer !== undefined) this.links.get(c.peer)?.peerUp();
        this.handshaking.delete(c);
      },
      closed: (c) => {
        this.inbound.delete(c);
        this.handshaking.delete(c);
      },
    });
    this.inbound.add(conn);
    this.handshaking.set(conn, (why) => conn.close(why));
  }

  /**
   * With TLS, `socket`'s TLS handshake is done: its raw socket leaves
   * `handshaking`, where its {@link InboundConnection} takes the newest place.
   */
  private tlsDone(socket: Socket): void {
    const key = endpoints(socket);
    const raw = key === undefined ? undefined : this.tlsHandshaking.get(key);
    if (key === undefined || raw === undefined) {
      // its addresses were unknown when it connected (it was already reset):
      // its place is freed when it closes
      log('%s: TLS connection from %s not found among those in their TLS handshake', this.id, socket.remoteAddress);
      return;
    }
    this.tlsHandshaking.delete(key);
    this.handshaking.delete(raw);
  }

  /**
   * Closes the oldest connections in their handshakes while there are
   * {@link MAX_PENDING_HANDSHAKES}: each may wait up to dialTimeoutMs (in
   * each handshake), and connections that never go through them must not
   * pile up, nor keep peers out.
   */
  private makeRoom(): void {
    while (this.handshaking.size >= MAX_PENDING_HANDSHAKES) {
      const pending = this.handshaking.size;
      const [oldest, close] = this.handshaking.entries().next().value as [Socket | InboundConnection, (why: string) => void];
      this.handshaking.delete(oldest);
      close(`${pending} connections are in their handshake: the oldest makes room`);
    }
  }

  /**
   * A dialer passed its handshake: when it is not a peer, it becomes the
   * most recent remote, answered at `address` (a new address closes the
   * stream to the old one); past {@link MAX_REMOTES} the oldest is
   * forgotten (its queued messages dropped, reported unreachable; its
   * inbound streams stay open until they close).
   * @returns false once closed
   */
  private admit(id: string, address: HostPort | undefined): boolean {
    if (this.state === 'closed') return false;
    if (this.peers.has(id)) return true;
    const old = this.remotes.get(id);
    const known = this.remotes.delete(id);
    this.remotes.set(id, address);
    if (known && !(old === undefined ? address === undefined : address !== undefined && sameAddress(old, address))) this.dropLink(id);
    if (!known) log('%s: %s, not a peer, dialed in: answered at %s', this.id, id, address === undefined ? 'no address' : formatAddress(address.host, address.port));
    while (this.remotes.size > MAX_REMOTES) {
      const oldest = this.remotes.keys().next().value as string;
      this.remotes.delete(oldest);
      this.dropLink(oldest);
      log('%s: forgot remote %s (more than %d dialers that are not peers)', this.id, oldest, MAX_REMOTES);
    }
    return true;
  }

  /** Closes the outbound stream to `id`, reporting it unreachable if messages were queued on it. */
  private dropLink(id: string): void {
    if (this.links.get(id)?.close() === true) this.ctx.reportUnreachable(id);
    this.links.delete(id);
  }

  private deliver(m: Message): boolean {
    const h = this.handler;
    if (h === undefined || this.refused.has(m.from)) return false;
    try {
      h.receive(m);
    } catch (err) {
      log('%s: handler.receive threw: %O', this.id, err);
    }
    return true;
  }

  private report(fn: (h: TransportHandler) => void): void {
    queueMicrotask(() => {
      const h = this.handler;
      if (h === undefined) return;
      try {
        fn(h);
      } catch (err) {
        log('%s: handler report threw: %O', this.id, err);
      }
    });
  }

  private unreachable(m: Message): void {
    const to = m.to;
    this.ctx.reportUnreachable(to);
    if (m.type === 'MsgSnap') this.ctx.reportSnapshot(to, 'failure' satisfies SnapshotStatus);
  }
}

function sameAddress(a: HostPort, b: HostPort): boolean {
  return a.host === b.host && a.port === b.port;
}
