/**
 * The broker configuration schema: every entity type and attribute a broker file may contain.
 *
 * The `log` entity is not here: it is the router's, validated by router/config so both
 * programs log the same way. Checks that involve several attributes or entities (dataDir needed
 * when persistent, prefix xor pattern, leaseMs above lockPollMs...) live in the builders in
 * validate.ts.
 */

/** How a value is converted and checked (the router's types of the same names behave the same). */
export type BrokerAttributeType = 'string' | 'path' | 'integer' | 'boolean' | 'enum' | 'port';

/** Definition of one attribute. */
export interface BrokerAttributeSchema {
  readonly type: BrokerAttributeType;
  readonly default?: string | number | boolean;
  readonly required?: boolean;
  /** For `integer`: smallest accepted value, apart from -1 when {@link minusOne} is set (default 0). */
  readonly min?: number;
  /** For `integer`: largest accepted value (default Number.MAX_SAFE_INTEGER). */
  readonly max?: number;
  /** For `integer`: -1 is also accepted, and means this (e.g. "unlimited"). */
  readonly minusOne?: string;
  /** For `enum`: the values, as they are output. */
  readonly values?: readonly string[];
  /** For `enum`: the value is matched ignoring case (the output is the listed spelling). */
  readonly caseInsensitive?: boolean;
}

/** Definition of one entity type. */
export interface BrokerEntitySchema {
  readonly type: string;
  /** At most one entity of this type. */
  readonly singleton: boolean;
  readonly attributes: { readonly [attributeName: string]: BrokerAttributeSchema };
}

const MIB = 1024 * 1024;
const INT32_MAX = 0x7fff_ffff;
const UINT32_MAX = 0xffff_ffff;
/** AMQP 1.0 (part 2, section 2.7.1): a peer must accept frames of at least 512 octets. */
const AMQP_MIN_MAX_FRAME_SIZE = 512;

/** Default of broker maxMessageSize (also what a configured 0 means). */
export const DEFAULT_MAX_MESSAGE_SIZE = 64 * MIB;
/** Default of listener maxSessions (also what a configured 0 means), as in qdrouterd. */
export const DEFAULT_MAX_SESSIONS = 32768;

const string = (options: Partial<BrokerAttributeSchema> = {}): BrokerAttributeSchema => ({ type: 'string', ...options });
const path = (options: Partial<BrokerAttributeSchema> = {}): BrokerAttributeSchema => ({ type: 'path', ...options });
const integer = (options: Partial<BrokerAttributeSchema> = {}): BrokerAttributeSchema => ({ type: 'integer', ...options });
const boolean = (options: Partial<BrokerAttributeSchema> = {}): BrokerAttributeSchema => ({ type: 'boolean', ...options });
const port = (options: Partial<BrokerAttributeSchema> = {}): BrokerAttributeSchema => ({ type: 'port', ...options });
function enumOf(values: readonly string[], options: Partial<BrokerAttributeSchema> = {}): BrokerAttributeSchema {
  return { type: 'enum', values, ...options };
}

function entity(type: string, singleton: boolean, attributes: Record<string, BrokerAttributeSchema>): BrokerEntitySchema {
  // Every entity may carry a user-assigned name (listed last in messages); a queue's is required.
  return { type, singleton, attributes: { ...attributes, name: attributes['name'] ?? string() } };
}

/** The routing types, in the order messages list them. */
export const ROUTING_TYPES = ['anycast', 'multicast'] as const;
/** The address full policies, in the order messages list them. */
export const ADDRESS_FULL_POLICIES = ['BLOCK', 'FAIL'] as const;

/** Every entity type of a broker file except `log` (the router's), by name, in the order messages list them. */
export const BROKER_ENTITY_SCHEMAS: { readonly [type: string]: BrokerEntitySchema } = {
  broker: entity('broker', true, {
    id: string(),
    // Required unless persistent is false: checked by the builder.
    dataDir: path(),
    persistent: boolean({ default: true }),
    lockPollMs: integer({ default: 1000, min: 1, max: INT32_MAX }),
    leaseMs: integer({ default: 3000, min: 1, max: INT32_MAX }),
    // 0 selects the default.
    maxMessageSize: integer({ default: DEFAULT_MAX_MESSAGE_SIZE, max: UINT32_MAX }),
    globalMaxSizeBytes: integer({ default: -1, min: 1, minusOne: 'half of memory' }),
    journalCompactMinBytes: integer({ default: 64 * MIB }),
    pageCacheBytes: integer({ default: 64 * MIB }),
    saslConfigDir: path(),
    saslConfigName: string({ default: 'qdrouterd' }),
  }),

  listener: entity('listener', false, {
    // As the router's listener: the empty string listens on all local addresses.
    host: string({ default: '' }),
    port: port({ default: 'amqp' }),
    // Default depends on authenticatePeer: set by the builder.
    saslMechanisms: string(),
    authenticatePeer: boolean({ default: false }),
    maxFrameSize: integer({ default: 16384, min: AMQP_MIN_MAX_FRAME_SIZE, max: UINT32_MAX }),
    // 0 selects the default, as in qdrouterd.
    maxSessions: integer({ default: DEFAULT_MAX_SESSIONS, max: DEFAULT_MAX_SESSIONS }),
    // AMQP carries the idle timeout in milliseconds in a uint.
    idleTimeoutSeconds: integer({ default: 16, max: Math.floor(UINT32_MAX / 1000) }),
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
};

/** Every entity type a broker file may contain, in the order messages list them. */
export const BROKER_ENTITY_TYPES: readonly string[] = [...Object.keys(BROKER_ENTITY_SCHEMAS), 'log'];

/** The schema of a broker entity type (as written after camelCasing), or undefined (also for `log`). */
export function findBrokerEntitySchema(type: string): BrokerEntitySchema | undefined {
  return Object.prototype.hasOwnProperty.call(BROKER_ENTITY_SCHEMAS, type) ? BROKER_ENTITY_SCHEMAS[type] : undefined;
}
