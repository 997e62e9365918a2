import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  ConfigError,
  detectConfigSyntax,
  ENTITY_SCHEMAS,
  loadConfigFile,
  MAX_ATTRIBUTE_VALUE_BYTES,
  MAX_CONFIG_ENTITIES,
  MAX_CONFIG_FILE_BYTES,
  parseConfig,
  parseConfSyntax,
  parseLogEnable,
  qdrouterdCamelCase,
  type ConfigErrorCode,
  type ConfigOptions,
  type ConfigWarningCode,
  type RouterConfig,
} from '../../router/config';
import { tlsFiles } from './config-tls-files';

// ---------------------------------------------------------------------------------------------
// Helpers

const fixedRouterId: ConfigOptions = { generateRouterId: (mode) => `generated-${mode}` };

function load(text: string, file = 'router.conf'): RouterConfig {
  return parseConfig(text, file, fixedRouterId);
}

/** Asserts a refusal and that its message names the file, the line and everything in `mentions`. */
function assertRefused(
  text: string,
  expected: { file?: string; line: number | undefined; code: ConfigErrorCode; mentions?: readonly string[] },
): ConfigError {
  const file = expected.file ?? 'router.conf';
  let refusal: unknown;
  try {
    load(text, file);
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
  assert.is(refusal.message, location + refusal.reason);
  for (const mention of expected.mentions ?? []) {
    assert.ok(refusal.message.includes(mention), `"${refusal.message}" should mention ${JSON.stringify(mention)}`);
  }
  return refusal;
}

function warningCodes(config: RouterConfig): ConfigWarningCode[] {
  return config.warnings.map((warning) => warning.code);
}

/** A config without where-it-came-from, to compare the same config written in different syntaxes. */
function withoutSources(config: RouterConfig): unknown {
  return JSON.parse(
    JSON.stringify(config, (key, value: unknown) => (key === 'source' || key === 'entities' || key === 'line' || key === 'message' || key === 'file' ? undefined : value)),
  );
}

function withTemporaryDirectory(use: (directory: string) => void): void {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'amqp-mesh-config-test-'));
  try {
    use(directory);
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// qdrouterd.conf syntax

const CLEAN_CONF = [
  'router {',
  '    mode: interior',
  '    id: Router.A',
  '}',
  'listener {',
  '    host: 127.0.0.1',
  '    port: 5672',
  '}',
].join('\n');

test('conf: comments, blank lines, indentation, tabs, CRLF and a BOM do not change the result', () => {
  const messy = [
    '\uFEFF# a whole-line comment',
    '',
    '   # an indented comment',
    'router {   # trailing comment after the brace',
    '\tmode:\tinterior\t# tabs around the value',
    '    id: Router.A#comment without a space',
    '}  # after the closing brace',
    '\t',
    'listener{',
    'host   :   127.0.0.1   ',
    '    port: 5672',
    '}',
    '# the end',
  ].join('\r\n');
  const clean = load(CLEAN_CONF);
  const parsed = load(messy);
  assert.equal(withoutSources(parsed), withoutSources(clean));
  assert.is(parsed.router.id, 'Router.A');
  assert.is(parsed.router.source.line, 4);
  assert.equal(parsed.router.source.attributeLines, { mode: 5, id: 6 });
  assert.is(parsed.listeners[0]!.source.line, 9);
  assert.equal(parsed.listeners[0]!.source.attributeLines, { host: 10, port: 11 });
});

test('conf: quoted values keep "#", spaces and emptiness; escapes in double quotes', () => {
  const config = load(
    [
      'listener {',
      '    name: "amqp # not a comment"  # a comment',
      "    host: ''",
      '}',
      'listener {',
      "    name: ' spaced  out '",
      '    port: 5673',
      '}',
      'listener {',
      '    name: "tab\\there \\"quoted\\" caf\\u00e9"',
      '    port: 5674',
      '}',
    ].join('\n'),
  );
  assert.is(config.listeners[0]!.name, 'amqp # not a comment');
  assert.is(config.listeners[0]!.host, '');
  assert.is(config.listeners[1]!.name, ' spaced  out ');
  assert.is(config.listeners[2]!.name, 'tab\there "quoted" café');
});

test('conf: unquoted values end at "#", except pattern, bindingKey and hostname', () => {
  const config = load(
    [
      'listener {',
      '    name: first#second',
      '}',
      'address {',
      '    pattern: orders/#   # the "#" in the value is a wildcard',
      '}',
      'address {',
      '    pattern: #',
      '}',
      'vhost {',
      '    hostname: #weird',
      '}',
    ].join('\n'),
  );
  assert.is(config.listeners[0]!.name, 'first');
  assert.is(config.addresses[0]!.pattern, 'orders/#');
  assert.is(config.addresses[1]!.pattern, '#');
  assert.is(config.other[0]!.attributes['hostname'], '#weird');
});

test('conf: values are strings until the schema converts them', () => {
  const entities = parseConfSyntax('listener {\n    port: 5672\n    authenticatePeer: yes\n    list: [a, b]\n}\n', 'x.conf');
  assert.equal(entities, [
    {
      type: 'listener',
      line: 1,
      attributes: [
        { name: 'port', value: '5672', line: 2 },
        { name: 'authenticatePeer', value: 'yes', line: 3 },
        { name: 'list', value: '[a, b]', line: 4 },
      ],
    },
  ]);
});

test('conf: names are camelCased as qdrouterd does', () => {
  assert.is(qdrouterdCamelCase('max-frame-size'), 'maxFrameSize');
  assert.is(qdrouterdCamelCase('max_frame_size'), 'maxFrameSize');
  assert.is(qdrouterdCamelCase('maxFrameSize'), 'maxFrameSize');
  assert.is(qdrouterdCamelCase('ssl-profile'), 'sslProfile');
  assert.is(qdrouterdCamelCase('max-frameSize'), 'maxFramesize');
  const { cert, key } = tlsFiles();
  const config = load(`listener {\n    max-frame-size: 1024\n    sasl_mechanisms: PLAIN\n}\nssl-profile {\n    name: p\n    cert-file: ${cert}\n    private_key_file: ${key}\n}\n`);
  assert.is(config.listeners[0]!.maxFrameSize, 1024);
  assert.equal(config.listeners[0]!.saslMechanisms, ['PLAIN']);
  assert.is(config.sslProfiles[0]!.type, 'sslProfile');
  assert.is(config.sslProfiles[0]!.certFile, cert);
  assert.is(config.sslProfiles[0]!.privateKeyFile, key);
  assertRefused('listener {\n    max-frameSize: 1024\n}\n', {
    line: 2,
    code: 'ERR_CONFIG_UNKNOWN_ATTRIBUTE',
    mentions: ['"max-frameSize" (read as "maxFramesize")', 'valid attributes: host, port'],
  });
});

test('conf: sections must be closed and cannot nest', () => {
  assertRefused('router {\n    mode: interior\n', { line: 1, code: 'ERR_CONFIG_SYNTAX', mentions: ['"router"', 'never closed'] });
  assertRefused('listener {\n    port: 1\nrouter {\n}\n', {
    line: 3,
    code: 'ERR_CONFIG_SYNTAX',
    mentions: ['"router"', '"listener" (opened on line 1)', 'close "listener" with "}"'],
  });
  assertRefused('router {\n}\n}\n', { line: 3, code: 'ERR_CONFIG_SYNTAX', mentions: ['"}" closes nothing'] });
  assertRefused('\nport: 5672\n', { line: 2, code: 'ERR_CONFIG_SYNTAX', mentions: ['outside any section'] });
  assertRefused('router {}\n', { line: 1, code: 'ERR_CONFIG_SYNTAX', mentions: ['one-line sections'] });
  // As in qdrouterd, a brace after a value is part of the value.
  assertRefused('router {\n    mode: interior }\n}\n', { line: 2, code: 'ERR_CONFIG_INVALID_VALUE', mentions: ['"interior }"'] });
  assertRefused('router {\n}\nlistener {\n    port 5672\n}\n', {
    line: 4,
    code: 'ERR_CONFIG_SYNTAX',
    mentions: ['expected "name {", "key: value" or "}"', '"port 5672"'],
  });
  assertRefused('listener {\n}\nrouter.config {\n}\n', { line: 3, code: 'ERR_CONFIG_SYNTAX' });
});

test('conf: malformed values are refused with their line', () => {
  assertRefused('listener {\n    host:\n}\n', { line: 2, code: 'ERR_CONFIG_SYNTAX', mentions: ['"host" has no value', 'host: ""'] });
  assertRefused('listener {\n    host:   # only a comment\n}\n', { line: 2, code: 'ERR_CONFIG_SYNTAX', mentions: ['no value'] });
  assertRefused('listener {\n    name: "unterminated\n}\n', { line: 2, code: 'ERR_CONFIG_SYNTAX', mentions: ['unterminated'] });
  assertRefused("listener {\n    name: 'unterminated\n}\n", { line: 2, code: 'ERR_CONFIG_SYNTAX', mentions: ['unterminated'] });
  assertRefused('listener {\n    name: "a" b\n}\n', { line: 2, code: 'ERR_CONFIG_SYNTAX', mentions: ['after the quoted value'] });
  assertRefused('listener {\n    name: "bad \\x escape"\n}\n', { line: 2, code: 'ERR_CONFIG_SYNTAX', mentions: ['invalid escape'] });
  assertRefused('address {\n    pattern: a b\n}\n', { line: 2, code: 'ERR_CONFIG_SYNTAX', mentions: ['single token'] });
  assertRefused('listener {\n    openProperties: {"a": 1}\n}\n', { line: 2, code: 'ERR_CONFIG_SYNTAX', mentions: ['openProperties: {'] });
});

test('conf: control characters and stray carriage returns are refused', () => {
  assertRefused('listener {\n    name: a\u0000b\n}\n', { line: 2, code: 'ERR_CONFIG_SYNTAX', mentions: ['U+0000'] });
  assertRefused('listener {\n    name: a\rb\n}\n', { line: 2, code: 'ERR_CONFIG_SYNTAX', mentions: ['U+000D'] });
  assertRefused('listener {\n    name: "a\u001bb"\n}\n', { line: 2, code: 'ERR_CONFIG_SYNTAX', mentions: ['U+001B'] });
  // In a comment, anything goes: qdrouterd drops comment lines before parsing.
  assert.is(load('# \u0000\u0007\nrouter {\n}\n').router.mode, 'standalone');
});

test('conf: map values (openProperties, vhost groups) in JSON or conf style', () => {
  const config = load(
    [
      'connector {',
      '    name: broker',
      '    openProperties: {',
      '        # a comment inside the map',
      '        "label": "green",',
      '        "integer": 7,',
      '        "list":  ["a", 1, "b", -9, true],',
      '        "map":  {"key1": null, "key2": [1, 2, 3]},',
      '        "nested": {',
      '            "deeper": "yes"',
      '        },',
      '    }',
      '}',
      'vhost {',
      '    hostname: example.com',
      '    groups: {',
      '        admin: {',
      '            users: admin1, admin2',
      '            remoteHosts: 127.0.0.1, ::1',
      '            allowDynamicSource: true,',
      '        }',
      '        $default: {',
      '            remoteHosts: *',
      '        }',
      '    }',
      '}',
    ].join('\n'),
  );
  assert.equal(config.connectors[0]!.unimplemented['openProperties'], {
    label: 'green',
    integer: 7,
    list: ['a', 1, 'b', -9, true],
    map: { key1: null, key2: [1, 2, 3] },
    nested: { deeper: 'yes' },
  });
  assert.is(config.connectors[0]!.source.attributeLines['openProperties'], 3);
  assert.equal(config.other[0]!.attributes['groups'], {
    admin: { users: 'admin1, admin2', remoteHosts: '127.0.0.1, ::1', allowDynamicSource: true },
    $default: { remoteHosts: '*' },
  });
  assertRefused('connector {\n    openProperties: {\n        "a": 1\n', {
    line: 2,
    code: 'ERR_CONFIG_SYNTAX',
    mentions: ['map "openProperties" opened here is never closed'],
  });
  assertRefused('connector {\n    openProperties: {\n        "a": 1,\n        "a": 2\n    }\n}\n', {
    line: 4,
    code: 'ERR_CONFIG_SYNTAX',
    mentions: ['"a" is set twice', 'first on line 3'],
  });
  assertRefused('connector {\n    openProperties: {\n        "list": [1,\n            2]\n    }\n}\n', {
    line: 3,
    code: 'ERR_CONFIG_SYNTAX',
    mentions: ['complete on one line'],
  });
  assertRefused('connector {\n    openProperties: {\n        "a": 1\nlistener {\n', {
    line: 4,
    code: 'ERR_CONFIG_SYNTAX',
    mentions: ['map "openProperties" (opened on line 2) is not closed'],
  });
  assertRefused('listener {\n    openProperties: {\n        "caf\u00e9": 1\n    }\n}\n', {
    line: 2,
    code: 'ERR_CONFIG_INVALID_VALUE',
    mentions: ['"café" is not ASCII'],
  });
});

test('conf: invalid UTF-8 is refused with the line of the first bad byte', () => {
  withTemporaryDirectory((directory) => {
    const file = path.join(directory, 'latin1.conf');
    fs.writeFileSync(file, Buffer.concat([Buffer.from('router {\n    id: caf'), Buffer.from([0xe9]), Buffer.from('\n}\n')]));
    let refusal: unknown;
    try {
      loadConfigFile(file, fixedRouterId);
    } catch (error) {
      refusal = error;
    }
    checkRefusal(refusal, file, { line: 2, code: 'ERR_CONFIG_ENCODING', mentions: ['byte 0xE9', 'UTF-8'] });

    const utf16 = path.join(directory, 'utf16.conf');
    fs.writeFileSync(utf16, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('router {\n}\n', 'utf16le')]));
    refusal = undefined;
    try {
      loadConfigFile(utf16, fixedRouterId);
    } catch (error) {
      refusal = error;
    }
    checkRefusal(refusal, utf16, { line: 1, code: 'ERR_CONFIG_ENCODING', mentions: ['UTF-16'] });

    const valid = path.join(directory, 'utf8.conf');
    fs.writeFileSync(valid, '\uFEFFrouter {\n    id: caf\u00e9-\u{1F600}\n}\n');
    assert.is(loadConfigFile(valid, fixedRouterId).router.id, 'café-\u{1F600}');
  });
});

// ---------------------------------------------------------------------------------------------
// YAML and JSON

const EQUIVALENT_CONF = [
  'router {',
  '    mode: interior',
  '    id: Router.A',
  '    defaultDistribution: multicast',
  '}',
  'listener {',
  '    name: amqp',
  '    port: amqp',
  '    authenticatePeer: yes',
  '    saslMechanisms: PLAIN',
  '}',
  'listener {',
  '    name: local',
  '    host: 127.0.0.1',
  '    port: 5673',
  '    maxFrameSize: 65536',
  '}',
  'address {',
  '    prefix: closest',
  '    distribution: closest',
  '}',
  'log {',
  '    module: DEFAULT',
  '    enable: info+',
  '}',
  'linkRoute {',
  '    prefix: queue.',
  '    dir: in',
  '}',
].join('\n');

const EQUIVALENT_YAML_LIST = `
# the same configuration as a list of single-key maps
- router:
    mode: interior
    id: Router.A
    defaultDistribution: multicast
- listener: {name: amqp, port: amqp, authenticatePeer: true, saslMechanisms: PLAIN}
- listener:
    name: local
    host: 127.0.0.1
    port: 5673
    maxFrameSize: 65536
- address: {prefix: closest, distribution: closest}
- log: {module: DEFAULT, enable: info+}
- linkRoute: {prefix: queue., dir: in}
`;

const EQUIVALENT_YAML_MAP = `
router: {mode: interior, id: Router.A, defaultDistribution: multicast}
listener:
  - name: amqp
    port: amqp
    authenticatePeer: yes
    saslMechanisms: PLAIN
  - name: local
    host: 127.0.0.1
    port: 5673
    maxFrameSize: "65536"
address: {prefix: closest, distribution: closest}
log: {module: DEFAULT, enable: info+}
linkRoute: {prefix: queue., dir: in}
`;

const EQUIVALENT_JSON_PAIRS = `[
  ["router", {"mode": "interior", "id": "Router.A", "defaultDistribution": "multicast"}],
  # qdrouterd strips whole-line comments from JSON configs too
  ["listener", {"name": "amqp", "port": "amqp", "authenticatePeer": true, "saslMechanisms": "PLAIN"}],
  ["listener", {"name": "local", "host": "127.0.0.1", "port": 5673, "maxFrameSize": 65536}],
  ["address", {"prefix": "closest", "distribution": "closest"}],
  ["log", {"module": "DEFAULT", "enable": "info+"}],
  ["linkRoute", {"prefix": "queue.", "dir": "in"}]
]`;

const EQUIVALENT_JSON_MAP = `{
  "router": {"mode": "interior", "id": "Router.A", "defaultDistribution": "multicast"},
  "listener": [
    {"name": "amqp", "port": "amqp", "authenticatePeer": true, "saslMechanisms": "PLAIN"},
    {"name": "local", "host": "127.0.0.1", "port": 5673, "maxFrameSize": 65536}
  ],
  "address": {"prefix": "closest", "distribution": "closest"},
  "log": {"module": "DEFAULT", "enable": "info+"},
  "linkRoute": {"prefix": "queue.", "dir": "in"}
}`;

test('yaml and json: every accepted shape gives the same configuration as the conf syntax', () => {
  const expected = load(EQUIVALENT_CONF, 'router.conf');
  assert.is(expected.listeners.length, 2);
  assert.is(expected.listeners[0]!.port, 5672);
  assert.equal({ ...expected.linkRoutes[0]!, source: undefined }, { type: 'linkRoute', prefix: 'queue.', direction: 'in', distribution: 'linkBalanced', unimplemented: {}, source: undefined });
  assert.equal(warningCodes(expected), ['WARN_CONFIG_ATTRIBUTE_NOT_IMPLEMENTED', 'WARN_CONFIG_DEPRECATED']);
  for (const [text, file] of [
    [EQUIVALENT_YAML_LIST, 'router.yaml'],
    [EQUIVALENT_YAML_MAP, 'router.yml'],
    [EQUIVALENT_JSON_PAIRS, 'router.json'],
    [EQUIVALENT_JSON_MAP, 'router.json'],
  ] as const) {
    const config = load(text, file);
    assert.equal(withoutSources(config), withoutSources(expected), file);
    assert.is(config.router.source.file, file);
  }
});

test('yaml and json: entities and attributes carry their line numbers', () => {
  const yaml = load(EQUIVALENT_YAML_LIST, 'router.yaml');
  assert.is(yaml.router.source.line, 3);
  assert.equal(yaml.router.source.attributeLines, { mode: 4, id: 5, defaultDistribution: 6 });
  assert.is(yaml.listeners[1]!.source.line, 8);
  assert.equal(yaml.listeners[1]!.source.attributeLines, { name: 9, host: 10, port: 11, maxFrameSize: 12 });
  assert.is(yaml.warnings[0]!.line, 6);
  assert.is(yaml.warnings[0]!.message, 'router.yaml:6: router attribute "defaultDistribution" is accepted, not implemented by amqp-mesh');

  const yamlMap = load(EQUIVALENT_YAML_MAP, 'router.yml');
  assert.is(yamlMap.listeners[0]!.source.line, 4);
  assert.is(yamlMap.listeners[1]!.source.line, 8);
  assert.is(yamlMap.listeners[1]!.source.attributeLines['port'], 10);

  const json = load(EQUIVALENT_JSON_PAIRS, 'router.json');
  assert.is(json.router.source.line, 2);
  assert.is(json.listeners[0]!.source.line, 4);
  assert.is(json.linkRoutes[0]!.source.line, 8);
  assert.is(json.linkRoutes[0]!.source.attributeLines['direction'], 8);

  assertRefused('[\n  ["router", {}],\n  ["listener", {\n    "port": 5672,\n    "prot": 5673\n  }]\n]', {
    file: 'router.json',
    line: 5,
    code: 'ERR_CONFIG_UNKNOWN_ATTRIBUTE',
    mentions: ['listener has no attribute "prot"', 'valid attributes: host, port, role'],
  });
  assertRefused('router:\n  mode: interior\naddress:\n  - prefix: a\n    distribution: fastest\n', {
    file: 'router.yaml',
    line: 5,
    code: 'ERR_CONFIG_INVALID_VALUE',
    mentions: ['address distribution "fastest" is not one of multicast, closest, balanced'],
  });
});

test('yaml and json: syntax errors name the line', () => {
  assertRefused('router:\n  mode: interior\n listener: [\n', { file: 'r.yaml', line: 3, code: 'ERR_CONFIG_SYNTAX', mentions: ['invalid YAML'] });
  assertRefused('[\n  ["router", {"mode": "interior"}\n', { file: 'r.json', line: 3, code: 'ERR_CONFIG_SYNTAX', mentions: ['invalid JSON'] });
  assertRefused('[\n  ["router", {\'mode\': "interior"}]\n]', {
    file: 'r.json',
    line: 2,
    code: 'ERR_CONFIG_SYNTAX',
    mentions: ["'mode'", 'double quotes'],
  });
  assertRefused('[\n  ["router", {"mode": interior}]\n]', { file: 'r.json', line: 2, code: 'ERR_CONFIG_SYNTAX', mentions: ['double quotes'] });
  assertRefused('router:\n  mode: interior\n', { file: 'r.json', line: 1, code: 'ERR_CONFIG_SYNTAX', mentions: ['JSON config must be an array'] });
  assertRefused('a: 1\n---\nb: 2\n', { file: 'r.yaml', line: 2, code: 'ERR_CONFIG_SYNTAX' });
});

test('yaml and json: unexpected shapes are refused', () => {
  assertRefused('just a string\n', { file: 'r.yaml', line: 1, code: 'ERR_CONFIG_SYNTAX', mentions: ['expected a list of entities'] });
  assertRefused('- router: {}\n  listener: {}\n', { file: 'r.yaml', line: 1, code: 'ERR_CONFIG_SYNTAX', mentions: ['single-key map'] });
  assertRefused('- router: {}\n- 42\n', { file: 'r.yaml', line: 2, code: 'ERR_CONFIG_SYNTAX', mentions: ['single-key map'] });
  assertRefused('- listener: [1, 2]\n', { file: 'r.yaml', line: 1, code: 'ERR_CONFIG_SYNTAX', mentions: ['attributes of "listener" must be a map'] });
  assertRefused('listener:\n  - port: 1\n  - just text\n', { file: 'r.yaml', line: 3, code: 'ERR_CONFIG_SYNTAX', mentions: ['must be a map'] });
  assertRefused('[[1, {}]]', { file: 'r.json', line: 1, code: 'ERR_CONFIG_SYNTAX', mentions: ['entity type must be a name'] });
  assertRefused('listener:\n  !!binary aGVsbG8=: 1\n', { file: 'r.yaml', line: 2, code: 'ERR_CONFIG_SYNTAX', mentions: ['attribute name'] });
  assertRefused('listener:\n  name: !!binary aGVsbG8=\n', { file: 'r.yaml', line: 2, code: 'ERR_CONFIG_SYNTAX', mentions: ['unsupported value'] });
  assertRefused('listener:\n  port: .inf\n', { file: 'r.yaml', line: 2, code: 'ERR_CONFIG_SYNTAX', mentions: ['not a finite number'] });
});

test('yaml and json: an empty document is an empty configuration', () => {
  assert.is(load('', 'empty.yaml').listeners.length, 0);
  assert.is(load('# nothing\n', 'empty.yaml').router.id, 'generated-standalone');
  assert.is(load('', 'empty.json').listeners.length, 0);
  assert.is(load('router:\nlistener:\n', 'nulls.yaml').listeners[0]!.port, 5672);
});

test('yaml: anchors and merge keys share settings; explicit keys win', () => {
  const listeners = load(
    [
      '- listener: &base',
      '    maxFrameSize: 65536',
      '    idleTimeoutSeconds: 30',
      '    port: 5672',
      '- listener:',
      '    <<: *base',
      '    port: 5673',
      '    idleTimeoutSeconds: 60',
      '    host: ~',
    ].join('\n'),
    'anchors.yaml',
  ).listeners;
  assert.equal(
    listeners.map((listener) => [listener.port, listener.maxFrameSize, listener.idleTimeoutSeconds, listener.host]),
    [
      [5672, 65536, 30, ''],
      [5673, 65536, 60, ''],
    ],
  );
  assert.is(listeners[1]!.source.attributeLines['maxFrameSize'], 2);
  assert.is(listeners[1]!.source.attributeLines['port'], 7);
});

test('yaml: scalars are converted by the schema, not by YAML alone', () => {
  const config = load('router:\n  id: 123\nlistener:\n  port: "5672"\n  authenticatePeer: "on"\n  maxFrameSize: 1024\n', 'r.yaml');
  assert.is(config.router.id, '123');
  assert.is(config.listeners[0]!.port, 5672);
  assert.is(config.listeners[0]!.authenticatePeer, true);
  assert.is(config.listeners[0]!.maxFrameSize, 1024);
  assertRefused('router:\n  id: true\n', { file: 'r.yaml', line: 2, code: 'ERR_CONFIG_INVALID_VALUE', mentions: ['router id true is not a string', 'quote it'] });
  assertRefused('listener:\n  maxFrameSize: 1024.5\n', {
    file: 'r.yaml',
    line: 2,
    code: 'ERR_CONFIG_INVALID_VALUE',
    mentions: ['maxFrameSize 1024.5 is not an integer', 'from 512 to 4294967295'],
  });
  assertRefused('listener:\n  port: [5672]\n', { file: 'r.yaml', line: 2, code: 'ERR_CONFIG_INVALID_VALUE', mentions: ['port a list is not a port'] });
});

test('yaml and json: duplicate keys are reported with both lines, after camelCasing', () => {
  assertRefused('listener:\n  port: 1\n  host: a\n  port: 2\n', {
    file: 'r.yaml',
    line: 4,
    code: 'ERR_CONFIG_DUPLICATE',
    mentions: ['listener attribute "port" is set twice (first on line 2)'],
  });
  assertRefused('{"listener": {\n  "maxFrameSize": 1024,\n  "max-frame-size": 2048\n}}', {
    file: 'r.json',
    line: 3,
    code: 'ERR_CONFIG_DUPLICATE',
    mentions: ['as "max-frame-size" here and as "maxFrameSize" on line 2'],
  });
});

test('syntax is chosen by file extension, or by option', () => {
  assert.is(detectConfigSyntax('router.yaml'), 'yaml');
  assert.is(detectConfigSyntax('/etc/router.YML'), 'yaml');
  assert.is(detectConfigSyntax('router.json'), 'json');
  assert.is(detectConfigSyntax('qdrouterd.conf'), 'conf');
  assert.is(detectConfigSyntax('router'), 'conf');
  assert.is(detectConfigSyntax('router.yaml.bak'), 'conf');
  assert.is(parseConfig('router:\n  mode: interior\n', 'stdin', { syntax: 'yaml' }).router.mode, 'interior');
});

// ---------------------------------------------------------------------------------------------
// Schema validation: refusals

test('refused: unknown entity types, with the valid ones', () => {
  assertRefused('router {\n}\nlistner {\n    port: 1\n}\n', {
    line: 3,
    code: 'ERR_CONFIG_UNKNOWN_ENTITY',
    mentions: ['unknown entity "listner"', 'valid entities: router, listener, connector, address, linkRoute, autoLink'],
  });
  assertRefused('Listener {\n}\n', { line: 1, code: 'ERR_CONFIG_UNKNOWN_ENTITY', mentions: ['"Listener"', 'valid entities:'] });
  assertRefused('connection {\n}\n', { line: 1, code: 'ERR_CONFIG_UNKNOWN_ENTITY', mentions: ['status entity', 'valid entities:'] });
  assertRefused('- vhostUserGroupSettings: {users: a}\n', {
    file: 'r.yaml',
    line: 1,
    code: 'ERR_CONFIG_UNKNOWN_ENTITY',
    mentions: ['"groups" map', 'valid entities:'],
  });
  // Object.prototype members are not entity types.
  assertRefused('constructor {\n}\n', { line: 1, code: 'ERR_CONFIG_UNKNOWN_ENTITY' });
  assertRefused('listener {\n    constructor: 1\n}\n', { line: 2, code: 'ERR_CONFIG_UNKNOWN_ATTRIBUTE' });
});

test('refused: unknown attributes, with the valid ones', () => {
  assertRefused('router {\n}\nlistener {\n    host: 0.0.0.0\n    prot: 5672\n}\n', {
    line: 5,
    code: 'ERR_CONFIG_UNKNOWN_ATTRIBUTE',
    mentions: ['listener has no attribute "prot"', 'valid attributes: host, port, role, cost, saslMechanisms, authenticatePeer', 'name'],
  });
  // The listener's pre-1.0 "addr" is not in qdrouterd 1.19's schema (autoLink's "addr" is).
  assertRefused('listener {\n    addr: 0.0.0.0\n}\n', { line: 2, code: 'ERR_CONFIG_UNKNOWN_ATTRIBUTE', mentions: ['"addr"'] });
  const error = assertRefused('address {\n    prefix: a\n    identity: x\n}\n', { line: 3, code: 'ERR_CONFIG_UNKNOWN_ATTRIBUTE' });
  assert.ok(error.message.includes('valid attributes: prefix, pattern, distribution, waypoint, ingressPhase, egressPhase, priority, enableFallback, name'), error.message);
  // Status attributes are not suggested.
  const routerError = assertRefused('router {\n    nope: 1\n}\n', { line: 2, code: 'ERR_CONFIG_UNKNOWN_ATTRIBUTE' });
  assert.not.ok(routerError.message.includes('addrCount'));
});

test('refused: values of the wrong type or out of range', () => {
  const cases: Array<[string, number, string[]]> = [
    ['listener {\n    port: abc\n}', 2, ['listener port "abc" is not a port', '0 to 65535', '"amqp" (5672)', '"amqps" (5671)']],
    ['listener {\n    port: 65536\n}', 2, ['listener port "65536" is out of range', '0 to 65535']],
    ['listener {\n    port: -1\n}', 2, ['listener port "-1" is out of range']],
    ['listener {\n    port: http\n}', 2, ['listener port "http" is not a port']],
    ['listener {\n    maxFrameSize: -1\n}', 2, ['listener maxFrameSize "-1" is out of range', 'from 512 to 4294967295']],
    ['listener {\n    maxFrameSize: big\n}', 2, ['listener maxFrameSize "big" is not an integer', 'from 512 to 4294967295']],
    ['listener {\n    maxFrameSize: 511\n}', 2, ['out of range', 'from 512']],
    ['listener {\n    maxFrameSize: 1.5\n}', 2, ['is not an integer']],
    ['listener {\n    maxFrameSize: 99999999999999999999\n}', 2, ['is not an integer']],
    ['listener {\n    maxSessions: 32769\n}', 2, ['from 0 to 32768']],
    ['listener {\n    idleTimeoutSeconds: -5\n}', 2, ['from 0 to 4294967']],
    ['listener {\n    linkCapacity: lots\n}', 2, ['listener linkCapacity "lots" is not an integer']],
    ['listener {\n    authenticatePeer: maybe\n}', 2, ['listener authenticatePeer "maybe" is not a boolean', 'true or false', 'yes/no, on/off']],
    ['router {\n    workerThreads: 0\n}', 2, ['router workerThreads "0" is out of range', 'at least 1']],
    ['address {\n    prefix: a\n    priority: 10\n}', 3, ['address priority "10" is out of range', 'from 0 to 9']],
    ['connector {\n    cost: 0\n}', 2, ['connector cost "0" is out of range', 'at least 1']],
  ];
  for (const [text, line, mentions] of cases) assertRefused(text, { line, code: 'ERR_CONFIG_INVALID_VALUE', mentions });
});

test('refused: enumeration values that are not in the list', () => {
  assertRefused('router {\n}\naddress {\n    prefix: a\n    distribution: fastest\n}\n', {
    line: 5,
    code: 'ERR_CONFIG_INVALID_VALUE',
    mentions: ['address distribution "fastest" is not one of multicast, closest, balanced'],
  });
  assertRefused('listener {\n    stripAnnotations: sometimes\n}\n', {
    line: 2,
    code: 'ERR_CONFIG_INVALID_VALUE',
    mentions: ['listener stripAnnotations "sometimes" is not one of in, out, both, no'],
  });
  assertRefused('log {\n    module: router\n}\n', { line: 2, code: 'ERR_CONFIG_INVALID_VALUE', mentions: ['is not one of ROUTER, ROUTER_CORE', 'DEFAULT'] });
  assertRefused('router {\n    mode: 7\n}\n', { line: 2, code: 'ERR_CONFIG_INVALID_VALUE', mentions: ['not one of standalone, interior'] });
  assertRefused('linkRoute {\n    prefix: a\n    direction: sideways\n}\n', { line: 3, code: 'ERR_CONFIG_INVALID_VALUE', mentions: ['not one of in, out'] });
});

test('address distribution unavailable is accepted (qdrouterd 1.19: attaches refused, anonymous deliveries rejected)', () => {
  const cfg = load('address {\n    prefix: a\n    distribution: unavailable\n}\n');
  assert.is(cfg.addresses[0]!.distribution, 'unavailable');
  assert.is(cfg.addresses[0]!.prefix, 'a');
});

test('refused: what qdrouterd accepts but amqp-mesh does not support yet', () => {
  assertRefused('listener {\n    saslMechanisms: ANONYMOUS GSSAPI\n}\n', {
    line: 2,
    code: 'ERR_CONFIG_NOT_SUPPORTED',
    mentions: ['listener saslMechanisms "GSSAPI" is not supported', 'supported: ANONYMOUS, PLAIN'],
  });
});

test('refused: missing required values', () => {
  assertRefused('router {\n}\nlog {\n    enable: info+\n}\n', {
    line: 3,
    code: 'ERR_CONFIG_MISSING_ATTRIBUTE',
    mentions: ['log is missing required attribute "module"', 'expected one of ROUTER,', 'DEFAULT'],
  });
  assertRefused('linkRoute {\n    prefix: q\n}\n', { line: 1, code: 'ERR_CONFIG_MISSING_ATTRIBUTE', mentions: ['"direction"', 'in, out'] });
  assertRefused('autoLink {\n    dir: in\n}\n', { line: 1, code: 'ERR_CONFIG_MISSING_ATTRIBUTE', mentions: ['autoLink is missing required attribute "address"'] });
  assertRefused('- log: {module: ~}\n', { file: 'r.yaml', line: 1, code: 'ERR_CONFIG_MISSING_ATTRIBUTE', mentions: ['"module"'] });
});

test('refused: address needs exactly one of prefix and pattern, with tokens; a second for the same match is ignored', () => {
  assertRefused('router {\n}\naddress {\n    distribution: closest\n}\n', {
    line: 3,
    code: 'ERR_CONFIG_MISSING_ATTRIBUTE',
    mentions: ['exactly one of "prefix" or "pattern"', 'neither'],
  });
  assertRefused('address {\n    prefix: a\n    pattern: b.*\n}\n', {
    line: 3,
    code: 'ERR_CONFIG_CONFLICT',
    mentions: ['exactly one of "prefix" or "pattern"', 'both (prefix on line 2, pattern on line 3)'],
  });
  assertRefused('address {\n    prefix: "./"\n}\n', { line: 2, code: 'ERR_CONFIG_INVALID_VALUE', mentions: ['has no tokens'] });
  assertRefused('address {\n    prefix: ""\n}\n', { line: 2, code: 'ERR_CONFIG_INVALID_VALUE', mentions: ['has no tokens'] });
  // A second address for the same match: qdrouterd's agent refuses it and goes on with the first; so does amqp-mesh, with a warning.
  const dup = load('address {\n    prefix: orders\n    distribution: multicast\n}\naddress {\n    prefix: orders.\n}\n');
  assert.equal(dup.addresses.map((a) => [a.prefix, a.distribution]), [['orders', 'multicast']]);
  assert.equal(dup.warnings.map((w) => [w.line, w.code]), [[5, 'WARN_CONFIG_NO_EFFECT']]);
  assert.match(dup.warnings[0]!.message, /address prefix "orders\." matches the same addresses as the address on line 1 \(prefix "orders"\); it is ignored/);
  assert.is(load('address {\n    prefix: a.b\n}\naddress {\n    pattern: a/b/#\n}\n').addresses.length, 1);
  // A prefix and the same text as an exact pattern match different addresses.
  assert.is(load('address {\n    prefix: a\n}\naddress {\n    pattern: a\n}\n').addresses.length, 2);
});

test('refused: listener authentication that cannot work', () => {
  assertRefused('listener {\n    authenticatePeer: true\n    saslMechanisms: ANONYMOUS\n}\n', {
    line: 3,
    code: 'ERR_CONFIG_CONFLICT',
    mentions: ['authenticatePeer: true', 'add PLAIN'],
  });
  assertRefused('listener {\n    saslMechanisms: "  "\n}\n', { line: 2, code: 'ERR_CONFIG_INVALID_VALUE', mentions: ['saslMechanisms is empty', 'ANONYMOUS, PLAIN'] });
});

test('refused: log enable strings that are not levels', () => {
  for (const enable of ['verbose', 'info++', 'd', 'none,info', 'default+', 'info,default', '+']) {
    assertRefused(`log {\n    module: ROUTER\n    enable: ${enable}\n}\n`, {
      line: 3,
      code: 'ERR_CONFIG_INVALID_VALUE',
      mentions: [`log enable "${enable}" is not valid`, 'trace, debug, info, notice, warning, error, critical', '"none"'],
    });
  }
  assertRefused('log {\n    module: DEFAULT\n    enable: default\n}\n', { line: 3, code: 'ERR_CONFIG_INVALID_VALUE', mentions: ['DEFAULT module'] });
  assertRefused('log {\n    module: ROUTER\n}\nlog {\n    module: ROUTER\n    enable: none\n}\n', {
    line: 5,
    code: 'ERR_CONFIG_DUPLICATE',
    mentions: ['log module "ROUTER" is configured twice (first on line 1)'],
  });
});

test('refused: things set twice', () => {
  assertRefused('listener {\n    port: 1\n    host: a\n    port: 2\n}\n', {
    line: 4,
    code: 'ERR_CONFIG_DUPLICATE',
    mentions: ['listener attribute "port" is set twice (first on line 2)'],
  });
  assertRefused('listener {\n    socketAddressFamily: IPv4\n    protocolFamily: IPv6\n}\n', {
    line: 3,
    code: 'ERR_CONFIG_DUPLICATE',
    mentions: ['"socketAddressFamily" is set twice, as "protocolFamily" here and as "socketAddressFamily" on line 2'],
  });
  assertRefused('router {\n    mode: interior\n}\nrouter {\n}\n', {
    line: 4,
    code: 'ERR_CONFIG_DUPLICATE',
    mentions: ['only one router section is allowed (first on line 1)'],
  });
  assertRefused('policy {\n}\npolicy {\n}\n', { line: 3, code: 'ERR_CONFIG_DUPLICATE', mentions: ['only one policy section'] });
  // qdrouterd's names are unique across all entity types.
  assertRefused('listener {\n    name: main\n}\nconnector {\n    name: main\n}\n', {
    line: 5,
    code: 'ERR_CONFIG_DUPLICATE',
    mentions: ['connector name "main" is already used by the listener on line 1'],
  });
});

test('refused: router ids with whitespace or control characters', () => {
  assertRefused('router {\n    id: "Router A"\n}\n', { line: 2, code: 'ERR_CONFIG_INVALID_VALUE', mentions: ['router id "Router A"', 'whitespace'] });
  assertRefused('router {\n    id: ""\n}\n', { line: 2, code: 'ERR_CONFIG_INVALID_VALUE', mentions: ['non-empty'] });
  assertRefused('router {\n    id: "a\\u0085b"\n}\n', { line: 2, code: 'ERR_CONFIG_INVALID_VALUE', mentions: ['control characters'] });
});

// ---------------------------------------------------------------------------------------------
// Accepted with warnings

test('accepted with a warning: qdrouterd attributes amqp-mesh does not implement', () => {
  const config = load(
    [
      'router {',
      '    mode: interior',
      '    allowUnsettledMulticast: true',
      '    defaultDistribution: multicast',
      '    metadata: rack 7',
      '}',
      'listener {',
      '    port: 5672',
      '    maxSessionFrames: 100',
      '    saslPlugin: ldap',
      '}',
      'address {',
      '    prefix: q',
      '    waypoint: true',
      '}',
    ].join('\n'),
  );
  assert.equal(config.router.unimplemented, { allowUnsettledMulticast: true, defaultDistribution: 'multicast', metadata: 'rack 7' });
  assert.equal(config.listeners[0]!.unimplemented, { maxSessionFrames: 100, saslPlugin: 'ldap' });
  assert.equal(config.addresses[0]!.unimplemented, {});
  assert.equal(
    config.warnings.map((warning) => [warning.line, warning.code]),
    [3, 4, 5, 9, 10].map((line) => [line, 'WARN_CONFIG_ATTRIBUTE_NOT_IMPLEMENTED']),
  );
  assert.is(config.warnings[3]!.message, 'router.conf:9: listener attribute "maxSessionFrames" is accepted, not implemented by amqp-mesh');
});

test('refused: TLS listener settings without a usable sslProfile (plain text must not run where TLS was meant)', () => {
  const cases: Array<[string, string, ConfigErrorCode, string]> = [
    ['sslProfile', 'tls', 'ERR_CONFIG_INVALID_VALUE', 'listener sslProfile "tls" names no sslProfile; this file has no sslProfile'],
    ['requireSsl', 'yes', 'ERR_CONFIG_CONFLICT', 'listener requireSsl: true needs an sslProfile'],
    ['requireEncryption', 'true', 'ERR_CONFIG_CONFLICT', 'listener requireEncryption: true needs an sslProfile'],
    ['saslMechanisms', 'EXTERNAL', 'ERR_CONFIG_CONFLICT', 'listener saslMechanisms EXTERNAL needs an sslProfile with a caCertFile'],
  ];
  for (const [attr, value, code, mention] of cases) {
    assertRefused(['listener {', '    port: 5672', `    ${attr}: ${value}`, '}'].join('\n'), { line: 3, code, mentions: [attr, mention] });
  }
  // http alone is AMQP over WebSocket (ws://), no TLS, with qdrouterd's /healthz and /metrics.
  assert.equal(load('listener {\n    http: yes\n}\n').listeners[0]!.transport, {
    tls: null,
    requireSsl: false,
    verifyClient: false,
    websockets: true,
    initialHandshakeTimeoutSeconds: 30,
    http: { rootDir: null, healthz: true, metrics: true },
  });
});

test('accepted with a warning: deprecated names, status attributes, enum indexes, deprecated entities', () => {
  const config = load(
    [
      'router {',
      '    helloInterval: 3',
      '    addrCount: 12',
      '    mode: 1',
      '}',
      'listener {',
      '    protocolFamily: IPv6',
      '}',
      'log {',
      '    module: ROUTER_CORE',
      '    timestamp: off',
      '    output: /var/log/router.log',
      '}',
      'console {',
      '    proxy: p',
      '    home: h',
      '}',
    ].join('\n'),
  );
  assert.is(config.router.mode, 'interior');
  assert.is(config.router.helloIntervalSeconds, 3);
  assert.equal(config.router.unimplemented, {});
  assert.is(config.router.source.attributeLines['helloIntervalSeconds'], 2);
  assert.equal(config.listeners[0]!.unimplemented, { socketAddressFamily: 'IPv6' });
  assert.is(config.logs[0]!.includeTimestamp, false);
  assert.is(config.logs[0]!.outputFile, '/var/log/router.log');
  assert.is(config.other[0]!.type, 'console');
  assert.equal(
    config.warnings.map((warning) => [warning.line, warning.code]),
    [
      [2, 'WARN_CONFIG_DEPRECATED'],
      [3, 'WARN_CONFIG_READ_ONLY'],
      [4, 'WARN_CONFIG_ENUM_INDEX'],
      [7, 'WARN_CONFIG_DEPRECATED'],
      [7, 'WARN_CONFIG_ATTRIBUTE_NOT_IMPLEMENTED'],
      [11, 'WARN_CONFIG_DEPRECATED'],
      [12, 'WARN_CONFIG_DEPRECATED'],
      [14, 'WARN_CONFIG_DEPRECATED'],
      [14, 'WARN_CONFIG_ENTITY_NOT_IMPLEMENTED'],
    ],
  );
  assert.ok(config.warnings[0]!.message.includes('"helloInterval" is deprecated; use "helloIntervalSeconds"'));
  assert.ok(config.warnings[2]!.message.includes('read as "interior"'));
});

test('accepted with a warning: every entity type of qdrouterd, with its defaults', () => {
  const config = load(
    [
      'sslProfile {',
      '    name: tls',
      `    certDb: ${tlsFiles().ca}`,
      '}',
      'authServicePlugin {',
      '    host: auth',
      '}',
      'linkRoute {',
      '    pattern: queue.#',
      '    direction: out',
      '}',
      'autoLink {',
      '    addr: orders',
      '    dir: in',
      '    phase: 0',
      '}',
      'exchange {',
      '    address: ex',
      '}',
      'binding {',
      '    exchangeName: ex',
      '    nextHopAddress: q',
      '    bindingKey: a.#.b',
      '}',
      'policy {',
      '    maxConnections: 10',
      '}',
      'vhost {',
      '    id: $default',
      '}',
    ].join('\n'),
  );
  const byType = Object.fromEntries(config.other.map((entity) => [entity.type, entity.attributes]));
  assert.equal(Object.keys(byType), ['authServicePlugin', 'exchange', 'binding', 'policy', 'vhost']);
  // policy and vhost are implemented: the compiled policy.
  assert.equal([config.policy.maxConnections, config.policy.vhosts.map((v) => v.hostname)], [10, ['$default']]);
  // sslProfile is implemented now: typed, its files read.
  assert.is(config.sslProfiles[0]!.caCertFile, tlsFiles().ca);
  assert.is(byType['authServicePlugin']!['port'], 5672);
  assert.equal([config.linkRoutes[0]!.pattern, config.linkRoutes[0]!.direction], ['queue.#', 'out']);
  assert.equal({ ...config.autoLinks[0]!, source: undefined }, { type: 'autoLink', address: 'orders', direction: 'in', phase: 0, fallback: false, unimplemented: {}, source: undefined });
  assert.is(byType['binding']!['bindingKey'], 'a.#.b');
  assert.equal(byType['policy'], {
    maxConnections: 10,
    maxMessageSize: 0,
    enableVhostPolicy: false,
    enableVhostNamePatterns: false,
    policyDir: '',
    defaultVhost: '$default',
  });
  assert.is(byType['vhost']!['hostname'], '$default');
  assert.is(config.warnings.filter((warning) => warning.code === 'WARN_CONFIG_ENTITY_NOT_IMPLEMENTED').length, 3);
  // Every config-file entity type of the schema is reachable.
  assert.equal(Object.keys(ENTITY_SCHEMAS).sort(), [
    'address',
    'authServicePlugin',
    'autoLink',
    'binding',
    'connector',
    'console',
    'exchange',
    'linkRoute',
    'listener',
    'log',
    'policy',
    'router',
    'sslProfile',
    'vhost',
  ]);
});

// ---------------------------------------------------------------------------------------------
// Defaults

test('defaults: an empty configuration is a standalone router with a generated id', () => {
  const config = parseConfig('# nothing but a comment\n', 'empty.conf');
  assert.is(config.router.mode, 'standalone');
  assert.is(config.router.workerThreads, 4);
  assert.match(config.router.id, /^Standalone_[A-Za-z0-9+_]{15}$/);
  assert.is.not(parseConfig('', 'empty.conf').router.id, config.router.id);
  assert.equal(config.router.source, { file: 'empty.conf', line: 0, attributeLines: {} });
  assert.equal([config.listeners, config.connectors, config.addresses, config.logs, config.other, config.warnings], [[], [], [], [], [], []]);
  assert.match(parseConfig('router {\n    mode: interior\n}\n', 'r.conf').router.id, /^Interior_[A-Za-z0-9+_]{15}$/);
  assert.is(load('router {\n}\n').router.id, 'generated-standalone');
});

test('defaults: a listener with nothing set', () => {
  const listener = load('listener {\n}\n').listeners[0]!;
  assert.equal(
    { ...listener, source: undefined },
    {
      type: 'listener',
      host: '',
      port: 5672,
      role: 'normal',
      cost: 1,
      authenticatePeer: false,
      saslMechanisms: ['ANONYMOUS'],
      maxFrameSize: 16384,
      maxSessions: 32768,
      idleTimeoutSeconds: 16,
      linkCapacity: 250,
      stripAnnotations: 'both',
      // Plain AMQP; amqp-mesh's handshake deadline when initialHandshakeTimeoutSeconds is not set.
      transport: { tls: null, requireSsl: false, verifyClient: false, websockets: false, initialHandshakeTimeoutSeconds: 30 },
      multiTenant: false,
      unimplemented: {},
      source: undefined,
    },
  );
  assert.equal(listener.source, { file: 'router.conf', line: 1, attributeLines: {} });
});

test('defaults: listener values that mean "the default", and mechanism lists', () => {
  const [zeroes, authenticating, mixed, secure] = load(
    [
      'listener {',
      '    maxSessions: 0',
      '    linkCapacity: 0',
      '    idleTimeoutSeconds: 0',
      '}',
      'listener {',
      '    authenticatePeer: on',
      '}',
      'listener {',
      '    saslMechanisms: plain, anonymous PLAIN',
      '}',
      'listener {',
      '    port: AMQPS',
      '}',
    ].join('\n'),
  ).listeners;
  assert.is(zeroes!.maxSessions, 32768);
  assert.is(zeroes!.linkCapacity, 250);
  assert.is(zeroes!.idleTimeoutSeconds, 0);
  assert.equal(authenticating!.saslMechanisms, ['PLAIN']);
  assert.equal(mixed!.saslMechanisms, ['PLAIN', 'ANONYMOUS']);
  assert.is(secure!.port, 5671);
  assert.is(load('listener {\n    port: 0\n}\n').listeners[0]!.port, 0);
});

test('defaults: log modules inherit from DEFAULT, which has qdrouterd defaults', () => {
  const [defaults, router, quiet] = load('log {\n    module: DEFAULT\n}\nlog {\n    module: ROUTER\n}\nlog {\n    module: SERVER\n    enable: NONE\n}\n').logs;
  assert.equal({ ...defaults!, source: undefined }, {
    type: 'log',
    module: 'DEFAULT',
    enable: 'info+',
    enabledLevels: ['info', 'notice', 'warning', 'error', 'critical'],
    includeTimestamp: true,
    includeSource: false,
    outputFile: 'stderr',
    unimplemented: {},
    source: undefined,
  });
  assert.equal({ ...router!, source: undefined }, {
    type: 'log',
    module: 'ROUTER',
    enable: 'default',
    enabledLevels: 'default',
    unimplemented: {},
    source: undefined,
  });
  assert.equal(quiet!.enabledLevels, []);
});

test('parseLogEnable reads qdrouterd enable strings', () => {
  assert.equal(parseLogEnable('trace,debug,warning+'), ['trace', 'debug', 'warning', 'error', 'critical']);
  assert.equal(parseLogEnable('critical'), ['critical']);
  assert.equal(parseLogEnable('Error+ ; Debug'), ['debug', 'error', 'critical']);
  assert.equal(parseLogEnable('none'), []);
  assert.is(parseLogEnable('default'), 'default');
  assert.equal(parseLogEnable(''), [], 'an empty string enables nothing, as in qdrouterd');
  assert.is(parseLogEnable(','), undefined);
  // qdrouterd accepts abbreviations (its own test configs use "warn+"); ambiguous ones are refused.
  assert.equal(parseLogEnable('warn+'), ['warning', 'error', 'critical']);
  assert.equal(parseLogEnable('inf,crit'), ['info', 'critical']);
  assert.equal(parseLogEnable('NONE'), []);
  assert.is(parseLogEnable('d'), undefined);
  assert.is(parseLogEnable('no'), undefined);
  assert.is(parseLogEnable('warning-'), undefined);
});

test('defaults are not warnings: only what the file sets is reported', () => {
  const config = load('router {\n    mode: interior\n}\nlistener {\n    port: 5672\n}\naddress {\n    prefix: a\n}\n');
  assert.equal(config.warnings, []);
  assert.equal(config.listeners[0]!.unimplemented, {});
});

// ---------------------------------------------------------------------------------------------
// Mesh: inter-router listeners, connectors, router protocol settings

const INTERIOR = 'router {\n    mode: interior\n}\n';

test('mesh: an interior router with inter-router listeners and connectors', () => {
  const config = load(
    [
      'router {',
      '    mode: interior',
      '    id: Router.A',
      '}',
      'listener {',
      '    name: mesh-in',
      '    role: inter-router',
      '    port: 55672',
      '    cost: 5',
      '}',
      'connector {',
      '    name: to-b',
      '    role: inter-router',
      '    host: router-b.example.com',
      '    port: 55672',
      '    cost: 3',
      '}',
      'listener {',
      '    port: 5672',
      '}',
    ].join('\n'),
  );
  assert.equal(config.warnings, []);
  assert.equal(
    config.listeners.map((listener) => [listener.name, listener.role, listener.port, listener.cost]),
    [
      ['mesh-in', 'inter-router', 55672, 5],
      [undefined, 'normal', 5672, 1],
    ],
  );
  const [connector] = config.connectors;
  assert.is(config.connectors.length, 1);
  assert.is(connector!.name, 'to-b');
  assert.is(connector!.role, 'inter-router');
  assert.is(connector!.host, 'router-b.example.com');
  assert.is(connector!.cost, 3);
  assert.equal(connector!.source, { file: 'router.conf', line: 11, attributeLines: { name: 12, role: 13, host: 14, port: 15, cost: 16 } });
  assert.equal(config.other, []);
  // The role may also be given by its index, as qdrouterd allows.
  assert.is(load(INTERIOR + 'listener {\n    role: 1\n}\n').listeners[0]!.role, 'inter-router');
});

test('mesh: a connector with nothing but its role has qdrouterd defaults', () => {
  const config = load(INTERIOR + 'connector {\n    role: inter-router\n}\n');
  const connector = config.connectors[0]!;
  assert.equal(
    { ...connector, source: undefined },
    {
      type: 'connector',
      host: '127.0.0.1',
      port: 5672,
      role: 'inter-router',
      cost: 1,
      maxFrameSize: 16384,
      maxSessions: 32768,
      idleTimeoutSeconds: 16,
      linkCapacity: 250,
      stripAnnotations: 'both',
      transport: { tls: null, verifyHostname: true },
      unimplemented: {},
      source: undefined,
    },
  );
  assert.equal(connector.source, { file: 'router.conf', line: 4, attributeLines: { role: 5 } });
  assert.equal(config.warnings, []);
});

test('mesh: every connector attribute amqp-mesh implements, and the ones it accepts with a warning', () => {
  const config = load(
    INTERIOR +
      [
        'connector {',
        '    name: to-b',
        '    role: inter-router',
        '    host: 10.0.0.2',
        '    port: amqps',
        '    cost: 7',
        '    sasl-mechanisms: plain, anonymous PLAIN',
        '    saslUsername: router-a',
        '    saslPassword: "s3cret # not a comment"',
        '    maxFrameSize: 65536',
        '    maxSessions: 0',
        '    idleTimeoutSeconds: 0',
        '    linkCapacity: 0',
        '    stripAnnotations: no',
        '    verifyHostName: no',
        '    allowRedirect: false',
        '    maxSessionFrames: 10',
        '    connectionStatus: SUCCESS',
        '}',
      ].join('\n'),
  );
  const connector = config.connectors[0]!;
  assert.equal(
    { ...connector, source: undefined },
    {
      type: 'connector',
      host: '10.0.0.2',
      port: 5671,
      role: 'inter-router',
      cost: 7,
      saslMechanisms: ['PLAIN', 'ANONYMOUS'],
      saslUsername: 'router-a',
      saslPassword: 's3cret # not a comment',
      maxFrameSize: 65536,
      maxSessions: 32768,
      idleTimeoutSeconds: 0,
      linkCapacity: 250,
      stripAnnotations: 'no',
      name: 'to-b',
      // verifyHostname is implemented (it applies with an sslProfile).
      transport: { tls: null, verifyHostname: false },
      unimplemented: { allowRedirect: false, maxSessionFrames: 10 },
      source: undefined,
    },
  );
  assert.equal(
    config.warnings.map((warning) => [warning.line, warning.code]),
    [
      [18, 'WARN_CONFIG_DEPRECATED'],
      [19, 'WARN_CONFIG_ATTRIBUTE_NOT_IMPLEMENTED'],
      [20, 'WARN_CONFIG_ATTRIBUTE_NOT_IMPLEMENTED'],
      [21, 'WARN_CONFIG_READ_ONLY'],
      [18, 'WARN_CONFIG_NO_EFFECT'],
    ],
  );
  assert.ok(config.warnings[4]!.message.includes('connector verifyHostname has no effect without an sslProfile'), config.warnings[4]!.message);
  // The password is not repeated in any message.
  assert.not.ok(config.warnings.some((warning) => warning.message.includes('s3cret')));
  assert.is(config.connectors[0]!.source.attributeLines['verifyHostname'], 18);
  // The unknown-attribute message lists the implemented attributes first.
  assertRefused(INTERIOR + 'connector {\n    hots: b\n}\n', {
    line: 5,
    code: 'ERR_CONFIG_UNKNOWN_ATTRIBUTE',
    mentions: [
      'connector has no attribute "hots"',
      'valid attributes: host, port, role, cost, sslProfile, saslMechanisms, maxFrameSize, maxSessions, idleTimeoutSeconds, stripAnnotations, linkCapacity, verifyHostname, saslUsername, saslPassword, failoverUrls, policyVhost, name, protocolFamily',
    ],
  });
});

test('mesh: a normal connector is a connection the router keeps up (qdrouterd\'s default role); cost has no effect on it', () => {
  const config = load('connector {\n    name: broker\n    port: 5673\n}\nconnector {\n    role: normal\n    cost: 2\n}\n');
  assert.equal(
    config.connectors.map((connector) => [connector.name, connector.role, connector.port, connector.cost]),
    [
      ['broker', 'normal', 5673, 1],
      [undefined, 'normal', 5672, 2],
    ],
  );
  assert.equal(config.warnings.map((warning) => [warning.line, warning.code]), [[7, 'WARN_CONFIG_NO_EFFECT']]);
  assert.is(config.warnings[0]!.message, 'router.conf:7: connector cost only applies to role "inter-router"; it has no effect with role "normal"');
});

test('mesh: listener cost is typed, at least 1, and only used by inter-router listeners', () => {
  const config = load(INTERIOR + 'listener {\n    role: inter-router\n    cost: 10\n}\nlistener {\n    port: 5673\n    cost: 4\n}\n');
  assert.equal(config.listeners.map((listener) => listener.cost), [10, 4]);
  assert.equal(config.listeners[1]!.unimplemented, {});
  assert.equal(
    config.warnings.map((warning) => warning.message),
    ['router.conf:10: listener cost only applies to role "inter-router"; it has no effect with role "normal"'],
  );
  assert.equal(warningCodes(config), ['WARN_CONFIG_NO_EFFECT']);
  for (const cost of ['0', '-2', 'cheap']) {
    assertRefused(INTERIOR + `listener {\n    role: inter-router\n    cost: ${cost}\n}\n`, {
      line: 6,
      code: 'ERR_CONFIG_INVALID_VALUE',
      mentions: [`listener cost "${cost}"`, 'at least 1'],
    });
  }
  assertRefused('- router: {mode: interior}\n- connector:\n    role: inter-router\n    cost: 0\n', {
    file: 'r.yaml',
    line: 4,
    code: 'ERR_CONFIG_INVALID_VALUE',
    mentions: ['connector cost 0 is out of range', 'at least 1'],
  });
});

test('mesh: a standalone router refuses inter-router listeners and connectors, naming the line', () => {
  for (const type of ['listener', 'connector']) {
    assertRefused(`router {\n    mode: standalone\n}\n${type} {\n    port: 55672\n    role: inter-router\n}\n`, {
      line: 6,
      code: 'ERR_CONFIG_CONFLICT',
      mentions: [
        `${type} role "inter-router" needs router mode "interior"`,
        `the router's mode is "standalone" (set on line 2)`,
        'does not connect to or accept connections from other routers',
        'set mode: interior in the router section, or use role: normal',
      ],
    });
  }
  // The router section may come last: the check runs once everything is read.
  assertRefused('connector {\n    role: inter-router\n}\nrouter {\n    id: A\n    mode: 0\n}\n', {
    line: 2,
    code: 'ERR_CONFIG_CONFLICT',
    mentions: ['connector role "inter-router"', '(set on line 6)'],
  });
  // Standalone by default.
  assertRefused('listener {\n    port: 1\n}\nlistener {\n    role: inter-router\n}\n', {
    line: 5,
    code: 'ERR_CONFIG_CONFLICT',
    mentions: ['listener role "inter-router"', 'the default; there is no router section', 'set mode: interior'],
  });
  assertRefused('router {\n    id: A\n}\nconnector {\n    role: inter-router\n}\n', {
    line: 5,
    code: 'ERR_CONFIG_CONFLICT',
    mentions: ['the default; the router section on line 1 sets no mode'],
  });
  // The first one in the file is named.
  assertRefused('connector {\n    role: inter-router\n}\nlistener {\n    role: inter-router\n}\n', { line: 2, code: 'ERR_CONFIG_CONFLICT', mentions: ['connector'] });
  assertRefused('listener {\n    role: inter-router\n}\nconnector {\n    role: inter-router\n}\n', { line: 2, code: 'ERR_CONFIG_CONFLICT', mentions: ['listener'] });
  assertRefused('[\n  ["router", {"mode": "standalone"}],\n  ["connector", {\n    "host": "b",\n    "role": "inter-router"\n  }]\n]', {
    file: 'r.json',
    line: 5,
    code: 'ERR_CONFIG_CONFLICT',
    mentions: ['(set on line 2)'],
  });
  // Normal listeners and connectors are fine in standalone mode.
  assert.is(load('router {\n    mode: standalone\n}\nlistener {\n    role: normal\n}\nconnector {\n    port: 1\n}\n').connectors.length, 1);
});

test('mesh: connector refusals name the file, the line and the valid choices', () => {
  const cases: Array<[string, number, ConfigErrorCode, string[]]> = [
    ['    port: 0', 5, 'ERR_CONFIG_INVALID_VALUE', ['connector port 0 cannot be connected to', 'from 1 to 65535', '"amqp" (5672)', '"amqps" (5671)']],
    ['    port: ampq', 5, 'ERR_CONFIG_INVALID_VALUE', ['connector port "ampq" is not a port', '"amqp" (5672)']],
    ['    port: 65536', 5, 'ERR_CONFIG_INVALID_VALUE', ['out of range', '0 to 65535']],
    ['    host: ""', 5, 'ERR_CONFIG_INVALID_VALUE', ['connector host "" is empty', 'host name or IP address']],
    ['    sslProfile: tls', 5, 'ERR_CONFIG_INVALID_VALUE', ['connector sslProfile "tls" names no sslProfile', 'this file has no sslProfile']],
    ['    verifyHostname: maybe', 5, 'ERR_CONFIG_INVALID_VALUE', ['connector verifyHostname "maybe" is not a boolean']],
    ['    saslMechanisms: EXTERNAL', 5, 'ERR_CONFIG_CONFLICT', ['connector saslMechanisms "EXTERNAL" includes EXTERNAL', 'name an sslProfile with certFile and privateKeyFile']],
    ['    saslMechanisms: ", "', 5, 'ERR_CONFIG_INVALID_VALUE', ['connector saslMechanisms is empty', 'ANONYMOUS, PLAIN']],
    ['    saslMechanisms: PLAIN', 5, 'ERR_CONFIG_CONFLICT', ['"PLAIN" includes PLAIN, which needs saslUsername and saslPassword', 'set both, or use ANONYMOUS']],
    ['    saslMechanisms: ANONYMOUS PLAIN\n    saslUsername: a', 6, 'ERR_CONFIG_CONFLICT', ['saslUsername but no saslPassword', 'set saslPassword, or remove saslUsername']],
    ['    saslPassword: s3cret', 5, 'ERR_CONFIG_CONFLICT', ['saslPassword but no saslUsername', 'set saslUsername, or remove saslPassword']],
    ['    saslMechanisms: ANONYMOUS\n    saslUsername: a\n    saslPassword: p', 5, 'ERR_CONFIG_CONFLICT', ['saslMechanisms "ANONYMOUS" does not include PLAIN', 'add PLAIN, or remove them']],
    ['    saslUsername: ""\n    saslPassword: p', 5, 'ERR_CONFIG_INVALID_VALUE', ['connector saslUsername is empty']],
    ['    role: peer', 5, 'ERR_CONFIG_INVALID_VALUE', ['connector role "peer" is not one of normal, inter-router']],
    ['    maxFrameSize: 100', 5, 'ERR_CONFIG_INVALID_VALUE', ['connector maxFrameSize "100" is out of range', 'from 512']],
    ['    linkCapacity: -1', 5, 'ERR_CONFIG_INVALID_VALUE', ['connector linkCapacity "-1" is out of range']],
    ['    stripAnnotations: maybe', 5, 'ERR_CONFIG_INVALID_VALUE', ['is not one of in, out, both, no']],
  ];
  for (const [attributes, line, code, mentions] of cases) {
    const error = assertRefused(`${INTERIOR}connector {\n${attributes}\n}\n`, { line, code, mentions });
    // Passwords are never repeated in messages.
    assert.not.ok(error.message.includes('s3cret'), error.message);
  }
  // TLS settings that ask for nothing are accepted: plain TCP.
  const config = load(INTERIOR + 'connector {\n    role: inter-router\n    sslProfile: ""\n    verifyHostname: false\n}\n');
  assert.equal(config.connectors[0]!.unimplemented, {});
  assert.equal(config.connectors[0]!.transport, { tls: null, verifyHostname: false });
  // PLAIN with both credentials, and ANONYMOUS alone, are fine.
  const sasl = load(INTERIOR + 'connector {\n    saslUsername: u\n    saslPassword: ""\n}\nconnector {\n    saslMechanisms: anonymous\n}\n').connectors;
  assert.equal([sasl[0]!.saslMechanisms, sasl[0]!.saslUsername, sasl[0]!.saslPassword], [undefined, 'u', '']);
  assert.equal(sasl[1]!.saslMechanisms, ['ANONYMOUS']);
});

test('mesh: router protocol intervals are typed, with qdrouterd defaults and deprecated names', () => {
  const defaults = load('').router;
  assert.equal(
    [defaults.helloIntervalSeconds, defaults.helloMaxAgeSeconds, defaults.raIntervalSeconds, defaults.raIntervalFluxSeconds, defaults.remoteLsMaxAgeSeconds],
    [1, 3, 30, 4, 60],
  );
  const config = load(
    [
      'router {',
      '    mode: interior',
      '    helloIntervalSeconds: 2',
      '    hello-max-age-seconds: 6',
      '    raInterval: 60',
      '    raIntervalFluxSeconds: 5',
      '    remoteLsMaxAge: 120',
      '}',
    ].join('\n'),
  );
  const router = config.router;
  assert.equal(
    [router.helloIntervalSeconds, router.helloMaxAgeSeconds, router.raIntervalSeconds, router.raIntervalFluxSeconds, router.remoteLsMaxAgeSeconds],
    [2, 6, 60, 5, 120],
  );
  assert.equal(router.unimplemented, {});
  assert.equal(
    config.warnings.map((warning) => [warning.line, warning.code]),
    [
      [5, 'WARN_CONFIG_DEPRECATED'],
      [7, 'WARN_CONFIG_DEPRECATED'],
    ],
  );
  assert.is(config.warnings[0]!.message, 'router.conf:5: router attribute "raInterval" is deprecated; use "raIntervalSeconds"');
  for (const name of ['helloIntervalSeconds', 'helloMaxAgeSeconds', 'raIntervalSeconds', 'raIntervalFluxSeconds', 'remoteLsMaxAgeSeconds']) {
    assertRefused(`router {\n    mode: interior\n    ${name}: 0\n}\n`, {
      line: 3,
      code: 'ERR_CONFIG_INVALID_VALUE',
      mentions: [`router ${name} "0" is out of range`, 'an integer from 1 to 2147483'],
    });
  }
  assertRefused('router:\n  helloIntervalSeconds: 2147484\n', { file: 'r.yaml', line: 2, code: 'ERR_CONFIG_INVALID_VALUE', mentions: ['from 1 to 2147483'] });
  // Accepted in standalone mode, where they do nothing (as in qdrouterd): a warning says so.
  const standalone = load('router {\n    helloIntervalSeconds: 2\n    raIntervalSeconds: 10\n}\n');
  assert.is(standalone.router.helloIntervalSeconds, 2);
  assert.equal(
    standalone.warnings.map((warning) => [warning.line, warning.code]),
    [
      [2, 'WARN_CONFIG_NO_EFFECT'],
      [3, 'WARN_CONFIG_NO_EFFECT'],
    ],
  );
  assert.ok(standalone.warnings[0]!.message.includes('router helloIntervalSeconds has no effect in standalone mode'));
});

const MESH_CONF = [
  'router {',
  '    mode: interior',
  '    id: Router.A',
  '    helloMaxAge: 5',
  '}',
  'listener {',
  '    name: mesh-in',
  '    role: inter-router',
  '    port: 55672',
  '    cost: 2',
  '}',
  'connector {',
  '    name: to-b',
  '    role: inter-router',
  '    host: router-b',
  '    port: amqp',
  '    cost: 3',
  '    saslMechanisms: PLAIN',
  '    saslUsername: a',
  '    saslPassword: "env:ROUTER_PASSWORD"',
  '    idleTimeoutSeconds: 8',
  '    stripAnnotations: in',
  '    openProperties: {',
  '        "rack": 7',
  '    }',
  '}',
  'connector {',
  '    name: broker',
  '    port: 5673',
  '}',
].join('\n');

const MESH_YAML_LIST = `
- router: {mode: interior, id: Router.A, helloMaxAge: 5}
- listener: {name: mesh-in, role: inter-router, port: 55672, cost: 2}
- connector:
    name: to-b
    role: inter-router
    host: router-b
    port: amqp
    cost: 3
    saslMechanisms: PLAIN
    saslUsername: a
    saslPassword: "env:ROUTER_PASSWORD"
    idleTimeoutSeconds: 8
    stripAnnotations: in
    openProperties: {rack: 7}
- connector: {name: broker, port: 5673}
`;

const MESH_YAML_MAP = `
router: {mode: interior, id: Router.A, helloMaxAge: "5"}
listener: {name: mesh-in, role: inter-router, port: "55672", cost: "2"}
connector:
  - name: to-b
    role: inter-router
    host: router-b
    port: amqp
    cost: 3
    sasl-mechanisms: PLAIN
    sasl_username: a
    saslPassword: env:ROUTER_PASSWORD
    idleTimeoutSeconds: 8
    stripAnnotations: in
    openProperties:
      rack: 7
  - name: broker
    port: 5673
`;

const MESH_JSON_PAIRS = `[
  ["router", {"mode": "interior", "id": "Router.A", "helloMaxAge": 5}],
  ["listener", {"name": "mesh-in", "role": "inter-router", "port": 55672, "cost": 2}],
  ["connector", {"name": "to-b", "role": "inter-router", "host": "router-b", "port": "amqp", "cost": 3,
                 "saslMechanisms": "PLAIN", "saslUsername": "a", "saslPassword": "env:ROUTER_PASSWORD",
                 "idleTimeoutSeconds": 8, "stripAnnotations": "in", "openProperties": {"rack": 7}}],
  ["connector", {"name": "broker", "port": 5673}]
]`;

const MESH_JSON_MAP = `{
  "router": {"mode": "interior", "id": "Router.A", "helloMaxAge": 5},
  "listener": {"name": "mesh-in", "role": "inter-router", "port": 55672, "cost": 2},
  "connector": [
    {"name": "to-b", "role": "inter-router", "host": "router-b", "port": "amqp", "cost": 3,
     "saslMechanisms": "PLAIN", "saslUsername": "a", "saslPassword": "env:ROUTER_PASSWORD",
     "idleTimeoutSeconds": 8, "stripAnnotations": "in", "openProperties": {"rack": 7}},
    {"name": "broker", "port": 5673}
  ]
}`;

test('mesh: a connector reads the same from conf, YAML and JSON', () => {
  const expected = load(MESH_CONF);
  assert.is(expected.router.helloMaxAgeSeconds, 5);
  assert.is(expected.listeners[0]!.cost, 2);
  const [toB, broker] = expected.connectors;
  assert.equal(
    { ...toB!, source: undefined },
    {
      type: 'connector',
      host: 'router-b',
      port: 5672,
      role: 'inter-router',
      cost: 3,
      saslMechanisms: ['PLAIN'],
      saslUsername: 'a',
      // Kept as written: qdrouterd's env:/file:/pass: forms are not resolved by the loader.
      saslPassword: 'env:ROUTER_PASSWORD',
      maxFrameSize: 16384,
      maxSessions: 32768,
      idleTimeoutSeconds: 8,
      linkCapacity: 250,
      stripAnnotations: 'in',
      name: 'to-b',
      transport: { tls: null, verifyHostname: true },
      unimplemented: { openProperties: { rack: 7 } },
      source: undefined,
    },
  );
  assert.is(broker!.role, 'normal');
  assert.equal(warningCodes(expected), ['WARN_CONFIG_DEPRECATED', 'WARN_CONFIG_ATTRIBUTE_NOT_IMPLEMENTED']);
  for (const [text, file] of [
    [MESH_YAML_LIST, 'mesh.yaml'],
    [MESH_YAML_MAP, 'mesh.yml'],
    [MESH_JSON_PAIRS, 'mesh.json'],
    [MESH_JSON_MAP, 'mesh.json'],
  ] as const) {
    const config = load(text, file);
    assert.equal(withoutSources(config), withoutSources(expected), file);
    assert.is(config.connectors[0]!.source.file, file);
  }
  const yaml = load(MESH_YAML_LIST, 'mesh.yaml');
  assert.is(yaml.connectors[0]!.source.line, 4);
  assert.is(yaml.connectors[0]!.source.attributeLines['saslPassword'], 12);
  assert.is(yaml.connectors[1]!.source.line, 16);
  const json = load(MESH_JSON_PAIRS, 'mesh.json');
  assert.is(json.connectors[0]!.source.line, 4);
  assert.is(json.connectors[0]!.source.attributeLines['saslUsername'], 5);
  // And the refusals name the line in every syntax.
  assertRefused(MESH_YAML_MAP.replace('    saslPassword: env:ROUTER_PASSWORD\n', ''), {
    file: 'mesh.yml',
    line: 11,
    code: 'ERR_CONFIG_CONFLICT',
    mentions: ['connector has saslUsername but no saslPassword'],
  });
  assertRefused(MESH_JSON_MAP.replace('"interior"', '"standalone"'), {
    file: 'mesh.json',
    line: 3,
    code: 'ERR_CONFIG_CONFLICT',
    mentions: ['listener role "inter-router" needs router mode "interior"', '(set on line 2)'],
  });
});

// ---------------------------------------------------------------------------------------------
// Limits

test('limit: a configuration over 4 MiB is refused', () => {
  const header = 'router {\n}\n';
  const filler = (bytes: number) => '#'.repeat(bytes - 1) + '\n';
  const atLimit = header + filler(MAX_CONFIG_FILE_BYTES - header.length);
  assert.is(Buffer.byteLength(atLimit), MAX_CONFIG_FILE_BYTES);
  assert.is(load(atLimit).router.mode, 'standalone');
  assertRefused(atLimit + '\n', {
    line: undefined,
    code: 'ERR_CONFIG_TOO_LARGE',
    mentions: [`${MAX_CONFIG_FILE_BYTES + 1} bytes`, '4 MiB'],
  });
  // Counted in UTF-8 bytes, not characters.
  const multibyte = header + '#' + '\u00e9'.repeat(MAX_CONFIG_FILE_BYTES / 2) + '\n';
  assertRefused(multibyte, { file: 'r.yaml', line: undefined, code: 'ERR_CONFIG_TOO_LARGE' });

  withTemporaryDirectory((directory) => {
    const file = path.join(directory, 'huge.conf');
    fs.writeFileSync(file, atLimit + '#\n');
    let refusal: unknown;
    try {
      loadConfigFile(file);
    } catch (error) {
      refusal = error;
    }
    checkRefusal(refusal, file, { line: undefined, code: 'ERR_CONFIG_TOO_LARGE', mentions: ['4 MiB'] });
  });
});

test('limit: more than 10,000 entities are refused', () => {
  const address = (index: number) => `address {\n    prefix: a${index}\n}\n`;
  const atLimit = Array.from({ length: MAX_CONFIG_ENTITIES }, (_, index) => address(index)).join('');
  assert.is(load(atLimit).addresses.length, MAX_CONFIG_ENTITIES);
  assertRefused(atLimit + address(MAX_CONFIG_ENTITIES), {
    line: MAX_CONFIG_ENTITIES * 3 + 1,
    code: 'ERR_CONFIG_TOO_MANY_ENTITIES',
    mentions: ['more than 10000 entities'],
  });
  const yaml = Array.from({ length: MAX_CONFIG_ENTITIES + 1 }, (_, index) => `- address: {prefix: a${index}}\n`).join('');
  assertRefused(yaml, { file: 'r.yaml', line: MAX_CONFIG_ENTITIES + 1, code: 'ERR_CONFIG_TOO_MANY_ENTITIES' });
});

test('limit: an attribute value over 64 KiB is refused', () => {
  const atLimit = 'n'.repeat(MAX_ATTRIBUTE_VALUE_BYTES);
  assert.is(load(`router {\n}\nlistener {\n    name: ${atLimit}\n}\n`).listeners[0]!.name, atLimit);
  assertRefused(`router {\n}\nlistener {\n    name: ${atLimit}n\n}\n`, {
    line: 4,
    code: 'ERR_CONFIG_VALUE_TOO_LARGE',
    mentions: ['listener name value is 65537 bytes', 'limit is 65536 bytes (64 KiB)'],
  });
  // UTF-8 bytes: 32,769 two-byte characters are over the limit.
  assertRefused(`listener:\n  name: "${'\u00e9'.repeat(MAX_ATTRIBUTE_VALUE_BYTES / 2 + 1)}"\n`, {
    file: 'r.yaml',
    line: 2,
    code: 'ERR_CONFIG_VALUE_TOO_LARGE',
  });
  // Maps are measured as JSON.
  const bigMap = JSON.stringify(Object.fromEntries(Array.from({ length: 5000 }, (_, index) => [`key${index}`, 'v'.repeat(10)])));
  assertRefused(`{"connector": {\n  "openProperties": ${bigMap}\n}}`, { file: 'r.json', line: 2, code: 'ERR_CONFIG_VALUE_TOO_LARGE' });
});

test('limit: deep nesting is refused, not a crash', () => {
  const depth = 5000;
  assertRefused(`listener:\n  openProperties: ${'['.repeat(depth)}${']'.repeat(depth)}\n`, {
    file: 'r.yaml',
    line: 2,
    code: 'ERR_CONFIG_SYNTAX',
    mentions: ['nest more than 64 levels'],
  });
  // Megabytes of nesting would exhaust the heap inside the YAML parser; refused before parsing.
  const pathological = Math.floor(MAX_CONFIG_FILE_BYTES / 2) - 10;
  assertRefused(`\n${'['.repeat(pathological * 2)}`, { file: 'r.json', line: 2, code: 'ERR_CONFIG_SYNTAX', mentions: ['64 levels'] });
  assertRefused(`# comment\n${'- '.repeat(pathological)}x\n`, { file: 'r.yaml', line: 2, code: 'ERR_CONFIG_SYNTAX', mentions: ['64 levels'] });
  // Deep indentation is bounded by the file size limit; the parser or the value reader refuses it.
  const indented = (levels: number) =>
    Array.from({ length: levels }, (_, level) => `    ${' '.repeat(level)}k${level}:`).join('\n');
  assertRefused(`listener:\n  openProperties:\n${indented(200)} 1\n`, {
    file: 'r.yaml',
    line: 35,
    code: 'ERR_CONFIG_SYNTAX',
    mentions: ['nest more than 32 levels'],
  });
  let refusal: unknown;
  try {
    load(`listener:\n  openProperties:\n${indented(2000)} 1\n`, 'r.yaml');
  } catch (error) {
    refusal = error;
  }
  assert.instance(refusal, ConfigError);
  assert.is((refusal as ConfigError).code, 'ERR_CONFIG_SYNTAX');
  assertRefused(`listener:\n  openProperties: ${'{a: '.repeat(40)}1${'}'.repeat(40)}\n`, {
    file: 'r.yaml',
    line: 2,
    code: 'ERR_CONFIG_SYNTAX',
    mentions: ['nest more than 32 levels'],
  });
  const openMaps = Array.from({ length: 40 }, (_, index) => `"k${index}": {`).join('\n');
  const closeMaps = Array.from({ length: 40 }, () => '}').join('\n');
  assertRefused(`connector {\n    openProperties: {\n${openMaps}\n${closeMaps}\n    }\n}\n`, {
    line: 34,
    code: 'ERR_CONFIG_SYNTAX',
    mentions: ['nest more than 32 levels'],
  });
});

test('limit: alias expansion inside an entity is bounded', () => {
  const bomb = [
    '- listener:',
    '    name: x',
    '    openProperties:',
    '      a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]',
    ...Array.from({ length: 7 }, (_, level) => {
      const name = String.fromCharCode(98 + level);
      const previous = String.fromCharCode(97 + level);
      return `      ${name}: &${name} [${Array.from({ length: 10 }, () => `*${previous}`).join(', ')}]`;
    }),
  ].join('\n');
  let refusal: unknown;
  try {
    load(bomb, 'bomb.yaml');
  } catch (error) {
    refusal = error;
  }
  checkRefusal(refusal, 'bomb.yaml', { line: 3, code: 'ERR_CONFIG_TOO_LARGE', mentions: ['aliases expand'] });
});

// ---------------------------------------------------------------------------------------------
// Files

test('loadConfigFile reads conf, YAML and JSON files and reports read errors with their cause', () => {
  withTemporaryDirectory((directory) => {
    const conf = path.join(directory, 'router.conf');
    const yaml = path.join(directory, 'router.yaml');
    const json = path.join(directory, 'router.json');
    fs.writeFileSync(conf, EQUIVALENT_CONF);
    fs.writeFileSync(yaml, EQUIVALENT_YAML_LIST);
    fs.writeFileSync(json, EQUIVALENT_JSON_PAIRS);
    const fromConf = loadConfigFile(conf, fixedRouterId);
    assert.is(fromConf.router.source.file, conf);
    assert.is(fromConf.warnings[0]!.message.startsWith(`${conf}:4: `), true);
    assert.equal(withoutSources(loadConfigFile(yaml, fixedRouterId)), withoutSources(fromConf));
    assert.equal(withoutSources(loadConfigFile(json, fixedRouterId)), withoutSources(fromConf));

    const missing = path.join(directory, 'missing.conf');
    let refusal: unknown;
    try {
      loadConfigFile(missing);
    } catch (error) {
      refusal = error;
    }
    const error = checkRefusal(refusal, missing, { line: undefined, code: 'ERR_CONFIG_READ', mentions: ['cannot read', 'ENOENT'] });
    assert.is((error.cause as NodeJS.ErrnoException).code, 'ENOENT');

    refusal = undefined;
    try {
      loadConfigFile(directory);
    } catch (caught) {
      refusal = caught;
    }
    checkRefusal(refusal, directory, { line: undefined, code: 'ERR_CONFIG_READ', mentions: ['EISDIR'] });

    const bad = path.join(directory, 'bad.conf');
    fs.writeFileSync(bad, 'router {\n    mode: edge\n}\nlistener {\n    role: edge\n}\n');
    refusal = undefined;
    try {
      loadConfigFile(bad);
    } catch (caught) {
      refusal = caught;
    }
    checkRefusal(refusal, bad, { line: 5, code: 'ERR_CONFIG_CONFLICT' });
  });
});

test('ConfigError is an Error with a name, a code and an optional cause', () => {
  const cause = new Error('underlying');
  const error = new ConfigError('ERR_CONFIG_SYNTAX', 'a.conf', 3, 'bad', { cause });
  assert.instance(error, Error);
  assert.is(error.name, 'ConfigError');
  assert.is(error.message, 'a.conf:3: bad');
  assert.is(error.cause, cause);
  assert.is(new ConfigError('ERR_CONFIG_READ', 'a.conf', undefined, 'gone').message, 'a.conf: gone');
});

test.run();
