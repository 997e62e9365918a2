/**
 * qdrouterd's edge protocol, the parts on the wire (router_core/modules/edge_router and
 * edge_addr_tracking in qdrouterd 1.19): the names an edge router attaches with and the
 * address-tracking message an interior router sends it. Pure: no sockets, no state.
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
import { Described, Reader, Writer, DecodeError, Sym } from '../../amqp/codec';
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

/** Thrown for a tracking message that is not `[string, boolean]` in an amqp-value. */
export class EdgeTrackingError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EdgeTrackingError';
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
 * @throws EdgeTrackingError when it is not
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
    if (e instanceof DecodeError) throw new EdgeTrackingError(`malformed address-tracking message: ${e.message}`, { cause: e });
    throw e;
  }
  if (!Array.isArray(value) || value.length !== 2) throw new EdgeTrackingError('address-tracking body must be a list of an address and a boolean');
  const [key, present] = value as unknown[];
  const k = typeof key === 'string' ? key : key instanceof Sym ? key.name : null;
  if (k === null || typeof present !== 'boolean') throw new EdgeTrackingError('address-tracking body must be a list of an address and a boolean');
  return { key: k, present };
}
