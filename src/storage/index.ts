export * from './log-storage.js';
export * from './keys.js';
export * from './level-log-storage.js';
export * from './crash-level.js';
export * from './file-log-storage.js';
