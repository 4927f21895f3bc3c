// The checker against a brute-force oracle on small random histories, legal
// and not: the oracle tries every order of the operations that respects real
// time (and every subset of the unknown-outcome ones) with nothing but the
// model's step, so it shares none of the checker's search, memoization,
// prunings, proofs or budget rounds. Their verdicts must agree.
//
// fast-check prints the seed of a failing run; replay it with
//   QUORUMKV_SEED=<seed> node scripts/run-tests.mjs test/testing/linearizability-oracle.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkLinearizable, determinize, isKvReadOnly, kvModel, partitionKvHistory, registerModel } from '../../src/testing/index.js';
import type { KvInput, KvOutput, Model, Operation, RegisterInput, RegisterOutput } from '../../src/testing/index.js';
import { SequentialKv } from './toy-kv.js';

const seedEnv = process.env['QUORUMKV_SEED'];
const params = { numRuns: 300, ...(seedEnv ? { seed: Number(seedEnv) | 0 } : {}) };

/** Every real-time-respecting order, every subset of unknown-outcome operations; no memo, no pruning. */
function oracle<S, I, O>(model: Model<S, I, O>, history: readonly Operation<I, O>[]): boolean {
  const ops = history.filter((o) => o.status !== 'fail');
  const done = new Array<boolean>(ops.length).fill(false);
  const required = ops.filter((o) => o.status === 'ok').length;
  const go = (state: S, placed: number): boolean => {
    if (placed === required) return true;
    for (let i = 0; i < ops.length; i++) {
      if (done[i]) continue;
      const x = ops[i]!;
      // x may go next unless a pending operation returned before x was invoked
      if (ops.some((y, j) => !done[j] && j !== i && y.status === 'ok' && y.returnTime < x.callTime)) continue;
      const [ok, next] = model.step(state, x.input, x.status === 'ok' ? x.output : undefined);
      if (!ok) continue;
      done[i] = true;
      const found = go(next, placed + (x.status === 'ok' ? 1 : 0));
      done[i] = false;
      if (found) return true;
    }
    return false;
  };
  return go(model.init(), 0);
}

type Fate = 'ok' | 'unknown-applied' | 'unknown-dropped' | 'fail';
const fate = fc.constantFrom<Fate>('ok', 'ok', 'ok', 'ok', 'unknown-applied', 'unknown-dropped', 'fail');
const key = fc.constantFrom('a', 'b');
const value = fc.constantFrom('1', '2', '3');
const txnOp = fc.oneof(
  fc.record({ type: fc.constant('get' as const), key }),
  fc.record({ type: fc.constant('put' as const), key, value }),
  fc.record({ type: fc.constant('delete' as const), key }),
);
const kvInput: fc.Arbitrary<KvInput> = fc.oneof(
  fc.record({ type: fc.constant('get' as const), key }),
  fc.record({ type: fc.constant('put' as const), key, value }),
  fc.record({ type: fc.constant('delete' as const), key }),
  fc.constant<KvInput>({ type: 'range', key: '\0', rangeEnd: '\0' }),
  fc.record({
    type: fc.constant('txn' as const),
    compare: fc.array(
      fc.record({
        key,
        target: fc.constantFrom('value' as const, 'version' as const, 'modRevision' as const),
        result: fc.constantFrom('=' as const, '>' as const),
        value: fc.integer({ min: 0, max: 4 }),
      }).map((c) => (c.target === 'value' ? { ...c, value: String(c.value) } : c)),
      { maxLength: 1 },
    ),
    success: fc.array(txnOp, { maxLength: 2 }),
    failure: fc.array(txnOp, { maxLength: 1 }),
  }),
);

/** A mutation of a completed output, to make some histories illegal. */
type Mutation = { kind: 'none' } | { kind: 'value'; value: string | null } | { kind: 'revision'; delta: number } | { kind: 'flip' };
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 3, arbitrary: fc.constant<Mutation>({ kind: 'none' }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('value' as const), value: fc.constantFrom('1', '2', '3', null) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('revision' as const), delta: fc.constantFrom(-1, 1) }) },
  { weight: 1, arbitrary: fc.constant<Mutation>({ kind: 'flip' }) },
);

function mutate(input: KvInput, out: KvOutput, m: Mutation): KvOutput {
  const o = JSON.parse(JSON.stringify(out)) as Record<string, unknown>;
  if (m.kind === 'revision' && typeof o['revision'] === 'number') o['revision'] = (o['revision'] as number) + m.delta;
  if (m.kind === 'flip' && input.type === 'txn') o['succeeded'] = !o['succeeded'];
  if (m.kind === 'value') {
    if (input.type === 'get') o['value'] = m.value;
    if (input.type === 'put' || input.type === 'delete') o['prevValue'] = m.value;
  }
  return o as unknown as KvOutput;
}

const step = fc.record({
  input: kvInput,
  pre: fc.integer({ min: 0, max: 25 }),
  post: fc.integer({ min: 0, max: 25 }),
  fate,
  mutation,
  strip: fc.boolean(),
});

interface Step {
  input: KvInput;
  pre: number;
  post: number;
  fate: Fate;
  mutation: Mutation;
  strip: boolean;
}

function kvHistory(steps: Step[]): Operation<KvInput, KvOutput>[] {
  const kv = new SequentialKv();
  return steps.map((s, i) => {
    const point = 10 * i;
    const applied = s.fate === 'ok' || s.fate === 'unknown-applied';
    let output = applied ? kv.apply(s.input) : undefined;
    if (output !== undefined && s.strip) {
      output = JSON.parse(JSON.stringify(output, (k, v) => (k === 'revision' || k === 'modRevision' ? undefined : v)));
    }
    const status = s.fate === 'ok' ? 'ok' : s.fate === 'fail' ? 'fail' : 'unknown';
    return {
      id: i,
      clientId: i % 3,
      input: s.input,
      output: status === 'ok' ? mutate(s.input, output!, s.mutation) : undefined,
      status,
      callTime: point - s.pre,
      returnTime: status === 'unknown' ? Infinity : point + s.post,
    };
  });
}

test('KV, global revision: the checker agrees with the brute-force oracle', () => {
  fc.assert(
    fc.property(fc.array(step, { minLength: 1, maxLength: 6 }), (steps) => {
      const h = kvHistory(steps);
      const model = kvModel({ globalRevision: true });
      const expected = oracle(determinize(model), h);
      const got = checkLinearizable(h, model).result;
      assert.equal(got, expected ? 'ok' : 'illegal');
    }),
    params,
  );
});

test('KV, per-key: the checker agrees with the brute-force oracle run on each key partition', () => {
  fc.assert(
    fc.property(fc.array(step, { minLength: 1, maxLength: 6 }), (steps) => {
      const h = kvHistory(steps);
      const model = kvModel();
      const det = determinize(model);
      // partitioned as the checker does: after leaving out failed operations
      // and unknown-outcome reads (which touch keys but constrain nothing)
      const parts = partitionKvHistory(h.filter((o) => o.status !== 'fail' && !(o.status === 'unknown' && isKvReadOnly(o.input))));
      const expected = parts.every((p) => oracle(det, p));
      const got = checkLinearizable(h, model).result;
      assert.equal(got, expected ? 'ok' : 'illegal');
    }),
    params,
  );
});

test('register: the checker agrees with the brute-force oracle', () => {
  const input: fc.Arbitrary<RegisterInput> = fc.oneof(
    fc.constant<RegisterInput>({ type: 'read' }),
    fc.record({ type: fc.constant('write' as const), value }),
    fc.record({ type: fc.constant('cas' as const), expected: fc.option(value, { nil: null }), value }),
  );
  const output: fc.Arbitrary<RegisterOutput> = fc.oneof(
    fc.record({ value: fc.option(value, { nil: null }) }),
    fc.record({ succeeded: fc.boolean() }),
  );
  const op = fc.record({
    input,
    output,
    call: fc.integer({ min: 0, max: 40 }),
    len: fc.integer({ min: 0, max: 20 }),
    status: fc.constantFrom('ok' as const, 'ok' as const, 'ok' as const, 'unknown' as const, 'fail' as const),
  });
  fc.assert(
    fc.property(fc.array(op, { minLength: 1, maxLength: 6 }), (ops) => {
      const h: Operation<RegisterInput, RegisterOutput>[] = ops.map((o, id) => ({
        id,
        clientId: id,
        input: o.input,
        output: o.status === 'ok' ? o.output : undefined,
        status: o.status,
        callTime: o.call,
        returnTime: o.status === 'unknown' ? Infinity : o.call + o.len,
      }));
      const expected = oracle(registerModel(), h);
      assert.equal(checkLinearizable(h, registerModel()).result, expected ? 'ok' : 'illegal');
    }),
    params,
  );
});
