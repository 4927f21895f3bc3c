// A listener of a member's events (KvNode's leaderChange, RaftNode's
// roleChange, applied, ...) that throws: the error surfaces as an uncaught
// exception, as from a listener of any I/O callback, and the member goes
// on. Before, the error reached the Raft loop, which stopped the member
// after a fatal error: a bug in the caller's listener took a voter out.
// Run in a child process, whose uncaught exceptions are the subject.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runFixture } from '../fixtures/run-fixture.js';
import { MemoryLevel } from 'memory-level';
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import { KvNode } from '../../src/server/index.js';
import { MemoryNetwork } from '../../src/transport/index.js';

test('listeners of a member\'s events that throw do not stop the member: their errors are thrown on their own', () => {
  const out = runFixture<{ put: string; errors: string[]; thrown: string[] }>('node-listener-throws.mjs');
  assert.equal(out.put, 'ok', 'the member stopped');
  assert.deepEqual(out.errors, [], 'the member reported a fatal error');
  assert.deepEqual(out.thrown, ['a KvNode leaderChange listener failed', 'a RaftNode applied listener failed', 'a RaftNode roleChange listener failed']);
});

test('a leaderChange listener that throws does not keep transferLeader waiting: it resolves once the leadership moved', () => {
  const out = runFixture<{ transfer: string; moved: boolean; thrown: string[] }>('transfer-listener-throws.mjs');
  assert.equal(out.moved, true);
  assert.equal(out.transfer, 'ok', 'the transfer reported a timeout although the leadership moved');
  assert.deepEqual(out.thrown, ['a RaftNode leaderChange listener failed']);
});

test('an error in one of the member\'s own listeners (a broken invariant) stops the member, as a state machine error does, not the process', async () => {
  const node = await KvNode.open({ id: 'a', members: ['a'], transport: new MemoryNetwork({ seed: 1 }).transport('a'), db: new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' }), tickMs: 10 });
  try {
    const errors: string[] = [];
    node.on('error', (e) => errors.push(e.message));
    const deadline = Date.now() + 5_000;
    while (!node.raft.isLeader && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await node.put('k', 'v');
    // an internal step after an apply that breaks
    (node as unknown as { maybePromote(): void }).maybePromote = () => {
      throw new Error('a broken invariant after an apply');
    };
    // answered at its apply, before the listener runs
    await node.put('k', 'w').catch(() => undefined);
    while (errors.length === 0 && Date.now() < deadline + 5_000) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(errors, ['a broken invariant after an apply']);
    await assert.rejects(node.put('k', 'x'), (e: unknown) => isQuorumError(e, ErrorCode.NODE_CLOSED));
  } finally {
    await node.close();
  }
});
