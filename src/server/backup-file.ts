/**
 * The backup file format of `KvNode.snapshotSave` (etcd's `snapshot.db`
 * role: a point-in-time copy of one member's store, verified on restore).
 *
 * ```
 * "QKVBAK01"                                 8 bytes, magic and format version
 * frame*                                     each: [u32be length][u32be crc32(payload)][payload]
 * ```
 * Every payload is a msgpack array whose first item names it:
 * - `['header', {format, clusterId, memberId, revision, compactRevision, appliedIndex, lastLeaseId, createdAt}]`, first;
 * - `['records', [key, value, key, value, ...]]`: revision records of the store, in strictly
 *   increasing revision order (across frames), none past the header's revision;
 * - `['leases', [id, ttl, id, ttl, ...]]`: each id positive and given once, each TTL from 1 s to etcd's `MaxLeaseTTL`;
 * - `['end', {records, leases, crc}]`, last: the counts and a CRC-32 chained
 *   over every earlier payload, so a missing, duplicated or reordered frame,
 *   and a file cut anywhere, are detected.
 *
 * Files are written to `<path>.<random>.part` (mode 0600), fsynced and
 * renamed into place, so a crash never leaves a partial file under the final
 * name; the directory is fsynced after the rename, so a saved backup keeps
 * its name across a power loss.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { crc32, pack, unpack } from '../codec/index.js';
import { ErrorCode, FaultError } from '../errors.js';
import { MAX_LEASE_TTL } from '../lease/index.js';
import { MARKED_REV_BYTES_LEN, REV_BYTES_LEN, bytesToRev, revisionGreater, revisionId, type Revision } from '../mvcc/revision.js';
import { fsyncDir, writeFully } from '../storage/durable-fs.js';

/** The magic bytes that start a backup file. */
export const BACKUP_MAGIC = 'QKVBAK01';

/** Largest frame payload accepted when reading (bytes); a frame's length is also bounded by the file's size. */
const MAX_FRAME_BYTES = 256 * 1024 * 1024;

/** Records per frame, and payload bytes after which a frame is cut. */
const FRAME_RECORDS = 4096;
const FRAME_BYTES = 1024 * 1024;

/** What a backup file says about its contents. */
export interface BackupHeader {
  /** File format version (1). */
  format: number;
  /** Cluster id of the member the backup was taken on. */
  clusterId: string;
  /** Id of that member. */
  memberId: string;
  /** The store's revision at the backup. */
  revision: number;
  /** The store's compaction revision at the backup (-1 before any). */
  compactRevision: number;
  /** The Raft index the store had applied at the backup. */
  appliedIndex: number;
  /** The last lease id the store had assigned. */
  lastLeaseId: number;
  /** When the backup was taken (ms since the Unix epoch, wall clock). */
  createdAt: number;
}

/** The contents of a backup, as given to {@link writeBackupFile}. */
export interface BackupSource {
  header: BackupHeader;
  leases: { id: number; ttl: number }[];
  records: AsyncIterable<[Uint8Array, Uint8Array]>;
}

/** What reading a backup file gives, frame by frame. */
export type BackupItem =
  | { kind: 'header'; header: BackupHeader }
  | { kind: 'records'; records: Uint8Array[] }
  | { kind: 'leases'; leases: { id: number; ttl: number }[] }
  | { kind: 'end'; records: number; leases: number; digest: number };

/**
 * What is wrong with `path` as the name of a backup file or a data
 * directory, if anything: the file system calls take no NUL character (Node
 * refuses such a path before any system call, with a `TypeError`).
 * @returns the end of a sentence beginning "path must", or undefined when it is usable
 */
export function filePathProblem(path: unknown): string | undefined {
  if (typeof path !== 'string' || path === '') return 'be a non-empty string';
  if (path.includes('\0')) return 'not hold a NUL character';
  return undefined;
}

function corrupt(path: string, why: string): FaultError {
  return new FaultError(ErrorCode.CORRUPT_SNAPSHOT, `backup ${path}: ${why}`);
}

class FrameWriter {
  chain = 0;
  size = 0;
  constructor(private readonly fh: FileHandle) {}

  /**
   * Appends `b` whole, writing on after a short write: write(2) writes less
   * than asked on a disk about to fill up or at a file size limit, and the
   * call after it fails. Taken for a whole write, it left a backup short of
   * its last bytes (or with a gap) that was reported as saved.
   */
  async raw(b: Uint8Array): Promise<void> {
    await writeFully(this.fh, b, b.length, null);
    this.size += b.length;
  }

  async frame(value: unknown): Promise<void> {
    const payload = pack(value);
    const head = new Uint8Array(8);
    const dv = new DataView(head.buffer);
    dv.setUint32(0, payload.length);
    dv.setUint32(4, crc32(payload));
    this.chain = crc32(payload, this.chain);
    await this.raw(head);
    await this.raw(payload);
  }
}

/**
 * Streams a backup to `path` (through `<path>.<random>.part`, created for
 * this call alone and readable by its owner only, as etcd writes its
 * snapshots: fsynced, then renamed over `path`, and the directory fsynced:
 * the rename is a new entry of the directory, which a power loss may take
 * back until the directory itself is synced). Two saves to one path at
 * once each leave a whole backup; the later rename wins.
 * @returns the file's size in bytes
 * @throws FaultError `QUORUMKV_STORAGE_IO` when the file cannot be written
 *   (no partial file is left), or its directory cannot be fsynced after the
 *   rename (the whole backup is then under `path`, but not known to be durable)
 */
export async function writeBackupFile(path: string, src: BackupSource): Promise<number> {
  const part = `${path}.${randomBytes(6).toString('hex')}.part`;
  let fh: FileHandle | undefined;
  let size: number;
  try {
    fh = await open(part, 'wx', 0o600);
    const w = new FrameWriter(fh);
    await w.raw(new TextEncoder().encode(BACKUP_MAGIC));
    await w.frame(['header', { ...src.header }]);
    let batch: Uint8Array[] = [];
    let batchBytes = 0;
    let records = 0;
    for await (const [k, v] of src.records) {
      batch.push(k, v);
      batchBytes += k.length + v.length;
      records++;
      if (batch.length >= FRAME_RECORDS * 2 || batchBytes >= FRAME_BYTES) {
        await w.frame(['records', batch]);
        batch = [];
        batchBytes = 0;
      }
    }
    if (batch.length > 0) await w.frame(['records', batch]);
    const flat: number[] = [];
    for (const l of src.leases) flat.push(l.id, l.ttl);
    for (let i = 0; i < flat.length; i += FRAME_RECORDS * 2) await w.frame(['leases', flat.slice(i, i + FRAME_RECORDS * 2)]);
    await w.frame(['end', { records, leases: src.leases.length, crc: w.chain }]);
    await fh.sync();
    await fh.close();
    fh = undefined;
    size = w.size;
    await rename(part, path);
  } catch (err) {
    await fh?.close().catch(() => undefined);
    await rm(part, { force: true }).catch(() => undefined);
    if (err instanceof FaultError) throw err;
    throw new FaultError(ErrorCode.STORAGE_IO, `cannot write the backup ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    await fsyncDir(dirname(path));
  } catch (err) {
    throw new FaultError(ErrorCode.STORAGE_IO, `the backup ${path} is written, but its directory cannot be fsynced: ${(err as Error).message}`, { cause: err });
  }
  return size;
}

function safeInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

function parseHeader(path: string, h: unknown): BackupHeader {
  const o = h as Record<string, unknown>;
  if (o === null || typeof o !== 'object' || o.format !== 1) throw corrupt(path, 'unknown header format');
  if (typeof o.clusterId !== 'string' || typeof o.memberId !== 'string') throw corrupt(path, 'malformed header');
  for (const f of ['revision', 'compactRevision', 'appliedIndex', 'lastLeaseId', 'createdAt']) {
    if (!safeInt(o[f])) throw corrupt(path, `malformed header field ${f}`);
  }
  if ((o.revision as number) < 1 || (o.compactRevision as number) < -1 || (o.compactRevision as number) > (o.revision as number)) throw corrupt(path, 'inconsistent revisions in the header');
  // no store holds a negative one: a lease granted on the restored store
  // would get id lastLeaseId + 1, 0 (no lease) for -1
  if ((o.appliedIndex as number) < 0 || (o.lastLeaseId as number) < 0) throw corrupt(path, 'negative applied index or last lease id in the header');
  return {
    format: 1,
    clusterId: o.clusterId,
    memberId: o.memberId,
    revision: o.revision as number,
    compactRevision: o.compactRevision as number,
    appliedIndex: o.appliedIndex as number,
    lastLeaseId: o.lastLeaseId as number,
    createdAt: o.createdAt as number,
  };
}

async function readExactly(path: string, fh: FileHandle, pos: number, n: number): Promise<Uint8Array | undefined> {
  const buf = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    let bytesRead: number;
    try {
      ({ bytesRead } = await fh.read(buf, got, n - got, pos + got));
    } catch (err) {
      // EISDIR (a directory given as the backup), EIO
      throw new FaultError(ErrorCode.STORAGE_IO, `cannot read the backup ${path}: ${(err as Error).message}`, { cause: err });
    }
    if (bytesRead === 0) return got === 0 ? undefined : buf.subarray(0, got);
    got += bytesRead;
  }
  return buf;
}

async function fileSizeOf(path: string, fh: FileHandle): Promise<number> {
  try {
    return (await fh.stat()).size;
  } catch (err) {
    throw new FaultError(ErrorCode.STORAGE_IO, `cannot read the backup ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Opens a backup file for {@link readBackupFile}.
 * @throws FaultError `QUORUMKV_STORAGE_IO` when it cannot be opened
 */
export async function openBackupFile(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch (err) {
    throw new FaultError(ErrorCode.STORAGE_IO, `cannot open the backup ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Reads and verifies a backup file frame by frame: the magic, each frame's
 * CRC and shape, the order (header first, end last, nothing after it), the
 * counts and the chained CRC of the end frame. With `handle` (from
 * {@link openBackupFile}), reads that open file and leaves it open: two
 * passes over one handle read the same file even if another is renamed
 * over `path` meanwhile.
 * @throws FaultError `QUORUMKV_CORRUPT_SNAPSHOT` on any mismatch, a cut
 *   file or a missing end; `QUORUMKV_STORAGE_IO` when the file cannot be read
 */
export async function* readBackupFile(path: string, handle?: FileHandle): AsyncGenerator<BackupItem> {
  const fh = handle ?? (await openBackupFile(path));
  try {
    const magic = await readExactly(path, fh, 0, BACKUP_MAGIC.length);
    if (magic === undefined || magic.length < BACKUP_MAGIC.length || new TextDecoder().decode(magic) !== BACKUP_MAGIC) {
      throw corrupt(path, 'not a quorumkv backup (bad magic)');
    }
    // a frame's length is checked against what the file holds before its
    // buffer is allocated: a damaged length allocates nothing larger
    const fileSize = await fileSizeOf(path, fh);
    let pos = BACKUP_MAGIC.length;
    let chain = 0;
    let records = 0;
    let leases = 0;
    let sawHeader = false;
    let revision = 0;
    let lastRev: Revision | undefined;
    const leaseIds = new Set<number>();
    for (;;) {
      const head = await readExactly(path, fh, pos, 8);
      if (head === undefined) throw corrupt(path, 'truncated: no end frame');
      if (head.length < 8) throw corrupt(path, 'truncated frame header');
      const dv = new DataView(head.buffer, head.byteOffset, 8);
      const len = dv.getUint32(0);
      const want = dv.getUint32(4);
      if (len > MAX_FRAME_BYTES) throw corrupt(path, `frame of ${len} bytes is larger than the limit`);
      if (pos + 8 + len > fileSize) throw corrupt(path, `truncated frame: the frame at byte ${pos} is of ${len} bytes, past the end of the file (${fileSize} bytes)`);
      const payload = len === 0 ? new Uint8Array(0) : await readExactly(path, fh, pos + 8, len);
      if (payload === undefined || payload.length < len) throw corrupt(path, 'truncated frame');
      if (crc32(payload) !== want) throw corrupt(path, `checksum mismatch in the frame at byte ${pos}`);
      pos += 8 + len;
      let t: unknown;
      try {
        t = unpack(payload);
      } catch {
        throw corrupt(path, `undecodable frame at byte ${pos - 8 - len}`);
      }
      if (!Array.isArray(t) || t.length !== 2 || typeof t[0] !== 'string') throw corrupt(path, 'malformed frame');
      const [kind, body] = t as [string, unknown];
      if (!sawHeader && kind !== 'header') throw corrupt(path, 'the first frame is not the header');
      if (kind === 'header') {
        if (sawHeader) throw corrupt(path, 'two headers');
        sawHeader = true;
        chain = crc32(payload, chain);
        const header = parseHeader(path, body);
        revision = header.revision;
        yield { kind: 'header', header };
      } else if (kind === 'records') {
        if (!Array.isArray(body) || body.length % 2 !== 0 || !body.every((b) => b instanceof Uint8Array)) throw corrupt(path, 'malformed records frame');
        // in strictly increasing revision order, none past the header's
        // revision, as a store keeps them: a file with a record repeated or
        // out of order (CRC-valid, built wrong) would otherwise fail only
        // once the restore has written part of it
        for (let i = 0; i < body.length; i += 2) {
          const k = body[i] as Uint8Array;
          if (k.length !== REV_BYTES_LEN && k.length !== MARKED_REV_BYTES_LEN) throw corrupt(path, `a record key of ${k.length} bytes`);
          const rev = bytesToRev(k);
          if (lastRev !== undefined && !revisionGreater(rev, lastRev)) {
            throw corrupt(path, `record ${revisionId(rev)} is not after record ${revisionId(lastRev)}: records must be in strictly increasing revision order`);
          }
          if (rev.main > revision) throw corrupt(path, `record ${revisionId(rev)} is past the backup's revision ${revision}`);
          lastRev = rev;
        }
        chain = crc32(payload, chain);
        records += body.length / 2;
        yield { kind: 'records', records: body as Uint8Array[] };
      } else if (kind === 'leases') {
        if (!Array.isArray(body) || body.length % 2 !== 0 || !body.every((n) => safeInt(n))) throw corrupt(path, 'malformed leases frame');
        chain = crc32(payload, chain);
        const out: { id: number; ttl: number }[] = [];
        for (let i = 0; i < body.length; i += 2) {
          const id = body[i] as number;
          const ttl = body[i + 1] as number;
          // as a store holds them: a positive id, once; a TTL a grant can have
          if (id < 1 || leaseIds.has(id)) throw corrupt(path, `lease id ${id} is ${id < 1 ? 'not positive' : 'repeated'}`);
          if (ttl < 1 || ttl > MAX_LEASE_TTL) throw corrupt(path, `lease ${id} has a TTL of ${ttl} s, outside 1 to ${MAX_LEASE_TTL}`);
          leaseIds.add(id);
          out.push({ id, ttl });
        }
        leases += out.length;
        yield { kind: 'leases', leases: out };
      } else if (kind === 'end') {
        const e = body as Record<string, unknown>;
        if (e === null || typeof e !== 'object' || e.records !== records || e.leases !== leases || e.crc !== chain) {
          throw corrupt(path, 'the end frame does not match the contents (missing or altered frames)');
        }
        const extra = await readExactly(path, fh, pos, 1);
        if (extra !== undefined) throw corrupt(path, 'data after the end frame');
        yield { kind: 'end', records, leases, digest: chain };
        return;
      } else {
        throw corrupt(path, `unknown frame ${JSON.stringify(kind)}`);
      }
    }
  } finally {
    if (handle === undefined) await fh.close().catch(() => undefined);
  }
}
