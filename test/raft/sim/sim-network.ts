// The simulated network: every message sent waits in one queue until the
// simulation delivers it (in any order), drops it, or duplicates it. Links
// can be cut in both directions (partitions). Messages are copied when sent
// and again when delivered, as a real network would serialize them: the
// receiver may mutate what it steps (a follower rewrites a MsgProp it
// forwards), and a duplicate must not share objects with the first copy.
import type { Entry, Message, Snapshot } from '../../../src/raftpb/index.js';

function cloneEntry(e: Entry): Entry {
  return { term: e.term, index: e.index, type: e.type, data: e.data };
}

function cloneSnapshot(s: Snapshot): Snapshot {
  const cs = s.metadata.confState;
  return {
    data: s.data,
    metadata: { index: s.metadata.index, term: s.metadata.term, confState: { voters: cs.voters.slice(), learners: cs.learners.slice() } },
  };
}

/** A deep copy of a message (payload bytes are shared: they are never mutated). */
export function cloneMessage(m: Message): Message {
  const c: Message = {
    type: m.type,
    to: m.to,
    from: m.from,
    term: m.term,
    logTerm: m.logTerm,
    index: m.index,
    entries: m.entries.length === 0 ? [] : m.entries.map(cloneEntry),
    commit: m.commit,
    reject: m.reject,
    rejectHint: m.rejectHint,
  };
  if (m.snapshot !== undefined) c.snapshot = cloneSnapshot(m.snapshot);
  if (m.context !== undefined) c.context = m.context;
  return c;
}

function linkKey(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}

/**
 * A message on its way, with the node that put it on the wire (`msg.from`
 * differs for a proposal a follower relays to the leader: it keeps the
 * proposer's id).
 */
export interface Packet {
  msg: Message;
  sender: string;
}

/** Messages in flight and the cut links. */
export class SimNetwork {
  /** In send order; delivery may pick any of them. */
  readonly inFlight: Packet[] = [];
  private readonly cuts = new Set<string>();

  send(sender: string, m: Message): void {
    this.inFlight.push({ msg: cloneMessage(m), sender });
  }

  /** Removes and returns the packet at position `i` (a fresh copy of its message). */
  take(i: number): Packet {
    const [p] = this.inFlight.splice(i, 1);
    if (p === undefined) throw new Error(`no message at ${i}`);
    return { msg: cloneMessage(p.msg), sender: p.sender };
  }

  /** Queues another copy of the packet at position `i`. */
  duplicate(i: number): Packet {
    const p = this.inFlight[i];
    if (p === undefined) throw new Error(`no message at ${i}`);
    const c = { msg: cloneMessage(p.msg), sender: p.sender };
    this.inFlight.push(c);
    return c;
  }

  isCut(a: string, b: string): boolean {
    return this.cuts.has(linkKey(a, b));
  }

  /** Cuts every link between the two groups. */
  partition(a: readonly string[], b: readonly string[]): void {
    for (const x of a) for (const y of b) if (x !== y) this.cuts.add(linkKey(x, y));
  }

  heal(): void {
    this.cuts.clear();
  }

  get partitioned(): boolean {
    return this.cuts.size > 0;
  }
}
