/**
 * The server's log entries: `[kind byte][payload]` in the data of a normal
 * Raft entry.
 *
 * | kind | entry | payload |
 * |---|---|---|
 * | 0 | write request | `encodeWriteRequest` bytes (see `mvcc/write-request.ts`) |
 * | 1 | lease keep-alive or time-to-live request | msgpack `[leaseId, origin member, nonce]` (keep-alive), `[leaseId, origin member, nonce, 1]` (time-to-live: answered, not renewed) |
 * | 2 | alarm (etcd's `AlarmRequest`) | msgpack `[action, memberId, alarm]`: action `1` activate, `0` deactivate; empty member or alarm = every one (deactivate only) |
 * | 3 | hash check | msgpack `[]`: every member hashes its store at this entry |
 * | 4 | hash report | msgpack `[check, memberId, hash, revision]` |
 * | 5 | lease keep-alive answer | msgpack `[origin member, nonce, leaseId, ttl]`: the leader's answer to a request of another member; `ttl` -1 = not found or expired (a keep-alive), not found (a time-to-live) |
 * | 6 | lease expiry | msgpack `[leaseId, term]`: the revoke of a lease the leader of `term` found expired; applied only from an entry of that term |
 * @module
 */
import { pack, unpack } from '../codec/index.js';
import { ErrorCode, FaultError } from '../errors.js';
import { isAlarmType, type AlarmType } from './alarms.js';
import type { HashReport } from './corruption-check.js';

/** Entry kinds (first byte of a server entry). */
export const EntryKind = {
  WRITE: 0,
  KEEPALIVE: 1,
  ALARM: 2,
  HASH_CHECK: 3,
  HASH_REPORT: 4,
  KEEPALIVE_ANSWER: 5,
  LEASE_EXPIRY: 6,
} as const;

/**
 * A lease keep-alive request: the leader's lessor renews the lease when it
 * applies the entry, and answers the member that proposed it (etcd serves
 * keep-alives on the leader). With `timeToLive`, a follower's question for
 * the lease's remaining TTL, which only the leader's lessor tracks: the
 * leader answers it and renews nothing (etcd forwards `LeaseTimeToLive` to
 * the leader).
 */
export interface KeepAliveRequest {
  lease: number;
  /** The member that proposed the request and waits for the answer. */
  origin: string;
  /** Matches the answer to the waiting call. */
  nonce: string;
  /** A time-to-live question rather than a keep-alive. */
  timeToLive?: true;
}

/** The leader's answer to a {@link KeepAliveRequest}. */
export interface KeepAliveAnswer extends KeepAliveRequest {
  /**
   * A keep-alive: the renewed TTL in seconds, -1 when the lease is unknown
   * or already expired. A time-to-live: the remaining TTL in seconds, -1
   * when the lease is unknown.
   */
  ttl: number;
}

/**
 * The revoke of a lease that the leader's lessor found expired, decided by
 * the leader of `term`. It revokes the lease only when applied from an entry
 * of that term: an expiry decided by an earlier leader and carried into a
 * later leader's log (proposed during a leadership transfer, or while the
 * member had already stepped down, then forwarded) is skipped, for the later
 * leader has restarted the lease's TTL (etcd ignores an old leader's revokes).
 */
export interface LeaseExpiry {
  lease: number;
  /** The term of the leader whose lessor found the lease expired. */
  term: number;
}

/** An alarm entry: raise (`activate`) or clear alarms. */
export interface AlarmEntry {
  action: 'activate' | 'deactivate';
  /** The member; `''` with `deactivate` = every member. */
  memberId: string;
  /** The alarm; undefined with `deactivate` = every kind. */
  alarm: AlarmType | undefined;
}

/** Prefixes a payload with its kind byte. */
export function serverEntry(kind: number, payload: Uint8Array): Uint8Array {
  const data = new Uint8Array(payload.length + 1);
  data[0] = kind;
  data.set(payload, 1);
  return data;
}

function malformed(what: string): never {
  throw new FaultError(ErrorCode.MALFORMED_FRAME, `malformed ${what} entry`);
}

/** Encodes an alarm entry. */
export function encodeAlarmEntry(a: AlarmEntry): Uint8Array {
  return serverEntry(EntryKind.ALARM, pack([a.action === 'activate' ? 1 : 0, a.memberId, a.alarm ?? '']));
}

/** Decodes an alarm entry's payload. @throws FaultError `QUORUMKV_MALFORMED_FRAME` */
export function decodeAlarmEntry(payload: Uint8Array): AlarmEntry {
  const t = unpack(payload);
  if (!Array.isArray(t) || (t[0] !== 0 && t[0] !== 1) || typeof t[1] !== 'string' || (t[2] !== '' && !isAlarmType(t[2]))) malformed('alarm');
  const action = t[0] === 1 ? 'activate' : 'deactivate';
  const alarm = t[2] === '' ? undefined : (t[2] as AlarmType);
  if (action === 'activate' && (t[1] === '' || alarm === undefined)) malformed('alarm');
  return { action, memberId: t[1] as string, alarm };
}

/** Encodes a keep-alive request entry. */
export function encodeKeepAliveRequest(r: KeepAliveRequest): Uint8Array {
  return serverEntry(EntryKind.KEEPALIVE, pack(r.timeToLive === true ? [r.lease, r.origin, r.nonce, 1] : [r.lease, r.origin, r.nonce]));
}

/** Decodes a keep-alive request's payload. @throws FaultError `QUORUMKV_MALFORMED_FRAME` */
export function decodeKeepAliveRequest(payload: Uint8Array): KeepAliveRequest {
  const t = unpack(payload);
  if (!Array.isArray(t) || typeof t[0] !== 'number' || typeof t[1] !== 'string' || typeof t[2] !== 'string') malformed('keep-alive');
  if (t.length > 4 || (t.length === 4 && t[3] !== 1)) malformed('keep-alive');
  const r: KeepAliveRequest = { lease: t[0] as number, origin: t[1] as string, nonce: t[2] as string };
  if (t.length === 4) r.timeToLive = true;
  return r;
}

/** Encodes a keep-alive answer entry. */
export function encodeKeepAliveAnswer(a: KeepAliveAnswer): Uint8Array {
  return serverEntry(EntryKind.KEEPALIVE_ANSWER, pack([a.origin, a.nonce, a.lease, a.ttl]));
}

/** Decodes a keep-alive answer's payload. @throws FaultError `QUORUMKV_MALFORMED_FRAME` */
export function decodeKeepAliveAnswer(payload: Uint8Array): KeepAliveAnswer {
  const t = unpack(payload);
  if (!Array.isArray(t) || typeof t[0] !== 'string' || typeof t[1] !== 'string' || typeof t[2] !== 'number' || typeof t[3] !== 'number') {
    malformed('keep-alive answer');
  }
  return { origin: t[0] as string, nonce: t[1] as string, lease: t[2] as number, ttl: t[3] as number };
}

/** Encodes a lease expiry entry. */
export function encodeLeaseExpiry(x: LeaseExpiry): Uint8Array {
  return serverEntry(EntryKind.LEASE_EXPIRY, pack([x.lease, x.term]));
}

/** Decodes a lease expiry's payload. @throws FaultError `QUORUMKV_MALFORMED_FRAME` */
export function decodeLeaseExpiry(payload: Uint8Array): LeaseExpiry {
  const t = unpack(payload);
  if (!Array.isArray(t) || !Number.isSafeInteger(t[0]) || !Number.isSafeInteger(t[1])) malformed('lease expiry');
  return { lease: t[0] as number, term: t[1] as number };
}

/** Encodes a hash-check entry. */
export function encodeHashCheckEntry(): Uint8Array {
  return serverEntry(EntryKind.HASH_CHECK, pack([]));
}

/** Encodes a hash report entry. */
export function encodeHashReportEntry(r: HashReport): Uint8Array {
  return serverEntry(EntryKind.HASH_REPORT, pack([r.check, r.memberId, r.hash, r.revision]));
}

/** Decodes a hash report's payload. @throws FaultError `QUORUMKV_MALFORMED_FRAME` */
export function decodeHashReportEntry(payload: Uint8Array): HashReport {
  const t = unpack(payload);
  if (!Array.isArray(t) || typeof t[1] !== 'string' || ![t[0], t[2], t[3]].every((n) => typeof n === 'number' && Number.isSafeInteger(n))) {
    malformed('hash report');
  }
  return { check: t[0] as number, memberId: t[1] as string, hash: t[2] as number, revision: t[3] as number };
}
