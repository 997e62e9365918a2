/**
 * The {@link Store} contract (broker/store/types.ts), run against every implementation: the
 * in-memory store (test/unit/store.test.ts) and the file journal (test/system/journal.test.ts).
 * Not a test file: `storeContract` registers and runs one uvu suite.
 *
 * "Restart" is `close()` then `factory.reopen()`; "crash" is `reopen()` without closing, after
 * which only what sync() reported durable may be relied on.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FencedError, Recovered, Store, StoreError, StoreOptions, TxOp } from '../../broker/store/types';
import { waitFor } from './wait';

/** How the contract gets stores of one implementation. */
export interface StoreFactory {
  /** A store over fresh, empty storage (the storage of later `reopen` calls). */
  open(opts?: StoreOptions): Store | Promise<Store>;
  /** A new store over the storage of the last `open`: a restart. */
  reopen(opts?: StoreOptions): Store | Promise<Store>;
  /** Removes the storage of the last `open`. */
  cleanup(): void | Promise<void>;
}

/** Resolves once `s` reports everything appended so far durable; rejects with its error. */
export function synced(s: Store): Promise<void> {
  return new Promise((resolve, reject) => s.sync((err) => (err ? reject(err) : resolve())));
}

/** Small deterministic PRNG (mulberry32): the random test replays identically from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The state a store should recover, maintained beside it by the tests. */
export class ExpectedState {
  readonly queues = new Map<string, { meta: Record<string, unknown>; refs: Map<number, number> }>();
  readonly payloads = new Map<number, Buffer>();
  private readonly refCounts = new Map<number, number>();
  nextMessageId = 1;

  createQueue(name: string, meta: Record<string, unknown>): void {
    const q = this.queues.get(name);
    if (q) q.meta = meta;
    else this.queues.set(name, { meta, refs: new Map() });
  }

  deleteQueue(name: string): void {
    const q = this.queues.get(name);
    if (!q) return;
    this.queues.delete(name);
    for (const id of q.refs.keys()) this.unref(id);
  }

  addMessage(id: number, payload: Buffer): void {
    this.payloads.set(id, Buffer.from(payload));
    this.refCounts.set(id, 0);
    this.nextMessageId = Math.max(this.nextMessageId, id + 1);
  }

  addRef(queue: string, id: number): void {
    this.queues.get(queue)!.refs.set(id, 0);
    this.refCounts.set(id, this.refCounts.get(id)! + 1);
  }

  ack(queue: string, id: number): void {
    this.queues.get(queue)!.refs.delete(id);
    this.unref(id);
  }

  setDeliveryCount(queue: string, id: number, count: number): void {
    this.queues.get(queue)!.refs.set(id, count);
  }

  apply(op: TxOp): void {
    if (op.op === 'addMessage') this.addMessage(op.msgId, op.payload);
    else if (op.op === 'addRef') this.addRef(op.queue, op.msgId);
    else this.ack(op.queue, op.msgId);
  }

  /** Messages that survive a restart: those with a reference. */
  liveIds(): number[] {
    return [...this.refCounts].filter(([, n]) => n > 0).map(([id]) => id).sort((a, b) => a - b);
  }

  /** What a restart does to the expectation: unreferenced messages are gone. */
  restarted(): void {
    for (const [id, n] of this.refCounts) {
      if (n === 0) {
        this.refCounts.delete(id);
        this.payloads.delete(id);
      }
    }
  }

  private unref(id: number): void {
    const n = this.refCounts.get(id)! - 1;
    if (n > 0) {
      this.refCounts.set(id, n);
    } else {
      this.refCounts.delete(id);
      this.payloads.delete(id);
    }
  }
}

/** Asserts that `rec` is exactly `exp`: queue order, meta, refs in order with counts, bodies, next id. */
export function assertRecovered(rec: Recovered, exp: ExpectedState, what: string): void {
  assert.equal([...rec.queues.keys()], [...exp.queues.keys()], `${what}: queues in creation order`);
  for (const [name, q] of exp.queues) {
    const r = rec.queues.get(name)!;
    assert.equal(r.meta, q.meta, `${what}: meta of ${name}`);
    const want = [...q.refs].map(([msgId, deliveryCount]) => ({ msgId, deliveryCount }));
    if (r.refs.length !== want.length || r.refs.some((x, i) => x.msgId !== want[i].msgId || x.deliveryCount !== want[i].deliveryCount)) {
      assert.equal(r.refs, want, `${what}: refs of ${name} in addRef order with delivery counts`);
    }
  }
  const ids = [...rec.messages.keys()].sort((a, b) => a - b);
  assert.equal(ids, exp.liveIds(), `${what}: recovered message ids`);
  for (const id of ids) {
    if (!rec.messages.get(id)!.equals(exp.payloads.get(id)!)) assert.unreachable(`${what}: payload of message ${id} differs`);
  }
  assert.is(rec.nextMessageId, exp.nextMessageId, `${what}: nextMessageId`);
}

function payloadOf(id: number, size = 16 + (id % 50)): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (id * 31 + i * 7) & 0xff;
  return b;
}

function throwsKind(fn: () => unknown, kind: new (...a: never[]) => Error, what: string): void {
  assert.throws(fn, (e: unknown) => e instanceof kind, `${what}: expected ${kind.name}`);
}

/**
 * Registers and runs the contract suite for one implementation. Each test opens fresh storage
 * through `factory`; every store it opened is closed and the storage removed afterwards.
 */
export function storeContract(name: string, factory: StoreFactory): void {
  const t = suite(`${name} store contract`);
  let opened: Store[] = [];
  const open = async (opts?: StoreOptions): Promise<Store> => {
    const s = await factory.open(opts);
    opened.push(s);
    return s;
  };
  const reopen = async (opts?: StoreOptions): Promise<Store> => {
    const s = await factory.reopen(opts);
    opened.push(s);
    return s;
  };
  /** Closes `s` and recovers a new store over the same storage. */
  const restart = async (s: Store, opts?: StoreOptions): Promise<{ store: Store; rec: Recovered }> => {
    await s.close();
    const store = await reopen(opts);
    return { store, rec: store.recover() };
  };

  t.after.each(async () => {
    for (const s of opened) await s.close().catch(() => undefined);
    opened = [];
    await factory.cleanup();
  });

  t('a fresh store recovers nothing; nextMessageId starts at 1', async () => {
    const s = await open();
    const rec = s.recover();
    assert.is(rec.queues.size, 0);
    assert.is(rec.messages.size, 0);
    assert.is(rec.nextMessageId, 1);
    assert.is(rec.truncated, null);
    assert.equal(s.stats().liveMessages, 0);
    assert.is(s.stats().compactions, 0);
    const again = await restart(s);
    assert.is(again.rec.queues.size, 0);
    assert.is(again.rec.nextMessageId, 1);
  });

  t('queues: creation order and meta survive; delete drops one; recreating puts it last; createQueue again replaces the meta and keeps the refs', async () => {
    const s = await open();
    s.recover();
    const exp = new ExpectedState();
    const metas: Record<string, Record<string, unknown>> = {
      q1: { address: 'a1', multicast: false, filter: null, nested: { list: [1, 'two', true], unicode: 'été ✓' } },
      q2: { address: 'a2', multicast: true },
      'q3/ü': {},
    };
    for (const [n, m] of Object.entries(metas)) {
      s.createQueue(n, m);
      exp.createQueue(n, m);
    }
    s.addMessage(1, payloadOf(1));
    s.addRef('q1', 1);
    exp.addMessage(1, payloadOf(1));
    exp.addRef('q1', 1);
    s.deleteQueue('q2');
    exp.deleteQueue('q2');
    s.deleteQueue('no-such-queue'); // a no-op
    await synced(s);
    let r = await restart(s);
    assertRecovered(r.rec, exp, 'after delete');
    r.store.createQueue('q2', { again: 1 });
    exp.createQueue('q2', { again: 1 });
    r.store.createQueue('q1', { replaced: true });
    exp.createQueue('q1', { replaced: true });
    r = await restart(r.store);
    assertRecovered(r.rec, exp, 'after recreate and meta update');
    assert.equal([...r.rec.queues.keys()], ['q1', 'q3/ü', 'q2']);
  });

  t('messages, refs and acks are recovered exactly, refs in addRef order', async () => {
    const s = await open();
    s.recover();
    const exp = new ExpectedState();
    for (const q of ['a', 'b', 'c']) {
      s.createQueue(q, { q });
      exp.createQueue(q, { q });
    }
    // Refs deliberately added out of id order: order is addRef order, not id order.
    const ids = Array.from({ length: 300 }, (_, i) => i + 1);
    for (const id of ids) {
      s.addMessage(id, payloadOf(id));
      exp.addMessage(id, payloadOf(id));
    }
    for (const id of [...ids].reverse()) {
      const q = ['a', 'b', 'c'][id % 3];
      s.addRef(q, id);
      exp.addRef(q, id);
    }
    for (const id of ids) {
      if (id % 4 === 0) {
        const q = ['a', 'b', 'c'][id % 3];
        s.ack(q, id);
        exp.ack(q, id);
      }
    }
    await synced(s);
    let r = await restart(s);
    assertRecovered(r.rec, exp, 'first restart');
    // The recovered store carries on where the old one stopped.
    for (let id = 301; id <= 320; id++) {
      r.store.addMessage(id, payloadOf(id));
      r.store.addRef('b', id);
      exp.addMessage(id, payloadOf(id));
      exp.addRef('b', id);
    }
    r.store.ack('a', 3);
    exp.ack('a', 3);
    r = await restart(r.store);
    assertRecovered(r.rec, exp, 'second restart');
  });

  t('random mutations (seeded) are recovered exactly across three restarts', async () => {
    const rnd = prng(20240611);
    const exp = new ExpectedState();
    let s = await open();
    s.recover();
    let nextId = 1;
    const names = ['alpha', 'beta', 'gamma', 'delta', 'eps'];
    const pickRef = (): [string, number] | null => {
      const qs = [...exp.queues].filter(([, q]) => q.refs.size > 0);
      if (qs.length === 0) return null;
      const [qn, q] = qs[Math.floor(rnd() * qs.length)];
      let k = Math.floor(rnd() * Math.min(q.refs.size, 8));
      for (const id of q.refs.keys()) if (k-- === 0) return [qn, id];
      return [qn, q.refs.keys().next().value as number];
    };
    for (let phase = 0; phase < 3; phase++) {
      for (let i = 0; i < 1500; i++) {
        const r = rnd();
        const queues = [...exp.queues.keys()];
        if (queues.length === 0 || r < 0.03) {
          const n = names[Math.floor(rnd() * names.length)];
          const meta = { n: Math.floor(rnd() * 1000) };
          s.createQueue(n, meta);
          exp.createQueue(n, meta);
        } else if (r < 0.045) {
          const n = queues[Math.floor(rnd() * queues.length)];
          s.deleteQueue(n);
          exp.deleteQueue(n);
        } else if (r < 0.45) {
          const id = nextId++;
          const p = payloadOf(id, Math.floor(rnd() * 300));
          s.addMessage(id, p);
          exp.addMessage(id, p);
          const fanout = rnd() < 0.2 ? 2 : 1;
          for (const q of [...new Set(Array.from({ length: fanout }, () => queues[Math.floor(rnd() * queues.length)]))]) {
            s.addRef(q, id);
            exp.addRef(q, id);
          }
        } else if (r < 0.7) {
          const ref = pickRef();
          if (ref) {
            s.ack(ref[0], ref[1]);
            exp.ack(ref[0], ref[1]);
          }
        } else if (r < 0.8) {
          const ref = pickRef();
          if (ref) {
            const c = Math.floor(rnd() * 20);
            s.setDeliveryCount(ref[0], ref[1], c);
            exp.setDeliveryCount(ref[0], ref[1], c);
          }
        } else if (r < 0.93) {
          const ops: TxOp[] = [];
          const n = 1 + Math.floor(rnd() * 3);
          for (let k = 0; k < n; k++) {
            const id = nextId++;
            ops.push({ op: 'addMessage', msgId: id, payload: payloadOf(id, Math.floor(rnd() * 100)) });
            ops.push({ op: 'addRef', queue: queues[Math.floor(rnd() * queues.length)], msgId: id });
          }
          const ref = pickRef();
          if (ref) ops.push({ op: 'ack', queue: ref[0], msgId: ref[1] });
          s.commitTx(ops);
          for (const op of ops) exp.apply(op);
        } else if (r < 0.95) {
          await synced(s);
        }
      }
      await synced(s);
      exp.restarted();
      const next = await restart(s);
      assertRecovered(next.rec, exp, `restart ${phase + 1}`);
      s = next.store;
    }
  });

  t('deliveryCount is persisted and updated in place (ref order kept)', async () => {
    const s = await open();
    s.recover();
    s.createQueue('q', {});
    for (let id = 1; id <= 5; id++) {
      s.addMessage(id, payloadOf(id));
      s.addRef('q', id);
    }
    s.setDeliveryCount('q', 2, 1);
    s.setDeliveryCount('q', 2, 7);
    s.setDeliveryCount('q', 4, 3);
    s.setDeliveryCount('q', 5, 2);
    s.setDeliveryCount('q', 5, 0);
    await synced(s);
    const r = await restart(s);
    assert.equal(r.rec.queues.get('q')!.refs, [
      { msgId: 1, deliveryCount: 0 },
      { msgId: 2, deliveryCount: 7 },
      { msgId: 3, deliveryCount: 0 },
      { msgId: 4, deliveryCount: 3 },
      { msgId: 5, deliveryCount: 0 },
    ]);
    r.store.setDeliveryCount('q', 4, 4);
    const r2 = await restart(r.store);
    assert.is(r2.rec.queues.get('q')!.refs[3].deliveryCount, 4);
  });

  t('a message referenced by two queues survives until both acked', async () => {
    const s = await open();
    s.recover();
    s.createQueue('qa', {});
    s.createQueue('qb', {});
    const body = payloadOf(9, 100);
    s.addMessage(9, body);
    s.addRef('qa', 9);
    s.addRef('qb', 9);
    s.ack('qa', 9);
    assert.ok(s.readPayload(9).equals(body), 'still readable with one ref left');
    assert.is(s.stats().liveMessages, 1);
    await synced(s);
    let r = await restart(s);
    assert.equal(r.rec.queues.get('qa')!.refs, []);
    assert.equal(r.rec.queues.get('qb')!.refs, [{ msgId: 9, deliveryCount: 0 }]);
    assert.ok(r.rec.messages.get(9)?.equals(body), 'body recovered while qb holds it');
    r.store.ack('qb', 9);
    assert.is(r.store.stats().liveMessages, 0);
    throwsKind(() => r.store.readPayload(9), Error, 'readPayload of an acked message');
    r = await restart(r.store);
    assert.is(r.rec.messages.size, 0);
    assert.equal(r.rec.queues.get('qb')!.refs, []);
    assert.is(r.rec.nextMessageId, 10);
  });

  t('deleteQueue drops its refs; messages only it held are gone, shared ones stay', async () => {
    const s = await open();
    s.recover();
    s.createQueue('keep', {});
    s.createQueue('drop', {});
    s.addMessage(1, payloadOf(1));
    s.addRef('drop', 1);
    s.addMessage(2, payloadOf(2));
    s.addRef('drop', 2);
    s.addRef('keep', 2);
    s.setDeliveryCount('drop', 2, 5);
    s.deleteQueue('drop');
    assert.is(s.stats().liveMessages, 1);
    throwsKind(() => s.addRef('drop', 2), RangeError, 'addRef to a deleted queue');
    const r = await restart(s);
    assert.equal([...r.rec.queues.keys()], ['keep']);
    assert.equal([...r.rec.messages.keys()], [2]);
    assert.equal(r.rec.queues.get('keep')!.refs, [{ msgId: 2, deliveryCount: 0 }]);
  });

  t('commitTx applies every op; an invalid tx throws and applies none', async () => {
    const s = await open();
    s.recover();
    const exp = new ExpectedState();
    s.createQueue('q', {});
    s.createQueue('r', {});
    exp.createQueue('q', {});
    exp.createQueue('r', {});
    s.addMessage(1, payloadOf(1));
    s.addRef('q', 1);
    exp.addMessage(1, payloadOf(1));
    exp.addRef('q', 1);
    const good: TxOp[] = [
      { op: 'addMessage', msgId: 2, payload: payloadOf(2) },
      { op: 'addRef', queue: 'q', msgId: 2 },
      { op: 'addRef', queue: 'r', msgId: 2 },
      { op: 'addMessage', msgId: 3, payload: payloadOf(3) },
      { op: 'addRef', queue: 'r', msgId: 3 },
      { op: 'ack', queue: 'q', msgId: 1 },
    ];
    s.commitTx(good);
    for (const op of good) exp.apply(op);
    assert.ok(s.readPayload(3).equals(payloadOf(3)), 'readPayload of a message added by a tx');
    const before = s.stats();
    const bad: TxOp[][] = [
      [{ op: 'addMessage', msgId: 4, payload: payloadOf(4) }, { op: 'addRef', queue: 'q', msgId: 4 }, { op: 'ack', queue: 'q', msgId: 1 }], // 1 already acked
      [{ op: 'addMessage', msgId: 5, payload: payloadOf(5) }, { op: 'addRef', queue: 'nope', msgId: 5 }],
      [{ op: 'addRef', queue: 'q', msgId: 3 }, { op: 'addRef', queue: 'q', msgId: 3 }], // twice
      [{ op: 'addMessage', msgId: 2, payload: payloadOf(2) }], // duplicate id
      [{ op: 'addRef', queue: 'q', msgId: 1 }], // acked to zero: gone
      [{ op: 'ack', queue: 'r', msgId: 3 }, { op: 'addRef', queue: 'q', msgId: 3 }], // dead within the tx
      [{ op: 'addMessage', msgId: 6, payload: 'x' as unknown as Buffer }],
      [{ op: 'bogus', msgId: 7 } as unknown as TxOp],
    ];
    for (const [i, ops] of bad.entries()) assert.throws(() => s.commitTx(ops), undefined, `bad tx ${i} throws`);
    assert.equal(s.stats().liveMessages, before.liveMessages, 'nothing applied');
    throwsKind(() => s.readPayload(4), RangeError, 'message of a failed tx');
    s.commitTx([]); // empty: nothing
    // Ops of one tx see the earlier ones: add, ref, ack, ref again elsewhere.
    const chained: TxOp[] = [
      { op: 'addMessage', msgId: 8, payload: payloadOf(8) },
      { op: 'addRef', queue: 'q', msgId: 8 },
      { op: 'addRef', queue: 'r', msgId: 8 },
      { op: 'ack', queue: 'q', msgId: 8 },
    ];
    s.commitTx(chained);
    for (const op of chained) exp.apply(op);
    await synced(s);
    const r = await restart(s);
    assertRecovered(r.rec, exp, 'after transactions');
  });

  t('message ids are never reused: nextMessageId survives acks, deletes and restarts', async () => {
    const s = await open();
    s.recover();
    s.createQueue('q', {});
    for (let id = 1; id <= 10; id++) {
      s.addMessage(id, payloadOf(id));
      s.addRef('q', id);
    }
    for (let id = 1; id <= 10; id++) s.ack('q', id);
    await synced(s);
    let r = await restart(s);
    assert.is(r.rec.nextMessageId, 11, 'after acking everything');
    r.store.addMessage(1000, payloadOf(1000));
    r.store.addRef('q', 1000);
    r.store.deleteQueue('q');
    r = await restart(r.store);
    assert.is(r.rec.nextMessageId, 1001, 'after deleting the queue of the highest id');
    assert.is(r.rec.messages.size, 0);
    r = await restart(r.store);
    assert.is(r.rec.nextMessageId, 1001, 'again');
  });

  t('readPayload: before and after sync and after a restart; unknown ids throw', async () => {
    const s = await open();
    s.recover();
    s.createQueue('q', {});
    const bodies = new Map<number, Buffer>();
    for (let id = 1; id <= 50; id++) {
      const b = payloadOf(id, id * 37);
      bodies.set(id, b);
      s.addMessage(id, b);
      s.addRef('q', id);
      assert.ok(s.readPayload(id).equals(b), `pending ${id}`);
    }
    const empty = Buffer.alloc(0);
    s.addMessage(51, empty);
    s.addRef('q', 51);
    bodies.set(51, empty);
    // The store keeps its own copy: the caller may reuse its buffer.
    const reused = Buffer.from('original');
    s.addMessage(52, reused);
    s.addRef('q', 52);
    reused.write('CHANGED!');
    bodies.set(52, Buffer.from('original'));
    await synced(s);
    for (const [id, b] of bodies) assert.ok(s.readPayload(id).equals(b), `synced ${id}`);
    throwsKind(() => s.readPayload(999), RangeError, 'unknown id');
    const r = await restart(s);
    for (const [id, b] of bodies) {
      assert.ok(r.store.readPayload(id).equals(b), `after restart ${id}`);
      assert.ok(r.rec.messages.get(id)!.equals(b), `recovered ${id}`);
    }
  });

  t('sync callbacks fire once each, in registration order, with or without new records', async () => {
    const s = await open();
    s.recover();
    s.createQueue('q', {});
    const order: number[] = [];
    const errors: unknown[] = [];
    let id = 1;
    for (let i = 0; i < 90; i++) {
      if (i % 3 !== 2) {
        s.addMessage(id, payloadOf(id));
        s.addRef('q', id++);
      }
      s.sync((err) => {
        if (err) errors.push(err);
        order.push(i);
      });
      // Let a batch start so later callbacks are registered while it is in flight.
      if (i % 10 === 9) await new Promise((res) => setImmediate(res));
    }
    await waitFor(() => order.length === 90, 10_000, 'every sync callback');
    assert.equal(errors, []);
    assert.equal(order, Array.from({ length: 90 }, (_, i) => i));
    await synced(s); // nothing new to write: still answered
    let fired = 0;
    s.sync(() => fired++);
    s.sync(() => fired++);
    await waitFor(() => fired === 2, 5000, 'idle syncs');
  });

  t('what sync reported durable is recovered after a crash (no close)', async () => {
    const s = await open();
    s.recover();
    const exp = new ExpectedState();
    s.createQueue('q', { durable: true });
    exp.createQueue('q', { durable: true });
    for (let id = 1; id <= 40; id++) {
      s.addMessage(id, payloadOf(id));
      s.addRef('q', id);
      exp.addMessage(id, payloadOf(id));
      exp.addRef('q', id);
    }
    s.ack('q', 7);
    exp.ack('q', 7);
    await synced(s);
    const crashed = await reopen();
    assertRecovered(crashed.recover(), exp, 'after crash');
  });

  t('fence: a FencedError fails sync and every later write; nothing after it is recovered', async () => {
    let fenced = false;
    const fence = (): void => {
      if (fenced) throw new FencedError('lost the store lock (test)');
    };
    const s = await open({ fence });
    s.recover();
    s.createQueue('q', {});
    s.addMessage(1, payloadOf(1));
    s.addRef('q', 1);
    await synced(s);
    fenced = true;
    s.addMessage(2, payloadOf(2));
    s.addRef('q', 2);
    const errs: Array<Error | null> = [];
    s.sync((e) => errs.push(e));
    s.sync((e) => errs.push(e));
    await waitFor(() => errs.length === 2, 5000, 'sync callbacks after the fence');
    assert.ok(errs[0] instanceof FencedError, `sync fails with FencedError, got ${errs[0]?.name}`);
    assert.ok(errs[1] instanceof FencedError);
    throwsKind(() => s.addMessage(3, payloadOf(3)), FencedError, 'addMessage after the fence');
    throwsKind(() => s.createQueue('x', {}), FencedError, 'createQueue after the fence');
    throwsKind(() => s.ack('q', 1), FencedError, 'ack after the fence');
    throwsKind(() => s.commitTx([{ op: 'ack', queue: 'q', msgId: 1 }]), FencedError, 'commitTx after the fence');
    const late = await new Promise<Error | null>((res) => s.sync(res));
    assert.ok(late instanceof FencedError, 'a later sync fails too');
    await s.close(); // resolves: the failure was already reported
    const r = await reopen();
    const rec = r.recover();
    assert.equal([...rec.messages.keys()], [1], 'only what was durable before the fence');
    assert.equal(rec.queues.get('q')!.refs, [{ msgId: 1, deliveryCount: 0 }]);
  });

  t('a 1 MiB payload round-trips (pending, synced, recovered)', async () => {
    const s = await open();
    s.recover();
    s.createQueue('big', {});
    const big = Buffer.allocUnsafe(1024 * 1024);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
    s.addMessage(1, big);
    s.addRef('big', 1);
    s.addMessage(2, payloadOf(2));
    s.addRef('big', 2);
    assert.ok(s.readPayload(1).equals(big), 'pending');
    await synced(s);
    assert.ok(s.readPayload(1).equals(big), 'synced');
    const r = await restart(s);
    assert.ok(r.rec.messages.get(1)!.equals(big), 'recovered');
    assert.ok(r.store.readPayload(1).equals(big), 'read after restart');
    assert.ok(r.rec.messages.get(2)!.equals(payloadOf(2)), 'the small one after it');
  });

  t('every input has a limit: bad ids, payloads, names, meta and refs throw and change nothing', async () => {
    const s = await open();
    s.recover();
    const exp = new ExpectedState();
    s.createQueue('q', {});
    exp.createQueue('q', {});
    s.addMessage(1, payloadOf(1));
    s.addRef('q', 1);
    exp.addMessage(1, payloadOf(1));
    exp.addRef('q', 1);
    for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 53, '3' as unknown as number]) {
      throwsKind(() => s.addMessage(bad, payloadOf(2)), RangeError, `message id ${String(bad)}`);
    }
    throwsKind(() => s.addMessage(2, 'text' as unknown as Buffer), TypeError, 'payload not a Buffer');
    throwsKind(() => s.addMessage(2, Buffer.alloc(64 * 1024 * 1024 + 2048)), RangeError, 'payload over 64 MiB + 1 KiB');
    throwsKind(() => s.addMessage(1, payloadOf(1)), RangeError, 'duplicate message id');
    throwsKind(() => s.createQueue('', {}), TypeError, 'empty queue name');
    throwsKind(() => s.createQueue('n'.repeat(65536), {}), RangeError, 'queue name over 65535 bytes');
    throwsKind(() => s.createQueue('bad\ud800', {}), TypeError, 'lone surrogate in a queue name');
    throwsKind(() => s.createQueue('m', { blob: 'x'.repeat(1 << 20) }), RangeError, 'meta over 1 MiB');
    throwsKind(() => s.createQueue('m', [] as unknown as Record<string, unknown>), TypeError, 'meta not an object');
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    throwsKind(() => s.createQueue('m', circular), TypeError, 'meta not JSON-safe');
    throwsKind(() => s.addRef('nope', 1), RangeError, 'addRef to an unknown queue');
    throwsKind(() => s.addRef('q', 77), RangeError, 'addRef of an unknown message');
    throwsKind(() => s.addRef('q', 1), RangeError, 'addRef twice');
    throwsKind(() => s.ack('q', 77), RangeError, 'ack of a ref not held');
    throwsKind(() => s.ack('nope', 1), RangeError, 'ack on an unknown queue');
    throwsKind(() => s.setDeliveryCount('q', 1, -1), RangeError, 'negative delivery count');
    throwsKind(() => s.setDeliveryCount('q', 1, 2 ** 32), RangeError, 'delivery count over u32');
    throwsKind(() => s.setDeliveryCount('q', 77, 1), RangeError, 'delivery count of a ref not held');
    throwsKind(() => s.commitTx('x' as unknown as TxOp[]), TypeError, 'tx not an array');
    throwsKind(() => s.sync(undefined as unknown as () => void), TypeError, 'sync without a callback');
    const longName = 'n'.repeat(65535);
    s.createQueue(longName, {});
    exp.createQueue(longName, {});
    await synced(s);
    const r = await restart(s);
    assertRecovered(r.rec, exp, 'after refused inputs');
  });

  t('lifecycle: writes before recover and after close throw ERR_STORE_CLOSED; recover runs once; close is idempotent', async () => {
    const s = await open();
    const closedErr = (e: unknown): boolean => e instanceof StoreError && e.code === 'ERR_STORE_CLOSED';
    assert.throws(() => s.createQueue('q', {}), closedErr, 'before recover');
    s.recover();
    assert.throws(() => s.recover(), closedErr, 'recover twice');
    s.createQueue('q', {});
    s.addMessage(1, payloadOf(1));
    s.addRef('q', 1);
    // No sync: close itself flushes.
    const c1 = s.close();
    const c2 = s.close();
    await Promise.all([c1, c2]);
    await s.close();
    assert.throws(() => s.addMessage(2, payloadOf(2)), closedErr, 'after close');
    const err = await new Promise<Error | null>((res) => s.sync(res));
    assert.ok(closedErr(err), 'sync after close reports ERR_STORE_CLOSED');
    const r = await reopen();
    const rec = r.recover();
    assert.equal([...rec.messages.keys()], [1], 'close flushed the unsynced records');
    assert.equal(rec.queues.get('q')!.refs, [{ msgId: 1, deliveryCount: 0 }]);
    const never = await reopen();
    await never.close(); // closing a store that never recovered is fine
  });

  t('stats: liveMessages follows adds and acks; liveBytes never exceeds fileBytes by design', async () => {
    const s = await open();
    s.recover();
    s.createQueue('q', {});
    for (let id = 1; id <= 20; id++) {
      s.addMessage(id, payloadOf(id, 1000));
      s.addRef('q', id);
    }
    let st = s.stats();
    assert.is(st.liveMessages, 20);
    assert.ok(st.liveBytes >= 20 * 1000, `liveBytes ${st.liveBytes} counts the bodies`);
    assert.ok(st.fileBytes >= st.liveBytes, 'fileBytes >= liveBytes while nothing is dead');
    for (let id = 1; id <= 15; id++) s.ack('q', id);
    await synced(s);
    st = s.stats();
    assert.is(st.liveMessages, 5);
    assert.ok(st.liveBytes < 20 * 1000, 'acked bodies are no longer live');
  });

  t.run();
}
