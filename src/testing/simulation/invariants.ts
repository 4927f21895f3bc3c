/**
 * The safety invariants a simulation checks while it runs (Raft paper §5,
 * Figure 3 "Election Safety", "State Machine Safety"; etcd's HashKV
 * corruption check). Every check is cheap enough to run at every step.
 * @module
 */
import type { Message } from '../../raftpb/index.js';

/** What the simulation reads from one live member after a step. */
export interface MemberSample {
  /** The member's id. */
  id: string;
  /** 0 for the first run of the member, +1 at every restart. */
  lifetime: number;
  /** Current Raft term; must not go back within a lifetime. */
  term: number;
  /** Raft commit index; must not go back within a lifetime. */
  commit: number;
  /** Raft index last applied to the state machine; must not go back within a lifetime. */
  applied: number;
  /** The store's revision (KV members only). */
  revision?: number | undefined;
  /** The store's compaction revision (KV members only). */
  compactRevision?: number | undefined;
}

interface Last {
  lifetime: number;
  term: number;
  commit: number;
  applied: number;
  revision: number | undefined;
  compactRevision: number | undefined;
}

interface HashRecord {
  member: string;
  lifetime: number;
  revision: number;
  compactRevision: number;
  hash: number;
}

/** Message types that carry a term the sender has not persisted (PreVote runs at term + 1, thesis §9.6). */
const UNPERSISTED_TERM = new Set(['MsgPreVote', 'MsgPreVoteResp']);

/**
 * Collects violations of the simulation's safety invariants:
 *
 * - **one leader per term** (Election Safety): over every leader any member
 *   became or recognized, a term has at most one;
 * - **one vote per term**: a member never grants its vote (`MsgVoteResp`
 *   without reject) to two candidates in one term, across restarts (the
 *   vote is durable before it is sent, Raft Figure 2);
 * - **durable term**: after a restart, a member's term is at least the term
 *   of every message it sent before the crash (PreVote messages aside): a
 *   term, vote or entry is persisted before any message that depends on it;
 * - **monotonic within a lifetime**: term, commit index, applied index,
 *   store revision and compaction revision never go back while a member
 *   runs. Across a crash and restart they may: the member restarts from
 *   its durable HardState (the commit index is persisted lazily, as in
 *   etcd) and from its store's durable applied index (the store is written
 *   without fsync; the Raft log is the durable record), then applies the
 *   same entries again. What it applies again must be what it applied
 *   before, which the next two checks hold it to, across lifetimes;
 * - **same state at the same applied index**: members (and lifetimes) that
 *   have applied the same log prefix report the same store revision,
 *   compaction revision and `MvccStore.hash()` (etcd's HashKV corruption
 *   check). Keyed by applied index rather than revision because a lease
 *   grant changes the hashed lease table without a new revision;
 * - **same events at the same revision**: every member's reference watch
 *   reports the same events for a revision.
 */
export class InvariantMonitor {
  /** Every violation found so far, in order, one readable line each. */
  readonly violations: string[] = [];
  private readonly leaders = new Map<number, string>();
  private readonly votes = new Map<string, string>();
  private readonly maxSentTerm = new Map<string, { term: number; type: string }>();
  private readonly last = new Map<string, Last>();
  private readonly hashes = new Map<number, HashRecord>();
  private readonly revisionEvents = new Map<number, { member: string; signature: string }>();

  constructor(private readonly now: () => number) {}

  private violate(text: string): void {
    this.violations.push(`at ${this.now()} ms: ${text}`);
  }

  /** Member `id` became leader in `term`. */
  leaderElected(id: string, term: number): void {
    this.leaderIn(term, id, `${id} became leader`);
  }

  /** Member `observer` learned that `leader` leads `term`. */
  leaderSeen(observer: string, leader: string, term: number): void {
    if (leader === '') return;
    this.leaderIn(term, leader, `${observer} saw ${leader} as leader`);
  }

  private leaderIn(term: number, id: string, how: string): void {
    const known = this.leaders.get(term);
    if (known === undefined) this.leaders.set(term, id);
    else if (known !== id) this.violate(`two leaders in term ${term}: ${known} and ${id} (${how})`);
  }

  /** Every message member `id` sends, before network faults. */
  observeSent(id: string, messages: readonly Message[]): void {
    let max = this.maxSentTerm.get(id);
    for (const m of messages) {
      if (m.type === 'MsgVoteResp' && !m.reject) {
        const k = `${id}\u0000${m.term}`;
        const granted = this.votes.get(k);
        if (granted === undefined) this.votes.set(k, m.to);
        else if (granted !== m.to) this.violate(`${id} granted its vote in term ${m.term} to ${granted} and then to ${m.to}`);
      }
      if (!UNPERSISTED_TERM.has(m.type) && (max === undefined || m.term > max.term)) {
        max = { term: m.term, type: m.type };
        this.maxSentTerm.set(id, max);
      }
    }
  }

  /**
   * Member `id` restarted (a new lifetime) with `term` from its durable
   * HardState: it must not be below any term it sent a message in.
   */
  restarted(id: string, term: number): void {
    const max = this.maxSentTerm.get(id);
    if (max !== undefined && term < max.term) {
      this.violate(`${id} restarted at term ${term} but had sent ${max.type} at term ${max.term} before the crash: that term was not durable`);
    }
    this.last.delete(id);
  }

  /** The state of a live member after a step. */
  sample(s: MemberSample): void {
    const prev = this.last.get(s.id);
    if (prev === undefined || prev.lifetime !== s.lifetime) {
      this.last.set(s.id, {
        lifetime: s.lifetime,
        term: s.term,
        commit: s.commit,
        applied: s.applied,
        revision: s.revision,
        compactRevision: s.compactRevision,
      });
      return;
    }
    if (s.term < prev.term) this.wentBack('term', s.id, prev.term, s.term);
    if (s.commit < prev.commit) this.wentBack('commit index', s.id, prev.commit, s.commit);
    if (s.applied < prev.applied) this.wentBack('applied index', s.id, prev.applied, s.applied);
    if (s.revision !== undefined && prev.revision !== undefined && s.revision < prev.revision) {
      this.wentBack('store revision', s.id, prev.revision, s.revision);
    }
    if (s.compactRevision !== undefined && prev.compactRevision !== undefined && s.compactRevision < prev.compactRevision) {
      this.wentBack('compaction revision', s.id, prev.compactRevision, s.compactRevision);
    }
    prev.term = s.term;
    prev.commit = s.commit;
    prev.applied = s.applied;
    prev.revision = s.revision;
    prev.compactRevision = s.compactRevision;
  }

  private wentBack(what: string, id: string, before: number, after: number): void {
    this.violate(`${what} of ${id} went back from ${before} to ${after} without a restart`);
  }

  /** A store hash taken on member `id` with nothing applied in between. */
  hashSample(id: string, lifetime: number, applied: number, revision: number, compactRevision: number, hash: number): void {
    const known = this.hashes.get(applied);
    if (known === undefined) {
      this.hashes.set(applied, { member: id, lifetime, revision, compactRevision, hash });
      return;
    }
    if (known.revision !== revision || known.compactRevision !== compactRevision || known.hash !== hash) {
      const who = (m: string, l: number): string => (l === 0 ? m : `${m} (after restart ${l})`);
      const fmt = (r: { revision: number; compactRevision: number; hash: number }): string =>
        `revision ${r.revision}, compaction ${r.compactRevision}, hash ${r.hash.toString(16).padStart(8, '0')}`;
      this.violate(
        `stores differ at applied index ${applied}: ${who(known.member, known.lifetime)} had ${fmt(known)}, ` +
          `${who(id, lifetime)} has ${fmt({ revision, compactRevision, hash })}`,
      );
    }
  }

  /** The events member `id` committed at `revision`, as a canonical signature. */
  revisionCommitted(id: string, revision: number, signature: string): void {
    const known = this.revisionEvents.get(revision);
    if (known === undefined) this.revisionEvents.set(revision, { member: id, signature });
    else if (known.signature !== signature) {
      this.violate(`members disagree on revision ${revision}: ${known.member} has [${known.signature}], ${id} has [${signature}]`);
    }
  }

  /** The leader of each term seen so far, by term. */
  leadersByTerm(): ReadonlyMap<number, string> {
    return this.leaders;
  }
}
