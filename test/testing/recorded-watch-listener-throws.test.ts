// A listener of a simulation client's watch that throws skips the later
// listeners of that one event, as a member's watch does (its error is
// thrown again on its own): not the other events of the same response.
// Run in a child process, whose uncaught exceptions are expected.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runFixture } from '../fixtures/run-fixture.js';

test('a recorded watch whose listener throws still delivers the response\'s other events, as a member\'s watch does', () => {
  const out = runFixture<{ seen: string[]; thrown: string[] }>('recorded-watch-listener-throws.mjs');
  assert.deepEqual(out.seen, ['k/0', 'k/1', 'k/2'], 'events after a throwing listener were lost');
  assert.deepEqual(out.thrown, ['a put listener failed at k/1', 'a response listener failed']);
});
