/**
 * Failed authentications per peer host, and how long a new connection from a host that keeps
 * failing waits before it is served: a password guesser is slowed down, everyone else is not.
 * Pure: the clock is passed in.
 */

/** When and how much to slow a host down. */
export interface ThrottleSettings {
  /** Failures (within `windowMs`) served at full speed. */
  readonly freeFailures: number;
  /** A host's failures are forgotten this long after its last one. */
  readonly windowMs: number;
  /** The first delay past the free failures; each further failure doubles it, up to `maxDelayMs`. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** Hosts remembered at most (the oldest is forgotten first). */
  readonly maxHosts: number;
}

export const DEFAULT_THROTTLE: ThrottleSettings = { freeFailures: 3, windowMs: 60_000, baseDelayMs: 250, maxDelayMs: 5_000, maxHosts: 10_000 };

/** Failed authentications by host. */
export class AuthThrottle {
  private readonly hosts = new Map<string, { failures: number; last: number }>();
  /** Every failure counted since start. */
  failuresTotal = 0;

  constructor(readonly settings: ThrottleSettings = DEFAULT_THROTTLE) {}

  /** A failed authentication from `host`. */
  onFailure(host: string, now: number): void {
    this.failuresTotal++;
    const h = this.current(host, now);
    this.hosts.delete(host);
    this.hosts.set(host, { failures: (h?.failures ?? 0) + 1, last: now });
    if (this.hosts.size > this.settings.maxHosts) this.hosts.delete(this.hosts.keys().next().value as string);
  }

  /** A successful authentication from `host` (its record goes). */
  onSuccess(host: string): void {
    this.hosts.delete(host);
  }

  /** Recent failures of `host`. */
  failures(host: string, now: number): number {
    return this.current(host, now)?.failures ?? 0;
  }

  /** How long a new connection from `host` waits before it is served (0: at once). */
  computeDelay(host: string, now: number): number {
    const over = this.failures(host, now) - this.settings.freeFailures;
    if (over < 0) return 0;
    return Math.min(this.settings.baseDelayMs * 2 ** Math.min(over, 30), this.settings.maxDelayMs);
  }

  private current(host: string, now: number): { failures: number; last: number } | undefined {
    const h = this.hosts.get(host);
    if (h !== undefined && now - h.last > this.settings.windowMs) {
      this.hosts.delete(host);
      return undefined;
    }
    return h;
  }
}
