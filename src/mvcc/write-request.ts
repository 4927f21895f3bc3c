/**
 * The requests that change the store: each is one Raft log entry, applied on
 * every member in log order (etcd's `InternalRaftRequest`, restricted to the
 * key-value and lease requests), and their positional byte encoding for the
 * log.
 *
 * Encoding (msgpack arrays, no field names; bytes as msgpack bin):
 * - put: `[0, key, value, lease, flags]`, flags = prevKv | ignoreValue<<1 | ignoreLease<<2
 * - deleteRange: `[1, key, rangeEnd | null, prevKv]`
 * - txn: `[2, compares, success, failure]`; a compare is
 *   `[target, result, key, rangeEnd | null, operand]`; an op is
 *   `[0, ...range] | [1, ...put] | [2, ...deleteRange] | [3, ...txn]`
 *   where range is `key, rangeEnd | null, limit, revision, sortOrder,
 *   sortTarget, flags (keysOnly | countOnly<<1 | serializable<<2), minMod,
 *   maxMod, minCreate, maxCreate`
 * - compaction: `[3, revision, physical]`
 * - leaseGrant: `[4, ttl, id]`
 * - leaseRevoke: `[5, id]`
 * @module
 */
import { pack, unpack } from '../codec/index.js';
import { ErrorCode, FaultError } from '../errors.js';
import type {
  CompactionRequest,
  CompactionResponse,
  Compare,
  CompareResult,
  CompareTarget,
  DeleteRangeRequest,
  DeleteRangeResponse,
  LeaseGrantRequest,
  LeaseGrantResponse,
  LeaseRevokeRequest,
  LeaseRevokeResponse,
  PutRequest,
  PutResponse,
  RangeRequest,
  RequestOp,
  SortOrder,
  SortTarget,
  TxnRequest,
  TxnResponse,
} from '../mvccpb/index.js';

/** A request that changes the store: exactly one field. Lease-expiry revokes are `leaseRevoke`s. */
export type WriteRequest =
  | { put: PutRequest }
  | { deleteRange: DeleteRangeRequest }
  | { txn: TxnRequest }
  | { compaction: CompactionRequest }
  | { leaseGrant: LeaseGrantRequest }
  | { leaseRevoke: LeaseRevokeRequest };

/** The answer to a {@link WriteRequest}, with the same field name. */
export type WriteResponse =
  | { put: PutResponse }
  | { deleteRange: DeleteRangeResponse }
  | { txn: TxnResponse }
  | { compaction: CompactionResponse }
  | { leaseGrant: LeaseGrantResponse }
  | { leaseRevoke: LeaseRevokeResponse };

const TARGETS: readonly CompareTarget[] = ['VERSION', 'CREATE', 'MOD', 'VALUE', 'LEASE'];
const RESULTS: readonly CompareResult[] = ['EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL'];
const ORDERS: readonly SortOrder[] = ['NONE', 'ASCEND', 'DESCEND'];
const SORT_TARGETS: readonly SortTarget[] = ['KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'];
const EMPTY = new Uint8Array(0);

function malformed(what: string): never {
  throw new FaultError(ErrorCode.MALFORMED_FRAME, `malformed write request: ${what}`);
}

function bytes(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) malformed(what);
  return v;
}

function optBytes(v: unknown, what: string): Uint8Array | undefined {
  return v === null ? undefined : bytes(v, what);
}

function int(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) malformed(what);
  return v;
}

function arr(v: unknown, what: string, len?: number): unknown[] {
  if (!Array.isArray(v) || (len !== undefined && v.length !== len)) malformed(what);
  return v;
}

function pick<T>(table: readonly T[], v: unknown, what: string): T {
  const x = table[int(v, what)];
  if (x === undefined) malformed(what);
  return x;
}

function code<T>(table: readonly T[], v: T | undefined, dflt: T): number {
  const i = table.indexOf(v ?? dflt);
  return i < 0 ? 0 : i;
}

function putBody(p: PutRequest): unknown[] {
  const flags = (p.prevKv ? 1 : 0) | (p.ignoreValue ? 2 : 0) | (p.ignoreLease ? 4 : 0);
  return [p.key, p.value ?? EMPTY, p.lease ?? 0, flags];
}

function putFrom(t: unknown[], at: number): PutRequest {
  const flags = int(t[at + 3], 'put flags');
  const p: PutRequest = { key: bytes(t[at], 'put key'), value: bytes(t[at + 1], 'put value') };
  const lease = int(t[at + 2], 'put lease');
  if (lease !== 0) p.lease = lease;
  if (flags & 1) p.prevKv = true;
  if (flags & 2) p.ignoreValue = true;
  if (flags & 4) p.ignoreLease = true;
  return p;
}

function deleteBody(d: DeleteRangeRequest): unknown[] {
  return [d.key, d.rangeEnd === undefined || d.rangeEnd.length === 0 ? null : d.rangeEnd, d.prevKv ? 1 : 0];
}

function deleteFrom(t: unknown[], at: number): DeleteRangeRequest {
  const d: DeleteRangeRequest = { key: bytes(t[at], 'delete key') };
  const end = optBytes(t[at + 1], 'delete rangeEnd');
  if (end !== undefined) d.rangeEnd = end;
  if (int(t[at + 2], 'delete prevKv') === 1) d.prevKv = true;
  return d;
}

function rangeBody(r: RangeRequest): unknown[] {
  const flags = (r.keysOnly ? 1 : 0) | (r.countOnly ? 2 : 0) | (r.serializable ? 4 : 0);
  return [
    r.key,
    r.rangeEnd === undefined || r.rangeEnd.length === 0 ? null : r.rangeEnd,
    r.limit ?? 0,
    r.revision ?? 0,
    code(ORDERS, r.sortOrder, 'NONE'),
    code(SORT_TARGETS, r.sortTarget, 'KEY'),
    flags,
    r.minModRevision ?? 0,
    r.maxModRevision ?? 0,
    r.minCreateRevision ?? 0,
    r.maxCreateRevision ?? 0,
  ];
}

function rangeFrom(t: unknown[], at: number): RangeRequest {
  const r: RangeRequest = { key: bytes(t[at], 'range key') };
  const end = optBytes(t[at + 1], 'range rangeEnd');
  if (end !== undefined) r.rangeEnd = end;
  const nums: [keyof RangeRequest, number][] = [
    ['limit', at + 2],
    ['revision', at + 3],
    ['minModRevision', at + 7],
    ['maxModRevision', at + 8],
    ['minCreateRevision', at + 9],
    ['maxCreateRevision', at + 10],
  ];
  for (const [name, i] of nums) {
    const v = int(t[i], `range ${name}`);
    if (v !== 0) (r as unknown as Record<string, number>)[name] = v;
  }
  const order = pick(ORDERS, t[at + 4], 'range sortOrder');
  if (order !== 'NONE') r.sortOrder = order;
  const target = pick(SORT_TARGETS, t[at + 5], 'range sortTarget');
  if (target !== 'KEY') r.sortTarget = target;
  const flags = int(t[at + 6], 'range flags');
  if (flags & 1) r.keysOnly = true;
  if (flags & 2) r.countOnly = true;
  if (flags & 4) r.serializable = true;
  return r;
}

function compareOperand(c: Compare): unknown {
  switch (c.target) {
    case 'VERSION':
      return c.version ?? 0;
    case 'CREATE':
      return c.createRevision ?? 0;
    case 'MOD':
      return c.modRevision ?? 0;
    case 'VALUE':
      return c.value ?? EMPTY;
    case 'LEASE':
      return c.lease ?? 0;
  }
}

function compareTuple(c: Compare): unknown[] {
  return [
    code(TARGETS, c.target, 'VERSION'),
    code(RESULTS, c.result, 'EQUAL'),
    c.key,
    c.rangeEnd === undefined || c.rangeEnd.length === 0 ? null : c.rangeEnd,
    compareOperand(c),
  ];
}

function compareFrom(v: unknown): Compare {
  const t = arr(v, 'compare', 5);
  const target = pick(TARGETS, t[0], 'compare target');
  const c: Compare = { target, result: pick(RESULTS, t[1], 'compare result'), key: bytes(t[2], 'compare key') };
  const end = optBytes(t[3], 'compare rangeEnd');
  if (end !== undefined) c.rangeEnd = end;
  switch (target) {
    case 'VERSION':
      c.version = int(t[4], 'compare version');
      break;
    case 'CREATE':
      c.createRevision = int(t[4], 'compare createRevision');
      break;
    case 'MOD':
      c.modRevision = int(t[4], 'compare modRevision');
      break;
    case 'VALUE':
      c.value = bytes(t[4], 'compare value');
      break;
    case 'LEASE':
      c.lease = int(t[4], 'compare lease');
      break;
  }
  return c;
}

function opTuple(op: RequestOp): unknown[] {
  if ('requestRange' in op) return [0, ...rangeBody(op.requestRange)];
  if ('requestPut' in op) return [1, ...putBody(op.requestPut)];
  if ('requestDeleteRange' in op) return [2, ...deleteBody(op.requestDeleteRange)];
  return [3, ...txnBody(op.requestTxn)];
}

function opFrom(v: unknown): RequestOp {
  const t = arr(v, 'txn op');
  switch (t[0]) {
    case 0:
      arr(t, 'range op', 12);
      return { requestRange: rangeFrom(t, 1) };
    case 1:
      arr(t, 'put op', 5);
      return { requestPut: putFrom(t, 1) };
    case 2:
      arr(t, 'delete op', 4);
      return { requestDeleteRange: deleteFrom(t, 1) };
    case 3:
      arr(t, 'txn op', 4);
      return { requestTxn: txnFrom(t, 1) };
    default:
      return malformed('txn op kind');
  }
}

function txnBody(t: TxnRequest): unknown[] {
  return [(t.compare ?? []).map(compareTuple), (t.success ?? []).map(opTuple), (t.failure ?? []).map(opTuple)];
}

function txnFrom(t: unknown[], at: number): TxnRequest {
  return {
    compare: arr(t[at], 'txn compares').map(compareFrom),
    success: arr(t[at + 1], 'txn success').map(opFrom),
    failure: arr(t[at + 2], 'txn failure').map(opFrom),
  };
}

/** The positional form of a write request (see the module doc). */
export function writeRequestToTuple(req: WriteRequest): unknown[] {
  if ('put' in req) return [0, ...putBody(req.put)];
  if ('deleteRange' in req) return [1, ...deleteBody(req.deleteRange)];
  if ('txn' in req) return [2, ...txnBody(req.txn)];
  if ('compaction' in req) return [3, req.compaction.revision, req.compaction.physical ? 1 : 0];
  if ('leaseGrant' in req) return [4, req.leaseGrant.ttl, req.leaseGrant.id ?? 0];
  return [5, req.leaseRevoke.id];
}

/** Encodes a write request for the Raft log. */
export function encodeWriteRequest(req: WriteRequest): Uint8Array {
  return pack(writeRequestToTuple(req));
}

/**
 * Decodes a write request from a Raft log entry. Byte fields of the result
 * may share memory with `data`.
 * @throws FaultError `QUORUMKV_MALFORMED_FRAME` when `data` is not a write request
 */
export function decodeWriteRequest(data: Uint8Array): WriteRequest {
  const t = arr(unpack(data), 'top level');
  switch (t[0]) {
    case 0:
      arr(t, 'put', 5);
      return { put: putFrom(t, 1) };
    case 1:
      arr(t, 'deleteRange', 4);
      return { deleteRange: deleteFrom(t, 1) };
    case 2:
      arr(t, 'txn', 4);
      return { txn: txnFrom(t, 1) };
    case 3: {
      arr(t, 'compaction', 3);
      const c: CompactionRequest = { revision: int(t[1], 'compaction revision') };
      if (int(t[2], 'compaction physical') === 1) c.physical = true;
      return { compaction: c };
    }
    case 4: {
      arr(t, 'leaseGrant', 3);
      const g: LeaseGrantRequest = { ttl: int(t[1], 'lease ttl') };
      const id = int(t[2], 'lease id');
      if (id !== 0) g.id = id;
      return { leaseGrant: g };
    }
    case 5:
      arr(t, 'leaseRevoke', 2);
      return { leaseRevoke: { id: int(t[1], 'lease id') } };
    default:
      return malformed('kind');
  }
}

/** The kinds of {@link WriteRequest}. */
export type WriteRequestKind = 'put' | 'deleteRange' | 'txn' | 'compaction' | 'leaseGrant' | 'leaseRevoke';

/** The kind of a request (its one field name), for logs and metrics. */
export function writeRequestKind(req: WriteRequest): WriteRequestKind {
  return Object.keys(req)[0] as WriteRequestKind;
}

/**
 * True when a txn only reads: every operation of both branches is a range
 * (etcd's `isTxnReadonly`; a nested txn counts as a write). A read-only txn
 * needs no log entry: the server may run it locally (after a ReadIndex).
 */
export function isTxnReadOnly(txn: TxnRequest): boolean {
  const only = (ops: RequestOp[] | undefined) => (ops ?? []).every((op) => 'requestRange' in op);
  return only(txn.success) && only(txn.failure);
}

/**
 * True when a txn may be served from one member's store with no ReadIndex
 * round: it has ranges, only ranges, and every one is `serializable`
 * (etcd's `isTxnSerializable`, except that etcd 3.4 also takes a txn of no
 * operation so; here a txn of compares alone is linearizable).
 */
export function isTxnSerializable(txn: TxnRequest): boolean {
  const ops = [...(txn.success ?? []), ...(txn.failure ?? [])];
  return ops.length > 0 && ops.every((op) => 'requestRange' in op && op.requestRange.serializable === true);
}
