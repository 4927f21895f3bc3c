// Runs the randomized Raft simulation (test/raft/sim) over many seeds, or
// replays one seed with a trace of every step.
//
//   npm run test:raft-sim -- --seeds 20000 --nodes 5 --steps 1500
//   npm run test:raft-sim -- --seed 1234 --nodes 3            (trace on stdout)
//
// Options:
//   --help        this text
//   --seeds N     number of seeds to run (default 5000), from --from (default 1)
//   --from S      first seed
//   --nodes 3|5   cluster size (default: both, one after the other)
//   --steps N     random steps per seed before the liveness phase (default 1000)
//   --seed S      replay one seed, printing every step
//   --mutation M  run with a deliberate driver bug (forget-vote, lose-last-entry,
//                 skip-remove-node)
//                 to see the checker catch it
// Exits with status 1 when a seed fails, printing the seed and the commands
// that replay it.
import { parseArgs } from 'node:util';
import { parseCommandLine } from './lib/command-line.js';
import { runSimulation, type SimResult } from '../test/raft/sim/raft-simulation.js';
import { SimFailure } from '../test/raft/sim/sim-failure.js';
import type { DriverMutation } from '../test/raft/sim/sim-node.js';

const { values } = parseCommandLine(import.meta.url, () =>
  parseArgs({
    options: {
      help: { type: 'boolean', short: 'h', default: false },
      seeds: { type: 'string', default: '5000' },
      from: { type: 'string', default: '1' },
      nodes: { type: 'string' },
      steps: { type: 'string', default: '1000' },
      seed: { type: 'string' },
      mutation: { type: 'string' },
    },
    strict: true,
  }),
);

function positiveInt(s: string | undefined, name: string): number {
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < 0) {
    process.stderr.write(`--${name} must be a non-negative integer\n`);
    process.exit(2);
  }
  return n;
}

const steps = positiveInt(values.steps, 'steps');
const nodeCounts = values.nodes === undefined ? [3, 5] : [positiveInt(values.nodes, 'nodes')];
for (const n of nodeCounts) {
  if (n !== 3 && n !== 5) {
    process.stderr.write('--nodes must be 3 or 5\n');
    process.exit(2);
  }
}
const mutation = values.mutation as DriverMutation | undefined;
if (mutation !== undefined && mutation !== 'forget-vote' && mutation !== 'lose-last-entry' && mutation !== 'skip-remove-node') {
  process.stderr.write('--mutation must be forget-vote, lose-last-entry or skip-remove-node\n');
  process.exit(2);
}

function report(f: SimFailure): void {
  process.stderr.write(`\nFAIL ${f.message}\n`);
  if (f.cause instanceof Error && f.cause.stack !== undefined) process.stderr.write(`${f.cause.stack}\n`);
  process.stderr.write(`replay:\n  ${f.replayCommands(steps).join('\n  ')}\n`);
}

if (values.seed !== undefined) {
  const seed = positiveInt(values.seed, 'seed');
  let failed = false;
  for (const nodes of nodeCounts) {
    try {
      const r = runSimulation({ seed, nodes, steps, mutation, trace: (line) => process.stdout.write(`${line}\n`) });
      process.stdout.write(`ok ${JSON.stringify(r)}\n`);
    } catch (err) {
      if (!(err instanceof SimFailure)) throw err;
      report(err);
      failed = true;
    }
  }
  process.exit(failed ? 1 : 0);
}

const count = positiveInt(values.seeds, 'seeds');
const from = positiveInt(values.from, 'from');
const isTty = process.stderr.isTTY === true;
const started = Date.now();
let failures = 0;
const totals: Record<string, number> = {};
for (const nodes of nodeCounts) {
  for (let i = 0; i < count; i++) {
    const seed = from + i;
    let r: SimResult;
    try {
      r = runSimulation({ seed, nodes, steps, mutation });
    } catch (err) {
      if (!(err instanceof SimFailure)) throw err;
      failures++;
      report(err);
      continue;
    }
    for (const [k, v] of Object.entries(r)) {
      if (k !== 'seed' && k !== 'nodes' && k !== 'steps') totals[k] = (totals[k] ?? 0) + v;
    }
    const done = i + 1;
    if (done === count || (isTty ? done % 25 === 0 : done % 1000 === 0)) {
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      const line = `${nodes} nodes: ${done}/${count} seeds, ${failures} failed, ${secs} s`;
      process.stderr.write(isTty ? `\r${line}` : `${line}\n`);
    }
  }
  if (isTty) process.stderr.write('\n');
}
process.stdout.write(`${failures === 0 ? 'ok' : 'FAILED'}: ${count * nodeCounts.length} runs, ${failures} failed; totals ${JSON.stringify(totals)}\n`);
process.exit(failures === 0 ? 0 : 1);
