/**
 * Coordination recipes on the public {@link KV} interface, modelled on etcd's
 * `client/v3/concurrency` and `experimental/recipes` packages: sessions,
 * locks, elections, barriers, queues and software transactional memory.
 * See `docs/concurrency.md` for what each one guarantees and what it does not.
 * @module
 */
export * from './clock.js';
export * from './session.js';
export * from './mutex.js';
export * from './rw-mutex.js';
export * from './election.js';
export * from './stm.js';
export * from './barrier.js';
export * from './double-barrier.js';
export * from './queue.js';
export * from './priority-queue.js';
