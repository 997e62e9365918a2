/**
 * The running router's configuration as management sees it: every configuration entity (from the
 * file or created through management) in its raw form, with qdrouterd's identity and name, and
 * the configuration they validate to. Pure: a change (CREATE, UPDATE, DELETE) yields a new state
 * or a refusal; the I/O layer applies the new state's settings through the same path as a SIGHUP
 * reload (router/reload.ts), so there is one way a running router changes.
 */
import { ConfigError, findEntitySchema, qdrouterdCamelCase, validateEntities, type RawAttribute, type RawEntity, type RawValue, type RouterConfig } from './config';
import { ENTITY_SCHEMAS } from './config/schema';
import { CORE_AGENT_TYPES, DUPLICATE_ADDRESS, computeRoleRefusal } from './config/validate';
import type { EntitySchema } from '../config/schema';
import type { ConfigValue } from '../config/types';
import { settingsFromConfig } from './settings';
import { parseConfigEntities, readConfigText } from '../config/load';
import { LOG_MODULES } from '../config/log';
import { readPolicyDir } from '../policy/config';
import { PolicyError } from '../policy/ruleset';
import type { RouterSettings } from './io/server';

/** qdrouterd's type prefix. */
const PREFIX = 'org.apache.qpid.dispatch.';

/** The line numbers given to entities created through management (past any file's last line). */
const MANAGEMENT_LINE_BASE = 10_000_000;

/** Most entities management may create on top of the file (each costs validation on every change). */
export const MAX_MANAGED_ENTITIES = 10_000;

/** Types whose deprecated attribute names qdrouterd's core agent still shows. */
const SHOWS_DEPRECATED_NAMES = new Set(['linkRoute', 'autoLink']);

/** Attributes management never shows. */
const SECRET_ATTRIBUTES = ['password', 'saslPassword'];

/** One configuration entity of the running router. */
export interface ConfigEntry {
  /** qdrouterd's identity: `listener/host:port[:name]`, `sslProfile/NAME`, `log/MODULE`, a number for the core agent's address/linkRoute/autoLink/exchange/binding, else `TYPE/N`. */
  readonly identity: string;
  /** The config-file type (`address`, `linkRoute`, `listener`, ... or `dummy`). */
  readonly schemaType: string;
  readonly raw: RawEntity;
}

/** qdrouterd's test entity `dummy` (its own system tests create, update and delete it); kept, never acted on. */
export interface DummyEntry {
  readonly identity: string;
  readonly attributes: Readonly<Record<string, ConfigValue>>;
}

/** The configuration of a running router. */
export interface ConfigState {
  /** The file it was loaded from (names it in messages). */
  readonly file: string;
  readonly entries: readonly ConfigEntry[];
  readonly dummies: readonly DummyEntry[];
  readonly config: RouterConfig;
  readonly settings: RouterSettings;
  /** The next serial for identities and management lines. */
  readonly serial: number;
}

/** A change management asks for. Attribute values are as decoded from the request. */
export type ConfigChange =
  | { op: 'CREATE'; type: string; attributes: Record<string, unknown> }
  | { op: 'UPDATE'; identity: string; attributes: Record<string, unknown> }
  | { op: 'DELETE'; identity: string };

/** A change refused, with qdrouterd's status code (400 Bad Request, 404 Not Found, 403 Forbidden). */
export class ConfigChangeError extends Error {
  constructor(readonly statusCode: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConfigChangeError';
  }
}

/** The config-file schema of a management type (`listener`, `router.config.address`, full or short). */
export function schemaOfManagementType(type: string): EntitySchema | undefined {
  const long = type.startsWith(PREFIX) ? type : PREFIX + type;
  return Object.values(ENTITY_SCHEMAS).find((s) => s.qdrouterdType === long);
}

/** The management type (short, as qdrouterd's schema names it) of a config-file type. */
export function managementTypeOf(schemaType: string): string {
  if (schemaType === 'dummy') return 'dummy';
  const q = ENTITY_SCHEMAS[schemaType]?.qdrouterdType;
  return q === undefined ? schemaType : q.slice(PREFIX.length);
}

function attr(raw: RawEntity, name: string): RawValue | undefined {
  return raw.attributes.find((a) => qdrouterdCamelCase(a.name) === name || qdrouterdCamelCase(a.name) === findEntitySchema(qdrouterdCamelCase(raw.type))?.attributes[name]?.deprecationName)?.value;
}

/** qdrouterd's identity of an entity (its Python agent's `_identifier` rules). */
function identityOf(raw: RawEntity, schema: EntitySchema, serial: number): string {
  const short = managementTypeOf(schema.type);
  const name = attr(raw, 'name');
  switch (schema.type) {
    case 'listener':
    case 'connector': {
      const host = attr(raw, 'host') ?? '';
      const port = attr(raw, 'port') ?? 'amqp';
      return `${short}/${host}:${port}${name !== undefined && name !== null && name !== '' ? `:${name}` : ''}`;
    }
    case 'sslProfile':
      return `${short}/${name}`;
    case 'vhost':
      // qdrouterd's agent names a vhost by its hostname.
      return `${short}/${attr(raw, 'hostname') ?? attr(raw, 'id') ?? ''}`;
    case 'log':
      return `${short}/${attr(raw, 'module')}`;
    default:
      // qdrouterd's core agent numbers its entities; tools and scripts read the number.
      return CORE_TYPES.has(schema.type) ? String(serial) : `${short}/${serial}`;
  }
}

/**
 * The entry of an entity, its name defaulting to its identity as qdrouterd's does. Two unnamed
 * listeners on port 0 would share qdrouterd's identity: the second gets the serial appended.
 */
function entryOf(raw: RawEntity, schema: EntitySchema, serial: number, taken: ReadonlySet<string>): ConfigEntry {
  const base = identityOf(raw, schema, serial);
  const identity = taken.has(base) ? `${base}#${serial}` : base;
  const named = !('name' in schema.attributes) || attr(raw, 'name') !== undefined
    ? raw
    : { ...raw, attributes: [...raw.attributes, { name: 'name', value: identity, line: raw.line }] };
  return { identity, schemaType: schema.type, raw: named };
}

/** Validates a list of entries (the whole configuration), as a file would be. */
function validated(file: string, entries: readonly ConfigEntry[], dummies: readonly DummyEntry[], serial: number): ConfigState {
  const config = validateEntities(entries.map((e) => e.raw), file);
  return { file, entries, dummies, config, settings: settingsFromConfig(config), serial };
}

/**
 * The state of a configuration file's entities (at start and on SIGHUP).
 * @throws ConfigError as loading the file does.
 */
export function computeConfigState(raw: readonly RawEntity[], file: string): ConfigState {
  let serial = 1;
  const entries: ConfigEntry[] = [];
  const taken = new Set<string>();
  for (const r of raw) {
    const schema = findEntitySchema(qdrouterdCamelCase(r.type));
    // An unknown type is refused by the validator, with its line.
    const entry = schema === undefined ? { identity: `${r.type}/${serial}`, schemaType: r.type, raw: r } : entryOf(r, schema, serial, taken);
    taken.add(entry.identity);
    entries.push(entry);
    serial++;
  }
  return validated(file, entries, [], serial);
}

/**
 * Reads a configuration file into a state (at start and on SIGHUP).
 * @throws ConfigError as loading the file does.
 */
export function loadConfigState(file: string): ConfigState {
  const raw = parseConfigEntities(readConfigText(file), file);
  // qdrouterd loads the policyDir's vhosts after the file's entities.
  return computeConfigState([...raw, ...readPolicyDir(raw, file)], file);
}

/** Attribute values from a request: AMQP integers may be bigints; binary and other types are refused. */
function rawValue(name: string, v: unknown): RawValue {
  if (typeof v === 'bigint') {
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw new ConfigChangeError(400, `Attribute '${name}': integer ${v} out of range`);
    return Number(v);
  }
  if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  if (Array.isArray(v)) return v.map((x) => rawValue(name, x));
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), rawValue(name, x)]));
  if (typeof v === 'object' && !Buffer.isBuffer(v)) return Object.fromEntries(Object.entries(v as object).map(([k, x]) => [k, rawValue(name, x)]));
  throw new ConfigChangeError(400, `Attribute '${name}': a value of this AMQP type cannot be set`);
}

/** The attributes of a request as raw attributes (`type` and `identity` are not attributes). */
function rawAttributes(attributes: Record<string, unknown>, line: number): RawAttribute[] {
  return Object.entries(attributes)
    .filter(([k, v]) => k !== 'type' && k !== 'identity' && v !== null && v !== undefined)
    .map(([k, v]) => ({ name: k, value: rawValue(k, v), line }));
}

const DUMMY_ATTRIBUTES: Record<string, 'string' | 'integer'> = { arg1: 'string', arg2: 'string', num1: 'integer', num2: 'integer', name: 'string' };

function dummyAttributes(attributes: Record<string, unknown>, base: Readonly<Record<string, ConfigValue>>): Record<string, ConfigValue> {
  const out: Record<string, ConfigValue> = { ...base };
  for (const [k, v0] of Object.entries(attributes)) {
    if (k === 'type' || k === 'identity') continue;
    const want = DUMMY_ATTRIBUTES[k];
    if (want === undefined) throw new ConfigChangeError(400, `Unknown attribute '${k}' for 'org.apache.qpid.dispatch.dummy'`);
    // qdmanage sends `num1=555` as the string "555": integers are read from strings as qdrouterd's schema does.
    const v = typeof v0 === 'bigint' ? Number(v0) : want === 'integer' && typeof v0 === 'string' && /^-?\d+$/.test(v0) ? Number(v0) : v0;
    if (v === null) { delete out[k]; continue; }
    if (want === 'string' ? typeof v !== 'string' : !(typeof v === 'number' && Number.isInteger(v))) {
      throw new ConfigChangeError(400, `Attribute '${k}' of 'org.apache.qpid.dispatch.dummy': expected ${want}, got ${JSON.stringify(v)}`);
    }
    out[k] = v as string | number;
  }
  return out;
}

/** Refusal of the new configuration: the validator's reason without the FILE:LINE prefix (there is no file line). */
function refused(e: unknown): never {
  if (e instanceof ConfigError) {
    // Entities made through management have no file line: their made-up line numbers go.
    const reason = e.reason.replace(/ on line (\d+)/g, (all, n: string) => (Number(n) >= MANAGEMENT_LINE_BASE ? '' : all));
    // qdrouterd's policy agent answers an invalid vhost 500 with its PolicyError (scripts match it).
    if (e.cause instanceof PolicyError) throw new ConfigChangeError(500, `PolicyError: ${e.cause.message}`, { cause: e });
    throw new ConfigChangeError(400, reason, { cause: e });
  }
  throw e;
}

/** {@link CORE_AGENT_TYPES} as a set. */
const CORE_TYPES: ReadonlySet<string> = new Set(CORE_AGENT_TYPES);

function checkStrictStrings(schema: EntitySchema, attributes: Record<string, unknown>): void {
  if (!CORE_TYPES.has(schema.type)) return;
  for (const [k, v] of Object.entries(attributes)) {
    if (v === null || v === undefined || typeof v === 'string') continue;
    if (schema.attributes[qdrouterdCamelCase(k)]?.type === 'string') {
      throw new ConfigChangeError(400, `Attribute '${k}' of '${managementTypeOf(schema.type)}' must be a string, got ${typeof v === 'bigint' ? String(v) : JSON.stringify(v)}`);
    }
  }
}

/**
 * Applies a management change to a state, purely: the new state (validated as a whole, as a
 * file is) and the identity of the entity changed.
 * @throws ConfigChangeError with qdrouterd's status code and a description.
 */
export function computeConfigChange(state: ConfigState, change: ConfigChange): { state: ConfigState; identity: string } {
  const { file, entries, dummies, serial } = state;
  if (change.op === 'CREATE') {
    if (change.attributes.identity !== undefined && change.attributes.identity !== null) {
      throw new ConfigChangeError(400, `'identity' attribute cannot be specified`);
    }
    if (entries.length + dummies.length >= MAX_MANAGED_ENTITIES) {
      throw new ConfigChangeError(400, `Too many entities: the limit is ${MAX_MANAGED_ENTITIES}`);
    }
    const name = change.attributes.name;
    const isDummy = change.type === 'dummy' || change.type === `${PREFIX}dummy`;
    const ownType = isDummy ? undefined : schemaOfManagementType(change.type)?.type;
    // A core-agent type's names are its own (a linkRoute may share an autoLink's name); the
    // Python agent's are shared by all of its types.
    const clash = ownType !== undefined && CORE_TYPES.has(ownType)
      ? entries.some((e) => e.schemaType === ownType && attr(e.raw, 'name') === name)
      : entries.some((e) => !CORE_TYPES.has(e.schemaType) && attr(e.raw, 'name') === name) || dummies.some((d) => d.attributes.name === name);
    if (typeof name === 'string' && clash) {
      // qdrouterd's core agent's words (scripts match them).
      throw new ConfigChangeError(400, `Name conflicts with an existing entity: '${name}' (duplicate value for unique attribute 'name')`);
    }
    if (isDummy) {
      const identity = `dummy/${serial}`;
      const attributes = dummyAttributes(change.attributes, {});
      if (attributes.name === undefined) attributes.name = identity;
      return { state: { ...state, dummies: [...dummies, { identity, attributes }], serial: serial + 1 }, identity };
    }
    const schema = schemaOfManagementType(change.type);
    if (schema === undefined) throw new ConfigChangeError(400, `No such entity type '${change.type}'`);
    if (schema.singleton) throw new ConfigChangeError(400, `Only one ${managementTypeOf(schema.type)} entity is allowed`);
    // qdrouterd checks the router's mode before the other attributes (its agent's words, which scripts match).
    if (schema.type === 'listener' || schema.type === 'connector') {
      const refusal = computeRoleRefusal(state.config.router.mode, schema.type, change.attributes.role);
      if (refusal !== null) throw new ConfigChangeError(400, refusal);
    }
    checkStrictStrings(schema, change.attributes);
    const line = MANAGEMENT_LINE_BASE + serial;
    const entry = entryOf({ type: schema.type, line, attributes: rawAttributes(change.attributes, line) }, schema, serial, new Set(entries.map((e) => e.identity)));
    let next: ConfigState;
    try {
      next = validated(file, [...entries, entry], dummies, serial + 1);
    } catch (e) {
      return refused(e);
    }
    // A file's duplicate address is ignored with a warning; qdrouterd's agent refuses a CREATE of one.
    if (next.config.warnings.some((w) => w.line === line && w.message.includes(DUPLICATE_ADDRESS))) throw new ConfigChangeError(400, 'Already Exists');
    return { state: next, identity: entry.identity };
  }
  const dummy = dummies.find((d) => d.identity === change.identity);
  if (dummy !== undefined) {
    const rest = dummies.filter((d) => d !== dummy);
    if (change.op === 'DELETE') return { state: { ...state, dummies: rest }, identity: dummy.identity };
    const next = { identity: dummy.identity, attributes: dummyAttributes(change.attributes, dummy.attributes) };
    return { state: { ...state, dummies: dummies.map((d) => (d === dummy ? next : d)) }, identity: dummy.identity };
  }
  let entry = entries.find((e) => e.identity === change.identity);
  let all = entries;
  // Every log module is an entity (qdrouterd's `log/MODULE`), configured or not: an UPDATE of one
  // the file does not configure adds its section.
  const logModule = /^log\/(.+)$/.exec(change.identity)?.[1];
  if (entry === undefined && change.op === 'UPDATE' && logModule !== undefined && (LOG_MODULES as readonly string[]).includes(logModule)) {
    const line = MANAGEMENT_LINE_BASE + serial;
    entry = { identity: change.identity, schemaType: 'log', raw: { type: 'log', line, attributes: [{ name: 'module', value: logModule, line }, { name: 'name', value: change.identity, line }] } };
    all = [...entries, entry];
  }
  if (entry === undefined) throw new ConfigChangeError(404, `No entity with identity=${change.identity}`);
  const target = entry;
  let next: ConfigEntry[];
  if (change.op === 'DELETE') next = all.filter((e) => e !== target);
  else {
    const schema = findEntitySchema(target.schemaType);
    if (schema !== undefined) checkStrictStrings(schema, change.attributes);
    const changed = rawAttributes(change.attributes, target.raw.line);
    // An attribute's current and deprecated names are one attribute (a vhost's hostname and id).
    const canonical = (n: string): string => {
      const c = qdrouterdCamelCase(n);
      const own = schema?.attributes;
      if (own === undefined || c in own) return c;
      return Object.entries(own).find(([, a]) => a.deprecationName === c)?.[0] ?? c;
    };
    const names = new Set(changed.map((a) => canonical(a.name)));
    const kept = target.raw.attributes.filter((a) => !names.has(canonical(a.name)));
    // An attribute set to null in an UPDATE goes back to its default.
    const unset = new Set(Object.entries(change.attributes).filter(([, v]) => v === null).map(([k]) => qdrouterdCamelCase(k)));
    const raw = { ...target.raw, attributes: [...kept.filter((a) => !unset.has(qdrouterdCamelCase(a.name))), ...changed] };
    next = all.map((e) => (e === target ? { ...target, raw } : e));
  }
  try {
    return { state: validated(file, next, dummies, serial + 1), identity: target.identity };
  } catch (e) {
    return refused(e);
  }
}

/**
 * Every configured entity of a config-file type as management shows it: each attribute with its
 * value (set or default) under its name (and for link routes and auto-links under its deprecated
 * name too, as qdrouterd's core agent shows `dir` and `direction`), plus `name` and `identity`.
 */
export function configuredRecords(state: ConfigState, schemaType: string): Record<string, unknown>[] {
  if (schemaType === 'dummy') return state.dummies.map((d) => ({ ...d.attributes, identity: d.identity }));
  const byLine = new Map(state.config.entities.map((v) => [v.line, v]));
  const out: Record<string, unknown>[] = [];
  for (const e of state.entries) {
    if (e.schemaType !== schemaType) continue;
    const v = byLine.get(e.raw.line);
    if (v === undefined) continue;
    const rec: Record<string, unknown> = {};
    for (const [k, value] of v.values) {
      rec[k] = value;
      const old = v.schema.attributes[k]?.deprecationName;
      if (old !== undefined && SHOWS_DEPRECATED_NAMES.has(schemaType)) rec[old] = value;
    }
    rec.identity = e.identity;
    // Secrets are never shown (qdrouterd hides them too).
    for (const k of SECRET_ATTRIBUTES) delete rec[k];
    out.push(rec);
  }
  return out;
}
