// What the simulation tests and `npm run test:sim` share, so that the
// replay command a failing test prints (`npm run test:sim -- --seed <n>`)
// runs exactly the scenario that failed.
import type { ScenarioOptions, ScenarioResult } from '../../src/testing/simulation/index.js';

/** Virtual ms of traffic and faults per seed in the default test run (and the script's default). */
export const DEFAULT_DURATION_MS = 2000;

/**
 * Fatal member errors of bugs that are reported and not fixed yet. A
 * member hitting one is crashed (and restarted by the fault schedule)
 * instead of failing the seed, so the seeds go on checking everything else. Empty while no such bug is open
 * (the last one, a fatal ReadIndex re-issue without a leader, was fixed by
 * 4f7fd2b).
 */
export const KNOWN_FATAL_ERRORS: readonly RegExp[] = [];

/**
 * Watch behaviour of known, reported bugs that the watch check lets through
 * by default (`--strict` checks without it). Empty: the last one, a watch
 * at the compaction revision missing that revision's deletions (etcd
 * #18089, which the store reproduced from etcd 3.4.23), was fixed by
 * keeping those tombstones until the next compaction.
 */
export const KNOWN_WATCH_ISSUES: { lostTombstonesAtCompaction?: boolean } = {};

/**
 * Every third seed snapshots every 25 entries and keeps 5 behind: members
 * compact their logs behind on-demand snapshot records and a member that a
 * fault left behind comes back by a snapshot the leader takes for it, under
 * the same faults and checks as the rest.
 */
export function frequentSnapshots(seed: number): { snapshotEntries: number; snapshotCatchUpEntries: number } | undefined {
  return seed % 3 === 0 ? { snapshotEntries: 25, snapshotCatchUpEntries: 5 } : undefined;
}

/**
 * One seed in four runs KvNode with `syncStore: false`: a crash then also
 * loses the store's unsynced batches, which the members apply again from
 * their Raft logs (the others keep KvNode's default, synced store writes).
 */
export function unsyncedStore(seed: number): boolean {
  return seed % 4 === 1;
}

/**
 * One seed in five adds read-only txns to the traffic (`readTxn`, a compare
 * and ranges in both branches), checked for linearizability with the rest;
 * the traffic's default leaves them out.
 */
export function readOnlyTxns(seed: number): { weights: { readTxn: number } } | undefined {
  return seed % 5 === 2 ? { weights: { readTxn: 20 } } : undefined;
}

/**
 * Fault weights on top of the default mix: leadership transfers
 * (`KvNode.moveLeader`) and member replacements (remove a member, add a
 * new one under a new id as a learner with an empty database and
 * `join: true`, promote it), which `randomFaultSchedule` draws only when
 * given a weight.
 */
export const MEMBERSHIP_FAULT_WEIGHTS = { moveLeader: 3, replace: 2 } as const;

/** The scenario of one seed, as the tests and the script run it. */
export function scenarioOptions(seed: number, overrides: { nodes?: 3 | 5; durationMs?: number; strict?: boolean } = {}): ScenarioOptions {
  const snapshots = { ...(frequentSnapshots(seed) ?? {}), ...(unsyncedStore(seed) ? { syncStore: false } : {}) };
  return {
    seed,
    ...(overrides.nodes !== undefined ? { nodes: overrides.nodes } : {}),
    durationMs: overrides.durationMs ?? DEFAULT_DURATION_MS,
    faults: { weights: MEMBERSHIP_FAULT_WEIGHTS },
    ...(readOnlyTxns(seed) !== undefined ? { traffic: readOnlyTxns(seed) } : {}),
    simulation: overrides.strict === true ? { ...snapshots } : { ...snapshots, knownFatalErrors: KNOWN_FATAL_ERRORS },
    watchCheck: overrides.strict === true ? {} : KNOWN_WATCH_ISSUES,
  };
}

/** The command that replays a seed. */
export function replayCommand(seed: number, overrides: ReplayOverrides = {}): string {
  let cmd = `npm run test:sim -- --seed ${seed}`;
  if (overrides.nodes !== undefined) cmd += ` --nodes ${overrides.nodes}`;
  if (overrides.durationMs !== undefined && overrides.durationMs !== DEFAULT_DURATION_MS) cmd += ` --duration ${overrides.durationMs}`;
  if (overrides.strict === true) cmd += ' --strict';
  if (overrides.noFaults === true) cmd += ' --no-faults';
  return cmd;
}

/** What a replay command must repeat besides the seed: the scenario's size and the flags that change the run or its checks. */
export interface ReplayOverrides {
  nodes?: 3 | 5;
  durationMs?: number;
  strict?: boolean;
  noFaults?: boolean;
}

/** A readable report of a failed seed: what failed, the replay command, the fault schedule and the last trace lines. */
export function failureReport(r: ScenarioResult, overrides: ReplayOverrides = {}): string {
  return [
    `seed ${r.seed} (${r.nodes} members, ${r.durationMs} virtual ms) failed; replay: ${replayCommand(r.seed, overrides)}`,
    ...r.failures,
    'faults:',
    ...r.faults.map((f) => `  ${f}`),
    `last trace lines:`,
    ...r.traceTail.slice(-60).map((l) => `  ${l}`),
  ].join('\n');
}
