/**
 * `Session`: a lease kept alive in the background, the liveness that every
 * lock, election and double barrier of this package hangs its keys on (etcd's
 * `concurrency.Session`). When the lease is gone, or can no longer be known
 * to be alive, the session is *lost*: it says so at once (`lost` event,
 * `isLost`, `signal`, `done`) so that whoever holds something through it
 * stops working.
 * @module
 */
import { EventEmitter } from 'eventemitter3';
import { ErrorCode, FaultError, UsageError, isQuorumError } from '../errors.js';
import { describeValue } from '../arg-values.js';
import { emitIsolated } from '../isolated-emit.js';
import { MAX_TIMER_MS } from '../timer-limit.js';
import type { KV } from '../server/kv.js';
import { realClock, type RecipeClock } from './clock.js';
import { kvOf } from './keys.js';
import { optionsOf } from './scope.js';

/** Time between keep-alives in ms while one is overdue (sent and not confirmed), as etcd's client. */
const RETRY_MS = 500;

/**
 * Why a session was lost:
 * - `'revoked'`: the cluster answered a keep-alive with `QUORUMKV_LEASE_NOT_FOUND`:
 *   the lease was revoked (by another client, or by the leader once it
 *   expired);
 * - `'keepAliveFailed'`: the local deadline passed while keep-alives were
 *   being sent but none was confirmed in time (partition, no leader, member
 *   stopped, overload);
 * - `'expired'`: the local deadline passed and no keep-alive was even sent in
 *   time (the process was paused or its event loop blocked).
 */
export type SessionLostReason = 'expired' | 'revoked' | 'keepAliveFailed';

/** How a session ended: lost (see {@link SessionLostReason}) or closed by its owner. */
export type SessionEnd = SessionLostReason | 'closed';

/**
 * The error a lost session reports (in its `lost` event, as the reason of its
 * `signal`, and from recipes that find it lost): a `FaultError` with code
 * `QUORUMKV_SESSION_EXPIRED`. `cause` is the last keep-alive error, if any.
 *
 * ```ts
 * session.on('lost', (err) => {
 *   if (err.reason === 'revoked') log.warn('lease revoked by someone else');
 *   stopWork(err); // err.code === 'QUORUMKV_SESSION_EXPIRED'
 * });
 * ```
 */
export class SessionLostError extends FaultError {
  /** Why the session was lost. */
  readonly reason: SessionLostReason;
  /** The session's lease id. */
  readonly lease: number;
  /** Time (ms, on the session's clock) at which the loss was noticed. */
  readonly at: number;

  constructor(reason: SessionLostReason, lease: number, at: number, cause?: unknown) {
    const what =
      reason === 'revoked'
        ? 'the cluster no longer has the lease'
        : reason === 'keepAliveFailed'
          ? 'no keep-alive was confirmed within the TTL'
          : 'the TTL ran out before a keep-alive was sent';
    super(ErrorCode.SESSION_EXPIRED, `session lease ${lease.toString(16)} lost: ${what}`, cause === undefined ? undefined : { cause });
    this.reason = reason;
    this.lease = lease;
    this.at = at;
  }
}

/** Events of a {@link Session}. */
export interface SessionEvents {
  /** The session is lost: stop every work done under its locks or leadership. Emitted once. */
  lost: [error: SessionLostError];
  /** A keep-alive was confirmed; `expiresAt` is the new local deadline (ms, session clock). */
  keepAlive: [info: { ttl: number; expiresAt: number }];
  /** A keep-alive failed (the session goes on until its deadline). */
  keepAliveError: [error: unknown];
  /** The session was closed by its owner. */
  closed: [];
}

/** Options of {@link Session.create}. */
export interface SessionOptions {
  /** Lease TTL in seconds (a positive integer; the cluster raises it to its minimum). Default 60 (etcd). */
  ttl?: number;
  /**
   * Use this existing lease instead of granting one (etcd's `WithLease`). It
   * is renewed once at creation, which fixes the session's TTL and deadline.
   * The lease stays the caller's: it may hold other keys or be kept alive by
   * other sessions, so the session revokes it only in {@link Session.close},
   * never when it is lost or when `create` fails (as etcd's session).
   */
  lease?: number;
  /** Time source for the keep-alive loop and the deadline. Default {@link realClock}. */
  clock?: RecipeClock;
  /**
   * Time between keep-alives in ms: positive, finite, and below the TTL
   * (checked before the grant, or, with `lease`, once the renewal at
   * creation has told the TTL). Default: a third of the TTL (etcd's client). A keep-alive not confirmed
   * yet is sent again after min(500, interval) ms.
   */
  keepAliveIntervalMs?: number;
  /**
   * Safety margin in ms subtracted from the local deadline, to absorb clock
   * rate differences between this process and the leader; below the TTL.
   * Default 1: clocks count whole milliseconds, and a keep-alive sent and applied within the
   * same millisecond would otherwise give the session and the leader the
   * same deadline.
   */
  marginMs?: number;
}

/**
 * A lease kept alive in the background.
 *
 * The lease is granted (`ttl` seconds, default 60) and renewed every
 * `ttl / 3` through {@link KV.leaseKeepAlive}; a keep-alive not confirmed
 * yet is sent again every 500 ms (at most every `ttl / 3`), as etcd's client
 * does. The session keeps a **local
 * deadline**: the time a confirmed keep-alive (or the grant) was *sent*, plus
 * the TTL it returned. The leader renews a lease when it applies the
 * keep-alive, which is after it was sent, and expires it by its own clock
 * (restarting every TTL on a leader change), so the leader cannot expire the
 * lease before this deadline; the session declares itself lost when the
 * deadline passes without a new confirmation, and when a keep-alive answers
 * `QUORUMKV_LEASE_NOT_FOUND`. Therefore, with clocks running at the same rate, `lost`
 * fires *before* the cluster deletes the session's keys and before another
 * client can take over a lock or leadership held through it.
 *
 * What it does not guarantee: that the holder *reacts* in time. A process
 * paused (GC, swap, SIGSTOP) past its deadline runs again believing whatever
 * it believed before; `isLost` re-checks the deadline each time it is read,
 * but work already started is not stopped. Resources protected by a lock must
 * check its fencing token (see {@link Mutex}). Clocks that drift apart (this
 * process faster than the leader is safe; slower is not) need `marginMs`.
 *
 * Once lost, a session stays lost: create a new one. A lost session tries to
 * revoke a lease it granted itself (best effort) so that its keys go away
 * sooner; an adopted lease (`options.lease`, etcd's `WithLease`) is left as it
 * is, since it may be shared or hold the caller's own keys (etcd's session
 * never revokes on a loss). {@link close} revokes either.
 *
 * ```ts
 * const session = await Session.create(node, { ttl: 10 });
 * session.on('lost', (err) => console.error('stop working:', err.reason));
 * const mutex = new Mutex(session, 'locks/report');
 * await mutex.withLock(async (lock, signal) => { ... });
 * await session.close(); // revokes the lease, deleting its keys
 * ```
 */
export class Session extends EventEmitter<SessionEvents> {
  /** The KV the session talks to. */
  readonly kv: KV;
  /** The lease id. */
  readonly lease: number;
  /** The lease TTL in seconds, as granted by the cluster. */
  readonly ttl: number;
  /** The clock the session runs on. */
  readonly clock: RecipeClock;
  /** Resolves (never rejects) when the session ends: lost or closed. */
  readonly done: Promise<SessionEnd>;

  private readonly controller = new AbortController();
  private readonly intervalMs: number;
  private readonly marginMs: number;
  private deadline: number;
  private lastSentAt: number;
  /** When the newest confirmed keep-alive (or the grant) was sent: the next keep-alive is due an interval later. */
  private confirmedSentAt: number;
  private keepAliveTimer: unknown;
  private deadlineTimer: unknown;
  private lastError: unknown;
  private end: SessionEnd | undefined;
  private lostError: SessionLostError | undefined;
  /** True when the lease was adopted (`options.lease`): a loss leaves it alone. */
  private readonly adopted: boolean;
  /** The revoke of {@link close}, once called: every call returns it. */
  private closing: Promise<void> | undefined;
  private resolveDone!: (end: SessionEnd) => void;

  private constructor(kv: KV, lease: number, ttl: number, sentAt: number, clock: RecipeClock, options: SessionOptions) {
    super();
    this.kv = kv;
    this.lease = lease;
    this.ttl = ttl;
    this.clock = clock;
    this.adopted = options.lease !== undefined;
    this.intervalMs = options.keepAliveIntervalMs ?? Math.max(1, Math.floor((ttl * 1000) / 3));
    this.marginMs = options.marginMs ?? 1;
    this.deadline = sentAt + ttl * 1000 - this.marginMs;
    this.lastSentAt = sentAt;
    this.confirmedSentAt = sentAt;
    this.done = new Promise<SessionEnd>((resolve) => {
      this.resolveDone = resolve;
    });
  }

  /**
   * Grants a lease (or adopts `options.lease`) and starts keeping it alive.
   * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for a bad TTL, interval, margin or clock (`null` included:
   *   only a left-out option takes its default; an interval or
   *   margin not below the TTL: with `options.lease`, once its TTL is known, leaving the lease as it is), an option of another
   *   name than {@link SessionOptions}', or a `kv` that is not a KV;
   *   `QUORUMKV_LEASE_NOT_FOUND` when `options.lease` does not exist
   * @throws SessionLostError `QUORUMKV_SESSION_EXPIRED` when the grant (or,
   *   with `options.lease`, the renewal) took longer than the TTL: a lease
   *   granted here is then revoked (best effort), an adopted one is left as it
   *   is; any error of the grant or renewal (`QUORUMKV_TIMEOUT`, ...)
   */
  static async create(kv: KV, options: SessionOptions = {}): Promise<Session> {
    kvOf(kv, 'the session\'s kv', ['leaseGrant', 'leaseKeepAlive', 'leaseRevoke']);
    options = optionsOf(options, 'session options', ['ttl', 'lease', 'clock', 'keepAliveIntervalMs', 'marginMs']);
    // only a left-out option takes its default: a null TTL is not 60 s, nor a null clock the real one
    for (const name of ['ttl', 'lease', 'clock', 'keepAliveIntervalMs', 'marginMs'] as const) {
      if (options[name] === null) throw new UsageError(ErrorCode.INVALID_ARGUMENT, `session option ${name} must not be null (leave it out for the default)`);
    }
    const ttl = options.ttl ?? 60;
    if (!Number.isSafeInteger(ttl) || ttl <= 0) throw new UsageError(ErrorCode.INVALID_ARGUMENT, `session ttl must be a positive integer number of seconds, got ${describeValue(ttl)}`);
    const interval = options.keepAliveIntervalMs;
    if (interval !== undefined && !(typeof interval === 'number' && interval > 0 && Number.isFinite(interval))) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'keepAliveIntervalMs must be a positive finite number');
    }
    // with the lease granted here, its TTL is known: an interval at or
    // above it would lose the session before its first keep-alive
    if (interval !== undefined && options.lease === undefined && interval >= ttl * 1000) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `keepAliveIntervalMs (${interval}) must be below the TTL (${ttl * 1000} ms)`);
    }
    const margin = options.marginMs;
    if (margin !== undefined && !(typeof margin === 'number' && margin >= 0)) throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'marginMs must be a non-negative number');
    // a margin of the whole TTL would lose the session at once, after the grant
    if (margin !== undefined && options.lease === undefined && margin >= ttl * 1000) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `marginMs (${margin}) must be below the TTL (${ttl * 1000} ms)`);
    }
    const clock = options.clock ?? realClock;
    if (clock === null || typeof clock !== 'object' || typeof clock.now !== 'function' || typeof clock.setTimeout !== 'function' || typeof clock.clearTimeout !== 'function') {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, 'the session clock must have now, setTimeout and clearTimeout');
    }
    const sentAt = clock.now();
    let lease: number;
    let granted: number;
    if (options.lease !== undefined) {
      const res = await kv.leaseKeepAlive(options.lease);
      if (res.ttl <= 0) throw new UsageError(ErrorCode.LEASE_NOT_FOUND, 'etcdserver: requested lease not found');
      lease = options.lease;
      granted = res.ttl;
      // checked once the TTL is known, before the session starts: such a
      // session would be lost at once (the lease is left as it is)
      if ((interval ?? 0) >= granted * 1000 || (margin ?? 0) >= granted * 1000) {
        throw new UsageError(ErrorCode.INVALID_ARGUMENT, `keepAliveIntervalMs and marginMs must be below the lease's TTL (${granted * 1000} ms); the lease is left as it is`);
      }
    } else {
      const res = await kv.leaseGrant(ttl);
      lease = res.id;
      granted = res.ttl;
    }
    const session = new Session(kv, lease, granted, sentAt, clock, options);
    if (clock.now() >= session.deadline) {
      // an adopted lease is the caller's (shared, or holding its keys): left as it is
      if (!session.adopted) kv.leaseRevoke(lease).catch(() => undefined);
      throw new SessionLostError('expired', lease, clock.now());
    }
    session.armDeadline();
    session.scheduleKeepAlive();
    return session;
  }

  /**
   * True once the session is lost. Reading it also checks the local deadline,
   * so a process resuming from a pause sees the loss before its timers run.
   */
  get isLost(): boolean {
    this.checkDeadline();
    return this.lostError !== undefined;
  }

  /** True once {@link close} was called. */
  get isClosed(): boolean {
    return this.end === 'closed';
  }

  /** True while neither lost nor closed (checks the deadline, as {@link isLost}). */
  get isAlive(): boolean {
    this.checkDeadline();
    return this.end === undefined;
  }

  /** The loss, once lost. */
  get error(): SessionLostError | undefined {
    return this.lostError;
  }

  /** Local deadline in ms on the session clock: the session is lost at this time unless a keep-alive is confirmed before. */
  get expiresAt(): number {
    return this.deadline;
  }

  /** Milliseconds left before the local deadline (0 once lost or closed). */
  remainingMs(): number {
    if (!this.isAlive) return 0;
    return Math.max(0, this.deadline - this.clock.now());
  }

  /**
   * Aborted when the session ends: its reason is the {@link SessionLostError},
   * or a `FaultError` `QUORUMKV_SESSION_EXPIRED` after {@link close}. Pass it
   * to work that must stop with the session.
   */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /**
   * Throws unless the session is alive.
   * @throws SessionLostError (`QUORUMKV_SESSION_EXPIRED`) when lost; FaultError
   *   `QUORUMKV_SESSION_EXPIRED` when closed
   */
  assertAlive(): void {
    if (this.isAlive) return;
    throw this.lostError ?? new FaultError(ErrorCode.SESSION_EXPIRED, 'session is closed');
  }

  /**
   * Stops the keep-alive loop and revokes the lease, deleting every key
   * attached to it (locks held through it are released). Idempotent: every
   * call returns the outcome of the first one's revoke; after a loss it does
   * nothing (the session stays lost: `isLost` true, `isClosed`
   * false). "Lease not found" is not an error.
   * @throws the revoke's error (`QUORUMKV_TIMEOUT`, ...): the lease then
   *   expires by itself within its TTL
   */
  async close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    if (this.end !== undefined) return;
    this.finish('closed', new FaultError(ErrorCode.SESSION_EXPIRED, 'session is closed'));
    this.closing = this.revoke();
    this.announce('closed');
    return this.closing;
  }

  private async revoke(): Promise<void> {
    try {
      await this.kv.leaseRevoke(this.lease);
    } catch (err) {
      if (!isQuorumError(err, ErrorCode.LEASE_NOT_FOUND)) throw err;
    }
  }

  // ---------------------------------------------------------- internals

  /**
   * Arms the keep-alive timer: a keep-alive is due one interval after the
   * newest confirmed one was sent; while one is overdue (not confirmed), it
   * is sent again every {@link RETRY_MS} (at most every interval), as etcd's
   * client resends overdue keep-alives every 500 ms, so that a member cut
   * off for a while renews the lease as soon as it is reachable again.
   */
  private scheduleKeepAlive(): void {
    if (this.end !== undefined) return;
    const due = this.confirmedSentAt + this.intervalMs;
    const now = this.clock.now();
    const delay = now < due ? due - now : Math.min(this.intervalMs, RETRY_MS);
    this.keepAliveTimer = this.clock.setTimeout(() => {
      this.keepAliveTimer = undefined;
      if (this.clock.now() >= this.confirmedSentAt + this.intervalMs) this.sendKeepAlive();
      this.scheduleKeepAlive();
    }, Math.min(delay, MAX_TIMER_MS));
  }

  private sendKeepAlive(): void {
    if (this.checkDeadline()) return;
    const sentAt = this.clock.now();
    this.lastSentAt = sentAt;
    let p: Promise<{ ttl: number }>;
    try {
      p = this.kv.leaseKeepAlive(this.lease);
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      (res) => {
        if (this.end !== undefined || this.checkDeadline()) return;
        if (res.ttl <= 0) {
          this.lose('revoked', undefined);
          return;
        }
        // A confirmation that arrives before the deadline was applied by the
        // leader before the lease could expire there: the lease lives at
        // least until sentAt + ttl on the leader's clock.
        const next = sentAt + res.ttl * 1000 - this.marginMs;
        if (next > this.deadline) {
          this.deadline = next;
          this.armDeadline();
        }
        if (sentAt > this.confirmedSentAt) this.confirmedSentAt = sentAt;
        this.lastError = undefined;
        this.announce('keepAlive', { ttl: res.ttl, expiresAt: this.deadline });
      },
      (err: unknown) => {
        if (this.end !== undefined) return;
        if (isQuorumError(err, ErrorCode.LEASE_NOT_FOUND)) {
          this.lose('revoked', err);
          return;
        }
        this.lastError = err;
        this.announce('keepAliveError', err);
      },
    );
  }

  /**
   * Emits an event of this session. A listener that throws skips the later
   * listeners of that event, and its error is thrown again on its own (an
   * uncaught exception, as from a listener of a timer): it does not stop
   * `close()` from revoking the lease, nor the keep-alive loop.
   */
  private announce<E extends EventEmitter.EventNames<SessionEvents>>(event: E, ...args: EventEmitter.EventArgs<SessionEvents, E>): void {
    emitIsolated(this, event, ...args);
  }

  private armDeadline(): void {
    if (this.deadlineTimer !== undefined) this.clock.clearTimeout(this.deadlineTimer);
    this.deadlineTimer = this.clock.setTimeout(() => {
      this.deadlineTimer = undefined;
      if (!this.checkDeadline() && this.end === undefined) this.armDeadline();
    }, Math.min(MAX_TIMER_MS, Math.max(0, this.deadline - this.clock.now())));
  }

  /** Declares the session lost when its deadline has passed; true when it is over. */
  private checkDeadline(): boolean {
    if (this.end !== undefined) return true;
    const now = this.clock.now();
    if (now < this.deadline) return false;
    const windowStart = this.deadline + this.marginMs - this.ttl * 1000;
    const sentInTime = this.lastSentAt > windowStart && this.lastSentAt < this.deadline;
    this.lose(sentInTime ? 'keepAliveFailed' : 'expired', this.lastError);
    return true;
  }

  private lose(reason: SessionLostReason, cause: unknown): void {
    if (this.end !== undefined) return;
    const err = new SessionLostError(reason, this.lease, this.clock.now(), cause);
    this.lostError = err;
    this.finish(reason, err);
    // best effort: the holder has stopped, so let the keys go as soon as
    // possible; not an adopted lease, which may be shared or hold the
    // caller's own keys (etcd's session never revokes on a loss)
    if (reason !== 'revoked' && !this.adopted) this.kv.leaseRevoke(this.lease).catch(() => undefined);
    this.announce('lost', err);
  }

  private finish(end: SessionEnd, reason: Error): void {
    this.end = end;
    if (this.keepAliveTimer !== undefined) this.clock.clearTimeout(this.keepAliveTimer);
    if (this.deadlineTimer !== undefined) this.clock.clearTimeout(this.deadlineTimer);
    this.keepAliveTimer = undefined;
    this.deadlineTimer = undefined;
    this.controller.abort(reason);
    this.resolveDone(end);
  }
}
