/**
 * The sequential specification of an etcd-v3-style key-value store: values,
 * per-key version, createRevision and modRevision, and the store revision.
 * Source of the rules: etcd API guarantees ("KV APIs": revision), etcd's
 * `mvcc` (a write txn bumps the revision by one if it changed anything) and
 * `applyCompare` (txn compare semantics).
 * @module
 */
import { checkOptionsArg } from '../../option-keys.js';
import { ErrorCode, UsageError } from '../../errors.js';
import { describeJson, describeValue } from '../../arg-values.js';
import type { Operation } from '../history.js';
import { compareKeys, describeKeyRange, inKeyRange } from '../key-range.js';
import type { NondeterministicModel } from './model.js';
import { partitionKvHistory } from './kv-partition.js';
import { proveKvOutcomes } from './kv-proofs.js';
import type {
  KvCompare,
  KvDeleteOutput,
  KvGetOutput,
  KvInput,
  KvMeta,
  KvOutput,
  KvPutOutput,
  KvRangeOutput,
  KvTxnOp,
  KvTxnOpResult,
  KvTxnOutput,
} from './kv-types.js';

/**
 * What the model knows of one live key. `createRevision` and `modRevision`
 * are `undefined` when the write that set them did not report its revision
 * (per-key mode only); the first read that reports them fixes them.
 */
export interface KvKeyState {
  /** The key's current value. */
  readonly value: string;
  /** Number of writes since the key's creation (etcd's `version`): 1 after the creating put. */
  readonly version: number;
  /** Revision of the put that created the key (etcd's `createRevision`); `undefined` until learned. */
  readonly createRevision: number | undefined;
  /** Revision of the key's last write (etcd's `modRevision`); `undefined` until learned. */
  readonly modRevision: number | undefined;
  /**
   * While `createRevision` is `undefined`: a lower bound of it (the creating
   * write came after the store had reached the revision below it).
   */
  readonly createRevisionAtLeast?: number | undefined;
  /** While `modRevision` is `undefined`: a lower bound of it, as for `createRevisionAtLeast`. */
  readonly modRevisionAtLeast?: number | undefined;
  /**
   * Writes since the creation that share their revision with an earlier one
   * (a txn that puts the key twice; etcd refuses such a txn): the key was
   * written at `version - 1 - extraWrites` revisions after its creation.
   * Absent when 0.
   */
  readonly extraWrites?: number | undefined;
  /**
   * While `createRevision` is `undefined`: an upper bound of it (a txn
   * compare `<` held, or `>` failed, on it).
   */
  readonly createRevisionAtMost?: number | undefined;
  /** While `modRevision` is `undefined`: an upper bound of it, as for `createRevisionAtMost`. */
  readonly modRevisionAtMost?: number | undefined;
  /**
   * While `createRevision` is `undefined`: values it does not have, in
   * ascending order (a txn compare `=` failed, or `!=` held, on it).
   */
  readonly createRevisionNot?: readonly number[] | undefined;
  /** While `modRevision` is `undefined`: values it does not have, as for `createRevisionNot`. */
  readonly modRevisionNot?: readonly number[] | undefined;
}

/**
 * A state of the KV model. `revision` is the store revision in
 * `globalRevision` mode, and a lower bound of it (the highest revision
 * observed so far in this partition) otherwise.
 */
export interface KvState {
  /** The store revision (exact in `globalRevision` mode, else the highest one observed). */
  readonly revision: number;
  /** The live keys and what is known of each; a deleted key is absent. */
  readonly keys: ReadonlyMap<string, KvKeyState>;
}

const TARGETS = new Set(['value', 'version', 'createRevision', 'modRevision']);
const RESULTS = new Set(['=', '!=', '<', '>']);

function badInput(what: string, input: unknown): never {
  throw new UsageError(ErrorCode.INVALID_ARGUMENT, `kvModel: ${what} in the operation input ${describeJson(input)}`);
}

function checkTxnOp(op: unknown, input: unknown): void {
  const o = op as { type?: unknown; key?: unknown; value?: unknown } | null;
  if (o === null || typeof o !== 'object') badInput('a txn operation that is not an object', input);
  if (o.type !== 'get' && o.type !== 'put' && o.type !== 'delete') badInput(`a txn operation of type ${describeValue(o.type)} (get, put or delete)`, input);
  if (typeof o.key !== 'string') badInput('a key that is not a string', input);
  if (o.type === 'put' && typeof o.value !== 'string') badInput('a put value that is not a string', input);
}

/**
 * Checks that `input` is a {@link KvInput}: a misspelt field would
 * otherwise make the model read an operation as another (a compare with
 * `op` instead of `result` holds for no outcome, and a check passes that
 * should fail).
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT`, naming what is wrong
 */
export function checkKvInput(input: unknown): void {
  const i = input as { type?: unknown; key?: unknown; value?: unknown; rangeEnd?: unknown; compare?: unknown; success?: unknown; failure?: unknown } | null;
  if (i === null || typeof i !== 'object') badInput('not an object', input);
  switch (i.type) {
    case 'get':
    case 'put':
    case 'delete':
      checkTxnOp(i, input);
      return;
    case 'range':
      if (typeof i.key !== 'string') badInput('a key that is not a string', input);
      if (i.rangeEnd !== undefined && typeof i.rangeEnd !== 'string') badInput('a rangeEnd that is not a string', input);
      return;
    case 'txn':
      for (const f of ['compare', 'success', 'failure'] as const) if (!Array.isArray(i[f])) badInput(`txn ${f} that is not an array`, input);
      for (const c of i.compare as unknown[]) {
        const k = c as { key?: unknown; target?: unknown; result?: unknown; value?: unknown } | null;
        if (k === null || typeof k !== 'object') badInput('a compare that is not an object', input);
        if (typeof k.key !== 'string') badInput('a compare key that is not a string', input);
        if (!TARGETS.has(k.target as string)) badInput(`a compare target ${describeValue(k.target)} (value, version, createRevision or modRevision)`, input);
        if (!RESULTS.has(k.result as string)) badInput(`a compare result ${describeValue(k.result)} (=, !=, < or >)`, input);
        if (k.target === 'value') {
          if (typeof k.value !== 'string' && typeof k.value !== 'number') badInput('a value compared with something that is neither a string nor a number', input);
        } else if (!(typeof k.value === 'number' ? Number.isSafeInteger(k.value) : typeof k.value === 'string' && /^-?[0-9]+$/.test(k.value) && Number.isSafeInteger(Number(k.value)))) {
          // '' read as 0, and NaN made every comparison false, != included
          badInput(`a ${describeValue(k.target)} compared with ${describeJson(k.value)} (an integer, or a string of one)`, input);
        }
      }
      for (const op of [...(i.success as unknown[]), ...(i.failure as unknown[])]) checkTxnOp(op, input);
      return;
    default:
      badInput(`the type ${describeValue(i.type)} (get, put, delete, range or txn)`, input);
  }
}

/** Options of {@link kvModel}. */
export interface KvModelOptions {
  /**
   * Check the store revision exactly: it starts at `initialRevision`, every
   * write that changes something (a put, a delete of an existing key, a txn
   * with at least one such write) bumps it by exactly one, and a delete of a
   * missing key or a read-only txn does not. Every reported revision must
   * then match. This relates all keys, so the history is not partitioned:
   * slower on large histories. Default `false` (per-key mode).
   */
  readonly globalRevision?: boolean;
  /** The revision of the empty store (etcd: 1). Default 1. */
  readonly initialRevision?: number;
}

type Draft = {
  revision: number;
  keys: Map<string, KvKeyState> | ReadonlyMap<string, KvKeyState>;
  copied: boolean;
};

function draftOf(s: KvState): Draft {
  return { revision: s.revision, keys: s.keys, copied: false };
}

function setKey(d: Draft, key: string, v: KvKeyState | undefined): void {
  if (!d.copied) {
    d.keys = new Map(d.keys);
    d.copied = true;
  }
  const m = d.keys as Map<string, KvKeyState>;
  if (v === undefined) m.delete(key);
  else m.set(key, v);
}

function freeze(d: Draft): KvState {
  return { revision: d.revision, keys: d.keys };
}

/**
 * Checks what a read reported for `key` against the draft, learning revisions
 * the draft does not know yet. A `null` value means the read found nothing;
 * `undefined` means the value was not reported.
 */
function checkRead(d: Draft, key: string, value: string | null | undefined, meta: KvMeta, header: number | undefined): boolean {
  const cur = d.keys.get(key);
  if (cur === undefined) {
    if (value !== null && value !== undefined) return false;
    return (
      (meta.version === undefined || meta.version === 0) &&
      (meta.modRevision === undefined || meta.modRevision === 0) &&
      (meta.createRevision === undefined || meta.createRevision === 0)
    );
  }
  if (value !== undefined && value !== cur.value) return false;
  if (meta.version !== undefined && meta.version !== cur.version) return false;
  let { createRevision, modRevision } = cur;
  if (meta.modRevision !== undefined) {
    if (modRevision === undefined) modRevision = meta.modRevision;
    else if (modRevision !== meta.modRevision) return false;
    if (header !== undefined && meta.modRevision > header) return false;
    if (meta.modRevision > d.revision) d.revision = meta.modRevision;
  }
  if (meta.createRevision !== undefined) {
    if (createRevision === undefined) createRevision = meta.createRevision;
    else if (createRevision !== meta.createRevision) return false;
    if (header !== undefined && meta.createRevision > header) return false;
  }
  if (createdByLastWrite(cur)) {
    // a key at version 1 was created by its last write (as is one that a
    // txn created and wrote again)
    if (createRevision === undefined) createRevision = modRevision;
    else if (modRevision === undefined) modRevision = createRevision;
    else if (createRevision !== modRevision) return false;
  }
  // each of the version - 1 writes since the creation has a revision of its
  // own, above the one before: a key at version v was last written at least
  // v - 1 revisions after its creation
  const span = cur.version - 1 - (cur.extraWrites ?? 0);
  if (createRevision !== undefined && modRevision !== undefined && modRevision - createRevision < span) return false;
  // a revision learned now must respect what was known of it: the write that
  // set it came after the store had reached the revision below the lower
  // bound, and the txn compares on it had the outcomes they reported
  let create = revOf(cur, 'createRevision');
  let mod = revOf(cur, 'modRevision');
  if (cur.createRevision === undefined && createRevision !== undefined && !fits(create, createRevision)) return false;
  if (cur.modRevision === undefined && modRevision !== undefined && !fits(mod, modRevision)) return false;
  // one of them known: the other is bounded by it
  if (createRevision !== undefined && modRevision === undefined) {
    const n = narrow(mod, '<', createRevision + span, false);
    if (n === null) return false;
    mod = n;
    if (header !== undefined && (mod.atLeast ?? -Infinity) > header) return false;
  } else if (modRevision !== undefined && createRevision === undefined) {
    const n = narrow(create, '>', modRevision - span, false);
    if (n === null) return false;
    create = n;
  }
  // the store has reached the revisions of the key's writes
  const reached = Math.max(createRevision ?? -Infinity, modRevision ?? -Infinity, mod.atLeast ?? -Infinity);
  if (reached > d.revision) d.revision = reached;
  const next = keyState(cur.value, cur.version, { ...create, value: createRevision }, { ...mod, value: modRevision }, cur.extraWrites);
  if (keyStateKey(next) !== keyStateKey(cur)) setKey(d, key, next);
  return true;
}

/**
 * Whether every write since the key's creation has the creation's revision
 * (version 1, or writes of the creating txn): createRevision = modRevision.
 */
function createdByLastWrite(k: KvKeyState): boolean {
  return k.version - 1 - (k.extraWrites ?? 0) === 0;
}

/**
 * What is known of a key's createRevision or modRevision: its value, or
 * while that is not known, bounds and values it does not have.
 */
interface RevKnowledge {
  readonly value: number | undefined;
  readonly atLeast?: number | undefined;
  readonly atMost?: number | undefined;
  readonly not?: readonly number[] | undefined;
}

type RevTarget = 'createRevision' | 'modRevision';

function revOf(cur: KvKeyState, target: RevTarget): RevKnowledge {
  return target === 'createRevision'
    ? { value: cur.createRevision, atLeast: cur.createRevisionAtLeast, atMost: cur.createRevisionAtMost, not: cur.createRevisionNot }
    : { value: cur.modRevision, atLeast: cur.modRevisionAtLeast, atMost: cur.modRevisionAtMost, not: cur.modRevisionNot };
}

/** Whether a revision not known yet may be `v`. */
function fits(r: RevKnowledge, v: number): boolean {
  return v >= (r.atLeast ?? -Infinity) && v <= (r.atMost ?? Infinity) && !(r.not?.includes(v) ?? false);
}

/**
 * A {@link KvKeyState}, keeping bounds and excluded values only for a
 * revision that is not known (so that equal knowledge gives equal states).
 */
function keyState(value: string, version: number, create: RevKnowledge, mod: RevKnowledge, extraWrites: number | undefined): KvKeyState {
  const s: { -readonly [K in keyof KvKeyState]: KvKeyState[K] } = { value, version, createRevision: create.value, modRevision: mod.value };
  if (create.value === undefined) {
    if (create.atLeast !== undefined) s.createRevisionAtLeast = create.atLeast;
    if (create.atMost !== undefined) s.createRevisionAtMost = create.atMost;
    if (create.not !== undefined && create.not.length > 0) s.createRevisionNot = create.not;
  }
  if (mod.value === undefined) {
    if (mod.atLeast !== undefined) s.modRevisionAtLeast = mod.atLeast;
    if (mod.atMost !== undefined) s.modRevisionAtMost = mod.atMost;
    if (mod.not !== undefined && mod.not.length > 0) s.modRevisionNot = mod.not;
  }
  if (extraWrites !== undefined && extraWrites > 0) s.extraWrites = extraWrites;
  return s;
}

/** Checks a read's header revision: exact, or at least the lower bound (then raises it). */
function checkReadHeader(d: Draft, header: number | undefined, exact: boolean): boolean {
  if (header === undefined) return true;
  if (exact) return header === d.revision;
  if (header < d.revision) return false;
  d.revision = header;
  return boundByHeader(d, header);
}

/**
 * Per-key mode: an operation that reported header revision `header` ran
 * when the store was at that revision, so every key live then was written
 * at or below it. Bounds the revisions not known yet by it; false when one
 * cannot be at or below it (its write came after the store had passed it).
 */
function boundByHeader(d: Draft, header: number): boolean {
  const cap = (r: RevKnowledge): RevKnowledge | null => (r.value === undefined ? narrow(r, '<', header + 1, true) : r);
  for (const [key, k] of d.keys) {
    if (k.createRevision !== undefined && k.modRevision !== undefined) continue;
    const create = cap(revOf(k, 'createRevision'));
    const mod = cap(revOf(k, 'modRevision'));
    if (create === null || mod === null) return false;
    const next = keyState(k.value, k.version, create, mod, k.extraWrites);
    if (keyStateKey(next) !== keyStateKey(k)) setKey(d, key, next);
  }
  return true;
}

type CompareOutcome = boolean | undefined;

function evalCompare(d: Draft, c: KvCompare): CompareOutcome {
  const cur = d.keys.get(c.key);
  if (c.target === 'value') {
    if (cur === undefined) return false;
    return holds(compareKeys(cur.value, String(c.value)), c.result);
  }
  let actual: number | undefined;
  if (cur === undefined) actual = 0;
  else if (c.target === 'version') actual = cur.version;
  else if (c.target === 'createRevision') actual = cur.createRevision;
  else actual = cur.modRevision;
  const expected = Number(c.value);
  if (Number.isNaN(expected)) return false;
  if (actual === undefined) {
    // not known, but within bounds: some comparisons are decided anyway
    const r = revOf(cur!, c.target as RevTarget);
    const lo = r.atLeast ?? -Infinity;
    const hi = r.atMost ?? Infinity;
    switch (c.result) {
      case '=':
      case '!=': {
        const equal = !Number.isInteger(expected) || !fits(r, expected) ? false : lo === hi ? true : undefined;
        return equal === undefined ? undefined : equal === (c.result === '=');
      }
      case '<':
        return hi < expected ? true : lo >= expected ? false : undefined;
      case '>':
        return lo > expected ? true : hi <= expected ? false : undefined;
    }
  }
  return holds(actual - expected, c.result);
}

/**
 * `r` narrowed by the outcome of a compare that does not decide its value
 * (`=` failed, `!=` held, `<`, `>`), or `null` when nothing is left.
 */
function narrow(r: RevKnowledge, result: KvCompare['result'], expected: number, held: boolean): RevKnowledge | null {
  let lo = r.atLeast ?? -Infinity;
  let hi = r.atMost ?? Infinity;
  let not = r.not ?? [];
  if (result === '=' || result === '!=') {
    if (Number.isInteger(expected) && !not.includes(expected)) not = [...not, expected].sort((a, b) => a - b);
  } else if ((result === '>') === held) {
    // > held: above expected; < failed: at least expected
    lo = Math.max(lo, held ? Math.floor(expected) + 1 : Math.ceil(expected));
  } else {
    // < held: below expected; > failed: at most expected
    hi = Math.min(hi, held ? Math.ceil(expected) - 1 : Math.floor(expected));
  }
  while (not.includes(lo)) lo++;
  while (not.includes(hi)) hi--;
  if (lo > hi) return null;
  return {
    value: undefined,
    atLeast: lo === -Infinity ? undefined : lo,
    atMost: hi === Infinity ? undefined : hi,
    not: not.filter((v) => v > lo && v < hi),
  };
}

/**
 * Records in the draft what the outcome of a compare tells of a revision the
 * draft did not know: its value (`=` held, `!=` failed), a bound (`<`, `>`)
 * or a value it does not have (`=` failed, `!=` held). A key at version 1
 * was created by its last write, so both its revisions learn it. Returns
 * false if the outcome contradicts what the draft knows.
 */
function assumeOutcome(d: Draft, c: KvCompare, held: boolean): boolean {
  const known = evalCompare(d, c);
  if (known !== undefined) return known === held;
  // undecided: the createRevision or modRevision of a live key, not known yet
  const cur = d.keys.get(c.key)!;
  const target = c.target as RevTarget;
  const expected = Number(c.value);
  if ((c.result === '=' && held) || (c.result === '!=' && !held)) {
    return checkRead(d, c.key, undefined, { [target]: expected }, undefined);
  }
  const targets: RevTarget[] = createdByLastWrite(cur) ? ['createRevision', 'modRevision'] : [target];
  let create = revOf(cur, 'createRevision');
  let mod = revOf(cur, 'modRevision');
  for (const t of targets) {
    const r = t === 'createRevision' ? create : mod;
    if (r.value !== undefined) {
      if (holds(r.value - expected, c.result) !== held) return false;
      continue;
    }
    const n = narrow(r, c.result, expected, held);
    if (n === null) return false;
    if (t === 'createRevision') create = n;
    else mod = n;
  }
  setKey(d, c.key, keyState(cur.value, cur.version, create, mod, cur.extraWrites));
  // the store has reached the key's revisions, so their lower bounds too
  const reached = Math.max(create.atLeast ?? -Infinity, mod.atLeast ?? -Infinity);
  if (reached > d.revision) d.revision = reached;
  return true;
}

function holds(cmp: number, result: KvCompare['result']): boolean {
  switch (result) {
    case '=':
      return cmp === 0;
    case '!=':
      return cmp !== 0;
    case '<':
      return cmp < 0;
    case '>':
      return cmp > 0;
  }
}

/**
 * Runs the writes and reads of one write request (put, delete, txn branch)
 * on the draft. `newRevision` is the revision the writes get (undefined when
 * unknown, per-key mode). Returns whether anything changed, or `null` if a
 * reported result contradicts the draft.
 */
function runOps(
  d: Draft,
  ops: readonly KvTxnOp[],
  results: readonly KvTxnOpResult[] | undefined,
  newRevision: number | undefined,
  floor: number,
  checked: ReadonlySet<number>,
): boolean | null {
  if (results !== undefined && results.length !== ops.length) return null;
  let changed = false;
  const written = new Set<string>();
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    const res = results?.[i];
    const cur = d.keys.get(op.key);
    if (res !== undefined && !resultFits(op, res)) return null;
    switch (op.type) {
      case 'get':
        if (res !== undefined && !checked.has(i) && !checkRead(d, op.key, res.value, res, undefined)) return null;
        break;
      case 'put': {
        if (res?.prevValue !== undefined && res.prevValue !== (cur?.value ?? null)) return null;
        // an unknown revision is at least `floor`
        if (cur === undefined) {
          setKey(d, op.key, keyState(op.value, 1, { value: newRevision, atLeast: floor }, { value: newRevision, atLeast: floor }, 0));
        } else {
          const version = cur.version + 1;
          const extra = (cur.extraWrites ?? 0) + (written.has(op.key) ? 1 : 0);
          let create = revOf(cur, 'createRevision');
          if (newRevision !== undefined) {
            // each of the writes since the creation has a revision of its
            // own: the key was created at least version - 1 revisions before
            const latest = newRevision - (version - 1 - extra);
            if (create.value !== undefined) {
              if (create.value > latest) return null;
            } else {
              const n = narrow(create, '<', latest + 1, true);
              if (n === null) return null;
              create = n;
            }
          }
          setKey(d, op.key, keyState(op.value, version, create, { value: newRevision, atLeast: floor }, extra));
        }
        written.add(op.key);
        changed = true;
        break;
      }
      case 'delete':
        if (res?.prevValue !== undefined && res.prevValue !== (cur?.value ?? null)) return null;
        if (res?.deleted !== undefined && res.deleted !== (cur === undefined ? 0 : 1)) return null;
        if (cur !== undefined) {
          setKey(d, op.key, undefined);
          changed = true;
        }
        written.add(op.key);
        break;
    }
  }
  return changed;
}

/**
 * Whether a branch result carries only fields of its operation's response
 * (a get: the value and metadata; a put: prevValue; a delete: deleted and
 * prevValue). Another operation's result in its place (the other branch
 * ran) would otherwise pass: the fields the operation does not have are not
 * checked.
 */
function resultFits(op: KvTxnOp, r: KvTxnOpResult): boolean {
  const meta = r.modRevision !== undefined || r.createRevision !== undefined || r.version !== undefined;
  switch (op.type) {
    case 'get':
      return r.prevValue === undefined && r.deleted === undefined;
    case 'put':
      return r.value === undefined && r.deleted === undefined && !meta;
    case 'delete':
      return r.value === undefined && !meta;
  }
}

/**
 * Applies a write request: `ops` under one revision, then the header check.
 * Returns the next state or `null` when illegal.
 */
function applyWrite(
  state: KvState,
  ops: readonly KvTxnOp[],
  results: readonly KvTxnOpResult[] | undefined,
  header: number | undefined,
  exact: boolean,
  d: Draft = draftOf(state),
): KvState | null {
  // the reads of keys the request has not written before them see the
  // store as it was before the request: the revisions they report were
  // reached before it, so its own revision is above them
  const checked = new Set<number>();
  if (results !== undefined && results.length === ops.length) {
    const written = new Set<string>();
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      const res = results[i];
      if (op.type !== 'get') written.add(op.key);
      else if (!written.has(op.key) && res !== undefined) {
        if (!checkRead(d, op.key, res.value, res, undefined)) return null;
        checked.add(i);
      }
    }
  }
  const before = d.revision;
  const newRevision = exact ? before + 1 : header;
  if (!exact && header !== undefined && header < before) return null;
  const changed = runOps(d, ops, results, newRevision, before + 1, checked);
  if (changed === null) return null;
  if (exact) {
    if (changed) d.revision = before + 1;
    if (header !== undefined && header !== d.revision) return null;
  } else if (header !== undefined) {
    // a write that changed something gets a revision above everything seen
    // before it; reads inside the txn may have raised the bound meanwhile
    if (changed && header <= before) return null;
    if (header < d.revision) return null;
    d.revision = header;
    if (!boundByHeader(d, header)) return null;
  } else if (changed && d.revision < before + 1) {
    // its revision is unknown, but above everything seen before it: the
    // store has at least reached it
    d.revision = before + 1;
  }
  return freeze(d);
}

function putResult(o: KvPutOutput | undefined): KvTxnOpResult[] | undefined {
  return o?.prevValue === undefined ? undefined : [{ prevValue: o.prevValue }];
}

function deleteResult(o: KvDeleteOutput | undefined): KvTxnOpResult[] | undefined {
  if (o === undefined || (o.prevValue === undefined && o.deleted === undefined)) return undefined;
  return [{ prevValue: o.prevValue, deleted: o.deleted }];
}

function stepKv(state: KvState, input: KvInput, output: KvOutput | undefined, exact: boolean): KvState[] {
  switch (input.type) {
    case 'get': {
      if (output === undefined) return [state];
      const o = output as KvGetOutput;
      const d = draftOf(state);
      if (!checkReadHeader(d, o.revision, exact)) return [];
      if (!checkRead(d, input.key, o.value, o, o.revision)) return [];
      return [freeze(d)];
    }
    case 'range': {
      if (output === undefined) return [state];
      const o = output as KvRangeOutput;
      const d = draftOf(state);
      if (!checkReadHeader(d, o.revision, exact)) return [];
      const expected = [...state.keys.keys()].filter((k) => inKeyRange(input, k)).sort(compareKeys);
      const kvs = o.kvs ?? [];
      if (kvs.length !== expected.length) return [];
      for (let i = 0; i < kvs.length; i++) {
        const kv = kvs[i]!;
        if (kv.key !== expected[i]) return [];
        if (!checkRead(d, kv.key, kv.value, kv, o.revision)) return [];
      }
      return [freeze(d)];
    }
    case 'put': {
      const o = output as KvPutOutput | undefined;
      const next = applyWrite(state, [input], putResult(o), o?.revision, exact);
      return next === null ? [] : [next];
    }
    case 'delete': {
      const o = output as KvDeleteOutput | undefined;
      const next = applyWrite(state, [input], deleteResult(o), o?.revision, exact);
      return next === null ? [] : [next];
    }
    case 'txn': {
      const o = output as KvTxnOutput | undefined;
      let anyFalse = false;
      let anyUnknown = false;
      const probe = draftOf(state);
      for (const c of input.compare) {
        const r = evalCompare(probe, c);
        if (r === false) anyFalse = true;
        else if (r === undefined) anyUnknown = true;
      }
      const branches: boolean[] = anyFalse ? [false] : anyUnknown ? [true, false] : [true];
      const out: KvState[] = [];
      for (const succeeded of branches) {
        if (o?.succeeded !== undefined && o.succeeded !== succeeded) continue;
        const drafts: Draft[] = [];
        // a compare the state decides failed: it tells nothing of the others
        if (!anyUnknown || anyFalse) drafts.push(draftOf(state));
        else if (succeeded) {
          // on revisions the state did not know: every compare held, which
          // may tell what they were
          const d = draftOf(state);
          if (input.compare.every((c) => assumeOutcome(d, c, true))) drafts.push(d);
        } else {
          // every compare the state decides held, so one it does not decide
          // failed: one state per such compare, each knowing that it failed
          for (const c of input.compare) {
            if (evalCompare(probe, c) !== undefined) continue;
            const d = draftOf(state);
            if (assumeOutcome(d, c, false)) drafts.push(d);
          }
        }
        for (const d of drafts) {
          const next = applyWrite(state, succeeded ? input.success : input.failure, o?.results, o?.revision, exact, d);
          if (next !== null) out.push(next);
        }
      }
      return out;
    }
  }
}

/**
 * The memoization key of a state: equal keys must mean equal states. Keys
 * and values are written as JSON strings, which end at their closing quote
 * whatever they hold: raw, a key or value holding the separators (etcd keys
 * and values are any bytes, `\0` included) could make two different states
 * one key, and the search would skip the second as explored.
 */
function stateKey(s: KvState): string {
  const parts: string[] = [String(s.revision)];
  const keys = [...s.keys.keys()].sort();
  for (const k of keys) parts.push(`${JSON.stringify(k)}${keyStateKey(s.keys.get(k)!)}`);
  return parts.join(';');
}

/** The memoization key of one key's state (equal keys: equal knowledge). */
function keyStateKey(v: KvKeyState): string {
  const create = v.createRevision ?? `?${v.createRevisionAtLeast ?? ''}:${v.createRevisionAtMost ?? ''}:${(v.createRevisionNot ?? []).join(' ')}`;
  const mod = v.modRevision ?? `?${v.modRevisionAtLeast ?? ''}:${v.modRevisionAtMost ?? ''}:${(v.modRevisionNot ?? []).join(' ')}`;
  return `${JSON.stringify(v.value)}${v.version},${create},${mod}${v.extraWrites === undefined ? '' : `,+${v.extraWrites}`}`;
}

const q = (s: string): string => JSON.stringify(s);

function describeMeta(m: KvMeta): string {
  const parts: string[] = [];
  if (m.modRevision !== undefined) parts.push(`mod ${m.modRevision}`);
  if (m.createRevision !== undefined) parts.push(`create ${m.createRevision}`);
  if (m.version !== undefined) parts.push(`ver ${m.version}`);
  return parts.length === 0 ? '' : ` {${parts.join(', ')}}`;
}

function describeTxnOp(op: KvTxnOp): string {
  return op.type === 'put' ? `put(${q(op.key)}, ${q(op.value)})` : `${op.type}(${q(op.key)})`;
}

function describeCompare(c: KvCompare): string {
  return `${c.target}(${q(c.key)}) ${c.result} ${typeof c.value === 'string' ? q(c.value) : c.value}`;
}

function describeResult(r: KvTxnOpResult): string {
  const parts: string[] = [];
  if (r.value !== undefined) parts.push(r.value === null ? 'none' : q(r.value));
  if (r.deleted !== undefined) parts.push(`deleted ${r.deleted}`);
  if (r.prevValue !== undefined) parts.push(`prev ${r.prevValue === null ? 'none' : q(r.prevValue)}`);
  const meta = describeMeta(r);
  return (parts.join(' ') || 'ok') + meta;
}

/** One readable line for a KV operation (`get("a") → "1" {mod 4} @5`). */
export function describeKvOperation(input: KvInput, output: KvOutput | undefined): string {
  let call: string;
  switch (input.type) {
    case 'get':
    case 'put':
    case 'delete':
      call = describeTxnOp(input);
      break;
    case 'range':
      call = `range(${describeKeyRange(input)})`;
      break;
    case 'txn':
      call =
        `txn(if ${input.compare.map(describeCompare).join(' and ') || 'true'}` +
        ` then ${input.success.map(describeTxnOp).join(', ') || 'nothing'}` +
        ` else ${input.failure.map(describeTxnOp).join(', ') || 'nothing'})`;
      break;
  }
  if (output === undefined) return `${call} → ?`;
  const rev = (output as { revision?: number }).revision;
  const at = rev === undefined ? '' : ` @${rev}`;
  switch (input.type) {
    case 'get': {
      const o = output as KvGetOutput;
      return `${call} → ${o.value === null ? 'none' : q(o.value)}${describeMeta(o)}${at}`;
    }
    case 'range': {
      const o = output as KvRangeOutput;
      return `${call} → {${(o.kvs ?? []).map((kv) => `${q(kv.key)}: ${q(kv.value)}${describeMeta(kv)}`).join(', ')}}${at}`;
    }
    case 'put': {
      const o = output as KvPutOutput;
      return `${call} → ok${o.prevValue === undefined ? '' : ` prev ${o.prevValue === null ? 'none' : q(o.prevValue)}`}${at}`;
    }
    case 'delete': {
      const o = output as KvDeleteOutput;
      return `${call} → ${describeResult({ deleted: o.deleted, prevValue: o.prevValue })}${at}`;
    }
    case 'txn': {
      const o = output as KvTxnOutput;
      const branch = o.succeeded === undefined ? 'ok' : o.succeeded ? 'succeeded' : 'failed';
      const results = o.results === undefined ? '' : ` [${o.results.map(describeResult).join('; ')}]`;
      return `${call} → ${branch}${results}${at}`;
    }
  }
}

function describeKvState(s: KvState): string {
  const keys = [...s.keys.keys()].sort(compareKeys);
  const body = keys
    .map((k) => {
      const v = s.keys.get(k)!;
      return `${q(k)}: ${q(v.value)} {mod ${v.modRevision ?? '?'}, create ${v.createRevision ?? '?'}, ver ${v.version}}`;
    })
    .join(', ');
  return `revision ${s.revision}: {${body}}`;
}

/** True for a KV input that changes nothing (get, range, a txn of gets only). */
export function isKvReadOnly(input: KvInput): boolean {
  switch (input.type) {
    case 'get':
    case 'range':
      return true;
    case 'put':
    case 'delete':
      return false;
    case 'txn':
      return input.success.every((o) => o.type === 'get') && input.failure.every((o) => o.type === 'get');
  }
}

/**
 * The KV model: an etcd-v3-style store of string keys and values, starting
 * empty. It is a {@link NondeterministicModel} (a txn compare on a revision
 * the history never revealed can go either way, unless what is known of
 * that revision decides it; the branch taken then records what the compares
 * tell of it: a value, a bound, or a value it is not; when the failure
 * branch ran and several compares were undecided, one state per compare
 * that may have failed).
 *
 * What it checks, for each operation in the linearization order:
 * - `get` / `range` return exactly the live keys (a range: every live key of
 *   the range, in key order, no other) with their current values; when the
 *   response carries `version`, `modRevision`, `createRevision` they must be
 *   the key's (version = puts since creation; createRevision = revision of
 *   the creating put; a key at version 1 has createRevision = modRevision,
 *   and one at version v a modRevision at least v - 1 above its
 *   createRevision, each write having a revision of its own, unless a txn
 *   put it twice, which etcd refuses; neither is above the read's header
 *   revision).
 *   A missing key reads as `null` (metadata absent or 0).
 * - `put` always succeeds; `prevValue`, when reported, is the value before
 *   (`null` if the key did not exist). `delete`: `deleted` is 1 iff the key
 *   existed; `prevValue` as for put.
 * - `txn` takes the `success` branch iff every compare holds, as etcd's
 *   `applyCompare` evaluates them (a `value` compare on a missing key is
 *   false; version/createRevision/modRevision of a missing key are 0;
 *   values compare by bytes). `succeeded` and the per-operation `results`
 *   (gets, prevValue, deleted), when reported, must match, each with only
 *   the fields of its operation (a get's value and metadata, a put's
 *   prevValue, a delete's deleted and prevValue); the branch runs in order,
 *   reads seeing the txn's own earlier writes.
 * - Revisions. Default (per-key) mode: the history is partitioned by key
 *   (connected components when an operation touches several keys, see
 *   {@link partitionKvHistory}), and within a partition the model keeps a
 *   lower bound of the store revision: a write that changed something must
 *   report a revision above every revision seen before it, a read or a
 *   no-op write a revision at least as high; a read may not return a key
 *   with a modRevision above its own header revision. A write that reports
 *   no revision still has one above every revision seen before it, which
 *   the bound and a later read of the key's revisions must respect. Stale reads across
 *   different keys are not caught in this mode. With
 *   `{ globalRevision: true }` the revision is tracked exactly (etcd: each
 *   write that changes something bumps it by exactly one, deletes of
 *   nothing and read-only txns do not) and every reported revision must be
 *   the right one, which catches a stale read whose value happens to be
 *   current but whose revision is old; the history is then one partition.
 *
 * An operation whose output is unknown is applied without checks; a
 * read-only one (get, range, a txn of gets) is dropped by the checker; a
 * write whose value was later observed, when no other operation writes that
 * value to that key, is required to take effect before the observer
 * returned; in `globalRevision` mode, one that no free revision is left for
 * is dropped (see {@link proveKvOutcomes}). Unique values per write and
 * revisions in every response make histories with many lost responses much
 * faster to check.
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an option of a name the options do not declare
 */
export function kvModel(options: KvModelOptions = {}): NondeterministicModel<KvState, KvInput, KvOutput> {
  checkOptionsArg(options, ['globalRevision', 'initialRevision'] satisfies (keyof KvModelOptions)[], 'kvModel options');
  const exact = options.globalRevision === true;
  const initial: KvState = { revision: options.initialRevision ?? 1, keys: new Map() };
  const keys = new WeakMap<KvState, string>();
  return {
    nondeterministic: true,
    init: () => [initial],
    step: (state, input, output) => stepKv(state, input, output, exact),
    key(state) {
      let k = keys.get(state);
      if (k === undefined) keys.set(state, (k = stateKey(state)));
      return k;
    },
    partition: (history: readonly Operation<KvInput, KvOutput>[]) => {
      for (const op of history) checkKvInput(op.input);
      return exact ? [history.slice()] : partitionKvHistory(history);
    },
    readOnly: isKvReadOnly,
    // per-key mode: a read raises the revision bound or learns revisions
    pure: (input) => exact && isKvReadOnly(input),
    proveOutcomes: (history: readonly Operation<KvInput, KvOutput>[]) =>
      proveKvOutcomes(history, { globalRevision: exact, initialRevision: initial.revision }),
    describeOperation: describeKvOperation,
    describeState: describeKvState,
  };
}
