/**
 * Message sections without decoding the message (part 3, 3.2). The router needs only three
 * things from a message: where the message-annotations section is (to add or strip its own
 * annotations), whether that section already holds router annotations, and the `to` field
 * (for the anonymous relay). Everything else passes through as bytes.
 */
import { DecodeError, InvalidStringError, Reader, Writer, skipValue } from '../../amqp/codec';
import { D } from '../../amqp/performatives';
import { SectionCursor, compoundBody, readSection } from '../../amqp/sections';

/** Reused by every scan (the router is one thread; a scan does not nest). */
const SECTION = new SectionCursor();

/** Router annotation keys (qdrouterd's). */
export const ANNOTATION_PREFIX = 'x-opt-qd.';
export const ANNOTATION_INGRESS = 'x-opt-qd.ingress';
export const ANNOTATION_TRACE = 'x-opt-qd.trace';
export const ANNOTATION_TO = 'x-opt-qd.to';
export const ANNOTATION_PHASE = 'x-opt-qd.phase';

/** Result of {@link scanMessage}; one instance is reused per call site. */
export class MessageScan {
  /** Offset where a message-annotations section sits or would be inserted. */
  maStart = 0;
  /** End of the existing message-annotations section, or -1 when absent. */
  maEnd = -1;
  /** The existing section holds keys starting with x-opt-qd. */
  hasRouterKeys = false;
  /** properties.to, or null. */
  to: string | null = null;
  /**
   * properties.to is a string that is not valid UTF-8 (then `to` is null). An anonymous relay
   * refuses such a message with amqp:invalid-field: decoded leniently it would alias another
   * address.
   */
  toInvalid = false;
  /** Inbound router annotations (meaningful when kept by the listener's stripAnnotations). */
  ingress: string | null = null;
  /** x-opt-qd.to: the destination another router routed on. */
  routerTo: string | null = null;
  /** header.priority capped at 9 (AMQP default 4): picks the inter-router data link. */
  priority = 4;
  trace: string[] | null = null;
  /** x-opt-qd.phase: the address phase another router routed on (0 when absent). */
  phase = 0;
}

/**
 * Reads the symbol or string at buf[off..end) (a key skipValue has bounded) without allocating
 * unless it has the router prefix.
 */
function keyHasRouterPrefix(buf: Buffer, off: number, end: number): boolean {
  const c = buf[off];
  let start: number, len: number;
  if (c === 0xa3 || c === 0xa1) {
    len = buf[off + 1];
    start = off + 2;
  } else if (c === 0xb3 || c === 0xb1) {
    len = buf.readUInt32BE(off + 1);
    start = off + 5;
  } else return false;
  if (len < 9 || start + 9 > end) return false;
  // 'x-opt-qd.'
  return (
    buf[start] === 0x78 && buf[start + 1] === 0x2d && buf[start + 2] === 0x6f && buf[start + 3] === 0x70 &&
    buf[start + 4] === 0x74 && buf[start + 5] === 0x2d && buf[start + 6] === 0x71 && buf[start + 7] === 0x64 &&
    buf[start + 8] === 0x2e
  );
}

/**
 * Scans the sections of a message at buf[start..end). Stops after properties (nothing the router
 * needs lies beyond). When `readRouterAnnotations` is set, decodes x-opt-qd.ingress/trace.
 * Throws DecodeError when a section is malformed.
 */
export function scanMessage(buf: Buffer, start: number, end: number, out: MessageScan, readRouterAnnotations: boolean): void {
  out.maStart = start;
  out.maEnd = -1;
  out.hasRouterKeys = false;
  out.to = null;
  out.toInvalid = false;
  out.ingress = null;
  out.trace = null;
  out.routerTo = null;
  out.priority = 4;
  out.phase = 0;
  let p = start;
  const sec = SECTION;
  while (p < end) {
    // Symbolic section descriptors are legal but rare; treat as opaque from here on.
    if (!readSection(buf, p, end, sec)) return;
    const { code, body, next } = sec;
    switch (code) {
      case D.Header: {
        // header is a list: durable, priority (ubyte), ...
        const c = buf[body];
        let q = -1, count = 0;
        if (c === 0xc0 && body + 3 <= next) {
          q = body + 3;
          count = buf[body + 2];
        } else if (c === 0xd0 && body + 9 <= next) {
          q = body + 9;
          count = buf.readUInt32BE(body + 5);
        }
        if (q > 0 && q <= next && count > 1) {
          q = skipValue(buf, q, next);
          if (q + 2 <= next && buf[q] === 0x50) out.priority = Math.min(buf[q + 1], 9);
        }
        out.maStart = next;
        break;
      }
      case D.DeliveryAnnotations:
        out.maStart = next;
        break;
      case D.MessageAnnotations: {
        out.maStart = p;
        out.maEnd = next;
        const m = compoundBody(buf, body, next, 'map');
        let q = m.first;
        for (let i = 0; i < m.count; i += 2) {
          const kEnd = skipValue(buf, q, m.end);
          const vEnd = skipValue(buf, kEnd, m.end);
          if (keyHasRouterPrefix(buf, q, kEnd)) {
            out.hasRouterKeys = true;
            if (readRouterAnnotations) {
              const key = new Reader(buf, q, kEnd).read();
              if (key === ANNOTATION_INGRESS) {
                const v = new Reader(buf, kEnd, vEnd).read();
                if (typeof v === 'string') out.ingress = v;
              } else if (key === ANNOTATION_TRACE) {
                const v = new Reader(buf, kEnd, vEnd).read();
                if (Array.isArray(v)) out.trace = v.filter((x): x is string => typeof x === 'string');
              } else if (key === ANNOTATION_TO) {
                const v = new Reader(buf, kEnd, vEnd).read();
                if (typeof v === 'string') out.routerTo = v;
              } else if (key === ANNOTATION_PHASE) {
                const v = new Reader(buf, kEnd, vEnd).read();
                if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 9) out.phase = v;
              }
            }
          }
          q = vEnd;
        }
        break;
      }
      case D.Properties: {
        // properties is a list; `to` is field 2.
        const c = buf[body];
        let q: number, count: number, listEnd: number;
        if (c === 0x45) return;
        if (c === 0xc0 && body + 3 <= next) {
          q = body + 3;
          count = buf[body + 2];
          listEnd = body + 2 + buf[body + 1];
        } else if (c === 0xd0 && body + 9 <= next) {
          q = body + 9;
          count = buf.readUInt32BE(body + 5);
          listEnd = body + 5 + buf.readUInt32BE(body + 1);
        } else throw new DecodeError('properties section is not a list');
        if (listEnd < q || listEnd > next) throw new DecodeError('properties list size and section disagree');
        if (count > 2) {
          q = skipValue(buf, q, listEnd);
          q = skipValue(buf, q, listEnd);
          const toEnd = skipValue(buf, q, listEnd);
          let v: unknown = null;
          try {
            if (buf[q] !== 0x40) v = new Reader(buf, q, toEnd).read();
          } catch (e) {
            if (!(e instanceof InvalidStringError)) throw e;
            out.toInvalid = true;
          }
          out.to = typeof v === 'string' ? v : null;
        }
        return;
      }
      default:
        return;
    }
    p = next;
  }
}

/**
 * Writes the message to `w` with its message-annotations rewritten: router keys removed, and
 * when `ingress` is given, x-opt-qd.ingress and x-opt-qd.trace set. Everything else is copied
 * byte for byte. An annotations section that ends up empty and did not exist is not added.
 */
export function writeMessageWithAnnotations(
  w: Writer,
  buf: Buffer,
  start: number,
  end: number,
  scan: MessageScan,
  ingress: string | null,
  trace: readonly string[] | null,
  to: string | null = null,
  phase = 0,
): void {
  if (!scan.hasRouterKeys && ingress === null) {
    w.bytes(buf, start, end);
    return;
  }
  w.bytes(buf, start, scan.maStart);
  let userStart = 0, userEnd = 0, userCount = 0;
  const kept: number[] = [];
  if (scan.maEnd >= 0) {
    const body = buf[scan.maStart + 1] === 0x53 ? scan.maStart + 3 : scan.maStart + 10;
    const m = compoundBody(buf, body, scan.maEnd, 'map');
    let q = m.first;
    userStart = q;
    userEnd = m.end;
    for (let i = 0; i < m.count; i += 2) {
      const kEnd = skipValue(buf, q, m.end);
      const vEnd = skipValue(buf, kEnd, m.end);
      if (!keyHasRouterPrefix(buf, q, kEnd)) {
        kept.push(q, vEnd);
        userCount += 2;
      }
      q = vEnd;
    }
  }
  const addCount = ingress !== null ? (to !== null ? 6 : 4) + (phase !== 0 ? 2 : 0) : 0;
  if (userCount + addCount > 0 || (scan.maEnd >= 0 && !scan.hasRouterKeys)) {
    w.descriptor(D.MessageAnnotations);
    const mark = w.beginMap();
    if (!scan.hasRouterKeys && userCount > 0) {
      // Nothing dropped: the user entries are one contiguous run.
      w.bytes(buf, userStart, userEnd);
    } else {
      for (let i = 0; i < kept.length; i += 2) w.bytes(buf, kept[i], kept[i + 1]);
    }
    if (ingress !== null) {
      // qdrouterd's order after the user's own keys: to, ingress, trace.
      if (to !== null) {
        w.symbol(ANNOTATION_TO);
        w.string(to);
      }
      w.symbol(ANNOTATION_INGRESS);
      w.string(ingress);
      w.symbol(ANNOTATION_TRACE);
      const lm = w.beginList();
      const t = trace ?? [];
      for (const hop of t) w.string(hop);
      w.endList(lm, t.length);
      if (phase !== 0) {
        w.symbol(ANNOTATION_PHASE);
        w.int(phase);
      }
    }
    w.endMap(mark, userCount + addCount);
  }
  w.bytes(buf, scan.maEnd >= 0 ? scan.maEnd : scan.maStart, end);
}
