/**
 * SASL users of the router and the broker: `<saslConfigDir>/<saslConfigName>.users`, one user per
 * line (`#` comments). A line is `NAME:$scram$ITERATIONS$SALT$SHA256-STORED$SHA256-SERVER$SHA1-STORED$SHA1-SERVER`
 * (base64; written by `amqp-mesh users add`), which PLAIN, SCRAM-SHA-256 and SCRAM-SHA-1 verify
 * without the password; or the older `NAME:PASSWORD`, still read, with a warning.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from './errors';
import { MAX_ITERATIONS, MIN_ITERATIONS, computeCredentials, verifyPassword, type SaslUsers, type StoredCredentials } from '../amqp/sasl/scram';

/** One user: hashed credentials, or a password kept in clear (the older form). */
export type UserEntry = { readonly kind: 'hashed'; readonly credentials: StoredCredentials } | { readonly kind: 'clear'; readonly password: string };

/** The users of a file, and what the operator should be told about it. */
export interface Users extends SaslUsers {
  readonly entries: ReadonlyMap<string, UserEntry>;
  /** `FILE:LINE: ...` remarks (passwords in clear). */
  readonly warnings: readonly string[];
}

function usersOf(entries: ReadonlyMap<string, UserEntry>, warnings: readonly string[]): Users {
  const users: Users = {
    entries,
    warnings,
    checkPassword: (name, password) => checkPassword(users, name, password),
    credentials: (name) => credentialsOf(users, name),
  };
  return users;
}

/** Most users a file may hold. */
export const MAX_USERS = 100_000;
const HASHED = '$scram$';

function parseHashed(text: string, fail: (why: string) => never): StoredCredentials {
  const parts = text.slice(HASHED.length).split('$');
  if (parts.length !== 6) fail(`expected ${HASHED}ITERATIONS$SALT$SHA256-STORED$SHA256-SERVER$SHA1-STORED$SHA1-SERVER`);
  const iterations = Number(parts[0]);
  if (!Number.isInteger(iterations) || iterations < MIN_ITERATIONS || iterations > MAX_ITERATIONS) fail(`iterations ${parts[0]} out of range ${MIN_ITERATIONS}..${MAX_ITERATIONS}`);
  const b = parts.slice(1).map((p) => Buffer.from(p, 'base64'));
  const lengths = [-1, 32, 32, 20, 20];
  if (b[0].length < 8 || b.slice(1).some((x, i) => x.length !== lengths[i + 1])) fail('salt or key of the wrong length');
  return { iterations, salt: b[0], sha256: { storedKey: b[1], serverKey: b[2] }, sha1: { storedKey: b[3], serverKey: b[4] } };
}

/** A user's line as `amqp-mesh users add` writes it. */
export function formatUserLine(name: string, c: StoredCredentials): string {
  const b = (x: Buffer) => x.toString('base64');
  return `${name}:${HASHED}${c.iterations}$${b(c.salt)}$${b(c.sha256.storedKey)}$${b(c.sha256.serverKey)}$${b(c.sha1.storedKey)}$${b(c.sha1.serverKey)}`;
}

/**
 * Reads a users file; refuses a malformed line naming file and line. No such file: no users
 * (qdrouterd's saslConfigDir usually holds a Cyrus `.conf` for other mechanisms, such as EXTERNAL
 * only); any other read error is refused.
 */
export function loadUsers(file: string): Users {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return usersOf(new Map(), []);
    throw new ConfigError('ERR_CONFIG_READ', file, undefined, `cannot read SASL users file: ${(e as Error).message}`, { cause: e });
  }
  const entries = new Map<string, UserEntry>();
  const clear: number[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const fail = (why: string): never => {
      throw new ConfigError('ERR_CONFIG_SYNTAX', file, i + 1, why);
    };
    const colon = line.indexOf(':');
    if (colon <= 0) fail('expected "user:password" or a line written by amqp-mesh users add');
    if (entries.size >= MAX_USERS) fail(`more than ${MAX_USERS} users`);
    const name = line.slice(0, colon);
    const rest = line.slice(colon + 1);
    if (rest.startsWith(HASHED)) entries.set(name, { kind: 'hashed', credentials: parseHashed(rest, fail) });
    else {
      entries.set(name, { kind: 'clear', password: rest });
      clear.push(i + 1);
    }
  });
  const warnings = clear.length === 0 ? [] : [
    `${file}:${clear[0]}: ${clear.length} password${clear.length > 1 ? 's are' : ' is'} kept in clear (lines ${clear.join(', ')}); store salted hashes with: amqp-mesh users add ${file} NAME`,
  ];
  return usersOf(entries, warnings);
}

/** Derived credentials of clear passwords (SCRAM needs keys), made once per entry. */
const derived = new WeakMap<UserEntry, StoredCredentials>();

/** The SCRAM credentials of a user (derived once for a clear password), or undefined. */
export function credentialsOf(users: Users, name: string): StoredCredentials | undefined {
  const e = users.entries.get(name);
  if (e === undefined) return undefined;
  if (e.kind === 'hashed') return e.credentials;
  let c = derived.get(e);
  if (c === undefined) derived.set(e, (c = computeCredentials(e.password)));
  return c;
}

/** Whether `password` is the user's (SASL PLAIN). */
export function checkPassword(users: Users, name: string, password: string): boolean {
  const e = users.entries.get(name);
  if (e === undefined) return false;
  return e.kind === 'clear' ? e.password === password : verifyPassword(e.credentials, password);
}

/**
 * Adds (or replaces) a user in a users file with salted credentials, keeping every other line;
 * the file is written whole (temporary file, then rename) with mode 0600.
 */
export function addUser(file: string, name: string, password: string): 'added' | 'replaced' {
  if (!/^[^\s:#][^\s:]*$/.test(name)) throw new Error(`user name ${JSON.stringify(name)} must be non-empty, without spaces or ':' (and not start with '#')`);
  let lines: string[] = [];
  try {
    lines = fs.readFileSync(file, 'utf8').split(/\r?\n/);
    if (lines[lines.length - 1] === '') lines.pop();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const line = formatUserLine(name, computeCredentials(password));
  const at = lines.findIndex((l) => l.trim().startsWith(`${name}:`));
  if (at >= 0) lines[at] = line;
  else lines.push(line);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, `${lines.join('\n')}\n`, { mode: 0o600 });
  fs.renameSync(tmp, file);
  return at >= 0 ? 'replaced' : 'added';
}

/**
 * The users of a router or broker entity (`saslConfigDir`, `saslConfigName`), or undefined when
 * it names no directory. A listener that requires authentication with PLAIN or SCRAM without
 * users is a conflict (one that authenticates with EXTERNAL only needs none).
 */
export function usersFor(
  owner: { saslConfigDir?: string; saslConfigName: string },
  listeners: readonly { authenticatePeer: boolean; saslMechanisms?: readonly string[]; source: { file: string; line?: number } }[],
  what: 'router' | 'broker',
): Users | undefined {
  if (owner.saslConfigDir !== undefined) return loadUsers(path.join(owner.saslConfigDir, `${owner.saslConfigName}.users`));
  const needs = listeners.find((l) => l.authenticatePeer && (l.saslMechanisms?.some((m) => m === 'PLAIN' || m.startsWith('SCRAM-')) ?? true));
  if (needs) {
    throw new ConfigError('ERR_CONFIG_CONFLICT', needs.source.file, needs.source.line,
      `listener has authenticatePeer: true but the ${what} has no saslConfigDir to find SASL users in (<saslConfigDir>/<saslConfigName>.users, written by amqp-mesh users add)`);
  }
  return undefined;
}
