/**
 * The trace of a simulation: one line per observable step (message sends,
 * deliveries and drops, client operations and their results, leader
 * changes, faults), each stamped with the virtual time, folded into a
 * running CRC-32 so that two runs can be compared by one number.
 * @module
 */
import { crc32 } from '../../codec/index.js';

const encoder = new TextEncoder();
/** Characters buffered before they are folded into the hash. */
const CHUNK = 1 << 16;

/**
 * A running trace: a CRC-32 (IEEE) over the canonical text of every line
 * (`<virtual ms> <text>\n`, UTF-8), plus the last `keep` lines for failure
 * reports (or every line with `keep: Infinity`).
 *
 * The hash covers every line, kept or not: two runs with the same seed and
 * the same calls give the same hash; any difference in what happened, or
 * when, changes it.
 */
export class Trace {
  private readonly keep: number;
  private readonly ring: string[] = [];
  private head = 0;
  private pending = '';
  private crc = 0;
  private count = 0;
  private readonly listeners: ((line: string) => void)[] = [];

  /** @param keep - how many of the latest lines to keep for {@link lines} (default 1000; `Infinity` keeps all) */
  constructor(keep = 1000) {
    this.keep = Math.max(0, keep);
  }

  /** Appends a line stamped with `atMs` (virtual time). */
  add(atMs: number, text: string): void {
    const line = `${atMs} ${text}`;
    this.count++;
    this.pending += line + '\n';
    if (this.pending.length >= CHUNK) this.fold();
    if (this.keep === Infinity) this.ring.push(line);
    else if (this.keep > 0) {
      if (this.ring.length < this.keep) this.ring.push(line);
      else {
        this.ring[this.head] = line;
        this.head = (this.head + 1) % this.keep;
      }
    }
    for (const l of this.listeners) l(line);
  }

  /** Calls `fn` with every line added from now on (for live printing). */
  onLine(fn: (line: string) => void): void {
    this.listeners.push(fn);
  }

  /** The CRC-32 of every line so far, as 8 hex digits. */
  hash(): string {
    this.fold();
    return this.crc.toString(16).padStart(8, '0');
  }

  /** Number of lines added so far. */
  get size(): number {
    return this.count;
  }

  /** The kept lines, oldest first (the latest `keep` lines). */
  lines(): string[] {
    if (this.ring.length < this.keep || this.keep === Infinity) return this.ring.slice();
    return [...this.ring.slice(this.head), ...this.ring.slice(0, this.head)];
  }

  private fold(): void {
    if (this.pending === '') return;
    this.crc = crc32(encoder.encode(this.pending), this.crc);
    this.pending = '';
  }
}
