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
 * The real-time scheduler: `queueMicrotask` for a delay of 0 (so the messages
 * of one Ready are delivered right after the code that sent them, in order),
 * `setTimeout` otherwise. Timers are not unref'd: a pending delivery keeps the
 * process alive for at most the configured maximum delay.
 */
export const realTimeScheduler: Scheduler = {
  schedule(delayMs: number, fn: () => void): void {
    if (delayMs <= 0) queueMicrotask(fn);
    else setTimeout(fn, delayMs);
  },
};
