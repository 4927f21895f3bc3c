// A cluster of RawNodes over MemoryStorage, driven through the public Ready
// loop exactly as the contract says: persist (snapshot, entries, HardState),
// send, apply (with applyConfChange for ConfChange entries), advance.
// Messages travel through an in-memory queue that the test can filter.
import assert from 'node:assert/strict';
import type { ConfState, Entry, Message } from '../../../src/raftpb/index.js';
import { decodeConfChangeData } from '../../../src/raft/conf-change-codec.js';
import { MemoryStorage } from '../../../src/raft/memory-storage.js';
import { RawNode } from '../../../src/raft/raw-node.js';
import { seededRandom } from '../../../src/raft/seeded-random.js';
import type { RaftConfig, ReadState, Ready } from '../../../src/raft/types.js';

/** One member: its node, storage, applied entries and observed read states. */
export interface Member {
  id: string;
  node: RawNode;
  storage: MemoryStorage;
  applied: Entry[];
  readStates: ReadState[];
  confState: ConfState | undefined;
  readies: Ready[];
}

export type ClusterOptions = Partial<Omit<RaftConfig, 'id' | 'storage'>>;

/** A cluster; `ids` are bootstrapped as voters unless `bootstrap` is false. */
export class Cluster {
  readonly members = new Map<string, Member>();
  /** Messages sent and not yet delivered. */
  inFlight: Message[] = [];
  /** Returns false to drop a message. */
  filter: (m: Message) => boolean = () => true;
  /** Snapshot data handed out when the state machine is snapshotted. */
  snapshotData = new Uint8Array([42]);
  private readonly opts: ClusterOptions;

  constructor(ids: string[], opts: ClusterOptions = {}, bootstrap = true) {
    this.opts = opts;
    for (const id of ids) {
      const m = this.add(id);
      if (bootstrap) m.node.bootstrap(ids);
    }
  }

  /** Adds a member with an empty storage (not bootstrapped). */
  add(id: string, storage = new MemoryStorage()): Member {
    const node = new RawNode({ id, storage, random: seededRandom(`cluster-${id}`), ...this.opts });
    const m: Member = { id, node, storage, applied: [], readStates: [], confState: undefined, readies: [] };
    this.members.set(id, m);
    return m;
  }

  get(id: string): Member {
    const m = this.members.get(id);
    if (m === undefined) throw new Error(`no member ${id}`);
    return m;
  }

  /** Runs one Ready cycle of `id` if it has one; returns the Ready. */
  processReady(id: string): Ready | undefined {
    const m = this.get(id);
    if (!m.node.hasReady()) return undefined;
    const rd = m.node.ready();
    m.readies.push(rd);
    if (rd.snapshot !== undefined) {
      m.storage.applySnapshot(rd.snapshot);
      m.confState = rd.snapshot.metadata.confState;
    }
    m.storage.append(rd.entries);
    if (rd.hardState !== undefined) m.storage.setHardState(rd.hardState);
    for (const msg of rd.messages) {
      // forwarded transfer requests carry the transferee in `from` (etcd's convention)
      if (msg.type !== 'MsgTransferLeader' && msg.type !== 'MsgProp') assert.equal(msg.from, id, 'messages come from their node');
      assert.notEqual(msg.to, id, 'no message to self');
      this.inFlight.push(msg);
    }
    for (const e of rd.committedEntries) {
      m.applied.push(e);
      if (e.type === 'ConfChange') {
        const cc = decodeConfChangeData(e.data);
        assert.ok(cc !== undefined, 'a committed conf change decodes');
        const cs = m.node.applyConfChange(cc);
        m.confState = cs;
        m.storage.setConfState(cs);
      }
    }
    m.readStates.push(...rd.readStates);
    m.node.advance();
    return rd;
  }

  /** Delivers every message in flight (once), through the filter. */
  deliver(): number {
    const msgs = this.inFlight;
    this.inFlight = [];
    let n = 0;
    for (const msg of msgs) {
      if (!this.filter(msg)) continue;
      const to = this.members.get(msg.to);
      if (to === undefined) continue;
      to.node.step(msg);
      n++;
    }
    return n;
  }

  /** Processes Readies and delivers messages until nothing moves. */
  stabilize(maxRounds = 1000): void {
    for (let round = 0; round < maxRounds; round++) {
      let moved = false;
      for (const id of this.members.keys()) if (this.processReady(id) !== undefined) moved = true;
      if (this.deliver() > 0) moved = true;
      if (!moved) return;
    }
    throw new Error('cluster did not stabilize');
  }

  /** Ticks every member once. */
  tickAll(): void {
    for (const m of this.members.values()) m.node.tick();
  }

  /** Ticks and stabilizes `n` times. */
  tickAndStabilize(n: number): void {
    for (let i = 0; i < n; i++) {
      this.tickAll();
      this.stabilize();
    }
  }

  /** Campaigns `id` and stabilizes; asserts it became leader. */
  elect(id: string): void {
    this.stabilize();
    this.get(id).node.campaign();
    this.stabilize();
    assert.equal(this.get(id).node.status().softState.raftState, 'leader', `${id} should be leader`);
  }

  /** The ids whose node is leader. */
  leaders(): string[] {
    return [...this.members.values()].filter((m) => m.node.status().softState.raftState === 'leader').map((m) => m.id);
  }

  /** Payloads of the Normal, non-empty entries `id` applied, as strings. */
  appliedData(id: string): string[] {
    return this.get(id)
      .applied.filter((e) => e.type === 'Normal' && e.data.length > 0)
      .map((e) => new TextDecoder().decode(e.data));
  }
}
