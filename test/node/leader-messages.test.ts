// What a leader sends and when a follower applies, under one proposal at a
// time: a MsgApp that only carries a new commit index is held to the end of
// the turn and dropped when a MsgApp with entries for the same follower
// follows (it tells the follower the same commit); a follower applies the
// committed entries it already has while it saves the next ones, but not
// the entries that save writes, even where its saved log has an older
// entry at the same index.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LevelLogStorage, LogStorage, LogStorageSaveOptions, LogStorageUpdate } from '../../src/storage/index.js';
import { message, type Entry, type Message, type Snapshot } from '../../src/raftpb/index.js';
import { RaftNode, wrapSnapshot, type StateMachine } from '../../src/node/index.js';
import type { Transport } from '../../src/transport/transport.js';
import { TestCluster, cmd, type Member } from './helpers.js';

interface Sent {
  to: string;
  index: number;
  entries: number[];
  commit: number;
}

/** Records the MsgApps member `m` hands to its transport. */
function spyMsgApps(m: Member): Sent[] {
  const sent: Sent[] = [];
  const transport = (m.node as unknown as { transport: { send(msgs: Message[]): void } }).transport;
  const send = transport.send.bind(transport);
  transport.send = (msgs: Message[]) => {
    for (const x of msgs) {
      if (x.type === 'MsgApp') sent.push({ to: x.to, index: x.index, entries: x.entries.map((e) => e.index), commit: x.commit });
    }
    send(msgs);
  };
  return sent;
}

test('a commit-only MsgApp is dropped when a MsgApp with entries for the same follower follows in the same turn, and sent at the end of the turn otherwise', async () => {
  const c = new TestCluster({ seed: 7 });
  try {
    await c.startAll(['a', 'b', 'c']);
    const leader = await c.waitLeader();
    const followers = ['a', 'b', 'c'].filter((id) => id !== leader.id);
    await c.run(leader.node.propose(cmd('k', '0')));
    const sent = spyMsgApps(leader);

    // p2 commits; its proposer proposes p3 at once, in the same turn
    let p3: Promise<number> | undefined;
    const i2 = await c.run(
      leader.node.propose(cmd('k', '2')).then((i) => {
        p3 = leader.node.propose(cmd('k', '3'));
        return i;
      }),
    );
    const i3 = await c.run(p3!);
    for (const f of followers) {
      const toF = sent.filter((s) => s.to === f);
      assert.deepEqual(
        toF.filter((s) => s.entries.length === 0 && s.commit === i2),
        [],
        `no commit-only MsgApp for ${i2} to ${f}: ${JSON.stringify(toF)}`,
      );
      const carrier = toF.find((s) => s.entries.includes(i3));
      assert.ok(carrier !== undefined && carrier.commit >= i2, `the MsgApp with ${i3} to ${f} carries the commit ${i2}: ${JSON.stringify(toF)}`);
    }

    // nothing follows p3: its commit goes out alone, and the followers apply it
    await c.waitFor(() => followers.every((f) => c.members.get(f)!.node.status().applied >= i3), 1_000, 'the followers apply p3');
    for (const f of followers) {
      assert.ok(
        sent.some((s) => s.to === f && s.entries.length === 0 && s.commit === i3),
        `a commit-only MsgApp for ${i3} went to ${f}: ${JSON.stringify(sent.filter((s) => s.to === f))}`,
      );
    }
  } finally {
    await c.closeAll();
  }
});

test('a follower applies committed entries it already has while the save of the next entries runs', async () => {
  const c = new TestCluster({ seed: 8 });
  try {
    await c.startAll(['a', 'b', 'c']);
    const leader = await c.waitLeader();
    const [fid] = ['a', 'b', 'c'].filter((id) => id !== leader.id) as [string];
    const f = c.members.get(fid)!;
    await c.run(leader.node.propose(cmd('k', '0')));

    // gate the follower's saves that carry entries, once armed
    let armed = false;
    let gated: { entries: number[]; release: () => void } | undefined;
    const storage = (f.node as unknown as { storage: LevelLogStorage }).storage;
    const save = storage.save.bind(storage);
    storage.save = async (update: LogStorageUpdate, opts: LogStorageSaveOptions) => {
      if (armed && update.entries !== undefined && update.entries.length > 0) {
        armed = false;
        await new Promise<void>((release) => {
          gated = { entries: update.entries!.map((e) => e.index), release };
        });
      }
      return save(update, opts);
    };

    // p2 is saved by the follower; p3, proposed as p2 commits, brings p2's commit with it
    let p3: Promise<number> | undefined;
    const i2 = await c.run(
      leader.node.propose(cmd('k', '2')).then((i) => {
        armed = true;
        p3 = leader.node.propose(cmd('k', '3'));
        return i;
      }),
    );
    await c.waitFor(() => gated !== undefined, 1_000, "the follower's save of p3");
    assert.ok(gated!.entries.includes(i2 + 1), `the gated save holds p3: ${JSON.stringify(gated!.entries)}`);
    await c.waitFor(() => f.node.status().applied >= i2, 1_000, 'the follower applies p2 while its save of p3 is held');
    assert.ok(f.node.status().applied < i2 + 1, 'p3 is not applied before it is saved');
    gated!.release();
    const i3 = await c.run(p3!);
    await c.waitFor(() => f.node.status().applied >= i3, 1_000, 'the follower applies p3 once saved');
    assert.deepEqual(
      f.sm.applyLog.map((line) => line.split(' ')[1]),
      ['k=0', 'k=2', 'k=3'],
    );
  } finally {
    await c.closeAll();
  }
});

test('a follower replacing a conflicting tail applies the new entries only once they are saved, and snapshots them with their term', async () => {
  const entry = (index: number, term: number): Entry => ({ index, term, type: 'Normal', data: new Uint8Array(0) });
  const base: Snapshot = { data: wrapSnapshot({ addresses: {}, data: new Uint8Array([1]) }), metadata: { index: 5, term: 1, confState: { voters: ['a', 'b', 'c'], learners: [] } } };
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let saving = false;
  // saved: 6..10 from term 2, never committed (a deposed leader's tail)
  const storage = {
    status: 'open',
    load: async () => ({ hardState: { term: 2, vote: 'a', commit: 5 }, snapshot: base, entries: [6, 7, 8, 9, 10].map((i) => entry(i, 2)) }),
    save: async (u: LogStorageUpdate) => {
      if (u.entries !== undefined && u.entries.length > 0) {
        saving = true;
        await gate;
        saving = false;
      }
    },
    compact: async () => {},
    close: async () => {},
  } as unknown as LogStorage;
  let receive!: (m: Message) => void;
  const transport = {
    id: 'a',
    start: async (h: { receive(m: Message): void }) => {
      receive = (m) => h.receive(m);
    },
    send: () => {},
    addPeer: () => {},
    removePeer: () => {},
    close: async () => {},
  } as unknown as Transport;
  const applied: string[] = [];
  let appliedDuringSave = 0;
  let smIndex = 5;
  const sm: StateMachine<undefined> = {
    appliedIndex: () => smIndex,
    apply: (es) => {
      for (const e of es) {
        applied.push(`${e.index}/${e.term}`);
        if (saving) appliedDuringSave++;
        smIndex = e.index;
      }
      return es.map(() => undefined);
    },
    snapshot: () => new Uint8Array([2]),
    restore: (snap) => {
      smIndex = snap.index;
    },
  };
  const node = await RaftNode.create<undefined>({ id: 'a', storage, transport, stateMachine: sm, tickMs: 1e6, snapshotEntries: 3, snapshotCatchUpEntries: 1 });
  try {
    await new Promise((r) => setImmediate(r));
    // the leader of term 3 replaces 6..10 and commits up to 12
    receive(message({ type: 'MsgApp', from: 'b', to: 'a', term: 3, index: 5, logTerm: 1, entries: [6, 7, 8, 9, 10, 11, 12].map((i) => entry(i, 3)), commit: 12 }));
    for (let i = 0; i < 20 && !saving; i++) await new Promise((r) => setImmediate(r));
    assert.ok(saving, 'the save of the new entries is running');
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    assert.deepEqual(applied, [], 'nothing applied while the entries that replace the old tail are being saved');
    release();
    for (let i = 0; i < 50 && applied.length < 7; i++) await new Promise((r) => setImmediate(r));
    assert.deepEqual(applied, ['6/3', '7/3', '8/3', '9/3', '10/3', '11/3', '12/3']);
    assert.equal(appliedDuringSave, 0);
    for (let i = 0; i < 50 && node.status().snapshotIndex < 12; i++) await new Promise((r) => setImmediate(r));
    const snap = (node as unknown as { mem: { baseSnapshot(): Snapshot } }).mem.baseSnapshot();
    assert.deepEqual([snap.metadata.index, snap.metadata.term], [12, 3], 'the snapshot names the new term');
  } finally {
    release();
    await node.close();
  }
});
