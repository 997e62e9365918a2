/**
 * FrameParser (amqp/frames.ts): AMQP 1.0 part 2, 2.2 (protocol header) and 2.3
 * (frames). The parser must give the same frames whatever way the bytes are split, reject
 * non-AMQP input from its first bytes, and enforce max-frame-size before buffering a body.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AMQP_HEADER, FRAME_AMQP, FRAME_SASL, FrameParser, FrameSink, FramingError, SASL_HEADER } from '../../amqp/frames';

type Unit = { kind: 'header'; id: number } | { kind: 'frame'; type: number; channel: number; body: string };

/** Records every unit (copying frame bodies: the parser's buffer is only valid during the call). */
class Recorder implements FrameSink {
  units: Unit[] = [];
  parser!: FrameParser;
  /** Re-arm header parsing after a SASL frame whose first body byte is 0x44 (our "outcome"). */
  rearmAfterSasl = false;
  onProtocolHeader(protocolId: number): void {
    this.units.push({ kind: 'header', id: protocolId });
  }
  onFrame(type: number, channel: number, buf: Buffer, bodyStart: number, end: number): void {
    assert.ok(bodyStart <= end && end <= buf.length, 'frame view within the buffer');
    this.units.push({ kind: 'frame', type, channel, body: buf.subarray(bodyStart, end).toString('hex') });
    if (this.rearmAfterSasl && type === FRAME_SASL && buf[bodyStart] === 0x44) this.parser.expectHeader();
  }
}

function newParser(max = 1 << 20, rearm = false): Recorder {
  const r = new Recorder();
  r.rearmAfterSasl = rearm;
  r.parser = new FrameParser(r, max);
  return r;
}

/** A frame: size, doff, type, channel, extended header (doff*4-8 bytes), body. */
function frame(type: number, channel: number, body: Buffer, doff = 2): Buffer {
  const head = Buffer.alloc(doff * 4);
  head.writeUInt32BE(doff * 4 + body.length, 0);
  head[4] = doff;
  head[5] = type;
  head.writeUInt16BE(channel, 6);
  head.fill(0xee, 8); // extended header bytes: must be skipped
  return Buffer.concat([head, body]);
}

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/** Deterministic PRNG (mulberry32) so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function feed(r: Recorder, chunks: Buffer[]): Unit[] {
  for (const c of chunks) r.parser.push(c);
  return r.units;
}

function framingError(fn: () => void, code: string, condition?: string): FramingError {
  try {
    fn();
  } catch (e) {
    assert.instance(e, FramingError, `expected FramingError ${code}, got ${(e as Error).name}: ${(e as Error).message}`);
    assert.is((e as FramingError).code, code);
    if (condition) assert.is((e as FramingError).condition, condition);
    return e as FramingError;
  }
  assert.unreachable(`expected FramingError ${code}, nothing thrown`);
  throw new Error('unreachable');
}

// A stream with every kind of unit: header, frames with doff 2 and 3, heartbeats, channels,
// SASL frame type, a body larger than typical chunk sizes.
const STREAM_FRAMES: Buffer[] = [
  frame(FRAME_AMQP, 0, pattern(20, 1)),
  frame(FRAME_AMQP, 0, Buffer.alloc(0)), // heartbeat
  frame(FRAME_AMQP, 7, pattern(1, 2)),
  frame(FRAME_AMQP, 0xffff, pattern(33, 3), 3), // extended header
  frame(FRAME_AMQP, 1, pattern(1500, 4)),
  frame(FRAME_AMQP, 2, Buffer.alloc(0), 4), // empty body after an extended header
  frame(FRAME_SASL, 0, pattern(9, 5)),
  frame(FRAME_AMQP, 3, pattern(255, 6), 255), // largest doff
];
const STREAM = Buffer.concat([AMQP_HEADER, ...STREAM_FRAMES]);
const EXPECTED: Unit[] = [
  { kind: 'header', id: 0 },
  { kind: 'frame', type: 0, channel: 0, body: pattern(20, 1).toString('hex') },
  { kind: 'frame', type: 0, channel: 0, body: '' },
  { kind: 'frame', type: 0, channel: 7, body: pattern(1, 2).toString('hex') },
  { kind: 'frame', type: 0, channel: 0xffff, body: pattern(33, 3).toString('hex') },
  { kind: 'frame', type: 0, channel: 1, body: pattern(1500, 4).toString('hex') },
  { kind: 'frame', type: 0, channel: 2, body: '' },
  { kind: 'frame', type: 1, channel: 0, body: pattern(9, 5).toString('hex') },
  { kind: 'frame', type: 0, channel: 3, body: pattern(255, 6).toString('hex') },
];

test('whole stream in one chunk: header, frames, heartbeats, extended headers', () => {
  const r = newParser();
  assert.equal(feed(r, [STREAM]), EXPECTED);
  assert.is(r.parser.buffered, 0);
  assert.is(r.parser.bytesIn, STREAM.length);
});

test('one byte at a time gives the same frames', () => {
  const r = newParser();
  const chunks: Buffer[] = [];
  for (let i = 0; i < STREAM.length; i++) chunks.push(STREAM.subarray(i, i + 1));
  assert.equal(feed(r, chunks), EXPECTED);
  assert.is(r.parser.buffered, 0);
  assert.is(r.parser.bytesIn, STREAM.length);
});

test('every two-way split gives the same frames', () => {
  for (let i = 0; i <= STREAM.length; i++) {
    const r = newParser();
    assert.equal(feed(r, [STREAM.subarray(0, i), STREAM.subarray(i)]), EXPECTED, `split at ${i}`);
    assert.is(r.parser.buffered, 0);
  }
});

test('every three-way split around frame boundaries gives the same frames', () => {
  // All (i, j) pairs in the first 80 bytes (header + several small frames) plus the tail.
  for (let i = 0; i <= 80; i++) {
    for (let j = i; j <= 80; j++) {
      const r = newParser();
      assert.equal(feed(r, [STREAM.subarray(0, i), STREAM.subarray(i, j), STREAM.subarray(j)]), EXPECTED, `split at ${i}, ${j}`);
    }
  }
});

test('random chunk sizes (seeded) give the same frames', () => {
  for (let seed = 1; seed <= 300; seed++) {
    const rand = rng(seed);
    const maxChunk = 1 + Math.floor(rand() * 700);
    const chunks: Buffer[] = [];
    for (let off = 0; off < STREAM.length;) {
      const n = Math.min(STREAM.length - off, Math.floor(rand() * maxChunk)); // 0-length chunks included
      chunks.push(STREAM.subarray(off, off + n));
      off += n;
    }
    const r = newParser();
    assert.equal(feed(r, chunks), EXPECTED, `seed ${seed}`);
    assert.is(r.parser.bytesIn, STREAM.length);
  }
});

test('SASL header, SASL frames, re-armed header, AMQP header and frames: same in every split', () => {
  const mechs = frame(FRAME_SASL, 0, Buffer.from([0x00, 0x53, 0x40, 0x45]));
  const outcome = frame(FRAME_SASL, 0, Buffer.from([0x44, 0x01])); // Recorder re-arms on 0x44
  const open = frame(FRAME_AMQP, 0, pattern(40, 9));
  const stream = Buffer.concat([SASL_HEADER, mechs, outcome, AMQP_HEADER, open, frame(FRAME_AMQP, 0, Buffer.alloc(0))]);
  const expected: Unit[] = [
    { kind: 'header', id: 3 },
    { kind: 'frame', type: 1, channel: 0, body: '00534045' },
    { kind: 'frame', type: 1, channel: 0, body: '4401' },
    { kind: 'header', id: 0 },
    { kind: 'frame', type: 0, channel: 0, body: pattern(40, 9).toString('hex') },
    { kind: 'frame', type: 0, channel: 0, body: '' },
  ];
  for (let i = 0; i <= stream.length; i++) {
    const r = newParser(1 << 20, true);
    assert.equal(feed(r, [stream.subarray(0, i), stream.subarray(i)]), expected, `split at ${i}`);
  }
  const r = newParser(1 << 20, true);
  for (let i = 0; i < stream.length; i++) r.parser.push(stream.subarray(i, i + 1));
  assert.equal(r.units, expected);
});

test('without re-arming, a second header is parsed as a frame header (too large)', () => {
  const r = newParser(512);
  r.parser.push(AMQP_HEADER);
  // "AMQP" read as a frame size is 0x414d5150
  framingError(() => r.parser.push(AMQP_HEADER), 'ERR_FRAME_TOO_LARGE');
});

test('HTTP request instead of a header: ERR_PROTOCOL_HEADER on the first byte', () => {
  const http = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  const e = framingError(() => newParser().parser.push(http), 'ERR_PROTOCOL_HEADER', 'amqp:connection:framing-error');
  assert.match(e.message, /GET/);
  // one byte is enough to know
  const r = newParser();
  framingError(() => r.parser.push(http.subarray(0, 1)), 'ERR_PROTOCOL_HEADER');
  assert.is(r.units.length, 0);
});

test('partial headers: a correct prefix waits, a wrong byte fails at once', () => {
  for (let n = 1; n < 8; n++) {
    const r = newParser();
    r.parser.push(AMQP_HEADER.subarray(0, n));
    assert.is(r.units.length, 0, `prefix of ${n}`);
    assert.is(r.parser.buffered, n);
  }
  framingError(() => newParser().parser.push(Buffer.from('AMQX')), 'ERR_PROTOCOL_HEADER');
  framingError(() => newParser().parser.push(Buffer.from('AMX')), 'ERR_PROTOCOL_HEADER');
  const r = newParser();
  r.parser.push(Buffer.from('AM'));
  framingError(() => r.parser.push(Buffer.from('QX')), 'ERR_PROTOCOL_HEADER');
});

test('wrong AMQP version: ERR_PROTOCOL_VERSION (amqp:not-implemented)', () => {
  for (const v of [[0, 0, 0], [0, 9, 1], [1, 0, 1], [1, 1, 0], [2, 0, 0]]) {
    const hdr = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0x00, ...v]);
    framingError(() => newParser().parser.push(hdr), 'ERR_PROTOCOL_VERSION', 'amqp:not-implemented');
  }
  // SASL with a wrong version too
  framingError(() => newParser().parser.push(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0x03, 0x01, 0x00, 0x01])), 'ERR_PROTOCOL_VERSION');
});

test('unsupported protocol id (TLS = 2, others): ERR_PROTOCOL_ID, detected with 5 bytes', () => {
  for (const id of [1, 2, 4, 0xff]) {
    const r = newParser();
    framingError(() => r.parser.push(Buffer.from([0x41, 0x4d, 0x51, 0x50, id])), 'ERR_PROTOCOL_ID', 'amqp:not-implemented');
  }
});

test('frame over max-frame-size: ERR_FRAME_TOO_LARGE from its 8-byte header, before the body', () => {
  const r = newParser(512);
  r.parser.push(AMQP_HEADER);
  const big = frame(FRAME_AMQP, 0, Buffer.alloc(600));
  framingError(() => r.parser.push(big.subarray(0, 8)), 'ERR_FRAME_TOO_LARGE', 'amqp:connection:framing-error');
  // one over the limit
  const r2 = newParser(512);
  r2.parser.push(AMQP_HEADER);
  const over = frame(FRAME_AMQP, 0, Buffer.alloc(512 - 8 + 1));
  framingError(() => r2.parser.push(over.subarray(0, 8)), 'ERR_FRAME_TOO_LARGE');
  // a 4 GiB size is refused without buffering anything
  const r3 = newParser(512);
  r3.parser.push(AMQP_HEADER);
  framingError(() => r3.parser.push(Buffer.from([0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0])), 'ERR_FRAME_TOO_LARGE');
});

test('frame of exactly max-frame-size is accepted, in any split', () => {
  const f = frame(FRAME_AMQP, 4, pattern(512 - 8, 3));
  const stream = Buffer.concat([AMQP_HEADER, f]);
  for (let i = 0; i <= stream.length; i += 7) {
    const r = newParser(512);
    feed(r, [stream.subarray(0, i), stream.subarray(i)]);
    assert.equal(r.units[1], { kind: 'frame', type: 0, channel: 4, body: pattern(504, 3).toString('hex') });
  }
});

test('maxFrameSize can be changed between frames (negotiated at open)', () => {
  const r = newParser(1 << 20);
  r.parser.push(Buffer.concat([AMQP_HEADER, frame(0, 0, Buffer.alloc(1000))]));
  assert.is(r.units.length, 2);
  r.parser.maxFrameSize = 512;
  framingError(() => r.parser.push(frame(0, 0, Buffer.alloc(1000))), 'ERR_FRAME_TOO_LARGE');
});

test('size < 8 or bad doff: ERR_FRAME_MALFORMED', () => {
  const bad: [string, number[]][] = [
    ['size 0', [0, 0, 0, 0, 2, 0, 0, 0]],
    ['size 7', [0, 0, 0, 7, 2, 0, 0, 0]],
    ['doff 0', [0, 0, 0, 8, 0, 0, 0, 0]],
    ['doff 1', [0, 0, 0, 8, 1, 0, 0, 0]],
    ['doff 3 in an 8-byte frame', [0, 0, 0, 8, 3, 0, 0, 0]],
    ['doff 4 in an 12-byte frame', [0, 0, 0, 12, 4, 0, 0, 0, 0, 0, 0, 0]],
  ];
  for (const [what, bytes] of bad) {
    const r = newParser(512);
    r.parser.push(AMQP_HEADER);
    framingError(() => r.parser.push(Buffer.from(bytes)), 'ERR_FRAME_MALFORMED', 'amqp:connection:framing-error');
    assert.is(r.units.length, 1, what);
  }
});

test('heartbeat frames (empty body) reach the sink with bodyStart === end', () => {
  const r = newParser(512);
  const starts: [number, number][] = [];
  const sink: FrameSink = {
    onProtocolHeader: () => undefined,
    onFrame: (_t, _c, _b, s, e) => starts.push([s, e]),
  };
  const p = new FrameParser(sink, 512);
  const hb = Buffer.from([0, 0, 0, 8, 2, 0, 0, 0]);
  p.push(Buffer.concat([AMQP_HEADER, hb, hb, frame(0, 0, Buffer.alloc(0), 3)]));
  assert.is(starts.length, 3);
  for (const [s, e] of starts) assert.is(s, e);
  assert.is(r.units.length, 0);
});

test('buffered reports the bytes held for an incomplete frame', () => {
  const r = newParser();
  r.parser.push(AMQP_HEADER);
  const f = frame(0, 0, pattern(100, 1));
  r.parser.push(f.subarray(0, 5));
  assert.is(r.parser.buffered, 5);
  r.parser.push(f.subarray(5, 60));
  assert.is(r.parser.buffered, 60);
  r.parser.push(f.subarray(60));
  assert.is(r.parser.buffered, 0);
  assert.is(r.units.length, 2);
});

test('frames before the header are refused (the header is checked first)', () => {
  framingError(() => newParser().parser.push(frame(0, 0, Buffer.alloc(4))), 'ERR_PROTOCOL_HEADER');
});

test.run();
