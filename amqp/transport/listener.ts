/**
 * A listener of the router or the broker: one TCP port serving AMQP over TCP, TLS (qdrouterd's
 * `sslProfile`, with `requireSsl: no` detecting TLS from the first byte) and WebSocket (`http:
 * yes`, plain or over TLS), handing each finished handshake to the application as a
 * {@link Transport}. Refusals (bad certificate, plain AMQP on a requireSsl port, a handshake past
 * the deadline, HTTP that is not an upgrade) are logged with the listener and the peer, and the
 * socket is destroyed; nobody else is affected.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import * as http from 'node:http';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { WebSocketServer, createWebSocketStream, type WebSocket } from 'ws';
import type { Logger } from '../../lib/log';
import { PLAIN_LISTENER, type ListenerTransport } from './settings';
import { computeUid, secureContextOptions } from './tls';

/** The subject of a DER certificate as node prints it (fields in certificate order), or undefined. */
function subjectText(raw: Buffer): string | undefined {
  try {
    return new crypto.X509Certificate(raw).subject;
  } catch {
    return undefined;
  }
}
import { peerOf, type Transport } from './transport';

/** WebSocket subprotocols for AMQP, in our order of preference (qdrouterd and Azure's names). */
export const WS_SUBPROTOCOLS = ['amqp', 'AMQPWSB10', 'binary'] as const;

/** What a listener needs: where, and how (transport). */
export interface ListenerSpec {
  name: string;
  host: string;
  port: number;
  /** Largest AMQP frame accepted: bounds one WebSocket message (4 frames' worth, at least 1 MiB). */
  maxFrameSize: number;
  transport: ListenerTransport;
}

/** Called with each connection ready for AMQP; `deadline` (ms since epoch, 0 none) bounds the AMQP handshake. */
export type OnTransport = (t: Transport, deadline: number) => void;

const HTTP_METHODS = ['GET ', 'POST ', 'PUT ', 'HEAD ', 'DELETE ', 'OPTIONS ', 'PATCH ', 'CONNECT ', 'TRACE '];

/** An HTTP method at the start of a request (a WebSocket upgrade is a GET). */
function looksLikeHttp(b: Buffer): boolean {
  const s = b.toString('latin1', 0, Math.min(8, b.length));
  return HTTP_METHODS.some((m) => s.startsWith(m));
}

/** Whether the first bytes suffice to tell TLS, AMQP and HTTP apart (an HTTP method may still be arriving). */
function decided(b: Buffer): boolean {
  if (b[0] === 0x16) return true;
  const s = b.toString('latin1', 0, Math.min(8, b.length));
  return !HTTP_METHODS.some((m) => m.startsWith(s) && s.length < m.length);
}

const sha = (alg: string, data: Buffer): string => crypto.createHash(alg).update(data).digest('hex');

/** One listening port. */
export class Listener {
  private server: net.Server | null = null;
  private readonly tlsServer: tls.Server | null;
  private readonly httpServer: http.Server | null;
  private readonly wss: WebSocketServer | null;
  /** Sockets not yet handed over (handshakes in progress), destroyed by {@link close}. */
  private readonly pending = new Set<net.Socket>();
  /** Each accepted socket's handshake deadline (0: none), counted once from the accept. */
  private readonly deadlines = new WeakMap<net.Socket, number>();
  /** Where it listens (port 0 resolved) once {@link listen} resolved. */
  host = '';
  port = 0;

  constructor(readonly spec: ListenerSpec, private readonly onTransport: OnTransport, private readonly logger: Logger, private readonly metrics: (() => string) | null = null) {
    const t = spec.transport;
    this.tlsServer = t.tls
      ? tls.createServer({
        ...secureContextOptions(t.tls),
        requestCert: t.verifyClient,
        // Checked after the handshake, so the refusal can be logged with its reason; except on an
        // https listener that authenticates peers, where (as qdrouterd's) the handshake itself
        // fails, so HTTPS clients see a TLS alert rather than a closed connection.
        rejectUnauthorized: t.http !== undefined && t.verifyClient,
        // The listener's own deadline covers the handshake.
        handshakeTimeout: 2 ** 31 - 1,
      })
      : null;
    this.tlsServer?.on('tlsClientError', (e, s) => this.refuse(s, (e as NodeJS.ErrnoException).code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE'
      ? 'no client certificate (this https listener authenticates peers): TLS handshake failed'
      : `TLS handshake failed: ${e.message}`));
    this.tlsServer?.on('secureConnection', (s) => this.onSecure(s));
    if (t.websockets || t.http !== undefined) {
      this.httpServer = http.createServer((req, res) => this.onHttpRequest(req, res));
      this.httpServer.on('clientError', (e, s) => {
        if (s.writable) s.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
        this.logger.log('HTTP', 'info', `listener ${spec.name}: ${peerOf(s as net.Socket)}: bad HTTP request: ${e.message}`);
        s.destroy();
      });
      this.httpServer.on('upgrade', (req, socket, head) => {
        if (t.websockets) return this.onUpgrade(req, socket as net.Socket, head);
        (socket as net.Socket).end('HTTP/1.1 404 Not Found\r\nconnection: close\r\n\r\n');
      });
      this.wss = !t.websockets ? null : new WebSocketServer({
        noServer: true,
        perMessageDeflate: false,
        maxPayload: Math.max(1 << 20, 4 * spec.maxFrameSize),
        handleProtocols: (offered) => {
          for (const p of WS_SUBPROTOCOLS) if (offered.has(p)) return p;
          return false;
        },
      });
    } else {
      this.httpServer = null;
      this.wss = null;
    }
  }

  /** Starts listening; resolves once bound. Logs "Listening on HOST:PORT (listener NAME)" (tests and `up` read it). */
  async listen(): Promise<void> {
    const server = net.createServer({ noDelay: true }, (s) => this.onAccept(s));
    this.server = server;
    server.on('error', (e) => this.logger.log('SERVER', 'error', `listener ${this.spec.name}: ${e.message}`));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.spec.port, this.spec.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address() as net.AddressInfo;
    this.host = addr.address;
    this.port = addr.port;
    const t = this.spec.transport;
    const kinds = [t.tls ? (t.requireSsl ? 'amqps' : 'amqp+amqps') : 'amqp', ...(t.websockets ? [t.tls ? 'wss' : 'ws'] : [])];
    this.logger.log('SERVER', 'notice', `Listening on ${addr.address}:${addr.port} (listener ${this.spec.name}${kinds.length > 1 || t.tls ? `: ${kinds.join(', ')}` : ''})`);
  }

  /** Stops accepting and drops handshakes in progress (handed-over connections are the application's). */
  close(): void {
    this.server?.close();
    this.httpServer?.closeAllConnections();
    for (const s of this.pending) s.destroy();
    this.pending.clear();
  }

  private onAccept(socket: net.Socket): void {
    const t = this.spec.transport;
    const deadline = t.initialHandshakeTimeoutSeconds > 0 ? Date.now() + t.initialHandshakeTimeoutSeconds * 1000 : 0;
    if (!t.tls && this.httpServer === null) {
      // Plain AMQP only: straight to the engine, which answers anything else itself.
      this.onTransport({ kind: 'tcp', stream: socket, peer: peerOf(socket), externalId: null }, deadline);
      return;
    }
    this.pending.add(socket);
    this.deadlines.set(socket, deadline);
    const peer = peerOf(socket);
    socket.on('close', () => this.pending.delete(socket));
    socket.on('error', (e) => this.logger.log('SERVER', 'debug', `listener ${this.spec.name}: ${peer}: ${e.message}`));
    if (deadline > 0) {
      const timer = setTimeout(() => {
        if (this.pending.has(socket)) this.refuse(socket, `handshake not finished within ${t.initialHandshakeTimeoutSeconds} s`, peer);
      }, deadline - Date.now());
      timer.unref();
      socket.on('close', () => clearTimeout(timer));
    }
    this.peek(socket, (first) => {
      if (first[0] === 0x16) {
        if (!this.tlsServer) return this.refuse(socket, 'TLS handshake on a listener without sslProfile', peer);
        this.tlsServer.emit('connection', socket);
        return;
      }
      if (t.tls && t.requireSsl) {
        const what = first.toString('latin1', 0, 4) === 'AMQP' ? 'plain AMQP' : looksLikeHttp(first) ? 'plain HTTP' : 'not TLS';
        return this.refuse(socket, `${what} on a listener that requires TLS (requireSsl)`, peer);
      }
      this.serve(socket, socket, first, 'tcp', null, deadline);
    });
  }

  /**
   * Reads the first bytes without consuming them, until they tell what is coming (TLS, AMQP or an
   * HTTP request line, however the peer splits them), then calls `then` with them.
   */
  private peek(s: net.Socket | tls.TLSSocket, then: (first: Buffer) => void): void {
    let seen: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      if (!decided(seen)) return;
      s.off('data', onData);
      s.pause();
      s.unshift(seen);
      then(seen);
    };
    s.on('data', onData);
  }

  private onSecure(s: tls.TLSSocket): void {
    const raw = (s as unknown as { _parent?: net.Socket })._parent;
    const peer = peerOf(raw ?? s);
    let externalId: string | null = null;
    if (this.spec.transport.verifyClient) {
      const cert = s.getPeerCertificate();
      if (!cert || !cert.raw) {
        this.refuse(s, 'no client certificate (SASL EXTERNAL is offered, so one is required)', peer, raw);
        return;
      }
      if (!s.authorized) {
        this.refuse(s, `client certificate ${cert.subject?.CN ?? '(no CN)'} refused: ${s.authorizationError ?? 'not verified'}`, peer, raw);
        return;
      }
      externalId = computeUid({ subject: cert.subject as CertSubject, raw: cert.raw, subjectText: subjectText(cert.raw) }, this.spec.transport.tls?.uidFormat, sha, this.spec.transport.tls?.uidNames);
    }
    const t = this.spec.transport;
    const deadline = raw ? this.deadlines.get(raw) ?? 0 : 0;
    if (this.httpServer === null) {
      this.handOver(raw, { kind: 'tls', stream: s, peer, externalId }, deadline);
      return;
    }
    this.peek(s, (first) => this.serve(s, raw ?? s, first, 'tls', externalId, deadline));
  }

  /** After detection: HTTP to the WebSocket server, AMQP to the application. */
  private serve(s: net.Socket | tls.TLSSocket, raw: net.Socket, first: Buffer, kind: 'tcp' | 'tls', externalId: string | null, deadline: number): void {
    if (this.httpServer && looksLikeHttp(first)) {
      (s as SocketWithIds).amqpExternalId = externalId;
      this.httpServer.emit('connection', s);
      s.resume();
      return;
    }
    s.resume();
    this.handOver(raw, { kind, stream: s, peer: peerOf(raw), externalId }, deadline);
  }

  /**
   * An HTTP request that is not a WebSocket upgrade: qdrouterd's pages of an http listener
   * (`/healthz`, `/metrics`, files under httpRootDir), else 404. GET and HEAD only.
   */
  private onHttpRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const pages = this.spec.transport.http;
    const peer = peerOf(req.socket);
    const answer = (status: number, body: string, type = 'text/plain'): void => {
      // An error closes the connection (a client probing for pages gets no keep-alive).
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), ...(status >= 400 ? { connection: 'close' } : {}) });
      res.end(req.method === 'HEAD' ? undefined : body);
      if (status >= 400) this.logger.log('HTTP', 'info', `listener ${this.spec.name}: ${peer}: ${req.method} ${req.url}: ${status}`);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return answer(405, 'Method Not Allowed\n');
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      return answer(400, 'Bad Request\n');
    }
    if (pages?.healthz && path === '/healthz') return answer(200, 'OK\n');
    if (pages?.metrics && path === '/metrics' && this.metrics !== null) return answer(200, this.metrics());
    if (pages?.rootDir) return this.serveFile(pages.rootDir, path, req, res, answer);
    answer(404, this.spec.transport.websockets ? `Not Found: ${this.spec.name} serves AMQP over WebSocket (subprotocols ${WS_SUBPROTOCOLS.join(', ')})\n` : 'Not Found\n');
  }

  /** A file under `root` (never above it), index.html for a directory, streamed. */
  private serveFile(root: string, path: string, req: http.IncomingMessage, res: http.ServerResponse, answer: (status: number, body: string) => void): void {
    // Resolved under the root: `..` cannot climb out of it.
    const file = nodePath.resolve(root, `.${path}`);
    if (file !== root && !file.startsWith(root + nodePath.sep)) return answer(404, 'Not Found\n');
    fs.stat(file, (e, st) => {
      if (e) return answer(404, 'Not Found\n');
      const target = st.isDirectory() ? nodePath.join(file, 'index.html') : file;
      fs.stat(target, (e2, st2) => {
        if (e2 || !st2.isFile()) return answer(404, 'Not Found\n');
        res.writeHead(200, { 'content-type': MIME_TYPES[nodePath.extname(target).toLowerCase()] ?? 'application/octet-stream', 'content-length': st2.size });
        if (req.method === 'HEAD') return res.end();
        const stream = fs.createReadStream(target);
        stream.on('error', () => res.destroy());
        stream.pipe(res);
      });
    });
  }

  private onUpgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    const wss = this.wss!;
    const secure = socket instanceof tls.TLSSocket;
    const raw = secure ? (socket as unknown as { _parent?: net.Socket })._parent ?? socket : socket;
    const peer = peerOf(raw);
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      if (!ws.protocol) {
        this.logger.log('HTTP', 'info', `listener ${this.spec.name}: ${peer}: WebSocket without an AMQP subprotocol (offered: ${req.headers['sec-websocket-protocol'] ?? 'none'}); closing`);
        ws.close(1002, `subprotocol required: ${WS_SUBPROTOCOLS.join(', ')}`);
        return;
      }
      ws.on('error', (e) => this.logger.log('HTTP', 'info', `listener ${this.spec.name}: ${peer}: WebSocket: ${e.message}`));
      const stream = createWebSocketStream(ws);
      stream.on('error', () => { /* reported by ws's own error event above */ });
      const deadline = this.deadlines.get(raw) ?? 0;
      this.handOver(raw, { kind: secure ? 'wss' : 'ws', stream, peer, externalId: (socket as SocketWithIds).amqpExternalId ?? null }, deadline);
    });
  }

  private handOver(raw: net.Socket | undefined, t: Transport, deadline: number): void {
    if (raw) this.pending.delete(raw);
    this.onTransport(t, deadline);
  }

  private refuse(s: net.Socket | tls.TLSSocket, why: string, peer?: string, raw?: net.Socket): void {
    const p = peer ?? peerOf((s as unknown as { _parent?: net.Socket })._parent ?? s);
    this.logger.log('SERVER', 'warning', `listener ${this.spec.name}: refused ${p}: ${why}`);
    s.destroy();
    raw?.destroy();
  }
}

/** Content types of the files an http listener serves (others: application/octet-stream). */
const MIME_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html', '.htm': 'text/html', '.txt': 'text/plain', '.css': 'text/css', '.js': 'text/javascript', '.json': 'application/json',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon', '.woff2': 'font/woff2',
};

type CertSubject = Partial<Record<'C' | 'ST' | 'L' | 'O' | 'OU' | 'CN', string | string[]>>;
type SocketWithIds = (net.Socket | tls.TLSSocket) & { amqpExternalId?: string | null };

/**
 * Opens a listener for each of an application's listener settings (plain TCP where `transport`
 * is absent), in order; each connection goes to `accept` with its settings.
 */
export async function openListeners<L extends Omit<ListenerSpec, 'transport'> & { transport?: ListenerTransport }>(
  settings: readonly L[],
  accept: (t: Transport, deadline: number, l: L) => void,
  logger: Logger,
  metrics: (() => string) | null = null,
): Promise<Listener[]> {
  const out: Listener[] = [];
  for (const l of settings) {
    const listener = new Listener(
      { name: l.name, host: l.host, port: l.port, maxFrameSize: l.maxFrameSize, transport: l.transport ?? PLAIN_LISTENER },
      (t, deadline) => accept(t, deadline, l),
      logger,
      metrics,
    );
    await listener.listen();
    out.push(listener);
  }
  return out;
}
