/**
 * A private RabbitMQ node for tests: Debian's rabbitmq-server (3.10) with the rabbitmq_amqp1_0
 * plugin, run as a child process with its own node name, ports, data and log directories, so it
 * never touches (or needs) the system service.
 *
 * Processes: the node (`rabbitmq-server` execs `erl`, which runs beam.smp and its helpers) is
 * started in its own process group and stopped by signalling that group. epmd would normally be
 * started by erl as `epmd -daemon`, which calls setsid() and so escapes the group (and outlives
 * the test); instead we start a foreground epmd on a private port ourselves, tell erl not to start
 * one (`-start_epmd false`), and stop it by its PID after the node.
 */
import { execFile, spawn, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { waitFor } from './wait';

export const RABBITMQ_SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server';
export const RABBITMQCTL = '/usr/lib/rabbitmq/bin/rabbitmqctl';
const EPMD_CANDIDATES = ['/usr/bin/epmd', '/usr/lib/erlang/bin/epmd'];

export interface RunningRabbit {
  /** AMQP port (127.0.0.1). */
  port: number;
  /** PID of the node's process group leader (the group is killed on stop). */
  pid: number;
  /** PID of the private epmd. */
  epmdPid: number;
  /** Node name, e.g. `amqpmesh1234@localhost`. */
  node: string;
  /** Temp dir holding mnesia, logs, HOME (.erlang.cookie) and enabled_plugins. */
  dir: string;
  /** Everything the node printed on stdout/stderr. */
  log: string[];
  /** Runs `rabbitmqctl -n NODE ARGS...` against this node; resolves with its stdout. */
  ctl(args: string[], timeoutMs?: number): Promise<string>;
  /** `rabbitmqctl list_queues`: every queue of vhost `/` with its durability and message counts. */
  queues(): Promise<RabbitQueue[]>;
  /** Stops the node (SIGTERM to its group, SIGKILL after 15 s), then epmd; removes `dir`. */
  stop(): Promise<void>;
}

export interface RabbitQueue {
  name: string;
  durable: boolean;
  /** Waiting to be delivered. */
  messages_ready: number;
  /** Delivered to a consumer (e.g. the router's in auto-link), not yet settled. */
  messages_unacknowledged: number;
}

/** Is Debian's rabbitmq-server installed? */
export function rabbitInstalled(): boolean {
  return fs.existsSync(RABBITMQ_SERVER);
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => { s.destroy(); resolve(false); });
  });
}

function capture(proc: ChildProcess, log: string[], tag: string): void {
  let partial = '';
  const on = (d: Buffer) => {
    const lines = (partial + d.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      log.push(line);
      if (process.env.RABBIT_LOG) process.stderr.write(`[${tag} ${proc.pid}] ${line}\n`);
    }
  };
  proc.stdout?.on('data', on);
  proc.stderr?.on('data', on);
  proc.on('exit', () => { if (partial) log.push(partial); partial = ''; });
}

function exitedPromise(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) resolve();
    else proc.once('exit', () => resolve());
  });
}

function killGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    // the group is gone
  }
}

/** Does any process of group `pgid` still exist? */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

async function stopProc(proc: ChildProcess, group: boolean): Promise<void> {
  const pid = proc.pid as number;
  const done = exitedPromise(proc);
  const send = (sig: NodeJS.Signals) => {
    if (group) killGroup(pid, sig);
    else if (proc.exitCode === null && proc.signalCode === null) proc.kill(sig);
  };
  send('SIGTERM');
  const t = setTimeout(() => send('SIGKILL'), 15_000);
  await done;
  if (group) {
    // The leader exited; wait for the rest of the group (beam's port programs), then be sure.
    await waitFor(() => !groupAlive(pid), 15_000, `RabbitMQ process group ${pid} to exit`).catch(() => killGroup(pid, 'SIGKILL'));
  }
  clearTimeout(t);
}

/**
 * Boots a private RabbitMQ node with rabbitmq_amqp1_0 on free 127.0.0.1 ports and waits for its
 * "completed with N plugins" banner. Throws (after killing everything it started) with the tail
 * of the node's output when it does not come up within `timeoutMs`.
 */
export async function startRabbit(opts: { timeoutMs?: number; name?: string } = {}): Promise<RunningRabbit> {
  if (!rabbitInstalled()) throw new Error(`${RABBITMQ_SERVER} not found: install Debian's rabbitmq-server (apt-get install rabbitmq-server)`);
  const epmdBin = EPMD_CANDIDATES.find((p) => fs.existsSync(p));
  if (!epmdBin) throw new Error(`epmd not found (${EPMD_CANDIDATES.join(', ')}); erlang-base is not installed`);
  const timeoutMs = opts.timeoutMs ?? 90_000;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amqp-mesh-rabbit-'));
  fs.writeFileSync(path.join(dir, 'enabled_plugins'), '[rabbitmq_amqp1_0].\n');
  const [port, dist, epmdPort] = [await freePort(), await freePort(), await freePort()];
  const node = `${opts.name ?? 'amqpmesh'}${process.pid}x${Math.random().toString(36).slice(2, 6)}@localhost`;
  const log: string[] = [];

  // Our own epmd, in the foreground (so it is a plain child we can stop by PID).
  const epmd = spawn(epmdBin, ['-port', String(epmdPort), '-address', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  capture(epmd, log, 'epmd');
  let epmdDead = false;
  epmd.once('exit', () => { epmdDead = true; });
  const fail = async (why: string, rabbit?: ChildProcess): Promise<never> => {
    if (rabbit) await stopProc(rabbit, true);
    await stopProc(epmd, false);
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`RabbitMQ did not start: ${why}\n--- last lines of its output ---\n${log.slice(-30).join('\n')}`);
  };
  try {
    await waitFor(async () => epmdDead || (await canConnect(epmdPort)), 10_000, `epmd on port ${epmdPort}`);
  } catch (e) {
    return fail((e as Error).message);
  }
  if (epmdDead) return fail(`epmd exited (code ${epmd.exitCode})`);

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: dir,
    RABBITMQ_NODENAME: node,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(dist),
    ERL_EPMD_PORT: String(epmdPort),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-start_epmd false',
    RABBITMQ_MNESIA_BASE: path.join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: path.join(dir, 'log'),
    RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, 'enabled_plugins'),
    RABBITMQ_CONFIG_FILE: path.join(dir, 'rabbitmq'),
    RABBITMQ_ADVANCED_CONFIG_FILE: path.join(dir, 'advanced.config'),
    RABBITMQ_CONF_ENV_FILE: path.join(dir, 'rabbitmq-env.conf'),
    // The node logs to stdout too (where we look for the banner).
    RABBITMQ_LOGS: '-',
  };
  // Its own process group: erl, beam.smp and their port programs (erl_child_setup, inet_gethost).
  const proc = spawn(RABBITMQ_SERVER, [], { env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  capture(proc, log, 'rabbit');
  let exited: string | null = null;
  proc.once('exit', (code, sig) => { exited = `rabbitmq-server exited (${sig ?? code})`; });
  // "Starting broker..." and " completed with N plugins." arrive on separate lines (and the
  // banner may be split across chunks), so look at the whole text, not a line.
  try {
    await waitFor(() => exited !== null || /completed with \d+ plugins/.test(log.join('\n')), timeoutMs, 'RabbitMQ "completed with N plugins"');
  } catch (e) {
    return fail((e as Error).message, proc);
  }
  if (exited !== null) return fail(exited, proc);
  try {
    await waitFor(() => canConnect(port), 10_000, `RabbitMQ AMQP port ${port}`);
  } catch (e) {
    return fail((e as Error).message, proc);
  }

  const ctl = (args: string[], ms = 30_000): Promise<string> => new Promise((resolve, reject) => {
    // HOME holds the node's .erlang.cookie; the CLI finds the node through our epmd.
    execFile(RABBITMQCTL, ['-n', node, ...args], { env: { ...env, RABBITMQ_LOGS: undefined }, cwd: dir, timeout: ms }, (err, stdout, stderr) => {
      if (err) reject(new Error(`rabbitmqctl ${args.join(' ')}: ${err.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
  let stopping: Promise<void> | null = null;
  return {
    port, pid: proc.pid as number, epmdPid: epmd.pid as number, node, dir, log, ctl,
    async queues() {
      const out = await ctl(['list_queues', '-q', '--formatter', 'json', 'name', 'durable', 'messages_ready', 'messages_unacknowledged']);
      return JSON.parse(out.trim() || '[]') as RabbitQueue[];
    },
    stop() {
      stopping ??= (async () => {
        await stopProc(proc, true);
        await stopProc(epmd, false);
        fs.rmSync(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}
