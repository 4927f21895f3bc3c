/**
 * Size accounting for entries, as the Raft core's byte caps count it
 * (`maxSizePerMsg`, `maxCommittedSizePerReady`, `maxUncommittedEntriesSize`):
 * the payload bytes (`data.length`), like etcd's `payloadSize`.
 * @module
 */
import type { Entry } from '../raftpb/index.js';

/** Sum of the payload bytes of `ents`. */
export function payloadsSize(ents: readonly Entry[]): number {
  let s = 0;
  for (let i = 0; i < ents.length; i++) s += ents[i]!.data.length;
  return s;
}

/**
 * The longest prefix of `ents` whose payload fits in `maxSize` bytes; the
 * first entry is always kept, even when it alone is larger (so that progress
 * is always possible). Returns `ents` itself when nothing is cut.
 * @param maxSize - bytes; `Infinity` for no limit
 */
export function limitSize(ents: Entry[], maxSize: number): Entry[] {
  if (ents.length === 0) return ents;
  let size = ents[0]!.data.length;
  for (let i = 1; i < ents.length; i++) {
    size += ents[i]!.data.length;
    if (size > maxSize) return ents.slice(0, i);
  }
  return ents;
}
