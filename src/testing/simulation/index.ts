/**
 * The deterministic cluster simulation of `quorumkv/testing`: `Simulation`,
 * its recording clients, faults, traffic and scenarios. See docs/testing.md,
 * "Simulation".
 * @module
 */
export * from './simulation.js';
export * from './simulation-error.js';
export { SimClient, definitelyNotApplied, type SimClientOptions, type LeaseRecord } from './sim-client.js';
export * from './sim-random.js';
export * from './faults.js';
export * from './invariants.js';
export { NEVER_DUPLICATED } from './sim-transport.js';
export * from './traffic.js';
export * from './scenario.js';
