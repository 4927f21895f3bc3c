// Test fixtures for the node layer: a small durable key-value state machine
// (the applied index is written in the same batch as its changes) and a
// cluster of RaftNodes on a MemoryNetwork with memory-level storage.
import type { AbstractLevel } from 'abstract-level';
import { MemoryLevel } from 'memory-level';
import { pack, unpack } from '../../src/codec/index.js';
import { RaftNode, VirtualClock, type ApplyEntry, type RaftNodeOptions, type StateMachine, type StateMachineSnapshot } from '../../src/node/index.js';
import { LevelLogStorage } from '../../src/storage/index.js';
import { MemoryNetwork, type Scheduler } from '../../src/transport/index.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const APPLIED = enc.encode('\u0000applied');

type Db = MemoryLevel<Uint8Array, Uint8Array>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Sub = AbstractLevel<any, Uint8Array, Uint8Array>;

/** A command of the test state machine: `set k v` appends `v` to a per-key list. */
export function cmd(key: string, value: string): Uint8Array {
  return pack([key, value]);
}

/**
 * A durable state machine: each `normal` entry `[key, value]` sets key to
 * value and records the entry index in an append-only apply log; the applied
 * index is stored in the same batch (exactly-once across crashes).
 * `apply` returns the index the entry was applied at.
 */
export class LogStateMachine implements StateMachine<number> {
  /** Every normal entry applied, in order: `index key=value`. */
  readonly applyLog: string[] = [];
  readonly kv = new Map<string, string>();
  private applied = 0;

  private constructor(private readonly db: Sub) {}

  /** Calls of `snapshot()` and (when it has one) `sync()`. */
  readonly calls = { snapshot: 0, sync: 0 };
  /** Present when opened with `synced`: the machine is then durable by itself (on-demand snapshots). */
  sync?: () => void;

  /** Opens the machine on `db`; `synced` gives it a `sync()` (its writes are durable in `db` already). */
  static async open(db: Sub, options: { synced?: boolean } = {}): Promise<LogStateMachine> {
    const sm = new LogStateMachine(db);
    if (options.synced === true) {
      sm.sync = () => {
        sm.calls.sync++;
      };
    }
    const a = await db.get(APPLIED);
    sm.applied = a === undefined ? 0 : (unpack(a) as number);
    for await (const [k, v] of db.iterator()) {
      if (k.length > 0 && k[0] === 0) continue;
      const key = dec.decode(k);
      if (key.startsWith('log/')) sm.applyLog.push(dec.decode(v));
      else sm.kv.set(key.slice(3), dec.decode(v));
    }
    return sm;
  }

  appliedIndex(): number {
    return this.applied;
  }

  async apply(entries: ApplyEntry[]): Promise<number[]> {
    const ops: { type: 'put'; key: Uint8Array; value: Uint8Array }[] = [];
    const out: number[] = [];
    for (const e of entries) {
      if (e.kind === 'normal') {
        const [k, v] = unpack(e.data) as [string, string];
        const line = `${e.index} ${k}=${v}`;
        this.applyLog.push(line);
        this.kv.set(k, v);
        ops.push({ type: 'put', key: enc.encode(`log/${String(e.index).padStart(12, '0')}`), value: enc.encode(line) });
        ops.push({ type: 'put', key: enc.encode(`kv/${k}`), value: enc.encode(v) });
      }
      out.push(e.index);
      this.applied = e.index;
    }
    ops.push({ type: 'put', key: APPLIED, value: pack(this.applied) });
    await this.db.batch(ops);
    return out;
  }

  snapshot(): Uint8Array {
    this.calls.snapshot++;
    return pack({ log: this.applyLog, kv: [...this.kv] });
  }

  async restore(s: StateMachineSnapshot): Promise<void> {
    const { log, kv } = unpack(s.data) as { log: string[]; kv: [string, string][] };
    await this.db.clear();
    this.applyLog.length = 0;
    this.applyLog.push(...log);
    this.kv.clear();
    const ops: { type: 'put'; key: Uint8Array; value: Uint8Array }[] = [];
    for (const line of log) {
      const idx = Number(line.split(' ')[0]);
      ops.push({ type: 'put', key: enc.encode(`log/${String(idx).padStart(12, '0')}`), value: enc.encode(line) });
    }
    for (const [k, v] of kv) {
      this.kv.set(k, v);
      ops.push({ type: 'put', key: enc.encode(`kv/${k}`), value: enc.encode(v) });
    }
    this.applied = s.index;
    ops.push({ type: 'put', key: APPLIED, value: pack(this.applied) });
    await this.db.batch(ops);
  }
}

/**
 * A member's election jitter: a mulberry32-style generator that adds
 * `seed` at every step, so that members seeded differently spread their
 * timeouts and a run replays by seed. Shared by the test clusters.
 */
export function electionJitter(seed: number): () => number {
  let n = 0;
  return () => {
    n = (n + 0x6d2b79f5 + seed) | 0;
    let t = Math.imul(n ^ (n >>> 15), 1 | n);
    t ^= t + Math.imul(t ^ (t >>> 7), 61 | t);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A scheduler on a VirtualClock, so MemoryNetwork deliveries follow virtual time. */
export function clockScheduler(clock: VirtualClock): Scheduler {
  return {
    schedule(delayMs, fn) {
      if (delayMs <= 0) queueMicrotask(fn);
      else clock.setTimeout(fn, delayMs);
    },
  };
}

export interface Member {
  id: string;
  db: Db;
  node: RaftNode<number>;
  sm: LogStateMachine;
}

export interface ClusterOptions {
  seed?: number;
  snapshotEntries?: number;
  snapshotCatchUpEntries?: number;
  dbFactory?: () => Db;
  /** State machines with `sync()`: on-demand snapshots. */
  syncedStateMachines?: boolean;
}

/** N RaftNodes on one MemoryNetwork and VirtualClock; tick = 10 virtual ms. */
export class TestCluster {
  readonly clock = new VirtualClock();
  readonly net: MemoryNetwork;
  readonly members = new Map<string, Member>();
  readonly dbs = new Map<string, Db>();

  constructor(readonly opts: ClusterOptions = {}) {
    this.net = new MemoryNetwork({ seed: opts.seed ?? 1, scheduler: clockScheduler(this.clock) });
  }

  /** Starts (or restarts from its database) member `id`; `extra` overrides node options. */
  async start(id: string, peers: string[] | undefined, allIds: string[], extra: Partial<RaftNodeOptions<number>> = {}): Promise<Member> {
    let db = this.dbs.get(id);
    if (db === undefined) {
      db = this.opts.dbFactory?.() ?? new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
      this.dbs.set(id, db);
    }
    if (db.status !== 'open') await db.open();
    const storage = await LevelLogStorage.open({ db: db.sublevel<Uint8Array, Uint8Array>('raft', { keyEncoding: 'view', valueEncoding: 'view' }) as never });
    const sm = await LogStateMachine.open(db.sublevel<Uint8Array, Uint8Array>('sm', { keyEncoding: 'view', valueEncoding: 'view' }), {
      synced: this.opts.syncedStateMachines === true,
    });
    const transport = extra.transport ?? this.net.transport(id);
    if (extra.transport === undefined) for (const p of allIds) if (p !== id) transport.addPeer(p);
    const node = await RaftNode.create<number>({
      id,
      peers,
      storage,
      transport,
      stateMachine: sm,
      clock: this.clock,
      tickMs: 10,
      electionTicks: 10,
      heartbeatTicks: 1,
      snapshotEntries: this.opts.snapshotEntries ?? 10_000,
      snapshotCatchUpEntries: this.opts.snapshotCatchUpEntries ?? 50,
      proposalTimeoutMs: 3_000,
      readTimeoutMs: 3_000,
      random: electionJitter((this.opts.seed ?? 1) * 1000 + id.charCodeAt(0)),
      ...extra,
    });
    const m = { id, db, node, sm };
    this.members.set(id, m);
    return m;
  }

  async startAll(ids: string[]): Promise<void> {
    for (const id of ids) await this.start(id, ids, ids);
  }

  /** Advances virtual time in 10 ms steps until `cond()` holds; throws after `maxMs` (see {@link advanceUntil}). */
  async waitFor(cond: () => boolean, maxMs = 10_000, what = 'condition'): Promise<void> {
    await advanceUntil(this.clock, cond, maxMs, what);
  }

  /** Runs a promise to completion while advancing virtual time. */
  async run<T>(p: Promise<T>, maxMs = 10_000): Promise<T> {
    let done = false;
    let value: T | undefined;
    let error: unknown;
    p.then(
      (v) => {
        done = true;
        value = v;
      },
      (e) => {
        done = true;
        error = e;
      },
    );
    await this.waitFor(() => done, maxMs, 'operation');
    if (error !== undefined) throw error;
    return value as T;
  }

  leader(): Member | undefined {
    for (const m of this.members.values()) if (m.node.isLeader && !m.node.status().removed) return m;
    return undefined;
  }

  async waitLeader(maxMs = 10_000): Promise<Member> {
    await this.waitFor(() => this.leader() !== undefined, maxMs, 'a leader');
    return this.leader()!;
  }

  /** Stops a member as a crash would (no graceful flush), keeping its database. */
  async stop(id: string): Promise<void> {
    const m = this.members.get(id);
    if (m === undefined) return;
    this.members.delete(id);
    await m.node.close();
  }

  async closeAll(): Promise<void> {
    for (const id of [...this.members.keys()]) await this.stop(id);
    for (const db of this.dbs.values()) if (db.status === 'open') await db.close();
  }
}

/** Real ms that {@link advanceUntil} still waits once its virtual time is spent. */
const REAL_GRACE_MS = 5_000;

/**
 * Advances `clock` in 10 ms steps until `cond()` holds; throws after
 * `maxMs` virtual ms and then {@link REAL_GRACE_MS} real ms more with the
 * clock standing still: real I/O an operation waits on (a synced file write
 * on a loaded machine) may outlast the steps, which take little real time,
 * and is not a hang.
 */
export async function advanceUntil(clock: VirtualClock, cond: () => boolean, maxMs: number, what: string): Promise<void> {
  for (let t = 0; t <= maxMs; t += 10) {
    if (cond()) return;
    await clock.advanceAsync(10);
  }
  const until = performance.now() + REAL_GRACE_MS;
  while (performance.now() < until) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out after ${maxMs} virtual ms waiting for ${what}`);
}
