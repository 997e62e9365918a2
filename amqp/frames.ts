/**
 * AMQP 1.0 framing (part 2, section 2.3): protocol headers and frames, parsed incrementally.
 *
 * The parser is a pure byte-driven state machine: feed it chunks in any split and it reports
 * whole frames as views into the chunk (no copy unless a frame straddles two chunks).
 */

export const AMQP_HEADER = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0x00, 0x01, 0x00, 0x00]);
export const SASL_HEADER = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0x03, 0x01, 0x00, 0x00]);

export const FRAME_AMQP = 0x00;
export const FRAME_SASL = 0x01;

/** The smallest max-frame-size a peer may demand (part 2, 2.7.1). */
export const MIN_MAX_FRAME_SIZE = 512;

/** Why framing failed; each carries the AMQP condition the connection closes with. */
export class FramingError extends Error {
  constructor(
    message: string,
    readonly condition: string,
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'FramingError';
  }
}

/** Receives parsed units from {@link FrameParser}. */
export interface FrameSink {
  /** A protocol header: 0 = AMQP, 3 = SASL (the protocol id byte). */
  onProtocolHeader(protocolId: number): void;
  /**
   * A frame. `buf[bodyStart..end)` is the frame body; an empty body is a heartbeat.
   * The buffer is only valid until the sink returns unless retained by subarray.
   */
  onFrame(type: number, channel: number, buf: Buffer, bodyStart: number, end: number): void;
}

const enum State {
  Header,
  Frames,
}

/**
 * Incremental frame parser. `expectHeader()` arms it for a protocol header (at the start and
 * again after SASL); `maxFrameSize` is enforced before a byte of the oversize frame is buffered.
 */
export class FrameParser {
  private state = State.Header;
  private pending: Buffer | null = null;
  maxFrameSize: number;
  /** Bytes received in total (for stats and error offsets). */
  bytesIn = 0;

  constructor(private readonly sink: FrameSink, maxFrameSize: number) {
    this.maxFrameSize = maxFrameSize;
  }

  expectHeader(): void {
    this.state = State.Header;
  }

  /** Feeds bytes; throws FramingError on a protocol violation (the caller closes). */
  push(chunk: Buffer): void {
    this.bytesIn += chunk.length;
    let buf: Buffer;
    if (this.pending !== null) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = null;
    } else {
      buf = chunk;
    }
    let off = 0;
    const len = buf.length;
    while (off < len) {
      if (this.state === State.Header) {
        if (len - off < 8) {
          this.checkHeaderPrefix(buf, off, len);
          break;
        }
        this.checkHeaderPrefix(buf, off, off + 8);
        const protocolId = buf[off + 4];
        if (buf[off + 5] !== 1 || buf[off + 6] !== 0 || buf[off + 7] !== 0) {
          throw new FramingError(
            `unsupported AMQP version ${buf[off + 5]}.${buf[off + 6]}.${buf[off + 7]}`,
            'amqp:not-implemented',
            'ERR_PROTOCOL_VERSION',
          );
        }
        off += 8;
        this.state = State.Frames;
        this.sink.onProtocolHeader(protocolId);
        continue;
      }
      if (len - off < 8) break;
      const size = buf.readUInt32BE(off);
      const doff = buf[off + 4];
      if (size > this.maxFrameSize) {
        throw new FramingError(
          `frame of ${size} bytes exceeds max-frame-size ${this.maxFrameSize}`,
          'amqp:connection:framing-error',
          'ERR_FRAME_TOO_LARGE',
        );
      }
      if (size < 8 || doff < 2 || doff * 4 > size) {
        throw new FramingError(
          `malformed frame header (size ${size}, doff ${doff})`,
          'amqp:connection:framing-error',
          'ERR_FRAME_MALFORMED',
        );
      }
      if (len - off < size) break;
      const type = buf[off + 5];
      const channel = buf.readUInt16BE(off + 6);
      this.sink.onFrame(type, channel, buf, off + doff * 4, off + size);
      off += size;
      // The sink may have re-armed header parsing (end of SASL): loop picks that up.
    }
    if (off < len) this.pending = buf.subarray(off);
  }

  private checkHeaderPrefix(buf: Buffer, start: number, end: number): void {
    const magic = AMQP_HEADER;
    for (let i = start; i < end && i - start < 4; i++) {
      if (buf[i] !== magic[i - start]) {
        const seen = buf.subarray(start, Math.min(end, start + 8)).toString('latin1').replace(/[^\x20-\x7e]/g, '.');
        throw new FramingError(
          `not an AMQP protocol header: "${seen}"`,
          'amqp:connection:framing-error',
          'ERR_PROTOCOL_HEADER',
        );
      }
    }
    if (end - start > 4) {
      const id = buf[start + 4];
      if (id !== 0 && id !== 3) {
        throw new FramingError(`unsupported protocol id ${id}`, 'amqp:not-implemented', 'ERR_PROTOCOL_ID');
      }
    }
  }

  /** Bytes held waiting for the rest of a frame. */
  get buffered(): number {
    return this.pending === null ? 0 : this.pending.length;
  }
}
