/**
 * Validation of a broker configuration: from the syntax-neutral entities the shared parsers
 * produce to a typed {@link BrokerConfig}.
 *
 * As in the router, two stages: the shared validator (config/validate.ts) checks each entity
 * against the broker's schema table (names, types, ranges, enumerations, defaults, required
 * attributes, size limits, singletons, unique names), then a builder per entity type adds the
 * checks involving several attributes. `listener` and `log` entities are read by the shared
 * builders (config/listener.ts, config/log.ts), so they behave exactly as in a router file.
 */

import { buildPolicySettings, readPolicyDir } from '../../policy/config';
import { randomBytes } from 'node:crypto';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { ConfigError, configWarning, quote } from '../../config/errors';
import { buildContext, warn, type BuildContext } from '../../config/context';
import { readConnectionLimits, readListenerAddress, readListenerSasl } from '../../config/listener';
import { buildLog, type LogEntity } from '../../config/log';
import { readUniqueMatch } from '../../config/match';
import { buildSslProfile } from '../../config/ssl-profile';
import { PLAIN_LISTENER } from '../../config/transport';
import type { RawEntity } from '../../config/raw-entity';
import { QDROUTERD_ENTITY_TYPES } from '../../config/schema';
import type { EntitySource } from '../../config/types';
import { booleanValue, entitySchemaOf, integerValue, invalid, optionalString, sourceOf, stringValue, validateEntity, validateEntityList, type EntityTable, type ValidatedEntity } from '../../config/validate';
import { matchAddress } from './match';
import { BROKER_ENTITY_SCHEMAS, DEFAULT_MAX_MESSAGE_SIZE } from './schema';
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

/** The broker's entities: names are unique within a type; a queue's name is its identity (checked by its builder). */
const BROKER_TABLE: EntityTable = {
  schemas: BROKER_ENTITY_SCHEMAS,
  whyNot: (type) => (QDROUTERD_ENTITY_TYPES.includes(type) ? 'is a router entity, not a broker one (is this a router configuration?)' : undefined),
  nameScope: 'perType',
  ownNames: ['queue'],
};

/** A broker id: `broker-<hostname>-<12 random hex digits>`, the host name reduced to characters safe in addresses. */
export function generateBrokerId(): string {
  const host = os.hostname().replace(/[^A-Za-z0-9_-]+/g, '_') || 'localhost';
  return `broker-${host}-${randomBytes(6).toString('hex')}`;
}

/**
 * Validates parsed entities and builds the typed broker configuration.
 * @param entities entities in file order, from any of the shared syntax parsers (config/).
 * @param file the file name used in messages; relative dataDir paths resolve against its directory.
 * @throws ConfigError naming the file, the line and the valid choices.
 */
export function validateBrokerEntities(entities: readonly RawEntity[], file: string, options: BrokerValidationOptions = {}): BrokerConfig {
  const context: BrokerBuildContext = { ...buildContext(file), generateBrokerId: options.generateBrokerId ?? generateBrokerId, queueNames: new Map() };
  let broker: BrokerEntity | undefined;
  const listeners: BrokerListener[] = [];
  const addresses: BrokerAddress[] = [];
  const queues: QueueDraft[] = [];
  const logs: LogEntity[] = [];
  const validated: ValidatedEntity[] = [];
  // As on a router: a policyDir's vhosts join the file's (each naming its own file).
  validateEntityList([...entities, ...readPolicyDir(entities, file)], file, BROKER_TABLE, context.warnings, (entity) => {
    validated.push(entity);
    switch (entity.schema.type) {
      case 'broker':
        broker = buildBroker(entity, context);
        break;
      case 'listener':
        listeners.push(buildListener(entity, context));
        break;
      case 'address':
        addresses.push(buildAddress(entity, context));
        break;
      case 'queue':
        queues.push(buildQueue(entity, context));
        break;
      case 'log':
        logs.push(buildLog(entity, context.logModules));
        break;
      case 'sslProfile':
        context.transports.addProfile(buildSslProfile(entity, context));
        break;
    }
  });

  // The broker's policy: vhosts from the file (a policyDir's are read by the loader).
  const { warnings: policyWarnings, ...policy } = buildPolicySettings(validated);
  for (const w of policyWarnings) context.warnings.push(configWarning('WARN_CONFIG_NO_EFFECT', w.file, w.line, w.reason));
  const defaults: RawEntity = { type: 'broker', line: 0, attributes: [] };
  broker ??= buildBroker(validateEntity(defaults, entitySchemaOf(defaults, file, BROKER_TABLE), file, context.warnings), context);
  context.transports.link();
  for (const queue of queues) {
    if (!broker.persistent && queue.source.attributeLines['durable'] !== undefined && queue.durable) {
      warn(context, 'WARN_CONFIG_NO_EFFECT', queue.source.attributeLines['durable']!, `queue durable has no effect with broker persistent: false; nothing is kept across restarts`);
    }
  }
  return {
    broker,
    listeners,
    addresses,
    // Queues that do not say their routing type take that of their address, wherever the address entity is in the file.
    queues: queues.map((queue) => ({ ...queue, routingType: queue.routingType ?? matchAddress(addresses, queue.address).routingType })),
    logs,
    sslProfiles: context.transports.sslProfiles,
    policy,
    warnings: context.warnings.sort((a, b) => a.line - b.line),
    file,
  };
}

// ---------------------------------------------------------------------------------------------
// Builders

interface BrokerBuildContext extends BuildContext {
  readonly generateBrokerId: () => string;
  /** Line of each queue, by name. */
  readonly queueNames: Map<string, number>;
}

function buildBroker(entity: ValidatedEntity, context: BrokerBuildContext): BrokerEntity {
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
  const ha = readHa(entity, persistent);
  const maxMessageSize = integerValue(entity, 'maxMessageSize');
  const saslConfigDir = optionalString(entity, 'saslConfigDir');
  return {
    ...ha,
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

/** haPolicy and what each policy needs. */
function readHa(entity: ValidatedEntity, persistent: boolean): Pick<BrokerEntity, 'haPolicy' | 'haGroup' | 'jdbcUrl' | 'zookeeper' | 'groupSize' | 'replicationHost' | 'replicationPort'> {
  const haPolicy = stringValue(entity, 'haPolicy').toLowerCase() as BrokerEntity['haPolicy'];
  const haGroup = optionalString(entity, 'haGroup');
  const jdbcUrl = optionalString(entity, 'jdbcUrl');
  const zookeeper = optionalString(entity, 'zookeeper');
  const need = (name: string, value: string | undefined, what: string) => {
    if (value !== undefined && value.trim() !== '') return;
    const reason = `broker haPolicy ${haPolicy} needs "${name}" (${what})`;
    if (value !== undefined) invalid(entity, name, 'ERR_CONFIG_INVALID_VALUE', reason);
    throw new ConfigError('ERR_CONFIG_MISSING_ATTRIBUTE', entity.file, entity.attributeLines['haPolicy'] ?? (entity.line || undefined), reason);
  };
  if (haPolicy !== 'shared-store') {
    if (!persistent) invalid(entity, 'haPolicy', 'ERR_CONFIG_INVALID_VALUE', `broker haPolicy ${haPolicy} keeps a persistent store; it cannot be combined with persistent: false`);
    need('haGroup', haGroup, 'the name its members share');
    if (/[\s\p{Cc}/]/u.test(haGroup as string)) invalid(entity, 'haGroup', 'ERR_CONFIG_INVALID_VALUE', `broker haGroup ${quote(haGroup as string)} must be without whitespace, "/" or control characters`);
  }
  if (haPolicy === 'jdbc') {
    need('jdbcUrl', jdbcUrl, 'postgresql://user@host:port/database');
    if (!/^(jdbc:)?postgres(ql)?:\/\//.test(jdbcUrl as string)) invalid(entity, 'jdbcUrl', 'ERR_CONFIG_INVALID_VALUE', `broker jdbcUrl ${quote(jdbcUrl as string)}: expected postgresql://user@host:port/database`);
  }
  if (haPolicy === 'replication') need('zookeeper', zookeeper, 'the ZooKeeper connect string, host:port[,host:port...]');
  return {
    haPolicy,
    ...(haGroup !== undefined ? { haGroup } : {}),
    ...(jdbcUrl !== undefined ? { jdbcUrl } : {}),
    ...(zookeeper !== undefined ? { zookeeper } : {}),
    groupSize: integerValue(entity, 'groupSize'),
    replicationHost: stringValue(entity, 'replicationHost'),
    replicationPort: integerValue(entity, 'replicationPort'),
  };
}

function buildListener(entity: ValidatedEntity, context: BrokerBuildContext): BrokerListener {
  // The broker offers PLAIN as well by default: clients with credentials use them.
  const sasl = readListenerSasl(entity, (authenticatePeer) => (authenticatePeer ? ['PLAIN'] : ['ANONYMOUS', 'PLAIN']));
  return context.transports.listener(entity, sasl, {
    type: 'listener',
    ...readListenerAddress(entity),
    ...sasl,
    ...readConnectionLimits(entity),
    transport: PLAIN_LISTENER,
    ...common(entity),
  });
}

function buildAddress(entity: ValidatedEntity, context: BrokerBuildContext): BrokerAddress {
  const match = readUniqueMatch(entity, context.addressMatches);
  const deadLetterAddress = optionalAddressName(entity, 'deadLetterAddress');
  const expiryAddress = optionalAddressName(entity, 'expiryAddress');
  return {
    type: 'address',
    ...(match.prefix !== undefined ? { prefix: match.prefix } : { pattern: match.pattern }),
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

function buildQueue(entity: ValidatedEntity, context: BrokerBuildContext): QueueDraft {
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

// ---------------------------------------------------------------------------------------------
// Reading validated values. Validation guarantees the types, so a mismatch is a bug here.

function common(entity: ValidatedEntity): { name?: string; source: EntitySource } {
  const name = optionalString(entity, 'name');
  return { ...(name !== undefined ? { name } : {}), source: sourceOf(entity) };
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
