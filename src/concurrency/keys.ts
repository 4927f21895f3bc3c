/**
 * @internal
 * Key helpers shared by the recipes: prefixes, lease-named keys and unique
 * keys created with a "does not exist yet" txn (etcd's recipes `key.go`).
 * Not exported from the package.
 * @module
 */
import { ErrorCode, FaultError, UsageError } from '../errors.js';
import type { KeyValue, RangeResponse, ResponseOp } from '../mvccpb/index.js';
import type { KV } from '../server/kv.js';
import type { HeldLock } from './mutex.js';
import type { Session } from './session.js';

/**
 * `kv` itself when it looks like a {@link KV}: an object with the
 * `methods` the recipe calls (by default `txn`, `get` and `watch`). A recipe
 * given nothing, or something else, fails at once instead of with a
 * TypeError at its first call.
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT`
 */
export function kvOf(kv: unknown, what: string, methods: readonly string[] = ['txn', 'get', 'watch']): KV {
  const k = kv as Record<string, unknown> | null;
  if (k === null || typeof k !== 'object' || methods.some((m) => typeof k[m] !== 'function')) {
    throw new UsageError(ErrorCode.INVALID_ARGUMENT, `${what} must be a KV (a KvNode, or another implementation of the KV interface)`);
  }
  return kv as KV;
}

/**
 * `session` itself when it looks like a {@link Session} (its `kv` and its
 * numeric `lease`).
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT`
 */
export function sessionOf(session: unknown, what: string): Session {
  const s = session as Record<string, unknown> | null;
  if (s === null || typeof s !== 'object' || typeof s.lease !== 'number' || s.kv === null || typeof s.kv !== 'object') {
    throw new UsageError(ErrorCode.INVALID_ARGUMENT, `${what} must be a Session (from Session.create)`);
  }
  return session as Session;
}

/** `prefix` with exactly one trailing `/` (etcd's recipes append one). */
export function dirOf(prefix: string, what = 'prefix'): string {
  if (typeof prefix !== 'string' || prefix === '' || prefix === '/') throw new UsageError(ErrorCode.INVALID_ARGUMENT, `${what} must be a non-empty string`);
  return prefix.endsWith('/') ? prefix : `${prefix}/`;
}

/** A lease id as etcd writes it in key names (lowercase hex). */
export function leaseHex(lease: number): string {
  return lease.toString(16);
}

/** 64 random bits as 16 hex digits, from the KV's random source ({@link KV.random}) or `Math.random`. */
function suffix(kv: KV): string {
  const draw = typeof kv.random === 'function' ? (): number => kv.random!() : Math.random;
  const word = (): string => Math.floor(draw() * 0x100000000).toString(16).padStart(8, '0');
  return `${word()}${word()}`;
}

/** A key created by {@link createUniqueKey}. */
export interface CreatedKey {
  key: string;
  /** The revision of the creating txn (the key's createRevision). */
  revision: number;
}

/**
 * Creates `dir + <unique suffix>` = `value` (attached to `lease` when not 0)
 * with a txn that succeeds only if the key does not exist, retrying with
 * another suffix otherwise. `onAttempt` hears each key before its txn: when
 * the call fails (a timeout), the key may exist all the same, and it is
 * this caller's alone to delete.
 */
export async function createUniqueKey(kv: KV, dir: string, value: string, lease = 0, onAttempt?: (key: string) => void): Promise<CreatedKey> {
  for (;;) {
    const key = `${dir}${suffix(kv)}`;
    onAttempt?.(key);
    const res = await kv.txn({
      compare: [{ key, target: 'CREATE', result: 'EQUAL', createRevision: 0 }],
      success: [{ put: { key, value, lease } }],
    });
    if (res.succeeded) return { key, revision: res.header.revision };
  }
}

/** How often a key that could not be deleted is tried again (ms, on the session's clock). */
export const LEFTOVER_RETRY_MS = 500;

/**
 * Deletes `key`, a key of the caller's own (a unique name nobody else
 * has), left by an acquire that failed. When the delete fails too (this
 * member cut off), the key is kept in `leftovers` and tried again every
 * 500 ms on the session's clock while the session lives (its lease takes
 * the key after that), so that it does not hold others back (a waiter
 * behind it, a participant counted) for the session's whole life; a later
 * acquire of the same object deletes `leftovers` first too.
 */
export async function deleteOwnKey(kv: KV, session: Session, key: string, leftovers: Set<string>): Promise<void> {
  try {
    await kv.delete(key);
    leftovers.delete(key);
    return;
  } catch {
    leftovers.add(key);
  }
  const retry = (): void => {
    if (!leftovers.has(key) || !session.isAlive) return;
    kv.delete(key).then(
      () => leftovers.delete(key),
      () => session.clock.setTimeout(retry, LEFTOVER_RETRY_MS),
    );
  };
  session.clock.setTimeout(retry, LEFTOVER_RETRY_MS);
}

/** Deletes the keys in `leftovers` (see {@link deleteOwnKey}). @throws the KV's errors */
export async function deleteLeftovers(kv: KV, leftovers: Set<string>): Promise<void> {
  for (const key of [...leftovers]) {
    await kv.delete(key);
    leftovers.delete(key);
  }
}

/** The range response of a txn op. */
export function rangeOfOp(op: ResponseOp | undefined): RangeResponse {
  if (op === undefined || !('responseRange' in op)) throw new FaultError(ErrorCode.INTERNAL, 'txn response is missing a range');
  return op.responseRange;
}

/** A {@link HeldLock} value. */
export function heldLock(key: string, fencingToken: number, revision: number): HeldLock {
  return {
    key,
    fencingToken,
    revision,
    isOwner: () => ({ key, target: 'CREATE', result: 'EQUAL', createRevision: fencingToken }),
  };
}

/**
 * Claims `kv` by deleting it if it is still the version that was
 * read (etcd's recipes `deleteRevKey`); true when this caller got it.
 */
export async function claimKey(kv: KV, item: KeyValue): Promise<boolean> {
  const res = await kv.txn({
    compare: [{ key: item.key, target: 'MOD', result: 'EQUAL', modRevision: item.modRevision }],
    success: [{ deleteRange: { key: item.key } }],
  });
  return res.succeeded;
}
