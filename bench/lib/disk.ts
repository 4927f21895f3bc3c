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
 * Creates `path` with at least `bytes` zeros (whole MiB), fsynced, as
 * FileLogStorage preallocates a segment, and opens it `O_RDWR | O_DSYNC`.
 * @returns the descriptor
 */
function openPreallocated(path: string, bytes: number): number {
  const zeroed = Math.ceil(bytes / ZERO_CHUNK.length) * ZERO_CHUNK.length;
  const fd = openSync(path, 'w');
  try {
    for (let at = 0; at < zeroed; at += ZERO_CHUNK.length) writeSync(fd, ZERO_CHUNK, 0, ZERO_CHUNK.length, at);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return openSync(path, constants.O_RDWR | constants.O_DSYNC);
}

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
  const dir = mkdtempSync(join(parent, 'disk-floor-'));
  const fds: number[] = [];
  try {
    // no more zeros than the rounds append (whole MiB): a burst of writes just
    // before the measurement that follows would disturb it
    for (let f = 0; f < o.files; f++) fds.push(openPreallocated(join(dir, `${f}.wal`), o.rounds * o.bytes));
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

/**
 * The floor of a put's commit for three members in one process, as the
 * machine sets it with no Raft or store work: each round, the "leader"
 * appends `bytes` through the thread pool to its file (preallocated with
 * zeros, `O_DSYNC`) and, one turn of the event loop later (the message),
 * each of two "followers" appends to its own file through the pool and
 * answers one turn after its append is done; the round ends one turn after
 * the leader's own append and one answer are in (the apply). Each file's
 * appends are one at a time, as a member's are; a follower's append may
 * still be running when the next round starts. Returns, sorted, the ms of
 * each of `rounds` rounds (after as many untimed ones). A directory is made
 * below `parent` and removed.
 *
 * Against {@link syncedAppendRounds}, this adds the hand-offs a put needs
 * between the event loop and the pool threads (three appends submitted and
 * three completions delivered, and the turns between members) on a machine
 * whose cores are shared with the disk's own work.
 * @throws Error when the platform has no `O_DSYNC`, or a write fails
 */
export async function replicatedAppendRounds(parent: string, o: { rounds: number; bytes: number }): Promise<number[]> {
  if (constants.O_DSYNC === undefined) throw new Error('bench/lib/disk: this platform has no O_DSYNC');
  const dir = mkdtempSync(join(parent, 'disk-handoff-'));
  const fds: number[] = [];
  const chains: Promise<void>[] = [];
  try {
    for (let f = 0; f < 3; f++) {
      // room for the untimed rounds and the timed ones
      fds.push(openPreallocated(join(dir, `${f}.wal`), 2 * o.rounds * o.bytes));
      chains.push(Promise.resolve());
    }
    const offsets = [0, 0, 0];
    const append = (f: number): Promise<void> => {
      const next = chains[f]!.then(
        () =>
          new Promise<void>((resolve, reject) => {
            const at = offsets[f]!;
            offsets[f] = at + o.bytes;
            // a fresh buffer each time, as a member frames each record anew
            write(fds[f]!, Buffer.alloc(o.bytes, 0x2a), 0, o.bytes, at, (err) => (err === null ? resolve() : reject(err)));
          }),
      );
      chains[f] = next;
      return next;
    };
    const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
    const round = async (): Promise<number> => {
      const t0 = performance.now();
      const own = append(0);
      const answers = [1, 2].map(async (f) => {
        await turn();
        await append(f);
        await turn();
      });
      await Promise.all([own, Promise.any(answers)]);
      await turn();
      return performance.now() - t0;
    };
    for (let r = 0; r < o.rounds; r++) await round();
    const out: number[] = [];
    for (let r = 0; r < o.rounds; r++) out.push(await round());
    return out.sort((a, b) => a - b);
  } finally {
    await Promise.allSettled(chains);
    for (const fd of fds) closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}
