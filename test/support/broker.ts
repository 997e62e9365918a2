/**
 * Boots real broker processes (`amqp-mesh broker -c FILE`) for system tests: live or waiting as
 * a slave, finds the port it bound from its log, and stops or kills it by PID.
 */
import { spawn, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { waitFor } from './wait';
import { BIN } from './router';

export interface RunningBroker {
  proc: ChildProcess;
  pid: number;
  log: string[];
  configFile: string;
  /** The bound port once live (0 while waiting as a slave). */
  port: number;
  /** True once the broker listens. */
  live: boolean;
  exited: Promise<number | null>;
  exitCode: number | null | undefined;
  /** Waits until the broker listens. */
  waitLive(ms?: number): Promise<void>;
  /** SIGTERM and wait; returns the exit code. */
  stop(): Promise<number | null>;
  /** Sends `signal` (default SIGKILL) and, for a kill, waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** A fresh temporary directory. */
export function tempDir(prefix = 'amqp-mesh-broker-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A free TCP port from the OS (for a pair whose members must announce each other's port). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A broker config (qdrouterd.conf syntax) on `dataDir` listening on `port` (0: any). */
export function brokerConfig(dataDir: string, opts: { id?: string; port?: number; broker?: string; extra?: string } = {}): string {
  return `broker {\n    id: ${opts.id ?? 'B1'}\n    dataDir: ${dataDir}\n${opts.broker ?? ''}}\nlistener {\n    host: 127.0.0.1\n    port: ${opts.port ?? 0}\n    saslMechanisms: ANONYMOUS PLAIN\n}\n${opts.extra ?? ''}`;
}

/** Starts a broker; waits until it is live unless `waitLive` is false (a slave). */
export async function startBroker(config: string, opts: { waitLive?: boolean; name?: string; nodeArgs?: string[]; netns?: string } = {}): Promise<RunningBroker> {
  const dir = tempDir('amqp-mesh-broker-conf-');
  const configFile = path.join(dir, 'broker.conf');
  fs.writeFileSync(configFile, config);
  const argv = [process.execPath, ...(opts.nodeArgs ?? []), BIN, 'broker', '-c', configFile];
  // In a network namespace: `ip netns exec` execs the broker, so the PID is the broker's.
  if (opts.netns) argv.unshift('ip', 'netns', 'exec', opts.netns);
  const proc = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const log: string[] = [];
  const b: RunningBroker = {
    proc,
    pid: proc.pid as number,
    log,
    configFile,
    port: 0,
    live: false,
    exitCode: undefined,
    exited: new Promise<number | null>((resolve) => proc.on('exit', (code) => {
      b.exitCode = code;
      resolve(code);
    })),
    async waitLive(ms = 15_000) {
      await waitFor(() => b.live || b.exitCode !== undefined, ms, `broker ${opts.name ?? ''} to go live`);
      if (!b.live) throw new Error(`broker exited (${b.exitCode}) before listening:\n${log.join('\n')}`);
    },
    async stop() {
      if (b.exitCode === undefined) proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      const code = await b.exited;
      clearTimeout(t);
      return code;
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (b.exitCode !== undefined) return;
      proc.kill(signal);
      if (signal === 'SIGKILL') await b.exited;
    },
  };
  const onData = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line) continue;
      log.push(line);
      if (process.env.BROKER_LOG) process.stderr.write(`[broker ${opts.name ?? proc.pid}] ${line}\n`);
      const m = line.match(/Listening on [^\s]+:(\d+)/);
      if (m) {
        b.port = Number(m[1]);
        b.live = true;
      }
    }
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  if (opts.waitLive !== false) await b.waitLive();
  else await waitFor(() => log.some((l) => l.includes('waiting for the store lock')) || b.exitCode !== undefined, 10_000, 'broker to start');
  return b;
}
