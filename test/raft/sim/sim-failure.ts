// The error a simulation run fails with: which invariant broke, at which
// step, and how to replay the seed.

/** A broken invariant (or an unexpected exception) in a simulation run. */
export class SimFailure extends Error {
  constructor(
    readonly seed: number,
    readonly nodes: number,
    readonly step: number,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`seed ${seed} (${nodes} nodes) failed at step ${step}: ${reason}`, options);
    this.name = 'SimFailure';
  }

  /** The commands that replay this run. */
  replayCommands(steps: number): string[] {
    return [
      `QUORUMKV_RAFT_SEED=${this.seed} QUORUMKV_RAFT_NODES=${this.nodes} node scripts/run-tests.mjs test/raft/sim.test.ts`,
      `npm run test:raft-sim -- --seed ${this.seed} --nodes ${this.nodes} --steps ${steps}`,
    ];
  }
}
