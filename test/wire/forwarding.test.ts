// Byte-exact forwarding: what a sender puts in a transfer is what the receiver gets, except the
// router's own x-opt-qd.* message annotations.
//
//   raw sender --> [router R1] --> raw receiver
//                  listener 0: defaults (stripAnnotations both, maxFrameSize 16384)
//                  listener 1: stripAnnotations no
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Described, Reader, Typed, sym, ubyte, uint, ulong, timestamp } from '../../amqp/codec';
import { D } from '../../amqp/performatives';
import { Frame, RawClient, Raw, encode, section, terminus } from '../support/raw-client';
import { RunningRouter, startRouter, standaloneConfig } from '../support/router';
import { ACCEPTED, dispositionFor, openReceiver, openSender, waitCredit } from './helpers';

let r: RunningRouter;
let port: number, noStripPort: number;
const clients: RawClient[] = [];

test.before(async () => {
  r = await startRouter(standaloneConfig('listener {\n    host: 127.0.0.1\n    port: 0\n    stripAnnotations: no\n}\n'), { listeners: 2 });
  [port, noStripPort] = r.ports;
});

test.after.each(() => {
  for (const c of clients.splice(0)) c.destroy();
});

test.after(async () => {
  if (r) await r.stop();
});

const hex = (s: string): Raw => new Raw(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

// ------------------------------------------------------------------ messages built by hand

const HEADER = section(D.Header, [true, ubyte(7), uint(60_000), true, uint(3)]);
const DELIVERY_ANNOTATIONS = section(D.DeliveryAnnotations, new Map<unknown, unknown>([
  [sym('x-da-hop'), 'hop-1'],
  [ulong(0x1234), hex('94 0102030405060708090a0b0c0d0e0f10')], // decimal128
]));

/** User message-annotations: keys and values of unusual types and non-minimal encodings. */
const USER_MA: [unknown, unknown][] = [
  [sym('x-described'), new Described(sym('com.example:point:list'), [1, 2.5, 'three'])],
  [ulong(42), hex('74 3a123456')], // ulong key (allowed in annotations), decimal32 value
  [sym('x-uint-wide'), hex('70 00000001')], // uint 1 in the 4-byte form, not smalluint
  [sym('x-ulong-wide'), hex('80 0000000000000002')], // ulong 2 in the 8-byte form
  [sym('x-bool-byte'), hex('56 01')], // boolean true as 0x56 0x01
  [sym('x-str32'), hex('b1 00000003 616263')], // "abc" as str32
  [sym('x-list32'), hex('d0 00000008 00000002 5401 5402')], // list32 [1, 2]
  [sym('x-array'), hex('e0 0a 02 71 00000001 00000002')], // array8 of two ints
  [sym('x-map'), new Map<unknown, unknown>([[1, 'int key'], [sym('s'), null], [Buffer.from([9]), new Typed('float', 1.5)]])],
  [sym('x-char'), new Typed('char', '\u{1F600}')],
  [sym('x-sym32'), hex('b3 00000004 74657374')],
];

function ma(entries: [unknown, unknown][]): Buffer {
  return section(D.MessageAnnotations, new Map(entries));
}

const PROPERTIES = section(D.Properties, [
  ulong(0xfeedn), Buffer.from('user-1'), 'closest/fwd', 'subject', 'reply/here',
  new Typed('uuid', Buffer.from('00112233445566778899aabbccddeeff', 'hex')), sym('application/x-test'), sym('identity'),
  timestamp(1_700_000_000_000), timestamp(1_600_000_000_000), 'group', uint(7), 'reply-group',
]);

const APPLICATION_PROPERTIES = section(D.ApplicationProperties, new Map<unknown, unknown>([
  ['ulong', ulong(2n ** 60n)],
  ['ubyte', ubyte(200)],
  ['char', new Typed('char', 'é')],
  ['decimal32', hex('74 01020304')],
  ['decimal64', hex('84 0102030405060708')],
  ['decimal128', hex('94 000102030405060708090a0b0c0d0e0f')],
  ['uuid', new Typed('uuid', Buffer.from('f81d4fae7dec11d0a76500a0c91e6bf6', 'hex'))],
  ['timestamp', timestamp(-1)],
  ['described', new Described(ulong(0x0000_4711_0000_0001n), 'opaque')],
  ['byte', new Typed('byte', -5)],
  ['short', new Typed('short', -300)],
  ['double', 3.25],
  ['null', null],
]));

/** A section whose descriptor no one knows (domain 0x4711): must pass untouched. */
const UNKNOWN_SECTION = encode(new Described(ulong(0x0000_4711_0000_00ffn), [sym('mystery'), Buffer.from([0, 1, 2])]));
const BODY = Buffer.concat([
  section(D.AmqpSequence, [1, 'two', [3], new Map([['four', 4]])]),
  section(D.AmqpSequence, [hex('a0 00')]),
]);
const FOOTER = section(D.Footer, new Map<unknown, unknown>([[sym('x-checksum'), Buffer.from('c0ffee', 'hex')]]));

/** The full message with the given message-annotation entries (none: no section). */
function message(maEntries: [unknown, unknown][] | null, extraSections: Buffer[] = []): Buffer {
  return Buffer.concat([
    HEADER, DELIVERY_ANNOTATIONS, ...(maEntries ? [ma(maEntries)] : []), PROPERTIES, APPLICATION_PROPERTIES,
    UNKNOWN_SECTION, BODY, ...extraSections, FOOTER,
  ]);
}

// ------------------------------------------------------------------ plumbing

interface Pair {
  tx: RawClient;
  rx: RawClient;
  rxHandle: number;
}

let addrSeq = 0;

/** A receiver (own connection on `rxPort`, credit 1000) and a sender (own connection) on one fresh address. */
async function pair(txPort: number, rxPort: number, rxOpen: { maxFrameSize?: number } = {}, txOpen: { maxFrameSize?: number } = {}): Promise<Pair> {
  const address = `closest/fwd.${++addrSeq}`;
  const rx = await RawClient.open(rxPort, { session: true, containerId: 'fwd-rx', ...rxOpen });
  clients.push(rx);
  const rxHandle = await openReceiver(rx, 0, 0, `rx-${addrSeq}`, address, 1000);
  const tx = await RawClient.open(txPort, { session: true, containerId: 'fwd-tx', ...txOpen });
  clients.push(tx);
  const since = tx.mark;
  const txHandle = await openSender(tx, 0, 0, `tx-${addrSeq}`, address);
  await waitCredit(tx, 0, txHandle, since);
  return { tx, rx, rxHandle };
}

/** Sends `payload` and returns the whole delivery as the receiver got it (all its frames). */
async function forward(p: Pair, payload: Buffer, frameSize = 16384): Promise<{ payload: Buffer; frames: Frame[] }> {
  const since = p.rx.mark;
  const txSince = p.tx.mark;
  const id = p.tx.sendMessage(0, 0, payload, { maxFrameSize: frameSize });
  const last = await p.rx.waitForFrame((f) => f.name === 'transfer' && f.fields[0] === p.rxHandle && f.fields[5] !== true, 5000, since)
    .catch((e: Error) => { throw new Error(`${e.message}\nsender got: ${p.tx.describe(txSince)}`); });
  const frames = p.rx.frames.slice(since, p.rx.frames.indexOf(last) + 1).filter((f) => f.name === 'transfer' && f.fields[0] === p.rxHandle);
  const deliveryId = frames[0].fields[1] as number;
  p.rx.disposition(0, { role: true, first: deliveryId, settled: true, state: ACCEPTED });
  const d = await dispositionFor(p.tx, 0, id, txSince);
  assert.equal(d.raw[4], ACCEPTED);
  return { payload: Buffer.concat(frames.map((f) => f.payload)), frames };
}

/** Why `got` is not `want` (first differing byte, and whether `got` still decodes), or null. */
function bytesProblem(got: Buffer, want: Buffer, what: string): string | null {
  if (got.equals(want)) return null;
  let i = 0;
  while (i < got.length && i < want.length && got[i] === want[i]) i++;
  let decodes = 'every section decodes';
  try {
    for (let off = 0; off < got.length; ) {
      const rd = new Reader(got, off);
      rd.read();
      off = rd.off;
    }
  } catch (e) {
    decodes = `the received message does not decode: ${(e as Error).message}`;
  }
  return `${what}: differs at byte ${i} (got ${got.length} bytes, want ${want.length}; ${decodes})\n got: ${got.subarray(i, i + 48).toString('hex')}\nwant: ${want.subarray(i, i + 48).toString('hex')}`;
}

function assertBytes(got: Buffer, want: Buffer, what: string): void {
  const problem = bytesProblem(got, want, what);
  if (problem) assert.unreachable(problem);
}

// ------------------------------------------------------------------ tests

test('every section, unusual types and encodings, forwarded byte for byte', async () => {
  const p = await pair(port, port);
  const msg = message(USER_MA);
  const got = await forward(p, msg);
  assertBytes(got.payload, msg, 'forwarded message');
  // Without message-annotations too, and with only a body.
  const bare = message(null);
  assertBytes((await forward(p, bare)).payload, bare, 'message without annotations');
  const bodyOnly = section(D.Data, Buffer.from('just data'));
  assertBytes((await forward(p, bodyOnly)).payload, bodyOnly, 'data-only message');
});

test('message-annotations in the 32-bit map form pass untouched', async () => {
  const p = await pair(port, port);
  const entries = Buffer.concat([encode(sym('x-k')), encode('v')]);
  const size = Buffer.alloc(8);
  size.writeUInt32BE(entries.length + 4, 0); // size counts the count field
  size.writeUInt32BE(2, 4);
  const ma32 = Buffer.concat([Buffer.from('005372d1', 'hex'), size, entries]);
  const msg = Buffer.concat([HEADER, ma32, PROPERTIES, BODY]);
  assertBytes((await forward(p, msg)).payload, msg, 'map32 annotations');
});

test('stripAnnotations both: only x-opt-qd.* keys go, everything else stays byte-identical', async () => {
  const p = await pair(port, port);
  const trace: [unknown, unknown] = [sym('x-opt-qd.trace'), ['0/R0']];
  const ingress: [unknown, unknown] = [sym('x-opt-qd.ingress'), '0/R0'];
  const placements: [string, [unknown, unknown][]][] = [
    ['first', [trace, ...USER_MA]],
    ['last', [...USER_MA, trace]],
    ['middle', [...USER_MA.slice(0, 3), trace, ...USER_MA.slice(3)]],
    ['two, apart', [ingress, ...USER_MA.slice(0, 5), trace, ...USER_MA.slice(5)]],
  ];
  const failures: string[] = [];
  for (const [where, entries] of placements) {
    const got = await forward(p, message(entries));
    const problem = bytesProblem(got.payload, message(USER_MA), `router key ${where}`);
    if (problem) failures.push(problem);
  }
  assert.ok(failures.length === 0, failures.join('\n'));
  // Only router keys: the section goes away entirely.
  const got = await forward(p, message([ingress, trace]));
  assertBytes(got.payload, message(null), 'annotations holding only router keys');
});

test('stripAnnotations no: x-opt-qd.ingress "0/R1" and x-opt-qd.trace ["0/R1"] added', async () => {
  const p = await pair(noStripPort, noStripPort);
  const added: [unknown, unknown][] = [[sym('x-opt-qd.ingress'), '0/R1'], [sym('x-opt-qd.trace'), ['0/R1']]];
  let got = await forward(p, message(USER_MA));
  assertBytes(got.payload, message([...USER_MA, ...added]), 'user annotations kept, router keys appended');
  got = await forward(p, message(null));
  assertBytes(got.payload, message(added), 'annotations section added after delivery-annotations');
  // An inbound trace is kept and extended; an inbound ingress is kept.
  got = await forward(p, message([[sym('x-opt-qd.ingress'), '0/R0'], [sym('x-opt-qd.trace'), ['0/R0']], ...USER_MA]));
  assertBytes(got.payload, message([...USER_MA, [sym('x-opt-qd.ingress'), '0/R0'], [sym('x-opt-qd.trace'), ['0/R0', '0/R1']]]), 'inbound trace extended');
  // The same with the inbound router keys between user keys.
  got = await forward(p, message([...USER_MA.slice(0, 4), [sym('x-opt-qd.trace'), ['0/R0']], ...USER_MA.slice(4)]));
  assertBytes(got.payload, message([...USER_MA, [sym('x-opt-qd.ingress'), '0/R1'], [sym('x-opt-qd.trace'), ['0/R0', '0/R1']]]), 'inbound trace between user keys');
  // A client's own x-opt-qd.to stays (qdrouterd's to-override; its one_router test_22), before ingress and trace.
  got = await forward(p, message([[sym('x-opt-qd.to'), 'toov/1'], ...USER_MA]));
  assertBytes(got.payload, message([...USER_MA, [sym('x-opt-qd.to'), 'toov/1'], ...added]), 'x-opt-qd.to kept');
});

test('200 KB message in 16 KB frames arrives intact, re-framed to the receiver\'s max-frame-size', async () => {
  for (const rxFrame of [4096, 65536]) {
    const p = await pair(port, port, { maxFrameSize: rxFrame }, { maxFrameSize: 16384 });
    const big = Buffer.alloc(200 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >> 8)) & 0xff;
    const msg = Buffer.concat([HEADER, ma(USER_MA), PROPERTIES, section(D.Data, big), FOOTER]);
    const got = await forward(p, msg, 16384);
    assertBytes(got.payload, msg, `200 KB message to a receiver with max-frame-size ${rxFrame}`);
    for (const f of got.frames) assert.ok(f.size <= rxFrame, `frame of ${f.size} bytes > receiver max-frame-size ${rxFrame}`);
    assert.ok(got.frames.length >= Math.ceil(msg.length / rxFrame), `${got.frames.length} frames`);
    got.frames.forEach((f, i) => assert.is(f.fields[5] === true, i < got.frames.length - 1, `more flag on frame ${i}`));
  }
});

test('multi-frame message with stripAnnotations no: annotated and re-framed, rest intact', async () => {
  const p = await pair(noStripPort, noStripPort, { maxFrameSize: 4096 });
  const big = Buffer.alloc(200 * 1024, 0x5a);
  const tail = [PROPERTIES, section(D.Data, big), FOOTER];
  const got = await forward(p, Buffer.concat([HEADER, ma(USER_MA), ...tail]), 16384);
  const want = Buffer.concat([HEADER, ma([...USER_MA, [sym('x-opt-qd.ingress'), '0/R1'], [sym('x-opt-qd.trace'), ['0/R1']]]), ...tail]);
  assertBytes(got.payload, want, 'annotated 200 KB message');
  for (const f of got.frames) assert.ok(f.size <= 4096, `frame of ${f.size} bytes`);
});

test('an aborted multi-frame delivery is dropped; the next one is forwarded', async () => {
  const p = await pair(port, port);
  const since = p.rx.mark;
  p.tx.transfer(0, { handle: 0, more: true, payload: Buffer.concat([HEADER, PROPERTIES]) });
  p.tx.transfer(0, { handle: 0, deliveryId: null, deliveryTag: null, more: false, aborted: true, payload: Buffer.alloc(0) });
  const msg = message(USER_MA);
  const got = await forward(p, msg);
  assertBytes(got.payload, msg, 'the delivery after the aborted one');
  const transfers = p.rx.frames.slice(since).filter((f) => f.name === 'transfer');
  assert.is(transfers.length, got.frames.length, `only the complete delivery reached the receiver: ${p.rx.describe(since)}`);
});

test('dynamic source: the router names a unique address and routes to it', async () => {
  const rx = await RawClient.open(port, { session: true });
  clients.push(rx);
  const names: string[] = [];
  for (const h of [0, 1]) {
    rx.attach(0, { name: `dyn${h}`, handle: h, role: true, source: terminus('source', null, { dynamic: true }), target: terminus('target', `dyn${h}`) });
    const a = await rx.waitForFrame((f) => f.name === 'attach' && f.fields[0] === `dyn${h}`);
    const src = a.fields[5] as Described;
    const fields = src.value as unknown[];
    assert.is(fields[4], true, 'dynamic flag echoed');
    assert.type(fields[0], 'string');
    names.push(fields[0] as string);
    rx.flow(0, { handle: h, deliveryCount: 0, linkCredit: 10 });
  }
  assert.is.not(names[0], names[1], 'two dynamic sources, two addresses');
  assert.match(names[0], /^amqp:\/_topo\/0\/R1\/temp\./);
  const tx = await RawClient.open(port, { session: true });
  clients.push(tx);
  const anon = await openSender(tx, 0, 0, 'anon', terminus('target', null));
  await waitCredit(tx, 0, anon);
  const msg = Buffer.concat([section(D.Properties, [null, null, names[1]]), section(D.AmqpValue, 'reply')]);
  tx.sendMessage(0, 0, msg, { settled: true });
  const t = await rx.waitForFrame((f) => f.name === 'transfer');
  assert.is(t.fields[0], (await rx.waitForFrame((f) => f.name === 'attach' && f.fields[0] === 'dyn1')).fields[1], 'to the second dynamic link');
  assertBytes(t.payload, msg, 'reply');
});

test.run();
