// Leadership transfers and member replacements in the simulation: the
// `moveLeader` and `replace` faults, scripted and drawn from the seed, with
// traffic running and every check after them (linearizability, watches,
// convergence of the members to one store). Deterministic: fixed seeds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import { SimRandom, Simulation, newMemberId, randomFaultSchedule, runScenario, startTraffic, type Fault } from '../../src/testing/simulation/index.js';

const base = { dropRate: 0, duplicateRate: 0, reorderRate: 0, delay: { minMs: 1, maxMs: 3 } };

async function withSim(options: ConstructorParameters<typeof Simulation>[0], fn: (sim: Simulation) => Promise<void>): Promise<void> {
  const sim = new Simulation(options);
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

test('replace removes a member, starts a new one with join: true and promotes it; the members converge and the history checks', async () => {
  await withSim({ seed: 11, nodes: 3 }, async (sim) => {
    const traffic = startTraffic(sim, { until: sim.now() + 1500 });
    await sim.run(300);
    const victim = sim.ids.find((id) => id !== sim.leaderId())!;
    const added = await sim.drive(sim.replace(victim), { maxMs: 5000 });
    assert.equal(added, 'd');
    assert.deepEqual([...sim.ids].sort(), ['a', 'b', 'c', 'd'].filter((id) => id !== victim));
    await sim.until(() => !sim.isUp(victim), { maxMs: 1000, what: 'the removed member shut down' });
    const leader = sim.leader()!;
    assert.deepEqual([...leader.members().voters].sort(), [...sim.ids].sort());
    assert.deepEqual(leader.members().learners, []);
    await sim.drive(traffic.done, { maxMs: 5000 });
    await sim.drive(sim.client('d').put('after', 'x'));
    const conv = await sim.checkConvergence();
    assert.ok(conv.ok, conv.describe());
    assert.deepEqual(
      conv.members.map((m) => m.id),
      sim.ids,
    );
    await traffic.cancelWatches();
    assert.ok(sim.checkLinearizable().ok, sim.checkLinearizable().describe());
    assert.ok(sim.checkWatches().ok, sim.checkWatches().describe());
    assert.deepEqual(sim.violations(), []);
    // a removed member stays out: it is neither restarted nor replaced again
    await assert.rejects(sim.restart(victim), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_ARGUMENT));
    await assert.rejects(sim.drive(sim.replace(victim)), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_ARGUMENT));
    await assert.rejects(sim.replace('a', 'd'), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_ARGUMENT));
  });
});

test('replacing the leader: the cluster elects another, the new member joins, writes acknowledged before stay', async () => {
  await withSim({ seed: 12, nodes: 3 }, async (sim) => {
    const old = sim.leaderId()!;
    await sim.drive(sim.client(old).put('k', 'before'));
    const added = await sim.drive(sim.replace(old, 'z'), { maxMs: 5000 });
    assert.equal(added, 'z');
    assert.ok(!sim.ids.includes(old));
    await sim.until(() => sim.leaderId() !== undefined && sim.leaderId() !== old, { what: 'a new leader' });
    const kv = await sim.drive(sim.client('z').get('k'));
    assert.equal(new TextDecoder().decode(kv!.value), 'before');
    const conv = await sim.checkConvergence();
    assert.ok(conv.ok, conv.describe());
    assert.ok(sim.checkLinearizable().ok);
    assert.deepEqual(sim.violations(), []);
  });
});

test('moveLeader hands the leadership to the voter asked for; the fault picks a running voter', async () => {
  await withSim({ seed: 13, nodes: 5 }, async (sim) => {
    const from = sim.leaderId()!;
    const to = sim.ids.find((id) => id !== from)!;
    await sim.drive(sim.moveLeader(to));
    assert.equal(sim.leaderId(), to);
    sim.inject({ type: 'moveLeader' });
    const done = new RegExp(`move-leader ${to} -> \\w+ done`);
    await sim.until(() => sim.traceLines().some((l) => done.test(l)), { maxMs: 1000, what: 'the second transfer' });
    assert.notEqual(sim.leaderId(), to);
    assert.deepEqual(sim.violations(), []);
  });
});

test('schedules name a replacement\'s new member; bad replacements are refused before anything is scheduled', async () => {
  await withSim({ seed: 14, nodes: 3 }, async (sim) => {
    const t = sim.now();
    const bad = (f: Fault): void => {
      assert.throws(
        () => sim.schedule([{ at: t + 10, fault: f }]),
        (e: unknown) => isQuorumError(e, ErrorCode.INVALID_ARGUMENT),
        JSON.stringify(f),
      );
    };
    bad({ type: 'replace', member: 'b', by: 'a' });
    bad({ type: 'replace', member: 'x' });
    bad({ type: 'replace', member: 'b', by: '' });
    bad({ type: 'moveLeader', to: 'x' });
    // a crash of the member a replacement adds, in the same schedule
    sim.schedule([
      { at: t + 10, fault: { type: 'replace', member: 'b', by: 'q' } },
      { at: t + 20, fault: { type: 'crash', member: 'q' } },
      { at: t + 30, fault: { type: 'restart', member: 'q' } },
    ]);
    // ... and q is taken from then on
    bad({ type: 'replace', member: 'c', by: 'q' });
    await sim.run(50);
    await sim.drive(sim.membershipSettled(), { maxMs: 5000 });
    assert.ok(sim.ids.includes('q') && !sim.ids.includes('b'));
    await sim.calm();
    const conv = await sim.checkConvergence();
    assert.ok(conv.ok, conv.describe());
    assert.deepEqual(sim.violations(), []);
  });
});

test('random replacements name members as they will be then; zero weights leave the schedule as it was', () => {
  const ids = ['a', 'b', 'c'];
  const plain = randomFaultSchedule(new SimRandom(42), ids, { until: 5000 }, base);
  const zero = randomFaultSchedule(new SimRandom(42), ids, { until: 5000, weights: { moveLeader: 0, replace: 0 } }, base);
  assert.deepEqual(zero, plain);
  const s = randomFaultSchedule(new SimRandom(7), ids, { until: 20_000, weights: { replace: 20, moveLeader: 5 } }, base, ['a', 'b', 'c', 'd']);
  const current = new Set(ids);
  const used = new Set(['a', 'b', 'c', 'd']);
  let replacements = 0;
  for (const { fault } of s) {
    if (fault.type === 'replace') {
      replacements++;
      assert.ok(typeof fault.member === 'string' && current.has(fault.member), `${fault.member} is a member then`);
      assert.ok(fault.by !== undefined && !used.has(fault.by), `${fault.by} is new`);
      current.delete(fault.member as string);
      current.add(fault.by);
      used.add(fault.by);
    }
    if (fault.type === 'crash' && typeof fault.member === 'string') assert.ok(current.has(fault.member), `crash of ${fault.member}, a member then`);
    if (fault.type === 'partition') for (const id of fault.a) assert.ok(current.has(id), `partition of ${id}, a member then`);
  }
  assert.ok(replacements >= 3, `${replacements} replacements`);
  assert.ok(s.some((f) => f.fault.type === 'moveLeader'));
  assert.equal(newMemberId(['a', 'b', 'c']), 'd');
  assert.equal(newMemberId(Array.from({ length: 26 }, (_, i) => String.fromCharCode(97 + i))), 'm1');
});

test('a run full of replacements and transfers passes every check and replays to the same trace', async () => {
  const lines: string[] = [];
  const options = { seed: 21, nodes: 3 as const, durationMs: 3000, faults: { weights: { replace: 40, moveLeader: 20 } } };
  const first = await runScenario({ ...options, onTrace: (l) => lines.push(l) });
  assert.deepEqual(first.failures, []);
  assert.ok(lines.filter((l) => / reconfig \w+ replaced \w+$/.test(l)).length >= 2, first.faults.join('\n'));
  assert.ok(lines.some((l) => / move-leader \w+ -> \w+ done$/.test(l)), first.faults.join('\n'));
  const second = await runScenario(options);
  assert.equal(second.traceHash, first.traceHash);
});

test('checkConvergence fails while a member of the cluster is down', async () => {
  await withSim({ seed: 15, nodes: 3 }, async (sim) => {
    await sim.drive(sim.client('a').put('k', 'v'));
    const follower = sim.ids.find((id) => id !== sim.leaderId())!;
    await sim.crash(follower);
    const conv = await sim.checkConvergence({ withinMs: 300 });
    assert.equal(conv.ok, false);
    assert.match(conv.describe(), new RegExp(`${follower}: down`));
    await sim.restart(follower);
    const again = await sim.checkConvergence();
    assert.ok(again.ok, again.describe());
  });
});
