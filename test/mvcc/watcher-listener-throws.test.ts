// A watch listener that throws: the error surfaces as an uncaught exception
// (as from a listener of any I/O callback) and the watch goes on delivering.
// Before, the error ended the watch's delivery for good, as an unhandled
// rejection: a process that handles those saw its watch go silent. Run in a
// child process, whose uncaught exceptions are the subject.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const fixture = fileURLToPath(new URL('../fixtures/watch-listener-throws.mjs', import.meta.url));

test('a watch listener that throws: the error is thrown on its own and the later events still arrive', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', fixture], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `the child failed: ${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { seen: string[]; thrown: string[] };
  assert.deepEqual(out.seen, ['k/0', 'k/1', 'k/2', 'k/3'], 'events after the throwing listener were lost');
  assert.deepEqual(out.thrown, ['listener failed at k/1']);
});
