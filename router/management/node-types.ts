/**
 * The management node's own entity types (entity, configurationEntity, operationalEntity,
 * org.amqp.management, management): one chain, read by the agent (GET-TYPES, GET-OPERATIONS,
 * the node named `self`) and by the schema (GET-SCHEMA). Imports nothing, so both can use it.
 */
export interface BaseType {
  readonly name: string;
  /** Nearest base only: inheritance is resolved by walking the chain. */
  readonly extends?: string;
  /** Own operations only (qdrouterd appends the bases' after them). */
  readonly operations: readonly string[];
  readonly singleton?: boolean;
}

// The management node's own types, as qdrouterd's own-plus-base chain so operations come out in
// qdrouterd's order (the agent serves them from here: MANAGEMENT_NODE_TYPES).
export const BASE_TYPES: readonly BaseType[] = [
  { name: 'entity', operations: [] },
  { name: 'configurationEntity', extends: 'entity', operations: ['READ'] },
  { name: 'operationalEntity', extends: 'entity', operations: ['READ'] },
  {
    name: 'org.amqp.management', extends: 'operationalEntity',
    operations: ['QUERY', 'GET-TYPES', 'GET-ANNOTATIONS', 'GET-OPERATIONS', 'GET-ATTRIBUTES', 'GET-MGMT-NODES'],
  },
  { name: 'management', extends: 'org.amqp.management', singleton: true, operations: ['GET-SCHEMA', 'GET-JSON-SCHEMA', 'GET-LOG', 'PROFILE'] },
];

/** A type's operations: its own, then its bases' (qdrouterd's order). */
export function baseOperations(name: string): string[] {
  const base = BASE_TYPES.find((b) => b.name === name);
  if (base === undefined) return [];
  return [...base.operations, ...(base.extends !== undefined ? baseOperations(base.extends) : [])];
}

function baseChain(name: string): string[] {
  const base = BASE_TYPES.find((b) => b.name === name);
  return base?.extends === undefined ? [] : [base.extends, ...baseChain(base.extends)];
}

/**
 * The management node's own types (entity, configurationEntity, operationalEntity,
 * org.amqp.management, management) as the agent lists them: bases nearest first, operations
 * own then inherited, the entity attributes.
 */
export const MANAGEMENT_NODE_TYPES: readonly { name: string; bases: readonly string[]; attributes: readonly string[]; operations: readonly string[] }[] =
  BASE_TYPES.map((b) => ({ name: b.name, bases: baseChain(b.name), attributes: ['name', 'identity', 'type'], operations: baseOperations(b.name) }));

