/**
 * etcd's key-range convention, for the checkers (keys as strings). A range is
 * `key` plus an optional `rangeEnd`:
 *
 * - no `rangeEnd`: the single key `key`;
 * - `rangeEnd` = `"\0"`: every key `>= key` (with `key` = `"\0"`: all keys);
 * - otherwise: the half-open interval `[key, rangeEnd)`.
 *
 * Keys are ordered as etcd orders their UTF-8 bytes, which is the order of
 * their Unicode code points ({@link compareKeys}).
 * Source: etcd API reference, `RangeRequest.range_end`.
 * @module
 */

/** A key range in etcd's convention; see the module comment. */
export interface KeyRange {
  /** First key of the range (or the only key). */
  readonly key: string;
  /** End of the range, exclusive; `"\0"` = no upper bound; absent = `key` alone. */
  readonly rangeEnd?: string | undefined;
}

/**
 * Compares two keys by the UTF-8 byte order etcd uses (= code point order).
 * @returns a negative number, 0 or a positive number
 */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
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
 */
export function prefixRangeEnd(prefix: string): string {
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

/** The range of every key that starts with `prefix` (`{ key: prefix, rangeEnd: prefixRangeEnd(prefix) }`; the empty prefix = all keys). */
export function prefixRange(prefix: string): KeyRange {
  return prefix === '' ? { key: '\0', rangeEnd: '\0' } : { key: prefix, rangeEnd: prefixRangeEnd(prefix) };
}

/** True when `key` is inside `range`. */
export function inKeyRange(range: KeyRange, key: string): boolean {
  const end = range.rangeEnd;
  if (end === undefined || end === '') return key === range.key;
  if (compareKeys(key, range.key) < 0) return false;
  return end === '\0' || compareKeys(key, end) < 0;
}

/** A readable rendering of a range: `"a"`, `["a", "b")` or `["a", end)`. */
export function describeKeyRange(range: KeyRange): string {
  const end = range.rangeEnd;
  if (end === undefined || end === '') return JSON.stringify(range.key);
  if (range.key === '\0' && end === '\0') return 'all keys';
  return `[${JSON.stringify(range.key)}, ${end === '\0' ? 'end' : JSON.stringify(end)})`;
}
