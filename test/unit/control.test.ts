/**
 * Inter-router control messages (router/protocol/control.ts): byte-exact encodings against
 * payloads captured between real qdrouterd 1.19 routers, round trips for every opcode, lenient
 * decoding (str/sym keys, any integer width, list0/list8/list32), every refusal, router
 * annotations, and mobile-address hash keys.
 *
 * The CAPTURED vectors are complete transfer payloads from a capture of routers QDR.A, QDR.B and
 * QDR.C (A listens, B connects to A with cost 5, C connects to B with cost 1).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Writer } from '../../amqp/codec';
import {
  ControlMessage,
  ControlMessageError,
  FALLBACK_PHASE,
  HELLO_ADDRESS,
  MAU_ADDRESS,
  MAX_CONTROL_ENTRIES,
  MAX_CONTROL_PAYLOAD,
  RA_ADDRESS,
  TREATMENT,
  decodeControlMessage,
  distributionForHint,
  encodeControlMessage,
  hintForDistribution,
  isAbsoluteMau,
  mobileKey,
  parseMobileKey,
  readRouterAnnotations,
  routerAddress,
  routerMaAddress,
} from '../../router/protocol/control';

const INSTANCE_A = 1795491296;
const INSTANCE_B = 1795491297;

/** Captured payloads (hex) and what they decode to, with the `to` and router id they were sent with. */
const CAPTURED: { name: string; to: string; router: string; msg: ControlMessage; hex: string }[] = [
  {
    name: 'HELLO A→B seen=[QDR.B] (NOTES section 4 and hexdumps.txt)',
    to: HELLO_ADDRESS,
    router: 'QDR.A',
    msg: { opcode: 'HELLO', id: 'QDR.A', pv: 1, area: '0', instance: INSTANCE_A, seen: ['QDR.B'] },
    hex:
      '005370d0000000050000000142005372c13804a310782d6f70742d71642e696e6772657373a107302f5144522e41' +
      'a30e782d6f70742d71642e7472616365c00a01a107302f5144522e41005373d00000001f000000064040a114616d' +
      '71703a2f5f6c6f63616c2f716468656c6c6f404040005374d10000001300000002a1066f70636f6465a10548454c' +
      '4c4f005377d1000000430000000aa1026964a1055144522e41a10270765401a10461726561a10130a108696e7374' +
      '616e6365716b0505e0a1047365656ed00000000b00000001a1055144522e42',
  },
  {
    name: 'HELLO A→B seen=[] (empty list is list0)',
    to: HELLO_ADDRESS,
    router: 'QDR.A',
    msg: { opcode: 'HELLO', id: 'QDR.A', pv: 1, area: '0', instance: INSTANCE_A, seen: [] },
    hex:
      '005370d0000000050000000142005372c13804a310782d6f70742d71642e696e6772657373a107302f5144522e41' +
      'a30e782d6f70742d71642e7472616365c00a01a107302f5144522e41005373d00000001f000000064040a114616d' +
      '71703a2f5f6c6f63616c2f716468656c6c6f404040005374d10000001300000002a1066f70636f6465a10548454c' +
      '4c4f005377d1000000340000000aa1026964a1055144522e41a10270765401a10461726561a10130a108696e7374' +
      '616e6365716b0505e0a1047365656e45',
  },
  {
    name: 'RA A→B ls_seq=1 mobile_seq=0',
    to: RA_ADDRESS,
    router: 'QDR.A',
    msg: { opcode: 'RA', id: 'QDR.A', pv: 1, area: '0', instance: INSTANCE_A, ls_seq: 1, mobile_seq: 0 },
    hex:
      '005370d0000000050000000142005372c13804a310782d6f70742d71642e696e6772657373a107302f5144522e41' +
      'a30e782d6f70742d71642e7472616365c00a01a107302f5144522e41005373d000000025000000064040a11a616d' +
      '71703a2f5f746f706f2f302f616c6c2f7164726f75746572404040005374d10000001000000002a1066f70636f64' +
      '65a1025241005377d1000000450000000ca1026964a1055144522e41a10270765401a10461726561a10130a10869' +
      '6e7374616e6365716b0505e0a1066c735f7365715401a10a6d6f62696c655f7365715400',
  },
  {
    name: 'RA A→B ls_seq=1 mobile_seq=3',
    to: RA_ADDRESS,
    router: 'QDR.A',
    msg: { opcode: 'RA', id: 'QDR.A', pv: 1, area: '0', instance: INSTANCE_A, ls_seq: 1, mobile_seq: 3 },
    hex:
      '005370d0000000050000000142005372c13804a310782d6f70742d71642e696e6772657373a107302f5144522e41' +
      'a30e782d6f70742d71642e7472616365c00a01a107302f5144522e41005373d000000025000000064040a11a616d' +
      '71703a2f5f746f706f2f302f616c6c2f7164726f75746572404040005374d10000001000000002a1066f70636f64' +
      '65a1025241005377d1000000450000000ca1026964a1055144522e41a10270765401a10461726561a10130a10869' +
      '6e7374616e6365716b0505e0a1066c735f7365715401a10a6d6f62696c655f7365715403',
  },
  {
    name: 'LSR A→B',
    to: routerAddress('QDR.B'),
    router: 'QDR.A',
    msg: { opcode: 'LSR', id: 'QDR.A', pv: 1, area: '0' },
    hex:
      '005370d0000000050000000142005372c13804a310782d6f70742d71642e696e6772657373a107302f5144522e41' +
      'a30e782d6f70742d71642e7472616365c00a01a107302f5144522e41005373d000000027000000064040a11c616d' +
      '71703a2f5f746f706f2f302f5144522e422f7164726f75746572404040005374d10000001100000002a1066f7063' +
      '6f6465a1034c5352005377d10000001e00000006a1026964a1055144522e41a10270765401a10461726561a10130',
  },
  {
    name: 'LSU B→A ls_seq=0 peers{QDR.A:5}',
    to: routerAddress('QDR.A'),
    router: 'QDR.B',
    msg: {
      opcode: 'LSU', id: 'QDR.B', pv: 1, area: '0', instance: INSTANCE_B, ls_seq: 0,
      ls: { id: 'QDR.B', area: '0', ls_seq: 0, peers: { 'QDR.A': 5 } },
    },
    hex:
      '005370d0000000050000000142005372c13804a310782d6f70742d71642e696e6772657373a107302f5144522e42' +
      'a30e782d6f70742d71642e7472616365c00a01a107302f5144522e42005373d000000027000000064040a11c616d' +
      '71703a2f5f746f706f2f302f5144522e412f7164726f75746572404040005374d10000001100000002a1066f7063' +
      '6f6465a1034c5355005377d10000007b0000000ca1026964a1055144522e42a10270765401a10461726561a10130' +
      'a108696e7374616e6365716b0505e1a1066c735f7365715400a1026c73d10000003b00000008a1026964a1055144' +
      '522e42a10461726561a10130a1066c735f7365715400a1057065657273d10000000d00000002a1055144522e415405',
  },
  {
    name: 'LSU B→A ls_seq=2 peers{QDR.A:5, QDR.C:1} (hexdumps.txt)',
    to: routerAddress('QDR.A'),
    router: 'QDR.B',
    msg: {
      opcode: 'LSU', id: 'QDR.B', pv: 1, area: '0', instance: INSTANCE_B, ls_seq: 2,
      ls: { id: 'QDR.B', area: '0', ls_seq: 2, peers: { 'QDR.A': 5, 'QDR.C': 1 } },
    },
    hex:
      '005370d0000000050000000142005372c13804a310782d6f70742d71642e696e6772657373a107302f5144522e42' +
      'a30e782d6f70742d71642e7472616365c00a01a107302f5144522e42005373d000000027000000064040a11c616d' +
      '71703a2f5f746f706f2f302f5144522e412f7164726f75746572404040005374d10000001100000002a1066f7063' +
      '6f6465a1034c5355005377d1000000840000000ca1026964a1055144522e42a10270765401a10461726561a10130' +
      'a108696e7374616e6365716b0505e1a1066c735f7365715402a1026c73d10000004400000008a1026964a1055144' +
      '522e42a10461726561a10130a1066c735f7365715402a1057065657273d10000001600000004a1055144522e4154' +
      '05a1055144522e435401',
  },
  {
    name: 'MAU differential A→all, add M0mesh/q1 (balanced, hint 3) (hexdumps.txt)',
    to: MAU_ADDRESS,
    router: 'QDR.A',
    msg: { opcode: 'MAU', id: 'QDR.A', pv: 1, area: '0', mobile_seq: 1, hints: [3], add: ['M0mesh/q1'], del: [] },
    hex:
      '005370d0000000050000000142005372c13804a310782d6f70742d71642e696e6772657373a107302f5144522e41' +
      'a30e782d6f70742d71642e7472616365c00a01a107302f5144522e41005373d00000001f000000034040a1175f74' +
      '6f706f2f302f616c6c2f7164726f757465722e6d61005374d10000001100000002a3066f70636f6465a1034d4155' +
      '005377d1000000650000000ea3026964a1055144522e41a30270765501a30461726561a10130a30a6d6f62696c65' +
      '5f7365715501a30568696e7473d000000006000000015403a303616464d00000000f00000001a1094d306d657368' +
      '2f7131a30364656cd00000000400000000',
  },
  {
    name: 'MAU differential A→all, del M0mesh/q1 (empty lists are list32)',
    to: MAU_ADDRESS,
    router: 'QDR.A',
    msg: { opcode: 'MAU', id: 'QDR.A', pv: 1, area: '0', mobile_seq: 2, hints: [], add: [], del: ['M0mesh/q1'] },
    hex:
      '005370d0000000050000000142005372c13804a310782d6f70742d71642e696e6772657373a107302f5144522e41' +
      'a30e782d6f70742d71642e7472616365c00a01a107302f5144522e41005373d00000001f000000034040a1175f74' +
      '6f706f2f302f616c6c2f7164726f757465722e6d61005374d10000001100000002a3066f70636f6465a1034d4155' +
      '005377d1000000630000000ea3026964a1055144522e41a30270765501a30461726561a10130a30a6d6f62696c65' +
      '5f7365715502a30568696e7473d00000000400000000a303616464d00000000400000000a30364656cd00000000f' +
      '00000001a1094d306d6573682f7131',
  },
  {
    name: 'MAU differential C→all, add M0mc/x (multicast, hint 1)',
    to: MAU_ADDRESS,
    router: 'QDR.C',
    msg: { opcode: 'MAU', id: 'QDR.C', pv: 1, area: '0', mobile_seq: 1, hints: [1], add: ['M0mc/x'], del: [] },
    hex:
      '005370d0000000050000000142005372c13804a310782d6f70742d71642e696e6772657373a107302f5144522e43' +
      'a30e782d6f70742d71642e7472616365c00a01a107302f5144522e43005373d00000001f000000034040a1175f74' +
      '6f706f2f302f616c6c2f7164726f757465722e6d61005374d10000001100000002a3066f70636f6465a1034d4155' +
      '005377d1000000620000000ea3026964a1055144522e43a30270765501a30461726561a10130a30a6d6f62696c65' +
      '5f7365715501a30568696e7473d000000006000000015401a303616464d00000000c00000001a1064d306d632f78' +
      'a30364656cd00000000400000000',
  },
  {
    name: 'MAR C→A have_seq=0',
    to: routerMaAddress('QDR.A'),
    router: 'QDR.C',
    msg: { opcode: 'MAR', id: 'QDR.C', pv: 1, area: '0', have_seq: 0 },
    hex:
      '005370d0000000050000000142005372c13804a310782d6f70742d71642e696e6772657373a107302f5144522e43' +
      'a30e782d6f70742d71642e7472616365c00a01a107302f5144522e43005373d000000027000000034040a11f616d' +
      '71703a2f5f746f706f2f302f5144522e412f7164726f757465722e6d61005374d10000001100000002a3066f7063' +
      '6f6465a1034d4152005377d10000002a00000008a3026964a1055144522e43a30270765501a30461726561a10130' +
      'a308686176655f7365715500',
  },
  {
    name: 'MAU absolute A→C (answer to the MAR) mobile_seq=6 exist=[]',
    to: routerMaAddress('QDR.C'),
    router: 'QDR.A',
    msg: { opcode: 'MAU', id: 'QDR.A', pv: 1, area: '0', mobile_seq: 6, exist: [], hints: [] },
    hex:
      '005370d0000000050000000142005372c13804a310782d6f70742d71642e696e6772657373a107302f5144522e41' +
      'a30e782d6f70742d71642e7472616365c00a01a107302f5144522e41005373d000000027000000034040a11f616d' +
      '71703a2f5f746f706f2f302f5144522e432f7164726f757465722e6d61005374d10000001100000002a3066f7063' +
      '6f6465a1034d4155005377d10000004c0000000ca3026964a1055144522e41a30270765501a30461726561a10130' +
      'a30a6d6f62696c655f7365715506a3056578697374d00000000400000000a30568696e7473d00000000400000000',
  },
];

/** A data message on its second hop C→B→A (hexdumps.txt "DATA mesh/q1"). */
const CAPTURED_DATA =
  '00537045005372c15706a30b782d6f70742d71642e746fa1076d6573682f7131a310782d6f70742d71642e696e67' +
  '72657373a107302f5144522e43a30e782d6f70742d71642e7472616365c01302a107302f5144522e43a107302f51' +
  '44522e4200537345005374d10000000a00000002a1016ba10176005377a1096d6573736167652d30';

function encode(msg: ControlMessage, to: string, router: string): Buffer {
  const w = new Writer(16);
  w.byte(0xee); // the payload may follow other bytes in the writer
  encodeControlMessage(msg, to, router, w);
  const out = w.take();
  assert.is(out[0], 0xee);
  return out.subarray(1);
}

function throwsControl(fn: () => unknown, code: string, match?: RegExp): ControlMessageError {
  try {
    fn();
  } catch (e) {
    assert.instance(e, ControlMessageError, `expected ControlMessageError, got ${String(e)}`);
    const ce = e as ControlMessageError;
    assert.is(ce.code, code, `code of "${ce.message}"`);
    assert.instance(ce, Error);
    assert.is(ce.name, 'ControlMessageError');
    if (match) assert.match(ce.message, match);
    return ce;
  }
  assert.unreachable(`expected ${code}`);
  throw new Error('unreachable');
}

// ---------------------------------------------------------------------------------------------
// Hand-built payloads for lenient decoding and refusals

type Enc = (w: Writer) => void;
const S = (s: string): Enc => (w) => w.string(s);
const Y = (s: string): Enc => (w) => w.symbol(s);
const B = (s: string | Buffer): Enc => (w) => w.binary(Buffer.isBuffer(s) ? s : Buffer.from(s));
const I = (n: number): Enc => (w) => w.int(n); // smallint or int
const INT32 = (n: number): Enc => (w) => { w.byte(0x71); w.ensure(4); w.buf.writeInt32BE(n, w.off); w.off += 4; };
const L = (n: number | bigint): Enc => (w) => { w.byte(0x81); w.ensure(8); w.buf.writeBigInt64BE(BigInt(n), w.off); w.off += 8; };
const SL = (n: number): Enc => (w) => { w.byte(0x55); w.byte(n & 0xff); };
const UL = (n: number | bigint): Enc => (w) => { w.byte(0x80); w.ensure(8); w.buf.writeBigUInt64BE(BigInt(n), w.off); w.off += 8; };
const UB = (n: number): Enc => (w) => w.ubyte(n);
const UI = (n: number): Enc => (w) => w.uint(n);
const US = (n: number): Enc => (w) => w.ushort(n);
const NUL: Enc = (w) => w.null();
const BOOL = (v: boolean): Enc => (w) => w.boolean(v);
const DBL = (n: number): Enc => (w) => w.double(n);
const LIST0: Enc = (w) => w.byte(0x45);
function list8(...items: Enc[]): Enc {
  return (w) => {
    const inner = new Writer(16);
    for (const i of items) i(inner);
    const body = inner.take();
    w.byte(0xc0); w.byte(body.length + 1); w.byte(items.length); w.bytes(body);
  };
}
function list32(...items: Enc[]): Enc {
  return (w) => {
    const inner = new Writer(16);
    for (const i of items) i(inner);
    const body = inner.take();
    w.byte(0xd0); w.u32(body.length + 4); w.u32(items.length); w.bytes(body);
  };
}
function map8(...pairs: [Enc, Enc][]): Enc {
  return (w) => {
    const inner = new Writer(16);
    for (const [k, v] of pairs) { k(inner); v(inner); }
    const body = inner.take();
    w.byte(0xc1); w.byte(body.length + 1); w.byte(pairs.length * 2); w.bytes(body);
  };
}
function map32(...pairs: [Enc, Enc][]): Enc {
  return (w) => {
    const inner = new Writer(16);
    for (const [k, v] of pairs) { k(inner); v(inner); }
    const body = inner.take();
    w.byte(0xd1); w.u32(body.length + 4); w.u32(pairs.length * 2); w.bytes(body);
  };
}
/** array8 of symbols. */
function symArray(...names: string[]): Enc {
  return (w) => {
    const inner = new Writer(16);
    for (const n of names) { inner.byte(n.length); inner.bytes(Buffer.from(n, 'latin1')); }
    const body = inner.take();
    w.byte(0xe0); w.byte(body.length + 2); w.byte(names.length); w.byte(0xa3); w.bytes(body);
  };
}
const section = (code: number, v: Enc): Enc => (w) => { w.descriptor(code); v(w); };

/** Body entries with str keys (as Python builds them). */
const strKeys = (o: Record<string, Enc>): Enc => map32(...Object.entries(o).map(([k, v]): [Enc, Enc] => [S(k), v]));
/** Body entries with sym keys (as C builds them). */
const symKeys = (o: Record<string, Enc>): Enc => map32(...Object.entries(o).map(([k, v]): [Enc, Enc] => [Y(k), v]));

/** A control message payload: header, application-properties {opcode}, amqp-value body. */
function payload(opcode: Enc | null, body: Enc | null, opts: { opcodeKey?: Enc; extra?: Enc[] } = {}): Buffer {
  const w = new Writer(64);
  section(0x70, list32(BOOL(false)))(w);
  for (const e of opts.extra ?? []) e(w);
  if (opcode) section(0x74, map32([opts.opcodeKey ?? S('opcode'), opcode]))(w);
  if (body) section(0x77, body)(w);
  return w.take();
}

// ---------------------------------------------------------------------------------------------
// Addresses

test('addresses are the ones qdrouterd uses', () => {
  assert.is(HELLO_ADDRESS, 'amqp:/_local/qdhello');
  assert.is(RA_ADDRESS, 'amqp:/_topo/0/all/qdrouter');
  assert.is(MAU_ADDRESS, '_topo/0/all/qdrouter.ma');
  assert.is(routerAddress('QDR.B'), 'amqp:/_topo/0/QDR.B/qdrouter');
  assert.is(routerMaAddress('QDR.C'), 'amqp:/_topo/0/QDR.C/qdrouter.ma');
});

// ---------------------------------------------------------------------------------------------
// Byte-exact encodings and decodings of captured payloads

for (const c of CAPTURED) {
  test(`captured ${c.name}: encoded byte for byte`, () => {
    assert.is(encode(c.msg, c.to, c.router).toString('hex'), c.hex);
  });
  test(`captured ${c.name}: decoded`, () => {
    const d = decodeControlMessage(Buffer.from(c.hex, 'hex'));
    assert.equal(d, c.msg);
  });
}

test('HELLO encoding is the NOTES section 4 layout, section by section', () => {
  const out = encode(CAPTURED[0].msg, HELLO_ADDRESS, 'QDR.A');
  // header list32 [false]
  assert.is(out.subarray(0, 0x0d).toString('hex'), '005370d0000000050000000142');
  // message-annotations map8(4)
  assert.is(out.subarray(0x0d, 0x13).toString('hex'), '005372c13804');
  // properties list32 of 6 at 0x4a, application-properties map32 at 0x71, body map32 at 0x8c
  assert.is(out.subarray(0x4a, 0x53).toString('hex'), '005373d00000001f00');
  assert.is(out.subarray(0x71, 0x76).toString('hex'), '005374d100');
  assert.is(out.subarray(0x8c, 0x91).toString('hex'), '005377d100');
  assert.is(out.length, 0xd7);
});

// ---------------------------------------------------------------------------------------------
// Round trips

const ROUND_TRIPS: [ControlMessage, string][] = [
  [{ opcode: 'HELLO', id: 'R1', pv: 1, area: '0', instance: 0, seen: [] }, HELLO_ADDRESS],
  [{ opcode: 'HELLO', id: 'R1', pv: 1, area: '0', instance: 2 ** 31 + 5, seen: ['a', 'b', 'c'] }, HELLO_ADDRESS],
  [{ opcode: 'HELLO', id: 'R1', pv: 1, area: '0', instance: -7, seen: Array.from({ length: 300 }, (_, i) => `router-${i}`) }, HELLO_ADDRESS],
  [{ opcode: 'RA', id: 'R1', pv: 1, area: '0', instance: 1795491296, ls_seq: 70000, mobile_seq: 2 ** 40 }, RA_ADDRESS],
  [{ opcode: 'LSR', id: 'x'.repeat(255), pv: 1, area: '0' }, routerAddress('R2')],
  [{ opcode: 'LSU', id: 'R1', pv: 1, area: '0', instance: 3, ls_seq: 0, ls: { id: 'R1', area: '0', ls_seq: 0, peers: {} } }, routerAddress('R2')],
  [{ opcode: 'LSU', id: 'R1', pv: 1, area: '0', instance: 3, ls_seq: 9, ls: { id: 'R1', area: '0', ls_seq: 9, peers: { R2: 1, R3: 300, __proto__x: 2 } } }, routerAddress('R2')],
  [{ opcode: 'MAU', id: 'R1', pv: 1, area: '0', mobile_seq: 0, hints: [], add: [], del: [] }, MAU_ADDRESS],
  [{ opcode: 'MAU', id: 'R1', pv: 1, area: '0', mobile_seq: 1000, hints: [2, 3, 1], add: ['M0a', 'M0b', 'M1c'], del: ['M0d', 'Cprefix'] }, MAU_ADDRESS],
  [{ opcode: 'MAU', id: 'R1', pv: 1, area: '0', mobile_seq: 2 ** 33, exist: ['M0a', 'M0bé'], hints: [3, 0] }, routerMaAddress('R2')],
  [{ opcode: 'MAR', id: 'R1', pv: 1, area: '0', have_seq: 12345678 }, routerMaAddress('R2')],
];

for (const [msg, to] of ROUND_TRIPS) {
  test(`round trip ${msg.opcode} ${JSON.stringify(msg).slice(0, 80)}`, () => {
    const out = encode(msg, to, 'R1');
    assert.equal(decodeControlMessage(out), msg);
    const ann = readRouterAnnotations(out);
    assert.equal(ann, { to: null, ingress: '0/R1', trace: ['0/R1'], phase: null, stream: false, propertiesTo: to });
    // Encoding is deterministic.
    assert.is(encode(msg, to, 'R1').toString('hex'), out.toString('hex'));
  });
}

test('a "__proto__" peer id stays a peer', () => {
  const body = strKeys({
    id: S('R1'), ls_seq: I(1),
    ls: strKeys({ id: S('R1'), ls_seq: I(1), peers: strKeys({ ['__proto__']: I(4) }) }),
  });
  const d = decodeControlMessage(payload(S('LSU'), body));
  assert.ok(d.opcode === 'LSU');
  if (d.opcode !== 'LSU') return;
  assert.equal(Object.keys(d.ls.peers), ['__proto__']);
  assert.is(Object.getPrototypeOf(d.ls.peers), Object.prototype);
});

test('encoding: Python ints become long only past int32; C longs are smalllong when small', () => {
  const big = encode({ opcode: 'RA', id: 'R', pv: 1, area: '0', instance: 2 ** 31, ls_seq: 127, mobile_seq: 128 }, RA_ADDRESS, 'R');
  const hex = big.toString('hex');
  assert.ok(hex.includes(Buffer.from('instance').toString('hex') + '810000000080000000'), 'instance 2^31 as long');
  assert.ok(hex.includes(Buffer.from('ls_seq').toString('hex') + '547f'), 'ls_seq 127 as smallint');
  assert.ok(hex.includes(Buffer.from('mobile_seq').toString('hex') + '7100000080'), 'mobile_seq 128 as int');
  const mar = encode({ opcode: 'MAR', id: 'R', pv: 1, area: '0', have_seq: 300 }, routerMaAddress('X'), 'R').toString('hex');
  assert.ok(mar.endsWith(Buffer.from('have_seq').toString('hex') + '81000000000000012c'), 'have_seq 300 as long');
});

test('encoding: long router ids switch annotations to map32 and strings to str32', () => {
  const id = 'r'.repeat(300);
  const out = encode({ opcode: 'LSR', id, pv: 1, area: '0' }, routerAddress('X'), id);
  const ma = out.subarray(0x0d);
  assert.is(ma.subarray(0, 4).toString('hex'), '005372d1');
  const ann = readRouterAnnotations(out);
  assert.equal(ann.trace, [`0/${id}`]);
  // The decoder refuses ids over 255 characters, even though the encoder writes them.
  throwsControl(() => decodeControlMessage(out), 'ERR_CONTROL_LIMIT', /id/);
});

test('encoding refuses non-integer numbers', () => {
  assert.throws(() => encode({ opcode: 'RA', id: 'R', pv: 1, area: '0', instance: 0, ls_seq: 1.5, mobile_seq: 0 }, RA_ADDRESS, 'R'), /ls_seq/);
  assert.throws(() => encode({ opcode: 'MAU', id: 'R', pv: 1, area: '0', mobile_seq: 1, hints: [2 ** 32], add: ['M0a'], del: [] }, MAU_ADDRESS, 'R'), /hints/);
});

// ---------------------------------------------------------------------------------------------
// Lenient decoding

test('lenient: sym keys in a Python-style body, str keys in a C-style body, sym opcode values', () => {
  const hello = decodeControlMessage(payload(Y('HELLO'), symKeys({ id: S('R1'), pv: I(1), area: S('0'), instance: I(5), seen: list32(S('R2')) })));
  assert.equal(hello, { opcode: 'HELLO', id: 'R1', pv: 1, area: '0', instance: 5, seen: ['R2'] });
  const mar = decodeControlMessage(payload(S('MAR'), strKeys({ id: S('R1'), pv: SL(1), have_seq: SL(4) }), { opcodeKey: Y('opcode') }));
  assert.equal(mar, { opcode: 'MAR', id: 'R1', pv: 1, area: '0', have_seq: 4 });
  // Mixed key types in one map.
  const ra = decodeControlMessage(payload(S('RA'), map32([S('id'), S('R1')], [Y('ls_seq'), I(2)], [S('mobile_seq'), I(3)])));
  assert.equal(ra, { opcode: 'RA', id: 'R1', pv: 0, area: '0', instance: 0, ls_seq: 2, mobile_seq: 3 });
});

test('lenient: every integer width (smallint, int, long, smalllong, ulong, ubyte, uint, ushort)', () => {
  const cases: [Enc, number][] = [
    [I(7), 7], [INT32(7), 7], [L(7), 7], [SL(7), 7], [UL(7), 7], [UB(7), 7], [UI(7), 7], [US(7), 7],
    [UI(0), 0], [UL(0), 0], [L(2 ** 40), 2 ** 40], [UL(Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER], [L(-3), -3],
  ];
  for (const [enc, n] of cases) {
    const d = decodeControlMessage(payload(S('MAR'), symKeys({ id: S('R'), pv: n === 0 ? enc : SL(1), have_seq: enc })));
    assert.ok(d.opcode === 'MAR');
    if (d.opcode === 'MAR') assert.is(d.have_seq, n);
  }
  // long values within the safe range come back as numbers, not bigints
  const ra = decodeControlMessage(payload(S('RA'), strKeys({ id: S('R'), ls_seq: L(5), mobile_seq: UL(6), instance: L(2 ** 35) })));
  assert.equal(ra, { opcode: 'RA', id: 'R', pv: 0, area: '0', instance: 2 ** 35, ls_seq: 5, mobile_seq: 6 });
});

test('lenient: list0, list8 and list32 lists; map8 maps', () => {
  for (const seen of [LIST0, list8(), list32()]) {
    const d = decodeControlMessage(payload(S('HELLO'), strKeys({ id: S('R'), seen })));
    assert.equal(d, { opcode: 'HELLO', id: 'R', pv: 0, area: '0', instance: 0, seen: [] });
  }
  for (const seen of [list8(S('A'), Y('B')), list32(S('A'), Y('B'))]) {
    const d = decodeControlMessage(payload(S('HELLO'), strKeys({ id: S('R'), seen })));
    assert.ok(d.opcode === 'HELLO' && d.seen.join() === 'A,B');
  }
  const mau = decodeControlMessage(payload(S('MAU'), map8(
    [Y('id'), S('R')], [Y('mobile_seq'), SL(1)], [Y('hints'), list8(I(2))], [Y('add'), list8(S('M0x'))], [Y('del'), LIST0],
  ), { opcodeKey: Y('opcode') }));
  assert.equal(mau, { opcode: 'MAU', id: 'R', pv: 0, area: '0', mobile_seq: 1, hints: [2], add: ['M0x'], del: [] });
  const lsu = decodeControlMessage(payload(S('LSU'), map8(
    [S('id'), S('R')], [S('ls_seq'), I(1)], [S('ls'), map8([S('id'), S('R')], [S('ls_seq'), I(1)], [S('peers'), map8([Y('P'), UB(3)])])],
  )));
  assert.ok(lsu.opcode === 'LSU');
  if (lsu.opcode === 'LSU') assert.equal(lsu.ls, { id: 'R', area: '0', ls_seq: 1, peers: { P: 3 } });
});

test('lenient: binary ids (qdrouterd\'s Python turns binary into str), optional pv/instance/area absent', () => {
  const d = decodeControlMessage(payload(S('LSR'), strKeys({ id: B('R9') })));
  assert.equal(d, { opcode: 'LSR', id: 'R9', pv: 0, area: '0' });
  // a non-string area is ignored, as qdrouterd forces area "0"
  const e = decodeControlMessage(payload(S('LSR'), strKeys({ id: S('R9'), area: I(5) })));
  assert.is(e.area, '0');
});

test('lenient: extra sections (delivery/message annotations, properties, footer) and unknown fields are ignored', () => {
  const ma = section(0x72, map8([Y('x-opt-qd.ingress'), S('0/R')]));
  const props = section(0x73, list8(NUL, NUL, S('amqp:/_topo/0/all/qdrouter')));
  const body = strKeys({ id: S('R'), ls_seq: I(1), mobile_seq: I(2), future: map32([S('a'), list32(DBL(1.5))]) });
  const w = new Writer(64);
  w.bytes(payload(S('RA'), body, { extra: [section(0x71, map8()), ma, props] }));
  section(0x78, map8([Y('f'), S('v')]))(w);
  const d = decodeControlMessage(w.take());
  assert.equal(d, { opcode: 'RA', id: 'R', pv: 0, area: '0', instance: 0, ls_seq: 1, mobile_seq: 2 });
});

test('lenient MAU hints: kept only when one per entry; absent or not a list → []; a non-integer hint → -1', () => {
  const mau = (hints: Enc | null, add: Enc): ControlMessage =>
    decodeControlMessage(payload(Y('MAU'), symKeys({ id: S('R'), mobile_seq: SL(1), ...(hints ? { hints } : {}), add, del: LIST0 })));
  assert.equal((mau(list32(I(1), I(3)), list32(S('M0a'), S('M0b'))) as { hints: number[] }).hints, [1, 3]);
  assert.equal((mau(list32(I(1)), list32(S('M0a'), S('M0b'))) as { hints: number[] }).hints, []);
  assert.equal((mau(null, list32(S('M0a'))) as { hints: number[] }).hints, []);
  assert.equal((mau(S('3'), list32(S('M0a'))) as { hints: number[] }).hints, []);
  assert.equal((mau(list32(S('x'), L(3)), list32(S('M0a'), S('M0b'))) as { hints: number[] }).hints, [-1, 3]);
  const abs = decodeControlMessage(payload(Y('MAU'), symKeys({ id: S('R'), mobile_seq: SL(1), exist: list32(S('M0a')), hints: list32(I(2), I(3)) })));
  assert.ok(abs.opcode === 'MAU' && isAbsoluteMau(abs));
  if (abs.opcode === 'MAU') assert.equal(abs.hints, []);
});

test('pv 0 and pv 1 are accepted; pv 2 is ERR_CONTROL_VERSION, checked before any other field', () => {
  assert.is(decodeControlMessage(payload(S('LSR'), strKeys({ id: S('R'), pv: I(0) }))).pv, 0);
  assert.is(decodeControlMessage(payload(S('LSR'), strKeys({ id: S('R'), pv: I(1) }))).pv, 1);
  throwsControl(() => decodeControlMessage(payload(S('LSR'), strKeys({ id: S('R'), pv: I(2) }))), 'ERR_CONTROL_VERSION', /version 2/);
  throwsControl(() => decodeControlMessage(payload(S('RA'), strKeys({ pv: I(2) }))), 'ERR_CONTROL_VERSION');
  throwsControl(() => decodeControlMessage(payload(Y('MAU'), symKeys({ id: S('R'), pv: SL(2), mobile_seq: SL(1), exist: LIST0, add: LIST0 }))), 'ERR_CONTROL_VERSION');
  throwsControl(() => decodeControlMessage(payload(Y('MAR'), symKeys({ id: S('R'), pv: UL(2n ** 64n - 1n), have_seq: SL(0) }))), 'ERR_CONTROL_VERSION');
});

// ---------------------------------------------------------------------------------------------
// Refusals

test('refused: missing mandatory fields', () => {
  throwsControl(() => decodeControlMessage(payload(S('HELLO'), strKeys({ seen: LIST0 }))), 'ERR_CONTROL_MALFORMED', /HELLO: mandatory field 'id' is missing/);
  throwsControl(() => decodeControlMessage(payload(S('HELLO'), strKeys({ id: S('R') }))), 'ERR_CONTROL_MALFORMED', /'seen' is missing/);
  throwsControl(() => decodeControlMessage(payload(S('RA'), strKeys({ id: S('R'), ls_seq: I(1) }))), 'ERR_CONTROL_MALFORMED', /'mobile_seq' is missing/);
  throwsControl(() => decodeControlMessage(payload(S('RA'), strKeys({ id: S('R'), mobile_seq: I(1) }))), 'ERR_CONTROL_MALFORMED', /'ls_seq' is missing/);
  throwsControl(() => decodeControlMessage(payload(S('LSR'), strKeys({ pv: I(1) }))), 'ERR_CONTROL_MALFORMED', /'id' is missing/);
  throwsControl(() => decodeControlMessage(payload(S('LSU'), strKeys({ id: S('R'), ls_seq: I(1) }))), 'ERR_CONTROL_MALFORMED', /'ls' is missing/);
  throwsControl(() => decodeControlMessage(payload(S('LSU'), strKeys({ id: S('R'), ls_seq: I(1), ls: strKeys({ id: S('R'), ls_seq: I(1) }) }))), 'ERR_CONTROL_MALFORMED', /LSU\.ls: mandatory field 'peers'/);
  throwsControl(() => decodeControlMessage(payload(S('LSU'), strKeys({ id: S('R'), ls_seq: I(1), ls: strKeys({ ls_seq: I(1), peers: map32() }) }))), 'ERR_CONTROL_MALFORMED', /LSU\.ls: mandatory field 'id'/);
  throwsControl(() => decodeControlMessage(payload(Y('MAU'), symKeys({ id: S('R'), exist: LIST0 }))), 'ERR_CONTROL_MALFORMED', /'mobile_seq' is missing/);
  throwsControl(() => decodeControlMessage(payload(Y('MAR'), symKeys({ id: S('R') }))), 'ERR_CONTROL_MALFORMED', /'have_seq' is missing/);
});

test('refused: wrong field types', () => {
  const bad: [Buffer, RegExp][] = [
    [payload(S('LSR'), strKeys({ id: I(5) })), /LSR: field 'id' must be a string, got integer/],
    [payload(S('LSR'), strKeys({ id: NUL })), /'id' must be a string, got null/],
    [payload(S('LSR'), strKeys({ id: list32(S('R')) })), /'id' must be a string, got list/],
    [payload(S('LSR'), strKeys({ id: S('') })), /empty router id/],
    [payload(S('LSR'), strKeys({ id: B(Buffer.from([0xff, 0xfe])) })), /'id' must be a string, got binary/],
    [payload(S('LSR'), strKeys({ id: S('R'), pv: S('1') })), /'pv' must be an integer, got str/],
    [payload(S('HELLO'), strKeys({ id: S('R'), instance: DBL(1), seen: LIST0 })), /'instance' must be an integer, got type 0x82/],
    [payload(S('HELLO'), strKeys({ id: S('R'), seen: symArray('A', 'B') })), /'seen' must be a list, got array/],
    [payload(S('HELLO'), strKeys({ id: S('R'), seen: list32(S('A'), I(1)) })), /'seen\[1\]' must be a string, got integer/],
    [payload(S('HELLO'), strKeys({ id: S('R'), seen: map32() })), /'seen' must be a list, got map/],
    [payload(S('RA'), strKeys({ id: S('R'), ls_seq: S('1'), mobile_seq: I(0) })), /'ls_seq' must be an integer, got str/],
    [payload(S('RA'), strKeys({ id: S('R'), ls_seq: BOOL(true), mobile_seq: I(0) })), /'ls_seq' must be an integer, got bool/],
    [payload(S('RA'), strKeys({ id: S('R'), ls_seq: I(0), mobile_seq: UL(2n ** 63n) })), /'mobile_seq' value 9223372036854775808 is out of range/],
    [payload(S('LSU'), strKeys({ id: S('R'), ls_seq: I(1), ls: list32() })), /'ls' must be a map, got list/],
    [payload(S('LSU'), strKeys({ id: S('R'), ls_seq: I(1), ls: strKeys({ id: S('R'), ls_seq: I(1), peers: list32() }) })), /'peers' must be a map, got list/],
    [payload(S('LSU'), strKeys({ id: S('R'), ls_seq: I(1), ls: strKeys({ id: S('R'), ls_seq: I(1), peers: strKeys({ P: S('5') }) }) })), /'peers\[P\]' must be an integer, got str/],
    [payload(S('LSU'), strKeys({ id: S('R'), ls_seq: I(1), ls: strKeys({ id: S('R'), ls_seq: I(1), peers: map32([I(1), I(5)]) }) })), /'peers key' must be a string, got integer/],
    [payload(S('LSU'), strKeys({ id: S('R'), ls_seq: I(1), ls: strKeys({ id: S('R'), ls_seq: I(1), peers: strKeys({ P: I(-1) }) }) })), /cost -1 of peer 'P' is out of range/],
    [payload(S('LSU'), strKeys({ id: S('R'), ls_seq: I(1), ls: strKeys({ id: S('R'), ls_seq: S('x'), peers: map32() }) })), /LSU\.ls: field 'ls_seq' must be an integer/],
    [payload(Y('MAU'), symKeys({ id: S('R'), mobile_seq: SL(1), exist: list32(I(3)) })), /'exist\[0\]' must be a string, got integer/],
    [payload(Y('MAU'), symKeys({ id: S('R'), mobile_seq: SL(1), exist: symArray('M0a') })), /'exist' must be a list, got array/],
    [payload(Y('MAU'), symKeys({ id: S('R'), mobile_seq: SL(1), add: S('M0a'), del: LIST0 })), /'add' must be a list, got str/],
    [payload(Y('MAU'), symKeys({ id: S('R'), mobile_seq: SL(1), add: LIST0, del: map32() })), /'del' must be a list, got map/],
    [payload(Y('MAR'), symKeys({ id: S('R'), have_seq: S('0') })), /'have_seq' must be an integer, got str/],
  ];
  for (const [p, re] of bad) throwsControl(() => decodeControlMessage(p), 'ERR_CONTROL_MALFORMED', re);
});

test('refused: MAU with both exist and add/del, or with neither', () => {
  throwsControl(() => decodeControlMessage(payload(Y('MAU'), symKeys({ id: S('R'), mobile_seq: SL(1), exist: LIST0, add: LIST0 }))),
    'ERR_CONTROL_MALFORMED', /both 'exist' and 'add'/);
  throwsControl(() => decodeControlMessage(payload(Y('MAU'), symKeys({ id: S('R'), mobile_seq: SL(1), exist: LIST0, del: LIST0 }))),
    'ERR_CONTROL_MALFORMED', /both 'exist' and 'del'/);
  throwsControl(() => decodeControlMessage(payload(Y('MAU'), symKeys({ id: S('R'), mobile_seq: SL(1), add: LIST0 }))),
    'ERR_CONTROL_MALFORMED', /missing 'del'/);
  throwsControl(() => decodeControlMessage(payload(Y('MAU'), symKeys({ id: S('R'), mobile_seq: SL(1), del: LIST0 }))),
    'ERR_CONTROL_MALFORMED', /missing 'add'/);
  throwsControl(() => decodeControlMessage(payload(Y('MAU'), symKeys({ id: S('R'), mobile_seq: SL(1) }))),
    'ERR_CONTROL_MALFORMED', /either 'exist' or both/);
});

test('refused: message structure (no opcode, unknown opcode, body not a map, no body, not AMQP)', () => {
  throwsControl(() => decodeControlMessage(payload(null, strKeys({ id: S('R') }))), 'ERR_CONTROL_MALFORMED', /no application-properties/);
  throwsControl(() => decodeControlMessage(payload(S('LSR'), strKeys({ id: S('R') }), { opcodeKey: S('op') })), 'ERR_CONTROL_MALFORMED', /no 'opcode'/);
  throwsControl(() => decodeControlMessage(payload(I(3), strKeys({ id: S('R') }))), 'ERR_CONTROL_MALFORMED', /'opcode' is a integer/);
  throwsControl(() => decodeControlMessage(payload(S('XYZ'), strKeys({ id: S('R') }))), 'ERR_CONTROL_OPCODE', /"XYZ"/);
  throwsControl(() => decodeControlMessage(payload(S('hello'), strKeys({ id: S('R') }))), 'ERR_CONTROL_OPCODE');
  throwsControl(() => decodeControlMessage(payload(S('LSR'), null)), 'ERR_CONTROL_MALFORMED', /LSR: message has no amqp-value body/);
  throwsControl(() => decodeControlMessage(payload(S('LSR'), list32(S('R')))), 'ERR_CONTROL_MALFORMED', /body is a list, not a map/);
  throwsControl(() => decodeControlMessage(payload(S('LSR'), symArray('R'))), 'ERR_CONTROL_MALFORMED', /body is a array/);
  const w = new Writer(16);
  w.bytes(payload(S('LSR'), null));
  section(0x75, B('{}'))(w);
  throwsControl(() => decodeControlMessage(w.take()), 'ERR_CONTROL_MALFORMED', /not an amqp-value/);
  const w2 = new Writer(16);
  section(0x74, list32(S('opcode')))(w2);
  throwsControl(() => decodeControlMessage(w2.take()), 'ERR_CONTROL_MALFORMED', /application-properties is a list/);
});

test('refused: truncated or garbled bytes, with the decode error as cause', () => {
  const good = Buffer.from(CAPTURED[0].hex, 'hex');
  for (const cut of [1, 5, 20, 0x49, 0x90, good.length - 1]) {
    const e = throwsControl(() => decodeControlMessage(good.subarray(0, cut)), 'ERR_CONTROL_MALFORMED');
    assert.ok(e.cause instanceof Error, `cut ${cut}: cause`);
  }
  const garbled = Buffer.from(good);
  garbled[0x8c] = 0x01; // not a section descriptor
  throwsControl(() => decodeControlMessage(garbled), 'ERR_CONTROL_MALFORMED', /not a valid AMQP message/);
  // a list whose size disagrees with its elements
  const bad = Buffer.from(good);
  const seenAt = bad.indexOf(Buffer.from('d00000000b00000001', 'hex'));
  bad[seenAt + 8] = 2; // count 2, one element
  throwsControl(() => decodeControlMessage(bad), 'ERR_CONTROL_MALFORMED');
  throwsControl(() => decodeControlMessage(Buffer.alloc(0)), 'ERR_CONTROL_MALFORMED', /no application-properties/);
});

test('refused: payload over 1 MiB', () => {
  const big = Buffer.alloc(MAX_CONTROL_PAYLOAD + 1);
  throwsControl(() => decodeControlMessage(big), 'ERR_CONTROL_LIMIT', /1048577 bytes/);
  // exactly at the limit is decoded (and here found malformed, not over the limit)
  throwsControl(() => decodeControlMessage(Buffer.alloc(MAX_CONTROL_PAYLOAD)), 'ERR_CONTROL_MALFORMED');
});

test('refused: more than 10,000 list entries or peers; exactly 10,000 is fine', () => {
  const ids = (n: number): Enc[] => Array.from({ length: n }, (_, i) => S(`r${i}`));
  const ok = decodeControlMessage(payload(S('HELLO'), strKeys({ id: S('R'), seen: list32(...ids(MAX_CONTROL_ENTRIES)) })));
  assert.ok(ok.opcode === 'HELLO' && ok.seen.length === MAX_CONTROL_ENTRIES);
  throwsControl(() => decodeControlMessage(payload(S('HELLO'), strKeys({ id: S('R'), seen: list32(...ids(MAX_CONTROL_ENTRIES + 1)) }))),
    'ERR_CONTROL_LIMIT', /list with 10001 entries/);
  const peers = (n: number): Enc => map32(...Array.from({ length: n }, (_, i): [Enc, Enc] => [S(`p${i}`), I(1)]));
  const lsu = (n: number): Buffer => payload(S('LSU'), strKeys({ id: S('R'), ls_seq: I(1), ls: strKeys({ id: S('R'), ls_seq: I(1), peers: peers(n) }) }));
  const d = decodeControlMessage(lsu(MAX_CONTROL_ENTRIES));
  assert.ok(d.opcode === 'LSU' && Object.keys(d.ls.peers).length === MAX_CONTROL_ENTRIES);
  throwsControl(() => decodeControlMessage(lsu(MAX_CONTROL_ENTRIES + 1)), 'ERR_CONTROL_LIMIT', /map with 10001 entries/);
  const mau = payload(Y('MAU'), symKeys({ id: S('R'), mobile_seq: SL(1), exist: list32(...ids(MAX_CONTROL_ENTRIES + 1)) }));
  throwsControl(() => decodeControlMessage(mau), 'ERR_CONTROL_LIMIT');
  // a forged huge count is refused before anything is allocated
  const forged = Buffer.from(payload(S('HELLO'), strKeys({ id: S('R'), seen: list32(S('a')) })));
  const at = forged.indexOf(Buffer.from('d00000000700000001', 'hex'));
  forged.writeUInt32BE(0xffffffff, at + 5);
  throwsControl(() => decodeControlMessage(forged), 'ERR_CONTROL_LIMIT');
});

test('refused: router ids over 255 characters (id, ls.id, peers, seen); 255 is fine', () => {
  const long = 'x'.repeat(256);
  const ok = 'y'.repeat(255);
  assert.is(decodeControlMessage(payload(S('LSR'), strKeys({ id: S(ok) }))).id, ok);
  throwsControl(() => decodeControlMessage(payload(S('LSR'), strKeys({ id: S(long) }))), 'ERR_CONTROL_LIMIT', /'id' is a router id of 256 characters/);
  throwsControl(() => decodeControlMessage(payload(S('HELLO'), strKeys({ id: S('R'), seen: list32(S(long)) }))), 'ERR_CONTROL_LIMIT', /seen\[0\]/);
  throwsControl(() => decodeControlMessage(payload(S('LSU'), strKeys({ id: S('R'), ls_seq: I(1), ls: strKeys({ id: S(long), ls_seq: I(1), peers: map32() }) }))),
    'ERR_CONTROL_LIMIT', /LSU\.ls/);
  throwsControl(() => decodeControlMessage(payload(S('LSU'), strKeys({ id: S('R'), ls_seq: I(1), ls: strKeys({ id: S('R'), ls_seq: I(1), peers: strKeys({ [long]: I(1) }) }) }))),
    'ERR_CONTROL_LIMIT', /peers key/);
  throwsControl(() => decodeControlMessage(payload(Y('MAR'), symKeys({ id: S(long), have_seq: SL(0) }))), 'ERR_CONTROL_LIMIT');
  // mobile addresses are not router ids: long ones are fine
  const d = decodeControlMessage(payload(Y('MAU'), symKeys({ id: S('R'), mobile_seq: SL(1), exist: list32(S('M0' + long)) })));
  assert.ok(d.opcode === 'MAU' && d.exist?.[0].length === 258);
});

test('ControlMessageError: an Error with a stable code and an optional cause', () => {
  const cause = new Error('inner');
  const e = new ControlMessageError('ERR_CONTROL_MALFORMED', 'outer', { cause });
  assert.instance(e, Error);
  assert.is(e.code, 'ERR_CONTROL_MALFORMED');
  assert.is(e.message, 'outer');
  assert.is(e.cause, cause);
  assert.is(new ControlMessageError('ERR_CONTROL_VERSION', 'x').cause, undefined);
});

// ---------------------------------------------------------------------------------------------
// Router annotations

/** A message: optional header, message-annotations from raw entries, properties, body. */
function annotated(entries: [Enc, Enc][] | Enc | null, props: Enc | null = null): Buffer {
  const w = new Writer(64);
  section(0x70, LIST0)(w);
  if (entries !== null) section(0x72, Array.isArray(entries) ? map8(...entries) : entries)(w);
  if (props) section(0x73, props)(w);
  section(0x77, S('body'))(w);
  return w.take();
}

test('annotations: the captured data message (to, ingress, trace; properties.to empty)', () => {
  const a = readRouterAnnotations(Buffer.from(CAPTURED_DATA, 'hex'));
  assert.equal(a, { to: 'mesh/q1', ingress: '0/QDR.C', trace: ['0/QDR.C', '0/QDR.B'], phase: null, stream: false, propertiesTo: null });
});

test('annotations: phase, stream, properties.to; user keys and str keys ignored; start/end honoured', () => {
  const msg = annotated([
    [Y('x-opt-foo'), S('bar')],
    [S('x-opt-qd.to'), Y('user-str-key-is-not-router')],
    [Y('x-opt-qd.'), I(1)],
    [Y('x-opt-qd.class'), Y('ignored')],
    [Y('x-opt-qd.phase'), I(1)],
    [Y('x-opt-qd.stream'), I(1)],
    [Y('x-opt-qd.to'), S('wp/q')],
    [Y('x-opt-qd.ingress'), S('0/R1')],
    [Y('x-opt-qd.trace'), list8(S('0/R1'))],
  ], list8(NUL, NUL, S('amqp:/wp/q')));
  const a = readRouterAnnotations(msg);
  assert.equal(a, { to: 'wp/q', ingress: '0/R1', trace: ['0/R1'], phase: 1, stream: true, propertiesTo: 'amqp:/wp/q' });
  const framed = Buffer.concat([Buffer.from([9, 9, 9]), msg, Buffer.from([7])]);
  assert.equal(readRouterAnnotations(framed, 3, 3 + msg.length), a);
  // phase of any integer width; fallback phase 22
  assert.is(readRouterAnnotations(annotated([[Y('x-opt-qd.phase'), L(22)]])).phase, 22);
  assert.is(readRouterAnnotations(annotated([[Y('x-opt-qd.phase'), UB(0)]])).phase, 0);
});

test('annotations: no annotations, empty map, list0/list32 trace, sym32 key and str32 value, sym properties.to', () => {
  assert.equal(readRouterAnnotations(annotated(null, list8(NUL, NUL, S('q')))),
    { to: null, ingress: null, trace: null, phase: null, stream: false, propertiesTo: 'q' });
  assert.equal(readRouterAnnotations(annotated([], list8(NUL, NUL, Y('q')))).propertiesTo, 'q');
  assert.equal(readRouterAnnotations(annotated([], list8(NUL))).propertiesTo, null);
  assert.equal(readRouterAnnotations(annotated([], LIST0)).propertiesTo, null);
  assert.equal(readRouterAnnotations(annotated([], list8(NUL, NUL, I(4)))).propertiesTo, null);
  assert.equal(readRouterAnnotations(annotated([[Y('x-opt-qd.trace'), LIST0]])).trace, []);
  assert.equal(readRouterAnnotations(annotated([[Y('x-opt-qd.trace'), list32(S('0/A'), S('0/B'))]])).trace, ['0/A', '0/B']);
  const sym32 = (s: string): Enc => (w) => { w.byte(0xb3); w.u32(s.length); w.bytes(Buffer.from(s, 'latin1')); };
  const str32 = (s: string): Enc => (w) => { w.byte(0xb1); w.u32(Buffer.byteLength(s)); w.bytes(Buffer.from(s)); };
  const a = readRouterAnnotations(annotated(map32([sym32('x-opt-qd.ingress'), str32('0/Ré')])));
  assert.is(a.ingress, '0/Ré');
  // A message with only a body.
  const w = new Writer(8);
  section(0x77, S('x'))(w);
  assert.equal(readRouterAnnotations(w.take()).to, null);
  assert.equal(readRouterAnnotations(Buffer.alloc(0)).trace, null);
});

test('annotations: symbol (or other non-str) values are ERR_ANNOTATION_TYPE, as qdrouterd rejects them', () => {
  throwsControl(() => readRouterAnnotations(annotated([[Y('x-opt-qd.ingress'), Y('0/R1')]])), 'ERR_ANNOTATION_TYPE', /ingress is not a string \(type 0xa3\)/);
  throwsControl(() => readRouterAnnotations(annotated([[Y('x-opt-qd.to'), Y('q')]])), 'ERR_ANNOTATION_TYPE', /x-opt-qd\.to/);
  throwsControl(() => readRouterAnnotations(annotated([[Y('x-opt-qd.to'), NUL]])), 'ERR_ANNOTATION_TYPE', /x-opt-qd\.to/);
  throwsControl(() => readRouterAnnotations(annotated([[Y('x-opt-qd.trace'), list8(S('0/A'), Y('0/B'))]])), 'ERR_ANNOTATION_TYPE', /trace entry 1/);
  throwsControl(() => readRouterAnnotations(annotated([[Y('x-opt-qd.trace'), symArray('0/A')]])), 'ERR_ANNOTATION_TYPE', /trace is not a list/);
  throwsControl(() => readRouterAnnotations(annotated([[Y('x-opt-qd.trace'), S('0/A')]])), 'ERR_ANNOTATION_TYPE', /trace is not a list/);
  throwsControl(() => readRouterAnnotations(annotated([[Y('x-opt-qd.phase'), S('1')]])), 'ERR_ANNOTATION_TYPE', /phase/);
  throwsControl(() => readRouterAnnotations(annotated([[Y('x-opt-qd.phase'), L(2 ** 40)]])), 'ERR_ANNOTATION_TYPE', /phase/);
  // The same values under str keys are user annotations and pass.
  assert.is(readRouterAnnotations(annotated([[S('x-opt-qd.ingress'), Y('0/R1')]])).ingress, null);
});

test('annotations: a broken annotations section is ERR_ANNOTATION_MALFORMED; a broken header ERR_MESSAGE_MALFORMED', () => {
  throwsControl(() => readRouterAnnotations(annotated(NUL)), 'ERR_ANNOTATION_MALFORMED', /not a map/);
  throwsControl(() => readRouterAnnotations(annotated(list8(S('a')))), 'ERR_ANNOTATION_MALFORMED', /not a map/);
  const oddMap: Enc = (w) => { w.byte(0xc1); w.byte(4); w.byte(1); w.symbol('a'); };
  throwsControl(() => readRouterAnnotations(annotated(oddMap)), 'ERR_ANNOTATION_MALFORMED', /odd/);
  const data = Buffer.from(CAPTURED_DATA, 'hex');
  throwsControl(() => readRouterAnnotations(data.subarray(0, 20)), 'ERR_MESSAGE_MALFORMED');
  const broken = Buffer.from(data);
  broken[0x4d] = 0x09; // trace list8 count 2 → 9
  throwsControl(() => readRouterAnnotations(broken), 'ERR_ANNOTATION_MALFORMED', /trace/);
  throwsControl(() => readRouterAnnotations(Buffer.from('0053700401', 'hex')), 'ERR_MESSAGE_MALFORMED');
});

// ---------------------------------------------------------------------------------------------
// Mobile keys and hints

test('mobileKey: class M, phase character, scheme and host stripped', () => {
  assert.is(mobileKey('mesh/q1'), 'M0mesh/q1');
  assert.is(mobileKey('amqp:/mesh/q1'), 'M0mesh/q1');
  assert.is(mobileKey('amqp://host:5672/mesh/q1'), 'M0mesh/q1');
  assert.is(mobileKey('wp/q', 1), 'M1wp/q');
  assert.is(mobileKey('wp/q', 9), 'M9wp/q');
  assert.is(mobileKey('fb', FALLBACK_PHASE), 'MFfb');
  assert.throws(() => mobileKey('x', 10), RangeError);
  assert.throws(() => mobileKey('x', -1), RangeError);
  assert.throws(() => mobileKey('x', 1.5), RangeError);
});

test('parseMobileKey: M with phase, C/D/E/F/H without, other classes null', () => {
  assert.equal(parseMobileKey('M0mesh/q1'), { cls: 'M', phase: 0, address: 'mesh/q1' });
  assert.equal(parseMobileKey('M1wp/q'), { cls: 'M', phase: 1, address: 'wp/q' });
  assert.equal(parseMobileKey('MFfb'), { cls: 'M', phase: FALLBACK_PHASE, address: 'fb' });
  assert.equal(parseMobileKey('M0'), { cls: 'M', phase: 0, address: '' });
  assert.equal(parseMobileKey('Cprefix.'), { cls: 'C', phase: null, address: 'prefix.' });
  assert.equal(parseMobileKey('Dprefix'), { cls: 'D', phase: null, address: 'prefix' });
  assert.equal(parseMobileKey('Ea.*.b'), { cls: 'E', phase: null, address: 'a.*.b' });
  assert.equal(parseMobileKey('Fa.#'), { cls: 'F', phase: null, address: 'a.#' });
  assert.equal(parseMobileKey('HQDR.E'), { cls: 'H', phase: null, address: 'QDR.E' });
  for (const k of ['Lqdhello', 'Tqdrouter', 'RQDR.B', 'A0', 'Gx', 'M', '', 'm0x']) assert.is(parseMobileKey(k), null, k);
  for (const [a, p] of [['mesh/q1', 0], ['x/y', 3], ['z', FALLBACK_PHASE]] as [string, number][]) {
    assert.equal(parseMobileKey(mobileKey(a, p)), { cls: 'M', phase: p, address: a });
  }
});

test('treatment hints: as captured (multicast 1, balanced 3) and closest 2; back again', () => {
  assert.equal(TREATMENT, { MULTICAST_FLOOD: 0, MULTICAST_ONCE: 1, ANYCAST_CLOSEST: 2, ANYCAST_BALANCED: 3, LINK_BALANCED: 4, UNAVAILABLE: 5 });
  assert.is(hintForDistribution('multicast'), 1);
  assert.is(hintForDistribution('closest'), 2);
  assert.is(hintForDistribution('balanced'), 3);
  assert.is(distributionForHint(0), 'multicast');
  assert.is(distributionForHint(1), 'multicast');
  assert.is(distributionForHint(2), 'closest');
  assert.is(distributionForHint(3), 'balanced');
  for (const h of [4, 5, -1, 99]) assert.is(distributionForHint(h), null);
  // The captured MAUs carry these hints.
  const mc = decodeControlMessage(Buffer.from(CAPTURED.find((c) => c.name.includes('M0mc/x'))!.hex, 'hex'));
  assert.ok(mc.opcode === 'MAU' && mc.hints[0] === hintForDistribution('multicast'));
  const bal = decodeControlMessage(Buffer.from(CAPTURED.find((c) => c.name.includes('add M0mesh/q1'))!.hex, 'hex'));
  assert.ok(bal.opcode === 'MAU' && bal.hints[0] === hintForDistribution('balanced'));
});

test.run();
