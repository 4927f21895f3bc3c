// Compact text for Raft wire types and Ready batches, in the spirit of
// etcd-io/raft's util.go (`DescribeMessage`, `DescribeReady`, ...):
//
//   1->2 MsgApp Term:1 Log:1/10 Commit:10 Entries:[1/11 EntryNormal "data"]
//
// Node ids are printed as they are; the empty id ("none") as `none`.
import type { ConfChange, ConfState, Entry, HardState, Message, Snapshot } from '../../../src/raftpb/index.js';
import { decodeConfChangeData } from '../../../src/raft/conf-change-codec.js';
import type { ProgressStatus, ReadState, Ready, SoftState, StateRole } from '../../../src/raft/types.js';

const utf8 = new TextDecoder('utf-8');

/** A node id, `none` for the empty id. */
export function describeId(id: string): string {
  return id === '' ? 'none' : id;
}

/** Bytes as a quoted string. */
export function describeBytes(b: Uint8Array): string {
  return JSON.stringify(utf8.decode(b));
}

/** `v4` (add voter or promote), `l4` (add learner) or `r4` (remove). */
export function describeConfChange(cc: ConfChange): string {
  const prefix = cc.type === 'AddNode' ? 'v' : cc.type === 'AddLearnerNode' ? 'l' : 'r';
  return prefix + cc.nodeId;
}

/** `term/index EntryNormal "data"` or `term/index EntryConfChange v4`. */
export function describeEntry(e: Entry): string {
  if (e.type === 'ConfChange') {
    const cc = decodeConfChangeData(e.data);
    return `${e.term}/${e.index} EntryConfChange ${cc === undefined ? `<malformed ${describeBytes(e.data)}>` : describeConfChange(cc)}`;
  }
  return `${e.term}/${e.index} EntryNormal ${describeBytes(e.data)}`;
}

/** `Voters:[1 2 3] Learners:[4]`. */
export function describeConfState(cs: ConfState): string {
  return `Voters:[${cs.voters.join(' ')}] Learners:[${cs.learners.join(' ')}]`;
}

/** `Index:11 Term:1 ConfState:Voters:[1 2 3] Learners:[]`. */
export function describeSnapshot(s: Snapshot): string {
  return `Index:${s.metadata.index} Term:${s.metadata.term} ConfState:${describeConfState(s.metadata.confState)}`;
}

/** `Term:2 Vote:1 Commit:11` (no `Vote:` when there is no vote). */
export function describeHardState(hs: HardState): string {
  return `Term:${hs.term}${hs.vote !== '' ? ` Vote:${hs.vote}` : ''} Commit:${hs.commit}`;
}

const ROLE_NAMES: Record<StateRole, string> = {
  follower: 'StateFollower',
  candidate: 'StateCandidate',
  preCandidate: 'StatePreCandidate',
  leader: 'StateLeader',
};

/** `StateLeader`, `StateFollower`, ... */
export function describeRole(r: StateRole): string {
  return ROLE_NAMES[r];
}

/** `Lead:1 State:StateFollower`. */
export function describeSoftState(ss: SoftState): string {
  return `Lead:${describeId(ss.lead)} State:${describeRole(ss.raftState)}`;
}

/** `Index:12 RequestCtx:"r1"`. */
export function describeReadState(rs: ReadState): string {
  return `Index:${rs.index} RequestCtx:${describeBytes(rs.requestCtx)}`;
}

/** One line per message field that is set; see the module comment. */
export function describeMessage(m: Message): string {
  let s = `${describeId(m.from)}->${describeId(m.to)} ${m.type} Term:${m.term} Log:${m.logTerm}/${m.index}`;
  if (m.reject) s += ` Rejected (Hint: ${m.rejectHint})`;
  if (m.commit !== 0) s += ` Commit:${m.commit}`;
  if (m.entries.length > 0) s += ` Entries:[${m.entries.map(describeEntry).join(', ')}]`;
  if (m.context !== undefined && m.context.length > 0) s += ` Context:${describeBytes(m.context)}`;
  if (m.snapshot !== undefined) s += ` Snapshot: ${describeSnapshot(m.snapshot)}`;
  return s;
}

/** A Ready as a block of lines (each ending with a newline), or `<empty Ready>`. */
export function describeReady(rd: Ready): string {
  const out: string[] = [];
  if (rd.softState !== undefined) out.push(describeSoftState(rd.softState));
  if (rd.hardState !== undefined) out.push(`HardState ${describeHardState(rd.hardState)}`);
  if (rd.readStates.length > 0) {
    out.push('ReadStates:');
    for (const rs of rd.readStates) out.push(describeReadState(rs));
  }
  if (rd.entries.length > 0) {
    out.push('Entries:');
    for (const e of rd.entries) out.push(describeEntry(e));
  }
  if (rd.snapshot !== undefined) out.push(`Snapshot ${describeSnapshot(rd.snapshot)}`);
  if (rd.committedEntries.length > 0) {
    out.push('CommittedEntries:');
    for (const e of rd.committedEntries) out.push(describeEntry(e));
  }
  if (rd.messages.length > 0) {
    out.push('Messages:');
    for (const m of rd.messages) out.push(describeMessage(m));
  }
  if (out.length === 0) return '<empty Ready>\n';
  return `Ready MustSync=${rd.mustSync}:\n${out.join('\n')}\n`;
}

/** `StateReplicate match=11 next=12` plus the flags that are set. */
export function describeProgress(pr: ProgressStatus): string {
  const state = pr.state === 'probe' ? 'StateProbe' : pr.state === 'replicate' ? 'StateReplicate' : 'StateSnapshot';
  let s = `${state} match=${pr.match} next=${pr.next}`;
  if (pr.isLearner) s += ' learner';
  if (pr.inflightsFull) s += ' inflights-full';
  if (!pr.recentActive) s += ' inactive';
  if (pr.pendingSnapshot !== 0) s += ` pendingSnap=${pr.pendingSnapshot}`;
  return s;
}
