/**
 * `Barrier`: a key that blocks waiters until it is deleted (etcd's recipes
 * `Barrier`).
 * @module
 */
import { ErrorCode, UsageError } from '../errors.js';
import type { KV } from '../server/kv.js';
import type { LockOptions } from './mutex.js';
import { kvOf } from './keys.js';
import { Scope, optionsOf } from './scope.js';
import { waitDelete } from './wait.js';

/**
 * A barrier (etcd's recipes `Barrier`): while its key exists, `wait()`
 * blocks; deleting the key (`release()`) lets every waiter through at once.
 * `wait()` on a barrier that is not held returns at once.
 *
 * Guarantees: a `wait()` that started after `hold()` resolved returns only
 * after the key was deleted. Not guaranteed: that waiters notice a release
 * that is followed by a new `hold()` before they read the key (they may
 * then wait for the next release). The key has no lease by default: a
 * holder that dies leaves the barrier closed unless it passed `lease`.
 *
 * ```ts
 * const barrier = new Barrier(node, 'barriers/deploy');
 * await barrier.hold();
 * // elsewhere: await new Barrier(otherNode, 'barriers/deploy').wait();
 * await barrier.release();
 * ```
 */
export class Barrier {
  /** The KV the barrier lives in. */
  readonly kv: KV;
  /** The barrier's key. */
  readonly key: string;

  /** @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an empty key, or a `kv` that is not a KV */
  constructor(kv: KV, key: string) {
    if (typeof key !== 'string' || key === '') throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'barrier key must be a non-empty string');
    this.kv = kvOf(kv, 'the barrier\'s kv');
    this.key = key;
  }

  /**
   * Creates the barrier key (etcd's `Hold`), optionally attached to a lease.
   * @returns true when this call created it, false when it was already held
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for a `lease` that is not
   *   an integer id (nothing is written), `QUORUMKV_LEASE_NOT_FOUND`
   *   for an unknown lease; errors of the KV
   */
  async hold(options: { lease?: number } = {}): Promise<boolean> {
    options = optionsOf(options, 'hold options', ['lease']);
    const res = await this.kv.txn({
      compare: [{ key: this.key, target: 'CREATE', result: 'EQUAL', createRevision: 0 }],
      // a lease of the wrong type (null included) is the KV's INVALID_ARGUMENT, not "no lease"
      success: [{ put: { key: this.key, value: '', lease: options.lease === undefined ? 0 : options.lease } }],
    });
    return res.succeeded;
  }

  /**
   * Deletes the barrier key, releasing every waiter (etcd's `Release`).
   * @returns true when a key was deleted
   */
  async release(): Promise<boolean> {
    const res = await this.kv.delete(this.key);
    return res.deleted > 0;
  }

  /**
   * Waits until the barrier key does not exist (etcd's `Wait`).
   * @throws FaultError `QUORUMKV_ABORTED` on abort; errors of the KV
   */
  async wait(options: LockOptions = {}): Promise<void> {
    options = optionsOf(options, 'wait options', ['signal']);
    const scope = new Scope(options.signal, undefined);
    try {
      for (;;) {
        scope.check();
        const res = await this.kv.range({ key: this.key, keysOnly: true });
        if (res.kvs.length === 0) return;
        if (await waitDelete(this.kv, this.key, res.header.revision + 1, scope.signal)) return;
      }
    } finally {
      scope.dispose();
    }
  }
}
