// Simulation.timeoutSignal(ms): an AbortSignal on the simulation's virtual
// clock. It aborts exactly ms virtual ms after it was made, in the clock's
// order among the other timers due then, with a FaultError
// QUORUMKV_TIMEOUT; a Mutex lock bounded by it replays with its seed; it
// holds no real timer, and close() cancels it. Deterministic: fixed seeds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, FaultError, UsageError, isQuorumError } from '../../src/errors.js';
import { Mutex, Session } from '../../src/concurrency/index.js';
import { Simulation } from '../../src/testing/simulation/index.js';

async function withSim(seed: number, fn: (sim: Simulation) => Promise<void>): Promise<void> {
  const sim = new Simulation({ seed });
  try {
    await sim.start();
    await sim.until(() => sim.leaderId() !== undefined && sim.upMembers().every((id) => sim.raft(id).leader === sim.leaderId()), {
      what: 'a leader known to every member',
    });
    await fn(sim);
  } finally {
    await sim.close();
  }
}

test('timeoutSignal(ms) aborts exactly ms virtual ms after it was made, not before, with a FaultError QUORUMKV_TIMEOUT', async () => {
  await withSim(1, async (sim) => {
    const t0 = sim.now();
    const signal = sim.timeoutSignal(250);
    let abortedAt: number | undefined;
    signal.addEventListener('abort', () => (abortedAt = sim.now()));
    await new Promise((r) => setTimeout(r, 30)); // real time passes, virtual time does not
    assert.equal(signal.aborted, false);
    await sim.run(249);
    assert.equal(signal.aborted, false, 'not aborted 1 virtual ms before its time');
    await sim.run(1);
    assert.equal(signal.aborted, true);
    assert.equal(abortedAt, t0 + 250, 'the abort listeners run at the virtual time asked');
    const reason: unknown = signal.reason;
    assert.ok(reason instanceof FaultError && isQuorumError(reason, ErrorCode.TIMEOUT), String(reason));
    assert.equal(reason.message, 'timed out after 250 virtual ms (the signal of timeoutSignal(250))');

    // 0: at the current virtual time, once time moves (not at once)
    const t1 = sim.now();
    const zero = sim.timeoutSignal(0);
    let zeroAt: number | undefined;
    zero.addEventListener('abort', () => (zeroAt = sim.now()));
    assert.equal(zero.aborted, false);
    await sim.run(1);
    assert.equal(zero.aborted, true);
    assert.equal(zeroAt, t1);
  });
});

test("timeoutSignal's timer is one of the virtual clock's: among the timers due at the same virtual ms, it fires in creation order", async () => {
  await withSim(2, async (sim) => {
    const order: string[] = [];
    sim.clock.setTimeout(() => order.push(`before at ${sim.now()}`), 40);
    const signal = sim.timeoutSignal(40);
    signal.addEventListener('abort', () => order.push(`signal at ${sim.now()}`));
    sim.clock.setTimeout(() => order.push(`after at ${sim.now()}`), 40);
    sim.clock.setTimeout(() => order.push(`earlier at ${sim.now()}`), 39);
    const t = sim.now();
    await sim.run(40);
    assert.deepEqual(order, [`earlier at ${t + 39}`, `before at ${t + 40}`, `signal at ${t + 40}`, `after at ${t + 40}`]);
  });
});

test('timeoutSignal refuses an ms that is not a whole number of virtual ms >= 0, and a closed simulation, with QUORUMKV_INVALID_ARGUMENT, creating no timer', async () => {
  const sim = new Simulation({ seed: 3 });
  try {
    await sim.start();
    const timers = sim.clock.pendingTimers();
    for (const ms of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '10', undefined, null]) {
      assert.throws(
        () => sim.timeoutSignal(ms as number),
        (err: unknown) => err instanceof UsageError && err.code === ErrorCode.INVALID_ARGUMENT && err.message.includes('whole number of virtual ms >= 0'),
        `ms ${String(ms)}`,
      );
    }
    assert.equal(sim.clock.pendingTimers(), timers, 'no timer was created');
  } finally {
    await sim.close();
  }
  assert.throws(() => sim.timeoutSignal(10), (err: unknown) => isQuorumError(err, ErrorCode.INVALID_ARGUMENT) && /close\(\)/.test((err as Error).message));
});

test('a Mutex lock bounded by timeoutSignal replays with its seed: the same outcome at the same virtual time, the same trace hash', async () => {
  // The holder unlocks at a virtual time drawn from the seed, around the
  // moment the waiter's signal aborts: whether the waiter gets the lock
  // depends on the order of the two on the virtual clock, which the seed
  // fixes (AbortSignal.timeout would abort at a moment of real time).
  const once = async (seed: number): Promise<string> => {
    let run = '';
    await withSim(seed, async (sim) => {
      const sa = await sim.drive(Session.create(sim.client('a'), { ttl: 5, clock: sim.clock }));
      const sb = await sim.drive(Session.create(sim.client('b'), { ttl: 5, clock: sim.clock }));
      const holder = new Mutex(sa, 'locks/replay');
      await sim.drive(holder.lock());
      const waiter = new Mutex(sb, 'locks/replay');
      const t0 = sim.now();
      const unlockAfter = sim.random.fork('unlock').int(200, 320);
      sim.clock.setTimeout(() => void holder.unlock().catch(() => undefined), unlockAfter);
      const signal = sim.timeoutSignal(300);
      let abortedAt: number | undefined;
      signal.addEventListener('abort', () => {
        abortedAt = sim.now() - t0;
        sim.log(`signal aborted at +${abortedAt}`);
      });
      const outcome = await sim.drive(
        waiter.lock({ signal }).then(
          (l) => `acquired token ${l.fencingToken}`,
          (err: unknown) => `${isQuorumError(err) ? err.code : String(err)} (cause ${isQuorumError((err as Error).cause) ? ((err as Error).cause as FaultError).code : '-'})`,
        ),
      );
      const at = sim.now() - t0;
      sim.log(`lock attempt: ${outcome}`);
      if (!outcome.startsWith('acquired')) {
        assert.equal(outcome, 'QUORUMKV_ABORTED (cause QUORUMKV_TIMEOUT)');
        assert.equal(abortedAt, 300);
        assert.ok(at >= 300, `the attempt failed at +${at}, before its signal aborted`);
      }
      await sim.run(50);
      run = `seed ${seed}: unlock at +${unlockAfter}, ${outcome} at +${at}, signal aborted at +${abortedAt ?? '-'}, trace ${sim.traceHash()}`;
    });
    return run;
  };
  const outcomes = new Set<string>();
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    const first = await once(seed);
    assert.equal(await once(seed), first, `seed ${seed} did not replay`);
    outcomes.add(first.includes('acquired') ? 'acquired' : 'aborted');
  }
  assert.deepEqual([...outcomes].sort(), ['aborted', 'acquired'], 'the seeds chosen give both outcomes');
});

test('timeoutSignal holds no real timer (it never keeps the process alive), and close() cancels the timers of the signals not aborted', async () => {
  const sim = new Simulation({ seed: 4 });
  let signal: AbortSignal;
  const realTimers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  try {
    await sim.start();
    const before = realTimers();
    const timers = sim.clock.pendingTimers();
    signal = sim.timeoutSignal(60_000);
    assert.equal(realTimers(), before, 'no real timer');
    assert.equal(sim.clock.pendingTimers(), timers + 1, 'one virtual timer');
  } finally {
    await sim.close();
  }
  assert.equal(sim.clock.pendingTimers(), 0, 'nothing is left on the clock after close()');
  sim.clock.advance(120_000); // the clock of a closed simulation, moved by hand: the signal's timer is gone
  assert.equal(signal.aborted, false);
});
