// The MVCC store as a DiffTarget: a fresh store per sequence, driven by a
// tiny single-member apply loop (each write is encoded as for the Raft log,
// decoded, and applied with the next index), reads served locally. The
// lessor is promoted with the real clock, as on a leader.
import { MemoryLevel } from 'memory-level';
import {
  decodeWriteRequest,
  MvccStore,
  prepareWriteRequest,
  type Watcher,
  type WriteRequest,
  type WriteResponse,
} from '../../src/mvcc/index.js';
import { isQuorumError } from '../../src/errors.js';
import type {
  CompactionRequest,
  DeleteRangeRequest,
  PutRequest,
  RangeRequest,
  TxnRequest,
  WatchCreateRequest,
} from '../../src/mvccpb/index.js';
import {
  LeaseMap,
  explicitId,
  mapDelete,
  mapPut,
  mapRange,
  mapTxn,
  mapWatch,
  str,
  type GrantOp,
  type NWatchLog,
  type Outcome,
  type ReferenceTarget,
  type RequestMapping,
  type ResponseMapping,
} from './diff-target.js';
import type { GenState } from './generator.js';
import { normDelete, normEvent, normPut, normRange, normTxn } from './normalize.js';


export class StoreTarget implements ReferenceTarget {
  readonly name = 'store';
  private store!: MvccStore;
  private db!: MemoryLevel<string, string>;
  private index = 0;
  private leases = new LeaseMap(7_000_000_000_000);
  private watchers: { w: Watcher; log: NWatchLog }[] = [];
  private readonly reqMap: RequestMapping = {
    key: (k) => k,
    end: (e) => e,
    rev: (r) => r,
    lease: (h) => this.leases.id(h),
  };
  private readonly respMap: ResponseMapping = {
    rev: (r) => r,
    key: (k) => str(k),
    lease: (id) => this.leases.name(id),
  };

  async begin(): Promise<void> {
    this.db = new MemoryLevel<string, string>();
    this.store = await MvccStore.open(this.db.sublevel('mvcc'));
    this.store.lessor.promote();
    this.index = 0;
    this.leases.clear();
    this.watchers = [];
  }

  /** The state the generator needs. */
  genState(): GenState {
    return { rev: this.store.currentRevision(), compactRev: this.store.compactRevision() };
  }

  private async write(req: WriteRequest): Promise<{ resp: WriteResponse } | { err: string }> {
    try {
      const data = prepareWriteRequest(req, this.store.requestLimits());
      const r = await this.store.apply(++this.index, decodeWriteRequest(data));
      if (r.status === 'failed') return { err: r.error.code };
      if (r.status !== 'applied') throw new Error(`unexpected apply status ${r.status}`);
      if (r.physical !== undefined) await r.physical;
      return { resp: r.response };
    } catch (err) {
      if (isQuorumError(err) && err.name === 'UsageError') return { err: err.code };
      if (isQuorumError(err) && err.name === 'CompactedError') return { err: err.code };
      throw err;
    }
  }

  async put(req: PutRequest): Promise<Outcome> {
    const r = await this.write({ put: mapPut(this.reqMap, req) });
    return 'err' in r ? r : { ok: normPut(this.respMap, (r.resp as { put: never }).put) };
  }

  async range(req: RangeRequest): Promise<Outcome> {
    try {
      return { ok: normRange(this.respMap, await this.store.range(mapRange(this.reqMap, req))) };
    } catch (err) {
      if (isQuorumError(err)) return { err: err.code };
      throw err;
    }
  }

  async deleteRange(req: DeleteRangeRequest): Promise<Outcome> {
    const r = await this.write({ deleteRange: mapDelete(this.reqMap, req) });
    return 'err' in r ? r : { ok: normDelete(this.respMap, (r.resp as { deleteRange: never }).deleteRange) };
  }

  async txn(req: TxnRequest): Promise<Outcome> {
    const r = await this.write({ txn: mapTxn(this.reqMap, req) });
    return 'err' in r ? r : { ok: normTxn(this.respMap, (r.resp as { txn: never }).txn) };
  }

  async compact(req: CompactionRequest): Promise<Outcome> {
    const r = await this.write({ compaction: { revision: req.revision, physical: true } });
    return 'err' in r ? r : { ok: { rev: (r.resp as { compaction: { header: { revision: number } } }).compaction.header.revision } };
  }

  async leaseGrant(op: GrantOp): Promise<Outcome> {
    const r = await this.write({ leaseGrant: { ttl: op.ttl, id: op.explicit === 0 ? 0 : explicitId(op.explicit) } });
    if ('err' in r) return r;
    const g = (r.resp as { leaseGrant: { id: number; ttl: number; header: { revision: number } } }).leaseGrant;
    this.leases.set(op.handle, g.id);
    return { ok: { rev: g.header.revision, ttl: g.ttl } };
  }

  async leaseRevoke(handle: number): Promise<Outcome> {
    const r = await this.write({ leaseRevoke: { id: this.leases.id(handle) } });
    return 'err' in r ? r : { ok: { rev: (r.resp as { leaseRevoke: { header: { revision: number } } }).leaseRevoke.header.revision } };
  }

  async leaseKeepAlive(handle: number): Promise<Outcome> {
    try {
      const k = this.store.leaseKeepAlive(this.leases.id(handle));
      return { ok: { rev: k.header.revision, ttl: k.ttl } };
    } catch (err) {
      if (isQuorumError(err) && err.name === 'UsageError') return { err: err.code };
      throw err;
    }
  }

  async leaseTimeToLive(handle: number, keys: boolean): Promise<Outcome> {
    const t = this.store.leaseTimeToLive({ id: this.leases.id(handle), keys });
    return { ok: { rev: t.header.revision, ttl: t.ttl, granted: t.grantedTtl, keys: t.keys.map(str).sort() } };
  }

  async leaseLeases(): Promise<Outcome> {
    const l = this.store.leaseLeases();
    return { ok: { rev: l.header.revision, leases: l.leases.map((x) => this.leases.name(x.id)).sort() } };
  }

  async watch(req: WatchCreateRequest): Promise<number> {
    const w = this.store.watch(mapWatch(this.reqMap, req));
    const log: NWatchLog = { events: [] };
    this.watchers.push({ w, log });
    void (async () => {
      for await (const resp of w) {
        for (const e of resp.events) log.events.push(normEvent(this.respMap, e));
        if (resp.canceled) log.canceled = { compactRevision: resp.compactRevision };
      }
    })();
    return this.watchers.length - 1;
  }

  async watchLog(i: number): Promise<NWatchLog> {
    await this.store.watchIdle();
    for (let k = 0; k < 3; k++) await new Promise((r) => setImmediate(r));
    const { log } = this.watchers[i]!;
    return { events: [...log.events], ...(log.canceled ? { canceled: log.canceled } : {}) };
  }

  async end(): Promise<void> {
    for (const { w } of this.watchers) await w.cancel();
    await this.store.close();
    await this.db.close();
  }

  async close(): Promise<void> {}
}
