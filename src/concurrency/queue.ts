/**
 * `Queue`: a multi-reader, multi-writer FIFO queue (etcd's recipes `Queue`).
 * @module
 */
import { ErrorCode, UsageError } from '../errors.js';
import { text, type KV } from '../server/kv.js';
import { claimKey, createUniqueKey, dirOf, kvOf } from './keys.js';
import type { LockOptions } from './mutex.js';
import { Scope, optionsOf } from './scope.js';
import { waitForPut } from './wait.js';

/** An item just enqueued: its key and the revision that created it (its place in the queue). */
export interface EnqueuedItem {
  /** The item's key, `<prefix>/<unique>`. */
  key: string;
  /** The item's createRevision: the revision of the txn that wrote it; items dequeue in this order. */
  revision: number;
}

/**
 * A distributed FIFO queue (etcd's recipes `Queue`). Each item is a key
 * `<prefix>/<unique>` = value; `dequeue()` takes the item with the smallest
 * createRevision by deleting it in a txn that checks it is unchanged, so
 * each item is dequeued by exactly one reader. An empty queue blocks
 * `dequeue()` until an item is enqueued (one watch on the prefix).
 *
 * Guarantees: items come out in the order their `enqueue()` calls took
 * effect; each item is returned by at most one `dequeue()`. Not guaranteed:
 * that an item is processed — a reader that dequeues and then fails loses
 * the item (there is no acknowledgement; use a lock or a lease-owned
 * "in progress" key for that). Items have no lease: they outlive writers.
 *
 * ```ts
 * const q = new Queue(node, 'queues/emails');
 * await q.enqueue(JSON.stringify({ to: 'ada@example.com' }));
 * const job = JSON.parse(await q.dequeue({ signal }));
 * ```
 */
export class Queue {
  /** The KV the queue lives in. */
  readonly kv: KV;
  /** The queue's key prefix, ending with `/`. */
  readonly prefix: string;

  /** @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an empty prefix, or a `kv` that is not a KV */
  constructor(kv: KV, prefix: string) {
    this.kv = kvOf(kv, 'the queue\'s kv');
    this.prefix = dirOf(prefix);
  }

  /**
   * Appends `value` (UTF-8) to the queue. Resolves with the item's key and revision.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for a value that is not a string; errors of the KV
   */
  async enqueue(value: string): Promise<EnqueuedItem> {
    if (typeof value !== 'string') throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'queue: value must be a string');
    return createUniqueKey(this.kv, this.prefix, value);
  }

  /**
   * Removes and returns the oldest item, waiting for one when the queue is empty.
   * @throws FaultError `QUORUMKV_ABORTED`; errors of the KV (an item whose
   *   claiming txn timed out may or may not have been removed)
   */
  async dequeue(options: LockOptions = {}): Promise<string> {
    options = optionsOf(options, 'dequeue options', ['signal']);
    const scope = new Scope(options.signal, undefined);
    try {
      for (;;) {
        scope.check();
        const res = await this.kv.range({ key: this.prefix, prefix: true, sortTarget: 'CREATE', sortOrder: 'ASCEND', limit: 1 });
        const first = res.kvs[0];
        if (first !== undefined) {
          if (await claimKey(this.kv, first)) return text(first.value);
          continue; // another reader took it
        }
        await waitForPut(this.kv, this.prefix, res.header.revision, scope.signal);
      }
    } finally {
      scope.dispose();
    }
  }

  /** Number of items in the queue (a linearizable count). */
  async size(): Promise<number> {
    const res = await this.kv.range({ key: this.prefix, prefix: true, countOnly: true });
    return res.count;
  }
}
