// The directories KvNode.open and KvNode.restore make for a data directory
// are made durable: each new directory's entry is in its parent, which must
// be fsynced, else a power loss could take the whole data directory (the
// synced Raft log in it included) although every file in it was synced.
// Directory fsyncs are observed through fs.promises.open. Deterministic: no
// seed to replay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { MemoryNetwork } from '../../src/transport/index.js';
import { KvNode } from '../../src/server/index.js';
import { tempDir } from './ops-cluster.js';
import { watchDirSyncs } from '../storage/fixtures.js';

test('KvNode.open in a data directory whose parents are missing fsyncs the data directory and each directory made above it', async () => {
  const { dir, cleanup } = await tempDir('data-dir-sync');
  const net = new MemoryNetwork({ seed: 5 });
  try {
    await watchDirSyncs(dir, async (synced) => {
      const n = await KvNode.open({ id: 'm', members: ['m'], dataDir: join(dir, 'x', 'y', 'm'), transport: net.transport('m'), tickMs: 10 });
      try {
        for (const d of ['x/y/m', 'x/y', 'x', '.']) assert.ok(synced.includes(d), `${d} was fsynced (fsynced: ${synced.join(', ')})`);
        assert.ok(!synced.includes('..'), 'nothing above the first new directory');
        while (!n.raft.isLeader) await new Promise((r) => setTimeout(r, 5));
        await n.put('k', 'v');
        const path = join(dir, 'backup.db');
        await n.snapshotSave(path);
        // a restore where the parent of the data directory is missing too
        synced.length = 0;
        await KvNode.restore(path, { id: 'r', members: ['r'], dataDir: join(dir, 'p', 'q', 'r') });
        for (const d of ['p', '.', 'p/q']) assert.ok(synced.includes(d), `${d} was fsynced after the restore (fsynced: ${synced.join(', ')})`);
      } finally {
        await n.close();
      }
    });
  } finally {
    await cleanup();
  }
});

test('snapshotSave fsyncs the directory it renames the backup into, so that a saved backup outlives a power loss', async () => {
  const { dir, cleanup } = await tempDir('backup-dir-sync');
  const net = new MemoryNetwork({ seed: 6 });
  try {
    const n = await KvNode.open({ id: 'm', members: ['m'], dataDir: join(dir, 'm'), transport: net.transport('m'), tickMs: 10 });
    try {
      while (!n.raft.isLeader) await new Promise((r) => setTimeout(r, 5));
      await n.put('k', 'v');
      mkdirSync(join(dir, 'backups'));
      await watchDirSyncs(dir, async (synced) => {
        await n.snapshotSave(join(dir, 'backups', 'b.qkv'));
        assert.ok(synced.includes('backups'), `the backup's directory was fsynced after the rename (fsynced: ${synced.join(', ') || 'none'})`);
      });
    } finally {
      await n.close();
    }
  } finally {
    await cleanup();
  }
});
