// Watch guarantees under stress (etcd's watch API: ordered, unique,
// reliable, atomic, resumable; progress notifications never claim a revision
// whose events were not sent; a slow consumer never blocks writes and is
// cancelled with compactRevision only when the history it needs is gone).
// Many watchers on overlapping keys, ranges and prefixes with small queues;
// consumers that read slowly, stop and resume, cancel themselves or create
// watches from a listener; large txns; compactions at the revision a lagging
// watcher needs next and just below it; progress on demand and periodic; the
// store closed at the end. Every stream is compared with the history the
// test computes from its own writes. On a database without synchronous
// reads (half the seeds), reads may take a few turns, and prevKv watches are
// created while a batch executes: those wait for the previous versions the
// batch wrote without. Half the seeds have a twin store whose snapshot this
// one restores at times, as a follower that missed entries; new watches,
// progress requests and consumers' reads come while some restores run.
// Half the seeds hold back the watches from now at times (nested holds
// too, as a restarted member's and a snapshot install's), also while a
// restore runs, and release them later (or close the store while held),
// cancelling some held ones: such a watch starts after the revision the
// store has at the last release (while a restore runs, the restored one).
// Seeded: QUORUMKV_WATCH_STRESS_SEED=<n> replays one seed,
// QUORUMKV_WATCH_STRESS_SEEDS=<from>-<to> runs a range of them, and
// QUORUMKV_WATCH_STRESS_NO_GETSYNC=1 takes the database without synchronous
// reads for every seed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLevel } from 'memory-level';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import type { Event, KeyValue, RequestOp, WatchCreateRequest, WatchFilter, WatchResponse } from '../../src/mvccpb/index.js';
import { MvccStore, type Watcher } from '../../src/mvcc/index.js';
import type { BatchTimer, WriteRequest } from '../../src/mvcc/index.js';
import { b, openStore, s } from './helpers.js';

interface MKv {
  key: string;
  value: string;
  create: number;
  mod: number;
  version: number;
}

interface MEvent {
  rev: number;
  type: 'PUT' | 'DELETE';
  key: string;
  kv?: MKv;
  prev?: MKv;
}

const KEYS = ['a0', 'a1', 'a2', 'a3', 'b0', 'b1', 'b2', 'b3', 'c0', 'c1', 'c2'];

/** The history the test computes from its own writes. */
class Model {
  rev = 1;
  readonly state = new Map<string, MKv>();
  readonly events: MEvent[] = [];
  compactions: number[] = [];

  /** Applies one revision's ops in order; returns the events (none: the revision does not move). */
  apply(ops: ({ put: [string, string] } | { del: [string, string | undefined] })[]): MEvent[] {
    const rev = this.rev + 1;
    const out: MEvent[] = [];
    // etcd's prevKv is the key at the revision before (a key put and
    // deleted in one txn has none; a key written twice, its value before)
    const before = new Map(this.state);
    for (const op of ops) {
      if ('put' in op) {
        const [key, value] = op.put;
        const prev = this.state.get(key);
        const kv: MKv = { key, value, create: prev?.create ?? rev, mod: rev, version: (prev?.version ?? 0) + 1 };
        this.state.set(key, kv);
        const was = before.get(key);
        out.push({ rev, type: 'PUT', key, kv, ...(was && kv.create !== rev ? { prev: was } : {}) });
      } else {
        const [key, end] = op.del;
        const keys = [...this.state.keys()].filter((k) => (end === undefined ? k === key : k >= key && k < end)).sort();
        for (const k of keys) {
          this.state.delete(k);
          const was = before.get(k);
          out.push({ rev, type: 'DELETE', key: k, ...(was ? { prev: was } : {}) });
        }
      }
    }
    if (out.length > 0) {
      this.rev = rev;
      this.events.push(...out);
    }
    return out;
  }
}

interface Spec {
  name: string;
  key: string;
  rangeEnd?: string;
  startRevision: number;
  prevKv: boolean;
  filters: WatchFilter[];
  /** With startRevision 0: the revision the store had when the watch was created. */
  createdAt: number;
  /** Created once the store had begun a restore to this revision: a watch from now starts after it. */
  restoredTo?: number;
  /** A watch from now created while held back: `createdAt` and `restoredTo` are those of the last release. */
  held?: boolean;
}

interface Rec {
  spec: Spec;
  w: Watcher;
  /** Responses with the compaction revision applied when each was received. */
  got: { resp: WatchResponse; compactedAt: number }[];
  covered: number;
  ended: boolean;
  reader?: Promise<void>;
}

function matches(spec: Spec, key: string): boolean {
  if (spec.rangeEnd === undefined) return key === spec.key;
  if (spec.rangeEnd === '\0') return key >= spec.key;
  return key >= spec.key && key < spec.rangeEnd;
}

function evStr(e: Event): string {
  const kv = (x: KeyValue) => `${s(x.key)}=${s(x.value)}@${x.createRevision}/${x.modRevision}/${x.version}`;
  return e.type === 'PUT' ? `PUT ${kv(e.kv)}` : `DELETE ${s(e.kv.key)}@${e.kv.modRevision}`;
}

function mStr(e: MEvent): string {
  const kv = (x: MKv) => `${x.key}=${x.value}@${x.create}/${x.mod}/${x.version}`;
  return e.type === 'PUT' ? `PUT ${kv(e.kv!)}` : `DELETE ${e.key}@${e.rev}`;
}

function mKvStr(x: MKv | undefined): string {
  return x === undefined ? '-' : `${x.key}=${x.value}@${x.create}/${x.mod}/${x.version}`;
}

function kvStr(x: KeyValue | undefined): string {
  return x === undefined ? '-' : `${s(x.key)}=${s(x.value)}@${x.createRevision}/${x.modRevision}/${x.version}`;
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A timer the test fires by hand (periodic progress notifications). */
class ManualTimer implements BatchTimer {
  private next = 1;
  readonly pending = new Map<number, () => void>();
  setTimeout(fn: () => void, _ms: number): unknown {
    const h = this.next++;
    this.pending.set(h, fn);
    return h;
  }
  clearTimeout(h: never): void {
    this.pending.delete(h as number);
  }
  fire(): void {
    const fns = [...this.pending.values()];
    this.pending.clear();
    for (const f of fns) f();
  }
}

async function runSeed(seed: number): Promise<string[]> {
  const rng = xoroshiro128plus(seed);
  const int = (lo: number, hi: number): number => uniformInt(rng, lo, hi);
  const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)]!;
  const timer = new ManualTimer();
  const db = new MemoryLevel<string, string>();
  // the choices added later draw from their own generator: the earlier ones stay as they were for a seed
  const rng2 = xoroshiro128plus(seed + 0x9e3779b9);
  const int2 = (lo: number, hi: number): number => uniformInt(rng2, lo, hi);
  // the holds of the watches from now draw from a third one
  const rng3 = xoroshiro128plus(seed + 0x7f4a7c15);
  const int3 = (lo: number, hi: number): number => uniformInt(rng3, lo, hi);
  const holding = int3(0, 1) === 0;
  const noGetSync = int(0, 1) === 0 || process.env.QUORUMKV_WATCH_STRESS_NO_GETSYNC === '1';
  if (noGetSync) Object.defineProperty(db, 'supports', { value: { ...db.supports, getSync: false } });
  if (noGetSync && int2(0, 1) === 0) {
    // point reads that take a few turns: writes and notifications come meanwhile
    const raw = db as unknown as { _get: (k: unknown, o: unknown) => Promise<unknown> };
    const get = raw._get.bind(db);
    raw._get = async (k, o) => {
      for (let i = int2(0, 3); i > 0; i--) await tick();
      return get(k, o);
    };
  }
  const t = await openStore(
    {
      timer,
      watch: { queueCapacity: int(1, 3), maxRevisionsPerSync: int(1, 6), progressIntervalMs: 1000 },
      // writes held back for the manual timer: catch-up reads take records still in the write buffer
      batchIntervalMs: pick([0, 5]),
      compactionBatchLimit: int(1, 4),
    },
    db,
  );
  const store = t.store;
  // another member with the same entries: at times this store misses some
  // and restores that member's snapshot instead (a follower catching up)
  const twin = int(0, 1) === 0 ? await MvccStore.open(new MemoryLevel<string, string>().sublevel('mvcc')) : undefined;
  let lagging = false;
  let index = 0;
  const applyEverywhere = (entries: { index: number; request: WriteRequest }[], acknowledge: 'written' | 'applied'): Promise<void> => {
    const mine = lagging ? Promise.resolve() : store.applyBatch(entries, { acknowledge }).then((results) => {
      results.forEach((r, i) => assert.equal(r.status, 'applied', `seed ${seed}: entry ${i} ${JSON.stringify(r)}`));
    });
    const theirs = twin?.applyBatch(entries).then((results) => {
      results.forEach((r, i) => assert.equal(r.status, 'applied', `seed ${seed}: twin entry ${i} ${JSON.stringify(r)}`));
    });
    return Promise.all([mine, theirs]).then(() => {});
  };
  const model = new Model();
  const recs: Rec[] = [];
  const violations: string[] = [];
  let gates: (() => void)[] = [];
  let stalled = true;
  let closing = false;
  const inFlight: Promise<void>[] = [];

  const cover = (r: Rec, resp: WatchResponse): void => {
    if (!resp.canceled || resp.events.length > 0) r.covered = Math.max(r.covered, resp.header.revision);
  };

  /** The revision a restore under way brings the store to. */
  let restoringTo: number | undefined;
  /** Whether the store has begun the restore under way (rather than a restore() call still on its way to it). */
  const inRestore = (): boolean => restoringTo !== undefined && (store as unknown as { hub: { restoring: boolean } }).hub.restoring;
  /** Holds of the watches from now not released yet, and the watches created meanwhile. */
  let holds = 0;
  let held: Rec[] = [];
  /** The watches held back start: after the revision the store has now (while a restore runs, the restored one). */
  const started = (recs: Rec[]): void => {
    const restored = inRestore() ? restoringTo : undefined;
    for (const r of recs) {
      r.spec.createdAt = store.currentRevision();
      if (restored === undefined) delete r.spec.restoredTo;
      else r.spec.restoredTo = restored;
      r.covered = Math.max(r.covered, r.spec.createdAt);
    }
  };
  const hold = (): void => {
    store.holdWatchesFromNow();
    holds++;
  };
  const release = (): void => {
    store.releaseWatchesFromNow();
    if (--holds > 0) return;
    const recs = held;
    held = [];
    started(recs);
    for (const r of recs) if (r.w.state === 'waiting') violations.push(`${r.spec.name}: still waiting after the last release`);
  };
  /** Holds or releases (nested, up to two here), or cancels a watch held back. */
  const holdOrRelease = (): void => {
    if (held.length > 0 && int3(0, 5) === 0) {
      const r = held[int3(0, held.length - 1)]!;
      r.ended = true;
      void r.w.cancel();
    } else if (holds === 0 || (holds === 1 && int3(0, 1) === 0)) hold();
    else release();
  };
  const open = (spec: Omit<Spec, 'name' | 'createdAt'>, consumer: string, depth = 0): Rec | undefined => {
    const req: WatchCreateRequest = {
      key: b(spec.key),
      ...(spec.rangeEnd !== undefined ? { rangeEnd: spec.rangeEnd === '\0' ? new Uint8Array([0]) : b(spec.rangeEnd) } : {}),
      ...(spec.startRevision > 0 ? { startRevision: spec.startRevision } : {}),
      prevKv: spec.prevKv,
      filters: spec.filters,
      progressNotify: true,
    };
    let w: Watcher;
    // whether the store had begun the restore (rather than a restore() call
    // still on its way to it): a watch from now then starts after the
    // restored revision
    const restoring = inRestore();
    try {
      w = store.watch(req);
    } catch (err) {
      if (closing) return undefined;
      throw err;
    }
    // the consumer's own random choices: when its reads and listeners run
    // does not change the writes the seed makes
    const own = xoroshiro128plus(seed * 1009 + recs.length);
    const wint = (lo: number, hi: number): number => uniformInt(own, lo, hi);
    const waits = holds > 0 && spec.startRevision <= 0;
    const full: Spec = { ...spec, name: `w${recs.length}:${consumer}`, createdAt: store.currentRevision(), ...(restoring ? { restoredTo: restoringTo } : {}), ...(waits ? { held: true } : {}) };
    const rec: Rec = { spec: full, w, got: [], covered: spec.startRevision > 0 ? spec.startRevision - 1 : full.createdAt, ended: false };
    recs.push(rec);
    if (waits) held.push(rec);
    if ((w.state === 'waiting') !== waits) violations.push(`${full.name}: state ${w.state} ${waits ? 'while held' : 'while not held'}`);
    const record = (resp: WatchResponse): void => {
      rec.got.push({ resp, compactedAt: store.compactRevision() });
      cover(rec, resp);
      if (resp.canceled) rec.ended = true;
    };
    if (consumer === 'emitter') {
      let n = 0;
      const cancelAfter = wint(0, 2) === 0 ? wint(1, 6) : -1;
      const spawnAt = depth < 2 && wint(0, 2) === 0 ? wint(1, 4) : -1;
      w.on('response', (resp) => {
        record(resp);
        n++;
        if (n === cancelAfter) {
          rec.ended = true;
          void w.cancel();
        }
        if (n === spawnAt && !closing) {
          // a watch created from a listener, resuming after what this one got
          const from = wint(0, 1) === 0 ? rec.covered + 1 : 0;
          open({ ...randomRange(wint), startRevision: from, prevKv: wint(0, 1) === 0, filters: randomFilters(wint) }, ['fast', 'slow', 'emitter'][wint(0, 2)]!, depth + 1);
        }
      });
      w.on('end', () => {
        rec.ended = true;
      });
    } else {
      rec.reader = (async () => {
        for (;;) {
          const r = await w.next();
          if (r.done) break;
          record(r.value);
          if (consumer === 'slow') for (let i = wint(0, 3); i > 0; i--) await tick();
          if (consumer === 'stall' && stalled && wint(0, 3) > 0) await new Promise<void>((res) => gates.push(res));
        }
        rec.ended = true;
      })();
    }
    return rec;
  };

  const randomRange = (r = int): { key: string; rangeEnd?: string } => {
    const pick = <T>(xs: readonly T[]): T => xs[r(0, xs.length - 1)]!;
    switch (r(0, 3)) {
      case 0:
        return { key: pick(KEYS) };
      case 1: {
        const p = pick(['a', 'b', 'c']);
        return { key: p, rangeEnd: String.fromCharCode(p.charCodeAt(0) + 1) };
      }
      case 2: {
        const x = pick(KEYS);
        const y = pick(KEYS);
        return x < y ? { key: x, rangeEnd: y } : { key: y, rangeEnd: x === y ? 'z' : x };
      }
      default:
        return { key: pick(['a', 'b1', 'c']), rangeEnd: '\0' };
    }
  };
  const randomFilters = (r = int): WatchFilter[] => ([[], [], [], ['NOPUT'], ['NODELETE']] as WatchFilter[][])[r(0, 4)]!;

  const randomWatch = (r = int): void => {
    const pick = <T>(xs: readonly T[]): T => xs[r(0, xs.length - 1)]!;
    const cur = model.rev;
    const startRevision = pick([0, 0, r(1, cur), Math.max(1, cur - r(0, 5))]);
    open({ ...randomRange(r), startRevision, prevKv: r(0, 1) === 0, filters: randomFilters(r) }, pick(['fast', 'slow', 'stall', 'stall', 'emitter']));
  };

  /** One revision's worth of ops (a put, a delete, a range delete, or a large txn). */
  const randomOps = (): { req: WriteRequest; ops: ({ put: [string, string] } | { del: [string, string | undefined] })[] } => {
    const v = `v${int(0, 999)}`;
    switch (int(0, 4)) {
      case 0:
      case 1: {
        const k = pick(KEYS);
        return { req: { put: { key: b(k), value: b(v) } }, ops: [{ put: [k, v] }] };
      }
      case 2: {
        const k = pick(KEYS);
        return { req: { deleteRange: { key: b(k) } }, ops: [{ del: [k, undefined] }] };
      }
      case 3: {
        const p = pick(['a', 'b', 'c']);
        const e = String.fromCharCode(p.charCodeAt(0) + 1);
        return { req: { deleteRange: { key: b(p), rangeEnd: b(e) } }, ops: [{ del: [p, e] }] };
      }
      default: {
        // a large txn: many keys in one revision, more events than a queue holds
        const keys = KEYS.filter(() => int(0, 2) > 0);
        const ops: ({ put: [string, string] } | { del: [string, string | undefined] })[] = [];
        const success: RequestOp[] = [];
        for (const k of keys) {
          if (int(0, 4) === 0) {
            ops.push({ del: [k, undefined] });
            success.push({ requestDeleteRange: { key: b(k) } });
          } else if (int(0, 5) === 0) {
            // put and deleted in the same revision (nested txns)
            ops.push({ put: [k, v] }, { del: [k, undefined] });
            success.push({ requestTxn: { success: [{ requestPut: { key: b(k), value: b(v) } }] } }, { requestTxn: { success: [{ requestDeleteRange: { key: b(k) } }] } });
          } else {
            ops.push({ put: [k, v] });
            success.push({ requestPut: { key: b(k), value: b(v) } });
          }
        }
        return { req: { txn: { success } }, ops };
      }
    }
  };

  /** The next revision a lagging watcher needs. */
  const laggingNeed = (): number | undefined => {
    const lag = recs.filter((r) => !r.ended && r.covered < model.rev);
    if (lag.length === 0) return undefined;
    return pick(lag).covered + 1;
  };

  const steps = int(60, 140);
  for (let step = 0; step < steps; step++) {
    if (holding && int3(0, 7) === 0) holdOrRelease();
    const what = int(0, 19);
    if (what < 3) {
      randomWatch();
    } else if (what < 13) {
      // one entry, or several in one batch (several revisions per notification)
      const n = int(0, 3) === 0 ? int(2, 5) : 1;
      const entries = [];
      for (let i = 0; i < n; i++) {
        const { req, ops } = randomOps();
        model.apply(ops);
        entries.push({ index: ++index, request: req });
      }
      const acknowledge = pick(['written', 'applied'] as const);
      const before = store.currentRevision();
      const applying = applyEverywhere(entries, acknowledge);
      if (n > 1 && int2(0, 1) === 0) {
        // a watch from now created while the batch executes: the revisions
        // executed before it came were written without prevKv
        for (let k = int2(0, 12); k > 0 && store.currentRevision() < before + n; k--) await Promise.resolve();
        open({ ...randomRange(int2), startRevision: 0, prevKv: int2(0, 3) > 0, filters: randomFilters(int2) }, (['fast', 'slow', 'stall', 'emitter'] as const)[int2(0, 3)]!);
      }
      // sometimes the next step runs while this batch applies
      if (int(0, 3) === 0) inFlight.push(applying);
      else {
        await applying;
        await Promise.all(inFlight.splice(0));
        if (!lagging) assert.equal(store.currentRevision(), model.rev, `seed ${seed}: the model's revision`);
      }
    } else if (what < 15) {
      // compaction at the revision a lagging watcher needs next, or just below it
      const need = laggingNeed();
      const last = model.compactions[model.compactions.length - 1] ?? 0;
      let rev = need === undefined ? int(1, model.rev) : need - int(0, 1);
      rev = Math.min(rev, model.rev);
      if (rev > last && rev >= 1) {
        model.compactions.push(rev);
        await applyEverywhere([{ index: ++index, request: { compaction: { revision: rev } } }], 'written');
      }
    } else if (what < 17) {
      if (int(0, 1) === 0) store.requestProgress();
      else {
        const live = recs.filter((r) => !r.ended);
        if (live.length > 0) store.requestProgress(pick(live).w);
      }
      if (int(0, 1) === 0) timer.fire();
    } else if (what < 18 && twin !== undefined && int(0, 1) === 0) {
      if (!lagging) lagging = true;
      else {
        await Promise.all(inFlight.splice(0));
        // watches from now created while the restore runs held back, at times
        if (holding && int3(0, 1) === 0) hold();
        const restoring = store.restore(await twin.snapshot());
        if (int2(0, 1) === 0) {
          // while it runs: new watches, progress requests, consumers reading
          restoringTo = model.rev;
          let done = false;
          void restoring.then(() => (done = true), () => (done = true));
          for (let k = int2(1, 6); k > 0 && !done; k--) {
            for (let j = int2(0, 4); j > 0; j--) await tick();
            const act = int2(0, 3);
            if (act === 0) randomWatch(int2);
            else if (act === 1) store.requestProgress();
            else if (act === 2) {
              const g = gates;
              gates = [];
              for (const f of g) f();
            } else timer.fire();
            if (holding && int3(0, 1) === 0) holdOrRelease();
          }
        } else if (holding && holds > 0 && int3(0, 1) === 0) {
          // the watches held back start while it runs: after the restored revision
          restoringTo = model.rev;
          let done = false;
          void restoring.then(() => (done = true), () => (done = true));
          // (a restore on a memory database runs in microtasks: looked for between them)
          for (let k = 0; k < 1000 && !done && !inRestore(); k++) await Promise.resolve();
          for (let k = int3(0, 20); k > 0 && !done; k--) await Promise.resolve();
          while (holds > 0) release();
        }
        await restoring;
        restoringTo = undefined;
        lagging = false;
        assert.equal(store.currentRevision(), model.rev, `seed ${seed}: the model's revision after a restore`);
      }
    } else if (what < 18) {
      // stalled consumers read again for a while
      const g = gates;
      gates = [];
      for (const f of g) f();
    } else {
      for (let i = int(1, 5); i > 0; i--) await tick();
      if (int(0, 1) === 0) timer.fire();
    }
  }

  await Promise.all(inFlight.splice(0));
  if (lagging) await store.restore(await twin!.snapshot());
  lagging = false;
  // everyone reads again: every watch not cancelled catches up (or the
  // store closes while some lag)
  const closeEarly = int(0, 3) === 0;
  // the store closes with watches held back at times; else they start now
  if (!closeEarly) while (holds > 0) release();
  stalled = closeEarly;
  for (let i = 0; i < (closeEarly ? int(0, 20) : 2000); i++) {
    const g = gates;
    gates = [];
    for (const f of g) f();
    if (recs.every((r) => r.ended || r.covered >= model.rev)) break;
    if (i % 50 === 49) store.requestProgress();
    await tick();
  }
  for (const r of closeEarly ? [] : recs) {
    if (!r.ended && r.covered < model.rev) violations.push(`${r.spec.name}: did not catch up: covered ${r.covered} of ${model.rev}`);
  }
  closing = true;
  // a watch still held back ends with the store, as if it started now
  started(held);
  await store.close();
  if (holds > 0) store.releaseWatchesFromNow(); // nothing left to start
  await twin?.close();
  stalled = false;
  for (const f of gates) f();
  await Promise.all(recs.map((r) => r.reader));
  await tick();

  // compare each stream with the history
  for (const r of recs) {
    const sp = r.spec;
    const v = (msg: string): void => {
      violations.push(`${sp.name} ${sp.key}..${sp.rangeEnd ?? ''} from ${sp.startRevision || `now(${sp.createdAt}${sp.held === true ? ', held' : ''})`}${sp.prevKv ? ' prevKv' : ''}${sp.filters.length ? ` ${sp.filters}` : ''}: ${msg}`);
    };
    // a watch from now created while a batch applies (from a listener) also
    // gets the revisions that batch executed before it came
    const first = r.got.find((x) => x.resp.events.length > 0)?.resp.events[0]?.kv.modRevision;
    // one created once the store had begun a restore starts after the
    // restored revision (one created before, after the revision before it)
    const restoredTo = sp.restoredTo;
    const from = sp.startRevision > 0 ? sp.startRevision : first !== undefined && first <= sp.createdAt ? first : restoredTo !== undefined ? restoredTo + 1 : sp.createdAt + 1;
    const want = model.events.filter(
      (e) => e.rev >= from && matches(sp, e.key) && !(e.type === 'PUT' && sp.filters.includes('NOPUT')) && !(e.type === 'DELETE' && sp.filters.includes('NODELETE')),
    );
    const seenRevs = new Map<number, number>();
    const received: { ev: Event; compactedAt: number }[] = [];
    let covered = from - 1;
    for (let i = 0; i < r.got.length; i++) {
      const { resp, compactedAt } = r.got[i]!;
      for (const ev of resp.events) {
        const at = seenRevs.get(ev.kv.modRevision);
        if (at !== undefined && at !== i) v(`atomic: revision ${ev.kv.modRevision} split over responses ${at} and ${i}`);
        seenRevs.set(ev.kv.modRevision, i);
        received.push({ ev, compactedAt });
      }
      if (resp.events.length === 0 && !resp.canceled) {
        // a progress notification: every event up to its revision was sent
        const missing = want.filter((e) => e.rev <= resp.header.revision).length - received.length;
        if (missing > 0) v(`progress at ${resp.header.revision} after ${received.length} events, ${missing} events at or below it not sent`);
      }
      if (resp.canceled) {
        if (i !== r.got.length - 1) v('a response after the cancellation');
        const wantBelow = want.filter((e) => e.rev <= resp.header.revision).length;
        if (resp.compactRevision > 0) {
          if (!model.compactions.includes(resp.compactRevision)) v(`cancelled with compactRevision ${resp.compactRevision}, never compacted`);
          if (covered + 1 >= resp.compactRevision) v(`cancelled with compactRevision ${resp.compactRevision} though it had every revision up to ${covered}`);
        } else if (wantBelow > received.length) {
          v(`the last response claims revision ${resp.header.revision}, ${wantBelow - received.length} events at or below it not sent`);
        }
      } else {
        covered = Math.max(covered, resp.header.revision);
      }
    }
    const cancelledByStore = r.got.some((x) => x.resp.canceled && (x.resp.compactRevision > 0 || closeEarly));
    const cancelledByConsumer = !r.got.some((x) => x.resp.canceled);
    const got = received.map((x) => evStr(x.ev));
    const exp = want.map(mStr);
    const prefix = exp.slice(0, got.length);
    if (JSON.stringify(got) !== JSON.stringify(prefix)) {
      const i = got.findIndex((g, j) => g !== prefix[j]);
      v(`ordered/unique/reliable: event ${i} is ${got[i]}, expected ${prefix[i] ?? 'none'} (got ${got.length}, history ${exp.length})`);
    } else if (!cancelledByStore && !cancelledByConsumer && got.length !== exp.length) {
      v(`reliable: got ${got.length} events, history has ${exp.length}; first missing ${exp[got.length]}`);
    }
    // prevKv: the previous version, or none once a compaction removed it
    received.forEach(({ ev, compactedAt }, i) => {
      const m = want[i];
      if (m === undefined || mStr(m) !== evStr(ev)) return;
      if (!sp.prevKv) {
        if (ev.prevKv !== undefined) v(`prevKv on ${evStr(ev)} not asked for`);
        return;
      }
      if (ev.prevKv === undefined) {
        if (m.prev !== undefined && !(m.rev - 1 < compactedAt)) v(`prevKv missing on ${evStr(ev)}: ${mKvStr(m.prev)}`);
      } else if (kvStr(ev.prevKv) !== mKvStr(m.prev)) {
        v(`prevKv of ${evStr(ev)} is ${kvStr(ev.prevKv)}, expected ${mKvStr(m.prev)}`);
      }
    });
  }
  return violations;
}

test('watch guarantees under stress: small queues, slow and stalled consumers, large txns, compactions at a lagging revision, progress, close', async () => {
  const env = process.env.QUORUMKV_WATCH_STRESS_SEED;
  const range = /^(\d+)-(\d+)$/.exec(process.env.QUORUMKV_WATCH_STRESS_SEEDS ?? '');
  const [from, to] = range !== null ? [Number(range[1]), Number(range[2])] : [1000, 1039];
  const seeds = env !== undefined ? [Number(env)] : Array.from({ length: to - from + 1 }, (_, i) => from + i);
  const failures: string[] = [];
  for (const seed of seeds) {
    let v: string[];
    try {
      v = await runSeed(seed);
    } catch (err) {
      v = [`threw ${(err as Error).stack}`];
    }
    if (v.length > 0) failures.push(`seed ${seed} (QUORUMKV_WATCH_STRESS_SEED=${seed}):\n  ${v.slice(0, 8).join('\n  ')}`);
  }
  assert.deepEqual(failures, []);
});
