// Property: a history produced by a sequential execution of random
// operations, with invocation and return times placed anywhere around each
// operation's true linearization point (so operations may or may not
// overlap), is always linearizable, also when some operations have an
// unknown outcome (applied or not) or failed (not applied).
//
// fast-check prints the seed of a failing run; replay it with
//   QUORUMKV_SEED=<seed> node scripts/run-tests.mjs test/testing/linearizability-property.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkLinearizable, kvModel, registerModel } from '../../src/testing/index.js';
import type { KvInput, KvOutput, Operation, RegisterInput, RegisterOutput } from '../../src/testing/index.js';
import { SequentialKv } from './toy-kv.js';

const seedEnv = process.env['QUORUMKV_SEED'];
const params = { numRuns: 150, ...(seedEnv ? { seed: Number(seedEnv) | 0 } : {}) };

type Fate = 'ok' | 'unknown-applied' | 'unknown-dropped' | 'fail';
const fate: fc.Arbitrary<Fate> = fc.oneof(
  { weight: 8, arbitrary: fc.constant<Fate>('ok') },
  { weight: 1, arbitrary: fc.constant<Fate>('unknown-applied') },
  { weight: 1, arbitrary: fc.constant<Fate>('unknown-dropped') },
  { weight: 1, arbitrary: fc.constant<Fate>('fail') },
);
const slack = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 40 }));

const key = fc.constantFrom('a', 'b', 'c');
const value = fc.constantFrom('1', '2', '3', '4');
const txnOp = fc.oneof(
  fc.record({ type: fc.constant('get' as const), key }),
  fc.record({ type: fc.constant('put' as const), key, value }),
  fc.record({ type: fc.constant('delete' as const), key }),
);
const kvInput: fc.Arbitrary<KvInput> = fc.oneof(
  fc.record({ type: fc.constant('get' as const), key }),
  fc.record({ type: fc.constant('put' as const), key, value }),
  fc.record({ type: fc.constant('delete' as const), key }),
  fc.constantFrom<KvInput>({ type: 'range', key: '\0', rangeEnd: '\0' }, { type: 'range', key: 'a', rangeEnd: 'c' }),
  fc.record({
    type: fc.constant('txn' as const),
    compare: fc.array(
      fc.oneof(
        fc.record({ key, target: fc.constant('value' as const), result: fc.constantFrom('=' as const, '!=' as const, '<' as const, '>' as const), value }),
        fc.record({
          key,
          target: fc.constantFrom('version' as const, 'modRevision' as const, 'createRevision' as const),
          result: fc.constantFrom('=' as const, '!=' as const, '<' as const, '>' as const),
          value: fc.integer({ min: 0, max: 6 }),
        }),
      ),
      { maxLength: 2 },
    ),
    success: fc.array(txnOp, { maxLength: 3 }),
    failure: fc.array(txnOp, { maxLength: 2 }),
  }),
);

const step = fc.record({ input: kvInput, pre: slack, post: slack, fate, client: fc.integer({ min: 0, max: 4 }), strip: fc.boolean() });

/** Removes the revision fields of an output (a client that did not record them). */
function stripRevisions(o: KvOutput): KvOutput {
  return JSON.parse(JSON.stringify(o, (k, v) => (['revision', 'modRevision', 'createRevision', 'version'].includes(k) ? undefined : v)));
}

/** Lays out a sequential run: op i takes effect at 10*i, invoked `pre` before and returning `post` after. */
function layout<I, O>(
  steps: { pre: number; post: number; fate: Fate; client: number }[],
  run: (i: number) => { input: I; output: O | undefined },
): Operation<I, O>[] {
  return steps.map((s, i) => {
    const point = 10 * i;
    const { input, output } = run(i);
    const status = s.fate === 'ok' ? 'ok' : s.fate === 'fail' ? 'fail' : 'unknown';
    return {
      id: i,
      clientId: s.client,
      input,
      output: status === 'ok' ? output : undefined,
      status,
      callTime: point - s.pre,
      returnTime: status === 'unknown' ? Infinity : point + s.post,
    };
  });
}

test('KV histories laid out around a sequential execution are linearizable', () => {
  fc.assert(
    fc.property(fc.array(step, { minLength: 1, maxLength: 30 }), (steps) => {
      const kv = new SequentialKv();
      const h = layout<KvInput, KvOutput>(steps, (i) => {
        const s = steps[i]!;
        if (s.fate === 'fail' || s.fate === 'unknown-dropped') return { input: s.input, output: undefined };
        const out = kv.apply(s.input);
        return { input: s.input, output: s.strip ? stripRevisions(out) : out };
      });
      const perKey = checkLinearizable(h, kvModel(), { timeoutMs: 20_000 });
      assert.equal(perKey.result, 'ok', perKey.describe());
      const global = checkLinearizable(h, kvModel({ globalRevision: true }), { timeoutMs: 20_000 });
      assert.equal(global.result, 'ok', global.describe());
    }),
    params,
  );
});

test('register histories laid out around a sequential execution are linearizable', () => {
  const regInput: fc.Arbitrary<RegisterInput> = fc.oneof(
    fc.constant<RegisterInput>({ type: 'read' }),
    fc.record({ type: fc.constant('write' as const), value }),
    fc.record({ type: fc.constant('cas' as const), expected: fc.option(value, { nil: null }), value }),
  );
  fc.assert(
    fc.property(fc.array(fc.record({ input: regInput, pre: slack, post: slack, fate, client: fc.integer({ min: 0, max: 4 }) }), { minLength: 1, maxLength: 40 }), (steps) => {
      let reg: string | null = null;
      const h = layout<RegisterInput, RegisterOutput>(steps, (i) => {
        const s = steps[i]!;
        if (s.fate === 'fail' || s.fate === 'unknown-dropped') return { input: s.input, output: undefined };
        switch (s.input.type) {
          case 'read':
            return { input: s.input, output: { value: reg } };
          case 'write':
            reg = s.input.value;
            return { input: s.input, output: {} };
          case 'cas': {
            const hit = reg === s.input.expected;
            if (hit) reg = s.input.value;
            return { input: s.input, output: { succeeded: hit } };
          }
        }
      });
      const res = checkLinearizable(h, registerModel(), { timeoutMs: 20_000 });
      assert.equal(res.result, 'ok', res.describe());
    }),
    params,
  );
});

test('changing one read of such a history to a value nobody wrote makes it illegal', () => {
  fc.assert(
    fc.property(fc.array(fc.record({ input: kvInput, pre: slack, post: slack, client: fc.integer({ min: 0, max: 4 }) }), { minLength: 1, maxLength: 25 }), fc.nat(), (steps, pick) => {
      const kv = new SequentialKv();
      const withFate = steps.map((s) => ({ ...s, fate: 'ok' as Fate }));
      const h = layout<KvInput, KvOutput>(withFate, (i) => ({ input: steps[i]!.input, output: kv.apply(steps[i]!.input) }));
      const gets = h.filter((op) => op.input.type === 'get');
      fc.pre(gets.length > 0);
      const target = gets[pick % gets.length]!;
      const corrupted = h.map((op) => (op === target ? { ...op, output: { value: 'never-written' } } : op));
      assert.equal(checkLinearizable(corrupted, kvModel()).result, 'illegal');
    }),
    params,
  );
});
