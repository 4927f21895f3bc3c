/**
 * The deterministic cluster simulation of `quorumkv/testing`: `Simulation`,
 * its clients, faults and checks. See docs/testing.md, "Simulation".
 * @module
 */
export * from './simulation.js';
export * from './simulation-error.js';
export * from './sim-client.js';
export * from './sim-random.js';
export * from './faults.js';
export * from './trace.js';
export * from './invariants.js';
export * from './node-gate.js';
export * from './sim-transport.js';
export * from './recorded-watch.js';
export * from './committed-history.js';
export * from './checked-history.js';
export * from './traffic.js';
export * from './scenario.js';
