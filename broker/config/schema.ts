/**
 * The broker configuration schema: every entity type and attribute a broker file may contain.
 *
 * Written with the shared schema helpers (config/schema.ts) and validated by the shared
 * validator; `listener`, `log` and `sslProfile` are qdrouterd's, shared with the router
 * (config/listener.ts, config/transport.ts, config/log.ts, config/ssl-profile.ts) so both
 * programs read them the same way. Checks that involve several attributes or entities (dataDir
 * needed when persistent, prefix xor pattern, leaseMs above lockPollMs...) live in the builders
 * in validate.ts.
 */

import { POLICY_ENTITY_SCHEMA, VHOST_ENTITY_SCHEMA } from '../../policy/schema';
import { attributeHelpers, entitySchema, findEntitySchema, type AttributeSchema, type EntitySchema, type SchemaTable } from '../../config/schema';
import { CONNECTION_LIMIT_ATTRIBUTES, DEFAULT_MAX_SESSIONS, LISTENER_ADDRESS_ATTRIBUTES, LISTENER_SASL_ATTRIBUTES } from '../../config/listener';
import { LOG_ENTITY_SCHEMA } from '../../config/log';
import { SSL_PROFILE_ENTITY_SCHEMA } from '../../config/ssl-profile';
import { LISTENER_TRANSPORT_ATTRIBUTES } from '../../config/transport';

export { DEFAULT_MAX_SESSIONS };
/** The broker's attribute types: the shared schema's. */
export type BrokerAttributeType = AttributeSchema['type'];
export type BrokerAttributeSchema = AttributeSchema;
export type BrokerEntitySchema = EntitySchema;

const MIB = 1024 * 1024;
const INT32_MAX = 0x7fff_ffff;
const UINT32_MAX = 0xffff_ffff;

/** Default of broker maxMessageSize (also what a configured 0 means). */
export const DEFAULT_MAX_MESSAGE_SIZE = 64 * MIB;

// Every attribute of a broker file is acted on.
const { string, path, integer, boolean, enumOf } = attributeHelpers('implemented');

function entity(type: string, singleton: boolean, attributes: Record<string, AttributeSchema>): EntitySchema {
  return entitySchema(type, { implemented: true, singleton }, attributes);
}

/** The routing types, in the order messages list them. */
export const ROUTING_TYPES = ['anycast', 'multicast'] as const;
/** Artemis's haPolicy names for how a group of brokers keeps one store highly available. */
export const HA_POLICIES = ['shared-store', 'replication', 'jdbc'] as const;
/** The address full policies, in the order messages list them. */
export const ADDRESS_FULL_POLICIES = ['BLOCK', 'FAIL'] as const;

/** Every entity type of a broker file, by name, in the order messages list them. */
export const BROKER_ENTITY_SCHEMAS: SchemaTable = {
  broker: entity('broker', true, {
    id: string(),
    // Required unless persistent is false: checked by the builder.
    dataDir: path(),
    persistent: boolean({ default: true }),
    lockPollMs: integer({ default: 1000, min: 1, max: INT32_MAX }),
    leaseMs: integer({ default: 3000, min: 1, max: INT32_MAX }),
    // shared-store: one dataDir both members reach; jdbc: store and lock in PostgreSQL
    // (jdbcUrl); replication: each member's own disk, coordinated through ZooKeeper.
    haPolicy: enumOf(HA_POLICIES, { default: 'shared-store', caseInsensitive: true }),
    // Required for jdbc and replication (checked by the builder): the members of one group serve one logical broker.
    haGroup: string(),
    jdbcUrl: string(),
    zookeeper: string(),
    groupSize: integer({ default: 3, min: 1, max: 15 }),
    // Where this member takes followers' connections (replication); announced to the group.
    replicationHost: string({ default: '127.0.0.1' }),
    replicationPort: integer({ default: 0, min: 0, max: 65535 }),
    // 0 selects the default.
    maxMessageSize: integer({ default: DEFAULT_MAX_MESSAGE_SIZE, max: UINT32_MAX }),
    globalMaxSizeBytes: integer({ default: -1, min: 1, minusOne: 'half of memory' }),
    journalCompactMinBytes: integer({ default: 64 * MIB }),
    pageCacheBytes: integer({ default: 64 * MIB }),
    saslConfigDir: path(),
    saslConfigName: string({ default: 'qdrouterd' }),
  }),

  // As the router's listener (qdrouterd's attributes).
  listener: entity('listener', false, {
    ...LISTENER_ADDRESS_ATTRIBUTES,
    ...LISTENER_SASL_ATTRIBUTES,
    ...CONNECTION_LIMIT_ATTRIBUTES,
    ...LISTENER_TRANSPORT_ATTRIBUTES,
  }),

  address: entity('address', false, {
    prefix: string(),
    pattern: string(),
    routingType: enumOf(ROUTING_TYPES, { default: 'anycast', caseInsensitive: true }),
    maxDeliveryAttempts: integer({ default: 10, min: 1, max: INT32_MAX, minusOne: 'unlimited' }),
    deadLetterAddress: string(),
    expiryAddress: string(),
    maxSizeBytes: integer({ default: -1, min: 1, minusOne: 'unlimited' }),
    addressFullPolicy: enumOf(ADDRESS_FULL_POLICIES, { default: 'BLOCK', caseInsensitive: true }),
    autoCreate: boolean({ default: true }),
  }),

  queue: entity('queue', false, {
    name: string({ required: true }),
    // Default: the queue's name; set by the builder.
    address: string(),
    // Default: that of the matching address settings; set once every address is read.
    routingType: enumOf(ROUTING_TYPES, { caseInsensitive: true }),
    durable: boolean({ default: true }),
  }),

  // qdrouterd's, as in a router file.
  log: LOG_ENTITY_SCHEMA,
  sslProfile: SSL_PROFILE_ENTITY_SCHEMA,
  // Who may connect, send to and consume from which addresses (qdrouterd's policy, as on a router).
  policy: POLICY_ENTITY_SCHEMA,
  vhost: VHOST_ENTITY_SCHEMA,
};

/** Every entity type a broker file may contain, in the order messages list them. */
export const BROKER_ENTITY_TYPES: readonly string[] = Object.keys(BROKER_ENTITY_SCHEMAS);

/** The schema of a broker entity type (as written after camelCasing), or undefined. */
export function findBrokerEntitySchema(type: string): BrokerEntitySchema | undefined {
  return findEntitySchema(BROKER_ENTITY_SCHEMAS, type);
}
