/**
 * The generic validator, driven by an application's {@link SchemaTable}: entity and attribute
 * names, deprecated names, types, ranges, enumerations, defaults, required attributes, size
 * limits, singletons and unique names, the way qdrouterd's schema does. Each application then
 * reads the validated values into its typed entities (its builders) and adds the checks that
 * involve several attributes or entities.
 *
 * Also here: reading validated values (validation guarantees their types, so a mismatch is a bug
 * in the caller) and refusing them with `FILE:LINE:` of the attribute.
 */

import {
  ConfigError,
  configWarning,
  MAX_ATTRIBUTE_VALUE_BYTES,
  MAX_CONFIG_ENTITIES,
  quote,
  type ConfigErrorCode,
  type ConfigWarning,
  type ConfigWarningCode,
} from './errors';
import { qdrouterdCamelCase, rawValueBytes, type RawEntity, type RawValue } from './raw-entity';
import {
  findAttributeSchema,
  findEntitySchema,
  settableAttributeNames,
  supportedValues,
  type AttributeSchema,
  type EntitySchema,
  type SchemaTable,
} from './schema';
import type { ConfigValue, EntityCommon, EntitySource } from './types';
import { convertBoolean, convertPort, convertString, describeValue, toInteger, type Fail } from './values';

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

/** How an application's entities are looked up and named. */
export interface EntityTable {
  readonly schemas: SchemaTable;
  /**
   * Why a type that is not in `schemas` cannot be configured in this file (it follows the quoted
   * type, e.g. `is a router entity, not a broker one`); undefined: an unknown entity.
   */
  readonly whyNot?: (type: string) => string | undefined;
  /** `global`: names are unique across all entity types (qdrouterd's rule); `perType`: within each type. */
  readonly nameScope: 'global' | 'perType';
  /** Entity types whose builder checks their names itself (a broker queue's name is its identity). */
  readonly ownNames?: readonly string[];
  /** With `global` names: types whose names are unique only among themselves (qdrouterd's core-agent types). */
  readonly perTypeNames?: readonly string[];
}

/** Who owns a name (for messages): the entity's type and line. */
export type NameOwners = ReadonlyMap<string, { readonly type: string; readonly line: number }>;

/**
 * Validates raw entities in file order against `table`, handing each to `visit` (the
 * application's builder) before the next one is read, so that problems are reported in file order.
 * @returns who owns each name (with `perType` names, keyed by type and name).
 * @throws ConfigError naming the file, the line and the valid choices.
 */
export function validateEntityList(
  entities: readonly RawEntity[],
  file: string,
  table: EntityTable,
  warnings: ConfigWarning[],
  visit: (entity: ValidatedEntity) => void,
): NameOwners {
  const tooMany = entities[MAX_CONFIG_ENTITIES];
  if (tooMany !== undefined) {
    throw new ConfigError(
      'ERR_CONFIG_TOO_MANY_ENTITIES',
      file,
      tooMany.line,
      `more than ${MAX_CONFIG_ENTITIES} entities; the limit is ${MAX_CONFIG_ENTITIES} entities per configuration`,
    );
  }
  const singletonLines = new Map<string, number>();
  const nameOwners = new Map<string, { type: string; line: number }>();
  for (const raw of entities) {
    const from = raw.file ?? file;
    const entity = validateEntity(raw, entitySchemaOf(raw, from, table), from, warnings);
    const { type, singleton } = entity.schema;
    if (singleton) {
      const firstLine = singletonLines.get(type);
      if (firstLine !== undefined) {
        throw new ConfigError('ERR_CONFIG_DUPLICATE', file, entity.line, `only one ${type} section is allowed (first on line ${firstLine})`);
      }
      singletonLines.set(type, entity.line);
    }
    const name = entity.values.get('name');
    if (typeof name === 'string' && !(table.ownNames ?? []).includes(type)) {
      const global = table.nameScope === 'global' && !(table.perTypeNames ?? []).includes(type);
      const key = global ? name : `${type}\u0000${name}`;
      const owner = nameOwners.get(key);
      if (owner !== undefined) {
        const scope = global ? 'names' : `${type} names`;
        invalid(entity, 'name', 'ERR_CONFIG_DUPLICATE', `${type} name ${quote(name)} is already used by the ${owner.type} on line ${owner.line}; ${scope} must be unique`);
      }
      nameOwners.set(key, { type, line: entity.line });
    }
    visit(entity);
  }
  return nameOwners;
}

/**
 * The schema of a raw entity's type in `table`.
 * @throws ConfigError ERR_CONFIG_UNKNOWN_ENTITY naming the valid entities.
 */
export function entitySchemaOf(raw: RawEntity, file: string, table: EntityTable): EntitySchema {
  const type = qdrouterdCamelCase(raw.type);
  const schema = findEntitySchema(table.schemas, type);
  if (schema !== undefined) return schema;
  const readAs = type !== raw.type ? ` (read as "${type}")` : '';
  const why = table.whyNot?.(type);
  const what = why !== undefined ? `"${raw.type}"${readAs} ${why}` : `unknown entity "${raw.type}"${readAs}`;
  throw new ConfigError('ERR_CONFIG_UNKNOWN_ENTITY', file, raw.line, `${what}; valid entities: ${Object.keys(table.schemas).join(', ')}`);
}

/**
 * Checks one entity against its schema, the way qdrouterd's schema validation does, plus
 * amqp-mesh's ranges, unsupported values and size limits.
 * @param warnings receives the warnings about this entity.
 * @throws ConfigError for an unknown attribute, a bad value or a missing required attribute.
 */
export function validateEntity(raw: RawEntity, schema: EntitySchema, file: string, warnings: ConfigWarning[]): ValidatedEntity {
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
    const fail: Fail = (code, reason) => {
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
      const note = attributeSchema.note !== undefined ? `: ${attributeSchema.note}` : '';
      warn('WARN_CONFIG_ATTRIBUTE_NOT_IMPLEMENTED', attribute.line, `${type} attribute "${name}" is accepted, not implemented by amqp-mesh${note}`);
    }
    values.set(name, value);
  }

  for (const [name, attributeSchema] of Object.entries(schema.attributes)) {
    if (values.has(name) || attributeSchema.status === 'readOnly') continue;
    if (attributeSchema.default !== undefined) {
      const internalError: Fail = (_code, reason) => {
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

/** Converts a value to its schema type, as qdrouterd's schema types do, with amqp-mesh's range checks. */
function convertValue(
  value: RawValue,
  schema: AttributeSchema,
  label: string,
  fail: Fail,
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

    case 'enum':
      return convertEnum(value, schema, label, fail, warn);

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

function convertEnum(value: RawValue, schema: AttributeSchema, label: string, fail: Fail, warn: (code: ConfigWarningCode, reason: string) => void): string {
  const values = schema.values ?? [];
  const supported = supportedValues(schema);
  let tag: string | undefined;
  if (schema.caseInsensitive) {
    const written = typeof value === 'string' ? value.trim().toLowerCase() : undefined;
    tag = values.find((candidate) => candidate.toLowerCase() === written);
  } else {
    tag = typeof value === 'string' && values.includes(value) ? value : undefined;
    // qdrouterd's EnumType also takes the index of a value.
    const index = tag === undefined ? toInteger(value) : undefined;
    if (index !== undefined && index >= 0 && index < values.length) {
      tag = values[index]!;
      warn('WARN_CONFIG_ENUM_INDEX', `${label} ${describeValue(value)} is read as "${tag}" (a numeric index); write "${tag}"`);
    }
  }
  if (tag === undefined) return fail('ERR_CONFIG_INVALID_VALUE', `${label} ${describeValue(value)} is not one of ${supported.join(', ')}`);
  if (!supported.includes(tag)) {
    return fail('ERR_CONFIG_NOT_SUPPORTED', `${label} "${tag}" is not supported yet by amqp-mesh; supported: ${supported.join(', ')}`);
  }
  return tag;
}

// ---------------------------------------------------------------------------------------------
// Reading validated values. Validation guarantees the types, so a mismatch is a bug in the caller.

/** 1-based line of an attribute set in the file, or of the entity. */
export function lineOf(entity: ValidatedEntity, attribute: string): number {
  return entity.attributeLines[attribute] ?? entity.line;
}

/** Refuses an attribute's value: a ConfigError at its line. */
export function invalid(entity: ValidatedEntity, attribute: string, code: ConfigErrorCode, reason: string): never {
  throw new ConfigError(code, entity.file, lineOf(entity, attribute), reason);
}

/**
 * Refuses two attributes that cannot be set together, at the line of the later one.
 * @param reason the message, given both lines.
 */
export function refuseTogether(entity: ValidatedEntity, first: string, second: string, reason: (firstLine: number, secondLine: number) => string): never {
  const [firstLine, secondLine] = [lineOf(entity, first), lineOf(entity, second)];
  throw new ConfigError('ERR_CONFIG_CONFLICT', entity.file, Math.max(firstLine, secondLine), reason(firstLine, secondLine));
}

export function sourceOf(entity: ValidatedEntity): EntitySource {
  return { file: entity.file, line: entity.line, attributeLines: { ...entity.attributeLines } };
}

/** The name, the attributes set but not implemented, and the source: what qdrouterd's typed entities carry. */
export function common(entity: ValidatedEntity): EntityCommon {
  const unimplemented: EntityCommon['unimplemented'] = {};
  for (const [name, value] of entity.values) {
    if (entity.attributeLines[name] !== undefined && entity.schema.attributes[name]?.status === 'notImplemented') unimplemented[name] = value;
  }
  const name = optionalString(entity, 'name');
  return { ...(name !== undefined ? { name } : {}), unimplemented, source: sourceOf(entity) };
}

function optionalOfType<T>(entity: ValidatedEntity, name: string, type: 'string' | 'number' | 'boolean'): T | undefined {
  const value = entity.values.get(name);
  if (value === undefined) return undefined;
  if (typeof value !== type) throw new Error(`amqp-mesh config: ${entity.schema.type} ${name} is ${typeof value}, not ${type}`);
  return value as T;
}

function required<T>(entity: ValidatedEntity, name: string, value: T | undefined): T {
  if (value === undefined) throw new Error(`amqp-mesh config: ${entity.schema.type} ${name} has no value and no default`);
  return value;
}

export function optionalString(entity: ValidatedEntity, name: string): string | undefined {
  return optionalOfType<string>(entity, name, 'string');
}
export function optionalBoolean(entity: ValidatedEntity, name: string): boolean | undefined {
  return optionalOfType<boolean>(entity, name, 'boolean');
}
export function optionalInteger(entity: ValidatedEntity, name: string): number | undefined {
  return optionalOfType<number>(entity, name, 'number');
}
export function stringValue(entity: ValidatedEntity, name: string): string {
  return required(entity, name, optionalString(entity, name));
}
export function integerValue(entity: ValidatedEntity, name: string): number {
  return required(entity, name, optionalInteger(entity, name));
}
export function booleanValue(entity: ValidatedEntity, name: string): boolean {
  return required(entity, name, optionalBoolean(entity, name));
}
