/**
 * What the connection classes of {@link TcpTransport} (outbound links,
 * snapshot senders, inbound connections) need from the transport that owns
 * them. Internal to the transport layer.
 * @module
 */
import type { Socket } from 'node:net';
import { ErrorCode, FaultError } from '../errors.js';
import type { Message } from '../raftpb/index.js';
import type { HostPort } from './address.js';
import { decodeRefusal, PROTOCOL_VERSION, type Hello } from './frame-bodies.js';
import type { ResolvedTcpOptions } from './tcp-options.js';
import type { SnapshotStatus } from './transport.js';

/** Services a {@link TcpTransport} gives its connections. */
export interface TcpContext {
  readonly options: ResolvedTcpOptions;
  /** Opens a plain or TLS connection to `hp` (writes may start at once; they are buffered). */
  connect(hp: HostPort): Socket;
  /**
   * The handshake of `id` passed every check (cluster id, `to`, not refused;
   * with TLS, a certificate of the cluster's CA): when `id` is not a peer,
   * it becomes a remote answered at `address` (see `TcpTransport`).
   * False once the transport is closed (the connection is then closed).
   */
  admit(id: string, address: HostPort | undefined): boolean;
  /** Where this node is reached, sent in its dialing handshakes (`Hello.address`); undefined before it listens. */
  advertised(): string | undefined;
  /** True when `id` was removed from the cluster (`refusePeer`): its handshakes are refused, saying so. */
  isRefused(id: string): boolean;
  /** Hands a checked message to the handler; false when it was not handed over (closed, or `from` refused as removed). */
  deliver(msg: Message): boolean;
  /** Reports `peer` unreachable, asynchronously (no-op once closed). */
  reportUnreachable(peer: string): void;
  /** Reports that `peer` refused this node as removed from the cluster, asynchronously (no-op once closed). */
  reportRemoved(peer: string): void;
  /** Reports a snapshot outcome, asynchronously (no-op once closed). */
  reportSnapshot(peer: string, status: SnapshotStatus): void;
  /** Logs through the transport's debug namespace. */
  log(format: string, ...args: unknown[]): void;
}

/**
 * A dialer's answer to a `Refused` frame from `peer`, in place of its
 * handshake reply: checked as a reply `Hello` is (protocol version, cluster
 * id, `from`, `to`), reported as `reportRemoved(peer)`, and returned as the
 * error that closes the connection.
 * @throws FaultError `QUORUMKV_MALFORMED_FRAME` for a malformed body,
 *   `QUORUMKV_CLUSTER_ID_MISMATCH` for a refusal that is not from `peer` to this node
 */
export function refusalError(ctx: TcpContext, peer: string, body: Uint8Array): FaultError {
  const r = decodeRefusal(body);
  if (r.version !== PROTOCOL_VERSION || r.clusterId !== ctx.options.clusterId || r.from !== peer || r.to !== ctx.options.id) {
    throw new FaultError(ErrorCode.CLUSTER_ID_MISMATCH, `refusal ${JSON.stringify(r)} does not match`);
  }
  ctx.reportRemoved(peer);
  return new FaultError(ErrorCode.REMOVED, `${peer} refused this node: it was removed from the cluster`);
}

/** Common socket settings: no Nagle delay (frames are already batched per tick), TCP keep-alive. */
export function tuneSocket(socket: Socket): void {
  socket.setNoDelay(true);
  socket.setKeepAlive(true, 10_000);
}

/** A dialer's `h` with `address` set, when there is one. */
export function withAddress(h: Hello, address: string | undefined): Hello {
  if (address !== undefined) h.address = address;
  return h;
}
