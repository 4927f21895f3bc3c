/**
 * A checker for etcd's watch guarantees, given the authoritative sequence of
 * committed events and what each watcher received. Source: etcd API
 * guarantees, "Watch APIs" (ordered, unique, reliable, atomic, resumable,
 * bookmarkable) and the watch API reference (prev_kv, filters,
 * compact_revision).
 * @module
 */
import { ErrorCode, UsageError } from '../errors.js';
import { checkOptionsArg } from '../option-keys.js';
import { describeKeyRange, inKeyRange } from './key-range.js';
import type { KeyRange } from './key-range.js';

/** The kind of a watch event. */
export type WatchEventType = 'PUT' | 'DELETE';

/**
 * A key-value pair as a watch event carries it (etcd `mvccpb.KeyValue`).
 * For a DELETE event only `key` and `modRevision` (the deletion revision)
 * are meaningful; etcd leaves the others empty or 0.
 */
export interface WatchKeyValue {
  /** The key. */
  readonly key: string;
  /** PUT: revision of this write; DELETE: revision of the deletion. */
  readonly modRevision: number;
  /** PUT: the value written; DELETE: absent or empty. */
  readonly value?: string | undefined;
  /** PUT: revision of the key's creation; DELETE: absent or 0. */
  readonly createRevision?: number | undefined;
  /** PUT: writes since creation (1 for a creation); DELETE: absent or 0. */
  readonly version?: number | undefined;
}

/**
 * One event. In a committed history, `prevKv` is the pair before the event
 * when known (`null`: the key did not exist); when it is `undefined` the
 * checker derives it from the earlier committed events. In a stream,
 * `prevKv` is what the watcher received (`undefined`/`null` = none).
 */
export interface WatchEventRecord {
  /** PUT or DELETE. */
  readonly type: WatchEventType;
  /** The pair after the event (for a DELETE: the key and the deletion revision). */
  readonly kv: WatchKeyValue;
  /** The pair before the event; see above. */
  readonly prevKv?: WatchKeyValue | null | undefined;
}

/** One response a watcher received. */
export interface WatchResponseRecord {
  /** The events, in the order received. */
  readonly events: readonly WatchEventRecord[];
  /** Header revision, if known. */
  readonly revision?: number | undefined;
  /**
   * A progress notification (no events): claims every event up to
   * `revision` was delivered (etcd's "bookmarkable" guarantee).
   */
  readonly progressNotify?: boolean | undefined;
}

/** etcd's watch filters: `NOPUT` drops PUT events, `NODELETE` drops DELETE events. */
export type WatchFilter = 'NOPUT' | 'NODELETE';

/** What one watcher asked for and received. */
export interface WatchStreamRecord extends KeyRange {
  /** Label used in violation messages; default `#<index>`. */
  readonly name?: string | undefined;
  /**
   * The revision the watch started from (etcd `start_revision`). When
   * absent or 0 ("from now"), completeness is only checked from the first
   * event received.
   */
  readonly startRevision?: number | undefined;
  /** Whether the watch asked for the previous key-value of each event. */
  readonly prevKv?: boolean | undefined;
  /** Filters the watch asked for. */
  readonly filters?: readonly WatchFilter[] | undefined;
  /** The responses, in the order received. */
  readonly responses: readonly WatchResponseRecord[];
  /** Whether the server cancelled the watch. */
  readonly canceled?: boolean | undefined;
  /** With `canceled`: the compaction revision the server reported (the start was compacted). */
  readonly compactRevision?: number | undefined;
}

/** The result of {@link checkWatch}. */
export interface WatchCheckResult {
  /** True when there is no violation. */
  readonly ok: boolean;
  /**
   * One readable line per violation: `watch <name> on <range>: <guarantee>:
   * <what happened>`, the guarantee being one of `ordered`, `unique`,
   * `reliable`, `atomic`, `prevKv`, `kv`, `range`, `bookmarkable`,
   * `resumable`.
   */
  readonly violations: string[];
  /**
   * Reports the checker cannot decide because they depend on a revision
   * listed in {@link WatchCheckOptions.unknownRevisions} (same format as
   * `violations`); empty without it. They do not make `ok` false.
   */
  readonly unknown: string[];
}

/** Options of {@link checkWatch}. */
export interface WatchCheckOptions {
  /**
   * Revisions whose events the committed history lacks (a gap: nobody
   * recorded them), as integers. An event delivered at such a revision
   * cannot be checked against the history, and the pair a key had after
   * such a revision is not known, so the prevKv of the key's next event
   * cannot be checked either: those reports go to `unknown` instead of
   * `violations`. Everything else is checked as usual.
   */
  readonly unknownRevisions?: readonly number[] | undefined;
}

/** `unknown`: not derivable; `gap`: the key may have changed in a revision the history lacks. */
type Prev = WatchKeyValue | null | 'unknown' | 'gap';

interface CommittedInfo {
  readonly event: WatchEventRecord;
  /** Position in the committed history (orders events of one revision). */
  readonly index: number;
  readonly prev: Prev;
}

const evKey = (rev: number, key: string): string => `${rev}\u0000${key}`;
const q = (s: string): string => JSON.stringify(s);
const describeEvent = (e: WatchEventRecord): string => `${e.type} ${q(e.kv.key)} at revision ${e.kv.modRevision}`;

/** Refuses a `list` that is not an array of objects, before anything reads it. */
function arrayOfObjects(list: unknown, name: string, item: string): void {
  if (!Array.isArray(list)) throw new UsageError(ErrorCode.INVALID_ARGUMENT, `${name} must be an array, not ${list === null ? 'null' : typeof list}`);
  list.forEach((x: unknown, i) => {
    if (x === null || typeof x !== 'object') throw new UsageError(ErrorCode.INVALID_ARGUMENT, `${name}[${i}] must be a ${item} object, not ${x === null ? 'null' : typeof x}`);
  });
}

/** Whether a gap revision lies strictly between `a` and `b` (`gaps` sorted). */
function gapBetween(gaps: readonly number[], a: number, b: number): boolean {
  return gaps.some((g) => g > a && g < b);
}

/**
 * Whether PUT `event` is the write right after the pair `prev` although a
 * gap lies between them: same creation, next version (any write in between
 * would have raised the version; a deletion would have changed the creation).
 */
function followsDirectly(prev: WatchKeyValue | null, event: WatchEventRecord): boolean {
  return (
    prev !== null &&
    event.type === 'PUT' &&
    prev.createRevision !== undefined &&
    prev.version !== undefined &&
    event.kv.createRevision === prev.createRevision &&
    event.kv.version === prev.version + 1
  );
}

function indexCommitted(committed: readonly WatchEventRecord[], gaps: readonly number[]): Map<string, CommittedInfo> {
  const out = new Map<string, CommittedInfo>();
  const last = new Map<string, WatchKeyValue | null>();
  /** revision of the key's last committed event */
  const lastRev = new Map<string, number>();
  let prevRev = -Infinity;
  committed.forEach((event, index) => {
    const rev = event.kv.modRevision;
    if (!Number.isFinite(rev) || rev < prevRev) {
      throw new UsageError(
        ErrorCode.INVALID_ARGUMENT,
        `committed event ${index} (${describeEvent(event)}) is out of revision order`,
      );
    }
    prevRev = rev;
    const k = evKey(rev, event.kv.key);
    if (out.has(k)) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `committed history has two events for ${q(event.kv.key)} at revision ${rev}`);
    }
    let prev: Prev;
    if (event.prevKv !== undefined) prev = event.prevKv;
    else if (event.type === 'PUT' && event.kv.version === 1) prev = null;
    else if (last.has(event.kv.key) && !gapBetween(gaps, lastRev.get(event.kv.key)!, rev)) prev = last.get(event.kv.key)!;
    else if (last.has(event.kv.key) && followsDirectly(last.get(event.kv.key)!, event)) prev = last.get(event.kv.key)!;
    else if (last.has(event.kv.key)) prev = 'gap';
    else prev = 'unknown';
    out.set(k, { event, index, prev });
    last.set(event.kv.key, event.type === 'PUT' ? event.kv : null);
    lastRev.set(event.kv.key, rev);
  });
  return out;
}

function sameKvFields(got: WatchKeyValue, want: WatchKeyValue): string | undefined {
  const diffs: string[] = [];
  if (got.key !== want.key) diffs.push(`key ${q(got.key)} (expected ${q(want.key)})`);
  if (got.modRevision !== want.modRevision) diffs.push(`modRevision ${got.modRevision} (expected ${want.modRevision})`);
  if (got.value !== undefined && want.value !== undefined && got.value !== want.value) {
    diffs.push(`value ${q(got.value)} (expected ${q(want.value)})`);
  }
  if (got.createRevision !== undefined && want.createRevision !== undefined && got.createRevision !== want.createRevision) {
    diffs.push(`createRevision ${got.createRevision} (expected ${want.createRevision})`);
  }
  if (got.version !== undefined && want.version !== undefined && got.version !== want.version) {
    diffs.push(`version ${got.version} (expected ${want.version})`);
  }
  return diffs.length === 0 ? undefined : diffs.join(', ');
}

/**
 * Checks etcd's watch guarantees for each stream against the committed
 * history.
 *
 * `committed` is every event the store committed, in revision order (the
 * events of one revision contiguous, in the order the txn applied them),
 * complete from the first revision any stream watches: a stream event
 * absent from it is a violation. Each PUT should carry `value`,
 * `createRevision` and `version` for the kv check.
 *
 * What is checked, per stream (etcd API guarantees, "Watch APIs"):
 * - ordered: event revisions never decrease, and events of one revision
 *   come in commit order;
 * - unique: no (revision, key) is delivered twice;
 * - kv: every event is a committed one, with the same type and, for PUT,
 *   the same value, createRevision and version; a DELETE carries no value,
 *   version or createRevision (or empty ones);
 * - range: every event is in the watched range, passes the filters and is
 *   at or after `startRevision`;
 * - reliable: every committed event in the range (and passing the filters)
 *   from `startRevision` (else from the first event received, or from the
 *   revision after an earlier progress notification) up to the
 *   last revision the stream has seen (its last event, or a later progress
 *   notification) was delivered;
 * - atomic: all the matching events of a revision come in one response;
 * - prevKv: with `prevKv` asked, each event carries the pair the key had
 *   just before it (none for a creation), as far as the committed history
 *   tells; without it, no event carries one;
 * - bookmarkable: no event at or below the revision of an earlier progress
 *   notification; a response's header revision is not below its events';
 * - resumable: a watch cancelled with a compactRevision had really asked
 *   for a revision below it (the one after its last event or progress
 *   notification, else its start).
 *
 * With `options.unknownRevisions`, `committed` may lack those revisions:
 * an event delivered at one of them, and a prevKv that depends on one (the
 * key's previous committed event is before the gap), are reported in
 * `unknown` rather than as violations.
 *
 * @param committed - the authoritative committed events
 * @param streams - what each watcher received
 * @param options - see {@link WatchCheckOptions}
 * @returns `{ ok, violations, unknown }`
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `committed` or
 *   `streams` is not an array of objects (a committed event without its
 *   `kv` included), or `committed` is out of revision order or has two
 *   events for one key at one revision, or `options` is not an object, has
 *   an unknown key, or `unknownRevisions` is not an array of integers
 */
export function checkWatch(
  committed: readonly WatchEventRecord[],
  streams: readonly WatchStreamRecord[],
  options: WatchCheckOptions = {},
): WatchCheckResult {
  checkOptionsArg(options, ['unknownRevisions'], 'checkWatch options');
  const unknownRevisions: unknown = options.unknownRevisions === undefined ? [] : options.unknownRevisions;
  if (!Array.isArray(unknownRevisions) || !unknownRevisions.every((r: unknown) => Number.isInteger(r))) {
    throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'checkWatch options: unknownRevisions must be an array of integer revisions');
  }
  const gaps = [...(unknownRevisions as number[])].sort((a, b) => a - b);
  arrayOfObjects(committed, 'committed', 'event');
  committed.forEach((event, i) => {
    if (event.kv === null || typeof event.kv !== 'object') throw new UsageError(ErrorCode.INVALID_ARGUMENT, `committed event ${i} has no kv`);
  });
  arrayOfObjects(streams, 'streams', 'stream');
  const byKey = indexCommitted(committed, gaps);
  const violations: string[] = [];
  const unknown: string[] = [];
  const gapSet = new Set(gaps);
  streams.forEach((s, i) => checkStream(s, i, committed, byKey, gapSet, violations, unknown));
  return { ok: violations.length === 0, violations, unknown };
}

function checkStream(
  s: WatchStreamRecord,
  streamIndex: number,
  committed: readonly WatchEventRecord[],
  byKey: Map<string, CommittedInfo>,
  gaps: ReadonlySet<number>,
  out: string[],
  unknown: string[],
): void {
  const label = `watch ${s.name ?? `#${streamIndex}`} on ${describeKeyRange(s)}`;
  const report = (guarantee: string, detail: string): void => {
    out.push(`${label}: ${guarantee}: ${detail}`);
  };
  const undecided = (guarantee: string, detail: string): void => {
    unknown.push(`${label}: ${guarantee}: ${detail}`);
  };
  const filters = new Set(s.filters ?? []);
  const passes = (e: WatchEventRecord): boolean =>
    !(e.type === 'PUT' && filters.has('NOPUT')) && !(e.type === 'DELETE' && filters.has('NODELETE'));
  const matches = (e: WatchEventRecord): boolean => inKeyRange(s, e.kv.key) && passes(e);
  const start = s.startRevision !== undefined && s.startRevision > 0 ? s.startRevision : undefined;

  const seen = new Set<string>();
  /** revision -> index of the response that carried it */
  const responseOfRevision = new Map<number, number>();
  const splitReported = new Set<number>();
  let lastRev = -Infinity;
  let lastIndex = -1;
  let progress = -Infinity;
  /** The first revision the stream is known to cover: its first event, or just after its first progress notification. */
  let firstRev: number | undefined;

  s.responses.forEach((resp, r) => {
    let maxInResp = -Infinity;
    for (const e of resp.events) {
      const rev = e.kv.modRevision;
      const key = e.kv.key;
      const info = byKey.get(evKey(rev, key));
      firstRev ??= rev;
      maxInResp = Math.max(maxInResp, rev);

      // ordered
      if (rev < lastRev) {
        report('ordered', `${describeEvent(e)} (response ${r}) came after revision ${lastRev}`);
      } else if (rev === lastRev && info !== undefined && info.index < lastIndex) {
        report('ordered', `${describeEvent(e)} (response ${r}) came after a later event of the same revision`);
      }
      // bookmarkable
      if (rev <= progress) {
        report('bookmarkable', `${describeEvent(e)} (response ${r}) came after a progress notification at revision ${progress}`);
      }
      // unique
      const k = evKey(rev, key);
      if (seen.has(k)) report('unique', `${describeEvent(e)} was delivered twice (again in response ${r})`);
      seen.add(k);
      // atomic: one response per revision
      const owner = responseOfRevision.get(rev);
      if (owner === undefined) responseOfRevision.set(rev, r);
      else if (owner !== r && !splitReported.has(rev)) {
        splitReported.add(rev);
        report('atomic', `the events of revision ${rev} are split over responses ${owner} and ${r}`);
      }
      // range, filters, start
      if (!inKeyRange(s, key)) report('range', `${describeEvent(e)} is outside the watched range`);
      else if (!passes(e)) report('range', `${describeEvent(e)} was delivered although the watch filters ${e.type} events`);
      if (start !== undefined && rev < start) {
        report('range', `${describeEvent(e)} is before the start revision ${start}`);
      }
      // kv
      if (info === undefined) {
        (gaps.has(rev) ? undecided : report)('kv', `${describeEvent(e)} is not in the committed history`);
      } else {
        const c = info.event;
        if (c.type !== e.type) {
          report('kv', `${describeEvent(e)} should be a ${c.type} event`);
        } else if (e.type === 'PUT') {
          const diff = sameKvFields(e.kv, c.kv);
          if (diff !== undefined) report('kv', `${describeEvent(e)} has ${diff}`);
        } else {
          const extra: string[] = [];
          if (e.kv.value !== undefined && e.kv.value !== '') extra.push(`value ${q(e.kv.value)}`);
          if (e.kv.version !== undefined && e.kv.version !== 0) extra.push(`version ${e.kv.version}`);
          if (e.kv.createRevision !== undefined && e.kv.createRevision !== 0) {
            extra.push(`createRevision ${e.kv.createRevision}`);
          }
          if (extra.length > 0) report('kv', `${describeEvent(e)} carries ${extra.join(', ')}; a deletion carries none`);
        }
        // prevKv
        const got = e.prevKv ?? null;
        if (s.prevKv !== true) {
          if (got !== null) report('prevKv', `${describeEvent(e)} carries a prevKv the watch did not ask for`);
        } else if (info.prev === 'gap') {
          undecided('prevKv', `${describeEvent(e)}: the key's previous pair is not known (the committed history lacks a revision since its last event)`);
        } else if (info.prev !== 'unknown') {
          const want = info.prev;
          if (want === null && got !== null) {
            report('prevKv', `${describeEvent(e)} carries prevKv ${q(got.value ?? '')} although the key did not exist before`);
          } else if (want !== null && got === null) {
            report('prevKv', `${describeEvent(e)} lacks prevKv (expected ${q(want.value ?? '')} at modRevision ${want.modRevision})`);
          } else if (want !== null && got !== null) {
            const diff = sameKvFields(got, want);
            if (diff !== undefined) report('prevKv', `${describeEvent(e)} has a prevKv with ${diff}`);
          }
        }
      }
      if (rev > lastRev) lastIndex = info?.index ?? -1;
      else if (rev === lastRev && info !== undefined) lastIndex = info.index;
      lastRev = Math.max(lastRev, rev);
    }
    if (resp.revision !== undefined && resp.events.length > 0 && resp.revision < maxInResp) {
      report('bookmarkable', `response ${r} has header revision ${resp.revision}, below its event at revision ${maxInResp}`);
    }
    if (resp.progressNotify === true && resp.revision !== undefined) {
      // everything up to it was delivered, so everything after it must be
      firstRev ??= resp.revision + 1;
      progress = Math.max(progress, resp.revision);
    }
  });

  // reliable and atomic (completeness of each revision)
  const from = start ?? firstRev;
  const to = Math.max(lastRev, progress);
  if (from !== undefined && to >= from) {
    const missingByRev = new Map<number, WatchEventRecord[]>();
    for (const e of committed) {
      const rev = e.kv.modRevision;
      if (rev < from) continue;
      if (rev > to) break;
      if (!matches(e) || seen.has(evKey(rev, e.kv.key))) continue;
      let list = missingByRev.get(rev);
      if (list === undefined) missingByRev.set(rev, (list = []));
      list.push(e);
    }
    for (const [rev, missing] of missingByRev) {
      const r = responseOfRevision.get(rev);
      if (r !== undefined) {
        report('atomic', `response ${r} carries only part of revision ${rev}: missing ${missing.map(describeEvent).join(', ')}`);
      }
      for (const e of missing) report('reliable', `${describeEvent(e)} was never delivered`);
    }
  }

  // resumable: a compaction cancel must be justified
  if (s.canceled === true && s.compactRevision !== undefined) {
    // the next revision it needed: after the last one it saw (an event or a
    // progress notification), else its start
    const seenUpTo = Math.max(lastRev, progress);
    const needed = seenUpTo > -Infinity ? Math.max(seenUpTo + 1, start ?? -Infinity) : start;
    if (needed !== undefined && needed >= s.compactRevision) {
      report(
        'resumable',
        `cancelled with compactRevision ${s.compactRevision} although it needed revision ${needed}, which is not compacted`,
      );
    }
  }
}
