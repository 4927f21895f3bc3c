/**
 * The committed event history of a simulated cluster, assembled from one
 * reference watch per member (every key, from revision 1 on the first run;
 * after a restart, from the revision after the last one any member reported,
 * so that what every member applies while it catches up is reported too).
 * Members cross-check each other: two members reporting different events
 * for one revision is a violation.
 * @module
 */
import type { Event, WatchResponse } from '../../mvccpb/index.js';
import type { WatchEventRecord } from '../watch-checker.js';
import type { InvariantMonitor } from './invariants.js';
import { keyFromBytes } from '../key-range.js';
import { watchEvent } from './recorded-watch.js';

/** One committed event, with the lease of the key before it (for deletions by a lease revoke). */
export interface CommittedEvent {
  record: WatchEventRecord;
  /** The lease the key was attached to just before the event (0 = none or unknown). */
  prevLease: number;
  /** History-clock time at which a member first reported the event's revision. */
  seenAt: number;
}

function signature(events: readonly Event[]): string {
  return events
    .map((e) =>
      e.type === 'PUT'
        ? `PUT ${JSON.stringify(keyFromBytes(e.kv.key))}=${JSON.stringify(keyFromBytes(e.kv.value))} c${e.kv.createRevision} v${e.kv.version} l${e.kv.lease}`
        : `DELETE ${JSON.stringify(keyFromBytes(e.kv.key))}`,
    )
    .join(' | ');
}

/**
 * Committed events by revision, from the first member that reported each
 * revision. Revisions are complete from 2 (the first write) up to the
 * highest one reported unless {@link gaps} says otherwise.
 */
export class CommittedHistory {
  private readonly byRevision = new Map<number, CommittedEvent[]>();
  private maxRevision = 1;

  constructor(private readonly monitor: InvariantMonitor) {}

  /** A response of member `id`'s reference watch, received at history-clock time `at`. */
  add(id: string, res: WatchResponse, at: number): void {
    let i = 0;
    const evs = res.events;
    while (i < evs.length) {
      const rev = evs[i]!.kv.modRevision;
      let j = i;
      while (j < evs.length && evs[j]!.kv.modRevision === rev) j++;
      const group = evs.slice(i, j);
      this.monitor.revisionCommitted(id, rev, signature(group));
      if (!this.byRevision.has(rev)) {
        this.byRevision.set(
          rev,
          group.map((e) => ({ record: watchEvent(e), prevLease: e.prevKv?.lease ?? 0, seenAt: at })),
        );
        if (rev > this.maxRevision) this.maxRevision = rev;
      }
      i = j;
    }
  }

  /** The highest revision seen. */
  get revision(): number {
    return this.maxRevision;
  }

  /** Revisions between 2 and the highest seen that no member reported. */
  gaps(): number[] {
    const out: number[] = [];
    for (let r = 2; r <= this.maxRevision; r++) if (!this.byRevision.has(r)) out.push(r);
    return out;
  }

  /** Every committed event in revision order (the input `checkWatch` takes), without prevKv. */
  events(): WatchEventRecord[] {
    const out: WatchEventRecord[] = [];
    for (const ev of this.eventsWithLease()) out.push({ type: ev.record.type, kv: ev.record.kv });
    return out;
  }

  /** Every committed event in revision order, with the lease of the key before it. */
  eventsWithLease(): CommittedEvent[] {
    const revs = [...this.byRevision.keys()].sort((a, b) => a - b);
    const out: CommittedEvent[] = [];
    for (const r of revs) for (const e of this.byRevision.get(r)!) out.push(e);
    return out;
  }

  /** The events of one revision (empty when unknown). */
  at(revision: number): readonly CommittedEvent[] {
    return this.byRevision.get(revision) ?? [];
  }
}
