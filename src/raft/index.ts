/**
 * The pure Raft core: {@link RawNode}, {@link MemoryStorage}, the contract
 * types, and the encoding of ConfChange entry data. See `docs/raft.md`.
 * @module
 */
export * from './types.js';
export { RawNode } from './raw-node.js';
export { MemoryStorage } from './memory-storage.js';
export { encodeConfChangeData, decodeConfChangeData } from './conf-change-codec.js';
