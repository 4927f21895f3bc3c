/**
 * `Mutex`: a distributed lock on a key prefix (etcd's `concurrency.Mutex`),
 * with a fencing token.
 * @module
 */
import { ErrorCode, FaultError, UsageError } from '../errors.js';
import type { KeyValue, ResponseHeader } from '../mvccpb/index.js';
import type { CompareInput, KV } from '../server/kv.js';
import { dirOf, heldLock, leaseHex, LEFTOVER_RETRY_MS, rangeOfOp, sessionOf } from './keys.js';
import { Scope, optionsOf } from './scope.js';
import type { Session } from './session.js';
import { waitDeletes } from './wait.js';

/** Options of a waiting call (lock, campaign, wait, dequeue). */
export interface LockOptions {
  /** Gives up waiting: the call fails with `QUORUMKV_ABORTED` after removing what it created. */
  signal?: AbortSignal;
}

/**
 * A lock as held by one holder: what to hand to the protected resource.
 * `fencingToken` is the createRevision of the holder's key: every later
 * holder of the same lock gets a strictly greater token.
 */
export interface HeldLock {
  /** The holder's key (`<prefix>/<lease id in hex>` for a {@link Mutex}). */
  readonly key: string;
  /** The fencing token: the key's createRevision, strictly increasing across holders. */
  readonly fencingToken: number;
  /** The store revision at which the lock was known to be held. */
  readonly revision: number;
  /**
   * A txn compare that holds only while this holder's key is still the one
   * it created (`createRevision(key) == fencingToken`): put it in the
   * `compare` list of a txn to make a write conditional on still holding.
   */
  isOwner(): CompareInput;
}

/**
 * A distributed mutual-exclusion lock (etcd's `concurrency.Mutex`).
 *
 * Each session that wants the lock creates one key, `<prefix>/<lease hex>`,
 * attached to its lease, in one txn (`if createRevision(key) == 0 then
 * put(key) else get(key)`, plus a read of the oldest key). The holder is the
 * session whose key has the smallest createRevision. A waiter watches only
 * the key just before its own in revision order (the largest createRevision
 * below its own) and re-checks when it is deleted: waiters are served in
 * FIFO order of their keys' creation, and no release wakes more than one.
 *
 * Guarantees:
 * - at most one *live* session's key is the oldest at any revision;
 * - `fencingToken` (the key's createRevision) strictly increases from one
 *   holder to the next;
 * - `lock()` never returns on a lost session (`QUORUMKV_SESSION_EXPIRED`),
 *   and the session's `lost` fires before the cluster deletes the key when
 *   the holder cannot renew it (see {@link Session}).
 *
 * What it does not guarantee: mutual exclusion *of the work done under the
 * lock*. A holder paused past its lease TTL (GC, swap, a long await) still
 * believes it holds the lock when it resumes, while another holder already
 * has it (etcd's documentation on locks; Jepsen's etcd 3.4.3 analysis;
 * Kleppmann, "How to do distributed locking"). Protect the resource with
 * the fencing token: make it reject writes whose token is below the highest
 * it has seen, or, when the resource is in the same cluster, write with
 * `txn({ compare: [lock.isOwner()], success: [...] })`.
 *
 * One `Mutex` per session and prefix: two `Mutex` objects on the same
 * session and prefix share one key (etcd behaviour).
 *
 * ```ts
 * const session = await Session.create(node, { ttl: 10 });
 * const mutex = new Mutex(session, 'locks/invoices');
 * const lock = await mutex.lock({ signal: AbortSignal.timeout(5_000) });
 * try {
 *   await node.txn({ compare: [lock.isOwner()], success: [{ put: { key: 'invoices/next', value: '42' } }] });
 *   await storage.write(data, { fencingToken: lock.fencingToken });
 * } finally {
 *   await mutex.unlock();
 * }
 * ```
 */
export class Mutex {
  /** The session whose lease holds the key. */
  readonly session: Session;
  /** The lock's key prefix, ending with `/`. */
  readonly prefix: string;
  /** This session's key: `<prefix><lease id in hex>`. */
  readonly key: string;

  private held: HeldLock | undefined;
  private busy = false;
  /** Settles when the unlock() under way, if any, has (an unlock after it waits for it). */
  private unlocking: Promise<void> | undefined;
  /**
   * The createRevision of this mutex's key left by a lock() that failed and
   * could not delete it (its member cut off): deleted again every 500 ms
   * while the session lives, and before the next lock() (see {@link removeKey}).
   */
  private leftover: number | undefined;

  /**
   * @param prefix - the lock's name; a `/` is appended unless present
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an empty prefix, or a `session` that is not a Session
   */
  constructor(session: Session, prefix: string) {
    this.session = sessionOf(session, 'the mutex\'s session');
    this.prefix = dirOf(prefix);
    this.key = `${this.prefix}${leaseHex(session.lease)}`;
  }

  private get kv(): KV {
    return this.session.kv;
  }

  /**
   * True while this mutex holds the lock and its session is alive (reading
   * it checks the session's deadline). This is this process's belief: only
   * the fencing token protects a resource.
   */
  get isHeld(): boolean {
    return this.held !== undefined && this.session.isAlive;
  }

  /** The lock this mutex acquired and has not released, if any (even when the session has since been lost). */
  get current(): HeldLock | undefined {
    return this.held;
  }

  /**
   * The fencing token of the held lock (its key's createRevision).
   * @throws UsageError `QUORUMKV_LOCK_NOT_HELD` when not held
   */
  get fencingToken(): number {
    return this.mustHold().fencingToken;
  }

  /**
   * A txn compare that holds only while this holder's key is the one it
   * created (etcd's `Mutex.IsOwner`).
   * @throws UsageError `QUORUMKV_LOCK_NOT_HELD` when not held
   */
  isOwner(): CompareInput {
    return this.mustHold().isOwner();
  }

  /**
   * Waits for the lock (FIFO among waiters) and resolves once held.
   * When this mutex already holds it, resolves with that lock once a read
   * shows its key is still there (and the session alive); if the key is gone
   * (an unlock whose answer was lost, a delete by anyone), locks anew.
   *
   * On abort, on a lost session or on any error after its key was created,
   * the key is deleted and the call fails. A delete that fails too (this
   * member cut off) is tried again every 500 ms while the session lives,
   * and before the next lock() of this mutex, so that the key does not hold
   * the waiters behind it back for the session's whole life (a key whose
   * creating txn never answered goes with the session's lease).
   * @throws FaultError `QUORUMKV_ABORTED` (signal), `QUORUMKV_SESSION_EXPIRED`
   *   (the session was lost before or while waiting); errors of the KV
   *   (`QUORUMKV_TIMEOUT`, `QUORUMKV_NODE_CLOSED`, ...)
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when another lock() of this mutex is in progress
   */
  lock(options: LockOptions = {}): Promise<HeldLock> {
    return this.acquire(false, options);
  }

  /**
   * Takes the lock only if nobody holds it, without waiting (etcd's `TryLock`).
   * @throws FaultError `QUORUMKV_LOCKED` when another session holds it (this
   *   session's key is removed again); others as {@link lock}
   */
  tryLock(options: LockOptions = {}): Promise<HeldLock> {
    return this.acquire(true, options);
  }

  /**
   * Releases the lock: deletes this holder's key if it is still the one it
   * created.
   * @throws UsageError `QUORUMKV_LOCK_NOT_HELD` when this mutex does not hold
   *   the lock; FaultError `QUORUMKV_LOCK_NOT_HELD` when the key was already
   *   gone (the session expired: another holder may have had the lock)
   * @throws errors of the KV; the mutex then still counts as held (retry, or
   *   close the session) unless the session is lost
   *
   * An unlock() called while another of this mutex is under way runs once
   * that one has settled, as if called after it: after a successful one it
   * fails with the UsageError `QUORUMKV_LOCK_NOT_HELD`.
   */
  async unlock(): Promise<void> {
    while (this.unlocking !== undefined) await this.unlocking;
    const lock = this.mustHold();
    let settle = (): void => undefined;
    const unlocking = new Promise<void>((resolve) => (settle = resolve));
    this.unlocking = unlocking;
    try {
      const res = await this.kv.txn({ compare: [lock.isOwner()], success: [{ deleteRange: { key: lock.key } }] });
      this.release(lock);
      if (!res.succeeded) throw new FaultError(ErrorCode.LOCK_NOT_HELD, 'mutex: the lock was lost before unlock (its key is gone)');
    } catch (err) {
      if (!this.session.isAlive) this.release(lock);
      throw err;
    } finally {
      if (this.unlocking === unlocking) this.unlocking = undefined;
      settle();
    }
  }

  /**
   * Runs `fn` while holding the lock, then unlocks (also when `fn` throws).
   * `fn` gets the held lock and a signal aborted when the session ends or
   * `options.signal` aborts: stop working when it fires.
   * Not on a mutex that is held or being locked already: a `withLock`
   * nested in another, or alongside it, would unlock the other's section.
   * @returns what `fn` returns
   * @throws what `fn` throws; else the errors of {@link lock} and {@link unlock}
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when this mutex is held or being locked
   */
  async withLock<T>(fn: (lock: HeldLock, signal: AbortSignal) => T | Promise<T>, options: LockOptions = {}): Promise<T> {
    options = optionsOf(options, 'withLock options', ['signal']);
    if (typeof fn !== 'function') throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'withLock needs a function');
    if (this.held !== undefined || this.busy) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'mutex: withLock on a mutex that is held or being locked (a section inside another would unlock it)');
    }
    const lock = await this.lock(options);
    const scope = new Scope(options.signal, this.session);
    let result: T;
    try {
      result = await fn(lock, scope.signal);
    } catch (err) {
      scope.dispose();
      await this.unlock().catch(() => undefined);
      throw err;
    }
    scope.dispose();
    await this.unlock();
    return result;
  }

  // ---------------------------------------------------------- internals

  private mustHold(): HeldLock {
    if (this.held === undefined) throw new UsageError(ErrorCode.LOCK_NOT_HELD, 'mutex: not locked by this mutex');
    return this.held;
  }

  /**
   * Forgets `lock` when it is still the held one: the answer of an unlock
   * may come after a lock() of this mutex found the key gone and locked
   * anew, and that newer lock stays held.
   */
  private release(lock: HeldLock): void {
    if (this.held === lock) this.held = undefined;
  }

  private async acquire(tryOnly: boolean, options: LockOptions): Promise<HeldLock> {
    options = optionsOf(options, 'lock options', ['signal']);
    if (this.busy) throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'mutex: a lock() of this mutex is already in progress');
    if (this.held !== undefined) {
      this.session.assertAlive();
      const check = new Scope(options.signal, this.session);
      // held already: only while the key is still the one this lock created
      // (an unlock whose answer was lost may have deleted it, and so may
      // anyone), as etcd's Lock, which always asks the server again
      this.busy = true;
      try {
        check.check(); // an aborted call fails, held or not
        const mine = await this.kv.range({ key: this.key });
        // a lock never returns on a lost session (nor after an abort), also
        // when they come while the key is read; the lock itself stays held
        check.check();
        if (this.held !== undefined && mine.kvs[0]?.createRevision === this.held.fencingToken) return this.held;
      } finally {
        check.dispose();
        this.busy = false;
      }
      this.held = undefined;
    }
    this.busy = true;
    const scope = new Scope(options.signal, this.session);
    let myRev = 0;
    let created = false;
    try {
      scope.check();
      // a key an earlier failed lock() could not delete: reused as it is,
      // its retry timer could delete it under this call
      if (this.leftover !== undefined) await this.deleteGuarded(this.leftover);
      scope.check();
      const owner = { range: { key: this.prefix, prefix: true, sortTarget: 'CREATE', sortOrder: 'ASCEND', limit: 1 } } as const;
      created = true; // from here on, the key may exist
      const res = await this.kv.txn({
        compare: [{ key: this.key, target: 'CREATE', result: 'EQUAL', createRevision: 0 }],
        success: [{ put: { key: this.key, value: '', lease: this.session.lease } }, owner],
        failure: [{ range: { key: this.key } }, owner],
      });
      myRev = res.succeeded ? res.header.revision : (rangeOfOp(res.responses[0]).kvs[0]?.createRevision ?? 0);
      if (myRev === 0) throw new FaultError(ErrorCode.SESSION_EXPIRED, 'mutex: the lock key vanished while it was created');
      const first: KeyValue | undefined = rangeOfOp(res.responses[1]).kvs[0];
      let header: ResponseHeader = res.header;
      if (first !== undefined && first.createRevision !== myRev) {
        if (tryOnly) throw new FaultError(ErrorCode.LOCKED, 'mutex: locked by another session');
        await waitDeletes(this.kv, this.prefix, myRev - 1, scope.signal);
        // make sure the key is still ours (the session did not expire meanwhile)
        const mine = await this.kv.range({ key: this.key });
        header = mine.header;
        if (mine.kvs[0]?.createRevision !== myRev) {
          throw this.session.error ?? new FaultError(ErrorCode.SESSION_EXPIRED, 'mutex: session expired (the lock key is gone)');
        }
      }
      // a lock never returns on a lost session (nor after an abort)
      scope.check();
      this.held = heldLock(this.key, myRev, header.revision);
      return this.held;
    } catch (err) {
      if (created) await this.removeKey(myRev);
      throw err;
    } finally {
      scope.dispose();
      this.busy = false;
    }
  }

  /**
   * Removes this session's key after a failed lock() (guarded by its
   * createRevision when known). When the delete fails too (this member cut
   * off), a key whose createRevision is known is tried again every 500 ms
   * on the session's clock while the session lives, and before the next
   * lock(): left alone, it would hold every waiter behind it back for the
   * session's whole life, and become a holder nobody is once the ones
   * before it go. A key whose createRevision is unknown (its txn never
   * answered) goes with the session's lease, or is taken up again by the
   * next lock() of this mutex.
   */
  private async removeKey(myRev: number): Promise<void> {
    try {
      if (myRev > 0) await this.deleteGuarded(myRev);
      else await this.kv.delete(this.key);
    } catch {
      if (myRev <= 0) return;
      this.leftover = myRev;
      const retry = (): void => {
        if (this.leftover !== myRev || !this.session.isAlive) return;
        this.deleteGuarded(myRev).catch(() => this.session.clock.setTimeout(retry, LEFTOVER_RETRY_MS));
      };
      this.session.clock.setTimeout(retry, LEFTOVER_RETRY_MS);
    }
  }

  /** Deletes this session's key if its createRevision is `rev`; forgets the leftover. @throws the KV's errors */
  private async deleteGuarded(rev: number): Promise<void> {
    await this.kv.txn({
      compare: [{ key: this.key, target: 'CREATE', result: 'EQUAL', createRevision: rev }],
      success: [{ deleteRange: { key: this.key } }],
    });
    if (this.leftover === rev) this.leftover = undefined;
  }
}
