/**
 * One randomized run of a simulated cluster, start to verdict: random
 * traffic under random faults, then progress, linearizability and watch
 * checks. What `npm run test:sim` and the simulation tests run per seed.
 * @module
 */
import { ErrorCode, UsageError, isQuorumError } from '../../errors.js';
import { checkFiniteMs } from '../../arg-values.js';
import { checkOptionsArg } from '../../option-keys.js';
import type { KV, KvNode } from '../../server/index.js';
import { describeFault, type RandomFaultOptions } from './faults.js';
import { Simulation, type SimulationOptions } from './simulation.js';
import { SimulationError } from './simulation-error.js';
import { startTraffic, type TrafficOptions } from './traffic.js';

/** Options of {@link runScenario}. Times are virtual ms. */
export interface ScenarioOptions {
  /** The seed every random choice is drawn from (see `SimulationOptions.seed`); also picks the default cluster size. */
  seed: number;
  /** Cluster size. Default: 3 for odd seeds, 5 for even seeds. */
  nodes?: 3 | 5;
  /** How long traffic and faults last. Default 3000. */
  durationMs?: number;
  /** Random faults (default true); `false` runs traffic on a healthy network. */
  faults?: boolean | Omit<RandomFaultOptions, 'until'>;
  /** Traffic options (`until` is the duration). */
  traffic?: Omit<TrafficOptions, 'until'>;
  /** Passed to every traffic client (see `SimClientOptions.wrap`). */
  wrap?: (member: KvNode) => KV;
  /** More simulation options (`seed` and `nodes` come from above). */
  simulation?: Omit<SimulationOptions, 'seed' | 'nodes'>;
  /** Called with every trace line as it is written (for a replay). */
  onTrace?: (line: string) => void;
  /** Skip the linearizability and watch checks (for determinism runs). Default false. */
  skipChecks?: boolean;
  /** Passed to `Simulation.checkWatches` (known store bugs to set aside). */
  watchCheck?: { lostTombstonesAtCompaction?: boolean };
}

/** What {@link runScenario} found. */
export interface ScenarioResult {
  /** The seed that was run. */
  seed: number;
  /** Cluster size that was run (3 or 5). */
  nodes: number;
  /** How long traffic and faults lasted, in virtual ms (the option, default 3000). */
  durationMs: number;
  /** True when every invariant held and every check passed. */
  ok: boolean;
  /** One readable paragraph per failed check. */
  failures: string[];
  /** CRC-32 of the whole trace. */
  traceHash: string;
  /** The fault schedule that was drawn, one line per fault. */
  faults: string[];
  /** Client requests issued by the traffic, and how many were answered. */
  requests: { issued: number; ok: number };
  /** Recorded history size. */
  operations: number;
  /** Virtual ms from the end of faults until a write committed. */
  progressMs: number | undefined;
  /** Real ms the run took (excluding the checks) and the checks took. */
  realMs: { run: number; checks: number };
  /** The last trace lines (on failure, for the report). */
  traceTail: string[];
  /** Known issues met (see `SimulationOptions.knownFatalErrors`). */
  knownIssues: string[];
}

/** Reads every key under `prefix` through the leader (or a member in turn), a few times if need be; true once one read succeeded. */
async function finalRead(sim: Simulation, prefix: string): Promise<boolean> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const id = sim.leaderId() ?? sim.ids[attempt % sim.ids.length]!;
    try {
      await sim.drive(sim.client(id, { name: `final@${id}` }).range({ key: prefix, prefix: true }), { maxMs: 5 * sim.electionTimeoutMs });
      return true;
    } catch {
      await sim.run(sim.electionTimeoutMs);
    }
  }
  return false;
}

/** The default cluster size of a seed: 3 members for odd seeds, 5 for even ones. */
export function defaultNodes(seed: number): 3 | 5 {
  return Math.abs(seed) % 2 === 1 ? 3 : 5;
}

/**
 * Runs one seed: starts a cluster, waits for a leader, runs random traffic
 * under a random fault schedule for `durationMs`, ends the faults and
 * checks progress (a write commits within 10 election timeouts), waits for
 * member replacements still under way (30 election timeouts for each), lets
 * the last requests settle, reads every traffic key once more through the
 * leader (recorded: an acknowledged write that was lost makes the history
 * non-linearizable), checks that every member converged to the same store
 * ({@link Simulation.checkConvergence}), then checks the history for
 * linearizability and every watch. Invariants are checked throughout.
 * Never throws for a failed check: the result says what failed.
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an option of a name the
 *   options (`faults`, `traffic` and theirs included) do not declare, a
 *   `durationMs` that is not a finite number >= 0, or a bad value of
 *   `faults` or `traffic`; `QUORUMKV_INVALID_CONFIG` for a bad
 *   `simulation` (the {@link Simulation} constructor's)
 */
export async function runScenario(options: ScenarioOptions): Promise<ScenarioResult> {
  checkOptionsArg(
    options,
    ['seed', 'nodes', 'durationMs', 'faults', 'traffic', 'wrap', 'simulation', 'onTrace', 'skipChecks', 'watchCheck'] satisfies (keyof ScenarioOptions)[],
    'scenario options',
  );
  checkOptionsArg(options.watchCheck, ['lostTombstonesAtCompaction'], 'scenario options.watchCheck');
  const seed = options.seed;
  const nodes = options.nodes ?? defaultNodes(seed);
  const durationMs = options.durationMs ?? 3000;
  // Infinity ran forever; NaN or a negative duration ran nothing and passed
  checkFiniteMs(durationMs, 'scenario options.durationMs');
  const t0 = performance.now();
  const sim = new Simulation({ traceLines: 400, ...(options.simulation ?? {}), seed, nodes });
  if (options.onTrace !== undefined) sim.onTrace(options.onTrace);
  const failures: string[] = [];
  let faults: string[] = [];
  let progressMs: number | undefined;
  let requests = { issued: 0, ok: 0 };
  let tRun = 0;
  let tChecks = 0;
  /** Bad options met when the faults and the traffic are set up: thrown, not a failed run. */
  let refused: UsageError | undefined;
  const setUp = <T>(f: () => T): T => {
    try {
      return f();
    } catch (err) {
      if (err instanceof UsageError) refused = err;
      throw err;
    }
  };
  try {
    await sim.start();
    await sim.until(() => sim.leaderId() !== undefined, { maxMs: 20 * sim.electionTimeoutMs, what: 'a first leader' });
    // faults and traffic end at durationMs of virtual time, or at once when
    // the first leader came after it (a window from now to before now was
    // refused as a bad fault schedule)
    const until = Math.max(durationMs, sim.now());
    if (options.faults !== false) {
      const fo = typeof options.faults === 'object' ? options.faults : {};
      faults = setUp(() => sim.randomFaults({ ...fo, until })).map((f) => `${f.at} ms: ${describeFault(f.fault)}`);
    }
    const traffic = setUp(() => startTraffic(sim, { ...(options.traffic ?? {}), until, ...(options.wrap !== undefined ? { wrap: options.wrap } : {}) }));
    await sim.run(Math.max(0, durationMs - sim.now()));
    traffic.stop();
    await sim.settled();
    const progress = await sim.checkProgress();
    progressMs = progress.ms;
    if (!progress.ok) failures.push(`progress: ${progress.describe()}`);
    // replacements run one after another, each retrying a step every
    // election timeout (a proposal lost to a leader change costs a request
    // timeout): 30 election timeouts for each one still to do
    const pending = sim.replacementsPending;
    const budget = 30 * sim.electionTimeoutMs * pending;
    try {
      if (pending > 0) await sim.drive(sim.membershipSettled(), { maxMs: budget });
    } catch (err) {
      if (!isQuorumError(err, ErrorCode.TIMEOUT)) throw err;
      failures.push(`membership: seed ${seed}: ${pending} member replacements did not complete within ${budget} virtual ms after the faults ended`);
    }
    await sim.drive(traffic.done, { maxMs: 20_000 });
    await sim.run(150); // watches and lagging members catch up
    // a last read of every key, in the history: an acknowledged write lost
    // (on every member alike) makes it non-linearizable
    for (const prefix of ['k/', 'l/']) {
      if (!(await finalRead(sim, prefix))) failures.push(`final read: seed ${seed}: no linearizable read of ${prefix}* succeeded after the faults ended`);
    }
    const conv = await sim.checkConvergence();
    if (!conv.ok) failures.push(`convergence: ${conv.describe()}`);
    await traffic.cancelWatches();
    requests = { issued: traffic.stats.issued, ok: traffic.stats.ok };
    tRun = performance.now() - t0;
    if (options.skipChecks !== true) {
      const lin = sim.checkLinearizable();
      if (!lin.ok) failures.push(`linearizability: ${lin.describe()}`);
      const w = sim.checkWatches(options.watchCheck ?? {});
      if (!w.ok) failures.push(`watch: ${w.describe()}`);
    }
    tChecks = performance.now() - t0 - tRun;
  } catch (err) {
    if (err instanceof SimulationError) failures.push(`invariant: ${err.message}`);
    else failures.push(`error: ${(err as Error)?.stack ?? String(err)}`);
  } finally {
    await sim.close();
  }
  if (refused !== undefined) throw refused;
  if (tRun === 0) tRun = performance.now() - t0;
  return {
    seed,
    nodes,
    durationMs,
    ok: failures.length === 0,
    failures,
    traceHash: sim.traceHash(),
    faults,
    requests,
    operations: sim.history().length,
    progressMs,
    realMs: { run: Math.round(tRun), checks: Math.round(tChecks) },
    traceTail: failures.length > 0 ? sim.traceLines() : [],
    knownIssues: [...sim.knownIssues()],
  };
}
