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

const ZERO_CHUNK = Buffer.alloc(1024 * 1024);

/**
 * Appends `bytes` to each of `files` files preallocated with zeros and
 * opened `O_DSYNC`, as FileLogStorage appends a record to its segment, one
 * round at a time. Returns, sorted, the ms from the start of each round until
 * `quorum` of its writes were done. A directory is made below `parent` and
 * removed.
 *
 * All the writes of a round start at once and any `quorum` of them end it:
 * a lower bound for a cluster's commit, where the followers' writes start a
 * message later and the leader's own is always one of the two.
 * @throws Error when the platform has no `O_DSYNC`, or a write fails
 */
export async function syncedAppendRounds(parent: string, o: SyncedAppendOptions): Promise<number[]> {
  if (constants.O_DSYNC === undefined) throw new Error('bench/lib/disk: this platform has no O_DSYNC');
  if (o.mode === 'inline' && o.files !== 1) throw new Error('bench/lib/disk: inline writes take one file');
  // no more zeros than the rounds append (whole MiB): a burst of writes just
  // before the measurement that follows would disturb it
  const zeroed = Math.ceil((o.rounds * o.bytes) / ZERO_CHUNK.length) * ZERO_CHUNK.length;
  const dir = mkdtempSync(join(parent, 'disk-floor-'));
  const fds: number[] = [];
  try {
    for (let f = 0; f < o.files; f++) {
      const path = join(dir, `${f}.wal`);
      const fd = openSync(path, 'w');
      try {
        for (let at = 0; at < zeroed; at += ZERO_CHUNK.length) writeSync(fd, ZERO_CHUNK, 0, ZERO_CHUNK.length, at);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
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
        let failed: Error | undefined;
        for (const fd of fds) {
          write(fd, record, 0, o.bytes, at, (err) => {
            failed ??= err ?? undefined;
            if (++done === o.quorum && failed === undefined) out.push(performance.now() - t0);
            // settled once every write of the round is, so that no write is
            // in flight when the descriptors are closed
            if (done === fds.length) {
              if (failed !== undefined) reject(failed);
              else resolve();
            }
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
