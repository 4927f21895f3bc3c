import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, UsageError } from '../../src/errors.js';
import { HistoryRecorder } from '../../src/testing/index.js';

test('the default clock is a counter, so a recorded history is deterministic', () => {
  const rec = new HistoryRecorder<string, string>();
  const a = rec.invoke('c1', 'a');
  const b = rec.invoke('c2', 'b');
  b.ok('B');
  a.ok('A');
  assert.deepEqual(
    rec.history().map((o) => [o.id, o.clientId, o.input, o.output, o.status, o.callTime, o.returnTime]),
    [
      [0, 'c1', 'a', 'A', 'ok', 0, 3],
      [1, 'c2', 'b', 'B', 'ok', 1, 2],
    ],
  );
});

test('an injected clock stamps invocations and returns', () => {
  let now = 100;
  const rec = new HistoryRecorder<string, string>({ clock: () => now });
  const a = rec.invoke(1, 'x');
  now = 130;
  a.ok('y');
  const [op] = rec.history();
  assert.equal(op!.callTime, 100);
  assert.equal(op!.returnTime, 130);
});

test('fail keeps its return time and drops the output; unknown returns at infinity', () => {
  const rec = new HistoryRecorder<string, string>();
  rec.invoke(1, 'a').fail();
  rec.invoke(1, 'b').unknown();
  const [f, u] = rec.history();
  assert.equal(f!.status, 'fail');
  assert.equal(f!.output, undefined);
  assert.equal(f!.returnTime, 1);
  assert.equal(u!.status, 'unknown');
  assert.equal(u!.returnTime, Infinity);
});

test('an operation still in flight is reported as unknown', () => {
  const rec = new HistoryRecorder<string, string>();
  const h = rec.invoke(1, 'a');
  assert.equal(rec.history()[0]!.status, 'unknown');
  assert.equal(rec.history()[0]!.returnTime, Infinity);
  h.ok('done');
  assert.equal(rec.history()[0]!.status, 'ok');
});

test('completing an operation twice is a usage error and changes nothing', () => {
  const rec = new HistoryRecorder<string, string>();
  const h = rec.invoke(1, 'a');
  h.ok('first');
  assert.throws(() => h.ok('second'), (e: unknown) => e instanceof UsageError && e.code === ErrorCode.OPERATION_COMPLETED);
  assert.throws(() => h.unknown(), (e: unknown) => e instanceof UsageError && e.code === ErrorCode.OPERATION_COMPLETED);
  assert.equal(rec.history()[0]!.output, 'first');
  assert.equal(rec.history()[0]!.status, 'ok');
});

test('a clock that goes backwards is rejected', () => {
  let now = 10;
  const rec = new HistoryRecorder<string, string>({ clock: () => now });
  const h = rec.invoke(1, 'a');
  now = 5;
  assert.throws(() => h.ok('x'), (e: unknown) => e instanceof UsageError && e.code === ErrorCode.INVALID_ARGUMENT);
  assert.equal(rec.history()[0]!.status, 'unknown');
  now = 11;
  h.ok('x');
  assert.equal(rec.history()[0]!.returnTime, 11);
});

test('invoke refuses a client id that is neither a string nor a number with QUORUMKV_INVALID_ARGUMENT, recording nothing and reading no clock', () => {
  // before: it was recorded, and a Symbol made the checker's report of the
  // history throw a TypeError
  let reads = 0;
  const rec = new HistoryRecorder<string, string>({ clock: () => reads++ });
  for (const id of [undefined, null, true, {}, ['c'], Symbol('c'), 5n, () => 'c', Object.create(null)]) {
    assert.throws(() => rec.invoke(id as never, 'a'), (e: unknown) => e instanceof UsageError && e.code === ErrorCode.INVALID_ARGUMENT, typeof id);
  }
  assert.equal(rec.size, 0);
  assert.equal(reads, 0, 'the clock was not read');
  rec.invoke('c1', 'a').ok('A');
  rec.invoke(7, 'b').fail();
  assert.deepEqual(rec.history().map((o) => [o.id, o.clientId, o.callTime]), [[0, 'c1', 0], [1, 7, 2]]);
});
