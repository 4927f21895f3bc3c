// The lessor on its own (etcd's lessor_test.go cases as tables): grant ids
// and TTL rules, revoke through a range deleter, time-to-live, renew and
// expiry on a promoted lessor with an injected clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLevel } from 'memory-level';
import { LEASE_REVOKE_RATE, Lessor, MAX_LEASE_TTL, type LessorOptions, type TxnDelete } from '../../src/lease/index.js';
import { MvccStore } from '../../src/mvcc/index.js';

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

test('grants get growing ids; explicit ids are kept and automatic ids continue after the largest', () => {
  const l = new Lessor();
  assert.deepEqual([l.grant(0, 10).id, l.grant(0, 10).id, l.grant(0, 10).id], [1, 2, 3]);
  assert.equal(l.grant(100, 10).id, 100);
  assert.equal(l.grant(50, 10).id, 50);
  assert.equal(l.grant(0, 10).id, 101);
  assert.deepEqual(l.leases().map((x) => x.id), [1, 2, 3, 50, 100, 101]);
  assert.equal(l.leaseCount(), 6);
  l.revoke(50);
  assert.equal(l.leaseCount(), 5);
  l.reset();
  assert.equal(l.leaseCount(), 0);
});

test('grant rules: existing id, TTL below the minimum, too large TTL, bad ids', () => {
  const l = new Lessor({ minTtl: 5 });
  l.grant(7, 10);
  const cases: { name: string; id: number; ttl: number; code?: string; wantTtl?: number }[] = [
    { name: 'existing id', id: 7, ttl: 10, code: 'QUORUMKV_LEASE_EXISTS' },
    { name: 'too large TTL', id: 0, ttl: MAX_LEASE_TTL + 1, code: 'QUORUMKV_INVALID_ARGUMENT' },
    { name: 'largest TTL', id: 0, ttl: MAX_LEASE_TTL, wantTtl: MAX_LEASE_TTL },
    { name: 'negative id', id: -1, ttl: 10, code: 'QUORUMKV_INVALID_ARGUMENT' },
    { name: 'fractional TTL', id: 0, ttl: 1.5, code: 'QUORUMKV_INVALID_ARGUMENT' },
    { name: 'TTL below the minimum', id: 0, ttl: 1, wantTtl: 5 },
    { name: 'zero TTL', id: 0, ttl: 0, wantTtl: 5 },
    { name: 'negative TTL', id: 0, ttl: -10, wantTtl: 5 },
    { name: 'TTL above the minimum', id: 0, ttl: 6, wantTtl: 6 },
  ];
  for (const c of cases) {
    const before = l.leases().length;
    if (c.code !== undefined) {
      assert.throws(() => l.grant(c.id, c.ttl), { code: c.code }, c.name);
      assert.equal(l.leases().length, before, `${c.name}: nothing granted`);
    } else {
      assert.equal(l.grant(c.id, c.ttl).ttl, c.wantTtl, c.name);
    }
  }
  assert.equal(new Lessor().grant(0, 1).ttl, 2, 'the default minimum is 2 s, as etcd');
});

test('revoke deletes the attached keys in ascending order in one write txn', () => {
  const l = new Lessor();
  const calls: string[] = [];
  l.setRangeDeleter((): TxnDelete => {
    calls.push('begin');
    return {
      deleteRange: (key) => {
        calls.push(Buffer.from(key).toString('latin1'));
        l.detach(1, Buffer.from(key).toString('latin1'));
      },
      end: () => calls.push('end'),
    };
  });
  l.grant(1, 10);
  for (const k of ['b', 'a\xff', 'a', 'c\x00']) l.attach(1, k);
  assert.equal(l.getLease('a'), 1);
  l.revoke(1);
  assert.deepEqual(calls, ['begin', 'a', 'a\xff', 'b', 'c\x00', 'end']);
  assert.equal(l.lookup(1), undefined);
  assert.equal(l.getLease('a'), 0);
  assert.throws(() => l.revoke(1), { code: 'QUORUMKV_LEASE_NOT_FOUND' });
});

test('attach needs a granted lease; detach moves keys between leases', () => {
  const l = new Lessor();
  l.grant(1, 10);
  l.grant(2, 10);
  assert.throws(() => l.attach(3, 'k'), { code: 'QUORUMKV_LEASE_NOT_FOUND' });
  l.attach(1, 'k');
  l.detach(1, 'k');
  l.attach(2, 'k');
  assert.deepEqual([l.getLease('k'), l.timeToLive(1, { keys: true }).keys, l.timeToLive(2, { keys: true }).keys], [2, [], ['k']]);
});

test('time to live: unknown lease is -1/0; the granted TTL until promoted; then the remaining seconds', () => {
  const c = clock();
  const l = new Lessor({ now: c.now });
  assert.deepEqual(l.timeToLive(9), { id: 9, ttl: -1, grantedTtl: 0, keys: [] });
  l.grant(1, 10);
  assert.deepEqual(l.timeToLive(1), { id: 1, ttl: 10, grantedTtl: 10, keys: [] });
  l.promote();
  c.advance(2500);
  assert.equal(l.timeToLive(1).ttl, 7, 'rounded down');
  c.advance(10_000);
  assert.equal(l.timeToLive(1).ttl, 0, 'an expired lease waiting for its revoke');
});

test('renew needs the primary lessor and a live lease, and restarts the TTL', () => {
  const c = clock();
  const l = new Lessor({ now: c.now });
  l.grant(1, 10);
  assert.throws(() => l.renew(1), { code: 'QUORUMKV_NOT_LEADER' });
  l.promote();
  assert.throws(() => l.renew(2), { code: 'QUORUMKV_LEASE_NOT_FOUND' });
  c.advance(8000);
  assert.equal(l.renew(1), 10);
  c.advance(8000);
  assert.deepEqual(l.expired(), [], 'renewed 8 s ago, TTL 10 s');
  c.advance(2001);
  assert.deepEqual(l.expired(), [1]);
  assert.throws(() => l.renew(1), { code: 'QUORUMKV_LEASE_NOT_FOUND' }, 'too late: its revoke is on its way');
});

test('expiry: only while promoted, in expiry order, re-reported after the retry interval', () => {
  const c = clock();
  const l = new Lessor({ now: c.now, expiredRetryMs: 3000 });
  l.grant(1, 30);
  l.grant(2, 10);
  l.grant(3, 20);
  c.advance(100_000);
  assert.deepEqual(l.expired(), [], 'not promoted: nothing expires');
  l.promote();
  c.advance(10_000); // t = 10 s
  assert.deepEqual(l.expired(), [2]);
  assert.deepEqual(l.expired(), [], 'reported once');
  c.advance(2000); // 12 s
  assert.deepEqual(l.expired(), []);
  c.advance(1000); // 13 s: the retry interval passed
  assert.deepEqual(l.expired(), [2], 'still there after the retry interval');
  c.advance(7000); // 20 s: 2 again (retry at 16 s), then 3 (expires at 20 s)
  assert.deepEqual(l.expired(), [2, 3]);
  c.advance(10_000); // 30 s: 1 expires; 2 and 3 are due again
  assert.equal(l.expired(1).length, 1, 'limit');
  assert.equal(l.expired().length, 2);
  l.demote();
  c.advance(100_000);
  assert.deepEqual(l.expired(), []);
});

test('promote restarts every TTL (plus the extension): a lease outlives a leader change', () => {
  const c = clock();
  const l = new Lessor({ now: c.now });
  l.grant(1, 10);
  l.promote();
  c.advance(9000);
  l.demote();
  l.promote(2000); // new leader
  c.advance(11_000);
  assert.deepEqual(l.expired(), [], '10 s TTL + 2 s extension from the promotion');
  c.advance(1000);
  assert.deepEqual(l.expired(), [1]);
});

test('promote spreads a pile-up of expiries to 3/4 of the revoke rate a second, only ever later, as etcd\'s Promote does', () => {
  const c = clock();
  const l = new Lessor({ now: c.now });
  // as etcd's TestLessorRenewExtendPileup: many leases of one TTL, as many of
  // the next second, all restarting at once at a leader change
  const ttl = 10;
  const n = LEASE_REVOKE_RATE * 10;
  for (let i = 1; i <= n; i++) {
    l.grant(2 * i, ttl);
    l.grant(2 * i + 1, ttl + 1);
  }
  l.promote(0);
  const now = c.now();
  const windows = new Map<number, number>();
  for (const lease of l.leases()) {
    const remainingMs = lease.remainingMs(now);
    assert.ok(remainingMs >= lease.ttl * 1000, `lease ${lease.id} expires in ${remainingMs} ms, before its TTL`);
    const s = Math.floor(remainingMs / 1000);
    windows.set(s, (windows.get(s) ?? 0) + 1);
  }
  for (let s = ttl; s < ttl + 20; s++) {
    const count = windows.get(s) ?? 0;
    assert.ok(count <= LEASE_REVOKE_RATE, `${count} leases expire ${s} s after the promotion, above the revoke rate`);
    assert.ok(count >= LEASE_REVOKE_RATE / 2, `${count} leases expire ${s} s after the promotion`);
  }
  // expired() reports them as they come: about 3/4 of the rate a second
  c.advance((ttl + 1) * 1000);
  const first = l.expired().length;
  assert.ok(first > 0 && first <= LEASE_REVOKE_RATE * 1.5, `${first} leases expired in the first second of the pile-up`);
});

test('promote leaves fewer leases than the revoke rate as they are: each expires its TTL (plus the extension) after the promotion', () => {
  const c = clock();
  const l = new Lessor({ now: c.now });
  for (let id = 1; id < LEASE_REVOKE_RATE; id++) l.grant(id, 5);
  l.promote(300);
  const now = c.now();
  assert.ok(l.leases().every((lease) => lease.remainingMs(now) === 5300));
  c.advance(5300);
  assert.equal(l.expired().length, LEASE_REVOKE_RATE - 1);
});

test('a revoked lease is never reported as expired', () => {
  const c = clock();
  const l = new Lessor({ now: c.now });
  l.promote();
  l.grant(1, 5);
  l.revoke(1);
  c.advance(60_000);
  assert.deepEqual(l.expired(), []);
});

test('keep-alives leave the expiry queue one entry per lease, not one per renewal: a lease of a long TTL renewed often does not grow it for good', () => {
  const c = clock();
  const l = new Lessor({ now: c.now });
  l.promote();
  for (let id = 1; id <= 10; id++) l.grant(id, 86_400); // a day
  // renewed every 10 ms for 100 s: 10,000 renewals each, none of them anywhere near expiring
  for (let i = 0; i < 10_000; i++) {
    c.advance(10);
    for (let id = 1; id <= 10; id++) l.renew(id);
  }
  const queued = (l as unknown as { heap: unknown[] }).heap.length;
  assert.ok(queued <= 100, `${queued} entries queued for 10 leases`);
  // the queue still says when each lease expires, and only once
  c.advance(86_400_000 - 1);
  assert.deepEqual(l.expired(), []);
  c.advance(1);
  assert.deepEqual(l.expired().sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.deepEqual(l.expired(), []);
  l.revoke(3);
  c.advance(3000);
  assert.deepEqual(l.expired().sort((a, b) => a - b), [1, 2, 4, 5, 6, 7, 8, 9, 10], 'reported again after the retry interval, the revoked one left out');
});

test('options: a minTtl, expiredRetryMs or now the lessor cannot use is QUORUMKV_INVALID_CONFIG', async () => {
  const bad: [string, LessorOptions][] = [
    ['minTtl 0', { minTtl: 0 }],
    ['minTtl 1.5', { minTtl: 1.5 }],
    ['expiredRetryMs NaN', { expiredRetryMs: Number.NaN }],
    ['expiredRetryMs Infinity', { expiredRetryMs: Number.POSITIVE_INFINITY }],
    ['expiredRetryMs 0', { expiredRetryMs: 0 }],
    ['expiredRetryMs -1', { expiredRetryMs: -1 }],
    ['expiredRetryMs "3000"', { expiredRetryMs: '3000' as unknown as number }],
    ['now 5', { now: 5 as unknown as () => number }],
  ];
  for (const [name, options] of bad) assert.throws(() => new Lessor(options), { code: 'QUORUMKV_INVALID_CONFIG' }, name);
  // through the store, which hands them to its lessor
  await assert.rejects(MvccStore.open(new MemoryLevel<string, string>().sublevel('mvcc'), { expiredLeaseRetryMs: Number.NaN }), { code: 'QUORUMKV_INVALID_CONFIG' });
  // the smallest retry interval works: an expired lease is reported again 1 ms later
  const c = clock();
  const l = new Lessor({ now: c.now, expiredRetryMs: 1 });
  l.grant(1, 5);
  l.promote();
  c.advance(5000);
  assert.deepEqual(l.expired(), [1]);
  assert.deepEqual(l.expired(), []);
  c.advance(1);
  assert.deepEqual(l.expired(), [1]);
});

test('promote refuses an extension that is not a finite number of ms, 0 or more, and stays as it was', () => {
  const c = clock();
  const l = new Lessor({ now: c.now });
  l.grant(1, 5);
  for (const extendMs of [Number.NaN, -1, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, '1000' as unknown as number]) {
    assert.throws(() => l.promote(extendMs), { code: 'QUORUMKV_INVALID_ARGUMENT' }, String(extendMs));
    assert.equal(l.isPrimary(), false);
  }
  l.promote(0);
  c.advance(5000);
  assert.deepEqual(l.expired(), [1], 'expires by its TTL once promoted');
});

test('expired refuses a limit that is not a whole number, 0 or more (or Infinity), and reports nothing', () => {
  const c = clock();
  const l = new Lessor({ now: c.now });
  l.grant(1, 5);
  l.grant(2, 5);
  l.grant(3, 5);
  l.promote();
  c.advance(5000);
  // NaN used to report nothing, every time: the leases never expired; 1.5 reported 2
  for (const limit of [Number.NaN, -1, 1.5, Number.NEGATIVE_INFINITY, '2' as unknown as number, null as unknown as number]) {
    assert.throws(() => l.expired(limit), { code: 'QUORUMKV_INVALID_ARGUMENT' }, String(limit));
  }
  assert.deepEqual(l.expired(0), []);
  const first = l.expired(2);
  assert.equal(first.length, 2, 'nothing was reported by the refused calls');
  assert.deepEqual([...first, ...l.expired(Number.POSITIVE_INFINITY)].sort(), [1, 2, 3]);
});

test('time to live refuses options that are not { keys } with a boolean, with QUORUMKV_INVALID_ARGUMENT', () => {
  // before: null threw a raw TypeError, and { keys: 'yes' } or a misspelled
  // { key: true } answered without the keys, as if none were asked for
  const l = new Lessor({ now: clock().now });
  l.grant(1, 10);
  for (const bad of [null, 5, [], { key: true }, { keys: 'yes' }]) {
    assert.throws(
      () => l.timeToLive(1, bad as never),
      (e: unknown) => e instanceof Error && (e as { code?: string }).code === 'QUORUMKV_INVALID_ARGUMENT',
      JSON.stringify(bad),
    );
  }
  assert.deepEqual(l.timeToLive(1, { keys: false }).keys, []);
});

test('grant, promote and the constructor refuse an id, TTL or option that is an object without a prototype or a Symbol with QUORUMKV_INVALID_ARGUMENT or QUORUMKV_INVALID_CONFIG, not a TypeError', () => {
  // before: the message was made with `${id}` or String(id), which threw a
  // TypeError on these values
  const l = new Lessor({ now: clock().now });
  for (const v of [Object.create(null), Symbol('s')]) {
    const what = typeof v === 'symbol' ? 'a Symbol' : 'an object without a prototype';
    assert.throws(() => l.grant(v as number, 10), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `id ${what}`);
    assert.throws(() => l.grant(0, v as number), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `TTL ${what}`);
    assert.throws(() => l.promote(v as number), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `extendMs ${what}`);
    assert.throws(() => l.expired(v as number), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `limit ${what}`);
    assert.throws(() => new Lessor({ minTtl: v as number }), { code: 'QUORUMKV_INVALID_CONFIG' }, `minTtl ${what}`);
    assert.throws(() => new Lessor({ expiredRetryMs: v as number }), { code: 'QUORUMKV_INVALID_CONFIG' }, `expiredRetryMs ${what}`);
  }
  assert.equal(l.leaseCount(), 0);
});

test('restoreLease and reset refuse an id, TTL or last id that is not a safe integer with QUORUMKV_INVALID_ARGUMENT, and restore nothing', () => {
  // before: restoreLease('5', 10) made '5' the largest id granted, and the
  // next automatic id the string '51'; NaN made a lease no lookup finds
  const l = new Lessor({ now: clock().now });
  l.grant(3, 10);
  for (const bad of ['5', Number.NaN, 1.5, null, undefined, 2 ** 53, Symbol('s'), Object.create(null)]) {
    const what = typeof bad === 'symbol' ? 'a Symbol' : typeof bad === 'object' && bad !== null ? 'an object' : String(bad);
    assert.throws(() => l.restoreLease(bad as number, 10), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `id ${what}`);
    assert.throws(() => l.restoreLease(7, bad as number), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `TTL ${what}`);
    if (bad !== undefined) assert.throws(() => l.reset(bad as number), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `last id ${what}`);
  }
  assert.throws(() => l.reset(-1), { code: 'QUORUMKV_INVALID_ARGUMENT' }, 'last id -1');
  assert.deepEqual(l.leases().map((x) => x.id), [3], 'nothing restored, nothing dropped');
  assert.equal(l.lastLeaseId(), 3);
  assert.equal(l.grant(0, 10).id, 4);
  l.reset(10);
  assert.equal(l.restoreLease(8, 30).ttl, 30);
  assert.equal(l.grant(0, 10).id, 11);
});

test('timeToLive, revoke and renew refuse an id that is not a safe integer with QUORUMKV_INVALID_ARGUMENT, and change nothing', () => {
  // before: NaN, 1.5 or '5' was looked up as any id and answered as an
  // unknown lease ('5' too, with lease 5 granted): TTL -1 or LEASE_NOT_FOUND
  const c = clock();
  const l = new Lessor({ now: c.now });
  l.grant(5, 10);
  l.promote();
  const odd: unknown[] = [Number.NaN, 1.5, '5', null, undefined, 2 ** 53, Infinity, 5n, Symbol('s'), Object.create(null), { toString: () => { throw new Error('toString ran'); } }];
  for (const bad of odd) {
    const what = typeof bad === 'symbol' ? 'a Symbol' : typeof bad === 'object' && bad !== null ? 'an object' : `${typeof bad} ${String(bad)}`;
    assert.throws(() => l.timeToLive(bad as number), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `timeToLive ${what}`);
    assert.throws(() => l.revoke(bad as number), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `revoke ${what}`);
    assert.throws(() => l.renew(bad as number), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `renew ${what}`);
  }
  assert.deepEqual(l.leases().map((x) => x.id), [5], 'nothing revoked');
  // any safe integer is an id: one never granted is an unknown lease
  assert.deepEqual(l.timeToLive(-3), { id: -3, ttl: -1, grantedTtl: 0, keys: [] });
  assert.throws(() => l.revoke(-3), { code: 'QUORUMKV_LEASE_NOT_FOUND' });
  assert.throws(() => l.renew(6), { code: 'QUORUMKV_LEASE_NOT_FOUND' });
  assert.equal(l.timeToLive(5).ttl, 10);
  assert.equal(l.renew(5), 10);
  l.revoke(5);
  assert.equal(l.leaseCount(), 0);
});

test('options that are not an object, or of a name the options do not declare, are QUORUMKV_INVALID_CONFIG', () => {
  // before: null threw a TypeError, and a misspelled option (minTTL) left its default in force
  const bad: [string, unknown][] = [
    ['null', null],
    ['a number', 5],
    ['an array', []],
    ['minTTL', { minTTL: 5 }],
    ['expiredRetryMS', { expiredRetryMs: 100, expiredRetryMS: 100 }],
  ];
  for (const [name, options] of bad) assert.throws(() => new Lessor(options as LessorOptions), { code: 'QUORUMKV_INVALID_CONFIG' }, name);
  assert.doesNotThrow(() => new Lessor(undefined));
  assert.doesNotThrow(() => new Lessor({ minTtl: 5, expiredRetryMs: 100, now: () => 0 }));
});
