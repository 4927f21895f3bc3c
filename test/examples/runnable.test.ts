// Every example in the README runs with one command and ends with "OK".
// Each is a real program: TCP on 127.0.0.1, classic-level on disk (the
// job scheduler: a seeded simulation in one process).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

const EXAMPLES = ['service-discovery', 'live-config', 'replicated-counter', 'mutex', 'leader-election', 'job-scheduler'];

for (const name of EXAMPLES) {
  test(`the ${name} example runs to completion`, () => {
    const res = spawnSync(process.execPath, ['--import', 'tsx', `examples/${name}/main.ts`], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(res.status, 0, `exit ${res.status}\n${res.stdout}\n${res.stderr}`);
    assert.match(res.stdout, / example: OK\n/);
  });
}
