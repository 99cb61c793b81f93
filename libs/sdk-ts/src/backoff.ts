/** BackoffOptions shape the delays between reconnects and between resends. */
export interface BackoffOptions {
  /** First delay, in ms. Default 500. */
  initialMs?: number;
  /** Largest delay, in ms. Default 30000. */
  maxMs?: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /**
   * Share of each delay that is random, 0 to 1: 0.5 waits between half
   * and all of the computed delay. Spreads the reconnects of many clients
   * after a gateway restart. Default 0.5.
   */
  jitter?: number;
}

/** DEFAULT_BACKOFF are the defaults of BackoffOptions. */
export const DEFAULT_BACKOFF: Required<BackoffOptions> = { initialMs: 500, maxMs: 30_000, factor: 2, jitter: 0.5 };

/**
 * backoffDelay is the delay before retry number attempt (0 for the first):
 * min(maxMs, initialMs·factor^attempt), less up to jitter of it at random.
 */
export function backoffDelay(o: Required<BackoffOptions>, attempt: number, random: () => number = Math.random): number {
  const base = Math.min(o.maxMs, o.initialMs * Math.pow(o.factor, Math.max(0, attempt)));
  const j = Math.min(1, Math.max(0, o.jitter));
  return Math.round(base * (1 - j * random()));
}
