/**
 * Membership changes, one server at a time (Raft thesis §4.1).
 *
 * Why single-server changes and not joint consensus (thesis §4.3, etcd's
 * `ConfChangeV2`): adding or removing one voter at a time means any majority
 * of the old configuration and any majority of the new one overlap, so the
 * two can never elect two leaders or commit conflicting entries, without an
 * intermediate joint configuration. That keeps one quorum rule (a plain
 * majority), one ConfState shape (voters and learners), and one change entry
 * type, which is all an embedded store needs: a cluster grows and shrinks
 * by adding a learner, letting it catch up, promoting it, and removing nodes
 * one by one. What is given up is atomically replacing several voters at
 * once (or swapping one voter for another in a 2-node cluster without
 * passing through 1 or 3), which joint consensus allows.
 *
 * The rules single-server changes need, enforced in `raft.ts`:
 * - one change pending at a time: a leader refuses a new conf change while an
 *   earlier one is not yet applied (`pendingConfIndex`);
 * - a new leader first commits an entry of its own term (the no-op it
 *   appends on election) before it accepts a conf change, which closes the
 *   hole described by Ongaro on raft-dev in 2015 (a change from an earlier,
 *   uncommitted term combined with a new one could produce disjoint majorities);
 * - a change takes effect when the driver applies it (`applyConfChange`), as
 *   in etcd; a node does not campaign while a committed conf change is unapplied.
 *
 * Like etcd's `confchange.Changer`, the functions here do not mutate the
 * tracker: they return the new configuration and progress map, or an error
 * string (and the caller changes nothing).
 * @module
 */
import type { ConfChange, ConfState } from '../raftpb/index.js';
import { Progress } from './tracker/progress.js';
import type { ProgressTracker, TrackerConfig } from './tracker/progress-tracker.js';

/** A configuration and the progress map that goes with it. */
export interface ConfigAndProgress {
  config: TrackerConfig;
  progress: Map<string, Progress>;
}

function initProgress(isLearner: boolean, lastIndex: number, maxInflight: number): Progress {
  // Initializing the Progress with the last index means that the follower
  // is probed with the last index first (as etcd does); it backs off from
  // there. A new node is marked recently active, so that CheckQuorum does
  // not step the leader down before the node had a chance to answer.
  const pr = new Progress(0, Math.max(lastIndex, 1), maxInflight, isLearner);
  pr.recentActive = true;
  return pr;
}

/**
 * Checks a conf change against a configuration without applying it.
 * Returns an error string when it is invalid: an empty node id, demoting a
 * voter with `AddLearnerNode` (not a single-server change in this library),
 * or removing the last voter. Changes that change nothing (adding an
 * existing voter, removing a non-member, `UpdateNode` always) are valid
 * no-ops.
 */
export function checkConfChange(config: TrackerConfig, cc: ConfChange): string | undefined {
  if (typeof cc.nodeId !== 'string' || cc.nodeId === '') return 'conf change has an empty node id';
  switch (cc.type) {
    case 'AddNode':
      return undefined;
    case 'AddLearnerNode':
      if (config.voters.has(cc.nodeId)) return `${cc.nodeId} is a voter and cannot be demoted to a learner`;
      return undefined;
    case 'RemoveNode':
      if (config.voters.has(cc.nodeId) && config.voters.size === 1) return `cannot remove the last voter ${cc.nodeId}`;
      return undefined;
    case 'UpdateNode':
      return undefined;
    default:
      return `unknown conf change type ${String((cc as { type: unknown }).type)}`;
  }
}

/**
 * Applies one single-server change to the tracker's configuration, returning
 * the new configuration and progress map (the tracker is not modified), or
 * an error string (see {@link checkConfChange}).
 * - `AddNode`: adds a voter, or promotes a learner (keeping its progress);
 * - `AddLearnerNode`: adds a learner;
 * - `RemoveNode`: removes a voter or learner;
 * - `UpdateNode`: changes nothing (etcd's raft applies `ConfChangeUpdateNode`
 *   as a no-op; the application reads the member's new address).
 * @param lastIndex - the log's last index, where new members start probing
 */
export function applySimple(tracker: ProgressTracker, lastIndex: number, cc: ConfChange): ConfigAndProgress | string {
  const err = checkConfChange(tracker.config, cc);
  if (err !== undefined) return err;
  const id = cc.nodeId;
  const voters = new Set(tracker.config.voters);
  const learners = new Set(tracker.config.learners);
  const progress = new Map(tracker.progress);
  switch (cc.type) {
    case 'AddNode': {
      if (voters.has(id)) break;
      voters.add(id);
      const pr = progress.get(id);
      if (learners.has(id) && pr !== undefined) {
        // Promotion: keep the progress, the learner's log is already replicated.
        learners.delete(id);
        const promoted = pr.clone();
        promoted.isLearner = false;
        progress.set(id, promoted);
      } else {
        learners.delete(id);
        progress.set(id, initProgress(false, lastIndex, tracker.maxInflight));
      }
      break;
    }
    case 'AddLearnerNode': {
      if (learners.has(id)) break;
      learners.add(id);
      progress.set(id, initProgress(true, lastIndex, tracker.maxInflight));
      break;
    }
    case 'RemoveNode': {
      voters.delete(id);
      learners.delete(id);
      progress.delete(id);
      break;
    }
    case 'UpdateNode':
      break;
  }
  return { config: { voters, learners }, progress };
}

/**
 * Builds the configuration a ConfState describes (from storage at startup,
 * or from a snapshot). Returns an error string when the ConfState is
 * malformed: an empty id, a duplicate, or a member both voter and learner.
 * An empty ConfState is valid (a node waiting to be added to a cluster).
 */
export function restoreConfState(tracker: ProgressTracker, lastIndex: number, cs: ConfState): ConfigAndProgress | string {
  if (!Array.isArray(cs.voters) || !Array.isArray(cs.learners)) return 'conf state must have voters and learners arrays';
  const voters = new Set<string>();
  const learners = new Set<string>();
  const progress = new Map<string, Progress>();
  for (const id of cs.voters) {
    if (typeof id !== 'string' || id === '') return 'conf state has an empty voter id';
    if (voters.has(id)) return `conf state lists voter ${id} twice`;
    voters.add(id);
    progress.set(id, initProgress(false, lastIndex, tracker.maxInflight));
  }
  for (const id of cs.learners) {
    if (typeof id !== 'string' || id === '') return 'conf state has an empty learner id';
    if (voters.has(id)) return `${id} is in both voters and learners`;
    if (learners.has(id)) return `conf state lists learner ${id} twice`;
    learners.add(id);
    progress.set(id, initProgress(true, lastIndex, tracker.maxInflight));
  }
  return { config: { voters, learners }, progress };
}
