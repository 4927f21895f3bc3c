/**
 * CRC-32 (IEEE) checksums for stored records and frames, through Node's
 * built-in `zlib.crc32`.
 * @module
 */
import { crc32 as zcrc32 } from 'node:zlib';
import { ErrorCode, FaultError, type ErrorCode as Code } from '../errors.js';

/** CRC-32 (IEEE 802.3) of `data`, optionally continuing from `seed`. */
export function crc32(data: Uint8Array, seed = 0): number {
  return zcrc32(data, seed) >>> 0;
}

/**
 * Prefixes `payload` with its CRC-32 as 4 big-endian bytes.
 * @returns a new buffer `[crc32(payload) u32be][payload]`
 */
export function withCrc(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(payload.length + 4);
  new DataView(out.buffer).setUint32(0, crc32(payload));
  out.set(payload, 4);
  return out;
}

/**
 * Checks and strips the CRC written by {@link withCrc}.
 * @param code - the error code to throw on mismatch (default `QUORUMKV_CORRUPT_LOG`)
 * @throws FaultError with `code` when the record is too short or the CRC differs
 */
export function checkCrc(record: Uint8Array, what: string, code: Code = ErrorCode.CORRUPT_LOG): Uint8Array {
  if (record.length < 4) throw new FaultError(code, `${what}: record too short for its checksum`);
  const want = new DataView(record.buffer, record.byteOffset, record.byteLength).getUint32(0);
  const payload = record.subarray(4);
  const got = crc32(payload);
  if (got !== want) throw new FaultError(code, `${what}: checksum mismatch (stored ${want}, computed ${got})`);
  return payload;
}
