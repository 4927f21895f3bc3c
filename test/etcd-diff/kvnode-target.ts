// KvNode as a DiffTarget: the full member (the MVCC store replicated by
// Raft, linearizable reads through ReadIndex, leases expired by the leader,
// keep-alives through the log) driven through its public KV API. Two shapes:
// - `kvnode-1`: a single member on classic-level in a temporary directory
//   (on /dev/shm when there is one), with a MemoryNetwork transport; before
//   1% of the operations it is closed and opened again from its data, and
//   its watches are resumed from the next revision (as a client does after
//   a reconnect): their logs must still match etcd's uninterrupted watches;
// - `kvnode-3`: three members in one process on a MemoryNetwork and
//   memory-level; each operation goes to a member chosen by a PRNG seeded
//   from the sequence's seed, so followers forward writes and serve
//   linearizable reads, lease queries and watches. One follower lags (what
//   the others send it takes 1-2 ms), so its reads really wait for the
//   read index; before 3% of the operations leadership moves to another
//   member, and before 2% a member stops (leadership moved away first, as
//   etcd does on a graceful stop) for 1-20 operations, then starts again
//   from its memory-level data and catches up from the log or, when the
//   leader has compacted its log meanwhile, from the leader's snapshot;
//   its watches are resumed on another member at once, as a client fails
//   over.
// Members take a Raft snapshot every 20 applied entries and keep 2 entries
// behind it.
//
// A fresh member (or cluster) per sequence, so revisions are the sequence's
// own (1 is the first one) and keys need no namespace. Time is the real
// clock, as for etcd and the store target: lease TTLs (>= 300 s) count down
// in real time on both sides and never expire during a sequence; the
// default Raft timing (100 ms ticks, 10-tick election timeout) gives etcd's
// minimum lease TTL (2 s). The first leader is elected at once (a seeded
// member campaigns) instead of after an election timeout.
//
// Normalized, as documented in docs/mvcc.md ("Where the store differs from
// etcd"): a leader elected since a lease was granted (a leadership move, a
// restart) restarted its TTL with an election timeout to spare (the answer
// carries `ttlBound: 'restarted'`), on the leader or asked by a follower;
// the comparison accepts it within that bound (etcd-diff.test.ts, alignTtl).
//
// A watch is served from what its member has applied; a follower may not
// have applied a write another member acknowledged a moment ago (etcd
// members behave alike). Before creating a watch and before reading what a
// watch delivered, the target makes a linearizable read on the watch's
// member, as a client that needs the watch to follow its own writes does.
// So it does before a txn that the member serves alone, as etcd does
// (`isTxnSerializable`: serializable ranges only; etcd also takes a txn of
// no operation so, which KvNode serves as a linearizable read).
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryLevel } from 'memory-level';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';
import { isQuorumError } from '../../src/errors.js';
import type {
  CompactionRequest,
  DeleteRangeRequest,
  PutRequest,
  RangeRequest,
  RequestOp,
  TxnRequest,
  WatchCreateRequest,
} from '../../src/mvccpb/index.js';
import { prefixEnd } from '../../src/mvccpb/index.js';
import { isTxnSerializable } from '../../src/mvcc/index.js';
import { KvNode, type RequestOpInput, type TxnInput, type Watch } from '../../src/server/index.js';
import { MemoryNetwork } from '../../src/transport/index.js';
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
import { removeOnExit } from './exit-cleanup.js';
import type { GenState } from './generator.js';
import { normDelete, normEvent, normPut, normRange, normTxn } from './normalize.js';


/** Percentage of the operations on a cluster that move leadership first. */
const TRANSFER_PCT = 3;

/** Percentage of the operations on a single member that restart it first. */
const RESTART_PCT = 1;

/** Percentage of the operations on a cluster that stop a member first (for 1-20 operations). */
const STOP_PCT = 2;

/**
 * Each member takes a Raft snapshot of its store every 20 applied entries
 * and keeps only 2 entries behind it, so a member stopped for a few
 * operations is often brought back by the leader's snapshot.
 */
const SNAPSHOTS = { snapshotEntries: 20, snapshotCatchUpEntries: 2 };

/** Which KvNode shape to run. */
export type KvNodeShape = 'kvnode-1' | 'kvnode-3';

interface WatchState {
  member: KvNode;
  /** The watch delivering into `log` now (a restart replaces it; none while restarting). */
  w: Watch | undefined;
  /** The request as sent (mapped), to resume it after a restart. */
  req: WatchCreateRequest;
  log: NWatchLog;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits (polling, bounded) until `cond` holds; `state` describes what was seen on a timeout. */
async function until(cond: () => boolean, ms: number, what: string, state: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what} (${state()})`);
    await sleep(2);
  }
}

/** Raft state of members, for timeouts. */
function raftState(nodes: KvNode[]): string {
  return nodes
    .map((n) => {
      const st = n.raft.status();
      return `${n.id}: ${st.role} in term ${st.term}, leader '${st.leader}', commit ${st.commit}, applied ${st.applied}`;
    })
    .join('; ');
}

/** A seeded uniform [0, 1) source (election jitter of one member). */
function seededRandom(seed: number): () => number {
  const rng = xoroshiro128plus(seed);
  return () => uniformInt(rng, 0, 2 ** 30 - 1) / 2 ** 30;
}

/**
 * A key range as a KV API user writes it: a range end that is the prefix
 * end of the key becomes `prefix: true` (etcd's `WithPrefix`), so the API's
 * own translation is exercised too.
 */
function asInput<T extends { key: Uint8Array; rangeEnd?: Uint8Array }>(r: T): Omit<T, 'rangeEnd'> & { rangeEnd?: Uint8Array; prefix?: boolean } {
  const { rangeEnd, ...rest } = r;
  if (rangeEnd === undefined || rangeEnd.length === 0 || r.key.length === 0) return r;
  const p = prefixEnd(r.key);
  if (p.length !== rangeEnd.length || p.some((b, i) => b !== rangeEnd[i])) return r;
  return { ...rest, prefix: true };
}

function txnInput(t: TxnRequest): TxnInput {
  const ops = (list: RequestOp[] | undefined): RequestOpInput[] =>
    (list ?? []).map((op) => {
      if ('requestRange' in op) return { range: asInput(op.requestRange) };
      if ('requestPut' in op) return { put: op.requestPut };
      if ('requestDeleteRange' in op) return { deleteRange: asInput(op.requestDeleteRange) };
      return { txn: txnInput(op.requestTxn) };
    });
  return { compare: (t.compare ?? []).map(asInput), success: ops(t.success), failure: ops(t.failure) };
}

export class KvNodeTarget implements ReferenceTarget {
  readonly name: KvNodeShape;
  private nodes: KvNode[] = [];
  private dbs: MemoryLevel<Uint8Array, Uint8Array>[] = [];
  private dir: string | undefined;
  private forgetDir: (() => void) | undefined;
  private pick: RandomGenerator = xoroshiro128plus(0);
  private chosen: KvNode | undefined;
  /** The stopped member, the revision it stopped at, for how many more operations, and the watches to resume when it is back (single member). */
  private down: { index: number; rev: number; ops: number; watches: WatchState[] } | undefined;
  private net: MemoryNetwork | undefined;
  private lagging = '';
  /** Over every sequence: operations by the role of the member that served them, follower TTL answers and watches, leadership moves, stops. */
  readonly served = { leader: 0, follower: 0, followerTtl: 0, followerWatches: 0, transfers: 0, restarts: 0, snapshotsInstalled: 0 };
  /** Leases that existed when a new leader took over in this sequence (a move, a restart): their TTL restarted. */
  private restarted = new Set<number>();
  private leases = new LeaseMap(7_000_000_000_000);
  private watches: WatchState[] = [];
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

  constructor(shape: KvNodeShape) {
    this.name = shape;
  }

  /**
   * Starts a fresh member or cluster for sequence `seq`; `seed` (the
   * sequence's seed) decides which member campaigns first, which follower
   * lags, and everything `next` draws.
   */
  async begin(_seq: number, seed: number): Promise<void> {
    this.pick = xoroshiro128plus(seed ^ 0x5bd1e995);
    this.leases.clear();
    this.restarted.clear();
    this.watches = [];
    this.dbs = [];
    this.nodes = [];
    this.chosen = undefined;
    this.down = undefined;
    const ids = this.name === 'kvnode-1' ? ['m1'] : ['m1', 'm2', 'm3'];
    const net = new MemoryNetwork({ seed });
    this.net = net;
    if (this.name === 'kvnode-1') {
      const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
      this.dir = await mkdtemp(join(base, 'quorumkv-etcd-diff-kvnode-'));
      this.forgetDir = removeOnExit(this.dir);
      this.nodes.push(this.watchSnapshots(await KvNode.open({ id: 'm1', members: ids, transport: net.transport('m1'), dataDir: this.dir, ...SNAPSHOTS, random: seededRandom(seed) })));
    } else {
      for (const [i, id] of ids.entries()) {
        const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
        this.dbs.push(db);
        this.nodes.push(this.watchSnapshots(await KvNode.open({ id, members: ids, transport: net.transport(id), db, ...SNAPSHOTS, random: seededRandom(seed * 31 + i) })));
      }
    }
    // a seeded member campaigns at once; on a loaded machine another one's
    // election timeout may fire first and win instead
    const first = this.nodes[uniformInt(this.pick, 0, this.nodes.length - 1)]!;
    first.raft.campaign();
    await until(
      () => first.raft.leader !== '' && this.nodes.every((n) => n.raft.leader === first.raft.leader),
      10_000,
      'a leader known to every member',
      () => raftState(this.nodes),
    );
    if (this.nodes.length > 1) {
      // one follower lags: what the others send it takes 1-2 ms, so it
      // learns of commits later than the others and its reads must wait for
      // the read index (the other follower keeps the quorum fast)
      const followers = this.nodes.filter((n) => !n.raft.isLeader);
      this.lagging = followers[uniformInt(this.pick, 0, followers.length - 1)]!.id;
      for (const n of this.nodes) if (n.id !== this.lagging) net.setDelay({ minMs: 1, maxMs: 2 }, { from: n.id, to: this.lagging });
    }
  }

  /**
   * Before each operation: sometimes restarts the single member, or stops a
   * cluster member (or starts the stopped one again) and moves leadership;
   * then draws the running member that serves the operation (every call of
   * it: both halves of a grant-and-revoke). Returns what it did.
   */
  async next(): Promise<string> {
    if (this.nodes.length === 1) {
      this.chosen = this.nodes[0]!;
      this.served.leader++;
      if (uniformInt(this.pick, 0, 99) >= RESTART_PCT) return this.chosen.id;
      const rev = await this.stop(0, 0);
      await this.start();
      this.chosen = this.nodes[0]!;
      return `${this.chosen.id} after its restart at revision ${rev}`;
    }
    const notes: string[] = [];
    if (this.down !== undefined) {
      if (--this.down.ops <= 0) {
        const id = this.nodes[this.down.index]!.id;
        await this.start();
        notes.push(`${id} started again`);
      }
    } else if (uniformInt(this.pick, 0, 99) < STOP_PCT) {
      const index = uniformInt(this.pick, 0, this.nodes.length - 1);
      const ops = uniformInt(this.pick, 1, 20);
      const rev = await this.stop(index, ops);
      notes.push(`${this.nodes[index]!.id} stopped at revision ${rev} for ${ops} operations`);
    }
    if (uniformInt(this.pick, 0, 99) < TRANSFER_PCT) {
      const leader = this.live().find((n) => n.raft.isLeader);
      if (leader !== undefined) {
        const others = this.live().filter((n) => n !== leader);
        const to = others[uniformInt(this.pick, 0, others.length - 1)]!;
        await this.moveLeader(leader, to);
        notes.push(`leadership moved ${leader.id} -> ${to.id}`);
      }
    }
    const live = this.live();
    this.chosen = live[uniformInt(this.pick, 0, live.length - 1)]!;
    if (this.chosen.raft.isLeader) this.served.leader++;
    else this.served.follower++;
    return this.chosen.id + (notes.length > 0 ? ` (after: ${notes.join('; ')})` : '');
  }

  /** Counts the snapshots `node` installs from the leader. */
  private watchSnapshots(node: KvNode): KvNode {
    node.raft.on('snapshot', (_index, source) => {
      if (source === 'leader') this.served.snapshotsInstalled++;
    });
    return node;
  }

  /** The running members. */
  private live(): KvNode[] {
    return this.nodes.filter((_, i) => i !== this.down?.index);
  }

  private member(): KvNode {
    return this.chosen ?? this.nodes[0]!;
  }

  /** The state the generator needs: the largest revision and compaction revision any member has applied. */
  genState(): GenState {
    return {
      rev: Math.max(...this.live().map((n) => n.store.currentRevision())),
      compactRev: Math.max(...this.live().map((n) => n.store.compactRevision())),
    };
  }

  /** Which member leads (for failure reports). */
  describe(): string {
    return this.nodes
      .map((n, i) => (i === this.down?.index ? `${n.id} (stopped)` : `${n.id}${n.raft.isLeader ? ' (leader)' : n.id === this.lagging ? ' (lagging)' : ''} at revision ${n.store.currentRevision()}`))
      .join(', ');
  }

  private async call(f: () => Promise<Record<string, unknown>>): Promise<Outcome> {
    try {
      return { ok: await f() };
    } catch (err) {
      // every QuorumError is an answer: the ones etcd has too compare equal,
      // any other (timeout, no leader) shows up as a difference in context
      if (isQuorumError(err)) return { err: err.code };
      throw err;
    }
  }

  put(req: PutRequest): Promise<Outcome> {
    const m = this.member();
    return this.call(async () => {
      const { key, value, ...options } = mapPut(this.reqMap, req);
      return normPut(this.respMap, await m.put(key, value ?? new Uint8Array(0), options));
    });
  }

  range(req: RangeRequest): Promise<Outcome> {
    const m = this.member();
    return this.call(async () => normRange(this.respMap, await m.range(asInput(mapRange(this.reqMap, req)))));
  }

  deleteRange(req: DeleteRangeRequest): Promise<Outcome> {
    const m = this.member();
    return this.call(async () => {
      const { key, ...options } = asInput(mapDelete(this.reqMap, req));
      return normDelete(this.respMap, await m.delete(key, options));
    });
  }

  txn(req: TxnRequest): Promise<Outcome> {
    const m = this.member();
    return this.call(async () => {
      // etcd serves a txn of serializable ranges alone from the member
      // (isTxnSerializable), and so does KvNode: a follower
      // may not have applied a write acknowledged a moment ago, which the
      // one etcd member compared with has. The member catches up first, as
      // before a watch.
      if (isTxnSerializable(req)) await this.caughtUp(m);
      return normTxn(this.respMap, await m.txn(txnInput(mapTxn(this.reqMap, req))));
    });
  }

  compact(req: CompactionRequest): Promise<Outcome> {
    const m = this.member();
    return this.call(async () => ({ rev: (await m.compact(req.revision, { physical: true })).header.revision }));
  }

  leaseGrant(op: GrantOp): Promise<Outcome> {
    const m = this.member();
    return this.call(async () => {
      const g = await m.leaseGrant(op.ttl, op.explicit === 0 ? {} : { id: explicitId(op.explicit) });
      this.leases.set(op.handle, g.id);
      return { rev: g.header.revision, ttl: g.ttl };
    });
  }

  leaseRevoke(handle: number): Promise<Outcome> {
    const m = this.member();
    return this.call(async () => ({ rev: (await m.leaseRevoke(this.leases.id(handle))).header.revision }));
  }

  leaseKeepAlive(handle: number): Promise<Outcome> {
    const m = this.member();
    return this.call(async () => {
      const k = await m.leaseKeepAlive(this.leases.id(handle));
      return { rev: k.header.revision, ttl: k.ttl };
    });
  }

  leaseTimeToLive(handle: number, keys: boolean): Promise<Outcome> {
    const m = this.member();
    return this.call(async () => {
      const t = await m.leaseTimeToLive(this.leases.id(handle), { keys });
      const out: Record<string, unknown> = { rev: t.header.revision, ttl: t.ttl, granted: t.grantedTtl, keys: t.keys.map(str).sort() };
      // a member that is not the leader asks the leader (counted here); a
      // new leader restarts the TTL of every lease it found (docs/mvcc.md)
      if (!m.raft.isLeader && t.ttl !== -1) this.served.followerTtl++;
      if (t.ttl !== -1 && this.restarted.has(t.id)) out.ttlBound = 'restarted';
      return out;
    });
  }

  leaseLeases(): Promise<Outcome> {
    const m = this.member();
    return this.call(async () => {
      const l = await m.leases();
      return { rev: l.header.revision, leases: l.leases.map((x) => this.leases.name(x.id)).sort() };
    });
  }

  /** A linearizable read on `m`: once it resolves, `m` has applied every write acknowledged before. */
  private async caughtUp(m: KvNode): Promise<void> {
    await m.range({ key: new Uint8Array([0]), countOnly: true });
  }

  async watch(req: WatchCreateRequest): Promise<number | { err: string }> {
    const member = this.member();
    if (!member.raft.isLeader) this.served.followerWatches++;
    await this.caughtUp(member);
    const mapped = mapWatch(this.reqMap, req);
    const { key, ...options } = asInput(mapped);
    let w: Watch;
    try {
      w = member.watch(key, options);
    } catch (err) {
      if (isQuorumError(err)) return { err: err.code };
      throw err;
    }
    const state: WatchState = { member, w, req: mapped, log: { events: [] } };
    this.watches.push(state);
    this.consume(state, w);
    return this.watches.length - 1;
  }

  /** Records what `w` delivers into the log of `state`, until a restart replaces `w`. */
  private consume(state: WatchState, w: Watch): void {
    void (async () => {
      for await (const resp of w) {
        if (state.w !== w) return;
        for (const e of resp.events) state.log.events.push(normEvent(this.respMap, e));
        if (resp.canceled) state.log.canceled = { compactRevision: resp.compactRevision };
      }
    })();
  }

  /**
   * Stops member `index` gracefully: once its watches have delivered
   * everything it applied, and after moving leadership away when it leads
   * (etcd does so on a graceful stop), it is closed. Its live watches are
   * resumed from the revision after the one it stopped at, with the same
   * options, as a client does after losing its connection: on another
   * running member at once (seeded choice), or, for a single member, when
   * it is back (`start`). The resumed stream continues the same log, which
   * must still match etcd's uninterrupted watch. Returns the revision the
   * member stopped at.
   */
  private async stop(index: number, ops: number): Promise<number> {
    const node = this.nodes[index]!;
    if (node.raft.isLeader && this.nodes.length > 1) {
      const others = this.live().filter((n) => n !== node);
      await this.moveLeader(node, others[uniformInt(this.pick, 0, others.length - 1)]!);
    }
    // it applies what the cluster committed (a follower may still be
    // applying the last operation), then its watches deliver it all
    await this.caughtUp(node);
    await node.store.watchIdle();
    for (let k = 0; k < 3; k++) await new Promise((r) => setImmediate(r));
    const rev = node.store.currentRevision();
    const watches = this.watches.filter((s) => s.member === node && s.log.canceled === undefined);
    for (const s of watches) s.w = undefined; // what the old watches say from now on (their end) is dropped
    await node.close();
    this.down = { index, rev, ops, watches: [] };
    this.served.restarts++;
    const others = this.live();
    if (others.length === 0) {
      this.down.watches = watches;
    } else {
      for (const s of this.watches) {
        if (s.member !== node) continue;
        s.member = others[uniformInt(this.pick, 0, others.length - 1)]!;
        if (watches.includes(s)) await this.resume(s, rev);
      }
    }
    return rev;
  }

  /**
   * Opens the stopped member again from its data (the classic-level
   * directory, or the memory-level database kept open) and waits until it
   * knows the leader (the single member campaigns); a single member's
   * watches are resumed on it.
   */
  private async start(): Promise<void> {
    const d = this.down!;
    this.down = undefined;
    const old = this.nodes[d.index]!;
    const data = this.name === 'kvnode-1' ? { dataDir: this.dir! } : { db: this.dbs[d.index]! };
    const node = this.watchSnapshots(await KvNode.open({ id: old.id, transport: this.net!.transport(old.id), ...data, ...SNAPSHOTS, random: seededRandom(d.rev * 7 + d.index) }));
    this.nodes[d.index] = node;
    if (this.nodes.length === 1) {
      node.raft.campaign();
      // docs/mvcc.md: a lease's TTL restarts with a new leader
      for (const h of this.leases.handles()) this.restarted.add(this.leases.id(h));
    }
    await until(
      () => node.raft.leader !== '' && this.nodes.every((n) => n.raft.leader === node.raft.leader),
      10_000,
      `${node.id} back and knowing the leader`,
      () => raftState(this.nodes),
    );
    // ... and until it has applied what the leader had committed: a member
    // that catches up through the leader's snapshot cannot tell the outcome
    // of a write it forwarded and the snapshot covers (etcd's member waits
    // for its own apply too, and times out); a client of a member that has
    // just come back meets that, the comparison with one etcd must not
    await this.caughtUp(node);
    for (const s of this.watches) if (s.member === old) s.member = node;
    for (const s of d.watches) await this.resume(s, d.rev);
  }

  /**
   * Re-creates watch `s` on its member from the revision after `rev` (or its
   * own start, when later), and waits until it has caught up with that
   * member's history, as settleWatch does for a new watch in the past: a
   * compaction must not meet it half-way.
   */
  private async resume(s: WatchState, rev: number): Promise<void> {
    const { key, startRevision, ...options } = s.req;
    const w = s.member.watch(key, { ...options, startRevision: Math.max(startRevision ?? 0, rev + 1) });
    s.w = w;
    this.consume(s, w);
    await s.member.store.watchIdle();
    for (let k = 0; k < 3; k++) await new Promise((r) => setImmediate(r));
  }

  private async moveLeader(from: KvNode, to: KvNode): Promise<void> {
    await from.moveLeader(to.id);
    await until(
      () => this.live().every((n) => n.raft.leader === to.id),
      10_000,
      `leadership moved to ${to.id} and known to every running member`,
      () => raftState(this.live()),
    );
    // docs/mvcc.md: a lease's TTL restarts on leader change
    for (const h of this.leases.handles()) this.restarted.add(this.leases.id(h));
    this.served.transfers++;
  }

  async watchLog(i: number, expect?: NWatchLog): Promise<NWatchLog> {
    if (this.down !== undefined && this.watches[i]!.member === this.nodes[this.down.index]) await this.start();
    const { member, log } = this.watches[i]!;
    await this.caughtUp(member);
    await member.store.watchIdle();
    for (let k = 0; k < 3; k++) await new Promise((r) => setImmediate(r));
    const enough = () => expect === undefined || (log.events.length >= expect.events.length && (expect.canceled === undefined || log.canceled !== undefined));
    const deadline = Date.now() + 3000;
    while (!enough() && Date.now() < deadline) await sleep(5);
    return { events: [...log.events], ...(log.canceled ? { canceled: log.canceled } : {}) };
  }

  async end(): Promise<void> {
    for (const { w } of this.watches) await w?.cancel();
    for (const n of this.nodes) await n.close();
    for (const db of this.dbs) await db.close();
    if (this.dir !== undefined) await rm(this.dir, { recursive: true, force: true });
    this.forgetDir?.();
    this.dir = undefined;
    this.forgetDir = undefined;
    this.nodes = [];
    this.dbs = [];
    this.watches = [];
    this.chosen = undefined;
    this.down = undefined;
  }

  async close(): Promise<void> {
    await this.end();
  }
}
