/**
 * The server-side connection engine (amqp/engine/connection.ts), driven with raw client
 * bytes built with the codec Writer and the write* functions of performatives.ts (client role
 * bits: a sending client attaches with role=false, a receiving client with role=true). The
 * engine's output is parsed back with FrameParser + a generic decode of each performative.
 *
 * Tests whose name starts with "BUG:" fail against the current code; each documents a defect.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Described, Reader, Writer } from '../../amqp/codec';
import { AMQP_HEADER, FrameParser, FrameSink, SASL_HEADER } from '../../amqp/frames';
import {
  AttachFrame, STATE, TerminusOut, beginFrame, endFrame, scan, scanPerformative, writeAttach, writeBegin, writeClose,
  writeDetach, writeDisposition, writeEnd, writeFlow, writeOpen, writeSaslInit,
} from '../../amqp/performatives';
import {
  ByteBudget, CloseReason, Connection, ConnectionHandler, ConnectionOptions, InDelivery, Link, LinkGoneReason, OutDelivery,
} from '../../amqp/engine/connection';
import type { AmqpError } from '../../amqp/performatives';

// Performative codes
const OPEN = 0x10, BEGIN = 0x11, ATTACH = 0x12, FLOW = 0x13, TRANSFER = 0x14, DISPOSITION = 0x15, DETACH = 0x16, END = 0x17, CLOSE = 0x18;
const SASL_MECHANISMS = 0x40, SASL_OUTCOME = 0x44;

const OPTS: ConnectionOptions = {
  containerId: 'router-A',
  maxFrameSize: 16384,
  channelMax: 9,
  idleTimeoutMs: 0,
  maxMessageSize: 1 << 20,
  handleMax: 63,
  saslMechanisms: [],
  requireSasl: false,
  offeredCapabilities: ['ANONYMOUS-RELAY'],
  properties: { product: 'amqp-mesh-test' },
  incomingWindow: 100,
};

// ---------------------------------------------------------------------------------------------
// Recording handler

class Handler implements ConnectionHandler {
  opens = 0;
  attaches: { link: Link; a: AttachFrame }[] = [];
  flows: { link: Link; drain: boolean; credit: number }[] = [];
  deliveries: InDelivery[] = [];
  payloads: Buffer[] = [];
  outcomes: { d: OutDelivery; code: number; state: Buffer | null; settled: boolean }[] = [];
  inSettled: InDelivery[] = [];
  gone: { link: Link; error: AmqpError | null; reason: LinkGoneReason }[] = [];
  closed: { reason: CloseReason; error: AmqpError | null }[] = [];
  logs: string[] = [];
  /** Credit granted to a client's sending link on attach. */
  creditOnAttach = 10;
  /** What to do on attach; default accepts (and grants credit to incoming links). */
  attachAction: ((link: Link, a: AttachFrame) => void) | null = null;
  /** Called for every delivery (e.g. to settle it). */
  deliveryAction: ((d: InDelivery) => void) | null = null;

  onOpen(): void {
    this.opens++;
  }
  onAttach(link: Link, a: AttachFrame): void {
    this.attaches.push({ link, a });
    if (this.attachAction) return this.attachAction(link, a);
    link.accept({}, a);
    if (!link.isSender && this.creditOnAttach > 0) link.conn.setCredit(link, this.creditOnAttach);
  }
  onFlow(link: Link, drain: boolean): void {
    this.flows.push({ link, drain, credit: link.credit });
  }
  onDelivery(_link: Link, d: InDelivery): void {
    this.deliveries.push(d);
    this.payloads.push(Buffer.from(d.payload)); // copy: the payload may be a view of a chunk
    if (this.deliveryAction) this.deliveryAction(d);
  }
  onOutcome(d: OutDelivery, code: number, state: Buffer | null, settled: boolean): void {
    this.outcomes.push({ d, code, state: state && Buffer.from(state), settled });
  }
  onInSettled(d: InDelivery): void {
    this.inSettled.push(d);
  }
  sessionWritable = 0;
  onSessionWritable(): void {
    this.sessionWritable++;
  }
  onLinkGone(link: Link, error: AmqpError | null, reason: LinkGoneReason): void {
    this.gone.push({ link, error, reason });
  }
  onClosed(_conn: Connection, reason: CloseReason, error: AmqpError | null): void {
    this.closed.push({ reason, error });
  }
  log(level: string, msg: string): void {
    this.logs.push(`${level}: ${msg}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Parsing the engine's output

interface Frame {
  type: number;
  channel: number;
  /** Performative code, or -1 for a heartbeat. */
  code: number;
  fields: unknown[];
  payload: Buffer;
  /** Raw frame size on the wire. */
  size: number;
  /** Raw encoded performative field i (scanPerformative spans). */
  raw: (Buffer | null)[];
}

class Peer implements FrameSink {
  readonly parser: FrameParser;
  headers: number[] = [];
  frames: Frame[] = [];
  constructor(maxFrameSize = 1 << 30) {
    this.parser = new FrameParser(this, maxFrameSize);
  }
  onProtocolHeader(id: number): void {
    this.headers.push(id);
  }
  onFrame(type: number, channel: number, buf: Buffer, start: number, end: number): void {
    const size = end - start + 8; // our engine always writes doff 2
    if (start === end) {
      this.frames.push({ type, channel, code: -1, fields: [], payload: Buffer.alloc(0), size, raw: [] });
      return;
    }
    const r = new Reader(buf, start, end);
    const v = r.read();
    assert.instance(v, Described, 'a frame body starts with a described performative');
    const d = v as Described;
    // raw field spans, as a peer would see them on the wire
    scanPerformative(buf, start, end);
    const raw: (Buffer | null)[] = [];
    for (let i = 0; i < scan.count; i++) raw.push(Buffer.from(buf.subarray(scan.starts[i], scan.ends[i])));
    const fields = (d.value as unknown[]) ?? [];
    this.frames.push({ type, channel, code: Number(d.descriptor), fields, payload: Buffer.from(buf.subarray(r.off, end)), size, raw });
    if (type === 1 && Number(d.descriptor) === SASL_OUTCOME && (fields[0] as number) === 0) this.parser.expectHeader();
  }
  /** Frames with `code`. */
  of(code: number): Frame[] {
    return this.frames.filter((f) => f.code === code);
  }
}

/** An AMQP error field decoded generically: Described(0x1d, [condition, description, info]). */
function errorOf(v: unknown): { condition: string; description: unknown } | null {
  if (v === null || v === undefined) return null;
  assert.instance(v, Described);
  const d = v as Described;
  assert.is(Number(d.descriptor), 0x1d);
  const f = d.value as unknown[];
  return { condition: f[0] as string, description: f[1] };
}

// ---------------------------------------------------------------------------------------------
// Client side

class Client {
  readonly w = new Writer(256);
  header(): this {
    this.w.bytes(AMQP_HEADER);
    return this;
  }
  saslHeader(): this {
    this.w.bytes(SASL_HEADER);
    return this;
  }
  saslInit(mech: string, resp: Buffer | null): this {
    writeSaslInit(this.w, mech, resp, 'localhost');
    return this;
  }
  open(maxFrameSize = 65536, idleTimeout = 0): this {
    writeOpen(this.w, { containerId: 'client-1', hostname: 'localhost', maxFrameSize, channelMax: 255, idleTimeout });
    return this;
  }
  begin(ch = 0, incomingWindow = 1000): this {
    writeBegin(this.w, ch, null, 0, incomingWindow, 1000, 1023);
    return this;
  }
  /** A sending client: role=false, target address. */
  attachSender(ch: number, handle: number, address: string | null, name = `snd-${handle}`, settleMode = 0): this {
    writeAttach(this.w, ch, {
      name, handle, role: false, sndSettleMode: settleMode, rcvSettleMode: 0,
      source: { type: 'source', address: 'client-src' }, target: address === null ? null : { type: 'target', address },
      initialDeliveryCount: 0,
    });
    return this;
  }
  /** A receiving client: role=true, source address (with capabilities, to check the echo). */
  attachReceiver(ch: number, handle: number, source: TerminusOut, name = `rcv-${handle}`): this {
    writeAttach(this.w, ch, {
      name, handle, role: true, sndSettleMode: 0, rcvSettleMode: 0,
      source, target: { type: 'target', address: null },
    });
    return this;
  }
  flow(ch: number, handle: number, deliveryCount: number, credit: number, drain = false, nextIncomingId = 0, incomingWindow = 1000): this {
    writeFlow(this.w, ch, nextIncomingId, incomingWindow, 0, 1000, handle, deliveryCount, credit, drain);
    return this;
  }
  /** A transfer frame; `first` frames carry delivery-id/tag/format. */
  transfer(ch: number, handle: number, id: number | null, payload: Buffer, o: { more?: boolean; settled?: boolean; aborted?: boolean } = {}): this {
    const w = this.w;
    const f = beginFrame(w, 0, ch);
    w.descriptor(TRANSFER);
    const m = w.beginList();
    w.uint(handle);
    if (id === null) {
      w.null();
      w.null();
      w.null();
    } else {
      w.uint(id);
      w.binary(Buffer.from(`tag-${id}`));
      w.uint(0);
    }
    w.boolean(!!o.settled);
    w.boolean(!!o.more);
    let n = 6;
    if (o.aborted) {
      w.null(); // rcv-settle-mode
      w.null(); // state
      w.null(); // resume
      w.boolean(true);
      n = 10;
    }
    w.endList(m, n);
    w.bytes(payload);
    endFrame(w, f);
    return this;
  }
  disposition(ch: number, first: number, last: number, settled: boolean, state: Buffer | null, role = true): this {
    writeDisposition(this.w, ch, role, first, last, settled, state);
    return this;
  }
  detach(ch: number, handle: number, closed = true): this {
    writeDetach(this.w, ch, handle, closed, null);
    return this;
  }
  end(ch: number): this {
    writeEnd(this.w, ch, null);
    return this;
  }
  close(): this {
    writeClose(this.w, null);
    return this;
  }
  take(): Buffer {
    return this.w.take();
  }
}

class Harness {
  readonly h = new Handler();
  readonly conn: Connection;
  readonly peer = new Peer();
  readonly c = new Client();
  now = 0;
  constructor(opts: Partial<ConnectionOptions> = {}) {
    this.conn = new Connection({ ...OPTS, ...opts }, this.h, this.now);
  }
  /** Sends what the client wrote (optionally in pieces) and parses the engine's output. */
  send(split = 0): this {
    const bytes = this.c.take();
    if (split > 0) for (let i = 0; i < bytes.length; i += split) this.conn.onBytes(bytes.subarray(i, i + split), this.now);
    else this.conn.onBytes(bytes, this.now);
    return this.pump();
  }
  pump(): this {
    const out = this.conn.takeOutput();
    if (out) {
      this.peer.parser.push(out);
      this.conn.noteOutput(this.now);
    }
    return this;
  }
  /** Header + open + begin(0). */
  open(maxFrameSize = 65536, idleTimeout = 0): this {
    this.c.header().open(maxFrameSize, idleTimeout).begin(0);
    return this.send();
  }
  last(code: number): Frame {
    const fs = this.peer.of(code);
    assert.ok(fs.length > 0, `expected a frame 0x${code.toString(16)}; got ${this.peer.frames.map((f) => f.code.toString(16)).join(',')}`);
    return fs[fs.length - 1];
  }
}

function payload(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed) & 0xff;
  return b;
}

// ---------------------------------------------------------------------------------------------
// Header and open

test('header exchange: AMQP header answered with the AMQP header, then open with our limits', () => {
  const t = new Harness({ idleTimeoutMs: 30000 });
  t.c.header();
  t.send();
  assert.equal(t.peer.headers, [0]);
  assert.is(t.peer.frames.length, 0, 'nothing but the header before the peer opens');
  t.c.open(4096);
  t.send();
  const open = t.last(OPEN);
  assert.is(open.channel, 0);
  assert.is(open.fields[0], 'router-A');
  assert.is(open.fields[2], 16384, 'max-frame-size');
  assert.is(open.fields[3], 9, 'channel-max');
  assert.is(open.fields[4], 30000, 'idle-timeout');
  assert.equal(open.fields[7], 'ANONYMOUS-RELAY');
  assert.equal(open.fields[9], { product: 'amqp-mesh-test' });
  assert.is(t.h.opens, 1);
  assert.is(t.conn.isOpen, true);
  assert.is(t.conn.remoteOpen?.containerId, 'client-1');
  assert.is(t.conn.peerMaxFrameSize, 4096);
  assert.is(t.conn.user, 'anonymous');
});

test('header and open delivered one byte at a time', () => {
  const t = new Harness();
  t.c.header().open().begin(0);
  t.send(1);
  assert.equal(t.peer.headers, [0]);
  assert.equal(t.peer.frames.map((f) => f.code), [OPEN, BEGIN]);
});

test('HTTP instead of AMQP: the engine answers with its header and closes (framing-error)', () => {
  const t = new Harness();
  t.conn.onBytes(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 0);
  const out = t.conn.takeOutput();
  assert.ok(out);
  assert.is(out.toString('hex'), AMQP_HEADER.toString('hex'));
  assert.is(t.conn.closed, true);
  assert.equal(t.h.closed.map((c) => c.reason), ['framing-error']);
  assert.is(t.h.closed[0].error?.condition, 'amqp:connection:framing-error');
  // further bytes are ignored
  t.conn.onBytes(AMQP_HEADER, 1);
  assert.is(t.conn.takeOutput(), null);
});

test('wrong AMQP version: closed, condition amqp:not-implemented', () => {
  const t = new Harness();
  t.conn.onBytes(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 2, 0, 0]), 0);
  assert.is(t.conn.closed, true);
  assert.is(t.h.closed[0].error?.condition, 'amqp:not-implemented');
});

test('first frame must be open', () => {
  const t = new Harness();
  t.c.header().begin(0);
  t.send();
  const close = t.last(CLOSE);
  assert.is(errorOf(close.fields[0])?.condition, 'amqp:illegal-state');
  // an open is written first so the close is legal
  assert.equal(t.peer.frames.map((f) => f.code), [OPEN, CLOSE]);
  assert.equal(t.h.closed.map((c) => c.reason), ['protocol-error']);
});

// ---------------------------------------------------------------------------------------------
// SASL

function saslHarness(opts: Partial<ConnectionOptions> = {}): Harness {
  return new Harness({ saslMechanisms: ['ANONYMOUS', 'PLAIN'], ...opts });
}

test('SASL ANONYMOUS: mechanisms offered as an array, outcome ok, then the AMQP layer', () => {
  const t = saslHarness();
  t.c.saslHeader();
  t.send();
  assert.equal(t.peer.headers, [3]);
  const mechs = t.last(SASL_MECHANISMS);
  assert.is(mechs.type, 1, 'SASL frame type');
  assert.equal(mechs.fields[0], ['ANONYMOUS', 'PLAIN']);
  t.c.saslInit('ANONYMOUS', null);
  t.send();
  const outcome = t.last(SASL_OUTCOME);
  assert.is(outcome.fields[0], 0, 'ok');
  t.c.header().open().begin(0);
  t.send();
  assert.equal(t.peer.headers, [3, 0]);
  assert.equal(t.peer.frames.map((f) => f.code), [SASL_MECHANISMS, SASL_OUTCOME, OPEN, BEGIN]);
  assert.is(t.conn.user, 'anonymous');
  assert.is(t.h.opens, 1);
});

test('SASL pipelined: header, init, AMQP header and open in one chunk (and byte by byte)', () => {
  for (const split of [0, 1, 3]) {
    const t = saslHarness();
    t.c.saslHeader().saslInit('ANONYMOUS', null).header().open().begin(0);
    t.send(split);
    assert.equal(t.peer.headers, [3, 0], `split ${split}`);
    assert.equal(t.peer.frames.map((f) => f.code), [SASL_MECHANISMS, SASL_OUTCOME, OPEN, BEGIN], `split ${split}`);
  }
});

test('SASL PLAIN with good credentials: checkPlain gets user and password; identity kept', () => {
  const calls: [string, string][] = [];
  const t = saslHarness({ checkPlain: (u, p) => (calls.push([u, p]), u === 'alice' && p === 's3cret') });
  t.c.saslHeader().saslInit('PLAIN', Buffer.from('\0alice\0s3cret')).header().open();
  t.send();
  assert.equal(calls, [['alice', 's3cret']]);
  assert.is(t.last(SASL_OUTCOME).fields[0], 0);
  assert.is(t.conn.user, 'alice');
  assert.is(t.h.opens, 1);
  assert.is(t.conn.closed, false);
});

test('SASL PLAIN with bad credentials: outcome auth (1), closed auth-failed, nothing after', () => {
  const t = saslHarness({ checkPlain: () => false });
  t.c.saslHeader().saslInit('PLAIN', Buffer.from('\0alice\0wrong')).header().open();
  t.send();
  assert.is(t.last(SASL_OUTCOME).fields[0], 1);
  assert.is(t.conn.closed, true);
  assert.equal(t.h.closed.map((c) => [c.reason, c.error?.condition]), [['auth-failed', 'amqp:unauthorized-access']]);
  assert.equal(t.peer.headers, [3], 'no AMQP header after a failed SASL');
  assert.is(t.peer.of(OPEN).length, 0);
  assert.is(t.h.opens, 0);
  assert.is(t.conn.user, null);
});

test('SASL PLAIN malformed response, or a mechanism not offered: authentication fails', () => {
  for (const [mech, resp] of [['PLAIN', Buffer.from('alice:pw')], ['PLAIN', null], ['EXTERNAL', null], ['CRAM-MD5', Buffer.from('x')]] as const) {
    let called = false;
    const t = saslHarness({ checkPlain: () => (called = true) });
    t.c.saslHeader().saslInit(mech, resp as Buffer | null);
    t.send();
    assert.is(t.last(SASL_OUTCOME).fields[0], 1, `${mech} ${resp}`);
    assert.is(called, false);
    assert.is(t.conn.closed, true);
  }
});

test('requireSasl: a plain AMQP header is answered with the SASL header and refused', () => {
  const t = saslHarness({ requireSasl: true });
  t.c.header().open();
  t.send();
  assert.equal(t.peer.headers, [3]);
  assert.is(t.peer.frames.length, 0);
  assert.equal(t.h.closed.map((c) => c.reason), ['auth-failed']);
});

test('BUG: SASL header on a listener without SASL: exactly one AMQP header is written', () => {
  // onProtocolHeader writes AMQP_HEADER and throws; fail() -> close() sees state AwaitHeader
  // and writes AMQP_HEADER a second time: the peer receives "AMQP\0\1\0\0AMQP\0\1\0\0".
  const t = new Harness({ saslMechanisms: [] });
  t.conn.onBytes(SASL_HEADER, 0);
  const out = t.conn.takeOutput();
  assert.ok(out);
  assert.is(out.toString('hex'), AMQP_HEADER.toString('hex'));
  assert.is(t.conn.closed, true);
});

// ---------------------------------------------------------------------------------------------
// Begin and attach

test('begin reply names the client channel; channels beyond channel-max close the connection', () => {
  const t = new Harness();
  t.c.header().open().begin(3);
  t.send();
  const b = t.last(BEGIN);
  assert.is(b.fields[0], 3, 'remote-channel = client channel');
  assert.is(b.fields[2], 100, 'incoming-window');
  assert.is(b.fields[4], 63, 'handle-max');
  const t2 = new Harness();
  t2.c.header().open().begin(10);
  t2.send();
  assert.is(errorOf(t2.last(CLOSE).fields[0])?.condition, 'amqp:connection:framing-error');
});

test('attach reply echoes the client\'s source byte for byte (receiving client)', () => {
  const t = new Harness();
  t.open();
  const src: TerminusOut = { type: 'source', address: 'queue/a', capabilities: ['queue', 'shared'], expiryPolicy: 'link-detach', durable: 1 };
  t.c.attachReceiver(0, 5, src);
  // the client's encoded source, for comparison
  const w = new Writer();
  writeAttach(w, 0, { name: 'x', handle: 0, role: true, sndSettleMode: 0, rcvSettleMode: 0, source: src, target: null });
  const clientAttach = w.take();
  scanPerformative(clientAttach, 8, clientAttach.length);
  const clientSource = Buffer.from(clientAttach.subarray(scan.starts[5], scan.ends[5]));
  t.send();
  assert.is(t.h.attaches.length, 1);
  const { link, a } = t.h.attaches[0];
  assert.is(link.isSender, true, 'a receiving client means we send');
  assert.is(a.source?.address, 'queue/a');
  assert.equal(a.source?.capabilities, ['queue', 'shared']);
  const reply = t.last(ATTACH);
  assert.is(reply.fields[0], 'rcv-5');
  assert.is(reply.fields[1], link.handle, 'our handle');
  assert.is(reply.fields[2], false, 'role sender');
  assert.is(reply.fields[9], 0, 'initial-delivery-count');
  // source bytes identical
  const replyBytes = rawField(t, ATTACH, 5);
  assert.is(replyBytes.toString('hex'), clientSource.toString('hex'));
});

/** The raw bytes of field i of the last frame with `code` in the engine output so far. */
function rawField(t: Harness, code: number, i: number): Buffer {
  const r = t.last(code).raw[i];
  assert.ok(r, `field ${i} present`);
  return r;
}

test('attach reply for a sending client: role receiver, max-message-size, target echoed, credit flow', () => {
  const t = new Harness({ maxMessageSize: 5000 });
  t.open();
  t.c.attachSender(0, 0, 'orders');
  t.send();
  const { link, a } = t.h.attaches[0];
  assert.is(link.isSender, false);
  assert.is(a.target?.address, 'orders');
  const reply = t.last(ATTACH);
  assert.is(reply.fields[2], true, 'role receiver');
  assert.is(reply.fields[10], 5000, 'max-message-size');
  assert.is(reply.fields[9], null, 'a receiver sends no initial-delivery-count');
  const tgt = reply.fields[6] as Described;
  assert.instance(tgt, Described);
  assert.equal((tgt.value as unknown[])[0], 'orders');
  const flow = t.last(FLOW);
  assert.is(flow.fields[4], link.handle);
  assert.is(flow.fields[5], 0, 'delivery-count');
  assert.is(flow.fields[6], 10, 'link-credit');
});

test('refused attach: reply with a null terminus, then detach with the error', () => {
  const t = new Harness();
  t.h.attachAction = (link, a) => link.refuse({ condition: 'amqp:not-found', description: 'no such address' }, a);
  t.open();
  t.c.attachReceiver(0, 1, { type: 'source', address: 'nope' });
  t.send();
  const att = t.last(ATTACH);
  assert.is(att.fields[5], null, 'null source');
  const det = t.last(DETACH);
  assert.is(det.fields[1], true);
  assert.is(errorOf(det.fields[2])?.condition, 'amqp:not-found');
  assert.is(t.h.gone.length, 0, 'never attached: no link-gone event');
  // the client answers the detach: no second detach from us
  t.c.detach(0, 1);
  t.send();
  assert.is(t.peer.of(DETACH).length, 1);
});

test('BUG: attach with a handle beyond handle-max closes the connection with framing-error', () => {
  // AMQP 1.0 2.7.2 (begin, handle-max): "A peer that receives a handle outside the supported
  // range MUST close the connection with the framing-error error-code." The engine throws a
  // SessionError and only ends the session.
  const t = new Harness({ handleMax: 7 });
  t.open();
  t.c.attachSender(0, 8, 'q');
  t.send();
  const close = t.peer.of(CLOSE);
  assert.is(close.length, 1, `expected close, got ${t.peer.frames.map((f) => f.code.toString(16)).join(',')}`);
  assert.is(errorOf(close[0].fields[0])?.condition, 'amqp:connection:framing-error');
});

test('attach on a handle already in use ends the session with handle-in-use', () => {
  const t = new Harness();
  t.open();
  t.c.attachSender(0, 2, 'q').attachSender(0, 2, 'q', 'other');
  t.send();
  const end = t.last(END);
  assert.is(errorOf(end.fields[0])?.condition, 'amqp:session:handle-in-use');
  assert.equal(t.h.gone.map((g) => g.reason), ['session-ended']);
});

// ---------------------------------------------------------------------------------------------
// Incoming transfers

function withSender(opts: Partial<ConnectionOptions> = {}, credit = 10): Harness {
  const t = new Harness(opts);
  t.h.creditOnAttach = credit;
  t.open();
  t.c.attachSender(0, 0, 'q');
  t.send();
  return t;
}

test('single-frame transfer arrives as one delivery with its payload, id and settled flag', () => {
  const t = withSender();
  const p = payload(300);
  t.c.transfer(0, 0, 0, p).transfer(0, 0, 1, payload(5, 2), { settled: true });
  t.send();
  assert.is(t.h.deliveries.length, 2);
  assert.is(t.h.payloads[0].toString('hex'), p.toString('hex'));
  assert.equal([t.h.deliveries[0].id, t.h.deliveries[0].settled], [0, false]);
  assert.equal([t.h.deliveries[1].id, t.h.deliveries[1].settled], [1, true]);
  assert.is(t.conn.deliveriesIn, 2);
  assert.is(t.h.deliveries[0].link.credit, 8);
});

test('a transfer split over 3 frames (more=true) arrives as one delivery', () => {
  for (const split of [0, 1, 13]) {
    const t = withSender();
    const p = payload(3000);
    t.c.transfer(0, 0, 0, p.subarray(0, 1000), { more: true })
      .transfer(0, 0, null, p.subarray(1000, 2000), { more: true })
      .transfer(0, 0, null, p.subarray(2000));
    t.send(split);
    assert.is(t.h.deliveries.length, 1, `split ${split}`);
    assert.is(t.h.payloads[0].toString('hex'), p.toString('hex'));
    assert.is(t.h.deliveries[0].id, 0);
    assert.is(t.h.deliveries[0].link.credit, 9, 'one delivery consumes one credit');
  }
});

test('multi-frame delivery interleaved with a delivery on another link', () => {
  const t = withSender();
  t.c.attachSender(0, 1, 'q2');
  t.send();
  const a = payload(100, 1), b = payload(50, 2);
  t.c.transfer(0, 0, 0, a.subarray(0, 60), { more: true }).transfer(0, 1, 1, b).transfer(0, 0, null, a.subarray(60));
  t.send();
  assert.equal(t.h.payloads.map((x) => x.toString('hex')), [b.toString('hex'), a.toString('hex')]);
});

test('aborted multi-frame delivery is dropped', () => {
  const t = withSender();
  t.c.transfer(0, 0, 0, payload(10), { more: true }).transfer(0, 0, null, Buffer.alloc(0), { aborted: true });
  t.c.transfer(0, 0, 1, payload(4, 9));
  t.send();
  assert.is(t.h.deliveries.length, 1);
  assert.is(t.h.deliveries[0].id, 1);
});

test('transfer without credit: detach with amqp:link:transfer-limit-exceeded', () => {
  const t = withSender({}, 0);
  assert.is(t.peer.of(FLOW).length, 0, 'no credit given');
  t.c.transfer(0, 0, 0, payload(10));
  t.send();
  assert.is(t.h.deliveries.length, 0);
  const det = t.last(DETACH);
  assert.is(det.fields[0], t.h.attaches[0].link.handle);
  assert.is(det.fields[1], true, 'closed');
  assert.is(errorOf(det.fields[2])?.condition, 'amqp:link:transfer-limit-exceeded');
  assert.is(t.h.gone.length, 1);
  assert.is(t.h.gone[0].error?.condition, 'amqp:link:transfer-limit-exceeded');
  assert.is(t.conn.closed, false, 'only the link is detached');
});

test('transfer past the granted credit: the extra delivery detaches the link', () => {
  const t = withSender({}, 2);
  t.c.transfer(0, 0, 0, payload(1)).transfer(0, 0, 1, payload(1)).transfer(0, 0, 2, payload(1));
  t.send();
  assert.is(t.h.deliveries.length, 2);
  assert.is(errorOf(t.last(DETACH).fields[2])?.condition, 'amqp:link:transfer-limit-exceeded');
});

test('tolerateCreditOverrun (route-container connections): a transfer past the credit is taken and counted', () => {
  const t = withSender({ tolerateCreditOverrun: true }, 2);
  t.c.transfer(0, 0, 0, payload(1)).transfer(0, 0, 1, payload(1)).transfer(0, 0, 2, payload(1));
  t.send();
  assert.is(t.h.deliveries.length, 3);
  assert.is(t.peer.of(DETACH).length, 0, 'the link stays');
  assert.is(t.conn.creditOverruns, 1);
});

test('transfer on an unknown handle: end with amqp:session:unattached-handle', () => {
  const t = withSender();
  t.c.transfer(0, 9, 0, payload(10));
  t.send();
  const end = t.last(END);
  assert.is(end.channel, 0);
  assert.is(errorOf(end.fields[0])?.condition, 'amqp:session:unattached-handle');
  assert.is(t.conn.closed, false, 'only the session ends');
  assert.equal(t.h.gone.map((g) => g.reason), ['session-ended']);
});

test('flow or detach on an unknown handle: end with amqp:session:unattached-handle', () => {
  for (const act of ['flow', 'detach'] as const) {
    const t = withSender();
    if (act === 'flow') t.c.flow(0, 42, 0, 5);
    else t.c.detach(0, 42);
    t.send();
    assert.is(errorOf(t.last(END).fields[0])?.condition, 'amqp:session:unattached-handle', act);
    assert.is(t.conn.closed, false);
  }
});

test('frames on a channel without a session close the connection', () => {
  const t = withSender();
  t.c.transfer(5, 0, 0, payload(1));
  t.send();
  assert.is(errorOf(t.last(CLOSE).fields[0])?.condition, 'amqp:connection:framing-error');
  assert.is(t.conn.closed, true);
});

test('oversized message: detach with amqp:link:message-size-exceeded (single and multi-frame)', () => {
  const t = withSender({ maxMessageSize: 1000 });
  t.c.transfer(0, 0, 0, payload(1001));
  t.send();
  assert.is(t.h.deliveries.length, 0);
  assert.is(errorOf(t.last(DETACH).fields[2])?.condition, 'amqp:link:message-size-exceeded');

  const t2 = withSender({ maxMessageSize: 1000 });
  t2.c.transfer(0, 0, 0, payload(600), { more: true }).transfer(0, 0, null, payload(600), { more: true }).transfer(0, 0, null, payload(10));
  t2.send();
  assert.is(t2.h.deliveries.length, 0);
  assert.is(errorOf(t2.last(DETACH).fields[2])?.condition, 'amqp:link:message-size-exceeded');
  assert.is(t2.peer.of(DETACH).length, 1, 'one detach even though more frames followed');

  const t3 = withSender({ maxMessageSize: 1000 });
  t3.c.transfer(0, 0, 0, payload(1000));
  t3.send();
  assert.is(t3.h.deliveries.length, 1, 'exactly the limit is fine');
});

test('frame larger than our max-frame-size closes the connection with framing-error', () => {
  const t = withSender({ maxFrameSize: 1024 });
  t.c.transfer(0, 0, 0, payload(2000));
  t.send();
  assert.is(errorOf(t.last(CLOSE).fields[0])?.condition, 'amqp:connection:framing-error');
  assert.equal(t.h.closed.map((c) => c.reason), ['framing-error']);
});

test('session window: the handler hears "writable" when the peer\'s window reopens, not on every flow', () => {
  // Telling it on every flow made a client that grants credit link by link on N links cost N^2
  // (the handlers look at every link of the session).
  const t = new Harness();
  t.c.header().open().begin(0, 2);
  t.c.attachReceiver(0, 0, { type: 'source', address: 'q' });
  t.c.flow(0, 0, 0, 10, false, 0, 2);
  t.send();
  const link = t.h.attaches[0].link;
  const base = t.h.sessionWritable;
  for (let i = 0; i < 2; i++) {
    assert.ok(t.conn.canSend(link));
    t.conn.send(link, payload(10), true, null);
  }
  assert.not.ok(t.conn.canSend(link), 'the peer\'s window is used up');
  // Flows that leave the window shut, or keep it open, change nothing for the session.
  for (let i = 0; i < 5; i++) t.c.flow(0, 0, 2, 8, false, 2, 0);
  t.send();
  assert.is(t.h.sessionWritable, base);
  t.c.flow(0, 0, 2, 8, false, 2, 5);
  t.send();
  assert.is(t.h.sessionWritable, base + 1, 'reopened: once');
  assert.ok(t.conn.canSend(link));
  for (let i = 0; i < 5; i++) t.c.flow(0, 0, 2, 8, false, 2, 5 + i);
  t.send();
  assert.is(t.h.sessionWritable, base + 1, 'open all along: not again');
});

test('session window: a flow refreshes the incoming window before it runs out', () => {
  const t = withSender({ incomingWindow: 4 }, 100);
  const flowsBefore = t.peer.of(FLOW).length;
  for (let i = 0; i < 10; i++) t.c.transfer(0, 0, i, payload(3));
  t.send();
  assert.is(t.h.deliveries.length, 10, 'no window violation');
  // window 4, refreshed once it drops below half: after transfers 3, 6 and 9
  const flows = t.peer.of(FLOW).slice(flowsBefore);
  assert.equal(flows.map((f) => [f.fields[0], f.fields[1]]), [[3, 4], [6, 4], [9, 4]], 'next-incoming-id, incoming-window');
  for (const f of flows) assert.is(f.fields[4], undefined, 'session-only flow has no handle');
});

// ---------------------------------------------------------------------------------------------
// Dispositions from the engine

test('dispositions for consecutive deliveries with the same state coalesce into one range frame', () => {
  const t = withSender();
  t.h.deliveryAction = (d) => t.conn.updateIn(d, STATE.accepted, true);
  for (let i = 0; i < 5; i++) t.c.transfer(0, 0, i, payload(2));
  t.send();
  const disp = t.peer.of(DISPOSITION);
  assert.is(disp.length, 1);
  const f = disp[0].fields;
  assert.equal([f[0], f[1], f[2], f[3]], [true, 0, 4, true]);
  assert.instance(f[4], Described);
  assert.is(Number((f[4] as Described).descriptor), 0x24);
  assert.is(disp[0].channel, 0);
});

test('dispositions split on a different state, a gap in ids, or a settled flag change', () => {
  const t = withSender();
  for (let i = 0; i < 6; i++) t.c.transfer(0, 0, i, payload(2));
  t.send();
  const d = t.h.deliveries;
  t.conn.updateIn(d[0], STATE.accepted, true);
  t.conn.updateIn(d[1], STATE.accepted, true);
  t.conn.updateIn(d[2], STATE.released, true);
  t.conn.updateIn(d[4], STATE.released, true); // gap: 3 skipped
  t.conn.updateIn(d[5], STATE.released, false);
  t.pump();
  const got = t.peer.of(DISPOSITION).map((x) => [x.fields[1], x.fields[2], x.fields[3], Number((x.fields[4] as Described).descriptor)]);
  assert.equal(got, [[0, 1, true, 0x24], [2, null, true, 0x26], [4, null, true, 0x26], [5, null, false, 0x26]]);
});

test('BUG: no disposition is written on a channel after our end frame', () => {
  // A delivery is accepted (disposition queued for coalescing) and, in the same batch, a
  // protocol violation ends the session. takeOutput() flushes the pending disposition for every
  // session still in the map, including the one we just ended: the disposition follows the end
  // frame on that channel.
  const t = withSender();
  t.h.deliveryAction = (d) => t.conn.updateIn(d, STATE.accepted, true);
  t.c.transfer(0, 0, 0, payload(2)).transfer(0, 9, 1, payload(2)); // second: unknown handle
  t.send();
  const onCh0 = t.peer.frames.filter((f) => f.channel === 0).map((f) => f.code);
  const endAt = onCh0.lastIndexOf(END);
  assert.ok(endAt >= 0, 'session ended');
  assert.equal(onCh0.slice(endAt + 1), [], `frames after end on channel 0: ${onCh0.slice(endAt + 1).map((c) => c.toString(16))}`);
});

test('settled incoming deliveries (rcv-settle-mode second) are reported when the client settles', () => {
  const t = withSender();
  t.h.deliveryAction = (d) => t.conn.updateIn(d, STATE.accepted, false);
  t.c.transfer(0, 0, 0, payload(2));
  t.send();
  t.c.disposition(0, 0, 0, true, STATE.accepted, false);
  t.send();
  assert.is(t.h.inSettled.length, 1);
  assert.is(t.h.inSettled[0], t.h.deliveries[0]);
});

// ---------------------------------------------------------------------------------------------
// Outgoing deliveries

function withConsumer(clientMaxFrame = 65536, credit = 10): { t: Harness; link: Link } {
  const t = new Harness();
  t.open(clientMaxFrame);
  t.c.attachReceiver(0, 0, { type: 'source', address: 'q' });
  t.send();
  const link = t.h.attaches[0].link;
  if (credit > 0) {
    t.c.flow(0, 0, 0, credit);
    t.send();
  }
  return { t, link };
}

test('client flow gives credit to our sending link; drain is reported', () => {
  const { t, link } = withConsumer(65536, 7);
  assert.is(link.credit, 7);
  assert.equal(t.h.flows.map((f) => [f.credit, f.drain]), [[7, false]]);
  assert.is(t.conn.canSend(link), true);
  t.c.flow(0, 0, 0, 3, true);
  t.send();
  assert.equal(t.h.flows[1], { link, drain: true, credit: 3 });
});

test('send(): a small payload goes in one transfer frame with id, tag and settled flag', () => {
  const { t, link } = withConsumer();
  const p = payload(100);
  const od = t.conn.send(link, p, false, 'ctx-1');
  t.pump();
  const tr = t.peer.of(TRANSFER);
  assert.is(tr.length, 1);
  assert.equal(tr[0].fields.slice(0, 5).map((x, i) => (i === 2 ? (x as Buffer).length : x)), [link.handle, od.id, 4, 0, false]);
  assert.is(tr[0].fields[5], undefined, 'no more flag');
  assert.is(tr[0].payload.toString('hex'), p.toString('hex'));
  assert.is(link.credit, 9);
  assert.is(od.ctx, 'ctx-1');
});

test('send() with a delivery-state (a link-routed transactional send): field 7 of the first transfer, bytes as given', () => {
  const { t, link } = withConsumer();
  const p = payload(50);
  // transactional-state (0x34) with txn-id binary "tx1": as a client's transfer carries it.
  const state = Buffer.from([0x00, 0x53, 0x34, 0xc0, 0x06, 0x01, 0xa0, 0x03, 0x74, 0x78, 0x31]);
  t.conn.send(link, p, false, null, state);
  t.pump();
  const [tr] = t.peer.of(TRANSFER);
  assert.is(tr.fields[5], false, 'more');
  assert.is(tr.fields[6], null, 'rcv-settle-mode unset');
  assert.ok(tr.fields[7] !== null && tr.fields[7] !== undefined, 'state present');
  assert.is(tr.payload.toString('hex'), p.toString('hex'), 'the message is unchanged');
});

test('send() splits a payload larger than the peer\'s max-frame-size; frames fit, bytes join', () => {
  for (const size of [513, 2000, 10000]) {
    const { t, link } = withConsumer(512);
    assert.is(t.conn.peerMaxFrameSize, 512);
    const p = payload(size, 5);
    t.conn.send(link, p, false, null);
    const out = t.conn.takeOutput();
    assert.ok(out);
    const strict = new Peer(512); // a peer enforcing its own max-frame-size
    strict.parser.push(Buffer.concat([AMQP_HEADER, out]));
    const tr = strict.of(TRANSFER);
    assert.ok(tr.length >= Math.ceil(size / 512), `${size}: ${tr.length} frames`);
    for (const f of tr) assert.ok(f.size <= 512, `frame of ${f.size} bytes`);
    for (let i = 0; i < tr.length; i++) assert.is(tr[i].fields[5] === true, i < tr.length - 1, `more flag on frame ${i}`);
    assert.is(Buffer.concat(tr.map((f) => f.payload)).toString('hex'), p.toString('hex'));
    assert.is(tr[0].fields[1], 0, 'first frame has the delivery-id');
    assert.is(link.credit, 9, 'one credit per delivery, not per frame');
  }
});

test('outcome from the client reaches the handler with the exact state bytes', () => {
  const { t, link } = withConsumer();
  const od = t.conn.send(link, payload(10), false, null);
  const od2 = t.conn.send(link, payload(10), false, null);
  t.pump();
  const rejected = Buffer.from('005325c01001' + '00531dc00a01a307' + Buffer.from('amqp:xx').toString('hex'), 'hex');
  t.c.disposition(0, od.id, od2.id, true, rejected);
  t.send();
  assert.equal(t.h.outcomes.map((o) => [o.d, o.code, o.settled]), [[od, 0x25, true], [od2, 0x25, true]]);
  assert.is(t.h.outcomes[0].state?.toString('hex'), rejected.toString('hex'));
  // already settled: a repeated disposition is ignored
  t.c.disposition(0, od.id, od.id, true, STATE.accepted);
  t.send();
  assert.is(t.h.outcomes.length, 2);
});

test('drainComplete advances delivery-count by the unused credit and echoes drain', () => {
  const { t, link } = withConsumer(65536, 5);
  t.conn.send(link, payload(1), true, null);
  t.conn.drainComplete(link);
  t.pump();
  const f = t.last(FLOW);
  assert.equal([f.fields[5], f.fields[6], f.fields[8]], [5, 0, true]);
  assert.is(link.credit, 0);
  assert.is(t.conn.canSend(link), false);
});

// ---------------------------------------------------------------------------------------------
// Detach, end, close, idle

test('client detach: detach reply and link-gone (detached)', () => {
  const { t, link } = withConsumer();
  t.c.detach(0, 0);
  t.send();
  const det = t.last(DETACH);
  assert.is(det.fields[0], link.handle);
  assert.equal(t.h.gone.map((g) => [g.link, g.reason]), [[link, 'detached']]);
});

test('client end: end reply and links gone (session-ended)', () => {
  const { t, link } = withConsumer();
  t.c.end(0);
  t.send();
  assert.is(t.last(END).fields[0], undefined);
  assert.equal(t.h.gone.map((g) => [g.link, g.reason]), [[link, 'session-ended']]);
});

test('client close: close reply, links gone (connection-closed), onClosed client-closed', () => {
  const { t, link } = withConsumer();
  t.c.close();
  t.send();
  assert.is(t.peer.of(CLOSE).length, 1);
  assert.equal(t.h.gone.map((g) => [g.link, g.reason]), [[link, 'connection-closed']]);
  assert.equal(t.h.closed.map((c) => c.reason), ['client-closed']);
  assert.is(t.conn.closed, true);
});

test('idle timeout: no input for idle-timeout closes with amqp:resource-limit-exceeded', () => {
  const t = new Harness({ idleTimeoutMs: 1000 });
  t.open();
  t.now = 900;
  t.conn.onTick(900);
  t.pump();
  assert.is(t.peer.of(CLOSE).length, 0);
  // input resets the timer
  t.now = 950;
  t.c.w.bytes(Buffer.from([0, 0, 0, 8, 2, 0, 0, 0])); // heartbeat
  t.send();
  t.conn.onTick(1900);
  t.pump();
  assert.is(t.peer.of(CLOSE).length, 0, 'heartbeat counted as input');
  t.conn.onTick(1951);
  t.pump();
  const close = t.last(CLOSE);
  assert.is(errorOf(close.fields[0])?.condition, 'amqp:resource-limit-exceeded');
  assert.equal(t.h.closed.map((c) => c.reason), ['idle-timeout']);
});

test('heartbeats: an empty frame when quiet for half the peer\'s idle-timeout', () => {
  const t = new Harness();
  t.open(65536, 2000);
  const n = t.peer.frames.length;
  t.conn.onTick(999);
  t.pump();
  assert.is(t.peer.frames.length, n);
  t.conn.onTick(1000);
  t.pump();
  assert.is(t.peer.frames.length, n + 1);
  assert.is(t.peer.frames[n].code, -1, 'heartbeat');
  assert.is(t.peer.frames[n].size, 8);
});

test('close() from the router: dispositions flushed first, then close with the error', () => {
  const t = withSender();
  t.h.deliveryAction = (d) => t.conn.updateIn(d, STATE.accepted, true);
  t.c.transfer(0, 0, 0, payload(2));
  t.conn.onBytes(t.c.take(), 0);
  t.conn.close({ condition: 'amqp:connection:forced', description: 'bye' }, 'router-shutdown');
  t.pump();
  const codes = t.peer.frames.map((f) => f.code);
  assert.equal(codes.slice(-2), [DISPOSITION, CLOSE]);
  assert.is(errorOf(t.last(CLOSE).fields[0])?.condition, 'amqp:connection:forced');
  assert.equal(t.h.closed.map((c) => c.reason), ['router-shutdown']);
});

test('symbol arrays from the client (offered capabilities) decode in open', () => {
  const t = new Harness();
  const w = t.c.w;
  w.bytes(AMQP_HEADER);
  writeOpen(w, { containerId: 'c', maxFrameSize: 1024, channelMax: 1, idleTimeout: 0, offeredCapabilities: ['A', 'B'], desiredCapabilities: ['D'] });
  t.send();
  assert.equal(t.conn.remoteOpen?.offeredCapabilities, ['A', 'B']);
  assert.equal(t.conn.remoteOpen?.desiredCapabilities, ['D']);
});

// ---------------------------------------------------------------------------------------------
// Delivery-ids: consecutive per session

test('delivery-ids: consecutive per session across links; continuations repeat or omit the id', () => {
  const t = withSender();
  t.c.attachSender(0, 1, 'q2');
  t.send();
  // Proton and qdrouterd repeat the id on continuation frames; rhea omits it. Both are fine.
  t.c.transfer(0, 0, 5, payload(10), { more: true }).transfer(0, 1, 6, payload(3)).transfer(0, 0, 5, payload(10), { more: true })
    .transfer(0, 0, null, payload(10)).transfer(0, 1, 7, payload(3));
  t.send();
  assert.equal(t.h.deliveries.map((d) => d.id), [6, 5, 7]);
  assert.is(t.peer.of(END).length, 0);
  // The sequence wraps at 2^32.
  const w = withSender();
  w.c.transfer(0, 0, 0xffffffff, payload(1)).transfer(0, 0, 0, payload(1));
  w.send();
  assert.equal(w.h.deliveries.map((d) => d.id), [0xffffffff, 0]);
});

test('delivery-ids: a gap or a duplicate ends the session with amqp:session:invalid-field', () => {
  for (const [what, second] of [['gap', 2], ['duplicate', 0], ['backwards', 0xfffffff0]] as const) {
    const t = withSender();
    t.c.transfer(0, 0, 0, payload(2)).transfer(0, 0, second, payload(2));
    t.send();
    assert.is(t.h.deliveries.length, 1, `${what}: only the first delivery is taken`);
    const end = t.last(END);
    const err = errorOf(end.fields[0]);
    assert.is(err?.condition, 'amqp:session:invalid-field', what);
    assert.match(String(err?.description), new RegExp(`expected delivery-id 1, got ${second}`), what);
    assert.is(t.conn.closed, false, `${what}: only the session ends`);
  }
});

test('delivery-ids: a continuation frame carrying another delivery\'s id ends the session', () => {
  const t = withSender();
  t.c.transfer(0, 0, 0, payload(10), { more: true }).transfer(0, 0, 1, payload(10));
  t.send();
  assert.is(t.h.deliveries.length, 0);
  assert.is(errorOf(t.last(END).fields[0])?.condition, 'amqp:session:invalid-field');
  assert.is(t.conn.incompleteBytes, 0, 'the half delivery was freed with its session');
});

test('delivery-ids: transfers on a link we detached still count (no false gap), and are dropped', () => {
  const t = withSender({ maxMessageSize: 100 });
  t.c.attachSender(0, 1, 'q2');
  t.send();
  // Link 0 is detached for its oversized message; the peer's in-flight transfers on it are
  // dropped, and link 1's delivery 3 is no gap.
  t.c.transfer(0, 0, 0, payload(101)).transfer(0, 0, 1, payload(5)).transfer(0, 0, 2, payload(60), { more: true })
    .transfer(0, 0, null, payload(60)).transfer(0, 1, 3, payload(5));
  t.send();
  assert.equal(t.h.deliveries.map((d) => d.id), [3]);
  assert.is(t.peer.of(END).length, 0, t.h.logs.join('\n'));
  assert.is(t.peer.of(DETACH).length, 1);
});

// ---------------------------------------------------------------------------------------------
// Strings that are not valid UTF-8

test('an attach whose address is not valid UTF-8 is refused with amqp:invalid-field, whatever the handler', () => {
  const t = new Harness();
  t.open();
  const w = t.c.w;
  // Hand-encoded target: str8 "q.\xfe" (0xfe never appears in UTF-8).
  const bad = Buffer.from('005329c00601a103712efe', 'hex');
  writeAttach(w, 0, { name: 'bad-utf8', handle: 0, role: false, sndSettleMode: 0, rcvSettleMode: 0, source: { type: 'source', address: 'x' }, target: { raw: bad }, initialDeliveryCount: 0 });
  // A binary address is no address either: String() of it would alias the same way.
  const bin = Buffer.from('005328c00601a003712eff', 'hex');
  writeAttach(w, 0, { name: 'binary', handle: 1, role: true, sndSettleMode: 0, rcvSettleMode: 0, source: { raw: bin }, target: null });
  t.send();
  assert.is(t.h.attaches.length, 0, 'the handler never sees them');
  const attaches = t.peer.of(ATTACH);
  assert.equal(attaches.map((a) => [a.fields[0], a.fields[5], a.fields[6]]), [['bad-utf8', null, null], ['binary', null, null]]);
  const detaches = t.peer.of(DETACH);
  assert.equal(detaches.map((d) => errorOf(d.fields[2])?.condition), ['amqp:invalid-field', 'amqp:invalid-field']);
  assert.match(String(errorOf(detaches[0].fields[2])?.description), /not valid UTF-8/);
  assert.is(t.conn.closed, false);
  // The handles are in use until the peer detaches; then the connection carries on.
  t.c.detach(0, 0).detach(0, 1).attachSender(0, 0, 'fine');
  t.send();
  assert.is(t.h.attaches.length, 1);
});

test('a string that is not valid UTF-8 elsewhere in a frame (the open\'s container-id) closes with amqp:decode-error', () => {
  const t = new Harness();
  const w = t.c.w;
  w.bytes(AMQP_HEADER);
  const f = beginFrame(w, 0, 0);
  w.descriptor(OPEN);
  const m = w.beginList();
  w.bytes(Buffer.from('a102c328', 'hex')); // "\xc3(" : a lead byte without its continuation
  w.null();
  w.uint(1024);
  w.endList(m, 3);
  endFrame(w, f);
  t.send();
  assert.is(errorOf(t.last(CLOSE).fields[0])?.condition, 'amqp:decode-error');
});

// ---------------------------------------------------------------------------------------------
// Incomplete (multi-frame) deliveries: what one connection and the whole process may hold

/** A harness with one attached sending link and a budget of `budget` bytes shared with nobody. */
function withBudget(maxIncompleteBytes: number, budget: ByteBudget, links = 1): Harness {
  const t = new Harness({ maxIncompleteBytes, incompleteBudget: budget, maxFrameSize: 1 << 20 });
  t.h.creditOnAttach = 10;
  t.open();
  for (let h = 0; h < links; h++) t.c.attachSender(0, h, `q${h}`);
  t.send();
  return t;
}

test('incomplete deliveries: past the per-connection cap the connection closes with amqp:resource-limit-exceeded', () => {
  const budget = new ByteBudget(1 << 30);
  const t = withBudget(100_000, budget, 3);
  // Two links each hold 40 kB of an unfinished delivery: within the cap.
  t.c.transfer(0, 0, 0, payload(40_000), { more: true });
  t.send();
  t.c.transfer(0, 1, 1, payload(40_000), { more: true });
  t.send();
  assert.is(t.conn.closed, false);
  assert.ok(t.conn.incompleteBytes >= 80_000 && t.conn.incompleteBytes <= 100_000, `charged ${t.conn.incompleteBytes}`);
  assert.is(budget.used, t.conn.incompleteBytes);
  // A third pushes the connection past 100 kB.
  t.c.transfer(0, 2, 2, payload(40_000), { more: true });
  t.send();
  const close = errorOf(t.last(CLOSE).fields[0]);
  assert.is(close?.condition, 'amqp:resource-limit-exceeded');
  assert.match(String(close?.description), /incomplete deliveries/);
  assert.is(t.conn.incompleteBytes, 0, 'everything released with the connection');
  assert.is(budget.used, 0);
});

test('incomplete deliveries: past the shared budget the link is detached with amqp:resource-limit-exceeded; others go on', () => {
  const budget = new ByteBudget(100_000);
  const a = withBudget(1 << 30, budget);
  const b = withBudget(1 << 30, budget);
  a.c.transfer(0, 0, 0, payload(70_000), { more: true });
  a.send();
  b.c.transfer(0, 0, 0, payload(10_000), { more: true });
  b.send();
  b.c.transfer(0, 0, null, payload(40_000), { more: true });
  b.send();
  const det = b.last(DETACH);
  assert.is(errorOf(det.fields[2])?.condition, 'amqp:resource-limit-exceeded');
  assert.is(b.conn.closed, false, 'the connection is within its own share: it stays');
  assert.is(b.conn.incompleteBytes, 0, 'the dropped delivery was released');
  // The rest of b's delivery is dropped quietly; a finishes its delivery, then b can send again.
  b.c.transfer(0, 0, null, payload(10));
  b.send();
  a.c.transfer(0, 0, null, payload(10));
  a.send();
  assert.is(a.h.deliveries.length, 1);
  assert.is(a.h.payloads[0].length, 70_010);
  assert.is(budget.used, 0, 'a completed delivery no longer counts as incomplete');
  // A fresh link on b: its multi-frame delivery fits now.
  b.c.detach(0, 0).attachSender(0, 1, 'again');
  b.send();
  b.c.transfer(0, 1, 1, payload(50_000), { more: true }).transfer(0, 1, null, payload(10));
  b.send();
  assert.is(b.h.deliveries.length, 1);
  assert.is(budget.used, 0);
});

test('incomplete deliveries: a piece is charged for the buffer it keeps alive, not only its bytes', () => {
  // A peer sending one-byte continuation frames, each in its own large chunk, keeps every chunk
  // alive through its piece: each chunk is charged.
  const budget = new ByteBudget(1 << 30);
  const t = withBudget(1 << 30, budget);
  t.c.transfer(0, 0, 0, payload(1), { more: true });
  t.send();
  for (let i = 0; i < 10; i++) {
    t.c.transfer(0, 0, null, payload(1), { more: true });
    const frame = t.c.take();
    const chunk = Buffer.concat([frame, Buffer.alloc(60_000)]).subarray(0, frame.length); // a view of a 60 kB buffer
    t.conn.onBytes(chunk, 0);
  }
  assert.ok(t.conn.incompleteBytes >= 600_000, `charged ${t.conn.incompleteBytes} for 10 one-byte pieces in 60 kB chunks`);
  t.c.transfer(0, 0, null, payload(1));
  t.send();
  assert.is(t.h.deliveries.length, 1);
  assert.is(t.h.payloads[0].length, 12);
  assert.is(budget.used, 0);
});

test('incomplete deliveries: released when the link detaches, the session ends, or the socket goes', () => {
  const budget = new ByteBudget(1 << 30);
  const t = withBudget(1 << 30, budget, 2);
  t.c.transfer(0, 0, 0, payload(1000), { more: true }).transfer(0, 1, 1, payload(1000), { more: true });
  t.send();
  assert.ok(budget.used > 0);
  t.c.detach(0, 0);
  t.send();
  const afterDetach = budget.used;
  assert.ok(afterDetach > 0 && afterDetach < t.conn.incompleteBytes + 1);
  t.c.end(0);
  t.send();
  assert.is(budget.used, 0, 'session end');
  const u = withBudget(1 << 30, budget);
  u.c.transfer(0, 0, 0, payload(1000), { more: true });
  u.send();
  assert.ok(budget.used > 0);
  u.conn.onSocketClosed('socket-closed');
  assert.is(budget.used, 0, 'socket gone');
});

test.run();
