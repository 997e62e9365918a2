/**
 * What the broker needs to know about a message, read from its bytes without decoding the body:
 * header (durable, priority, ttl, delivery-count), the scheduling annotations, the properties
 * the broker acts on (group-id, expiry, to), and where application-properties lie (decoded only
 * when a selector asks). Pure: no I/O.
 *
 * Everything the broker reads later is checked here, when the message arrives: the header,
 * message-annotations and properties are decoded now; the application-properties map is walked
 * ({@link checkValue}) so that its lazy decode for a selector cannot fail. A message that fails
 * is refused at the door (amqp:decode-error). One that was stored before these checks existed is
 * found at recovery ({@link inspectMessage}: `info.malformed`) and dead-lettered; a selector that
 * still meets a decode error ({@link selectorMatches}) does not select the message.
 */
import { isUtf8 } from 'node:buffer';
import { DecodeError, Described, InvalidStringError, MAX_DEPTH, Reader, Sym, Writer, skipValue } from '../../amqp/codec';
import { D } from '../../amqp/performatives';
import type { Lookup, Selector, SelectorValue } from './selector';
import { SectionCursor, compoundBody, readSection } from '../../amqp/sections';

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
  /**
   * Why the message's sections cannot be read, or null. Set for a stored message found malformed
   * at recovery (the other facts are then defaults) or when a selector's decode failed; such a
   * message is never selected and never rewritten.
   */
  malformed: DecodeError | null = null;
}

function listBody(buf: Buffer, off: number, end: number): { first: number; count: number; end: number } {
  return compoundBody(buf, off, end, 'list');
}

function mapBody(buf: Buffer, off: number, end: number): { first: number; count: number; end: number } {
  return compoundBody(buf, off, end, 'map');
}

/** Bytes after the constructor of each fixed-width type; -1: not fixed width (or not a type). */
const FIXED: Int8Array = (() => {
  const w = new Int8Array(256).fill(-1);
  for (const c of [0x40, 0x41, 0x42, 0x43, 0x44, 0x45]) w[c] = 0;
  for (const c of [0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56]) w[c] = 1;
  for (const c of [0x60, 0x61]) w[c] = 2;
  for (const c of [0x70, 0x71, 0x72, 0x74]) w[c] = 4;
  for (const c of [0x80, 0x81, 0x82, 0x83, 0x84]) w[c] = 8;
  w[0x94] = 16;
  w[0x98] = 16;
  return w;
})();

/**
 * Checks, without building anything, that the value at `off` decodes as the codec's Reader
 * (bounded by `end`) decodes it, and returns the offset after it. Throws DecodeError wherever
 * Reader would, and also for an array with more elements than bytes (zero-width elements, which
 * Reader would otherwise build one by one, billions of them).
 */
export function checkValue(buf: Buffer, off: number, end: number, depth = 1): number {
  if (off >= end) throw new DecodeError(`value expected at offset ${off}`);
  if (depth > MAX_DEPTH) throw new DecodeError(`values nested deeper than ${MAX_DEPTH}`);
  return checkBody(buf, buf[off], off + 1, end, depth);
}

function need(off: number, n: number, end: number): void {
  if (off + n > end) throw new DecodeError(`truncated value at offset ${off}`);
}

/** Strings are UTF-8 (the codec's Reader refuses them otherwise). */
function checkUtf8(buf: Buffer, start: number, end: number): void {
  if (!isUtf8(buf.subarray(start, end))) throw new InvalidStringError(`string at offset ${start} is not valid UTF-8`);
}

/** A value of type `code` whose constructor is already read; its bytes start at `off`. */
function checkBody(buf: Buffer, code: number, off: number, end: number, depth: number): number {
  const w = FIXED[code];
  if (w >= 0) {
    need(off, w, end);
    return off + w;
  }
  switch (code) {
    case 0x00:
      return checkValue(buf, checkValue(buf, off, end, depth + 1), end, depth + 1);
    case 0x73: {
      need(off, 4, end);
      const cp = buf.readUInt32BE(off);
      if (cp > 0x10ffff) throw new DecodeError(`char value 0x${cp.toString(16)} is not a Unicode code point`);
      return off + 4;
    }
    case 0xa0: case 0xa1: case 0xa3:
      need(off, 1, end);
      need(off + 1, buf[off], end);
      if (code === 0xa1) checkUtf8(buf, off + 1, off + 1 + buf[off]);
      return off + 1 + buf[off];
    case 0xb0: case 0xb1: case 0xb3: {
      need(off, 4, end);
      const n = buf.readUInt32BE(off);
      need(off + 4, n, end);
      if (code === 0xb1) checkUtf8(buf, off + 4, off + 4 + n);
      return off + 4 + n;
    }
    case 0xc0: case 0xc1: case 0xd0: case 0xd1: case 0xe0: case 0xf0: {
      const small = code === 0xc0 || code === 0xc1 || code === 0xe0;
      need(off, small ? 2 : 8, end);
      const size = small ? buf[off] - 1 : buf.readUInt32BE(off) - 4;
      const count = small ? buf[off + 1] : buf.readUInt32BE(off + 4);
      let p = off + (small ? 2 : 8);
      if (size < 0) throw new DecodeError(`compound size at offset ${off} is smaller than its count`);
      need(p, size, end);
      const last = p + size;
      if (code === 0xe0 || code === 0xf0) {
        need(p, 1, last);
        let elem = buf[p++];
        if (elem === 0x00) {
          p = checkValue(buf, p, last, depth + 1);
          need(p, 1, last);
          elem = buf[p++];
        }
        if (count > size) throw new DecodeError(`array at offset ${off} claims ${count} elements in ${size} bytes`);
        for (let i = 0; i < count; i++) p = checkBody(buf, elem, p, last, depth);
      } else {
        if ((code === 0xc1 || code === 0xd1) && count % 2 !== 0) throw new DecodeError(`map with odd element count ${count}`);
        for (let i = 0; i < count; i++) p = checkValue(buf, p, last, depth + 1);
      }
      if (p !== last) throw new DecodeError(`compound size at offset ${off} does not match its ${count} elements`);
      return last;
    }
    default:
      throw new DecodeError(`invalid format code 0x${code.toString(16)} at offset ${off - 1}`);
  }
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

/**
 * Reads the message's broker-relevant facts and checks every section the broker reads later.
 * Throws DecodeError (never anything else) on malformed sections.
 */
export function scanBrokerMessage(buf: Buffer, out: MessageInfo = new MessageInfo()): MessageInfo {
  try {
    return scanSections(buf, out);
  } catch (e) {
    if (e instanceof DecodeError) throw e;
    // A read past the buffer the size checks missed is a malformed message too, not a crash.
    if (e instanceof RangeError) throw new DecodeError(`malformed message: ${e.message}`, { cause: e });
    throw e;
  }
}

/**
 * {@link scanBrokerMessage} for a message the broker already holds (recovery): never throws a
 * DecodeError; a malformed message comes back with `malformed` set and default facts.
 */
export function inspectMessage(buf: Buffer): MessageInfo {
  try {
    return scanBrokerMessage(buf);
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    const info = new MessageInfo();
    info.malformed = e;
    return info;
  }
}

function scanSections(buf: Buffer, out: MessageInfo): MessageInfo {
  const end = buf.length;
  let p = 0;
  const sec = new SectionCursor();
  while (p < end) {
    if (!readSection(buf, p, end, sec)) throw new DecodeError(`symbolic section descriptor at offset ${p} is not supported`);
    const { code, body, next } = sec;
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
      case D.ApplicationProperties: {
        // Decoded only when a selector asks: checked now, so that it cannot fail then.
        const c = buf[body];
        if (c !== 0x40 && c !== 0xc1 && c !== 0xd1) throw new DecodeError(`application-properties at offset ${body} is not a map (0x${c.toString(16)})`);
        try {
          checkValue(buf, body, next);
        } catch (e) {
          throw new DecodeError(`application-properties: ${(e as Error).message}`, { cause: e });
        }
        out.appStart = body;
        out.appEnd = next;
        break;
      }
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

/** Application properties, decoded (for selectors). Throws DecodeError when they are not a map. */
export function decodeApplicationProperties(buf: Buffer, info: MessageInfo): Record<string, unknown> | null {
  if (info.malformed !== null) throw info.malformed;
  if (info.appStart < 0) return null;
  const v = new Reader(buf, info.appStart, info.appEnd).read();
  if (v === null) return null;
  if (v instanceof Map) {
    const o: Record<string, unknown> = Object.create(null);
    for (const [k, e] of v) if (typeof k === 'string') o[k] = e;
    return o;
  }
  if (typeof v !== 'object' || Array.isArray(v) || Buffer.isBuffer(v) || v instanceof Described) {
    throw new DecodeError(`application-properties at offset ${info.appStart} is not a map`);
  }
  return v as Record<string, unknown>;
}

/**
 * Whether `selector` selects the message. A message whose sections cannot be decoded is never
 * selected: the first decode error is kept in `info.malformed` (the caller dead-letters it) and
 * the message is not decoded again.
 */
export function selectorMatches(selector: Selector, buf: Buffer, info: MessageInfo, deliveryCount: number): boolean {
  if (info.malformed !== null) return false;
  try {
    return selector.matches(selectorLookup(buf, info, deliveryCount));
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    info.malformed = e;
    return false;
  }
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
