/**
 * Remote-host specifications of a vhost user group (qdrouterd's `remoteHosts`): `*`, one numeric
 * address, or a range `low-high` of one family. Pure: names are not resolved (a policy that
 * depends on DNS at connection time would change meaning with it), so a host name is refused.
 */
import { isIP } from 'node:net';

/** One compiled `remoteHosts` item. */
export type HostSpec = { any: true } | { any: false; family: 4 | 6; low: Buffer; high: Buffer };

/** A remote-host specification that cannot be used, with the reason. */
export class HostSpecError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HostSpecError';
  }
}

/** The bytes of a numeric address (IPv4-mapped IPv6 as IPv4), or null when it is not one. */
export function computeAddressBytes(text: string): { family: 4 | 6; bytes: Buffer } | null {
  const t = text.trim();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(t);
  if (mapped) return computeAddressBytes(mapped[1]);
  const kind = isIP(t);
  if (kind === 4) return { family: 4, bytes: Buffer.from(t.split('.').map(Number)) };
  if (kind !== 6) return null;
  // Expand `::` and an embedded dotted quad into eight 16-bit groups.
  let s = t;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (dotted) {
    const b = dotted[1].split('.').map(Number);
    s = s.slice(0, -dotted[1].length) + `${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, null];
  const h = head === '' ? [] : head.split(':');
  const tl = tail === null || tail === '' ? [] : tail.split(':');
  const groups = tail === null ? h : [...h, ...Array(8 - h.length - tl.length).fill('0'), ...tl];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return { family: 6, bytes: out };
}

/**
 * Compiles one `remoteHosts` item (`*`, `10.0.0.1`, `10.48.0.0-10.48.255.255`, `::1`).
 * @throws HostSpecError naming what is wrong.
 */
export function compileHostSpec(spec: string): HostSpec {
  const s = spec.trim();
  if (s === '*') return { any: true };
  const parts = s.split('-').map((p) => p.trim());
  if (parts.length > 2 || parts.some((p) => p === '')) throw new HostSpecError('hostspec must contain 1 or 2 host names');
  const addrs = parts.map((p) => {
    const a = computeAddressBytes(p);
    if (a === null) throw new HostSpecError(`'${p}' is not a numeric IPv4 or IPv6 address (host names are not resolved)`);
    return a;
  });
  const [low, high = low] = addrs;
  if (low.family !== high.family) throw new HostSpecError('mixed IPv4 and IPv6 host specs in range not allowed');
  if (Buffer.compare(low.bytes, high.bytes) > 0) throw new HostSpecError('host specs in range must have lower numeric address first');
  return { any: false, family: low.family, low: low.bytes, high: high.bytes };
}

/** Whether a peer address (as the socket reports it) is within any of the specs. */
export function matchesHostSpecs(specs: readonly HostSpec[], peer: string): boolean {
  if (specs.some((h) => h.any)) return true;
  const a = computeAddressBytes(peer);
  if (a === null) return false;
  return specs.some((h) => !h.any && h.family === a.family && Buffer.compare(a.bytes, h.low) >= 0 && Buffer.compare(a.bytes, h.high) <= 0);
}
