// Throughput of the pure Raft core: a 3-node group of RawNodes wired in
// memory (MemoryStorage, no I/O, no encoding), replicating 256-byte
// proposals in batches of 64. Every Ready is handled as the contract says
// (persist to MemoryStorage, send, apply, advance); messages are delivered
// synchronously. Storage is compacted as it grows so memory stays bounded.
//
// Prints, per variant, messages stepped per second and proposals committed
// (applied on the leader) per second.
//
//   node --import tsx bench/raft-core.ts [seconds per variant, default 3]
import { performance } from 'node:perf_hooks';
import { MemoryStorage, RawNode, decodeConfChangeData, type Ready } from '../src/raft/index.js';
import type { Message } from '../src/raftpb/index.js';

const SECONDS = Number(process.argv[2] ?? 3);
const BATCH = 64;
const PAYLOAD = 256;
const IDS = ['a', 'b', 'c'];

interface Member {
  node: RawNode;
  storage: MemoryStorage;
  applied: number;
}

function setup(): Map<string, Member> {
  const members = new Map<string, Member>();
  for (const id of IDS) {
    const storage = new MemoryStorage();
    const node = new RawNode({ id, storage, electionTick: 10, heartbeatTick: 1 });
    node.bootstrap(IDS);
    members.set(id, { node, storage, applied: 0 });
  }
  return members;
}

class Pump {
  steps = 0;
  committed = 0;
  private queue: Message[] = [];
  constructor(private readonly members: Map<string, Member>, private readonly leader: string) {}

  private handle(id: string, m: Member, rd: Ready): void {
    if (rd.snapshot !== undefined) m.storage.applySnapshot(rd.snapshot);
    if (rd.entries.length > 0) m.storage.append(rd.entries);
    if (rd.hardState !== undefined) m.storage.setHardState(rd.hardState);
    for (const msg of rd.messages) this.queue.push(msg);
    for (const e of rd.committedEntries) {
      if (e.type === 'ConfChange') {
        const cc = decodeConfChangeData(e.data);
        if (cc !== undefined) m.node.applyConfChange(cc);
      } else if (id === this.leader && e.data.length > 0) {
        this.committed++;
      }
      m.applied = e.index;
    }
    m.node.advance();
  }

  /** Handles Readies and delivers messages until the group is quiet. */
  run(): void {
    for (;;) {
      let moved = false;
      for (const [id, m] of this.members) {
        if (m.node.hasReady()) {
          this.handle(id, m, m.node.ready());
          moved = true;
        }
      }
      if (this.queue.length > 0) {
        const q = this.queue;
        this.queue = [];
        for (const msg of q) this.members.get(msg.to)!.node.step(msg);
        this.steps += q.length;
        moved = true;
      }
      if (!moved) return;
    }
  }

  /** Keeps the in-memory logs short. */
  compact(): void {
    for (const m of this.members.values()) {
      if (m.applied - m.storage.firstIndex() > 20_000) {
        const at = m.applied - 1_000;
        m.storage.createSnapshot(at, undefined, new Uint8Array(0));
        m.storage.compact(at);
      }
    }
  }
}

function runVariant(name: string, propose: (leader: RawNode, payloads: Uint8Array[]) => void): void {
  const members = setup();
  const warm = new Pump(members, 'a');
  warm.run();
  members.get('a')!.node.campaign();
  warm.run();
  if (members.get('a')!.node.status().softState.raftState !== 'leader') throw new Error('no leader');
  const leader = members.get('a')!.node;
  const payloads = Array.from({ length: BATCH }, (_, i) => new Uint8Array(PAYLOAD).fill(i));
  const pump = new Pump(members, 'a');
  const deadline = performance.now() + SECONDS * 1000;
  const t0 = performance.now();
  let rounds = 0;
  while (performance.now() < deadline) {
    for (let k = 0; k < 16; k++) {
      propose(leader, payloads);
      pump.run();
      rounds++;
    }
    pump.compact();
  }
  const secs = (performance.now() - t0) / 1000;
  const proposed = rounds * BATCH;
  if (pump.committed !== proposed) throw new Error(`${name}: committed ${pump.committed} of ${proposed}`);
  const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
  console.log(
    `${name.padEnd(28)} ${fmt(pump.steps / secs).padStart(12)} steps/s ${fmt(pump.committed / secs).padStart(12)} proposals committed/s  (${fmt(pump.steps)} steps, ${fmt(pump.committed)} proposals in ${secs.toFixed(2)} s)`,
  );
}

console.log(`raft-core: 3 RawNodes in memory, ${PAYLOAD}-byte proposals in batches of ${BATCH}, ${SECONDS} s per variant (node ${process.version})`);
runVariant('propose() x64 per round', (leader, payloads) => {
  for (const p of payloads) leader.propose(p);
});
runVariant('proposeBatch(64) per round', (leader, payloads) => leader.proposeBatch(payloads));
