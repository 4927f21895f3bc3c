// The backup file writer: a write(2) that writes less than asked (a disk
// about to fill up, a file size limit) must not leave a short backup that
// snapshotSave reports as saved.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile, readdir, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { openBackupFile, readBackupFile, writeBackupFile } from '../../src/server/backup-file.js';
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import { backupSource } from './fixtures/backup-source.js';
import { tempDir } from './ops-cluster.js';

/** Length of the payload of the last frame of a backup file (frames: [u32 length][u32 crc][payload], after 8 bytes of magic). */
function lastPayloadLength(file: Uint8Array): number {
  const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  let pos = 8;
  let len = 0;
  while (pos < file.length) {
    len = dv.getUint32(pos);
    pos += 8 + len;
  }
  return len;
}

test('a backup whose last write is cut short by a file size limit fails with QUORUMKV_STORAGE_IO and leaves no file', { skip: process.platform === 'win32' ? 'needs ulimit' : false }, async () => {
  const { dir, cleanup } = await tempDir('backup-short');
  try {
    // a value length that puts a 1 KiB boundary inside the end frame's
    // payload, the file's last write: under `ulimit -f` at that boundary it
    // is written in part (Node ignores SIGXFSZ), and the call after it fails
    let found: { valueLength: number; limitBlocks: number } | undefined;
    for (let valueLength = 1_000; valueLength < 1_400 && found === undefined; valueLength++) {
      const probe = join(dir, `probe-${valueLength}.qkv`);
      const size = await writeBackupFile(probe, backupSource(valueLength));
      const last = lastPayloadLength(await readFile(probe));
      const limit = Math.floor(size / 1024) * 1024;
      if (limit > size - last && limit < size) found = { valueLength, limitBlocks: limit / 1024 };
    }
    assert.ok(found !== undefined, 'a value length puts a block boundary inside the last write');
    const target = join(dir, 'limited.qkv');
    const fixture = join(import.meta.dirname, 'fixtures', 'write-backup.ts');
    const out = execFileSync(
      'bash',
      ['-c', `ulimit -f ${found.limitBlocks} && exec "$0" --import tsx "$1" "$2" "$3"`, process.execPath, fixture, target, String(found.valueLength)],
      { encoding: 'utf8' },
    );
    const res = JSON.parse(out.trim().split('\n').pop()!) as { ok: boolean; size?: number; code?: string };
    assert.deepEqual(res, { ok: false, code: 'QUORUMKV_STORAGE_IO' }, `the short backup was reported as ${JSON.stringify(res)}`);
    const left = (await readdir(dir)).filter((f) => f.startsWith('limited'));
    assert.deepEqual(left, [], 'neither the backup nor its .part file is left');
  } finally {
    await cleanup();
  }
});

/** `fh`, recording the length of every buffer a read is given. */
function recordingHandle(fh: FileHandle, lengths: number[]): FileHandle {
  return new Proxy(fh, {
    get(target, prop) {
      if (prop === 'read') {
        return (buf: Uint8Array, ...rest: unknown[]) => {
          lengths.push(buf.length);
          return (target.read as (...a: unknown[]) => unknown).call(target, buf, ...rest);
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

test('a damaged frame length is refused as QUORUMKV_CORRUPT_SNAPSHOT without a buffer larger than the file', async () => {
  // the length was checked only against a 256 MiB limit, and a buffer of
  // that length allocated before the read found the file short
  const { dir, cleanup } = await tempDir('backup-length');
  try {
    const good = join(dir, 'good.qkv');
    await writeBackupFile(good, backupSource(100));
    const bytes = Buffer.from(await readFile(good));
    // the header frame's length (after the 8 bytes of magic) set to 200 MiB
    bytes.writeUInt32BE(200 * 1024 * 1024, 8);
    const bad = join(dir, 'bad.qkv');
    await writeFile(bad, bytes);
    const lengths: number[] = [];
    const fh = await openBackupFile(bad);
    try {
      await assert.rejects(
        (async () => {
          for await (const item of readBackupFile(bad, recordingHandle(fh, lengths))) void item;
        })(),
        (e: unknown) => isQuorumError(e, ErrorCode.CORRUPT_SNAPSHOT),
      );
    } finally {
      await fh.close();
    }
    assert.ok(lengths.length > 0, 'the file was read through the handle');
    assert.ok(Math.max(...lengths) <= bytes.length, `a read into a buffer of ${Math.max(...lengths)} bytes, for a file of ${bytes.length}`);
  } finally {
    await cleanup();
  }
});
