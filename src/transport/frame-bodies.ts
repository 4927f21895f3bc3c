/**
 * Bodies of the control frames of {@link TcpTransport}: the handshake and the
 * snapshot stream. Each decoder checks the exact shape and throws
 * `FaultError` `QUORUMKV_MALFORMED_FRAME` on anything else.
 * @module
 */
import { pack, unpack } from '../codec/index.js';
import { ErrorCode, FaultError } from '../errors.js';
import { parseAddress } from './address.js';
import { encodeFrame, FrameKind } from './frame.js';

/**
 * Version of the frame protocol; a peer announcing another one is refused.
 * Version 2 added the `Heartbeat` frame and the read timeout of message
 * streams. Version 3 marks a change of what the log may hold: a leader may
 * append, in place of a membership change it refuses, an entry carrying the
 * refusal, which members of version 2 cannot apply (they would stop on it).
 * Version 4 marks another: a leader proposes the revoke of an expired lease
 * as a lease-expiry entry, which members of version 3 cannot apply.
 */
export const PROTOCOL_VERSION = 4;

/** What a connection carries after its handshake. */
export const StreamKind = {
  /** Raft messages, one frame each, in order. */
  Messages: 0,
  /** One `MsgSnap`, in chunks, acknowledged by the receiver. */
  Snapshot: 1,
} as const;

/** One of {@link StreamKind}. */
export type StreamKind = (typeof StreamKind)[keyof typeof StreamKind];

/**
 * The handshake: the first frame in each direction. The dialer sends
 * `{from: itself, to: the peer it wants, address: where it listens}`; the
 * acceptor answers with the reverse (without `address`) once it has
 * checked `clusterId`, `to` and `from`.
 */
export interface Hello {
  /** The sender's {@link PROTOCOL_VERSION}; the acceptor refuses any other. */
  version: number;
  /** The sender's cluster id; the acceptor refuses another (`QUORUMKV_CLUSTER_ID_MISMATCH`). */
  clusterId: string;
  /** Id of the sending node (the dialer, in the request). */
  from: string;
  /** Id of the node the sender means to reach; the acceptor refuses a handshake not for it (`QUORUMKV_UNKNOWN_PEER`). */
  to: string;
  /** What the connection carries: Raft messages or one snapshot. */
  stream: StreamKind;
  /**
   * Optional: where the sender can be reached, `"host:port"` (its listen
   * address and port). An acceptor that does not know the dialer as a peer
   * sends its answers there (etcd's rafthttp reads the sender's peer URLs
   * from the request for the same purpose). A handshake without it is
   * accepted: its dialer can send, and is answered only if it is a peer.
   */
  address?: string;
}

function malformed(what: string): never {
  throw new FaultError(ErrorCode.MALFORMED_FRAME, `malformed ${what}`);
}

/** The handshake frame for `h`. */
export function helloFrame(h: Hello): Buffer {
  const body: unknown[] = [h.version, h.clusterId, h.from, h.to, h.stream];
  if (h.address !== undefined) body.push(h.address);
  return encodeFrame(FrameKind.Hello, pack(body));
}

/**
 * Decodes a handshake body: five fields, or six with the sender's address
 * (which must be a well-formed `"host:port"`).
 * @throws FaultError `QUORUMKV_MALFORMED_FRAME`
 */
export function decodeHello(body: Uint8Array): Hello {
  const t = unpack(body);
  if (!Array.isArray(t) || (t.length !== 5 && t.length !== 6)) malformed('handshake');
  const [version, clusterId, from, to, stream, address] = t as unknown[];
  if (!Number.isSafeInteger(version)) malformed('handshake version');
  if (typeof clusterId !== 'string' || typeof from !== 'string' || typeof to !== 'string') malformed('handshake ids');
  if (stream !== StreamKind.Messages && stream !== StreamKind.Snapshot) malformed('handshake stream kind');
  const h: Hello = { version: version as number, clusterId, from, to, stream };
  if (t.length === 6) {
    if (typeof address !== 'string') malformed('handshake address');
    try {
      parseAddress(address);
    } catch {
      malformed('handshake address');
    }
    h.address = address;
  }
  return h;
}

/**
 * The acceptor's refusal of a dialer removed from the cluster, sent instead
 * of the handshake's answer (etcd's rafthttp answers such a member with
 * `410 Gone`).
 */
export interface Refusal {
  version: number;
  clusterId: string;
  /** The acceptor. */
  from: string;
  /** The refused dialer. */
  to: string;
  reason: 'removed';
}

/** The refusal frame for `r`. */
export function refusedFrame(r: Refusal): Buffer {
  return encodeFrame(FrameKind.Refused, pack([r.version, r.clusterId, r.from, r.to, r.reason]));
}

/**
 * Decodes a refusal body.
 * @throws FaultError `QUORUMKV_MALFORMED_FRAME`
 */
export function decodeRefusal(body: Uint8Array): Refusal {
  const t = unpack(body);
  if (!Array.isArray(t) || t.length !== 5) malformed('refusal');
  const [version, clusterId, from, to, reason] = t as unknown[];
  if (!Number.isSafeInteger(version)) malformed('refusal version');
  if (typeof clusterId !== 'string' || typeof from !== 'string' || typeof to !== 'string') malformed('refusal ids');
  if (reason !== 'removed') malformed('refusal reason');
  return { version: version as number, clusterId, from, to, reason };
}

/** A piece of an encoded `MsgSnap`: bytes `[offset, offset + bytes.length)` of `totalBytes`. */
export interface SnapshotChunk {
  totalBytes: number;
  offset: number;
  bytes: Uint8Array;
}

/** The frame of one snapshot chunk. */
export function snapshotChunkFrame(c: SnapshotChunk): Buffer {
  return encodeFrame(FrameKind.SnapshotChunk, pack([c.totalBytes, c.offset, c.bytes]));
}

/**
 * Decodes a snapshot chunk body.
 * @throws FaultError `QUORUMKV_MALFORMED_FRAME`
 */
export function decodeSnapshotChunk(body: Uint8Array): SnapshotChunk {
  const t = unpack(body);
  if (!Array.isArray(t) || t.length !== 3) malformed('snapshot chunk');
  const [totalBytes, offset, bytes] = t as unknown[];
  if (!Number.isSafeInteger(totalBytes) || !Number.isSafeInteger(offset) || !(bytes instanceof Uint8Array)) {
    malformed('snapshot chunk');
  }
  const total = totalBytes as number;
  const off = offset as number;
  if (off < 0 || total <= 0 || off + bytes.length > total || bytes.length === 0) malformed('snapshot chunk bounds');
  return { totalBytes: total, offset: off, bytes };
}

/** The acknowledgement frame of a received snapshot. */
export function snapshotAckFrame(ok: boolean): Buffer {
  return encodeFrame(FrameKind.SnapshotAck, pack([ok]));
}

/**
 * Decodes a snapshot acknowledgement body.
 * @throws FaultError `QUORUMKV_MALFORMED_FRAME`
 */
export function decodeSnapshotAck(body: Uint8Array): boolean {
  const t = unpack(body);
  if (!Array.isArray(t) || t.length !== 1 || typeof t[0] !== 'boolean') malformed('snapshot ack');
  return t[0] as boolean;
}

/** The link heartbeat frame (one shared buffer: it is never changed). */
export const HEARTBEAT_FRAME: Buffer = encodeFrame(FrameKind.Heartbeat, pack([]));

/**
 * Checks a heartbeat's body: an empty array.
 * @throws FaultError `QUORUMKV_MALFORMED_FRAME` on anything else
 */
export function checkHeartbeat(body: Uint8Array): void {
  const t = unpack(body);
  if (!Array.isArray(t) || t.length !== 0) malformed('heartbeat');
}
