/**
 * {@link CrashableLevel}: an in-memory database that can lose its unsynced
 * writes, to test crash recovery without a disk.
 * @module
 */
import { MemoryLevel, type DatabaseOptions } from 'memory-level';
import { describeValue } from '../arg-values.js';
import { ErrorCode, UsageError } from '../errors.js';
import { checkOptionKeys } from '../option-keys.js';

/** A write in the private (encoded) form abstract-level hands to `_batch`. */
interface PrivateOp {
  type: 'put' | 'del';
  key: Uint8Array;
  value?: Uint8Array;
}

/** The private methods of MemoryLevel that {@link CrashableLevel} wraps (untyped in its `.d.ts`). */
interface PrivateApi {
  _put(key: Uint8Array, value: Uint8Array, options: { sync?: boolean }): Promise<void>;
  _del(key: Uint8Array, options: { sync?: boolean }): Promise<void>;
  _batch(ops: PrivateOp[], options: { sync?: boolean }): Promise<void>;
  _clear(options: Record<string, unknown>): Promise<void>;
}

const memory = MemoryLevel.prototype as unknown as PrivateApi;

function mapKey(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
}

/**
 * A memory-level database (an `AbstractLevel`, usable wherever one is, with
 * sublevels) that models the durability of LevelDB's write-ahead log under
 * power loss:
 *
 * - every write (put, del, batch, chained batch, clear, through the root or
 *   any sublevel) is visible at once, but stays volatile;
 * - a write with `sync: true` makes itself and every earlier write durable,
 *   in order (a synced append to the log also flushes what precedes it);
 *   {@link flush} does the same without writing;
 * - {@link crash} closes the database (pending and later operations reject
 *   with `LEVEL_DATABASE_NOT_OPEN`) and throws away every volatile write, as a
 *   power loss would. `await db.open()` then "restarts" it with the durable
 *   contents only; sublevels must be created again.
 *
 * Writes are recorded in the order they reach the database, so batches of a
 * Raft log storage and of a state machine sharing it interleave exactly as
 * they would in one LevelDB. `clear()` is recorded as deletes of the keys it
 * removed, unsynced. Keys and values are stored as `Uint8Array` ('view');
 * other encodings are transcoded by abstract-level as usual.
 *
 * A process kill (SIGKILL) on a real disk loses less than this: the OS still
 * holds unsynced writes. This models the worst case, power loss.
 *
 * @example
 * ```ts
 * const root = new CrashableLevel();
 * const storage = await LevelLogStorage.open({ db: root.sublevel('raft', { keyEncoding: 'view', valueEncoding: 'view' }) });
 * await storage.save({ entries }, { sync: true }); // durable
 * await storage.compact(3);                        // volatile
 * await root.crash();
 * await root.open();                               // only synced writes remain
 * ```
 */
export class CrashableLevel<KDefault = string, VDefault = string> extends MemoryLevel<KDefault, VDefault> {
  /** Writes since the last synced write, in order. */
  #pending: PrivateOp[] = [];
  /** The durable image: latin1 string of the key bytes → value. */
  readonly #durable = new Map<string, Uint8Array>();
  #syncedWrites = 0;
  #unsyncedWrites = 0;
  #crashes = 0;

  /**
   * @param options - abstract-level database options: `keyEncoding` and
   *   `valueEncoding` (the default encodings: a name such as `'utf8'` or
   *   `'view'`, or an encoding object), `createIfMissing`, `errorIfExists`;
   *   data is always stored as `Uint8Array`
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `options` is not an
   *   object, has an option of another name (`storeEncoding` included: it
   *   is always `'view'`), or an encoding that is neither a name nor an
   *   object; abstract-level's `LEVEL_ENCODING_NOT_FOUND` for an unknown name
   */
  constructor(options?: Omit<DatabaseOptions<KDefault, VDefault>, 'storeEncoding'>) {
    super({ ...CrashableLevel.#checkOptions(options), storeEncoding: 'view' });
  }

  /** The options, checked (abstract-level ignored a misspelt name and threw a raw TypeError for an encoding of another type). */
  static #checkOptions<T>(options: T): T | undefined {
    if (options === undefined) return undefined;
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `CrashableLevel options must be an object, not ${describeValue(options)}`);
    }
    checkOptionKeys(options, ['keyEncoding', 'valueEncoding', 'createIfMissing', 'errorIfExists'], 'CrashableLevel options', ErrorCode.INVALID_ARGUMENT);
    for (const k of ['keyEncoding', 'valueEncoding'] as const) {
      const v = (options as Record<string, unknown>)[k];
      if (v !== undefined && typeof v !== 'string' && (v === null || typeof v !== 'object')) {
        throw new UsageError(ErrorCode.INVALID_ARGUMENT, `CrashableLevel options.${k} must be an encoding name or object, not ${describeValue(v)}`);
      }
    }
    return options;
  }

  /** Number of writes made with `sync: true` so far. */
  get syncedWrites(): number {
    return this.#syncedWrites;
  }

  /** Number of writes made without `sync: true` so far. */
  get unsyncedWrites(): number {
    return this.#unsyncedWrites;
  }

  /** Number of key operations (puts and deletes) that a crash now would lose. */
  get volatileOperations(): number {
    return this.#pending.length;
  }

  /** Number of times {@link crash} was called. */
  get crashes(): number {
    return this.#crashes;
  }

  /** Makes every write so far durable, as a synced write would (for instance a background fsync). */
  flush(): void {
    for (const op of this.#pending) {
      if (op.type === 'put') this.#durable.set(mapKey(op.key), op.value!);
      else this.#durable.delete(mapKey(op.key));
    }
    this.#pending = [];
  }

  /**
   * Simulates a power loss: closes the database, then reverts its contents to
   * the last durable state. Writes that resolved with `sync: true` (and every
   * write before them) survive; nothing else does. Call `open()` to restart.
   */
  async crash(): Promise<void> {
    this.#crashes++;
    // Writes apply synchronously and a closing database refuses new ones, so
    // once closed, every write that reached it is either durable or pending.
    await this.close(); // waits for an open or close in progress; a no-op when closed
    this.#pending = [];
    await memory._clear.call(this, { limit: -1, reverse: false });
    const ops: PrivateOp[] = [];
    for (const [key, value] of this.#durable) {
      ops.push({ type: 'put', key: new Uint8Array(Buffer.from(key, 'latin1')), value });
    }
    if (ops.length > 0) await memory._batch.call(this, ops, {});
  }

  #record(ops: PrivateOp[], sync: boolean): void {
    for (const op of ops) {
      this.#pending.push(op.type === 'put' ? { type: 'put', key: op.key, value: op.value! } : { type: 'del', key: op.key });
    }
    if (sync) {
      this.#syncedWrites++;
      this.flush();
    } else {
      this.#unsyncedWrites++;
    }
  }

  /** @internal abstract-level private API */
  async _put(key: Uint8Array, value: Uint8Array, options: { sync?: boolean }): Promise<void> {
    this.#record([{ type: 'put', key, value }], options?.sync === true);
    return memory._put.call(this, key, value, options);
  }

  /** @internal abstract-level private API */
  async _del(key: Uint8Array, options: { sync?: boolean }): Promise<void> {
    this.#record([{ type: 'del', key }], options?.sync === true);
    return memory._del.call(this, key, options);
  }

  /** @internal abstract-level private API */
  async _batch(ops: PrivateOp[], options: { sync?: boolean }): Promise<void> {
    this.#record(ops, options?.sync === true);
    return memory._batch.call(this, ops, options);
  }

  /** @internal abstract-level private API: deletes the keys in range, recorded as one unsynced write. */
  async _clear(options: Record<string, unknown>): Promise<void> {
    const { keyEncoding: _k, valueEncoding: _v, ...range } = options;
    const keys = (await this.keys({ ...range, keyEncoding: 'view' } as never).all()) as unknown as Uint8Array[];
    if (keys.length === 0) return;
    if (this.status !== 'open') throw new Error('the database closed during clear()');
    const ops: PrivateOp[] = keys.map((key) => ({ type: 'del', key }));
    return this._batch(ops, {});
  }
}
