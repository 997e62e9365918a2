/**
 * Inter-router control messages, wire-compatible with Qpid Dispatch Router 1.19.
 *
 * Six messages make up the protocol: HELLO (neighbour discovery), RA (router advertisement),
 * LSR/LSU (link-state request/update), MAU/MAR (mobile-address update/request). qdrouterd builds
 * the first four in Python and the last two in C, and the two builders encode differently:
 *
 *   - Python-built (HELLO, RA, LSR, LSU): properties is a list32 of 6 fields; the
 *     application-properties key `opcode` is a str; body map keys are str; integers are int32
 *     (smallint when they fit in a byte, long only past int32); empty lists are list0, other
 *     lists list32; maps are always map32.
 *   - C-built (MAU, MAR): properties is a list32 of 3 fields; the `opcode` key is a sym; body map
 *     keys are sym; pv/mobile_seq/have_seq are long (smalllong when they fit); hints are int;
 *     lists are always list32, even empty ones.
 *
 * {@link encodeControlMessage} reproduces those bytes exactly. {@link decodeControlMessage} is
 * lenient the way qdrouterd is on receive (str or sym keys, any integer width, list0/8/32) but
 * validates every field it returns, and refuses oversized input.
 *
 * Also here: reading the router annotations (x-opt-qd.*) of any message, with qdrouterd's type
 * rules, and the mobile-address hash keys and treatment hints carried in MAUs.
 */
import { DecodeError, Reader, Writer, skipValue } from '../../amqp/codec';
import { D, descriptorCode } from '../../amqp/performatives';
import type { Distribution } from '../distribution';
import { normalizeAddress } from '../../amqp/address';

// ---------------------------------------------------------------------------------------------
// Constants

/** The control protocol version this module speaks (`pv`). Higher versions are refused. */
export const PROTOCOL_VERSION = 1;
/** qdrouterd forces the area to "0". */
export const AREA = '0';

/** HELLO goes one hop, to every neighbour's control link. */
export const HELLO_ADDRESS = 'amqp:/_local/qdhello';
/** RA is flooded to every router. */
export const RA_ADDRESS = 'amqp:/_topo/0/all/qdrouter';
/** Differential MAUs are multicast to every router; qdrouterd sends this without `amqp:/`. */
export const MAU_ADDRESS = '_topo/0/all/qdrouter.ma';

/** A router's own control address: where LSR and LSU for it are sent. */
export function routerAddress(id: string): string {
  return `amqp:/_topo/0/${id}/qdrouter`;
}

/** A router's mobile-address-sync address: where MAR and absolute MAUs for it are sent. */
export function routerMaAddress(id: string): string {
  return `amqp:/_topo/0/${id}/qdrouter.ma`;
}

/** Largest control message payload {@link decodeControlMessage} accepts. */
export const MAX_CONTROL_PAYLOAD = 1024 * 1024;
/** Most entries in any one list (and most pairs in any one map) of a control message. */
export const MAX_CONTROL_ENTRIES = 10_000;
/** Longest router id accepted (id, ls.id, peers keys, seen entries). */
export const MAX_ROUTER_ID_LENGTH = 255;
/** Deepest nesting of lists/maps accepted in a control message (LSU needs 3). */
const MAX_CONTROL_DEPTH = 16;

// ---------------------------------------------------------------------------------------------
// Types

export type ControlOpcode = 'HELLO' | 'RA' | 'LSR' | 'LSU' | 'MAU' | 'MAR';
export const CONTROL_OPCODES: readonly ControlOpcode[] = ['HELLO', 'RA', 'LSR', 'LSU', 'MAU', 'MAR'];

interface ControlBase {
  /** The sending router's id (e.g. "QDR.A"). */
  id: string;
  /** Protocol version; 1 when sent by qdrouterd 1.19, 0 when absent on receive. */
  pv: number;
  /** Always "0" in practice (defaults to "0" on receive when absent). */
  area: string;
}

/** Neighbour discovery: sent every second on every inter-router control link. */
export interface Hello extends ControlBase {
  opcode: 'HELLO';
  /** Boot time of the sender (seconds); a change means the peer restarted. 0 when absent. */
  instance: number;
  /** Ids of the routers whose HELLO the sender heard in the last helloMaxAge. */
  seen: string[];
}

/** Router advertisement: the sender's current sequence numbers. */
export interface RouterAdvertisement extends ControlBase {
  opcode: 'RA';
  instance: number;
  ls_seq: number;
  mobile_seq: number;
}

/** Link-state request: asks the destination router for its link state. */
export interface LinkStateRequest extends ControlBase {
  opcode: 'LSR';
}

/** One router's link state: its neighbours and the cost to each. */
export interface LinkState {
  id: string;
  area: string;
  ls_seq: number;
  /** Neighbour id → cost. */
  peers: Record<string, number>;
}

/** Link-state update: the answer to an LSR. */
export interface LinkStateUpdate extends ControlBase {
  opcode: 'LSU';
  instance: number;
  ls_seq: number;
  ls: LinkState;
}

/** Differential MAU: the addresses added and removed since `mobile_seq - 1`. */
export interface MobileAddressUpdateDiff extends ControlBase {
  opcode: 'MAU';
  mobile_seq: number;
  /** One treatment hint per `add` entry (see {@link TREATMENT}), or empty. */
  hints: number[];
  /** Mobile hash keys, e.g. "M0mesh/q1" (see {@link mobileKey}). */
  add: string[];
  del: string[];
  exist?: undefined;
}

/** Absolute MAU: the sender's whole address set, the answer to a MAR. */
export interface MobileAddressUpdateAbsolute extends ControlBase {
  opcode: 'MAU';
  mobile_seq: number;
  exist: string[];
  /** One treatment hint per `exist` entry, or empty. */
  hints: number[];
  add?: undefined;
  del?: undefined;
}

export type MobileAddressUpdate = MobileAddressUpdateDiff | MobileAddressUpdateAbsolute;

/** Mobile-address request: "I have your addresses up to have_seq; send me the rest". */
export interface MobileAddressRequest extends ControlBase {
  opcode: 'MAR';
  have_seq: number;
}

export type ControlMessage =
  | Hello
  | RouterAdvertisement
  | LinkStateRequest
  | LinkStateUpdate
  | MobileAddressUpdate
  | MobileAddressRequest;

/** True for an absolute MAU (has `exist`, no add/del). */
export function isAbsoluteMau(m: MobileAddressUpdate): m is MobileAddressUpdateAbsolute {
  return m.exist !== undefined;
}

/**
 * Stable error codes:
 * - ERR_CONTROL_MALFORMED: the message is not a valid control message (bad encoding, missing
 *   section or field, wrong type). qdrouterd logs and drops such messages.
 * - ERR_CONTROL_VERSION: `pv` is above {@link PROTOCOL_VERSION}; qdrouterd ignores these.
 * - ERR_CONTROL_OPCODE: the opcode is not one of the six.
 * - ERR_CONTROL_LIMIT: over {@link MAX_CONTROL_PAYLOAD}, {@link MAX_CONTROL_ENTRIES} or
 *   {@link MAX_ROUTER_ID_LENGTH}.
 * - ERR_ANNOTATION_TYPE / ERR_ANNOTATION_MALFORMED: a router annotation (x-opt-qd.*) has the
 *   wrong type, or the message-annotations section is not a valid map. qdrouterd rejects such
 *   deliveries with amqp:invalid-field.
 * - ERR_MESSAGE_MALFORMED: a section before the annotations cannot be parsed (amqp:decode-error).
 */
export type ControlErrorCode =
  | 'ERR_CONTROL_MALFORMED'
  | 'ERR_CONTROL_VERSION'
  | 'ERR_CONTROL_OPCODE'
  | 'ERR_CONTROL_LIMIT'
  | 'ERR_ANNOTATION_TYPE'
  | 'ERR_ANNOTATION_MALFORMED'
  | 'ERR_MESSAGE_MALFORMED';

export class ControlMessageError extends Error {
  constructor(readonly code: ControlErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ControlMessageError';
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding

const ANN_INGRESS = 'x-opt-qd.ingress';
const ANN_TRACE = 'x-opt-qd.trace';

/** Finishes a compound begun with Writer.beginList/beginMap as list32/map32 (never compacted). */
function end32(w: Writer, mark: number, count: number): void {
  w.buf.writeUInt32BE(w.off - mark - 5, mark + 1);
  w.buf.writeUInt32BE(count, mark + 5);
}

function checkInteger(n: number, what: string): void {
  if (!Number.isSafeInteger(n)) throw new RangeError(`${what} must be a safe integer, got ${n}`);
}

/** An integer as qdrouterd's Python glue writes it: int32 (smallint if it fits), else long. */
function pyInt(w: Writer, n: number, what: string): void {
  checkInteger(n, what);
  if (n >= -0x80000000 && n <= 0x7fffffff) w.int(n);
  else w.long(n);
}

/** A long as qd_compose_insert_long writes it: smalllong if it fits in a byte, else long. */
function cLong(w: Writer, n: number, what: string): void {
  checkInteger(n, what);
  w.long(n);
}

function cInt(w: Writer, n: number, what: string): void {
  checkInteger(n, what);
  if (n < -0x80000000 || n > 0x7fffffff) throw new RangeError(`${what} must fit in an int32, got ${n}`);
  w.int(n);
}

/** A Python list of str: list0 when empty, list32 otherwise. */
function pyStrList(w: Writer, items: readonly string[]): void {
  if (items.length === 0) {
    w.byte(0x45);
    return;
  }
  const m = w.beginList();
  for (const s of items) w.string(s);
  end32(w, m, items.length);
}

/** A C-composed list of str: always list32. */
function cStrList(w: Writer, items: readonly string[]): void {
  const m = w.beginList();
  for (const s of items) w.string(s);
  end32(w, m, items.length);
}

function cIntList(w: Writer, items: readonly number[], what: string): void {
  const m = w.beginList();
  for (const n of items) cInt(w, n, what);
  end32(w, m, items.length);
}

/**
 * Writes the complete payload (all message sections) of a control message to `w`, exactly as
 * qdrouterd 1.19 does when it originates one: header [durable=false]; message-annotations
 * {x-opt-qd.ingress: "0/<routerId>", x-opt-qd.trace: ["0/<routerId>"]}; properties with `to`;
 * application-properties {opcode}; amqp-value body map.
 *
 * `to` is the destination address: {@link HELLO_ADDRESS}, {@link RA_ADDRESS},
 * {@link MAU_ADDRESS} (differential MAU), {@link routerAddress} (LSR, LSU) or
 * {@link routerMaAddress} (MAR, absolute MAU). Throws RangeError on non-integer numbers.
 */
export function encodeControlMessage(msg: ControlMessage, to: string, routerId: string, w: Writer): void {
  const pythonBuilt = msg.opcode !== 'MAU' && msg.opcode !== 'MAR';
  const self = `0/${routerId}`;

  // header: list32 [durable=false]
  w.descriptor(D.Header);
  let m = w.beginList();
  w.boolean(false);
  end32(w, m, 1);

  // message-annotations, as the router core composes them (map8/list8 when they fit)
  w.descriptor(D.MessageAnnotations);
  m = w.beginMap();
  w.symbol(ANN_INGRESS);
  w.string(self);
  w.symbol(ANN_TRACE);
  const t = w.beginList();
  w.string(self);
  w.endList(t, 1);
  w.endMap(m, 4);

  // properties: [message-id, user-id, to, subject, reply-to, correlation-id] or [.., .., to]
  w.descriptor(D.Properties);
  m = w.beginList();
  w.null();
  w.null();
  w.string(to);
  if (pythonBuilt) {
    w.null();
    w.null();
    w.null();
  }
  end32(w, m, pythonBuilt ? 6 : 3);

  // application-properties: {opcode: "<OPCODE>"}
  w.descriptor(D.ApplicationProperties);
  m = w.beginMap();
  if (pythonBuilt) w.string('opcode');
  else w.symbol('opcode');
  w.string(msg.opcode);
  end32(w, m, 2);

  // body
  w.descriptor(D.AmqpValue);
  const b = w.beginMap();
  let n = 0;
  const pyKey = (k: string): void => {
    w.string(k);
    n += 2;
  };
  const cKey = (k: string): void => {
    w.symbol(k);
    n += 2;
  };
  switch (msg.opcode) {
    case 'HELLO':
      pyKey('id'); w.string(msg.id);
      pyKey('pv'); pyInt(w, msg.pv, 'pv');
      pyKey('area'); w.string(msg.area);
      pyKey('instance'); pyInt(w, msg.instance, 'instance');
      pyKey('seen'); pyStrList(w, msg.seen);
      break;
    case 'RA':
      pyKey('id'); w.string(msg.id);
      pyKey('pv'); pyInt(w, msg.pv, 'pv');
      pyKey('area'); w.string(msg.area);
      pyKey('instance'); pyInt(w, msg.instance, 'instance');
      pyKey('ls_seq'); pyInt(w, msg.ls_seq, 'ls_seq');
      pyKey('mobile_seq'); pyInt(w, msg.mobile_seq, 'mobile_seq');
      break;
    case 'LSR':
      pyKey('id'); w.string(msg.id);
      pyKey('pv'); pyInt(w, msg.pv, 'pv');
      pyKey('area'); w.string(msg.area);
      break;
    case 'LSU': {
      pyKey('id'); w.string(msg.id);
      pyKey('pv'); pyInt(w, msg.pv, 'pv');
      pyKey('area'); w.string(msg.area);
      pyKey('instance'); pyInt(w, msg.instance, 'instance');
      pyKey('ls_seq'); pyInt(w, msg.ls_seq, 'ls_seq');
      pyKey('ls');
      const ls = w.beginMap();
      w.string('id'); w.string(msg.ls.id);
      w.string('area'); w.string(msg.ls.area);
      w.string('ls_seq'); pyInt(w, msg.ls.ls_seq, 'ls.ls_seq');
      w.string('peers');
      const pm = w.beginMap();
      let pn = 0;
      for (const [peer, cost] of Object.entries(msg.ls.peers)) {
        w.string(peer);
        pyInt(w, cost, `ls.peers[${peer}]`);
        pn += 2;
      }
      end32(w, pm, pn);
      end32(w, ls, 8);
      break;
    }
    case 'MAU':
      cKey('id'); w.string(msg.id);
      cKey('pv'); cLong(w, msg.pv, 'pv');
      cKey('area'); w.string(msg.area);
      cKey('mobile_seq'); cLong(w, msg.mobile_seq, 'mobile_seq');
      if (msg.exist !== undefined) {
        cKey('exist'); cStrList(w, msg.exist);
        cKey('hints'); cIntList(w, msg.hints, 'hints');
      } else {
        cKey('hints'); cIntList(w, msg.hints, 'hints');
        cKey('add'); cStrList(w, msg.add);
        cKey('del'); cStrList(w, msg.del);
      }
      break;
    case 'MAR':
      cKey('id'); w.string(msg.id);
      cKey('pv'); cLong(w, msg.pv, 'pv');
      cKey('area'); w.string(msg.area);
      cKey('have_seq'); cLong(w, msg.have_seq, 'have_seq');
      break;
    default:
      throw new TypeError(`unknown control opcode ${(msg as { opcode: unknown }).opcode}`);
  }
  end32(w, b, n);
}

// ---------------------------------------------------------------------------------------------
// Decoding: a typed tree, so str/sym/binary, list/array and integer types stay distinguishable

type Node =
  | { t: 'null' }
  | { t: 'bool'; v: boolean }
  | { t: 'int'; v: number | bigint }
  | { t: 'str' | 'sym'; v: string }
  | { t: 'bin'; v: Buffer }
  | { t: 'list'; v: Node[] }
  | { t: 'map'; v: Node[] } // keys and values alternating
  | { t: 'array' }
  | { t: 'other'; code: number };

const NULL_NODE: Node = { t: 'null' };

/** Format codes of the AMQP integer types (any width, signed or not). */
const INTEGER_CODES: ReadonlySet<number> = new Set([
  0x43, 0x44, 0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x60, 0x61, 0x70, 0x71, 0x80, 0x81,
]);

function malformed(message: string, cause?: unknown): ControlMessageError {
  return new ControlMessageError('ERR_CONTROL_MALFORMED', message, cause === undefined ? undefined : { cause });
}

function limit(message: string): ControlMessageError {
  return new ControlMessageError('ERR_CONTROL_LIMIT', message);
}

/** Reads one value at `r.off` into a typed tree; advances `r.off`. Compound sizes are checked. */
function readNode(r: Reader, depth: number): Node {
  const buf = r.buf;
  if (r.off >= r.end) throw new DecodeError(`value expected at offset ${r.off}`);
  const code = buf[r.off];
  switch (code) {
    case 0x40:
      r.off++;
      return NULL_NODE;
    case 0x41: case 0x42: case 0x56:
      return { t: 'bool', v: r.read() as boolean };
    case 0x43: case 0x44: case 0x50: case 0x51: case 0x52: case 0x53: case 0x54: case 0x55:
    case 0x60: case 0x61: case 0x70: case 0x71: case 0x80: case 0x81:
      return { t: 'int', v: r.read() as number | bigint };
    case 0xa1: case 0xb1:
      return { t: 'str', v: r.read() as string };
    case 0xa3: case 0xb3:
      return { t: 'sym', v: r.read() as string };
    case 0xa0: case 0xb0:
      return { t: 'bin', v: r.read() as Buffer };
    case 0x45:
      r.off++;
      return { t: 'list', v: [] };
    case 0xc0: case 0xd0: case 0xc1: case 0xd1: {
      const isMap = code === 0xc1 || code === 0xd1;
      let size: number, count: number, first: number;
      if (code === 0xc0 || code === 0xc1) {
        if (r.off + 3 > r.end) throw new DecodeError(`truncated compound at offset ${r.off}`);
        size = buf[r.off + 1];
        count = buf[r.off + 2];
        if (size < 1) throw new DecodeError(`compound size ${size} at offset ${r.off} is too small`);
        first = r.off + 3;
        size -= 1;
      } else {
        if (r.off + 9 > r.end) throw new DecodeError(`truncated compound at offset ${r.off}`);
        size = buf.readUInt32BE(r.off + 1);
        count = buf.readUInt32BE(r.off + 5);
        if (size < 4) throw new DecodeError(`compound size ${size} at offset ${r.off} is too small`);
        first = r.off + 9;
        size -= 4;
      }
      const end = first + size;
      if (end > r.end) throw new DecodeError(`compound at offset ${r.off} runs past the end (${end} > ${r.end})`);
      if (isMap && count % 2 !== 0) throw new DecodeError(`map at offset ${r.off} has an odd element count ${count}`);
      const entries = isMap ? count / 2 : count;
      if (entries > MAX_CONTROL_ENTRIES) {
        throw limit(`${isMap ? 'map' : 'list'} with ${entries} entries is over the limit of ${MAX_CONTROL_ENTRIES}`);
      }
      if (depth >= MAX_CONTROL_DEPTH) throw new DecodeError(`values nested deeper than ${MAX_CONTROL_DEPTH}`);
      const savedEnd = r.end;
      r.off = first;
      r.end = end;
      const out: Node[] = [];
      try {
        for (let i = 0; i < count; i++) out.push(readNode(r, depth + 1));
        if (r.off !== end) throw new DecodeError(`compound size does not match its ${count} elements`);
      } finally {
        r.end = savedEnd;
      }
      return isMap ? { t: 'map', v: out } : { t: 'list', v: out };
    }
    case 0xe0: case 0xf0:
      r.off = skipValue(buf, r.off, r.end);
      return { t: 'array' };
    default:
      r.off = skipValue(buf, r.off, r.end);
      return { t: 'other', code };
  }
}

function typeName(n: Node): string {
  switch (n.t) {
    case 'str': return 'str';
    case 'sym': return 'sym';
    case 'bin': return 'binary';
    case 'int': return 'integer';
    case 'other': return n.code === 0x00 ? 'described value' : `type 0x${n.code.toString(16)}`;
    default: return n.t;
  }
}

/** A string-typed node's text: str, sym and binary all count (as in qdrouterd's Python). */
function nodeText(n: Node): string | null {
  if (n.t === 'str' || n.t === 'sym') return n.v;
  if (n.t === 'bin') {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(n.v);
    } catch {
      return null;
    }
  }
  return null;
}

/** Value for `key` (str or sym key) in a map node; the first match wins. */
function lookup(map: Node & { t: 'map' }, key: string): Node | undefined {
  const v = map.v;
  for (let i = 0; i < v.length; i += 2) {
    const k = v[i];
    if ((k.t === 'str' || k.t === 'sym') && k.v === key) return v[i + 1];
  }
  return undefined;
}

/** Field accessors with error messages naming the opcode and field. */
class Fields {
  constructor(readonly what: string, readonly body: Node & { t: 'map' }) {}

  private fail(field: string, expected: string, n: Node): never {
    throw malformed(`${this.what}: field '${field}' must be ${expected}, got ${typeName(n)}`);
  }

  get(field: string): Node | undefined {
    return lookup(this.body, field);
  }

  need(field: string): Node {
    const n = lookup(this.body, field);
    if (n === undefined) throw malformed(`${this.what}: mandatory field '${field}' is missing`);
    return n;
  }

  text(field: string, n: Node): string {
    const s = nodeText(n);
    if (s === null) this.fail(field, 'a string', n);
    return s;
  }

  routerId(field: string, n: Node): string {
    const s = this.text(field, n);
    if (s.length === 0) throw malformed(`${this.what}: field '${field}' is an empty router id`);
    if (s.length > MAX_ROUTER_ID_LENGTH) {
      throw limit(`${this.what}: field '${field}' is a router id of ${s.length} characters, over the limit of ${MAX_ROUTER_ID_LENGTH}`);
    }
    return s;
  }

  integer(field: string, n: Node): number {
    if (n.t !== 'int') this.fail(field, 'an integer', n);
    const v = n.v;
    if (typeof v === 'bigint') throw malformed(`${this.what}: field '${field}' value ${v} is out of range`);
    return v;
  }

  optInteger(field: string, dflt: number): number {
    const n = this.get(field);
    return n === undefined ? dflt : this.integer(field, n);
  }

  list(field: string, n: Node): Node[] {
    if (n.t !== 'list') this.fail(field, 'a list', n);
    return n.v;
  }

  map(field: string, n: Node): Node & { t: 'map' } {
    if (n.t !== 'map') this.fail(field, 'a map', n);
    return n;
  }

  textList(field: string, n: Node, ids: boolean): string[] {
    return this.list(field, n).map((e, i) => (ids ? this.routerId(`${field}[${i}]`, e) : this.text(`${field}[${i}]`, e)));
  }

  /** `area` is ignored by qdrouterd (forced to "0"); keep a string one, else "0". */
  area(): string {
    const n = this.get('area');
    const s = n === undefined ? null : nodeText(n);
    return s ?? AREA;
  }
}

/** Locates a section descriptor at `p`: returns [code, offset of the section value]. */
function sectionAt(buf: Buffer, p: number, end: number): [number, number] {
  if (buf[p] !== 0x00 || p + 2 > end) throw new DecodeError(`message section expected at offset ${p}`);
  if (buf[p + 1] === 0x53) {
    if (p + 3 > end) throw new DecodeError(`truncated section descriptor at offset ${p}`);
    return [buf[p + 2], p + 3];
  }
  const after = skipValue(buf, p + 1, end);
  return [descriptorCode(new Reader(buf, p + 1, after).read()), after];
}

/**
 * Decodes a control message payload (all its sections). Finds application-properties `opcode`
 * (str or sym key, str or sym value) and the amqp-value body map (str or sym keys), accepts any
 * integer width and list0/list8/list32, and validates the fields of that opcode as qdrouterd
 * does (id a string; ls_seq, mobile_seq, have_seq integers; seen a list; ls and peers maps; a
 * MAU has either `exist` or both `add` and `del`, all lists). Absent optional fields default as
 * in qdrouterd: pv 0, instance 0, area "0". A MAU's hints are kept only when they are a list
 * with one entry per `add`/`exist` entry (qdrouterd ignores them otherwise); a hint that is not
 * an integer becomes -1.
 *
 * Throws {@link ControlMessageError}: ERR_CONTROL_MALFORMED, ERR_CONTROL_VERSION (pv > 1),
 * ERR_CONTROL_OPCODE or ERR_CONTROL_LIMIT.
 */
export function decodeControlMessage(payload: Buffer): ControlMessage {
  if (payload.length > MAX_CONTROL_PAYLOAD) {
    throw limit(`control message of ${payload.length} bytes is over the limit of ${MAX_CONTROL_PAYLOAD}`);
  }
  let appProps: Node | null = null;
  let body: Node | null = null;
  try {
    const end = payload.length;
    let p = 0;
    while (p < end) {
      const [code, valueAt] = sectionAt(payload, p, end);
      const next = skipValue(payload, valueAt, end);
      if (code === D.ApplicationProperties && appProps === null) appProps = readNode(new Reader(payload, valueAt, next), 0);
      else if (code === D.AmqpValue && body === null) body = readNode(new Reader(payload, valueAt, next), 0);
      else if (code === D.Data || code === D.AmqpSequence) throw malformed('control message body is not an amqp-value');
      p = next;
    }
  } catch (e) {
    if (e instanceof ControlMessageError) throw e;
    throw malformed(`control message is not a valid AMQP message: ${(e as Error).message}`, e);
  }
  if (appProps === null) throw malformed('control message has no application-properties');
  if (appProps.t !== 'map') throw malformed(`control message application-properties is a ${typeName(appProps)}, not a map`);
  const opNode = lookup(appProps, 'opcode');
  if (opNode === undefined) throw malformed("control message has no 'opcode' application property");
  const opcode = opNode.t === 'str' || opNode.t === 'sym' ? opNode.v : null;
  if (opcode === null) throw malformed(`control message 'opcode' is a ${typeName(opNode)}, not a string`);
  if (!(CONTROL_OPCODES as readonly string[]).includes(opcode)) {
    throw new ControlMessageError('ERR_CONTROL_OPCODE', `unknown control message opcode ${JSON.stringify(opcode.slice(0, 64))}`);
  }
  if (body === null) throw malformed(`${opcode}: message has no amqp-value body`);
  if (body.t !== 'map') throw malformed(`${opcode}: body is a ${typeName(body)}, not a map`);

  const f = new Fields(opcode, body);
  // Version first, as qdrouterd does: a newer message is ignored whatever its fields.
  const pvNode = f.get('pv');
  if (pvNode !== undefined && pvNode.t === 'int' && pvNode.v > PROTOCOL_VERSION) {
    throw new ControlMessageError('ERR_CONTROL_VERSION', `${opcode}: protocol version ${pvNode.v} is not supported (highest is ${PROTOCOL_VERSION})`);
  }
  const pv = f.optInteger('pv', 0);
  const id = f.routerId('id', f.need('id'));
  const area = f.area();

  switch (opcode as ControlOpcode) {
    case 'HELLO':
      return { opcode: 'HELLO', id, pv, area, instance: f.optInteger('instance', 0), seen: f.textList('seen', f.need('seen'), true) };
    case 'RA': {
      const ls_seq = f.integer('ls_seq', f.need('ls_seq'));
      const mobile_seq = f.integer('mobile_seq', f.need('mobile_seq'));
      return { opcode: 'RA', id, pv, area, instance: f.optInteger('instance', 0), ls_seq, mobile_seq };
    }
    case 'LSR':
      return { opcode: 'LSR', id, pv, area };
    case 'LSU': {
      const ls_seq = f.integer('ls_seq', f.need('ls_seq'));
      const instance = f.optInteger('instance', 0);
      const lf = new Fields(`${opcode}.ls`, f.map('ls', f.need('ls')));
      const lsId = lf.routerId('id', lf.need('id'));
      const lsSeq = lf.integer('ls_seq', lf.need('ls_seq'));
      const pm = lf.map('peers', lf.need('peers'));
      const peers: Record<string, number> = {};
      for (let i = 0; i < pm.v.length; i += 2) {
        const peer = lf.routerId('peers key', pm.v[i]);
        const cost = lf.integer(`peers[${peer}]`, pm.v[i + 1]);
        if (cost < 0 || cost > 0x7fffffff) throw malformed(`${opcode}.ls: cost ${cost} of peer '${peer}' is out of range`);
        // defineProperty: a "__proto__" router id stays an entry.
        Object.defineProperty(peers, peer, { value: cost, enumerable: true, writable: true, configurable: true });
      }
      return { opcode: 'LSU', id, pv, area, instance, ls_seq, ls: { id: lsId, area: lf.area(), ls_seq: lsSeq, peers } };
    }
    case 'MAU': {
      const mobile_seq = f.integer('mobile_seq', f.need('mobile_seq'));
      const existN = f.get('exist');
      const addN = f.get('add');
      const delN = f.get('del');
      if (existN !== undefined && (addN !== undefined || delN !== undefined)) {
        throw malformed(`${opcode}: has both 'exist' and '${addN !== undefined ? 'add' : 'del'}'`);
      }
      if (existN === undefined && (addN === undefined || delN === undefined)) {
        throw malformed(`${opcode}: needs either 'exist' or both 'add' and 'del' (missing '${addN === undefined ? 'add' : 'del'}')`);
      }
      const hintsN = f.get('hints');
      let hints = hintsN !== undefined && hintsN.t === 'list' ? hintsN.v.map((h) => (h.t === 'int' && typeof h.v === 'number' ? h.v : -1)) : [];
      if (existN !== undefined) {
        const exist = f.textList('exist', existN, false);
        if (hints.length !== exist.length) hints = [];
        return { opcode: 'MAU', id, pv, area, mobile_seq, exist, hints };
      }
      const add = f.textList('add', addN!, false);
      const del = f.textList('del', delN!, false);
      if (hints.length !== add.length) hints = [];
      return { opcode: 'MAU', id, pv, area, mobile_seq, hints, add, del };
    }
    case 'MAR':
      return { opcode: 'MAR', id, pv, area, have_seq: f.integer('have_seq', f.need('have_seq')) };
  }
}

// ---------------------------------------------------------------------------------------------
// Router annotations on any message

/** What {@link readRouterAnnotations} found. Absent annotations are null (stream: false). */
export interface RouterAnnotations {
  /** x-opt-qd.to: the to-override. */
  to: string | null;
  /** x-opt-qd.ingress: "<area>/<id>" of the first interior router. */
  ingress: string | null;
  /** x-opt-qd.trace: "<area>/<id>" of every router the message left. */
  trace: string[] | null;
  /** x-opt-qd.phase: the address phase (qdrouterd sends it only when not 0). */
  phase: number | null;
  /** x-opt-qd.stream is present (a streaming message; qdrouterd sends int 1). */
  stream: boolean;
  /** properties.to (str or sym), the fallback destination when there is no x-opt-qd.to. */
  propertiesTo: string | null;
}

const ROUTER_KEYS = {
  to: Buffer.from('x-opt-qd.to', 'latin1'),
  ingress: Buffer.from('x-opt-qd.ingress', 'latin1'),
  trace: Buffer.from('x-opt-qd.trace', 'latin1'),
  phase: Buffer.from('x-opt-qd.phase', 'latin1'),
  stream: Buffer.from('x-opt-qd.stream', 'latin1'),
};

function bytesEqual(buf: Buffer, start: number, len: number, key: Buffer): boolean {
  return len === key.length && buf.compare(key, 0, key.length, start, start + len) === 0;
}

/** The str8/str32 at `off` (exactly that type), or null. */
function strAt(buf: Buffer, off: number, end: number): string | null {
  const c = buf[off];
  if (c !== 0xa1 && c !== 0xb1) return null;
  return new Reader(buf, off, end).read() as string;
}

function annotationType(message: string): ControlMessageError {
  return new ControlMessageError('ERR_ANNOTATION_TYPE', message);
}

/** Decodes the message-annotations map value at `off`, filling `out`. */
function readAnnotationMap(buf: Buffer, off: number, end: number, out: RouterAnnotations): void {
  const c = buf[off];
  let first: number, count: number, mapEnd: number;
  if (c === 0xc1) {
    if (off + 3 > end) throw new DecodeError('truncated map header');
    first = off + 3;
    count = buf[off + 2];
    mapEnd = off + 2 + buf[off + 1];
  } else if (c === 0xd1) {
    if (off + 9 > end) throw new DecodeError('truncated map header');
    first = off + 9;
    count = buf.readUInt32BE(off + 5);
    mapEnd = off + 5 + buf.readUInt32BE(off + 1);
  } else {
    throw new ControlMessageError('ERR_ANNOTATION_MALFORMED', `message-annotations is not a map (type 0x${c.toString(16)})`);
  }
  if (mapEnd > end || mapEnd < first) throw new DecodeError('message-annotations map size is inconsistent');
  if (count % 2 !== 0) throw new DecodeError(`message-annotations map has an odd element count ${count}`);
  let q = first;
  for (let i = 0; i < count; i += 2) {
    const kEnd = skipValue(buf, q, mapEnd);
    const vEnd = skipValue(buf, kEnd, mapEnd);
    const kc = buf[q];
    // Only symbol keys can be router annotations; str keys are user annotations.
    if (kc === 0xa3 || kc === 0xb3) {
      const kStart = kc === 0xa3 ? q + 2 : q + 5;
      const kLen = kEnd - kStart;
      if (bytesEqual(buf, kStart, kLen, ROUTER_KEYS.to)) {
        const s = strAt(buf, kEnd, vEnd);
        if (s === null) throw annotationType(`x-opt-qd.to is not a string (type 0x${buf[kEnd].toString(16)})`);
        out.to = s;
      } else if (bytesEqual(buf, kStart, kLen, ROUTER_KEYS.ingress)) {
        const s = strAt(buf, kEnd, vEnd);
        if (s === null) throw annotationType(`x-opt-qd.ingress is not a string (type 0x${buf[kEnd].toString(16)})`);
        out.ingress = s;
      } else if (bytesEqual(buf, kStart, kLen, ROUTER_KEYS.trace)) {
        const lc = buf[kEnd];
        if (lc !== 0x45 && lc !== 0xc0 && lc !== 0xd0) throw annotationType(`x-opt-qd.trace is not a list (type 0x${lc.toString(16)})`);
        let e: number, n: number, lEnd: number;
        if (lc === 0x45) { e = kEnd + 1; n = 0; lEnd = e; }
        else if (lc === 0xc0) { e = kEnd + 3; n = buf[kEnd + 2]; lEnd = kEnd + 2 + buf[kEnd + 1]; }
        else { e = kEnd + 9; n = buf.readUInt32BE(kEnd + 5); lEnd = kEnd + 5 + buf.readUInt32BE(kEnd + 1); }
        if (lEnd !== vEnd) throw new DecodeError('x-opt-qd.trace list size is inconsistent');
        const trace: string[] = [];
        for (let j = 0; j < n; j++) {
          if (e >= lEnd) throw new DecodeError(`x-opt-qd.trace list holds fewer than its ${n} entries`);
          const eEnd = skipValue(buf, e, lEnd);
          const s = strAt(buf, e, eEnd);
          if (s === null) throw annotationType(`x-opt-qd.trace entry ${j} is not a string (type 0x${buf[e].toString(16)})`);
          trace.push(s);
          e = eEnd;
        }
        if (e !== lEnd) throw new DecodeError(`x-opt-qd.trace list size does not match its ${n} entries`);
        out.trace = trace;
      } else if (bytesEqual(buf, kStart, kLen, ROUTER_KEYS.phase)) {
        const v = new Reader(buf, kEnd, vEnd).read();
        const pc = buf[kEnd];
        if (!INTEGER_CODES.has(pc) || typeof v !== 'number' || v < -0x80000000 || v > 0x7fffffff) {
          throw annotationType(`x-opt-qd.phase is not an int32 (type 0x${pc.toString(16)})`);
        }
        out.phase = v;
      } else if (bytesEqual(buf, kStart, kLen, ROUTER_KEYS.stream)) {
        out.stream = true;
      }
    }
    q = vEnd;
  }
  if (q !== mapEnd) throw new DecodeError('message-annotations map size does not match its elements');
}

/**
 * Reads the router annotations (x-opt-qd.to/ingress/trace/phase/stream) from the
 * message-annotations section of the message at payload[start..end), and properties.to.
 * Follows qdrouterd's rules: only symbol keys count; to, ingress and every trace entry must be
 * str (a symbol or any other type throws ERR_ANNOTATION_TYPE, which qdrouterd answers with
 * amqp:invalid-field); trace must be a list (not an array); phase must be an integer. A
 * message-annotations section that is not a valid map throws ERR_ANNOTATION_MALFORMED; a broken
 * header or delivery-annotations section ERR_MESSAGE_MALFORMED. Scanning stops after properties.
 */
export function readRouterAnnotations(payload: Buffer, start = 0, end = payload.length): RouterAnnotations {
  const out: RouterAnnotations = { to: null, ingress: null, trace: null, phase: null, stream: false, propertiesTo: null };
  let p = start;
  while (p < end) {
    let code: number, valueAt: number, next: number;
    try {
      [code, valueAt] = sectionAt(payload, p, end);
      next = skipValue(payload, valueAt, end);
    } catch (e) {
      throw new ControlMessageError('ERR_MESSAGE_MALFORMED', `message section at offset ${p - start} is malformed: ${(e as Error).message}`, { cause: e });
    }
    if (code === D.Header || code === D.DeliveryAnnotations) {
      p = next;
      continue;
    }
    if (code === D.MessageAnnotations) {
      try {
        readAnnotationMap(payload, valueAt, next, out);
      } catch (e) {
        if (e instanceof ControlMessageError) throw e;
        throw new ControlMessageError('ERR_ANNOTATION_MALFORMED', `message-annotations is malformed: ${(e as Error).message}`, { cause: e });
      }
      p = next;
      continue;
    }
    if (code === D.Properties) {
      try {
        const props = new Reader(payload, valueAt, next).read();
        if (Array.isArray(props) && props.length > 2 && typeof props[2] === 'string') out.propertiesTo = props[2];
      } catch (e) {
        throw new ControlMessageError('ERR_MESSAGE_MALFORMED', `properties section is malformed: ${(e as Error).message}`, { cause: e });
      }
    }
    break;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Mobile address hash keys and treatment hints

/** Hash-key classes that mobile-address sync carries (qdrouterd's qcm_mobile_sync_addr_is_mobile). */
export const MOBILE_KEY_CLASSES = 'MCDEFH';
export type MobileKeyClass = 'M' | 'C' | 'D' | 'E' | 'F' | 'H';

/** Phase of fallback destinations: its phase character is 'F' ('0' + 22). */
export const FALLBACK_PHASE = 22;

/**
 * The hash key of a mobile address, as carried in MAU lists: "M" + phase character + address,
 * after stripping `amqp:/` or `amqp://host/` (e.g. "amqp:/mesh/q1" → "M0mesh/q1"). Phase is
 * 0..9 (waypoints) or {@link FALLBACK_PHASE}.
 */
export function mobileKey(address: string, phase = 0): string {
  if (!Number.isInteger(phase) || phase < 0 || (phase > 9 && phase !== FALLBACK_PHASE)) {
    throw new RangeError(`mobile address phase must be 0..9 or ${FALLBACK_PHASE}, got ${phase}`);
  }
  return `M${String.fromCharCode(0x30 + phase)}${normalizeAddress(address)}`;
}

export interface ParsedMobileKey {
  cls: MobileKeyClass;
  /** For class M the phase (character minus '0': '0' → 0, 'F' → 22); null for other classes. */
  phase: number | null;
  address: string;
}

/**
 * Splits a hash key from a MAU. Class M keys carry a phase character after the class; the
 * link-route (C, D, E, F) and edge-summary (H) classes do not. Returns null for any other class
 * (qdrouterd does not sync them) and for an M key too short to hold a phase.
 */
export function parseMobileKey(key: string): ParsedMobileKey | null {
  if (key.length === 0) return null;
  const cls = key[0];
  if (!MOBILE_KEY_CLASSES.includes(cls)) return null;
  if (cls === 'M') {
    if (key.length < 2) return null;
    return { cls, phase: key.charCodeAt(1) - 0x30, address: key.slice(2) };
  }
  return { cls: cls as MobileKeyClass, phase: null, address: key.slice(1) };
}

/** Treatment hints in MAUs (qdrouterd's qd_address_treatment_t). */
export const TREATMENT = {
  MULTICAST_FLOOD: 0,
  MULTICAST_ONCE: 1,
  ANYCAST_CLOSEST: 2,
  ANYCAST_BALANCED: 3,
  LINK_BALANCED: 4,
  UNAVAILABLE: 5,
} as const;

/**
 * The hint qdrouterd sends for an address of this distribution. Configured `multicast` is
 * multicast-once in qdrouterd (captured: "mc/x" was advertised with hint 1); balanced is 3
 * (captured for "mesh/q1" and "bal/y"); closest is 2.
 */
export function hintForDistribution(d: Distribution): number {
  switch (d) {
    case 'multicast': return TREATMENT.MULTICAST_ONCE;
    case 'closest': return TREATMENT.ANYCAST_CLOSEST;
    case 'balanced': return TREATMENT.ANYCAST_BALANCED;
  }
}

/**
 * The distribution a received hint asks for, or null when the hint has no counterpart here
 * (link-balanced, unavailable, unknown, -1): the receiver then uses its own configuration
 * (qdrouterd falls back to its default treatment). Both multicast hints map to multicast.
 */
export function distributionForHint(hint: number): Distribution | null {
  switch (hint) {
    case TREATMENT.MULTICAST_FLOOD:
    case TREATMENT.MULTICAST_ONCE:
      return 'multicast';
    case TREATMENT.ANYCAST_CLOSEST: return 'closest';
    case TREATMENT.ANYCAST_BALANCED: return 'balanced';
    default: return null;
  }
}
