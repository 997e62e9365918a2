/**
 * What the broker needs to know about a message, read from its bytes without decoding the body:
 * header (durable, priority, ttl, delivery-count), the scheduling annotations, the properties
 * the broker acts on (group-id, expiry, to), and where application-properties lie (decoded only
 * when a selector asks). Pure: no I/O.
 */
import { DecodeError, Described, InvalidStringError, Reader, Sym, Writer, skipValue } from '../../router/protocol/codec';
import { D } from '../../router/protocol/performatives';
import type { Lookup, SelectorValue } from './selector';

/** Artemis's scheduling annotations. */
export const ANNOTATION_DELIVERY_TIME = 'x-opt-delivery-time';
export const ANNOTATION_DELIVERY_DELAY = 'x-opt-delivery-delay';

/** Facts read from one message. */
export class MessageInfo {
  durable = false;
  priority = 4;
  /** header.ttl in ms, 0 = none. */
  ttl = 0;
  /** Offsets of the header section (descriptor included), -1 when absent. */
  headerStart = -1;
  headerEnd = -1;
  /** x-opt-delivery-time (absolute, ms) or 0. */
  deliveryTime = 0;
  /** x-opt-delivery-delay (ms) or 0. */
  deliveryDelay = 0;
  messageId: unknown = null;
  userId: Buffer | null = null;
  to: string | null = null;
  /** properties.to is a string that is not valid UTF-8 (`to` is then null): an anonymous producer's message is refused. */
  toInvalid = false;
  subject: string | null = null;
  replyTo: string | null = null;
  correlationId: unknown = null;
  contentType: string | null = null;
  absoluteExpiryTime = 0;
  creationTime = 0;
  groupId: string | null = null;
  groupSequence = 0;
  /** Offsets of the application-properties section's value, -1 when absent. */
  appStart = -1;
  appEnd = -1;
  /** x-opt-jms-type from the message annotations (qpid-jms's JMSType). */
  jmsType: string | null = null;
}

/**
 * Checks a compound header read from buf[off..end) (a section skipValue bounded): the header
 * fits, the size stays inside the section, and the count is possible (an element takes a byte).
 * A peer's message must not make the broker read past it or loop on a made-up count.
 */
function checked(m: { first: number; count: number; end: number }, off: number, end: number): { first: number; count: number; end: number } {
  if (m.first > end || m.end < m.first || m.end > end || m.count > m.end - m.first) {
    throw new DecodeError(`compound at offset ${off}: size and count disagree with its section`);
  }
  return m;
}

function listBody(buf: Buffer, off: number, end: number): { first: number; count: number; end: number } {
  const c = buf[off];
  if (c === 0x45) return { first: off + 1, count: 0, end: off + 1 };
  if (c === 0xc0 && off + 3 <= end) return checked({ first: off + 3, count: buf[off + 2], end: off + 2 + buf[off + 1] }, off, end);
  if (c === 0xd0 && off + 9 <= end) return checked({ first: off + 9, count: buf.readUInt32BE(off + 5), end: off + 5 + buf.readUInt32BE(off + 1) }, off, end);
  throw new DecodeError(`expected a list at offset ${off} (0x${c.toString(16)})`);
}

function mapBody(buf: Buffer, off: number, end: number): { first: number; count: number; end: number } {
  const c = buf[off];
  if (c === 0xc1 && off + 3 <= end) return checked({ first: off + 3, count: buf[off + 2], end: off + 2 + buf[off + 1] }, off, end);
  if (c === 0xd1 && off + 9 <= end) return checked({ first: off + 9, count: buf.readUInt32BE(off + 5), end: off + 5 + buf.readUInt32BE(off + 1) }, off, end);
  if (c === 0x40) return { first: off + 1, count: 0, end: off + 1 };
  throw new DecodeError(`expected a map at offset ${off} (0x${c.toString(16)})`);
}

function num(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof Date) return v.getTime();
  return 0;
}

function str(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v instanceof Sym) return v.name;
  return null;
}

/** Reads the message's broker-relevant facts. Throws DecodeError on malformed sections. */
export function scanBrokerMessage(buf: Buffer, out: MessageInfo = new MessageInfo()): MessageInfo {
  const end = buf.length;
  let p = 0;
  while (p < end) {
    if (buf[p] !== 0x00 || p + 3 > end) throw new DecodeError(`message section expected at offset ${p}`);
    let code: number;
    let body: number;
    if (buf[p + 1] === 0x53) {
      code = buf[p + 2];
      body = p + 3;
    } else if (buf[p + 1] === 0x80) {
      if (p + 10 > end) throw new DecodeError(`truncated section descriptor at offset ${p}`);
      code = Number(buf.readBigUInt64BE(p + 2));
      body = p + 10;
    } else {
      throw new DecodeError(`symbolic section descriptor at offset ${p} is not supported`);
    }
    const next = skipValue(buf, body, end);
    switch (code) {
      case D.Header: {
        out.headerStart = p;
        out.headerEnd = next;
        const l = listBody(buf, body, next);
        const r = new Reader(buf, l.first, l.end);
        for (let i = 0; i < l.count; i++) {
          const v = r.read();
          if (i === 0) out.durable = v === true;
          else if (i === 1 && typeof v === 'number') out.priority = v;
          else if (i === 2 && typeof v === 'number') out.ttl = v;
        }
        break;
      }
      case D.MessageAnnotations: {
        const m = mapBody(buf, body, next);
        let q = m.first;
        for (let i = 0; i < m.count; i += 2) {
          const kEnd = skipValue(buf, q, m.end);
          const vEnd = skipValue(buf, kEnd, m.end);
          // Keys of interest all start with "x"; decode only those.
          if ((buf[q] === 0xa3 || buf[q] === 0xa1) && buf[q + 2] === 0x78) {
            const key = str(new Reader(buf, q, kEnd).read());
            if (key === ANNOTATION_DELIVERY_TIME) out.deliveryTime = num(new Reader(buf, kEnd, vEnd).read());
            else if (key === ANNOTATION_DELIVERY_DELAY) out.deliveryDelay = num(new Reader(buf, kEnd, vEnd).read());
            else if (key === 'x-opt-jms-type') out.jmsType = str(new Reader(buf, kEnd, vEnd).read());
          }
          q = vEnd;
        }
        break;
      }
      case D.Properties: {
        const l = listBody(buf, body, next);
        const r = new Reader(buf, l.first, l.end);
        for (let i = 0; i < l.count && i < 13; i++) {
          let v: unknown;
          try {
            v = r.read();
          } catch (e) {
            // A `to` that is not UTF-8 is remembered (an anonymous producer's message is then
            // refused with amqp:invalid-field); the reader is already past it.
            if (i !== 2 || !(e instanceof InvalidStringError)) throw e;
            out.toInvalid = true;
            continue;
          }
          switch (i) {
            // Binary values are views of the payload: copied, so an evicted body is really freed.
            case 0: out.messageId = Buffer.isBuffer(v) ? Buffer.from(v) : v; break;
            case 1: out.userId = Buffer.isBuffer(v) ? Buffer.from(v) : null; break;
            case 2: out.to = str(v); break;
            case 3: out.subject = str(v); break;
            case 4: out.replyTo = str(v); break;
            case 5: out.correlationId = Buffer.isBuffer(v) ? Buffer.from(v) : v; break;
            case 6: out.contentType = str(v); break;
            case 8: out.absoluteExpiryTime = num(v); break;
            case 9: out.creationTime = num(v); break;
            case 10: out.groupId = str(v); break;
            case 11: out.groupSequence = num(v); break;
          }
        }
        break;
      }
      case D.ApplicationProperties:
        out.appStart = body;
        out.appEnd = next;
        break;
      default:
        break;
    }
    if (code >= D.Data) return out; // body and footer: nothing the broker reads
    p = next;
  }
  return out;
}

/**
 * The message with its header's delivery-count set to `count` and first-acquirer false (part 3,
 * 3.2.1): what a redelivery must carry. Every other byte is copied.
 */
export function withDeliveryCount(buf: Buffer, info: MessageInfo, count: number): Buffer {
  const w = new Writer(buf.length + 32);
  const fields: unknown[] = [info.durable, info.priority, info.ttl > 0 ? info.ttl : null, false, count];
  let rest = 0;
  if (info.headerStart >= 0) {
    const body = buf[info.headerStart + 1] === 0x53 ? info.headerStart + 3 : info.headerStart + 10;
    const l = listBody(buf, body, info.headerEnd);
    const r = new Reader(buf, l.first, l.end);
    for (let i = 0; i < l.count && i < 3; i++) fields[i] = r.read();
    w.bytes(buf, 0, info.headerStart);
    rest = info.headerEnd;
  }
  w.descriptor(D.Header);
  const m = w.beginList();
  w.value(fields[0] === true);
  w.ubyte(typeof fields[1] === 'number' ? fields[1] : 4);
  if (typeof fields[2] === 'number') w.uint(fields[2]);
  else w.null();
  w.boolean(false);
  w.uint(count);
  w.endList(m, 5);
  w.bytes(buf, rest, buf.length);
  return w.take();
}

/** Application properties, decoded (for selectors). */
export function decodeApplicationProperties(buf: Buffer, info: MessageInfo): Record<string, unknown> | null {
  if (info.appStart < 0) return null;
  const v = new Reader(buf, info.appStart, info.appEnd).read();
  if (v === null) return null;
  if (v instanceof Map) {
    const o: Record<string, unknown> = Object.create(null);
    for (const [k, e] of v) if (typeof k === 'string') o[k] = e;
    return o;
  }
  return typeof v === 'object' ? (v as Record<string, unknown>) : null;
}

function selectorScalar(v: unknown): SelectorValue {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return v;
  if (v instanceof Sym) return v.name;
  if (v instanceof Date) return v.getTime();
  if (Buffer.isBuffer(v)) return v.length === 16 ? formatUuid(v) : v.toString('hex');
  if (v instanceof Described) return null;
  return null;
}

function formatUuid(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * The selector's view of a message: application-properties by name, and the JMS header names
 * mapped as Artemis maps them for AMQP messages (JMSPriority → header.priority, JMSMessageID →
 * properties.message-id, JMSXGroupID → properties.group-id...). Application properties are
 * decoded on first use.
 */
export function selectorLookup(buf: Buffer, info: MessageInfo, deliveryCount: number): Lookup {
  let app: Record<string, unknown> | null | undefined;
  return (name: string): SelectorValue => {
    switch (name) {
      case 'JMSMessageID': return selectorScalar(info.messageId);
      case 'JMSCorrelationID': return selectorScalar(info.correlationId);
      case 'JMSPriority': return info.priority;
      case 'JMSTimestamp': return info.creationTime || null;
      case 'JMSDeliveryMode': return info.durable ? 'PERSISTENT' : 'NON_PERSISTENT';
      case 'JMSExpiration': return info.absoluteExpiryTime || 0;
      case 'JMSType': return info.jmsType ?? info.subject;
      case 'JMSXGroupID': return info.groupId;
      case 'JMSXGroupSeq': return info.groupSequence;
      case 'JMSXDeliveryCount': return deliveryCount + 1;
      case 'JMSXUserID': return info.userId ? info.userId.toString('utf8') : null;
    }
    if (app === undefined) app = decodeApplicationProperties(buf, info);
    if (app === null || !Object.prototype.hasOwnProperty.call(app, name)) return null;
    return selectorScalar(app[name]);
  };
}
