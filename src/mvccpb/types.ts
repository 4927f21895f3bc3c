/**
 * The etcd v3 key-value API types (etcd's `kv.proto` and `rpc.proto`), with
 * camelCase fields, bytes as `Uint8Array` and enums as string literals.
 *
 * Numbers: revisions, versions and lease ids are JavaScript numbers. They are
 * exact below 2^53 (`Number.MAX_SAFE_INTEGER`), which no store reaches in
 * practice; lease ids given by callers must be positive safe integers.
 *
 * ## Range end
 * Every request that names keys takes a `key` and an optional `rangeEnd`:
 * - no `rangeEnd` (or an empty one): the single key `key`;
 * - `rangeEnd` = `[0]` (a single zero byte, {@link RANGE_END_ALL}): every key
 *   `>= key`; with `key` also `[0]`, every key in the store;
 * - otherwise the half-open interval `[key, rangeEnd)` in byte order; a
 *   prefix is `[prefix, prefixEnd(prefix))` (see `prefixEnd`).
 * A `rangeEnd <= key` (other than `[0]`) names no key at all.
 *
 * Source: etcd API reference, "Key ranges" (etcd.io/docs/v3.4/learning/api).
 * @module
 */

/** Keys and values: arbitrary bytes. */
export type Bytes = Uint8Array;

/**
 * One version of a key (etcd's `mvccpb.KeyValue`).
 */
export interface KeyValue {
  /** The key, non-empty bytes. */
  key: Bytes;
  /** Revision of the last creation of this key (the put that made it exist); 0 in a DELETE event. */
  createRevision: number;
  /** Revision of the last modification of this key. */
  modRevision: number;
  /** Number of modifications since the last creation, starting at 1; deleting resets it to 0. */
  version: number;
  /** The value bytes (empty for a `keysOnly` read and in a DELETE event). */
  value: Bytes;
  /** Id of the lease attached to the key, 0 for none. */
  lease: number;
}

/** What happened to a key at a revision. */
export type EventType = 'PUT' | 'DELETE';

/**
 * One change of one key (etcd's `mvccpb.Event`). In a DELETE event `kv` has
 * only `key` and `modRevision` (the deletion's revision); every other field
 * is zero or empty, as etcd sends it.
 */
export interface Event {
  /** `PUT` for a put (a creation or an update), `DELETE` for a deletion. */
  type: EventType;
  /** The key-value after the change (see above for DELETE). */
  kv: KeyValue;
  /**
   * The key-value before the change, when the watch asked for `prevKv` and
   * the key existed before (absent for a creation, and when the previous
   * version has been compacted).
   */
  prevKv?: KeyValue;
}

/**
 * Header of every response. The store fills `revision`; the server
 * (`KvNode`) fills the cluster fields, on every response it returns and on
 * every watch response (as etcd), but not on the responses nested in a
 * txn's `responses`. A bare `MvccStore`'s responses carry `revision` alone.
 */
export interface ResponseHeader {
  /**
   * The store's revision when the response was produced: the current
   * revision for reads (also historical ones), the revision of the write for
   * writes. 0 in the header of a txn nested in another txn (as etcd).
   */
  revision: number;
  /** Id of the cluster (filled by the server). */
  clusterId?: string;
  /** Id of the member that answered (filled by the server). */
  memberId?: string;
  /** Raft term of the member that answered (filled by the server). */
  raftTerm?: number;
}

/** Ordering of a range result. */
export type SortOrder = 'NONE' | 'ASCEND' | 'DESCEND';

/** Field a range result is sorted by. */
export type SortTarget = 'KEY' | 'VERSION' | 'CREATE' | 'MOD' | 'VALUE';

/**
 * Reads keys (etcd's `RangeRequest`). See the module doc for `key`/`rangeEnd`.
 * Rules (etcd): `count` ignores `limit` and the min/max filters; `more` comes
 * only from `limit`; sorting and the filters apply to the whole range before
 * `limit`; a sort target other than `KEY` with order `NONE` sorts ascending;
 * ties keep ascending key order, for descending sorts too.
 */
export interface RangeRequest {
  /** First key of the range, or the key; non-empty. */
  key: Bytes;
  /** End of the range (see the module doc). */
  rangeEnd?: Bytes;
  /** Maximum number of keys returned; 0 = no limit. */
  limit?: number;
  /**
   * Revision to read at; 0 or less = the current revision. A revision below
   * the compaction revision fails with `CompactedError`
   * (`QUORUMKV_REVISION_COMPACTED`); above the current revision with
   * `QUORUMKV_FUTURE_REVISION`.
   */
  revision?: number;
  /** Default `NONE` (key order). */
  sortOrder?: SortOrder;
  /** Default `KEY`. */
  sortTarget?: SortTarget;
  /** Serializable (member-local) read; interpreted by the server, ignored by the store. */
  serializable?: boolean;
  /** Return keys with empty values. */
  keysOnly?: boolean;
  /** Return only `count` (no `kvs`, `more` false). */
  countOnly?: boolean;
  /** Keep only keys with `modRevision >= minModRevision` (0 = no bound). */
  minModRevision?: number;
  /** Keep only keys with `modRevision <= maxModRevision` (0 = no bound). */
  maxModRevision?: number;
  /** Keep only keys with `createRevision >= minCreateRevision` (0 = no bound). */
  minCreateRevision?: number;
  /** Keep only keys with `createRevision <= maxCreateRevision` (0 = no bound). */
  maxCreateRevision?: number;
}

/** Answer to a {@link RangeRequest}. */
export interface RangeResponse {
  /** `revision`: the store's current revision, also for a read at an older `revision` (inside a txn, counting its earlier writes). */
  header: ResponseHeader;
  /** The keys found, after filters, sort and limit. */
  kvs: KeyValue[];
  /** True when `limit` cut the result. */
  more: boolean;
  /** Number of keys in the range at the read revision (ignores limit and filters). */
  count: number;
}

/** Writes one key (etcd's `PutRequest`). */
export interface PutRequest {
  /** Non-empty. */
  key: Bytes;
  /** Default empty. Must be empty with `ignoreValue`. */
  value?: Bytes;
  /** Lease to attach (0 = none). Must exist: `QUORUMKV_LEASE_NOT_FOUND` otherwise. Must be 0 with `ignoreLease`. */
  lease?: number;
  /** Return the previous key-value in the response. */
  prevKv?: boolean;
  /** Keep the current value; the key must exist (`QUORUMKV_KEY_NOT_FOUND`). */
  ignoreValue?: boolean;
  /** Keep the current lease; the key must exist (`QUORUMKV_KEY_NOT_FOUND`). */
  ignoreLease?: boolean;
}

/** Answer to a {@link PutRequest}. */
export interface PutResponse {
  /** `revision`: the revision of this put. */
  header: ResponseHeader;
  /** The key-value before the put, when asked and the key existed. */
  prevKv?: KeyValue;
}

/** Deletes a key or a range (etcd's `DeleteRangeRequest`). */
export interface DeleteRangeRequest {
  /** Non-empty. */
  key: Bytes;
  /** See the module doc. */
  rangeEnd?: Bytes;
  /** Return the deleted key-values. */
  prevKv?: boolean;
}

/** Answer to a {@link DeleteRangeRequest}. */
export interface DeleteRangeResponse {
  /** `revision`: the revision of the deletion; the current revision when nothing was deleted. */
  header: ResponseHeader;
  /** Number of keys deleted. Deleting nothing does not advance the revision. */
  deleted: number;
  /** The deleted key-values, when asked. */
  prevKvs: KeyValue[];
}

/** Field a {@link Compare} inspects. */
export type CompareTarget = 'VERSION' | 'CREATE' | 'MOD' | 'VALUE' | 'LEASE';

/** Comparison a {@link Compare} performs: `<field of the key> <result> <operand>`. */
export type CompareResult = 'EQUAL' | 'NOT_EQUAL' | 'GREATER' | 'LESS';

/**
 * One condition of a txn (etcd's `Compare`). The operand is the field named
 * after `target` (`version`, `createRevision`, `modRevision`, `value`,
 * `lease`); a missing operand is 0 or empty bytes.
 *
 * Rules (etcd 3.4): a `VALUE` compare on a missing key (or an empty range) is
 * always false, even `NOT_EQUAL`; other targets compare a missing key as 0.
 * Over a range, every key in it must satisfy the compare. Values compare as
 * bytes; lease compares use the numeric lease id.
 */
export interface Compare {
  /** Which field of the key is compared; the operand is the field of the same name below. */
  target: CompareTarget;
  /** The comparison: `<key's field> <result> <operand>`. */
  result: CompareResult;
  /** Non-empty. */
  key: Bytes;
  /** Compare over a range (see the module doc). */
  rangeEnd?: Bytes;
  /** Operand for `VERSION`. */
  version?: number;
  /** Operand for `CREATE`. */
  createRevision?: number;
  /** Operand for `MOD`. */
  modRevision?: number;
  /** Operand for `VALUE`. */
  value?: Bytes;
  /** Operand for `LEASE`. */
  lease?: number;
}

/** One operation of a txn branch (etcd's `RequestOp`): exactly one field. */
export type RequestOp =
  | { requestRange: RangeRequest }
  | { requestPut: PutRequest }
  | { requestDeleteRange: DeleteRangeRequest }
  | { requestTxn: TxnRequest };

/** The answer to one {@link RequestOp}, in the same position. */
export type ResponseOp =
  | { responseRange: RangeResponse }
  | { responsePut: PutResponse }
  | { responseDeleteRange: DeleteRangeResponse }
  | { responseTxn: TxnResponse };

/**
 * A transaction (etcd's `TxnRequest`): if every compare holds, run `success`,
 * else `failure`, atomically at one revision.
 *
 * Rules (etcd 3.4):
 * - at most `maxTxnOps` (default 128) entries in `compare`, in `success` and
 *   in `failure` each (`QUORUMKV_TOO_MANY_TXN_OPS`); a nested txn gets what
 *   its parent left;
 * - in each branch (nested txns included), no key may be put twice and no put
 *   may fall inside a deleted range (`QUORUMKV_DUPLICATE_KEY`); both branches
 *   are checked before the compares; a delete whose range end is `<= key`
 *   (including `[0]` with `key > [0]`) overlaps nothing here;
 * - compares, nested ones included, see the state before the txn; reads in a
 *   branch see the earlier writes of the same txn;
 * - an unknown lease, an `ignoreValue`/`ignoreLease` put on a missing key, or
 *   a range at a compacted or future revision fails the whole txn only when
 *   it is in the branch that runs;
 * - the txn is one revision (none when it writes nothing); its events come
 *   in the order of its operations.
 */
export interface TxnRequest {
  /** Conditions that must all hold for `success` to run; absent or empty = `success` runs. */
  compare?: Compare[];
  /** Operations run when every compare holds, in order; absent = none. */
  success?: RequestOp[];
  /** Operations run when some compare fails, in order; absent = none. */
  failure?: RequestOp[];
}

/** Answer to a {@link TxnRequest}. */
export interface TxnResponse {
  /**
   * `revision`: the txn's revision when it wrote, else the current revision;
   * 0 for a txn nested in another.
   */
  header: ResponseHeader;
  /** True when every compare held (the `success` branch ran). */
  succeeded: boolean;
  /** One answer per operation of the branch that ran. */
  responses: ResponseOp[];
}

/** Compacts the history (etcd's `CompactionRequest`). */
export interface CompactionRequest {
  /**
   * Revisions below this one become unreadable; the latest version of every
   * key at this revision stays. Must be above the previous compaction
   * (`CompactedError`) and at most the current revision
   * (`QUORUMKV_FUTURE_REVISION`).
   */
  revision: number;
  /** Answer only once the old revisions are physically removed. */
  physical?: boolean;
}

/** Answer to a {@link CompactionRequest}. */
export interface CompactionResponse {
  /** `revision`: the store's current revision when the compaction was applied. */
  header: ResponseHeader;
}

/** Grants a lease (etcd's `LeaseGrantRequest`). */
export interface LeaseGrantRequest {
  /** Time to live in seconds; raised to the store's minimum (default 2 s, as etcd). */
  ttl: number;
  /** Lease id to use; 0 or absent = the store picks the next one. */
  id?: number;
}

/** Answer to a {@link LeaseGrantRequest}. */
export interface LeaseGrantResponse {
  /** `revision`: the store's current revision (granting a lease writes no key). */
  header: ResponseHeader;
  /** Id of the new lease. */
  id: number;
  /** Granted TTL in seconds (after raising to the minimum). */
  ttl: number;
}

/** Revokes a lease and deletes its keys (etcd's `LeaseRevokeRequest`). */
export interface LeaseRevokeRequest {
  /** Id of the lease to revoke; unknown: `QUORUMKV_LEASE_NOT_FOUND`. */
  id: number;
}

/** Answer to a {@link LeaseRevokeRequest}. */
export interface LeaseRevokeResponse {
  /** `revision`: the current revision after the revoke (the deletion's revision when the lease had keys). */
  header: ResponseHeader;
}

/** Asks for a lease's remaining time (etcd's `LeaseTimeToLiveRequest`). */
export interface LeaseTimeToLiveRequest {
  /** Id of the lease asked about. */
  id: number;
  /** Also list the attached keys. */
  keys?: boolean;
}

/** Answer to a {@link LeaseTimeToLiveRequest}. An unknown lease is not an error: `ttl` -1, `grantedTtl` 0. */
export interface LeaseTimeToLiveResponse {
  /** `revision`: the store's current revision. */
  header: ResponseHeader;
  /** Id of the lease asked about (echoed, also for an unknown lease). */
  id: number;
  /** Remaining seconds (rounded down); -1 for an unknown lease. */
  ttl: number;
  /** TTL granted (or last set) in seconds; 0 for an unknown lease. */
  grantedTtl: number;
  /** Attached keys in ascending order, when asked. */
  keys: Bytes[];
}

/** Answer to a lease listing (etcd's `LeaseLeasesResponse`). */
export interface LeaseLeasesResponse {
  /** `revision`: the store's current revision. */
  header: ResponseHeader;
  /** Lease ids, ascending. */
  leases: { id: number }[];
}

/** Answer to a keep-alive (etcd's `LeaseKeepAliveResponse`). */
export interface LeaseKeepAliveResponse {
  /** `revision`: the store's current revision. */
  header: ResponseHeader;
  /** Id of the renewed lease. */
  id: number;
  /** The renewed TTL in seconds. */
  ttl: number;
}

/** Event kinds a watch can drop on the server side. */
export type WatchFilter = 'NOPUT' | 'NODELETE';

/**
 * Creates a watch (etcd's `WatchCreateRequest`). See the module doc for
 * `key`/`rangeEnd`; a `rangeEnd <= key` (other than `[0]`) is an empty range:
 * the watch is created and cancelled at once.
 */
export interface WatchCreateRequest {
  /** The key, or the start of the range (may be empty, as in etcd). */
  key: Bytes;
  /** End of the watched range (see the module doc); absent = the single key `key`. */
  rangeEnd?: Bytes;
  /**
   * First revision to report (inclusive); 0 or absent = the next revision.
   * A revision in the future is allowed. Below the compaction revision, the
   * watch is created and then cancelled with `compactRevision` set; a
   * negative one is below it once the store has compacted (at 1 or above),
   * as in etcd, and means the next revision before.
   */
  startRevision?: number;
  /** Send periodic progress notifications while idle (only once caught up). */
  progressNotify?: boolean;
  /** Event kinds to leave out. */
  filters?: WatchFilter[];
  /** Attach the previous key-value to each event when still available. */
  prevKv?: boolean;
  /** Watch id chosen by the caller; default: the store picks one. */
  watchId?: number;
}

/**
 * One message of a watch (etcd's `WatchResponse`). Events are in revision
 * order; one revision's events are never split across responses. A response
 * with no events and `canceled` false is a progress notification: every
 * event up to `header.revision` has been sent.
 */
export interface WatchResponse {
  /**
   * `revision`: the store revision the response is consistent with. A
   * member's (`KvNode`) watch responses (events, progress notifications,
   * cancellations) also carry `clusterId`, `memberId` (the member the watch
   * is on) and `raftTerm` (that member's term when the response was made),
   * as etcd fills every `WatchResponse` header (v3rpc/watch.go). A bare
   * `MvccStore`'s carry `revision` alone, unless its `watch.responseHeader`
   * option makes them.
   */
  header: ResponseHeader;
  /** Id of the watch this response belongs to. */
  watchId: number;
  /** Set in the first response of a watch (only when a server sends one). */
  created: boolean;
  /** The watch is over; no more responses follow. */
  canceled: boolean;
  /** Set when the watch was cancelled because its start revision has been compacted. */
  compactRevision: number;
  /** Why the watch was cancelled, when `canceled`. */
  cancelReason: string;
  /**
   * The changes, in revision order (a txn's in the order of its operations);
   * empty in a progress notification and a cancellation.
   */
  events: Event[];
}
