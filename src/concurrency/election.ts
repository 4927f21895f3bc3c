/**
 * `Election`: leader election on a key prefix (etcd's `concurrency.Election`),
 * with the leader key's createRevision as the term / fencing token.
 * @module
 */
import { ErrorCode, FaultError, UsageError, isQuorumError } from '../errors.js';
import { viewProblem } from '../arg-values.js';
import type { KeyValue } from '../mvccpb/index.js';
import { text, type BytesLike, type CompareInput, type KV } from '../server/kv.js';
import { dirOf, kvOf, leaseHex, LEFTOVER_RETRY_MS, rangeOfOp, sessionOf } from './keys.js';
import type { LockOptions } from './mutex.js';
import { Scope, optionsOf } from './scope.js';
import type { Session } from './session.js';
import { cancelQuietly, waitDeletes } from './wait.js';

/** A leader as seen in the store. */
export interface LeaderInfo {
  /** The leader's key (`<prefix><lease id in hex>`). */
  key: string;
  /** The leader's value (UTF-8), as last proclaimed. */
  value: string;
  /** The raw value bytes. */
  valueBytes: Uint8Array;
  /** The term: the leader key's createRevision (strictly increasing across leaders; a fencing token). */
  createRevision: number;
  /** Revision of the last proclaim (or of the campaign). */
  modRevision: number;
  /** The leader's lease id. */
  lease: number;
  /** Store revision the information was read at (or of the change that produced it). */
  revision: number;
}

/** What {@link Election.campaign} resolves with. */
export interface Leadership {
  /** This candidate's key. */
  key: string;
  /** The term: the key's createRevision; strictly greater than every earlier leader's. */
  term: number;
  /** Store revision at which leadership was known. */
  revision: number;
  /** A txn compare that holds only while this leadership lasts (`createRevision(key) == term`). */
  isLeader(): CompareInput;
}

/**
 * The error of a campaign withdrawn by {@link Election.resign}: code
 * `QUORUMKV_ABORTED`, the code of a campaign aborted through its signal,
 * whose outcome it shares (the call gave up, its key deleted). An error the
 * campaign met meanwhile is the `cause`.
 */
function withdrawnError(cause?: unknown): FaultError {
  return new FaultError(ErrorCode.ABORTED, 'election: the campaign was withdrawn by resign()', cause === undefined ? undefined : { cause });
}

/**
 * A value to campaign or proclaim with: a string, or a Uint8Array whose
 * bytes can be read (not a Proxy of one, nor a view of a detached or shrunk
 * buffer), checked before anything is written or deleted.
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT`
 */
function checkValue(value: unknown): void {
  if (typeof value === 'string') return;
  if (!(value instanceof Uint8Array)) throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'election: value must be a string or a Uint8Array');
  const problem = viewProblem(value);
  if (problem !== undefined) throw new UsageError(ErrorCode.INVALID_ARGUMENT, `election: value is ${problem}`);
}

/** A campaign in progress (past its leader check), as {@link Election.resign} sees it. */
interface CampaignRun {
  /** The campaign's abort scope: a resign aborts it with {@link withdrawnError}. */
  readonly scope: Scope;
  /** Set by a resign: the campaign then fails with `QUORUMKV_ABORTED` whatever else happened. */
  withdrawn: boolean;
  /** Resolves once the campaign has returned or failed, its key deleted or its delete failed. */
  readonly settled: Promise<void>;
  /** The error of a failed delete of the campaign's key, if any. */
  cleanupError: unknown;
}

const utf8 = new TextEncoder();

/** True when `bytes` are `value` (a string as its UTF-8 bytes): bytes compared, not their decoding, which is lossy. */
function sameValue(bytes: Uint8Array, value: BytesLike): boolean {
  const want = typeof value === 'string' ? utf8.encode(value) : value;
  return bytes.length === want.length && bytes.every((b, i) => b === want[i]);
}

function leaderOf(kv: KeyValue, revision: number): LeaderInfo {
  return {
    key: text(kv.key),
    value: text(kv.value),
    valueBytes: kv.value,
    createRevision: kv.createRevision,
    modRevision: kv.modRevision,
    lease: kv.lease,
    revision,
  };
}

/**
 * Reads the current leader of the election at `prefix` (the key with the
 * smallest createRevision), for callers without a session (etcd's
 * `Election.Leader`). A linearizable read.
 *
 * ```ts
 * const { value, createRevision } = await electionLeader(node, 'elections/scheduler');
 * ```
 * @param kv - any member's {@link KV} (no session needed)
 * @param prefix - the election's name, as given to {@link Election}; a `/` is appended unless present
 * @returns the leader as a {@link LeaderInfo} (its createRevision is the term)
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for a `kv` that is not a KV, or an empty prefix
 * @throws FaultError `QUORUMKV_ELECTION_NO_LEADER` when nobody campaigns; errors of the KV's `range`
 */
export async function electionLeader(kv: KV, prefix: string): Promise<LeaderInfo> {
  kvOf(kv, "electionLeader's kv", ['range']);
  const dir = dirOf(prefix);
  const res = await kv.range({ key: dir, prefix: true, sortTarget: 'CREATE', sortOrder: 'ASCEND', limit: 1 });
  const first = res.kvs[0];
  if (first === undefined) throw new FaultError(ErrorCode.ELECTION_NO_LEADER, 'election: no leader');
  return leaderOf(first, res.header.revision);
}

/**
 * A stream of leader changes: an async iterable that yields the current
 * leader, then every new value it proclaims, then the next leader, and so
 * on. Stop it with {@link LeaderObserver.cancel}, the `signal` given to
 * `observe`, or `break`.
 */
export interface LeaderObserver extends AsyncIterable<LeaderInfo> {
  /** Stops observing: its watch is cancelled, a pending or later `next()` ends the iteration, and nothing stays attached to the `signal` given to `observe`. Idempotent. */
  cancel(): void;
}

/**
 * Observes the election at `prefix` (etcd's `Election.Observe`): yields the
 * leader, its proclaimed values, and each next leader in turn, from a watch;
 * no session needed. A leader that comes and goes entirely between two reads
 * (while the observer is catching up) may be skipped; the leaders it does
 * yield come in term order, each write of a leader's key (election,
 * `proclaim`) once; a `proclaim` of the same value is a write, yielded again
 * as etcd's `Observe` does. Ends on cancel, on `signal`, or when the KV
 * fails (its error is thrown from the iteration).
 *
 * ```ts
 * const observer = observeElection(node, 'elections/scheduler', { signal });
 * for await (const leader of observer) {
 *   console.log(`term ${leader.createRevision}: ${leader.value}`);
 * }
 * ```
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an empty prefix, bad options, or a `kv` that is not a KV
 */
export function observeElection(kv: KV, prefix: string, options: LockOptions = {}): LeaderObserver {
  kvOf(kv, 'observeElection\'s kv');
  options = optionsOf(options, 'observe options', ['signal']);
  const dir = dirOf(prefix);
  const controller = new AbortController();
  const onAbort = (): void => controller.abort();
  if (options.signal?.aborted === true) controller.abort();
  else options.signal?.addEventListener('abort', onAbort, { once: true });
  const stop = controller.signal;

  async function* run(): AsyncGenerator<LeaderInfo> {
    // the last leader state yielded: a read after a watch that ended without
    // a deletion (its start compacted) finds it again, and it is no change
    let last: LeaderInfo | undefined;
    const isLast = (l: LeaderInfo): boolean => last !== undefined && l.key === last.key && l.createRevision === last.createRevision && l.modRevision === last.modRevision;
    try {
      while (!stop.aborted) {
        const res = await kv.range({ key: dir, prefix: true, sortTarget: 'CREATE', sortOrder: 'ASCEND', limit: 1 });
        if (stop.aborted) return;
        let leader: LeaderInfo | undefined = res.kvs[0] === undefined ? undefined : leaderOf(res.kvs[0], res.header.revision);
        let from = res.header.revision + 1;
        if (leader === undefined) {
          // nobody campaigns: the first put on the prefix is the next leader
          if (stop.aborted) return;
          const w = kv.watch(dir, { prefix: true, startRevision: from });
          const cancel = (): void => void cancelQuietly(w);
          stop.addEventListener('abort', cancel, { once: true });
          try {
            for await (const wr of w) {
              const put = wr.events.find((e) => e.type === 'PUT');
              if (put !== undefined) {
                leader = leaderOf(put.kv, put.kv.modRevision);
                break;
              }
              if (wr.canceled) break;
            }
          } finally {
            stop.removeEventListener('abort', cancel);
            await cancelQuietly(w);
          }
          if (leader === undefined) continue; // watch ended: read again (or stop)
          from = leader.revision + 1;
        }
        if (!isLast(leader)) {
          last = leader;
          yield leader;
          if (stop.aborted) return;
        }
        // follow this leader's key until it is deleted
        const w = kv.watch(leader.key, { startRevision: from });
        const cancel = (): void => void cancelQuietly(w);
        stop.addEventListener('abort', cancel, { once: true });
        try {
          let gone = false;
          for await (const wr of w) {
            for (const ev of wr.events) {
              if (ev.type === 'DELETE') {
                gone = true;
                break;
              }
              last = leaderOf(ev.kv, ev.kv.modRevision);
              yield last;
              if (stop.aborted) return;
            }
            if (gone || wr.canceled) break;
          }
        } finally {
          stop.removeEventListener('abort', cancel);
          await cancelQuietly(w);
        }
      }
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  const gen = run();
  return {
    [Symbol.asyncIterator]: () => gen,
    cancel: () => {
      controller.abort();
      // the iteration removes it when it resumes, but it may never resume
      // (cancelled before the first next(), or between two of them)
      options.signal?.removeEventListener('abort', onAbort);
    },
  };
}

/**
 * Leader election (etcd's `concurrency.Election`).
 *
 * Each candidate puts `<prefix><lease hex>` = its value, attached to its
 * session's lease; the leader is the candidate whose key has the smallest
 * createRevision. `campaign` waits like {@link Mutex.lock} (each candidate
 * watches only the key just before its own), so candidates become leader in
 * the order they campaigned. The leader's key createRevision is its **term**:
 * strictly greater for every later leader, usable as a fencing token.
 *
 * Guarantees: at most one live session's key is the oldest at any revision;
 * terms strictly increase; `campaign` never returns on a lost session;
 * `proclaim` and `resign` only act while this candidate's key is the one it
 * created (a txn on `createRevision(key) == term`); a `resign` during a
 * `campaign` of the same object withdraws the candidacy (see {@link resign}).
 *
 * What it does not guarantee: that a leader knows it has been replaced in
 * time. A leader paused past its lease TTL resumes believing it leads.
 * Watch the session (`lost` event, `signal`) and fence the work with the
 * term (`leadership.isLeader()` in the txns of the work, or a term check in
 * the resource).
 *
 * ```ts
 * const session = await Session.create(node, { ttl: 10 });
 * const election = new Election(session, 'elections/scheduler');
 * const leadership = await election.campaign('host-a:8080');
 * session.on('lost', () => stopScheduling());
 * await node.txn({ compare: [leadership.isLeader()], success: [{ put: { key: 'jobs/next', value: '7' } }] });
 * await election.resign();
 *
 * for await (const leader of election.observe()) console.log(leader.value, leader.createRevision);
 * ```
 */
export class Election {
  /** The session whose lease holds the candidate key. */
  readonly session: Session;
  /** The election's key prefix, ending with `/`. */
  readonly prefix: string;
  /** This session's candidate key: `<prefix><lease id in hex>`. */
  readonly key: string;

  private term = 0;
  private leading: Leadership | undefined;
  /** The campaign in progress past its leader check, if any (one at a time). */
  private running: CampaignRun | undefined;
  /**
   * How many times resign() was called: a campaign that finds it changed
   * across its proclaim (the leading case) was overlapped by a resign and
   * fails instead of campaigning anew.
   */
  private resigns = 0;
  /**
   * The createRevision of this candidate's key left by a campaign that
   * failed and could not delete it (its member cut off): tried again every
   * 500 ms while the session lives, and before the next campaign, so that
   * it does not become a leader nobody is (see {@link deleteKey}).
   */
  private leftover: number | undefined;

  /**
   * @param prefix - the election's name; a `/` is appended unless present
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an empty prefix, or a `session` that is not a Session
   */
  constructor(session: Session, prefix: string) {
    this.session = sessionOf(session, 'the election\'s session');
    this.prefix = dirOf(prefix);
    this.key = `${this.prefix}${leaseHex(session.lease)}`;
  }

  private get kv(): KV {
    return this.session.kv;
  }

  /**
   * True while this candidate won an election it has not left and its
   * session is alive (reading it checks the session's deadline). This is
   * this process's belief: fence the work with the term.
   */
  get isLeader(): boolean {
    return this.leading !== undefined && this.session.isAlive;
  }

  /** The current leadership of this candidate, if any. */
  get leadership(): Leadership | undefined {
    return this.leading;
  }

  /**
   * Campaigns with `value` and resolves once this candidate is leader. A
   * candidate that already campaigned (its key exists) keeps its place and
   * updates its value; a leader whose key is gone campaigns anew.
   *
   * On abort, on a lost session or on an error while waiting, the candidate
   * key is deleted and the call fails; a delete that fails too (this member
   * cut off) is tried again every 500 ms while the session lives, and before
   * the next campaign of this object.
   *
   * A {@link resign} of this object while the call is in progress withdraws
   * the candidacy at whatever step the call is (before its key is written,
   * while it writes it or proclaims a new value, while it waits, or as it
   * finds itself elected): the key is deleted as on abort, and the call fails
   * with `QUORUMKV_ABORTED`, also when it met another error meanwhile (then
   * the `cause`). It never resolves with a leadership after such a resign.
   * @param value - the candidate's value (UTF-8 string or bytes)
   * @param options - `signal`: an `AbortSignal` that gives up the campaign
   * @returns the leadership: key, term (the key's createRevision), revision, and the `isLeader()` compare
   * @throws FaultError `QUORUMKV_ABORTED` when `signal` aborts or a
   *   {@link resign} of this object withdraws the campaign;
   *   `QUORUMKV_SESSION_EXPIRED` when the session is lost before or while
   *   waiting; errors of the KV (`QUORUMKV_TIMEOUT`, ...)
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when a campaign of this election object is in progress, or for a value that is not a string or a Uint8Array
   *   whose bytes can be read (a Proxy of one, or a view of a detached or shrunk `ArrayBuffer`, is refused)
   */
  async campaign(value: BytesLike, options: LockOptions = {}): Promise<Leadership> {
    options = optionsOf(options, 'campaign options', ['signal']);
    // before anything is written or deleted: a failed txn deletes the key
    checkValue(value);
    if (this.leading !== undefined) {
      this.session.assertAlive();
      const check = new Scope(options.signal, this.session);
      const resigns = this.resigns;
      let failure: unknown;
      let failed = false;
      try {
        check.check(); // an aborted call fails, leading or not
        try {
          await this.proclaim(value);
        } catch (err) {
          failed = true;
          failure = err;
        }
        // a resign while the proclaim was in flight ends this call: neither
        // the leadership it gave up nor a new campaign
        if (this.resigns !== resigns) throw withdrawnError(failure);
        if (failed && !isQuorumError(failure, ErrorCode.ELECTION_NOT_LEADER)) throw failure;
        if (!failed && this.leading !== undefined) {
          // never on a lost session (nor after an abort), also when they
          // come during the proclaim; the leadership itself stays
          check.check();
          return this.leading;
        }
      } finally {
        check.dispose();
      }
      // the key is gone (a resign applied but answered with a timeout, a
      // delete by anyone): campaign anew, as etcd's Campaign always does
    }
    if (this.running !== undefined) throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'election: a campaign of this election is already in progress');
    const scope = new Scope(options.signal, this.session);
    let settle = (): void => undefined;
    const run: CampaignRun = {
      scope,
      withdrawn: false,
      settled: new Promise<void>((resolve) => (settle = resolve)),
      cleanupError: undefined,
    };
    this.running = run;
    let term = 0;
    let attempted = false;
    try {
      scope.check();
      if (this.leftover !== undefined) await this.deleteGuarded(this.leftover);
      scope.check(); // aborted or withdrawn while the leftover went: write nothing
      attempted = true; // from here on, the key may exist because of this call
      const res = await this.kv.txn({
        compare: [{ key: this.key, target: 'CREATE', result: 'EQUAL', createRevision: 0 }],
        success: [{ put: { key: this.key, value, lease: this.session.lease } }],
        failure: [{ range: { key: this.key } }],
      });
      if (res.succeeded) {
        term = res.header.revision;
      } else {
        const mine = rangeOfOp(res.responses[0]).kvs[0];
        if (mine === undefined) throw new FaultError(ErrorCode.SESSION_EXPIRED, 'election: the candidate key vanished while it was created');
        term = mine.createRevision;
        if (!sameValue(mine.value, value)) await this.put(term, value);
      }
      await waitDeletes(this.kv, this.prefix, term - 1, scope.signal);
      const mine = await this.kv.range({ key: this.key });
      if (mine.kvs[0]?.createRevision !== term) {
        throw this.session.error ?? new FaultError(ErrorCode.SESSION_EXPIRED, 'election: session expired (the candidate key is gone)');
      }
      scope.check(); // elected, unless aborted or withdrawn meanwhile
      this.term = term;
      const key = this.key;
      this.leading = {
        key,
        term,
        revision: mine.header.revision,
        isLeader: () => ({ key, target: 'CREATE', result: 'EQUAL', createRevision: term }),
      };
      return this.leading;
    } catch (err) {
      // a call that failed before its txn created nothing: the key, if any,
      // is another campaign's of this session (a leader's, maybe)
      if (attempted) run.cleanupError = await this.deleteKey(term);
      throw run.withdrawn && !isQuorumError(err, ErrorCode.ABORTED) ? withdrawnError(err) : err;
    } finally {
      scope.dispose();
      this.running = undefined;
      settle();
    }
  }

  /**
   * Sets a new value for this leader without a new election (etcd's `Proclaim`).
   * @param value - the new value (UTF-8 string or bytes)
   * @throws FaultError `QUORUMKV_ELECTION_NOT_LEADER` when this candidate is
   *   not the leader (never was, resigned, or its key is gone)
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for a value that is not a
   *   string or a Uint8Array whose bytes can be read (nothing is written)
   */
  async proclaim(value: BytesLike): Promise<void> {
    // as campaign(): the KV would take `undefined` for an empty value
    checkValue(value);
    if (this.leading === undefined) throw new FaultError(ErrorCode.ELECTION_NOT_LEADER, 'election: not leader');
    if (!(await this.put(this.term, value))) {
      this.leading = undefined;
      this.term = 0;
      throw new FaultError(ErrorCode.ELECTION_NOT_LEADER, 'election: not leader');
    }
  }

  /**
   * Gives up leadership, or the candidacy of a campaign in progress (etcd's
   * `Resign`). Resolves once this candidate's key is deleted (or its session
   * is lost); from then on this candidate is not leader and its key is gone.
   *
   * - Leader: deletes this candidate's key if it is still the one it
   *   created (a txn on `createRevision(key) == term`), so the next
   *   candidate becomes leader. A {@link campaign} of this object in
   *   progress at the time (a campaign while leading, which proclaims)
   *   fails with `QUORUMKV_ABORTED` instead of campaigning anew.
   * - Campaigning (a {@link campaign} of this object in progress, at any
   *   step: before its key is written, while it writes it or proclaims a new
   *   value, while it waits, or as it finds itself elected): withdraws the
   *   candidacy. The campaign stops, deletes its key as on abort (guarded by
   *   its createRevision) and fails with `QUORUMKV_ABORTED`; this call
   *   resolves after that delete. A campaign that had already resolved
   *   made this candidate leader: the first case.
   * - Neither: does nothing.
   *
   * A resign whose answer arrives after a {@link campaign} of this object,
   * started meanwhile, found the key gone and won anew leaves that new
   * leadership in place: only the leadership the resign gave up ends.
   *
   * Why `QUORUMKV_ABORTED` for the withdrawn campaign: it is the caller
   * giving up its own campaign, with the outcome of aborting the campaign's
   * signal (the key deleted, the call failed, not leader), so code that
   * handles an aborted campaign handles this one. `QUORUMKV_ELECTION_NOT_LEADER`
   * means acting as a leader one is not (see {@link proclaim}), and
   * `QUORUMKV_SESSION_EXPIRED` would report a session that still lives.
   *
   * Stricter than etcd (client/v3/concurrency/election.go), whose
   * `Resign` racing a `Campaign` of the same `Election` does nothing until
   * the campaign's txn has answered, and after that deletes the key while
   * the `Campaign` goes on waiting and returns success once the candidates
   * before it go: a caller that believes it leads with no key.
   * @returns once the key is deleted, or at once when neither leading nor campaigning
   * @throws errors of the KV (`QUORUMKV_TIMEOUT`, `QUORUMKV_NODE_CLOSED`, ...)
   *   unless the session is lost: a leader then still counts as leader
   *   (retry, or close the session); a withdrawn campaign has failed all
   *   the same, and its key, if written, is deleted again every 500 ms
   *   while the session lives (as after a failed campaign; a key whose
   *   creating txn never answered goes with the session's lease)
   */
  async resign(): Promise<void> {
    this.resigns++;
    const run = this.running;
    if (run !== undefined) {
      await this.withdraw(run);
      return;
    }
    if (this.leading === undefined) return;
    const term = this.term;
    try {
      await this.kv.txn({
        compare: [{ key: this.key, target: 'CREATE', result: 'EQUAL', createRevision: term }],
        success: [{ deleteRange: { key: this.key } }],
      });
    } catch (err) {
      if (this.session.isAlive) throw err;
    }
    // only the leadership this call gave up: a campaign() of this object
    // that found the key gone meanwhile may have won anew, and still leads
    if (this.term === term) {
      this.leading = undefined;
      this.term = 0;
    }
  }

  /**
   * The current leader (etcd's `Leader`).
   * @throws FaultError `QUORUMKV_ELECTION_NO_LEADER` when nobody campaigns
   */
  leader(): Promise<LeaderInfo> {
    return electionLeader(this.kv, this.prefix);
  }

  /** Observes leader changes (see {@link observeElection}). */
  observe(options: LockOptions = {}): LeaderObserver {
    return observeElection(this.kv, this.prefix, options);
  }

  // ---------------------------------------------------------- internals

  /**
   * Withdraws the campaign in progress `run`: aborts its waits and steps,
   * waits until it has failed and deleted its key, then deletes a key it
   * could not (once more, guarded by its createRevision).
   * @throws the KV's error when the key may remain and the session is alive
   */
  private async withdraw(run: CampaignRun): Promise<void> {
    run.withdrawn = true;
    run.scope.abort(withdrawnError());
    await run.settled;
    try {
      // a key this campaign, or the one before it, could not delete
      if (this.leftover !== undefined) await this.deleteGuarded(this.leftover);
      else if (run.cleanupError !== undefined) throw run.cleanupError;
    } catch (err) {
      if (this.session.isAlive) throw err;
    }
  }

  private async put(term: number, value: BytesLike): Promise<boolean> {
    const res = await this.kv.txn({
      compare: [{ key: this.key, target: 'CREATE', result: 'EQUAL', createRevision: term }],
      success: [{ put: { key: this.key, value, ignoreLease: true } }],
    });
    return res.succeeded;
  }

  /**
   * Deletes the key of a failed campaign. When that fails too (this member
   * cut off), a key whose createRevision is known is tried again every
   * 500 ms on the session's clock while the session lives, and before the
   * next campaign: left alone, it would hold the candidates behind it back
   * for the session's whole life, and become a leader nobody is once the
   * ones before it go. (Every campaign of a session uses the same key, so
   * only a delete guarded by the createRevision is tried again.)
   * @returns the error of a delete that failed, else `undefined`
   */
  private async deleteKey(term: number): Promise<unknown> {
    try {
      if (term > 0) await this.deleteGuarded(term);
      else await this.kv.delete(this.key);
      return undefined;
    } catch (err) {
      if (term <= 0) return err; // the key goes with the session's lease
      this.leftover = term;
      const retry = (): void => {
        if (this.leftover !== term || !this.session.isAlive) return;
        this.deleteGuarded(term).catch(() => this.session.clock.setTimeout(retry, LEFTOVER_RETRY_MS));
      };
      this.session.clock.setTimeout(retry, LEFTOVER_RETRY_MS);
      return err;
    }
  }

  /** Deletes this candidate's key if its createRevision is `term`; forgets the leftover. @throws the KV's errors */
  private async deleteGuarded(term: number): Promise<void> {
    await this.kv.txn({
      compare: [{ key: this.key, target: 'CREATE', result: 'EQUAL', createRevision: term }],
      success: [{ deleteRange: { key: this.key } }],
    });
    if (this.leftover === term) this.leftover = undefined;
  }
}
