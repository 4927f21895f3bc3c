// The linearizability checker on hand-written register histories (the kind
// of cases porcupine's tests use: concurrent writes and reads, a stale read,
// a lost write, a read of a value never written, overlaps that are fine)
// and on unknown-outcome and failed operations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, UsageError, isQuorumError } from '../../src/errors.js';
import { checkLinearizable, defaultStateKey, determinize, registerModel } from '../../src/testing/index.js';
import type { Model, NondeterministicModel, RegisterInput, RegisterOutput } from '../../src/testing/index.js';
import { failed, history, ok, unknown } from './build-history.js';

type R = [RegisterInput, RegisterOutput];
const w = (value: string): RegisterInput => ({ type: 'write', value });
const r: RegisterInput = { type: 'read' };
const read = (value: string | null): RegisterOutput => ({ value });
const done: RegisterOutput = {};

test('a sequential history of writes and reads is linearizable', () => {
  const h = history<R[0], R[1]>(ok(1, 0, 1, w('a'), done), ok(1, 2, 3, r, read('a')), ok(2, 4, 5, w('b'), done), ok(2, 6, 7, r, read('b')));
  const res = checkLinearizable(h, registerModel());
  assert.equal(res.result, 'ok');
  assert.deepEqual(res.partitions[0]!.linearization.map((o) => o.id), [0, 1, 2, 3]);
  assert.match(res.describe(), /^linearizable/);
});

test('a read concurrent with a write may see the old or the new value', () => {
  // porcupine's register case: put 100 [0,100], get→100 [25,75], get→0 [30,60]
  const h = history<R[0], R[1]>(
    ok(0, 0, 100, w('100'), done),
    ok(1, 25, 75, r, read('100')),
    ok(2, 30, 60, r, read(null)),
  );
  assert.equal(checkLinearizable(h, registerModel()).result, 'ok');
});

test('a read that returns after a read of the new value cannot see the old one', () => {
  // put 200 [0,100], get→200 [10,30], get→0 [40,90]
  const h = history<R[0], R[1]>(
    ok(0, 0, 100, w('200'), done),
    ok(1, 10, 30, r, read('200')),
    ok(2, 40, 90, r, read(null)),
  );
  const res = checkLinearizable(h, registerModel());
  assert.equal(res.result, 'illegal');
  assert.equal(res.partitions[0]!.blocker?.id, 2);
});

test('concurrent writes may be ordered either way, but reads must agree on one order', () => {
  const fine = history<R[0], R[1]>(
    ok(1, 0, 10, w('x'), done),
    ok(2, 0, 10, w('y'), done),
    ok(3, 11, 12, r, read('x')),
    ok(4, 13, 14, r, read('x')),
  );
  assert.equal(checkLinearizable(fine, registerModel()).result, 'ok');
  const flipFlop = history<R[0], R[1]>(
    ok(1, 0, 10, w('x'), done),
    ok(2, 0, 10, w('y'), done),
    ok(3, 11, 12, r, read('x')),
    ok(4, 13, 14, r, read('y')),
  );
  assert.equal(checkLinearizable(flipFlop, registerModel()).result, 'illegal');
});

test('a stale read is illegal and the report shows the prefix, the read and an illegal sub-history', () => {
  const h = history<R[0], R[1]>(
    ok('c1', 0, 1, w('a'), done),
    ok('c1', 2, 3, w('b'), done),
    ok('c2', 0, 100, w('unrelated-concurrent'), done),
    ok('c3', 4, 5, r, read('a')),
  );
  const res = checkLinearizable(h, registerModel());
  assert.equal(res.result, 'illegal');
  const p = res.partitions[0]!;
  assert.equal(p.blocker?.id, 3);
  // the stale read keeps the two writes that explain it; the concurrent one is dropped
  assert.deepEqual(p.illegal.map((o) => o.id), [0, 1, 3]);
  const text = res.describe();
  assert.match(text, /not linearizable/);
  assert.match(text, /cannot be linearized next:\n\s+#3 client c3 \[4, 5\] read\(\) → "a"/);
  assert.match(text, /#1 client c1 \[2, 3\] write\("b"\) → ok/);
});

test('a lost write (a later read sees the value before it) is illegal', () => {
  const h = history<R[0], R[1]>(ok(1, 0, 1, w('a'), done), ok(1, 2, 3, w('b'), done), ok(2, 10, 11, r, read('a')));
  assert.equal(checkLinearizable(h, registerModel()).result, 'illegal');
  const never = history<R[0], R[1]>(ok(1, 0, 1, w('a'), done), ok(2, 5, 6, r, read(null)));
  const res = checkLinearizable(never, registerModel());
  assert.equal(res.result, 'illegal');
  assert.deepEqual(res.partitions[0]!.illegal.map((o) => o.id), [0, 1]);
});

test('a read of a value never written is illegal and shrinks to the read alone', () => {
  const h = history<R[0], R[1]>(ok(1, 0, 1, w('a'), done), ok(2, 2, 3, r, read('zzz')), ok(1, 4, 5, w('b'), done));
  const res = checkLinearizable(h, registerModel());
  assert.equal(res.result, 'illegal');
  assert.deepEqual(res.partitions[0]!.illegal.map((o) => o.id), [1]);
});

test('an unknown-outcome write may take effect late', () => {
  const h = history<R[0], R[1]>(
    unknown(1, 0, w('a')),
    ok(2, 5, 6, r, read(null)),
    ok(2, 50, 51, r, read('a')),
    ok(2, 60, 61, r, read('a')),
  );
  assert.equal(checkLinearizable(h, registerModel()).result, 'ok');
});

test('an unknown-outcome write that never took effect does not make a history illegal', () => {
  const h = history<R[0], R[1]>(
    ok(1, 0, 1, w('a'), done),
    unknown(2, 2, w('b')),
    ok(3, 10, 11, r, read('a')),
    ok(3, 20, 21, r, read('a')),
  );
  const res = checkLinearizable(h, registerModel());
  assert.equal(res.result, 'ok');
  // the witness order leaves the write out: it never took effect
  assert.deepEqual(res.partitions[0]!.linearization.map((o) => o.id), [0, 2, 3]);
});

test('an unknown-outcome CAS that could never succeed is still fine', () => {
  // the model rejects nothing for unknown output, but the op may also never happen
  const strict: Model<string | null, RegisterInput, RegisterOutput> = {
    ...registerModel(),
    step(state, input, output) {
      if (input.type === 'cas' && output === undefined && state !== input.expected) return [false, state];
      return registerModel().step(state, input, output);
    },
  };
  const h = history<R[0], R[1]>(
    ok(1, 0, 1, w('a'), done),
    unknown(2, 2, { type: 'cas', expected: 'nope', value: 'z' }),
    ok(3, 10, 11, r, read('a')),
  );
  assert.equal(checkLinearizable(h, strict).result, 'ok');
});

test('an unknown-outcome write still cannot take effect before it was invoked', () => {
  const h = history<R[0], R[1]>(ok(2, 0, 1, r, read('a')), unknown(1, 5, w('a')));
  assert.equal(checkLinearizable(h, registerModel()).result, 'illegal');
});

test('an unknown write cannot be seen and then unseen', () => {
  const h = history<R[0], R[1]>(
    ok(1, 0, 1, w('a'), done),
    unknown(2, 2, w('b')),
    ok(3, 10, 11, r, read('b')),
    ok(3, 20, 21, r, read('a')),
  );
  assert.equal(checkLinearizable(h, registerModel()).result, 'illegal');
});

test('a failed write is left out: seeing its value is illegal', () => {
  const seen = history<R[0], R[1]>(ok(1, 0, 1, w('a'), done), failed(2, 2, 3, w('b')), ok(3, 10, 11, r, read('b')));
  assert.equal(checkLinearizable(seen, registerModel()).result, 'illegal');
  const notSeen = history<R[0], R[1]>(ok(1, 0, 1, w('a'), done), failed(2, 2, 3, w('b')), ok(3, 10, 11, r, read('a')));
  const res = checkLinearizable(notSeen, registerModel());
  assert.equal(res.result, 'ok');
  assert.equal(res.operationCount, 2);
});

test('unknown-outcome reads are dropped before checking', () => {
  const h = history<R[0], R[1]>(ok(1, 0, 1, w('a'), done), unknown(2, 2, r), ok(3, 10, 11, r, read('a')));
  const res = checkLinearizable(h, registerModel());
  assert.equal(res.result, 'ok');
  assert.equal(res.operationCount, 2);
});

test('CAS: one of two concurrent swaps from the same value wins', () => {
  const cas = (expected: string | null, value: string): RegisterInput => ({ type: 'cas', expected, value });
  const oneWins = history<R[0], R[1]>(
    ok(1, 0, 1, w('0'), done),
    ok(1, 2, 10, cas('0', '1'), { succeeded: true }),
    ok(2, 2, 10, cas('0', '2'), { succeeded: false }),
    ok(3, 11, 12, r, read('1')),
  );
  assert.equal(checkLinearizable(oneWins, registerModel()).result, 'ok');
  const bothWin = history<R[0], R[1]>(
    ok(1, 0, 1, w('0'), done),
    ok(1, 2, 10, cas('0', '1'), { succeeded: true }),
    ok(2, 2, 10, cas('0', '2'), { succeeded: true }),
  );
  assert.equal(checkLinearizable(bothWin, registerModel()).result, 'illegal');
});

test('equal timestamps count as overlapping', () => {
  const h = history<R[0], R[1]>(ok(1, 0, 5, w('a'), done), ok(2, 5, 6, r, read(null)));
  assert.equal(checkLinearizable(h, registerModel()).result, 'ok');
});

test('a history the search cannot finish in its time budget is unknown', () => {
  // 24 concurrent writes then a read of a value none of them wrote: the
  // search must try every order of the writes before giving up
  const ops = [];
  for (let i = 0; i < 24; i++) ops.push(ok<RegisterInput, RegisterOutput>(i, 0, 100, w(`v${i}`), done));
  for (let i = 0; i < 24; i++) ops.push(ok<RegisterInput, RegisterOutput>(100 + i, 50, 150, r, read(`v${i}`)));
  ops.push(ok<RegisterInput, RegisterOutput>(999, 200, 201, r, read('never')));
  const started = performance.now();
  const res = checkLinearizable(history(...ops), registerModel(), { timeoutMs: 100 });
  const took = performance.now() - started;
  assert.equal(res.result, 'unknown');
  assert.equal(res.partitions[0]!.result, 'unknown');
  assert.match(res.describe(), /time budget/);
  assert.ok(took < 5000, `took ${took} ms`);
});

test('an operation id that is not an integer, or a client id that is neither a string nor a number, is a usage error (describe() printed "client [object Object]" or threw a TypeError)', () => {
  const usage = (e: unknown) => e instanceof UsageError && e.code === ErrorCode.INVALID_ARGUMENT;
  for (const clientId of [{}, [1, 2], undefined, null, Symbol('c'), Object.create(null) as object]) {
    const bad = history<R[0], R[1]>(ok(clientId as unknown as string, 1, 2, w('a'), done));
    assert.throws(() => checkLinearizable(bad, registerModel()), usage, typeof clientId === 'symbol' ? 'a Symbol' : typeof clientId);
  }
  for (const id of [Number.NaN, 1.5, '1', undefined, Infinity]) {
    const bad = [{ ...history<R[0], R[1]>(ok('c', 1, 2, w('a'), done))[0]!, id: id as number }];
    assert.throws(() => checkLinearizable(bad, registerModel()), usage, String(id));
  }
  // a string or a number, as HistoryRecorder.invoke takes
  assert.equal(checkLinearizable(history<R[0], R[1]>(ok('c', 1, 2, w('a'), done), ok(7, 3, 4, w('b'), done)), registerModel()).result, 'ok');
});

test('invalid operation times are a usage error', () => {
  const bad = history<R[0], R[1]>(ok(1, 10, 5, w('a'), done));
  assert.throws(() => checkLinearizable(bad, registerModel()), (e: unknown) => e instanceof UsageError && e.code === ErrorCode.INVALID_ARGUMENT);
  const nan = history<R[0], R[1]>(ok(1, NaN, 5, w('a'), done));
  assert.throws(() => checkLinearizable(nan, registerModel()), UsageError);
});

test('an empty history is linearizable', () => {
  assert.equal(checkLinearizable(history<R[0], R[1]>(), registerModel()).result, 'ok');
});

test('a nondeterministic model: sets of states whose keys hold any characters are memoized apart', () => {
  // A register whose write sets one of several values; the model's key is
  // the state itself, which is canonical. Writing [x\0|y, z] then [x, y\0|z]
  // leaves {x, y\0|z}; the other order leaves {x\0|y, z}, the only one the
  // read of "z" fits. With the keys of a set joined by "\0|", both sets had
  // one key, and the search, which tries the first order first, skipped the
  // second as explored.
  type I = { op: 'w'; vals: string[] } | { op: 'r' };
  const model: NondeterministicModel<string, I, string> = {
    nondeterministic: true,
    init: () => [''],
    step: (s, input, output) => (input.op === 'w' ? input.vals : output === undefined || output === s ? [s] : []),
    key: (s) => s,
  };
  const h = history<I, string>(
    ok(1, 0, 10, { op: 'w', vals: ['x\u0000|y', 'z'] }, ''),
    ok(2, 1, 11, { op: 'w', vals: ['x', 'y\u0000|z'] }, ''),
    ok(3, 12, 13, { op: 'r' }, 'z'),
  );
  const res = checkLinearizable(h, model);
  assert.equal(res.result, 'ok', res.describe());
  assert.deepEqual(res.partitions[0]!.linearization.map((o) => o.id), [1, 0, 2]);
  const det = determinize(model);
  assert.notEqual(det.key!(['x\u0000|y', 'z']), det.key!(['x', 'y\u0000|z']));
  // a single state whose key starts like a set's is not taken for that set
  assert.notEqual(det.key!([`\u0001set:${JSON.stringify(['a', 'b'])}`]), det.key!(['a', 'b']));
});

test('a nondeterministic model: a pure read that narrows the possible states is not forced', () => {
  // One operation leaves x = 1 (flag a) or x = 0 (flag b); a CAS 0 -> 1
  // then makes x = 1 either way. The read of 1, invoked before the CAS, is
  // legal at once (in the flag-a state); forced there, it dropped the
  // flag-b state, and the later read of flag b was found illegal, although
  // the order n, cas, read, flag is legal.
  type S = { x: number; f: string };
  type I = { op: 'n' } | { op: 'cas' } | { op: 'read' } | { op: 'flag' };
  const model: NondeterministicModel<S, I, string | number> = {
    nondeterministic: true,
    init: () => [{ x: 0, f: '' }],
    step: (s, i, out) => {
      switch (i.op) {
        case 'n':
          return [{ x: 1, f: 'a' }, { x: 0, f: 'b' }];
        case 'cas':
          return s.x === 0 ? [{ x: 1, f: s.f }] : [s];
        case 'read':
          return out === undefined || out === s.x ? [s] : [];
        case 'flag':
          return out === undefined || out === s.f ? [s] : [];
      }
    },
    pure: (i) => i.op === 'read' || i.op === 'flag',
  };
  const h = history<I, string | number>(
    ok(1, 0, 1, { op: 'n' }, ''),
    ok(2, 2, 11, { op: 'read' }, 1),
    ok(3, 3, 10, { op: 'cas' }, ''),
    ok(4, 20, 21, { op: 'flag' }, 'b'),
  );
  const res = checkLinearizable(h, model);
  assert.equal(res.result, 'ok', res.describe());
  assert.deepEqual(res.partitions[0]!.linearization.map((o) => o.id), [0, 2, 1, 3]);
  // a flag nobody set is still illegal
  const wrong = history<I, string | number>(ok(1, 0, 1, { op: 'n' }, ''), ok(2, 2, 3, { op: 'flag' }, 'c'));
  assert.equal(checkLinearizable(wrong, model).result, 'illegal');
});

test('the default state key tells Infinity, -Infinity, NaN, -0 and null apart, and takes bigints', () => {
  // a register of numbers without a key of its own: two concurrent writes
  // of Infinity and -Infinity, then a read of Infinity (legal: -Infinity
  // first). JSON.stringify wrote both states as null: the search, having
  // tried Infinity first, skipped the other order as explored.
  type I = { op: 'w'; v: number | null } | { op: 'r' };
  const model: Model<number | null, I, number | null> = {
    init: () => null,
    step: (s, i, out) => (i.op === 'w' ? [true, i.v] : [out === undefined || Object.is(out, s), s]),
  };
  const h = history<I, number | null>(
    ok(1, 0, 10, { op: 'w', v: Infinity }, null),
    ok(2, 1, 11, { op: 'w', v: -Infinity }, null),
    ok(3, 12, 13, { op: 'r' }, Infinity),
  );
  const res = checkLinearizable(h, model);
  assert.equal(res.result, 'ok', res.describe());
  const keys = [Infinity, -Infinity, NaN, -0, 0, null].map((v) => defaultStateKey({ v }));
  assert.equal(new Set(keys).size, keys.length);
  assert.notEqual(defaultStateKey({ v: 1n }), defaultStateKey({ v: 2n }));
});

test('a time budget that is not a number of ms >= 0 is refused (a timeoutMs of NaN never ran out)', () => {
  const h = [{ id: 0, clientId: 1, input: { type: 'write' as const, value: 'x' }, output: {}, status: 'ok' as const, callTime: 0, returnTime: 1 }];
  // a clock 1 s further on every reading: any finite budget of 0 runs out at once
  let t = 0;
  const now = (): number => (t += 1000);
  assert.equal(checkLinearizable(h, registerModel(), { timeoutMs: 0, now }).result, 'unknown');
  for (const bad of [{ timeoutMs: Number.NaN }, { timeoutMs: -1 }, { timeoutMs: '10' }, { shrinkTimeoutMs: Number.NaN }, { now: 5 }]) {
    assert.throws(
      () => checkLinearizable(h, registerModel(), { now, ...(bad as object) }),
      (err: unknown) => isQuorumError(err, ErrorCode.INVALID_ARGUMENT),
      JSON.stringify(bad),
    );
  }
  assert.equal(checkLinearizable(h, registerModel(), { timeoutMs: Infinity }).result, 'ok');
});

test('a history that is not an array of operations, or a model without init and step, is a usage error', () => {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const check = (h: unknown, m: unknown) => () => checkLinearizable(h as any, m as any);
  const usage = (e: unknown) => isQuorumError(e, ErrorCode.INVALID_ARGUMENT);
  for (const h of [undefined, null, 5, 'ops', {}, new Uint8Array(2), [null], [5]]) {
    assert.throws(check(h, registerModel()), usage, `history ${String(h)}`);
  }
  for (const m of [undefined, null, 5, 'model', {}, { init: () => null }, { nondeterministic: true }, [registerModel()]]) {
    assert.throws(check([], m), usage, `model ${JSON.stringify(m)}`);
  }
});
