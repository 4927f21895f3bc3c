// A cluster of RawNodes under chaos (loss, reordering, duplication,
// partitions, crash-restarts, compaction), with the safety checks of
// random-cluster.test.ts. Deterministic for a given seed.
import assert from 'node:assert/strict';
import { ErrorCode, isQuorumError } from '../../../src/errors.js';
import type { ConfState, Entry, Message } from '../../../src/raftpb/index.js';
import { decodeConfChangeData } from '../../../src/raft/conf-change-codec.js';
import { MemoryStorage } from '../../../src/raft/memory-storage.js';
import { RawNode } from '../../../src/raft/raw-node.js';
import { seededRandom } from '../../../src/raft/seeded-random.js';

export interface SimNode {
  id: string;
  node: RawNode;
  storage: MemoryStorage;
  confState: ConfState;
  lastApplied: number;
  lastCommit: number;
}

export class ChaosCluster {
  readonly rand: () => number;
  readonly ids: string[];
  readonly nodes = new Map<string, SimNode>();
  inFlight: Message[] = [];
  /** Nodes cut off from everybody. */
  isolated = new Set<string>();
  /** index -> "term:data" of every applied entry, across all nodes. */
  readonly applied = new Map<number, string>();
  readonly leaderOfTerm = new Map<number, string>();
  proposals = 0;
  readonly opts: { preVote: boolean; checkQuorum: boolean; maxSizePerMsg: number; maxInflightMsgs: number };

  constructor(readonly seed: number) {
    this.rand = seededRandom(`random-cluster-${seed}`);
    const n = this.rand() < 0.5 ? 3 : 5;
    this.ids = Array.from({ length: n }, (_, i) => `n${i + 1}`);
    this.opts = {
      preVote: this.rand() < 0.7,
      checkQuorum: this.rand() < 0.7,
      maxSizePerMsg: this.rand() < 0.5 ? 8 : 1024,
      maxInflightMsgs: 1 + Math.floor(this.rand() * 8),
    };
    for (const id of this.ids) {
      const storage = new MemoryStorage();
      const sn: SimNode = { id, storage, node: this.newNode(id, storage, 0), confState: { voters: [], learners: [] }, lastApplied: 0, lastCommit: 0 };
      sn.node.bootstrap(this.ids);
      this.nodes.set(id, sn);
    }
  }

  private newNode(id: string, storage: MemoryStorage, applied: number): RawNode {
    return new RawNode({ id, storage, applied, electionTick: 10, heartbeatTick: 1, random: seededRandom(`${this.seed}-${id}-${applied}`), ...this.opts });
  }

  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rand() * xs.length)]!;
  }

  /** One Ready cycle of a node: persist, send, apply, advance. */
  processReady(sn: SimNode): void {
    if (!sn.node.hasReady()) return;
    const rd = sn.node.ready();
    if (rd.snapshot !== undefined) {
      sn.storage.applySnapshot(rd.snapshot);
      sn.confState = rd.snapshot.metadata.confState;
      const idx = rd.snapshot.metadata.index;
      // the snapshot covers entries some node applied already
      assert.ok(this.applied.has(idx), `snapshot at ${idx} covers unapplied entries`);
      sn.lastApplied = idx;
    }
    sn.storage.append(rd.entries);
    if (rd.hardState !== undefined) sn.storage.setHardState(rd.hardState);
    for (const m of rd.messages) this.inFlight.push(m);
    for (const e of rd.committedEntries) this.apply(sn, e);
    sn.node.advance();
  }

  private apply(sn: SimNode, e: Entry): void {
    assert.equal(e.index, sn.lastApplied + 1, `${sn.id} applies in order`);
    sn.lastApplied = e.index;
    const key = `${e.term}:${e.type}:${new TextDecoder().decode(e.data)}`;
    const prev = this.applied.get(e.index);
    if (prev === undefined) this.applied.set(e.index, key);
    else assert.equal(key, prev, `State Machine Safety: ${sn.id} applies a different entry at ${e.index}`);
    if (e.type === 'ConfChange') {
      const cc = decodeConfChangeData(e.data);
      assert.ok(cc !== undefined);
      sn.confState = sn.node.applyConfChange(cc);
      sn.storage.setConfState(sn.confState);
    }
  }

  reachable(m: Message): boolean {
    return !this.isolated.has(m.from) && !this.isolated.has(m.to) && this.nodes.has(m.to);
  }

  /** Delivers (or drops, or duplicates) one random in-flight message. */
  deliverOne(): void {
    if (this.inFlight.length === 0) return;
    const i = Math.floor(this.rand() * this.inFlight.length);
    const m = this.inFlight[i]!;
    const r = this.rand();
    if (r < 0.9) this.inFlight.splice(i, 1); // else: duplicated (stays in flight)
    const lost = r < 0.1 || !this.reachable(m);
    if (!lost) this.nodes.get(m.to)!.node.step(m);
    this.report(m, lost);
  }

  /** What a driver tells its node after a send: snapshot outcome, unreachable peer. */
  report(m: Message, lost: boolean): void {
    const sender = this.nodes.get(m.from);
    if (sender === undefined || !this.nodes.has(m.to)) return;
    if (m.type === 'MsgSnap') sender.node.reportSnapshot(m.to, lost ? 'failure' : 'finish');
    else if (lost && this.rand() < 0.3) sender.node.reportUnreachable(m.to);
  }

  /** A crash and restart from the persisted state (Readies persist synchronously here). */
  restart(sn: SimNode): void {
    sn.node = this.newNode(sn.id, sn.storage, sn.lastApplied);
    // a node that crashed before persisting its first Ready has an empty
    // storage: like any driver, bootstrap it again (same voters)
    const hs = sn.storage.initialState().hardState;
    if (sn.storage.lastIndex() === 0 && hs.term === 0 && hs.vote === '' && hs.commit === 0) sn.node.bootstrap(this.ids);
    // the commit index is volatile: a restart resumes from the persisted one
    sn.lastCommit = sn.storage.initialState().hardState.commit;
    assert.ok(sn.lastCommit >= sn.lastApplied, 'the persisted commit covers what was applied');
    this.inFlight = this.inFlight.filter((m) => m.from !== sn.id);
  }

  compact(sn: SimNode): void {
    const applied = sn.lastApplied;
    const first = sn.storage.firstIndex();
    if (applied <= first + 2) return;
    const at = applied - 1;
    sn.storage.createSnapshot(at, sn.confState, new Uint8Array([at & 0xff]));
    sn.storage.compact(at);
  }

  check(): void {
    for (const sn of this.nodes.values()) {
      const st = sn.node.status();
      if (st.softState.raftState === 'leader') {
        const other = this.leaderOfTerm.get(st.hardState.term);
        assert.ok(other === undefined || other === sn.id, `Election Safety: ${other} and ${sn.id} both lead term ${st.hardState.term}`);
        this.leaderOfTerm.set(st.hardState.term, sn.id);
      }
      assert.ok(st.hardState.commit >= sn.lastCommit, `${sn.id} commit went back`);
      sn.lastCommit = st.hardState.commit;
      assert.ok(st.applied <= st.hardState.commit, `${sn.id} applied past commit`);
    }
  }

  /** Log Matching over the persisted logs. */
  checkLogMatching(): void {
    const logs = [...this.nodes.values()].map((sn) => {
      const s = sn.storage;
      const map = new Map<number, Entry>();
      if (s.lastIndex() >= s.firstIndex()) for (const e of s.entries(s.firstIndex(), s.lastIndex() + 1, Infinity)) map.set(e.index, e);
      return { id: sn.id, map };
    });
    for (let a = 0; a < logs.length; a++) {
      for (let b = a + 1; b < logs.length; b++) {
        const la = logs[a]!;
        const lb = logs[b]!;
        let top = 0;
        for (const [i, e] of la.map) {
          const f = lb.map.get(i);
          if (f !== undefined && f.term === e.term && i > top) top = i;
        }
        for (let i = top; i >= 1; i--) {
          const e = la.map.get(i);
          const f = lb.map.get(i);
          if (e === undefined || f === undefined) break; // compacted on one side
          assert.equal(e.term, f.term, `Log Matching: ${la.id} and ${lb.id} differ at ${i} below a common entry at ${top}`);
          assert.deepEqual(e.data, f.data, `Log Matching: ${la.id} and ${lb.id} differ at ${i}`);
        }
      }
    }
  }

  step(): void {
    const r = this.rand();
    const sn = this.nodes.get(this.pick(this.ids))!;
    if (r < 0.25) sn.node.tick();
    else if (r < 0.55) this.deliverOne();
    else if (r < 0.75) this.processReady(sn);
    else if (r < 0.85) {
      try {
        sn.node.propose(new TextEncoder().encode(`p${this.proposals++}`));
      } catch (err) {
        if (!isQuorumError(err, ErrorCode.PROPOSAL_DROPPED)) throw err;
      }
    } else if (r < 0.88) {
      if (this.isolated.size > 0 && this.rand() < 0.6) this.isolated.clear();
      else this.isolated.add(sn.id);
    } else if (r < 0.9) {
      sn.node.readIndex(new TextEncoder().encode(`r${this.proposals}`));
    } else if (r < 0.905) sn.node.transferLeader(this.pick(this.ids));
    else if (r < 0.91) this.restart(sn);
    else if (r < 0.915) this.compact(sn);
    else this.deliverOne();
    this.check();
  }

  /** Heals everything and runs until a leader commits a last proposal everywhere. */
  converge(): void {
    this.isolated.clear();
    for (let round = 0; round < 400; round++) {
      for (const sn of this.nodes.values()) sn.node.tick();
      for (let k = 0; k < 50; k++) {
        let moved = false;
        for (const sn of this.nodes.values()) {
          if (sn.node.hasReady()) {
            this.processReady(sn);
            moved = true;
          }
        }
        const msgs = this.inFlight;
        this.inFlight = [];
        for (const m of msgs) {
          if (this.reachable(m)) this.nodes.get(m.to)!.node.step(m);
          this.report(m, !this.reachable(m));
        }
        if (msgs.length > 0) moved = true;
        this.check();
        if (!moved) break;
      }
      const leaders = [...this.nodes.values()].filter((sn) => sn.node.status().softState.raftState === 'leader');
      if (leaders.length === 1) {
        const lead = leaders[0]!;
        const commit = lead.node.status().hardState.commit;
        const done = [...this.nodes.values()].every((sn) => sn.lastApplied === commit && sn.node.status().softState.lead === lead.id);
        if (done && commit > 0 && this.applied.get(commit)?.includes('final')) return;
        if (round % 10 === 0) {
          try {
            lead.node.propose(new TextEncoder().encode('final'));
          } catch (err) {
            if (!isQuorumError(err, ErrorCode.PROPOSAL_DROPPED)) throw err;
          }
        }
      }
    }
    assert.fail('the healed cluster did not converge');
  }
}

