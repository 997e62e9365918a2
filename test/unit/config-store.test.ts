/**
 * The running configuration as management changes it (router/config-store.ts), and the agent's
 * CREATE/UPDATE/DELETE answers over it: pure, no sockets. The agent's control here applies
 * changes to a state the way the router does (computeConfigChange), without the I/O.
 */
import { PolicyEngine } from '../../policy/engine';
import { POLICY_DEFAULTS } from '../../policy/config';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeRequest, type ManagementRequest } from '../../amqp/management';
import { parseConfigEntities } from '../../config/load';
import {
  computeConfigChange, computeConfigState, configuredRecords, ConfigChangeError, MAX_MANAGED_ENTITIES, type ConfigChange, type ConfigState,
} from '../../router/config-store';
import { ManagementAgent } from '../../router/management/agent';
import { managementRequestBytes } from '../support/management-request';
import type { ManagementView } from '../../router/management/view';

const T = (s: string) => `org.apache.qpid.dispatch.${s}`;
const CONF = [
  'router {', '  id: R1', '}',
  'listener {', '  name: l0', '  host: 127.0.0.1', '  port: 5672', '}',
  'listener {', '  port: 5673', '}',
  'address {', '  prefix: abcd', '  distribution: multicast', '}',
  'sslProfile {', '  name: tls', '  protocols: TLSv1.2', '}',
  'linkRoute {', '  prefix: xyz', '  dir: in', '  connection: broker', '}',
  '',
].join('\n');

const initial = (): ConfigState => computeConfigState(parseConfigEntities(CONF, 'r.conf'), 'r.conf');

function refusal(f: () => unknown): ConfigChangeError {
  try {
    f();
  } catch (e) {
    if (e instanceof ConfigChangeError) return e;
    throw e;
  }
  throw new Error('not refused');
}

test("identities and default names are qdrouterd's", () => {
  const s = initial();
  assert.equal(s.entries.map((e) => e.identity), [
    'router/1', 'listener/127.0.0.1:5672:l0', 'listener/:5673', '4', 'sslProfile/tls', '6',
  ]);
  const listeners = configuredRecords(s, 'listener');
  assert.equal(listeners.map((l) => l.name), ['l0', 'listener/:5673'], 'an unnamed entity is named by its identity');
  assert.equal(s.settings.listeners.map((l) => l.name), ['l0', 'listener/:5673']);
  const [lr] = configuredRecords(s, 'linkRoute');
  assert.is(lr.direction, 'in');
  assert.is(lr.dir, 'in', "qdrouterd's core agent shows the deprecated name too");
  assert.is(configuredRecords(s, 'address')[0].distribution, 'multicast');
});

test('names: an address, a linkRoute and an autoLink may share one (qdrouterd keeps them apart); two of one type may not', () => {
  let s = initial();
  for (const [type, attributes] of [
    ['router.config.autoLink', { name: 'x', address: 'a1', connection: 'broker', dir: 'in' }],
    ['router.config.linkRoute', { name: 'x', prefix: 'lr', connection: 'broker', dir: 'in' }],
    ['router.config.address', { name: 'x', prefix: 'ad.1', waypoint: 'yes' }],
    ['listener', { name: 'x', port: '0' }],
  ] as const) s = computeConfigChange(s, { op: 'CREATE', type, attributes: { ...attributes } }).state;
  assert.is(refusal(() => computeConfigChange(s, { op: 'CREATE', type: 'router.config.autoLink', attributes: { name: 'x', address: 'a2', connection: 'broker', dir: 'out' } })).message,
    "Name conflicts with an existing entity: 'x' (duplicate value for unique attribute 'name')");
  assert.match(refusal(() => computeConfigChange(s, { op: 'CREATE', type: 'connector', attributes: { name: 'x', port: '1' } })).message, /Name conflicts with an existing entity: 'x'/, 'a listener and a connector share one namespace');
  // The same in a file.
  const file = CONF + 'autoLink {\n  name: y\n  address: q\n  connection: broker\n  dir: in\n}\nlinkRoute {\n  name: y\n  prefix: y\n  connection: broker\n  dir: out\n}\n';
  assert.is(computeConfigState(parseConfigEntities(file, 'r.conf'), 'r.conf').entries.length, initial().entries.length + 2);
});

test('CREATE validates the whole configuration and changes the settings; DELETE undoes it', () => {
  const s0 = initial();
  const { state: s1, identity } = computeConfigChange(s0, { op: 'CREATE', type: 'router.config.address', attributes: { name: 'p', pattern: 'a.b.#', ingressPhase: 5n, egressPhase: 6 } });
  assert.is(identity, '7');
  const rec = configuredRecords(s1, 'address').find((a) => a.name === 'p')!;
  assert.is(rec.ingressPhase, 5);
  assert.is(rec.egressPhase, 6);
  assert.is(s1.settings.addresses.length, 2);
  assert.is(s0.settings.addresses.length, 1, 'the old state is untouched');
  const { state: s2 } = computeConfigChange(s1, { op: 'DELETE', identity });
  assert.is(s2.settings.addresses.length, 1);

  const { state: s3, identity: lid } = computeConfigChange(s0, { op: 'CREATE', type: T('listener'), attributes: { name: 'foo', port: '5999' } });
  assert.is(lid, 'listener/:5999:foo');
  assert.ok(s3.settings.listeners.some((l) => l.name === 'foo' && l.port === 5999));
  assert.is(configuredRecords(s3, 'listener').find((l) => l.name === 'foo')!.host, '');
});

test('refusals: qdrouterd status codes, the reason without a file line', () => {
  const s = initial();
  const both = refusal(() => computeConfigChange(s, { op: 'CREATE', type: 'router.config.linkRoute', attributes: { prefix: 'abc', containerId: 'id1', connection: 'conn1', direction: 'out' } }));
  assert.is(both.statusCode, 400);
  assert.ok(both.message.startsWith('Both connection and containerId cannot be specified'), both.message);
  assert.is(refusal(() => computeConfigChange(s, { op: 'CREATE', type: 'listener', attributes: { name: 'l0', port: '1' } })).statusCode, 400, 'duplicate name');
  assert.is(refusal(() => computeConfigChange(s, { op: 'CREATE', type: 'listener', attributes: { port: 'not a port' } })).statusCode, 400);
  assert.is(refusal(() => computeConfigChange(s, { op: 'CREATE', type: 'address', attributes: { prefix: 'x', distribution: 7 } })).statusCode, 400, 'wrong value type');
  assert.is(refusal(() => computeConfigChange(s, { op: 'CREATE', type: 'address', attributes: { prefix: Buffer.from('x') } })).statusCode, 400, 'binary value');
  assert.is(refusal(() => computeConfigChange(s, { op: 'CREATE', type: 'listener', attributes: { identity: 'x' } })).statusCode, 400);
  assert.is(refusal(() => computeConfigChange(s, { op: 'CREATE', type: 'router', attributes: {} })).statusCode, 400, 'singleton');
  assert.is(refusal(() => computeConfigChange(s, { op: 'DELETE', identity: 'nope' })).statusCode, 404);
  // A standalone router (the default) refuses routers' roles first, whatever else is wrong (port 77777).
  const standalone = refusal(() => computeConfigChange(s, { op: 'CREATE', type: 'connector', attributes: { host: '0.0.0.0', port: '77777', role: 'inter-router' } }));
  assert.is(standalone.message, "role='standalone' not allowed to connect to or accept connections from other routers.");
  // An edge router (qdrouterd's EdgeRouterQdManageTest): no inter-router connector, no edge listener.
  const edge = computeConfigState(parseConfigEntities('router {\n  mode: edge\n  id: E1\n}\n', 'e.conf'), 'e.conf');
  const interRouter = refusal(() => computeConfigChange(edge, { op: 'CREATE', type: 'connector', attributes: { host: '0.0.0.0', port: '77777', role: 'inter-router' } }));
  assert.equal([interRouter.statusCode, interRouter.message], [400, "role='inter-router' only allowed with router mode='interior'"]);
  const edgeListener = refusal(() => computeConfigChange(edge, { op: 'CREATE', type: 'listener', attributes: { port: '0', role: 'edge' } }));
  assert.equal([edgeListener.statusCode, edgeListener.message], [400, "role='edge' only allowed with router mode='interior'"]);
  assert.is(computeConfigChange(edge, { op: 'CREATE', type: 'connector', attributes: { name: 'up', port: '5999', role: 'edge' } }).state.settings.connectors?.[0]?.role, 'edge');
  const used = refusal(() => computeConfigChange(
    computeConfigChange(s, { op: 'CREATE', type: 'listener', attributes: { name: 'sec', port: '5671', sslProfile: 'tls' } }).state,
    { op: 'DELETE', identity: 'sslProfile/tls' },
  ));
  assert.is(used.statusCode, 400, 'a profile a listener uses cannot go');
  const crowded: ConfigState = { ...s, entries: Array(MAX_MANAGED_ENTITIES).fill(s.entries[1]) };
  assert.match(refusal(() => computeConfigChange(crowded, { op: 'CREATE', type: 'dummy', attributes: {} })).message, /Too many entities/);
});

test('log modules: UPDATE of one the file does not configure adds its section; bad values are 400', () => {
  const s = initial();
  const { state, identity } = computeConfigChange(s, { op: 'UPDATE', identity: 'log/AGENT', attributes: { identity: 'log/AGENT', enable: 'debug+', includeTimestamp: false } });
  assert.is(identity, 'log/AGENT');
  assert.equal(state.config.logs.map((l) => [l.module, l.enable, l.includeTimestamp]), [['AGENT', 'debug+', false]]);
  const again = computeConfigChange(state, { op: 'UPDATE', identity: 'log/AGENT', attributes: { enable: 'error' } }).state;
  assert.equal(again.config.logs.map((l) => [l.module, l.enable]), [['AGENT', 'error']], 'the same section, changed');
  assert.is(refusal(() => computeConfigChange(s, { op: 'UPDATE', identity: 'log/AGENT', attributes: { enable: 'foo' } })).statusCode, 400);
  assert.is(refusal(() => computeConfigChange(s, { op: 'UPDATE', identity: 'log/AGENT', attributes: { includeTimestamp: 'blahblah' } })).statusCode, 400);
  assert.is(refusal(() => computeConfigChange(s, { op: 'UPDATE', identity: 'log/NOSUCH', attributes: { enable: 'info' } })).statusCode, 404);
});

// ---------------------------------------------------------------- the agent over a store

function request(appProps: Record<string, unknown>, body: unknown): ManagementRequest {
  return decodeRequest(managementRequestBytes(appProps, body));
}

function agentOverStore(): { agent: ManagementAgent; state: () => ConfigState; closed: string[] } {
  let state = initial();
  const closed: string[] = [];
  const view = {
    settings: state.settings, bound: [], routeContainers: [], connectorUp: () => false, version: '0', uptimeSeconds: 1, memoryUsage: 1,
    requester: null, connectionLinkRoutes: () => [],
    stats: {
      acceptedDeliveries: 0, rejectedDeliveries: 0, releasedDeliveries: 0, modifiedDeliveries: 0, presettledDeliveries: 0, deliveriesIngress: 0,
      deliveriesEgress: 0, deliveriesTransit: 0, deliveriesIngressRouteContainer: 0, deliveriesEgressRouteContainer: 0, deliveriesIn: 0, deliveriesOut: 0, releasedNoRoute: 0, droppedPresettled: 0,
    },
    connections: () => [
      { identity: '9', host: '127.0.0.1:1', container: 'c', role: 'normal', dir: 'in', sasl: null, user: null, isAuthenticated: false, isEncrypted: false, sslProto: null, sslCipher: null, opened: true, uptimeSeconds: 0, lastDlvSeconds: null, properties: {} },
      { identity: '10', host: '127.0.0.1:2', container: 'R2', role: 'inter-router', dir: 'in', sasl: null, user: null, isAuthenticated: false, isEncrypted: false, sslProto: null, sslCipher: null, opened: true, uptimeSeconds: 0, lastDlvSeconds: null, properties: {} },
    ],
    links: () => [], addresses: () => [], nodes: () => [], recentLogs: () => [],
    configured: (t: string) => configuredRecords(state, t), linkRouteAddresses: () => [], connectionsAccepted: 2, logCounts: () => ({}),
    policy: new PolicyEngine({ ...POLICY_DEFAULTS, vhosts: [] }),
  } as unknown as ManagementView;
  const control = {
    changeConfig(change: ConfigChange): string {
      const r = computeConfigChange(state, change);
      state = r.state;
      return r.identity;
    },
    closeConnection: (id: string) => (id === '9' ? (closed.push(id), true) : false),
    createConnectionLinkRoute: (): string => { throw new Error('not in this test'); },
    deleteConnectionLinkRoute: () => false,
  };
  return { agent: new ManagementAgent(view, control), state: () => state, closed };
}

test('agent CREATE (201, the new entity), READ, UPDATE, CALLME and DELETE (204) of the test entity', () => {
  const { agent } = agentOverStore();
  const created = agent.handle(request({ operation: 'CREATE', type: 'dummy', name: 'MyDummy' }, { arg1: 'START' }));
  assert.is(created.statusCode, 201);
  const body = created.body as Record<string, unknown>;
  assert.equal({ ...body, identity: 'x' }, { name: 'MyDummy', arg1: 'START', identity: 'x', type: T('dummy') });
  const identity = body.identity as string;
  const updated = agent.handle(request({ operation: 'UPDATE', identity }, { type: T('dummy'), identity, name: 'MyDummy', arg1: 'one', num1: 42 }));
  assert.equal(updated.body, { name: 'MyDummy', arg1: 'one', num1: 42, identity, type: T('dummy') });
  assert.is(agent.handle(request({ operation: 'UPDATE', identity }, { badattribute: 'Bad' })).statusCode, 400);
  const call = agent.handle(request({ operation: 'callme', type: T('dummy'), identity, data: 42 }, {}));
  assert.equal(call.body, { operation: 'callme', type: T('dummy'), identity, data: 42 });
  assert.is(agent.handle(request({ operation: 'DELETE', type: T('dummy'), name: 'MyDummy' }, {})).statusCode, 204);
  assert.is(agent.handle(request({ operation: 'READ', type: T('dummy'), name: 'MyDummy' }, {})).statusCode, 404);
});

test('agent: conflicting type, type mismatch, operations a type does not have, connections', () => {
  const { agent, state, closed } = agentOverStore();
  assert.is(agent.handle(request({ operation: 'CREATE', type: T('listener'), name: 'a' }, { name: 'b', port: '1' })).statusCode, 400, 'conflicting name');
  assert.is(agent.handle(request({ operation: 'CREATE', name: 'a' }, { port: '1' })).statusCode, 400, 'no type');
  assert.is(agent.handle(request({ operation: 'CREATE', type: T('listener') }, 'not a map')).statusCode, 400);
  assert.is(agent.handle(request({ operation: 'READ', type: T('connector'), name: 'l0' }, {})).statusCode, 400, 'l0 is a listener');
  const upd = agent.handle(request({ operation: 'UPDATE', type: T('listener'), name: 'l0' }, { port: '1' }));
  assert.is(upd.statusCode, 501);
  assert.is(agent.handle(request({ operation: 'DELETE', type: T('connection'), identity: '9' }, {})).statusCode, 403);
  assert.is(agent.handle(request({ operation: 'UPDATE', type: T('connection'), identity: '9' }, { adminStatus: 'deleted' })).statusCode, 200);
  assert.equal(closed, ['9']);
  assert.is(agent.handle(request({ operation: 'UPDATE', type: T('connection'), identity: '10' }, { adminStatus: 'deleted' })).statusCode, 403, 'not an inter-router connection');
  assert.equal(closed, ['9']);
  const ok = agent.handle(request({ operation: 'CREATE', type: T('router.config.address') }, { pattern: 'a.*.b', distribution: 'closest' }));
  assert.is(ok.statusCode, 201);
  assert.is((ok.body as Record<string, unknown>).pattern, 'a.*.b');
  assert.is(state().settings.addresses.length, 2);
  assert.is(agent.handle(request({ operation: 'DELETE', type: T('listener'), name: 'l0' }, {})).statusCode, 204);
  assert.equal(state().settings.listeners.map((l) => l.name), ['listener/:5673']);
});

test.run();
