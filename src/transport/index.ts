/**
 * The transport layer: the {@link Transport} interface the node layer drives,
 * the in-process {@link MemoryNetwork} with seeded faults, and
 * {@link TcpTransport} over node:net / node:tls.
 * @module
 */
export type { SnapshotStatus, Transport, TransportHandler } from './transport.js';
export { realTimeScheduler, type Scheduler } from './scheduler.js';
export {
  MemoryNetwork,
  type DelayRange,
  type DropReason,
  type Link,
  type MemoryNetworkOptions,
  type NetworkEvent,
  type NetworkStats,
} from './memory-network.js';
export { TcpTransport } from './tcp-transport.js';
export {
  DEFAULT_MAX_FRAME_BYTES,
  type BackoffOptions,
  type TcpTlsOptions,
  type TcpTransportOptions,
  checkTlsOptions,
} from './tcp-options.js';
export { parseAddress, formatAddress, type HostPort } from './address.js';
export { FRAME_HEADER_BYTES, FrameDecoder, FrameKind, encodeFrame, type FrameSink } from './frame.js';
export { PROTOCOL_VERSION, StreamKind, type Hello } from './frame-bodies.js';
