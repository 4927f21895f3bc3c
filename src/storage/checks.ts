/**
 * Shape checks of a {@link LogStorage} update, shared by the storages.
 * @module
 */
import { ErrorCode, UsageError } from '../errors.js';
import { describeValue } from '../arg-values.js';
import type { HardState } from '../raftpb/index.js';
import { checkEntries, checkSnapshot, isIndex } from '../raft/entry-checks.js';
import type { LoadedLogState, LogStorage, LogStorageSaveOptions, LogStorageUpdate } from './log-storage.js';

/** @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for a malformed HardState. */
export function checkHardState(hs: HardState): void {
  if (hs === null || typeof hs !== 'object' || !isIndex(hs.term) || !isIndex(hs.commit) || typeof hs.vote !== 'string') {
    throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'HardState needs a non-negative term and commit and a string vote');
  }
}

export { checkSnapshot };

/**
 * The shape checks of a whole update (each field that is present).
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `update` is not an
 *   object, or a field is malformed
 */
export function checkUpdate(update: LogStorageUpdate): void {
  if (update === null || typeof update !== 'object' || Array.isArray(update)) {
    throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'a log storage update must be an object of hardState, entries and snapshot');
  }
  if (update.hardState !== undefined) checkHardState(update.hardState);
  if (update.entries !== undefined) checkEntries(update.entries);
  if (update.snapshot !== undefined) checkSnapshot(update.snapshot);
}

/**
 * The options of a save: `sync` must be a boolean. Anything else (a missing
 * `sync`, `1`, `'yes'`) would be taken for an unsynced write that the caller
 * meant to be durable.
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `options` is not an
 *   object or its `sync` is not a boolean
 */
export function checkSaveOptions(options: LogStorageSaveOptions): void {
  if (options === null || typeof options !== 'object' || typeof options.sync !== 'boolean') {
    throw new UsageError(ErrorCode.INVALID_ARGUMENT, `save options need a boolean sync, got ${options === null || typeof options !== 'object' ? describeValue(options) : `sync ${describeValue((options as { sync?: unknown }).sync)}`}`);
  }
}

/** @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `index` is not a non-negative safe integer. */
export function checkCompactIndex(index: number): void {
  if (!isIndex(index)) {
    throw new UsageError(ErrorCode.INVALID_ARGUMENT, `compact index must be a non-negative integer, got ${describeValue(index)}`);
  }
}

/** @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when no stored snapshot covers `index` (Raft §7: only what a snapshot holds may go). */
export function checkCompactCovered(index: number, snapshotIndex: number): void {
  if (index > snapshotIndex) {
    throw new UsageError(ErrorCode.INVALID_ARGUMENT, `cannot compact to index ${index}: the stored snapshot only covers index ${snapshotIndex}`);
  }
}

/** @throws UsageError `QUORUMKV_SNAPSHOT_OUT_OF_DATE` when the snapshot at `index` is older than the stored one. */
export function checkSnapshotNotOlder(index: number, storedIndex: number): void {
  if (index < storedIndex) {
    throw new UsageError(ErrorCode.SNAPSHOT_OUT_OF_DATE, `snapshot at index ${index} is older than the stored snapshot at index ${storedIndex}`);
  }
}

/** @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when entries starting at `first` leave a gap after the log's last index `tail` (Raft §5.3). */
export function checkNoGap(first: number, tail: number): void {
  if (first > tail + 1) {
    throw new UsageError(ErrorCode.INVALID_ARGUMENT, `entries start at index ${first}, leaving a gap after the last stored index ${tail}`);
  }
}

/** @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when a HardState's commit is beyond the log's last index after the update. */
export function checkCommitWithin(commit: number, lastIndex: number): void {
  if (commit > lastIndex) {
    throw new UsageError(ErrorCode.INVALID_ARGUMENT, `HardState commit ${commit} is beyond the last index ${lastIndex} of the log`);
  }
}

/**
 * Whether a loaded log holds nothing of a member: no term (so no vote), no
 * entry and no snapshot past index 0. Such a member bootstraps a new cluster
 * from its peers, or waits to be sent the cluster as a joining member.
 */
export function holdsNothing(state: LoadedLogState): boolean {
  return state.hardState.term === 0 && state.entries.length === 0 && (state.snapshot === undefined || state.snapshot.metadata.index === 0);
}
