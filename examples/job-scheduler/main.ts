// The job scheduler on a simulated 3-member cluster: three instances elect
// a leader, the leader runs the jobs, its member is paused past its lease,
// another instance takes over, and the paused one's late writes are fenced
// off by the leader key's createRevision.
//
//   node --import tsx examples/job-scheduler/main.ts [seed]
import { Simulation } from '../../src/testing/index.js';
import { JobScheduler, type Job } from './scheduler.js';

const jobs: Job[] = [
  { name: 'report', everyMs: 150, steps: 3, stepMs: 40 },
  { name: 'cleanup', everyMs: 250, steps: 2, stepMs: 60 },
];
const seed = Number(process.argv[2] ?? 11);
const sim = new Simulation({ seed, nodes: 3 });
try {
  await sim.start();
  await sim.until(() => sim.leaderId() !== undefined, { what: 'a Raft leader' });
  const say = (line: string): void => console.log(`${String(sim.now()).padStart(5)} ms  ${line}`);
  const schedulers = sim.ids.map((id) => new JobScheduler({ id: `s-${id}`, kv: sim.client(id), clock: sim.clock, jobs, log: say }));
  for (const s of schedulers) s.start();
  await sim.until(() => schedulers.some((s) => s.token !== undefined), { what: 'a scheduler leader' });
  await sim.run(500);
  const old = schedulers.find((s) => s.token !== undefined)!;
  const oldToken = old.token!;
  const member = sim.ids[schedulers.indexOf(old)]!;
  say(`pausing member ${member}, beside the scheduler leader s-${member}, for 2500 ms`);
  sim.pauseClock(member, 2500);
  await sim.run(5000);
  for (const s of schedulers) await sim.drive(s.stop());
  for (const s of schedulers) {
    const by = new Map<string, number>();
    for (const r of s.runs) by.set(r.outcome, (by.get(r.outcome) ?? 0) + 1);
    say(`${s === old ? 'deposed' : 'instance'} ${sim.ids[schedulers.indexOf(s)]}: runs ${JSON.stringify(Object.fromEntries(by))}`);
  }
  const lin = sim.checkLinearizable();
  say(`history: ${lin.ok ? 'linearizable' : lin.describe()}; invariants: ${sim.violations().length === 0 ? 'held' : sim.violations().join('; ')}`);
  say(`trace hash ${sim.traceHash()} (the same on every run of seed ${seed})`);
  // what the run above claims, checked
  const successors = schedulers.flatMap((s) => s.runs).filter((r) => r.token > oldToken && r.outcome === 'completed');
  if (!lin.ok || sim.violations().length > 0) throw new Error('the history is not linearizable or an invariant broke');
  if (successors.length === 0) throw new Error('no other instance took over and completed a job');
  if (!old.runs.some((r) => r.outcome === 'fenced')) throw new Error('the paused leader was never fenced off');
  if (schedulers.flatMap((s) => s.runs).some((r) => r.outcome === 'fenced' && r.token !== oldToken)) throw new Error('a run of another leader was fenced');
  console.log('job scheduler example: OK');
} finally {
  await sim.close();
}
