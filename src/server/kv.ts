/**
 * The public key-value interface: what `KvNode` offers and what the
 * coordination recipes (`src/concurrency/`) are written against. It follows
 * etcd's v3 KV, Watch and Lease services; requests accept keys and values as
 * strings (UTF-8) or bytes, and responses always carry bytes (use
 * {@link text} to read them as strings). A call reads the bytes and options
 * it is given before it returns: the caller may reuse or change them at
 * once (a read that waits for its read index reads its own copy).
 * @module
 */
import type {
  Compare,
  CompareResult,
  CompareTarget,
  DeleteRangeResponse,
  Event,
  KeyValue,
  LeaseGrantResponse,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseRevokeResponse,
  LeaseTimeToLiveResponse,
  PutResponse,
  RangeRequest,
  RangeResponse,
  TxnResponse,
  WatchFilter,
  WatchResponse,
} from '../mvccpb/index.js';
import { ErrorCode, UsageError } from '../errors.js';

/** A key or value given by the caller: a string (encoded as UTF-8) or bytes. */
export type BytesLike = string | Uint8Array;

/**
 * Which keys a request names. Give `prefix: true` for every key starting with
 * `key`, `rangeEnd` for `[key, rangeEnd)` (`'\0'` = every key `>= key`), or
 * neither for the single key `key` (etcd's key-range rules).
 */
export interface KeyRange {
  /**
   * The key, or the first key of the range; non-empty
   * (`QUORUMKV_INVALID_ARGUMENT` otherwise), but for `''` with `prefix: true`
   * (every key).
   */
  key: BytesLike;
  /** Exclusive end of the range; `'\0'` = every key `>= key`; absent or empty = the single key `key`. */
  rangeEnd?: BytesLike;
  /** Every key starting with `key` (etcd's `--prefix`; with `key` `''`: every key); exclusive with `rangeEnd`. */
  prefix?: boolean;
}

/** Options of a read (etcd's `RangeRequest` without the key fields). */
export type RangeOptions = Omit<RangeRequest, 'key' | 'rangeEnd'>;

/** A read: a {@link KeyRange} plus {@link RangeOptions}. */
export type RangeInput = KeyRange & RangeOptions;

/** Options of a put (etcd's `PutRequest` without key and value). */
export interface PutOptions {
  /** Lease id to attach (0 = none). */
  lease?: number;
  /** Return the previous key-value. */
  prevKv?: boolean;
  /** Keep the current value (the key must exist; the value given must be `''`, else `QUORUMKV_INVALID_ARGUMENT`). */
  ignoreValue?: boolean;
  /** Keep the current lease (the key must exist; `lease` must be absent or 0, else `QUORUMKV_INVALID_ARGUMENT`). */
  ignoreLease?: boolean;
}

/** Options of a delete: which keys, and whether to return them. */
export interface DeleteOptions {
  /** Delete `[key, rangeEnd)` (see {@link KeyRange.rangeEnd}); exclusive with `prefix`. */
  rangeEnd?: BytesLike;
  /** Delete every key starting with `key` (etcd's `--prefix`; with `key` `''`: every key); exclusive with `rangeEnd`. */
  prefix?: boolean;
  /** Return the deleted key-values in `prevKvs`. */
  prevKv?: boolean;
}

/** A txn compare with string-or-bytes key and value (see `Compare`). */
export interface CompareInput extends Omit<Compare, 'key' | 'rangeEnd' | 'value'> {
  /** The key compared, or the first key of the range; non-empty. */
  key: BytesLike;
  /** Compare every key of `[key, rangeEnd)` (see {@link KeyRange.rangeEnd}); exclusive with `prefix`. */
  rangeEnd?: BytesLike;
  /**
   * Compare every key starting with `key`; exclusive with `rangeEnd`. `key`
   * must not be empty here either (unlike a range's `''` with `prefix`):
   * etcd refuses the empty key clientv3's `Cmp.WithPrefix` sends for it.
   */
  prefix?: boolean;
  /** Operand of a `VALUE` compare; absent = empty bytes. */
  value?: BytesLike;
  /**
   * Which field of the key is compared: `VERSION`, `CREATE`, `MOD`, `VALUE`
   * or `LEASE`; the operand is the field of that name (`version`,
   * `createRevision`, `modRevision`, `value`, `lease`), and another target's
   * operand is refused (`QUORUMKV_INVALID_ARGUMENT`; etcd's `Compare` holds
   * one operand).
   */
  target: CompareTarget;
  /** The comparison: `<key's field> <result> <operand>`. */
  result: CompareResult;
}

/** One operation of a txn branch: exactly one of these kinds (etcd's `RequestOp` is a oneof; one given two is refused). */
export type RequestOpInput =
  | { range: RangeInput }
  | { put: { key: BytesLike; /** Left out: empty (etcd's protobuf default). */ value?: BytesLike } & PutOptions }
  | { deleteRange: KeyRange & { prevKv?: boolean } }
  | { txn: TxnInput };

/** A transaction: if every compare holds run `success`, else `failure` (etcd's `Txn`). */
export interface TxnInput {
  /** Conditions that must all hold for `success` to run; absent or empty = `success` runs. */
  compare?: CompareInput[];
  /** Operations run, in order, when every compare holds; absent = none. */
  success?: RequestOpInput[];
  /** Operations run, in order, when a compare fails; absent = none. */
  failure?: RequestOpInput[];
}

/** Options of a watch (etcd's `WatchCreateRequest` without the key fields). */
export interface WatchOptions {
  /** Watch `[key, rangeEnd)` (see {@link KeyRange.rangeEnd}); exclusive with `prefix`. */
  rangeEnd?: BytesLike;
  /** Watch every key starting with `key` (with `key` `''`: every key); exclusive with `rangeEnd`. */
  prefix?: boolean;
  /**
   * First revision to report; 0 = the next one. Below the compacted
   * revision (a negative one included, once there is a compaction, as in
   * etcd), the watch is created and then cancelled with `compactRevision`.
   */
  startRevision?: number;
  /** Include the previous key-value in events. */
  prevKv?: boolean;
  /** Event kinds to leave out. */
  filters?: WatchFilter[];
  /** Send progress notifications while idle. */
  progressNotify?: boolean;
}

/** Events of a {@link Watch}'s emitter face (listener argument lists). */
export interface WatchEvents {
  /** Every response, in order (events, progress, cancellation). */
  response: [WatchResponse];
  /** Each PUT event of a response, in order. */
  put: [Event];
  /** Each DELETE event of a response, in order. */
  delete: [Event];
  /** A progress notification: every event up to `header.revision` has been sent. */
  progress: [WatchResponse];
  /** The store cancelled the watch (compacted start revision, empty range, member closed, store failed); see `cancelReason`. */
  canceled: [WatchResponse];
  /** No more responses: emitted after the listeners got the last one (a cancellation included). */
  end: [];
}

/**
 * A live watch: an async iterable of responses with an event-emitter face
 * (consume it one way or the other, not both: they read the same queue).
 * - `for await (const res of watch)` yields every {@link WatchResponse}
 *   (events, progress notifications, the final cancellation) and ends when
 *   the watch is over;
 * - `watch.on('put' | 'delete' | 'response' | 'progress' | 'canceled' | 'end', fn)`.
 *
 * Guarantees (etcd API guarantees for watch): ordered by revision, never
 * duplicated, no gaps, one revision's events in one response; a slow consumer
 * never blocks writes (it falls behind and catches up from history).
 */
export interface Watch extends AsyncIterable<WatchResponse> {
  /** The watch id. */
  readonly id: number;
  /**
   * Adds a listener for one of {@link WatchEvents}. A listener of a data
   * event (`response`, `put`, `delete`, `progress`, `canceled`) starts
   * consuming the responses: use listeners or the iterator, not both. A
   * listener that throws skips the later listeners of that one event, as
   * with Node's `EventEmitter`; its error is thrown again on its own (an
   * uncaught exception, as from a listener called by any I/O callback), and
   * the watch goes on delivering.
   * @returns this watch, for chaining
   */
  on<E extends keyof WatchEvents>(event: E, fn: (...args: WatchEvents[E]) => void): this;
  /**
   * Removes the listener `fn` of `event`, or every listener of `event`
   * when `fn` is left out. It does not stop the watch, whose responses go
   * on being consumed (a member's watch drops them when nobody listens): call
   * {@link cancel} for that.
   * @returns this watch, for chaining
   */
  off<E extends keyof WatchEvents>(event: E, fn?: (...args: WatchEvents[E]) => void): this;
  /** Stops the watch: responses not consumed yet are dropped, and the iterator ends. Idempotent. */
  cancel(): Promise<void>;
}

/**
 * The key-value, watch and lease API of a quorumkv member (etcd's KV, Watch
 * and Lease services). Writes are linearizable; reads are linearizable
 * unless `serializable: true`. Errors are `QuorumError`s with stable codes.
 */
export interface KV {
  /**
   * Writes `key` = `value` at a new revision (etcd's `Put`).
   * @param options - `lease` (id, 0 = none), `prevKv`, `ignoreValue` (then `value` is `''`),
   *   `ignoreLease` (then `lease` is left out or 0)
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` (empty key, a value or option of the wrong type,
   *   an option of another name such as `prevkv`, a non-empty value with `ignoreValue` or a lease
   *   with `ignoreLease`: etcd's "value is provided", "lease is provided"),
   *   `QUORUMKV_REQUEST_TOO_LARGE`, `QUORUMKV_LEASE_NOT_FOUND`, `QUORUMKV_KEY_NOT_FOUND`
   *   (ignoreValue/ignoreLease on a missing key)
   * @throws FaultError `QUORUMKV_TIMEOUT` (the write may or may not be applied), `QUORUMKV_NO_LEADER`
   *   (no leader known for two election timeouts; the write was not proposed),
   *   `QUORUMKV_NO_SPACE`, `QUORUMKV_CORRUPT`, `QUORUMKV_NODE_CLOSED`,
   *   `QUORUMKV_REMOVED` (this member was removed from the cluster)
   */
  put(key: BytesLike, value: BytesLike, options?: PutOptions): Promise<PutResponse>;
  /**
   * Reads one key; `undefined` when it does not exist. Options as {@link range},
   * without the key fields (`rangeEnd`, `prefix`: refused).
   * @throws as {@link range}
   */
  get(key: BytesLike, options?: RangeOptions): Promise<KeyValue | undefined>;
  /**
   * Reads a key, a range or a prefix (etcd's `Range`): linearizable (a
   * ReadIndex round, Raft thesis §6.4) unless `serializable: true`. A
   * serializable read is answered from this member's own store, which may
   * be behind the cluster; a member that restarted answers it only once it
   * has caught up with what it had applied before (it has applied the log
   * it reopened with, or completed a ReadIndex round: until then the read
   * takes one, and fails as a linearizable read does), as etcd serves no
   * request before its restarted server is ready.
   * An empty key is refused, but `''` with `prefix: true` is every key, as
   * etcd's client sends it (clientv3 `WithPrefix`).
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` (empty key, an option of the wrong type or of
   *   another name), `QUORUMKV_FUTURE_REVISION`; CompactedError `QUORUMKV_REVISION_COMPACTED` (a `revision` below the compacted one)
   * @throws FaultError `QUORUMKV_TIMEOUT` (no ReadIndex in time), `QUORUMKV_NO_LEADER`, `QUORUMKV_CORRUPT`, `QUORUMKV_NODE_CLOSED`, `QUORUMKV_REMOVED`
   */
  range(input: RangeInput): Promise<RangeResponse>;
  /**
   * Deletes a key, a range or a prefix (etcd's `DeleteRange`); deleting
   * nothing does not advance the revision. `''` with `prefix: true` is
   * every key, as for {@link range}.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` (as {@link put}), `QUORUMKV_REQUEST_TOO_LARGE`; FaultError as {@link put}
   */
  delete(key: BytesLike, options?: DeleteOptions): Promise<DeleteRangeResponse>;
  /**
   * Runs a transaction atomically at one revision (etcd's `Txn`).
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` (a field of the wrong type or of another name, in
   *   the txn, a compare or an operation; an operation that is not exactly one of `range`, `put`,
   *   `deleteRange`, `txn`), `QUORUMKV_TOO_MANY_TXN_OPS` (more than `maxTxnOps` in a list; a
   *   nested txn may have what its parent's largest list leaves; checked, as etcd does, level
   *   by level before that level's compares and operations), `QUORUMKV_DUPLICATE_KEY`,
   *   `QUORUMKV_REQUEST_TOO_LARGE`, and for the branch that runs `QUORUMKV_LEASE_NOT_FOUND`,
   *   `QUORUMKV_KEY_NOT_FOUND`, `QUORUMKV_FUTURE_REVISION` or CompactedError `QUORUMKV_REVISION_COMPACTED`
   * A read-only txn (ranges alone, in both branches) is a read, as in
   * etcd: linearizable (a ReadIndex round) unless every range is
   * `serializable` (then answered as a serializable {@link range}, a
   * restarted member first catching up), and it does not go through the log.
   * @throws FaultError as {@link put}; a read-only txn as {@link range}
   *   (refused with `QUORUMKV_CORRUPT` only by the member a `CORRUPT`
   *   alarm names, as in etcd)
   */
  txn(input: TxnInput): Promise<TxnResponse>;
  /**
   * Watches a key, range or prefix from `startRevision` (or the next
   * revision), with etcd's watch guarantees (see {@link Watch}). A member
   * that restarted starts a watch from the next revision only once it has
   * caught up with what it applied before it went down (as for a
   * serializable {@link range}): the watch is returned at once and
   * delivers nothing before.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` (a key or option of the wrong type or an option of
   *   another name such as `startRev`, `prefix` with `rangeEnd`)
   * @throws FaultError `QUORUMKV_NODE_CLOSED`, `QUORUMKV_REMOVED`
   */
  watch(key: BytesLike, options?: WatchOptions): Watch;
  /**
   * Grants a lease of `ttlSeconds` seconds (raised to the minimum TTL), with an optional id.
   * Without one, the id is one more than the largest granted so far; after
   * an explicit id of 2^53 - 1, the lowest no live lease holds, which may be
   * one revoked before: ids chosen by clients stay well below 2^53 - 1.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` (a TTL that is not an integer or above the maximum,
   *   an id that is not a non-negative safe integer, an option of another name), `QUORUMKV_LEASE_EXISTS`
   * @throws FaultError as {@link put}
   */
  leaseGrant(ttlSeconds: number, options?: { id?: number }): Promise<LeaseGrantResponse>;
  /**
   * Revokes a lease and deletes its keys in one revision.
   * @throws UsageError `QUORUMKV_LEASE_NOT_FOUND`, `QUORUMKV_INVALID_ARGUMENT` (an id that is not a safe integer)
   * @throws FaultError as {@link put}
   */
  leaseRevoke(id: number): Promise<LeaseRevokeResponse>;
  /**
   * Renews a lease once (etcd's KeepAliveOnce), answered by the leader; `ttl` in seconds.
   * @throws UsageError `QUORUMKV_LEASE_NOT_FOUND`, `QUORUMKV_INVALID_ARGUMENT` (an id that is not a safe integer)
   * @throws FaultError `QUORUMKV_TIMEOUT`, `QUORUMKV_NO_LEADER`, `QUORUMKV_NODE_CLOSED`, `QUORUMKV_REMOVED`
   */
  leaseKeepAlive(id: number): Promise<LeaseKeepAliveResponse>;
  /**
   * Remaining TTL of a lease in seconds (-1 when unknown), as the leader's
   * lessor counts it (etcd forwards `LeaseTimeToLive` to the leader),
   * with its granted TTL and optionally its keys.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT`; FaultError as {@link range}
   */
  leaseTimeToLive(id: number, options?: { keys?: boolean }): Promise<LeaseTimeToLiveResponse>;
  /**
   * Every lease id.
   * @throws FaultError as {@link range}
   */
  leases(): Promise<LeaseLeasesResponse>;
  /**
   * Optional: uniform numbers in `[0, 1)` the recipes draw from to name the
   * keys they create (`Queue`, `PriorityQueue`, `RWMutex`, `DoubleBarrier`;
   * etcd's recipes name them by the time). Without it they use
   * `Math.random`. A simulation's clients have one drawn from the seed, so
   * that recipes run on them replay exactly.
   */
  random?(): number;
}

// ignoreBOM: a leading U+FEFF is part of the key or value, as it was written
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

/**
 * Reads bytes from a response (a key, a value) as a UTF-8 string: the
 * string a `put` of that string wrote (a leading U+FEFF included); invalid
 * UTF-8 comes back with U+FFFD in its place.
 * @param bytes - the bytes; `undefined` (a missing key's value) reads as `''`
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for anything but bytes or
 *   `undefined` (a string, which is no response field: use it as it is)
 */
export function text(bytes: Uint8Array | undefined): string {
  if (bytes === undefined) return '';
  if (!ArrayBuffer.isView(bytes)) {
    const what = bytes === null ? 'null' : typeof bytes === 'string' ? 'a string' : typeof bytes;
    throw new UsageError(ErrorCode.INVALID_ARGUMENT, `text() reads bytes (a Uint8Array) or undefined, not ${what}`);
  }
  return decoder.decode(bytes);
}
