#!/usr/bin/env node
// Runs the default test suite: every `*.test.ts` under test/, through node's
// built-in test runner with tsx, three files at a time: many files wait on
// timers, sockets, child processes and disks, and with two at a time a fifth
// of two cores stayed idle (the suite took 493 s with two, 420 s with three,
// the same CPU time). Extra arguments are passed to `node --test`
// (for example `--test-name-pattern=election`). Every test has a 5-minute
// limit, so a hung test fails instead of stalling CI. Files under test/soak/
// are left to their own npm scripts.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name === 'soak' || name === 'fixtures' || name === 'testdata') continue;
      out.push(...walk(p));
    } else if (name.endsWith('.test.ts')) {
      out.push(p);
    }
  }
  return out;
}

const args = process.argv.slice(2);
const fileArgs = args.filter((a) => a.endsWith('.ts'));
const flagArgs = args.filter((a) => !a.endsWith('.ts'));
const files = fileArgs.length > 0 ? fileArgs : walk('test').sort();
const res = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=3', '--test-timeout=300000', '--test-reporter=spec', ...flagArgs, ...files],
  { stdio: 'inherit' },
);
process.exit(res.status ?? 1);
