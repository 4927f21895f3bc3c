/**
 * Time as the node layer sees it. `RaftNode` only reads time and schedules
 * callbacks through a {@link Clock}, so a simulation can run a whole cluster on
 * virtual time ({@link VirtualClock}) and the same code runs on real timers in
 * production ({@link systemClock}).
 * @module
 */
import { createClock } from '@sinonjs/fake-timers';

/** An opaque timer handle returned by {@link Clock.setTimeout}. */
export type TimerHandle = unknown;

/** The time source and timer service of a node. Times are in milliseconds. */
export interface Clock {
  /** Current time in ms (wall clock for {@link systemClock}, virtual otherwise). */
  now(): number;
  /** Runs `fn` once after `ms` milliseconds. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timer; unknown or already-fired handles are ignored. */
  clearTimeout(handle: TimerHandle): void;
  /**
   * Optional: runs `fn` once the current turn of the event loop is over
   * (its promise continuations included), without waiting for a timer.
   * {@link systemClock} uses `setImmediate`; a clock without it gets
   * `setTimeout(fn, 0)` instead.
   */
  soon?(fn: () => void): void;
}

/** Real time: `Date.now()` and the global timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
  soon: (fn) => {
    setImmediate(fn);
  },
};

/**
 * Virtual time for deterministic tests, backed by `@sinonjs/fake-timers`
 * (a clock object of its own; the global timers are not touched). Time moves
 * only when {@link VirtualClock.advance} or {@link VirtualClock.advanceAsync}
 * is called, and due timers fire in order of due time, then creation.
 */
export class VirtualClock implements Clock {
  private readonly clock;

  /** @param startMs - the initial virtual time in ms (default 0) */
  constructor(startMs = 0) {
    this.clock = createClock(startMs);
  }

  now(): number {
    return this.clock.now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.clock.setTimeout(fn, ms);
  }

  clearTimeout(handle: TimerHandle): void {
    this.clock.clearTimeout(handle as never);
  }

  /**
   * Moves virtual time forward by `ms`, firing due timers synchronously.
   * Promise continuations scheduled by those timers run only after this
   * returns; use {@link advanceAsync} when timers start asynchronous work.
   */
  advance(ms: number): void {
    this.clock.tick(ms);
  }

  /**
   * Moves virtual time forward by `ms`, letting the real event loop run
   * (microtasks and I/O callbacks) between timers, so asynchronous work a timer
   * starts settles before the next timer fires.
   */
  async advanceAsync(ms: number): Promise<void> {
    await this.clock.tickAsync(ms);
  }

  /** Number of timers not yet fired. */
  pendingTimers(): number {
    return this.clock.countTimers();
  }
}
