/**
 * Durable directory entries: a file or directory just made is in its
 * parent's entries, which outlive a power loss only once the parent itself
 * is fsynced (POSIX leaves it to the caller; etcd's `fileutil.Fsync` of the
 * directory after a rename or a create is the same rule). Internal: not
 * re-exported by the storage index.
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
