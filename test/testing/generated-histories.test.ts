// Generated histories: concurrent random clients on simulated time against
// toy stores (test/testing/toy-kv.ts). A correct (atomic) store must pass; a
// store that serves stale reads from a lagging replica and one that loses
// acknowledged writes must be flagged.
//
// Randomized: each test prints its seed on failure; replay one with
//   QUORUMKV_SEED=<seed> node scripts/run-tests.mjs test/testing/generated-histories.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkLinearizable, kvModel } from '../../src/testing/index.js';
import { AtomicStore, LosingStore, StaleReplicaStore, runWorkload, testSeed } from './toy-kv.js';
import type { Workload } from './toy-kv.js';

const SEED = testSeed();
const RUNS = 5;

const mixed: Workload = {
  clients: 5,
  operations: 300,
  keys: 3,
  kinds: ['get', 'put', 'put', 'delete', 'range', 'txn'],
};

function forEachSeed(name: string, body: (seed: number) => void): void {
  for (let i = 0; i < RUNS; i++) {
    const seed = (SEED + i * 7919) | 0;
    try {
      body(seed);
    } catch (err) {
      console.log(`${name}: failed with seed ${seed} (replay: QUORUMKV_SEED=${seed})`);
      throw err;
    }
  }
}

test('a correct atomic store passes, in per-key and global-revision mode', () => {
  forEachSeed('atomic', (seed) => {
    const h = runWorkload(new AtomicStore(), mixed, seed);
    const perKey = checkLinearizable(h, kvModel(), { timeoutMs: 10_000 });
    assert.equal(perKey.result, 'ok', perKey.describe());
    const global = checkLinearizable(h, kvModel({ globalRevision: true }), { timeoutMs: 10_000 });
    assert.equal(global.result, 'ok', global.describe());
  });
});

test('a correct atomic store passes with lost responses (unknown outcomes, half of them applied)', () => {
  forEachSeed('atomic-unknown', (seed) => {
    // 5% of responses lost: 15 unknown outcomes (median; 25 at most) in 300
    // seeds, every one checked in 163 ms or less in both modes. At 10% (30
    // unknown, median) 2 seeds of 200 took over 3 s and some take minutes
    // (seed 1722497029: 41 unknown outcomes in one partition, undecided
    // after 2 min in either mode): the search is exponential in them.
    const h = runWorkload(new AtomicStore(), { ...mixed, timeoutPercent: 5 }, seed);
    assert.ok(h.some((op) => op.status === 'unknown'));
    const res = checkLinearizable(h, kvModel({ globalRevision: true }), { timeoutMs: 60_000 });
    assert.equal(res.result, 'ok', res.describe());
    assert.equal(checkLinearizable(h, kvModel(), { timeoutMs: 60_000 }).result, 'ok');
  });
});

test('a store serving stale reads from a lagging replica is flagged', () => {
  forEachSeed('stale', (seed) => {
    const h = runWorkload(new StaleReplicaStore(30, 50), { ...mixed, timeoutPercent: 5 }, seed);
    assert.equal(checkLinearizable(h, kvModel({ globalRevision: true }), { timeoutMs: 10_000 }).result, 'illegal');
    const res = checkLinearizable(h, kvModel(), { timeoutMs: 10_000 });
    assert.equal(res.result, 'illegal', `seed ${seed}: ${res.describe()}`);
    const p = res.partitions[res.illegalPartition]!;
    assert.ok(p.blocker !== undefined);
    assert.ok(p.illegal.length > 0 && p.illegal.length <= p.operations.length);
    // the reported sub-history is itself illegal
    assert.equal(checkLinearizable(p.illegal, kvModel()).result, 'illegal');
  });
});

test('the reported illegal sub-history stands on its own when the whole history proved an unknown write took effect', () => {
  // a seed whose first shrink kept an unknown put required by a proof (a
  // later delete saw its value) that the sub-history no longer holds
  const h = runWorkload(new StaleReplicaStore(30, 50), { ...mixed, timeoutPercent: 5 }, -975741362);
  const res = checkLinearizable(h, kvModel(), { timeoutMs: 10_000 });
  assert.equal(res.result, 'illegal');
  const p = res.partitions[res.illegalPartition]!;
  assert.ok(p.operations.some((op) => op.status === 'unknown' && op.returnTime !== Infinity), 'the history proves an unknown outcome');
  assert.ok(p.illegal.length < p.operations.length);
  assert.equal(checkLinearizable(p.illegal, kvModel()).result, 'illegal', JSON.stringify(p.illegal));
});

test('a store that loses acknowledged writes is flagged', () => {
  forEachSeed('lossy', (seed) => {
    const h = runWorkload(new LosingStore(10), { ...mixed, kinds: ['get', 'put', 'put', 'delete'], timeoutPercent: 5 }, seed);
    assert.equal(checkLinearizable(h, kvModel({ globalRevision: true }), { timeoutMs: 10_000 }).result, 'illegal');
    const res = checkLinearizable(h, kvModel(), { timeoutMs: 10_000 });
    assert.equal(res.result, 'illegal', `seed ${seed}: ${res.describe()}`);
    assert.equal(checkLinearizable(res.partitions[res.illegalPartition]!.illegal, kvModel()).result, 'illegal');
  });
});

test('the same seed gives the same history', () => {
  const a = runWorkload(new StaleReplicaStore(30, 50), mixed, SEED);
  const b = runWorkload(new StaleReplicaStore(30, 50), mixed, SEED);
  assert.deepEqual(a, b);
});
