/**
 * The server's Raft {@link StateMachine}: the MVCC store plus the server's
 * own replicated state (the alarms and the corruption check's reports).
 *
 * Apply, per committed entry (see `server-entry.ts` for the kinds):
 * - a write request goes to the store, in batches (one backend write per
 *   group of entries, with the applied index); while a `CORRUPT` alarm is
 *   active every write fails with `QUORUMKV_CORRUPT`, while a `NOSPACE` alarm
 *   is active a write that grows the store fails with `QUORUMKV_NO_SPACE`
 *   (decided from the replicated alarms, so identically on every member);
 * - a lease expiry is a lease revoke, applied as a write, when its entry's
 *   term is the term of the leader that found the lease expired; from any
 *   later term it fails with `QUORUMKV_NOT_LEADER` and changes nothing;
 * - an alarm entry raises or clears alarms; a hash report may raise a
 *   `CORRUPT` alarm (see `corruption-check.ts`); a hash check makes this
 *   member hash its store at that exact index.
 *
 * The server state is saved under the `server` sublevel (`state` =
 * `withCrc(pack([index, alarms, reports]))`) once the store has written its
 * earlier entries ({@link MvccStore.written}: the store acknowledges writes
 * when applied in memory and writes them later), so after a crash it is
 * never ahead of the store by more than the entry that changed it (a later
 * write of one database is never durable without the earlier ones), and
 * that entry is not applied twice. Were it ahead by more, the entries
 * replayed after a crash would be judged against alarms that came after
 * them in the log, and this member's store would differ from the others'.
 *
 * Snapshot data: `withCrc(pack(['quorumkv/kv-state', 1, [alarms, reports], storeSnapshot]))`;
 * restore also takes a bare store snapshot (no server state).
 * @module
 */
import type { AbstractLevel } from 'abstract-level';
import { checkCrc, pack, unpack, withCrc } from '../codec/index.js';
import { ErrorCode, FaultError, type QuorumError } from '../errors.js';
import { checkStoreSnapshot, decodeWriteRequest, isTxnReadOnly, type ApplyEntry as StoreEntry, type ApplyResult, type HashResult, type MvccStore, type WriteRequest } from '../mvcc/index.js';
import type { ApplyEntry, StateMachine, StateMachineSnapshot } from '../node/index.js';
import { AlarmTable, growsStore, type AlarmMember } from './alarms.js';
import { HashReports } from './corruption-check.js';
import {
  EntryKind,
  decodeAlarmEntry,
  decodeHashReportEntry,
  decodeKeepAliveAnswer,
  decodeKeepAliveRequest,
  decodeLeaseExpiry,
  type KeepAliveAnswer,
  type KeepAliveRequest,
} from './server-entry.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = AbstractLevel<any, any, any>;

/** What one applied server entry returns to its proposer. */
export type EntryResult =
  | ApplyResult
  | { status: 'failed'; error: QuorumError }
  | { status: 'alarms'; alarms: AlarmMember[] };

/** Writes gathered for one store batch, and for each the result slot it fills (-1: set already). */
interface Chunk {
  items: StoreEntry[];
  at: number[];
}

/** Adds an entry to `chunk`: its write (null: the store only moves its applied index) and result slot. */
function gather(chunk: Chunk, index: number, request: WriteRequest | null, slot: number): void {
  chunk.items.push({ index, request });
  chunk.at.push(slot);
}

/** What the state machine asks of the member that runs it. */
export interface KvStateMachineHost {
  /** The voters at the current log position. */
  voters(): string[];
  /** A lease keep-alive request was applied (the leader's lessor renews and answers). */
  keepAliveApplied(request: KeepAliveRequest): void;
  /** The leader's answer to a keep-alive request was applied. */
  keepAliveAnswered(answer: KeepAliveAnswer): void;
  /** A hash check was applied at `index`; `hash` settles with this member's store hash at that index. */
  hashCheckApplied(index: number, hash: Promise<HashResult>): void;
  /** Alarms changed at `index`. */
  alarmsChanged(index: number, raised: AlarmMember[], cleared: AlarmMember[]): void;
  /** A group of write requests was applied by the store (in memory: its backend write may still be running). */
  storeBatchApplied(requests: (WriteRequest | null)[], results: ApplyResult[]): void;
}

const SNAPSHOT_TAG = 'quorumkv/kv-state';
const STATE_KEY = 'state';

/** The server state as saved and snapshotted: `[alarms, reports]`. */
type ServerState = [unknown, unknown];

/**
 * Wraps a store snapshot and a server state into the state machine's
 * snapshot format (used by restore from a backup: no alarms, no reports).
 */
export function encodeKvSnapshot(storeSnapshot: Uint8Array, alarms: AlarmMember[] = []): Uint8Array {
  const t = new AlarmTable();
  t.reset(alarms);
  return withCrc(pack([SNAPSHOT_TAG, 1, [t.toTuples(), []], storeSnapshot]));
}

function decodeKvSnapshot(data: Uint8Array): { server: ServerState | undefined; store: Uint8Array } {
  const t = unpack(checkCrc(data, 'kv snapshot', ErrorCode.CORRUPT_SNAPSHOT));
  if (!Array.isArray(t) || t[0] !== SNAPSHOT_TAG) return { server: undefined, store: data }; // a bare store snapshot
  if (t[1] !== 1 || !Array.isArray(t[2]) || t[2].length !== 2 || !(t[3] instanceof Uint8Array)) {
    throw new FaultError(ErrorCode.CORRUPT_SNAPSHOT, 'kv snapshot: malformed');
  }
  return { server: t[2] as ServerState, store: t[3] };
}

/** The MVCC store and the server state as a Raft {@link StateMachine}. */
export class KvStateMachine implements StateMachine<EntryResult> {
  /** The replicated alarms (read by the member to refuse requests early). */
  readonly alarms = new AlarmTable();
  private readonly reports = new HashReports();
  /** Index of the last server entry (alarm, report) whose effect is saved. */
  private serverIndex = 0;
  private host: KvStateMachineHost | undefined;
  private attached!: () => void;
  /** Why no host will be attached ({@link abandon}). */
  private abandoned: Error | undefined;
  /** Settles once a host is attached: apply waits for it (the voters decide hash reports). */
  private readonly hostReady = new Promise<void>((resolve) => {
    this.attached = resolve;
  });

  private constructor(
    private readonly store: MvccStore,
    private readonly serverDb: AnyDb,
    private readonly syncWrites: boolean,
  ) {}

  /**
   * Opens the state machine on `store` and loads the server state from `serverDb`.
   * @throws FaultError `QUORUMKV_CORRUPT_LOG` when the saved server state is corrupt, `QUORUMKV_STORAGE_IO`
   */
  static async open(store: MvccStore, serverDb: AnyDb, options: { sync?: boolean } = {}): Promise<KvStateMachine> {
    const sm = new KvStateMachine(store, serverDb, options.sync ?? false);
    let saved: Uint8Array | undefined;
    try {
      saved = (await serverDb.get(STATE_KEY, { valueEncoding: 'view' })) ?? undefined;
    } catch (err) {
      throw new FaultError(ErrorCode.STORAGE_IO, `cannot read the server state: ${(err as Error).message}`, { cause: err });
    }
    if (saved !== undefined) {
      try {
        const t = unpack(checkCrc(saved, 'server state', ErrorCode.CORRUPT_LOG)) as unknown[];
        if (!Array.isArray(t) || typeof t[0] !== 'number') throw new TypeError('not a server state');
        sm.serverIndex = t[0];
        sm.setServerState([t[1], t[2]]);
      } catch (err) {
        if (err instanceof FaultError) throw err;
        throw new FaultError(ErrorCode.CORRUPT_LOG, `server state: ${(err as Error).message}`, { cause: err });
      }
    }
    return sm;
  }

  private setServerState(s: ServerState): void {
    this.alarms.reset(AlarmTable.fromTuples(s[0]));
    this.reports.reset(s[1]);
  }

  private serverState(): ServerState {
    return [this.alarms.toTuples(), this.reports.toTuples()];
  }

  /**
   * Saves the server state as of entry `index`, once the store has written
   * the entries before it (see the module doc: never ahead of the store by
   * more than that entry).
   */
  private async saveServerState(index: number): Promise<void> {
    await this.store.written();
    this.serverIndex = index;
    const bytes = withCrc(pack([index, ...this.serverState()]));
    try {
      await this.serverDb.put(STATE_KEY, bytes, { valueEncoding: 'view', ...(this.syncWrites ? { sync: true } : {}) });
    } catch (err) {
      throw new FaultError(ErrorCode.STORAGE_IO, `cannot save the server state: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Attaches the member that runs this state machine; entries are applied only once it is. */
  attach(host: KvStateMachineHost): void {
    this.host = host;
    this.attached();
  }

  /**
   * No member will be attached (its open failed after the Raft node
   * started): an apply waiting for one fails with `err`, so that closing the
   * Raft node, which waits for the apply in progress, ends.
   */
  abandon(err: Error): void {
    if (this.host !== undefined) return;
    this.abandoned = err;
    this.attached();
  }

  appliedIndex(): number {
    return this.store.appliedIndex();
  }

  /**
   * Why a write would be refused at this log position, if it would. A
   * read-only txn is a read, which a `CORRUPT` alarm does not refuse here
   * (etcd serves it as a range, not through its corrupt applier): the
   * member the alarm names refuses it itself.
   */
  refusal(req: WriteRequest): FaultError | undefined {
    if (this.alarms.has('CORRUPT') && !('txn' in req && isTxnReadOnly(req.txn))) {
      return new FaultError(ErrorCode.CORRUPT, 'etcdserver: corrupt cluster (a CORRUPT alarm is active)');
    }
    if (this.alarms.has('NOSPACE') && growsStore(req)) return new FaultError(ErrorCode.NO_SPACE, 'etcdserver: mvcc: database space exceeded');
    return undefined;
  }

  async apply(entries: ApplyEntry[]): Promise<EntryResult[]> {
    if (this.host === undefined) await this.hostReady;
    if (this.abandoned !== undefined) throw this.abandoned;
    const host = this.host!;
    const out: EntryResult[] = new Array(entries.length);
    // the writes gathered for the store; `at`: for each, the result slot it
    // fills (-1: the result is set already). The rare server entries go to
    // methods of their own, so that this frame (allocated at each call and
    // each await) stays small.
    const chunk: Chunk = { items: [], at: [] };
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (e.kind !== 'normal' || e.data.length === 0) {
        gather(chunk, e.index, null, i);
        continue;
      }
      const kind = e.data[0]!;
      if (kind === EntryKind.WRITE || kind === EntryKind.LEASE_EXPIRY) {
        let req: WriteRequest;
        let refused: FaultError | undefined;
        if (kind === EntryKind.WRITE) {
          req = decodeWriteRequest(e.data.subarray(1));
          refused = this.refusal(req);
        } else {
          // a lease revoke, in the store batch like a write, if its term is the entry's
          const x = decodeLeaseExpiry(e.data.subarray(1));
          req = { leaseRevoke: { id: x.lease } };
          refused =
            x.term !== e.term ? new FaultError(ErrorCode.NOT_LEADER, `lease ${x.lease} was found expired by the leader of term ${x.term}, not of this entry's term ${e.term}: skipped`) : this.refusal(req);
        }
        if (refused !== undefined) {
          out[i] = { status: 'failed', error: refused };
          gather(chunk, e.index, null, -1);
        } else {
          gather(chunk, e.index, req, i);
        }
        continue;
      }
      await this.applyChunk(chunk, out, host);
      out[i] = await this.applyServerEntry(e, kind, host);
      gather(chunk, e.index, null, -1);
    }
    await this.applyChunk(chunk, out, host);
    return out;
  }

  /** Applies the gathered writes in one store batch and empties `chunk`. */
  private async applyChunk(chunk: Chunk, out: EntryResult[], host: KvStateMachineHost): Promise<void> {
    if (chunk.items.length === 0) return;
    const items = chunk.items;
    const at = chunk.at;
    chunk.items = [];
    chunk.at = [];
    // answered once applied in memory: the Raft log holds the entries
    // until the store has written them (MvccStore.applyBatch)
    const results = await this.store.applyBatch(items, { acknowledge: 'applied' });
    for (let i = 0; i < results.length; i++) if (at[i]! >= 0) out[at[i]!] = results[i]!;
    host.storeBatchApplied(
      items.map((e) => e.request),
      results,
    );
  }

  /** Applies a server entry (not a write); returns its result. */
  private async applyServerEntry(e: ApplyEntry, kind: number, host: KvStateMachineHost): Promise<EntryResult> {
    const payload = e.data.subarray(1);
    if (kind === EntryKind.KEEPALIVE) {
      host.keepAliveApplied(decodeKeepAliveRequest(payload));
      return { status: 'noop' };
    }
    if (kind === EntryKind.KEEPALIVE_ANSWER) {
      host.keepAliveAnswered(decodeKeepAliveAnswer(payload));
      return { status: 'noop' };
    }
    if (kind === EntryKind.ALARM) {
      const a = decodeAlarmEntry(payload);
      if (e.index > this.serverIndex) {
        const raised: AlarmMember[] = [];
        let cleared: AlarmMember[] = [];
        if (a.action === 'activate') {
          if (this.alarms.activate({ memberId: a.memberId, alarm: a.alarm! })) raised.push({ memberId: a.memberId, alarm: a.alarm! });
        } else {
          const filter: { alarm?: typeof a.alarm; memberId?: string } = {};
          if (a.alarm !== undefined) filter.alarm = a.alarm;
          if (a.memberId !== '') filter.memberId = a.memberId;
          cleared = this.alarms.deactivate(filter);
        }
        await this.saveServerState(e.index);
        if (raised.length > 0 || cleared.length > 0) host.alarmsChanged(e.index, raised, cleared);
      }
      return { status: 'alarms', alarms: this.alarms.list() };
    }
    if (kind === EntryKind.HASH_CHECK) {
      // queued on the store before any later entry: the hash of exactly this point
      const hash = this.store.hash();
      hash.catch(() => undefined);
      host.hashCheckApplied(e.index, hash);
      return { status: 'noop' };
    }
    if (kind === EntryKind.HASH_REPORT) {
      const r = decodeHashReportEntry(payload);
      if (e.index > this.serverIndex) {
        const raised: AlarmMember[] = [];
        for (const a of this.reports.apply(r, host.voters())) if (this.alarms.activate(a)) raised.push(a);
        await this.saveServerState(e.index);
        if (raised.length > 0) host.alarmsChanged(e.index, raised, []);
      }
      return { status: 'noop' };
    }
    throw new FaultError(ErrorCode.MALFORMED_FRAME, `unknown server entry kind ${kind} at index ${e.index}`);
  }

  async snapshot(): Promise<Uint8Array> {
    return (await this.beginSnapshot())();
  }

  /** {@inheritDoc StateMachine.beginSnapshot} */
  async beginSnapshot(): Promise<() => Promise<Uint8Array>> {
    // no apply runs meanwhile (the node's contract): server state and store agree
    const server = this.serverState();
    const store = await this.store.beginSnapshot();
    return async () => withCrc(pack([SNAPSHOT_TAG, 1, server, await store()]));
  }

  /**
   * Makes everything applied durable (the store's queued writes, then one
   * synced write to its database, which also carries the server state):
   * the node then keeps only a record of its periodic snapshots and asks
   * {@link snapshot} only for a lagging follower.
   */
  async sync(): Promise<void> {
    await this.store.sync();
  }

  async restore(s: StateMachineSnapshot): Promise<void> {
    const { server, store } = decodeKvSnapshot(s.data);
    // the store's part checked whole first: the server state saved below
    // would otherwise be replaced by a snapshot whose store part is refused
    checkStoreSnapshot(store);
    const before = this.alarms.list();
    try {
      this.setServerState(server ?? [[], []]);
    } catch (err) {
      throw new FaultError(ErrorCode.CORRUPT_SNAPSHOT, `kv snapshot: ${(err as Error).message}`, { cause: err });
    }
    // a watch from now created from here on starts after the restored
    // revision, as one created once the store's restore has begun does:
    // not at the revision the store has until then, whose history the
    // snapshot replaces (and may have compacted past)
    this.store.holdWatchesFromNow();
    try {
      // saved first: a crash before the store is restored restores the same snapshot again on restart
      await this.saveServerState(s.index);
      await this.store.restore(store);
    } finally {
      this.store.releaseWatchesFromNow();
    }
    // the alarms the snapshot brings or drops are a change like an alarm
    // entry's: the member hears of it (its `alarm` event)
    const after = this.alarms.list();
    const key = (a: AlarmMember): string => `${a.alarm}\u0000${a.memberId}`;
    const had = new Set(before.map(key));
    const has = new Set(after.map(key));
    const raised = after.filter((a) => !had.has(key(a)));
    const cleared = before.filter((a) => !has.has(key(a)));
    if (this.host !== undefined && (raised.length > 0 || cleared.length > 0)) this.host.alarmsChanged(s.index, raised, cleared);
  }
}
