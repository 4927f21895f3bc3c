/**
 * @internal
 * How a waiting recipe call stops early: an abort scope linking the caller's
 * `AbortSignal` (the call fails with `QUORUMKV_ABORTED`) and the session's
 * end (the call fails with `QUORUMKV_SESSION_EXPIRED`). Not exported from the
 * package.
 * @module
 */
import { checkOptionsArg } from '../option-keys.js';
import { ErrorCode, FaultError, UsageError } from '../errors.js';
import type { Session } from './session.js';

/** The error of a call aborted through its `AbortSignal` (`QUORUMKV_ABORTED`; the signal's reason is the `cause`). */
export function abortedError(reason?: unknown): FaultError {
  return new FaultError(ErrorCode.ABORTED, 'the operation was aborted', reason === undefined ? undefined : { cause: reason });
}

/**
 * @internal The options object of a recipe call: `undefined` gives `{}`.
 * @param known - every option the call takes
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for anything but an object
 *   (`null` included), an option of another name, or a `signal` that is
 *   not an `AbortSignal`
 */
export function optionsOf<T extends object>(o: T | undefined, what: string, known: readonly (keyof T & string)[]): T {
  // a misspelled option (`sigal`) would be ignored without a word
  checkOptionsArg(o, known, what);
  if (o === undefined) return {} as T;
  const signal = (o as { signal?: unknown }).signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new UsageError(ErrorCode.INVALID_ARGUMENT, `${what}: signal must be an AbortSignal`);
  return o;
}

/** @internal An abort scope over a caller's signal and a session. */
export class Scope {
  private readonly controller = new AbortController();
  private readonly unlink: (() => void)[] = [];

  constructor(
    private readonly user: AbortSignal | undefined,
    private readonly session: Session | undefined,
  ) {
    if (user !== undefined) this.link(user, () => abortedError(user.reason));
    if (session !== undefined) this.link(session.signal, () => session.signal.reason);
  }

  /** Aborted (with the typed error as reason) when the caller aborts or the session ends. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** True when the caller's own signal is aborted. */
  get userAborted(): boolean {
    return this.user?.aborted === true;
  }

  /** Throws the scope's error when aborted, or when the session is no longer alive. */
  check(): void {
    if (this.user?.aborted === true) throw abortedError(this.user.reason);
    if (this.session !== undefined) this.session.assertAlive();
    if (this.controller.signal.aborted) throw this.controller.signal.reason;
  }

  /**
   * Aborts the scope with `reason` (the error its waits then throw), as the
   * caller's signal would; nothing when already aborted.
   */
  abort(reason: unknown): void {
    if (!this.controller.signal.aborted) this.controller.abort(reason);
  }

  /** The error to report once aborted. */
  reason(): unknown {
    return this.controller.signal.reason;
  }

  /** Removes the listeners this scope added. */
  dispose(): void {
    for (const f of this.unlink) f();
    this.unlink.length = 0;
  }

  private link(signal: AbortSignal, reason: () => unknown): void {
    if (signal.aborted) {
      if (!this.controller.signal.aborted) this.controller.abort(reason());
      return;
    }
    const onAbort = (): void => {
      if (!this.controller.signal.aborted) this.controller.abort(reason());
    };
    signal.addEventListener('abort', onAbort, { once: true });
    this.unlink.push(() => signal.removeEventListener('abort', onAbort));
  }
}
