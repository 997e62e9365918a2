// AMQP Management requests and replies, and the router's agent over a fake view, without sockets.
import { PolicyEngine } from '../../policy/engine';
import { POLICY_DEFAULTS } from '../../policy/config';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import { Described, Reader, Writer, long } from '../../amqp/codec';
import { D } from '../../amqp/performatives';
import { ManagementError, ManagementRequest, decodeRequest, encodeReply } from '../../amqp/management';
import { ENTITY_MODULES, ManagementAgent } from '../../router/management/agent';
import { addressName } from '../../router/management/address';
import type { ConnectionInfo, LinkInfo, ManagementView, NodeInfo } from '../../router/management/view';
import type { AddressSnapshot, CoreStats } from '../../router/core/core';
import type { RouterSettings } from '../../router/io/server';
import type { ConnectionLinkRoute } from '../../router/io/link-route';
import { computeConnectionLinkRoute } from '../../router/management/connection-link-route';
import { ConfigChangeError } from '../../router/config-store';
import { managementRequestBytes } from '../support/management-request';
import { computeConfigState, configuredRecords } from '../../router/config-store';
import { parseConfigEntities } from '../../config/load';

const CONF = 'router {\n  id: R1\n}\nlistener {\n  name: amqp\n  host: 127.0.0.1\n  port: 0\n}\naddress {\n  prefix: mc\n  distribution: multicast\n}\n';
const STATE = computeConfigState(parseConfigEntities(CONF, 'r1.conf'), 'r1.conf');

const T = (s: string) => `org.apache.qpid.dispatch.${s}`;

const request = managementRequestBytes;

function req(appProps: Record<string, unknown>, attributeNames: string[] = []): ManagementRequest {
  return decodeRequest(request(appProps, { attributeNames }));
}

/** A request whose body is `body` (a CREATE's attributes). */
function withBody(appProps: Record<string, unknown>, body: Record<string, unknown>): ManagementRequest {
  return decodeRequest(request(appProps, body));
}

const stats: CoreStats = {
  acceptedDeliveries: 5, rejectedDeliveries: 1, releasedDeliveries: 2, modifiedDeliveries: 0, presettledDeliveries: 3,
  deliveriesIngress: 8, deliveriesEgress: 7, deliveriesTransit: 0, deliveriesIngressRouteContainer: 0, deliveriesEgressRouteContainer: 0, deliveriesIn: 8, deliveriesOut: 7, releasedNoRoute: 2, droppedPresettled: 0,
};

function conn(id: number): ConnectionInfo {
  return {
    identity: String(id), host: `127.0.0.1:${40000 + id}`, container: `c${id}`, role: 'normal', dir: 'in', sasl: 'ANONYMOUS', user: 'anonymous',
    isAuthenticated: false, isEncrypted: false, sslProto: null, sslCipher: null, opened: true, uptimeSeconds: 1, lastDlvSeconds: null, properties: {},
  };
}

const link: LinkInfo = {
  identity: '7', linkName: 'l1', linkType: 'endpoint', linkDir: 'out', connectionId: '1', owningAddr: 'q1', capacity: 250, undeliveredCount: 2,
  unsettledCount: 1, deliveryCount: 9, presettledCount: 0, acceptedCount: 6, rejectedCount: 0, releasedCount: 1, modifiedCount: 1, creditAvailable: 10, priority: 4,
};

const addresses: AddressSnapshot[] = [
  { key: 'q1', distribution: 'balanced', consumers: 1, senders: 1, deliveriesIn: 9, deliveriesOut: 9, remotes: ['R2'], topo: false, deliveriesIngress: 9, deliveriesEgress: 8, deliveriesTransit: 1 },
  { key: '\u00011wp', distribution: 'balanced', consumers: 0, senders: 1, deliveriesIn: 0, deliveriesOut: 0, remotes: [], topo: false, deliveriesIngress: 0, deliveriesEgress: 0, deliveriesTransit: 0 },
  { key: '_topo/0/R1/temp.abc', distribution: 'closest', consumers: 1, senders: 0, deliveriesIn: 0, deliveriesOut: 0, remotes: [], topo: false, deliveriesIngress: 0, deliveriesEgress: 0, deliveriesTransit: 0 },
];

/** Connection-scoped link routes of the fake view, per requester (a connection stand-in). */
const routesOf = new Map<unknown, ConnectionLinkRoute[]>();

function fakeView(nodes: NodeInfo[] = [], conns = [conn(1), conn(2), conn(3)]): ManagementView {
  const settings = {
    id: 'R1', mode: nodes.length ? 'interior' : 'standalone',
    listeners: [{ name: 'amqp', host: '127.0.0.1', port: 0, linkCapacity: 250, stripAnnotations: 'both', maxFrameSize: 16384, maxSessions: 32768, idleTimeoutSeconds: 16, saslMechanisms: ['ANONYMOUS'], authenticatePeer: false }],
    addresses: [{ prefix: 'mc', distribution: 'multicast' }], maxMessageSize: 0, maxAddressLength: 0,
  } as unknown as RouterSettings;
  return {
    settings, version: '0.1.0', uptimeSeconds: 42, memoryUsage: 1 << 20, stats, bound: [{ name: 'amqp', host: '127.0.0.1', port: 5999 }],
    recentLogs: (n) => [{ module: 'SERVER', level: 'info', text: 'hello', time: 1 }].slice(0, n < 0 ? 1 : n), routeContainers: [], connectorUp: () => false,
    connections: () => conns, links: () => [link], addresses: () => addresses, nodes: () => nodes,
    requester: null, connectionLinkRoutes: (who) => (routesOf.get(who) ?? []).map((r) => ({ ...r, containerId: String(who) })),
    configured: (t) => configuredRecords(STATE, t), linkRouteAddresses: () => [], connectionsAccepted: 3, logCounts: () => ({ info: 2 }),
    policy: new PolicyEngine({ ...POLICY_DEFAULTS, vhosts: [] }),
  };
}

test('the reply correlates by message-id; to = reply-to', () => {
  const r = req({ operation: 'GET-TYPES', type: 'org.amqp.management' });
  assert.is(r.replyTo, 'reply.here');
  const props = new Reader(encodeReply(r, { statusCode: 200, statusDescription: 'OK', body: {} })).read() as Described;
  assert.is((props.value as unknown[])[2], 'reply.here', 'to');
  assert.is((props.value as unknown[])[5], 'id-1', 'correlation-id');
});

test("the reply correlates by the request's correlation-id when it has no message-id (qdstat, qdmanage); paging is read", () => {
  const w = new Writer(256);
  w.descriptor(D.Properties);
  const p = w.beginList();
  for (let i = 0; i < 4; i++) w.null();
  w.string('amqp:/_topo/0/R/temp.x');
  w.string('1');
  w.endList(p, 6);
  w.descriptor(D.ApplicationProperties);
  w.value({ name: 'self', type: 'org.amqp.management', operation: 'QUERY', entityType: T('router'), offset: long(0), count: long(500) });
  w.descriptor(D.AmqpValue);
  w.value({ attributeNames: [] });
  const r = decodeRequest(w.take());
  assert.is(r.messageId, null);
  assert.is(r.correlationId, '1');
  assert.is(r.offset, 0);
  assert.is(r.count, 500);
  const reply = new Reader(encodeReply(r, new ManagementAgent(fakeView()).handle(r)));
  const props = reply.read() as Described;
  assert.is((props.value as unknown[])[2], 'amqp:/_topo/0/R/temp.x', 'to = reply-to');
  assert.is((props.value as unknown[])[5], '1', 'correlation-id');
  assert.is(((reply.read() as Described).value as Record<string, unknown>).statusCode, 200);
});

// qdstat -g's two requests, byte for byte as qdstat 1.19 sent them to qdrouterd 1.19 (PN_TRACE_FRM=1):
// a header, properties with reply-to and correlation-id "1"/"2" (no message-id), then
// GET-MGMT-NODES, and QUERY of the router entity with offset 0 and count 500 as smalllong/long.
const QDSTAT_G = [
  '00537045005373c02f0640404040a125616d71703a2f5f746f706f2f302f51442f74656d702e4a51516a4d4f626d776f36616c4b42a10131005374d10000004600000006a1046e616d65a10473656c66a10474797065a1136f72672e616d71702e6d616e6167656d656e74a1096f7065726174696f6ea10e4745542d4d474d542d4e4f444553005377d10000000400000000',
  '00537045005373c02f0640404040a125616d71703a2f5f746f706f2f302f51442f74656d702e4a51516a4d4f626d776f36616c4b42a10132005374d1000000840000000ca1046e616d65a10473656c66a10474797065a1136f72672e616d71702e6d616e6167656d656e74a1096f7065726174696f6ea1055155455259a10a656e7469747954797065a11f6f72672e6170616368652e717069642e64697370617463682e726f75746572a1066f66667365745500a105636f756e748100000000000001f4005377d10000001500000002a10e6174747269627574654e616d657345',
];

test('qdstat -g, byte for byte: decoded, answered, and the replies correlate', () => {
  const a = new ManagementAgent(fakeView());
  const [nodes, query] = QDSTAT_G.map((h) => decodeRequest(Buffer.from(h, 'hex')));
  assert.equal([nodes.messageId, nodes.correlationId, nodes.replyTo, nodes.operation], [null, '1', 'amqp:/_topo/0/QD/temp.JQQjMObmwo6alKB', 'GET-MGMT-NODES']);
  assert.equal([query.correlationId, query.operation, query.entityType, query.offset, query.count, query.attributeNames], ['2', 'QUERY', T('router'), 0, 500, []]);
  for (const [r, corr] of [[nodes, '1'], [query, '2']] as const) {
    const reply = new Reader(encodeReply(r, a.handle(r)));
    const props = (reply.read() as Described).value as unknown[];
    assert.equal([props[0], props[2], props[5]], [null, 'amqp:/_topo/0/QD/temp.JQQjMObmwo6alKB', corr]);
    assert.equal((reply.read() as Described).value, { statusCode: 200, statusDescription: 'OK' });
  }
});

test('QUERY router: every qdrouterd attribute, live counts and counters (qdstat -g)', () => {
  const res = new ManagementAgent(fakeView()).handle(req({ operation: 'QUERY', entityType: T('router') }));
  assert.is(res.statusCode, 200);
  const body = res.body as { attributeNames: string[]; results: unknown[][] };
  const row = Object.fromEntries(body.attributeNames.map((n, i) => [n, body.results[0][i]]));
  assert.is(body.results.length, 1);
  assert.equal(body.attributeNames.slice(-3), ['name', 'identity', 'type']);
  assert.is(row.id, 'R1');
  assert.is(row.mode, 'standalone');
  assert.is(row.type, T('router'));
  assert.is(row.connectionCount, 3);
  assert.is(row.linkCount, 1);
  assert.is(row.addrCount, 3);
  assert.is(row.nodeCount, 0);
  assert.is(row.acceptedDeliveries, 5);
  assert.is(row.deliveriesIngress, 8);
  assert.is(row.uptimeSeconds, 42);
});

test('QUERY connection with attributeNames and offset/count paging; short type names', () => {
  const a = new ManagementAgent(fakeView());
  const all = a.handle(decodeRequest(request({ operation: 'QUERY', entityType: 'connection' }, { attributeNames: ['identity', 'host', 'role', 'dir', 'sasl'] })));
  assert.equal(all.body, { attributeNames: ['identity', 'host', 'role', 'dir', 'sasl'], results: [1, 2, 3].map((i) => [String(i), `127.0.0.1:${40000 + i}`, 'normal', 'in', 'ANONYMOUS']) });
  const page = a.handle(decodeRequest(request({ operation: 'QUERY', entityType: T('connection'), offset: long(1), count: long(1) }, { attributeNames: ['identity'] })));
  assert.equal((page.body as { results: unknown[][] }).results, [['2']]);
});

test('QUERY router.link and router.address: qdstat -l / -a columns, qdrouterd address names', () => {
  const a = new ManagementAgent(fakeView());
  const l = a.handle(req({ operation: 'QUERY', entityType: T('router.link') }, ['linkType', 'linkDir', 'connectionId', 'identity', 'owningAddr', 'capacity', 'undeliveredCount', 'unsettledCount', 'deliveryCount', 'acceptedCount']));
  assert.equal((l.body as { results: unknown[][] }).results, [['endpoint', 'out', '1', '7', 'M0q1', 250, 2, 1, 9, 6]]);
  const ad = a.handle(req({ operation: 'QUERY', entityType: T('router.address') }, ['name', 'distribution', 'subscriberCount', 'remoteCount', 'deliveriesIngress', 'deliveriesEgress', 'deliveriesTransit']));
  assert.equal((ad.body as { results: unknown[][] }).results, [
    ['M0q1', 'balanced', 1, 1, 9, 8, 1],
    ['M1wp', 'balanced', 0, 0, 0, 0, 0],
    ['Ltemp.abc', 'closest', 1, 0, 0, 0, 0],
  ]);
  assert.is(addressName('$management', 'R1'), 'L$management');
  assert.is(addressName('_topo/0/R2/temp.x', 'R1'), 'T_topo/0/R2/temp.x');
  // Edge routers (qdrouterd's names): the interior's summary address of an edge, an edge's own.
  assert.is(addressName('_edge/E1', 'R1'), 'HE1');
  assert.is(addressName('_edge/E1/temp.y', 'E1'), 'Ltemp.y');
  assert.is(addressName('_edge', 'E1'), 'L_edge');
});

test('connection link routes: each connection creates, sees and deletes only its own; bad ones are 400', () => {
  routesOf.clear();
  let next = 1;
  const control = {
    changeConfig: (): string => { throw new Error('not in this test'); },
    closeConnection: () => false,
    createConnectionLinkRoute(who: unknown, attributes: Record<string, unknown>): string {
      const list = routesOf.get(who) ?? [];
      const r = computeConnectionLinkRoute(attributes, String(next++), new Set(list.map((x) => x.name)));
      routesOf.set(who, [...list, r]);
      return r.identity;
    },
    deleteConnectionLinkRoute(who: unknown, identity: string): boolean {
      const list = routesOf.get(who) ?? [];
      routesOf.set(who, list.filter((r) => r.identity !== identity));
      return list.some((r) => r.identity === identity);
    },
  };
  const a = new ManagementAgent(fakeView(), control);
  const LR = T('router.connection.linkRoute');
  const created = a.handle(withBody({ operation: 'CREATE', type: LR, name: 'lr1' }, { pattern: 'flea.*', direction: 'out' }), 'conn-A');
  assert.is(created.statusCode, 201);
  assert.equal([(created.body as Record<string, unknown>).pattern, (created.body as Record<string, unknown>).containerId], ['flea.*', 'conn-A']);
  const q = (who: unknown) => a.handle(req({ operation: 'QUERY', entityType: LR }, ['name', 'pattern', 'direction']), who).body as { results: unknown[][] };
  assert.equal(q('conn-A').results, [['lr1', 'flea.*', 'out']]);
  assert.equal(q('conn-B').results, [], 'another connection sees none');
  assert.is(a.handle(req({ operation: 'READ', type: LR, name: 'lr1' }), 'conn-B').statusCode, 404);
  for (const bad of [{ pattern: 'bad', direction: 'bad' }, { direction: 'in' }, {}, { pattern: '' }, { pattern: 7, direction: 'in' }]) {
    assert.is(a.handle(withBody({ operation: 'CREATE', type: LR, name: 'iamnoone' }, bad), 'conn-A').statusCode, 400, JSON.stringify(bad));
  }
  assert.is(a.handle(withBody({ operation: 'CREATE', type: LR, name: 'lr1' }, { pattern: 'x', direction: 'in' }), 'conn-A').statusCode, 400, 'a name used on the connection');
  assert.is(a.handle(req({ operation: 'DELETE', type: LR, name: 'lr1' }), 'conn-B').statusCode, 404);
  assert.is(a.handle(req({ operation: 'DELETE', type: LR, name: 'lr1' }), 'conn-A').statusCode, 204);
  assert.equal(q('conn-A').results, []);
  assert.throws(() => computeConnectionLinkRoute({ pattern: '///', direction: 'in' }, '1', new Set()), (e: unknown) => e instanceof ConfigChangeError && /no tokens/.test(e.message));
});

test('READ by name or identity; refusals with qdrouterd status codes and descriptions', () => {
  const a = new ManagementAgent(fakeView());
  const byName = a.handle(req({ operation: 'READ', name: 'amqp', type: T('listener') }));
  assert.is(byName.statusCode, 200);
  assert.is((byName.body as Record<string, unknown>).port, '5999', 'the bound port');
  assert.is((a.handle(req({ operation: 'READ', identity: '2' })).body as Record<string, unknown>).type, T('connection'));
  assert.equal(a.handle(req({ operation: 'READ', name: 'nope' })), { statusCode: 404, statusDescription: 'No entity with name=nope', body: {} });
  // The types qdrouterd's router core answers for say only "Not Found" (qdmanage prints it; scripts match it).
  assert.equal(a.handle(req({ operation: 'READ', type: T('router.config.linkRoute'), identity: '9999' })), { statusCode: 404, statusDescription: 'Not Found', body: {} });
  assert.equal(a.handle(req({ operation: 'READ', type: T('router.config.linkRoute') })), { statusCode: 400, statusDescription: 'No name or identity provided', body: {} });
  assert.equal(a.handle(req({ operation: 'QUERY', entityType: 'nope' })), { statusCode: 400, statusDescription: "No such entity type 'org.apache.qpid.dispatch.nope'", body: {} });
  assert.is(a.handle(req({ operation: 'QUERY', entityType: T('router') }, ['id', 'bogus'])).statusCode, 404);
  assert.is(a.handle(req({ operation: 'CREATE', type: T('listener'), name: 'x' })).statusCode, 501);
  assert.is(a.handle(req({ operation: 'CREATE', type: T('router.link'), name: 'x' })).statusCode, 501);
  assert.is(a.handle(req({ operation: 'FROB' })).statusCode, 501);
  // What qdrouterd's own tests send: an unknown operation on the node named "self" is 501.
  assert.is(a.handle(req({ operation: 'NOT-IMPL', type: 'org.amqp.management', name: 'self' })).statusCode, 501);
  assert.is((a.handle(req({ operation: 'READ', type: 'org.amqp.management', name: 'self' })).body as Record<string, unknown>).identity, 'self');
  assert.equal(a.handle(req({ operation: 'GET-LOG', limit: long(5) })).body, [['SERVER', 'info', 'hello', null, null, 1]]);
  assert.is(a.handle(req({})).statusCode, 400);
  assert.throws(() => decodeRequest(Buffer.from([0x40])), (e: unknown) => e instanceof ManagementError);
});

test('GET-TYPES, GET-ATTRIBUTES, GET-OPERATIONS (all, or one type), GET-MGMT-NODES standalone and interior', () => {
  const a = new ManagementAgent(fakeView());
  const types = a.handle(req({ operation: 'GET-TYPES' })).body as Record<string, string[]>;
  assert.equal(types[T('router.link')], [T('operationalEntity'), T('entity')]);
  assert.ok(types[T('router.config.autoLink')]);
  assert.is(Object.keys(types).length, 29, "every type qdrouterd 1.19's schema has");
  const stats = a.handle(req({ operation: 'QUERY', entityType: T('logStats') }, ['name', 'infoCount', 'traceCount'])).body as { results: unknown[][] };
  assert.equal(stats.results.find((r) => r[0] === 'ROUTER'), ['ROUTER', 2, 0]);
  const policy = a.handle(req({ operation: 'QUERY', entityType: T('policy') }, ['maxConnections', 'connectionsProcessed', 'totalDenials'])).body as { results: unknown[][] };
  assert.equal(policy.results, [[65535, 0, 0]], 'defaults, with the policy engine\'s counters (none yet)');
  assert.equal(a.handle(req({ operation: 'GET-OPERATIONS', entityType: 'router.link' })).body, { [T('router.link')]: ['UPDATE', 'READ'] });
  const attrs = a.handle(req({ operation: 'GET-ATTRIBUTES', entityType: T('router.node') })).body as Record<string, string[]>;
  assert.equal(attrs[T('router.node')].slice(0, 3), ['id', 'protocolVersion', 'instance']);
  const links = a.handle(req({ operation: 'GET-ATTRIBUTES', entityType: T('router.link') })).body as Record<string, string[]>;
  assert.equal(links[T('router.link')].slice(-4), ['priority', 'name', 'identity', 'type'], 'the schema\'s, as qdrouterd: connectionId is a QUERY column only');
  assert.equal(a.handle(req({ operation: 'GET-MGMT-NODES' })), { statusCode: 200, statusDescription: 'OK', body: [] });
  const interior = new ManagementAgent(fakeView([
    { id: 'R1', self: true, instance: 1, linkState: ['R2'], nextHop: null, cost: null, validOrigins: [], neighbour: false, routerLink: null },
    { id: 'R2', self: false, instance: 1, linkState: ['R1', 'R3'], nextHop: null, cost: 1, validOrigins: [], neighbour: true, routerLink: '1' },
    { id: 'R3', self: false, instance: 1, linkState: ['R2'], nextHop: 'R2', cost: 2, validOrigins: ['R2'], neighbour: false, routerLink: null },
  ]));
  // As qdrouterd 1.19: every router of the mesh, this one included (nextHop "(self)", index 0).
  assert.equal(interior.handle(req({ operation: 'GET-MGMT-NODES' })).body, ['amqp:/_topo/0/R1/$management', 'amqp:/_topo/0/R2/$management', 'amqp:/_topo/0/R3/$management']);
  const nodes = interior.handle(req({ operation: 'QUERY', entityType: T('router.node') }, ['id', 'nextHop', 'cost', 'linkState', 'routerLink', 'index'])).body as { results: unknown[][] };
  assert.equal(nodes.results, [['R1', '(self)', null, ['R2'], null, 0], ['R2', null, 1, ['R1', 'R3'], '1', 1], ['R3', 'R2', 2, ['R2'], null, 2]]);
  const g = interior.handle(req({ operation: 'QUERY', entityType: T('router') }, ['nodeCount'])).body as { results: unknown[][] };
  assert.equal(g.results, [[2]], 'nodeCount: the other routers');
});

test("every module's attributes and operations are qdrouterd 1.19's (qdrouter.json, when present)", () => {
  const file = '/work/shared/reference/qdrouter.json';
  if (!fs.existsSync(file)) return;
  const schema = JSON.parse(fs.readFileSync(file, 'utf8')) as { entityTypes: Record<string, { attributes?: Record<string, unknown>; operations?: string[] }> };
  for (const m of ENTITY_MODULES) {
    const t = schema.entityTypes[m.name];
    assert.ok(t, m.name);
    // connectionId: not in the schema, but qdrouterd's link agent has it and qdstat -l asks for it;
    // a connector's activeUrl is ours.
    // qdrouterd's core agent shows a link route's and an auto-link's deprecated names too.
    const extra: Record<string, string[]> = {
      'router.link': ['connectionId'], connector: ['activeUrl'], 'router.config.linkRoute': ['dir'], 'router.config.autoLink': ['addr', 'dir', 'externalAddr'],
    };
    const known = new Set([...Object.keys(t.attributes ?? {}), 'name', 'identity', 'type', ...(extra[m.name] ?? [])]);
    for (const n of m.attributes) assert.ok(known.has(n), `${m.name}.${n}`);
    for (const e of m.read(fakeView())) for (const k of Object.keys(e)) assert.ok(known.has(k), `${m.name} reads ${k}`);
  }
});

test.run();
