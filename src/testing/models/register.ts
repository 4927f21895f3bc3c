/**
 * The sequential specification of one read/write register with
 * compare-and-swap (porcupine's register model, with a CAS added).
 * @module
 */
import type { Operation } from '../history.js';
import type { Model } from './model.js';

/** An operation on a register. */
export type RegisterInput =
  | { readonly type: 'read' }
  | { readonly type: 'write'; readonly value: string }
  /** Writes `value` if the register holds `expected` (`null` = never written). */
  | { readonly type: 'cas'; readonly expected: string | null; readonly value: string };

/**
 * The output of a register operation: `value` for a read (`null` when the
 * register was never written), `succeeded` for a CAS, nothing for a write.
 */
export interface RegisterOutput {
  /** Read: the value read, `null` if never written. */
  readonly value?: string | null;
  /** CAS: whether the swap happened. */
  readonly succeeded?: boolean;
}

/**
 * A register holding a string, initially `initial` (default `null`: never
 * written).
 *
 * What it checks:
 * - a read returns the value of the latest write or successful CAS before it
 *   in the linearization (or `initial`);
 * - a CAS reports `succeeded: true` exactly when the register held
 *   `expected`, and only then changes the value;
 * - a write is always legal.
 *
 * A read whose outcome is unknown is read-only and is dropped by the checker.
 * An unknown-outcome write or CAS that is the only one writing a value a read
 * returned is required to take effect before that read returned.
 */
export function registerModel(initial: string | null = null): Model<string | null, RegisterInput, RegisterOutput> {
  return {
    init: () => initial,
    step(state, input, output) {
      switch (input.type) {
        case 'read':
          return [output === undefined || output.value === state, state];
        case 'write':
          return [true, input.value];
        case 'cas': {
          const hit = state === input.expected;
          if (output !== undefined && output.succeeded !== undefined && output.succeeded !== hit) return [false, state];
          return [true, hit ? input.value : state];
        }
      }
    },
    key: (state) => (state === null ? '\u0000null' : `=${state}`),
    readOnly: (input) => input.type === 'read',
    pure: (input) => input.type === 'read',
    proveOutcomes(history) {
      // the only write (or CAS) of a value a read returned took effect before that read returned
      const writers = new Map<string, Operation<RegisterInput, RegisterOutput>[]>();
      for (const op of history) {
        if (op.input.type === 'read') continue;
        const list = writers.get(op.input.value);
        if (list === undefined) writers.set(op.input.value, [op]);
        else list.push(op);
      }
      const proven = new Map<Operation<RegisterInput, RegisterOutput>, number>();
      for (const op of history) {
        const v = op.output?.value;
        if (op.status !== 'ok' || op.input.type !== 'read' || v === null || v === undefined || v === initial) continue;
        const list = writers.get(v);
        if (list === undefined || list.length !== 1 || list[0]!.status !== 'unknown') continue;
        const prev = proven.get(list[0]!);
        if (prev === undefined || op.returnTime < prev) proven.set(list[0]!, op.returnTime);
      }
      return { tookEffect: proven, noEffect: new Set() };
    },
    describeOperation(input, output) {
      switch (input.type) {
        case 'read':
          return output === undefined ? 'read() → ?' : `read() → ${JSON.stringify(output.value ?? null)}`;
        case 'write':
          return `write(${JSON.stringify(input.value)}) → ${output === undefined ? '?' : 'ok'}`;
        case 'cas':
          return output === undefined
            ? `cas(${JSON.stringify(input.expected)}, ${JSON.stringify(input.value)}) → ?`
            : `cas(${JSON.stringify(input.expected)}, ${JSON.stringify(input.value)}) → ${output.succeeded === undefined ? 'ok' : output.succeeded ? 'swapped' : 'not swapped'}`;
      }
    },
    describeState: (state) => JSON.stringify(state),
  };
}
