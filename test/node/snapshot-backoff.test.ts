// A follower whose snapshot sends fail (refused as larger than its
// maxSnapshotBytes, a broken stream) gets the next one only after a
// back-off, whether the state machine makes snapshots on demand or keeps
// them in memory; it catches up once a send goes through.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from '../../src/raftpb/index.js';
import { MemoryTransport } from '../../src/transport/memory-transport.js';
import { TestCluster, cmd } from './helpers.js';

const IDS = ['a', 'b', 'c'];

for (const synced of [false, true]) {
  test(`a follower refusing its snapshots gets fewer and fewer of them, and catches up once it takes one (${synced ? 'on-demand snapshots' : 'snapshots with the state'})`, async () => {
    const c = new TestCluster({ seed: 5, snapshotEntries: 20, snapshotCatchUpEntries: 5, syncedStateMachines: synced });
    let refusing = '';
    /** Virtual time of each MsgSnap sent to the refusing follower. */
    const sent: number[] = [];
    // its sends fail 10 ms after they start, as a refusal by its maxSnapshotBytes would
    const send = MemoryTransport.prototype.send;
    MemoryTransport.prototype.send = function (this: MemoryTransport, msgs: Message[]) {
      const rest: Message[] = [];
      for (const m of msgs) {
        if (m.type !== 'MsgSnap' || m.to !== refusing) rest.push(m);
        else {
          sent.push(c.clock.now());
          c.clock.setTimeout(() => this.reportSnapshot(m.to, 'failure'), 10);
        }
      }
      send.call(this, rest);
    };
    try {
      await c.startAll(IDS);
      const leader = await c.waitLeader();
      refusing = IDS.find((id) => id !== leader.id)!;
      await c.stop(refusing);
      for (let i = 0; i < 60; i++) await c.run(leader.node.propose(cmd(`k${i}`, `v${i}`)));
      const back = await c.start(refusing, undefined, IDS);
      await c.waitFor(() => sent.length > 0, 5_000, 'a first snapshot');
      const first = sent[0]!;
      await c.waitFor(() => c.clock.now() - first >= 3_000, 5_000, '3 s');
      // a heartbeat response every 10 ms: about 150 sends without a back-off; with it (100 ms, 200, 400, 800, 1600) at most 6
      const within = sent.filter((t) => t - first < 3_000).length;
      assert.ok(within <= 6, `snapshots sent in 3 s: ${within}`);
      assert.ok(back.sm.kv.size < 60, 'the follower has not caught up');
      refusing = '';
      await c.waitFor(() => back.sm.kv.size === 60, 10_000, 'the follower catches up');
    } finally {
      MemoryTransport.prototype.send = send;
      await c.closeAll();
    }
  });
}
