// Scenario tests of the Raft core: every test/raft/testdata/*.txt file is a
// script of commands for an InteractionEnv (see interaction/interaction-env.ts
// for the commands), each followed by "----" and the output it must produce
// (Ready contents, messages, log lines), as etcd-io/raft's testdata.
//
// To regenerate the expected outputs from the actual ones (etcd's -rewrite),
// after a deliberate change of behaviour or output format:
//
//   REWRITE=1 node scripts/run-tests.mjs test/raft/scenarios.test.ts
//
// then read the diff (`git diff test/raft/testdata`): every changed line must
// still show what the fixture's comments say it shows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFixture, rewriteFixture } from './interaction/datadriven.js';
import { InteractionEnv } from './interaction/interaction-env.js';
import { lineDiff } from './interaction/line-diff.js';

const testdata = join(fileURLToPath(new URL('.', import.meta.url)), 'testdata');
const rewrite = process.env.REWRITE === '1';

const files = readdirSync(testdata)
  .filter((f) => f.endsWith('.txt'))
  .sort();

test('the scenario fixtures directory is not empty', () => {
  assert.ok(files.length > 0, `expected the scenario fixtures in ${testdata}`);
});

for (const file of files) {
  test(`scenario ${file} produces its expected output`, () => {
    const path = join(testdata, file);
    const fixture = readFixture(path);
    const env = new InteractionEnv();
    const outputs: string[] = [];
    for (const c of fixture.cases) {
      const actual = env.handle(c.commands);
      outputs.push(actual);
      if (!rewrite) {
        if (actual !== c.expected) {
          assert.fail(
            `${file}:${c.line}: the output of\n  ${c.commands.join('\n  ')}\n` +
              `differs from the fixture (- expected, + actual):\n${lineDiff(c.expected, actual)}\n` +
              'rerun with REWRITE=1 to accept the actual output',
          );
        }
      }
    }
    if (rewrite) writeFileSync(path, rewriteFixture(fixture, outputs));
  });
}
