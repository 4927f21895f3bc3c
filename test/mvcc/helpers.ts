// Shared helpers for the MVCC store tests: a store on memory-level, byte
// helpers, and a writer that applies requests with growing Raft indexes.
import { MemoryLevel } from 'memory-level';
import { MvccStore, type MvccStoreOptions, type Watcher, type WriteRequest, type WriteResponse } from '../../src/mvcc/index.js';
import type { KeyValue, WatchResponse } from '../../src/mvccpb/index.js';

/** UTF-8 bytes of a string. */
export function b(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/** A view of a detached ArrayBuffer (transferred): its length reads 0, but copying from it throws. */
export function detachedView(): Uint8Array {
  const u = new Uint8Array(new ArrayBuffer(4));
  structuredClone(u.buffer, { transfer: [u.buffer] });
  return u;
}

/** A view past the end of a resizable ArrayBuffer that has shrunk: as a detached one, its length reads 0 and copying throws. */
export function shrunkView(): Uint8Array {
  // a resizable ArrayBuffer (ES2024; this project's lib is older)
  const Resizable = ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer & { resize(n: number): void };
  const buf = new Resizable(4, { maxByteLength: 8 });
  const u = new Uint8Array(buf, 0, 4);
  buf.resize(2);
  return u;
}

/**
 * A Proxy of a Uint8Array holding `k`: it passes `instanceof Uint8Array`,
 * but reading its length or bytes throws a TypeError (the proxy is not a
 * typed array itself).
 */
export function proxiedView(): Uint8Array {
  return new Proxy(new TextEncoder().encode('k'), {});
}

/** A string of UTF-8 bytes. */
export function s(u: Uint8Array): string {
  return new TextDecoder().decode(u);
}

/** A compact view of a key-value: `key=value@create/mod/version[/lease]`. */
export function kvStr(kv: KeyValue | undefined): string {
  if (kv === undefined) return '-';
  return `${s(kv.key)}=${s(kv.value)}@${kv.createRevision}/${kv.modRevision}/${kv.version}${kv.lease ? `/L${kv.lease}` : ''}`;
}

export interface TestStore {
  store: MvccStore;
  db: MemoryLevel<string, string>;
  /** Applies one request at the next index; returns the response or throws the apply error. */
  write(req: WriteRequest): Promise<WriteResponse>;
  /** Takes the next Raft index (for calling `store.apply` directly). */
  takeIndex(): number;
}

/** Opens a store on a fresh memory-level database (or on `db`). */
export async function openStore(options: MvccStoreOptions = {}, db = new MemoryLevel<string, string>()): Promise<TestStore> {
  const store = await MvccStore.open(db.sublevel('mvcc'), options);
  let index = store.appliedIndex();
  return {
    store,
    db,
    takeIndex: () => (index = Math.max(index, store.appliedIndex()) + 1),
    async write(req) {
      index = Math.max(index, store.appliedIndex()) + 1;
      const r = await store.apply(index, req);
      if (r.status === 'failed') throw r.error;
      if (r.status !== 'applied') throw new Error(`unexpected apply status ${r.status}`);
      return r.response;
    },
  };
}

/** Shorthand writes. */
export async function put(t: TestStore, key: string, value: string, extra: { lease?: number; prevKv?: boolean } = {}) {
  const r = await t.write({ put: { key: b(key), value: b(value), ...extra } });
  if (!('put' in r)) throw new Error('not a put response');
  return r.put;
}

export async function del(t: TestStore, key: string, rangeEnd?: string, prevKv = false) {
  const r = await t.write({ deleteRange: { key: b(key), rangeEnd: rangeEnd === undefined ? undefined : b(rangeEnd), prevKv } });
  if (!('deleteRange' in r)) throw new Error('not a deleteRange response');
  return r.deleteRange;
}

/** The watcher's next response, or a failure after `ms` ms (or when the watch ends). */
export async function nextResp(w: Watcher, ms = 2000): Promise<WatchResponse> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(new Error('no watch response in time')), ms);
  });
  try {
    const r = await Promise.race([w.next(), timeout]);
    if (r.done) throw new Error('watch ended');
    return r.value;
  } finally {
    clearTimeout(timer);
  }
}
