/**
 * The system's OpenSSL policy for TLS versions: what a qdrouterd sslProfile without `protocols`
 * gets. qdrouterd (through Proton and the system's libssl) leaves the version range to OpenSSL,
 * whose `system_default` section of openssl.cnf (MinProtocol, MaxProtocol) bounds every context:
 * Debian sets none (TLS 1.0 up), RHEL's and Fedora's crypto-policies set TLS 1.2. Node's bundled
 * OpenSSL does not read that section, so amqp-mesh reads it itself, to agree with qdrouterd on
 * the same machine (ADR docs/decisions/0013-tls-versions.md).
 *
 * {@link computeSystemTlsPolicy} is pure (the file reader is passed in); {@link readSystemTlsPolicy}
 * reads the real files.
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import type { TlsProfile } from './settings';

/** A TLS version as qdrouterd's `protocols` names it. */
export type TlsVersion = NonNullable<TlsProfile['protocols']>[number];

const VERSIONS: readonly TlsVersion[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/** The version range the system's OpenSSL configuration allows. */
export interface SystemTlsPolicy {
  /** Oldest allowed (OpenSSL's own floor, TLSv1, when the configuration names none). */
  min: TlsVersion;
  /** Newest allowed. */
  max: TlsVersion;
  /** Where that came from, for log lines: `MinProtocol TLSv1.2 in FILE`, or the file that sets nothing. */
  source: string;
}

/** A file's text, or undefined when it cannot be read; directories list their entries. */
export interface ConfReader {
  read(path: string): string | undefined;
  list(path: string): string[] | undefined;
}

/** Limits on what is read: nested includes, and bytes in all. */
const MAX_INCLUDE_DEPTH = 8;
const MAX_BYTES = 1 << 20;

/**
 * The TLS version range an openssl.cnf allows: its `openssl_conf` -> `ssl_conf` ->
 * `system_default` section's MinProtocol and MaxProtocol, following `.include` (files, and
 * directories' `.cnf`/`.conf` files). Null when the file cannot be read, or cannot be read whole
 * (includes nested deeper than 8, or over 1 MiB in all): there is no system policy to follow, and
 * the caller keeps its own, safer defaults. Versions older than TLS 1.0 (SSLv3, None) mean
 * TLS 1.0: SSL 3 is never offered.
 */
export function computeSystemTlsPolicy(confPath: string, reader: ConfReader): SystemTlsPolicy | null {
  const text = reader.read(confPath);
  if (text === undefined) return null;
  const sections = parseConf(confPath, text, reader);
  if (sections === null) return null;
  const pick = (section: string | undefined, key: string): Setting | undefined => (section === undefined ? undefined : sections.get(section)?.get(key));
  const sslConf = pick(pick('', 'openssl_conf')?.value, 'ssl_conf')?.value;
  const systemDefault = pick(sslConf, 'system_default')?.value;
  const min = pick(systemDefault, 'MinProtocol');
  const max = pick(systemDefault, 'MaxProtocol');
  const minVersion = min !== undefined ? versionOf(min.value, 'TLSv1') : 'TLSv1';
  const maxVersion = max !== undefined ? versionOf(max.value, 'TLSv1.3') : 'TLSv1.3';
  const said = [min && `MinProtocol ${min.value} in ${min.file}`, max && `MaxProtocol ${max.value} in ${max.file}`].filter(Boolean);
  return {
    min: minVersion,
    max: VERSIONS.indexOf(maxVersion) < VERSIONS.indexOf(minVersion) ? minVersion : maxVersion,
    source: said.length > 0 ? said.join(', ') : `${confPath} (no MinProtocol or MaxProtocol)`,
  };
}

/** The versions from `min` to `max`, oldest first. */
export function versionsOf(policy: Pick<SystemTlsPolicy, 'min' | 'max'>): TlsVersion[] {
  return VERSIONS.slice(VERSIONS.indexOf(policy.min), VERSIONS.indexOf(policy.max) + 1);
}

/**
 * The policy of this machine: `OPENSSL_CONF` when set, else the first openssl.cnf of Debian's,
 * RHEL's or OpenSSL's usual places. Null when none can be read.
 */
export function readSystemTlsPolicy(env: NodeJS.ProcessEnv = process.env): SystemTlsPolicy | null {
  const candidates = env.OPENSSL_CONF ? [env.OPENSSL_CONF] : ['/etc/ssl/openssl.cnf', '/etc/pki/tls/openssl.cnf', '/usr/lib/ssl/openssl.cnf', '/usr/local/ssl/openssl.cnf'];
  for (const path of candidates) {
    const policy = computeSystemTlsPolicy(path, FILE_READER);
    if (policy !== null) return policy;
  }
  return null;
}

const FILE_READER: ConfReader = {
  read(path) {
    try {
      const st = fs.statSync(path);
      return st.isFile() && st.size <= MAX_BYTES ? fs.readFileSync(path, 'utf8') : undefined;
    } catch {
      return undefined;
    }
  },
  list(path) {
    try {
      return fs.statSync(path).isDirectory() ? fs.readdirSync(path).sort() : undefined;
    } catch {
      return undefined;
    }
  },
};

interface Setting {
  value: string;
  file: string;
}

/** OpenSSL's names for versions, oldest first; anything older than TLS 1.0 is TLS 1.0 here. */
function versionOf(name: string, otherwise: TlsVersion): TlsVersion {
  if (/^(None|SSLv3)$/i.test(name)) return 'TLSv1';
  const found = VERSIONS.find((v) => v.toLowerCase() === name.toLowerCase());
  return found ?? otherwise;
}

/** Sections (`''` is the unnamed first one) and their last value per key, includes inlined; null past the limits. */
function parseConf(file: string, text: string, reader: ConfReader): Map<string, Map<string, Setting>> | null {
  const sections = new Map<string, Map<string, Setting>>([['', new Map()]]);
  let current = '';
  let budget = MAX_BYTES;
  let whole = true;
  const visit = (path: string, body: string, depth: number): void => {
    budget -= body.length;
    if (budget < 0 || depth > MAX_INCLUDE_DEPTH) {
      whole = false;
      return;
    }
    for (const raw of body.split(/\r?\n/)) {
      if (!whole) return;
      const line = raw.replace(/(^|[^\\])#.*$/, '$1').trim();
      if (line === '') continue;
      const header = /^\[\s*([^\]]*?)\s*\]$/.exec(line);
      if (header) {
        current = header[1]!;
        if (!sections.has(current)) sections.set(current, new Map());
        continue;
      }
      const include = /^\.include\s*(?:=\s*)?(.+)$/.exec(line);
      if (include) {
        const target = nodePath.resolve(nodePath.dirname(path), unquote(include[1]!.trim()));
        const entries = reader.list(target);
        const files = entries !== undefined ? entries.filter((e) => /\.(cnf|conf)$/.test(e)).map((e) => nodePath.join(target, e)) : [target];
        for (const f of files) {
          const included = reader.read(f);
          if (included !== undefined) visit(f, included, depth + 1);
        }
        continue;
      }
      if (line.startsWith('.')) continue; // .pragma and other directives change nothing here
      const eq = line.indexOf('=');
      if (eq <= 0) continue;
      sections.get(current)!.set(line.slice(0, eq).trim(), { value: unquote(line.slice(eq + 1).trim()), file: path });
    }
  };
  visit(file, text, 0);
  return whole ? sections : null;
}

function unquote(value: string): string {
  return /^(["']).*\1$/.test(value) ? value.slice(1, -1) : value;
}
