/**
 * A private ZooKeeper server for tests: Debian's zookeeper (3.8) run standalone
 * (ZooKeeperServerMain) with its own data directory, on 127.0.0.1 at a port from the OS, short
 * ticks so that session timeouts of a second or so are allowed, stopped by its PID.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from './broker';
import { waitFor } from './wait';

export const ZOOKEEPER_JAR = '/usr/share/java/zookeeper.jar';

/** Is Debian's zookeeper installed? */
export function zookeeperInstalled(): boolean {
  return fs.existsSync(ZOOKEEPER_JAR);
}

export interface RunningZookeeper {
  /** `127.0.0.1:PORT` */
  connect: string;
  port: number;
  pid: number;
  dir: string;
  log: string[];
  /** SIGKILL and wait; removes the data directory. */
  stop(): Promise<void>;
}

/** Sends a four-letter command and returns the answer ('' when the server does not answer). */
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

/** Starts a server; resolves once it answers `ruok`. */
export async function startZookeeper(opts: { host?: string; netns?: string } = {}): Promise<RunningZookeeper> {
  const host = opts.host ?? '127.0.0.1';
  if (!zookeeperInstalled()) throw new Error(`ZooKeeper is not installed (${ZOOKEEPER_JAR}; Debian package zookeeper, installed by scripts/ensure-system.sh)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amqp-mesh-zk-'));
  const port = await freePort();
  const cfg = path.join(dir, 'zoo.cfg');
  fs.writeFileSync(cfg, [
    'tickTime=100', `dataDir=${path.join(dir, 'data')}`, `clientPort=${port}`, `clientPortAddress=${host}`,
    'admin.enableServer=false', 'minSessionTimeout=200', 'maxSessionTimeout=60000', '4lw.commands.whitelist=ruok,srvr,cons',
    'maxClientCnxns=0',
  ].join('\n') + '\n');
  const argv = ['java', '-Xmx256m', '-cp', ZOOKEEPER_JAR, 'org.apache.zookeeper.server.ZooKeeperServerMain', cfg];
  if (opts.netns) argv.unshift('ip', 'netns', 'exec', opts.netns);
  const proc: ChildProcess = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const log: string[] = [];
  const capture = (d: Buffer) => log.push(...d.toString('utf8').split('\n').filter((l) => l !== ''));
  proc.stdout?.on('data', capture);
  proc.stderr?.on('data', capture);
  let exited = false;
  const exit = new Promise<void>((resolve) => proc.on('exit', () => {
    exited = true;
    resolve();
  }));
  await waitFor(async () => {
    if (exited) throw new Error(`zookeeper exited at start:\n${log.join('\n')}`);
    return (await fourLetter(port, 'ruok', host)) === 'imok';
  }, 30000, 'zookeeper to answer ruok');
  return {
    connect: `${host}:${port}`, port, pid: proc.pid as number, dir, log,
    stop: async () => {
      if (!exited) proc.kill('SIGKILL');
      await exit;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
