/**
 * The router's AMQP management agent: the one place management requests are answered (policy
 * can gate it here later). It dispatches qdrouterd 1.19's management-node operations (QUERY,
 * GET-TYPES, GET-ATTRIBUTES, GET-OPERATIONS, GET-ANNOTATIONS, GET-MGMT-NODES, GET-SCHEMA,
 * GET-JSON-SCHEMA, GET-LOG) and entity operations (READ, and CREATE, UPDATE, DELETE through its
 * {@link ManagementControl}, which validates and applies them as a reload) to one module per
 * entity type, each reading live state through a {@link ManagementView}. Status codes and
 * descriptions are qdrouterd's: 200 OK, 201 Created, 204 No Content, 400 Bad Request,
 * 403 Forbidden, 404 Not Found, 501 Not Implemented.
 */
import { connectionLinkRouteEntity } from './connection-link-route';
import type { ManagementRequest } from '../../amqp/management';
import { ENTITY_ATTRIBUTES, listedAttributes, EntityModule, EntityRecord, ManagementControl, ManagementView, PREFIX, fullType } from './view';
import { ConfigChangeError } from '../config-store';
import { computeManagementSchema } from './schema';
import { MANAGEMENT_NODE_TYPES } from './node-types';
import { routerEntity } from './router';
import { connectionEntity } from './connection';
import { linkEntity } from './link';
import { addressEntity } from './address';
import { nodeEntity } from './node';
import { listenerEntity } from './listener';
import { connectorEntity } from './connector';
import { sslProfileEntity } from './ssl-profile';
import { logEntity } from './log';
import { configAddressEntity } from './config-address';
import { linkRouteEntity } from './link-route';
import { autoLinkEntity } from './auto-link';
import { allocatorEntity } from './allocator';
import { dummyEntity } from './dummy';
import { policyEntity, vhostEntity, vhostStatsEntity } from './policy';
import { logStatsEntity } from './log-stats';
import { authServicePluginEntity, bindingEntity, consoleEntity, exchangeEntity, vhostUserGroupSettingsEntity } from './accepted-only';

/** A reply: status code, description and body. */
export interface ManagementReply {
  statusCode: number;
  statusDescription: string;
  body: unknown;
}

/** qdrouterd's status texts. */
export const STATUS_TEXT: Record<number, string> = {
  200: 'OK', 201: 'Created', 204: 'No Content', 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found',
  405: 'Method Not Allowed', 500: 'Internal Server Error', 501: 'Not Implemented',
};

/** Every entity type the agent serves. */
export const ENTITY_MODULES: readonly EntityModule[] = [
  routerEntity, connectionEntity, linkEntity, addressEntity, nodeEntity, listenerEntity, connectorEntity, sslProfileEntity, logEntity,
  configAddressEntity, linkRouteEntity, autoLinkEntity, allocatorEntity, dummyEntity, logStatsEntity, policyEntity, vhostEntity, vhostStatsEntity,
  vhostUserGroupSettingsEntity, exchangeEntity, bindingEntity, authServicePluginEntity, consoleEntity, connectionLinkRouteEntity,
];

/** The management node's own types (GET-TYPES lists them, as qdrouterd does). */
const NODE_TYPES = MANAGEMENT_NODE_TYPES;

const ALL_TYPES = [...NODE_TYPES, ...ENTITY_MODULES];
/** The management node itself (the entity named `self`). */
const MANAGEMENT_NODE = NODE_TYPES.find((t) => t.name === 'management')!;

/** A refusal with qdrouterd's status code. */
class Status extends Error {
  constructor(readonly statusCode: number, description: string) {
    super(description);
  }
}

/** The full name of a type given short (`router.link`) or long (`org.apache.qpid.dispatch.router.link`). */
export function longName(t: string): string {
  return t.startsWith(`${PREFIX}.`) || t === 'org.amqp.management' ? t : `${PREFIX}.${t}`;
}

function findType(t: string | null): (typeof ALL_TYPES)[number] | null {
  if (t === null || t === '') return null;
  const want = longName(t);
  const found = ALL_TYPES.find((m) => fullType(m) === want || m.name === t);
  if (found === undefined) throw new Status(400, `No such entity type '${want}'`);
  return found;
}

function isModule(m: (typeof ALL_TYPES)[number]): m is EntityModule {
  return 'read' in m;
}

/** The agent: answers requests against one view of the router, changes it through its control. */
/** The entity types qdrouterd's router core answers for (management_agent.c), not its Python agent. */
const C_AGENT_ENTITY_TYPES: ReadonlySet<string> = new Set([
  'router.address', 'router.link', 'router.config.address', 'router.config.linkRoute', 'router.config.autoLink',
  'router', 'console', 'connection', 'router.config.exchange', 'router.config.binding', 'router.connection.linkRoute',
]);

export class ManagementAgent {
  private view: ManagementView;

  constructor(private readonly baseView: ManagementView, private readonly control: ManagementControl | null = null) {
    this.view = baseView;
  }

  /**
   * Answers one request; never throws for a bad request (the router keeps serving). `requester`:
   * the connection it came in on (connection-scoped entities are that connection's), else null.
   */
  handle(req: ManagementRequest, requester: unknown = null): ManagementReply {
    // The same view, asked on behalf of this requester (its prototype keeps every getter live).
    this.view = requester === null ? this.baseView : Object.create(this.baseView, { requester: { value: requester } }) as ManagementView;
    try {
      const [statusCode, body] = this.dispatch(req);
      return { statusCode, statusDescription: STATUS_TEXT[statusCode] ?? 'OK', body };
    } catch (e) {
      if (e instanceof Status || e instanceof ConfigChangeError) return { statusCode: e.statusCode, statusDescription: e.message, body: {} };
      return { statusCode: 500, statusDescription: `${(e as Error).name}: ${(e as Error).message}`, body: {} };
    }
  }

  private dispatch(req: ManagementRequest): [number, unknown] {
    // qdrouterd matches operations ignoring case (`callme` is CALLME).
    const op = req.operation.toUpperCase();
    switch (op) {
      case 'QUERY':
        return [200, this.query(req)];
      case 'GET-TYPES':
        return [200, this.perType(req.entityType, (m) => m.bases.map((b) => longName(b)))];
      case 'GET-ATTRIBUTES':
        // The schema's attributes, then the inherited ones, as qdrouterd lists them (not the extra columns QUERY answers).
        return [200, this.perType(req.entityType, (m) => [...listedAttributes(m), ...ENTITY_ATTRIBUTES])];
      case 'GET-OPERATIONS':
        return [200, this.perType(req.entityType, (m) => [...m.operations])];
      case 'GET-ANNOTATIONS':
        return [200, {}];
      case 'GET-SCHEMA':
        return [200, computeManagementSchema()];
      case 'GET-JSON-SCHEMA':
        return [200, JSON.stringify(computeManagementSchema())];
      case 'GET-LOG': {
        // As qdrouterd: [module, level, text, source file, source line, time] per line, oldest first.
        const limit = req.properties.limit;
        const n = typeof limit === 'number' && Number.isInteger(limit) ? limit : typeof limit === 'bigint' ? Number(limit) : -1;
        return [200, this.view.recentLogs(n).map((l) => [l.module, l.level, l.text, null, null, l.time])];
      }
      case 'GET-MGMT-NODES':
        return [200, this.view.nodes().map((n) => `amqp:/_topo/0/${n.id}/$management`)];
      case 'CREATE':
        return [201, this.create(req)];
      case '':
        throw new Status(400, `No 'operation' property`);
      default:
        return this.onEntity(op, req);
    }
  }

  private perType(entityType: string | null, f: (m: (typeof ALL_TYPES)[number]) => unknown): Record<string, unknown> {
    const only = findType(entityType);
    return Object.fromEntries(ALL_TYPES.filter((m) => only === null || m === only).map((m) => [fullType(m), f(m)]));
  }

  /** QUERY: the asked attributes (all of the type's when none) of every entity of the type, paged. */
  private query(req: ManagementRequest): { attributeNames: string[]; results: unknown[][] } {
    // qdrouterd's core agent takes `type` when there is no `entityType` (qdrouterd's own tests send it).
    const asType = req.entityType === null && req.type !== null ? findType(req.type) : null;
    const t = asType !== null && isModule(asType) ? asType : findType(req.entityType);
    const modules = t === null ? ENTITY_MODULES : isModule(t) ? [t] : [];
    const all = t === null ? [...new Set(modules.flatMap((m) => m.attributes))] : [...t.attributes];
    let names = req.attributeNames;
    if (names.length > 0) {
      const unknown = names.filter((n) => !all.includes(n));
      if (unknown.length > 0) throw new Status(404, `Unknown attributes ${JSON.stringify(unknown)}${t ? ` for type ${fullType(t)}` : ''}.`);
    } else names = all;
    const rows: unknown[][] = [];
    for (const m of modules) {
      for (const e of m.read(this.view)) {
        // Without a type qdrouterd's agent names every entity TYPE/ID (connections keep their number).
        const identity = t === null && m.name !== 'connection' && !String(e.identity).startsWith(`${m.name}/`) ? `${m.name}/${e.identity}` : e.identity;
        rows.push(names.map((n) => (n === 'type' ? fullType(m) : n === 'identity' ? identity : e[n] ?? null)));
      }
    }
    if (t === null || t.name === 'management') {
      const self: EntityRecord = { name: 'self', identity: 'self', type: `${PREFIX}.management` };
      rows.push(names.map((n) => self[n] ?? null));
    }
    const offset = req.offset ?? 0;
    const end = req.count === null ? rows.length : offset + req.count;
    return { attributeNames: names, results: rows.slice(offset, end) };
  }

  /**
   * The entity a request names, by name or identity (name first, as qdrouterd), in the
   * request's type, then among every type; one of another type than the request's `type` is a bad request. No name or identity:
   * the management node itself.
   */
  private find(req: ManagementRequest): { module: EntityModule | null; record: EntityRecord } {
    const t = findType(req.type);
    const [key, want] = req.name !== null ? ['name', req.name] : req.identity !== null ? ['identity', req.identity] : [null, null];
    const nodeType = t === null || t.name === 'management' || t.name === 'org.amqp.management';
    const self = { module: null, record: { name: 'self', identity: 'self', type: `${PREFIX}.management` } };
    if (key === null) {
      if (nodeType) return self;
      throw new Status(400, C_AGENT_ENTITY_TYPES.has(t.name) ? 'No name or identity provided' : `${fullType(t)}: No name or identity provided`);
    }
    // The management node itself is the entity named "self".
    if (want === 'self' && nodeType) return self;
    // The requested type first: qdrouterd's core agent numbers each of its types apart, so a
    // link-route's identity may be a link's too.
    const first = ENTITY_MODULES.find((m) => m === t);
    const modules = first !== undefined ? [first, ...ENTITY_MODULES.filter((m) => m !== first)] : ENTITY_MODULES;
    for (const m of modules) {
      const e = m.read(this.view).find((x) => x[key] === want);
      if (e === undefined) continue;
      if (req.name !== null && req.identity !== null && (e.name !== req.name || e.identity !== req.identity)) throw new Status(400, `Conflicting name=${req.name} identity=${req.identity}`);
      if (t !== null && t !== m && !m.bases.includes(t.name)) throw new Status(400, `Entity type '${fullType(m)}' does not extend requested type '${fullType(t)}'`);
      return { module: m, record: { ...e, type: fullType(m) } };
    }
    // qdrouterd's core agent (its C types) says only "Not Found"; its Python agent says which.
    if (t !== null && C_AGENT_ENTITY_TYPES.has(t.name)) throw new Status(404, 'Not Found');
    throw new Status(404, `No entity with ${req.name !== null ? `name=${req.name}` : ''}${req.name !== null && req.identity !== null ? ' ' : ''}${req.identity !== null ? `identity=${req.identity}` : ''}`);
  }

  /** READ, UPDATE, DELETE and the entity's own operations (the test entity's CALLME). */
  private onEntity(op: string, req: ManagementRequest): [number, unknown] {
    const { module, record } = this.find(req);
    const typeName = module ? fullType(module) : `${PREFIX}.management`;
    const ops = module ? module.operations : MANAGEMENT_NODE.operations;
    if (!ops.includes(op)) {
      // qdrouterd's core agent forbids deleting a connection (close it with UPDATE adminStatus=deleted).
      if (module?.name === 'connection' && op === 'DELETE') throw new Status(403, 'Forbidden');
      throw new Status(501, `Operation '${op}' not implemented for '${typeName}' [${ops.map((o) => `'${o}'`).join(', ')}]`);
    }
    if (op === 'READ') return [200, record];
    if (op === 'CALLME') return [200, { ...req.properties }];
    const control = this.control;
    if (control === null || module === null) throw new Status(501, `Operation '${op}' not implemented for '${typeName}'`);
    const identity = String(record.identity);
    if (module === connectionLinkRouteEntity) {
      if (op !== 'DELETE' || !control.deleteConnectionLinkRoute(this.view.requester, identity)) throw new Status(404, 'Not Found');
      return [204, {}];
    }
    if (module.name === 'connection') {
      // UPDATE adminStatus=deleted closes it; nothing else of a connection can change.
      const body = attributesOf(req);
      if (body.adminStatus !== 'deleted') throw new Status(400, `Only adminStatus=deleted can be updated on a connection`);
      // As qdrouterd: the mesh's own connections cannot be closed this way.
      if (record.role === 'inter-router') throw new Status(403, 'Forbidden');
      // The requester's policy group may forbid it (allowAdminStatusUpdate: false).
      if (control.mayUpdateAdminStatus?.(this.view.requester) === false) throw new Status(403, 'Forbidden');
      if (!control.closeConnection(identity)) throw new Status(404, `No entity with identity=${identity}`);
      return [200, { ...record, adminStatus: 'deleted', operStatus: 'closing' }];
    }
    if (op === 'DELETE') {
      control.changeConfig({ op: 'DELETE', identity });
      return [204, {}];
    }
    control.changeConfig({ op: 'UPDATE', identity, attributes: attributesOf(req) });
    return [200, this.byIdentity(module, identity)];
  }

  /** CREATE: type and name from the properties or the body (the same if both); the new entity's attributes. */
  private create(req: ManagementRequest): EntityRecord {
    const attributes = { ...attributesOf(req) };
    for (const [k, prop] of [['type', req.type], ['name', req.name]] as const) {
      if (prop === null || prop === '') continue;
      if (attributes[k] !== undefined && attributes[k] !== null && attributes[k] !== prop) throw new Status(400, `Conflicting values for '${k}'`);
      attributes[k] = prop;
    }
    const type = attributes.type;
    if (typeof type !== 'string' || type === '') throw new Status(400, `No 'type' attribute in ${JSON.stringify(attributes)}`);
    const t = findType(type);
    if (t === null || !isModule(t)) throw new Status(400, `No such entity type '${longName(type)}'`);
    if (!t.operations.includes('CREATE')) throw new Status(501, `Operation 'CREATE' not implemented for '${fullType(t)}' [${t.operations.map((o) => `'${o}'`).join(', ')}]`);
    if (this.control === null) throw new Status(501, `Operation 'CREATE' not implemented for '${fullType(t)}'`);
    const identity = t === connectionLinkRouteEntity
      ? this.control.createConnectionLinkRoute(this.view.requester, attributes)
      : this.control.changeConfig({ op: 'CREATE', type: t.name, attributes });
    return this.byIdentity(t, identity);
  }

  private byIdentity(m: EntityModule, identity: string): EntityRecord {
    const e = m.read(this.view).find((x) => x.identity === identity);
    return e === undefined ? { identity, type: fullType(m) } : { ...e, type: fullType(m) };
  }
}

/** The attribute map of a CREATE or UPDATE body (an empty map when there is none). */
function attributesOf(req: ManagementRequest): Record<string, unknown> {
  const b = req.body;
  if (b === null || b === undefined) return {};
  if (b instanceof Map) return Object.fromEntries([...b].map(([k, v]) => [String(k), v]));
  if (typeof b === 'object' && !Array.isArray(b) && !Buffer.isBuffer(b)) return b as Record<string, unknown>;
  throw new Status(400, `Request body must be a map of attributes`);
}
