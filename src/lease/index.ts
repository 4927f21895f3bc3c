export * from './lease.js';
export * from './lessor.js';
