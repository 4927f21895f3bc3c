// A listener of a simulation client's watch that throws skips the later
// listeners of that one event, as a member's watch does (its error is
// thrown again on its own): not the other events of the same response.
// Run in a child process, whose uncaught exceptions are expected.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const fixture = fileURLToPath(new URL('../fixtures/recorded-watch-listener-throws.mjs', import.meta.url));

test('a recorded watch whose listener throws still delivers the response\'s other events, as a member\'s watch does', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', fixture], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `the child failed: ${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { seen: string[]; thrown: string[] };
  assert.deepEqual(out.seen, ['k/0', 'k/1', 'k/2'], 'events after a throwing listener were lost');
  assert.deepEqual(out.thrown, ['a put listener failed at k/1', 'a response listener failed']);
});
