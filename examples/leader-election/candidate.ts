// One process of the leader-election example: a KvNode over TCP that
// campaigns, and does "the work" while it leads.
import { Election, KvNode, Session } from '../../src/index.js';

const [id, membersJson, dataDir] = process.argv.slice(2) as [string, string, string];
const node = await KvNode.open({ id, members: JSON.parse(membersJson) as Record<string, string>, dataDir, tickMs: 50 });
// a 2 s lease: if this process dies, the others take over about 2 s later
const session = await Session.create(node, { ttl: 2 });
const election = new Election(session, 'jobs/leader');
const leadership = await election.campaign(`process ${id} (pid ${process.pid})`);
process.send?.({ kind: 'elected', id, term: leadership.term });
session.on('lost', () => {
  // stop the work at once: another process may be leader now
  process.exit(1);
});
setInterval(() => {
  // the work, fenced by the term: a txn guarded by leadership.isLeader(); a
  // write that fails (no leader for a moment, a timeout) is tried again at
  // the next round
  node
    .txn({ compare: [leadership.isLeader()], success: [{ put: { key: 'jobs/last-run', value: `${id} ${Date.now()}` } }] })
    .catch((err: Error) => console.error(`${id}: the work's write failed (${err.message}); again in 200 ms`));
}, 200);
