/**
 * The services a broker group may need besides brokers: a ZooKeeper server (haPolicy
 * replication) and a PostgreSQL server (haPolicy jdbc), from Debian's packages. `amqp-mesh up`
 * starts them for the groups of a topology; the tests start them the same way.
 *
 * ZooKeeper runs standalone (ZooKeeperServerMain) with short ticks, so session timeouts of a
 * second or so are allowed. PostgreSQL gets a fresh cluster (initdb, trust authentication on
 * 127.0.0.1); it refuses to run as root, so as root the cluster belongs to the `postgres` user the
 * package creates and runs through runuser.
 */
import { ChildProcess, execFileSync, spawn, StdioOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';

const ZOOKEEPER_JAR = '/usr/share/java/zookeeper.jar';

/** Is Debian's zookeeper installed? */
export function zookeeperInstalled(): boolean {
  return fs.existsSync(ZOOKEEPER_JAR);
}

/** Sends a ZooKeeper four-letter command; resolves with the answer ('' when there is none). */
export function fourLetter(port: number, cmd: string, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    let out = '';
    s.on('connect', () => s.write(cmd));
    s.on('data', (d) => (out += d.toString('utf8')));
    s.on('close', () => resolve(out));
    s.on('error', () => resolve(''));
    s.setTimeout(2000, () => s.destroy());
  });
}

/**
 * Polls `ready` every 100 ms until it holds; throws when `proc` exits first or after `ms`, having
 * killed it (so a service that fails to start never keeps running).
 */
async function waitReady(proc: ChildProcess, what: string, ready: () => Promise<boolean>, ms: number, log: () => string): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${what} exited at start:\n${log()}`);
    if (await ready()) return;
    if (Date.now() > end) {
      proc.kill('SIGKILL');
      throw new Error(`${what} did not start within ${ms} ms:\n${log()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Spawns a service; its piped output (stdio 'pipe') goes to `onOutput` from the first byte. */
function spawnService(argv: string[], o: { stdio: StdioOptions; detached?: boolean; onOutput?: (chunk: Buffer) => void }): ChildProcess {
  const proc = spawn(argv[0]!, argv.slice(1), { stdio: o.stdio, detached: o.detached });
  if (o.onOutput) {
    proc.stdout?.on('data', o.onOutput);
    proc.stderr?.on('data', o.onOutput);
  }
  return proc;
}

/** Options of {@link startZookeeperServer}. */
export interface ZookeeperServerOptions {
  /** Its data directory and zoo.cfg go here. */
  dir: string;
  host: string;
  port: number;
  /** Where stdout/stderr go (a file descriptor, or 'pipe'). */
  stdio: StdioOptions;
  /** Run inside this network namespace (`ip netns exec`). */
  netns?: string;
  /** For the start-up error message. */
  log: () => string;
  /** With stdio 'pipe': every chunk of output, from the start. */
  onOutput?: (chunk: Buffer) => void;
  detached?: boolean;
}

/** Starts a standalone ZooKeeper; resolves once it answers `ruok`. */
export async function startZookeeperServer(o: ZookeeperServerOptions): Promise<ChildProcess> {
  if (!zookeeperInstalled()) throw new Error(`ZooKeeper is not installed (${ZOOKEEPER_JAR}; Debian package zookeeper)`);
  fs.mkdirSync(o.dir, { recursive: true });
  const cfg = path.join(o.dir, 'zoo.cfg');
  fs.writeFileSync(cfg, [
    'tickTime=100', `dataDir=${path.join(o.dir, 'data')}`, `clientPort=${o.port}`, `clientPortAddress=${o.host}`,
    'admin.enableServer=false', 'minSessionTimeout=200', 'maxSessionTimeout=60000', '4lw.commands.whitelist=ruok,srvr,cons',
    'maxClientCnxns=0',
  ].join('\n') + '\n');
  const argv = ['java', '-Xmx256m', '-cp', ZOOKEEPER_JAR, 'org.apache.zookeeper.server.ZooKeeperServerMain', cfg];
  if (o.netns) argv.unshift('ip', 'netns', 'exec', o.netns);
  const proc = spawnService(argv, o);
  await waitReady(proc, 'zookeeper', async () => (await fourLetter(o.port, 'ruok', o.host)) === 'imok', 30000, o.log);
  return proc;
}

/** Where Debian puts the PostgreSQL server binaries (the newest major installed), or null. */
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

/** Options of {@link startPostgresServer}. */
export interface PostgresServerOptions {
  /**
   * The cluster goes in `<dir>/data`, its socket in `dir` (as root, when the `postgres` user
   * cannot reach `dir`, in a directory of its own that `<dir>/CLUSTER` names).
   */
  dir: string;
  port: number;
  stdio: StdioOptions;
  log: () => string;
  /** With stdio 'pipe': every chunk of output, from the start. */
  onOutput?: (chunk: Buffer) => void;
  detached?: boolean;
}

/** A started PostgreSQL: the URL (user postgres, trust), the postmaster's PID, the launcher process. */
export interface PostgresServer {
  url: string;
  pid: number;
  proc: ChildProcess;
}

/** Runs `sql` on a fresh connection to `url`. */
export async function pgQuery(url: string, sql: string, params?: unknown[]): Promise<Record<string, unknown>[]> {
  const c = new Client({ connectionString: url });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return (await c.query(sql, params)).rows;
  } finally {
    await c.end();
  }
}

/** Makes a fresh cluster in `dir` and starts it on 127.0.0.1:`port`. */
export async function startPostgresServer(o: PostgresServerOptions): Promise<PostgresServer> {
  const bin = postgresBin();
  if (!bin) throw new Error('PostgreSQL is not installed (Debian package postgresql)');
  const asRoot = process.getuid?.() === 0;
  fs.mkdirSync(o.dir, { recursive: true });
  const wrap = (cmd: string, args: string[]): [string, string[]] => (asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]);
  let clusterDir = o.dir;
  if (asRoot) {
    execFileSync('chown', ['postgres:postgres', o.dir]);
    if (!reachableByPostgres(o.dir)) {
      // A parent only root may enter (a 0700 home or temporary directory): the cluster goes to a
      // directory of its own under the system's temporary directory; `CLUSTER` says where.
      const location = path.join(o.dir, 'CLUSTER');
      clusterDir = fs.existsSync(location) ? fs.readFileSync(location, 'utf8').trim() : fs.mkdtempSync(path.join(os.tmpdir(), 'amqp-mesh-pg-'));
      execFileSync('chown', ['postgres:postgres', clusterDir]);
      fs.writeFileSync(location, `${clusterDir}\n`);
    }
  }
  const data = path.join(clusterDir, 'data');
  if (!fs.existsSync(path.join(data, 'PG_VERSION'))) {
    const [initCmd, initArgs] = wrap(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
    execFileSync(initCmd, initArgs, { stdio: 'pipe' });
  }
  const [cmd, args] = wrap(path.join(bin, 'postgres'), [
    '-D', data, '-p', String(o.port), '-k', clusterDir, '-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200',
    '-c', 'shared_buffers=64MB', '-c', 'logging_collector=off',
  ]);
  const proc = spawnService([cmd, ...args], o);
  const url = `postgresql://postgres@127.0.0.1:${o.port}/postgres`;
  // runuser forks: the server's own PID is in its pid file.
  const postmaster = (): number => Number(fs.readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  try {
    await waitReady(proc, 'postgres', () => pgQuery(url, 'SELECT 1').then(() => true, () => false), 30000, o.log);
  } catch (e) {
    const pid = fs.existsSync(path.join(data, 'postmaster.pid')) ? postmaster() : 0;
    if (pid > 0) await stopPid(pid, 'SIGKILL', 0);
    throw e;
  }
  return { url, pid: postmaster(), proc };
}

/** Whether the `postgres` user can enter `dir` (every parent must let it through). */
function reachableByPostgres(dir: string): boolean {
  try {
    execFileSync('runuser', ['-u', 'postgres', '--', 'test', '-x', dir, '-a', '-w', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Stops a process by PID: `first` (SIGTERM), SIGKILL after `graceMs`; resolves once it is gone. */
export async function stopPid(pid: number, first: NodeJS.Signals = 'SIGTERM', graceMs = 10000): Promise<void> {
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  try {
    process.kill(pid, 'SIGCONT');
    process.kill(pid, first);
  } catch {
    return;
  }
  const end = Date.now() + graceMs;
  while (alive() && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  if (alive()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      return;
    }
    while (alive()) await new Promise((r) => setTimeout(r, 50));
  }
}
