/**
 * Translation between the `KV` interface (bytes, etcd request shapes) and
 * the KV model of the linearizability checker (strings, `KvInput` /
 * `KvOutput`). A request the model cannot express (a multi-key delete, a
 * read with options, a nested txn, a lease compare, ...) translates to
 * `undefined`; the client then records the key ranges it touches instead.
 * @module
 */
import type { Compare, DeleteRangeResponse, KeyValue, PutResponse, RangeRequest, RangeResponse, RequestOp, ResponseOp, TxnResponse } from '../../mvccpb/index.js';
import { compareBytes, isRangeEndAll } from '../../mvccpb/index.js';
import { isTxnReadOnly, isTxnSerializable } from '../../mvcc/index.js';
import { deleteRequest, putRequest, rangeRequest, txnRequest, type BytesLike, type DeleteOptions, type PutOptions, type RangeInput, type TxnInput } from '../../server/index.js';
import { prefixRangeEnd, type KeyRange as ModelKeyRange } from '../key-range.js';
import type { KvCompare, KvGetOutput, KvInput, KvMeta, KvOutput, KvRangeOutput, KvTxnOp, KvTxnOpResult, KvTxnOutput } from '../models/kv-types.js';

// ignoreBOM: a leading U+FEFF is part of a key or value, not a marker to drop
const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Bytes as a string when they are valid UTF-8; `undefined` otherwise. */
export function utf8(bytes: Uint8Array | undefined): string | undefined {
  if (bytes === undefined) return '';
  try {
    return strict.decode(bytes);
  } catch {
    return undefined;
  }
}

/** Bytes as a string for display (invalid UTF-8 replaced). */
export function show(bytes: Uint8Array | undefined): string {
  return bytes === undefined ? '' : new TextDecoder().decode(bytes);
}

/** The length of the UTF-8 character whose first byte is `lead` (0: no character starts so). */
function charLength(lead: number): number {
  return lead < 0x80 ? 1 : lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0;
}

const utf8Encoder = new TextEncoder();
/** Code points that UTF-8 encodes: every one but the surrogates. */
const CODE_POINTS = 0x110000 - 0x800;
const codePointAt = (i: number): number => (i < 0xd800 ? i : i + 0x800);

/**
 * The smallest string whose UTF-8 encoding is at least `bytes`, a byte
 * string that is not valid UTF-8; `undefined` when every string encodes
 * below it. As a range end it selects exactly the keys (UTF-8 strings) the
 * bytes select, since UTF-8 keeps the order of code points.
 */
function stringAtLeast(bytes: Uint8Array): string | undefined {
  // the longest prefix of whole characters, then what follows it
  let v = 0;
  for (;;) {
    const n = charLength(bytes[v]!);
    if (n === 0 || v + n > bytes.length || utf8(bytes.subarray(v, v + n)) === undefined) break;
    v += n;
  }
  const prefix = utf8(bytes.subarray(0, v))!;
  const rest = bytes.subarray(v);
  // the smallest character that encodes above `rest` (none encodes as a prefix of it)
  let lo = 0;
  let hi = CODE_POINTS;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareBytes(utf8Encoder.encode(String.fromCodePoint(codePointAt(mid))), rest) > 0) hi = mid;
    else lo = mid + 1;
  }
  if (lo < CODE_POINTS) return prefix + String.fromCodePoint(codePointAt(lo));
  // no character does: every string that starts with the prefix encodes below
  if (prefix === '') return undefined;
  const end = prefixRangeEnd(prefix);
  return end === '\0' ? undefined : end;
}

/**
 * The model range of a request's key fields; `undefined` when its key is
 * not UTF-8. A range end that is not UTF-8 (a prefix's: etcd increments the
 * last byte, so a prefix ending in "п", D0 BF, ends at D0 C0) becomes the
 * smallest string that encodes at or above it, which selects the same keys.
 */
export function modelRange(key: Uint8Array, rangeEnd: Uint8Array | undefined): ModelKeyRange | undefined {
  const k = utf8(key);
  if (k === undefined) return undefined;
  if (rangeEnd === undefined || rangeEnd.length === 0) return { key: k };
  if (isRangeEndAll(rangeEnd)) return { key: k, rangeEnd: '\0' };
  const e = utf8(rangeEnd) ?? stringAtLeast(rangeEnd);
  return { key: k, rangeEnd: e ?? '\0' };
}

/** A whole-keyspace range, for requests whose keys cannot be expressed. */
export const ALL_KEYS: ModelKeyRange = { key: '\0', rangeEnd: '\0' };

/** True for a range request with no option that changes what it returns (limit, revision, sort, keys-only, filters). */
function plainRead(r: RangeRequest): boolean {
  return (
    (r.limit ?? 0) === 0 &&
    (r.revision ?? 0) <= 0 &&
    (r.sortOrder ?? 'NONE') === 'NONE' &&
    r.keysOnly !== true &&
    r.countOnly !== true &&
    (r.minModRevision ?? 0) === 0 &&
    (r.maxModRevision ?? 0) === 0 &&
    (r.minCreateRevision ?? 0) === 0 &&
    (r.maxCreateRevision ?? 0) === 0
  );
}

/** The model input of a linearizable read, or `undefined`. */
export function readInput(r: RangeRequest): KvInput | undefined {
  if (!plainRead(r)) return undefined;
  const range = modelRange(r.key, r.rangeEnd);
  if (range === undefined) return undefined;
  return range.rangeEnd === undefined ? { type: 'get', key: range.key } : { type: 'range', key: range.key, rangeEnd: range.rangeEnd };
}

function meta(kv: KeyValue): Required<KvMeta> {
  return { modRevision: kv.modRevision, createRevision: kv.createRevision, version: kv.version };
}

/** The model output of a read translated by {@link readInput}. */
export function readOutput(input: KvInput, res: RangeResponse): KvGetOutput | KvRangeOutput {
  if (input.type === 'get') {
    const kv = res.kvs[0];
    if (kv === undefined) return { value: null, revision: res.header.revision };
    return { value: utf8(kv.value) ?? '\ufffd', ...meta(kv), revision: res.header.revision };
  }
  return {
    kvs: res.kvs.map((kv) => ({ key: utf8(kv.key) ?? '\ufffd', value: utf8(kv.value) ?? '\ufffd', ...meta(kv) })),
    revision: res.header.revision,
  };
}

const RESULT: Record<Compare['result'], KvCompare['result']> = { EQUAL: '=', NOT_EQUAL: '!=', GREATER: '>', LESS: '<' };

function compareOf(c: Compare): KvCompare | undefined {
  if (c.rangeEnd !== undefined && c.rangeEnd.length > 0) return undefined;
  const key = utf8(c.key);
  if (key === undefined) return undefined;
  const result = RESULT[c.result];
  switch (c.target) {
    case 'VERSION':
      return { key, target: 'version', result, value: c.version ?? 0 };
    case 'CREATE':
      return { key, target: 'createRevision', result, value: c.createRevision ?? 0 };
    case 'MOD':
      return { key, target: 'modRevision', result, value: c.modRevision ?? 0 };
    case 'VALUE': {
      const value = utf8(c.value);
      return value === undefined ? undefined : { key, target: 'value', result, value };
    }
    default:
      return undefined;
  }
}

/** Which results a txn branch op asked for, to report them back. */
interface OpShape {
  op: KvTxnOp;
  prevKv: boolean;
}

function opOf(op: RequestOp): OpShape | undefined {
  if ('requestRange' in op) {
    const r = op.requestRange;
    if (!plainRead(r) || (r.rangeEnd !== undefined && r.rangeEnd.length > 0)) return undefined;
    const key = utf8(r.key);
    return key === undefined ? undefined : { op: { type: 'get', key }, prevKv: false };
  }
  if ('requestPut' in op) {
    const p = op.requestPut;
    if (p.ignoreValue === true || p.ignoreLease === true) return undefined;
    const key = utf8(p.key);
    const value = utf8(p.value);
    if (key === undefined || value === undefined) return undefined;
    return { op: { type: 'put', key, value }, prevKv: p.prevKv === true };
  }
  if ('requestDeleteRange' in op) {
    const d = op.requestDeleteRange;
    if (d.rangeEnd !== undefined && d.rangeEnd.length > 0) return undefined;
    const key = utf8(d.key);
    return key === undefined ? undefined : { op: { type: 'delete', key }, prevKv: d.prevKv === true };
  }
  return undefined;
}

/** A translated write: the model input plus what is needed to read its response. */
export interface ModelTxn {
  input: KvInput & { type: 'txn' };
  success: OpShape[];
  failure: OpShape[];
}

/** The model input of a txn, or `undefined` when it uses what the model lacks. */
export function txnInput(compare: Compare[], success: RequestOp[], failure: RequestOp[]): ModelTxn | undefined {
  const cs: KvCompare[] = [];
  for (const c of compare) {
    const m = compareOf(c);
    if (m === undefined) return undefined;
    cs.push(m);
  }
  const branch = (ops: RequestOp[]): OpShape[] | undefined => {
    const out: OpShape[] = [];
    for (const op of ops) {
      const m = opOf(op);
      if (m === undefined) return undefined;
      out.push(m);
    }
    return out;
  };
  const s = branch(success);
  const f = branch(failure);
  if (s === undefined || f === undefined) return undefined;
  return { input: { type: 'txn', compare: cs, success: s.map((o) => o.op), failure: f.map((o) => o.op) }, success: s, failure: f };
}

function opResult(shape: OpShape, r: ResponseOp | undefined): KvTxnOpResult {
  if (r === undefined) return {};
  if ('responseRange' in r) {
    const kv = r.responseRange.kvs[0];
    return kv === undefined ? { value: null } : { value: utf8(kv.value) ?? '\ufffd', ...meta(kv) };
  }
  if ('responsePut' in r) {
    if (!shape.prevKv) return {};
    const prev = r.responsePut.prevKv;
    return { prevValue: prev === undefined ? null : (utf8(prev.value) ?? '\ufffd') };
  }
  if ('responseDeleteRange' in r) {
    const d = r.responseDeleteRange;
    if (!shape.prevKv) return { deleted: d.deleted };
    const prev = d.prevKvs[0];
    return { deleted: d.deleted, prevValue: prev === undefined ? null : (utf8(prev.value) ?? '\ufffd') };
  }
  return {};
}

/** The model output of a txn translated by {@link txnInput}. */
export function txnOutput(t: ModelTxn, res: TxnResponse): KvTxnOutput {
  const shapes = res.succeeded ? t.success : t.failure;
  return { succeeded: res.succeeded, results: shapes.map((s, i) => opResult(s, res.responses[i])), revision: res.header.revision };
}

/** Every key range a request op touches (for requests the model cannot express). */
export function opRanges(op: RequestOp): ModelKeyRange[] {
  const of = (key: Uint8Array, end: Uint8Array | undefined): ModelKeyRange[] => [modelRange(key, end) ?? ALL_KEYS];
  if ('requestRange' in op) return of(op.requestRange.key, op.requestRange.rangeEnd);
  if ('requestPut' in op) return of(op.requestPut.key, undefined);
  if ('requestDeleteRange' in op) return of(op.requestDeleteRange.key, op.requestDeleteRange.rangeEnd);
  const t = op.requestTxn;
  return [
    ...(t.compare ?? []).flatMap((c) => of(c.key, c.rangeEnd)),
    ...(t.success ?? []).flatMap(opRanges),
    ...(t.failure ?? []).flatMap(opRanges),
  ];
}

/**
 * How one `KV` call goes into a recorded history: its model input
 * (`undefined` when the model cannot express it), the ranges a write
 * touches (left out of the check when the input is `undefined`), a label
 * for traces, and how to read its response.
 */
export interface ModelCall<T> {
  kind: 'read' | 'write';
  input: KvInput | undefined;
  ranges: ModelKeyRange[];
  label: string;
  output(res: T): KvOutput;
}

/**
 * Whether puts that attach a lease are modeled (a simulation, which sees
 * every lease's deletions in its committed history) or left out (a real
 * cluster, whose expiries no client sees).
 */
export type LeasedPuts = 'modeled' | 'excluded';

function leaseOf(op: RequestOp): boolean {
  if ('requestPut' in op) return (op.requestPut.lease ?? 0) !== 0;
  if ('requestTxn' in op) return [...(op.requestTxn.success ?? []), ...(op.requestTxn.failure ?? [])].some(leaseOf);
  return false;
}

/** A put (`KV.put`). @throws UsageError as `putRequest` */
export function putCall(key: BytesLike, value: BytesLike, options: PutOptions, leased: LeasedPuts): ModelCall<PutResponse> {
  const req = putRequest(key, value, options);
  const k = utf8(req.key);
  const v = utf8(req.value);
  const leaseOut = leased === 'excluded' && (req.lease ?? 0) !== 0;
  const modeled = options.ignoreValue !== true && options.ignoreLease !== true && !leaseOut && k !== undefined && v !== undefined;
  return {
    kind: 'write',
    input: modeled ? { type: 'put', key: k, value: v } : undefined,
    ranges: [modelRange(req.key, undefined) ?? ALL_KEYS],
    label: `put(${JSON.stringify(show(req.key))}${req.lease !== undefined ? `, lease ${req.lease}` : ''})`,
    output: (res) => ({
      revision: res.header.revision,
      ...(options.prevKv === true ? { prevValue: res.prevKv === undefined ? null : (utf8(res.prevKv.value) ?? '\ufffd') } : {}),
    }),
  };
}

/** A read (`KV.range`, `KV.get`): recorded when linearizable and plain. @throws UsageError as `rangeRequest` */
export function rangeCall(input: RangeInput): ModelCall<RangeResponse> {
  const req = rangeRequest(input);
  const modeled = req.serializable === true ? undefined : readInput(req);
  return {
    kind: 'read',
    input: modeled,
    ranges: [],
    label: `range(${JSON.stringify(show(req.key))}${req.rangeEnd !== undefined ? `..${JSON.stringify(show(req.rangeEnd))}` : ''}${req.serializable === true ? ', serializable' : ''})`,
    output: (res) => readOutput(modeled!, res),
  };
}

/** A delete (`KV.delete`): recorded for a single key. @throws UsageError as `deleteRequest` */
export function deleteCall(key: BytesLike, options: DeleteOptions): ModelCall<DeleteRangeResponse> {
  const req = deleteRequest({ key, ...options });
  const k = req.rangeEnd === undefined || req.rangeEnd.length === 0 ? utf8(req.key) : undefined;
  return {
    kind: 'write',
    input: k !== undefined ? { type: 'delete', key: k } : undefined,
    ranges: [modelRange(req.key, req.rangeEnd) ?? ALL_KEYS],
    label: `delete(${JSON.stringify(show(req.key))}${req.rangeEnd !== undefined ? `..${JSON.stringify(show(req.rangeEnd))}` : ''})`,
    output: (res) => ({
      revision: res.header.revision,
      deleted: res.deleted,
      ...(options.prevKv === true ? { prevValue: res.prevKvs[0] === undefined ? null : (utf8(res.prevKvs[0].value) ?? '\ufffd') } : {}),
    }),
  };
}

/**
 * A txn (`KV.txn`). A read-only txn (ranges alone in both branches: etcd's
 * `isTxnReadonly`) is a read, as the server serves it: it excludes no key,
 * and when it has ranges and every one is `serializable` (etcd's
 * `isTxnSerializable`; a txn of compares alone is linearizable, as
 * `KvNode.txn` serves it) the member answers from its own store, which may
 * be stale, so it is not checked.
 * @throws UsageError as `txnRequest`
 */
export function txnCall(input: TxnInput, leased: LeasedPuts): ModelCall<TxnResponse> {
  const req = txnRequest(input);
  const readOnly = isTxnReadOnly(req);
  const serializable = isTxnSerializable(req);
  const leaseOut = leased === 'excluded' && leaseOf({ requestTxn: req });
  const t = leaseOut || serializable ? undefined : txnInput(req.compare ?? [], req.success ?? [], req.failure ?? []);
  const ranges = readOnly ? [] : opRanges({ requestTxn: req });
  return {
    kind: readOnly ? 'read' : 'write',
    input: t?.input,
    ranges,
    label: t !== undefined ? 'txn' : serializable ? 'txn(serializable)' : `txn(unmodeled, ${ranges.length} ranges)`,
    output: (res) => txnOutput(t!, res),
  };
}
