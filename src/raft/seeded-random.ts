/**
 * The default source of election-timeout jitter: a small deterministic
 * generator seeded from the node id, so that the Raft core never touches
 * the platform's random source and a run can be replayed. Nodes with different ids get
 * different sequences, which is what spreads their timeouts.
 * @module
 */

/** FNV-1a, 32 bits, over the UTF-16 code units of `s`. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * A mulberry32 generator seeded from `seed`: returns uniform numbers in
 * `[0, 1)`. Good enough for timeout jitter; not for anything else.
 */
export function seededRandom(seed: string): () => number {
  let a = fnv1a(seed);
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
