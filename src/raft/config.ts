/**
 * Validation and defaults of {@link RaftConfig} (etcd-io/raft
 * `Config.validate`).
 * @module
 */
import { ErrorCode, UsageError } from '../errors.js';
import { describeValue } from '../arg-values.js';
import { seededRandom } from './seeded-random.js';
import type { RaftConfig, RaftLogger, ReadOnlyOption, Storage } from './types.js';

/** A RaftConfig with every default filled in. */
export interface ResolvedRaftConfig {
  id: string;
  electionTick: number;
  heartbeatTick: number;
  storage: Storage;
  applied: number;
  maxSizePerMsg: number;
  maxCommittedSizePerReady: number;
  /** `Infinity` when the cap is disabled (0 in the config). */
  maxUncommittedEntriesSize: number;
  maxInflightMsgs: number;
  checkQuorum: boolean;
  preVote: boolean;
  readOnlyOption: ReadOnlyOption;
  disableProposalForwarding: boolean;
  random: () => number;
  logger: RaftLogger | undefined;
  checkConfChange: RaftConfig['checkConfChange'];
  refusedConfChange: RaftConfig['refusedConfChange'];
}

const MiB = 1024 * 1024;

function invalid(msg: string): never {
  throw new UsageError(ErrorCode.INVALID_CONFIG, msg);
}

function positiveInt(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) invalid(`${name} must be a positive integer (got ${describeValue(v)})`);
  return v;
}

function positiveSize(v: unknown, name: string): number {
  if (v === Infinity) return Infinity;
  return positiveInt(v, name);
}

function bool(v: unknown, name: string, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') invalid(`${name} must be a boolean`);
  return v;
}

/**
 * Checks a configuration and fills in the defaults, for the options left
 * `undefined` (a `null` is not one: it is refused as any other value of the
 * wrong type).
 * @throws UsageError `QUORUMKV_INVALID_CONFIG` when: `id` is empty or not a
 *   string; a tick count is not a positive integer; `heartbeatTick >=
 *   electionTick`; `storage` lacks the Storage methods; a size or
 *   `maxInflightMsgs` is not positive (`maxUncommittedEntriesSize` may be 0:
 *   no cap); `applied` is negative; `readOnlyOption` is unknown (`null`
 *   included); a flag is not a boolean (`null` included);
 *   `'leaseBased'` reads without `checkQuorum` (thesis §6.4.1: the lease is
 *   only safe when the leader steps down on losing its quorum); `random` or
 *   `logger` has the wrong shape.
 */
export function resolveConfig(c: RaftConfig): ResolvedRaftConfig {
  if (c === null || typeof c !== 'object') invalid('config must be an object');
  if (typeof c.id !== 'string' || c.id === '') invalid('id must be a non-empty string');
  const electionTick = c.electionTick === undefined ? 10 : positiveInt(c.electionTick, 'electionTick');
  const heartbeatTick = c.heartbeatTick === undefined ? 1 : positiveInt(c.heartbeatTick, 'heartbeatTick');
  if (heartbeatTick >= electionTick) invalid(`electionTick (${electionTick}) must be greater than heartbeatTick (${heartbeatTick})`);
  const s = c.storage as Partial<Storage> | undefined;
  if (
    s === undefined ||
    s === null ||
    typeof s.initialState !== 'function' ||
    typeof s.entries !== 'function' ||
    typeof s.term !== 'function' ||
    typeof s.lastIndex !== 'function' ||
    typeof s.firstIndex !== 'function' ||
    typeof s.snapshot !== 'function'
  ) {
    invalid('storage must implement the Storage interface');
  }
  let applied = 0;
  if (c.applied !== undefined) {
    if (typeof c.applied !== 'number' || !Number.isSafeInteger(c.applied) || c.applied < 0) invalid('applied must be a non-negative integer');
    applied = c.applied;
  }
  const maxSizePerMsg = c.maxSizePerMsg === undefined ? MiB : positiveSize(c.maxSizePerMsg, 'maxSizePerMsg');
  const maxCommittedSizePerReady =
    c.maxCommittedSizePerReady === undefined ? maxSizePerMsg : positiveSize(c.maxCommittedSizePerReady, 'maxCommittedSizePerReady');
  let maxUncommittedEntriesSize = 64 * MiB;
  if (c.maxUncommittedEntriesSize !== undefined) {
    if (c.maxUncommittedEntriesSize === 0) maxUncommittedEntriesSize = Infinity;
    else maxUncommittedEntriesSize = positiveSize(c.maxUncommittedEntriesSize, 'maxUncommittedEntriesSize');
  }
  const maxInflightMsgs = c.maxInflightMsgs === undefined ? 256 : positiveInt(c.maxInflightMsgs, 'maxInflightMsgs');
  const checkQuorum = bool(c.checkQuorum, 'checkQuorum', true);
  const preVote = bool(c.preVote, 'preVote', true);
  // the default only for undefined, as every other option: a null is refused
  const readOnlyOption = c.readOnlyOption === undefined ? 'safe' : c.readOnlyOption;
  if (readOnlyOption !== 'safe' && readOnlyOption !== 'leaseBased') invalid(`unknown readOnlyOption ${describeValue(readOnlyOption)}`);
  if (readOnlyOption === 'leaseBased' && !checkQuorum) invalid('checkQuorum must be enabled when readOnlyOption is leaseBased');
  const disableProposalForwarding = bool(c.disableProposalForwarding, 'disableProposalForwarding', false);
  if (c.random !== undefined && typeof c.random !== 'function') invalid('random must be a function');
  if (c.checkConfChange !== undefined && typeof c.checkConfChange !== 'function') invalid('checkConfChange must be a function');
  if (c.refusedConfChange !== undefined && typeof c.refusedConfChange !== 'function') invalid('refusedConfChange must be a function');
  const logger = c.logger;
  if (
    logger !== undefined &&
    (logger === null ||
      typeof logger.debug !== 'function' ||
      typeof logger.info !== 'function' ||
      typeof logger.warn !== 'function' ||
      typeof logger.error !== 'function')
  ) {
    invalid('logger must have debug, info, warn and error methods');
  }
  return {
    id: c.id,
    electionTick,
    heartbeatTick,
    storage: s as Storage,
    applied,
    maxSizePerMsg,
    maxCommittedSizePerReady,
    maxUncommittedEntriesSize,
    maxInflightMsgs,
    checkQuorum,
    preVote,
    readOnlyOption,
    disableProposalForwarding,
    random: c.random ?? seededRandom(c.id),
    logger,
    checkConfChange: c.checkConfChange,
    refusedConfChange: c.refusedConfChange,
  };
}
