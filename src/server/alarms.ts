/**
 * Cluster alarms (etcd's `AlarmRequest` / `AlarmMember`): a replicated set of
 * `(memberId, alarm)` pairs. An alarm is raised or cleared by a log entry, so
 * every member holds the same set at the same log position, and what it
 * forbids is decided identically everywhere (etcd's capped and corrupt
 * appliers):
 * - `NOSPACE`: a member's database grew past `quotaBackendBytes`. Requests
 *   that grow the store (put, txn with a put, lease grant) fail with
 *   `QUORUMKV_NO_SPACE`; reads, deletes, lease revoke and keep-alive, and
 *   compaction still work.
 * - `CORRUPT`: the periodic corruption check found a member whose store hash
 *   differs from the majority's. Every write fails with `QUORUMKV_CORRUPT`;
 *   the corrupt member also refuses reads.
 * @module
 */
import type { WriteRequest } from '../mvcc/index.js';
import type { RequestOp, TxnRequest } from '../mvccpb/index.js';

/** The kinds of alarm (etcd's `AlarmType`, without `NONE`). */
export type AlarmType = 'NOSPACE' | 'CORRUPT';

/** The alarm kinds, in a fixed order. */
export const ALARM_TYPES: readonly AlarmType[] = ['NOSPACE', 'CORRUPT'];

/** One active alarm (etcd's `AlarmMember`): which member raised it, and what. */
export interface AlarmMember {
  /** The member the alarm is about (its id). */
  memberId: string;
  /** What is wrong: `NOSPACE` (database over the quota) or `CORRUPT` (hash differs from the majority's). */
  alarm: AlarmType;
}

/** True for one of {@link ALARM_TYPES}. */
export function isAlarmType(v: unknown): v is AlarmType {
  return v === 'NOSPACE' || v === 'CORRUPT';
}

function opGrows(op: RequestOp): boolean {
  if ('requestPut' in op) return true;
  if ('requestTxn' in op) return txnGrows(op.requestTxn);
  return false;
}

function txnGrows(txn: TxnRequest): boolean {
  return (txn.success ?? []).some(opGrows) || (txn.failure ?? []).some(opGrows);
}

/**
 * True for a request that may grow the store, refused while a `NOSPACE`
 * alarm is active: a put, a txn with a put in either branch (nested txns
 * included), a lease grant (etcd's `applierV3Capped`).
 */
export function growsStore(req: WriteRequest): boolean {
  if ('put' in req || 'leaseGrant' in req) return true;
  if ('txn' in req) return txnGrows(req.txn);
  return false;
}

/**
 * The set of active alarms. Mutations are idempotent (raising an active
 * alarm or clearing an absent one changes nothing), so an alarm entry may be
 * applied twice after a crash without harm.
 */
export class AlarmTable {
  private readonly active = new Map<string, AlarmMember>();

  private static keyOf(a: AlarmMember): string {
    return `${a.alarm}\u0000${a.memberId}`;
  }

  /** Every active alarm, sorted by alarm then member id. */
  list(): AlarmMember[] {
    return [...this.active.values()]
      .map((a) => ({ ...a }))
      .sort((x, y) => (x.alarm === y.alarm ? (x.memberId < y.memberId ? -1 : x.memberId > y.memberId ? 1 : 0) : x.alarm < y.alarm ? -1 : 1));
  }

  /** True when an alarm of this kind is active (for `memberId`, or for any member). */
  has(alarm: AlarmType, memberId?: string): boolean {
    if (memberId !== undefined) return this.active.has(AlarmTable.keyOf({ alarm, memberId }));
    for (const a of this.active.values()) if (a.alarm === alarm) return true;
    return false;
  }

  /** Raises an alarm. @returns true when it was not active before */
  activate(a: AlarmMember): boolean {
    const k = AlarmTable.keyOf(a);
    if (this.active.has(k)) return false;
    this.active.set(k, { memberId: a.memberId, alarm: a.alarm });
    return true;
  }

  /**
   * Clears the alarms that match: of kind `alarm` (every kind when omitted)
   * and of `memberId` (every member when omitted).
   * @returns the alarms cleared
   */
  deactivate(filter: { alarm?: AlarmType; memberId?: string }): AlarmMember[] {
    const out: AlarmMember[] = [];
    for (const [k, a] of this.active) {
      if (filter.alarm !== undefined && a.alarm !== filter.alarm) continue;
      if (filter.memberId !== undefined && a.memberId !== filter.memberId) continue;
      this.active.delete(k);
      out.push(a);
    }
    return out;
  }

  /** Replaces every alarm (snapshot restore). */
  reset(alarms: AlarmMember[]): void {
    this.active.clear();
    for (const a of alarms) this.activate(a);
  }

  /** The alarms as plain tuples `[memberId, alarm]` for encoding. */
  toTuples(): [string, AlarmType][] {
    return this.list().map((a) => [a.memberId, a.alarm]);
  }

  /** Alarms from {@link toTuples}; malformed items are an error. */
  static fromTuples(t: unknown): AlarmMember[] {
    if (!Array.isArray(t)) throw new TypeError('alarms: not an array');
    return t.map((x) => {
      if (!Array.isArray(x) || typeof x[0] !== 'string' || !isAlarmType(x[1])) throw new TypeError('alarms: malformed alarm');
      return { memberId: x[0], alarm: x[1] };
    });
  }
}
