// Backends for the LogStorage conformance suite: memory-level, classic-level
// in a temp dir, and the crash-simulating CrashableLevel (through a sublevel,
// as a node sharing its database with a state machine would use it).
import * as fsCjs from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { MemoryLevel } from 'memory-level';
import { CrashableLevel, FileLogStorage, LevelLogStorage, type LevelDatabase } from '../../src/storage/index.js';
import type { StorageFixture } from './conformance.js';

/**
 * Where the file log's tests make their directories: /dev/shm (tmpfs) where
 * the machine has it, else the temp dir. They model crashes and damage on
 * the files' bytes, which a real disk would not change; its fsyncs only
 * cost time (the power-loss run took 21 s on the disk, 8.5 s on tmpfs).
 */
export function scratchRoot(): string {
  return fsCjs.existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
}

/** memory-level: a restart keeps the same in-memory database. */
export async function memoryLevelFixture(): Promise<StorageFixture> {
  const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  return {
    open: () => LevelLogStorage.open({ db }),
    db: () => db,
    restart: async () => undefined,
    destroy: () => db.close(),
  };
}

/** classic-level in a fresh temp dir: a restart closes and reopens LevelDB. */
export async function classicLevelFixture(): Promise<StorageFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'quorumkv-storage-'));
  let db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  return {
    open: () => LevelLogStorage.open({ db }),
    db: () => db,
    restart: async () => {
      await db.close();
      db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
      await db.open();
    },
    destroy: async () => {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** CrashableLevel, storage in the 'raft' sublevel: a restart is a power loss (unsynced writes are lost). */
export async function crashableLevelFixture(): Promise<StorageFixture> {
  const root = new CrashableLevel();
  await root.open();
  const raftSublevel = (): LevelDatabase => root.sublevel('raft', { keyEncoding: 'view', valueEncoding: 'view' });
  let db = raftSublevel();
  return {
    open: () => LevelLogStorage.open({ db }),
    db: () => db,
    restart: async () => {
      await root.crash();
      await root.open();
      db = raftSublevel();
    },
    destroy: () => root.close(),
  };
}

/**
 * FileLogStorage in a fresh directory under {@link scratchRoot}, with small segments (64 KiB) so that
 * the tests cross segment boundaries: a restart is a close and a new open.
 */
export async function fileFixture(inlineWriteBytes?: number): Promise<StorageFixture> {
  const dir = await mkdtemp(join(scratchRoot(), 'quorumkv-wal-'));
  return {
    open: () => FileLogStorage.open({ dir, segmentBytes: 64 * 1024, ...(inlineWriteBytes !== undefined ? { inlineWriteBytes } : {}) }),
    restart: async () => undefined,
    destroy: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Runs `fn` with a fresh directory under {@link scratchRoot}, removed afterwards. */
export async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(scratchRoot(), 'quorumkv-storage-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Runs `fn` with the directories fsynced through `fs.promises.open` meanwhile
 * recorded in `synced`, relative to `root` (`'.'` for `root` itself), in
 * order: a directory's entries outlive a power loss only once it is fsynced.
 */
export async function watchDirSyncs(root: string, fn: (synced: string[]) => Promise<void>): Promise<void> {
  const synced: string[] = [];
  const realOpen = fsCjs.promises.open;
  fsCjs.promises.open = async function (this: unknown, ...args: Parameters<typeof realOpen>) {
    const fh = await realOpen.apply(this, args);
    if ((await fh.stat()).isDirectory()) {
      const sync = fh.sync.bind(fh);
      fh.sync = () => {
        synced.push(relative(root, String(args[0])) || '.');
        return sync();
      };
    }
    return fh;
  } as typeof realOpen;
  try {
    await fn(synced);
  } finally {
    fsCjs.promises.open = realOpen;
  }
}

/** Byte offsets and lengths (with the 8-byte header) of the records of one `FileLogStorage` segment file, up to the first zeroed length. */
export async function records(path: string): Promise<Array<{ off: number; len: number }>> {
  const buf = await readFile(path);
  const out: Array<{ off: number; len: number }> = [];
  for (let off = 0; off + 8 <= buf.length; ) {
    const len = buf.readUInt32LE(off);
    if (len === 0) break;
    out.push({ off, len: 8 + len });
    off += 8 + len;
  }
  return out;
}
