// How argument checks name a refused value (src/arg-values.ts): a short
// rendering that never throws, runs none of the value's conversions or
// getters, and is never longer than 80 characters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DESCRIBE_JSON_MAX_CHARS, describeJson, describeValue } from '../src/arg-values.js';

/** The longest rendering, its ellipsis included. */
const MAX = 80;

test('describeValue names the kind of an object without calling a Symbol.toStringTag getter of the caller', () => {
  // before: Object.prototype.toString read the tag, which ran the getter
  // (and named the value after whatever it returned)
  const ran: string[] = [];
  const own = {
    get [Symbol.toStringTag](): string {
      ran.push('own');
      return 'Sneaky';
    },
  };
  class Tagged {
    get [Symbol.toStringTag](): string {
      ran.push('prototype');
      throw new Error('the getter ran');
    }
  }
  assert.equal(describeValue(own), 'an object');
  assert.equal(describeValue(new Tagged()), 'an object');
  assert.deepEqual(ran, []);
});

test('describeValue names built-in kinds and tags declared as data', () => {
  class Named {
    static {
      Object.defineProperty(this.prototype, Symbol.toStringTag, { value: 'Named' });
    }
  }
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  const cases: [unknown, string][] = [
    [{}, 'an object'],
    [Object.create(null), 'an object'],
    [[1, 2], 'an array'],
    [new Proxy([1], {}), 'an array'],
    [new Uint8Array(2), 'a Uint8Array'],
    [Buffer.from('x'), 'a Uint8Array'],
    [new Float64Array(1), 'a Float64Array'],
    [new Proxy(new Uint8Array(2), {}), 'an object'],
    [new Map(), 'a Map'],
    [new ArrayBuffer(1), 'an ArrayBuffer'],
    [Promise.resolve(), 'a Promise'],
    [new Date(0), 'a Date'],
    [/x/, 'a RegExp'],
    [new Error('e'), 'an Error'],
    [new Named(), 'a Named'],
    [revoked.proxy, 'an object'],
    [new Proxy({}, { get: () => { throw new Error('trap'); } }), 'an object'],
    [null, 'null'],
    [() => 1, 'a function'],
    [5n, '5n'],
    [Symbol('s'), 'Symbol(s)'],
    [Number.NaN, 'NaN'],
    ['short', 'short'],
  ];
  for (const [v, want] of cases) assert.equal(describeValue(v), want, want);
});

test(`describeValue is never longer than ${MAX} characters`, () => {
  // before: a Symbol's description, a BigInt or a tag came out whole
  const long = 'x'.repeat(10_000);
  const values: unknown[] = [
    Symbol(long),
    10n ** 1000n,
    { [Symbol.toStringTag]: long },
    long,
    '😀'.repeat(100),
  ];
  for (const v of values) {
    const s = describeValue(v);
    assert.ok(s.length <= MAX, `${s.length} characters: ${s.slice(0, 20)}`);
    assert.ok(s.endsWith('...'), s);
    assert.doesNotMatch(s, /[\uD800-\uDBFF](?![\uDC00-\uDFFF])/, 'no half of a surrogate pair');
  }
  assert.equal(describeValue(long), `${'x'.repeat(64)}...`, 'a string is cut after 64 characters, as before');
});

test('describeJson is cut to DESCRIBE_JSON_MAX_CHARS: a value of a megabyte made a message of a megabyte', () => {
  const long = describeJson({ pad: 'y'.repeat(1_000_000) });
  assert.equal(long.length, DESCRIBE_JSON_MAX_CHARS);
  assert.ok(long.startsWith('{"pad":"yyy') && long.endsWith('...'), long);
  assert.equal(describeJson({ a: 1 }), '{"a":1}');
  assert.equal(describeJson(Array(100_000).fill(0)).length, DESCRIBE_JSON_MAX_CHARS);
});
