/**
 * Shared steps of the system tests: a router per test (always stopped), Proton URLs, and a small
 * promise-based wrapper around rhea connections. Not a test file (the runner only runs *.test.js).
 */
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import rhea = require('rhea');
import * as assert from 'uvu/assert';
import { RunningRouter, startRouter, standaloneConfig } from '../support/router';
import { waitFor } from '../support/wait';

/** Proton's --url for a router's listener. */
export function url(r: RunningRouter, index = 0): string {
  return `amqp://127.0.0.1:${r.ports[index]}`;
}

/**
 * Boots a router on `config` (default: the standalone test config), runs `fn`, and always stops
 * the router; the router must exit 0 on SIGTERM.
 */
export async function withRouter<T>(
  fn: (r: RunningRouter) => Promise<T>,
  config: string = standaloneConfig(),
  opts: Parameters<typeof startRouter>[1] = {},
): Promise<T> {
  const r = await startRouter(config, opts);
  let failed = true;
  try {
    const v = await fn(r);
    failed = false;
    return v;
  } catch (e) {
    if (process.env.ROUTER_LOG === undefined) process.stderr.write(`--- router log (last 40 lines) ---\n${r.log.slice(-40).join('\n')}\n`);
    throw e;
  } finally {
    const code = await r.stop();
    if (!failed) assert.is(code, 0, 'router exits 0 on SIGTERM');
  }
}

/** Resolves on the first `event` from `emitter`, rejects after `ms`. */
export function once<T = any>(emitter: EventEmitter, event: string, ms = 5000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => {
      emitter.removeListener(event, on);
      reject(new Error(`timed out after ${ms} ms waiting for rhea event "${event}"`));
    }, ms);
    const on = (ctx: T) => {
      clearTimeout(t);
      resolve(ctx);
    };
    emitter.once(event, on);
  });
}

/** A rhea connection to a router; `errors` collects every error/close event it saw. */
export interface RheaClient {
  container: rhea.Container;
  conn: rhea.Connection;
  events: { name: string; condition?: string; description?: string }[];
  close(): Promise<void>;
}

/** Connects rhea to a router's listener `index` (or to anything with a `port`, e.g. a proxy). */
export async function rheaConnect(r: RunningRouter | { port: number }, index = 0, options: Partial<rhea.ConnectionOptions> = {}): Promise<RheaClient> {
  const port = 'ports' in r ? r.ports[index] : r.port;
  const container = rhea.create_container({ id: `rhea-${process.pid}-${Math.random().toString(36).slice(2, 8)}` });
  const events: RheaClient['events'] = [];
  const conn = container.connect({ host: '127.0.0.1', port, reconnect: false, ...options } as rhea.ConnectionOptions);
  const record = (name: string) => (ctx: any) => {
    const err = ctx && (ctx.error || (ctx.connection && ctx.connection.error));
    events.push({ name, condition: err && err.condition, description: err && err.description });
  };
  for (const name of ['connection_error', 'connection_close', 'disconnected', 'protocol_error', 'error']) conn.on(name as any, record(name));
  await once(conn as unknown as EventEmitter, 'connection_open');
  return {
    container,
    conn,
    events,
    async close() {
      if (conn.is_closed() || !conn.is_open()) {
        (conn as any).socket?.destroy?.();
        return;
      }
      const closed = once(conn as unknown as EventEmitter, 'connection_close', 3000).catch(() => undefined);
      conn.close();
      await closed;
    },
  };
}

/** Collects the bodies a rhea receiver gets (auto-accepted unless autoaccept false). */
export function collect(receiver: rhea.Receiver): { messages: rhea.Message[]; deliveries: rhea.Delivery[] } {
  const out = { messages: [] as rhea.Message[], deliveries: [] as rhea.Delivery[] };
  receiver.on('message', (ctx: rhea.EventContext) => {
    out.messages.push(ctx.message!);
    out.deliveries.push(ctx.delivery!);
  });
  return out;
}

/** Counts the outcomes a rhea sender sees (modified is kept apart from released). */
export function outcomes(sender: rhea.Sender): Record<'accepted' | 'rejected' | 'released' | 'modified' | 'settled', number> {
  const c = { accepted: 0, rejected: 0, released: 0, modified: 0, settled: 0 };
  sender.on('accepted', () => c.accepted++);
  sender.on('rejected', () => c.rejected++);
  sender.on('released', () => c.released++);
  sender.on('modified', () => c.modified++);
  sender.on('settled', () => c.settled++);
  return c;
}

/** Waits until a rhea sender has credit. */
export function waitSendable(sender: rhea.Sender, ms = 5000): Promise<unknown> {
  return waitFor(() => sender.sendable(), ms, 'the rhea sender to get credit');
}

/** A link's current credit (rhea keeps it, its typings do not show it). */
export function credit(link: rhea.Sender | rhea.Receiver): number {
  return (link as unknown as { credit: number }).credit;
}

/** 0..n-1 mapped. */
export function range<T>(n: number, f: (i: number) => T): T[] {
  return Array.from({ length: n }, (_, i) => f(i));
}

/** Sorted copy (for comparing multisets of bodies). */
export function sorted<T>(xs: T[]): T[] {
  return [...xs].sort((a, b) => (String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0));
}

export { standaloneConfig, waitFor };

/**
 * A TCP proxy in front of a router whose router-to-client direction can be held: lets a test
 * make a client act on state the router has already changed (frames in flight), without timing.
 */
export interface HoldProxy {
  port: number;
  /** Stop passing router -> client bytes (they wait, in order). */
  holdDown(): void;
  /** Pass them again. */
  releaseDown(): void;
  close(): Promise<void>;
}

export async function startHoldProxy(routerPort: number): Promise<HoldProxy> {
  const pairs: { client: net.Socket; upstream: net.Socket }[] = [];
  let held = false;
  const server = net.createServer((client) => {
    const upstream = net.connect(routerPort, '127.0.0.1');
    pairs.push({ client, upstream });
    client.pipe(upstream);
    upstream.pipe(client);
    if (held) upstream.pause();
    const kill = () => { client.destroy(); upstream.destroy(); };
    client.on('error', kill);
    upstream.on('error', kill);
    client.on('close', kill);
    upstream.on('close', kill);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    holdDown() {
      held = true;
      for (const p of pairs) {
        p.upstream.unpipe(p.client);
        p.upstream.pause();
      }
    },
    releaseDown() {
      held = false;
      for (const p of pairs) {
        p.upstream.pipe(p.client);
        p.upstream.resume();
      }
    },
    async close() {
      for (const p of pairs) { p.client.destroy(); p.upstream.destroy(); }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
