/**
 * The seam through which {@link MemoryNetwork} delays its deliveries, so a
 * virtual clock can drive it.
 * @module
 */

/**
 * Runs callbacks later. `MemoryNetwork` calls `schedule` for every delivery and
 * every report it makes, in an order fixed by its seed; a deterministic
 * simulation supplies a scheduler backed by its virtual clock (a priority
 * queue keyed by `(now + delayMs, insertion order)`), so the same seed and the
 * same sends give the same deliveries at the same virtual times.
 *
 * Contract: callbacks with the same due time run in the order they were
 * scheduled; a callback never runs synchronously inside `schedule`.
 */
export interface Scheduler {
  /**
   * Runs `fn` once, `delayMs` milliseconds from now (virtual or real). `delayMs`
   * is a non-negative integer; 0 means "as soon as possible, after the
   * current synchronous code".
   */
  schedule(delayMs: number, fn: () => void): void;
}

/**
 * The real-time scheduler: `setImmediate` for a delay of 0 (the messages of
 * one Ready are delivered in order once the current turn of the event loop
 * has run its promise callbacks, as a message from another process arrives
 * between two turns), `setTimeout` otherwise. Timers are not unref'd: a
 * pending delivery keeps the process alive for at most the configured
 * maximum delay.
 *
 * Delivering in the same turn (`queueMicrotask`) let the members of a
 * cluster in one process interleave their work with the sender's: a
 * leader's apply of a commit, and with it the proposer's answer, waited for
 * its followers to handle the message that carried the commit. Three
 * `KvNode` members taking puts one at a time gained a tenth to a fifth of
 * the puts per second from this (docs/performance.md).
 */
export const realTimeScheduler: Scheduler = {
  schedule(delayMs: number, fn: () => void): void {
    if (delayMs <= 0) setImmediate(fn);
    else setTimeout(fn, delayMs);
  },
};
