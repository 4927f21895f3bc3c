// The crash simulation behind crash.test.ts: one seed, three RaftNodes on a
// faulty MemoryNetwork and a VirtualClock, each on a CrashableLevel shared by
// its LevelLogStorage and LogStateMachine (sublevels 'raft' and 'sm').
import assert from 'node:assert/strict';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import { RaftNode, VirtualClock } from '../../src/node/index.js';
import type { Message } from '../../src/raftpb/index.js';
import { CrashableLevel, LevelLogStorage } from '../../src/storage/index.js';
import { MemoryNetwork, type Transport } from '../../src/transport/index.js';
import { LogStateMachine, clockScheduler, cmd } from './helpers.js';

const IDS = ['a', 'b', 'c'];
const VIEW = { keyEncoding: 'view', valueEncoding: 'view' } as const;
/**
 * Messages a seed may send (a healthy one sends a few thousand). A follower
 * that lost entries it acknowledged is probed at the same index forever, as
 * in etcd; with short delays that storm would stall virtual time.
 */
const MAX_MESSAGES = 50_000;

/** A seeded source of the simulation's choices (pure-rand xoroshiro128+). */
export class Rng {
  private readonly g: RandomGenerator;
  constructor(seed: number) {
    this.g = xoroshiro128plus(seed);
  }
  /** Uniform integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return uniformInt(this.g, lo, hi);
  }
  /** Uniform float in [0, 1). */
  float(): number {
    return uniformFloat64(this.g);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(0, xs.length - 1)]!;
  }
}

/** A deterministic uniform [0, 1) source for a node's election jitter (mulberry32). */
export function seededRandom(seed: number): () => number {
  let s = seed | 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t ^= t + Math.imul(t ^ (t >>> 7), 61 | t);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Records every granted vote a node sends: `(voter, term) -> candidate`, and
 * any second candidate granted in the same term by the same voter.
 */
export class VoteLedger {
  private readonly granted = new Map<string, string>();
  readonly violations: string[] = [];
  count = 0;

  record(m: Message): void {
    if (m.type !== 'MsgVoteResp' || m.reject) return;
    this.count++;
    const k = `${m.from}@${m.term}`;
    const prev = this.granted.get(k);
    if (prev === undefined) this.granted.set(k, m.to);
    else if (prev !== m.to) this.violations.push(`${m.from} voted for ${prev} and for ${m.to} in term ${m.term}`);
  }

  /**
   * Wraps a transport so that every granted MsgVoteResp it sends is recorded;
   * `afterSend` runs right after each batch went out.
   */
  wrap(t: Transport, afterSend?: (msgs: Message[]) => void): Transport {
    return {
      id: t.id,
      start: (h) => t.start(h),
      send: (msgs) => {
        for (const m of msgs) this.record(m);
        t.send(msgs);
        afterSend?.(msgs);
      },
      addPeer: (id, address) => t.addPeer(id, address),
      removePeer: (id) => t.removePeer(id),
      close: () => t.close(),
    };
  }
}

type Db = CrashableLevel<Uint8Array, Uint8Array>;

interface SimMember {
  id: string;
  db: Db;
  node: RaftNode<number> | undefined;
  sm: LogStateMachine | undefined;
  /** Applied log as last seen (kept while the member is down). */
  lastLog: string[];
  incarnation: number;
  downUntil: number;
  /**
   * Crash right after this member next sends a message of this type (any
   * type for `'any'`): a granted vote, an append acknowledgement, an append.
   */
  armed: 'any' | 'MsgVoteResp' | 'MsgAppResp' | 'MsgApp' | undefined;
  /** A crash in progress (started from inside a send). */
  crashing: Promise<void> | undefined;
  /** What the current run has vouched for in messages, checked against what survives a crash. */
  sent: SentFacts;
}

/**
 * What a member's messages claimed, which must be durable before they were
 * sent (Raft Figure 2): its term, its vote, and the log it acknowledged.
 */
interface SentFacts {
  /** Highest term of any message other than MsgPreVote/MsgPreVoteResp (those carry a future term). */
  maxTerm: number;
  /** The last vote granted: (term, candidate). */
  vote: { term: number; to: string } | undefined;
  /** The log vouched for in the latest term: the last index acknowledged in a MsgAppResp. */
  log: { term: number; index: number } | undefined;
}

function noFacts(): SentFacts {
  return { maxTerm: 0, vote: undefined, log: undefined };
}

function noteSent(f: SentFacts, msgs: readonly Message[]): void {
  for (const m of msgs) {
    if (m.type !== 'MsgPreVote' && m.type !== 'MsgPreVoteResp') f.maxTerm = Math.max(f.maxTerm, m.term);
    if (m.type === 'MsgVoteResp' && !m.reject) f.vote = { term: m.term, to: m.to };
    if (m.type === 'MsgAppResp' && !m.reject) {
      // A follower's log as of now (a stale acknowledgement only lowers the bound).
      f.log = { term: m.term, index: m.index };
    }
    // A leader's MsgApp vouches for nothing: it may be sent while the leader
    // writes the same entries (Raft thesis §10.2.1), so a leader that crashes
    // meanwhile legitimately restarts with a shorter log in the same term.
  }
}

/**
 * After a restart: the term, vote and log a member's messages vouched for
 * survived the crash. Within one term a log is never legitimately cut below
 * what was acknowledged (a new leader's truncation comes with a higher term).
 */
function checkSurvived(id: string, f: SentFacts, st: { term: number; vote: string; lastIndex: number }): void {
  assert.ok(st.term >= f.maxTerm, `${id} restarted at term ${st.term} after sending messages of term ${f.maxTerm}`);
  if (f.vote !== undefined && st.term === f.vote.term) {
    assert.equal(st.vote, f.vote.to, `${id} restarted with vote '${st.vote}' in term ${st.term} after granting its vote to ${f.vote.to}`);
  }
  if (f.log !== undefined && st.term === f.log.term) {
    assert.ok(st.lastIndex >= f.log.index, `${id} restarted with its log ending at ${st.lastIndex} after vouching for index ${f.log.index} in term ${f.log.term}`);
  }
}

interface Ack {
  line: string;
  member: string;
}

export interface CrashSeedResult {
  acked: number;
  crashes: number;
  snapshots: number;
  votes: number;
  messages: number;
}

/**
 * For the close() of a member whose database crashes under it: its last
 * write fails with `QUORUMKV_STORAGE_CLOSED` (the power is gone); any other
 * failure is thrown again.
 */
export function lostWithThePower(err: unknown): void {
  if (!isQuorumError(err, ErrorCode.STORAGE_CLOSED)) throw err;
}

/** Throws unless `a` is a prefix of `b` or `b` a prefix of `a`. */
export function assertPrefixes(logs: Map<string, string[]>, when: string): void {
  const entries = [...logs];
  for (let i = 0; i < entries.length; i++) {
    for (let j = i + 1; j < entries.length; j++) {
      const [ia, a] = entries[i]!;
      const [ib, b] = entries[j]!;
      const n = Math.min(a.length, b.length);
      for (let k = 0; k < n; k++) {
        if (a[k] !== b[k]) {
          assert.fail(`${when}: applied logs of ${ia} and ${ib} diverge at position ${k}: ${a[k]} vs ${b[k]}`);
        }
      }
    }
  }
}

/**
 * Runs one seed: about `chaosMs` virtual ms of proposals, faults and crashes,
 * then heals, restarts everyone, waits for catch-up and checks the invariants.
 */
export async function runCrashSeed(seed: number, chaosMs = 2_000): Promise<CrashSeedResult> {
  const rng = new Rng(seed);
  const clock = new VirtualClock();
  const net = new MemoryNetwork({ seed, scheduler: clockScheduler(clock) });
  net.setDropRate(rng.float() * 0.05);
  net.setReorderRate(rng.float() * 0.05);
  // At least 1 ms: every delivery goes through the virtual clock, so a message
  // storm cannot starve it (a bug shows up as a failed check, not a hang).
  net.setDelay({ minMs: 1, maxMs: rng.int(1, 15) });
  const snapshotEntries = rng.pick([20, 50, 1_000_000]);
  const votes = new VoteLedger();
  const errors: string[] = [];
  const acks: Ack[] = [];
  let crashes = 0;
  let snapshots = 0;
  let sent = 0;

  const members = new Map<string, SimMember>(
    IDS.map((id) => [id, { id, db: new CrashableLevel<Uint8Array, Uint8Array>(VIEW), node: undefined, sm: undefined, lastLog: [], incarnation: 0, downUntil: 0, armed: undefined, crashing: undefined, sent: noFacts() }]),
  );

  const boot = async (m: SimMember, bootstrap: boolean): Promise<void> => {
    if (m.db.status !== 'open') await m.db.open();
    const storage = await LevelLogStorage.open({ db: m.db.sublevel<Uint8Array, Uint8Array>('raft', VIEW) });
    const sm = await LogStateMachine.open(m.db.sublevel<Uint8Array, Uint8Array>('sm', VIEW));
    // The applied log that survived must be a prefix of what was applied before the crash.
    assertPrefixes(new Map([['before', m.lastLog], ['after', sm.applyLog]]), `restart of ${m.id}`);
    const transport = votes.wrap(net.transport(m.id), (msgs) => {
      sent += msgs.length;
      noteSent(m.sent, msgs);
      if (sent > MAX_MESSAGES) net.isolate(m.id); // stop a storm so the check below can report it
      const trigger = m.armed;
      if (trigger === undefined || m.crashing !== undefined || m.node === undefined) return;
      if (trigger === 'any' || msgs.some((x) => x.type === trigger && !(x.type === 'MsgVoteResp' && x.reject))) m.crashing = crash(m);
    });
    for (const p of IDS) if (p !== m.id) transport.addPeer(p);
    m.incarnation++;
    // The new run's messages start a new record (create() may already send some).
    const facts = m.sent;
    m.sent = noFacts();
    const node = await RaftNode.create<number>({
      id: m.id,
      peers: bootstrap ? IDS : undefined,
      storage,
      transport,
      stateMachine: sm,
      clock,
      tickMs: 10,
      electionTicks: 10,
      heartbeatTicks: 1,
      snapshotEntries,
      snapshotCatchUpEntries: 10,
      proposalTimeoutMs: 1_000,
      readTimeoutMs: 1_000,
      random: seededRandom(seed * 7919 + m.id.charCodeAt(0) * 31 + m.incarnation),
    });
    checkSurvived(m.id, facts, node.status());
    node.on('error', (e) => errors.push(`${m.id}: ${e.message}`));
    node.on('snapshot', () => snapshots++);
    m.node = node;
    m.sm = sm;
  };

  /**
   * Crashes a member: the node stops at once (close() never syncs: timers,
   * transport and pending calls stop synchronously) and the database loses
   * every unsynced write. Called either between two steps of virtual time or
   * from inside a send, right after a Ready's messages left: a write the node
   * had not finished before sending is then lost.
   */
  const crash = async (m: SimMember): Promise<void> => {
    const node = m.node!;
    m.armed = undefined;
    m.lastLog = [...m.sm!.applyLog];
    m.node = undefined;
    m.sm = undefined;
    // close() reports the failure of its last write (the commit index left
    // unsaved), which the database, crashing meanwhile, refuses: the power is gone
    const closing = node.close().catch(lostWithThePower);
    const crashing = m.db.crash();
    await Promise.all([closing, crashing]);
    if (process.env.QUORUMKV_NODE_TRACE) console.log(`t=${clock.now()} crash ${m.id}#${m.incarnation}`);
    crashes++;
  };

  const logs = (): Map<string, string[]> => new Map([...members.values()].map((m) => [m.id, m.sm?.applyLog ?? m.lastLog]));
  const up = (): SimMember[] => [...members.values()].filter((m) => m.node !== undefined);

  // A message storm (for instance a follower that lost entries it acknowledged,
  // probed forever) makes virtual time crawl: fail instead of hanging.
  const budget = Date.now() + 30_000;
  const advance = async (): Promise<void> => {
    if (sent > MAX_MESSAGES) assert.fail(`more than ${MAX_MESSAGES} messages sent by ${clock.now()} virtual ms (message storm)`);
    if (Date.now() > budget) assert.fail(`the seed ran out of real time at ${clock.now()} virtual ms (message storm?)`);
    await clock.advanceAsync(10);
  };

  try {
    for (const m of members.values()) await boot(m, true);

    // Clients: each proposes one command at a time to a random live member.
    let stopped = false;
    let inFlight = 0;
    const clients = 4;
    const clientLoop = (c: number): void => {
      let n = 0;
      const step = (): void => {
        if (stopped) return;
        const live = up();
        if (live.length === 0) {
          clock.setTimeout(step, 10);
          return;
        }
        const target = rng.pick(live);
        const key = `c${c}`;
        const value = String(n++);
        if (process.env.QUORUMKV_NODE_TRACE) console.log(`t=${clock.now()} propose ${key}=${value} -> ${target.id}#${target.incarnation}`);
        inFlight++;
        target.node!.propose(cmd(key, value)).then(
          (index) => acks.push({ line: `${index} ${key}=${value}`, member: target.id }),
          (err: unknown) => {
            const ok =
              isQuorumError(err, ErrorCode.TIMEOUT) || isQuorumError(err, ErrorCode.NODE_CLOSED) || isQuorumError(err, ErrorCode.PROPOSAL_DROPPED);
            if (!ok) errors.push(`proposal ${key}=${value} to ${target.id}: ${(err as Error).message}`);
          },
        ).finally(() => {
          inFlight--;
          clock.setTimeout(step, rng.int(0, 20));
        });
      };
      clock.setTimeout(step, rng.int(0, 20));
    };
    for (let c = 0; c < clients; c++) clientLoop(c);

    // Chaos: crash a random live member now and then; restart it after a while.
    let nextCrash = rng.int(100, 500);
    while (clock.now() < chaosMs) {
      await advance();
      const now = clock.now();
      for (const m of members.values()) {
        if (m.crashing !== undefined) {
          await m.crashing;
          m.crashing = undefined;
          m.downUntil = now + rng.int(0, 100); // back soon: it may be asked to vote again in the same term
          assertPrefixes(logs(), `after crashing ${m.id} at ${now} ms`);
        } else if (m.node === undefined && now >= m.downUntil) {
          await boot(m, false);
        }
      }
      if (now >= nextCrash) {
        const live = up().filter((m) => m.armed === undefined);
        if (live.length >= 2) {
          const victim = rng.pick(live);
          if (rng.float() < 0.6) {
            victim.armed = rng.pick(['any', 'MsgVoteResp', 'MsgAppResp', 'MsgApp'] as const);
          } else {
            await crash(victim);
            victim.downUntil = now + rng.int(0, 400);
            assertPrefixes(logs(), `after crashing ${victim.id} at ${now} ms`);
          }
        }
        nextCrash = now + rng.int(50, 500);
      }
      if (errors.length > 0) break;
    }

    // Heal: stop the clients, let their proposals settle, restart everyone, clear faults.
    stopped = true;
    for (let t = 0; inFlight > 0 && t < 5_000; t += 10) await advance();
    assert.equal(inFlight, 0, 'every proposal settled');
    for (const m of members.values()) {
      m.armed = undefined;
      if (m.crashing !== undefined) await m.crashing;
      m.crashing = undefined;
      if (m.node === undefined) await boot(m, false);
    }
    net.resetFaults();
    assert.deepEqual(errors, [], 'no unexpected error');

    // A final proposal through the leader: once it is applied everywhere, so is everything before it.
    let barrier = 0;
    let proposing = false;
    for (const deadline = clock.now() + 10_000; barrier === 0 && clock.now() < deadline; ) {
      const leader = up().find((m) => m.node!.isLeader);
      if (leader !== undefined && !proposing) {
        proposing = true;
        leader.node!.propose(cmd('barrier', String(clock.now())), { timeoutMs: 1_000 }).then(
          (i) => (barrier = i),
          () => (proposing = false),
        );
      }
      await advance();
    }
    assert.ok(barrier > 0, 'a proposal commits after healing');
    for (let t = 0; t < 5_000 && !up().every((m) => m.node!.appliedIndex >= barrier); t += 10) await advance();
    for (const m of up()) await m.node!.idle();
    for (const m of up()) assert.ok(m.node!.appliedIndex >= barrier, `${m.id} applied up to ${barrier} (at ${m.node!.appliedIndex})`);

    // Every member applied the same entries in the same order.
    const final = logs();
    assertPrefixes(final, 'after catch-up');
    const reference = final.get('a')!;
    for (const [id, l] of final) assert.equal(l.length, reference.length, `${id} applied as many entries as a`);

    // Each command appears once, and every acknowledged one at the index its promise resolved with.
    const seen = new Map<string, number>();
    for (const line of reference) {
      const cmdText = line.slice(line.indexOf(' ') + 1);
      seen.set(cmdText, (seen.get(cmdText) ?? 0) + 1);
    }
    for (const [c, n] of seen) assert.equal(n, 1, `${c} applied ${n} times`);
    const lines = new Set(reference);
    for (const a of acks) {
      if (lines.has(a.line)) continue;
      const cmdText = a.line.slice(a.line.indexOf(' ') + 1);
      const found = reference.find((l) => l.endsWith(` ${cmdText}`));
      const atIndex = reference.find((l) => l.startsWith(`${a.line.split(' ')[0]} `));
      assert.fail(`acknowledged proposal ${a.line} (through ${a.member}) is not on the applied logs (command applied as: ${found ?? 'nothing'}; index holds: ${atIndex ?? 'no normal entry'})`);
    }

    assert.deepEqual(votes.violations, [], 'no member voted for two candidates in one term');
    assert.deepEqual(errors, [], 'no unexpected error');
    return { acked: acks.length, crashes, snapshots, votes: votes.count, messages: sent };
  } finally {
    for (const m of members.values()) {
      if (m.crashing !== undefined) await m.crashing.catch(() => undefined);
      if (m.node !== undefined) await m.node.close();
      if (m.db.status === 'open') await m.db.close();
    }
  }
}

/**
 * Runs {@link runCrashSeed} over `seeds` and sums what they did; a failing
 * seed prints the command that replays it and throws. Called in a worker
 * by test/node/crash.test.ts.
 */
export async function runCrashSeeds(seeds: readonly number[]): Promise<{ acked: number; crashes: number; snapshots: number }> {
  const total = { acked: 0, crashes: 0, snapshots: 0 };
  for (const seed of seeds) {
    let r;
    try {
      r = await runCrashSeed(seed);
    } catch (err) {
      console.error(`crash test failed at seed ${seed}; replay with QUORUMKV_NODE_SEED=${seed}`);
      throw err;
    }
    total.acked += r.acked;
    total.crashes += r.crashes;
    total.snapshots += r.snapshots;
  }
  return total;
}
