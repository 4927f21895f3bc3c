/**
 * Time as the coordination recipes see it. Only {@link Session} waits on time
 * (its keep-alive loop and its local lease deadline); it reads time and
 * schedules callbacks through a {@link RecipeClock}, so a test can run it on
 * the virtual clock of an in-process cluster. The shape is the same as the
 * node layer's `Clock`: a `VirtualClock` or `systemClock` can be passed as is
 * (but `systemClock` reads the wall clock: in production keep the default,
 * {@link realClock}, which is monotonic).
 * @module
 */

/**
 * The time source and timer service of a recipe. Times are in milliseconds.
 * The node layer's `VirtualClock` and `systemClock` have this shape.
 */
export interface RecipeClock {
  /** Current time in ms. */
  now(): number;
  /** Runs `fn` once after `ms` milliseconds; returns a handle for {@link clearTimeout}. */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Cancels a timer; unknown or already-fired handles are ignored. */
  clearTimeout(handle: unknown): void;
}

/**
 * Real time: a monotonic clock (`performance.timeOrigin + performance.now()`,
 * milliseconds since the epoch at the start of the process, which a step of
 * the wall clock does not move) and the global timers (the default of every
 * recipe). Monotonic as the leader's lease expiry is: with `Date.now()`, a
 * wall clock set back (NTP, a resumed VM) kept a session alive past the
 * time the leader could expire its lease. Timers are `unref`'d so that a
 * session's keep-alive loop does not keep a process alive by itself.
 *
 * ```ts
 * const session = await Session.create(node, { clock: realClock }); // the default
 * const simulated = await Session.create(testNode, { clock: virtualClock }); // any { now, setTimeout, clearTimeout }
 * ```
 */
export const realClock: RecipeClock = {
  now: () => performance.timeOrigin + performance.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
