// A watch listener that throws: the error surfaces as an uncaught exception
// (as from a listener of any I/O callback) and the watch goes on delivering.
// Before, the error ended the watch's delivery for good, as an unhandled
// rejection: a process that handles those saw its watch go silent. Run in a
// child process, whose uncaught exceptions are the subject.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runFixture } from '../fixtures/run-fixture.js';

test('a watch listener that throws: the error is thrown on its own and the later events still arrive', () => {
  const out = runFixture<{ seen: string[]; thrown: string[]; rejected: string[] }>('watch-listener-throws.mjs');
  assert.deepEqual(out.seen, ['k/0', 'k/1', 'k/2', 'k/3'], 'events after the throwing listener were lost');
  // an end listener's error too, never a rejection of the delivery
  assert.deepEqual(out.thrown, ['listener failed at k/1', 'end listener failed']);
  assert.deepEqual(out.rejected, []);
});
