// A cluster of KvNodes in one process: MemoryNetwork, memory-level and a
// virtual clock (tick = 10 virtual ms, election timeout 100-200 ms).
import assert from 'node:assert/strict';
import { MemoryLevel } from 'memory-level';
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import { VirtualClock, type Clock } from '../../src/node/index.js';
import { KvNode, type KvNodeOptions } from '../../src/server/index.js';
import { MemoryNetwork } from '../../src/transport/index.js';
import { advanceUntil, electionJitter } from '../node/helpers.js';

type Db = MemoryLevel<Uint8Array, Uint8Array>;

/** Options a test may set per member, over the cluster's defaults. */
export type ExtraOptions = Partial<Omit<KvNodeOptions, 'id' | 'transport' | 'clock' | 'random'>>;

export class KvCluster {
  readonly clock = new VirtualClock();
  readonly net: MemoryNetwork;
  readonly nodes = new Map<string, KvNode>();
  readonly dbs = new Map<string, Db>();
  /** Extra options per member (merged over the defaults). */
  extra: (id: string) => ExtraOptions = () => ({});

  constructor(readonly ids: string[], readonly seed = 1) {
    this.net = new MemoryNetwork({
      seed,
      scheduler: {
        schedule: (delayMs, fn) => {
          if (delayMs <= 0) queueMicrotask(fn);
          else this.clock.setTimeout(fn, delayMs);
        },
      },
    });
  }

  /** Starts (or restarts, on its database) member `id`; `clock` replaces the cluster's clock for this run. */
  async start(id: string, opts: { join?: boolean; members?: string[]; clock?: Clock } = {}): Promise<KvNode> {
    let db = this.dbs.get(id);
    if (db === undefined) {
      db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
      this.dbs.set(id, db);
    }
    const node = await KvNode.open({
      id,
      members: opts.members ?? this.ids,
      join: opts.join,
      transport: this.net.transport(id),
      db,
      clock: opts.clock ?? this.clock,
      tickMs: 10,
      electionTicks: 10,
      requestTimeoutMs: 2_000,
      leaseCheckMs: 50,
      random: electionJitter(this.seed * 7919 + id.charCodeAt(0)),
      ...this.extra(id),
    });
    this.nodes.set(id, node);
    return node;
  }

  async startAll(): Promise<void> {
    for (const id of this.ids) await this.start(id);
  }

  node(id: string): KvNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no running node ${id}`);
    return n;
  }

  leader(): KvNode | undefined {
    for (const n of this.nodes.values()) if (n.raft.isLeader) return n;
    return undefined;
  }

  followers(): KvNode[] {
    return [...this.nodes.values()].filter((n) => !n.raft.isLeader);
  }

  async waitFor(cond: () => boolean, maxMs = 10_000, what = 'condition'): Promise<void> {
    await advanceUntil(this.clock, cond, maxMs, what);
  }

  async waitLeader(): Promise<KvNode> {
    await this.waitFor(() => this.leader() !== undefined, 10_000, 'a leader');
    return this.leader()!;
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

  async stop(id: string): Promise<void> {
    const n = this.nodes.get(id);
    if (n === undefined) return;
    this.nodes.delete(id);
    await n.close();
  }

  async closeAll(): Promise<void> {
    for (const id of [...this.nodes.keys()]) await this.stop(id);
    for (const db of this.dbs.values()) if (db.status === 'open') await db.close();
  }
}

/** Waits on the system clock (20 ms polls) until `cond` holds; throws after `timeoutMs`, naming `what`. For real-time tests (TCP). */
export async function untilReal(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Runs each named call through `run` (which advances virtual time) and
 * asserts that it fails, thrown or rejected, with QUORUMKV_INVALID_ARGUMENT;
 * `label` is added to each call's name in the failure message.
 */
export async function assertEachInvalid(run: (p: Promise<unknown>) => Promise<unknown>, calls: [string, () => unknown][], label = ''): Promise<void> {
  for (const [name, call] of calls) {
    let outcome: unknown;
    try {
      outcome = await run(Promise.resolve().then(call));
    } catch (err) {
      outcome = err;
    }
    assert.ok(isQuorumError(outcome, ErrorCode.INVALID_ARGUMENT), `${name}${label}: got ${outcome instanceof Error ? `${outcome.name} ${outcome.message}` : typeof outcome}`);
  }
}
