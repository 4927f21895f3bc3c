/**
 * Helpers for keys and range ends (etcd's clientv3 `GetPrefixRangeEnd` and
 * the range-end rules of the module doc of `types.ts`).
 * @module
 */
import type { Bytes } from './types.js';

/**
 * The range end meaning "every key `>= key`": a single zero byte. A request
 * with both `key` and `rangeEnd` equal to it covers every key. Shared: do
 * not modify it.
 */
export const RANGE_END_ALL: Bytes = new Uint8Array([0]);

const encoder = new TextEncoder();

/**
 * Bytes of a key or value given as bytes or as a string (encoded as UTF-8).
 * Bytes are returned as they are (not copied).
 */
export function toBytes(v: string | Uint8Array): Bytes {
  return typeof v === 'string' ? encoder.encode(v) : v;
}

/**
 * The range end that selects every key starting with `prefix`: `prefix` with
 * its last byte below 0xff incremented and the rest dropped. When every byte
 * is 0xff (or `prefix` is empty) no such key exists and the result is
 * {@link RANGE_END_ALL} ("every key `>= prefix`"), as etcd's
 * `GetPrefixRangeEnd`. The result is a new array: `prefix` (a Node `Buffer`
 * too) is never modified.
 */
export function prefixEnd(prefix: string | Uint8Array): Bytes {
  const p = toBytes(prefix);
  for (let i = p.length - 1; i >= 0; i--) {
    if (p[i]! < 0xff) {
      // a copy (a Node Buffer's `slice` would be a view of the caller's key)
      const end = new Uint8Array(p.subarray(0, i + 1));
      end[i] = p[i]! + 1;
      return end;
    }
  }
  return new Uint8Array([0]);
}

/** Byte-wise comparison: negative, 0 or positive as `a` sorts before, equal to or after `b`. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** True when `a` and `b` hold the same bytes. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** True when `rangeEnd` is {@link RANGE_END_ALL} (a single zero byte). */
export function isRangeEndAll(rangeEnd: Uint8Array | undefined): boolean {
  return rangeEnd !== undefined && rangeEnd.length === 1 && rangeEnd[0] === 0;
}
