/**
 * AMQP Management (the subset qdmanage/qdstat use) on the router's `$management` address:
 * QUERY and READ of connectors, auto-links, link routes, addresses and the router itself, with
 * qdrouterd's entity type names and attribute names, and GET-TYPES. Requests arrive on a link
 * attached to `$management`; the reply goes to the request's reply-to, which must be a
 * receiving link of the same connection (as qdmanage does with its dynamic reply address).
 */
import { Described, Reader, Writer } from '../protocol/codec';
import { D } from '../protocol/performatives';

/** qdrouterd's entity type names. */
export const ENTITY_TYPES = {
  router: 'org.apache.qpid.dispatch.router',
  connector: 'org.apache.qpid.dispatch.connector',
  autoLink: 'org.apache.qpid.dispatch.router.config.autoLink',
  linkRoute: 'org.apache.qpid.dispatch.router.config.linkRoute',
  address: 'org.apache.qpid.dispatch.router.config.address',
} as const;

/** One entity as management shows it: attribute name → value. */
export type EntityRecord = Record<string, unknown>;

/** Where management reads from (the router's state, through its own accessors). */
export interface ManagementSource {
  entities(type: string): EntityRecord[] | null;
}

/** A decoded management request. */
export interface ManagementRequest {
  messageId: unknown;
  replyTo: string | null;
  operation: string;
  type: string | null;
  entityType: string | null;
  name: string | null;
  identity: string | null;
  attributeNames: string[];
}

/** Thrown for a request that is not a management request (bad sections). */
export class ManagementError extends Error {
  constructor(message: string, readonly statusCode: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ManagementError';
  }
}

/** Reads the properties, application-properties and body of a request message. */
export function decodeRequest(payload: Buffer): ManagementRequest {
  const r = new Reader(payload);
  const req: ManagementRequest = { messageId: null, replyTo: null, operation: '', type: null, entityType: null, name: null, identity: null, attributeNames: [] };
  while (r.off < payload.length) {
    const s = r.read();
    if (!(s instanceof Described)) throw new ManagementError('message section expected', 400);
    const code = typeof s.descriptor === 'number' ? s.descriptor : Number(s.descriptor);
    if (code === D.Properties && Array.isArray(s.value)) {
      req.messageId = s.value[0] ?? null;
      req.replyTo = typeof s.value[4] === 'string' ? s.value[4] : null;
    } else if (code === D.ApplicationProperties && s.value && typeof s.value === 'object') {
      const ap = s.value instanceof Map ? Object.fromEntries(s.value) : (s.value as Record<string, unknown>);
      req.operation = typeof ap.operation === 'string' ? ap.operation : '';
      req.type = typeof ap.type === 'string' ? ap.type : null;
      req.entityType = typeof ap.entityType === 'string' ? ap.entityType : null;
      req.name = typeof ap.name === 'string' ? ap.name : null;
      req.identity = typeof ap.identity === 'string' ? ap.identity : null;
    } else if (code === D.AmqpValue && s.value && typeof s.value === 'object' && !Array.isArray(s.value)) {
      const body = s.value instanceof Map ? Object.fromEntries(s.value) : (s.value as Record<string, unknown>);
      if (Array.isArray(body.attributeNames)) req.attributeNames = (body.attributeNames as unknown[]).filter((x): x is string => typeof x === "string");
    }
  }
  return req;
}

/** Answers a request: status code, description and body. */
export function answer(req: ManagementRequest, src: ManagementSource): { statusCode: number; statusDescription: string; body: unknown } {
  switch (req.operation) {
    case 'GET-TYPES':
      return { statusCode: 200, statusDescription: 'OK', body: Object.fromEntries(Object.values(ENTITY_TYPES).map((t) => [t, []])) };
    case 'QUERY': {
      const type = req.entityType;
      const list = type === null ? null : src.entities(type);
      if (list === null) return { statusCode: 404, statusDescription: `Not Found: entity type ${type ?? '(none)'}`, body: null };
      const names = req.attributeNames.length > 0 ? req.attributeNames : [...new Set(list.flatMap((e) => Object.keys(e)))];
      return { statusCode: 200, statusDescription: 'OK', body: { attributeNames: names, results: list.map((e) => names.map((n) => e[n] ?? null)) } };
    }
    case 'READ': {
      const want = req.name ?? req.identity;
      for (const t of req.type && src.entities(req.type) ? [req.type] : Object.values(ENTITY_TYPES)) {
        const e = src.entities(t)?.find((x) => x.name === want || x.identity === want);
        if (e) return { statusCode: 200, statusDescription: 'OK', body: { ...e, type: t } };
      }
      return { statusCode: 404, statusDescription: `Not Found: ${want ?? '(no name or identity)'}`, body: null };
    }
    case 'CREATE':
    case 'UPDATE':
    case 'DELETE':
      // Configuration changes go through the file and SIGHUP (README: live changes).
      return { statusCode: 501, statusDescription: `Not Implemented: ${req.operation}; edit the configuration file and send SIGHUP`, body: null };
    default:
      return { statusCode: 400, statusDescription: `Bad Request: unknown operation ${req.operation || '(none)'}`, body: null };
  }
}

/** Encodes the reply message (properties.correlation-id = the request's message-id). */
export function encodeReply(req: ManagementRequest, res: { statusCode: number; statusDescription: string; body: unknown }): Buffer {
  const w = new Writer(1024);
  w.descriptor(D.Properties);
  const p = w.beginList();
  w.null(); // message-id
  w.null(); // user-id
  if (req.replyTo) w.string(req.replyTo);
  else w.null();
  w.null(); // subject
  w.null(); // reply-to
  w.value(req.messageId);
  w.endList(p, 6);
  w.descriptor(D.ApplicationProperties);
  w.value({ statusCode: res.statusCode, statusDescription: res.statusDescription });
  w.descriptor(D.AmqpValue);
  w.value(res.body);
  return w.take();
}
