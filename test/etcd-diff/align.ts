// Alignments of a target's watch log with etcd 3.4.23's, for differences
// the store has on purpose (docs/mvcc.md, "Differences from etcd").
import { isDeepStrictEqual } from 'node:util';
import type { NEvent, NWatchLog } from './diff-target.js';

/**
 * The same event, its prevKv aside: etcd leaves out a prevKv that a
 * compaction removed before the event was sent (`alignPrevKv` aligns that
 * afterwards), so etcd's copy of an event the store also has may lack it.
 */
function sameEvent(a: NEvent, b: NEvent): boolean {
  return a.type === b.type && isDeepStrictEqual(a.kv, b.kv);
}

/**
 * etcd 3.4.23 removes with the compacted history every record at the
 * compaction revision that the compaction does not keep: the tombstones
 * there, and the version of a key that a txn put and then deleted (a range
 * end of "\0" lets one txn do both) at that revision. A watch that reaches
 * the revision after the compaction misses those events (etcd #18089, fixed
 * in 3.4.34 and 3.5.15); the store keeps the records until the next
 * compaction and delivers them. Drop from the target's log the events at a
 * compaction revision of the sequence that etcd's log lacks: a DELETE, or a
 * PUT of a key that the same revision deletes later. `compactions` maps each
 * compaction revision of the sequence to the keys live at it, as read when
 * the compaction was made.
 */
export function alignCompactionTombstones(
  want: NWatchLog,
  got: NWatchLog,
  compactions: ReadonlyMap<number, ReadonlySet<string>>,
): NWatchLog {
  if (compactions.size === 0) return got;
  // a PUT at a compaction revision of a key not live at that revision: the
  // same revision deleted it later (the live keys are read at the compaction,
  // so this holds for a watch whose NODELETE filter hides that DELETE)
  const deletedThere = (e: NEvent): boolean => compactions.get(e.kv.mod)?.has(e.kv.key) === false;
  const events = got.events.filter(
    (e) => !(compactions.has(e.kv.mod) && (e.type === 'DELETE' || deletedThere(e)) && !want.events.some((w) => sameEvent(w, e))),
  );
  return events.length === got.events.length ? got : { ...got, events };
}
