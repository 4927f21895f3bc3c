/**
 * The in-memory index of every key (etcd's `treeIndex`, server/mvcc/index.go):
 * a B+ tree (sorted-btree) from key to its {@link KeyIndex}. Keys are held as
 * binary strings (one char per byte), whose JavaScript order is byte order.
 * @module
 */
import sortedBtree from 'sorted-btree';
import { KeyIndex, type KeyAtRevision } from './key-index.js';
import type { Revision } from './revision.js';

const BTree = sortedBtree.default;
type Tree = InstanceType<typeof sortedBtree.default<string, KeyIndex>>;

/**
 * The end of a key range as the index takes it: `undefined` = the single key,
 * `''` = every key from the start on, else the exclusive end (a binary string).
 */
export type IndexRangeEnd = string | undefined;

/** One key found by {@link TreeIndex.range}, with its version at the read revision. */
export interface IndexedKey {
  /** The key's index entry: its key, revisions and generations. */
  ki: KeyIndex;
  /** The key's version visible at the read revision: its modified and created revisions and version. */
  at: KeyAtRevision;
}

/** The key index of the store. */
export class TreeIndex {
  private tree: Tree = new BTree<string, KeyIndex>();

  /** Number of keys indexed (live or with history). */
  get size(): number {
    return this.tree.size;
  }

  /** The index of one key. */
  get(skey: string): KeyIndex | undefined {
    return this.tree.get(skey);
  }

  /** The index of one key, created empty when missing. */
  getOrCreate(skey: string): KeyIndex {
    let ki = this.tree.get(skey);
    if (ki === undefined) {
      ki = new KeyIndex(skey);
      this.tree.set(skey, ki);
    }
    return ki;
  }

  /** Records a put of `key` at `rev`. */
  put(skey: string, rev: Revision): KeyIndex {
    const ki = this.getOrCreate(skey);
    ki.put(rev.main, rev.sub);
    return ki;
  }

  /** Calls `f` for each key index in the range, in key order, until `f` returns false. */
  forEach(start: string, end: IndexRangeEnd, f: (ki: KeyIndex) => boolean | void): void {
    if (end === undefined) {
      const ki = this.tree.get(start);
      if (ki !== undefined) f(ki);
      return;
    }
    if (end !== '' && end <= start) return;
    const hi = end === '' ? this.tree.maxKey() : end;
    if (hi === undefined) return;
    this.tree.forRange(start, hi, end === '', (_k, ki) => (f(ki) === false ? { break: true } : undefined));
  }

  /**
   * Keys of the range that exist at `atRev`, in key order, at most `limit`
   * (0 = all), and how many exist in total.
   */
  range(start: string, end: IndexRangeEnd, atRev: number, limit = 0): { keys: IndexedKey[]; total: number } {
    const keys: IndexedKey[] = [];
    let total = 0;
    this.forEach(start, end, (ki) => {
      const at = ki.get(atRev);
      if (at === undefined) return;
      total++;
      if (limit <= 0 || keys.length < limit) keys.push({ ki, at });
    });
    return { keys, total };
  }

  /** Key indexes of the range whose key exists now. */
  live(start: string, end: IndexRangeEnd): KeyIndex[] {
    const out: KeyIndex[] = [];
    this.forEach(start, end, (ki) => {
      if (ki.isLive()) out.push(ki);
    });
    return out;
  }

  /**
   * Compacts every key at `atRev` and drops keys left empty.
   * @returns the revisions kept at or below `atRev` (as `revisionId`s)
   */
  compact(atRev: number): Set<string> {
    const available = new Set<string>();
    const empty: string[] = [];
    this.tree.forEach((ki, skey) => {
      ki.compact(atRev, available);
      if (ki.isEmpty()) empty.push(skey);
    });
    for (const k of empty) this.tree.delete(k);
    return available;
  }

  /** The revisions a compaction at `atRev` would keep at or below it, changing nothing. */
  keep(atRev: number): Set<string> {
    const available = new Set<string>();
    this.tree.forEach((ki) => ki.keep(atRev, available));
    return available;
  }

  /** Every key index in key order. */
  all(): KeyIndex[] {
    return this.tree.valuesArray();
  }

  /** Removes every key. */
  clear(): void {
    this.tree = new BTree<string, KeyIndex>();
  }
}
