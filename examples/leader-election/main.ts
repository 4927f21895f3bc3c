// Leader election among three processes over TcpTransport.
//
//   npm run example:leader-election
//
// Three processes each embed a KvNode (TCP on 127.0.0.1, classic-level in a
// temporary directory) and campaign in the election "jobs/leader". The
// winner does the work; the others wait. The leader process is then killed
// with SIGKILL: its session's lease expires, and one of the others takes
// over with a higher term (the leader key's createRevision, a fencing token).
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../lib/local-cluster.js';

type Msg = { kind: 'elected'; id: string; term: number } | { kind: 'ready'; id: string };

const ids = ['a', 'b', 'c'];
const root = mkdtempSync(join(tmpdir(), 'quorumkv-election-'));
const members: Record<string, string> = {};
for (const id of ids) members[id] = `127.0.0.1:${await freePort()}`;
const candidate = join(fileURLToPath(new URL('.', import.meta.url)), 'candidate.ts');

const elected: Msg[] = [];
let onElected: ((m: Msg & { kind: 'elected' }) => void) | undefined;
const children = ids.map((id) => {
  const child = fork(candidate, [id, JSON.stringify(members), join(root, id)], { execArgv: ['--import', 'tsx'] });
  child.on('message', (m: Msg) => {
    if (m.kind === 'elected') {
      elected.push(m);
      console.log(`process ${m.id} (pid ${child.pid}) is the leader, term ${m.term}`);
      onElected?.(m);
    }
  });
  return { id, child };
});

const nextLeader = () => new Promise<Msg & { kind: 'elected' }>((resolve) => (onElected = resolve));
try {
  const first = await nextLeader();
  await new Promise((r) => setTimeout(r, 1_000));
  const victim = children.find((c) => c.id === first.id)!;
  console.log(`killing the leader process ${victim.id} with SIGKILL`);
  const killedAt = Date.now();
  victim.child.kill('SIGKILL');
  const second = await nextLeader();
  console.log(`process ${second.id} took over ${Date.now() - killedAt} ms later, term ${second.term} > ${first.term}`);
  if (second.id === first.id || second.term <= first.term) throw new Error('the election did not move forward');
  console.log('leader election example: OK');
} finally {
  for (const c of children) c.child.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 200));
  rmSync(root, { recursive: true, force: true });
}
