// A randomized simulation of a Raft cluster made of RawNodes: a seeded PRNG
// picks, at every step, one of: tick a node, deliver / drop / duplicate a
// message (any message in flight, which reorders them), process a node's
// Ready (in some runs, take a Ready and handle it steps later, as a node
// whose writes take time), propose, request a read, snapshot and compact a
// log, cut or heal links, crash or restart a node, add a learner, add a
// voter (a new node or a learner promoted) or remove one, move leadership.
// The SafetyChecker checks Raft's safety properties after every step. At the
// end every fault is repaired, every node that was not removed restarted,
// and the cluster must commit a last proposal on every member (liveness).
//
// The same seed gives the same run: nothing here reads the clock or
// Math.random, and the nodes' election jitter is seeded from the run's seed.
import type { MemoryStorage } from '../../../src/raft/memory-storage.js';
import type { Ready } from '../../../src/raft/types.js';
import { describeHardState, describeMessage, describeRole } from '../interaction/describe.js';
import { decodeConfChangeData } from '../../../src/raft/conf-change-codec.js';
import { SafetyChecker } from './safety-checker.js';
import { SimFailure } from './sim-failure.js';
import { type Packet, SimNetwork } from './sim-network.js';
import { SimRandom } from './sim-random.js';
import { type DriverMutation, type NodeConfig, type RestartMode, SimNode, isExpectedRefusal } from './sim-node.js';

/** What to run. */
export interface SimOptions {
  seed: number;
  /** Voters in the cluster (3 or 5). */
  nodes: number;
  /** Random steps before the final liveness phase. */
  steps: number;
  /** Receives one line per step (for replaying a seed). */
  trace?: (line: string) => void;
  /** A deliberate driver bug (the checker must catch it on some seeds). */
  mutation?: DriverMutation;
  /** Multiplies the weight of crashes and restarts (mutation tests use more). */
  restartFactor?: number;
}

/** What a successful run did. */
export interface SimResult {
  seed: number;
  nodes: number;
  steps: number;
  leaders: number;
  committed: number;
  readStates: number;
  restarts: number;
  partitions: number;
  snapshotsSent: number;
  confChanges: number;
  /** Rounds of the final phase until the last proposal was applied everywhere. */
  livenessRounds: number;
}

type Action =
  | 'tick'
  | 'deliver'
  | 'ready'
  | 'propose'
  | 'drop'
  | 'duplicate'
  | 'read'
  | 'compact'
  | 'partition'
  | 'heal'
  | 'crash'
  | 'restart'
  | 'confChange'
  | 'transfer'
  | 'voterChange';

const ACTIONS: readonly [Action, number][] = [
  ['tick', 28],
  ['deliver', 34],
  ['ready', 24],
  ['propose', 6],
  ['drop', 2],
  ['duplicate', 1.5],
  ['read', 1],
  ['compact', 0.8],
  ['partition', 0.5],
  ['heal', 0.6],
  ['crash', 0.4],
  ['restart', 0.8],
  ['confChange', 0.3],
  ['transfer', 0.3],
  ['voterChange', 0.2],
];

const MAX_LEARNERS = 2;
const LIVENESS_ROUNDS = 400;
const utf8 = new TextEncoder();
const utf8d = new TextDecoder();
const FINAL_PREFIX = 'final-';

function describeReadyLine(rd: Ready): string {
  const parts: string[] = [];
  if (rd.softState !== undefined) parts.push(`${describeRole(rd.softState.raftState)} lead=${rd.softState.lead || 'none'}`);
  if (rd.hardState !== undefined) parts.push(`HardState ${describeHardState(rd.hardState)}`);
  if (rd.snapshot !== undefined) parts.push(`snapshot ${rd.snapshot.metadata.index}/${rd.snapshot.metadata.term}`);
  if (rd.entries.length > 0) parts.push(`entries ${rd.entries[0]!.index}..${rd.entries[rd.entries.length - 1]!.index}`);
  if (rd.committedEntries.length > 0) parts.push(`apply ${rd.committedEntries[0]!.index}..${rd.committedEntries[rd.committedEntries.length - 1]!.index}`);
  if (rd.messages.length > 0) parts.push(`${rd.messages.length} msgs`);
  if (rd.readStates.length > 0) parts.push(`${rd.readStates.length} read states`);
  return parts.join(', ');
}

/** One run of the simulation. */
class Simulation {
  private readonly rnd: SimRandom;
  private readonly net = new SimNetwork();
  private readonly nodes = new Map<string, SimNode>();
  private readonly checker: SafetyChecker;
  private readonly voters: string[];
  private readonly config: NodeConfig;
  private readonly weights: number[];
  private step = 0;
  private counter = 0;
  private learnersCreated = 0;
  private votersCreated = 0;
  /** Members whose removal some node has applied: not restarted for the final phase. */
  private readonly removed = new Set<string>();
  /** Whether this run takes some Readys and handles them steps later. */
  private readonly splitReady: boolean;
  /** Where each final proposal was first applied. */
  private readonly appliedFinal = new Map<string, number>();
  private readonly stats = { restarts: 0, partitions: 0, snapshotsSent: 0, confChanges: 0 };

  constructor(private readonly opts: SimOptions) {
    this.rnd = new SimRandom(opts.seed);
    this.checker = new SafetyChecker((reason) => {
      throw new SimFailure(opts.seed, opts.nodes, this.step, reason);
    });
    const r = this.rnd;
    this.config = {
      // Short election timeouts make leaders come and go quickly, which is
      // what it takes to reach interleavings like Figure 8 of the paper.
      electionTick: r.pick([3, 3, 5, 10]),
      heartbeatTick: 1,
      preVote: r.chance(0.75),
      checkQuorum: r.chance(0.75),
      maxSizePerMsg: r.pick([1, 16, 1024 * 1024]),
      maxInflightMsgs: r.pick([1, 4, 256]),
    };
    this.splitReady = r.chance(0.5);
    this.checker.setBootstrapEntries(opts.nodes);
    const f = opts.restartFactor ?? 1;
    this.weights = ACTIONS.map(([a, w]) => (a === 'crash' || a === 'restart' ? w * f : w));
    this.voters = Array.from({ length: opts.nodes }, (_, i) => String(i + 1));
    for (const id of this.voters) {
      this.nodes.set(id, new SimNode(id, opts.seed, this.config, this.checker, this.voters, opts.mutation));
    }
    this.trace(
      `seed ${opts.seed}: ${opts.nodes} voters, electionTick=${this.config.electionTick} preVote=${this.config.preVote} checkQuorum=${this.config.checkQuorum} ` +
        `maxSizePerMsg=${this.config.maxSizePerMsg} maxInflightMsgs=${this.config.maxInflightMsgs} splitReady=${this.splitReady}`,
    );
  }

  private trace(line: string): void {
    this.opts.trace?.(line);
  }

  private upNodes(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.up);
  }

  /** Election Safety and commit monotonicity, on the nodes a step touched. */
  private observe(ids: Iterable<string>): void {
    for (const id of ids) {
      const rn = this.nodes.get(id)?.rawNode;
      if (rn === undefined) continue;
      const st = rn.status();
      this.checker.observeCommit(id, st.hardState.commit);
      if (st.softState.raftState === 'leader') this.checker.observeLeader(id, st.hardState.term);
    }
  }

  private sendReady(from: SimNode): (rd: Ready) => void {
    return (rd) => {
      for (const m of rd.messages) {
        // Only relayed requests keep another node's id in `from`.
        if (m.from !== from.id && m.type !== 'MsgProp' && m.type !== 'MsgTransferLeader' && m.type !== 'MsgReadIndex') {
          throw new SimFailure(this.opts.seed, this.opts.nodes, this.step, `${from.id} sent a ${m.type} from ${m.from}`);
        }
        if (m.type === 'MsgSnap') this.stats.snapshotsSent++;
        this.net.send(from.id, m);
      }
    };
  }

  private processReady(n: SimNode): Ready | undefined {
    const rd = n.processReady((r) => this.trace(`${this.step}: ready ${n.id}: ${describeReadyLine(r)}`), this.sendReady(n));
    if (rd === undefined) return undefined;
    for (const e of rd.committedEntries) {
      if (e.type !== 'Normal' || e.data.length === 0) continue;
      const s = utf8d.decode(e.data);
      if (s.startsWith(FINAL_PREFIX) && !this.appliedFinal.has(s)) this.appliedFinal.set(s, e.index);
    }
    for (const e of rd.committedEntries) {
      if (e.type !== 'ConfChange') continue;
      const cc = decodeConfChangeData(e.data);
      if (cc?.type === 'RemoveNode') this.removed.add(cc.nodeId);
    }
    return rd;
  }

  /** A message that will never arrive: the transport tells the sender what it can. */
  private lost(p: Packet, why: string): void {
    const m = p.msg;
    this.trace(`${this.step}: lose (${why}) ${describeMessage(m)}`);
    const sender = this.nodes.get(p.sender)?.rawNode;
    if (sender === undefined) return;
    if (m.type === 'MsgSnap') sender.reportSnapshot(m.to, 'failure');
    else if (m.type === 'MsgApp' && this.rnd.chance(0.5)) sender.reportUnreachable(m.to);
  }

  /** Delivers the packet at `i` (or loses it on a cut link or a down node). Returns the nodes touched. */
  private deliver(i: number): string[] {
    const p = this.net.take(i);
    const m = p.msg;
    const to = this.nodes.get(m.to);
    if (to === undefined || to.rawNode === undefined) {
      this.lost(p, 'down');
      return [p.sender];
    }
    if (this.net.isCut(p.sender, m.to)) {
      this.lost(p, 'partition');
      return [p.sender];
    }
    this.trace(`${this.step}: deliver ${describeMessage(m)}`);
    to.rawNode.step(m);
    // The transport reports a snapshot sent in full.
    if (m.type === 'MsgSnap') this.nodes.get(p.sender)?.rawNode?.reportSnapshot(m.to, 'finish');
    return [m.to, p.sender];
  }

  private leader(): SimNode | undefined {
    let best: SimNode | undefined;
    let bestTerm = -1;
    for (const n of this.upNodes()) {
      const st = n.rawNode!.status();
      if (st.softState.raftState === 'leader' && st.hardState.term > bestTerm) {
        best = n;
        bestTerm = st.hardState.term;
      }
    }
    return best;
  }

  private propose(n: SimNode, data: string): void {
    try {
      n.rawNode!.propose(utf8.encode(data));
      this.trace(`${this.step}: propose ${data} on ${n.id}`);
    } catch (err) {
      if (!isExpectedRefusal(err)) throw err;
      this.trace(`${this.step}: propose ${data} on ${n.id} refused`);
    }
  }

  private randomStep(): string[] {
    const r = this.rnd;
    const action = ACTIONS[r.weighted(this.weights)]![0];
    const up = this.upNodes();
    switch (action) {
      case 'tick': {
        const n = r.pick(up);
        n.rawNode!.tick();
        this.trace(`${this.step}: tick ${n.id}`);
        return [n.id];
      }
      case 'deliver': {
        const q = this.net.inFlight;
        if (q.length === 0) return [];
        return this.deliver(r.chance(0.6) ? 0 : r.int(0, q.length - 1));
      }
      case 'ready': {
        if (this.splitReady && r.chance(0.5)) {
          const cands = up.filter((n) => n.pendingReady === undefined && n.rawNode!.hasReady());
          if (cands.length > 0) {
            const n = r.pick(cands);
            n.beginReady();
            this.trace(`${this.step}: begin ready ${n.id}`);
            return [n.id];
          }
        }
        const ready = up.filter((n) => n.pendingReady !== undefined || n.rawNode!.hasReady());
        if (ready.length === 0) return [];
        const n = r.pick(ready);
        this.processReady(n);
        return [n.id];
      }
      case 'propose': {
        const n = r.pick(up);
        this.propose(n, `v${++this.counter}`);
        return [n.id];
      }
      case 'drop': {
        const q = this.net.inFlight;
        if (q.length === 0) return [];
        const p = this.net.take(r.int(0, q.length - 1));
        this.lost(p, 'drop');
        return [p.sender];
      }
      case 'duplicate': {
        const q = this.net.inFlight;
        if (q.length === 0) return [];
        const p = this.net.duplicate(r.int(0, q.length - 1));
        this.trace(`${this.step}: duplicate ${describeMessage(p.msg)}`);
        return [];
      }
      case 'read': {
        const n = r.pick(up);
        const ctx = utf8.encode(`r${++this.counter}`);
        this.checker.onReadRequested(ctx);
        try {
          n.rawNode!.readIndex(ctx);
          this.trace(`${this.step}: read r${this.counter} on ${n.id}`);
        } catch (err) {
          if (!isExpectedRefusal(err)) throw err;
        }
        return [n.id];
      }
      case 'compact': {
        const n = r.pick(up);
        const keep = r.int(0, 4);
        if (n.compact(keep)) this.trace(`${this.step}: compact ${n.id} at ${n.applied} keeping ${keep}`);
        return [];
      }
      case 'partition': {
        if (this.net.partitioned) return [];
        const ids = [...this.nodes.keys()];
        const side = ids.filter(() => r.chance(0.5));
        if (side.length === 0 || side.length === ids.length) return [];
        this.net.partition(
          side,
          ids.filter((id) => !side.includes(id)),
        );
        this.stats.partitions++;
        this.trace(`${this.step}: partition ${side.join(',')} | ${ids.filter((id) => !side.includes(id)).join(',')}`);
        return [];
      }
      case 'heal': {
        if (!this.net.partitioned) return [];
        this.net.heal();
        this.trace(`${this.step}: heal`);
        return [];
      }
      case 'crash': {
        const downVoters = this.voters.filter((id) => !this.nodes.get(id)!.up).length;
        const n = r.pick(up);
        if (this.voters.includes(n.id) && downVoters + 1 > Math.floor((this.voters.length - 1) / 2)) return [];
        n.crash();
        this.trace(`${this.step}: crash ${n.id}`);
        return [];
      }
      case 'restart': {
        const down = [...this.nodes.values()].filter((n) => !n.up);
        if (down.length === 0) return [];
        const n = r.pick(down);
        this.restart(n);
        return [n.id];
      }
      case 'confChange':
        return this.confChange();
      case 'transfer': {
        const l = this.leader();
        if (l === undefined) return [];
        const vs = l.rawNode!.status().config.voters;
        const to = r.pick(vs);
        l.rawNode!.transferLeader(to);
        this.trace(`${this.step}: transfer leadership from ${l.id} to ${to}`);
        return [l.id];
      }
      case 'voterChange':
        return this.voterChange();
    }
  }

  private restart(n: SimNode): void {
    const mode: RestartMode = this.rnd.chance(0.5) ? 'applied' : 'snapshot';
    n.restart(mode, this.opts.mutation);
    this.stats.restarts++;
    this.trace(`${this.step}: restart ${n.id} from its ${mode === 'applied' ? 'applied state' : 'snapshot'} (applied ${n.applied})`);
  }

  /** Adds a learner (a new, empty node) or removes one; voters never change. */
  private confChange(): string[] {
    const l = this.leader();
    if (l === undefined) return [];
    const learners = l.rawNode!.status().config.learners;
    if (learners.length > 0 && (this.learnersCreated >= MAX_LEARNERS || this.rnd.chance(0.5))) {
      const id = this.rnd.pick(learners);
      try {
        l.rawNode!.proposeConfChange({ type: 'RemoveNode', nodeId: id });
        this.stats.confChanges++;
        this.trace(`${this.step}: propose removing learner ${id} on ${l.id}`);
      } catch (err) {
        if (!isExpectedRefusal(err)) throw err;
      }
      return [l.id];
    }
    if (this.learnersCreated >= MAX_LEARNERS) return [];
    const id = `l${this.learnersCreated + 1}`;
    try {
      l.rawNode!.proposeConfChange({ type: 'AddLearnerNode', nodeId: id });
    } catch (err) {
      if (!isExpectedRefusal(err)) throw err;
      return [l.id];
    }
    this.learnersCreated++;
    this.stats.confChanges++;
    this.nodes.set(id, new SimNode(id, this.opts.seed, this.config, this.checker, undefined, this.opts.mutation));
    this.trace(`${this.step}: propose adding learner ${id} on ${l.id}`);
    return [l.id];
  }

  /** Adds a voter (a learner promoted, or a new node), or removes one, through the leader. */
  private voterChange(): string[] {
    const l = this.leader();
    if (l === undefined) return [];
    const cs = l.rawNode!.status().config;
    const r = this.rnd;
    const choice = r.int(0, 2);
    let cc: { type: 'AddNode' | 'RemoveNode'; nodeId: string } | undefined;
    let fresh: string | undefined;
    if (choice === 0 && cs.learners.length > 0) cc = { type: 'AddNode', nodeId: r.pick(cs.learners) };
    else if (choice === 1 && cs.voters.length > 2) cc = { type: 'RemoveNode', nodeId: r.pick(cs.voters) };
    else if (choice === 2 && cs.voters.length < 6 && this.votersCreated < 4) {
      fresh = `v${this.votersCreated + 1}`;
      cc = { type: 'AddNode', nodeId: fresh };
    }
    if (cc === undefined) return [];
    const after = cc.type === 'RemoveNode' ? cs.voters.filter((id) => id !== cc.nodeId) : [...cs.voters, cc.nodeId];
    if (this.strandsElections(l, after)) {
      this.trace(`${this.step}: ${cc.type} ${cc.nodeId} on ${l.id} refused: too few voters past the bootstrap`);
      return [];
    }
    try {
      l.rawNode!.proposeConfChange(cc);
    } catch (err) {
      if (!isExpectedRefusal(err)) throw err;
      return [l.id];
    }
    if (fresh !== undefined) {
      this.votersCreated++;
      this.nodes.set(fresh, new SimNode(fresh, this.opts.seed, this.config, this.checker, undefined, this.opts.mutation));
    }
    this.stats.confChanges++;
    this.trace(`${this.step}: propose ${cc.type} ${cc.nodeId} on ${l.id}`);
    return [l.id];
  }

  /**
   * The driver's own check before a voter change, as RaftNode's
   * `strictReconfigCheck` for a removal: a voter whose log holds only the
   * bootstrap entries (term 1: a founder that has heard from no leader, or a
   * member that got no further than a term-1 snapshot) withholds its vote
   * from longer logs (it may have lost its disk), so the voters of the new
   * configuration that have acknowledged an entry of a leader must form its
   * quorum, or no leader could be elected again once this one is gone. True
   * when `voters` (the configuration after the change) falls short.
   */
  private strandsElections(l: SimNode, voters: readonly string[]): boolean {
    const st = l.rawNode!.status();
    const store = l.storage;
    let pastBootstrap = store.firstIndex();
    if (store.term(pastBootstrap - 1) <= 1) {
      while (pastBootstrap <= store.lastIndex() && store.term(pastBootstrap) <= 1) pastBootstrap++;
    }
    const free = voters.filter((id) => id === l.id || (st.progress?.[id]?.match ?? 0) >= pastBootstrap);
    return free.length < Math.floor(voters.length / 2) + 1;
  }

  private checkLogs(): void {
    const logs = new Map<string, MemoryStorage>();
    for (const [id, n] of this.nodes) logs.set(id, n.storage);
    this.checker.checkLogsPairwise(logs);
  }

  /** Ready cycles and FIFO deliveries until nothing moves. */
  private quiesce(): void {
    for (let i = 0; i < 500; i++) {
      let moved = false;
      for (const n of this.upNodes()) {
        if (this.processReady(n) !== undefined) {
          this.observe([n.id]);
          moved = true;
        }
      }
      while (this.net.inFlight.length > 0) {
        this.observe(this.deliver(0));
        moved = true;
      }
      if (!moved) return;
    }
    throw new SimFailure(this.opts.seed, this.opts.nodes, this.step, 'the cluster does not quiesce without faults');
  }

  /** Repairs everything and waits for a last proposal to be applied on every member. */
  private liveness(): number {
    this.net.heal();
    for (const n of this.nodes.values()) if (this.removed.has(n.id) && n.up) n.crash();
    for (const n of this.nodes.values()) if (!n.up && !this.removed.has(n.id)) this.restart(n);
    this.trace(`${this.step}: heal everything; liveness phase`);
    const data = `${FINAL_PREFIX}${this.opts.seed}`;
    let finalIndex = 0;
    let proposedAt = -Infinity;
    for (let round = 0; round < LIVENESS_ROUNDS; round++) {
      this.step++;
      for (const n of this.upNodes()) n.rawNode!.tick();
      this.observe(this.nodes.keys());
      this.quiesce();
      const l = this.leader();
      if (l === undefined) continue;
      if (finalIndex === 0) {
        finalIndex = this.findApplied(data);
        if (finalIndex === 0 && round - proposedAt >= 20) {
          proposedAt = round;
          this.propose(l, data);
          this.quiesce();
          finalIndex = this.findApplied(data);
        }
      }
      if (finalIndex === 0) continue;
      const cs = l.rawNode!.status().config;
      const members = [...cs.voters, ...cs.learners];
      if (members.every((id) => (this.nodes.get(id)?.applied ?? -1) >= finalIndex)) {
        this.trace(`${this.step}: ${data} applied at ${finalIndex} on every member (${members.join(',')}) after ${round + 1} rounds`);
        return round + 1;
      }
    }
    const state = [...this.nodes.values()]
      .filter((n) => n.up)
      .map((n) => {
        const st = n.rawNode!.status();
        return `${n.id}: ${describeRole(st.softState.raftState)} term ${st.hardState.term} commit ${st.hardState.commit} applied ${n.applied}`;
      })
      .join('; ');
    throw new SimFailure(this.opts.seed, this.opts.nodes, this.step, `liveness: no proposal applied on every member after ${LIVENESS_ROUNDS} rounds (${state})`);
  }

  /** The index at which some node applied an entry with `data`, or 0. */
  private findApplied(data: string): number {
    return this.appliedFinal.get(data) ?? 0;
  }

  run(): SimResult {
    try {
      for (this.step = 1; this.step <= this.opts.steps; this.step++) {
        this.observe(this.randomStep());
        if (this.step % 64 === 0) this.checkLogs();
      }
      const rounds = this.liveness();
      this.checkLogs();
      const l = this.leader();
      if (l !== undefined) this.checker.checkHasCommitted(l.id, l.storage);
      return {
        seed: this.opts.seed,
        nodes: this.opts.nodes,
        steps: this.opts.steps,
        ...this.checker.stats,
        ...this.stats,
        livenessRounds: rounds,
      };
    } catch (err) {
      if (err instanceof SimFailure) throw err;
      const msg = err instanceof Error ? err.message : String(err);
      throw new SimFailure(this.opts.seed, this.opts.nodes, this.step, `unexpected exception: ${msg}`, { cause: err });
    }
  }
}

/**
 * Runs one seed.
 * @throws SimFailure when an invariant breaks, liveness fails, or the core throws
 */
export function runSimulation(opts: SimOptions): SimResult {
  return new Simulation(opts).run();
}
