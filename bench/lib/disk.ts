// The disk's floor for the Raft log's synced appends, measured the way
// FileLogStorage writes them, so that a benchmark can print a latency
// against the machine's limit as well as against a peer.
import { closeSync, constants, fsyncSync, mkdtempSync, openSync, rmSync, write, writeSync } from 'node:fs';
import { join } from 'node:path';

/** How {@link syncedAppendRounds} writes. */
export interface SyncedAppendOptions {
  /** Files written at once in each round (one per member). */
  files: number;
  /** A round ends when this many of its writes are done (a quorum: 2 of 3). */
  quorum: number;
  /** Rounds, one at a time. */
  rounds: number;
  /** Bytes appended to each file per round. */
  bytes: number;
  /**
   * `inline`: a blocking write on the calling thread (FileLogStorage with
   * one storage open in the process); `pool`: through libuv's thread pool,
   * the files' writes overlapping (several open, as with the members of a
   * cluster in one process).
   */
  mode: 'inline' | 'pool';
}

const ZEROED_BYTES = 16 * 1024 * 1024;

/**
 * Appends `bytes` to each of `files` files preallocated with zeros and
 * opened `O_DSYNC`, as FileLogStorage appends a record to its segment, one
 * round at a time. Returns, sorted, the ms from the start of each round until
 * `quorum` of its writes were done. A directory is made below `parent` and
 * removed.
 * @throws Error when the platform has no `O_DSYNC`, or `rounds × bytes`
 *   exceeds the 16 MiB preallocated per file
 */
export async function syncedAppendRounds(parent: string, o: SyncedAppendOptions): Promise<number[]> {
  if (constants.O_DSYNC === undefined) throw new Error('bench/lib/disk: this platform has no O_DSYNC');
  if (o.rounds * o.bytes > ZEROED_BYTES) throw new Error('bench/lib/disk: rounds × bytes exceeds the preallocated 16 MiB');
  if (o.mode === 'inline' && o.files !== 1) throw new Error('bench/lib/disk: inline writes take one file');
  const dir = mkdtempSync(join(parent, 'disk-floor-'));
  const fds: number[] = [];
  try {
    const zeros = Buffer.alloc(1024 * 1024);
    for (let f = 0; f < o.files; f++) {
      const path = join(dir, `${f}.wal`);
      const fd = openSync(path, 'w');
      for (let at = 0; at < ZEROED_BYTES; at += zeros.length) writeSync(fd, zeros, 0, zeros.length, at);
      fsyncSync(fd);
      closeSync(fd);
      fds.push(openSync(path, constants.O_RDWR | constants.O_DSYNC));
    }
    const record = Buffer.alloc(o.bytes, 0x2a);
    const out: number[] = [];
    for (let r = 0; r < o.rounds; r++) {
      const at = r * o.bytes;
      const t0 = performance.now();
      if (o.mode === 'inline') {
        writeSync(fds[0]!, record, 0, o.bytes, at);
        out.push(performance.now() - t0);
        // one turn of the event loop between appends, as FileLogStorage gives
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      await new Promise<void>((resolve, reject) => {
        let done = 0;
        for (const fd of fds) {
          write(fd, record, 0, o.bytes, at, (err) => {
            if (err !== null) return reject(err);
            if (++done === o.quorum) out.push(performance.now() - t0);
            if (done === fds.length) resolve();
          });
        }
      });
    }
    return out.sort((a, b) => a - b);
  } finally {
    for (const fd of fds) closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}
