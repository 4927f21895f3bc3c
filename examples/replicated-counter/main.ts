// Your own state machine, replicated by RaftNode (not the MVCC store).
//
//   npm run example:replicated-counter
//
// A bank of named counters: every member applies the same "add" commands in
// the same order, so every member ends with the same totals. Three RaftNodes
// talk over TcpTransport on 127.0.0.1 and persist their Raft logs with
// classic-level; the state machine itself lives in memory and is rebuilt
// from snapshots and the log after a restart (appliedIndex() returns 0).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  LevelLogStorage,
  RaftNode,
  TcpTransport,
  pack,
  unpack,
  type ApplyEntry,
  type StateMachine,
  type StateMachineSnapshot,
} from '../../src/index.js';
import { freePort } from '../lib/local-cluster.js';

/** The replicated state: counter name -> total. Deterministic: no clock, no randomness. */
class Counters implements StateMachine<number> {
  readonly totals = new Map<string, number>();
  private applied = 0;

  appliedIndex(): number {
    return this.applied;
  }

  apply(entries: ApplyEntry[]): number[] {
    return entries.map((e) => {
      this.applied = e.index;
      if (e.kind !== 'normal') return 0;
      const [name, delta] = unpack(e.data) as [string, number];
      const total = (this.totals.get(name) ?? 0) + delta;
      this.totals.set(name, total);
      return total; // what the proposer's promise resolves with
    });
  }

  snapshot(): Uint8Array {
    return pack([...this.totals]);
  }

  restore(s: StateMachineSnapshot): void {
    this.totals.clear();
    for (const [k, v] of unpack(s.data) as [string, number][]) this.totals.set(k, v);
    this.applied = s.index;
  }
}

const root = mkdtempSync(join(tmpdir(), 'quorumkv-counter-'));
const ids = ['a', 'b', 'c'];
const addresses: Record<string, string> = {};
for (const id of ids) addresses[id] = `127.0.0.1:${await freePort()}`;

const members = await Promise.all(
  ids.map(async (id) => {
    const [host, port] = addresses[id]!.split(':') as [string, string];
    const peers = Object.fromEntries(Object.entries(addresses).filter(([p]) => p !== id));
    const counters = new Counters();
    const node = await RaftNode.create<number>({
      id,
      peers: ids,
      storage: await LevelLogStorage.open({ dataDir: join(root, id) }),
      transport: new TcpTransport({ id, clusterId: 'counters', listen: { host, port: Number(port) }, peers }),
      stateMachine: counters,
      tickMs: 50,
    });
    return { id, node, counters };
  }),
);

try {
  // propose from every member: followers forward to the leader
  const adds: Promise<number>[] = [];
  for (let i = 0; i < 30; i++) {
    const m = members[i % 3]!;
    adds.push(m.node.propose(pack([i % 2 === 0 ? 'apples' : 'pears', 1])));
  }
  const results = await Promise.all(adds);
  console.log(`30 increments applied; the last results were ${results.slice(-4).join(', ')}`);
  // wait until every member has applied everything
  const target = Math.max(...members.map((m) => m.node.appliedIndex));
  while (members.some((m) => m.node.appliedIndex < target)) await new Promise((r) => setTimeout(r, 10));
  for (const m of members) console.log(`${m.id} (${m.node.status().role}):`, Object.fromEntries(m.counters.totals));
  const want = JSON.stringify([...members[0]!.counters.totals].sort());
  if (members.some((m) => JSON.stringify([...m.counters.totals].sort()) !== want)) throw new Error('members disagree');
  const totals = members[0]!.counters.totals;
  if (totals.get('apples') !== 15 || totals.get('pears') !== 15) throw new Error('lost or repeated an increment');
  console.log('replicated counter example: OK');
} finally {
  await Promise.all(members.map((m) => m.node.close()));
  rmSync(root, { recursive: true, force: true });
}
