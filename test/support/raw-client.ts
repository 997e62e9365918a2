/**
 * A raw AMQP 1.0 client for wire tests, built on the router's own codec (not rhea) so a test can
 * put any bytes on the wire: valid frames with any field values, broken frames, or plain garbage.
 *
 * Everything received is kept: protocol headers in {@link RawClient.headers}, frames decoded
 * generically in {@link RawClient.frames} ({@link Frame}: descriptor code and name, every list
 * field decoded and as its raw encoded bytes, and the payload after the performative).
 *
 * Senders here are client-side: `begin` has a null remote-channel, `attach` carries our role and,
 * for a sender, an initial-delivery-count. Nothing is validated or automated (no auto-flow, no
 * auto-settle, no reply to close): each test says exactly what the client does.
 */
import * as net from 'node:net';
import { Described, Reader, Writer, Typed, sym, uint, ubyte, ushort, ulong } from '../../amqp/codec';
import { AMQP_HEADER, FrameParser, FrameSink, SASL_HEADER } from '../../amqp/frames';
import { D, scan, scanPerformative } from '../../amqp/performatives';
import { waitFor } from './wait';

/** Names of the descriptor codes frames can carry, for readable assertions and dumps. */
const NAMES: Record<number, string> = {
  [D.Open]: 'open', [D.Begin]: 'begin', [D.Attach]: 'attach', [D.Flow]: 'flow', [D.Transfer]: 'transfer',
  [D.Disposition]: 'disposition', [D.Detach]: 'detach', [D.End]: 'end', [D.Close]: 'close',
  [D.SaslMechanisms]: 'sasl-mechanisms', [D.SaslInit]: 'sasl-init', [D.SaslChallenge]: 'sasl-challenge',
  [D.SaslResponse]: 'sasl-response', [D.SaslOutcome]: 'sasl-outcome',
};

/** One received frame. `fields[i]` is list field i decoded (absent trailing fields are missing). */
export interface Frame {
  /** 0 = AMQP, 1 = SASL. */
  type: number;
  channel: number;
  /** Our channel for the session this frame belongs to (the router's begin names it), else `channel`. */
  session: number;
  /** Descriptor code ({@link D}); -1 for a heartbeat or an undecodable body. */
  code: number;
  /** 'open', 'transfer', 'sasl-outcome'..., 'heartbeat' or 'undecodable'. */
  name: string;
  /** Generic decode of each list field (codec Reader: symbols as strings, described as Described). */
  fields: unknown[];
  /** Each list field's encoded bytes (a copy), for byte-exact comparisons. */
  raw: Buffer[];
  /** Bytes after the performative (a transfer's payload section bytes). */
  payload: Buffer;
  /** Total frame size (body + the 8-byte header the router always writes). */
  size: number;
}

/** Bytes copied verbatim into an encoded frame (any position a value can take). */
export class Raw {
  constructor(readonly bytes: Buffer) {}
}

/** Writer that also accepts {@link Raw} values, at any depth. */
class RawWriter extends Writer {
  override value(v: unknown): void {
    if (v instanceof Raw) return this.bytes(v.bytes);
    super.value(v);
  }
}

/** Encodes one value (with {@link Raw} support) to bytes. */
export function encode(v: unknown): Buffer {
  const w = new RawWriter(256);
  w.value(v);
  return w.take();
}

/** A described value with a numeric descriptor (encoded 0x00 0x53 code). */
export function described(code: number, value: unknown): Described {
  return new Described(ulong(code), value);
}

/** A message section: `00 53 code` followed by `value`. */
export function section(code: number, value: unknown): Buffer {
  return encode(described(code, value));
}

/** An amqp:error list. */
export function amqpError(condition: string, description?: string, info?: unknown): Described {
  const f: unknown[] = [sym(condition)];
  if (description !== undefined || info !== undefined) f.push(description ?? null);
  if (info !== undefined) f.push(info);
  return described(D.Error, f);
}

/** A source or target terminus with the given address (null: no address). */
export function terminus(type: 'source' | 'target', address: string | null, opts: { dynamic?: boolean } = {}): Described {
  const f: unknown[] = [address];
  if (opts.dynamic) f.push(uint(0), null, null, true);
  return described(type === 'source' ? D.Source : D.Target, f);
}

/** Condition symbol of an error-carrying field value (close/end field 0, detach field 2), or null. */
export function conditionOf(v: unknown): string | null {
  if (!(v instanceof Described) || !Array.isArray(v.value)) return null;
  const c = (v.value as unknown[])[0];
  return typeof c === 'string' ? c : null;
}

/** Descriptor code of a described value (delivery states, termini), or -1. */
export function codeOf(v: unknown): number {
  if (!(v instanceof Described)) return -1;
  const d = v.descriptor;
  return typeof d === 'number' ? d : typeof d === 'bigint' ? Number(d) : -1;
}

export interface OpenOptions {
  containerId?: string;
  hostname?: string | null;
  maxFrameSize?: number;
  channelMax?: number;
  idleTimeout?: number;
}

export interface AttachOptions {
  name: string;
  handle: number;
  /** false: we send; true: we receive. */
  role: boolean;
  /** Terminus values: {@link terminus}, null, or {@link Raw}. */
  source: unknown;
  target: unknown;
  sndSettleMode?: number;
  rcvSettleMode?: number;
  /** Sender only (default 0 for a sender, null for a receiver). */
  initialDeliveryCount?: number | null;
}

export interface FlowOptions {
  /** Default: the number of transfer frames received on this channel. */
  nextIncomingId?: number;
  incomingWindow?: number;
  nextOutgoingId?: number;
  outgoingWindow?: number;
  handle?: number;
  deliveryCount?: number;
  linkCredit?: number;
  drain?: boolean;
  echo?: boolean;
}

export interface TransferOptions {
  handle: number;
  /** Default: the session's next delivery-id (only on the first frame of a delivery). */
  deliveryId?: number | null;
  deliveryTag?: Buffer | null;
  settled?: boolean;
  more?: boolean;
  aborted?: boolean;
  /** An encoded delivery-state for the transfer's state field. */
  state?: Buffer;
  payload: Buffer;
}

/** A raw client over one TCP socket. */
export class RawClient implements FrameSink {
  readonly frames: Frame[] = [];
  /** Protocol ids of the protocol headers received (0 AMQP, 3 SASL). */
  readonly headers: number[] = [];
  /** Every byte received, in order. */
  readonly received: Buffer[] = [];
  /** The socket is gone (closed by either side). */
  closed = false;
  /** The peer ended its side (TCP FIN). */
  ended = false;
  /** Set when the incoming bytes could not be parsed as AMQP framing. */
  parseError: Error | null = null;
  private readonly parser = new FrameParser(this, 0x7fffffff);
  private readonly nextDeliveryId = new Map<number, number>();
  private readonly transfersIn = new Map<number, number>();
  /** Router channel -> our channel, learnt from the router's begin (its remote-channel). */
  private readonly ourChannel = new Map<number, number>();

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.received.push(chunk);
      if (this.parseError) return;
      try {
        this.parser.push(chunk);
      } catch (e) {
        this.parseError = e as Error;
      }
    });
    socket.on('end', () => { this.ended = true; });
    socket.on('error', () => { /* reported through `closed` */ });
    socket.on('close', () => { this.closed = true; });
  }

  /** Index of the next frame to arrive: pass it as `since` to wait only for later frames. */
  get mark(): number {
    return this.frames.length;
  }

  /** Opens a TCP connection (nothing is sent). */
  static connect(port: number, host = '127.0.0.1'): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host, noDelay: true });
      s.once('connect', () => { s.off('error', reject); resolve(new RawClient(s)); });
      s.once('error', reject);
    });
  }

  /**
   * Connects and opens an AMQP connection (header, optional SASL ANONYMOUS, open) and waits for
   * the router's open. Optionally begins session 0.
   */
  static async open(port: number, opts: OpenOptions & { sasl?: boolean; session?: boolean } = {}): Promise<RawClient> {
    const c = await RawClient.connect(port);
    if (opts.sasl) {
      c.header(3);
      c.saslInit('ANONYMOUS', null, null);
      await c.waitForFrame((f) => f.name === 'sasl-outcome');
    }
    c.header(0);
    c.open(opts);
    await c.waitForFrame((f) => f.name === 'open');
    if (opts.session) {
      c.begin(0);
      await c.waitForFrame((f) => f.name === 'begin' && f.session === 0);
    }
    return c;
  }

  // ---------------------------------------------------------------- FrameSink

  /** @internal */
  onProtocolHeader(id: number): void {
    this.headers.push(id);
  }

  /** @internal */
  onFrame(type: number, channel: number, buf: Buffer, start: number, end: number): void {
    const size = end - start + 8; // the router always writes doff 2
    const f: Frame = { type, channel, session: this.ourChannel.get(channel) ?? channel, code: -1, name: 'heartbeat', fields: [], raw: [], payload: Buffer.alloc(0), size };
    if (start < end) {
      try {
        f.code = scanPerformative(buf, start, end);
        f.name = NAMES[f.code] ?? `0x${f.code.toString(16)}`;
        for (let i = 0; i < scan.count; i++) {
          f.raw.push(Buffer.from(buf.subarray(scan.starts[i], scan.ends[i])));
          f.fields.push(decodeField(f.raw[i]));
        }
        f.payload = Buffer.from(buf.subarray(scan.next, end));
      } catch (e) {
        f.code = -1;
        f.name = 'undecodable';
        f.payload = Buffer.from(buf.subarray(start, end));
      }
    }
    if (f.name === 'begin' && typeof f.fields[0] === 'number') {
      this.ourChannel.set(channel, f.fields[0]);
      f.session = f.fields[0];
    }
    this.frames.push(f);
    if (f.name === 'sasl-outcome' && f.fields[0] === 0) this.parser.expectHeader();
    if (f.name === 'transfer') this.transfersIn.set(f.session, (this.transfersIn.get(f.session) ?? 0) + 1);
  }

  // ---------------------------------------------------------------- waiting

  /** Waits for the first frame (from index `since`) matching `pred`. */
  async waitForFrame(pred: (f: Frame) => boolean, timeoutMs = 3000, since = 0): Promise<Frame> {
    try {
      return await waitFor(() => {
        for (let i = since; i < this.frames.length; i++) if (pred(this.frames[i])) return this.frames[i];
        return null;
      }, timeoutMs, 'frame');
    } catch {
      throw new Error(`timed out after ${timeoutMs} ms waiting for a frame matching ${pred.toString()}${this.closed ? ' (socket closed)' : ''}; got: ${this.describe(since)}`);
    }
  }

  /** Waits for `n` frames matching `pred` (from index `since`); returns them in order. */
  async waitForFrames(pred: (f: Frame) => boolean, n: number, timeoutMs = 3000, since = 0): Promise<Frame[]> {
    await waitFor(() => this.frames.slice(since).filter(pred).length >= n, timeoutMs, `${n} frames matching ${pred.toString()}`);
    return this.frames.slice(since).filter(pred);
  }

  /**
   * Asserts that no frame matching `pred` arrives within `windowMs` (a negative check needs a
   * window; this is the only place the tests wait for time rather than for an event).
   */
  async expectNoFrame(pred: (f: Frame) => boolean, windowMs: number, since = 0): Promise<void> {
    const end = Date.now() + windowMs;
    await waitFor(() => Date.now() >= end || this.frames.slice(since).some(pred), windowMs + 1000, 'no-frame window');
    const hit = this.frames.slice(since).find(pred);
    if (hit) throw new Error(`unexpected frame ${JSON.stringify(summary(hit))}`);
  }

  /** Waits until the socket is closed. */
  async waitClosed(timeoutMs = 3000): Promise<void> {
    await waitFor(() => this.closed, timeoutMs, 'socket to close');
  }

  /** Readable list of the frames received since `since` (for failure messages). */
  describe(since = 0): string {
    return JSON.stringify(this.frames.slice(since).map(summary));
  }

  /** Every byte received so far, joined. */
  get allBytes(): Buffer {
    return Buffer.concat(this.received);
  }

  // ---------------------------------------------------------------- sending

  /** Sends bytes as they are. */
  send(bytes: Buffer | string): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /** Runs `fn` with the socket corked, so everything it sends leaves in one write (pipelining). */
  batch(fn: () => void): void {
    this.socket.cork();
    try {
      fn();
    } finally {
      this.socket.uncork();
    }
  }

  /** Sends a protocol header: 0 = AMQP, 3 = SASL. */
  header(protocolId = 0): void {
    this.send(protocolId === 3 ? SASL_HEADER : protocolId === 0 ? AMQP_HEADER : Buffer.from([0x41, 0x4d, 0x51, 0x50, protocolId, 1, 0, 0]));
  }

  /** Encodes a frame: 8-byte header (doff 2), then `body` bytes. */
  static frameBytes(type: number, channel: number, body: Buffer): Buffer {
    const h = Buffer.alloc(8);
    h.writeUInt32BE(8 + body.length, 0);
    h[4] = 2;
    h[5] = type;
    h.writeUInt16BE(channel, 6);
    return Buffer.concat([h, body]);
  }

  /** Sends a performative with the given list fields (any values, {@link Raw} included) and payload. */
  performative(code: number, channel: number, fields: unknown[], payload?: Buffer, type = 0): void {
    const body = encode(described(code, fields));
    this.send(RawClient.frameBytes(type, channel, payload ? Buffer.concat([body, payload]) : body));
  }

  /** sasl-init (a SASL frame). */
  saslInit(mechanism: string, initialResponse: Buffer | null, hostname: string | null): void {
    this.performative(D.SaslInit, 0, [sym(mechanism), initialResponse, hostname], undefined, 1);
  }

  /** sasl-response (a SASL frame): the next step of a challenge-response mechanism (SCRAM). */
  saslResponse(response: Buffer): void {
    this.performative(D.SaslResponse, 0, [response], undefined, 1);
  }

  /** open on channel 0. Defaults: container-id 'raw-client', max-frame-size 65536, channel-max 255. */
  open(o: OpenOptions = {}): void {
    const f: unknown[] = [o.containerId ?? 'raw-client', o.hostname ?? null, uint(o.maxFrameSize ?? 65536), ushort(o.channelMax ?? 255)];
    if (o.idleTimeout !== undefined) f.push(uint(o.idleTimeout));
    this.performative(D.Open, 0, f);
  }

  /** begin as the initiating side: remote-channel null. */
  begin(channel: number, o: { nextOutgoingId?: number; incomingWindow?: number; outgoingWindow?: number; handleMax?: number } = {}): void {
    this.nextDeliveryId.set(channel, o.nextOutgoingId ?? 0);
    this.performative(D.Begin, channel, [null, uint(o.nextOutgoingId ?? 0), uint(o.incomingWindow ?? 0x7fffffff), uint(o.outgoingWindow ?? 0x7fffffff), uint(o.handleMax ?? 1023)]);
  }

  /**
   * begin as the answering side, to a session the router began on its channel `remoteChannel`:
   * frames the router sends on it are then seen as our `channel`'s.
   */
  answerBegin(channel: number, remoteChannel: number, o: { nextOutgoingId?: number; incomingWindow?: number } = {}): void {
    this.nextDeliveryId.set(channel, o.nextOutgoingId ?? 0);
    this.ourChannel.set(remoteChannel, channel);
    this.performative(D.Begin, channel, [uint(remoteChannel), uint(o.nextOutgoingId ?? 0), uint(o.incomingWindow ?? 0x7fffffff), uint(0x7fffffff), uint(1023)]);
  }

  /** attach with every field as given (role false = we send). */
  attach(channel: number, a: AttachOptions): void {
    const idc = a.initialDeliveryCount === undefined ? (a.role ? null : 0) : a.initialDeliveryCount;
    this.performative(D.Attach, channel, [
      a.name, uint(a.handle), a.role, ubyte(a.sndSettleMode ?? 0), ubyte(a.rcvSettleMode ?? 0),
      a.source, a.target, null, false, idc === null ? null : uint(idc),
    ]);
  }

  /** Attaches a sending link to `address` (a string, null for anonymous relay, or a terminus value). */
  attachSender(channel: number, handle: number, name: string, address: unknown, o: Partial<AttachOptions> = {}): void {
    const target = typeof address === 'string' || address === null ? terminus('target', address as string | null) : address;
    this.attach(channel, { name, handle, role: false, source: terminus('source', name), target, ...o });
  }

  /** Attaches a receiving link from `address` (a string or a terminus value). */
  attachReceiver(channel: number, handle: number, name: string, address: unknown, o: Partial<AttachOptions> = {}): void {
    const source = typeof address === 'string' || address === null ? terminus('source', address as string | null) : address;
    this.attach(channel, { name, handle, role: true, source, target: terminus('target', name), ...o });
  }

  /** flow; link fields only when `handle` is given. */
  flow(channel: number, o: FlowOptions = {}): void {
    const f: unknown[] = [
      uint(o.nextIncomingId ?? this.transfersIn.get(channel) ?? 0), uint(o.incomingWindow ?? 0x7fffffff),
      uint(o.nextOutgoingId ?? this.nextDeliveryId.get(channel) ?? 0), uint(o.outgoingWindow ?? 0x7fffffff),
    ];
    if (o.handle !== undefined) {
      f.push(uint(o.handle), uint(o.deliveryCount ?? 0), uint(o.linkCredit ?? 0), null, o.drain ?? false);
      if (o.echo) f.push(true);
    }
    this.performative(D.Flow, channel, f);
  }

  /** One transfer frame. A first frame without deliveryId takes the session's next one. */
  transfer(channel: number, t: TransferOptions): number | null {
    let id: number | null = t.deliveryId === undefined ? (this.nextDeliveryId.get(channel) ?? 0) : t.deliveryId;
    if (id !== null) this.nextDeliveryId.set(channel, Math.max(this.nextDeliveryId.get(channel) ?? 0, id + 1));
    const tag = t.deliveryTag === undefined ? (id === null ? null : Buffer.from(`t${id}`)) : t.deliveryTag;
    const f: unknown[] = [uint(t.handle), id === null ? null : uint(id), tag, id === null ? null : uint(0), t.settled ?? false, t.more ?? false];
    if (t.aborted) f.push(null, null, null, true);
    else if (t.state) f.push(null, new Raw(t.state));
    this.performative(D.Transfer, channel, f, t.payload);
    return id;
  }

  /**
   * Sends a whole message as one delivery, split into frames of at most `maxFrameSize` bytes.
   * Returns its delivery-id.
   */
  sendMessage(channel: number, handle: number, payload: Buffer, o: { settled?: boolean; maxFrameSize?: number; deliveryId?: number } = {}): number {
    const max = o.maxFrameSize ?? 16384;
    const id = o.deliveryId ?? this.nextDeliveryId.get(channel) ?? 0;
    const overhead = 64;
    let off = 0;
    let first = true;
    do {
      const take = Math.min(payload.length - off, max - overhead);
      const more = off + take < payload.length;
      this.transfer(channel, { handle, deliveryId: first ? id : null, deliveryTag: first ? undefined : null, settled: o.settled, more, payload: payload.subarray(off, off + take) });
      off += take;
      first = false;
    } while (off < payload.length);
    return id;
  }

  /** disposition; `state` is the encoded delivery-state, passed as raw bytes (or null). */
  disposition(channel: number, o: { role: boolean; first: number; last?: number; settled: boolean; state: Buffer | null }): void {
    this.performative(D.Disposition, channel, [o.role, uint(o.first), o.last === undefined ? null : uint(o.last), o.settled, o.state === null ? null : new Raw(o.state)]);
  }

  detach(channel: number, handle: number, closed = true, error: unknown = null): void {
    this.performative(D.Detach, channel, error ? [uint(handle), closed, error] : [uint(handle), closed]);
  }

  end(channel: number, error: unknown = null): void {
    this.performative(D.End, channel, error ? [error] : []);
  }

  close(error: unknown = null): void {
    this.performative(D.Close, 0, error ? [error] : []);
  }

  /** Drops the socket at once. */
  destroy(): void {
    this.socket.destroy();
  }
}

/** Decodes one encoded field with the codec's generic Reader. */
function decodeField(raw: Buffer): unknown {
  return new Reader(raw).read();
}

/** Short JSON-friendly view of a frame for messages. */
export function summary(f: Frame): unknown {
  const show = (v: unknown): unknown => {
    if (Buffer.isBuffer(v)) return `0x${v.toString('hex').slice(0, 64)}`;
    if (typeof v === 'bigint') return `${v}n`;
    if (v instanceof Described) return { d: show(v.descriptor), v: show(v.value) };
    if (Array.isArray(v)) return v.map(show);
    if (v instanceof Map) return [...v].map(([k, e]) => [show(k), show(e)]);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, e]) => [k, show(e)]));
    return v;
  };
  return { ch: f.channel, [f.name]: show(f.fields), ...(f.payload.length ? { payload: f.payload.length } : {}) };
}

export { sym, uint, ubyte, ushort, ulong, Typed };
