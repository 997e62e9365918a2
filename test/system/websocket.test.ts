// AMQP over WebSocket (`listener { http: yes }`, README "Configuration reference") on the router
// and the broker: rhea over ws:// and wss:// (test/support/rhea-ws.ts, the `ws` package), raw
// HTTP and raw WebSocket clients for what must be refused, and plain AMQP on the same port.
//
//   router R1
//     listener plain          plain AMQP (well-behaved peers)
//     listener ws             http: yes                          (ws + plain AMQP), deadline 2 s
//     listener wss            http: yes, sslProfile, requireSsl  (wss + TLS AMQP), deadline 2 s
//     listener ws-big         http: yes, maxFrameSize 1 MiB      (WebSocket message limit 4 MiB)
//     listener wss-external   http: yes, sslProfile, EXTERNAL    (client certificate over wss)
//     listener ws-mixed       http: yes, sslProfile, requireSsl no (ws, wss, TCP and TLS AMQP on one port)
//
//   broker B1: listener plain, listener ws (http: yes), listener wss (http: yes, sslProfile)
//
// A WebSocket message may be at most max(1 MiB, 4 x maxFrameSize) bytes (amqp/transport/listener.ts).
// @runs-alone: handshake deadlines are asserted to the second.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import rhea = require('rhea');
import WebSocket from 'ws';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { AMQP_HEADER } from '../../amqp/frames';
import { RunningRouter, startRouter } from '../support/router';
import { RunningBroker, startBroker, tempDir } from '../support/broker';
import { Certs, makeCertsSync } from '../support/certs';
import { openRheaWs, RheaWsOptions } from '../support/rhea-ws';
import { GoodPeer, everyoneElseWorks } from '../wire/helpers';
import { collect, once, outcomes, rheaConnect, waitFor, waitSendable } from './helpers';

const certs: Certs = makeCertsSync(path.join(os.tmpdir(), 'amqp-mesh-test-certs'));
const CA = fs.readFileSync(certs.ca);
const MIB = 1 << 20;

function profile(name: string, attrs: Record<string, string>): string {
  return `sslProfile {\n    name: ${name}\n${Object.entries(attrs).map(([k, v]) => `    ${k}: ${v}\n`).join('')}}\n`;
}
function listener(name: string, attrs: Record<string, string> = {}): string {
  return `listener {\n    name: ${name}\n    host: 127.0.0.1\n    port: 0\n${Object.entries(attrs).map(([k, v]) => `    ${k}: ${v}\n`).join('')}}\n`;
}
const SERVER = { certFile: certs.server.cert, privateKeyFile: certs.server.key, caCertFile: certs.ca, uidFormat: 'n' };

/** An http listener's root directory (httpRootDir): a file, a directory with an index, and a secret beside the root. */
const PAGES_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'amqp-mesh-pages-'));
fs.mkdirSync(path.join(PAGES_DIR, 'root', 'console'), { recursive: true });
fs.writeFileSync(path.join(PAGES_DIR, 'root', 'hello.txt'), 'HTTP test\n');
fs.writeFileSync(path.join(PAGES_DIR, 'root', 'console', 'index.html'), '<html>console</html>\n');
fs.writeFileSync(path.join(PAGES_DIR, 'secret.txt'), 'not served\n');

const ROUTER_LISTENERS = ['plain', 'ws', 'wss', 'ws-big', 'wss-external', 'ws-mixed', 'pages'] as const;
type RouterListener = (typeof ROUTER_LISTENERS)[number];
const ROUTER_CONFIG =
  'router {\n    mode: standalone\n    id: R1\n}\n' +
  'address {\n    prefix: closest\n    distribution: closest\n}\n' +
  profile('server', SERVER) +
  listener('plain', { saslMechanisms: 'ANONYMOUS PLAIN' }) +
  listener('ws', { http: 'yes', saslMechanisms: 'ANONYMOUS PLAIN', initialHandshakeTimeoutSeconds: '2' }) +
  listener('wss', { http: 'yes', sslProfile: 'server', requireSsl: 'yes', saslMechanisms: 'ANONYMOUS PLAIN', initialHandshakeTimeoutSeconds: '2' }) +
  listener('ws-big', { http: 'yes', maxFrameSize: String(MIB) }) +
  listener('wss-external', { http: 'yes', sslProfile: 'server', requireSsl: 'yes', authenticatePeer: 'yes', saslMechanisms: 'EXTERNAL' }) +
  listener('ws-mixed', { http: 'yes', sslProfile: 'server', requireSsl: 'no' }) +
  listener('pages', { httpRootDir: path.join(PAGES_DIR, 'root'), websockets: 'no' });

let r: RunningRouter;
const port = {} as Record<RouterListener, number>;

test.before(async () => {
  r = await startRouter(ROUTER_CONFIG, { listeners: ROUTER_LISTENERS.length });
  ROUTER_LISTENERS.forEach((name, i) => { port[name] = r.ports[i]; });
});

test.after(async () => {
  if (r) assert.is(await r.stop(), 0, 'router exits 0 on SIGTERM');
});

const open: { close(): unknown }[] = [];
test.after.each(async () => {
  for (const c of open.splice(0)) await c.close();
});

// ------------------------------------------------------------------------------------------
// Clients

interface Amqp { conn: rhea.Connection }

/** rhea over WebSocket to `p` (ws:// or wss:// verified against the test CA, name localhost). */
async function rheaWs(p: number, secure: boolean, o: Partial<RheaWsOptions> = {}): Promise<Amqp & { protocol: string | undefined }> {
  const c = await openRheaWs({ url: `${secure ? 'wss' : 'ws'}://127.0.0.1:${p}/`, ...(secure ? { ca: CA, servername: 'localhost' } : {}), ...o });
  open.push(c);
  return { conn: c.conn, protocol: c.socket()?.protocol };
}

async function rheaTcp(p: number, options: Partial<rhea.ConnectionOptions> = {}): Promise<Amqp> {
  const c = await rheaConnect({ port: p }, 0, options);
  open.push(c);
  return c;
}

/** `n` messages from `tx` to `rx` on `address`: all received in order, all accepted. */
async function exchange(tx: Amqp, rx: Amqp, address: string, n = 3, body = (i: number): unknown => `${address} #${i}`): Promise<void> {
  const receiver = rx.conn.open_receiver({ source: { address }, credit_window: 10 });
  const got = collect(receiver);
  await once(receiver as never, 'receiver_open');
  const sender = tx.conn.open_sender({ target: { address } });
  const seen = outcomes(sender);
  await waitSendable(sender);
  const bodies = Array.from({ length: n }, (_, i) => body(i));
  for (const b of bodies) sender.send({ body: b });
  await waitFor(() => got.messages.length === n && seen.accepted === n, 10_000, `${n} messages on ${address} received and accepted`);
  assert.equal(got.messages.map((m) => m.body), bodies, `messages on ${address} arrive intact and in order`);
  sender.close();
  receiver.close();
}

/** A raw WebSocket (the `ws` package); resolves once open, with what it received and how it closed. */
interface RawWs {
  ws: WebSocket;
  received: Buffer[];
  closed: Promise<{ code: number; reason: string }>;
  error: Error | null;
}

function rawWs(p: number, secure: boolean, protocols: string[]): Promise<RawWs> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${secure ? 'wss' : 'ws'}://127.0.0.1:${p}/`, protocols, (secure ? { ca: CA, servername: 'localhost' } : {}) as WebSocket.ClientOptions);
    const x: RawWs = { ws, received: [], error: null, closed: new Promise((res) => ws.on('close', (code, reason) => res({ code, reason: reason.toString() }))) };
    ws.on('message', (d: Buffer) => x.received.push(d));
    ws.on('error', (e) => { x.error = e; reject(e); });
    ws.once('open', () => resolve(x));
    open.push({ close: () => ws.terminate() });
  });
}

/** Sends `request` on a raw TCP (or TLS) socket; resolves with everything received once the router closes it. */
function rawRequest(p: number, request: Buffer | string, secure = false, ms = 5000): Promise<{ response: string; localPort: number }> {
  return new Promise((resolve, reject) => {
    const s: net.Socket = secure
      ? tls.connect({ host: '127.0.0.1', port: p, ca: CA, servername: 'localhost' })
      : net.connect({ host: '127.0.0.1', port: p });
    const chunks: Buffer[] = [];
    let localPort = 0;
    s.on(secure ? 'secureConnect' : 'connect', () => { localPort = s.localPort!; s.write(request); });
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', () => { /* a reset ends it as well */ });
    const t = setTimeout(() => { s.destroy(); reject(new Error(`the router did not close the connection within ${ms} ms; got ${JSON.stringify(Buffer.concat(chunks).toString('latin1'))}`)); }, ms);
    s.on('close', () => { clearTimeout(t); resolve({ response: Buffer.concat(chunks).toString('latin1'), localPort }); });
  });
}

function fdCount(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

function logSince(mark: number, who: { log: string[] } = r): string {
  return who.log.slice(mark).join('\n');
}

async function logged(re: RegExp, mark: number, who: { log: string[] } = r, ms = 5000): Promise<string> {
  let line: string | undefined;
  await waitFor(() => (line = who.log.slice(mark).find((l) => re.test(l))), ms, `a log line matching ${re}`);
  return line!;
}

// ------------------------------------------------------------------------------------------
// Serving

// rhea ws:// --\                      /--> rhea wss://
//               >--> [R1 ws | wss] --<
// rhea TCP ----/                      \--> rhea ws://
test('rhea over ws:// and wss:// sends and receives, with each other and with plain TCP clients; the subprotocol is amqp', async () => {
  const mark = r.log.length;
  const ws = await rheaWs(port.ws, false);
  const wss = await rheaWs(port.wss, true);
  const tcp = await rheaTcp(port.plain);
  assert.is(ws.protocol, 'amqp', 'the router chose the amqp subprotocol (ws)');
  assert.is(wss.protocol, 'amqp', 'the router chose the amqp subprotocol (wss)');
  await exchange(ws, wss, 'closest/ws-to-wss');
  await exchange(wss, ws, 'closest/wss-to-ws');
  await exchange(tcp, ws, 'closest/tcp-to-ws');
  await exchange(ws, tcp, 'closest/ws-to-tcp');
  // Bodies bigger than one frame (16 KiB) travel whole, both ways.
  await exchange(ws, wss, 'closest/ws-big-bodies', 2, (i) => Buffer.alloc(100_000 + i, i + 1));
  const log = logSince(mark);
  assert.match(log, /Accepted connection from 127\.0\.0\.1:\d+ on ws \(ws\)/);
  assert.match(log, /Accepted connection from 127\.0\.0\.1:\d+ on wss \(wss\)/);
});

// rhea ws:// offering only AMQPWSB10 (uAMQP) / only binary --> [R1 ws]
test('the other AMQP subprotocols (AMQPWSB10, binary) are accepted when offered alone', async () => {
  for (const protocol of ['AMQPWSB10', 'binary']) {
    const a = await rheaWs(port.ws, false, { protocols: [protocol] });
    const b = await rheaWs(port.wss, true, { protocols: [protocol] });
    assert.is(a.protocol, protocol);
    assert.is(b.protocol, protocol);
    await exchange(a, b, `closest/subprotocol-${protocol}`);
  }
});

// rhea wss:// with alice's certificate, SASL EXTERNAL --> [R1 wss-external]
test('wss with a client certificate: SASL EXTERNAL makes the certificate\'s uid the user', async () => {
  const mark = r.log.length;
  const external = () => {
    const m = (rhea as unknown as { sasl: { client_mechanisms(): { enable_external(): void } } }).sasl.client_mechanisms();
    m.enable_external();
    return m;
  };
  const opts = { cert: certs.client.cert, key: certs.client.key };
  const a = await rheaWs(port['wss-external'], true, { ...opts, connection: { sasl_mechanisms: external() } as never });
  const b = await rheaWs(port['wss-external'], true, { ...opts, connection: { sasl_mechanisms: external() } as never });
  await exchange(a, b, 'closest/wss-external');
  const log = logSince(mark);
  assert.match(log, /Accepted connection from 127\.0\.0\.1:\d+ on wss-external \(wss, certificate alice\)/);
  assert.match(log, /Connection open: container-id [^,]+, user alice$/m);
  // Without a certificate the TLS connection is refused before any HTTP.
  const m2 = r.log.length;
  const res = await rawRequest(port['wss-external'], 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', true).catch((e: Error) => ({ response: `error ${e.message}`, localPort: 0 }));
  assert.not.match(res.response, /HTTP\/1\.1/, 'no HTTP answer without a client certificate');
  await logged(/listener wss-external: refused 127\.0\.0\.1:\d+: no client certificate/, m2);
});

// good peer (raw AMQP) --> [R1 ws]  (an http listener still takes plain AMQP)
// rhea TLS (no WebSocket) --> [R1 wss]
test('plain AMQP on an http listener still works (TCP on ws, TLS on wss)', async () => {
  const good = await GoodPeer.start(port.ws, 'closest/plain-on-ws');
  open.push({ close: () => good.close() });
  await good.roundTrip();
  await good.roundTrip();
  const mark = r.log.length;
  const tlsOpts = { transport: 'tls', ca: CA, servername: 'localhost' } as unknown as Partial<rhea.ConnectionOptions>;
  const a = await rheaTcp(port.wss, tlsOpts);
  const b = await rheaTcp(port.wss, tlsOpts);
  await exchange(a, b, 'closest/tls-on-wss');
  assert.match(logSince(mark), /Accepted connection from 127\.0\.0\.1:\d+ on wss \(tls\)/);
  // rhea over TCP and rhea over WebSocket on the same http port, with each other.
  const plainOnWs = await rheaTcp(port.ws);
  const ws = await rheaWs(port.ws, false);
  await exchange(ws, plainOnWs, 'closest/ws-to-tcp-same-port');
  await exchange(plainOnWs, ws, 'closest/tcp-to-ws-same-port');
});

// rhea ws:// , rhea wss:// , rhea TCP , rhea TLS --> [R1 ws-mixed] (one port) --> each other
test('http + sslProfile + requireSsl no: ws, wss, plain AMQP and TLS AMQP all on one port', async () => {
  const mark = r.log.length;
  const tlsOpts = { transport: 'tls', ca: CA, servername: 'localhost' } as unknown as Partial<rhea.ConnectionOptions>;
  const ws = await rheaWs(port['ws-mixed'], false);
  const wss = await rheaWs(port['ws-mixed'], true);
  const tcp = await rheaTcp(port['ws-mixed']);
  const tlsc = await rheaTcp(port['ws-mixed'], tlsOpts);
  await exchange(ws, wss, 'closest/mixed-ws-wss');
  await exchange(wss, tcp, 'closest/mixed-wss-tcp');
  await exchange(tcp, tlsc, 'closest/mixed-tcp-tls');
  await exchange(tlsc, ws, 'closest/mixed-tls-ws');
  const log = logSince(mark);
  for (const kind of ['ws', 'wss', 'tls']) assert.match(log, new RegExp(`Accepted connection from 127\\.0\\.0\\.1:\\d+ on ws-mixed \\(${kind}\\)`), kind);
  assert.match(log, /Accepted connection from 127\.0\.0\.1:\d+ on ws-mixed$/m, 'plain TCP');
});

// raw TCP: the upgrade request in pieces ("GE", "T / HTTP/1.1 ...") --> [R1 ws]: still a WebSocket
test('an upgrade request whose first TCP segment is shorter than the method (e.g. "GE") still upgrades', async () => {
  // The listener must wait for enough bytes to tell HTTP from AMQP, however the request line is
  // split. (Regression: it used to decide from the first chunk alone, so "GE" went to the AMQP
  // engine, which answered with its protocol header and closed; fixed in aa7a7df.)
  const s = net.connect({ host: '127.0.0.1', port: port.ws, noDelay: true });
  open.push({ close: () => s.destroy() });
  const got: Buffer[] = [];
  let closed = false;
  s.on('data', (d: Buffer) => got.push(d));
  s.on('close', () => { closed = true; });
  s.on('error', () => undefined);
  await new Promise<void>((res) => s.once('connect', () => res()));
  const request = 'GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: amqp\r\n\r\n';
  // A slow link: two bytes, then the rest 200 ms later (paced, not a wait).
  s.write(request.slice(0, 2));
  await new Promise<void>((res) => setTimeout(() => { if (!s.destroyed) s.write(request.slice(2)); res(); }, 200));
  await waitFor(() => closed || /\r\n\r\n/.test(Buffer.concat(got).toString('latin1')), 5000, 'an answer');
  const answer = Buffer.concat(got).toString('latin1');
  assert.match(answer, /^HTTP\/1\.1 101 /, `answered ${JSON.stringify(answer.slice(0, 40))}${closed ? ' and closed' : ''}`);
  assert.match(answer, /\r\nsec-websocket-protocol: amqp\r\n/i);
});

// ------------------------------------------------------------------------------------------
// Refusals

// raw HTTP GET (no upgrade) x50 --> [R1 ws | wss]: 404, closed; nothing leaks
test('a plain HTTP GET that is not an upgrade: 404, the socket closed, logged; 50 of them leak nothing', async () => {
  const good = await GoodPeer.start(port.plain, 'closest/http-404');
  open.push({ close: () => good.close() });
  const fdsBefore = fdCount(r.proc.pid!);
  for (const [name, secure] of [['ws', false], ['wss', true]] as const) {
    const mark = r.log.length;
    const res = await rawRequest(port[name], 'GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n', secure);
    assert.match(res.response, /^HTTP\/1\.1 404 /, `${name}: ${res.response}`);
    assert.match(res.response, /\r\nconnection: close\r\n/i);
    const line = await logged(new RegExp(`listener ${name}: 127\\.0\\.0\\.1:${res.localPort}: GET /index.html: 404`), mark);
    assert.ok(line.length > 0);
    // Keep-alive asked for: still closed after the 404.
    const keep = await rawRequest(port[name], 'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n', secure);
    assert.match(keep.response, /^HTTP\/1\.1 404 /);
    for (let i = 0; i < 50; i += 10) {
      const all = await Promise.all(Array.from({ length: 10 }, () => rawRequest(port[name], `GET /x${i} HTTP/1.1\r\nHost: localhost\r\n\r\n`, secure)));
      for (const x of all) assert.match(x.response, /^HTTP\/1\.1 404 /);
    }
  }
  let fds = 0;
  await waitFor(() => (fds = fdCount(r.proc.pid!)) <= fdsBefore + 3, 5000, `router fds back to ${fdsBefore} (now ${fds})`);
  await everyoneElseWorks(r, good, port.plain);
});

// raw HTTP GETs --> [R1 pages: httpRootDir, websockets no]: files, /healthz, /metrics; nothing outside the root
test('an http listener serves its root directory, /healthz and /metrics (qdrouterd\'s names); nothing above the root; GET and HEAD only', async () => {
  const get = (what: string, method = 'GET') => rawRequest(port.pages, `${method} ${what} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
  const hello = await get('/hello.txt');
  assert.match(hello.response, /^HTTP\/1\.1 200 /);
  assert.match(hello.response, /\r\ncontent-type: text\/plain\r\n/i);
  assert.ok(hello.response.endsWith('\r\n\r\nHTTP test\n'), hello.response);
  assert.match((await get('/console/')).response, /^HTTP\/1\.1 200 [\s\S]*<html>console<\/html>/, 'a directory serves its index.html');
  for (const escape of ['/../secret.txt', '/%2e%2e/secret.txt', '/console/../../secret.txt']) {
    const res = await get(escape);
    assert.match(res.response, /^HTTP\/1\.1 404 /, `${escape}: ${res.response}`);
    assert.not.ok(res.response.includes('not served'));
  }
  assert.match((await get('/nosuch')).response, /^HTTP\/1\.1 404 /);
  assert.match((await get('/healthz')).response, /^HTTP\/1\.1 200 [\s\S]*\r\n\r\nOK\n$/);
  const metrics = (await get('/metrics')).response;
  for (const name of ['qdr_connections_total', 'qdr_deliveries_ingress_total', 'qdr_deliveries_delayed_1sec_total', 'qdr_deliveries_delayed_10sec_total', 'qdr_deliveries_redirected_to_fallback_total']) {
    assert.match(metrics, new RegExp(`# TYPE ${name} (gauge|counter)\n${name} \\d+\n`), name);
  }
  const head = await get('/hello.txt', 'HEAD');
  assert.match(head.response, /^HTTP\/1\.1 200 [\s\S]*content-length: 10\r\n/i);
  assert.ok(head.response.endsWith('\r\n\r\n'), 'HEAD: no body');
  assert.match((await get('/hello.txt', 'POST')).response, /^HTTP\/1\.1 405 /);
  // websockets: no: an upgrade is not served.
  const up = await rawRequest(port.pages, 'GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: amqp\r\n\r\n');
  assert.match(up.response, /^HTTP\/1\.1 404 /);
});

// raw garbage HTTP --> [R1 ws | wss]: 400, closed
test('garbage HTTP: 400 Bad Request, the socket closed, logged', async () => {
  const good = await GoodPeer.start(port.plain, 'closest/http-400');
  open.push({ close: () => good.close() });
  const fdsBefore = fdCount(r.proc.pid!);
  const requests = [
    'GET / HTTP/1.1\r\nHost: localhost\r\nthis header has no colon\r\n\r\n',
    'GET / HTTP/9.9garbage\r\n\r\n',
    'POST / HTTP/1.1\r\nContent-Length: nope\r\n\r\n',
    'GET /\x00\x01\x02 HTTP/1.1\r\n\r\n',
  ];
  for (const [name, secure] of [['ws', false], ['wss', true]] as const) {
    for (const req of requests) {
      const mark = r.log.length;
      const res = await rawRequest(port[name], req, secure);
      assert.match(res.response, /^HTTP\/1\.1 400 /, `${name} ${JSON.stringify(req)}: ${JSON.stringify(res.response)}`);
      await logged(new RegExp(`listener ${name}: 127\\.0\\.0\\.1:${res.localPort}: bad HTTP request`), mark);
    }
    for (let i = 0; i < 5; i++) {
      const all = await Promise.all(Array.from({ length: 10 }, (_, k) => rawRequest(port[name], requests[k % requests.length], secure)));
      for (const x of all) assert.match(x.response, /^HTTP\/1\.1 400 /);
    }
  }
  let fds = 0;
  await waitFor(() => (fds = fdCount(r.proc.pid!)) <= fdsBefore + 3, 5000, `router fds back to ${fdsBefore} (now ${fds})`);
  await everyoneElseWorks(r, good, port.plain);
});

// raw WebSocket offering no subprotocol / only mqtt --> [R1 ws]: closed
test('a WebSocket without an AMQP subprotocol is closed (1002 when none was offered), and logged', async () => {
  const good = await GoodPeer.start(port.plain, 'closest/ws-no-subprotocol');
  open.push({ close: () => good.close() });
  for (const [name, secure] of [['ws', false], ['wss', true]] as const) {
    const mark = r.log.length;
    const none = await rawWs(port[name], secure, []);
    const closed = await Promise.race([none.closed, new Promise<null>((res) => setTimeout(() => res(null), 5000))]);
    assert.ok(closed !== null, `${name}: the router closed the WebSocket`);
    assert.is(closed!.code, 1002, `${name}: close code ${closed!.code} ${closed!.reason}`);
    assert.match(closed!.reason, /subprotocol required/);
    assert.is(none.received.length, 0, 'no AMQP bytes');
    await logged(new RegExp(`listener ${name}: 127\\.0\\.0\\.1:\\d+: WebSocket without an AMQP subprotocol \\(offered: none\\); closing`), mark);

    // Only a non-AMQP subprotocol offered: the router picks none, which the client treats as a failed handshake.
    const m2 = r.log.length;
    let failed: Error | null = null;
    const mqtt = await rawWs(port[name], secure, ['mqtt']).catch((e: Error) => { failed = e; return null; });
    if (mqtt) {
      const c = await mqtt.closed;
      assert.ok(c.code !== 1000, `closed: ${c.code}`);
    } else {
      assert.match(String((failed as Error | null)?.message), /subprotocol/i);
    }
    await logged(new RegExp(`listener ${name}: 127\\.0\\.0\\.1:\\d+: WebSocket without an AMQP subprotocol \\(offered: mqtt\\)`), m2);
  }
  await everyoneElseWorks(r, good, port.plain);
});

// raw ws (amqp) sends one 1 MiB + 1 message --> [R1 ws]: close 1009
// rhea ws:// <--> [R1 ws] <--> rhea wss://   keeps working meanwhile
test('a WebSocket message over the limit (max(1 MiB, 4 x maxFrameSize)) closes that WebSocket with 1009; other clients keep working', async () => {
  const good = await GoodPeer.start(port.plain, 'closest/ws-oversized');
  open.push({ close: () => good.close() });
  const a = await rheaWs(port.ws, false);
  const b = await rheaWs(port.wss, true);

  // Default maxFrameSize (16 KiB): the limit is 1 MiB.
  const cases: [RouterListener, boolean, number, boolean][] = [
    ['ws', false, MIB + 1, true],
    ['wss', true, MIB + 1, true],
    ['ws', false, MIB, false],
    // maxFrameSize 1 MiB: the limit is 4 MiB.
    ['ws-big', false, 2 * MIB, false],
    ['ws-big', false, 4 * MIB + 1, true],
  ];
  for (const [name, secure, size, tooBig] of cases) {
    const mark = r.log.length;
    const x = await rawWs(port[name], secure, ['amqp']);
    // An AMQP header, then zeros: within the limit this is AMQP's business (a framing error), beyond it the WebSocket's.
    const message = Buffer.alloc(size);
    AMQP_HEADER.copy(message);
    x.ws.send(message);
    const closed = await Promise.race([x.closed, new Promise<null>((res) => setTimeout(() => res(null), 10_000))]);
    assert.ok(closed !== null, `${name} ${size} bytes: the WebSocket was closed`);
    if (tooBig) {
      assert.is(closed!.code, 1009, `${name}, ${size} bytes: close code 1009 (message too big); got ${closed!.code} ${closed!.reason}`);
      assert.is(Buffer.concat(x.received).length, 0, 'no AMQP bytes for a message over the limit');
      await logged(new RegExp(`listener ${name}: 127\\.0\\.0\\.1:\\d+: WebSocket: .*(payload|length)`, 'i'), mark);
    } else {
      assert.ok(closed!.code !== 1009, `${name}, ${size} bytes is within the limit; got close ${closed!.code}`);
      const got = Buffer.concat(x.received);
      assert.equal(got.subarray(0, 8), AMQP_HEADER, `${name}, ${size} bytes: the AMQP engine answered (header, then a close for the bad frame)`);
    }
    await exchange(a, b, `closest/ws-oversized-${name}-${size}`);
  }
  await everyoneElseWorks(r, good, port.plain);
});

// raw TCP, HTTP upgrade never finished / WebSocket never opening AMQP --> [R1 ws] (deadline 2 s)
test('the handshake deadline covers HTTP and the AMQP open over WebSocket', async () => {
  const mark = r.log.length;
  // Half an upgrade request, never finished.
  const t0 = Date.now();
  const half = await rawRequest(port.ws, 'GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n', false, 6000);
  const halfMs = Date.now() - t0;
  assert.ok(halfMs >= 1800 && halfMs < 4000, `half an HTTP request closed by the 2 s deadline after ${halfMs} ms`);
  await logged(new RegExp(`listener ws: refused 127\\.0\\.0\\.1:${half.localPort}: handshake not finished within 2 s`), mark);
  // A WebSocket that never sends an AMQP header.
  const t1 = Date.now();
  const idle = await rawWs(port.ws, false, ['amqp']);
  const closed = await Promise.race([idle.closed, new Promise<null>((res) => setTimeout(() => res(null), 6000))]);
  const idleMs = Date.now() - t1;
  assert.ok(closed !== null, 'a WebSocket that never opens AMQP is closed');
  assert.ok(idleMs >= 1800 && idleMs < 4500, `closed after ${idleMs} ms (deadline 2 s)`);
  await logged(/AMQP handshake not finished in time; closing/, mark);
});

// ------------------------------------------------------------------------------------------
// The broker

// rhea ws:// --> [B1 ws] --> rhea wss://;  rhea wss:// --> [B1 wss] --> rhea TCP
// raw HTTP GET --> [B1 ws]: 404;  oversized ws message: 1009
test('broker: http listeners serve rhea over ws:// and wss://; 404, 1009 as the router', async () => {
  const dataDir = tempDir();
  const config =
    `broker {\n    id: B1\n    dataDir: ${dataDir}\n    persistent: false\n}\n` +
    profile('server', SERVER) +
    listener('plain', { saslMechanisms: 'ANONYMOUS PLAIN' }) +
    listener('ws', { http: 'yes', saslMechanisms: 'ANONYMOUS PLAIN' }) +
    listener('wss', { http: 'yes', sslProfile: 'server', requireSsl: 'yes', saslMechanisms: 'ANONYMOUS PLAIN' });
  const b: RunningBroker = await startBroker(config);
  try {
    const bound: Record<string, number> = {};
    await waitFor(() => {
      for (const l of b.log) {
        const m = l.match(/Listening on \S+:(\d+) \(listener ([^:)]+)/);
        if (m) bound[m[2]] = Number(m[1]);
      }
      return bound.plain && bound.ws && bound.wss;
    }, 10_000, 'three broker listeners');
    const mark = b.log.length;
    const ws = await rheaWs(bound.ws, false);
    const wss = await rheaWs(bound.wss, true);
    const tcp = await rheaTcp(bound.plain);
    await exchange(ws, wss, 'queue.ws-to-wss', 5);
    await exchange(wss, tcp, 'queue.wss-to-tcp', 5);
    await exchange(tcp, ws, 'queue.tcp-to-ws', 2, (i) => Buffer.alloc(200_000, i + 7));
    assert.match(logSince(mark, b), /Accepted connection from 127\.0\.0\.1:\d+ on ws \(ws\)/);
    assert.match(logSince(mark, b), /Accepted connection from 127\.0\.0\.1:\d+ on wss \(wss\)/);

    const notFound = await rawRequest(bound.ws, 'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
    assert.match(notFound.response, /^HTTP\/1\.1 404 /);
    const big = await rawWs(bound.wss, true, ['amqp']);
    big.ws.send(Buffer.alloc(MIB + 1));
    assert.is((await big.closed).code, 1009);
    assert.is(b.exitCode, undefined, 'the broker is still running');
    await exchange(ws, wss, 'queue.after', 2);
  } catch (e) {
    if (!process.env.BROKER_LOG) process.stderr.write(`--- broker log (last 40 lines) ---\n${b.log.slice(-40).join('\n')}\n`);
    throw e;
  } finally {
    for (const c of open.splice(0)) await c.close();
    assert.is(await b.stop(), 0, 'broker exits 0 on SIGTERM');
  }
});

test.run();
