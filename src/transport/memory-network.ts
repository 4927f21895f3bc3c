/**
 * An in-process network of {@link Transport}s with seeded, per-link faults:
 * partitions (symmetric and one-way), isolation, drop, delay, duplication and
 * reordering. Used by tests and by the deterministic simulation.
 * @module
 */
import createDebug from 'debug';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';
import { decodeMessage, encodeMessage } from '../codec/index.js';
import { ErrorCode, UsageError } from '../errors.js';
import { describeValue } from '../arg-values.js';
import { callIsolated } from '../isolated-emit.js';
import { checkOptionKeys } from '../option-keys.js';
import type { Message, MessageType } from '../raftpb/index.js';
import { MemoryTransport, type MemoryHub } from './memory-transport.js';
import { realTimeScheduler, type Scheduler } from './scheduler.js';
import type { Transport } from './transport.js';

const log = createDebug('quorumkv:transport');

/** A directed link: messages from `from` to `to`. */
export interface Link {
  /** Id of the sending node. */
  from: string;
  /** Id of the receiving node. */
  to: string;
}

/** A uniform delay range in whole milliseconds, `0 <= minMs <= maxMs`. */
export interface DelayRange {
  /** Shortest delay of a message, in ms (an integer, at least 0). */
  minMs: number;
  /** Longest delay of a message, in ms (an integer, at least `minMs`; equal to it for a fixed delay). */
  maxMs: number;
}

/**
 * Message counters, globally or for one directed link. Once nothing is in
 * flight, `delivered + dropped === sent + duplicated`.
 */
export interface NetworkStats {
  /** Messages accepted by `send()` for a known peer or a remote (a sender that reached the transport without being its peer). */
  sent: number;
  /** Messages handed to a receiver's `handler.receive` (duplicates included). */
  delivered: number;
  /** Messages (or duplicate copies) that never reached a receiver. */
  dropped: number;
  /** Extra copies created by the duplicate rate. */
  duplicated: number;
  /** Messages that jumped ahead of earlier ones on their link. */
  reordered: number;
}

/**
 * Why a message was dropped: a partition or isolation (`partition`), the
 * random drop rate (`drop-rate`), or a receiver that is absent, closed or not
 * started (`unreachable`), or a receiver that
 * refused the sender as removed from the cluster (`removed`: the sender's
 * transport reports `reportRemoved`).
 */
export type DropReason = 'partition' | 'drop-rate' | 'unreachable' | 'removed';

/** One observable step of the network, in the order it happened (for traces). */
export interface NetworkEvent {
  /** What happened: accepted by `send()`, handed to the receiver, dropped, copied, or moved ahead of earlier messages. */
  kind: 'send' | 'deliver' | 'drop' | 'duplicate' | 'reorder';
  /** Id of the sending node. */
  from: string;
  /** Id of the node the message is addressed to. */
  to: string;
  /** Raft message type of the message. */
  type: MessageType;
  /** Set when `kind` is `drop`. */
  reason?: DropReason;
}

/** Options of {@link MemoryNetwork}. */
export interface MemoryNetworkOptions {
  /** Seed of the PRNG (pure-rand xoroshiro128+) that decides every fault. An integer. */
  seed: number;
  /** Runs deliveries and reports later; default {@link realTimeScheduler}. */
  scheduler?: Scheduler;
  /**
   * Called synchronously for every {@link NetworkEvent}, e.g. to record a
   * trace. A callback that throws changes nothing in the network: its
   * error is thrown again on its own (an uncaught exception).
   */
  onEvent?: (event: NetworkEvent) => void;
}

interface Faults {
  drop: number;
  duplicate: number;
  reorder: number;
  delay: DelayRange;
}

interface Pending {
  bytes: Uint8Array;
  type: MessageType;
  ready: boolean;
  sender: MemoryTransport;
  /** The original copy of a MsgSnap: its outcome is reported to the sender. */
  reportsSnapshot: boolean;
  /** The copy of a MsgProp the duplicate rate drew: it takes its place in the link's order, and is never delivered. */
  phantom?: boolean;
}

interface LinkState {
  from: string;
  to: string;
  /** Messages in flight, in delivery order; the head is delivered once ready. */
  queue: Pending[];
  stats: NetworkStats;
}

function emptyStats(): NetworkStats {
  return { sent: 0, delivered: 0, dropped: 0, duplicated: 0, reordered: 0 };
}

/**
 * Virtual ms between a peer's refusal (or a partition healing) and the
 * refused transport hearing of it, with nothing sent: a TCP transport hears
 * at its next dial, after its backoff (`TcpTransport`'s first delays are
 * 50-100 ms). A member that is applying its own removal applies it first.
 */
const REDIAL_MS = 100;

function linkKey(from: string, to: string): string {
  return `${from}\u0000${to}`;
}

function checkRate(p: number, what: string): void {
  if (typeof p !== 'number' || !(p >= 0 && p <= 1)) {
    throw new UsageError(ErrorCode.INVALID_ARGUMENT, `${what} must be a probability in [0, 1], got ${describeValue(p)}`);
  }
}

function checkDelay(d: DelayRange): void {
  const ok =
    d !== null &&
    typeof d === 'object' &&
    Number.isSafeInteger(d.minMs) &&
    Number.isSafeInteger(d.maxMs) &&
    d.minMs >= 0 &&
    d.maxMs >= d.minMs;
  if (!ok) {
    throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'delay must be { minMs, maxMs } with integers 0 <= minMs <= maxMs');
  }
}

function checkId(id: unknown, what: string): void {
  if (typeof id !== 'string' || id === '') throw new UsageError(ErrorCode.INVALID_ARGUMENT, `${what} must be a non-empty string, got ${typeof id === 'string' ? "''" : describeValue(id)}`);
}

/**
 * A group of node ids: an array, not a string, whose characters a loop would
 * have taken for ids (`partition('ab', ['c'])` cut `a` and `b` off `c`).
 */
function checkGroup(group: unknown, what: string): void {
  if (!Array.isArray(group)) throw new UsageError(ErrorCode.INVALID_ARGUMENT, `${what} must be an array of node ids`);
  for (const id of group) checkId(id, `every node id of ${what}`);
}

function checkLink(link: Link | undefined): void {
  if (link === undefined) return;
  // null threw a TypeError
  if (link === null || typeof link !== 'object' || typeof link.from !== 'string' || typeof link.to !== 'string' || link.from === '' || link.to === '') {
    throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'a link is { from, to } with non-empty node ids');
  }
}

/**
 * An in-process hub connecting {@link Transport}s, with faults decided by a
 * seeded PRNG, so that the same seed and the same sends (through a
 * deterministic {@link Scheduler}) give the same deliveries.
 *
 * - Every message is encoded with the codec at `send` and decoded at delivery,
 *   so receivers get private deep copies and the codec is exercised.
 * - Per directed link, delivery is FIFO: a message is delivered when its
 *   delay has elapsed and every message sent before it on that link was
 *   delivered or dropped (like a TCP stream). The reorder rate breaks this on
 *   purpose: a reordered message is inserted ahead of a random number of the
 *   messages still in flight on its link (no effect when none is).
 * - Faults are checked per directed link; a per-link setting overrides the
 *   global one. Partitions are checked at send and again at delivery, so
 *   messages in flight when a partition starts are dropped too.
 * - A message to a node that has no open, started transport, or whose
 *   transport does not know the sender (never added or removed), is dropped
 *   and reported unreachable to the sender, as a refused connection would be.
 *   Partition drops are reported unreachable too; random drops are not.
 * - The duplicate rate never copies a `MsgProp` (a forwarded proposal would
 *   be applied twice; see {@link MemoryNetwork.setDuplicateRate}).
 * - A `MsgSnap` reports `'finish'` to its sender after delivery, and
 *   `'failure'` (plus unreachable) when dropped; a duplicate copy reports
 *   nothing.
 * - Every delivery and report goes through `scheduler.schedule`: deliveries
 *   with the message's delay, reports with delay 0. Nothing happens
 *   synchronously inside `send`.
 *
 * PRNG draws per message, in this order and only for non-zero settings: drop,
 * duplicate, then per copy: delay (when `maxMs > minMs`), reorder (when
 * messages are in flight on the link).
 *
 * @example
 * ```ts
 * const net = new MemoryNetwork({ seed: 42 });
 * const a = net.transport('a'); const b = net.transport('b');
 * a.addPeer('b'); b.addPeer('a');
 * await a.start(handlerA); await b.start(handlerB);
 * net.setDelay({ minMs: 1, maxMs: 20 });
 * net.partition(['a'], ['b']);
 * ```
 */
export class MemoryNetwork {
  private readonly rng: RandomGenerator;
  private readonly scheduler: Scheduler;
  private readonly onEvent: ((event: NetworkEvent) => void) | undefined;
  private readonly transports = new Map<string, MemoryTransport>();
  private readonly links = new Map<string, LinkState>();
  private readonly blocked = new Set<string>();
  private readonly isolated = new Set<string>();
  private global: Faults = { drop: 0, duplicate: 0, reorder: 0, delay: { minMs: 0, maxMs: 0 } };
  private readonly perLink = new Map<string, Partial<Faults>>();
  private readonly totals = emptyStats();
  private readonly hub: MemoryHub;

  /**
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `seed` is not a safe
   *   integer, `scheduler` is not an object with a `schedule` method, `onEvent`
   *   is not a function, or for an option of another name
   */
  constructor(options: MemoryNetworkOptions) {
    if (options === null || typeof options !== 'object' || !Number.isSafeInteger(options.seed)) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'MemoryNetwork needs an integer seed');
    }
    checkOptionKeys(options, ['seed', 'scheduler', 'onEvent'] satisfies (keyof MemoryNetworkOptions)[], 'MemoryNetwork options', ErrorCode.INVALID_ARGUMENT);
    // found here, not at the first send or event (a Clock given as the
    // scheduler has setTimeout, not schedule)
    const sch = options.scheduler as Partial<Scheduler> | null | undefined;
    if (sch !== undefined && (sch === null || typeof sch !== 'object' || typeof sch.schedule !== 'function')) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `MemoryNetwork options.scheduler must be an object with schedule(delayMs, fn), got ${describeValue(sch)}`);
    }
    if (options.onEvent !== undefined && typeof options.onEvent !== 'function') {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `MemoryNetwork options.onEvent must be a function, got ${describeValue(options.onEvent)}`);
    }
    this.rng = xoroshiro128plus(options.seed);
    this.scheduler = options.scheduler ?? realTimeScheduler;
    this.onEvent = options.onEvent;
    this.hub = {
      transmit: (sender, msg) => this.transmit(sender, msg),
      later: (fn) => this.scheduler.schedule(0, fn),
      connect: (sender, to) => this.connect(sender, to),
      refused: () => this.sweepRefusals(),
      detach: (t) => {
        if (this.transports.get(t.id) === t) this.transports.delete(t.id);
      },
    };
  }

  /**
   * Creates the transport of node `id` on this network (not started, no
   * peers). After the previous transport of `id` was closed, a new one may be
   * created (a restarted node); messages still in flight to `id` then reach
   * the new one. A previous transport of `id` that was never started (one
   * given to a `KvNode.open` or `RaftNode.create` that failed before
   * starting it, say) holds nothing: it is closed and replaced.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an empty id, or when a started, open transport of `id` exists
   */
  transport(id: string): Transport {
    if (typeof id !== 'string' || id === '') {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'node id must be a non-empty string');
    }
    const existing = this.transports.get(id);
    if (existing !== undefined && !existing.closed) {
      if (existing.started) throw new UsageError(ErrorCode.INVALID_ARGUMENT, `node ${id} already has an open transport on this network`);
      // never started: a failed open left it behind, and with it the id
      // was taken for good on this network (a retry could never get one)
      void existing.close();
    }
    const t = new MemoryTransport(id, this.hub);
    this.transports.set(id, t);
    return t;
  }

  /**
   * Blocks every link between a node of `groupA` and a node of `groupB`, both ways.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when a group is not an array of non-empty ids (nothing is blocked)
   */
  partition(groupA: readonly string[], groupB: readonly string[]): void {
    checkGroup(groupA, 'groupA');
    checkGroup(groupB, 'groupB');
    for (const a of groupA) {
      for (const b of groupB) {
        if (a === b) continue;
        this.blocked.add(linkKey(a, b));
        this.blocked.add(linkKey(b, a));
      }
    }
  }

  /**
   * Blocks the directed link `from -> to` only (`to` can still reach `from`).
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an id that is not a non-empty string
   */
  partitionOneWay(from: string, to: string): void {
    checkLink({ from, to });
    if (from !== to) this.blocked.add(linkKey(from, to));
  }

  /**
   * Blocks every link to and from `id`, including links to nodes created later.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an id that is not a non-empty string
   */
  isolate(id: string): void {
    checkId(id, 'node id');
    this.isolated.add(id);
  }

  /** Removes every partition and isolation. Rates and delays stay as they are. */
  heal(): void {
    this.blocked.clear();
    this.isolated.clear();
    this.sweepRefusals();
  }

  /** Heals, then sets every rate to 0 and every delay to 0 ms, globally and per link. */
  resetFaults(): void {
    this.heal();
    this.global = { drop: 0, duplicate: 0, reorder: 0, delay: { minMs: 0, maxMs: 0 } };
    this.perLink.clear();
  }

  /**
   * Drops each message with probability `p`, on `link` or globally.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `p` is not in [0, 1], or `link` is not `{ from, to }` with non-empty ids
   */
  setDropRate(p: number, link?: Link): void {
    checkRate(p, 'drop rate');
    checkLink(link);
    this.setFault('drop', p, link);
  }

  /**
   * Delivers each message twice with probability `p` (the copy has its own
   * delay), except a `MsgProp`. A `MsgProp` is a proposal a follower
   * forwards to its leader, and Raft does not deduplicate proposals: two
   * copies would be appended as two entries and the write applied twice (a
   * put with two revisions, a compare-and-swap that succeeds twice). etcd's
   * peers talk over TCP, which never delivers a message twice, and so does
   * `TcpTransport` (a message lost with its connection is reported, never
   * resent), so a duplicated proposal is a fault no real cluster meets. The
   * copy of a `MsgProp` is drawn and queued all the same (the duplicate
   * draw, the copy's delay and reorder draws, its place in the link's
   * order) and dropped silently, uncounted, when its turn comes, so that a
   * seed gives the same faults to the other messages whether or not
   * proposals are forwarded.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `p` is not in [0, 1], or `link` is not `{ from, to }` with non-empty ids
   */
  setDuplicateRate(p: number, link?: Link): void {
    checkRate(p, 'duplicate rate');
    checkLink(link);
    this.setFault('duplicate', p, link);
  }

  /**
   * With probability `p`, a message jumps ahead of a uniformly chosen number
   * (at least one) of the messages in flight on its link.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `p` is not in [0, 1], or `link` is not `{ from, to }` with non-empty ids
   */
  setReorderRate(p: number, link?: Link): void {
    checkRate(p, 'reorder rate');
    checkLink(link);
    this.setFault('reorder', p, link);
  }

  /**
   * Delays each message by a uniform integer number of milliseconds in
   * `[minMs, maxMs]` (scheduler time).
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for non-integers, negatives, or `minMs > maxMs`,
   *   or a `link` that is not `{ from, to }` with non-empty ids
   */
  setDelay(range: DelayRange, link?: Link): void {
    checkDelay(range);
    checkLink(link);
    this.setFault('delay', { minMs: range.minMs, maxMs: range.maxMs }, link);
  }

  /**
   * A copy of the counters, of one directed link or of the whole network.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `link` is not `{ from, to }` with non-empty ids
   */
  stats(link?: Link): NetworkStats {
    checkLink(link);
    if (link === undefined) return { ...this.totals };
    const l = this.links.get(linkKey(link.from, link.to));
    return l === undefined ? emptyStats() : { ...l.stats };
  }

  /** Number of messages in flight (scheduled, not yet delivered or dropped). */
  inFlight(): number {
    let n = 0;
    for (const l of this.links.values()) n += l.queue.length;
    return n;
  }

  private setFault<K extends keyof Faults>(key: K, value: Faults[K], link: Link | undefined): void {
    if (link === undefined) {
      this.global[key] = value;
      return;
    }
    const k = linkKey(link.from, link.to);
    const f = this.perLink.get(k) ?? {};
    f[key] = value;
    this.perLink.set(k, f);
  }

  private faults(from: string, to: string): Faults {
    const f = this.perLink.get(linkKey(from, to));
    if (f === undefined) return this.global;
    return {
      drop: f.drop ?? this.global.drop,
      duplicate: f.duplicate ?? this.global.duplicate,
      reorder: f.reorder ?? this.global.reorder,
      delay: f.delay ?? this.global.delay,
    };
  }

  private isBlocked(from: string, to: string): boolean {
    return this.isolated.has(from) || this.isolated.has(to) || this.blocked.has(linkKey(from, to));
  }

  private link(from: string, to: string): LinkState {
    const k = linkKey(from, to);
    let l = this.links.get(k);
    if (l === undefined) {
      l = { from, to, queue: [], stats: emptyStats() };
      this.links.set(k, l);
    }
    return l;
  }

  private emit(kind: NetworkEvent['kind'], from: string, to: string, type: MessageType, reason?: DropReason): void {
    if (this.onEvent === undefined) return;
    const e: NetworkEvent = { kind, from, to, type };
    if (reason !== undefined) e.reason = reason;
    // called from inside a member's send (its Raft loop) or a delivery: a
    // callback that throws must neither stop the member nor lose the
    // message; its error is thrown again on its own (an uncaught exception)
    callIsolated(() => this.onEvent?.(e));
  }

  private transmit(sender: MemoryTransport, msg: Message): void {
    const { from, to, type } = msg;
    const link = this.link(from, to);
    link.stats.sent++;
    this.totals.sent++;
    this.emit('send', from, to, type);
    const isSnap = type === 'MsgSnap';
    if (this.isBlocked(from, to)) {
      this.drop(link, sender, type, isSnap, 'partition');
      return;
    }
    const f = this.faults(from, to);
    if (f.drop > 0 && uniformFloat64(this.rng) < f.drop) {
      this.drop(link, sender, type, isSnap, 'drop-rate');
      return;
    }
    // The encoding, as the wire would carry it: a view into the packer's
    // buffer, which later packs do not overwrite. Nothing writes to it, and
    // the receiver copies the entries it keeps out of it (entry-bytes.ts).
    const bytes = encodeMessage(msg);
    let copies = 1;
    // A MsgProp is never delivered twice (see setDuplicateRate), but its
    // copy is drawn and queued all the same, and dropped silently when its
    // turn comes: the PRNG stream and the link's order, and so the faults
    // every other message meets, do not depend on which messages are
    // proposals.
    let phantom = false;
    if (f.duplicate > 0 && uniformFloat64(this.rng) < f.duplicate) {
      copies = 2;
      phantom = type === 'MsgProp';
      if (!phantom) {
        link.stats.duplicated++;
        this.totals.duplicated++;
        this.emit('duplicate', from, to, type);
      }
    }
    for (let i = 0; i < copies; i++) {
      const p: Pending = { bytes, type, ready: false, sender, reportsSnapshot: isSnap && i === 0 };
      if (phantom && i === 1) p.phantom = true;
      const { minMs, maxMs } = f.delay;
      const delay = maxMs > minMs ? uniformInt(this.rng, minMs, maxMs) : minMs;
      let pos = link.queue.length;
      if (f.reorder > 0 && pos > 0 && uniformFloat64(this.rng) < f.reorder) {
        pos = uniformInt(this.rng, 0, pos - 1);
        if (p.phantom !== true) {
          link.stats.reordered++;
          this.totals.reordered++;
          this.emit('reorder', from, to, type);
        }
      }
      link.queue.splice(pos, 0, p);
      this.scheduler.schedule(delay, () => {
        p.ready = true;
        this.pump(link);
      });
    }
  }

  /**
   * `sender` reaches out to `to` with nothing to send (a TCP dial): when the
   * link is not cut and `to` refuses it as removed, the sender is told so.
   * Nothing is counted: no message travels.
   */
  private connect(sender: MemoryTransport, to: string): void {
    const from = sender.id;
    this.scheduler.schedule(0, () => {
      if (sender.closed || this.isBlocked(from, to)) return;
      if (this.transports.get(to)?.refuses(from) === true) sender.reportRemoved(to);
    });
  }

  /**
   * {@link REDIAL_MS} later, tells every started transport that knows a peer
   * refusing it as removed, over a link not cut, that it was removed: a TCP
   * transport keeps a stream to each peer it knows (dialed and redialed), so
   * it hears of a refusal at its next dial once the peer refuses it and the
   * link lets it through. Run when a transport starts refusing a peer (or
   * starts with refusals), and when partitions heal. Nothing is counted.
   */
  private sweepRefusals(): void {
    this.scheduler.schedule(REDIAL_MS, () => {
      for (const [to, dest] of [...this.transports]) {
        for (const from of [...dest.refusedIds()]) {
          const src = this.transports.get(from);
          if (src !== undefined && src.knows(to) && !this.isBlocked(from, to) && dest.refuses(from)) src.reportRemoved(to);
        }
      }
    });
  }

  /** Delivers (or drops) the ready messages at the head of the link's queue. */
  private pump(link: LinkState): void {
    while (link.queue.length > 0 && link.queue[0]!.ready) {
      const p = link.queue.shift()!;
      if (p.phantom !== true) this.deliver(link, p);
    }
  }

  private deliver(link: LinkState, p: Pending): void {
    const { from, to } = link;
    if (this.isBlocked(from, to)) {
      this.drop(link, p.sender, p.type, p.reportsSnapshot, 'partition');
      return;
    }
    const dest = this.transports.get(to);
    if (dest === undefined || !dest.accepts(from)) {
      // a refused id is no longer a peer: only a message not accepted is looked up
      this.drop(link, p.sender, p.type, p.reportsSnapshot, dest?.refuses(from) === true ? 'removed' : 'unreachable');
      return;
    }
    const msg = decodeMessage(p.bytes);
    link.stats.delivered++;
    this.totals.delivered++;
    this.emit('deliver', from, to, p.type);
    dest.deliver(msg);
    if (p.reportsSnapshot) {
      const sender = p.sender;
      this.scheduler.schedule(0, () => sender.reportSnapshot(to, 'finish'));
    }
  }

  private drop(link: LinkState, sender: MemoryTransport, type: MessageType, reportsSnapshot: boolean, reason: DropReason): void {
    link.stats.dropped++;
    this.totals.dropped++;
    this.emit('drop', link.from, link.to, type, reason);
    log('network: dropped %s %s -> %s (%s)', type, link.from, link.to, reason);
    const to = link.to;
    if (reason === 'removed') this.scheduler.schedule(0, () => sender.reportRemoved(to));
    else if (reason !== 'drop-rate') this.scheduler.schedule(0, () => sender.reportUnreachable(to));
    if (reportsSnapshot) this.scheduler.schedule(0, () => sender.reportSnapshot(to, 'failure'));
  }
}
