/**
 * One lease: its id, granted TTL, attached keys and (on the leader only)
 * its expiry time. Modelled on etcd's `lease.Lease` (server/lease/lease.go).
 * @module
 */

/**
 * A key attached to a lease, as a "binary string": each character holds one
 * byte of the key (latin1), so that JavaScript string order is byte order.
 */
export type LeaseItem = string;

/** Expiry of a lease while the lessor is not the primary (never expires). */
export const FOREVER = Number.POSITIVE_INFINITY;

/**
 * A lease. `id` and `ttl` (and the attached keys, which the store derives
 * from its key-values) are replicated state; `expiry` is local to the leader.
 */
export class Lease {
  /** Lease id, a positive safe integer. */
  readonly id: number;
  /** Granted TTL in seconds (after raising to the lessor's minimum). */
  ttl: number;
  /** Wall-clock time in ms at which the lease expires; {@link FOREVER} when not promoted. */
  expiry: number = FOREVER;
  /** Attached keys. */
  readonly items = new Set<LeaseItem>();

  constructor(id: number, ttl: number) {
    this.id = id;
    this.ttl = ttl;
  }

  /** Sets the expiry to `now + ttl + extendMs` (ms). */
  refresh(now: number, extendMs = 0): void {
    this.expiry = now + this.ttl * 1000 + extendMs;
  }

  /**
   * Remaining time in ms at `now`: {@link FOREVER} when not promoted, and
   * never below 0 (an expired lease waits for its revoke to be applied).
   */
  remainingMs(now: number): number {
    if (this.expiry === FOREVER) return FOREVER;
    return Math.max(0, this.expiry - now);
  }

  /** Attached keys in ascending byte order. */
  sortedItems(): LeaseItem[] {
    return [...this.items].sort();
  }
}
