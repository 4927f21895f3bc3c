/**
 * Keys as "binary strings": one character per byte (latin1), so that
 * JavaScript string order and equality are byte order and equality. The
 * store indexes keys, attaches leases and matches watchers with them.
 * @module
 */
import type { IndexRangeEnd } from './tree-index.js';

/** The binary string of `key`. */
export function toSkey(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
}

/** The bytes of a binary string (a new array). */
export function fromSkey(skey: string): Uint8Array {
  return new Uint8Array(Buffer.from(skey, 'latin1'));
}

/**
 * The index form of a request's range end: `undefined` (the single key) for
 * none or empty, `''` (to the end) for a single zero byte, else the end.
 */
export function toIndexEnd(rangeEnd: Uint8Array | undefined): IndexRangeEnd {
  if (rangeEnd === undefined || rangeEnd.length === 0) return undefined;
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return '';
  return toSkey(rangeEnd);
}

/** True when `skey` falls in the range `[start, end)` (see {@link toIndexEnd}). */
export function inRange(skey: string, start: string, end: IndexRangeEnd): boolean {
  if (end === undefined) return skey === start;
  return skey >= start && (end === '' || skey < end);
}
