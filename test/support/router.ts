/**
 * Boots a real router process (`amqp-mesh router -c FILE`) for wire and system tests, finds the
 * ports it bound (configs use port 0) from its log, and stops it by PID.
 */
import { spawn, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { waitFor } from './wait';

export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const BIN = path.join(ROOT, 'bin', 'amqp-mesh.js');

export interface RunningRouter {
  proc: ChildProcess;
  /** Ports by listener name, in config order too. */
  ports: number[];
  port: number;
  log: string[];
  configFile: string;
  /** Sends SIGTERM and waits for exit; returns the exit code. */
  stop(): Promise<number | null>;
  exited: Promise<number | null>;
}

/** Writes `config` (qdrouterd.conf text unless `ext` says otherwise) and starts a router on it. */
export async function startRouter(config: string, opts: { ext?: string; listeners?: number; env?: Record<string, string> } = {}): Promise<RunningRouter> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amqp-mesh-test-'));
  const configFile = path.join(dir, `router${opts.ext ?? '.conf'}`);
  fs.writeFileSync(configFile, config);
  const proc = spawn(process.execPath, [BIN, 'router', '-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  const log: string[] = [];
  const ports: number[] = [];
  const onData = (b: Buffer) => {
    for (const line of b.toString('utf8').split('\n')) {
      if (!line) continue;
      log.push(line);
      if (process.env.ROUTER_LOG) process.stderr.write(`[router ${proc.pid}] ${line}\n`);
      const m = line.match(/Listening on [^\s]+:(\d+)/);
      if (m) ports.push(Number(m[1]));
    }
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  let dead = false;
  exited.then(() => { dead = true; });
  const want = opts.listeners ?? 1;
  await waitFor(() => ports.length >= want || dead, 10_000, 'router to listen');
  if (ports.length < want) throw new Error(`router exited before listening:\n${log.join('\n')}`);
  return {
    proc, ports, port: ports[0], log, configFile, exited,
    async stop() {
      if (!dead) proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}

/** Writes a SASL PLAIN users file (`user:password` lines) and returns its saslConfigDir. */
export function plainUsersDir(users: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amqp-mesh-sasl-'));
  fs.writeFileSync(path.join(dir, 'qdrouterd.users'), Object.entries(users).map(([u, p]) => `${u}:${p}\n`).join(''));
  return dir;
}

/** A minimal standalone config listening on an OS-chosen port. */
export function standaloneConfig(extra = '', listener = '', routerAttrs = ''): string {
  return `router {\n    mode: standalone\n    id: R1\n${routerAttrs}}\nlistener {\n    host: 127.0.0.1\n    port: 0\n    saslMechanisms: ANONYMOUS PLAIN\n${listener}}\naddress {\n    prefix: closest\n    distribution: closest\n}\naddress {\n    prefix: multicast\n    distribution: multicast\n}\naddress {\n    prefix: balanced\n    distribution: balanced\n}\n${extra}`;
}

/**
 * An interior router with a client listener and an inter-router listener (both port 0, in that
 * order), a connector to `connectTo` (an inter-router port) unless null, and `extra` sections.
 */
export function interiorConfig(id: string, connectTo: number | null, extra = ''): string {
  return [
    `router {\n    mode: interior\n    id: ${id}\n}`,
    'listener {\n    host: 127.0.0.1\n    port: 0\n}',
    'listener {\n    host: 127.0.0.1\n    port: 0\n    role: inter-router\n}',
    connectTo === null ? '' : `connector {\n    name: to-${id}\n    host: 127.0.0.1\n    port: ${connectTo}\n    role: inter-router\n}`,
    extra,
  ].join('\n') + '\n';
}
