import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  ConfigError,
  DEFAULT_ADDRESS_SETTINGS,
  findAddressEntity,
  generateBrokerId,
  loadBrokerConfigFile,
  matchAddress,
  parseBrokerConfig,
  type BrokerAddress,
  type BrokerConfig,
  type BrokerConfigOptions,
  type ConfigErrorCode,
} from '../../broker/config';
import { MAX_CONFIG_FILE_BYTES } from '../../router/config';

// ---------------------------------------------------------------------------------------------
// Helpers

const fixedId: BrokerConfigOptions = { generateBrokerId: () => 'generated-broker' };
const ETC = path.resolve('/etc/amqp-mesh');

function load(text: string, file = path.join(ETC, 'broker.conf')): BrokerConfig {
  return parseBrokerConfig(text, file, fixedId);
}

/** Asserts a refusal and that its message names the file, the line and everything in `mentions`. */
function assertRefused(
  text: string,
  expected: { file?: string; line: number | undefined; code: ConfigErrorCode; mentions?: readonly string[] },
): ConfigError {
  const file = expected.file ?? 'broker.conf';
  let refusal: unknown;
  try {
    parseBrokerConfig(text, file, fixedId);
  } catch (error) {
    refusal = error;
  }
  return checkRefusal(refusal, file, expected);
}

function checkRefusal(
  refusal: unknown,
  file: string,
  expected: { line: number | undefined; code: ConfigErrorCode; mentions?: readonly string[] },
): ConfigError {
  if (refusal === undefined) assert.unreachable(`expected ${expected.code}, but the configuration loaded`);
  if (!(refusal instanceof ConfigError)) throw refusal;
  assert.is(refusal.code, expected.code, refusal.message);
  assert.is(refusal.file, file);
  assert.is(refusal.line, expected.line, refusal.message);
  const location = expected.line === undefined ? `${file}: ` : `${file}:${expected.line}: `;
  assert.ok(refusal.message.startsWith(location), `"${refusal.message}" should start with "${location}"`);
  for (const mention of expected.mentions ?? []) {
    assert.ok(refusal.message.includes(mention), `"${refusal.message}" should mention ${JSON.stringify(mention)}`);
  }
  return refusal;
}

/** A config without where-it-came-from, to compare the same config written in different syntaxes. */
function withoutSources(config: BrokerConfig): unknown {
  return JSON.parse(
    JSON.stringify(config, (key, value: unknown) =>
      key === 'source' || key === 'line' || key === 'message' || key === 'file' ? undefined : value,
    ),
  );
}

function withTemporaryDirectory(use: (directory: string) => void): void {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'amqp-mesh-broker-config-test-'));
  try {
    use(directory);
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
}

const MIB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Every entity, in all three syntaxes

const FULL_CONF = `# a broker with everything
broker {
    id: broker-A
    dataDir: data/journal
    lockPollMs: 500
    leaseMs: 2000
    maxMessageSize: 1048576
    globalMaxSizeBytes: 1073741824
    journalCompactMinBytes: 1000000
    pageCacheBytes: 2000000
    persistent: yes
    saslConfigDir: /etc/sasl2
    saslConfigName: broker
}
listener {
    name: clients
    host: 0.0.0.0
    port: amqps
    saslMechanisms: plain
    authenticatePeer: true
    maxFrameSize: 65536
    maxSessions: 100
    idleTimeoutSeconds: 30
}
listener {
    port: 0
}
address {
    name: orders
    prefix: orders
    routingType: ANYCAST
    maxDeliveryAttempts: -1
    deadLetterAddress: DLQ
    expiryAddress: ExpiryQueue
    maxSizeBytes: 10485760
    addressFullPolicy: fail
    autoCreate: false
}
address {
    pattern: news.*.#
    routing-type: multicast
}
queue {
    name: orders.eu
}
queue {
    name: news-archive
    address: news.world.today
    durable: false
}
queue {
    name: DLQ
    routingType: anycast
}
log {
    module: DEFAULT
    enable: debug+
    includeTimestamp: false
    outputFile: broker.log
}
`;

const FULL_YAML = `# the same, in YAML
broker:
  id: broker-A
  dataDir: data/journal
  lockPollMs: 500
  leaseMs: 2000
  maxMessageSize: 1048576
  globalMaxSizeBytes: 1073741824
  journalCompactMinBytes: 1000000
  pageCacheBytes: 2000000
  persistent: true
  saslConfigDir: /etc/sasl2
  saslConfigName: broker
listener:
  - name: clients
    host: 0.0.0.0
    port: amqps
    saslMechanisms: plain
    authenticatePeer: true
    maxFrameSize: 65536
    maxSessions: 100
    idleTimeoutSeconds: 30
  - port: 0
address:
  - name: orders
    prefix: orders
    routingType: ANYCAST
    maxDeliveryAttempts: -1
    deadLetterAddress: DLQ
    expiryAddress: ExpiryQueue
    maxSizeBytes: 10485760
    addressFullPolicy: fail
    autoCreate: false
  - pattern: news.*.#
    routing_type: multicast
queue:
  - name: orders.eu
  - {name: news-archive, address: news.world.today, durable: false}
  - {name: DLQ, routingType: anycast}
log:
  module: DEFAULT
  enable: debug+
  includeTimestamp: false
  outputFile: broker.log
`;

const FULL_JSON = `[
  ["broker", {
    "id": "broker-A",
    "dataDir": "data/journal",
    "lockPollMs": 500,
    "leaseMs": 2000,
    "maxMessageSize": 1048576,
    "globalMaxSizeBytes": 1073741824,
    "journalCompactMinBytes": 1000000,
    "pageCacheBytes": 2000000,
    "persistent": true,
    "saslConfigDir": "/etc/sasl2",
    "saslConfigName": "broker"
  }],
  ["listener", {"name": "clients", "host": "0.0.0.0", "port": "amqps", "saslMechanisms": "plain", "authenticatePeer": true,
                "maxFrameSize": 65536, "maxSessions": 100, "idleTimeoutSeconds": 30}],
  ["listener", {"port": 0}],
  ["address", {"name": "orders", "prefix": "orders", "routingType": "ANYCAST", "maxDeliveryAttempts": -1,
               "deadLetterAddress": "DLQ", "expiryAddress": "ExpiryQueue", "maxSizeBytes": 10485760,
               "addressFullPolicy": "fail", "autoCreate": false}],
  ["address", {"pattern": "news.*.#", "routingType": "multicast"}],
  ["queue", {"name": "orders.eu"}],
  ["queue", {"name": "news-archive", "address": "news.world.today", "durable": false}],
  ["queue", {"name": "DLQ", "routingType": "anycast"}],
  ["log", {"module": "DEFAULT", "enable": "debug+", "includeTimestamp": false, "outputFile": "broker.log"}]
]
`;

function checkFullConfig(config: BrokerConfig): void {
  assert.equal(
    { ...config.broker, source: undefined },
    {
      type: 'broker',
      id: 'broker-A',
      dataDir: path.join(ETC, 'data', 'journal'),
      persistent: true,
      lockPollMs: 500,
      leaseMs: 2000,
      haPolicy: 'shared-store',
      groupSize: 3,
      replicationHost: '127.0.0.1',
      replicationPort: 0,
      maxMessageSize: 1048576,
      globalMaxSizeBytes: 1073741824,
      journalCompactMinBytes: 1000000,
      pageCacheBytes: 2000000,
      saslConfigDir: '/etc/sasl2',
      saslConfigName: 'broker',
      source: undefined,
    },
  );
  assert.is(config.listeners.length, 2);
  assert.equal(
    { ...config.listeners[0]!, source: undefined },
    {
      type: 'listener',
      name: 'clients',
      host: '0.0.0.0',
      port: 5671,
      saslMechanisms: ['PLAIN'],
      authenticatePeer: true,
      maxFrameSize: 65536,
      maxSessions: 100,
      idleTimeoutSeconds: 30,
      transport: { tls: null, requireSsl: false, verifyClient: false, websockets: false, initialHandshakeTimeoutSeconds: 30 },
      source: undefined,
    },
  );
  assert.is(config.listeners[1]!.port, 0);
  assert.equal(
    { ...config.addresses[0]!, source: undefined },
    {
      type: 'address',
      name: 'orders',
      prefix: 'orders',
      routingType: 'anycast',
      maxDeliveryAttempts: -1,
      deadLetterAddress: 'DLQ',
      expiryAddress: 'ExpiryQueue',
      maxSizeBytes: 10485760,
      addressFullPolicy: 'FAIL',
      autoCreate: false,
      source: undefined,
    },
  );
  assert.equal(
    { ...config.addresses[1]!, source: undefined },
    {
      type: 'address',
      pattern: 'news.*.#',
      routingType: 'multicast',
      maxDeliveryAttempts: 10,
      maxSizeBytes: -1,
      addressFullPolicy: 'BLOCK',
      autoCreate: true,
      source: undefined,
    },
  );
  assert.equal(
    config.queues.map(({ source: _source, ...queue }) => queue),
    [
      { type: 'queue', name: 'orders.eu', address: 'orders.eu', routingType: 'anycast', durable: true },
      // No routingType written: that of the matching address settings (news.*.#: multicast).
      { type: 'queue', name: 'news-archive', address: 'news.world.today', routingType: 'multicast', durable: false },
      { type: 'queue', name: 'DLQ', address: 'DLQ', routingType: 'anycast', durable: true },
    ],
  );
  assert.is(config.logs.length, 1);
  const log = config.logs[0]!;
  assert.is(log.module, 'DEFAULT');
  assert.is(log.enable, 'debug+');
  assert.equal(log.enabledLevels, ['debug', 'info', 'notice', 'warning', 'error', 'critical']);
  assert.is(log.includeTimestamp, false);
  assert.is(log.outputFile, 'broker.log');
  assert.equal(config.warnings, []);
}

test('every entity in conf syntax', () => {
  const config = load(FULL_CONF);
  checkFullConfig(config);
  assert.is(config.file, path.join(ETC, 'broker.conf'));
  assert.is(config.broker.source.line, 2);
  assert.is(config.broker.source.attributeLines['dataDir'], 4);
  assert.is(config.listeners[1]!.source.line, 25);
  assert.is(config.addresses[1]!.source.attributeLines['routingType'], 41);
  assert.is(config.queues[2]!.source.line, 51);
  assert.is(config.logs[0]!.source.line, 55);
});

test('every entity in YAML, same result as conf', () => {
  const config = load(FULL_YAML, path.join(ETC, 'broker.yaml'));
  checkFullConfig(config);
  assert.equal(withoutSources(config), withoutSources(load(FULL_CONF)));
  assert.is(config.broker.source.line, 2);
  assert.is(config.listeners[1]!.source.line, 23);
  assert.is(config.queues[1]!.source.line, 38);
  assert.is(config.logs[0]!.source.attributeLines['outputFile'], 44);
  // .yml is YAML too.
  checkFullConfig(load(FULL_YAML, path.join(ETC, 'broker.yml')));
});

test('every entity in JSON, same result as conf', () => {
  const config = load(FULL_JSON, path.join(ETC, 'broker.json'));
  checkFullConfig(config);
  assert.equal(withoutSources(config), withoutSources(load(FULL_CONF)));
  assert.is(config.broker.source.line, 2);
  assert.is(config.listeners[0]!.source.line, 15);
  assert.is(config.addresses[1]!.source.line, 21);
  // The JSON map form works too.
  const map = load('{"broker": {"dataDir": "/d"}, "queue": [{"name": "a"}, {"name": "b"}]}', 'b.json');
  assert.equal(map.queues.map((queue) => queue.name), ['a', 'b']);
});

test('the syntax option overrides the extension', () => {
  const config = parseBrokerConfig(FULL_YAML, path.join(ETC, 'broker.cfg'), { ...fixedId, syntax: 'yaml' });
  checkFullConfig(config);
});

// ---------------------------------------------------------------------------------------------
// Defaults

test('defaults: a broker section with only dataDir', () => {
  const config = load('broker {\n    dataDir: /var/lib/amqp-mesh\n}\n');
  assert.equal(
    { ...config.broker, source: undefined },
    {
      type: 'broker',
      id: 'generated-broker',
      dataDir: path.resolve('/var/lib/amqp-mesh'),
      persistent: true,
      lockPollMs: 1000,
      leaseMs: 3000,
      haPolicy: 'shared-store',
      groupSize: 3,
      replicationHost: '127.0.0.1',
      replicationPort: 0,
      maxMessageSize: 64 * MIB,
      globalMaxSizeBytes: -1,
      journalCompactMinBytes: 64 * MIB,
      pageCacheBytes: 64 * MIB,
      saslConfigName: 'qdrouterd',
      source: undefined,
    },
  );
  assert.equal(config.listeners, []);
  assert.equal(config.addresses, []);
  assert.equal(config.queues, []);
  assert.equal(config.logs, []);
  assert.equal(config.warnings, []);
});

test('defaults: listener, address, queue', () => {
  const config = load('broker {\n  dataDir: d\n}\nlistener {\n}\naddress {\n  prefix: a\n}\nqueue {\n  name: q\n}\n');
  const { source: _l, ...listener } = config.listeners[0]!;
  assert.equal(listener, {
    type: 'listener',
    host: '',
    port: 5672,
    saslMechanisms: ['ANONYMOUS', 'PLAIN'],
    authenticatePeer: false,
    maxFrameSize: 16384,
    maxSessions: 32768,
    idleTimeoutSeconds: 16,
    transport: { tls: null, requireSsl: false, verifyClient: false, websockets: false, initialHandshakeTimeoutSeconds: 30 },
  });
  const { source: _a, ...address } = config.addresses[0]!;
  assert.equal(address, { type: 'address', prefix: 'a', ...DEFAULT_ADDRESS_SETTINGS });
  const { source: _q, ...queue } = config.queues[0]!;
  assert.equal(queue, { type: 'queue', name: 'q', address: 'q', routingType: 'anycast', durable: true });
});

test('defaults: authenticatePeer alone offers PLAIN; 0 means the default for maxMessageSize and maxSessions', () => {
  const config = load('broker {\n  dataDir: d\n  maxMessageSize: 0\n}\nlistener {\n  authenticatePeer: on\n  maxSessions: 0\n}\n');
  assert.equal(config.listeners[0]!.saslMechanisms, ['PLAIN']);
  assert.is(config.listeners[0]!.maxSessions, 32768);
  assert.is(config.broker.maxMessageSize, 64 * MIB);
  // Mechanisms are upper-cased, de-duplicated, space- or comma-separated.
  assert.equal(load('broker {\n  dataDir: d\n}\nlistener {\n  saslMechanisms: "plain, anonymous PLAIN"\n}\n').listeners[0]!.saslMechanisms, ['PLAIN', 'ANONYMOUS']);
});

test('defaults: a generated broker id is broker-<hostname>-<random>', () => {
  const host = os.hostname().replace(/[^A-Za-z0-9_-]+/g, '_');
  const id = generateBrokerId();
  assert.ok(id.startsWith(`broker-${host}-`), id);
  assert.match(id, /^broker-[A-Za-z0-9_-]+-[0-9a-f]{12}$/);
  assert.is.not(generateBrokerId(), id);
  const config = parseBrokerConfig('broker {\n  dataDir: d\n}\n', 'broker.conf');
  assert.match(config.broker.id, /^broker-[A-Za-z0-9_-]+-[0-9a-f]{12}$/);
});

test('defaults: without a broker section dataDir is missing; persistent: false needs none', () => {
  // Without a broker section persistent is true, so dataDir is required.
  assertRefused('listener {\n  port: 5672\n}\n', {
    line: undefined,
    code: 'ERR_CONFIG_MISSING_ATTRIBUTE',
    mentions: ['there is no broker section', 'dataDir', 'persistent: false'],
  });
  assertRefused('', { file: 'empty.yaml', line: undefined, code: 'ERR_CONFIG_MISSING_ATTRIBUTE', mentions: ['dataDir'] });
  // persistent: false needs no dataDir.
  const memory = load('broker {\n  persistent: false\n}\nqueue {\n  name: q\n  durable: true\n}\n');
  assert.is(memory.broker.persistent, false);
  assert.is(memory.broker.dataDir, undefined);
  assert.is(memory.broker.source.line, 1);
  // A durable queue written in a non-persistent broker is accepted with a warning.
  assert.is(memory.warnings.length, 1);
  assert.is(memory.warnings[0]!.code, 'WARN_CONFIG_NO_EFFECT');
  assert.is(memory.warnings[0]!.line, 6);
  assert.ok(memory.warnings[0]!.message.includes('broker.conf:6: queue durable has no effect'));
});

// ---------------------------------------------------------------------------------------------
// dataDir resolution

test('haPolicy jdbc: needs haGroup and a postgresql:// jdbcUrl; replication needs zookeeper', () => {
  const ok = load('broker {\n  dataDir: d\n  haPolicy: JDBC\n  haGroup: orders\n  jdbcUrl: postgresql://amq@127.0.0.1:5432/amq\n}\n');
  assert.is(ok.broker.haPolicy, 'jdbc');
  assert.is(ok.broker.haGroup, 'orders');
  assert.is(ok.broker.jdbcUrl, 'postgresql://amq@127.0.0.1:5432/amq');
  assertRefused('broker {\n  dataDir: d\n  haPolicy: jdbc\n  haGroup: orders\n}\n', { line: 3, code: 'ERR_CONFIG_MISSING_ATTRIBUTE', mentions: ['needs "jdbcUrl"'] });
  assertRefused('broker {\n  dataDir: d\n  haPolicy: jdbc\n  jdbcUrl: postgresql://h/db\n}\n', { line: 3, code: 'ERR_CONFIG_MISSING_ATTRIBUTE', mentions: ['needs "haGroup"'] });
  assertRefused('broker {\n  dataDir: d\n  haPolicy: jdbc\n  haGroup: o\n  jdbcUrl: mysql://h/db\n}\n', { line: 5, code: 'ERR_CONFIG_INVALID_VALUE', mentions: ['expected postgresql://'] });
  assertRefused('broker {\n  dataDir: d\n  haPolicy: jdbc\n  haGroup: a b\n  jdbcUrl: postgresql://h/db\n}\n', { line: 4, code: 'ERR_CONFIG_INVALID_VALUE', mentions: ['haGroup'] });
  assertRefused('broker {\n  persistent: false\n  haPolicy: jdbc\n  haGroup: o\n  jdbcUrl: postgresql://h/db\n}\n', { line: 3, code: 'ERR_CONFIG_INVALID_VALUE', mentions: ['persistent: false'] });
  assertRefused('broker {\n  dataDir: d\n  haPolicy: replication\n  haGroup: o\n}\n', { line: 3, code: 'ERR_CONFIG_MISSING_ATTRIBUTE', mentions: ['needs "zookeeper"'] });
  assert.is(load('broker {\n  dataDir: d\n  haPolicy: replication\n  haGroup: o\n  zookeeper: 127.0.0.1:2181\n  groupSize: 5\n}\n').broker.groupSize, 5);
  assertRefused('broker {\n  dataDir: d\n  haPolicy: colocated\n}\n', { line: 3, code: 'ERR_CONFIG_INVALID_VALUE', mentions: ['shared-store', 'replication', 'jdbc'] });
});

test('dataDir: relative paths resolve against the config file directory', () => {
  assert.is(load('broker {\n  dataDir: data\n}\n', path.join(ETC, 'broker.conf')).broker.dataDir, path.join(ETC, 'data'));
  assert.is(load('broker {\n  dataDir: ../var/data\n}\n', path.join(ETC, 'broker.conf')).broker.dataDir, path.resolve(ETC, '../var/data'));
  assert.is(load('broker {\n  dataDir: /srv/journal\n}\n', path.join(ETC, 'broker.conf')).broker.dataDir, path.resolve('/srv/journal'));
  // A relative file name resolves against the working directory.
  assert.is(load('broker:\n  dataDir: data\n', 'conf/broker.yaml').broker.dataDir, path.resolve('conf', 'data'));
  withTemporaryDirectory((directory) => {
    const file = path.join(directory, 'broker.json');
    fs.writeFileSync(file, '[["broker", {"dataDir": "./store"}], ["listener", {"port": 5672}]]');
    const config = loadBrokerConfigFile(file, fixedId);
    assert.is(config.broker.dataDir, path.join(directory, 'store'));
    assert.is(config.listeners[0]!.port, 5672);
    assert.is(config.file, file);
  });
});

// ---------------------------------------------------------------------------------------------
// Refusals

const VALID_ENTITIES = 'valid entities: broker, listener, address, queue, log';

test('refused: unknown entity types, with the valid ones', () => {
  assertRefused('broker {\n  dataDir: d\n}\nbogus {\n  address: x\n}\n', {
    line: 4,
    code: 'ERR_CONFIG_UNKNOWN_ENTITY',
    mentions: ['unknown entity "bogus"', VALID_ENTITIES],
  });
  assertRefused('- broker: {dataDir: d}\n- topic: {name: t}\n', {
    file: 'b.yaml',
    line: 2,
    code: 'ERR_CONFIG_UNKNOWN_ENTITY',
    mentions: ['unknown entity "topic"', VALID_ENTITIES],
  });
  // Router entities get a hint.
  assertRefused('[\n  ["router", {"mode": "interior"}]\n]', {
    file: 'b.json',
    line: 2,
    code: 'ERR_CONFIG_UNKNOWN_ENTITY',
    mentions: ['"router" is a router entity', 'router configuration?', VALID_ENTITIES],
  });
  assertRefused('connector {\n  port: 1\n}\n', { line: 1, code: 'ERR_CONFIG_UNKNOWN_ENTITY', mentions: ['router entity', VALID_ENTITIES] });
});

test('refused: unknown attributes, with the valid ones', () => {
  assertRefused('broker {\n  dataDir: d\n  data-dirs: x\n}\n', {
    line: 3,
    code: 'ERR_CONFIG_UNKNOWN_ATTRIBUTE',
    mentions: ['broker has no attribute "data-dirs" (read as "dataDirs")', 'valid attributes: id, dataDir, persistent, lockPollMs, leaseMs'],
  });
  assertRefused('broker:\n  dataDir: d\nlistener:\n  port: 1\n  role: normal\n', {
    file: 'b.yaml',
    line: 5,
    code: 'ERR_CONFIG_UNKNOWN_ATTRIBUTE',
    mentions: ['listener has no attribute "role"', 'valid attributes: host, port, saslMechanisms, authenticatePeer'],
  });
  assertRefused('[\n  ["broker", {"dataDir": "d"}],\n  ["address", {"prefix": "a",\n    "distribution": "closest"}]\n]', {
    file: 'b.json',
    line: 4,
    code: 'ERR_CONFIG_UNKNOWN_ATTRIBUTE',
    mentions: ['address has no attribute "distribution"', 'valid attributes: prefix, pattern, routingType'],
  });
  assertRefused('broker {\n  dataDir: d\n}\nqueue {\n  name: q\n  exclusive: true\n}\n', {
    line: 6,
    code: 'ERR_CONFIG_UNKNOWN_ATTRIBUTE',
    mentions: ['queue has no attribute "exclusive"', 'valid attributes: name, address, routingType, durable'],
  });
  // log attributes are the router's.
  assertRefused('broker {\n  dataDir: d\n}\nlog {\n  module: DEFAULT\n  level: info\n}\n', {
    line: 6,
    code: 'ERR_CONFIG_UNKNOWN_ATTRIBUTE',
    mentions: ['log has no attribute "level"', 'valid attributes: module, enable'],
  });
  assertRefused('broker {\n  dataDir: d\n  dataDir: e\n}\n', { line: 3, code: 'ERR_CONFIG_DUPLICATE', mentions: ['"dataDir" is set twice (first on line 2)'] });
  assertRefused('broker:\n  lease_ms: 1\n  leaseMs: 2\n', {
    file: 'b.yaml',
    line: 3,
    code: 'ERR_CONFIG_DUPLICATE',
    mentions: ['"leaseMs" is set twice, as "leaseMs" here and as "lease_ms" on line 2'],
  });
});

test('refused: values of the wrong type or out of range', () => {
  assertRefused('broker {\n  dataDir: d\n  lockPollMs: soon\n}\n', {
    line: 3,
    code: 'ERR_CONFIG_INVALID_VALUE',
    mentions: ['broker lockPollMs "soon" is not an integer', 'expected an integer from 1 to 2147483647'],
  });
  assertRefused('broker:\n  dataDir: d\n  persistent: maybe\n', {
    file: 'b.yaml',
    line: 3,
    code: 'ERR_CONFIG_INVALID_VALUE',
    mentions: ['broker persistent "maybe" is not a boolean', 'true or false'],
  });
  assertRefused('[\n  ["broker", {\n    "dataDir": true\n  }]\n]', {
    file: 'b.json',
    line: 3,
    code: 'ERR_CONFIG_INVALID_VALUE',
    mentions: ['broker dataDir true is not a string'],
  });
  assertRefused('broker {\n  dataDir: d\n}\nlistener {\n  port: 70000\n}\n', {
    line: 5,
    code: 'ERR_CONFIG_INVALID_VALUE',
    mentions: ['listener port "70000" is out of range', '"amqp" (5672) or "amqps" (5671)'],
  });
  assertRefused('broker {\n  dataDir: d\n}\nlistener {\n  port: http\n}\n', { line: 5, code: 'ERR_CONFIG_INVALID_VALUE', mentions: ['is not a port'] });
  assertRefused('broker {\n  dataDir: d\n}\nlistener {\n  maxFrameSize: 100\n}\n', {
    line: 5,
    code: 'ERR_CONFIG_INVALID_VALUE',
    mentions: ['listener maxFrameSize "100" is out of range; expected an integer from 512 to 4294967295'],
  });
  assertRefused('broker {\n  dataDir: d\n}\naddress {\n  prefix: a\n  maxDeliveryAttempts: 0\n}\n', {
    line: 6,
    code: 'ERR_CONFIG_INVALID_VALUE',
    mentions: ['address maxDeliveryAttempts "0" is out of range; expected -1 (unlimited) or an integer from 1 to'],
  });
  assertRefused('broker {\n  dataDir: d\n}\naddress {\n  prefix: a\n  maxSizeBytes: -2\n}\n', {
    line: 6,
    code: 'ERR_CONFIG_INVALID_VALUE',
    mentions: ['expected -1 (unlimited) or an integer of at least 1'],
  });
  assertRefused('broker {\n  dataDir: d\n  globalMaxSizeBytes: 0\n}\n', { line: 3, code: 'ERR_CONFIG_INVALID_VALUE', mentions: ['-1 (half of memory)'] });
  assertRefused('broker {\n  dataDir: d\n  pageCacheBytes: -1\n}\n', { line: 3, code: 'ERR_CONFIG_INVALID_VALUE', mentions: ['an integer of at least 0'] });
  assertRefused('broker {\n  dataDir: "  "\n}\n', { line: 2, code: 'ERR_CONFIG_INVALID_VALUE', mentions: ['broker dataDir "  " is empty'] });
  assertRefused('broker {\n  dataDir: d\n  id: "two words"\n}\n', { line: 3, code: 'ERR_CONFIG_INVALID_VALUE', mentions: ['broker id "two words"'] });
  assertRefused('broker {\n  dataDir: d\n}\nqueue {\n  name: ""\n}\n', { line: 5, code: 'ERR_CONFIG_INVALID_VALUE', mentions: ['queue name ""'] });
  assertRefused('broker {\n  dataDir: d\n}\naddress {\n  prefix: "./"\n}\n', { line: 5, code: 'ERR_CONFIG_INVALID_VALUE', mentions: ['has no tokens'] });
});

test('refused: bad enumeration values, with the valid choices', () => {
  assertRefused('broker {\n  dataDir: d\n}\naddress {\n  prefix: a\n  routingType: queue\n}\n', {
    line: 6,
    code: 'ERR_CONFIG_INVALID_VALUE',
    mentions: ['address routingType "queue" is not one of anycast, multicast'],
  });
  assertRefused('broker:\n  dataDir: d\naddress:\n  prefix: a\n  addressFullPolicy: DROP\n', {
    file: 'b.yaml',
    line: 5,
    code: 'ERR_CONFIG_INVALID_VALUE',
    mentions: ['address addressFullPolicy "DROP" is not one of BLOCK, FAIL'],
  });
  assertRefused('[\n  ["broker", {"dataDir": "d"}],\n  ["queue", {"name": "q", "routingType": 1}]\n]', {
    file: 'b.json',
    line: 3,
    code: 'ERR_CONFIG_INVALID_VALUE',
    mentions: ['queue routingType 1 is not one of anycast, multicast'],
  });
  assertRefused('broker {\n  dataDir: d\n}\nlistener {\n  saslMechanisms: PLAIN GSSAPI\n}\n', {
    line: 5,
    code: 'ERR_CONFIG_NOT_SUPPORTED',
    mentions: ['listener saslMechanisms "GSSAPI" is not supported', 'supported: ANONYMOUS, PLAIN'],
  });
  assertRefused('broker {\n  dataDir: d\n}\nlog {\n  module: BROKERX\n}\n', {
    line: 5,
    code: 'ERR_CONFIG_INVALID_VALUE',
    mentions: ['log module "BROKERX" is not one of ROUTER', 'DEFAULT'],
  });
  assertRefused('broker {\n  dataDir: d\n}\nlog {\n  module: DEFAULT\n  enable: loud\n}\n', {
    line: 6,
    code: 'ERR_CONFIG_INVALID_VALUE',
    mentions: ['log enable "loud" is not valid', 'trace, debug, info'],
  });
  // Case does not matter for routingType and addressFullPolicy; the output is canonical.
  const config = load('broker {\n  dataDir: d\n}\naddress {\n  prefix: a\n  routingType: MultiCast\n  addressFullPolicy: Block\n}\n');
  assert.is(config.addresses[0]!.routingType, 'multicast');
  assert.is(config.addresses[0]!.addressFullPolicy, 'BLOCK');
});

test('refused: missing required attributes', () => {
  assertRefused('broker {\n  id: b\n}\n', {
    line: 1,
    code: 'ERR_CONFIG_MISSING_ATTRIBUTE',
    mentions: ['broker is missing required attribute "dataDir"', 'persistent: false'],
  });
  assertRefused('broker:\n  dataDir: d\nqueue:\n  address: a\n', {
    file: 'b.yaml',
    line: 3,
    code: 'ERR_CONFIG_MISSING_ATTRIBUTE',
    mentions: ['queue is missing required attribute "name"'],
  });
  assertRefused('[\n  ["broker", {"dataDir": "d"}],\n  ["log", {"enable": "info+"}]\n]', {
    file: 'b.json',
    line: 3,
    code: 'ERR_CONFIG_MISSING_ATTRIBUTE',
    mentions: ['log is missing required attribute "module"', 'expected one of ROUTER'],
  });
  assertRefused('broker {\n  dataDir: d\n}\naddress {\n  routingType: multicast\n}\n', {
    line: 4,
    code: 'ERR_CONFIG_MISSING_ATTRIBUTE',
    mentions: ['exactly one of "prefix" or "pattern"; it has neither'],
  });
});

test('refused: conflicts and duplicates', () => {
  assertRefused('broker {\n  dataDir: d\n}\nbroker {\n  dataDir: e\n}\n', {
    line: 4,
    code: 'ERR_CONFIG_DUPLICATE',
    mentions: ['only one broker section is allowed (first on line 1)'],
  });
  assertRefused('- broker: {dataDir: d}\n- broker: {dataDir: e}\n', {
    file: 'b.yaml',
    line: 2,
    code: 'ERR_CONFIG_DUPLICATE',
    mentions: ['only one broker section is allowed (first on line 1)'],
  });
  assertRefused('broker {\n  dataDir: d\n}\naddress {\n  prefix: a\n  pattern: a.#\n}\n', {
    line: 6,
    code: 'ERR_CONFIG_CONFLICT',
    mentions: ['exactly one of "prefix" or "pattern"; it has both (prefix on line 5, pattern on line 6)'],
  });
  assertRefused('[\n  ["broker", {"dataDir": "d"}],\n  ["address", {\n    "pattern": "a.#",\n    "prefix": "a"\n  }]\n]', {
    file: 'b.json',
    line: 5,
    code: 'ERR_CONFIG_CONFLICT',
    mentions: ['it has both'],
  });
  assertRefused('broker {\n  dataDir: d\n}\naddress {\n  prefix: orders\n}\naddress {\n  pattern: orders/#\n}\n', {
    line: 8,
    code: 'ERR_CONFIG_DUPLICATE',
    mentions: ['matches the same addresses as the address on line 4 (prefix "orders")'],
  });
  assertRefused('broker {\n  dataDir: d\n}\nqueue {\n  name: q\n}\nqueue {\n  name: q\n  address: other\n}\n', {
    line: 8,
    code: 'ERR_CONFIG_DUPLICATE',
    mentions: ['queue "q" is already defined on line 4'],
  });
  assertRefused('broker {\n  dataDir: d\n}\nlistener {\n  name: l\n}\nlistener {\n  name: l\n}\n', {
    line: 8,
    code: 'ERR_CONFIG_DUPLICATE',
    mentions: ['listener name "l" is already used by the listener on line 4'],
  });
  assertRefused('broker {\n  dataDir: d\n}\nlog {\n  module: DEFAULT\n}\nlog {\n  module: DEFAULT\n}\n', {
    line: 8,
    code: 'ERR_CONFIG_DUPLICATE',
    mentions: ['log module "DEFAULT" is configured twice (first on line 4)'],
  });
  assertRefused('broker {\n  dataDir: d\n}\nlistener {\n  authenticatePeer: true\n  saslMechanisms: ANONYMOUS\n}\n', {
    line: 6,
    code: 'ERR_CONFIG_CONFLICT',
    mentions: ['authenticatePeer: true', 'add PLAIN'],
  });
  assertRefused('broker {\n  dataDir: d\n  lockPollMs: 5000\n}\n', {
    line: 3,
    code: 'ERR_CONFIG_CONFLICT',
    mentions: ['broker leaseMs 3000 (the default) must be more than lockPollMs 5000 (line 3)'],
  });
  // A queue may share its name with another kind of entity.
  assert.is(load('broker {\n  dataDir: d\n}\nlistener {\n  name: q\n}\nqueue {\n  name: q\n}\n').queues.length, 1);
});

test('refused: syntax errors, in each syntax', () => {
  assertRefused('broker {\n  dataDir: d\n', { line: 1, code: 'ERR_CONFIG_SYNTAX' });
  assertRefused('broker:\n  dataDir: d\n listener: [\n', { file: 'b.yaml', line: 3, code: 'ERR_CONFIG_SYNTAX', mentions: ['invalid YAML'] });
  assertRefused('[\n  ["broker", {"dataDir": "d"}\n', { file: 'b.json', line: 3, code: 'ERR_CONFIG_SYNTAX', mentions: ['invalid JSON'] });
});

test('refused: unreadable, oversized and non-UTF-8 files', () => {
  withTemporaryDirectory((directory) => {
    const missing = path.join(directory, 'missing.conf');
    let refusal: unknown;
    try {
      loadBrokerConfigFile(missing);
    } catch (error) {
      refusal = error;
    }
    checkRefusal(refusal, missing, { line: undefined, code: 'ERR_CONFIG_READ', mentions: ['cannot read the configuration file'] });
    assert.ok((refusal as ConfigError).cause instanceof Error);

    const large = path.join(directory, 'large.conf');
    fs.writeFileSync(large, Buffer.alloc(MAX_CONFIG_FILE_BYTES + 1, 0x20));
    refusal = undefined;
    try {
      loadBrokerConfigFile(large);
    } catch (error) {
      refusal = error;
    }
    checkRefusal(refusal, large, { line: undefined, code: 'ERR_CONFIG_TOO_LARGE', mentions: ['4 MiB'] });

    const latin1 = path.join(directory, 'latin1.conf');
    fs.writeFileSync(latin1, Buffer.concat([Buffer.from('broker {\n  dataDir: d\n  id: caf'), Buffer.from([0xe9]), Buffer.from('\n}\n')]));
    refusal = undefined;
    try {
      loadBrokerConfigFile(latin1);
    } catch (error) {
      refusal = error;
    }
    checkRefusal(refusal, latin1, { line: 3, code: 'ERR_CONFIG_ENCODING', mentions: ['not valid UTF-8'] });
  });
});

// ---------------------------------------------------------------------------------------------
// matchAddress

function addressesOf(text: string): BrokerAddress[] {
  return load(`broker {\n  dataDir: d\n}\n${text}`).addresses;
}

test('matchAddress: defaults when nothing matches; prefixes match at token boundaries', () => {
  const addresses = addressesOf('address {\n  prefix: orders\n  maxDeliveryAttempts: 3\n}\n');
  assert.equal(matchAddress([], 'anything'), { ...DEFAULT_ADDRESS_SETTINGS });
  assert.equal(matchAddress(addresses, 'ordersX'), { ...DEFAULT_ADDRESS_SETTINGS });
  assert.equal(matchAddress(addresses, 'other.orders'), { ...DEFAULT_ADDRESS_SETTINGS });
  for (const name of ['orders', 'orders.eu', 'orders/eu/paris']) assert.is(matchAddress(addresses, name).maxDeliveryAttempts, 3, name);
  // The result is a fresh settings object without the entity's prefix, name or source.
  const settings = matchAddress(addresses, 'orders');
  assert.equal(settings, { routingType: 'anycast', maxDeliveryAttempts: 3, maxSizeBytes: -1, addressFullPolicy: 'BLOCK', autoCreate: true });
  settings.maxDeliveryAttempts = 99;
  assert.is(matchAddress(addresses, 'orders').maxDeliveryAttempts, 3);
  assert.is(DEFAULT_ADDRESS_SETTINGS.maxDeliveryAttempts, 10);
});

test('matchAddress: patterns with * (one token) and # (zero or more)', () => {
  const addresses = addressesOf('address {\n  pattern: news.*.today\n  routingType: multicast\n}\naddress {\n  pattern: logs/#\n  maxSizeBytes: 100\n}\n');
  assert.is(matchAddress(addresses, 'news.world.today').routingType, 'multicast');
  assert.is(matchAddress(addresses, 'news/world/today').routingType, 'multicast');
  assert.is(matchAddress(addresses, 'news.today').routingType, 'anycast');
  assert.is(matchAddress(addresses, 'news.a.b.today').routingType, 'anycast');
  assert.is(matchAddress(addresses, 'logs').maxSizeBytes, 100);
  assert.is(matchAddress(addresses, 'logs.a.b.c').maxSizeBytes, 100);
  assert.is(matchAddress(addresses, 'logsX').maxSizeBytes, -1);
});

test('matchAddress: the most specific match wins, wherever it is in the file', () => {
  const addresses = addressesOf(
    [
      'address {\n  pattern: "#"\n  maxDeliveryAttempts: 1\n}',
      'address {\n  pattern: orders.*\n  maxDeliveryAttempts: 2\n}',
      'address {\n  prefix: orders\n  maxDeliveryAttempts: 3\n}',
      'address {\n  prefix: orders.eu\n  maxDeliveryAttempts: 4\n  deadLetterAddress: DLQ.eu\n}',
      'address {\n  pattern: orders.eu.*\n  maxDeliveryAttempts: 5\n}',
    ].join('\n') + '\n',
  );
  // "#" catches everything else.
  assert.is(matchAddress(addresses, 'misc').maxDeliveryAttempts, 1);
  // A prefix beats a pattern with the same literal tokens (orders beats orders.*).
  assert.is(matchAddress(addresses, 'orders.us').maxDeliveryAttempts, 3);
  // More literal tokens win: orders.eu (2 literal, prefix) beats orders (1).
  const eu = matchAddress(addresses, 'orders.eu');
  assert.is(eu.maxDeliveryAttempts, 4);
  assert.is(eu.deadLetterAddress, 'DLQ.eu');
  // orders.eu prefix (2 literal + 1) beats orders.eu.* (2 literal).
  assert.is(matchAddress(addresses, 'orders.eu.paris').maxDeliveryAttempts, 4);
  // The matched entity itself is available for messages.
  assert.is(findAddressEntity(addresses, 'orders.eu.paris')!.source.line, 16);
  assert.is(findAddressEntity([], 'x'), undefined);
  // Between equally specific matches, the first in the file wins.
  const tie = addressesOf('address {\n  pattern: a.*\n  maxSizeBytes: 1\n}\naddress {\n  pattern: a.#\n  maxSizeBytes: 2\n}\n');
  assert.is(matchAddress(tie, 'a.b').maxSizeBytes, 1);
  assert.is(matchAddress(tie, 'a.b.c').maxSizeBytes, 2);
});

test('queues: address defaults to the name; routingType defaults to the matching address settings', () => {
  const config = load(
    'broker {\n  dataDir: d\n}\nqueue {\n  name: sub1\n  address: prices.eu\n}\nqueue {\n  name: sub2\n  address: prices.eu\n  routingType: ANYCAST\n}\n' +
      'address {\n  prefix: prices\n  routingType: multicast\n}\n',
  );
  assert.equal(
    config.queues.map((queue) => [queue.name, queue.address, queue.routingType]),
    [
      ['sub1', 'prices.eu', 'multicast'],
      ['sub2', 'prices.eu', 'anycast'],
    ],
  );
});

test.run();
