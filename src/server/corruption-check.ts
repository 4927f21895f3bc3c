/**
 * The periodic corruption check (etcd's `--experimental-corrupt-check-time`),
 * done through the log because members talk to each other only through Raft:
 *
 * 1. the leader proposes a hash-check entry every `corruptCheckMs`;
 * 2. every member, when it applies that entry at index `k`, hashes its store
 *    at exactly that point (`MvccStore.hash()`, the same state on every
 *    healthy member), and proposes a hash report `(k, memberId, hash)`;
 * 3. every member applies the reports in log order with {@link HashReports}:
 *    once a quorum of the voters reported the same hash for `k`, any member
 *    that reported another hash is corrupt, and a `CORRUPT` alarm is raised
 *    for it, as part of applying the report. If every voter reported and no
 *    hash has a quorum, every reporter is flagged.
 *
 * The decision is a function of the log alone, so every member raises the
 * same alarm at the same index. A member that misses a check (restart,
 * partition) simply does not report; the check is decided by the others.
 * @module
 */
import type { AlarmMember } from './alarms.js';

/** How many recent checks keep their reports. */
const KEEP_CHECKS = 4;

/** One member's report for one check. */
export interface HashReport {
  /** Log index of the hash-check entry the hash was taken at. */
  check: number;
  memberId: string;
  /** `MvccStore.hash()` at that index. */
  hash: number;
  /** The store revision at that index (for logs). */
  revision: number;
}

interface CheckState {
  reports: Map<string, number>;
  /** The hash a quorum agreed on, once one did. */
  agreed: number | undefined;
  /** Set once every voter reported without a quorum. */
  split: boolean;
}

/**
 * The reports of recent checks (replicated state: part of the server state
 * saved with each applied report and carried in Raft snapshots).
 */
export class HashReports {
  private checks = new Map<number, CheckState>();

  /**
   * Applies one report. Reports of a check older than the last few, and a
   * second report of the same member for a check, are ignored.
   * @param voters - the voters at this log position
   * @returns the members found corrupt by this report (an alarm to raise for each)
   */
  apply(r: HashReport, voters: string[]): AlarmMember[] {
    let st = this.checks.get(r.check);
    if (st === undefined) {
      const oldest = Math.min(...this.checks.keys());
      if (this.checks.size >= KEEP_CHECKS && r.check < oldest) return [];
      st = { reports: new Map(), agreed: undefined, split: false };
      this.checks.set(r.check, st);
      while (this.checks.size > KEEP_CHECKS) this.checks.delete(Math.min(...this.checks.keys()));
    }
    if (st.reports.has(r.memberId)) return [];
    st.reports.set(r.memberId, r.hash);
    const quorum = Math.floor(voters.length / 2) + 1;
    if (st.agreed === undefined && !st.split) {
      // only the voters' reports make a quorum (a learner's, or a removed
      // member's, is judged against it like any other)
      const counts = new Map<number, number>();
      for (const [m, h] of st.reports) if (voters.includes(m)) counts.set(h, (counts.get(h) ?? 0) + 1);
      for (const [h, n] of counts) if (n >= quorum) st.agreed = h;
      if (st.agreed !== undefined) {
        const out: AlarmMember[] = [];
        for (const [m, h] of st.reports) if (h !== st.agreed) out.push({ memberId: m, alarm: 'CORRUPT' });
        return out;
      }
      if (voters.every((v) => st!.reports.has(v))) {
        st.split = true;
        return [...st.reports.keys()].map((m) => ({ memberId: m, alarm: 'CORRUPT' as const }));
      }
      return [];
    }
    if (st.split || r.hash !== st.agreed) return [{ memberId: r.memberId, alarm: 'CORRUPT' }];
    return [];
  }

  /** The state as plain tuples for encoding: `[check, agreed|null, split, [member, hash]...]`. */
  toTuples(): unknown[] {
    return [...this.checks].map(([check, st]) => [check, st.agreed ?? null, st.split, [...st.reports]]);
  }

  /** Replaces the state with {@link toTuples} output. */
  reset(t: unknown): void {
    if (!Array.isArray(t)) throw new TypeError('hash reports: not an array');
    const checks = new Map<number, CheckState>();
    for (const c of t) {
      if (!Array.isArray(c) || typeof c[0] !== 'number' || !Array.isArray(c[3])) throw new TypeError('hash reports: malformed check');
      const reports = new Map<string, number>();
      for (const r of c[3] as unknown[]) {
        if (!Array.isArray(r) || typeof r[0] !== 'string' || typeof r[1] !== 'number') throw new TypeError('hash reports: malformed report');
        reports.set(r[0], r[1]);
      }
      checks.set(c[0], { reports, agreed: typeof c[1] === 'number' ? c[1] : undefined, split: c[2] === true });
    }
    this.checks = checks;
  }

  /** Forgets every check (restore from a backup: a new cluster). */
  clear(): void {
    this.checks.clear();
  }
}
