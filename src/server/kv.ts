/**
 * The public key-value interface: what `KvNode` offers and what the
 * coordination recipes (`src/concurrency/`) are written against. It follows
 * etcd's v3 KV, Watch and Lease services; requests accept keys and values as
 * strings (UTF-8) or bytes, and responses always carry bytes (use
 * {@link text} to read them as strings).
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

/** A key or value given by the caller: a string (encoded as UTF-8) or bytes. */
export type BytesLike = string | Uint8Array;

/**
 * Which keys a request names. Give `prefix: true` for every key starting with
 * `key`, `rangeEnd` for `[key, rangeEnd)` (`'\0'` = every key `>= key`), or
 * neither for the single key `key` (etcd's key-range rules).
 */
export interface KeyRange {
  key: BytesLike;
  rangeEnd?: BytesLike;
  /** Every key starting with `key` (etcd's `--prefix`); exclusive with `rangeEnd`. */
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
  /** Keep the current value (the key must exist). */
  ignoreValue?: boolean;
  /** Keep the current lease (the key must exist). */
  ignoreLease?: boolean;
}

/** Options of a delete: which keys, and whether to return them. */
export interface DeleteOptions {
  rangeEnd?: BytesLike;
  prefix?: boolean;
  prevKv?: boolean;
}

/** A txn compare with string-or-bytes key and value (see `Compare`). */
export interface CompareInput extends Omit<Compare, 'key' | 'rangeEnd' | 'value'> {
  key: BytesLike;
  rangeEnd?: BytesLike;
  prefix?: boolean;
  value?: BytesLike;
  target: CompareTarget;
  result: CompareResult;
}

/** One operation of a txn branch. */
export type RequestOpInput =
  | { range: RangeInput }
  | { put: { key: BytesLike; value?: BytesLike } & PutOptions }
  | { deleteRange: KeyRange & { prevKv?: boolean } }
  | { txn: TxnInput };

/** A transaction: if every compare holds run `success`, else `failure` (etcd's `Txn`). */
export interface TxnInput {
  compare?: CompareInput[];
  success?: RequestOpInput[];
  failure?: RequestOpInput[];
}

/** Options of a watch (etcd's `WatchCreateRequest` without the key fields). */
export interface WatchOptions {
  rangeEnd?: BytesLike;
  prefix?: boolean;
  /** First revision to report; 0 = the next one. */
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
  /** The store cancelled the watch (compacted start revision, empty range, node closed). */
  canceled: [WatchResponse];
  /** No more responses. */
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
  on<E extends keyof WatchEvents>(event: E, fn: (...args: WatchEvents[E]) => void): this;
  off<E extends keyof WatchEvents>(event: E, fn?: (...args: WatchEvents[E]) => void): this;
  /** Stops the watch; the iterator ends after what is already queued. Idempotent. */
  cancel(): Promise<void>;
}

/**
 * The key-value, watch and lease API of a quorumkv member (etcd's KV, Watch
 * and Lease services). Writes are linearizable; reads are linearizable
 * unless `serializable: true`. Errors are `QuorumError`s with stable codes.
 */
export interface KV {
  /**
   * Writes `key` = `value` at a new revision.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` (empty key), `QUORUMKV_REQUEST_TOO_LARGE`,
   *   `QUORUMKV_LEASE_NOT_FOUND`, `QUORUMKV_KEY_NOT_FOUND` (ignoreValue/ignoreLease on a missing key)
   */
  put(key: BytesLike, value: BytesLike, options?: PutOptions): Promise<PutResponse>;
  /** Reads one key; `undefined` when it does not exist. Options as {@link range}. */
  get(key: BytesLike, options?: RangeOptions): Promise<KeyValue | undefined>;
  /**
   * Reads a key, a range or a prefix.
   * @throws CompactedError `QUORUMKV_REVISION_COMPACTED`, UsageError `QUORUMKV_FUTURE_REVISION`
   */
  range(input: RangeInput): Promise<RangeResponse>;
  /** Deletes a key, a range or a prefix; deleting nothing does not advance the revision. */
  delete(key: BytesLike, options?: DeleteOptions): Promise<DeleteRangeResponse>;
  /**
   * Runs a transaction atomically at one revision.
   * @throws UsageError `QUORUMKV_TOO_MANY_TXN_OPS`, `QUORUMKV_DUPLICATE_KEY`, `QUORUMKV_REQUEST_TOO_LARGE`
   */
  txn(input: TxnInput): Promise<TxnResponse>;
  /** Watches a key, range or prefix from `startRevision` (or the next revision). */
  watch(key: BytesLike, options?: WatchOptions): Watch;
  /** Grants a lease of `ttlSeconds` (raised to the minimum TTL), with an optional id. */
  leaseGrant(ttlSeconds: number, options?: { id?: number }): Promise<LeaseGrantResponse>;
  /** Revokes a lease and deletes its keys in one revision. @throws UsageError `QUORUMKV_LEASE_NOT_FOUND` */
  leaseRevoke(id: number): Promise<LeaseRevokeResponse>;
  /** Renews a lease once (etcd's KeepAliveOnce). @throws UsageError `QUORUMKV_LEASE_NOT_FOUND` */
  leaseKeepAlive(id: number): Promise<LeaseKeepAliveResponse>;
  /** Remaining TTL of a lease (-1 when unknown), optionally with its keys. */
  leaseTimeToLive(id: number, options?: { keys?: boolean }): Promise<LeaseTimeToLiveResponse>;
  /** Every lease id. */
  leases(): Promise<LeaseLeasesResponse>;
}

const decoder = new TextDecoder();

/** Reads bytes from a response (a key, a value) as a UTF-8 string. */
export function text(bytes: Uint8Array | undefined): string {
  return bytes === undefined ? '' : decoder.decode(bytes);
}
