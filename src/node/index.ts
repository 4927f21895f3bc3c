export * from './clock.js';
export * from './state-machine.js';
export * from './raft-node.js';
