/**
 * `PriorityQueue`: a multi-reader, multi-writer queue ordered by priority,
 * then FIFO (etcd's recipes `PriorityQueue`).
 * @module
 */
import { ErrorCode, UsageError } from '../errors.js';
import { text, type KV } from '../server/kv.js';
import { claimKey, createUniqueKey, dirOf, kvOf } from './keys.js';
import type { EnqueuedItem } from './queue.js';
import type { LockOptions } from './mutex.js';
import { Scope, optionsOf } from './scope.js';
import { waitForPut } from './wait.js';

/** The largest priority {@link PriorityQueue.enqueue} accepts. */
export const MAX_PRIORITY = 99_999;

/**
 * A distributed priority queue (etcd's recipes `PriorityQueue`). Items are
 * keys `<prefix>/<priority, 5 digits>/<unique>`; `dequeue()` takes the item
 * with the **lowest** priority number, and among those the oldest.
 * Guarantees and caveats are those of {@link Queue}.
 *
 * ```ts
 * const q = new PriorityQueue(node, 'queues/jobs');
 * await q.enqueue('rebuild-index', 10);
 * await q.enqueue('page-oncall', 0);
 * await q.dequeue(); // 'page-oncall'
 * ```
 */
export class PriorityQueue {
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
   * Adds `value` with `priority` (an integer from 0, served first, to {@link MAX_PRIORITY}).
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for a bad priority or value
   */
  async enqueue(value: string, priority: number): Promise<EnqueuedItem> {
    if (typeof value !== 'string') throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'priority queue: value must be a string');
    if (!Number.isSafeInteger(priority) || priority < 0 || priority > MAX_PRIORITY) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `priority queue: priority must be an integer in [0, ${MAX_PRIORITY}]`);
    }
    return createUniqueKey(this.kv, `${this.prefix}${String(priority).padStart(5, '0')}/`, value);
  }

  /**
   * Removes and returns the item with the lowest priority number (oldest
   * first among equals), waiting for one when the queue is empty.
   * @throws FaultError `QUORUMKV_ABORTED`; errors of the KV
   */
  async dequeue(options: LockOptions = {}): Promise<string> {
    options = optionsOf(options, 'dequeue options', ['signal']);
    const scope = new Scope(options.signal, undefined);
    try {
      for (;;) {
        scope.check();
        const res = await this.kv.range({ key: this.prefix, prefix: true, limit: 1, keysOnly: true });
        const first = res.kvs[0];
        if (first === undefined) {
          await waitForPut(this.kv, this.prefix, res.header.revision, scope.signal);
          continue;
        }
        const band = text(first.key).slice(0, this.prefix.length + 6); // '<prefix>NNNNN/'
        const oldest = await this.kv.range({ key: band, prefix: true, sortTarget: 'CREATE', sortOrder: 'ASCEND', limit: 1 });
        const item = oldest.kvs[0];
        if (item !== undefined && (await claimKey(this.kv, item))) return text(item.value);
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
