// A MemoryNetwork onEvent callback that throws: it is called from inside a
// member's send (its Raft loop), where the error stopped the member after a
// fatal error. Its error is now thrown again on its own (an uncaught
// exception) and the message goes on. Run in a child process, whose
// uncaught exceptions are expected.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const fixture = fileURLToPath(new URL('../fixtures/network-on-event-throws.mjs', import.meta.url));

test('a MemoryNetwork onEvent callback that throws does not stop the sending member', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', fixture], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `the child failed: ${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { put: string; errors: string[]; thrown: string[] };
  assert.equal(out.put, 'ok');
  assert.deepEqual(out.errors, [], 'a member stopped after a fatal error');
  assert.deepEqual(out.thrown, ['a network onEvent callback failed']);
});
