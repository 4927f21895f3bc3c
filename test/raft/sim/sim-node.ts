// One simulated server: a RawNode (absent while the server is down), the
// state it has made durable, and a state machine reduced to a digest of the
// entries it applied. The durable state is a MemoryStorage (HardState, stable
// entries, snapshot) plus what the driver writes in the same batch as the
// state machine: the applied index, the digest and the ConfState at that
// index. A restart rebuilds the node from the durable state only: unstable
// entries, messages not yet handed out and everything volatile are lost.
import { ErrorCode, isQuorumError } from '../../../src/errors.js';
import type { ConfState, Snapshot } from '../../../src/raftpb/index.js';
import { decodeConfChangeData } from '../../../src/raft/conf-change-codec.js';
import { MemoryStorage } from '../../../src/raft/memory-storage.js';
import { RawNode } from '../../../src/raft/raw-node.js';
import { seededRandom } from '../../../src/raft/seeded-random.js';
import type { RaftConfig, Ready } from '../../../src/raft/types.js';
import { chainDigest } from './entry-digest.js';
import type { SafetyChecker } from './safety-checker.js';

/** Deliberate driver bugs, to show that the checker catches them. */
export type DriverMutation =
  /** A restart loses the vote of the persisted HardState (a node may then vote twice in a term). */
  | 'forget-vote'
  /** A restart loses the last persisted entry (an fsync that lied). */
  | 'lose-last-entry'
  /** Applying a committed RemoveNode, node 1's driver skips `applyConfChange` (it keeps the removed voter). */
  | 'skip-remove-node';

/** How a restarted node rebuilds its state machine. */
export type RestartMode =
  /** From the applied index, digest and ConfState persisted with the state machine. */
  | 'applied'
  /** From the last snapshot (or from scratch): committed entries after it are applied again. */
  | 'snapshot';

/** Options shared by every node of a run. */
export type NodeConfig = Omit<RaftConfig, 'id' | 'storage' | 'applied' | 'random' | 'logger'>;

const utf8 = new TextEncoder();
const utf8d = new TextDecoder();

function snapshotData(index: number, digest: number): Uint8Array {
  return utf8.encode(`${index}:${digest}`);
}

function snapshotDigest(s: Snapshot): number {
  const text = utf8d.decode(s.data);
  const [index, digest] = text.split(':');
  if (Number(index) !== s.metadata.index || digest === undefined) throw new Error(`malformed snapshot data ${JSON.stringify(text)}`);
  return Number(digest);
}

/** A simulated server. */
export class SimNode {
  rawNode: RawNode | undefined;
  storage = new MemoryStorage();
  /** Applied index, digest and ConfState, persisted with the state machine. */
  applied = 0;
  digest = 0;
  confState: ConfState = { voters: [], learners: [] };
  private incarnation = 0;

  /**
   * @param bootstrapVoters - for a member of the initial cluster, its voters:
   *   like RaftNode, the node bootstraps whenever it starts on an empty storage
   */
  constructor(
    readonly id: string,
    private readonly seed: number,
    private readonly config: NodeConfig,
    private readonly checker: SafetyChecker,
    private readonly bootstrapVoters?: readonly string[],
    private readonly mutation?: DriverMutation,
  ) {
    this.rawNode = this.newRawNode(0);
    if (bootstrapVoters !== undefined) this.rawNode.bootstrap([...bootstrapVoters]);
  }

  get up(): boolean {
    return this.rawNode !== undefined;
  }

  private newRawNode(applied: number): RawNode {
    return new RawNode({
      ...this.config,
      id: this.id,
      storage: this.storage,
      applied,
      random: seededRandom(`sim-${this.seed}-${this.id}-${this.incarnation}`),
    });
  }

  /** The node crashes: everything not persisted is gone. */
  crash(): void {
    this.rawNode = undefined;
    this.pendingReady = undefined;
  }

  /** The node comes back from its durable state (after a crash). */
  restart(mode: RestartMode, mutation: DriverMutation | undefined): void {
    if (this.rawNode !== undefined) throw new Error(`${this.id} is up`);
    this.incarnation++;
    const old = this.storage;
    const snap = old.snapshot();
    const hs = old.initialState().hardState;
    const fresh = new MemoryStorage();
    if (snap.metadata.index > 0) fresh.applySnapshot(snap);
    const first = old.firstIndex();
    let last = old.lastIndex();
    if (mutation === 'lose-last-entry' && last >= first && last > hs.commit) last--;
    if (last >= first) fresh.append(old.entries(first, last + 1, Infinity));
    fresh.setHardState(mutation === 'forget-vote' ? { ...hs, vote: '' } : hs);
    if (mode === 'snapshot') {
      this.applied = snap.metadata.index;
      this.digest = snap.metadata.index > 0 ? snapshotDigest(snap) : 0;
      this.confState = snap.metadata.index > 0 ? snap.metadata.confState : { voters: [], learners: [] };
    }
    fresh.setConfState(this.confState);
    this.storage = fresh;
    this.rawNode = this.newRawNode(this.applied);
    // It crashed before its bootstrap was persisted: bootstrap again.
    const empty = fresh.lastIndex() === 0 && hs.term === 0 && hs.vote === '' && hs.commit === 0;
    if (empty && this.bootstrapVoters !== undefined) this.rawNode.bootstrap([...this.bootstrapVoters]);
    this.checker.onRestart(this.id, hs.commit);
  }

  /**
   * Snapshots the state machine at its applied index and compacts the log
   * behind it, keeping the last `keep` entries before the applied index.
   * Returns false when there is nothing new to snapshot.
   */
  compact(keep: number): boolean {
    const snapIndex = this.storage.snapshot().metadata.index;
    if (this.applied <= snapIndex) return false;
    this.storage.createSnapshot(this.applied, this.confState, snapshotData(this.applied, this.digest));
    const to = Math.max(snapIndex + 1, this.applied - keep);
    if (to > this.storage.firstIndex() - 1) this.storage.compact(to);
    return true;
  }

  /**
   * A Ready taken by {@link beginReady} and not handled yet: the node's Raft
   * core goes on receiving messages and ticks between `ready()` and the
   * handling of its Ready (as a node whose storage writes take time does).
   */
  pendingReady: { rd: Ready; before: ReturnType<RawNode['status']> } | undefined;

  /** Takes the next Ready (without handling it); false when there is none or one is pending. */
  beginReady(): boolean {
    const rn = this.rawNode;
    if (rn === undefined || this.pendingReady !== undefined || !rn.hasReady()) return false;
    const before = rn.status();
    this.pendingReady = { rd: rn.ready(), before };
    return true;
  }

  /**
   * One Ready cycle, following the contract of `Ready`: persist (snapshot,
   * entries, HardState), send, apply (applyConfChange for conf changes),
   * advance. The Ready is the one {@link beginReady} took, else the next
   * one. `seen` is called with the Ready before anything is done with it,
   * `send` at step 2. Returns undefined when there was no Ready.
   */
  processReady(seen: (rd: Ready) => void, send: (rd: Ready) => void): Ready | undefined {
    const rn = this.rawNode;
    if (rn === undefined) return undefined;
    if (this.pendingReady === undefined && !this.beginReady()) return undefined;
    const { rd, before } = this.pendingReady!;
    this.pendingReady = undefined;
    seen(rd);
    const c = this.checker;
    // 1. persist
    if (rd.snapshot !== undefined) {
      const s = rd.snapshot;
      if (s.metadata.index <= this.applied) throw new Error(`${this.id} got a snapshot at ${s.metadata.index}, not after its applied index ${this.applied}`);
      this.storage.applySnapshot(s);
      this.applied = s.metadata.index;
      this.digest = snapshotDigest(s);
      this.confState = s.metadata.confState;
      c.onSnapshotPersisted(this.id, s, before.hardState.term);
      c.onSnapshotRestored(this.id, this.applied, this.digest);
    }
    this.storage.append(rd.entries);
    c.onEntriesPersisted(this.id, rd.entries, this.storage);
    if (rd.hardState !== undefined) {
      this.storage.setHardState(rd.hardState);
      c.onHardStatePersisted(this.id, rd.hardState, this.storage);
    }
    if (before.softState.raftState === 'leader') c.onLeader(this.id, before.hardState.term, this.storage);
    // 2. send
    send(rd);
    // 3. apply
    for (const e of rd.committedEntries) {
      if (e.index !== this.applied + 1) throw new Error(`${this.id} was handed entry ${e.index} to apply after ${this.applied}`);
      if (e.type === 'ConfChange') {
        const cc = decodeConfChangeData(e.data);
        if (cc === undefined) throw new Error(`${this.id} committed a malformed conf change at ${e.index}`);
        const skip = this.mutation === 'skip-remove-node' && this.id === '1' && cc.type === 'RemoveNode';
        if (!skip) this.confState = rn.applyConfChange(cc);
      }
      this.digest = chainDigest(this.digest, e);
      this.applied = e.index;
      c.onApply(this.id, e, this.digest);
    }
    for (const rs of rd.readStates) c.onReadState(this.id, rs);
    // 4. advance
    rn.advance();
    c.onAppliedConfig(this.id, this.applied, this.confState);
    if (!rn.hasReady()) c.checkCoreConfig(this.id, this.applied, rn.status().config, this.confState);
    return rd;
  }
}

/** True for the refusals a proposal may meet in a healthy cluster. */
export function isExpectedRefusal(err: unknown): boolean {
  return (
    isQuorumError(err, ErrorCode.PROPOSAL_DROPPED) ||
    isQuorumError(err, ErrorCode.CONF_CHANGE_PENDING) ||
    isQuorumError(err, ErrorCode.NO_LEADER)
  );
}
