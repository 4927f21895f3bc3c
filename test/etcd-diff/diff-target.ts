// What the differential test drives: one sequence of operations at a time
// against a key-value service (real etcd, the MVCC store, a KvNode),
// with answers normalized so that two services can be compared exactly.
//
// Conventions of a sequence:
// - keys are relative (each target may put them in a namespace of its own);
// - revisions are relative: 1 is the revision a sequence starts at, so that
//   a target whose history began earlier maps `abs = rel + base`;
// - lease ids are handles: the n-th successful grant of the sequence is
//   handle n (explicit grant ids are asked for by a small number `k`, which
//   each target maps into an id space of its own); a handle that was never
//   granted maps to an id nobody has.
import { createHash } from 'node:crypto';
import type { GenState } from './generator.js';
import type {
  CompactionRequest,
  DeleteRangeRequest,
  KeyValue,
  PutRequest,
  RangeRequest,
  TxnRequest,
  WatchCreateRequest,
} from '../../src/mvccpb/index.js';

/** A key-value in a comparable form. */
export interface NKv {
  key: string;
  create: number;
  mod: number;
  ver: number;
  value: string;
  /** `L<handle>`, `0`, or `?<id>` for an id no handle maps to. */
  lease: string;
}

/** A normalized answer, or the code of the error (`QUORUMKV_*`). */
export type Outcome = { ok: Record<string, unknown> } | { err: string };

/** A normalized watch event. */
export interface NEvent {
  type: 'PUT' | 'DELETE';
  kv: NKv;
  prev?: NKv;
}

/** Everything a watch delivered. */
export interface NWatchLog {
  events: NEvent[];
  /** Set when the service cancelled the watch. */
  canceled?: { compactRevision: number };
}

/** A lease grant as the generator asks for it. */
export interface GrantOp {
  /** Handle the lease gets when the grant succeeds. */
  handle: number;
  ttl: number;
  /** Ask for an explicit id (the k-th explicit id of the sequence); 0 = automatic. */
  explicit: number;
}

/**
 * A service under test. Requests use relative keys and revisions and lease
 * handles in their lease fields (see the file header).
 */
export interface DiffTarget {
  readonly name: string;
  /**
   * Starts sequence number `seq` (a fresh history from this target's view);
   * `seed` is the sequence's seed, for targets that make seeded choices.
   */
  begin(seq: number, seed: number): Promise<void>;
  put(req: PutRequest): Promise<Outcome>;
  range(req: RangeRequest): Promise<Outcome>;
  deleteRange(req: DeleteRangeRequest): Promise<Outcome>;
  txn(req: TxnRequest): Promise<Outcome>;
  compact(req: CompactionRequest): Promise<Outcome>;
  leaseGrant(op: GrantOp): Promise<Outcome>;
  leaseRevoke(handle: number): Promise<Outcome>;
  /** One keep-alive: `{ rev, ttl }`, or the lease-not-found error (clientv3's KeepAliveOnce). */
  leaseKeepAlive(handle: number): Promise<Outcome>;
  leaseTimeToLive(handle: number, keys: boolean): Promise<Outcome>;
  leaseLeases(): Promise<Outcome>;
  /**
   * Creates a watch; resolves once the service has registered it. Returns
   * its index in this sequence, or the error code when the service refused it.
   */
  watch(req: WatchCreateRequest): Promise<number | { err: string }>;
  /**
   * What watch `i` has delivered so far. `expect` (another target's log)
   * says how much to wait for: targets that deliver asynchronously wait
   * (bounded) until they have at least as much.
   */
  watchLog(i: number, expect?: NWatchLog): Promise<NWatchLog>;
  /** Ends the sequence: cancels its watches, revokes its leases. */
  end(): Promise<void>;
  close(): Promise<void>;
}

/** A target that knows its own state: the generator's reference. */
export interface ReferenceTarget extends DiffTarget {
  /** Current revision and compaction revision (-1 before any), relative. */
  genState(): GenState;
}

// ------------------------------------------------------------- helpers

const dec = new TextDecoder('latin1');

/** A byte string as text (latin1, so any byte survives). */
export function str(u: Uint8Array): string {
  return dec.decode(u);
}

/** A value as text; a long one as its length and digest (still compared exactly, reported short). */
export function valueStr(u: Uint8Array): string {
  if (u.length <= 256) return str(u);
  return `<${u.length} bytes, sha1 ${createHash('sha1').update(u).digest('hex').slice(0, 16)}>`;
}

/** Lease handles ↔ ids of one target in one sequence. */
export class LeaseMap {
  private readonly byHandle = new Map<number, number>();
  private readonly byId = new Map<number, number>();
  constructor(private readonly unknownBase: number) {}

  set(handle: number, id: number): void {
    this.byHandle.set(handle, id);
    this.byId.set(id, handle);
  }

  /** The id of a handle; 0 stays 0; a handle never granted gets an id nobody has. */
  id(handle: number | undefined): number {
    if (handle === undefined || handle === 0) return 0;
    return this.byHandle.get(handle) ?? this.unknownBase + handle;
  }

  /** The comparable name of an id. */
  name(id: number): string {
    if (id === 0) return '0';
    const h = this.byId.get(id);
    return h === undefined ? `?${id}` : `L${h}`;
  }

  handles(): number[] {
    return [...this.byHandle.keys()];
  }

  clear(): void {
    this.byHandle.clear();
    this.byId.clear();
  }
}

/** Maps the revisions, keys and lease handles of a request (for a target's own spaces). */
export interface RequestMapping {
  key(k: Uint8Array): Uint8Array;
  /** A range end (never called with undefined or an empty one). */
  end(e: Uint8Array): Uint8Array;
  /** A positive relative revision. */
  rev(r: number): number;
  lease(handle: number | undefined): number;
}

function mapEnd(m: RequestMapping, e: Uint8Array | undefined): Uint8Array | undefined {
  return e === undefined || e.length === 0 ? undefined : m.end(e);
}

function mapRev(m: RequestMapping, r: number | undefined): number | undefined {
  return r === undefined || r <= 0 ? r : m.rev(r);
}

export function mapRange(m: RequestMapping, r: RangeRequest): RangeRequest {
  return {
    ...r,
    key: m.key(r.key),
    rangeEnd: mapEnd(m, r.rangeEnd),
    revision: mapRev(m, r.revision),
    minModRevision: mapRev(m, r.minModRevision),
    maxModRevision: mapRev(m, r.maxModRevision),
    minCreateRevision: mapRev(m, r.minCreateRevision),
    maxCreateRevision: mapRev(m, r.maxCreateRevision),
  };
}

export function mapPut(m: RequestMapping, p: PutRequest): PutRequest {
  return { ...p, key: m.key(p.key), lease: p.lease === undefined ? undefined : m.lease(p.lease) };
}

export function mapDelete(m: RequestMapping, d: DeleteRangeRequest): DeleteRangeRequest {
  return { ...d, key: m.key(d.key), rangeEnd: mapEnd(m, d.rangeEnd) };
}

export function mapTxn(m: RequestMapping, t: TxnRequest): TxnRequest {
  const ops = (list: TxnRequest['success']) =>
    (list ?? []).map((op) => {
      if ('requestRange' in op) return { requestRange: mapRange(m, op.requestRange) };
      if ('requestPut' in op) return { requestPut: mapPut(m, op.requestPut) };
      if ('requestDeleteRange' in op) return { requestDeleteRange: mapDelete(m, op.requestDeleteRange) };
      return { requestTxn: mapTxn(m, op.requestTxn) };
    });
  return {
    compare: (t.compare ?? []).map((c) => ({
      ...c,
      key: m.key(c.key),
      rangeEnd: mapEnd(m, c.rangeEnd),
      createRevision: mapRev(m, c.createRevision),
      modRevision: mapRev(m, c.modRevision),
      lease: c.target === 'LEASE' ? m.lease(c.lease) : c.lease,
    })),
    success: ops(t.success),
    failure: ops(t.failure),
  };
}

export function mapWatch(m: RequestMapping, w: WatchCreateRequest): WatchCreateRequest {
  return { ...w, key: m.key(w.key), rangeEnd: mapEnd(m, w.rangeEnd), startRevision: mapRev(m, w.startRevision) };
}

/** Maps answers back: revisions to relative ones, keys out of the namespace, lease ids to handles. */
export interface ResponseMapping {
  /** An absolute revision (0 stays 0). */
  rev(r: number): number;
  key(k: Uint8Array): string;
  lease(id: number): string;
}

export function normKv(m: ResponseMapping, kv: KeyValue): NKv {
  return {
    key: m.key(kv.key),
    create: m.rev(kv.createRevision),
    mod: m.rev(kv.modRevision),
    ver: kv.version,
    value: valueStr(kv.value),
    lease: m.lease(kv.lease),
  };
}

/**
 * The lease id a target uses for the sequence's explicit lease number `k`
 * (etcd's ids are mapped onto these): room for 999 automatic ids after each.
 */
export const explicitId = (k: number): number => 1_000_000_000 + k * 1000;
