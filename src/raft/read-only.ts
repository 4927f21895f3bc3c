/**
 * Pending ReadIndex requests on the leader (etcd-io/raft `read_only.go`,
 * Raft thesis §6.4). In `'safe'` mode each request records the commit index
 * when it arrived and waits until a quorum of voters has acknowledged a
 * heartbeat carrying its context; the requests before it in the queue are
 * confirmed by the same round.
 * @module
 */
import type { ReadOnlyOption } from './types.js';

/** One pending request: where it came from, its read index, who acknowledged it. */
export interface ReadIndexStatus {
  /** Requester id (the leader itself for local requests). */
  from: string;
  /** The request context (its id). */
  context: Uint8Array;
  /** The leader's commit index when the request arrived. */
  index: number;
  /** Heartbeat acknowledgements by node id. */
  acks: Map<string, boolean>;
}

/** A key for a context: the bytes as a binary string. */
export function contextKey(ctx: Uint8Array): string {
  let s = '';
  for (let i = 0; i < ctx.length; i++) s += String.fromCharCode(ctx[i]!);
  return s;
}

/** The queue of pending read-only requests. */
export class ReadOnly {
  readonly option: ReadOnlyOption;
  private pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  constructor(option: ReadOnlyOption) {
    this.option = option;
  }

  /** Number of requests waiting for a heartbeat quorum. */
  get size(): number {
    return this.queue.length;
  }

  /**
   * Adds a request read at commit index `index`. A context already pending
   * is ignored (contexts must be unique among pending requests).
   */
  addRequest(index: number, from: string, context: Uint8Array): void {
    const key = contextKey(context);
    if (this.pending.has(key)) return;
    this.pending.set(key, { from, context, index, acks: new Map() });
    this.queue.push(key);
  }

  /**
   * Records a heartbeat acknowledgement from `id` for the request `context`;
   * returns the acknowledgements so far, or undefined for an unknown context.
   */
  recvAck(id: string, context: Uint8Array): Map<string, boolean> | undefined {
    const rs = this.pending.get(contextKey(context));
    if (rs === undefined) return undefined;
    rs.acks.set(id, true);
    return rs.acks;
  }

  /**
   * The request `context` is confirmed: removes it and every request queued
   * before it, and returns them in order (empty for an unknown context).
   */
  advance(context: Uint8Array): ReadIndexStatus[] {
    const key = contextKey(context);
    const at = this.queue.indexOf(key);
    if (at < 0) return [];
    const done = this.queue.slice(0, at + 1);
    this.queue = this.queue.slice(at + 1);
    const out: ReadIndexStatus[] = [];
    for (const k of done) {
      const rs = this.pending.get(k);
      if (rs === undefined) continue;
      this.pending.delete(k);
      out.push(rs);
    }
    return out;
  }

  /** The context of the newest pending request (heartbeats carry it), or undefined. */
  lastPendingRequestCtx(): Uint8Array | undefined {
    if (this.queue.length === 0) return undefined;
    return this.pending.get(this.queue[this.queue.length - 1]!)!.context;
  }
}
