// A virtual-clock Scheduler for MemoryNetwork tests: callbacks run only when
// the test advances the clock, in (due time, insertion order).
import type { Scheduler } from '../../src/transport/index.js';

interface Task {
  at: number;
  seq: number;
  fn: () => void;
}

/** A deterministic scheduler on a virtual clock (milliseconds). */
export class VirtualScheduler implements Scheduler {
  now = 0;
  private seq = 0;
  private tasks: Task[] = [];

  schedule(delayMs: number, fn: () => void): void {
    const task: Task = { at: this.now + delayMs, seq: this.seq++, fn };
    // Binary search for the first task due strictly later (ties keep insertion order).
    let lo = 0;
    let hi = this.tasks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.tasks[mid]!.at <= task.at) lo = mid + 1;
      else hi = mid;
    }
    this.tasks.splice(lo, 0, task);
  }

  /** Number of callbacks waiting. */
  get pending(): number {
    return this.tasks.length;
  }

  /** Runs every callback due within `ms` from now (including ones they schedule), then moves the clock. */
  advance(ms: number): void {
    const end = this.now + ms;
    while (this.tasks.length > 0 && this.tasks[0]!.at <= end) {
      const t = this.tasks.shift()!;
      this.now = t.at;
      t.fn();
    }
    this.now = end;
  }

  /** Runs until nothing is left (bounded, to catch runaway loops). */
  runAll(maxTasks = 10_000_000): void {
    let n = 0;
    while (this.tasks.length > 0) {
      if (++n > maxTasks) throw new Error('VirtualScheduler: too many tasks');
      const t = this.tasks.shift()!;
      this.now = t.at;
      t.fn();
    }
  }
}
