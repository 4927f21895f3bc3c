/**
 * Encoding of the values stored in the backend under each revision: a
 * key-value as the positional array `[key, createRevision, modRevision,
 * version, value, lease]` (msgpack), a tombstone as `[key]`.
 * @module
 */
import { pack, unpack } from '../codec/index.js';
import { ErrorCode, FaultError } from '../errors.js';
import type { KeyValue } from '../mvccpb/index.js';

const EMPTY = new Uint8Array(0);

function corrupt(what: string): never {
  throw new FaultError(ErrorCode.INTERNAL, `mvcc: corrupt ${what} in the backend`);
}

/**
 * The bytes of a decoded field as a new, plain `Uint8Array`: the decoder
 * gives views into the buffer it was handed, which may be the database's
 * own stored copy (memory-level hands that out) or a record still waiting
 * to be written, so a caller changing what it got would change the store.
 */
function u8(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) corrupt(what);
  return new Uint8Array(v);
}

function int(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) corrupt(what);
  return v;
}

/** Encodes a key-value for the backend. */
export function encodeKeyValue(kv: KeyValue): Uint8Array {
  return pack([kv.key, kv.createRevision, kv.modRevision, kv.version, kv.value, kv.lease]);
}

/** Encodes the record of a tombstone (the key only). */
export function encodeTombstone(key: Uint8Array): Uint8Array {
  return pack([key]);
}

/**
 * Decodes a backend record into arrays of its own (see `u8`). A tombstone
 * record decodes to a key-value with only `key` set (and `modRevision` 0;
 * callers patch it from the revision).
 * @throws FaultError `QUORUMKV_INTERNAL` on a malformed record
 */
export function decodeKeyValue(buf: Uint8Array): KeyValue {
  const t = unpack(buf);
  if (!Array.isArray(t)) corrupt('record');
  if (t.length === 1) {
    return { key: u8(t[0], 'key'), createRevision: 0, modRevision: 0, version: 0, value: EMPTY, lease: 0 };
  }
  if (t.length !== 6) corrupt('record');
  return {
    key: u8(t[0], 'key'),
    createRevision: int(t[1], 'createRevision'),
    modRevision: int(t[2], 'modRevision'),
    version: int(t[3], 'version'),
    value: u8(t[4], 'value'),
    lease: int(t[5], 'lease'),
  };
}
