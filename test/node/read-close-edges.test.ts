// RaftNode edge cases of reads, transfers, close and membership changes
// (each test fails on the code before its fix): a restarted member's first ReadIndex answered by a
// response to its previous run's read (a stale read); a ReadIndex round
// slower than an election timeout that never completed; a leadership
// transfer that close() left pending (with its timer); a closed leader
// still saying it leads; a proposal refused instead of waiting when the
// member had just lost its leader; a second membership change from one
// member left to time out; a ReadIndex round whose reads had all timed
// out, asked again every election timeout for as long as no leader
// answered it. Deterministic (virtual clock, seeded network).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import type { Transport } from '../../src/transport/index.js';
import { TestCluster, cmd } from './helpers.js';

const IDS = ['a', 'b', 'c'];

test('a restarted member never takes a response to its previous run\'s read for its own: its read covers writes acknowledged before it', async () => {
  const c = new TestCluster({ seed: 3 });
  try {
    await c.startAll(IDS);
    const L = await c.waitLeader();
    const fId = IDS.find((i) => i !== L.id)!;
    c.net.setDelay({ minMs: 30, maxMs: 30 }, { from: L.id, to: fId });
    await c.run(L.node.propose(cmd('x', '1')));
    await c.clock.advanceAsync(500);
    c.members.get(fId)!.node.readIndex().catch(() => undefined);
    await c.clock.advanceAsync(2);
    await c.stop(fId); // the answer to its read is still on the way
    const acknowledged = await c.run(L.node.propose(cmd('x', '2')));
    const f = await c.start(fId, undefined, IDS);
    await c.waitFor(() => f.node.leader !== '', 1_000, 'the restarted member knows the leader');
    const index = await c.run(f.node.readIndex());
    assert.ok(index >= acknowledged, `read index ${index} below ${acknowledged}, acknowledged before the read began`);
    assert.equal(f.sm.kv.get('x'), '2');
  } finally {
    await c.closeAll();
  }
});

test('a ReadIndex round slower than an election timeout still completes', async () => {
  const c = new TestCluster({ seed: 3 });
  try {
    await c.startAll(IDS);
    const L = await c.waitLeader();
    await c.run(L.node.propose(cmd('x', '1')));
    c.net.setDelay({ minMs: 60, maxMs: 60 }); // a round trip of 120 ms against an election timeout of 100
    await c.clock.advanceAsync(1_000);
    const written = await c.run(L.node.propose(cmd('x', '2')));
    assert.ok(L.node.isLeader);
    assert.ok((await c.run(L.node.readIndex(), 5_000)) >= written);
  } finally {
    await c.closeAll();
  }
});

test('a ReadIndex round whose reads all timed out is not asked again; a later read starts a round of its own', async () => {
  // five voters without CheckQuorum: a leader cut off from the majority with
  // one follower stays leader of its term, and that follower keeps
  // forwarding its ReadIndex requests to it, which no quorum confirms
  const ids = ['a', 'b', 'c', 'd', 'e'];
  const c = new TestCluster({ seed: 3 });
  const asked = new Map<string, number>();
  try {
    for (const id of ids) {
      const t = c.net.transport(id);
      for (const p of ids) if (p !== id) t.addPeer(p);
      const send = t.send.bind(t);
      t.send = (msgs) => {
        for (const m of msgs) if (m.type === 'MsgReadIndex') asked.set(id, (asked.get(id) ?? 0) + 1);
        send(msgs);
      };
      await c.start(id, ids, ids, { transport: t as Transport, checkQuorum: false });
    }
    const L = await c.waitLeader();
    const f = c.members.get(ids.find((id) => id !== L.id)!)!;
    await c.waitFor(() => f.node.leader === L.id, 2_000, 'the follower knows the leader');
    await c.run(L.node.propose(cmd('x', '1')));
    c.net.partition([L.id, f.id], ids.filter((id) => id !== L.id && id !== f.id));
    const err = await c.run(f.node.readIndex({ timeoutMs: 500 }).then(() => undefined, (e: unknown) => e));
    assert.ok(isQuorumError(err, ErrorCode.TIMEOUT), `the read: ${String(err)}`);
    const before = asked.get(f.id) ?? 0;
    await c.clock.advanceAsync(3_000);
    assert.equal(f.node.leader, L.id, 'the follower still follows the cut-off leader');
    assert.equal(asked.get(f.id) ?? 0, before, 'ReadIndex requests sent for a round whose only read timed out');
    c.net.heal();
    const other = await c.waitLeader();
    const written = await c.run(other.node.propose(cmd('x', '2')));
    await c.waitFor(() => f.node.leader === c.leader()?.id, 3_000, 'the follower follows the new leader');
    assert.ok((await c.run(f.node.readIndex())) >= written);
    assert.equal(f.sm.kv.get('x'), '2');
  } finally {
    await c.closeAll();
  }
});

test('close() fails a leadership transfer in progress at once and leaves no timer; a closed leader no longer says it leads', async () => {
  const c = new TestCluster({ seed: 3 });
  try {
    await c.startAll(IDS);
    const L = await c.waitLeader();
    await c.run(L.node.propose(cmd('x', '1')));
    const target = IDS.find((i) => i !== L.id)!;
    c.net.isolate(target); // the transfer cannot finish
    let outcome: unknown = 'pending';
    L.node.transferLeader(target).then(
      () => (outcome = 'resolved'),
      (e: unknown) => (outcome = e),
    );
    await c.clock.advanceAsync(20);
    await L.node.close();
    await c.clock.advanceAsync(0);
    assert.ok(isQuorumError(outcome, ErrorCode.NODE_CLOSED), `the transfer: ${String(outcome)}`);
    assert.equal(L.node.isLeader, false);
    for (const m of c.members.values()) if (m.id !== L.id) await m.node.close();
    assert.equal(c.clock.pendingTimers(), 0);
  } finally {
    await c.closeAll();
  }
});

test('a second membership change from the same member is refused at once with QUORUMKV_CONF_CHANGE_PENDING', async () => {
  const c = new TestCluster({ seed: 5 });
  try {
    await c.startAll(IDS);
    const L = await c.waitLeader();
    await c.run(L.node.propose(cmd('x', '1')));
    const F = c.members.get(IDS.find((i) => i !== L.id)!)!;
    for (const m of [L, F]) {
      const first = m.node.addLearner(`l-${m.id}`);
      const t0 = c.clock.now();
      let second: unknown = 'pending';
      m.node.addLearner(`m-${m.id}`).then(
        () => (second = 'applied'),
        (e: unknown) => (second = e),
      );
      await c.clock.advanceAsync(0);
      assert.ok(isQuorumError(second, ErrorCode.CONF_CHANGE_PENDING), `on ${m.id === L.id ? 'the leader' : 'a follower'}: ${String(second)}`);
      assert.equal(c.clock.now(), t0);
      await c.run(first);
    }
  } finally {
    await c.closeAll();
  }
});

test('proposals made as the leader loses its quorum wait for a new leader instead of failing with QUORUMKV_PROPOSAL_DROPPED', async () => {
  // the member decided from its last Ready's view of the leader, which a
  // tick or message had already made stale: a proposal in between was
  // refused "for good" although no leader was known
  const { MemoryLevel } = await import('memory-level');
  const { LevelLogStorage } = await import('../../src/storage/index.js');
  const c = new TestCluster({ seed: 3 });
  const slow = async () => {
    const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
    const s = await LevelLogStorage.open({ db: db as never });
    const save = s.save.bind(s);
    s.save = async (u, o) => {
      await new Promise<void>((r) => c.clock.setTimeout(r, 3)); // a 3 ms fsync
      return save(u, o);
    };
    return s;
  };
  try {
    for (const id of IDS) await c.start(id, IDS, IDS, { storage: await slow() });
    const L = await c.waitLeader();
    await c.run(L.node.propose(cmd('x', '1')));
    const codes = new Map<string, number>();
    let n = 0;
    let stop = false;
    const propose = (): void => {
      if (stop) return;
      for (let i = 0; i < 3; i++) {
        L.node.propose(cmd('k', String(++n)), { timeoutMs: 2_000 }).then(
          () => codes.set('ok', (codes.get('ok') ?? 0) + 1),
          (e: unknown) => codes.set((e as { code?: string }).code ?? String(e), (codes.get((e as { code?: string }).code ?? String(e)) ?? 0) + 1),
        );
      }
      c.clock.setTimeout(propose, 1);
    };
    propose();
    await c.clock.advanceAsync(50);
    c.net.isolate(L.id);
    await c.clock.advanceAsync(300);
    stop = true;
    await c.clock.advanceAsync(2_500);
    assert.equal(codes.get(ErrorCode.PROPOSAL_DROPPED) ?? 0, 0, JSON.stringify(Object.fromEntries(codes)));
    assert.ok((codes.get('ok') ?? 0) > 0);
  } finally {
    await c.closeAll();
  }
});

test('a membership change made while no leader is known is applied, also when its member is the one that wins the election', async () => {
  // the member that won retried the change before it had committed an entry
  // of its term, and passed the core's refusal on to the caller
  let won = 0;
  for (const seed of [11, 12, 13, 14]) {
    const c = new TestCluster({ seed });
    try {
      await c.startAll(IDS);
      const L = await c.waitLeader();
      await c.run(L.node.propose(cmd('x', '1')));
      await c.stop(L.id);
      const m = c.members.get(IDS.find((i) => i !== L.id)!)!;
      const change = new Promise<Awaited<ReturnType<typeof m.node.addLearner>>>((resolve, reject) => {
        const onLeader = (lead: string): void => {
          if (lead !== '') return;
          m.node.off('leaderChange', onLeader);
          m.node.addLearner('n').then(resolve, reject);
        };
        m.node.on('leaderChange', onLeader);
      });
      const members = await c.run(change, 5_000);
      assert.deepEqual(members.learners, ['n'], `seed ${seed}`);
      if (m.node.isLeader) won++;
    } finally {
      await c.closeAll();
    }
  }
  assert.ok(won > 0, 'in some seed the proposing member won');
});

test('an id removed from the cluster cannot be added back, also once the log is compacted past its removal (QUORUMKV_MEMBER_ID_REMOVED)', async () => {
  // added back, the new member replayed its own removal and stopped: a
  // voter dead for good, one failure from losing the quorum (etcd refuses
  // with ErrIDRemoved); the removed ids travel in snapshots
  const c = new TestCluster({ seed: 5, snapshotEntries: 5 });
  try {
    await c.startAll(IDS);
    const L = await c.waitLeader();
    await c.run(L.node.propose(cmd('x', '1')));
    const victim = IDS.find((i) => i !== L.id)!;
    const other = IDS.find((i) => i !== L.id && i !== victim)!;
    await c.run(L.node.removeMember(victim));
    await c.stop(victim);
    await assert.rejects(c.run(L.node.addVoter(victim)), (e: unknown) => isQuorumError(e, ErrorCode.MEMBER_ID_REMOVED) && /removed/.test((e as Error).message));
    await assert.rejects(c.run(L.node.addLearner(victim)), (e: unknown) => isQuorumError(e, ErrorCode.MEMBER_ID_REMOVED));
    // compact the log past the removal, restart a member from its snapshot: it still knows
    for (let i = 0; i < 20; i++) await c.run(L.node.propose(cmd(`k${i}`, 'v')));
    await c.stop(other);
    const o = await c.start(other, undefined, IDS);
    await c.waitFor(() => o.node.appliedIndex >= L.node.appliedIndex, 2_000, `${other} catches up`);
    await c.run(L.node.transferLeader(other));
    await assert.rejects(c.run(o.node.addVoter(victim)), (e: unknown) => isQuorumError(e, ErrorCode.MEMBER_ID_REMOVED) && /removed/.test((e as Error).message));
    assert.deepEqual((await c.run(o.node.addVoter('d'))).voters.sort(), [L.id, other, 'd'].sort(), 'a new id is fine');
  } finally {
    await c.closeAll();
  }
});

test('a membership change made on a follower while no leader is known is applied soon after the election, not left to time out', async () => {
  // forwarded at once to the new leader, it was dropped there (no entry of
  // its term committed yet) and ran to the proposal timeout; it now waits
  // until this member has seen a commit of the new term
  const ids = ['a', 'b', 'c', 'd', 'e'];
  for (let seed = 1; seed <= 12; seed++) {
    const c = new TestCluster({ seed });
    try {
      await c.startAll(ids);
      const L = await c.waitLeader();
      await c.run(L.node.propose(cmd('x', '1')));
      c.net.setDelay({ minMs: 1, maxMs: 8 });
      await c.stop(L.id);
      let outcome: unknown = 'not made';
      let took = -1;
      for (let t = 0; t < 6_000 && (outcome === 'not made' || outcome === 'pending'); t++) {
        if (outcome === 'not made') {
          const m = [...c.members.values()].find((x) => x.node.leader === '' && x.node.status().role === 'follower');
          if (m !== undefined) {
            const at = c.clock.now();
            outcome = 'pending';
            m.node.addLearner('z').then(
              () => ((outcome = 'applied'), (took = c.clock.now() - at)),
              (e: unknown) => ((outcome = e), (took = c.clock.now() - at)),
            );
          }
        }
        await c.clock.advanceAsync(1);
      }
      assert.equal(outcome, 'applied', `seed ${seed}: ${String(outcome)}`);
      assert.ok(took < 1_000, `seed ${seed}: applied after ${took} ms`);
    } finally {
      await c.closeAll();
    }
  }
});
