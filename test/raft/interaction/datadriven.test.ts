// The datadriven reader and writer behind the scenario fixtures, and the
// line diff their failures print.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseFixture, parseLine, rewriteFixture } from './datadriven.js';
import { lineDiff } from './line-diff.js';

const TEXT = `# a comment
log-level none
add-nodes 3
----
ok

# output with a blank line needs the double separator
raft-log 1
----
----
line one

line three
----
----

stabilize
----
> 1 handling Ready
  Ready MustSync=false:

# trailing comment
`;

test('a fixture splits into comments, command blocks and expected outputs', () => {
  const f = parseFixture('x.txt', TEXT);
  assert.deepEqual(
    f.cases.map((c) => [c.line, c.commands, c.expected]),
    [
      [2, ['log-level none', 'add-nodes 3'], 'ok\n'],
      [8, ['raft-log 1'], 'line one\n\nline three\n'],
      [17, ['stabilize'], '> 1 handling Ready\n  Ready MustSync=false:\n'],
    ],
  );
  assert.equal(f.suffix, '\n# trailing comment\n');
});

test('rewriting with the expected outputs gives back the same text, and new outputs replace old ones', () => {
  const f = parseFixture('x.txt', TEXT);
  assert.equal(rewriteFixture(f, f.cases.map((c) => c.expected)), TEXT);
  const out = rewriteFixture(f, ['ok\n', 'one line\n', 'a\n\nb\n']);
  const g = parseFixture('x.txt', out);
  assert.deepEqual(
    g.cases.map((c) => c.expected),
    ['ok\n', 'one line\n', 'a\n\nb\n'],
  );
  assert.match(out, /stabilize\n----\n----\na\n\nb\n----\n----\n/);
});

test('a command block without a separator is reported with its line', () => {
  assert.throws(() => parseFixture('x.txt', '# c\ncampaign 1\n'), /x\.txt:2: command without a "----" separator/);
});

test('command lines parse positional, key=value and key=(list) arguments', () => {
  assert.deepEqual(parseLine('add-nodes 3 voters=(1,2, 3) learners=() index=10 content="a b"'), {
    cmd: 'add-nodes',
    args: [
      { key: '3', vals: [] },
      { key: 'voters', vals: ['1', '2', '3'] },
      { key: 'learners', vals: [] },
      { key: 'index', vals: ['10'] },
      { key: 'content', vals: ['a b'] },
    ],
  });
  assert.throws(() => parseLine('deliver-msgs drop=(1,2'), /unbalanced/);
});

test('the line diff marks expected-only lines with - and actual-only lines with +', () => {
  assert.equal(lineDiff('a\nb\nc\n', 'a\nB\nc\n'), '  a\n- b\n+ B\n  c');
  assert.equal(lineDiff('1\n2\n3\n4\n5\n6\n7\n8\n9\n', '1\n2\n3\n4\n5\n6\n7\n8\nX\n', 1), '  ...\n  8\n- 9\n+ X');
});
