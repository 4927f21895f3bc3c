// keyFromBytes and compareKeys: keys that are not UTF-8 (written with
// surrogateescape) stay distinct and keep etcd's byte order.
//
// fast-check prints the seed of a failing run; replay it with
//   QUORUMKV_SEED=<seed> node scripts/run-tests.mjs test/testing/key-bytes.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compareBytes } from '../../src/mvccpb/index.js';
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import { compareKeys, describeKeyRange, inKeyRange, keyFromBytes, prefixRange, prefixRangeEnd } from '../../src/testing/index.js';

const seedEnv = process.env['QUORUMKV_SEED'];
const params = { numRuns: 2000, ...(seedEnv ? { seed: Number(seedEnv) | 0 } : {}) };

// bytes that are often UTF-8 and often not: ASCII, lead and continuation bytes, the bytes no character uses
const byte = fc.oneof(
  fc.integer({ min: 0x61, max: 0x62 }),
  fc.integer({ min: 0x80, max: 0xbf }),
  fc.constantFrom(0xc0, 0xc1, 0xc2, 0xd0, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xfe, 0xff),
);
const bytes = fc.oneof(
  fc.array(byte, { maxLength: 6 }).map((a) => new Uint8Array(a)),
  fc.string({ unit: 'binary', maxLength: 4 }).map((s) => new TextEncoder().encode(s)),
);
const sign = (n: number): number => Math.sign(n);

test('keyFromBytes is the UTF-8 string for UTF-8 bytes', () => {
  assert.equal(keyFromBytes(new TextEncoder().encode('cfg/п\u{1F3FF}')), 'cfg/п\u{1F3FF}');
  assert.equal(keyFromBytes(new Uint8Array([0x61, 0xff, 0xd0])), 'a\udcff\udcd0');
});

test('keyFromBytes: distinct bytes, distinct keys, ordered by compareKeys as etcd orders the bytes', () => {
  fc.assert(
    fc.property(bytes, bytes, (x, y) => {
      const a = keyFromBytes(x);
      const b = keyFromBytes(y);
      assert.equal(a === b, compareBytes(x, y) === 0);
      assert.equal(sign(compareKeys(a, b)), sign(compareBytes(x, y)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
    }),
    params,
  );
});

test('a range of bytes that are not UTF-8 holds the keys the bytes hold', () => {
  fc.assert(
    fc.property(bytes, bytes, bytes, (k, end, x) => {
      fc.pre(end.length > 0 && !(end.length === 1 && end[0] === 0));
      const inside = compareBytes(x, k) >= 0 && compareBytes(x, end) < 0;
      assert.equal(inKeyRange({ key: keyFromBytes(k), rangeEnd: keyFromBytes(end) }, keyFromBytes(x)), inside);
    }),
    params,
  );
});

test('keyFromBytes, compareKeys, prefixRange and prefixRangeEnd refuse an argument of the wrong type with QUORUMKV_INVALID_ARGUMENT', () => {
  const invalid = (fn: () => unknown, what: string): void =>
    assert.throws(fn, (e: unknown) => isQuorumError(e) && e.code === ErrorCode.INVALID_ARGUMENT, what);
  const loose = (v: unknown): never => v as never;
  for (const v of [null, undefined, 'ab', [0x61], 5]) invalid(() => keyFromBytes(loose(v)), `keyFromBytes(${String(v)})`);
  for (const v of [null, undefined, 5, new Uint8Array([0x61])]) {
    invalid(() => compareKeys(loose(v), 'a'), `compareKeys(${String(v)}, "a")`);
    invalid(() => compareKeys('a', loose(v)), `compareKeys("a", ${String(v)})`);
    invalid(() => compareKeys(loose(v), loose(v)), `compareKeys(${String(v)}, ${String(v)})`);
    invalid(() => prefixRange(loose(v)), `prefixRange(${String(v)})`);
    invalid(() => prefixRangeEnd(loose(v)), `prefixRangeEnd(${String(v)})`);
  }
  assert.equal(keyFromBytes(Buffer.from('ab')), 'ab', 'a Buffer is a Uint8Array');
});

test('inKeyRange and describeKeyRange refuse a range that is not a KeyRange, and inKeyRange a key that is not a string, with QUORUMKV_INVALID_ARGUMENT', () => {
  const invalid = (fn: () => unknown, what: string): void =>
    assert.throws(fn, (e: unknown) => isQuorumError(e) && e.code === ErrorCode.INVALID_ARGUMENT, what);
  const loose = (v: unknown): never => v as never;
  for (const r of [null, undefined, 'a', 5, {}, { key: 5 }, { key: null }, { key: 'a', rangeEnd: 5 }, { key: 'a', rangeEnd: null }]) {
    invalid(() => inKeyRange(loose(r), 'a'), `inKeyRange(${JSON.stringify(r)}, "a")`);
    invalid(() => describeKeyRange(loose(r)), `describeKeyRange(${JSON.stringify(r)})`);
  }
  for (const k of [null, undefined, 5, new Uint8Array([0x61])]) {
    invalid(() => inKeyRange({ key: 'a' }, loose(k)), `inKeyRange({ key: "a" }, ${String(k)})`);
    invalid(() => inKeyRange({ key: 'a', rangeEnd: 'b' }, loose(k)), `inKeyRange(["a", "b"), ${String(k)})`);
  }
  // well-formed ranges still work
  assert.equal(inKeyRange({ key: 'a' }, 'a'), true);
  assert.equal(inKeyRange({ key: 'a', rangeEnd: undefined }, 'b'), false);
  assert.equal(inKeyRange({ key: 'a', rangeEnd: '\0' }, 'z'), true);
  assert.equal(describeKeyRange({ key: 'a', rangeEnd: 'b' }), '["a", "b")');
});
