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
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
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

const REQUIRED = [
  'election.txt',
  'prevote-partition.txt',
  'checkquorum-stepdown.txt',
  'figure8.txt',
  'conflicting-logs.txt',
  'leadership-transfer.txt',
  'learner-promotion.txt',
  'confchange-leader-change.txt',
  'snapshot-lagging-follower.txt',
  'readindex-new-leader.txt',
];

test('every required scenario fixture is present', () => {
  for (const f of REQUIRED) assert.ok(files.includes(f), `missing fixture ${f} in ${testdata}`);
});

test('rewriting a fixture with its own expected outputs gives back the same text', () => {
  for (const file of files) {
    const path = join(testdata, file);
    const fixture = readFixture(path);
    assert.equal(rewriteFixture(fixture, fixture.cases.map((c) => c.expected)), readFileSync(path, 'utf8'), file);
  }
});

test('every fixture starts with a comment citing the Raft paper or thesis', () => {
  for (const file of files) {
    const head = readFileSync(join(testdata, file), 'utf8').split('\n\n')[0]!;
    assert.match(head, /^# /, `${file} starts with a comment block`);
    assert.match(head, /Raft/, `${file} names the Raft paper or thesis`);
    assert.match(head, /§\d/, `${file} cites a section`);
  }
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
