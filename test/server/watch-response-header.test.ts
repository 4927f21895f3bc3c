// A member's watch responses carry the whole response header, as etcd's
// (v3rpc/watch.go sendLoop: `wr.Header = sws.newResponseHeader(rev)`):
// clusterId, the memberId of the member the watch is on, revision, and
// raftTerm, that member's term when the response is made. Events, progress
// notifications and cancellations (a compacted start revision, the member
// closing) alike; on a follower too, and in the new term after a leader
// change. In-process cluster on a virtual clock; deterministic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { WatchResponse } from '../../src/mvccpb/index.js';
import type { KvNode } from '../../src/server/index.js';
import { KvCluster } from './helpers.js';

const IDS = ['a', 'b', 'c'];

function collect(node: KvNode, key: string, opts: { startRevision?: number } = {}): WatchResponse[] {
  const got: WatchResponse[] = [];
  node.watch(key, opts).on('response', (r) => got.push(r));
  return got;
}

function assertHeader(res: WatchResponse | undefined, node: KvNode, revision: number, raftTerm: number, what: string): void {
  assert.ok(res !== undefined, `${what}: a response`);
  assert.deepEqual(res.header, { revision, clusterId: 'hdr-cluster', memberId: node.id, raftTerm }, what);
}

test("a member's watch responses (events, progress, compaction and close cancellations) carry clusterId, memberId, revision and raftTerm, the term when they are made", async () => {
  const c = new KvCluster(IDS, 11);
  c.extra = () => ({ clusterId: 'hdr-cluster' });
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const f = c.followers()[0]!;
    const other = c.followers()[1]!;
    const onLeader = collect(leader, 'k');
    const onFollower = collect(f, 'k');
    const term1 = leader.raft.term;
    const put1 = await c.run(leader.put('k', 'v1'));
    await c.waitFor(() => onLeader.length === 1 && onFollower.length === 1, 2_000, 'the event responses');
    assertHeader(onLeader[0], leader, put1.header.revision, term1, 'event on the leader');
    assertHeader(onFollower[0], f, put1.header.revision, term1, 'event on a follower');
    f.requestProgress();
    await c.waitFor(() => onFollower.length === 2, 2_000, 'the progress notification');
    assert.equal(onFollower[1]!.events.length, 0);
    assertHeader(onFollower[1], f, put1.header.revision, term1, 'progress notification on a follower');

    // leadership moves: the responses made afterwards carry the new term
    await c.run(leader.moveLeader(other.id));
    await c.waitFor(() => other.raft.isLeader && f.raft.term === other.raft.term, 5_000, 'the new leader known');
    const term2 = other.raft.term;
    assert.ok(term2 > term1, `a new term (${term2} after ${term1})`);
    const put2 = await c.run(other.put('k', 'v2'));
    await c.waitFor(() => onFollower.length === 3, 2_000, 'the event response in the new term');
    assert.equal(onFollower[2]!.events.length, 1);
    assertHeader(onFollower[2], f, put2.header.revision, term2, 'event on a follower in the new term');
    f.requestProgress();
    await c.waitFor(() => onFollower.length === 4, 2_000, 'the progress notification in the new term');
    assertHeader(onFollower[3], f, put2.header.revision, term2, 'progress notification in the new term');

    // a watch from a compacted revision: created, then cancelled
    const put3 = await c.run(other.put('k', 'v3'));
    await c.run(other.compact(put3.header.revision, { physical: true }));
    await c.waitFor(() => f.status().compactRevision === put3.header.revision, 2_000, 'the compaction applied on the follower');
    const compacted = collect(f, 'k', { startRevision: 1 });
    await c.waitFor(() => compacted.length === 1, 2_000, 'the compaction cancellation');
    assert.equal(compacted[0]!.canceled, true);
    assert.equal(compacted[0]!.compactRevision, put3.header.revision);
    assertHeader(compacted[0], f, put3.header.revision, term2, 'compaction cancellation on a follower');

    // the member closes: its watches end with a cancellation that has the whole header too
    await c.waitFor(() => onFollower.length === 5, 2_000, 'the last event response');
    await c.stop(f.id);
    await c.waitFor(() => onFollower.length === 6, 2_000, 'the close cancellation');
    assert.equal(onFollower[5]!.canceled, true);
    assertHeader(onFollower[5], f, put3.header.revision, term2, 'close cancellation');
  } finally {
    await c.closeAll();
  }
});

test("a removed member's watches end with a cancellation that carries the whole header", async () => {
  const c = new KvCluster(IDS, 12);
  c.extra = () => ({ clusterId: 'hdr-cluster' });
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const f = c.followers()[0]!;
    const put = await c.run(leader.put('k', 'v'));
    await c.waitFor(() => f.status().revision === put.header.revision, 2_000, 'the follower caught up');
    const got = collect(f, 'k');
    await c.run(leader.removeMember(f.id));
    await c.waitFor(() => got.length === 1, 5_000, 'the removal cancellation');
    assert.equal(got[0]!.canceled, true);
    assert.match(got[0]!.cancelReason, /permanently removed/);
    assertHeader(got[0], f, put.header.revision, f.raft.term, 'removal cancellation');
  } finally {
    await c.closeAll();
  }
});
