/**
 * A private PostgreSQL server for tests: Debian's postgresql (15), a fresh cluster made by initdb
 * in a temporary directory, listening on 127.0.0.1 at a port from the OS, trust authentication,
 * stopped by its PID. PostgreSQL refuses to run as root: as root the cluster belongs to the
 * `postgres` user the package creates, and initdb/postgres run through runuser.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { freePort } from './broker';
import { waitFor } from './wait';

/** Where Debian puts the server binaries (the newest major installed). */
export function postgresBin(): string | null {
  const root = '/usr/lib/postgresql';
  let majors: string[] = [];
  try {
    majors = fs.readdirSync(root).filter((d) => /^\d+$/.test(d)).sort((a, b) => Number(b) - Number(a));
  } catch {
    return null;
  }
  for (const m of majors) {
    const bin = path.join(root, m, 'bin');
    if (fs.existsSync(path.join(bin, 'postgres')) && fs.existsSync(path.join(bin, 'initdb'))) return bin;
  }
  return null;
}

export interface RunningPostgres {
  /** `postgresql://postgres@127.0.0.1:PORT/postgres` (trust auth). */
  url: string;
  port: number;
  pid: number;
  dir: string;
  log: string[];
  /** Runs one SQL statement on a fresh connection. */
  sql(text: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  /** SIGSTOP / SIGCONT of the server (a database that stops answering). */
  freeze(): void;
  thaw(): void;
  /** Fast shutdown (SIGINT), SIGKILL after 10 s; removes the cluster. */
  stop(): Promise<void>;
}

/** Starts a private server; `null` when PostgreSQL is not installed. */
export async function startPostgres(): Promise<RunningPostgres> {
  const bin = postgresBin();
  if (!bin) throw new Error('PostgreSQL is not installed (Debian package postgresql; scripts/ensure-system.sh installs it)');
  const asRoot = process.getuid?.() === 0;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amqp-mesh-pg-'));
  const data = path.join(dir, 'data');
  const wrap = (cmd: string, args: string[]): [string, string[]] => (asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]);
  if (asRoot) execFileSync('chown', ['postgres:postgres', dir]);
  const [initCmd, initArgs] = wrap(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  execFileSync(initCmd, initArgs, { stdio: 'pipe' });
  const port = await freePort();
  const [cmd, args] = wrap(path.join(bin, 'postgres'), [
    '-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200',
    '-c', 'shared_buffers=64MB', '-c', 'logging_collector=off',
  ]);
  const proc: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const log: string[] = [];
  const capture = (d: Buffer) => log.push(...d.toString('utf8').split('\n').filter((l) => l !== ''));
  proc.stdout?.on('data', capture);
  proc.stderr?.on('data', capture);
  let exited = false;
  proc.on('exit', () => (exited = true));
  const url = `postgresql://postgres@127.0.0.1:${port}/postgres`;
  const sql = async (text: string, params?: unknown[]) => {
    const c = new Client({ connectionString: url });
    await c.connect();
    try {
      return (await c.query(text, params)).rows;
    } finally {
      await c.end();
    }
  };
  await waitFor(async () => {
    if (exited) throw new Error(`postgres exited at start:\n${log.join('\n')}`);
    try {
      await sql('SELECT 1');
      return true;
    } catch {
      return false;
    }
  }, 30000, 'postgres to accept connections');
  // runuser forks: signal the server itself (the postmaster), found by its pid file.
  const pidOf = () => Number(fs.readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const pid = pidOf();
  return {
    url, port, pid, dir, log, sql,
    freeze: () => process.kill(pid, 'SIGSTOP'),
    thaw: () => process.kill(pid, 'SIGCONT'),
    stop: async () => {
      try {
        process.kill(pid, 'SIGCONT');
        process.kill(pid, 'SIGINT');
      } catch {
        // already gone
      }
      const gone = () => {
        try {
          process.kill(pid, 0);
          return false;
        } catch {
          return true;
        }
      };
      try {
        await waitFor(() => gone() && exited, 10000, 'postgres to stop');
      } catch {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
        await waitFor(() => gone(), 5000, 'postgres to die');
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
