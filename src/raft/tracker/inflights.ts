/**
 * The sliding window of MsgApp messages in flight to one follower
 * (etcd-io/raft `tracker/inflights.go`): flow control for the replicate
 * state, bounded by `maxInflightMsgs`.
 * @module
 */

/**
 * A ring buffer of the last entry index of each MsgApp in flight. Indexes
 * are added in increasing order and freed by acknowledgement
 * (`freeLE(index)`). The buffer grows lazily up to `size`.
 */
export class Inflights {
  /** Maximum number of messages in flight. */
  readonly size: number;
  private start = 0;
  private count = 0;
  private buffer: number[] = [];

  constructor(size: number) {
    this.size = size;
  }

  /** Number of messages in flight. */
  get length(): number {
    return this.count;
  }

  /** Records a MsgApp whose last entry is `index`. */
  add(index: number): void {
    if (this.full()) throw new Error('cannot add into a full inflights');
    let next = this.start + this.count;
    if (next >= this.size) next -= this.size;
    if (next >= this.buffer.length) this.grow();
    this.buffer[next] = index;
    this.count++;
  }

  /** Frees every message whose last index is `<= to` (they were acknowledged). */
  freeLE(to: number): void {
    if (this.count === 0 || to < this.buffer[this.start]!) return;
    let idx = this.start;
    let i = 0;
    for (; i < this.count; i++) {
      if (to < this.buffer[idx]!) break;
      idx++;
      if (idx >= this.size) idx -= this.size;
    }
    this.count -= i;
    this.start = idx;
    if (this.count === 0) this.start = 0;
  }

  /** True when no more messages may be sent. */
  full(): boolean {
    return this.count === this.size;
  }

  /** An independent copy holding the same messages in flight. */
  clone(): Inflights {
    const c = new Inflights(this.size);
    c.start = this.start;
    c.count = this.count;
    c.buffer = this.buffer.slice();
    return c;
  }

  /** Frees everything. */
  reset(): void {
    this.count = 0;
    this.start = 0;
  }

  private grow(): void {
    let n = this.buffer.length * 2;
    if (n === 0) n = 1;
    else if (n > this.size) n = this.size;
    const b = new Array<number>(n).fill(0);
    for (let i = 0; i < this.buffer.length; i++) b[i] = this.buffer[i]!;
    this.buffer = b;
  }
}
