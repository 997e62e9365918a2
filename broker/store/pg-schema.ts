/**
 * The tables of a `haPolicy: jdbc` broker group in PostgreSQL (ActiveMQ's JDBC master/slave: the
 * store and the lock live in one database every member reaches). Every row carries the group
 * (`haGroup`), so several groups can share one database. See docs/decisions/0011-broker-jdbc.md.
 *
 * - amqp_mesh_lease: one row per group; `token` is the fencing token (strictly increasing, one
 *   claim each), `expires_at` the lease on the database's own clock, `released` a clean release.
 * - amqp_mesh_queue / amqp_mesh_ref / amqp_mesh_message: the Store model (broker/store/types.ts);
 *   `seq` keeps creation and addRef order.
 * - amqp_mesh_state: the next message id (ids are never reused).
 * - amqp_mesh_member: each member's client endpoint, for failover-server-list.
 */
import { Client, ClientConfig } from 'pg';

/** Creates the tables when missing (idempotent; concurrent members may run it at once). */
export const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS amqp_mesh_lease (
  grp text PRIMARY KEY, token bigint NOT NULL, holder text NOT NULL,
  expires_at timestamptz NOT NULL, released boolean NOT NULL);
CREATE TABLE IF NOT EXISTS amqp_mesh_queue (
  grp text NOT NULL, name text NOT NULL, seq bigint NOT NULL, meta text NOT NULL, PRIMARY KEY (grp, name));
CREATE TABLE IF NOT EXISTS amqp_mesh_message (
  grp text NOT NULL, id bigint NOT NULL, payload bytea NOT NULL, PRIMARY KEY (grp, id));
CREATE TABLE IF NOT EXISTS amqp_mesh_ref (
  grp text NOT NULL, queue text NOT NULL, msg bigint NOT NULL, seq bigint NOT NULL,
  delivery_count bigint NOT NULL, PRIMARY KEY (grp, queue, msg));
CREATE TABLE IF NOT EXISTS amqp_mesh_state (grp text PRIMARY KEY, next_message_id bigint NOT NULL);
CREATE TABLE IF NOT EXISTS amqp_mesh_member (
  grp text NOT NULL, id text NOT NULL, host text NOT NULL, port integer NOT NULL, PRIMARY KEY (grp, id));
`;

/** Thrown when the database cannot be reached or refuses a statement. */
export class JdbcError extends Error {
  constructor(message: string, readonly code: 'ERR_JDBC_CONNECT' | 'ERR_JDBC_QUERY' | 'ERR_JDBC_URL', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'JdbcError';
  }
}

/**
 * Client settings from a `jdbcUrl`: `postgresql://user[:password]@host[:port]/db` (also
 * `postgres://` and ActiveMQ's `jdbc:postgresql://` form). A password can also come from PGPASSWORD.
 */
export function pgConfigFromUrl(url: string): ClientConfig {
  const u = url.startsWith('jdbc:') ? url.slice(5) : url;
  let parsed: URL;
  try {
    parsed = new URL(u);
  } catch (e) {
    throw new JdbcError(`jdbcUrl ${JSON.stringify(url)} is not a URL (expected postgresql://user@host:port/database)`, 'ERR_JDBC_URL', { cause: e });
  }
  if (parsed.protocol !== 'postgresql:' && parsed.protocol !== 'postgres:') {
    throw new JdbcError(`jdbcUrl ${JSON.stringify(url)}: only postgresql:// is supported`, 'ERR_JDBC_URL');
  }
  return { connectionString: u, connectionTimeoutMillis: 10000, application_name: 'amqp-mesh' };
}

/**
 * Connects one client and makes sure the schema exists. A dropped connection is reported to
 * `onError` (the caller decides: a store fails, a lock keeps polling with a new client).
 */
export async function connectPg(url: string, onError: (e: Error) => void): Promise<Client> {
  const c = new Client(pgConfigFromUrl(url));
  c.on('error', onError);
  try {
    await c.connect();
  } catch (e) {
    c.removeListener('error', onError);
    throw new JdbcError(`cannot connect to ${redact(url)}: ${(e as Error).message}`, 'ERR_JDBC_CONNECT', { cause: e });
  }
  try {
    // Concurrent CREATE TABLE IF NOT EXISTS can still collide on the catalog; one advisory lock
    // orders the members' first starts.
    await c.query('SELECT pg_advisory_lock(7264735)');
    await c.query(SCHEMA_SQL);
    await c.query('SELECT pg_advisory_unlock(7264735)');
  } catch (e) {
    await c.end().catch(() => undefined);
    throw new JdbcError(`cannot create the amqp-mesh tables in ${redact(url)}: ${(e as Error).message}`, 'ERR_JDBC_QUERY', { cause: e });
  }
  return c;
}

/** The URL without its password, for logs and errors. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}
