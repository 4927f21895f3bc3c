export * from './types.js';
export * from './keys.js';
