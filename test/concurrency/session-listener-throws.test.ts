// A Session listener that throws: its error is thrown on its own (an uncaught
// exception) and the session does what it was doing. Before, a throwing
// `closed` listener made close() reject before it revoked the lease: the
// keys attached to it stayed until the TTL ran out. Run in a child process,
// whose uncaught exceptions are the subject.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const fixture = fileURLToPath(new URL('../fixtures/session-listener-throws.mjs', import.meta.url));

test('a closed listener that throws: close() still revokes the lease, and the error is thrown on its own', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', fixture], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `the child failed: ${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { closed: string; held: boolean; leases: number[]; thrown: string[] };
  assert.equal(out.closed, 'ok');
  assert.equal(out.held, false, 'the key of the closed session is still there');
  assert.deepEqual(out.leases, []);
  assert.deepEqual(out.thrown, ['a closed listener failed']);
});
