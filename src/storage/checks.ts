/**
 * Shape checks of a {@link LogStorage} update, shared by the storages.
 * @module
 */
import { ErrorCode, UsageError } from '../errors.js';
import type { Entry, HardState, Snapshot } from '../raftpb/index.js';
import type { LogStorage } from './log-storage.js';

function isIndex(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/** @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for a malformed HardState. */
export function checkHardState(hs: HardState): void {
  if (!isIndex(hs.term) || !isIndex(hs.commit) || typeof hs.vote !== 'string') {
    throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'HardState needs a non-negative term and commit and a string vote');
  }
}

/** @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for malformed snapshot metadata or data. */
export function checkSnapshot(s: Snapshot): void {
  const m = s.metadata;
  if (!isIndex(m.index) || !isIndex(m.term) || !(s.data instanceof Uint8Array)) {
    throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'snapshot needs a non-negative index and term and Uint8Array data');
  }
}

/**
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when entries are not contiguous, have
 *   an index below 1 or a term that decreases
 */
export function checkEntries(entries: readonly Entry[]): void {
  let prev: Entry | undefined;
  for (const e of entries) {
    if (!isIndex(e.index) || e.index < 1 || !isIndex(e.term)) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `entry has an invalid index ${e.index} or term ${e.term}`);
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
