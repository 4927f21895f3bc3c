// A keep-alive whose answer never reaches the member that sent it (the
// leader that renewed the lease lost its leadership, or the entries are
// covered by a snapshot the member installs) is sent again by that member,
// as etcd's client sends LeaseKeepAlive again to the new leader: it is
// answered with the TTL actually granted, not QUORUMKV_TIMEOUT after
// requestTimeoutMs. 3 members on a MemoryNetwork and a virtual clock;
// deterministic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KvCluster } from './helpers.js';

const IDS = ['a', 'b', 'c'];

/** Records how `p` settles: `ttl n`, or the error code, with the virtual time. */
function outcome(c: KvCluster, p: Promise<{ ttl: number }>): { value?: string; at?: number } {
  const o: { value?: string; at?: number } = {};
  p.then(
    (r) => {
      o.value = `ttl ${r.ttl}`;
      o.at = c.clock.now();
    },
    (e: Error) => {
      o.value = (e as { code?: string }).code ?? e.message;
      o.at = c.clock.now();
    },
  );
  return o;
}

test('a keep-alive committed but applied by its leader only after it stepped down, and by the next leader before it was elected, is answered by the next leader', async () => {
  const c = new KvCluster(IDS, 11);
  let release = (): void => undefined;
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const [b, other] = IDS.filter((id) => id !== leader.id).map((id) => c.node(id));
    const lease = await c.run(leader.leaseGrant(60));
    await c.waitFor(() => IDS.every((id) => c.node(id).store.lessor.lookup(lease.id) !== undefined), 2_000, 'every member applies the grant');
    // the leader stops applying (its log still takes and commits entries)
    const sm = (leader as unknown as { sm: { apply(entries: unknown[]): Promise<unknown> } }).sm;
    const apply = sm.apply.bind(sm);
    const gate = new Promise<void>((r) => (release = r));
    sm.apply = async (entries) => {
      await gate;
      return apply(entries);
    };
    const start = c.clock.now();
    const answer = outcome(c, other!.leaseKeepAlive(lease.id));
    // the keep-alive is committed, and applied by b and the sender (followers: nothing to answer)
    await c.waitFor(() => b!.raft.appliedIndex > leader.raft.appliedIndex && other!.raft.appliedIndex === b!.raft.appliedIndex, 2_000, 'the keep-alive applied by the followers');
    await c.run(leader.moveLeader(b!.id));
    // the old leader applies the keep-alive as a follower: nothing to answer either
    release();
    await c.waitFor(() => answer.value !== undefined, 5_000, 'the keep-alive answer');
    assert.equal(answer.value, 'ttl 60');
    assert.ok(answer.at! - start < 1_000, `answered ${answer.at! - start} ms after the call`);
    // b renewed the lease: it expires 60 s from about then on b's lessor
    const expiry = b!.store.lessor.lookup(lease.id)!.expiry;
    assert.ok(expiry >= answer.at! + 59_000, `lease expiry ${expiry} on b, answer at ${answer.at}`);
  } finally {
    release();
    await c.closeAll();
  }
});

test('a keep-alive whose renewal and answer are covered by a snapshot the sender installs is answered', async () => {
  const c = new KvCluster(IDS, 12);
  c.extra = () => ({ snapshotEntries: 10, snapshotCatchUpEntries: 0 });
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const [f, g] = IDS.filter((id) => id !== leader.id).map((id) => c.node(id));
    const lease = await c.run(leader.leaseGrant(60));
    await c.waitFor(() => f!.store.lessor.lookup(lease.id) !== undefined, 2_000, 'f applies the grant');
    // f hears nothing from the leader: its keep-alive reaches the leader, which renews and answers
    c.net.partitionOneWay(leader.id, f!.id);
    const start = c.clock.now();
    const before = leader.raft.appliedIndex;
    const answer = outcome(c, f!.leaseKeepAlive(lease.id));
    await c.waitFor(() => leader.raft.appliedIndex >= before + 2, 2_000, 'the keep-alive and its answer applied by the leader');
    // enough writes for a snapshot that leaves nothing of the log before them
    await c.run(Promise.all(Array.from({ length: 25 }, (_, i) => g!.put(`k${i}`, 'v'))));
    await c.waitFor(() => leader.raft.status().snapshotIndex > before + 2, 2_000, 'a snapshot past the keep-alive');
    const installed: number[] = [];
    f!.raft.on('snapshot', (index, source) => {
      if (source === 'leader') installed.push(index);
    });
    c.net.heal();
    await c.waitFor(() => answer.value !== undefined, 5_000, 'the keep-alive answer');
    assert.ok(installed.length > 0 && installed[0]! > before + 2, `f installed a snapshot past the keep-alive: ${installed.join(', ')}`);
    assert.equal(answer.value, 'ttl 60');
    assert.ok(answer.at! - start < 2_000, `answered ${answer.at! - start} ms after the call`);
  } finally {
    await c.closeAll();
  }
});
