// A mutex protecting a shared resource with fencing tokens.
//
//   npm run example:mutex
//
// Three workers (each on a different member of a local three-member
// cluster) append to a shared "storage service" under a Mutex. The storage
// service checks the fencing token of every write and refuses a token lower
// than one it has already seen. Worker 1 then stalls while holding the lock
// (as a long GC pause would) past its session's TTL: its lease goes, the
// lock passes to another worker, and when worker 1 wakes up its late write
// is refused by the fencing check instead of corrupting the resource.
import { Mutex, Session } from '../../src/index.js';
import { startLocalCluster } from '../lib/local-cluster.js';

/** The protected resource: it remembers the highest token it has accepted. */
class FencedStorage {
  highest = 0;
  readonly log: string[] = [];
  write(token: number, line: string): boolean {
    if (token < this.highest) {
      console.log(`  storage REFUSED "${line}" (token ${token} < ${this.highest})`);
      return false;
    }
    this.highest = token;
    this.log.push(line);
    return true;
  }
}

const cluster = await startLocalCluster();
const storage = new FencedStorage();
try {
  await cluster.leader();
  const sessions = await Promise.all(cluster.nodes.map((n) => Session.create(n, { ttl: 2 })));
  const mutexes = sessions.map((s) => new Mutex(s, 'locks/storage'));

  // normal operation: each worker takes the lock twice and writes
  await Promise.all(
    mutexes.map(async (m, w) => {
      for (let round = 0; round < 2; round++) {
        await m.withLock(async (lock) => {
          storage.write(lock.fencingToken, `worker ${w + 1} round ${round} (token ${lock.fencingToken})`);
          console.log(`worker ${w + 1} holds the lock, token ${lock.fencingToken}`);
        });
      }
    }),
  );

  // worker 1 takes the lock, then stalls past its TTL without renewing
  const stalled = await mutexes[0]!.lock();
  console.log(`worker 1 holds the lock (token ${stalled.fencingToken}) and stalls...`);
  // While worker 1 is paused its lease runs out and the cluster deletes its
  // lock key. To keep the example short the lease is revoked here, which has
  // the same effect as a pause longer than the TTL.
  await cluster.nodes[0]!.leaseRevoke(sessions[0]!.lease);
  const other = await mutexes[1]!.lock();
  console.log(`worker 2 took the lock with token ${other.fencingToken} while worker 1 was paused`);
  storage.write(other.fencingToken, `worker 2 after the pause (token ${other.fencingToken})`);
  // worker 1 wakes up and writes with its old token
  const accepted = storage.write(stalled.fencingToken, `worker 1 late write (token ${stalled.fencingToken})`);
  await mutexes[1]!.unlock();
  if (accepted) throw new Error('the fencing check did not stop the late write');
  console.log(`storage accepted ${storage.log.length} writes, refused the stale one`);
  for (const s of sessions.slice(1)) await s.close();
  console.log('mutex example: OK');
} finally {
  await cluster.close();
}
