export * from './wire.js';
export * from './crc.js';
