/**
 * The pure Raft core: {@link RawNode}, {@link MemoryStorage} and the
 * contract types. See `docs/raft.md`.
 * @module
 */
export * from './types.js';
export { RawNode } from './raw-node.js';
export { MemoryStorage } from './memory-storage.js';
export { encodeConfChangeData, decodeConfChangeData } from './conf-change-codec.js';
export { seededRandom } from './seeded-random.js';
export type { VoteResult } from './quorum/majority-config.js';
