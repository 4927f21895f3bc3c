/**
 * The lessor: grants, revokes, renews and expires leases, and tracks which
 * keys each lease holds. Modelled on etcd's `lease.lessor`
 * (server/lease/lessor.go), with these rules:
 *
 * - Replicated state: lease ids, granted TTLs, attached keys and the id
 *   counter. Every member changes it the same way, in log order, through
 *   {@link Lessor.grant}, {@link Lessor.revoke}, {@link Lessor.attach} and
 *   {@link Lessor.detach}; nothing there reads a clock.
 * - Expiry is local: only a promoted lessor (the Raft leader) tracks expiry
 *   times with its injected clock. It reports {@link Lessor.expired} leases;
 *   the leader then proposes their revoke, and the revoke is applied on every
 *   member like any other entry. {@link Lessor.promote} restarts every TTL,
 *   so a lease lives at least its TTL after a leader change, and spreads
 *   expiries that would pile up (etcd behaviour; etcd's optional TTL
 *   checkpoints are not implemented).
 * - The lessor does not know the key-value store: revoking deletes the
 *   attached keys through a {@link RangeDeleter} the store hands in.
 *
 * @module
 */
import createDebug from 'debug';
import { ErrorCode, FaultError, UsageError } from '../errors.js';
import { describeValue } from '../arg-values.js';
import { checkOptionsArg } from '../option-keys.js';
import { FOREVER, Lease, type LeaseItem } from './lease.js';

const log = createDebug('quorumkv:lease');

/** etcd's `MaxLeaseTTL`: the largest TTL a grant may ask for, in seconds. */
export const MAX_LEASE_TTL = 9_000_000_000;

/**
 * Most expired leases the leader revokes a second (etcd's `leaseRevokeRate`):
 * it proposes at most this many expiry revokes a second, and
 * {@link Lessor.promote} spreads the expiries of a pile-up of leases to
 * three quarters of it.
 */
export const LEASE_REVOKE_RATE = 1000;

/**
 * etcd's default minimum TTL in seconds: `ceil(1.5 × election timeout)` with
 * etcd's default 1 s election timeout. Shorter grants are raised to it.
 */
export const DEFAULT_MIN_LEASE_TTL = 2;

/**
 * A write transaction that may only delete, opened by the lessor to delete
 * the keys of a revoked lease in one revision (etcd's `lease.TxnDelete`).
 */
export interface TxnDelete {
  /** Deletes one key (given as bytes). */
  deleteRange(key: Uint8Array): void;
  /** Ends the transaction: its deletions become one revision. */
  end(): void;
}

/** Opens a {@link TxnDelete} on the store (etcd's `lease.RangeDeleter`). */
export type RangeDeleter = () => TxnDelete;

/** Options of a {@link Lessor}. */
export interface LessorOptions {
  /**
   * Minimum TTL in seconds; shorter grants are raised to it when applied.
   * Must be the same on every member (it changes replicated state). Default
   * {@link DEFAULT_MIN_LEASE_TTL}. etcd's minimum is `ceil(1.5 × election
   * timeout in s)`; as the election timeout may differ between members,
   * `KvNode` raises the TTL to it before proposing the grant and leaves
   * this at 1.
   */
  minTtl?: number;
  /**
   * Clock in ms used only while promoted, for expiry: a monotonic one, so
   * that a step of the wall clock does not expire leases at once. Default
   * `performance.now()`.
   */
  now?: () => number;
  /**
   * After {@link Lessor.expired} reports a lease, it is reported again only
   * after this many ms (a positive finite number) if its revoke has not been
   * applied. Default 3000 (etcd).
   */
  expiredRetryMs?: number;
}

/** What {@link Lessor.timeToLive} reports. */
export interface LeaseTimeToLive {
  /** Id of the lease asked about (echoed, also for an unknown lease). */
  id: number;
  /** Remaining seconds rounded down; -1 for an unknown lease. */
  ttl: number;
  /** Granted TTL in seconds; 0 for an unknown lease. */
  grantedTtl: number;
  /** Attached keys in ascending order (empty unless asked). */
  keys: LeaseItem[];
}

interface ExpiryItem {
  id: number;
  time: number;
}

/** Stale heap entries allowed beyond one per lease before the heap is rebuilt. */
const STALE_SLACK = 64;

/** Converts a binary-string lease item back to bytes. */
export function leaseItemToBytes(item: LeaseItem): Uint8Array {
  return new Uint8Array(Buffer.from(item, 'latin1'));
}

/** Converts key bytes to a {@link LeaseItem} (a binary string). */
export function bytesToLeaseItem(key: Uint8Array): LeaseItem {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
}

/**
 * Checks the id given to a lease lookup ({@link Lessor.timeToLive},
 * {@link Lessor.revoke}, {@link Lessor.renew}): any safe integer, one never
 * granted being an unknown lease. Anything else (`NaN`, `1.5`, the string
 * `'5'`) names no lease a grant can make: it is refused, not answered as
 * an unknown lease (`'5'` would be, with lease 5 granted).
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT`
 */
function checkLookupId(id: unknown, what: string): void {
  if (typeof id !== 'number' || !Number.isSafeInteger(id)) {
    throw new UsageError(ErrorCode.INVALID_ARGUMENT, `${what}: lease id must be a safe integer, got ${describeValue(id)}`);
  }
}

/**
 * The lessor. See the module doc for what is replicated and what is local.
 *
 * @example
 * ```ts
 * const lessor = new Lessor({ now: () => clock.now() });
 * lessor.setRangeDeleter(() => store.deleteTxn());
 * const l = lessor.grant(0, 10); // id 1, TTL 10 s
 * lessor.promote(0);            // this member became the leader
 * for (const id of lessor.expired()) propose({ leaseRevoke: { id } });
 * ```
 */
export class Lessor {
  private readonly leaseMap = new Map<number, Lease>();
  private readonly itemMap = new Map<LeaseItem, number>();
  private rd: RangeDeleter | undefined;
  private primary = false;
  private lastId = 0;
  /** Min-heap of expiry times; an entry is valid only while it matches `scheduled`. */
  private heap: ExpiryItem[] = [];
  private readonly scheduled = new Map<number, number>();
  private readonly minTtl: number;
  private readonly now: () => number;
  private readonly expiredRetryMs: number;

  /**
   * @throws UsageError `QUORUMKV_INVALID_CONFIG` for options that are not an
   *   object, an option of a name they do not declare, a `minTtl` that is not a
   *   positive integer, an `expiredRetryMs` that is not a positive finite
   *   number of ms, or a `now` that is not a function
   */
  constructor(options: LessorOptions = {}) {
    // null threw a TypeError; a misspelled option (minTTL) left its default in force
    checkOptionsArg(options, ['minTtl', 'now', 'expiredRetryMs'] satisfies (keyof LessorOptions)[], 'Lessor options', ErrorCode.INVALID_CONFIG);
    const minTtl = options.minTtl ?? DEFAULT_MIN_LEASE_TTL;
    if (!Number.isSafeInteger(minTtl) || minTtl < 1) {
      throw new UsageError(ErrorCode.INVALID_CONFIG, `lessor minTtl must be a positive integer, got ${describeValue(minTtl)}`);
    }
    const retry = options.expiredRetryMs ?? 3000;
    // NaN or Infinity never reported an expired lease again (one whose
    // revoke was lost stayed, with its keys); 0 or less reported it again
    // within the same call, for ever
    if (typeof retry !== 'number' || !Number.isFinite(retry) || retry <= 0) {
      throw new UsageError(ErrorCode.INVALID_CONFIG, `lessor expiredRetryMs must be a positive finite number of ms, got ${describeValue(retry)}`);
    }
    if (options.now !== undefined && typeof options.now !== 'function') {
      throw new UsageError(ErrorCode.INVALID_CONFIG, 'lessor now must be a function returning ms');
    }
    this.minTtl = minTtl;
    this.now = options.now ?? (() => performance.now());
    this.expiredRetryMs = retry;
  }

  /** Hands in how the lessor deletes the keys of a revoked lease. */
  setRangeDeleter(rd: RangeDeleter): void {
    this.rd = rd;
  }

  /** The minimum TTL in seconds. */
  minLeaseTtl(): number {
    return this.minTtl;
  }

  /** Largest lease id granted so far (replicated; automatic ids continue after it). */
  lastLeaseId(): number {
    return this.lastId;
  }

  /**
   * The id a grant with `id` = 0 would get: one more than the largest id
   * granted so far, so ids grow in grant order (deterministic on every
   * member). Once that would pass 2^53 - 1 (a grant with an explicit id up
   * there), the lowest id no live lease holds: an automatic id is always a
   * safe integer and never one a live lease holds, but may then be one
   * revoked before (a client still keeping that lease alive renews the new
   * one; docs/mvcc.md, "Where the store differs from etcd"). Which id a
   * grant takes is replicated state: the rule must not change between
   * versions that apply the same log.
   */
  nextLeaseId(): number {
    if (this.lastId < Number.MAX_SAFE_INTEGER) return this.lastId + 1;
    let id = 1;
    while (this.leaseMap.has(id)) id++;
    return id;
  }

  /**
   * Checks a grant without changing anything.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an id that is not a
   *   non-negative safe integer, a non-integer TTL, or a TTL above
   *   {@link MAX_LEASE_TTL} ("etcdserver: too large lease TTL")
   * @throws UsageError `QUORUMKV_LEASE_EXISTS` when `id` is already granted
   */
  checkGrant(id: number, ttl: number): void {
    if (!Number.isSafeInteger(id) || id < 0) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `lease id must be a non-negative safe integer, got ${describeValue(id)}`);
    }
    if (!Number.isSafeInteger(ttl)) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `lease TTL must be an integer number of seconds, got ${describeValue(ttl)}`);
    }
    if (ttl > MAX_LEASE_TTL) throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'etcdserver: too large lease TTL');
    if (id !== 0 && this.leaseMap.has(id)) throw new UsageError(ErrorCode.LEASE_EXISTS, 'etcdserver: lease already exists');
  }

  /**
   * Grants a lease (replicated state change). `id` 0 picks
   * {@link nextLeaseId}. A TTL below the minimum (including 0 or negative) is
   * raised to it, as etcd does. On a promoted lessor the lease expires
   * `ttl` seconds from now.
   * @param id - lease id, or 0
   * @param ttl - seconds
   * @throws UsageError as {@link checkGrant}
   */
  grant(id: number, ttl: number): Lease {
    this.checkGrant(id, ttl);
    const leaseId = id === 0 ? this.nextLeaseId() : id;
    const l = new Lease(leaseId, Math.max(ttl, this.minTtl));
    this.leaseMap.set(leaseId, l);
    if (leaseId > this.lastId) this.lastId = leaseId;
    if (this.primary) {
      l.refresh(this.now());
      this.pushExpiry(l);
    }
    return l;
  }

  /**
   * Revokes a lease (replicated state change): removes it and deletes its
   * keys through the range deleter, in ascending key order, in one write
   * transaction (one revision; none when it has no keys).
   * @param id - the lease id, a safe integer
   * @throws UsageError `QUORUMKV_LEASE_NOT_FOUND` ("etcdserver: requested lease not found");
   *   `QUORUMKV_INVALID_ARGUMENT` for an id that is not a safe integer
   *   (nothing is revoked)
   */
  revoke(id: number): void {
    checkLookupId(id, 'revoke');
    const l = this.leaseMap.get(id);
    if (l === undefined) throw new UsageError(ErrorCode.LEASE_NOT_FOUND, 'etcdserver: requested lease not found');
    const keys = l.sortedItems();
    this.leaseMap.delete(id);
    this.scheduled.delete(id);
    if (this.rd === undefined) {
      for (const k of keys) this.itemMap.delete(k);
      return;
    }
    const txn = this.rd();
    for (const k of keys) txn.deleteRange(leaseItemToBytes(k));
    txn.end();
    // the deleter detaches each key; anything left over goes too
    for (const k of keys) if (this.itemMap.get(k) === id) this.itemMap.delete(k);
  }

  /**
   * Attaches a key to a lease (called by the store on put).
   * @throws UsageError `QUORUMKV_LEASE_NOT_FOUND`
   */
  attach(id: number, item: LeaseItem): void {
    const l = this.leaseMap.get(id);
    if (l === undefined) throw new UsageError(ErrorCode.LEASE_NOT_FOUND, 'etcdserver: requested lease not found');
    l.items.add(item);
    this.itemMap.set(item, id);
  }

  /** Detaches a key from a lease (called by the store on put and delete); unknown leases are ignored. */
  detach(id: number, item: LeaseItem): void {
    const l = this.leaseMap.get(id);
    if (l !== undefined) l.items.delete(item);
    if (this.itemMap.get(item) === id) this.itemMap.delete(item);
  }

  /** The lease a key is attached to, 0 for none. */
  getLease(item: LeaseItem): number {
    return this.itemMap.get(item) ?? 0;
  }

  /** The lease with this id, if granted and not revoked. */
  lookup(id: number): Lease | undefined {
    return this.leaseMap.get(id);
  }

  /** How many leases are granted and not revoked (without listing them, as {@link leases} does). */
  leaseCount(): number {
    return this.leaseMap.size;
  }

  /** Every lease, by ascending id. */
  leases(): Lease[] {
    return [...this.leaseMap.values()].sort((a, b) => a.id - b.id);
  }

  /**
   * Remaining time of a lease. An unknown lease is not an error: TTL -1,
   * granted TTL 0, no keys (etcd). On a lessor that is not promoted the
   * remaining time is the granted TTL (only the leader knows expiry times;
   * the server asks the leader).
   * @param id - the lease id, a safe integer
   * @param opts.keys - list the attached keys too (default false)
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an id that is not a
   *   safe integer, or options that are not `{ keys }` with a boolean
   */
  timeToLive(id: number, opts: { keys?: boolean } = {}): LeaseTimeToLive {
    checkLookupId(id, 'timeToLive');
    checkOptionsArg(opts, ['keys'], 'timeToLive options');
    if (opts.keys !== undefined && typeof opts.keys !== 'boolean') throw new UsageError(ErrorCode.INVALID_ARGUMENT, `timeToLive options.keys must be a boolean, got ${typeof opts.keys}`);
    const l = this.leaseMap.get(id);
    if (l === undefined) return { id, ttl: -1, grantedTtl: 0, keys: [] };
    const rem = l.remainingMs(this.now());
    const ttl = rem === FOREVER ? l.ttl : Math.floor(rem / 1000);
    return { id, ttl, grantedTtl: l.ttl, keys: opts.keys === true ? l.sortedItems() : [] };
  }

  /**
   * Renews a lease (keep-alive): its expiry becomes now + TTL. Only the
   * primary (leader) renews; followers forward keep-alives to it.
   * @param id - the lease id, a safe integer
   * @returns the TTL in seconds
   * @throws FaultError `QUORUMKV_NOT_LEADER` when not promoted
   * @throws UsageError `QUORUMKV_LEASE_NOT_FOUND` for an unknown lease, or
   *   one that has already expired (its revoke is on its way);
   *   `QUORUMKV_INVALID_ARGUMENT` for an id that is not a safe integer
   */
  renew(id: number): number {
    checkLookupId(id, 'renew');
    if (!this.primary) throw new FaultError(ErrorCode.NOT_LEADER, 'not a primary lessor');
    const l = this.leaseMap.get(id);
    const now = this.now();
    if (l === undefined || l.expiry <= now) throw new UsageError(ErrorCode.LEASE_NOT_FOUND, 'etcdserver: requested lease not found');
    l.refresh(now);
    this.pushExpiry(l);
    return l.ttl;
  }

  /** True while promoted. */
  isPrimary(): boolean {
    return this.primary;
  }

  /**
   * Makes this lessor the primary (call when this member becomes the Raft
   * leader): every lease expires `ttl` seconds + `extendMs` from now, so a
   * lease's TTL restarts on leader change (etcd's `Promote`). With
   * {@link LEASE_REVOKE_RATE} leases or more, expiries that pile up are
   * spread, as etcd's `Promote` does: past three quarters of the revoke rate
   * in a second, each further lease expires later, by a second for every
   * three quarters of the rate before it. Otherwise the leases of holders
   * gone during a long partition would all expire together, and their
   * revokes, at the revoke rate, would hold back for seconds the revoke of
   * every lease expiring after them (a lock of a crashed holder, say).
   * Spreading only ever adds time: a lease still lives at least its TTL
   * (plus `extendMs`) after the promotion.
   * @param extendMs - extra time in ms, a finite number, 0 or more (etcd
   *   passes the election timeout)
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for another `extendMs`
   *   (nothing changes)
   */
  promote(extendMs = 0): void {
    // NaN made every lease never expire until renewed; a negative or
    // infinite extension expired them all at once or never
    if (typeof extendMs !== 'number' || !Number.isFinite(extendMs) || extendMs < 0) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `lessor promote extendMs must be a finite number of ms, 0 or more, got ${describeValue(extendMs)}`);
    }
    this.primary = true;
    const now = this.now();
    this.heap = [];
    this.scheduled.clear();
    for (const l of this.leaseMap.values()) l.refresh(now, extendMs);
    if (this.leaseMap.size >= LEASE_REVOKE_RATE) this.spreadExpiries(now, extendMs);
    for (const l of this.leaseMap.values()) this.pushExpiry(l);
    log('promoted: %d leases, their TTLs restart (+%d ms)', this.leaseMap.size, extendMs);
  }

  /**
   * Spreads the expiries of leases that would expire more than three
   * quarters of {@link LEASE_REVOKE_RATE} within a second of each other
   * (etcd's `Promote`, after "adjust expiries in case of overlap"): walking
   * the leases by expiry, a window starts at the first one and lasts a
   * second; once it holds that many, each further lease is pushed back to
   * expire (its rank in the window / three quarters of the rate) seconds
   * after the window's start, and the window grows with it (by etcd's
   * rule: to the start plus that push). A lease beyond the window starts a
   * new one.
   */
  private spreadExpiries(now: number, extendMs: number): void {
    const leases = [...this.leaseMap.values()].sort((a, b) => a.expiry - b.expiry);
    const target = (3 * LEASE_REVOKE_RATE) / 4;
    let baseWindow = leases[0]!.expiry - now;
    let nextWindow = baseWindow + 1000;
    let expires = 0;
    let spread = 0;
    for (const l of leases) {
      const remaining = l.expiry - now;
      if (remaining > nextWindow) {
        baseWindow = remaining;
        nextWindow = baseWindow + 1000;
        expires = 1;
        continue;
      }
      expires++;
      if (expires <= target) continue;
      const delay = (1000 * expires) / target - (remaining - baseWindow);
      nextWindow = baseWindow + delay;
      l.refresh(now, delay + extendMs);
      spread++;
    }
    if (spread > 0) log('promoted: %d of %d leases expire later, at most %d a second', spread, leases.length, target);
  }

  /** Stops tracking expiry (call when this member stops being the leader). */
  demote(): void {
    this.primary = false;
    this.heap = [];
    this.scheduled.clear();
    for (const l of this.leaseMap.values()) l.expiry = FOREVER;
    log('demoted: expiry no longer tracked here');
  }

  /**
   * Leases past their expiry, for the leader to propose their revoke, by
   * ascending expiry. A reported lease is reported again only after
   * `expiredRetryMs` if it is still there. Empty when not promoted.
   * @param limit - at most this many ids: a whole number, 0 or more, or
   *   `Infinity` (the default: all)
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for another `limit`
   *   (nothing is reported, nothing changes)
   */
  expired(limit = Number.POSITIVE_INFINITY): number[] {
    // NaN reported nothing, at every call: no lease ever expired; a
    // fraction reported one more lease than the limit
    if (typeof limit !== 'number' || !(Number.isSafeInteger(limit) || limit === Number.POSITIVE_INFINITY) || limit < 0) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `lessor expired limit must be a whole number, 0 or more, or Infinity, got ${describeValue(limit)}`);
    }
    if (!this.primary) return [];
    const now = this.now();
    const out: number[] = [];
    while (this.heap.length > 0 && out.length < limit) {
      const top = this.heap[0]!;
      if (this.leaseMap.get(top.id) === undefined || this.scheduled.get(top.id) !== top.time) {
        this.popExpiry(); // revoked, or superseded by a refresh
        continue;
      }
      if (top.time > now) break;
      this.popExpiry();
      out.push(top.id);
      this.schedule(top.id, now + this.expiredRetryMs);
    }
    if (out.length > 0) log('expired: %j', out);
    return out;
  }

  /**
   * Drops every lease (before restoring from a snapshot). Expiry tracking
   * restarts on the next {@link promote}; a promoted lessor stays promoted
   * and leases restored afterwards start their TTL when restored.
   * @param lastId - the largest lease id granted so far (see {@link lastLeaseId}), a safe integer, 0 or more
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for another `lastId` (nothing is dropped)
   */
  reset(lastId = 0): void {
    // a string made the next automatic id a string ('5' + 1 = '51')
    if (typeof lastId !== 'number' || !Number.isSafeInteger(lastId) || lastId < 0) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `lessor reset lastId must be a safe integer, 0 or more, got ${describeValue(lastId)}`);
    }
    this.leaseMap.clear();
    this.itemMap.clear();
    this.heap = [];
    this.scheduled.clear();
    this.lastId = lastId;
  }

  /**
   * Puts back a lease read from storage or a snapshot (no TTL raising, no
   * id checks beyond shape). Keys are attached afterwards with {@link attach}.
   * @param id - the lease id, a safe integer
   * @param ttl - its granted TTL in seconds, a safe integer
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `id` or `ttl` is not a
   *   safe integer (nothing is restored)
   */
  restoreLease(id: number, ttl: number): Lease {
    // a string id became the largest id granted, and the next automatic id a
    // string ('5' + 1 = '51'); NaN made a lease no lookup finds
    if (typeof id !== 'number' || !Number.isSafeInteger(id)) throw new UsageError(ErrorCode.INVALID_ARGUMENT, `lessor restoreLease id must be a safe integer, got ${describeValue(id)}`);
    if (typeof ttl !== 'number' || !Number.isSafeInteger(ttl)) throw new UsageError(ErrorCode.INVALID_ARGUMENT, `lessor restoreLease ttl must be a safe integer, got ${describeValue(ttl)}`);
    const l = new Lease(id, ttl);
    this.leaseMap.set(id, l);
    if (id > this.lastId) this.lastId = id;
    if (this.primary) {
      l.refresh(this.now());
      this.pushExpiry(l);
    }
    return l;
  }

  private pushExpiry(l: Lease): void {
    this.schedule(l.id, l.expiry);
  }

  /**
   * Makes `time` the one valid heap entry of lease `id` (older entries go
   * stale). Stale entries leave the heap when they reach its top, which for
   * a lease of a long TTL renewed often is long after they were pushed: once
   * they outnumber the valid ones, the heap is rebuilt from the valid ones,
   * so that it holds about one entry per lease (etcd updates its lease's
   * queue item in place).
   */
  private schedule(id: number, time: number): void {
    this.scheduled.set(id, time);
    const h = this.heap;
    if (h.length >= 2 * this.scheduled.size + STALE_SLACK) {
      this.rebuildHeap();
      return;
    }
    h.push({ id, time });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.time <= h[i]!.time) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }

  /** Replaces the heap by the valid entries only (those of {@link scheduled}). */
  private rebuildHeap(): void {
    this.heap = [...this.scheduled].map(([id, time]) => ({ id, time }));
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  private popExpiry(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    this.siftDown(0);
  }

  private siftDown(from: number): void {
    const h = this.heap;
    let i = from;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && h[l]!.time < h[m]!.time) m = l;
      if (r < h.length && h[r]!.time < h[m]!.time) m = r;
      if (m === i) break;
      [h[m], h[i]] = [h[i]!, h[m]!];
      i = m;
    }
  }
}
