/**
 * The router's AMQP management agent: the one place management requests are answered (policy
 * can gate it here later). It dispatches qdrouterd 1.19's management-node operations (QUERY,
 * GET-TYPES, GET-ATTRIBUTES, GET-OPERATIONS, GET-ANNOTATIONS, GET-MGMT-NODES) and entity
 * operations (READ) to one module per entity type, each reading live state through a
 * {@link ManagementView}, and GET-LOG (the router's recent log lines). Status codes and descriptions are qdrouterd's: 200 OK, 400 Bad Request,
 * 404 Not Found, 405 Method Not Allowed, 501 Not Implemented.
 *
 * CREATE, UPDATE and DELETE are not implemented yet (501): configuration changes go through the
 * file and SIGHUP.
 */
import type { ManagementRequest } from '../../amqp/management';
import { EntityModule, EntityRecord, ManagementView, PREFIX, fullType } from './view';
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
  configAddressEntity, linkRouteEntity, autoLinkEntity, allocatorEntity,
];

/** The management node's own types (GET-TYPES lists them, as qdrouterd does). */
const NODE_TYPES: readonly { name: string; bases: readonly string[]; attributes: readonly string[]; operations: readonly string[] }[] = [
  { name: 'entity', bases: [], attributes: ['name', 'identity', 'type'], operations: [] },
  { name: 'configurationEntity', bases: ['entity'], attributes: ['name', 'identity', 'type'], operations: ['READ'] },
  { name: 'operationalEntity', bases: ['entity'], attributes: ['name', 'identity', 'type'], operations: ['READ'] },
  {
    name: 'org.amqp.management', bases: ['operationalEntity', 'entity'], attributes: ['name', 'identity', 'type'],
    operations: ['QUERY', 'GET-TYPES', 'GET-ANNOTATIONS', 'GET-OPERATIONS', 'GET-ATTRIBUTES', 'GET-MGMT-NODES', 'READ'],
  },
  {
    name: 'management', bases: ['org.amqp.management', 'operationalEntity', 'entity'], attributes: ['name', 'identity', 'type'],
    operations: ['GET-SCHEMA', 'GET-JSON-SCHEMA', 'GET-LOG', 'PROFILE', 'QUERY', 'GET-TYPES', 'GET-ANNOTATIONS', 'GET-OPERATIONS', 'GET-ATTRIBUTES', 'GET-MGMT-NODES', 'READ'],
  },
];

const ALL_TYPES = [...NODE_TYPES, ...ENTITY_MODULES];

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

/** The agent: answers requests against one view of the router. */
export class ManagementAgent {
  constructor(private readonly view: ManagementView) {}

  /** Answers one request; never throws for a bad request (the router keeps serving). */
  handle(req: ManagementRequest): ManagementReply {
    try {
      const body = this.dispatch(req);
      return { statusCode: 200, statusDescription: STATUS_TEXT[200], body };
    } catch (e) {
      if (e instanceof Status) return { statusCode: e.statusCode, statusDescription: e.message, body: {} };
      return { statusCode: 500, statusDescription: `${(e as Error).name}: ${(e as Error).message}`, body: {} };
    }
  }

  private dispatch(req: ManagementRequest): unknown {
    switch (req.operation) {
      case 'QUERY':
        return this.query(req);
      case 'READ':
        return this.read(req);
      case 'GET-TYPES':
        return this.perType(req.entityType, (m) => m.bases.map((b) => longName(b)));
      case 'GET-ATTRIBUTES':
        return this.perType(req.entityType, (m) => [...m.attributes]);
      case 'GET-OPERATIONS':
        return this.perType(req.entityType, (m) => [...m.operations]);
      case 'GET-ANNOTATIONS':
        return {};
      case 'GET-LOG': {
        // As qdrouterd: [module, level, text, source file, source line, time] per line, oldest first.
        const limit = req.properties.limit;
        const n = typeof limit === 'number' && Number.isInteger(limit) ? limit : typeof limit === 'bigint' ? Number(limit) : -1;
        return this.view.recentLogs(n).map((l) => [l.module, l.level, l.text, null, null, l.time]);
      }
      case 'GET-MGMT-NODES':
        return this.view.nodes().map((n) => `amqp:/_topo/0/${n.id}/$management`);
      case 'CREATE':
      case 'UPDATE':
      case 'DELETE': {
        const t = findType(req.type);
        const name = t ? fullType(t) : longName(req.type ?? 'entity');
        if (t && !t.operations.includes(req.operation)) throw new Status(405, `Method Not Allowed: operation '${req.operation}' on ${name}`);
        throw new Status(501, `Operation '${req.operation}' not implemented on ${name}: edit the configuration file and send SIGHUP`);
      }
      case '':
        throw new Status(400, `No 'operation' property`);
      default:
        throw new Status(501, `Operation '${req.operation}' not implemented on org.amqp.management`);
    }
  }

  private perType(entityType: string | null, f: (m: (typeof ALL_TYPES)[number]) => unknown): Record<string, unknown> {
    const only = findType(entityType);
    return Object.fromEntries(ALL_TYPES.filter((m) => only === null || m === only).map((m) => [fullType(m), f(m)]));
  }

  /** QUERY: the asked attributes (all of the type's when none) of every entity of the type, paged. */
  private query(req: ManagementRequest): { attributeNames: string[]; results: unknown[][] } {
    const t = findType(req.entityType);
    const modules = t === null ? ENTITY_MODULES : isModule(t) ? [t] : [];
    const all = t === null ? [...new Set(ENTITY_MODULES.flatMap((m) => m.attributes))] : [...t.attributes];
    let names = req.attributeNames;
    if (names.length > 0) {
      const unknown = names.filter((n) => !all.includes(n));
      if (unknown.length > 0) throw new Status(404, `Unknown attributes ${JSON.stringify(unknown)}${t ? ` for type ${fullType(t)}` : ''}.`);
    } else names = all;
    const rows: unknown[][] = [];
    for (const m of modules) for (const e of m.read(this.view)) rows.push(names.map((n) => (n === 'type' ? fullType(m) : e[n] ?? null)));
    const offset = req.offset ?? 0;
    const end = req.count === null ? rows.length : offset + req.count;
    return { attributeNames: names, results: rows.slice(offset, end) };
  }

  /** READ by name or identity (name first, as qdrouterd), optionally checked against `type`. */
  private read(req: ManagementRequest): EntityRecord {
    const t = findType(req.type);
    const [key, want] = req.name !== null ? ['name', req.name] : req.identity !== null ? ['identity', req.identity] : [null, null];
    if (key === null) {
      if (t === null || t.name === 'management' || t.name === 'org.amqp.management') return { name: 'self', identity: 'self', type: `${PREFIX}.management` };
      throw new Status(400, `${fullType(t)}: No name or identity provided`);
    }
    for (const m of t !== null && isModule(t) ? [t] : ENTITY_MODULES) {
      const e = m.read(this.view).find((x) => x[key] === want);
      if (e === undefined) continue;
      if (req.identity !== null && key === 'name' && e.identity !== req.identity) throw new Status(400, `Conflicting name=${req.name} identity=${req.identity}`);
      return { ...e, type: fullType(m) };
    }
    throw new Status(404, `No entity with ${key}=${want}`);
  }
}
