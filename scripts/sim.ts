// Runs the cluster simulation (src/testing/simulation) over many seeds, or
// replays one seed with its whole trace.
//
//   npm run test:sim -- --seeds 1000                 (seeds 1..1000, progress bar)
//   npm run test:sim -- --seeds 200 --from 5000 --nodes 5 --duration 10000
//   npm run test:sim -- --seed 1234                  (trace on stdout, then the verdict)
//
// Options:
//   --help         this text
//   --seeds N      number of seeds to run (default 100), from --from (default 1)
//   --from S       first seed
//   --seed S       replay one seed, printing every trace line and the failure
//   --nodes 3|5    cluster size (default: 3 for odd seeds, 5 for even seeds)
//   --duration MS  virtual ms of traffic and faults per seed (default: the tests')
//   --strict       fail on known, reported bugs too (see test/simulation/defaults.ts)
//   --no-faults    traffic on a healthy network only
//   --quiet        with --seed: print the verdict, not the trace
//
// Throughput of the simulation itself (a 60 s virtual run of 5 members with
// steady traffic, no faults):
//   npm run test:sim -- --seed 1 --nodes 5 --duration 60000 --no-faults --quiet
// Exits with status 1 when a seed fails, printing the seed and the command
// that replays it.
import { parseArgs } from 'node:util';
import { parseCommandLine } from './lib/command-line.js';
import cliProgress from 'cli-progress';
import { runScenario, type ScenarioResult } from '../src/testing/simulation/index.js';
import { DEFAULT_DURATION_MS, failureReport, replayCommand, scenarioOptions } from '../test/simulation/defaults.js';

const { values } = parseCommandLine(import.meta.url, () =>
  parseArgs({
    options: {
      help: { type: 'boolean', short: 'h', default: false },
      seeds: { type: 'string', default: '100' },
      from: { type: 'string', default: '1' },
      seed: { type: 'string' },
      nodes: { type: 'string' },
      duration: { type: 'string' },
      strict: { type: 'boolean', default: false },
      'no-faults': { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
    },
    strict: true,
  }),
);

function int(s: string | undefined, name: string, min: number): number {
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < min) {
    process.stderr.write(`--${name} must be an integer >= ${min}\n`);
    process.exit(2);
  }
  return n;
}

let nodes: 3 | 5 | undefined;
if (values.nodes !== undefined) {
  const n = int(values.nodes, 'nodes', 3);
  if (n !== 3 && n !== 5) {
    process.stderr.write('--nodes must be 3 or 5\n');
    process.exit(2);
  }
  nodes = n;
}
const durationMs = values.duration === undefined ? DEFAULT_DURATION_MS : int(values.duration, 'duration', 100);
const overrides = { ...(nodes !== undefined ? { nodes } : {}), durationMs, strict: values.strict };
const replayOverrides = { ...(nodes !== undefined ? { nodes } : {}), durationMs, strict: values.strict, noFaults: values['no-faults'] };

function summary(r: ScenarioResult): string {
  return (
    `seed ${r.seed}: ${r.ok ? 'ok' : 'FAILED'}, ${r.nodes} members, ${r.durationMs} virtual ms, trace ${r.traceHash}, ` +
    `${r.requests.issued} requests (${r.requests.ok} answered), ${r.operations} recorded operations, ` +
    `progress ${r.progressMs ?? '-'} ms, real ${r.realMs.run} ms run + ${r.realMs.checks} ms checks` +
    (r.knownIssues.length > 0 ? `, ${r.knownIssues.length} known issues met` : '')
  );
}

if (values.seed !== undefined) {
  const seed = int(values.seed, 'seed', 0);
  const r = await runScenario({
    ...scenarioOptions(seed, overrides),
    ...(values['no-faults'] ? { faults: false } : {}),
    ...(values.quiet ? {} : { onTrace: (line: string) => process.stdout.write(`${line}\n`) }),
  });
  if (!values.quiet) process.stdout.write(`\nfaults:\n${r.faults.map((f) => `  ${f}`).join('\n')}\n`);
  if (r.knownIssues.length > 0) process.stdout.write(`known issues met:\n  ${r.knownIssues.join('\n  ')}\n`);
  process.stdout.write(`${summary(r)}\n`);
  if (!r.ok) {
    process.stderr.write(`\n${r.failures.join('\n\n')}\nreplay: ${replayCommand(seed, replayOverrides)}\n`);
    process.exit(1);
  }
  process.exit(0);
}

const count = int(values.seeds, 'seeds', 1);
const from = int(values.from, 'from', 0);
const bar = new cliProgress.SingleBar(
  { format: 'simulation [{bar}] {value}/{total} seeds | {failed} failed | {eta_formatted} left', hideCursor: true, noTTYOutput: true, notTTYSchedule: 10_000 },
  cliProgress.Presets.shades_classic,
);
bar.start(count, 0, { failed: 0 });
const failed: ScenarioResult[] = [];
const started = performance.now();
let runMs = 0;
let checkMs = 0;
let known = 0;
for (let seed = from; seed < from + count; seed++) {
  const r = await runScenario({ ...scenarioOptions(seed, overrides), ...(values['no-faults'] ? { faults: false } : {}) });
  runMs += r.realMs.run;
  checkMs += r.realMs.checks;
  known += r.knownIssues.length;
  if (!r.ok) failed.push(r);
  bar.increment(1, { failed: failed.length });
}
bar.stop();
const total = performance.now() - started;
for (const r of failed) process.stderr.write(`\n${failureReport(r, replayOverrides)}\n`);
process.stdout.write(
  `\n${count - failed.length}/${count} seeds passed (seeds ${from}..${from + count - 1}, ${durationMs} virtual ms each) in ${(total / 1000).toFixed(1)} s: ` +
    `${(runMs / count).toFixed(0)} ms run + ${(checkMs / count).toFixed(0)} ms checks per seed on average` +
    (known > 0 ? `; known issues met ${known} times` : '') +
    '\n',
);
if (failed.length > 0) {
  process.stdout.write(`failed seeds:\n${failed.map((r) => `  ${replayCommand(r.seed, replayOverrides)}`).join('\n')}\n`);
  process.exit(1);
}
process.exit(0);
