import { ErrorCode, FaultError, type QuorumError, UsageError } from '../errors.js';

/**
 * The codes of refusals that are the caller's to correct: bad input, or a
 * membership change the membership refuses as made (etcd's membership
 * errors). Thrown as {@link UsageError}; the other refusals (a change
 * pending, a learner behind, too few voters up, a proposal dropped) as
 * {@link FaultError}.
 */
const USAGE_REFUSALS: ReadonlySet<string> = new Set<ErrorCode>([
  ErrorCode.INVALID_ARGUMENT,
  ErrorCode.MEMBER_EXISTS,
  ErrorCode.MEMBER_NOT_FOUND,
  ErrorCode.MEMBER_ID_REMOVED,
  ErrorCode.PEER_ADDRESS_EXISTS,
  ErrorCode.MEMBER_NOT_LEARNER,
  ErrorCode.TOO_MANY_LEARNERS,
]);

/** The error a refused proposal or membership change fails with, of the class its code calls for. */
export function refusalError(code: ErrorCode, message: string): QuorumError {
  return USAGE_REFUSALS.has(code) ? new UsageError(code, message) : new FaultError(code, message);
}
