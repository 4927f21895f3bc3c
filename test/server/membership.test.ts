// KvNode membership changes on an in-process cluster (MemoryNetwork,
// memory-level, virtual clock), against etcd 3.4's behaviour: a leader
// that removes itself, refused changes made on a follower, ids that exist
// already, learners. Deterministic: no seed to replay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isQuorumError, UsageError } from '../../src/errors.js';
import type { KvNode } from '../../src/server/index.js';
import { KvCluster } from './helpers.js';

const IDS = ['a', 'b', 'c'];

/** A UsageError (the call changed nothing) with `code` and a message matching `message`. */
function refusedWith(code: ErrorCode, message: RegExp): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof UsageError, `a UsageError, not ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  };
}

test('two voters: a leader that removes itself and whose last commit message is lost leaves the other able to lead', async () => {
  const c = new KvCluster(['a', 'b'], 1);
  try {
    await c.startAll();
    const l = await c.waitLeader();
    await c.run(l.put('k', 'v'));
    const f = c.followers()[0]!;
    c.net.setDelay({ minMs: 5, maxMs: 5 }, { from: f.id, to: l.id }); // f's acknowledgement takes 5 ms
    const last = l.raft.status().lastIndex;
    const done = l.removeMember(l.id).catch((e: unknown) => e);
    // once f holds the removal entry (its acknowledgement on the way), lose l -> f
    for (let i = 0; i < 50 && f.raft.status().lastIndex <= last; i++) await c.clock.advanceAsync(1);
    assert.ok(f.raft.status().lastIndex > last, 'f received the removal entry');
    c.net.partitionOneWay(l.id, f.id);
    await c.waitFor(() => l.raft.removed, 1_000, 'the leader applies its removal');
    const appliedAtRemoval = l.raft.appliedIndex;
    c.net.heal(); // only the messages that said the removal is committed were lost
    await done;
    await c.waitFor(() => f.raft.isLeader, 5_000, `${f.id} leads`);
    await c.run(f.put('k', 'w'));
    assert.deepEqual(f.members().voters, [f.id]);
    // lingering, the removed member still takes entries, but applies none
    assert.equal(l.raft.appliedIndex, appliedAtRemoval);
  } finally {
    await c.closeAll();
  }
});

test('a change the leader would refuse, made on a follower, fails at once as on the leader, not by a timeout', async () => {
  const c = new KvCluster(IDS, 5);
  try {
    await c.startAll();
    const l = await c.waitLeader();
    await c.run(l.put('k', 'v'));
    const f = c.followers()[0]!;
    const voter = IDS.find((id) => id !== l.id && id !== f.id)!;
    // (RaftNode's own calls: KvNode.addMember refuses any existing id before them)
    await assert.rejects(c.run(l.raft.addLearner(voter)), (e: unknown) => isQuorumError(e, ErrorCode.MEMBER_EXISTS) && e instanceof UsageError);
    const t0 = c.clock.now();
    await assert.rejects(c.run(f.raft.addLearner(voter)), (e: unknown) => isQuorumError(e, ErrorCode.MEMBER_EXISTS) && e instanceof UsageError);
    assert.ok(c.clock.now() - t0 < 100, `refused after ${c.clock.now() - t0} virtual ms`);
    // and the follower can make another change right away
    await c.run(f.addMember('d', undefined, { learner: true }));
    assert.deepEqual(l.members().learners, ['d']);
  } finally {
    await c.closeAll();
  }
});

test('adding an id that is a member already is refused (etcd ErrIDExists), and so is a learner beyond maxLearners (etcd ErrTooManyLearners)', async () => {
  const c = new KvCluster(IDS, 9);
  try {
    await c.startAll();
    const l = await c.waitLeader();
    const f = c.followers()[0]!;
    await c.run(l.put('k', 'v'));
    for (const node of [l, f]) {
      for (const id of IDS) {
        await assert.rejects(c.run(node.addMember(id, 'elsewhere:1')), refusedWith(ErrorCode.MEMBER_EXISTS, /^etcdserver: member ID already exist/));
      }
    }
    await c.run(l.addMember('d', undefined, { learner: true }));
    await c.waitFor(() => f.members().learners.length === 1, 1_000, 'the learner on the follower');
    await assert.rejects(c.run(f.addMember('d', undefined, { learner: true })), refusedWith(ErrorCode.MEMBER_EXISTS, /already exist/));
    await assert.rejects(c.run(f.addMember('e', undefined, { learner: true })), refusedWith(ErrorCode.TOO_MANY_LEARNERS, /^etcdserver: too many learner members in cluster/));
    assert.deepEqual(l.members(), { voters: [...IDS].sort(), learners: ['d'] });
  } finally {
    await c.closeAll();
  }
});

test('maxLearners raises the number of learners', async () => {
  const c = new KvCluster(IDS, 10);
  c.extra = () => ({ maxLearners: 2 });
  try {
    await c.startAll();
    const l = await c.waitLeader();
    await c.run(l.put('k', 'v'));
    await c.run(l.addMember('d', undefined, { learner: true }));
    await c.run(l.addMember('e', undefined, { learner: true }));
    await assert.rejects(c.run(l.addMember('f', undefined, { learner: true })), refusedWith(ErrorCode.TOO_MANY_LEARNERS, /too many learner/));
    assert.deepEqual(l.members().learners, ['d', 'e']);
  } finally {
    await c.closeAll();
  }
});

test('promoting a learner that has not caught up is refused with QUORUMKV_LEARNER_NOT_READY, on the leader and (through the log) on a follower; once caught up it is promoted', async () => {
  const c = new KvCluster(IDS, 6);
  try {
    await c.startAll();
    const l = await c.waitLeader();
    const f = c.followers()[0]!;
    for (let i = 0; i < 20; i++) await c.run(l.put(`k${i}`, 'v'));
    await c.run(l.addMember('d', undefined, { learner: true })); // not started yet: nothing replicated to it
    await c.waitFor(() => f.members().learners.includes('d'), 1_000, 'the learner on the follower');
    const notReady = (e: unknown): boolean => isQuorumError(e, ErrorCode.LEARNER_NOT_READY) && /in sync with leader/.test((e as Error).message);
    await assert.rejects(c.run(l.promoteMember('d')), notReady);
    const t0 = c.clock.now();
    await assert.rejects(c.run(f.promoteMember('d')), notReady);
    assert.ok(c.clock.now() - t0 < 200, `the follower's call failed after ${c.clock.now() - t0} virtual ms, not by a timeout`);
    assert.deepEqual(l.members().voters, [...IDS].sort());
    const d = await c.start('d', { join: true, members: [...IDS, 'd'] });
    await c.waitFor(() => d.raft.status().applied >= l.raft.status().commit, 5_000, 'the learner catches up');
    await c.run(f.promoteMember('d'));
    assert.deepEqual(l.members().voters, [...IDS, 'd'].sort());
  } finally {
    await c.closeAll();
  }
});

test('with a voter down, adding a voter and removing a live voter are refused with QUORUMKV_UNHEALTHY (etcd --strict-reconfig-check); removing the down voter is not', async () => {
  const c = new KvCluster(IDS, 7);
  try {
    await c.startAll();
    const l = await c.waitLeader();
    await c.run(l.put('k', 'v'));
    const [down, live] = IDS.filter((id) => id !== l.id);
    await c.stop(down!);
    await c.clock.advanceAsync(200); // past an election timeout
    const unhealthy = (e: unknown): boolean => isQuorumError(e, ErrorCode.UNHEALTHY);
    await assert.rejects(c.run(l.addMember('d')), unhealthy);
    await assert.rejects(c.run(l.removeMember(live!)), unhealthy);
    // from the live follower, through the log
    await assert.rejects(c.run(c.node(live!).addMember('d')), unhealthy);
    assert.deepEqual(l.members().voters, [...IDS].sort());
    await c.run(l.put('k', 'still writable'));
    await c.run(l.removeMember(down!));
    await c.run(l.addMember('d', undefined, { learner: true })); // a learner never counts in a quorum
    assert.deepEqual(l.members(), { voters: [l.id, live!].sort(), learners: ['d'] });
  } finally {
    await c.closeAll();
  }
});

test('strictReconfigCheck: false lets those changes through', async () => {
  const c = new KvCluster(IDS, 8);
  c.extra = () => ({ strictReconfigCheck: false });
  try {
    await c.startAll();
    const l = await c.waitLeader();
    await c.run(l.put('k', 'v'));
    await c.stop(IDS.find((id) => id !== l.id)!);
    await c.clock.advanceAsync(200);
    await c.run(l.addMember('d'));
    assert.deepEqual(l.members().voters, [...IDS, 'd'].sort());
  } finally {
    await c.closeAll();
  }
});

test("a follower's change while the leader's own is pending fails with QUORUMKV_CONF_CHANGE_PENDING through the log, not by a timeout", async () => {
  const c = new KvCluster(IDS, 11);
  try {
    await c.startAll();
    const l = await c.waitLeader();
    const f = c.followers()[0]!;
    await c.run(l.put('k', 'v'));
    const first = l.addMember('d', undefined, { learner: true });
    const t0 = c.clock.now();
    const second = c.run(f.addMember('e'));
    await assert.rejects(second, (e: unknown) => isQuorumError(e, ErrorCode.CONF_CHANGE_PENDING));
    assert.ok(c.clock.now() - t0 < 200, `failed after ${c.clock.now() - t0} virtual ms`);
    await c.run(first);
    assert.deepEqual(l.members(), { voters: [...IDS].sort(), learners: ['d'] });
  } finally {
    await c.closeAll();
  }
});

test('a member that applied its own removal restarts knowing it: members() does not count it again', async () => {
  const c = new KvCluster(IDS, 9);
  try {
    await c.startAll();
    const l = await c.waitLeader();
    await c.run(l.put('k', 'v'));
    const gone = c.followers()[0]!;
    await c.run(l.removeMember(gone.id));
    await c.waitFor(() => gone.raft.removed, 2_000, 'removal applied');
    assert.ok(!gone.members().voters.includes(gone.id));
    await c.stop(gone.id);
    const back = await c.start(gone.id); // the others refuse it as removed at once
    await c.waitFor(() => back.raft.removed, 2_000, 'removed');
    assert.deepEqual(back.members().voters, IDS.filter((id) => id !== gone.id).sort(), `members() on restart: ${JSON.stringify(back.members())}`);
  } finally {
    await c.closeAll();
  }
});

test('a change made as soon as the previous one resolves is not refused as pending (etcd: remove the failed member, then add its replacement)', async () => {
  const c = new KvCluster(IDS, 9);
  try {
    await c.startAll();
    const l = await c.waitLeader();
    await c.run(l.put('k', 'v'));
    const [down, live] = IDS.filter((id) => id !== l.id) as [string, string];
    await c.stop(down);
    await c.clock.advanceAsync(200);
    // chained: the next call starts in the continuation of the previous one
    const members = await c.run(l.removeMember(down).then(() => l.addMember('d', undefined, { learner: true })));
    assert.deepEqual(members, { voters: [l.id, live].sort(), learners: ['d'] });
    // and from a follower
    const f = c.node(live);
    const after = await c.run(f.removeMember('d').then(() => f.addMember('e', undefined, { learner: true })));
    assert.deepEqual(after.learners, ['e']);
  } finally {
    await c.closeAll();
  }
});

test("a change another member's change overtook is refused by the leader with etcd's error (ErrIDExists, ErrIDRemoved, ErrMemberNotLearner), not applied as a no-op or as another change", async () => {
  const c = new KvCluster(IDS, 12);
  c.extra = () => ({ maxLearners: 5 });
  try {
    await c.startAll();
    const l = await c.waitLeader();
    await c.run(l.put('k', 'v'));
    const f = c.followers()[0]!;
    // f hears from the leader 60 ms late (less than an election timeout):
    // a change the leader applied is not applied on f yet when f makes its own
    c.net.setDelay({ minMs: 60, maxMs: 60 }, { from: l.id, to: f.id });
    const caughtUp = async (): Promise<void> => c.waitFor(() => f.raft.appliedIndex >= l.raft.appliedIndex, 2_000, `${f.id} catches up`);
    const addressOf = (n: { raft: unknown }, id: string): string | undefined => (n.raft as { addresses: Map<string, string> }).addresses.get(id);

    // the same learner added twice: the second does not change its address
    await c.run(l.addMember('d', 'd-first', { learner: true }));
    assert.ok(!f.members().learners.includes('d'), `${f.id} does not know d yet`);
    await assert.rejects(c.run(f.addMember('d', 'd-second', { learner: true })), refusedWith(ErrorCode.MEMBER_EXISTS, /already exist/));
    await caughtUp();
    for (const n of c.nodes.values()) assert.equal(addressOf(n, 'd'), 'd-first', `d's address on ${n.id}`);

    // a voter added under the id of a learner just added: not a promotion, nor "not ready"
    await c.run(l.addMember('e', 'e-addr', { learner: true }));
    assert.ok(!f.members().learners.includes('e'));
    await assert.rejects(c.run(f.addMember('e', 'e-addr')), refusedWith(ErrorCode.MEMBER_EXISTS, /already exist/));
    await caughtUp();

    // the same member removed twice
    await c.run(l.removeMember('e'));
    assert.ok(f.members().learners.includes('e'));
    await assert.rejects(c.run(f.removeMember('e')), refusedWith(ErrorCode.MEMBER_ID_REMOVED, /ID removed/));
    await caughtUp();

    // the same learner promoted twice
    await c.start('d', { join: true, members: [...IDS, 'd'] });
    await c.waitFor(() => c.node('d').raft.appliedIndex >= l.raft.appliedIndex, 5_000, 'd catches up');
    await c.run(l.promoteMember('d'));
    assert.ok(f.members().learners.includes('d'));
    await assert.rejects(c.run(f.promoteMember('d')), refusedWith(ErrorCode.MEMBER_NOT_LEARNER, /can only promote a learner/));
    await caughtUp();

    const expected = { voters: [...IDS, 'd'].sort(), learners: [] };
    for (const n of c.nodes.values()) assert.deepEqual(n.members(), expected, `members() on ${n.id}`);
  } finally {
    await c.closeAll();
  }
});

test('two learners added at once on two members, with room for one, leave one learner: the second fails with etcd ErrTooManyLearners', async () => {
  const c = new KvCluster(IDS, 13);
  try {
    await c.startAll();
    const l = await c.waitLeader();
    await c.run(l.put('k', 'v'));
    const f = c.followers()[0]!;
    c.net.setDelay({ minMs: 60, maxMs: 60 }, { from: l.id, to: f.id }); // f applies the leader's changes late
    await c.run(l.addMember('d', undefined, { learner: true }));
    assert.deepEqual(f.members().learners, [], `${f.id} does not know d yet`);
    await assert.rejects(c.run(f.addMember('e', undefined, { learner: true })), refusedWith(ErrorCode.TOO_MANY_LEARNERS, /too many learner/));
    await c.waitFor(() => f.raft.appliedIndex >= l.raft.appliedIndex, 2_000, `${f.id} catches up`);
    for (const n of c.nodes.values()) assert.deepEqual(n.members().learners, ['d'], `learners on ${n.id}`);
  } finally {
    await c.closeAll();
  }
});

test("updateMember (etcd's MemberUpdate) changes a member's address on every member, survives a restart, and is refused with etcd's errors: unknown or removed id, an address taken, and, by the leader, a member another change removed meanwhile", async () => {
  const c = new KvCluster(IDS, 14);
  c.extra = () => ({ maxLearners: 5 });
  try {
    await c.startAll();
    const l = await c.waitLeader();
    await c.run(l.put('k', 'v'));
    const f = c.followers()[0]!;
    const addressOf = (n: { raft: unknown }, id: string): string | undefined => (n.raft as { addresses: Map<string, string> }).addresses.get(id);
    const invalid = (re: RegExp) => (e: unknown) => isQuorumError(e, ErrorCode.INVALID_ARGUMENT) && re.test((e as Error).message);
    const caughtUp = async (): Promise<void> => {
      for (const n of c.nodes.values()) await c.waitFor(() => n.raft.appliedIndex >= l.raft.appliedIndex, 2_000, `${n.id} catches up`);
    };

    await c.run(l.addMember('d', 'd-first', { learner: true }));
    assert.deepEqual(
      l.memberList().members,
      [...IDS.map((id) => ({ id, isLearner: false })), { id: 'd', isLearner: true, address: 'd-first' }],
      'memberList: voters then learners, in id order; no address for the founders on a transport that needs none',
    );
    assert.equal(l.memberList().header.revision, l.status().revision);
    // made on a follower: the change goes through the leader
    const before = l.raft.appliedIndex;
    assert.deepEqual(await c.run(f.updateMember('d', 'd-second')), f.members(), 'resolves with the membership');
    assert.ok(l.raft.appliedIndex > before, 'a replicated change');
    await caughtUp();
    for (const n of c.nodes.values()) {
      assert.equal(addressOf(n, 'd'), 'd-second', `d's address on ${n.id}`);
      assert.deepEqual(n.members().learners, ['d'], `the membership is unchanged on ${n.id}`);
    }
    // a founding member gets an address too
    await c.run(l.updateMember(f.id, 'f-new'));
    await caughtUp();
    for (const n of c.nodes.values()) if (n.id !== f.id) assert.equal(addressOf(n, f.id), 'f-new');

    // refused, changing nothing
    const applied = l.raft.appliedIndex;
    await assert.rejects(c.run(l.updateMember('zz', 'somewhere')), refusedWith(ErrorCode.MEMBER_NOT_FOUND, /^etcdserver: member not found/));
    await assert.rejects(c.run(l.updateMember('d', 'f-new')), refusedWith(ErrorCode.PEER_ADDRESS_EXISTS, /^etcdserver: Peer URLs already exists/));
    await assert.rejects(c.run(l.updateMember('d', '')), invalid(/address/));
    await assert.rejects(c.run(l.updateMember('d', undefined as unknown as string)), invalid(/address/));
    await assert.rejects(c.run(l.addMember('e', 'f-new', { learner: true })), refusedWith(ErrorCode.PEER_ADDRESS_EXISTS, /Peer URLs already exists/));
    assert.equal(l.raft.appliedIndex, applied, 'nothing proposed');

    // removed meanwhile: refused on the follower that had not applied the
    // removal yet, by the leader, through the log
    c.net.setDelay({ minMs: 60, maxMs: 60 }, { from: l.id, to: f.id });
    await c.run(l.removeMember('d'));
    assert.ok(f.members().learners.includes('d'), `${f.id} has not applied the removal yet`);
    await assert.rejects(c.run(f.updateMember('d', 'd-third')), refusedWith(ErrorCode.MEMBER_ID_REMOVED, /ID removed/));
    await caughtUp();
    await assert.rejects(c.run(l.updateMember('d', 'd-third')), refusedWith(ErrorCode.MEMBER_ID_REMOVED, /ID removed/));

    // the address survives a restart of a member (replayed from its log)
    const g = c.followers().find((n) => n.id !== f.id)!;
    await c.stop(g.id);
    await c.start(g.id);
    assert.equal(addressOf(c.node(g.id), f.id), 'f-new', 'after a restart');
  } finally {
    await c.closeAll();
  }
});

test("a member removed, or moved by updateMember, frees its address: a new member added there is accepted, also on a member that has not applied the removal or update yet (the leader's membership decides, as etcd's ValidateConfigurationChange at apply)", async () => {
  const c = new KvCluster(IDS, 15);
  c.extra = () => ({ maxLearners: 5 });
  try {
    await c.startAll();
    const l = await c.waitLeader();
    await c.run(l.put('k', 'v'));
    const f = c.followers()[0]!;
    // on the same member: removed, then added back at the same address
    await c.run(l.addMember('d', 'addr-1', { learner: true }));
    await c.run(l.removeMember('d'));
    await c.run(l.addMember('e', 'addr-1', { learner: true }));
    assert.deepEqual(l.members().learners, ['e']);
    // on a member that has not applied the removal yet
    c.net.setDelay({ minMs: 60, maxMs: 60 }, { from: l.id, to: f.id });
    await c.run(l.removeMember('e'));
    assert.ok(f.members().learners.includes('e'), `${f.id} has not applied the removal yet`);
    await c.run(f.addMember('g', 'addr-1', { learner: true }));
    assert.deepEqual(f.members().learners, ['g']);
    // an address freed by an update, on a member that has not applied it yet
    await c.run(l.updateMember('g', 'addr-2'));
    assert.equal((f.raft as unknown as { addresses: Map<string, string> }).addresses.get('g'), 'addr-1', `${f.id} has not applied the update yet`);
    await c.run(f.addMember('h', 'addr-1', { learner: true }));
    assert.deepEqual([...l.members().learners].sort(), ['g', 'h']);
    // and the address still taken is refused, by the leader through the log
    await assert.rejects(c.run(f.addMember('i', 'addr-2', { learner: true })), refusedWith(ErrorCode.PEER_ADDRESS_EXISTS, /Peer URLs already exists/));
  } finally {
    await c.closeAll();
  }
});

test('updateMember of a member added meanwhile, made on a member that has not applied the addition yet, goes through (the leader, which applied it, decides)', async () => {
  const c = new KvCluster(IDS, 16);
  c.extra = () => ({ maxLearners: 5 });
  try {
    await c.startAll();
    const l = await c.waitLeader();
    await c.run(l.put('k', 'v'));
    const f = c.followers()[0]!;
    c.net.setDelay({ minMs: 60, maxMs: 60 }, { from: l.id, to: f.id });
    await c.run(l.addMember('d', 'addr-1', { learner: true }));
    assert.ok(!f.members().learners.includes('d'), `${f.id} has not applied the addition yet`);
    await c.run(f.updateMember('d', 'addr-2'));
    assert.equal((l.raft as unknown as { addresses: Map<string, string> }).addresses.get('d'), 'addr-2');
    // an id no member knows is still refused (by the leader, through the log)
    await assert.rejects(c.run(f.updateMember('zz', 'addr-3')), refusedWith(ErrorCode.MEMBER_NOT_FOUND, /member not found/));
  } finally {
    await c.closeAll();
  }
});

test("each membership refusal fails on the leader with etcd's error as its own code (a UsageError), changing nothing; malformed input stays QUORUMKV_INVALID_ARGUMENT", async () => {
  const c = new KvCluster(IDS, 17);
  try {
    await c.startAll();
    const l = await c.waitLeader();
    await c.run(l.put('k', 'v'));
    const voter = c.followers()[0]!.id;
    await c.run(l.addMember('gone', 'gone-addr', { learner: true }));
    await c.run(l.removeMember('gone'));
    await c.run(l.addMember('d', 'd-addr', { learner: true })); // the one learner maxLearners (1) allows
    const applied = l.raft.appliedIndex;
    const members = l.members();
    const cases: Array<[string, () => Promise<unknown>, ErrorCode, RegExp]> = [
      ['addMember of a voter', () => l.addMember(voter, 'x-addr'), ErrorCode.MEMBER_EXISTS, /^etcdserver: member ID already exist/],
      ['addMember of a learner', () => l.addMember('d', 'x-addr', { learner: true }), ErrorCode.MEMBER_EXISTS, /^etcdserver: member ID already exist/],
      ["RaftNode's addLearner of a voter", () => l.raft.addLearner(voter), ErrorCode.MEMBER_EXISTS, /^etcdserver: member ID already exist/],
      ["RaftNode's addVoter of a voter", () => l.raft.addVoter(voter), ErrorCode.MEMBER_EXISTS, /^etcdserver: member ID already exist/],
      ['removeMember of an unknown id', () => l.removeMember('zz'), ErrorCode.MEMBER_NOT_FOUND, /^etcdserver: member not found/],
      ['promoteMember of an unknown id', () => l.promoteMember('zz'), ErrorCode.MEMBER_NOT_FOUND, /^etcdserver: member not found/],
      ['updateMember of an unknown id', () => l.updateMember('zz', 'zz-addr'), ErrorCode.MEMBER_NOT_FOUND, /^etcdserver: member not found/],
      ['addMember of a removed id', () => l.addMember('gone', 'x-addr'), ErrorCode.MEMBER_ID_REMOVED, /was removed from the cluster/],
      ['removeMember of a removed id', () => l.removeMember('gone'), ErrorCode.MEMBER_ID_REMOVED, /^etcdserver: ID removed/],
      ['promoteMember of a removed id', () => l.promoteMember('gone'), ErrorCode.MEMBER_ID_REMOVED, /^etcdserver: ID removed/],
      ['updateMember of a removed id', () => l.updateMember('gone', 'x-addr'), ErrorCode.MEMBER_ID_REMOVED, /^etcdserver: ID removed/],
      ['addMember at a taken address', () => l.addMember('e', 'd-addr'), ErrorCode.PEER_ADDRESS_EXISTS, /^etcdserver: Peer URLs already exists/],
      ['updateMember to a taken address', () => l.updateMember(voter, 'd-addr'), ErrorCode.PEER_ADDRESS_EXISTS, /^etcdserver: Peer URLs already exists/],
      ['promoteMember of a voter', () => l.promoteMember(voter), ErrorCode.MEMBER_NOT_LEARNER, /^etcdserver: can only promote a learner member/],
      ['a learner beyond maxLearners', () => l.addMember('e', 'e-addr', { learner: true }), ErrorCode.TOO_MANY_LEARNERS, /^etcdserver: too many learner members in cluster/],
      // malformed input
      ['removeMember of an empty id', () => l.removeMember(''), ErrorCode.INVALID_ARGUMENT, /member id must/],
      ['promoteMember of an id that is not a string', () => l.promoteMember(5 as unknown as string), ErrorCode.INVALID_ARGUMENT, /member id must/],
      ['addMember of an empty id', () => l.addMember('', 'x-addr', { learner: true }), ErrorCode.INVALID_ARGUMENT, /member id must/],
      ['updateMember of an empty id', () => l.updateMember('', 'x-addr'), ErrorCode.INVALID_ARGUMENT, /member id must/],
    ];
    for (const [what, call, code, message] of cases) {
      await assert.rejects(c.run(call()), refusedWith(code, message), what);
    }
    assert.equal(l.raft.appliedIndex, applied, 'nothing proposed');
    assert.deepEqual(l.members(), members);
  } finally {
    await c.closeAll();
  }
});

test("each membership refusal of a change another member's overtook comes back through the log to the follower that made it, with etcd's error as its own code (a UsageError)", async () => {
  const c = new KvCluster(IDS, 18);
  c.extra = () => ({ maxLearners: 2 });
  try {
    await c.startAll();
    const l = await c.waitLeader();
    await c.run(l.put('k', 'v'));
    const f = c.followers()[0]!;
    // f hears from the leader 60 ms late: it makes each change before it
    // applies the leader's that overtakes it, and its own check passes
    c.net.setDelay({ minMs: 60, maxMs: 60 }, { from: l.id, to: f.id });
    const caughtUp = async (): Promise<void> => {
      for (const n of c.nodes.values()) await c.waitFor(() => n.raft.appliedIndex >= l.raft.appliedIndex, 2_000, `${n.id} catches up`);
    };
    const overtaken = async (what: string, leaders: () => Promise<unknown>, followers: () => Promise<unknown>, code: ErrorCode, message: RegExp): Promise<void> => {
      const before = f.members();
      await c.run(leaders());
      assert.deepEqual(f.members(), before, `${what}: ${f.id} has not applied the leader's change yet`);
      await assert.rejects(c.run(followers()), refusedWith(code, message), what);
      await caughtUp();
    };

    await overtaken('a learner added twice', () => l.addMember('d', 'd-addr', { learner: true }), () => f.addMember('d', 'd-other', { learner: true }), ErrorCode.MEMBER_EXISTS, /^etcdserver: member ID already exist/);
    await overtaken('a learner past the last place', () => l.addMember('e', 'e-addr', { learner: true }), () => f.addMember('y', 'y-addr', { learner: true }), ErrorCode.TOO_MANY_LEARNERS, /^etcdserver: too many learner members in cluster/);
    await overtaken('an address taken meanwhile', () => l.updateMember('d', 'd-new'), () => f.addMember('x', 'd-new'), ErrorCode.PEER_ADDRESS_EXISTS, /^etcdserver: Peer URLs already exists/);
    await overtaken('a learner removed meanwhile, promoted', () => l.removeMember('e'), () => f.promoteMember('e'), ErrorCode.MEMBER_ID_REMOVED, /^etcdserver: ID removed/);
    await c.run(l.addMember('e2', 'e2-addr', { learner: true }));
    await caughtUp();
    await overtaken('a learner removed meanwhile, updated', () => l.removeMember('e2'), () => f.updateMember('e2', 'e2-new'), ErrorCode.MEMBER_ID_REMOVED, /^etcdserver: ID removed/);
    await assert.rejects(c.run(f.updateMember('zz', 'zz-addr')), refusedWith(ErrorCode.MEMBER_NOT_FOUND, /^etcdserver: member not found/), 'an unknown id, updated');
    await c.start('d', { join: true, members: [...IDS, 'd'] });
    await c.waitFor(() => c.node('d').raft.appliedIndex >= l.raft.appliedIndex, 5_000, 'd catches up');
    await overtaken('a learner promoted twice', () => l.promoteMember('d'), () => f.promoteMember('d'), ErrorCode.MEMBER_NOT_LEARNER, /^etcdserver: can only promote a learner member/);
    // the Raft core refuses a learner added under a voter's id as the
    // demotion of a voter; its proposer, which did not know the id, made an
    // addition another member's overtook
    await overtaken('a learner added under the id of a voter added meanwhile', () => l.addMember('v', 'v-addr'), () => f.addMember('v', 'v-other', { learner: true }), ErrorCode.MEMBER_EXISTS, /^etcdserver: member ID already exist/);

    const expected = { voters: [...IDS, 'd', 'v'].sort(), learners: [] };
    for (const n of c.nodes.values()) assert.deepEqual(n.members(), expected, `members() on ${n.id}`);
  } finally {
    await c.closeAll();
  }
});

test('a learner added on a new leader under the id of a voter whose addition it applies only once it leads is refused with QUORUMKV_MEMBER_EXISTS, as through the log', async () => {
  const c = new KvCluster(IDS, 19);
  try {
    await c.startAll();
    const l = await c.waitLeader();
    await c.run(l.put('k', 'v'));
    const [f1, f2] = c.followers() as [KvNode, KvNode];
    // the old leader's messages take 5 ms, the followers' to each other 20 ms
    for (const f of [f1, f2]) c.net.setDelay({ minMs: 5, maxMs: 5 }, { from: l.id, to: f.id });
    c.net.setDelay({ minMs: 20, maxMs: 20 }, { from: f1.id, to: f2.id });
    c.net.setDelay({ minMs: 20, maxMs: 20 }, { from: f2.id, to: f1.id });
    const last = l.raft.status().lastIndex;
    void l.addMember('x').catch(() => undefined);
    // once both followers hold the addition of x, the old leader is cut off:
    // neither hears that it is committed
    for (let i = 0; i < 50 && (f1.raft.status().lastIndex <= last || f2.raft.status().lastIndex <= last); i++) await c.clock.advanceAsync(1);
    assert.ok(f1.raft.status().lastIndex > last && f2.raft.status().lastIndex > last, 'both followers hold the addition');
    c.net.isolate(l.id);
    assert.ok(!f1.members().voters.includes('x') && !f2.members().voters.includes('x'), 'neither follower applied the addition');
    // a new leader, that has not committed an entry of its term yet
    await c.waitFor(() => f1.raft.isLeader || f2.raft.isLeader, 5_000, 'a new leader');
    const n = f1.raft.isLeader ? f1 : f2;
    assert.ok(!n.members().voters.includes('x'), `${n.id} has not applied the addition of x yet`);
    const learner = n.addMember('x', undefined, { learner: true });
    await assert.rejects(c.run(learner), refusedWith(ErrorCode.MEMBER_EXISTS, /^etcdserver: member ID already exist/));
    assert.ok(n.members().voters.includes('x'), 'x stays a voter');
  } finally {
    await c.closeAll();
  }
});

test('a removed id added back as a learner is refused with QUORUMKV_MEMBER_ID_REMOVED also when the learners fill maxLearners, as etcd checks ErrIDRemoved first', async () => {
  const c = new KvCluster(IDS, 20);
  try {
    await c.startAll();
    const l = await c.waitLeader();
    await c.run(l.put('k', 'v'));
    await c.run(l.addMember('gone', undefined, { learner: true }));
    await c.run(l.removeMember('gone'));
    await c.run(l.addMember('d', undefined, { learner: true })); // the one learner maxLearners (1) allows
    const applied = l.raft.appliedIndex;
    await assert.rejects(c.run(l.addMember('gone', undefined, { learner: true })), refusedWith(ErrorCode.MEMBER_ID_REMOVED, /was removed from the cluster/));
    await assert.rejects(c.run(l.raft.addLearner('gone', undefined, { maxLearners: 1 })), refusedWith(ErrorCode.MEMBER_ID_REMOVED, /was removed from the cluster/));
    assert.equal(l.raft.appliedIndex, applied, 'nothing proposed');
  } finally {
    await c.closeAll();
  }
});
