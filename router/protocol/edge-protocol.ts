/**
 * qdrouterd's edge protocol, the parts on the wire (router_core/modules/edge_router,
 * edge_addr_tracking and address_lookup_server in qdrouterd 1.19): the names an edge router
 * attaches with, the address-tracking message an interior router sends it, and the link-route
 * lookup a qdrouterd edge asks its interior before it serves an attach. Pure: no sockets, no state.
 *
 * An edge router attaches, on its one active edge connection:
 * - an anonymous sending link (the uplink: what has no consumer on the edge goes up);
 * - a receiving link with source = its router id and capability {@link EDGE_DOWNLINK_CAPABILITY}
 *   (the interior sends `_edge/<id>/...` deliveries down it);
 * - a receiving link with source {@link EDGE_TRACKING_ADDRESS};
 * - one receiving link per address that has consumers on the edge, one sending link per address
 *   that has senders there.
 * The interior then tells it, per address it sends to, whether that address has destinations
 * beyond the edge: `[key, present]` in an amqp-value, the key in qdrouterd's hash form ("M0addr").
 */
import { Described, Reader, Writer, DecodeError, Sym, uint } from '../../amqp/codec';
import { D } from '../../amqp/performatives';

/** The address of the interior router's address-tracking endpoint (QD_TERMINUS_EDGE_ADDRESS_TRACKING). */
export const EDGE_TRACKING_ADDRESS = '_$qd.edge_addr_tracking';
/** The capability marking an edge router's downlink (QD_CAPABILITY_EDGE_DOWNLINK). */
export const EDGE_DOWNLINK_CAPABILITY = 'qd.router-edge-downlink';
/** Credit an edge router gives the tracking link, topped up one per message (qdrouterd's INITIAL_CREDIT). */
export const EDGE_TRACKING_CREDIT = 32;

/** One address-tracking update. */
export interface EdgeTrackingUpdate {
  /** qdrouterd's hash key of the address, e.g. "M0multicast/test". */
  key: string;
  /** The address has destinations beyond the edge. */
  present: boolean;
}

/** Thrown for an edge-protocol message that does not have the form qdrouterd sends. */
export class EdgeProtocolError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EdgeProtocolError';
  }
}

/** The message qdrouterd's interior sends: header (durable false), amqp-value `[key, present]`. */
export function encodeEdgeTracking(u: EdgeTrackingUpdate): Buffer {
  const w = new Writer(64 + u.key.length * 3);
  w.descriptor(D.Header);
  const h = w.beginList();
  w.boolean(false);
  w.endList(h, 1);
  w.descriptor(D.AmqpValue);
  const b = w.beginList();
  w.string(u.key);
  w.boolean(u.present);
  w.endList(b, 2);
  return w.take();
}

/**
 * Reads a tracking message (any sections; the amqp-value must be a list of a string or symbol
 * and a boolean, as qdrouterd's edge reads it).
 * @throws EdgeProtocolError when it is not
 */
export function decodeEdgeTracking(payload: Buffer): EdgeTrackingUpdate {
  let value: unknown;
  try {
    const r = new Reader(payload);
    while (r.off < payload.length) {
      const s = r.read();
      if (s instanceof Described && Number(s.descriptor) === D.AmqpValue) value = s.value;
    }
  } catch (e) {
    if (e instanceof DecodeError) throw new EdgeProtocolError(`malformed address-tracking message: ${e.message}`, { cause: e });
    throw e;
  }
  if (!Array.isArray(value) || value.length !== 2) throw new EdgeProtocolError('address-tracking body must be a list of an address and a boolean');
  const [key, present] = value as unknown[];
  const k = typeof key === 'string' ? key : key instanceof Sym ? key.name : null;
  if (k === null || typeof present !== 'boolean') throw new EdgeProtocolError('address-tracking body must be a list of an address and a boolean');
  return { key: k, present };
}

/** The interior's link-route lookup service (QD_TERMINUS_ADDRESS_LOOKUP): qdrouterd edges ask it. */
export const ADDRESS_LOOKUP_ADDRESS = '_$qd.addr_lookup';
/** Credit the interior gives a lookup link, topped up one per request (qdrouterd's CREDIT_WINDOW). */
export const ADDRESS_LOOKUP_CREDIT = 32;
/** The lookup protocol's version and opcode (qdrouterd's address_lookup_utils.h). */
export const LOOKUP_VERSION = 1;
export const LOOKUP_OPCODE_LINK_ROUTE = 1;
/** Reply statuses (qcm_address_lookup_status_t). */
export const enum LookupStatus {
  Ok = 0,
  BadVersion = 1,
  BadOpcode = 2,
  NotFound = 3,
  InvalidRequest = 4,
}

/** A link-route lookup: is `address` link-routed for a link whose edge end is a receiver (`receiver`) or sender? */
export interface LookupRequest {
  replyTo: string;
  correlationId: unknown;
  address: string;
  /** The edge's link receives: the client sends (an `in` link route). */
  receiver: boolean;
}

/** The properties list, application-properties and amqp-value body of a small control message. */
function readControlMessage(payload: Buffer, what: string): { props: unknown[] | null; app: Map<unknown, unknown> | Record<string, unknown> | null; body: unknown } {
  let props: unknown[] | null = null;
  let app: Map<unknown, unknown> | Record<string, unknown> | null = null;
  let body: unknown;
  try {
    const r = new Reader(payload);
    while (r.off < payload.length) {
      const s = r.read();
      if (!(s instanceof Described)) continue;
      const code = Number(s.descriptor);
      if (code === D.Properties && Array.isArray(s.value)) props = s.value;
      else if (code === D.ApplicationProperties && s.value !== null && typeof s.value === 'object') app = s.value as Map<unknown, unknown>;
      else if (code === D.AmqpValue) body = s.value;
    }
  } catch (e) {
    if (e instanceof DecodeError) throw new EdgeProtocolError(`malformed ${what}: ${e.message}`, { cause: e });
    throw e;
  }
  return { props, app, body };
}

/**
 * Reads a lookup request: properties (reply-to, correlation-id), application-properties
 * `version` 1 and `opcode` 1, amqp-value `[address, receiver]`.
 * @throws EdgeProtocolError naming what is wrong
 */
export function decodeLookupRequest(payload: Buffer): LookupRequest {
  const { props, app, body } = readControlMessage(payload, 'address lookup');
  const get = (k: string): unknown => (app instanceof Map ? app.get(k) : app?.[k]);
  if (Number(get('version')) !== LOOKUP_VERSION) throw new EdgeProtocolError('address lookup: version must be 1');
  if (Number(get('opcode')) !== LOOKUP_OPCODE_LINK_ROUTE) throw new EdgeProtocolError('address lookup: unknown opcode');
  const replyTo = props?.[4];
  const correlationId = props?.[5] ?? null;
  if (typeof replyTo !== 'string' || correlationId === null) throw new EdgeProtocolError('address lookup: no reply-to or correlation-id');
  if (!Array.isArray(body) || body.length < 2) throw new EdgeProtocolError('address lookup body must be a list of an address and a boolean');
  const [address, receiver] = body as unknown[];
  const a = typeof address === 'string' ? address : address instanceof Sym ? address.name : null;
  if (a === null || typeof receiver !== 'boolean') throw new EdgeProtocolError('address lookup body must be a list of an address and a boolean');
  return { replyTo, correlationId, address: a, receiver };
}

/** The reply qdrouterd's interior sends: to the request's reply-to, its correlation-id, `[is-link-route, has-destinations]`. */
export function encodeLookupReply(req: Pick<LookupRequest, 'replyTo' | 'correlationId'>, status: LookupStatus, isLinkRoute: boolean, hasDestinations: boolean): Buffer {
  const w = new Writer(128 + req.replyTo.length * 3);
  w.descriptor(D.Header);
  const h = w.beginList();
  w.boolean(false);
  w.endList(h, 1);
  w.descriptor(D.Properties);
  const p = w.beginList();
  w.null(); // message-id
  w.null(); // user-id
  w.string(req.replyTo); // to
  w.null(); // subject
  w.null(); // reply-to
  w.value(req.correlationId);
  w.endList(p, 6);
  w.descriptor(D.ApplicationProperties);
  w.value(new Map<string, unknown>([['version', uint(LOOKUP_VERSION)], ['opcode', uint(LOOKUP_OPCODE_LINK_ROUTE)], ['status', uint(status)]]));
  w.descriptor(D.AmqpValue);
  const b = w.beginList();
  w.boolean(isLinkRoute);
  w.boolean(hasDestinations);
  w.endList(b, 2);
  return w.take();
}

/**
 * An edge's link-route lookup (qdrouterd's address_lookup_client): to `_$qd.addr_lookup`,
 * reply-to and correlation-id set, application-properties `version` and `opcode` 1, amqp-value
 * `[address, receiver]` (`receiver`: the edge's end of the link receives, the client sends).
 */
export function encodeLookupRequest(address: string, receiver: boolean, replyTo: string, correlationId: string): Buffer {
  const w = new Writer(128 + (address.length + replyTo.length) * 3);
  w.descriptor(D.Properties);
  const p = w.beginList();
  w.null(); // message-id
  w.null(); // user-id
  w.string(ADDRESS_LOOKUP_ADDRESS); // to
  w.null(); // subject
  w.string(replyTo);
  w.string(correlationId);
  w.endList(p, 6);
  w.descriptor(D.ApplicationProperties);
  w.value(new Map<string, unknown>([['version', uint(LOOKUP_VERSION)], ['opcode', uint(LOOKUP_OPCODE_LINK_ROUTE)]]));
  w.descriptor(D.AmqpValue);
  const b = w.beginList();
  w.string(address);
  w.boolean(receiver);
  w.endList(b, 2);
  return w.take();
}

/** An interior's answer to a lookup. */
export interface LookupReply {
  correlationId: unknown;
  status: number;
  isLinkRoute: boolean;
  hasDestinations: boolean;
}

/**
 * Reads a lookup reply: correlation-id, application-properties `status`, amqp-value
 * `[is-link-route, has-destinations]`.
 * @throws EdgeProtocolError when it is not one.
 */
export function decodeLookupReply(payload: Buffer): LookupReply {
  const { props, app, body } = readControlMessage(payload, 'address lookup reply');
  const status = Number(app instanceof Map ? app.get('status') : app?.['status']);
  if (!Number.isInteger(status)) throw new EdgeProtocolError('address lookup reply has no status');
  const list = Array.isArray(body) ? body : [];
  return { correlationId: props?.[5] ?? null, status, isLinkRoute: list[0] === true, hasDestinations: list[1] === true };
}
