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

/** Binary strings up to this length are converted byte by byte (faster than a Buffer for short keys). */
const SHORT = 48;

/**
 * The bytes of a binary string, in a new `Uint8Array` no other caller
 * holds. Past a few dozen bytes the array is a view into Node's Buffer pool
 * (as `Buffer.from` gives): it may share its `ArrayBuffer` with other
 * arrays, so `.buffer` is not the value alone.
 */
export function fromSkey(skey: string): Uint8Array {
  const n = skey.length;
  if (n <= SHORT) {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = skey.charCodeAt(i);
    return out;
  }
  const b = Buffer.from(skey, 'latin1');
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
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
