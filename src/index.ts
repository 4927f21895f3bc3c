/**
 * quorumkv: etcd as an npm library. The main entry point exports the
 * cluster member ({@link KvNode}) with its {@link KV} interface, the Raft
 * node for user state machines ({@link RaftNode}), storage, transports, the
 * pure Raft core, and the error types. Testing tools are in
 * `quorumkv/testing`.
 * @module
 */
export * from './errors.js';
export * from './raftpb/index.js';
export * from './mvccpb/index.js';
export * from './raft/index.js';
export * from './codec/index.js';
export * from './storage/index.js';
export * from './transport/index.js';
export * from './node/index.js';
export * from './lease/index.js';
export * from './mvcc/index.js';
export * from './server/index.js';
export * from './concurrency/index.js';
// Names exported by two layers: the public one wins; the other is aliased.
export type { SnapshotStatus } from './raft/index.js';
export type { ApplyEntry } from './node/index.js';
export type { ApplyEntry as StoreApplyEntry, WatchOptions as StoreWatchOptions } from './mvcc/index.js';
export type { WatchOptions } from './server/index.js';
