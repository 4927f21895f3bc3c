/**
 * The shape checks of entries and snapshots handed to a log storage: the
 * ones {@link MemoryStorage} and the durable storages (`src/storage`) share.
 * @module
 */
import { ErrorCode, UsageError } from '../errors.js';
import { describeValue, viewProblem } from '../arg-values.js';
import type { Entry, Snapshot } from '../raftpb/index.js';

/** A Raft index or term: a safe integer >= 0. @internal */
export function isIndex(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/**
 * Why `v` cannot be kept as the bytes of an entry or a snapshot, for a
 * message after their name (`entry 3 has data that ...`), or `undefined`
 * when it can: it must be a `Uint8Array` whose bytes can be read, not a
 * Proxy of one (it passes `instanceof`) nor a view of a detached or shrunk
 * buffer (see `viewProblem`). A storage that kept such data failed where it
 * encoded it (a durable storage with a `QUORUMKV_STORAGE_IO` fault), or
 * handed it out to fail later (`MemoryStorage`).
 * @internal
 */
export function dataProblem(v: unknown): string | undefined {
  if (!(v instanceof Uint8Array)) return `not a Uint8Array (got ${describeValue(v)})`;
  return viewProblem(v);
}

/**
 * The data of a snapshot a storage is handed (the message reads
 * `snapshot data is ...`).
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `data` is not a
 *   `Uint8Array` whose bytes can be read: not one at all, a Proxy of one, or
 *   a view of a detached or shrunk buffer
 * @internal
 */
export function checkSnapshotData(data: unknown): asserts data is Uint8Array {
  const problem = dataProblem(data);
  if (problem !== undefined) throw new UsageError(ErrorCode.INVALID_ARGUMENT, `snapshot data is ${problem}`);
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

/**
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for malformed snapshot
 *   metadata or data, its ConfState included (voters and learners as arrays
 *   of ids): the stored snapshot must decode again on load; data that is
 *   not a `Uint8Array`, or is a Proxy of one or a view of a detached or
 *   shrunk buffer (its bytes cannot be read: it failed where it was written)
 */
export function checkSnapshot(s: Snapshot): void {
  const m = (s as Partial<Snapshot> | null)?.metadata;
  if (m === null || typeof m !== 'object' || !isIndex(m.index) || !isIndex(m.term)) {
    throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'snapshot needs metadata with a non-negative index and term');
  }
  checkSnapshotData(s.data);
  const cs = m.confState as Partial<Snapshot['metadata']['confState']> | null | undefined;
  if (cs === null || typeof cs !== 'object' || !isStringArray(cs.voters) || !isStringArray(cs.learners)) {
    throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'snapshot needs a ConfState whose voters and learners are arrays of member ids');
  }
}

/**
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when entries are not an
 *   array, are not contiguous, have an index below 1 or a term that
 *   decreases, or an entry has a type other than `'Normal'` and
 *   `'ConfChange'` or data that is not a `Uint8Array` (such an entry was
 *   written, and the record holding it failed to decode on load), or is a
 *   Proxy of one or a view of a detached or shrunk buffer (its bytes cannot
 *   be read: it failed where it was encoded)
 */
export function checkEntries(entries: readonly Entry[]): void {
  if (!Array.isArray(entries)) throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'entries must be an array');
  let prev: Entry | undefined;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as Entry | null | undefined;
    if (e === null || typeof e !== 'object' || !isIndex(e.index) || e.index < 1 || !isIndex(e.term)) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `entry has an invalid index ${describeValue(e?.index)} or term ${describeValue(e?.term)}`);
    }
    if (e.type !== 'Normal' && e.type !== 'ConfChange') {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `entry ${e.index} has type ${describeValue(e.type)}, not Normal or ConfChange`);
    }
    const problem = dataProblem(e.data);
    if (problem !== undefined) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `entry ${e.index} has data that is ${problem}`);
    }
    if (prev !== undefined) {
      if (e.index !== prev.index + 1) {
        throw new UsageError(
          ErrorCode.INVALID_ARGUMENT,
          `entries are not contiguous: index ${e.index} follows index ${prev.index}`,
        );
      }
      if (e.term < prev.term) {
        throw new UsageError(
          ErrorCode.INVALID_ARGUMENT,
          `entry ${e.index} has term ${e.term}, below the term ${prev.term} of entry ${prev.index}`,
        );
      }
    }
    prev = e;
  }
}
