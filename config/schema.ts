/**
 * The shape of a configuration schema, shared by the router and the broker: entity types, their
 * attributes, types, defaults, and what amqp-mesh does with each. Each application writes its
 * own table (router/config/schema.ts, broker/config/schema.ts) with these helpers; the generic
 * validator (validate.ts) is driven by the table.
 *
 * Names, types, defaults, required flags and deprecated names of qdrouterd's entities are
 * qdrouterd 1.19's (`qdrouter.json`). On top of them:
 * - `status` says what amqp-mesh does with an attribute: `implemented`, `notImplemented`
 *   (accepted with a warning so existing qdrouterd configs load) or `readOnly` (statistics and
 *   other status values that qdrouterd's schema lists but a config file cannot meaningfully set).
 * - `min`/`max` bound integers; qdrouterd's schema only says "integer" and its C code clamps or
 *   misbehaves on nonsense such as a negative frame size.
 * - `unsupportedValues` lists enumeration values qdrouterd accepts and amqp-mesh refuses for now.
 * - `port` is a refinement of qdrouterd's string-typed ports, resolved to a number.
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
  /**
   * For `enum`: amqp-mesh's own lenient form: the value is trimmed and matched ignoring case (the
   * output is the listed spelling), and no numeric index is taken (qdrouterd's enums take one).
   */
  readonly caseInsensitive?: boolean;
  /** For `integer`: smallest accepted value, apart from -1 when {@link minusOne} is set (default 0). */
  readonly min?: number;
  /** For `integer`: largest accepted value (default Number.MAX_SAFE_INTEGER). */
  readonly max?: number;
  /** For `integer`: -1 is also accepted, and means this (e.g. "unlimited"). */
  readonly minusOne?: string;
  readonly default?: SchemaDefault;
  readonly required?: boolean;
  /** The attribute's former name, still accepted with a deprecation warning. */
  readonly deprecationName?: string;
  /** The attribute itself is deprecated. */
  readonly deprecated?: boolean;
  /** For `notImplemented`: what the operator should know, appended to the warning. */
  readonly note?: string;
}

/** Definition of one entity type (a config file section). */
export interface EntitySchema {
  /** The name used in config files, e.g. `address`. */
  readonly type: string;
  /** qdrouterd's fully qualified type, e.g. `org.apache.qpid.dispatch.router.config.address`, for qdrouterd's entities. */
  readonly qdrouterdType?: string;
  /** Whether amqp-mesh acts on this entity type; others are accepted with a warning. */
  readonly implemented: boolean;
  /** At most one entity of this type. */
  readonly singleton: boolean;
  /** qdrouterd deprecates this entity type. */
  readonly deprecated: boolean;
  /** Attributes by name, in the order messages list them, `name` last unless placed earlier. */
  readonly attributes: { readonly [attributeName: string]: AttributeSchema };
}

/** Every entity type an application's files may contain, by config-file name, in the order messages list them. */
export type SchemaTable = { readonly [type: string]: EntitySchema };

/** Options of the attribute helpers: everything but the type (and the values of an enum). */
export type AttributeOptions = Omit<AttributeSchema, 'type' | 'values'>;

/** Attribute constructors whose status defaults to `status` (a table transcribing qdrouterd's schema starts from `notImplemented`). */
export function attributeHelpers(status: AttributeStatus) {
  const attribute = (type: AttributeType, options: Partial<AttributeOptions> = {}): AttributeSchema => ({ type, status, ...options });
  return {
    string: (options?: Partial<AttributeOptions>) => attribute('string', options),
    path: (options?: Partial<AttributeOptions>) => attribute('path', options),
    integer: (options?: Partial<AttributeOptions>) => attribute('integer', options),
    boolean: (options?: Partial<AttributeOptions>) => attribute('boolean', options),
    port: (options?: Partial<AttributeOptions>) => attribute('port', options),
    properties: (options?: Partial<AttributeOptions>) => attribute('properties', options),
    map: (options?: Partial<AttributeOptions>) => attribute('map', options),
    enumOf: (values: readonly string[], options: Partial<AttributeOptions> = {}): AttributeSchema => ({ type: 'enum', status, values, ...options }),
  };
}

export function implemented(schema: AttributeSchema): AttributeSchema {
  return { ...schema, status: 'implemented' };
}
export function readOnly(schema: AttributeSchema): AttributeSchema {
  return { ...schema, status: 'readOnly' };
}
/** Accepted with a warning that amqp-mesh does not act on it, saying `note`. */
export function notImplemented(schema: AttributeSchema, note?: string): AttributeSchema {
  return { ...schema, status: 'notImplemented', ...(note !== undefined ? { note } : {}) };
}

/** An entity type. Every entity has a user-assigned `name` (unique, listed last in messages unless `attributes` places it). */
export function entitySchema(
  type: string,
  flags: { qdrouterdType?: string; implemented?: boolean; singleton?: boolean; deprecated?: boolean },
  attributes: Record<string, AttributeSchema>,
): EntitySchema {
  return {
    type,
    ...(flags.qdrouterdType !== undefined ? { qdrouterdType: flags.qdrouterdType } : {}),
    implemented: flags.implemented ?? false,
    singleton: flags.singleton ?? false,
    deprecated: flags.deprecated ?? false,
    attributes: { ...attributes, name: attributes['name'] ?? { type: 'string', status: 'implemented' } },
  };
}

/** The schema of an entity type (as written after camelCasing), or undefined. */
export function findEntitySchema(table: SchemaTable, type: string): EntitySchema | undefined {
  return Object.prototype.hasOwnProperty.call(table, type) ? table[type] : undefined;
}

/**
 * The attribute an entity's key refers to: its own name, or a deprecated name of another.
 * @returns the attribute's current name and schema, and whether a deprecated name was used.
 */
export function findAttributeSchema(
  schema: EntitySchema,
  key: string,
): { name: string; schema: AttributeSchema; viaDeprecatedName: boolean } | undefined {
  if (Object.prototype.hasOwnProperty.call(schema.attributes, key)) {
    return { name: key, schema: schema.attributes[key]!, viaDeprecatedName: false };
  }
  for (const [name, attribute] of Object.entries(schema.attributes)) {
    if (attribute.deprecationName === key) return { name, schema: attribute, viaDeprecatedName: true };
  }
  return undefined;
}

/** Enumeration values amqp-mesh accepts for an attribute (qdrouterd's minus the unsupported ones). */
export function supportedValues(schema: AttributeSchema): readonly string[] {
  const unsupported = schema.unsupportedValues ?? [];
  return (schema.values ?? []).filter((value) => !unsupported.includes(value));
}

/** Attribute names to suggest: implemented ones first, then the rest; status attributes left out. */
export function settableAttributeNames(schema: EntitySchema): string[] {
  const entries = Object.entries(schema.attributes).filter(([, attribute]) => attribute.status !== 'readOnly');
  return [
    ...entries.filter(([, attribute]) => attribute.status === 'implemented'),
    ...entries.filter(([, attribute]) => attribute.status !== 'implemented'),
  ].map(([name]) => name);
}

/**
 * The configuration entity types of qdrouterd 1.19, so that an application can tell an operator
 * who wrote one of them in the wrong file what it is.
 */
export const QDROUTERD_ENTITY_TYPES: readonly string[] = [
  'router',
  'listener',
  'connector',
  'address',
  'linkRoute',
  'autoLink',
  'exchange',
  'binding',
  'sslProfile',
  'authServicePlugin',
  'log',
  'policy',
  'vhost',
  'console',
];
