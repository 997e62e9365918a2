/**
 * TLS and WebSocket configuration (qdrouterd 1.19's sslProfile entity and the listener and
 * connector attributes that use it), in router and broker files: what is accepted in conf and
 * YAML syntax, the transport settings it maps to, and every refusal with its exact FILE:LINE
 * message. No sockets: the certificates are throwaway files made with the openssl CLI.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  ConfigError,
  loadConfigFile,
  parseConfig,
  type ConfigErrorCode,
  type ConfigWarningCode,
  type RouterConfig,
} from '../../router/config';
import { loadBrokerConfigFile, parseBrokerConfig, type BrokerConfig } from '../../broker/config';
import { listenerSettings } from '../../broker/io/main';
import { settingsFromConfig } from '../../router/settings';
import type { TlsProfile } from '../../amqp/transport/settings';
import { KEY_PASSWORD, tlsFiles } from './config-tls-files';

const files = tlsFiles();
const PASSWORD_VARIABLE = 'AMQP_MESH_TEST_KEY_PASSWORD';
process.env[PASSWORD_VARIABLE] = KEY_PASSWORD;
// An sslProfile without protocols takes the system's OpenSSL policy (ADR 0013); these tests give it
// one of their own, RHEL's form (TLS 1.2 up), so nothing here depends on this machine's openssl.cnf.
const SYSTEM_CONF = path.join(files.dir, 'openssl.cnf');
fs.writeFileSync(SYSTEM_CONF, 'openssl_conf = init\n[init]\nssl_conf = ssl\n[ssl]\nsystem_default = policy\n[policy]\nMinProtocol = TLSv1.2\n');
process.env.OPENSSL_CONF = SYSTEM_CONF;
const PLAIN_LISTENER = { tls: null, requireSsl: false, verifyClient: false, websockets: false, initialHandshakeTimeoutSeconds: 30 };

function router(text: string, file = 'router.conf'): RouterConfig {
  return parseConfig(text, file, { generateRouterId: () => 'R' });
}
function broker(text: string, file = 'broker.conf'): BrokerConfig {
  return parseBrokerConfig(text, file, { generateBrokerId: () => 'B' });
}

/** Asserts a refusal with exactly this message (`FILE:LINE: reason`) and code. */
function refused(load: () => unknown, code: ConfigErrorCode, message: string): void {
  try {
    load();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    assert.is(error.message, message);
    assert.is(error.code, code, error.message);
    return;
  }
  assert.unreachable(`expected ${code}: ${message}`);
}

function warnings(config: { warnings: readonly { line: number; code: ConfigWarningCode }[] }): Array<[number, ConfigWarningCode]> {
  return config.warnings.map((warning) => [warning.line, warning.code]);
}

/** A configuration without where-it-came-from, to compare syntaxes. */
function withoutSources(config: unknown): unknown {
  return JSON.parse(JSON.stringify(config, (key, value: unknown) => (['source', 'entities', 'line', 'message', 'file'].includes(key) ? undefined : value)));
}

const pem = (file: string) => fs.readFileSync(file);

// ---------------------------------------------------------------------------------------------
// Every attribute, conf and YAML

/** A uidNameMappingFile: certificate user ids to display names. */
const NAMES_FILE = path.join(files.dir, 'names.json');
fs.writeFileSync(NAMES_FILE, JSON.stringify({ 'Dev': 'developers' }));

/** The sslProfile section, with every attribute (line numbers matter below). */
const PROFILE_CONF = [
  'sslProfile {',
  '    name: server',
  `    certFile: ${files.cert}`,
  `    privateKeyFile: ${files.encryptedKey}`,
  `    password: env:${PASSWORD_VARIABLE}`,
  `    caCertFile: ${files.ca}`,
  '    ciphers: ECDHE+AESGCM:!aNULL',
  '    protocols: TLSv1.2 TLSv1.3',
  '    uidFormat: ou',
  `    uidNameMappingFile: ${NAMES_FILE}`,
  '}',
];

/** The same in YAML. */
const PROFILE_YAML = `sslProfile:
  name: server
  certFile: ${files.cert}
  privateKeyFile: ${files.encryptedKey}
  password: env:${PASSWORD_VARIABLE}
  caCertFile: ${files.ca}
  ciphers: ECDHE+AESGCM:!aNULL
  protocols: TLSv1.2 TLSv1.3
  uidFormat: ou
  uidNameMappingFile: ${NAMES_FILE}
`;

/** The TlsProfile that section loads, files read, password resolved. */
function expectedProfile(source: string): TlsProfile {
  return {
    name: 'server',
    cert: pem(files.cert),
    key: pem(files.encryptedKey),
    passphrase: KEY_PASSWORD,
    ca: pem(files.ca),
    ciphers: 'ECDHE+AESGCM:!aNULL',
    protocols: ['TLSv1.2', 'TLSv1.3'],
    uidFormat: 'ou',
    uidNames: new Map([['Dev', 'developers']]),
    source,
  };
}

const ROUTER_CONF = [
  'router {',
  '    mode: interior',
  '    id: R1',
  '}',
  // The listeners and the connector name the profile before it is written: any order works.
  'listener {',
  '    name: amqps',
  '    port: 0',
  '    sslProfile: server',
  '    requireSsl: yes',
  '    authenticatePeer: yes',
  '    saslMechanisms: EXTERNAL PLAIN',
  '    initialHandshakeTimeoutSeconds: 5',
  '}',
  'listener {',
  '    name: ws',
  '    port: 0',
  '    http: yes',
  '    websockets: yes',
  '    httpRootDir: /usr/share/qpid-dispatch/console',
  '    initialHandshakeTimeoutSeconds: 0',
  '}',
  'connector {',
  '    name: to-b',
  '    role: inter-router',
  '    host: localhost',
  '    port: amqps',
  '    sslProfile: server',
  '    verifyHostname: no',
  '}',
  ...PROFILE_CONF,
].join('\n');

const ROUTER_YAML = `router: {mode: interior, id: R1}
listener:
  - name: amqps
    port: 0
    sslProfile: server
    requireSsl: true
    authenticatePeer: true
    saslMechanisms: EXTERNAL PLAIN
    initialHandshakeTimeoutSeconds: 5
  - {name: ws, port: 0, http: true, websockets: true, httpRootDir: /usr/share/qpid-dispatch/console, initialHandshakeTimeoutSeconds: 0}
connector:
  name: to-b
  role: inter-router
  host: localhost
  port: amqps
  sslProfile: server
  verifyHostname: false
${PROFILE_YAML}`;

test('router: every sslProfile, listener and connector TLS attribute in conf syntax, mapped to the transport settings', () => {
  const config = router(ROUTER_CONF);
  const profile = config.sslProfiles[0]!;
  assert.equal(
    { ...profile, tls: undefined, source: undefined },
    {
      type: 'sslProfile',
      name: 'server',
      certFile: files.cert,
      privateKeyFile: files.encryptedKey,
      caCertFile: files.ca,
      tls: undefined,
      unimplemented: {},
      source: undefined,
    },
  );
  assert.equal(profile.tls, expectedProfile('router.conf:30'));
  const [amqps, ws] = config.listeners;
  assert.equal([amqps!.authenticatePeer, amqps!.saslMechanisms], [true, ['EXTERNAL', 'PLAIN']]);
  assert.equal(amqps!.transport, { tls: profile.tls, requireSsl: true, verifyClient: true, websockets: false, initialHandshakeTimeoutSeconds: 5 });
  // The same object: every listener and connector naming the profile shares the loaded files.
  assert.is(amqps!.transport.tls, profile.tls);
  assert.equal(ws!.transport, {
    tls: null, requireSsl: false, verifyClient: false, websockets: true, initialHandshakeTimeoutSeconds: 0,
    http: { rootDir: '/usr/share/qpid-dispatch/console', healthz: true, metrics: true },
  });
  assert.equal(config.connectors[0]!.transport, { tls: profile.tls, verifyHostname: false });
  assert.equal(warnings(config), []);
  assert.equal(config.other, []);
});

test('router: the same configuration in YAML reads the same', () => {
  const conf = router(ROUTER_CONF);
  const yaml = router(ROUTER_YAML, 'router.yaml');
  assert.equal(withoutSources(yaml), withoutSources(conf));
  assert.is(yaml.sslProfiles[0]!.tls.source, 'router.yaml:18');
  assert.equal(yaml.listeners[1]!.transport.websockets, true);
});

test('router: the router process settings carry each listener\'s and connector\'s transport', () => {
  const config = router(
    ROUTER_CONF.replace('    saslMechanisms: EXTERNAL PLAIN', '    saslMechanisms: EXTERNAL') +
      '\nconnector {\n    name: broker\n    role: route-container\n    port: 5671\n    sslProfile: server\n}\n',
  );
  const settings = settingsFromConfig(config);
  assert.equal(
    settings.listeners.map((listener) => listener.transport),
    config.listeners.map((listener) => listener.transport),
  );
  assert.is(settings.listeners[0]!.transport!.tls, config.sslProfiles[0]!.tls);
  assert.equal(settings.connectors![0]!.transport, { tls: config.sslProfiles[0]!.tls, verifyHostname: false });
  assert.equal(settings.routeContainers![0]!.transport, { tls: config.sslProfiles[0]!.tls, verifyHostname: true });
  // Plain listeners and connectors say so.
  const plain = settingsFromConfig(router('router {\n    mode: interior\n}\nlistener {\n}\nconnector {\n    role: inter-router\n}\n'));
  assert.equal(plain.listeners[0]!.transport, PLAIN_LISTENER);
  assert.equal(plain.connectors![0]!.transport, { tls: null, verifyHostname: true });
});

const BROKER_CONF = [
  'broker {',
  '    persistent: false',
  '}',
  'listener {',
  '    port: 0',
  '    sslProfile: server',
  '    requireSsl: yes',
  '    authenticatePeer: yes',
  '    saslMechanisms: EXTERNAL',
  '    initialHandshakeTimeoutSeconds: 10',
  '}',
  'listener {',
  '    port: 0',
  '    http: yes',
  '    sslProfile: server',
  '}',
  ...PROFILE_CONF,
].join('\n');

const BROKER_YAML = `broker: {persistent: false}
listener:
  - {port: 0, sslProfile: server, requireSsl: true, authenticatePeer: true, saslMechanisms: EXTERNAL, initialHandshakeTimeoutSeconds: 10}
  - {port: 0, http: true, sslProfile: server}
${PROFILE_YAML}`;

test('broker: the same sslProfile and listener attributes, in conf syntax and YAML', () => {
  const config = broker(BROKER_CONF);
  const tls = config.sslProfiles[0]!.tls;
  assert.equal(tls, expectedProfile('broker.conf:17'));
  const [amqps, wss] = config.listeners;
  // EXTERNAL alone authenticates.
  assert.equal([amqps!.authenticatePeer, amqps!.saslMechanisms], [true, ['EXTERNAL']]);
  assert.equal(amqps!.transport, { tls, requireSsl: true, verifyClient: true, websockets: false, initialHandshakeTimeoutSeconds: 10 });
  // AMQP over secure WebSocket; no authentication asked, so no client certificate.
  assert.equal(wss!.transport, { tls, requireSsl: false, verifyClient: false, websockets: true, initialHandshakeTimeoutSeconds: 30, http: { rootDir: null, healthz: true, metrics: true } });
  assert.equal(warnings(config), []);
  assert.equal(withoutSources(broker(BROKER_YAML, 'broker.yaml')), withoutSources(config));
  // The broker server's listener settings carry them.
  assert.equal(
    listenerSettings(config.listeners).map((listener) => listener.transport),
    config.listeners.map((listener) => listener.transport),
  );
});

// ---------------------------------------------------------------------------------------------
// Mapping rules

test('listener transport: requireSsl, verifyClient, websockets and the handshake deadline', () => {
  const profile = (name: string, ca: boolean) =>
    `sslProfile {\n    name: ${name}\n    certFile: ${files.cert}\n    privateKeyFile: ${files.key}\n${ca ? `    caCertFile: ${files.ca}\n` : ''}}\n`;
  const listener = (attributes: string) => `listener {\n    port: 0\n${attributes}}\n`;
  const transportOf = (attributes: string) => router(profile('ca', true) + profile('noca', false) + listener(attributes)).listeners[0]!.transport;
  const ca = router(profile('ca', true)).sslProfiles[0]!.tls;
  const noca = router(profile('noca', false)).sslProfiles[0]!.tls;
  const cases: Array<[string, { tls: 'ca' | 'noca' | null; requireSsl: boolean; verifyClient: boolean; websockets: boolean; deadline: number }]> = [
    ['', { tls: null, requireSsl: false, verifyClient: false, websockets: false, deadline: 30 }],
    ['    sslProfile: ""\n', { tls: null, requireSsl: false, verifyClient: false, websockets: false, deadline: 30 }],
    ['    sslProfile: ca\n', { tls: 'ca', requireSsl: false, verifyClient: false, websockets: false, deadline: 30 }],
    ['    sslProfile: ca\n    requireSsl: yes\n', { tls: 'ca', requireSsl: true, verifyClient: false, websockets: false, deadline: 30 }],
    // No SASL encryption layers: requireEncryption is requireSsl.
    ['    sslProfile: ca\n    requireEncryption: yes\n', { tls: 'ca', requireSsl: true, verifyClient: false, websockets: false, deadline: 30 }],
    // authenticatePeer alone means SASL (PLAIN) over TLS: certificates only with EXTERNAL, as qdrouterd.
    ['    sslProfile: ca\n    authenticatePeer: yes\n', { tls: 'ca', requireSsl: false, verifyClient: false, websockets: false, deadline: 30 }],
    ['    sslProfile: noca\n    authenticatePeer: yes\n', { tls: 'noca', requireSsl: false, verifyClient: false, websockets: false, deadline: 30 }],
    ['    sslProfile: ca\n    saslMechanisms: EXTERNAL ANONYMOUS\n', { tls: 'ca', requireSsl: false, verifyClient: true, websockets: false, deadline: 30 }],
    ['    http: yes\n', { tls: null, requireSsl: false, verifyClient: false, websockets: true, deadline: 30 }],
    ['    http: yes\n    sslProfile: ca\n    requireSsl: yes\n', { tls: 'ca', requireSsl: true, verifyClient: false, websockets: true, deadline: 30 }],
    ['    initialHandshakeTimeoutSeconds: 0\n', { tls: null, requireSsl: false, verifyClient: false, websockets: false, deadline: 0 }],
    ['    initialHandshakeTimeoutSeconds: 2\n', { tls: null, requireSsl: false, verifyClient: false, websockets: false, deadline: 2 }],
  ];
  for (const [attributes, expected] of cases) {
    // An http listener's pages are checked on their own below.
    const { http: _pages, ...transport } = transportOf(attributes);
    assert.equal(
      { ...transport, tls: transport.tls === null ? null : transport.tls.name },
      { tls: expected.tls, requireSsl: expected.requireSsl, verifyClient: expected.verifyClient, websockets: expected.websockets, initialHandshakeTimeoutSeconds: expected.deadline },
      attributes,
    );
  }
  assert.equal(ca.ca, pem(files.ca));
  assert.is(noca.ca, undefined);
  // websockets without http: no effect, as in qdrouterd.
  const plain = router(listener('    websockets: no\n'));
  assert.equal(plain.listeners[0]!.transport, PLAIN_LISTENER);
  assert.equal(
    plain.warnings.map((warning) => warning.message),
    ['router.conf:3: listener websockets has no effect without http: true (as in qdrouterd); this listener accepts plain AMQP'],
  );
  // http without websockets: HTTP only (healthz, metrics, files), as qdrouterd's console port; httpRootDir alone makes an http listener.
  assert.equal(router('listener {\n    http: yes\n    websockets: no\n    metrics: no\n}\n').listeners[0]!.transport.http, { rootDir: null, healthz: true, metrics: false });
  const rooted = router('listener {\n    httpRootDir: console\n}\n').listeners[0]!.transport;
  assert.equal([rooted.websockets, rooted.http?.rootDir], [true, path.resolve('console')]);
  // verifyHostname without an sslProfile: no effect either.
  const connector = router('router {\n    mode: interior\n}\nconnector {\n    role: inter-router\n    verifyHostname: yes\n}\n');
  assert.equal(connector.connectors[0]!.transport, { tls: null, verifyHostname: true });
  assert.equal(warnings(connector), [[6, 'WARN_CONFIG_NO_EFFECT']]);
});

test('sslProfile password: env:, file:, pass:, literal:, the password itself, passwordFile; never repeated', () => {
  const profile = (attributes: string) =>
    `sslProfile {\n    name: p\n    certFile: ${files.cert}\n    privateKeyFile: ${files.encryptedKey}\n${attributes}}\n`;
  const load = (attributes: string) => router(profile(attributes));
  const cases: Array<[string, ConfigWarningCode[]]> = [
    [`    password: env:${PASSWORD_VARIABLE}\n`, []],
    // qdrouterd skips spaces after "env:".
    [`    password: "env: ${PASSWORD_VARIABLE}"\n`, []],
    [`    password: file:${files.passwordFile}\n`, []],
    [`    password: pass:${KEY_PASSWORD}\n`, ['WARN_CONFIG_INSECURE']],
    [`    password: literal:${KEY_PASSWORD}\n`, ['WARN_CONFIG_INSECURE']],
    [`    password: ${KEY_PASSWORD}\n`, ['WARN_CONFIG_INSECURE']],
    // Deprecated: the file's first line.
    [`    passwordFile: ${files.passwordFile}\n`, ['WARN_CONFIG_DEPRECATED']],
    // password wins, passwordFile is ignored (as qdrouterd does).
    [`    passwordFile: /nonexistent/password\n    password: env:${PASSWORD_VARIABLE}\n`, ['WARN_CONFIG_DEPRECATED', 'WARN_CONFIG_NO_EFFECT']],
  ];
  for (const [attributes, codes] of cases) {
    const config = load(attributes);
    assert.is(config.sslProfiles[0]!.tls.passphrase, KEY_PASSWORD, attributes);
    assert.equal(config.warnings.map((warning) => warning.code), codes, attributes);
    for (const warning of config.warnings) assert.not.ok(warning.message.includes(KEY_PASSWORD), warning.message);
  }
  assert.is(
    load(`    password: pass:${KEY_PASSWORD}\n`).warnings[0]!.message,
    'router.conf:5: sslProfile password is written in clear text in the configuration (qdrouterd warns too); use env:VARIABLE or file:PATH',
  );
  // A key that is not encrypted takes no password; an unencrypted profile has none.
  assert.is(router(`sslProfile {\n    name: p\n    certFile: ${files.cert}\n    privateKeyFile: ${files.key}\n}\n`).sslProfiles[0]!.tls.passphrase, undefined);
  // Refusals name the attribute, never the password.
  delete process.env['AMQP_MESH_TEST_UNSET'];
  refused(() => load('    password: env:AMQP_MESH_TEST_UNSET\n'), 'ERR_CONFIG_INVALID_VALUE', 'router.conf:5: sslProfile password "env:AMQP_MESH_TEST_UNSET": environment variable AMQP_MESH_TEST_UNSET is not set');
  const missing = path.join(files.dir, 'no-such-password');
  refused(
    () => load(`    password: file:${missing}\n`),
    'ERR_CONFIG_REFERENCED_FILE',
    `router.conf:5: sslProfile password file ${JSON.stringify(missing)} cannot be read: ENOENT: no such file or directory, open '${missing}'`,
  );
  refused(
    () => load('    password: pass:wrong\n'),
    'ERR_CONFIG_REFERENCED_FILE',
    `router.conf:5: sslProfile password does not decrypt privateKeyFile ${JSON.stringify(files.encryptedKey)}: error:1C800064:Provider routines::bad decrypt`,
  );
  refused(
    () => load(''),
    'ERR_CONFIG_REFERENCED_FILE',
    `router.conf:4: sslProfile privateKeyFile ${JSON.stringify(files.encryptedKey)} is encrypted and the sslProfile has no password; set password (env:VAR, file:PATH or pass:TEXT)`,
  );
});

test('sslProfile paths: relative ones are read from the configuration file\'s directory', () => {
  const file = path.join(files.dir, 'router.conf');
  fs.writeFileSync(file, 'sslProfile {\n    name: p\n    certFile: server.pem\n    privateKeyFile: ./server-key.pem\n    caCertFile: ca.pem\n}\n');
  const profile = loadConfigFile(file).sslProfiles[0]!;
  assert.equal([profile.certFile, profile.privateKeyFile, profile.caCertFile], [files.cert, files.key, files.ca]);
  assert.equal(profile.tls.cert, pem(files.cert));
});

// ---------------------------------------------------------------------------------------------
// Refusals, each with its exact FILE:LINE message

test('refused: a listener or connector naming an unknown sslProfile, with the known names', () => {
  const profiles = `sslProfile {\n    name: a\n    caCertFile: ${files.ca}\n}\nsslProfile {\n    name: b\n    certFile: ${files.cert}\n    privateKeyFile: ${files.key}\n}\n`;
  refused(
    () => router(profiles + 'listener {\n    sslProfile: c\n}\n'),
    'ERR_CONFIG_INVALID_VALUE',
    'router.conf:11: listener sslProfile "c" names no sslProfile; sslProfiles in this file: "a" (line 1), "b" (line 5)',
  );
  refused(
    () => router('router {\n    mode: interior\n}\nconnector {\n    role: inter-router\n    sslProfile: tls\n}\n'),
    'ERR_CONFIG_INVALID_VALUE',
    'router.conf:6: connector sslProfile "tls" names no sslProfile; this file has no sslProfile: add one (sslProfile { name: tls ... })',
  );
  refused(
    () => broker('broker {\n    persistent: false\n}\nlistener {\n    sslProfile: c\n}\n' + profiles, 'broker.conf'),
    'ERR_CONFIG_INVALID_VALUE',
    'broker.conf:5: listener sslProfile "c" names no sslProfile; sslProfiles in this file: "a" (line 7), "b" (line 11)',
  );
  // A listener presents a certificate: a profile without one cannot serve it.
  refused(
    () => router(profiles + 'listener {\n    sslProfile: a\n}\n'),
    'ERR_CONFIG_CONFLICT',
    'router.conf:11: listener sslProfile "a" (line 1) has no certFile and privateKeyFile: a TLS listener presents a certificate; set both in the sslProfile',
  );
  // A connector may use one (it verifies the peer against the CA).
  const connector = router(`router {\n    mode: interior\n}\n${profiles}connector {\n    role: inter-router\n    sslProfile: a\n}\n`).connectors[0]!;
  assert.equal(connector.transport, { tls: { name: 'a', ca: pem(files.ca), protocols: ['TLSv1.2', 'TLSv1.3'], source: 'router.conf:4' }, verifyHostname: true });
});

test('refused: missing and unreadable files, bad PEM, a key that is not the certificate\'s', () => {
  const missing = path.join(files.dir, 'missing.pem');
  const profile = (attributes: string) => `sslProfile {\n    name: p\n${attributes}}\n`;
  const cases: Array<[string, ConfigErrorCode, string]> = [
    [
      `    certFile: ${missing}\n    privateKeyFile: ${files.key}\n`,
      'ERR_CONFIG_REFERENCED_FILE',
      `router.conf:3: sslProfile certFile ${JSON.stringify(missing)} cannot be read: ENOENT: no such file or directory, open '${missing}'`,
    ],
    [
      `    certFile: ${files.cert}\n    privateKeyFile: ${missing}\n`,
      'ERR_CONFIG_REFERENCED_FILE',
      `router.conf:4: sslProfile privateKeyFile ${JSON.stringify(missing)} cannot be read: ENOENT: no such file or directory, open '${missing}'`,
    ],
    [
      `    caCertFile: ${files.dir}\n`,
      'ERR_CONFIG_REFERENCED_FILE',
      `router.conf:3: sslProfile caCertFile ${JSON.stringify(files.dir)} cannot be read: EISDIR: illegal operation on a directory, read`,
    ],
    [
      `    caCertFile: ${files.notPem}\n`,
      'ERR_CONFIG_REFERENCED_FILE',
      `router.conf:3: sslProfile caCertFile ${JSON.stringify(files.notPem)} holds no PEM certificate ("-----BEGIN CERTIFICATE-----"); expected PEM certificates`,
    ],
    [
      `    certFile: ${files.badCert}\n    privateKeyFile: ${files.key}\n`,
      'ERR_CONFIG_REFERENCED_FILE',
      `router.conf:3: sslProfile certFile ${JSON.stringify(files.badCert)} holds a bad PEM certificate (certificate 1 of 1): error:068000A8:asn1 encoding routines::wrong tag`,
    ],
    [
      `    certFile: ${files.cert}\n    privateKeyFile: ${files.notPem}\n`,
      'ERR_CONFIG_REFERENCED_FILE',
      `router.conf:4: sslProfile privateKeyFile ${JSON.stringify(files.notPem)} is not a usable PEM private key: error:1E08010C:DECODER routines::unsupported`,
    ],
    [
      `    certFile: ${files.cert}\n    privateKeyFile: ${files.otherKey}\n`,
      'ERR_CONFIG_CONFLICT',
      `router.conf:4: sslProfile privateKeyFile ${JSON.stringify(files.otherKey)} is not the private key of the certificate in certFile ${JSON.stringify(files.cert)}`,
    ],
    [
      `    certFile: ${files.cert}\n`,
      'ERR_CONFIG_MISSING_ATTRIBUTE',
      'router.conf:3: sslProfile "p" has certFile but no privateKeyFile: a certificate is presented with its private key; set both, or neither for a profile that only verifies peers',
    ],
    ['    certFile: ""\n', 'ERR_CONFIG_INVALID_VALUE', 'router.conf:3: sslProfile certFile is empty; expected the path of a PEM file'],
  ];
  for (const [attributes, code, message] of cases) {
    refused(() => router(profile(attributes)), code, message);
    // The broker reads sslProfiles the same way.
    refused(() => broker(profile(attributes), 'router.conf'), code, message);
  }
  refused(
    () => router(`sslProfile {\n    caCertFile: ${files.ca}\n}\n`),
    'ERR_CONFIG_MISSING_ATTRIBUTE',
    'router.conf:1: sslProfile is missing required attribute "name"; listeners and connectors refer to an sslProfile by its name',
  );
});

test('refused: EXTERNAL without an sslProfile that has a caCertFile', () => {
  refused(
    () => router('listener {\n    authenticatePeer: yes\n    saslMechanisms: EXTERNAL\n}\n'),
    'ERR_CONFIG_CONFLICT',
    'router.conf:3: listener saslMechanisms EXTERNAL needs an sslProfile with a caCertFile (client certificates are verified against it); this listener has no sslProfile',
  );
  const withoutCa = `sslProfile {\n    name: server\n    certFile: ${files.cert}\n    privateKeyFile: ${files.key}\n}\n`;
  refused(
    () => router(withoutCa + 'listener {\n    sslProfile: server\n    saslMechanisms: PLAIN EXTERNAL\n}\n'),
    'ERR_CONFIG_CONFLICT',
    'router.conf:8: listener saslMechanisms EXTERNAL needs an sslProfile with a caCertFile (client certificates are verified against it); sslProfile "server" (line 1) has none',
  );
  refused(
    () => broker('broker {\n    persistent: false\n}\nlistener {\n    sslProfile: server\n    saslMechanisms: EXTERNAL\n}\n' + withoutCa, 'broker.conf'),
    'ERR_CONFIG_CONFLICT',
    'broker.conf:6: listener saslMechanisms EXTERNAL needs an sslProfile with a caCertFile (client certificates are verified against it); sslProfile "server" (line 8) has none',
  );
  // authenticatePeer needs a mechanism that authenticates: PLAIN or EXTERNAL.
  refused(
    () => router('listener {\n    authenticatePeer: yes\n    saslMechanisms: ANONYMOUS\n}\n'),
    'ERR_CONFIG_CONFLICT',
    'router.conf:3: listener has authenticatePeer: true but saslMechanisms "ANONYMOUS" has no mechanism that authenticates; add PLAIN or SCRAM-SHA-256 (or EXTERNAL, with an sslProfile that has a caCertFile)',
  );
  // A connector's EXTERNAL is its TLS client certificate: it needs an sslProfile.
  refused(
    () => router('router {\n    mode: interior\n}\nconnector {\n    role: inter-router\n    saslMechanisms: EXTERNAL\n}\n'),
    'ERR_CONFIG_CONFLICT',
    'router.conf:6: connector saslMechanisms "EXTERNAL" includes EXTERNAL, which authenticates with a TLS client certificate; name an sslProfile with certFile and privateKeyFile',
  );
});

test('a uidFormat letter that is no certificate field: accepted with a warning (user ids fall back to the subject, as qdrouterd\'s)', () => {
  const config = router('sslProfile {\n    name: p\n    uidFormat: 1x\n}\n');
  assert.equal(warnings(config), [[3, 'WARN_CONFIG_NO_EFFECT']]);
  assert.match(config.warnings[0]!.message, /^router\.conf:3: sslProfile uidFormat "1x" has "x", not certificate fields: user ids are the certificate's subject instead/);
});

test('refused: an unreadable or malformed uidNameMappingFile', () => {
  const bad = path.join(files.dir, 'bad-names.json');
  fs.writeFileSync(bad, '["not", "a map"]');
  refused(() => router(`sslProfile {\n    name: p\n    uidNameMappingFile: ${bad}\n}\n`), 'ERR_CONFIG_REFERENCED_FILE',
    `router.conf:3: sslProfile uidNameMappingFile "${bad}" must hold one JSON object of at most 100000 "user id": "display name" strings`);
});

test('refused: bad uidFormat, protocols and ciphers', () => {
  const help =
    'expected letters from c (country), s (state), l (locality), o (organization), u (organizational unit), n (common name), ' +
    'each at most once, and at most one fingerprint: 1 (SHA-1), 2 (SHA-256) or 5 (SHA-512); e.g. "ou" or "n2"';
  const protocolsHelp = 'expected a space-separated list of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3 (e.g. "TLSv1.2 TLSv1.3")';
  const cases: Array<[string, string]> = [
    ['    uidFormat: cc', `router.conf:3: sslProfile uidFormat "cc" has "c" twice; ${help}`],
    ['    uidFormat: o12', `router.conf:3: sslProfile uidFormat "o12" has 2 fingerprints (1, 2); the user id holds one; ${help}`],
    ['    uidFormat: ""', `router.conf:3: sslProfile uidFormat "" is empty; ${help}`],
    ['    protocols: ","', `router.conf:3: sslProfile protocols is empty; ${protocolsHelp}`],
    [
      '    ciphers: NO-SUCH-CIPHER',
      'router.conf:3: sslProfile ciphers "NO-SUCH-CIPHER" is not usable: error:0A0000B9:SSL routines::no cipher match; expected an OpenSSL cipher list such as "ECDHE+AESGCM:!aNULL" (see openssl ciphers -v)',
    ],
  ];
  for (const [attribute, message] of cases) {
    refused(() => router(`sslProfile {\n    name: p\n${attribute}\n}\n`), 'ERR_CONFIG_INVALID_VALUE', message);
  }
  // Accepted: every field letter once and one fingerprint; proton's separators; duplicates; any order.
  const accepted = router('sslProfile {\n    name: p\n    uidFormat: csloun5\n    protocols: "TLSv1.3, TLSv1.2;TLSv1.3"\n}\n').sslProfiles[0]!.tls;
  assert.equal([accepted.uidFormat, accepted.protocols], ['csloun5', ['TLSv1.2', 'TLSv1.3']]);
});

test('protocols: any subset of TLS versions; a name that is no TLS version allows none, with a warning (qdrouterd starts)', () => {
  const gap = router('sslProfile {\n    name: p\n    protocols: TLSv1 TLSv1.2\n}\n').sslProfiles[0]!.tls;
  assert.equal(gap.protocols, ['TLSv1', 'TLSv1.2']);
  for (const written of ['SSLv23', 'TLSv1.4', 'tlsv1.2', 'SSLv3 TLSv1.2']) {
    const cfg = router(`sslProfile {\n    name: p\n    protocols: ${written}\n}\n`);
    assert.equal(cfg.sslProfiles[0]!.tls.protocols, [], written);
    const w = cfg.warnings.find((x) => x.code === 'WARN_CONFIG_NO_EFFECT');
    assert.ok(w && w.message.includes('is not a TLS protocol') && w.message.includes('will fail'), written);
  }
});

test('no protocols: the system OpenSSL policy\'s versions; TLS 1.0 or 1.1 among them is warned about; no openssl.cnf: Node\'s defaults', () => {
  const text = 'sslProfile {\n    name: p\n}\n';
  const rhel = router(text);
  assert.equal(rhel.sslProfiles[0]!.tls.protocols, ['TLSv1.2', 'TLSv1.3']);
  assert.equal(rhel.warnings.map((w) => w.code), []);
  const debian = path.join(files.dir, 'debian.cnf');
  fs.writeFileSync(debian, '# no MinProtocol, as Debian 12 ships it\nopenssl_conf = init\n[init]\nssl_conf = ssl\n[ssl]\nsystem_default = policy\n[policy]\nCipherString = DEFAULT\n');
  try {
    process.env.OPENSSL_CONF = debian;
    const cfg = router(text);
    assert.equal(cfg.sslProfiles[0]!.tls.protocols, ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3']);
    assert.equal(cfg.warnings.map((w) => w.message), [
      `router.conf:1: sslProfile "p" has no protocols, so it allows what the system's OpenSSL policy does (${debian} (no MinProtocol or MaxProtocol)), as qdrouterd does: ` +
      'TLSv1, TLSv1.1, TLSv1.2, TLSv1.3, including TLSv1 and TLSv1.1, deprecated by RFC 8996; set protocols: TLSv1.2 TLSv1.3 to refuse them',
    ]);
    const written = router('sslProfile {\n    name: p\n    protocols: TLSv1.3\n}\n');
    assert.equal([written.sslProfiles[0]!.tls.protocols, written.warnings.length], [['TLSv1.3'], 0], 'protocols written: no system policy');
    process.env.OPENSSL_CONF = path.join(files.dir, 'absent.cnf');
    const none = router(text);
    assert.is(none.sslProfiles[0]!.tls.protocols, undefined, 'no openssl.cnf: Node\'s own defaults (TLS 1.2 up)');
  } finally {
    process.env.OPENSSL_CONF = SYSTEM_CONF;
  }
});

test('refused: TLS and WebSocket settings that would silently not apply', () => {
  const cases: Array<[() => unknown, ConfigErrorCode, string]> = [
    [() => router('listener {\n    port: 0\n    requireSsl: yes\n}\n'), 'ERR_CONFIG_CONFLICT', 'router.conf:3: listener requireSsl: true needs an sslProfile (TLS is the only encryption amqp-mesh offers); set sslProfile to the name of an sslProfile, or remove requireSsl'],
    [() => broker('broker {\n    persistent: false\n}\nlistener {\n    requireEncryption: yes\n}\n'), 'ERR_CONFIG_CONFLICT', 'broker.conf:5: listener requireEncryption: true needs an sslProfile (TLS is the only encryption amqp-mesh offers); set sslProfile to the name of an sslProfile, or remove requireEncryption'],
    [() => router('listener {\n    initialHandshakeTimeoutSeconds: -1\n}\n'), 'ERR_CONFIG_INVALID_VALUE', 'router.conf:2: listener initialHandshakeTimeoutSeconds "-1" is out of range; expected an integer from 0 to 2147483'],
  ];
  for (const [load, code, message] of cases) refused(load, code, message);
});

// ---------------------------------------------------------------------------------------------
// qdrouterd configurations load unchanged

test('a qdrouterd configuration with sslProfile, requireSsl listeners and verifyHostname connectors loads unchanged', () => {
  const file = path.join(files.dir, 'qdrouterd.conf');
  // As qdrouterd's documentation writes them: absolute paths, deprecated names, a literal password.
  fs.writeFileSync(
    file,
    `# qdrouterd.conf
router {
    mode: interior
    id: Router.A
}

sslProfile {
    name: service-tls
    certFile: ${files.cert}
    keyFile: ${files.encryptedKey}
    password: ${KEY_PASSWORD}
    certDb: ${files.ca}
    protocols: TLSv1.2
}

listener {
    host: 0.0.0.0
    port: amqps
    role: normal
    sslProfile: service-tls
    requireSsl: yes
    authenticatePeer: no
    saslMechanisms: ANONYMOUS
}

listener {
    host: 0.0.0.0
    port: 55671
    role: inter-router
    sslProfile: service-tls
    requireSsl: yes
    authenticatePeer: yes
    saslMechanisms: EXTERNAL
}

connector {
    name: to-router-b
    host: router-b.example.com
    port: 55671
    role: inter-router
    sslProfile: service-tls
    verifyHostname: yes
    saslMechanisms: ANONYMOUS
}

address {
    prefix: closest
    distribution: closest
}
`,
  );
  const config = loadConfigFile(file);
  const tls = config.sslProfiles[0]!.tls;
  assert.equal(
    config.listeners.map((listener) => [listener.port, listener.role, listener.transport]),
    [
      [5671, 'normal', { tls, requireSsl: true, verifyClient: false, websockets: false, initialHandshakeTimeoutSeconds: 30 }],
      [55671, 'inter-router', { tls, requireSsl: true, verifyClient: true, websockets: false, initialHandshakeTimeoutSeconds: 30 }],
    ],
  );
  assert.equal(config.connectors[0]!.transport, { tls, verifyHostname: true });
  assert.equal([tls.passphrase, tls.protocols, tls.ca], [KEY_PASSWORD, ['TLSv1.2'], pem(files.ca)]);
  // Only remarks qdrouterd makes too: deprecated names, a password in clear text.
  assert.equal(warnings(config), [
    [10, 'WARN_CONFIG_DEPRECATED'],
    [12, 'WARN_CONFIG_DEPRECATED'],
    [11, 'WARN_CONFIG_INSECURE'],
  ]);
  assert.not.ok(config.warnings.some((warning) => warning.message.includes(KEY_PASSWORD)));
  // The broker takes the same sslProfile and listener sections.
  const brokerFile = path.join(files.dir, 'broker.conf');
  const text = fs.readFileSync(file, 'utf8');
  fs.writeFileSync(brokerFile, 'broker {\n    persistent: false\n}\n' + text.slice(text.indexOf('sslProfile {'), text.indexOf('listener {\n    host: 0.0.0.0\n    port: 55671')).replace('    role: normal\n', ''));
  const brokerConfig = loadBrokerConfigFile(brokerFile);
  assert.equal(brokerConfig.listeners[0]!.transport, { tls: brokerConfig.sslProfiles[0]!.tls, requireSsl: true, verifyClient: false, websockets: false, initialHandshakeTimeoutSeconds: 30 });
});

test.run();
