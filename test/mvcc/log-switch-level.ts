// A memory-level database that models how LevelDB's write-ahead log loses
// writes in a power loss, including what CrashableLevel leaves out: when its
// write buffer fills, LevelDB starts a new log file and closes the old one
// without fsync (google/leveldb#193, classic-level's LevelDB 1.20). The old
// log is durable only once its write buffer is flushed to a table. So a
// synced write makes durable the writes before it in its own log file, and
// not those of an earlier log file.
//
// - every write is visible at once;
// - a write is appended to the current log; before a write, a log holding
//   `switchAfterOps` key operations or more is closed (unsynced) and a new
//   one begins;
// - a synced write makes its log durable up to itself;
// - `compactRange` (which classic-level has, and which flushes LevelDB's
//   write buffers to fsynced tables) and `flush()` make everything durable;
// - `crash()` keeps, of each log in order, what was synced in it; `open()`
//   restarts with that. With `crashAt(n)`, the crash loses what a power
//   loss right after the n-th write from then on would have lost (the
//   writes after it included).
import { MemoryLevel } from 'memory-level';

interface PrivateOp {
  type: 'put' | 'del';
  key: Uint8Array;
  value?: Uint8Array;
}

interface PrivateApi {
  _put(key: Uint8Array, value: Uint8Array, options: { sync?: boolean }): Promise<void>;
  _del(key: Uint8Array, options: { sync?: boolean }): Promise<void>;
  _batch(ops: PrivateOp[], options: { sync?: boolean }): Promise<void>;
  _clear(options: Record<string, unknown>): Promise<void>;
}

const memory = MemoryLevel.prototype as unknown as PrivateApi;

interface Log {
  ops: PrivateOp[];
  /** Ops durable in this log (a synced write made them so). */
  synced: number;
}

function mapKey(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
}

export class LogSwitchLevel extends MemoryLevel<Uint8Array, Uint8Array> {
  readonly #switchAfterOps: number;
  readonly #tables = new Map<string, Uint8Array>();
  #logs: Log[] = [{ ops: [], synced: 0 }];
  /** Logs closed unsynced so far. */
  switches = 0;
  /** Writes so far. */
  writes = 0;
  #crashAt = Number.POSITIVE_INFINITY;
  /** The durable image as of write {@link #crashAt}. */
  #frozen: Map<string, Uint8Array> | undefined;

  constructor(switchAfterOps: number) {
    super({ keyEncoding: 'view', valueEncoding: 'view', storeEncoding: 'view' });
    this.#switchAfterOps = switchAfterOps;
  }

  /** Everything written so far becomes durable (a flush of the write buffers to tables). */
  flush(): void {
    if (this.writes >= this.#crashAt) return; // after the power loss
    for (const log of this.#logs) for (const op of log.ops) this.#applyTo(this.#tables, op);
    this.#logs = [{ ops: [], synced: 0 }];
  }

  /** classic-level's compactRange: LevelDB flushes its write buffers to fsynced tables first. */
  async compactRange(_start: unknown, _end: unknown, _options?: object): Promise<void> {
    this.flush();
  }

  /** {@link crash} loses what a power loss right after the `n`-th write (counted in {@link writes}) would have. */
  crashAt(n: number): void {
    this.#crashAt = n;
    this.#frozen = undefined;
    if (this.writes >= n) throw new Error(`write ${n} is past`);
  }

  #durableImage(): Map<string, Uint8Array> {
    const image = new Map(this.#tables);
    for (const log of this.#logs) for (const op of log.ops.slice(0, log.synced)) this.#applyTo(image, op);
    return image;
  }

  /** A power loss: of each log, only what a synced write in it made durable remains. */
  async crash(): Promise<void> {
    await this.close();
    const image = this.#frozen ?? this.#durableImage();
    this.#frozen = undefined;
    this.#crashAt = Number.POSITIVE_INFINITY;
    this.#tables.clear();
    for (const [k, v] of image) this.#tables.set(k, v);
    this.#logs = [{ ops: [], synced: 0 }];
    await memory._clear.call(this, { limit: -1, reverse: false });
    const ops: PrivateOp[] = [...image].map(([k, v]) => ({ type: 'put', key: new Uint8Array(Buffer.from(k, 'latin1')), value: v }));
    if (ops.length > 0) await memory._batch.call(this, ops, {});
  }

  #applyTo(image: Map<string, Uint8Array>, op: PrivateOp): void {
    if (op.type === 'put') image.set(mapKey(op.key), op.value!);
    else image.delete(mapKey(op.key));
  }

  #record(ops: PrivateOp[], sync: boolean): void {
    let log = this.#logs[this.#logs.length - 1]!;
    if (log.ops.length >= this.#switchAfterOps) {
      log = { ops: [], synced: 0 };
      this.#logs.push(log);
      this.switches++;
    }
    for (const op of ops) log.ops.push(op.type === 'put' ? { type: 'put', key: op.key, value: op.value! } : { type: 'del', key: op.key });
    if (sync) log.synced = log.ops.length;
    if (++this.writes === this.#crashAt) this.#frozen = this.#durableImage();
  }

  async _put(key: Uint8Array, value: Uint8Array, options: { sync?: boolean }): Promise<void> {
    this.#record([{ type: 'put', key, value }], options?.sync === true);
    return memory._put.call(this, key, value, options);
  }

  async _del(key: Uint8Array, options: { sync?: boolean }): Promise<void> {
    this.#record([{ type: 'del', key }], options?.sync === true);
    return memory._del.call(this, key, options);
  }

  async _batch(ops: PrivateOp[], options: { sync?: boolean }): Promise<void> {
    this.#record(ops, options?.sync === true);
    return memory._batch.call(this, ops, options);
  }

  /** classic-level's clear: deletes written without sync (one write here). */
  async _clear(options: Record<string, unknown>): Promise<void> {
    const { keyEncoding: _k, valueEncoding: _v, ...range } = options;
    const keys = (await this.keys({ ...range, keyEncoding: 'view' } as never).all()) as unknown as Uint8Array[];
    if (keys.length === 0) return;
    return this._batch(
      keys.map((key) => ({ type: 'del', key })),
      {},
    );
  }
}
