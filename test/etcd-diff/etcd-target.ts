// Real etcd as a DiffTarget, through the etcd3 client's raw gRPC clients.
// One etcd serves every sequence: each sequence gets a key namespace that
// sorts after every earlier one (so "from key" ranges, which keep their
// real "\0" range end, never reach older keys), starts with a put of a
// sentinel key just before its namespace, and maps revisions relative to
// the revision that put made. Compactions wait for the physical part, so
// watches see the same backend etcd's users see after a compaction.
import { noop } from 'cockatiel';
import { Etcd3, isRecoverableError } from 'etcd3';
import type {
  CompactionRequest,
  Compare,
  DeleteRangeRequest,
  Event,
  KeyValue,
  PutRequest,
  RangeRequest,
  RequestOp,
  TxnRequest,
  TxnResponse,
  WatchCreateRequest,
} from '../../src/mvccpb/index.js';
import { isRangeEndAll } from '../../src/mvccpb/index.js';
import { str, type DiffTarget, type GrantOp, type NWatchLog, type Outcome, type ResponseMapping } from './diff-target.js';
import { normDelete, normEvent, normPut, normRange, normTxn } from './normalize.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Raw = any;

const SORT_ORDER = { NONE: 0, ASCEND: 1, DESCEND: 2 } as const;
const SORT_TARGET = { KEY: 0, VERSION: 1, CREATE: 2, MOD: 3, VALUE: 4 } as const;
const CMP_TARGET = { VERSION: 0, CREATE: 1, MOD: 2, VALUE: 3, LEASE: 4 } as const;
const CMP_RESULT = { EQUAL: 0, GREATER: 1, LESS: 2, NOT_EQUAL: 3 } as const;

/** The error code the MVCC store uses for an etcd error message. */
export function etcdErrorCode(err: unknown): string {
  const msg = String((err as Error)?.message ?? err);
  const table: [string, string][] = [
    ['required revision has been compacted', 'QUORUMKV_REVISION_COMPACTED'],
    ['required revision is a future revision', 'QUORUMKV_FUTURE_REVISION'],
    ['too many operations in txn request', 'QUORUMKV_TOO_MANY_TXN_OPS'],
    ['duplicate key given in txn request', 'QUORUMKV_DUPLICATE_KEY'],
    ['request is too large', 'QUORUMKV_REQUEST_TOO_LARGE'],
    ['lease not found', 'QUORUMKV_LEASE_NOT_FOUND'],
    ['lease already exists', 'QUORUMKV_LEASE_EXISTS'],
    ['key not found', 'QUORUMKV_KEY_NOT_FOUND'],
    ['key is not provided', 'QUORUMKV_INVALID_ARGUMENT'],
    ['value is provided', 'QUORUMKV_INVALID_ARGUMENT'],
    ['lease is provided', 'QUORUMKV_INVALID_ARGUMENT'],
    ['too large lease TTL', 'QUORUMKV_INVALID_ARGUMENT'],
  ];
  for (const [needle, code] of table) if (msg.includes(needle)) return code;
  throw new Error(`etcd error with no known code: ${msg}`);
}

interface WatchState {
  log: NWatchLog;
  id: string | undefined;
}

/**
 * etcd itself did not answer (a watch stream that broke or never confirmed a
 * watch): not a difference; the sequence runs again on a fresh namespace.
 */
export class EtcdUnavailable extends Error {}

/** etcd confirms a new watch within milliseconds; past this its stream is taken as broken. */
const WATCH_CREATE_MS = 10_000;

export class EtcdTarget implements DiffTarget {
  readonly name = 'etcd';
  private readonly client: Etcd3;
  private readonly run: string;
  private ns = Buffer.alloc(0);
  private seq = 0;
  private base = 0;
  private leaseIds = new Map<number, string>();
  private leaseHandles = new Map<string, number>();
  private unknownLeases = new Map<string, number>();
  private stream: Raw;
  private watches: WatchState[] = [];
  private pendingCreates: ((res: Raw) => void)[] = [];
  /** Why the watch stream of this sequence stopped, if it did. */
  private streamFailure: string | undefined;
  private readonly respMap: ResponseMapping = {
    rev: (r) => (r === 0 ? 0 : r - this.base),
    key: (k) => str(k.subarray(this.ns.length)),
    lease: (n) => (n === 0 ? '0' : n > 0 ? `L${n}` : `?${[...this.unknownLeases].find(([, v]) => v === n)?.[0]}`),
  };

  constructor(url: string, run: string) {
    // no retries: the client would send a write again after a connection
    // fault although the first one may have been applied (twice on etcd,
    // once on the targets); such a fault reruns the sequence instead
    // and no cap on response size: values up to 1.5 MiB make range responses
    // beyond gRPC's default 4 MiB (RESOURCE_EXHAUSTED), which etcd would
    // have answered
    this.client = new Etcd3({
      hosts: url,
      faultHandling: { global: noop, host: () => noop },
      grpcOptions: { 'grpc.max_receive_message_length': -1 },
    });
    this.run = run;
  }

  /** Starts sequence `seq` in its own namespace; `attempt` > 0 when it runs again after {@link EtcdUnavailable}. */
  async begin(seq: number, attempt = 0): Promise<void> {
    this.seq = seq;
    // '~' sorts after '/': an earlier attempt's keys stay below this one's
    // namespace, out of reach of its ranges to the end of the key space
    const name = `${this.run}/s${String(seq).padStart(6, '0')}${attempt > 0 ? `~a${attempt}` : ''}`;
    this.ns = Buffer.from(`${name}/`);
    const r = await this.client.kv.put({ key: Buffer.from(name), value: Buffer.from('sentinel') });
    this.base = Number(r.header.revision) - 1;
    this.leaseIds.clear();
    this.leaseHandles.clear();
    this.unknownLeases.clear();
    this.watches = [];
    this.pendingCreates = [];
    this.stream = await this.client.watchClient.watch();
    this.stream.on('data', (res: Raw) => this.onWatch(res));
    this.streamFailure = undefined;
    const stream = this.stream;
    const failed = (why: string) => {
      if (this.stream === stream && this.streamFailure === undefined) this.streamFailure = why;
    };
    this.stream.on('error', (err: Error) => failed(`error: ${err.message}`));
    this.stream.on('end', () => failed('ended by etcd'));
    this.stream.on('close', () => failed('closed'));
  }

  // ------------------------------------------------------------ mapping

  private key(k: Uint8Array): Buffer {
    // an empty key stays empty: etcd must see (and refuse) it
    return k.length === 0 ? Buffer.alloc(0) : Buffer.concat([this.ns, k]);
  }

  private endOf(e: Uint8Array | undefined): Buffer | undefined {
    if (e === undefined || e.length === 0) return undefined;
    return isRangeEndAll(e) ? Buffer.from(e) : this.key(e);
  }

  private rev(r: number | undefined): number {
    return r === undefined || r <= 0 ? (r ?? 0) : r + this.base;
  }

  private leaseId(handle: number | undefined): string {
    if (handle === undefined || handle === 0) return '0';
    return this.leaseIds.get(handle) ?? String(7_000_000_000_000 + handle);
  }

  private leaseNum(id: string): number {
    if (id === '0') return 0;
    const h = this.leaseHandles.get(id);
    if (h !== undefined) return h;
    let u = this.unknownLeases.get(id);
    if (u === undefined) this.unknownLeases.set(id, (u = -(this.unknownLeases.size + 1)));
    return u;
  }

  private kv(raw: Raw): KeyValue {
    return {
      key: raw.key,
      createRevision: Number(raw.create_revision),
      modRevision: Number(raw.mod_revision),
      version: Number(raw.version),
      value: raw.value,
      lease: this.leaseNum(String(raw.lease)),
    };
  }

  private rawRange(r: RangeRequest): Raw {
    return {
      key: this.key(r.key),
      range_end: this.endOf(r.rangeEnd),
      limit: r.limit ?? 0,
      revision: this.rev(r.revision),
      sort_order: SORT_ORDER[r.sortOrder ?? 'NONE'],
      sort_target: SORT_TARGET[r.sortTarget ?? 'KEY'],
      keys_only: r.keysOnly ?? false,
      count_only: r.countOnly ?? false,
      min_mod_revision: this.rev(r.minModRevision),
      max_mod_revision: this.rev(r.maxModRevision),
      min_create_revision: this.rev(r.minCreateRevision),
      max_create_revision: this.rev(r.maxCreateRevision),
    };
  }

  private rawPut(p: PutRequest): Raw {
    return {
      key: this.key(p.key),
      value: Buffer.from(p.value ?? new Uint8Array(0)),
      lease: this.leaseId(p.lease),
      prev_kv: p.prevKv ?? false,
      ignore_value: p.ignoreValue ?? false,
      ignore_lease: p.ignoreLease ?? false,
    };
  }

  private rawDelete(d: DeleteRangeRequest): Raw {
    return { key: this.key(d.key), range_end: this.endOf(d.rangeEnd), prev_kv: d.prevKv ?? false };
  }

  private rawCompare(c: Compare): Raw {
    const out: Raw = { target: CMP_TARGET[c.target], result: CMP_RESULT[c.result], key: this.key(c.key), range_end: this.endOf(c.rangeEnd) };
    switch (c.target) {
      case 'VERSION':
        out.version = c.version ?? 0;
        break;
      case 'CREATE':
        out.create_revision = this.rev(c.createRevision ?? 0);
        break;
      case 'MOD':
        out.mod_revision = this.rev(c.modRevision ?? 0);
        break;
      case 'VALUE':
        out.value = Buffer.from(c.value ?? new Uint8Array(0));
        break;
      case 'LEASE':
        out.lease = this.leaseId(c.lease);
        break;
    }
    return out;
  }

  private rawOp(op: RequestOp): Raw {
    if ('requestRange' in op) return { request_range: this.rawRange(op.requestRange) };
    if ('requestPut' in op) return { request_put: this.rawPut(op.requestPut) };
    if ('requestDeleteRange' in op) return { request_delete_range: this.rawDelete(op.requestDeleteRange) };
    return { request_txn: this.rawTxn(op.requestTxn) };
  }

  private rawTxn(t: TxnRequest): Raw {
    return {
      compare: (t.compare ?? []).map((c) => this.rawCompare(c)),
      success: (t.success ?? []).map((op) => this.rawOp(op)),
      failure: (t.failure ?? []).map((op) => this.rawOp(op)),
    };
  }

  private rangeResp(raw: Raw) {
    return { header: { revision: Number(raw.header?.revision ?? 0) }, kvs: (raw.kvs ?? []).map((kv: Raw) => this.kv(kv)), more: raw.more, count: Number(raw.count) };
  }

  private putResp(raw: Raw) {
    return { header: { revision: Number(raw.header?.revision ?? 0) }, prevKv: raw.prev_kv ? this.kv(raw.prev_kv) : undefined };
  }

  private deleteResp(raw: Raw) {
    return { header: { revision: Number(raw.header?.revision ?? 0) }, deleted: Number(raw.deleted), prevKvs: (raw.prev_kvs ?? []).map((kv: Raw) => this.kv(kv)) };
  }

  private txnResp(raw: Raw): TxnResponse {
    return {
      header: { revision: Number(raw.header?.revision ?? 0) },
      succeeded: raw.succeeded,
      responses: (raw.responses ?? []).map((r: Raw) => {
        if (r.response_range) return { responseRange: this.rangeResp(r.response_range) };
        if (r.response_put) return { responsePut: this.putResp(r.response_put) };
        if (r.response_delete_range) return { responseDeleteRange: this.deleteResp(r.response_delete_range) };
        return { responseTxn: this.txnResp(r.response_txn) };
      }),
    };
  }

  private async call(f: () => Promise<Record<string, unknown>>): Promise<Outcome> {
    try {
      return { ok: await f() };
    } catch (err) {
      if (isRecoverableError(err as Error)) throw new EtcdUnavailable(`etcd connection fault: ${(err as Error).message}`);
      return { err: etcdErrorCode(err) };
    }
  }

  // ------------------------------------------------------------- ops

  put(req: PutRequest): Promise<Outcome> {
    return this.call(async () => normPut(this.respMap, this.putResp(await this.client.kv.put(this.rawPut(req)))));
  }

  range(req: RangeRequest): Promise<Outcome> {
    return this.call(async () => normRange(this.respMap, this.rangeResp(await this.client.kv.range(this.rawRange(req)))));
  }

  deleteRange(req: DeleteRangeRequest): Promise<Outcome> {
    return this.call(async () => normDelete(this.respMap, this.deleteResp(await this.client.kv.deleteRange(this.rawDelete(req)))));
  }

  txn(req: TxnRequest): Promise<Outcome> {
    return this.call(async () => normTxn(this.respMap, this.txnResp(await this.client.kv.txn(this.rawTxn(req)))));
  }

  compact(req: CompactionRequest): Promise<Outcome> {
    return this.call(async () => {
      const r = await this.client.kv.compact({ revision: this.rev(req.revision), physical: true });
      return { rev: this.respMap.rev(Number(r.header.revision)) };
    });
  }

  leaseGrant(op: GrantOp): Promise<Outcome> {
    return this.call(async () => {
      const id = op.explicit === 0 ? 0 : 2_000_000_000 + this.seq * 100_000 + op.explicit * 1000;
      const r = await this.client.leaseClient.leaseGrant({ TTL: op.ttl, ID: id });
      this.leaseIds.set(op.handle, String(r.ID));
      this.leaseHandles.set(String(r.ID), op.handle);
      return { rev: this.respMap.rev(Number(r.header.revision)), ttl: Number(r.TTL) };
    });
  }

  leaseRevoke(handle: number): Promise<Outcome> {
    return this.call(async () => {
      const r = await this.client.leaseClient.leaseRevoke({ ID: this.leaseId(handle) });
      return { rev: this.respMap.rev(Number(r.header.revision)) };
    });
  }

  /**
   * One keep-alive on a stream of its own. etcd answers an unknown lease
   * with TTL 0, which clientv3's KeepAliveOnce (and KvNode) turn into
   * "lease not found".
   */
  leaseKeepAlive(handle: number): Promise<Outcome> {
    return this.call(async () => {
      const stream: Raw = await this.client.leaseClient.leaseKeepAlive();
      try {
        const r: Raw = await new Promise((resolve, reject) => {
          stream.once('data', resolve);
          stream.once('error', reject);
          stream.once('end', () => reject(new Error('the keep-alive stream ended without an answer')));
          stream.write({ ID: this.leaseId(handle) });
        });
        if (Number(r.TTL) <= 0) throw new Error('etcdserver: requested lease not found');
        return { rev: this.respMap.rev(Number(r.header.revision)), ttl: Number(r.TTL) };
      } finally {
        stream.cancel?.();
        stream.on?.('error', () => {});
      }
    });
  }

  leaseTimeToLive(handle: number, keys: boolean): Promise<Outcome> {
    return this.call(async () => {
      const r = await this.client.leaseClient.leaseTimeToLive({ ID: this.leaseId(handle), keys });
      return {
        rev: this.respMap.rev(Number(r.header.revision)),
        ttl: Number(r.TTL),
        granted: Number(r.grantedTTL),
        keys: (r.keys ?? []).map((k: Buffer) => str(k.subarray(this.ns.length))).sort(),
      };
    });
  }

  leaseLeases(): Promise<Outcome> {
    return this.call(async () => {
      const r = await this.client.leaseClient.leaseLeases({});
      const mine = (r.leases ?? []).map((l: Raw) => String(l.ID)).filter((id: string) => this.leaseHandles.has(id));
      return { rev: this.respMap.rev(Number(r.header.revision)), leases: mine.map((id: string) => `L${this.leaseHandles.get(id)}`).sort() };
    });
  }

  // ----------------------------------------------------------- watches

  private onWatch(res: Raw): void {
    if (res.created) {
      const resolve = this.pendingCreates.shift();
      resolve?.(res);
      if (!res.canceled) return;
    }
    const w = this.watches.find((x) => x.id === String(res.watch_id));
    if (w === undefined) return;
    for (const e of res.events ?? []) {
      // the etcd3 client names the enum values 'Put' and 'Delete'
      const ev: Event = { type: String(e.type).toUpperCase() === 'DELETE' ? 'DELETE' : 'PUT', kv: this.kv(e.kv) };
      if (e.prev_kv) ev.prevKv = this.kv(e.prev_kv);
      w.log.events.push(normEvent(this.respMap, ev));
    }
    if (res.canceled) {
      const c = Number(res.compact_revision ?? 0);
      w.log.canceled = { compactRevision: c === 0 ? 0 : this.respMap.rev(c) };
    }
  }

  async watch(req: WatchCreateRequest): Promise<number> {
    const state: WatchState = { log: { events: [] }, id: undefined };
    this.watches.push(state);
    const created = new Promise<Raw>((resolve) => this.pendingCreates.push(resolve));
    this.stream.write({
      create_request: {
        // etcd's watch server reads an empty key as "\0", the smallest key
        // (v3rpc/watch.go), as KvNode does; in the namespace that is ns + "\0"
        key: this.key(req.key.length === 0 ? new Uint8Array([0]) : req.key),
        range_end: this.endOf(req.rangeEnd),
        start_revision: this.rev(req.startRevision),
        prev_kv: req.prevKv ?? false,
        filters: (req.filters ?? []).map((f) => (f === 'NOPUT' ? 0 : 1)),
      },
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new EtcdUnavailable(`etcd did not confirm a watch within ${WATCH_CREATE_MS} ms (watch stream: ${this.streamFailure ?? 'no error seen'})`)),
        WATCH_CREATE_MS,
      );
    });
    const res = await Promise.race([created, late]).finally(() => clearTimeout(timer));
    state.id = String(res.watch_id);
    if (res.canceled) state.log.canceled = { compactRevision: Number(res.compact_revision ?? 0) };
    return this.watches.length - 1;
  }

  async watchLog(i: number, expect?: NWatchLog): Promise<NWatchLog> {
    const w = this.watches[i]!;
    const enough = () => expect === undefined || (w.log.events.length >= expect.events.length && (expect.canceled === undefined || w.log.canceled !== undefined));
    const deadline = Date.now() + 3000;
    while (!enough() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 15)); // anything extra would show up here
    if (this.streamFailure !== undefined && !enough()) throw new EtcdUnavailable(`etcd's watch stream stopped during the sequence (${this.streamFailure})`);
    return { events: [...w.log.events], ...(w.log.canceled ? { canceled: w.log.canceled } : {}) };
  }

  async end(): Promise<void> {
    for (const id of this.leaseIds.values()) {
      await this.client.leaseClient.leaseRevoke({ ID: id }).catch(() => {});
    }
    const stream = this.stream;
    this.stream = undefined;
    stream?.cancel();
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
