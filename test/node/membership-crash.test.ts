// Membership changes of RaftNode under crashes (Raft thesis §4, one server at
// a time): members a, b, c on a faulty MemoryNetwork (drops, delays,
// reordering) and a virtual clock, each on a CrashableLevel shared by its
// LevelLogStorage and a durable LogStateMachine, which syncs itself (on-demand
// snapshots, thesis §5.2) in most seeds. Clients propose to random members
// while the leader adds voters and learners under new ids (which start on
// empty storage, without peers, and catch up by log or snapshot), promotes
// learners and removes members (itself included); meanwhile members crash
// (every unsynced write is lost) and restart, one member at a time is cut off
// for a while, and the leader hands leadership to a random voter. Checked per
// seed:
// - a restarted member's applied log is a prefix of what it had applied;
// - the applied logs of the members not removed are prefixes of each other
//   after every crash;
// - after healing, a proposal commits, every member of the leader's
//   configuration applies it and their applied logs are equal, each command
//   once, every acknowledged proposal at the index it resolved with;
// - every member of the configuration reports the leader's members(), and
//   again after all of them crash and restart, with the same applied log;
// - no call fails with an unexpected error and no node emits 'error'.
//
// Seeds: QUORUMKV_MEMBER_SEED=<n> replays one seed; QUORUMKV_MEMBER_SEEDS=<n>
// runs seeds 1..n (default 50); QUORUMKV_MEMBER_TRACE=1 prints the changes,
// crashes and partitions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import { RaftNode, VirtualClock } from '../../src/node/index.js';
import type { ConfState } from '../../src/raftpb/index.js';
import { CrashableLevel, LevelLogStorage } from '../../src/storage/index.js';
import { MemoryNetwork } from '../../src/transport/index.js';
import { Rng, assertPrefixes, lostWithThePower, seededRandom } from './crash-sim.js';
import { LogStateMachine, clockScheduler, cmd } from './helpers.js';

const VIEW = { keyEncoding: 'view', valueEncoding: 'view' } as const;
const FOUNDERS = ['a', 'b', 'c'];
/** Ways a proposal or a membership change may fail while members crash, move and leave. */
const EXPECTED = [ErrorCode.TIMEOUT, ErrorCode.NODE_CLOSED, ErrorCode.PROPOSAL_DROPPED, ErrorCode.REMOVED, ErrorCode.NOT_LEADER, ErrorCode.CONF_CHANGE_PENDING, ErrorCode.UNHEALTHY, ErrorCode.LEARNER_NOT_READY];
const trace = process.env.QUORUMKV_MEMBER_TRACE !== undefined;

interface SimMember {
  id: string;
  db: CrashableLevel<Uint8Array, Uint8Array>;
  node: RaftNode<number> | undefined;
  sm: LogStateMachine | undefined;
  /** Applied log as last seen (kept while the member is down). */
  lastLog: string[];
  incarnation: number;
  /** Virtual time at which a crashed member restarts; Infinity for a new id whose addition has not resolved. */
  downUntil: number;
  removed: boolean;
}

interface SeedResult {
  acked: number;
  changes: number;
  joins: number;
  crashes: number;
  /** Snapshots installed from a leader by members whose state machine syncs itself (taken on demand). */
  onDemandInstalls: number;
}

const sortedConf = (c: ConfState): { voters: string[]; learners: string[] } => ({ voters: [...c.voters].sort(), learners: [...c.learners].sort() });

async function runMemberSeed(seed: number, chaosMs = 3_000): Promise<SeedResult> {
  const rng = new Rng(seed);
  const clock = new VirtualClock();
  const net = new MemoryNetwork({ seed, scheduler: clockScheduler(clock) });
  net.setDropRate(rng.float() * 0.05);
  net.setReorderRate(rng.float() * 0.05);
  net.setDelay({ minMs: 1, maxMs: rng.int(1, 15) });
  const snapshotEntries = rng.pick([10, 20, 50]);
  const snapshotCatchUpEntries = rng.pick([0, 3, 10]);
  // A state machine that syncs itself shares the CrashableLevel with the log:
  // the synced snapshot record written after sync() makes its writes durable.
  const synced = rng.float() < 0.7;
  const errors: string[] = [];
  const acks: { line: string; member: string }[] = [];
  const result: SeedResult = { acked: 0, changes: 0, joins: 0, crashes: 0, onDemandInstalls: 0 };
  let nextId = 0;
  const members = new Map<string, SimMember>();
  const add = (id: string): SimMember => {
    const m: SimMember = { id, db: new CrashableLevel<Uint8Array, Uint8Array>(VIEW), node: undefined, sm: undefined, lastLog: [], incarnation: 0, downUntil: 0, removed: false };
    members.set(id, m);
    return m;
  };
  for (const id of FOUNDERS) add(id);
  const fail = (what: string, err: unknown): void => {
    if (!EXPECTED.some((code) => isQuorumError(err, code))) errors.push(`${what}: ${(err as Error).message}`);
  };

  const boot = async (m: SimMember, bootstrap: boolean): Promise<void> => {
    if (m.db.status !== 'open') await m.db.open();
    const storage = await LevelLogStorage.open({ db: m.db.sublevel<Uint8Array, Uint8Array>('raft', VIEW) });
    const sm = await LogStateMachine.open(m.db.sublevel<Uint8Array, Uint8Array>('sm', VIEW), { synced });
    assertPrefixes(new Map([['before', m.lastLog], ['after', sm.applyLog]]), `restart of ${m.id}`);
    const transport = net.transport(m.id);
    for (const p of members.keys()) if (p !== m.id) transport.addPeer(p);
    m.incarnation++;
    const node = await RaftNode.create<number>({
      id: m.id,
      peers: bootstrap ? FOUNDERS : undefined,
      storage,
      transport,
      stateMachine: sm,
      clock,
      tickMs: 10,
      electionTicks: 10,
      heartbeatTicks: 1,
      snapshotEntries,
      snapshotCatchUpEntries,
      proposalTimeoutMs: 1_000,
      readTimeoutMs: 1_000,
      random: seededRandom(seed * 7919 + [...m.id].reduce((h, ch) => h * 31 + ch.charCodeAt(0), 0) * 31 + m.incarnation),
    });
    node.on('error', (e) => errors.push(`${m.id}: ${e.message}`));
    node.on('snapshot', (_index: number, source: string) => {
      if (synced && source === 'leader') result.onDemandInstalls++;
    });
    node.on('removed', () => {
      m.removed = true;
      if (trace) console.log(`t=${clock.now()} ${m.id} removed`);
    });
    if (node.removed) m.removed = true;
    if (trace) console.log(`t=${clock.now()} boot ${m.id}#${m.incarnation} applied=${node.appliedIndex} members=${JSON.stringify(node.members())}`);
    m.node = node;
    m.sm = sm;
  };

  /** Stops the node at once (close() never syncs) and loses every unsynced write. */
  const crash = async (m: SimMember): Promise<void> => {
    const node = m.node!;
    m.lastLog = [...m.sm!.applyLog];
    m.node = undefined;
    m.sm = undefined;
    await Promise.all([node.close().catch(lostWithThePower), m.db.crash()]);
    if (trace) console.log(`t=${clock.now()} crash ${m.id}#${m.incarnation}`);
    result.crashes++;
  };

  const logs = (): Map<string, string[]> => new Map([...members.values()].filter((m) => !m.removed).map((m) => [m.id, m.sm?.applyLog ?? m.lastLog]));
  const up = (): SimMember[] => [...members.values()].filter((m) => m.node !== undefined && !m.removed);
  const leaderOf = (): SimMember | undefined => up().find((m) => m.node!.isLeader);
  /** Closes the nodes of members that learnt of their removal. */
  const closeRemoved = async (): Promise<void> => {
    for (const m of members.values()) {
      if (m.removed && m.node !== undefined) {
        await m.node.close();
        m.node = undefined;
      }
    }
  };
  // A message storm makes virtual time crawl: fail instead of hanging.
  const budget = Date.now() + 30_000;
  const advance = async (): Promise<void> => {
    if (Date.now() > budget) assert.fail(`the seed ran out of real time at ${clock.now()} virtual ms`);
    await clock.advanceAsync(10);
  };

  /** One membership change through the current leader, if there is one. */
  const change = (): Promise<void> | undefined => {
    const leader = leaderOf();
    if (leader === undefined) return undefined;
    const node = leader.node!;
    const conf = node.members();
    const r = rng.float();
    let op: Promise<unknown>;
    let what: string;
    if (conf.learners.length > 0 && r < 0.5) {
      const l = conf.learners[0]!;
      what = `promote ${l}`;
      op = node.promoteLearner(l);
    } else if ((conf.voters.length >= 3 && r < 0.75) || conf.voters.length >= 4) {
      const victim = rng.pick([...conf.voters, ...conf.learners]);
      what = `remove ${victim}`;
      op = node.removeMember(victim);
    } else {
      const m = add(`n${nextId++}`);
      m.downUntil = Number.POSITIVE_INFINITY; // started once the addition resolves
      const learner = rng.float() < 0.5;
      what = `add ${learner ? 'learner' : 'voter'} ${m.id}`;
      op = (learner ? node.addLearner(m.id) : node.addVoter(m.id)).then(async () => {
        result.joins++;
        if (m.node === undefined && !m.removed) await boot(m, false);
      });
    }
    if (trace) console.log(`t=${clock.now()} ${leader.id}: ${what}`);
    return op.then(
      () => {
        result.changes++;
        if (trace) console.log(`t=${clock.now()} done ${what}`);
      },
      (err: unknown) => fail(what, err),
    );
  };

  try {
    for (const m of members.values()) await boot(m, true);

    // Clients: each proposes one command at a time to a random live member.
    let stopped = false;
    let inFlight = 0;
    for (let c = 0; c < 3; c++) {
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
        inFlight++;
        target.node!.propose(cmd(key, value)).then(
          (index) => acks.push({ line: `${index} ${key}=${value}`, member: target.id }),
          (err: unknown) => fail(`proposal ${key}=${value} to ${target.id}`, err),
        ).finally(() => {
          inFlight--;
          clock.setTimeout(step, rng.int(0, 20));
        });
      };
      clock.setTimeout(step, rng.int(0, 20));
    }

    let changing: Promise<void> | undefined;
    let nextChange = rng.int(200, 600);
    let nextCrash = rng.int(100, 500);
    while (clock.now() < chaosMs) {
      await advance();
      const now = clock.now();
      await closeRemoved();
      for (const m of members.values()) if (!m.removed && m.node === undefined && now >= m.downUntil) await boot(m, false);
      if (now >= nextChange && changing === undefined) {
        changing = change()?.finally(() => (changing = undefined));
        nextChange = now + rng.int(100, 600);
      }
      if (rng.float() < 0.003) {
        const leader = leaderOf();
        const to = leader?.node!.members().voters.filter((v) => v !== leader.id) ?? [];
        if (to.length > 0) {
          const target = rng.pick(to);
          if (trace) console.log(`t=${now} transfer ${leader!.id} -> ${target}`);
          leader!.node!.transferLeader(target).catch((err: unknown) => fail(`transfer to ${target}`, err));
        }
      }
      if (rng.float() < 0.004) {
        const cut = rng.pick([...members.keys()]);
        if (trace) console.log(`t=${now} isolate ${cut}`);
        net.isolate(cut);
        clock.setTimeout(() => net.heal(), rng.int(50, 600));
      }
      if (now >= nextCrash) {
        const live = up();
        if (live.length >= 2) {
          const victim = rng.pick(live);
          await crash(victim);
          victim.downUntil = now + rng.int(0, 400);
          assertPrefixes(logs(), `after crashing ${victim.id} at ${now} ms`);
        }
        nextCrash = now + rng.int(50, 500);
      }
      if (errors.length > 0) break;
    }

    // Heal: stop the clients and changes, restart every crashed member, clear faults.
    stopped = true;
    for (let t = 0; (inFlight > 0 || changing !== undefined) && t < 5_000; t += 10) await advance();
    assert.equal(inFlight, 0, 'every proposal settled');
    assert.equal(changing, undefined, 'the last membership change settled');
    for (const m of members.values()) if (!m.removed && m.node === undefined && m.downUntil !== Number.POSITIVE_INFINITY) await boot(m, false);
    net.resetFaults();
    assert.deepEqual(errors, [], 'no unexpected error');

    // A final proposal through the leader: once applied, so is everything before it.
    let barrier = 0;
    let proposing = false;
    for (const deadline = clock.now() + 10_000; barrier === 0 && clock.now() < deadline; ) {
      const leader = leaderOf();
      if (leader !== undefined && !proposing) {
        proposing = true;
        leader.node!.propose(cmd('barrier', String(clock.now())), { timeoutMs: 1_000 }).then(
          (i) => (barrier = i),
          () => (proposing = false),
        );
      }
      await advance();
      await closeRemoved();
    }
    assert.ok(barrier > 0, 'a proposal commits after healing');
    const leader = leaderOf()!;
    const conf = leader.node!.members();
    const confIds = [...conf.voters, ...conf.learners];
    // a new id whose addition timed out but was applied is started now
    for (const id of confIds) {
      const m = members.get(id)!;
      if (m.node === undefined) await boot(m, false);
    }
    const inConf = (): SimMember[] => confIds.map((id) => members.get(id)!);

    /** Waits until every member of `conf` applied `index`, then checks their applied logs and members(). */
    const checkConverged = async (index: number, when: string): Promise<string[]> => {
      for (let t = 0; t < 10_000 && !inConf().every((m) => m.node !== undefined && m.node.appliedIndex >= index); t += 10) await advance();
      for (const m of inConf()) await m.node?.idle();
      for (const m of inConf()) {
        assert.ok(m.node !== undefined, `${m.id} of the configuration is running ${when}`);
        assert.ok(m.node.appliedIndex >= index, `${m.id} applied up to ${index} ${when} (at ${m.node.appliedIndex})`);
        assert.deepEqual(sortedConf(m.node.members()), sortedConf(conf), `${m.id}'s members() equal the leader's ${when}`);
      }
      const final = new Map(inConf().map((m) => [m.id, m.sm!.applyLog]));
      assertPrefixes(final, `${when}`);
      const reference = final.get(leader.id)!;
      for (const [id, l] of final) assert.equal(l.length, reference.length, `${id} applied as many entries as ${leader.id} ${when}`);
      return reference;
    };

    const reference = await checkConverged(barrier, 'after healing');
    const seen = new Map<string, number>();
    for (const line of reference) {
      const c = line.slice(line.indexOf(' ') + 1);
      seen.set(c, (seen.get(c) ?? 0) + 1);
    }
    for (const [c, n] of seen) assert.equal(n, 1, `${c} applied ${n} times`);
    const lines = new Set(reference);
    for (const a of acks) assert.ok(lines.has(a.line), `acknowledged proposal ${a.line} (through ${a.member}) is on the applied log`);

    // Every member of the configuration crashes and restarts from what it synced.
    for (const m of inConf()) await crash(m);
    for (const m of inConf()) await boot(m, false);
    const again = await checkConverged(barrier, 'after a restart of every member');
    assert.deepEqual(again, reference, 'the applied log is the same after the restart');
    assert.deepEqual(errors, [], 'no unexpected error');
    result.acked = acks.length;
    return result;
  } finally {
    for (const m of members.values()) {
      if (m.node !== undefined) await m.node.close();
      if (m.db.status === 'open') await m.db.close();
    }
  }
}

const single = process.env.QUORUMKV_MEMBER_SEED;
const count = Number(process.env.QUORUMKV_MEMBER_SEEDS ?? 50);
const seeds = single !== undefined ? [Number(single)] : Array.from({ length: count }, (_, i) => i + 1);

test(`membership changes under crashes: applied logs and members() agree, acknowledged proposals applied once (${seeds.length} seeds)`, async () => {
  const total: SeedResult = { acked: 0, changes: 0, joins: 0, crashes: 0, onDemandInstalls: 0 };
  const started = Date.now();
  for (const seed of seeds) {
    let r: SeedResult;
    try {
      r = await runMemberSeed(seed);
    } catch (err) {
      console.error(`membership crash test failed at seed ${seed}; replay with QUORUMKV_MEMBER_SEED=${seed}`);
      throw err;
    }
    for (const k of Object.keys(total) as (keyof SeedResult)[]) total[k] += r[k];
  }
  console.log(
    `membership crash test: ${seeds.length} seeds (${seeds[0]}..${seeds[seeds.length - 1]}), ${total.acked} acknowledged proposals, ${total.changes} membership changes (${total.joins} new ids), ${total.crashes} crashes, ${total.onDemandInstalls} snapshots taken on demand installed, ${Date.now() - started} ms`,
  );
  assert.ok(total.acked > seeds.length * 10, 'the clients got proposals through');
  assert.ok(total.changes >= seeds.length, 'the membership changed');
  assert.ok(total.crashes >= seeds.length, 'members crashed');
});
