// RawNode: the public API and the Ready/Advance contract (etcd-io/raft
// rawnode_test.go), driven through the Cluster helper or by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, FaultError, UsageError, isQuorumError } from '../../src/errors.js';
import { decodeConfChange, encodeConfChange } from '../../src/codec/index.js';
import type { Message } from '../../src/raftpb/index.js';
import { MemoryStorage, RawNode, decodeConfChangeData, encodeConfChangeData } from '../../src/raft/index.js';
import type { RaftConfig } from '../../src/raft/index.js';
import { bytes } from './helpers/harness.js';
import { Cluster } from './helpers/cluster.js';

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (err) {
    return isQuorumError(err) ? err.code : `not a QuorumError: ${String(err)}`;
  }
}

test('a bootstrapped three-node cluster elects a leader and replicates a proposal to every node', () => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  c.get('a').node.propose(bytes('hello'));
  c.stabilize();
  for (const id of ['a', 'b', 'c']) assert.deepEqual(c.appliedData(id), ['hello'], id);
  const st = c.get('a').node.status();
  assert.deepEqual(st.config, { voters: ['a', 'b', 'c'], learners: [] });
  assert.equal(st.hardState.commit, 5, '3 conf changes, the no-op, the proposal');
  assert.equal(st.applied, 5);
});

test('bootstrap puts the conf change entries, a HardState and the committed entries in the first Ready', () => {
  const s = new MemoryStorage();
  const n = new RawNode({ id: 'a', storage: s });
  n.bootstrap(['a', 'b']);
  assert.equal(n.hasReady(), true);
  const rd = n.ready();
  assert.deepEqual(rd.hardState, { term: 1, vote: '', commit: 2 });
  assert.equal(rd.mustSync, true);
  assert.deepEqual(rd.entries.map((e) => [e.index, e.term, e.type]), [
    [1, 1, 'ConfChange'],
    [2, 1, 'ConfChange'],
  ]);
  assert.deepEqual(rd.committedEntries.map((e) => e.index), [1, 2]);
  assert.deepEqual(decodeConfChangeData(rd.entries[1]!.data), { type: 'AddNode', nodeId: 'b' });
  assert.deepEqual(n.status().config, { voters: ['a', 'b'], learners: [] });
});

test('bootstrap refuses bad voter lists and non-empty storage, changing nothing', () => {
  const fresh = (): RawNode => new RawNode({ id: 'a', storage: new MemoryStorage() });
  assert.equal(codeOf(() => fresh().bootstrap([])), ErrorCode.INVALID_CONFIG);
  assert.equal(codeOf(() => fresh().bootstrap(['a', 'a'])), ErrorCode.INVALID_CONFIG);
  assert.equal(codeOf(() => fresh().bootstrap(['a', ''])), ErrorCode.INVALID_CONFIG);
  assert.equal(codeOf(() => fresh().bootstrap(['b', 'c'])), ErrorCode.INVALID_CONFIG);
  const n = fresh();
  n.bootstrap(['a']);
  assert.equal(codeOf(() => n.bootstrap(['a'])), ErrorCode.INVALID_CONFIG, 'twice (unstable entries)');
  const s = new MemoryStorage();
  s.append([{ term: 1, index: 1, type: 'Normal', data: new Uint8Array(0) }]);
  const n2 = new RawNode({ id: 'a', storage: s });
  assert.equal(codeOf(() => n2.bootstrap(['a'])), ErrorCode.INVALID_CONFIG, 'non-empty storage');
  assert.equal(n2.hasReady(), false, 'nothing changed');
  assert.deepEqual(n2.status().config, { voters: [], learners: [] });
});

test('invalid configurations are rejected with QUORUMKV_INVALID_CONFIG', () => {
  const storage = new MemoryStorage();
  const base: RaftConfig = { id: 'a', storage };
  const cases: [string, Partial<RaftConfig> | Record<string, unknown>][] = [
    ['empty id', { id: '' }],
    ['heartbeatTick >= electionTick', { electionTick: 3, heartbeatTick: 3 }],
    ['heartbeatTick > electionTick', { electionTick: 2, heartbeatTick: 5 }],
    ['electionTick < 1', { electionTick: 0 }],
    ['heartbeatTick < 1', { heartbeatTick: 0 }],
    ['non-integer tick', { electionTick: 2.5 }],
    ['leaseBased without checkQuorum', { readOnlyOption: 'leaseBased', checkQuorum: false }],
    ['unknown read option', { readOnlyOption: 'fast' }],
    ['maxSizePerMsg 0', { maxSizePerMsg: 0 }],
    ['negative maxSizePerMsg', { maxSizePerMsg: -1 }],
    ['maxCommittedSizePerReady 0', { maxCommittedSizePerReady: 0 }],
    ['negative maxUncommittedEntriesSize', { maxUncommittedEntriesSize: -5 }],
    ['maxInflightMsgs 0', { maxInflightMsgs: 0 }],
    ['negative applied', { applied: -1 }],
    ['no storage', { storage: undefined }],
    ['storage without methods', { storage: {} }],
    ['random not a function', { random: 4 }],
    ['bad logger', { logger: { debug() {} } }],
  ];
  for (const [name, over] of cases) {
    const err = (() => {
      try {
        new RawNode({ ...base, ...(over as Partial<RaftConfig>) });
        return undefined;
      } catch (e) {
        return e;
      }
    })();
    assert.ok(err instanceof UsageError, `${name}: a UsageError`);
    assert.equal(err.code, ErrorCode.INVALID_CONFIG, name);
  }
  // valid edge cases
  new RawNode({ ...base, maxUncommittedEntriesSize: 0 });
  new RawNode({ ...base, readOnlyOption: 'leaseBased', checkQuorum: true });
  new RawNode({ ...base, electionTick: 2, heartbeatTick: 1 });
});

test('ready() before advance() is refused, and advance() without a Ready too', () => {
  const n = new RawNode({ id: 'a', storage: new MemoryStorage() });
  n.bootstrap(['a']);
  assert.equal(codeOf(() => n.advance()), ErrorCode.INVALID_ARGUMENT);
  n.ready();
  assert.equal(n.hasReady(), false, 'false while a Ready is outstanding');
  assert.equal(codeOf(() => n.ready()), ErrorCode.INVALID_ARGUMENT);
  n.advance();
  assert.equal(n.hasReady(), false);
});

test('a single-voter node becomes leader on campaign and commits its proposals in the next Ready', () => {
  const s = new MemoryStorage();
  const n = new RawNode({ id: 'a', storage: s });
  n.bootstrap(['a']);
  let rd = n.ready();
  s.append(rd.entries);
  s.setHardState(rd.hardState!);
  n.advance();
  n.campaign();
  rd = n.ready();
  assert.deepEqual(rd.softState, { lead: 'a', raftState: 'leader' });
  // PreVote then vote: term 2, voted for itself
  assert.deepEqual(rd.hardState, { term: 2, vote: 'a', commit: 2 });
  assert.equal(rd.mustSync, true);
  assert.deepEqual(rd.entries.map((e) => [e.index, e.term, e.data.length]), [[2, 2, 0]]);
  // the no-op commits at once in a single-voter cluster
  assert.deepEqual(rd.committedEntries.map((e) => e.index), [2]);
  s.append(rd.entries);
  s.setHardState(rd.hardState!);
  n.advance();
  n.propose(bytes('x'));
  rd = n.ready();
  assert.deepEqual(rd.entries.map((e) => e.index), [3]);
  assert.deepEqual(rd.committedEntries.map((e) => e.index), [3]);
  assert.deepEqual(rd.hardState, { term: 2, vote: 'a', commit: 3 });
  assert.equal(rd.mustSync, true);
  assert.equal(rd.softState, undefined, 'no change of role');
  s.append(rd.entries);
  n.advance();
  assert.equal(n.hasReady(), false);
});

test('mustSync is false for a commit-only HardState change', () => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  c.get('a').node.propose(bytes('p'));
  // deliver the MsgApp to b and c; their Readies carry entries (mustSync)
  c.processReady('a');
  c.deliver();
  const rb = c.processReady('b')!;
  assert.equal(rb.mustSync, true);
  c.processReady('c');
  c.deliver(); // MsgAppResp to a
  const ra = c.processReady('a')!;
  assert.ok(ra.hardState !== undefined, 'commit moved');
  assert.equal(ra.entries.length, 0);
  assert.equal(ra.mustSync, false);
});

test('proposals without a leader are dropped with QUORUMKV_PROPOSAL_DROPPED', () => {
  const c = new Cluster(['a', 'b', 'c']);
  c.stabilize();
  const err = (() => {
    try {
      c.get('b').node.propose(bytes('x'));
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  assert.ok(err instanceof FaultError);
  assert.equal(err.code, ErrorCode.PROPOSAL_DROPPED);
  assert.equal(codeOf(() => c.get('b').node.proposeConfChange({ type: 'AddNode', nodeId: 'd' })), ErrorCode.PROPOSAL_DROPPED);
});

test('bad arguments to the local API are UsageErrors with QUORUMKV_INVALID_ARGUMENT', () => {
  const c = new Cluster(['a']);
  c.elect('a');
  const n = c.get('a').node;
  const bad: [string, () => void][] = [
    ['propose a string', () => n.propose('x' as unknown as Uint8Array)],
    ['empty batch', () => n.proposeBatch([])],
    ['conf change with unknown type', () => n.proposeConfChange({ type: 'Promote' as 'AddNode', nodeId: 'b' })],
    ['conf change with empty id', () => n.proposeConfChange({ type: 'AddNode', nodeId: '' })],
    ['apply malformed conf change', () => n.applyConfChange({ type: 'AddNode', nodeId: '' })],
    ['empty read context', () => n.readIndex(new Uint8Array(0))],
    ['transfer to empty id', () => n.transferLeader('')],
    ['report snapshot with unknown status', () => n.reportSnapshot('b', 'done' as 'finish')],
    ['report unreachable for empty id', () => n.reportUnreachable('')],
  ];
  const before = JSON.stringify(n.status());
  for (const [name, f] of bad) assert.equal(codeOf(f), ErrorCode.INVALID_ARGUMENT, name);
  assert.equal(JSON.stringify(n.status()), before, 'nothing changed');
});

test('the conf change encoding of the core matches the codec in both directions', () => {
  const cases = [
    { type: 'AddNode' as const, nodeId: 'n1' },
    { type: 'AddLearnerNode' as const, nodeId: 'x'.repeat(40) },
    { type: 'RemoveNode' as const, nodeId: 'é-node-\u{1F600}' },
    { type: 'AddNode' as const, nodeId: 'y'.repeat(300), context: new Uint8Array([1, 2, 3]) },
    { type: 'AddNode' as const, nodeId: 'z', context: new Uint8Array(70000).fill(7) },
  ];
  for (const cc of cases) {
    const ours = encodeConfChangeData(cc);
    const decoded = decodeConfChange(ours);
    assert.equal(decoded.type, cc.type);
    assert.equal(decoded.nodeId, cc.nodeId);
    if (cc.context) assert.deepEqual(new Uint8Array(decoded.context!), cc.context);
    const theirs = encodeConfChange(cc);
    assert.deepEqual(decodeConfChangeData(theirs), cc);
  }
  assert.equal(decodeConfChangeData(new Uint8Array([0xc1])), undefined);
  assert.equal(decodeConfChangeData(new Uint8Array([0x92, 0x05, 0xa1, 0x61])), undefined, 'unknown type code');
  assert.equal(decodeConfChangeData(new Uint8Array([0x92, 0x00, 0xa5, 0x61])), undefined, 'truncated');
});

test('step() ignores local message types, foreign recipients and responses from unknown peers', () => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  const n = c.get('a').node;
  const before = JSON.stringify(n.status());
  const msgs: Partial<Message>[] = [
    { type: 'MsgHup', to: 'a', from: 'b', term: 5 },
    { type: 'MsgBeat', to: 'a', from: 'b', term: 5 },
    { type: 'MsgCheckQuorum', to: 'a', from: 'b', term: 5 },
    { type: 'MsgUnreachable', to: 'a', from: 'b', term: 5 },
    { type: 'MsgSnapStatus', to: 'a', from: 'b', term: 5 },
    { type: 'MsgAppResp', to: 'a', from: 'zz', term: 9, index: 100 },
    { type: 'MsgHeartbeatResp', to: 'a', from: 'zz', term: 9 },
    { type: 'MsgVoteResp', to: 'a', from: 'zz', term: 9 },
    { type: 'MsgApp', to: 'x', from: 'b', term: 9 },
    { type: 'MsgApp', to: 'a', from: '', term: 9 },
    { type: 'MsgApp', to: 'a', from: 'a', term: 9 },
    { type: 'MsgApp', to: 'a', from: 'b', term: 0 },
    { type: 'MsgWhat' as 'MsgApp', to: 'a', from: 'b', term: 9 },
  ];
  for (const f of msgs) {
    n.step({ to: '', from: '', term: 0, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, ...f } as Message);
  }
  assert.equal(JSON.stringify(n.status()), before);
  assert.equal(n.hasReady(), false);
});

test('a node restarted from its storage keeps term, vote and log, and hands out committed entries after `applied` (etcd TestRawNodeRestart)', () => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  for (const v of ['x', 'y', 'z']) c.get('a').node.propose(bytes(v));
  c.stabilize();
  const b = c.get('b');
  const before = b.node.status();
  // restart b, having applied everything but the last two entries
  const restarted = new RawNode({ id: 'b', storage: b.storage, applied: before.applied - 2 });
  const st = restarted.status();
  assert.deepEqual(st.hardState, before.hardState);
  assert.deepEqual(st.config, before.config);
  assert.equal(st.softState.raftState, 'follower');
  assert.equal(st.softState.lead, '', 'the leader is not persisted');
  const rd = restarted.ready();
  assert.equal(rd.hardState, undefined, 'nothing new to persist');
  assert.deepEqual(rd.entries, []);
  assert.deepEqual(rd.committedEntries.map((e) => e.index), [before.applied - 1, before.applied]);
  restarted.advance();
  assert.equal(restarted.hasReady(), false);
});

test('a stored applied index beyond the stored commit is refused', () => {
  const s = new MemoryStorage();
  s.append([{ term: 1, index: 1, type: 'Normal', data: new Uint8Array(0) }]);
  s.setHardState({ term: 1, vote: '', commit: 0 });
  assert.equal(codeOf(() => new RawNode({ id: 'a', storage: s, applied: 1 })), ErrorCode.CORRUPT_LOG);
  s.setHardState({ term: 1, vote: '', commit: 5 });
  assert.equal(codeOf(() => new RawNode({ id: 'a', storage: s })), ErrorCode.CORRUPT_LOG, 'commit beyond the log');
});

test('committed entries are handed out in pages of maxCommittedSizePerReady bytes (etcd TestCommitPagination)', () => {
  const s = new MemoryStorage();
  const n = new RawNode({ id: 'a', storage: s, maxCommittedSizePerReady: 2048 });
  n.bootstrap(['a']);
  const cycle = (): number => {
    const rd = n.ready();
    if (rd.snapshot) s.applySnapshot(rd.snapshot);
    s.append(rd.entries);
    if (rd.hardState) s.setHardState(rd.hardState);
    n.advance();
    return rd.committedEntries.length;
  };
  cycle();
  n.campaign();
  cycle();
  const blob = new Uint8Array(1000).fill(97);
  for (let i = 0; i < 3; i++) n.propose(blob);
  // the 3 proposals commit in two batches
  assert.equal(cycle(), 2);
  assert.equal(cycle(), 1);
  assert.equal(n.hasReady(), false);
});

test('without config.random, a node draws its election timeouts from a generator seeded by its id', () => {
  const timeouts = (id: string): number[] => {
    const n = new RawNode({ id, storage: new MemoryStorage(), electionTick: 10 });
    n.bootstrap([id, 'other']);
    n.ready();
    n.advance();
    const out: number[] = [];
    for (let round = 0; round < 5; round++) {
      let t = 0;
      while (!n.hasReady()) {
        n.tick();
        t++;
      }
      out.push(t);
      n.ready();
      n.advance();
      // a vote response rejection turns it back into a follower for the next round
      const term = n.status().hardState.term;
      n.step({ type: 'MsgPreVoteResp', to: id, from: 'other', term: term + 1, logTerm: 0, index: 0, entries: [], commit: 0, reject: true, rejectHint: 0 });
      n.ready();
      n.advance();
    }
    return out;
  };
  const a1 = timeouts('a');
  assert.deepEqual(timeouts('a'), a1, 'same id, same sequence');
  for (const t of a1) assert.ok(t >= 10 && t < 20, `timeout ${t} in [10, 20)`);
  assert.notDeepEqual(timeouts('b'), a1, 'another id, another sequence');
});

test('proposals are dropped while a leadership transfer is in progress, and accepted again after it is abandoned (thesis §3.10)', () => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  c.filter = (x) => x.to !== 'c' && x.from !== 'c';
  c.get('a').node.propose(bytes('c-misses-this'));
  c.stabilize();
  c.get('a').node.transferLeader('c');
  assert.equal(c.get('a').node.status().leadTransferee, 'c');
  assert.equal(codeOf(() => c.get('a').node.propose(bytes('dropped'))), ErrorCode.PROPOSAL_DROPPED);
  // c is unreachable: the transfer is abandoned after an election timeout
  for (let i = 0; i < 12; i++) {
    c.get('a').node.tick();
    c.stabilize();
  }
  assert.equal(c.get('a').node.status().leadTransferee, '');
  c.get('a').node.propose(bytes('accepted'));
  c.stabilize();
  assert.deepEqual(c.appliedData('b'), ['c-misses-this', 'accepted']);
});
