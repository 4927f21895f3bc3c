/**
 * The operations of an etcd-v3-style key-value store, as the KV model sees
 * them: keys and values are strings, revisions are numbers. They mirror
 * etcd's `Range`, `Put`, `DeleteRange` and `Txn` requests and responses, with
 * every response field optional so that a history records what its client
 * actually saw. These types stand alone: they do not depend on the store.
 * @module
 */

/** The field of a key a txn compare looks at (etcd `Compare.target`). */
export type KvCompareTarget = 'value' | 'version' | 'createRevision' | 'modRevision';

/** The comparison of a txn compare (etcd `Compare.result`). */
export type KvCompareResult = '=' | '!=' | '<' | '>';

/**
 * One txn compare: `target(key) result value`. For `value`, `value` is a
 * string compared by bytes (a number is turned into its decimal string); a
 * missing key makes a `value` compare false (etcd: "always fail if
 * comparing a value on a key that doesn't exist"). For the other targets,
 * `value` is an integer (a string of one is accepted) and a missing key has
 * 0.
 */
export interface KvCompare {
  /** The key compared. */
  readonly key: string;
  /** Which field of the key. */
  readonly target: KvCompareTarget;
  /** The comparison: `target(key) result value`. */
  readonly result: KvCompareResult;
  /**
   * What the field is compared with: a string (or a number) for `value`;
   * otherwise a safe integer, or a string of one (anything else is refused).
   */
  readonly value: string | number;
}

/** One operation of a txn branch. */
export type KvTxnOp =
  | { readonly type: 'get'; readonly key: string }
  | { readonly type: 'put'; readonly key: string; readonly value: string }
  | { readonly type: 'delete'; readonly key: string };

/**
 * A request to the store.
 *
 * - `get`: read one key.
 * - `put`: write one key.
 * - `delete`: delete one key.
 * - `range`: read every key of a range in etcd's convention (see
 *   {@link KeyRange}; {@link prefixRange} builds a prefix range).
 * - `txn`: if every compare holds, run `success`, else `failure`, atomically,
 *   under one revision.
 */
export type KvInput =
  | { readonly type: 'get'; readonly key: string }
  | { readonly type: 'put'; readonly key: string; readonly value: string }
  | { readonly type: 'delete'; readonly key: string }
  | { readonly type: 'range'; readonly key: string; readonly rangeEnd?: string | undefined }
  | {
      readonly type: 'txn';
      readonly compare: readonly KvCompare[];
      readonly success: readonly KvTxnOp[];
      readonly failure: readonly KvTxnOp[];
    };

/** The metadata of a key-value pair as a read returns it; each field is checked when present. */
export interface KvMeta {
  /** Revision of the last write to the key. */
  readonly modRevision?: number | undefined;
  /** Revision of the write that created the key (since its last deletion). */
  readonly createRevision?: number | undefined;
  /** Number of writes since creation (1 after the creating put). */
  readonly version?: number | undefined;
}

/** One pair in a `range` response. */
export interface KvPair extends KvMeta {
  /** The key. */
  readonly key: string;
  /** Its value. */
  readonly value: string;
}

/** Response to `get`. `value` is `null` when the key does not exist. */
export interface KvGetOutput extends KvMeta {
  /** The key's value, or `null` when the key does not exist at the read. */
  readonly value: string | null;
  /** Header revision: the store's revision when the read was served. */
  readonly revision?: number | undefined;
}

/** Response to `put`. */
export interface KvPutOutput {
  /** Header revision: the revision of this write. */
  readonly revision?: number | undefined;
  /** The previous value when the client asked for it (`prevKv`); `null` = the key did not exist. */
  readonly prevValue?: string | null | undefined;
}

/** Response to `delete`. */
export interface KvDeleteOutput {
  /** Header revision: the revision of this delete, or the current one if nothing was deleted. */
  readonly revision?: number | undefined;
  /** Number of keys deleted (0 or 1). */
  readonly deleted?: number | undefined;
  /** The deleted value when asked for (`prevKv`); `null` = nothing was deleted. */
  readonly prevValue?: string | null | undefined;
}

/** Response to `range`: the pairs in key order. */
export interface KvRangeOutput {
  /** The keys of the range that exist, in ascending key order, with their values (empty when none). */
  readonly kvs: readonly KvPair[];
  /** Header revision: the store's revision when the read was served. */
  readonly revision?: number | undefined;
}

/**
 * The result of one txn branch operation, positionally matching the branch.
 * It carries only the fields of its operation (a get: `value` and the
 * metadata; a put: `prevValue`; a delete: `deleted` and `prevValue`): the
 * KV model finds a history illegal when a result carries another's.
 */
export interface KvTxnOpResult extends KvMeta {
  /** `get`: the value read, `null` when missing. */
  readonly value?: string | null | undefined;
  /** `put`/`delete`: the previous value when asked for; `null` = none. */
  readonly prevValue?: string | null | undefined;
  /** `delete`: number of keys deleted (0 or 1). */
  readonly deleted?: number | undefined;
}

/** Response to `txn`. */
export interface KvTxnOutput {
  /** Whether the compares held (the `success` branch ran). */
  readonly succeeded?: boolean | undefined;
  /** Results of the branch that ran, one per operation, in order. */
  readonly results?: readonly KvTxnOpResult[] | undefined;
  /** Header revision: the txn's revision if it wrote, else the current one. */
  readonly revision?: number | undefined;
}

/** Any response; which one is given by the input's `type`. */
export type KvOutput = KvGetOutput | KvPutOutput | KvDeleteOutput | KvRangeOutput | KvTxnOutput;
