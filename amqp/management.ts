/**
 * AMQP Management's request and reply messages (the form qdmanage and qdstat send): decoding a
 * request's properties, application-properties and body, and encoding the reply. What the
 * operations mean is the application's (the router's agent).
 */
import { Described, Reader, Writer } from './codec';
import { D } from './performatives';

/** A decoded management request. */
export interface ManagementRequest {
  messageId: unknown;
  /** properties.correlation-id (qdstat and qdmanage send only this, no message-id). */
  correlationId: unknown;
  replyTo: string | null;
  operation: string;
  type: string | null;
  entityType: string | null;
  name: string | null;
  identity: string | null;
  attributeNames: string[];
  /** QUERY paging (application properties `offset` and `count`); null when absent. */
  offset: number | null;
  count: number | null;
  /** Every application property of the request (e.g. GET-LOG's `limit`). */
  properties: Record<string, unknown>;
  /** The request body (READ/CREATE/UPDATE: a map of attributes), as decoded. */
  body: unknown;
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
  const req: ManagementRequest = {
    messageId: null, correlationId: null, replyTo: null, operation: '', type: null, entityType: null, name: null, identity: null, attributeNames: [],
    offset: null, count: null, properties: {}, body: null,
  };
  while (r.off < payload.length) {
    const s = r.read();
    if (!(s instanceof Described)) throw new ManagementError('message section expected', 400);
    const code = typeof s.descriptor === 'number' ? s.descriptor : Number(s.descriptor);
    if (code === D.Properties && Array.isArray(s.value)) {
      req.messageId = s.value[0] ?? null;
      req.replyTo = typeof s.value[4] === 'string' ? s.value[4] : null;
      req.correlationId = s.value[5] ?? null;
    } else if (code === D.ApplicationProperties && s.value && typeof s.value === 'object') {
      const ap = s.value instanceof Map ? Object.fromEntries(s.value) : (s.value as Record<string, unknown>);
      req.properties = ap;
      req.operation = typeof ap.operation === 'string' ? ap.operation : '';
      req.type = typeof ap.type === 'string' ? ap.type : null;
      req.entityType = typeof ap.entityType === 'string' ? ap.entityType : null;
      req.name = typeof ap.name === 'string' ? ap.name : null;
      req.identity = typeof ap.identity === 'string' ? ap.identity : null;
      req.offset = paging(ap.offset);
      req.count = paging(ap.count);
    } else if (code === D.AmqpValue) {
      req.body = s.value;
      if (!s.value || typeof s.value !== 'object' || Array.isArray(s.value)) continue;
      const body = s.value instanceof Map ? Object.fromEntries(s.value) : (s.value as Record<string, unknown>);
      if (Array.isArray(body.attributeNames)) req.attributeNames = (body.attributeNames as unknown[]).filter((x): x is string => typeof x === "string");
    }
  }
  return req;
}

/** A paging number (offset, count): any integer type; anything else counts as absent. */
function paging(v: unknown): number | null {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  if (typeof v === 'bigint' && v >= 0n) return Number(v);
  return null;
}

/** The reply's correlation-id: the request's message-id when set, else its correlation-id (as qdrouterd). */
export function replyCorrelation(req: ManagementRequest): unknown {
  return req.messageId ?? req.correlationId;
}

/** Encodes the reply message (properties: to = the request's reply-to, correlation-id = {@link replyCorrelation}). */
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
  w.value(replyCorrelation(req));
  w.endList(p, 6);
  w.descriptor(D.ApplicationProperties);
  w.value({ statusCode: res.statusCode, statusDescription: res.statusDescription });
  w.descriptor(D.AmqpValue);
  w.value(res.body);
  return w.take();
}

/** A request to another node's management agent (a client's side: an edge router asks its interior). */
export interface ManagementClientRequest {
  operation: string;
  type: string;
  name?: string;
  identity?: string;
  replyTo: string;
  correlationId: string;
  body: Record<string, unknown>;
}

/** Encodes a request as qdmanage sends one: properties (correlation-id, reply-to), application-properties, amqp-value body. */
export function encodeRequest(req: ManagementClientRequest): Buffer {
  const w = new Writer(512);
  w.descriptor(D.Properties);
  const p = w.beginList();
  w.null(); // message-id
  w.null(); // user-id
  w.null(); // to
  w.null(); // subject
  w.string(req.replyTo);
  w.string(req.correlationId);
  w.endList(p, 6);
  const app: Record<string, unknown> = { operation: req.operation, type: req.type };
  if (req.name !== undefined) app.name = req.name;
  if (req.identity !== undefined) app.identity = req.identity;
  w.descriptor(D.ApplicationProperties);
  w.value(app);
  w.descriptor(D.AmqpValue);
  w.value(req.body);
  return w.take();
}

/** A decoded reply: its status, its correlation-id and its body. */
export interface ManagementReplyMessage {
  statusCode: number;
  statusDescription: string;
  correlationId: unknown;
  body: unknown;
}

/** Reads a management reply (statusCode and statusDescription in its application-properties). */
export function decodeReply(payload: Buffer): ManagementReplyMessage {
  const r = new Reader(payload);
  const out: ManagementReplyMessage = { statusCode: 0, statusDescription: '', correlationId: null, body: null };
  while (r.off < payload.length) {
    const s = r.read();
    if (!(s instanceof Described)) throw new ManagementError('message section expected', 400);
    const code = Number(s.descriptor);
    if (code === D.Properties && Array.isArray(s.value)) out.correlationId = s.value[5] ?? null;
    else if (code === D.ApplicationProperties && s.value !== null && typeof s.value === 'object') {
      const ap = s.value instanceof Map ? Object.fromEntries(s.value) : (s.value as Record<string, unknown>);
      out.statusCode = Number(ap.statusCode ?? 0);
      out.statusDescription = typeof ap.statusDescription === 'string' ? ap.statusDescription : '';
    } else if (code === D.AmqpValue) out.body = s.value;
  }
  return out;
}
