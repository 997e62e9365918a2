// One configuration template for every router of a mesh (issue 10): linkRoutes and autoLinks
// naming a `connection` that only some routers have (or none yet) load everywhere, as in
// qdrouterd, whatever the order of the entities; they stay inactive until a route-container
// connection of that name exists (one a reload adds binds them).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, configWarningLevel, parseConfig, type RouterConfig } from '../../router/config';
import { settingsFromConfig } from '../../router/settings';
import { computeReloadDiff } from '../../router/reload';
import { autoLinkEntity } from '../../router/management/auto-link';
import { linkRouteEntity } from '../../router/management/link-route';
import { routerEntity } from '../../router/management/router';
import type { ManagementView } from '../../router/management/view';
import { computeConfigState, configuredRecords } from '../../router/config-store';
import { parseConfigEntities } from '../../config/load';

const load = (text: string, file = 'router.conf'): RouterConfig => parseConfig(text, file, { generateRouterId: (mode) => `generated-${mode}` });
const conf = (...lines: string[]): string => lines.join('\n') + '\n';

// The shared part: references first, before any connector (entities in any order).
const TEMPLATE = conf(
  'linkRoute {', //                     1
  '    prefix: orders',
  '    direction: in',
  '    connection: broker', //          4
  '}',
  'linkRoute {',
  '    prefix: orders',
  '    direction: out',
  '    connection: broker', //          9
  '}',
  'autoLink {',
  '    address: queue.q',
  '    direction: in',
  '    connection: broker', //          14
  '}',
  'autoLink {',
  '    address: queue.q',
  '    direction: out',
  '    connection: broker', //          19
  '}',
  'address {',
  '    prefix: queue',
  '    waypoint: yes',
  '}',
  'listener {',
  '    host: 0.0.0.0',
  '    port: 5672',
  '}',
);
const ROUTER = (id: string) => conf('router {', '    mode: interior', `    id: ${id}`, '}');
const BROKER_CONNECTOR = conf('connector {', '    name: broker', '    host: 127.0.0.1', '    port: 61616', '    role: route-container', '}');

test('a template naming connection "broker" loads on a router without that connector: infos at the lines, nothing refused', () => {
  const config = load(TEMPLATE + ROUTER('B'));
  assert.equal(config.warnings.map((w) => [w.line, w.code]), [
    [4, 'INFO_CONFIG_CONNECTION_NOT_DEFINED'],
    [9, 'INFO_CONFIG_CONNECTION_NOT_DEFINED'],
    [14, 'INFO_CONFIG_CONNECTION_NOT_DEFINED'],
    [19, 'INFO_CONFIG_CONNECTION_NOT_DEFINED'],
  ]);
  for (const w of config.warnings) assert.is(configWarningLevel(w), 'info');
  const m = config.warnings[0]!.message;
  assert.ok(m.startsWith('router.conf:4: linkRoute connection "broker" names no connector or listener of this router'), m);
  assert.ok(m.includes('stays inactive until a route-container connection named "broker" opens'), m);
  assert.ok(config.warnings[2]!.message.includes('autoLink connection "broker"'), config.warnings[2]!.message);
  const s = settingsFromConfig(config);
  // Link routes are kept, bound by name; auto-links wait unbound.
  assert.equal(s.linkRoutes!.map((l) => [l.prefix, l.direction, l.connection]), [['orders', 'in', 'broker'], ['orders', 'out', 'broker']]);
  assert.equal(s.routeContainers, []);
  assert.equal(s.unboundAutoLinks!.map((a) => [a.address, a.direction, a.phase, a.connection]), [['queue.q', 'in', 1, 'broker'], ['queue.q', 'out', 0, 'broker']]);
  // Management: all four present and inactive.
  const state = computeConfigState(parseConfigEntities(TEMPLATE + ROUTER('B'), 'router.conf'), 'router.conf');
  const view = {
    settings: s, routeContainers: [], connectorUp: () => false, version: 'test', uptimeSeconds: 0, memoryUsage: 0, stats: {},
    addresses: () => [], links: () => [], nodes: () => [], connections: () => [], configured: (t: string) => configuredRecords(state, t), linkRouteAddresses: () => [],
  } as unknown as ManagementView;
  const autoLinks = autoLinkEntity.read(view);
  assert.equal(autoLinks.map((a) => [a.address, a.direction, a.connection, a.operStatus]), [['queue.q', 'in', 'broker', 'inactive'], ['queue.q', 'out', 'broker', 'inactive']]);
  const linkRoutes = linkRouteEntity.read(view);
  assert.equal(linkRoutes.map((l) => [l.prefix, l.connection, l.operStatus]), [['orders', 'broker', 'inactive'], ['orders', 'broker', 'inactive']]);
  assert.is(routerEntity.read(view)[0]!.autoLinkCount, 2);
});

test('the same template on the router that has the connector (defined after the references): bound, no remark', () => {
  const config = load(TEMPLATE + ROUTER('A') + BROKER_CONNECTOR);
  assert.equal(config.warnings, []);
  const s = settingsFromConfig(config);
  assert.equal(s.unboundAutoLinks, []);
  assert.equal(s.routeContainers!.map((r) => [r.name, r.autoLinks.map((a) => `${a.address}/${a.direction}`)]), [['broker', ['queue.q/in', 'queue.q/out']]]);
  assert.equal(s.linkRoutes!.map((l) => l.connection), ['broker', 'broker']);
  // The same in YAML, connector first.
  const yaml = load(
    'router:\n  mode: interior\n  id: A\nconnector:\n  name: broker\n  host: 127.0.0.1\n  port: 61616\n  role: route-container\n' +
      'autoLink:\n  address: queue.q\n  direction: in\n  connection: broker\nlinkRoute:\n  prefix: orders\n  direction: in\n  connection: broker\n',
    'r.yaml',
  );
  assert.equal(yaml.warnings, []);
  assert.equal(settingsFromConfig(yaml).routeContainers![0]!.autoLinks.length, 1);
});

test('a reload adding the "broker" connector binds the waiting auto-links; removing it unbinds them', () => {
  const without = settingsFromConfig(load(TEMPLATE + ROUTER('B')));
  const withIt = settingsFromConfig(load(TEMPLATE + ROUTER('B') + BROKER_CONNECTOR));
  const diff = computeReloadDiff(without, withIt, []);
  assert.equal(diff.routeContainersAdded.map((r) => [r.name, r.autoLinks.length]), [['broker', 2]]);
  assert.equal(diff.routeContainersRemoved, []);
  const back = computeReloadDiff(withIt, without, withIt.routeContainers!);
  assert.equal(back.routeContainersRemoved.map((r) => r.name), ['broker']);
  assert.equal(without.unboundAutoLinks!.length, 2);
});

test('still refused: an empty connection, another entity\'s name, unknown attributes; a route-container listener is a connection', () => {
  const refused = (text: string, line: number, code: string, mention: string) => {
    try {
      settingsFromConfig(load(text));
    } catch (e) {
      assert.ok(e instanceof ConfigError, String(e));
      assert.is((e as ConfigError).code, code, (e as ConfigError).message);
      assert.is((e as ConfigError).line, line, (e as ConfigError).message);
      assert.ok((e as ConfigError).message.startsWith(`router.conf:${line}: `));
      assert.ok((e as ConfigError).message.includes(mention), (e as ConfigError).message);
      return;
    }
    assert.unreachable(`loaded:\n${text}`);
  };
  refused(conf('autoLink {', '    address: q', '    direction: in', '    connection: ""', '}'), 4, 'ERR_CONFIG_INVALID_VALUE', 'autoLink connection "" names no connector or listener');
  refused(conf('linkRoute {', '    prefix: a', '    direction: in', '    connection: orders', '}', 'address {', '    name: orders', '    prefix: orders', '}'), 4, 'ERR_CONFIG_INVALID_VALUE', 'is the name of the address on line 6');
  // Link routes and auto-links over a route-container listener: served on the connections it accepts.
  const overListener = settingsFromConfig(load(conf('linkRoute {', '    prefix: a', '    direction: in', '    connection: brokers', '}', 'autoLink {', '    address: q',
    '    direction: out', '    connection: brokers', '}', 'autoLink {', '    address: q', '    direction: in', '    containerId: svc', '}', 'listener {', '    name: brokers', '    role: route-container', '}')));
  assert.equal(overListener.linkRoutes!.map((l) => l.connection), ['brokers']);
  assert.equal(overListener.routeContainerListeners!.map((r) => [r.name, r.autoLinks.map((a) => `${a.direction}:${a.containerId ?? '-'}`)]), [['brokers', ['out:-', 'in:svc']]]);
  refused(conf('autoLink {', '    address: q', '    direction: in', '    connection: broker', '    conection: broker', '}'), 5, 'ERR_CONFIG_UNKNOWN_ATTRIBUTE', 'autoLink has no attribute "conection"');
});

test.run();
