/**
 * Durable writes to files and directories. A file or directory just made is
 * in its parent's entries, which outlive a power loss only once the parent
 * itself is fsynced (POSIX leaves it to the caller; etcd's `fileutil.Fsync`
 * of the directory after a rename or a create is the same rule); and a
 * write(2) may write less than asked (a disk about to fill up, a file size
 * limit), the call after it failing. Internal: not re-exported by the
 * storage index.
 * @module
 */
import { promises as fsp } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * Fsyncs the directory `dir`.
 * @throws the file system's error (ENOENT, EACCES, EIO); on Windows, which
 *   cannot open a directory (EPERM, EISDIR) and keeps entries durable
 *   without it, nothing
 */
export async function fsyncDir(dir: string): Promise<void> {
  try {
    const fh = await fsp.open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (process.platform === 'win32' && (code === 'EPERM' || code === 'EISDIR')) return;
    throw err;
  }
}

/**
 * After `mkdir(dir, { recursive: true })` returned `made` (the first
 * directory it created, or `undefined` when it created none): fsyncs `dir`
 * and every directory above it up to the parent of `made`, so that each new
 * directory's entry outlives a power loss. Does nothing when `made` is
 * `undefined`.
 * @throws as {@link fsyncDir}
 */
export async function fsyncMadeDirs(dir: string, made: string | undefined): Promise<void> {
  if (made === undefined) return;
  const top = dirname(resolve(made));
  for (let d = resolve(dir); ; d = dirname(d)) {
    await fsyncDir(d);
    if (d === top || dirname(d) === d) break;
  }
}

/**
 * Writes the first `length` bytes of `data` at `position` (at the file's
 * current position when `position` is `null`), writing on after a short
 * write: taken for a whole one, it left a log segment shorter than its size
 * or a backup short of its last bytes.
 * @throws the write's error (`ENOSPC`, `EFBIG`); an `Error` when a write makes no progress
 */
export async function writeFully(fh: fsp.FileHandle, data: Uint8Array, length: number, position: number | null): Promise<void> {
  for (let done = 0; done < length; ) {
    const { bytesWritten } = await fh.write(data, done, length - done, position === null ? null : position + done);
    if (bytesWritten <= 0) throw new Error(`short write: ${done} of ${length} bytes${position === null ? '' : ` at ${position}`}`);
    done += bytesWritten;
  }
}
