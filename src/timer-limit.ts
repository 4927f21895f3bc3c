/**
 * The longest delay a timer holds, shared by every layer that sets one.
 * @module
 */

/**
 * The longest delay, in ms, that Node's `setTimeout` and
 * `@sinonjs/fake-timers` hold: 2^31 - 1 (about 24.8 days). Given more, both
 * run the timer after 1 ms (Node with a `TimeoutOverflowWarning`), so a
 * longer delay must be waited in steps (`systemClock`, `VirtualClock`, the
 * watch progress timer), cut short and looked at again (`Session`), or
 * refused (`TcpTransport`'s options).
 * @internal
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;
