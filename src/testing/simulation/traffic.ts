/**
 * Random client traffic for a simulation: concurrent clients issuing a mix
 * of KV, txn, lease, watch and compaction requests, every choice drawn from
 * the simulation's seed.
 * @module
 */
import { checkOptionsArg } from '../../option-keys.js';
import { ErrorCode, UsageError } from '../../errors.js';
import { describeValue } from '../../arg-values.js';
import type { KV, KvNode, Watch } from '../../server/index.js';
import type { SimClient } from './sim-client.js';
import type { SimRandom } from './sim-random.js';
import type { Simulation } from './simulation.js';

/** The kinds of request {@link startTraffic} issues. */
export type TrafficOp = 'get' | 'put' | 'delete' | 'range' | 'cas' | 'readTxn' | 'lease' | 'watch' | 'compact';

/**
 * Default relative weights of {@link TrafficOp}. `readTxn` (read-only
 * txns) is 0, off unless weighted, so that a seed's default traffic is the
 * same as in versions before it.
 */
export const DEFAULT_TRAFFIC_WEIGHTS: Readonly<Record<TrafficOp, number>> = {
  get: 20,
  put: 20,
  delete: 5,
  range: 8,
  cas: 15,
  readTxn: 0,
  lease: 8,
  watch: 2,
  compact: 2,
};

/** Options of {@link startTraffic}. Times are virtual ms. */
export interface TrafficOptions {
  /** Stop issuing requests at this virtual time (ms since the start): a number; `Infinity` runs until {@link Traffic.stop}. Required. */
  until: number;
  /** Number of concurrent clients: a positive integer. Default 3. */
  clients?: number;
  /** Number of keys (`k/0`, `k/1`, ...), a positive integer; lease keys are `l/0`, ... Default 6. */
  keys?: number;
  /** Pause between a client's requests, uniform in this range of whole ms, `0 <= min <= max`. Default 5 to 40. */
  thinkMs?: { min: number; max: number };
  /** Relative weights of the request kinds (finite numbers >= 0); absent kinds keep their default, 0 turns one off. */
  weights?: Partial<Record<TrafficOp, number>>;
  /** Probability that a client moves to another member before a request, in [0, 1]. Default 0.1. */
  switchRate?: number;
  /** At most this many watches in all: a non-negative integer, or `Infinity` (no cap). Default 8. */
  maxWatches?: number;
  /** Passed to every client (see `SimClientOptions.wrap`). */
  wrap?: (member: KvNode) => KV;
}

/**
 * The values of traffic options: unchecked, NaN as `until` issued nothing
 * and passed, a fractional count of clients or keys, or a fractional pause,
 * was drawn outside its range, 0 keys drew a key outside the range, a
 * switch rate above 1 moved every client before every request, and a NaN or
 * negative weight turned a kind off.
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT`
 */
function checkTrafficValues(o: TrafficOptions): void {
  const bad = (what: string, v: unknown, want: string): never => {
    throw new UsageError(ErrorCode.INVALID_ARGUMENT, `traffic options.${what} must be ${want}, not ${describeValue(v)}`);
  };
  const int = (v: unknown, min: number): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= min;
  // Infinity: until stop() (nothing is drawn ahead, unlike a fault schedule)
  if (typeof o.until !== 'number' || Number.isNaN(o.until)) bad('until', o.until, 'a number of virtual ms (Infinity: until stop())');
  if (o.clients !== undefined && !int(o.clients, 1)) bad('clients', o.clients, 'a positive integer');
  if (o.keys !== undefined && !int(o.keys, 1)) bad('keys', o.keys, 'a positive integer');
  if (o.maxWatches !== undefined && o.maxWatches !== Infinity && !int(o.maxWatches, 0)) bad('maxWatches', o.maxWatches, 'a non-negative integer or Infinity');
  if (o.thinkMs !== undefined && !(int(o.thinkMs.min, 0) && int(o.thinkMs.max, 0) && o.thinkMs.max >= o.thinkMs.min)) {
    bad('thinkMs', o.thinkMs, 'whole ms { min, max } with 0 <= min <= max');
  }
  if (o.switchRate !== undefined && !(typeof o.switchRate === 'number' && o.switchRate >= 0 && o.switchRate <= 1)) bad('switchRate', o.switchRate, 'a probability in [0, 1]');
  for (const [kind, w] of Object.entries(o.weights ?? {})) {
    if (w !== undefined && !(typeof w === 'number' && Number.isFinite(w) && w >= 0)) bad(`weights.${kind}`, w, 'a finite number >= 0');
  }
  if (o.wrap !== undefined && typeof o.wrap !== 'function') bad('wrap', o.wrap, 'a function');
}

/** Running traffic. */
export interface Traffic {
  /** Resolves when every client has stopped (its last request settled). */
  readonly done: Promise<void>;
  /** Requests issued, answered and failed so far. */
  readonly stats: { issued: number; ok: number; failed: number };
  /** The watches opened so far. */
  readonly watches: Watch[];
  /** Stops issuing requests (requests in flight still settle). */
  stop(): void;
  /** Cancels every open watch. */
  cancelWatches(): Promise<void>;
}

interface KeyState {
  value: string;
  modRevision: number;
  version: number;
}

/**
 * Starts `clients` concurrent clients that issue random requests until
 * `until`: gets, puts (unique values), single-key deletes, ranges, txn
 * compare-and-swaps (on value, version or modRevision, from what the client
 * last read), read-only txns when weighted (`readTxn`: a compare on one
 * key, from what the client last read or not, and single-key reads in
 * both branches; etcd serves such a txn as a read), leases (grant + put with the lease, keep-alive, revoke),
 * watches (from a recent or the next revision, some with prevKv) and
 * compactions (a few revisions behind the latest seen). Drive time with
 * `sim.run(...)` meanwhile.
 *
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for a simulation of `kind: 'raft'`
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for options that are not an object, an option of a
 *   name the options do not declare, or a value outside what its doc says (nothing is started)
 */
export function startTraffic(sim: Simulation, options: TrafficOptions): Traffic {
  if (sim.kind !== 'kv') throw new UsageError(ErrorCode.INVALID_ARGUMENT, "traffic needs kind 'kv'");
  // undefined threw a TypeError
  if (options === null || typeof options !== 'object') throw new UsageError(ErrorCode.INVALID_ARGUMENT, `traffic options must be an object ({ until, ... }), not ${describeValue(options)}`);
  checkOptionsArg(options, ['until', 'clients', 'keys', 'thinkMs', 'weights', 'switchRate', 'maxWatches', 'wrap'] satisfies (keyof TrafficOptions)[], 'traffic options');
  checkOptionsArg(options.thinkMs, ['min', 'max'], 'traffic options.thinkMs');
  // a weight of another name would be drawn like an operation, issue nothing and count as answered
  checkOptionsArg(options.weights, Object.keys(DEFAULT_TRAFFIC_WEIGHTS), 'traffic options.weights');
  checkTrafficValues(options);
  const rng = sim.random.fork('traffic');
  const nClients = options.clients ?? 3;
  const nKeys = options.keys ?? 6;
  const think = options.thinkMs ?? { min: 5, max: 40 };
  const weights = { ...DEFAULT_TRAFFIC_WEIGHTS, ...(options.weights ?? {}) };
  const switchRate = options.switchRate ?? 0.1;
  const maxWatches = options.maxWatches ?? 8;
  const stats = { issued: 0, ok: 0, failed: 0 };
  const watches: Watch[] = [];
  let stopped = false;
  let latestRevision = 1;
  let valueSeq = 0;
  const leases: number[] = [];

  const sleep = (ms: number): Promise<void> => new Promise((resolve) => sim.clock.setTimeout(resolve, ms));
  const key = (r: SimRandom): string => `k/${r.int(0, nKeys - 1)}`;
  const leaseKey = (r: SimRandom): string => `l/${r.int(0, Math.max(1, Math.floor(nKeys / 2)) - 1)}`;
  const seen = (rev: number | undefined): void => {
    if (rev !== undefined && rev > latestRevision) latestRevision = rev;
  };

  async function runClient(index: number): Promise<void> {
    const r = rng.fork(`client/${index}`);
    const clients = new Map<string, SimClient>();
    let member = sim.ids[index % sim.ids.length]!;
    const known = new Map<string, KeyState>();
    const clientOf = (id: string): SimClient => {
      let c = clients.get(id);
      if (c === undefined) {
        c = sim.client(id, { name: `t${index}@${id}`, ...(options.wrap !== undefined ? { wrap: options.wrap } : {}) });
        clients.set(id, c);
      }
      return c;
    };
    while (!stopped && sim.now() < options.until) {
      if (r.chance(switchRate)) member = r.pick(sim.ids);
      const c = clientOf(member);
      const op = r.weighted(weights);
      stats.issued++;
      try {
        await issue(c, op, r, known);
        stats.ok++;
      } catch {
        stats.failed++;
      }
      await sleep(r.int(think.min, think.max));
    }
  }

  async function issue(c: SimClient, op: TrafficOp, r: SimRandom, known: Map<string, KeyState>): Promise<void> {
    switch (op) {
      case 'get': {
        const k = key(r);
        const kv = await c.get(k);
        if (kv === undefined) known.delete(k);
        else known.set(k, { value: new TextDecoder().decode(kv.value), modRevision: kv.modRevision, version: kv.version });
        if (kv !== undefined) seen(kv.modRevision);
        return;
      }
      case 'put': {
        const res = await c.put(key(r), `v${++valueSeq}`, r.chance(0.2) ? { prevKv: true } : {});
        seen(res.header.revision);
        return;
      }
      case 'delete': {
        const res = await c.delete(key(r), r.chance(0.3) ? { prevKv: true } : {});
        seen(res.header.revision);
        return;
      }
      case 'range': {
        const a = r.int(0, nKeys - 1);
        const b = r.int(a, nKeys);
        const res = r.chance(0.5) ? await c.range({ key: 'k/', prefix: true }) : await c.range({ key: `k/${a}`, rangeEnd: `k/${b}` });
        seen(res.header.revision);
        return;
      }
      case 'cas': {
        const k = key(r);
        const s = known.get(k);
        const value = `v${++valueSeq}`;
        const kind = s === undefined ? 'create' : r.pick(['value', 'version', 'mod'] as const);
        const compare =
          kind === 'create'
            ? { key: k, target: 'VERSION' as const, result: 'EQUAL' as const, version: 0 }
            : kind === 'value'
              ? { key: k, target: 'VALUE' as const, result: 'EQUAL' as const, value: s!.value }
              : kind === 'version'
                ? { key: k, target: 'VERSION' as const, result: 'EQUAL' as const, version: s!.version }
                : { key: k, target: 'MOD' as const, result: 'EQUAL' as const, modRevision: s!.modRevision };
        const res = await c.txn({ compare: [compare], success: [{ put: { key: k, value } }], failure: [{ range: { key: k } }] });
        seen(res.header.revision);
        if (res.succeeded) known.set(k, { value, modRevision: res.header.revision, version: (s?.version ?? 0) + 1 });
        else {
          const got = res.responses[0];
          const kv = got !== undefined && 'responseRange' in got ? got.responseRange.kvs[0] : undefined;
          if (kv === undefined) known.delete(k);
          else known.set(k, { value: new TextDecoder().decode(kv.value), modRevision: kv.modRevision, version: kv.version });
        }
        return;
      }
      case 'readTxn': {
        const k = key(r);
        const s = known.get(k);
        const compare =
          s === undefined || r.chance(0.3)
            ? { key: k, target: 'VERSION' as const, result: r.pick(['EQUAL', 'GREATER'] as const), version: 0 }
            : r.chance(0.5)
              ? { key: k, target: 'VALUE' as const, result: 'EQUAL' as const, value: s.value }
              : { key: k, target: 'MOD' as const, result: r.pick(['EQUAL', 'LESS'] as const), modRevision: s.modRevision };
        // single-key reads: what the linearizability model checks
        const res = await c.txn({
          compare: [compare],
          success: [{ range: { key: k } }, { range: { key: key(r) } }],
          failure: [{ range: { key: key(r) } }],
        });
        seen(res.header.revision);
        return;
      }
      case 'lease': {
        const which = leases.length === 0 ? 'grant' : r.pick(['grant', 'keepAlive', 'revoke', 'get', 'put'] as const);
        if (which === 'grant') {
          const g = await c.leaseGrant(r.int(1, 2));
          leases.push(g.id);
          const res = await c.put(leaseKey(r), `v${++valueSeq}`, { lease: g.id });
          seen(res.header.revision);
        } else if (which === 'keepAlive') {
          await c.leaseKeepAlive(r.pick(leases));
        } else if (which === 'revoke') {
          const id = r.pick(leases);
          leases.splice(leases.indexOf(id), 1);
          const res = await c.leaseRevoke(id);
          seen(res.header.revision);
        } else if (which === 'put') {
          const res = await c.put(leaseKey(r), `v${++valueSeq}`, { lease: r.pick(leases) });
          seen(res.header.revision);
        } else {
          await c.get(leaseKey(r));
        }
        return;
      }
      case 'watch': {
        if (watches.length >= maxWatches) return;
        const start = r.chance(0.3) ? 0 : Math.max(1, latestRevision - r.int(0, 10));
        const w = r.chance(0.5)
          ? c.watch('k/', { prefix: true, startRevision: start, prevKv: r.chance(0.5) })
          : c.watch(key(r), { startRevision: start, prevKv: r.chance(0.5) });
        watches.push(w);
        return;
      }
      case 'compact': {
        const target = latestRevision - r.int(3, 15);
        if (target > 1) await c.compact(target);
        return;
      }
    }
  }

  const done = Promise.all(Array.from({ length: nClients }, (_, i) => runClient(i))).then(() => undefined);
  return {
    done,
    stats,
    watches,
    stop: () => {
      stopped = true;
    },
    cancelWatches: async () => {
      for (const w of watches) await w.cancel();
    },
  };
}
