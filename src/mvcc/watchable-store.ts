/**
 * Watches over the store (etcd's `watchableStore`,
 * server/mvcc/watchable_store.go), with etcd's three watcher groups:
 *
 * - **synced**: caught up with the store. When a group of entries is
 *   applied (before the store writes it to the backend, as etcd notifies at
 *   the end of a write transaction), the store hands their events to
 *   {@link WatchableStore.notify}, which queues one response per watcher
 *   (every revision of the group, whole revisions only, in order).
 * - **unsynced**: behind (a start revision in the past, or a consumer that
 *   fell behind). A background loop reads the missing revisions from the
 *   backend (at most `maxRevisionsPerSync` per pass), delivers them, and
 *   moves the watcher to synced once it has everything committed. A watcher
 *   whose next revision has been compacted is cancelled with
 *   `compactRevision`.
 * - **victims**: a synced watcher whose queue was full when a notification
 *   came keeps that response aside; when its consumer drains the queue the
 *   response goes out and the watcher continues as unsynced (or synced). A
 *   `prevKv` watcher whose notification holds events written without their
 *   previous versions (executed before it came), which only a read that
 *   waits can give, keeps that response aside the same way until they are
 *   read; the notifications that come meanwhile are kept behind it (as many
 *   as its queue has room for), not read again from history, where a
 *   compaction could have removed them.
 *
 * So a slow consumer never blocks apply: at most `queueCapacity` responses
 * plus one pending notification are buffered for it; the rest is read again
 * from the backend when it catches up.
 *
 * Invariant: a watcher is synced only when every revision up to the last
 * committed one has been queued for it (its `minRev` is past it); the
 * check and the move happen in one synchronous step, so no notification
 * falls between.
 * @module
 */
import { ErrorCode, FaultError, UsageError } from '../errors.js';
import { describeValue } from '../arg-values.js';
import { callIsolated } from '../isolated-emit.js';
import { MAX_TIMER_MS } from '../timer-limit.js';
import type { Event, KeyValue, ResponseHeader, WatchCreateRequest, WatchFilter, WatchResponse } from '../mvccpb/index.js';
import type { RevisionEvents } from './kv-core.js';
import { toIndexEnd, toSkey } from './skey.js';
import { checkWatchRequest } from './validate.js';
import { WatcherGroup, watches } from './watcher-group.js';
import { Watcher } from './watcher.js';

/** One event read back from the backend, with its revision. */
export interface StoredEvent {
  /** Main revision of the change (the event's `kv.modRevision`). */
  revision: number;
  /** The key as a binary string. */
  skey: string;
  /** The change as watchers get it: a PUT with the key-value, or a DELETE with only key and `modRevision`. */
  event: Event;
}

/** What the watchable store reads from the key-value store. */
export interface WatchSource {
  /** Last revision offered to the watchers (every revision up to it can be read with {@link readEvents}). */
  flushedRevision(): number;
  /** Revision of the last compaction (-1 before any). */
  compactRevision(): number;
  /** Events of revisions `[from, to]` from the backend, in revision order. */
  readEvents(from: number, to: number): Promise<StoredEvent[]>;
  /** The key-value of `key` at revision `rev`, when it existed and is not compacted. */
  kvAt(key: Uint8Array, rev: number): Promise<KeyValue | undefined>;
  /** {@link kvAt} without waiting, or null when only a read that waits could tell. */
  kvAtNow?(key: Uint8Array, rev: number): KeyValue | undefined | null;
}

/** Options of the watchable store. */
export interface WatchOptions {
  /** Responses buffered per watcher before it falls behind, a positive integer. Default 256. */
  queueCapacity?: number;
  /** Revisions read from the backend per catch-up pass, a positive integer. Default 1000 (etcd's `watchBatchMaxRevs`). */
  maxRevisionsPerSync?: number;
  /**
   * Interval in ms of progress notifications to idle, caught-up watchers
   * that asked for `progressNotify`. Default 600000 (etcd's 10 minutes); 0
   * disables them. Any length works, above a timer's 2^31 - 1 ms too
   * (waited in steps).
   */
  progressIntervalMs?: number;
  /**
   * The timer of the progress notifications (default: the global
   * `setTimeout`, not keeping the process alive). `MvccStore` passes its
   * `timer` (a server's clock), so that a simulation on a virtual clock
   * stays reproducible.
   */
  timer?: WatchTimer;
  /**
   * Makes the header of each watch response (events, progress
   * notifications, cancellations) from the response's revision: a new
   * object, whose `revision` is the one given. Default: `{ revision }`, the
   * revision alone. A server sets it to add its cluster fields, as etcd's
   * `watchStream` fills every `WatchResponse` header (`clusterId`,
   * `memberId`, `revision`, `raftTerm`; etcd server/etcdserver/api/v3rpc/
   * watch.go). It is called once per response (not per event), at the
   * moment the response is made, often while the store applies a write:
   * it should be cheap. One that throws gets the revision alone for that
   * response, and its error is thrown again on its own (an uncaught
   * exception); the watch goes on.
   */
  responseHeader?: (revision: number) => ResponseHeader;
  /**
   * Called with an error of the catch-up loop or of a read of a `prevKv`
   * (a backend fault). The watchers concerned read those revisions from
   * history on a later catch-up pass.
   */
  onError?: (err: unknown) => void;
}

/** A one-shot timer (the store's `BatchTimer` and the node layer's `Clock` are ones). */
export interface WatchTimer {
  /** Calls `fn` once after `ms` milliseconds; returns a handle for `clearTimeout`. */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Cancels a pending call. */
  clearTimeout(handle: never): void;
}

const unrefTimer: WatchTimer = {
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h: ReturnType<typeof setTimeout>) => clearTimeout(h),
};

/** A notification kept for a watcher while previous versions are read. */
interface HeldNotification {
  /** The last revision of the notification (the response's header revision). */
  lastRev: number;
  /** The watcher's events of it, in order. */
  events: Event[];
  /** Places in `events` of those whose previous version is still to be read. */
  places: number[];
}

/** A watcher's notifications waiting for reads of previous versions, oldest first. */
interface PrevKvReading {
  held: HeldNotification[];
  /** The last revision notified to the watcher (with or without events for it). */
  upTo: number;
  /** Later notifications are still kept (false once more would not fit in its queue, or after a restore). */
  attached: boolean;
  /** The reads wait for a restore to end ({@link WatchableStore.onRestore} starts them again). */
  waitsForRestore: boolean;
}

// The host of its watchers (`WatcherHost` in watcher.ts, internal, so not
// named in an `implements` clause the published declarations would show):
// passing `this` to Watcher's constructor checks the shape.
/** The watchers of a store. */
export class WatchableStore {
  private readonly source: WatchSource;
  private readonly synced = new WatcherGroup();
  private readonly unsynced = new Set<Watcher>();
  private readonly victims = new Set<Watcher>();
  private readonly byId = new Map<number, Watcher>();
  private nextId = 1;
  private readonly capacity: number;
  private readonly maxRevs: number;
  private readonly onError: (err: unknown) => void;
  private readonly makeHeader: ((revision: number) => ResponseHeader) | undefined;
  private syncing = false;
  private again = false;
  private kicked = false;
  private closed = false;
  private readonly progressTimer: WatchTimer;
  private readonly progressMs: number;
  private progressHandle: unknown;

  /** Restores begun or ended so far: a catch-up pass that saw one happen drops what it read. */
  private restores = 0;
  /** A restore is replacing the history ({@link beginRestore} .. {@link onRestore}). */
  private restoring = false;
  /** The revision the store has once the restore under way ends (0: not told). */
  private restoredRevision = 0;
  /** The last revision {@link notify} offered to the synced watchers. */
  private notifiedUpTo = 0;
  /** Registered watchers that ask for `prevKv`. */
  private prevKvWatchers = 0;
  /** Holds of watches from now not released yet ({@link holdFromNow}). */
  private holds = 0;
  /** Watches from now created while held, to start when the last hold is released. */
  private readonly waiting = new Set<Watcher>();
  /** Victims whose notifications wait for reads of their events' prevKvs. */
  private readonly reading = new Map<Watcher, PrevKvReading>();
  /** Reads of prevKvs under way. */
  private prevKvReads = 0;

  /**
   * @throws UsageError `QUORUMKV_INVALID_CONFIG` for a `queueCapacity` or
   *   `maxRevisionsPerSync` that is not a positive integer, a
   *   `progressIntervalMs` that is not a non-negative number, a `timer`
   *   without `setTimeout` and `clearTimeout`, or a `responseHeader` that is
   *   not a function
   */
  constructor(source: WatchSource, options: WatchOptions = {}) {
    for (const name of ['queueCapacity', 'maxRevisionsPerSync'] as const) {
      const v = options[name];
      // NaN made every catch-up pass read nothing and start again, forever
      if (v !== undefined && !(typeof v === 'number' && Number.isSafeInteger(v) && v > 0)) {
        throw new UsageError(ErrorCode.INVALID_CONFIG, `watch ${name} must be a positive integer, got ${describeValue(v)}`);
      }
    }
    const pi = options.progressIntervalMs;
    if (pi !== undefined && !(typeof pi === 'number' && pi >= 0)) {
      throw new UsageError(ErrorCode.INVALID_CONFIG, `watch progressIntervalMs must be a non-negative number of ms, got ${describeValue(pi)}`);
    }
    const t = options.timer as unknown;
    // one without its methods threw a raw TypeError when the first progress timer was armed
    if (t !== undefined && (t === null || typeof t !== 'object' || typeof (t as WatchTimer).setTimeout !== 'function' || typeof (t as WatchTimer).clearTimeout !== 'function')) {
      throw new UsageError(ErrorCode.INVALID_CONFIG, 'watch timer must be { setTimeout, clearTimeout }');
    }
    const rh = options.responseHeader as unknown;
    if (rh !== undefined && typeof rh !== 'function') {
      throw new UsageError(ErrorCode.INVALID_CONFIG, 'watch responseHeader must be a function');
    }
    this.source = source;
    this.makeHeader = options.responseHeader;
    this.capacity = options.queueCapacity ?? 256;
    this.maxRevs = options.maxRevisionsPerSync ?? 1000;
    this.onError = options.onError ?? (() => {});
    this.progressTimer = options.timer ?? unrefTimer;
    this.progressMs = options.progressIntervalMs ?? 600_000;
    if (this.progressMs > 0) this.scheduleProgress();
  }

  /** A response of `w` at `revision` (its header's revision) with `events` (the array itself, not a copy). */
  private response(w: Watcher, revision: number, events: Event[]): WatchResponse {
    return { header: this.header(revision), watchId: w.id, created: false, canceled: false, compactRevision: 0, cancelReason: '', events };
  }

  /** The header of a response at `revision`: `{ revision }`, or what `responseHeader` makes of it. */
  private header(revision: number): ResponseHeader {
    const make = this.makeHeader;
    if (make === undefined) return { revision };
    try {
      return make(revision);
    } catch (err) {
      callIsolated(() => {
        throw err;
      });
      return { revision };
    }
  }

  /**
   * Arms the next periodic progress notification in `remaining` ms. An
   * interval longer than a timer can wait (Node's `setTimeout` takes at most
   * 2^31 - 1 ms and fires after 1 ms for more) is waited in steps.
   */
  private scheduleProgress(remaining = this.progressMs): void {
    const step = Math.min(remaining, MAX_TIMER_MS);
    this.progressHandle = this.progressTimer.setTimeout(() => {
      this.progressHandle = undefined;
      if (this.closed) return;
      if (remaining > step) {
        this.scheduleProgress(remaining - step);
        return;
      }
      this.periodicProgress();
      this.scheduleProgress();
    }, step);
  }

  /**
   * Whether some registered watcher asks for `prevKv`: the store attaches
   * the previous version to the events it writes only then (reading it may
   * take a database read). A watcher that meets an event without it catches
   * up from history instead (see {@link notify}).
   */
  wantsPrevKv(): boolean {
    return this.prevKvWatchers > 0;
  }

  /** Number of watchers in each group, and of watches from now waiting to start ({@link holdFromNow}), for tests and metrics. */
  sizes(): { synced: number; unsynced: number; victims: number; waiting: number } {
    return { synced: this.synced.size, unsynced: this.unsynced.size, victims: this.victims.size, waiting: this.waiting.size };
  }

  /**
   * Holds back the watches from now created from this call until the
   * matching {@link releaseFromNow}: each is created at once (its id taken,
   * `cancel()` working, its progress requests kept) but starts only when
   * the last hold is released, after the revision the store has then. For
   * a member whose store may be behind what it answered before it
   * restarted: it starts its watches from now once it has caught up, as
   * etcd serves no request before its restarted server is ready. Holds
   * nest; watches with a start revision are not held.
   */
  holdFromNow(): void {
    this.holds++;
  }

  /**
   * Releases a hold of {@link holdFromNow}; the last one starts the watches
   * from now created meanwhile, each after the last revision notified
   * (while a restore runs, the restored revision), as if created now: a
   * progress notification asked for meanwhile goes out then, at that
   * revision. Does nothing once the watches have ended ({@link close}).
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when no hold is left to
   *   release (nothing changes)
   */
  releaseFromNow(): void {
    if (this.holds === 0) throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'mvcc: releaseWatchesFromNow: no hold of the watches from now to release');
    this.holds--;
    if (this.holds > 0 || this.closed) return;
    const cur = this.fromNow();
    for (const w of this.waiting) {
      w.minRev = cur + 1;
      this.toSynced(w);
    }
    this.waiting.clear();
  }

  /**
   * The revision a watch from now starts after: the last revision handed
   * to watchers (one executed but not yet notified, in a batch being
   * applied, reaches the watch with that notification, after which a
   * progress notification may cover it). While a restore runs, the
   * restored revision, as for a read made meanwhile (which waits for the
   * restore): etcd's Restore holds the store's lock, and a watch created
   * meanwhile starts after it.
   */
  private fromNow(): number {
    const flushed = this.source.flushedRevision();
    return this.restoring ? Math.max(flushed, this.restoredRevision) : flushed;
  }

  /**
   * Creates a watch (see {@link WatchCreateRequest}). A start revision of 0
   * means the next revision (while a restore runs, the one after the
   * restored revision: see {@link beginRestore}; while watches from now
   * are held, the one after the revision the store has when the hold is
   * released: see {@link holdFromNow}); a past one replays history first.
   * A negative one is below the compaction revision once the store has
   * compacted (the watch is created, then cancelled with
   * `compactRevision`, as in etcd), and means the next revision before.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for a malformed request or a watch id in use
   * @throws FaultError `QUORUMKV_STORAGE_CLOSED` once {@link close} has ended the watches
   */
  watch(caller: WatchCreateRequest): Watcher {
    // a fault, as on a closed store: the request itself is fine
    if (this.closed) throw new FaultError(ErrorCode.STORAGE_CLOSED, 'mvcc: store is closed');
    checkWatchRequest(caller);
    // the watch's own copy: a caller that changes its request object
    // afterwards (to create the next watch with it), or the bytes of its
    // key and range end, must not change this watch's request, options
    // (prevKv, filters, progressNotify) nor its prevKv count
    const req: WatchCreateRequest = Object.freeze({
      ...caller,
      key: new Uint8Array(caller.key),
      ...(caller.rangeEnd !== undefined ? { rangeEnd: new Uint8Array(caller.rangeEnd) } : {}),
      ...(caller.filters !== undefined ? { filters: Object.freeze([...caller.filters]) as WatchFilter[] } : {}),
    });
    let id = req.watchId ?? 0;
    if (id !== 0 && this.byId.has(id)) throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'mvcc: duplicate watch ID provided on the WatchStream');
    if (id === 0) {
      while (this.byId.has(this.nextId)) this.nextId++;
      id = this.nextId++;
    }
    const skey = toSkey(req.key);
    const end = toIndexEnd(req.rangeEnd);
    const cur = this.fromNow();
    const start = req.startRevision ?? 0;
    // a negative start is below every revision: once the store has
    // compacted (at 1 or above) it is below the compaction revision, and
    // the catch-up cancels the watch with it, as etcd does; before, it
    // means the next revision, as 0 (etcd's watch from -1; etcd 3.4 cancels
    // one from -2 or less with a compactRevision of -1, naming no compaction)
    const synced = start === 0 || (start < 0 && this.source.compactRevision() < 1) || start > cur;
    const minRev = synced ? Math.max(cur + 1, start) : start;
    const w = Watcher.create(this, id, req, skey, end, minRev, this.capacity);
    if (end !== undefined && end !== '' && end <= skey) {
      // an empty range: created and cancelled at once (etcd's ErrEmptyWatcherRange)
      w.close({ ...this.response(w, this.source.flushedRevision(), []), canceled: true, cancelReason: 'mvcc: watcher range is empty' });
      return w;
    }
    this.byId.set(id, w);
    if (req.prevKv) this.prevKvWatchers++;
    if (synced && start <= 0 && this.holds > 0) {
      // its start is set when the hold is released (releaseFromNow)
      w.state = 'waiting';
      this.waiting.add(w);
    } else if (synced) {
      w.state = 'synced';
      this.synced.add(w);
    } else {
      w.state = 'unsynced';
      this.unsynced.add(w);
      this.kick();
    }
    return w;
  }

  /** @internal Watcher.cancel() */
  cancelWatcher(w: Watcher): void {
    this.waiting.delete(w);
    this.synced.delete(w);
    this.unsynced.delete(w);
    this.victims.delete(w);
    this.reading.delete(w);
    if (this.byId.get(w.id) === w) this.forget(w);
  }

  private forget(w: Watcher): void {
    this.byId.delete(w.id);
    if (w.request.prevKv) this.prevKvWatchers--;
  }

  /** @internal the watcher's queue has room again */
  watcherDrained(w: Watcher): void {
    if (w.state === 'victim') this.retryVictim(w);
    else if (w.state === 'unsynced') this.kick();
    else if (w.state === 'synced') this.sendPendingProgress(w);
  }

  /** Moves a watcher that has every revision up to the last notified one queued to the synced group. */
  private toSynced(w: Watcher): void {
    w.state = 'synced';
    this.synced.add(w);
    this.sendPendingProgress(w);
  }

  /**
   * Sends a synced watcher the progress notification it was asked for while
   * it could not have it (catching up, or a full queue); one whose queue is
   * full gets it once its consumer makes room.
   */
  private sendPendingProgress(w: Watcher): void {
    if (!w.progressPending || w.fullUntilDrained()) return;
    w.progressPending = false;
    w.offer(this.response(w, this.syncedUpTo(w), []));
  }

  /**
   * The revision a synced watcher has had every event up to: the last one
   * notified. While a restore runs, a watcher that starts after that (one
   * from now created meanwhile starts after the restored revision) has had
   * every event up to the revision before its start, at most the restored
   * one: a client resuming from the revision after the last notified one
   * would meet a compaction the snapshot brings, though the watch needs
   * nothing before its start.
   */
  private syncedUpTo(w: Watcher): number {
    const flushed = this.source.flushedRevision();
    if (!this.restoring) return flushed;
    return Math.max(flushed, Math.min(w.minRev - 1, this.restoredRevision));
  }

  /**
   * Hands the events of revisions just committed to the synced watchers
   * (called by the store, in revision order, right after each commit).
   */
  notify(revs: RevisionEvents[]): void {
    if (revs.length === 0) return;
    const lastRev = revs[revs.length - 1]!.revision;
    this.notifiedUpTo = lastRev;
    // watchers whose earlier notification waits for reads of prevKvs get
    // this one kept behind it, while their queue has room for them all
    const holding: Watcher[] = [];
    for (const [w, r] of this.reading) {
      if (r.attached && w.queued + r.held.length > this.capacity) r.attached = false;
      if (r.attached) holding.push(w);
    }
    if (this.synced.size === 0 && holding.length === 0) return;
    const batches = new Map<Watcher, Event[]>();
    /** Watchers that want `prevKv` and met events written without it, with those events' places in their list. */
    let unread: Map<Watcher, number[]> | undefined;
    // a compaction applied in this batch may have passed the revisions notified
    const compactRev = this.source.compactRevision();
    for (const { revision, events, withPrevKv } of revs) {
      for (const ev of events) {
        const skey = toSkey(ev.kv.key);
        const add = (w: Watcher): void => {
          if (revision < w.minRev || !this.passes(w, ev)) return;
          let out = w.request.prevKv || ev.prevKv === undefined ? ev : Object.freeze({ type: ev.type, kv: ev.kv });
          let list = batches.get(w);
          if (list === undefined) batches.set(w, (list = []));
          if (w.request.prevKv && !withPrevKv && ev.prevKv === undefined && (ev.type === 'DELETE' || ev.kv.version > 1)) {
            // written before the watcher came, when no one asked for
            // prevKv: the previous version (at revision - 1) is read now
            // when that needs no wait, else by a read that waits before
            // the response goes out. One a compaction removed is none, as
            // etcd sends it. (A revision written with prevKvs has none
            // where there was no previous version: a key put and deleted
            // in one txn.)
            const now = this.source.kvAtNow;
            const prev = revision - 1 < compactRev ? undefined : now === undefined ? null : now.call(this.source, ev.kv.key, revision - 1);
            if (prev === null) {
              let places = (unread ??= new Map()).get(w);
              if (places === undefined) unread.set(w, (places = []));
              places.push(list.length);
            } else if (prev !== undefined) {
              out = Object.freeze({ ...ev, prevKv: prev });
            }
          }
          list.push(out);
        };
        this.synced.forEachMatch(skey, add);
        for (const w of holding) if (watches(w, skey)) add(w);
      }
    }
    for (const w of holding) {
      const r = this.reading.get(w)!;
      const events = batches.get(w);
      batches.delete(w);
      if (events !== undefined) r.held.push({ lastRev, events, places: unread?.get(w) ?? [] });
      r.upTo = lastRev;
    }
    if (unread !== undefined) {
      for (const [w, places] of unread) {
        const events = batches.get(w);
        if (events === undefined) continue; // kept behind an earlier one
        batches.delete(w);
        // the response waits aside, as a slow consumer's does, until its
        // prevKvs are read, and later notifications wait behind it. Read
        // again from history instead, these revisions could be compacted
        // by then, and the watch cancelled where etcd sends them.
        this.synced.delete(w);
        w.state = 'victim';
        w.victimResponses = [];
        w.victimLastRev = events[0]!.kv.modRevision - 1;
        this.victims.add(w);
        const r: PrevKvReading = { held: [{ lastRev, events, places }], upTo: lastRev, attached: true, waitsForRestore: false };
        this.reading.set(w, r);
        this.startReads(w, r);
      }
    }
    for (const [w, events] of batches) {
      const resp = this.response(w, lastRev, events);
      if (w.offer(resp)) continue;
      // the consumer is behind: keep the response aside, stop notifying it
      this.synced.delete(w);
      w.state = 'victim';
      w.victimResponses = [resp];
      w.victimLastRev = lastRev;
      this.victims.add(w);
    }
  }

  private startReads(w: Watcher, r: PrevKvReading): void {
    this.prevKvReads++;
    this.readPrevKvs(w, r)
      .catch((err: unknown) => {
        this.onError(err);
        // as after a catch-up pass that fails: the watcher reads those
        // revisions from history (it was left aside for good)
        if (this.reading.get(w) === r) this.resumeFromHistory(w, r);
      })
      .finally(() => this.prevKvReads--);
  }

  /**
   * Reads the previous versions of the events of `r`'s notifications at
   * their places (each at its revision - 1; none when compacted meanwhile,
   * as etcd sends it), those kept while it reads included, then sends the
   * responses on as a victim's. A restore replaces the records the key
   * index points at: a read that overlapped one is made again once it has
   * ended, from the restored records. The notifications themselves stay:
   * they were made, and a snapshot holds the same revisions.
   */
  private async readPrevKvs(w: Watcher, r: PrevKvReading): Promise<void> {
    for (;;) {
      const n = r.held.find((x) => x.places.length > 0);
      if (n === undefined) break;
      if (this.restoring) {
        r.waitsForRestore = true; // onRestore starts the reads again
        return;
      }
      const restores = this.restores;
      const i = n.places[0]!;
      const ev = n.events[i]!;
      const prev = await this.source.kvAt(ev.kv.key, ev.kv.modRevision - 1);
      if (this.reading.get(w) !== r) return; // cancelled, or the store closed
      if (this.restores !== restores) continue; // read again
      n.places.shift();
      if (prev !== undefined) n.events[i] = Object.freeze({ ...ev, prevKv: prev });
    }
    if (this.reading.get(w) !== r) return;
    this.reading.delete(w);
    w.victimResponses = r.held.map((n) => this.response(w, n.lastRev, n.events));
    w.victimLastRev = r.upTo;
    this.retryVictim(w);
  }

  /** Drops `r`'s notifications: the watcher reads them from history. */
  private resumeFromHistory(w: Watcher, r: PrevKvReading): void {
    this.reading.delete(w);
    this.victims.delete(w);
    w.minRev = Math.max(w.minRev, r.held[0]!.events[0]!.kv.modRevision);
    this.toUnsynced(w);
  }

  private passes(w: Watcher, ev: Event): boolean {
    const f = w.request.filters;
    if (f === undefined || f.length === 0) return true;
    return !f.includes(ev.type === 'PUT' ? 'NOPUT' : 'NODELETE');
  }

  private retryVictim(w: Watcher): void {
    if (this.reading.has(w)) return; // readPrevKvs takes it up
    while (w.victimResponses.length > 0) {
      if (!w.offer(w.victimResponses[0]!)) return;
      w.victimResponses.shift();
    }
    this.victims.delete(w);
    w.minRev = Math.max(w.minRev, w.victimLastRev + 1);
    this.toSyncedOrUnsynced(w);
  }

  /** Moves a watcher (from the synced group, or from none) to catch up from history. */
  private toUnsynced(w: Watcher): void {
    this.synced.delete(w);
    w.state = 'unsynced';
    this.unsynced.add(w);
    this.kick();
  }

  private toSyncedOrUnsynced(w: Watcher): void {
    if (w.minRev > this.source.flushedRevision()) {
      this.toSynced(w);
    } else {
      this.toUnsynced(w);
    }
  }

  /**
   * Sends a progress notification (no events, `header.revision` = the last
   * revision notified; while a restore runs, for a watch that starts after
   * it, the revision before its start, at most the restored revision) to
   * every watcher, or to one (etcd's on-demand
   * progress). A watcher that is catching up (or whose queue is full) gets
   * it once it has caught up (and has room), at the revision it has then
   * had everything up to, as etcd defers the progress it was asked for
   * until the watch is synced (etcd #15220, #17507): a watch from a past
   * revision that finds no event in history still hears how far it got.
   * Requests made meanwhile make one notification. A watcher that has
   * ended gets none.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `w` is given and is
   *   not a watcher created by this store (nothing is sent)
   */
  requestProgress(w?: Watcher): void {
    if (w !== undefined && !(w instanceof Watcher && w.hostedBy(this))) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'mvcc: requestProgress: the watcher must be one this store created');
    }
    const targets = w === undefined ? [...this.byId.values()] : this.byId.get(w.id) === w ? [w] : [];
    for (const t of targets) {
      t.progressPending = true;
      if (t.state === 'synced') this.sendPendingProgress(t);
    }
  }

  private periodicProgress(): void {
    for (const w of this.synced.watchers) {
      if (w.request.progressNotify && !w.sentSinceProgress && !w.isFull()) w.offer(this.response(w, this.syncedUpTo(w), []));
      w.sentSinceProgress = false;
    }
  }

  /**
   * A snapshot restore starts replacing the history: no catch-up pass runs
   * until {@link onRestore}, and a pass already reading drops what it read.
   * @param restoredRevision - the revision the store has once restored,
   *   when known: a watch from now created until {@link onRestore} starts
   *   after it (without it, after the revision notified last)
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for a `restoredRevision`
   *   that is not a non-negative safe integer (nothing changes)
   */
  beginRestore(restoredRevision?: number): void {
    if (restoredRevision !== undefined && !(typeof restoredRevision === 'number' && Number.isSafeInteger(restoredRevision) && restoredRevision >= 0)) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `mvcc: beginRestore: the restored revision must be a non-negative safe integer, got ${describeValue(restoredRevision)}`);
    }
    this.restores++;
    this.restoring = true;
    this.restoredRevision = restoredRevision ?? 0;
  }

  /**
   * After the store was replaced by a snapshot: every synced watcher catches
   * up again from the new backend, from the revision after the last one
   * notified (or is cancelled if its revision is gone); one whose
   * notifications wait for `prevKv` reads does so once they went out (the
   * reads a restore overlapped are made again, from the restored records).
   */
  onRestore(): void {
    this.restores++;
    this.restoring = false;
    this.restoredRevision = 0;
    for (const w of [...this.synced.watchers]) {
      // a synced watcher has had every revision notified so far (its
      // minRev is not moved on each notification): the restored history is
      // read from the next one, never again from where it once started
      w.minRev = Math.max(w.minRev, this.notifiedUpTo + 1);
      this.toUnsynced(w);
    }
    for (const [w, r] of [...this.reading]) {
      // one waiting for prevKv reads keeps the notifications made so far
      // and reads the restored history after them once they went out
      r.attached = false;
      if (r.waitsForRestore) {
        r.waitsForRestore = false;
        this.startReads(w, r);
      }
    }
    this.kick(); // also for the watchers that were catching up
  }

  /**
   * Ends every watch (the store is closing, or failed): each gets, after
   * what it has queued (a slow consumer's responses kept aside included), a
   * last response with `canceled: true` and `cancelReason`, whose
   * `header.revision` is the last revision the watch was sent events up
   * to (while a restore runs, for a watch that starts after it, the
   * revision before its start, at most the restored revision; for a watch
   * from now still held back, {@link holdFromNow}, the revision it would
   * have started after), so that a client resuming from it misses nothing.
   * Idempotent.
   */
  close(cancelReason = 'mvcc: store closed'): void {
    if (this.closed) return;
    this.closed = true;
    if (this.progressHandle !== undefined) this.progressTimer.clearTimeout(this.progressHandle as never);
    this.progressHandle = undefined;
    const all = [...this.byId.values()];
    this.byId.clear();
    this.prevKvWatchers = 0;
    this.unsynced.clear();
    this.victims.clear();
    this.reading.clear();
    this.waiting.clear();
    // while a restore runs, a watch created meanwhile covers the restored history up to its start
    const top = this.fromNow();
    for (const w of all) {
      this.synced.delete(w);
      // synced: sent everything notified (see syncedUpTo); a victim: up to
      // what it kept aside, delivered now; catching up: up to where it has
      // read; waiting to start: it would have started after `top`
      const held = w.state === 'victim' ? w.victimResponses : [];
      const covered = w.state === 'synced' ? this.syncedUpTo(w) : w.state === 'victim' ? w.victimLastRev : w.state === 'waiting' ? top : w.minRev - 1;
      w.victimResponses = [];
      w.close({ ...this.response(w, Math.min(top, covered), []), canceled: true, cancelReason }, held);
    }
  }

  /** Resolves once no catch-up pass or prevKv read is running or scheduled (for tests). */
  async idle(): Promise<void> {
    while (this.syncing || this.kicked || this.prevKvReads > 0) await new Promise((r) => setImmediate(r));
  }

  private kick(): void {
    if (this.kicked || this.closed) return;
    this.kicked = true;
    setImmediate(() => {
      this.kicked = false;
      void this.runSync();
    });
  }

  private async runSync(): Promise<void> {
    if (this.syncing) {
      this.again = true;
      return;
    }
    this.syncing = true;
    try {
      while (!this.closed && (await this.syncOnce()));
    } catch (err) {
      this.onError(err);
    } finally {
      this.syncing = false;
      if (this.again) {
        this.again = false;
        this.kick();
      }
    }
  }

  private cancelCompacted(w: Watcher, compactRev: number): void {
    this.unsynced.delete(w);
    this.forget(w);
    w.close({
      ...this.response(w, this.source.flushedRevision(), []),
      canceled: true,
      compactRevision: compactRev,
      cancelReason: 'mvcc: required revision has been compacted',
    });
  }

  /** One catch-up pass; true when it delivered something (another pass may help). */
  private async syncOnce(): Promise<boolean> {
    if (this.restoring) return false; // onRestore kicks the catch-up again
    const flushed = this.source.flushedRevision();
    const compactRev = this.source.compactRevision();
    const chosen: Watcher[] = [];
    let from = Number.POSITIVE_INFINITY;
    for (const w of [...this.unsynced]) {
      if (w.minRev < compactRev) {
        this.cancelCompacted(w, compactRev);
      } else if (w.minRev > flushed) {
        this.unsynced.delete(w);
        this.toSynced(w);
      } else if (!w.fullUntilDrained()) {
        chosen.push(w);
        from = Math.min(from, w.minRev);
      }
      // (a full one is taken up again when its consumer makes room)
    }
    if (chosen.length === 0) return false;
    const to = Math.min(flushed, from + this.maxRevs - 1);
    // a restore while the read runs replaces the history it read: that pass
    // is dropped and the next one reads the restored history
    const restores = this.restores;
    const stored = await this.source.readEvents(from, to);
    if (this.restores !== restores) return true;
    for (const w of chosen) {
      if (w.state !== 'unsynced') continue;
      const cr = this.source.compactRevision();
      if (w.minRev < cr) {
        this.cancelCompacted(w, cr);
        continue;
      }
      if (w.minRev > to) continue;
      const events: Event[] = [];
      for (const s of stored) {
        if (s.revision < w.minRev || !watches(w, s.skey) || !this.passes(w, s.event)) continue;
        // below the compaction revision: records a physical compaction is removing
        if (s.revision < cr) continue;
        events.push(s.event);
      }
      if (w.request.prevKv) {
        for (let i = 0; i < events.length; i++) {
          const ev = events[i]!;
          const creation = ev.type === 'PUT' && ev.kv.createRevision === ev.kv.modRevision;
          if (creation) continue;
          // not once a restore began: the key index would point at records it removes
          if (this.restores !== restores) return true;
          const prev = await this.source.kvAt(ev.kv.key, ev.kv.modRevision - 1);
          if (prev !== undefined) events[i] = Object.freeze({ ...ev, prevKv: prev });
        }
        if (this.restores !== restores) return true;
        if (w.state !== 'unsynced') continue;
      }
      if (events.length > 0 && !w.offer(this.response(w, to, events))) continue;
      w.minRev = Math.max(w.minRev, to + 1);
      if (w.minRev > this.source.flushedRevision()) {
        this.unsynced.delete(w);
        this.toSynced(w);
      }
    }
    return true;
  }
}
