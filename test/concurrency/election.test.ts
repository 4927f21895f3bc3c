// Election (etcd's concurrency.Election) on a 3-member cluster with a
// virtual clock: one leader at a time, campaigns served in order, proclaim,
// resign, leader(), observe(), failover when the leader's session is lost,
// and a randomized run with faults (seed printed; replay with
// QUORUMKV_CONCURRENCY_SEED=<seed>).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { ErrorCode, FaultError, isQuorumError } from '../../src/errors.js';
import { Election, Session, electionLeader, observeElection, type LeaderInfo, type Leadership } from '../../src/concurrency/index.js';
import { text } from '../../src/server/kv.js';
import { IDS, background, countKeys, hasCode, rng, seedFor, session, sleep, slowMember, startCluster, until } from './helpers.js';

/** Collects what an observer yields, in the background. */
function collect(obs: AsyncIterable<LeaderInfo>): { seen: LeaderInfo[]; done: Promise<void> } {
  const seen: LeaderInfo[] = [];
  const done = (async () => {
    for await (const l of obs) seen.push(l);
  })();
  return { seen, done };
}

test('candidates become leader one at a time in campaign order; resign hands over; terms increase; observe sees each', async () => {
  const c = await startCluster(51);
  try {
    const members = [...c.nodes.values()];
    await assert.rejects(c.run(electionLeader(members[0]!, 'el')), (e: unknown) => e instanceof FaultError && e.code === ErrorCode.ELECTION_NO_LEADER);
    const obs = observeElection(members[1]!, 'el');
    const watched = collect(obs);
    const candidates: Election[] = [];
    const campaigns: ReturnType<typeof background<Leadership>>[] = [];
    for (let i = 0; i < 4; i++) {
      const e = new Election(await session(c, members[i % 3]!, { ttl: 5 }), 'el');
      candidates.push(e);
      campaigns.push(background(e.campaign(`candidate-${i}`)));
      await until(c, async () => (await countKeys(members[0]!, 'el/')) === i + 1, 5_000, `candidate ${i} in`);
    }
    const terms: number[] = [];
    for (let i = 0; i < 4; i++) {
      await c.run(campaigns[i]!.promise);
      const lead = campaigns[i]!.value()!;
      terms.push(lead.term);
      assert.equal(candidates[i]!.isLeader, true);
      for (let j = i + 1; j < 4; j++) assert.equal(campaigns[j]!.done(), false, `candidate ${j} still waits`);
      const leader = await c.run(candidates[3]!.leader());
      assert.equal(leader.value, `candidate-${i}`);
      assert.equal(leader.createRevision, lead.term);
      await c.clock.advanceAsync(100);
      await c.run(candidates[i]!.resign());
      assert.equal(candidates[i]!.isLeader, false);
    }
    for (let i = 1; i < terms.length; i++) assert.ok(terms[i]! > terms[i - 1]!, `terms increase: ${terms.join(', ')}`);
    await c.clock.advanceAsync(200);
    obs.cancel();
    await c.run(watched.done);
    assert.deepEqual(
      watched.seen.map((l) => `${l.value}@${l.createRevision}`),
      terms.map((t, i) => `candidate-${i}@${t}`),
      'the observer saw every leader, in order',
    );
  } finally {
    await c.closeAll();
  }
});

test('proclaim changes the value only while leader; leader() and observe() see it', async () => {
  const c = await startCluster(52);
  try {
    const [f1, f2] = c.followers();
    const e = new Election(await session(c, f1!, { ttl: 5 }), 'pro');
    await assert.rejects(c.run(e.proclaim('x')), (err: unknown) => err instanceof FaultError && err.code === ErrorCode.ELECTION_NOT_LEADER);
    const obs = e.observe();
    const watched = collect(obs);
    const lead = await c.run(e.campaign('v1'));
    await c.run(e.proclaim('v2'));
    const leader = await c.run(electionLeader(f2!, 'pro'));
    assert.equal(leader.value, 'v2');
    assert.equal(leader.createRevision, lead.term, 'proclaim keeps the term');
    assert.ok(leader.modRevision > lead.term, 'proclaim wrote a new revision');
    // a campaign while leading is a proclaim
    assert.equal((await c.run(e.campaign('v3'))).term, lead.term);
    await c.clock.advanceAsync(100);
    obs.cancel();
    await c.run(watched.done);
    assert.deepEqual(
      watched.seen.map((l) => l.value),
      ['v1', 'v2', 'v3'],
    );
    // once the key is gone (as when the lease expires), proclaim fails and leadership ends
    await c.run(f2!.delete(e.key));
    await assert.rejects(c.run(e.proclaim('v4')), hasCode(ErrorCode.ELECTION_NOT_LEADER));
    assert.equal(e.isLeader, false);
  } finally {
    await c.closeAll();
  }
});

test('a candidate that campaigns again on the same session keeps its key, its place and its term, with the new value', async () => {
  const c = await startCluster(53);
  try {
    const [f1, f2] = c.followers();
    const first = new Election(await session(c, f1!, { ttl: 5 }), 're');
    await c.run(first.campaign('first'));
    const s = await session(c, f2!, { ttl: 5 });
    const a = new Election(s, 're');
    const pa = background(a.campaign('old'));
    await until(c, async () => (await countKeys(f2!, 're/')) === 2, 5_000, 'queued');
    const created = (await c.run(f2!.get(a.key)))!.createRevision;
    const b = new Election(s, 're');
    const pb = background(b.campaign('new'));
    await until(c, async () => text((await f2!.get(b.key))?.value) === 'new', 5_000, 'value updated');
    assert.equal((await c.run(f2!.get(b.key)))!.createRevision, created, 'same key, same place in the queue');
    assert.equal(pa.done() || pb.done(), false, 'both still wait for the first leader');
    await c.run(first.resign());
    await c.run(Promise.all([pa.promise, pb.promise]));
    assert.equal(pa.value()?.term, created);
    assert.equal(pb.value()?.term, created);
    const leader = await c.run(b.leader());
    assert.equal(leader.value, 'new');
    // once leader, campaigning again on another object answers at once with the same term
    const again = await c.run(new Election(s, 're').campaign('newer'));
    assert.equal(again.term, created);
    assert.equal((await c.run(b.leader())).value, 'newer');
  } finally {
    await c.closeAll();
  }
});

test('when the leader is partitioned its session is lost before the next candidate is elected', async (t) => {
  const c = await startCluster(54);
  try {
    const leader = c.leader()!;
    const f = c.followers()[0]!;
    const ls = await session(c, f, { ttl: 1 });
    const first = new Election(ls, 'fail');
    const t1 = await c.run(first.campaign('f'));
    let lostAt = -1;
    ls.on('lost', () => (lostAt = c.clock.now()));
    const obs = observeElection(leader, 'fail');
    const watched = collect(obs);
    const second = new Election(await session(c, leader, { ttl: 5 }), 'fail');
    let electedAt = -1;
    const p2 = background(
      second.campaign('l').then((l) => {
        electedAt = c.clock.now();
        return l;
      }),
    );
    await until(c, async () => (await countKeys(leader, 'fail/')) === 2, 5_000, 'queued');
    c.net.isolate(f.id);
    await c.run(p2.promise, 10_000);
    t.diagnostic(`old leader's session lost at ${lostAt} ms, new leader elected at ${electedAt} ms`);
    assert.ok(lostAt > 0 && lostAt < electedAt, `lost at ${lostAt} ms before elected at ${electedAt} ms`);
    assert.ok(p2.value()!.term > t1.term, 'the new term is greater');
    assert.equal(first.isLeader, false, 'a candidate on a lost session is not leader');
    await c.clock.advanceAsync(100);
    obs.cancel();
    await c.run(watched.done);
    assert.deepEqual(
      watched.seen.map((l) => l.value),
      ['f', 'l'],
    );
    c.net.heal();
    await c.waitFor(() => f.status().leader !== '', 5_000, 'the healed member to know the leader');
    // the old leader finds out when it tries to act
    await assert.rejects(c.run(first.proclaim('still me?')), hasCode(ErrorCode.ELECTION_NOT_LEADER));
  } finally {
    await c.closeAll();
  }
});

test('campaign({ signal }) aborts and removes the candidate key; a lost session cannot campaign', async () => {
  const c = await startCluster(55);
  try {
    const [f1, f2] = c.followers();
    const e1 = new Election(await session(c, f1!, { ttl: 5 }), 'ab');
    await c.run(e1.campaign('one'));
    const e2 = new Election(await session(c, f2!, { ttl: 5 }), 'ab');
    const ac = new AbortController();
    const p = background(e2.campaign('two', { signal: ac.signal }));
    await until(c, async () => (await countKeys(f1!, 'ab/')) === 2, 5_000, 'queued');
    ac.abort();
    await c.run(p.promise);
    assert.equal((p.error() as FaultError).code, ErrorCode.ABORTED);
    assert.equal(await c.run(countKeys(f1!, 'ab/')), 1);
    const dead = await session(c, f2!, { ttl: 1 });
    c.net.isolate(f2!.id);
    await c.waitFor(() => dead.isLost, 5_000, 'session lost');
    c.net.heal();
    await assert.rejects(c.run(new Election(dead, 'ab').campaign('three')), hasCode(ErrorCode.SESSION_EXPIRED));
  } finally {
    await c.closeAll();
  }
});

test('an observer started before any campaign waits for the first leader', async () => {
  const c = await startCluster(56);
  try {
    const [f1, f2] = c.followers();
    const ac = new AbortController();
    const obs = observeElection(f2!, 'empty', { signal: ac.signal });
    const watched = collect(obs);
    await c.clock.advanceAsync(300);
    assert.equal(watched.seen.length, 0);
    const e = new Election(await session(c, f1!, { ttl: 5 }), 'empty');
    const lead = await c.run(e.campaign('first'));
    await c.waitFor(() => watched.seen.length === 1, 2_000, 'the observer');
    assert.equal(watched.seen[0]!.createRevision, lead.term);
    ac.abort();
    await c.run(watched.done);
  } finally {
    await c.closeAll();
  }
});

async function electionRun(seed: number): Promise<void> {
  const r = rng(seed);
  const c = await startCluster(seed);
  const END = 8_000;
  const terms: { who: number; term: number; from: number; to: number; session: Session }[] = [];
  try {
    const obs = observeElection(c.node('a'), 'rand');
    const watched = collect(obs);
    const candidate = async (i: number): Promise<void> => {
      const member = IDS[i % IDS.length]!;
      let s: Session | undefined;
      while (c.clock.now() < END) {
        try {
          if (s === undefined || !s.isAlive) s = await Session.create(c.node(member), { ttl: 1, clock: c.clock });
          const e = new Election(s, 'rand');
          const lead = await e.campaign(`c${i}`);
          const rec = { who: i, term: lead.term, from: c.clock.now(), to: Infinity, session: s };
          terms.push(rec);
          for (let k = 0; k < 3 && s.isAlive; k++) {
            await sleep(c, 50 + r.int(150));
            if (s.isAlive) await e.proclaim(`c${i}.${k}`);
          }
          rec.to = c.clock.now();
          await e.resign();
        } catch (err) {
          const last = terms.at(-1);
          if (last !== undefined && last.who === i && last.to === Infinity) last.to = c.clock.now();
          if (!isQuorumError(err)) throw err;
          await sleep(c, 50 + r.int(100));
        }
      }
      await s?.close().catch(() => undefined);
    };
    const faults = async (): Promise<void> => {
      while (c.clock.now() < END - 1_500) {
        await sleep(c, 500 + r.int(700));
        const pick = r.int(3);
        if (pick === 0) c.net.isolate(r.pick(['b', 'c']));
        else if (pick === 1) {
          const leader = c.leader();
          if (leader !== undefined) leader.moveLeader(r.pick(IDS.filter((x) => x !== leader.id))).catch(() => undefined);
        }
        await sleep(c, 300 + r.int(900));
        c.net.heal();
      }
    };
    await c.run(Promise.all([candidate(0), candidate(1), candidate(2), candidate(3), faults()]), END + 20_000);
    await c.clock.advanceAsync(200);
    obs.cancel();
    await c.run(watched.done);
    const byTime = [...terms].sort((x, y) => x.from - y.from);
    let maxEnd = -Infinity;
    for (let k = 0; k < byTime.length; k++) {
      const t = byTime[k]!;
      // a greater term; or the same one, when a session campaigns again while its key is still there
      const prev = byTime[k - 1];
      if (prev !== undefined) assert.ok(t.term > prev.term || (t.term === prev.term && t.session === prev.session), `seed ${seed}: term ${t.term} after ${prev.term}`);
      assert.ok(t.from >= maxEnd, `seed ${seed}: candidate ${t.who} elected at ${t.from} ms while the previous leader led until ${maxEnd} ms`);
      const lostAt = t.session.error !== undefined ? t.session.expiresAt : Infinity;
      maxEnd = Math.max(maxEnd, Math.min(t.to, lostAt));
    }
    // the observer (on member a, which is never isolated) saw terms in increasing order
    const seenTerms = watched.seen.map((l) => l.createRevision);
    for (let k = 1; k < seenTerms.length; k++) assert.ok(seenTerms[k]! >= seenTerms[k - 1]!, `seed ${seed}: observer went back in terms`);
    const distinct = new Set(seenTerms);
    for (const t of terms) assert.ok(distinct.has(t.term) || t.to - t.from < 1_000, `seed ${seed}: observer missed term ${t.term}`);
    assert.ok(terms.length >= 8, `seed ${seed}: only ${terms.length} terms`);
    console.log(`# seed ${seed}: ${terms.length} terms, observer saw ${distinct.size} leaders and ${seenTerms.length} changes`);
  } finally {
    c.net.heal();
    await c.closeAll();
  }
}

const env = process.env.QUORUMKV_CONCURRENCY_SEED;
for (const s of env !== undefined && env !== '' ? [Number(env)] : [303]) {
  test(`one leader at a time with increasing terms through partitions and leader moves (seed ${s})`, async () => {
    await electionRun(seedFor('election', s));
  });
}

test('a campaign that fails before writing anything (aborted signal) leaves the key of a leader on the same session alone', async () => {
  const c = await startCluster(57);
  try {
    const [f1, f2] = c.followers();
    const s = await session(c, f1!, { ttl: 5 });
    const leading = new Election(s, 'keep');
    const lead = await c.run(leading.campaign('a'));
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(c.run(new Election(s, 'keep').campaign('b', { signal: ac.signal })), hasCode(ErrorCode.ABORTED));
    assert.equal((await c.run(f2!.get(leading.key)))?.createRevision, lead.term, 'the leader key is still there');
    // so nobody else can be elected while this session leads
    const other = background(new Election(await session(c, f2!, { ttl: 5 }), 'keep').campaign('c'));
    await c.clock.advanceAsync(500);
    assert.equal(other.done(), false, 'another candidate waits');
    await c.run(leading.resign());
    await c.run(other.promise);
    assert.ok(other.value()!.term > lead.term);
  } finally {
    await c.closeAll();
  }
});

test('campaign() with an aborted signal fails with QUORUMKV_ABORTED also on a leading election, and proclaims nothing', async () => {
  const c = await startCluster(58);
  try {
    const [f1] = c.followers();
    const e = new Election(await session(c, f1!, { ttl: 5 }), 'aborted');
    const lead = await c.run(e.campaign('v1'));
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(c.run(e.campaign('v2', { signal: ac.signal })), hasCode(ErrorCode.ABORTED));
    const leader = await c.run(e.leader());
    assert.equal(leader.value, 'v1', 'the value is unchanged');
    assert.equal(leader.modRevision, lead.term, 'nothing was written');
    assert.equal(e.isLeader, true, 'the leadership itself goes on');
  } finally {
    await c.closeAll();
  }
});

test('an observer that resumes after a compaction does not yield the leader it has already yielded again', async () => {
  const c = await startCluster(59);
  try {
    const [f1, f2] = c.followers();
    const first = new Election(await session(c, f1!, { ttl: 5 }), 'compacted');
    const t1 = await c.run(first.campaign('one'));
    const obs = observeElection(f2!, 'compacted');
    const it = obs[Symbol.asyncIterator]();
    const seen = [(await c.run(it.next())).value as LeaderInfo];
    // while the consumer is busy with the first leader, the history it would
    // follow from is compacted away
    for (let i = 0; i < 3; i++) await c.run(f2!.put('unrelated', String(i)));
    await c.run(f2!.compact((await c.run(f2!.range({ key: 'unrelated' }))).header.revision));
    const next = background(it.next());
    await c.clock.advanceAsync(300);
    const second = new Election(await session(c, f2!, { ttl: 5 }), 'compacted');
    const p2 = background(second.campaign('two'));
    await c.clock.advanceAsync(100);
    await c.run(first.resign());
    await c.run(p2.promise);
    await c.run(next.promise);
    seen.push(next.value()!.value as LeaderInfo);
    obs.cancel();
    assert.deepEqual(
      seen.map((l) => `${l.value}@${l.createRevision}`),
      [`one@${t1.term}`, `two@${p2.value()!.term}`],
      'each leader once, in order',
    );
  } finally {
    await c.closeAll();
  }
});

test('campaign() on a leading election whose key is gone campaigns anew (as etcd, and as Mutex.lock), instead of failing', async () => {
  const c = await startCluster(60);
  try {
    const [f1, f2] = c.followers();
    const e = new Election(await session(c, f1!, { ttl: 5 }), 'anew');
    const lead = await c.run(e.campaign('v1'));
    // as after a resign that was applied but answered with a timeout
    await c.run(f2!.delete(e.key));
    const again = await c.run(e.campaign('v2'));
    assert.ok(again.term > lead.term, 'a new term');
    const leader = await c.run(electionLeader(f2!, 'anew'));
    assert.equal(leader.value, 'v2');
    assert.equal(leader.createRevision, again.term);
    assert.equal(e.isLeader, true);
  } finally {
    await c.closeAll();
  }
});

test('a campaign with new bytes on the session\'s existing key puts them, also when both are not UTF-8 (they decode alike)', async () => {
  const c = await startCluster(54);
  try {
    const f = c.followers()[0]!;
    const s = await session(c, f, { ttl: 5 });
    await c.run(new Election(s, 'bin').campaign(new Uint8Array([0xfe])));
    // another object on the same session finds the key and updates its value
    await c.run(new Election(s, 'bin').campaign(new Uint8Array([0xff])));
    const leader = await c.run(electionLeader(f, 'bin'));
    assert.deepEqual([...leader.valueBytes], [0xff]);
  } finally {
    await c.closeAll();
  }
});

test('campaign() of a leader does not resolve once the session is lost or the signal aborted while it proclaims', async () => {
  const c = await startCluster(55);
  try {
    const f = c.followers()[0]!;
    // a member that answers txns late and keep-alives not at all, once `slow.on` is set
    const { kv, slow } = slowMember(c, f, 'txn');
    const s = await session(c, kv, { ttl: 1 });
    const e = new Election(s, 'again');
    await c.run(e.campaign('v1'));
    slow.on = true;
    await assert.rejects(c.run(e.campaign('v2')), hasCode(ErrorCode.SESSION_EXPIRED), 'campaign() resolved on a lost session');
    assert.equal(s.isLost, true);

    slow.on = false;
    const e2 = new Election(await session(c, kv, { ttl: 5 }), 'again-abort');
    await c.run(e2.campaign('v1'));
    slow.on = true;
    const ac = new AbortController();
    c.clock.setTimeout(() => ac.abort(), 500);
    await assert.rejects(c.run(e2.campaign('v2', { signal: ac.signal })), hasCode(ErrorCode.ABORTED), 'campaign() resolved after its signal aborted');
  } finally {
    await c.closeAll();
  }
});

test('an observer cancelled before or between iterations leaves no listener on the caller\'s signal; a next() after cancel() ends the iteration', async () => {
  const c = await startCluster(58);
  try {
    const f = c.followers()[0]!;
    // one long-lived signal shared by many observers (an application's shutdown signal, say)
    const app = new AbortController();
    const listeners = (): number => getEventListeners(app.signal, 'abort').length;
    const unstarted = observeElection(f, 'obs-cancel', { signal: app.signal });
    unstarted.cancel();
    assert.equal(listeners(), 0, 'an observer cancelled before its first next() keeps its listener on the signal');
    const e = new Election(await session(c, f, { ttl: 5 }), 'obs-cancel');
    await c.run(e.campaign('x'));
    const obs = e.observe({ signal: app.signal });
    const it = obs[Symbol.asyncIterator]();
    assert.equal((await c.run(it.next())).value?.value, 'x');
    obs.cancel(); // and no next() after it
    await c.clock.advanceAsync(100);
    assert.equal(listeners(), 0, 'an observer cancelled between two next() keeps its listener on the signal');
    // a value proclaimed after cancel() is not yielded: the iteration ends
    await c.run(e.proclaim('y'));
    assert.equal((await c.run(it.next())).done, true);
  } finally {
    await c.closeAll();
  }
});
