/**
 * The frame format of {@link TcpTransport}:
 *
 * ```
 * [u32 length][u32 crc32][payload: `length` bytes]      (big-endian)
 * payload = msgpack array [kind, body]
 * ```
 *
 * `length` counts the payload only; `crc32` is CRC-32 (IEEE) of the payload.
 * `kind` is one of {@link FrameKind}. For `Message` frames the body is exactly
 * the codec's `encodeMessage` output, so a payload is the two bytes
 * `0x92 <kind>` followed by the body; the other bodies are msgpack arrays too
 * (see `docs/transport.md`).
 * @module
 */
import { crc32 } from '../codec/index.js';
import { ErrorCode, FaultError } from '../errors.js';

/** Kinds of frames. */
export const FrameKind = {
  /** Handshake, both directions: `[protocolVersion, clusterId, from, to, stream]`. */
  Hello: 1,
  /** One Raft message: the codec's `encodeMessage` tuple. */
  Message: 2,
  /** A piece of an encoded `MsgSnap`: `[totalBytes, offset, bytes]`. */
  SnapshotChunk: 3,
  /** The receiver took the whole snapshot: `[ok]`. */
  SnapshotAck: 4,
  /**
   * The acceptor's answer, instead of a `Hello`, to a dialer it refuses
   * because it was removed from the cluster:
   * `[protocolVersion, clusterId, from, to, reason]`, reason `'removed'`.
   */
  Refused: 5,
  /**
   * Sent by either side of a message stream that has written nothing for
   * `heartbeatMs`, so that the other side's read timeout tells a quiet
   * stream from a dead one (etcd's rafthttp link heartbeat): `[]`.
   */
  Heartbeat: 6,
} as const;

/** One of {@link FrameKind}. */
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

/** Bytes before the payload: length and CRC. */
export const FRAME_HEADER_BYTES = 8;

/** Bytes of a payload before its body: the msgpack fixarray(2) marker and the kind. */
const PAYLOAD_PREFIX_BYTES = 2;
const FIXARRAY_2 = 0x92;
const MAX_KIND = FrameKind.Heartbeat;

/**
 * Builds one frame around `body` (msgpack bytes).
 * @returns `[u32 length][u32 crc32][0x92][kind][body]`
 */
export function encodeFrame(kind: FrameKind, body: Uint8Array): Buffer {
  const payloadLen = PAYLOAD_PREFIX_BYTES + body.length;
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payloadLen);
  out[8] = FIXARRAY_2;
  out[9] = kind;
  out.set(body, FRAME_HEADER_BYTES + PAYLOAD_PREFIX_BYTES);
  out.writeUInt32BE(payloadLen, 0);
  out.writeUInt32BE(crc32(out.subarray(FRAME_HEADER_BYTES)), 4);
  return out;
}

/** Called for each complete, checked frame; may throw to stop decoding. */
export type FrameSink = (kind: FrameKind, body: Uint8Array) => void;

/**
 * Incremental decoder of a byte stream into frames. The length prefix is
 * checked against `maxFrameBytes` as soon as the 8-byte header is complete,
 * before any of the body is buffered. Each delivered body is a private copy
 * (it does not keep the socket's chunk alive).
 */
export class FrameDecoder {
  private maxFrameBytes: number;
  /** Where the limit comes from, for the error of a frame above it. */
  private limitSource: string | undefined;
  private readonly header = Buffer.alloc(FRAME_HEADER_BYTES);
  private headerFill = 0;
  private payload: Buffer | undefined;
  private payloadFill = 0;
  private expectedCrc = 0;

  /**
   * @param maxFrameBytes - the largest accepted payload length, in bytes
   * @param limitSource - where the limit comes from, added to the error of a frame above it
   */
  constructor(maxFrameBytes: number, limitSource?: string) {
    this.maxFrameBytes = maxFrameBytes;
    this.limitSource = limitSource;
  }

  /**
   * Changes the largest accepted payload length for the frames whose header
   * is not read yet (an inbound connection raises it once the peer's
   * handshake is accepted).
   * @param limitSource - where the limit comes from, added to the error of a frame above it
   */
  setMaxFrameBytes(maxFrameBytes: number, limitSource?: string): void {
    this.maxFrameBytes = maxFrameBytes;
    this.limitSource = limitSource;
  }

  /** True when no partial frame is buffered. */
  get idle(): boolean {
    return this.headerFill === 0 && this.payload === undefined;
  }

  /**
   * Consumes `chunk`, calling `sink` for every frame it completes, in order.
   * @throws FaultError `QUORUMKV_FRAME_TOO_LARGE` when a length prefix exceeds the limit
   * @throws FaultError `QUORUMKV_MALFORMED_FRAME` on a CRC mismatch or a bad payload prefix
   * (and whatever `sink` throws). After a throw the decoder must be discarded.
   */
  push(chunk: Uint8Array, sink: FrameSink): void {
    let pos = 0;
    const n = chunk.length;
    while (pos < n) {
      if (this.payload === undefined) {
        // Fast path: a whole frame inside the chunk, header not split.
        if (this.headerFill === 0 && n - pos >= FRAME_HEADER_BYTES) {
          const view = new DataView(chunk.buffer, chunk.byteOffset + pos, FRAME_HEADER_BYTES);
          const len = view.getUint32(0);
          const crc = view.getUint32(4);
          this.checkLength(len);
          pos += FRAME_HEADER_BYTES;
          if (n - pos >= len) {
            const payload = Buffer.from(chunk.subarray(pos, pos + len)); // a copy
            pos += len;
            this.emit(payload, crc, sink);
          } else {
            this.startPayload(len, crc);
          }
          continue;
        }
        const take = Math.min(FRAME_HEADER_BYTES - this.headerFill, n - pos);
        this.header.set(chunk.subarray(pos, pos + take), this.headerFill);
        this.headerFill += take;
        pos += take;
        if (this.headerFill < FRAME_HEADER_BYTES) return;
        const len = this.header.readUInt32BE(0);
        const crc = this.header.readUInt32BE(4);
        this.headerFill = 0;
        this.checkLength(len);
        this.startPayload(len, crc);
        continue;
      }
      const take = Math.min(this.payload.length - this.payloadFill, n - pos);
      this.payload.set(chunk.subarray(pos, pos + take), this.payloadFill);
      this.payloadFill += take;
      pos += take;
      if (this.payloadFill === this.payload.length) {
        const payload = this.payload;
        this.payload = undefined;
        this.payloadFill = 0;
        this.emit(payload, this.expectedCrc, sink);
      }
    }
  }

  private checkLength(len: number): void {
    if (len > this.maxFrameBytes) {
      const source = this.limitSource === undefined ? '' : ` (${this.limitSource})`;
      throw new FaultError(ErrorCode.FRAME_TOO_LARGE, `frame of ${len} bytes exceeds the limit of ${this.maxFrameBytes} bytes${source}`);
    }
    if (len < PAYLOAD_PREFIX_BYTES) {
      throw new FaultError(ErrorCode.MALFORMED_FRAME, `frame of ${len} bytes is too short`);
    }
  }

  private startPayload(len: number, crc: number): void {
    this.payload = Buffer.allocUnsafe(len);
    this.payloadFill = 0;
    this.expectedCrc = crc;
  }

  private emit(payload: Buffer, crc: number, sink: FrameSink): void {
    const got = crc32(payload);
    if (got !== crc) {
      throw new FaultError(ErrorCode.MALFORMED_FRAME, `frame checksum mismatch (header ${crc}, computed ${got})`);
    }
    const kind = payload[1]!;
    if (payload[0] !== FIXARRAY_2 || kind < FrameKind.Hello || kind > MAX_KIND) {
      throw new FaultError(ErrorCode.MALFORMED_FRAME, 'frame payload is not [kind, body]');
    }
    sink(kind as FrameKind, payload.subarray(PAYLOAD_PREFIX_BYTES));
  }
}
