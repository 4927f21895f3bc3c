/**
 * The pluggable message transport between Raft nodes: what the node layer
 * (`RaftNode`) calls to send the messages of a Ready and how it is told about
 * incoming messages, unreachable peers and snapshot outcomes.
 *
 * Two implementations ship: `MemoryNetwork` (in-process, seeded faults, for
 * tests and the simulation) and `TcpTransport` (node:net, optional mutual
 * TLS). Both pass the same conformance suite.
 * @module
 */
import type { Message } from '../raftpb/index.js';

/**
 * Outcome of sending a `MsgSnap`, as the Raft core's `reportSnapshot` takes it
 * (etcd raft's `SnapshotStatus`: `SnapshotFinish` / `SnapshotFailure`).
 * Defined here, not imported, because the transport layer sits beside the Raft
 * core, not above it; the literals are the same.
 */
export type SnapshotStatus = 'finish' | 'failure';

/**
 * The callbacks a {@link Transport} drives. The node layer wires `receive` to
 * `RawNode.step`, and the two reports to `RawNode.reportUnreachable` and
 * `RawNode.reportSnapshot` (etcd raft: `Node.ReportUnreachable`,
 * `Node.ReportSnapshot`).
 *
 * Every callback is invoked asynchronously (never from inside
 * {@link Transport.send} or any other method of the transport), and never
 * after {@link Transport.close} was called. Callbacks must not throw; an
 * exception is caught and logged by the transport.
 */
export interface TransportHandler {
  /**
   * A message arrived. It is decoded from the bytes that
   * carried it (nothing is shared with the sender's objects; its byte fields
   * may be views into those bytes, which nothing writes to, and entries'
   * data is copied out of them), complete and well-formed: `from` is the
   * sender the message came from (as the connection's handshake named it;
   * with TLS, a holder of a certificate of the cluster's CA) and `to` is
   * this node. `from` need not be a known peer (see {@link Transport}).
   */
  receive(msg: Message): void;
  /**
   * A message to `peerId` could not be sent or may have been lost (the peer is
   * unknown, the connection is down, or the send queue overflowed). Raft moves
   * the follower's Progress from replicate to probe (etcd raft
   * `ReportUnreachable`); it is a hint and may repeat.
   */
  reportUnreachable(peerId: string): void;
  /**
   * The outcome of a `MsgSnap` sent to `peerId`: `'finish'` once the peer
   * acknowledged the whole snapshot, `'failure'` when it cannot have arrived.
   * Raft then leaves Progress state snapshot (etcd raft `ReportSnapshot`).
   * A transport reports every `MsgSnap` it was given exactly once (a
   * `RaftNode` counts them per peer: the report of the latest send is the
   * one that counts, and the log keeps the entries after a snapshot until
   * its sends are reported).
   */
  reportSnapshot(peerId: string, status: SnapshotStatus): void;
  /**
   * Optional. `peerId` refused this node because it was removed from the
   * cluster (see {@link Transport.refusePeer}): the node stops, as an etcd
   * member does on rafthttp's `410 Gone` ("the member has been permanently
   * removed from the cluster"). May repeat.
   */
  reportRemoved?(peerId: string): void;
}

/**
 * Moves Raft messages between the nodes of one cluster.
 *
 * Guarantees every implementation gives (checked by the conformance suite in
 * `test/transport/conformance.ts`):
 * - per-peer FIFO: the messages sent to one peer arrive in the order they were
 *   passed to `send`, or not at all (Raft tolerates loss, duplication and
 *   reordering, but FIFO keeps replication efficient). A `MsgSnap` may travel
 *   out of band (its own stream), so it is not ordered against other messages,
 *   as in etcd's rafthttp;
 * - messages arrive as deep copies with every field intact (entries, snapshot,
 *   context);
 * - `send` never throws for unknown or unreachable peers: it reports them
 *   through {@link TransportHandler.reportUnreachable} instead;
 * - a `MsgSnap` is delivered whole (never partially), and its outcome is
 *   reported through {@link TransportHandler.reportSnapshot};
 * - a message from a sender that is not a known peer is delivered, unless
 *   the sender is refused (`refusePeer`), and the sender becomes a remote
 *   that messages may be sent to until `addPeer` makes it a peer or
 *   `removePeer`/`refusePeer` forget it; at most 64 remotes are kept, the
 *   least recently heard from forgotten first. etcd's rafthttp likewise
 *   takes messages from any member not removed and answers the sender
 *   (`addRemoteFromRequest`): a member that missed the addition of a new
 *   one hears from it, and answers it, once it leads;
 * - after `removePeer(id)` nothing queued for `id` is sent, and sends to
 *   it are reported unreachable until it reaches this node again (a
 *   remote, as above); after `refusePeer(id)` (where implemented) nothing
 *   more is sent to or received from `id`, and what `id` sends is
 *   answered by a `reportRemoved` on its side;
 *   after `close()` nothing more is delivered or reported.
 */
export interface Transport {
  /** Id of the local node (given at construction). */
  readonly id: string;

  /**
   * Optional: the largest encoded message this transport sends, in bytes
   * (TCP: `maxFrameBytes` less the 2 bytes a frame's payload puts before
   * its body, the msgpack array marker and the kind); a larger one is
   * dropped. `RaftNode` refuses a proposal whose entry could
   * never reach a follower in a message of this size. Undefined: no limit
   * (MemoryNetwork).
   */
  readonly maxMessageBytes?: number;

  /**
   * Starts receiving; `handler` gets every callback from now on.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when already started
   * @throws UsageError `QUORUMKV_TRANSPORT_CLOSED` when already closed
   * @throws FaultError `QUORUMKV_LISTEN_FAILED` (TCP) when the address cannot be bound
   */
  start(handler: TransportHandler): Promise<void>;

  /**
   * Sends messages, fire-and-forget. Returns at once; delivery happens later.
   * Messages to unknown peers, or that cannot be sent, are reported through
   * {@link TransportHandler.reportUnreachable} (and a `MsgSnap` also through
   * `reportSnapshot(to, 'failure')`). Local message types (`MsgHup`, `MsgBeat`,
   * ...) are never sent (dropped with a debug log). Calls after `close()` are
   * ignored. The caller may reuse or mutate the messages after the call.
   * @throws UsageError `QUORUMKV_TRANSPORT_NOT_STARTED` before `start()`
   */
  send(messages: Message[]): void;

  /**
   * Makes `id` a known peer: messages may be sent to it (and are accepted
   * from it, as from any id not refused). `address` is where to reach it
   * (TCP: `"host:port"`, IPv6 as `"[::1]:port"`; ignored by MemoryNetwork).
   * Adding the local id is a no-op; adding a known peer with a new address
   * redirects later sends to it, and without an address keeps the one it
   * has (a remote's: the one its handshake gave).
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an empty id or a malformed address
   */
  addPeer(id: string, address?: string): void;

  /**
   * Forgets `id`, a peer or a remote: pending messages to it are
   * discarded, its connections are closed, and sends to it are reported
   * unreachable (etcd's `Transport.RemovePeer`). What `id` sends later is
   * taken as from any sender that is not a peer; {@link refusePeer} keeps
   * it out. Unknown ids are ignored.
   */
  removePeer(id: string): void;

  /**
   * Optional. Forgets `id` as {@link removePeer} does, and from then on
   * tells `id`, whenever it reaches this node, that it was removed from the
   * cluster: its transport reports it through
   * {@link TransportHandler.reportRemoved} (etcd's rafthttp answers a
   * removed member with `410 Gone`). A member removed while it was down or
   * cut off never applies its own removal; this is how it finds out once it
   * reaches this node again. The transports here keep a stream to each
   * peer with nothing to send (as rafthttp does), so such a member finds
   * out soon after it and this node can reach each other (its next dial), even one that
   * never sends (a learner without a leader). A transport without
   * `refusePeer` leaves such a member running, unaware.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an empty id
   */
  refusePeer?(id: string): void;

  /**
   * Stops the transport: closes every connection and listener, cancels every
   * timer, and drops whatever is queued. Idempotent. No handler callback runs
   * after it is called.
   */
  close(): Promise<void>;
}
