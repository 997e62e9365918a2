/**
 * haPolicy replication, the live side (docs/decisions/0012-broker-replication.md).
 *
 *   BrokerCore -> ReplicatedStore -> own JournalStore
 *                        \-> Op frames -> each follower's connection (broker/io/replica-follower.ts)
 *
 * The live settles a sync once its own journal and enough followers (a quorum of the group, the
 * live included) have the changes on disk. A follower that connects (acceptFollower) gets a
 * snapshot of the live's state first, then the tail. Each member keeps its position (epoch, seq)
 * in its own journal as the meta of a reserved queue, written before the sync whose completion it
 * acknowledges.
 */
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import {
  FrameReader, FrameType, POSITION_QUEUE, Position, ReplOp, ReplicationProtocolError, computeQuorumSeq, decodeJsonBody, encodeJsonFrame, encodeOp,
  quorumOf, takePosition,
} from '../ha/replication';
import { QueueMeta, Recovered, Store, TxOp } from '../store/types';

type Log = (level: 'error' | 'warning' | 'info' | 'debug', msg: string) => void;

interface ViewQueue {
  meta: QueueMeta;
  refs: Map<number, number>;
}

interface Follower {
  socket: net.Socket;
  acked: number;
}

/** Options of {@link ReplicatedStore}. */
export interface ReplicatedStoreOptions {
  /** This live's epoch (its fencing token). */
  epoch: number;
  /** The position the member had when it went live: new changes are numbered after it. */
  position: Position;
  groupSize: number;
  /** How long a missing quorum is waited for before durable work is refused (default 0). */
  graceMs?: number;
  log?: Log;
}

/**
 * The live member's Store: every change goes to its own journal (which validates it) and, numbered,
 * to every follower. sync() answers once a quorum has the changes on disk.
 */
export class ReplicatedStore implements Store {
  private seq: number;
  private durable: number;
  private recordedSeq = -1;
  private readonly followers = new Map<string, Follower>();
  private waiters: Array<{ seq: number; cb: (err: Error | null) => void }> = [];
  private readonly queues = new Map<string, ViewQueue>();
  private readonly msgRefs = new Map<number, number>();
  private readonly log: Log;

  constructor(private readonly inner: Store, private readonly opts: ReplicatedStoreOptions) {
    this.seq = opts.position.seq;
    this.durable = opts.position.seq;
    this.log = opts.log ?? (() => undefined);
  }

  /**
   * Why durable work cannot be accepted: fewer than a quorum have held the store (followers count
   * once caught up) for longer than the grace period. Within it (going live, a follower
   * reconnecting or taking its snapshot), durable work waits for the quorum instead.
   */
  unavailable(): string | null {
    let holding = 1;
    for (const f of this.followers.values()) if (f.acked >= 0) holding++;
    const q = quorumOf(this.opts.groupSize);
    // Asked for every durable message: with a quorum, no clock is read.
    if (holding >= q) {
      this.shortSince = null;
      return null;
    }
    const now = performance.now();
    this.shortSince ??= now;
    if (now - this.shortSince <= (this.opts.graceMs ?? 0)) return null;
    return `no quorum: ${holding} of ${this.opts.groupSize} members hold the store, ${q} needed; durable messages are refused until enough members return`;
  }

  /** Since when fewer than a quorum hold the store (null: a quorum does). */
  private shortSince: number | null = performance.now();

  recover(): Recovered {
    const rec = this.inner.recover();
    takePosition(rec);
    for (const [name, q] of rec.queues) {
      const refs = new Map<number, number>();
      for (const r of q.refs) {
        refs.set(r.msgId, r.deliveryCount);
        this.msgRefs.set(r.msgId, (this.msgRefs.get(r.msgId) ?? 0) + 1);
      }
      this.queues.set(name, { meta: q.meta, refs });
    }
    return rec;
  }

  createQueue(name: string, meta: QueueMeta): void {
    if (name === POSITION_QUEUE) throw new RangeError(`queue name ${name} is reserved`);
    this.inner.createQueue(name, meta);
    const q = this.queues.get(name);
    if (q) q.meta = meta;
    else this.queues.set(name, { meta, refs: new Map() });
    this.send({ op: 'createQueue', queue: name, meta });
  }

  deleteQueue(name: string): void {
    this.inner.deleteQueue(name);
    const q = this.queues.get(name);
    if (!q) return;
    this.queues.delete(name);
    for (const id of q.refs.keys()) this.unref(id);
    this.send({ op: 'deleteQueue', queue: name });
  }

  addMessage(msgId: number, payload: Buffer): void {
    this.inner.addMessage(msgId, payload);
    this.msgRefs.set(msgId, 0);
    this.send({ op: 'addMessage', msgId, payload });
  }

  addRef(queue: string, msgId: number): void {
    this.inner.addRef(queue, msgId);
    this.viewAddRef(queue, msgId);
    this.send({ op: 'addRef', queue, msgId });
  }

  ack(queue: string, msgId: number): void {
    this.inner.ack(queue, msgId);
    this.viewAck(queue, msgId);
    this.send({ op: 'ack', queue, msgId });
  }

  setDeliveryCount(queue: string, msgId: number, count: number): void {
    this.inner.setDeliveryCount(queue, msgId, count);
    this.queues.get(queue)?.refs.set(msgId, count);
    this.send({ op: 'setDeliveryCount', queue, msgId, count });
  }

  commitTx(ops: TxOp[]): void {
    this.inner.commitTx(ops);
    for (const op of ops) {
      if (op.op === 'addMessage') this.msgRefs.set(op.msgId, 0);
      else if (op.op === 'addRef') this.viewAddRef(op.queue, op.msgId);
      else this.viewAck(op.queue, op.msgId);
    }
    if (ops.length > 0) this.send({ op: 'commitTx', ops });
  }

  sync(cb: (err: Error | null) => void): void {
    const target = this.seq;
    if (target !== this.recordedSeq) {
      // Our own position goes into the journal before the sync that makes `target` durable here.
      this.inner.createQueue(POSITION_QUEUE, { epoch: this.opts.epoch, seq: target });
      this.recordedSeq = target;
    }
    this.inner.sync((err) => {
      if (err) {
        cb(err);
        return;
      }
      if (target > this.durable) this.durable = target;
      this.waiters.push({ seq: target, cb });
      this.settle();
    });
  }

  readPayload(msgId: number): Buffer {
    return this.inner.readPayload(msgId);
  }

  stats(): { fileBytes: number; liveBytes: number; liveMessages: number; compactions: number } {
    return this.inner.stats();
  }

  async close(): Promise<void> {
    for (const f of this.followers.values()) f.socket.destroy();
    this.followers.clear();
    await this.inner.close();
  }

  /**
   * Takes a follower's connection (after its Hello was checked): sends the snapshot of the state
   * now, then streams every later change. A second connection of the same member replaces the first.
   */
  attach(id: string, socket: net.Socket): void {
    this.followers.get(id)?.socket.destroy();
    const f: Follower = { socket, acked: -1 };
    this.followers.set(id, f);
    const reader = new FrameReader();
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const fr of reader.push(chunk)) {
          if (fr.type !== FrameType.Ack || fr.body.length !== 8) throw new ReplicationProtocolError(`unexpected frame type ${fr.type} from follower ${id}`);
          f.acked = Number(fr.body.readBigUInt64BE(0));
        }
      } catch (e) {
        this.log('warning', `replication: follower ${id}: ${(e as Error).message}; dropped`);
        socket.destroy();
        return;
      }
      this.settle();
    });
    socket.on('close', () => {
      if (this.followers.get(id) === f) this.followers.delete(id);
      this.log('info', `replication: follower ${id} disconnected (${this.followers.size} connected)`);
    });
    socket.on('error', () => undefined);
    this.sendSnapshot(socket);
    this.log('info', `replication: follower ${id} attached at seq ${this.seq} (${this.followers.size} connected)`);
  }

  private sendSnapshot(socket: net.Socket): void {
    const at = { epoch: this.opts.epoch, seq: this.seq };
    const frames: Buffer[] = [encodeJsonFrame(FrameType.SnapshotBegin, at)];
    for (const [name, q] of this.queues) frames.push(encodeOp(0, { op: 'createQueue', queue: name, meta: q.meta }));
    for (const id of this.msgRefs.keys()) frames.push(encodeOp(0, { op: 'addMessage', msgId: id, payload: this.inner.readPayload(id) }));
    for (const [name, q] of this.queues) {
      for (const [id, count] of q.refs) {
        frames.push(encodeOp(0, { op: 'addRef', queue: name, msgId: id }));
        if (count > 0) frames.push(encodeOp(0, { op: 'setDeliveryCount', queue: name, msgId: id, count }));
      }
    }
    frames.push(encodeJsonFrame(FrameType.SnapshotEnd, at));
    socket.write(Buffer.concat(frames));
  }

  private send(op: ReplOp): void {
    const seq = ++this.seq;
    if (this.followers.size === 0) return;
    const frame = encodeOp(seq, op);
    // One write per turn of the event loop, not one per change: corked until the turn ends.
    if (!this.corked) {
      this.corked = true;
      for (const f of this.followers.values()) f.socket.cork();
      setImmediate(this.uncork);
    }
    for (const f of this.followers.values()) f.socket.write(frame);
  }

  private corked = false;
  private readonly uncork = (): void => {
    this.corked = false;
    for (const f of this.followers.values()) {
      while (f.socket.writableCorked > 0) f.socket.uncork();
    }
  };

  private quorumSeq(): number {
    return computeQuorumSeq(this.durable, [...this.followers.values()].map((f) => f.acked), this.opts.groupSize);
  }

  private settle(): void {
    if (this.waiters.length === 0) return;
    const q = this.quorumSeq();
    const still: typeof this.waiters = [];
    const done: typeof this.waiters = [];
    for (const w of this.waiters) (w.seq <= q ? done : still).push(w);
    this.waiters = still;
    for (const w of done) w.cb(null);
  }

  private viewAddRef(queue: string, msgId: number): void {
    this.queues.get(queue)?.refs.set(msgId, 0);
    this.msgRefs.set(msgId, (this.msgRefs.get(msgId) ?? 0) + 1);
  }

  private viewAck(queue: string, msgId: number): void {
    this.queues.get(queue)?.refs.delete(msgId);
    this.unref(msgId);
  }

  private unref(msgId: number): void {
    const n = (this.msgRefs.get(msgId) ?? 1) - 1;
    if (n <= 0) this.msgRefs.delete(msgId);
    else this.msgRefs.set(msgId, n);
  }
}

/** Writes a Refuse frame and closes. */
function refuse(socket: net.Socket, reason: string): void {
  socket.end(encodeJsonFrame(FrameType.Refuse, { reason }));
}


/** A follower's greeting. */
interface Hello {
  group: string;
  id: string;
  epoch: number;
}

/**
 * Reads a connecting follower's Hello (within `timeoutMs`), then hands the socket over when
 * `check` finds nothing to refuse; otherwise answers Refuse with the reason and closes.
 */
export function acceptFollower(socket: net.Socket, check: (h: Hello) => string | null, onAccepted: (h: Hello, socket: net.Socket) => void, timeoutMs = 5000): void {
  const reader = new FrameReader();
  socket.setNoDelay(true);
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  socket.on('error', () => undefined);
  const onData = (chunk: Buffer) => {
    let frames: Array<{ type: FrameType; body: Buffer }>;
    try {
      frames = reader.push(chunk);
    } catch {
      socket.destroy();
      return;
    }
    if (frames.length === 0) return;
    clearTimeout(timer);
    socket.removeListener('data', onData);
    const [first] = frames;
    let hello: Hello;
    try {
      if (first.type !== FrameType.Hello) throw new ReplicationProtocolError(`expected Hello, got frame type ${first.type}`);
      hello = decodeJsonBody(first.body) as Hello;
      if (typeof hello.group !== 'string' || typeof hello.id !== 'string' || !Number.isSafeInteger(hello.epoch)) throw new ReplicationProtocolError('malformed Hello');
    } catch (e) {
      refuse(socket, (e as Error).message);
      return;
    }
    const why = check(hello);
    if (why !== null) refuse(socket, why);
    else onAccepted(hello, socket);
  };
  socket.on('data', onData);
}
