/**
 * AMQP 1.0 type system codec (OASIS AMQP 1.0 part 1).
 *
 * Pure and allocation-aware: the router's data path never decodes message bodies; it uses
 * {@link skipValue} to walk sections by their encoded sizes. Performatives are decoded into
 * plain JS values with {@link Reader}; outbound frames are written with {@link Writer}, whose
 * typed write methods choose the same compact encodings Proton does.
 */
import { isUtf8 } from 'node:buffer';

/** Format codes (part 1, section 1.6). */
import { AmqpConditionError } from './errors';

export const enum TC {
  Described = 0x00,
  Null = 0x40,
  True = 0x41,
  False = 0x42,
  Uint0 = 0x43,
  Ulong0 = 0x44,
  List0 = 0x45,
  Boolean = 0x56,
  Ubyte = 0x50,
  Byte = 0x51,
  SmallUint = 0x52,
  SmallUlong = 0x53,
  SmallInt = 0x54,
  SmallLong = 0x55,
  Ushort = 0x60,
  Short = 0x61,
  Uint = 0x70,
  Int = 0x71,
  Float = 0x72,
  Char = 0x73,
  Decimal32 = 0x74,
  Ulong = 0x80,
  Long = 0x81,
  Double = 0x82,
  Timestamp = 0x83,
  Decimal64 = 0x84,
  Decimal128 = 0x94,
  Uuid = 0x98,
  Vbin8 = 0xa0,
  Str8 = 0xa1,
  Sym8 = 0xa3,
  Vbin32 = 0xb0,
  Str32 = 0xb1,
  Sym32 = 0xb3,
  List8 = 0xc0,
  Map8 = 0xc1,
  List32 = 0xd0,
  Map32 = 0xd1,
  Array8 = 0xe0,
  Array32 = 0xf0,
}

/** Raised when bytes do not form a valid AMQP encoding; maps to amqp:decode-error. */
export class DecodeError extends AmqpConditionError {
  readonly code = 'ERR_AMQP_DECODE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'amqp:decode-error', options);
    this.name = 'DecodeError';
  }
}

/**
 * A string (str8/str32) whose bytes are not valid UTF-8. A DecodeError like any other, kept
 * apart so that callers decoding an address can refuse it as amqp:invalid-field: decoding it
 * with U+FFFD replacement would make different byte strings name the same address.
 */
export class InvalidStringError extends DecodeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InvalidStringError';
  }
}

/** An AMQP symbol, kept distinct from string so a round trip keeps its type. */
export class Sym {
  constructor(readonly name: string) {}
  toString(): string {
    return this.name;
  }
}

/** A described value whose descriptor the generic decoder does not interpret. */
export class Described {
  constructor(readonly descriptor: unknown, readonly value: unknown) {}
}

/** A typed value for the encoder where a JS value alone would be ambiguous. */
export class Typed {
  constructor(
    readonly type:
      | 'ubyte' | 'ushort' | 'uint' | 'ulong' | 'byte' | 'short' | 'int' | 'long'
      | 'float' | 'double' | 'timestamp' | 'symbol' | 'string' | 'binary' | 'uuid' | 'char'
      | 'array-symbol' | 'list' | 'map',
    readonly value: unknown,
  ) {}
}

export const sym = (s: string): Sym => new Sym(s);
export const uint = (n: number): Typed => new Typed('uint', n);
export const ulong = (n: number | bigint): Typed => new Typed('ulong', n);
export const ubyte = (n: number): Typed => new Typed('ubyte', n);
export const ushort = (n: number): Typed => new Typed('ushort', n);
export const int = (n: number): Typed => new Typed('int', n);
export const long = (n: number | bigint): Typed => new Typed('long', n);
export const timestamp = (n: number): Typed => new Typed('timestamp', n);
export const symArray = (names: string[]): Typed => new Typed('array-symbol', names);
/** A map whose keys are encoded as symbols (AMQP "fields"). */
export const fields = (o: Record<string, unknown>): Typed => new Typed('map', o);

const FIXED_WIDTH: Int8Array = (() => {
  // -1: variable or compound; otherwise the number of bytes after the constructor.
  const w = new Int8Array(256).fill(-2);
  for (const c of [0x40, 0x41, 0x42, 0x43, 0x44, 0x45]) w[c] = 0;
  for (const c of [0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56]) w[c] = 1;
  for (const c of [0x60, 0x61]) w[c] = 2;
  for (const c of [0x70, 0x71, 0x72, 0x73, 0x74]) w[c] = 4;
  for (const c of [0x80, 0x81, 0x82, 0x83, 0x84]) w[c] = 8;
  w[0x94] = 16;
  w[0x98] = 16;
  for (const c of [0xa0, 0xa1, 0xa3, 0xc0, 0xc1, 0xe0]) w[c] = -1;
  for (const c of [0xb0, 0xb1, 0xb3, 0xd0, 0xd1, 0xf0]) w[c] = -1;
  return w;
})();

/** Deepest nesting of described/compound values the decoders accept. */
export const MAX_DEPTH = 64;

/**
 * Returns the offset just past the value encoded at `off`, without decoding it.
 * Throws DecodeError on an unknown constructor or a size that runs past `end`.
 */
export function skipValue(buf: Buffer, off: number, end: number, depth = 0): number {
  if (off >= end) throw new DecodeError(`value expected at offset ${off}, buffer ends at ${end}`);
  const code = buf[off];
  if (code === 0x00) {
    // described: descriptor then value. Nesting is bounded so hostile input cannot blow the stack.
    if (depth >= MAX_DEPTH) throw new DecodeError(`described types nested deeper than ${MAX_DEPTH}`);
    const afterDescriptor = skipValue(buf, off + 1, end, depth + 1);
    return skipValue(buf, afterDescriptor, end, depth + 1);
  }
  const w = FIXED_WIDTH[code];
  let next: number;
  if (w >= 0) {
    next = off + 1 + w;
  } else if (w === -1) {
    if ((code & 0xf0) === 0xa0 || (code & 0xf0) === 0xc0 || (code & 0xf0) === 0xe0) {
      if (off + 2 > end) throw new DecodeError(`truncated size at offset ${off}`);
      next = off + 2 + buf[off + 1];
    } else {
      if (off + 5 > end) throw new DecodeError(`truncated size at offset ${off}`);
      next = off + 5 + buf.readUInt32BE(off + 1);
    }
  } else {
    throw new DecodeError(`invalid format code 0x${code.toString(16)} at offset ${off}`);
  }
  if (next > end) throw new DecodeError(`value at offset ${off} runs past the end (${next} > ${end})`);
  return next;
}

/**
 * Smallest number of bytes one array element takes after its (shared) constructor, by element
 * format code; 0 for the zero-width codes (null, true, false, uint0, ulong0, list0), -1 for codes
 * that are not valid constructors.
 */
const ELEMENT_MIN_WIDTH: Int8Array = (() => {
  const w = new Int8Array(256).fill(-1);
  for (let c = 0; c < 256; c++) if (FIXED_WIDTH[c] >= 0) w[c] = FIXED_WIDTH[c];
  for (const c of [0xa0, 0xa1, 0xa3]) w[c] = 1; // size byte
  for (const c of [0xb0, 0xb1, 0xb3]) w[c] = 4; // size word
  for (const c of [0xc0, 0xc1]) w[c] = 2; // size, count
  for (const c of [0xd0, 0xd1]) w[c] = 8;
  w[0xe0] = 3; // size, count, constructor
  w[0xf0] = 9;
  w[0x00] = 2; // a described value per element (descriptor, value)
  return w;
})();

/**
 * Sequential reader over one encoded region. Decodes into plain JS values:
 * integers as number (long/ulong as bigint only past 2^53), symbol as string unless
 * `keepSymbols`, binary as Buffer (a view, not a copy), list as array, map as object
 * (or Map when a key is not a string), array as array, described as {@link Described}.
 *
 * Built for hostile input: every count and size read is checked against the bytes actually left
 * before anything is allocated, so a decode costs time and memory linear in the region's length:
 * - list and map counts: every element takes at least one byte, so count <= size;
 * - array counts: count times the smallest encoding of the element type must fit in the bytes
 *   left; zero-width element types (null, true, false, uint0, ulong0, list0) take no bytes at
 *   all, so they draw on a budget of one element per byte of the reader's region;
 * - nesting of described, list, map and array values is capped at {@link MAX_DEPTH};
 * - strings must be valid UTF-8 ({@link InvalidStringError}).
 * Every violation is a {@link DecodeError}.
 */
export class Reader {
  off: number;
  private depth = 0;
  /**
   * Zero-width array elements this reader may still produce. An array32 of 2^32 - 1 nulls is 10
   * bytes on the wire; decoding it would build a 2^32 - 1 element JS array and exhaust the heap.
   * One element per byte of the region keeps every decode linear in its input while allowing any
   * plausible use (arrays of zero-width values carry no information beyond their length).
   */
  private zeroWidthBudget: number;
  constructor(readonly buf: Buffer, off = 0, public end = buf.length) {
    this.off = off;
    this.zeroWidthBudget = end > off ? end - off : 0;
  }

  /** Reads one value. */
  read(): unknown {
    const buf = this.buf;
    if (this.off >= this.end) throw new DecodeError(`value expected at offset ${this.off}`);
    const code = buf[this.off++];
    if (++this.depth > MAX_DEPTH) {
      this.depth--;
      throw new DecodeError(`values nested deeper than ${MAX_DEPTH}`);
    }
    try {
      return this.readBody(code);
    } finally {
      this.depth--;
    }
  }

  private need(n: number): void {
    if (n < 0 || this.off + n > this.end) throw new DecodeError(`truncated value at offset ${this.off}`);
  }

  /** Set by {@link compoundHeader}: the compound's element count. */
  private count = 0;

  /**
   * Reads a compound's size and count (after its constructor), checks the size against the bytes
   * left, and returns the size of the elements' bytes (the count is left in `this.count`).
   */
  private compoundHeader(short: boolean): number {
    const buf = this.buf;
    let size: number;
    if (short) {
      this.need(2);
      size = buf[this.off] - 1;
      this.count = buf[this.off + 1];
      this.off += 2;
    } else {
      this.need(8);
      size = buf.readUInt32BE(this.off) - 4;
      this.count = buf.readUInt32BE(this.off + 4);
      this.off += 8;
    }
    if (size < 0) throw new DecodeError(`compound size smaller than its count at offset ${this.off}`);
    this.need(size);
    return size;
  }

  readBody(code: number): unknown {
    const buf = this.buf;
    let v: unknown;
    switch (code) {
      case 0x00: {
        const descriptor = this.read();
        const value = this.read();
        return new Described(descriptor, value);
      }
      case 0x40: return null;
      case 0x41: return true;
      case 0x42: return false;
      case 0x43: case 0x44: return 0;
      case 0x45: return [];
      case 0x56: this.need(1); return buf[this.off++] !== 0;
      case 0x50: case 0x52: case 0x53: this.need(1); return buf[this.off++];
      case 0x51: case 0x54: case 0x55: this.need(1); return buf.readInt8(this.off++);
      case 0x60: this.need(2); v = buf.readUInt16BE(this.off); this.off += 2; return v;
      case 0x61: this.need(2); v = buf.readInt16BE(this.off); this.off += 2; return v;
      case 0x70: this.need(4); v = buf.readUInt32BE(this.off); this.off += 4; return v;
      case 0x71: this.need(4); v = buf.readInt32BE(this.off); this.off += 4; return v;
      case 0x72: this.need(4); v = buf.readFloatBE(this.off); this.off += 4; return v;
      case 0x73: {
        this.need(4);
        const cp = buf.readUInt32BE(this.off);
        if (cp > 0x10ffff) throw new DecodeError(`char value 0x${cp.toString(16)} is not a Unicode code point`);
        this.off += 4;
        return String.fromCodePoint(cp);
      }
      case 0x74: this.need(4); v = buf.subarray(this.off, this.off + 4); this.off += 4; return v;
      case 0x80: {
        this.need(8);
        const big = buf.readBigUInt64BE(this.off);
        this.off += 8;
        return big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
      }
      case 0x81: case 0x83: {
        this.need(8);
        const big = buf.readBigInt64BE(this.off);
        this.off += 8;
        return big <= BigInt(Number.MAX_SAFE_INTEGER) && big >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(big) : big;
      }
      case 0x82: this.need(8); v = buf.readDoubleBE(this.off); this.off += 8; return v;
      case 0x84: this.need(8); v = buf.subarray(this.off, this.off + 8); this.off += 8; return v;
      case 0x94: case 0x98: this.need(16); v = buf.subarray(this.off, this.off + 16); this.off += 16; return v;
      case 0xa0: case 0xa1: case 0xa3: case 0xb0: case 0xb1: case 0xb3: {
        let n: number;
        if (code < 0xb0) { this.need(1); n = buf[this.off++]; } else { this.need(4); n = buf.readUInt32BE(this.off); this.off += 4; }
        this.need(n);
        const start = this.off;
        this.off += n;
        if (code === 0xa0 || code === 0xb0) return buf.subarray(start, start + n);
        if (code === 0xa3 || code === 0xb3) return buf.toString('latin1', start, start + n);
        // AMQP strings are UTF-8 (part 1, 1.6.20). Replacing bad bytes with U+FFFD would let
        // different byte strings decode to one JS string (two addresses routed as one). The
        // decoder turns every invalid sequence into U+FFFD, so only a string holding one needs
        // the full check (a real U+FFFD is valid UTF-8): the common case costs one search.
        const str = buf.toString('utf8', start, start + n);
        if (str.indexOf('\ufffd') >= 0 && !isUtf8(buf.subarray(start, start + n))) {
          throw new InvalidStringError(`string at offset ${start - (code < 0xb0 ? 2 : 5)} is not valid UTF-8`);
        }
        return str;
      }
      case 0xc0: case 0xd0: case 0xc1: case 0xd1: {
        const size = this.compoundHeader(code === 0xc0 || code === 0xc1);
        const count = this.count;
        // Every element takes at least one byte: a count beyond the size is a lie, refused
        // before `new Array(count)` allocates for it.
        if (count > size) throw new DecodeError(`${code & 1 ? 'map' : 'list'} claims ${count} elements in ${size} bytes`);
        const savedEnd = this.end;
        this.end = this.off + size;
        try {
          if (code === 0xc0 || code === 0xd0) {
            const out = new Array(count);
            for (let i = 0; i < count; i++) out[i] = this.read();
            if (this.off !== this.end) throw new DecodeError(`list size does not match its ${count} elements`);
            return out;
          }
          if (count % 2 !== 0) throw new DecodeError(`map with odd element count ${count}`);
          let obj: Record<string, unknown> | Map<unknown, unknown> = {};
          for (let i = 0; i < count; i += 2) {
            const k = this.read();
            const val = this.read();
            if (typeof k === 'string' && !(obj instanceof Map)) {
              // defineProperty: a "__proto__" key must stay an entry, never reach the prototype setter.
              Object.defineProperty(obj, k, { value: val, enumerable: true, writable: true, configurable: true });
            }
            else {
              if (!(obj instanceof Map)) obj = new Map(Object.entries(obj));
              obj.set(k, val);
            }
          }
          if (this.off !== this.end) throw new DecodeError(`map size does not match its ${count} elements`);
          return obj;
        } finally {
          this.end = savedEnd;
        }
      }
      case 0xe0: case 0xf0: {
        const size = this.compoundHeader(code === 0xe0);
        const count = this.count;
        // Arrays nest without passing through read() (an array of arrays reads each element's
        // body directly), so they count their own depth.
        if (++this.depth > MAX_DEPTH) {
          this.depth--;
          throw new DecodeError(`values nested deeper than ${MAX_DEPTH}`);
        }
        const savedEnd = this.end;
        this.end = this.off + size;
        try {
          this.need(1);
          let elemCode = buf[this.off++];
          let descriptor: unknown = undefined;
          if (elemCode === 0x00) {
            descriptor = this.read();
            this.need(1);
            elemCode = buf[this.off++];
          }
          const width = ELEMENT_MIN_WIDTH[elemCode];
          if (width < 0) throw new DecodeError(`invalid format code 0x${elemCode.toString(16)} as an array element constructor at offset ${this.off - 1}`);
          if (width === 0) {
            if (count > this.zeroWidthBudget) {
              throw new DecodeError(`array of ${count} zero-width elements (0x${elemCode.toString(16)}) in a ${this.end - this.off}-byte region is over the decoder's bound`);
            }
            this.zeroWidthBudget -= count;
          } else if (count > (this.end - this.off) / width) {
            throw new DecodeError(`array claims ${count} elements of at least ${width} bytes in ${this.end - this.off} bytes`);
          }
          const out = new Array(count);
          for (let i = 0; i < count; i++) {
            const val = this.readBody(elemCode);
            out[i] = descriptor === undefined ? val : new Described(descriptor, val);
          }
          if (this.off !== this.end) throw new DecodeError(`array size does not match its ${count} elements`);
          return out;
        } finally {
          this.end = savedEnd;
          this.depth--;
        }
      }
      default:
        throw new DecodeError(`invalid format code 0x${code.toString(16)} at offset ${this.off - 1}`);
    }
  }
}

/** Decodes a single value at `off` (convenience for tests and management). */
export function decodeValue(buf: Buffer, off = 0, end = buf.length): unknown {
  return new Reader(buf, off, end).read();
}

/**
 * Growable output buffer with typed AMQP writers. One Writer is reused per connection so the
 * steady state allocates nothing but the slices it hands to the socket.
 */
export class Writer {
  buf: Buffer;
  off = 0;
  constructor(size = 4096) {
    this.buf = Buffer.allocUnsafe(size);
  }

  ensure(n: number): void {
    if (this.off + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.off + n) size *= 2;
    const b = Buffer.allocUnsafe(size);
    this.buf.copy(b, 0, 0, this.off);
    this.buf = b;
  }

  reset(): void {
    this.off = 0;
  }

  /** Copies out what was written since `from` (default 0) and rewinds to `from`. */
  take(from = 0): Buffer {
    const out = Buffer.allocUnsafe(this.off - from);
    this.buf.copy(out, 0, from, this.off);
    this.off = from;
    return out;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.off++] = b;
  }

  bytes(src: Buffer, start = 0, end = src.length): void {
    const n = end - start;
    this.ensure(n);
    src.copy(this.buf, this.off, start, end);
    this.off += n;
  }

  u16(n: number): void {
    this.ensure(2);
    this.buf.writeUInt16BE(n, this.off);
    this.off += 2;
  }

  u32(n: number): void {
    this.ensure(4);
    this.buf.writeUInt32BE(n >>> 0, this.off);
    this.off += 4;
  }

  null(): void {
    this.byte(0x40);
  }

  boolean(v: boolean): void {
    this.byte(v ? 0x41 : 0x42);
  }

  ubyte(n: number): void {
    this.ensure(2);
    this.buf[this.off++] = 0x50;
    this.buf[this.off++] = n;
  }

  ushort(n: number): void {
    this.ensure(3);
    this.buf[this.off++] = 0x60;
    this.buf.writeUInt16BE(n, this.off);
    this.off += 2;
  }

  uint(n: number): void {
    this.ensure(5);
    if (n === 0) this.buf[this.off++] = 0x43;
    else if (n < 256) {
      this.buf[this.off++] = 0x52;
      this.buf[this.off++] = n;
    } else {
      this.buf[this.off++] = 0x70;
      this.buf.writeUInt32BE(n >>> 0, this.off);
      this.off += 4;
    }
  }

  ulong(n: number | bigint): void {
    this.ensure(9);
    if (n === 0 || n === 0n) this.buf[this.off++] = 0x44;
    else if (typeof n === 'number' && n < 256) {
      this.buf[this.off++] = 0x53;
      this.buf[this.off++] = n;
    } else {
      this.buf[this.off++] = 0x80;
      this.buf.writeBigUInt64BE(BigInt(n), this.off);
      this.off += 8;
    }
  }

  int(n: number): void {
    this.ensure(5);
    if (n >= -128 && n <= 127) {
      this.buf[this.off++] = 0x54;
      this.buf.writeInt8(n, this.off++);
    } else {
      this.buf[this.off++] = 0x71;
      this.buf.writeInt32BE(n, this.off);
      this.off += 4;
    }
  }

  long(n: number | bigint): void {
    this.ensure(9);
    if (typeof n === 'number' && n >= -128 && n <= 127) {
      this.buf[this.off++] = 0x55;
      this.buf.writeInt8(n, this.off++);
    } else {
      this.buf[this.off++] = 0x81;
      this.buf.writeBigInt64BE(BigInt(n), this.off);
      this.off += 8;
    }
  }

  timestamp(ms: number): void {
    this.ensure(9);
    this.buf[this.off++] = 0x83;
    this.buf.writeBigInt64BE(BigInt(Math.trunc(ms)), this.off);
    this.off += 8;
  }

  double(n: number): void {
    this.ensure(9);
    this.buf[this.off++] = 0x82;
    this.buf.writeDoubleBE(n, this.off);
    this.off += 8;
  }

  private varlen(code8: number, code32: number, s: string | Buffer, enc: BufferEncoding): void {
    const n = typeof s === 'string' ? Buffer.byteLength(s, enc) : s.length;
    this.ensure(n + 5);
    if (n < 256) {
      this.buf[this.off++] = code8;
      this.buf[this.off++] = n;
    } else {
      this.buf[this.off++] = code32;
      this.buf.writeUInt32BE(n, this.off);
      this.off += 4;
    }
    if (typeof s === 'string') this.off += this.buf.write(s, this.off, enc);
    else {
      s.copy(this.buf, this.off);
      this.off += n;
    }
  }

  string(s: string): void {
    this.varlen(0xa1, 0xb1, s, 'utf8');
  }

  symbol(s: string): void {
    this.varlen(0xa3, 0xb3, s, 'latin1');
  }

  binary(b: Buffer): void {
    this.varlen(0xa0, 0xb0, b, 'latin1');
  }

  /** Writes the descriptor of a described type given its numeric code (0x00 0x53 code). */
  descriptor(code: number): void {
    this.ensure(3);
    this.buf[this.off++] = 0x00;
    if (code < 256) {
      this.buf[this.off++] = 0x53;
      this.buf[this.off++] = code;
    } else {
      this.buf[this.off++] = 0x80;
      this.ensure(8);
      this.buf.writeBigUInt64BE(BigInt(code), this.off);
      this.off += 8;
    }
  }

  /** Begins a list32; returns a mark for {@link endList}. */
  beginList(): number {
    this.ensure(9);
    const mark = this.off;
    this.buf[this.off] = 0xd0;
    this.off += 9;
    return mark;
  }

  /**
   * Ends a list started at `mark` with `count` elements, compacting to list8 (or list0)
   * when it fits so frames match what Proton writes.
   */
  endList(mark: number, count: number): void {
    const bodyStart = mark + 9;
    const bodyLen = this.off - bodyStart;
    if (count === 0) {
      this.buf[mark] = 0x45;
      this.off = mark + 1;
      return;
    }
    if (bodyLen + 1 < 256 && count < 256) {
      this.buf[mark] = 0xc0;
      this.buf[mark + 1] = bodyLen + 1;
      this.buf[mark + 2] = count;
      this.buf.copy(this.buf, mark + 3, bodyStart, this.off);
      this.off = mark + 3 + bodyLen;
      return;
    }
    this.buf.writeUInt32BE(bodyLen + 4, mark + 1);
    this.buf.writeUInt32BE(count, mark + 5);
  }

  beginMap(): number {
    const mark = this.beginList();
    this.buf[mark] = 0xd1;
    return mark;
  }

  endMap(mark: number, count: number): void {
    const bodyStart = mark + 9;
    const bodyLen = this.off - bodyStart;
    if (bodyLen + 1 < 256 && count < 256) {
      this.buf[mark] = 0xc1;
      this.buf[mark + 1] = bodyLen + 1;
      this.buf[mark + 2] = count;
      this.buf.copy(this.buf, mark + 3, bodyStart, this.off);
      this.off = mark + 3 + bodyLen;
      return;
    }
    this.buf.writeUInt32BE(bodyLen + 4, mark + 1);
    this.buf.writeUInt32BE(count, mark + 5);
  }

  symbolArray(names: readonly string[]): void {
    if (names.length === 1) {
      // Proton writes a single capability as a bare symbol; both forms are legal.
      this.symbol(names[0]);
      return;
    }
    const mark = this.off;
    this.ensure(10);
    this.buf[this.off] = 0xf0;
    this.off += 9;
    this.buf[this.off++] = 0xb3;
    for (const n of names) {
      const len = Buffer.byteLength(n, 'latin1');
      this.ensure(4 + len);
      this.buf.writeUInt32BE(len, this.off);
      this.off += 4;
      this.off += this.buf.write(n, this.off, 'latin1');
    }
    this.buf.writeUInt32BE(this.off - mark - 5, mark + 1);
    this.buf.writeUInt32BE(names.length, mark + 5);
  }

  /** Writes a JS value with AMQP types inferred (see {@link Typed} for explicit ones). */
  value(v: unknown): void {
    if (v === null || v === undefined) return this.null();
    switch (typeof v) {
      case 'boolean': return this.boolean(v);
      case 'string': return this.string(v);
      case 'number':
        if (Number.isInteger(v)) {
          if (v >= -2147483648 && v <= 2147483647) return this.int(v);
          if (v >= -9223372036854775808 && v < 9223372036854775808) return this.long(v);
          return this.double(v);
        }
        return this.double(v);
      case 'bigint': return this.long(v);
    }
    if (v instanceof Sym) return this.symbol(v.name);
    if (Buffer.isBuffer(v)) return this.binary(v);
    if (v instanceof Described) {
      this.byte(0x00);
      this.value(v.descriptor);
      return this.value(v.value);
    }
    if (v instanceof Typed) return this.typed(v);
    if (Array.isArray(v)) {
      const m = this.beginList();
      for (const e of v) this.value(e);
      return this.endList(m, v.length);
    }
    if (v instanceof Map) {
      const m = this.beginMap();
      for (const [k, e] of v) {
        this.value(k);
        this.value(e);
      }
      return this.endMap(m, v.size * 2);
    }
    if (v instanceof Date) return this.timestamp(v.getTime());
    if (typeof v === 'object') {
      // Plain objects are AMQP maps with string keys.
      const m = this.beginMap();
      let n = 0;
      for (const [k, e] of Object.entries(v as Record<string, unknown>)) {
        this.string(k);
        this.value(e);
        n += 2;
      }
      return this.endMap(m, n);
    }
    throw new TypeError(`cannot encode ${typeof v} as AMQP`);
  }

  typed(t: Typed): void {
    const v = t.value as never;
    switch (t.type) {
      case 'ubyte': return this.ubyte(v);
      case 'ushort': return this.ushort(v);
      case 'uint': return this.uint(v);
      case 'ulong': return this.ulong(v);
      case 'byte': this.byte(0x51); this.ensure(1); this.buf.writeInt8(v, this.off++); return;
      case 'short': this.byte(0x61); this.ensure(2); this.buf.writeInt16BE(v, this.off); this.off += 2; return;
      case 'int': return this.int(v);
      case 'long': return this.long(v);
      case 'float': this.byte(0x72); this.ensure(4); this.buf.writeFloatBE(v, this.off); this.off += 4; return;
      case 'double': return this.double(v);
      case 'timestamp': return this.timestamp(v);
      case 'symbol': return this.symbol(v);
      case 'string': return this.string(v);
      case 'binary': return this.binary(v);
      case 'uuid': this.byte(0x98); this.bytes(v as Buffer); return;
      case 'char': this.byte(0x73); this.u32((v as string).codePointAt(0) ?? 0); return;
      case 'array-symbol': return this.symbolArray(v);
      case 'list': return this.value(v);
      case 'map': {
        const o = v as Record<string, unknown>;
        const m = this.beginMap();
        let n = 0;
        for (const [k, e] of Object.entries(o)) {
          this.symbol(k);
          this.value(e);
          n += 2;
        }
        return this.endMap(m, n);
      }
    }
  }
}

/** Encodes one value to a fresh Buffer (tests, management; not the data path). */
export function encodeValue(v: unknown): Buffer {
  const w = new Writer(64);
  w.value(v);
  return w.take();
}
