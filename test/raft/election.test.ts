// Leader election (Raft §5.2, §5.4.1), PreVote (thesis §9.6) and
// CheckQuorum (thesis §6.2), ported from etcd-io/raft raft_paper_test.go
// and raft_test.go. Node ids are '1', '2', ...; the network helper delivers
// messages until quiet.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Entry, Message, MessageType } from '../../src/raftpb/index.js';
import { voteResponseType } from '../../src/raftpb/index.js';
import type { Raft } from '../../src/raft/raft.js';
import type { StateRole } from '../../src/raft/types.js';
import { encodeConfChangeData } from '../../src/raft/conf-change-codec.js';
import {
  entsWithConfig,
  entsWithTerms,
  m,
  newTestRaft,
  newTestStorage,
  readMessages,
  setRandomizedElectionTimeout,
  votedWithConfig,
  type TestRaftOptions,
} from './helpers/harness.js';
import { BLACK_HOLE, Network } from './helpers/network.js';

const PRE_VOTE: TestRaftOptions = { preVote: true };

function ids(n: number): string[] {
  return Array.from({ length: n }, (_, i) => String(i + 1));
}

function raft3(id: string, opts: TestRaftOptions = {}, election = 10): Raft {
  return newTestRaft(id, election, 1, newTestStorage(['1', '2', '3']), opts);
}

function tick(r: Raft, n = 1): void {
  for (let i = 0; i < n; i++) r.tickFn();
}

function becomeLeader(r: Raft): void {
  r.becomeCandidate();
  r.becomeLeader();
}

function hup(id: string): Message {
  return m({ type: 'MsgHup', from: id, to: id });
}

function setState(r: Raft, st: StateRole): void {
  switch (st) {
    case 'follower':
      r.becomeFollower(r.term, '3');
      break;
    case 'preCandidate':
      r.becomePreCandidate();
      break;
    case 'candidate':
      r.becomeCandidate();
      break;
    case 'leader':
      becomeLeader(r);
      break;
  }
}

function sortMsgs(msgs: Message[]): Message[] {
  return msgs.slice().sort((a, b) => (a.to < b.to ? -1 : a.to > b.to ? 1 : 0));
}

for (const preVote of [false, true]) {
  const label = preVote ? ' with PreVote' : '';
  test(`a candidate wins with a majority and stays candidate (or pre-candidate) without one${label} (Raft §5.2, etcd TestLeaderElection)`, () => {
    const opts: TestRaftOptions = { preVote };
    const candState: StateRole = preVote ? 'preCandidate' : 'candidate';
    const candTerm = preVote ? 0 : 1;
    const cases: { peers: () => (Raft | null | typeof BLACK_HOLE)[]; state: StateRole; term: number }[] = [
      { peers: () => [null, null, null], state: 'leader', term: 1 },
      { peers: () => [null, null, BLACK_HOLE], state: 'leader', term: 1 },
      { peers: () => [null, BLACK_HOLE, BLACK_HOLE], state: candState, term: candTerm },
      { peers: () => [null, BLACK_HOLE, BLACK_HOLE, null], state: candState, term: candTerm },
      { peers: () => [null, BLACK_HOLE, BLACK_HOLE, null, null], state: 'leader', term: 1 },
      // three logs further along than 1, in the same term: rejections are
      // returned instead of the votes being ignored
      {
        peers: () => [
          null,
          entsWithConfig('2', [1], ids(5), opts),
          entsWithConfig('3', [1], ids(5), opts),
          entsWithConfig('4', [1, 1], ids(5), opts),
          null,
        ],
        state: 'follower',
        term: 1,
      },
    ];
    for (const [i, tt] of cases.entries()) {
      const nt = new Network(tt.peers(), opts);
      nt.send(hup('1'));
      const sm = nt.raft('1');
      assert.equal(sm.state, tt.state, `#${i} state`);
      assert.equal(sm.term, tt.term, `#${i} term`);
    }
  });

  test(`each node can win an election in turn${label} (etcd TestLeaderCycle)`, () => {
    const n = new Network([null, null, null], { preVote });
    for (const campaigner of ['1', '2', '3']) {
      n.send(hup(campaigner));
      for (const id of ['1', '2', '3']) {
        const sm = n.raft(id);
        assert.equal(sm.state, id === campaigner ? 'leader' : 'follower', `campaigner ${campaigner}, node ${id}`);
      }
    }
  });

  test(`a winner's log overwrites newer uncommitted entries of losers${label} (Raft §5.4.1, etcd TestLeaderElectionOverwriteNewerLogs)`, () => {
    const opts: TestRaftOptions = { preVote };
    const voters = ids(5);
    // Node 1 won term 1 and replicated to 2; node 3 won term 2 and wrote an
    // entry no one else got; 4 and 5 voted for 3 in term 2.
    const n = new Network([
      entsWithConfig('1', [1], voters, opts),
      entsWithConfig('2', [1], voters, opts),
      entsWithConfig('3', [2], voters, opts),
      votedWithConfig('4', '3', 2, voters, opts),
      votedWithConfig('5', '3', 2, voters, opts),
    ]);
    // Node 1 campaigns: a quorum knows about term 2; node 1's term is pushed to 2.
    n.send(hup('1'));
    const sm1 = n.raft('1');
    assert.equal(sm1.state, 'follower');
    assert.equal(sm1.term, 2);
    // Node 1 campaigns again with a higher term and wins.
    n.send(hup('1'));
    assert.equal(sm1.state, 'leader');
    assert.equal(sm1.term, 3);
    // Everybody agrees on term 1 at index 1 and term 3 at index 2.
    for (const id of voters) {
      assert.deepEqual(n.raft(id).raftLog.allEntries().map((e) => e.term), [1, 3], id);
    }
  });
}

for (const vt of ['MsgVote', 'MsgPreVote'] as MessageType[]) {
  test(`a node in any state grants a ${vt} for a higher term with an up-to-date log (etcd TestVoteFromAnyState)`, () => {
    for (const st of ['follower', 'candidate', 'preCandidate', 'leader'] as StateRole[]) {
      const r = raft3('1');
      r.term = 1;
      setState(r, st);
      const origTerm = r.term;
      const newTerm = r.term + 1;
      r.step(m({ type: vt, from: '2', to: '1', term: newTerm, logTerm: newTerm, index: 42 }));
      const msgs = readMessages(r);
      assert.equal(msgs.length, 1, st);
      assert.equal(msgs[0]!.type, voteResponseType(vt), st);
      assert.equal(msgs[0]!.reject, false, st);
      if (vt === 'MsgVote') {
        // a real vote resets state and term
        assert.equal(r.state, 'follower', st);
        assert.equal(r.term, newTerm, st);
        assert.equal(r.vote, '2', st);
      } else {
        // in a pre-vote nothing changes
        assert.equal(r.state, st, st);
        assert.equal(r.term, origTerm, st);
        assert.ok(r.vote === '' || r.vote === '1', st);
      }
    }
  });

  test(`${vt} is granted only to up-to-date candidates, once per term (Raft §5.2, §5.4.1, etcd TestRecvMsgVote)`, () => {
    const cases: { state: StateRole; index: number; logTerm: number; voteFor: string; wreject: boolean }[] = [
      { state: 'follower', index: 0, logTerm: 0, voteFor: '', wreject: true },
      { state: 'follower', index: 0, logTerm: 1, voteFor: '', wreject: true },
      { state: 'follower', index: 0, logTerm: 2, voteFor: '', wreject: true },
      { state: 'follower', index: 0, logTerm: 3, voteFor: '', wreject: false },
      { state: 'follower', index: 1, logTerm: 0, voteFor: '', wreject: true },
      { state: 'follower', index: 1, logTerm: 1, voteFor: '', wreject: true },
      { state: 'follower', index: 1, logTerm: 2, voteFor: '', wreject: true },
      { state: 'follower', index: 1, logTerm: 3, voteFor: '', wreject: false },
      { state: 'follower', index: 2, logTerm: 0, voteFor: '', wreject: true },
      { state: 'follower', index: 2, logTerm: 1, voteFor: '', wreject: true },
      { state: 'follower', index: 2, logTerm: 2, voteFor: '', wreject: false },
      { state: 'follower', index: 2, logTerm: 3, voteFor: '', wreject: false },
      { state: 'follower', index: 3, logTerm: 0, voteFor: '', wreject: true },
      { state: 'follower', index: 3, logTerm: 1, voteFor: '', wreject: true },
      { state: 'follower', index: 3, logTerm: 2, voteFor: '', wreject: false },
      { state: 'follower', index: 3, logTerm: 3, voteFor: '', wreject: false },
      { state: 'follower', index: 3, logTerm: 2, voteFor: '2', wreject: false },
      { state: 'follower', index: 3, logTerm: 2, voteFor: '1', wreject: true },
      { state: 'leader', index: 3, logTerm: 3, voteFor: '1', wreject: true },
      { state: 'preCandidate', index: 3, logTerm: 3, voteFor: '1', wreject: true },
      { state: 'candidate', index: 3, logTerm: 3, voteFor: '1', wreject: true },
    ];
    for (const [i, tt] of cases.entries()) {
      const s = newTestStorage(['1']);
      s.append(entsWithTerms(2, 2));
      const sm = newTestRaft('1', 10, 1, s);
      sm.state = tt.state;
      sm.stepFn = tt.state === 'follower' ? sm.stepFollower : tt.state === 'leader' ? sm.stepLeader : sm.stepCandidate;
      sm.vote = tt.voteFor;
      // Same term on both sides: only the logs and the earlier vote differ.
      const term = Math.max(sm.raftLog.lastTerm(), tt.logTerm);
      sm.term = term;
      sm.step(m({ type: vt, term, from: '2', to: '1', index: tt.index, logTerm: tt.logTerm }));
      const msgs = readMessages(sm);
      assert.equal(msgs.length, 1, `#${i}`);
      assert.equal(msgs[0]!.type, voteResponseType(vt), `#${i}`);
      assert.equal(msgs[0]!.reject, tt.wreject, `#${i}`);
    }
  });
}

test('a message with a higher term turns any node into a follower of that term (Raft §5.1, etcd TestAllServerStepdown)', () => {
  const cases: { state: StateRole; windex: number }[] = [
    { state: 'follower', windex: 0 },
    { state: 'preCandidate', windex: 0 },
    { state: 'candidate', windex: 0 },
    { state: 'leader', windex: 1 },
  ];
  const tterm = 3;
  for (const tt of cases) {
    for (const t of ['MsgVote', 'MsgApp'] as MessageType[]) {
      const sm = raft3('1');
      if (tt.state === 'follower') sm.becomeFollower(1, '');
      else setState(sm, tt.state);
      sm.step(m({ type: t, from: '2', to: '1', term: tterm, logTerm: tterm }));
      assert.equal(sm.state, 'follower', `${tt.state} ${t}`);
      assert.equal(sm.term, tterm, `${tt.state} ${t}`);
      assert.equal(sm.raftLog.lastIndex(), tt.windex, `${tt.state} ${t}`);
      assert.equal(sm.raftLog.allEntries().length, tt.windex, `${tt.state} ${t}`);
      assert.equal(sm.lead, t === 'MsgVote' ? '' : '2', `${tt.state} ${t} lead`);
    }
  }
});

for (const st of ['follower', 'candidate', 'leader'] as StateRole[]) {
  test(`a ${st} that sees a higher term updates its term and becomes follower (Raft §5.1, etcd TestUpdateTermFromMessage)`, () => {
    const r = raft3('1');
    if (st === 'follower') r.becomeFollower(1, '2');
    else setState(r, st);
    r.step(m({ type: 'MsgApp', from: '2', to: '1', term: 2 }));
    assert.equal(r.term, 2);
    assert.equal(r.state, 'follower');
  });
}

test('a message with a stale term is ignored (Raft §5.1, etcd TestRejectStaleTermMessage)', () => {
  let called = false;
  const r = raft3('1');
  r.stepFn = () => {
    called = true;
    return undefined;
  };
  r.term = 2;
  r.step(m({ type: 'MsgApp', from: '2', to: '1', term: 1 }));
  assert.equal(called, false);
  assert.equal(r.term, 2);
});

test('a node starts as a follower (Raft §5.2, etcd TestStartAsFollower)', () => {
  assert.equal(raft3('1').state, 'follower');
});

test('a leader sends a heartbeat to every follower each heartbeat interval (Raft §5.2, etcd TestLeaderBcastBeat)', () => {
  const r = raft3('1');
  becomeLeader(r);
  for (let i = 0; i < 10; i++) r.appendEntry([{ term: 0, index: 0, type: 'Normal', data: new Uint8Array(0) }]);
  readMessages(r);
  tick(r, 1);
  const msgs = sortMsgs(readMessages(r));
  assert.deepEqual(
    msgs.map((x) => [x.from, x.to, x.term, x.type, x.commit]),
    [
      ['1', '2', 1, 'MsgHeartbeat', 0],
      ['1', '3', 1, 'MsgHeartbeat', 0],
    ],
  );
});

for (const st of ['follower', 'candidate'] as StateRole[]) {
  test(`a ${st} whose election timeout elapses starts an election: new term, own vote, MsgVote to all (Raft §5.2, etcd TestNonleaderStartElection)`, () => {
    const et = 10;
    const r = raft3('1', {}, et);
    if (st === 'follower') r.becomeFollower(1, '2');
    else r.becomeCandidate();
    for (let i = 1; i < 2 * et; i++) tick(r);
    assert.equal(r.term, 2);
    assert.equal(r.state, 'candidate');
    assert.equal(r.trk.votes.get('1'), true);
    const msgs = sortMsgs(readMessages(r));
    assert.deepEqual(
      msgs.map((x) => [x.from, x.to, x.term, x.type]),
      [
        ['1', '2', 2, 'MsgVote'],
        ['1', '3', 2, 'MsgVote'],
      ],
    );
  });
}

test('the election outcome follows the votes of one round (Raft §5.2, etcd TestLeaderElectionInOneRoundRPC)', () => {
  const cases: { size: number; votes: [string, boolean][]; state: StateRole }[] = [
    // win the election when receiving votes from a majority of the servers
    { size: 1, votes: [], state: 'leader' },
    { size: 3, votes: [['2', true], ['3', true]], state: 'leader' },
    { size: 3, votes: [['2', true]], state: 'leader' },
    { size: 5, votes: [['2', true], ['3', true], ['4', true], ['5', true]], state: 'leader' },
    { size: 5, votes: [['2', true], ['3', true], ['4', true]], state: 'leader' },
    { size: 5, votes: [['2', true], ['3', true]], state: 'leader' },
    // return to follower state if it receives vote denial from a majority
    { size: 3, votes: [['2', false], ['3', false]], state: 'follower' },
    { size: 5, votes: [['2', false], ['3', false], ['4', false], ['5', false]], state: 'follower' },
    { size: 5, votes: [['2', true], ['3', false], ['4', false], ['5', false]], state: 'follower' },
    // stay in candidate if it does not obtain the majority
    { size: 3, votes: [], state: 'candidate' },
    { size: 5, votes: [['2', true]], state: 'candidate' },
    { size: 5, votes: [['2', false], ['3', false]], state: 'candidate' },
    { size: 5, votes: [], state: 'candidate' },
  ];
  for (const [i, tt] of cases.entries()) {
    const r = newTestRaft('1', 10, 1, newTestStorage(ids(tt.size)));
    r.step(hup('1'));
    for (const [id, vote] of tt.votes) r.step(m({ type: 'MsgVoteResp', from: id, to: '1', term: r.term, reject: !vote }));
    assert.equal(r.state, tt.state, `#${i}`);
    assert.equal(r.term, 1, `#${i}`);
  }
});

test('a follower votes for at most one candidate per term (Raft §5.2, etcd TestFollowerVote)', () => {
  const cases: { vote: string; nvote: string; wreject: boolean }[] = [
    { vote: '', nvote: '2', wreject: false },
    { vote: '', nvote: '3', wreject: false },
    { vote: '2', nvote: '2', wreject: false },
    { vote: '3', nvote: '3', wreject: false },
    { vote: '2', nvote: '3', wreject: true },
    { vote: '3', nvote: '2', wreject: true },
  ];
  for (const [i, tt] of cases.entries()) {
    const r = raft3('1');
    r.term = 1;
    r.vote = tt.vote;
    r.step(m({ type: 'MsgVote', from: tt.nvote, to: '1', term: 1 }));
    const msgs = readMessages(r);
    assert.deepEqual(
      msgs.map((x) => [x.from, x.to, x.term, x.type, x.reject]),
      [['1', tt.nvote, 1, 'MsgVoteResp', tt.wreject]],
      `#${i}`,
    );
  }
});

test('a candidate that hears from a leader of its term or later becomes its follower (Raft §5.2, etcd TestCandidateFallback)', () => {
  for (const term of [1, 2]) {
    const r = raft3('1');
    r.step(hup('1'));
    assert.equal(r.state, 'candidate');
    r.step(m({ type: 'MsgApp', from: '2', to: '1', term }));
    assert.equal(r.state, 'follower', `term ${term}`);
    assert.equal(r.term, term);
    assert.equal(r.lead, '2');
  }
});

for (const st of ['follower', 'candidate'] as StateRole[]) {
  test(`election timeouts of a ${st} are spread over [electionTick, 2*electionTick) (Raft §5.2, etcd TestElectionTimeoutRandomized)`, () => {
    const et = 10;
    const r = raft3('1', {}, et);
    const timeouts = new Set<number>();
    for (let round = 0; round < 50 * et; round++) {
      if (st === 'follower') r.becomeFollower(r.term + 1, '2');
      else r.becomeCandidate();
      let time = 0;
      while (readMessages(r).length === 0) {
        tick(r);
        time++;
      }
      timeouts.add(time);
    }
    for (let d = et + 1; d < 2 * et; d++) assert.ok(timeouts.has(d), `timeout in ${d} ticks should happen`);
    for (const t of timeouts) assert.ok(t >= et && t <= 2 * et, `timeout ${t} out of range`);
  });

  test(`${st}s with different ids rarely time out on the same tick (Raft §5.2, etcd TestElectionTimeoutNonconflict)`, () => {
    const et = 10;
    const size = 5;
    const rs = ids(size).map((id) => newTestRaft(id, et, 1, newTestStorage(ids(size))));
    let conflicts = 0;
    for (let round = 0; round < 1000; round++) {
      for (const r of rs) {
        if (st === 'follower') r.becomeFollower(r.term + 1, '');
        else r.becomeCandidate();
      }
      let timeoutNum = 0;
      while (timeoutNum === 0) {
        for (const r of rs) {
          tick(r);
          if (readMessages(r).length > 0) timeoutNum++;
        }
      }
      if (timeoutNum > 1) conflicts++;
    }
    assert.ok(conflicts / 1000 <= 0.3, `probability of conflicts ${conflicts / 1000} too high`);
  });
}

test('a voter rejects a candidate whose log is less up to date (Raft §5.4.1, etcd TestVoter)', () => {
  const e = (term: number, index: number) => ({ term, index, type: 'Normal' as const, data: new Uint8Array(0) });
  const cases: { ents: ReturnType<typeof e>[]; logterm: number; index: number; wreject: boolean }[] = [
    // same logterm
    { ents: [e(1, 1)], logterm: 1, index: 1, wreject: false },
    { ents: [e(1, 1)], logterm: 1, index: 2, wreject: false },
    { ents: [e(1, 1), e(1, 2)], logterm: 1, index: 1, wreject: true },
    // candidate higher logterm
    { ents: [e(1, 1)], logterm: 2, index: 1, wreject: false },
    { ents: [e(1, 1)], logterm: 2, index: 2, wreject: false },
    { ents: [e(1, 1), e(1, 2)], logterm: 2, index: 1, wreject: false },
    // voter higher logterm
    { ents: [e(2, 1)], logterm: 1, index: 1, wreject: true },
    { ents: [e(2, 1)], logterm: 1, index: 2, wreject: true },
    // etcd's case is [e(2, 1), e(1, 2)], a log whose term decreases, which no
    // Raft log has and MemoryStorage.append refuses: the voter's last term is 2 here
    { ents: [e(2, 1), e(2, 2)], logterm: 1, index: 1, wreject: true },
  ];
  for (const [i, tt] of cases.entries()) {
    const s = newTestStorage(['1', '2']);
    s.append(tt.ents);
    const r = newTestRaft('1', 10, 1, s);
    r.step(m({ type: 'MsgVote', from: '2', to: '1', term: 3, logTerm: tt.logterm, index: tt.index }));
    const msgs = readMessages(r);
    assert.equal(msgs.length, 1, `#${i}`);
    assert.equal(msgs[0]!.type, 'MsgVoteResp', `#${i}`);
    assert.equal(msgs[0]!.reject, tt.wreject, `#${i}`);
  }
});

test('dueling candidates: the one with the longer log wins and a stale candidate disrupts the term (etcd TestDuelingCandidates)', () => {
  const a = raft3('1');
  const b = raft3('2');
  const c = raft3('3');
  const nt = new Network([a, b, c]);
  nt.cut('1', '3');
  nt.send(hup('1'));
  nt.send(hup('3'));
  // 1 becomes leader since it receives votes from 1 and 2
  assert.equal(a.state, 'leader');
  // 3 stays candidate: a vote from 3 and a rejection from 2
  assert.equal(c.state, 'candidate');
  nt.recover();
  // 3 campaigns again with a higher term: it disrupts the leader, and
  // becomes follower again since 1 and 2 reject it (its log is shorter).
  nt.send(hup('3'));
  const want: [Raft, StateRole, number, number[], number][] = [
    [a, 'follower', 2, [1], 1],
    [b, 'follower', 2, [1], 1],
    [c, 'follower', 2, [], 0],
  ];
  for (const [r, state, term, terms, committed] of want) {
    assert.equal(r.state, state, r.id);
    assert.equal(r.term, term, r.id);
    assert.deepEqual(r.raftLog.allEntries().map((x) => x.term), terms, r.id);
    assert.equal(r.raftLog.committed, committed, r.id);
  }
});

test('with PreVote a stale pre-candidate does not disrupt the leader (thesis §9.6, etcd TestDuelingPreCandidates)', () => {
  const a = raft3('1', PRE_VOTE);
  const b = raft3('2', PRE_VOTE);
  const c = raft3('3', PRE_VOTE);
  const nt = new Network([a, b, c]);
  nt.cut('1', '3');
  nt.send(hup('1'));
  nt.send(hup('3'));
  assert.equal(a.state, 'leader');
  // 3 pre-campaigns and reverts to follower when its PreVote is rejected
  assert.equal(c.state, 'follower');
  nt.recover();
  nt.send(hup('3'));
  const want: [Raft, StateRole, number, number[]][] = [
    [a, 'leader', 1, [1]],
    [b, 'follower', 1, [1]],
    [c, 'follower', 1, []],
  ];
  for (const [r, state, term, terms] of want) {
    assert.equal(r.state, state, r.id);
    assert.equal(r.term, term, r.id);
    assert.deepEqual(r.raftLog.allEntries().map((x) => x.term), terms, r.id);
  }
});

test('a partitioned candidate concedes to the leader after the partition heals (etcd TestCandidateConcede)', () => {
  const nt = new Network([null, null, null]);
  nt.isolate('1');
  nt.send(hup('1'));
  nt.send(hup('3'));
  nt.recover();
  // heartbeat; then a proposal flushes a MsgApp to 1; then a heartbeat flushes the commit
  nt.send(m({ type: 'MsgBeat', from: '3', to: '3' }));
  const data = new TextEncoder().encode('force follower');
  nt.send(m({ type: 'MsgProp', from: '3', to: '3', entries: [{ term: 0, index: 0, type: 'Normal', data }] }));
  nt.send(m({ type: 'MsgBeat', from: '3', to: '3' }));
  const a = nt.raft('1');
  assert.equal(a.state, 'follower');
  assert.equal(a.term, 1);
  for (const id of ['1', '2', '3']) {
    const r = nt.raft(id);
    assert.deepEqual(r.raftLog.allEntries().map((x) => [x.index, x.term, x.data.length]), [
      [1, 1, 0],
      [2, 1, data.length],
    ]);
    assert.equal(r.raftLog.committed, 2, id);
  }
});

for (const preVote of [false, true]) {
  test(`a single node becomes leader on its own${preVote ? ' with PreVote' : ''} (etcd TestSingleNode(Pre)Candidate)`, () => {
    const nt = new Network([null], { preVote });
    nt.send(hup('1'));
    assert.equal(nt.raft('1').state, 'leader');
    assert.equal(nt.raft('1').term, 1);
  });
}

test('entries from an old leader are ignored; the log stays the current leader\'s (Raft §5.1, etcd TestOldMessages)', () => {
  const nt = new Network([null, null, null]);
  // make 1 leader at term 3
  nt.send(hup('1'));
  nt.send(hup('2'));
  nt.send(hup('1'));
  // an old leader trying to make progress: ignored
  nt.send(m({ type: 'MsgApp', from: '2', to: '1', term: 2, entries: [{ index: 3, term: 2, type: 'Normal', data: new Uint8Array(0) }] }));
  nt.send(m({ type: 'MsgProp', from: '1', to: '1', entries: [{ term: 0, index: 0, type: 'Normal', data: new TextEncoder().encode('somedata') }] }));
  for (const id of ['1', '2', '3']) {
    const r = nt.raft(id);
    assert.deepEqual(r.raftLog.allEntries().map((x) => x.term), [1, 2, 3, 3], id);
    assert.equal(r.raftLog.committed, 4, id);
  }
});

for (const mt of ['MsgHeartbeat', 'MsgApp'] as MessageType[]) {
  test(`an isolated candidate reverts to follower at the leader's term on ${mt} (etcd TestCandidateResetTerm)`, () => {
    const a = raft3('1');
    const b = raft3('2');
    const c = raft3('3');
    const nt = new Network([a, b, c]);
    nt.send(hup('1'));
    assert.deepEqual([a.state, b.state, c.state], ['leader', 'follower', 'follower']);
    // isolate 3 and increase the term in the rest
    nt.isolate('3');
    nt.send(hup('2'));
    nt.send(hup('1'));
    assert.equal(a.state, 'leader');
    assert.equal(b.state, 'follower');
    // trigger a campaign in the isolated c
    c.resetRandomizedElectionTimeout();
    tick(c, c.randomizedElectionTimeout);
    assert.equal(c.state, 'candidate');
    nt.recover();
    // the leader sends to the isolated candidate, which reverts to follower
    nt.send(m({ type: mt, from: '1', to: '3', term: a.term }));
    assert.equal(c.state, 'follower');
    assert.equal(c.term, a.term);
  });
}

test('a leader that hears from a quorum each election timeout stays leader (thesis §6.2, etcd TestLeaderStepdownWhenQuorumActive)', () => {
  const sm = newTestRaft('1', 5, 1, newTestStorage(['1', '2', '3']), { checkQuorum: true });
  becomeLeader(sm);
  for (let i = 0; i < sm.electionTimeout + 1; i++) {
    sm.step(m({ type: 'MsgHeartbeatResp', from: '2', to: '1', term: sm.term }));
    tick(sm);
  }
  assert.equal(sm.state, 'leader');
});

test('a leader that does not hear from a quorum within an election timeout steps down (thesis §6.2, etcd TestLeaderStepdownWhenQuorumLost)', () => {
  const sm = newTestRaft('1', 5, 1, newTestStorage(['1', '2', '3']), { checkQuorum: true });
  becomeLeader(sm);
  for (let i = 0; i < sm.electionTimeout + 1; i++) tick(sm);
  assert.equal(sm.state, 'follower');
  assert.equal(sm.lead, '');
});

test('with CheckQuorum followers ignore votes while they hear from a leader, then elect anew (thesis §6.2, etcd TestLeaderSupersedingWithCheckQuorum)', () => {
  const cq: TestRaftOptions = { checkQuorum: true };
  const a = raft3('1', cq);
  const b = raft3('2', cq);
  const c = raft3('3', cq);
  const nt = new Network([a, b, c]);
  setRandomizedElectionTimeout(b, b.electionTimeout + 1);
  tick(b, b.electionTimeout);
  nt.send(hup('1'));
  assert.equal(a.state, 'leader');
  assert.equal(c.state, 'follower');
  nt.send(hup('3'));
  // b rejected c's vote since its electionElapsed had not reached electionTimeout
  assert.equal(c.state, 'candidate');
  // let b's electionElapsed reach electionTimeout (without b campaigning itself)
  setRandomizedElectionTimeout(b, b.electionTimeout + 1);
  tick(b, b.electionTimeout);
  nt.send(hup('3'));
  assert.equal(c.state, 'leader');
});

test('with CheckQuorum a node elected by a quorum out of lease deposes the old leader (etcd TestLeaderElectionWithCheckQuorum)', () => {
  const cq: TestRaftOptions = { checkQuorum: true };
  const a = raft3('1', cq);
  const b = raft3('2', cq);
  const c = raft3('3', cq);
  const nt = new Network([a, b, c]);
  setRandomizedElectionTimeout(a, a.electionTimeout + 1);
  setRandomizedElectionTimeout(b, b.electionTimeout + 2);
  // Immediately after creation, votes are cast regardless of the election timeout.
  nt.send(hup('1'));
  assert.equal(a.state, 'leader');
  assert.equal(c.state, 'follower');
  setRandomizedElectionTimeout(a, a.electionTimeout + 1);
  setRandomizedElectionTimeout(b, b.electionTimeout + 2);
  tick(a, a.electionTimeout);
  tick(b, b.electionTimeout);
  nt.send(hup('3'));
  assert.equal(a.state, 'follower');
  assert.equal(c.state, 'leader');
});

test('with CheckQuorum a stuck candidate with a higher term frees itself by disrupting the leader once (etcd TestFreeStuckCandidateWithCheckQuorum)', () => {
  const cq: TestRaftOptions = { checkQuorum: true };
  const a = raft3('1', cq);
  const b = raft3('2', cq);
  const c = raft3('3', cq);
  const nt = new Network([a, b, c]);
  setRandomizedElectionTimeout(b, b.electionTimeout + 1);
  tick(b, b.electionTimeout);
  nt.send(hup('1'));
  nt.isolate('1');
  nt.send(hup('3'));
  assert.equal(b.state, 'follower');
  assert.equal(c.state, 'candidate');
  assert.equal(c.term, b.term + 1);
  // vote again for safety
  nt.send(hup('3'));
  assert.equal(b.state, 'follower');
  assert.equal(c.state, 'candidate');
  assert.equal(c.term, b.term + 2);
  nt.recover();
  nt.send(m({ type: 'MsgHeartbeat', from: '1', to: '3', term: a.term }));
  // the leader is disrupted so that the stuck peer is freed
  assert.equal(a.state, 'follower');
  assert.equal(c.term, a.term);
  // vote again: this time c wins
  nt.send(hup('3'));
  assert.equal(c.state, 'leader');
});

test('a node outside the configuration never campaigns but follows the leader (etcd TestNonPromotableVoterWithCheckQuorum)', () => {
  const a = newTestRaft('1', 10, 1, newTestStorage(['1', '2']), { checkQuorum: true });
  const b = newTestRaft('2', 10, 1, newTestStorage(['1']), { checkQuorum: true });
  const nt = new Network([a, b]);
  setRandomizedElectionTimeout(b, b.electionTimeout + 1);
  assert.equal(b.promotable(), false);
  tick(b, 2 * b.electionTimeout);
  assert.equal(b.state, 'follower');
  nt.send(hup('1'));
  assert.equal(a.state, 'leader');
  assert.equal(b.state, 'follower');
  assert.equal(b.lead, '1');
});

test('a follower that times out with delayed leader messages disrupts the leader through its higher-term MsgAppResp (etcd TestDisruptiveFollower)', () => {
  const cq: TestRaftOptions = { checkQuorum: true };
  const n1 = raft3('1', cq);
  const n2 = raft3('2', cq);
  const n3 = raft3('3', cq);
  for (const r of [n1, n2, n3]) r.becomeFollower(1, '');
  const nt = new Network([n1, n2, n3]);
  nt.send(hup('1'));
  assert.deepEqual([n1.state, n2.state, n3.state], ['leader', 'follower', 'follower']);
  // the leader's messages are delayed while n3's ticks elapse: it campaigns
  setRandomizedElectionTimeout(n3, n3.electionTimeout + 2);
  tick(n3, n3.randomizedElectionTimeout - 1);
  tick(n3);
  // n1 leader at term 2, n2 follower at term 2, n3 candidate at term 3
  assert.deepEqual([n1.term, n2.term, n3.term], [2, 2, 3]);
  assert.equal(n3.state, 'candidate');
  // the delayed heartbeat with the lower term arrives at the candidate,
  // which answers with a higher-term MsgAppResp: the leader steps down
  nt.send(m({ type: 'MsgHeartbeat', from: '1', to: '3', term: n1.term }));
  assert.deepEqual([n1.state, n2.state, n3.state], ['follower', 'follower', 'candidate']);
  assert.deepEqual([n1.term, n2.term, n3.term], [3, 2, 3]);
});

test('with PreVote a lagging follower becomes pre-candidate without disrupting the leader (thesis §9.6, etcd TestDisruptiveFollowerPreVote)', () => {
  const o: TestRaftOptions = { checkQuorum: true, preVote: true };
  const n1 = raft3('1', o);
  const n2 = raft3('2', o);
  const n3 = raft3('3', o);
  for (const r of [n1, n2, n3]) r.becomeFollower(1, '');
  const nt = new Network([n1, n2, n3]);
  nt.send(hup('1'));
  nt.isolate('3');
  const prop = m({ type: 'MsgProp', from: '1', to: '1', entries: [{ term: 0, index: 0, type: 'Normal', data: new Uint8Array([1]) }] });
  nt.send(prop);
  nt.send(m({ ...prop, entries: [{ term: 0, index: 0, type: 'Normal', data: new Uint8Array([2]) }] }));
  nt.recover();
  nt.send(hup('3'));
  assert.deepEqual([n1.state, n2.state, n3.state], ['leader', 'follower', 'preCandidate']);
  assert.deepEqual([n1.term, n2.term, n3.term], [2, 2, 2]);
  assert.equal(n3.lead, '', 'a pre-candidate forgets its leader');
  // a delayed leader heartbeat does not make the leader step down
  nt.send(m({ type: 'MsgHeartbeat', from: '1', to: '3', term: n1.term }));
  assert.equal(n1.state, 'leader');
  assert.equal(n3.state, 'follower');
});

test('with PreVote a split vote resolves at the next timeout (etcd TestPreVoteWithSplitVote)', () => {
  const n1 = raft3('1', PRE_VOTE);
  const n2 = raft3('2', PRE_VOTE);
  const n3 = raft3('3', PRE_VOTE);
  for (const r of [n1, n2, n3]) r.becomeFollower(1, '');
  const nt = new Network([n1, n2, n3]);
  nt.send(hup('1'));
  // the leader goes down; the followers start a split vote
  nt.isolate('1');
  nt.send(hup('2'), hup('3'));
  assert.deepEqual([n2.term, n3.term], [3, 3]);
  assert.deepEqual([n2.state, n3.state], ['candidate', 'candidate']);
  // node 2 times out first
  nt.send(hup('2'));
  assert.deepEqual([n2.term, n3.term], [4, 4]);
  assert.deepEqual([n2.state, n3.state], ['leader', 'follower']);
});

test('with PreVote and CheckQuorum a follower that still hears the leader ignores pre-votes; a leaderless pre-candidate grants them (etcd TestPreVoteWithCheckQuorum)', () => {
  const o: TestRaftOptions = { checkQuorum: true, preVote: true };
  const n1 = raft3('1', o);
  const n2 = raft3('2', o);
  const n3 = raft3('3', o);
  for (const r of [n1, n2, n3]) r.becomeFollower(1, '');
  const nt = new Network([n1, n2, n3]);
  nt.send(hup('1'));
  nt.isolate('1');
  assert.deepEqual([n1.state, n2.state, n3.state], ['leader', 'follower', 'follower']);
  // node 2 ignores node 3's PreVote (it still has a leader)
  nt.send(hup('3'));
  assert.equal(n3.state, 'preCandidate');
  // node 3 forgot its leader, so it grants node 2's
  nt.send(hup('2'));
  assert.equal(n2.state, 'leader');
  assert.equal(n3.state, 'follower');
});

test('a learner never campaigns, not even on MsgTimeoutNow (thesis §4.2.1, etcd TestLearnerCampaign/TestLearnerElectionTimeout)', () => {
  const n1 = newTestRaft('1', 10, 1, newTestStorage(['1'], ['2']));
  const n2 = newTestRaft('2', 10, 1, newTestStorage(['1'], ['2']));
  assert.equal(n2.isLearner, true);
  setRandomizedElectionTimeout(n2, n2.electionTimeout);
  tick(n2, 3 * n2.electionTimeout);
  assert.equal(n2.state, 'follower');
  assert.equal(readMessages(n2).length, 0);
  const nt = new Network([n1, n2]);
  nt.send(hup('2'));
  assert.equal(n2.state, 'follower');
  nt.send(hup('1'));
  assert.equal(n1.state, 'leader');
  assert.equal(n1.lead, '1');
  nt.send(m({ type: 'MsgTimeoutNow', from: '1', to: '2', term: n1.term }));
  assert.equal(n2.state, 'follower');
});

test('a promoted learner can campaign and win (thesis §4.2.1, etcd TestLearnerPromotion)', () => {
  const n1 = newTestRaft('1', 10, 1, newTestStorage(['1'], ['2']));
  const n2 = newTestRaft('2', 10, 1, newTestStorage(['1'], ['2']));
  n1.becomeFollower(1, '');
  n2.becomeFollower(1, '');
  const nt = new Network([n1, n2]);
  setRandomizedElectionTimeout(n1, n1.electionTimeout);
  tick(n1, n1.electionTimeout);
  assert.equal(n1.state, 'leader');
  assert.equal(n2.state, 'follower');
  nt.send(m({ type: 'MsgBeat', from: '1', to: '1' }));
  n1.applyConfChange({ type: 'AddNode', nodeId: '2' });
  n2.applyConfChange({ type: 'AddNode', nodeId: '2' });
  assert.equal(n2.isLearner, false);
  setRandomizedElectionTimeout(n2, n2.electionTimeout);
  tick(n2, n2.electionTimeout);
  nt.send(m({ type: 'MsgBeat', from: '2', to: '2' }));
  assert.equal(n1.state, 'follower');
  assert.equal(n2.state, 'leader');
});

test('a candidate does not count the votes of learners (learners never count in quorums, thesis §4.2.1)', () => {
  const r = newTestRaft('1', 10, 1, newTestStorage(['1', '2', '3'], ['4', '5']));
  r.step(hup('1'));
  assert.equal(r.state, 'candidate');
  const sent = readMessages(r).map((x) => x.to).sort();
  assert.deepEqual(sent, ['2', '3'], 'no vote request to learners');
  r.step(m({ type: 'MsgVoteResp', from: '4', to: '1', term: r.term }));
  r.step(m({ type: 'MsgVoteResp', from: '5', to: '1', term: r.term }));
  assert.equal(r.state, 'candidate');
  r.step(m({ type: 'MsgVoteResp', from: '2', to: '1', term: r.term }));
  assert.equal(r.state, 'leader');
});

test('a node with a committed but unapplied conf change does not campaign (etcd hasUnappliedConfChanges)', () => {
  const s = newTestStorage(['1', '2', '3']);
  s.append([
    { term: 1, index: 1, type: 'Normal', data: new Uint8Array(0) },
    { term: 1, index: 2, type: 'ConfChange', data: new Uint8Array([0x92, 0x00, 0xa1, 0x34]) },
  ]);
  s.setHardState({ term: 1, vote: '', commit: 2 });
  const r = newTestRaft('1', 10, 1, s);
  r.step(hup('1'));
  assert.equal(r.state, 'follower');
  r.raftLog.appliedTo(2);
  r.step(hup('1'));
  assert.equal(r.state, 'candidate');
});

test('a leader ignores MsgHup; a pre-candidate campaigns for the next term without changing its own (thesis §9.6)', () => {
  const r = raft3('1', PRE_VOTE);
  becomeLeader(r);
  const term = r.term;
  r.step(hup('1'));
  assert.equal(r.state, 'leader');
  assert.equal(r.term, term);
  const f = raft3('2', PRE_VOTE);
  f.becomeFollower(3, '1');
  f.step(hup('2'));
  assert.equal(f.state, 'preCandidate');
  assert.equal(f.term, 3);
  assert.equal(f.vote, '');
  const msgs = readMessages(f);
  assert.deepEqual(msgs.map((x) => [x.type, x.term]), [
    ['MsgPreVote', 4],
    ['MsgPreVote', 4],
  ]);
});

test('a voter whose log holds only the bootstrap entries votes only for candidates whose log holds nothing more', () => {
  // The bootstrap's ConfChange entries at term 1 (RawNode.bootstrap), or a
  // restored snapshot at term 1: such a member may have lost its data, and
  // a vote for a longer log could lose entries it had acknowledged.
  const bootstrap = (): Entry[] =>
    ['1', '2', '3'].map((v, i) => ({ term: 1, index: i + 1, type: 'ConfChange' as const, data: encodeConfChangeData({ type: 'AddNode', nodeId: v }) }));
  const tests: { name: string; log: Entry[]; snapshotTerm1?: boolean; msgType: 'MsgVote' | 'MsgPreVote'; logTerm: number; index: number; wantReject: boolean }[] = [
    { name: 'bootstrap log, candidate at the bootstrap', log: bootstrap(), msgType: 'MsgVote', logTerm: 1, index: 3, wantReject: false },
    { name: 'bootstrap log, candidate beyond it', log: bootstrap(), msgType: 'MsgVote', logTerm: 2, index: 4, wantReject: true },
    { name: 'bootstrap log, pre-vote beyond it', log: bootstrap(), msgType: 'MsgPreVote', logTerm: 2, index: 4, wantReject: true },
    { name: 'restored snapshot at term 1, candidate beyond it', log: [], snapshotTerm1: true, msgType: 'MsgVote', logTerm: 3, index: 9, wantReject: true },
    { name: 'restored snapshot at term 1, candidate at it', log: [], snapshotTerm1: true, msgType: 'MsgVote', logTerm: 1, index: 1, wantReject: false },
    { name: 'bootstrap and an entry from a leader', log: [...bootstrap(), { term: 2, index: 4, type: 'Normal', data: new Uint8Array(0) }], msgType: 'MsgVote', logTerm: 2, index: 4, wantReject: false },
    { name: 'normal entries at term 1', log: entsWithTerms(1, 1), msgType: 'MsgVote', logTerm: 2, index: 1, wantReject: false },
    { name: 'empty log (a member that joined)', log: [], msgType: 'MsgVote', logTerm: 5, index: 9, wantReject: false },
  ];
  for (const tt of tests) {
    const s = newTestStorage(['1', '2', '3']);
    if (tt.snapshotTerm1) s.applySnapshot({ data: new Uint8Array(0), metadata: { index: 1, term: 1, confState: { voters: ['1', '2', '3'], learners: [] } } });
    s.append(tt.log);
    s.setHardState({ term: 1, vote: '', commit: tt.snapshotTerm1 ? 1 : 0 });
    const r = newTestRaft('1', 10, 1, s, tt.msgType === 'MsgPreVote' ? PRE_VOTE : {});
    r.step(m({ type: tt.msgType, from: '2', to: '1', term: 5, logTerm: tt.logTerm, index: tt.index }));
    const msgs = readMessages(r);
    assert.equal(msgs.length, 1, tt.name);
    assert.equal(msgs[0]!.type, voteResponseType(tt.msgType), tt.name);
    assert.equal(msgs[0]!.reject, tt.wantReject, tt.name);
  }
});

test('a voter that lost its data withholds its vote until it holds what the first leader it hears from says is committed, not only until that leader first reaches it', () => {
  // 1 and 3 acknowledged w4..w10 at term 2 (committed at 10); 2 lagged at 5.
  // 3 lost its data and bootstrapped again; 1 crashed and restarted (no
  // progress of its peers, so its heartbeats carry no commit beyond their logs).
  const ids3 = ['1', '2', '3'];
  const bootstrap = (): Entry[] =>
    ids3.map((v, i) => ({ term: 1, index: i + 1, type: 'ConfChange' as const, data: encodeConfChangeData({ type: 'AddNode', nodeId: v }) }));
  const writes = (from: number, to: number): Entry[] =>
    Array.from({ length: to - from + 1 }, (_, i) => ({ term: 2, index: from + i, type: 'Normal' as const, data: new TextEncoder().encode(`w${from + i}`) }));
  const node = (id: string, log: Entry[], term: number, commit: number): Raft => {
    const s = newTestStorage(ids3);
    s.append(log);
    s.setHardState({ term, vote: '', commit });
    // one entry per MsgApp: a backlog goes out in several batches
    return newTestRaft(id, 10, 1, s, { maxSizePerMsg: 1, applied: commit });
  };
  const n1 = node('1', [...bootstrap(), ...writes(4, 10)], 2, 10);
  const n2 = node('2', [...bootstrap(), ...writes(4, 5)], 2, 5);
  const n3 = node('3', bootstrap(), 1, 3);
  const deliver = (from: Raft, to: Raft): void => {
    for (const x of readMessages(from)) if (x.to === to.id) to.step(x);
  };
  // 1 campaigns: 3 refuses (its log holds only the bootstrap), 2 elects it
  n1.step(hup('1'));
  for (const r of readMessages(n1)) (r.to === '2' ? n2 : n3).step(r);
  assert.equal(readMessages(n3)[0]!.reject, true);
  for (const r of readMessages(n2)) n1.step(r);
  assert.equal(n1.state, 'leader');
  // 1 catches 3 and 2 up by one entry each, and fails for good
  let out = readMessages(n1);
  for (const x of out.filter((x) => x.to === '3')) n3.step(x); // the probe at 11 is rejected
  for (const x of readMessages(n3)) n1.step(x);
  out = [...out.filter((x) => x.to === '2'), ...readMessages(n1)];
  for (const x of out.filter((x) => x.to === '3')) n3.step(x); // 4@2
  for (const x of out.filter((x) => x.to === '2')) n2.step(x); // the probe at 11 is rejected
  for (const x of readMessages(n2)) n1.step(x);
  deliver(n1, n2); // 6@2
  readMessages(n2);
  readMessages(n3);
  assert.equal(n3.raftLog.lastIndex(), 4);
  assert.equal(n3.onlyBootstrapLog(), false);
  // 2 (log up to 6@2, without w7..w10) campaigns: 3 must not elect it
  n2.step(hup('2'));
  deliver(n2, n3);
  const resp = readMessages(n3);
  assert.equal(resp.length, 1);
  assert.equal(resp[0]!.reject, true, '3 withholds its vote: its log is short of the commit index 10 leader 1 announced');
  for (const x of resp) n2.step(x);
  assert.notEqual(n2.state, 'leader');
});
