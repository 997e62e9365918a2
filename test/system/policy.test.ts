/**
 * qdrouterd's policy on a real router process, with rhea and Proton clients: an IoT fleet where
 * each device (client certificate) may only send to telemetry.<id> and receive from command.<id>;
 * a tenant past its connection limit; an oversize message; a forged user-id; the global
 * connection limit; vhosts created, changed and deleted through management.
 *
 *   device-1, device-2 --TLS, SASL EXTERNAL (uid = CN)--> [R listener devices, policyVhost iot]
 *   ops (PLAIN ops)    --------------------------------> [R listener plain]  vhost by open hostname
 *   acme clients       --------------------------------> [R listener plain]  hostname acme (2 connections at most)
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import rhea = require('rhea');
import { RunningRouter, plainUsersDir, startRouter } from '../support/router';
import { brokerConfig, startBroker, tempDir } from '../support/broker';
import { makeCertsSync, makeClientCert } from '../support/certs';
import { ask, rows } from '../support/management';
import { protonAvailable, runProton } from '../support/proton';
import { RheaClient, collect, once, outcomes, rheaConnect, waitFor, waitSendable } from './helpers';

const certDir = path.join(os.tmpdir(), 'amqp-mesh-test-certs');
const certs = makeCertsSync(certDir);
const device1 = makeClientCert(certDir, 'device-1', { cn: 'device-1', o: 'fleet' });
const device2 = makeClientCert(certDir, 'device-2', { cn: 'device-2', o: 'fleet' });
const CA = fs.readFileSync(certs.ca);

const CONFIG = `
router {
    mode: standalone
    id: R1
    saslConfigDir: ${plainUsersDir({ ops: 'ops-secret', alice: 'alice-secret', admin: 'admin-secret', viewer: 'viewer-secret' })}
}
sslProfile {
    name: fleet-tls
    certFile: ${certs.server.cert}
    privateKeyFile: ${certs.server.key}
    caCertFile: ${certs.ca}
    uidFormat: n
}
listener {
    name: plain
    host: 127.0.0.1
    port: 0
    saslMechanisms: ANONYMOUS PLAIN
}
listener {
    name: devices
    host: 127.0.0.1
    port: 0
    sslProfile: fleet-tls
    requireSsl: yes
    authenticatePeer: yes
    saslMechanisms: EXTERNAL
    policyVhost: iot
}
policy {
    maxConnections: 12
    enableVhostPolicy: true
    defaultVhost: $default
}
vhost {
    hostname: iot
    allowUnknownUser: false
    groups: {
        devices: {
            users: device-1, device-2
            remoteHosts: 127.0.0.1
            sources: command.\${user}
            targets: telemetry.\${user}
        }
    }
}
vhost {
    hostname: acme
    maxConnections: 2
    allowUnknownUser: true
    groups: {
        $default: {
            remoteHosts: *
            sources: acme.*
            targets: acme.*
            maxMessageSize: 1000
        }
    }
}
vhost {
    hostname: $default
    allowUnknownUser: true
    groups: {
        $default: {
            users: *
            remoteHosts: *
            sources: *
            targets: *
            allowAnonymousSender: true
            allowDynamicSource: true
        }
        admins: {
            users: admin
            remoteHosts: *
            sources: *
            targets: *
            allowUserIdProxy: true
        }
        viewers: {
            users: viewer
            remoteHosts: *
            sources: *
            targets: *
            allowDynamicSource: true
            allowAdminStatusUpdate: false
            allowDynamicLinkRoutes: false
        }
    }
}
`;

let r: RunningRouter;
const clients: RheaClient[] = [];

test.before(async () => {
  r = await startRouter(CONFIG, { listeners: 2 }).catch((e) => { process.stderr.write(`${(e as Error).message}\n`); throw e; });
});
test.after(async () => {
  assert.is(await r.stop(), 0, 'router exits 0 on SIGTERM');
});
test.after.each(async () => {
  for (const c of clients.splice(0)) await c.close();
});

async function connect(options: Partial<rhea.ConnectionOptions> = {}, index = 0): Promise<RheaClient> {
  const c = await rheaConnect(r, index, options);
  clients.push(c);
  return c;
}

function device(cert: { cert: string; key: string }): Promise<RheaClient> {
  return connect({
    transport: 'tls', ca: CA, servername: 'localhost', rejectUnauthorized: true,
    cert: fs.readFileSync(cert.cert), key: fs.readFileSync(cert.key), enable_sasl_external: true,
  } as unknown as Partial<rhea.ConnectionOptions>, 1);
}

/** The detach a refused link gets: its error, once the router closes the link. */
function refusal(link: rhea.Sender | rhea.Receiver): Promise<{ condition?: string; description?: string }> {
  return new Promise((resolve) => {
    const done = () => {
      const e = (link as unknown as { error?: { condition?: string; description?: string } }).error;
      resolve({ condition: e?.condition, description: e?.description });
    };
    link.once('sender_close' as never, done);
    link.once('receiver_close' as never, done);
  });
}

const mgmt = () => `amqp://ops:ops-secret@127.0.0.1:${r.ports[0]}`;

// device-1 --EXTERNAL--> [R devices, vhost iot] --> ops on telemetry.device-1
test('IoT fleet: a device sends only to telemetry.<its id> and receives only from command.<its id>', async () => {
  const ops = await connect({ username: 'ops', password: 'ops-secret' } as Partial<rhea.ConnectionOptions>);
  const telemetry = ops.conn.open_receiver('telemetry.device-1');
  await once(telemetry as never, 'receiver_open');
  const got = collect(telemetry);

  const d1 = await device(device1);
  const own = d1.conn.open_sender('telemetry.device-1');
  await waitSendable(own);
  own.send({ body: 'temp=21' });
  await waitFor(() => got.messages.length === 1, 5000, 'telemetry from device-1 reached ops');
  assert.is(got.messages[0].body, 'temp=21');

  const others = d1.conn.open_sender('telemetry.device-2');
  const err = await refusal(others);
  assert.equal(err, { condition: 'amqp:unauthorized-access', description: 'link disallowed by local policy' });
  const cmd = d1.conn.open_receiver('command.device-1');
  await once(cmd as never, 'receiver_open');
  assert.equal(await refusal(d1.conn.open_receiver('command.device-2')), { condition: 'amqp:unauthorized-access', description: 'link disallowed by local policy' });
  assert.equal(await refusal(d1.conn.open_sender()), { condition: 'amqp:unauthorized-access', description: 'link disallowed by local policy' }, 'no anonymous sender');

  // device-2's own links work on the same vhost.
  const d2 = await device(device2);
  const own2 = d2.conn.open_sender('telemetry.device-2');
  await once(own2 as never, 'sender_open');

  const [stats] = (await ask(mgmt(), [{ properties: { operation: 'QUERY', type: 'org.apache.qpid.dispatch.vhostStats' }, body: { attributeNames: [] } }])).replies;
  const iot = rows(stats).find((s) => s.hostname === 'iot')!;
  assert.equal([iot.senderDenied, iot.receiverDenied, iot.connectionsCurrent], [2, 1, 2]);
});

// Proton (not ours) --TLS, EXTERNAL as device-1--> [R devices] : telemetry.device-2 refused
test('IoT fleet with Proton: the refusal carries qdrouterd\'s condition', async () => {
  if (!protonAvailable()) return;
  const run = await runProton('send.py', [
    '--url', `amqps://127.0.0.1:${r.ports[1]}`, '--ssl-ca', certs.ca, '--ssl-cert', device1.cert, '--ssl-key', device1.key, '--ssl-peer-name', 'localhost',
    '--sasl-mechs', 'EXTERNAL', '--address', 'telemetry.device-2', '--count', '1', '--timeout', '5',
  ]);
  assert.is.not(run.code, 0, JSON.stringify(run.result));
  assert.is(run.result.condition, 'amqp:unauthorized-access');
  const ok = await runProton('send.py', [
    '--url', `amqps://127.0.0.1:${r.ports[1]}`, '--ssl-ca', certs.ca, '--ssl-cert', device1.cert, '--ssl-key', device1.key, '--ssl-peer-name', 'localhost',
    '--sasl-mechs', 'EXTERNAL', '--address', 'telemetry.device-1', '--count', '3', '--timeout', '5',
  ]);
  assert.is(ok.code, 0, JSON.stringify(ok.result));
});

// acme x3 --hostname acme--> [R plain] : the third is refused; $default still served
test('a tenant past its connection limit is refused with amqp:resource-limit-exceeded; others are served', async () => {
  await connect({ hostname: 'acme' } as Partial<rhea.ConnectionOptions>);
  await connect({ hostname: 'acme' } as Partial<rhea.ConnectionOptions>);
  const third = await connect({ hostname: 'acme' } as Partial<rhea.ConnectionOptions>);
  await waitFor(() => third.events.some((e) => e.name === 'connection_close' || e.name === 'connection_error'), 5000, 'the third acme connection is closed');
  const closed = third.events.find((e) => e.condition !== undefined)!;
  assert.equal([closed.condition, closed.description], ['amqp:resource-limit-exceeded', 'connection disallowed by local policy']);
  const other = await connect({ hostname: 'elsewhere' } as Partial<rhea.ConnectionOptions>);
  const rx = other.conn.open_receiver('anything');
  await once(rx as never, 'receiver_open');
  const s = other.conn.open_sender('anything');
  await waitSendable(s);
  const [stats, policy] = (await ask(mgmt(), [
    { properties: { operation: 'QUERY', type: 'org.apache.qpid.dispatch.vhostStats' }, body: { attributeNames: ['hostname', 'connectionsDenied', 'connectionsApproved'] } },
    { properties: { operation: 'QUERY', type: 'org.apache.qpid.dispatch.policy' }, body: { attributeNames: ['connectionsDenied', 'totalDenials'] } },
  ])).replies;
  const acme = rows(stats).find((x) => x.hostname === 'acme')!;
  assert.equal([acme.connectionsDenied, acme.connectionsApproved], [1, 2]);
  assert.ok((rows(policy)[0].connectionsDenied as number) >= 1);
});

// acme sender --1 KiB body--> [R plain, acme maxMessageSize 1000]
test('an oversize message: rejected, the connection closed with amqp:connection:forced; counted; others unaffected', async () => {
  const c = await connect({ hostname: 'acme' } as Partial<rhea.ConnectionOptions>);
  const bystander = await connect({ hostname: 'acme' } as Partial<rhea.ConnectionOptions>);
  const rx = bystander.conn.open_receiver('acme.orders');
  await once(rx as never, 'receiver_open');
  const got = collect(rx);
  const s = c.conn.open_sender('acme.orders');
  await waitSendable(s);
  s.send({ body: 'small' });
  await waitFor(() => got.messages.length === 1, 5000, 'a small message passes');
  s.send({ body: 'x'.repeat(2000) });
  await waitFor(() => c.events.some((e) => e.condition === 'amqp:connection:forced'), 5000, 'the sender\'s connection is closed');
  assert.is(c.events.find((e) => e.condition === 'amqp:connection:forced')!.description, 'Message size exceeded');
  const s2 = bystander.conn.open_sender('acme.orders');
  await waitSendable(s2);
  s2.send({ body: 'still here' });
  await waitFor(() => got.messages.length === 2, 5000, 'the other connection is still served');
  const [policy] = (await ask(mgmt(), [{ properties: { operation: 'QUERY', type: 'org.apache.qpid.dispatch.policy' }, body: { attributeNames: ['maxMessageSizeDenied'] } }])).replies;
  assert.is(rows(policy)[0].maxMessageSizeDenied, 1);
});

// alice --user-id "admin"--> [R plain] : rejected; admin (allowUserIdProxy) may
test('a forged user-id is rejected (amqp:unauthorized-access); the own one passes; allowUserIdProxy lets it through', async () => {
  const rx = (await connect()).conn.open_receiver('q.userid');
  await once(rx as never, 'receiver_open');
  const got = collect(rx);
  const alice = await connect({ username: 'alice', password: 'alice-secret' } as Partial<rhea.ConnectionOptions>);
  const s = alice.conn.open_sender('q.userid');
  await waitSendable(s);
  const out = outcomes(s);
  const rejected: { condition?: string; description?: string }[] = [];
  s.on('rejected', (ctx) => {
    const e = ctx.delivery.remote_state?.error;
    rejected.push({ condition: e?.condition, description: e?.description });
  });
  s.send({ body: 'forged', user_id: 'admin' } as rhea.Message);
  s.send({ body: 'own', user_id: 'alice' } as rhea.Message);
  await waitFor(() => out.rejected === 1 && out.accepted === 1, 5000, 'one rejected, one accepted');
  assert.equal(rejected[0], { condition: 'amqp:unauthorized-access', description: 'user_id proxy violation' });
  await waitFor(() => got.messages.length === 1, 5000, 'the own one delivered');
  assert.is(got.messages[0].body, 'own');

  const admin = await connect({ username: 'admin', password: 'admin-secret' } as Partial<rhea.ConnectionOptions>);
  const as = admin.conn.open_sender('q.userid');
  await waitSendable(as);
  as.send({ body: 'on behalf', user_id: 'alice' } as rhea.Message);
  await waitFor(() => got.messages.length === 2, 5000, 'a proxy user-id passes for a group that allows it');
});

// management: CREATE, UPDATE, DELETE a vhost; a bad one refused 500 PolicyError; the router keeps serving
test('vhosts through management: created, updated, deleted; an invalid one refused as qdrouterd refuses it', async () => {
  const T = 'org.apache.qpid.dispatch.vhost';
  const [created, read, updated, bad, deleted, list] = (await ask(mgmt(), [
    { properties: { operation: 'CREATE', type: T, name: 'beta' }, body: { hostname: 'beta', maxConnections: 5, groups: { $default: { remoteHosts: '*', sources: '*' } }, allowUnknownUser: true } },
    { properties: { operation: 'READ', type: T, name: 'beta' }, body: {} },
    { properties: { operation: 'UPDATE', type: T, name: 'beta' }, body: { maxConnections: 7 } },
    { properties: { operation: 'CREATE', type: T, name: 'broken' }, body: { hostname: 'broken', maxConnections: 70000 } },
    { properties: { operation: 'DELETE', type: T, name: 'beta' }, body: {} },
    { properties: { operation: 'QUERY', type: T }, body: { attributeNames: ['hostname'] } },
  ])).replies;
  assert.is(created.statusCode, 201, created.statusDescription);
  assert.is(read.body.maxConnections, 5);
  assert.is(read.body.identity, 'vhost/beta');
  assert.is(updated.statusCode, 200, updated.statusDescription);
  assert.is(updated.body.maxConnections, 7);
  assert.is(bad.statusCode, 500, bad.statusDescription);
  assert.match(bad.statusDescription, /^PolicyError: Policy 'broken' is invalid: Policy vhost 'broken' option 'maxConnections' has error 'Value '70000' is above maximum '65535'\.'/);
  assert.is(deleted.statusCode, 204);
  assert.equal(rows(list).map((x) => x.hostname).sort(), ['$default', 'acme', 'iot']);

  // A group with allowAdminStatusUpdate: false may look but not close connections (qdrouterd's 403).
  const victim = await connect({ properties: { marker: 'victim' } } as Partial<rhea.ConnectionOptions>);
  const C = 'org.apache.qpid.dispatch.connection';
  const [conns] = (await ask(`amqp://viewer:viewer-secret@127.0.0.1:${r.ports[0]}`, [{ properties: { operation: 'QUERY', type: C }, body: { attributeNames: ['identity', 'properties'] } }])).replies;
  const id = rows(conns).find((c) => (c.properties as Record<string, unknown> | null)?.marker === 'victim')!.identity;
  const [forbidden] = (await ask(`amqp://viewer:viewer-secret@127.0.0.1:${r.ports[0]}`, [{ properties: { operation: 'UPDATE', type: C, identity: id }, body: { adminStatus: 'deleted' } }])).replies;
  assert.equal([forbidden.statusCode, forbidden.statusDescription], [403, 'Forbidden']);
  // ... nor make link routes of its own (allowDynamicLinkRoutes: false).
  const LR = 'org.apache.qpid.dispatch.router.connection.linkRoute';
  const [noRoute] = (await ask(`amqp://viewer:viewer-secret@127.0.0.1:${r.ports[0]}`, [{ properties: { operation: 'CREATE', type: LR, name: 'mine' }, body: { pattern: 'svc.#', direction: 'in' } }])).replies;
  assert.equal([noRoute.statusCode, noRoute.statusDescription], [403, 'Forbidden']);
  const [route] = (await ask(mgmt(), [{ properties: { operation: 'CREATE', type: LR, name: 'mine' }, body: { pattern: 'svc.#', direction: 'in' } }])).replies;
  assert.is(route.statusCode, 201, route.statusDescription);
  const [closed] = (await ask(mgmt(), [{ properties: { operation: 'UPDATE', type: C, identity: id }, body: { adminStatus: 'deleted' } }])).replies;
  assert.is(closed.statusCode, 200, 'a group that allows it closes the connection');
  await waitFor(() => victim.events.some((e) => e.condition === 'amqp:connection:forced'), 5000, 'the connection closed by management');
});

// 12 sockets at most (policy maxConnections): the next is closed before any AMQP
test('the global maxConnections: a socket past it is closed at once; counted', async () => {
  const current = async (): Promise<number | null> => {
    // Refused while the router is at its limit (or has not yet seen sockets close).
    const reply = await ask(mgmt(), [{ properties: { operation: 'QUERY', type: 'org.apache.qpid.dispatch.policy' }, body: { attributeNames: ['connectionsCurrent'] } }]).catch(() => null);
    return reply === null ? null : rows(reply.replies[0])[0].connectionsCurrent as number;
  };
  // Only the asking connection is open: 11 more fill the limit of 12.
  await waitFor(async () => (await current()) === 1, 5000, 'earlier connections to be gone');
  const held: net.Socket[] = [];
  try {
    for (let i = 0; i < 12; i++) {
      const s = net.connect(r.ports[0], '127.0.0.1');
      s.on('error', () => undefined);
      await once(s, 'connect');
      held.push(s);
    }
    const extra = net.connect(r.ports[0], '127.0.0.1');
    const bytes: Buffer[] = [];
    extra.on('error', () => undefined);
    extra.on('data', (b) => bytes.push(b));
    extra.write(Buffer.from('AMQP\x00\x01\x00\x00', 'binary'));
    await once(extra, 'close');
    assert.is(Buffer.concat(bytes).length, 0, 'nothing but a close');
  } finally {
    for (const s of held) s.destroy();
  }
  await waitFor(async () => (await current()) === 1, 5000, 'the held sockets are no longer counted');
  const [policy] = (await ask(mgmt(), [{ properties: { operation: 'QUERY', type: 'org.apache.qpid.dispatch.policy' }, body: { attributeNames: ['connectionsDenied'] } }])).replies;
  assert.ok((rows(policy)[0].connectionsDenied as number) >= 2, 'the refused socket is counted (with the refused tenant connection)');
});

// alice, bob (PLAIN) --> [broker B1: vhost $default; group users: send to orders.<user>, consume from orders.*]
test('the broker takes the same policy: per-user targets, shared sources, forged user-id rejected, counted', async () => {
  const dataDir = tempDir();
  const b = await startBroker(brokerConfig(dataDir, {
    broker: `    saslConfigDir: ${plainUsersDir({ alice: 'alice-secret', bob: 'bob-secret' })}\n`,
    extra: [
      'policy {', '    enableVhostPolicy: true', '}',
      'vhost {', '    hostname: $default', '    groups: {', '        users: {', '            users: alice, bob', '            remoteHosts: 127.0.0.1',
      '            targets: orders.${user}', '            sources: orders.*', '            maxReceivers: 2', '        }', '    }', '}', '',
    ].join('\n'),
  }));
  const opened: RheaClient[] = [];
  try {
    const as = async (user: string) => {
      const c = await rheaConnect({ port: b.port }, 0, { username: user, password: `${user}-secret` } as Partial<rhea.ConnectionOptions>);
      opened.push(c);
      return c;
    };
    const alice = await as('alice');
    const own = alice.conn.open_sender('orders.alice');
    await waitSendable(own);
    const out = outcomes(own);
    own.send({ body: 'from alice', user_id: 'alice' } as rhea.Message);
    own.send({ body: 'forged', user_id: 'bob' } as rhea.Message);
    await waitFor(() => out.accepted === 1 && out.rejected === 1, 5000, 'the own message stored, the forged one rejected');
    assert.equal(await refusal(alice.conn.open_sender('orders.bob')), { condition: 'amqp:unauthorized-access', description: 'link disallowed by local policy' });
    const bob = await as('bob');
    const rx = bob.conn.open_receiver('orders.alice');
    const got = collect(rx);
    await waitFor(() => got.messages.length === 1, 5000, 'bob consumes what alice sent');
    assert.is(got.messages[0].body, 'from alice');
    bob.conn.open_receiver('orders.x');
    assert.equal(await refusal(bob.conn.open_receiver('orders.y')), { condition: 'amqp:resource-limit-exceeded', description: 'link disallowed by local policy' }, 'maxReceivers 2');
    const anonymous = rheaConnect({ port: b.port }, 0, {} as Partial<rhea.ConnectionOptions>);
    const refused = await anonymous;
    opened.push(refused);
    await waitFor(() => refused.events.some((e) => e.condition === 'amqp:resource-limit-exceeded'), 5000, 'an unknown user is refused');
  } finally {
    for (const c of opened) await c.close();
    assert.is(await b.stop(), 0);
  }
});

test.run();
