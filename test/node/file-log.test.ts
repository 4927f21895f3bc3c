// A RaftNode on FileLogStorage: its local snapshots release the log's
// segments behind them (the log on disk stays bounded), and a restart from
// the files gives back the state machine's data and appends where it ended.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { RaftNode } from '../../src/node/index.js';
import { FileLogStorage } from '../../src/storage/index.js';
import { MemoryNetwork } from '../../src/transport/index.js';
import { LogStateMachine, cmd } from './helpers.js';

const VIEW = { keyEncoding: 'view', valueEncoding: 'view' } as const;

async function member(dir: string, net: MemoryNetwork) {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(join(dir, 'sm'), VIEW);
  await db.open();
  const sm = await LogStateMachine.open(db.sublevel<Uint8Array, Uint8Array>('sm', VIEW) as never, { synced: true });
  const storage = await FileLogStorage.open({ dir: join(dir, 'wal'), segmentBytes: 64 * 1024 });
  const node = await RaftNode.create<number>({ id: 'a', peers: ['a'], storage, transport: net.transport('a'), stateMachine: sm, tickMs: 10, snapshotEntries: 200, snapshotCatchUpEntries: 50 });
  while (!node.isLeader) await new Promise((r) => setTimeout(r, 5));
  return { node, sm, db };
}

test('a RaftNode on FileLogStorage keeps its log on disk bounded by its snapshots, and restarts from the files', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'quorumkv-file-log-'));
  const net = new MemoryNetwork({ seed: 7 });
  let m: Awaited<ReturnType<typeof member>> | undefined;
  try {
    m = await member(dir, net);
    const value = 'v'.repeat(300);
    let most = 0;
    for (let i = 0; i < 2_000; i++) {
      await m.node.propose(cmd(`k${i % 50}`, `${value}${i}`));
      if (i % 100 === 0) most = Math.max(most, (await readdir(join(dir, 'wal', 'wal'))).filter((n) => n.endsWith('.wal')).length);
    }
    // 200 entries of about 330 bytes between snapshots fill about one 64 KiB segment
    assert.ok(most <= 4, `at most ${most} segments at a time for 2,000 entries (about 10 segments' worth)`);
    const applied = m.node.appliedIndex;
    await m.node.close();
    await m.db.close();
    m = undefined;
    m = await member(dir, net);
    assert.ok(m.node.appliedIndex >= applied, 'the restarted member has applied everything it had');
    assert.equal(m.sm.kv.get('k49'), `${value}1999`);
    await m.node.propose(cmd('after', 'restart'));
    assert.equal(m.sm.kv.get('after'), 'restart');
  } finally {
    await m?.node.close();
    await m?.db.close();
    await rm(dir, { recursive: true, force: true });
  }
});
