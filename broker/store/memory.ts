/**
 * The in-memory {@link Store}: nothing touches the disk. Used by non-persistent brokers (no
 * {@link MemoryDisk}: recover() finds nothing) and by tests, which hand several stores the same
 * MemoryDisk to "restart" one: only what a flush applied to the disk is recovered, as for the
 * journal. Same validation and limits as the journal, so the contract suite holds for both.
 */
import { QueueMeta, Recovered, Store, StoreError, StoreOptions, TxOp } from './types';
import { MAX_TX_OPS, acceptSync, checkPayload, checkWritable, checkCount, checkMsgId, checkName, checkTxOps, encodeMeta } from './checks';

/** The journal's default record limit minus its MSG overhead, so both refuse the same payloads. */
const DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024 * 1024 + 1024 - 9;

interface MemQueue {
  metaJson: string;
  /** msgId -> delivery count, in addRef order. */
  refs: Map<number, number>;
}

interface MemMessage {
  /** Our own copy; never mutated, shared between the store's view and its disk. */
  payload: Buffer;
  refs: number;
}

/** Queues, messages and references, applied without checks (callers validate first). */
class Model {
  readonly queues = new Map<string, MemQueue>();
  readonly messages = new Map<number, MemMessage>();
  nextMessageId = 1;
  payloadBytes = 0;

  createQueue(name: string, metaJson: string): void {
    const q = this.queues.get(name);
    if (q !== undefined) q.metaJson = metaJson;
    else this.queues.set(name, { metaJson, refs: new Map() });
  }

  deleteQueue(name: string): void {
    const q = this.queues.get(name);
    if (q === undefined) return;
    this.queues.delete(name);
    for (const id of q.refs.keys()) this.unref(id);
  }

  addMessage(id: number, payload: Buffer): void {
    this.messages.set(id, { payload, refs: 0 });
    this.payloadBytes += payload.length;
    if (id >= this.nextMessageId) this.nextMessageId = id + 1;
  }

  addRef(queue: string, id: number): void {
    (this.queues.get(queue) as MemQueue).refs.set(id, 0);
    (this.messages.get(id) as MemMessage).refs++;
  }

  ack(queue: string, id: number): void {
    (this.queues.get(queue) as MemQueue).refs.delete(id);
    this.unref(id);
  }

  setDeliveryCount(queue: string, id: number, count: number): void {
    (this.queues.get(queue) as MemQueue).refs.set(id, count);
  }

  apply(op: TxOp): void {
    if (op.op === 'addMessage') this.addMessage(op.msgId, op.payload);
    else if (op.op === 'addRef') this.addRef(op.queue, op.msgId);
    else this.ack(op.queue, op.msgId);
  }

  private unref(id: number): void {
    const m = this.messages.get(id);
    if (m !== undefined && --m.refs <= 0) {
      this.messages.delete(id);
      this.payloadBytes -= m.payload.length;
    }
  }
}

/**
 * The durable side of {@link MemoryStore}s: give the same MemoryDisk to a new MemoryStore to
 * simulate a restart (it recovers what earlier stores flushed to it).
 */
export class MemoryDisk {
  /** The state as flushed; only MemoryStore touches it. */
  readonly model = new Model();
}

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions extends StoreOptions {
  /** Where flushed state goes and recover() reads from; none: nothing survives the store. */
  disk?: MemoryDisk;
  /** Largest payload accepted (default: the journal's default limit, 64 MiB + 1015 bytes). */
  maxPayloadBytes?: number;
}




/**
 * A {@link Store} held in memory. sync() calls back on the next tick, after the store's pending
 * mutations were applied to its {@link MemoryDisk} (when it has one) behind `opts.fence`.
 */
export class MemoryStore implements Store {
  private readonly view = new Model();
  private readonly disk: MemoryDisk | null;
  private readonly fence: () => void;
  private readonly maxPayloadBytes: number;
  private state: 'new' | 'open' | 'closed' = 'new';
  private failure: Error | null = null;
  /** Mutations not yet on the disk, in call order. */
  private pending: Array<(m: Model) => void> = [];
  private waiters: Array<(err: Error | null) => void> = [];
  private scheduled = false;
  private readonly flushBound = (): void => this.flush();

  constructor(opts: MemoryStoreOptions = {}) {
    this.disk = opts.disk ?? null;
    this.fence = opts.fence ?? (() => undefined);
    this.maxPayloadBytes = opts.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
    if (!(Number.isInteger(this.maxPayloadBytes) && this.maxPayloadBytes >= 0)) throw new RangeError('maxPayloadBytes must be a non-negative integer');
  }

  recover(): Recovered {
    if (this.state !== 'new') throw new StoreError('recover() may be called only once, before any mutation', 'ERR_STORE_CLOSED');
    this.state = 'open';
    const queues: Recovered['queues'] = new Map();
    const messages = new Map<number, Buffer>();
    if (this.disk === null) return { queues, messages, nextMessageId: 1, truncated: null };
    const d = this.disk.model;
    // Messages nobody referenced are dropped at a restart, as the journal does.
    for (const [id, m] of d.messages) {
      if (m.refs > 0) continue;
      d.messages.delete(id);
      d.payloadBytes -= m.payload.length;
    }
    for (const [name, q] of d.queues) {
      this.view.queues.set(name, { metaJson: q.metaJson, refs: new Map(q.refs) });
      const refs: Array<{ msgId: number; deliveryCount: number }> = [];
      for (const [msgId, deliveryCount] of q.refs) refs.push({ msgId, deliveryCount });
      queues.set(name, { meta: JSON.parse(q.metaJson) as QueueMeta, refs });
    }
    for (const [id, m] of d.messages) {
      this.view.messages.set(id, { payload: m.payload, refs: m.refs });
      messages.set(id, m.payload);
    }
    this.view.nextMessageId = d.nextMessageId;
    this.view.payloadBytes = d.payloadBytes;
    return { queues, messages, nextMessageId: d.nextMessageId, truncated: null };
  }

  createQueue(name: string, meta: QueueMeta): void {
    checkWritable('store', this.state, this.failure);
    checkName(name);
    const json = encodeMeta(meta);
    this.view.createQueue(name, json);
    this.record((m) => m.createQueue(name, json));
  }

  deleteQueue(name: string): void {
    checkWritable('store', this.state, this.failure);
    if (!this.view.queues.has(name)) return;
    this.view.deleteQueue(name);
    this.record((m) => m.deleteQueue(name));
  }

  addMessage(msgId: number, payload: Buffer): void {
    checkWritable('store', this.state, this.failure);
    checkMsgId(msgId);
    checkPayload(payload, 'payload', this.maxPayloadBytes);
    if (this.view.messages.has(msgId)) throw new RangeError(`message ${msgId} is already stored`);
    // A copy: the caller's buffer may be a view of a socket chunk that gets reused.
    const copy = Buffer.from(payload);
    this.view.addMessage(msgId, copy);
    this.record((m) => m.addMessage(msgId, copy));
  }

  addRef(queue: string, msgId: number): void {
    checkWritable('store', this.state, this.failure);
    const q = this.queueOf(queue);
    if (!this.view.messages.has(msgId)) throw new RangeError(`message ${msgId} is not stored`);
    if (q.refs.has(msgId)) throw new RangeError(`queue ${queue} already references message ${msgId}`);
    this.view.addRef(queue, msgId);
    this.record((m) => m.addRef(queue, msgId));
  }

  ack(queue: string, msgId: number): void {
    checkWritable('store', this.state, this.failure);
    if (!this.queueOf(queue).refs.has(msgId)) throw new RangeError(`queue ${queue} does not reference message ${msgId}`);
    this.view.ack(queue, msgId);
    this.record((m) => m.ack(queue, msgId));
  }

  setDeliveryCount(queue: string, msgId: number, count: number): void {
    checkWritable('store', this.state, this.failure);
    const q = this.queueOf(queue);
    checkCount(count);
    if (!q.refs.has(msgId)) throw new RangeError(`queue ${queue} does not reference message ${msgId}`);
    this.view.setDeliveryCount(queue, msgId, count);
    this.record((m) => m.setDeliveryCount(queue, msgId, count));
  }

  commitTx(ops: TxOp[]): void {
    checkWritable('store', this.state, this.failure);
    if (!Array.isArray(ops)) throw new TypeError('ops must be an array');
    if (ops.length > MAX_TX_OPS) throw new RangeError(`transaction of ${ops.length} ops exceeds ${MAX_TX_OPS}`);
    if (ops.length === 0) return;
    this.validateTx(ops);
    const copies: TxOp[] = ops.map((op) => (op.op === 'addMessage' ? { op: 'addMessage', msgId: op.msgId, payload: Buffer.from(op.payload) } : { ...op }));
    for (const op of copies) this.view.apply(op);
    this.record((m) => {
      for (const op of copies) m.apply(op);
    });
  }

  /** Throws on the first op that would fail if `ops` were applied in order; changes nothing. */
  private validateTx(ops: TxOp[]): void {
    checkTxOps(ops, {
      hasMessage: (id) => this.view.messages.has(id),
      messageRefs: (id) => this.view.messages.get(id)?.refs ?? 0,
      queueRefs: (name) => this.view.queues.get(name)?.refs,
    }, this.maxPayloadBytes);
  }

  sync(cb: (err: Error | null) => void): void {
    if (!acceptSync('store', this.state, this.failure, cb)) return;
    this.waiters.push(cb);
    this.schedule();
  }

  /** The stored body itself, not a copy: callers must not mutate it. */
  readPayload(msgId: number): Buffer {
    if (this.state !== 'open') throw new StoreError('store is not open', 'ERR_STORE_CLOSED');
    const m = this.view.messages.get(msgId);
    if (m === undefined) throw new RangeError(`message ${msgId} is not stored`);
    return m.payload;
  }

  stats(): { fileBytes: number; liveBytes: number; liveMessages: number; compactions: number } {
    return { fileBytes: this.view.payloadBytes, liveBytes: this.view.payloadBytes, liveMessages: this.view.messages.size, compactions: 0 };
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    if (this.state === 'new') {
      this.state = 'closed';
      return;
    }
    const before = this.failure;
    this.flush();
    this.state = 'closed';
    // As the journal: a failure of the final flush means unsynced mutations were lost.
    if (this.failure !== null && before === null) throw this.failure;
  }

  private queueOf(name: string): MemQueue {
    const q = this.view.queues.get(name);
    if (q === undefined) throw new RangeError(`no queue ${String(name)}`);
    return q;
  }

  private record(op: (m: Model) => void): void {
    if (this.disk !== null) this.pending.push(op);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    process.nextTick(this.flushBound);
  }

  /** The "physical write": applies pending mutations to the disk, then answers the syncs. */
  private flush(): void {
    this.scheduled = false;
    if (this.failure === null && this.pending.length > 0) {
      try {
        this.fence();
        const ops = this.pending;
        this.pending = [];
        const d = (this.disk as MemoryDisk).model;
        for (const op of ops) op(d);
      } catch (e) {
        this.failure = e instanceof Error ? e : new StoreError(String(e), 'ERR_STORE_IO');
        this.pending = [];
      }
    }
    const waiters = this.waiters;
    this.waiters = [];
    for (const cb of waiters) {
      try {
        cb(this.failure);
      } catch (e) {
        process.nextTick(() => {
          throw e;
        });
      }
    }
  }
}
