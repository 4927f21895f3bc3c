// Test harness for the Raft core at the level of the internal `Raft` state
// machine (as etcd-io/raft's raft_test.go does with `newTestRaft`): build
// nodes over MemoryStorage with a given membership and log, read the
// messages they emit, and persist/apply what they produce.
import type { ConfState, Entry, Message, MessageType } from '../../../src/raftpb/index.js';
import { message } from '../../../src/raftpb/index.js';
import { resolveConfig } from '../../../src/raft/config.js';
import { MemoryStorage } from '../../../src/raft/memory-storage.js';
import { Raft } from '../../../src/raft/raft.js';
import { seededRandom } from '../../../src/raft/seeded-random.js';
import type { RaftConfig } from '../../../src/raft/types.js';

/** Options of {@link newTestRaft}; defaults follow etcd's `newTestConfig` (no PreVote, no CheckQuorum). */
export type TestRaftOptions = Partial<Omit<RaftConfig, 'id' | 'storage'>>;

/** A MemoryStorage whose initial ConfState has these voters and learners. */
export function newTestStorage(voters: string[], learners: string[] = []): MemoryStorage {
  const s = new MemoryStorage();
  s.setConfState({ voters, learners });
  return s;
}

/** A Raft over `storage`, with etcd's test defaults unless overridden. */
export function newTestRaft(id: string, electionTick: number, heartbeatTick: number, storage: MemoryStorage, opts: TestRaftOptions = {}): Raft {
  const cfg: RaftConfig = {
    id,
    storage,
    electionTick,
    heartbeatTick,
    maxSizePerMsg: Infinity,
    maxInflightMsgs: 256,
    checkQuorum: false,
    preVote: false,
    random: seededRandom(`test-${id}`),
    ...opts,
  };
  return new Raft(resolveConfig(cfg));
}

/** Takes and clears the messages a node emitted. */
export function readMessages(r: Raft): Message[] {
  const m = r.msgs;
  r.msgs = [];
  return m;
}

/**
 * Persists the unstable entries into `s` and returns the committed entries
 * to apply, marking them applied (etcd's `nextEnts`).
 */
export function nextEnts(r: Raft, s: MemoryStorage): Entry[] {
  const unstable = r.raftLog.unstableEntries();
  if (r.raftLog.unstable.snapshot !== undefined) {
    s.applySnapshot(r.raftLog.unstable.snapshot);
    r.raftLog.stableSnapTo(r.raftLog.unstable.snapshot.metadata.index);
  }
  s.append(unstable);
  if (unstable.length > 0) {
    const last = unstable[unstable.length - 1]!;
    r.raftLog.stableTo(last.index, last.term);
  }
  const ents = r.raftLog.nextCommittedEnts();
  if (ents.length > 0) r.raftLog.appliedTo(ents[ents.length - 1]!.index);
  return ents;
}

/** Entries with the given terms at indexes 1..n (etcd's `index(1).terms(...)`). */
export function entsWithTerms(...terms: number[]): Entry[] {
  return terms.map((term, i) => ({ term, index: i + 1, type: 'Normal' as const, data: new Uint8Array(0) }));
}

/** An entry with a term and index, and optional payload. */
export function ent(index: number, term: number, data: Uint8Array = new Uint8Array(0)): Entry {
  return { index, term, type: 'Normal', data };
}

/** A Raft whose log holds entries with `terms` and whose HardState term is the last one. */
export function votedWithConfig(id: string, vote: string, term: number, voters: string[], opts: TestRaftOptions = {}): Raft {
  const s = newTestStorage(voters);
  s.setHardState({ term, vote, commit: 0 });
  return newTestRaft(id, 5, 1, s, opts);
}

/** A Raft whose storage log has entries with these terms (etcd's `entsWithConfig`). */
export function entsWithConfig(id: string, terms: number[], voters: string[], opts: TestRaftOptions = {}): Raft {
  const s = newTestStorage(voters);
  s.append(entsWithTerms(...terms));
  s.setHardState({ term: terms.length > 0 ? terms[terms.length - 1]! : 0, vote: '', commit: 0 });
  return newTestRaft(id, 5, 1, s, opts);
}

/** Builds a message (every field defaulted). */
export function m(fields: Partial<Message> & { type: MessageType }): Message {
  return message(fields);
}

/** Bytes of a string. */
export function bytes(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/** The string of bytes. */
export function str(b: Uint8Array): string {
  return new TextDecoder().decode(b);
}

/** Sorted voters and learners, for comparing ConfStates. */
export function sortedConf(cs: ConfState): ConfState {
  return { voters: [...cs.voters].sort(), learners: [...cs.learners].sort() };
}

/** Ticks `r` until its (randomized) election timeout fires. */
export function tickUntilElection(r: Raft): void {
  for (let i = 0; i < 2 * r.electionTimeout + 1; i++) {
    r.tickFn();
    if (r.state !== 'follower') return;
  }
}

/** Sets the randomized election timeout directly (etcd's `setRandomizedElectionTimeout`). */
export function setRandomizedElectionTimeout(r: Raft, v: number): void {
  r.randomizedElectionTimeout = v;
}

/** A fresh MsgProp from `id` to itself with one entry per payload. */
export function prop(id: string, ...data: (Uint8Array | string)[]): Message {
  const entries: Entry[] = (data.length === 0 ? [new Uint8Array(0)] : data).map((d) => ({
    term: 0,
    index: 0,
    type: 'Normal' as const,
    data: typeof d === 'string' ? bytes(d) : d,
  }));
  return message({ type: 'MsgProp', from: id, to: id, entries });
}

/** The MsgAppResp a follower sends when it accepts `msg` (etcd's `acceptAndReply`). */
export function acceptAndReply(msg: Message): Message {
  if (msg.type !== 'MsgApp') throw new Error('type should be MsgApp');
  return message({ type: 'MsgAppResp', from: msg.to, to: msg.from, term: msg.term, index: msg.index + msg.entries.length });
}

/**
 * Makes a new leader commit its no-op: broadcast, accept every MsgApp,
 * persist and apply (etcd's `commitNoopEntry`).
 */
export function commitNoopEntry(r: Raft, s: MemoryStorage): void {
  if (r.state !== 'leader') throw new Error('it should only be used when it is the leader');
  r.bcastAppend();
  for (const msg of readMessages(r)) {
    if (msg.type !== 'MsgApp' || msg.entries.length !== 1 || msg.entries[0]!.data.length !== 0) {
      throw new Error('not a message to append noop entry');
    }
    r.step(acceptAndReply(msg));
  }
  // ignore further messages to refresh followers' commit index
  readMessages(r);
  nextEnts(r, s);
}
