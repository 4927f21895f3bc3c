/**
 * Writes of prepared records (keys and values already `Uint8Array`s, with
 * any sublevel prefix included) to an abstract-level database, shared by the
 * Raft log storage and the MVCC store's backend.
 *
 * abstract-level's public `batch()` copies every operation into a new
 * object, resolves and runs its encodings, runs hooks and emits events:
 * about a fifth of the CPU of three members on two cores went there, for
 * operations whose encoding is the identity. On a classic-level database
 * that is open, with no prewrite hook and no `write` listener, these writes
 * go to classic-level's own implementation of that API (`_batch`, `_put`,
 * the methods abstract-level calls after its checks), which hands the
 * operations to LevelDB as they are: the same bytes in the same atomic
 * write. Anything else (memory-level, a sublevel, a database with hooks or
 * listeners, one still opening) takes the public API.
 * @module
 */
import type { AbstractLevel } from 'abstract-level';
import { ClassicLevel } from 'classic-level';

/** A prepared write: a put (with its value) or a delete. */
export interface PreparedOp {
  type: 'put' | 'del';
  key: Uint8Array;
  value?: Uint8Array;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyLevel = AbstractLevel<any, any, any>;

/** The part of classic-level's implementation used here. */
interface ClassicImpl {
  _batch(ops: PreparedOp[], options: { sync: boolean }): Promise<void>;
  _put(key: Uint8Array, value: Uint8Array, options: { sync: boolean }): Promise<void>;
}

const VIEW = { keyEncoding: 'view', valueEncoding: 'view' } as const;

function direct(db: AnyLevel): ClassicImpl | undefined {
  if (!(db instanceof ClassicLevel) || db.status !== 'open') return undefined;
  // `noop` (no hook added) is on abstract-level's hook objects, not in their types
  if ((db.hooks.prewrite as unknown as { noop: boolean }).noop !== true || db.listenerCount('write') > 0) return undefined;
  return db as unknown as ClassicImpl;
}

/**
 * Writes `ops` in one atomic batch, fsynced when `sync` (classic-level's
 * flag; other implementations ignore it).
 * @throws whatever the database throws (callers wrap it in their typed errors)
 */
export function writePrepared(db: AnyLevel, ops: PreparedOp[], sync: boolean): Promise<void> {
  const impl = direct(db);
  if (impl !== undefined) return impl._batch(ops, { sync });
  return db.batch(ops as never, { ...VIEW, sync } as never);
}

/**
 * Writes one record, fsynced when `sync`.
 * @throws whatever the database throws
 */
export function putPrepared(db: AnyLevel, key: Uint8Array, value: Uint8Array, sync: boolean): Promise<void> {
  const impl = direct(db);
  if (impl !== undefined) return impl._put(key, value, { sync });
  return db.put(key as never, value as never, { ...VIEW, sync } as never);
}
