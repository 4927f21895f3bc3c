// A MemoryNetwork onEvent callback that throws: it is called from inside a
// member's send (its Raft loop), where the error stopped the member after a
// fatal error. Its error is now thrown again on its own (an uncaught
// exception) and the message goes on. Run in a child process, whose
// uncaught exceptions are expected.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runFixture } from '../fixtures/run-fixture.js';

test('a MemoryNetwork onEvent callback that throws does not stop the sending member', () => {
  const out = runFixture<{ put: string; errors: string[]; thrown: string[] }>('network-on-event-throws.mjs');
  assert.equal(out.put, 'ok');
  assert.deepEqual(out.errors, [], 'a member stopped after a fatal error');
  assert.deepEqual(out.thrown, ['a network onEvent callback failed']);
});
