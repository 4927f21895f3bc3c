/**
 * @internal
 * Waiting on watch events (etcd's recipes `WaitEvents` and the mutex's
 * `waitDelete`). Not exported from the package.
 * @module
 */
import type { Event } from '../mvccpb/index.js';
import type { BytesLike, KV, Watch } from '../server/kv.js';

/** Cancels a watch, ignoring errors (a closed member has cancelled it already). */
export async function cancelQuietly(watch: Watch): Promise<void> {
  try {
    await watch.cancel();
  } catch {
    // nothing left to cancel
  }
}

function aborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

/** What to wait for. */
export interface WaitForEventOptions {
  /** Watch every key starting with the key. */
  prefix?: boolean;
  /** First revision to look at (inclusive). */
  startRevision: number;
  /** The event that ends the wait. */
  match: (ev: Event) => boolean;
  /** Stops the wait: the watch is cancelled and the signal's reason thrown. */
  signal?: AbortSignal;
}

/**
 * Watches `key` from `startRevision` until an event matches; returns it, or
 * `undefined` when the watch ended without one (the member closed, or the
 * start revision was compacted): the caller then reads again and decides.
 * @throws the signal's reason when aborted; the watch's error when it cannot start
 */
export async function waitForEvent(kv: KV, key: BytesLike, options: WaitForEventOptions): Promise<Event | undefined> {
  const { signal } = options;
  if (signal?.aborted === true) throw signal.reason;
  const watch = kv.watch(key, { startRevision: options.startRevision, prefix: options.prefix === true });
  const onAbort = (): void => {
    void cancelQuietly(watch);
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const res of watch) {
      for (const ev of res.events) if (options.match(ev)) return ev;
      if (res.canceled) break;
    }
    if (aborted(signal)) throw signal!.reason;
    return undefined;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await cancelQuietly(watch);
  }
}

/** Waits for the deletion of `key` after `startRevision - 1`; false when the watch ended first. */
export async function waitDelete(kv: KV, key: BytesLike, startRevision: number, signal?: AbortSignal): Promise<boolean> {
  const ev = await waitForEvent(kv, key, { startRevision, match: (e) => e.type === 'DELETE', signal });
  return ev !== undefined;
}

/**
 * Waits until no key under `prefix` has a createRevision at most
 * `maxCreateRevision` (etcd's `waitDeletes`): each round reads the newest
 * such key and waits for its deletion, so a waiter watches only the key just
 * before it (no thundering herd). Returns the revision of the last read.
 */
export async function waitDeletes(kv: KV, prefix: string, maxCreateRevision: number, signal?: AbortSignal): Promise<number> {
  for (;;) {
    if (signal?.aborted === true) throw signal.reason;
    const res = await kv.range({
      key: prefix,
      prefix: true,
      maxCreateRevision: Math.max(1, maxCreateRevision),
      sortTarget: 'CREATE',
      sortOrder: 'DESCEND',
      limit: 1,
      keysOnly: true,
    });
    const last = res.kvs[0];
    if (last === undefined || maxCreateRevision < 1) return res.header.revision;
    await waitDelete(kv, last.key, res.header.revision + 1, signal);
  }
}

/**
 * Waits for the next PUT under `dir` after `revision`; false when
 * the watch ended without one (the caller reads again).
 */
export async function waitForPut(kv: KV, dir: string, revision: number, signal: AbortSignal): Promise<boolean> {
  const ev = await waitForEvent(kv, dir, { prefix: true, startRevision: revision + 1, match: (e) => e.type === 'PUT', signal });
  return ev !== undefined;
}
