// RaftNode edge behaviours on a MemoryNetwork, memory-level and a virtual
// clock: the error codes of calls that cannot succeed (closed node, lost
// quorum, forwarding disabled, pending membership change, fatal state
// machine), a removed member that cannot disturb the cluster, ReadIndex across
// a leader loss (Raft thesis §6.4), restart from data with only an id and a
// transport. Deterministic: no seed to replay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pack, unpack } from '../../src/codec/index.js';
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import { RaftNode, VirtualClock, type ApplyEntry, type StateMachine } from '../../src/node/index.js';
import { message, type Message } from '../../src/raftpb/index.js';
import { MemoryLevel } from 'memory-level';
import { LevelLogStorage } from '../../src/storage/index.js';
import { MemoryNetwork, parseAddress, type Transport } from '../../src/transport/index.js';
import { LogStateMachine, TestCluster, advanceUntil, cmd } from './helpers.js';
import { detachedView, proxiedView, shrunkView } from '../mvcc/helpers.js';

const IDS = ['a', 'b', 'c'];
const VIEW = { keyEncoding: 'view', valueEncoding: 'view' } as const;

function hasCode(code: string): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(isQuorumError(e), `a QuorumError, got ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  };
}

/** Settles `p` while advancing virtual time; returns the rejection (fails if it resolved). */
async function rejection(c: TestCluster, p: Promise<unknown>, maxMs = 10_000): Promise<unknown> {
  try {
    await c.run(p, maxMs);
  } catch (err) {
    return err;
  }
  assert.fail('expected a rejection');
}

test('calls on a closed node reject with QUORUMKV_NODE_CLOSED, and pending ones are rejected by close()', async () => {
  const c = new TestCluster({ seed: 11 });
  try {
    await c.startAll(IDS);
    const leader = await c.waitLeader();
    // Cut the leader off so a proposal stays pending, then close it.
    c.net.isolate(leader.id);
    const pending = assert.rejects(leader.node.propose(cmd('k', 'v')), hasCode(ErrorCode.NODE_CLOSED));
    const pendingRead = assert.rejects(leader.node.readIndex(), hasCode(ErrorCode.NODE_CLOSED));
    await leader.node.close();
    await pending;
    await pendingRead;
    await assert.rejects(leader.node.propose(cmd('k', 'v')), hasCode(ErrorCode.NODE_CLOSED));
    await assert.rejects(leader.node.readIndex(), hasCode(ErrorCode.NODE_CLOSED));
    await assert.rejects(leader.node.addLearner('z'), hasCode(ErrorCode.NODE_CLOSED));
    await assert.rejects(leader.node.transferLeader('b'), hasCode(ErrorCode.NODE_CLOSED));
    await leader.node.close(); // idempotent
    await leader.node.idle(); // resolves on a closed node
  } finally {
    await c.closeAll();
  }
});

test('a proposal to a leader cut off from the quorum rejects with QUORUMKV_TIMEOUT and is never applied', async () => {
  const c = new TestCluster({ seed: 12 });
  try {
    await c.startAll(IDS);
    const old = await c.waitLeader();
    await c.run(old.node.propose(cmd('before', '1')));
    c.net.isolate(old.id);
    const err = await rejection(c, old.node.propose(cmd('lost', 'x'), { timeoutMs: 500 }));
    hasCode(ErrorCode.TIMEOUT)(err);
    // The majority elects a new leader and goes on; the old leader's entry is overwritten once it rejoins.
    await c.waitFor(() => [...c.members.values()].some((m) => m.id !== old.id && m.node.isLeader), 5_000, 'a new leader');
    const fresh = c.leader()!;
    assert.notEqual(fresh.id, old.id);
    await c.run(fresh.node.propose(cmd('after', '2')));
    c.net.heal();
    await c.waitFor(() => old.sm.applyLog.some((l) => l.endsWith(' after=2')), 5_000, 'the old leader catches up');
    for (const m of c.members.values()) {
      assert.ok(!m.sm.applyLog.some((l) => l.endsWith(' lost=x')), `${m.id} never applied the timed-out proposal`);
    }
  } finally {
    await c.closeAll();
  }
});

test('a readIndex on a member cut off from the quorum rejects with QUORUMKV_TIMEOUT', async () => {
  const c = new TestCluster({ seed: 13 });
  try {
    await c.startAll(IDS);
    const leader = await c.waitLeader();
    await c.run(leader.node.propose(cmd('k', '1')));
    c.net.isolate(leader.id);
    hasCode(ErrorCode.TIMEOUT)(await rejection(c, leader.node.readIndex({ timeoutMs: 400 })));
    const follower = c.members.get(IDS.find((id) => id !== leader.id)!)!;
    c.net.heal();
    c.net.isolate(follower.id);
    hasCode(ErrorCode.TIMEOUT)(await rejection(c, follower.node.readIndex({ timeoutMs: 400 })));
  } finally {
    await c.closeAll();
  }
});

test('a follower with proposal forwarding disabled rejects proposals with QUORUMKV_NOT_LEADER, also those made before a leader was known', async () => {
  const c = new TestCluster({ seed: 14 });
  try {
    const members = await Promise.all(IDS.map((id) => c.start(id, IDS, IDS, { disableProposalForwarding: true })));
    // Made at once, before any election: it waits for a leader, then is refused on followers.
    const early = members.map((m) => m.node.propose(cmd('early', m.id)).then(
      () => 'ok',
      (e: unknown) => (isQuorumError(e) ? e.code : String(e)),
    ));
    const leader = await c.waitLeader();
    const outcomes = await c.run(Promise.all(early));
    for (let i = 0; i < IDS.length; i++) {
      assert.equal(outcomes[i], IDS[i] === leader.id ? 'ok' : ErrorCode.NOT_LEADER, `early proposal on ${IDS[i]}`);
    }
    const follower = c.members.get(IDS.find((id) => id !== leader.id)!)!;
    await assert.rejects(follower.node.propose(cmd('k', 'v')), hasCode(ErrorCode.NOT_LEADER));
    assert.ok((await c.run(leader.node.propose(cmd('k', 'v')))) > 0);
  } finally {
    await c.closeAll();
  }
});

test('a second membership change while one is pending rejects with QUORUMKV_CONF_CHANGE_PENDING; bad member ids are refused', async () => {
  const c = new TestCluster({ seed: 15 });
  try {
    await c.startAll(IDS);
    const leader = await c.waitLeader();
    await c.run(leader.node.propose(cmd('k', 'v'))); // the leader has committed in its term
    const first = leader.node.addLearner('d');
    await assert.rejects(leader.node.addLearner('e'), hasCode(ErrorCode.CONF_CHANGE_PENDING));
    const cs = await c.run(first);
    assert.deepEqual(cs.learners, ['d']);
    await assert.rejects(leader.node.addVoter(''), hasCode(ErrorCode.INVALID_ARGUMENT));
    await assert.rejects(leader.node.promoteLearner('a'), hasCode(ErrorCode.MEMBER_NOT_LEARNER)); // a voter
    await assert.rejects(leader.node.promoteLearner('nobody'), hasCode(ErrorCode.MEMBER_NOT_FOUND));
    await assert.rejects(leader.node.promoteLearner(''), hasCode(ErrorCode.INVALID_ARGUMENT));
    await assert.rejects(leader.node.removeMember('nobody'), hasCode(ErrorCode.MEMBER_NOT_FOUND));
    await assert.rejects(leader.node.removeMember(''), hasCode(ErrorCode.INVALID_ARGUMENT));
    for (const bad of [{ maxLearners: 0 }, { maxLearners: 1.5 }, { maxLearners: '2' }, { max: 2 }, null]) {
      await assert.rejects(leader.node.addLearner('e', undefined, bad as never), hasCode(ErrorCode.INVALID_ARGUMENT), JSON.stringify(bad));
    }
    await assert.rejects(leader.node.addLearner('e', undefined, { maxLearners: 1 }), (e: unknown) => hasCode(ErrorCode.TOO_MANY_LEARNERS)(e) && /too many learner/.test((e as Error).message));
    await assert.rejects(leader.node.addLearner('', undefined, { maxLearners: 1 }), hasCode(ErrorCode.INVALID_ARGUMENT)); // a malformed id, whatever the room
    await assert.rejects(leader.node.addLearner('a', undefined, { maxLearners: 1 }), hasCode(ErrorCode.MEMBER_EXISTS)); // a voter, whatever the room
    assert.deepEqual(leader.node.members().learners, ['d']);
    const follower = c.members.get(IDS.find((id) => id !== leader.id)!)!;
    await assert.rejects(follower.node.transferLeader(leader.id === 'a' ? 'b' : 'a'), (e: unknown) =>
      // the target may be the follower itself, which is already... not the leader: NOT_LEADER either way
      hasCode(ErrorCode.NOT_LEADER)(e),
    );
    await assert.rejects(leader.node.transferLeader('d'), hasCode(ErrorCode.BAD_LEADER_TRANSFEREE)); // a learner (etcd's ErrBadLeaderTransferee)
  } finally {
    await c.closeAll();
  }
});

test('a removed member stops ticking and the others ignore it; one cut off during its removal is told so once the partition heals, and stops', async () => {
  const c = new TestCluster({ seed: 16 });
  try {
    await c.startAll(['a', 'b', 'c', 'd']);
    const leader = await c.waitLeader();
    await c.run(leader.node.propose(cmd('k', '1')));
    const [informed, unaware] = ['a', 'b', 'c', 'd'].filter((id) => id !== leader.id) as [string, string];
    // `unaware` is cut off first: it never applies its removal.
    c.net.isolate(unaware);
    await c.run(c.leader()!.node.removeMember(unaware));
    await c.run(c.leader()!.node.removeMember(informed));
    const removed = c.members.get(informed)!;
    await c.waitFor(() => removed.node.status().removed, 5_000, 'the informed member learns it was removed');
    const stoppedTerm = removed.node.status().term;
    const before = c.leader()!;
    const term = before.node.status().term;

    // The others refuse the unaware member as removed (etcd's rafthttp: 410
    // Gone); once it can reach them again it hears so, and stops.
    const gone = c.members.get(unaware)!.node;
    assert.equal(gone.status().removed, false, 'cut off, it has not applied its removal');
    let told = false;
    gone.on('removed', () => (told = true));
    c.net.heal();
    const link = { from: unaware, to: before.id };
    const linkBefore = c.net.stats(link);
    await c.waitFor(() => gone.status().removed, 5_000, 'the unaware member is told it was removed');
    assert.ok(told, "its 'removed' event fired");
    await assert.rejects(gone.readIndex(), hasCode(ErrorCode.REMOVED));
    const linkStopped = c.net.stats(link);
    assert.equal(linkStopped.delivered, linkBefore.delivered, 'none of its messages is delivered: the leader forgot it');
    await c.clock.advanceAsync(2_000);
    assert.equal(c.net.stats(link).sent, linkStopped.sent, 'stopped, it sends nothing more');
    assert.notEqual(gone.status().role, 'leader');
    assert.equal(removed.node.status().term, stoppedTerm, 'the removed member stopped ticking');
    assert.equal(removed.node.status().role, 'follower');
    removed.node.campaign(); // ignored: it is stopped
    await assert.rejects(removed.node.readIndex(), hasCode(ErrorCode.REMOVED));
    await c.clock.advanceAsync(500);
    assert.equal(removed.node.status().term, stoppedTerm);

    // Neither disturbed the remaining two: same leader, same term, proposals commit.
    assert.equal(c.leader()?.id, before.id);
    assert.equal(before.node.status().term, term);
    assert.deepEqual(before.node.members().voters.sort(), ['a', 'b', 'c', 'd'].filter((id) => id !== informed && id !== unaware));
    const at = await c.run(before.node.propose(cmd('k', '2')));
    assert.ok(at > 0);
  } finally {
    await c.closeAll();
  }
});

test('a member restarts from its data with only its id, storage, transport and state machine (no peers, no addresses)', async () => {
  const c = new TestCluster({ seed: 17, snapshotEntries: 10, snapshotCatchUpEntries: 2 });
  try {
    await c.startAll(IDS);
    const leader = await c.waitLeader();
    for (let i = 0; i < 25; i++) await c.run(leader.node.propose(cmd(`k${i}`, 'v')));
    const follower = IDS.find((id) => id !== leader.id)!;
    await c.waitFor(() => c.members.get(follower)!.node.status().snapshotIndex > 0, 5_000, 'a local snapshot on the follower');
    await c.stop(follower);
    await c.run(leader.node.propose(cmd('while-down', 'v')));

    // Restart by hand: a fresh transport that knows no peer.
    const db = c.dbs.get(follower)!;
    const storage = await LevelLogStorage.open({ db: db.sublevel<Uint8Array, Uint8Array>('raft', VIEW) as never });
    const sm = await LogStateMachine.open(db.sublevel<Uint8Array, Uint8Array>('sm', VIEW));
    const node = await RaftNode.create<number>({ id: follower, storage, transport: c.net.transport(follower), stateMachine: sm, clock: c.clock, tickMs: 10 });
    c.members.set(follower, { id: follower, db, node, sm });
    assert.deepEqual(node.members().voters.sort(), IDS, 'the membership comes from the data');
    await c.waitFor(() => sm.applyLog.some((l) => l.endsWith(' while-down=v')), 5_000, 'the restarted member catches up');
    assert.deepEqual(sm.applyLog, leader.sm.applyLog);
    // It takes part in the cluster again: it can lead.
    await c.run(c.leader()!.node.transferLeader(follower));
    await c.waitFor(() => c.leader()?.id === follower, 5_000, 'the restarted member leads');
    await c.run(node.propose(cmd('led', 'v')));
  } finally {
    await c.closeAll();
  }
});

test('readIndex waits through a leader loss instead of failing, and resolves under the next leader', async () => {
  const c = new TestCluster({ seed: 18 });
  try {
    await c.startAll(IDS);
    const leader = await c.waitLeader();
    const at = await c.run(leader.node.propose(cmd('r', '1')));
    const follower = c.members.get(IDS.find((id) => id !== leader.id)!)!;
    const errors: Error[] = [];
    follower.node.on('error', (e) => errors.push(e));
    // The leader vanishes right after the read is asked for, and the two
    // followers cannot reach each other for a while: both time out, forget the
    // leader (PreVote, thesis §9.6) and retry the read with no leader known.
    c.net.isolate(leader.id);
    const other = IDS.find((id) => id !== leader.id && id !== follower.id)!;
    c.net.partition([follower.id], [other]);
    const read = follower.node.readIndex({ timeoutMs: 5_000 });
    await c.waitFor(() => follower.node.status().role === 'preCandidate', 5_000, 'the follower forgets the leader');
    assert.equal(follower.node.leader, '');
    await c.clock.advanceAsync(300); // past a read retry with no leader
    c.net.heal();
    c.net.isolate(leader.id);
    await c.waitFor(() => [...c.members.values()].some((m) => m.id !== leader.id && m.node.isLeader), 5_000, 'a new leader');
    const idx = await c.run(read);
    assert.ok(idx >= at);
    assert.deepEqual(errors, [], 'no fatal error on the follower');
    assert.ok((await c.run(follower.node.propose(cmd('r', '2')))) > at, 'the follower still works');
  } finally {
    await c.closeAll();
  }
});

class FailingMachine implements StateMachine<number> {
  applied = 0;
  constructor(private readonly failAt: string) {}
  appliedIndex(): number {
    return this.applied;
  }
  apply(entries: ApplyEntry[]): number[] {
    for (const e of entries) {
      if (e.kind === 'normal' && (unpack(e.data) as string[])[0] === this.failAt) throw new Error('state machine failure');
      this.applied = e.index;
    }
    return entries.map((e) => e.index);
  }
  snapshot(): Uint8Array {
    return new Uint8Array(0);
  }
  restore(): void {}
}

test('a state machine failure stops the member: error event, pending and later calls reject QUORUMKV_NODE_CLOSED, it stops sending', async () => {
  const c = new TestCluster({ seed: 19 });
  try {
    await c.startAll(IDS);
    const leader = await c.waitLeader();
    // Restart one follower from its log with a state machine that throws on 'boom'.
    const victimId = IDS.find((id) => id !== leader.id)!;
    await c.stop(victimId);
    const db = c.dbs.get(victimId)!;
    const storage = await LevelLogStorage.open({ db: db.sublevel<Uint8Array, Uint8Array>('raft', VIEW) as never });
    const sent: Message[] = [];
    const base = c.net.transport(victimId);
    for (const p of IDS) if (p !== victimId) base.addPeer(p);
    const transport: Transport = {
      id: base.id,
      start: (h) => base.start(h),
      send: (ms) => {
        sent.push(...ms);
        base.send(ms);
      },
      addPeer: (id, a) => base.addPeer(id, a),
      removePeer: (id) => base.removePeer(id),
      close: () => base.close(),
    };
    const node = await RaftNode.create<number>({ id: victimId, storage, transport, stateMachine: new FailingMachine('boom'), clock: c.clock, tickMs: 10 });
    const errors: Error[] = [];
    node.on('error', (e) => errors.push(e));
    await c.run(leader.node.propose(cmd('x', '1')));
    const pending = node.propose(cmd('boom', '1')).then(
      () => assert.fail('the proposal that broke the state machine resolved'),
      (e: unknown) => e,
    );
    await c.waitFor(() => errors.length > 0, 5_000, 'the fatal error');
    assert.match(errors[0]!.message, /state machine failure/);
    hasCode(ErrorCode.NODE_CLOSED)(await pending);
    await assert.rejects(node.propose(cmd('y', '1')), hasCode(ErrorCode.NODE_CLOSED));
    await node.idle(); // returns although work is left
    const count = sent.length;
    await c.clock.advanceAsync(1_000);
    assert.equal(sent.length, count, 'a failed member sends nothing more');
    // The other two keep going.
    assert.ok((await c.run(c.leader()!.node.propose(cmd('z', '1')))) > 0);
    await node.close();
  } finally {
    await c.closeAll();
  }
});

test('a member that installs a snapshot learns the members added while it was away, and forgets those removed', async () => {
  const c = new TestCluster({ seed: 20, snapshotEntries: 10, snapshotCatchUpEntries: 2 });
  try {
    await c.startAll(['a', 'b', 'c', 'e']);
    let leader = await c.waitLeader();
    if (leader.id === 'c') {
      await c.run(leader.node.transferLeader('a'));
      leader = await c.waitLeader();
      await c.waitFor(() => c.leader()?.id === 'a', 5_000, 'a leads');
      leader = c.leader()!;
    }
    await c.run(leader.node.propose(cmd('k', '0')));
    await c.stop('c');
    // While c is away: d joins (learner, then voter), e leaves, and the log is compacted past both changes.
    await c.run(leader.node.addLearner('d'));
    await c.start('d', undefined, ['a', 'b', 'c', 'd']);
    await c.waitFor(() => c.members.get('d')!.sm.applyLog.length >= 1, 5_000, 'd catches up');
    await c.run(leader.node.promoteLearner('d'));
    await c.run(leader.node.removeMember('e'));
    for (let i = 1; i <= 30; i++) await c.run(leader.node.propose(cmd(`k${i}`, String(i))));
    await c.waitFor(() => leader.node.status().snapshotIndex > 20, 5_000, 'a snapshot past the membership changes');

    // c comes back knowing only a, b and e: the leader sends it a snapshot.
    const back = await c.start('c', undefined, ['a', 'b', 'e']);
    await c.waitFor(() => back.node.status().snapshotIndex > 20, 5_000, 'c installs the snapshot');
    assert.deepEqual(back.node.members().voters.sort(), ['a', 'b', 'c', 'd']);
    // d leads; c follows it and its proposals (forwarded to d) commit.
    await c.run(c.leader()!.node.transferLeader('d'));
    await c.waitFor(() => c.leader()?.id === 'd', 5_000, 'd leads');
    const at = await c.run(back.node.propose(cmd('via-c', 'x')), 5_000);
    assert.ok(at > 0);
    await c.waitFor(() => back.sm.applyLog.some((l) => l.endsWith(' via-c=x')), 5_000, 'c applies under d');
    // e is forgotten: nothing c sends reaches it any more, and nothing from it reaches c.
    const toE = c.net.stats({ from: 'c', to: 'e' }).sent;
    await c.clock.advanceAsync(500);
    assert.equal(c.net.stats({ from: 'c', to: 'e' }).sent, toE, 'c no longer sends to the removed member');
  } finally {
    await c.closeAll();
  }
});

test('members keep the addresses of members added with one across log compaction and restarts; an address the transport refuses does not stop anyone', async () => {
  const c = new TestCluster({ seed: 21, snapshotEntries: 10, snapshotCatchUpEntries: 2 });
  // What each member's transport was told: id -> address (TcpTransport checks the format; so does this wrapper).
  const seen = new Map<string, Map<string, string | undefined>>();
  const realTransport = c.net.transport.bind(c.net);
  c.net.transport = (id: string): Transport => {
    const t = realTransport(id);
    const mine = new Map<string, string | undefined>();
    seen.set(id, mine);
    return {
      id: t.id,
      start: (h) => t.start(h),
      send: (ms) => t.send(ms),
      addPeer: (peer, address) => {
        if (address !== undefined) parseAddress(address);
        if (address !== undefined || !mine.has(peer)) mine.set(peer, address);
        t.addPeer(peer, address);
      },
      removePeer: (peer) => {
        mine.delete(peer);
        t.removePeer(peer);
      },
      close: () => t.close(),
    };
  };
  try {
    await c.startAll(IDS);
    const leader = await c.waitLeader();
    await c.run(leader.node.propose(cmd('k', '0')));
    await c.run(leader.node.addLearner('d', '10.0.0.4:2380'));
    // A malformed address is committed too: every member applies it without failing.
    await c.run(leader.node.addLearner('e', 'no port here'));
    for (let i = 1; i <= 30; i++) await c.run(leader.node.propose(cmd(`k${i}`, String(i))));
    for (const m of c.members.values()) {
      assert.equal(seen.get(m.id)!.get('d'), '10.0.0.4:2380', `${m.id} dials d at its address`);
      assert.ok(seen.get(m.id)!.has('e'), `${m.id} knows e`);
      assert.equal(m.node.status().leader, leader.id, `${m.id} is still running`);
    }
    const follower = IDS.find((id) => id !== leader.id)!;
    await c.waitFor(() => c.members.get(follower)!.node.status().snapshotIndex > 20, 5_000, 'a snapshot past the change');
    // Restarted from its snapshot (the conf change entry is compacted away), it still knows d's address.
    await c.stop(follower);
    await c.start(follower, undefined, []);
    assert.equal(seen.get(follower)!.get('d'), '10.0.0.4:2380', 'the address came back from the snapshot');
  } finally {
    await c.closeAll();
  }
});

/** An in-memory LogStateMachine (same apply log and snapshot format) whose snapshot() waits while held. */
class GatedMachine implements StateMachine<number> {
  applied = 0;
  log: string[] = [];
  private gate: Promise<void> | undefined;
  private open: (() => void) | undefined;
  waiting = false;
  hold(): void {
    this.gate = new Promise((r) => (this.open = r));
  }
  release(): void {
    this.open?.();
    this.gate = undefined;
  }
  appliedIndex(): number {
    return this.applied;
  }
  apply(entries: ApplyEntry[]): number[] | Promise<number[]> {
    for (const e of entries) {
      if (e.kind === 'normal') this.log.push(`${e.index} ${(unpack(e.data) as string[]).join('=')}`);
      this.applied = e.index;
    }
    return entries.map((e) => e.index);
  }
  async snapshot(): Promise<Uint8Array> {
    const log = [...this.log];
    if (this.gate !== undefined) {
      this.waiting = true;
      await this.gate;
      this.waiting = false;
    }
    return pack({ log, kv: [] }); // LogStateMachine's snapshot format: the leader's snapshots restore here
  }
  restore(s: { data: Uint8Array; index: number }): void {
    this.log = [...(unpack(s.data) as { log: string[] }).log];
    this.applied = s.index;
  }
}

test('a local snapshot overtaken by a snapshot from the leader is dropped, not fatal', async () => {
  const c = new TestCluster({ seed: 22, snapshotEntries: 10, snapshotCatchUpEntries: 2 });
  try {
    await c.startAll(IDS);
    const leader = await c.waitLeader();
    // A learner whose state machine's snapshots can be held.
    await c.run(leader.node.addLearner('d'));
    const db = new MemoryLevel<Uint8Array, Uint8Array>(VIEW);
    const sm = new GatedMachine();
    const storage = await LevelLogStorage.open({ db });
    const transport = c.net.transport('d');
    for (const p of IDS) transport.addPeer(p); // a joining member's transport knows the cluster
    const node = await RaftNode.create<number>({ id: 'd', storage, transport, stateMachine: sm, clock: c.clock, tickMs: 10, snapshotEntries: 10, snapshotCatchUpEntries: 2 });
    const errors: Error[] = [];
    node.on('error', (e) => errors.push(e));
    sm.hold();
    for (let i = 0; i < 12; i++) await c.run(leader.node.propose(cmd(`a${i}`, 'x')));
    await c.waitFor(() => sm.waiting, 5_000, 'the learner starts a local snapshot');
    // While it is held: the learner is cut off, the leader moves on and compacts past it.
    c.net.isolate('d');
    for (let i = 0; i < 30; i++) await c.run(c.leader()!.node.propose(cmd(`b${i}`, 'y')));
    c.net.heal();
    await c.waitFor(() => node.status().lastIndex >= c.leader()!.node.status().lastIndex, 5_000, 'the learner receives the leader snapshot');
    sm.release();
    await c.clock.advanceAsync(100);
    assert.deepEqual(errors.map((e) => e.message), [], 'no fatal error');
    await c.waitFor(() => sm.log.some((l) => l.endsWith(' b29=y')), 5_000, 'the learner applies after the leader snapshot');
    assert.ok(node.status().snapshotIndex >= 30, 'the leader snapshot was installed');
    await node.close();
    await db.close();
  } finally {
    await c.closeAll();
  }
});

/** A LogStateMachine whose apply of a membership change waits while held. */
class SlowConfMachine extends GatedMachine {
  private confGate: Promise<void> | undefined;
  private openConf: (() => void) | undefined;
  confWaiting = false;
  holdConf(): void {
    this.confGate = new Promise((r) => (this.openConf = r));
  }
  releaseConf(): void {
    this.openConf?.();
    this.confGate = undefined;
  }
  override async apply(entries: ApplyEntry[]): Promise<number[]> {
    if (this.confGate !== undefined && entries.some((e) => e.kind === 'confChange')) {
      this.confWaiting = true;
      await this.confGate;
      this.confWaiting = false;
    }
    return super.apply(entries);
  }
}

test('a membership change counts as pending until the state machine has applied it (one change at a time, thesis §4.1)', async () => {
  const c = new TestCluster({ seed: 23 });
  try {
    // A one-member cluster whose state machine is slow to apply membership changes.
    const db = new MemoryLevel<Uint8Array, Uint8Array>(VIEW);
    const sm = new SlowConfMachine();
    const storage = await LevelLogStorage.open({ db });
    const node = await RaftNode.create<number>({ id: 'a', peers: ['a'], storage, transport: c.net.transport('a'), stateMachine: sm, clock: c.clock, tickMs: 10 });
    await c.waitFor(() => node.isLeader, 5_000, 'a leads');
    await c.run(node.propose(cmd('k', 'v')));
    sm.holdConf();
    const first = node.addLearner('b');
    await c.waitFor(() => sm.confWaiting, 5_000, 'the first change is committed and being applied');
    // Committed (and resolved: the node applied it) but not applied by the
    // state machine yet: a second change waits for it, out of the log.
    const last = node.status().lastIndex;
    let settled = false;
    const second = node.addLearner('c');
    second.then(
      () => (settled = true),
      () => (settled = true),
    );
    await c.clock.advanceAsync(500);
    assert.equal(settled, false, 'the second change waits');
    assert.equal(node.status().lastIndex, last, 'nothing proposed while the first is applied');
    sm.releaseConf();
    assert.deepEqual((await c.run(first)).learners, ['b']);
    assert.deepEqual((await c.run(second)).learners, ['b', 'c']);
    await node.close();
    await db.close();
  } finally {
    await c.closeAll();
  }
});

test('a removed id re-added through a member that has not yet applied the removal is ignored by every member (etcd re-checks at apply), and the removed member stays out', async () => {
  const IDS5 = ['a', 'b', 'c', 'd', 'e'];
  const c = new TestCluster({ seed: 3, snapshotEntries: 5, snapshotCatchUpEntries: 2 });
  try {
    await c.startAll(IDS5);
    const L = await c.waitLeader();
    const [F, Y] = IDS5.filter((id) => id !== L.id) as [string, string];
    const f = c.members.get(F)!;
    // F has the commits but applies them late
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let gated = true;
    const orig = f.sm.apply.bind(f.sm);
    f.sm.apply = async (entries) => {
      if (gated) await gate;
      return orig(entries);
    };
    await c.run(L.node.propose(cmd('k', '1')));
    await c.run(L.node.removeMember(Y));
    assert.ok(f.node.members().voters.includes(Y), 'F has not applied the removal');
    // F's own check passes (it does not know Y was removed): the change is proposed
    const added = f.node.addVoter(Y);
    const outcome = added.then(
      () => 'added',
      (e: unknown) => (isQuorumError(e, ErrorCode.MEMBER_ID_REMOVED) ? 'refused' : `failed: ${(e as Error).message}`),
    );
    await c.clock.advanceAsync(200);
    gated = false;
    release();
    assert.equal(await c.run(outcome), 'refused');
    for (let i = 0; i < 12; i++) await c.run(c.leader()!.node.propose(cmd('k', String(i))));
    for (const id of IDS5.filter((x) => x !== Y)) {
      const m = c.members.get(id)!;
      await c.waitFor(() => m.node.status().applied >= c.leader()!.node.status().applied, 5_000, `${id} catches up`);
      assert.ok(!m.node.members().voters.includes(Y) && !m.node.members().learners.includes(Y), `${id} does not list ${Y}`);
      assert.equal(m.node.status().removed, false, `${id} was not stopped`);
    }
  } finally {
    await c.closeAll();
  }
});

/**
 * Starts a, b, c and a learner d; d applies k = 1 and stops; then d is
 * removed, and `after` more entries are committed (enough for a snapshot
 * when the cluster takes them often).
 */
async function removeLearnerWhileDown(c: TestCluster, after = 0): Promise<void> {
  await c.startAll(['a', 'b', 'c']);
  const L = await c.waitLeader();
  await c.run(L.node.addLearner('d'));
  const d0 = await c.start('d', undefined, ['a', 'b', 'c', 'd']);
  await c.run(L.node.propose(cmd('k', '1')));
  await c.waitFor(() => d0.node.status().applied >= L.node.status().applied, 3_000, 'd catches up');
  await c.stop('d');
  await c.run(c.leader()!.node.removeMember('d'));
  for (let i = 0; i < after; i++) await c.run(c.leader()!.node.propose(cmd('k', String(i + 2))));
}

test('a learner removed while it was down is told so when it restarts, though it never campaigns (its transport reaches out to its peers)', async () => {
  const c = new TestCluster({ seed: 5 });
  try {
    await removeLearnerWhileDown(c);
    await c.run(c.leader()!.node.propose(cmd('k', '2')));
    const d = await c.start('d', undefined, ['a', 'b', 'c', 'd']);
    await c.waitFor(() => d.node.status().removed, 3_000, 'the learner is told it was removed');
    await assert.rejects(d.node.readIndex(), hasCode(ErrorCode.REMOVED));
    assert.equal(d.sm.kv.get('k'), '1', 'it never got the later write');
  } finally {
    await c.closeAll();
  }
});

test('a removed learner that restarts before the others (a whole cluster restarting) is told so once they are back, whether they replay its removal from the log or a snapshot', async () => {
  for (const [snapshotEntries, after] of [
    [10_000, 0],
    [3, 8],
  ] as const) {
    const c = new TestCluster({ seed: 6, snapshotEntries });
    try {
      await removeLearnerWhileDown(c, after);
      if (snapshotEntries === 3) assert.ok(c.leader()!.node.status().snapshotIndex > 0, 'the others took a snapshot after the removal');
      for (const id of ['a', 'b', 'c']) await c.stop(id);
      const d = await c.start('d', undefined, ['a', 'b', 'c', 'd']);
      await c.clock.advanceAsync(1_000);
      assert.equal(d.node.status().removed, false, 'no one is there to say so');
      for (const id of ['a', 'b', 'c']) await c.start(id, undefined, ['a', 'b', 'c', 'd']);
      await c.waitFor(() => d.node.status().removed, 5_000, `the learner is told it was removed (snapshotEntries ${snapshotEntries})`);
    } finally {
      await c.closeAll();
    }
  }
});

test('a follower that removes itself gets the new membership (it applies its removal before it hears of it from the others)', async () => {
  const c = new TestCluster({ seed: 3 });
  try {
    await c.startAll(['a', 'b', 'c', 'd']);
    const L = await c.waitLeader();
    await c.run(L.node.propose(cmd('k', '1')));
    const f = c.members.get(['a', 'b', 'c', 'd'].find((id) => id !== L.id)!)!;
    const cs = await c.run(f.node.removeMember(f.id));
    assert.ok(!cs.voters.includes(f.id));
    await c.waitFor(() => f.node.status().removed, 2_000, 'it stops');
  } finally {
    await c.closeAll();
  }
});

test('a linearizable read waits until the state machine has applied up to its read index, not only until the entries were handed to it (thesis §6.4)', async () => {
  const c = new TestCluster({ seed: 21 });
  try {
    await c.startAll(IDS);
    const leader = await c.waitLeader();
    await c.run(leader.node.propose(cmd('x', '0')));
    const f = c.members.get(IDS.find((id) => id !== leader.id)!)!;
    await c.waitFor(() => f.sm.kv.get('x') === '0', 5_000, 'the follower applies x=0');
    // the follower's next apply is held (a long apply: a restarted member catching up)
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    let held = false;
    const apply = f.sm.apply.bind(f.sm);
    f.sm.apply = async (entries: ApplyEntry[]): Promise<number[]> => {
      held = true;
      await gate;
      return apply(entries);
    };
    const at = await c.run(leader.node.propose(cmd('x', '1')));
    await c.waitFor(() => held, 5_000, 'the follower starts applying x=1');
    let seen: string | undefined;
    let released = false;
    const read = f.node.readIndex().then((index) => {
      released = true;
      seen = f.sm.kv.get('x');
      return index;
    });
    // many heartbeat rounds: the leader's answer to the ReadIndex is in
    await c.clock.advanceAsync(300);
    assert.equal(released, false, 'the read was released while the state machine was still applying its index');
    assert.equal(f.node.appliedIndex < at, true, 'appliedIndex counts only what the state machine has applied');
    open();
    const index = await c.run(read);
    assert.ok(index >= at);
    assert.equal(seen, '1', 'the read sees the write committed before it');
    assert.ok(f.node.appliedIndex >= at);
  } finally {
    await c.closeAll();
  }
});

test('a follower told by its leader that more is committed than its log holds (it lost acknowledged entries) stops with QUORUMKV_CORRUPT_LOG; the others go on', async () => {
  const ids = ['a', 'b', 'c'];
  const c = new TestCluster({ seed: 29 });
  try {
    // 'a' gets a transport whose handler the test can call, as the network would
    const net = c.net.transport('a');
    for (const p of ids) if (p !== 'a') net.addPeer(p);
    let handler: Parameters<Transport['start']>[0] | undefined;
    const tapped: Transport = new Proxy(net, {
      get(target, prop) {
        if (prop === 'start') {
          return (h: Parameters<Transport['start']>[0]) => {
            handler = h;
            return target.start(h);
          };
        }
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    await c.start('a', ids, ids, { transport: tapped, random: () => 0.99 }); // a slow election timer: it follows
    await c.start('b', ids, ids);
    await c.start('c', ids, ids);
    const leader = await c.waitLeader();
    assert.notEqual(leader.id, 'a');
    await c.run(leader.node.propose(cmd('x', '1')));
    const a = c.members.get('a')!.node;
    const errors: Error[] = [];
    a.on('error', (err: Error) => errors.push(err));
    const st = a.status();
    handler!.receive({ type: 'MsgHeartbeat', from: leader.id, to: 'a', term: st.term, commit: st.lastIndex + 5, index: 0, logTerm: 0, entries: [], reject: false, rejectHint: 0 } as unknown as Message);
    assert.equal(errors.length, 1);
    assert.ok(isQuorumError(errors[0], ErrorCode.CORRUPT_LOG), String(errors[0]));
    assert.match(errors[0]!.message, /lost acknowledged entries/);
    await assert.rejects(c.run(a.propose(cmd('y', '2'))), (e: unknown) => isQuorumError(e, ErrorCode.NODE_CLOSED));
    await c.run(leader.node.propose(cmd('z', '3')));
  } finally {
    await c.closeAll();
  }
});

test('propose() refuses data that is not a Uint8Array whose bytes can be read, and a bad timeoutMs, with QUORUMKV_INVALID_ARGUMENT, proposing nothing and leaving no timer', async () => {
  const c = new TestCluster({ seed: 23 });
  try {
    await c.startAll(IDS);
    const leader = await c.waitLeader();
    await c.run(leader.node.propose(cmd('x', '1')));
    for (const m of c.members.values()) await m.node.idle();
    const timers = c.clock.pendingTimers();
    const before = leader.node.status().lastIndex;
    // a string was replicated as zero bytes; an array as its numbers; undefined,
    // a Proxy of a Uint8Array and a view of a detached or shrunk buffer threw a TypeError
    const refused: [string, unknown][] = [
      ['a string', 'set x 1'],
      ['an array', [1, 2, 3]],
      ['undefined', undefined],
      ['a number', 5],
      ['an array-like', { length: 2 }],
      ['a Proxy of a Uint8Array', proxiedView()],
      ['a detached view', detachedView()],
      ['a shrunk view', shrunkView()],
    ];
    for (const [what, data] of refused) {
      await assert.rejects(leader.node.propose(data as never), hasCode(ErrorCode.INVALID_ARGUMENT), what);
    }
    for (const timeoutMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '5']) {
      await assert.rejects(leader.node.propose(cmd('x', '2'), { timeoutMs: timeoutMs as never }), hasCode(ErrorCode.INVALID_ARGUMENT), String(timeoutMs));
      await assert.rejects(leader.node.readIndex({ timeoutMs: timeoutMs as never }), hasCode(ErrorCode.INVALID_ARGUMENT), String(timeoutMs));
    }
    assert.equal(c.clock.pendingTimers(), timers, 'no timer left behind');
    await c.clock.advanceAsync(100);
    for (const m of c.members.values()) await m.node.idle();
    assert.equal(leader.node.status().lastIndex, before, 'nothing was proposed');
    assert.deepEqual(c.members.get(IDS.find((id) => id !== leader.id)!)!.sm.applyLog.length, 1);
    // a Buffer is a Uint8Array
    assert.ok((await c.run(leader.node.propose(Buffer.from(cmd('y', '3'))))) > before);
  } finally {
    await c.closeAll();
  }
});

test('close() waits for an apply in progress and applies nothing more: the state machine is the caller\'s to close once close() resolves', async () => {
  const clock = new VirtualClock();
  const db = new MemoryLevel<Uint8Array, Uint8Array>(VIEW);
  const storage = await LevelLogStorage.open({ db: db as never });
  const net = new MemoryNetwork({ seed: 1 });
  let closed = false;
  const afterClose: string[] = [];
  let release: (() => void) | undefined;
  const sm: StateMachine<number> = {
    appliedIndex: () => 0,
    apply: async (es: ApplyEntry[]) => {
      if (closed) afterClose.push(`apply ${es.map((e) => e.index).join(',')}`);
      // a slow apply (a disk write): the first proposal's holds until released
      if (es.some((e) => e.kind === 'normal') && release === undefined) await new Promise<void>((r) => (release = r));
      if (closed) afterClose.push(`apply returned ${es.map((e) => e.index).join(',')}`);
      return es.map((e) => e.index);
    },
    snapshot: () => new Uint8Array(0),
    restore: () => {},
  };
  const node = await RaftNode.create<number>({ id: 'a', peers: ['a'], storage, transport: net.transport('a'), stateMachine: sm, clock, tickMs: 10 });
  await advanceUntil(clock, () => node.isLeader, 5_000, 'a leader');
  await node.idle();
  const first = node.propose(cmd('x', '1')).catch((e: unknown) => e);
  await advanceUntil(clock, () => release !== undefined, 1_000, 'the first apply');
  const second = node.propose(cmd('x', '2')).catch((e: unknown) => e); // committed while the first is applied
  await advanceUntil(clock, () => node.status().commit > node.appliedIndex + 1, 1_000, 'the second commit');
  let closeDone = false;
  const closing = node.close().then(() => (closeDone = true));
  for (let i = 0; i < 2_000; i++) await new Promise((r) => setImmediate(r));
  assert.equal(closeDone, false, 'close() waits for the apply in progress');
  release!();
  await closing;
  closed = true;
  for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
  await clock.advanceAsync(100);
  assert.deepEqual(afterClose, [], 'no apply() after close() resolved');
  hasCode(ErrorCode.NODE_CLOSED)(await first);
  hasCode(ErrorCode.NODE_CLOSED)(await second);
  assert.equal(clock.pendingTimers(), 0, 'no timer left');
  await db.close();
});

test('a clock or state machine without the methods RaftNode calls is QUORUMKV_INVALID_CONFIG before the transport starts', async () => {
  const good: StateMachine<number> = { appliedIndex: () => 0, apply: (es) => es.map((e) => e.index), snapshot: () => new Uint8Array(0), restore: () => {} };
  const cases: Record<string, unknown>[] = [
    { clock: 5 },
    { clock: { now: () => 0 } },
    { clock: { now: () => 0, setTimeout: () => 1, clearTimeout: () => {}, soon: 'later' } },
    { stateMachine: {} },
    { stateMachine: { ...good, apply: undefined } },
    { stateMachine: { ...good, sync: true } },
    { stateMachine: { ...good, beginSnapshot: 1 } },
  ];
  for (const extra of cases) {
    const db = new MemoryLevel<Uint8Array, Uint8Array>(VIEW);
    const storage = await LevelLogStorage.open({ db: db as never });
    let started = false;
    const base = new MemoryNetwork({ seed: 1 }).transport('a');
    const transport: Transport = {
      id: 'a',
      start: (h) => {
        started = true;
        return base.start(h);
      },
      send: (ms) => base.send(ms),
      addPeer: (id, a) => base.addPeer(id, a),
      removePeer: (id) => base.removePeer(id),
      close: () => base.close(),
    };
    await assert.rejects(
      RaftNode.create<number>({ id: 'a', peers: ['a'], storage, transport, stateMachine: good, clock: new VirtualClock(), ...(extra as object) }),
      hasCode(ErrorCode.INVALID_CONFIG),
      JSON.stringify(Object.keys(extra)),
    );
    assert.equal(started, false, 'the transport was not started');
    await storage.close();
    await base.close();
  }
});

test("a transport of another id than the member's is QUORUMKV_INVALID_CONFIG before it starts: it sends only messages from its own id", async () => {
  // the member's messages were all dropped by its transport (their from is
  // not the transport's id): a cluster elected its leader without it, and
  // its proposals never reached one
  const good: StateMachine<number> = { appliedIndex: () => 0, apply: (es) => es.map((e) => e.index), snapshot: () => new Uint8Array(0), restore: () => {} };
  const db = new MemoryLevel<Uint8Array, Uint8Array>(VIEW);
  const storage = await LevelLogStorage.open({ db: db as never });
  const net = new MemoryNetwork({ seed: 1 });
  const transport = net.transport('b');
  try {
    await assert.rejects(
      RaftNode.create<number>({ id: 'a', peers: ['a', 'b', 'c'], storage, transport, stateMachine: good, clock: new VirtualClock() }),
      (e: unknown) => hasCode(ErrorCode.INVALID_CONFIG)(e) && /transport\.id must be this member's id a, got b/.test((e as Error).message),
    );
    assert.equal((transport as { started?: boolean }).started, false, 'the transport was not started');
  } finally {
    await storage.close();
    await transport.close();
  }
});

test('a transport whose id is an object without a prototype, a Symbol or an object whose toString throws is QUORUMKV_INVALID_CONFIG, not a TypeError', async () => {
  // before: the message was made with String(transport.id), which threw a
  // TypeError on an object without a prototype and ran the caller's toString
  const good: StateMachine<number> = { appliedIndex: () => 0, apply: (es) => es.map((e) => e.index), snapshot: () => new Uint8Array(0), restore: () => {} };
  const db = new MemoryLevel<Uint8Array, Uint8Array>(VIEW);
  const storage = await LevelLogStorage.open({ db: db as never });
  const odd: [string, unknown][] = [
    ['an object without a prototype', Object.create(null)],
    ['a Symbol', Symbol('s')],
    ['an object whose toString throws', { toString: () => { throw new Error('toString ran'); }, valueOf: () => { throw new Error('valueOf ran'); } }],
  ];
  try {
    for (const [what, id] of odd) {
      let started = false;
      const transport = { id, start: async () => { started = true; }, send: () => {}, addPeer: () => {}, removePeer: () => {}, refusePeer: () => {}, close: async () => {} } as unknown as Transport;
      await assert.rejects(
        RaftNode.create<number>({ id: 'a', peers: ['a'], storage, transport, stateMachine: good, clock: new VirtualClock() }),
        (e: unknown) => hasCode(ErrorCode.INVALID_CONFIG)(e),
        `transport.id ${what}`,
      );
      assert.equal(started, false, 'the transport was not started');
    }
  } finally {
    await storage.close();
  }
});

/**
 * Starts founders a and b of `ids` (a, b, c), commits an entry, then starts c
 * cut off from the leader's messages (the leader still hears c's pre-votes):
 * c, a founding voter holding only the bootstrap entries, withholds its vote
 * from longer logs until a leader reaches it.
 */
async function withLaggingFounder(c: TestCluster, ids: string[]): Promise<{ leader: Awaited<ReturnType<TestCluster['waitLeader']>>; late: Awaited<ReturnType<TestCluster['start']>> }> {
  await c.start('a', ids, ids);
  await c.start('b', ids, ids);
  const leader = await c.waitLeader();
  await c.run(leader.node.propose(cmd('k', '1')));
  c.net.partitionOneWay(leader.id, 'c');
  const late = await c.start('c', ids, ids);
  await c.clock.advanceAsync(1_000);
  assert.equal(late.node.status().lastIndex, 3, 'c holds only the bootstrap entries');
  return { leader, late };
}

test('a voter is not removed while the voters left that vote freely are too few: a founding voter that acknowledged no leader entry yet withholds its vote', async () => {
  // c, a founding voter, starts late and hears nothing from the leader (it
  // is heard, through its pre-votes); its log holds only the bootstrap
  // entries, so it votes for no candidate with a longer log until a leader
  // reaches it. Removing the third voter would leave {leader, c}: once the
  // leader restarted, no one could be elected again.
  const ids = ['a', 'b', 'c'];
  const c = new TestCluster({ seed: 41 });
  try {
    const { leader, late } = await withLaggingFounder(c, ids);
    const other = leader.id === 'a' ? 'b' : 'a';
    await assert.rejects(c.run(leader.node.removeMember(other)), (e: unknown) => isQuorumError(e, ErrorCode.UNHEALTHY) && /c acknowledged no entry of a leader/.test((e as Error).message));
    assert.deepEqual(leader.node.members().voters.sort(), ids, 'nothing removed');
    // once c has caught up, the removal goes through
    c.net.heal();
    await c.waitFor(() => late.sm.applyLog.length >= 1, 5_000, 'c catches up');
    await c.run(leader.node.removeMember(other));
    await c.waitFor(() => late.node.members().voters.length === 2, 5_000, 'c applies the removal');
  } finally {
    await c.closeAll();
  }
});

test('a voter is not added while the voters that vote freely are too few for the larger quorum (etcd isReadyToAddVotingMember, counting free voters)', async () => {
  // c, a founding voter, is heard (its pre-votes) but has acknowledged no
  // leader entry, so it withholds its vote from longer logs. Adding a
  // fourth voter raises the quorum to 3 while only the leader and the other
  // founder vote freely: with the leader gone, {other, c, d} could elect no
  // one, d having nothing to vote on.
  const ids = ['a', 'b', 'c'];
  const c = new TestCluster({ seed: 41 });
  try {
    const { leader, late } = await withLaggingFounder(c, ids);
    await assert.rejects(c.run(leader.node.addVoter('d')), (e: unknown) => isQuorumError(e, ErrorCode.UNHEALTHY) && /2 voters that vote freely of the 3 a quorum of 4 voters needs: c acknowledged no entry of a leader/.test((e as Error).message));
    assert.deepEqual(leader.node.members().voters.sort(), ids, 'nothing added');
    // once c has caught up, the voter is added
    c.net.heal();
    await c.waitFor(() => late.sm.applyLog.length >= 1, 5_000, 'c catches up');
    await c.start('d', undefined, [...ids, 'd']);
    await c.run(leader.node.addVoter('d'));
    await c.waitFor(() => late.node.members().voters.length === 4, 5_000, 'c applies the addition');
  } finally {
    await c.closeAll();
  }
});

test('close() whose transport fails to close still closes the storage and rejects with that failure', async () => {
  // before: the failure ended close() at once: the storage stayed open (a
  // data directory's log locked) and idle() waiters were never woken
  const good: StateMachine<number> = { appliedIndex: () => 0, apply: (es) => es.map((e) => e.index), snapshot: () => new Uint8Array(0), restore: () => {} };
  const db = new MemoryLevel<Uint8Array, Uint8Array>(VIEW);
  const storage = await LevelLogStorage.open({ db: db as never });
  const base = new MemoryNetwork({ seed: 1 }).transport('a');
  const transport: Transport = {
    id: 'a',
    start: (h) => base.start(h),
    send: (ms) => base.send(ms),
    addPeer: (id, a) => base.addPeer(id, a),
    removePeer: (id) => base.removePeer(id),
    close: async () => {
      await base.close();
      throw new Error('the socket would not close');
    },
  };
  const clock = new VirtualClock();
  const node = await RaftNode.create<number>({ id: 'a', peers: ['a'], storage, transport, stateMachine: good, clock, tickMs: 10 });
  try {
    await advanceUntil(clock, () => node.isLeader, 2_000, 'a leader');
    const first = node.close();
    const second = node.close();
    await assert.rejects(first, /the socket would not close/);
    assert.equal(storage.status, 'closed', 'the storage was closed');
    await assert.rejects(second, /the socket would not close/, 'a second call settles as the first');
  } finally {
    await storage.close();
    await db.close();
  }
});

test("options the Raft core refuses (electionTicks not above heartbeatTicks, a bad maxInflightMsgs) are QUORUMKV_INVALID_CONFIG before the storage is loaded or the state machine restored", async () => {
  // before: they were checked only once the storage was loaded and the
  // state machine restored from its snapshot, which the failed create left
  // changed
  const db = new MemoryLevel<Uint8Array, Uint8Array>(VIEW);
  let storage = await LevelLogStorage.open({ db: db as never });
  const clock = new VirtualClock();
  try {
    const applied: number[] = [];
    const sm: StateMachine<number> = {
      appliedIndex: () => applied.at(-1) ?? 0,
      apply: (es) => es.map((e) => (applied.push(e.index), e.index)),
      snapshot: () => new Uint8Array([1]),
      restore: () => {},
    };
    const first = await RaftNode.create<number>({ id: 'a', peers: ['a'], storage, transport: new MemoryNetwork({ seed: 1 }).transport('a'), stateMachine: sm, clock, tickMs: 10, snapshotEntries: 3 });
    await advanceUntil(clock, () => first.isLeader, 2_000, 'a leader');
    for (let i = 0; i < 6; i++) {
      const p = first.propose(cmd('k', String(i)));
      await advanceUntil(clock, () => applied.length > i + 1, 2_000, 'the entry applied');
      await p;
    }
    await advanceUntil(clock, () => first.status().snapshotIndex > 0, 2_000, 'a snapshot');
    await first.close(); // closes its storage
    storage = await LevelLogStorage.open({ db: db as never });
    // a state machine that lost what it applied: create would restore it from the snapshot
    let loads = 0;
    const load = storage.load.bind(storage);
    storage.load = () => {
      loads++;
      return load();
    };
    for (const bad of [{ electionTicks: 1 }, { heartbeatTicks: 3, electionTicks: 3 }, { maxInflightMsgs: 0 }, { maxSizePerMsg: -1 }]) {
      let restored = 0;
      const fresh: StateMachine<number> = { ...sm, appliedIndex: () => 0, restore: () => void restored++ };
      await assert.rejects(
        RaftNode.create<number>({ id: 'a', storage, transport: new MemoryNetwork({ seed: 1 }).transport('a'), stateMachine: fresh, clock, tickMs: 10, ...bad }),
        hasCode(ErrorCode.INVALID_CONFIG),
        JSON.stringify(bad),
      );
      assert.equal(restored, 0, `${JSON.stringify(bad)}: the state machine was restored`);
      assert.equal(loads, 0, `${JSON.stringify(bad)}: the storage was loaded`);
    }
  } finally {
    await storage.close();
    await db.close();
  }
});

test('messages from ids outside the configuration leave no bookkeeping behind for those ids', async () => {
  // A transport hands over messages from senders that are not peers (a
  // leader this member has not learned of yet); the ids must not pile up
  // in the member's record of when each member was last heard from.
  const c = new TestCluster({ seed: 11 });
  try {
    await c.startAll(['a', 'b', 'c']);
    const leader = await c.waitLeader();
    const strangers: Transport[] = [];
    for (let i = 0; i < 200; i++) {
      const t = c.net.transport(`z${i}`);
      t.addPeer(leader.id);
      await t.start({ receive: () => {}, reportUnreachable: () => {}, reportSnapshot: () => {} });
      strangers.push(t);
      // a stale response (term 0): Raft ignores it
      t.send([message({ type: 'MsgHeartbeatResp', from: `z${i}`, to: leader.id, term: 0 })]);
    }
    await c.waitFor(() => c.net.stats().delivered > 200, 1000, 'the strangers\' messages delivered');
    const heard = (leader.node as unknown as { lastHeard: Map<string, number> }).lastHeard;
    assert.ok([...heard.keys()].every((id) => ['a', 'b', 'c'].includes(id)), `only members are recorded, got ${heard.size} ids`);
    assert.ok(leader.node.isLeader, 'the member goes on leading');
    for (const t of strangers) await t.close();
  } finally {
    await c.closeAll();
  }
});

test('a member stopped by a fatal error whose transport fails to close leaves no unhandled rejection; close() reports the failure', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  process.on('unhandledRejection', onUnhandled);
  const db = new MemoryLevel<Uint8Array, Uint8Array>(VIEW);
  const storage = await LevelLogStorage.open({ db: db as never });
  const base = new MemoryNetwork({ seed: 1 }).transport('a');
  const transport: Transport = {
    id: 'a',
    start: (h) => base.start(h),
    send: (ms) => base.send(ms),
    addPeer: (id, a) => base.addPeer(id, a),
    removePeer: (id) => base.removePeer(id),
    close: async () => {
      await base.close();
      throw new Error('the socket would not close');
    },
  };
  const clock = new VirtualClock();
  const node = await RaftNode.create<number>({ id: 'a', peers: ['a'], storage, transport, stateMachine: new FailingMachine('boom'), clock, tickMs: 10 });
  try {
    const errors: Error[] = [];
    node.on('error', (e) => errors.push(e));
    await advanceUntil(clock, () => node.isLeader, 2_000, 'a leader');
    void node.propose(cmd('boom', '1')).catch(() => undefined);
    await advanceUntil(clock, () => errors.length > 0, 2_000, 'the fatal error');
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    assert.deepEqual(unhandled.map(String), [], 'no unhandled rejection');
    await assert.rejects(node.close(), /the socket would not close/);
  } finally {
    process.off('unhandledRejection', onUnhandled);
    await storage.close();
    await db.close();
  }
});
