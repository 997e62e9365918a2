/**
 * The configuration schema: every entity type and attribute that qdrouterd 1.19 accepts in a
 * config file, transcribed from its management schema (`qdrouter.json`, Apache License 2.0) so
 * that amqp-mesh needs no copy of that file at run time, with what amqp-mesh implements marked.
 *
 * Names, types, defaults, required flags and deprecated names are qdrouterd's. On top of them:
 * - `status` says what amqp-mesh does with an attribute: `implemented`, `notImplemented`
 *   (accepted with a warning so existing qdrouterd configs load) or `readOnly` (statistics and
 *   other status values that qdrouterd's schema lists but a config file cannot meaningfully set).
 * - `min`/`max` bound integers; qdrouterd's schema only says "integer" and its C code clamps or
 *   misbehaves on nonsense such as a negative frame size.
 * - `unsupportedValues` lists enumeration values qdrouterd accepts and amqp-mesh refuses for now.
 * - `port` is a refinement of qdrouterd's string-typed ports, resolved to a number.
 *
 * To implement an attribute: mark it `implemented(...)`, then read it in the entity's builder in
 * validate.ts. To implement a whole entity type: set `implemented: true` here and add a builder.
 */

import { POLICY_ENTITY_SCHEMA, VHOST_ENTITY_SCHEMA } from '../../policy/schema';
import {
  attributeHelpers,
  entitySchema,
  findEntitySchema as findInTable,
  implemented,
  readOnly,
  type AttributeSchema,
  type EntitySchema,
} from '../../config/schema';
import { CONNECTION_LIMIT_ATTRIBUTES, LISTENER_ADDRESS_ATTRIBUTES, LISTENER_SASL_ATTRIBUTES } from '../../config/listener';
import { LOG_ENTITY_SCHEMA } from '../../config/log';
import { SSL_PROFILE_ENTITY_SCHEMA } from '../../config/ssl-profile';
import { CONNECTOR_TRANSPORT_ATTRIBUTES, LISTENER_TRANSPORT_ATTRIBUTES } from '../../config/transport';


// The router's table transcribes qdrouterd's: what is not marked implemented is accepted with a warning.
const { string, path, integer, boolean, port, properties, map, enumOf } = attributeHelpers('notImplemented');

function readOnlyCounters(names: readonly string[]): Record<string, AttributeSchema> {
  return Object.fromEntries(names.map((name) => [name, readOnly(integer())]));
}

function entity(
  type: string,
  qdrouterdType: string,
  flags: { implemented?: boolean; singleton?: boolean; deprecated?: boolean },
  attributes: Record<string, AttributeSchema>,
): EntitySchema {
  return entitySchema(type, { qdrouterdType, ...flags }, attributes);
}

const UINT32_MAX = 0xffff_ffff;
const INT32_MAX = 0x7fff_ffff;
/** Longest router protocol interval, in seconds: a Node.js timer holds at most 2^31-1 milliseconds. */
const MAX_TIMER_SECONDS = Math.floor(INT32_MAX / 1000);
/** Address phases and priorities are single digits in qdrouterd. */
const MAX_PHASE = 9;
const MAX_PRIORITY = 9;

const CONNECTION_ROLES = ['normal', 'inter-router', 'route-container', 'edge'] as const;
/** Listener and connector roles qdrouterd accepts and amqp-mesh refuses with "not supported yet": none (which role suits which mode: validate.ts checkRouterMode). */
const UNSUPPORTED_CONNECTION_ROLES = [] as const;
const LINK_DIRECTIONS = ['in', 'out'] as const;
const STRIP_ANNOTATIONS = ['in', 'out', 'both', 'no'] as const;
const DISTRIBUTIONS = ['multicast', 'closest', 'balanced', 'unavailable'] as const;

/** Every entity type a config file may contain, by config-file name, in the order error messages list them. */
export const ENTITY_SCHEMAS: { readonly [type: string]: EntitySchema } = {
  router: entity('router', 'org.apache.qpid.dispatch.router', { implemented: true, singleton: true }, {
    id: implemented(string()),
    mode: implemented(enumOf(['standalone', 'interior', 'edge'], { default: 'standalone' })),
    area: string({ default: 0 }),
    version: readOnly(string()),
    hostName: readOnly(string()),
    helloIntervalSeconds: implemented(integer({ default: 1, min: 1, max: MAX_TIMER_SECONDS, deprecationName: 'helloInterval' })),
    helloMaxAgeSeconds: implemented(integer({ default: 3, min: 1, max: MAX_TIMER_SECONDS, deprecationName: 'helloMaxAge' })),
    raIntervalSeconds: implemented(integer({ default: 30, min: 1, max: MAX_TIMER_SECONDS, deprecationName: 'raInterval' })),
    raIntervalFluxSeconds: implemented(integer({ default: 4, min: 1, max: MAX_TIMER_SECONDS, deprecationName: 'raIntervalFlux' })),
    remoteLsMaxAgeSeconds: implemented(integer({ default: 60, min: 1, max: MAX_TIMER_SECONDS, deprecationName: 'remoteLsMaxAge' })),
    workerThreads: implemented(integer({ default: 4, min: 1 })),
    debugDumpFile: path({ deprecationName: 'debugDump' }),
    saslConfigDir: implemented(path({ deprecationName: 'saslConfigPath' })),
    saslConfigName: implemented(string({ default: 'qdrouterd' })),
    allowResumableLinkRoute: boolean({ default: true }),
    timestampsInUTC: boolean(),
    timestampFormat: string(),
    allowUnsettledMulticast: boolean({ default: false }),
    defaultDistribution: enumOf(DISTRIBUTIONS, { default: 'balanced' }),
    metadata: string(),
    ...readOnlyCounters([
      'addrCount',
      'linkCount',
      'blockedLinkCount',
      'nodeCount',
      'linkRouteCount',
      'autoLinkCount',
      'connectionCount',
      'presettledDeliveries',
      'droppedPresettledDeliveries',
      'acceptedDeliveries',
      'rejectedDeliveries',
      'releasedDeliveries',
      'modifiedDeliveries',
      'deliveriesDelayed1Sec',
      'deliveriesDelayed10Sec',
      'deliveriesStuck',
      'deliveriesIngress',
      'deliveriesEgress',
      'deliveriesTransit',
      'deliveriesIngressRouteContainer',
      'deliveriesEgressRouteContainer',
      'deliveriesRedirectedToFallback',
      'uptimeSeconds',
      'memoryUsage',
    ]),
  }),

  listener: entity('listener', 'org.apache.qpid.dispatch.listener', { implemented: true }, {
    ...LISTENER_ADDRESS_ATTRIBUTES,
    socketAddressFamily: enumOf(['IPv4', 'IPv6'], { deprecationName: 'protocolFamily' }),
    role: implemented(enumOf(CONNECTION_ROLES, { default: 'normal', unsupportedValues: UNSUPPORTED_CONNECTION_ROLES })),
    // qdrouterd: for the inter-router role only; the default is also the minimum.
    cost: implemented(integer({ default: 1, min: 1 })),
    ...LISTENER_SASL_ATTRIBUTES,
    // sslProfile, requireSsl, requireEncryption, http, websockets, httpRootDir, healthz, metrics, initialHandshakeTimeoutSeconds.
    ...LISTENER_TRANSPORT_ATTRIBUTES,
    saslPlugin: string(),
    trustedCertsFile: path({ deprecationName: 'trustedCerts' }),
    ...CONNECTION_LIMIT_ATTRIBUTES,
    maxSessionFrames: integer({ max: UINT32_MAX }),
    stripAnnotations: implemented(enumOf(STRIP_ANNOTATIONS, { default: 'both' })),
    // qdrouterd has no schema default but uses 250 (and 0 means 250); so does amqp-mesh.
    linkCapacity: implemented(integer({ default: 250, max: INT32_MAX })),
    multiTenant: implemented(boolean({ default: false })),
    failoverUrls: implemented(string({ deprecationName: 'failoverList' })),
    messageLoggingComponents: string({ default: 'none', deprecationName: 'logMessage' }),
    policyVhost: implemented(string()),
    openProperties: properties(),
  }),

  connector: entity('connector', 'org.apache.qpid.dispatch.connector', { implemented: true }, {
    host: implemented(string({ default: '127.0.0.1' })),
    port: implemented(port({ default: 'amqp' })),
    protocolFamily: enumOf(['IPv4', 'IPv6']),
    role: implemented(enumOf(CONNECTION_ROLES, { default: 'normal', unsupportedValues: UNSUPPORTED_CONNECTION_ROLES })),
    // qdrouterd: for the inter-router role only; the default is also the minimum.
    cost: implemented(integer({ default: 1, min: 1 })),
    sslProfile: CONNECTOR_TRANSPORT_ATTRIBUTES['sslProfile']!,
    saslMechanisms: implemented(string()),
    allowRedirect: boolean({ default: true }),
    ...CONNECTION_LIMIT_ATTRIBUTES,
    maxSessionFrames: integer({ max: UINT32_MAX }),
    stripAnnotations: implemented(enumOf(STRIP_ANNOTATIONS, { default: 'both' })),
    // As for listeners: qdrouterd has no schema default but uses 250 (and 0 means 250).
    linkCapacity: implemented(integer({ default: 250, max: INT32_MAX })),
    verifyHostname: CONNECTOR_TRANSPORT_ATTRIBUTES['verifyHostname']!,
    saslUsername: implemented(string()),
    saslPassword: implemented(string()),
    messageLoggingComponents: string({ default: 'none', deprecationName: 'logMessage' }),
    // qdrouterd 1.19 marks this a status value (create: false): it reports the failover list it
    // learned from the peer's open frame. amqp-mesh also takes an initial list from the file
    // (parsed like a listener's failoverUrls), so a broker pair can be configured up front.
    failoverUrls: implemented(string({ deprecationName: 'failoverList' })),
    connectionStatus: readOnly(string()),
    connectionMsg: readOnly(string()),
    policyVhost: implemented(string()),
    openProperties: properties(),
  }),

  address: entity('address', 'org.apache.qpid.dispatch.router.config.address', { implemented: true }, {
    prefix: implemented(string()),
    pattern: implemented(string()),
    distribution: implemented(enumOf(DISTRIBUTIONS, { default: 'balanced' })),
    waypoint: implemented(boolean({ default: false })),
    // No schema default: without both phases qdrouterd uses ingress 0 and egress 1 (waypoint) or 0.
    ingressPhase: implemented(integer({ max: MAX_PHASE })),
    egressPhase: implemented(integer({ max: MAX_PHASE })),
    // The priority messages to these addresses cross the mesh with, whatever their header says; -1: theirs.
    priority: implemented(integer({ max: MAX_PRIORITY, default: -1, minusOne: 'the message\'s own priority' })),
    enableFallback: implemented(boolean({ default: false })),
  }),

  linkRoute: entity('linkRoute', 'org.apache.qpid.dispatch.router.config.linkRoute', { implemented: true }, {
    prefix: implemented(string()),
    pattern: implemented(string()),
    addExternalPrefix: implemented(string()),
    delExternalPrefix: implemented(string()),
    containerId: implemented(string()),
    connection: implemented(string()),
    distribution: implemented(enumOf(['linkBalanced'], { default: 'linkBalanced' })),
    direction: implemented(enumOf(LINK_DIRECTIONS, { required: true, deprecationName: 'dir' })),
    operStatus: readOnly(enumOf(['inactive', 'active'])),
  }),

  autoLink: entity('autoLink', 'org.apache.qpid.dispatch.router.config.autoLink', { implemented: true }, {
    address: implemented(string({ required: true, deprecationName: 'addr' })),
    direction: implemented(enumOf(LINK_DIRECTIONS, { required: true, deprecationName: 'dir' })),
    // No schema default: qdrouterd uses 0 for "out" (and fallback) auto-links, 1 for "in".
    phase: implemented(integer({ max: MAX_PHASE })),
    containerId: implemented(string()),
    connection: implemented(string()),
    externalAddress: implemented(string({ deprecationName: 'externalAddr' })),
    fallback: implemented(boolean({ default: false })),
    linkRef: readOnly(string()),
    operStatus: readOnly(enumOf(['inactive', 'attaching', 'failed', 'active', 'quiescing', 'idle'])),
    lastError: readOnly(string()),
  }),

  exchange: entity('exchange', 'org.apache.qpid.dispatch.router.config.exchange', {}, {
    address: string({ required: true }),
    phase: integer({ max: MAX_PHASE }),
    alternateAddress: string(),
    alternatePhase: integer({ max: MAX_PHASE }),
    matchMethod: enumOf(['amqp', 'mqtt'], { default: 'amqp' }),
    ...readOnlyCounters(['bindingCount', 'receivedCount', 'droppedCount', 'forwardedCount', 'divertedCount']),
  }),

  binding: entity('binding', 'org.apache.qpid.dispatch.router.config.binding', {}, {
    exchangeName: string({ required: true }),
    bindingKey: string(),
    nextHopAddress: string({ required: true }),
    nextHopPhase: integer({ max: MAX_PHASE }),
    ...readOnlyCounters(['matchedCount']),
  }),

  sslProfile: SSL_PROFILE_ENTITY_SCHEMA,

  authServicePlugin: entity('authServicePlugin', 'org.apache.qpid.dispatch.authServicePlugin', {}, {
    authService: string({ deprecated: true }),
    host: string({ default: '' }),
    port: port({ default: 'amqp' }),
    realm: string({ deprecationName: 'saslInitHostname' }),
    sslProfile: string({ deprecationName: 'authSslProfile' }),
  }),

  log: LOG_ENTITY_SCHEMA,

  policy: POLICY_ENTITY_SCHEMA,

  vhost: VHOST_ENTITY_SCHEMA,

  console: entity('console', 'org.apache.qpid.dispatch.console', { singleton: true, deprecated: true }, {
    listener: string(),
    wsport: integer({ default: 5673, max: 65535 }),
    proxy: string({ required: true }),
    home: string({ required: true }),
    args: string(),
  }),
};

/**
 * Entity types qdrouterd's schema defines that cannot be a config file section, with the reason
 * given to whoever writes one.
 */
export const NON_CONFIGURABLE_ENTITY_TYPES: { readonly [type: string]: string } = {
  connection: 'is a status entity in qdrouterd (open connections) and cannot be configured',
  allocator: 'is a status entity in qdrouterd (memory pools) and cannot be configured',
  logStats: 'is a status entity in qdrouterd (log counters) and cannot be configured',
  vhostStats: 'is a status entity in qdrouterd (vhost counters) and cannot be configured',
  management: 'is qdrouterd\'s management agent and cannot be configured',
  vhostUserGroupSettings: 'is not a section of its own: write these settings in a vhost\'s "groups" map',
};

/** The schema of a config-file entity type (as written after camelCasing), or undefined. */
export function findEntitySchema(type: string): EntitySchema | undefined {
  return findInTable(ENTITY_SCHEMAS, type);
}
