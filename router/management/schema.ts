/**
 * The body of a GET-SCHEMA reply, generated from amqp-mesh's own tables (the config schema and the
 * management entity modules) rather than from a copy of qdrouterd's `qdrouter.json`, so the
 * schema a console sees is the one the router actually validates and serves.
 *
 * The shape follows qdrouterd 1.19's `Schema.dump()` (python/qpid_dispatch_internal/management/
 * schema.py), because consoles and qdmanage read it that way:
 * - entity types are keyed by short name, with `router.config.` also stripped (`address`, not
 *   `router.config.address`); `fullyQualifiedType` carries the long name;
 * - each type's `attributes` and `operations` already include those inherited from its bases
 *   (own first), and `type` is left out of the attributes; there is no `extends` key;
 * - an attribute shows only type, default, required, unique, deprecated, description and graph,
 *   and, as qdrouterd's `_dump_dict`, every key whose value is falsy (false, 0, '', []) is dropped;
 * - an enumeration's type is the list of its values.
 * Configuration attributes are described by the config table; the others, and configuration
 * attributes qdrouterd describes differently, by their module's `schema` facts (view.ts); the
 * agent's extra columns (`unlisted`) stay out, as qdrouterd's schema leaves them out. Apart from
 * descriptions, the dump differs from qdrouterd 1.19's only in operations amqp-mesh does not
 * offer (CREATE/DELETE of exchange, binding, authServicePlugin) or offers beyond its schema
 * (UPDATE of a connection, which qdrouterd's agent also accepts).
 * Descriptions are left out: the texts are qdrouterd's, and dump() omits empty ones anyway. GET-
 * ANNOTATIONS answers separately, so there is no `annotations` key here either (dump() has none).
 */
import type { AttributeSchema, EntitySchema } from '../../config/schema';
import { ENTITY_SCHEMAS } from '../config/schema';
import { ENTITY_MODULES } from './agent';
import { BASE_TYPES, baseOperations } from './node-types';
import { PREFIX, listedAttributes, type AttributeFacts } from './view';

/** A type as qdrouterd dumps it: a built-in type name or, for an enumeration, its values. */
type DumpedType = string | readonly string[];

// The attributes every type inherits from `entity`; `type` is never dumped (qdrouterd reports
// the type through fullyQualifiedType instead).
const ENTITY_BASE_ATTRIBUTES: Record<string, Record<string, unknown>> = {
  name: { type: 'string', unique: true },
  identity: { type: 'string', unique: true },
};

/** Drops falsy values, as qdrouterd's `_dump_dict` does, so the keys present match its reply. */
function dumpDict(entries: readonly (readonly [string, unknown])[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of entries) {
    if (value === undefined || value === null || value === false || value === 0 || value === '') continue;
    if (Array.isArray(value) && value.length === 0) continue;
    if (typeof value === 'object' && !Array.isArray(value) && Object.keys(value as object).length === 0) continue;
    out[key] = value;
  }
  return out;
}

function dumpedType(attribute: AttributeSchema): DumpedType {
  switch (attribute.type) {
    // qdrouterd's ports are strings ("amqp", "5672"); amqp-mesh only resolves them further.
    case 'port':
      return 'string';
    case 'enum':
      return [...(attribute.values ?? [])];
    default:
      return attribute.type;
  }
}

function dumpConfigAttribute(attribute: AttributeSchema): Record<string, unknown> {
  return dumpDict([
    ['type', dumpedType(attribute)],
    ['default', attribute.default],
    ['required', attribute.required],
    ['deprecated', attribute.deprecated],
  ]);
}

/** An attribute its module describes (type, default, required, graph); a plain string otherwise. */
function dumpFacts(facts: AttributeFacts | undefined): Record<string, unknown> {
  if (facts === undefined) return { type: 'string' };
  return dumpDict([
    ['type', facts.type],
    ['default', facts.default],
    ['required', facts.required],
    ['graph', facts.graph],
  ]);
}

/** qdrouterd's short name: the long name minus the prefix, and minus `router.config.` too. */
function shortName(moduleName: string): string {
  return moduleName.startsWith('router.config.') ? moduleName.slice('router.config.'.length) : moduleName;
}



function dumpEntityType(
  fullName: string,
  attributes: Record<string, unknown>,
  operations: readonly string[],
  flags: { deprecated?: boolean; singleton?: boolean },
): Record<string, unknown> {
  // Key order is dump()'s: attributes, operations, description, fullyQualifiedType, references, deprecated, singleton.
  return dumpDict([
    ['attributes', { ...attributes, ...ENTITY_BASE_ATTRIBUTES }],
    ['operations', [...operations]],
    ['fullyQualifiedType', fullName],
    ['deprecated', flags.deprecated],
    ['singleton', flags.singleton],
  ]);
}

// Types the config table knows but no entity module serves: qdrouterd still lists them, as
// singletons readable only or as collections created and deleted.
function configOnlyOperations(schema: EntitySchema): string[] {
  return schema.singleton ? baseOperations('configurationEntity') : ['CREATE', 'DELETE', ...baseOperations('configurationEntity')];
}

function build(): Record<string, unknown> {
  const entityTypes: Record<string, unknown> = {};
  for (const base of BASE_TYPES) {
    entityTypes[base.name] = dumpEntityType(`${PREFIX}.${base.name}`, {}, baseOperations(base.name), { singleton: base.singleton });
  }
  const configByLongName = new Map(
    Object.values(ENTITY_SCHEMAS).filter((s) => s.qdrouterdType !== undefined).map((s) => [s.qdrouterdType!, s]),
  );
  for (const schema of Object.values(ENTITY_SCHEMAS)) {
    if (schema.qdrouterdType === undefined) continue;
    const module = ENTITY_MODULES.find((m) => `${PREFIX}.${m.name}` === schema.qdrouterdType);
    // The module's list is qdrouterd's order (and what QUERY returns); table attributes it lacks follow.
    const tableNames = listedAttributes({ attributes: Object.keys(schema.attributes) });
    const names = module === undefined ? tableNames : [...new Set([...listedAttributes(module), ...tableNames])];
    const attributes = Object.fromEntries(
      names.map((n) => [n, module?.schema?.[n] === undefined && schema.attributes[n] !== undefined ? dumpConfigAttribute(schema.attributes[n]!) : dumpFacts(module?.schema?.[n])]),
    );
    const operations = module?.operations ?? configOnlyOperations(schema);
    entityTypes[shortName(schema.qdrouterdType.slice(PREFIX.length + 1))] = dumpEntityType(schema.qdrouterdType, attributes, operations, {
      deprecated: schema.deprecated,
      singleton: schema.singleton,
    });
  }
  for (const module of ENTITY_MODULES) {
    const fullName = `${PREFIX}.${module.name}`;
    if (configByLongName.has(fullName)) continue; // Already dumped with its config table above.
    const attributes = Object.fromEntries(listedAttributes(module).map((n) => [n, dumpFacts(module.schema?.[n])]));
    entityTypes[shortName(module.name)] = dumpEntityType(fullName, attributes, module.operations, {});
  }
  return { prefix: PREFIX, entityTypes };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}

let memo: Record<string, unknown> | undefined;

/**
 * The management schema as qdrouterd 1.19 returns it for GET-SCHEMA (`QdSchema().dump()`):
 * `{ prefix, entityTypes: { <shortName>: { attributes, operations, fullyQualifiedType, ... } } }`,
 * built from the router's config schema table and its management entity modules.
 *
 * Built once and shared: the tables it reads are constants, and the result is deeply frozen so
 * one caller cannot change what the next one sends.
 */
export function computeManagementSchema(): Record<string, unknown> {
  memo ??= deepFreeze(build());
  return memo;
}
