/**
 * rhea load generator: one sender and one receiver (separate connections) through a router,
 * unsettled, measuring msgs/s and send-to-receive latency (timestamp carried in the body).
 * Over plain TCP (default), TLS (`transport: 'tls'`, server verified against `ca`) or WebSocket
 * (`transport: 'ws'`, rhea's websocket_connect with the `ws` package, subprotocol amqp).
 */
import * as fs from 'node:fs';
import rhea from 'rhea';
import type { ConnectionOptions, EventContext, Message } from 'rhea';
import WebSocket from 'ws';

import type { MeshPerfResult } from './tools';

/** The same figures the C client reports. */
export type PerfResult = Pick<MeshPerfResult, 'messages' | 'seconds' | 'msgsPerSec' | 'p50Us' | 'p99Us' | 'maxUs' | 'accepted'>;

/** Percentile of a sorted array. */
export function percentile(sorted: Float64Array | number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length));
  return sorted[i];
}

/** How a bench client reaches the router: plain AMQP, AMQP over TLS, AMQP over WebSocket (ws://). */
export type BenchTransport = 'tcp' | 'tls' | 'ws';

export interface RheaPerfOptions {
  port: number;
  host?: string;
  address: string;
  messages: number;
  bodySize?: number;
  /** Receiver credit window (default 1000). */
  credit?: number;
  /** Max unsettled deliveries in flight at the sender (default: credit only, no limit of its own). */
  window?: number;
  /** Default 'tcp'. */
  transport?: BenchTransport;
  /** TLS: PEM file of the CA the server's certificate must chain to. */
  ca?: string;
  /** TLS: SNI and the name the server's certificate must carry (default localhost). */
  servername?: string;
}

/** rhea connection options for one of the bench transports. */
export function rheaConnectOptions(o: { host?: string; port: number; transport?: BenchTransport; ca?: string; servername?: string }): ConnectionOptions {
  const host = o.host ?? '127.0.0.1';
  switch (o.transport ?? 'tcp') {
    case 'tcp':
      return { host, port: o.port, reconnect: false };
    case 'tls':
      // SNI and the name checked: the test server certificate's DNS name (an IP is no SNI name).
      return { host, port: o.port, reconnect: false, transport: 'tls', servername: o.servername ?? 'localhost', ca: o.ca ? [fs.readFileSync(o.ca)] : undefined, rejectUnauthorized: true } as ConnectionOptions;
    case 'ws': {
      const ws = (rhea as unknown as {
        websocket_connect(impl: unknown): (url: string, protocols: string[], options: unknown) => (counter: number) => unknown;
      }).websocket_connect(WebSocket);
      return { host, hostname: host, reconnect: false, connection_details: ws(`ws://${host}:${o.port}/`, ['amqp'], { perMessageDeflate: false }) } as unknown as ConnectionOptions;
    }
  }
}

export function runRheaPerf(opts: RheaPerfOptions): Promise<PerfResult> {
  const n = opts.messages;
  const bodySize = opts.bodySize ?? 100;
  const window = opts.window ?? 0;
  const lat = new Float64Array(n);
  return new Promise((resolve, reject) => {
    const rc = rhea.create_container().connect(rheaConnectOptions(opts));
    const sc = rhea.create_container().connect(rheaConnectOptions(opts));
    let received = 0, accepted = 0, sent = 0;
    let start = 0;
    const filler = Buffer.alloc(bodySize);
    const timer = setTimeout(() => reject(new Error(`rhea perf timed out: sent ${sent} received ${received} accepted ${accepted}`)), 120_000);
    const finish = () => {
      if (received < n || accepted < n) return;
      const seconds = Number(process.hrtime.bigint() - BigInt(start)) / 1e9;
      clearTimeout(timer);
      lat.sort();
      rc.close();
      sc.close();
      resolve({ messages: n, seconds, msgsPerSec: n / seconds, p50Us: percentile(lat, 50), p99Us: percentile(lat, 99), maxUs: lat[n - 1], accepted });
    };
    const receiver = rc.open_receiver({ source: opts.address, credit_window: opts.credit ?? 1000 });
    receiver.on('message', (ctx: EventContext) => {
      const body = (ctx.message as Message).body as Buffer | { content: Buffer };
      const b: Buffer = Buffer.isBuffer(body) ? body : (body as { content: Buffer }).content;
      const t = Number(b.readBigUInt64BE(0));
      lat[received++] = (Number(process.hrtime.bigint()) - t) / 1000;
      finish();
    });
    receiver.on('receiver_open', () => {
      const sender = sc.open_sender({ target: opts.address });
      const pump = () => {
        if (start === 0) start = Number(process.hrtime.bigint());
        while (sender.sendable() && sent < n && (window <= 0 || sent - accepted < window)) {
          const body = Buffer.from(filler);
          body.writeBigUInt64BE(process.hrtime.bigint(), 0);
          sender.send({ body: rhea.message.data_section(body) });
          sent++;
        }
      };
      sender.on('sendable', pump);
      sender.on('accepted', () => {
        accepted++;
        finish();
        if (window > 0 && sent < n) pump();
      });
    });
    rc.on('disconnected', (ctx: EventContext) => ctx.error && reject(ctx.error));
    sc.on('disconnected', (ctx: EventContext) => ctx.error && reject(ctx.error));
  });
}
