/**
 * How argument checks look at the values they refuse. A check that names
 * the refused value in its message must not fail on it: `String(v)` throws
 * a `TypeError` for an object without a prototype, and runs the caller's
 * own `toString` or `Symbol.toPrimitive`, which may throw; a template
 * literal also throws on a Symbol.
 * @internal
 * @module
 */
import { ErrorCode, UsageError } from './errors.js';

/** The longest rendering {@link describeValue} gives, its ellipsis included. @internal */
export const DESCRIBE_MAX_CHARS = 80;

/** How far up a prototype chain {@link describeValue} looks for a tag (a proxy may give a new prototype at each step). */
const MAX_CHAIN = 64;

/**
 * `s` cut to at most `max` characters, `...` at the end of a cut one (not
 * between the two halves of a surrogate pair).
 */
function clip(s: string, max: number): string {
  if (s.length <= max) return s;
  let end = max - 3;
  const last = s.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${s.slice(0, end)}...`;
}

/**
 * `%TypedArray%.prototype[Symbol.toStringTag]`'s getter: the name of a
 * typed array (`'Uint8Array'`) read from its internal slots, `undefined`
 * for anything else (a Proxy of one included). Runs no code of the caller.
 */
const typedArrayTag = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype) as object, Symbol.toStringTag)!.get as (
  this: unknown,
) => string | undefined;

/**
 * The kind of an object, as `Object.prototype.toString` names it, without
 * calling a getter: an array, a typed array, the `Symbol.toStringTag` a
 * prototype declares as data (`Map`, `Promise`, `ArrayBuffer`...), else the
 * built-in tag (`Object`, `Date`, `Error`...), read only when no getter of
 * that tag is on the chain. A proxy's traps may run; one that throws gives
 * `object`.
 */
function kindOf(v: object): string {
  try {
    if (Array.isArray(v)) return 'array';
    const typed = typedArrayTag.call(v);
    if (typed !== undefined) return typed;
    let o: object | null = v;
    for (let depth = 0; o !== null; depth++) {
      if (depth === MAX_CHAIN) return 'object';
      const d = Object.getOwnPropertyDescriptor(o, Symbol.toStringTag);
      if (d !== undefined) {
        // a getter is the caller's code: not run
        if (!('value' in d)) return 'object';
        if (typeof d.value === 'string') return d.value === 'Object' ? 'object' : d.value;
        break;
      }
      o = Object.getPrototypeOf(o) as object | null;
    }
    // no getter of the tag on the chain: only the built-in tag is read
    const kind = Object.prototype.toString.call(v).slice(8, -1);
    return kind === 'Object' ? 'object' : kind;
  } catch {
    // a revoked proxy, or a trap that threw
    return 'object';
  }
}

/**
 * A short rendering of any value for an error message, which never throws
 * and runs none of the value's conversions (`toString`, `valueOf`,
 * `Symbol.toPrimitive`) nor its getters (a `Symbol.toStringTag` getter
 * included; a Proxy's traps may run): a number, boolean, `undefined`,
 * Symbol or string as `String` gives it (a string cut after 64
 * characters), a BigInt with its `n`, `null`, and `a function`, `an
 * object`, `an array` or `a <kind>` (`a Uint8Array`, `a Date`) for the
 * rest. At most {@link DESCRIBE_MAX_CHARS} characters (a longer Symbol
 * description, BigInt or kind is cut, with `...`).
 * @internal
 */
export function describeValue(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return v.length > 64 ? clip(v, 67) : v;
    case 'bigint':
      return clip(`${v.toString()}n`, DESCRIBE_MAX_CHARS);
    case 'function':
      return 'a function';
    case 'object': {
      if (v === null) return 'null';
      const kind = kindOf(v);
      // 'a Uint8Array': its U sounds as 'you'
      return clip(`${/^[aeiouAEIO]/.test(kind) ? 'an' : 'a'} ${kind}`, DESCRIBE_MAX_CHARS);
    }
    default:
      // number, boolean, undefined, symbol: String never throws for these
      return clip(String(v), DESCRIBE_MAX_CHARS);
  }
}

/** The longest rendering {@link describeJson} gives, its ellipsis included. @internal */
export const DESCRIBE_JSON_MAX_CHARS = 200;

/**
 * `JSON.stringify(v)`, for a message that shows the caller's plain data (a
 * fault, a recorded event, an id), or {@link describeValue} when that gives
 * nothing (`undefined`, a Symbol, a function) or throws (a BigInt, a cycle,
 * a getter or `toJSON` that throws, a revoked proxy); cut to
 * {@link DESCRIBE_JSON_MAX_CHARS} (a value of a megabyte made a message of a
 * megabyte). Never throws; a getter or `toJSON` of `v` does run.
 * @internal
 */
export function describeJson(v: unknown): string {
  try {
    const s = JSON.stringify(v) as string | undefined;
    if (s !== undefined) return clip(s, DESCRIBE_JSON_MAX_CHARS);
  } catch {
    // not serializable: described instead
  }
  return describeValue(v);
}

/**
 * `%TypedArray%.prototype.byteLength`'s getter: the length of a typed array
 * read from its internal slots (0 for a view of a detached buffer, or out
 * of the bounds of a shrunk one). Runs no code of the caller, and throws a
 * `TypeError` for anything that is not a typed array itself.
 */
const typedArrayByteLength = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype) as object, 'byteLength')!.get as (
  this: unknown,
) => number;

/**
 * Why the bytes of `v`, which passed `instanceof Uint8Array`, cannot be
 * read, for a message after the name of the argument (`key is ...`); or
 * `undefined` when they can be. They cannot be:
 * - when `v` is not a typed array itself but a Proxy of one, or an object
 *   made from `Uint8Array.prototype`: `instanceof` sees the prototype, and
 *   reading `length` or `byteLength` throws a `TypeError`;
 * - when it is a view of an `ArrayBuffer` that has been detached
 *   (transferred to a worker, or by `structuredClone` with `transfer`), or
 *   of a resizable `ArrayBuffer` that has shrunk below its end: its length
 *   reads 0, yet copying from it throws a `TypeError`.
 *
 * A view of a `SharedArrayBuffer`, an empty view of a live buffer or a
 * `Buffer` never is. No code of the caller runs (but a Proxy's traps).
 * @internal
 */
export function viewProblem(v: Uint8Array): string | undefined {
  let n: number;
  try {
    n = typedArrayByteLength.call(v);
  } catch {
    return 'not a Uint8Array itself (a Proxy of one, or an object made from its prototype), whose bytes cannot be read';
  }
  if (n !== 0) return undefined;
  try {
    // copying an empty view checks what reading does: a detached buffer or
    // bounds it has shrunk below (Node 20 has no `buffer.detached`)
    new Uint8Array(v);
    return undefined;
  } catch {
    return 'a view of a detached ArrayBuffer, or out of the bounds of a shrunk one';
  }
}

/**
 * Checks a duration or a point in time given in ms: a finite number >= 0
 * (NaN, Infinity, a negative number or a string is refused). The message
 * reads "`what` needs a finite number of `unit` >= 0, not <value>".
 * @param unit - how the ms are named in the message (`'virtual ms'` for a
 *   simulation's clock)
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for another value
 * @internal
 */
export function checkFiniteMs(v: unknown, what: string, unit = 'virtual ms'): asserts v is number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new UsageError(ErrorCode.INVALID_ARGUMENT, `${what} needs a finite number of ${unit} >= 0, not ${describeValue(v)}`);
  }
}
