// A Session listener that throws: its error is thrown on its own (an uncaught
// exception) and the session does what it was doing. Before, a throwing
// `closed` listener made close() reject before it revoked the lease: the
// keys attached to it stayed until the TTL ran out. Run in a child process,
// whose uncaught exceptions are the subject.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runFixture } from '../fixtures/run-fixture.js';

test('a closed listener that throws: close() still revokes the lease, and the error is thrown on its own', () => {
  const out = runFixture<{ closed: string; held: boolean; leases: number[]; thrown: string[] }>('session-listener-throws.mjs');
  assert.equal(out.closed, 'ok');
  assert.equal(out.held, false, 'the key of the closed session is still there');
  assert.deepEqual(out.leases, []);
  assert.deepEqual(out.thrown, ['a closed listener failed']);
});
