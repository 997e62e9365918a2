/**
 * A Node load generator on our own engine (amqp/engine/connection.ts in client mode): the same
 * traffic as the C mesh_perf and bench/rhea-perf.ts (one receiving and one sending connection,
 * 100-byte Data bodies, unsettled, at most `window` unsettled deliveries in flight, the receiver
 * granting `credit` and accepting each message), driven over a net.Socket, a tls.TLSSocket or
 * ws's createWebSocketStream. rhea spends most of its time decoding and encoding messages
 * (~70k msg/s), which hides what the transport costs; this client never decodes a message (it
 * reads its timestamp from the last bytes of the body), so it shows the transport.
 *
 *   const r = await runEnginePerf({ transport: 'tls', port, ca: certs.ca, address: 'q', messages: 200000 });
 *
 * Body bytes 0-7: send time (performance.now() in µs as a float64, big-endian; sender and
 * receiver share the process, so the clock), 8-15: sequence number.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import WebSocket, { createWebSocketStream } from 'ws';
import {
  Connection, type CloseReason, type ConnectionHandler, type InDelivery, type Link, type LinkGoneReason, type OutDelivery, type Session,
} from '../amqp/engine/connection';
import type { AmqpError } from '../amqp/errors';
import { D, STATE, type AttachFrame } from '../amqp/performatives';
import type { BenchTransport, PerfResult } from './rhea-perf';
import { percentile } from './rhea-perf';

export interface EnginePerfOptions {
  transport?: BenchTransport;
  host?: string;
  port: number;
  /** TLS: PEM file of the CA the server's certificate must chain to (default: Node's CAs). */
  ca?: string;
  /** TLS: SNI and the name the server's certificate must carry (default localhost). */
  servername?: string;
  address: string;
  messages: number;
  /** Body bytes (default 100, at least 16). */
  bodySize?: number;
  /** Receiver credit window (default 1000). */
  credit?: number;
  /** Max unsettled deliveries in flight at the sender (default: credit). */
  window?: number;
  /** Give up after this many seconds (default 60). */
  timeoutSec?: number;
}

/** Opens the byte stream of one bench transport; resolves once it can carry AMQP. */
export function openStream(o: { transport?: BenchTransport; host?: string; port: number; ca?: string; servername?: string }): Promise<Duplex> {
  const host = o.host ?? '127.0.0.1';
  return new Promise((resolve, reject) => {
    switch (o.transport ?? 'tcp') {
      case 'tcp': {
        const s = net.connect({ host, port: o.port, noDelay: true });
        s.once('connect', () => resolve(s));
        s.once('error', reject);
        return;
      }
      case 'tls': {
        const s = tls.connect({ host, port: o.port, servername: o.servername ?? 'localhost', ca: o.ca ? fs.readFileSync(o.ca) : undefined, rejectUnauthorized: true });
        s.setNoDelay(true);
        s.once('secureConnect', () => resolve(s));
        s.once('error', reject);
        return;
      }
      case 'ws': {
        const ws = new WebSocket(`ws://${host}:${o.port}/`, ['amqp'], { perMessageDeflate: false });
        ws.once('open', () => {
          const stream = createWebSocketStream(ws);
          resolve(stream);
        });
        ws.once('error', reject);
        return;
      }
    }
  });
}

/** One client connection: engine + stream, output written once per turn (as the router's pump does). */
class ClientConn {
  readonly conn: Connection;
  private scheduled = false;

  constructor(readonly stream: Duplex, handler: ConnectionHandler, id: string, private readonly beforeWrite: () => void, onError: (e: Error) => void) {
    this.conn = new Connection(
      {
        containerId: id, maxFrameSize: 65536, channelMax: 0, idleTimeoutMs: 0, maxMessageSize: 1 << 20, handleMax: 7,
        saslMechanisms: [], requireSasl: false, offeredCapabilities: [], properties: {}, incomingWindow: 65536,
        client: { mechanism: null, hostname: 'localhost' },
      },
      handler,
      Date.now(),
    );
    this.conn.ctx = this;
    stream.on('data', (chunk: Buffer) => {
      this.conn.onBytes(chunk, 0);
      this.schedule();
    });
    stream.on('drain', () => {
      this.conn.writeBlocked = false;
      this.schedule();
    });
    stream.on('error', onError);
    stream.on('close', () => {
      if (!this.conn.closed) {
        this.conn.onSocketClosed('socket-closed');
        onError(new Error(`${id}: connection closed early`));
      }
    });
    this.conn.start();
  }

  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  flush(): void {
    this.scheduled = false;
    this.beforeWrite();
    const out = this.conn.takeOutput();
    if (out !== null && !this.stream.destroyed) {
      if (!this.stream.write(out)) this.conn.writeBlocked = true;
    }
    if (this.conn.closed && !this.stream.destroyed) this.stream.end();
  }
}

/** Runs one measurement: resolves with mesh_perf's figures (rate, latency percentiles). */
export async function runEnginePerf(o: EnginePerfOptions): Promise<PerfResult> {
  const n = o.messages;
  const bodySize = Math.max(16, o.bodySize ?? 100);
  const credit = o.credit ?? 1000;
  const window = o.window ?? credit;
  const lat = new Float64Array(n);
  // The message: one Data section (vbin8 up to 255 bytes, else vbin32); the body is its last bytes.
  const head = bodySize < 256 ? Buffer.from([0x00, 0x53, 0x75, 0xa0, bodySize]) : Buffer.from([0x00, 0x53, 0x75, 0xb0, 0, 0, 0, 0]);
  if (bodySize >= 256) head.writeUInt32BE(bodySize, 4);
  const msg = Buffer.alloc(head.length + bodySize);
  head.copy(msg);
  for (let i = 0; i < bodySize; i++) msg[head.length + i] = 97 + (i % 26);
  const bodyOff = head.length;

  let sent = 0, outcomes = 0, accepted = 0, received = 0, bad = 0;
  let tFirstSend = 0, tLastRecv = 0, tLastOutcome = 0;
  let sender: Link | null = null, receiver: Link | null = null;
  let sc: ClientConn | null = null, rc: ClientConn | null = null;
  let finished = false;

  return new Promise<PerfResult>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`engine perf timed out: sent ${sent} received ${received} outcomes ${outcomes}`)), (o.timeoutSec ?? 60) * 1000);
    const fail = (e: Error) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      sc?.stream.destroy();
      rc?.stream.destroy();
      reject(e);
    };
    const done = () => {
      if (finished || received < n || outcomes < n) return;
      finished = true;
      clearTimeout(timer);
      const seconds = (Math.max(tLastRecv, tLastOutcome) - tFirstSend) / 1e6;
      lat.sort();
      for (const c of [sc!, rc!]) {
        c.conn.close(null, 'client-closed');
        c.flush();
        setTimeout(() => c.stream.destroy(), 1000).unref();
      }
      if (bad > 0) return reject(new Error(`engine perf: ${bad} messages without a readable timestamp`));
      resolve({ messages: n, seconds, msgsPerSec: n / seconds, p50Us: percentile(lat, 50), p99Us: percentile(lat, 99), maxUs: lat[n - 1], accepted });
    };

    const pump = () => {
      const s = sender;
      if (s === null || sc === null) return;
      const conn = sc.conn;
      while (sent < n && sent - outcomes < window && conn.canSend(s)) {
        const t = performance.now() * 1000;
        if (sent === 0) tFirstSend = t;
        msg.writeDoubleBE(t, bodyOff);
        msg.writeDoubleBE(sent, bodyOff + 8);
        conn.send(s, msg, false, null);
        sent++;
      }
    };
    const topUp = (link: Link) => {
      const remaining = n - received;
      const want = Math.min(credit, remaining);
      if (want > link.credit && (link.credit <= credit >> 1 || want === remaining)) link.conn.setCredit(link, want);
    };

    const handler: ConnectionHandler = {
      onOpen: () => undefined,
      onAttach: (link: Link, a: AttachFrame) => link.refuse({ condition: 'amqp:not-allowed', description: 'bench client' }, a),
      onLinkOpened: (link: Link) => {
        if (link === receiver) {
          topUp(link);
          rc!.schedule();
          // The receiver is attached: now the sender (as mesh_perf).
          openStream(o).then((stream) => {
            if (finished) return stream.destroy();
            sc = new ClientConn(stream, handler, `engine-perf-${process.pid}-send`, pump, fail);
            const ssn = sc.conn.beginSession();
            sender = sc.conn.attach(ssn, 'engine-perf-sender', true, { type: 'source', address: null }, { type: 'target', address: o.address }, { sndSettleMode: 0, rcvSettleMode: 0 });
            sc.schedule();
          }, fail);
        }
      },
      onFlow: (link: Link) => {
        if (link === sender) sc!.schedule();
      },
      onDelivery: (link: Link, d: InDelivery) => {
        const t = performance.now() * 1000;
        const p = d.payload;
        // The body is the message's last section (the router adds annotations before it, never a footer).
        const off = p.length - bodySize;
        if (off >= 5 && (bodySize < 256 ? p[off - 1] === bodySize : p.readUInt32BE(off - 4) === bodySize)) {
          const ts = p.readDoubleBE(off);
          if (received < n) lat[received] = t - ts;
        } else bad++;
        received++;
        tLastRecv = t;
        link.conn.updateIn(d, STATE.accepted, true);
        if (received < n) topUp(link);
        rc!.schedule();
        if (received >= n) done();
      },
      onOutcome: (d: OutDelivery, code: number, _state: Buffer | null, settled: boolean) => {
        outcomes++;
        if (code === D.Accepted) accepted++;
        tLastOutcome = performance.now() * 1000;
        if (!settled) d.link.conn.updateOut(d, null, true);
        sc!.schedule();
        if (outcomes >= n) done();
      },
      onSessionWritable: (_s: Session) => sc?.schedule(),
      onInSettled: () => undefined,
      onLinkGone: (link: Link, error: AmqpError | null, reason: LinkGoneReason) => {
        if (!finished) fail(new Error(`link ${link.name} gone (${reason})${error ? `: ${error.condition} ${error.description ?? ''}` : ''}`));
      },
      onClosed: (_c: Connection, reason: CloseReason, error: AmqpError | null) => {
        if (!finished) fail(new Error(`connection closed (${reason})${error ? `: ${error.condition} ${error.description ?? ''}` : ''}`));
      },
      log: (level, msg) => {
        if (level === 'error' || level === 'warning') process.stderr.write(`engine-perf: ${msg}\n`);
      },
    };

    openStream(o).then((stream) => {
      rc = new ClientConn(stream, handler, `engine-perf-${process.pid}-recv`, () => undefined, fail);
      const ssn = rc.conn.beginSession();
      receiver = rc.conn.attach(ssn, 'engine-perf-receiver', false, { type: 'source', address: o.address }, { type: 'target', address: null }, { rcvSettleMode: 0 });
      rc.schedule();
    }, fail);
  });
}
