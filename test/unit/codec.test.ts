/**
 * AMQP 1.0 type codec (amqp/codec.ts) against OASIS AMQP 1.0 part 1, section 1.6.
 *
 * Encodings are checked byte for byte, every format code is decoded, values round-trip, and
 * skipValue/Reader are driven over every format code and every truncation: bad input must raise
 * DecodeError and never read past `end`.
 *
 * Tests whose name starts with "BUG:" fail against the current code; each documents a defect.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  DecodeError, Described, InvalidStringError, MAX_DEPTH, Reader, Sym, Typed, Writer, decodeValue, encodeValue, fields, int, long, skipValue, sym,
  symArray, timestamp, ubyte, uint, ulong, ushort,
} from '../../amqp/codec';
import { decodeSaslInit, scanPerformative } from '../../amqp/performatives';

const hex = (b: Buffer): string => b.toString('hex');
const h = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** Encodes with a fresh Writer through `fn`. */
function enc(fn: (w: Writer) => void, size = 8): string {
  const w = new Writer(size); // small on purpose: exercises ensure() growth
  fn(w);
  return hex(w.take());
}

function throwsDecode(fn: () => unknown, what: string): void {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof DecodeError, `${what}: expected DecodeError, got ${(e as Error)?.name}: ${(e as Error)?.message}`);
    assert.is((e as DecodeError).code, 'ERR_AMQP_DECODE');
    return;
  }
  assert.unreachable(`${what}: expected DecodeError, nothing thrown`);
}

// ------------------------------------------------------------------------------------------
// Fixed-width encodings (1.6.1 - 1.6.19)

test('null and booleans: 0x40, 0x41, 0x42', () => {
  assert.is(enc((w) => w.null()), '40');
  assert.is(enc((w) => w.boolean(true)), '41');
  assert.is(enc((w) => w.boolean(false)), '42');
  assert.is(hex(encodeValue(null)), '40');
  assert.is(hex(encodeValue(undefined)), '40');
  assert.is(hex(encodeValue(true)), '41');
  assert.is(hex(encodeValue(false)), '42');
});

test('uint: 0 -> uint0 0x43, 1..255 -> smalluint 0x52, 256+ -> 0x70 big-endian', () => {
  assert.is(enc((w) => w.uint(0)), '43');
  assert.is(enc((w) => w.uint(1)), '5201');
  assert.is(enc((w) => w.uint(255)), '52ff');
  assert.is(enc((w) => w.uint(256)), '7000000100');
  assert.is(enc((w) => w.uint(0x12345678)), '7012345678');
  assert.is(enc((w) => w.uint(0xffffffff)), '70ffffffff');
  assert.is(hex(encodeValue(uint(0))), '43');
  assert.is(hex(encodeValue(uint(7))), '5207');
  assert.is(hex(encodeValue(uint(65536))), '7000010000');
});

test('ulong: 0 -> ulong0 0x44, 1..255 -> smallulong 0x53, else 0x80 with 8 bytes', () => {
  assert.is(enc((w) => w.ulong(0)), '44');
  assert.is(enc((w) => w.ulong(0n)), '44');
  assert.is(enc((w) => w.ulong(1)), '5301');
  assert.is(enc((w) => w.ulong(255)), '53ff');
  assert.is(enc((w) => w.ulong(256)), '800000000000000100');
  assert.is(enc((w) => w.ulong(2 ** 40)), '800000010000000000');
  assert.is(enc((w) => w.ulong(2n ** 64n - 1n)), '80ffffffffffffffff');
  assert.is(hex(encodeValue(ulong(0x53))), '5353');
});

test('ubyte 0x50, ushort 0x60, byte 0x51, short 0x61', () => {
  assert.is(enc((w) => w.ubyte(0)), '5000');
  assert.is(enc((w) => w.ubyte(200)), '50c8');
  assert.is(enc((w) => w.ushort(0x1234)), '601234');
  assert.is(enc((w) => w.ushort(0xffff)), '60ffff');
  assert.is(hex(encodeValue(ubyte(9))), '5009');
  assert.is(hex(encodeValue(ushort(1))), '600001');
  assert.is(hex(encodeValue(new Typed('byte', -2))), '51fe');
  assert.is(hex(encodeValue(new Typed('byte', 127))), '517f');
  assert.is(hex(encodeValue(new Typed('short', -2))), '61fffe');
  assert.is(hex(encodeValue(new Typed('short', 0x7fff))), '617fff');
});

test('int: -128..127 -> smallint 0x54 (two\'s complement), else 0x71', () => {
  assert.is(enc((w) => w.int(0)), '5400');
  assert.is(enc((w) => w.int(-1)), '54ff');
  assert.is(enc((w) => w.int(127)), '547f');
  assert.is(enc((w) => w.int(-128)), '5480');
  assert.is(enc((w) => w.int(128)), '7100000080');
  assert.is(enc((w) => w.int(-129)), '71ffffff7f');
  assert.is(enc((w) => w.int(-2147483648)), '7180000000');
  assert.is(enc((w) => w.int(2147483647)), '717fffffff');
  assert.is(hex(encodeValue(int(-5))), '54fb');
});

test('long: -128..127 -> smalllong 0x55, else 0x81 with 8 bytes', () => {
  assert.is(enc((w) => w.long(0)), '5500');
  assert.is(enc((w) => w.long(-1)), '55ff');
  assert.is(enc((w) => w.long(-128)), '5580');
  assert.is(enc((w) => w.long(200)), '8100000000000000c8');
  assert.is(enc((w) => w.long(-129)), '81ffffffffffffff7f');
  assert.is(enc((w) => w.long(-(2n ** 63n))), '818000000000000000');
  assert.is(enc((w) => w.long(2n ** 63n - 1n)), '817fffffffffffffff');
  assert.is(hex(encodeValue(long(3))), '5503');
});

test('encodeValue infers int for 32-bit integers, long beyond, double for fractions', () => {
  assert.is(hex(encodeValue(5)), '5405');
  assert.is(hex(encodeValue(-200)), '71ffffff38');
  assert.is(hex(encodeValue(2 ** 31)), '810000000080000000');
  assert.is(hex(encodeValue(-(2 ** 31))), '7180000000');
  assert.is(hex(encodeValue(5n)), '810000000000000005', 'bigint -> long (full width is legal)');
  assert.is(hex(encodeValue(1.5)), '823ff8000000000000');
  assert.is(hex(encodeValue(-0.5)), '82bfe0000000000000');
});

test('float 0x72 and double 0x82 are IEEE 754 big-endian', () => {
  assert.is(hex(encodeValue(new Typed('float', 1.5))), '723fc00000');
  assert.is(hex(encodeValue(new Typed('float', -2))), '72c0000000');
  assert.is(hex(encodeValue(new Typed('double', 1))), '823ff0000000000000');
  assert.is(enc((w) => w.double(-2.5)), '82c004000000000000');
});

test('timestamp 0x83: signed 64-bit ms since the epoch', () => {
  assert.is(enc((w) => w.timestamp(0)), '830000000000000000');
  assert.is(enc((w) => w.timestamp(1311704463521)), '83' + (1311704463521).toString(16).padStart(16, '0'));
  assert.is(enc((w) => w.timestamp(-1)), '83ffffffffffffffff');
  assert.is(enc((w) => w.timestamp(-1000)), '83fffffffffffffc18');
  assert.is(enc((w) => w.timestamp(1.9)), '830000000000000001', 'fractions truncate');
  assert.is(hex(encodeValue(timestamp(1000))), '8300000000000003e8');
  assert.is(hex(encodeValue(new Date(1000))), '8300000000000003e8');
});

test('char 0x73 is a UTF-32BE code point; uuid 0x98 is 16 raw bytes', () => {
  assert.is(hex(encodeValue(new Typed('char', 'A'))), '7300000041');
  assert.is(hex(encodeValue(new Typed('char', '\u{1F600}'))), '730001f600');
  const u = h('00112233445566778899aabbccddeeff');
  assert.is(hex(encodeValue(new Typed('uuid', u))), '98' + hex(u));
});

// ------------------------------------------------------------------------------------------
// Variable-width encodings (1.6.20 - 1.6.22)

test('string: str8 0xa1 up to 255 UTF-8 bytes, str32 0xb1 from 256 bytes', () => {
  assert.is(enc((w) => w.string('')), 'a100');
  assert.is(enc((w) => w.string('a')), 'a10161');
  assert.is(enc((w) => w.string('\u00e9')), 'a102c3a9', 'length counts UTF-8 bytes');
  const s255 = 'x'.repeat(255);
  assert.is(enc((w) => w.string(s255)), 'a1ff' + hex(Buffer.from(s255)));
  const s256 = 'x'.repeat(256);
  assert.is(enc((w) => w.string(s256)), 'b100000100' + hex(Buffer.from(s256)));
  // 128 two-byte characters: 128 chars but 256 bytes -> str32
  const e256 = '\u00e9'.repeat(128);
  assert.is(enc((w) => w.string(e256)).slice(0, 10), 'b100000100');
  const e254 = '\u00e9'.repeat(127);
  assert.is(enc((w) => w.string(e254)).slice(0, 4), 'a1fe');
  assert.is(hex(encodeValue('hi')), 'a1026869');
});

test('symbol: sym8 0xa3 up to 255 bytes, sym32 0xb3 from 256, ASCII', () => {
  assert.is(enc((w) => w.symbol('abc')), 'a303616263');
  assert.is(enc((w) => w.symbol('')), 'a300');
  assert.is(enc((w) => w.symbol('s'.repeat(255))).slice(0, 4), 'a3ff');
  assert.is(enc((w) => w.symbol('s'.repeat(256))), 'b300000100' + '73'.repeat(256));
  assert.is(hex(encodeValue(sym('amqp:accepted:list'))), 'a312' + hex(Buffer.from('amqp:accepted:list')));
  assert.is(hex(encodeValue(new Typed('symbol', 'x'))), 'a30178');
});

test('binary: vbin8 0xa0 up to 255 bytes, vbin32 0xb0 from 256', () => {
  assert.is(enc((w) => w.binary(Buffer.alloc(0))), 'a000');
  assert.is(enc((w) => w.binary(h('0102'))), 'a0020102');
  assert.is(enc((w) => w.binary(Buffer.alloc(255, 7))), 'a0ff' + '07'.repeat(255));
  assert.is(enc((w) => w.binary(Buffer.alloc(256, 7))), 'b000000100' + '07'.repeat(256));
  assert.is(hex(encodeValue(h('ff00'))), 'a002ff00');
});

// ------------------------------------------------------------------------------------------
// Compound types (1.6.23 - 1.6.24)

test('list: empty -> list0 0x45; small -> list8 0xc0 size count; size counts the count byte', () => {
  assert.is(hex(encodeValue([])), '45');
  assert.is(hex(encodeValue([1])), 'c003015401');
  assert.is(hex(encodeValue([null, true, 'a'])), 'c00603' + '40' + '41' + 'a10161');
  assert.is(hex(encodeValue([[]])), 'c0020145');
  assert.is(hex(encodeValue(new Typed('list', [uint(0)]))), 'c0020143');
});

test('list8/list32 choice at the 255-byte boundary and at 256 elements', () => {
  // body 254 bytes (str8 of 252) -> list8 with size 0xff
  const body254 = encodeValue(['y'.repeat(252)]);
  assert.is(hex(body254.subarray(0, 3)), 'c0ff01');
  assert.is(body254.length, 3 + 254);
  // body 255 bytes (str8 of 253) -> list32 with size = 255 + 4
  const body255 = encodeValue(['y'.repeat(253)]);
  assert.is(hex(body255.subarray(0, 9)), 'd0' + '00000103' + '00000001');
  assert.is(body255.length, 9 + 255);
  // 254 nulls: list8; 255 nulls: body 255 -> list32; 256 nulls: count does not fit a byte
  assert.is(hex(encodeValue(new Array(254).fill(null)).subarray(0, 3)), 'c0fffe');
  assert.is(hex(encodeValue(new Array(255).fill(null)).subarray(0, 9)), 'd0' + '00000103' + '000000ff');
  assert.is(hex(encodeValue(new Array(256).fill(null)).subarray(0, 9)), 'd0' + '00000104' + '00000100');
});

test('list written with beginList/endList compacts after the writer buffer grew', () => {
  const w = new Writer(4);
  w.byte(0xee);
  const m = w.beginList();
  for (let i = 0; i < 40; i++) w.uint(1000 + i);
  w.endList(m, 40);
  const b = w.take();
  assert.is(b[0], 0xee);
  assert.is(hex(b.subarray(1, 4)), 'c0' + (40 * 5 + 1).toString(16) + '28');
  assert.equal(decodeValue(b, 1), Array.from({ length: 40 }, (_, i) => 1000 + i));
});

test('map: map8 0xc1 (no map0), string keys -> str8, fields() keys -> sym8, Map keeps key types', () => {
  assert.is(hex(encodeValue({})), 'c10100');
  assert.is(hex(encodeValue(new Map())), 'c10100');
  assert.is(hex(encodeValue({ a: 1 })), 'c10602' + 'a10161' + '5401');
  assert.is(hex(encodeValue(fields({ a: 1 }))), 'c10602' + 'a30161' + '5401');
  assert.is(hex(encodeValue(new Map<unknown, unknown>([[sym('k'), 'v'], [uint(1), null]]))), 'c10a04' + 'a3016b' + 'a10176' + '5201' + '40');
  const big: Record<string, unknown> = {};
  for (let i = 0; i < 30; i++) big['key' + i] = 'value' + i;
  const b = encodeValue(big);
  assert.is(b[0], 0xd1);
  assert.is(b.readUInt32BE(1), b.length - 5, 'map32 size counts count + body');
  assert.is(b.readUInt32BE(5), 60, 'map count is keys + values');
  assert.equal(decodeValue(b), big);
});

test('symbol arrays: array32 0xf0 of sym32 elements; one element is a bare symbol', () => {
  assert.is(hex(encodeValue(symArray(['a', 'b']))), 'f0' + '0000000f' + '00000002' + 'b3' + '0000000161' + '0000000162');
  assert.is(hex(encodeValue(symArray([]))), 'f0' + '00000005' + '00000000' + 'b3');
  assert.is(hex(encodeValue(symArray(['only']))), 'a3046f6e6c79');
  assert.equal(decodeValue(encodeValue(symArray(['x', 'yy', 'zzz']))), ['x', 'yy', 'zzz']);
});

test('arrays decode from array8 0xe0 and array32 0xf0 with sym8/sym32/other element constructors', () => {
  assert.equal(decodeValue(h('e0 06 02 a3 01 61 01 62')), ['a', 'b']);
  assert.equal(decodeValue(h('e0 02 00 a3')), []);
  assert.equal(decodeValue(h('f0 0000000f 00000002 b3 0000000161 0000000162')), ['a', 'b']);
  assert.equal(decodeValue(h('e0 0a 02 70 00000001 00000002')), [1, 2]);
  assert.equal(decodeValue(h('e0 05 03 54 ff 01 02')), [-1, 1, 2]);
  assert.equal(decodeValue(h('e0 04 02 56 00 01')), [false, true]);
  // array of described values: the descriptor is shared
  const d = decodeValue(h('e0 05 02 00 53 24 45')) as Described[];
  assert.is(d.length, 2);
  for (const e of d) {
    assert.instance(e, Described);
    assert.is(e.descriptor, 0x24);
    assert.equal(e.value, []);
  }
});

test('described types: 0x00 then descriptor then value; numeric and symbolic descriptors', () => {
  assert.is(enc((w) => w.descriptor(0x10)), '005310');
  assert.is(enc((w) => w.descriptor(0x1234)), '00800000000000001234');
  assert.is(hex(encodeValue(new Described(sym('x'), 1))), '00a301785401');
  assert.is(hex(encodeValue(new Described(ulong(0x24), []))), '00532445');
  const v = decodeValue(h('00 53 24 45')) as Described;
  assert.instance(v, Described);
  assert.is(v.descriptor, 0x24);
  assert.equal(v.value, []);
  const s = decodeValue(h('00 a3 03 616263 c0 03 01 54 07')) as Described;
  assert.is(s.descriptor, 'abc');
  assert.equal(s.value, [7]);
  // described value whose value is itself described
  const n = decodeValue(h('00 53 01 00 53 02 40')) as Described;
  assert.instance(n.value, Described);
  assert.is((n.value as Described).descriptor, 2);
});

// ------------------------------------------------------------------------------------------
// Decoding every format code

test('decode: every fixed-width format code', () => {
  const cases: [string, unknown][] = [
    ['40', null], ['41', true], ['42', false], ['43', 0], ['44', 0], ['45', []],
    ['5600', false], ['5601', true],
    ['50ff', 255], ['51ff', -1], ['51 80', -128], ['52fe', 254], ['53fd', 253], ['54fe', -2], ['55 80', -128],
    ['60ffff', 65535], ['61 8000', -32768], ['61fffe', -2],
    ['70ffffffff', 4294967295], ['71ffffffff', -1], ['7180000000', -2147483648],
    ['723fc00000', 1.5],
    ['80 001fffffffffffff', Number.MAX_SAFE_INTEGER],
    ['80 0020000000000000', 2n ** 53n],
    ['80 ffffffffffffffff', 2n ** 64n - 1n],
    ['81 ffffffffffffffff', -1], ['81 ffe0000000000001', Number.MIN_SAFE_INTEGER], ['81 8000000000000000', -(2n ** 63n)],
    ['81 7fffffffffffffff', 2n ** 63n - 1n],
    ['82 3ff8000000000000', 1.5], ['82 7ff0000000000000', Infinity],
    ['83 00000000000003e8', 1000],
  ];
  for (const [hx, want] of cases) {
    const b = h(hx);
    const r = new Reader(b);
    assert.equal(r.read(), want, `decode ${hx}`);
    assert.is(r.off, b.length, `decode ${hx} consumes exactly its bytes`);
  }
  assert.ok(Number.isNaN(decodeValue(h('82 7ff8000000000000')) as number));
});

test('decode: char 0x73 as a string of one code point', () => {
  assert.is(decodeValue(h('7300000041')), 'A');
  assert.is(decodeValue(h('730001f600')), '\u{1F600}');
  assert.is(decodeValue(h('7300000000')), '\0');
});

test('decode: decimal32/64/128 (0x74/0x84/0x94) and uuid (0x98) as raw byte views', () => {
  const d32 = decodeValue(h('74 22500001')) as Buffer;
  assert.ok(Buffer.isBuffer(d32));
  assert.is(hex(d32), '22500001');
  assert.is(hex(decodeValue(h('84 2238000000000001')) as Buffer), '2238000000000001');
  assert.is(hex(decodeValue(h('94 22080000000000000000000000000001')) as Buffer), '22080000000000000000000000000001');
  const u = decodeValue(h('98 00112233445566778899aabbccddeeff')) as Buffer;
  assert.is(hex(u), '00112233445566778899aabbccddeeff');
  // a view, not a copy (documented)
  const src = h('98 00112233445566778899aabbccddeeff');
  const view = decodeValue(src) as Buffer;
  src[1] = 0x99;
  assert.is(view[0], 0x99);
});

test('decode: vbin8/vbin32, str8/str32 (UTF-8), sym8/sym32', () => {
  assert.is(hex(decodeValue(h('a0 02 0102')) as Buffer), '0102');
  assert.is(hex(decodeValue(h('b0 00000003 010203')) as Buffer), '010203');
  assert.is(decodeValue(h('a1 02 c3a9')), '\u00e9');
  assert.is(decodeValue(h('b1 00000002 6869')), 'hi');
  assert.is(decodeValue(h('a1 00')), '');
  assert.is(decodeValue(h('a3 03 616263')), 'abc');
  assert.is(decodeValue(h('b3 00000001 78')), 'x');
});

test('decode: list8/list32/map8/map32, nested, non-string map keys give a Map', () => {
  assert.equal(decodeValue(h('c0 05 03 40 41 5203')), [null, true, 3]);
  assert.equal(decodeValue(h('d0 00000008 00000003 40 41 5203')), [null, true, 3]);
  assert.equal(decodeValue(h('c0 01 00')), []);
  assert.equal(decodeValue(h('c1 07 02 a3 01 6b a1 01 76')), { k: 'v' });
  assert.equal(decodeValue(h('d1 0000000a 00000002 a1 01 6b a1 01 76')), { k: 'v' });
  assert.equal(decodeValue(h('c1 01 00')), {});
  const m = decodeValue(h('c1 08 04 a1 01 61 41 52 07 42')) as Map<unknown, unknown>;
  assert.instance(m, Map);
  assert.is(m.get('a'), true);
  assert.is(m.get(7), false);
  const nested = decodeValue(encodeValue({ a: [1, { b: [[], 'x'] }], c: h('00') }));
  assert.equal(nested, { a: [1, { b: [[], 'x'] }], c: h('00') });
});

test('decode: list and map whose size disagrees with their elements are DecodeErrors', () => {
  throwsDecode(() => decodeValue(h('c0 04 01 40 40 40')), 'list size larger than its elements');
  throwsDecode(() => decodeValue(h('c0 02 02 5401 5402')), 'list size smaller than its elements');
  throwsDecode(() => decodeValue(h('c1 04 03 a1 01 61 40')), 'odd map count');
  throwsDecode(() => decodeValue(h('c1 06 02 a1 01 61 40 40')), 'map size larger than entries');
  throwsDecode(() => decodeValue(h('e0 05 03 54 01 02')), 'array with fewer elements than its count');
  throwsDecode(() => decodeValue(h('e0 05 01 54 01 02 03')), 'array with more bytes than its count');
});

// ------------------------------------------------------------------------------------------
// Round trips

test('round trips through encodeValue/decodeValue', () => {
  const values: unknown[] = [
    null, true, false, 0, 1, -1, 127, -128, 128, 65535, -2147483648, 2147483647, 2 ** 40, -(2 ** 40),
    Number.MAX_SAFE_INTEGER, 2n ** 62n, -(2n ** 62n), 0.25, -1.5e-300, '', 'hello', '\u00e9\u{1F600}', 'z'.repeat(300),
    Buffer.alloc(0), h('deadbeef'), Buffer.alloc(1000, 1), [], [1, 'a', null, [true]], {}, { a: 1, b: 'x', c: [1, 2] },
    new Array(300).fill(7),
  ];
  for (const v of values) {
    assert.equal(decodeValue(encodeValue(v)), v, `round trip ${typeof v} ${String(v).slice(0, 20)}`);
  }
});

test('round trips of typed values decode to their JS value', () => {
  const cases: [Typed | Sym, unknown][] = [
    [uint(0), 0], [uint(300), 300], [uint(0xffffffff), 0xffffffff], [ulong(0), 0], [ulong(9), 9], [ulong(2n ** 60n), 2n ** 60n],
    [ubyte(255), 255], [ushort(65535), 65535], [int(-7), -7], [long(-300), -300], [long(-(2n ** 60n)), -(2n ** 60n)],
    [timestamp(1700000000000), 1700000000000], [new Typed('char', '\u00e9'), '\u00e9'], [sym('s'), 's'],
    [new Typed('float', 0.5), 0.5], [new Typed('byte', -100), -100], [new Typed('short', -1000), -1000],
    [symArray(['a', 'b']), ['a', 'b']], [fields({ x: 1 }), { x: 1 }],
  ];
  for (const [t, want] of cases) assert.equal(decodeValue(encodeValue(t)), want, `round trip ${t instanceof Typed ? t.type : 'sym'}`);
});

test('BUG: timestamp before 1970 round-trips (0x83 is a signed 64-bit value)', () => {
  // Writer.timestamp writes a signed int64; Reader decodes 0x83 with readBigUInt64BE (like ulong),
  // so timestamp(-1000) comes back as 18446744073709550616n instead of -1000.
  assert.equal(decodeValue(encodeValue(timestamp(-1000))), -1000);
  assert.equal(decodeValue(h('83 ffffffffffffffff')), -1);
});

test('BUG: encodeValue of an integral number beyond the int64 range encodes (as double), not a RangeError', () => {
  // Writer.value sends every Number.isInteger(v) outside int32 to long(), whose
  // writeBigInt64BE throws RangeError for 1e20, 2**63, -1e300 ... (all valid JS numbers).
  for (const v of [1e20, 2 ** 63, -1e300]) {
    let b: Buffer | null = null;
    try {
      b = encodeValue(v);
    } catch (e) {
      assert.unreachable(`encodeValue(${v}) threw ${(e as Error).name}: ${(e as Error).message}`);
    }
    assert.is(Number(decodeValue(b as Buffer)), v);
  }
});

test('BUG: char 0x73 with a value beyond U+10FFFF is a DecodeError, not a RangeError', () => {
  // Reader case 0x73 calls String.fromCodePoint(uint32) unchecked.
  throwsDecode(() => decodeValue(h('73 00110000')), 'char 0x110000');
  throwsDecode(() => decodeValue(h('73 ffffffff')), 'char 0xffffffff');
});

test('BUG: a map key "__proto__" is kept as an ordinary entry', () => {
  // Reader builds maps as plain objects with obj[k] = v; the key "__proto__" hits the prototype
  // setter: a non-object value vanishes, an object value becomes the decoded map's prototype.
  const key = hex(Buffer.from('__proto__'));
  const m1 = decodeValue(h(`c1 0d 02 a1 09 ${key} 41`)) as Record<string, unknown>;
  assert.equal(Object.keys(m1), ['__proto__'], 'entry with a boolean value is lost');
  const m2 = decodeValue(h(`c1 13 02 a1 09 ${key} c1 05 02 a1 01 78 41`)) as Record<string, unknown>;
  assert.is(Object.getPrototypeOf(m2), Object.prototype, 'a map value must not become the prototype');
});

// ------------------------------------------------------------------------------------------
// skipValue and truncation

/** One sample encoding per format code (plus compound ones). */
const SAMPLES: [string, string][] = [
  ['null', '40'], ['true', '41'], ['false', '42'], ['uint0', '43'], ['ulong0', '44'], ['list0', '45'],
  ['ubyte', '5001'], ['byte', '51ff'], ['smalluint', '5201'], ['smallulong', '5301'], ['smallint', '54ff'], ['smalllong', '55ff'], ['boolean', '5601'],
  ['ushort', '600102'], ['short', '61fffe'],
  ['uint', '7000000100'], ['int', '71ffffff00'], ['float', '723fc00000'], ['char', '7300000041'], ['decimal32', '7422500001'],
  ['ulong', '800000000000000100'], ['long', '81ffffffffffffff00'], ['double', '823ff8000000000000'], ['timestamp', '8300000000000003e8'], ['decimal64', '842238000000000001'],
  ['decimal128', '94' + '22'.repeat(16)], ['uuid', '98' + '0f'.repeat(16)],
  ['vbin8', 'a0020102'], ['str8', 'a1026869'], ['sym8', 'a3026869'],
  ['vbin32', 'b000000002' + '0102'], ['str32', 'b100000002' + '6869'], ['sym32', 'b300000002' + '6869'],
  ['list8', 'c00503' + '40' + '41' + '5203'], ['map8', 'c10702' + 'a3016b' + 'a10176'],
  ['list32', 'd0' + '00000008' + '00000003' + '404152' + '03'], ['map32', 'd1' + '0000000a' + '00000002' + 'a3016b' + 'a10176'],
  ['array8', 'e0' + '06' + '02' + 'a3' + '0161' + '0162'], ['array32', 'f0' + '0000000f' + '00000002' + 'b3' + '0000000161' + '0000000162'],
  ['described', '005324' + '45'], ['described-sym', '00a303616263' + 'c0030154' + '07'], ['nested-described', '005301' + '005302' + '40'],
  ['list-of-described', 'c00902' + '00532345' + '00532445'],
];

test('skipValue: returns the exact end of every format code, also with trailing bytes', () => {
  for (const [name, hx] of SAMPLES) {
    const b = h(hx);
    assert.is(skipValue(b, 0, b.length), b.length, `skip ${name}`);
    const padded = Buffer.concat([h('ee'), b, h('a1ff')]);
    assert.is(skipValue(padded, 1, padded.length), 1 + b.length, `skip ${name} at an offset with trailing bytes`);
  }
});

test('skipValue and Reader agree on where every sample ends', () => {
  for (const [name, hx] of SAMPLES) {
    const b = Buffer.concat([h(hx), h('40')]);
    const r = new Reader(b);
    r.read();
    assert.is(r.off, skipValue(b, 0, b.length), `reader/skip disagree on ${name}`);
  }
});

test('skipValue: every truncation of every sample throws DecodeError and reads nothing past end', () => {
  for (const [name, hx] of SAMPLES) {
    const full = h(hx);
    for (let end = 0; end < full.length; end++) {
      // The bytes past `end` are present in the buffer: a parser that reads past `end` would succeed.
      throwsDecode(() => skipValue(full, 0, end), `skip ${name} truncated to ${end}`);
    }
  }
});

test('Reader: every truncation of every sample throws DecodeError', () => {
  for (const [name, hx] of SAMPLES) {
    const full = h(hx);
    for (let end = 0; end < full.length; end++) {
      throwsDecode(() => new Reader(full, 0, end).read(), `read ${name} truncated to ${end}`);
    }
  }
});

test('skipValue: nested compound sizes are trusted only up to end', () => {
  // list8 claiming 200 bytes inside a 10-byte region
  throwsDecode(() => skipValue(h('c0 c8 01 40 40 40 40 40 40 40'), 0, 10), 'list8 size past end');
  // list32 with a 4 GiB size
  throwsDecode(() => skipValue(h('d0 ffffffff 00000001 40'), 0, 10), 'list32 size past end');
  // described whose value runs past end
  throwsDecode(() => skipValue(h('00 53 75 a0 10 0102'), 0, 7), 'described binary past end');
  // described whose descriptor is missing
  throwsDecode(() => skipValue(h('00'), 0, 1), 'described without descriptor');
  throwsDecode(() => skipValue(h('00 53 24'), 0, 3), 'described without value');
  // sub-region: skipping inside [off, end) of a larger buffer
  const b = h('ee c0 05 03 40 41 52 03 ff');
  assert.is(skipValue(b, 1, 8), 8);
  throwsDecode(() => skipValue(b, 1, 7), 'sub-region truncated');
  throwsDecode(() => skipValue(b, 8, 8), 'offset at end');
});

test('invalid format codes: skipValue and Reader throw DecodeError for every unassigned code', () => {
  const valid = new Set([
    0x00, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x60, 0x61,
    0x70, 0x71, 0x72, 0x73, 0x74, 0x80, 0x81, 0x82, 0x83, 0x84, 0x94, 0x98,
    0xa0, 0xa1, 0xa3, 0xb0, 0xb1, 0xb3, 0xc0, 0xc1, 0xd0, 0xd1, 0xe0, 0xf0,
  ]);
  for (let code = 0; code < 256; code++) {
    const b = Buffer.alloc(32, 0);
    b[0] = code;
    if (valid.has(code)) {
      if (code === 0x00) continue;
      // zeros after a valid constructor are a valid (possibly empty) value for skipValue
      const end = skipValue(b, 0, b.length);
      assert.ok(end > 0 && end <= b.length, `valid code 0x${code.toString(16)}`);
      try {
        new Reader(b).read();
      } catch (e) {
        assert.instance(e, DecodeError);
        assert.not.match((e as Error).message, /invalid format code/, `0x${code.toString(16)} is valid`);
      }
      continue;
    }
    throwsDecode(() => skipValue(b, 0, b.length), `skip invalid code 0x${code.toString(16)}`);
    throwsDecode(() => new Reader(b).read(), `read invalid code 0x${code.toString(16)}`);
    // also inside a list and as an array element constructor
    const inList = Buffer.from([0xc0, 0x02, 0x01, code]);
    throwsDecode(() => new Reader(inList).read(), `code 0x${code.toString(16)} in a list`);
    throwsDecode(() => new Reader(Buffer.from([0xe0, 0x03, 0x01, code, 0x00])).read(), `code 0x${code.toString(16)} as an array constructor`);
  }
});

test('BUG: deeply nested described types raise DecodeError, not a stack overflow', () => {
  // skipValue and Reader recurse once per 0x00 constructor; 10,000 zero bytes (well under a
  // frame) overflow the stack and raise RangeError instead of DecodeError.
  const deep = Buffer.alloc(10_000, 0);
  throwsDecode(() => skipValue(deep, 0, deep.length), 'skipValue over 10k nested described');
  throwsDecode(() => new Reader(deep).read(), 'Reader over 10k nested described');
});

test('Reader keeps its end across compounds and decodes several values in sequence', () => {
  const b = Buffer.concat([encodeValue([1, 2]), encodeValue('x'), encodeValue({ a: null })]);
  const r = new Reader(b);
  assert.equal(r.read(), [1, 2]);
  assert.is(r.read(), 'x');
  assert.equal(r.read(), { a: null });
  assert.is(r.off, b.length);
  throwsDecode(() => r.read(), 'read past the last value');
});

test('Writer.take copies and rewinds to the mark', () => {
  const w = new Writer(2);
  w.byte(1);
  const mark = w.off;
  w.uint(300);
  const t = w.take(mark);
  assert.is(hex(t), '700000012c');
  assert.is(w.off, 1);
  w.byte(2);
  assert.is(hex(w.take()), '0102');
  w.reset();
  assert.is(w.off, 0);
});

// ------------------------------------------------------------------------------------------
// Hostile counts and sizes: checked against the bytes left before anything is allocated

/** Runs `fn`, which must throw DecodeError; returns how long it took (ms). */
function timedDecodeError(fn: () => unknown, what: string): number {
  const t0 = process.hrtime.bigint();
  throwsDecode(fn, what);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

test('an array32 of 0xffffffff nulls (10 bytes) is a DecodeError, not a 2^32-element JS array', () => {
  // The body of a 32-byte SASL connection that used to take a process down (out of heap):
  // sasl-init whose mechanism is that array.
  const conn = h('414d5150030100000000001802010000005341c00b01f000000005ffffffff40');
  const body = conn.subarray(8 + 8);
  const t = timedDecodeError(() => {
    scanPerformative(body, 0, body.length);
    decodeSaslInit();
  }, 'sasl-init with the hostile array');
  assert.ok(t < 1000, `refused in ${t} ms`);
  for (const elem of ['40', '41', '42', '43', '44', '45']) {
    timedDecodeError(() => decodeValue(h(`f0 00000005 ffffffff ${elem}`)), `zero-width 0x${elem}`);
    timedDecodeError(() => decodeValue(h(`f0 00000008 ffffffff 00 53 24 ${elem}`)), `described zero-width 0x${elem}`);
  }
});

test('zero-width array elements: one per byte of the region (any real use), counted over every array in it', () => {
  // 10 nulls in a 10-byte encoding: fine.
  assert.equal(decodeValue(h('f0 00000005 0000000a 40')), new Array(10).fill(null));
  assert.equal(decodeValue(h('e0 02 03 41')), [true, true, true]);
  // Two arrays in one list: together they may not exceed the list's bytes.
  const list = (n1: number, n2: number) => h(`c0 09 02 e0 02 ${n1.toString(16).padStart(2, '0')} 40 e0 02 ${n2.toString(16).padStart(2, '0')} 43`);
  assert.equal((decodeValue(list(5, 5)) as unknown[][]).map((a) => a.length), [5, 5]);
  throwsDecode(() => decodeValue(list(6, 6)), '12 zero-width elements in an 11-byte region');
  // The same bytes inside a bigger region: the budget is the reader's region.
  const padded = Buffer.concat([h('e0 02 14 40'), Buffer.alloc(30, 0x40)]);
  assert.is((new Reader(padded).read() as unknown[]).length, 20);
});

test('list, map and array counts past their size are refused before allocating', () => {
  for (const [hex, what] of [
    ['d0 00000004 ffffffff', 'list32: 2^32-1 elements in 0 bytes'],
    ['d0 00000008 ffffffff 40404040', 'list32: 2^32-1 elements in 4 bytes'],
    ['c0 02 05 40', 'list8: 5 elements in 1 byte'],
    ['d1 00000004 fffffffe', 'map32: 2^32-2 entries in 0 bytes'],
    ['c1 01 02', 'map8: 2 entries in 0 bytes'],
    ['f0 00000009 ffffffff 70 00000001', 'array32 of uint: 2^32-1 elements in 4 bytes'],
    ['f0 00000006 ffffffff a1 00', 'array32 of str8: 2^32-1 elements in 1 byte'],
    ['e0 03 10 83 00', 'array8 of timestamps: 16 in 1 byte'],
    ['c0 00', 'list8 size 0 (smaller than its count byte)'],
    ['d0 00000003 00000000', 'list32 size 3 (smaller than its count)'],
    ['e0 00', 'array8 size 0'],
    ['f0 00000004 00000000', 'array32 without an element constructor'],
    ['b1 ffffffff 41', 'str32 claiming 4 GiB'],
    ['b0 7fffffff', 'vbin32 claiming 2 GiB'],
  ] as const) {
    const t = timedDecodeError(() => decodeValue(h(hex)), what);
    assert.ok(t < 100, `${what}: ${t} ms`);
  }
});

test('arrays of arrays count toward the nesting cap (they nest without passing through read())', () => {
  const nested = (depth: number) => {
    // array8 of one array8 of one ... of one null
    let b = h('e0 02 01 40');
    for (let i = 1; i < depth; i++) b = Buffer.concat([h(`e0 ${(b.length + 1).toString(16).padStart(2, '0')} 01`), b]);
    return b;
  };
  // array8 sizes stop at 255 bytes: array32 for the deep ones.
  const deep32 = (depth: number) => {
    let b = h('f0 00000005 00000001 40');
    for (let i = 1; i < depth; i++) {
      const hdr = Buffer.alloc(9);
      hdr[0] = 0xf0;
      hdr.writeUInt32BE(b.length + 4, 1);
      hdr.writeUInt32BE(1, 5);
      b = Buffer.concat([hdr, b]);
    }
    return b;
  };
  assert.equal(decodeValue(nested(3)), [[[null]]]);
  let ok = decodeValue(deep32(MAX_DEPTH - 1)) as unknown;
  for (let i = 0; i < MAX_DEPTH - 1; i++) ok = (ok as unknown[])[0];
  assert.is(ok, null);
  throwsDecode(() => decodeValue(deep32(MAX_DEPTH + 1)), 'arrays nested past the cap');
  throwsDecode(() => decodeValue(deep32(5000)), 'arrays nested 5000 deep: DecodeError, not a stack overflow');
});

// ------------------------------------------------------------------------------------------
// Strings are UTF-8 (1.6.20): invalid bytes are refused, never replaced

test('strings that are not valid UTF-8 raise InvalidStringError (a DecodeError), never U+FFFD', () => {
  for (const [bytes, what] of [
    ['712efe', '0xfe (never in UTF-8)'],
    ['712eff', '0xff'],
    ['c328', 'lead byte without continuation'],
    ['80', 'lone continuation byte'],
    ['c0af', 'overlong encoding of "/"'],
    ['eda080', 'UTF-16 surrogate D800'],
    ['f4908080', 'beyond U+10FFFF'],
    ['e282', 'truncated 3-byte sequence'],
  ] as const) {
    const n = bytes.length / 2;
    for (const enc of [`a1 ${n.toString(16).padStart(2, '0')} ${bytes}`, `b1 ${n.toString(16).padStart(8, '0')} ${bytes}`]) {
      try {
        decodeValue(h(enc));
        assert.unreachable(`${what}: decoded`);
      } catch (e) {
        assert.instance(e, InvalidStringError, `${what}: ${(e as Error).message}`);
        assert.instance(e, DecodeError);
      }
    }
  }
  // Two addresses differing only in invalid bytes can no longer decode to one string.
  throwsDecode(() => decodeValue(h('a1 03 712efe')), 'q.\\xfe');
  throwsDecode(() => decodeValue(h('a1 03 712eff')), 'q.\\xff');
});

test('valid UTF-8 of every length decodes as before; symbols stay latin1 (ASCII by the spec)', () => {
  for (const s of ['', 'q', 'queue.orders', 'é', '€uro', '😀 ok', 'mixed ascii then ü', 'x'.repeat(300) + '漢字']) {
    assert.is(decodeValue(encodeValue(s)), s);
  }
  assert.is(decodeValue(h('a3 02 41fe')), 'A\u00fe');
});

test.run();
