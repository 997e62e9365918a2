/**
 * AMQP 1.0 performatives, SASL frames, termini, outcomes and errors: decode from frame bodies
 * and encode into a {@link Writer}. Hot frames (transfer, disposition, flow) are read through
 * {@link scanPerformative}, which records field spans in a reused scratch array instead of
 * building objects.
 */
import { DecodeError, Described, InvalidStringError, Reader, Writer, skipValue } from './codec';
import { compoundBody } from './sections';

/** Descriptor codes (numeric form; the symbolic form maps to these). */
export const enum D {
  Open = 0x10,
  Begin = 0x11,
  Attach = 0x12,
  Flow = 0x13,
  Transfer = 0x14,
  Disposition = 0x15,
  Detach = 0x16,
  End = 0x17,
  Close = 0x18,
  Error = 0x1d,
  Received = 0x23,
  Accepted = 0x24,
  Rejected = 0x25,
  Released = 0x26,
  Modified = 0x27,
  Source = 0x28,
  Target = 0x29,
  DeleteOnClose = 0x2b,
  DeleteOnNoLinks = 0x2c,
  DeleteOnNoMessages = 0x2d,
  DeleteOnNoLinksOrMessages = 0x2e,
  Coordinator = 0x30,
  Declare = 0x31,
  Discharge = 0x32,
  Declared = 0x33,
  TransactionalState = 0x34,
  SaslMechanisms = 0x40,
  SaslInit = 0x41,
  SaslChallenge = 0x42,
  SaslResponse = 0x43,
  SaslOutcome = 0x44,
  Header = 0x70,
  DeliveryAnnotations = 0x71,
  MessageAnnotations = 0x72,
  Properties = 0x73,
  ApplicationProperties = 0x74,
  Data = 0x75,
  AmqpSequence = 0x76,
  AmqpValue = 0x77,
  Footer = 0x78,
}

const SYMBOLIC: Record<string, number> = {
  'amqp:open:list': 0x10, 'amqp:begin:list': 0x11, 'amqp:attach:list': 0x12, 'amqp:flow:list': 0x13,
  'amqp:transfer:list': 0x14, 'amqp:disposition:list': 0x15, 'amqp:detach:list': 0x16,
  'amqp:end:list': 0x17, 'amqp:close:list': 0x18, 'amqp:error:list': 0x1d,
  'amqp:received:list': 0x23, 'amqp:accepted:list': 0x24, 'amqp:rejected:list': 0x25,
  'amqp:released:list': 0x26, 'amqp:modified:list': 0x27, 'amqp:source:list': 0x28,
  'amqp:target:list': 0x29, 'amqp:delete-on-close:list': 0x2b, 'amqp:delete-on-no-links:list': 0x2c,
  'amqp:delete-on-no-messages:list': 0x2d, 'amqp:delete-on-no-links-or-messages:list': 0x2e,
  'amqp:coordinator:list': 0x30, 'amqp:declare:list': 0x31, 'amqp:discharge:list': 0x32,
  'amqp:declared:list': 0x33, 'amqp:transactional-state:list': 0x34,
  'amqp:sasl-mechanisms:list': 0x40, 'amqp:sasl-init:list': 0x41, 'amqp:sasl-challenge:list': 0x42,
  'amqp:sasl-response:list': 0x43, 'amqp:sasl-outcome:list': 0x44,
  'amqp:header:list': 0x70, 'amqp:delivery-annotations:map': 0x71, 'amqp:message-annotations:map': 0x72,
  'amqp:properties:list': 0x73, 'amqp:application-properties:map': 0x74, 'amqp:data:binary': 0x75,
  'amqp:amqp-sequence:list': 0x76, 'amqp:amqp-value:*': 0x77, 'amqp:footer:map': 0x78,
};

/** Numeric code of a decoded descriptor (number or symbol), or -1 if unknown. */
export function descriptorCode(d: unknown): number {
  if (typeof d === 'number') return d;
  if (typeof d === 'bigint') return d < 0x100000000n ? Number(d) : -1;
  if (typeof d === 'string') return SYMBOLIC[d] ?? -1;
  return -1;
}

/**
 * Reads a descriptor at `off`; returns the code and sets {@link scan}.next to the offset after it.
 * Accepts smallulong, ulong, ulong0 and symbolic descriptors.
 */
function readDescriptor(buf: Buffer, off: number, end: number): number {
  if (off + 2 > end || buf[off] !== 0x00) throw new DecodeError(`described type expected at offset ${off}`);
  const c = buf[off + 1];
  if (c === 0x53) {
    if (off + 3 > end) throw new DecodeError('truncated descriptor');
    scan.next = off + 3;
    return buf[off + 2];
  }
  const after = skipValue(buf, off + 1, end);
  scan.next = after;
  return descriptorCode(new Reader(buf, off + 1, after).read());
}

/**
 * Scratch state of the last {@link scanPerformative} call. Field i spans
 * `buf[starts[i]..ends[i])`; fields past `count` are absent (null).
 */
export const scan = {
  code: 0,
  count: 0,
  /** Offset just past the performative: where a transfer's payload starts. */
  next: 0,
  starts: new Int32Array(32),
  ends: new Int32Array(32),
  buf: Buffer.alloc(0) as Buffer,
};

/**
 * Scans the described list at `off`, recording up to 32 field spans. Returns the descriptor code.
 * Never allocates for numeric descriptors.
 */
export function scanPerformative(buf: Buffer, off: number, end: number): number {
  const code = readDescriptor(buf, off, end);
  let p = scan.next;
  if (p >= end) throw new DecodeError('performative body missing');
  const lc = buf[p];
  let count: number, listEnd: number;
  if (lc === 0x45) {
    count = 0;
    listEnd = p + 1;
    p += 1;
  } else if (lc === 0xc0) {
    if (p + 3 > end) throw new DecodeError('truncated list');
    if (buf[p + 1] < 1) throw new DecodeError('list8 size smaller than its count');
    listEnd = p + 2 + buf[p + 1];
    count = buf[p + 2];
    p += 3;
  } else if (lc === 0xd0) {
    if (p + 9 > end) throw new DecodeError('truncated list');
    if (buf.readUInt32BE(p + 1) < 4) throw new DecodeError('list32 size smaller than its count');
    listEnd = p + 5 + buf.readUInt32BE(p + 1);
    count = buf.readUInt32BE(p + 5);
    p += 9;
  } else {
    throw new DecodeError(`performative 0x${code.toString(16)} is not a list (format code 0x${lc.toString(16)})`);
  }
  if (listEnd > end) throw new DecodeError('performative list runs past the frame');
  const n = count < 32 ? count : 32;
  const starts = scan.starts, ends = scan.ends;
  for (let i = 0; i < n; i++) {
    starts[i] = p;
    p = skipValue(buf, p, listEnd);
    ends[i] = p;
  }
  scan.code = code;
  scan.count = n;
  scan.next = listEnd;
  scan.buf = buf;
  return code;
}

/** True when field i is absent or encoded null. */
export function fieldIsNull(i: number): boolean {
  return i >= scan.count || scan.buf[scan.starts[i]] === 0x40;
}

/** Reads field i as an unsigned integer (uint/ushort/ubyte/ulong forms), or `dflt` when null. */
export function fieldUint(i: number, dflt: number): number {
  if (i >= scan.count) return dflt;
  const buf = scan.buf;
  const s = scan.starts[i];
  switch (buf[s]) {
    case 0x40: return dflt;
    case 0x43: case 0x44: return 0;
    case 0x52: case 0x53: case 0x50: return buf[s + 1];
    case 0x60: return buf.readUInt16BE(s + 1);
    case 0x70: return buf.readUInt32BE(s + 1);
    case 0x80: {
      const v = buf.readBigUInt64BE(s + 1);
      return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
    }
  }
  throw new DecodeError(`field ${i} of performative 0x${scan.code.toString(16)} is not an unsigned integer`);
}

/** Reads field i as boolean, or `dflt` when null. */
export function fieldBool(i: number, dflt: boolean): boolean {
  if (i >= scan.count) return dflt;
  const buf = scan.buf;
  const s = scan.starts[i];
  switch (buf[s]) {
    case 0x40: return dflt;
    case 0x41: return true;
    case 0x42: return false;
    case 0x56: return buf[s + 1] !== 0;
  }
  throw new DecodeError(`field ${i} of performative 0x${scan.code.toString(16)} is not a boolean`);
}

/** Decodes field i generically (null when absent). */
export function fieldValue(i: number): unknown {
  if (i >= scan.count) return null;
  return new Reader(scan.buf, scan.starts[i], scan.ends[i]).read();
}

/** Field i as binary (vbin8/vbin32), a view into the frame, or null when absent/null. */
export function fieldBinary(i: number): Buffer | null {
  if (fieldIsNull(i)) return null;
  const buf = scan.buf;
  const s = scan.starts[i];
  switch (buf[s]) {
    case 0xa0: return buf.subarray(s + 2, s + 2 + buf[s + 1]);
    case 0xb0: return buf.subarray(s + 5, s + 5 + buf.readUInt32BE(s + 1));
  }
  throw new DecodeError(`field ${i} of performative 0x${scan.code.toString(16)} is not binary`);
}

/** Field i's encoded bytes as a view, or null when absent/null. */
export function fieldRaw(i: number): Buffer | null {
  if (fieldIsNull(i)) return null;
  return scan.buf.subarray(scan.starts[i], scan.ends[i]);
}

// ---------------------------------------------------------------------------------------------
// Decoded shapes

export type { AmqpError } from './errors';
import type { AmqpError } from './errors';

export interface OpenFrame {
  containerId: string;
  hostname: string | null;
  maxFrameSize: number;
  channelMax: number;
  idleTimeout: number;
  offeredCapabilities: string[];
  desiredCapabilities: string[];
  properties: Record<string, unknown> | null;
}

export interface BeginFrame {
  remoteChannel: number | null;
  nextOutgoingId: number;
  incomingWindow: number;
  outgoingWindow: number;
  handleMax: number;
}

/** A source or target (or coordinator) terminus. */
export interface Terminus {
  type: 'source' | 'target' | 'coordinator';
  address: string | null;
  durable: number;
  expiryPolicy: string | null;
  timeout: number;
  dynamic: boolean;
  distributionMode: string | null;
  capabilities: string[];
  /**
   * A dynamic terminus's `x-opt-qd.address` dynamic-node-property (a string), or null:
   * qdrouterd link-routes a dynamic terminus by it.
   */
  dynamicAddress: string | null;
  /** The terminus exactly as encoded by the peer, so replies and routed attaches can echo it. */
  raw: Buffer;
}

export interface AttachFrame {
  name: string;
  /**
   * Why a terminus is unusable (an address that is not a valid UTF-8 string...), or null. The
   * engine refuses such an attach with amqp:invalid-field (source and target are then null).
   */
  invalid: string | null;
  handle: number;
  /** false: the peer is the sender; true: the peer is the receiver. */
  role: boolean;
  sndSettleMode: number;
  rcvSettleMode: number;
  source: Terminus | null;
  target: Terminus | null;
  initialDeliveryCount: number;
  maxMessageSize: number;
  offeredCapabilities: string[];
  desiredCapabilities: string[];
}

export interface FlowFrame {
  nextIncomingId: number | null;
  incomingWindow: number;
  nextOutgoingId: number;
  outgoingWindow: number;
  handle: number | null;
  deliveryCount: number | null;
  linkCredit: number | null;
  available: number | null;
  drain: boolean;
  echo: boolean;
}

export interface DetachFrame {
  handle: number;
  closed: boolean;
  error: AmqpError | null;
}

function asString(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new DecodeError(`${what} must be a string`);
  return v;
}

function asSymbols(v: unknown): string[] {
  if (v === null || v === undefined) return [];
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  return [];
}

function dynamicAddressOf(v: unknown): string | null {
  const a = asFields(v)?.['x-opt-qd.address'];
  return typeof a === 'string' ? a : null;
}

function asFields(v: unknown): Record<string, unknown> | null {
  if (v === null || v === undefined) return null;
  if (v instanceof Map) {
    // Fields are keyed by symbols; other keys are not fields. (String() of a decoded map could
    // throw, and assigning "__proto__" would set the prototype.)
    const o: Record<string, unknown> = {};
    for (const [k, e] of v) {
      if (typeof k === 'string') Object.defineProperty(o, k, { value: e, enumerable: true, writable: true, configurable: true });
    }
    return o;
  }
  if (typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v)) return v as Record<string, unknown>;
  return null;
}

/** Decodes an error field (described list) if present. */
export function decodeError(v: unknown): AmqpError | null {
  if (!(v instanceof Described)) return null;
  if (descriptorCode(v.descriptor) !== D.Error) throw new DecodeError('error field is not an amqp:error');
  if (!Array.isArray(v.value)) throw new DecodeError('amqp:error is not a list');
  const f = v.value as unknown[];
  return {
    condition: typeof f[0] === 'string' ? f[0] : 'amqp:internal-error',
    description: typeof f[1] === 'string' ? f[1] : null,
    info: asFields(f[2]),
  };
}

export function decodeOpen(): OpenFrame {
  if (fieldIsNull(0)) throw new DecodeError('open: container-id is mandatory');
  return {
    containerId: asString(fieldValue(0), 'open container-id'),
    hostname: fieldIsNull(1) ? null : asString(fieldValue(1), 'open hostname'),
    maxFrameSize: fieldUint(2, 0xffffffff),
    channelMax: fieldUint(3, 0xffff),
    idleTimeout: fieldUint(4, 0),
    offeredCapabilities: asSymbols(fieldValue(7)),
    desiredCapabilities: asSymbols(fieldValue(8)),
    properties: asFields(fieldValue(9)),
  };
}

export function decodeBegin(): BeginFrame {
  for (const i of [1, 2, 3]) if (fieldIsNull(i)) throw new DecodeError(`begin: mandatory field ${i} missing`);
  return {
    remoteChannel: fieldIsNull(0) ? null : fieldUint(0, 0),
    nextOutgoingId: fieldUint(1, 0),
    incomingWindow: fieldUint(2, 0),
    outgoingWindow: fieldUint(3, 0),
    handleMax: fieldUint(4, 0xffffffff),
  };
}

/** A terminus the engine refuses with amqp:invalid-field (the frame itself is well formed). */
class InvalidTerminusError extends DecodeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InvalidTerminusError';
  }
}

/**
 * A terminus address: a string (a symbol decodes to one), or null. Anything else (a binary, a
 * number...) is refused rather than converted: String() of a binary would replace bad UTF-8 with
 * U+FFFD and let different addresses alias.
 */
function terminusAddress(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v === null || v === undefined) return null;
  throw new InvalidTerminusError(`terminus address must be a string, not ${Buffer.isBuffer(v) ? 'binary' : typeof v}`);
}

/** A source or target (or coordinator) terminus from its encoding (null: none). */
export function decodeTerminus(raw: Buffer | null): Terminus | null {
  if (raw === null) return null;
  let v: unknown;
  try {
    v = new Reader(raw).read();
  } catch (e) {
    if (e instanceof InvalidStringError) throw new InvalidTerminusError(`terminus: ${e.message}`, { cause: e });
    throw e;
  }
  if (!(v instanceof Described)) throw new DecodeError('terminus is not a described type');
  const code = descriptorCode(v.descriptor);
  const f = (Array.isArray(v.value) ? v.value : []) as unknown[];
  if (code === D.Source) {
    return {
      type: 'source',
      address: terminusAddress(f[0]),
      durable: typeof f[1] === 'number' ? f[1] : 0,
      expiryPolicy: typeof f[2] === 'string' ? f[2] : null,
      timeout: typeof f[3] === 'number' ? f[3] : 0,
      dynamic: f[4] === true,
      distributionMode: typeof f[6] === 'string' ? f[6] : null,
      capabilities: asSymbols(f[10]),
      dynamicAddress: f[4] === true ? dynamicAddressOf(f[5]) : null,
      raw,
    };
  }
  if (code === D.Target || code === D.Coordinator) {
    if (code === D.Coordinator) {
      return { type: 'coordinator', address: null, durable: 0, expiryPolicy: null, timeout: 0, dynamic: false, distributionMode: null, capabilities: asSymbols(f[0]), dynamicAddress: null, raw };
    }
    return {
      type: 'target',
      address: terminusAddress(f[0]),
      durable: typeof f[1] === 'number' ? f[1] : 0,
      expiryPolicy: typeof f[2] === 'string' ? f[2] : null,
      timeout: typeof f[3] === 'number' ? f[3] : 0,
      dynamic: f[4] === true,
      distributionMode: null,
      capabilities: asSymbols(f[6]),
      dynamicAddress: f[4] === true ? dynamicAddressOf(f[5]) : null,
      raw,
    };
  }
  throw new DecodeError(`terminus has unexpected descriptor 0x${code.toString(16)}`);
}

export function decodeAttach(): AttachFrame {
  if (fieldIsNull(0) || fieldIsNull(1) || fieldIsNull(2)) throw new DecodeError('attach: name, handle and role are mandatory');
  let source: Terminus | null = null, target: Terminus | null = null, invalid: string | null = null;
  try {
    source = decodeTerminus(fieldRaw(5));
    target = decodeTerminus(fieldRaw(6));
  } catch (e) {
    if (!(e instanceof InvalidTerminusError)) throw e;
    source = target = null;
    invalid = e.message;
  }
  return {
    name: asString(fieldValue(0), 'attach name'),
    invalid,
    handle: fieldUint(1, 0),
    role: fieldBool(2, false),
    sndSettleMode: fieldUint(3, 2),
    rcvSettleMode: fieldUint(4, 0),
    source,
    target,
    initialDeliveryCount: fieldUint(9, 0),
    maxMessageSize: fieldUint(10, 0),
    offeredCapabilities: asSymbols(fieldValue(11)),
    desiredCapabilities: asSymbols(fieldValue(12)),
  };
}

export function decodeFlow(): FlowFrame {
  return {
    nextIncomingId: fieldIsNull(0) ? null : fieldUint(0, 0),
    incomingWindow: fieldUint(1, 0),
    nextOutgoingId: fieldUint(2, 0),
    outgoingWindow: fieldUint(3, 0),
    handle: fieldIsNull(4) ? null : fieldUint(4, 0),
    deliveryCount: fieldIsNull(5) ? null : fieldUint(5, 0),
    linkCredit: fieldIsNull(6) ? null : fieldUint(6, 0),
    available: fieldIsNull(7) ? null : fieldUint(7, 0),
    drain: fieldBool(8, false),
    echo: fieldBool(9, false),
  };
}

export function decodeDetach(): DetachFrame {
  return { handle: fieldUint(0, 0), closed: fieldBool(1, false), error: decodeError(fieldValue(2)) };
}

/** Error field of end/close (field 0). */
export function decodeEndOrClose(): AmqpError | null {
  return decodeError(fieldValue(0));
}

/** Outcome codes as the data path passes them around. */
export const enum Outcome {
  None = 0,
  Received = D.Received,
  Accepted = D.Accepted,
  Rejected = D.Rejected,
  Released = D.Released,
  Modified = D.Modified,
  Declared = D.Declared,
  Transactional = D.TransactionalState,
}

/** Reads the descriptor code of a delivery-state at buf[off..end); 0 when null/absent. */
export function stateCode(buf: Buffer, off: number, end: number): number {
  if (off >= end || buf[off] === 0x40) return 0;
  const c = readDescriptor(buf, off, end);
  return c;
}

/** Reads modified's delivery-failed and undeliverable-here flags from an encoded modified state. */
export function decodeModified(raw: Buffer): { deliveryFailed: boolean; undeliverableHere: boolean } {
  const v = new Reader(raw).read();
  const f = v instanceof Described && Array.isArray(v.value) ? (v.value as unknown[]) : [];
  return { deliveryFailed: f[0] === true, undeliverableHere: f[1] === true };
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** Starts a frame in `w`; returns the mark for {@link endFrame}. */
export function beginFrame(w: Writer, type: number, channel: number): number {
  w.ensure(8);
  const mark = w.off;
  w.buf.writeUInt32BE(0, mark);
  w.buf[mark + 4] = 2;
  w.buf[mark + 5] = type;
  w.buf.writeUInt16BE(channel, mark + 6);
  w.off += 8;
  return mark;
}

export function endFrame(w: Writer, mark: number): void {
  w.buf.writeUInt32BE(w.off - mark, mark);
}

/** Writes an empty frame (heartbeat). */
export function writeHeartbeat(w: Writer): void {
  w.ensure(8);
  w.buf.writeUInt32BE(8, w.off);
  w.buf[w.off + 4] = 2;
  w.buf[w.off + 5] = 0;
  w.buf.writeUInt16BE(0, w.off + 6);
  w.off += 8;
}

export function writeError(w: Writer, e: AmqpError | null | undefined): void {
  if (!e) return w.null();
  w.descriptor(D.Error);
  const m = w.beginList();
  w.symbol(e.condition);
  let n = 1;
  if (e.description != null || e.info != null) {
    if (e.description != null) w.string(e.description);
    else w.null();
    n++;
  }
  if (e.info != null) {
    const mm = w.beginMap();
    let k = 0;
    for (const [key, val] of Object.entries(e.info)) {
      w.symbol(key);
      w.value(val);
      k += 2;
    }
    w.endMap(mm, k);
    n++;
  }
  w.endList(m, n);
}

export interface OpenFields {
  containerId: string;
  hostname?: string | null;
  maxFrameSize: number;
  channelMax: number;
  idleTimeout: number;
  offeredCapabilities?: string[];
  desiredCapabilities?: string[];
  properties?: Record<string, unknown> | null;
}

export function writeOpen(w: Writer, o: OpenFields): void {
  const f = beginFrame(w, 0, 0);
  w.descriptor(D.Open);
  const m = w.beginList();
  w.string(o.containerId);
  if (o.hostname) w.string(o.hostname);
  else w.null();
  w.uint(o.maxFrameSize);
  w.ushort(o.channelMax);
  let n = 4;
  const caps = !!(o.offeredCapabilities?.length || o.desiredCapabilities?.length);
  if (o.idleTimeout > 0 || caps || o.properties) {
    w.uint(o.idleTimeout);
    n = 5;
  }
  if (caps || o.properties) {
    w.null();
    w.null();
    if (o.offeredCapabilities?.length) w.symbolArray(o.offeredCapabilities);
    else w.null();
    if (o.desiredCapabilities?.length) w.symbolArray(o.desiredCapabilities);
    else w.null();
    n = 9;
    if (o.properties) {
      const mm = w.beginMap();
      let k = 0;
      for (const [key, val] of Object.entries(o.properties)) {
        w.symbol(key);
        w.value(val);
        k += 2;
      }
      w.endMap(mm, k);
      n = 10;
    }
  }
  w.endList(m, n);
  endFrame(w, f);
}

export function writeBegin(w: Writer, channel: number, remoteChannel: number | null, nextOutgoingId: number, incomingWindow: number, outgoingWindow: number, handleMax: number): void {
  const f = beginFrame(w, 0, channel);
  w.descriptor(D.Begin);
  const m = w.beginList();
  if (remoteChannel === null) w.null();
  else w.ushort(remoteChannel);
  w.uint(nextOutgoingId);
  w.uint(incomingWindow);
  w.uint(outgoingWindow);
  w.uint(handleMax);
  w.endList(m, 5);
  endFrame(w, f);
}

/**
 * A source or target terminus as encoded by the peer with its address (field 0) replaced, every
 * other field kept byte for byte (a multi-tenant listener's link routes carry the vhost's space).
 * @throws DecodeError for a terminus that is not a described list.
 */
export function withTerminusAddress(raw: Buffer, address: string): Buffer {
  if (raw[0] !== 0x00) throw new DecodeError('terminus is not a described type');
  const listAt = skipValue(raw, 1, raw.length);
  const { first, count } = compoundBody(raw, listAt, raw.length, 'list');
  const rest = count > 0 ? skipValue(raw, first, raw.length) : first;
  const w = new Writer();
  w.bytes(raw, 0, listAt);
  const m = w.beginList();
  w.string(address);
  w.bytes(raw, rest, raw.length);
  w.endList(m, Math.max(count, 1));
  return w.take();
}

/**
 * A dynamic terminus with its dynamic-node-properties' `x-opt-qd.address` (what qdrouterd
 * link-routes a dynamic terminus by) replaced; every other byte kept. A terminus without that
 * property is returned as it is.
 * @throws DecodeError for a terminus that is not a described list.
 */
export function withDynamicNodeAddress(raw: Buffer, address: string): Buffer {
  if (raw[0] !== 0x00) throw new DecodeError('terminus is not a described type');
  const listAt = skipValue(raw, 1, raw.length);
  const { first, count } = compoundBody(raw, listAt, raw.length, 'list');
  if (count < 6) return raw;
  let at = first;
  for (let i = 0; i < 5; i++) at = skipValue(raw, at, raw.length);
  const mapAt = at;
  const mapEnd = skipValue(raw, mapAt, raw.length);
  const mc = raw[mapAt];
  if (mc !== 0xc1 && mc !== 0xd1) return raw;
  const wide = mc === 0xd1;
  const n = wide ? raw.readUInt32BE(mapAt + 5) : raw[mapAt + 2];
  let p = mapAt + (wide ? 9 : 3);
  const w = new Writer();
  w.bytes(raw, 0, mapAt);
  const m = w.beginMap();
  let found = false;
  for (let i = 0; i < n; i += 2) {
    const kEnd = skipValue(raw, p, mapEnd);
    const vEnd = skipValue(raw, kEnd, mapEnd);
    w.bytes(raw, p, kEnd);
    const isKey = (raw[p] === 0xa3 && raw.toString('utf8', p + 2, kEnd) === 'x-opt-qd.address') || (raw[p] === 0xb3 && raw.toString('utf8', p + 5, kEnd) === 'x-opt-qd.address');
    if (isKey) {
      w.string(address);
      found = true;
    } else w.bytes(raw, kEnd, vEnd);
    p = vEnd;
  }
  w.endMap(m, n);
  if (!found) return raw;
  // The list's size changes with the map: rewrite the list around it.
  const rest = raw.subarray(mapEnd);
  const fieldsBefore = w.take().subarray(listAt);
  const out = new Writer();
  out.bytes(raw, 0, listAt);
  const lm = out.beginList();
  out.bytes(fieldsBefore, first - listAt, fieldsBefore.length);
  out.bytes(rest);
  out.endList(lm, count);
  return out.take();
}

/** Terminus to write in an attach: raw bytes to echo, or fields to build. */
export type TerminusOut =
  | { raw: Buffer }
  | { type: 'source' | 'target'; address: string | null; dynamic?: boolean; capabilities?: string[]; expiryPolicy?: string; durable?: number }
  | null;

function writeTerminus(w: Writer, t: TerminusOut): void {
  if (t === null) return w.null();
  if ('raw' in t) return w.bytes(t.raw);
  w.descriptor(t.type === 'source' ? D.Source : D.Target);
  const m = w.beginList();
  if (t.address === null) w.null();
  else w.string(t.address);
  let n = 1;
  const needMore = t.dynamic || t.capabilities?.length || t.durable || t.expiryPolicy;
  if (needMore) {
    w.uint(t.durable ?? 0);
    if (t.expiryPolicy) w.symbol(t.expiryPolicy);
    else w.null();
    w.null();
    w.boolean(!!t.dynamic);
    n = 5;
    if (t.capabilities?.length) {
      if (t.type === 'source') {
        for (let i = 0; i < 5; i++) w.null();
        w.symbolArray(t.capabilities);
        n = 11;
      } else {
        w.null();
        w.symbolArray(t.capabilities);
        n = 7;
      }
    }
  }
  w.endList(m, n);
}

export interface AttachFields {
  name: string;
  handle: number;
  role: boolean;
  sndSettleMode: number;
  rcvSettleMode: number;
  source: TerminusOut;
  target: TerminusOut;
  initialDeliveryCount?: number | null;
  maxMessageSize?: number;
  offeredCapabilities?: string[];
}

export function writeAttach(w: Writer, channel: number, a: AttachFields): void {
  const f = beginFrame(w, 0, channel);
  w.descriptor(D.Attach);
  const m = w.beginList();
  w.string(a.name);
  w.uint(a.handle);
  w.boolean(a.role);
  w.ubyte(a.sndSettleMode);
  w.ubyte(a.rcvSettleMode);
  writeTerminus(w, a.source);
  writeTerminus(w, a.target);
  w.null(); // unsettled
  w.boolean(false); // incomplete-unsettled
  if (a.initialDeliveryCount == null) w.null();
  else w.uint(a.initialDeliveryCount);
  let n = 10;
  if (a.maxMessageSize || a.offeredCapabilities?.length) {
    w.ulong(a.maxMessageSize ?? 0);
    n = 11;
    if (a.offeredCapabilities?.length) {
      w.symbolArray(a.offeredCapabilities);
      n = 12;
    }
  }
  w.endList(m, n);
  endFrame(w, f);
}

export function writeFlow(
  w: Writer,
  channel: number,
  nextIncomingId: number,
  incomingWindow: number,
  nextOutgoingId: number,
  outgoingWindow: number,
  handle: number,
  deliveryCount: number,
  linkCredit: number,
  drain: boolean,
  echo = false,
): void {
  const f = beginFrame(w, 0, channel);
  w.descriptor(D.Flow);
  const m = w.beginList();
  w.uint(nextIncomingId);
  w.uint(incomingWindow);
  w.uint(nextOutgoingId);
  w.uint(outgoingWindow);
  let n = 4;
  if (handle >= 0) {
    w.uint(handle);
    w.uint(deliveryCount);
    w.uint(linkCredit);
    w.null(); // available
    w.boolean(drain);
    n = 9;
    if (echo) {
      w.boolean(true);
      n = 10;
    }
  }
  w.endList(m, n);
  endFrame(w, f);
}

/**
 * Writes a disposition. `state` is the encoded delivery-state to pass through byte for byte
 * (or null); `role` true when we are the receiver.
 */
export function writeDisposition(w: Writer, channel: number, role: boolean, first: number, last: number, settled: boolean, state: Buffer | null): void {
  const f = beginFrame(w, 0, channel);
  w.descriptor(D.Disposition);
  const m = w.beginList();
  w.boolean(role);
  w.uint(first);
  if (last !== first) w.uint(last);
  else w.null();
  w.boolean(settled);
  if (state !== null) w.bytes(state);
  w.endList(m, state !== null ? 5 : 4);
  endFrame(w, f);
}

export function writeDetach(w: Writer, channel: number, handle: number, closed: boolean, error: AmqpError | null): void {
  const f = beginFrame(w, 0, channel);
  w.descriptor(D.Detach);
  const m = w.beginList();
  w.uint(handle);
  w.boolean(closed);
  let n = 2;
  if (error) {
    writeError(w, error);
    n = 3;
  }
  w.endList(m, n);
  endFrame(w, f);
}

export function writeEnd(w: Writer, channel: number, error: AmqpError | null): void {
  const f = beginFrame(w, 0, channel);
  w.descriptor(D.End);
  const m = w.beginList();
  if (error) writeError(w, error);
  w.endList(m, error ? 1 : 0);
  endFrame(w, f);
}

export function writeClose(w: Writer, error: AmqpError | null): void {
  const f = beginFrame(w, 0, 0);
  w.descriptor(D.Close);
  const m = w.beginList();
  if (error) writeError(w, error);
  w.endList(m, error ? 1 : 0);
  endFrame(w, f);
}

/** Pre-encoded delivery states the router creates itself (released, modified, accepted). */
export const STATE = {
  accepted: Buffer.from([0x00, 0x53, D.Accepted, 0x45]),
  released: Buffer.from([0x00, 0x53, D.Released, 0x45]),
  /** modified with delivery-failed=true. */
  modifiedFailed: Buffer.from([0x00, 0x53, D.Modified, 0xc0, 0x02, 0x01, 0x41]),
  /** modified with delivery-failed=true, undeliverable-here=true. */
  modifiedUndeliverable: Buffer.from([0x00, 0x53, D.Modified, 0xc0, 0x03, 0x02, 0x41, 0x41]),
};

/**
 * A modified delivery-state with delivery-failed set, everything else (undeliverable-here,
 * message-annotations) kept byte for byte; any other state as it is. qdrouterd sends every
 * modified outcome it relays with delivery-failed set.
 */
export function withDeliveryFailed(state: Buffer): Buffer {
  if (state.length < 4 || state[0] !== 0x00) return state;
  // The descriptor in another form (ulong 0x80, or the symbol amqp:modified:list) is the same
  // state: rewritten to the small form first, so such a peer's modified is not relayed unmarked.
  if (state[1] !== 0x53) return isModified(state) ? withDeliveryFailed(Buffer.concat([STATE.modifiedFailed.subarray(0, 3), state.subarray(scan.next)])) : state;
  if (state[2] !== D.Modified) return state;
  let count: number, first: number;
  switch (state[3]) {
    case 0x45: return STATE.modifiedFailed;
    case 0xc0: count = state[5]; first = 6; break;
    case 0xd0: count = state.readUInt32BE(8); first = 12; break;
    default: return state;
  }
  if (count === 0) return STATE.modifiedFailed;
  const f = state[first];
  if (f === 0x41 || (f === 0x56 && state[first + 1] === 1)) return state;
  if (f !== 0x40 && f !== 0x42 && f !== 0x56) return state;
  const rest = state.subarray(first + (f === 0x56 ? 2 : 1));
  if (state[3] === 0xc0 && 2 + rest.length <= 0xff) {
    // list8 as it came: size covers the count and the fields.
    const small = Buffer.alloc(7 + rest.length);
    small[0] = 0x00; small[1] = 0x53; small[2] = D.Modified; small[3] = 0xc0;
    small[4] = 2 + rest.length;
    small[5] = count;
    small[6] = 0x41;
    rest.copy(small, 7);
    return small;
  }
  const out = Buffer.alloc(12 + 1 + rest.length);
  out[0] = 0x00; out[1] = 0x53; out[2] = D.Modified; out[3] = 0xd0;
  out.writeUInt32BE(4 + 1 + rest.length, 4);
  out.writeUInt32BE(count, 8);
  out[12] = 0x41;
  rest.copy(out, 13);
  return out;
}

/** Whether `state` is modified with a descriptor not in the small-ulong form (leaves its end in scan.next). */
function isModified(state: Buffer): boolean {
  try {
    return readDescriptor(state, 0, state.length) === D.Modified && scan.next < state.length;
  } catch {
    return false;
  }
}

/** Encodes a rejected state carrying `error`. */
export function encodeRejected(error: AmqpError): Buffer {
  const w = new Writer(128);
  w.descriptor(D.Rejected);
  const m = w.beginList();
  writeError(w, error);
  w.endList(m, 1);
  return w.take();
}

// SASL -----------------------------------------------------------------------------------------

export function writeSaslMechanisms(w: Writer, mechanisms: string[]): void {
  const f = beginFrame(w, 1, 0);
  w.descriptor(D.SaslMechanisms);
  const m = w.beginList();
  // sasl-server-mechanisms is multiple: always an array, Proton rejects a bare symbol here.
  const mark = w.off;
  w.ensure(10);
  w.buf[w.off] = 0xe0;
  w.off += 3;
  w.byte(0xa3);
  for (const mech of mechanisms) {
    w.byte(mech.length);
    w.off += w.buf.write(mech, w.off, 'latin1');
  }
  w.buf[mark + 1] = w.off - mark - 2;
  w.buf[mark + 2] = mechanisms.length;
  w.endList(m, 1);
  endFrame(w, f);
}

/** SASL outcome codes (part 5, 5.3.3.6). */
export const enum SaslCode {
  Ok = 0,
  Auth = 1,
  Sys = 2,
  SysPerm = 3,
  SysTemp = 4,
}

export function writeSaslOutcome(w: Writer, code: SaslCode, additionalData: Buffer | null = null): void {
  const f = beginFrame(w, 1, 0);
  w.descriptor(D.SaslOutcome);
  const m = w.beginList();
  w.ubyte(code);
  if (additionalData !== null) w.binary(additionalData);
  w.endList(m, additionalData !== null ? 2 : 1);
  endFrame(w, f);
}

/** sasl-challenge: the server's next step of a multi-step mechanism (SCRAM's server-first message). */
export function writeSaslChallenge(w: Writer, challenge: Buffer): void {
  const f = beginFrame(w, 1, 0);
  w.descriptor(D.SaslChallenge);
  const m = w.beginList();
  w.binary(challenge);
  w.endList(m, 1);
  endFrame(w, f);
}

/** Client side (tests, tools): sasl-response. */
export function writeSaslResponse(w: Writer, response: Buffer): void {
  const f = beginFrame(w, 1, 0);
  w.descriptor(D.SaslResponse);
  const m = w.beginList();
  w.binary(response);
  w.endList(m, 1);
  endFrame(w, f);
}

/** The response of a sasl-response frame (mandatory binary). */
export function decodeSaslResponse(): Buffer {
  const r = fieldValue(0);
  if (!Buffer.isBuffer(r)) throw new DecodeError('sasl-response: response must be binary');
  return r;
}

export interface SaslInit {
  mechanism: string;
  initialResponse: Buffer | null;
  hostname: string | null;
}

export function decodeSaslInit(): SaslInit {
  if (fieldIsNull(0)) throw new DecodeError('sasl-init: mechanism is mandatory');
  const mech = fieldValue(0);
  const resp = fieldValue(1);
  const host = fieldValue(2);
  if (typeof mech !== 'string') throw new DecodeError('sasl-init: mechanism must be a symbol');
  return {
    mechanism: mech,
    initialResponse: Buffer.isBuffer(resp) ? resp : null,
    hostname: typeof host === 'string' ? host : null,
  };
}

/** Client side (tests, tools): sasl-init. */
export function writeSaslInit(w: Writer, mechanism: string, initialResponse: Buffer | null, hostname: string | null): void {
  const f = beginFrame(w, 1, 0);
  w.descriptor(D.SaslInit);
  const m = w.beginList();
  w.symbol(mechanism);
  if (initialResponse) w.binary(initialResponse);
  else w.null();
  if (hostname) w.string(hostname);
  else w.null();
  w.endList(m, 3);
  endFrame(w, f);
}
