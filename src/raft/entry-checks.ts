/**
 * The shape check of entries handed to a log storage to append: the one
 * {@link MemoryStorage} and the durable storages (`src/storage`) share.
 * @module
 */
import { ErrorCode, UsageError } from '../errors.js';
import { describeValue } from '../arg-values.js';
import type { Entry } from '../raftpb/index.js';

/** A Raft index or term: a safe integer >= 0. @internal */
export function isIndex(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/**
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when entries are not an
 *   array, are not contiguous, have an index below 1 or a term that
 *   decreases, or an entry has a type other than `'Normal'` and
 *   `'ConfChange'` or data that is not a `Uint8Array` (such an entry was
 *   written, and the record holding it failed to decode on load)
 */
export function checkEntries(entries: readonly Entry[]): void {
  if (!Array.isArray(entries)) throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'entries must be an array');
  let prev: Entry | undefined;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as Entry | null | undefined;
    if (e === null || typeof e !== 'object' || !isIndex(e.index) || e.index < 1 || !isIndex(e.term)) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `entry has an invalid index ${describeValue(e?.index)} or term ${describeValue(e?.term)}`);
    }
    if (e.type !== 'Normal' && e.type !== 'ConfChange') {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `entry ${e.index} has type ${describeValue(e.type)}, not Normal or ConfChange`);
    }
    if (!(e.data instanceof Uint8Array)) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `entry ${e.index} has data that is not a Uint8Array`);
    }
    if (prev !== undefined) {
      if (e.index !== prev.index + 1) {
        throw new UsageError(
          ErrorCode.INVALID_ARGUMENT,
          `entries are not contiguous: index ${e.index} follows index ${prev.index}`,
        );
      }
      if (e.term < prev.term) {
        throw new UsageError(
          ErrorCode.INVALID_ARGUMENT,
          `entry ${e.index} has term ${e.term}, below the term ${prev.term} of entry ${prev.index}`,
        );
      }
    }
    prev = e;
  }
}
