export * from './clock.js';
export * from './state-machine.js';
export * from './raft-node.js';
export { wrapSnapshot, unwrapSnapshot, type SnapshotEnvelope } from './envelope.js';
