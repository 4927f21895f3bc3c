/**
 * Events emitted from inside a member's own loops (the Raft loop, the apply
 * queue): a listener that throws must not stop the loop, and with it the
 * member, for a bug of the caller's.
 * @internal
 * @module
 */
import type { EventEmitter } from 'eventemitter3';

/**
 * Emits `event` on `emitter`. A listener that throws skips the later
 * listeners of that event, as with any `EventEmitter`, and its error is
 * thrown again on its own (an uncaught exception, as from a listener called
 * by an I/O callback) instead of into the caller.
 * @returns whether the event had listeners
 * @internal
 */
export function emitIsolated<T extends EventEmitter.ValidEventTypes, E extends EventEmitter.EventNames<T>>(
  emitter: EventEmitter<T>,
  event: E,
  ...args: EventEmitter.EventArgs<T, E>
): boolean {
  try {
    return emitter.emit(event, ...args);
  } catch (err) {
    queueMicrotask(() => {
      throw err;
    });
    return true;
  }
}
