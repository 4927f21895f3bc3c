// Test support (not a test file): compact builders for hand-written histories.
import type { Operation } from '../../src/testing/index.js';

/** A history operation without its id (the position gives it). */
export type Op<I, O> = Omit<Operation<I, O>, 'id'>;

/** An operation that returned `output`, invoked at `call` and returning at `ret` (ms). */
export function ok<I, O>(clientId: number | string, call: number, ret: number, input: I, output: O): Op<I, O> {
  return { clientId, callTime: call, returnTime: ret, input, output, status: 'ok' };
}

/** An operation whose outcome is unknown, invoked at `call`. */
export function unknown<I, O>(clientId: number | string, call: number, input: I): Op<I, O> {
  return { clientId, callTime: call, returnTime: Infinity, input, output: undefined, status: 'unknown' };
}

/** An operation that definitely did not take effect. */
export function failed<I, O>(clientId: number | string, call: number, ret: number, input: I): Op<I, O> {
  return { clientId, callTime: call, returnTime: ret, input, output: undefined, status: 'fail' };
}

/** Numbers the operations by position. */
export function history<I, O>(...ops: Op<I, O>[]): Operation<I, O>[] {
  return ops.map((op, id) => ({ id, ...op }));
}
