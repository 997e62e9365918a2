/**
 * The socket-to-engine pump shared by the router and the broker: bytes in go to each
 * connection's engine; output is batched (engines append while a batch of reads is processed,
 * one setImmediate later every touched connection writes once); a transport whose queue passes
 * the high-water mark stops being fed deliveries until it drains; a tick drives idle timeouts,
 * heartbeats and the handshake deadline; stop closes everyone with a close frame.
 */
import type { Connection } from '../engine/connection';
import type { AmqpError } from '../errors';
import type { Logger } from '../../lib/log';
import type { Transport } from './transport';

/** Bytes queued on a transport past which its connection stops sending deliveries. */
export const HIGH_WATER = 1 << 20;

/** The pump's state of one connection; applications extend it with their own (their `conn.ctx`). */
export class ConnIo {
  dirty = false;
  /** Close unless the AMQP handshake is done by then (ms since epoch; 0 = no deadline). */
  handshakeDeadline = 0;
  constructor(readonly transport: Transport, readonly id: number) {}
}

/** What the application does around the pump's work. */
export interface PumpHooks {
  /** Just before a batch is written (the routing core issues credit, the broker dispatches). */
  beforeWrite(now: number): void;
  /** A blocked connection may send deliveries again. */
  onWritable(conn: Connection): void;
}

/** Drives every connection of one process. */
export class ConnectionPump {
  readonly conns = new Set<Connection>();
  private readonly dirty: Connection[] = [];
  private flushScheduled = false;
  /** {@link touchAll} was asked for. */
  private touchAllPending = false;
  private stopping = false;

  constructor(private readonly hooks: PumpHooks, private readonly logger: Logger) {}

  /** Starts pumping `conn` (whose ctx is a {@link ConnIo}) over its transport. */
  attach(conn: Connection, io: ConnIo, deadline = 0): void {
    conn.ctx = io;
    io.handshakeDeadline = deadline;
    this.conns.add(conn);
    const stream = io.transport.stream;
    stream.on('data', (chunk: Buffer) => {
      conn.onBytes(chunk, Date.now());
      this.touch(conn);
    });
    stream.on('drain', () => {
      if (!conn.writeBlocked) return;
      conn.writeBlocked = false;
      this.hooks.onWritable(conn);
      this.touch(conn);
    });
    stream.on('error', (e) => this.logger.log('SERVER', 'debug', `[C${io.id}] ${io.transport.kind} error: ${e.message}`));
    stream.on('close', () => {
      if (!conn.closed) {
        conn.onSocketClosed('socket-closed');
        this.touch(conn);
      }
      this.conns.delete(conn);
    });
  }

  /** Marks a connection as having output; schedules one flush for the batch. */
  touch(conn: Connection): void {
    const io = conn.ctx as ConnIo;
    if (!io.dirty) {
      io.dirty = true;
      this.dirty.push(conn);
    }
    this.schedule();
  }

  /** Schedules one flush (the application's own work, e.g. dispatch, runs in it). */
  schedule(): void {
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /**
   * Touches every connection with output pending (outcomes made elsewhere can touch any); done
   * once, in the next flush, however often it is asked for (a connection closing with many
   * links asks once per link).
   */
  touchAll(): void {
    this.touchAllPending = true;
    this.schedule();
  }

  /** Writes every touched connection once. */
  flush(): void {
    this.flushScheduled = false;
    const now = Date.now();
    this.hooks.beforeWrite(now);
    if (this.touchAllPending) {
      this.touchAllPending = false;
      for (const c of this.conns) {
        const io = c.ctx as ConnIo;
        if (c.w.off > 0 && !io.dirty) {
          io.dirty = true;
          this.dirty.push(c);
        }
      }
    }
    const list = this.dirty;
    for (let i = 0; i < list.length; i++) {
      const conn = list[i];
      const io = conn.ctx as ConnIo;
      io.dirty = false;
      const stream = io.transport.stream;
      const wasFull = conn.outputFull;
      const out = conn.takeOutput();
      if (out !== null && !stream.destroyed) {
        conn.noteOutput(now);
        if (!stream.write(out) || stream.writableLength > HIGH_WATER) conn.writeBlocked = true;
      }
      // The engine's own buffer was the limit this turn; the transport took it: go on.
      if (wasFull && !conn.writeBlocked && !conn.closed) this.hooks.onWritable(conn);
      if (conn.closed && !stream.destroyed) {
        stream.end();
        // A peer that never reads must not keep the transport forever.
        setTimeout(() => stream.destroy(), 2000).unref();
      }
    }
    list.length = 0;
  }

  /** Time passes: idle timeouts, heartbeats, handshake deadlines. */
  tick(now: number): void {
    for (const conn of this.conns) {
      const io = conn.ctx as ConnIo;
      if (io.handshakeDeadline > 0) {
        if (conn.isOpen) io.handshakeDeadline = 0;
        else if (now > io.handshakeDeadline && !conn.closed) {
          this.logger.log('SERVER', 'warning', `[C${io.id}] ${io.transport.peer}: AMQP handshake not finished in time; closing`);
          conn.close({ condition: 'amqp:resource-limit-exceeded', description: 'initial handshake timeout' }, 'idle-timeout');
          io.transport.stream.destroy();
          continue;
        }
      }
      conn.onTick(now);
      if (conn.closed || conn.w.off > 0) this.touch(conn);
    }
  }

  /** Closes every connection with a close frame carrying `error`; waits up to 3 s for peers to go. */
  async stop(error: AmqpError): Promise<void> {
    this.stopping = true;
    for (const conn of this.conns) {
      conn.close(error, 'router-shutdown');
      this.touch(conn);
    }
    this.flush();
    const deadline = Date.now() + 3000;
    while (this.conns.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.abort();
  }

  /** Drops every transport at once (a fenced broker: nothing more may be written). */
  abort(): void {
    this.stopping = true;
    for (const conn of this.conns) (conn.ctx as ConnIo).transport.stream.destroy();
  }

  /** True once {@link stop} or {@link abort} was called. */
  get stopped(): boolean {
    return this.stopping;
  }
}
