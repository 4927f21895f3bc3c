// An environment in which scenario fixtures drive RawNodes step by step
// (etcd-io/raft rafttest/interaction_env*.go). Every node is a RawNode over a
// MemoryStorage, driven exactly as the Ready contract says (persist, send,
// apply, advance); messages wait in one queue until a command delivers or
// drops them. The MemoryStorage is the node's persisted state: `restart`
// rebuilds a node from it (and from the applied index and ConfState the
// driver saved with its state machine), losing whatever was not persisted.
//
// Commands (ids are node ids: "1", "2", ...):
//   add-nodes <n> [voters=(1,2,3)] [learners=(4)] [index=<i>] [content=<s>]
//             [prevote=<bool>] [checkquorum=<bool>] [max-size-per-msg=<bytes>]
//             [inflight=<n>] [read-only=safe|lease-based]
//             [election-tick=<n>] [heartbeat-tick=<n>]
//             [random=zero|seeded|<fraction>]
//       Adds n nodes with the next free ids. With `index`, each starts from a
//       snapshot at that index and term 1 holding the given membership and
//       content; without, from an empty storage (a node waiting to be added).
//       The randomized election timeout is electionTick (10) plus
//       floor(random() * 10) ticks: `random=zero` (the default) makes it
//       exactly 10, so that tick-election times a follower out; a fraction
//       such as `random=0.5` makes it 15, leaving a window in which a
//       follower is out of its leader's lease but has not timed out yet;
//       `seeded` draws from a generator seeded by the node id. Defaults
//       otherwise are the core's (PreVote and CheckQuorum on).
//   campaign <id>                      RawNode.campaign()
//   propose <id> <data>                RawNode.propose()
//   propose-conf-change <id> <v|l|r><node>   add voter / add learner / remove
//   read-index <id> <ctx>              RawNode.readIndex()
//   transfer-leadership from=<id> to=<id>
//   tick-election <id>... / tick-heartbeat <id>... / tick <id> [n=<ticks>]
//   deliver-msgs [<id>...] [drop=(<id>...)] [type=<MsgType>]
//       Delivers (or drops) the queued messages to those nodes, in order.
//       Messages over a cut link are dropped and printed as such.
//   process-ready <id>...              one Ready cycle
//   stabilize [<id>...]                Ready cycles and deliveries until quiet
//   raft-state                         role, term, leader and commit of every node
//   raft-log <id>                      the node's stable log
//   status <id>                        the leader's Progress of every member
//   compact <id> <index>               snapshot at <index> (applied) and compact the log up to it
//   report-unreachable <id> <peer>     RawNode.reportUnreachable()
//   report-snapshot <id> <peer> finish|failure
//   isolate <id>...                    cut every link of these nodes
//   partition <ids,...> <ids,...>...   cut the links between groups
//   heal                               restore every link
//   restart <id>                       rebuild the node from its persisted state
//   log-level debug|info|warn|error|none
import { ErrorCode, isQuorumError } from '../../../src/errors.js';
import type { ConfChange, ConfState, Message, MessageType } from '../../../src/raftpb/index.js';
import { MESSAGE_TYPES } from '../../../src/raftpb/index.js';
import { decodeConfChangeData } from '../../../src/raft/conf-change-codec.js';
import { MemoryStorage } from '../../../src/raft/memory-storage.js';
import { RawNode } from '../../../src/raft/raw-node.js';
import { seededRandom } from '../../../src/raft/seeded-random.js';
import type { RaftConfig, ReadOnlyOption } from '../../../src/raft/types.js';
import { parseLine, type CmdArg } from './datadriven.js';
import {
  describeEntry,
  describeHardState,
  describeId,
  describeMessage,
  describeProgress,
  describeReady,
  describeRole,
} from './describe.js';
import { Output, isLogLevel } from './output.js';

/** A mistake in a fixture (unknown command, bad argument): fails the test instead of being printed. */
export class FixtureError extends Error {}

type NodeOptions = Omit<RaftConfig, 'id' | 'storage' | 'applied' | 'logger' | 'random'>;

/** One node of the environment. */
interface EnvNode {
  id: string;
  rawNode: RawNode;
  /** The persisted log, HardState and snapshot. */
  storage: MemoryStorage;
  opts: NodeOptions;
  /** `seeded`, or a constant in [0, 1). */
  randomMode: 'seeded' | number;
  /** Applied index, persisted together with the state machine. */
  applied: number;
  /** Membership at the applied index, persisted with it. */
  confState: ConfState;
  /** Membership from each applied index on where it changed (for snapshots below the applied index). */
  confHistory: { index: number; confState: ConfState }[];
}

const utf8 = new TextEncoder();
const KNOWN_TYPES: ReadonlySet<string> = new Set<string>(MESSAGE_TYPES);

function bool(arg: CmdArg): boolean {
  const v = arg.vals[0];
  if (v !== 'true' && v !== 'false') throw new FixtureError(`${arg.key} must be true or false`);
  return v === 'true';
}

function int(s: string | undefined, what: string): number {
  const n = Number(s);
  if (s === undefined || !Number.isSafeInteger(n) || n < 0) throw new FixtureError(`${what} must be a non-negative integer (got ${String(s)})`);
  return n;
}

/** Positional arguments (those without `=`). */
function positional(args: CmdArg[]): string[] {
  return args.filter((a) => a.vals.length === 0).map((a) => a.key);
}

function named(args: CmdArg[], key: string): CmdArg | undefined {
  return args.find((a) => a.key === key && a.vals.length > 0);
}

function linkKey(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}

/** Prints a refusal from the core as a line of output. */
function describeError(err: unknown): string {
  if (isQuorumError(err)) return `error: ${err.code}: ${err.message}`;
  throw err;
}

/** The environment: nodes, the message queue, the link cuts and the output. */
export class InteractionEnv {
  readonly output = new Output();
  private readonly nodes = new Map<string, EnvNode>();
  /** Messages sent and not yet delivered or dropped, in send order. */
  private messages: Message[] = [];
  private readonly cuts = new Set<string>();

  /**
   * Runs one block of command lines and returns the output (`ok` when
   * nothing was printed).
   * @throws FixtureError on a malformed command
   */
  handle(commands: readonly string[]): string {
    for (const line of commands) {
      const { cmd, args } = parseLine(line);
      this.handleSingle(cmd, args);
    }
    const out = this.output.take();
    return out === '' ? 'ok\n' : out;
  }

  private handleSingle(cmd: string, args: CmdArg[]): void {
    switch (cmd) {
      case 'add-nodes':
        return this.addNodes(args);
      case 'campaign':
        return this.eachNode(args, (n) => n.rawNode.campaign());
      case 'propose':
        return this.propose(args);
      case 'propose-conf-change':
        return this.proposeConfChange(args);
      case 'read-index':
        return this.readIndex(args);
      case 'transfer-leadership':
        return this.transferLeadership(args);
      case 'tick-election':
        return this.eachNode(args, (n) => this.tick(n, n.opts.electionTick ?? 10));
      case 'tick-heartbeat':
        return this.eachNode(args, (n) => this.tick(n, n.opts.heartbeatTick ?? 1));
      case 'tick': {
        const count = int(named(args, 'n')?.vals[0] ?? '1', 'n');
        return this.eachNode(args, (n) => this.tick(n, count));
      }
      case 'deliver-msgs':
        return this.deliverMsgsCmd(args);
      case 'process-ready': {
        const ids = positional(args);
        if (ids.length === 0) throw new FixtureError('process-ready needs node ids');
        for (const id of ids) {
          if (ids.length > 1) {
            this.output.write(`> ${id} handling Ready`);
            this.output.indented(() => this.processReady(this.node(id)));
          } else {
            this.processReady(this.node(id));
          }
        }
        return;
      }
      case 'stabilize':
        return this.stabilize(positional(args));
      case 'raft-state':
        return this.raftState();
      case 'raft-log':
        return this.eachNode(args, (n) => this.raftLog(n));
      case 'status':
        return this.eachNode(args, (n) => this.status(n));
      case 'compact':
        return this.compact(args);
      case 'report-unreachable': {
        const [id, peer] = positional(args);
        if (peer === undefined) throw new FixtureError('report-unreachable <id> <peer>');
        this.node(id!).rawNode.reportUnreachable(peer);
        return;
      }
      case 'report-snapshot': {
        const [id, peer, status] = positional(args);
        if (status !== 'finish' && status !== 'failure') throw new FixtureError('report-snapshot <id> <peer> finish|failure');
        this.node(id!).rawNode.reportSnapshot(peer!, status);
        return;
      }
      case 'isolate':
        for (const id of positional(args)) {
          for (const other of this.nodes.keys()) if (other !== id) this.cuts.add(linkKey(id, other));
        }
        return;
      case 'partition': {
        const groups = positional(args).map((g) => g.split(','));
        for (let i = 0; i < groups.length; i++) {
          for (let j = i + 1; j < groups.length; j++) {
            for (const a of groups[i]!) for (const b of groups[j]!) this.cuts.add(linkKey(a, b));
          }
        }
        return;
      }
      case 'heal':
        this.cuts.clear();
        return;
      case 'restart':
        return this.eachNode(args, (n) => this.restart(n));
      case 'log-level': {
        const lvl = positional(args)[0];
        if (lvl === undefined || !isLogLevel(lvl)) throw new FixtureError('log-level debug|info|warn|error|none');
        this.output.level = lvl;
        return;
      }
      default:
        throw new FixtureError(`unknown command ${cmd}`);
    }
  }

  private node(id: string): EnvNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new FixtureError(`no node ${id}`);
    return n;
  }

  private eachNode(args: CmdArg[], f: (n: EnvNode) => void): void {
    const ids = positional(args);
    if (ids.length === 0) throw new FixtureError('missing node id');
    for (const id of ids) f(this.node(id));
  }

  private tick(n: EnvNode, count: number): void {
    for (let i = 0; i < count; i++) n.rawNode.tick();
  }

  private newRawNode(n: Omit<EnvNode, 'rawNode'>): RawNode {
    const fixed = n.randomMode;
    const random = fixed === 'seeded' ? seededRandom(`interaction-${n.id}`) : () => fixed;
    return new RawNode({ ...n.opts, id: n.id, storage: n.storage, applied: n.applied, random, logger: this.output.logger() });
  }

  private addNodes(args: CmdArg[]): void {
    const count = int(positional(args)[0], 'number of nodes');
    const voters: string[] = [];
    const learners: string[] = [];
    let index: number | undefined;
    let content = '';
    let randomMode: 'seeded' | number = 0;
    const opts: NodeOptions = { electionTick: 10, heartbeatTick: 1 };
    for (const a of args) {
      if (a.vals.length === 0 && a.key === positional(args)[0]) continue;
      switch (a.key) {
        case 'voters':
          voters.push(...a.vals);
          break;
        case 'learners':
          learners.push(...a.vals);
          break;
        case 'index':
          index = int(a.vals[0], 'index');
          break;
        case 'content':
          content = a.vals[0] ?? '';
          break;
        case 'prevote':
          opts.preVote = bool(a);
          break;
        case 'checkquorum':
          opts.checkQuorum = bool(a);
          break;
        case 'max-size-per-msg':
          opts.maxSizePerMsg = int(a.vals[0], 'max-size-per-msg');
          break;
        case 'election-tick':
          opts.electionTick = int(a.vals[0], 'election-tick');
          break;
        case 'heartbeat-tick':
          opts.heartbeatTick = int(a.vals[0], 'heartbeat-tick');
          break;
        case 'inflight':
          opts.maxInflightMsgs = int(a.vals[0], 'inflight');
          break;
        case 'read-only': {
          const v = a.vals[0];
          if (v !== 'safe' && v !== 'lease-based') throw new FixtureError('read-only must be safe or lease-based');
          opts.readOnlyOption = (v === 'safe' ? 'safe' : 'leaseBased') satisfies ReadOnlyOption;
          break;
        }
        case 'random': {
          const v = a.vals[0];
          if (v === 'zero') randomMode = 0;
          else if (v === 'seeded') randomMode = 'seeded';
          else {
            const f = Number(v);
            if (!(f >= 0 && f < 1)) throw new FixtureError('random must be zero, seeded or a fraction in [0, 1)');
            randomMode = f;
          }
          break;
        }
        default:
          throw new FixtureError(`unknown add-nodes argument ${a.key}`);
      }
    }
    if (index !== undefined && index < 1) throw new FixtureError('index must be at least 1');
    for (let i = 0; i < count; i++) {
      const id = String(this.nodes.size + 1);
      const storage = new MemoryStorage();
      let applied = 0;
      let confState: ConfState = { voters: [], learners: [] };
      if (index !== undefined) {
        confState = { voters: voters.slice(), learners: learners.slice() };
        storage.applySnapshot({ data: utf8.encode(content), metadata: { index, term: 1, confState } });
        applied = index;
      }
      const partial = { id, storage, opts: { ...opts }, randomMode, applied, confState, confHistory: [{ index: applied, confState }] };
      const rawNode = this.newRawNode(partial);
      this.nodes.set(id, { ...partial, rawNode });
    }
  }

  private propose(args: CmdArg[]): void {
    const [id, data] = positional(args);
    if (data === undefined) throw new FixtureError('propose <id> <data>');
    try {
      this.node(id!).rawNode.propose(utf8.encode(data));
    } catch (err) {
      this.output.write(describeError(err));
    }
  }

  private proposeConfChange(args: CmdArg[]): void {
    const [id, change] = positional(args);
    const m = change === undefined ? null : /^([vlr])(.+)$/.exec(change);
    if (m === null) throw new FixtureError('propose-conf-change <id> v<node>|l<node>|r<node>');
    const type: ConfChange['type'] = m[1] === 'v' ? 'AddNode' : m[1] === 'l' ? 'AddLearnerNode' : 'RemoveNode';
    try {
      this.node(id!).rawNode.proposeConfChange({ type, nodeId: m[2]! });
    } catch (err) {
      this.output.write(describeError(err));
    }
  }

  private readIndex(args: CmdArg[]): void {
    const [id, ctx] = positional(args);
    if (ctx === undefined) throw new FixtureError('read-index <id> <ctx>');
    try {
      this.node(id!).rawNode.readIndex(utf8.encode(ctx));
    } catch (err) {
      this.output.write(describeError(err));
    }
  }

  private transferLeadership(args: CmdArg[]): void {
    const from = named(args, 'from')?.vals[0];
    const to = named(args, 'to')?.vals[0];
    if (from === undefined || to === undefined) throw new FixtureError('transfer-leadership from=<id> to=<id>');
    this.node(from).rawNode.transferLeader(to);
  }

  /** One Ready cycle: print, persist, send, apply, advance. */
  private processReady(n: EnvNode): void {
    const rn = n.rawNode;
    if (!rn.hasReady()) {
      this.output.write('<empty Ready>');
      return;
    }
    const rd = rn.ready();
    this.output.write(describeReady(rd));
    // 1. persist
    if (rd.snapshot !== undefined) {
      n.storage.applySnapshot(rd.snapshot);
      n.applied = rd.snapshot.metadata.index;
      n.confState = rd.snapshot.metadata.confState;
      n.confHistory = [{ index: n.applied, confState: n.confState }];
    }
    n.storage.append(rd.entries);
    if (rd.hardState !== undefined) n.storage.setHardState(rd.hardState);
    // 2. send
    for (const m of rd.messages) this.messages.push(m);
    // 3. apply
    for (const e of rd.committedEntries) {
      if (e.type === 'ConfChange') {
        const cc = decodeConfChangeData(e.data);
        if (cc === undefined) throw new Error(`node ${n.id} committed a malformed conf change at ${e.index}`);
        n.confState = rn.applyConfChange(cc);
        n.storage.setConfState(n.confState);
        n.confHistory.push({ index: e.index, confState: n.confState });
      }
      n.applied = e.index;
    }
    // 4. advance
    rn.advance();
  }

  private isCut(m: Message): boolean {
    return this.cuts.has(linkKey(m.from, m.to));
  }

  private deliverMsgsCmd(args: CmdArg[]): void {
    let type: MessageType | undefined;
    const t = named(args, 'type')?.vals[0];
    if (t !== undefined) {
      if (!KNOWN_TYPES.has(t)) throw new FixtureError(`unknown message type ${t}`);
      type = t as MessageType;
    }
    const drop = new Set(named(args, 'drop')?.vals ?? []);
    let ids = positional(args);
    if (ids.length === 0 && drop.size === 0) ids = [...this.nodes.keys()];
    let handled = 0;
    for (const id of ids) handled += this.deliverMsgs(id, type, false);
    for (const id of drop) handled += this.deliverMsgs(id, type, true);
    if (handled === 0) this.output.write('no messages');
  }

  /** Delivers (or drops) the queued messages to `id`; returns how many were handled. */
  private deliverMsgs(id: string, type: MessageType | undefined, drop: boolean): number {
    const mine: Message[] = [];
    const rest: Message[] = [];
    for (const m of this.messages) {
      if (m.to === id && (type === undefined || m.type === type)) mine.push(m);
      else rest.push(m);
    }
    this.messages = rest;
    for (const m of mine) {
      if (drop) {
        this.output.write(`dropped: ${describeMessage(m)}`);
        continue;
      }
      if (this.isCut(m)) {
        this.output.write(`dropped (partition): ${describeMessage(m)}`);
        continue;
      }
      this.output.write(describeMessage(m));
      this.node(id).rawNode.step(m);
    }
    return mine.length;
  }

  /** Ready cycles and deliveries until nothing is left (etcd's `Stabilize`). */
  private stabilize(ids: string[]): void {
    const which = ids.length > 0 ? ids.map((id) => this.node(id)) : [...this.nodes.values()];
    for (let round = 0; ; round++) {
      if (round > 1000) throw new Error('stabilize did not reach a fixed point in 1000 rounds');
      let done = true;
      for (const n of which) {
        if (!n.rawNode.hasReady()) continue;
        this.output.write(`> ${n.id} handling Ready`);
        this.output.indented(() => this.processReady(n));
        done = false;
      }
      for (const n of which) {
        if (!this.messages.some((m) => m.to === n.id)) continue;
        this.output.write(`> ${n.id} receiving messages`);
        this.output.indented(() => this.deliverMsgs(n.id, undefined, false));
        done = false;
      }
      if (done) return;
    }
  }

  private raftState(): void {
    for (const n of this.nodes.values()) {
      const st = n.rawNode.status();
      const member = st.config.voters.includes(n.id) ? 'Voter' : st.config.learners.includes(n.id) ? 'Learner' : 'Non-Member';
      this.output.write(
        `${n.id}: ${describeRole(st.softState.raftState)} (${member}) Term:${st.hardState.term} Lead:${describeId(st.softState.lead)} Commit:${st.hardState.commit} Applied:${st.applied}`,
      );
    }
  }

  private raftLog(n: EnvNode): void {
    const fi = n.storage.firstIndex();
    const li = n.storage.lastIndex();
    if (li < fi) {
      this.output.write(`log is empty: first index=${fi}, last index=${li}`);
      return;
    }
    for (const e of n.storage.entries(fi, li + 1, Infinity)) this.output.write(describeEntry(e));
  }

  private status(n: EnvNode): void {
    const st = n.rawNode.status();
    if (st.progress === undefined) {
      this.output.write(`${n.id} is not the leader: ${describeRole(st.softState.raftState)} Lead:${describeId(st.softState.lead)} ${describeHardState(st.hardState)}`);
      return;
    }
    for (const [id, pr] of Object.entries(st.progress).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      this.output.write(`${id}: ${describeProgress(pr)}`);
    }
    if (st.leadTransferee !== '') this.output.write(`leadTransferee: ${st.leadTransferee}`);
  }

  private compact(args: CmdArg[]): void {
    const [id, idx] = positional(args);
    const n = this.node(id!);
    const index = int(idx, 'compact index');
    if (index > n.applied) throw new FixtureError(`node ${n.id} has applied up to ${n.applied} only; cannot snapshot at ${index}`);
    let cs = n.confHistory[0]!.confState;
    for (const h of n.confHistory) if (h.index <= index) cs = h.confState;
    try {
      n.storage.createSnapshot(index, cs, utf8.encode(`snapshot@${index}`));
      n.storage.compact(index);
    } catch (err) {
      if (isQuorumError(err, ErrorCode.SNAPSHOT_OUT_OF_DATE) || isQuorumError(err, ErrorCode.LOG_COMPACTED)) {
        this.output.write(describeError(err));
        return;
      }
      throw err;
    }
    this.raftLog(n);
  }

  private restart(n: EnvNode): void {
    n.rawNode = this.newRawNode(n);
  }
}
