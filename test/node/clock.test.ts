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
