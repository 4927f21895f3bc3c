/**
 * Revisions (etcd's `mvcc.revision`, server/mvcc/revision.go): `main` is
 * the store revision of a write (one per put, delete-range or txn that
 * changes something), `sub` the position of a change inside it (0, 1, ...).
 *
 * In the backend every version of every key is stored under its revision,
 * encoded as 17 bytes `main (8 bytes big-endian) '_' sub (8 bytes
 * big-endian)`, plus a trailing `'t'` for a tombstone (a deletion), so that
 * byte order is revision order. Numbers stay below 2^53.
 * @module
 */

/** A revision: `main` store revision and `sub` position within it. */
export interface Revision {
  /** Store revision of the write (a key's `modRevision`/`createRevision` are main revisions); at least 1 for a write, 0 in the zero revision. */
  readonly main: number;
  /** Position of the change within the write `main`, from 0 (a txn's changes are numbered in order). */
  readonly sub: number;
}

/** Length of an encoded revision without the tombstone mark. */
export const REV_BYTES_LEN = 17;
/** Length of an encoded tombstone revision. */
export const MARKED_REV_BYTES_LEN = 18;
const MARK_TOMBSTONE = 0x74; // 't'
const TWO_32 = 2 ** 32;

/** Compares two revisions: negative, 0 or positive. */
export function compareRevision(a: Revision, b: Revision): number {
  return a.main !== b.main ? a.main - b.main : a.sub - b.sub;
}

/** True when `a` is strictly greater than `b`. */
export function revisionGreater(a: Revision, b: Revision): boolean {
  return a.main > b.main || (a.main === b.main && a.sub > b.sub);
}

/** A compact string form `main_sub` used as a map key. */
export function revisionId(r: Revision): string {
  return `${r.main}_${r.sub}`;
}

function writeU64(buf: Uint8Array, off: number, n: number): void {
  const hi = Math.floor(n / TWO_32);
  const lo = n >>> 0;
  buf[off] = hi >>> 24;
  buf[off + 1] = (hi >>> 16) & 0xff;
  buf[off + 2] = (hi >>> 8) & 0xff;
  buf[off + 3] = hi & 0xff;
  buf[off + 4] = lo >>> 24;
  buf[off + 5] = (lo >>> 16) & 0xff;
  buf[off + 6] = (lo >>> 8) & 0xff;
  buf[off + 7] = lo & 0xff;
}

function readU64(buf: Uint8Array, off: number): number {
  const hi = ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
  const lo = ((buf[off + 4]! << 24) | (buf[off + 5]! << 16) | (buf[off + 6]! << 8) | buf[off + 7]!) >>> 0;
  return hi * TWO_32 + lo;
}

/**
 * Encodes a revision as backend key bytes.
 * @param tombstone - append the tombstone mark
 */
export function revToBytes(r: Revision, tombstone = false): Uint8Array {
  const buf = new Uint8Array(tombstone ? MARKED_REV_BYTES_LEN : REV_BYTES_LEN);
  writeU64(buf, 0, r.main);
  buf[8] = 0x5f; // '_'
  writeU64(buf, 9, r.sub);
  if (tombstone) buf[17] = MARK_TOMBSTONE;
  return buf;
}

/** Decodes backend key bytes (with or without the tombstone mark). */
export function bytesToRev(b: Uint8Array): Revision {
  return { main: readU64(b, 0), sub: readU64(b, 9) };
}

/** True when the backend key bytes carry the tombstone mark. */
export function isTombstoneKey(b: Uint8Array): boolean {
  return b.length === MARKED_REV_BYTES_LEN && b[17] === MARK_TOMBSTONE;
}
