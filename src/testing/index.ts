/**
 * `quorumkv/testing`: tools to test code built on quorumkv, and quorumkv
 * itself: a history recorder, a linearizability checker with register and
 * KV models, and a watch-guarantee checker. See docs/testing.md.
 * @module
 */
export * from './history.js';
export * from './key-range.js';
export * from './models/model.js';
export * from './models/register.js';
export * from './models/kv-types.js';
export * from './models/kv.js';
export * from './models/kv-partition.js';
export * from './models/kv-proofs.js';
export * from './linearizability/result.js';
export * from './linearizability/search.js';
export * from './linearizability/check.js';
export * from './watch-checker.js';
export * from './recording-kv.js';
export * from './simulation/index.js';
