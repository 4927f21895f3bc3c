/**
 * A watch opened through a simulation client: it consumes the member's
 * watch, records every response for the watch checker, and hands the same
 * responses to its user through both faces of the `Watch` interface.
 * @module
 */
import { EventEmitter } from 'eventemitter3';
import type { Event, WatchResponse } from '../../mvccpb/index.js';
import { emitIsolated } from '../../isolated-emit.js';
import type { Watch, WatchEvents } from '../../server/index.js';
import type { WatchEventRecord, WatchKeyValue, WatchResponseRecord, WatchStreamRecord } from '../watch-checker.js';
import { keyFromBytes } from '../key-range.js';

/** A {@link WatchStreamRecord} the simulation fills in as responses arrive. */
export type MutableWatchStream = {
  -readonly [K in keyof WatchStreamRecord]: WatchStreamRecord[K];
} & { responses: WatchResponseRecord[] };

/**
 * A stored key-value as the watch checker sees it: a key or value that is
 * not UTF-8 as `keyFromBytes` writes it, so that distinct keys stay
 * distinct (and in etcd's order) and distinct values differ.
 */
export function watchKv(kv: Event['kv']): WatchKeyValue {
  return {
    key: keyFromBytes(kv.key),
    modRevision: kv.modRevision,
    value: keyFromBytes(kv.value),
    createRevision: kv.createRevision,
    version: kv.version,
  };
}

/** An event as the watch checker sees it. */
export function watchEvent(e: Event): WatchEventRecord {
  return { type: e.type, kv: watchKv(e.kv), prevKv: e.prevKv === undefined ? null : watchKv(e.prevKv) };
}

const DATA_EVENTS = new Set<string>(['response', 'put', 'delete', 'progress', 'canceled']);

/**
 * A `Watch` that records what it delivers. Responses are emitted as events
 * at once, and buffered for the async iterator until the emitter face is in
 * use: once a data event (`response`, `put`, `delete`, `progress`,
 * `canceled`) has a listener and the iterator has not been asked for, the
 * buffer is dropped and nothing more is buffered (a listener-only consumer
 * holds no responses). Use one face or the other.
 */
export class RecordedWatch extends EventEmitter<WatchEvents> implements Watch {
  readonly id: number;
  private readonly queue: WatchResponse[] = [];
  private waiter: ((r: IteratorResult<WatchResponse>) => void) | undefined;
  private ended = false;
  /** The iterator has been asked for. */
  private iterating = false;
  /** A data event has had a listener. */
  private listening = false;

  constructor(
    private readonly inner: Watch,
    readonly record: MutableWatchStream,
  ) {
    super();
    this.id = inner.id;
    inner.on('response', (res) => this.onResponse(res));
    inner.on('end', () => this.onEnd());
  }

  private onResponse(res: WatchResponse): void {
    const r = this.record;
    if (res.canceled) {
      r.canceled = true;
      if (res.compactRevision > 0) r.compactRevision = res.compactRevision;
    }
    if (res.events.length > 0) {
      r.responses.push({ events: res.events.map(watchEvent), revision: res.header.revision });
    } else if (!res.canceled && !res.created) {
      r.responses.push({ events: [], revision: res.header.revision, progressNotify: true });
    }
    const w = this.waiter;
    if (w !== undefined) {
      this.waiter = undefined;
      w({ value: res, done: false });
    } else if (this.iterating || !this.listening) this.queue.push(res);
    // as a member's watch delivers them: a listener that throws skips the
    // later listeners of that one event only (its error is thrown again on
    // its own), not the response's other events
    emitIsolated(this, 'response', res);
    if (res.canceled) emitIsolated(this, 'canceled', res);
    else if (res.events.length === 0) emitIsolated(this, 'progress', res);
    for (const ev of res.events) emitIsolated(this, ev.type === 'PUT' ? 'put' : 'delete', ev);
  }

  private onEnd(): void {
    if (this.ended) return;
    this.ended = true;
    const w = this.waiter;
    this.waiter = undefined;
    if (w !== undefined) w({ value: undefined, done: true });
    this.emit('end');
  }

  // The listener types are eventemitter3's own, as in the member's watch.
  /**
   * Adds a listener. One for a data event (all but `end`) makes the emitter
   * face the consumer: unless the iterator has been asked for, responses
   * are no longer buffered for it.
   */
  override on<T extends EventEmitter.EventNames<WatchEvents>>(event: T, fn: EventEmitter.EventListener<WatchEvents, T>, context?: unknown): this {
    this.listen(event);
    super.on(event, fn, context);
    return this;
  }

  /** Same as {@link RecordedWatch.on}. */
  override addListener<T extends EventEmitter.EventNames<WatchEvents>>(event: T, fn: EventEmitter.EventListener<WatchEvents, T>, context?: unknown): this {
    return this.on(event, fn, context);
  }

  /** Adds a listener called once; as {@link RecordedWatch.on}. */
  override once<T extends EventEmitter.EventNames<WatchEvents>>(event: T, fn: EventEmitter.EventListener<WatchEvents, T>, context?: unknown): this {
    this.listen(event);
    super.once(event, fn, context);
    return this;
  }

  private listen(event: string): void {
    if (this.listening || !DATA_EVENTS.has(event)) return;
    this.listening = true;
    if (!this.iterating) this.queue.length = 0;
  }

  /** Stops the watch (the member's watch is cancelled). Idempotent. */
  cancel(): Promise<void> {
    return this.inner.cancel();
  }

  /** Every response, in order; ends when the watch ends (returning early cancels it). */
  [Symbol.asyncIterator](): AsyncIterator<WatchResponse> {
    this.iterating = true;
    return {
      next: () => {
        const res = this.queue.shift();
        if (res !== undefined) return Promise.resolve({ value: res, done: false });
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => {
          this.waiter = resolve;
        });
      },
      return: async () => {
        await this.cancel();
        return { value: undefined, done: true };
      },
    };
  }
}
