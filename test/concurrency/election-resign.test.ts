// Election.resign() while a campaign() of the same object is in progress
// withdraws the candidacy, at every step of the campaign: before its key is
// written, while the txn that writes it or the put of a new value is in
// flight, while it waits, as it finds itself elected, and during a campaign
// while leading (a proclaim). In each case, once resign() resolves the
// candidate is not leader, its key is gone, and the campaign fails with
// QUORUMKV_ABORTED. 3-member cluster on a virtual clock; the steps are
// reached through a KV that holds the answer of one chosen call.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, FaultError, isQuorumError } from '../../src/errors.js';
import { Election, electionLeader, type Leadership } from '../../src/concurrency/index.js';
import type { KV, RangeInput, TxnInput } from '../../src/server/kv.js';
import type { KvCluster } from '../server/helpers.js';
import { background, countKeys, hasCode, session, sleep, startCluster, until } from './helpers.js';

type Call = { method: 'txn'; input: TxnInput } | { method: 'range'; input: RangeInput };

/**
 * A KV whose calls can be held (the first call matching `match`, before it
 * is sent or after it was applied, until `release()`) or failed without
 * being sent (as from a member cut off). Counts the txns it sends.
 */
function controlled(kv: KV): {
  kv: KV;
  txns: () => number;
  hold: (match: (c: Call) => boolean, when: 'before' | 'after') => { reached: Promise<void>; release: () => void };
  failWhen: (match: ((c: Call) => boolean) | undefined) => void;
} {
  let held: { match: (c: Call) => boolean; when: 'before' | 'after'; reached: () => void; gate: Promise<void> } | undefined;
  let fail: ((c: Call) => boolean) | undefined;
  let txns = 0;
  const wrap =
    (method: 'txn' | 'range', target: KV) =>
    async (input: never): Promise<unknown> => {
      const call = { method, input } as Call;
      if (fail?.(call) === true) throw new FaultError(ErrorCode.TIMEOUT, 'injected: member cut off');
      const h = held !== undefined && held.match(call) ? held : undefined;
      if (h !== undefined) held = undefined;
      if (h?.when === 'before') {
        h.reached();
        await h.gate;
      }
      if (method === 'txn') txns++;
      const res = await (target[method] as (i: never) => Promise<unknown>)(input);
      if (h?.when === 'after') {
        h.reached();
        await h.gate;
      }
      return res;
    };
  const proxy = new Proxy(kv, {
    get(target, prop) {
      if (prop === 'txn' || prop === 'range') return wrap(prop, target);
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return {
    kv: proxy,
    txns: () => txns,
    hold(match, when) {
      let reached = (): void => undefined;
      let release = (): void => undefined;
      const r = new Promise<void>((res) => (reached = res));
      const gate = new Promise<void>((res) => (release = res));
      held = { match, when, reached, gate };
      return { reached: r, release };
    },
    failWhen(match) {
      fail = match;
    },
  };
}

const isCreate = (key: string) => (c: Call) => c.method === 'txn' && c.input.compare?.[0]?.key === key && c.input.compare[0].createRevision === 0;
const isValuePut = (key: string) => (c: Call) => c.method === 'txn' && c.input.compare?.[0]?.key === key && c.input.success?.some((op) => 'put' in op && op.put.ignoreLease === true) === true;
const isDelete = (key: string) => (c: Call) => c.method === 'txn' && c.input.compare?.[0]?.key === key && c.input.success?.some((op) => 'deleteRange' in op) === true;
const isOwnRead = (key: string) => (c: Call) => c.method === 'range' && c.input.key === key && c.input.prefix !== true;

/**
 * Resigns `e` while its campaign `campaign` is in progress, and checks the
 * outcome: as soon as resign() resolves, the key is gone and `e` is not
 * leader; the campaign fails with QUORUMKV_ABORTED; and a while later the
 * key has not come back (nothing campaigned anew).
 */
async function resignAndCheck(c: KvCluster, e: Election, reader: KV, campaign: ReturnType<typeof background<Leadership>>, release?: () => void): Promise<void> {
  const resigned = background(e.resign());
  release?.();
  await c.run(resigned.promise);
  assert.equal(resigned.error(), undefined, 'resign() resolved');
  assert.equal(await c.run(reader.get(e.key)), undefined, 'the key is gone once resign() resolved');
  assert.equal(e.isLeader, false);
  assert.equal(e.leadership, undefined);
  await c.run(campaign.promise);
  assert.equal(campaign.value(), undefined, `campaign() resolved with term ${campaign.value()?.term} after a resign`);
  assert.ok(isQuorumError(campaign.error(), ErrorCode.ABORTED), `campaign() fails with QUORUMKV_ABORTED, not ${String(campaign.error())}`);
  await c.run(sleep(c, 1_000));
  assert.equal(await c.run(reader.get(e.key)), undefined, 'the key did not come back');
  assert.equal(e.isLeader, false);
}

test('resign() while campaign() waits behind a leader withdraws the candidacy: the next candidate, not this one, follows the leader', async () => {
  const c = await startCluster(71);
  try {
    const [f1, f2] = c.followers();
    const first = new Election(await session(c, f1!, { ttl: 5 }), 'wait');
    await c.run(first.campaign('first'));
    const e = new Election(await session(c, f2!, { ttl: 5 }), 'wait');
    const p = background(e.campaign('withdrawn'));
    await until(c, async () => (await countKeys(f1!, 'wait/')) === 2, 5_000, 'queued');
    const third = new Election(await session(c, f1!, { ttl: 5 }), 'wait');
    const p3 = background(third.campaign('third'));
    await until(c, async () => (await countKeys(f1!, 'wait/')) === 3, 5_000, 'third queued');
    await resignAndCheck(c, e, f1!, p);
    assert.equal(p3.done(), false, 'the third candidate still waits for the first');
    await c.run(first.resign());
    await c.run(p3.promise);
    assert.equal((await c.run(electionLeader(f2!, 'wait'))).value, 'third');
    // resigning again, neither leading nor campaigning, does nothing
    await c.run(e.resign());
    assert.equal(third.isLeader, true);
  } finally {
    await c.closeAll();
  }
});

test('resign() right after campaign(), before the key is written, leaves no key and no leader', async () => {
  const c = await startCluster(72);
  try {
    const [f1] = c.followers();
    const e = new Election(await session(c, f1!, { ttl: 5 }), 'early');
    const p = background(e.campaign('v'));
    await resignAndCheck(c, e, c.leader()!, p);
    assert.equal(await c.run(countKeys(f1!, 'early/')), 0);
  } finally {
    await c.closeAll();
  }
});

for (const when of ['before', 'after'] as const) {
  test(`resign() while the txn that writes the key is in flight (held ${when} it is sent), with nobody ahead: no leadership, no key`, async () => {
    const c = await startCluster(73);
    try {
      const [f1] = c.followers();
      const kv = controlled(f1!);
      const e = new Election(await session(c, kv.kv, { ttl: 5 }), 'create');
      const h = kv.hold(isCreate(e.key), when);
      const p = background(e.campaign('v'));
      await c.run(h.reached);
      await resignAndCheck(c, e, c.leader()!, p, h.release);
    } finally {
      await c.closeAll();
    }
  });
}

test('resign() while campaign() puts a new value on the session\'s existing key withdraws it', async () => {
  const c = await startCluster(74);
  try {
    const [f1, f2] = c.followers();
    const leader = new Election(await session(c, f1!, { ttl: 5 }), 'value');
    await c.run(leader.campaign('leader'));
    const kv = controlled(f2!);
    const s = await session(c, kv.kv, { ttl: 5 });
    const older = new Election(s, 'value');
    const po = background(older.campaign('old'));
    await until(c, async () => (await countKeys(f1!, 'value/')) === 2, 5_000, 'queued');
    // a second object on the same session: its campaign finds the key with another value and puts its own
    const e = new Election(s, 'value');
    const h = kv.hold(isValuePut(e.key), 'after');
    const p = background(e.campaign('new'));
    await c.run(h.reached);
    await resignAndCheck(c, e, f1!, p, h.release);
    await c.run(leader.resign());
    await c.run(po.promise);
    assert.equal(older.isLeader, false, 'the session\'s key is gone: the other object is not elected either');
  } finally {
    await c.closeAll();
  }
});

test('resign() as campaign() finds itself elected (its last read in flight) withdraws it', async () => {
  const c = await startCluster(75);
  try {
    const [f1] = c.followers();
    const kv = controlled(f1!);
    const e = new Election(await session(c, kv.kv, { ttl: 5 }), 'won');
    const h = kv.hold(isOwnRead(e.key), 'after');
    const p = background(e.campaign('v'));
    await c.run(h.reached);
    await resignAndCheck(c, e, c.leader()!, p, h.release);
  } finally {
    await c.closeAll();
  }
});

test('resign() while campaign() deletes the key an earlier campaign left, before writing its own, writes nothing', async () => {
  const c = await startCluster(76);
  try {
    const [f1, f2] = c.followers();
    const leader = new Election(await session(c, f1!, { ttl: 5 }), 'left');
    await c.run(leader.campaign('leader'));
    const kv = controlled(f2!);
    const e = new Election(await session(c, kv.kv, { ttl: 5 }), 'left');
    const ac = new AbortController();
    const aborted = background(e.campaign('v', { signal: ac.signal }));
    await until(c, async () => (await countKeys(f1!, 'left/')) === 2, 5_000, 'queued');
    // the aborted campaign cannot delete its key: it is left over
    kv.failWhen(isDelete(e.key));
    ac.abort();
    await c.run(aborted.promise);
    assert.ok(isQuorumError(aborted.error(), ErrorCode.ABORTED));
    assert.notEqual(await c.run(f1!.get(e.key)), undefined, 'the key is left over');
    await c.run(leader.resign());
    kv.failWhen(undefined);
    // the next campaign first deletes the leftover key: resign while that delete is in flight
    const h = kv.hold(isDelete(e.key), 'after');
    const p = background(e.campaign('again'));
    await c.run(h.reached);
    await resignAndCheck(c, e, f1!, p, h.release);
    assert.equal(await c.run(countKeys(f1!, 'left/')), 0);
  } finally {
    await c.closeAll();
  }
});

for (const when of ['before', 'after'] as const) {
  test(`resign() while a campaign() of a leader proclaims (held ${when} it is sent) ends the leadership and the campaign does not campaign anew`, async () => {
    const c = await startCluster(77);
    try {
      const [f1] = c.followers();
      const kv = controlled(f1!);
      const e = new Election(await session(c, kv.kv, { ttl: 5 }), 'lead');
      await c.run(e.campaign('v1'));
      const h = kv.hold(isValuePut(e.key), when);
      const p = background(e.campaign('v2'));
      await c.run(h.reached);
      // the leader's resign deletes the key while the proclaim is held
      await resignAndCheck(c, e, c.leader()!, p, h.release);
    } finally {
      await c.closeAll();
    }
  });
}

test('resign() at any moment of a campaign(): once it resolves, not leader and no key', async () => {
  const c = await startCluster(78);
  try {
    const [f1, f2] = c.followers();
    const s = await session(c, f1!, { ttl: 5 });
    const ahead = new Election(await session(c, f2!, { ttl: 5 }), 'any');
    let won = 0;
    let withdrawn = 0;
    for (let delay = 0; delay <= 60; delay += 3) {
      for (const contended of [false, true]) {
        if (contended) await c.run(ahead.campaign('ahead'));
        const e = new Election(s, 'any');
        const p = background(e.campaign(`d${delay}`));
        if (delay > 0) await c.run(sleep(c, delay));
        const wasDone = p.done();
        await c.run(e.resign());
        assert.equal(await c.run(f2!.get(e.key)), undefined, `delay ${delay}: the key is gone once resign() resolved`);
        assert.equal(e.isLeader, false, `delay ${delay}: not leader`);
        await c.run(p.promise);
        if (wasDone && p.value() !== undefined) won++;
        else {
          assert.equal(p.value(), undefined, `delay ${delay}: campaign() resolved after resign() began`);
          assert.ok(isQuorumError(p.error(), ErrorCode.ABORTED), `delay ${delay}: ${String(p.error())}`);
          withdrawn++;
        }
        if (contended) await c.run(ahead.resign());
      }
    }
    // both cases came up: a campaign that had won (resign() as a leader) and one withdrawn
    assert.ok(won > 0 && withdrawn > 0, `won ${won}, withdrawn ${withdrawn}`);
    assert.equal(await c.run(countKeys(f2!, 'any/')), 0);
  } finally {
    await c.closeAll();
  }
});

test('resign() that withdraws a campaign whose key cannot be deleted throws the KV\'s error; the key goes once the member is back', async () => {
  const c = await startCluster(79);
  try {
    const [f1, f2] = c.followers();
    const leader = new Election(await session(c, f1!, { ttl: 5 }), 'cut');
    await c.run(leader.campaign('leader'));
    const kv = controlled(f2!);
    const e = new Election(await session(c, kv.kv, { ttl: 5 }), 'cut');
    const p = background(e.campaign('v'));
    await until(c, async () => (await countKeys(f1!, 'cut/')) === 2, 5_000, 'queued');
    kv.failWhen(isDelete(e.key));
    await assert.rejects(c.run(e.resign()), hasCode(ErrorCode.TIMEOUT));
    await c.run(p.promise);
    assert.ok(isQuorumError(p.error(), ErrorCode.ABORTED), 'the campaign is withdrawn all the same');
    assert.equal(e.isLeader, false);
    assert.notEqual(await c.run(f1!.get(e.key)), undefined, 'the key remains while deletes fail');
    kv.failWhen(undefined);
    await until(c, async () => (await f1!.get(e.key)) === undefined, 2_000, 'the key deleted in the background');
    await c.run(leader.resign());
    await c.run(sleep(c, 500));
    assert.equal(await c.run(countKeys(f1!, 'cut/')), 0, 'nobody is elected');
  } finally {
    await c.closeAll();
  }
});

test('resign() when neither leading nor campaigning sends nothing', async () => {
  const c = await startCluster(80);
  try {
    const [f1] = c.followers();
    const kv = controlled(f1!);
    const e = new Election(await session(c, kv.kv, { ttl: 5 }), 'idle');
    await c.run(e.resign());
    assert.equal(kv.txns(), 0);
    await c.run(e.campaign('v'));
    await c.run(e.resign());
    const after = kv.txns();
    await c.run(e.resign());
    assert.equal(kv.txns(), after, 'a second resign sends nothing');
  } finally {
    await c.closeAll();
  }
});
