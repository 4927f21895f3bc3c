// Key helpers of mvccpb: prefix range ends (etcd's GetPrefixRangeEnd) and
// byte order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bytesEqual, compareBytes, isRangeEndAll, prefixEnd, RANGE_END_ALL, toBytes } from '../../src/mvccpb/index.js';

test('prefixEnd increments the last byte below 0xff and drops the rest', () => {
  const cases: { prefix: number[]; want: number[] }[] = [
    { prefix: [0x61], want: [0x62] },
    { prefix: [0x61, 0x62], want: [0x61, 0x63] },
    { prefix: [0x61, 0xff], want: [0x62] },
    { prefix: [0x61, 0xff, 0xff], want: [0x62] },
    { prefix: [0xff, 0xff], want: [0x00] }, // no key is greater: "every key >= prefix"
    { prefix: [], want: [0x00] },
    { prefix: [0x00], want: [0x01] },
  ];
  for (const c of cases) assert.deepEqual(Array.from(prefixEnd(new Uint8Array(c.prefix))), c.want, JSON.stringify(c.prefix));
  assert.deepEqual(Array.from(prefixEnd('config/')), Array.from(toBytes('config0')));
});

test('byte order and equality', () => {
  assert.ok(compareBytes(toBytes('a'), toBytes('b')) < 0);
  assert.ok(compareBytes(toBytes('ab'), toBytes('a')) > 0);
  assert.ok(compareBytes(new Uint8Array([0xff]), toBytes('z')) > 0);
  assert.equal(compareBytes(toBytes('x'), toBytes('x')), 0);
  assert.equal(bytesEqual(toBytes('é'), new Uint8Array([0xc3, 0xa9])), true);
  assert.equal(isRangeEndAll(RANGE_END_ALL), true);
  assert.equal(isRangeEndAll(new Uint8Array(0)), false);
  assert.equal(isRangeEndAll(undefined), false);
});

test('prefixEnd of a Node Buffer returns a new array and leaves the Buffer as it was', () => {
  // Buffer#slice is a view of the Buffer, not a copy as Uint8Array#slice is
  const prefix = Buffer.from('cfg/a');
  const end = prefixEnd(prefix);
  assert.equal(prefix.toString(), 'cfg/a');
  assert.deepEqual(Array.from(end), Array.from(toBytes('cfg/b')));
  const ff = Buffer.from([0x61, 0xff]);
  assert.deepEqual(Array.from(prefixEnd(ff)), [0x62]);
  assert.deepEqual(Array.from(ff), [0x61, 0xff]);
});
