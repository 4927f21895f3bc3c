/**
 * Callbacks of the caller's (event listeners, a network's `onEvent`) called
 * from inside the library's own loops (a member's Raft loop, its apply
 * queue, a watch's delivery, a session's keep-alive): one that throws must
 * not stop the loop, nor skip what the loop does next, for a bug of the
 * caller's. Shared by every layer.
 * @internal
 * @module
 */
import type { EventEmitter } from 'eventemitter3';

/**
 * Calls `fn(...args)`. When it throws, its error is thrown again on its own
 * (an uncaught exception, as from a callback of any I/O) instead of into
 * the caller.
 * @internal
 */
export function callIsolated<A extends unknown[]>(fn: (...args: A) => unknown, ...args: A): void {
  try {
    fn(...args);
  } catch (err) {
    queueMicrotask(() => {
      throw err;
    });
  }
}

/**
 * Emits `event` on `emitter` through {@link callIsolated}: a listener that
 * throws skips the later listeners of that event, as with any
 * `EventEmitter`, and its error is thrown again on its own.
 * @internal
 */
export function emitIsolated<T extends EventEmitter.ValidEventTypes, E extends EventEmitter.EventNames<T>>(
  emitter: EventEmitter<T>,
  event: E,
  ...args: EventEmitter.EventArgs<T, E>
): void {
  callIsolated(() => emitter.emit(event, ...args));
}
