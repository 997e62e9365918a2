/**
 * A router process for the bench: any build's bin/amqp-mesh.js (this tree's or another
 * worktree's, for A/B runs), a config text, its listeners' ports by name, its CPU time.
 *
 *   const r = await startRouterProcess({ config, listeners: ['plain', 'tls'] });
 *   r.ports.tls;  const cpu0 = r.cpuSeconds();  ...  await r.stop();
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** This tree's CLI. */
export const THIS_BIN = path.resolve(__dirname, '..', '..', 'bin', 'amqp-mesh.js');

export interface RouterProcess {
  pid: number;
  /** Port of each listener named in `listeners`. */
  ports: Record<string, number>;
  log: string[];
  /** User + system CPU seconds the process has used so far (/proc, 10 ms resolution). */
  cpuSeconds(): number;
  /** RSS in KB. */
  rssKb(): number;
  stop(): Promise<void>;
}

/** Log lines `module: DEFAULT enable: warning+` and `SERVER notice+` (the "Listening on" lines). */
export const QUIET_LOG = 'log {\n  module: DEFAULT\n  enable: warning+\n}\nlog {\n  module: SERVER\n  enable: notice+\n}\n';

/**
 * Starts `node BIN router -c FILE` with `config` and resolves once every listener in
 * `listeners` (by its `name` attribute) logged "Listening on HOST:PORT (listener NAME...)".
 */
export async function startRouterProcess(o: { bin?: string; config: string; listeners: string[]; timeoutMs?: number }): Promise<RouterProcess> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amqp-mesh-bench-'));
  const file = path.join(dir, 'router.conf');
  fs.writeFileSync(file, o.config);
  const proc = spawn(process.execPath, [o.bin ?? THIS_BIN, 'router', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const log: string[] = [];
  const ports: Record<string, number> = {};
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`router did not start: ${log.slice(-20).join('\n')}`)), o.timeoutMs ?? 15_000);
    const on = (d: Buffer) => {
      for (const line of d.toString().split('\n')) {
        if (!line) continue;
        log.push(line);
        const m = line.match(/Listening on [^\s]+:(\d+) \(listener ([^\s:)/]+)/);
        if (m) ports[m[2]] = Number(m[1]);
      }
      if (o.listeners.every((n) => ports[n] !== undefined)) {
        clearTimeout(t);
        resolve();
      }
    };
    proc.stdout.on('data', on);
    proc.stderr.on('data', on);
    proc.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`router exited ${code}: ${log.slice(-20).join('\n')}`));
    });
  });
  const pid = proc.pid!;
  return {
    pid,
    ports,
    log,
    cpuSeconds: () => {
      // /proc/PID/stat: fields after the ")" of the command; utime and stime are the 14th and 15th.
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(f[11]) + Number(f[12])) / 100;
    },
    rssKb: () => {
      const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/);
      return m ? Number(m[1]) : 0;
    },
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** An interior router: a client listener (`client`), an inter-router listener (`ir`), connectors to `peers`; ROUTER info+ (its "routes:" lines). */
export function interiorConfig(id: string, peers: number[]): string {
  return [
    `router {\n  mode: interior\n  id: ${id}\n}`,
    'listener {\n  name: client\n  host: 127.0.0.1\n  port: 0\n}',
    'listener {\n  name: ir\n  host: 127.0.0.1\n  port: 0\n  role: inter-router\n}',
    ...peers.map((p) => `connector {\n  host: 127.0.0.1\n  port: ${p}\n  role: inter-router\n}`),
  ].join('\n') + '\n' + QUIET_LOG + 'log {\n  module: ROUTER\n  enable: info+\n}\n';
}

/** Polls `pred` every 5 ms; throws after `ms`. */
export async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Busy fraction of all CPUs over `ms` (from /proc/stat). */
export async function cpuBusy(ms = 1000): Promise<number> {
  const read = () => {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
    const idle = f[3] + f[4];
    return { idle, total: f.reduce((a, b) => a + b, 0) };
  };
  const a = read();
  await new Promise((r) => setTimeout(r, ms));
  const b = read();
  const total = b.total - a.total;
  return total > 0 ? 1 - (b.idle - a.idle) / total : 0;
}

/**
 * Waits until the machine is quiet (other work below `threshold` of all CPUs over a second),
 * at most `maxMs`; returns the last busy fraction seen. For shared machines where test suites
 * run now and then: a measurement taken in a quiet second is not guaranteed quiet, but fewer are
 * taken in the middle of someone else's burst.
 */
export async function waitQuiet(threshold = 0.15, maxMs = 30_000): Promise<number> {
  const end = Date.now() + maxMs;
  for (;;) {
    const busy = await cpuBusy(1000);
    if (busy <= threshold || Date.now() >= end) return busy;
  }
}
