/**
 * A {@link LogStorage} that times the Raft log's synced writes, for
 * `etcd_disk_wal_fsync_duration_seconds` and the slow-fsync warning (etcd
 * warns "slow fdatasync" above one second; the threshold here is an option).
 * @module
 */
import { performance } from 'node:perf_hooks';
import type { LoadedLogState, LogStorage, LogStorageSaveOptions, LogStorageStatus, LogStorageUpdate } from '../storage/index.js';

/** Wraps a storage: every `save` with `sync: true` is timed and reported in seconds. */
export class TimedLogStorage implements LogStorage {
  /**
   * @param inner - the storage written to
   * @param observe - gets the duration of each synced save, in seconds
   */
  constructor(
    private readonly inner: LogStorage,
    private readonly observe: (seconds: number) => void,
  ) {}

  get status(): LogStorageStatus {
    return this.inner.status;
  }

  load(): Promise<LoadedLogState> {
    return this.inner.load();
  }

  async save(update: LogStorageUpdate, options: LogStorageSaveOptions): Promise<void> {
    if (!options.sync) return this.inner.save(update, options);
    const started = performance.now();
    await this.inner.save(update, options);
    this.observe((performance.now() - started) / 1000);
  }

  compact(index: number): Promise<void> {
    return this.inner.compact(index);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
