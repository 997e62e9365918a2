/**
 * Failed authentications as a server meets them, for the router and the broker alike: each is
 * logged (module AUTHSERVICE, so management's logStats counts them) with mechanism, claimed user
 * and peer, and a host that keeps failing has its new connections held back (the decision is
 * {@link AuthThrottle}'s; the timer is here).
 */
import type { Logger } from '../../lib/log';
import { AuthThrottle } from '../sasl/throttle';
import { splitHostPort } from './transport';

export class AuthGuard {
  readonly throttle = new AuthThrottle();

  constructor(private readonly logger: Logger) {}

  /**
   * A new connection from `peer` on listener `listener`: true when it is held back (`resume`
   * runs once it may be served, with the time it waited), false to serve it now.
   */
  holdBack(peer: string, listener: string, resume: (waitedMs: number) => void): boolean {
    const [host] = splitHostPort(peer);
    const now = Date.now();
    const wait = this.throttle.computeDelay(host, now);
    if (wait === 0) return false;
    this.logger.log('SERVER', 'info', `Connection from ${peer} on ${listener} waits ${wait} ms: ${this.throttle.failures(host, now)} recent failed authentications from ${host}`);
    setTimeout(() => resume(wait), wait);
    return true;
  }

  /** An authentication failed on connection `id`. */
  onFailure(id: number, peer: string, listener: string, mechanism: string, user: string | null, reason: string): void {
    const [host] = splitHostPort(peer);
    const now = Date.now();
    this.throttle.onFailure(host, now);
    this.logger.log('AUTHSERVICE', 'warning',
      `[C${id}] Authentication failed: ${mechanism}${user !== null ? ` user ${JSON.stringify(user)}` : ''} from ${peer} on ${listener}: ${reason} (${this.throttle.failures(host, now)} recent failures from ${host})`);
  }

  /** A peer authenticated: its host's failures are forgotten. */
  onSuccess(peer: string): void {
    this.throttle.onSuccess(splitHostPort(peer)[0]);
  }
}
