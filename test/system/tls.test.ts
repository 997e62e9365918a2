// TLS on the router's and the broker's listeners (qdrouterd's sslProfile; README "Configuration
// reference"), with real processes, rhea and Node's tls as clients, and the test certificates of
// test/support/certs.ts (CA, server CN=localhost, client alice, expired, mallory by an untrusted CA).
//
//   router R1 (one process for most tests)
//     listener plain            plain AMQP (the well-behaved peers' way in)
//     listener amqps            sslProfile server,  requireSsl yes, ANONYMOUS PLAIN, deadline 1 s
//     listener mixed            sslProfile server,  requireSsl no (TLS and plain on one port), deadline 1 s
//     listener external         sslProfile server (uidFormat n),  requireSsl yes, authenticatePeer, EXTERNAL, deadline 1 s
//     listener external-on2     sslProfile server-on2 (uidFormat on2), EXTERNAL
//     listener external-subject sslProfile server-subject (no uidFormat), EXTERNAL
//     listener tls13            sslProfile server-tls13 (protocols TLSv1.3), requireSsl yes
//     listener amqps-plain      sslProfile server, requireSsl yes, authenticatePeer, PLAIN (users: alice)
//
//   broker B1 (persistent: false)
//     listener plain, listener amqps (requireSsl yes), listener external (EXTERNAL, uidFormat n)
//
// Refusals are checked for what the operator and everyone else see: a log line naming the
// listener and the peer, the process still up, no file descriptors left behind after 50 refused
// attempts, and clients on other connections (plain and TLS) still sending and receiving.
// @runs-alone: handshake deadlines are asserted to the second.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import rhea = require('rhea');
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { RawClient } from '../support/raw-client';
import { RunningRouter, plainUsersDir, startRouter } from '../support/router';
import { RunningBroker, startBroker, tempDir } from '../support/broker';
import { Certs, ClientCert, makeCertsSync } from '../support/certs';
import { GoodPeer, everyoneElseWorks } from '../wire/helpers';
import { RheaClient, collect, once, outcomes, rheaConnect, waitFor, waitSendable } from './helpers';

const certs: Certs = makeCertsSync(path.join(os.tmpdir(), 'amqp-mesh-test-certs'));
const CA = fs.readFileSync(certs.ca);

// ------------------------------------------------------------------------------------------
// Configurations

/** An sslProfile section (qdrouterd.conf syntax). */
function profile(name: string, attrs: Record<string, string>): string {
  return `sslProfile {\n    name: ${name}\n${Object.entries(attrs).map(([k, v]) => `    ${k}: ${v}\n`).join('')}}\n`;
}

const SERVER = { certFile: certs.server.cert, privateKeyFile: certs.server.key, caCertFile: certs.ca };

/** A listener section on 127.0.0.1, an OS-chosen port. */
function listener(name: string, attrs: Record<string, string> = {}): string {
  return `listener {\n    name: ${name}\n    host: 127.0.0.1\n    port: 0\n${Object.entries(attrs).map(([k, v]) => `    ${k}: ${v}\n`).join('')}}\n`;
}

const ROUTER_LISTENERS = ['plain', 'amqps', 'mixed', 'external', 'external-on2', 'external-subject', 'tls13', 'amqps-plain'] as const;
type RouterListener = (typeof ROUTER_LISTENERS)[number];

const ROUTER_CONFIG =
  `router {\n    mode: standalone\n    id: R1\n    saslConfigDir: ${plainUsersDir({ alice: 'alice-secret' })}\n}\n` +
  'address {\n    prefix: closest\n    distribution: closest\n}\n' +
  profile('server', { ...SERVER, uidFormat: 'n' }) +
  profile('server-on2', { ...SERVER, uidFormat: 'on2' }) +
  profile('server-subject', SERVER) +
  profile('server-tls13', { certFile: certs.server.cert, privateKeyFile: certs.server.key, protocols: 'TLSv1.3' }) +
  listener('plain', { saslMechanisms: 'ANONYMOUS PLAIN' }) +
  listener('amqps', { sslProfile: 'server', requireSsl: 'yes', saslMechanisms: 'ANONYMOUS PLAIN', initialHandshakeTimeoutSeconds: '1' }) +
  listener('mixed', { sslProfile: 'server', requireSsl: 'no', saslMechanisms: 'ANONYMOUS PLAIN', initialHandshakeTimeoutSeconds: '1' }) +
  listener('external', { sslProfile: 'server', requireSsl: 'yes', authenticatePeer: 'yes', saslMechanisms: 'EXTERNAL', initialHandshakeTimeoutSeconds: '1' }) +
  listener('external-on2', { sslProfile: 'server-on2', requireSsl: 'yes', authenticatePeer: 'yes', saslMechanisms: 'EXTERNAL' }) +
  listener('external-subject', { sslProfile: 'server-subject', requireSsl: 'yes', authenticatePeer: 'yes', saslMechanisms: 'EXTERNAL' }) +
  listener('tls13', { sslProfile: 'server-tls13', requireSsl: 'yes' }) +
  listener('amqps-plain', { sslProfile: 'server', requireSsl: 'yes', authenticatePeer: 'yes', saslMechanisms: 'PLAIN' });

let r: RunningRouter;
const port = {} as Record<RouterListener, number>;

test.before(async () => {
  r = await startRouter(ROUTER_CONFIG, { listeners: ROUTER_LISTENERS.length });
  ROUTER_LISTENERS.forEach((name, i) => { port[name] = r.ports[i]; });
});

test.after(async () => {
  if (r) assert.is(await r.stop(), 0, 'router exits 0 on SIGTERM');
});

// ------------------------------------------------------------------------------------------
// Clients

const clients: { close(): unknown }[] = [];
test.after.each(async () => {
  for (const c of clients.splice(0)) await c.close();
});

/** rhea over TLS to `p`, verifying the server against the test CA (name localhost); with `cert`: SASL EXTERNAL. */
async function rheaTls(p: number, cert?: ClientCert, extra: Partial<rhea.ConnectionOptions> = {}): Promise<RheaClient> {
  const c = await rheaConnect({ port: p }, 0, {
    transport: 'tls',
    ca: CA,
    servername: 'localhost',
    rejectUnauthorized: true,
    ...(cert ? { cert: fs.readFileSync(cert.cert), key: fs.readFileSync(cert.key), enable_sasl_external: true } : {}),
    ...extra,
  } as unknown as Partial<rhea.ConnectionOptions>);
  clients.push(c);
  return c;
}

async function rheaPlain(p: number): Promise<RheaClient> {
  const c = await rheaConnect({ port: p });
  clients.push(c);
  return c;
}

/** `n` messages from `tx` to `rx` on `address`: all received in order, all accepted. */
async function exchange(tx: RheaClient, rx: RheaClient, address: string, n = 3): Promise<void> {
  const receiver = rx.conn.open_receiver({ source: { address }, credit_window: 10 });
  const got = collect(receiver);
  await once(receiver as never, 'receiver_open');
  const sender = tx.conn.open_sender({ target: { address } });
  const seen = outcomes(sender);
  await waitSendable(sender);
  const bodies = Array.from({ length: n }, (_, i) => `${address} #${i}`);
  for (const body of bodies) sender.send({ body });
  await waitFor(() => got.messages.length === n && seen.accepted === n, 5000, `${n} messages on ${address} received and accepted`);
  assert.equal(got.messages.map((m) => m.body), bodies, `messages on ${address} arrive intact and in order`);
  sender.close();
  receiver.close();
}

/** A RawClient (test/support/raw-client) over an established TLS socket. */
function rawOver(s: tls.TLSSocket): RawClient {
  const c = new (RawClient as unknown as new (s: net.Socket) => RawClient)(s);
  clients.push({ close: () => c.destroy() });
  return c;
}

/** tls.connect to `p` (CA-verified, name localhost), resolved once secure. */
function tlsConnect(p: number, opts: tls.ConnectionOptions = {}): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: p, ca: CA, servername: 'localhost', ...opts });
    s.once('secureConnect', () => { s.off('error', reject); resolve(s); });
    s.once('error', reject);
  });
}

/** Writes `bytes` one at a time, `everyMs` apart (a slow client); resolves once all are written. */
function paced(s: net.Socket, bytes: Buffer, everyMs: number): Promise<void> {
  return new Promise((resolve) => {
    let i = 0;
    const t = setInterval(() => {
      if (i >= bytes.length || s.destroyed) {
        clearInterval(t);
        resolve();
        return;
      }
      s.write(bytes.subarray(i, ++i));
    }, everyMs);
  });
}

/** Open file descriptors of a process (sockets included). */
function fdCount(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/** Router log lines from index `mark`, joined. */
function logSince(mark: number, who: { log: string[] } = r): string {
  return who.log.slice(mark).join('\n');
}

/** Waits for a log line matching `re` after `mark`. */
async function logged(re: RegExp, mark: number, who: { log: string[] } = r, ms = 5000): Promise<string> {
  let line: string | undefined;
  await waitFor(() => (line = who.log.slice(mark).find((l) => re.test(l))), ms, `a log line matching ${re}`);
  return line!;
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// ------------------------------------------------------------------------------------------
// Serving over TLS

// rhea A --TLS (CA-verified, ANONYMOUS)--> [R1 amqps] --TLS--> rhea B
test('router requireSsl listener: rhea clients verifying the router against the CA send and receive over TLS', async () => {
  const mark = r.log.length;
  const a = await rheaTls(port.amqps);
  const b = await rheaTls(port.amqps);
  await exchange(a, b, 'closest/tls.router');
  await exchange(b, a, 'tls.router.balanced', 5);
  // Both were accepted as TLS connections on the amqps listener.
  const accepted = logSince(mark).match(/Accepted connection from 127\.0\.0\.1:\d+ on amqps \(tls\)/g) ?? [];
  assert.is(accepted.length, 2, logSince(mark));
  // The certificate the router presents is the server certificate (CN=localhost, signed by the CA).
  const s = await tlsConnect(port.amqps);
  try {
    assert.ok(s.authorized, `server certificate verified: ${s.authorizationError}`);
    assert.is(s.getPeerCertificate().subject.CN, 'localhost');
    assert.is(s.getPeerCertificate().issuer.CN, 'amqp-mesh test CA');
  } finally {
    s.destroy();
  }
});

// rhea trusting only the untrusted CA --TLS--> [R1 amqps]: the client refuses the router's certificate
test('a client that does not trust the router\'s CA fails verification (the client really verifies)', async () => {
  let error: Error | null = null;
  await tlsConnect(port.amqps, { ca: fs.readFileSync(certs.untrustedCa) }).then((s) => s.destroy(), (e: Error) => { error = e; });
  assert.ok(error !== null, 'the TLS handshake must fail');
  assert.match(String((error as unknown as Error).message), /certificate|verify/i);
  // ...and a client that verifies the name finds the router's certificate does not name other.example.
  let wrongName: Error | null = null;
  await tlsConnect(port.amqps, { servername: 'other.example' }).then((s) => s.destroy(), (e: Error) => { wrongName = e; });
  assert.ok(wrongName !== null, 'the hostname check must fail');
  assert.match(String((wrongName as unknown as Error).message), /other\.example|altnames/i);
});

// rhea TLS ----\                    /---> rhea plain
//               >--> [R1 mixed] ---<
// rhea plain --/   (requireSsl no)   \---> rhea TLS
test('requireSsl no with an sslProfile: TLS and plain AMQP clients both work on the same port, with each other', async () => {
  const mark = r.log.length;
  const secure = await rheaTls(port.mixed);
  const plain = await rheaPlain(port.mixed);
  await exchange(secure, plain, 'closest/mixed.tls-to-plain');
  await exchange(plain, secure, 'closest/mixed.plain-to-tls');
  const log = logSince(mark);
  assert.match(log, /Accepted connection from 127\.0\.0\.1:\d+ on mixed \(tls\)/);
  assert.match(log, /Accepted connection from 127\.0\.0\.1:\d+ on mixed$/m);
  // A plain client sending its AMQP header one byte every 50 ms is still detected as plain.
  const c = await RawClient.connect(port.mixed);
  clients.push({ close: () => c.destroy() });
  await paced(c.socket, Buffer.from('AMQP\x00\x01\x00\x00', 'latin1'), 50);
  c.open();
  await c.waitForFrame((f) => f.name === 'open', 3000);
  assert.equal(c.headers, [0], 'the router answered the plain AMQP header');
});

// rhea --TLS 1.3--> [R1 tls13] --> rhea;   a TLS 1.2-only client --> [R1 tls13]: refused, logged
test('sslProfile protocols TLSv1.3: a TLS 1.3 client is served; a TLS 1.2-only client is refused and logged', async () => {
  const a = await rheaTls(port.tls13);
  const b = await rheaTls(port.tls13);
  await exchange(a, b, 'closest/tls13');
  const s = await tlsConnect(port.tls13);
  assert.is(s.getProtocol(), 'TLSv1.3');
  s.destroy();
  const mark = r.log.length;
  let error: Error | null = null;
  let localPort = 0;
  await new Promise<void>((resolve) => {
    const old = tls.connect({ host: '127.0.0.1', port: port.tls13, ca: CA, servername: 'localhost', maxVersion: 'TLSv1.2' });
    old.once('connect', () => { localPort = old.localPort!; });
    old.once('error', (e) => { error = e; });
    old.once('secureConnect', () => old.destroy());
    old.once('close', () => resolve());
  });
  assert.ok(error !== null, 'the TLS 1.2 handshake fails');
  const line = await logged(new RegExp(`listener tls13: refused 127\\.0\\.0\\.1:${localPort}: TLS handshake failed`), mark);
  assert.match(line, /version|protocol/i);
});

// ------------------------------------------------------------------------------------------
// SASL EXTERNAL: the client certificate is the identity

// rhea alice (cert CN=alice, O=amqp-mesh) --TLS + SASL EXTERNAL--> [R1 external*] --> rhea alice
test('EXTERNAL: the connection\'s user is the uid uidFormat makes from the client certificate', async () => {
  const der = new crypto.X509Certificate(fs.readFileSync(certs.client.cert)).raw;
  const sha256 = crypto.createHash('sha256').update(der).digest('hex');
  const cases: [RouterListener, string][] = [
    ['external', 'alice'],
    ['external-on2', `amqp-mesh;alice;${sha256}`],
    ['external-subject', 'CN=alice,O=amqp-mesh'],
  ];
  for (const [name, uid] of cases) {
    const mark = r.log.length;
    const a = await rheaTls(port[name], certs.client);
    const b = await rheaTls(port[name], certs.client);
    await exchange(a, b, `closest/external.${name}`);
    const log = logSince(mark);
    assert.match(log, new RegExp(`Accepted connection from 127\\.0\\.0\\.1:\\d+ on ${esc(name)} \\(tls, certificate ${esc(uid)}\\)`), `${name}: ${log}`);
    assert.match(log, new RegExp(`Connection open: container-id [^,]+, user ${esc(uid)}$`, 'm'), `${name}: the SASL outcome made ${uid} the user`);
  }
});

// raw client (codec) over tls.connect with alice's certificate --SASL frames--> [R1 external]
test('EXTERNAL, raw SASL exchange: offered alone, outcome ok with an empty or matching authzid, auth with another; no SASL refused', async () => {
  const tlsAlice = { cert: fs.readFileSync(certs.client.cert), key: fs.readFileSync(certs.client.key) };

  // Empty response: the identity is the certificate's.
  const c = rawOver(await tlsConnect(port.external, tlsAlice));
  c.header(3);
  const mechs = await c.waitForFrame((f) => f.name === 'sasl-mechanisms');
  assert.equal(c.headers, [3], 'the router answered with the SASL header');
  const offered = Array.isArray(mechs.fields[0]) ? mechs.fields[0] : [mechs.fields[0]];
  assert.equal(offered, ['EXTERNAL'], 'EXTERNAL is the only mechanism offered');
  c.saslInit('EXTERNAL', Buffer.alloc(0), 'localhost');
  const outcome = await c.waitForFrame((f) => f.name === 'sasl-outcome');
  assert.is(outcome.fields[0], 0, 'sasl-outcome ok');
  const mark = r.log.length;
  c.header(0);
  c.open({ containerId: 'raw-external' });
  await c.waitForFrame((f) => f.name === 'open');
  await logged(/Connection open: container-id raw-external, user alice$/, mark);

  // An authorization identity that is the certificate's uid is fine.
  const same = rawOver(await tlsConnect(port.external, tlsAlice));
  same.header(3);
  same.saslInit('EXTERNAL', Buffer.from('alice'), 'localhost');
  assert.is((await same.waitForFrame((f) => f.name === 'sasl-outcome')).fields[0], 0, 'authzid alice with alice\'s certificate: ok');

  // Another identity is refused (sasl-outcome auth = 1), and the socket closes.
  const other = rawOver(await tlsConnect(port.external, tlsAlice));
  const m2 = r.log.length;
  other.header(3);
  other.saslInit('EXTERNAL', Buffer.from('bob'), 'localhost');
  assert.is((await other.waitForFrame((f) => f.name === 'sasl-outcome')).fields[0], 1, 'authzid bob with alice\'s certificate: auth');
  await other.waitClosed();
  await logged(/SASL EXTERNAL authentication failed/, m2);

  // authenticatePeer: a client that skips SASL (AMQP header straight away) gets the SASL header and is cut off.
  const noSasl = rawOver(await tlsConnect(port.external, tlsAlice));
  noSasl.header(0);
  await noSasl.waitClosed();
  assert.equal(noSasl.headers, [3], 'answered with the SASL header (SASL is required)');
  assert.not.ok(noSasl.frames.some((f) => f.name === 'open'), 'no open for a client without SASL');
});

// rhea --TLS, SASL PLAIN alice (no client certificate)--> [R1 amqps-plain] --> rhea
test('authenticatePeer with PLAIN over TLS: users authenticate with SASL and need no certificate; a wrong password is refused', async () => {
  // As qdrouterd 1.19 (config/transport.ts verifiesClient): client certificates are asked for
  // only when EXTERNAL is offered.
  const mark = r.log.length;
  const a = await rheaTls(port['amqps-plain'], undefined, { username: 'alice', password: 'alice-secret' } as never);
  const b = await rheaTls(port['amqps-plain'], undefined, { username: 'alice', password: 'alice-secret' } as never);
  await exchange(a, b, 'closest/tls-plain');
  assert.match(logSince(mark), /Accepted connection from 127\.0\.0\.1:\d+ on amqps-plain \(tls\)/);
  assert.match(logSince(mark), /Connection open: container-id [^,]+, user alice$/m);
  const m2 = r.log.length;
  const container = rhea.create_container({ id: 'wrong-password' });
  const conn = container.connect({
    host: '127.0.0.1', port: port['amqps-plain'], transport: 'tls', ca: CA, servername: 'localhost', reconnect: false, username: 'alice', password: 'wrong',
  } as unknown as rhea.ConnectionOptions);
  const outcome = await new Promise<string>((resolve) => {
    conn.once('connection_open', () => resolve('open'));
    conn.once('connection_error', (ctx: rhea.EventContext) => resolve(`error ${ctx.connection.error?.toString() ?? ''}`));
    conn.once('disconnected', () => resolve('disconnected'));
  });
  clients.push({ close: () => conn.close() });
  assert.not.equal(outcome, 'open', 'a wrong password does not open a connection');
  await logged(/SASL PLAIN authentication failed/, m2);
});

// alice --TLS (full handshake)--> [R1 external];  alice --TLS (resumed session, TLS 1.3 and 1.2)--> [R1 external]
test('EXTERNAL over a resumed TLS session: the identity is still the certificate\'s (alice)', async () => {
  const tlsAlice = { cert: fs.readFileSync(certs.client.cert), key: fs.readFileSync(certs.client.key) };
  for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
    // A first connection, to get a session to resume.
    const first = await tlsConnect(port.external, { ...tlsAlice, maxVersion });
    const session = await new Promise<Buffer>((resolve) => {
      const got = first.getSession();
      if (got && maxVersion === 'TLSv1.2') return resolve(got);
      first.once('session', (x: Buffer) => resolve(x));
      // TLS 1.3 tickets arrive after the handshake, with the first bytes from the server.
      first.write(Buffer.from('AMQP\x03\x01\x00\x00', 'latin1'));
    });
    first.destroy();
    const mark = r.log.length;
    const resumed = await tlsConnect(port.external, { ...tlsAlice, maxVersion, session });
    assert.ok(resumed.isSessionReused(), `${maxVersion}: the session was resumed`);
    const c = rawOver(resumed);
    c.header(3);
    c.saslInit('EXTERNAL', Buffer.alloc(0), 'localhost');
    assert.is((await c.waitForFrame((f) => f.name === 'sasl-outcome')).fields[0], 0, `${maxVersion}: sasl-outcome ok`);
    c.header(0);
    c.open({ containerId: `resumed-${maxVersion}` });
    await c.waitForFrame((f) => f.name === 'open');
    await logged(new RegExp(`Connection open: container-id resumed-${esc(maxVersion)}, user alice$`), mark);
    assert.match(logSince(mark), /on external \(tls, certificate alice\)/);
  }
});

// ------------------------------------------------------------------------------------------
// Refusals

/** One refused attempt: resolves with the client's local port (the peer the router logs) once the router closed it. */
type Attempt = () => Promise<Outcome>;
/** The client's local port (the peer the router logs), what it received, and how long the router took to close. */
interface Outcome { localPort: number; received: Buffer; ms: number }

/** Runs `connect`, records bytes received, resolves when the socket closes (fails after `ms`). */
function untilClosed(s: net.Socket, start: number, ms = 5000): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let localPort = 0;
    s.on('data', (d: Buffer) => { chunks.push(d); });
    s.on('error', () => { /* a reset is a close too */ });
    const t = setTimeout(() => { s.destroy(); reject(new Error(`the router did not close the connection within ${ms} ms`)); }, ms);
    s.once('connect', () => { localPort = s.localPort ?? 0; });
    s.once('close', () => { clearTimeout(t); resolve({ localPort: localPort || s.localPort || 0, received: Buffer.concat(chunks), ms: Date.now() - start }); });
  });
}

function tlsAttempt(p: number, opts: tls.ConnectionOptions): Attempt {
  return () => {
    const start = Date.now();
    const raw = net.connect({ host: '127.0.0.1', port: p });
    const done = untilClosed(raw, start);
    raw.once('connect', () => {
      const s = tls.connect({ socket: raw, ca: CA, servername: 'localhost', ...opts });
      s.on('error', () => { /* expected: the router refuses */ });
      // TLS 1.3: the client may think the handshake done before the router checked its certificate; it sends nothing.
    });
    return done;
  };
}

function bytesAttempt(p: number, bytes: Buffer | null): Attempt {
  return () => {
    const start = Date.now();
    const s = net.connect({ host: '127.0.0.1', port: p });
    const done = untilClosed(s, start);
    if (bytes !== null) s.once('connect', () => s.write(bytes));
    return done;
  };
}

/** The first record a TLS client sends (its ClientHello), captured from a local socket. */
async function clientHello(): Promise<Buffer> {
  const server = net.createServer();
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const got = new Promise<Buffer>((res) => server.once('connection', (s) => s.once('data', (d: Buffer) => { res(d); s.destroy(); })));
  const c = tls.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, servername: 'localhost', ca: CA });
  c.on('error', () => undefined);
  const hello = await got;
  c.destroy();
  server.close();
  return hello;
}

const GARBAGE = Buffer.from('this is not a TLS ClientHello, nor AMQP, nor HTTP: \x00\x01\x02\xff\xfe'.repeat(4), 'latin1');

interface RefusalCase {
  what: string;
  listener: RouterListener;
  attempt: () => Promise<Attempt>;
  /** What the router logs after "listener NAME: refused HOST:PORT: ". */
  why: RegExp;
  /** Closed by the handshake deadline (1 s) rather than at once. */
  deadline?: boolean;
  /** What the client may receive before the close (default: nothing; a TLS alert record for a failed handshake). */
  answer?: (received: Buffer) => boolean;
}

/** Nothing at all, or TLS alert records only (content type 0x15): never AMQP or application data. */
const NOTHING_OR_TLS_ALERT = (b: Buffer) => b.length === 0 || (b[0] === 0x15 && b.length <= 32);

const REFUSALS: RefusalCase[] = [
  {
    what: 'a client certificate from an untrusted CA (mallory)',
    listener: 'external',
    attempt: async () => tlsAttempt(port.external, { cert: fs.readFileSync(certs.untrustedClient.cert), key: fs.readFileSync(certs.untrustedClient.key) }),
    why: /client certificate mallory refused: (UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)/,
  },
  {
    what: 'an expired client certificate',
    listener: 'external',
    attempt: async () => tlsAttempt(port.external, { cert: fs.readFileSync(certs.expired.cert), key: fs.readFileSync(certs.expired.key) }),
    why: /client certificate expired refused: CERT_HAS_EXPIRED/,
  },
  {
    what: 'no client certificate on an EXTERNAL listener',
    listener: 'external',
    attempt: async () => tlsAttempt(port.external, {}),
    why: /no client certificate/,
  },
  {
    what: 'plain AMQP on a requireSsl port',
    listener: 'amqps',
    attempt: async () => bytesAttempt(port.amqps, Buffer.from('AMQP\x00\x01\x00\x00', 'latin1')),
    why: /plain AMQP on a listener that requires TLS \(requireSsl\)/,
  },
  {
    what: 'SASL-framed plain AMQP on a requireSsl EXTERNAL port',
    listener: 'external',
    attempt: async () => bytesAttempt(port.external, Buffer.from('AMQP\x03\x01\x00\x00', 'latin1')),
    why: /plain AMQP on a listener that requires TLS/,
  },
  {
    what: 'garbage bytes instead of a TLS handshake',
    listener: 'amqps',
    attempt: async () => bytesAttempt(port.amqps, GARBAGE),
    why: /not TLS on a listener that requires TLS/,
  },
  {
    what: 'garbage after a TLS record-type byte (0x16)',
    listener: 'amqps',
    attempt: async () => bytesAttempt(port.amqps, Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x00, 0x40]), GARBAGE])),
    why: /TLS handshake failed/,
    answer: NOTHING_OR_TLS_ALERT,
  },
  {
    what: 'a TLS handshake that never starts (connect, send nothing)',
    listener: 'amqps',
    attempt: async () => bytesAttempt(port.amqps, null),
    why: /handshake not finished within 1 s/,
    deadline: true,
  },
  {
    what: 'a TLS handshake that never finishes (half a ClientHello)',
    listener: 'amqps',
    attempt: async () => {
      const hello = await clientHello();
      return bytesAttempt(port.amqps, hello.subarray(0, Math.floor(hello.length / 2)));
    },
    why: /handshake not finished within 1 s/,
    deadline: true,
  },
  {
    what: 'half a ClientHello on a requireSsl no port',
    listener: 'mixed',
    attempt: async () => {
      const hello = await clientHello();
      return bytesAttempt(port.mixed, hello.subarray(0, Math.floor(hello.length / 2)));
    },
    why: /handshake not finished within 1 s/,
    deadline: true,
  },
];

for (const [i, k] of REFUSALS.entries()) {
  // good peer (plain, rx+tx) ----------> [R1 plain]
  // rhea alice (TLS, EXTERNAL) --------> [R1 external]
  // 50 x bad client -------------------> [R1 ${k.listener}]  refused, logged with listener and peer
  test(`refused: ${k.what}: logged with listener and peer; R1 stays up; no fds leak over 50 attempts; others keep working`, async () => {
    const good = await GoodPeer.start(port.plain, `closest/refusal-${i}`);
    clients.push({ close: () => good.close() });
    const a = await rheaTls(port.external, certs.client);
    const b = await rheaTls(port.amqps);
    const pid = r.proc.pid!;
    const fdsBefore = fdCount(pid);
    const attempt = await k.attempt();

    // One attempt, looked at closely.
    const mark = r.log.length;
    const first = await attempt();
    const expected = k.answer ?? ((b: Buffer) => b.length === 0);
    assert.ok(expected(first.received), `the refused client got no AMQP (nor any application byte): 0x${first.received.toString('hex')}`);
    if (k.deadline) assert.ok(first.ms >= 900 && first.ms < 3000, `closed by the 1 s deadline, after ${first.ms} ms`);
    else assert.ok(first.ms < 2000, `refused at once, not by a timeout (${first.ms} ms)`);
    const line = await logged(new RegExp(`listener ${esc(k.listener)}: refused 127\\.0\\.0\\.1:${first.localPort}: `), mark);
    assert.match(line, k.why);

    // 49 more, 10 at a time (the deadline cases all at once: each waits 1 s).
    const rest = 49;
    const batch = k.deadline ? rest : 10;
    let peak = 0;
    for (let n = 0; n < rest; n += batch) {
      const pending = Promise.all(Array.from({ length: Math.min(batch, rest - n) }, () => attempt()));
      // The measure sees sockets: 49 handshakes held open by the router show up in its fds.
      if (k.deadline) await waitFor(() => (peak = fdCount(pid)) >= fdsBefore + 40, 3000, `49 held handshakes in the router's fds (${peak})`);
      const results = await pending;
      for (const x of results) assert.ok(expected(x.received), `received 0x${x.received.toString('hex')}`);
      for (const x of results) if (k.deadline) assert.ok(x.ms >= 900, `closed by the deadline, not before (${x.ms} ms)`);
    }
    await waitFor(() => (logSince(mark).match(new RegExp(`listener ${esc(k.listener)}: refused `, 'g')) ?? []).length >= 50, 5000, '50 refusals logged');
    let fdsAfter = 0;
    try {
      await waitFor(() => (fdsAfter = fdCount(pid)) <= fdsBefore + 3, 5000, 'the router\'s open file descriptors back to where they were');
    } catch (e) {
      throw new Error(`router fds: ${fdsBefore} before, ${fdsAfter} after 50 refused attempts (${k.what})`);
    }
    process.stdout.write(`  ${k.what}: router fds ${fdsBefore} before, ${peak ? `${peak} while held, ` : ''}${fdsAfter} after 50 refusals\n`);

    assert.is(r.proc.exitCode, null, 'the router is still running');
    // Everyone else: the plain peer, the TLS connections made before (past their 1 s deadline), and new ones.
    await everyoneElseWorks(r, good, port.plain);
    await exchange(a, b, `closest/after-refusal-${i}`);
    const fresh = await rheaTls(port.external, certs.client);
    await exchange(fresh, a, `closest/after-refusal-${i}.fresh`);
  });
}

// ------------------------------------------------------------------------------------------
// Encrypted private keys

// rhea --TLS--> [R2 key-file]   password: file:PATH (a line with a newline)
//          \--> [R2 key-env]    password: env:VAR
//          \--> [R2 key-pwfile] passwordFile: PATH (deprecated)
//          \--> [R2 key-pass]   password: pass:TEXT
test('an encrypted private key with password file:, env:, passwordFile and pass: loads and serves', async () => {
  const dir = tempDir('amqp-mesh-tls-pw-');
  const withNewline = path.join(dir, 'password-line.txt');
  fs.writeFileSync(withNewline, `${certs.server.password}\nsecond line is not the password\n`);
  const enc = { certFile: certs.server.cert, privateKeyFile: certs.server.keyEncrypted };
  const names = ['key-file', 'key-env', 'key-pwfile', 'key-pass'];
  const config =
    'router {\n    mode: standalone\n    id: R2\n}\n' +
    profile('p-file', { ...enc, password: `file:${withNewline}` }) +
    profile('p-env', { ...enc, password: 'env:AMQP_MESH_TLS_TEST_PASSWORD' }) +
    profile('p-pwfile', { ...enc, passwordFile: certs.server.passwordFile }) +
    profile('p-pass', { ...enc, password: `pass:${certs.server.password}` }) +
    listener('key-file', { sslProfile: 'p-file', requireSsl: 'yes' }) +
    listener('key-env', { sslProfile: 'p-env', requireSsl: 'yes' }) +
    listener('key-pwfile', { sslProfile: 'p-pwfile', requireSsl: 'yes' }) +
    listener('key-pass', { sslProfile: 'p-pass', requireSsl: 'yes' });
  const r2 = await startRouter(config, { listeners: names.length, env: { AMQP_MESH_TLS_TEST_PASSWORD: certs.server.password } });
  try {
    for (const [i, name] of names.entries()) {
      const a = await rheaTls(r2.ports[i]);
      const b = await rheaTls(r2.ports[i]);
      await exchange(a, b, `closest/${name}`);
      await a.close();
      await b.close();
    }
    assert.match(r2.log.join('\n'), /Listening on 127\.0\.0\.1:\d+ \(listener key-env: amqps\)/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    assert.is(await r2.stop(), 0);
  }
});

// [R3 with a wrong password] -> exits 1 at start, naming the attribute
test('a password that does not decrypt the key: refused at start (exit 1), naming the attribute', async () => {
  const config =
    'router {\n    mode: standalone\n    id: R3\n}\n' +
    profile('bad', { certFile: certs.server.cert, privateKeyFile: certs.server.keyEncrypted, password: 'env:AMQP_MESH_TLS_TEST_WRONG' }) +
    listener('amqps', { sslProfile: 'bad', requireSsl: 'yes' });
  let error = '';
  const started = await startRouter(config, { env: { AMQP_MESH_TLS_TEST_WRONG: 'not-the-password' } }).catch((e: Error) => { error = e.message; return null; });
  if (started) {
    await started.stop();
    assert.unreachable('a router with a wrong key password must not start');
  }
  assert.match(error, /router\.conf:\d+: .*password.*does not decrypt privateKeyFile/);
});

// ------------------------------------------------------------------------------------------
// The broker

/** The broker's bound ports by listener name (startBroker returns at the first "Listening on"). */
async function brokerPorts(b: RunningBroker, names: string[]): Promise<Record<string, number>> {
  const bound: Record<string, number> = {};
  await waitFor(() => {
    for (const l of b.log) {
      const m = l.match(/Listening on \S+:(\d+) \(listener ([^:)]+)/);
      if (m) bound[m[2]] = Number(m[1]);
    }
    return names.every((n) => bound[n] > 0);
  }, 10_000, `broker listeners ${names.join(', ')}`);
  return bound;
}

// rhea --TLS (CA-verified)--> [B1 amqps] --TLS--> rhea
// rhea alice --TLS + EXTERNAL--> [B1 external] --> rhea alice
// raw plain AMQP --> [B1 amqps]: refused, logged;  rhea --> [B1 plain] still works
test('broker: requireSsl listener serves rhea over TLS; EXTERNAL gives user alice; plain AMQP refused and logged', async () => {
  const dataDir = tempDir();
  const config =
    `broker {\n    id: B1\n    dataDir: ${dataDir}\n    persistent: false\n}\n` +
    profile('server', { ...SERVER, uidFormat: 'n' }) +
    listener('plain', { saslMechanisms: 'ANONYMOUS PLAIN' }) +
    listener('amqps', { sslProfile: 'server', requireSsl: 'yes', saslMechanisms: 'ANONYMOUS PLAIN', initialHandshakeTimeoutSeconds: '1' }) +
    listener('external', { sslProfile: 'server', requireSsl: 'yes', authenticatePeer: 'yes', saslMechanisms: 'EXTERNAL' });
  const b: RunningBroker = await startBroker(config);
  try {
    const bp = await brokerPorts(b, ['plain', 'amqps', 'external']);

    const mark = b.log.length;
    const tx = await rheaTls(bp.amqps);
    const rx = await rheaTls(bp.amqps);
    await exchange(tx, rx, 'tls.queue', 5);
    assert.match(logSince(mark, b), /Accepted connection from 127\.0\.0\.1:\d+ on amqps \(tls\)/);

    const m2 = b.log.length;
    const ea = await rheaTls(bp.external, certs.client);
    const eb = await rheaTls(bp.external, certs.client);
    await exchange(ea, eb, 'tls.external', 3);
    assert.match(logSince(m2, b), /Accepted connection from 127\.0\.0\.1:\d+ on external \(tls, certificate alice\)/);
    assert.match(logSince(m2, b), /Connection open: container-id [^,]+, user alice$/m);

    const m3 = b.log.length;
    const refused = await bytesAttempt(bp.amqps, Buffer.from('AMQP\x00\x01\x00\x00', 'latin1'))();
    assert.is(refused.received.length, 0, 'nothing answered to plain AMQP');
    await logged(new RegExp(`listener amqps: refused 127\\.0\\.0\\.1:${refused.localPort}: plain AMQP on a listener that requires TLS`), m3, b);
    const mallory = await tlsAttempt(bp.external, { cert: fs.readFileSync(certs.untrustedClient.cert), key: fs.readFileSync(certs.untrustedClient.key) })();
    await logged(new RegExp(`listener external: refused 127\\.0\\.0\\.1:${mallory.localPort}: client certificate mallory refused`), m3, b);

    assert.is(b.exitCode, undefined, 'the broker is still running');
    const p1 = await rheaPlain(bp.plain);
    const p2 = await rheaPlain(bp.plain);
    await exchange(p1, p2, 'plain.queue');
    await exchange(tx, rx, 'tls.queue.after', 2);
  } catch (e) {
    if (!process.env.BROKER_LOG) process.stderr.write(`--- broker log (last 40 lines) ---\n${b.log.slice(-40).join('\n')}\n`);
    throw e;
  } finally {
    for (const c of clients.splice(0)) await c.close();
    assert.is(await b.stop(), 0, 'broker exits 0 on SIGTERM');
  }
});

// Node TLS 1.0 client --> [R-debian listener, sslProfile without protocols]   OPENSSL_CONF: no MinProtocol
// Node TLS 1.0 client --> [R-rhel   listener, sslProfile without protocols]   OPENSSL_CONF: MinProtocol TLSv1.2
test('sslProfile without protocols: the versions of the system OpenSSL policy, as qdrouterd (TLS 1.0 served or refused by openssl.cnf)', async () => {
  const dir = tempDir();
  const conf = (name: string, policy: string): string => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, `openssl_conf = init\n[init]\nssl_conf = ssl\n[ssl]\nsystem_default = policy\n[policy]\n${policy}`);
    return file;
  };
  const config = 'router {\n    mode: standalone\n    id: RV\n}\n' + profile('server', SERVER) + listener('amqps', { sslProfile: 'server', requireSsl: 'yes' });
  const debian = await startRouter(config, { env: { OPENSSL_CONF: conf('debian.cnf', 'CipherString = DEFAULT\n') } });
  const rhel = await startRouter(config, { env: { OPENSSL_CONF: conf('rhel.cnf', 'MinProtocol = TLSv1.2\nMaxProtocol = TLSv1.3\n') } });
  try {
    await logged(/sslProfile "server" has no protocols, so it allows what the system's OpenSSL policy does .* including TLSv1 and TLSv1\.1/, 0, debian);
    // What qdrouterd's own test (system_tests_ssl test_tls_all) asks: every version the system allows.
    const old = { minVersion: 'TLSv1', maxVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0' } as const;
    const s = await tlsConnect(debian.port, old);
    assert.is(s.getProtocol(), 'TLSv1');
    const c = rawOver(s);
    c.header(0);
    c.open();
    await c.waitForFrame((f) => f.name === 'open', 3000);
    const mark = rhel.log.length;
    const refused = await tlsConnect(rhel.port, old).then((x) => { x.destroy(); return null; }, (e: Error) => e);
    assert.ok(refused !== null, 'TLS 1.0 refused where the policy says TLS 1.2');
    await logged(/listener amqps: refused 127\.0\.0\.1:\d+: TLS handshake failed/, mark, rhel);
    assert.not.ok(rhel.log.some((l) => /has no protocols/.test(l)), 'no warning where the policy allows TLS 1.2 up');
    const modern = await tlsConnect(rhel.port);
    assert.is(modern.getProtocol(), 'TLSv1.3');
    modern.destroy();
  } finally {
    for (const c of clients.splice(0)) await c.close();
    assert.is(await debian.stop(), 0);
    assert.is(await rhel.stop(), 0);
  }
});

// rhea --TLS--> [B2 (persistent pair member), first listener amqps requireSsl]: open frame's failover-server-list
test('broker: a pair member whose client listener is TLS-only announces it as amqps in failover-server-list', async () => {
  // A client failing over with an entry (qpid-jms uses its scheme; Artemis announces "amqps" for
  // an sslEnabled acceptor) must not speak plain AMQP to a TLS-only port. (Regression: the broker
  // used to announce "amqp" for every entry; fixed in aa7a7df.)
  const dataDir = tempDir();
  const config =
    `broker {\n    id: B2\n    dataDir: ${dataDir}\n}\n` +
    profile('server', SERVER) +
    listener('amqps', { sslProfile: 'server', requireSsl: 'yes', saslMechanisms: 'ANONYMOUS PLAIN' });
  const b = await startBroker(config);
  try {
    const c = await rheaTls(b.port);
    const props = (c.conn as unknown as { properties?: Record<string, unknown> }).properties ?? {};
    const list = props['failover-server-list'] as { port: number; scheme: string }[] | undefined;
    assert.ok(Array.isArray(list) && list.length >= 1, `failover-server-list announced: ${JSON.stringify(props)}`);
    const self = list!.find((e) => Number(e.port) === b.port);
    assert.ok(self, `this broker's own entry: ${JSON.stringify(list)}`);
    assert.is(self!.scheme, 'amqps', `the TLS-only listener is announced with scheme ${self!.scheme}`);
    // And indeed plain AMQP to the announced port is refused.
    const mark = b.log.length;
    const plain = await bytesAttempt(b.port, Buffer.from('AMQP\x00\x01\x00\x00', 'latin1'))();
    await logged(new RegExp(`listener amqps: refused 127\\.0\\.0\\.1:${plain.localPort}: plain AMQP`), mark, b);
  } finally {
    for (const c of clients.splice(0)) await c.close();
    assert.is(await b.stop(), 0, 'broker exits 0 on SIGTERM');
  }
});

test.run();
