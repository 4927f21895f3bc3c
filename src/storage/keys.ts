/**
 * Key layout of {@link LevelLogStorage} inside its database (or sublevel).
 * Every key is bytes (`keyEncoding: 'view'`):
 *
 * | key | value |
 * |---|---|
 * | `0x65` (`'e'`) + index as 8 bytes big-endian | `withCrc(encodeEntry(entry))` |
 * | `0x68` (`'h'`) | `withCrc(encodeHardState(hardState))` |
 * | `0x73` (`'s'`) | `withCrc(encodeSnapshot(snapshot))` (metadata and data) |
 *
 * Fixed-width big-endian indexes make lexicographic key order equal to index
 * order, so one forward iterator reads the log in order.
 * @module
 */

/** First byte of every entry key (`'e'`). */
export const ENTRY_KEY_PREFIX = 0x65;

/** The key of the HardState record (`'h'`). */
export const HARD_STATE_KEY: Uint8Array = Uint8Array.of(0x68);

/** The key of the snapshot record (`'s'`). */
export const SNAPSHOT_KEY: Uint8Array = Uint8Array.of(0x73);

/** Length of an entry key in bytes: the prefix and a u64 index. */
export const ENTRY_KEY_LENGTH = 9;

const TWO_32 = 2 ** 32;

/**
 * The key of the entry at `index` (a non-negative safe integer).
 * @returns 9 bytes: `'e'` then the index as u64 big-endian
 */
export function entryKey(index: number): Uint8Array {
  const key = new Uint8Array(ENTRY_KEY_LENGTH);
  key[0] = ENTRY_KEY_PREFIX;
  const view = new DataView(key.buffer);
  view.setUint32(1, Math.floor(index / TWO_32));
  view.setUint32(5, index >>> 0);
  return key;
}

/** The exclusive upper bound of all entry keys (`'f'`), for range reads. */
export const ENTRY_KEY_END: Uint8Array = Uint8Array.of(ENTRY_KEY_PREFIX + 1);

/**
 * The index of an entry key, or `undefined` when `key` is not a well-formed
 * entry key (wrong length or prefix, index above 2^53 - 1).
 */
export function entryIndexOf(key: Uint8Array): number | undefined {
  if (key.length !== ENTRY_KEY_LENGTH || key[0] !== ENTRY_KEY_PREFIX) return undefined;
  const view = new DataView(key.buffer, key.byteOffset, key.byteLength);
  const index = view.getUint32(1) * TWO_32 + view.getUint32(5);
  return Number.isSafeInteger(index) ? index : undefined;
}
