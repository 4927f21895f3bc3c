// Same seed, same run: every seed is run twice in this process and must
// give the same trace hash (a CRC-32 over every message delivery and drop,
// client call and result, leader change and fault, with virtual times).
// A difference means something in the stack read real time, iterated an
// unordered structure whose order depends on history, or drew randomness
// that is not from the seed. Replay: npm run test:sim -- --seed <n> --duration 600
// twice and compare the traces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import { Simulation } from '../../src/testing/simulation/index.js';
import { replayCommand } from './defaults.js';
import { seedList } from './seeds.js';
import { inWorker } from '../in-worker.js';

const DURATION_MS = 600;

test('running a seed twice gives the same trace hash (50 seeds of 3 and 5 members, with faults and traffic)', async (t) => {
  // (in a worker thread, outside the test runner's tracking of every promise: test/in-worker.ts)
  const seeds = seedList(1001, 50, 1);
  const { mismatches, distinct } = await inWorker<{ mismatches: string[]; distinct: number }>(new URL('./seeds.ts', import.meta.url), 'traceHashesTwice', [seeds, DURATION_MS], t.signal);
  assert.deepEqual(mismatches, []);
  assert.equal(distinct, 50, 'different seeds give different traces');
});

test('the replay command repeats what changes the run: members, duration, --strict and --no-faults', () => {
  assert.equal(replayCommand(7), 'npm run test:sim -- --seed 7');
  assert.equal(replayCommand(7, { nodes: 5, durationMs: 600, strict: true, noFaults: true }), 'npm run test:sim -- --seed 7 --nodes 5 --duration 600 --strict --no-faults');
});

test('what a failed call tells its caller replays too: a timed-out write fails with the same message on every run of a seed', async () => {
  // A test that logs the errors its code meets (sim.log counts in the trace
  // hash) replays only if the errors do: a proposal's id, drawn from the
  // platform CSPRNG so that a restarted member never reuses one, must not
  // show in them.
  const once = async (): Promise<{ messages: string[]; hash: string }> => {
    const sim = new Simulation({ seed: 11 });
    const messages: string[] = [];
    try {
      await sim.start();
      await sim.until(() => sim.leader() !== undefined, { what: 'a leader' });
      const cut = sim.isolateLeader()!;
      const writes = [1, 2].map((n) =>
        sim.client(cut).put(`k${n}`, 'v').then(
          () => undefined,
          (err: Error) => {
            messages.push(`${isQuorumError(err) ? err.code : '?'}: ${err.message}`);
            sim.log(`write ${n} failed: ${err.message}`);
          },
        ),
      );
      await sim.drive(Promise.all(writes), { maxMs: 5_000 });
      return { messages, hash: sim.traceHash() };
    } finally {
      await sim.close();
    }
  };
  const first = await once();
  const second = await once();
  assert.equal(first.messages.length, 2);
  assert.ok(first.messages.every((m) => m.startsWith(`${ErrorCode.TIMEOUT}: `)), first.messages.join('\n'));
  assert.deepEqual(second.messages, first.messages);
  assert.equal(second.hash, first.hash);
});
