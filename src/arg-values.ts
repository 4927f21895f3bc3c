/**
 * How argument checks look at the values they refuse. A check that names
 * the refused value in its message must not fail on it: `String(v)` throws
 * a `TypeError` for an object without a prototype, and runs the caller's
 * own `toString` or `Symbol.toPrimitive`, which may throw; a template
 * literal also throws on a Symbol.
 * @internal
 * @module
 */

/**
 * A short rendering of any value for an error message, which never throws
 * and runs none of the value's conversions (`toString`, `valueOf`,
 * `Symbol.toPrimitive`): a number, boolean, `undefined`,
 * Symbol or string as `String` gives it (a string cut after 64
 * characters), a BigInt with its `n`, `null`, and `a function`, `an
 * object`, `an array` or `a <kind>` (`a Uint8Array`, `a Date`) for the
 * rest.
 * @internal
 */
export function describeValue(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return v.length > 64 ? `${v.slice(0, 64)}...` : v;
    case 'bigint':
      return `${v.toString()}n`;
    case 'function':
      return 'a function';
    case 'object': {
      if (v === null) return 'null';
      let kind: string;
      try {
        // the built-in tag (a proxy's trap may throw: a revoked proxy's does)
        kind = Object.prototype.toString.call(v).slice(8, -1);
      } catch {
        return 'an object';
      }
      if (kind === 'Object' || kind === 'Array') kind = kind.toLowerCase();
      return `${/^[aeiouAEIOU]/.test(kind) ? 'an' : 'a'} ${kind}`;
    }
    default:
      // number, boolean, undefined, symbol: String never throws for these
      return String(v);
  }
}

/**
 * `JSON.stringify(v)`, for a message that shows the caller's plain data (a
 * fault, a recorded event, an id), or {@link describeValue} when that gives
 * nothing (`undefined`, a Symbol, a function) or throws (a BigInt, a cycle,
 * a getter or `toJSON` that throws, a revoked proxy). Never throws; a
 * getter or `toJSON` of `v` does run.
 * @internal
 */
export function describeJson(v: unknown): string {
  try {
    const s = JSON.stringify(v) as string | undefined;
    if (s !== undefined) return s;
  } catch {
    // not serializable: described instead
  }
  return describeValue(v);
}

/**
 * Whether the bytes of `v` cannot be read: a view of an `ArrayBuffer` that
 * has been detached (transferred to a worker, or by `structuredClone` with
 * `transfer`), or a view of a resizable `ArrayBuffer` that has shrunk below
 * its end. Its length reads 0, yet copying from it throws a `TypeError`. A
 * view of a `SharedArrayBuffer`, or an empty view of a live buffer, never
 * is; neither is the caller's own code run.
 * @internal
 */
export function isUnreadableView(v: Uint8Array): boolean {
  if (v.byteLength !== 0) return false;
  try {
    // copying an empty view checks what reading does: a detached buffer or
    // bounds it has shrunk below (Node 20 has no `buffer.detached`)
    new Uint8Array(v);
    return false;
  } catch {
    return true;
  }
}
