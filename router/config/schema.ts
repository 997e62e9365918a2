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

/** How a value is converted and checked. */
export type AttributeType =
  /** Text; numbers are accepted and turned into text, as qdrouterd does. */
  | 'string'
  /** A file system path (text). */
  | 'path'
  /** A whole number; text such as "16384" is converted, as in conf files. */
  | 'integer'
  /** true/false; also the strings yes/no, on/off, true/false in any case. */
  | 'boolean'
  /** One of `values`; qdrouterd also accepts the value's index. */
  | 'enum'
  /** A port number 0-65535 or the service name amqp (5672) or amqps (5671); resolves to a number. */
  | 'port'
  /** A map whose keys are ASCII (AMQP symbols), such as connection open properties. */
  | 'properties'
  /** Any map. */
  | 'map';

/** What amqp-mesh does with an attribute. */
export type AttributeStatus = 'implemented' | 'notImplemented' | 'readOnly';

/** A default value, before conversion (qdrouterd writes some defaults with another type, e.g. area: 0). */
export type SchemaDefault = string | number | boolean;

/** Definition of one attribute. */
export interface AttributeSchema {
  readonly type: AttributeType;
  readonly status: AttributeStatus;
  /** For `enum`: the values, in qdrouterd's order (an index refers to this order). */
  readonly values?: readonly string[];
  /** For `enum`: values of `values` that amqp-mesh refuses with "not supported yet". */
  readonly unsupportedValues?: readonly string[];
  /** For `integer`: smallest accepted value (default 0: no qdrouterd integer attribute is meaningfully negative). */
  readonly min?: number;
  /** For `integer`: largest accepted value (default Number.MAX_SAFE_INTEGER). */
  readonly max?: number;
  readonly default?: SchemaDefault;
  readonly required?: boolean;
  /** The attribute's former name, still accepted with a deprecation warning. */
  readonly deprecationName?: string;
  /** The attribute itself is deprecated. */
  readonly deprecated?: boolean;
}

/** Definition of one entity type (a config file section). */
export interface EntitySchema {
  /** The name used in config files, e.g. `address`. */
  readonly type: string;
  /** qdrouterd's fully qualified type, e.g. `org.apache.qpid.dispatch.router.config.address`. */
  readonly qdrouterdType: string;
  /** Whether amqp-mesh acts on this entity type; others are accepted with a warning. */
  readonly implemented: boolean;
  /** At most one entity of this type. */
  readonly singleton: boolean;
  /** qdrouterd deprecates this entity type. */
  readonly deprecated: boolean;
  /** Attributes by name, in qdrouterd's order, then `name`. */
  readonly attributes: { readonly [attributeName: string]: AttributeSchema };
}

type AttributeOptions = Omit<AttributeSchema, 'type' | 'status' | 'values'>;

function attribute(type: AttributeType, options: AttributeOptions = {}): AttributeSchema {
  return { type, status: 'notImplemented', ...options };
}
const string = (options?: AttributeOptions) => attribute('string', options);
const path = (options?: AttributeOptions) => attribute('path', options);
const integer = (options?: AttributeOptions) => attribute('integer', options);
const boolean = (options?: AttributeOptions) => attribute('boolean', options);
const port = (options?: AttributeOptions) => attribute('port', options);
const properties = (options?: AttributeOptions) => attribute('properties', options);
const map = (options?: AttributeOptions) => attribute('map', options);
function enumOf(values: readonly string[], options: AttributeOptions = {}): AttributeSchema {
  return { type: 'enum', status: 'notImplemented', values, ...options };
}
function implemented(schema: AttributeSchema): AttributeSchema {
  return { ...schema, status: 'implemented' };
}
function readOnly(schema: AttributeSchema): AttributeSchema {
  return { ...schema, status: 'readOnly' };
}
function readOnlyCounters(names: readonly string[]): Record<string, AttributeSchema> {
  return Object.fromEntries(names.map((name) => [name, readOnly(integer())]));
}

function entity(
  type: string,
  qdrouterdType: string,
  flags: { implemented?: boolean; singleton?: boolean; deprecated?: boolean },
  attributes: Record<string, AttributeSchema>,
): EntitySchema {
  return {
    type,
    qdrouterdType,
    implemented: flags.implemented ?? false,
    singleton: flags.singleton ?? false,
    deprecated: flags.deprecated ?? false,
    // Every qdrouterd entity has a user-assigned, globally unique name (listed last in messages).
    attributes: { ...attributes, name: implemented(string()) },
  };
}

const UINT32_MAX = 0xffff_ffff;
const INT32_MAX = 0x7fff_ffff;
/** AMQP 1.0 (part 2, section 2.7.1): a peer must accept frames of at least 512 octets. */
const AMQP_MIN_MAX_FRAME_SIZE = 512;
/** qdrouterd clamps maxSessions to this. */
const QDROUTERD_MAX_SESSIONS = 32768;
/** Longest router protocol interval, in seconds: a Node.js timer holds at most 2^31-1 milliseconds. */
const MAX_TIMER_SECONDS = Math.floor(INT32_MAX / 1000);
/** Address phases and priorities are single digits in qdrouterd. */
const MAX_PHASE = 9;
const MAX_PRIORITY = 9;

/** qdrouterd's log modules, in its order; `DEFAULT` sets the defaults of all the others. */
export const LOG_MODULES = [
  'ROUTER',
  'ROUTER_CORE',
  'ROUTER_HELLO',
  'ROUTER_LS',
  'ROUTER_MA',
  'MESSAGE',
  'SERVER',
  'AGENT',
  'AUTHSERVICE',
  'CONTAINER',
  'ERROR',
  'POLICY',
  'HTTP',
  'CONN_MGR',
  'PYTHON',
  'PROTOCOL',
  'DEFAULT',
] as const;

const CONNECTION_ROLES = ['normal', 'inter-router', 'route-container', 'edge'] as const;
/** Listener and connector roles qdrouterd accepts and amqp-mesh refuses with "not supported yet". */
const UNSUPPORTED_CONNECTION_ROLES = ['edge'] as const;
const LINK_DIRECTIONS = ['in', 'out'] as const;
const STRIP_ANNOTATIONS = ['in', 'out', 'both', 'no'] as const;
const DISTRIBUTIONS = ['multicast', 'closest', 'balanced', 'unavailable'] as const;

/** Every entity type a config file may contain, by config-file name, in the order error messages list them. */
export const ENTITY_SCHEMAS: { readonly [type: string]: EntitySchema } = {
  router: entity('router', 'org.apache.qpid.dispatch.router', { implemented: true, singleton: true }, {
    id: implemented(string()),
    mode: implemented(enumOf(['standalone', 'interior', 'edge'], { default: 'standalone', unsupportedValues: ['edge'] })),
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
    // qdrouterd's default: the empty string listens on all local addresses.
    host: implemented(string({ default: '' })),
    port: implemented(port({ default: 'amqp' })),
    socketAddressFamily: enumOf(['IPv4', 'IPv6'], { deprecationName: 'protocolFamily' }),
    role: implemented(enumOf(CONNECTION_ROLES, { default: 'normal', unsupportedValues: UNSUPPORTED_CONNECTION_ROLES })),
    // qdrouterd: for the inter-router role only; the default is also the minimum.
    cost: implemented(integer({ default: 1, min: 1 })),
    sslProfile: string(),
    saslMechanisms: implemented(string()),
    authenticatePeer: implemented(boolean({ default: false })),
    saslPlugin: string(),
    requireEncryption: boolean({ default: false }),
    requireSsl: boolean({ default: false }),
    trustedCertsFile: path({ deprecationName: 'trustedCerts' }),
    maxFrameSize: implemented(integer({ default: 16384, min: AMQP_MIN_MAX_FRAME_SIZE, max: UINT32_MAX })),
    // 0 selects the default, as in qdrouterd.
    maxSessions: implemented(integer({ default: QDROUTERD_MAX_SESSIONS, max: QDROUTERD_MAX_SESSIONS })),
    maxSessionFrames: integer({ max: UINT32_MAX }),
    // AMQP carries the idle timeout in milliseconds in a uint.
    idleTimeoutSeconds: implemented(integer({ default: 16, max: Math.floor(UINT32_MAX / 1000) })),
    initialHandshakeTimeoutSeconds: integer({ default: 0 }),
    stripAnnotations: implemented(enumOf(STRIP_ANNOTATIONS, { default: 'both' })),
    // qdrouterd has no schema default but uses 250 (and 0 means 250); so does amqp-mesh.
    linkCapacity: implemented(integer({ default: 250, max: INT32_MAX })),
    multiTenant: boolean({ default: false }),
    failoverUrls: string({ deprecationName: 'failoverList' }),
    healthz: boolean({ default: true }),
    metrics: boolean({ default: true }),
    websockets: boolean({ default: true }),
    http: boolean({ default: false }),
    httpRootDir: path({ deprecationName: 'httpRoot' }),
    messageLoggingComponents: string({ default: 'none', deprecationName: 'logMessage' }),
    policyVhost: string(),
    openProperties: properties(),
  }),

  connector: entity('connector', 'org.apache.qpid.dispatch.connector', { implemented: true }, {
    host: implemented(string({ default: '127.0.0.1' })),
    port: implemented(port({ default: 'amqp' })),
    protocolFamily: enumOf(['IPv4', 'IPv6']),
    role: implemented(enumOf(CONNECTION_ROLES, { default: 'normal', unsupportedValues: UNSUPPORTED_CONNECTION_ROLES })),
    // qdrouterd: for the inter-router role only; the default is also the minimum.
    cost: implemented(integer({ default: 1, min: 1 })),
    // Refused when set (no TLS connectors yet), as a listener's sslProfile is.
    sslProfile: string(),
    saslMechanisms: implemented(string()),
    allowRedirect: boolean({ default: true }),
    maxFrameSize: implemented(integer({ default: 16384, min: AMQP_MIN_MAX_FRAME_SIZE, max: UINT32_MAX })),
    // 0 selects the default, as in qdrouterd.
    maxSessions: implemented(integer({ default: QDROUTERD_MAX_SESSIONS, max: QDROUTERD_MAX_SESSIONS })),
    maxSessionFrames: integer({ max: UINT32_MAX }),
    idleTimeoutSeconds: implemented(integer({ default: 16, max: Math.floor(UINT32_MAX / 1000) })),
    stripAnnotations: implemented(enumOf(STRIP_ANNOTATIONS, { default: 'both' })),
    // As for listeners: qdrouterd has no schema default but uses 250 (and 0 means 250).
    linkCapacity: implemented(integer({ default: 250, max: INT32_MAX })),
    // Only meaningful with TLS: refused when set to true in the file (no TLS connectors yet).
    verifyHostname: boolean({ default: true, deprecationName: 'verifyHostName' }),
    saslUsername: implemented(string()),
    saslPassword: implemented(string()),
    messageLoggingComponents: string({ default: 'none', deprecationName: 'logMessage' }),
    // qdrouterd 1.19 marks this a status value (create: false): it reports the failover list it
    // learned from the peer's open frame. amqp-mesh also takes an initial list from the file
    // (parsed like a listener's failoverUrls), so a broker pair can be configured up front.
    failoverUrls: implemented(string({ deprecationName: 'failoverList' })),
    connectionStatus: readOnly(string()),
    connectionMsg: readOnly(string()),
    policyVhost: string(),
    openProperties: properties(),
  }),

  address: entity('address', 'org.apache.qpid.dispatch.router.config.address', { implemented: true }, {
    prefix: implemented(string()),
    pattern: implemented(string()),
    distribution: implemented(enumOf(DISTRIBUTIONS, { default: 'balanced', unsupportedValues: ['unavailable'] })),
    waypoint: implemented(boolean({ default: false })),
    // No schema default: without both phases qdrouterd uses ingress 0 and egress 1 (waypoint) or 0.
    ingressPhase: implemented(integer({ max: MAX_PHASE })),
    egressPhase: implemented(integer({ max: MAX_PHASE })),
    priority: integer({ max: MAX_PRIORITY }),
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

  sslProfile: entity('sslProfile', 'org.apache.qpid.dispatch.sslProfile', {}, {
    ciphers: string(),
    protocols: string(),
    caCertFile: path({ deprecationName: 'certDb' }),
    certFile: path(),
    privateKeyFile: path({ deprecationName: 'keyFile' }),
    passwordFile: path({ deprecated: true }),
    password: string(),
    uidFormat: string(),
    uidNameMappingFile: string({ deprecationName: 'displayNameFile' }),
  }),

  authServicePlugin: entity('authServicePlugin', 'org.apache.qpid.dispatch.authServicePlugin', {}, {
    authService: string({ deprecated: true }),
    host: string({ default: '' }),
    port: port({ default: 'amqp' }),
    realm: string({ deprecationName: 'saslInitHostname' }),
    sslProfile: string({ deprecationName: 'authSslProfile' }),
  }),

  log: entity('log', 'org.apache.qpid.dispatch.log', { implemented: true }, {
    module: implemented(enumOf(LOG_MODULES, { required: true })),
    enable: implemented(string()),
    includeTimestamp: implemented(boolean({ deprecationName: 'timestamp' })),
    includeSource: implemented(boolean({ deprecationName: 'source' })),
    outputFile: implemented(string({ deprecationName: 'output' })),
  }),

  policy: entity('policy', 'org.apache.qpid.dispatch.policy', { singleton: true }, {
    maxConnections: integer({ default: 65535 }),
    maxMessageSize: integer({ default: 0 }),
    enableVhostPolicy: boolean({ default: false }),
    enableVhostNamePatterns: boolean({ default: false }),
    policyDir: path({ default: '' }),
    defaultVhost: string({ default: '$default' }),
    ...readOnlyCounters([
      'connectionsProcessed',
      'connectionsDenied',
      'connectionsCurrent',
      'linksDenied',
      'maxMessageSizeDenied',
      'totalDenials',
    ]),
  }),

  vhost: entity('vhost', 'org.apache.qpid.dispatch.vhost', {}, {
    hostname: string({ required: true, deprecationName: 'id' }),
    aliases: string(),
    maxConnections: integer({ default: 65535 }),
    maxMessageSize: integer(),
    maxConnectionsPerUser: integer({ default: 65535 }),
    maxConnectionsPerHost: integer({ default: 65535 }),
    allowUnknownUser: boolean({ default: false }),
    groups: map(),
  }),

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
  return Object.prototype.hasOwnProperty.call(ENTITY_SCHEMAS, type) ? ENTITY_SCHEMAS[type] : undefined;
}

/**
 * The attribute an entity's key refers to: its own name, or a deprecated name of another.
 * @returns the attribute's current name and schema, and whether a deprecated name was used.
 */
export function findAttributeSchema(
  entitySchema: EntitySchema,
  key: string,
): { name: string; schema: AttributeSchema; viaDeprecatedName: boolean } | undefined {
  if (Object.prototype.hasOwnProperty.call(entitySchema.attributes, key)) {
    return { name: key, schema: entitySchema.attributes[key]!, viaDeprecatedName: false };
  }
  for (const [name, schema] of Object.entries(entitySchema.attributes)) {
    if (schema.deprecationName === key) return { name, schema, viaDeprecatedName: true };
  }
  return undefined;
}

/** Enumeration values amqp-mesh accepts for an attribute (qdrouterd's minus the unsupported ones). */
export function supportedValues(schema: AttributeSchema): readonly string[] {
  const unsupported = schema.unsupportedValues ?? [];
  return (schema.values ?? []).filter((value) => !unsupported.includes(value));
}
