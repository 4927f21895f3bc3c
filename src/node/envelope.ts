/**
 * The envelope a node wraps around each proposal, so that the member that
 * proposed it can match the committed entry to the waiting caller:
 * `[0x01][u8 origin length][origin utf-8][f64 sequence][payload]`.
 * An empty entry is a leader's no-op and carries no envelope.
 * @module
 */
import { ErrorCode, FaultError } from '../errors.js';

const VERSION = 0x01;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A decoded envelope. `payload` is a view into the entry data (not a copy). */
export interface Envelope {
  origin: string;
  seq: number;
  payload: Uint8Array;
}

/** Pre-encodes a node id for {@link wrapProposal}; ids are at most 255 UTF-8 bytes. */
export function encodeOrigin(id: string): Uint8Array {
  return encoder.encode(id);
}

/** Wraps `payload` proposed by `origin` with sequence number `seq`. */
export function wrapProposal(origin: Uint8Array, seq: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + origin.length + 8 + payload.length);
  out[0] = VERSION;
  out[1] = origin.length;
  out.set(origin, 2);
  new DataView(out.buffer).setFloat64(2 + origin.length, seq);
  out.set(payload, 2 + origin.length + 8);
  return out;
}

/**
 * Unwraps an entry's data.
 * @throws FaultError `QUORUMKV_CORRUPT_LOG` when the envelope is malformed
 */
export function unwrapProposal(data: Uint8Array): Envelope {
  if (data.length < 10 || data[0] !== VERSION) {
    throw new FaultError(ErrorCode.CORRUPT_LOG, 'entry data is not a proposal envelope');
  }
  const n = data[1]!;
  if (data.length < 2 + n + 8) throw new FaultError(ErrorCode.CORRUPT_LOG, 'proposal envelope is truncated');
  const origin = decoder.decode(data.subarray(2, 2 + n));
  const seq = new DataView(data.buffer, data.byteOffset, data.byteLength).getFloat64(2 + n);
  return { origin, seq, payload: data.subarray(2 + n + 8) };
}
