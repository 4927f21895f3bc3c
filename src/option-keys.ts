/**
 * Refusal of option keys a constructor does not know. Without it a
 * misspelled option (`tickMS` for `tickMs`, `snapshotEntry` for
 * `snapshotEntries`) would be ignored, and its default used without a word.
 * @internal
 * @module
 */
import { ErrorCode, UsageError } from './errors.js';

/**
 * Fails to compile unless `T` is `never`: with
 * `Exclude<keyof Options, (typeof KEYS)[number]>`, a list of option keys
 * that misses one of the interface's.
 * @internal
 */
export type NoKeyMissing<T extends never> = T;

/**
 * Throws when `o` has an own enumerable key outside `known` whose value is
 * not `undefined` (an `undefined` option is the default, whatever its name).
 * @param o - the options object (already checked to be an object)
 * @param known - every key the options' interface declares
 * @param what - the options' name for the message (`KvNode.open options`)
 * @param code - the error code (`QUORUMKV_INVALID_CONFIG` by default)
 * @throws UsageError `code`, naming the key, and the known key it differs
 *   from only in case when there is one
 * @internal
 */
export function checkOptionKeys(o: object, known: readonly string[], what: string, code: ErrorCode = ErrorCode.INVALID_CONFIG): void {
  for (const key of Object.keys(o)) {
    if (known.includes(key) || (o as Record<string, unknown>)[key] === undefined) continue;
    const near = known.find((k) => k.toLowerCase() === key.toLowerCase());
    const hint = near === undefined ? `known: ${known.join(', ')}` : `did you mean ${near}?`;
    throw new UsageError(code, `${what}: unknown option ${JSON.stringify(key)} (${hint})`);
  }
}

/**
 * {@link checkOptionKeys} for an options argument that may be left out:
 * `undefined` passes.
 * @throws UsageError `code` when `o` is not an object (`null` included) or
 *   has a key outside `known`
 * @internal
 */
export function checkOptionsArg(o: unknown, known: readonly string[], what: string, code: ErrorCode = ErrorCode.INVALID_ARGUMENT): void {
  if (o === undefined) return;
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new UsageError(code, `${what} must be an object`);
  checkOptionKeys(o, known, what, code);
}
