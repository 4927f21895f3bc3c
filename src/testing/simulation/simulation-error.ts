/**
 * The error a simulation fails with when a safety invariant breaks.
 * @module
 */
import { ErrorCode, FaultError } from '../../errors.js';

/**
 * A simulation stopped on a broken invariant (code
 * `QUORUMKV_INVARIANT_VIOLATED`). The message names the seed, the virtual
 * time and every violation; {@link trace} holds the last trace lines before
 * it (see `SimulationOptions.traceLines`).
 */
export class SimulationError extends FaultError {
  /** The seed of the simulation. */
  readonly seed: number;
  /** Virtual time of the failure, ms. */
  readonly atMs: number;
  /** One readable line per violation. */
  readonly violations: readonly string[];
  /** The latest trace lines, oldest first. */
  readonly trace: readonly string[];

  constructor(seed: number, atMs: number, violations: readonly string[], trace: readonly string[]) {
    super(
      ErrorCode.INVARIANT_VIOLATED,
      `simulation with seed ${seed} broke an invariant at ${atMs} virtual ms:\n  ${violations.join('\n  ')}`,
    );
    this.seed = seed;
    this.atMs = atMs;
    this.violations = violations;
    this.trace = trace;
  }
}
