// Regression test for a server behaviour below the recipes: KvNode's
// leaseKeepAlive once answered from the *proposing* member's own apply, so a
// follower reported "renewed, TTL n" from its local lessor even when the
// leader's lessor had refused the renewal because the lease had already
// expired there (the revoke followed at once). etcd answers keep-alives from
// the leader: an expired lease gets TTL 0 ("lease expired"). The keep-alive
// now goes through the log and the leader's lessor answers it, wherever it
// was proposed. The recipes' Session was not fooled (it ignores a
// confirmation that arrives after its local deadline, and its deadline is
// never later than the leader's expiry), but the KV contract was wrong.
// Deterministic (no seed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import { startCluster } from './helpers.js';

test('a keep-alive applied by the leader after the lease expired is not reported as a renewal by a follower', async () => {
  const c = await startCluster(21);
  try {
    const leader = c.leader()!;
    const [f, g] = c.followers();
    const grant = await c.run(f!.leaseGrant(1));
    const expiry = leader.store.lessor.lookup(grant.id)!.expiry;
    // acks to the leader take 80 ms: an entry appended just before the
    // expiry is committed (and applied by the leader) just after it
    c.net.setDelay({ minMs: 80, maxMs: 80 }, { from: f!.id, to: leader.id });
    c.net.setDelay({ minMs: 80, maxMs: 80 }, { from: g!.id, to: leader.id });
    await c.clock.advanceAsync(expiry - 100 - c.clock.now());
    let answer: { ttl: number } | undefined;
    let error: unknown;
    let answeredAt = -1;
    f!.leaseKeepAlive(grant.id).then(
      (r) => {
        answer = r;
        answeredAt = c.clock.now();
      },
      (e: unknown) => {
        error = e;
        answeredAt = c.clock.now();
      },
    );
    await c.waitFor(() => answeredAt >= 0, 5_000, 'the keep-alive answer');
    c.net.resetFaults();
    await c.clock.advanceAsync(500);
    // the leader did not renew the lease: it was revoked right after
    assert.equal(leader.store.lessor.lookup(grant.id), undefined, 'the leader expired and revoked the lease');
    // so the keep-alive must not have reported a renewal
    const refused = (answer !== undefined && answer.ttl <= 0) || isQuorumError(error, ErrorCode.LEASE_NOT_FOUND);
    assert.ok(
      refused,
      `keep-alive answered at ${answeredAt} ms (lease expired on the leader at ${expiry} ms) with ${JSON.stringify(answer ?? String(error))}`,
    );
  } finally {
    await c.closeAll();
  }
});
