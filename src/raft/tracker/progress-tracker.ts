/**
 * The leader's view of the configuration and of every member's progress
 * (etcd-io/raft `tracker/tracker.go`), restricted to single-server
 * configurations: one majority of voters, plus learners that receive the log
 * but never count in a quorum (Raft thesis §4.2.1).
 * @module
 */
import type { ConfState } from '../../raftpb/index.js';
import { committedIndex, voteResult, type VoteResult } from '../quorum/majority-config.js';
import type { Progress } from './progress.js';

/** An active configuration: who votes and who only learns. Voters and learners never intersect. */
export interface TrackerConfig {
  readonly voters: ReadonlySet<string>;
  readonly learners: ReadonlySet<string>;
}

/** Configuration, per-member progress and the votes of the current election. */
export class ProgressTracker {
  /** Max MsgApp messages in flight per follower. */
  readonly maxInflight: number;
  config: TrackerConfig = { voters: new Set(), learners: new Set() };
  /** Progress of every voter and learner (on followers too; only the leader uses it). */
  progress: Map<string, Progress> = new Map();
  /** Votes received in the current election (id -> granted). */
  votes: Map<string, boolean> = new Map();

  /** Sorted member ids (voters and learners), cached per configuration. */
  private sortedIds: string[] = [];
  /** Sorted voter ids, cached per configuration. */
  private sortedVoters: string[] = [];
  private readonly scratch: number[] = [];

  constructor(maxInflight: number) {
    this.maxInflight = maxInflight;
  }

  /** Installs a configuration and its progress map (as produced by the conf change code). */
  setConfig(config: TrackerConfig, progress: Map<string, Progress>): void {
    this.config = config;
    this.progress = progress;
    this.sortedIds = [...progress.keys()].sort();
    this.sortedVoters = [...config.voters].sort();
  }

  /** The active configuration as a ConfState (sorted ids). */
  confState(): ConfState {
    return { voters: this.sortedVoters.slice(), learners: [...this.config.learners].sort() };
  }

  /** True when the only voter is... one voter (the leader itself, when it leads). */
  isSingleton(): boolean {
    return this.sortedVoters.length === 1;
  }

  /** Sorted voter ids (do not mutate). */
  voterIds(): readonly string[] {
    return this.sortedVoters;
  }

  /** Sorted ids of every member (do not mutate). */
  memberIds(): readonly string[] {
    return this.sortedIds;
  }

  /** The largest index acknowledged by a majority of voters (Raft §5.3). */
  committed(): number {
    return committedIndex(this.sortedVoters, this.ackedIndex, this.scratch);
  }

  /** Match index of a voter (bound once: no closure per call on the hot path). */
  private readonly ackedIndex = (id: string): number | undefined => this.progress.get(id)?.match;

  /** Calls `f` for every member in sorted id order. */
  visit(f: (id: string, pr: Progress) => void): void {
    const ids = this.sortedIds;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      f(id, this.progress.get(id)!);
    }
  }

  /** True when a majority of voters has been recently active (CheckQuorum, thesis §6.2). */
  quorumActive(): boolean {
    const active = new Map<string, boolean>();
    for (const id of this.sortedVoters) {
      const pr = this.progress.get(id);
      if (pr !== undefined) active.set(id, pr.recentActive);
    }
    return voteResult(this.sortedVoters, active) === 'won';
  }

  /** Result of counting `acks` (id -> true) among the voters. */
  voteResultOf(acks: ReadonlyMap<string, boolean>): VoteResult {
    return voteResult(this.sortedVoters, acks);
  }

  /** Starts a new election's tally. */
  resetVotes(): void {
    this.votes = new Map();
  }

  /** Records the vote of `id` (the first answer counts). */
  recordVote(id: string, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  /** Granted and rejected votes among voters, and the election's outcome. */
  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const id of this.sortedVoters) {
      const v = this.votes.get(id);
      if (v === undefined) continue;
      if (v) granted++;
      else rejected++;
    }
    return { granted, rejected, result: voteResult(this.sortedVoters, this.votes) };
  }
}
