/**
 * haPolicy replication, the stream (docs/decisions/0012-broker-replication.md).
 *
 *   live:     BrokerCore -> ReplicatedStore -> own JournalStore
 *                                   \-> Op frames -> each follower's connection
 *   follower: ReplicaFollower <- frames; applies them to its own JournalStore, syncs, acks
 *
 * The live settles a sync once its own journal and enough followers (a quorum of the group, the
 * live included) have the changes on disk. A follower that connects gets a snapshot of the live's
 * state first, then the tail. Each member keeps its position (epoch, seq) in its own journal as
 * the meta of a reserved queue, written before the sync whose completion it acknowledges.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  FrameReader, FrameType, Position, ReplOp, ReplicationProtocolError, computeQuorumSeq, decodeOp, encodeAck,
  encodeJsonFrame, encodeOp, quorumOf,
} from '../ha/replication';
import { JournalStore } from '../store/journal';
import { QueueMeta, Recovered, Store, StoreError, TxOp } from '../store/types';

/** The reserved queue whose meta is the member's position; never shown to the broker core. */
export const POSITION_QUEUE = '$amqp-mesh.replication.position';

type Log = (level: 'error' | 'warning' | 'info' | 'debug', msg: string) => void;

/** The position recorded in a recovered journal ({0, 0} when none), and the state without it. */
export function takePosition(rec: Recovered): Position {
  const q = rec.queues.get(POSITION_QUEUE);
  rec.queues.delete(POSITION_QUEUE);
  const m = q?.meta as { epoch?: unknown; seq?: unknown } | undefined;
  return { epoch: typeof m?.epoch === 'number' ? m.epoch : 0, seq: typeof m?.seq === 'number' ? m.seq : 0 };
}

interface ViewQueue {
  meta: QueueMeta;
  refs: Map<number, number>;
}

interface Follower {
  id: string;
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

  /** Followers connected (for logs and management). */
  get followerCount(): number {
    return this.followers.size;
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
    const now = performance.now();
    if (holding >= q) {
      this.shortSince = null;
      return null;
    }
    this.shortSince ??= now;
    if (now - this.shortSince <= (this.opts.graceMs ?? 0)) return null;
    return `no quorum: ${holding} of ${this.opts.groupSize} members hold the store, ${q} needed; durable messages are refused until enough members return`;
  }

  /** Since when fewer than a quorum hold the store (null: a quorum does). */
  private shortSince: number | null = performance.now();

  /** The last change's number, and the highest a quorum holds. */
  get positions(): { head: number; quorum: number } {
    return { head: this.seq, quorum: this.quorumSeq() };
  }

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
    const f: Follower = { id, socket, acked: -1 };
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

/** Applies one replicated change to a store. */
export function applyOp(store: Store, op: ReplOp): void {
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
  private following: { epoch: number; repl: string } | null = null;
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
    return this.following?.epoch ?? 0;
  }

  /** Starts following the live of `epoch` at `repl` (host:port); stops following any earlier one. */
  follow(epoch: number, repl: string): void {
    this.unfollow();
    this.following = { epoch, repl };
    this.connect(epoch, repl, 0);
  }

  /** Stops following: nothing more is applied or acknowledged. Returns the position (frozen). */
  unfollow(): Position {
    this.following = null;
    this.socket?.destroy();
    this.socket = null;
    return this.position;
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
    if (this.following?.epoch !== epoch) return;
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
      const at = parseJson(body) as Position;
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
      const at = parseJson(body) as Position;
      this.inSnapshot = false;
      this.applied = { epoch: at.epoch, seq: at.seq };
      return;
    }
    if (type === FrameType.Refuse) throw new ReplicationProtocolError(`refused: ${(parseJson(body) as { reason?: string }).reason}`);
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
export function splitEndpoint(ep: string): [string, string] {
  const m = ep.match(/^\[?([^\]]*)\]?:(\d+)$/);
  if (!m) throw new StoreError(`bad replication endpoint ${JSON.stringify(ep)}`, 'ERR_STORE_IO');
  return [m[1], m[2]];
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw new ReplicationProtocolError('frame body is not JSON', { cause: e });
  }
}

/** Writes a Refuse frame and closes. */
export function refuse(socket: net.Socket, reason: string): void {
  socket.end(encodeJsonFrame(FrameType.Refuse, { reason }));
}


/** A follower's greeting. */
export interface Hello {
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
      hello = parseJson(first.body) as Hello;
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
