/**
 * The open frame's `failover-server-list` connection property, as Apache ActiveMQ Artemis sends
 * it and qdrouterd reads it.
 *
 * Artemis (artemis-amqp-protocol, proton/AMQPConnectionContext.getConnectionPropertiesForResponse,
 * keys from proton/AmqpSupport) puts under the symbol `failover-server-list` a list of one
 * `HashMap<Symbol, Object>` per server:
 *
 *   :"network-host" -> String host, :scheme -> String "amqp" | "amqps",
 *   :hostname -> String host, :port -> Integer port
 *
 * Proton-J encodes that as list8 of map8, symbol keys as sym8, the strings as str8 and the port as
 * an int (0x71; smallint 0x54 for -128..127), in the HashMap's iteration order, which for these
 * four keys is hostname, scheme, port, network-host. qdrouterd (router_node.c
 * parse_failover_property_list) only matches SYMBOL keys and calls strlen() on the host it found:
 * an entry whose keys are strings crashes qdrouterd 1.19.
 *
 * Readers take the port as any integer or a decimal string (qdrouterd's comment shows
 * `:port="35000"`), and the keys as symbols or strings (older amqp-mesh brokers sent strings).
 */
import { Sym, sym, int } from './codec';

export const FAILOVER_SERVER_LIST = 'failover-server-list';

export interface FailoverServer {
  host: string;
  port: number;
  /** "amqp" or "amqps"; null when the entry names none (qdrouterd then assumes "amqp"). */
  scheme: string | null;
}

const HOSTNAME = sym('hostname');
const SCHEME = sym('scheme');
const PORT = sym('port');
const NETWORK_HOST = sym('network-host');

/**
 * The `failover-server-list` value for `servers`, encoded by {@link Writer.value} exactly as
 * Artemis encodes it (symbol keys in Proton-J's HashMap order, string host, int port).
 */
export function failoverServerList(servers: readonly { host: string; port: number }[], scheme: 'amqp' | 'amqps'): Map<Sym, unknown>[] {
  return servers.map((s) => new Map<Sym, unknown>([
    [HOSTNAME, s.host],
    [SCHEME, scheme],
    [PORT, int(s.port)],
    [NETWORK_HOST, s.host],
  ]));
}

/**
 * The `failover-server-list` a qdrouterd listener announces from its `failoverUrls`: per entry a
 * map of symbol keys to strings, `network-host` and `port`, then `scheme` when the entry wrote one
 * (qdrouterd's server.c order and types).
 */
export function listenerFailoverServerList(urls: readonly { host: string; port: number; scheme: string; schemeWritten?: boolean }[]): Map<Sym, string>[] {
  return urls.map((u) => {
    const m = new Map<Sym, string>([[NETWORK_HOST, u.host], [PORT, String(u.port)]]);
    if (u.schemeWritten) m.set(SCHEME, u.scheme);
    return m;
  });
}

function text(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v instanceof Sym) return v.name;
  return null;
}

function portOf(v: unknown): number | null {
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'bigint') n = Number(v);
  else {
    const s = text(v);
    if (s === null || !/^[0-9]{1,5}$/.test(s.trim())) return null;
    n = Number(s.trim());
  }
  return Number.isInteger(n) && n > 0 && n <= 65535 ? n : null;
}

/** The entry's fields by key name, whether the decoded map's keys are symbols or strings. */
function entryFields(e: unknown): Map<string, unknown> | null {
  if (e === null || typeof e !== 'object' || Array.isArray(e) || Buffer.isBuffer(e)) return null;
  const out = new Map<string, unknown>();
  if (e instanceof Map) {
    for (const [k, v] of e) {
      const name = text(k);
      if (name !== null) out.set(name, v);
    }
  } else {
    for (const [k, v] of Object.entries(e as Record<string, unknown>)) out.set(k, v);
  }
  return out;
}

/**
 * Reads a decoded `failover-server-list` value (Artemis's form, or the string-key form older
 * amqp-mesh brokers sent). Entries without a usable host and port are skipped; the host is
 * `network-host`, else `hostname`.
 */
export function parseFailoverServerList(v: unknown): FailoverServer[] {
  if (!Array.isArray(v)) return [];
  const out: FailoverServer[] = [];
  for (const e of v) {
    const f = entryFields(e);
    if (!f) continue;
    const host = text(f.get('network-host')) || text(f.get('hostname'));
    const port = portOf(f.get('port'));
    if (!host || port === null) continue;
    out.push({ host, port, scheme: text(f.get('scheme')) });
  }
  return out;
}
