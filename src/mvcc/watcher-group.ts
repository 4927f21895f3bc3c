/**
 * A set of watchers organised for matching keys (etcd's `watcherGroup`,
 * server/mvcc/watcher_group.go): single-key watchers in a map, range
 * watchers grouped by their interval. Matching a key costs one map lookup
 * plus one comparison per distinct watched range.
 * @module
 */
import type { IndexRangeEnd } from './tree-index.js';
import type { Watcher } from './watcher.js';

interface RangeSet {
  start: string;
  end: string;
  watchers: Set<Watcher>;
}

function rangeId(start: string, end: string): string {
  return `${start.length}:${start}${end}`;
}

/** Watchers by key and by range. */
export class WatcherGroup {
  private readonly keyWatchers = new Map<string, Set<Watcher>>();
  private readonly ranges = new Map<string, RangeSet>();
  /** Every watcher of the group. */
  readonly watchers = new Set<Watcher>();

  get size(): number {
    return this.watchers.size;
  }

  has(w: Watcher): boolean {
    return this.watchers.has(w);
  }

  add(w: Watcher): void {
    if (this.watchers.has(w)) return;
    this.watchers.add(w);
    if (w.end === undefined) {
      let set = this.keyWatchers.get(w.skey);
      if (set === undefined) this.keyWatchers.set(w.skey, (set = new Set()));
      set.add(w);
      return;
    }
    const id = rangeId(w.skey, w.end);
    let rs = this.ranges.get(id);
    if (rs === undefined) this.ranges.set(id, (rs = { start: w.skey, end: w.end, watchers: new Set() }));
    rs.watchers.add(w);
  }

  /** Removes a watcher; false when it was not in the group. */
  delete(w: Watcher): boolean {
    if (!this.watchers.delete(w)) return false;
    if (w.end === undefined) {
      const set = this.keyWatchers.get(w.skey);
      set?.delete(w);
      if (set !== undefined && set.size === 0) this.keyWatchers.delete(w.skey);
      return true;
    }
    const id = rangeId(w.skey, w.end);
    const rs = this.ranges.get(id);
    rs?.watchers.delete(w);
    if (rs !== undefined && rs.watchers.size === 0) this.ranges.delete(id);
    return true;
  }

  /** Calls `f` for each watcher whose key or range holds `skey`. */
  forEachMatch(skey: string, f: (w: Watcher) => void): void {
    const set = this.keyWatchers.get(skey);
    if (set !== undefined) for (const w of set) f(w);
    for (const rs of this.ranges.values()) {
      if (skey >= rs.start && (rs.end === '' || skey < rs.end)) for (const w of rs.watchers) f(w);
    }
  }

  /** True when some watcher of the group watches `skey`. */
  contains(skey: string): boolean {
    if (this.keyWatchers.has(skey)) return true;
    for (const rs of this.ranges.values()) if (skey >= rs.start && (rs.end === '' || skey < rs.end)) return true;
    return false;
  }
}

/** True when a watcher's range holds `skey`. */
export function watches(w: { skey: string; end: IndexRangeEnd }, skey: string): boolean {
  if (w.end === undefined) return skey === w.skey;
  return skey >= w.skey && (w.end === '' || skey < w.end);
}
