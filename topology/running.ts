/**
 * What `up` and `apply` share about a running topology: its processes and their states, the
 * hooks `apply` changes it with, free ports, and the end-to-end probe that says the mesh routes.
 */
import * as net from 'node:net';
import rhea = require('rhea');
import type { Topology } from './model';
import type { BrokerServices, PortPlan } from './generate';

/** How often the probe re-checks senders' credit. */
const PROBE_POLL_MS = 50;

/** Where a component is: routers go starting -> listening; brokers starting -> slave -> live. */
export type ComponentState = 'starting' | 'listening' | 'slave' | 'live' | 'exited';

/** One process of a running topology. */
export interface Component {
  kind: 'router' | 'broker';
  /** Router name, or broker name `<pair>.b1` / `<pair>.b2`. */
  name: string;
  /** The pair of a broker. */
  pair?: string;
  state: ComponentState;
  pid: number;
  configFile: string;
  logFile: string;
  /** Client listener `host:port` as the process logged it (a slave broker: its planned port). */
  endpoint: string;
  /** Client listener port (0 until known). */
  port: number;
  /** A router's inter-router listener port. */
  interRouterPort?: number;
  /** Exit code or signal once exited. */
  exitCode?: number | null;
  exitSignal?: NodeJS.Signals | null;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
}

/** A booted topology. */
export interface RunningTopology {
  model: Topology;
  runDir: string;
  /** Routers (topology order), then brokers (pair order, b1 before b2). */
  components: Component[];
  ports: PortPlan;
  /** ZooKeeper and databases `up` started for replication and jdbc pairs. */
  services: BrokerServices;
  /** Remarks for the operator (e.g. pairs left unattached). */
  warnings: string[];
  router(name: string): Component;
  broker(name: string): Component;
  /** The pair's live broker, if one is live. */
  liveBroker(pair: string): Component | undefined;
  /** Called on every later state change (a failover, a process that died). */
  onChange(listener: (c: Component, previous: ComponentState) => void): void;
  /** Stops every process (slaves first, so none takes over): SIGTERM, SIGKILL after 5 s. Idempotent. */
  stop(): Promise<void>;
  /** What `amqp-mesh apply` (topology/apply.ts) changes a running topology with. */
  readonly control: TopologyControl;
}

/** Hooks of a running topology for {@link RunningTopology.control} (used by topology/apply.ts). */
export interface TopologyControl {
  /** Whether pairs are attached to routers (see {@link BootOptions.pairConnectors}). */
  readonly pairConnectors: boolean;
  /** True once {@link RunningTopology.stop} was called. */
  readonly stopping: boolean;
  /**
   * Starts one more process on `conf/NAME.conf` (already written), logging to `logs/NAME.log`;
   * a broker's endpoint is `ports.brokers[NAME]`. Its state follows its log like the others'.
   */
  spawn(kind: 'router' | 'broker', name: string, pair?: string): Component;
  /** Stops one process (SIGTERM, SIGKILL after 5 s) and drops it from `components`. */
  retire(c: Component): Promise<void>;
  /** Reads the logs now (component states update). */
  poll(): void;
  /** The topology now runs `model`: components are put in its table order. */
  commit(model: Topology): void;
}

/** `count` distinct free TCP ports on 127.0.0.1 (all held open at once so none repeats, then released). */
export async function pickFreePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const s = net.createServer();
      servers.push(s);
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(0, '127.0.0.1', () => resolve());
      });
    }
    return servers.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => (s.listening ? s.close(() => r()) : r()))));
  }
}

/** Why `up`'s boot gave up; every process it started has exited by then. */
export class BootError extends Error {
  /** Every process that was started (all exited), with PIDs and log files. */
  components: Component[] = [];
  /** The run directory (configs and logs stay there). */
  runDir = '';
}

/**
 * Resolves once a sender on every router has credit for a receiver on every other router.
 * @param check throws to abandon the wait (a process died, a deadline, an abort).
 */
export async function probeMesh(
  routers: { name: string; host: string; port: number }[],
  deadline: number,
  progress: (done: number, total: number) => void,
  check: () => void,
): Promise<void> {
  const nonce = `${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const container = rhea.create_container({ id: `amqp-mesh-up-probe-${nonce}` });
  const conns: rhea.Connection[] = [];
  const failures: string[] = [];
  let closing = false;
  try {
    for (const r of routers) {
      const conn = container.connect({ host: r.host, port: r.port, reconnect: false } as rhea.ConnectionOptions);
      conn.on('connection_error', (ctx) => failures.push(`router ${r.name}: ${ctx.connection.error?.description ?? 'connection error'}`));
      conn.on('disconnected', (ctx) => {
        if (!closing) failures.push(`router ${r.name}: disconnected (${(ctx as { error?: Error }).error?.message ?? 'no reason'})`);
      });
      conns.push(conn);
    }
    const senders: { from: string; to: string; sender: rhea.Sender }[] = [];
    routers.forEach((to, i) => {
      const address = `amqp-mesh-up.probe.${nonce}.${to.name}`;
      conns[i].open_receiver({ source: { address } });
      // A single router probes itself: it must still route to a local consumer.
      const from = routers.length === 1 ? [0] : routers.map((_, j) => j).filter((j) => j !== i);
      for (const j of from) senders.push({ from: routers[j].name, to: to.name, sender: conns[j].open_sender({ target: { address } }) });
    });
    for (;;) {
      const done = senders.filter((s) => s.sender.sendable()).length;
      progress(done, senders.length);
      if (done === senders.length) return;
      if (failures.length) throw new BootError(`mesh probe failed: ${failures.join('; ')}`);
      try {
        check();
      } catch (e) {
        const missing = senders.filter((s) => !s.sender.sendable()).map((s) => `${s.from} -> ${s.to}`);
        if (Date.now() > deadline) throw new BootError(`${(e as Error).message}; the mesh did not converge: no route for ${missing.join(', ')}`);
        throw e;
      }
      await new Promise((r) => setTimeout(r, PROBE_POLL_MS));
    }
  } finally {
    closing = true;
    await Promise.all(conns.map((c) => new Promise<void>((resolve) => {
      if (!c.is_open()) {
        c.close();
        resolve();
        return;
      }
      const t = setTimeout(() => {
        c.close();
        resolve();
      }, 2000);
      c.once('connection_close', () => {
        clearTimeout(t);
        resolve();
      });
      c.once('disconnected', () => {
        clearTimeout(t);
        resolve();
      });
      c.close();
    })));
  }
}

