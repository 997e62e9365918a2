/**
 * A private PostgreSQL server for tests (topology/services.ts starts it): a fresh cluster in a
 * temporary directory, 127.0.0.1 at a port from the OS, trust authentication, stopped by its PID.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pgQuery, postgresBin, startPostgresServer, stopPid } from '../../topology/services';
import { freePort } from './broker';

export { postgresBin };

export interface RunningPostgres {
  /** `postgresql://postgres@127.0.0.1:PORT/postgres` (trust auth). */
  url: string;
  port: number;
  pid: number;
  dir: string;
  log: string[];
  /** Runs one SQL statement on a fresh connection. */
  sql(text: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  /** Fast shutdown (SIGINT), SIGKILL after 10 s; removes the cluster. */
  stop(): Promise<void>;
}

/** Starts a private server. */
export async function startPostgres(): Promise<RunningPostgres> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amqp-mesh-pg-'));
  const port = await freePort();
  const log: string[] = [];
  const capture = (d: Buffer) => log.push(...d.toString('utf8').split('\n').filter((l) => l !== ''));
  const s = await startPostgresServer({ dir, port, stdio: ['ignore', 'pipe', 'pipe'], log: () => log.join('\n'), onOutput: capture });
  return {
    url: s.url, port, pid: s.pid, dir, log,
    sql: (text, params) => pgQuery(s.url, text, params),
    stop: async () => {
      await stopPid(s.pid, 'SIGINT');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
