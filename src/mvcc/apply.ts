/**
 * How each request runs against the key-value state (etcd's
 * `applierV3backend`, server/etcdserver/apply.go): range with its options,
 * put, delete-range, txn (compares, checks of the branch that runs, then
 * the operations at one revision), compaction and the lease requests.
 *
 * Everything here is deterministic: the same requests on the same state give
 * the same state and answers on every member.
 * @module
 */
import { CompactedError, ErrorCode, FaultError, UsageError } from '../errors.js';
import type {
  Compare,
  CompactionResponse,
  DeleteRangeRequest,
  DeleteRangeResponse,
  KeyValue,
  LeaseGrantRequest,
  LeaseGrantResponse,
  LeaseRevokeResponse,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  RequestOp,
  ResponseOp,
  TxnRequest,
  TxnResponse,
} from '../mvccpb/index.js';
import { compareBytes } from '../mvccpb/index.js';
import type { IndexedKey } from './tree-index.js';
import { toSkey } from './skey.js';
import { revisionId } from './revision.js';
import type { KvCore, ScheduledCompaction, WriteTxn } from './kv-core.js';

const EMPTY = new Uint8Array(0);

/** Values of historical reads of a txn, loaded before it runs (by `revisionId`). */
export type Prefetched = Map<string, KeyValue>;

/** A planned range: the keys it reads, before their values are known. */
export interface RangePlan {
  req: RangeRequest;
  /** The revision read. */
  rev: number;
  /** Keys found (limited when no sort or filter needs them all). */
  keys: IndexedKey[];
  /** Keys in the range at `rev` (ignores limit and filters). */
  total: number;
}

function hasFilters(r: RangeRequest): boolean {
  return (r.minModRevision ?? 0) !== 0 || (r.maxModRevision ?? 0) !== 0 || (r.minCreateRevision ?? 0) !== 0 || (r.maxCreateRevision ?? 0) !== 0;
}

/**
 * Plans a range at the read revision `curRev` (the current revision, or the
 * revision a txn sees).
 * @throws UsageError `QUORUMKV_FUTURE_REVISION`, CompactedError
 */
export function planRange(core: KvCore, req: RangeRequest, curRev: number): RangePlan {
  const rev = core.readRevision(req.revision, curRev);
  const sorted = (req.sortOrder ?? 'NONE') !== 'NONE' || hasFilters(req);
  const limit = req.limit ?? 0;
  // fetch everything when sorting or filtering, else one extra for `more`
  const fetch = req.countOnly ? 1 : sorted || limit <= 0 ? 0 : limit + 1;
  const { keys, total } = core.resolve(req.key, req.rangeEnd, rev, fetch);
  return { req, rev, keys: req.countOnly ? [] : keys, total };
}

/**
 * From this many keys on, a range reads the written current values it needs
 * in one backend call (`getMany`, off the event loop) instead of one
 * synchronous point read each.
 */
const MANY_READS = 16;

/** Loads the values of a plan (from memory or the backend). */
export async function loadRange(core: KvCore, plan: RangePlan): Promise<KeyValue[]> {
  const n = plan.keys.length;
  const out: KeyValue[] = new Array(n);
  let written: number[] | undefined;
  for (let i = 0; i < n; i++) {
    const item = plan.keys[i]!;
    const ki = item.ki;
    if (n >= MANY_READS && core.evicts && ki.val === undefined && ki.modMain === item.at.modified.main) {
      (written ??= []).push(i);
      continue;
    }
    out[i] = core.cached(item) ?? (await core.load(item, plan.rev));
  }
  if (written !== undefined) {
    const kvs = await core.loadWritten(written.map((i) => plan.keys[i]!.at.modified));
    for (let j = 0; j < written.length; j++) {
      const i = written[j]!;
      // gone meanwhile (the key changed and a compaction removed this version): as any past read
      out[i] = kvs[j] ?? (await core.load(plan.keys[i]!, plan.rev));
    }
  }
  return out;
}

/** The values of a plan from memory, the database's synchronous point read or `prefetched` (inside a txn, which cannot wait). */
export function loadRangeSync(core: KvCore, plan: RangePlan, prefetched: Prefetched): KeyValue[] {
  return plan.keys.map((item) => {
    const kv = core.cached(item) ?? prefetched.get(revisionId(item.at.modified));
    if (kv === undefined) throw new FaultError(ErrorCode.INTERNAL, `mvcc: revision ${revisionId(item.at.modified)} not loaded for a txn read`);
    return kv;
  });
}

type KvCompare = (a: KeyValue, b: KeyValue) => number;

const SORTERS: Record<string, KvCompare> = {
  KEY: (a, b) => compareBytes(a.key, b.key),
  VERSION: (a, b) => a.version - b.version,
  CREATE: (a, b) => a.createRevision - b.createRevision,
  MOD: (a, b) => a.modRevision - b.modRevision,
  VALUE: (a, b) => compareBytes(a.value, b.value),
};

/**
 * Applies the filters, sort, limit and `keysOnly` of a range to its values
 * (in key order) and builds the response.
 * @param headerRev - the revision of the response header
 */
export function finishRange(plan: RangePlan, values: KeyValue[], headerRev: number): RangeResponse {
  const r = plan.req;
  let kvs = values;
  const minMod = r.minModRevision ?? 0;
  const maxMod = r.maxModRevision ?? 0;
  const minCreate = r.minCreateRevision ?? 0;
  const maxCreate = r.maxCreateRevision ?? 0;
  if (maxMod !== 0) kvs = kvs.filter((kv) => kv.modRevision <= maxMod);
  if (minMod !== 0) kvs = kvs.filter((kv) => kv.modRevision >= minMod);
  if (maxCreate !== 0) kvs = kvs.filter((kv) => kv.createRevision <= maxCreate);
  if (minCreate !== 0) kvs = kvs.filter((kv) => kv.createRevision >= minCreate);
  const target = r.sortTarget ?? 'KEY';
  let order = r.sortOrder ?? 'NONE';
  // results come in ascending key order; another target with NONE sorts ascending
  if (target !== 'KEY' && order === 'NONE') order = 'ASCEND';
  if (order !== 'NONE') {
    const cmp = SORTERS[target]!;
    // a stable sort: ties keep ascending key order, for descending sorts too
    kvs = kvs === values ? kvs.slice() : kvs;
    kvs.sort(order === 'ASCEND' ? cmp : (a, b) => cmp(b, a));
  }
  let more = false;
  const limit = r.limit ?? 0;
  if (limit > 0 && kvs.length > limit) {
    kvs = kvs.slice(0, limit);
    more = true;
  }
  if (r.keysOnly) kvs = kvs.map((kv) => ({ ...kv, value: EMPTY }));
  else if (kvs === values) kvs = kvs.slice();
  return { header: { revision: headerRev }, kvs, more, count: plan.total };
}

// ---------------------------------------------------------------- txn

/** The branch a txn takes, with the branches of its nested txns (etcd's `compareToPath`). */
export interface TxnPlan {
  succeeded: boolean;
  ops: RequestOp[];
  /** For each op that is a txn, its plan. */
  nested: (TxnPlan | undefined)[];
}

function compareInt(a: number, b: number): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareKv(c: Compare, kv: KeyValue): boolean {
  let result: number;
  switch (c.target) {
    case 'VALUE':
      result = compareBytes(kv.value, c.value ?? EMPTY);
      result = result < 0 ? -1 : result > 0 ? 1 : 0;
      break;
    case 'CREATE':
      result = compareInt(kv.createRevision, c.createRevision ?? 0);
      break;
    case 'MOD':
      result = compareInt(kv.modRevision, c.modRevision ?? 0);
      break;
    case 'VERSION':
      result = compareInt(kv.version, c.version ?? 0);
      break;
    case 'LEASE':
      result = compareInt(kv.lease, c.lease ?? 0);
      break;
    default:
      result = 0;
  }
  switch (c.result) {
    case 'EQUAL':
      return result === 0;
    case 'NOT_EQUAL':
      return result !== 0;
    case 'GREATER':
      return result > 0;
    case 'LESS':
      return result < 0;
    default:
      return true;
  }
}

const ZERO_KV: KeyValue = Object.freeze({ key: EMPTY, createRevision: 0, modRevision: 0, version: 0, value: EMPTY, lease: 0 });

/**
 * One compare against the current state (etcd's `applyCompare`): over a
 * range every key must match; a missing key (or an empty range) compares as
 * zero, except that a `VALUE` compare on it is always false.
 */
export function applyCompare(core: KvCore, c: Compare): boolean {
  const { keys } = core.resolve(c.key, c.rangeEnd, core.currentRev, 0);
  if (keys.length === 0) return c.target === 'VALUE' ? false : compareKv(c, ZERO_KV);
  for (const item of keys) {
    // only a value compare reads the value (from the backend once written)
    const kv = c.target === 'VALUE' ? core.current(item.ki) : item.ki.currentMeta();
    if (kv === undefined) throw new FaultError(ErrorCode.INTERNAL, 'mvcc: current value missing for a live key');
    if (!compareKv(c, kv)) return false;
  }
  return true;
}

/** Evaluates every compare of a txn and of the txns nested in the branches taken, before anything runs. */
export function planTxn(core: KvCore, txn: TxnRequest): TxnPlan {
  const succeeded = (txn.compare ?? []).every((c) => applyCompare(core, c));
  const ops = (succeeded ? txn.success : txn.failure) ?? [];
  const nested = ops.map((op) => ('requestTxn' in op ? planTxn(core, op.requestTxn) : undefined));
  return { succeeded, ops, nested };
}

function forEachOp(plan: TxnPlan, f: (op: RequestOp) => void): void {
  plan.ops.forEach((op, i) => {
    const n = plan.nested[i];
    if (n !== undefined) forEachOp(n, f);
    else f(op);
  });
}

/**
 * Checks the puts of the branches that run (etcd's `checkRequestPut`): an
 * `ignoreValue`/`ignoreLease` put needs the key to exist, a lease must exist.
 *
 * One more case etcd 3.4 does not catch: a delete whose range end is `"\0"`
 * escapes the duplicate-key check, so it can delete a key before an
 * `ignoreValue`/`ignoreLease` put of it in the same txn; etcd then panics
 * mid-txn. Here the txn fails as a whole with `QUORUMKV_KEY_NOT_FOUND`
 * before anything changes.
 * @throws UsageError `QUORUMKV_KEY_NOT_FOUND`, `QUORUMKV_LEASE_NOT_FOUND`
 */
export function checkTxnPuts(core: KvCore, plan: TxnPlan): void {
  const deletedFrom: string[] = []; // starts of "\0" deletes met so far, in execution order
  forEachOp(plan, (op) => {
    if ('requestDeleteRange' in op) {
      const d = op.requestDeleteRange;
      if (d.rangeEnd !== undefined && d.rangeEnd.length === 1 && d.rangeEnd[0] === 0) deletedFrom.push(toSkey(d.key));
      return;
    }
    if (!('requestPut' in op)) return;
    const p = op.requestPut;
    if (p.ignoreValue || p.ignoreLease) {
      const skey = toSkey(p.key);
      if (!core.exists(p.key) || deletedFrom.some((start) => start <= skey)) {
        throw new UsageError(ErrorCode.KEY_NOT_FOUND, 'etcdserver: key not found');
      }
    }
    const lease = p.lease ?? 0;
    if (lease !== 0 && core.lessor.lookup(lease) === undefined) {
      throw new UsageError(ErrorCode.LEASE_NOT_FOUND, 'etcdserver: requested lease not found');
    }
  });
}

/**
 * Checks the revisions of the ranges of the branches that run (etcd's
 * `checkRequestRange`).
 * @throws UsageError `QUORUMKV_FUTURE_REVISION`, CompactedError
 */
export function checkTxnRanges(core: KvCore, plan: TxnPlan): void {
  forEachOp(plan, (op) => {
    if (!('requestRange' in op)) return;
    const rev = op.requestRange.revision ?? 0;
    if (rev === 0) return;
    if (rev > core.currentRev) throw new UsageError(ErrorCode.FUTURE_REVISION, 'mvcc: required revision is a future revision');
    if (rev < core.compactRev) throw new CompactedError(core.compactRev);
  });
}

/**
 * Loads the values the historical ranges of a txn will read, before the txn
 * runs (they are at revisions the txn does not change).
 */
export async function prefetchTxn(core: KvCore, plan: TxnPlan): Promise<Prefetched> {
  const out: Prefetched = new Map();
  const wanted: RangePlan[] = [];
  forEachOp(plan, (op) => {
    if ('requestRange' in op && (op.requestRange.revision ?? 0) > 0) {
      wanted.push(planRange(core, op.requestRange, core.currentRev));
    }
  });
  for (const rp of wanted) {
    for (const item of rp.keys) {
      // cached values too: the txn may overwrite the cache before the read runs
      const id = revisionId(item.at.modified);
      if (!out.has(id)) out.set(id, core.cached(item) ?? (await core.load(item, rp.rev)));
    }
  }
  return out;
}

function rangeIn(core: KvCore, wtxn: WriteTxn | undefined, req: RangeRequest, prefetched: Prefetched): RangeResponse {
  const curRev = wtxn !== undefined ? wtxn.readRev() : core.currentRev;
  const plan = planRange(core, req, curRev);
  return finishRange(plan, loadRangeSync(core, plan, prefetched), curRev);
}

/** A put inside a write txn (etcd's `Put` with a txn). The lease and key checks are done. */
export function putIn(core: KvCore, wtxn: WriteTxn, p: PutRequest): PutResponse {
  let value = p.value ?? EMPTY;
  let lease = p.lease ?? 0;
  const resp: PutResponse = { header: { revision: 0 } };
  let read: { kv: KeyValue | undefined } | undefined;
  if (p.ignoreValue || p.ignoreLease || p.prevKv) {
    const prev = core.currentOf(p.key);
    // the event's prevKv is this too, unless the txn touched the key before
    // (a delete of a range holding it): WriteTxn then keeps what it saw first
    read = { kv: prev };
    if ((p.ignoreValue || p.ignoreLease) && prev === undefined) {
      // the checks before any write rule this out
      throw new FaultError(ErrorCode.INTERNAL, 'mvcc: ignoreValue/ignoreLease put of a missing key inside a txn');
    }
    if (prev !== undefined) {
      if (p.ignoreValue) value = prev.value;
      if (p.ignoreLease) lease = prev.lease;
      if (p.prevKv) resp.prevKv = prev;
    }
  }
  wtxn.put(p.key, value, lease, read);
  resp.header.revision = wtxn.beginRev + 1;
  return resp;
}

/** A delete-range inside a write txn (etcd's `DeleteRange` with a txn). */
export function deleteIn(core: KvCore, wtxn: WriteTxn, d: DeleteRangeRequest): DeleteRangeResponse {
  const prevKvs: KeyValue[] = [];
  if (d.prevKv) {
    const plan = planRange(core, { key: d.key, rangeEnd: d.rangeEnd }, wtxn.readRev());
    prevKvs.push(...loadRangeSync(core, plan, new Map()));
  }
  const n = wtxn.deleteRange(d.key, d.rangeEnd);
  const revision = n !== 0 || wtxn.changes > 0 ? wtxn.beginRev + 1 : wtxn.beginRev;
  return { header: { revision }, deleted: n, prevKvs };
}

/**
 * Runs the operations of a planned txn (etcd's `applyTxn`). Nested txn
 * responses carry header revision 0, as etcd's.
 */
export function runTxn(core: KvCore, wtxn: WriteTxn | undefined, plan: TxnPlan, prefetched: Prefetched): TxnResponse {
  const responses: ResponseOp[] = plan.ops.map((op, i): ResponseOp => {
    if ('requestRange' in op) return { responseRange: rangeIn(core, wtxn, op.requestRange, prefetched) };
    if ('requestTxn' in op) return { responseTxn: runTxn(core, wtxn, plan.nested[i]!, prefetched) };
    if (wtxn === undefined) throw new FaultError(ErrorCode.INTERNAL, 'mvcc: write in a read-only txn');
    if ('requestPut' in op) return { responsePut: putIn(core, wtxn, op.requestPut) };
    return { responseDeleteRange: deleteIn(core, wtxn, op.requestDeleteRange) };
  });
  return { header: { revision: 0 }, succeeded: plan.succeeded, responses };
}

// ------------------------------------------------------- top-level requests

/** A put outside a txn (etcd's `Put`): lease check, then the write. */
export function applyPut(core: KvCore, p: PutRequest): PutResponse {
  const lease = p.lease ?? 0;
  if (lease !== 0 && core.lessor.lookup(lease) === undefined) {
    throw new UsageError(ErrorCode.LEASE_NOT_FOUND, 'etcdserver: requested lease not found');
  }
  if ((p.ignoreValue || p.ignoreLease) && !core.exists(p.key)) {
    throw new UsageError(ErrorCode.KEY_NOT_FOUND, 'etcdserver: key not found');
  }
  const wtxn = core.writeTxn();
  try {
    return putIn(core, wtxn, p);
  } finally {
    wtxn.end();
  }
}

/** A delete-range outside a txn. */
export function applyDeleteRange(core: KvCore, d: DeleteRangeRequest): DeleteRangeResponse {
  const wtxn = core.writeTxn();
  try {
    return deleteIn(core, wtxn, d);
  } finally {
    wtxn.end();
  }
}

/**
 * Plans and checks a txn, then loads what its historical reads need. Nothing
 * is changed; errors here fail the whole txn.
 */
export async function prepareTxn(core: KvCore, txn: TxnRequest): Promise<{ plan: TxnPlan; prefetched: Prefetched; readOnly: boolean }> {
  const plan = planTxn(core, txn);
  // etcd's isTxnReadonly: only ranges at the top of both branches
  const readOnly = (txn.success ?? []).concat(txn.failure ?? []).every((op) => 'requestRange' in op);
  if (!readOnly) checkTxnPuts(core, plan);
  checkTxnRanges(core, plan);
  const prefetched = await prefetchTxn(core, plan);
  return { plan, prefetched, readOnly };
}

/** Runs a prepared txn at one revision (none when it writes nothing). */
export function applyTxn(core: KvCore, prepared: { plan: TxnPlan; prefetched: Prefetched; readOnly: boolean }): TxnResponse {
  if (prepared.readOnly) {
    const resp = runTxn(core, undefined, prepared.plan, prepared.prefetched);
    resp.header.revision = core.currentRev;
    return resp;
  }
  const wtxn = core.writeTxn();
  let resp: TxnResponse;
  try {
    resp = runTxn(core, wtxn, prepared.plan, prepared.prefetched);
  } catch (err) {
    // every refusal happens before the first write: anything here is a bug
    throw err instanceof FaultError ? err : new FaultError(ErrorCode.INTERNAL, `mvcc: txn failed after it started writing: ${(err as Error).message}`, { cause: err });
  } finally {
    wtxn.end();
  }
  resp.header.revision = wtxn.readRev();
  return resp;
}

/** A compaction: logical now; the physical part is scheduled. */
export function applyCompaction(core: KvCore, rev: number): { response: CompactionResponse; scheduled: ScheduledCompaction } {
  const scheduled = core.compact(rev);
  return { response: { header: { revision: core.currentRev } }, scheduled };
}

/** A lease grant. */
export function applyLeaseGrant(core: KvCore, g: LeaseGrantRequest): LeaseGrantResponse {
  const l = core.lessor.grant(g.id ?? 0, g.ttl);
  return { header: { revision: core.currentRev }, id: l.id, ttl: l.ttl };
}

/** A lease revoke: deletes its keys in one revision. */
export function applyLeaseRevoke(core: KvCore, id: number): LeaseRevokeResponse {
  core.lessor.revoke(id);
  return { header: { revision: core.currentRev } };
}
