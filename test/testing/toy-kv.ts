// Test support (not a test file): a sequential etcd-like key-value store and
// toy "replicated" stores built on it, some deliberately broken, driven by
// concurrent random clients on simulated time. Written independently of the
// KV model so that the model is checked against a second implementation.
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';
import { HistoryRecorder, inKeyRange, compareKeys } from '../../src/testing/index.js';
import type {
  KvCompare,
  KvInput,
  KvOutput,
  KvPair,
  KvTxnOp,
  KvTxnOpResult,
  Operation,
} from '../../src/testing/index.js';

interface Entry {
  value: string;
  createRevision: number;
  modRevision: number;
  version: number;
}

/** A sequential etcd-like store: revision starts at 1, each changing write bumps it by one. */
export class SequentialKv {
  revision = 1;
  readonly data = new Map<string, Entry>();

  clone(): SequentialKv {
    const c = new SequentialKv();
    c.revision = this.revision;
    for (const [k, v] of this.data) c.data.set(k, { ...v });
    return c;
  }

  apply(input: KvInput): KvOutput {
    switch (input.type) {
      case 'get': {
        const e = this.data.get(input.key);
        return e === undefined
          ? { value: null, revision: this.revision }
          : { value: e.value, modRevision: e.modRevision, createRevision: e.createRevision, version: e.version, revision: this.revision };
      }
      case 'range': {
        const kvs: KvPair[] = [...this.data.entries()]
          .filter(([k]) => inKeyRange(input, k))
          .sort(([a], [b]) => compareKeys(a, b))
          .map(([key, e]) => ({ key, value: e.value, modRevision: e.modRevision, createRevision: e.createRevision, version: e.version }));
        return { kvs, revision: this.revision };
      }
      case 'put':
      case 'delete': {
        const [res, changed] = this.#write([input]);
        if (changed) this.revision++;
        const r = res[0]!;
        return input.type === 'put'
          ? { prevValue: r.prevValue, revision: this.revision }
          : { deleted: r.deleted, prevValue: r.prevValue, revision: this.revision };
      }
      case 'txn': {
        const succeeded = input.compare.every((c) => this.#compare(c));
        const [results, changed] = this.#write(succeeded ? input.success : input.failure);
        if (changed) this.revision++;
        return { succeeded, results, revision: this.revision };
      }
    }
  }

  #compare(c: KvCompare): boolean {
    const e = this.data.get(c.key);
    let cmp: number;
    if (c.target === 'value') {
      if (e === undefined) return false;
      cmp = compareKeys(e.value, String(c.value));
    } else {
      const actual = e === undefined ? 0 : c.target === 'version' ? e.version : c.target === 'createRevision' ? e.createRevision : e.modRevision;
      cmp = actual - Number(c.value);
    }
    return c.result === '=' ? cmp === 0 : c.result === '!=' ? cmp !== 0 : c.result === '<' ? cmp < 0 : cmp > 0;
  }

  #write(ops: readonly KvTxnOp[]): [KvTxnOpResult[], boolean] {
    const rev = this.revision + 1;
    let changed = false;
    const results: KvTxnOpResult[] = [];
    for (const op of ops) {
      const e = this.data.get(op.key);
      if (op.type === 'get') {
        results.push(
          e === undefined
            ? { value: null }
            : { value: e.value, modRevision: e.modRevision, createRevision: e.createRevision, version: e.version },
        );
      } else if (op.type === 'put') {
        results.push({ prevValue: e === undefined ? null : e.value });
        this.data.set(op.key, {
          value: op.value,
          createRevision: e === undefined ? rev : e.createRevision,
          modRevision: rev,
          version: e === undefined ? 1 : e.version + 1,
        });
        changed = true;
      } else {
        results.push({ deleted: e === undefined ? 0 : 1, prevValue: e === undefined ? null : e.value });
        if (e !== undefined) {
          this.data.delete(op.key);
          changed = true;
        }
      }
    }
    return [results, changed];
  }
}

/** A store under test: `serve` is called at the instant the store handles the request. */
export interface ToyStore {
  /** Handles `input` at simulated time `now`; returns the response, sent back later. */
  serve(input: KvInput, now: number, rng: RandomGenerator): KvOutput;
}

/** Correct: every request takes effect atomically when served. */
export class AtomicStore implements ToyStore {
  readonly kv = new SequentialKv();
  serve(input: KvInput): KvOutput {
    return this.kv.apply(input);
  }
}

/**
 * Broken: writes go to the primary; a replica applies them `lagMs` later;
 * reads are served by the replica with probability `staleReadPercent`.
 */
export class StaleReplicaStore implements ToyStore {
  readonly primary = new SequentialKv();
  readonly replica = new SequentialKv();
  readonly #pending: { at: number; input: KvInput }[] = [];
  constructor(
    readonly lagMs: number,
    readonly staleReadPercent: number,
  ) {}
  serve(input: KvInput, now: number, rng: RandomGenerator): KvOutput {
    while (this.#pending.length > 0 && this.#pending[0]!.at <= now) this.replica.apply(this.#pending.shift()!.input);
    const readOnly =
      input.type === 'get' || input.type === 'range' ||
      (input.type === 'txn' && [...input.success, ...input.failure].every((o) => o.type === 'get'));
    if (readOnly && uniformInt(rng, 1, 100) <= this.staleReadPercent) return this.replica.apply(input);
    this.#pending.push({ at: now + this.lagMs, input });
    return this.primary.apply(input);
  }
}

/** Broken: acknowledges a write but drops it with probability `lossPercent`. */
export class LosingStore implements ToyStore {
  readonly kv = new SequentialKv();
  constructor(readonly lossPercent: number) {}
  serve(input: KvInput, _now: number, rng: RandomGenerator): KvOutput {
    if (input.type !== 'get' && input.type !== 'range' && uniformInt(rng, 1, 100) <= this.lossPercent) {
      return this.kv.clone().apply(input); // computed, acknowledged, never applied
    }
    return this.kv.apply(input);
  }
}

/** What the random clients issue. */
export interface Workload {
  readonly clients: number;
  readonly operations: number;
  readonly keys: number;
  /** Operation kinds to draw from. */
  readonly kinds: readonly ('get' | 'put' | 'delete' | 'range' | 'txn')[];
  /** Percent of operations whose response is lost (recorded as unknown); half of them still take effect. */
  readonly timeoutPercent?: number;
}

function randomInput(rng: RandomGenerator, w: Workload, nextValue: () => string): KvInput {
  const key = (): string => `k${uniformInt(rng, 0, w.keys - 1)}`;
  const kind = w.kinds[uniformInt(rng, 0, w.kinds.length - 1)]!;
  switch (kind) {
    case 'get':
      return { type: 'get', key: key() };
    case 'put':
      return { type: 'put', key: key(), value: nextValue() };
    case 'delete':
      return { type: 'delete', key: key() };
    case 'range':
      return uniformInt(rng, 0, 1) === 0 ? { type: 'range', key: '\0', rangeEnd: '\0' } : { type: 'range', key: 'k1', rangeEnd: 'k3' };
    case 'txn': {
      const k = key();
      const version = uniformInt(rng, 0, 3);
      return {
        type: 'txn',
        compare: [{ key: k, target: 'version', result: '=', value: version }],
        success: [{ type: 'put', key: k, value: nextValue() }],
        failure: [{ type: 'get', key: k }],
      };
    }
  }
}

/**
 * Runs `w` against `store` on simulated time: each client invokes, the store
 * serves the request 1-10 ms later, the response arrives 1-10 ms after that,
 * and the client waits 0-5 ms before its next request. Returns the history.
 */
export function runWorkload(store: ToyStore, w: Workload, seed: number): Operation<KvInput, KvOutput>[] {
  const rng = xoroshiro128plus(seed);
  let now = 0;
  const rec = new HistoryRecorder<KvInput, KvOutput>({ clock: () => now });
  type Ev = { at: number; seq: number; run: () => void };
  const queue: Ev[] = [];
  let seq = 0;
  const at = (t: number, run: () => void): void => {
    queue.push({ at: t, seq: seq++, run });
  };
  let issued = 0;
  let counter = 0;
  const nextValue = (): string => `v${counter++}`;
  const issue = (client: number): void => {
    if (issued >= w.operations) return;
    issued++;
    const input = randomInput(rng, w, nextValue);
    const handle = rec.invoke(client, input);
    const lost = uniformInt(rng, 1, 100) <= (w.timeoutPercent ?? 0);
    const dropped = lost && uniformInt(rng, 0, 1) === 0;
    at(now + uniformInt(rng, 1, 10), () => {
      if (dropped) {
        handle.unknown();
        at(now + uniformInt(rng, 0, 5), () => issue(client));
        return;
      }
      const output = store.serve(input, now, rng);
      at(now + uniformInt(rng, 1, 10), () => {
        if (lost) handle.unknown();
        else handle.ok(output);
        at(now + uniformInt(rng, 0, 5), () => issue(client));
      });
    });
  };
  for (let c = 0; c < w.clients; c++) at(uniformInt(rng, 0, 5), () => issue(c));
  while (queue.length > 0) {
    let min = 0;
    for (let i = 1; i < queue.length; i++) {
      const a = queue[i]!;
      const b = queue[min]!;
      if (a.at < b.at || (a.at === b.at && a.seq < b.seq)) min = i;
    }
    const ev = queue.splice(min, 1)[0]!;
    now = ev.at;
    ev.run();
  }
  return rec.history();
}

/** The seed for a randomized test: `QUORUMKV_SEED` if set, else a fresh one. */
export function testSeed(): number {
  const env = process.env['QUORUMKV_SEED'];
  if (env !== undefined && env !== '') return Number(env) | 0;
  return (Date.now() ^ (Math.random() * 0x7fffffff)) | 0;
}
