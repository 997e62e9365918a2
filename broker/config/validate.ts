/**
 * Validation of a broker configuration: from the syntax-neutral entities router/config's
 * parsers produce to a typed {@link BrokerConfig}.
 *
 * As in the router (router/config/validate.ts), two stages: a generic check of each entity
 * against its schema (names, types, ranges, enumerations, defaults, required attributes, size
 * limits), then a builder per entity type for checks involving several attributes. `log`
 * entities are handed to the router's validator whole, so they behave exactly as in a router file.
 * Errors are the router's {@link ConfigError}s with the same codes and message layout.
 */

import { randomBytes } from 'node:crypto';
import { convertBoolean, convertPort, convertString, describeValue, toInteger } from '../../config/values';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import {
  ConfigError,
  findEntitySchema,
  MAX_ATTRIBUTE_VALUE_BYTES,
  MAX_CONFIG_ENTITIES,
  qdrouterdCamelCase,
  validateEntities,
  type ConfigErrorCode,
  type ConfigWarning,
  type EntitySource,
  type LogEntity,
  type RawEntity,
  type RawValue,
  type SaslMechanism,
} from '../../router/config';
import { configWarning, quote } from '../../config/errors';
import { rawValueBytes } from '../../config/raw-entity';
import { matchAddress } from './match';
import {
  BROKER_ENTITY_SCHEMAS,
  BROKER_ENTITY_TYPES,
  DEFAULT_MAX_MESSAGE_SIZE,
  DEFAULT_MAX_SESSIONS,
  findBrokerEntitySchema,
  type BrokerAttributeSchema,
  type BrokerEntitySchema,
} from './schema';
import type {
  AddressFullPolicy,
  BrokerAddress,
  BrokerConfig,
  BrokerEntity,
  BrokerListener,
  BrokerQueue,
  RoutingType,
} from './types';

/** Options of {@link validateBrokerEntities}. */
export interface BrokerValidationOptions {
  /** Makes the broker id when the configuration sets none; defaults to {@link generateBrokerId}. */
  readonly generateBrokerId?: () => string;
}

type Value = string | number | boolean;

/** A broker entity checked against its schema: values converted, defaults filled in. */
interface ValidatedEntity {
  readonly schema: BrokerEntitySchema;
  readonly file: string;
  readonly line: number;
  /** Every attribute with a value (set in the file or by default), by name. */
  readonly values: ReadonlyMap<string, Value>;
  /** 1-based line of each attribute set in the file, by name. */
  readonly attributeLines: { readonly [attributeName: string]: number };
}

const SASL_MECHANISMS: readonly SaslMechanism[] = ['ANONYMOUS', 'PLAIN'];
const VALID_ENTITIES = `valid entities: ${BROKER_ENTITY_TYPES.join(', ')}`;

/** A broker id: `broker-<hostname>-<12 random hex digits>`, the host name reduced to characters safe in addresses. */
export function generateBrokerId(): string {
  const host = os.hostname().replace(/[^A-Za-z0-9_-]+/g, '_') || 'localhost';
  return `broker-${host}-${randomBytes(6).toString('hex')}`;
}

/**
 * Validates parsed entities and builds the typed broker configuration.
 * @param entities entities in file order, from any of router/config's syntax parsers.
 * @param file the file name used in messages; relative dataDir paths resolve against its directory.
 * @throws ConfigError naming the file, the line and the valid choices.
 */
export function validateBrokerEntities(entities: readonly RawEntity[], file: string, options: BrokerValidationOptions = {}): BrokerConfig {
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
    generateBrokerId: options.generateBrokerId ?? generateBrokerId,
    addressMatches: new Map(),
    logModules: new Map(),
    queueNames: new Map(),
  };
  let broker: BrokerEntity | undefined;
  const listeners: BrokerListener[] = [];
  const addresses: BrokerAddress[] = [];
  const queues: QueueDraft[] = [];
  const logs: LogEntity[] = [];
  // Names are unique per entity type (a queue's name is its identity; other names label entities in messages).
  const nameOwners = new Map<string, number>();
  const checkName = (type: string, name: string | undefined, line: number) => {
    if (name === undefined) return;
    const key = `${type}\u0000${name}`;
    const first = nameOwners.get(key);
    if (first !== undefined) {
      throw new ConfigError('ERR_CONFIG_DUPLICATE', file, line, `${type} name ${quote(name)} is already used by the ${type} on line ${first}; ${type} names must be unique`);
    }
    nameOwners.set(key, line);
  };

  for (const raw of entities) {
    const type = qdrouterdCamelCase(raw.type);
    if (type === 'log') {
      const log = buildLog(raw, context);
      checkName('log', log.name, log.source.attributeLines['name'] ?? log.source.line);
      logs.push(log);
      continue;
    }
    const schema = findBrokerEntitySchema(type);
    if (schema === undefined) throw unknownEntity(raw, type, file);
    const entity = validateBrokerEntity(raw, schema, file);
    // A queue's name is its identity: buildQueue checks it.
    if (type !== 'queue') checkName(type, optionalString(entity, 'name'), lineOf(entity, 'name'));
    switch (type) {
      case 'broker':
        if (broker !== undefined) {
          throw new ConfigError('ERR_CONFIG_DUPLICATE', file, entity.line, `only one broker section is allowed (first on line ${broker.source.line})`);
        }
        broker = buildBroker(entity, context);
        break;
      case 'listener':
        listeners.push(buildListener(entity));
        break;
      case 'address':
        addresses.push(buildAddress(entity, context));
        break;
      case 'queue':
        queues.push(buildQueue(entity, context));
        break;
    }
  }

  broker ??= buildBroker(validateBrokerEntity({ type: 'broker', line: 0, attributes: [] }, BROKER_ENTITY_SCHEMAS['broker']!, file), context);
  for (const queue of queues) {
    if (!broker.persistent && queue.source.attributeLines['durable'] !== undefined && queue.durable) {
      warn(context, queue.source.attributeLines['durable']!, `queue durable has no effect with broker persistent: false; nothing is kept across restarts`);
    }
  }
  return {
    broker,
    listeners,
    addresses,
    // Queues that do not say their routing type take that of their address, wherever the address entity is in the file.
    queues: queues.map((queue) => ({ ...queue, routingType: queue.routingType ?? matchAddress(addresses, queue.address).routingType })),
    logs,
    warnings: context.warnings.sort((a, b) => a.line - b.line),
    file,
  };
}

function unknownEntity(raw: RawEntity, type: string, file: string): ConfigError {
  const readAs = type !== raw.type ? ` (read as "${type}")` : '';
  const reason =
    findEntitySchema(type) !== undefined
      ? `"${raw.type}"${readAs} is a router entity, not a broker one (is this a router configuration?); ${VALID_ENTITIES}`
      : `unknown entity "${raw.type}"${readAs}; ${VALID_ENTITIES}`;
  return new ConfigError('ERR_CONFIG_UNKNOWN_ENTITY', file, raw.line, reason);
}

/**
 * Checks one entity against its schema.
 * @throws ConfigError for an unknown or repeated attribute, a bad value or a missing required attribute.
 */
function validateBrokerEntity(raw: RawEntity, schema: BrokerEntitySchema, file: string): ValidatedEntity {
  const type = schema.type;
  const values = new Map<string, Value>();
  const attributeLines: { [attributeName: string]: number } = {};
  const writtenNames = new Map<string, string>();
  for (const attribute of raw.attributes) {
    const name = qdrouterdCamelCase(attribute.name);
    const fail = (code: ConfigErrorCode, reason: string): never => {
      throw new ConfigError(code, file, attribute.line, reason);
    };
    if (!Object.prototype.hasOwnProperty.call(schema.attributes, name)) {
      const readAs = name !== attribute.name ? ` (read as "${name}")` : '';
      fail('ERR_CONFIG_UNKNOWN_ATTRIBUTE', `${type} has no attribute "${attribute.name}"${readAs}; valid attributes: ${Object.keys(schema.attributes).join(', ')}`);
    }
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
    // As in the router: an explicit null (a YAML key without a value) means "not set".
    if (attribute.value === null) continue;
    const label = `${type} ${name}`;
    const size = rawValueBytes(attribute.value);
    if (size > MAX_ATTRIBUTE_VALUE_BYTES) {
      fail('ERR_CONFIG_VALUE_TOO_LARGE', `${label} value is ${size} bytes; the limit is ${MAX_ATTRIBUTE_VALUE_BYTES} bytes (64 KiB)`);
    }
    values.set(name, convertValue(attribute.value, schema.attributes[name]!, label, fail));
  }
  for (const [name, attributeSchema] of Object.entries(schema.attributes)) {
    if (values.has(name)) continue;
    if (attributeSchema.default !== undefined) {
      values.set(name, convertValue(attributeSchema.default, attributeSchema, `${type} ${name}`, (_code, reason) => {
        throw new Error(`amqp-mesh broker schema error: default of ${type} ${name}: ${reason}`);
      }));
    } else if (attributeSchema.required) {
      const choices = attributeSchema.type === 'enum' ? `; expected one of ${attributeSchema.values!.join(', ')}` : '';
      throw new ConfigError('ERR_CONFIG_MISSING_ATTRIBUTE', file, raw.line, `${type} is missing required attribute "${name}"${choices}`);
    }
  }
  return { schema, file, line: raw.line, values, attributeLines };
}

/** Converts a value to its schema type the way the router's validator does. */
function convertValue(value: RawValue, schema: BrokerAttributeSchema, label: string, fail: (code: ConfigErrorCode, reason: string) => never): Value {
  const shown = describeValue(value);
  switch (schema.type) {
    case 'string':
    case 'path':
      return convertString(value, label, fail);

    case 'integer': {
      const min = schema.min ?? 0;
      const max = schema.max ?? Number.MAX_SAFE_INTEGER;
      const range = max === Number.MAX_SAFE_INTEGER ? `an integer of at least ${min}` : `an integer from ${min} to ${max}`;
      const expected = schema.minusOne !== undefined ? `-1 (${schema.minusOne}) or ${range}` : range;
      const integer = toInteger(value);
      if (integer === undefined) return fail('ERR_CONFIG_INVALID_VALUE', `${label} ${shown} is not an integer; expected ${expected}`);
      if (schema.minusOne !== undefined && integer === -1) return integer;
      if (integer < min || integer > max) return fail('ERR_CONFIG_INVALID_VALUE', `${label} ${shown} is out of range; expected ${expected}`);
      return integer;
    }

    case 'boolean':
      return convertBoolean(value, label, fail);

    case 'enum': {
      const values = schema.values ?? [];
      const written = typeof value === 'string' ? value.trim() : undefined;
      const tag =
        written === undefined
          ? undefined
          : values.find((candidate) => (schema.caseInsensitive ? candidate.toLowerCase() === written.toLowerCase() : candidate === written));
      if (tag === undefined) return fail('ERR_CONFIG_INVALID_VALUE', `${label} ${shown} is not one of ${values.join(', ')}`);
      return tag;
    }

    case 'port':
      return convertPort(value, label, fail);
  }
}


// ---------------------------------------------------------------------------------------------
// Builders

interface BuildContext {
  readonly file: string;
  readonly warnings: ConfigWarning[];
  readonly generateBrokerId: () => string;
  /** Addresses by the normalised pattern they match, to refuse two settings for the same addresses. */
  readonly addressMatches: Map<string, { line: number; description: string }>;
  /** First line of each configured log module. */
  readonly logModules: Map<string, number>;
  /** Line of each queue, by name. */
  readonly queueNames: Map<string, number>;
}

function buildBroker(entity: ValidatedEntity, context: BuildContext): BrokerEntity {
  const configuredId = optionalString(entity, 'id');
  // The id names the broker in addresses and logs, where whitespace breaks things (the router's rule).
  if (configuredId !== undefined && (configuredId === '' || /[\s\p{Cc}]/u.test(configuredId))) {
    invalid(entity, 'id', 'ERR_CONFIG_INVALID_VALUE', `broker id ${quote(configuredId)} must be non-empty, without whitespace or control characters`);
  }
  const persistent = booleanValue(entity, 'persistent');
  const writtenDataDir = optionalString(entity, 'dataDir');
  if (writtenDataDir === undefined && persistent) {
    const reason =
      'broker is missing required attribute "dataDir" (the directory of the journal and the store lock); ' +
      'set it, or set persistent: false for an in-memory broker';
    throw new ConfigError(
      'ERR_CONFIG_MISSING_ATTRIBUTE',
      entity.file,
      entity.line > 0 ? entity.line : undefined,
      entity.line > 0 ? reason : `there is no broker section; ${reason}`,
    );
  }
  if (writtenDataDir !== undefined && writtenDataDir.trim() === '') {
    invalid(entity, 'dataDir', 'ERR_CONFIG_INVALID_VALUE', `broker dataDir ${quote(writtenDataDir)} is empty; expected a directory`);
  }
  const lockPollMs = integerValue(entity, 'lockPollMs');
  const leaseMs = integerValue(entity, 'leaseMs');
  if (leaseMs <= lockPollMs) {
    const leaseLine = entity.attributeLines['leaseMs'];
    const pollLine = entity.attributeLines['lockPollMs'];
    const where = (line: number | undefined) => (line !== undefined ? `line ${line}` : 'the default');
    throw new ConfigError(
      'ERR_CONFIG_CONFLICT',
      entity.file,
      Math.max(leaseLine ?? 0, pollLine ?? 0, entity.line) || undefined,
      `broker leaseMs ${leaseMs} (${where(leaseLine)}) must be more than lockPollMs ${lockPollMs} (${where(pollLine)}): ` +
        'a lease that lapses between two renewals would make the pair fail over without cause',
    );
  }
  const maxMessageSize = integerValue(entity, 'maxMessageSize');
  const saslConfigDir = optionalString(entity, 'saslConfigDir');
  return {
    type: 'broker',
    id: configuredId ?? context.generateBrokerId(),
    ...(writtenDataDir !== undefined ? { dataDir: nodePath.resolve(nodePath.dirname(entity.file), writtenDataDir) } : {}),
    persistent,
    lockPollMs,
    leaseMs,
    maxMessageSize: maxMessageSize === 0 ? DEFAULT_MAX_MESSAGE_SIZE : maxMessageSize,
    globalMaxSizeBytes: integerValue(entity, 'globalMaxSizeBytes'),
    journalCompactMinBytes: integerValue(entity, 'journalCompactMinBytes'),
    pageCacheBytes: integerValue(entity, 'pageCacheBytes'),
    ...(saslConfigDir !== undefined ? { saslConfigDir } : {}),
    saslConfigName: stringValue(entity, 'saslConfigName'),
    ...common(entity),
  };
}

function buildListener(entity: ValidatedEntity): BrokerListener {
  const authenticatePeer = booleanValue(entity, 'authenticatePeer');
  const written = optionalString(entity, 'saslMechanisms');
  let saslMechanisms: SaslMechanism[];
  if (written === undefined) {
    saslMechanisms = authenticatePeer ? ['PLAIN'] : ['ANONYMOUS', 'PLAIN'];
  } else {
    saslMechanisms = parseSaslMechanisms(entity, written);
    if (authenticatePeer && !saslMechanisms.includes('PLAIN')) {
      invalid(
        entity,
        'saslMechanisms',
        'ERR_CONFIG_CONFLICT',
        `listener has authenticatePeer: true but saslMechanisms ${quote(written)} has no mechanism that authenticates; add PLAIN`,
      );
    }
  }
  const maxSessions = integerValue(entity, 'maxSessions');
  return {
    type: 'listener',
    host: stringValue(entity, 'host'),
    port: integerValue(entity, 'port'),
    saslMechanisms,
    authenticatePeer,
    maxFrameSize: integerValue(entity, 'maxFrameSize'),
    maxSessions: maxSessions === 0 ? DEFAULT_MAX_SESSIONS : maxSessions,
    idleTimeoutSeconds: integerValue(entity, 'idleTimeoutSeconds'),
    ...common(entity),
  };
}

/** A space- (or comma-) separated list of SASL mechanisms, upper-cased, without repeats. */
function parseSaslMechanisms(entity: ValidatedEntity, written: string): SaslMechanism[] {
  const names = written.split(/[\s,]+/).filter((name) => name !== '');
  if (names.length === 0) {
    invalid(entity, 'saslMechanisms', 'ERR_CONFIG_INVALID_VALUE', `listener saslMechanisms is empty; expected a space-separated list of ${SASL_MECHANISMS.join(', ')}`);
  }
  const mechanisms: SaslMechanism[] = [];
  for (const name of names) {
    const mechanism = SASL_MECHANISMS.find((known) => known === name.toUpperCase());
    if (mechanism === undefined) {
      invalid(entity, 'saslMechanisms', 'ERR_CONFIG_NOT_SUPPORTED', `listener saslMechanisms ${quote(name)} is not supported by amqp-mesh; supported: ${SASL_MECHANISMS.join(', ')}`);
    }
    if (!mechanisms.includes(mechanism)) mechanisms.push(mechanism);
  }
  return mechanisms;
}

function buildAddress(entity: ValidatedEntity, context: BuildContext): BrokerAddress {
  const prefix = optionalString(entity, 'prefix');
  const pattern = optionalString(entity, 'pattern');
  if (prefix === undefined && pattern === undefined) {
    throw new ConfigError('ERR_CONFIG_MISSING_ATTRIBUTE', entity.file, entity.line, 'address needs exactly one of "prefix" or "pattern"; it has neither');
  }
  if (prefix !== undefined && pattern !== undefined) {
    const [prefixLine, patternLine] = [lineOf(entity, 'prefix'), lineOf(entity, 'pattern')];
    throw new ConfigError(
      'ERR_CONFIG_CONFLICT',
      entity.file,
      Math.max(prefixLine, patternLine),
      `address needs exactly one of "prefix" or "pattern"; it has both (prefix on line ${prefixLine}, pattern on line ${patternLine})`,
    );
  }
  const attribute = prefix !== undefined ? 'prefix' : 'pattern';
  const written = (prefix ?? pattern)!;
  // Tokens are separated by "." or "/"; separators at either end are ignored (as by the router).
  const tokens = written.replace(/^[./]+|[./]+$/g, '');
  if (tokens === '') {
    invalid(entity, attribute, 'ERR_CONFIG_INVALID_VALUE', `address ${attribute} ${quote(written)} has no tokens; expected something like "orders" or "orders.*"`);
  }
  // A prefix matches what the pattern "prefix/#" matches: two settings for the same addresses are refused.
  const matchKey = tokens.replace(/\./g, '/') + (prefix !== undefined ? '/#' : '');
  const description = `${attribute} ${quote(written)}`;
  const earlier = context.addressMatches.get(matchKey);
  if (earlier !== undefined) {
    invalid(entity, attribute, 'ERR_CONFIG_DUPLICATE', `address ${description} matches the same addresses as the address on line ${earlier.line} (${earlier.description})`);
  }
  context.addressMatches.set(matchKey, { line: entity.line, description });
  const deadLetterAddress = optionalAddressName(entity, 'deadLetterAddress');
  const expiryAddress = optionalAddressName(entity, 'expiryAddress');
  return {
    type: 'address',
    ...(prefix !== undefined ? { prefix } : { pattern: pattern! }),
    routingType: stringValue(entity, 'routingType') as RoutingType,
    maxDeliveryAttempts: integerValue(entity, 'maxDeliveryAttempts'),
    ...(deadLetterAddress !== undefined ? { deadLetterAddress } : {}),
    ...(expiryAddress !== undefined ? { expiryAddress } : {}),
    maxSizeBytes: integerValue(entity, 'maxSizeBytes'),
    addressFullPolicy: stringValue(entity, 'addressFullPolicy') as AddressFullPolicy,
    autoCreate: booleanValue(entity, 'autoCreate'),
    ...common(entity),
  };
}

/** A queue before its default routing type is known (it depends on address entities anywhere in the file). */
type QueueDraft = Omit<BrokerQueue, 'routingType'> & { routingType?: RoutingType };

function buildQueue(entity: ValidatedEntity, context: BuildContext): QueueDraft {
  const name = addressName(entity, 'name');
  const first = context.queueNames.get(name);
  if (first !== undefined) {
    invalid(entity, 'name', 'ERR_CONFIG_DUPLICATE', `queue ${quote(name)} is already defined on line ${first}; queue names must be unique`);
  }
  context.queueNames.set(name, entity.line);
  const address = optionalAddressName(entity, 'address') ?? name;
  const routingType = optionalString(entity, 'routingType') as RoutingType | undefined;
  return {
    type: 'queue',
    name,
    address,
    ...(routingType !== undefined ? { routingType } : {}),
    durable: booleanValue(entity, 'durable'),
    source: sourceOf(entity),
  };
}

/** A log entity, validated by the router's validator so it behaves exactly as in a router file. */
function buildLog(raw: RawEntity, context: BuildContext): LogEntity {
  const validated = validateEntities([raw], context.file, { generateRouterId: () => 'unused' });
  const log = validated.logs[0]!;
  context.warnings.push(...validated.warnings);
  const moduleLine = log.source.attributeLines['module'] ?? log.source.line;
  const firstLine = context.logModules.get(log.module);
  if (firstLine !== undefined) {
    throw new ConfigError('ERR_CONFIG_DUPLICATE', context.file, moduleLine, `log module "${log.module}" is configured twice (first on line ${firstLine})`);
  }
  context.logModules.set(log.module, log.source.line);
  return log;
}

// ---------------------------------------------------------------------------------------------
// Reading validated values. Validation guarantees the types, so a mismatch is a bug here.

function common(entity: ValidatedEntity): { name?: string; source: EntitySource } {
  const name = optionalString(entity, 'name');
  return { ...(name !== undefined ? { name } : {}), source: sourceOf(entity) };
}

function sourceOf(entity: ValidatedEntity): EntitySource {
  return { file: entity.file, line: entity.line, attributeLines: { ...entity.attributeLines } };
}

function warn(context: BuildContext, line: number, reason: string): void {
  context.warnings.push(configWarning('WARN_CONFIG_NO_EFFECT', context.file, line, reason));
}

function lineOf(entity: ValidatedEntity, attribute: string): number {
  return entity.attributeLines[attribute] ?? entity.line;
}

function invalid(entity: ValidatedEntity, attribute: string, code: ConfigErrorCode, reason: string): never {
  throw new ConfigError(code, entity.file, lineOf(entity, attribute), reason);
}

/** An address or queue name: non-empty, without control characters. */
function optionalAddressName(entity: ValidatedEntity, attribute: string): string | undefined {
  const value = optionalString(entity, attribute);
  // eslint-disable-next-line no-control-regex
  if (value !== undefined && (value.trim() === '' || /[\x00-\x1f\x7f]/.test(value))) {
    invalid(entity, attribute, 'ERR_CONFIG_INVALID_VALUE', `${entity.schema.type} ${attribute} ${quote(value)} must be a non-empty address without control characters`);
  }
  return value;
}

function addressName(entity: ValidatedEntity, attribute: string): string {
  const value = optionalAddressName(entity, attribute);
  if (value === undefined) throw new Error(`amqp-mesh broker config: ${entity.schema.type} ${attribute} has no value`);
  return value;
}

function optionalOfType<T extends Value>(entity: ValidatedEntity, name: string, type: 'string' | 'number' | 'boolean'): T | undefined {
  const value = entity.values.get(name);
  if (value === undefined) return undefined;
  if (typeof value !== type) throw new Error(`amqp-mesh broker config: ${entity.schema.type} ${name} is ${typeof value}, not ${type}`);
  return value as T;
}

function required<T>(entity: ValidatedEntity, name: string, value: T | undefined): T {
  if (value === undefined) throw new Error(`amqp-mesh broker config: ${entity.schema.type} ${name} has no value and no default`);
  return value;
}

function optionalString(entity: ValidatedEntity, name: string): string | undefined {
  return optionalOfType<string>(entity, name, 'string');
}
function stringValue(entity: ValidatedEntity, name: string): string {
  return required(entity, name, optionalString(entity, name));
}
function integerValue(entity: ValidatedEntity, name: string): number {
  return required(entity, name, optionalOfType<number>(entity, name, 'number'));
}
function booleanValue(entity: ValidatedEntity, name: string): boolean {
  return required(entity, name, optionalOfType<boolean>(entity, name, 'boolean'));
}
