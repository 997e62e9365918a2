/**
 * Failover lists: `failoverUrls: amqp://broker-a:5672, broker-b:5673`.
 *
 * The grammar is qdrouterd's (`src/failoverlist.c`): entries are separated by commas, whitespace
 * around them is ignored, each is `[scheme://]host[:port]` with the port after the first `:`
 * (so no IPv6 literals), the scheme defaults to `amqp` and the port to 5672, and one trailing
 * comma is tolerated. Where qdrouterd would silently accept nonsense (whitespace inside an entry,
 * which it deletes; a port that is not a port, which only fails when connecting), this parser
 * refuses it.
 */

import type { FailoverScheme, FailoverUrl } from './types';

/** Schemes qdrouterd documents for failover URLs, in its order. */
export const FAILOVER_SCHEMES: readonly FailoverScheme[] = ['amqp', 'amqps', 'ws', 'wss'];
/**
 * Schemes amqp-mesh fails over to. Every candidate is dialled as the connector is (TLS when it has
 * an sslProfile), so `amqps` names the same thing as `amqp` with the connector's profile; failing
 * over to WebSocket URLs is not implemented.
 */
export const SUPPORTED_FAILOVER_SCHEMES: readonly FailoverScheme[] = ['amqp', 'amqps'];
/** How an entry is written, for messages. */
export const FAILOVER_URL_FORM = '[amqp://]host[:port] (port 1-65535, default 5672)';

const DEFAULT_PORT = 5672;
const SERVICE_PORTS: { readonly [service: string]: number } = { amqp: 5672, amqps: 5671 };
/** Host names and IPv4 addresses: letters, digits, `.`, `-`, `_`. */
const HOST = /^[\p{L}\p{N}._-]+$/u;

/** Why a failover list was refused. */
export interface FailoverUrlProblem {
  /** 1-based position of the bad entry in the list. */
  readonly index: number;
  /** `unsupported`: well-formed, with a scheme amqp-mesh cannot connect with yet. */
  readonly kind: 'malformed' | 'unsupported';
  /** What is wrong with it, naming the entry (without any user information it carries). */
  readonly reason: string;
}

/**
 * Parses a failover list.
 * @returns the entries in order, or the first problem.
 */
export function parseFailoverUrls(written: string): { urls: FailoverUrl[] } | { problem: FailoverUrlProblem } {
  const entries = written.split(',').map((entry) => entry.trim());
  // qdrouterd stops at the end of the text, so "a, b," is a list of two; "a,,b" has an empty entry.
  if (entries.length > 1 && entries[entries.length - 1] === '') entries.pop();
  const urls: FailoverUrl[] = [];
  for (const [position, entry] of entries.entries()) {
    const index = position + 1;
    const result = parseEntry(entry);
    if ('reason' in result) return { problem: { index, kind: result.kind, reason: `entry ${index} ${result.reason}` } };
    urls.push(result);
  }
  return { urls };
}

function parseEntry(entry: string): FailoverUrl | { kind: FailoverUrlProblem['kind']; reason: string } {
  const malformed = (reason: string) => ({ kind: 'malformed' as const, reason });
  if (entry === '') return malformed('is empty');
  // User information would be a credential: do not repeat the entry.
  if (entry.includes('@')) return malformed('has user information ("user@"); failover URLs carry no credentials, the connector\'s saslUsername and saslPassword are used');
  const shown = JSON.stringify(entry.length > 80 ? entry.slice(0, 77) + '...' : entry);
  if (/\s/.test(entry)) return malformed(`${shown} contains whitespace; separate entries with commas`);

  let scheme: FailoverScheme = 'amqp';
  let rest = entry;
  const schemeEnd = entry.indexOf('://');
  if (schemeEnd >= 0) {
    const writtenScheme = entry.slice(0, schemeEnd).toLowerCase();
    const known = FAILOVER_SCHEMES.find((candidate) => candidate === writtenScheme);
    if (known === undefined) {
      return malformed(`${shown} has scheme ${JSON.stringify(entry.slice(0, schemeEnd))}; expected one of ${FAILOVER_SCHEMES.join(', ')}`);
    }
    if (!SUPPORTED_FAILOVER_SCHEMES.includes(known)) {
      return {
        kind: 'unsupported',
        reason: `${shown}: scheme "${known}" is not supported yet by amqp-mesh (failing over to WebSocket URLs is not implemented yet); supported: ${SUPPORTED_FAILOVER_SCHEMES.join(', ')}`,
      };
    }
    scheme = known;
    rest = entry.slice(schemeEnd + 3);
  }

  const colon = rest.indexOf(':');
  const host = colon >= 0 ? rest.slice(0, colon) : rest;
  if (host === '') return malformed(`${shown} has no host`);
  if (!HOST.test(host)) {
    return malformed(`${shown} has host ${JSON.stringify(host)}, which is not a host name or IPv4 address (IPv6 literals cannot be written in a failover list)`);
  }
  const written = schemeEnd >= 0 ? { schemeWritten: true } : {};
  if (colon < 0) return { scheme, host, port: DEFAULT_PORT, ...written };

  const portText = rest.slice(colon + 1);
  const service = portText.toLowerCase();
  if (Object.prototype.hasOwnProperty.call(SERVICE_PORTS, service)) return { scheme, host, port: SERVICE_PORTS[service]!, ...written };
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 1 && port <= 65535)) {
    return malformed(`${shown} has port ${JSON.stringify(portText)}; expected a number from 1 to 65535, "amqp" (5672) or "amqps" (5671)`);
  }
  return { scheme, host, port, ...written };
}
