/**
 * haPolicy replication, a member that is not live (docs/decisions/0012-broker-replication.md):
 * it follows the live member's stream (broker/io/replicated-store.ts) into its own journal,
 * syncs, and acknowledges; a snapshot replaces its journal only once complete and durable.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { FrameReader, FrameType, Position, ReplOp, POSITION_QUEUE, ReplicationProtocolError, decodeJsonBody, decodeOp, encodeAck, encodeJsonFrame, takePosition } from '../ha/replication';
import { JournalStore } from '../store/journal';
import { Store, StoreError } from '../store/types';

type Log = (level: 'error' | 'warning' | 'info' | 'debug', msg: string) => void;

/** Applies one replicated change to a store. */
function applyOp(store: Store, op: ReplOp): void {
  switch (op.op) {
    case 'createQueue': store.createQueue(op.queue, op.meta); break;
    case 'deleteQueue': store.deleteQueue(op.queue); break;
    case 'addMessage': store.addMessage(op.msgId, op.payload); break;
    case 'addRef': store.addRef(op.queue, op.msgId); break;
    case 'ack': store.ack(op.queue, op.msgId); break;
    case 'setDeliveryCount': store.setDeliveryCount(op.queue, op.msgId, op.count); break;
    case 'commitTx': store.commitTx(op.ops); break;
  }
}

/** Options of {@link ReplicaFollower}. */
export interface ReplicaFollowerOptions {
  /**
   * The member's replica directory: journals `snap-<n>/` and `current` naming the one in force.
   * A snapshot goes into a new journal, which replaces the old one only once it is complete and
   * durable: a member that crashes mid-snapshot still has everything it had before.
   */
  dir: string;
  group: string;
  id: string;
  log?: Log;
  journal?: { compactMinBytes?: number };
}

/**
 * A member that is not live: keeps its own journal, and while it follows a live, applies the
 * live's stream to it. Its position is what it acknowledged last (durable here).
 */
export class ReplicaFollower {
  private store: JournalStore;
  /** The journal in force (named by `current`), and the one a snapshot is filling, if any. */
  private currentN: number;
  private filling: number | null = null;
  private pos: Position;
  private socket: net.Socket | null = null;
  /** The epoch followed now, or 0. */
  private following = 0;
  private inSnapshot = false;
  private applied: Position;
  private syncing = false;
  private readonly log: Log;
  /** Called when the live cannot be reached at all (connection refused): it is most likely gone. */
  onLiveUnreachable: ((epoch: number, why: string) => void) | null = null;

  constructor(private readonly opts: ReplicaFollowerOptions) {
    this.log = opts.log ?? (() => undefined);
    fs.mkdirSync(opts.dir, { recursive: true });
    this.currentN = readCurrent(opts.dir);
    this.store = this.openStore(this.currentN);
    const rec = this.store.recover();
    this.pos = takePosition(rec);
    this.applied = { ...this.pos };
  }

  /** What this member holds on disk. */
  get position(): Position {
    return { ...this.pos };
  }

  /** The epoch followed now, or 0. */
  get followingEpoch(): number {
    return this.following;
  }

  /** Starts following the live of `epoch` at `repl` (host:port); stops following any earlier one. */
  follow(epoch: number, repl: string): void {
    this.unfollow();
    this.following = epoch;
    this.connect(epoch, repl, 0);
  }

  /** Stops following: nothing more is applied or acknowledged; the position stays as it is. */
  unfollow(): void {
    this.following = 0;
    this.socket?.destroy();
    this.socket = null;
  }

  /**
   * Closes the store (before this member goes live and reopens it as its own); returns the
   * directory of the journal in force.
   */
  async close(): Promise<string> {
    this.unfollow();
    await this.store.close().catch(() => undefined);
    if (this.filling !== null) fs.rmSync(snapDir(this.opts.dir, this.filling), { recursive: true, force: true });
    this.filling = null;
    return snapDir(this.opts.dir, this.currentN);
  }

  private openStore(n: number): JournalStore {
    return new JournalStore(snapDir(this.opts.dir, n), { compactMinBytes: this.opts.journal?.compactMinBytes, log: this.log });
  }

  private connect(epoch: number, repl: string, attempt: number): void {
    if (this.following !== epoch) return;
    const [host, portText] = splitEndpoint(repl);
    const socket = net.connect({ host, port: Number(portText) });
    this.socket = socket;
    const reader = new FrameReader();
    let opened = false;
    socket.on('connect', () => {
      opened = true;
      socket.setNoDelay(true);
      socket.write(encodeJsonFrame(FrameType.Hello, { group: this.opts.group, id: this.opts.id, epoch }));
    });
    socket.on('data', (chunk: Buffer) => {
      if (this.socket !== socket) return;
      try {
        for (const fr of reader.push(chunk)) this.onFrame(epoch, fr.type, fr.body);
      } catch (e) {
        this.log('warning', `replication: stream from the live of epoch ${epoch}: ${(e as Error).message}; reconnecting`);
        socket.destroy();
        return;
      }
      this.scheduleAck(socket);
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (!opened && e.code === 'ECONNREFUSED' && attempt >= 2) this.onLiveUnreachable?.(epoch, `connection to ${repl} refused`);
    });
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.socket = null;
      // Retry while this live is still the one to follow (the election loop says otherwise).
      const t = setTimeout(() => this.connect(epoch, repl, opened ? 0 : attempt + 1), opened ? 50 : 100);
      t.unref();
    });
  }

  private onFrame(epoch: number, type: FrameType, body: Buffer): void {
    if (type === FrameType.SnapshotBegin) {
      const at = decodeJsonBody(body) as Position;
      this.log('info', `replication: snapshot from the live of epoch ${epoch} at seq ${at.seq}`);
      // Into a new journal; the one in force stays until the snapshot is complete and durable.
      void this.store.close().catch(() => undefined);
      if (this.filling !== null) fs.rmSync(snapDir(this.opts.dir, this.filling), { recursive: true, force: true });
      const n = this.currentN + 1;
      fs.rmSync(snapDir(this.opts.dir, n), { recursive: true, force: true });
      this.filling = n;
      this.store = this.openStore(n);
      this.store.recover();
      this.inSnapshot = true;
      return;
    }
    if (type === FrameType.SnapshotEnd) {
      const at = decodeJsonBody(body) as Position;
      this.inSnapshot = false;
      this.applied = { epoch: at.epoch, seq: at.seq };
      return;
    }
    if (type === FrameType.Refuse) throw new ReplicationProtocolError(`refused: ${(decodeJsonBody(body) as { reason?: string }).reason}`);
    if (type !== FrameType.Op) throw new ReplicationProtocolError(`unexpected frame type ${type}`);
    const { seq, op } = decodeOp(body);
    applyOp(this.store, op);
    if (!this.inSnapshot) {
      if (seq !== this.applied.seq + 1) throw new ReplicationProtocolError(`change ${seq} after ${this.applied.seq}: a gap`);
      this.applied = { epoch, seq };
    }
  }

  /** After a batch of frames: record the position, sync, acknowledge. */
  private scheduleAck(socket: net.Socket): void {
    if (this.syncing || this.inSnapshot) return;
    if (this.applied.epoch === this.pos.epoch && this.applied.seq === this.pos.seq) return;
    const at = { ...this.applied };
    this.syncing = true;
    try {
      this.store.createQueue(POSITION_QUEUE, at);
    } catch (e) {
      this.syncing = false;
      this.log('error', `replication: cannot record position: ${(e as Error).message}`);
      socket.destroy();
      return;
    }
    this.store.sync((err) => {
      this.syncing = false;
      if (err) {
        this.log('error', `replication: journal sync failed: ${err.message}`);
        socket.destroy();
        return;
      }
      if (this.filling !== null) {
        // The new journal holds the whole snapshot on disk: it is now the one in force.
        const old = this.currentN;
        writeCurrent(this.opts.dir, this.filling);
        this.currentN = this.filling;
        this.filling = null;
        fs.rmSync(snapDir(this.opts.dir, old), { recursive: true, force: true });
      }
      this.pos = at;
      if (this.socket === socket) socket.write(encodeAck(at.seq));
      // Changes that arrived during the sync.
      if (this.socket === socket) this.scheduleAck(socket);
    });
  }
}

function snapDir(dir: string, n: number): string {
  return path.join(dir, `snap-${n}`);
}

/** The journal in force, from `<dir>/current` (1 when there is none yet). */
function readCurrent(dir: string): number {
  try {
    const n = Number(fs.readFileSync(path.join(dir, 'current'), 'utf8').trim());
    return Number.isSafeInteger(n) && n > 0 ? n : 1;
  } catch {
    return 1;
  }
}

/** Names journal `n` the one in force: written aside, synced, renamed over, directory synced. */
function writeCurrent(dir: string, n: number): void {
  const tmp = path.join(dir, `.current.${process.pid}`);
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, `${n}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, path.join(dir, 'current'));
  const d = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(d);
  } finally {
    fs.closeSync(d);
  }
}

/** `host:port` (IPv6 hosts in brackets) split. */
function splitEndpoint(ep: string): [string, string] {
  const m = ep.match(/^\[?([^\]]*)\]?:(\d+)$/);
  if (!m) throw new StoreError(`bad replication endpoint ${JSON.stringify(ep)}`, 'ERR_STORE_IO');
  return [m[1], m[2]];
}
