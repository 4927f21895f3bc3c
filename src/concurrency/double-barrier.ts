/**
 * `DoubleBarrier`: a group of `count` processes that enter together and
 * leave together (etcd's recipes `DoubleBarrier`).
 * @module
 */
import { ErrorCode, FaultError, UsageError } from '../errors.js';
import type { KV } from '../server/kv.js';
import { createUniqueKey, deleteLeftovers, deleteOwnKey, sessionOf, type CreatedKey } from './keys.js';
import type { LockOptions } from './mutex.js';
import { Scope, optionsOf } from './scope.js';
import type { Session } from './session.js';
import { waitDelete, waitForEvent } from './wait.js';

/**
 * Most participants whose keys the last one's ready put compares (etcd's
 * default `--max-txn-ops`, 128): with more, the put is unconditional.
 */
const MAX_READY_COMPARES = 128;

/**
 * A double barrier (etcd's recipes `DoubleBarrier`): `enter()` blocks until
 * `count` participants have entered; `leave()` blocks until every one of
 * them has left.
 *
 * Each participant creates `<key>/waiters/<unique>` attached to its
 * session's lease; the `count`-th one puts `<key>/ready`, which releases the
 * others, in a txn that checks every participant it counted is still in
 * (else it counts again). On leave, participants delete their keys; the oldest one waits
 * for the others and deletes `ready` last. A participant whose session ends
 * loses its key with the lease, so the others are not blocked forever.
 *
 * Guarantees: no `enter()` returns before `count` participants have
 * entered; no `leave()` returns while a participant that entered has not
 * left (or lost its session). A participant beyond `count` is refused with
 * `QUORUMKV_BARRIER_FULL`. Not guaranteed: reuse of the same key for a new
 * round before every participant of the previous one has left.
 *
 * ```ts
 * const barrier = new DoubleBarrier(session, 'barriers/batch-7', 3);
 * await barrier.enter();
 * await doWork();
 * await barrier.leave();
 * ```
 */
export class DoubleBarrier {
  /** The session whose lease holds this participant's key. */
  readonly session: Session;
  /** The barrier's key (its waiters are under `<key>/waiters/`). */
  readonly key: string;
  /** Number of participants. */
  readonly count: number;

  private mine: CreatedKey | undefined;
  /** An `enter()` of this object is in progress (a second one would add a second participant). */
  private entering = false;
  /** Keys of failed enters whose deletion failed too: deleted by the next enter. */
  private readonly leftovers = new Set<string>();

  /**
   * @param key - the barrier's key; one trailing `/` is dropped
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an empty key (`'/'` included), a count below 1, or a `session` that is not a Session
   */
  constructor(session: Session, key: string, count: number) {
    // '/' alone would be the empty key once its trailing '/' is dropped
    if (typeof key !== 'string' || key === '' || key === '/') throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'barrier key must be a non-empty string other than "/"');
    if (!Number.isSafeInteger(count) || count < 1) throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'barrier count must be a positive integer');
    this.session = sessionOf(session, 'the barrier\'s session');
    this.key = key.endsWith('/') ? key.slice(0, -1) : key;
    this.count = count;
  }

  private get kv(): KV {
    return this.session.kv;
  }

  private get waiters(): string {
    return `${this.key}/waiters/`;
  }

  private get ready(): string {
    return `${this.key}/ready`;
  }

  /**
   * Enters the barrier and waits until `count` participants have entered.
   * @throws FaultError `QUORUMKV_BARRIER_FULL` when `count` participants are
   *   already in; `QUORUMKV_ABORTED`, `QUORUMKV_SESSION_EXPIRED` (this
   *   participant's key is removed); errors of the KV. An abort (or a KV
   *   error) that comes once a ready put has released the others counting
   *   this participant in does not fail the call: it has entered (a waiting
   *   participant deletes its key only in a txn that checks no ready was put
   *   since it entered; the last one puts ready only in a txn that checks
   *   every participant it counted is still in, for up to 128 of them)
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when this object already
   *   entered or is entering (nothing is written)
   */
  async enter(options: LockOptions = {}): Promise<void> {
    options = optionsOf(options, 'enter options', ['signal']);
    if (this.mine !== undefined) throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'double barrier: already entered');
    if (this.entering) throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'double barrier: an enter() of this object is already in progress');
    this.entering = true;
    const scope = new Scope(options.signal, this.session);
    let mine: CreatedKey | undefined;
    let attempted: string | undefined;
    /** Set once this participant waits for ready: a ready put since it entered releases it. */
    let waiting = false;
    try {
      scope.check();
      // keys of earlier failed enters that could not be deleted then: each
      // would count as a participant (a ghost) for as long as the session lives
      await deleteLeftovers(this.kv, this.leftovers);
      const before = await this.kv.range({ key: this.waiters, prefix: true, countOnly: true });
      if (before.count >= this.count) throw new FaultError(ErrorCode.BARRIER_FULL, 'double barrier: too many participants');
      mine = await createUniqueKey(this.kv, this.waiters, '', this.session.lease, (k) => (attempted = k));
      for (;;) {
        const entered = await this.kv.range({ key: this.waiters, prefix: true, sortTarget: 'CREATE', sortOrder: 'ASCEND', keysOnly: true });
        if (entered.kvs.length < this.count) break;
        const last = entered.kvs[this.count - 1]!;
        if (mine.revision > last.createRevision) throw new FaultError(ErrorCode.BARRIER_FULL, 'double barrier: too many participants');
        if (mine.revision !== last.createRevision) break;
        scope.check();
        if (!(await this.putReady(entered.kvs.slice(0, this.count)))) continue; // one counted has left: count again
        // the others are released now and count this participant in: an
        // abort that comes after the put does not undo that, so it does
        // not fail the call (a lost session does: its key goes with the lease)
        this.session.assertAlive();
        this.mine = mine;
        return;
      }
      // only a ready put since this participant entered counts: one left
      // from an earlier round (its last participant died before leaving)
      // does not
      let from = mine.revision;
      waiting = true;
      for (;;) {
        const ev = await waitForEvent(this.kv, this.ready, { startRevision: from, match: (e) => e.type === 'PUT', signal: scope.signal });
        if (ev !== undefined) break;
        // the watch ended (its start compacted, say): ready may have been put meanwhile
        scope.check();
        const res = await this.kv.range({ key: this.ready, keysOnly: true });
        if ((res.kvs[0]?.modRevision ?? 0) >= mine.revision) break;
        from = res.header.revision + 1; // not from mine.revision again: it may be compacted
      }
      scope.check();
      this.mine = mine;
    } catch (err) {
      // a waiting participant leaves only if no ready put has counted it in
      // meanwhile: the others would be released counting a participant that
      // is not there. Counted, it has entered (as the last participant whose
      // abort comes after its ready put), unless its session is lost.
      if (waiting && mine !== undefined && this.session.isAlive) {
        const left = await this.leaveUncounted(mine).catch(() => undefined);
        if (left === false && this.session.isAlive) {
          this.mine = mine;
          return;
        }
        if (left === true) throw err;
      }
      const key = mine?.key ?? attempted;
      if (key !== undefined && this.mine === undefined) await deleteOwnKey(this.kv, this.session, key, this.leftovers);
      throw err;
    } finally {
      scope.dispose();
      this.entering = false;
    }
  }

  /**
   * Deletes this participant's key unless `ready` was put since it entered
   * (one txn): true when deleted, false when a ready put counted it in.
   * @throws the KV's errors
   */
  /**
   * Puts the ready key if every participant `counted` is still in (its key
   * has the creation revision counted): a waiting participant that gave up
   * meanwhile deleted its key, and the others must not be released counting
   * it. Resolves false when one has left. Beyond {@link MAX_READY_COMPARES}
   * participants, whose keys one txn cannot compare, the put is unconditional.
   */
  private async putReady(counted: readonly { key: Uint8Array; createRevision: number }[]): Promise<boolean> {
    if (counted.length > MAX_READY_COMPARES) {
      await this.kv.put(this.ready, '');
      return true;
    }
    const res = await this.kv.txn({
      compare: counted.map((k) => ({ key: k.key, target: 'CREATE' as const, result: 'EQUAL' as const, createRevision: k.createRevision })),
      success: [{ put: { key: this.ready, value: '' } }],
    });
    return res.succeeded;
  }

  private async leaveUncounted(mine: CreatedKey): Promise<boolean> {
    const res = await this.kv.txn({
      // a missing ready has modRevision 0
      compare: [{ key: this.ready, target: 'MOD', result: 'LESS', modRevision: mine.revision }],
      success: [{ deleteRange: { key: mine.key } }],
    });
    return res.succeeded;
  }

  /**
   * Leaves the barrier and waits until every participant has left.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when this object has not entered;
   *   FaultError `QUORUMKV_ABORTED`; errors of the KV
   */
  async leave(options: LockOptions = {}): Promise<void> {
    options = optionsOf(options, 'leave options', ['signal']);
    const mine = this.mine;
    if (mine === undefined) throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'double barrier: not entered');
    const scope = new Scope(options.signal, undefined);
    let deleted = false;
    try {
      for (;;) {
        scope.check();
        const res = await this.kv.range({ key: this.waiters, prefix: true, keysOnly: true });
        if (res.kvs.length === 0) break;
        let lowest = res.kvs[0]!;
        let highest = res.kvs[0]!;
        for (const kv of res.kvs) {
          if (kv.modRevision < lowest.modRevision) lowest = kv;
          if (kv.modRevision > highest.modRevision) highest = kv;
        }
        const isLowest = lowest.createRevision === mine.revision;
        if (res.kvs.length === 1 && isLowest) {
          // the last one out closes the barrier
          await this.kv.delete(this.ready);
          await this.kv.delete(mine.key);
          deleted = true;
          break;
        }
        if (isLowest) {
          // the oldest participant waits for the newest one, then looks again
          await waitDelete(this.kv, highest.key, res.header.revision + 1, scope.signal);
          continue;
        }
        if (!deleted) {
          await this.kv.delete(mine.key);
          deleted = true;
        }
        await waitDelete(this.kv, lowest.key, res.header.revision + 1, scope.signal);
      }
      this.mine = undefined;
    } finally {
      scope.dispose();
    }
  }
}
