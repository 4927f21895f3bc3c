/**
 * The Raft log of a KvNode member, which saves the member's ids with its
 * data before the log's first write.
 * @module
 */
import type { LoadedLogState, LogStorage, LogStorageSaveOptions, LogStorageStatus, LogStorageUpdate } from '../storage/index.js';

/**
 * A member's Raft log that keeps its owner with the data before its first
 * write, as etcd writes its member id into the WAL's metadata when it
 * creates the WAL: `saveIds` (the member and cluster ids, synced) runs once,
 * before the first save or compaction, which wait for it (and fail if it
 * does), or at {@link claim}. A crash at any point thus leaves either no
 * Raft state of the member's, or its ids with it. Calls reach the storage in
 * call order, those made while the ids are being saved included.
 */
export class ClaimingLogStorage implements LogStorage {
  private claiming: Promise<void> | undefined;
  /**
   * Set once the ids are saved and every call made before has been passed
   * on: calls then go straight to the storage (a log write per proposal, no
   * extra turn).
   */
  private claimed = false;
  /** Calls waiting for the ids, not passed on to the storage yet. */
  private waiting = 0;

  constructor(
    private readonly inner: LogStorage,
    private readonly saveIds: () => Promise<void>,
  ) {}

  /** Saves the ids, once: every call gets the first call's outcome. */
  claim(): Promise<void> {
    this.claiming ??= this.saveIds().then(() => {
      // calls waiting for the ids are passed on first, in call order: the
      // last of them lets the later ones through
      if (this.waiting === 0) this.claimed = true;
    });
    return this.claiming;
  }

  get status(): LogStorageStatus {
    return this.inner.status;
  }

  load(): Promise<LoadedLogState> {
    return this.inner.load();
  }

  save(update: LogStorageUpdate, options: LogStorageSaveOptions): Promise<void> {
    if (this.claimed) return this.inner.save(update, options);
    return this.afterIds(() => this.inner.save(update, options));
  }

  compact(index: number): Promise<void> {
    if (this.claimed) return this.inner.compact(index);
    return this.afterIds(() => this.inner.compact(index));
  }

  /** Closes the storage after the calls made before, whatever the ids' save gives. */
  close(): Promise<void> {
    if (this.claimed || this.claiming === undefined) return this.inner.close();
    const close = (): Promise<void> => this.inner.close();
    return this.claiming.then(close, close);
  }

  /**
   * `call` once the ids are saved, after every call made before it (each
   * waits on the same save, in call order); never when the save fails.
   */
  private afterIds(call: () => Promise<void>): Promise<void> {
    this.waiting++;
    return this.claim().then(() => {
      if (--this.waiting === 0) this.claimed = true;
      return call();
    });
  }
}
