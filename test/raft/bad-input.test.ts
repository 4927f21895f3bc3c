// Bad input to the Raft core: step() never throws for anything a peer can
// send (unknown peers, stale terms, out-of-range indexes, local-only types,
// malformed shapes), and such messages do not change term or log.
//
// The property test uses fast-check; on failure it prints its seed and
// path. Replay with QUORUMKV_SEED=<seed> (and QUORUMKV_PATH=<path>).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Entry, Message, MessageType, Snapshot } from '../../src/raftpb/index.js';
import { MESSAGE_TYPES } from '../../src/raftpb/index.js';
import { RawNode } from '../../src/raft/raw-node.js';
import { MemoryStorage } from '../../src/raft/memory-storage.js';
import { bytes } from './helpers/harness.js';
import { Cluster, type Member } from './helpers/cluster.js';

const seed = process.env.QUORUMKV_SEED === undefined ? undefined : Number(process.env.QUORUMKV_SEED);
const path = process.env.QUORUMKV_PATH;

function msg(fields: Partial<Message> & { type: MessageType }): Message {
  return { to: '', from: '', term: 0, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, ...fields };
}

function fingerprint(n: RawNode): string {
  const st = n.status();
  return JSON.stringify({ hs: st.hardState, ss: st.softState, applied: st.applied, config: st.config });
}

/** A 3-node cluster with leader 'a' and some committed entries. */
function cluster(): Cluster {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  c.get('a').node.propose(bytes('one'));
  c.get('a').node.propose(bytes('two'));
  c.stabilize();
  return c;
}

test('messages with a stale term change neither term nor log, on the leader and on a follower (Raft §5.1)', () => {
  const c = cluster();
  // bump the term: leadership moves to b at term 3 (a plain campaign would
  // be ignored by the others while their CheckQuorum lease holds)
  c.get('a').node.transferLeader('b');
  c.stabilize();
  assert.equal(c.leaders()[0], 'b');
  const term = c.get('b').node.status().hardState.term;
  for (const id of ['a', 'b']) {
    const n = c.get(id).node;
    const before = fingerprint(n);
    const types: MessageType[] = ['MsgApp', 'MsgVote', 'MsgVoteResp', 'MsgSnap', 'MsgAppResp', 'MsgHeartbeatResp', 'MsgTimeoutNow', 'MsgReadIndexResp', 'MsgPreVoteResp'];
    for (const type of types) {
      n.step(
        msg({
          type,
          to: id,
          from: 'c',
          term: term - 1,
          index: 1,
          logTerm: term - 1,
          commit: 100,
          entries: type === 'MsgApp' ? [{ term: term - 1, index: 2, type: 'Normal', data: bytes('stale') }] : [],
          snapshot: type === 'MsgSnap' ? { data: new Uint8Array(0), metadata: { index: 50, term: term - 1, confState: { voters: ['a', 'b', 'c'], learners: [] } } } : undefined,
        }),
      );
    }
    assert.equal(fingerprint(n), before, id);
  }
  // what a stale leader gets back is our term, so that it steps down
  const n = c.get('c').node;
  n.step(msg({ type: 'MsgHeartbeat', to: 'c', from: 'a', term: 1 }));
  const rd = n.ready();
  n.advance();
  const resp = rd.messages.find((x) => x.to === 'a');
  assert.ok(resp !== undefined);
  assert.equal(resp.type, 'MsgAppResp');
  assert.equal(resp.term, term);
});

test('messages from nodes outside the configuration do not change the leader', () => {
  const c = cluster();
  const n = c.get('a').node;
  const before = fingerprint(n);
  const term = n.status().hardState.term;
  for (const type of MESSAGE_TYPES) {
    if (type === 'MsgVote' || type === 'MsgPreVote' || type === 'MsgApp' || type === 'MsgSnap' || type === 'MsgHeartbeat' || type === 'MsgTimeoutNow') continue;
    n.step(msg({ type, to: 'a', from: 'stranger', term, index: 99, commit: 99, context: bytes('ctx') }));
  }
  const st = n.status();
  assert.equal(fingerprint(n), before);
  assert.deepEqual(Object.keys(st.progress!), ['a', 'b', 'c']);
  // its proposals are still accepted, as forwarded proposals (etcd does the same)
  n.step(msg({ type: 'MsgProp', to: 'a', from: 'stranger', entries: [{ term: 0, index: 0, type: 'Normal', data: bytes('p') }] }));
  c.stabilize();
  assert.deepEqual(c.appliedData('b'), ['one', 'two', 'p']);
});

test('a leader within its CheckQuorum lease ignores higher-term votes from anyone (thesis §6.2)', () => {
  const c = cluster();
  const n = c.get('a').node;
  const before = fingerprint(n);
  n.step(msg({ type: 'MsgVote', to: 'a', from: 'stranger', term: 99, index: 99, logTerm: 99 }));
  n.step(msg({ type: 'MsgPreVote', to: 'a', from: 'b', term: 99, index: 99, logTerm: 99 }));
  assert.equal(fingerprint(n), before);
  assert.equal(n.hasReady(), false, 'not even an answer');
});

test('malformed messages are ignored', () => {
  const c = cluster();
  const n = c.get('b').node;
  const term = n.status().hardState.term;
  const before = fingerprint(n);
  const bad: unknown[] = [
    null,
    42,
    { type: 'MsgApp' },
    msg({ type: 'MsgApp', to: 'b', from: 'a', term, index: 5, logTerm: 1, entries: [{ term: 1, index: 9, type: 'Normal', data: new Uint8Array(0) }] }),
    msg({ type: 'MsgApp', to: 'b', from: 'a', term, index: 5, logTerm: 1, entries: [{ term: term + 1, index: 6, type: 'Normal', data: new Uint8Array(0) }] }),
    msg({ type: 'MsgApp', to: 'b', from: 'a', term, index: 5, logTerm: 2, entries: [{ term: 1, index: 6, type: 'Normal', data: new Uint8Array(0) }] }),
    msg({ type: 'MsgApp', to: 'b', from: 'a', term, index: 5, logTerm: 1, entries: [{ term: 1, index: 6, type: 'Weird' as 'Normal', data: new Uint8Array(0) }] }),
    msg({ type: 'MsgApp', to: 'b', from: 'a', term, index: 5, logTerm: 1, entries: [{ term: 1, index: 6, type: 'Normal', data: 'x' as unknown as Uint8Array }] }),
    msg({ type: 'MsgApp', to: 'b', from: 'a', term: -1 }),
    msg({ type: 'MsgApp', to: 'b', from: 'a', term: 1.5 }),
    msg({ type: 'MsgApp', to: 'b', from: 'a', term, index: Number.NaN }),
    msg({ type: 'MsgApp', to: 'b', from: 'a', term, entries: 'no' as unknown as Entry[] }),
    msg({ type: 'MsgSnap', to: 'b', from: 'a', term }),
    msg({ type: 'MsgSnap', to: 'b', from: 'a', term, snapshot: { data: new Uint8Array(0) } as Snapshot }),
    msg({ type: 'MsgSnap', to: 'b', from: 'a', term, snapshot: { data: new Uint8Array(0), metadata: { index: 99, term: term + 5, confState: { voters: ['b'], learners: [] } } } }),
    msg({ type: 'MsgReadIndex', to: 'b', from: 'a', term }),
    msg({ type: 'MsgProp', to: 'b', from: 'a', term: 0 }),
    msg({ type: 'MsgHeartbeat', to: 'b', from: 'a', term, context: 'ctx' as unknown as Uint8Array }),
  ];
  for (const m of bad) n.step(m as Message);
  assert.equal(fingerprint(n), before);
  assert.equal(n.hasReady(), false);
});

test('a MsgSnap whose snapshot has a null metadata, a null conf state or no data is ignored, without a TypeError', () => {
  const c = cluster();
  const n = c.get('b').node;
  const term = n.status().hardState.term;
  const before = fingerprint(n);
  const cs = { voters: ['a', 'b', 'c'], learners: [] };
  const bad = [
    { data: new Uint8Array(0), metadata: null },
    { data: new Uint8Array(0), metadata: 7 },
    { data: new Uint8Array(0), metadata: { index: 50, term, confState: null } },
    { data: new Uint8Array(0), metadata: { index: 50, term, confState: 'voters' } },
    { metadata: { index: 50, term, confState: cs } },
    { data: 'state', metadata: { index: 50, term, confState: cs } },
    // every entry, and so every snapshot of a non-empty log, has a term
    { data: new Uint8Array(0), metadata: { index: 50, term: 0, confState: cs } },
  ];
  for (const snapshot of bad) {
    assert.doesNotThrow(() => n.step(msg({ type: 'MsgSnap', to: 'b', from: 'a', term, snapshot: snapshot as unknown as Snapshot })), JSON.stringify(snapshot));
  }
  assert.equal(fingerprint(n), before);
  assert.equal(n.hasReady(), false);
});

test('a heartbeat with a commit beyond the follower log does not move its commit', () => {
  const c = cluster();
  const n = c.get('b').node;
  const st = n.status();
  n.step(msg({ type: 'MsgHeartbeat', to: 'b', from: 'a', term: st.hardState.term, commit: 1000 }));
  assert.equal(n.status().hardState.commit, st.hardState.commit);
});

const messageArb = (ids: string[], maxTerm: number, maxIndex: number): fc.Arbitrary<Message> =>
  fc
    .record({
      type: fc.constantFrom(...MESSAGE_TYPES),
      to: fc.constantFrom(...ids, 'x'),
      from: fc.constantFrom(...ids, 'x', ''),
      term: fc.integer({ min: 0, max: maxTerm }),
      logTerm: fc.integer({ min: 0, max: maxTerm }),
      index: fc.integer({ min: 0, max: maxIndex }),
      commit: fc.integer({ min: 0, max: maxIndex + 3 }),
      reject: fc.boolean(),
      rejectHint: fc.integer({ min: 0, max: maxIndex }),
      nEntries: fc.integer({ min: 0, max: 3 }),
      entryTermBump: fc.array(fc.integer({ min: 0, max: 1 }), { minLength: 3, maxLength: 3 }),
      withSnapshot: fc.boolean(),
      snapIndex: fc.integer({ min: 0, max: maxIndex + 5 }),
      snapVoters: fc.subarray(ids),
      context: fc.option(fc.uint8Array({ minLength: 0, maxLength: 4 }), { nil: undefined }),
    })
    .map((r) => {
      const entries: Entry[] = [];
      let t = Math.min(r.logTerm, r.term);
      for (let i = 0; i < r.nEntries; i++) {
        t = Math.min(r.term, t + r.entryTermBump[i]!);
        entries.push({ term: t, index: r.index + 1 + i, type: i === 2 ? 'ConfChange' : 'Normal', data: new Uint8Array([i]) });
      }
      const m: Message = {
        type: r.type,
        to: r.to,
        from: r.from,
        term: r.term,
        logTerm: r.logTerm,
        index: r.index,
        entries,
        commit: r.commit,
        reject: r.reject,
        rejectHint: r.rejectHint,
      };
      if (r.withSnapshot) m.snapshot = { data: new Uint8Array(0), metadata: { index: r.snapIndex, term: Math.min(r.term, r.logTerm), confState: { voters: r.snapVoters, learners: [] } } };
      if (r.context !== undefined) m.context = r.context;
      return m;
    });

/** Persists and applies one Ready of a member, without delivering its messages. */
function drain(m: Member): void {
  for (let i = 0; i < 5 && m.node.hasReady(); i++) {
    const rd = m.node.ready();
    if (rd.snapshot !== undefined) m.storage.applySnapshot(rd.snapshot);
    m.storage.append(rd.entries);
    if (rd.hardState !== undefined) m.storage.setHardState(rd.hardState);
    m.node.advance();
  }
}

test('step() never throws on random messages, and the node keeps its invariants (property)', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.constantFrom('a', 'b'), messageArb(['a', 'b', 'c'], 6, 12)), { minLength: 1, maxLength: 60 }), (steps) => {
      const c = cluster();
      for (const [target, m] of steps) {
        const member = c.get(target);
        member.node.step({ ...m, to: m.to === 'x' ? 'x' : target });
        drain(member);
        const st = member.node.status();
        assert.ok(st.applied <= st.hardState.commit, 'applied <= commit');
        assert.ok(st.hardState.commit <= Math.max(member.storage.lastIndex(), member.storage.snapshot().metadata.index), 'commit <= last index');
        if (st.softState.raftState === 'leader') assert.equal(st.softState.lead, target);
      }
    }),
    { numRuns: 150, seed, path, endOnFailure: true },
  );
});

/** Values a check must name without converting them: `String` throws on the first, `${}` on the second, and both run the third's own code. */
function oddValues(): [string, unknown][] {
  return [
    ['an object without a prototype', Object.create(null)],
    ['a Symbol', Symbol('s')],
    ['an object whose toString throws', { toString: () => { throw new Error('toString ran'); }, valueOf: () => { throw new Error('valueOf ran'); } }],
  ];
}

test('RawNode, its configuration and MemoryStorage refuse a malformed value of any kind with their typed error, and step() ignores a message addressed to one', () => {
  // before: the check's message was made with String(value), which threw a
  // TypeError on an object without a prototype and ran the caller's toString
  const logged: string[] = [];
  const logger = { debug: (m: string) => logged.push(m), info: () => undefined, warn: () => undefined, error: () => undefined };
  for (const [what, v] of oddValues()) {
    for (const option of ['electionTick', 'heartbeatTick', 'maxSizePerMsg', 'maxCommittedSizePerReady', 'maxUncommittedEntriesSize', 'maxInflightMsgs', 'readOnlyOption']) {
      assert.throws(() => new RawNode({ id: 'a', storage: new MemoryStorage(), [option]: v }), { code: 'QUORUMKV_INVALID_CONFIG' }, `${option} ${what}`);
    }
    const n = new RawNode({ id: 'a', storage: new MemoryStorage(), logger });
    n.bootstrap(['a', 'b']);
    const before = fingerprint(n);
    assert.throws(() => n.proposeConfChange({ type: v as 'AddNode', nodeId: 'c' }), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `proposeConfChange type ${what}`);
    assert.throws(() => n.applyConfChange({ type: v as 'AddNode', nodeId: 'c' }), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `applyConfChange type ${what}`);
    assert.throws(() => n.reportSnapshot('b', v as 'finish'), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `reportSnapshot status ${what}`);
    // step() never throws for message content, with or without a logger
    for (const field of ['to', 'from'] as const) {
      assert.doesNotThrow(() => n.step(msg({ type: 'MsgHeartbeat', to: 'a', from: 'b', term: 1, [field]: v })), `step with ${field} ${what}`);
    }
    assert.equal(fingerprint(n), before);
    const s = new MemoryStorage();
    s.append([{ index: 1, term: 1, type: 'Normal', data: new Uint8Array(0) }]);
    assert.throws(() => s.entries(v as number, 2), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `entries lo ${what}`);
    assert.throws(() => s.entries(1, v as number), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `entries hi ${what}`);
    assert.throws(() => s.term(v as number), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `term ${what}`);
    assert.throws(() => s.compact(v as number), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `compact ${what}`);
    assert.throws(() => s.createSnapshot(v as number, undefined, new Uint8Array(0)), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `createSnapshot ${what}`);
    assert.throws(
      () => s.applySnapshot({ data: new Uint8Array(0), metadata: { index: v as number, term: 1, confState: { voters: ['a'], learners: [] } } }),
      { code: 'QUORUMKV_INVALID_ARGUMENT' },
      `applySnapshot index ${what}`,
    );
    assert.equal(s.lastIndex(), 1);
  }
  assert.ok(logged.some((m) => m.includes('ignored MsgHeartbeat from an object')), 'the ignored message is logged, naming its sender');
});

test('RawNode refuses proposal data, a read index context or a conf change context that is a Proxy of a Uint8Array or a detached view, and appends nothing', () => {
  // before: such data passed instanceof Uint8Array and was appended; reading
  // its size then threw a TypeError
  const proxied = (): Uint8Array => new Proxy(bytes('x'), {});
  const detached = (): Uint8Array => {
    const u = bytes('x');
    structuredClone(u.buffer, { transfer: [u.buffer as ArrayBuffer] });
    return u;
  };
  const c = cluster();
  const n = c.get('a').node;
  const before = fingerprint(n);
  const last = c.get('a').storage.lastIndex();
  for (const [what, make] of [['a Proxy of a Uint8Array', proxied], ['a detached view', detached]] as const) {
    assert.throws(() => n.propose(make()), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `propose ${what}`);
    assert.throws(() => n.proposeBatch([bytes('y'), make()]), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `proposeBatch ${what}`);
    assert.throws(() => n.readIndex(make()), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `readIndex ${what}`);
    assert.throws(() => n.proposeConfChange({ type: 'AddLearnerNode', nodeId: 'd', context: make() }), { code: 'QUORUMKV_INVALID_ARGUMENT' }, `proposeConfChange context ${what}`);
  }
  assert.equal(n.hasReady(), false, 'nothing to persist or send');
  c.stabilize();
  assert.equal(fingerprint(n), before);
  assert.equal(c.get('a').storage.lastIndex(), last);
});

test('MemoryStorage.applySnapshot refuses a snapshot without a membership or with a term that is not an index, and changes nothing', () => {
  // before: a snapshot without confState threw a TypeError after it had already replaced the snapshot
  const s = new MemoryStorage();
  s.append([{ index: 1, term: 1, type: 'Normal', data: new Uint8Array(0) }]);
  const bad: unknown[] = [
    { index: 5, term: 1 },
    { index: 5, term: 1, confState: null },
    { index: 5, term: 1, confState: { voters: 'a', learners: [] } },
    { index: 5, term: 1, confState: { voters: [1], learners: [] } },
    { index: 5, term: Number.NaN, confState: { voters: ['a'], learners: [] } },
    { index: 5, term: -1, confState: { voters: ['a'], learners: [] } },
  ];
  for (const metadata of bad) {
    assert.throws(() => s.applySnapshot({ data: new Uint8Array(0), metadata } as never), { code: 'QUORUMKV_INVALID_ARGUMENT' }, JSON.stringify(metadata));
    assert.equal(s.firstIndex(), 1);
    assert.equal(s.lastIndex(), 1);
    assert.equal(s.snapshot().metadata.index, 0);
  }
  s.applySnapshot({ data: new Uint8Array(0), metadata: { index: 5, term: 1, confState: { voters: ['a'], learners: [] } } });
  assert.equal(s.snapshot().metadata.index, 5);
});
