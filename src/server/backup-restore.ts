/**
 * Restoring a backup into a new member's data (etcd's `etcdutl snapshot
 * restore`): every member of the new cluster restores the same backup file
 * with the same member list, and gets the same state.
 *
 * What is written, in a fresh database:
 * - the store (`mvcc` sublevel): the backup's records, leases, revision and
 *   compaction revision, with applied index 1;
 * - the Raft log (`raft` sublevel): a snapshot at index 1, term 1, whose
 *   ConfState is the new member list (all voters) and whose data is the
 *   same store state, and the HardState `{ term: 1, vote: '', commit: 1 }`.
 *   The log starts empty after it; the first leader's entries are at index 2
 *   and later. A member added later, or one that falls behind, gets that
 *   state through a Raft snapshot like any other;
 * - the cluster id (`server` sublevel), which {@link KvNode.open} then uses:
 *   a new one, so members of the old cluster and of the new one refuse each
 *   other's frames; and the member id (`id`), with it: the data is that
 *   member's, and an open under another id is refused, as after a first
 *   open (etcd's restore writes the member id into the new WAL).
 * Alarms and the corruption check's reports are not restored (a new cluster).
 *
 * Nothing is created unless the whole file is valid: the file is verified
 * first, and a data directory is built under a temporary name and renamed
 * into place at the end. A database given as `db` (empty) is written in
 * place: a restore that fails part way (an I/O error) clears it again; a
 * crash part way leaves it partly written (give the next restore a new one).
 * @module
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { AbstractLevel } from 'abstract-level';
import { ClassicLevel } from 'classic-level';
import createDebug from 'debug';
import { crc32, pack } from '../codec/index.js';
import { checkOptionKeys } from '../option-keys.js';
import { ErrorCode, FaultError, UsageError } from '../errors.js';
import { MvccStore, encodeStoreSnapshot } from '../mvcc/index.js';
import { FileLogStorage, LevelLogStorage, type LogStorage } from '../storage/index.js';
import { fsyncDir, fsyncMadeDirs } from '../storage/durable-fs.js';
import { filePathProblem, openBackupFile, readBackupFile, type BackupHeader } from './backup-file.js';
import { wrapSnapshot } from '../node/index.js';
import { memberIdProblem, memberIdsProblem } from '../node/raft-node.js';

const log = createDebug('quorumkv:server');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = AbstractLevel<any, any, any>;

const VIEW = { keyEncoding: 'view', valueEncoding: 'view' } as const;

/** The key of the persisted cluster id in the `server` sublevel. */
export const CLUSTER_ID_KEY = 'clusterId';

/** The key of the persisted member id in the `server` sublevel (saved by the first open, or by the restore). */
export const MEMBER_ID_KEY = 'memberId';

/** Options of `KvNode.restore`. */
export interface RestoreOptions {
  /** This member's id in the new cluster, kept with the data: `KvNode.open` under another id is refused. */
  id: string;
  /** The new cluster's founding members (all voters): ids, or ids mapped to `host:port`. The same on every member. */
  members: string[] | Record<string, string>;
  /** Directory to create (it must not exist, or be empty). */
  dataDir?: string;
  /** Or an empty abstract-level database to write to (memory-level in tests). */
  db?: AnyDb;
  /**
   * The new cluster's id. Default: derived from the backup's contents and
   * the member list (with their addresses when `members` maps ids to them) (the same on every member, different from the old one).
   */
  clusterId?: string;
}

/** What `KvNode.restore` reports. */
export interface RestoreResult {
  /** The new cluster's id (persisted; `KvNode.open` uses it). */
  clusterId: string;
  /** The store's revision, the backup's. */
  revision: number;
  /** The founding members. */
  members: string[];
  /** The backup's header. */
  backup: BackupHeader;
}

/**
 * Whether `db` looks like an abstract-level database: an object with the
 * methods a member uses of it (`open`, `close`, `sublevel`, `batch`, `get`).
 */
export function isLevelDb(db: unknown): boolean {
  if (db === null || typeof db !== 'object') return false;
  const d = db as Record<string, unknown>;
  return ['open', 'close', 'sublevel', 'batch', 'get'].every((m) => typeof d[m] === 'function');
}

function bad(msg: string): never {
  throw new UsageError(ErrorCode.INVALID_CONFIG, msg);
}

function memberIds(m: RestoreOptions['members']): string[] {
  const ids = Array.isArray(m) ? [...m] : m !== null && typeof m === 'object' ? Object.keys(m) : bad('members must be a list of ids or a map of ids to addresses');
  if (ids.length === 0) bad('members must not be empty');
  if (new Set(ids).size !== ids.length || ids.some((i) => typeof i !== 'string' || i === '')) bad('member ids must be unique non-empty strings');
  // ids KvNode.open takes: the restored data of any other would never open
  const problem = memberIdsProblem(ids);
  if (problem !== undefined) bad(problem);
  return ids;
}

async function isEmptyDir(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return true;
    if (code === 'ENOTDIR') bad(`data directory ${dir} is not a directory`);
    throw new FaultError(ErrorCode.STORAGE_IO, `cannot read the data directory ${dir}: ${(err as Error).message}`, { cause: err });
  }
}

async function isEmptyDb(db: AnyDb): Promise<boolean> {
  if (db.status !== 'open') await db.open();
  const it = db.keys({ keyEncoding: 'view', limit: 1 });
  try {
    return (await it.next()) === undefined;
  } finally {
    await it.close();
  }
}

/** Verifies the whole file. @returns its header and the digest of its contents */
async function verify(path: string, fh: FileHandle): Promise<{ header: BackupHeader; digest: number }> {
  let header: BackupHeader | undefined;
  for await (const item of readBackupFile(path, fh)) {
    if (item.kind === 'header') header = item.header;
    else if (item.kind === 'end') return { header: header!, digest: item.digest };
  }
  throw new FaultError(ErrorCode.CORRUPT_SNAPSHOT, `backup ${path}: no end frame`);
}

/**
 * Where a member keeps its data under `dataDir`: the store (MVCC records,
 * server state) in a classic-level database in `kv/`, the Raft log apart
 * from it, as etcd keeps its WAL apart from its bbolt database: in `wal/`
 * as a {@link FileLogStorage}, or, for a data directory made by an earlier
 * version, in the classic-level database `raft/` (used when it exists).
 */
export function dataDirLayout(dataDir: string): { kv: string; raft: string; wal: string } {
  return { kv: join(dataDir, 'kv'), raft: join(dataDir, 'raft'), wal: join(dataDir, 'wal') };
}

/**
 * Opens the Raft log of a data directory (see {@link dataDirLayout}): the
 * classic-level log of an earlier version when `raft/` holds one, else the
 * files in `wal/`.
 * @throws UsageError `QUORUMKV_INVALID_CONFIG` when both `raft/` and `wal/` are there
 * @throws FaultError `QUORUMKV_STORAGE_IO` and the load errors of the storage
 */
export async function openDataDirLog(dataDir: string): Promise<LogStorage> {
  const layout = dataDirLayout(dataDir);
  if (existsSync(join(layout.raft, 'CURRENT'))) {
    if (existsSync(layout.wal)) {
      throw new UsageError(
        ErrorCode.INVALID_CONFIG,
        `${dataDir} holds two Raft logs, ${layout.raft} (classic-level, an earlier version's) and ${layout.wal} (files): keep the one this member last ran on and move the other away`,
      );
    }
    return LevelLogStorage.open({ dataDir: layout.raft });
  }
  return FileLogStorage.open({ dir: layout.wal });
}

async function build(
  path: string,
  fh: FileHandle,
  db: AnyDb,
  openLog: () => Promise<LogStorage>,
  memberId: string,
  ids: string[],
  addresses: Record<string, string>,
  clusterId: string,
): Promise<BackupHeader> {
  let header: BackupHeader | undefined;
  const records: Uint8Array[] = [];
  const leases: { id: number; ttl: number }[] = [];
  for await (const item of readBackupFile(path, fh)) {
    if (item.kind === 'header') header = item.header;
    else if (item.kind === 'records') for (const r of item.records) records.push(r);
    else if (item.kind === 'leases') leases.push(...item.leases);
  }
  const h = header!;
  const storeSnapshot = encodeStoreSnapshot({
    appliedIndex: 1,
    revision: h.revision,
    compactRevision: h.compactRevision,
    lastLeaseId: h.lastLeaseId,
    leases,
    records,
  });
  records.length = 0;
  // synced: the Raft log below records only the snapshot's index, term and
  // membership, the store holding its state (a KvNode's on-demand snapshots)
  const store = await MvccStore.open(db.sublevel('mvcc', VIEW), { sync: true });
  try {
    await store.restore(storeSnapshot);
  } finally {
    await store.close();
  }
  const storage = await openLog();
  try {
    await storage.save(
      {
        // the node's snapshot envelope, without the state (the store holds it
        // at applied index 1): the members' addresses
        snapshot: { data: wrapSnapshot({ addresses, removed: [] }), metadata: { index: 1, term: 1, confState: { voters: ids, learners: [] } } },
        hardState: { term: 1, vote: '', commit: 1 },
      },
      { sync: true },
    );
  } finally {
    await storage.close();
  }
  // the data is this member's, as after a first open (which refuses it to
  // another id): etcd's restore writes the member id into the new WAL
  await db.sublevel('server', { keyEncoding: 'utf8', valueEncoding: 'utf8' }).batch(
    [
      { type: 'put', key: MEMBER_ID_KEY, value: memberId },
      { type: 'put', key: CLUSTER_ID_KEY, value: clusterId },
    ],
    { sync: true } as object,
  );
  return h;
}

/**
 * Builds a new member's data from a backup file (see the module doc).
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for a `path` that is not a
 *   non-empty string or holds a NUL character; `QUORUMKV_INVALID_CONFIG` for bad options, a data
 *   directory that is not empty or a database that is not empty (nothing is created)
 * @throws FaultError `QUORUMKV_CORRUPT_SNAPSHOT` for a corrupt or truncated
 *   file (nothing is created); `QUORUMKV_STORAGE_IO`
 */
export async function restoreBackup(path: string, opts: RestoreOptions): Promise<RestoreResult> {
  const pathProblem = filePathProblem(path);
  if (pathProblem !== undefined) throw new UsageError(ErrorCode.INVALID_ARGUMENT, `path must ${pathProblem}`);
  if (opts === null || typeof opts !== 'object') bad('options are required');
  checkOptionKeys(opts, ['id', 'members', 'dataDir', 'db', 'clusterId'] satisfies (keyof RestoreOptions)[], 'KvNode.restore options');
  const idProblem = memberIdProblem(opts.id);
  if (idProblem !== undefined) bad(`id must ${idProblem}`);
  const ids = memberIds(opts.members);
  if (!ids.includes(opts.id)) bad(`members must include this member's id ${opts.id}`);
  if ((opts.dataDir === undefined) === (opts.db === undefined)) bad('exactly one of dataDir and db is required');
  if (opts.dataDir !== undefined) {
    const problem = filePathProblem(opts.dataDir);
    if (problem !== undefined) bad(`dataDir must ${problem === 'be a non-empty string' ? 'be a non-empty string (a directory)' : problem}`);
  }
  if (opts.db !== undefined && !isLevelDb(opts.db)) bad('db must be an abstract-level database (such as a ClassicLevel or MemoryLevel)');
  if (opts.clusterId !== undefined) {
    // as KvNode.open takes it (it travels in every TCP handshake)
    const problem = memberIdProblem(opts.clusterId);
    if (problem !== undefined) bad(`clusterId must ${problem}`);
  }
  if (opts.dataDir !== undefined && !(await isEmptyDir(opts.dataDir))) bad(`data directory ${opts.dataDir} is not empty`);
  if (opts.db !== undefined && !(await isEmptyDb(opts.db))) bad('the database to restore into is not empty');

  // one open file for both passes: a newer backup renamed over `path`
  // meanwhile (as snapshotSave does) is not mixed with the one verified
  const fh = await openBackupFile(path);
  try {
    return await restoreFrom(path, fh, opts, ids);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

async function restoreFrom(path: string, fh: FileHandle, opts: RestoreOptions, ids: string[]): Promise<RestoreResult> {
  const { header, digest } = await verify(path, fh);
  // the members' addresses count when given: two clusters restored from one
  // backup under the same ids on other machines (a staging copy of
  // production, say) get different ids, and their members refuse each other
  const addresses = Array.isArray(opts.members) ? [] : Object.entries(opts.members).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const clusterId =
    opts.clusterId ?? `quorumkv-${crc32(pack([digest, header.clusterId, header.revision, [...ids].sort(), ...(addresses.length > 0 ? [addresses] : [])])).toString(16).padStart(8, '0')}`;

  if (opts.db !== undefined) {
    const db = opts.db;
    const logDb = db.sublevel('raft', VIEW) as AnyDb;
    try {
      await build(path, fh, db, () => LevelLogStorage.open({ db: logDb }), opts.id, ids, Array.isArray(opts.members) ? {} : { ...opts.members }, clusterId);
    } catch (err) {
      // the database was empty: what this restore wrote goes, so that
      // nothing is left half-restored (and the restore can be tried again)
      await db.clear().catch((e: Error) => log('cannot clear the database after a failed restore: %s', e.message));
      if (err instanceof FaultError || err instanceof UsageError) throw err;
      throw new FaultError(ErrorCode.STORAGE_IO, `cannot restore into the database: ${(err as Error).message}`, { cause: err });
    }
  } else {
    const dataDir = opts.dataDir!;
    const madeParent = await mkdir(dirname(dataDir), { recursive: true });
    // a directory of this call's own, next to dataDir (one file system)
    const tmp = await mkdtemp(join(dirname(dataDir), `.${basename(dataDir)}.restoring-`));
    const layout = dataDirLayout(tmp);
    const db = new ClassicLevel<Uint8Array, Uint8Array>(layout.kv, VIEW);
    try {
      await db.open();
      await build(path, fh, db, () => FileLogStorage.open({ dir: layout.wal }), opts.id, ids, Array.isArray(opts.members) ? {} : { ...opts.members }, clusterId);
      await db.close();
      // rename replaces dataDir only while it is missing or empty: anything
      // written there since the check above (another restore) stays, and
      // this restore fails instead
      try {
        await rename(tmp, dataDir);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOTDIR') bad(`data directory ${dataDir} is no longer empty`);
        throw err;
      }
      // the new directory entry must outlive a power loss, as the log in it
      // does; the restore is complete by now, so a failure here (a platform
      // that cannot fsync a directory) is only logged
      try {
        // and so must those of the directories made above it
        if (madeParent !== undefined) await fsyncMadeDirs(dirname(dataDir), madeParent);
        else await fsyncDir(dirname(dataDir));
      } catch (err) {
        log('cannot fsync %s after the restore: %s', dirname(dataDir), (err as Error).message);
      }
    } catch (err) {
      await db.close().catch(() => undefined);
      await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      if (err instanceof FaultError || err instanceof UsageError) throw err;
      throw new FaultError(ErrorCode.STORAGE_IO, `cannot restore into ${dataDir}: ${(err as Error).message}`, { cause: err });
    }
  }
  log('[%s] restored backup %s (revision %d, from member %s of cluster %s) as cluster %s with members %j', opts.id, path, header.revision, header.memberId, header.clusterId, clusterId, ids);
  return { clusterId, revision: header.revision, members: ids, backup: header };
}
