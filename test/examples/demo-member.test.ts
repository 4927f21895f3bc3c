// The demo's handle on a member process (examples/demo/member-process.ts):
// stopping it must work on every exit path of the demo, with the process
// killed by the demo already included (a leader killed, and the demo
// failing before it restarts it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../examples/lib/free-port.js';
import { Member } from '../../examples/demo/member-process.js';

test('stop() on a demo member killed with SIGKILL resolves, and stops a running one', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'quorumkv-demo-member-'));
  const killed = new Member('a', { a: `127.0.0.1:${await freePort()}` }, join(dir, 'a'));
  const running = new Member('b', { b: `127.0.0.1:${await freePort()}` }, join(dir, 'b'));
  try {
    await Promise.all([killed.start(), running.start()]);
    const exited = new Promise((r) => killed.child!.once('exit', r));
    killed.kill();
    await exited;
    // a process killed by a signal has no exit code, and its IPC channel is closed
    assert.equal(killed.child!.exitCode, null);
    assert.equal(killed.child!.signalCode, 'SIGKILL');
    await killed.stop();
    await running.stop();
    assert.ok(running.child!.exitCode !== null || running.child!.signalCode !== null, 'the running member exited');
  } finally {
    for (const m of [killed, running]) if (m.child?.exitCode === null && m.child.signalCode === null) m.child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
});
