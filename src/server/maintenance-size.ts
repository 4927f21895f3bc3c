/**
 * Database size and defragmentation (etcd's `dbSize`, `dbSizeInUse` and
 * `Defragment`), for any abstract-level database:
 * - classic-level (a database directory on disk): the size is the total of
 *   the directory's files (LevelDB tables, its write-ahead log, manifest;
 *   the Raft log shares the database), the size in use is LevelDB's estimate
 *   of the store's tables (`approximateSize` over the store's key range; the
 *   writes still in LevelDB's write buffer are not counted until flushed),
 *   and defragmentation is `compactRange` over the whole key space, which
 *   drops deleted and overwritten records from disk;
 * - any other backend (memory-level, ...): both sizes are the sum of the key
 *   and value bytes of the store's records, measured by a scan, and
 *   defragmentation has nothing to reclaim (it only reports the size).
 * @module
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { AbstractLevel } from 'abstract-level';
import { ErrorCode, FaultError } from '../errors.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = AbstractLevel<any, any, any>;

/** Sizes of a member's database, in bytes. */
export interface DbSize {
  /** Physical size (etcd's `dbSize`): what the quota is checked against. */
  dbSize: number;
  /** Size of the live data (etcd's `dbSizeInUse`). */
  dbSizeInUse: number;
}

/** What `defragment()` reports, in bytes. */
export interface DefragmentResult {
  /** Physical database size (`dbSize`) measured just before the defragmentation, in bytes. */
  sizeBefore: number;
  /** Physical database size (`dbSize`) measured just after it, in bytes. */
  sizeAfter: number;
}

interface DiskLevel {
  location: string;
  approximateSize(start: Uint8Array, end: Uint8Array, options?: object): Promise<number>;
  compactRange(start: Uint8Array, end: Uint8Array, options?: object): Promise<void>;
}

const VIEW = { keyEncoding: 'view' } as const;
const enc = new TextEncoder();

/** The database as a classic-level on disk, when it is one. */
export function diskLevel(db: AnyDb): DiskLevel | undefined {
  const d = db as unknown as Partial<DiskLevel>;
  if (typeof d.location === 'string' && typeof d.approximateSize === 'function' && typeof d.compactRange === 'function') return d as DiskLevel;
  return undefined;
}

/** Total size in bytes of the files under `dir` (recursively). */
export async function directorySize(dir: string): Promise<number> {
  let total = 0;
  const entries = await readdir(dir, { withFileTypes: true });
  for (const e of entries) {
    const p = join(dir, e.name);
    try {
      if (e.isDirectory()) total += await directorySize(p);
      else if (e.isFile()) total += (await stat(p)).size;
    } catch (err) {
      // LevelDB deletes obsolete files while we look: a vanished file counts 0
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return total;
}

/** Key range `[prefix, prefix + 1)` of a sublevel prefix such as `!mvcc!`, as root keys. */
function prefixRange(prefix: string): [Uint8Array, Uint8Array] {
  const start = enc.encode(prefix);
  const end = start.slice();
  end[end.length - 1]! += 1;
  return [start, end];
}

/** Sum of key and value bytes of every record of `db` (a sublevel or a database). */
export async function logicalSize(db: AnyDb): Promise<number> {
  let total = 0;
  const it = db.iterator({ keyEncoding: 'view', valueEncoding: 'view' });
  try {
    for (;;) {
      const chunk = (await it.nextv(1000)) as [Uint8Array, Uint8Array][];
      if (chunk.length === 0) break;
      for (const [k, v] of chunk) total += k.length + v.length;
    }
  } finally {
    await it.close();
  }
  return total;
}

/**
 * Measures the sizes of a member's database.
 * @param db - the member's root database
 * @param storePrefix - the store's sublevel prefix (for example `!mvcc!`)
 * @param store - the store's sublevel
 * @throws FaultError `QUORUMKV_STORAGE_IO`
 */
export async function measureDbSize(db: AnyDb, storePrefix: string, store: AnyDb): Promise<DbSize> {
  try {
    const disk = diskLevel(db);
    if (disk !== undefined) {
      const [start, end] = prefixRange(storePrefix);
      const [dbSize, dbSizeInUse] = await Promise.all([directorySize(disk.location), disk.approximateSize(start, end, VIEW)]);
      return { dbSize, dbSizeInUse };
    }
    const size = await logicalSize(store);
    return { dbSize: size, dbSizeInUse: size };
  } catch (err) {
    throw new FaultError(ErrorCode.STORAGE_IO, `cannot measure the database size: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Reclaims the space of deleted and compacted records (etcd's `Defragment`):
 * classic-level `compactRange` over the whole key space, twice; a no-op on
 * other backends. Writes continue meanwhile (LevelDB compacts in the
 * background).
 *
 * Why twice: LevelDB's `CompactRange` merges each level into the next one
 * down to the deepest level holding files, but never rewrites the files of
 * that deepest level, and it flushes the write buffer first, to a level as
 * deep as 2 when nothing overlaps. A database whose data all sat in the
 * write buffer thus ends as one flushed table that still holds every
 * overwritten and deleted record. Between the passes a marker record at each
 * end of the key space (written and deleted at once) is flushed as a table
 * spanning the whole range one level above, so the second pass merges it
 * with everything below and drops what is obsolete.
 * @throws FaultError `QUORUMKV_STORAGE_IO`
 */
export async function compactWholeRange(db: AnyDb): Promise<void> {
  const disk = diskLevel(db);
  if (disk === undefined) return;
  const low = Uint8Array.of(0);
  const high = new Uint8Array(64).fill(0xff);
  try {
    await disk.compactRange(low, high, VIEW);
    const root = ((db as unknown as { db?: AnyDb }).db ?? db) as AnyDb;
    const empty = new Uint8Array(0);
    await root.batch(
      [
        { type: 'put', key: low, value: empty },
        { type: 'put', key: high, value: empty },
        { type: 'del', key: low },
        { type: 'del', key: high },
      ] as never,
      VIEW as object,
    );
    await disk.compactRange(low, high, VIEW);
  } catch (err) {
    throw new FaultError(ErrorCode.STORAGE_IO, `defragmentation failed: ${(err as Error).message}`, { cause: err });
  }
}
