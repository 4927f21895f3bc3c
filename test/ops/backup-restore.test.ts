// Backup and restore (etcd's `snapshot save` / `snapshot restore` drill): a
// backup taken while writes go on holds exactly the state at its revision;
// three members restored from it form a new cluster with that state; a
// corrupt or truncated file is refused and creates nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renameSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { MemoryLevel } from 'memory-level';
import { MemoryNetwork } from '../../src/transport/index.js';
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import type { KeyValue } from '../../src/mvccpb/index.js';
import { KvNode, text } from '../../src/server/index.js';
import { FileLogStorage, LevelLogStorage } from '../../src/storage/index.js';
import { unwrapSnapshot } from '../../src/node/index.js';
import { readBackupFile, writeBackupFile, type BackupHeader } from '../../src/server/backup-file.js';
import { DiskCluster, OpsCluster, tempDir } from './ops-cluster.js';

const IDS = ['a', 'b', 'c'];

/** Every key with its value, create/mod revisions and version, and the store hash. */
async function dump(c: OpsCluster, n: KvNode): Promise<{ kvs: string[]; hash: number; revision: number }> {
  const res = await c.run(n.range({ key: '\0', rangeEnd: '\0' }));
  const kvs = res.kvs.map((kv: KeyValue) => `${text(kv.key)}=${text(kv.value)} c${kv.createRevision} m${kv.modRevision} v${kv.version} l${kv.lease}`);
  const h = await n.hashKv();
  return { kvs, hash: h.hash, revision: res.header.revision };
}


/** A backup of a one-member cluster (seed `seed`) holding `puts` keys, saved at `path`, read back: its header and its records. */
async function goodBackup(path: string, seed: number, puts: number): Promise<{ header: BackupHeader; recs: [Uint8Array, Uint8Array][] }> {
  const old = new OpsCluster(['a'], seed);
  try {
    await old.startAll();
    const n = await old.waitLeader();
    for (let i = 0; i < puts; i++) await old.run(n.put(`x${i}`, `y${i}`));
    await n.snapshotSave(path);
  } finally {
    await old.closeAll();
  }
  let header: BackupHeader | undefined;
  const recs: [Uint8Array, Uint8Array][] = [];
  for await (const item of readBackupFile(path)) {
    if (item.kind === 'header') header = item.header;
    if (item.kind === 'records') for (let i = 0; i < item.records.length; i += 2) recs.push([item.records[i]!, item.records[i + 1]!]);
  }
  assert.ok(header !== undefined, 'the backup has a header');
  return { header, recs };
}

/**
 * Writes a backup of `header`, `leases` and `records` at `dir/<name>.qkv`
 * and checks that restoring it fails with QUORUMKV_CORRUPT_SNAPSHOT, into a
 * database (nothing written to it) and into a data directory (not made).
 */
async function assertRefusedBackup(dir: string, name: string, header: BackupHeader, leases: { id: number; ttl: number }[], records: [Uint8Array, Uint8Array][]): Promise<void> {
  const bad = join(dir, `${name}.qkv`);
  await writeBackupFile(bad, {
    header,
    leases,
    records: (async function* () {
      yield* records;
    })(),
  });
  const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
  await assert.rejects(KvNode.restore(bad, { id: 'a', members: ['a'], db }), (e: unknown) => isQuorumError(e, ErrorCode.CORRUPT_SNAPSHOT), name);
  assert.equal((await db.keys().all()).length, 0, `${name}: nothing written to the database`);
  await db.close();
  const dataDir = join(dir, 'restored');
  await assert.rejects(KvNode.restore(bad, { id: 'a', members: ['a'], dataDir }), (e: unknown) => isQuorumError(e, ErrorCode.CORRUPT_SNAPSHOT), name);
  await assert.rejects(stat(dataDir), { code: 'ENOENT' }, name);
}

test('three members restored from a backup hold exactly the state at its revision, in a new cluster that takes writes at revision + 1', async () => {
  const { dir, cleanup } = await tempDir('backup');
  const old = new OpsCluster(IDS, 11);
  const c = new OpsCluster(IDS, 12);
  try {
    await old.startAll();
    const leader = await old.waitLeader();
    const follower = old.followers()[0]!;
    const lease = await old.run(leader.leaseGrant(3600));
    for (let i = 0; i < 20; i++) await old.run(leader.put(`k${i % 7}`, `v${i}`));
    await old.run(leader.put('leased', 'x', { lease: lease.id }));
    await old.run(leader.delete('k3'));
    await old.run(leader.compact(10, { physical: true }));
    await old.waitFor(() => follower.status().revision === leader.status().revision, 2_000, 'the follower catches up');
    const before = await dump(old, follower);

    // back up from a follower while writes go on
    const path = join(dir, 'backup.qkv');
    const saving = follower.snapshotSave(path);
    await old.run(leader.put('k1', 'after-backup'));
    const saved = await saving;
    for (let i = 0; i < 5; i++) await old.run(leader.put(`late${i}`, 'y'));
    assert.equal(saved.revision, before.revision);
    assert.equal(saved.path, path);
    assert.equal(saved.size, (await stat(path)).size);
    assert.ok(saved.appliedIndex > 0);
    await old.closeAll(); // the old cluster is gone

    for (const id of IDS) {
      const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
      c.dbs.set(id, db);
      const r = await KvNode.restore(path, { id, members: IDS, db });
      assert.equal(r.revision, before.revision);
      assert.equal(r.backup.memberId, follower.id);
    }
    await c.startAll();
    const newLeader = await c.waitLeader();
    for (const id of IDS) {
      const n = c.node(id);
      await c.waitFor(() => n.status().raftAppliedIndex >= 2, 2_000, `member ${id} applies the first entry`);
      const after = await dump(c, n);
      assert.deepEqual(after, before, `member ${id} holds the state at the backup`);
      assert.notEqual(n.status().header.clusterId, 'quorumkv', 'a new cluster id');
      assert.equal((await c.run(n.leases())).leases[0]?.id, lease.id);
    }
    const ids = new Set(IDS.map((id) => c.node(id).status().header.clusterId));
    assert.equal(ids.size, 1, 'every member derives the same cluster id');
    await assert.rejects(c.run(newLeader.get('k1', { revision: 9 })), (e: unknown) => isQuorumError(e, ErrorCode.REVISION_COMPACTED));
    const put = await c.run(newLeader.put('new', 'z'));
    assert.equal(put.header.revision, before.revision + 1);
    const lease2 = await c.run(newLeader.leaseGrant(60));
    assert.ok(lease2.id > lease.id, 'lease ids go on from the backup');
  } finally {
    await old.closeAll();
    await c.closeAll();
    await cleanup();
  }
});

test('a member added to a restored cluster gets the restored state through a Raft snapshot', async () => {
  const { dir, cleanup } = await tempDir('backup-join');
  const old = new OpsCluster(['a'], 13);
  const c = new OpsCluster(['a', 'b', 'c'], 14);
  try {
    await old.startAll();
    const n = await old.waitLeader();
    for (let i = 0; i < 10; i++) await old.run(n.put(`key${i}`, `value${i}`));
    const path = join(dir, 'b.qkv');
    const saved = await n.snapshotSave(path);
    await old.closeAll();

    for (const id of ['a', 'b', 'c']) {
      const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
      c.dbs.set(id, db);
      await KvNode.restore(path, { id, members: ['a', 'b', 'c'], db });
    }
    await c.startAll();
    const leader = await c.waitLeader();
    await c.run(leader.put('more', '1'));
    await c.run(leader.addMember('d'));
    const d = await c.start('d', { join: true, members: ['a', 'b', 'c', 'd'] });
    await c.waitFor(() => d.status().revision === saved.revision + 1, 5_000, 'the new member catches up');
    assert.equal(text((await c.run(d.get('key7')))?.value), 'value7');
    assert.equal((await d.hashKv()).hash, (await leader.hashKv()).hash);
  } finally {
    await old.closeAll();
    await c.closeAll();
    await cleanup();
  }
});

test('members restored into data directories on disk start as a new cluster on classic-level', async () => {
  const { dir, cleanup } = await tempDir('backup-disk');
  const old = new OpsCluster(['a'], 15);
  const c = new DiskCluster(IDS, (id) => join(dir, `member-${id}`));
  try {
    await old.startAll();
    const n = await old.waitLeader();
    for (let i = 0; i < 30; i++) await old.run(n.put(`d${i}`, 'x'.repeat(100)));
    const path = join(dir, 'disk.qkv');
    const saved = await n.snapshotSave(path);
    const hash = (await n.hashKv()).hash;
    await old.closeAll();

    for (const id of IDS) {
      const r = await KvNode.restore(path, { id, members: IDS, dataDir: c.dirOf(id), clusterId: 'restored-1' });
      assert.equal(r.clusterId, 'restored-1');
    }
    await assert.rejects(KvNode.restore(path, { id: 'a', members: IDS, dataDir: c.dirOf('a') }), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_CONFIG));
    await c.startAll();
    const leader = await c.waitLeader();
    for (const id of IDS) {
      const m = c.node(id);
      assert.equal(m.status().header.clusterId, 'restored-1');
      assert.equal((await m.hashKv()).hash, hash);
    }
    assert.equal((await leader.put('after', '1')).header.revision, saved.revision + 1);
    // a backup of a member on classic-level restores too
    const again = await leader.snapshotSave(join(dir, 'again.qkv'));
    assert.equal(again.revision, saved.revision + 1);
    const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
    try {
      assert.equal((await KvNode.restore(again.path, { id: 'x', members: ['x'], db })).revision, again.revision);
    } finally {
      await db.close();
    }
    // the store (a database) and the Raft log (files) below dataDir
    assert.deepEqual((await readdir(c.dirOf('a'))).sort(), ['kv', 'wal']);
    // the data remembers its cluster id: opening it as another cluster is refused
    await c.stop('c');
    await assert.rejects(KvNode.open({ id: 'c', members: IDS, dataDir: c.dirOf('c'), transport: c.net.transport('c'), clusterId: 'other' }), (e: unknown) =>
      isQuorumError(e, ErrorCode.INVALID_CONFIG),
    );
  } finally {
    await old.closeAll();
    await c.closeAll();
    await cleanup();
  }
});

test('a data directory whose Raft log is a classic-level database in raft/ (earlier versions) opens with its data', async () => {
  const { dir, cleanup } = await tempDir('raft-layout');
  const net = new MemoryNetwork({ seed: 3 });
  let n: KvNode | undefined;
  try {
    const dataDir = join(dir, 'm');
    n = await KvNode.open({ id: 'm', members: ['m'], dataDir, transport: net.transport('m'), tickMs: 10 });
    while (!n.raft.isLeader) await new Promise((r) => setTimeout(r, 5));
    for (let i = 0; i < 10; i++) await n.put(`k${i}`, `v${i}`);
    const revision = n.status().header.revision;
    await n.close();
    n = undefined;
    // move the log into the earlier layout: the same state in raft/, no wal/
    const files = await FileLogStorage.open({ dir: join(dataDir, 'wal') });
    const state = await files.load();
    await files.close();
    const level = await LevelLogStorage.open({ dataDir: join(dataDir, 'raft') });
    await level.save({ hardState: state.hardState, entries: state.entries, ...(state.snapshot !== undefined ? { snapshot: state.snapshot } : {}) }, { sync: true });
    await level.close();
    await rm(join(dataDir, 'wal'), { recursive: true });
    n = await KvNode.open({ id: 'm', members: ['m'], dataDir, transport: net.transport('m'), tickMs: 10 });
    while (!n.raft.isLeader) await new Promise((r) => setTimeout(r, 5));
    assert.equal(text((await n.get('k9', { serializable: true }))!.value), 'v9');
    assert.equal((await n.put('after', '1')).header.revision, revision + 1);
    assert.deepEqual((await readdir(dataDir)).sort(), ['kv', 'raft'], 'no wal/ is made beside raft/');
  } finally {
    await n?.close();
    await cleanup();
  }
});

test('a data directory holding both a classic-level raft/ log and wal/ is refused with QUORUMKV_INVALID_CONFIG, naming both', async () => {
  const { dir, cleanup } = await tempDir('two-logs');
  const net = new MemoryNetwork({ seed: 4 });
  try {
    const dataDir = join(dir, 'm');
    const n = await KvNode.open({ id: 'm', members: ['m'], dataDir, transport: net.transport('m'), tickMs: 10 });
    await n.close();
    const level = await LevelLogStorage.open({ dataDir: join(dataDir, 'raft') });
    await level.close();
    await assert.rejects(KvNode.open({ id: 'm', members: ['m'], dataDir, transport: net.transport('m'), tickMs: 10 }), (e: unknown) =>
      isQuorumError(e, ErrorCode.INVALID_CONFIG) && /raft/.test((e as Error).message) && /wal/.test((e as Error).message),
    );
  } finally {
    await cleanup();
  }
});

test('a KvNode.open that fails at its Raft log leaves no timer of its store behind', async () => {
  const { dir, cleanup } = await tempDir('open-fails');
  const net = new MemoryNetwork({ seed: 5 });
  try {
    const dataDir = join(dir, 'm');
    await mkdir(dataDir, { recursive: true });
    await writeFile(join(dataDir, 'wal'), 'not a directory');
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    await assert.rejects(KvNode.open({ id: 'm', members: ['m'], dataDir, transport: net.transport('m'), tickMs: 10 }), (e: unknown) => isQuorumError(e, ErrorCode.STORAGE_IO));
    assert.equal(timers(), before, 'the store was closed with its progress timer');
  } finally {
    await cleanup();
  }
});

test('a data directory in the one-database layout of earlier versions is refused with QUORUMKV_INVALID_CONFIG, untouched', async () => {
  const { dir, cleanup } = await tempDir('old-layout');
  try {
    const old = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
    await old.open();
    await old.put(new TextEncoder().encode('k'), new TextEncoder().encode('v'));
    await old.close();
    const before = (await readdir(dir)).sort();
    const net = new MemoryNetwork({ seed: 1 });
    await assert.rejects(KvNode.open({ id: 'a', members: ['a'], dataDir: dir, transport: net.transport('a') }), (e: unknown) =>
      isQuorumError(e, ErrorCode.INVALID_CONFIG) && /earlier version/.test((e as Error).message),
    );
    assert.deepEqual((await readdir(dir)).sort(), before);
  } finally {
    await cleanup();
  }
});

test('a corrupt, truncated or foreign backup is refused with QUORUMKV_CORRUPT_SNAPSHOT and creates nothing', async () => {
  const { dir, cleanup } = await tempDir('backup-bad');
  const old = new OpsCluster(['a'], 17);
  try {
    await old.startAll();
    const n = await old.waitLeader();
    for (let i = 0; i < 50; i++) await old.run(n.put(`x${i}`, `y${i}`));
    const path = join(dir, 'good.qkv');
    const saved = await n.snapshotSave(path);
    await old.closeAll();
    const good = await readFile(path);

    const flipped = Buffer.from(good);
    flipped[Math.floor(flipped.length / 2)]! ^= 0x40;
    const cases: [string, Uint8Array][] = [
      ['flipped', flipped],
      ['truncated', good.subarray(0, good.length - 10)],
      ['cut after the magic', good.subarray(0, 8)],
      ['empty', new Uint8Array(0)],
      ['foreign', Buffer.from('SQLite format 3\0 and more bytes here')],
    ];
    for (const [name, bytes] of cases) {
      const bad = join(dir, `${name}.qkv`);
      await writeFile(bad, bytes);
      const dataDir = join(dir, 'restore', name);
      await assert.rejects(KvNode.restore(bad, { id: 'a', members: ['a'], dataDir }), (e: unknown) => isQuorumError(e, ErrorCode.CORRUPT_SNAPSHOT), name);
      const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
      await assert.rejects(KvNode.restore(bad, { id: 'a', members: ['a'], db }), (e: unknown) => isQuorumError(e, ErrorCode.CORRUPT_SNAPSHOT), name);
      assert.equal((await db.keys().all()).length, 0, `${name}: nothing written to the database`);
      await db.close();
    }
    const left = await readdir(join(dir, 'restore')).catch(() => [] as string[]);
    assert.deepEqual(left, [], 'no data directory, no temporary directory');

    // ids KvNode.open refuses are refused by the restore, which creates nothing
    // (it restored them, into data that could never be opened)
    const long = 'x'.repeat(300);
    for (const [name, id, members] of [
      ['an id over 255 bytes', long, [long]],
      ['a member id over 255 bytes', 'a', ['a', long]],
      ['a member id with a lone surrogate', 'a', ['a', 'b\uD800']],
    ] as const) {
      const dataDir = join(dir, 'restore', 'ids');
      await assert.rejects(KvNode.restore(path, { id, members: [...members], dataDir }), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_CONFIG), name);
      await assert.rejects(stat(dataDir), { code: 'ENOENT' }, name);
    }
    // a dataDir or db of the wrong kind (they failed with QUORUMKV_STORAGE_IO and a raw Node error)
    for (const [name, where] of [
      ['a dataDir that is a number', { dataDir: 5 }],
      ['a db that is not a database', { db: {} }],
    ] as const) {
      await assert.rejects(KvNode.restore(path, { id: 'a', members: ['a'], ...(where as object) }), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_CONFIG), name);
    }
    // a cluster id every handshake of the restored members would carry, refused by each acceptor
    await assert.rejects(
      KvNode.restore(path, { id: 'a', members: ['a'], dataDir: join(dir, 'restore', 'cid'), clusterId: 'c'.repeat(20_000) }),
      (e: unknown) => isQuorumError(e, ErrorCode.INVALID_CONFIG) && /clusterId/.test((e as Error).message),
    );
    await assert.rejects(stat(join(dir, 'restore', 'cid')), { code: 'ENOENT' });

    // a backup missing its last byte is refused too
    await truncate(path, saved.size - 1);
    await assert.rejects(KvNode.restore(path, { id: 'a', members: ['a'], dataDir: join(dir, 'r2') }), (e: unknown) => isQuorumError(e, ErrorCode.CORRUPT_SNAPSHOT));
    await assert.rejects(stat(join(dir, 'r2')), { code: 'ENOENT' });
  } finally {
    await old.closeAll();
    await cleanup();
  }
});

test('concurrent backups to one path each leave a whole file (mode 0600), and concurrent restores into one directory leave one whole member', async () => {
  // before: both saves wrote one `<path>.part`, and one reported success for
  // a corrupt file; both restores shared a temporary directory, and the
  // failing one deleted the other's work
  const { dir, cleanup } = await tempDir('backup-concurrent');
  const old = new OpsCluster(['a'], 18);
  try {
    await old.startAll();
    const n = await old.waitLeader();
    for (let i = 0; i < 300; i++) await old.run(n.put(`k${i}`, 'v'.repeat(200)));
    const path = join(dir, 'same.qkv');
    const before = (await n.hashKv()).hash;
    const saves = await Promise.allSettled([n.snapshotSave(path), old.run(n.compact(250, { physical: true })).then(() => n.snapshotSave(path))]);
    assert.deepEqual(saves.map((s) => s.status), ['fulfilled', 'fulfilled']);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.deepEqual((await readdir(dir)).filter((f) => f.endsWith('.part')), [], 'no part file left');
    const after = (await n.hashKv()).hash;
    await old.closeAll();

    const dataDir = join(dir, 'member');
    const restores = await Promise.allSettled([0, 1].map(() => KvNode.restore(path, { id: 'a', members: ['a'], dataDir, clusterId: 'r' })));
    const outcomes = restores.map((r) => (r.status === 'fulfilled' ? 'ok' : isQuorumError(r.reason, ErrorCode.INVALID_CONFIG) ? 'refused' : String(r.reason)));
    assert.deepEqual(outcomes.sort(), ['ok', 'refused']);
    assert.deepEqual((await readdir(dataDir)).sort(), ['kv', 'wal']);
    assert.deepEqual((await readdir(dir)).filter((f) => f.includes('restoring')), [], 'no temporary directory left');
    const c = new DiskCluster(['a'], () => dataDir);
    try {
      await c.startAll();
      const m = await c.waitLeader();
      assert.equal(m.status().header.clusterId, 'r');
      // the file is one of the two backups, whole (whichever rename came last)
      assert.ok([before, after].includes((await m.hashKv()).hash));
    } finally {
      await c.closeAll();
    }

    const file = join(dir, 'a-file');
    await writeFile(file, 'not a directory');
    await assert.rejects(KvNode.restore(path, { id: 'a', members: ['a'], dataDir: file }), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_CONFIG));
  } finally {
    await old.closeAll();
    await cleanup();
  }
});

test('restore builds from the file it verified, even if a newer backup is renamed over its path between the two passes', async () => {
  const { dir, cleanup } = await tempDir('backup-rename');
  const old = new OpsCluster(['a'], 17);
  try {
    await old.startAll();
    const n = await old.waitLeader();
    await old.run(n.put('k', 'first'));
    const first = await old.run(n.snapshotSave(join(dir, 'first.qkv')));
    await old.run(n.put('k', 'second'));
    const second = await old.run(n.snapshotSave(join(dir, 'second.qkv')));
    await old.closeAll();
    const path = join(dir, 'latest.qkv');
    await writeFile(path, await readFile(first.path));
    await writeFile(`${path}.next`, await readFile(second.path));
    // the restore asks for its Raft log's sublevel after verifying the file and before building from it:
    // the newer backup takes the path at that moment
    const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
    const sublevel = db.sublevel.bind(db);
    let renamed = false;
    (db as unknown as { sublevel: unknown }).sublevel = (name: string, opts: object) => {
      if (name === 'raft' && !renamed) {
        renameSync(`${path}.next`, path);
        renamed = true;
      }
      return sublevel(name, opts as never);
    };
    const res = await KvNode.restore(path, { id: 'x', members: ['x'], db });
    assert.ok(renamed, 'the newer backup was renamed over the path mid-restore');
    assert.equal(res.revision, first.revision);
    // the Raft log records the snapshot without a copy of the state (the store holds it)
    const log = await LevelLogStorage.open({ db: db.sublevel<Uint8Array, Uint8Array>('raft', { keyEncoding: 'view', valueEncoding: 'view' }) as never });
    const loaded = await log.load();
    await log.close();
    assert.equal(loaded.snapshot?.metadata.index, 1);
    assert.equal(unwrapSnapshot(loaded.snapshot!.data).data, undefined, 'no copy of the store in the Raft log');
    const net = new MemoryNetwork({ seed: 1 });
    const x = await KvNode.open({ id: 'x', members: ['x'], db, transport: net.transport('x'), tickMs: 10, electionTicks: 10 });
    try {
      assert.equal(x.status().revision, first.revision, 'the store is the verified backup');
      assert.equal(text((await x.get('k', { serializable: true }))?.value), 'first');
    } finally {
      await x.close();
    }
  } finally {
    await old.closeAll();
    await cleanup();
  }
});

test('a backup keeps the tombstones at the compaction revision: a watch resuming there on the restored member gets those deletes', async () => {
  const { dir, cleanup } = await tempDir('backup-tombstones');
  const old = new OpsCluster(['a'], 15);
  const c = new OpsCluster(['a'], 16);
  try {
    await old.startAll();
    const n = await old.waitLeader();
    await old.run(n.put('k/a', '1')); // 2
    await old.run(n.put('k/b', '1')); // 3
    await old.run(n.delete('k/a')); // 4
    await old.run(n.compact(4, { physical: true }));
    const watchFrom4 = async (cluster: OpsCluster, m: KvNode): Promise<string[]> => {
      const w = m.watch('k/', { prefix: true, startRevision: 4 });
      const seen: string[] = [];
      w.on('put', (ev) => seen.push(`PUT ${text(ev.kv.key)}@${ev.kv.modRevision}`));
      w.on('delete', (ev) => seen.push(`DELETE ${text(ev.kv.key)}@${ev.kv.modRevision}`));
      await cluster.run(m.put('k/c', '1'));
      await cluster.waitFor(() => seen.some((s) => s.startsWith('PUT k/c')), 2_000, 'the watch reaches the new put');
      await w.cancel();
      return seen;
    };
    const path = join(dir, 'b.qkv');
    await n.snapshotSave(path);
    assert.deepEqual(await watchFrom4(old, n), ['DELETE k/a@4', 'PUT k/c@5']);
    await old.closeAll();

    const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
    c.dbs.set('a', db);
    await KvNode.restore(path, { id: 'a', members: ['a'], db });
    await c.startAll();
    const m = await c.waitLeader();
    assert.deepEqual(await watchFrom4(c, m), ['DELETE k/a@4', 'PUT k/c@5'], 'the restored member');
  } finally {
    await old.closeAll();
    await c.closeAll();
    await cleanup();
  }
});

test('the derived cluster id of a restore depends on the members\' addresses: one backup restored at other addresses is another cluster', async () => {
  const { dir, cleanup } = await tempDir('backup-cluster-id');
  const old = new OpsCluster(['a'], 19);
  try {
    await old.startAll();
    const n = await old.waitLeader();
    await old.run(n.put('k', 'v'));
    const path = join(dir, 'b.qkv');
    await n.snapshotSave(path);
    await old.closeAll();
    const restoreAt = async (members: string[] | Record<string, string>): Promise<string> => {
      const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
      const r = await KvNode.restore(path, { id: 'a', members, db });
      await db.close();
      return r.clusterId;
    };
    const prod = await restoreAt({ a: '10.0.0.1:2380', b: '10.0.0.2:2380' });
    const prodAgain = await restoreAt({ b: '10.0.0.2:2380', a: '10.0.0.1:2380' });
    const staging = await restoreAt({ a: '10.9.0.1:2380', b: '10.9.0.2:2380' });
    const idsOnly = await restoreAt(['a', 'b']);
    assert.equal(prod, prodAgain, 'the same members and addresses, in any order: the same id on every member');
    assert.notEqual(prod, staging, 'other addresses: another cluster');
    assert.notEqual(prod, idsOnly);
  } finally {
    await old.closeAll();
    await cleanup();
  }
});

test('a backup path or data directory holding a NUL character is refused as bad input (QUORUMKV_INVALID_ARGUMENT, QUORUMKV_INVALID_CONFIG), creating nothing', async () => {
  // Node refuses such a path before any system call: it was reported as a
  // disk fault, QUORUMKV_STORAGE_IO
  const { dir, cleanup } = await tempDir('backup-nul');
  const old = new OpsCluster(['a'], 19);
  try {
    await old.startAll();
    const n = await old.waitLeader();
    await old.run(n.put('k', 'v'));
    const path = join(dir, 'good.qkv');
    await n.snapshotSave(path);
    await assert.rejects(n.snapshotSave(join(dir, 'a\0b.qkv')), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_ARGUMENT) && /NUL/.test((e as Error).message));
    const dataDir = join(dir, 'restored');
    await assert.rejects(KvNode.restore(join(dir, 'good.qkv\0'), { id: 'a', members: ['a'], dataDir }), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_ARGUMENT));
    await assert.rejects(KvNode.restore(5 as unknown as string, { id: 'a', members: ['a'], dataDir }), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_ARGUMENT));
    await assert.rejects(KvNode.restore(path, { id: 'a', members: ['a'], dataDir: `${dataDir}\0x` }), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_CONFIG) && /NUL/.test((e as Error).message));
    assert.deepEqual((await readdir(dir)).sort(), ['good.qkv'], 'no file or directory made');
  } finally {
    await old.closeAll();
    await cleanup();
  }
});

test('a backup path that names a directory fails with QUORUMKV_STORAGE_IO, creating nothing', async () => {
  // it failed with Node's raw EISDIR error, not a QuorumError
  const { dir, cleanup } = await tempDir('backup-isdir');
  try {
    const notAFile = join(dir, 'backups');
    await mkdir(notAFile);
    const dataDir = join(dir, 'restored');
    await assert.rejects(KvNode.restore(notAFile, { id: 'a', members: ['a'], dataDir }), (e: unknown) => isQuorumError(e, ErrorCode.STORAGE_IO));
    const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
    await assert.rejects(KvNode.restore(notAFile, { id: 'a', members: ['a'], db }), (e: unknown) => isQuorumError(e, ErrorCode.STORAGE_IO));
    assert.equal((await db.keys().all()).length, 0);
    await db.close();
    assert.deepEqual(await readdir(dir), ['backups']);
  } finally {
    await cleanup();
  }
});

test('a backup with valid checksums whose records repeat, go back or pass its revision is refused with QUORUMKV_CORRUPT_SNAPSHOT, writing nothing', async () => {
  // the reader checked each frame's shape, not the order of the records: a
  // repeated record was found only while the store was rebuilt, after the
  // restore had written records into the caller's database
  // (QUORUMKV_INTERNAL, 7 keys left in it)
  const { dir, cleanup } = await tempDir('backup-order');
  try {
    const { header, recs } = await goodBackup(join(dir, 'good.qkv'), 20, 5);
    assert.ok(recs.length >= 3);
    const cases: [string, BackupHeader, [Uint8Array, Uint8Array][]][] = [
      ['the last record repeated', header, [...recs, recs[recs.length - 1]!]],
      ['two records swapped', header, [recs[1]!, recs[0]!, ...recs.slice(2)]],
      ['records past the revision', { ...header, revision: header.revision - 1 }, recs],
    ];
    for (const [name, h, records] of cases) await assertRefusedBackup(dir, name, h, [], records);
  } finally {
    await cleanup();
  }
});

test('a restore into a database that fails part way leaves the database empty, and a retry restores it whole', async () => {
  // what the restore had written stayed: the database was left half
  // restored, and the retry refused it as not empty
  const { dir, cleanup } = await tempDir('backup-db-fail');
  try {
    const path = join(dir, 'good.qkv');
    await goodBackup(path, 21, 5);
    const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
    const impl = db as unknown as { _batch: (...args: unknown[]) => Promise<void> };
    const batch = impl._batch.bind(db);
    let batches = 0;
    let failing = true;
    impl._batch = (...args: unknown[]) => (failing && ++batches > 2 ? Promise.reject(new Error('disk gone')) : batch(...args));
    await assert.rejects(KvNode.restore(path, { id: 'a', members: ['a'], db }), (e: unknown) => isQuorumError(e));
    assert.ok(batches > 2, 'the restore wrote before it failed');
    failing = false;
    assert.deepEqual(await db.keys().all(), [], 'nothing left in the database');
    const r = await KvNode.restore(path, { id: 'a', members: ['a'], db });
    assert.equal(r.revision, 6);
    await db.close();
  } finally {
    await cleanup();
  }
});

test('a backup with valid checksums holding a lease or header field no store holds is refused with QUORUMKV_CORRUPT_SNAPSHOT, creating nothing', async () => {
  // they were restored: lease 0 (no lease), a negative lease id, TTLs of 0
  // and below, a lease given twice, and a last lease id of -1, after which
  // the restored cluster granted lease 0
  const { dir, cleanup } = await tempDir('backup-leases');
  try {
    const { header, recs } = await goodBackup(join(dir, 'good.qkv'), 22, 3);
    const cases: [string, BackupHeader, { id: number; ttl: number }[]][] = [
      ['lease id 0', header, [{ id: 0, ttl: 10 }]],
      ['a negative lease id', header, [{ id: -5, ttl: 10 }]],
      ['a TTL of 0', header, [{ id: 3, ttl: 0 }]],
      ['a negative TTL', header, [{ id: 3, ttl: -1 }]],
      ['a TTL over etcd\'s MaxLeaseTTL', header, [{ id: 3, ttl: 9_000_000_001 }]],
      ['a lease twice', header, [{ id: 3, ttl: 5 }, { id: 3, ttl: 6 }]],
      ['a last lease id of -1', { ...header, lastLeaseId: -1 }, []],
      ['a negative applied index', { ...header, appliedIndex: -1 }, []],
      ['a compaction revision below -1', { ...header, compactRevision: -7 }, []],
    ];
    for (const [name, h, leases] of cases) await assertRefusedBackup(dir, name, h, leases, recs);
  } finally {
    await cleanup();
  }
});

test("a restored member's data is that member's: an open under another id is refused, as after its first open", async () => {
  // before: the restore kept no member id with the data (a Raft snapshot and
  // a HardState of term 1), so that another member could open it, and with
  // one member's data opened as another's, two members of one id vote
  const { dir, cleanup } = await tempDir('backup-member-id');
  try {
    const path = join(dir, 'b.qkv');
    await goodBackup(path, 23, 3);
    const net = new MemoryNetwork({ seed: 1 });
    for (const where of ['db', 'dataDir'] as const) {
      const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
      const data = where === 'db' ? { db } : { dataDir: join(dir, 'restored-a') };
      await KvNode.restore(path, { id: 'a', members: IDS, ...data });
      await assert.rejects(
        KvNode.open({ id: 'b', members: IDS, transport: net.transport('b'), tickMs: 10, ...data }),
        (e: unknown) => isQuorumError(e, ErrorCode.INVALID_CONFIG) && /the data belongs to member a, not b/.test((e as Error).message),
        where,
      );
      const a = await KvNode.open({ id: 'a', members: IDS, transport: net.transport('a'), tickMs: 10, ...data });
      try {
        assert.equal(a.status().header.memberId, 'a');
        assert.equal(a.status().revision, 4, `${where}: the backup's state`);
      } finally {
        await a.close();
        await db.close();
      }
    }
  } finally {
    await cleanup();
  }
});
