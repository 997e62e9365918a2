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
 * listener needs an interior router; a linkRoute's connection names a listener or connector) run
 * once all entities are built: see {@link checkRouterMode} and {@link checkConnectionReferences}.
 */

import { randomBytes } from 'node:crypto';
import { convertBoolean, convertPort, convertString, describeValue, toInteger } from '../../config/values';
import {
  ConfigError,
  configWarning,
  MAX_ATTRIBUTE_VALUE_BYTES,
  MAX_CONFIG_ENTITIES,
  quote,
  type ConfigErrorCode,
  type ConfigWarning,
  type ConfigWarningCode,
} from '../../config/errors';
import { FAILOVER_URL_FORM, parseFailoverUrls } from './failover-urls';
import { LOG_ENABLE_HELP, parseLogEnable } from './log-enable';
import { qdrouterdCamelCase, rawValueBytes, type RawEntity, type RawValue } from '../../config/raw-entity';
import {
  ENTITY_SCHEMAS,
  findAttributeSchema,
  findEntitySchema,
  NON_CONFIGURABLE_ENTITY_TYPES,
  supportedValues,
  type AttributeSchema,
  type EntitySchema,
} from './schema';
import type {
  AddressDistribution,
  AddressEntity,
  AutoLinkEntity,
  ConfigValue,
  ConnectionRole,
  ConnectorEntity,
  ConnectorRole,
  EntityCommon,
  EntitySource,
  FailoverUrl,
  GenericEntity,
  LinkDirection,
  LinkRouteEntity,
  ListenerEntity,
  ListenerRole,
  LogEntity,
  LogModule,
  RouterConfig,
  RouterEntity,
  RouterMode,
  SaslMechanism,
  StripAnnotations,
} from './types';

/** Options of {@link validateEntities}. */
export interface ValidationOptions {
  /** Makes the router id when the configuration sets none; defaults to {@link generateRouterId}. */
  readonly generateRouterId?: (mode: RouterMode) => string;
}

/** An entity checked against its schema: values converted, defaults filled in. */
export interface ValidatedEntity {
  readonly schema: EntitySchema;
  readonly file: string;
  readonly line: number;
  /** Every attribute with a value (set in the file or by default), by current name; status attributes excluded. */
  readonly values: ReadonlyMap<string, ConfigValue>;
  /** 1-based line of each attribute set in the file, by current name. */
  readonly attributeLines: { readonly [attributeName: string]: number };
}

const SASL_MECHANISMS: readonly SaslMechanism[] = ['ANONYMOUS', 'PLAIN'];
const DEFAULT_LINK_CAPACITY = 250;
const DEFAULT_MAX_SESSIONS = 32768;
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
export function validateEntities(entities: readonly RawEntity[], file: string, options: ValidationOptions = {}): RouterConfig {
  const tooMany = entities[MAX_CONFIG_ENTITIES];
  if (tooMany !== undefined) {
    throw new ConfigError(
      'ERR_CONFIG_TOO_MANY_ENTITIES',
      file,
      tooMany.line,
      `more than ${MAX_CONFIG_ENTITIES} entities; the limit is ${MAX_CONFIG_ENTITIES} entities per configuration`,
    );
  }
  const context: BuildContext = {
    file,
    warnings: [],
    generateRouterId: options.generateRouterId ?? generateRouterId,
    addressMatches: new Map(),
    logModules: new Map(),
  };
  const draft: ConfigDraft = { listeners: [], connectors: [], addresses: [], linkRoutes: [], autoLinks: [], logs: [], other: [] };
  const singletonLines = new Map<string, number>();
  const nameOwners = new Map<string, { type: string; line: number }>();

  for (const raw of entities) {
    const entity = validateEntity(raw, file, context.warnings);
    const { type, singleton } = entity.schema;
    if (singleton) {
      const firstLine = singletonLines.get(type);
      if (firstLine !== undefined) {
        throw new ConfigError('ERR_CONFIG_DUPLICATE', file, entity.line, `only one ${type} section is allowed (first on line ${firstLine})`);
      }
      singletonLines.set(type, entity.line);
    }
    const name = entity.values.get('name');
    if (typeof name === 'string') {
      // qdrouterd checks uniqueness of "name" across all entity types, not per type.
      const owner = nameOwners.get(name);
      if (owner !== undefined) {
        throw new ConfigError(
          'ERR_CONFIG_DUPLICATE',
          file,
          lineOf(entity, 'name'),
          `${type} name ${quote(name)} is already used by the ${owner.type} on line ${owner.line}; names must be unique`,
        );
      }
      nameOwners.set(name, { type, line: entity.line });
    }
    const builder = Object.prototype.hasOwnProperty.call(ENTITY_BUILDERS, type) ? ENTITY_BUILDERS[type] : undefined;
    if (builder !== undefined) builder(entity, draft, context);
    else draft.other.push(buildGeneric(entity));
  }

  const router =
    draft.router ?? buildRouter(validateEntity({ type: 'router', line: 0, attributes: [] }, file, context.warnings), context);
  checkRouterMode(router, [...draft.listeners, ...draft.connectors], file);
  checkConnectionReferences(draft, nameOwners, context);
  return {
    router,
    listeners: draft.listeners,
    connectors: draft.connectors,
    addresses: draft.addresses,
    linkRoutes: draft.linkRoutes,
    autoLinks: draft.autoLinks,
    logs: draft.logs,
    other: draft.other,
    warnings: context.warnings,
  };
}

/**
 * Checks one entity against its schema, the way qdrouterd's schema validation does, plus
 * amqp-mesh's ranges, unsupported values and size limits.
 * @param warnings receives the warnings about this entity.
 * @throws ConfigError for an unknown entity or attribute, a bad value or a missing required attribute.
 */
export function validateEntity(raw: RawEntity, file: string, warnings: ConfigWarning[]): ValidatedEntity {
  const typeName = qdrouterdCamelCase(raw.type);
  const schema = findEntitySchema(typeName);
  if (schema === undefined) {
    const readAs = typeName !== raw.type ? ` (read as "${typeName}")` : '';
    const validEntities = `valid entities: ${Object.keys(ENTITY_SCHEMAS).join(', ')}`;
    const reason = Object.prototype.hasOwnProperty.call(NON_CONFIGURABLE_ENTITY_TYPES, typeName)
      ? `"${raw.type}"${readAs} ${NON_CONFIGURABLE_ENTITY_TYPES[typeName]}; ${validEntities}`
      : `unknown entity "${raw.type}"${readAs}; ${validEntities}`;
    throw new ConfigError('ERR_CONFIG_UNKNOWN_ENTITY', file, raw.line, reason);
  }
  const type = schema.type;
  const warn = (code: ConfigWarningCode, line: number, reason: string) => warnings.push(configWarning(code, file, line, reason));
  if (schema.deprecated) warn('WARN_CONFIG_DEPRECATED', raw.line, `${type} is deprecated in qdrouterd`);
  if (!schema.implemented) {
    warn('WARN_CONFIG_ENTITY_NOT_IMPLEMENTED', raw.line, `${type} is accepted, not implemented yet by amqp-mesh: its settings have no effect`);
  }

  const values = new Map<string, ConfigValue>();
  const attributeLines: { [attributeName: string]: number } = {};
  const writtenNames = new Map<string, string>();
  for (const attribute of raw.attributes) {
    const key = qdrouterdCamelCase(attribute.name);
    const found = findAttributeSchema(schema, key);
    const fail: (code: ConfigErrorCode, reason: string) => never = (code, reason) => {
      throw new ConfigError(code, file, attribute.line, reason);
    };
    if (found === undefined) {
      const readAs = key !== attribute.name ? ` (read as "${key}")` : '';
      fail('ERR_CONFIG_UNKNOWN_ATTRIBUTE', `${type} has no attribute "${attribute.name}"${readAs}; valid attributes: ${settableAttributeNames(schema).join(', ')}`);
    }
    const { name, schema: attributeSchema, viaDeprecatedName } = found;
    const firstLine = attributeLines[name];
    if (firstLine !== undefined) {
      const firstWritten = writtenNames.get(name)!;
      fail(
        'ERR_CONFIG_DUPLICATE',
        firstWritten === attribute.name
          ? `${type} attribute "${name}" is set twice (first on line ${firstLine})`
          : `${type} attribute "${name}" is set twice, as "${attribute.name}" here and as "${firstWritten}" on line ${firstLine}`,
      );
    }
    attributeLines[name] = attribute.line;
    writtenNames.set(name, attribute.name);
    // Like qdrouterd, an explicit null (a YAML key without a value) means "not set".
    if (attribute.value === null) continue;

    const label = `${type} ${name}`;
    const size = rawValueBytes(attribute.value);
    if (size > MAX_ATTRIBUTE_VALUE_BYTES) {
      fail('ERR_CONFIG_VALUE_TOO_LARGE', `${label} value is ${size} bytes; the limit is ${MAX_ATTRIBUTE_VALUE_BYTES} bytes (64 KiB)`);
    }
    const value = convertValue(attribute.value, attributeSchema, label, fail, (code, reason) => warn(code, attribute.line, reason));

    if (viaDeprecatedName) warn('WARN_CONFIG_DEPRECATED', attribute.line, `${type} attribute "${attribute.name}" is deprecated; use "${name}"`);
    if (attributeSchema.deprecated) warn('WARN_CONFIG_DEPRECATED', attribute.line, `${type} attribute "${name}" is deprecated in qdrouterd`);
    if (attributeSchema.status === 'readOnly') {
      warn('WARN_CONFIG_READ_ONLY', attribute.line, `${type} attribute "${name}" is a status value in qdrouterd's schema; the configured value is ignored`);
      continue;
    }
    if (schema.implemented && attributeSchema.status === 'notImplemented') {
      warn('WARN_CONFIG_ATTRIBUTE_NOT_IMPLEMENTED', attribute.line, `${type} attribute "${name}" is accepted, not implemented by amqp-mesh`);
    }
    values.set(name, value);
  }

  for (const [name, attributeSchema] of Object.entries(schema.attributes)) {
    if (values.has(name) || attributeSchema.status === 'readOnly') continue;
    if (attributeSchema.default !== undefined) {
      const internalError = (_code: ConfigErrorCode, reason: string): never => {
        throw new Error(`amqp-mesh schema error: default of ${type} ${name}: ${reason}`);
      };
      values.set(name, convertValue(attributeSchema.default, attributeSchema, `${type} ${name}`, internalError, () => {}));
    } else if (attributeSchema.required) {
      const choices = attributeSchema.type === 'enum' ? `; expected one of ${supportedValues(attributeSchema).join(', ')}` : '';
      throw new ConfigError('ERR_CONFIG_MISSING_ATTRIBUTE', file, raw.line, `${type} is missing required attribute "${name}"${choices}`);
    }
  }
  return { schema, file, line: raw.line, values, attributeLines };
}

/** Attribute names to suggest: implemented ones first, then the rest; status attributes left out. */
function settableAttributeNames(schema: EntitySchema): string[] {
  const entries = Object.entries(schema.attributes).filter(([, attribute]) => attribute.status !== 'readOnly');
  return [
    ...entries.filter(([, attribute]) => attribute.status === 'implemented'),
    ...entries.filter(([, attribute]) => attribute.status !== 'implemented'),
  ].map(([name]) => name);
}

/** Converts a value to its schema type, as qdrouterd's schema types do, with amqp-mesh's range checks. */
function convertValue(
  value: RawValue,
  schema: AttributeSchema,
  label: string,
  fail: (code: ConfigErrorCode, reason: string) => never,
  warn: (code: ConfigWarningCode, reason: string) => void,
): ConfigValue {
  const shown = describeValue(value);
  switch (schema.type) {
    case 'string':
    case 'path':
      return convertString(value, label, fail);

    case 'integer': {
      const min = schema.min ?? 0;
      const max = schema.max ?? Number.MAX_SAFE_INTEGER;
      const expected = max === Number.MAX_SAFE_INTEGER ? `an integer of at least ${min}` : `an integer from ${min} to ${max}`;
      const integer = toInteger(value);
      if (integer === undefined) return fail('ERR_CONFIG_INVALID_VALUE', `${label} ${shown} is not an integer; expected ${expected}`);
      if (integer < min || integer > max) return fail('ERR_CONFIG_INVALID_VALUE', `${label} ${shown} is out of range; expected ${expected}`);
      return integer;
    }

    case 'boolean':
      return convertBoolean(value, label, fail);

    case 'enum': {
      const values = schema.values ?? [];
      const supported = supportedValues(schema);
      let tag = typeof value === 'string' && values.includes(value) ? value : undefined;
      if (tag === undefined) {
        // qdrouterd's EnumType also takes the index of a value.
        const index = toInteger(value);
        if (index !== undefined && index >= 0 && index < values.length) {
          tag = values[index]!;
          warn('WARN_CONFIG_ENUM_INDEX', `${label} ${shown} is read as "${tag}" (a numeric index); write "${tag}"`);
        }
      }
      if (tag === undefined) return fail('ERR_CONFIG_INVALID_VALUE', `${label} ${shown} is not one of ${supported.join(', ')}`);
      if (!supported.includes(tag)) {
        return fail('ERR_CONFIG_NOT_SUPPORTED', `${label} "${tag}" is not supported yet by amqp-mesh; supported: ${supported.join(', ')}`);
      }
      return tag;
    }

    case 'port':
      return convertPort(value, label, fail);

    case 'properties':
    case 'map': {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        return fail('ERR_CONFIG_INVALID_VALUE', `${label} ${shown} is not a map`);
      }
      if (schema.type === 'properties') {
        const nonAscii = Object.keys(value).find((key) => /[^\x00-\x7f]/.test(key));
        if (nonAscii !== undefined) {
          return fail('ERR_CONFIG_INVALID_VALUE', `${label} key ${quote(nonAscii)} is not ASCII; property keys are AMQP symbols`);
        }
      }
      return structuredClone(value) as ConfigValue;
    }
  }
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

interface BuildContext {
  readonly file: string;
  readonly warnings: ConfigWarning[];
  readonly generateRouterId: (mode: RouterMode) => string;
  /** Addresses by the normalised pattern they match, to refuse two configurations of the same addresses. */
  readonly addressMatches: Map<string, { line: number; description: string }>;
  /** First line of each configured log module. */
  readonly logModules: Map<string, number>;
}

type EntityBuilder = (entity: ValidatedEntity, draft: ConfigDraft, context: BuildContext) => void;

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
    draft.addresses.push(buildAddress(entity, context));
  },
  linkRoute: (entity, draft) => {
    draft.linkRoutes.push(buildLinkRoute(entity));
  },
  autoLink: (entity, draft, context) => {
    draft.autoLinks.push(buildAutoLink(entity, context));
  },
  log: (entity, draft, context) => {
    draft.logs.push(buildLog(entity, context));
  },
};

function buildRouter(entity: ValidatedEntity, context: BuildContext): RouterEntity {
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

/**
 * qdrouterd's rule: only an interior router may accept or make inter-router connections; a
 * standalone router does not connect to other routers. Checked once every entity is read,
 * because the router section may come after the listeners and connectors.
 * @throws ConfigError ERR_CONFIG_CONFLICT at the role line of the first inter-router listener or connector.
 */
function checkRouterMode(router: RouterEntity, connections: ReadonlyArray<ListenerEntity | ConnectorEntity>, file: string): void {
  if (router.mode === 'interior') return;
  let first: ListenerEntity | ConnectorEntity | undefined;
  for (const connection of connections) {
    if (connection.role === 'inter-router' && (first === undefined || connection.source.line < first.source.line)) first = connection;
  }
  if (first === undefined) return;
  const modeLine = router.source.attributeLines['mode'];
  const modeSource =
    modeLine !== undefined
      ? `set on line ${modeLine}`
      : router.source.line > 0
        ? `the default; the router section on line ${router.source.line} sets no mode`
        : 'the default; there is no router section';
  throw new ConfigError(
    'ERR_CONFIG_CONFLICT',
    file,
    first.source.attributeLines['role'] ?? first.source.line,
    `${first.type} role "inter-router" needs router mode "interior", but the router's mode is "${router.mode}" (${modeSource}): ` +
      `a standalone router does not connect to or accept connections from other routers; set mode: interior in the router section, or use role: normal`,
  );
}

function buildListener(entity: ValidatedEntity, context: BuildContext): ListenerEntity {
  const authenticatePeer = booleanValue(entity, 'authenticatePeer');
  const configuredMechanisms = optionalStringValue(entity, 'saslMechanisms');
  let saslMechanisms: SaslMechanism[];
  if (configuredMechanisms === undefined) {
    saslMechanisms = authenticatePeer ? ['PLAIN'] : ['ANONYMOUS'];
  } else {
    saslMechanisms = parseSaslMechanisms(entity, configuredMechanisms);
    if (authenticatePeer && !saslMechanisms.includes('PLAIN')) {
      invalid(
        entity,
        'saslMechanisms',
        'ERR_CONFIG_CONFLICT',
        `listener has authenticatePeer: true but saslMechanisms ${quote(configuredMechanisms)} has no mechanism that authenticates; add PLAIN`,
      );
    }
  }
  // Running in plain text what the operator meant to be encrypted would be worse than refusing.
  for (const tls of ['sslProfile', 'requireSsl', 'requireEncryption', 'http'] as const) {
    const v = entity.values.get(tls);
    if (v === undefined || v === false || v === '') continue;
    invalid(entity, tls, 'ERR_CONFIG_NOT_SUPPORTED', `listener ${tls} is not supported yet by amqp-mesh (no TLS or HTTP listeners yet); remove it to listen in plain AMQP`);
  }
  const role = stringValue(entity, 'role') as ListenerRole;
  warnIfCostIgnored(entity, role, context);
  return {
    type: 'listener',
    host: stringValue(entity, 'host'),
    port: integerValue(entity, 'port'),
    role,
    cost: integerValue(entity, 'cost'),
    authenticatePeer,
    saslMechanisms,
    ...connectionLimits(entity),
    ...common(entity),
  };
}

function buildConnector(entity: ValidatedEntity, context: BuildContext): ConnectorEntity {
  const host = stringValue(entity, 'host');
  if (host.trim() === '') {
    invalid(entity, 'host', 'ERR_CONFIG_INVALID_VALUE', `connector host ${quote(host)} is empty; expected a host name or IP address to connect to (default 127.0.0.1)`);
  }
  const port = integerValue(entity, 'port');
  if (port === 0) {
    invalid(entity, 'port', 'ERR_CONFIG_INVALID_VALUE', 'connector port 0 cannot be connected to; expected a number from 1 to 65535, "amqp" (5672) or "amqps" (5671)');
  }
  // Connecting in plain text where TLS was meant would be worse than refusing, as for listeners.
  const sslProfile = entity.values.get('sslProfile');
  if (sslProfile !== undefined && sslProfile !== '') {
    invalid(entity, 'sslProfile', 'ERR_CONFIG_NOT_SUPPORTED', 'connector sslProfile is not supported yet by amqp-mesh (no TLS connectors yet); remove it to connect in plain AMQP');
  }
  // verifyHostname defaults to true in qdrouterd's schema; only a value written in the file asks for TLS.
  if (entity.attributeLines['verifyHostname'] !== undefined && entity.values.get('verifyHostname') === true) {
    invalid(
      entity,
      'verifyHostname',
      'ERR_CONFIG_NOT_SUPPORTED',
      'connector verifyHostname is not supported yet by amqp-mesh (no TLS connectors yet); remove it, or set it to false, to connect in plain AMQP',
    );
  }

  const configuredMechanisms = optionalStringValue(entity, 'saslMechanisms');
  const saslMechanisms = configuredMechanisms === undefined ? undefined : parseSaslMechanisms(entity, configuredMechanisms);
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

  const role = stringValue(entity, 'role') as ConnectorRole;
  if (role === 'normal') {
    warn(
      context,
      'WARN_CONFIG_ENTITY_NOT_IMPLEMENTED',
      lineOf(entity, 'role'),
      `connector role "normal" is accepted, not implemented yet by amqp-mesh: only inter-router and route-container connectors connect; this one will not`,
    );
  }
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
  return {
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
    ...common(entity),
  };
}

/** A connector's failoverUrls, parsed as qdrouterd parses failover lists; undefined when not set. */
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

/** A space- (or comma-) separated list of SASL mechanisms, upper-cased, without repeats. */
function parseSaslMechanisms(entity: ValidatedEntity, written: string): SaslMechanism[] {
  const type = entity.schema.type;
  const names = written.split(/[\s,]+/).filter((name) => name !== '');
  if (names.length === 0) {
    invalid(entity, 'saslMechanisms', 'ERR_CONFIG_INVALID_VALUE', `${type} saslMechanisms is empty; expected a space-separated list of ${SASL_MECHANISMS.join(', ')}`);
  }
  const mechanisms: SaslMechanism[] = [];
  for (const name of names) {
    const mechanism = SASL_MECHANISMS.find((known) => known === name.toUpperCase());
    if (mechanism === undefined) {
      invalid(entity, 'saslMechanisms', 'ERR_CONFIG_NOT_SUPPORTED', `${type} saslMechanisms ${quote(name)} is not supported by amqp-mesh; supported: ${SASL_MECHANISMS.join(', ')}`);
    }
    if (!mechanisms.includes(mechanism)) mechanisms.push(mechanism);
  }
  return mechanisms;
}

/** What listeners and connectors share: frame, session, idle and credit limits, annotations. */
function connectionLimits(
  entity: ValidatedEntity,
): Pick<ListenerEntity, 'maxFrameSize' | 'maxSessions' | 'idleTimeoutSeconds' | 'linkCapacity' | 'stripAnnotations'> {
  const maxSessions = integerValue(entity, 'maxSessions');
  const linkCapacity = integerValue(entity, 'linkCapacity');
  return {
    maxFrameSize: integerValue(entity, 'maxFrameSize'),
    maxSessions: maxSessions === 0 ? DEFAULT_MAX_SESSIONS : maxSessions,
    idleTimeoutSeconds: integerValue(entity, 'idleTimeoutSeconds'),
    linkCapacity: linkCapacity === 0 ? DEFAULT_LINK_CAPACITY : linkCapacity,
    stripAnnotations: stringValue(entity, 'stripAnnotations') as StripAnnotations,
  };
}

/** As in qdrouterd, cost only applies to inter-router connections; say so when it is set elsewhere. */
function warnIfCostIgnored(entity: ValidatedEntity, role: ConnectionRole, context: BuildContext): void {
  const line = entity.attributeLines['cost'];
  if (role === 'inter-router' || line === undefined) return;
  warn(context, 'WARN_CONFIG_NO_EFFECT', line, `${entity.schema.type} cost only applies to role "inter-router"; it has no effect with role "${role}"`);
}

/** The prefix or pattern of an address or linkRoute (exactly one, with tokens), and its normalised match. */
function readMatch(entity: ValidatedEntity): { prefix: string; pattern?: undefined; matchKey: string } | { prefix?: undefined; pattern: string; matchKey: string } {
  const type = entity.schema.type;
  const prefix = optionalStringValue(entity, 'prefix');
  const pattern = optionalStringValue(entity, 'pattern');
  if (prefix === undefined && pattern === undefined) {
    throw new ConfigError('ERR_CONFIG_MISSING_ATTRIBUTE', entity.file, entity.line, `${type} needs exactly one of "prefix" or "pattern"; it has neither`);
  }
  if (prefix !== undefined && pattern !== undefined) {
    const [prefixLine, patternLine] = [lineOf(entity, 'prefix'), lineOf(entity, 'pattern')];
    throw new ConfigError(
      'ERR_CONFIG_CONFLICT',
      entity.file,
      Math.max(prefixLine, patternLine),
      `${type} needs exactly one of "prefix" or "pattern"; it has both (prefix on line ${prefixLine}, pattern on line ${patternLine})`,
    );
  }
  const attribute = prefix !== undefined ? 'prefix' : 'pattern';
  const written = (prefix ?? pattern)!;
  // Tokens are separated by "." or "/"; qdrouterd ignores separators at either end.
  const tokens = written.replace(/^[./]+|[./]+$/g, '');
  if (tokens === '') {
    invalid(entity, attribute, 'ERR_CONFIG_INVALID_VALUE', `${type} ${attribute} ${quote(written)} has no tokens; expected something like "orders" or "orders.*"`);
  }
  // A prefix matches what the pattern "prefix/#" matches (qdrouterd turns the one into the other).
  const matchKey = tokens.replace(/\./g, '/') + (prefix !== undefined ? '/#' : '');
  return prefix !== undefined ? { prefix, matchKey } : { pattern: pattern!, matchKey };
}

function buildAddress(entity: ValidatedEntity, context: BuildContext): AddressEntity {
  const match = readMatch(entity);
  const attribute = match.prefix !== undefined ? 'prefix' : 'pattern';
  const description = `${attribute} ${quote(match.prefix ?? match.pattern)}`;
  // qdrouterd refuses a second address entry for the same match.
  const earlier = context.addressMatches.get(match.matchKey);
  if (earlier !== undefined) {
    invalid(entity, attribute, 'ERR_CONFIG_DUPLICATE', `address ${description} matches the same addresses as the address on line ${earlier.line} (${earlier.description})`);
  }
  context.addressMatches.set(match.matchKey, { line: entity.line, description });

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
    ...common(entity),
  };
}

/** A linkRoute's or autoLink's connection or containerId: at most one, neither empty. */
function readConnectionTarget(entity: ValidatedEntity): { connection?: string; containerId?: string } {
  const type = entity.schema.type;
  const connection = optionalStringValue(entity, 'connection');
  const containerId = optionalStringValue(entity, 'containerId');
  if (connection !== undefined && containerId !== undefined) {
    const [connectionLine, containerLine] = [lineOf(entity, 'connection'), lineOf(entity, 'containerId')];
    throw new ConfigError(
      'ERR_CONFIG_CONFLICT',
      entity.file,
      Math.max(connectionLine, containerLine),
      `${type} needs at most one of "connection" or "containerId"; it has both (connection on line ${connectionLine}, containerId on line ${containerLine}), which qdrouterd refuses too: keep one`,
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

function buildAutoLink(entity: ValidatedEntity, context: BuildContext): AutoLinkEntity {
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
 * A linkRoute's or autoLink's `connection` must be the name of a listener or connector of this
 * configuration (qdrouterd would wait for one forever); one whose role is not route-container is
 * accepted with a warning, since qdrouterd only activates link routes and auto-links on
 * route-container connections. Checked once every entity is read: the connector may come later.
 * @throws ConfigError ERR_CONFIG_INVALID_VALUE at the connection line, listing the names that exist.
 */
function checkConnectionReferences(
  draft: ConfigDraft,
  nameOwners: ReadonlyMap<string, { type: string; line: number }>,
  context: BuildContext,
): void {
  const connections = [...draft.connectors, ...draft.listeners].sort((a, b) => a.source.line - b.source.line);
  const byName = new Map<string, ListenerEntity | ConnectorEntity>();
  for (const connection of connections) if (connection.name !== undefined) byName.set(connection.name, connection);
  const describe = (connection: ListenerEntity | ConnectorEntity) =>
    `${quote(connection.name)} (${connection.type}, role ${connection.role}, line ${connection.source.line})`;
  const referrers = [...draft.linkRoutes, ...draft.autoLinks].sort((a, b) => a.source.line - b.source.line);
  for (const referrer of referrers) {
    const name = referrer.connection;
    if (name === undefined) continue;
    const line = referrer.source.attributeLines['connection'] ?? referrer.source.line;
    const target = byName.get(name);
    if (target === undefined) {
      const owner = nameOwners.get(name);
      const what = owner !== undefined ? `is the name of the ${owner.type} on line ${owner.line}, not of a connector or listener` : 'names no connector or listener';
      const routeContainers = [...byName.values()].filter((connection) => connection.role === 'route-container');
      const named = [...routeContainers, ...[...byName.values()].filter((connection) => connection.role !== 'route-container')];
      const known =
        named.length > 0
          ? `valid names: ${named.map(describe).join(', ')}`
          : 'this configuration has no named connector or listener: give the route-container connector or listener a name (name: broker) and use it here';
      throw new ConfigError('ERR_CONFIG_INVALID_VALUE', context.file, line, `${referrer.type} connection ${quote(name)} ${what}; ${known}`);
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

function buildLog(entity: ValidatedEntity, context: BuildContext): LogEntity {
  const module = stringValue(entity, 'module') as LogModule;
  const firstLine = context.logModules.get(module);
  if (firstLine !== undefined) {
    invalid(entity, 'module', 'ERR_CONFIG_DUPLICATE', `log module "${module}" is configured twice (first on line ${firstLine})`);
  }
  context.logModules.set(module, entity.line);
  const isDefaultModule = module === 'DEFAULT';
  // qdrouterd's defaults for the DEFAULT module; the other modules inherit what they do not set.
  const enable = optionalStringValue(entity, 'enable') ?? (isDefaultModule ? 'info+' : 'default');
  const enabledLevels = parseLogEnable(enable);
  if (enabledLevels === undefined) {
    invalid(entity, 'enable', 'ERR_CONFIG_INVALID_VALUE', `log enable ${quote(enable)} is not valid; expected ${LOG_ENABLE_HELP}`);
  }
  if (enabledLevels === 'default' && isDefaultModule) {
    invalid(entity, 'enable', 'ERR_CONFIG_INVALID_VALUE', 'log enable "default" cannot be used for the DEFAULT module; expected levels such as "info+"');
  }
  const includeTimestamp = optionalBooleanValue(entity, 'includeTimestamp') ?? (isDefaultModule ? true : undefined);
  const includeSource = optionalBooleanValue(entity, 'includeSource') ?? (isDefaultModule ? false : undefined);
  const outputFile = optionalStringValue(entity, 'outputFile') ?? (isDefaultModule ? 'stderr' : undefined);
  return {
    type: 'log',
    module,
    enable,
    enabledLevels: enabledLevels!,
    ...(includeTimestamp !== undefined ? { includeTimestamp } : {}),
    ...(includeSource !== undefined ? { includeSource } : {}),
    ...(outputFile !== undefined ? { outputFile } : {}),
    ...common(entity),
  };
}

function buildGeneric(entity: ValidatedEntity): GenericEntity {
  const attributes: { [attributeName: string]: ConfigValue } = {};
  for (const [name, value] of entity.values) if (name !== 'name') attributes[name] = value;
  const name = optionalStringValue(entity, 'name');
  return { type: entity.schema.type, attributes, ...(name !== undefined ? { name } : {}), source: sourceOf(entity) };
}

// ---------------------------------------------------------------------------------------------
// Reading validated values. Validation guarantees the types, so a mismatch is a bug here.

function common(entity: ValidatedEntity): EntityCommon {
  const unimplemented: { [attributeName: string]: ConfigValue } = {};
  for (const [name, value] of entity.values) {
    if (entity.attributeLines[name] !== undefined && entity.schema.attributes[name]?.status === 'notImplemented') {
      unimplemented[name] = value;
    }
  }
  const name = optionalStringValue(entity, 'name');
  return { ...(name !== undefined ? { name } : {}), unimplemented, source: sourceOf(entity) };
}

function sourceOf(entity: ValidatedEntity): EntitySource {
  return { file: entity.file, line: entity.line, attributeLines: { ...entity.attributeLines } };
}

function warn(context: BuildContext, code: ConfigWarningCode, line: number, reason: string): void {
  context.warnings.push(configWarning(code, context.file, line, reason));
}

function lineOf(entity: ValidatedEntity, attribute: string): number {
  return entity.attributeLines[attribute] ?? entity.line;
}

function invalid(entity: ValidatedEntity, attribute: string, code: ConfigErrorCode, reason: string): never {
  throw new ConfigError(code, entity.file, lineOf(entity, attribute), reason);
}

function optionalValueOfType<T>(entity: ValidatedEntity, name: string, type: 'string' | 'number' | 'boolean'): T | undefined {
  const value = entity.values.get(name);
  if (value === undefined) return undefined;
  if (typeof value !== type) throw new Error(`amqp-mesh config: ${entity.schema.type} ${name} is ${typeof value}, not ${type}`);
  return value as T;
}

function requiredValue<T>(entity: ValidatedEntity, name: string, value: T | undefined): T {
  if (value === undefined) throw new Error(`amqp-mesh config: ${entity.schema.type} ${name} has no value and no default`);
  return value;
}

function optionalStringValue(entity: ValidatedEntity, name: string): string | undefined {
  return optionalValueOfType<string>(entity, name, 'string');
}
function optionalBooleanValue(entity: ValidatedEntity, name: string): boolean | undefined {
  return optionalValueOfType<boolean>(entity, name, 'boolean');
}
function optionalIntegerValue(entity: ValidatedEntity, name: string): number | undefined {
  return optionalValueOfType<number>(entity, name, 'number');
}
function stringValue(entity: ValidatedEntity, name: string): string {
  return requiredValue(entity, name, optionalStringValue(entity, name));
}
function integerValue(entity: ValidatedEntity, name: string): number {
  return requiredValue(entity, name, optionalIntegerValue(entity, name));
}
function booleanValue(entity: ValidatedEntity, name: string): boolean {
  return requiredValue(entity, name, optionalBooleanValue(entity, name));
}
