/**
 * Walking a message's sections (AMQP 1.0 part 3, 3.2) without decoding them: where each section
 * starts, its descriptor, where its value and the next section start; and the bounds of a list or
 * map value. The router and the broker each read what they need through these.
 */
import { DecodeError, skipValue } from './codec';
import { D } from './performatives';

/** Where one section lies; one instance is reused per walk (nothing allocated per section). */
export class SectionCursor {
  /** The section's descriptor code (D.Header, D.Properties, ...). */
  code = 0;
  /** Offset of the section (its descriptor). */
  start = 0;
  /** Offset of the section's value. */
  body = 0;
  /** Offset after the section. */
  next = 0;
}

/**
 * Reads the section at `p` into `c`. Returns false when its descriptor is symbolic (legal but
 * rare: the caller treats the rest as opaque or refuses it). Throws DecodeError when the bytes
 * are not a section or its value runs past `end`.
 */
export function readSection(buf: Buffer, p: number, end: number, c: SectionCursor): boolean {
  if (buf[p] !== 0x00 || p + 3 > end) throw new DecodeError(`message section expected at offset ${p}`);
  c.start = p;
  if (buf[p + 1] === 0x53) {
    c.code = buf[p + 2];
    c.body = p + 3;
  } else if (buf[p + 1] === 0x80) {
    if (p + 10 > end) throw new DecodeError(`truncated section descriptor at offset ${p}`);
    c.code = Number(buf.readBigUInt64BE(p + 2));
    c.body = p + 10;
  } else {
    return false;
  }
  c.next = skipValue(buf, c.body, end);
  return true;
}

/** The elements of a list or map value: where the first starts, how many, where they end. */
export interface CompoundBody {
  first: number;
  count: number;
  end: number;
}

/**
 * The elements of the list or map encoded at `off`, which must end by `end` (null counts as an
 * empty map, list0 as an empty list). Throws DecodeError when the sizes do not fit.
 */
export function compoundBody(buf: Buffer, off: number, end: number, what: 'list' | 'map'): CompoundBody {
  const c = buf[off];
  let r: CompoundBody;
  if (c === 0x45 && what === 'list') r = { first: off + 1, count: 0, end: off + 1 };
  else if (c === 0x40 && what === 'map') r = { first: off + 1, count: 0, end: off + 1 };
  else if (c === (what === 'list' ? 0xc0 : 0xc1)) {
    if (off + 3 > end || buf[off + 1] < 1) throw new DecodeError(`truncated ${what} at offset ${off}`);
    r = { first: off + 3, count: buf[off + 2], end: off + 2 + buf[off + 1] };
  } else if (c === (what === 'list' ? 0xd0 : 0xd1)) {
    if (off + 9 > end || buf.readUInt32BE(off + 1) < 4) throw new DecodeError(`truncated ${what} at offset ${off}`);
    r = { first: off + 9, count: buf.readUInt32BE(off + 5), end: off + 5 + buf.readUInt32BE(off + 1) };
  } else throw new DecodeError(`expected a ${what} at offset ${off} (0x${(c ?? 0).toString(16)})`);
  if (r.end > end) throw new DecodeError(`${what} at offset ${off} runs past its section (${r.end} > ${end})`);
  // Each element takes at least a byte: a count past the size is a lie (and would loop long).
  if (r.count > r.end - r.first) throw new DecodeError(`${what} at offset ${off} claims ${r.count} elements in ${r.end - r.first} bytes`);
  if (what === 'map' && r.count % 2 !== 0) throw new DecodeError(`map at offset ${off} has an odd number of keys and values (${r.count})`);
  return r;
}

const USER_ID_CURSOR = new SectionCursor();

/**
 * properties.user-id of a message (null when absent or empty), for policy's user-id check: only
 * read on connections whose policy forbids proxying (the router's and the broker's).
 * @throws DecodeError for a properties section that is not a list.
 */
export function readUserId(buf: Buffer, start: number, end: number): Buffer | null {
  let p = start;
  const sec = USER_ID_CURSOR;
  while (p < end) {
    if (!readSection(buf, p, end, sec)) return null;
    const { code, body, next } = sec;
    if (code === D.Properties) {
      const list = compoundBody(buf, body, next, 'list');
      if (list.count < 2) return null;
      const q = skipValue(buf, list.first, list.end);
      const vEnd = skipValue(buf, q, list.end);
      // user-id is binary (vbin8, vbin32); a string there is read the same way. qdrouterd compares its bytes with the user.
      const c = buf[q];
      const head = c === 0xa0 || c === 0xa1 ? 2 : c === 0xb0 || c === 0xb1 ? 5 : 0;
      if (head > 0 && vEnd > q + head) return buf.subarray(q + head, vEnd);
      return null;
    }
    if (code !== D.Header && code !== D.DeliveryAnnotations && code !== D.MessageAnnotations) return null;
    p = next;
  }
  return null;
}

