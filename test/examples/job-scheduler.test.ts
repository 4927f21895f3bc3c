// The job-scheduler example (examples/job-scheduler) on a Simulation: one
// scheduler instance beside each member elects a leader with a lease and a
// txn; only the leader runs jobs, and every job write is fenced by the
// leader key's createRevision. The committed history must show that no job
// ran under two leaders at once: every job write carries the token of the
// leader key current at its revision, tokens never go back, and the runs of
// a job never interleave. Checked under random partitions, pauses and
// crashes, and in the classic fencing case: a leader paused past its lease
// whose writes arrive after another instance took over.
// Replay a seed: QUORUMKV_SIM_SEED=<n> node scripts/run-tests.mjs test/examples/job-scheduler.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JobScheduler, parseJobWrite, type Job, type JobRun } from '../../examples/job-scheduler/scheduler.js';
import { Simulation, type WatchEventRecord } from '../../src/testing/index.js';
import { KNOWN_FATAL_ERRORS } from '../simulation/defaults.js';
import type { KV } from '../../src/server/index.js';
import type { LeaseGrantResponse } from '../../src/mvccpb/index.js';

const JOBS: Job[] = [
  { name: 'report', everyMs: 150, steps: 3, stepMs: 40 },
  { name: 'cleanup', everyMs: 250, steps: 2, stepMs: 60 },
];

/** Checks the fencing of every job write in the committed history; returns the violations and the tokens seen. */
function checkFencing(events: readonly WatchEventRecord[]): { violations: string[]; tokens: Set<number>; writes: number } {
  const violations: string[] = [];
  const tokens = new Set<number>();
  let leaderCreate = 0;
  let writes = 0;
  const lastToken = new Map<string, number>();
  const lastRun = new Map<string, { runId: string; step: number }>();
  const closedRuns = new Set<string>();
  for (const e of events) {
    const key = e.kv.key;
    if (key === 'scheduler/leader') {
      leaderCreate = e.type === 'PUT' ? e.kv.createRevision ?? 0 : 0;
      continue;
    }
    if (!key.startsWith('scheduler/jobs/') || e.type !== 'PUT') continue;
    const job = key.slice('scheduler/jobs/'.length);
    const w = parseJobWrite(e.kv.value ?? '');
    const at = `revision ${e.kv.modRevision}, job ${job}`;
    if (w === undefined) {
      violations.push(`${at}: unreadable value ${JSON.stringify(e.kv.value)}`);
      continue;
    }
    writes++;
    tokens.add(w.token);
    if (w.token !== leaderCreate) violations.push(`${at}: written with token ${w.token} while the leader key's createRevision was ${leaderCreate}`);
    const prevToken = lastToken.get(job) ?? 0;
    if (w.token < prevToken) violations.push(`${at}: token ${w.token} after token ${prevToken}`);
    lastToken.set(job, w.token);
    const prev = lastRun.get(job);
    if (prev !== undefined && prev.runId !== w.runId) closedRuns.add(`${job}/${prev.runId}`);
    if (closedRuns.has(`${job}/${w.runId}`)) violations.push(`${at}: run ${w.runId} wrote again after another run of the job had started`);
    const expected = prev !== undefined && prev.runId === w.runId ? prev.step + 1 : 1;
    if (w.step !== expected) violations.push(`${at}: run ${w.runId} wrote step ${w.step}, expected step ${expected}`);
    lastRun.set(job, { runId: w.runId, step: w.step });
  }
  return { violations, tokens, writes };
}

interface Run {
  sim: Simulation;
  schedulers: JobScheduler[];
}

/** A simulation with one scheduler beside each member, all started. */
async function startSchedulers(seed: number, nodes: 3 | 5): Promise<Run> {
  const sim = new Simulation({ seed, nodes, knownFatalErrors: KNOWN_FATAL_ERRORS });
  await sim.start();
  await sim.until(() => sim.leaderId() !== undefined, { what: 'a Raft leader' });
  const schedulers = sim.ids.map(
    (id) => new JobScheduler({ id: `s-${id}`, kv: sim.client(id, { name: `s-${id}` }), clock: sim.clock, jobs: JOBS, log: (l) => sim.log(l) }),
  );
  for (const s of schedulers) s.start();
  return { sim, schedulers };
}

/** Stops the schedulers, checks the fencing, the invariants and the history; returns the tokens seen and the runs. */
async function finish({ sim, schedulers }: Run): Promise<{ tokens: Set<number>; runs: JobRun[] }> {
  for (const s of schedulers) await sim.drive(s.stop(), { maxMs: 3000 }).catch(() => undefined);
  await sim.run(200);
  const { violations, tokens, writes } = checkFencing(sim.committedEvents());
  assert.deepEqual(violations, [], `seed ${sim.seed}`);
  assert.ok(writes > 0, `seed ${sim.seed}: jobs ran`);
  const runs = schedulers.flatMap((s) => s.runs);
  assert.ok(runs.some((r) => r.outcome === 'completed'), `seed ${sim.seed}: some run completed`);
  assert.deepEqual(sim.violations(), [], `seed ${sim.seed}`);
  const lin = sim.checkLinearizable();
  assert.ok(lin.ok, lin.describe());
  return { tokens, runs };
}

test('only the elected scheduler runs jobs: under random partitions, pauses and crashes no job runs under two leaders at once', async () => {
  const only = process.env.QUORUMKV_SIM_SEED;
  const seeds = only !== undefined ? [Number(only)] : [1, 2, 3, 4];
  let leaderChanges = 0;
  const outcomes = new Map<string, number>();
  for (const seed of seeds) {
    const run = await startSchedulers(seed, seed % 2 === 1 ? 3 : 5);
    try {
      const { sim } = run;
      sim.randomFaults({
        until: 4000,
        // long enough for a paused member's scheduler to lose its 1 s lease
        durationMs: { min: 200, max: 2500 },
        weights: { split: 3, isolateLeader: 3, partition: 2, pause: 4, crash: 1, crashLeader: 1, bridge: 0, oneWay: 0, drop: 1, delay: 1, duplicate: 0, reorder: 0 },
      });
      await sim.run(4000);
      await sim.settled();
      await sim.calm();
      await sim.run(3000); // after the faults, some scheduler leads and runs jobs again
      const { tokens, runs } = await finish(run);
      leaderChanges += tokens.size - 1;
      for (const r of runs) outcomes.set(r.outcome, (outcomes.get(r.outcome) ?? 0) + 1);
    } finally {
      await run.sim.close();
    }
  }
  console.log(`${seeds.length} seeds: ${leaderChanges} scheduler leader changes; run outcomes ${JSON.stringify(Object.fromEntries(outcomes))}`);
  if (only === undefined) assert.ok(leaderChanges > 0, 'the faults moved the scheduler leadership at least once');
});

test('a scheduler leader paused past its lease has its late job writes fenced off once another instance leads', async () => {
  const only = process.env.QUORUMKV_SIM_SEED;
  const seeds = only !== undefined ? [Number(only)] : [11, 12, 13];
  for (const seed of seeds) {
    const run = await startSchedulers(seed, seed % 2 === 1 ? 3 : 5);
    try {
      const { sim, schedulers } = run;
      await sim.until(() => schedulers.some((s) => s.token !== undefined), { what: 'a scheduler leader' });
      await sim.run(500);
      const old = schedulers.find((s) => s.token !== undefined)!;
      const member = sim.ids[schedulers.indexOf(old)]!;
      const oldToken = old.token!;
      sim.pauseClock(member, 2500);
      await sim.until(() => schedulers.some((s) => s !== old && s.token !== undefined), { maxMs: 2500, what: 'another scheduler leader' });
      await sim.run(3000);
      const { tokens, runs } = await finish(run);
      assert.ok(tokens.size >= 2, `seed ${seed}: the leadership moved`);
      const fenced = runs.filter((r) => r.outcome === 'fenced');
      assert.ok(fenced.length > 0, `seed ${seed}: the paused leader tried to write again and was fenced off`);
      assert.ok(fenced.every((r) => r.token === oldToken), `seed ${seed}: only the deposed leader was fenced`);
    } finally {
      await run.sim.close();
    }
  }
});

test('a scheduler stopped while its lease grant is in flight leaves no leader key and no lease behind', async () => {
  const sim = new Simulation({ seed: 21, nodes: 3, knownFatalErrors: KNOWN_FATAL_ERRORS });
  try {
    await sim.start();
    await sim.until(() => sim.leaderId() !== undefined, { what: 'a Raft leader' });
    const client = sim.client(sim.ids[0]!);
    let scheduler: JobScheduler | undefined;
    let stopping: Promise<void> | undefined;
    let granted: Promise<LeaseGrantResponse> | undefined;
    // stop() is called right after the scheduler has sent its first lease grant
    const kv = new Proxy(client, {
      get(target, prop) {
        if (prop === 'leaseGrant') {
          return (ttl: number) => {
            granted ??= target.leaseGrant(ttl);
            stopping ??= scheduler!.stop();
            return granted;
          };
        }
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as unknown as KV;
    scheduler = new JobScheduler({ id: 's-stopped', kv, clock: sim.clock, jobs: JOBS, ttlSeconds: 5 });
    scheduler.start();
    await sim.until(() => stopping !== undefined, { what: 'the first lease grant' });
    await sim.drive(stopping!);
    const lease = await sim.drive(granted!);
    await sim.run(500);
    const key = await sim.drive(client.get(scheduler.leaderKey));
    assert.equal(key, undefined, `a stopped scheduler holds ${scheduler.leaderKey} (lease ${key?.lease}): nobody leads for a whole TTL`);
    assert.equal((await sim.drive(client.leaseTimeToLive(lease.id))).ttl, -1, 'the lease granted as the scheduler stopped was not revoked');
    assert.equal(scheduler.token, undefined);
  } finally {
    await sim.close();
  }
});
