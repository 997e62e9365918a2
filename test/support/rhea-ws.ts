/**
 * rhea connections over WebSocket (ws:// and wss://), with the `ws` package as rhea's WebSocket
 * implementation (rhea's `websocket_connect`).
 *
 *   const c = await makeCerts(dir);
 *   const { conn, socket, close } = await openRheaWs({ url: `wss://localhost:${port}/`, ca: c.ca });
 *   assert.is(socket()?.protocol, 'amqp');         // the subprotocol the server chose
 *   conn.open_sender('q').send({ body: 'x' });
 *   await close();
 *
 * or, to drive the connection yourself, `connectRheaWs(opts)` (returns the rhea Connection at once)
 * or `rheaWsDetails(opts)` (a `connection_details` for container.connect).
 *
 * Subprotocols: ['amqp'] unless `protocols` says otherwise (qdrouterd's http listener speaks
 * "amqp"; uAMQP asks for "AMQPWSB10"). The ws client fails the handshake when the server picks
 * none of them. TLS material (ca, cert, key) may be file paths or PEM text/Buffers.
 */
import * as fs from 'node:fs';
import type { ClientRequestArgs } from 'node:http';
import rhea = require('rhea');
import WebSocket from 'ws';

export type Pem = string | Buffer;

/** What `new WebSocket(url, protocols, options)` takes here (ws passes TLS options on to tls.connect). */
export type WsClientOptions = WebSocket.ClientOptions & ClientRequestArgs & { servername?: string };

export interface RheaWsOptions {
  /** ws://HOST:PORT/PATH or wss://HOST:PORT/PATH. */
  url: string;
  /** WebSocket subprotocols offered (Sec-WebSocket-Protocol), default ['amqp']; [] offers none. */
  protocols?: string[];
  /** CA(s) that verify a wss server (path or PEM). Without it: Node's default CAs. */
  ca?: Pem | Pem[];
  /** Client certificate and key (path or PEM) for wss client authentication. */
  cert?: Pem;
  key?: Pem;
  passphrase?: string;
  /** Verify the wss server certificate (default true). */
  rejectUnauthorized?: boolean;
  /** TLS SNI / name checked against the certificate (default: the URL's host). */
  servername?: string;
  /** More options for `new WebSocket(url, protocols, options)` (headers, handshakeTimeout, ...). */
  wsOptions?: WsClientOptions;
  /** More rhea connection options (container_id, username/password, sasl mechanisms, idle_time_out...). */
  connection?: Partial<rhea.ConnectionOptions>;
  /** Container to connect from (default: a new one). */
  container?: rhea.Container;
}

export interface RheaWsDetails {
  /** For `container.connect({ connection_details, ... })`. */
  connection_details: (counter: number) => unknown;
  /** The WebSocket of the latest attempt (undefined before the first). */
  socket(): WebSocket | undefined;
}

const pem = (p: Pem): Buffer | string => (Buffer.isBuffer(p) || p.includes('-----BEGIN') ? p : fs.readFileSync(p));

/** The options given to `new WebSocket(url, protocols, options)`. */
export function wsClientOptions(o: RheaWsOptions): WsClientOptions {
  const opts: WsClientOptions = { ...(o.wsOptions ?? {}) };
  if (o.ca !== undefined) opts.ca = (Array.isArray(o.ca) ? o.ca : [o.ca]).map(pem) as Buffer[];
  if (o.cert !== undefined) opts.cert = pem(o.cert);
  if (o.key !== undefined) opts.key = pem(o.key);
  if (o.passphrase !== undefined) opts.passphrase = o.passphrase;
  if (o.rejectUnauthorized !== undefined) opts.rejectUnauthorized = o.rejectUnauthorized;
  if (o.servername !== undefined) opts.servername = o.servername;
  return opts;
}

/** A `connection_details` that makes rhea connect over a `ws` WebSocket to o.url. */
export function rheaWsDetails(o: RheaWsOptions): RheaWsDetails {
  let last: WebSocket | undefined;
  // rhea calls `new Impl(url, protocols, options)`: record the instance
  class Recording extends WebSocket {
    constructor(url: string, protocols?: string | string[], options?: WebSocket.ClientOptions) {
      super(url, protocols, options);
      last = this; // eslint-disable-line @typescript-eslint/no-this-alias
    }
  }
  const container = o.container ?? rhea.create_container();
  // rhea's typings: websocket_connect(impl) => (url, protocols, options) => connection_details
  const factory = (container as unknown as {
    websocket_connect(impl: unknown): (url: string, protocols: string[], options: unknown) => (counter: number) => unknown;
  }).websocket_connect(Recording);
  const details = factory(o.url, o.protocols ?? ['amqp'], wsClientOptions(o));
  return { connection_details: details, socket: () => last };
}

/** rhea connection options for o (reconnect off, open-frame hostname = the URL's host). */
export function rheaWsConnectionOptions(o: RheaWsOptions): rhea.ConnectionOptions & { socket(): WebSocket | undefined } {
  const d = rheaWsDetails(o);
  const host = new URL(o.url).hostname.replace(/^\[|\]$/g, '');
  return {
    host,
    hostname: host,
    reconnect: false,
    ...(o.connection ?? {}),
    connection_details: d.connection_details,
    socket: d.socket,
  } as unknown as rhea.ConnectionOptions & { socket(): WebSocket | undefined };
}

export interface RheaWsConnection {
  container: rhea.Container;
  conn: rhea.Connection;
  /** The WebSocket (after the handshake: `.protocol` is the chosen subprotocol). */
  socket(): WebSocket | undefined;
}

/** Starts a connection over WebSocket; returns at once (listen for connection_open / disconnected). */
export function connectRheaWs(o: RheaWsOptions): RheaWsConnection {
  const container = o.container ?? rhea.create_container({ id: `rhea-ws-${process.pid}-${Math.random().toString(36).slice(2, 8)}` });
  const options = rheaWsConnectionOptions({ ...o, container });
  const conn = container.connect(options);
  return { container, conn, socket: options.socket };
}

/**
 * Connects over WebSocket and resolves once the AMQP connection is open; rejects with the reason
 * (TLS error, refused handshake, SASL failure, close frame...) otherwise, or after `timeoutMs`.
 */
export function openRheaWs(o: RheaWsOptions, timeoutMs = 10000): Promise<RheaWsConnection & { close(): Promise<void> }> {
  const c = connectRheaWs(o);
  return new Promise((resolve, reject) => {
    const ev = c.conn as unknown as NodeJS.EventEmitter;
    const done = (err?: Error) => {
      clearTimeout(timer);
      for (const [name, fn] of handlers) ev.removeListener(name, fn);
      if (err) {
        ev.on('disconnected', () => undefined); // else rhea logs the dead connection's later events
        try {
          c.socket()?.terminate();
        } catch {
          /* already gone */
        }
        reject(err);
      } else resolve({ ...c, close: () => closeRheaWs(c) });
    };
    const failure = (what: string) => (ctx: rhea.EventContext) => {
      const e = (ctx as unknown as { error?: unknown }).error ?? ctx.connection?.error;
      const text = describe(e);
      done(new Error(`${o.url}: ${what}${text ? `: ${text}` : ''}`));
    };
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const handlers: [string, (ctx: any) => void][] = [
      ['connection_open', () => done()],
      ['disconnected', failure('disconnected')],
      ['connection_error', failure('connection error')],
      ['connection_close', failure('closed by the peer')],
      ['protocol_error', failure('protocol error')],
    ];
    for (const [name, fn] of handlers) ev.on(name, fn);
    const timer = setTimeout(() => done(new Error(`${o.url}: no AMQP open within ${timeoutMs} ms`)), timeoutMs);
  });
}

/** Text of what rhea reports: an Error, ws's ErrorEvent/CloseEvent, or an AMQP error condition. */
function describe(e: unknown): string {
  if (!e) return '';
  if (e instanceof Error) return e.message;
  const x = e as { message?: string; error?: { message?: string }; condition?: string; description?: string; code?: number; reason?: string };
  if (x.error?.message) return x.error.message;
  if (x.message) return x.message;
  if (x.condition) return `${x.condition}${x.description ? `: ${x.description}` : ''}`;
  if (x.code !== undefined) return `WebSocket closed (${x.code}${x.reason ? ` ${x.reason}` : ''})`;
  return JSON.stringify(e);
}

/** Closes the AMQP connection (close frame, up to 3 s for the peer's), then the WebSocket. */
export async function closeRheaWs(c: RheaWsConnection): Promise<void> {
  const ev = c.conn as unknown as NodeJS.EventEmitter;
  if (c.conn.is_open()) {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 3000);
      const fin = () => {
        clearTimeout(t);
        resolve();
      };
      ev.once('connection_close', fin);
      ev.once('disconnected', fin);
      c.conn.close();
    });
  }
  const s = c.socket();
  if (s && s.readyState !== WebSocket.CLOSED) s.terminate();
}
