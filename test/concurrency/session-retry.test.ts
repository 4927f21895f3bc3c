// Session keep-alive retries: a keep-alive that is not confirmed is sent
// again soon (etcd's client resends every 500 ms while a keep-alive is
// overdue), not only one interval later. Deterministic (no seed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { session, startCluster } from './helpers.js';

test('a session whose member is cut off across two keep-alive times survives when healed with time left in its TTL', async () => {
  const c = await startCluster(31);
  try {
    const f = c.followers()[0]!;
    const s = await session(c, f, { ttl: 3 });
    await c.run(f.put('held', 'x', { lease: s.lease }));
    let confirmed = -1;
    s.on('keepAlive', () => (confirmed = c.clock.now()));
    // wait for a keep-alive to be confirmed, then cut the member off just before the next two are sent
    await c.waitFor(() => confirmed >= 0, 5_000, 'a keep-alive');
    const deadline = s.expiresAt;
    c.net.isolate(f.id);
    await c.clock.advanceAsync(deadline - 900 - c.clock.now());
    c.net.heal();
    const healedAt = c.clock.now();
    await c.clock.advanceAsync(5_000);
    assert.equal(s.isLost, false, `lost (${s.error?.reason}) at ${s.error?.at} ms; healed at ${healedAt} ms, deadline was ${deadline} ms`);
    await c.run(s.close());
  } finally {
    await c.closeAll();
  }
});
