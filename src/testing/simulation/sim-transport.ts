/**
 * The transport a simulated member is given: its endpoint on the
 * simulation's `MemoryNetwork`, seen through the member's {@link NodeGate},
 * with the simulation's message duplication and a hook that shows every
 * outgoing message to the invariant checks.
 * @module
 */
import { decodeMessage, encodeMessage } from '../../codec/index.js';
import type { Message, MessageType } from '../../raftpb/index.js';
import type { Transport, TransportHandler } from '../../transport/index.js';
import type { NodeGate } from './node-gate.js';

/**
 * Message types the simulation never duplicates.
 *
 * - `MsgProp`: a proposal forwarded by a follower. Raft does not deduplicate
 *   proposals: two copies of one `MsgProp` are appended as two entries and
 *   applied twice (a put would get two revisions, a compare-and-swap could
 *   run twice). etcd runs its peers over TCP, which never duplicates, so a
 *   duplicated proposal is an artifact of the simulated network, not a
 *   fault a real cluster sees.
 * - `MsgSnap`: its delivery is reported back to the sender once per copy by
 *   `MemoryNetwork`; a snapshot stream is not duplicated by TCP either.
 *
 * Every other type is safe to duplicate (Raft tolerates duplicated appends,
 * votes, heartbeats and ReadIndex messages).
 */
export const NEVER_DUPLICATED: ReadonlySet<MessageType> = new Set<MessageType>(['MsgProp', 'MsgSnap']);

/** What a {@link SimTransport} asks its simulation. */
export interface SimTransportHooks {
  /** Sees every message this member sends (before faults), in order. */
  observe(messages: readonly Message[]): void;
  /** Whether to send a second copy of `m` (never asked for {@link NEVER_DUPLICATED} types). */
  duplicate(m: Message): boolean;
}

/** Deep copy through the codec (a deferred send must not see the caller's later changes). */
function copy(m: Message): Message {
  return decodeMessage(encodeMessage(m));
}

/**
 * A {@link Transport} wrapping a member's `MemoryNetwork` endpoint:
 * - incoming messages and reports go through the member's gate (held while
 *   it is paused, dropped once it is dead);
 * - sends from a paused member wait for it to resume; a dead member sends nothing;
 * - a message may be sent twice (simulated duplication, see {@link NEVER_DUPLICATED}).
 */
export class SimTransport implements Transport {
  readonly id: string;
  /** The inner transport's limit, where it has one. */
  readonly maxMessageBytes?: number;
  /** The inner transport's `refusePeer`, where it has one. */
  readonly refusePeer?: (id: string) => void;

  constructor(
    private readonly inner: Transport,
    private readonly gate: NodeGate,
    private readonly hooks: SimTransportHooks,
  ) {
    this.id = inner.id;
    if (inner.maxMessageBytes !== undefined) this.maxMessageBytes = inner.maxMessageBytes;
    const refuse = inner.refusePeer?.bind(inner);
    if (refuse !== undefined) this.refusePeer = refuse;
  }

  start(handler: TransportHandler): Promise<void> {
    return this.inner.start({
      receive: (m) => this.gate.run(() => handler.receive(m)),
      reportUnreachable: (id) => this.gate.run(() => handler.reportUnreachable(id)),
      reportSnapshot: (id, status) => this.gate.run(() => handler.reportSnapshot(id, status)),
      reportRemoved: (id) => this.gate.run(() => handler.reportRemoved?.(id)),
    });
  }

  send(messages: Message[]): void {
    if (this.gate.isDead) return;
    if (this.gate.isPaused) {
      const copies = messages.map(copy);
      this.gate.run(() => this.sendNow(copies));
      return;
    }
    this.sendNow(messages);
  }

  private sendNow(messages: Message[]): void {
    this.hooks.observe(messages);
    const out: Message[] = [];
    for (const m of messages) {
      out.push(m);
      if (!NEVER_DUPLICATED.has(m.type) && this.hooks.duplicate(m)) out.push(m);
    }
    this.inner.send(out);
  }

  addPeer(id: string, address?: string): void {
    this.inner.addPeer(id, address);
  }

  removePeer(id: string): void {
    this.inner.removePeer(id);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
