// The node layer's clocks with delays above 2^31 - 1 ms (about 24.8 days),
// which Node's timers and @sinonjs/fake-timers both run after 1 ms: a
// request timeout, a lease check or an automatic compaction period that long
// must wait its whole delay. Deterministic: no seed to replay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock, VirtualClock } from '../../src/node/index.js';

const MAX = 2 ** 31 - 1;

test('VirtualClock: a delay above 2^31 - 1 ms fires after the whole delay, and a cleared one never', () => {
  const clock = new VirtualClock();
  const fired: string[] = [];
  clock.setTimeout(() => fired.push('long'), MAX + 5_000);
  const cleared = clock.setTimeout(() => fired.push('cleared'), 3 * MAX);
  clock.setTimeout(() => fired.push('short'), 10);
  clock.advance(1_000);
  assert.deepEqual(fired, ['short']);
  clock.advance(MAX);
  assert.deepEqual(fired, ['short'], 'not yet: 4,000 ms to go');
  clock.clearTimeout(cleared);
  clock.advance(4_000);
  assert.deepEqual(fired, ['short', 'long']);
  clock.advance(3 * MAX);
  assert.deepEqual(fired, ['short', 'long']);
  assert.equal(clock.pendingTimers(), 0);
});

test('systemClock: a delay above 2^31 - 1 ms does not fire after 1 ms, warns of no overflow, and can be cleared', async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error): void => {
    warnings.push(w.name);
  };
  process.on('warning', onWarning);
  try {
    let fired = 0;
    const handle = systemClock.setTimeout(() => fired++, 30 * 24 * 3600 * 1000);
    const short = systemClock.setTimeout(() => fired++, MAX + 1);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(fired, 0);
    systemClock.clearTimeout(handle);
    systemClock.clearTimeout(short);
    await new Promise((r) => setImmediate(r));
    assert.ok(!warnings.includes('TimeoutOverflowWarning'), `warnings: ${warnings.join(', ')}`);
  } finally {
    process.off('warning', onWarning);
  }
});

test('VirtualClock refuses a start time or a step that is not a finite number of ms >= 0 with QUORUMKV_INVALID_ARGUMENT, and time does not move', async () => {
  // before: NaN and Infinity were taken for no time, a negative step threw a
  // raw TypeError, and a string was read as 'm:s' ('01:00' moved a minute)
  const odd: unknown[] = [Number.NaN, Infinity, -1, '01:00', '5', null, {}, Symbol('s')];
  for (const v of odd) {
    const what = typeof v === 'symbol' ? 'a Symbol' : String(v);
    assert.throws(() => new VirtualClock(v as number), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `startMs ${what}`);
    const c = new VirtualClock(100);
    let fired = 0;
    c.setTimeout(() => fired++, 0);
    assert.throws(() => c.advance(v as number), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `advance ${what}`);
    await assert.rejects(c.advanceAsync(v as number), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `advanceAsync ${what}`);
    assert.equal(c.now(), 100, what);
    assert.equal(fired, 0, what);
  }
  const c = new VirtualClock(0);
  c.advance(0);
  await c.advanceAsync(5);
  assert.equal(c.now(), 5);
});

test('setTimeout of both clocks refuses a callback that is not a function and a delay that is not a number, with QUORUMKV_INVALID_ARGUMENT and no timer set', () => {
  // before: fake-timers threw a raw TypeError for the callback, read '1:00'
  // as 1 ms and NaN as no delay; Node's timers threw ERR_INVALID_ARG_TYPE
  const c = new VirtualClock(0);
  for (const fn of [42, null, 'f', {}]) {
    assert.throws(() => c.setTimeout(fn as never, 10), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `VirtualClock fn ${String(fn)}`);
    assert.throws(() => systemClock.setTimeout(fn as never, 10), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `systemClock fn ${String(fn)}`);
  }
  for (const ms of [Number.NaN, '100', '1:00', null, undefined, {}]) {
    assert.throws(() => c.setTimeout(() => {}, ms as number), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `VirtualClock ms ${String(ms)}`);
    assert.throws(() => systemClock.setTimeout(() => {}, ms as number), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `systemClock ms ${String(ms)}`);
  }
  assert.equal(c.pendingTimers(), 0);
});

test('VirtualClock.setTimeout: a delay below 0 fires at the next advance, a fraction is cut, Infinity never fires', () => {
  const c = new VirtualClock(0);
  const fired: string[] = [];
  c.setTimeout(() => fired.push('negative'), -5);
  c.setTimeout(() => fired.push('fraction'), 1.5);
  c.setTimeout(() => fired.push('never'), Infinity);
  c.advance(0);
  assert.deepEqual(fired, ['negative']);
  c.advance(1);
  assert.deepEqual(fired, ['negative', 'fraction']);
  c.advance(2 ** 40);
  assert.deepEqual(fired, ['negative', 'fraction']);
});
