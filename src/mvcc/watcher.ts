/**
 * A watch as its consumer sees it: an async iterator of
 * {@link WatchResponse}s with an event-emitter face, and `cancel()`.
 * @module
 */
import { EventEmitter } from 'eventemitter3';
import { ErrorCode, UsageError } from '../errors.js';
import { callIsolated } from '../isolated-emit.js';
import type { Event, WatchCreateRequest, WatchResponse } from '../mvccpb/index.js';
import type { IndexRangeEnd } from './tree-index.js';

/** Events of a {@link Watcher}'s emitter face. */
export interface WatcherEvents {
  /** Every response, in order (events, progress, cancellation). */
  response: [WatchResponse];
  /** Each PUT event of a response, in order. */
  put: [Event];
  /** Each DELETE event of a response, in order. */
  delete: [Event];
  /** A progress notification: every event up to `header.revision` has been sent. */
  progress: [WatchResponse];
  /** The store cancelled the watch (compacted start revision, empty range). */
  canceled: [WatchResponse];
  /** No more responses (after a cancellation, `cancel()` or the store closing); emitted after the data listeners got the last response. */
  end: [];
}

/**
 * Where a watcher stands in its store (etcd's watcher groups), or
 * `'waiting'`: a watch from now created while the store holds such
 * watches back, not started yet (see `MvccStore.holdWatchesFromNow`).
 */
export type WatcherState = 'waiting' | 'synced' | 'unsynced' | 'victim' | 'done';

/** What the store needs from a watcher's owner. */
/** @internal What a watcher calls back: the store that created it. */
export interface WatcherHost {
  /** Removes the watcher from the store. */
  cancelWatcher(w: Watcher): void;
  /** The watcher's queue has room again. */
  watcherDrained(w: Watcher): void;
}

const DATA_EVENTS = new Set<string>(['response', 'put', 'delete', 'progress', 'canceled']);

function bothFaces(): UsageError {
  return new UsageError(ErrorCode.INVALID_ARGUMENT, 'watcher: concurrent next() calls (consume a watch as an iterator or through its events, not both)');
}

/**
 * One watch. Consume it either as an async iterator:
 *
 * ```ts
 * const w = store.watch({ key: toBytes('config/'), rangeEnd: prefixEnd('config/') });
 * for await (const resp of w) for (const ev of resp.events) console.log(ev.type, ev.kv.key);
 * ```
 *
 * or through its events (`response`, `put`, `delete`, `progress`,
 * `canceled`, `end`), not both: both faces read the same queue. Doing both
 * fails where it is done with a `UsageError` `QUORUMKV_INVALID_ARGUMENT`:
 * `on`/`once` for a data event throws while a `next()` waits, and `next()`
 * rejects once a data event has a listener, or while another `next()` waits.
 *
 * Events and their key-values are frozen: the watchers of a key share them.
 *
 * Guarantees (etcd's watch API): events come in revision order, each once,
 * a revision's events together in one response; a consumer that falls
 * behind never blocks the store: its responses are buffered up to a bound,
 * then it catches up from the store's history (unless that history is
 * compacted meanwhile: then it is cancelled with `compactRevision`).
 */
export class Watcher extends EventEmitter<WatcherEvents> {
  /** The watch id. */
  readonly id: number;
  /** The request that created the watch: a frozen copy, taken when the watch was created (later changes to the caller's object, or to the bytes of its key and range end, do not reach it). */
  readonly request: Readonly<WatchCreateRequest>;
  /** @internal start of the watched range (binary string) */
  readonly skey: string;
  /** @internal end of the watched range (index form) */
  readonly end: IndexRangeEnd;
  /** @internal first revision not yet delivered or queued */
  minRev: number;
  /** @internal group the watcher is in */
  state: WatcherState = 'unsynced';
  /** @internal responses a victim still has to deliver */
  victimResponses: WatchResponse[] = [];
  /** @internal the revision a victim resumes after */
  victimLastRev = 0;
  /** @internal a response was queued since the last periodic progress */
  sentSinceProgress = false;
  /** @internal a requested progress notification waits for the watcher to catch up, or for room in its queue */
  progressPending = false;

  private readonly queue: WatchResponse[] = [];
  private readonly capacity: number;
  private readonly host: WatcherHost;
  private waiter: ((r: IteratorResult<WatchResponse>) => void) | undefined;
  private ended = false;
  private finished = false;
  private pumping = false;
  private full = false;
  private endEmitted = false;

  /** @internal a watch of the store that created it (the constructor is private: users get watches from `watch()`) */
  static create(host: WatcherHost, id: number, request: WatchCreateRequest, skey: string, end: IndexRangeEnd, minRev: number, capacity: number): Watcher {
    return new Watcher(host, id, request, skey, end, minRev, capacity);
  }

  private constructor(host: WatcherHost, id: number, request: WatchCreateRequest, skey: string, end: IndexRangeEnd, minRev: number, capacity: number) {
    super();
    this.host = host;
    this.id = id;
    this.request = request;
    this.skey = skey;
    this.end = end;
    this.minRev = minRev;
    this.capacity = capacity;
  }

  /** @internal true when `host` created this watcher */
  hostedBy(host: WatcherHost): boolean {
    return this.host === host;
  }

  /** True once the watch is over and every queued response has been read. */
  get done(): boolean {
    return this.ended && this.queue.length === 0;
  }

  /** Number of responses waiting to be read. */
  get queued(): number {
    return this.queue.length;
  }

  /** @internal true when the queue has no room */
  isFull(): boolean {
    return this.queue.length >= this.capacity;
  }

  /**
   * @internal True when the queue has no room; the host then hears when it
   * has again (as after a refused offer).
   */
  fullUntilDrained(): boolean {
    if (this.queue.length < this.capacity) return false;
    this.full = true;
    return true;
  }

  /**
   * @internal Queues a response. Returns false (queuing nothing) when the
   * queue is full or the watch is over.
   */
  offer(resp: WatchResponse): boolean {
    if (this.ended) return false;
    if (this.queue.length >= this.capacity) {
      this.full = true;
      return false;
    }
    this.sentSinceProgress = true;
    this.push(resp);
    return true;
  }

  /**
   * @internal Ends the watch, after `held` (responses a victim kept aside)
   * and a last response when given, all queued even when full.
   */
  close(last?: WatchResponse, held: readonly WatchResponse[] = []): void {
    if (this.ended) return;
    for (const r of held) this.push(r);
    if (last !== undefined) this.push(last);
    this.ended = true;
    this.state = 'done';
    if (this.queue.length === 0) this.finish();
  }

  private push(resp: WatchResponse): void {
    const w = this.waiter;
    if (w !== undefined) {
      this.waiter = undefined;
      w({ value: resp, done: false });
      this.afterTake();
      return;
    }
    this.queue.push(resp);
  }

  private afterTake(): void {
    if (this.ended && this.queue.length === 0) {
      this.finish();
      return;
    }
    if (this.full && this.queue.length < this.capacity) {
      this.full = false;
      this.host.watcherDrained(this);
    }
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    const w = this.waiter;
    this.waiter = undefined;
    if (w !== undefined) w({ value: undefined, done: true });
    // the emitter face says `end` once its listeners have had the last
    // response: the pump reads on to the end and says it then. Said from
    // here, it came before the listeners got a response the pump took from
    // the queue last (the cancelled one of a watch the store ended)
    queueMicrotask(() => {
      if (!this.pumping) this.emitEnd();
    });
  }

  private emitEnd(): void {
    if (this.endEmitted) return;
    this.endEmitted = true;
    // from the pump too: one that throws is an uncaught exception, not a rejection of the pump
    callIsolated(() => this.emit('end'));
  }

  /**
   * The next response; `done` once the watch is over.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` (as a rejection) once the
   *   emitter face reads the watch (a data event has had a listener), or
   *   while another `next()` waits
   */
  next(): Promise<IteratorResult<WatchResponse>> {
    // the emitter face's reads are its own: a next() here would take a
    // response from its listeners, or make the pump's read fail, unhandled
    if (this.pumping) return Promise.reject(bothFaces());
    return this.take();
  }

  /** The next response for either face (the pump's reads, or {@link next}'s). */
  private take(): Promise<IteratorResult<WatchResponse>> {
    const resp = this.queue.shift();
    if (resp !== undefined) {
      this.afterTake();
      return Promise.resolve({ value: resp, done: false });
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    if (this.waiter !== undefined) return Promise.reject(bothFaces());
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  /** Cancels the watch (from the iterator's `return`, too). */
  async return(): Promise<IteratorResult<WatchResponse>> {
    await this.cancel();
    return { value: undefined, done: true };
  }

  /**
   * The watch itself: `for await` yields every response in order and ends
   * when the watch is over; leaving the loop early cancels the watch.
   */
  [Symbol.asyncIterator](): AsyncIterator<WatchResponse> {
    return this;
  }

  /**
   * Cancels the watch: no more responses are produced; responses already
   * queued are dropped and the iterator ends.
   */
  async cancel(): Promise<void> {
    const wasEnded = this.ended;
    if (!wasEnded) this.host.cancelWatcher(this);
    this.queue.length = 0;
    if (!wasEnded) this.close();
    else this.finish();
  }

  // The listener types are eventemitter3's own: an override that spells
  // them differently compiles here but not in every consumer's project
  // (TS2416 under `strict: false` with `skipLibCheck: false`).
  /**
   * Adds a listener; one for a data event (all but `end`) starts reading the
   * watch's responses. A data listener that throws skips the later
   * listeners of that event; its error is thrown again on its own (an
   * uncaught exception) and delivery goes on.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for a data event while a
   *   `next()` of the iterator face waits
   */
  override on<T extends EventEmitter.EventNames<WatcherEvents>>(event: T, fn: EventEmitter.EventListener<WatcherEvents, T>, context?: unknown): this {
    if (DATA_EVENTS.has(event)) this.startPump();
    super.on(event, fn, context);
    return this;
  }

  /**
   * Same as {@link Watcher.on}: adds a listener, and a listener of a data
   * event (`response`, `put`, `delete`, `progress`, `canceled`) starts
   * consuming the responses, which the iterator then no longer sees.
   */
  override addListener<T extends EventEmitter.EventNames<WatcherEvents>>(event: T, fn: EventEmitter.EventListener<WatcherEvents, T>, context?: unknown): this {
    return this.on(event, fn, context);
  }

  /**
   * Adds a listener called once; as {@link on}.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` as {@link on}
   */
  override once<T extends EventEmitter.EventNames<WatcherEvents>>(event: T, fn: EventEmitter.EventListener<WatcherEvents, T>, context?: unknown): this {
    if (DATA_EVENTS.has(event)) this.startPump();
    super.once(event, fn, context);
    return this;
  }

  private startPump(): void {
    if (this.pumping) return;
    // an iterator is waiting: the pump's next() would be refused later, unhandled
    if (this.waiter !== undefined) throw bothFaces();
    this.pumping = true;
    queueMicrotask(() => void this.pump());
  }

  private async pump(): Promise<void> {
    for (;;) {
      const r = await this.take();
      if (r.done) {
        this.emitEnd();
        return;
      }
      const resp = r.value;
      this.deliver('response', resp);
      if (resp.canceled) this.deliver('canceled', resp);
      else if (resp.events.length === 0) this.deliver('progress', resp);
      for (const ev of resp.events) this.deliver(ev.type === 'PUT' ? 'put' : 'delete', ev);
    }
  }

  /**
   * Emits one data event. A listener that throws does not stop the watch:
   * its error is thrown again on its own (an uncaught exception, as from a
   * listener of any I/O callback), and delivery goes on. Before, it ended
   * the pump, and with it the watch, with an unhandled rejection.
   */
  private deliver<E extends 'response' | 'canceled' | 'progress' | 'put' | 'delete'>(event: E, arg: WatcherEvents[E][0]): void {
    callIsolated(() => (this.emit as (e: E, a: WatcherEvents[E][0]) => boolean)(event, arg));
  }
}
