/**
 * `amqp-mesh up [FILE]`: boots a whole topology (topology/model.ts) on this machine - every
 * router and broker as its own process - waits until it is usable, prints where everything is,
 * and stops it all on Ctrl-C.
 *
 * Usable means: every router listens; every broker pair has exactly one live broker (the other
 * waits for the store lock); and the mesh converged, which is probed end to end rather than read
 * from logs: on each router a receiver attaches to a unique address and a sender attaches to it
 * on every other router; routers grant a sender credit only once a consumer is reachable, so
 * every sender holding credit means every router routes to every other. Whether a pair is
 * connected to its router is deliberately not part of it (route-container support is landing
 * separately; a broker connection comes and goes with failover anyway).
 *
 * Files go to a run directory (default `$TMPDIR/amqp-mesh-up-<timestamp>/`): `conf/NAME.conf`
 * (generated), `logs/NAME.log` (each process's stdout and stderr) and `data/PAIR/` (stores).
 * Once up, `runUp` also writes `state.json` there and listens on `control.sock`, through which
 * `amqp-mesh apply FILE` changes the running topology (topology/apply.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { ConfigError } from '../config/errors';
import { ENTITY_SCHEMAS } from '../router/config/schema';
import { loadTopologyFile, type Topology } from './model';
import { assignPorts, brokersOf, generateConfigs, portsNeeded, type BrokerServices } from './generate';
import { startPostgresServer, startZookeeperServer, stopPid } from './services';
import { serveControl } from './control';
import { BootError, pickFreePorts, probeMesh, type Component, type ComponentState, type RunningTopology } from './running';

export { BootError, type Component, type ComponentState, type RunningTopology } from './running';

const ROOT = path.resolve(__dirname, '..', '..');
/** The amqp-mesh command the processes run (bin/amqp-mesh.js of this package). */
export const BIN = path.join(ROOT, 'bin', 'amqp-mesh.js');
/** What `amqp-mesh up` boots without a FILE. */
export const DEFAULT_TOPOLOGY = path.join(ROOT, 'topology', 'default.yaml');

/** Grace between SIGTERM and SIGKILL when stopping a process. */
const STOP_GRACE_MS = 5000;
/** How often the log files are read for state changes. */
const LOG_POLL_MS = 50;

/** Options of {@link bootTopology}. */
export interface BootOptions {
  /** Where conf/, logs/ and data/ go; created if missing. Default `$TMPDIR/amqp-mesh-up-<timestamp>`. */
  runDir?: string;
  /** Give up (stopping everything) after this long. Default 60 s. */
  timeoutMs?: number;
  /** Draw the progress display here (redrawn in place on a TTY, a line per change otherwise). */
  output?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Aborting stops whatever started and rejects with an error named AbortError. */
  signal?: AbortSignal;
  /**
   * Attach broker pairs to their routers (route-container connectors, autoLinks, linkRoutes).
   * `auto` (default): yes unless this build's router still refuses `role: route-container`.
   */
  pairConnectors?: boolean | 'auto';
  /** The amqp-mesh executable script (default {@link BIN}). */
  bin?: string;
}

/** Whether this build's router config loader accepts `role: route-container` on a connector. */
export function routerSupportsRouteContainer(): boolean {
  const role = ENTITY_SCHEMAS.connector?.attributes.role;
  return !(role?.unsupportedValues ?? []).includes('route-container');
}

/** A fresh run directory name under the system temporary directory. */
function defaultRunDir(): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').replace(/\..*/, '');
  const base = path.join(os.tmpdir(), `amqp-mesh-up-${stamp}`);
  for (let i = 0; ; i++) {
    const dir = i === 0 ? base : `${base}-${i}`;
    try {
      fs.mkdirSync(dir);
      return dir;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
}

function abortError(): Error {
  const e = new Error('aborted');
  e.name = 'AbortError';
  return e;
}

/** The last `n` lines of a file (for failure messages). */
function tail(file: string, n = 20): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
  } catch {
    return '';
  }
}

/** Progress display: a row per component; redrawn in place on a TTY, a line per change otherwise. */
class ProgressView {
  private readonly rows = new Map<string, string>();
  private drawn = 0;
  constructor(private out: (NodeJS.WritableStream & { isTTY?: boolean }) | undefined) {}

  /** Stops drawing: what is printed next (the table) must not be overwritten. */
  close(): void {
    this.out = undefined;
  }

  set(key: string, label: string, text: string): void {
    const row = `  ${label.padEnd(18)} ${text}`;
    if (this.rows.get(key) === row) return;
    this.rows.set(key, row);
    if (!this.out) return;
    if (!this.out.isTTY) {
      this.out.write(`${label}: ${text}\n`);
      return;
    }
    // Rewrite the whole block: rows never shrink in number, so moving up `drawn` lines is exact.
    let s = this.drawn ? `\x1b[${this.drawn}A` : '';
    for (const r of this.rows.values()) s += `\x1b[2K${r}\n`;
    this.drawn = this.rows.size;
    this.out.write(s);
  }
}

function stateText(c: Component): string {
  switch (c.state) {
    case 'starting':
      return 'starting';
    case 'listening':
      return `listening  ${c.endpoint}  (inter-router :${c.interRouterPort})`;
    case 'slave':
      return 'slave      (waiting for the store lock)';
    case 'live':
      return `live       ${c.endpoint}`;
    case 'exited':
      return `exited     (${c.exitSignal ?? `code ${c.exitCode}`}; see ${c.logFile})`;
  }
}

/** The services started for a topology, and how to stop them. */
interface StartedServices {
  endpoints: BrokerServices;
  /** PIDs of the services (stopped last, after every broker). */
  pids: number[];
  stop(): Promise<void>;
}

/** How many services `model` needs started (each takes one port). */
function servicesNeeded(model: Topology): { zookeeper: boolean; postgres: Topology['brokerPairs'] } {
  return {
    zookeeper: model.zookeeper === undefined && model.brokerPairs.some((p) => p.haPolicy === 'replication'),
    postgres: model.brokerPairs.filter((p) => p.haPolicy === 'jdbc' && p.jdbcUrl === undefined),
  };
}

/** Starts the services `model` needs on `ports` (one each), logging to runDir/logs/NAME.log. */
async function startServices(model: Topology, runDir: string, view: ProgressView, ports: number[]): Promise<StartedServices> {
  const need = servicesNeeded(model);
  const pids: number[] = [];
  const endpoints: BrokerServices = model.zookeeper !== undefined ? { zookeeper: model.zookeeper } : {};
  const stop = async () => {
    for (const pid of pids.splice(0)) await stopPid(pid, 'SIGINT');
  };
  /** One service: its port, its log file (closed here once the process has it), its progress line. */
  const start = async (name: string, run: (port: number, out: number, log: () => string) => Promise<number>): Promise<number> => {
    const port = ports.shift() as number;
    const file = path.join(runDir, 'logs', `${name}.log`);
    const out = fs.openSync(file, 'a');
    view.set(name, name, 'starting');
    try {
      const pid = await run(port, out, () => tail(file));
      pids.push(pid);
      view.set(name, name, `running  127.0.0.1:${port}  pid ${pid}`);
      return port;
    } finally {
      fs.closeSync(out);
    }
  };
  try {
    // Own process groups, as the brokers: a Ctrl-C reaches `up` only, which stops them last.
    if (need.zookeeper) {
      const port = await start('zookeeper', async (p, out, log) =>
        (await startZookeeperServer({ dir: path.join(runDir, 'zookeeper'), host: '127.0.0.1', port: p, stdio: ['ignore', out, out], log, detached: true })).pid as number);
      endpoints.zookeeper = `127.0.0.1:${port}`;
    }
    if (need.postgres.length > 0) {
      let url = '';
      await start('postgres', async (p, out, log) => {
        const pg = await startPostgresServer({ dir: path.join(runDir, 'postgres'), port: p, stdio: ['ignore', out, out], log, detached: true });
        url = pg.url;
        return pg.pid;
      });
      endpoints.jdbcUrls = Object.fromEntries(need.postgres.map((p) => [p.name, url]));
    }
  } catch (e) {
    await stop();
    throw new BootError(`a service did not start: ${(e as Error).message}`);
  }
  return { endpoints, pids, stop };
}

/**
 * Boots `model`: writes the configs, starts every process, and resolves once every router
 * listens, every broker group has a live member, and the mesh converged.
 * @throws Error when a process exits during start-up (with its log's tail) or on timeout; every
 *   process started is stopped first. AbortError when `opts.signal` aborts.
 */
export async function bootTopology(model: Topology, opts: BootOptions = {}): Promise<RunningTopology> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  const bin = opts.bin ?? BIN;
  const runDir = opts.runDir ?? defaultRunDir();
  for (const sub of ['conf', 'logs', 'data']) fs.mkdirSync(path.join(runDir, sub), { recursive: true });
  const warnings: string[] = [];
  const pairConnectors = opts.pairConnectors === undefined || opts.pairConnectors === 'auto' ? routerSupportsRouteContainer() : opts.pairConnectors;
  if (!pairConnectors && model.brokerPairs.length > 0) {
    warnings.push('this router does not support connector role route-container yet: broker pairs run but are not attached to their routers (autoLinks and linkRoutes left out)');
  }

  // Every port in one pick, services' last, so no two can be the same.
  const need = servicesNeeded(model);
  const ports = await pickFreePorts(portsNeeded(model) + (need.zookeeper ? 1 : 0) + (need.postgres.length > 0 ? 1 : 0));
  const plan = assignPorts(model, ports.splice(0, portsNeeded(model)));
  const dataDirs: Record<string, string> = {};
  for (const p of model.brokerPairs) dataDirs[p.name] = p.dataDir ?? path.join(runDir, 'data', p.name);

  const view = new ProgressView(opts.output);
  // ZooKeeper for replicated groups, PostgreSQL for jdbc pairs that name no database: started
  // first, stopped last (after every broker).
  const services = await startServices(model, runDir, view, ports);
  let configs;
  try {
    configs = generateConfigs(model, plan, { dataDirs, pairConnectors, services: services.endpoints });
  } catch (e) {
    await services.stop();
    throw e;
  }
  const components: Component[] = [];
  const listeners: ((c: Component, previous: ComponentState) => void)[] = [];
  const readers = new Map<Component, { fd: number; offset: number; partial: string; decoder: StringDecoder }>();
  let booted = false;
  let stopping: Promise<void> | undefined;

  const setState = (c: Component, state: ComponentState): void => {
    const previous = c.state;
    if (previous === state || previous === 'exited') return;
    c.state = state;
    view.set(c.name, `${c.kind} ${c.name}`, stateText(c));
    if (booted && !stopping) for (const l of listeners) l(c, previous);
  };

  const onLine = (c: Component, line: string): void => {
    const m = /Listening on (\S+):(\d+) \(listener ([^)]*)\)/.exec(line);
    if (c.kind === 'router') {
      if (!m) return;
      if (m[3] === 'client') {
        c.port = Number(m[2]);
        c.endpoint = `${m[1]}:${m[2]}`;
      } else if (m[3] === 'inter-router') c.interRouterPort = Number(m[2]);
      if (c.port && c.interRouterPort) setState(c, 'listening');
    } else if (m) {
      c.port = Number(m[2]);
      c.endpoint = `${m[1]}:${m[2]}`;
      setState(c, 'live');
    } else if (line.includes('waiting for the store lock') && c.state === 'starting') {
      setState(c, 'slave');
    }
  };

  // Children write straight into their log files (nothing is lost if `up` itself dies); the
  // files are read back here for the lines that tell a process's state.
  const pollLogs = (): void => {
    for (const [c, r] of readers) {
      const buf = Buffer.allocUnsafe(64 * 1024);
      for (;;) {
        let n = 0;
        try {
          n = fs.readSync(r.fd, buf, 0, buf.length, r.offset);
        } catch {
          break;
        }
        if (n === 0) break;
        r.offset += n;
        // The decoder keeps a character split across two reads whole.
        const lines = (r.partial + r.decoder.write(buf.subarray(0, n))).split('\n');
        r.partial = lines.pop() as string;
        for (const line of lines) onLine(c, line);
      }
    }
  };
  const poller = setInterval(pollLogs, LOG_POLL_MS);
  poller.unref();

  // A safety net: if this process exits without stop() (a crash, process.exit), take the
  // children with it rather than leaving a mesh running nobody knows about.
  const killAllSync = (): void => {
    const pids = [...components.filter((c) => c.state !== 'exited' && c.pid > 0).map((c) => c.pid), ...services.pids];
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  process.on('exit', killAllSync);

  const start = (kind: 'router' | 'broker', name: string, pair?: string): Component => {
    const configFile = path.join(runDir, 'conf', `${name}.conf`);
    const logFile = path.join(runDir, 'logs', `${name}.log`);
    const out = fs.openSync(logFile, 'a');
    // Own process group: a Ctrl-C in the terminal reaches `up` only, which then stops the
    // processes in an order that keeps a slave from taking over on the way down.
    const proc: ChildProcess = spawn(process.execPath, [bin, kind, '-c', configFile], { stdio: ['ignore', out, out], detached: true });
    fs.closeSync(out);
    let resolveExit!: () => void;
    const c: Component = {
      kind,
      name,
      pair,
      state: 'starting',
      pid: proc.pid ?? -1,
      configFile,
      logFile,
      endpoint: kind === 'broker' ? `127.0.0.1:${plan.brokers[name]}` : '',
      port: 0,
      exited: new Promise<void>((r) => (resolveExit = r)),
    };
    const exited = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (c.exitCode !== undefined || c.exitSignal) return;
      pollLogs();
      c.exitCode = code;
      c.exitSignal = signal;
      setState(c, 'exited');
      const r = readers.get(c);
      if (r) {
        fs.closeSync(r.fd);
        readers.delete(c);
      }
      resolveExit();
    };
    proc.on('exit', exited);
    proc.on('error', (e) => {
      fs.appendFileSync(logFile, `amqp-mesh up: cannot start: ${e.message}\n`);
      exited(null, null);
    });
    components.push(c);
    readers.set(c, { fd: fs.openSync(logFile, 'r'), offset: 0, partial: '', decoder: new StringDecoder('utf8') });
    view.set(name, `${kind} ${name}`, stateText(c));
    return c;
  };

  const stopOne = async (c: Component): Promise<void> => {
    if (c.state === 'exited') return;
    // No PID: spawn failed and its 'error' event is on the way (a signal to -1 would hit everything).
    if (c.pid <= 0) return c.exited;
    try {
      process.kill(c.pid, 'SIGTERM');
    } catch {
      // exited between the check and the signal
    }
    const timer = setTimeout(() => {
      try {
        if (c.state !== 'exited') process.kill(c.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }, STOP_GRACE_MS);
    await c.exited;
    clearTimeout(timer);
  };
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      // Slaves first: a slave still waiting when its live broker goes would take over the store.
      await Promise.all(components.filter((c) => c.kind === 'broker' && c.state !== 'live').map(stopOne));
      await Promise.all(components.map(stopOne));
      await services.stop();
      clearInterval(poller);
      process.removeListener('exit', killAllSync);
      for (const r of readers.values()) fs.closeSync(r.fd);
      readers.clear();
    })();
    return stopping;
  };

  const topo: RunningTopology = {
    model,
    runDir,
    components,
    ports: plan,
    services: services.endpoints,
    warnings,
    router: (name) => {
      const c = components.find((x) => x.kind === 'router' && x.name === name);
      if (!c) throw new RangeError(`no router ${name}`);
      return c;
    },
    broker: (name) => {
      const c = components.find((x) => x.kind === 'broker' && x.name === name);
      if (!c) throw new RangeError(`no broker ${name}`);
      return c;
    },
    liveBroker: (pair) => components.find((c) => c.pair === pair && c.state === 'live'),
    onChange: (l) => void listeners.push(l),
    stop,
    control: {
      pairConnectors,
      get stopping() {
        return stopping !== undefined;
      },
      spawn: (kind, name, pair) => start(kind, name, pair),
      retire: async (c) => {
        await stopOne(c);
        const i = components.indexOf(c);
        if (i >= 0) components.splice(i, 1);
      },
      poll: () => pollLogs(),
      commit: (next) => {
        topo.model = next;
        inTableOrder(components, next);
      },
    },
  };

  try {
    for (const c of configs) fs.writeFileSync(path.join(runDir, 'conf', `${c.name}.conf`), c.text);
    const brokers = brokersOf(model);
    // Rows appear in table order (routers, then brokers) even though brokers start first.
    for (const r of model.routers) view.set(r.name, `router ${r.name}`, 'starting');
    for (const b of brokers) view.set(b.name, `broker ${b.name}`, 'waiting for its turn');
    view.set('mesh', 'mesh', 'waiting for the routers');
    // The first broker of each pair starts first so that it is the live one: it is also the
    // connector's primary host. A replicated group starts whole: no member goes live without a
    // quorum (the election prefers b1 when all are equal).
    const replicated = new Set(model.brokerPairs.filter((p) => p.haPolicy === 'replication').map((p) => p.name));
    for (const b of brokers.filter((x) => x.index === 1 || replicated.has(x.pair))) start('broker', b.name, b.pair);
    for (const r of model.routers) start('router', r.name);
    const byName = (name: string): Component => components.find((c) => c.name === name) as Component;
    const pending = brokers.filter((x) => x.index >= 2 && !replicated.has(x.pair));

    const check = (): void => {
      if (opts.signal?.aborted) throw abortError();
      const dead = components.find((c) => c.state === 'exited');
      if (dead) {
        throw new BootError(`${dead.kind} ${dead.name} exited (${dead.exitSignal ?? `code ${dead.exitCode}`}) during start-up; ${dead.logFile}:\n${tail(dead.logFile)}`);
      }
      if (Date.now() > deadline) {
        const waiting = components.filter((c) => (c.kind === 'router' ? c.state !== 'listening' : c.state === 'starting'));
        throw new BootError(`timed out after ${timeoutMs} ms; still starting: ${waiting.map((c) => `${c.kind} ${c.name} (${c.logFile})`).join(', ') || 'none'}`);
      }
    };
    const until = async (pred: () => boolean): Promise<void> => {
      for (;;) {
        pollLogs();
        check();
        if (pred()) return;
        await new Promise((r) => setTimeout(r, LOG_POLL_MS));
      }
    };

    await until(() => {
      for (let i = pending.length - 1; i >= 0; i--) {
        const first = byName(`${pending[i].pair}.b1`);
        if (first.state === 'live') start('broker', pending[i].name, pending[i].pair);
        if (first.state === 'live') pending.splice(i, 1);
      }
      return pending.length === 0 && components.every((c) => c.kind === 'broker' || c.state === 'listening');
    });
    // A pair is ready with one live broker and the others provably waiting, not merely launched.
    await until(() => model.brokerPairs.every((p) => {
      const states = components.filter((c) => c.pair === p.name).map((c) => c.state);
      return states.filter((x) => x === 'live').length === 1 && states.filter((x) => x === 'slave').length === p.members - 1;
    }));

    const routers = model.routers.map((r) => {
      const c = byName(r.name);
      return { name: r.name, host: r.host === '0.0.0.0' || r.host === '::' ? '127.0.0.1' : r.host, port: c.port };
    });
    await probeMesh(routers, deadline, (done, total) => view.set('mesh', 'mesh', done === total ? `converged  (${total} path${total === 1 ? '' : 's'})` : `converging (${done}/${total} paths have credit)`), check);
  } catch (e) {
    view.close();
    await stop();
    inTableOrder(components, model);
    if (e instanceof BootError) {
      e.components = [...components];
      e.runDir = runDir;
    }
    throw e;
  }
  view.close();
  inTableOrder(components, model);
  booted = true;
  return topo;
}

/** Routers, then brokers pair by pair: the topology's order, not the start order (first brokers start first). */
function inTableOrder(components: Component[], model: Topology): void {
  const order = [...model.routers.map((r) => r.name), ...brokersOf(model).map((b) => b.name)];
  components.sort((x, y) => order.indexOf(x.name) - order.indexOf(y.name));
}

/** The summary printed once the topology is up: component, role, endpoint, pid, log file. */
export function formatTable(t: RunningTopology): string {
  const rows: string[][] = [['COMPONENT', 'ROLE', 'ENDPOINT', 'PID', 'LOG']];
  for (const c of t.components) {
    const role = c.kind === 'router'
      ? 'interior router'
      : `${c.state === 'live' ? 'live' : c.state === 'slave' ? 'slave' : c.state} (pair ${c.pair})`;
    const endpoint = c.kind === 'router'
      ? `amqp://${c.endpoint}  (inter-router :${c.interRouterPort})`
      : c.state === 'live' ? `amqp://${c.endpoint}` : `(amqp://${c.endpoint} once live)`;
    rows.push([`${c.kind} ${c.name}`, role, endpoint, String(c.pid), c.logFile]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ')).join('\n') + '\n';
}

const UP_USAGE = `usage: amqp-mesh up [FILE] [--run-dir DIR] [--timeout SECONDS]
  FILE defaults to ${path.relative(process.cwd(), DEFAULT_TOPOLOGY) || DEFAULT_TOPOLOGY}`;

/**
 * `amqp-mesh up [FILE] [--run-dir DIR] [--timeout SECONDS]`: boots the topology, prints the
 * table, and on SIGINT/SIGTERM stops every process and exits 0. A bad topology exits 2 with
 * `FILE:LINE: reason`; a failed start exits 1 after stopping what started.
 */
export async function runUp(argv: string[]): Promise<void> {
  let file: string | undefined;
  let runDir: string | undefined;
  let timeoutMs: number | undefined;
  const usage = (why: string): never => {
    process.stderr.write(`amqp-mesh up: ${why}\n${UP_USAGE}\n`);
    process.exit(2);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') {
      process.stdout.write(`${UP_USAGE}\n`);
      return;
    } else if (a === '--run-dir') runDir = argv[++i] ?? usage('--run-dir needs a directory');
    else if (a === '--timeout') {
      const s = Number(argv[++i]);
      if (!(s > 0)) usage('--timeout needs a number of seconds');
      timeoutMs = s * 1000;
    } else if (a.startsWith('-')) usage(`unknown option "${a}"`);
    else if (file === undefined) file = a;
    else usage(`unexpected argument "${a}"`);
  }
  file ??= DEFAULT_TOPOLOGY;

  let model: Topology;
  try {
    model = loadTopologyFile(file);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`amqp-mesh: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }

  const out = process.stdout;
  const abort = new AbortController();
  let topo: RunningTopology | undefined;
  let stopRequested: ((sig: string) => void) | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (stopRequested) stopRequested(sig);
    else abort.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  out.write(`amqp-mesh up: ${file}\n`);
  try {
    topo = await bootTopology(model, { runDir, timeoutMs, output: out, signal: abort.signal });
  } catch (e) {
    if ((e as Error).name === 'AbortError') {
      out.write('interrupted: every process started is stopped\n');
      process.exit(0);
    }
    process.stderr.write(`amqp-mesh up: ${(e as Error).message}\n`);
    process.exit(1);
  }
  const t = topo;
  out.write(`\n${formatTable(t)}\n`);
  for (const w of t.warnings) out.write(`warning: ${w}\n`);
  out.write(`configs in ${path.join(t.runDir, 'conf')}, stores in ${path.join(t.runDir, 'data')}\n`);
  // `amqp-mesh apply FILE` reaches this process through the run directory (state.json, control.sock).
  const control = await serveControl(t, { modelFile: path.resolve(file), log: (line) => out.write(`${line}\n`), timeoutMs });
  if (control.socket) out.write(`amqp-mesh apply FILE changes this topology live (control socket ${control.socket})\n`);
  out.write('Ctrl-C to stop\n');
  t.onChange((c, previous) => {
    const at = new Date().toTimeString().slice(0, 8);
    out.write(`${at} ${c.kind} ${c.name}: ${previous} -> ${stateText(c)}\n`);
  });
  await new Promise<void>((resolve) => {
    stopRequested = (sig) => {
      stopRequested = () => undefined;
      out.write(`${sig}: stopping ${t.components.length} processes\n`);
      void control.close().then(() => t.stop()).then(resolve);
    };
  });
  out.write('stopped\n');
  process.exit(0);
}
