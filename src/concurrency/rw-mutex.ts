/**
 * `RWMutex`: a distributed readers-writer lock (etcd's recipes `RWMutex`).
 * @module
 */
import { ErrorCode, FaultError, UsageError } from '../errors.js';
import type { KV } from '../server/kv.js';
import { createUniqueKey, deleteLeftovers, deleteOwnKey, dirOf, heldLock, leaseHex, sessionOf } from './keys.js';
import type { HeldLock, LockOptions } from './mutex.js';
import { Scope, optionsOf } from './scope.js';
import type { Session } from './session.js';
import { waitDelete } from './wait.js';

/** Which side of a {@link RWMutex} is held. */
export type RWLockMode = 'read' | 'write';

/**
 * A distributed readers-writer lock (etcd's recipes `RWMutex`).
 *
 * A reader creates `<prefix>read/<lease hex>-<unique>` and a writer
 * `<prefix>write/<lease hex>-<unique>`, attached to the session's lease. A reader holds
 * the lock once no *writer* key created before its own remains; a writer
 * once no key at all created before its own remains. Each waiter watches
 * only the newest blocking key and re-checks when it goes, so requests are
 * served in the order they were made: a writer waits for the readers before
 * it, and readers after a waiting writer wait for it (no writer starvation).
 *
 * The fencing token of a held side is its key's createRevision. Writers'
 * tokens strictly increase from one writer to the next, and every reader
 * token is greater than the token of any writer that held the lock before
 * the reader; concurrent readers do not exclude each other. Guarantees and
 * caveats are those of {@link Mutex}: check the token in the resource, and
 * stop when the session is lost.
 *
 * One RWMutex object holds one side at a time.
 *
 * ```ts
 * const rw = new RWMutex(session, 'locks/catalog');
 * await rw.withRLock(async () => readCatalog());
 * await rw.withLock(async (lock) => writeCatalog({ fencingToken: lock.fencingToken }));
 * ```
 */
export class RWMutex {
  /** The session whose lease holds the keys. */
  readonly session: Session;
  /** The lock's key prefix, ending with `/`. */
  readonly prefix: string;

  private held: { lock: HeldLock; mode: RWLockMode } | undefined;
  private busy = false;
  /** Settles when the release under way, if any, has (a release after it waits for it). */
  private releasing: Promise<void> | undefined;
  /** Keys of failed acquires whose deletion failed too (see `deleteOwnKey`). */
  private readonly leftovers = new Set<string>();

  /**
   * @param prefix - the lock's name; a `/` is appended unless present
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an empty prefix, or a `session` that is not a Session
   */
  constructor(session: Session, prefix: string) {
    this.session = sessionOf(session, 'the mutex\'s session');
    this.prefix = dirOf(prefix);
  }

  private get kv(): KV {
    return this.session.kv;
  }

  /** The side held by this object, if any. */
  get mode(): RWLockMode | undefined {
    return this.held?.mode;
  }

  /** The held lock, if any. */
  get current(): HeldLock | undefined {
    return this.held?.lock;
  }

  /**
   * Waits for the read side (etcd's `RLock`).
   * @throws as {@link Mutex.lock}; UsageError `QUORUMKV_INVALID_ARGUMENT` when this object already holds or is acquiring a side
   */
  rlock(options: LockOptions = {}): Promise<HeldLock> {
    return this.acquire('read', options);
  }

  /**
   * Waits for the write side (etcd's `Lock`).
   * @throws as {@link Mutex.lock}; UsageError `QUORUMKV_INVALID_ARGUMENT` when this object already holds or is acquiring a side
   */
  lock(options: LockOptions = {}): Promise<HeldLock> {
    return this.acquire('write', options);
  }

  /**
   * Releases the read side.
   * @throws UsageError `QUORUMKV_LOCK_NOT_HELD` when the read side is not held; as {@link Mutex.unlock}
   */
  runlock(): Promise<void> {
    return this.release('read');
  }

  /**
   * Releases the write side.
   * @throws UsageError `QUORUMKV_LOCK_NOT_HELD` when the write side is not held; as {@link Mutex.unlock}
   */
  unlock(): Promise<void> {
    return this.release('write');
  }

  /** Runs `fn` holding the read side, then releases it (see {@link Mutex.withLock}). */
  withRLock<T>(fn: (lock: HeldLock, signal: AbortSignal) => T | Promise<T>, options: LockOptions = {}): Promise<T> {
    return this.with('read', fn, options);
  }

  /** Runs `fn` holding the write side, then releases it (see {@link Mutex.withLock}). */
  withLock<T>(fn: (lock: HeldLock, signal: AbortSignal) => T | Promise<T>, options: LockOptions = {}): Promise<T> {
    return this.with('write', fn, options);
  }

  // ---------------------------------------------------------- internals

  private async with<T>(mode: RWLockMode, fn: (lock: HeldLock, signal: AbortSignal) => T | Promise<T>, options: LockOptions): Promise<T> {
    options = optionsOf(options, 'withLock options', ['signal']);
    if (typeof fn !== 'function') throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'withLock needs a function');
    const lock = await this.acquire(mode, options);
    const scope = new Scope(options.signal, this.session);
    let result: T;
    try {
      result = await fn(lock, scope.signal);
    } catch (err) {
      scope.dispose();
      await this.release(mode).catch(() => undefined);
      throw err;
    }
    scope.dispose();
    await this.release(mode);
    return result;
  }

  private async acquire(mode: RWLockMode, options: LockOptions): Promise<HeldLock> {
    options = optionsOf(options, 'lock options', ['signal']);
    if (this.held !== undefined || this.busy) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'rwmutex: this object already holds or is acquiring a side');
    }
    this.busy = true;
    const scope = new Scope(options.signal, this.session);
    let key: string | undefined;
    let rev = 0;
    try {
      scope.check();
      await deleteLeftovers(this.kv, this.leftovers);
      const dir = `${this.prefix}${mode}/`;
      const created = await createUniqueKey(this.kv, `${dir}${leaseHex(this.session.lease)}-`, '', this.session.lease, (k) => (key = k));
      key = created.key;
      rev = created.revision;
      // readers wait for earlier writers, writers for every earlier key
      const blockers = mode === 'read' ? `${this.prefix}write/` : this.prefix;
      for (;;) {
        scope.check();
        const res = await this.kv.range({
          key: blockers,
          prefix: true,
          maxCreateRevision: rev - 1,
          sortTarget: 'CREATE',
          sortOrder: 'DESCEND',
          limit: 1,
          keysOnly: true,
        });
        const last = res.kvs[0];
        if (last === undefined) break;
        await waitDelete(this.kv, last.key, res.header.revision + 1, scope.signal);
      }
      const mine = await this.kv.range({ key });
      if (mine.kvs[0]?.createRevision !== rev) {
        throw this.session.error ?? new FaultError(ErrorCode.SESSION_EXPIRED, 'rwmutex: session expired (the lock key is gone)');
      }
      scope.check();
      const lock = heldLock(key, rev, mine.header.revision);
      this.held = { lock, mode };
      return lock;
    } catch (err) {
      if (key !== undefined) await deleteOwnKey(this.kv, this.session, key, this.leftovers);
      throw err;
    } finally {
      scope.dispose();
      this.busy = false;
    }
  }

  /**
   * Deletes the held key of side `mode`. A release called while another is
   * under way runs once that one has settled, as if called after it.
   */
  private async release(mode: RWLockMode): Promise<void> {
    while (this.releasing !== undefined) await this.releasing;
    const held = this.held;
    if (held === undefined || held.mode !== mode) throw new UsageError(ErrorCode.LOCK_NOT_HELD, `rwmutex: the ${mode} side is not held by this object`);
    let settle = (): void => undefined;
    const releasing = new Promise<void>((resolve) => (settle = resolve));
    this.releasing = releasing;
    try {
      const res = await this.kv.txn({ compare: [held.lock.isOwner()], success: [{ deleteRange: { key: held.lock.key } }] });
      this.held = undefined;
      if (!res.succeeded) throw new FaultError(ErrorCode.LOCK_NOT_HELD, 'rwmutex: the lock was lost before unlock (its key is gone)');
    } catch (err) {
      if (!this.session.isAlive) this.held = undefined;
      throw err;
    } finally {
      if (this.releasing === releasing) this.releasing = undefined;
      settle();
    }
  }
}
