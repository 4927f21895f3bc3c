/**
 * Turning what a simulation recorded into the history the linearizability
 * checker sees: client operations, plus the deletions lease revocations made
 * (which no client operation of the KV model describes), minus the keys that
 * writes outside the model touched.
 * @module
 */
import type { Operation } from '../history.js';
import { compareKeys, inKeyRange, type KeyRange } from '../key-range.js';
import type { KvDeleteOutput, KvGetOutput, KvInput, KvOutput, KvRangeOutput, KvTxnOutput } from '../models/kv-types.js';
import type { CommittedEvent } from './committed-history.js';
import type { LeaseRecord } from './sim-client.js';

/** The key ranges an input reads or writes. */
export function inputRanges(input: KvInput): KeyRange[] {
  switch (input.type) {
    case 'get':
    case 'put':
    case 'delete':
      return [{ key: input.key }];
    case 'range':
      return [{ key: input.key, rangeEnd: input.rangeEnd }];
    case 'txn':
      return [...input.compare, ...input.success, ...input.failure].map((x) => ({ key: x.key }));
  }
}

/** True when two ranges share a key. */
export function rangesOverlap(a: KeyRange, b: KeyRange): boolean {
  const single = (r: KeyRange): boolean => r.rangeEnd === undefined || r.rangeEnd === '';
  if (single(a)) return inKeyRange(b, a.key);
  if (single(b)) return inKeyRange(a, b.key);
  const aEnd = a.rangeEnd!;
  const bEnd = b.rangeEnd!;
  const aBeforeBEnd = bEnd === '\0' || compareKeys(a.key, bEnd) < 0;
  const bBeforeAEnd = aEnd === '\0' || compareKeys(b.key, aEnd) < 0;
  return aBeforeBEnd && bBeforeAEnd;
}

/**
 * The revision a completed client operation made, if it wrote: a put, a
 * delete that deleted, a txn whose branch that ran holds a put or a delete
 * that deleted. Undefined for reads and for writes that changed nothing
 * (they answer with the current revision, another operation's).
 */
function writtenRevision(input: KvInput, output: KvOutput | undefined): number | undefined {
  if (output === undefined) return undefined;
  const rev = (output as { revision?: number }).revision;
  if (rev === undefined) return undefined;
  switch (input.type) {
    case 'put':
      return rev;
    case 'delete':
      return ((output as KvDeleteOutput).deleted ?? 0) > 0 ? rev : undefined;
    case 'txn': {
      const t = output as KvTxnOutput;
      const branch = t.succeeded === false ? input.failure : input.success;
      const results = t.results ?? [];
      const wrote = branch.some((o, i) => o.type === 'put' || (o.type === 'delete' && (results[i]?.deleted ?? 0) > 0));
      return wrote ? rev : undefined;
    }
    default:
      return undefined;
  }
}

/** What {@link buildCheckedHistory} produced. */
export interface CheckedHistory {
  operations: Operation<KvInput, KvOutput>[];
  /** Recorded operations left out because they touch keys written outside the model. */
  excluded: number;
  /** Lease revocations added as deletions. */
  revocations: number;
}

/**
 * Builds the checked history.
 *
 * Lease revocations: the deletions, at one committed revision, of keys
 * that were attached to a lease become one operation deleting those keys:
 * `ok`, with the revoke's invocation and return times, when a client's
 * `leaseRevoke` of that lease returned that revision; none when a client's
 * own completed write made that revision (its delete of a leased key is in
 * the history already, and a revoke that found no key left answers with
 * that same revision); otherwise (expiry by the leader, a revoke whose
 * outcome is unknown, a client write whose outcome is unknown) an unknown-outcome operation
 * invoked when the lease's grant was invoked, which the checker may place
 * anywhere after that, or nowhere. Adding unknown-outcome operations can
 * only make more histories linearizable, never fewer: no false alarms. A
 * key left out (see `excludedRanges`) is left out of the deletion, which
 * still deletes the lease's other keys.
 *
 * @param excludedRanges - ranges written by operations the model cannot express
 */
export function buildCheckedHistory(
  recorded: readonly Operation<KvInput, KvOutput>[],
  committed: readonly CommittedEvent[],
  leases: readonly LeaseRecord[],
  excludedRanges: readonly KeyRange[],
): CheckedHistory {
  const touchesExcluded = (input: KvInput): boolean =>
    excludedRanges.length > 0 && inputRanges(input).some((r) => excludedRanges.some((x) => rangesOverlap(r, x)));

  const grants = new Map<number, LeaseRecord>();
  const revokes = new Map<string, LeaseRecord>();
  for (const l of leases) {
    if (l.kind === 'grant' && l.id !== undefined && !grants.has(l.id)) grants.set(l.id, l);
    if (l.kind === 'revoke' && l.status === 'ok' && l.revision !== undefined && l.id !== undefined) revokes.set(`${l.revision}/${l.id}`, l);
  }

  const operations: Operation<KvInput, KvOutput>[] = [];
  let excluded = 0;
  for (const op of recorded) {
    if (touchesExcluded(op.input)) excluded++;
    else operations.push(op);
  }
  // revisions a client's own write made: deletions of leased keys there are
  // that write's, not a revocation's (a revoke of a lease with no keys left
  // answers with the current revision, which may be such a write's)
  const madeByClients = new Set<number>();
  for (const op of recorded) {
    const rev = op.status === 'ok' ? writtenRevision(op.input, op.output) : undefined;
    if (rev !== undefined) madeByClients.add(rev);
  }

  // group lease deletions by revision
  const byRevision = new Map<number, { keys: string[]; lease: number }>();
  for (const e of committed) {
    if (e.record.type !== 'DELETE' || e.prevLease === 0) continue;
    const rev = e.record.kv.modRevision;
    let g = byRevision.get(rev);
    if (g === undefined) byRevision.set(rev, (g = { keys: [], lease: e.prevLease }));
    g.keys.push(e.record.kv.key);
  }
  let nextId = recorded.reduce((m, op) => Math.max(m, op.id + 1), 0);
  let revocations = 0;
  for (const [rev, g] of [...byRevision].sort((a, b) => a[0] - b[0])) {
    if (madeByClients.has(rev)) continue;
    // the keys left out have no operation left to see their deletion; the
    // others must still see it
    const keys = g.keys.filter((key) => !touchesExcluded({ type: 'delete', key }));
    if (keys.length === 0) continue;
    const input: KvInput =
      keys.length === 1
        ? { type: 'delete', key: keys[0]! }
        : { type: 'txn', compare: [], success: keys.map((key) => ({ type: 'delete' as const, key })), failure: [] };
    const revoke = revokes.get(`${rev}/${g.lease}`);
    const grant = grants.get(g.lease);
    let op: Operation<KvInput, KvOutput>;
    if (revoke !== undefined) {
      const output: KvOutput =
        input.type === 'delete'
          ? { revision: rev, deleted: 1 }
          : { succeeded: true, results: keys.map(() => ({ deleted: 1 })), revision: rev };
      op = { id: nextId++, clientId: `lease ${g.lease} revoke`, input, output, status: 'ok', callTime: revoke.callTime, returnTime: revoke.returnTime };
    } else {
      op = {
        id: nextId++,
        clientId: `lease ${g.lease} expiry`,
        input,
        output: undefined,
        status: 'unknown',
        callTime: grant?.callTime ?? 0,
        returnTime: Infinity,
      };
    }
    operations.push(op);
    revocations++;
  }
  return { operations, excluded, revocations };
}

/**
 * The highest revision the completed operations report: header revisions,
 * and the create and mod revisions of what they read.
 */
export function highestRevisionSeen(operations: readonly Operation<KvInput, KvOutput>[]): number {
  let max = 0;
  const see = (n: number | undefined): void => {
    if (typeof n === 'number' && n > max) max = n;
  };
  for (const op of operations) {
    if (op.status !== 'ok' || op.output === undefined) continue;
    const o = op.output as KvGetOutput & KvRangeOutput & KvTxnOutput;
    see(o.revision);
    see(o.modRevision);
    see(o.createRevision);
    for (const kv of Array.isArray(o.kvs) ? o.kvs : []) {
      see(kv.modRevision);
      see(kv.createRevision);
    }
    for (const r of Array.isArray(o.results) ? o.results : []) {
      see(r.modRevision);
      see(r.createRevision);
    }
  }
  return max;
}

/** What {@link resolveUnknownWrites} did. */
export interface ResolvedHistory {
  operations: Operation<KvInput, KvOutput>[];
  /** Unknown-outcome writes found in the committed history: now `ok`, with the revision they took. */
  found: number;
  /** Unknown-outcome writes the complete committed history shows never took effect: left out. */
  absent: number;
}

/** `key`, `value` as one map key (a separator character could occur in either: keys and values may hold NUL). */
function pairKey(key: string, value: string): string {
  return JSON.stringify([key, value]);
}

/** The puts of a txn branch, or of a put. */
function putsOf(ops: readonly { type: string; key: string; value?: string }[]): { key: string; value: string }[] {
  return ops.filter((o): o is { type: 'put'; key: string; value: string } => o.type === 'put');
}

/**
 * Settles unknown-outcome writes with the committed history, as etcd's
 * robustness tests patch their histories with watch events: a lost
 * response is the usual cause of an unknown outcome, and every unknown
 * write stays pending to the end of the history, which makes the search
 * exponential in how many there are.
 *
 * A write is identified by a value it puts: a (key, value) pair that no
 * other recorded operation puts, and that at most one committed PUT event
 * carries.
 * - Found at revision R, first reported by a member's reference watch at
 *   history time T: it took effect at R, before T (a member applies a
 *   revision, and reports it, only after it committed). It becomes `ok`
 *   with output `{ revision: R }` (a txn's also with `succeeded`, from the
 *   branch that holds the pair), returning at T. A txn is settled only
 *   when every put of that branch is at R.
 * - Absent, when `complete` (the committed history has no gap and reaches
 *   every revision a client saw): it never took effect up to the last
 *   revision any client saw, so it is left out (were it committed later,
 *   nothing in the history could tell). A txn is left out only when each of
 *   its branches is either read-only or holds such a pair.
 * Other operations are returned unchanged, and so is every operation
 * `settles` refuses: one whose client writes through a wrapper, say, which
 * may store another key or value than the history records. Without a
 * committed PUT event that only it could have made, a write stays unknown;
 * so the result is never less linearizable than the input because of a
 * coincidence of values.
 *
 * Run it before {@link buildCheckedHistory}: a settled write's revision is
 * then known to be a client's, not a lease revocation's.
 * @param settles - which unknown operations may be settled (default: all)
 */
export function resolveUnknownWrites(
  operations: readonly Operation<KvInput, KvOutput>[],
  committed: readonly CommittedEvent[],
  complete: boolean,
  settles: (op: Operation<KvInput, KvOutput>) => boolean = () => true,
): ResolvedHistory {
  const writers = new Map<string, number>();
  const pairsOf = (input: KvInput): { key: string; value: string }[] =>
    input.type === 'put' ? [{ key: input.key, value: input.value }] : input.type === 'txn' ? [...putsOf(input.success), ...putsOf(input.failure)] : [];
  for (const op of operations) {
    for (const p of new Set(pairsOf(op.input).map((x) => pairKey(x.key, x.value)))) writers.set(p, (writers.get(p) ?? 0) + 1);
  }
  /** Committed PUT events by pair: revision and first report time, or null when several carry it. */
  const events = new Map<string, { revision: number; seenAt: number } | null>();
  for (const e of committed) {
    if (e.record.type !== 'PUT' || e.record.kv.value === undefined) continue;
    const k = pairKey(e.record.kv.key, e.record.kv.value);
    if (!writers.has(k)) continue;
    events.set(k, events.has(k) ? null : { revision: e.record.kv.modRevision, seenAt: e.seenAt });
  }
  const unique = (p: { key: string; value: string }): boolean => writers.get(pairKey(p.key, p.value)) === 1;
  const eventOf = (p: { key: string; value: string }) => events.get(pairKey(p.key, p.value));

  const out: Operation<KvInput, KvOutput>[] = [];
  let found = 0;
  let absent = 0;
  for (const op of operations) {
    const input = op.input;
    if (op.status !== 'unknown' || (input.type !== 'put' && input.type !== 'txn') || !settles(op)) {
      out.push(op);
      continue;
    }
    const branches =
      input.type === 'put'
        ? [{ puts: pairsOf(input), readOnly: false, succeeded: undefined }]
        : [
            { puts: putsOf(input.success), readOnly: input.success.every((o) => o.type === 'get'), succeeded: true },
            { puts: putsOf(input.failure), readOnly: input.failure.every((o) => o.type === 'get'), succeeded: false },
          ];
    let settled: Operation<KvInput, KvOutput> | undefined;
    let ambiguous = false;
    for (const b of branches) {
      const hits = b.puts.filter(unique).map(eventOf).filter((x) => x !== undefined);
      if (hits.length === 0) continue;
      const hit = hits[0];
      // several events for the pair, or the branch's puts at different revisions (or missing)
      const atHit = (p: { key: string; value: string }): boolean => {
        const e = eventOf(p);
        return e !== undefined && e !== null && hit !== null && e.revision === hit.revision;
      };
      if (hit === null || !b.puts.every(atHit)) {
        ambiguous = true;
        continue;
      }
      if (settled !== undefined || hit.seenAt < op.callTime) {
        ambiguous = true;
        continue;
      }
      const output: KvOutput = b.succeeded === undefined ? { revision: hit.revision } : { succeeded: b.succeeded, revision: hit.revision };
      settled = { ...op, status: 'ok', output, returnTime: hit.seenAt };
    }
    if (ambiguous) {
      out.push(op);
    } else if (settled !== undefined) {
      out.push(settled);
      found++;
    } else if (complete && branches.every((b) => b.readOnly || b.puts.some((p) => unique(p) && eventOf(p) === undefined))) {
      absent++;
    } else {
      out.push(op);
    }
  }
  return { operations: out, found, absent };
}
