/**
 * SASL PLAIN users for the router and the broker: `<saslConfigDir>/<saslConfigName>.users`, one
 * `user:password` per line (`#` comments).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from './errors';

/**
 * Reads `user:password` lines; refuses a malformed line naming file and line. No such file: no
 * PLAIN users (qdrouterd's saslConfigDir usually holds a Cyrus `.conf` for other mechanisms,
 * such as EXTERNAL only); any other read error is refused.
 */
export function loadPlainUsers(file: string): Record<string, string> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return Object.create(null) as Record<string, string>;
    throw new ConfigError('ERR_CONFIG_READ', file, undefined, `cannot read SASL users file: ${(e as Error).message}`, { cause: e });
  }
  const users: Record<string, string> = Object.create(null);
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new ConfigError('ERR_CONFIG_SYNTAX', file, i + 1, 'expected "user:password"');
    users[line.slice(0, colon)] = line.slice(colon + 1);
  });
  return users;
}

/**
 * The users of a router or broker entity (`saslConfigDir`, `saslConfigName`), or undefined when
 * it names no directory. A listener that requires authentication with PLAIN without users is a
 * conflict (one that authenticates with EXTERNAL only needs none).
 */
export function plainUsersFor(
  owner: { saslConfigDir?: string; saslConfigName: string },
  listeners: readonly { authenticatePeer: boolean; saslMechanisms?: readonly string[]; source: { file: string; line?: number } }[],
  what: 'router' | 'broker',
): Record<string, string> | undefined {
  if (owner.saslConfigDir !== undefined) return loadPlainUsers(path.join(owner.saslConfigDir, `${owner.saslConfigName}.users`));
  const needs = listeners.find((l) => l.authenticatePeer && (l.saslMechanisms?.includes('PLAIN') ?? true));
  if (needs) {
    throw new ConfigError('ERR_CONFIG_CONFLICT', needs.source.file, needs.source.line,
      `listener has authenticatePeer: true but the ${what} has no saslConfigDir to find SASL PLAIN users in (<saslConfigDir>/<saslConfigName>.users, one user:password per line)`);
  }
  return undefined;
}
