/**
 * Time as the node layer sees it. `RaftNode` only reads time and schedules
 * callbacks through a {@link Clock}, so a simulation can run a whole cluster on
 * virtual time ({@link VirtualClock}) and the same code runs on real timers in
 * production ({@link systemClock}).
 * @module
 */
import { createClock } from '@sinonjs/fake-timers';
import { MAX_TIMER_MS } from '../timer-limit.js';
import { checkFiniteMs, describeValue } from '../arg-values.js';
import { ErrorCode, UsageError } from '../errors.js';

/** An opaque timer handle returned by {@link Clock.setTimeout}. */
export type TimerHandle = unknown;

/** The time source and timer service of a node. Times are in milliseconds. */
export interface Clock {
  /** Current time in ms (wall clock for {@link systemClock}, virtual otherwise). */
  now(): number;
  /**
   * Runs `fn` once after `ms` milliseconds. `ms` may exceed 2^31 - 1 (a
   * request timeout or a compaction period of weeks): the whole delay must
   * be waited, as {@link systemClock} and {@link VirtualClock} do, not the
   * 1 ms that Node's own `setTimeout` gives such a delay. A delay below 0
   * is 0, `Infinity` never fires; the clocks here run whole ms (a fraction
   * is cut).
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` ({@link systemClock},
   *   {@link VirtualClock}) when `fn` is not a function or `ms` not a number
   *   (NaN included); no timer is set
   */
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

/**
 * A timer of any length on timers of at most {@link MAX_TIMER_MS}: it waits
 * in steps of at most that, then runs `fn`. `clear` cancels the step under way.
 */
class LongTimer {
  private handle: unknown;

  constructor(
    private readonly set: (fn: () => void, ms: number) => unknown,
    private readonly clear: (handle: unknown) => void,
    fn: () => void,
    private remaining: number,
  ) {
    this.step(fn);
  }

  private step(fn: () => void): void {
    const ms = Math.min(this.remaining, MAX_TIMER_MS);
    this.remaining -= ms;
    this.handle = this.set(() => (this.remaining > 0 ? this.step(fn) : fn()), ms);
  }

  cancel(): void {
    this.clear(this.handle);
  }
}

/**
 * Refuses what no clock can wait for: the timer libraries threw a raw
 * `TypeError` for a callback that is not a function, and read a string
 * delay as a number ('1:00' as 1 ms) and NaN as no delay.
 */
function checkTimerArgs(fn: unknown, ms: unknown, what: string): void {
  if (typeof fn !== 'function') throw new UsageError(ErrorCode.INVALID_ARGUMENT, `${what} needs a function to run, not ${describeValue(fn)}`);
  if (typeof ms !== 'number' || Number.isNaN(ms)) throw new UsageError(ErrorCode.INVALID_ARGUMENT, `${what} needs a delay in ms (a number), not ${describeValue(ms)}`);
}

/** Real time: `Date.now()` and the global timers (a delay above 2^31 - 1 ms waits in steps, instead of firing after 1 ms). */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    checkTimerArgs(fn, ms, 'systemClock.setTimeout');
    return ms > MAX_TIMER_MS ? new LongTimer((f, d) => setTimeout(f, d), (h) => clearTimeout(h as ReturnType<typeof setTimeout>), fn, ms) : setTimeout(fn, ms);
  },
  clearTimeout: (handle) => {
    if (handle instanceof LongTimer) handle.cancel();
    else clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
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

  /**
   * @param startMs - the initial virtual time in ms (default 0)
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `startMs` is not a finite number >= 0
   */
  constructor(startMs = 0) {
    // the timer library took NaN and Infinity for no time, threw a raw
    // TypeError for a negative step, and read a string as 'm:s' or 'h:m:s'
    checkFiniteMs(startMs, 'VirtualClock startMs', 'ms');
    this.clock = createClock(startMs);
  }

  now(): number {
    return this.clock.now;
  }

  /**
   * Runs `fn` after `ms` virtual ms (below 0: at the next advance; a
   * fraction is cut; `Infinity`: never); a delay above 2^31 - 1 ms waits in
   * steps (fake-timers alone would fire it after 1 ms).
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `fn` is not a
   *   function or `ms` not a number (NaN included); no timer is set
   */
  setTimeout(fn: () => void, ms: number): TimerHandle {
    checkTimerArgs(fn, ms, 'VirtualClock.setTimeout');
    if (ms > MAX_TIMER_MS) return new LongTimer((f, d) => this.clock.setTimeout(f, d), (h) => this.clock.clearTimeout(h as never), fn, ms);
    return this.clock.setTimeout(fn, ms);
  }

  clearTimeout(handle: TimerHandle): void {
    if (handle instanceof LongTimer) handle.cancel();
    else this.clock.clearTimeout(handle as never);
  }

  /**
   * Moves virtual time forward by `ms`, firing due timers synchronously.
   * Promise continuations scheduled by those timers run only after this
   * returns; use {@link advanceAsync} when timers start asynchronous work.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `ms` is not a finite number >= 0 (time does not move)
   */
  advance(ms: number): void {
    checkFiniteMs(ms, 'VirtualClock.advance(ms)', 'ms');
    this.clock.tick(ms);
  }

  /**
   * Moves virtual time forward by `ms`, letting the real event loop run
   * (microtasks and I/O callbacks) between timers, so asynchronous work a timer
   * starts settles before the next timer fires.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` (the promise rejects) when `ms` is not a
   *   finite number >= 0 (time does not move)
   */
  async advanceAsync(ms: number): Promise<void> {
    checkFiniteMs(ms, 'VirtualClock.advanceAsync(ms)', 'ms');
    await this.clock.tickAsync(ms);
  }

  /** Number of timers not yet fired. */
  pendingTimers(): number {
    return this.clock.countTimers();
  }
}
