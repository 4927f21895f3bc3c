/**
 * `SimClient`: a `KV` bound to one member of a simulation that records every
 * operation into the simulation's history, with virtual invocation and
 * return times and the outcome the client saw.
 * @module
 */
import { ErrorCode, FaultError, UsageError, isQuorumError } from '../../errors.js';
import type {
  CompactionResponse,
  DeleteRangeResponse,
  KeyValue,
  LeaseGrantResponse,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseRevokeResponse,
  LeaseTimeToLiveResponse,
  PutResponse,
  RangeResponse,
  TxnResponse,
} from '../../mvccpb/index.js';
import {
  watchRequest,
  type BytesLike,
  type DeleteOptions,
  type KV,
  type KvNode,
  type PutOptions,
  type RangeInput,
  type RangeOptions,
  type TxnInput,
  type Watch,
  type WatchOptions,
} from '../../server/index.js';
import type { HistoryRecorder, OpHandle } from '../history.js';
import { keyFromBytes, type KeyRange as ModelKeyRange } from '../key-range.js';
import { describeKvOperation } from '../models/kv.js';
import type { KvInput, KvOutput } from '../models/kv-types.js';
import { deleteCall, putCall, rangeCall, txnCall, type ModelCall } from './kv-convert.js';
import type { NodeGate } from './node-gate.js';
import { RecordedWatch, type MutableWatchStream } from './recorded-watch.js';
import { Watcher } from '../../mvcc/watcher.js';
import { RANGE_OPTION_KEYS, optionsWith } from '../../server/requests.js';

/** A live member as a client reaches it. */
export interface ClientTarget {
  node: KvNode;
  lifetime: number;
  gate: NodeGate;
}

/** One lease operation a client made (leases are outside the KV model; see `Simulation.checkLinearizable`). */
export interface LeaseRecord {
  /** Which lease operation: `leaseGrant` or `leaseRevoke`. */
  kind: 'grant' | 'revoke';
  /** The lease id (for a grant: the granted id, when it returned). */
  id: number | undefined;
  /**
   * How it ended: `ok` (answered), `fail` (surely not applied), or
   * `unknown` (may or may not have been applied: a timeout, or the member
   * crashed before answering; also while the call is still under way).
   */
  status: 'ok' | 'fail' | 'unknown';
  /** History-clock times (virtual ms, refined), as in the history. */
  callTime: number;
  /** History-clock time of the answer; `Infinity` while `status` is `unknown`. */
  returnTime: number;
  /** Header revision of the response (revoke: the revision that deleted the lease's keys, if any). */
  revision: number | undefined;
}

/** What a {@link SimClient} needs from its simulation. */
export interface SimClientHost {
  readonly recorder: HistoryRecorder<KvInput, KvOutput>;
  /** The history clock: virtual ms, refined so that each reading is later than the previous one. */
  historyNow(): number;
  trace(text: string): void;
  /** The member's current process, or `undefined` when it is down. */
  target(memberId: string): ClientTarget | undefined;
  /** A write the KV model cannot express touched these ranges. */
  unmodeledWrite(ranges: ModelKeyRange[]): void;
  lease(record: LeaseRecord): void;
  watchOpened(record: MutableWatchStream): void;
}

/** Options of `Simulation.client`. */
export interface SimClientOptions {
  /** Name in the history and the trace. Default `c<n>@<member>`. */
  name?: string;
  /**
   * Wraps the member's `KV` before each call: a hook to inject client-side
   * faults or test a client library between the recorder and the member.
   * The history records what the caller asked and what the wrapper
   * returned. Default: the member itself.
   */
  wrap?: (member: KvNode) => KV;
}

/**
 * Whether a failed operation certainly did not take effect: a `UsageError`
 * (bad input, or a state check on apply that changed nothing, such as an
 * unknown lease), a proposal Raft refused before appending it
 * (`QUORUMKV_PROPOSAL_DROPPED`), or `QUORUMKV_NO_LEADER` (a `KvNode` that
 * has known no leader for two election timeouts refuses a write before
 * proposing it). Any other failure (timeout, closed member) leaves the
 * outcome unknown: a proposal may still commit after its caller gave up.
 */
export function definitelyNotApplied(err: unknown): boolean {
  return err instanceof UsageError || isQuorumError(err, ErrorCode.PROPOSAL_DROPPED) || isQuorumError(err, ErrorCode.NO_LEADER);
}

type Kind = 'read' | 'write';

/**
 * A client of one simulated member, implementing `KV` (plus `compact`).
 *
 * Every call goes to the member's current process:
 * - when the member is down, the call fails at once with
 *   `QUORUMKV_NODE_CLOSED` (recorded as failed: nothing was sent);
 * - when it is paused, the call waits for it to resume (the wait counts
 *   in the operation's latency);
 * - when it crashes before answering, the call fails with
 *   `QUORUMKV_NODE_CLOSED` even if the process computed an answer
 *   (recorded as unknown for a write, failed for a read).
 *
 * Recorded in the history (for `Simulation.checkLinearizable`): linearizable
 * gets and ranges without options, puts, single-key deletes, and txns of
 * value/version/createRevision/modRevision compares and single-key
 * get/put/delete operations. Outcome: `ok` with the output; `fail` for
 * reads that failed and writes that certainly did not apply
 * ({@link definitelyNotApplied}); `unknown` for other failed writes.
 * Serializable or historical reads are not recorded (they are not
 * linearizable by design). Writes the model cannot express (range
 * deletes, nested txns, lease compares, `ignoreValue`) are not recorded
 * either; the keys they touch are left out of the check.
 *
 * Calls resolve only while virtual time moves: `await sim.drive(client.put(...))`,
 * or run them concurrently with `sim.run(ms)`.
 */
export class SimClient implements KV {
  /** The member this client talks to. */
  readonly memberId: string;
  /** Its name in the history and trace. */
  readonly name: string;

  constructor(
    private readonly host: SimClientHost,
    memberId: string,
    name: string,
    private readonly wrap: ((member: KvNode) => KV) | undefined,
    private readonly rng?: () => number,
  ) {
    this.memberId = memberId;
    this.name = name;
  }

  /**
   * {@inheritDoc KV.random}
   * Drawn from the simulation's seed (a stream of this client's own), so
   * that the keys recipes create through it are the same on every replay.
   */
  random(): number {
    return this.rng === undefined ? Math.random() : this.rng();
  }

  /** {@inheritDoc KV.put} */
  async put(key: BytesLike, value: BytesLike, options: PutOptions = {}): Promise<PutResponse> {
    return this.record(putCall(key, value, options, 'modeled'), (kv) => kv.put(key, value, options));
  }

  /** {@inheritDoc KV.get} */
  async get(key: BytesLike, options: RangeOptions = {}): Promise<KeyValue | undefined> {
    // as KvNode.get: a range's fields (prefix, rangeEnd) would read a range
    const res = await this.range({ ...optionsWith(options, 'get options', RANGE_OPTION_KEYS), key });
    return res.kvs[0];
  }

  /** {@inheritDoc KV.range} */
  async range(input: RangeInput): Promise<RangeResponse> {
    return this.record(rangeCall(input), (kv) => kv.range(input));
  }

  /** {@inheritDoc KV.delete} */
  async delete(key: BytesLike, options: DeleteOptions = {}): Promise<DeleteRangeResponse> {
    return this.record(deleteCall(key, options), (kv) => kv.delete(key, options));
  }

  /** {@inheritDoc KV.txn} */
  async txn(input: TxnInput): Promise<TxnResponse> {
    return this.record(txnCall(input, 'modeled'), (kv) => kv.txn(input));
  }

  /**
   * {@inheritDoc KV.watch}
   * The watch is recorded for `Simulation.checkWatches`. It ends when the
   * member crashes.
   * @throws FaultError `QUORUMKV_NODE_CLOSED` when the member is down
   */
  watch(key: BytesLike, options: WatchOptions = {}): Watch {
    const req = watchRequest(key, options);
    const t = this.host.target(this.memberId);
    if (t === undefined) throw new FaultError(ErrorCode.NODE_CLOSED, `member ${this.memberId} is down`);
    // as the events' keys: bytes that are not UTF-8 escaped, exact in etcd's order
    const record: MutableWatchStream = {
      name: `${this.name}/${this.host.recorder.size}`,
      key: keyFromBytes(req.key),
      rangeEnd: req.rangeEnd === undefined || req.rangeEnd.length === 0 ? undefined : keyFromBytes(req.rangeEnd),
      startRevision: req.startRevision,
      prevKv: req.prevKv === true,
      filters: req.filters,
      responses: [],
    };
    const inner = this.kvOf(t).watch(key, options);
    // A watch "from now" is owed every event after its creation: the
    // member's store creates it at once, from the first revision it has not
    // yet handed to watchers. Taken as the start, the check covers the
    // events before the first one received, and those a first progress
    // notification claims. A wrapper may create its watch later: its
    // start stays unknown; so does that of a watch the member holds back
    // until it has caught up after a restart (it starts later, after the
    // revision the member has then).
    if ((req.startRevision === undefined || req.startRevision <= 0) && inner instanceof Watcher && inner.state !== 'waiting') record.startRevision = inner.minRev;
    const w = new RecordedWatch(inner, record);
    record.name = `${this.name}/w${w.id}@${this.memberId}`;
    this.host.watchOpened(record);
    this.host.trace(`${this.name} watch ${record.name} from ${req.startRevision ?? 0}`);
    return w;
  }

  /** {@inheritDoc KV.leaseGrant} */
  leaseGrant(ttlSeconds: number, options: { id?: number } = {}): Promise<LeaseGrantResponse> {
    return this.leaseCall('grant', options.id, `leaseGrant(${ttlSeconds})`, (kv) => kv.leaseGrant(ttlSeconds, options));
  }

  /** {@inheritDoc KV.leaseRevoke} */
  leaseRevoke(id: number): Promise<LeaseRevokeResponse> {
    return this.leaseCall('revoke', id, `leaseRevoke(${id})`, (kv) => kv.leaseRevoke(id));
  }

  /** {@inheritDoc KV.leaseKeepAlive} */
  leaseKeepAlive(id: number): Promise<LeaseKeepAliveResponse> {
    return this.call('write', `leaseKeepAlive(${id})`, undefined, [], (kv) => kv.leaseKeepAlive(id), () => ({}));
  }

  /** {@inheritDoc KV.leaseTimeToLive} */
  leaseTimeToLive(id: number, options: { keys?: boolean } = {}): Promise<LeaseTimeToLiveResponse> {
    return this.call('read', `leaseTimeToLive(${id})`, undefined, [], (kv) => kv.leaseTimeToLive(id, options), () => ({}));
  }

  /** {@inheritDoc KV.leases} */
  leases(): Promise<LeaseLeasesResponse> {
    return this.call('read', 'leases()', undefined, [], (kv) => kv.leases(), () => ({}));
  }

  /**
   * Compacts the history below `revision` (`KvNode.compact`). Compaction
   * changes no key, so it is outside the KV model.
   */
  compact(revision: number, options: { physical?: boolean } = {}): Promise<CompactionResponse> {
    return this.call('write', `compact(${revision})`, undefined, [], (_kv, node) => node.compact(revision, options), () => ({}));
  }

  private kvOf(t: ClientTarget): KV {
    return this.wrap === undefined ? t.node : this.wrap(t.node);
  }

  private async leaseCall<T extends { header: { revision: number }; id?: number }>(
    kind: 'grant' | 'revoke',
    id: number | undefined,
    label: string,
    run: (kv: KV) => Promise<T>,
  ): Promise<T> {
    const rec: LeaseRecord = { kind, id, status: 'unknown', callTime: this.host.historyNow(), returnTime: Infinity, revision: undefined };
    this.host.lease(rec);
    const res = await this.call('write', label, undefined, [], run, () => ({}), (status) => {
      rec.status = status;
      if (status !== 'unknown') rec.returnTime = this.host.historyNow();
    });
    rec.revision = res.header.revision;
    if (res.id !== undefined) rec.id = res.id;
    return res;
  }

  private record<T>(c: ModelCall<T>, run: (kv: KV) => Promise<T>): Promise<T> {
    return this.call(c.kind, c.label, c.input, c.ranges, run, c.output);
  }

  private async call<T>(
    kind: Kind,
    label: string,
    input: KvInput | undefined,
    ranges: ModelKeyRange[],
    run: (kv: KV, node: KvNode) => Promise<T>,
    output: (res: T) => KvOutput,
    outcome?: (status: 'ok' | 'fail' | 'unknown') => void,
  ): Promise<T> {
    const host = this.host;
    const op: OpHandle<KvOutput> | undefined = input !== undefined ? host.recorder.invoke(this.name, input) : undefined;
    const tag = op !== undefined ? `#${op.id}` : '-';
    if (input === undefined && kind === 'write' && ranges.length > 0) host.unmodeledWrite(ranges);
    host.trace(`${this.name} call ${tag} ${input !== undefined ? describeKvOperation(input, undefined).replace(/ → \?$/, '') : label}`);
    const fail = (text: string): void => {
      op?.fail();
      outcome?.('fail');
      host.trace(`${this.name} fail ${tag} ${text}`);
    };
    const unknown = (text: string): void => {
      op?.unknown();
      outcome?.('unknown');
      host.trace(`${this.name} unknown ${tag} ${text}`);
    };
    let t = host.target(this.memberId);
    if (t !== undefined && t.gate.isPaused) {
      await t.gate.whenRunning();
      t = host.target(this.memberId);
    }
    if (t === undefined) {
      fail('member down');
      throw new FaultError(ErrorCode.NODE_CLOSED, `member ${this.memberId} is down`);
    }
    const lifetime = t.lifetime;
    let res: T;
    try {
      res = await run(this.kvOf(t), t.node);
    } catch (err) {
      const code = isQuorumError(err) ? err.code : (err as Error).message;
      if (kind === 'read' || definitelyNotApplied(err)) fail(code);
      else unknown(code);
      throw err;
    }
    const now = host.target(this.memberId);
    if (now === undefined || now.lifetime !== lifetime) {
      // the process died before the answer could leave it
      if (kind === 'read') fail('member crashed');
      else unknown('member crashed');
      throw new FaultError(ErrorCode.NODE_CLOSED, `member ${this.memberId} crashed before answering`);
    }
    outcome?.('ok');
    if (op !== undefined) {
      const out = output(res);
      op.ok(out);
      host.trace(`${this.name} ok ${tag} ${describeKvOperation(input!, out)}`);
    } else {
      host.trace(`${this.name} ok ${tag} ${label}`);
    }
    return res;
  }
}
