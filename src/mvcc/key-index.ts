/**
 * The revisions of one key (etcd's `keyIndex`, server/mvcc/key_index.go).
 *
 * A key has one or more generations. A generation holds the revisions from
 * a creation to the deletion that ends it (the tombstone, the last revision
 * of a finished generation); a tombstone also opens a new empty generation.
 * For example `put(1) put(2) tombstone(3) put(4) tombstone(5)` gives:
 *
 * ```
 * generations: [{1, 2, 3(t)}, {4, 5(t)}, {empty}]
 * ```
 *
 * Compacting at `atRev` removes every revision `<= atRev` except the largest
 * one (and that one too when it is a tombstone); generations left empty are
 * removed, and a key with nothing left is removed from the tree index.
 * @module
 */
import type { KeyValue } from '../mvccpb/index.js';
import { ErrorCode, FaultError } from '../errors.js';
import { revisionGreater, revisionId, type Revision } from './revision.js';
import { fromSkey } from './skey.js';

const ZERO: Revision = { main: 0, sub: 0 };
const NO_BYTES = new Uint8Array(0);

function broken(msg: string): never {
  throw new FaultError(ErrorCode.INTERNAL, `mvcc: ${msg}`);
}

/** The revisions of one life of a key, from its creation to its deletion. */
export class Generation {
  /** Number of revisions ever put in this generation (the key's version at its last revision). */
  ver: number;
  /** Revision that created the generation. */
  created: Revision;
  /** Revisions in ascending order; a finished generation ends with its tombstone. */
  revs: Revision[];

  constructor(ver = 0, created: Revision = ZERO, revs: Revision[] = []) {
    this.ver = ver;
    this.created = created;
    this.revs = revs;
  }

  /** True when the generation holds no revision yet: the one a tombstone starts (the key does not exist now), or a new key's before its first put. */
  isEmpty(): boolean {
    return this.revs.length === 0;
  }

  /**
   * Walks the revisions from the newest down while `f` returns true.
   * @returns the position where `f` returned false, or -1
   */
  walk(f: (rev: Revision) => boolean): number {
    for (let i = this.revs.length - 1; i >= 0; i--) {
      if (!f(this.revs[i]!)) return i;
    }
    return -1;
  }
}

/** What {@link KeyIndex.get} finds. */
export interface KeyAtRevision {
  /** The revision of the version visible at the asked revision. */
  modified: Revision;
  /** The creation revision of its generation. */
  created: Revision;
  /** Its version (1 for the creation). */
  ver: number;
}

/** The generations of a key that has none (never written, or compacted away); never changed. */
const NONE = Object.freeze([]) as unknown as Generation[];

/**
 * The revisions of one key, its current lease, and its current value while
 * that is not readable from the backend yet.
 *
 * The key and value are held as binary strings (one char per byte), not as
 * `Uint8Array`s: a typed array costs an object, an `ArrayBuffer` and an
 * off-heap allocation each, about 400 bytes per key over a store of small
 * values, where a one-byte string costs its length and a 16-byte header.
 * Readers get new arrays ({@link cachedKv}).
 *
 * A key holding a single revision (one generation, one put: most keys of a
 * large store, and every key a compaction leaves with one live version) is
 * kept in this object alone, without the arrays and objects of the general
 * form, which cost some 170 bytes more per key.
 */
export class KeyIndex {
  /** The key as a binary string (one char per byte; sorts in byte order). */
  readonly skey: string;
  /** `main` of the last revision that changed the key (a put or its tombstone); 0 before any. */
  modMain = 0;
  /** `sub` of that revision. */
  modSub = 0;
  /**
   * The current value as a binary string, while the key exists and its
   * record may not be readable from the backend yet; undefined after a
   * deletion, and once the store has written the record (see `KvCore`).
   */
  val: string | undefined = undefined;
  /** The lease the current value is attached to (0 = none). */
  lease = 0;
  /**
   * The generations, or undefined while the key holds a single revision:
   * one generation created at `createdMain`/`createdSub`, at version `ver`,
   * whose only revision is the last one ({@link modMain}).
   */
  private gens: Generation[] | undefined = NONE;
  private ver = 0;
  private createdMain = 0;
  private createdSub = 0;

  constructor(skey: string) {
    this.skey = skey;
  }

  /** The last revision that changed the key (a put or its tombstone). */
  get modified(): Revision {
    return { main: this.modMain, sub: this.modSub };
  }

  /** The generations, oldest first (a copy when the key holds a single revision: do not change it). */
  get generations(): readonly Generation[] {
    return this.gens ?? [this.single()];
  }

  /** The single-revision form as a generation. */
  private single(): Generation {
    return new Generation(this.ver, { main: this.createdMain, sub: this.createdSub }, [this.modified]);
  }

  /** The generations in the general form (converting a single revision to it). */
  private full(): Generation[] {
    if (this.gens === undefined) this.gens = [this.single()];
    return this.gens;
  }

  /**
   * The current version of the key as a new, frozen {@link KeyValue} built
   * from the cached value; the caller knows the key exists and {@link val}
   * is set.
   */
  cachedKv(): KeyValue {
    const val = this.val;
    if (val === undefined) broken(`no cached value for ${this.modMain}_${this.modSub}`);
    return Object.freeze({
      key: fromSkey(this.skey),
      createRevision: this.currentCreated(),
      modRevision: this.modMain,
      version: this.currentVersion(),
      value: fromSkey(val),
      lease: this.lease,
    });
  }

  /**
   * The current version's revisions, version and lease, with an empty key
   * and value (what a compare on anything but the value needs); the caller
   * knows the key exists.
   */
  currentMeta(): KeyValue {
    return { key: NO_BYTES, createRevision: this.currentCreated(), modRevision: this.modMain, version: this.currentVersion(), value: NO_BYTES, lease: this.lease };
  }

  /** `main` of the revision that created the current generation; the caller knows the key exists. */
  currentCreated(): number {
    const gens = this.gens;
    return gens === undefined ? this.createdMain : gens[gens.length - 1]!.created.main;
  }

  /** The version of the current value (0 when the key does not exist now). */
  currentVersion(): number {
    const gens = this.gens;
    if (gens === undefined) return this.ver;
    const n = gens.length;
    if (n === 0) return 0;
    const g = gens[n - 1]!;
    return g.revs.length === 0 ? 0 : g.ver;
  }

  /** Records a put at `{main, sub}`; revisions must grow. */
  put(main: number, sub: number): void {
    if (!(main > this.modMain || (main === this.modMain && sub > this.modSub))) broken(`put with a revision ${main}_${sub} not above ${this.modMain}_${this.modSub}`);
    if (this.gens === NONE) {
      this.setSingle(1, main, sub, main, sub);
      return;
    }
    const gens = this.full();
    const rev: Revision = { main, sub };
    // Arrays are created with their first element (a literal of one): an
    // empty array grown by push reserves 17 slots, which over every key of
    // a large store is most of the index's memory.
    const g = gens[gens.length - 1]!;
    if (g.revs.length === 0) {
      g.created = rev;
      g.revs = [rev];
    } else {
      g.revs.push(rev);
    }
    g.ver++;
    this.modMain = main;
    this.modSub = sub;
  }

  private setSingle(ver: number, createdMain: number, createdSub: number, modMain: number, modSub: number): void {
    this.gens = undefined;
    this.ver = ver;
    this.createdMain = createdMain;
    this.createdSub = createdSub;
    this.modMain = modMain;
    this.modSub = modSub;
  }

  /**
   * Rebuilds the first generation from a stored version whose history was
   * compacted away: created at `created`, last modified at `modified`, at
   * version `ver`.
   */
  restore(created: Revision, modified: Revision, ver: number): void {
    if (this.gens !== NONE) broken('restore on a non-empty key index');
    this.setSingle(ver, created.main, created.sub, modified.main, modified.sub);
  }

  /**
   * Records a deletion at `{main, sub}`: the tombstone ends the current
   * generation and a new empty one starts.
   * @returns false (and changes nothing) when the key does not exist now
   */
  tombstone(main: number, sub: number): boolean {
    if (this.isEmpty()) broken(`tombstone on an empty key index`);
    if (this.currentVersion() === 0) return false;
    const gens = this.full();
    this.put(main, sub);
    gens.push(new Generation());
    return true;
  }

  /** The version of the key visible at `atRev`, or undefined when it did not exist then. */
  get(atRev: number): KeyAtRevision | undefined {
    if (this.gens === undefined) {
      if (this.modMain > atRev) return undefined;
      return { modified: this.modified, created: { main: this.createdMain, sub: this.createdSub }, ver: this.ver };
    }
    const g = this.findGeneration(atRev);
    if (g === undefined || g.isEmpty()) return undefined;
    const n = g.walk((r) => r.main > atRev);
    if (n === -1) return undefined;
    return { modified: g.revs[n]!, created: g.created, ver: g.ver - (g.revs.length - n - 1) };
  }

  /**
   * Revisions with `main >= rev`, one per main revision (the largest sub),
   * in ascending order.
   */
  since(rev: number): Revision[] {
    const gens = this.gens;
    if (gens === undefined) return this.modMain >= rev ? [this.modified] : [];
    if (gens.length === 0) return [];
    const since: Revision = { main: rev, sub: 0 };
    let gi = gens.length - 1;
    for (; gi > 0; gi--) {
      const g = gens[gi]!;
      if (g.isEmpty()) continue;
      if (revisionGreater(since, g.created)) break;
    }
    const revs: Revision[] = [];
    let last = 0;
    for (; gi < gens.length; gi++) {
      for (const r of gens[gi]!.revs) {
        if (revisionGreater(since, r)) continue;
        if (r.main === last) {
          revs[revs.length - 1] = r;
          continue;
        }
        revs.push(r);
        last = r.main;
      }
    }
    return revs;
  }

  /**
   * Compacts at `atRev` (see the module doc). Adds the revision kept for this
   * key (the largest `<= atRev`, unless it is a tombstone) to `available`.
   * A key left with a single live revision takes the single-revision form.
   */
  compact(atRev: number, available: Set<string>): void {
    if (this.isEmpty()) broken('compact on an empty key index');
    if (this.gens === undefined) {
      if (this.modMain <= atRev) available.add(`${this.modMain}_${this.modSub}`);
      return;
    }
    let { genIdx, revIndex } = this.doCompact(atRev, available);
    let gens = this.gens;
    const g = gens[genIdx]!;
    if (!g.isEmpty()) {
      if (revIndex !== -1) g.revs = g.revs.slice(revIndex);
      // a finished generation reduced to its tombstone goes entirely
      if (g.revs.length === 1 && genIdx !== gens.length - 1) {
        available.delete(revisionId(g.revs[0]!));
        genIdx++;
      }
    }
    if (genIdx > 0) this.gens = gens = gens.slice(genIdx);
    if (gens.length === 1 && gens[0]!.revs.length === 1) {
      const only = gens[0]!;
      this.setSingle(only.ver, only.created.main, only.created.sub, this.modMain, this.modSub);
    }
  }

  /** Adds to `available` the revision {@link compact} at `atRev` would keep, without changing anything. */
  keep(atRev: number, available: Set<string>): void {
    if (this.isEmpty()) return;
    if (this.gens === undefined) {
      if (this.modMain <= atRev) available.add(`${this.modMain}_${this.modSub}`);
      return;
    }
    const gens = this.gens;
    const { genIdx, revIndex } = this.doCompact(atRev, available);
    const g = gens[genIdx]!;
    if (!g.isEmpty() && revIndex === g.revs.length - 1 && genIdx !== gens.length - 1) {
      available.delete(revisionId(g.revs[revIndex]!));
    }
  }

  private doCompact(atRev: number, available: Set<string>): { genIdx: number; revIndex: number } {
    const gens = this.full();
    let genIdx = 0;
    let g = gens[0]!;
    // the first generation that includes atRev or was created after it
    while (genIdx < gens.length - 1) {
      const tomb = g.revs[g.revs.length - 1]!.main;
      if (tomb > atRev) break;
      genIdx++;
      g = gens[genIdx]!;
    }
    const revIndex = g.walk((r) => {
      if (r.main <= atRev) {
        available.add(revisionId(r));
        return false;
      }
      return true;
    });
    return { genIdx, revIndex };
  }

  /** True when nothing is left (one empty generation, or none). */
  isEmpty(): boolean {
    const gens = this.gens;
    if (gens === undefined) return false;
    return gens.length === 0 || (gens.length === 1 && gens[0]!.isEmpty());
  }

  /** True when the key exists now (its last generation is not empty). */
  isLive(): boolean {
    return this.currentVersion() !== 0;
  }

  /** Every revision still indexed, ascending, with whether it is a tombstone. */
  allRevisions(): { rev: Revision; tombstone: boolean }[] {
    const out: { rev: Revision; tombstone: boolean }[] = [];
    const gens = this.generations;
    const last = gens.length - 1;
    gens.forEach((g, gi) => {
      g.revs.forEach((r, ri) => out.push({ rev: r, tombstone: gi !== last && ri === g.revs.length - 1 }));
    });
    return out;
  }

  /**
   * The generation `rev` falls in, or undefined when the key did not exist
   * at `rev` (before its first creation, or between a deletion and the next
   * creation).
   */
  private findGeneration(rev: number): Generation | undefined {
    const gens = this.full();
    const lastg = gens.length - 1;
    for (let cg = lastg; cg >= 0; cg--) {
      const g = gens[cg]!;
      if (g.revs.length === 0) continue;
      if (cg !== lastg) {
        const tomb = g.revs[g.revs.length - 1]!.main;
        if (tomb <= rev) return undefined;
      }
      if (g.revs[0]!.main <= rev) return g;
    }
    return undefined;
  }
}
