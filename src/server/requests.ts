/**
 * Turns the caller-friendly inputs of the {@link KV} interface (strings or
 * bytes, `prefix: true`) into the store's request types, checking shapes so
 * that bad input fails with `QUORUMKV_INVALID_ARGUMENT` before anything is
 * proposed.
 * @module
 */
import { ErrorCode, UsageError } from '../errors.js';
import { describeValue, viewProblem } from '../arg-values.js';
import { checkOptionKeys, checkOptionsArg, type NoKeyMissing } from '../option-keys.js';
import { MAX_TXN_DEPTH } from '../mvcc/validate.js';
import { prefixEnd, toBytes } from '../mvccpb/index.js';
import type {
  Compare,
  DeleteRangeRequest,
  PutRequest,
  RangeRequest,
  RequestOp,
  TxnRequest,
  WatchCreateRequest,
} from '../mvccpb/index.js';
import type { BytesLike, CompareInput, DeleteOptions, KeyRange, PutOptions, RangeInput, RequestOpInput, TxnInput, WatchOptions } from './kv.js';

function invalid(msg: string): never {
  throw new UsageError(ErrorCode.INVALID_ARGUMENT, msg);
}

/** The range options of a read (`get` takes these, without the key fields). */
export const RANGE_OPTION_KEYS = [
  'limit',
  'revision',
  'sortOrder',
  'sortTarget',
  'serializable',
  'keysOnly',
  'countOnly',
  'minModRevision',
  'maxModRevision',
  'minCreateRevision',
  'maxCreateRevision',
] as const satisfies readonly (keyof RangeInput)[];
const RANGE_KEYS = ['key', 'rangeEnd', 'prefix', ...RANGE_OPTION_KEYS] as const;
const PUT_KEYS = ['lease', 'prevKv', 'ignoreValue', 'ignoreLease'] as const satisfies readonly (keyof PutOptions)[];
const DELETE_KEYS = ['key', 'rangeEnd', 'prefix', 'prevKv'] as const satisfies readonly (keyof (KeyRange & DeleteOptions))[];
const COMPARE_KEYS = ['key', 'rangeEnd', 'prefix', 'target', 'result', 'version', 'createRevision', 'modRevision', 'value', 'lease'] as const satisfies readonly (keyof CompareInput)[];
const WATCH_KEYS = ['rangeEnd', 'prefix', 'startRevision', 'prevKv', 'filters', 'progressNotify'] as const satisfies readonly (keyof WatchOptions)[];
// each compiles only while its list names every key of its interface
type RangeKeysComplete = NoKeyMissing<Exclude<keyof RangeInput, (typeof RANGE_KEYS)[number]>>;
type PutKeysComplete = NoKeyMissing<Exclude<keyof PutOptions, (typeof PUT_KEYS)[number]>>;
type DeleteKeysComplete = NoKeyMissing<Exclude<keyof (KeyRange & DeleteOptions), (typeof DELETE_KEYS)[number]>>;
type CompareKeysComplete = NoKeyMissing<Exclude<keyof CompareInput, (typeof COMPARE_KEYS)[number]>>;
type WatchKeysComplete = NoKeyMissing<Exclude<keyof WatchOptions, (typeof WATCH_KEYS)[number]>>;

/**
 * Refuses a field of another name in a request's input: ignored, a
 * misspelled one (`prevkv`, `startRev`) would change what the request does
 * without a word.
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` naming the field
 */
export function knownFields(o: object, known: readonly string[], what: string): void {
  checkOptionKeys(o, known, what, ErrorCode.INVALID_ARGUMENT);
}

/**
 * The options object of a call: `undefined` gives `{}`.
 * @param known - every option the call takes
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `o` is anything but an object or undefined
 *   (`null` included), or has a field outside `known`
 */
export function optionsWith<T extends object>(o: T | undefined, what: string, known: readonly (keyof T & string)[]): Partial<T> {
  checkOptionsArg(o, known, what);
  return o ?? {};
}

/**
 * A boolean option: `undefined` or a boolean.
 * @returns whether it is `true`
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for anything else (a string such as `'yes'` included)
 */
export function flagOf(v: unknown, what: string): boolean {
  if (v !== undefined && typeof v !== 'boolean') invalid(`${what} must be a boolean`);
  return v === true;
}

/**
 * Bytes of a key or value.
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `v` is neither a string nor a Uint8Array,
 *   or is a view of a detached `ArrayBuffer` (one transferred) or out of the bounds of a
 *   resizable one that has shrunk (its length reads 0, but reading it throws a TypeError),
 *   or a Proxy of a Uint8Array (it passes `instanceof`, but reading its length throws a TypeError)
 */
export function bytesOf(v: BytesLike, what: string): Uint8Array {
  if (typeof v !== 'string' && !(v instanceof Uint8Array)) invalid(`${what} must be a string or a Uint8Array`);
  const problem = typeof v === 'string' ? undefined : viewProblem(v);
  if (problem !== undefined) invalid(`${what} is ${problem}`);
  return toBytes(v);
}

/** A non-empty key. @throws UsageError `QUORUMKV_INVALID_ARGUMENT` ("etcdserver: key is not provided") */
export function keyOf(v: BytesLike, what = 'key'): Uint8Array {
  const b = bytesOf(v, what);
  if (b.length === 0) invalid(`${what} is not provided`);
  return b;
}

/**
 * `key`/`rangeEnd` of a {@link KeyRange}. The key must not be empty
 * ("etcdserver: key is not provided"), but for `''` with `prefix: true` in
 * a range or a delete (`emptyPrefixIsAll`), every key: etcd's client sends
 * it as the key and range end `'\0'` (clientv3 `WithPrefix`, as `etcdctl
 * get "" --prefix`). A compare's `WithPrefix` (clientv3 `Cmp.WithPrefix`)
 * keeps the empty key, which etcd refuses.
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT`
 */
export function rangeOf(r: KeyRange, emptyPrefixIsAll = true): { key: Uint8Array; rangeEnd?: Uint8Array } {
  if (r === null || typeof r !== 'object') invalid('a key range must be an object');
  if (flagOf(r.prefix, 'prefix')) {
    if (r.rangeEnd !== undefined) invalid('prefix and rangeEnd cannot both be given');
    const key = emptyPrefixIsAll ? bytesOf(r.key, 'key') : keyOf(r.key);
    return key.length === 0 ? { key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) } : { key, rangeEnd: prefixEnd(key) };
  }
  const key = keyOf(r.key);
  if (r.rangeEnd === undefined) return { key };
  const rangeEnd = bytesOf(r.rangeEnd, 'rangeEnd');
  return rangeEnd.length === 0 ? { key } : { key, rangeEnd };
}

/**
 * A whole number where one is expected. Negative values are let through, as
 * etcd takes them: a limit of 0 or less means none, a filter below every
 * revision keeps or drops everything, a compare against -1 is plain
 * arithmetic.
 */
function safeInt(v: unknown, what: string): void {
  if (v !== undefined && (typeof v !== 'number' || !Number.isSafeInteger(v))) invalid(`${what} must be a safe integer`);
}

/** A {@link RangeRequest} from a {@link RangeInput}. */
export function rangeRequest(input: RangeInput): RangeRequest {
  const { key, rangeEnd } = rangeOf(input);
  knownFields(input, RANGE_KEYS, 'range');
  const { prefix: _p, key: _k, rangeEnd: _r, ...opts } = input;
  for (const f of ['limit', 'minModRevision', 'maxModRevision', 'minCreateRevision', 'maxCreateRevision'] as const) {
    safeInt(opts[f], f);
  }
  if (opts.revision !== undefined && (typeof opts.revision !== 'number' || !Number.isSafeInteger(opts.revision))) {
    invalid('revision must be a safe integer');
  }
  for (const f of ['keysOnly', 'countOnly', 'serializable'] as const) flagOf(opts[f], f);
  const req: RangeRequest = { ...opts, key };
  if (rangeEnd !== undefined) req.rangeEnd = rangeEnd;
  return req;
}

/**
 * A {@link PutRequest}. A value left out is empty (etcd's protobuf default),
 * as a txn's put may leave it out; with `requireValue` (`KV.put`, whose
 * value is not optional) it may be left out only with `ignoreValue`.
 */
export function putRequest(key: BytesLike, value: BytesLike | undefined, opts: PutOptions | undefined = {}, requireValue = false): PutRequest {
  const options = optionsWith(opts, 'put options', PUT_KEYS);
  safeInt(options.lease, 'lease'); // a negative id is etcd's lease-not-found, when the put runs
  const ignoreValue = flagOf(options.ignoreValue, 'ignoreValue');
  if (requireValue && value === undefined && !ignoreValue) invalid("value must be a string or a Uint8Array ('' for an empty value)");
  const req: PutRequest = { key: keyOf(key), value: value === undefined ? new Uint8Array(0) : bytesOf(value, 'value') };
  if (options.lease !== undefined && options.lease !== 0) req.lease = options.lease;
  if (flagOf(options.prevKv, 'prevKv')) req.prevKv = true;
  if (ignoreValue) req.ignoreValue = true;
  if (flagOf(options.ignoreLease, 'ignoreLease')) req.ignoreLease = true;
  return req;
}

/** A {@link DeleteRangeRequest}. */
export function deleteRequest(r: KeyRange & { prevKv?: boolean }): DeleteRangeRequest {
  const req: DeleteRangeRequest = rangeOf(r);
  knownFields(r, DELETE_KEYS, 'delete');
  if (flagOf(r.prevKv, 'prevKv')) req.prevKv = true;
  return req;
}

/** The operand field of each compare target. */
const COMPARE_OPERANDS: Readonly<Record<CompareInput['target'], string>> = { VERSION: 'version', CREATE: 'createRevision', MOD: 'modRevision', VALUE: 'value', LEASE: 'lease' };

function compareOf(c: CompareInput): Compare {
  if (c === null || typeof c !== 'object') invalid('a compare must be an object');
  // '' with prefix: true is refused, as etcd refuses what clientv3's
  // Cmp.WithPrefix makes of it (the empty key, range end '\0')
  const { key, rangeEnd } = rangeOf(c, false);
  knownFields(c, COMPARE_KEYS, 'a compare');
  const out: Compare = { target: c.target, result: c.result, key };
  if (rangeEnd !== undefined) out.rangeEnd = rangeEnd;
  if (typeof c.target !== 'string' || !Object.hasOwn(COMPARE_OPERANDS, c.target)) invalid(`unknown compare target ${describeValue(c.target)}`);
  if (!['EQUAL', 'NOT_EQUAL', 'GREATER', 'LESS'].includes(c.result)) invalid(`unknown compare result ${describeValue(c.result)}`);
  // etcd's Compare holds one operand (its target_union is a oneof); another
  // target's operand would be left out and the key compared with 0
  const own = COMPARE_OPERANDS[c.target];
  for (const field of Object.values(COMPARE_OPERANDS)) {
    if (field !== own && (c as unknown as Record<string, unknown>)[field] !== undefined) {
      invalid(`a ${c.target} compare takes the operand ${own}, not ${field}`);
    }
  }
  switch (c.target) {
    case 'VERSION':
      safeInt(c.version, 'version');
      out.version = c.version ?? 0;
      break;
    case 'CREATE':
      safeInt(c.createRevision, 'createRevision');
      out.createRevision = c.createRevision ?? 0;
      break;
    case 'MOD':
      safeInt(c.modRevision, 'modRevision');
      out.modRevision = c.modRevision ?? 0;
      break;
    case 'VALUE':
      out.value = c.value === undefined ? new Uint8Array(0) : bytesOf(c.value, 'value');
      break;
    case 'LEASE':
      safeInt(c.lease, 'lease'); // compared as plain int64 arithmetic, as etcd does
      out.lease = c.lease ?? 0;
      break;
  }
  return out;
}

const OP_KINDS = ['range', 'put', 'deleteRange', 'txn'] as const;

/**
 * A {@link RequestOp} from a {@link RequestOpInput}: exactly one of its
 * kinds (etcd's `RequestOp` is a oneof), a kind left `undefined` being
 * absent.
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for no kind or more than
 *   one (run as the first, `{ put, deleteRange }` deleted nothing)
 */
function opOf(op: RequestOpInput, depth: number, maxTxnOps: number): RequestOp {
  if (op === null || typeof op !== 'object') invalid('a txn operation must be an object');
  knownFields(op, OP_KINDS, 'a txn operation');
  const kinds = OP_KINDS.filter((k) => (op as Record<string, unknown>)[k] !== undefined);
  if (kinds.length !== 1) {
    invalid(`a txn operation needs exactly one of range, put, deleteRange, txn${kinds.length > 1 ? `, not ${kinds.join(' and ')}` : ''}`);
  }
  const o = op as { range?: RangeInput; put?: Extract<RequestOpInput, { put: unknown }>['put']; deleteRange?: KeyRange & { prevKv?: boolean }; txn?: TxnInput };
  switch (kinds[0]!) {
    case 'range':
      return { requestRange: rangeRequest(o.range!) };
    case 'put': {
      if (o.put === null || typeof o.put !== 'object') invalid('a txn put must be an object');
      const { key, value, ...options } = o.put;
      knownFields(o.put, ['key', 'value', ...PUT_KEYS], 'a txn put');
      return { requestPut: putRequest(key, value, options) };
    }
    case 'deleteRange':
      return { requestDeleteRange: deleteRequest(o.deleteRange!) };
    case 'txn':
      return { requestTxn: txnRequest(o.txn!, depth + 1, maxTxnOps) };
  }
}

/**
 * A {@link TxnRequest} from a {@link TxnInput}, checked in etcd's order
 * (`checkTxnRequest`): at each level the number of operations first, then
 * the depth (see `MAX_TXN_DEPTH`), the compares, then the success and the
 * failure operations in turn, so that a txn with both a bad key (or too
 * many levels) and too many operations gets etcd's error.
 * @param depth - its nesting level (1 for a txn that is not nested)
 * @param maxTxnOps - most compares, success or failure operations at this
 *   level; a nested txn may have what its parent's largest list leaves
 *   (etcd's `maxTxnOps - opc`)
 * @throws UsageError `QUORUMKV_TOO_MANY_TXN_OPS` ("etcdserver: too many operations in txn request"),
 *   `QUORUMKV_INVALID_ARGUMENT`
 */
export function txnRequest(input: TxnInput, depth = 1, maxTxnOps = Number.POSITIVE_INFINITY): TxnRequest {
  // an array ran as an empty txn
  if (input === null || typeof input !== 'object' || Array.isArray(input)) invalid('a txn must be an object');
  knownFields(input, ['compare', 'success', 'failure'], 'a txn');
  for (const f of ['compare', 'success', 'failure'] as const) {
    if (input[f] !== undefined && !Array.isArray(input[f])) invalid(`txn ${f} must be an array`);
  }
  const compare = input.compare ?? [];
  const success = input.success ?? [];
  const failure = input.failure ?? [];
  const opc = Math.max(compare.length, success.length, failure.length);
  if (opc > maxTxnOps) throw new UsageError(ErrorCode.TOO_MANY_TXN_OPS, 'etcdserver: too many operations in txn request');
  // after the count, which etcd (with no depth limit) checks first
  if (depth > MAX_TXN_DEPTH) invalid(`txn nested deeper than ${MAX_TXN_DEPTH} levels`);
  return {
    compare: compare.map(compareOf),
    success: success.map((op) => opOf(op, depth, maxTxnOps - opc)),
    failure: failure.map((op) => opOf(op, depth, maxTxnOps - opc)),
  };
}

/**
 * A {@link WatchCreateRequest}. Unlike the other requests, the key may be
 * empty, as etcd accepts it, and it stands for `'\0'`, the smallest key, as
 * etcd's watch server rewrites it (`v3rpc/watch.go`): `''` alone watches the
 * key `'\0'`, `''` with a range end watches `['\0', rangeEnd)`, and `''`
 * with `prefix: true` every key.
 */
export function watchRequest(key: BytesLike, opts: WatchOptions | undefined = {}): WatchCreateRequest {
  const options = optionsWith(opts, 'watch options', WATCH_KEYS);
  const k = bytesOf(key, 'key');
  let rangeEnd: Uint8Array | undefined;
  if (flagOf(options.prefix, 'prefix')) {
    if (options.rangeEnd !== undefined) invalid('prefix and rangeEnd cannot both be given');
    rangeEnd = k.length === 0 ? new Uint8Array([0]) : prefixEnd(k);
  } else if (options.rangeEnd !== undefined) {
    const end = bytesOf(options.rangeEnd, 'rangeEnd');
    if (end.length > 0) rangeEnd = end;
  }
  if (options.startRevision !== undefined && (typeof options.startRevision !== 'number' || !Number.isSafeInteger(options.startRevision))) {
    invalid('startRevision must be a safe integer');
  }
  const req: WatchCreateRequest = { key: k.length === 0 ? new Uint8Array([0]) : k };
  if (rangeEnd !== undefined) req.rangeEnd = rangeEnd;
  if (options.startRevision !== undefined) req.startRevision = options.startRevision;
  if (flagOf(options.prevKv, 'prevKv')) req.prevKv = true;
  if (options.filters !== undefined) {
    if (!Array.isArray(options.filters)) invalid("watch filters must be an array of 'NOPUT' and 'NODELETE'");
    req.filters = [...options.filters];
  }
  if (flagOf(options.progressNotify, 'progressNotify')) req.progressNotify = true;
  return req;
}

/** A copy of the caller's bytes, in an `ArrayBuffer` of its own (not shared). */
function ownCopy(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}

/**
 * `r` with its own copies of its key and range end. A read waits (for its
 * read index) before the store reads them, and the caller may change the
 * bytes it gave once the call has returned.
 */
export function ownRange(r: RangeRequest): RangeRequest {
  const own: RangeRequest = { ...r, key: ownCopy(r.key) };
  if (r.rangeEnd !== undefined) own.rangeEnd = ownCopy(r.rangeEnd);
  return own;
}

/**
 * A read-only txn (compares, and ranges or txns of them in both branches)
 * with its own copies of its bytes, as {@link ownRange}.
 */
export function ownReadTxn(t: TxnRequest): TxnRequest {
  const ownOp = (op: RequestOp): RequestOp => {
    if ('requestRange' in op) return { requestRange: ownRange(op.requestRange) };
    if ('requestTxn' in op) return { requestTxn: ownReadTxn(op.requestTxn) };
    return op; // no write is in a read-only txn
  };
  return {
    compare: (t.compare ?? []).map((c) => {
      const own: Compare = { ...c, key: ownCopy(c.key) };
      if (c.rangeEnd !== undefined) own.rangeEnd = ownCopy(c.rangeEnd);
      if (c.value !== undefined) own.value = ownCopy(c.value);
      return own;
    }),
    success: (t.success ?? []).map(ownOp),
    failure: (t.failure ?? []).map(ownOp),
  };
}
