// Malformed arguments across the public key-value surface, generated: the
// methods of a KvNode (put, get, range, delete, txn, watch, compact and the
// lease calls), of a bare MvccStore and of a Lessor get arguments of every
// wrong type (null, NaN, infinities, fractions, huge and negative numbers,
// BigInt, Symbols, strings for numbers, arrays, boxed primitives, objects
// without a prototype, typed arrays of other kinds, DataViews, detached and
// shared buffers, Proxies of a Uint8Array, option objects with misspelled keys, frozen, proxied or
// with a getter that throws) mixed with valid ones. Each call either
// succeeds (when every part of it is valid) or fails with a typed error of a
// code its docs list, and a failed call changes nothing: same revision,
// same keys and values, same leases, nothing proposed; a valid call right
// after still works. Then: bytes and options a caller changes once a
// KvNode call has returned change neither what is stored, nor what is
// read, nor what a watch matches. The seed is printed; QUORUMKV_INPUT_SEED
// replays it (QUORUMKV_INPUT_RUNS sets the number of runs, 600 by default).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemoryLevel } from 'memory-level';
import { ErrorCode, QuorumError, UsageError } from '../../src/errors.js';
import { KvNode } from '../../src/server/index.js';
import { MemoryNetwork } from '../../src/transport/index.js';
import { MvccStore } from '../../src/mvcc/index.js';
import { Lessor } from '../../src/lease/index.js';
import { detachedView, proxiedView } from '../mvcc/helpers.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

const SEED_ENV = 'QUORUMKV_INPUT_SEED';
const seed = process.env[SEED_ENV] !== undefined ? Number(process.env[SEED_ENV]) : Date.now() % 2 ** 31;
console.log(`input-property seed ${seed} (replay with ${SEED_ENV}=${seed})`);

const enc = new TextEncoder();
const hex = (u: Uint8Array): string => Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString('hex');

/** Thrown by the getters and proxy traps of the caller's own objects: it may come back as it is. */
class CallerError extends Error {}

/** What a generated call needs to resolve references such as "the live lease". */
interface Ctx {
  lease: number;
  revision: number;
}

/** One generated part of a call: a label (printed by fast-check) and whether it is malformed. */
interface Part {
  label: string;
  bad: boolean;
  /** Its value may throw CallerError when read. */
  throws?: boolean;
}

const FACTORIES = new Map<string, (ctx: Ctx) => unknown>();

function parts(kind: string, bad: boolean, entries: Record<string, (ctx: Ctx) => unknown>, throws = false): fc.Arbitrary<Part> {
  const labels = Object.keys(entries).map((l) => `${kind}:${l}`);
  for (const [l, f] of Object.entries(entries)) FACTORIES.set(`${kind}:${l}`, f);
  return fc.constantFrom(...labels.map((label) => ({ label, bad, ...(throws ? { throws } : {}) })));
}

function make(p: Part, ctx: Ctx): unknown {
  const f = FACTORIES.get(p.label);
  if (f === undefined) throw new Error(`no factory ${p.label}`);
  return f(ctx);
}

class SubBytes extends Uint8Array {}

/** The same bytes in every kind of Uint8Array the API takes. */
function containers(s: string): Record<string, () => Uint8Array> {
  const b = enc.encode(s);
  return {
    u8: () => new Uint8Array(b),
    buffer: () => Buffer.from(b),
    subclass: () => SubBytes.from(b),
    shared: () => {
      const u = new Uint8Array(new SharedArrayBuffer(b.length + 2), 1, b.length);
      u.set(b);
      return u;
    },
    offset: () => {
      const whole = new Uint8Array(b.length + 8).fill(0x7a);
      whole.set(b, 4);
      return whole.subarray(4, 4 + b.length);
    },
  };
}

const throwingToString = (): object => ({
  toString() {
    throw new CallerError('toString');
  },
});

/** Values of no use anywhere a key, number, flag or enum is expected. */
const JUNK: Record<string, () => unknown> = {
  null: () => null,
  NaN: () => NaN,
  Infinity: () => Infinity,
  '-Infinity': () => -Infinity,
  '1.5': () => 1.5,
  '2**53': () => 2 ** 53,
  '-(2**53)': () => -(2 ** 53),
  '1e300': () => 1e300,
  bigint: () => 5n,
  symbol: () => Symbol('junk'),
  array: () => [1],
  'empty array': () => [],
  function: () => () => 1,
  date: () => new Date(0),
  'boxed number': () => new Number(5),
  'boxed string': () => new String('f/a'),
  'boxed boolean': () => new Boolean(true),
  map: () => new Map(),
  object: () => ({ a: 1 }),
  'null-prototype object': () => Object.create(null) as object,
  'throwing toString': throwingToString,
  'throwing toPrimitive': () => ({
    [Symbol.toPrimitive]() {
      throw new CallerError('toPrimitive');
    },
  }),
  dataview: () => new DataView(new ArrayBuffer(3)),
  uint8clamped: () => new Uint8ClampedArray([102, 47, 97]),
  int8: () => new Int8Array([102, 47, 97]),
  uint16: () => new Uint16Array([102, 47, 97]),
  arraybuffer: () => enc.encode('f/a').buffer,
  sharedarraybuffer: () => new SharedArrayBuffer(3),
};

/** `JUNK` without the values a particular slot takes. */
function junkBut(...taken: string[]): Record<string, () => unknown> {
  return Object.fromEntries(Object.entries(JUNK).filter(([k]) => !taken.includes(k)));
}

const KEYS = ['f/a', 'f/b', 'f/c'];
const keyOk = (strings: boolean): fc.Arbitrary<Part> =>
  fc.oneof(
    ...KEYS.map((k) => parts(`key ${k}`, false, { ...(strings ? { string: () => k } : {}), ...containers(k) })),
    parts('key', false, { 'huge (2 MiB)': () => new Uint8Array(2 * 1024 * 1024).fill(0x66) }),
  );
const keyBad = (strings: boolean): fc.Arbitrary<Part> =>
  fc.oneof(
    parts('key', true, JUNK),
    parts('key', true, { 'empty u8': () => new Uint8Array(0), detached: detachedView, 'proxied u8': proxiedView, 'byte array': () => [102, 47, 97], true: () => true, number: () => 5 }),
    strings ? parts('key', true, { 'empty string': () => '' }) : parts('key', true, { string: () => 'f/a', 'empty string': () => '' }),
  );
const valueOk = (strings: boolean): fc.Arbitrary<Part> =>
  parts(strings ? 'value' : 'bytes value', false, {
    ...containers('v'),
    'empty u8': () => new Uint8Array(0),
    'big (64 KiB)': () => new Uint8Array(64 * 1024).fill(1),
    ...(strings ? { string: () => 'v', 'empty string': () => '' } : {}),
  });
const valueBad = (strings: boolean): fc.Arbitrary<Part> =>
  fc.oneof(parts('value', true, JUNK), parts('value', true, { detached: detachedView, 'proxied u8': proxiedView, true: () => true, number: () => 5, ...(strings ? {} : { string: () => 'v' }) }));

const intOk = parts('int', false, { 0: () => 0, 1: () => 1, '-1': () => -1, 3: () => 3, 'MAX_SAFE': () => Number.MAX_SAFE_INTEGER, 'MIN_SAFE': () => Number.MIN_SAFE_INTEGER, '-0': () => -0 });
const intBad = fc.oneof(parts('int', true, JUNK), parts('int', true, { '"5"': () => '5', '"abc"': () => 'abc', true: () => true, '-0.5': () => -0.5 }));
const revisionOk = fc.oneof(intOk, parts('revision', false, { current: (c) => c.revision, 'current - 1': (c) => c.revision - 1, 'current + 1': (c) => c.revision + 1 }));
const leaseIdOk = fc.oneof(intOk, parts('lease', false, { live: (c) => c.lease, unknown: () => 987_654 }));
const flagOk = parts('flag', false, { true: () => true, false: () => false });
const flagBad = fc.oneof(parts('flag', true, JUNK), parts('flag', true, { '"yes"': () => 'yes', '"false"': () => 'false', 0: () => 0, 1: () => 1 }));
const enumBad = fc.oneof(parts('enum', true, JUNK), parts('enum', true, { 'wrong case': () => 'ascend', unknown: () => 'SIDEWAYS', 0: () => 0, true: () => true, '""': () => '' }));
/** A range end that is no bytes (an empty one is fine: the single key). */
const endBad = (strings: boolean): fc.Arbitrary<Part> =>
  fc.oneof(parts('end', true, JUNK), parts('end', true, { detached: detachedView, 'proxied u8': proxiedView, 'byte array': () => [102, 47, 98], true: () => true, number: () => 5, ...(strings ? {} : { string: () => 'f/b' }) }));
const bytesOptOk = (strings: boolean): fc.Arbitrary<Part> =>
  fc.oneof(
    ...['f/b', 'f/z', '\0'].map((k) => parts(`end ${JSON.stringify(k)}`, false, { ...(strings ? { string: () => k } : {}), ...containers(k) })),
    parts('end', false, { 'empty u8': () => new Uint8Array(0) }),
  );

/** A field: left out (most often), valid, or malformed. */
const field = (ok: fc.Arbitrary<Part>, bad: fc.Arbitrary<Part>): fc.Arbitrary<Part | undefined> =>
  fc.oneof({ arbitrary: fc.constant(undefined), weight: 4 }, { arbitrary: ok, weight: 3 }, { arbitrary: bad, weight: 1 });
/** A field that must be there. */
const required = (ok: fc.Arbitrary<Part>, bad: fc.Arbitrary<Part>): fc.Arbitrary<Part> => fc.oneof({ arbitrary: ok, weight: 5 }, { arbitrary: bad, weight: 1 });

/** How an options or request object is built around its fields. */
const SHAPES = ['plain', 'frozen', 'null-prototype', 'proxy', 'class instance', 'misspelled key', 'misspelled key undefined', 'getter throws', 'extra symbol key'] as const;
type Shape = (typeof SHAPES)[number];
const shapeArb = fc.oneof({ arbitrary: fc.constant<Shape>('plain'), weight: 6 }, { arbitrary: fc.constantFrom(...SHAPES), weight: 4 });
/** A whole object argument replaced by something that is no object of fields. */
const notObject = fc.oneof(
  parts('object', true, {
    null: () => null,
    number: () => 5,
    string: () => 'opts',
    true: () => true,
    symbol: () => Symbol('opts'),
    bigint: () => 1n,
    array: () => [],
    function: () => () => ({}),
  }),
  parts(
    'object',
    true,
    {
      'revoked proxy': () => {
        const r = Proxy.revocable({}, {});
        r.revoke();
        return r.proxy;
      },
    },
    true,
  ),
);

interface ObjSpec {
  fields: Record<string, Part | undefined>;
  shape: Shape;
  /** Replaces the whole object. */
  whole?: Part;
}

const objArb = (fields: Record<string, fc.Arbitrary<Part | undefined>>, wholeBad = true): fc.Arbitrary<ObjSpec> =>
  fc.record({
    fields: fc.record(fields),
    shape: shapeArb,
    whole: wholeBad ? fc.oneof({ arbitrary: fc.constant(undefined), weight: 12 }, { arbitrary: notObject, weight: 1 }) : fc.constant(undefined),
  });

class Holder {}

function build(spec: ObjSpec, ctx: Ctx, extra: Record<string, unknown> = {}): unknown {
  if (spec.whole !== undefined) return make(spec.whole, ctx);
  const values: Record<string, unknown> = { ...extra };
  for (const [k, p] of Object.entries(spec.fields)) if (p !== undefined) values[k] = make(p, ctx);
  const firstKey = Object.keys(values)[0];
  switch (spec.shape) {
    case 'plain':
      return values;
    case 'frozen':
      return Object.freeze(values);
    case 'null-prototype':
      return Object.assign(Object.create(null) as object, values);
    case 'proxy':
      return new Proxy(values, {});
    case 'class instance':
      return Object.assign(new Holder(), values);
    case 'misspelled key':
      return { ...values, prevkv: true };
    case 'misspelled key undefined':
      return { ...values, prevkv: undefined };
    case 'extra symbol key':
      return { ...values, [Symbol('extra')]: 1 };
    case 'getter throws': {
      const o = { ...values };
      const k = firstKey ?? 'key';
      Object.defineProperty(o, k, {
        enumerable: true,
        get() {
          throw new CallerError(`getter ${k}`);
        },
      });
      return o;
    }
  }
}

function specBad(spec: ObjSpec | undefined): boolean {
  if (spec === undefined) return false;
  if (spec.whole !== undefined) return spec.whole.bad;
  return spec.shape === 'misspelled key' || Object.values(spec.fields).some((p) => p?.bad === true);
}

function specThrows(spec: ObjSpec | undefined): boolean {
  if (spec === undefined) return false;
  if (spec.whole !== undefined) return spec.whole.throws === true;
  return spec.shape === 'getter throws' || Object.values(spec.fields).some((p) => p?.throws === true);
}

/** A generated call: what to run, whether it must fail, the codes it may fail with. */
interface Call {
  name: string;
  bad: boolean;
  throws: boolean;
  run: (ctx: Ctx) => (target: Any) => unknown;
}

/** Gives a call a printable form for fast-check's counterexamples: its generated parts. */
function described(spec: unknown, call: Call): Call {
  return Object.assign(call, { [fc.toStringMethod]: () => `${call.name}${call.bad ? ' (malformed)' : ''} ${fc.stringify(spec)}` });
}

const anyBad = (...ps: (Part | undefined)[]): boolean => ps.some((p) => p?.bad === true);

// ------------------------------------------------------------- KvNode calls

const RANGE_OPTS = {
  limit: field(intOk, intBad),
  revision: field(revisionOk, intBad),
  sortOrder: field(parts('sortOrder', false, { NONE: () => 'NONE', ASCEND: () => 'ASCEND', DESCEND: () => 'DESCEND' }), enumBad),
  sortTarget: field(parts('sortTarget', false, { KEY: () => 'KEY', VALUE: () => 'VALUE', MOD: () => 'MOD' }), enumBad),
  serializable: field(flagOk, flagBad),
  keysOnly: field(flagOk, flagBad),
  countOnly: field(flagOk, flagBad),
  minModRevision: field(intOk, intBad),
  maxCreateRevision: field(intOk, intBad),
};
const keyRangeFields = (strings: boolean) => ({ rangeEnd: field(bytesOptOk(strings), endBad(strings)), prefix: field(flagOk, flagBad) });
const nodeKey = required(keyOk(true), keyBad(true));

const putOptsArb = objArb({ lease: field(leaseIdOk, intBad), prevKv: field(flagOk, flagBad), ignoreValue: field(flagOk, flagBad), ignoreLease: field(flagOk, flagBad) });
const compareArb = fc.record({
  key: nodeKey,
  target: required(parts('target', false, { VERSION: () => 'VERSION', CREATE: () => 'CREATE', MOD: () => 'MOD', VALUE: () => 'VALUE', LEASE: () => 'LEASE' }), enumBad),
  result: required(parts('result', false, { EQUAL: () => 'EQUAL', NOT_EQUAL: () => 'NOT_EQUAL', GREATER: () => 'GREATER', LESS: () => 'LESS' }), enumBad),
  operand: fc.constantFrom('version', 'createRevision', 'modRevision', 'lease', 'value'),
  number: required(intOk, intBad),
  value: required(valueOk(true), valueBad(true)),
});
type CompareSpec = typeof compareArb extends fc.Arbitrary<infer T> ? T : never;

function compareInput(c: CompareSpec, ctx: Ctx): { input: Record<string, unknown>; bad: boolean; throws: boolean } {
  const input: Record<string, unknown> = { key: make(c.key, ctx), target: make(c.target, ctx), result: make(c.result, ctx) };
  const operand = c.operand === 'value' ? c.value : c.number;
  input[c.operand] = make(operand, ctx);
  const ownOperand = { VERSION: 'version', CREATE: 'createRevision', MOD: 'modRevision', VALUE: 'value', LEASE: 'lease' }[c.target.label.slice('target:'.length)];
  // another target's operand is refused (etcd's Compare holds one)
  const mismatched = !c.target.bad && ownOperand !== c.operand;
  return { input, bad: anyBad(c.key, c.target, c.result, operand) || mismatched, throws: false };
}

interface OpSpec {
  kind: 'range' | 'put' | 'deleteRange' | 'txn' | 'none' | 'two' | 'junk';
  key: Part;
  value: Part;
  opts: ObjSpec;
  nested?: { compare: CompareSpec[]; success: OpSpec[] };
}
const opArb: fc.Arbitrary<OpSpec> = fc.letrec<{ op: OpSpec }>((tie) => ({
  op: fc.record({
    kind: fc.oneof({ arbitrary: fc.constantFrom('range', 'put', 'deleteRange'), weight: 8 }, { arbitrary: fc.constantFrom('txn', 'none', 'two', 'junk'), weight: 2 }),
    key: nodeKey,
    value: required(valueOk(true), valueBad(true)),
    opts: objArb({ prevKv: field(flagOk, flagBad), ...keyRangeFields(true) }, false),
    nested: fc.option(fc.record({ compare: fc.array(compareArb, { maxLength: 1 }), success: fc.array(tie('op'), { maxLength: 2, depthIdentifier: 'op' }) }), { nil: undefined, maxDepth: 2, depthIdentifier: 'op' }),
  }) as fc.Arbitrary<OpSpec>,
})).op;

/** An empty key with `prefix: true` is every key in a range or a delete (etcd's `get "" --prefix`), not a malformed key. */
const everyKey = (key: Part, o: ObjSpec | undefined): boolean =>
  (key.label === 'key:empty string' || key.label === 'key:empty u8') && o?.whole === undefined && o?.fields.prefix?.label === 'flag:true';

function opInput(o: OpSpec, ctx: Ctx): { input: unknown; bad: boolean; throws: boolean } {
  const key = make(o.key, ctx);
  switch (o.kind) {
    case 'range':
    case 'deleteRange': {
      const body = build(o.opts, ctx, { key });
      const prefixAndEnd = o.opts.fields.prefix?.label === 'flag:true' && o.opts.fields.rangeEnd !== undefined;
      // prevKv is no range option
      const notItsOption = o.kind === 'range' && o.opts.fields.prevKv !== undefined;
      return { input: { [o.kind]: body }, bad: (o.key.bad && !everyKey(o.key, o.opts)) || specBad(o.opts) || prefixAndEnd || notItsOption, throws: specThrows(o.opts) };
    }
    case 'put':
      return { input: { put: { key, value: make(o.value, ctx) } }, bad: anyBad(o.key, o.value), throws: false };
    case 'txn': {
      const inner = txnInput(o.nested?.compare ?? [], o.nested?.success ?? [], ctx);
      return { input: { txn: inner.input }, bad: inner.bad, throws: inner.throws };
    }
    case 'none':
      return { input: {}, bad: true, throws: false };
    case 'two':
      return { input: { put: { key, value: 'x' }, deleteRange: { key } }, bad: true, throws: false };
    case 'junk':
      return { input: make({ label: 'object:number', bad: true }, ctx), bad: true, throws: false };
  }
}

function txnInput(compare: CompareSpec[], success: OpSpec[], ctx: Ctx): { input: Record<string, unknown>; bad: boolean; throws: boolean } {
  const cs = compare.map((c) => compareInput(c, ctx));
  const ops = success.map((o) => opInput(o, ctx));
  const all = [...cs, ...ops];
  return { input: { compare: cs.map((c) => c.input), success: ops.map((o) => o.input) }, bad: all.some((x) => x.bad), throws: all.some((x) => x.throws) };
}

/** The codes each KvNode method documents for a call that changed nothing. */
const NODE_CODES: Record<string, readonly string[]> = {
  put: [ErrorCode.INVALID_ARGUMENT, ErrorCode.REQUEST_TOO_LARGE, ErrorCode.LEASE_NOT_FOUND, ErrorCode.KEY_NOT_FOUND],
  get: [ErrorCode.INVALID_ARGUMENT, ErrorCode.FUTURE_REVISION, ErrorCode.REVISION_COMPACTED],
  range: [ErrorCode.INVALID_ARGUMENT, ErrorCode.FUTURE_REVISION, ErrorCode.REVISION_COMPACTED],
  delete: [ErrorCode.INVALID_ARGUMENT, ErrorCode.REQUEST_TOO_LARGE],
  txn: [
    ErrorCode.INVALID_ARGUMENT,
    ErrorCode.TOO_MANY_TXN_OPS,
    ErrorCode.DUPLICATE_KEY,
    ErrorCode.REQUEST_TOO_LARGE,
    ErrorCode.LEASE_NOT_FOUND,
    ErrorCode.KEY_NOT_FOUND,
    ErrorCode.FUTURE_REVISION,
    ErrorCode.REVISION_COMPACTED,
  ],
  watch: [ErrorCode.INVALID_ARGUMENT],
  compact: [ErrorCode.INVALID_ARGUMENT, ErrorCode.REVISION_COMPACTED, ErrorCode.FUTURE_REVISION],
  leaseGrant: [ErrorCode.INVALID_ARGUMENT, ErrorCode.LEASE_EXISTS],
  leaseRevoke: [ErrorCode.INVALID_ARGUMENT, ErrorCode.LEASE_NOT_FOUND],
  leaseKeepAlive: [ErrorCode.INVALID_ARGUMENT, ErrorCode.LEASE_NOT_FOUND],
  leaseTimeToLive: [ErrorCode.INVALID_ARGUMENT],
};

/** The calls of `arb`'s specs, printed by their specs in counterexamples. */
function calls<S>(arb: fc.Arbitrary<S>, f: (s: S) => Call): fc.Arbitrary<Call> {
  return arb.map((s) => described(s, f(s)));
}

const prefixWithEnd = (o: ObjSpec | undefined): boolean => o?.whole === undefined && o?.fields.prefix?.label === 'flag:true' && o.fields.rangeEnd !== undefined;

const nodeCall: fc.Arbitrary<Call> = fc.oneof(
  calls(fc.record({ key: nodeKey, value: required(valueOk(true), valueBad(true)), opts: fc.option(putOptsArb, { nil: undefined }) }), ({ key, value, opts }) => ({
    name: 'put',
    bad: anyBad(key, value) || specBad(opts),
    throws: specThrows(opts),
    run: (ctx) => (n: Any) => n.put(make(key, ctx), make(value, ctx), opts && build(opts, ctx)),
  })),
  calls(fc.record({ key: nodeKey, opts: fc.option(objArb(RANGE_OPTS), { nil: undefined }) }), ({ key, opts }) => ({
    name: 'get',
    bad: key.bad || specBad(opts),
    throws: specThrows(opts),
    run: (ctx) => (n: Any) => n.get(make(key, ctx), opts && build(opts, ctx)),
  })),
  calls(fc.record({ key: nodeKey, req: objArb({ ...RANGE_OPTS, ...keyRangeFields(true) }, false) }), ({ key, req }) => ({
    name: 'range',
    bad: (key.bad && !everyKey(key, req)) || specBad(req) || prefixWithEnd(req),
    throws: specThrows(req),
    run: (ctx) => (n: Any) => n.range(build(req, ctx, { key: make(key, ctx) })),
  })),
  calls(fc.record({ key: nodeKey, opts: fc.option(objArb({ ...keyRangeFields(true), prevKv: field(flagOk, flagBad) }), { nil: undefined }) }), ({ key, opts }) => ({
    name: 'delete',
    bad: (key.bad && !everyKey(key, opts)) || specBad(opts) || prefixWithEnd(opts),
    throws: specThrows(opts),
    run: (ctx) => (n: Any) => n.delete(make(key, ctx), opts && build(opts, ctx)),
  })),
  calls(fc.record({ compare: fc.array(compareArb, { maxLength: 2 }), success: fc.array(opArb, { maxLength: 3 }), whole: fc.option(notObject, { nil: undefined, freq: 10 }) }), ({ compare, success, whole }) => {
    const probe = txnInput(compare, success, { lease: 1, revision: 1 });
    return {
      name: 'txn',
      bad: whole !== undefined || probe.bad,
      throws: whole?.throws === true || probe.throws,
      run: (ctx) => (n: Any) => n.txn(whole !== undefined ? make(whole, ctx) : txnInput(compare, success, ctx).input),
    };
  }),
  calls(
    fc.record({
      key: fc.oneof(nodeKey, parts('watch key', false, { 'empty string': () => '', 'empty u8': () => new Uint8Array(0) })),
      opts: fc.option(
        objArb({
          ...keyRangeFields(true),
          startRevision: field(revisionOk, intBad),
          prevKv: field(flagOk, flagBad),
          progressNotify: field(flagOk, flagBad),
          filters: field(
            parts('filters', false, { empty: () => [], NOPUT: () => ['NOPUT'], both: () => ['NOPUT', 'NODELETE'] }),
            fc.oneof(parts('filters', true, junkBut('empty array')), parts('filters', true, { 'unknown filter': () => ['NOPUTS'], 'null-prototype filter': () => [Object.create(null)], 'symbol filter': () => [Symbol('f')] })),
          ),
        }),
        { nil: undefined },
      ),
    }),
    ({ key, opts }) => ({
      name: 'watch',
      // a watch key may be empty, as etcd's
      bad: (key.bad && key.label !== 'key:empty u8' && key.label !== 'key:empty string') || specBad(opts) || prefixWithEnd(opts),
      throws: specThrows(opts),
      run: (ctx) => (n: Any) => n.watch(make(key, ctx), opts && build(opts, ctx)),
    }),
  ),
  calls(fc.record({ rev: required(revisionOk, intBad), opts: fc.option(objArb({ physical: field(flagOk, flagBad) }), { nil: undefined }) }), ({ rev, opts }) => ({
    name: 'compact',
    bad: rev.bad || specBad(opts),
    throws: specThrows(opts),
    run: (ctx) => (n: Any) => n.compact(make(rev, ctx), opts && build(opts, ctx)),
  })),
  calls(fc.record({ ttl: required(intOk, intBad), opts: fc.option(objArb({ id: field(leaseIdOk, intBad) }), { nil: undefined }) }), ({ ttl, opts }) => ({
    name: 'leaseGrant',
    bad: ttl.bad || specBad(opts),
    throws: specThrows(opts),
    run: (ctx) => (n: Any) => n.leaseGrant(make(ttl, ctx), opts && build(opts, ctx)),
  })),
  calls(required(leaseIdOk, intBad), (id) => ({ name: 'leaseRevoke', bad: id.bad, throws: false, run: (ctx) => (n: Any) => n.leaseRevoke(make(id, ctx)) })),
  calls(required(leaseIdOk, intBad), (id) => ({ name: 'leaseKeepAlive', bad: id.bad, throws: false, run: (ctx) => (n: Any) => n.leaseKeepAlive(make(id, ctx)) })),
  calls(fc.record({ id: required(leaseIdOk, intBad), opts: fc.option(objArb({ keys: field(flagOk, flagBad) }), { nil: undefined }) }), ({ id, opts }) => ({
    name: 'leaseTimeToLive',
    bad: id.bad || specBad(opts),
    throws: specThrows(opts),
    run: (ctx) => (n: Any) => n.leaseTimeToLive(make(id, ctx), opts && build(opts, ctx)),
  })),
);

// ------------------------------------------------------------- helpers

/** Runs `f`, awaiting a promise it returns, for at most `ms`. */
type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

async function outcome(f: () => unknown, ms = 5000): Promise<Outcome> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const v = f();
    const value = v instanceof Promise ? await Promise.race([v, new Promise((_, rej) => (timer = setTimeout(() => rej(new Error(`no answer within ${ms} ms`)), ms)))]) : v;
    return { ok: true, value };
  } catch (error) {
    return { ok: false, error };
  } finally {
    clearTimeout(timer);
  }
}

function describe(e: unknown): string {
  if (e instanceof QuorumError) return `${e.name} ${e.code}: ${e.message.slice(0, 200)}`;
  if (e instanceof Error) return `${e.name}: ${e.message.slice(0, 200)}`;
  try {
    return String(e);
  } catch {
    return typeof e;
  }
}

/** Checks a call's outcome; returns whether it succeeded. */
function judge(call: { name: string; bad: boolean; throws: boolean }, out: Outcome, codes: readonly string[]): boolean {
  if (out.ok) {
    assert.ok(!call.bad, `${call.name}: a malformed call succeeded`);
    return true;
  }
  const e = out.error;
  if (call.throws && (e instanceof CallerError || (e instanceof TypeError && /revoked/.test(e.message)))) return false;
  // a UsageError changed nothing; a lessor not promoted refuses renewals with a fault
  const refusal = e instanceof UsageError || (e instanceof QuorumError && e.code === ErrorCode.NOT_LEADER);
  assert.ok(refusal, `${call.name}: failed with ${describe(e)}, not a UsageError (a typed error of a call that changed nothing)`);
  assert.ok(codes.includes(e.code), `${call.name}: failed with ${e.code}, not one of ${codes.join(', ')}: ${e.message}`);
  assert.ok(typeof e.message === 'string' && e.message.length > 0, `${call.name}: an error without a message`);
  return false;
}

/** What a failed call must leave as it was (a keep-alive or time-to-live of a lease may go through the log). */
async function nodeState(n: KvNode): Promise<string> {
  const all = await n.range({ key: '\0', rangeEnd: '\0', serializable: true });
  const leases = n.store.leaseLeases().leases.map((l) => l.id);
  return JSON.stringify({
    revision: n.status().revision,
    compact: n.store.compactRevision(),
    kvs: all.kvs.map((kv) => [hex(kv.key), hex(kv.value), kv.createRevision, kv.modRevision, kv.version, kv.lease]),
    leases,
  });
}

async function openNode(): Promise<{ node: KvNode; db: MemoryLevel<Uint8Array, Uint8Array> }> {
  const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
  const node = await KvNode.open({ id: 'a', members: ['a'], transport: new MemoryNetwork({ seed: 1 }).transport('a'), db, tickMs: 10, requestTimeoutMs: 3000 });
  for (let i = 0; !node.raft.isLeader; i++) {
    if (i > 500) throw new Error('no leader');
    await new Promise((r) => setTimeout(r, 5));
  }
  return { node, db };
}

test('malformed arguments to KvNode methods fail with a typed error of a documented code and change nothing (property)', async () => {
  const { node, db } = await openNode();
  try {
    await node.put('f/a', 'seed');
    let lease = (await node.leaseGrant(600)).id;
    let probes = 0;
    const runs = { ok: 0, failed: 0 };
    await fc.assert(
      fc.asyncProperty(nodeCall, async (call) => {
        if (node.store.lessor.lookup(lease) === undefined) lease = (await node.leaseGrant(600)).id;
        // No lease may expire while a call is checked: the leader's revoke,
        // on the wall clock, would change the state the call is held to. A
        // generated grant of a few seconds' TTL is revoked here first.
        for (const l of node.store.lessor.leases()) {
          if (l.ttl < 60) await node.leaseRevoke(l.id).catch((err: unknown) => assert.ok(err instanceof QuorumError && err.code === ErrorCode.LEASE_NOT_FOUND, describe(err)));
        }
        const ctx: Ctx = { lease, revision: node.status().revision };
        const before = await nodeState(node);
        const lastIndex = node.raft.status().lastIndex;
        const out = await outcome(() => call.run(ctx)(node));
        const ok = judge(call, out, NODE_CODES[call.name]!);
        if (ok) runs.ok++;
        else runs.failed++;
        if (ok && call.name === 'watch') await (out as { value: { cancel(): Promise<void> } }).value.cancel();
        if (!ok) assert.equal(await nodeState(node), before, `${call.name}: a failed call changed the store`);
        if (call.bad) assert.equal(node.raft.status().lastIndex, lastIndex, `${call.name}: a malformed call was proposed`);
        // a valid call right after works
        const probe = `probe/${probes++ % 4}`;
        await node.put(probe, 'p');
        assert.equal((await node.get(probe))?.value.length, 1);
      }),
      { seed, numRuns: Number(process.env.QUORUMKV_INPUT_RUNS ?? 600), endOnFailure: true },
    );
    assert.ok(runs.ok > 50 && runs.failed > 50, `runs ${JSON.stringify(runs)}: the generator reaches both outcomes`);
  } catch (err) {
    console.error(`failed with ${SEED_ENV}=${seed}`);
    throw err;
  } finally {
    await node.close();
    await db.close();
  }
});

// ------------------------------------------------------------- MvccStore calls

// A bare store takes its own request types: keys and values are bytes
// (strings are malformed), and field names are not checked (the types say them).
const storeKey = required(keyOk(false), keyBad(false));
const storeValue = required(valueOk(false), valueBad(false));
const storeEnd = field(bytesOptOk(false), endBad(false));
const storeRangeFields = { rangeEnd: storeEnd, ...RANGE_OPTS };

const storeCompareArb = fc.record({
  key: storeKey,
  rangeEnd: storeEnd,
  target: compareArb.map((c) => c.target),
  result: compareArb.map((c) => c.result),
  version: field(intOk, intBad),
  value: field(valueOk(false), valueBad(false)),
});

interface StoreOpSpec {
  kind: 'requestRange' | 'requestPut' | 'requestDeleteRange' | 'requestTxn' | 'empty' | 'junk';
  body: ObjSpec;
  nested?: StoreOpSpec[];
}

const storeOpArb: fc.Arbitrary<StoreOpSpec> = fc.letrec<{ op: StoreOpSpec }>((tie) => ({
  op: fc.oneof(
    fc.record({ kind: fc.constant('requestRange' as const), body: objArb({ key: storeKey, ...storeRangeFields }) }),
    fc.record({ kind: fc.constant('requestPut' as const), body: objArb({ key: storeKey, value: storeValue, prevKv: field(flagOk, flagBad) }) }),
    fc.record({ kind: fc.constant('requestDeleteRange' as const), body: objArb({ key: storeKey, rangeEnd: storeEnd, prevKv: field(flagOk, flagBad) }) }),
    fc.record({ kind: fc.constant('requestTxn' as const), body: objArb({}), nested: fc.array(tie('op'), { maxLength: 2, depthIdentifier: 'sop' }) }),
    fc.record({ kind: fc.constantFrom('empty' as const, 'junk' as const), body: objArb({}) }),
  ) as fc.Arbitrary<StoreOpSpec>,
})).op;

function storeOp(o: StoreOpSpec, ctx: Ctx): { input: unknown; bad: boolean; throws: boolean } {
  switch (o.kind) {
    case 'empty':
      return { input: {}, bad: true, throws: false };
    case 'junk':
      return { input: null, bad: true, throws: false };
    case 'requestTxn': {
      const inner = (o.nested ?? []).map((n) => storeOp(n, ctx));
      return { input: { requestTxn: { success: inner.map((i) => i.input) } }, bad: inner.some((i) => i.bad), throws: inner.some((i) => i.throws) };
    }
    default:
      return { input: { [o.kind]: build(o.body, ctx) }, bad: storeSpecBad(o.body), throws: specThrows(o.body) };
  }
}

/** A store request's object is malformed by its fields alone (not by a name it does not know). */
function storeSpecBad(spec: ObjSpec): boolean {
  if (spec.whole !== undefined) return spec.whole.bad;
  // a put without a key or a range without one is malformed too
  return Object.values(spec.fields).some((p) => p?.bad === true);
}

type StoreCompareSpec = typeof storeCompareArb extends fc.Arbitrary<infer T> ? T : never;

function storeTxn(ctx: Ctx, cs: StoreCompareSpec[], ops: StoreOpSpec[]): { input: unknown; bad: boolean; throws: boolean } {
  const compares = cs.map((c) => {
    const input: Record<string, unknown> = { key: make(c.key, ctx), target: make(c.target, ctx), result: make(c.result, ctx) };
    if (c.rangeEnd !== undefined) input.rangeEnd = make(c.rangeEnd, ctx);
    if (c.version !== undefined) input.version = make(c.version, ctx);
    if (c.value !== undefined) input.value = make(c.value, ctx);
    return { input, bad: anyBad(c.key, c.rangeEnd, c.target, c.result, c.version, c.value) };
  });
  const built = ops.map((o) => storeOp(o, ctx));
  return {
    input: { compare: compares.map((c) => c.input), success: built.map((b) => b.input) },
    bad: compares.some((c) => c.bad) || built.some((b) => b.bad),
    throws: built.some((b) => b.throws),
  };
}

type WriteSpec =
  | { kind: 'put' | 'deleteRange' | 'compaction' | 'leaseGrant' | 'leaseRevoke'; body: ObjSpec }
  | { kind: 'txn'; compare: StoreCompareSpec[]; success: StoreOpSpec[] }
  | { kind: 'two fields' | 'unknown kind' | 'junk body' };

const writeArb: fc.Arbitrary<WriteSpec> = fc.oneof(
  fc.record({ kind: fc.constant('put' as const), body: objArb({ key: storeKey, value: storeValue, lease: field(leaseIdOk, intBad), prevKv: field(flagOk, flagBad), ignoreValue: field(flagOk, flagBad), ignoreLease: field(flagOk, flagBad) }) }),
  fc.record({ kind: fc.constant('deleteRange' as const), body: objArb({ key: storeKey, rangeEnd: storeEnd, prevKv: field(flagOk, flagBad) }) }),
  fc.record({ kind: fc.constant('txn' as const), compare: fc.array(storeCompareArb, { maxLength: 2 }), success: fc.array(storeOpArb, { maxLength: 3 }) }),
  fc.record({ kind: fc.constant('compaction' as const), body: objArb({ revision: required(revisionOk, intBad), physical: field(flagOk, flagBad) }) }),
  fc.record({ kind: fc.constant('leaseGrant' as const), body: objArb({ ttl: required(intOk, intBad), id: field(leaseIdOk, intBad) }) }),
  fc.record({ kind: fc.constant('leaseRevoke' as const), body: objArb({ id: required(leaseIdOk, intBad) }) }),
  fc.record({ kind: fc.constantFrom('two fields' as const, 'unknown kind' as const, 'junk body' as const) }),
);

function writeRequest(w: WriteSpec, ctx: Ctx): { input: unknown; bad: boolean; throws: boolean } {
  switch (w.kind) {
    case 'txn': {
      const t = storeTxn(ctx, w.compare, w.success);
      return { input: { txn: t.input }, bad: t.bad, throws: t.throws };
    }
    case 'two fields':
      return { input: { put: { key: enc.encode('f/a'), value: enc.encode('x') }, deleteRange: { key: enc.encode('f/b') } }, bad: true, throws: false };
    case 'unknown kind':
      return { input: { puts: { key: enc.encode('f/a'), value: enc.encode('x') } }, bad: true, throws: false };
    case 'junk body':
      return { input: { put: 5 }, bad: true, throws: false };
    default:
      return { input: { [w.kind]: build(w.body, ctx) }, bad: storeSpecBad(w.body), throws: specThrows(w.body) };
  }
}

const STORE_WRITE_CODES = [...NODE_CODES.txn!, ErrorCode.LEASE_EXISTS];
const STORE_CODES: Record<string, readonly string[]> = {
  apply: STORE_WRITE_CODES,
  precheck: STORE_WRITE_CODES,
  range: NODE_CODES.range!,
  readTxn: NODE_CODES.txn!,
  watch: [ErrorCode.INVALID_ARGUMENT],
  leaseTimeToLive: [ErrorCode.INVALID_ARGUMENT],
  leaseKeepAlive: [ErrorCode.INVALID_ARGUMENT, ErrorCode.LEASE_NOT_FOUND],
  hash: [ErrorCode.INVALID_ARGUMENT, ErrorCode.REVISION_COMPACTED, ErrorCode.FUTURE_REVISION],
  requestProgress: [ErrorCode.INVALID_ARGUMENT],
};

interface StoreCtx extends Ctx {
  index: number;
}

const storeCall: fc.Arbitrary<Call> = fc.oneof(
  calls(fc.record({ index: required(parts('index', false, { next: (c) => (c as StoreCtx).index }), parts('index', true, JUNK)), req: writeArb }), ({ index, req }) => {
    const probe = writeRequest(req, { lease: 1, revision: 1 });
    return {
      name: 'apply',
      bad: index.bad || probe.bad,
      throws: probe.throws,
      run: (ctx) => async (s: Any) => {
        const r = await s.apply(make(index, ctx), writeRequest(req, ctx).input);
        if (r.status === 'failed') throw r.error;
        return r;
      },
    };
  }),
  calls(writeArb, (req) => {
    const probe = writeRequest(req, { lease: 1, revision: 1 });
    return { name: 'precheck', bad: probe.bad, throws: probe.throws, run: (ctx) => (s: Any) => s.precheck(writeRequest(req, ctx).input) };
  }),
  calls(objArb({ key: storeKey, ...storeRangeFields }), (req) => ({ name: 'range', bad: storeSpecBad(req), throws: specThrows(req), run: (ctx) => (s: Any) => s.range(build(req, ctx)) })),
  calls(fc.record({ compare: fc.array(storeCompareArb, { maxLength: 2 }), ranges: fc.array(objArb({ key: storeKey, ...storeRangeFields }), { maxLength: 2 }) }), ({ compare, ranges }) => {
    const ops: StoreOpSpec[] = ranges.map((body) => ({ kind: 'requestRange', body }));
    const probe = storeTxn({ lease: 1, revision: 1 }, compare, ops);
    return { name: 'readTxn', bad: probe.bad, throws: probe.throws, run: (ctx) => (s: Any) => s.readTxn(storeTxn(ctx, compare, ops).input) };
  }),
  calls(
    objArb({
      key: fc.oneof(storeKey, parts('watch key', false, { 'empty u8': () => new Uint8Array(0) })),
      rangeEnd: storeEnd,
      startRevision: field(revisionOk, intBad),
      prevKv: field(flagOk, flagBad),
      progressNotify: field(flagOk, flagBad),
      filters: field(parts('filters', false, { NOPUT: () => ['NOPUT'] }), fc.oneof(parts('filters', true, junkBut('empty array')), parts('filters', true, { 'symbol filter': () => [Symbol('f')], 'null-prototype filter': () => [Object.create(null)] }))),
      watchId: field(parts('watchId', false, { 0: () => 0 }), parts('watchId', true, { '-1': () => -1, '1.5': () => 1.5, NaN: () => NaN, symbol: () => Symbol('id') })),
    }),
    (req) => ({
      name: 'watch',
      bad: (storeSpecBad(req) && req.fields.key?.label !== 'key:empty u8') || Object.entries(req.fields).some(([k, p]) => k !== 'key' && p?.bad === true) || (req.whole?.bad ?? false),
      throws: specThrows(req),
      run: (ctx) => (s: Any) => s.watch(build(req, ctx)),
    }),
  ),
  calls(objArb({ id: required(leaseIdOk, intBad), keys: field(flagOk, flagBad) }), (req) => ({
    name: 'leaseTimeToLive',
    bad: storeSpecBad(req),
    throws: specThrows(req),
    run: (ctx) => (s: Any) => s.leaseTimeToLive(build(req, ctx)),
  })),
  calls(required(leaseIdOk, intBad), (id) => ({ name: 'leaseKeepAlive', bad: id.bad, throws: false, run: (ctx) => (s: Any) => s.leaseKeepAlive(make(id, ctx)) })),
  calls(fc.record({ rev: required(revisionOk, intBad), opts: fc.option(objArb({ withLeases: field(flagOk, flagBad) }), { nil: undefined }) }), ({ rev, opts }) => ({
    name: 'hash',
    // a negative revision is refused; options must be an object (an array is one) whose withLeases, if given, is a boolean
    bad: rev.bad || (opts?.whole !== undefined ? opts.whole.label !== 'object:array' : opts?.fields.withLeases?.bad === true),
    throws: specThrows(opts),
    run: (ctx) => (s: Any) => s.hash(make(rev, ctx), opts === undefined ? undefined : build(opts, ctx)),
  })),
  calls(fc.oneof(parts('watcher', true, JUNK), parts('watcher', true, { 'plain object': () => ({ id: 1 }) })), (w) => ({ name: 'requestProgress', bad: true, throws: false, run: (ctx) => (s: Any) => s.requestProgress(make(w, ctx)) })),
);

async function storeState(s: MvccStore): Promise<string> {
  const all = await s.range({ key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) });
  return JSON.stringify({
    revision: s.currentRevision(),
    compact: s.compactRevision(),
    kvs: all.kvs.map((kv) => [hex(kv.key), hex(kv.value), kv.createRevision, kv.modRevision, kv.version, kv.lease]),
    leases: s.leaseLeases().leases.map((l) => l.id),
  });
}

test('malformed arguments to MvccStore methods fail with a typed error of a documented code and change nothing (property)', async () => {
  const store = await MvccStore.open(new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' }));
  let index = 0;
  const apply = async (req: unknown): Promise<Any> => {
    const r = await store.apply(++index, req as never);
    if (r.status !== 'applied') throw new Error(`apply ${JSON.stringify(r)}`);
    return r.response;
  };
  try {
    store.lessor.promote();
    await apply({ put: { key: enc.encode('f/a'), value: enc.encode('seed') } });
    let lease = (await apply({ leaseGrant: { ttl: 600 } })).leaseGrant.id as number;
    const runs = { ok: 0, failed: 0 };
    await fc.assert(
      fc.asyncProperty(storeCall, async (call) => {
        if (store.lessor.lookup(lease) === undefined) lease = (await apply({ leaseGrant: { ttl: 600 } })).leaseGrant.id as number;
        index = Math.max(index, store.appliedIndex());
        const ctx: StoreCtx = { lease, revision: store.currentRevision(), index: index + 1 };
        const before = await storeState(store);
        const out = await outcome(() => call.run(ctx)(store));
        const ok = judge(call, out, STORE_CODES[call.name]!);
        if (ok) runs.ok++;
        else runs.failed++;
        if (ok && call.name === 'watch') (out as { value: { cancel(): void } }).value.cancel();
        if (!ok) assert.equal(await storeState(store), before, `${call.name}: a failed call changed the store`);
        index = Math.max(index, store.appliedIndex());
        await apply({ put: { key: enc.encode('probe'), value: enc.encode('p') } });
      }),
      { seed, numRuns: Number(process.env.QUORUMKV_INPUT_RUNS ?? 600), endOnFailure: true },
    );
    assert.ok(runs.ok > 50 && runs.failed > 50, `runs ${JSON.stringify(runs)}: the generator reaches both outcomes`);
  } catch (err) {
    console.error(`failed with ${SEED_ENV}=${seed}`);
    throw err;
  } finally {
    await store.close();
  }
});

// ------------------------------------------------------------- Lessor calls

const lessorCall: fc.Arbitrary<Call> = fc.oneof(
  calls(fc.record({ id: required(leaseIdOk, intBad), ttl: required(intOk, intBad) }), ({ id, ttl }) => ({ name: 'grant', bad: anyBad(id, ttl), throws: false, run: (ctx) => (l: Any) => l.grant(make(id, ctx), make(ttl, ctx)) })),
  calls(fc.record({ id: required(leaseIdOk, intBad), ttl: required(intOk, intBad) }), ({ id, ttl }) => ({ name: 'checkGrant', bad: anyBad(id, ttl), throws: false, run: (ctx) => (l: Any) => l.checkGrant(make(id, ctx), make(ttl, ctx)) })),
  calls(fc.record({ id: required(leaseIdOk, intBad), ttl: required(intOk, intBad) }), ({ id, ttl }) => ({ name: 'restoreLease', bad: anyBad(id, ttl), throws: false, run: (ctx) => (l: Any) => l.restoreLease(make(id, ctx), make(ttl, ctx)) })),
  // a safe integer no grant gives is an unknown lease; anything else is refused
  calls(required(leaseIdOk, intBad), (id) => ({ name: 'revoke', bad: id.bad, throws: false, run: (ctx) => (l: Any) => l.revoke(make(id, ctx)) })),
  calls(required(leaseIdOk, intBad), (id) => ({ name: 'renew', bad: id.bad, throws: false, run: (ctx) => (l: Any) => l.renew(make(id, ctx)) })),
  calls(fc.record({ id: required(leaseIdOk, intBad), opts: fc.option(objArb({ keys: field(flagOk, flagBad) }), { nil: undefined }) }), ({ id, opts }) => ({
    name: 'timeToLive',
    bad: id.bad || specBad(opts),
    throws: specThrows(opts),
    run: (ctx) => (l: Any) => l.timeToLive(make(id, ctx), opts && build(opts, ctx)),
  })),
  calls(required(parts('ms', false, { 0: () => 0, 100: () => 100, 1.5: () => 1.5, 1e300: () => 1e300 }), fc.oneof(parts('ms', true, junkBut('1.5', '2**53', '1e300')), parts('ms', true, { '-1': () => -1 }))), (ms) => ({ name: 'promote', bad: ms.bad, throws: false, run: (ctx) => (l: Any) => l.promote(make(ms, ctx)) })),
  calls(required(parts('limit', false, { 0: () => 0, 2: () => 2, Infinity: () => Infinity }), fc.oneof(parts('limit', true, junkBut('Infinity')), parts('limit', true, { '-1': () => -1 }))), (limit) => ({
    name: 'expired',
    bad: limit.bad,
    throws: false,
    run: (ctx) => (l: Any) => l.expired(make(limit, ctx)),
  })),
);

const LESSOR_CODES: Record<string, readonly string[]> = {
  grant: [ErrorCode.INVALID_ARGUMENT, ErrorCode.LEASE_EXISTS],
  checkGrant: [ErrorCode.INVALID_ARGUMENT, ErrorCode.LEASE_EXISTS],
  restoreLease: [ErrorCode.INVALID_ARGUMENT],
  revoke: [ErrorCode.INVALID_ARGUMENT, ErrorCode.LEASE_NOT_FOUND],
  renew: [ErrorCode.INVALID_ARGUMENT, ErrorCode.LEASE_NOT_FOUND, ErrorCode.NOT_LEADER],
  timeToLive: [ErrorCode.INVALID_ARGUMENT],
  promote: [ErrorCode.INVALID_ARGUMENT],
  expired: [ErrorCode.INVALID_ARGUMENT],
};

function lessorState(l: Lessor): string {
  return JSON.stringify({ leases: l.leases().map((x) => [x.id, x.ttl, typeof x.id]), last: l.lastLeaseId(), next: l.nextLeaseId(), primary: l.isPrimary() });
}

test('malformed arguments to Lessor methods fail with a typed error and change nothing; automatic ids stay safe integers (property)', async () => {
  const now = { t: 1_000_000 };
  const lessor = new Lessor({ now: () => now.t });
  let lease = lessor.grant(0, 600).id;
  try {
    await fc.assert(
      fc.asyncProperty(lessorCall, async (call) => {
        if (lessor.lookup(lease) === undefined) lease = lessor.grant(0, 600).id;
        const before = lessorState(lessor);
        const out = await outcome(() => call.run({ lease, revision: 1 })(lessor));
        if (!judge(call, out, LESSOR_CODES[call.name]!)) assert.equal(lessorState(lessor), before, `${call.name}: a failed call changed the lessor`);
        now.t += 1000;
        const id = lessor.grant(0, 5).id;
        assert.ok(Number.isSafeInteger(id) && id > 0, `an automatic id ${String(id)}`);
        lessor.revoke(id);
      }),
      { seed, numRuns: 1000, endOnFailure: true },
    );
  } catch (err) {
    console.error(`failed with ${SEED_ENV}=${seed}`);
    throw err;
  }
});

// ------------------------------------------------------------- inputs changed after the call

test("bytes and option objects the caller changes once a KvNode call has returned change neither what was stored nor what was read nor what a watch matches", async () => {
  const { node, db } = await openNode();
  const text = (u: Uint8Array | undefined): string => (u === undefined ? '-' : Buffer.from(u).toString());
  try {
    // a write: changed at once after the call (before it resolves), then again after
    const key = enc.encode('m/a');
    const value = enc.encode('one');
    const opts: Any = { prevKv: false };
    const put = node.put(key, value, opts);
    key.set(enc.encode('m/z'));
    value.set(enc.encode('two'));
    Object.assign(opts, { lease: 987_654, ignoreValue: true });
    await put;
    assert.equal(text((await node.get('m/a'))?.value), 'one');
    assert.equal(await node.get('m/z'), undefined);
    const txnValue = enc.encode('three');
    const txnInput: Any = { success: [{ put: { key: enc.encode('m/b'), value: txnValue } }] };
    const txn = node.txn(txnInput);
    txnValue.set(enc.encode('xxxxx'));
    txnInput.success[0].put.key = enc.encode('m/y');
    await txn;
    assert.equal(text((await node.get('m/b'))?.value), 'three');
    assert.equal(await node.get('m/y'), undefined);

    // a read: its key and options changed while it waits for its read index
    const readKey = enc.encode('m/a');
    const readOpts: Any = { key: readKey, rangeEnd: enc.encode('m/c') };
    const read = node.range(readOpts);
    readKey.set(enc.encode('m/y'));
    readOpts.rangeEnd.set(enc.encode('m/z'));
    readOpts.countOnly = true;
    assert.deepEqual((await read).kvs.map((kv) => text(kv.key)), ['m/a', 'm/b']);
    const getKey = enc.encode('m/a');
    const get = node.get(getKey);
    getKey.set(enc.encode('m/z'));
    assert.equal(text((await get)?.value), 'one');
    const cmpValue = enc.encode('one');
    const readTxn = node.txn({ compare: [{ key: 'm/a', target: 'VALUE', result: 'EQUAL', value: cmpValue }], success: [{ range: { key: 'm/b' } }] });
    cmpValue.set(enc.encode('two'));
    assert.equal((await readTxn).succeeded, true);

    // a watch: its key, range end, filters and options changed once it is made
    const wKey = enc.encode('w/a');
    const filters: Any[] = ['NODELETE'];
    const wOpts: Any = { rangeEnd: enc.encode('w/c'), filters, prevKv: false };
    const w = node.watch(wKey, wOpts);
    wKey.set(enc.encode('x/a'));
    wOpts.rangeEnd.set(enc.encode('x/c'));
    filters[0] = 'NOPUT';
    wOpts.prevKv = true;
    const seen: string[] = [];
    w.on('response', (r) => {
      for (const e of r.events) seen.push(`${e.type} ${text(e.kv.key)}${e.prevKv !== undefined ? ' prevKv' : ''}`);
    });
    await node.put('x/b', '1');
    await node.put('w/b', '1');
    await node.put('w/b', '2');
    await node.delete('w/b');
    await node.put('w/end', '1');
    for (let i = 0; seen.length < 2 && i < 200; i++) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(seen, ['PUT w/b', 'PUT w/b']);
    await w.cancel();
  } finally {
    await node.close();
    await db.close();
  }
});
