/**
 * Message sections (router/protocol/message.ts), AMQP 1.0 part 3, 3.2: scanMessage locates the
 * message-annotations section, the router's x-opt-qd.* keys and properties.to without decoding
 * the message; writeMessageWithAnnotations rewrites only the router's annotations and copies
 * every other byte.
 *
 * Messages are built by hand with the codec's Writer (exact layouts) and with rhea's encoder
 * (what clients send). Tests whose name starts with "BUG:" fail against the current code.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { message as rheaMessage, Message as RheaMessage } from 'rhea';
import { DecodeError, Described, Reader, Writer, decodeValue, sym, symArray } from '../../amqp/codec';
import { ANNOTATION_INGRESS, ANNOTATION_TRACE, MessageScan, scanMessage, writeMessageWithAnnotations } from '../../router/protocol/message';

const hex = (b: Buffer): string => b.toString('hex');

// ---------------------------------------------------------------------------------------------
// Section builders (numeric descriptors, compact encodings)

function section(code: number, write: (w: Writer) => void): Buffer {
  const w = new Writer(64);
  w.descriptor(code);
  write(w);
  return w.take();
}

const header = (durable = true): Buffer => section(0x70, (w) => w.value([durable]));
/** delivery-annotations with symbol keys. */
const deliveryAnnotations = (o: Record<string, unknown>): Buffer => section(0x71, (w) => symMap(w, Object.entries(o)));
/** message-annotations with symbol keys, in the given order. */
const messageAnnotations = (entries: [string, unknown][]): Buffer => section(0x72, (w) => symMap(w, entries));
/** properties: message-id, user-id, to, subject (trailing nulls kept as given). */
const properties = (fields: unknown[]): Buffer => section(0x73, (w) => w.value(fields));
const applicationProperties = (o: Record<string, unknown>): Buffer => section(0x74, (w) => w.value(o));
const data = (b: Buffer): Buffer => section(0x75, (w) => w.binary(b));
const amqpValue = (v: unknown): Buffer => section(0x77, (w) => w.value(v));
const amqpSequence = (v: unknown[]): Buffer => section(0x76, (w) => w.value(v));
const footer = (o: Record<string, unknown>): Buffer => section(0x78, (w) => symMap(w, Object.entries(o)));

function symMap(w: Writer, entries: [string, unknown][]): void {
  const m = w.beginMap();
  for (const [k, v] of entries) {
    w.symbol(k);
    w.value(v);
  }
  w.endMap(m, entries.length * 2);
}

function scan(msg: Buffer, start = 0, end = msg.length, readRouter = false): MessageScan {
  const s = new MessageScan();
  scanMessage(msg, start, end, s, readRouter);
  return s;
}

function rewrite(msg: Buffer, ingress: string | null, trace: string[] | null, start = 0, end = msg.length): Buffer {
  const s = scan(msg, start, end);
  const w = new Writer(16);
  w.byte(0xee); // the output may follow other bytes in the writer
  writeMessageWithAnnotations(w, msg, start, end, s, ingress, trace);
  const out = w.take();
  assert.is(out[0], 0xee);
  return out.subarray(1);
}

/** Decodes a message's sections as [descriptor, value] pairs (test oracle). */
function sections(msg: Buffer): [number, unknown][] {
  const r = new Reader(msg);
  const out: [number, unknown][] = [];
  while (r.off < msg.length) {
    const v = r.read();
    assert.instance(v, Described, 'every section is described');
    out.push([Number((v as Described).descriptor), (v as Described).value]);
  }
  return out;
}

function throwsDecode(fn: () => unknown, what: string): void {
  try {
    fn();
  } catch (e) {
    assert.instance(e, DecodeError, `${what}: got ${(e as Error).name}: ${(e as Error).message}`);
    return;
  }
  assert.unreachable(`${what}: expected DecodeError`);
}

const H = header();
const DA = deliveryAnnotations({ 'x-opt-da': 'd' });
const PROPS_TO = properties(['id-1', null, 'queue/a', 'subject']);
const AP = applicationProperties({ colour: 'red', n: 7 });
const BODY = data(Buffer.from('hello world'));
const FOOTER = footer({ 'x-sig': Buffer.from([1, 2, 3]) });

// ---------------------------------------------------------------------------------------------
// scanMessage

test('scan: header + DA + MA + properties: MA span, router keys, to', () => {
  const ma = messageAnnotations([['x-opt-user', 1], ['x-opt-qd.ingress', '0/A']]);
  const msg = Buffer.concat([H, DA, ma, PROPS_TO, AP, BODY, FOOTER]);
  const s = scan(msg);
  assert.is(s.maStart, H.length + DA.length);
  assert.is(s.maEnd, H.length + DA.length + ma.length);
  assert.is(s.hasRouterKeys, true);
  assert.is(s.to, 'queue/a');
  assert.is(s.ingress, null, 'router annotations not decoded unless asked');
  assert.is(s.trace, null);
});

test('scan: MA without router keys; similar-looking keys are not router keys', () => {
  for (const k of ['x-opt-qd', 'x-opt-qdx.ingress', 'x-opt-q.', 'X-OPT-QD.ingress', 'y-opt-qd.ingress', 'x-opt-qd-ingress']) {
    const ma = messageAnnotations([[k, 1]]);
    const s = scan(Buffer.concat([ma, BODY]));
    assert.is(s.maStart, 0);
    assert.is(s.maEnd, ma.length);
    assert.is(s.hasRouterKeys, false, k);
  }
  // the exact prefix is a router key, whatever follows it (and a str8 key counts too)
  assert.is(scan(Buffer.concat([messageAnnotations([['x-opt-qd.', 1]]), BODY])).hasRouterKeys, true);
  assert.is(scan(Buffer.concat([messageAnnotations([['x-opt-qd.phase', 1]]), BODY])).hasRouterKeys, true);
  const strKey = section(0x72, (w) => w.value({ 'x-opt-qd.to': 'q' }));
  assert.is(scan(Buffer.concat([strKey, BODY])).hasRouterKeys, true);
  // a router-looking *value* is not a key
  assert.is(scan(Buffer.concat([messageAnnotations([['k', 'x-opt-qd.ingress']]), BODY])).hasRouterKeys, false);
});

test('scan: a 32-bit (sym32) router key is found', () => {
  const longKey = 'x-opt-qd.' + 'k'.repeat(300);
  const ma = messageAnnotations([[longKey, 1]]);
  assert.is(ma[3], 0xd1);
  const s = scan(Buffer.concat([ma, BODY]));
  assert.is(s.hasRouterKeys, true);
});

test('scan: no MA section: maStart is where it would go (after header and DA), maEnd -1', () => {
  const cases: [Buffer[], number][] = [
    [[BODY], 0],
    [[H, BODY], H.length],
    [[DA, BODY], DA.length],
    [[H, DA, BODY], H.length + DA.length],
    [[H, DA, PROPS_TO, AP, BODY, FOOTER], H.length + DA.length],
    [[PROPS_TO, BODY], 0],
    [[AP, BODY], 0],
    [[], 0],
  ];
  for (const [parts, at] of cases) {
    const s = scan(Buffer.concat(parts));
    assert.is(s.maStart, at);
    assert.is(s.maEnd, -1);
    assert.is(s.hasRouterKeys, false);
  }
});

test('scan: properties.to present, null, absent, list too short, list0, str32 address', () => {
  assert.is(scan(Buffer.concat([PROPS_TO, BODY])).to, 'queue/a');
  assert.is(scan(Buffer.concat([properties(['id', null, null, 's']), BODY])).to, null);
  assert.is(scan(Buffer.concat([properties(['id', null]), BODY])).to, null);
  assert.is(scan(Buffer.concat([properties([]), BODY])).to, null);
  assert.is(scan(Buffer.concat([BODY])).to, null);
  assert.is(scan(Buffer.concat([properties([null, null, 'only-to']), BODY])).to, 'only-to');
  const longTo = 'a/'.repeat(200);
  const p32 = properties(['id', Buffer.from('user'), longTo, 'subject', 'reply']);
  assert.is(p32[3], 0xd0, 'list32 properties');
  assert.is(scan(Buffer.concat([H, p32, BODY])).to, longTo);
  // to after a 32-bit message-id binary
  assert.is(scan(Buffer.concat([properties([Buffer.alloc(300), null, 'x'])])).to, 'x');
});

test('scan: readRouterAnnotations decodes x-opt-qd.ingress and x-opt-qd.trace', () => {
  const ma = messageAnnotations([['x-opt-qd.ingress', '0/A'], ['x-opt-qd.trace', ['0/A', '0/B']], ['other', 1]]);
  const s = scan(Buffer.concat([H, ma, BODY]), 0, undefined, true);
  assert.is(s.ingress, '0/A');
  assert.equal(s.trace, ['0/A', '0/B']);
  assert.is(s.hasRouterKeys, true);
  // ill-typed router annotations are ignored, not fatal
  const bad = messageAnnotations([['x-opt-qd.ingress', 5], ['x-opt-qd.trace', 'not-a-list']]);
  const s2 = scan(Buffer.concat([bad, BODY]), 0, undefined, true);
  assert.is(s2.ingress, null);
  assert.is(s2.trace, null);
  assert.is(s2.hasRouterKeys, true);
});

test('scan: results are reset between calls on the same MessageScan', () => {
  const s = new MessageScan();
  const a = Buffer.concat([H, messageAnnotations([['x-opt-qd.ingress', 'X']]), PROPS_TO, BODY]);
  scanMessage(a, 0, a.length, s, true);
  assert.is(s.hasRouterKeys, true);
  const b = Buffer.concat([BODY]);
  scanMessage(b, 0, b.length, s, true);
  assert.equal([s.maStart, s.maEnd, s.hasRouterKeys, s.to, s.ingress, s.trace], [0, -1, false, null, null, null]);
});

test('scan: a message inside a larger buffer uses absolute offsets and ignores bytes outside', () => {
  const ma = messageAnnotations([['x-opt-qd.to', 'q']]);
  const msg = Buffer.concat([H, DA, ma, PROPS_TO, BODY]);
  const buf = Buffer.concat([Buffer.from([0x40, 0x40, 0x40]), msg, Buffer.from([0xff, 0xff])]);
  const s = scan(buf, 3, 3 + msg.length);
  assert.is(s.maStart, 3 + H.length + DA.length);
  assert.is(s.maEnd, 3 + H.length + DA.length + ma.length);
  assert.is(s.to, 'queue/a');
});

test('scan: long-form (ulong 0x80) section descriptors are recognised', () => {
  const w = new Writer();
  w.bytes(Buffer.from([0x00, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x70]));
  w.value([true]);
  const hdr = w.take();
  w.bytes(Buffer.from([0x00, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x72]));
  symMap(w, [['x-opt-qd.ingress', 'A']]);
  const ma = w.take();
  const msg = Buffer.concat([hdr, ma, PROPS_TO, BODY]);
  const s = scan(msg);
  assert.is(s.maStart, hdr.length);
  assert.is(s.maEnd, hdr.length + ma.length);
  assert.is(s.hasRouterKeys, true);
  assert.is(s.to, 'queue/a');
});

test('scan: rhea-encoded messages (map32 annotations, list32 properties)', () => {
  const plain = rheaMessage.encode({ to: 'some/where', body: 'x' });
  const s1 = scan(plain);
  assert.is(s1.to, 'some/where');
  assert.is(s1.maEnd, -1);
  const withMa = rheaMessage.encode({
    header: { durable: true }, delivery_annotations: { 'x-opt-d': 1 },
    message_annotations: { 'x-opt-qd.trace': ['0/R'], user: 'u' },
    to: 'dest', subject: 's', application_properties: { a: 1 }, body: Buffer.from('b'), footer: { f: 1 },
  } as unknown as RheaMessage);
  const s2 = scan(withMa);
  assert.ok(s2.maEnd > s2.maStart);
  assert.is(s2.hasRouterKeys, true);
  assert.is(s2.to, 'dest');
  assert.is(withMa[s2.maStart + 2], 0x72, 'maStart points at the MA section descriptor');
  const noRouter = rheaMessage.encode({ message_annotations: { user: 'u' }, body: 'x' } as unknown as RheaMessage);
  assert.is(scan(noRouter).hasRouterKeys, false);
});

test('scan: malformed sections throw DecodeError', () => {
  const bad: [string, Buffer][] = [
    ['not a described section', Buffer.from([0x40])],
    ['descriptor cut short', Buffer.from([0x00, 0x53])],
    ['bare 0x00', Buffer.from([0x00])],
    ['section value missing', Buffer.from([0x00, 0x53, 0x70])],
    ['header list past the end', Buffer.from([0x00, 0x53, 0x70, 0xc0, 0x10, 0x01, 0x41])],
    ['MA is a list, not a map', Buffer.concat([section(0x72, (w) => w.value([1, 2]))])],
    ['MA truncated', messageAnnotations([['x-opt-qd.a', 1]]).subarray(0, 8)],
    ['MA count larger than its entries', Buffer.from([0x00, 0x53, 0x72, 0xc1, 0x04, 0x04, 0xa3, 0x01, 0x61, 0x41])],
    ['MA with an invalid format code inside', Buffer.from([0x00, 0x53, 0x72, 0xc1, 0x05, 0x02, 0xa3, 0x01, 0x61, 0x02])],
    ['properties is a map', Buffer.concat([section(0x73, (w) => w.value({ a: 1 }))])],
    ['properties list shorter than its count', Buffer.from([0x00, 0x53, 0x73, 0xc0, 0x03, 0x05, 0x40, 0x40])],
    ['garbage after the body', Buffer.concat([H, Buffer.from([0x52])])],
    ['second section not described', Buffer.concat([H, Buffer.from([0xa1, 0x01, 0x41])])],
  ];
  for (const [what, msg] of bad) throwsDecode(() => scan(msg), what);
});

test('BUG: scan: a truncated long-form (0x80) section descriptor throws DecodeError', () => {
  // scanMessage only accepts 0x00 0x80 when 10 bytes remain; otherwise it falls into the
  // "symbolic descriptor: treat as opaque" branch and returns without error.
  throwsDecode(() => scan(Buffer.from([0x00, 0x80, 0x00, 0x00, 0x00])), 'ulong descriptor cut short');
  throwsDecode(() => scan(Buffer.concat([H, Buffer.from([0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00])])), 'ulong descriptor cut short after a header');
});

// ---------------------------------------------------------------------------------------------
// writeMessageWithAnnotations: stripping

/** Expected output when MA entries are filtered: same bytes around, MA re-encoded from kept raw entries. */
function expectedStripped(before: Buffer[], keptRaw: Buffer[], count: number, after: Buffer[]): Buffer {
  const parts = [...before];
  if (count > 0) {
    const w = new Writer();
    w.descriptor(0x72);
    const m = w.beginMap();
    for (const r of keptRaw) w.bytes(r);
    w.endMap(m, count);
    parts.push(w.take());
  }
  return Buffer.concat([...parts, ...after]);
}

/** The raw encoding of one symbol-keyed entry. */
function entry(k: string, v: unknown): Buffer {
  const w = new Writer();
  w.symbol(k);
  w.value(v);
  return w.take();
}

test('strip: router key last: removed, every other byte identical', () => {
  const ma = messageAnnotations([['user-a', 1], ['x-opt-qd.to', 'q']]);
  const msg = Buffer.concat([H, DA, ma, PROPS_TO, AP, BODY, FOOTER]);
  const out = rewrite(msg, null, null);
  assert.is(hex(out), hex(expectedStripped([H, DA], [entry('user-a', 1)], 2, [PROPS_TO, AP, BODY, FOOTER])));
});

test('strip: router key first: removed, every other byte identical', () => {
  const ma = messageAnnotations([['x-opt-qd.ingress', '0/X'], ['user-a', 'v'], ['user-b', [1, 2]]]);
  const msg = Buffer.concat([H, ma, PROPS_TO, BODY]);
  const out = rewrite(msg, null, null);
  assert.is(hex(out), hex(expectedStripped([H], [entry('user-a', 'v'), entry('user-b', [1, 2])], 4, [PROPS_TO, BODY])));
});

test('BUG: strip: a router key between two user keys is removed', () => {
  // writeMessageWithAnnotations' fast path copies buf[userStart..userEnd) whenever the first kept
  // entry starts the map and the last kept entry ends it, without checking the kept entries are
  // contiguous: the router key in the middle is copied along and the map's count (4) no longer
  // matches its 6 entries (the output does not even decode).
  const ma = messageAnnotations([['user-a', 1], ['x-opt-qd.to', 'q'], ['user-b', 2]]);
  const msg = Buffer.concat([H, ma, PROPS_TO, BODY]);
  const out = rewrite(msg, null, null);
  assert.is(hex(out), hex(expectedStripped([H], [entry('user-a', 1), entry('user-b', 2)], 4, [PROPS_TO, BODY])));
});

test('BUG: strip: several router keys between user keys are all removed', () => {
  const ma = messageAnnotations([['u1', 1], ['x-opt-qd.ingress', 'I'], ['u2', 2], ['x-opt-qd.trace', ['T']], ['u3', 3]]);
  const msg = Buffer.concat([ma, BODY]);
  const out = rewrite(msg, null, null);
  assert.is(hex(out), hex(expectedStripped([], [entry('u1', 1), entry('u2', 2), entry('u3', 3)], 6, [BODY])));
});

test('strip: only router keys: no router key survives, the rest is byte-identical', () => {
  const ma = messageAnnotations([['x-opt-qd.ingress', 'I'], ['x-opt-qd.trace', ['0/I']]]);
  const msg = Buffer.concat([H, DA, ma, PROPS_TO, BODY]);
  const out = rewrite(msg, null, null);
  const withoutSection = Buffer.concat([H, DA, PROPS_TO, BODY]);
  const withEmpty = expectedStripped([H, DA], [], 0, []);
  const emptyMa = Buffer.from([0x00, 0x53, 0x72, 0xc1, 0x01, 0x00]);
  const ok = hex(out) === hex(withoutSection) || hex(out) === hex(Buffer.concat([withEmpty, emptyMa, PROPS_TO, BODY]));
  assert.ok(ok, `unexpected output ${hex(out)}`);
  assert.is(scan(out).hasRouterKeys, false);
});

test('strip: router keys in a rhea (map32) annotations section; long-form descriptor', () => {
  const msg = rheaMessage.encode({ message_annotations: { 'x-opt-qd.to': 'q', keep: 'me' }, to: 't', body: 'b' } as unknown as RheaMessage);
  const out = rewrite(msg, null, null);
  const s = scan(out);
  assert.is(s.hasRouterKeys, false);
  assert.is(s.to, 't');
  const secs = sections(out);
  const ma = secs.find(([c]) => c === 0x72);
  assert.ok(ma);
  assert.equal(ma[1], { keep: 'me' });
  // sections after the MA are byte-identical
  const sIn = scan(msg);
  assert.is(hex(out.subarray(s.maEnd)), hex(msg.subarray(sIn.maEnd)));
  assert.is(hex(out.subarray(0, s.maStart)), hex(msg.subarray(0, sIn.maStart)));

  // long-form descriptor: body found at maStart + 10
  const w = new Writer();
  w.bytes(Buffer.from([0x00, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x72]));
  symMap(w, [['x-opt-qd.ingress', 'A'], ['u', 1]]);
  const longMa = w.take();
  const out2 = rewrite(Buffer.concat([H, longMa, BODY]), null, null);
  assert.equal(sections(out2), [[0x70, [true]], [0x72, { u: 1 }], [0x75, Buffer.from('hello world')]]);
});

test('no router keys and no ingress: the message is unchanged (hand-built, compact encodings)', () => {
  const cases: Buffer[] = [
    Buffer.concat([BODY]),
    Buffer.concat([H, DA, PROPS_TO, AP, BODY, FOOTER]),
    Buffer.concat([H, DA, messageAnnotations([['user', 1], ['x-opt-qd', 'not-router']]), PROPS_TO, AP, BODY, FOOTER]),
    Buffer.concat([amqpValue({ k: [1, 2, 3] })]),
    Buffer.concat([H, amqpSequence([1, 'two']), amqpSequence([3])]),
    Buffer.alloc(0),
  ];
  for (const msg of cases) assert.is(hex(rewrite(msg, null, null)), hex(msg));
});

test('BUG (minor): no router keys and no ingress: a rhea-encoded message (map32 annotations) is unchanged', () => {
  // docs/decisions/0002: "The router must forward messages byte for byte (only its own message
  // annotations change)". When the section exists without router keys, writeMessageWithAnnotations
  // re-encodes it (condition `scan.maEnd >= 0 && !scan.hasRouterKeys`): rhea's map32 becomes a
  // map8 (a long-form descriptor would become 0x53). Same value, different bytes.
  const msg = rheaMessage.encode({ message_annotations: { user: 'u' }, to: 't', body: 'b' } as unknown as RheaMessage);
  assert.is(scan(msg).hasRouterKeys, false);
  assert.is(hex(rewrite(msg, null, null)), hex(msg));
});

// ---------------------------------------------------------------------------------------------
// writeMessageWithAnnotations: adding ingress/trace

function routerMa(ingress: string, trace: string[], user: Buffer[] = [], userCount = 0): Buffer {
  const w = new Writer();
  w.descriptor(0x72);
  const m = w.beginMap();
  for (const u of user) w.bytes(u);
  w.symbol(ANNOTATION_INGRESS);
  w.string(ingress);
  w.symbol(ANNOTATION_TRACE);
  w.value(trace);
  w.endMap(m, userCount + 4);
  return w.take();
}

test('annotate: no MA: a section is inserted after header and delivery-annotations', () => {
  const msg = Buffer.concat([H, DA, PROPS_TO, AP, BODY, FOOTER]);
  const out = rewrite(msg, '0/R', ['0/A', '0/R']);
  assert.is(hex(out), hex(Buffer.concat([H, DA, routerMa('0/R', ['0/A', '0/R']), PROPS_TO, AP, BODY, FOOTER])));
  const s = scan(out, 0, out.length, true);
  assert.is(s.ingress, '0/R');
  assert.equal(s.trace, ['0/A', '0/R']);
  assert.is(s.to, 'queue/a');
});

test('annotate: insertion point with only a header, only DA, neither', () => {
  const ra = routerMa('I', ['I']);
  assert.is(hex(rewrite(Buffer.concat([H, BODY]), 'I', ['I'])), hex(Buffer.concat([H, ra, BODY])));
  assert.is(hex(rewrite(Buffer.concat([DA, PROPS_TO, BODY]), 'I', ['I'])), hex(Buffer.concat([DA, ra, PROPS_TO, BODY])));
  assert.is(hex(rewrite(Buffer.concat([PROPS_TO, BODY]), 'I', ['I'])), hex(Buffer.concat([ra, PROPS_TO, BODY])));
  assert.is(hex(rewrite(Buffer.concat([BODY]), 'I', ['I'])), hex(Buffer.concat([ra, BODY])));
});

test('annotate: existing user annotations kept first, old router keys replaced', () => {
  const ma = messageAnnotations([['x-opt-qd.ingress', 'OLD'], ['user', 'u'], ['x-opt-qd.trace', ['OLD']]]);
  const msg = Buffer.concat([H, ma, PROPS_TO, BODY]);
  const out = rewrite(msg, '0/NEW', ['0/OLD', '0/NEW']);
  assert.is(hex(out), hex(Buffer.concat([H, routerMa('0/NEW', ['0/OLD', '0/NEW'], [entry('user', 'u')], 2), PROPS_TO, BODY])));
  const secs = sections(out);
  assert.equal(secs[1], [0x72, { user: 'u', 'x-opt-qd.ingress': '0/NEW', 'x-opt-qd.trace': ['0/OLD', '0/NEW'] }]);
});

test('BUG: annotate: a router key between two user keys is replaced, not kept', () => {
  // Same fast-path defect as the strip case: with ingress given, the old x-opt-qd.ingress in the
  // middle is copied along, so the output holds it twice and the map count is off by 2.
  const ma = messageAnnotations([['a', 1], ['x-opt-qd.ingress', 'OLD'], ['b', 2]]);
  const msg = Buffer.concat([H, ma, BODY]);
  const out = rewrite(msg, 'NEW', ['NEW']);
  assert.is(hex(out), hex(Buffer.concat([H, routerMa('NEW', ['NEW'], [entry('a', 1), entry('b', 2)], 4), BODY])));
});

test('annotate: existing MA without router keys: user keys kept, router keys appended', () => {
  const ma = messageAnnotations([['a', 1], ['b', 'two']]);
  const msg = Buffer.concat([ma, BODY]);
  const out = rewrite(msg, 'I', []);
  assert.is(hex(out), hex(Buffer.concat([routerMa('I', [], [entry('a', 1), entry('b', 'two')], 4), BODY])));
});

test('annotate: trace null is written as an empty list', () => {
  const out = rewrite(BODY, 'I', null);
  assert.equal(sections(out)[0], [0x72, { 'x-opt-qd.ingress': 'I', 'x-opt-qd.trace': [] }]);
});

test('annotate: a large annotations section (map32) and long trace stay well-formed', () => {
  const user: [string, unknown][] = [];
  for (let i = 0; i < 40; i++) user.push(['key-' + i, 'value-' + 'v'.repeat(i)]);
  const ma = messageAnnotations(user);
  const trace = Array.from({ length: 50 }, (_, i) => `0/router-${i}`);
  const msg = Buffer.concat([H, ma, PROPS_TO, BODY]);
  const out = rewrite(msg, '0/router-49', trace);
  const secs = sections(out);
  const got = secs[1][1] as Record<string, unknown>;
  for (const [k, v] of user) assert.is(got[k], v);
  assert.equal(got['x-opt-qd.trace'], trace);
  assert.is(hex(out.subarray(scan(out).maEnd)), hex(Buffer.concat([PROPS_TO, BODY])));
});

test('annotate: message at an offset inside a larger buffer copies only its own bytes', () => {
  const msg = Buffer.concat([H, PROPS_TO, BODY]);
  const buf = Buffer.concat([Buffer.from('garbage'), msg, Buffer.from('tail')]);
  const out = rewrite(buf, 'I', ['I'], 7, 7 + msg.length);
  assert.is(hex(out), hex(Buffer.concat([H, routerMa('I', ['I']), PROPS_TO, BODY])));
});

test('annotate: rhea can decode the rewritten message with its annotations and body', () => {
  const msg = rheaMessage.encode({
    header: { durable: true }, message_annotations: { user: 'u', 'x-opt-qd.ingress': 'old' },
    to: 'addr', application_properties: { p: 1 }, body: 'payload',
  } as unknown as RheaMessage);
  const out = rewrite(msg, '0/R', ['0/R']);
  const m = rheaMessage.decode(out);
  assert.equal(m.message_annotations, { user: 'u', 'x-opt-qd.ingress': '0/R', 'x-opt-qd.trace': ['0/R'] });
  assert.is(m.to, 'addr');
  assert.is(m.body, 'payload');
  assert.equal(m.application_properties, { p: 1 });
});

test('symbol arrays and described values in user annotations are copied verbatim', () => {
  // (router key last: a router key in the middle hits the fast-path bug tested above)
  const w2 = new Writer();
  w2.descriptor(0x72);
  const m2 = w2.beginMap();
  w2.symbol('caps');
  w2.value(symArray(['a', 'b']));
  w2.symbol('described');
  w2.value(new Described(sym('my:type'), [1]));
  w2.symbol('x-opt-qd.to');
  w2.string('q');
  w2.endMap(m2, 6);
  const ma2 = w2.take();
  const out = rewrite(Buffer.concat([ma2, BODY]), null, null);
  const v = decodeValue(out) as Described;
  assert.equal(Object.keys(v.value as object), ['caps', 'described']);
  assert.equal((v.value as Record<string, unknown>).caps, ['a', 'b']);
});


// header.priority selects the inter-router data link (0..9, default 4).
test('scanMessage reads header.priority, capped at 9, default 4', () => {
  const body = Buffer.from([0x00, 0x53, 0x77, 0x40]);
  const withHeader = (prio: number | null) => Buffer.concat([
    Buffer.from(prio === null ? [0x00, 0x53, 0x70, 0xc0, 0x02, 0x01, 0x42] : [0x00, 0x53, 0x70, 0xc0, 0x04, 0x02, 0x42, 0x50, prio]),
    body,
  ]);
  const s = new MessageScan();
  scanMessage(withHeader(7), 0, withHeader(7).length, s, false);
  assert.is(s.priority, 7);
  scanMessage(withHeader(200), 0, withHeader(200).length, s, false);
  assert.is(s.priority, 9);
  scanMessage(withHeader(null), 0, withHeader(null).length, s, false);
  assert.is(s.priority, 4);
  scanMessage(body, 0, body.length, s, false);
  assert.is(s.priority, 4);
});

test('scan: a "to" that is not valid UTF-8 is flagged (toInvalid), never decoded with U+FFFD', () => {
  // properties [null, null, str8 "q.\xfe"]: an anonymous relay refuses it with amqp:invalid-field.
  const bad = Buffer.from('0053' + '73' + 'c00803' + '4040' + 'a103712efe', 'hex');
  const s = new MessageScan();
  scanMessage(bad, 0, bad.length, s, false);
  assert.is(s.to, null);
  assert.is(s.toInvalid, true);
  const good = properties([null, null, 'q.þ']);
  scanMessage(good, 0, good.length, s, false);
  assert.equal([s.to, s.toInvalid], ['q.þ', false], 'reset and valid again');
});

test('scan: sizes and counts that disagree with their section are DecodeErrors, not reads past it', () => {
  const s = new MessageScan();
  const h = (x: string) => Buffer.from(x.replace(/\s+/g, ''), 'hex');
  for (const [hexs, what] of [
    // message-annotations map32 whose count is 2^32 - 2 in a 5-byte section
    ['0053 72 d1 00000005 fffffffe 40', 'annotations count lies'],
    // message-annotations map8 whose size runs past the section (skipValue bounds the section: map8 size 1)
    ['0053 72 c1 01 04', 'annotations count past size'],
    // properties list32 whose size is smaller than its count field
    ['0053 73 d0 00000003 00000000', 'properties size under its count'],
  ] as const) {
    try {
      scanMessage(h(hexs), 0, h(hexs).length, s, true);
      assert.unreachable(`${what}: scanned`);
    } catch (e) {
      assert.instance(e, DecodeError, `${what}: ${(e as Error).message}`);
    }
  }
});

test.run();
