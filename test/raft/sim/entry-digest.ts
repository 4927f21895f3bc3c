// Compact identities for entries and for a state machine's history, so that
// the checker compares strings and numbers instead of whole logs.
import type { Entry } from '../../../src/raftpb/index.js';

const latin1 = new TextDecoder('latin1');

/** `term|type|data`: two entries at the same index are the same entry iff their keys are equal. */
export function entryKey(e: Entry): string {
  return `${e.term}|${e.type === 'Normal' ? 'N' : 'C'}|${latin1.decode(e.data)}`;
}

/**
 * The state machine's digest after applying `e` on top of digest `h`
 * (FNV-1a over the previous digest, the index and the entry key). Two nodes
 * that applied the same entries up to an index have the same digest there.
 */
export function chainDigest(h: number, e: Entry): number {
  let x = (h ^ 0x811c9dc5) >>> 0;
  const s = `${e.index}#${entryKey(e)}`;
  for (let i = 0; i < s.length; i++) {
    x ^= s.charCodeAt(i);
    x = Math.imul(x, 0x01000193) >>> 0;
  }
  return x >>> 0;
}
