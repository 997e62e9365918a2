// Interoperability over TLS and WebSocket with clients nobody here wrote: Proton (python3-qpid-proton,
// amqps:// with peer-name verification, client certificates and SASL EXTERNAL), uAMQP (python3-uamqp,
// TLS only, `amqps://host/address` on the wire), rhea over ws:// and wss:// (to the router and to the
// broker) and qpid-jms 2.10 over amqp://, amqps://, amqpws:// and amqpwss://.
//
// Every router here is one standalone process with these listeners (port 0 each, in this order):
//
//   #0 plain    amqp, SASL ANONYMOUS PLAIN
//   #1 amqps    TLS only (requireSsl), server.pem (CN=localhost, SAN DNS:localhost IP:127.0.0.1), ANONYMOUS
//   #2 ext-n    TLS only, authenticatePeer, SASL EXTERNAL, client certificates verified by ca.pem, uidFormat n
//   #3 ext-ou   as ext-n with uidFormat ou
//   #4 ws       AMQP over WebSocket (http: yes), ANONYMOUS
//   #5 wss      AMQP over WebSocket over TLS (http: yes + sslProfile, requireSsl), ANONYMOUS
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeCertsSync, makeClientCert } from '../support/certs';
import { startBroker, tempDir } from '../support/broker';
import { jmsTls, jmsUrl, runJms, startJms } from '../support/jms';
import { runProton, startProton } from '../support/proton';
import { RunningRouter } from '../support/router';
import { openRheaWs, RheaWsConnection } from '../support/rhea-ws';
import { runUamqp, startUamqp } from '../support/uamqp';
import { bodies, numbered, receiver, sendAll } from './broker-helpers';
import { RheaClient, range, rheaConnect, waitFor, withRouter } from './helpers';

const CERTS = makeCertsSync(path.join(os.tmpdir(), 'amqp-mesh-certs-tls-system'));
/** CN=device-7, O=fleet, OU=sensors: the uid is "fleet;sensors" with uidFormat ou. */
const DEVICE = makeClientCert(CERTS.dir, 'device-7', { cn: 'device-7', o: 'fleet', ou: 'sensors' });

const LISTENERS = { plain: 0, amqps: 1, extN: 2, extOu: 3, ws: 4, wss: 5 } as const;

function sslProfile(name: string, uidFormat: string): string {
  return `sslProfile {\n    name: ${name}\n    certFile: ${CERTS.server.cert}\n    privateKeyFile: ${CERTS.server.key}\n    caCertFile: ${CERTS.ca}\n    uidFormat: ${uidFormat}\n}\n`;
}

function listener(name: string, attrs: string[]): string {
  return `listener {\n    name: ${name}\n    host: 127.0.0.1\n    port: 0\n${attrs.map((a) => `    ${a}\n`).join('')}}\n`;
}

/** The router of every test here: the six listeners above. */
function routerConfig(): string {
  return `router {\n    mode: standalone\n    id: TLS1\n}\n` +
    sslProfile('server-n', 'n') +
    sslProfile('server-ou', 'ou') +
    listener('plain', ['saslMechanisms: ANONYMOUS PLAIN']) +
    listener('amqps', ['sslProfile: server-n', 'requireSsl: yes', 'saslMechanisms: ANONYMOUS']) +
    listener('ext-n', ['sslProfile: server-n', 'requireSsl: yes', 'authenticatePeer: yes', 'saslMechanisms: EXTERNAL']) +
    listener('ext-ou', ['sslProfile: server-ou', 'requireSsl: yes', 'authenticatePeer: yes', 'saslMechanisms: EXTERNAL']) +
    listener('ws', ['http: yes', 'saslMechanisms: ANONYMOUS']) +
    listener('wss', ['sslProfile: server-n', 'requireSsl: yes', 'http: yes', 'saslMechanisms: ANONYMOUS']) +
    'address {\n    prefix: closest\n    distribution: closest\n}\naddress {\n    prefix: balanced\n    distribution: balanced\n}\n';
}

const withTlsRouter = <T>(fn: (r: RunningRouter) => Promise<T>): Promise<T> => withRouter(fn, routerConfig(), { listeners: 6 });

/** Proton options for amqps:// to listener `index`: the router's certificate must chain to the CA and name localhost. */
function protonTls(r: RunningRouter, index: number, extra: string[] = []): string[] {
  // Proton-C checks only DNS names of the certificate (not IP SANs): connect to 127.0.0.1, check "localhost".
  return ['--url', `amqps://127.0.0.1:${r.ports[index]}`, '--ssl-ca', CERTS.ca, '--ssl-verify', 'peer-name', '--ssl-peer-name', 'localhost', ...extra];
}

const logHas = (r: RunningRouter, re: RegExp) => r.log.some((l) => re.test(l));
const messages = (n: number, prefix = 'message-') => range(n, (i) => `${prefix}${i}`);

// ------------------------------------------------------------------------------------------ Proton

//   proton send x5 --amqps, peer-name localhost--> [TLS1 #1 amqps] --amqps--> proton receive x5
//   proton --amqps, peer-name other.example--X  (the certificate does not name it)
//   proton --amqp (plain)--X [TLS1 #1 requireSsl]
test('Proton over amqps:// verifying the router certificate (peer-name): send and receive; a wrong name and plain AMQP are refused', async () => {
  await withTlsRouter(async (r) => {
    const rx = startProton('receive.py', [...protonTls(r, LISTENERS.amqps), '--address', 'closest.tls1', '--count', '5', '--timeout', '10']);
    await rx.ready;
    const tx = await runProton('send.py', [...protonTls(r, LISTENERS.amqps), '--address', 'closest.tls1', '--count', '5', '--timeout', '10']);
    assert.is(tx.code, 0, JSON.stringify(tx.result) + tx.stderr);
    assert.is(tx.result.accepted, 5);
    assert.match(tx.result.tls[0].protocol, /^TLSv1\.[23]$/, 'the sender ran over TLS');
    const got = await rx.done;
    assert.is(got.code, 0, JSON.stringify(got.result));
    assert.equal(got.result.messages, messages(5));
    assert.match(got.result.tls[0].protocol, /^TLSv1\.[23]$/, 'the receiver ran over TLS');

    const wrongName = await runProton('send.py', [...protonTls(r, LISTENERS.amqps), '--ssl-peer-name', 'other.example', '--address', 'closest.tls1', '--count', '0', '--timeout', '5']);
    assert.is.not(wrongName.code, 0, 'a certificate for localhost/127.0.0.1 is refused for other.example');
    assert.match(wrongName.result.description, /certificate verify failed/);
    assert.is(wrongName.result.link_opened, false);

    const plain = await runProton('send.py', ['--url', `amqp://127.0.0.1:${r.ports[LISTENERS.amqps]}`, '--address', 'closest.tls1', '--count', '0', '--timeout', '5']);
    assert.is.not(plain.code, 0, 'plain AMQP on a requireSsl listener');
    await waitFor(() => logHas(r, /listener amqps: refused .*plain AMQP on a listener that requires TLS/), 3000, 'the refusal in the router log');
  });
});

//   proton send/receive (cert alice, EXTERNAL) --amqps--> [TLS1 #2 ext-n]  --> user "alice"
//   proton send (cert device-7 O=fleet OU=sensors, EXTERNAL) --amqps--> [TLS1 #3 ext-ou] --> user "fleet;sensors"
//   both reach the same closest.ext consumer (the alice receiver).
test('Proton with a client certificate and SASL EXTERNAL: the router takes the user id from the certificate (uidFormat n and ou)', async () => {
  await withTlsRouter(async (r) => {
    const alice = ['--ssl-cert', CERTS.client.cert, '--ssl-key', CERTS.client.key, '--sasl-mechs', 'EXTERNAL'];
    const rx = startProton('receive.py', [...protonTls(r, LISTENERS.extN, alice), '--container-id', 'alice-rx', '--address', 'closest.ext', '--count', '6', '--timeout', '10']);
    await rx.ready;
    const tx = await runProton('send.py', [...protonTls(r, LISTENERS.extN, alice), '--container-id', 'alice-tx', '--address', 'closest.ext', '--count', '3', '--timeout', '10']);
    assert.is(tx.code, 0, JSON.stringify(tx.result));
    assert.is(tx.result.accepted, 3);
    const dev = await runProton('send.py', [...protonTls(r, LISTENERS.extOu, ['--ssl-cert', DEVICE.cert, '--ssl-key', DEVICE.key, '--sasl-mechs', 'EXTERNAL']),
      '--container-id', 'device-tx', '--address', 'closest.ext', '--count', '3', '--body-prefix', 'device-', '--timeout', '10']);
    assert.is(dev.code, 0, JSON.stringify(dev.result));
    assert.is(dev.result.accepted, 3);
    const got = await rx.done;
    assert.is(got.result.received, 6);
    assert.equal(got.result.messages, [...messages(3), ...messages(3, 'device-')]);
    // The router log names the identity each certificate gave.
    assert.ok(logHas(r, /Accepted connection from .* on ext-n \(tls, certificate alice\)/), r.log.join('\n'));
    assert.ok(logHas(r, /Connection open: container-id alice-tx, user alice$/), 'uidFormat n: the common name');
    assert.ok(logHas(r, /Connection open: container-id alice-rx, user alice$/));
    assert.ok(logHas(r, /Connection open: container-id device-tx, user fleet;sensors$/), 'uidFormat ou: organization;unit');
  });
});

//   proton (cert mallory, signed by an untrusted CA) --amqps--X [TLS1 #2 ext-n]
//   proton (no certificate)                          --amqps--X [TLS1 #2 ext-n]
//   proton (cert alice)                              --amqps--> [TLS1 #2 ext-n]
test('Proton with an untrusted (or no) client certificate is refused by an EXTERNAL listener; a trusted one still gets in', async () => {
  await withTlsRouter(async (r) => {
    const mallory = await runProton('send.py', [...protonTls(r, LISTENERS.extN, ['--ssl-cert', CERTS.untrustedClient.cert, '--ssl-key', CERTS.untrustedClient.key, '--sasl-mechs', 'EXTERNAL']),
      '--address', 'closest.ext', '--count', '0', '--timeout', '5']);
    assert.is.not(mallory.code, 0, JSON.stringify(mallory.result));
    assert.is(mallory.result.link_opened, false);
    await waitFor(() => logHas(r, /listener ext-n: refused .*client certificate mallory refused/), 3000, 'the refusal of mallory in the log');
    const none = await runProton('send.py', [...protonTls(r, LISTENERS.extN, ['--sasl-mechs', 'EXTERNAL']), '--address', 'closest.ext', '--count', '0', '--timeout', '5']);
    assert.is.not(none.code, 0, JSON.stringify(none.result));
    await waitFor(() => logHas(r, /listener ext-n: refused .*no client certificate/), 3000, 'the refusal of a client without a certificate');
    assert.not.ok(logHas(r, /Connection open: .*user mallory/));
    const alice = await runProton('send.py', [...protonTls(r, LISTENERS.extN, ['--ssl-cert', CERTS.client.cert, '--ssl-key', CERTS.client.key, '--sasl-mechs', 'EXTERNAL']),
      '--address', 'closest.ext', '--count', '0', '--timeout', '5']);
    assert.is(alice.code, 0, JSON.stringify(alice.result));
    assert.is(alice.result.link_opened, true);
  });
});

// ------------------------------------------------------------------------------------------ uAMQP

//   uamqp send x4 (target "amqps://127.0.0.1/queue.x", rcv-settle-mode second) --amqps--> [TLS1 #1] --amqps--> proton receive queue.x
test('uAMQP sends to amqps://127.0.0.1/queue.x over TLS: a Proton receiver on queue.x gets every message, and uAMQP sees them accepted', async () => {
  await withTlsRouter(async (r) => {
    const rx = startProton('receive.py', [...protonTls(r, LISTENERS.amqps), '--address', 'queue.x', '--count', '4', '--timeout', '12']);
    await rx.ready;
    const tx = await runUamqp({ url: `amqps://127.0.0.1:${r.ports[LISTENERS.amqps]}`, ca: CERTS.ca, address: 'queue.x', count: 4, mode: 'send', timeout: 6 });
    assert.is(tx.result.target, 'amqps://127.0.0.1/queue.x', 'what uAMQP put on the wire');
    const got = await rx.done;
    assert.is(got.result.received, 4, 'the scheme://host/ prefix is normalised: queue.x');
    assert.equal(got.result.messages, messages(4));
    // uAMQP's sender asks for rcv-settle-mode second and completes a send only on a settled
    // outcome; the router answers first (as qdrouterd) and settles every outcome.
    assert.is(tx.code, 0, JSON.stringify(tx.result) + tx.stderr.slice(-2000));
    assert.is(tx.result.accepted, 4, `uAMQP's sends are accepted: ${JSON.stringify(tx.result)}`);
    assert.is(tx.result.send_failed, 0);
  });
});

//   proton send x4 --amqps--> [TLS1 #1] --amqps--> uamqp receive (source "amqps://127.0.0.1/queue.y", rcv-settle-mode second)
test('uAMQP receives from amqps://127.0.0.1/queue.y over TLS (rcv-settle-mode second) what a Proton sender sends to queue.y', async () => {
  await withTlsRouter(async (r) => {
    const rx = startUamqp({ url: `amqps://127.0.0.1:${r.ports[LISTENERS.amqps]}`, ca: CERTS.ca, address: 'queue.y', count: 4, mode: 'receive', timeout: 10 });
    const ready = await rx.ready;
    assert.is(ready.source, 'amqps://127.0.0.1/queue.y');
    const tx = await runProton('send.py', [...protonTls(r, LISTENERS.amqps), '--address', 'queue.y', '--count', '4', '--timeout', '10']);
    assert.is(tx.code, 0, JSON.stringify(tx.result));
    assert.is(tx.result.accepted, 4, "uAMQP's accepted outcomes reach the Proton sender");
    const got = await rx.done;
    assert.is(got.code, 0, JSON.stringify(got.result));
    assert.is(got.result.received, 4);
    assert.equal(got.result.bodies, messages(4));
    assert.equal(got.result.body_types, ['value', 'value', 'value', 'value']);
  });
});

//   rhea send x3 --amqp--> [TLS1 #0 plain] ... [TLS1 #5 wss] --wss /$servicebus/websocket/ AMQPWSB10--> uamqp receive queue.wsz
test('uAMQP over wss:// (its Azure path and AMQPWSB10 subprotocol) receives what rhea sends over plain AMQP', async () => {
  await withTlsRouter(async (r) => {
    const rx = startUamqp({ url: `wss://127.0.0.1:${r.ports[LISTENERS.wss]}`, ca: CERTS.ca, address: 'queue.wsz', count: 3, mode: 'receive', timeout: 10 });
    await rx.ready;
    const c = await rheaConnect(r, LISTENERS.plain);
    try {
      assert.equal(await sendAll(c, 'queue.wsz', numbered(3, 'message-')), ['accepted', 'accepted', 'accepted']);
    } finally {
      await c.close();
    }
    const got = await rx.done;
    assert.is(got.code, 0, JSON.stringify(got.result));
    assert.equal(got.result.bodies, messages(3));
    await waitFor(() => logHas(r, /on wss \(wss\)/), 3000, 'the router saw a wss connection');
  });
});

// ------------------------------------------------------------------------------------------ rhea over WebSocket

async function wsClient(url: string, ca?: string): Promise<RheaWsConnection & { close(): Promise<void> }> {
  return openRheaWs({ url, ...(ca ? { ca } : {}) });
}

const asClient = (c: RheaWsConnection): RheaClient => ({ ...c, events: [], close: async () => undefined }) as unknown as RheaClient;

//   rhea send x5 --ws://--> [TLS1 #4 ws]  ---> [TLS1 #5 wss] --wss://--> rhea receive x5
//   rhea --wss:// (Node's default CAs)--X  (the test CA is not trusted)
test('rhea over ws:// and wss:// to the router: a WebSocket sender reaches a WebSocket receiver; wss without the CA is refused', async () => {
  await withTlsRouter(async (r) => {
    const rxc = await wsClient(`wss://localhost:${r.ports[LISTENERS.wss]}/`, CERTS.ca);
    const txc = await wsClient(`ws://127.0.0.1:${r.ports[LISTENERS.ws]}/`);
    try {
      assert.is(rxc.socket()?.protocol, 'amqp', 'the router chose the amqp subprotocol');
      assert.is(txc.socket()?.protocol, 'amqp');
      const rx = await receiver(asClient(rxc), 'closest.ws');
      assert.equal(await sendAll(asClient(txc), 'closest.ws', numbered(5)), new Array(5).fill('accepted'));
      await waitFor(() => rx.messages.length === 5, 5000, 'five messages over wss');
      assert.equal(bodies(rx), range(5, (i) => `m${i}`));
      assert.ok(logHas(r, /on ws \(ws\)/) && logHas(r, /on wss \(wss\)/), 'the router saw one ws and one wss connection');
    } finally {
      await txc.close();
      await rxc.close();
    }
    let refused = '';
    await wsClient(`wss://localhost:${r.ports[LISTENERS.wss]}/`).then((c) => c.close(), (e: Error) => (refused = e.message));
    assert.match(refused, /self[- ]signed|unable to (get|verify)|certificate/i, 'wss without the CA fails verification');
  });
});

//   rhea send x5 --ws://--> [broker WS1 ws listener]  queue ws.orders  [broker WS1 wss listener] --wss://--> rhea receive x5
test('rhea over ws:// and wss:// to the broker (listeners with http: yes): a durable queue filled over ws, drained over wss', async () => {
  const c = CERTS;
  const config = `broker {\n    id: WS1\n    dataDir: ${tempDir()}\n}\n` +
    `sslProfile {\n    name: tls\n    certFile: ${c.server.cert}\n    privateKeyFile: ${c.server.key}\n}\n` +
    listener('plain', ['saslMechanisms: ANONYMOUS']) +
    listener('ws', ['http: yes', 'saslMechanisms: ANONYMOUS']) +
    listener('wss', ['sslProfile: tls', 'requireSsl: yes', 'http: yes', 'saslMechanisms: ANONYMOUS']);
  const b = await startBroker(config, { name: 'WS1' });
  try {
    await waitFor(() => b.log.filter((l) => /Listening on /.test(l)).length === 3, 5000, 'three broker listeners');
    const ports = b.log.map((l) => l.match(/Listening on [^\s]+:(\d+)/)).filter((m): m is RegExpMatchArray => m !== null).map((m) => Number(m[1]));
    const txc = await wsClient(`ws://127.0.0.1:${ports[1]}/`);
    try {
      assert.equal(await sendAll(asClient(txc), 'ws.orders', numbered(5, 'o')), new Array(5).fill('accepted'), 'the broker stored them');
    } finally {
      await txc.close();
    }
    const rxc = await wsClient(`wss://localhost:${ports[2]}/`, c.ca);
    try {
      assert.is(rxc.socket()?.protocol, 'amqp');
      const rx = await receiver(asClient(rxc), 'ws.orders');
      await waitFor(() => rx.messages.length === 5, 5000, 'five messages back over wss');
      assert.equal(bodies(rx), ['o0', 'o1', 'o2', 'o3', 'o4']);
    } finally {
      await rxc.close();
    }
    assert.ok(b.log.some((l) => /on ws \(ws\)/.test(l)) && b.log.some((l) => /on wss \(wss\)/.test(l)), b.log.join('\n'));
  } finally {
    assert.is(await b.stop(), 0, 'broker exits 0 on SIGTERM');
  }
});

// ------------------------------------------------------------------------------------------ qpid-jms

// A router without a broker: a JMS queue is just an address (capability "queue" is not needed;
// unconfigured addresses are balanced, qdrouterd's defaultDistribution, and balanced.* is configured
// so anyway). Outcomes are end to end, so the consumer must run on its own: a JmsClient that sends
// PERSISTENT (waiting for each outcome) and only then receives would wait for its own acknowledgement.
// So one JmsClient receives (attached first) and another sends, both over the same transport.
async function jmsRoundTrip(url: string, address: string, count: number): Promise<void> {
  const rx = startJms({ url, address, count, mode: 'receive', timeout: 20 }, 90_000);
  try {
    await rx.ready;
  } catch (e) {
    const d = await rx.done;
    throw new Error(`JMS consumer: ${(e as Error).message}\n${d.stderr.slice(-2000)}`);
  }
  const tx = await runJms({ url, address, count, mode: 'send', timeout: 15 }, 90_000);
  const got = await rx.done;
  assert.is(tx.code, 0, `JMS producer: ${JSON.stringify(tx.result)}\n${tx.stderr.slice(-2000)}`);
  assert.is(tx.result.sent, count, 'every PERSISTENT send got its outcome');
  assert.is(got.code, 0, `JMS consumer: ${JSON.stringify(got.result)}\n${got.stderr.slice(-2000)}`);
  assert.is(got.result.received, count);
  assert.equal(got.result.bodies, messages(count));
}

//   JmsClient send x10 (queue balanced.jms) --amqp--> [TLS1 #0 plain] --amqp--> JmsClient receive x10
test('qpid-jms over amqp:// through the router: send 10, receive 10 on a queue', async () => {
  await withTlsRouter(async (r) => {
    await jmsRoundTrip(`amqp://127.0.0.1:${r.ports[LISTENERS.plain]}`, 'balanced.jms', 10);
  });
});

//   JmsClient send x10 (truststore.p12, verifyHost) --amqps--> [TLS1 #1 amqps] --amqps--> JmsClient receive x10
test('qpid-jms over amqps:// (trust store from the test CA, host name checked): send 10, receive 10', async () => {
  await withTlsRouter(async (r) => {
    await jmsRoundTrip(jmsUrl(`amqps://127.0.0.1:${r.ports[LISTENERS.amqps]}`, jmsTls(CERTS)), 'balanced.jms-tls', 10);
    assert.ok(logHas(r, /on amqps \(tls\)/));
  });
});

//   JmsClient send x5 (truststore.p12 + client-alice.p12) --amqps, SASL EXTERNAL--> [TLS1 #2 ext-n] --> JmsClient receive x5 (same)
test('qpid-jms over amqps:// with a client certificate (key store): SASL EXTERNAL, user alice', async () => {
  await withTlsRouter(async (r) => {
    await jmsRoundTrip(jmsUrl(`amqps://127.0.0.1:${r.ports[LISTENERS.extN]}`, jmsTls(CERTS, { client: CERTS.client })), 'balanced.jms-ext', 5);
    assert.ok(logHas(r, /Connection open: container-id .*, user alice$/), r.log.join('\n'));
  });
});

//   JmsClient send x10 --amqpws (subprotocol amqp)--> [TLS1 #4 ws] --amqpws--> JmsClient receive x10
test('qpid-jms over amqpws:// through the router: send 10, receive 10', async () => {
  await withTlsRouter(async (r) => {
    await jmsRoundTrip(`amqpws://127.0.0.1:${r.ports[LISTENERS.ws]}`, 'balanced.jms-ws', 10);
    assert.ok(logHas(r, /on ws \(ws\)/));
  });
});

//   JmsClient send x10 (truststore.p12) --amqpwss--> [TLS1 #5 wss] --amqpwss--> JmsClient receive x10
test('qpid-jms over amqpwss:// through the router: send 10, receive 10', async () => {
  await withTlsRouter(async (r) => {
    await jmsRoundTrip(jmsUrl(`amqpwss://127.0.0.1:${r.ports[LISTENERS.wss]}`, jmsTls(CERTS)), 'balanced.jms-wss', 10);
    assert.ok(logHas(r, /on wss \(wss\)/));
  });
});

test.run();
