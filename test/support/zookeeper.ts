/**
 * A private ZooKeeper server for tests (topology/services.ts starts it): its own data directory,
 * a port from the OS, optionally inside a network namespace; stopped by its PID.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startZookeeperServer, zookeeperInstalled, fourLetter } from '../../topology/services';
import { freePort } from './broker';

export { zookeeperInstalled, fourLetter };

export interface RunningZookeeper {
  /** `HOST:PORT` */
  connect: string;
  port: number;
  pid: number;
  dir: string;
  log: string[];
  /** SIGKILL and wait; removes the data directory. */
  stop(): Promise<void>;
}

/** Starts a server on `host` (default 127.0.0.1); resolves once it answers `ruok`. */
export async function startZookeeper(opts: { host?: string; netns?: string } = {}): Promise<RunningZookeeper> {
  const host = opts.host ?? '127.0.0.1';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amqp-mesh-zk-'));
  const port = await freePort();
  const log: string[] = [];
  const capture = (d: Buffer) => log.push(...d.toString('utf8').split('\n').filter((l) => l !== ''));
  const proc = await startZookeeperServer({ dir, host, port, stdio: ['ignore', 'pipe', 'pipe'], netns: opts.netns, log: () => log.join('\n'), onOutput: capture });
  const exit = new Promise<void>((resolve) => (proc.exitCode !== null ? resolve() : proc.on('exit', () => resolve())));
  return {
    connect: `${host}:${port}`, port, pid: proc.pid as number, dir, log,
    stop: async () => {
      if (proc.exitCode === null) proc.kill('SIGKILL');
      await exit;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
