// Membership changes of KvNode under crashes: members a, b, c on a lossy
// MemoryNetwork and a virtual clock, each on a CrashableLevel (every unsynced
// write is lost at a crash), with syncStore on or off by seed. Clients put,
// delete, grant and revoke leases (short ones expire), and compact (some
// physically) through random members, while the leader adds members under
// new ids (started on empty storage with `join: true`, caught up by log or by
// a snapshot taken on demand), promotes learners, removes members (itself
// included) and moves leadership; members crash and restart, and one member
// at a time is cut off for a while. Checked per seed:
// - after healing, a write commits, and every member of the leader's
//   configuration reaches the same revision, store hash (keys, values, lease
//   attachments, the lease table and the compaction revision), compaction
//   revision, applied index and members();
// - the same again after all of them crash and restart: the revision, hash,
//   compaction revision and members() they had before;
// - no request or change fails with an unexpected error and no member emits
//   'error'.
//
// Seeds: QUORUMKV_KV_MEMBER_SEED=<n> replays one seed;
// QUORUMKV_KV_MEMBER_SEEDS=<n> runs seeds 1..n (default 20);
// QUORUMKV_KV_MEMBER_TRACE=1 prints the changes, crashes and partitions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import { VirtualClock } from '../../src/node/index.js';
import type { ConfState } from '../../src/raftpb/index.js';
import { KvNode } from '../../src/server/index.js';
import { CrashableLevel } from '../../src/storage/index.js';
import { MemoryNetwork } from '../../src/transport/index.js';
import { Rng } from '../node/crash-sim.js';
import { clockScheduler, electionJitter } from '../node/helpers.js';

const VIEW = { keyEncoding: 'view', valueEncoding: 'view' } as const;
const FOUNDERS = ['a', 'b', 'c'];
/**
 * Ways any request or membership change may fail while messages are dropped,
 * members are cut off, leadership moves and the configuration changes.
 */
const EXPECTED = [
  ErrorCode.TIMEOUT,
  ErrorCode.PROPOSAL_DROPPED,
  ErrorCode.NO_LEADER,
  ErrorCode.NOT_LEADER,
  ErrorCode.CONF_CHANGE_PENDING,
  ErrorCode.UNHEALTHY,
  ErrorCode.LEARNER_NOT_READY,
  ErrorCode.LEASE_NOT_FOUND,
  ErrorCode.REVISION_COMPACTED,
  ErrorCode.FUTURE_REVISION,
];
/** Further ways, only for a request to a member that crashed or was removed while it was in flight. */
const EXPECTED_IF_STOPPED = [ErrorCode.NODE_CLOSED, ErrorCode.REMOVED, ErrorCode.STORAGE_IO];
const trace = process.env.QUORUMKV_KV_MEMBER_TRACE !== undefined;

interface SimMember {
  id: string;
  db: CrashableLevel<Uint8Array, Uint8Array>;
  node: KvNode | undefined;
  incarnation: number;
  /** Virtual time at which a crashed member restarts; Infinity for a new id whose addition has not resolved. */
  downUntil: number;
  removed: boolean;
  /** Started with `join: true` (a new id). */
  join: boolean;
}

/** What each member of the configuration must agree on at the end. */
interface View {
  revision: number;
  hash: number;
  compactRevision: number;
  applied: number;
  members: { voters: string[]; learners: string[] };
}

const sortedConf = (c: ConfState): View['members'] => ({ voters: [...c.voters].sort(), learners: [...c.learners].sort() });

interface SeedResult {
  writes: number;
  changes: number;
  joins: number;
  crashes: number;
  compactions: number;
}

async function runKvMemberSeed(seed: number, chaosMs = 3_000): Promise<SeedResult> {
  const rng = new Rng(seed);
  const clock = new VirtualClock();
  const net = new MemoryNetwork({ seed, scheduler: clockScheduler(clock) });
  net.setDropRate(rng.float() * 0.03);
  net.setDelay({ minMs: 1, maxMs: rng.int(1, 10) });
  const syncStore = rng.float() < 0.5;
  const snapshotCatchUpEntries = rng.pick([0, 3]);
  const errors: string[] = [];
  const result: SeedResult = { writes: 0, changes: 0, joins: 0, crashes: 0, compactions: 0 };
  const members = new Map<string, SimMember>();
  let nextId = 0;
  const add = (id: string, join: boolean): SimMember => {
    const m: SimMember = { id, db: new CrashableLevel<Uint8Array, Uint8Array>(VIEW), node: undefined, incarnation: 0, downUntil: 0, removed: false, join };
    members.set(id, m);
    return m;
  };
  for (const id of FOUNDERS) add(id, false);
  /** Nodes whose database crashed under them, and nodes closed after their member learnt of its removal. */
  const stoppedNodes = new WeakSet<KvNode>();
  /** Records an unexpected failure of a request or change sent to `node`. */
  const fail = (what: string, node: KvNode, err: unknown): void => {
    const stopped = stoppedNodes.has(node) || node.raft.removed;
    const code = (err as { code?: string }).code ?? 'none';
    if (EXPECTED.some((c) => isQuorumError(err, c))) return;
    if (stopped && EXPECTED_IF_STOPPED.some((c) => isQuorumError(err, c))) return;
    errors.push(`${what}${stopped ? ' (its member stopped meanwhile)' : ''}: ${code}: ${(err as Error).message}`);
  };

  const boot = async (m: SimMember): Promise<void> => {
    if (m.db.status !== 'open') await m.db.open();
    m.incarnation++;
    const node = await KvNode.open({
      id: m.id,
      members: m.join ? [...members.keys()] : FOUNDERS,
      join: m.join,
      transport: net.transport(m.id),
      db: m.db,
      clock,
      tickMs: 10,
      electionTicks: 10,
      requestTimeoutMs: 1_000,
      leaseCheckMs: 50,
      snapshotEntries: 15,
      snapshotCatchUpEntries,
      syncStore,
      random: electionJitter(seed * 7919 + [...m.id].reduce((h, ch) => h * 31 + ch.charCodeAt(0), 0) * 13 + m.incarnation),
    });
    node.on('error', (e) => {
      const stopped = stoppedNodes.has(node);
      const code = (e as { code?: string }).code ?? 'none';
      // the database crashed under it: its next write fails and it stops
      if (stopped && [ErrorCode.STORAGE_IO, ErrorCode.STORAGE_CLOSED].some((c) => isQuorumError(e, c))) return;
      errors.push(`${m.id}#${m.incarnation} emitted 'error'${stopped ? ' after it crashed' : ''}: ${code}: ${e.message}`);
    });
    node.raft.on('removed', () => {
      m.removed = true;
    });
    if (node.raft.removed) m.removed = true;
    m.node = node;
    if (trace) console.log(`t=${clock.now()} boot ${m.id}#${m.incarnation} applied=${node.raft.appliedIndex} members=${JSON.stringify(node.members())}`);
  };
  /** The database loses its unsynced writes at once; the node stops after. */
  const crash = async (m: SimMember): Promise<void> => {
    const node = m.node!;
    m.node = undefined;
    stoppedNodes.add(node);
    await m.db.crash();
    await node.close().catch(() => undefined);
    result.crashes++;
    if (trace) console.log(`t=${clock.now()} crash ${m.id}#${m.incarnation}`);
  };
  const up = (): SimMember[] => [...members.values()].filter((m) => m.node !== undefined && !m.removed);
  const leaderOf = (): SimMember | undefined => up().find((m) => m.node!.raft.isLeader);
  const closeRemoved = async (): Promise<void> => {
    for (const m of members.values()) {
      if (m.removed && m.node !== undefined) {
        stoppedNodes.add(m.node);
        await m.node.close();
        m.node = undefined;
      }
    }
  };
  const budget = Date.now() + 30_000;
  const advance = async (): Promise<void> => {
    if (Date.now() > budget) assert.fail(`the seed ran out of real time at ${clock.now()} virtual ms`);
    await clock.advanceAsync(10);
  };

  /** One membership change or leadership move through the current leader, if there is one. */
  const change = (): Promise<void> | undefined => {
    const leader = leaderOf();
    if (leader === undefined) return undefined;
    const node = leader.node!;
    const conf = node.members();
    const r = rng.float();
    let op: Promise<unknown>;
    let what: string;
    if (conf.learners.length > 0 && r < 0.5) {
      what = `promote ${conf.learners[0]}`;
      op = node.promoteMember(conf.learners[0]!);
    } else if ((conf.voters.length >= 3 && r < 0.75) || conf.voters.length >= 4) {
      const victim = rng.pick([...conf.voters, ...conf.learners]);
      what = `remove ${victim}`;
      op = node.removeMember(victim);
    } else if (r < 0.85) {
      const to = rng.pick(conf.voters);
      what = `move leadership to ${to}`;
      op = node.moveLeader(to);
    } else {
      const m = add(`n${nextId++}`, true);
      m.downUntil = Number.POSITIVE_INFINITY; // started once the addition resolves
      // etcd allows one learner at a time (maxLearners)
      const learner = rng.float() < 0.5 && conf.learners.length === 0;
      what = `add ${learner ? 'learner' : 'voter'} ${m.id}`;
      op = node.addMember(m.id, undefined, { learner }).then(() => {
        result.joins++;
        m.downUntil = 0;
      });
    }
    if (trace) console.log(`t=${clock.now()} ${leader.id}: ${what}`);
    return op.then(
      () => {
        result.changes++;
        if (trace) console.log(`t=${clock.now()} done ${what}`);
      },
      (err: unknown) => fail(what, node, err),
    );
  };

  try {
    for (const m of members.values()) await boot(m);

    // Clients: each sends one request at a time to a random live member.
    let stopped = false;
    const pending = new Set<string>();
    const leases: number[] = [];
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
        const node = target.node!;
        const r = rng.float();
        let what: string;
        let p: Promise<unknown>;
        if (r < 0.05) {
          const ttl = rng.pick([1, 2, 100]);
          what = `leaseGrant ${ttl}`;
          p = node.leaseGrant(ttl).then((l) => leases.push(l.id));
        } else if (r < 0.08 && leases.length > 0) {
          const id = rng.pick(leases);
          what = `leaseRevoke ${id}`;
          p = node.leaseRevoke(id);
        } else if (r < 0.1) {
          const rev = Math.max(1, node.status().header.revision - rng.int(0, 10));
          const physical = rng.float() < 0.5;
          what = `compact ${rev}`;
          p = node.compact(rev, { physical }).then(() => result.compactions++);
        } else if (r < 0.3 && leases.length > 0) {
          const key = `k${c}-${n++ % 5}`;
          what = `put ${key} with a lease`;
          p = node.put(key, 'v', { lease: rng.pick(leases) }).then(() => result.writes++);
        } else if (r < 0.4) {
          const key = `k${c}-${rng.int(0, 4)}`;
          what = `delete ${key}`;
          p = node.delete(key).then(() => result.writes++);
        } else {
          const key = `k${c}-${n++ % 5}`;
          what = `put ${key}`;
          p = node.put(key, `v${n}`).then(() => result.writes++);
        }
        const label = `${what} to ${target.id}#${target.incarnation} at ${clock.now()} ms`;
        pending.add(label);
        p.catch((err: unknown) => fail(label, node, err)).finally(() => {
          pending.delete(label);
          clock.setTimeout(step, rng.int(0, 20));
        });
      };
      clock.setTimeout(step, rng.int(0, 20));
    }

    let changing: Promise<void> | undefined;
    let nextChange = rng.int(200, 500);
    let nextCrash = rng.int(100, 400);
    while (clock.now() < chaosMs) {
      await advance();
      const now = clock.now();
      await closeRemoved();
      for (const m of members.values()) if (!m.removed && m.node === undefined && now >= m.downUntil) await boot(m);
      if (now >= nextChange && changing === undefined) {
        changing = change()?.finally(() => (changing = undefined));
        nextChange = now + rng.int(100, 500);
      }
      if (now >= nextCrash) {
        const live = up();
        if (live.length >= 2) {
          const victim = rng.pick(live);
          await crash(victim);
          victim.downUntil = now + rng.int(0, 400);
        }
        nextCrash = now + rng.int(50, 500);
      }
      if (rng.float() < 0.003) {
        const cut = rng.pick([...members.keys()]);
        if (trace) console.log(`t=${now} isolate ${cut}`);
        net.isolate(cut);
        clock.setTimeout(() => net.heal(), rng.int(50, 500));
      }
      if (errors.length > 0) break;
    }

    // Heal: stop the clients and changes, restart every crashed member, clear faults.
    stopped = true;
    for (let t = 0; (pending.size > 0 || changing !== undefined) && t < 5_000; t += 10) await advance();
    assert.deepEqual([...pending], [], 'every request settled');
    assert.equal(changing, undefined, 'the last membership change settled');
    net.resetFaults();
    for (const m of members.values()) if (!m.removed && m.node === undefined && m.downUntil !== Number.POSITIVE_INFINITY) await boot(m);
    assert.deepEqual(errors, [], 'no unexpected error');

    let barrier = false;
    let writing = false;
    for (const deadline = clock.now() + 10_000; !barrier && clock.now() < deadline; ) {
      const leader = leaderOf();
      if (leader !== undefined && !writing) {
        writing = true;
        leader.node!.put('barrier', 'x').then(
          () => (barrier = true),
          () => (writing = false),
        );
      }
      await advance();
      await closeRemoved();
    }
    assert.ok(barrier, 'a write commits after healing');
    const leader = leaderOf()!;
    const conf = leader.node!.members();
    const confIds = [...conf.voters, ...conf.learners];
    // a new id whose addition timed out but was applied is started now
    for (const id of confIds) {
      const m = members.get(id)!;
      if (m.node === undefined) await boot(m);
    }
    const inConf = (): SimMember[] => confIds.map((id) => members.get(id)!);

    /**
     * Waits until every member of the configuration applied all the leader
     * has, then takes each one's view without moving the clock (so no lease
     * expires and no timer proposes in between).
     */
    const views = async (when: string): Promise<View> => {
      const settled = (): boolean => {
        const l = leaderOf();
        if (l === undefined) return false;
        const last = l.node!.raft.status().lastIndex;
        return inConf().every((m) => m.node !== undefined && !m.removed && m.node.raft.appliedIndex === last);
      };
      for (let t = 0; t < 10_000; t += 10) {
        if (settled()) {
          for (const m of inConf()) await m.node!.raft.idle();
          if (settled()) break;
        }
        await advance();
      }
      assert.ok(settled(), `every member of the configuration applied the leader's log ${when}`);
      const out = new Map<string, string>();
      for (const m of inConf()) {
        const n = m.node!;
        const h = await n.store.hash();
        const v: View = { revision: n.status().header.revision, hash: h.hash, compactRevision: h.compactRevision, applied: n.raft.appliedIndex, members: sortedConf(n.members()) };
        out.set(m.id, JSON.stringify(v));
      }
      if (new Set(out.values()).size !== 1) assert.fail(`members differ ${when}: ${JSON.stringify([...out], null, 1)}`);
      return JSON.parse([...out.values()][0]!) as View;
    };
    const before = await views('after healing');
    assert.deepEqual(before.members, sortedConf(conf), "the members report the configuration the leader had");

    // Every member of the configuration crashes and restarts from what it synced.
    for (const m of inConf()) await crash(m);
    for (const m of inConf()) await boot(m);
    const after = await views('after a restart of every member');
    assert.deepEqual({ ...after, applied: undefined }, { ...before, applied: undefined }, 'the same revision, hash, compaction revision and members() after the restart');
    assert.deepEqual(errors, [], 'no unexpected error');
    return result;
  } finally {
    for (const m of members.values()) {
      if (m.node !== undefined) await m.node.close().catch(() => undefined);
      if (m.db.status === 'open') await m.db.close();
    }
  }
}

const single = process.env.QUORUMKV_KV_MEMBER_SEED;
const count = Number(process.env.QUORUMKV_KV_MEMBER_SEEDS ?? 20);
const seeds = single !== undefined ? [Number(single)] : Array.from({ length: count }, (_, i) => i + 1);

test(`KvNode membership changes under crashes: members agree on revision, hash, compaction, applied index and members() (${seeds.length} seeds)`, async () => {
  const total: SeedResult = { writes: 0, changes: 0, joins: 0, crashes: 0, compactions: 0 };
  const started = Date.now();
  for (const seed of seeds) {
    let r: SeedResult;
    try {
      r = await runKvMemberSeed(seed);
    } catch (err) {
      console.error(`KvNode membership crash test failed at seed ${seed}; replay with QUORUMKV_KV_MEMBER_SEED=${seed}`);
      throw err;
    }
    for (const k of Object.keys(total) as (keyof SeedResult)[]) total[k] += r[k];
  }
  console.log(
    `KvNode membership crash test: ${seeds.length} seeds (${seeds[0]}..${seeds[seeds.length - 1]}), ${total.writes} writes, ${total.compactions} compactions, ${total.changes} membership changes (${total.joins} new ids), ${total.crashes} crashes, ${Date.now() - started} ms`,
  );
  assert.ok(total.writes > seeds.length * 10, 'the clients got writes through');
  assert.ok(total.changes >= seeds.length, 'the membership changed');
  assert.ok(total.crashes >= seeds.length, 'members crashed');
});
