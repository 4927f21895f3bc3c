/**
 * Turning what a simulation recorded into the history the linearizability
 * checker sees: client operations, plus the deletions lease revocations made
 * (which no client operation of the KV model describes), minus the keys that
 * writes outside the model touched.
 * @module
 */
import type { Operation } from '../history.js';
import { compareKeys, inKeyRange, type KeyRange } from '../key-range.js';
import type { KvDeleteOutput, KvInput, KvOutput, KvTxnOutput } from '../models/kv-types.js';
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
