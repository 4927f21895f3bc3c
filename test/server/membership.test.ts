// KvNode membership changes on an in-process cluster (MemoryNetwork,
// memory-level, virtual clock), against etcd 3.4's behaviour: a leader
// that removes itself, refused changes made on a follower, ids that exist
// already, learners. Deterministic: no seed to replay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import { KvCluster } from './helpers.js';

const IDS = ['a', 'b', 'c'];

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
    c.net.heal(); // only the messages that said the removal is committed were lost
    await done;
    await c.waitFor(() => f.raft.isLeader, 5_000, `${f.id} leads`);
    await c.run(f.put('k', 'w'));
    assert.deepEqual(f.members().voters, [f.id]);
  } finally {
    await c.closeAll();
  }
});
