/**
 * Config loader: route-container listeners and connectors (with failoverUrls), linkRoute,
 * autoLink and the address waypoint/phase/fallback attributes, as qdrouterd 1.19 defines them.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  ConfigError,
  parseConfig,
  parseFailoverUrls,
  type ConfigErrorCode,
  type ConfigOptions,
  type ConfigWarningCode,
  type RouterConfig,
} from '../../router/config';

// ---------------------------------------------------------------------------------------------
// Helpers

const fixedRouterId: ConfigOptions = { generateRouterId: (mode) => `generated-${mode}` };

function load(text: string, file = 'router.conf'): RouterConfig {
  return parseConfig(text, file, fixedRouterId);
}

function conf(...lines: string[]): string {
  return lines.join('\n') + '\n';
}

/** Asserts a refusal and that its message names the file, the line and everything in `mentions`. */
function assertRefused(
  text: string,
  expected: { file?: string; line: number; code: ConfigErrorCode; mentions?: readonly string[] },
): ConfigError {
  const file = expected.file ?? 'router.conf';
  let refusal: unknown;
  try {
    load(text, file);
  } catch (error) {
    refusal = error;
  }
  if (refusal === undefined) assert.unreachable(`expected ${expected.code}, but the configuration loaded:\n${text}`);
  if (!(refusal instanceof ConfigError)) throw refusal;
  assert.is(refusal.code, expected.code, refusal.message);
  assert.is(refusal.file, file);
  assert.is(refusal.line, expected.line, refusal.message);
  assert.ok(refusal.message.startsWith(`${file}:${expected.line}: `), refusal.message);
  for (const mention of expected.mentions ?? []) {
    assert.ok(refusal.message.includes(mention), `"${refusal.message}" should mention ${JSON.stringify(mention)}`);
  }
  return refusal;
}

function warningsOf(config: RouterConfig): Array<[number, ConfigWarningCode]> {
  return config.warnings.map((warning) => [warning.line, warning.code]);
}

/** A config without where-it-came-from, to compare the same config written in different syntaxes. */
function withoutSources(config: RouterConfig): unknown {
  return JSON.parse(
    JSON.stringify(config, (key, value: unknown) => (key === 'source' || key === 'entities' || key === 'line' || key === 'message' || key === 'file' ? undefined : value)),
  );
}

function assertSameInEverySyntax(expected: RouterConfig, variants: ReadonlyArray<readonly [string, string]>): void {
  for (const [text, file] of variants) {
    const config = load(text, file);
    assert.equal(withoutSources(config), withoutSources(expected), file);
  }
}

// ---------------------------------------------------------------------------------------------
// A broker pair behind a router: route-container connector, waypoint address, autoLinks, linkRoutes.

const BROKER_CONF = conf(
  'router {', //                                          1
  '    mode: interior',
  '    id: Router.A',
  '}',
  'listener {', //                                        5
  '    name: brokers-in',
  '    port: 5680',
  '    role: route-container',
  '}',
  'connector {', //                                       10
  '    name: pair1',
  '    host: broker-a',
  '    port: 5673',
  '    role: route-container',
  '    failoverUrls: amqp://broker-b:5674, broker-c', //  15
  '    saslUsername: router',
  '    saslPassword: pass:s3cret',
  '    idleTimeoutSeconds: 30',
  '    maxFrameSize: 65536',
  '    linkCapacity: 100', //                             20
  '}',
  'address {',
  '    prefix: queue',
  '    waypoint: yes',
  '}', //                                                 25
  'autoLink {',
  '    address: queue.orders',
  '    direction: in',
  '    connection: pair1',
  '}', //                                                 30
  'autoLink {',
  '    address: queue.orders',
  '    direction: out',
  '    connection: pair1',
  '    externalAddress: orders', //                       35
  '}',
  'linkRoute {',
  '    prefix: txn.',
  '    direction: in',
  '    connection: pair1', //                             40
  '    addExternalPrefix: broker.',
  '    delExternalPrefix: txn.',
  '}',
  'linkRoute {',
  '    pattern: "*.rpc.#"', //                              45
  '    direction: out',
  '    containerId: broker-container',
  '}',
);

const BROKER_YAML_LIST = `
- router: {mode: interior, id: Router.A}
- listener: {name: brokers-in, port: 5680, role: route-container}
- connector:
    name: pair1
    host: broker-a
    port: 5673
    role: route-container
    failoverUrls: "amqp://broker-b:5674, broker-c"
    saslUsername: router
    saslPassword: "pass:s3cret"
    idleTimeoutSeconds: 30
    maxFrameSize: 65536
    linkCapacity: 100
- address: {prefix: queue, waypoint: true}
- autoLink: {address: queue.orders, direction: in, connection: pair1}
- autoLink: {address: queue.orders, direction: out, connection: pair1, externalAddress: orders}
- linkRoute: {prefix: txn., direction: in, connection: pair1, addExternalPrefix: broker., delExternalPrefix: txn.}
- linkRoute: {pattern: "*.rpc.#", direction: out, containerId: broker-container}
`;

const BROKER_YAML_MAP = `
router: {mode: interior, id: Router.A}
listener: {name: brokers-in, port: 5680, role: route-container}
connector:
  name: pair1
  host: broker-a
  port: "5673"
  role: route-container
  failover-urls: "amqp://broker-b:5674, broker-c"
  sasl-username: router
  sasl-password: "pass:s3cret"
  idle-timeout-seconds: 30
  max-frame-size: 65536
  link-capacity: 100
address: {prefix: queue, waypoint: on}
autoLink:
  - {address: queue.orders, direction: in, connection: pair1}
  - {address: queue.orders, direction: out, connection: pair1, externalAddress: orders}
linkRoute:
  - {prefix: txn., direction: in, connection: pair1, addExternalPrefix: broker., delExternalPrefix: txn.}
  - {pattern: "*.rpc.#", direction: out, containerId: broker-container}
`;

const BROKER_JSON_PAIRS = `[
  ["router", {"mode": "interior", "id": "Router.A"}],
  ["listener", {"name": "brokers-in", "port": 5680, "role": "route-container"}],
  ["connector", {"name": "pair1", "host": "broker-a", "port": 5673, "role": "route-container",
                 "failoverUrls": "amqp://broker-b:5674, broker-c", "saslUsername": "router", "saslPassword": "pass:s3cret",
                 "idleTimeoutSeconds": 30, "maxFrameSize": 65536, "linkCapacity": 100}],
  ["address", {"prefix": "queue", "waypoint": true}],
  ["autoLink", {"address": "queue.orders", "direction": "in", "connection": "pair1"}],
  ["autoLink", {"address": "queue.orders", "direction": "out", "connection": "pair1", "externalAddress": "orders"}],
  ["linkRoute", {"prefix": "txn.", "direction": "in", "connection": "pair1", "addExternalPrefix": "broker.", "delExternalPrefix": "txn."}],
  ["linkRoute", {"pattern": "*.rpc.#", "direction": "out", "containerId": "broker-container"}]
]`;

const BROKER_JSON_MAP = `{
  "router": {"mode": "interior", "id": "Router.A"},
  "listener": {"name": "brokers-in", "port": 5680, "role": "route-container"},
  "connector": {"name": "pair1", "host": "broker-a", "port": 5673, "role": "route-container",
                "failoverUrls": "amqp://broker-b:5674, broker-c", "saslUsername": "router", "saslPassword": "pass:s3cret",
                "idleTimeoutSeconds": 30, "maxFrameSize": 65536, "linkCapacity": 100},
  "address": {"prefix": "queue", "waypoint": true},
  "autoLink": [
    {"address": "queue.orders", "direction": "in", "connection": "pair1"},
    {"address": "queue.orders", "direction": "out", "connection": "pair1", "externalAddress": "orders"}
  ],
  "linkRoute": [
    {"prefix": "txn.", "direction": "in", "connection": "pair1", "addExternalPrefix": "broker.", "delExternalPrefix": "txn."},
    {"pattern": "*.rpc.#", "direction": "out", "containerId": "broker-container"}
  ]
}`;

const BROKER_VARIANTS = [
  [BROKER_YAML_LIST, 'broker.yaml'],
  [BROKER_YAML_MAP, 'broker.yml'],
  [BROKER_JSON_PAIRS, 'broker.json'],
  [BROKER_JSON_MAP, 'broker.json'],
] as const;

test('broker pair: route-container listener and connector, waypoint, autoLinks and linkRoutes load typed, without warnings', () => {
  const config = load(BROKER_CONF);
  assert.equal(config.warnings, []);
  assert.equal(config.other, []);

  const listener = config.listeners[0]!;
  assert.equal([listener.name, listener.role, listener.port, listener.unimplemented], ['brokers-in', 'route-container', 5680, {}]);

  assert.equal(
    { ...config.connectors[0]!, source: undefined },
    {
      type: 'connector',
      host: 'broker-a',
      port: 5673,
      role: 'route-container',
      cost: 1,
      saslUsername: 'router',
      saslPassword: 'pass:s3cret',
      maxFrameSize: 65536,
      maxSessions: 32768,
      idleTimeoutSeconds: 30,
      linkCapacity: 100,
      stripAnnotations: 'both',
      failoverUrls: [
        { scheme: 'amqp', host: 'broker-b', port: 5674, schemeWritten: true },
        { scheme: 'amqp', host: 'broker-c', port: 5672 },
      ],
      name: 'pair1',
      transport: { tls: null, verifyHostname: true },
      unimplemented: {},
      source: undefined,
    },
  );
  assert.is(config.connectors[0]!.source.attributeLines['failoverUrls'], 15);

  assert.equal(
    { ...config.addresses[0]!, source: undefined },
    {
      type: 'address',
      prefix: 'queue',
      distribution: 'balanced',
      waypoint: true,
      ingressPhase: 0,
      egressPhase: 1,
      enableFallback: false,
      priority: -1,
      unimplemented: {},
      source: undefined,
    },
  );

  assert.equal(
    config.autoLinks.map((autoLink) => ({ ...autoLink, source: undefined })),
    [
      { type: 'autoLink', address: 'queue.orders', direction: 'in', phase: 1, connection: 'pair1', fallback: false, unimplemented: {}, source: undefined },
      {
        type: 'autoLink',
        address: 'queue.orders',
        direction: 'out',
        phase: 0,
        connection: 'pair1',
        externalAddress: 'orders',
        fallback: false,
        unimplemented: {},
        source: undefined,
      },
    ],
  );
  assert.equal([config.autoLinks[0]!.source.line, config.autoLinks[1]!.source.line], [26, 31]);

  assert.equal(
    config.linkRoutes.map((linkRoute) => ({ ...linkRoute, source: undefined })),
    [
      {
        type: 'linkRoute',
        prefix: 'txn.',
        addExternalPrefix: 'broker.',
        delExternalPrefix: 'txn.',
        direction: 'in',
        connection: 'pair1',
        distribution: 'linkBalanced',
        unimplemented: {},
        source: undefined,
      },
      {
        type: 'linkRoute',
        pattern: '*.rpc.#',
        direction: 'out',
        containerId: 'broker-container',
        distribution: 'linkBalanced',
        unimplemented: {},
        source: undefined,
      },
    ],
  );
  assert.equal(config.linkRoutes[0]!.source.attributeLines, { prefix: 38, direction: 39, connection: 40, addExternalPrefix: 41, delExternalPrefix: 42 });
});

test('broker pair: YAML (both shapes) and JSON (both shapes) give the same configuration as the conf syntax', () => {
  const expected = load(BROKER_CONF);
  assertSameInEverySyntax(expected, BROKER_VARIANTS);
  const yaml = load(BROKER_YAML_LIST, 'broker.yaml');
  assert.is(yaml.connectors[0]!.source.attributeLines['failoverUrls'], 9);
  assert.is(yaml.autoLinks[1]!.source.line, 17);
  assert.is(yaml.linkRoutes[1]!.source.line, 19);
  const json = load(BROKER_JSON_PAIRS, 'broker.json');
  assert.is(json.linkRoutes[0]!.source.line, 10);
  assert.is(json.autoLinks[0]!.source.attributeLines['connection'], 8);
});

test('broker pair: standalone routers take route-container connections too', () => {
  const config = load(conf('connector {', '    name: b', '    role: route-container', '}', 'autoLink {', '    address: q', '    direction: out', '    connection: b', '}'));
  assert.is(config.router.mode, 'standalone');
  assert.is(config.connectors[0]!.role, 'route-container');
  assert.equal(config.connectors[0]!.failoverUrls, undefined);
  assert.not.ok('failoverUrls' in config.connectors[0]!);
  assert.equal(config.warnings, []);
});

// ---------------------------------------------------------------------------------------------
// Roles

test('roles: route-container is accepted on listeners and connectors in every syntax', () => {
  for (const type of ['listener', 'connector'] as const) {
    const expected = load(conf(`${type} {`, '    port: 5673', '    role: route-container', '}'));
    const entity = type === 'listener' ? expected.listeners[0]! : expected.connectors[0]!;
    assert.is(entity.role, 'route-container');
    assert.equal(expected.warnings, [], type);
    assertSameInEverySyntax(expected, [
      [`- ${type}: {port: 5673, role: route-container}\n`, 'r.yaml'],
      [`${type}:\n  port: 5673\n  role: route-container\n`, 'r.yml'],
      [`[["${type}", {"port": 5673, "role": "route-container"}]]`, 'r.json'],
      [`{"${type}": {"port": "5673", "role": "route-container"}}`, 'r.json'],
    ]);
    // By index too, as qdrouterd's enumerations allow (with a warning).
    const byIndex = load(conf(`${type} {`, '    role: 2', '}'));
    assert.is((type === 'listener' ? byIndex.listeners[0]! : byIndex.connectors[0]!).role, 'route-container');
    assert.equal(warningsOf(byIndex), [[2, 'WARN_CONFIG_ENUM_INDEX']]);

    // On a standalone router (the default) qdrouterd's mode rule comes first, in its words.
    assertRefused(`- ${type}:\n    role: edge\n`, { file: 'r.yaml', line: 2, code: 'ERR_CONFIG_CONFLICT', mentions: ["role='standalone' not allowed to connect to or accept connections from other routers."] });
    assertRefused(`[["${type}", {\n  "role": "broker"\n}]]`, {
      file: 'r.json',
      line: 2,
      code: 'ERR_CONFIG_INVALID_VALUE',
      mentions: [`${type} role "broker" is not one of normal, inter-router, route-container`],
    });
  }
});

test('roles by router mode, in qdrouterd\'s words: edge listeners on interior routers, edge connectors on edge routers', () => {
  // Accepted: an interior router with an edge listener; an edge router with an edge connector.
  const interior = load(conf('router {', '    mode: interior', '}', 'listener {', '    role: edge', '    port: 5674', '}'));
  assert.is(interior.listeners[0]!.role, 'edge');
  const edge = load(conf('router {', '    mode: edge', '    id: E1', '}', 'connector {', '    role: edge', '    port: 5674', '}'));
  assert.is(edge.router.mode, 'edge');
  assert.is(edge.connectors[0]!.role, 'edge');
  // Refused: an edge listener on an edge router; an inter-router listener or connector on one.
  assertRefused(conf('router {', '    mode: edge', '}', 'listener {', '    role: edge', '}'), {
    line: 5, code: 'ERR_CONFIG_CONFLICT', mentions: ["role='edge' only allowed with router mode='interior'", 'an edge router accepts no edge routers'],
  });
  for (const type of ['listener', 'connector']) {
    assertRefused(conf('router {', '    mode: edge', '}', `${type} {`, '    role: inter-router', '}'), {
      line: 5, code: 'ERR_CONFIG_CONFLICT', mentions: ["role='inter-router' only allowed with router mode='interior'", 'through a connector with role: edge'],
    });
  }
});

test('roles: cost has no effect on a route-container connection (a warning, as for normal)', () => {
  const config = load(conf('connector {', '    role: route-container', '    cost: 5', '}', 'listener {', '    role: route-container', '    cost: 2', '}'));
  assert.equal(warningsOf(config), [
    [3, 'WARN_CONFIG_NO_EFFECT'],
    [7, 'WARN_CONFIG_NO_EFFECT'],
  ]);
  assert.ok(config.warnings[0]!.message.includes('no effect with role "route-container"'), config.warnings[0]!.message);
});

test('roles: a route-container connector refuses the same bad values as the others', () => {
  const cases: Array<[string, number, ConfigErrorCode, string[]]> = [
    ['    port: 0', 3, 'ERR_CONFIG_INVALID_VALUE', ['connector port 0 cannot be connected to', 'from 1 to 65535']],
    ['    host: ""', 3, 'ERR_CONFIG_INVALID_VALUE', ['connector host "" is empty']],
    ['    saslUsername: u', 3, 'ERR_CONFIG_CONFLICT', ['saslUsername but no saslPassword', 'set saslPassword']],
    ['    idleTimeoutSeconds: -1', 3, 'ERR_CONFIG_INVALID_VALUE', ['connector idleTimeoutSeconds "-1" is out of range', 'from 0 to 4294967']],
    ['    maxFrameSize: 511', 3, 'ERR_CONFIG_INVALID_VALUE', ['connector maxFrameSize "511" is out of range', 'from 512']],
    ['    linkCapacity: many', 3, 'ERR_CONFIG_INVALID_VALUE', ['connector linkCapacity "many" is not an integer']],
    ['    sslProfile: tls', 3, 'ERR_CONFIG_INVALID_VALUE', ['connector sslProfile "tls" names no sslProfile']],
  ];
  for (const [attribute, line, code, mentions] of cases) {
    assertRefused(conf('connector {', '    role: route-container', attribute, '}'), { line, code, mentions });
  }
  // linkCapacity 0 means the default, as in qdrouterd.
  assert.is(load(conf('connector {', '    role: route-container', '    linkCapacity: 0', '}')).connectors[0]!.linkCapacity, 250);
});

// ---------------------------------------------------------------------------------------------
// failoverUrls

test('failoverUrls: qdrouterd\'s list form, with the scheme and port defaults', () => {
  const cases: Array<[string, Array<[string, number]>]> = [
    ['broker-b', [['broker-b', 5672]]],
    ['amqp://broker-b:5674', [['broker-b', 5674]]],
    ['amqp://10.0.0.2:5674, broker-c:5675 ,broker-d', [['10.0.0.2', 5674], ['broker-c', 5675], ['broker-d', 5672]]],
    // One trailing comma is tolerated (qdrouterd stops at the end of the text).
    ['a:1, b:2,', [['a', 1], ['b', 2]]],
    ['AMQP://a:amqp, b:amqps', [['a', 5672], ['b', 5671]]],
    ['  broker_1.example.com:65535  ', [['broker_1.example.com', 65535]]],
  ];
  for (const [written, expected] of cases) {
    const config = load(conf('connector {', '    role: route-container', `    failoverUrls: "${written}"`, '}'));
    assert.equal(
      config.connectors[0]!.failoverUrls?.map(({ scheme, host, port }) => ({ scheme, host, port })),
      expected.map(([host, port]) => ({ scheme: 'amqp', host, port })),
      written,
    );
    assert.equal(config.warnings, [], written);
  }
  // The parser alone, as exported.
  assert.equal(parseFailoverUrls('amqp://x:1'), { urls: [{ scheme: 'amqp', host: 'x', port: 1, schemeWritten: true }] });
  assert.equal(parseFailoverUrls('x:1'), { urls: [{ scheme: 'amqp', host: 'x', port: 1 }] }, 'a listener announces a scheme only when written');
  // amqps: the connector's sslProfile dials it (as every candidate).
  assert.equal(parseFailoverUrls('amqps://b:5671, c'), { urls: [{ scheme: 'amqps', host: 'b', port: 5671, schemeWritten: true }, { scheme: 'amqp', host: 'c', port: 5672 }] });
  assert.equal(parseFailoverUrls('x,,y'), { problem: { index: 2, kind: 'malformed', reason: 'entry 2 is empty' } });
});

test('failoverUrls: the deprecated name failoverList is read, with a warning', () => {
  const config = load(conf('connector {', '    role: route-container', '    failoverList: b:5674', '}'));
  assert.equal(config.connectors[0]!.failoverUrls, [{ scheme: 'amqp', host: 'b', port: 5674 }]);
  assert.equal(warningsOf(config), [[3, 'WARN_CONFIG_DEPRECATED']]);
  assert.ok(config.warnings[0]!.message.includes('"failoverList" is deprecated; use "failoverUrls"'));
});

test('failoverUrls: an inter-router connector takes it with a warning that it does not fail over yet', () => {
  const config = load(conf('router {', '    mode: interior', '}', 'connector {', '    role: inter-router', '    failoverUrls: b:5674', '}'));
  assert.equal(config.connectors[0]!.failoverUrls, [{ scheme: 'amqp', host: 'b', port: 5674 }]);
  assert.equal(warningsOf(config), [[6, 'WARN_CONFIG_ATTRIBUTE_NOT_IMPLEMENTED']]);
  assert.ok(config.warnings[0]!.message.includes('reconnects to 127.0.0.1:5672 only'), config.warnings[0]!.message);
});

test('failoverUrls: a malformed entry is refused with the file, the line, the entry and the form expected', () => {
  const form = 'failoverUrls is a comma-separated list of [amqp://]host[:port] (port 1-65535, default 5672)';
  const cases: Array<[string, ConfigErrorCode, string[]]> = [
    ['""', 'ERR_CONFIG_INVALID_VALUE', ['connector failoverUrls entry 1 is empty', form]],
    ['",b"', 'ERR_CONFIG_INVALID_VALUE', ['entry 1 is empty']],
    ['"a,,b"', 'ERR_CONFIG_INVALID_VALUE', ['entry 2 is empty']],
    ['"a, b:0"', 'ERR_CONFIG_INVALID_VALUE', ['entry 2 "b:0" has port "0"', 'from 1 to 65535', form]],
    ['b:65536', 'ERR_CONFIG_INVALID_VALUE', ['entry 1 "b:65536" has port "65536"']],
    ['"b:"', 'ERR_CONFIG_INVALID_VALUE', ['entry 1 "b:" has port ""']],
    ['b:http', 'ERR_CONFIG_INVALID_VALUE', ['has port "http"', '"amqp" (5672)']],
    ['amqp://b:5672/queue', 'ERR_CONFIG_INVALID_VALUE', ['has port "5672/queue"']],
    ['":5672"', 'ERR_CONFIG_INVALID_VALUE', ['entry 1 ":5672" has no host']],
    ['amqp://', 'ERR_CONFIG_INVALID_VALUE', ['has no host']],
    ['"http://b:80"', 'ERR_CONFIG_INVALID_VALUE', ['has scheme "http"', 'expected one of amqp, amqps, ws, wss']],
    ['"://b"', 'ERR_CONFIG_INVALID_VALUE', ['has scheme ""']],
    ['"[::1]:5672"', 'ERR_CONFIG_INVALID_VALUE', ['has host "["', 'IPv6 literals cannot be written in a failover list']],
    ['"a b:5672"', 'ERR_CONFIG_INVALID_VALUE', ['contains whitespace', 'separate entries with commas']],
    ['"wss://b:443"', 'ERR_CONFIG_NOT_SUPPORTED', ['scheme "wss" is not supported yet']],
    ['"ws://b"', 'ERR_CONFIG_NOT_SUPPORTED', ['scheme "ws" is not supported yet']],
  ];
  for (const [written, code, mentions] of cases) {
    assertRefused(conf('connector {', '    name: pair1', '    role: route-container', `    failoverUrls: ${written}`, '}'), { line: 4, code, mentions });
  }
  // Credentials in a URL are refused without repeating them.
  const error = assertRefused(conf('connector {', '    role: route-container', '    failoverUrls: "amqp://admin:s3cret@b:5672"', '}'), {
    line: 3,
    code: 'ERR_CONFIG_INVALID_VALUE',
    mentions: ['has user information', 'saslUsername and saslPassword'],
  });
  assert.not.ok(error.message.includes('s3cret'), error.message);
  // The same refusal from YAML and JSON, at their lines.
  assertRefused('connector:\n  role: route-container\n  failoverUrls: "a, b:x"\n', { file: 'r.yaml', line: 3, code: 'ERR_CONFIG_INVALID_VALUE', mentions: ['entry 2 "b:x"'] });
  assertRefused('[["connector", {\n  "role": "route-container",\n  "failoverUrls": "a:99999"\n}]]', {
    file: 'r.json',
    line: 3,
    code: 'ERR_CONFIG_INVALID_VALUE',
    mentions: ['entry 1 "a:99999"'],
  });
  // A list is not the qdrouterd form.
  assertRefused('connector:\n  role: route-container\n  failoverUrls: [a, b]\n', { file: 'r.yaml', line: 3, code: 'ERR_CONFIG_INVALID_VALUE', mentions: ['connector failoverUrls a list is not a string'] });
});

// ---------------------------------------------------------------------------------------------
// linkRoute

test('linkRoute: defaults, deprecated names, and the same from every syntax', () => {
  const expected = load(conf('linkRoute {', '    pattern: a/*/b', '    dir: out', '}'));
  assert.equal(
    { ...expected.linkRoutes[0]!, source: undefined },
    { type: 'linkRoute', pattern: 'a/*/b', direction: 'out', distribution: 'linkBalanced', unimplemented: {}, source: undefined },
  );
  // Neither connection nor containerId: a router that passes the attaches on to the router with the broker.
  assert.equal(warningsOf(expected), [[3, 'WARN_CONFIG_DEPRECATED']]);
  assert.is(expected.linkRoutes[0]!.source.attributeLines['direction'], 3);
  assertSameInEverySyntax(expected, [
    ['- linkRoute: {pattern: a/*/b, dir: out}\n', 'r.yaml'],
    ['link-route:\n  pattern: a/*/b\n  dir: out\n', 'r.yml'],
    ['[["linkRoute", {"pattern": "a/*/b", "dir": "out"}]]', 'r.json'],
    ['{"linkRoute": [{"pattern": "a/*/b", "dir": "out"}]}', 'r.json'],
  ]);
  // Same prefix twice (two brokers, or in and out): allowed, as in qdrouterd.
  const twice = load(conf('linkRoute {', '    prefix: q', '    direction: in', '}', 'linkRoute {', '    prefix: q', '    direction: out', '}', 'linkRoute {', '    prefix: q.', '    direction: in', '    name: lr3', '}'));
  assert.equal(twice.linkRoutes.map((linkRoute) => [linkRoute.prefix, linkRoute.direction, linkRoute.name]), [
    ['q', 'in', undefined],
    ['q', 'out', undefined],
    ['q.', 'in', 'lr3'],
  ]);
  // An empty external prefix is kept as written.
  assert.is(load(conf('linkRoute {', '    prefix: q', '    direction: in', '    addExternalPrefix: ""', '}')).linkRoutes[0]!.addExternalPrefix, '');
});

test('linkRoute: connection names a listener or connector, wherever it is in the file', () => {
  const config = load(
    conf(
      'linkRoute {',
      '    prefix: q',
      '    direction: in',
      '    connection: brokers',
      '}',
      'listener {',
      '    name: brokers',
      '    role: route-container',
      '}',
    ),
  );
  assert.is(config.linkRoutes[0]!.connection, 'brokers');
  assert.equal(config.warnings, []);
});

test('linkRoute: refusals name the file, the line and the valid choices', () => {
  const connector = ['connector {', '    name: pair1', '    role: route-container', '}'];
  const cases: Array<[string[], number, ConfigErrorCode, string[]]> = [
    [['    direction: in'], 1, 'ERR_CONFIG_MISSING_ATTRIBUTE', ['linkRoute needs exactly one of "prefix" or "pattern"; it has neither']],
    [['    prefix: a', '    pattern: b.#', '    direction: in'], 3, 'ERR_CONFIG_CONFLICT', ['exactly one of "prefix" or "pattern"', 'both (prefix on line 2, pattern on line 3)']],
    [['    prefix: "./"', '    direction: in'], 2, 'ERR_CONFIG_INVALID_VALUE', ['linkRoute prefix "./" has no tokens']],
    [['    pattern: ""', '    direction: in'], 2, 'ERR_CONFIG_INVALID_VALUE', ['linkRoute pattern "" has no tokens']],
    [['    prefix: a'], 1, 'ERR_CONFIG_MISSING_ATTRIBUTE', ['linkRoute is missing required attribute "direction"', 'expected one of in, out']],
    [['    prefix: a', '    direction: both'], 3, 'ERR_CONFIG_INVALID_VALUE', ['linkRoute direction "both" is not one of in, out']],
    [['    prefix: a', '    direction: in', '    distribution: balanced'], 4, 'ERR_CONFIG_INVALID_VALUE', ['linkRoute distribution "balanced" is not one of linkBalanced']],
    [['    prefix: a', '    direction: in', '    connection: pair1', '    containerId: broker'], 5, 'ERR_CONFIG_CONFLICT', ['at most one of "connection" or "containerId"', 'connection on line 4, containerId on line 5', 'keep one']],
    [['    prefix: a', '    direction: in', '    containerId: ""'], 4, 'ERR_CONFIG_INVALID_VALUE', ['linkRoute containerId is empty']],
    [['    prefix: a', '    direction: in', '    connection: ""'], 4, 'ERR_CONFIG_INVALID_VALUE', ['linkRoute connection "" names no connector or listener', 'valid names: "pair1" (connector, role route-container, line 6)']],
    [['    prefix: a', '    direction: in', '    operStatus: active', '    prot: 1'], 5, 'ERR_CONFIG_UNKNOWN_ATTRIBUTE', ['linkRoute has no attribute "prot"', 'valid attributes: prefix, pattern, addExternalPrefix, delExternalPrefix, containerId, connection, distribution, direction, name']],
  ];
  for (const [attributes, line, code, mentions] of cases) {
    assertRefused(conf('linkRoute {', ...attributes, '}', ...connector), { line, code, mentions });
  }
  // The names offered: route-container ones first, then the others; another entity's name is recognised.
  assertRefused(
    conf(
      'listener {',
      '    name: clients',
      '}',
      'listener {',
      '    name: brokers',
      '    role: route-container',
      '}',
      'address {',
      '    name: orders',
      '    prefix: orders',
      '}',
      'linkRoute {',
      '    prefix: orders',
      '    direction: out',
      '    connection: orders',
      '}',
    ),
    {
      line: 15,
      code: 'ERR_CONFIG_INVALID_VALUE',
      mentions: [
        'linkRoute connection "orders" is the name of the address on line 8, not of a connector or listener',
        'valid names: "brokers" (listener, role route-container, line 4), "clients" (listener, role normal, line 1)',
      ],
    },
  );
  // An empty name, and no named listener or connector at all.
  assertRefused(conf('connector {', '    role: route-container', '}', 'linkRoute {', '    prefix: a', '    direction: in', '    connection: ""', '}'), {
    line: 7,
    code: 'ERR_CONFIG_INVALID_VALUE',
    mentions: ['names no connector or listener', 'this configuration has no named connector or listener', 'name: broker'],
  });
  // YAML and JSON, at their lines.
  assertRefused('linkRoute:\n  prefix: a\n  direction: in\n  connection: ""\n', { file: 'r.yaml', line: 4, code: 'ERR_CONFIG_INVALID_VALUE', mentions: ['"" names no connector or listener'] });
  assertRefused('[\n  ["linkRoute", {"prefix": "a", "direction": "in",\n                 "pattern": "b"}]\n]', { file: 'r.json', line: 3, code: 'ERR_CONFIG_CONFLICT', mentions: ['it has both'] });
  assertRefused('- linkRoute:\n    prefix: a\n    direction: in\n    connection: c\n    containerId: d\n', { file: 'r.yaml', line: 5, code: 'ERR_CONFIG_CONFLICT', mentions: ['at most one of "connection" or "containerId"'] });
});

test('linkRoute and autoLink: a connection whose role is not route-container is accepted with a warning (never active)', () => {
  const config = load(
    conf(
      'router {',
      '    mode: interior',
      '}',
      'connector {',
      '    name: peer',
      '    role: inter-router',
      '}',
      'listener {',
      '    name: clients',
      '}',
      'linkRoute {',
      '    prefix: a',
      '    direction: in',
      '    connection: peer',
      '}',
      'autoLink {',
      '    address: b',
      '    direction: out',
      '    connection: clients',
      '}',
    ),
  );
  assert.equal(warningsOf(config), [
    [14, 'WARN_CONFIG_NO_EFFECT'],
    [19, 'WARN_CONFIG_NO_EFFECT'],
  ]);
  assert.ok(config.warnings[0]!.message.includes('linkRoute connection "peer" is the connector on line 4, whose role is "inter-router"'), config.warnings[0]!.message);
  assert.ok(config.warnings[1]!.message.includes('set role: route-container on that listener'), config.warnings[1]!.message);
});

// ---------------------------------------------------------------------------------------------
// autoLink

test('autoLink: qdrouterd\'s phase defaults (0 out, 1 in, 0 fallback) and explicit phases', () => {
  const cases: Array<[string[], number, boolean]> = [
    [['    direction: out'], 0, false],
    [['    direction: in'], 1, false],
    [['    direction: in', '    fallback: true'], 0, true],
    [['    direction: out', '    fallback: yes'], 0, true],
    [['    direction: in', '    phase: 0'], 0, false],
    [['    direction: out', '    phase: 9'], 9, false],
    [['    direction: in', '    fallback: true', '    phase: 1'], 1, true],
  ];
  for (const [attributes, phase, fallback] of cases) {
    const config = load(conf('autoLink {', '    address: q', '    containerId: broker', ...attributes, '}'));
    assert.equal([config.autoLinks[0]!.phase, config.autoLinks[0]!.fallback], [phase, fallback], attributes.join(' '));
    assert.equal(config.warnings, []);
  }
});

test('autoLink: deprecated names, and the same from every syntax', () => {
  const expected = load(conf('autoLink {', '    addr: queue.orders', '    dir: in', '    containerId: broker-1', '    externalAddr: orders', '    name: al1', '}'));
  assert.equal(
    { ...expected.autoLinks[0]!, source: undefined },
    {
      type: 'autoLink',
      address: 'queue.orders',
      direction: 'in',
      phase: 1,
      containerId: 'broker-1',
      externalAddress: 'orders',
      fallback: false,
      name: 'al1',
      unimplemented: {},
      source: undefined,
    },
  );
  assert.equal(warningsOf(expected), [
    [2, 'WARN_CONFIG_DEPRECATED'],
    [3, 'WARN_CONFIG_DEPRECATED'],
    [5, 'WARN_CONFIG_DEPRECATED'],
  ]);
  assertSameInEverySyntax(expected, [
    ['- autoLink: {addr: queue.orders, dir: in, containerId: broker-1, externalAddr: orders, name: al1}\n', 'r.yaml'],
    ['auto-link:\n  addr: queue.orders\n  dir: in\n  container-id: broker-1\n  external-addr: orders\n  name: al1\n', 'r.yml'],
    ['[["autoLink", {"addr": "queue.orders", "dir": "in", "containerId": "broker-1", "externalAddr": "orders", "name": "al1"}]]', 'r.json'],
    ['{"autoLink": {"addr": "queue.orders", "dir": "in", "containerId": "broker-1", "externalAddr": "orders", "name": "al1"}}', 'r.json'],
  ]);
});

test('autoLink: neither connection nor containerId is accepted with a warning that it never attaches', () => {
  const config = load(conf('autoLink {', '    address: q', '    direction: in', '}'));
  assert.equal(config.autoLinks[0]!.phase, 1);
  assert.equal(warningsOf(config), [[1, 'WARN_CONFIG_NO_EFFECT']]);
  assert.ok(config.warnings[0]!.message.includes('autoLink for address "q" has neither "connection" nor "containerId", so it is never attached'));
});

test('autoLink: refusals name the file, the line and the valid choices', () => {
  const connector = ['connector {', '    name: pair1', '    role: route-container', '}'];
  const cases: Array<[string[], number, ConfigErrorCode, string[]]> = [
    [['    direction: in'], 1, 'ERR_CONFIG_MISSING_ATTRIBUTE', ['autoLink is missing required attribute "address"']],
    [['    address: q'], 1, 'ERR_CONFIG_MISSING_ATTRIBUTE', ['autoLink is missing required attribute "direction"', 'expected one of in, out']],
    [['    address: q', '    direction: inbound'], 3, 'ERR_CONFIG_INVALID_VALUE', ['autoLink direction "inbound" is not one of in, out']],
    [['    address: q', '    direction: in', '    phase: 10'], 4, 'ERR_CONFIG_INVALID_VALUE', ['autoLink phase "10" is out of range', 'from 0 to 9']],
    [['    address: q', '    direction: in', '    phase: -1'], 4, 'ERR_CONFIG_INVALID_VALUE', ['autoLink phase "-1" is out of range']],
    [['    address: q', '    direction: in', '    phase: one'], 4, 'ERR_CONFIG_INVALID_VALUE', ['autoLink phase "one" is not an integer']],
    [['    address: q', '    direction: in', '    fallback: perhaps'], 4, 'ERR_CONFIG_INVALID_VALUE', ['autoLink fallback "perhaps" is not a boolean', 'true or false']],
    [['    address: ""', '    direction: in'], 2, 'ERR_CONFIG_INVALID_VALUE', ['autoLink address "" is empty']],
    [['    address: q', '    direction: in', '    externalAddress: ""'], 4, 'ERR_CONFIG_INVALID_VALUE', ['autoLink externalAddress "" is empty', 'remove it']],
    [['    address: q', '    direction: in', '    containerId: b', '    connection: pair1'], 5, 'ERR_CONFIG_CONFLICT', ['autoLink needs at most one of "connection" or "containerId"', 'containerId on line 4']],
    [['    address: q', '    direction: in', '    connection: ""'], 4, 'ERR_CONFIG_INVALID_VALUE', ['autoLink connection "" names no connector or listener', 'valid names: "pair1" (connector, role route-container, line 6)']],
    [['    address: q', '    direction: in', '    lastError: x', '    linkref: 1'], 5, 'ERR_CONFIG_UNKNOWN_ATTRIBUTE', ['autoLink has no attribute "linkref"', 'valid attributes: address, direction, phase, containerId, connection, externalAddress, fallback, name']],
  ];
  for (const [attributes, line, code, mentions] of cases) {
    assertRefused(conf('autoLink {', ...attributes, '}', ...connector), { line, code, mentions });
  }
  assertRefused('- autoLink:\n    address: q\n    direction: out\n    phase: 12\n', { file: 'r.yaml', line: 4, code: 'ERR_CONFIG_INVALID_VALUE', mentions: ['from 0 to 9'] });
  assertRefused('{"autoLink": {\n  "address": "q",\n  "direction": "out",\n  "connection": ""\n}}', { file: 'r.json', line: 4, code: 'ERR_CONFIG_INVALID_VALUE', mentions: ['this configuration has no named connector or listener'] });
});

// ---------------------------------------------------------------------------------------------
// address: waypoint, phases, fallback

test('address: qdrouterd\'s phase defaults follow waypoint; both phases may be set', () => {
  const cases: Array<[string[], [boolean, number, number, boolean]]> = [
    [[], [false, 0, 0, false]],
    [['    waypoint: true'], [true, 0, 1, false]],
    [['    waypoint: false'], [false, 0, 0, false]],
    [['    ingressPhase: 2', '    egressPhase: 3'], [false, 2, 3, false]],
    // Explicit phases win over the waypoint defaults, as in qdrouterd.
    [['    waypoint: yes', '    ingressPhase: 1', '    egressPhase: 0'], [true, 1, 0, false]],
    [['    enableFallback: true'], [false, 0, 0, true]],
    [['    enableFallback: true', '    ingressPhase: 0', '    egressPhase: 0'], [false, 0, 0, true]],
  ];
  for (const [attributes, [waypoint, ingressPhase, egressPhase, enableFallback]] of cases) {
    const config = load(conf('address {', '    prefix: q', ...attributes, '}'));
    const address = config.addresses[0]!;
    assert.equal([address.waypoint, address.ingressPhase, address.egressPhase, address.enableFallback], [waypoint, ingressPhase, egressPhase, enableFallback], attributes.join(' '));
    assert.equal(address.unimplemented, {});
    assert.equal(config.warnings, []);
  }
});

test('address: waypoint, phases and fallback read the same from every syntax', () => {
  const expected = load(conf('address {', '    pattern: "queue/#"', '    waypoint: yes', '    ingressPhase: 0', '    egressPhase: 2', '    distribution: closest', '}'));
  assert.equal(
    { ...expected.addresses[0]!, source: undefined },
    { type: 'address', pattern: 'queue/#', distribution: 'closest', waypoint: true, ingressPhase: 0, egressPhase: 2, enableFallback: false, priority: -1, unimplemented: {}, source: undefined },
  );
  assertSameInEverySyntax(expected, [
    ['- address: {pattern: "queue/#", waypoint: yes, ingressPhase: 0, egressPhase: 2, distribution: closest}\n', 'r.yaml'],
    ['address:\n  pattern: "queue/#"\n  waypoint: true\n  ingress-phase: "0"\n  egress-phase: 2\n  distribution: closest\n', 'r.yml'],
    ['[["address", {"pattern": "queue/#", "waypoint": true, "ingressPhase": 0, "egressPhase": 2, "distribution": "closest"}]]', 'r.json'],
    ['{"address": [{"pattern": "queue/#", "waypoint": true, "ingressPhase": 0, "egressPhase": 2, "distribution": "closest"}]}', 'r.json'],
  ]);
  // priority: the priority the addresses' messages cross the mesh with.
  const withPriority = load(conf('address {', '    prefix: q', '    priority: 4', '    waypoint: true', '}'));
  assert.equal([withPriority.addresses[0]!.priority, withPriority.addresses[0]!.unimplemented], [4, {}]);
  assert.equal(warningsOf(withPriority), []);
});

test('address: refusals of phases and fallback name the file, the line and the valid choices', () => {
  const cases: Array<[string[], number, ConfigErrorCode, string[]]> = [
    [['    ingressPhase: 1'], 3, 'ERR_CONFIG_MISSING_ATTRIBUTE', ['address sets ingressPhase but not egressPhase', 'set both phases or neither', 'with neither, qdrouterd uses ingressPhase 0 and egressPhase 0, or 1 with waypoint: true']],
    [['    waypoint: true', '    egressPhase: 1'], 4, 'ERR_CONFIG_MISSING_ATTRIBUTE', ['address sets egressPhase but not ingressPhase', 'ingressPhase 0 and egressPhase 1, as waypoint is true']],
    [['    ingressPhase: 10', '    egressPhase: 0'], 3, 'ERR_CONFIG_INVALID_VALUE', ['address ingressPhase "10" is out of range', 'from 0 to 9']],
    [['    ingressPhase: 0', '    egressPhase: -1'], 4, 'ERR_CONFIG_INVALID_VALUE', ['address egressPhase "-1" is out of range', 'from 0 to 9']],
    [['    waypoint: sometimes'], 3, 'ERR_CONFIG_INVALID_VALUE', ['address waypoint "sometimes" is not a boolean', 'true or false']],
    [['    waypoint: true', '    enableFallback: true'], 4, 'ERR_CONFIG_CONFLICT', ['address enableFallback: true cannot be combined with waypoint: true (line 3)', 'phases 0']],
    [['    enableFallback: true', '    ingressPhase: 1', '    egressPhase: 0'], 3, 'ERR_CONFIG_CONFLICT', ['cannot be combined with ingressPhase 1 (line 4)']],
    [['    enableFallback: true', '    ingressPhase: 0', '    egressPhase: 2'], 3, 'ERR_CONFIG_CONFLICT', ['cannot be combined with egressPhase 2 (line 5)']],
    [['    enableFallback: maybe'], 3, 'ERR_CONFIG_INVALID_VALUE', ['address enableFallback "maybe" is not a boolean']],
  ];
  for (const [attributes, line, code, mentions] of cases) {
    assertRefused(conf('address {', '    prefix: q', ...attributes, '}'), { line, code, mentions });
  }
  assertRefused('address:\n  prefix: q\n  egressPhase: 1\n', { file: 'r.yaml', line: 3, code: 'ERR_CONFIG_MISSING_ATTRIBUTE', mentions: ['sets egressPhase but not ingressPhase'] });
  assertRefused('[["address", {"prefix": "q",\n  "waypoint": true,\n  "enableFallback": true}]]', { file: 'r.json', line: 3, code: 'ERR_CONFIG_CONFLICT', mentions: ['waypoint: true (line 2)'] });
});

test.run();
