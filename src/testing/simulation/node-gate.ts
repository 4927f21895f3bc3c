/**
 * What stands between one simulated member and the rest of the simulation:
 * its timers and its incoming messages pass through a {@link NodeGate}, which
 * can hold them (a paused process) or drop them for good (a crashed one).
 * @module
 */
import type { Clock, TimerHandle } from '../../node/index.js';

/**
 * The run state of one member's process, for one lifetime (a restart gets a
 * new gate).
 *
 * - running: callbacks pass through at once;
 * - paused ({@link pause}): timer callbacks and message deliveries are
 *   queued, in the order they were due, and run when {@link resume} is
 *   called, as a process stopped with SIGSTOP (or in a long GC pause) runs
 *   its overdue timers and reads its socket buffers once it continues.
 *   Asynchronous work already started (a storage write completing, a
 *   promise continuation) is not stopped: the simulation stops a process
 *   only at its event boundaries;
 * - dead ({@link kill}): nothing passes, ever; queued callbacks are dropped.
 */
export class NodeGate {
  private paused = false;
  private dead = false;
  private held: (() => void)[] = [];
  private waiters: (() => void)[] = [];

  /** True while paused (and not dead). */
  get isPaused(): boolean {
    return this.paused && !this.dead;
  }

  /** True once killed. */
  get isDead(): boolean {
    return this.dead;
  }

  /** Runs `fn` now, or queues it while paused, or drops it once dead. */
  run(fn: () => void): void {
    if (this.dead) return;
    if (this.paused) this.held.push(fn);
    else fn();
  }

  /** Starts holding callbacks. */
  pause(): void {
    if (!this.dead) this.paused = true;
  }

  /** Stops holding callbacks and runs the held ones in order. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    const held = this.held;
    this.held = [];
    for (const fn of held) {
      if (this.dead || this.paused) {
        if (!this.dead) this.held.push(fn);
        continue;
      }
      fn();
    }
    this.wake();
  }

  /** Drops everything held and refuses every later callback. */
  kill(): void {
    this.dead = true;
    this.held = [];
    this.wake();
  }

  /** Resolves once the gate is not paused (at once when running or dead). */
  whenRunning(): Promise<void> {
    if (!this.isPaused) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }
}

interface GatedTimer {
  cancelled: boolean;
  inner: TimerHandle;
}

/**
 * A member's view of the simulation clock: the same time, but every timer
 * callback passes through the member's {@link NodeGate} (held while paused,
 * dropped once dead). An exception escaping a callback, which would crash a
 * real process, is handed to `onUncaught` instead of reaching the
 * simulation's clock.
 */
export class GatedClock implements Clock {
  constructor(
    private readonly base: Clock,
    private readonly gate: NodeGate,
    private readonly onUncaught: (err: unknown) => void,
  ) {}

  now(): number {
    return this.base.now();
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const t: GatedTimer = { cancelled: false, inner: undefined };
    t.inner = this.base.setTimeout(() => {
      if (t.cancelled) return;
      this.gate.run(() => {
        if (t.cancelled) return;
        try {
          fn();
        } catch (err) {
          this.onUncaught(err);
        }
      });
    }, ms);
    return t;
  }

  clearTimeout(handle: TimerHandle): void {
    const t = handle as GatedTimer | undefined;
    if (t === undefined || t === null || typeof t !== 'object') return;
    t.cancelled = true;
    this.base.clearTimeout(t.inner);
  }
}
