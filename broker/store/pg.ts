/**
 * The PostgreSQL {@link Store} of a `haPolicy: jdbc` group (docs/decisions/0011-broker-jdbc.md).
 *
 * Mutations are checked and applied to an in-memory view at once (the Store contract is
 * synchronous); what they change is kept as a net delta (a ref added and acked before the next
 * flush never reaches the database) and written by one transaction per flush: group commit.
 * Every flush transaction first locks the group's lease row and checks that it still holds our
 * token with an unexpired lease: a member that lost the lease cannot commit anything, whatever
 * its own clock says, and a claim by another member waits for our commit or sees its effect.
 *
 * Bodies are not kept in memory: readPayload (for bodies the broker evicted) reads them from a
 * local spill file the store writes as messages arrive or are recovered.
 */
import type { Client } from 'pg';
import { MAX_TX_OPS, acceptSync, checkPayload, checkWritable, checkCount, checkMsgId, checkName, checkTxOps, encodeMeta } from './checks';
import { connectPg, JdbcError, redact } from './pg-schema';
import { FencedError, Pager, QueueMeta, Recovered, Store, StoreError, StoreOptions, TxOp } from './types';

/** The same payload limit as the journal's default, so every store refuses the same messages. */
const DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024 * 1024 + 1024 - 9;
/** Rows per multi-row INSERT (PostgreSQL allows 65535 parameters per statement). */
const ROWS_PER_STATEMENT = 2000;

/** Options of {@link PgStore.open}. */
export interface PgStoreOptions extends StoreOptions {
  url: string;
  /** The haGroup: the rows this store reads and writes. */
  group: string;
  /**
   * The lease token every write transaction must still hold (the StoreLock's token); 0 or
   * undefined: no database-side fencing (tests of the store alone).
   */
  token?: () => number;
  /** Where bodies go for readPayload; none: kept in memory. */
  bodies?: Pager;
  maxPayloadBytes?: number;
}

interface PgQueue {
  seq: number;
  /** msgId -> delivery count, in addRef order. */
  refs: Map<number, number>;
}

interface PgMessage {
  refs: number;
  size: number;
  /** Offset in the bodies pager, or -1 when `payload` holds it. */
  offset: number;
  payload: Buffer | null;
}

/** What the next flush writes (net of everything since the last one). */
class Delta {
  deletedQueues = new Set<string>();
  upsertQueues = new Map<string, { seq: number; meta: string }>();
  newMessages = new Map<number, Buffer>();
  deadMessages = new Set<number>();
  newRefs = new Map<string, { queue: string; msg: number; seq: number; count: number }>();
  deadRefs = new Map<string, { queue: string; msg: number }>();
  counts = new Map<string, { queue: string; msg: number; count: number }>();
  nextMessageId = 0;

  empty(): boolean {
    return this.deletedQueues.size === 0 && this.upsertQueues.size === 0 && this.newMessages.size === 0 && this.deadMessages.size === 0 &&
      this.newRefs.size === 0 && this.deadRefs.size === 0 && this.counts.size === 0 && this.nextMessageId === 0;
  }
}

const refKey = (queue: string, msg: number): string => `${msg}\u0000${queue}`;

/** A Store in PostgreSQL. Open with {@link PgStore.open} (connects and reads the state). */
export class PgStore implements Store {
  private readonly queues = new Map<string, PgQueue>();
  private readonly messages = new Map<number, PgMessage>();
  private recovered: Recovered | null;
  private nextMessageId = 1;
  private queueSeq = 0;
  private refSeq = 0;
  private liveBytes = 0;
  private state: 'new' | 'open' | 'closed' = 'new';
  private failure: Error | null = null;
  private delta = new Delta();
  /** Syncs waiting for the delta being gathered. */
  private waiters: Array<(err: Error | null) => void> = [];
  /** Syncs waiting for the flush in flight. */
  private flushing: Array<(err: Error | null) => void> | null = null;
  private scheduled = false;
  private readonly fence: () => void;
  private readonly log: NonNullable<StoreOptions['log']>;
  private readonly maxPayloadBytes: number;
  private flushes = 0;

  private constructor(private readonly client: Client, private readonly opts: PgStoreOptions, rec: Recovered) {
    this.recovered = rec;
    this.fence = opts.fence ?? (() => undefined);
    this.log = opts.log ?? (() => undefined);
    this.maxPayloadBytes = opts.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  }

  /**
   * Connects, creates the tables when missing, and reads the group's state (messages nobody
   * references are deleted, as the journal drops them at a restart). Rejects with JdbcError.
   */
  static async open(opts: PgStoreOptions): Promise<PgStore> {
    let store: PgStore | null = null;
    const client = await connectPg(opts.url, (e) => store?.fail(new StoreError(`database connection lost: ${e.message}`, 'ERR_STORE_IO', { cause: e })));
    try {
      const g = opts.group;
      await client.query('BEGIN');
      await client.query('DELETE FROM amqp_mesh_message m WHERE grp = $1 AND NOT EXISTS (SELECT 1 FROM amqp_mesh_ref r WHERE r.grp = $1 AND r.msg = m.id)', [g]);
      const qs = await client.query('SELECT name, seq, meta FROM amqp_mesh_queue WHERE grp = $1 ORDER BY seq', [g]);
      const rs = await client.query({ text: 'SELECT queue, msg, seq, delivery_count FROM amqp_mesh_ref WHERE grp = $1 ORDER BY seq', values: [g], rowMode: 'array' });
      const ms = await client.query({ text: 'SELECT id, payload FROM amqp_mesh_message WHERE grp = $1', values: [g], rowMode: 'array' });
      const st = await client.query('SELECT next_message_id FROM amqp_mesh_state WHERE grp = $1', [g]);
      await client.query('COMMIT');
      const rec: Recovered = { queues: new Map(), messages: new Map(), nextMessageId: 1, truncated: null };
      store = new PgStore(client, opts, rec);
      store.load(qs.rows as Array<{ name: string; seq: string; meta: string }>, rs.rows as unknown[][], ms.rows as unknown[][], st.rows[0]?.next_message_id as string | undefined);
      return store;
    } catch (e) {
      await client.end().catch(() => undefined);
      if (e instanceof JdbcError || e instanceof StoreError) throw e;
      throw new JdbcError(`cannot read the store of group ${opts.group} from ${redact(opts.url)}: ${(e as Error).message}`, 'ERR_JDBC_QUERY', { cause: e });
    }
  }

  private load(qs: Array<{ name: string; seq: string; meta: string }>, rs: unknown[][], ms: unknown[][], next: string | undefined): void {
    const rec = this.recovered as Recovered;
    for (const q of qs) {
      const seq = Number(q.seq);
      this.queues.set(q.name, { seq, refs: new Map() });
      rec.queues.set(q.name, { meta: JSON.parse(q.meta) as QueueMeta, refs: [] });
      if (seq > this.queueSeq) this.queueSeq = seq;
    }
    for (const [id, payload] of ms) {
      const body = payload as Buffer;
      const m: PgMessage = { refs: 0, size: body.length, offset: -1, payload: null };
      this.keepBody(m, body);
      this.messages.set(Number(id), m);
      rec.messages.set(Number(id), body);
      this.liveBytes += body.length;
    }
    for (const [queue, msg, seq, count] of rs) {
      const id = Number(msg);
      const q = this.queues.get(queue as string);
      const m = this.messages.get(id);
      if (q === undefined || m === undefined) continue;
      q.refs.set(id, Number(count));
      m.refs++;
      rec.queues.get(queue as string)?.refs.push({ msgId: id, deliveryCount: Number(count) });
      if (Number(seq) > this.refSeq) this.refSeq = Number(seq);
    }
    let max = 0;
    for (const id of this.messages.keys()) if (id > max) max = id;
    this.nextMessageId = Math.max(next === undefined ? 1 : Number(next), max + 1);
    rec.nextMessageId = this.nextMessageId;
  }

  recover(): Recovered {
    if (this.state !== 'new' || this.recovered === null) throw new StoreError('recover() may be called only once, before any mutation', 'ERR_STORE_CLOSED');
    this.state = 'open';
    const rec = this.recovered;
    this.recovered = null;
    return rec;
  }

  createQueue(name: string, meta: QueueMeta): void {
    checkWritable('store', this.state, this.failure);
    checkName(name);
    const json = encodeMeta(meta);
    let q = this.queues.get(name);
    if (q === undefined) {
      q = { seq: ++this.queueSeq, refs: new Map() };
      this.queues.set(name, q);
    }
    this.delta.upsertQueues.set(name, { seq: q.seq, meta: json });
    this.schedule();
  }

  deleteQueue(name: string): void {
    checkWritable('store', this.state, this.failure);
    const q = this.queues.get(name);
    if (q === undefined) return;
    this.queues.delete(name);
    const d = this.delta;
    for (const id of q.refs.keys()) {
      const k = refKey(name, id);
      d.newRefs.delete(k);
      d.deadRefs.delete(k);
      d.counts.delete(k);
      this.unref(id);
    }
    d.upsertQueues.delete(name);
    d.deletedQueues.add(name);
    this.schedule();
  }

  addMessage(msgId: number, payload: Buffer): void {
    checkWritable('store', this.state, this.failure);
    checkMsgId(msgId);
    checkPayload(payload, 'payload', this.maxPayloadBytes);
    if (this.messages.has(msgId)) throw new RangeError(`message ${msgId} is already stored`);
    this.applyAddMessage(msgId, payload);
    this.schedule();
  }

  addRef(queue: string, msgId: number): void {
    checkWritable('store', this.state, this.failure);
    const q = this.queueOf(queue);
    if (!this.messages.has(msgId)) throw new RangeError(`message ${msgId} is not stored`);
    if (q.refs.has(msgId)) throw new RangeError(`queue ${queue} already references message ${msgId}`);
    this.applyAddRef(queue, q, msgId);
    this.schedule();
  }

  ack(queue: string, msgId: number): void {
    checkWritable('store', this.state, this.failure);
    const q = this.queueOf(queue);
    if (!q.refs.has(msgId)) throw new RangeError(`queue ${queue} does not reference message ${msgId}`);
    this.applyAck(queue, q, msgId);
    this.schedule();
  }

  setDeliveryCount(queue: string, msgId: number, count: number): void {
    checkWritable('store', this.state, this.failure);
    const q = this.queueOf(queue);
    checkCount(count);
    if (!q.refs.has(msgId)) throw new RangeError(`queue ${queue} does not reference message ${msgId}`);
    q.refs.set(msgId, count);
    const k = refKey(queue, msgId);
    const fresh = this.delta.newRefs.get(k);
    if (fresh !== undefined) fresh.count = count;
    else this.delta.counts.set(k, { queue, msg: msgId, count });
    this.schedule();
  }

  commitTx(ops: TxOp[]): void {
    checkWritable('store', this.state, this.failure);
    if (!Array.isArray(ops)) throw new TypeError('ops must be an array');
    if (ops.length > MAX_TX_OPS) throw new RangeError(`transaction of ${ops.length} ops exceeds ${MAX_TX_OPS}`);
    if (ops.length === 0) return;
    checkTxOps(ops, {
      hasMessage: (id) => this.messages.has(id),
      messageRefs: (id) => this.messages.get(id)?.refs ?? 0,
      queueRefs: (name) => this.queues.get(name)?.refs,
    }, this.maxPayloadBytes);
    // One flush is one database transaction: the ops land together or not at all.
    for (const op of ops) {
      if (op.op === 'addMessage') this.applyAddMessage(op.msgId, op.payload);
      else if (op.op === 'addRef') this.applyAddRef(op.queue, this.queueOf(op.queue), op.msgId);
      else this.applyAck(op.queue, this.queueOf(op.queue), op.msgId);
    }
    this.schedule();
  }

  sync(cb: (err: Error | null) => void): void {
    if (!acceptSync('store', this.state, this.failure, cb)) return;
    if (!this.delta.empty()) this.waiters.push(cb);
    else if (this.flushing !== null) this.flushing.push(cb);
    else process.nextTick(cb, null);
  }

  readPayload(msgId: number): Buffer {
    if (this.state !== 'open') throw new StoreError('store is not open', 'ERR_STORE_CLOSED');
    const m = this.messages.get(msgId);
    if (m === undefined) throw new RangeError(`message ${msgId} is not stored`);
    if (m.payload !== null) return m.payload;
    return (this.opts.bodies as Pager).read(m.offset, m.size);
  }

  stats(): { fileBytes: number; liveBytes: number; liveMessages: number; compactions: number } {
    return { fileBytes: this.liveBytes, liveBytes: this.liveBytes, liveMessages: this.messages.size, compactions: 0 };
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    const wasOpen = this.state === 'open';
    let err: Error | null = null;
    if (wasOpen && this.failure === null) err = await new Promise<Error | null>((resolve) => this.sync(resolve));
    this.state = 'closed';
    await this.client.end().catch(() => undefined);
    if (err !== null) throw err;
  }

  /** Flushes so far (for tests and logs). */
  get flushCount(): number {
    return this.flushes;
  }

  // ------------------------------------------------------------------ the view

  private applyAddMessage(msgId: number, payload: Buffer): void {
    // A copy: the caller's buffer may be a view of a socket chunk that gets reused.
    const copy = Buffer.from(payload);
    const m: PgMessage = { refs: 0, size: copy.length, offset: -1, payload: null };
    this.keepBody(m, copy);
    this.messages.set(msgId, m);
    this.liveBytes += copy.length;
    this.delta.newMessages.set(msgId, copy);
    if (msgId >= this.nextMessageId) {
      this.nextMessageId = msgId + 1;
      this.delta.nextMessageId = this.nextMessageId;
    }
  }

  private applyAddRef(queue: string, q: PgQueue, msgId: number): void {
    q.refs.set(msgId, 0);
    (this.messages.get(msgId) as PgMessage).refs++;
    this.delta.newRefs.set(refKey(queue, msgId), { queue, msg: msgId, seq: ++this.refSeq, count: 0 });
  }

  private applyAck(queue: string, q: PgQueue, msgId: number): void {
    q.refs.delete(msgId);
    const k = refKey(queue, msgId);
    const d = this.delta;
    d.counts.delete(k);
    if (!d.newRefs.delete(k)) d.deadRefs.set(k, { queue, msg: msgId });
    this.unref(msgId);
  }

  private unref(msgId: number): void {
    const m = this.messages.get(msgId);
    if (m === undefined || --m.refs > 0) return;
    this.messages.delete(msgId);
    this.liveBytes -= m.size;
    if (!this.delta.newMessages.delete(msgId)) this.delta.deadMessages.add(msgId);
    // Nothing in the spill file is live any more: start it over.
    if (this.messages.size === 0) this.opts.bodies?.reset();
  }

  private keepBody(m: PgMessage, body: Buffer): void {
    if (this.opts.bodies) m.offset = this.opts.bodies.write(body);
    else m.payload = body;
  }

  private queueOf(name: string): PgQueue {
    const q = this.queues.get(name);
    if (q === undefined) throw new RangeError(`no queue ${String(name)}`);
    return q;
  }

  // ------------------------------------------------------------------ flushing

  private schedule(): void {
    if (this.scheduled || this.flushing !== null) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  /** Writes the delta in one transaction, then answers the syncs it covers; the next delta follows. */
  private async flush(): Promise<void> {
    if (this.flushing !== null || this.failure !== null || this.delta.empty()) return;
    const d = this.delta;
    this.delta = new Delta();
    this.flushing = this.waiters;
    this.waiters = [];
    let err: Error | null = null;
    try {
      this.fence();
      await this.write(d);
      this.flushes++;
    } catch (e) {
      err = e instanceof FencedError || e instanceof StoreError ? e : new StoreError(`write to the database failed: ${(e as Error).message}`, 'ERR_STORE_IO', { cause: e });
      await this.client.query('ROLLBACK').catch(() => undefined);
      this.fail(err);
    }
    const done = this.flushing;
    this.flushing = null;
    for (const cb of done) cb(err);
    if (this.failure === null && !this.delta.empty()) void this.flush();
  }

  private async write(d: Delta): Promise<void> {
    const c = this.client;
    const g = this.opts.group;
    await c.query('BEGIN');
    const token = this.opts.token?.() ?? 0;
    if (this.opts.token) {
      // The row lock orders us against a claim: it waits for our commit, or we see its token.
      const r = await c.query('SELECT token FROM amqp_mesh_lease WHERE grp = $1 AND token = $2 AND NOT released AND expires_at > clock_timestamp() FOR UPDATE', [g, token]);
      if (r.rowCount !== 1) throw new FencedError(`store lock token ${token} of group ${g} no longer holds the lease in the database; write refused`);
    }
    if (d.deletedQueues.size > 0) {
      const names = [...d.deletedQueues];
      await c.query('DELETE FROM amqp_mesh_ref WHERE grp = $1 AND queue = ANY($2::text[])', [g, names]);
      await c.query('DELETE FROM amqp_mesh_queue WHERE grp = $1 AND name = ANY($2::text[])', [g, names]);
    }
    if (d.upsertQueues.size > 0) {
      const names: string[] = [];
      const seqs: number[] = [];
      const metas: string[] = [];
      for (const [n, q] of d.upsertQueues) {
        names.push(n);
        seqs.push(q.seq);
        metas.push(q.meta);
      }
      await c.query(
        'INSERT INTO amqp_mesh_queue (grp, name, seq, meta) SELECT $1, * FROM unnest($2::text[], $3::bigint[], $4::text[]) ' +
        'ON CONFLICT (grp, name) DO UPDATE SET meta = EXCLUDED.meta', [g, names, seqs, metas]);
    }
    if (d.newMessages.size > 0) {
      // Bodies as binary parameters, many rows per statement: no hex or escaping on the way.
      const rows = [...d.newMessages];
      for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
        const chunk = rows.slice(i, i + ROWS_PER_STATEMENT);
        const values: unknown[] = [g];
        const tuples = chunk.map(([id, body], j) => {
          values.push(id, body);
          return `($1, $${2 * j + 2}, $${2 * j + 3})`;
        });
        await c.query(`INSERT INTO amqp_mesh_message (grp, id, payload) VALUES ${tuples.join(',')}`, values);
      }
    }
    if (d.deadRefs.size > 0) {
      const qs: string[] = [];
      const ids: number[] = [];
      for (const r of d.deadRefs.values()) {
        qs.push(r.queue);
        ids.push(r.msg);
      }
      await c.query('DELETE FROM amqp_mesh_ref r USING unnest($2::text[], $3::bigint[]) AS d(q, m) WHERE r.grp = $1 AND r.queue = d.q AND r.msg = d.m', [g, qs, ids]);
    }
    if (d.newRefs.size > 0) {
      const qs: string[] = [];
      const ids: number[] = [];
      const seqs: number[] = [];
      const counts: number[] = [];
      for (const r of d.newRefs.values()) {
        qs.push(r.queue);
        ids.push(r.msg);
        seqs.push(r.seq);
        counts.push(r.count);
      }
      await c.query('INSERT INTO amqp_mesh_ref (grp, queue, msg, seq, delivery_count) SELECT $1, * FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::bigint[])', [g, qs, ids, seqs, counts]);
    }
    if (d.counts.size > 0) {
      const qs: string[] = [];
      const ids: number[] = [];
      const counts: number[] = [];
      for (const r of d.counts.values()) {
        qs.push(r.queue);
        ids.push(r.msg);
        counts.push(r.count);
      }
      await c.query('UPDATE amqp_mesh_ref r SET delivery_count = d.c FROM unnest($2::text[], $3::bigint[], $4::bigint[]) AS d(q, m, c) WHERE r.grp = $1 AND r.queue = d.q AND r.msg = d.m', [g, qs, ids, counts]);
    }
    if (d.deadMessages.size > 0) {
      await c.query('DELETE FROM amqp_mesh_message WHERE grp = $1 AND id = ANY($2::bigint[])', [g, [...d.deadMessages]]);
    }
    if (d.nextMessageId > 0) {
      await c.query('INSERT INTO amqp_mesh_state (grp, next_message_id) VALUES ($1, $2) ON CONFLICT (grp) DO UPDATE SET next_message_id = GREATEST(amqp_mesh_state.next_message_id, EXCLUDED.next_message_id)', [g, d.nextMessageId]);
    }
    await c.query('COMMIT');
  }

  /** The store is unusable from now on: pending syncs get `err`, later writes throw. */
  private fail(err: Error): void {
    if (this.failure !== null) return;
    this.failure = err;
    this.log('error', `store: ${err.message}`);
    const waiters = this.waiters;
    this.waiters = [];
    for (const cb of waiters) process.nextTick(cb, err);
  }
}
