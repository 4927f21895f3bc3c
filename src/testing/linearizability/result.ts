/**
 * What {@link checkLinearizable} returns, and its readable rendering.
 * @module
 */
import type { Operation } from '../history.js';

/** `ok`: linearizable; `illegal`: not; `unknown`: the time budget ran out before an answer. */
export type CheckResult = 'ok' | 'illegal' | 'unknown';

/** The verdict on one partition (an independent sub-history). */
export interface PartitionResult<I, O> {
  /** The verdict for this partition. */
  readonly result: CheckResult;
  /**
   * The operations checked, in history order (`fail` operations and
   * unknown-outcome reads left out). An unknown-outcome operation the model
   * proved took effect carries the time of the proof as its `returnTime`.
   */
  readonly operations: readonly Operation<I, O>[];
  /**
   * `ok`: a linearization (a witness order). Unknown-outcome operations that
   * are absent never took effect in it. Otherwise empty.
   */
  readonly linearization: readonly Operation<I, O>[];
  /** The longest linearizable prefix the search found, in linearization order. */
  readonly longestPrefix: readonly Operation<I, O>[];
  /** A description of the model state after {@link longestPrefix}. */
  readonly stateAfterPrefix: string;
  /**
   * `illegal`: the operation that cannot be placed after the longest prefix
   * (its response came before any legal order could include it).
   */
  readonly blocker: Operation<I, O> | undefined;
  /** `illegal`: the other pending operations that were also illegal at that point. */
  readonly rejected: readonly Operation<I, O>[];
  /**
   * `illegal`: a small sub-history that is itself not linearizable, by
   * invocation time: the longest prefix plus the blocker when that is
   * enough, otherwise a larger part of the partition, then shrunk by
   * dropping operations one at a time while it stays illegal (within the
   * shrink budget). Empty otherwise.
   */
  readonly illegal: readonly Operation<I, O>[];
  /** Number of model steps the search tried. */
  readonly steps: number;
}

/** The result of {@link checkLinearizable}. */
export interface LinearizabilityResult<I, O> {
  /** `illegal` if any partition is illegal, else `unknown` if any ran out of time, else `ok`. */
  readonly result: CheckResult;
  /** One entry per partition, in the order the model's `partition` returned them. */
  readonly partitions: readonly PartitionResult<I, O>[];
  /** Index in {@link partitions} of the first illegal partition, or -1. */
  readonly illegalPartition: number;
  /** Number of operations checked (after leaving out `fail` and unknown-outcome reads). */
  readonly operationCount: number;
  /** Wall-clock time the check took, ms. */
  readonly elapsedMs: number;
  /** A readable report: the verdict, and for an illegal history the prefix, the blocker and the illegal sub-history. */
  describe(): string;
}

/** Renders one operation on one line: id, client, `[invoke, return]` and `input → output`. */
export function describeOperationLine<I, O>(
  op: Operation<I, O>,
  describe: (input: I, output: O | undefined) => string,
): string {
  const ret = op.returnTime === Infinity ? '∞)' : `${op.returnTime}]`;
  const status =
    op.status !== 'unknown' ? '' : op.returnTime === Infinity ? ' (outcome unknown)' : ' (outcome unknown, proven to have taken effect)';
  return `#${op.id} client ${op.clientId} [${op.callTime}, ${ret} ${describe(op.input, op.status === 'ok' ? op.output : undefined)}${status}`;
}

/** The default operation rendering: JSON of input and output. */
export function defaultDescribeOperation(input: unknown, output: unknown): string {
  return `${JSON.stringify(input)} → ${output === undefined ? '?' : JSON.stringify(output)}`;
}

/** Builds the text of {@link LinearizabilityResult.describe}. */
export function describeResult<I, O>(
  r: Omit<LinearizabilityResult<I, O>, 'describe'>,
  describe: (input: I, output: O | undefined) => string,
): string {
  const lines: string[] = [];
  const line = (op: Operation<I, O>): string => `    ${describeOperationLine(op, describe)}`;
  const head = `${r.partitions.length} partition${r.partitions.length === 1 ? '' : 's'}, ${r.operationCount} operations, ${Math.round(r.elapsedMs)} ms`;
  if (r.result === 'ok') return `linearizable (${head})`;
  if (r.result === 'unknown') {
    const open = r.partitions.filter((p) => p.result === 'unknown').length;
    return `unknown: the time budget ran out with ${open} partition${open === 1 ? '' : 's'} undecided (${head})`;
  }
  const illegal = r.partitions.filter((p) => p.result === 'illegal').length;
  lines.push(`not linearizable: ${illegal} of ${r.partitions.length} partitions illegal (${head})`);
  r.partitions.forEach((p, i) => {
    if (p.result !== 'illegal') return;
    lines.push(`partition ${i} (${p.operations.length} operations):`);
    lines.push(`  longest linearizable prefix (${p.longestPrefix.length} operations, in linearization order):`);
    for (const op of p.longestPrefix) lines.push(line(op));
    lines.push(`  state after it: ${p.stateAfterPrefix}`);
    if (p.blocker !== undefined) {
      lines.push('  cannot be linearized next:');
      lines.push(line(p.blocker));
    }
    if (p.rejected.length > 0) {
      lines.push('  also pending and not legal next:');
      for (const op of p.rejected) lines.push(line(op));
    }
    if (p.illegal.length > 0) {
      lines.push(`  illegal sub-history (${p.illegal.length} operations, by invocation time):`);
      for (const op of p.illegal) lines.push(line(op));
    }
  });
  return lines.join('\n');
}
