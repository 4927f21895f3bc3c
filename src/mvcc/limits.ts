/**
 * The rule for request limits, shared by the store's options
 * (`MvccStore.open`, `QUORUMKV_INVALID_CONFIG`) and the request checks
 * (`prepareWriteRequest`, `validateWriteRequest`, `QUORUMKV_INVALID_ARGUMENT`).
 * Internal: not re-exported by the package.
 * @module
 */
import { describeValue } from '../arg-values.js';

/**
 * What is wrong with `limits` as request limits, or undefined when nothing
 * is: an object whose `maxTxnOps`, when given, is a positive integer or
 * `Infinity`, and whose `maxRequestBytes`, when given, is a positive integer.
 * A NaN `maxTxnOps` let txns of any size through and 0 or less refused every
 * txn; a NaN `maxRequestBytes` let requests of any size through.
 */
export function limitsProblem(limits: unknown): string | undefined {
  if (limits === null || typeof limits !== 'object') return 'limits must be an object';
  const { maxTxnOps: mt, maxRequestBytes: mb } = limits as { maxTxnOps?: unknown; maxRequestBytes?: unknown };
  if (mt !== undefined && !(typeof mt === 'number' && (Number.isSafeInteger(mt) || mt === Number.POSITIVE_INFINITY) && mt > 0)) {
    return `limits.maxTxnOps must be a positive integer or Infinity, got ${describeValue(mt)}`;
  }
  if (mb !== undefined && !(typeof mb === 'number' && Number.isSafeInteger(mb) && mb > 0)) return `limits.maxRequestBytes must be a positive integer, got ${describeValue(mb)}`;
  return undefined;
}
