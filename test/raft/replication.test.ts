// Log replication (Raft §5.3), the commit rule (§5.4.2, including the
// Figure 8 scenario), fast log backtracking, proposal forwarding and the
// size caps, ported from etcd-io/raft raft_paper_test.go and raft_test.go.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode } from '../../src/errors.js';
import type { Entry, Message } from '../../src/raftpb/index.js';
import { MemoryStorage } from '../../src/raft/memory-storage.js';
import type { Raft } from '../../src/raft/raft.js';
import type { StateRole } from '../../src/raft/types.js';
import {
  acceptAndReply,
  bytes,
  commitNoopEntry,
  ent,
  entsWithTerms,
  m,
  newTestRaft,
  newTestStorage,
  nextEnts,
  prop,
  readMessages,
  str,
} from './helpers/harness.js';
import { BLACK_HOLE, Network } from './helpers/network.js';

function ids(n: number): string[] {
  return Array.from({ length: n }, (_, i) => String(i + 1));
}

function becomeLeader(r: Raft): void {
  r.becomeCandidate();
  r.becomeLeader();
}

function hup(id: string): Message {
  return m({ type: 'MsgHup', from: id, to: id });
}

function sortMsgs(msgs: Message[]): Message[] {
  return msgs.slice().sort((a, b) => (a.to < b.to ? -1 : a.to > b.to ? 1 : 0));
}

function logTerms(r: Raft): number[] {
  return r.raftLog.allEntries().map((e) => e.term);
}

test('a leader appends a proposal and sends it to every follower with the previous entry and its commit (Raft §5.3, etcd TestLeaderStartReplication)', () => {
  const s = newTestStorage(['1', '2', '3']);
  const r = newTestRaft('1', 10, 1, s);
  becomeLeader(r);
  commitNoopEntry(r, s);
  const li = r.raftLog.lastIndex();
  r.step(prop('1', 'some data'));
  assert.equal(r.raftLog.lastIndex(), li + 1);
  assert.equal(r.raftLog.committed, li);
  const msgs = sortMsgs(readMessages(r));
  const wents = [[li + 1, 1, 'some data']];
  assert.deepEqual(
    msgs.map((x) => [x.from, x.to, x.term, x.type, x.index, x.logTerm, x.commit, x.entries.map((e) => [e.index, e.term, str(e.data)])]),
    [
      ['1', '2', 1, 'MsgApp', li, 1, li, wents],
      ['1', '3', 1, 'MsgApp', li, 1, li, wents],
    ],
  );
  assert.deepEqual(r.raftLog.unstableEntries().map((e) => [e.index, e.term, str(e.data)]), wents);
});

test('a leader commits an entry once a majority has it and tells the followers (Raft §5.3, etcd TestLeaderCommitEntry)', () => {
  const s = newTestStorage(['1', '2', '3']);
  const r = newTestRaft('1', 10, 1, s);
  becomeLeader(r);
  commitNoopEntry(r, s);
  const li = r.raftLog.lastIndex();
  r.step(prop('1', 'some data'));
  for (const msg of readMessages(r)) r.step(acceptAndReply(msg));
  assert.equal(r.raftLog.committed, li + 1);
  assert.deepEqual(r.raftLog.nextCommittedEnts().map((e) => [e.index, e.term, str(e.data)]), [[li + 1, 1, 'some data']]);
  const msgs = sortMsgs(readMessages(r));
  assert.deepEqual(msgs.map((x) => [x.to, x.type, x.commit]), [
    ['2', 'MsgApp', li + 1],
    ['3', 'MsgApp', li + 1],
  ]);
});

test('an entry is committed exactly when a majority (leader included) acknowledges it (Raft §5.3, etcd TestLeaderAcknowledgeCommit)', () => {
  const cases: { size: number; acceptors: string[]; wack: boolean }[] = [
    { size: 1, acceptors: [], wack: true },
    { size: 3, acceptors: [], wack: false },
    { size: 3, acceptors: ['2'], wack: true },
    { size: 3, acceptors: ['2', '3'], wack: true },
    { size: 5, acceptors: [], wack: false },
    { size: 5, acceptors: ['2'], wack: false },
    { size: 5, acceptors: ['2', '3'], wack: true },
    { size: 5, acceptors: ['2', '3', '4'], wack: true },
    { size: 5, acceptors: ['2', '3', '4', '5'], wack: true },
  ];
  for (const [i, tt] of cases.entries()) {
    const s = newTestStorage(ids(tt.size));
    const r = newTestRaft('1', 10, 1, s);
    becomeLeader(r);
    commitNoopEntry(r, s);
    const li = r.raftLog.lastIndex();
    r.step(prop('1', 'some data'));
    for (const msg of readMessages(r)) if (tt.acceptors.includes(msg.to)) r.step(acceptAndReply(msg));
    assert.equal(r.raftLog.committed > li, tt.wack, `#${i}`);
  }
});

test('committing an entry of the current term commits every preceding entry (Raft §5.3, etcd TestLeaderCommitPrecedingEntries)', () => {
  const cases: Entry[][] = [[], [ent(1, 2)], [ent(1, 1), ent(2, 2)], [ent(1, 1)]];
  for (const [i, tt] of cases.entries()) {
    const s = newTestStorage(['1', '2', '3']);
    s.append(tt);
    const r = newTestRaft('1', 10, 1, s);
    r.term = 2;
    becomeLeader(r);
    r.step(prop('1', 'some data'));
    for (const msg of readMessages(r)) r.step(acceptAndReply(msg));
    const li = tt.length;
    const want = [...tt.map((e) => [e.index, e.term, '']), [li + 1, 3, ''], [li + 2, 3, 'some data']];
    assert.deepEqual(r.raftLog.nextCommittedEnts().map((e) => [e.index, e.term, str(e.data)]), want, `#${i}`);
  }
});

test('a follower commits up to the leader commit, bounded by what it has (Raft §5.3, etcd TestFollowerCommitEntry)', () => {
  const cases: { ents: Entry[]; commit: number }[] = [
    { ents: [ent(1, 1, bytes('some data'))], commit: 1 },
    { ents: [ent(1, 1, bytes('some data')), ent(2, 1, bytes('some data2'))], commit: 2 },
    { ents: [ent(1, 1, bytes('some data2')), ent(2, 1, bytes('some data'))], commit: 2 },
    { ents: [ent(1, 1, bytes('some data')), ent(2, 1, bytes('some data2'))], commit: 1 },
  ];
  for (const [i, tt] of cases.entries()) {
    const r = newTestRaft('1', 10, 1, newTestStorage(['1', '2', '3']));
    r.becomeFollower(1, '2');
    r.step(m({ type: 'MsgApp', from: '2', to: '1', term: 1, entries: tt.ents, commit: tt.commit }));
    assert.equal(r.raftLog.committed, tt.commit, `#${i}`);
    assert.deepEqual(r.raftLog.nextCommittedEnts(), tt.ents.slice(0, tt.commit), `#${i}`);
  }
});

test('a follower rejects a MsgApp whose previous entry it does not have, with a hint (Raft §5.3, etcd TestFollowerCheckMsgApp)', () => {
  const ents = [ent(1, 1), ent(2, 2)];
  const cases: { term: number; index: number; windex: number; wreject: boolean; whint: number; wlogterm: number }[] = [
    // match with committed entries
    { term: 0, index: 0, windex: 1, wreject: false, whint: 0, wlogterm: 0 },
    { term: 1, index: 1, windex: 1, wreject: false, whint: 0, wlogterm: 0 },
    // match with uncommitted entries
    { term: 2, index: 2, windex: 2, wreject: false, whint: 0, wlogterm: 0 },
    // unmatch with existing entry
    { term: 1, index: 2, windex: 2, wreject: true, whint: 1, wlogterm: 1 },
    // unexisting entry
    { term: 3, index: 3, windex: 3, wreject: true, whint: 2, wlogterm: 2 },
  ];
  for (const [i, tt] of cases.entries()) {
    const s = newTestStorage(['1', '2', '3']);
    s.append(ents);
    s.setHardState({ term: 0, vote: '', commit: 1 });
    const r = newTestRaft('1', 10, 1, s);
    r.becomeFollower(2, '2');
    r.step(m({ type: 'MsgApp', from: '2', to: '1', term: 2, logTerm: tt.term, index: tt.index }));
    assert.deepEqual(
      readMessages(r).map((x) => [x.from, x.to, x.type, x.term, x.index, x.reject, x.rejectHint, x.logTerm]),
      [['1', '2', 'MsgAppResp', 2, tt.windex, tt.wreject, tt.whint, tt.wlogterm]],
      `#${i}`,
    );
  }
});

test('a follower deletes a conflicting suffix and appends the leader entries (Raft §5.3, etcd TestFollowerAppendEntries)', () => {
  const cases: { index: number; term: number; ents: Entry[]; wents: Entry[]; wunstable: Entry[] }[] = [
    { index: 2, term: 2, ents: [ent(3, 3)], wents: [ent(1, 1), ent(2, 2), ent(3, 3)], wunstable: [ent(3, 3)] },
    { index: 1, term: 1, ents: [ent(2, 3), ent(3, 4)], wents: [ent(1, 1), ent(2, 3), ent(3, 4)], wunstable: [ent(2, 3), ent(3, 4)] },
    { index: 0, term: 0, ents: [ent(1, 1)], wents: [ent(1, 1), ent(2, 2)], wunstable: [] },
    { index: 0, term: 0, ents: [ent(1, 3)], wents: [ent(1, 3)], wunstable: [ent(1, 3)] },
  ];
  for (const [i, tt] of cases.entries()) {
    const s = newTestStorage(['1', '2', '3']);
    s.append([ent(1, 1), ent(2, 2)]);
    const r = newTestRaft('1', 10, 1, s);
    r.becomeFollower(2, '2');
    r.step(m({ type: 'MsgApp', from: '2', to: '1', term: 2, logTerm: tt.term, index: tt.index, entries: tt.ents }));
    assert.deepEqual(r.raftLog.allEntries(), tt.wents, `#${i}`);
    assert.deepEqual(r.raftLog.unstableEntries(), tt.wunstable, `#${i}`);
  }
});

test('a new leader brings every kind of divergent follower log in line with its own (Raft Figure 7, etcd TestLeaderSyncFollowerLog)', () => {
  const leaderTerms = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
  const term = 8;
  const followers: number[][] = [
    [1, 1, 1, 4, 4, 5, 5, 6, 6],
    [1, 1, 1, 4],
    [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    [1, 1, 1, 4, 4, 4, 4],
    [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
  ];
  for (const [i, fterms] of followers.entries()) {
    const ls = newTestStorage(['1', '2', '3']);
    ls.append(entsWithTerms(...leaderTerms));
    ls.setHardState({ term, vote: '', commit: leaderTerms.length });
    const lead = newTestRaft('1', 10, 1, ls);
    const fs = newTestStorage(['1', '2', '3']);
    fs.append(entsWithTerms(...fterms));
    fs.setHardState({ term: term - 1, vote: '', commit: 0 });
    const follower = newTestRaft('2', 10, 1, fs);
    // A three-node cluster: the follower may have a more up-to-date log than
    // the leader, so the leader needs the vote of the third node.
    const n = new Network([lead, follower, BLACK_HOLE]);
    n.send(hup('1'));
    n.send(m({ type: 'MsgVoteResp', from: '3', to: '1', term: term + 1 }));
    n.send(prop('1'));
    assert.equal(lead.state, 'leader', `#${i}`);
    assert.deepEqual(logTerms(follower), logTerms(lead), `#${i}`);
    assert.deepEqual(logTerms(lead), [...leaderTerms, term + 1, term + 1], `#${i}`);
    assert.equal(follower.raftLog.committed, lead.raftLog.committed, `#${i}`);
  }
});

test('vote requests carry the candidate\'s last log index and term (Raft §5.4.1, etcd TestVoteRequest)', () => {
  const cases: { ents: Entry[]; wterm: number }[] = [
    { ents: [ent(1, 1)], wterm: 2 },
    { ents: [ent(1, 1), ent(2, 2)], wterm: 3 },
  ];
  for (const [j, tt] of cases.entries()) {
    const r = newTestRaft('1', 10, 1, newTestStorage(['1', '2', '3']));
    r.step(m({ type: 'MsgApp', from: '2', to: '1', term: tt.wterm - 1, logTerm: 0, index: 0, entries: tt.ents }));
    readMessages(r);
    for (let i = 1; i < r.electionTimeout * 2; i++) r.tickElection();
    const msgs = sortMsgs(readMessages(r));
    assert.equal(msgs.length, 2, `#${j}`);
    for (const [i, msg] of msgs.entries()) {
      assert.equal(msg.type, 'MsgVote', `#${j}.${i}`);
      assert.equal(msg.to, String(i + 2), `#${j}.${i}`);
      assert.equal(msg.term, tt.wterm, `#${j}.${i}`);
      const last = tt.ents[tt.ents.length - 1]!;
      assert.equal(msg.index, last.index, `#${j}.${i}`);
      assert.equal(msg.logTerm, last.term, `#${j}.${i}`);
    }
  }
});

test('a leader only commits entries of its own term by counting replicas (Raft §5.4.2, etcd TestLeaderOnlyCommitsLogFromCurrentTerm)', () => {
  const cases: { index: number; wcommit: number }[] = [
    // do not commit log entries in previous terms
    { index: 1, wcommit: 0 },
    { index: 2, wcommit: 0 },
    // commit log in current term
    { index: 3, wcommit: 3 },
  ];
  for (const [i, tt] of cases.entries()) {
    const s = newTestStorage(['1', '2']);
    s.append([ent(1, 1), ent(2, 2)]);
    const r = newTestRaft('1', 10, 1, s);
    r.term = 2;
    becomeLeader(r); // term 3
    readMessages(r);
    r.step(prop('1'));
    r.step(m({ type: 'MsgAppResp', from: '2', to: '1', term: r.term, index: tt.index }));
    assert.equal(r.raftLog.committed, tt.wcommit, `#${i}`);
  }
});

/** A crashed node comes back as a follower with its persisted term, vote and log. */
function restart(r: Raft): void {
  r.becomeFollower(r.term, '');
  readMessages(r);
}

/**
 * Raft paper Figure 8, with indexes and terms shifted by the no-op a new
 * leader appends: (a) S1 leads term 1 and replicates its entry 1 only to
 * S2; (b) S5 wins term 2 with S3 and S4, and writes a different entry 1 that
 * nobody else gets; (c) S1 wins term 3 and replicates its term-1 entry to
 * S3: it is on a majority, but must not be committed (§5.4.2).
 */
function figure8UpToC(): { nt: Network; keepOldOnly: (x: Message) => boolean } {
  const nt = new Network([null, null, null, null, null]);
  // (a)
  nt.msgHook = (x) => !(x.type === 'MsgApp' && x.from === '1' && ['3', '4', '5'].includes(x.to));
  nt.send(hup('1'));
  assert.equal(nt.raft('1').state, 'leader');
  assert.deepEqual(logTerms(nt.raft('2')), [1]);
  assert.equal(nt.raft('1').raftLog.committed, 0);
  // (b) S1 crashes; S5 is elected with S3 and S4 and crashes right after its append
  nt.isolate('1');
  nt.msgHook = (x) => !(x.type === 'MsgApp' && x.from === '5');
  nt.send(hup('5'));
  assert.equal(nt.raft('5').state, 'leader');
  assert.equal(nt.raft('5').term, 2);
  assert.deepEqual(logTerms(nt.raft('5')), [2]);
  // (c) S5 down, S1 back (restarted: a follower with its persisted state):
  // S1 wins term 3 and replicates only its old entry 1 to S3
  nt.recover();
  nt.isolate('5');
  restart(nt.raft('1'));
  const keepOldOnly = (x: Message): boolean => {
    if (x.type === 'MsgApp' && x.from === '1') x.entries = x.entries.filter((e) => e.index < 2);
    return true;
  };
  nt.msgHook = keepOldOnly;
  nt.send(hup('1')); // term 2: S3 and S4 already voted for S5
  nt.send(hup('1')); // term 3
  const s1 = nt.raft('1');
  assert.equal(s1.state, 'leader');
  assert.equal(s1.term, 3);
  for (const id of ['1', '2', '3', '4']) assert.equal(nt.raft(id).raftLog.termOrZero(1), 1, `S${id} has the term-1 entry`);
  return { nt, keepOldOnly };
}

test('Figure 8: an entry of an earlier term on a majority is not committed, and a later leader may overwrite it (Raft §5.4.2)', () => {
  const { nt } = figure8UpToC();
  const s1 = nt.raft('1');
  assert.equal(s1.raftLog.committed, 0, 'replicated on S1..S4 but not committed: it is not of the current term');
  // (d) S1 crashes; S5 restarts and can be elected (its last term 2 beats
  // their term 1) and overwrites entry 1
  nt.recover();
  nt.isolate('1');
  nt.msgHook = undefined;
  restart(nt.raft('5'));
  nt.send(hup('5')); // term 3: they voted for S1
  nt.send(hup('5')); // term 4
  const s5 = nt.raft('5');
  assert.equal(s5.state, 'leader');
  for (const id of ['2', '3', '4', '5']) {
    assert.deepEqual(logTerms(nt.raft(id)), [2, 4], `S${id}`);
    assert.equal(nt.raft(id).raftLog.committed, 2, `S${id}`);
  }
});

test('Figure 8: once the leader commits an entry of its own term, the earlier entry is committed and a stale candidate cannot win (Raft §5.4.2)', () => {
  const { nt } = figure8UpToC();
  const s1 = nt.raft('1');
  // (e) S1 replicates its term-3 no-op to S2 and S3 before crashing
  nt.msgHook = (x) => !(x.type === 'MsgApp' && x.to === '4');
  nt.send(m({ type: 'MsgBeat', from: '1', to: '1' }));
  assert.equal(s1.raftLog.committed, 2);
  assert.deepEqual(logTerms(nt.raft('2')), [1, 3]);
  assert.deepEqual(logTerms(nt.raft('3')), [1, 3]);
  nt.recover();
  nt.isolate('1');
  nt.msgHook = undefined;
  restart(nt.raft('5'));
  nt.send(hup('5'));
  nt.send(hup('5'));
  assert.notEqual(nt.raft('5').state, 'leader', 'S5 cannot win against S2 and S3');
  for (const id of ['2', '3']) assert.deepEqual(logTerms(nt.raft(id)).slice(0, 2), [1, 3], `S${id} keeps the committed entries`);
});

test('proposals are replicated and committed on every node, also after a new leader (etcd TestLogReplication)', () => {
  const cases: { msgs: () => Message[]; wcommitted: number }[] = [
    { msgs: () => [prop('1', 'somedata')], wcommitted: 2 },
    { msgs: () => [prop('1', 'somedata'), m({ type: 'MsgHup', from: '1', to: '2' }), m({ ...prop('2', 'somedata'), from: '1' })], wcommitted: 4 },
  ];
  for (const [i, tt] of cases.entries()) {
    const nt = new Network([null, null, null]);
    nt.send(hup('1'));
    const msgs = tt.msgs();
    const props = msgs.filter((x) => x.type === 'MsgProp').map((x) => str(x.entries[0]!.data));
    for (const msg of msgs) nt.send(msg);
    for (const id of ['1', '2', '3']) {
      const sm = nt.raft(id);
      assert.equal(sm.raftLog.committed, tt.wcommitted, `#${i} ${id}`);
      const data = nextEnts(sm, nt.storage.get(id)!).filter((e) => e.data.length > 0).map((e) => str(e.data));
      assert.deepEqual(data, props, `#${i} ${id}`);
    }
  }
});

test('a single node commits its proposals at once (etcd TestSingleNodeCommit)', () => {
  const nt = new Network([null]);
  nt.send(hup('1'));
  nt.send(prop('1', 'some data'));
  nt.send(prop('1', 'some data'));
  assert.equal(nt.raft('1').raftLog.committed, 3);
});

test('entries of a previous term are not committed by a new leader until an entry of its term is (Raft §5.4.2, etcd TestCannotCommitWithoutNewTermEntry)', () => {
  const nt = new Network([null, null, null, null, null]);
  nt.send(hup('1'));
  // 1 cannot reach 3, 4, 5
  nt.cut('1', '3');
  nt.cut('1', '4');
  nt.cut('1', '5');
  nt.send(prop('1', 'some data'));
  nt.send(prop('1', 'some data'));
  assert.equal(nt.raft('1').raftLog.committed, 1);
  nt.recover();
  // avoid committing the new leader's no-op
  nt.ignore('MsgApp');
  // elect 2 as the new leader with term 2
  nt.send(hup('2'));
  const sm = nt.raft('2');
  assert.equal(sm.state, 'leader');
  assert.equal(sm.raftLog.committed, 1, 'no entry from the previous term is committed');
  nt.recover();
  nt.send(m({ type: 'MsgBeat', from: '2', to: '2' }));
  nt.send(prop('2', 'some data'));
  assert.equal(sm.raftLog.committed, 5);
});

test('a new leader commits the previous term\'s entries through its no-op (Raft §8, etcd TestCommitWithoutNewTermEntry)', () => {
  const nt = new Network([null, null, null, null, null]);
  nt.send(hup('1'));
  nt.cut('1', '3');
  nt.cut('1', '4');
  nt.cut('1', '5');
  nt.send(prop('1', 'some data'));
  nt.send(prop('1', 'some data'));
  assert.equal(nt.raft('1').raftLog.committed, 1);
  nt.recover();
  // elect 2: the no-op commits the earlier entries
  nt.send(hup('2'));
  assert.equal(nt.raft('2').raftLog.committed, 4);
});

test('a proposal commits only when a quorum is reachable (etcd TestProposal)', () => {
  const cases: { peers: () => (null | typeof BLACK_HOLE)[]; success: boolean }[] = [
    { peers: () => [null, null, null], success: true },
    { peers: () => [null, null, BLACK_HOLE], success: true },
    { peers: () => [null, BLACK_HOLE, BLACK_HOLE], success: false },
    { peers: () => [null, BLACK_HOLE, BLACK_HOLE, null], success: false },
    { peers: () => [null, BLACK_HOLE, BLACK_HOLE, null, null], success: true },
  ];
  for (const [j, tt] of cases.entries()) {
    const nt = new Network(tt.peers());
    nt.send(hup('1'));
    const refused = nt.raft('1').step(prop('1', 'somedata'));
    assert.equal(refused === undefined, tt.success, `#${j} a candidate drops proposals`);
    nt.send(m({ type: 'MsgBeat', from: '1', to: '1' }));
    for (const [id, p] of nt.peers) {
      if (p === BLACK_HOLE) continue;
      if (tt.success) {
        assert.deepEqual(logTerms(p), [1, 1], `#${j} ${id}`);
        assert.equal(p.raftLog.committed, 2, `#${j} ${id}`);
      } else {
        assert.deepEqual(logTerms(p), [], `#${j} ${id}`);
      }
    }
    assert.equal(nt.raft('1').term, 1);
  }
});

test('a follower forwards proposals to the leader (etcd TestProposalByProxy)', () => {
  for (const peers of [() => [null, null, null], () => [null, null, BLACK_HOLE]] as (() => (null | typeof BLACK_HOLE)[])[]) {
    const nt = new Network(peers());
    nt.send(hup('1'));
    nt.send(prop('2', 'somedata'));
    for (const [id, p] of nt.peers) {
      if (p === BLACK_HOLE) continue;
      assert.deepEqual(p.raftLog.allEntries().map((e) => [e.index, e.term, str(e.data)]), [
        [1, 1, ''],
        [2, 1, 'somedata'],
      ], id);
      assert.equal(p.raftLog.committed, 2, id);
    }
  }
});

test('a follower with disableProposalForwarding drops proposals instead of forwarding them (etcd TestDisableProposalForwarding)', () => {
  const r1 = newTestRaft('1', 10, 1, newTestStorage(['1', '2', '3']));
  const r2 = newTestRaft('2', 10, 1, newTestStorage(['1', '2', '3']));
  const r3 = newTestRaft('3', 10, 1, newTestStorage(['1', '2', '3']), { disableProposalForwarding: true });
  const nt = new Network([r1, r2, r3]);
  nt.send(hup('1'));
  assert.equal(r2.step(prop('2', 'testdata')), undefined);
  assert.equal(r2.msgs.length, 1);
  assert.equal(r2.msgs[0]!.to, '1');
  const refusal = r3.step(prop('3', 'testdata'));
  assert.equal(refusal?.code, ErrorCode.PROPOSAL_DROPPED);
  assert.equal(r3.msgs.length, 0);
});

test('the commit index is the quorum match index, only for an entry of the current term (etcd TestCommit)', () => {
  const cases: { matches: number[]; logs: Entry[]; smTerm: number; w: number }[] = [
    // single
    { matches: [1], logs: [ent(1, 1)], smTerm: 1, w: 1 },
    { matches: [1], logs: [ent(1, 1)], smTerm: 2, w: 0 },
    { matches: [2], logs: [ent(1, 1), ent(2, 2)], smTerm: 2, w: 2 },
    { matches: [1], logs: [ent(1, 2)], smTerm: 2, w: 1 },
    // odd
    { matches: [2, 1, 1], logs: [ent(1, 1), ent(2, 2)], smTerm: 1, w: 1 },
    { matches: [2, 1, 1], logs: [ent(1, 1), ent(2, 1)], smTerm: 2, w: 0 },
    { matches: [2, 1, 2], logs: [ent(1, 1), ent(2, 2)], smTerm: 2, w: 2 },
    { matches: [2, 1, 2], logs: [ent(1, 1), ent(2, 1)], smTerm: 2, w: 0 },
    // even
    { matches: [2, 1, 1, 1], logs: [ent(1, 1), ent(2, 2)], smTerm: 1, w: 1 },
    { matches: [2, 1, 1, 1], logs: [ent(1, 1), ent(2, 1)], smTerm: 2, w: 0 },
    { matches: [2, 1, 1, 2], logs: [ent(1, 1), ent(2, 2)], smTerm: 1, w: 1 },
    { matches: [2, 1, 1, 2], logs: [ent(1, 1), ent(2, 1)], smTerm: 2, w: 0 },
    { matches: [2, 1, 2, 2], logs: [ent(1, 1), ent(2, 2)], smTerm: 2, w: 2 },
    { matches: [2, 1, 2, 2], logs: [ent(1, 1), ent(2, 1)], smTerm: 2, w: 0 },
  ];
  for (const [i, tt] of cases.entries()) {
    const s = newTestStorage(['1']);
    s.append(tt.logs);
    s.setHardState({ term: tt.smTerm, vote: '', commit: 0 });
    const sm = newTestRaft('1', 10, 2, s);
    for (let j = 0; j < tt.matches.length; j++) {
      const id = String(j + 1);
      if (j > 0) sm.applyConfChange({ type: 'AddNode', nodeId: id });
      const pr = sm.trk.progress.get(id)!;
      pr.match = tt.matches[j]!;
      pr.next = tt.matches[j]! + 1;
    }
    sm.maybeCommit();
    assert.equal(sm.raftLog.committed, tt.w, `#${i}`);
  }
});

test('a follower handles MsgApp: reject on mismatch, append and commit up to the last new entry (etcd TestHandleMsgApp)', () => {
  const cases: { msg: Partial<Message>; wIndex: number; wCommit: number; wReject: boolean }[] = [
    // previous log mismatch / non-exist
    { msg: { term: 2, logTerm: 3, index: 2, commit: 3 }, wIndex: 2, wCommit: 0, wReject: true },
    { msg: { term: 2, logTerm: 3, index: 3, commit: 3 }, wIndex: 2, wCommit: 0, wReject: true },
    // append and commit
    { msg: { term: 2, logTerm: 1, index: 1, commit: 1 }, wIndex: 2, wCommit: 1, wReject: false },
    { msg: { term: 2, logTerm: 0, index: 0, commit: 1, entries: [ent(1, 2)] }, wIndex: 1, wCommit: 1, wReject: false },
    { msg: { term: 2, logTerm: 2, index: 2, commit: 3, entries: [ent(3, 2), ent(4, 2)] }, wIndex: 4, wCommit: 3, wReject: false },
    { msg: { term: 2, logTerm: 2, index: 2, commit: 4, entries: [ent(3, 2)] }, wIndex: 3, wCommit: 3, wReject: false },
    { msg: { term: 2, logTerm: 1, index: 1, commit: 4, entries: [ent(2, 2)] }, wIndex: 2, wCommit: 2, wReject: false },
    // commit up to the last new entry, and to the last index
    { msg: { term: 1, logTerm: 1, index: 1, commit: 3 }, wIndex: 2, wCommit: 1, wReject: false },
    { msg: { term: 1, logTerm: 1, index: 1, commit: 3, entries: [ent(2, 2)] }, wIndex: 2, wCommit: 2, wReject: false },
    { msg: { term: 2, logTerm: 2, index: 2, commit: 3 }, wIndex: 2, wCommit: 2, wReject: false },
    { msg: { term: 2, logTerm: 2, index: 2, commit: 4 }, wIndex: 2, wCommit: 2, wReject: false },
  ];
  for (const [i, tt] of cases.entries()) {
    const s = newTestStorage(['1']);
    s.append([ent(1, 1), ent(2, 2)]);
    const sm = newTestRaft('1', 10, 1, s);
    sm.becomeFollower(2, '');
    sm.handleAppendEntries(m({ type: 'MsgApp', from: '2', to: '1', ...tt.msg }));
    assert.equal(sm.raftLog.lastIndex(), tt.wIndex, `#${i} index`);
    assert.equal(sm.raftLog.committed, tt.wCommit, `#${i} commit`);
    const msgs = readMessages(sm);
    assert.equal(msgs.length, 1, `#${i}`);
    assert.equal(msgs[0]!.reject, tt.wReject, `#${i}`);
  }
});

test('a follower takes the commit of a heartbeat, never lowers it, and never beyond its log (etcd TestHandleHeartbeat)', () => {
  const commit = 2;
  const cases: { c: number; wCommit: number }[] = [
    { c: commit + 1, wCommit: commit + 1 },
    { c: commit - 1, wCommit: commit }, // do not decrease commit
    { c: 10, wCommit: commit }, // beyond the last index: ignored
  ];
  for (const [i, tt] of cases.entries()) {
    const s = newTestStorage(['1', '2']);
    s.append([ent(1, 1), ent(2, 2), ent(3, 3)]);
    const sm = newTestRaft('1', 5, 1, s);
    sm.becomeFollower(2, '2');
    sm.raftLog.commitTo(commit);
    sm.handleHeartbeat(m({ type: 'MsgHeartbeat', from: '2', to: '1', term: 2, commit: tt.c }));
    assert.equal(sm.raftLog.committed, tt.wCommit, `#${i}`);
    const msgs = readMessages(sm);
    assert.deepEqual(msgs.map((x) => x.type), ['MsgHeartbeatResp'], `#${i}`);
  }
});

test('heartbeat responses from a lagging follower trigger MsgApp until it acknowledges (etcd TestHandleHeartbeatResp)', () => {
  const s = newTestStorage(['1', '2']);
  s.append([ent(1, 1), ent(2, 2), ent(3, 3)]);
  const sm = newTestRaft('1', 5, 1, s);
  becomeLeader(sm);
  sm.raftLog.commitTo(sm.raftLog.lastIndex());
  // a heartbeat response from a node that is behind: re-send MsgApp
  sm.step(m({ type: 'MsgHeartbeatResp', from: '2', to: '1' }));
  let msgs = readMessages(sm);
  assert.deepEqual(msgs.map((x) => x.type), ['MsgApp']);
  // a second heartbeat response generates another MsgApp re-send
  sm.step(m({ type: 'MsgHeartbeatResp', from: '2', to: '1' }));
  msgs = readMessages(sm);
  assert.deepEqual(msgs.map((x) => x.type), ['MsgApp']);
  // once we have an MsgAppResp, heartbeats no longer send MsgApp
  sm.step(m({ type: 'MsgAppResp', from: '2', to: '1', index: msgs[0]!.index + msgs[0]!.entries.length }));
  readMessages(sm);
  sm.step(m({ type: 'MsgHeartbeatResp', from: '2', to: '1' }));
  assert.deepEqual(readMessages(sm), []);
});

test('a probing follower waits for its acknowledgement before it gets new entries (etcd TestMsgAppRespWaitReset)', () => {
  const s = newTestStorage(['1', '2', '3']);
  const sm = newTestRaft('1', 5, 1, s);
  becomeLeader(sm);
  nextEnts(sm, s);
  // node 2 acks the first entry, making it committed
  sm.step(m({ type: 'MsgAppResp', from: '2', to: '1', index: 1 }));
  assert.equal(sm.raftLog.committed, 1);
  readMessages(sm);
  // a new command: sent only to 2 (3 is still waiting)
  sm.step(prop('1'));
  let msgs = readMessages(sm);
  assert.deepEqual(msgs.map((x) => [x.type, x.to, x.entries.map((e) => e.index)]), [['MsgApp', '2', [2]]]);
  // node 3 acks the first entry: the wait is released and entry 2 is sent
  sm.step(m({ type: 'MsgAppResp', from: '3', to: '1', index: 1 }));
  msgs = readMessages(sm);
  assert.deepEqual(msgs.map((x) => [x.type, x.to, x.entries.map((e) => e.index)]), [['MsgApp', '3', [2]]]);
});

test('the leader updates progress and commit on MsgAppResp and probes again on rejection (etcd TestLeaderAppResp)', () => {
  // initial progress: match = 0, next = 3
  const cases: { index: number; reject: boolean; wmatch: number; wnext: number; wmsgNum: number; windex: number; wcommitted: number }[] = [
    { index: 3, reject: true, wmatch: 0, wnext: 3, wmsgNum: 0, windex: 0, wcommitted: 0 }, // stale resp; no replies
    { index: 2, reject: true, wmatch: 0, wnext: 2, wmsgNum: 1, windex: 1, wcommitted: 0 }, // denied: decrease next and probe
    { index: 2, reject: false, wmatch: 2, wnext: 4, wmsgNum: 2, windex: 2, wcommitted: 2 }, // accepted: commit and broadcast
    // probing at 0, the follower acks 0: it moves to replicate and gets everything
    { index: 0, reject: false, wmatch: 0, wnext: 4, wmsgNum: 1, windex: 0, wcommitted: 0 },
  ];
  for (const [i, tt] of cases.entries()) {
    const s = newTestStorage(['1', '2', '3']);
    s.append([ent(1, 0), ent(2, 1)]);
    const sm = newTestRaft('1', 10, 1, s);
    becomeLeader(sm);
    readMessages(sm);
    sm.step(m({ type: 'MsgAppResp', from: '2', to: '1', index: tt.index, term: sm.term, reject: tt.reject, rejectHint: tt.index }));
    const p = sm.trk.progress.get('2')!;
    assert.equal(p.match, tt.wmatch, `#${i} match`);
    assert.equal(p.next, tt.wnext, `#${i} next`);
    const msgs = readMessages(sm);
    assert.equal(msgs.length, tt.wmsgNum, `#${i} msgs`);
    for (const msg of msgs) {
      assert.equal(msg.index, tt.windex, `#${i} index`);
      assert.equal(msg.commit, tt.wcommitted, `#${i} commit`);
    }
  }
});

test('heartbeats carry min(match, commit) to each follower and nothing else (etcd TestBcastBeat)', () => {
  const offset = 1000;
  const s = new MemoryStorage();
  s.applySnapshot({ data: new Uint8Array(0), metadata: { index: offset, term: 1, confState: { voters: ['1', '2', '3'], learners: [] } } });
  const sm = newTestRaft('1', 10, 1, s);
  sm.term = 1;
  becomeLeader(sm);
  for (let i = 0; i < 10; i++) sm.appendEntry([ent(0, 0)]);
  readMessages(sm);
  // slow follower
  const p2 = sm.trk.progress.get('2')!;
  p2.match = 5;
  p2.next = 6;
  // normal follower
  const p3 = sm.trk.progress.get('3')!;
  p3.match = sm.raftLog.lastIndex();
  p3.next = sm.raftLog.lastIndex() + 1;
  sm.step(m({ type: 'MsgBeat', from: '1', to: '1' }));
  const msgs = sortMsgs(readMessages(sm));
  assert.deepEqual(
    msgs.map((x) => [x.type, x.to, x.index, x.logTerm, x.commit, x.entries.length]),
    [
      ['MsgHeartbeat', '2', 0, 0, Math.min(sm.raftLog.committed, 5), 0],
      ['MsgHeartbeat', '3', 0, 0, Math.min(sm.raftLog.committed, p3.match), 0],
    ],
  );
});

test('only a leader answers MsgBeat with heartbeats (etcd TestRecvMsgBeat)', () => {
  const cases: { state: StateRole; wMsg: number }[] = [
    { state: 'leader', wMsg: 2 },
    { state: 'candidate', wMsg: 0 },
    { state: 'follower', wMsg: 0 },
  ];
  for (const tt of cases) {
    const s = newTestStorage(['1', '2', '3']);
    s.append([ent(1, 0), ent(2, 1)]);
    const sm = newTestRaft('1', 10, 1, s);
    sm.term = 1;
    sm.state = tt.state;
    sm.stepFn = tt.state === 'leader' ? sm.stepLeader : tt.state === 'candidate' ? sm.stepCandidate : sm.stepFollower;
    sm.step(m({ type: 'MsgBeat', from: '1', to: '1' }));
    const msgs = readMessages(sm);
    assert.equal(msgs.length, tt.wMsg, tt.state);
    for (const x of msgs) assert.equal(x.type, 'MsgHeartbeat');
  }
});

test('next moves optimistically in replicate, not in probe (etcd TestLeaderIncreaseNext)', () => {
  const previousEnts = [ent(1, 1), ent(2, 1), ent(3, 1)];
  const cases: { state: 'replicate' | 'probe'; next: number; wnext: number }[] = [
    // replicate: previous entries + noop entry + propose + 1
    { state: 'replicate', next: 2, wnext: previousEnts.length + 1 + 1 + 1 },
    // probe: not optimistically increased
    { state: 'probe', next: 2, wnext: 2 },
  ];
  for (const [i, tt] of cases.entries()) {
    const sm = newTestRaft('1', 10, 1, newTestStorage(['1', '2']));
    sm.raftLog.append(previousEnts);
    becomeLeader(sm);
    const p = sm.trk.progress.get('2')!;
    p.state = tt.state;
    p.next = tt.next;
    sm.step(prop('1', 'somedata'));
    assert.equal(p.next, tt.wnext, `#${i}`);
  }
});

test('a probing follower gets one MsgApp per heartbeat response (etcd TestSendAppendForProgressProbe)', () => {
  const r = newTestRaft('1', 10, 1, newTestStorage(['1', '2']));
  becomeLeader(r);
  readMessages(r);
  const pr = r.trk.progress.get('2')!;
  pr.becomeProbe();
  for (let i = 0; i < 3; i++) {
    if (i === 0) {
      // only one MsgApp on the first round; after that the follower is paused
      r.appendEntry([ent(0, 0, bytes('somedata'))]);
      r.maybeSendAppend('2');
      const msgs = readMessages(r);
      assert.equal(msgs.length, 1);
      assert.equal(msgs[0]!.index, 0);
    }
    assert.equal(pr.msgAppProbesPaused, true);
    for (let j = 0; j < 10; j++) {
      r.appendEntry([ent(0, 0, bytes('somedata'))]);
      r.maybeSendAppend('2');
      assert.equal(readMessages(r).length, 0);
    }
    // a heartbeat does not unpause
    r.step(m({ type: 'MsgBeat', from: '1', to: '1' }));
    assert.equal(pr.msgAppProbesPaused, true);
    assert.deepEqual(readMessages(r).map((x) => x.type), ['MsgHeartbeat']);
  }
  // a heartbeat response allows another message
  r.step(m({ type: 'MsgHeartbeatResp', from: '2', to: '1' }));
  const msgs = readMessages(r);
  assert.equal(msgs.length, 1);
  assert.equal(msgs[0]!.index, 0);
  assert.equal(pr.msgAppProbesPaused, true);
});

test('a replicating follower gets a MsgApp for every new entry; one waiting for a snapshot gets none (etcd TestSendAppendForProgressReplicate/Snapshot)', () => {
  const r = newTestRaft('1', 10, 1, newTestStorage(['1', '2']));
  becomeLeader(r);
  readMessages(r);
  r.trk.progress.get('2')!.becomeReplicate();
  for (let i = 0; i < 10; i++) {
    r.appendEntry([ent(0, 0, bytes('somedata'))]);
    r.maybeSendAppend('2');
    assert.equal(readMessages(r).length, 1);
  }
  const r2 = newTestRaft('1', 10, 1, newTestStorage(['1', '2']));
  becomeLeader(r2);
  readMessages(r2);
  r2.trk.progress.get('2')!.becomeSnapshot(10);
  for (let i = 0; i < 10; i++) {
    r2.appendEntry([ent(0, 0, bytes('somedata'))]);
    r2.maybeSendAppend('2');
    assert.equal(readMessages(r2).length, 0);
  }
});

test('fast backtracking finds the matching index in one or two round trips (Raft thesis §5.3, etcd TestFastLogRejection)', () => {
  const cases: {
    name: string;
    leader: number[];
    follower: number[];
    followerCompact?: number;
    hintTerm: number;
    hintIndex: number;
    nextTerm: number;
    nextIndex: number;
  }[] = [
    { name: 'leader skips a follower tail of a lower term', leader: [1, 2, 2, 4, 4, 4, 4], follower: [1, 2, 2, 3, 3, 3, 3, 3, 3], hintTerm: 3, hintIndex: 7, nextTerm: 2, nextIndex: 3 },
    { name: 'leader skips its own higher terms', leader: [1, 2, 2, 3, 4, 4, 4, 5], follower: [1, 2, 2, 3, 3, 3, 3, 3, 3], hintTerm: 3, hintIndex: 8, nextTerm: 3, nextIndex: 4 },
    { name: 'follower skips its tail of higher terms', leader: [1, 1, 1, 1], follower: [1, 2, 2, 4], hintTerm: 1, hintIndex: 1, nextTerm: 1, nextIndex: 1 },
    { name: 'leader has a longer tail', leader: [1, 1, 1, 1, 1, 1], follower: [1, 2, 2, 4], hintTerm: 1, hintIndex: 1, nextTerm: 1, nextIndex: 1 },
    { name: 'follower has a longer tail', leader: [1, 1, 1, 1], follower: [1, 2, 2, 4, 4, 4], hintTerm: 1, hintIndex: 1, nextTerm: 1, nextIndex: 1 },
    { name: 'no conflict, follower behind', leader: [1, 1, 1, 4, 5], follower: [1, 1, 1, 4], hintTerm: 4, hintIndex: 4, nextTerm: 4, nextIndex: 4 },
    { name: 'the stepLeader example', leader: [1, 3, 3, 3, 5, 5, 5, 5, 5], follower: [1, 1, 1, 1, 2, 2], hintTerm: 2, hintIndex: 6, nextTerm: 1, nextIndex: 1 },
    { name: 'the handleAppendEntries example', leader: [1, 3, 3, 3, 3, 3, 3, 3, 7], follower: [1, 3, 3, 4, 4, 5, 5, 5, 6], hintTerm: 6, hintIndex: 9, nextTerm: 3, nextIndex: 8 },
    { name: 'stale MsgApp after follower compaction', leader: [1, 1, 3], follower: [1, 1, 3, 3, 3], followerCompact: 5, hintTerm: 0, hintIndex: 3, nextTerm: 1, nextIndex: 2 },
  ];
  for (const tt of cases) {
    const s1 = newTestStorage(['1', '2', '3']);
    s1.append(entsWithTerms(...tt.leader));
    const lastTerm = tt.leader[tt.leader.length - 1]!;
    s1.setHardState({ term: lastTerm - 1, vote: '', commit: tt.leader.length });
    const n1 = newTestRaft('1', 10, 1, s1);
    n1.becomeCandidate(); // bumps the term to the last term
    n1.becomeLeader();
    const s2 = newTestStorage(['1', '2', '3']);
    s2.append(entsWithTerms(...tt.follower));
    s2.setHardState({ term: lastTerm, vote: '1', commit: 0 });
    const n2 = newTestRaft('2', 10, 1, s2);
    if (tt.followerCompact !== undefined) s2.compact(tt.followerCompact);
    n2.step(m({ type: 'MsgHeartbeat', from: '1', to: '2' }));
    let msgs = readMessages(n2);
    assert.deepEqual(msgs.map((x) => x.type), ['MsgHeartbeatResp'], tt.name);
    n1.step(msgs[0]!);
    msgs = readMessages(n1);
    assert.deepEqual(msgs.map((x) => x.type), ['MsgApp'], tt.name);
    n2.step(msgs[0]!);
    msgs = readMessages(n2);
    assert.equal(msgs.length, 1, tt.name);
    assert.equal(msgs[0]!.type, 'MsgAppResp', tt.name);
    assert.equal(msgs[0]!.reject, true, tt.name);
    assert.equal(msgs[0]!.logTerm, tt.hintTerm, `${tt.name}: hint term`);
    assert.equal(msgs[0]!.rejectHint, tt.hintIndex, `${tt.name}: hint index`);
    n1.step(msgs[0]!);
    msgs = readMessages(n1);
    assert.equal(msgs[0]!.logTerm, tt.nextTerm, `${tt.name}: next append term`);
    assert.equal(msgs[0]!.index, tt.nextIndex, `${tt.name}: next append index`);
  }
});

test('the leader drops proposals beyond maxUncommittedEntriesSize, but never empty ones (etcd TestUncommittedEntryLimit)', () => {
  const maxEntries = 1024;
  const testData = bytes('testdata');
  const maxEntrySize = maxEntries * testData.length;
  const r = newTestRaft('1', 5, 1, newTestStorage(['1', '2', '3']), { maxUncommittedEntriesSize: maxEntrySize, maxInflightMsgs: 2 * 1024 });
  becomeLeader(r);
  assert.equal(r.uncommittedSize, 0);
  // the two followers replicate; the tail of the log is committed
  const numFollowers = 2;
  r.trk.progress.get('2')!.becomeReplicate();
  r.trk.progress.get('3')!.becomeReplicate();
  r.uncommittedSize = 0;
  for (let i = 0; i < maxEntries; i++) assert.equal(r.step(prop('1', testData)), undefined, `proposal ${i}`);
  // one more is dropped
  assert.equal(r.step(prop('1', testData))?.code, ErrorCode.PROPOSAL_DROPPED);
  // as if the entries were committed
  let ms = readMessages(r);
  assert.equal(ms.length, maxEntries * numFollowers);
  r.reduceUncommittedSize(maxEntrySize);
  assert.equal(r.uncommittedSize, 0);
  // a single large proposal is accepted when under the limit before it
  const large = prop('1', ...Array.from({ length: 2 * maxEntries }, () => testData));
  assert.equal(r.step(large), undefined);
  assert.equal(r.step(prop('1', testData))?.code, ErrorCode.PROPOSAL_DROPPED);
  // an empty entry is always accepted
  assert.equal(r.step(prop('1')), undefined);
  ms = readMessages(r);
  assert.equal(ms.length, 2 * numFollowers);
  r.reduceUncommittedSize(2 * maxEntrySize);
  assert.equal(r.uncommittedSize, 0);
});

test('MsgApp payloads never exceed maxSizePerMsg but are batched up to it (etcd TestAppendPagination)', () => {
  const maxSizePerMsg = 2048;
  const n = new Network([null, null, null], { maxSizePerMsg });
  let seenFullMessage = false;
  n.msgHook = (x) => {
    if (x.type === 'MsgApp') {
      const size = x.entries.reduce((a, e) => a + e.data.length, 0);
      assert.ok(size <= maxSizePerMsg, `sent MsgApp that is too large: ${size} bytes`);
      if (size > maxSizePerMsg / 2) seenFullMessage = true;
    }
    return true;
  };
  n.send(hup('1'));
  // partition while proposing, so that entries are batched later
  n.isolate('1');
  const blob = new Uint8Array(1000).fill(97);
  for (let i = 0; i < 5; i++) n.send(prop('1', blob));
  n.recover();
  n.send(m({ type: 'MsgBeat', from: '1', to: '1' }));
  assert.ok(seenFullMessage, 'no message was larger than half the limit');
  for (const id of ['2', '3']) assert.equal(n.raft(id).raftLog.lastIndex(), 6, id);
});

test('a MsgAppResp acknowledging an index beyond the leader\'s log is ignored', () => {
  const s = newTestStorage(['1', '2', '3']);
  const r = newTestRaft('1', 10, 1, s);
  becomeLeader(r);
  readMessages(r);
  r.step(m({ type: 'MsgAppResp', from: '2', to: '1', term: r.term, index: 100 }));
  assert.equal(r.trk.progress.get('2')!.match, 0);
  assert.equal(r.raftLog.committed, 0);
});

test('a MsgApp that would overwrite committed entries is ignored, not applied', () => {
  const s = newTestStorage(['1', '2']);
  s.append([ent(1, 1), ent(2, 1)]);
  s.setHardState({ term: 2, vote: '', commit: 2 });
  const r = newTestRaft('1', 10, 1, s);
  r.becomeFollower(2, '2');
  r.step(m({ type: 'MsgApp', from: '2', to: '1', term: 2, index: 2, logTerm: 1, entries: [ent(3, 2)] }));
  readMessages(r);
  // a buggy leader: index 2 is committed, with term 1
  r.handleAppendEntries(m({ type: 'MsgApp', from: '2', to: '1', term: 2, index: 1, logTerm: 1, entries: [ent(2, 2)] }));
  assert.deepEqual(logTerms(r), [1, 1, 2]);
  assert.equal(r.raftLog.committed, 2);
});
