/**
 * Schema validation: turns syntax-neutral {@link RawEntity} lists into a typed {@link RouterConfig}.
 *
 * Two stages. {@link validateEntity} applies the schema generically — entity and attribute
 * names, deprecated names, types, ranges, enumerations, defaults, required attributes, size
 * limits — the way qdrouterd's schema does. Then a builder per implemented entity type reads the
 * validated values into its typed form and applies the checks that involve several attributes or
 * entities. Entity types without a builder become {@link GenericEntity}s.
 *
 * Extending: to type a new entity (say exchange), mark it and its attributes implemented in
 * schema.ts, add its interface in types.ts and a list to {@link RouterConfig}, and add a builder
 * to {@link ENTITY_BUILDERS}. Checks between entities of different types (an inter-router
 * listener needs an interior router; a linkRoute's connection is not another entity's name) run
 * once all entities are built: see {@link checkRouterMode} and {@link checkConnectionReferences}.
 */

import { randomBytes } from 'node:crypto';
import { ConfigError, configWarning, quote, type ConfigWarning } from '../../config/errors';
import { buildPolicySettings } from '../../policy/config';
import { parseSaslMechanisms, readConnectionLimits, readListenerAddress, readListenerSasl, type SaslMechanism } from '../../config/listener';
import { buildContext, warn, type BuildContext } from '../../config/context';
import { buildLog } from '../../config/log';
import { findDuplicateMatch, readMatch } from '../../config/match';
import { buildSslProfile } from '../../config/ssl-profile';
import { PLAIN_CONNECTOR, PLAIN_LISTENER } from '../../config/transport';
import type { RawEntity } from '../../config/raw-entity';
import { booleanValue, common, entitySchemaOf, integerValue, invalid, lineOf, optionalInteger as optionalIntegerValue, optionalString as optionalStringValue, refuseTogether, sourceOf, stringValue, validateEntity as validateAgainst, validateEntityList, type EntityTable, type ValidatedEntity } from '../../config/validate';
import { FAILOVER_URL_FORM, parseFailoverUrls } from './failover-urls';
import { ENTITY_SCHEMAS, NON_CONFIGURABLE_ENTITY_TYPES } from './schema';
import type {
  AddressDistribution,
  AddressEntity,
  AutoLinkEntity,
  ConfigValue,
  ConnectionRole,
  ConnectorEntity,
  ConnectorRole,
  FailoverUrl,
  GenericEntity,
  LinkDirection,
  LinkRouteEntity,
  ListenerEntity,
  ListenerRole,
  LogEntity,
  RouterConfig,
  RouterEntity,
  RouterMode,
  StripAnnotations,
} from './types';

export type { ValidatedEntity } from '../../config/validate';

/** Options of {@link validateEntities}. */
export interface ValidationOptions {
  /** Makes the router id when the configuration sets none; defaults to {@link generateRouterId}. */
  readonly generateRouterId?: (mode: RouterMode) => string;
}

const DEFAULT_LINK_CAPACITY = 250;
/** Mechanisms a connector may use (the SASL client implements no others). */
/** A connector authenticates with a password (PLAIN), its TLS client certificate (EXTERNAL) or not at all. */
const CONNECTOR_SASL_MECHANISMS: readonly SaslMechanism[] = ['ANONYMOUS', 'PLAIN', 'EXTERNAL'];

/**
 * The configuration types qdrouterd's router core keeps (not its Python agent): numbered
 * identities, names unique within each type, string attributes strictly strings.
 */
export const CORE_AGENT_TYPES: readonly string[] = ['address', 'linkRoute', 'autoLink', 'exchange', 'binding'];

/**
 * The router's entities: qdrouterd's, whose names are unique across all types but the core
 * agent's ({@link CORE_AGENT_TYPES}), unique within each of those.
 */
const ROUTER_TABLE: EntityTable = {
  schemas: ENTITY_SCHEMAS,
  whyNot: (type) => (Object.prototype.hasOwnProperty.call(NON_CONFIGURABLE_ENTITY_TYPES, type) ? NON_CONFIGURABLE_ENTITY_TYPES[type] : undefined),
  nameScope: 'global',
  perTypeNames: CORE_AGENT_TYPES,
};
/** qdrouterd's discriminator alphabet (64 characters, so a byte's low 6 bits pick one uniformly). */
const DISCRIMINATOR_ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+_';

/**
 * A router id the way qdrouterd 1.19 makes one when none is configured: the mode
 * (`Standalone_` or `Interior_`) followed by 15 random characters.
 */
export function generateRouterId(mode: RouterMode): string {
  const prefix = mode === 'interior' ? 'Interior_' : 'Standalone_';
  return prefix + Array.from(randomBytes(15), (byte) => DISCRIMINATOR_ALPHABET[byte & 63]).join('');
}

/**
 * Validates parsed entities and builds the typed configuration.
 * @param entities entities in file order, from any of the syntax parsers.
 * @param file the file name used in messages.
 * @throws ConfigError naming the file, the line and the valid choices.
 */
/** The start of the warning about an address that duplicates another's match (management refuses such a CREATE). */
export const DUPLICATE_ADDRESS = 'duplicate address';

export function validateEntities(entities: readonly RawEntity[], file: string, options: ValidationOptions = {}): RouterConfig {
  const context: RouterBuildContext = { ...buildContext(file), generateRouterId: options.generateRouterId ?? generateRouterId };
  const draft: ConfigDraft = { listeners: [], connectors: [], addresses: [], linkRoutes: [], autoLinks: [], logs: [], other: [] };
  const validated: ValidatedEntity[] = [];
  const nameOwners = validateEntityList(entities, file, ROUTER_TABLE, context.warnings, (entity) => {
    validated.push(entity);
    const type = entity.schema.type;
    const builder = Object.prototype.hasOwnProperty.call(ENTITY_BUILDERS, type) ? ENTITY_BUILDERS[type] : undefined;
    if (builder !== undefined) builder(entity, draft, context);
    else draft.other.push(buildGeneric(entity));
  });

  const router =
    draft.router ?? buildRouter(validateEntity({ type: 'router', line: 0, attributes: [] }, file, context.warnings), context);
  context.transports.link();
  checkRouterMode(router, [...draft.listeners, ...draft.connectors], file);
  checkConnectionReferences(draft, nameOwners, context);
  const { warnings: policyWarnings, ...policy } = buildPolicySettings(validated);
  for (const w of policyWarnings) context.warnings.push(configWarning('WARN_CONFIG_NO_EFFECT', w.file, w.line, w.reason));
  return {
    router,
    policy,
    listeners: draft.listeners,
    connectors: draft.connectors,
    addresses: draft.addresses,
    linkRoutes: draft.linkRoutes,
    autoLinks: draft.autoLinks,
    logs: draft.logs,
    sslProfiles: context.transports.sslProfiles,
    other: draft.other,
    warnings: context.warnings,
    entities: validated,
  };
}

/**
 * Checks one entity against the router's schema (see the shared validator, config/validate.ts).
 * @param warnings receives the warnings about this entity.
 * @throws ConfigError for an unknown entity or attribute, a bad value or a missing required attribute.
 */
export function validateEntity(raw: RawEntity, file: string, warnings: ConfigWarning[]): ValidatedEntity {
  return validateAgainst(raw, entitySchemaOf(raw, file, ROUTER_TABLE), file, warnings);
}

// ---------------------------------------------------------------------------------------------
// Builders: from validated entities to typed ones.

interface ConfigDraft {
  router?: RouterEntity;
  listeners: ListenerEntity[];
  connectors: ConnectorEntity[];
  addresses: AddressEntity[];
  linkRoutes: LinkRouteEntity[];
  autoLinks: AutoLinkEntity[];
  logs: LogEntity[];
  other: GenericEntity[];
}

interface RouterBuildContext extends BuildContext {
  readonly generateRouterId: (mode: RouterMode) => string;
}

type EntityBuilder = (entity: ValidatedEntity, draft: ConfigDraft, context: RouterBuildContext) => void;

/** Builders of the entity types amqp-mesh implements, by config-file type. */
const ENTITY_BUILDERS: { readonly [type: string]: EntityBuilder } = {
  router: (entity, draft, context) => {
    draft.router = buildRouter(entity, context);
  },
  listener: (entity, draft, context) => {
    draft.listeners.push(buildListener(entity, context));
  },
  connector: (entity, draft, context) => {
    draft.connectors.push(buildConnector(entity, context));
  },
  address: (entity, draft, context) => {
    // qdrouterd's agent refuses a second address for the same match ("Already Exists"), logs it
    // and goes on with the first: a file with one loads the same here, with a warning.
    const dup = findDuplicateMatch(entity, context.addressMatches);
    if (dup !== null) {
      warn(context, 'WARN_CONFIG_NO_EFFECT', entity.line, `${DUPLICATE_ADDRESS}: address ${dup.mine} matches the same addresses as the address on line ${dup.line} (${dup.description}); it is ignored, as qdrouterd ignores it`);
      return;
    }
    draft.addresses.push(buildAddress(entity, context));
  },
  linkRoute: (entity, draft) => {
    draft.linkRoutes.push(buildLinkRoute(entity));
  },
  autoLink: (entity, draft, context) => {
    draft.autoLinks.push(buildAutoLink(entity, context));
  },
  log: (entity, draft, context) => {
    draft.logs.push(buildLog(entity, context.logModules));
  },
  sslProfile: (entity, _draft, context) => {
    context.transports.addProfile(buildSslProfile(entity, context));
  },
};

function buildRouter(entity: ValidatedEntity, context: RouterBuildContext): RouterEntity {
  const mode = stringValue(entity, 'mode') as RouterMode;
  const configuredId = optionalStringValue(entity, 'id');
  if (configuredId !== undefined) {
    // qdrouterd's rule; the id travels in addresses and link names where whitespace breaks things.
    if (configuredId === '' || /[\s\p{Cc}]/u.test(configuredId)) {
      invalid(entity, 'id', 'ERR_CONFIG_INVALID_VALUE', `router id ${quote(configuredId)} must be non-empty, without whitespace or control characters`);
    }
  }
  if (mode === 'standalone') {
    // qdrouterd accepts them too; they only drive the routing protocol of interior routers.
    for (const name of ROUTER_PROTOCOL_INTERVALS) {
      const line = entity.attributeLines[name];
      if (line !== undefined) {
        warn(context, 'WARN_CONFIG_NO_EFFECT', line, `router ${name} has no effect in standalone mode; it applies to the routing protocol of interior routers (mode: interior)`);
      }
    }
  }
  return {
    type: 'router',
    id: configuredId ?? context.generateRouterId(mode),
    mode,
    workerThreads: integerValue(entity, 'workerThreads'),
    saslConfigDir: optionalStringValue(entity, 'saslConfigDir'),
    saslConfigName: stringValue(entity, 'saslConfigName'),
    helloIntervalSeconds: integerValue(entity, 'helloIntervalSeconds'),
    helloMaxAgeSeconds: integerValue(entity, 'helloMaxAgeSeconds'),
    raIntervalSeconds: integerValue(entity, 'raIntervalSeconds'),
    raIntervalFluxSeconds: integerValue(entity, 'raIntervalFluxSeconds'),
    remoteLsMaxAgeSeconds: integerValue(entity, 'remoteLsMaxAgeSeconds'),
    ...common(entity),
  };
}

/** The router attributes that time the routing protocol (interior mode only). */
const ROUTER_PROTOCOL_INTERVALS = [
  'helloIntervalSeconds',
  'helloMaxAgeSeconds',
  'raIntervalSeconds',
  'raIntervalFluxSeconds',
  'remoteLsMaxAgeSeconds',
] as const;

/** qdrouterd's words refusing a router's role on a standalone router (scripts match them). */
export const STANDALONE_REFUSAL = "role='standalone' not allowed to connect to or accept connections from other routers.";
/** qdrouterd's words refusing an inter-router listener or connector on an edge router. */
export const INTER_ROUTER_NOT_INTERIOR = "role='inter-router' only allowed with router mode='interior'";
/** qdrouterd's words refusing an edge listener on an edge router (edges do not connect to edges). */
export const EDGE_LISTENER_ON_EDGE = "role='edge' only allowed with router mode='interior'";

/**
 * qdrouterd's refusal of a listener or connector role the router's mode does not allow, or null:
 * a standalone router neither makes nor accepts router connections; only an interior router has
 * inter-router ones; an edge router accepts no edge connections (it makes them).
 */
export function computeRoleRefusal(mode: string, type: 'listener' | 'connector', role: unknown): string | null {
  if (mode === 'standalone' && (role === 'inter-router' || role === 'edge')) return STANDALONE_REFUSAL;
  if (mode !== 'interior' && role === 'inter-router') return INTER_ROUTER_NOT_INTERIOR;
  if (mode === 'edge' && type === 'listener' && role === 'edge') return EDGE_LISTENER_ON_EDGE;
  return null;
}

/**
 * qdrouterd's rules on which roles a router's mode allows ({@link computeRoleRefusal}), checked
 * once every entity is read, because the router section may come after the listeners and
 * connectors.
 * @throws ConfigError ERR_CONFIG_CONFLICT at the role line of the first listener or connector
 *   whose role the mode does not allow, in qdrouterd's words first, then ours.
 */
function checkRouterMode(router: RouterEntity, connections: ReadonlyArray<ListenerEntity | ConnectorEntity>, file: string): void {
  const byLine = [...connections].sort((a, b) => a.source.line - b.source.line);
  for (const c of byLine) {
    const refusal = computeRoleRefusal(router.mode, c.type, c.role);
    if (refusal === null) continue;
    const modeLine = router.source.attributeLines['mode'];
    const modeSource =
      modeLine !== undefined
        ? `set on line ${modeLine}`
        : router.source.line > 0
          ? `the default; the router section on line ${router.source.line} sets no mode`
          : 'the default; there is no router section';
    const why = router.mode === 'standalone'
      ? 'a standalone router does not connect to or accept connections from other routers; set mode: interior in the router section, or use role: normal'
      : c.role === 'inter-router'
        ? 'an edge router connects to the mesh through a connector with role: edge'
        : 'an edge router accepts no edge routers; they connect to interior routers';
    throw new ConfigError('ERR_CONFIG_CONFLICT', file, c.source.attributeLines['role'] ?? c.source.line,
      `${refusal} ${c.type} role "${c.role}" needs router mode "interior", but the router's mode is "${router.mode}" (${modeSource}): ${why}`);
  }
}

function buildListener(entity: ValidatedEntity, context: RouterBuildContext): ListenerEntity {
  const sasl = readListenerSasl(entity, (authenticate) => (authenticate ? ['PLAIN'] : ['ANONYMOUS']));
  const role = stringValue(entity, 'role') as ListenerRole;
  warnIfCostIgnored(entity, role, context);
  return context.transports.listener(entity, sasl, {
    type: 'listener',
    ...readListenerAddress(entity),
    role,
    cost: integerValue(entity, 'cost'),
    ...sasl,
    ...connectionLimits(entity),
    transport: PLAIN_LISTENER,
    ...withFailoverUrls(readFailoverUrls(entity)),
    ...(optionalStringValue(entity, 'policyVhost') !== undefined ? { policyVhost: optionalStringValue(entity, 'policyVhost') } : {}),
    multiTenant: booleanValue(entity, 'multiTenant'),
    ...common(entity),
  });
}

function withFailoverUrls(urls: FailoverUrl[] | undefined): { failoverUrls?: FailoverUrl[] } {
  return urls === undefined ? {} : { failoverUrls: urls };
}

function buildConnector(entity: ValidatedEntity, context: RouterBuildContext): ConnectorEntity {
  const host = stringValue(entity, 'host');
  if (host.trim() === '') {
    invalid(entity, 'host', 'ERR_CONFIG_INVALID_VALUE', `connector host ${quote(host)} is empty; expected a host name or IP address to connect to (default 127.0.0.1)`);
  }
  const port = integerValue(entity, 'port');
  if (port === 0) {
    invalid(entity, 'port', 'ERR_CONFIG_INVALID_VALUE', 'connector port 0 cannot be connected to; expected a number from 1 to 65535, "amqp" (5672) or "amqps" (5671)');
  }
  const configuredMechanisms = optionalStringValue(entity, 'saslMechanisms');
  const saslMechanisms = configuredMechanisms === undefined ? undefined : parseSaslMechanisms(entity, configuredMechanisms, CONNECTOR_SASL_MECHANISMS);
  const saslUsername = optionalStringValue(entity, 'saslUsername');
  const saslPassword = optionalStringValue(entity, 'saslPassword');
  if (saslUsername === '') {
    invalid(entity, 'saslUsername', 'ERR_CONFIG_INVALID_VALUE', 'connector saslUsername is empty; expected the user name for SASL PLAIN');
  }
  if (saslUsername !== undefined && saslPassword === undefined) {
    invalid(entity, 'saslUsername', 'ERR_CONFIG_CONFLICT', 'connector has saslUsername but no saslPassword; SASL PLAIN needs both: set saslPassword, or remove saslUsername');
  }
  if (saslPassword !== undefined && saslUsername === undefined) {
    invalid(entity, 'saslPassword', 'ERR_CONFIG_CONFLICT', 'connector has saslPassword but no saslUsername; SASL PLAIN needs both: set saslUsername, or remove saslPassword');
  }
  const hasCredentials = saslUsername !== undefined;
  if (saslMechanisms !== undefined && saslMechanisms.includes('PLAIN') && !hasCredentials) {
    invalid(
      entity,
      'saslMechanisms',
      'ERR_CONFIG_CONFLICT',
      `connector saslMechanisms ${quote(configuredMechanisms)} includes PLAIN, which needs saslUsername and saslPassword; set both, or use ANONYMOUS`,
    );
  }
  if (saslMechanisms !== undefined && !saslMechanisms.includes('PLAIN') && hasCredentials) {
    invalid(
      entity,
      'saslMechanisms',
      'ERR_CONFIG_CONFLICT',
      `connector has saslUsername and saslPassword but saslMechanisms ${quote(configuredMechanisms)} does not include PLAIN, so they would never be sent; add PLAIN, or remove them`,
    );
  }

  if (saslMechanisms !== undefined && saslMechanisms.includes('EXTERNAL') && optionalStringValue(entity, 'sslProfile') === undefined) {
    invalid(
      entity,
      'saslMechanisms',
      'ERR_CONFIG_CONFLICT',
      `connector saslMechanisms ${quote(configuredMechanisms)} includes EXTERNAL, which authenticates with a TLS client certificate; name an sslProfile with certFile and privateKeyFile`,
    );
  }

  const role = stringValue(entity, 'role') as ConnectorRole;
  warnIfCostIgnored(entity, role, context);
  const failoverUrls = readFailoverUrls(entity);
  if (failoverUrls !== undefined && role === 'inter-router') {
    warn(
      context,
      'WARN_CONFIG_ATTRIBUTE_NOT_IMPLEMENTED',
      lineOf(entity, 'failoverUrls'),
      `connector failoverUrls is accepted, not implemented by amqp-mesh for role "inter-router": only route-container connectors fail over; this one reconnects to ${host}:${port} only`,
    );
  }
  return context.transports.connector(entity, {
    type: 'connector',
    host,
    port,
    role,
    cost: integerValue(entity, 'cost'),
    ...(saslMechanisms !== undefined ? { saslMechanisms } : {}),
    ...(saslUsername !== undefined ? { saslUsername } : {}),
    ...(saslPassword !== undefined ? { saslPassword } : {}),
    ...connectionLimits(entity),
    ...(failoverUrls !== undefined ? { failoverUrls } : {}),
    ...(optionalStringValue(entity, 'policyVhost') !== undefined ? { policyVhost: optionalStringValue(entity, 'policyVhost') } : {}),
    transport: PLAIN_CONNECTOR,
    ...common(entity),
  });
}

/** A listener's or connector's failoverUrls, parsed as qdrouterd parses failover lists; undefined when not set. */
function readFailoverUrls(entity: ValidatedEntity): FailoverUrl[] | undefined {
  const written = optionalStringValue(entity, 'failoverUrls');
  if (written === undefined) return undefined;
  const parsed = parseFailoverUrls(written);
  if ('urls' in parsed) return parsed.urls;
  const { kind, reason } = parsed.problem;
  invalid(
    entity,
    'failoverUrls',
    kind === 'unsupported' ? 'ERR_CONFIG_NOT_SUPPORTED' : 'ERR_CONFIG_INVALID_VALUE',
    `${entity.schema.type} failoverUrls ${reason}; failoverUrls is a comma-separated list of ${FAILOVER_URL_FORM}`,
  );
}

/** What listeners and connectors share: frame, session, idle and credit limits, annotations. */
function connectionLimits(
  entity: ValidatedEntity,
): Pick<ListenerEntity, 'maxFrameSize' | 'maxSessions' | 'idleTimeoutSeconds' | 'linkCapacity' | 'stripAnnotations'> {
  const linkCapacity = integerValue(entity, 'linkCapacity');
  return {
    ...readConnectionLimits(entity),
    linkCapacity: linkCapacity === 0 ? DEFAULT_LINK_CAPACITY : linkCapacity,
    stripAnnotations: stringValue(entity, 'stripAnnotations') as StripAnnotations,
  };
}

/** As in qdrouterd, cost only applies to inter-router connections; say so when it is set elsewhere. */
function warnIfCostIgnored(entity: ValidatedEntity, role: ConnectionRole, context: RouterBuildContext): void {
  const line = entity.attributeLines['cost'];
  if (role === 'inter-router' || line === undefined) return;
  warn(context, 'WARN_CONFIG_NO_EFFECT', line, `${entity.schema.type} cost only applies to role "inter-router"; it has no effect with role "${role}"`);
}

function buildAddress(entity: ValidatedEntity, context: RouterBuildContext): AddressEntity {
  const match = readMatch(entity);

  const waypoint = booleanValue(entity, 'waypoint');
  const configuredIngress = optionalIntegerValue(entity, 'ingressPhase');
  const configuredEgress = optionalIntegerValue(entity, 'egressPhase');
  // qdrouterd: without phases, ingress 0 and egress 1 for a waypoint, else 0; a single phase leaves
  // the other at -1, which it refuses ("Phase values must be between 0 and 9").
  const defaultPhases = waypoint
    ? 'with neither, qdrouterd uses ingressPhase 0 and egressPhase 1, as waypoint is true'
    : 'with neither, qdrouterd uses ingressPhase 0 and egressPhase 0, or 1 with waypoint: true';
  if (configuredIngress !== undefined && configuredEgress === undefined) {
    invalid(entity, 'ingressPhase', 'ERR_CONFIG_MISSING_ATTRIBUTE', `address sets ingressPhase but not egressPhase; set both phases or neither (${defaultPhases})`);
  }
  if (configuredEgress !== undefined && configuredIngress === undefined) {
    invalid(entity, 'egressPhase', 'ERR_CONFIG_MISSING_ATTRIBUTE', `address sets egressPhase but not ingressPhase; set both phases or neither (${defaultPhases})`);
  }
  const ingressPhase = configuredIngress ?? 0;
  const egressPhase = configuredEgress ?? (waypoint ? 1 : 0);
  const enableFallback = booleanValue(entity, 'enableFallback');
  if (enableFallback) {
    const conflicts: string[] = [];
    if (waypoint) conflicts.push(`waypoint: true (line ${lineOf(entity, 'waypoint')})`);
    if (ingressPhase > 0) conflicts.push(`ingressPhase ${ingressPhase} (line ${lineOf(entity, 'ingressPhase')})`);
    if (egressPhase > 0 && configuredEgress !== undefined) conflicts.push(`egressPhase ${egressPhase} (line ${lineOf(entity, 'egressPhase')})`);
    if (conflicts.length > 0) {
      invalid(
        entity,
        'enableFallback',
        'ERR_CONFIG_CONFLICT',
        `address enableFallback: true cannot be combined with ${conflicts.join(' or ')}; as in qdrouterd, a fallback address has no waypoint and phases 0: remove one or the other`,
      );
    }
  }
  return {
    type: 'address',
    ...(match.prefix !== undefined ? { prefix: match.prefix } : { pattern: match.pattern }),
    distribution: stringValue(entity, 'distribution') as AddressDistribution,
    waypoint,
    ingressPhase,
    egressPhase,
    enableFallback,
    priority: integerValue(entity, 'priority'),
    ...common(entity),
  };
}

/** A linkRoute's or autoLink's connection or containerId: at most one, neither empty. */
function readConnectionTarget(entity: ValidatedEntity): { connection?: string; containerId?: string } {
  const type = entity.schema.type;
  const connection = optionalStringValue(entity, 'connection');
  const containerId = optionalStringValue(entity, 'containerId');
  if (connection !== undefined && containerId !== undefined) {
    refuseTogether(
      entity,
      'connection',
      'containerId',
      (connectionLine, containerLine) =>
        `Both connection and containerId cannot be specified: ${type} needs at most one of "connection" or "containerId"; it has both (connection on line ${connectionLine}, containerId on line ${containerLine}), which qdrouterd refuses too: keep one`,
    );
  }
  if (containerId === '') {
    invalid(entity, 'containerId', 'ERR_CONFIG_INVALID_VALUE', `${type} containerId is empty; expected the container id the route-container sends in its open frame`);
  }
  // An empty connection is reported by checkConnectionReferences, with the names that exist.
  return { ...(connection !== undefined ? { connection } : {}), ...(containerId !== undefined ? { containerId } : {}) };
}

function buildLinkRoute(entity: ValidatedEntity): LinkRouteEntity {
  const match = readMatch(entity);
  const addExternalPrefix = optionalStringValue(entity, 'addExternalPrefix');
  const delExternalPrefix = optionalStringValue(entity, 'delExternalPrefix');
  return {
    type: 'linkRoute',
    ...(match.prefix !== undefined ? { prefix: match.prefix } : { pattern: match.pattern }),
    ...(addExternalPrefix !== undefined ? { addExternalPrefix } : {}),
    ...(delExternalPrefix !== undefined ? { delExternalPrefix } : {}),
    direction: stringValue(entity, 'direction') as LinkDirection,
    ...readConnectionTarget(entity),
    distribution: stringValue(entity, 'distribution') as 'linkBalanced',
    ...common(entity),
  };
}

function buildAutoLink(entity: ValidatedEntity, context: RouterBuildContext): AutoLinkEntity {
  const address = stringValue(entity, 'address');
  if (address.trim() === '') {
    invalid(entity, 'address', 'ERR_CONFIG_INVALID_VALUE', `autoLink address ${quote(address)} is empty; expected the router address the link serves, such as "orders"`);
  }
  const externalAddress = optionalStringValue(entity, 'externalAddress');
  if (externalAddress !== undefined && externalAddress.trim() === '') {
    invalid(entity, 'externalAddress', 'ERR_CONFIG_INVALID_VALUE', `autoLink externalAddress ${quote(externalAddress)} is empty; remove it to use the address ${quote(address)} on the container`);
  }
  const direction = stringValue(entity, 'direction') as LinkDirection;
  const fallback = booleanValue(entity, 'fallback');
  const target = readConnectionTarget(entity);
  if (target.connection === undefined && target.containerId === undefined) {
    warn(
      context,
      'WARN_CONFIG_NO_EFFECT',
      entity.line,
      `autoLink for address ${quote(address)} has neither "connection" nor "containerId", so it is never attached (as in qdrouterd); set connection to the name of a route-container connector or listener`,
    );
  }
  return {
    type: 'autoLink',
    address,
    direction,
    // qdrouterd's default: phase 0 for outgoing (and fallback) auto-links, 1 for incoming ones.
    phase: optionalIntegerValue(entity, 'phase') ?? (direction === 'out' || fallback ? 0 : 1),
    ...target,
    ...(externalAddress !== undefined ? { externalAddress } : {}),
    fallback,
    ...common(entity),
  };
}

/**
 * A linkRoute's or autoLink's `connection` names a listener or connector, as in qdrouterd, which
 * binds it when a connection from a listener or connector of that name opens. One that no
 * listener or connector of this file has is accepted (an info, `INFO_CONFIG_CONNECTION_NOT_DEFINED`):
 * the same file serves every router of a mesh, and only the router with the connector activates
 * the route; a connector of that name added later by a reload activates it there. Checked once
 * every entity is read, so entities may come in any order. Refused: an empty name, and the name
 * of another entity (an address, an sslProfile...), which no connection can ever have. One whose
 * role is not route-container is accepted with a warning (qdrouterd only activates link routes
 * and auto-links on route-container connections).
 * @throws ConfigError ERR_CONFIG_INVALID_VALUE at the connection line, listing the names that exist.
 */
function checkConnectionReferences(
  draft: ConfigDraft,
  nameOwners: ReadonlyMap<string, { type: string; line: number }>,
  context: RouterBuildContext,
): void {
  const connections = [...draft.connectors, ...draft.listeners].sort((a, b) => a.source.line - b.source.line);
  const byName = new Map<string, ListenerEntity | ConnectorEntity>();
  for (const connection of connections) if (connection.name !== undefined) byName.set(connection.name, connection);
  const describe = (connection: ListenerEntity | ConnectorEntity) =>
    `${quote(connection.name)} (${connection.type}, role ${connection.role}, line ${connection.source.line})`;
  const routeContainers = [...byName.values()].filter((connection) => connection.role === 'route-container');
  const named = [...routeContainers, ...[...byName.values()].filter((connection) => connection.role !== 'route-container')];
  const referrers = [...draft.linkRoutes, ...draft.autoLinks].sort((a, b) => a.source.line - b.source.line);
  for (const referrer of referrers) {
    const name = referrer.connection;
    if (name === undefined) continue;
    const line = referrer.source.attributeLines['connection'] ?? referrer.source.line;
    const target = byName.get(name);
    if (target === undefined) {
      // Another entity's name, shared or of a type whose names are its own (an address's).
      const owner = nameOwners.get(name) ?? CORE_AGENT_TYPES.map((t) => nameOwners.get(`${t}\u0000${name}`)).find((o) => o !== undefined);
      if (name === '' || owner !== undefined) {
        const what = owner !== undefined ? `is the name of the ${owner.type} on line ${owner.line}, not of a connector or listener` : 'names no connector or listener';
        const known =
          named.length > 0
            ? `valid names: ${named.map(describe).join(', ')}`
            : 'this configuration has no named connector or listener: give the route-container connector or listener a name (name: broker) and use it here';
        throw new ConfigError('ERR_CONFIG_INVALID_VALUE', context.file, line, `${referrer.type} connection ${quote(name)} ${what}; ${known}`);
      }
      const known = named.length > 0 ? `this file names ${named.map(describe).join(', ')}` : 'this file names no connector or listener';
      warn(
        context,
        'INFO_CONFIG_CONNECTION_NOT_DEFINED',
        line,
        `${referrer.type} connection ${quote(name)} names no connector or listener of this router (${known}); ` +
          `it stays inactive until a route-container connection named ${quote(name)} opens (a connector added by a reload), as in qdrouterd`,
      );
      continue;
    }
    if (target.role !== 'route-container') {
      warn(
        context,
        'WARN_CONFIG_NO_EFFECT',
        line,
        `${referrer.type} connection ${quote(name)} is the ${target.type} on line ${target.source.line}, whose role is "${target.role}": ` +
          `link routes and auto-links only use route-container connections (in qdrouterd as in amqp-mesh), so this ${referrer.type} is never active; set role: route-container on that ${target.type}`,
      );
    }
  }
}

function buildGeneric(entity: ValidatedEntity): GenericEntity {
  const attributes: { [attributeName: string]: ConfigValue } = {};
  for (const [name, value] of entity.values) if (name !== 'name') attributes[name] = value;
  const name = optionalStringValue(entity, 'name');
  return { type: entity.schema.type, attributes, ...(name !== undefined ? { name } : {}), source: sourceOf(entity) };
}

