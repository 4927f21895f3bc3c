// Runs a list of seeds with the default scenario and reports every failure
// with the command that replays it (shared by the seed test files).
import assert from 'node:assert/strict';
import { runScenario, type ScenarioResult } from '../../src/testing/simulation/index.js';
import { failureReport, replayCommand, scenarioOptions } from './defaults.js';
import { inWorker } from '../in-worker.js';

/** Seeds `from`, `from + step`, ... (`count` of them). */
export function seedList(from: number, count: number, step: number): number[] {
  return Array.from({ length: count }, (_, i) => from + i * step);
}

/**
 * Runs every seed and fails with a report of each failed seed: what broke,
 * the replay command, the fault schedule and the last trace lines.
 * With QUORUMKV_SIM_SEED=<n>, runs seed n only, in the batch that holds it
 * (or in the batch marked `replayHere` when none does). The seeds run in a
 * worker thread (test/in-worker.ts), outside the test runner's tracking of
 * every promise; `signal` (the test's) stops them.
 */
export async function runSeeds(seeds: readonly number[], options: { replayHere?: boolean; signal?: AbortSignal } = {}): Promise<void> {
  const env = process.env.QUORUMKV_SIM_SEED;
  const only = env === undefined ? undefined : Number(env);
  const list = only === undefined ? seeds : seeds.includes(only) || options.replayHere === true ? [only] : [];
  await inWorker(new URL(import.meta.url), 'runSeedsHere', [list], options.signal);
}

/** The body of {@link runSeeds}, in its worker: runs `list` and throws when a seed fails. */
export async function runSeedsHere(list: readonly number[]): Promise<void> {
  const started = performance.now();
  const results: ScenarioResult[] = [];
  const failed: ScenarioResult[] = [];
  for (const seed of list) {
    const r = await runScenario(scenarioOptions(seed));
    results.push(r);
    if (!r.ok) {
      failed.push(r);
      console.error(failureReport(r));
    }
  }
  const realMs = performance.now() - started;
  const ops = results.reduce((n, r) => n + r.operations, 0);
  const known = results.reduce((n, r) => n + r.knownIssues.length, 0);
  console.log(
    `${list.length - failed.length}/${list.length} seeds passed in ${(realMs / 1000).toFixed(1)} s ` +
      `(${ops} recorded operations${known > 0 ? `; known, reported bugs met ${known} times` : ''})`,
  );
  assert.deepEqual(
    failed.map((r) => replayCommand(r.seed)),
    [],
    `seeds failed (reports above); replay each with the command listed`,
  );
}

/**
 * Runs each seed twice (traffic and faults for `durationMs` virtual ms, no
 * checks) and returns the seeds whose two trace hashes differ, each with
 * its replay command, and how many distinct hashes the first runs gave.
 * Called in a worker by test/simulation/determinism.test.ts.
 */
export async function traceHashesTwice(seeds: readonly number[], durationMs: number): Promise<{ mismatches: string[]; distinct: number }> {
  const mismatches: string[] = [];
  const hashes = new Set<string>();
  for (const seed of seeds) {
    const options = { ...scenarioOptions(seed, { durationMs }), skipChecks: true };
    const first = await runScenario(options);
    const second = await runScenario(options);
    hashes.add(first.traceHash);
    if (first.traceHash !== second.traceHash) {
      mismatches.push(`seed ${seed}: ${first.traceHash} then ${second.traceHash} (replay: npm run test:sim -- --seed ${seed} --duration ${durationMs})`);
    }
  }
  return { mismatches, distinct: hashes.size };
}
