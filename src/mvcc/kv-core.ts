/**
 * The key-value state of the store (etcd's `mvcc.store` with its
 * `storeTxnRead`/`storeTxnWrite`, server/mvcc/kvstore.go and
 * kvstore_txn.go): the key index, the in-memory view of current values, the
 * revision counters, write transactions and logical compaction.
 *
 * Values live in the backend, as in etcd (its key index holds revisions
 * only, and reads go to bolt). A key's current value is also kept on its
 * {@link KeyIndex} (as a binary string) from its write until the store has
 * written the record to the database, and is read from the database with a
 * synchronous point read after that; a backend that cannot read
 * synchronously keeps every current value in memory. Older versions are
 * read from the backend by revision.
 * @module
 */
import { CompactedError, ErrorCode, FaultError, UsageError } from '../errors.js';
import type { Lessor, TxnDelete } from '../lease/index.js';
import type { Event, KeyValue } from '../mvccpb/index.js';
import type { Backend } from './backend.js';
import { decodeKeyValue, encodeKeyValue, encodeTombstone } from './kv-codec.js';
import type { KeyIndex } from './key-index.js';
import { bytesToRev, isTombstoneKey, revToBytes, revisionId, type Revision } from './revision.js';
import { fromSkey, toIndexEnd, toSkey } from './skey.js';
import { TreeIndex, type IndexedKey, type IndexRangeEnd } from './tree-index.js';

const EMPTY = new Uint8Array(0);

/** {@link KvCore.loadWritten} reads in up to this many parts at once (libuv's thread pool has 4 threads). */
const PARALLEL_READS = 4;

/** The events of one revision, in the order of the changes. */
export interface RevisionEvents {
  revision: number;
  events: Event[];
  /**
   * Whether the events were written with their `prevKv` (some watcher asked
   * for it then): an event without one then has no previous version.
   */
  withPrevKv: boolean;
}

/** A compaction applied logically, waiting for its physical part. */
export interface ScheduledCompaction {
  revision: number;
  /** Revisions at or below `revision` that stay (as `revisionId`s). */
  keep: Set<string>;
}

/**
 * Key-values handed out may be shared (an event goes to every matching
 * watcher): freeze them. Events are frozen too, for the same reason.
 */
export function freezeKv(kv: KeyValue): KeyValue {
  return Object.freeze(kv);
}

/** The key-value state. */
export class KvCore {
  readonly index = new TreeIndex();
  /** Revision of the last completed write (1 for an empty store). */
  currentRev = 1;
  /** Revision of the last compaction, -1 before any (as etcd). */
  compactRev = -1;
  readonly lessor: Lessor;
  readonly backend: Backend;
  /** Revisions written since the last {@link drainRevisions}, with their events. */
  private written: RevisionEvents[] = [];
  /** Compactions applied since the last {@link drainCompactions}. */
  private compactions: ScheduledCompaction[] = [];
  private txnOpen = false;
  /**
   * Whether current values leave memory once written: the backend reads
   * them back synchronously (txn compares and `prevKv` are evaluated inside
   * a synchronous apply).
   */
  readonly evicts: boolean;
  /** Keys put since the last {@link evictWritten}, oldest first from `unwrittenHead`, with the revision of each put. */
  private unwrittenKeys: KeyIndex[] = [];
  private unwrittenRevs: number[] = [];
  private unwrittenHead = 0;
  /**
   * Whether the events of the next write transaction carry `prevKv` (the
   * store asks its watchers; reading the previous version may take a
   * database read, which etcd's put does not make either). Default: always.
   */
  prevKvWanted: () => boolean = () => true;

  constructor(lessor: Lessor, backend: Backend) {
    this.lessor = lessor;
    this.backend = backend;
    this.evicts = backend.readsSync;
    lessor.setRangeDeleter(() => this.writeTxn());
  }

  /**
   * The current version of a key as a new, frozen {@link KeyValue}, or
   * undefined when the key does not exist now: from memory while its record
   * is not written yet, else from the database.
   * @throws FaultError `QUORUMKV_INTERNAL` when the database lacks the record, `QUORUMKV_STORAGE_IO`
   */
  current(ki: KeyIndex): KeyValue | undefined {
    if (ki.currentVersion() === 0) return undefined;
    if (ki.val !== undefined) return ki.cachedKv();
    const data = this.backend.getWrittenRevisionSync(revToBytes(ki.modified));
    if (data === undefined) throw new FaultError(ErrorCode.INTERNAL, `mvcc: record ${revisionId(ki.modified)} of a live key missing from the backend`);
    return freezeKv(decodeKeyValue(data));
  }

  /**
   * Records already written to the database, by revision, in one backend
   * call; undefined for a record that is not there.
   * @throws FaultError `QUORUMKV_STORAGE_IO`
   */
  async loadWritten(revs: Revision[]): Promise<(KeyValue | undefined)[]> {
    // in parts read side by side (each part is one job on the thread pool)
    const part = Math.max(64, Math.ceil(revs.length / PARALLEL_READS));
    const parts: Promise<(Uint8Array | undefined)[]>[] = [];
    for (let i = 0; i < revs.length; i += part) parts.push(this.backend.getWrittenRevisions(revs.slice(i, i + part).map((r) => revToBytes(r))));
    const data = (await Promise.all(parts)).flat();
    return data.map((d) => (d === undefined ? undefined : freezeKv(decodeKeyValue(d))));
  }

  /** Notes a put whose record is not written yet (its value stays on the key index until it is). */
  noteUnwritten(ki: KeyIndex, main: number): void {
    this.unwrittenKeys.push(ki);
    this.unwrittenRevs.push(main);
  }

  /**
   * Drops from memory the current values whose records are written: the
   * store calls it when every revision up to `rev` is in the database.
   */
  evictWritten(rev: number): void {
    const keys = this.unwrittenKeys;
    const revs = this.unwrittenRevs;
    let i = this.unwrittenHead;
    for (; i < keys.length && revs[i]! <= rev; i++) {
      const ki = keys[i]!;
      // a later put of the key keeps its own value until that one is written
      if (ki.modMain === revs[i]) ki.val = undefined;
    }
    if (i === keys.length) {
      this.forgetUnwritten();
    } else if (i > 4096 && i * 2 > keys.length) {
      this.unwrittenKeys = keys.slice(i);
      this.unwrittenRevs = revs.slice(i);
      this.unwrittenHead = 0;
    } else {
      this.unwrittenHead = i;
    }
  }

  /**
   * The revision a read asks for, checked against the store: `rev` 0 or
   * less = `curRev`.
   * @throws UsageError `QUORUMKV_FUTURE_REVISION` when `rev > curRev`
   * @throws CompactedError when `rev` is below the compaction revision
   */
  readRevision(rev: number | undefined, curRev: number): number {
    let r = rev ?? 0;
    if (r > curRev) throw new UsageError(ErrorCode.FUTURE_REVISION, 'mvcc: required revision is a future revision');
    if (r <= 0) r = curRev;
    if (r < this.compactRev) throw new CompactedError(this.compactRev);
    return r;
  }

  /** Keys of a range existing at `atRev`: at most `limit` (0 = all), and the total. */
  resolve(key: Uint8Array, rangeEnd: Uint8Array | undefined, atRev: number, limit: number): { keys: IndexedKey[]; total: number } {
    return this.index.range(toSkey(key), toIndexEnd(rangeEnd), atRev, limit);
  }

  /**
   * The key-value of a resolved key when it is its current version (read
   * without waiting, see {@link current}), else undefined.
   * @throws as {@link current}
   */
  cached(item: IndexedKey): KeyValue | undefined {
    const ki = item.ki;
    return ki.modMain === item.at.modified.main ? this.current(ki) : undefined;
  }

  /**
   * The key-value of a resolved key, from memory or the backend.
   * @throws CompactedError when the version was compacted meanwhile
   * @throws FaultError `QUORUMKV_INTERNAL` when the backend lacks it, `QUORUMKV_STORAGE_IO`
   */
  async load(item: IndexedKey, atRev: number): Promise<KeyValue> {
    const c = this.cached(item);
    if (c !== undefined) return c;
    const data = await this.backend.getRevision(revToBytes(item.at.modified));
    if (data === undefined) {
      if (atRev < this.compactRev) throw new CompactedError(this.compactRev);
      throw new FaultError(ErrorCode.INTERNAL, `mvcc: revision ${revisionId(item.at.modified)} missing from the backend`);
    }
    return decodeKeyValue(data);
  }

  /**
   * The current key-value of a key, if it exists.
   * @throws as {@link current}
   */
  currentOf(key: Uint8Array): KeyValue | undefined {
    const ki = this.index.get(toSkey(key));
    return ki === undefined ? undefined : this.current(ki);
  }

  /** Whether a key exists now (without reading its value). */
  exists(key: Uint8Array): boolean {
    return (this.index.get(toSkey(key))?.currentVersion() ?? 0) !== 0;
  }

  /** Opens a write transaction: its changes become the next revision. One at a time. */
  writeTxn(): WriteTxn {
    if (this.txnOpen) throw new FaultError(ErrorCode.INTERNAL, 'mvcc: nested write transaction');
    this.txnOpen = true;
    return new WriteTxn(this, this.currentRev);
  }

  /** Called by {@link WriteTxn.end}. */
  endTxn(rev: number, events: Event[], withPrevKv: boolean): void {
    this.txnOpen = false;
    if (events.length > 0) {
      this.currentRev = rev;
      this.written.push({ revision: rev, events, withPrevKv });
    }
  }

  /** Revisions written since the last call, with their events, in order. */
  drainRevisions(): RevisionEvents[] {
    const w = this.written;
    this.written = [];
    return w;
  }

  /** Compactions applied since the last call. */
  drainCompactions(): ScheduledCompaction[] {
    const c = this.compactions;
    this.compactions = [];
    return c;
  }

  /**
   * Checks a compaction at `rev` without changing anything.
   * @throws CompactedError when `rev` is at or below the previous compaction
   * @throws UsageError `QUORUMKV_FUTURE_REVISION` when `rev` is above the current revision
   */
  checkCompact(rev: number): void {
    if (rev <= this.compactRev) throw new CompactedError(this.compactRev);
    if (rev > this.currentRev) throw new UsageError(ErrorCode.FUTURE_REVISION, 'mvcc: required revision is a future revision');
  }

  /**
   * Compacts the key index at `rev` (the logical part); the physical removal
   * is scheduled (see {@link drainCompactions}).
   * @throws as {@link checkCompact}
   */
  compact(rev: number): ScheduledCompaction {
    this.checkCompact(rev);
    this.compactRev = rev;
    const keep = this.index.compact(rev);
    const c = { revision: rev, keep };
    this.compactions.push(c);
    return c;
  }

  /** Drops all state (before a restore). */
  reset(): void {
    this.index.clear();
    this.currentRev = 1;
    this.compactRev = -1;
    this.written = [];
    this.compactions = [];
    this.txnOpen = false;
    this.forgetUnwritten();
  }

  private forgetUnwritten(): void {
    this.unwrittenKeys = [];
    this.unwrittenRevs = [];
    this.unwrittenHead = 0;
  }
}

/**
 * A write transaction: every change gets revision `beginRev + 1` with
 * growing sub revisions (etcd's `storeTxnWrite`). Reads inside see its
 * earlier writes. Implements the lessor's {@link TxnDelete}.
 */
export class WriteTxn implements TxnDelete {
  readonly beginRev: number;
  private readonly core: KvCore;
  private readonly events: Event[] = [];
  /** The value of each key touched by the txn as it was before the txn (for events' prevKv). */
  private before: Map<string, KeyValue | undefined> | undefined;
  /** Whether the events carry `prevKv` (decided once for the whole txn). */
  private readonly withPrev: boolean;

  constructor(core: KvCore, beginRev: number) {
    this.core = core;
    this.beginRev = beginRev;
    this.withPrev = core.prevKvWanted();
  }

  /** Number of changes so far. */
  get changes(): number {
    return this.events.length;
  }

  /** The revision reads inside the txn see: `beginRev + 1` once it changed something. */
  readRev(): number {
    return this.events.length > 0 ? this.beginRev + 1 : this.beginRev;
  }

  /**
   * Puts a key; the lease must exist (checked by the caller). `read`: the
   * key's current value as the caller already read it, before this txn
   * touched the key (saves a second read for the event's prevKv).
   */
  put(key: Uint8Array, value: Uint8Array, lease: number, read?: { kv: KeyValue | undefined }): void {
    const core = this.core;
    const skey = toSkey(key);
    const ki = core.index.getOrCreate(skey);
    const version = ki.currentVersion();
    const oldLease = ki.lease;
    // an event's prevKv is the key at the previous revision (etcd reads it at
    // modRevision - 1); a creation has none
    const prior = this.withPrev ? this.priorValue(ki, read) : undefined;
    const rev: Revision = { main: this.beginRev + 1, sub: this.events.length };
    const val = toSkey(value);
    // the event's arrays are the store's own copies, never the caller's
    const kv = freezeKv({
      key: prior?.key ?? fromSkey(skey),
      createRevision: version !== 0 ? ki.currentCreated() : rev.main,
      modRevision: rev.main,
      version: version + 1,
      value: fromSkey(val),
      lease,
    });
    core.backend.putRevision(revToBytes(rev), encodeKeyValue(kv));
    ki.put(rev.main, rev.sub);
    ki.val = val;
    ki.lease = lease;
    if (core.evicts) core.noteUnwritten(ki, rev.main);
    const prevKv = kv.version === 1 ? undefined : prior;
    this.events.push(Object.freeze(prevKv !== undefined ? { type: 'PUT', kv, prevKv } : { type: 'PUT', kv }));
    if (oldLease !== lease) {
      if (oldLease !== 0) core.lessor.detach(oldLease, skey);
      if (lease !== 0) core.lessor.attach(lease, skey);
    }
  }

  /**
   * Deletes the keys of a range that exist now (`rangeEnd` as in requests).
   * @returns how many keys were deleted
   */
  deleteRange(key: Uint8Array, rangeEnd?: Uint8Array): number {
    return this.deleteIndexRange(toSkey(key), toIndexEnd(rangeEnd));
  }

  /** {@link deleteRange} with index-form bounds. */
  deleteIndexRange(start: string, end: IndexRangeEnd): number {
    const live = this.core.index.live(start, end);
    for (const ki of live) this.delete(ki);
    return live.length;
  }

  private delete(ki: KeyIndex): void {
    const core = this.core;
    const rev: Revision = { main: this.beginRev + 1, sub: this.events.length };
    const oldLease = ki.lease;
    const prevKv = this.withPrev ? this.priorValue(ki) : undefined;
    const key = prevKv?.key ?? fromSkey(ki.skey);
    core.backend.putRevision(revToBytes(rev, true), encodeTombstone(key));
    ki.tombstone(rev.main, rev.sub);
    ki.val = undefined;
    ki.lease = 0;
    const kv = freezeKv({ key, createRevision: 0, modRevision: rev.main, version: 0, value: EMPTY, lease: 0 });
    this.events.push(Object.freeze(prevKv !== undefined ? { type: 'DELETE', kv, prevKv } : { type: 'DELETE', kv }));
    if (oldLease !== 0) core.lessor.detach(oldLease, ki.skey);
  }

  /**
   * The value of `ki`'s key before this txn: read at its first touch in the
   * txn (before the change), remembered for later ones.
   */
  private priorValue(ki: KeyIndex, read?: { kv: KeyValue | undefined }): KeyValue | undefined {
    const before = (this.before ??= new Map());
    if (before.has(ki.skey)) return before.get(ki.skey);
    const current = read !== undefined ? read.kv : this.core.current(ki);
    before.set(ki.skey, current);
    return current;
  }

  /** Ends the txn: if it changed anything, the store moves to `beginRev + 1`. */
  end(): void {
    this.core.endTxn(this.beginRev + 1, this.events, this.withPrev);
  }
}

/**
 * Rebuilds the key index and current values from revision records given in
 * revision order (etcd's `restoreIntoIndex`): from the backend when the
 * store opens, or from a snapshot.
 */
export class IndexBuilder {
  private readonly core: KvCore;
  private maxRev = 1;
  private readonly keyToLease = new Map<string, number>();

  constructor(core: KvCore) {
    this.core = core;
  }

  /** Adds one record (backend key and value). */
  add(revKey: Uint8Array, value: Uint8Array): void {
    const rev = bytesToRev(revKey);
    const tomb = isTombstoneKey(revKey);
    const kv = decodeKeyValue(value);
    const skey = toSkey(kv.key);
    const index = this.core.index;
    let ki = index.get(skey);
    this.maxRev = Math.max(this.maxRev, rev.main);
    if (ki === undefined) {
      // the first record of a key whose older history was compacted away
      if (tomb) return;
      ki = index.getOrCreate(skey);
      ki.restore({ main: kv.createRevision, sub: 0 }, rev, kv.version);
    } else if (tomb) {
      ki.tombstone(rev.main, rev.sub);
    } else {
      ki.put(rev.main, rev.sub);
    }
    if (tomb) {
      ki.val = undefined;
      ki.lease = 0;
      this.keyToLease.delete(skey);
    } else {
      // the record is in the database already: read from there when it can be
      ki.val = this.core.evicts ? undefined : toSkey(kv.value);
      ki.lease = kv.lease;
      if (kv.lease !== 0) this.keyToLease.set(skey, kv.lease);
      else this.keyToLease.delete(skey);
    }
  }

  /**
   * Finishes: sets the current revision (at least `knownRev` and the
   * compaction revision) and attaches keys to their leases (leases must be
   * restored first; keys of unknown leases stay unattached, as etcd).
   */
  finish(knownRev: number): void {
    const core = this.core;
    core.currentRev = Math.max(this.maxRev, knownRev, core.compactRev, 1);
    for (const [skey, id] of this.keyToLease) {
      if (core.lessor.lookup(id) !== undefined) core.lessor.attach(id, skey);
    }
  }
}
