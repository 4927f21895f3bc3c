/**
 * etcd's key-range convention, for the checkers (keys as strings). A range is
 * `key` plus an optional `rangeEnd`:
 *
 * - no `rangeEnd`: the single key `key`;
 * - `rangeEnd` = `"\0"`: every key `>= key` (with `key` = `"\0"`: all keys);
 * - otherwise: the half-open interval `[key, rangeEnd)`.
 *
 * Keys are ordered as etcd orders their UTF-8 bytes, which is the order of
 * their Unicode code points ({@link compareKeys}). A key that is not UTF-8
 * is written with each byte that is not part of a UTF-8 character as the
 * lone surrogate U+DC80-U+DCFF (Python's `surrogateescape`; no UTF-8 key
 * decodes to a lone surrogate, so two keys never share a string), and is
 * ordered by its bytes ({@link keyFromBytes}).
 * Source: etcd API reference, `RangeRequest.range_end`.
 * @module
 */
import { ErrorCode, UsageError } from '../errors.js';

/** A key range in etcd's convention; see the module comment. */
export interface KeyRange {
  /** First key of the range (or the only key). */
  readonly key: string;
  /** End of the range, exclusive; `"\0"` = no upper bound; absent = `key` alone. */
  readonly rangeEnd?: string | undefined;
}

/** The error for an argument of the wrong type. */
function notA(fn: string, name: string, what: string, got: unknown): UsageError {
  return new UsageError(ErrorCode.INVALID_ARGUMENT, `${fn}: ${name} must be ${what}, got ${got === null ? 'null' : typeof got}`);
}

const isHigh = (c: number): boolean => c >= 0xd800 && c <= 0xdbff;
/** A lone U+DC80-U+DCFF at `i` of `s`: a byte that is not part of a UTF-8 character. */
const isEscape = (s: string, i: number): boolean => {
  const c = s.charCodeAt(i);
  return c >= 0xdc80 && c <= 0xdcff && (i === 0 || !isHigh(s.charCodeAt(i - 1)));
};

/** The bytes a key string stands for: UTF-8, with each escaped byte (see the module comment) as itself. */
function keyBytes(s: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (isEscape(s, i)) {
      out.push(c - 0xdc00);
      continue;
    }
    const d = s.charCodeAt(i + 1);
    if (isHigh(c) && d >= 0xdc00 && d <= 0xdfff) {
      c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
      i++;
    }
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 0x3f));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 0x3f), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
  }
  return out;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The length of the UTF-8 character whose first byte is `lead` (0: no character starts so). */
function charLength(lead: number): number {
  return lead < 0x80 ? 1 : lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0;
}

/**
 * A key's bytes as the checkers' key string: the UTF-8 string when the
 * bytes are UTF-8; otherwise each byte that does not start a whole UTF-8
 * character becomes the lone surrogate U+DC00 + byte (Python's
 * `surrogateescape`). Distinct byte strings give distinct strings, and
 * {@link compareKeys} orders them as etcd orders the bytes.
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `bytes` is not a `Uint8Array`
 */
export function keyFromBytes(bytes: Uint8Array): string {
  if (!(bytes instanceof Uint8Array)) throw notA('keyFromBytes', 'bytes', 'a Uint8Array', bytes);
  try {
    return strictUtf8.decode(bytes);
  } catch {
    // not UTF-8: below
  }
  let out = '';
  let v = 0;
  while (v < bytes.length) {
    const n = charLength(bytes[v]!);
    if (n > 0 && v + n <= bytes.length) {
      try {
        out += strictUtf8.decode(bytes.subarray(v, v + n));
        v += n;
        continue;
      } catch {
        // an invalid sequence: its first byte is escaped
      }
    }
    out += String.fromCharCode(0xdc00 + bytes[v]!);
    v++;
  }
  return out;
}

/**
 * Compares two keys by the UTF-8 byte order etcd uses (= code point order);
 * a key written by {@link keyFromBytes} by its bytes.
 * @returns a negative number, 0 or a positive number
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `a` or `b` is not a string
 */
export function compareKeys(a: string, b: string): number {
  if (typeof a !== 'string' || typeof b !== 'string') throw notA('compareKeys', typeof a !== 'string' ? 'a' : 'b', 'a string', typeof a !== 'string' ? a : b);
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
    // an escaped byte: compare the bytes from here (the strings agree
    // before, and neither splits a surrogate pair here)
    if (isEscape(a, i) || isEscape(b, i)) {
      const x = keyBytes(a.slice(i));
      const y = keyBytes(b.slice(i));
      const m = Math.min(x.length, y.length);
      for (let j = 0; j < m; j++) if (x[j] !== y[j]) return x[j]! - y[j]!;
      return x.length - y.length;
    }
    // Surrogates (0xD800-0xDFFF) encode code points above 0xFFFF, which sort
    // after every BMP character in UTF-8; UTF-16 code units would not.
    const sa = ca >= 0xd800 && ca <= 0xdfff;
    const sb = cb >= 0xd800 && cb <= 0xdfff;
    if (sa !== sb) return sa ? 1 : -1;
    return ca - cb;
  }
  return a.length - b.length;
}

/**
 * The `rangeEnd` that selects every key starting with `prefix` (etcd's
 * `clientv3.GetPrefixRangeEnd`, in the order of {@link compareKeys}): the
 * prefix with its last code point incremented (a last U+10FFFF dropped
 * first), or `"\0"` (to the end) for the empty prefix or one of U+10FFFF
 * only. Code points, not UTF-16 code units: U+1F3FF is `"\uD83C\uDFFF"`,
 * and its low surrogate incremented would give U+E000, which sorts before
 * the prefix; U+FFFF is followed by U+10000, not by the next character.
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `prefix` is not a string
 */
export function prefixRangeEnd(prefix: string): string {
  if (typeof prefix !== 'string') throw notA('prefixRangeEnd', 'prefix', 'a string', prefix);
  const points = Array.from(prefix);
  for (let i = points.length - 1; i >= 0; i--) {
    const c = points[i]!.codePointAt(0)!;
    // U+10FFFF and a lone low surrogate U+DFFF are the largest under compareKeys
    if (c === 0x10ffff || c === 0xdfff) continue;
    // the code points U+D800-U+DFFF are surrogates, which sort above U+FFFF
    const next = c === 0xd7ff ? 0xe000 : c + 1;
    return points.slice(0, i).join('') + String.fromCodePoint(next);
  }
  return '\0';
}

/**
 * The range of every key that starts with `prefix` (`{ key: prefix, rangeEnd: prefixRangeEnd(prefix) }`; the empty prefix = all keys).
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `prefix` is not a string
 */
export function prefixRange(prefix: string): KeyRange {
  if (typeof prefix !== 'string') throw notA('prefixRange', 'prefix', 'a string', prefix);
  return prefix === '' ? { key: '\0', rangeEnd: '\0' } : { key: prefix, rangeEnd: prefixRangeEnd(prefix) };
}

/** Refuses a `range` that is not a {@link KeyRange}: an object with a string `key` and a string or absent `rangeEnd`. */
function checkRange(fn: string, range: KeyRange): void {
  if (typeof range !== 'object' || range === null) throw notA(fn, 'range', 'an object', range);
  if (typeof range.key !== 'string') throw notA(fn, 'range.key', 'a string', range.key);
  if (range.rangeEnd !== undefined && typeof range.rangeEnd !== 'string') throw notA(fn, 'range.rangeEnd', 'a string or undefined', range.rangeEnd);
}

/**
 * True when `key` is inside `range`.
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `range` is not a {@link KeyRange} (not an object, `key` not a string, `rangeEnd` neither a string nor undefined) or `key` is not a string
 */
export function inKeyRange(range: KeyRange, key: string): boolean {
  checkRange('inKeyRange', range);
  if (typeof key !== 'string') throw notA('inKeyRange', 'key', 'a string', key);
  const end = range.rangeEnd;
  if (end === undefined || end === '') return key === range.key;
  if (compareKeys(key, range.key) < 0) return false;
  return end === '\0' || compareKeys(key, end) < 0;
}

/**
 * A readable rendering of a range: `"a"`, `["a", "b")` or `["a", end)`.
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `range` is not a {@link KeyRange} (not an object, `key` not a string, `rangeEnd` neither a string nor undefined)
 */
export function describeKeyRange(range: KeyRange): string {
  checkRange('describeKeyRange', range);
  const end = range.rangeEnd;
  if (end === undefined || end === '') return JSON.stringify(range.key);
  if (range.key === '\0' && end === '\0') return 'all keys';
  return `[${JSON.stringify(range.key)}, ${end === '\0' ? 'end' : JSON.stringify(end)})`;
}
