// ClaimingLogStorage: the member's ids are saved before the log's first
// write, and the writes reach the storage in call order (the LogStorage
// contract) however they fall around the ids' save.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClaimingLogStorage } from '../../src/server/claiming-log-storage.js';
import type { LoadedLogState, LogStorage, LogStorageSaveOptions, LogStorageStatus, LogStorageUpdate } from '../../src/storage/index.js';

/** Records what reaches it, in order. */
class Recording implements LogStorage {
  readonly calls: string[] = [];
  status: LogStorageStatus = 'open';
  load(): Promise<LoadedLogState> {
    return Promise.resolve({ hardState: { term: 0, vote: '', commit: 0 }, entries: [], snapshot: undefined } as unknown as LoadedLogState);
  }
  save(update: LogStorageUpdate, _options: LogStorageSaveOptions): Promise<void> {
    if (this.status !== 'open') return Promise.reject(new Error('closed'));
    this.calls.push(`save term ${update.hardState?.term}`);
    return Promise.resolve();
  }
  compact(index: number): Promise<void> {
    if (this.status !== 'open') return Promise.reject(new Error('closed'));
    this.calls.push(`compact ${index}`);
    return Promise.resolve();
  }
  close(): Promise<void> {
    this.calls.push('close');
    this.status = 'closed';
    return Promise.resolve();
  }
}

const hs = (term: number): LogStorageUpdate => ({ hardState: { term, vote: '', commit: 0 } });

test('writes issued while the ids are being saved, and just as the save ends, reach the storage in call order', async () => {
  // before: a write issued as the ids' save completed, ahead of the
  // writes queued behind it, went straight to the storage, before them
  const inner = new Recording();
  let idsSaved!: () => void;
  const ids = new Promise<void>((resolve) => (idsSaved = resolve));
  const storage = new ClaimingLogStorage(inner, () => ids);
  const sync = { sync: true };
  const done = [storage.save(hs(1), sync), storage.compact(1)];
  // runs as soon as the ids are saved, before anything queued behind them
  const late = ids.then(() => [storage.save(hs(2), sync), storage.compact(2)]);
  idsSaved();
  done.push(...(await late));
  done.push(storage.save(hs(3), sync));
  await Promise.all(done);
  assert.deepEqual(inner.calls, ['save term 1', 'compact 1', 'save term 2', 'compact 2', 'save term 3']);
});

test('a close issued while writes wait for the ids comes after them', async () => {
  const inner = new Recording();
  let idsSaved!: () => void;
  const storage = new ClaimingLogStorage(inner, () => new Promise<void>((resolve) => (idsSaved = resolve)));
  const saved = storage.save(hs(1), { sync: true });
  const closed = storage.close();
  idsSaved();
  await saved;
  await closed;
  assert.deepEqual(inner.calls, ['save term 1', 'close']);
});

test('no write reaches the storage when the ids cannot be saved', async () => {
  const inner = new Recording();
  const storage = new ClaimingLogStorage(inner, () => Promise.reject(new Error('disk full')));
  await assert.rejects(storage.save(hs(1), { sync: true }), /disk full/);
  await assert.rejects(storage.compact(1), /disk full/);
  await assert.rejects(storage.claim(), /disk full/);
  await storage.close();
  assert.deepEqual(inner.calls, ['close']);
});
