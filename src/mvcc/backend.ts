/**
 * The store's backend on abstract-level (etcd's bolt backend, with buckets as
 * sublevels of the database the store is given):
 * - `k`: every version of every key, keyed by its encoded revision (see
 *   `revision.ts`), so history reads and watch catch-up read it in order;
 * - `l`: the leases (id as 8 bytes big-endian → `[ttl]`);
 * - `m`: metadata (`state` = `[appliedIndex, currentRevision,
 *   lastLeaseId]`, `compactScheduled`, `compactFinished`, `restoring`).
 *
 * Writes are gathered while entries are applied and written in one batch
 * with {@link Backend.commit} (one batch per group of applied entries, the
 * applied index included, so an entry is applied exactly once across
 * crashes). Until then, revision records are readable from a write buffer.
 * @module
 */
import type { AbstractLevel, AbstractSublevel } from 'abstract-level';
import { ErrorCode, FaultError } from '../errors.js';
import { putPrepared, writePrepared } from '../level-write.js';
import { compareBytes } from '../mvccpb/index.js';

/** Any abstract-level database (or sublevel of one). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyLevel = AbstractLevel<any, any, any>;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type BytesSublevel = AbstractSublevel<any, any, Uint8Array, Uint8Array>;

/** A write on the root database, its key already carrying the sublevel prefix. */
interface BatchOp {
  type: 'put' | 'del';
  key: Uint8Array;
  value?: Uint8Array;
}

/** A revision record written but not committed yet. */
export interface PendingRevision {
  key: Uint8Array;
  value: Uint8Array;
}

/** Writes taken together, to be written in one atomic batch. */
export interface PendingBatch {
  ops: BatchOp[];
  revisions: PendingRevision[];
  /** The last op of each metadata record the batch writes, by record name. */
  meta: Map<string, BatchOp>;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = a.length - 1; i >= 0; i--) if (a[i] !== b[i]) return false;
  return true;
}

const enc = new TextEncoder();

/** A metadata record's name as a map key. */
function metaName(name: Uint8Array): string {
  let s = metaNames.get(name);
  if (s === undefined) {
    s = Buffer.from(name.buffer, name.byteOffset, name.byteLength).toString('latin1');
    metaNames.set(name, s);
  }
  return s;
}

/** Names already converted, by identity (the {@link META} constants: one per apply batch otherwise). */
const metaNames = new WeakMap<Uint8Array, string>();

/** Names of the metadata records. */
export const META = {
  state: enc.encode('state'),
  compactScheduled: enc.encode('compactScheduled'),
  compactFinished: enc.encode('compactFinished'),
  restoring: enc.encode('restoring'),
  /** Written with fsync by {@link Backend.syncAll}; never read. */
  synced: enc.encode('synced'),
} as const;

function ioError(err: unknown, what: string): FaultError {
  return new FaultError(ErrorCode.STORAGE_IO, `mvcc: ${what} failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

/** Encodes a lease id as 8 bytes big-endian. */
export function leaseIdToBytes(id: number): Uint8Array {
  const b = new Uint8Array(8);
  const hi = Math.floor(id / 2 ** 32);
  new DataView(b.buffer).setUint32(0, hi);
  new DataView(b.buffer).setUint32(4, id >>> 0);
  return b;
}

/** Decodes {@link leaseIdToBytes}. */
export function bytesToLeaseId(b: Uint8Array): number {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return dv.getUint32(0) * 2 ** 32 + dv.getUint32(4);
}

/**
 * The backend: sublevels, a write buffer and batched commits. Writes go to
 * the root database with keys that already carry the sublevel prefixes (one
 * copy per key instead of abstract-level's per-sublevel encoding): the same
 * bytes as writing through the sublevels, at raw batch speed.
 */
export class Backend {
  readonly db: AnyLevel;
  readonly kv: BytesSublevel;
  readonly lease: BytesSublevel;
  readonly meta: BytesSublevel;
  private readonly root: AnyLevel;
  private readonly kvPrefix: Uint8Array;
  private readonly leasePrefix: Uint8Array;
  private readonly metaPrefix: Uint8Array;
  private ops: BatchOp[] = [];
  private metaOps = new Map<string, BatchOp>();
  /** Revision records of the ops not written yet, and of the batch being written. */
  private pending: PendingRevision[] = [];
  /** Batches taken and not written yet, oldest first. */
  private readonly inflight: PendingBatch[] = [];
  private readonly sync: boolean;

  constructor(db: AnyLevel, sync: boolean) {
    this.db = db;
    const opts = { keyEncoding: 'view', valueEncoding: 'view' } as const;
    this.kv = db.sublevel<Uint8Array, Uint8Array>('k', opts) as BytesSublevel;
    this.lease = db.sublevel<Uint8Array, Uint8Array>('l', opts) as BytesSublevel;
    this.meta = db.sublevel<Uint8Array, Uint8Array>('m', opts) as BytesSublevel;
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    this.root = ((db as any).db ?? db) as AnyLevel;
    const empty = new Uint8Array(0);
    this.kvPrefix = new Uint8Array(this.kv.prefixKey(empty, 'view'));
    this.leasePrefix = new Uint8Array(this.lease.prefixKey(empty, 'view'));
    this.metaPrefix = new Uint8Array(this.meta.prefixKey(empty, 'view'));
    this.sync = sync;
  }

  /** Opens the database if it is not open yet. */
  async open(): Promise<void> {
    try {
      if (this.db.status === 'opening' || this.db.status === 'closed') await this.db.open();
    } catch (err) {
      throw ioError(err, 'opening the database');
    }
  }

  /** Number of writes gathered since the last commit. */
  get pendingOps(): number {
    return this.ops.length;
  }

  private prefixed(prefix: Uint8Array, key: Uint8Array): Uint8Array {
    const out = new Uint8Array(prefix.length + key.length);
    out.set(prefix, 0);
    out.set(key, prefix.length);
    return out;
  }

  /** Gathers a revision record. */
  putRevision(revKey: Uint8Array, value: Uint8Array): void {
    this.ops.push({ type: 'put', key: this.prefixed(this.kvPrefix, revKey), value });
    this.pending.push({ key: revKey, value });
  }

  /** Gathers a metadata record. */
  putMeta(name: Uint8Array, value: Uint8Array): void {
    const op: BatchOp = { type: 'put', key: this.prefixed(this.metaPrefix, name), value };
    this.ops.push(op);
    this.metaOps.set(metaName(name), op);
  }

  /** Gathers the removal of a metadata record. */
  delMeta(name: Uint8Array): void {
    const op: BatchOp = { type: 'del', key: this.prefixed(this.metaPrefix, name) };
    this.ops.push(op);
    this.metaOps.set(metaName(name), op);
  }

  /** Gathers a lease record. */
  putLease(id: number, value: Uint8Array): void {
    this.ops.push({ type: 'put', key: this.prefixed(this.leasePrefix, leaseIdToBytes(id)), value });
  }

  /** Gathers the removal of a lease record. */
  delLease(id: number): void {
    this.ops.push({ type: 'del', key: this.prefixed(this.leasePrefix, leaseIdToBytes(id)) });
  }

  /**
   * Takes everything gathered so far as one batch to write (its revision
   * records stay readable until {@link writeBatch} has written it).
   * @returns undefined when nothing was gathered
   */
  takeBatch(): PendingBatch | undefined {
    if (this.ops.length === 0) return undefined;
    const batch: PendingBatch = { ops: this.ops, revisions: this.pending, meta: this.metaOps };
    this.ops = [];
    this.pending = [];
    this.metaOps = new Map();
    this.inflight.push(batch);
    return batch;
  }

  /**
   * Writes a batch taken with {@link takeBatch} atomically. Batches must be
   * written in the order they were taken, one at a time.
   * @throws FaultError `QUORUMKV_STORAGE_IO`
   */
  async writeBatch(batch: PendingBatch): Promise<void> {
    try {
      await this.writeBatches([batch]);
    } finally {
      this.settle([batch]);
    }
  }

  /**
   * Writes batches taken with {@link takeBatch}, in the order taken, as one
   * atomic backend batch (a later record of a key wins). A metadata record
   * that a later batch writes again (the applied index each batch carries)
   * is written once, with its last value.
   * @throws FaultError `QUORUMKV_STORAGE_IO`
   */
  async writeBatches(batches: PendingBatch[]): Promise<void> {
    try {
      let ops: BatchOp[] = batches[0]?.ops ?? [];
      if (batches.length > 1) {
        const latest = new Map<string, BatchOp>();
        for (const b of batches) for (const [name, op] of b.meta) latest.set(name, op);
        const superseded = new Set<BatchOp>();
        for (const b of batches) for (const [name, op] of b.meta) if (latest.get(name) !== op) superseded.add(op);
        ops = [];
        for (const b of batches) for (const op of b.ops) if (!superseded.has(op)) ops.push(op);
      }
      await writePrepared(this.root, ops, this.sync);
    } catch (err) {
      throw ioError(err, 'writing a batch');
    }
  }

  /**
   * Forgets the revision records of batches written with
   * {@link writeBatches} (they are read from the database from now on).
   * The caller does so in the same synchronous step as it moves its
   * written-revision mark, so a reader never misses or doubles a record.
   */
  settle(batches: PendingBatch[]): void {
    // the usual case: the oldest batches, in order (one splice instead of one per batch)
    let k = 0;
    while (k < batches.length && this.inflight[k] === batches[k]) k++;
    if (k === batches.length) {
      this.inflight.splice(0, k);
      return;
    }
    for (const b of batches) {
      const i = this.inflight.indexOf(b);
      if (i >= 0) this.inflight.splice(i, 1);
    }
  }

  /**
   * The revision records taken for writing and not settled yet, and those
   * gathered since, with keys in `[gte, lt)`, in revision order.
   */
  unwrittenRevisions(gte: Uint8Array, lt: Uint8Array): PendingRevision[] {
    const out: PendingRevision[] = [];
    for (const list of [...this.inflight.map((b) => b.revisions), this.pending]) {
      for (const r of list) if (compareBytes(r.key, gte) >= 0 && compareBytes(r.key, lt) < 0) out.push(r);
    }
    return out;
  }

  /**
   * Makes every earlier write to the database durable. A synced write alone
   * is not enough on LevelDB: it fsyncs the current write-ahead log only,
   * and a log LevelDB switched away from (when its write buffer filled) is
   * closed without fsync until its table is flushed (google/leveldb#193).
   * So after one small synced write, on a database that has `compactRange`
   * (classic-level), a compaction of a range that holds no key (past every
   * sublevel prefix) flushes the write buffers to table files, which
   * LevelDB fsyncs along with its manifest before the call returns, and
   * rewrites no table (none overlaps that range).
   * @throws FaultError `QUORUMKV_STORAGE_IO`
   */
  async syncAll(): Promise<void> {
    const marker = this.prefixed(this.metaPrefix, META.synced);
    const nowhere = new Uint8Array(64).fill(0xff);
    try {
      await putPrepared(this.root, marker, new Uint8Array(0), true);
      const disk = this.root as unknown as { compactRange?: (start: Uint8Array, end: Uint8Array, options?: object) => Promise<void> };
      if (typeof disk.compactRange === 'function') await disk.compactRange(nowhere, nowhere, { keyEncoding: 'view' });
    } catch (err) {
      throw ioError(err, 'syncing the database');
    }
  }

  /** Writes everything gathered in one atomic batch ({@link takeBatch} + {@link writeBatch}). */
  async commit(): Promise<void> {
    const batch = this.takeBatch();
    if (batch !== undefined) await this.writeBatch(batch);
  }

  /** The record of a revision key while it waits in the write buffer (gathered, or taken and not settled), else undefined. */
  bufferedRevision(revKey: Uint8Array): Uint8Array | undefined {
    for (const list of [this.pending, ...this.inflight.map((b) => b.revisions)]) {
      for (let i = list.length - 1; i >= 0; i--) if (sameBytes(list[i]!.key, revKey)) return list[i]!.value;
    }
    return undefined;
  }

  /**
   * The record stored under a revision key, from the write buffer or the
   * database; undefined when absent.
   * @throws FaultError `QUORUMKV_STORAGE_IO`
   */
  async getRevision(revKey: Uint8Array): Promise<Uint8Array | undefined> {
    const buffered = this.bufferedRevision(revKey);
    if (buffered !== undefined) return buffered;
    try {
      return (await this.kv.get(revKey)) ?? undefined;
    } catch (err) {
      throw ioError(err, 'reading a revision');
    }
  }

  /**
   * Whether the database answers point reads synchronously (abstract-level's
   * `getSync`, which classic-level and memory-level have): then
   * {@link getWrittenRevisionSync} works and the store keeps no current value in
   * memory once written.
   */
  get readsSync(): boolean {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    return (this.root as any).supports?.getSync === true;
  }

  /**
   * A revision record already written to the database, read without
   * waiting (see {@link readsSync}); the write buffer is not searched.
   * @throws FaultError `QUORUMKV_STORAGE_IO`
   */
  getWrittenRevisionSync(revKey: Uint8Array): Uint8Array | undefined {
    try {
      return this.kv.getSync(revKey) ?? undefined;
    } catch (err) {
      throw ioError(err, 'reading a revision');
    }
  }

  /**
   * Revision records already written to the database, in one call
   * (abstract-level's `getMany`; classic-level reads them all in one job off
   * the event loop); undefined for a key that is absent.
   * @throws FaultError `QUORUMKV_STORAGE_IO`
   */
  async getWrittenRevisions(revKeys: Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    try {
      return (await this.kv.getMany(revKeys)).map((v) => v ?? undefined);
    } catch (err) {
      throw ioError(err, 'reading revisions');
    }
  }

  /** Reads a metadata record. */
  async getMeta(name: Uint8Array): Promise<Uint8Array | undefined> {
    try {
      return (await this.meta.get(name)) ?? undefined;
    } catch (err) {
      throw ioError(err, 'reading metadata');
    }
  }

  /**
   * Iterates revision records with keys in `[gte, lt)` in order (committed
   * records only). Uses an explicit database snapshot when given; with
   * `values` false the values are left out (undefined).
   */
  async *scan(gte: Uint8Array | undefined, lt: Uint8Array | undefined, snapshot?: unknown, values = true): AsyncGenerator<[Uint8Array, Uint8Array]> {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const opts: any = values ? {} : { values: false };
    if (gte !== undefined) opts.gte = gte;
    if (lt !== undefined) opts.lt = lt;
    if (snapshot !== undefined) opts.snapshot = snapshot;
    const it = this.kv.iterator(opts);
    try {
      for (;;) {
        let chunk: [Uint8Array, Uint8Array][];
        try {
          chunk = (await it.nextv(1000)) as [Uint8Array, Uint8Array][];
        } catch (err) {
          throw ioError(err, 'scanning revisions');
        }
        if (chunk.length === 0) return;
        for (const e of chunk) yield e;
      }
    } finally {
      await it.close();
    }
  }

  /** Iterates the lease records: `[id, value]`. */
  async *scanLeases(snapshot?: unknown): AsyncGenerator<[number, Uint8Array]> {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const opts: any = snapshot === undefined ? {} : { snapshot };
    for await (const [k, v] of this.lease.iterator(opts)) yield [bytesToLeaseId(k as Uint8Array), v as Uint8Array];
  }

  /** Deletes revision keys right away, in one batch (physical compaction). */
  async deleteRevisions(keys: Uint8Array[], meta?: [Uint8Array, Uint8Array]): Promise<void> {
    const ops: BatchOp[] = keys.map((key) => ({ type: 'del', key: this.prefixed(this.kvPrefix, key) }));
    if (meta !== undefined) ops.push({ type: 'put', key: this.prefixed(this.metaPrefix, meta[0]), value: meta[1] });
    if (ops.length === 0) return;
    try {
      await writePrepared(this.root, ops, this.sync);
    } catch (err) {
      throw ioError(err, 'deleting compacted revisions');
    }
  }

  /** Writes records right away (snapshot restore), in one batch. */
  async writeNow(ops: { sublevel: 'kv' | 'lease' | 'meta'; key: Uint8Array; value?: Uint8Array }[]): Promise<void> {
    const prefixes = { kv: this.kvPrefix, lease: this.leasePrefix, meta: this.metaPrefix };
    const batch: BatchOp[] = ops.map((o) =>
      o.value === undefined
        ? { type: 'del', key: this.prefixed(prefixes[o.sublevel], o.key) }
        : { type: 'put', key: this.prefixed(prefixes[o.sublevel], o.key), value: o.value },
    );
    try {
      await writePrepared(this.root, batch, this.sync);
    } catch (err) {
      throw ioError(err, 'writing');
    }
  }

  /**
   * Removes every record of the store (snapshot restore), durably when the
   * backend syncs. `clear()` writes its deletes without fsync, and a synced
   * write after them does not make them durable if LevelDB switched to a
   * new write-ahead log in between (see {@link syncAll}): the restored
   * records and the end of the restore could then outlive a power loss
   * that the deletes did not, leaving records of the replaced state.
   * @throws FaultError `QUORUMKV_STORAGE_IO`
   */
  async clearAll(): Promise<void> {
    try {
      await this.kv.clear();
      await this.lease.clear();
    } catch (err) {
      throw ioError(err, 'clearing the store');
    }
    if (this.sync) await this.syncAll();
  }

  /** An explicit snapshot of the database, when supported. */
  snapshot(): { close(): Promise<void> } | undefined {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const db = this.db as any;
    if (db.supports?.explicitSnapshots === true && typeof db.snapshot === 'function') return db.snapshot();
    return undefined;
  }
}
