/**
 * Checks a request before it is proposed, so that bad input gets a typed
 * error, changes nothing and never enters the Raft log (etcd's gRPC-layer
 * checks in `v3rpc/key.go` and the request-size check of `v3_server.go`).
 * The same checks (except the size) run again when an entry is applied, so
 * a store used without a server behaves the same.
 *
 * Checks, in etcd's order, after the `limits` given (not an object, or a
 * `maxTxnOps` that is not a positive integer or `Infinity`, or a
 * `maxRequestBytes` that is not a positive integer →
 * `QUORUMKV_INVALID_ARGUMENT`):
 * - txn: more than `maxTxnOps` compares, success or failure operations
 *   (a nested txn gets what its parent left) → `QUORUMKV_TOO_MANY_TXN_OPS`;
 * - an empty key (put, range, delete, compare) → `QUORUMKV_INVALID_ARGUMENT`
 *   ("key is not provided"); `ignoreValue` with a value ("value is
 *   provided") or `ignoreLease` with a lease ("lease is provided") → same;
 * - txn: a key put twice, or put inside a deleted range, in one branch
 *   (nested txns included) → `QUORUMKV_DUPLICATE_KEY`;
 * - malformed fields (a request, operation or compare that is not an
 *   object, non-integer numbers, flags that are not booleans, non-byte
 *   keys or values, views of a detached `ArrayBuffer` or out of the bounds of a shrunk resizable one, a Proxy of a Uint8Array, unknown enum strings, a negative id in a lease grant, a TTL
 *   above the maximum) →
 *   `QUORUMKV_INVALID_ARGUMENT`;
 * - the encoded request larger than `maxRequestBytes` →
 *   `QUORUMKV_REQUEST_TOO_LARGE`.
 * @module
 */
import { ErrorCode, UsageError } from '../errors.js';
import { describeValue, viewProblem } from '../arg-values.js';
import { MAX_LEASE_TTL } from '../lease/index.js';
import type {
  Compare,
  DeleteRangeRequest,
  LeaseTimeToLiveRequest,
  PutRequest,
  RangeRequest,
  RequestOp,
  TxnRequest,
  WatchCreateRequest,
} from '../mvccpb/index.js';
import { limitsProblem } from './limits.js';
import { toSkey } from './skey.js';
import { encodeWriteRequest, type WriteRequest } from './write-request.js';

/** Limits on requests. */
export interface RequestLimits {
  /** Largest encoded request in bytes, a positive integer. Default 1.5 MiB (etcd's `--max-request-bytes`). */
  maxRequestBytes: number;
  /** Most compares, success or failure operations in a txn, a positive integer or `Infinity`. Default 128 (etcd's `--max-txn-ops`). */
  maxTxnOps: number;
}

/** etcd's defaults: 1.5 MiB requests, 128 txn operations. */
export const DEFAULT_REQUEST_LIMITS: Readonly<RequestLimits> = Object.freeze({
  maxRequestBytes: 1.5 * 1024 * 1024,
  maxTxnOps: 128,
});

const SORT_ORDERS = new Set(['NONE', 'ASCEND', 'DESCEND']);
const SORT_TARGETS = new Set(['KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE']);
const TARGETS = new Set(['VERSION', 'CREATE', 'MOD', 'VALUE', 'LEASE']);
const RESULTS = new Set(['EQUAL', 'NOT_EQUAL', 'GREATER', 'LESS']);

function invalid(msg: string): never {
  throw new UsageError(ErrorCode.INVALID_ARGUMENT, msg);
}

/**
 * A request or a part of one must be an object (a null one threw a raw
 * TypeError, or failed the store when applied), and not an array (a txn
 * that was one ran as an empty txn).
 */
function checkObject(v: unknown, what: string): void {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) invalid(`${what} must be an object, got ${describeValue(v)}`);
}

/**
 * Bytes: a Uint8Array, not a view of a detached buffer or out of the bounds
 * of a shrunk resizable one (its length reads 0, but reading it throws a
 * TypeError: applied, a detached one failed the store, and either was
 * taken as empty bytes where the length alone was read), nor a Proxy of
 * one (it passes `instanceof`, then reading its length throws a TypeError).
 */
function checkBytes(v: unknown, what: string): asserts v is Uint8Array {
  if (!(v instanceof Uint8Array)) invalid(`${what} must be a Uint8Array`);
  const problem = viewProblem(v);
  if (problem !== undefined) invalid(`${what} is ${problem}`);
}

function checkKey(key: unknown): void {
  checkBytes(key, 'key');
  if (key.length === 0) invalid('etcdserver: key is not provided');
}

function checkOptBytes(v: unknown, what: string): void {
  if (v !== undefined) checkBytes(v, what);
}

/** A flag: absent or a boolean (a string such as 'false' was taken as set). */
function checkOptBool(v: unknown, what: string): void {
  if (v !== undefined && typeof v !== 'boolean') invalid(`${what} must be a boolean, got ${typeof v}`);
}

function checkInt(v: unknown, what: string, min = Number.MIN_SAFE_INTEGER): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) invalid(`${what} must be a safe integer (at most 2^53 - 1) >= ${min}, got ${describeValue(v)}`);
}

/** A field the request cannot do without (left out, it would not decode when applied). */
function checkRequiredInt(v: unknown, what: string): void {
  if (v === undefined) invalid(`${what} is required`);
  checkInt(v, what);
}

/**
 * Checks a range request (etcd's `checkRangeRequest` plus field shapes).
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT`
 */
export function checkRangeRequest(r: RangeRequest): void {
  checkObject(r, 'a range request');
  checkKey(r.key);
  checkOptBytes(r.rangeEnd, 'rangeEnd');
  checkInt(r.limit, 'limit');
  checkInt(r.revision, 'revision');
  checkInt(r.minModRevision, 'minModRevision');
  checkInt(r.maxModRevision, 'maxModRevision');
  checkInt(r.minCreateRevision, 'minCreateRevision');
  checkInt(r.maxCreateRevision, 'maxCreateRevision');
  if (r.sortOrder !== undefined && !SORT_ORDERS.has(r.sortOrder)) invalid(`unknown sortOrder ${describeValue(r.sortOrder)}`);
  if (r.sortTarget !== undefined && !SORT_TARGETS.has(r.sortTarget)) invalid(`unknown sortTarget ${describeValue(r.sortTarget)}`);
  checkOptBool(r.keysOnly, 'keysOnly');
  checkOptBool(r.countOnly, 'countOnly');
  checkOptBool(r.serializable, 'serializable');
}

/**
 * Checks a lease id given to a lease read or keep-alive: a safe integer
 * (any: one no grant gives is an unknown lease).
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT`
 */
export function checkLeaseId(id: number): void {
  checkRequiredInt(id, 'lease id');
}

/**
 * Checks a lease time-to-live request: an object with a lease id
 * ({@link checkLeaseId}) and, if given, a boolean `keys`.
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT`
 */
export function checkLeaseTimeToLiveRequest(r: LeaseTimeToLiveRequest): void {
  if (r === null || typeof r !== 'object') invalid('a lease time-to-live request must be an object');
  checkLeaseId(r.id);
  if (r.keys !== undefined && typeof r.keys !== 'boolean') invalid(`keys must be a boolean, got ${describeValue(r.keys)}`);
}

function checkPut(p: PutRequest): void {
  checkObject(p, 'a put request');
  checkKey(p.key);
  checkOptBytes(p.value, 'value');
  // any id: one no grant gives (a negative one) is etcd's lease-not-found at apply
  checkInt(p.lease, 'lease');
  checkOptBool(p.prevKv, 'prevKv');
  checkOptBool(p.ignoreValue, 'ignoreValue');
  checkOptBool(p.ignoreLease, 'ignoreLease');
  if (p.ignoreValue && p.value !== undefined && p.value.length !== 0) invalid('etcdserver: value is provided');
  if (p.ignoreLease && p.lease !== undefined && p.lease !== 0) invalid('etcdserver: lease is provided');
}

function checkDelete(d: DeleteRangeRequest): void {
  checkObject(d, 'a delete-range request');
  checkKey(d.key);
  checkOptBytes(d.rangeEnd, 'rangeEnd');
  checkOptBool(d.prevKv, 'prevKv');
}

function checkCompare(c: Compare): void {
  checkObject(c, 'a txn compare');
  checkKey(c.key);
  checkOptBytes(c.rangeEnd, 'rangeEnd');
  if (!TARGETS.has(c.target)) invalid(`unknown compare target ${describeValue(c.target)}`);
  if (!RESULTS.has(c.result)) invalid(`unknown compare result ${describeValue(c.result)}`);
  checkInt(c.version, 'compare version');
  checkInt(c.createRevision, 'compare createRevision');
  checkInt(c.modRevision, 'compare modRevision');
  checkInt(c.lease, 'compare lease');
  checkOptBytes(c.value, 'compare value');
}

/**
 * Deepest txn nesting accepted (a txn in a txn is depth 2). etcd sets none,
 * but each level costs stack on every member that applies it, and a stack
 * overflow would stop some members and not others. It is checked at each
 * level after the number of operations: with the default `maxTxnOps` (128),
 * which leaves each nested level at least one operation fewer, a chain of
 * 129 levels with an operation at the last, or of 130 levels, is "too many
 * operations", as in etcd; only a chain of 129 levels whose last is empty,
 * which etcd takes, is refused for its depth. `KvNode` checks it when it
 * applies an entry: what it accepts must not change between versions that
 * apply one log (docs/mvcc.md, "Where the store differs from etcd").
 */
export const MAX_TXN_DEPTH = 128;

function checkOp(op: RequestOp, maxTxnOps: number, depth: number): void {
  if (op === null || typeof op !== 'object') invalid('etcdserver: key not found');
  if ('requestRange' in op) return checkRangeRequest(op.requestRange);
  if ('requestPut' in op) return checkPut(op.requestPut);
  if ('requestDeleteRange' in op) return checkDelete(op.requestDeleteRange);
  if ('requestTxn' in op) return checkTxn(op.requestTxn, maxTxnOps, depth + 1);
  invalid('etcdserver: key not found'); // an empty RequestOp, as etcd answers it
}

/** etcd's `checkTxnRequest`: operation counts, then each compare and operation. */
function checkTxn(t: TxnRequest, maxTxnOps: number, depth = 1): void {
  checkObject(t, 'a txn');
  const compare = t.compare ?? [];
  const success = t.success ?? [];
  const failure = t.failure ?? [];
  if (!Array.isArray(compare) || !Array.isArray(success) || !Array.isArray(failure)) invalid('txn compare/success/failure must be arrays');
  const opc = Math.max(compare.length, success.length, failure.length);
  if (opc > maxTxnOps) throw new UsageError(ErrorCode.TOO_MANY_TXN_OPS, 'etcdserver: too many operations in txn request');
  // after the count, which etcd (with no depth limit) checks first
  if (depth > MAX_TXN_DEPTH) invalid(`txn nested deeper than ${MAX_TXN_DEPTH} levels`);
  for (const c of compare) checkCompare(c);
  for (const op of success) checkOp(op, maxTxnOps - opc, depth);
  for (const op of failure) checkOp(op, maxTxnOps - opc, depth);
}

interface Interval {
  start: string;
  /** exclusive */
  end: string;
}

function intersects(dels: Interval[], k: string): boolean {
  for (const d of dels) if (d.start <= k && k < d.end) return true;
  return false;
}

function duplicate(): never {
  throw new UsageError(ErrorCode.DUPLICATE_KEY, 'etcdserver: duplicate key given in txn request');
}

/**
 * etcd's `checkIntervals`: in one list of operations (and the txns nested in
 * it), no key is put twice and no put falls in a deleted range. The two
 * branches of a nested txn may put the same key (only one runs).
 */
function checkIntervals(ops: RequestOp[]): { puts: Set<string>; dels: Interval[] } {
  const dels: Interval[] = [];
  for (const op of ops) {
    if (!('requestDeleteRange' in op)) continue;
    const d = op.requestDeleteRange;
    const start = toSkey(d.key);
    // a range end <= key (a lone zero byte included) gives an empty interval
    const end = d.rangeEnd !== undefined && d.rangeEnd.length !== 0 ? toSkey(d.rangeEnd) : start + '\0';
    dels.push({ start, end });
  }
  const puts = new Set<string>();
  for (const op of ops) {
    if (!('requestTxn' in op)) continue;
    const then = checkIntervals(op.requestTxn.success ?? []);
    const els = checkIntervals(op.requestTxn.failure ?? []);
    for (const k of then.puts) {
      if (puts.has(k) || intersects(dels, k)) duplicate();
      puts.add(k);
    }
    for (const k of els.puts) {
      if (puts.has(k) && !then.puts.has(k)) duplicate();
      if (intersects(dels, k)) duplicate();
      puts.add(k);
    }
    dels.push(...then.dels, ...els.dels);
  }
  for (const op of ops) {
    if (!('requestPut' in op)) continue;
    const k = toSkey(op.requestPut.key);
    if (puts.has(k) || intersects(dels, k)) duplicate();
    puts.add(k);
  }
  return { puts, dels };
}

/**
 * Checks a txn: operation counts, keys, then duplicate keys in both branches.
 * @throws UsageError `QUORUMKV_TOO_MANY_TXN_OPS`, `QUORUMKV_INVALID_ARGUMENT`, `QUORUMKV_DUPLICATE_KEY`
 */
export function checkTxnRequest(t: TxnRequest, maxTxnOps = DEFAULT_REQUEST_LIMITS.maxTxnOps): void {
  checkObject(t, 'txn');
  checkTxn(t, maxTxnOps);
  checkIntervals(t.success ?? []);
  checkIntervals(t.failure ?? []);
}

/**
 * Checks a watch request (field shapes; etcd checks nothing more, not even
 * an empty key).
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT`
 */
export function checkWatchRequest(w: WatchCreateRequest): void {
  checkObject(w, 'a watch request');
  // etcd accepts an empty key in a watch (with a range end: every key below it)
  checkBytes(w.key, 'key');
  checkOptBytes(w.rangeEnd, 'rangeEnd');
  checkInt(w.startRevision, 'startRevision');
  checkInt(w.watchId, 'watchId', 0);
  checkOptBool(w.prevKv, 'prevKv');
  checkOptBool(w.progressNotify, 'progressNotify');
  if (w.filters !== undefined && !Array.isArray(w.filters)) invalid('watch filters must be an array');
  for (const f of w.filters ?? []) if (f !== 'NOPUT' && f !== 'NODELETE') invalid(`unknown watch filter ${describeValue(f)}`);
}

/**
 * The static checks of a write request (everything but the size).
 * @throws UsageError with the codes of the module doc
 */
export function checkWriteRequest(req: WriteRequest, limits: Partial<RequestLimits> = {}): void {
  checkLimits(limits);
  const maxTxnOps = limits.maxTxnOps ?? DEFAULT_REQUEST_LIMITS.maxTxnOps;
  if (req === null || typeof req !== 'object') invalid('write request must be an object');
  const kinds = Object.keys(req);
  const body = kinds.length === 1 ? (req as unknown as Record<string, unknown>)[kinds[0]!] : undefined;
  if (body === null || typeof body !== 'object') invalid('a write request has one field, an object (put, deleteRange, txn, compaction, leaseGrant or leaseRevoke)');
  if ('put' in req) return checkPut(req.put);
  if ('deleteRange' in req) return checkDelete(req.deleteRange);
  if ('txn' in req) return checkTxnRequest(req.txn, maxTxnOps);
  if ('compaction' in req) {
    checkOptBool(req.compaction.physical, 'physical');
    return checkRequiredInt(req.compaction.revision, 'compaction revision');
  }
  if ('leaseGrant' in req) {
    const g = req.leaseGrant;
    if (typeof g.ttl !== 'number' || !Number.isSafeInteger(g.ttl)) invalid(`lease TTL must be an integer, got ${describeValue(g.ttl)}`);
    if (g.ttl > MAX_LEASE_TTL) invalid('etcdserver: too large lease TTL');
    checkInt(g.id, 'lease id', 0);
    return;
  }
  if ('leaseRevoke' in req) return checkRequiredInt(req.leaseRevoke.id, 'lease id');
  invalid('unknown write request');
}

/** Refuses `limits` that are not an object of {@link RequestLimits} fields (see `limitsProblem`). */
function checkLimits(limits: Partial<RequestLimits>): void {
  const problem = limitsProblem(limits);
  if (problem !== undefined) invalid(problem);
}

/**
 * Checks a write request and encodes it for the Raft log: what a server
 * calls before proposing.
 * @returns the encoded request (what to propose)
 * @throws UsageError with the codes of the module doc, `QUORUMKV_REQUEST_TOO_LARGE` last
 */
export function prepareWriteRequest(req: WriteRequest, limits: Partial<RequestLimits> = {}): Uint8Array {
  checkWriteRequest(req, limits);
  const data = encodeWriteRequest(req);
  const max = limits.maxRequestBytes ?? DEFAULT_REQUEST_LIMITS.maxRequestBytes;
  if (data.length > max) {
    throw new UsageError(ErrorCode.REQUEST_TOO_LARGE, `etcdserver: request is too large (${data.length} bytes, limit ${max})`);
  }
  return data;
}

/**
 * Validates a write request without keeping its encoding (see
 * {@link prepareWriteRequest}).
 * @throws UsageError with the codes of the module doc
 */
export function validateWriteRequest(req: WriteRequest, limits: Partial<RequestLimits> = {}): void {
  prepareWriteRequest(req, limits);
}
