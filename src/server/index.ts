export * from './kv.js';
export * from './requests.js';
export * from './kv-node.js';
export * from './maintenance.js';
export * from './version.js';
