// TLS between the router's own processes: inter-router links with mutual certificates (SASL
// EXTERNAL), refused and unverifiable peers, hostname verification, and a broker pair reached over a
// TLS route-container connector that fails over.
//
// Certificates (test/support/certs.ts): server.pem is CN=localhost with SAN DNS:localhost and
// IP:127.0.0.1 (serverAuth + clientAuth); router-b/router-c.pem are client certificates of the test
// CA; mallory's is signed by a CA nobody trusts; wronghost.pem names only other.example.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeCertsSync, makeClientCert } from '../support/certs';
import { RunningBroker, freePort, startBroker, tempDir } from '../support/broker';
import { runProton, startProton } from '../support/proton';
import { RunningRouter, startRouter } from '../support/router';
import { waitFor } from '../support/wait';
import { RetryingProducer, assertNoneLost, collectingConsumer, connect, managementQuery, watchConnections } from './broker-helpers';

const CERTS = makeCertsSync(path.join(os.tmpdir(), 'amqp-mesh-certs-tls-system'));
const ROUTER_B = makeClientCert(CERTS.dir, 'router-b', { cn: 'router-b', o: 'amqp-mesh' });

interface Entity {
  type: string;
  attrs: Record<string, string | number | undefined>;
}

function conf(entities: Entity[]): string {
  return entities
    .map((e) => `${e.type} {\n${Object.entries(e.attrs).filter(([, v]) => v !== undefined).map(([k, v]) => `    ${k}: ${v}\n`).join('')}}\n`)
    .join('');
}

/** An interior router: a plain client listener (ports[0]), `more` entities, closest addresses, mesh debug log. */
function interior(id: string, more: Entity[]): string {
  return conf([
    { type: 'router', attrs: { mode: 'interior', id } },
    { type: 'listener', attrs: { name: 'clients', host: '127.0.0.1', port: 0 } },
    ...more,
    { type: 'address', attrs: { prefix: 'closest', distribution: 'closest' } },
    { type: 'log', attrs: { module: 'ROUTER_MA', enable: 'debug+' } },
  ]);
}

/** The server side of an inter-router TLS link (ports[1]): server.pem, client certificates verified against ca.pem, EXTERNAL only. */
function tlsInterRouterListener(): Entity[] {
  return [
    { type: 'sslProfile', attrs: { name: 'inter-router-server', certFile: CERTS.server.cert, privateKeyFile: CERTS.server.key, caCertFile: CERTS.ca, uidFormat: 'n' } },
    {
      type: 'listener',
      attrs: { name: 'ir', host: '127.0.0.1', port: 0, role: 'inter-router', sslProfile: 'inter-router-server', requireSsl: 'yes', authenticatePeer: 'yes', saslMechanisms: 'EXTERNAL' },
    },
  ];
}

/** An inter-router connector over TLS to `port`, with the sslProfile `profile` (attributes given). */
function tlsConnector(name: string, port: number, profile: Record<string, string>, extra: Record<string, string> = {}): Entity[] {
  return [
    { type: 'sslProfile', attrs: { name: `${name}-tls`, ...profile } },
    { type: 'connector', attrs: { name, host: '127.0.0.1', port, role: 'inter-router', sslProfile: `${name}-tls`, ...extra } },
  ];
}

const logHas = (r: RunningRouter | RunningBroker, re: RegExp, from = 0) => r.log.slice(from).some((l) => re.test(l));
const url = (r: RunningRouter) => `amqp://127.0.0.1:${r.port}`;

/** Waits until `r` logged a route to every id in `others`. */
async function routesTo(r: RunningRouter, others: string[], ms = 15_000): Promise<void> {
  for (const o of others) await waitFor(() => logHas(r, new RegExp(`routes:.*\\b${o} via`)), ms, `a route to ${o}`);
}

async function stopAll(...rs: (RunningRouter | null | undefined)[]): Promise<void> {
  for (const r of rs) if (r) await r.stop();
}

/** Router A of the mutual-TLS tests: plain clients on ports[0], the TLS inter-router listener on ports[1]. */
const startA = (id: string) => startRouter(interior(id, tlsInterRouterListener()), { listeners: 2 });

/** Router B: connects to A over TLS with its own certificate, SASL EXTERNAL, hostname verified. */
const startB = (id: string, aPort: number) =>
  startRouter(interior(id, tlsConnector('to-a', aPort, { certFile: ROUTER_B.cert, privateKeyFile: ROUTER_B.key, caCertFile: CERTS.ca }, { saslMechanisms: 'EXTERNAL', verifyHostname: 'yes' })));

//   proton send x10 --> [B] ==inter-router: TLS, cert router-b, EXTERNAL, verifyHostname==> [A ir: requireSsl, authenticatePeer, EXTERNAL] --> proton receive x10
test('two routers over mutual TLS (SASL EXTERNAL, hostname verified): a client on B reaches a consumer on A', async () => {
  let a: RunningRouter | null = null;
  let b: RunningRouter | null = null;
  try {
    a = await startA('MA');
    b = await startB('MB', a.ports[1]);
    await routesTo(b, ['MA']);
    await routesTo(a, ['MB']);
    // A accepted B with its certificate and took B's identity from it; B dialled with TLS.
    assert.ok(logHas(a, /Accepted connection from .* on ir \(tls, certificate router-b\)/), a.log.join('\n'));
    assert.ok(logHas(a, /Connection open: container-id MB, user router-b$/), 'SASL EXTERNAL: the user is the certificate CN');
    assert.ok(logHas(b, /connector to-a connected to 127\.0\.0\.1:\d+ \(TLS\)/), b.log.join('\n'));
    const rx = startProton('receive.py', ['--url', url(a), '--address', 'closest.mtls', '--count', '10', '--timeout', '15']);
    await rx.ready;
    await waitFor(() => logHas(b!, /\+\[M0closest\.mtls/), 10_000, 'B learns the consumer on A');
    const tx = await runProton('send.py', ['--url', url(b), '--address', 'closest.mtls', '--count', '10', '--timeout', '10']);
    assert.is(tx.code, 0, JSON.stringify(tx.result));
    assert.is(tx.result.accepted, 10, 'outcomes came back across the TLS link');
    const got = await rx.done;
    assert.equal(got.result.messages, Array.from({ length: 10 }, (_, i) => `message-${i}`));
  } finally {
    await stopAll(b, a);
  }
});

//   [C: connector TLS, CA only, no certificate] ==X==> [A ir: EXTERNAL]  <== [B: cert router-b] (good)
//   [D: connector TLS, cert mallory (untrusted CA)] ==X==> [A]
//   consumer on A (closest.refused): reachable from B, never from C or D.
test('routers with no client certificate or an untrusted one never join the mesh (A logs the refusals); the good mesh keeps working', async () => {
  let a: RunningRouter | null = null;
  let b: RunningRouter | null = null;
  let c: RunningRouter | null = null;
  let d: RunningRouter | null = null;
  try {
    a = await startA('RA');
    b = await startB('RB', a.ports[1]);
    await routesTo(b, ['RA']);
    c = await startRouter(interior('RC', tlsConnector('to-a', a.ports[1], { caCertFile: CERTS.ca }, { saslMechanisms: 'EXTERNAL' })));
    d = await startRouter(interior('RD', tlsConnector('to-a', a.ports[1],
      { certFile: CERTS.untrustedClient.cert, privateKeyFile: CERTS.untrustedClient.key, caCertFile: CERTS.ca }, { saslMechanisms: 'EXTERNAL' })));
    // Each keeps trying (connectors retry) and A refuses each attempt: wait for two of each.
    const count = (re: RegExp) => a!.log.filter((l) => re.test(l)).length;
    await waitFor(() => count(/listener ir: refused .*no client certificate/) >= 2, 10_000, 'A refuses C (no certificate) twice');
    await waitFor(() => count(/listener ir: refused .*client certificate mallory refused/) >= 2, 10_000, 'A refuses D (untrusted) twice');

    const rx = startProton('receive.py', ['--url', url(a), '--address', 'closest.refused', '--count', '3', '--timeout', '15']);
    await rx.ready;
    await waitFor(() => logHas(b!, /\+\[M0closest\.refused/), 10_000, 'B learns the consumer');
    // From C and D: no route to A, so no credit for the address.
    const [fromC, fromD] = await Promise.all([c, d].map((r) => runProton('send.py', ['--url', url(r!), '--address', 'closest.refused', '--count', '1', '--timeout', '3'])));
    for (const [name, res] of [['C', fromC], ['D', fromD]] as const) {
      assert.is(res.result.credit_received, false, `${name} never gets credit for a consumer on A: ${JSON.stringify(res.result)}`);
      assert.is(res.result.accepted, 0);
    }
    // The good link is untouched.
    const fromB = await runProton('send.py', ['--url', url(b), '--address', 'closest.refused', '--count', '3', '--timeout', '10']);
    assert.is(fromB.result.accepted, 3, JSON.stringify(fromB.result));
    assert.is((await rx.done).result.received, 3);
    for (const id of ['RC', 'RD']) {
      assert.not.ok(logHas(a, new RegExp(`neighbour ${id} up`)), `${id} never became A's neighbour`);
      assert.not.ok(logHas(a, new RegExp(`routes:.*\\b${id} via`)), `A has no route to ${id}`);
    }
    assert.not.ok(logHas(c, /neighbour RA up/) || logHas(d, /neighbour RA up/), 'neither C nor D saw A as a neighbour');
    assert.not.ok(logHas(a, /Connection open: container-id R[CD]/), 'neither got as far as an AMQP open');
  } finally {
    await stopAll(d, c, b, a);
  }
});

/** Milliseconds since the epoch of a log line's timestamp ("2026-12-06 22:10:46.875 ..."). */
function logTime(line: string): number {
  const m = line.match(/^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d{3}) /);
  if (!m) throw new Error(`no timestamp in: ${line}`);
  return new Date(`${m[1]}T${m[2]}`).getTime();
}

//   [C: connector TLS, CA only, no certificate] ==X==> [A ir: EXTERNAL]    A's refusals of C, timed
test('a connector refused for its certificate backs off (1 s, 2 s, 4 s, then 5 s) as for any failed connect', async () => {
  let a: RunningRouter | null = null;
  let c: RunningRouter | null = null;
  try {
    a = await startA('KA');
    c = await startRouter(interior('KC', tlsConnector('to-a', a.ports[1], { caCertFile: CERTS.ca }, { saslMechanisms: 'EXTERNAL' })));
    const refusals = () => a!.log.filter((l) => /listener ir: refused .*no client certificate/.test(l));
    await waitFor(() => refusals().length >= 4, 15_000, 'four attempts by C');
    const times = refusals().slice(0, 4).map(logTime);
    const gaps = times.slice(1).map((t, i) => t - times[i]);
    assert.not.ok(logHas(a, /Connection open: container-id KC/));
    // With TLS 1.3 the client's handshake completes before the server checks its certificate: a
    // refused connector must still back off (1 s, 2 s, 4 s, then 5 s), since its peer never opened.
    assert.ok(gaps[1] >= 1700 && gaps[2] >= 3500, `backoff between C's refused attempts: ${gaps.join(', ')} ms\n${c.log.slice(-8).join('\n')}`);
  } finally {
    await stopAll(c, a);
  }
});

//   [V1: connector TLS, CA, verifyHostname yes] ==X==> [W ir: TLS, wronghost.pem (CN/SAN other.example, trusted CA)]
//   [V2: connector TLS, CA, verifyHostname no ] =====> [W]      proton send on V2 --> consumer on W
test('verifyHostname: a server certificate naming other.example is refused for 127.0.0.1 (logged); with verifyHostname: no the link comes up', async () => {
  const wEntities: Entity[] = [
    { type: 'sslProfile', attrs: { name: 'wrong', certFile: CERTS.wrongHost.cert, privateKeyFile: CERTS.wrongHost.key } },
    { type: 'listener', attrs: { name: 'ir', host: '127.0.0.1', port: 0, role: 'inter-router', sslProfile: 'wrong', requireSsl: 'yes', saslMechanisms: 'ANONYMOUS' } },
  ];
  let w: RunningRouter | null = null;
  let v1: RunningRouter | null = null;
  let v2: RunningRouter | null = null;
  try {
    w = await startRouter(interior('VW', wEntities), { listeners: 2 });
    v1 = await startRouter(interior('V1', tlsConnector('to-w', w.ports[1], { caCertFile: CERTS.ca }, { verifyHostname: 'yes' })));
    await waitFor(() => logHas(v1!, /connector to-w: .*(does not match certificate|altnames)/i), 10_000, "V1 logs the certificate's wrong name");
    v2 = await startRouter(interior('V2', tlsConnector('to-w', w.ports[1], { caCertFile: CERTS.ca }, { verifyHostname: 'no' })));
    await routesTo(v2, ['VW']);
    await routesTo(w, ['V2']);
    const rx = startProton('receive.py', ['--url', url(w), '--address', 'closest.vh', '--count', '2', '--timeout', '10']);
    await rx.ready;
    await waitFor(() => logHas(v2!, /\+\[M0closest\.vh/), 10_000, 'V2 learns the consumer on W');
    const tx = await runProton('send.py', ['--url', url(v2), '--address', 'closest.vh', '--count', '2', '--timeout', '10']);
    assert.is(tx.result.accepted, 2, JSON.stringify(tx.result));
    assert.is((await rx.done).result.received, 2);
    assert.not.ok(logHas(v1, /neighbour VW up/), 'V1 never joined');
    assert.not.ok(logHas(w, /neighbour V1 up/));
    assert.not.ok(logHas(w, /Connection open: container-id V1/), 'V1 never got as far as an AMQP open');
  } finally {
    await stopAll(v2, v1, w);
  }
});

// ------------------------------------------------------------------------------------------ broker pair over TLS

/** A broker of the pair: TLS only on `port` (server.pem), sharing `dataDir`. */
function tlsBrokerConfig(id: string, dataDir: string, port: number): string {
  return conf([
    { type: 'broker', attrs: { id, dataDir } },
    { type: 'sslProfile', attrs: { name: 'tls', certFile: CERTS.server.cert, privateKeyFile: CERTS.server.key } },
    { type: 'listener', attrs: { host: '127.0.0.1', port, sslProfile: 'tls', requireSsl: 'yes', saslMechanisms: 'ANONYMOUS' } },
  ]);
}

/** A router with a TLS route-container connector to the pair: the waypoint queue. with auto-links for queue.orders. */
function pairRouter(port: number, failoverUrls: string): string {
  return interior('PA', [
    { type: 'sslProfile', attrs: { name: 'to-brokers', caCertFile: CERTS.ca } },
    { type: 'connector', attrs: { name: 'pair1', host: '127.0.0.1', port, role: 'route-container', sslProfile: 'to-brokers', verifyHostname: 'yes', failoverUrls } },
    { type: 'address', attrs: { prefix: 'queue', waypoint: 'yes' } },
    { type: 'autoLink', attrs: { address: 'queue.orders', direction: 'in', connection: 'pair1' } },
    { type: 'autoLink', attrs: { address: 'queue.orders', direction: 'out', connection: 'pair1' } },
  ]);
}

//   rhea producer --> [PA] --route-container, TLS (CA, verifyHostname)--> [broker M :p1, requireSsl] (live)
//   rhea consumer <-- [PA]      failoverUrls 127.0.0.1:p2 ---------------> [broker S :p2, requireSsl] (slave)
//   queue.  : waypoint; auto-links in/out for queue.orders                  same dataDir
test('a broker pair behind a TLS route-container connector: the waypoint works, and after kill -9 of the live broker the router fails over over TLS and delivery continues', async () => {
  const dataDir = tempDir();
  const [p1, p2] = [await freePort(), await freePort()];
  let m: RunningBroker | null = null;
  let s: RunningBroker | null = null;
  let a: RunningRouter | null = null;
  try {
    m = await startBroker(tlsBrokerConfig('tls-master', dataDir, p1), { name: 'master' });
    s = await startBroker(tlsBrokerConfig('tls-slave', dataDir, p2), { name: 'slave', waitLive: false });
    // Written without a scheme: `amqps://127.0.0.1:p2` is refused at load (see the last test).
    a = await startRouter(pairRouter(p1, `127.0.0.1:${p2}`));
    await waitFor(() => (a!.log.filter((l) => /auto-link .*: active/.test(l)).length >= 2), 10_000, 'both auto-links active');
    assert.ok(logHas(m, /Accepted connection from .* \(tls\)/), `the router reached the master over TLS:\n${m.log.join('\n')}`);

    const pc = await connect({ port: a.port });
    const cc = await connect({ port: a.port });
    const events: string[] = [];
    watchConnections([['producer', pc], ['consumer', cc]], events);
    const received = collectingConsumer(cc, 'queue.orders', 100, events);
    const N = 600;
    const p = new RetryingProducer(pc, 'queue.orders', N, events);
    await waitFor(() => p.accepted.size >= 150 && received.length >= 100, 15_000, '150 accepted and 100 received through the master');
    const mark = a.log.length;
    await m.kill('SIGKILL');
    await s.waitLive(10_000);
    await waitFor(() => p.done && new Set(received).size === N, 30_000, `all ${N} accepted and received (accepted ${p.accepted.size}, received ${new Set(received).size})`);
    const duplicates = assertNoneLost(p.accepted, received);
    assert.equal(events, [], 'client links and connections stayed up');
    // The slave's log reaches us through its own pipe: it may trail the deliveries it served.
    await waitFor(() => logHas(s!, /Accepted connection from .* \(tls\)/), 5000, `the router reached the slave over TLS:\n${s.log.join('\n')}`);
    assert.ok(logHas(a, /connector pair1: active on 127\.0\.0\.1:\d+/, mark), 'the connector came back');
    const pair = (await managementQuery(cc, 'org.apache.qpid.dispatch.connector')).find((x) => x.name === 'pair1') as Record<string, unknown>;
    assert.is(pair.activeUrl, `127.0.0.1:${s.port}`, 'the connector now uses the former slave');
    assert.is(pair.connectionStatus, 'SUCCESS');
    process.stdout.write(`  (TLS pair failover: ${p.resent} resent, ${duplicates} duplicates)\n`);
    await pc.close();
    await cc.close();
  } finally {
    await stopAll(a);
    await m?.stop();
    await s?.stop();
  }
});

//   [PA] --route-container TLS--> 127.0.0.1:p1 (nothing listens) ... failoverUrls amqps://127.0.0.1:p2 --> [broker S, requireSsl] (live)
test('a TLS route-container connector takes failoverUrls written amqps:// (qdrouterd spells a TLS pair so) and fails over to it', async () => {
  // Every candidate is dialled with the connector's sslProfile, as qdrouterd does.
  const dataDir = tempDir();
  const [p1, p2] = [await freePort(), await freePort()];
  let live: RunningBroker | null = null;
  let a: RunningRouter | null = null;
  try {
    live = await startBroker(tlsBrokerConfig('tls-only', dataDir, p2), { name: 'only' });
    a = await startRouter(pairRouter(p1, `amqps://127.0.0.1:${p2}`));
    await waitFor(() => (a!.log.filter((l) => /auto-link .*: active/.test(l)).length >= 2), 10_000, 'both auto-links active on the amqps:// failover URL');
    assert.ok(logHas(live, /Accepted connection from .* \(tls\)/));
  } finally {
    await stopAll(a);
    await live?.stop();
  }
});

test.run();
