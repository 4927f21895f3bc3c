/**
 * The durable storage contract a Raft node persists to: the HardState, the
 * log entries and the latest snapshot. {@link LevelLogStorage} implements it
 * on any `abstract-level` database.
 * @module
 */
import type { Entry, HardState, Snapshot } from '../raftpb/index.js';

/** Lifecycle of a {@link LogStorage}, as in abstract-level's `db.status`. */
export type LogStorageStatus = 'opening' | 'open' | 'closing' | 'closed';

/** Everything a {@link LogStorage} has persisted, as returned by {@link LogStorage.load}. */
export interface LoadedLogState {
  /** The persisted HardState; the empty HardState (term 0, vote `''`, commit 0) when none was saved. */
  hardState: HardState;
  /** The latest snapshot (metadata and data), or `undefined` when none was saved. */
  snapshot: Snapshot | undefined;
  /**
   * The entries after the snapshot (or from index 1 when there is none),
   * contiguous and in index order, each verified against its CRC-32.
   */
  entries: Entry[];
}

/** One atomic write of {@link LogStorage.save}. Every field is optional. */
export interface LogStorageUpdate {
  /** The new HardState (replaces the stored one). */
  hardState?: HardState;
  /**
   * Entries to append, contiguous and in index order. They replace any stored
   * entries at indexes >= the first of them, and stored entries beyond the last
   * of them are deleted (the conflicting suffix, Raft §5.3).
   */
  entries?: Entry[];
  /**
   * A snapshot to keep as the latest one. Stored entries at or below its index
   * are dropped; see {@link LogStorage.save} for the entries above it.
   */
  snapshot?: Snapshot;
}

/** Options of {@link LogStorage.save}. */
export interface LogStorageSaveOptions {
  /**
   * Make the write durable (fsync) before the promise resolves. Pass Raft's
   * `Ready.mustSync`: a new term, a new vote or new entries must be on disk
   * before any message that depends on them is sent (Raft Figure 2,
   * "persistent state on all servers ... updated on stable storage before
   * responding to RPCs").
   */
  sync: boolean;
}

/**
 * Durable storage of one Raft node: HardState, log entries and the latest
 * snapshot. All methods are async; writes are applied in call order.
 *
 * Errors (by `code`):
 * - `QUORUMKV_STORAGE_CLOSED` (`FaultError`): the storage is closing or closed;
 * - `QUORUMKV_CORRUPT_LOG` / `QUORUMKV_CORRUPT_SNAPSHOT` (`FaultError`): stored
 *   data failed its CRC-32, could not be decoded, or the log has a gap;
 * - `QUORUMKV_INVALID_ARGUMENT` / `QUORUMKV_SNAPSHOT_OUT_OF_DATE` (`UsageError`):
 *   an update that would break the log (nothing is written).
 */
export interface LogStorage {
  /** Current lifecycle state. */
  readonly status: LogStorageStatus;

  /**
   * Reads and verifies everything persisted.
   * @throws FaultError `QUORUMKV_CORRUPT_LOG` for a corrupt HardState, a corrupt
   *   entry that is not part of a torn tail, or a gap in the indexes;
   *   `QUORUMKV_CORRUPT_SNAPSHOT` for a corrupt snapshot; `QUORUMKV_STORAGE_CLOSED`
   */
  load(): Promise<LoadedLogState>;

  /**
   * Persists `update` in one atomic write, durable before it resolves when
   * `options.sync` is true (and only then; pass Raft's `mustSync`).
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when the entries are not
   *   contiguous, their terms decrease, they would leave a gap after the stored
   *   log, or the HardState's commit (the update's, else the stored one)
   *   would be beyond the log's last index after the update, or a field
   *   is malformed (an entry's type or data, a snapshot's ConfState): nothing
   *   is stored that would not load again; when `update` is not an object, or
   *   `options.sync` is not a boolean (a `1` or a missing `sync` taken for
   *   `false` would leave a write the caller meant to be durable unsynced);
   *   `QUORUMKV_SNAPSHOT_OUT_OF_DATE` when the snapshot is older than the stored one
   * @throws FaultError `QUORUMKV_STORAGE_CLOSED`
   */
  save(update: LogStorageUpdate, options: LogStorageSaveOptions): Promise<void>;

  /**
   * Deletes the entries up to and including `index`, which a saved snapshot
   * must already cover. Not synced: losing it in a crash is harmless, the
   * entries are ignored below the snapshot on load (Raft §7).
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `index` is above the
   *   stored snapshot's index, or not a non-negative safe integer
   * @throws FaultError `QUORUMKV_STORAGE_CLOSED`
   */
  compact(index: number): Promise<void>;

  /**
   * Waits for pending writes, then closes. Idempotent. Later calls to other
   * methods reject with `QUORUMKV_STORAGE_CLOSED`.
   */
  close(): Promise<void>;
}
