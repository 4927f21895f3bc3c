// Key index and tree index: generations, tombstones, reads at a revision,
// `since`, and compaction (etcd's key_index_test.go cases, written as tables).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { KeyIndex } from '../../src/mvcc/key-index.js';
import { TreeIndex } from '../../src/mvcc/tree-index.js';
import { revisionId } from '../../src/mvcc/revision.js';
import { fromSkey, toSkey } from '../../src/mvcc/skey.js';

/** put(2) put(4) del(6) put(8) put(10) del(12) put(14.0) put(14.1) del(16) */
function sample(): KeyIndex {
  const ki = new KeyIndex('foo');
  ki.put(2, 0);
  ki.put(4, 0);
  assert.equal(ki.tombstone(6, 0), true);
  ki.put(8, 0);
  ki.put(10, 0);
  assert.equal(ki.tombstone(12, 0), true);
  ki.put(14, 0);
  ki.put(14, 1);
  assert.equal(ki.tombstone(16, 0), true);
  return ki;
}

function gens(ki: KeyIndex): string[] {
  return ki.generations.map((g) => g.revs.map(revisionId).join(','));
}

test('a key index records generations, each ending with its tombstone', () => {
  const ki = sample();
  assert.deepEqual(gens(ki), ['2_0,4_0,6_0', '8_0,10_0,12_0', '14_0,14_1,16_0', '']);
  assert.deepEqual(
    ki.generations.map((g) => [revisionId(g.created), g.ver]),
    [['2_0', 3], ['8_0', 3], ['14_0', 3], ['0_0', 0]],
  );
  assert.equal(ki.isLive(), false);
  assert.equal(revisionId(ki.modified), '16_0');
});

test('a tombstone on a key that does not exist now changes nothing', () => {
  const ki = sample();
  assert.equal(ki.tombstone(17, 0), false);
  assert.deepEqual(gens(ki), ['2_0,4_0,6_0', '8_0,10_0,12_0', '14_0,14_1,16_0', '']);
});

test('a put with a revision not above the last one is refused', () => {
  const ki = sample();
  assert.throws(() => ki.put(16, 0), { code: 'QUORUMKV_INTERNAL' });
});

test('get returns the version visible at a revision, or nothing between generations', () => {
  const ki = sample();
  const cases: { rev: number; wantMod?: string; wantCreated?: string; wantVer?: number }[] = [
    { rev: 0 },
    { rev: 1 },
    { rev: 2, wantMod: '2_0', wantCreated: '2_0', wantVer: 1 },
    { rev: 3, wantMod: '2_0', wantCreated: '2_0', wantVer: 1 },
    { rev: 4, wantMod: '4_0', wantCreated: '2_0', wantVer: 2 },
    { rev: 5, wantMod: '4_0', wantCreated: '2_0', wantVer: 2 },
    { rev: 6 },
    { rev: 7 },
    { rev: 8, wantMod: '8_0', wantCreated: '8_0', wantVer: 1 },
    { rev: 11, wantMod: '10_0', wantCreated: '8_0', wantVer: 2 },
    { rev: 12 },
    { rev: 13 },
    { rev: 14, wantMod: '14_1', wantCreated: '14_0', wantVer: 2 },
    { rev: 15, wantMod: '14_1', wantCreated: '14_0', wantVer: 2 },
    { rev: 16 },
    { rev: 100 },
  ];
  for (const c of cases) {
    const got = ki.get(c.rev);
    if (c.wantMod === undefined) {
      assert.equal(got, undefined, `rev ${c.rev}`);
    } else {
      assert.ok(got, `rev ${c.rev}`);
      assert.deepEqual(
        [revisionId(got.modified), revisionId(got.created), got.ver],
        [c.wantMod, c.wantCreated, c.wantVer],
        `rev ${c.rev}`,
      );
    }
  }
});

test('since lists one revision per main revision from a revision on', () => {
  const ki = sample();
  const cases: { rev: number; want: string[] }[] = [
    { rev: 0, want: ['2_0', '4_0', '6_0', '8_0', '10_0', '12_0', '14_1', '16_0'] },
    { rev: 6, want: ['6_0', '8_0', '10_0', '12_0', '14_1', '16_0'] },
    { rev: 9, want: ['10_0', '12_0', '14_1', '16_0'] },
    { rev: 14, want: ['14_1', '16_0'] },
    { rev: 17, want: [] },
  ];
  for (const c of cases) assert.deepEqual(ki.since(c.rev).map(revisionId), c.want, `since ${c.rev}`);
});

test('compact keeps the largest revision at or below atRev unless it is a tombstone', () => {
  const cases: { at: number; wantGens: string[]; wantKept: string[] }[] = [
    { at: 1, wantGens: ['2_0,4_0,6_0', '8_0,10_0,12_0', '14_0,14_1,16_0', ''], wantKept: [] },
    { at: 2, wantGens: ['2_0,4_0,6_0', '8_0,10_0,12_0', '14_0,14_1,16_0', ''], wantKept: ['2_0'] },
    { at: 3, wantGens: ['2_0,4_0,6_0', '8_0,10_0,12_0', '14_0,14_1,16_0', ''], wantKept: ['2_0'] },
    { at: 4, wantGens: ['4_0,6_0', '8_0,10_0,12_0', '14_0,14_1,16_0', ''], wantKept: ['4_0'] },
    { at: 6, wantGens: ['8_0,10_0,12_0', '14_0,14_1,16_0', ''], wantKept: [] },
    { at: 7, wantGens: ['8_0,10_0,12_0', '14_0,14_1,16_0', ''], wantKept: [] },
    { at: 10, wantGens: ['10_0,12_0', '14_0,14_1,16_0', ''], wantKept: ['10_0'] },
    { at: 12, wantGens: ['14_0,14_1,16_0', ''], wantKept: [] },
    { at: 14, wantGens: ['14_1,16_0', ''], wantKept: ['14_1'] },
    { at: 15, wantGens: ['14_1,16_0', ''], wantKept: ['14_1'] },
    { at: 16, wantGens: [''], wantKept: [] },
    { at: 20, wantGens: [''], wantKept: [] },
  ];
  for (const c of cases) {
    const ki = sample();
    const kept = new Set<string>();
    ki.keep(c.at, kept);
    const keepSays = [...kept].sort();
    const available = new Set<string>();
    ki.compact(c.at, available);
    assert.deepEqual(gens(ki), c.wantGens, `compact(${c.at}) generations`);
    assert.deepEqual([...available].sort(), c.wantKept, `compact(${c.at}) kept`);
    assert.deepEqual(keepSays, c.wantKept, `keep(${c.at}) agrees with compact`);
  }
});

test('compacting step by step gives the same result as compacting once', () => {
  for (const at of [2, 4, 6, 9, 12, 14, 16]) {
    const once = sample();
    once.compact(at, new Set());
    const steps = sample();
    for (const a of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16].filter((x) => x <= at)) steps.compact(a, new Set());
    assert.deepEqual(gens(steps), gens(once), `at ${at}`);
  }
});

test('reads after a compaction still see the kept version with its creation and version', () => {
  const ki = sample();
  ki.compact(11, new Set());
  // below the compaction the history is gone (the store refuses such reads first)
  assert.equal(ki.get(9), undefined);
  const at = ki.get(11);
  assert.ok(at);
  assert.deepEqual([revisionId(at.modified), revisionId(at.created), at.ver], ['10_0', '8_0', 2]);
});

test('a restored key index continues its version count', () => {
  const ki = new KeyIndex('foo');
  ki.restore({ main: 3, sub: 0 }, { main: 7, sub: 0 }, 4);
  ki.put(9, 0);
  const at = ki.get(9);
  assert.ok(at);
  assert.deepEqual([revisionId(at.created), at.ver], ['3_0', 5]);
  assert.equal(ki.get(8)?.ver, 4);
});

test('the tree index ranges over keys in byte order and drops keys emptied by compaction', () => {
  const idx = new TreeIndex();
  let rev = 1;
  for (const s of ['b', 'a', 'c', '\xff', 'ab', 'b\x00']) idx.put(s, { main: ++rev, sub: 0 });
  const keysIn = (start: string, end: string | undefined, at = rev) => idx.range(start, end, at).keys.map((x) => x.ki.skey);
  assert.deepEqual(keysIn('a', 'c'), ['a', 'ab', 'b', 'b\x00']);
  assert.deepEqual(keysIn('a', ''), ['a', 'ab', 'b', 'b\x00', 'c', '\xff']);
  assert.deepEqual(keysIn('b', undefined), ['b']);
  assert.deepEqual(keysIn('c', 'a'), []);
  assert.deepEqual(keysIn('a', 'c', 3), ['a', 'b']); // 'b' at 2, 'a' at 3
  assert.deepEqual(keysIn('a', 'c', 2), ['b']);
  const limited = idx.range('a', '', rev, 2);
  assert.deepEqual([limited.keys.length, limited.total], [2, 6]);
  const a = idx.get('a')!;
  assert.equal(a.tombstone(++rev, 0), true);
  assert.deepEqual(keysIn('a', 'b'), ['ab']);
  idx.compact(rev);
  assert.equal(idx.get('a'), undefined);
  assert.equal(idx.size, 5);
});

test('binary strings round-trip every byte value, short and long', () => {
  for (const n of [0, 1, 47, 48, 49, 256, 5000]) {
    const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 97 + 13) & 0xff);
    const back = fromSkey(toSkey(bytes));
    assert.ok(back instanceof Uint8Array && !Buffer.isBuffer(back), `plain Uint8Array for ${n} bytes`);
    assert.deepEqual(back, bytes);
  }
});

test('the cached key-value is built anew for each reader and frozen', () => {
  const ki = new KeyIndex('k');
  ki.put(2, 0);
  ki.put(5, 1);
  ki.val = toSkey(new Uint8Array([1, 2, 3]));
  ki.lease = 7;
  const a = ki.cachedKv();
  assert.deepEqual({ ...a }, { key: new Uint8Array([0x6b]), createRevision: 2, modRevision: 5, version: 2, value: new Uint8Array([1, 2, 3]), lease: 7 });
  assert.ok(Object.isFrozen(a));
  a.value[0] = 9; // a reader changing its copy changes nothing in the index
  assert.deepEqual(ki.cachedKv().value, new Uint8Array([1, 2, 3]));
  assert.deepEqual({ ...ki.currentMeta(), key: undefined, value: undefined }, { key: undefined, createRevision: 2, modRevision: 5, version: 2, value: undefined, lease: 7 });
  ki.val = undefined; // written: read from the backend from now on
  assert.throws(() => ki.cachedKv(), { code: 'QUORUMKV_INTERNAL' });
  assert.equal(ki.currentVersion(), 2);
  ki.tombstone(6, 0);
  assert.equal(ki.currentVersion(), 0);
});

test('a key with a single revision is held without generation arrays, and says the same as the general form', () => {
  // The same random history applied to two key indexes, the second turned
  // to the general form (generation arrays) after every step: every read
  // must agree. fast-check prints the seed and path of a failing case.
  type Op = { kind: 'put'; subs: number } | { kind: 'del' } | { kind: 'compact'; back: number };
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constant('put' as const), subs: fc.integer({ min: 1, max: 2 }) }),
    fc.record({ kind: fc.constant('del' as const) }),
    fc.record({ kind: fc.constant('compact' as const), back: fc.integer({ min: 0, max: 3 }) }),
  );
  const general = (ki: KeyIndex) => (ki as unknown as { full(): unknown }).full();
  const isSingle = (ki: KeyIndex) => (ki as unknown as { gens: unknown }).gens === undefined;
  // reads at `from` and later: get at each revision, since past `from` (the tombstones at a compaction revision go)
  const reads = (ki: KeyIndex, from: number, maxRev: number) => {
    const out: string[] = [];
    for (let r = from; r <= maxRev + 1; r++) {
      const g = ki.get(r);
      out.push(g === undefined ? '-' : `${revisionId(g.modified)}/${revisionId(g.created)}/${g.ver}`);
      if (r > from) out.push(ki.since(r).map(revisionId).join(','));
    }
    return out;
  };
  const view = (ki: KeyIndex, maxRev: number, compacted: number) => {
    const at: string[] = [];
    for (let r = Math.max(compacted, 0); r <= maxRev + 1; r++) {
      const g = ki.get(r);
      at.push(g === undefined ? '-' : `${revisionId(g.modified)}/${revisionId(g.created)}/${g.ver}`);
      at.push(ki.since(r).map(revisionId).join(','));
    }
    const keep = new Set<string>();
    ki.keep(maxRev, keep);
    return { at, keep: [...keep], gens: gens(ki), version: ki.currentVersion(), live: ki.isLive(), empty: ki.isEmpty(), modified: revisionId(ki.modified) };
  };
  let singles = 0;
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 1, maxLength: 30 }), (ops) => {
      const a = new KeyIndex('k');
      const b = new KeyIndex('k');
      let rev = 1;
      let compacted = -1;
      for (const op of ops) {
        if (a.isEmpty() && op.kind !== 'put') continue;
        if (op.kind === 'put') {
          rev++;
          for (let sub = 0; sub < op.subs; sub++) {
            a.put(rev, sub);
            b.put(rev, sub);
          }
        } else if (op.kind === 'del') {
          if (!a.isLive()) continue;
          rev++;
          assert.equal(a.tombstone(rev, 0), b.tombstone(rev, 0));
        } else {
          const at = Math.max(rev - op.back, compacted + 1);
          if (at > rev) continue;
          compacted = at;
          const before = reads(a, at, rev);
          const ka = new Set<string>();
          const kb = new Set<string>();
          a.compact(at, ka);
          b.compact(at, kb);
          assert.deepEqual([...ka].sort(), [...kb].sort());
          if (a.isEmpty()) break; // the tree index drops the key here
          // compaction at `at` changes no read at or after it
          assert.deepEqual(reads(a, at, rev), before);
        }
        if (isSingle(a)) singles++;
        if (!b.isEmpty()) general(b);
        assert.deepEqual(view(a, rev, compacted), view(b, rev, compacted));
      }
    }),
    { numRuns: 400 },
  );
  assert.ok(singles > 0, 'no step left the key in the single-revision form');
  // the forms themselves: one put is single; a second put or a deletion is general; a compaction down to one live revision is single again
  const ki = new KeyIndex('k');
  ki.put(2, 0);
  assert.ok(isSingle(ki));
  ki.put(3, 0);
  assert.ok(!isSingle(ki));
  ki.compact(3, new Set());
  assert.ok(isSingle(ki));
  assert.deepEqual(gens(ki), ['3_0']);
  assert.deepEqual([ki.currentVersion(), ki.currentCreated()], [2, 2]);
  ki.tombstone(4, 0);
  assert.ok(!isSingle(ki));
});
