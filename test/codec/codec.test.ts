// The codec: msgpackr encodings of the Raft wire types round-trip exactly,
// malformed bytes fail with QUORUMKV_MALFORMED_FRAME, CRC checks catch a
// flipped bit, and a large packed value does not pin a large buffer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkCrc,
  decodeConfChange,
  decodeEntry,
  decodeHardState,
  decodeMessage,
  decodeSnapshot,
  encodeConfChange,
  encodeEntry,
  encodeHardState,
  encodeMessage,
  encodeSnapshot,
  pack,
  unpack,
  withCrc,
} from '../../src/codec/index.js';
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import { unwrapSnapshot, wrapSnapshot } from '../../src/node/envelope.js';
import { decodeConfChangeData, encodeConfChangeData } from '../../src/raft/index.js';
import { message, type Snapshot } from '../../src/raftpb/index.js';

const bytes = (...b: number[]) => new Uint8Array(b);
const snap: Snapshot = { data: bytes(9, 8, 7), metadata: { index: 12, term: 3, confState: { voters: ['a', 'b'], learners: ['c'] } } };

test('every wire type round-trips through its encoding', () => {
  const e = { term: 2, index: 7, type: 'ConfChange' as const, data: bytes(1, 2, 3) };
  assert.deepEqual({ ...decodeEntry(encodeEntry(e)), data: [...decodeEntry(encodeEntry(e)).data] }, { ...e, data: [1, 2, 3] });
  assert.deepEqual(decodeHardState(encodeHardState({ term: 5, vote: 'b', commit: 9 })), { term: 5, vote: 'b', commit: 9 });
  const s = decodeSnapshot(encodeSnapshot(snap));
  assert.deepEqual(s.metadata, snap.metadata);
  assert.deepEqual([...s.data], [9, 8, 7]);
  const m = message({ type: 'MsgApp', to: 'b', from: 'a', term: 4, logTerm: 3, index: 10, commit: 9, entries: [e], snapshot: snap, context: bytes(5), reject: true, rejectHint: 2 });
  const back = decodeMessage(encodeMessage(m));
  assert.equal(back.type, 'MsgApp');
  assert.equal(back.reject, true);
  assert.equal(back.rejectHint, 2);
  assert.deepEqual([...back.context!], [5]);
  assert.equal(back.entries[0]!.index, 7);
  assert.equal(back.snapshot!.metadata.index, 12);
  const cc = { type: 'AddLearnerNode' as const, nodeId: 'd', context: bytes(1) };
  assert.deepEqual({ ...decodeConfChange(encodeConfChange(cc)), context: [1] }, { ...cc, context: [1] });
});

test("the Raft core's conf change bytes decode with the codec", () => {
  const cc = { type: 'RemoveNode' as const, nodeId: 'node-ü' };
  assert.deepEqual(decodeConfChange(encodeConfChangeData(cc)), cc);
});

test('every conf change type, UpdateNode (code 3) included, round-trips through both encoders, which agree', () => {
  for (const type of ['AddNode', 'AddLearnerNode', 'RemoveNode', 'UpdateNode'] as const) {
    const cc = { type, nodeId: 'n', context: bytes(7) };
    assert.deepEqual(Buffer.from(encodeConfChange(cc)), Buffer.from(encodeConfChangeData(cc)), `${type}: the same bytes`);
    assert.deepEqual({ ...decodeConfChangeData(encodeConfChange(cc))!, context: [7] }, { ...cc, context: [7] });
    assert.deepEqual({ ...decodeConfChange(encodeConfChangeData(cc)), context: [7] }, { ...cc, context: [7] });
  }
  assert.equal(encodeConfChangeData({ type: 'UpdateNode', nodeId: 'n' })[1], 3);
});

test('a member id that starts with U+FEFF keeps it through the conf change bytes', () => {
  const cc = { type: 'AddNode' as const, nodeId: '\ufeffa' };
  assert.deepEqual(decodeConfChangeData(encodeConfChangeData(cc)), cc);
  assert.deepEqual(decodeConfChange(encodeConfChangeData(cc)), cc);
});

test('malformed bytes are refused with QUORUMKV_MALFORMED_FRAME', () => {
  const malformed = (e: unknown) => isQuorumError(e, ErrorCode.MALFORMED_FRAME);
  assert.throws(() => decodeMessage(bytes(0xc1)), malformed);
  assert.throws(() => decodeMessage(pack([99, 'a', 'b', 0, 0, 0, [], 0, false, 0, null, null])), malformed);
  assert.throws(() => decodeMessage(pack([3, 'a', 'b', -1, 0, 0, [], 0, false, 0, null, null])), malformed);
  assert.throws(() => decodeEntry(pack([1, 2, 7, bytes()])), malformed);
  assert.throws(() => decodeHardState(pack(['x', 'b', 1])), malformed);
  assert.throws(() => decodeConfChange(pack([5, 'a'])), malformed);
  assert.throws(() => unpack(bytes(0xd9)), malformed);
});

test('a CRC-protected record with a flipped bit is refused with the given code', () => {
  const rec = withCrc(bytes(1, 2, 3, 4));
  assert.deepEqual([...checkCrc(rec, 'test')], [1, 2, 3, 4]);
  const bad = new Uint8Array(rec);
  bad[5]! ^= 0x10;
  assert.throws(() => checkCrc(bad, 'test'), (e: unknown) => isQuorumError(e, ErrorCode.CORRUPT_LOG));
  assert.throws(() => checkCrc(bad, 'test', ErrorCode.CORRUPT_SNAPSHOT), (e: unknown) => isQuorumError(e, ErrorCode.CORRUPT_SNAPSHOT));
  assert.throws(() => checkCrc(bytes(1, 2), 'test'), (e: unknown) => isQuorumError(e, ErrorCode.CORRUPT_LOG));
});

test("a node snapshot's envelope owns its bytes", () => {
  pack([1]); // the packer's buffer now holds something before the envelope
  const out = wrapSnapshot({ addresses: { a: 'h:1' }, data: new Uint8Array([1, 2, 3]) });

test('a large packed value gets its own buffer and later packs do not share a large one', () => {
  const big = pack(new Uint8Array(10 * 1024 * 1024));
  assert.equal(big.buffer.byteLength, big.byteLength, 'the large result owns exactly its bytes');
  const small = pack([1, 2, 3]);
  assert.ok(small.buffer.byteLength <= 64 * 1024, `a small pack views a ${small.buffer.byteLength}-byte buffer`);
  assert.deepEqual(unpack(small), [1, 2, 3]);
  // the packer started over on a small buffer: later small packs share it
  // again instead of each getting a copy of its own
  const next = pack([4, 5]);
  assert.equal(next.buffer, small.buffer, 'the next small pack shares the small buffer');
  assert.deepEqual(unpack(small), [1, 2, 3]);
  assert.deepEqual(unpack(next), [4, 5]);
});

  assert.equal(out.byteOffset, 0);
  assert.equal(out.buffer.byteLength, out.byteLength, 'the envelope is not a view into a larger buffer');
  assert.deepEqual([...unwrapSnapshot(out).data!], [1, 2, 3]);
});

test("a decoded message's entries keep none of the message's bytes alive", () => {
  const small = { term: 2, index: 7, type: 'Normal' as const, data: new Uint8Array(300).fill(7) };
  const large = { term: 2, index: 8, type: 'Normal' as const, data: new Uint8Array(5000).fill(8) };
  const encoded = encodeMessage(message({ type: 'MsgApp', to: 'b', from: 'a', term: 2, logTerm: 2, index: 6, commit: 6, entries: [small, large] }));
  // the message inside a larger buffer, as a frame inside a socket read or a pool slab
  const frame = new Uint8Array(encoded.length + 8192);
  frame.set(encoded, 100);
  const back = decodeMessage(frame.subarray(100, 100 + encoded.length));
  assert.equal(back.entries.length, 2);
  for (const e of back.entries) assert.notEqual(e.data.buffer, frame.buffer, `entry ${e.index} is still a view into the frame`);
  // the large one has a buffer of its own
  assert.equal(back.entries[1]!.data.buffer.byteLength, 5000);
  frame.fill(0);
  assert.ok(back.entries[0]!.data.length === 300 && back.entries[0]!.data.every((b) => b === 7));
  assert.ok(back.entries[1]!.data.length === 5000 && back.entries[1]!.data.every((b) => b === 8));
  // two decoded entries never overlap
  const again = decodeMessage(encoded);
  const a = back.entries[0]!.data;
  const b = again.entries[0]!.data;
  if (a.buffer === b.buffer) assert.ok(a.byteOffset + a.length <= b.byteOffset || b.byteOffset + b.length <= a.byteOffset);
});

test('a snapshot envelope keeps the address of a member whose id is __proto__', () => {
  // the node builds addresses with Object.fromEntries, so the id is an own key
  const addresses = Object.fromEntries([
    ['__proto__', 'h:1'],
    ['__proto_', 'h:2'],
    ['a', 'h:3'],
  ]);
  const env = unwrapSnapshot(wrapSnapshot({ addresses, removed: ['__proto__'] }));
  assert.deepEqual(Object.entries(env.addresses).sort(), [
    ['__proto_', 'h:2'],
    ['__proto__', 'h:1'],
    ['a', 'h:3'],
  ]);
  assert.equal(Object.getPrototypeOf(env.addresses), Object.prototype);
  // a map whose key is not a string is not an address table
  assert.throws(() => unwrapSnapshot(pack([1, new Map([[1, 'h:1']]), null, []])), (err: unknown) => isQuorumError(err) && err.code === ErrorCode.CORRUPT_SNAPSHOT);
});
