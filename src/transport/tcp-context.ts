/**
 * What the connection classes of {@link TcpTransport} (outbound links,
 * snapshot senders, inbound connections) need from the transport that owns
 * them. Internal to the transport layer.
 * @module
 */
import type { Socket } from 'node:net';
import type { Message } from '../raftpb/index.js';
import type { HostPort } from './address.js';
import type { ResolvedTcpOptions } from './tcp-options.js';
import type { SnapshotStatus } from './transport.js';

/** Services a {@link TcpTransport} gives its connections. */
export interface TcpContext {
  readonly options: ResolvedTcpOptions;
  /** Opens a plain or TLS connection to `hp` (writes may start at once; they are buffered). */
  connect(hp: HostPort): Socket;
  /** True when `id` is a current peer. */
  isPeer(id: string): boolean;
  /** True when `id` was removed from the cluster (`refusePeer`): its handshakes are refused, saying so. */
  isRefused(id: string): boolean;
  /** Hands a checked message to the handler; false when it was not handed over (closed, or `from` no longer a peer). */
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

/** Common socket settings: no Nagle delay (frames are already batched per tick), TCP keep-alive. */
export function tuneSocket(socket: Socket): void {
  socket.setNoDelay(true);
  socket.setKeepAlive(true, 10_000);
}
