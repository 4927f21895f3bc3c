/**
 * Compact copies of decoded entries' data.
 *
 * An entry decoded from a message is a view into the bytes it arrived in:
 * a TCP frame (itself in one of Node's 8 KiB buffer-pool slabs, shared with
 * whatever else was allocated there) or, on the in-process network, the
 * packer's shared buffer. A member keeps its log entries in memory until a
 * snapshot lets it compact them (5,000 to 15,000 of them by default), so each
 * kept view held a whole slab alive: three members in one process held about
 * four times the bytes of their entries (docs/performance.md). Here entries'
 * data is copied into slabs of its own. Entries are dropped in log order, so
 * a slab is freed once the entries in it are compacted; data larger than
 * {@link OWN_COPY_BYTES} gets a buffer of its own.
 * @module
 */

/** Bytes of one slab. */
const SLAB_BYTES = 64 * 1024;
/** Data longer than this (bytes) is copied into a buffer of its own. */
const OWN_COPY_BYTES = 4 * 1024;
const EMPTY = new Uint8Array(0);

let slab = new Uint8Array(SLAB_BYTES);
let used = 0;

/**
 * A copy of `src` that shares memory only with other entries' data (a view
 * into the current slab, or a buffer of its own when `src` is larger than
 * 4 KiB). `src` may be overwritten or dropped afterwards.
 */
export function entryBytes(src: Uint8Array): Uint8Array {
  const n = src.length;
  if (n === 0) return EMPTY;
  if (n > OWN_COPY_BYTES) return new Uint8Array(src);
  if (used + n > SLAB_BYTES) {
    slab = new Uint8Array(SLAB_BYTES);
    used = 0;
  }
  const out = slab.subarray(used, used + n);
  out.set(src);
  used += n;
  return out;
}
