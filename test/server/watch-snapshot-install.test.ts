// Watches on a follower that installs a snapshot from the leader (it was cut
// off while the cluster wrote past its log and compacted): the follower's
// watchers catch up from the restored store, every event of the revisions it
// never applied once, in order, with prevKv when asked and filters kept; or,
// when the snapshot is compacted past a watcher's next revision, the watcher
// is cancelled with the snapshot's compactRevision (etcd's ErrCompacted).
// Seeded: QUORUMKV_SNAPWATCH_SEED=<n> replays one seed,
// QUORUMKV_SNAPWATCH_SEEDS=<n> runs seeds 1..n (default 4).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import type { Event, WatchResponse } from '../../src/mvccpb/index.js';
import { text, type KvNode, type Watch, type WatchOptions } from '../../src/server/index.js';
import { KvCluster } from './helpers.js';


function ev(e: Event): string {
  const prev = e.prevKv === undefined ? '-' : `${text(e.prevKv.value)}@${e.prevKv.modRevision}`;
  return `${e.type} ${text(e.kv.key)}@${e.kv.modRevision}${e.type === 'PUT' ? `=${text(e.kv.value)}` : ''} prev ${prev}`;
}

interface Spec {
  name: string;
  key: string;
  opts: WatchOptions;
}

interface Rec extends Spec {
  responses: WatchResponse[];
  watch: Watch;
}

function open(n: KvNode, spec: Spec): Rec {
  const watch = n.watch(spec.key, spec.opts);
  const r: Rec = { ...spec, responses: [], watch };
  watch.on('response', (x) => r.responses.push(x));
  return r;
}

/** The events of `history` watcher `r` should get from revision `from` on. */
function expected(history: Event[], r: Spec, from: number): string[] {
  const prefix = r.opts.prefix === true;
  return history
    .filter((e) => e.kv.modRevision >= from)
    .filter((e) => (prefix ? text(e.kv.key).startsWith(r.key) : text(e.kv.key) === r.key))
    .filter((e) => !(r.opts.filters ?? []).includes(e.type === 'PUT' ? 'NOPUT' : 'NODELETE'))
    .map((e) => ev(r.opts.prevKv === true ? e : { type: e.type, kv: e.kv }));
}

async function runSeed(seed: number, compactPast: boolean): Promise<void> {
  const rng = xoroshiro128plus(seed);
  const int = (lo: number, hi: number): number => uniformInt(rng, lo, hi);
  // odd seeds: five members, and the leader is stopped while the follower
  // is cut off (the snapshot comes from the next one)
  const changeLeader = seed % 2 === 1;
  const IDS = changeLeader ? ['a', 'b', 'c', 'd', 'e'] : ['a', 'b', 'c'];
  const c = new KvCluster(IDS, seed);
  c.extra = () => ({ snapshotEntries: 20, snapshotCatchUpEntries: 5 });
  const where = `seed ${seed} compactPast ${compactPast}; replay: QUORUMKV_SNAPWATCH_SEED=${seed} node scripts/run-tests.mjs test/server/watch-snapshot-install.test.ts`;
  try {
    await c.startAll();
    let leader = await c.waitLeader();
    // the whole history, from every member, before anything is compacted
    const histories = new Map<string, Event[]>();
    for (const n of c.nodes.values()) {
      const h: Event[] = [];
      histories.set(n.id, h);
      n.watch('', { prefix: true, startRevision: 1, prevKv: true }).on('response', (x) => h.push(...x.events));
    }
    const write = async (n: KvNode, step: number): Promise<void> => {
      const i = int(0, 4);
      const key = `k/${i}`;
      const op = int(0, 9);
      if (op < 5) await c.run(n.put(key, `v${step}`));
      else if (op < 7) await c.run(n.delete(key));
      else await c.run(n.txn({ success: [{ put: { key, value: `t${step}` } }, { deleteRange: { key: `k/${(i + int(1, 4)) % 5}` } }, { put: { key: `k/${int(5, 6)}`, value: `t${step}` } }] }));
    };
    for (let i = 0; i < 10; i++) await write(leader, i);
    const f = c.followers()[0]!;
    await c.waitFor(() => f.status().revision === leader.status().revision, 5_000, 'the follower applies');
    const cut = f.status().revision;
    const specs: Spec[] = [
      { name: 'live', key: 'k/', opts: { prefix: true } },
      { name: 'live-prevKv', key: 'k/', opts: { prefix: true, prevKv: true } },
      { name: 'noDelete', key: 'k/', opts: { prefix: true, filters: ['NODELETE'] } },
      { name: 'noPut-prevKv', key: 'k/', opts: { prefix: true, filters: ['NOPUT'], prevKv: true } },
      { name: 'one-key', key: 'k/1', opts: { prevKv: true } },
      { name: 'from2', key: 'k/', opts: { prefix: true, startRevision: 2, prevKv: true } },
      { name: 'future', key: 'k/', opts: { prefix: true, startRevision: cut + 8 } },
    ];
    const recs = specs.map((s) => open(f, s));
    const startOf = (r: Spec): number => r.opts.startRevision ?? cut + 1;
    let installed = 0;
    f.raft.on('snapshot', (_index, source) => {
      if (source !== 'leader') return;
      installed++;
      // asked while its watchers catch up from the restored store: each
      // gets it once it has every event up to its revision
      f.requestProgress();
    });
    c.net.isolate(f.id);
    // the others go on without it, past what the leader keeps in its log
    await c.waitFor(() => c.leader() !== undefined && c.leader() !== f, 10_000, 'a leader without the follower');
    const others = (): KvNode[] => [...c.nodes.values()].filter((n) => n !== f);
    const steps = int(40, 70);
    const stopAt = changeLeader ? int(5, steps - 5) : -1;
    for (let i = 0; i < steps; i++) {
      if (i === stopAt) {
        await c.stop(c.leader()!.id);
        await c.waitFor(() => c.leader() !== undefined && c.leader() !== f, 10_000, 'a new leader without the follower');
      }
      const live = others();
      await write(live[int(0, live.length - 1)]!, 100 + i);
    }
    leader = c.leader()!;
    const top = leader.status().revision;
    const compactAt = compactPast ? int(cut + 2, top - 1) : int(2, cut);
    await c.run(leader.compact(compactAt));
    for (let i = 0; i < 30; i++) await write(leader, 200 + i); // the log moves past the compaction
    const last = leader.status().revision;
    c.net.heal();
    await c.waitFor(() => f.status().revision === last, 20_000, 'the follower installs the snapshot');
    assert.equal(installed, 1, `the follower installed the leader's snapshot (${where})`);
    await c.clock.advanceAsync(200);
    const history = histories.get(leader.id)!; // one that stayed up
    assert.equal(history.at(-1)?.kv.modRevision, last, 'the whole history');
    for (const r of recs) {
      const got = r.responses.flatMap((x) => x.events.map(ev));
      const cancel = r.responses.find((x) => x.canceled);
      // every revision's events in one response
      const revs = r.responses.flatMap((x) => [...new Set(x.events.map((e) => e.kv.modRevision))]);
      assert.equal(new Set(revs).size, revs.length, `${r.name}: a revision split over responses (${where})`);
      if (compactPast && startOf(r) <= compactAt - 1 && startOf(r) <= cut) {
        // it had everything up to cut; the snapshot has nothing from cut + 1 up to compactAt - 1
        assert.ok(cancel !== undefined, `${r.name}: not cancelled though compacted past it (${where}); got ${got.length}`);
        assert.equal(cancel.compactRevision, compactAt, `${r.name}: compactRevision (${where})`);
        assert.deepEqual(got, expected(history, r, r.opts.startRevision ?? cut + 1).filter((e) => Number(/@(\d+)/.exec(e)![1]) <= cut), `${r.name} (${where})`);
      } else if (compactPast && startOf(r) < compactAt) {
        assert.ok(cancel !== undefined, `${r.name}: not cancelled though compacted past it (${where})`);
        assert.equal(cancel.compactRevision, compactAt, `${r.name}: compactRevision (${where})`);
        assert.deepEqual(got, [], `${r.name} (${where})`);
      } else {
        assert.equal(cancel, undefined, `${r.name}: cancelled (compactRevision ${cancel?.compactRevision}) (${where})`);
        assert.deepEqual(got, expected(history, r, startOf(r)), `${r.name} (${where})`);
        // a progress notification claims only revisions whose events were sent before it
        const want = expected(history, r, startOf(r));
        let sent = 0;
        let progress = 0;
        for (const x of r.responses) {
          sent += x.events.length;
          if (x.events.length > 0 || x.canceled) continue;
          progress = Math.max(progress, x.header.revision);
          const due = want.filter((e) => Number(/@(\d+)/.exec(e)![1]) <= x.header.revision).length;
          assert.ok(sent >= due, `${r.name}: progress at ${x.header.revision} after ${sent} of ${due} events (${where})`);
        }
        assert.ok(progress >= top, `${r.name}: the progress asked for after the snapshot came at ${progress} (${where})`);
      }
    }
  } finally {
    await c.closeAll();
  }
}

const fixed = process.env.QUORUMKV_SNAPWATCH_SEED;
const seeds = fixed !== undefined ? [Number(fixed)] : Array.from({ length: Number(process.env.QUORUMKV_SNAPWATCH_SEEDS ?? 4) }, (_, i) => i + 1);

test('a follower that installs a snapshot delivers every revision it skipped to its watchers, once, in order, with prevKv and filters', async () => {
  for (const seed of seeds) await runSeed(seed, false);
});

test('a follower that installs a snapshot compacted past its watchers cancels them with the snapshot compactRevision', async () => {
  for (const seed of seeds) await runSeed(seed, true);
});
