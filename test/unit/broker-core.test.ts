// The broker core without sockets or disk: a recording store, effects that collect deliveries,
// and time passed in.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Writer, Reader, Described, DecodeError, sym, symArray, long, uint, ulong, timestamp } from '../../amqp/codec';
import { D } from '../../amqp/performatives';
import { AddressSettings, BrokerCore, BrokerEffects, BrokerError } from '../../broker/core/broker';
import { Consumer, Ref } from '../../broker/core/queue';
import { checkValue, scanBrokerMessage, withDeliveryCount } from '../../broker/core/message-info';
import type { Recovered, Store, TxOp } from '../../broker/store/types';

/** Encodes a message: header, message-annotations, properties, application-properties, amqp-value body. */
function msg(body: string, o: { durable?: boolean; ttl?: number; group?: string; props?: Record<string, unknown>; annotations?: Record<string, unknown>; priority?: number } = {}): Buffer {
  const w = new Writer(256);
  w.descriptor(D.Header);
  const h = w.beginList();
  w.boolean(o.durable ?? true);
  w.ubyte(o.priority ?? 4);
  if (o.ttl) w.uint(o.ttl);
  else w.null();
  w.endList(h, 3);
  if (o.annotations) {
    w.descriptor(D.MessageAnnotations);
    const m = w.beginMap();
    let n = 0;
    for (const [k, v] of Object.entries(o.annotations)) {
      w.symbol(k);
      w.value(v);
      n += 2;
    }
    w.endMap(m, n);
  }
  w.descriptor(D.Properties);
  const p = w.beginList();
  w.string(body);
  for (let i = 1; i < 10; i++) w.null();
  if (o.group) w.string(o.group);
  else w.null();
  w.endList(p, 11);
  if (o.props) {
    w.descriptor(D.ApplicationProperties);
    w.value(o.props);
  }
  w.descriptor(D.AmqpValue);
  w.string(body);
  return w.take();
}

/** The amqp-value body as text ('<malformed>' for a message the codec cannot read). */
function bodyOf(payload: Buffer): string {
  const r = new Reader(payload);
  let last: unknown = null;
  try {
    while (r.off < payload.length) last = r.read();
  } catch (e) {
    if (e instanceof DecodeError) return '<malformed>';
    throw e;
  }
  return String((last as Described).value);
}

class RecordingStore implements Store {
  readonly ops: string[] = [];
  readonly bodies = new Map<number, Buffer>();
  recover(): Recovered {
    return { queues: new Map(), messages: new Map(), nextMessageId: 1, truncated: null };
  }
  createQueue(name: string): void { this.ops.push(`queue ${name}`); }
  deleteQueue(name: string): void { this.ops.push(`delete ${name}`); }
  addMessage(id: number, payload: Buffer): void { this.ops.push(`msg ${id}`); this.bodies.set(id, payload); }
  addRef(q: string, id: number): void { this.ops.push(`ref ${q} ${id}`); }
  ack(q: string, id: number): void { this.ops.push(`ack ${q} ${id}`); }
  setDeliveryCount(q: string, id: number, n: number): void { this.ops.push(`count ${q} ${id} ${n}`); }
  commitTx(ops: TxOp[]): void { this.ops.push(`tx ${ops.map((o) => o.op).join(',')}`); for (const o of ops) if (o.op === 'addMessage') this.bodies.set(o.msgId, o.payload); }
  sync(cb: (e: Error | null) => void): void { cb(null); }
  readPayload(id: number): Buffer { this.ops.push(`read ${id}`); return this.bodies.get(id) as Buffer; }
  stats() { return { fileBytes: 0, liveBytes: 0, liveMessages: 0, compactions: 0 }; }
  async close(): Promise<void> {}
}

class Fx implements BrokerEffects {
  readonly delivered: { c: Consumer; ref: Ref; body: string; payload: Buffer }[] = [];
  readonly room: string[] = [];
  canSend(): boolean { return true; }
  deliver(c: Consumer, ref: Ref, payload: Buffer): void { this.delivered.push({ c, ref, body: bodyOf(payload), payload }); }
  addressHasRoom(a: string): void { this.room.push(a); }
  log(): void {}
  bodiesFor(c: Consumer): string[] { return this.delivered.filter((d) => d.c === c).map((d) => d.body); }
}

const base: AddressSettings = { multicast: false, maxDeliveryAttempts: 3, deadLetterAddress: 'DLQ', expiryAddress: 'ExpiryQueue', maxSizeBytes: -1, addressFullPolicy: 'BLOCK', autoCreate: true };

function setup(over: (a: string) => Partial<AddressSettings> = () => ({}), pageCacheBytes = 1 << 30) {
  const store = new RecordingStore();
  const fx = new Fx();
  const core = new BrokerCore(store, fx, { pageCacheBytes, resolveSettings: (a) => ({ ...base, ...(a.startsWith('topic') ? { multicast: true } : {}), ...over(a) }) });
  const consumer = (address: string, o: Partial<Parameters<BrokerCore['attachConsumer']>[0]> = {}, credit = 100) => {
    const c = core.attachConsumer({ address, handle: null, selector: null, browse: false, preSettled: false, hint: null, subscription: null, ...o });
    core.onCredit(c, credit);
    return c;
  };
  return { store, fx, core, consumer };
}

test('queue: FIFO, competing consumers round-robin, credit honoured', () => {
  const { core, fx, consumer } = setup();
  for (let i = 0; i < 6; i++) core.send('q', null, msg(`m${i}`), 0);
  const a = consumer('q', {}, 2);
  const b = consumer('q', {}, 10);
  core.dispatch(0);
  assert.equal(fx.bodiesFor(a), ['m0', 'm2']);
  assert.equal(fx.bodiesFor(b), ['m1', 'm3', 'm4', 'm5']);
});

test('durable messages are journaled once per body, a ref per queue; acks journaled; non-durable never touch the store', () => {
  const { core, fx, store, consumer } = setup();
  const r = core.send('q', null, msg('d'), 0);
  assert.is(r.needsSync, true);
  const r2 = core.send('q', null, msg('v', { durable: false }), 0);
  assert.is(r2.needsSync, false);
  const c = consumer('q');
  core.dispatch(0);
  for (const d of fx.delivered) core.accept(d.ref);
  assert.equal(store.ops, ['queue q', 'msg 1', 'ref q 1', 'ack q 1']);
  void c;
});

test('topic: a message is stored once and referenced by each durable subscription; a filter decides what enters', () => {
  const { core, fx, store } = setup();
  const s1 = core.attachConsumer({ address: 'topic.t', handle: 1, selector: null, browse: false, preSettled: false, hint: null, subscription: { name: 'c:s1', durable: true, shared: false } });
  const s2 = core.attachConsumer({ address: 'topic.t', handle: 2, selector: "color = 'red'", browse: false, preSettled: false, hint: null, subscription: { name: 'c:s2', durable: true, shared: false } });
  core.onCredit(s1, 10);
  core.onCredit(s2, 10);
  core.send('topic.t', null, msg('blue', { props: { color: 'blue' } }), 0);
  core.send('topic.t', null, msg('red', { props: { color: 'red' } }), 0);
  core.dispatch(0);
  assert.equal(fx.bodiesFor(s1), ['blue', 'red']);
  assert.equal(fx.bodiesFor(s2), ['red']);
  assert.equal(store.ops.filter((o) => o.startsWith('msg')), ['msg 1', 'msg 2']);
  assert.equal(store.ops.filter((o) => o.startsWith('ref')), ['ref c:s1 1', 'ref c:s1 2', 'ref c:s2 2']);
});

test('released goes back to the head; modified counts attempts and rewrites the header; past the limit → DLQ without copying the body', () => {
  const { core, fx, store, consumer } = setup();
  core.send('q', null, msg('a'), 0);
  core.send('q', null, msg('b'), 0);
  const c = consumer('q', {}, 1);
  core.dispatch(0);
  core.redeliver(fx.delivered[0].ref, false, false, c);
  core.onCredit(c, 1);
  core.dispatch(0);
  assert.equal(fx.bodiesFor(c), ['a', 'a'], 'released: first again');
  for (let i = 0; i < 3; i++) {
    const d = fx.delivered[fx.delivered.length - 1];
    core.redeliver(d.ref, true, false, c);
    core.onCredit(c, 1);
    core.dispatch(0);
  }
  const counts = fx.delivered.map((d) => scanBrokerMessage(d.payload)).map((i) => i.headerStart >= 0);
  assert.ok(counts.every(Boolean));
  assert.equal(fx.bodiesFor(c), ['a', 'a', 'a', 'a', 'b'], 'a failed 3 times (limit 3) then moved; b next');
  assert.ok(store.ops.includes('count q 1 1') && store.ops.includes('count q 1 2'));
  assert.ok(store.ops.includes('ref DLQ 1') && store.ops.includes('ack q 1'), store.ops.join('; '));
  assert.is(store.ops.filter((o) => o === 'msg 1').length, 1, 'the body is not stored again');
  const dlq = consumer('DLQ');
  core.dispatch(0);
  assert.equal(fx.bodiesFor(dlq), ['a']);
});

test('withDeliveryCount: sets delivery-count and first-acquirer=false, keeps every other byte', () => {
  const original = msg('x', { ttl: 5000, priority: 7 });
  const info = scanBrokerMessage(original);
  const out = withDeliveryCount(original, info, 3);
  const header = new Reader(out).read() as Described;
  assert.equal(header.value, [true, 7, 5000, false, 3]);
  assert.equal(out.subarray(out.length - (original.length - info.headerEnd)), original.subarray(info.headerEnd), 'the rest is byte-identical');
});

test('undeliverable-here: never offered to that consumer again; groups stick to one consumer and move when it leaves', () => {
  const { core, fx, consumer } = setup();
  const a = consumer('q', {}, 10);
  core.send('q', null, msg('u'), 0);
  core.dispatch(0);
  assert.equal(fx.bodiesFor(a), ['u']);
  core.redeliver(fx.delivered[0].ref, false, true, a);
  core.dispatch(0);
  assert.equal(fx.bodiesFor(a), ['u'], 'not again to a');
  const b = consumer('q', {}, 10);
  core.dispatch(0);
  assert.equal(fx.bodiesFor(b), ['u']);

  const g = setup();
  const c1 = g.consumer('g', {}, 10);
  const c2 = g.consumer('g', {}, 10);
  for (let i = 0; i < 6; i++) g.core.send('g', null, msg(`x${i}`, { group: i % 2 ? 'odd' : 'even' }), 0);
  g.core.dispatch(0);
  const s1 = g.fx.bodiesFor(c1), s2 = g.fx.bodiesFor(c2);
  assert.equal([s1.length, s2.length], [3, 3]);
  assert.ok(s1.every((x) => Number(x[1]) % 2 === Number(s1[0][1]) % 2), 'one group per consumer');
  g.core.detachConsumer(c1, false);
  g.core.send('g', null, msg('late', { group: Number(s1[0][1]) % 2 ? 'odd' : 'even' }), 0);
  g.core.dispatch(0);
  assert.ok(g.fx.bodiesFor(c2).includes('late'), 'the group moved to c2');
  assert.is(g.fx.bodiesFor(c2).filter((x) => x.startsWith('x')).length, 6, "c1's unacknowledged messages were redelivered to c2");
});

test('scheduled delivery waits for its time; TTL expiry moves to the expiry address', () => {
  const { core, fx, consumer } = setup();
  const c = consumer('s', {}, 10);
  core.send('s', null, msg('later', { annotations: { 'x-opt-delivery-delay': 1000 } }), 0);
  core.send('s', null, msg('at', { annotations: { 'x-opt-delivery-time': 500 } }), 0);
  core.send('s', null, msg('now'), 0);
  core.dispatch(0);
  assert.equal(fx.bodiesFor(c), ['now']);
  assert.is(core.nextDue(), 500);
  core.onTick(600);
  core.dispatch(600);
  assert.equal(fx.bodiesFor(c), ['now', 'at']);
  core.onTick(1000);
  core.dispatch(1000);
  assert.equal(fx.bodiesFor(c), ['now', 'at', 'later']);

  const e = setup();
  e.core.send('t', null, msg('short', { ttl: 100 }), 0);
  e.core.send('t', null, msg('long'), 0);
  e.core.onTick(200);
  const x = e.consumer('ExpiryQueue');
  const t = e.consumer('t');
  e.core.dispatch(200);
  assert.equal(e.fx.bodiesFor(x), ['short']);
  assert.equal(e.fx.bodiesFor(t), ['long']);
});

test('browse sees without taking; selectors over properties and JMS header names', () => {
  const { core, fx, consumer } = setup();
  for (let i = 0; i < 4; i++) core.send('b', null, msg(`p${i}`, { props: { n: i }, priority: i * 2 }), 0);
  const br = consumer('b', { browse: true }, 100);
  core.dispatch(0);
  assert.equal(fx.bodiesFor(br), ['p0', 'p1', 'p2', 'p3']);
  const sel = consumer('b', { selector: 'n > 1 AND JMSPriority >= 6' }, 100);
  core.dispatch(0);
  assert.equal(fx.bodiesFor(sel), ['p3']);
  assert.throws(() => consumer('b', { selector: 'n >' }), (e: unknown) => e instanceof BrokerError && e.condition === 'amqp:invalid-field');
});

test('address full: FAIL throws resource-limit-exceeded; BLOCK reports full, and room once consumed', () => {
  const f = setup(() => ({ maxSizeBytes: 300, addressFullPolicy: 'FAIL' }));
  let ok = 0;
  let refused: unknown = null;
  for (let i = 0; i < 10 && refused === null; i++) {
    try {
      f.core.send('f', null, msg(`m${i}`), 0);
      ok++;
    } catch (e) {
      refused = e;
    }
  }
  assert.ok(refused instanceof BrokerError && refused.condition === 'amqp:resource-limit-exceeded');
  assert.ok(ok >= 2 && ok < 10, `accepted ${ok}`);
  const b = setup(() => ({ maxSizeBytes: 300 }));
  while (!b.core.isFull('bq')) b.core.send('bq', null, msg('x'), 0);
  const c = b.consumer('bq');
  b.core.dispatch(0);
  for (const d of b.fx.delivered) b.core.accept(d.ref);
  assert.equal(b.fx.room, ['bq']);
  assert.is(b.core.isFull('bq'), false);
  void c;
});

test('transactions: sends held until commit (one atomic store record); rollback of acks redelivers', () => {
  const { core, fx, store, consumer } = setup();
  const tx = core.declare();
  core.txSend(tx, 'tq', null, msg('t1'));
  core.txSend(tx, 'tq', null, msg('t2'));
  const c = consumer('tq', {}, 10);
  core.dispatch(0);
  assert.equal(fx.bodiesFor(c), [], 'nothing before commit');
  assert.is(core.discharge(tx, false, 0), true);
  core.dispatch(0);
  assert.equal(fx.bodiesFor(c), ['t1', 't2']);
  assert.ok(store.ops.includes('tx addMessage,addRef,addMessage,addRef'), store.ops.join('; '));
  const t2 = core.declare();
  for (const d of fx.delivered) core.txAck(t2, d.ref);
  core.discharge(t2, true, 0);
  core.onCredit(c, 10);
  core.dispatch(0);
  assert.equal(fx.bodiesFor(c), ['t1', 't2', 't1', 't2'], 'rolled-back acks: redelivered');
  const t3 = core.declare();
  for (const d of fx.delivered.slice(2)) core.txAck(t3, d.ref);
  core.discharge(t3, false, 0);
  assert.ok(store.ops.includes('tx ack,ack'));
  assert.is(core.queues.get('tq')!.depth, 0);
});

test('page cache: stored bodies past the budget are evicted once synced and read back for delivery', () => {
  const { core, fx, store, consumer } = setup(() => ({}), 1000);
  for (let i = 0; i < 50; i++) core.send('big', null, msg(`body-${i}`.padEnd(100, '.')), 0);
  core.evictIfNeeded(core.evictionMark());
  assert.ok(core.cached <= 1000, `cached ${core.cached}`);
  assert.ok(core.stats.evicted > 30);
  const c = consumer('big', {}, 100);
  core.dispatch(0);
  assert.is(fx.bodiesFor(c).length, 50);
  assert.equal(fx.bodiesFor(c)[49], `body-49`.padEnd(100, '.'));
  assert.ok(store.ops.some((o) => o.startsWith('read ')), 'read back from the store');
});

test('pager: bodies the store does not hold (non-durable) spill past the page cache, come back intact, and the pager resets when none is live', () => {
  const store = new RecordingStore();
  const fx = new Fx();
  const spill: Buffer[] = [];
  let resets = 0;
  let used = 0;
  const pager = {
    write(b: Buffer) { spill.push(Buffer.from(b)); used += b.length; return spill.length - 1; },
    read(off: number) { return spill[off]; },
    reset() { resets++; spill.length = 0; used = 0; },
  };
  const core = new BrokerCore(store, fx, { pageCacheBytes: 1000, resolveSettings: () => base, pager });
  for (let i = 0; i < 40; i++) core.send('v', null, msg(`v${i}`.padEnd(80, '-'), { durable: false }), 0);
  assert.ok(core.cached <= 1000, `cached ${core.cached}`);
  assert.ok(used > 2000, 'most bodies went to the pager');
  assert.equal(store.ops, ['queue v'], 'non-durable messages never reach the store');
  const c = core.attachConsumer({ address: 'v', handle: null, selector: null, browse: false, preSettled: false, hint: null, subscription: null });
  core.onCredit(c, 100);
  core.dispatch(0);
  assert.equal(fx.bodiesFor(c), Array.from({ length: 40 }, (_, i) => `v${i}`.padEnd(80, '-')));
  for (const d of fx.delivered) core.accept(d.ref);
  assert.is(resets, 1, 'reset once nothing paged is live');
});

test('a non-persistent broker journals nothing, even durable messages', () => {
  const store = new RecordingStore();
  const fx = new Fx();
  const core = new BrokerCore(store, fx, { pageCacheBytes: 1 << 20, resolveSettings: () => base, persistent: false });
  const r = core.send('np', null, msg('d'), 0);
  assert.is(r.needsSync, false);
  assert.equal(store.ops.filter((o) => !o.startsWith('queue')), []);
});

test('durable subscription survives its consumer detaching; closed (unsubscribe) deletes it', () => {
  const { core, store } = setup();
  const spec = { address: 'topic.x', handle: null, selector: null, browse: false, preSettled: false, hint: null, subscription: { name: 'c:sub', durable: true, shared: false } };
  const c = core.attachConsumer(spec);
  core.detachConsumer(c, false);
  assert.ok(core.queues.has('c:sub'));
  core.send('topic.x', null, msg('kept'), 0);
  assert.is(core.queues.get('c:sub')!.depth, 1);
  const c2 = core.attachConsumer(spec);
  assert.throws(() => core.attachConsumer(spec), (e: unknown) => e instanceof BrokerError && e.condition === 'amqp:resource-locked');
  core.detachConsumer(c2, true);
  assert.is(core.queues.has('c:sub'), false);
  assert.ok(store.ops.includes('delete c:sub'));
  void sym;
});

// ------------------------------------------------------------------ poison messages
//
// Malformed sections never escape as exceptions:
//
//   producer --send--> [core] --scan: refused (DecodeError), nothing stored
//   store (recovered, malformed) --> [core.recover] --> queue --dead-letter--> DLQ --> plain consumer
//   queue (message the scan passed, decode fails later) --> selector consumer: skipped, dead-lettered

/** The message of the replayed poison session: application-properties { "k": <format code 0xff> }, data "x". */
const POISON = Buffer.from('005374d10000000800000002a1016bff005375a00178', 'hex');

/** A store whose recovery finds `queues` and `messages` (as an older version could have written them). */
class RecoveringStore extends RecordingStore {
  constructor(private readonly rec: Recovered) {
    super();
    for (const [id, body] of rec.messages) this.bodies.set(id, body);
  }
  override recover(): Recovered {
    return this.rec;
  }
}

/** A recovered core: queue `name` holds refs to message ids in order (`meta` as the core writes it). */
function recovered(queues: [string, { address: string; multicast?: boolean; filter?: string | null }, number[]][], messages: [number, Buffer][]) {
  const store = new RecoveringStore({
    queues: new Map(queues.map(([name, meta, ids]) => [name, { meta: { multicast: false, filter: null, shared: false, ...meta }, refs: ids.map((msgId) => ({ msgId, deliveryCount: 0 })) }])),
    messages: new Map(messages),
    nextMessageId: 100,
    truncated: null,
  });
  const fx = new Fx();
  const logs: string[] = [];
  fx.log = ((_level: string, m: string) => { logs.push(m); }) as Fx['log'];
  const core = new BrokerCore(store, fx, { pageCacheBytes: 1 << 30, resolveSettings: (a) => ({ ...base, ...(a.startsWith('topic') ? { multicast: true } : {}) }) });
  core.recover(store.recover(), 0);
  const consumer = (address: string, o: Partial<Parameters<BrokerCore['attachConsumer']>[0]> = {}, credit = 100) => {
    const c = core.attachConsumer({ address, handle: null, selector: null, browse: false, preSettled: false, hint: null, subscription: null, ...o });
    core.onCredit(c, credit);
    return c;
  };
  return { store, fx, core, consumer, logs };
}

/** Deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('checkValue accepts exactly what the codec Reader decodes (fuzzed), and refuses zero-width array bombs Reader would build', () => {
  const rnd = prng(7);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)];
  const leaf = (): unknown => pick<() => unknown>([
    () => null, () => true, () => 7, () => -3, () => 70000, () => 2.5, () => 'text', () => '', () => Buffer.from([1, 2, 3]),
    () => sym('sym'), () => uint(0), () => ulong(0), () => long(-1), () => timestamp(1700000000000), () => symArray(['a', 'bc']),
    () => new Described(ulong(0x77), 'described'), () => 'x'.repeat(300),
  ])();
  const value = (d: number): unknown => {
    if (d > 2 || rnd() < 0.5) return leaf();
    if (rnd() < 0.5) return Array.from({ length: Math.floor(rnd() * 4) }, () => value(d + 1));
    const o: Record<string, unknown> = {};
    for (let i = Math.floor(rnd() * 4); i > 0; i--) o[`k${i}`] = value(d + 1);
    return o;
  };
  let agreedOk = 0, agreedBad = 0;
  for (let i = 0; i < 20000; i++) {
    const w = new Writer(64);
    w.value(value(0));
    const buf = Buffer.from(w.take());
    // Mutate: a few random bytes, maybe a truncation.
    for (let k = Math.floor(rnd() * 3); k > 0; k--) buf[Math.floor(rnd() * buf.length)] = Math.floor(rnd() * 256);
    const end = rnd() < 0.2 ? Math.floor(rnd() * buf.length) : buf.length;
    let readerEnd = -1, readerError: unknown = null, checkEnd = -1, checkError: unknown = null;
    try {
      const r = new Reader(buf, 0, end);
      r.read();
      readerEnd = r.off;
    } catch (e) {
      readerError = e;
    }
    try {
      checkEnd = checkValue(buf, 0, end);
    } catch (e) {
      checkError = e;
    }
    const hex = buf.subarray(0, end).toString('hex');
    if (checkError === null) {
      assert.is(readerError, null, `checkValue passed what Reader refuses: ${hex}`);
      assert.is(checkEnd, readerEnd, `same extent: ${hex}`);
      agreedOk++;
    } else {
      assert.instance(checkError, DecodeError, `checkValue throws DecodeError only: ${hex}`);
      if (readerError === null) assert.match((checkError as Error).message, /array at offset \d+ claims \d+ elements/, `only an array bomb is refused beyond Reader: ${hex}`);
      else agreedBad++;
    }
  }
  assert.ok(agreedOk > 1000 && agreedBad > 1000, `both outcomes exercised (${agreedOk} ok, ${agreedBad} bad)`);
  // 4 billion nulls in 5 bytes: Reader would try to build them; the check refuses at once.
  assert.throws(() => checkValue(Buffer.from('f000000005ffffffff40', 'hex'), 0, 10), (e: unknown) => e instanceof DecodeError);
});

test('scan refuses malformed sections with DecodeError (never another error): application-properties, truncated 32-bit list and map sizes', () => {
  const refused = (hex: string, why: string) => assert.throws(() => scanBrokerMessage(Buffer.from(hex, 'hex')), (e: unknown) => e instanceof DecodeError, why);
  refused(POISON.toString('hex'), 'an application-properties value with format code 0xff');
  refused('005374c00301a1016b', 'application-properties that is a list');
  refused('005374c1050241424243', 'an application-properties map with an odd count');
  refused('005374f000000005ffffffff40', 'application-properties that is an array bomb');
  refused('005370d000000000', 'a header list32 whose size cannot hold its count (was a RangeError)');
  refused('005372d100000000', 'message-annotations map32 whose size cannot hold its count (was a RangeError)');
  refused('005373c00a0541', 'properties running past the message');
  // Well-formed application-properties (also an empty one and null) pass.
  for (const ok of [msg('fine', { props: { a: 1, b: 'x', c: null, d: true } }), Buffer.from('005374c10100', 'hex'), Buffer.from('00537440', 'hex')]) {
    assert.ok(scanBrokerMessage(ok));
  }
});

test('a malformed message is refused at the door: nothing stored, to a queue or to a topic with a filtered subscription', () => {
  const { core, store, consumer } = setup();
  const c = consumer('q', { selector: "k = 'v'" });
  const before = store.ops.length;
  assert.throws(() => core.send('q', null, POISON, 0), (e: unknown) => e instanceof DecodeError);
  assert.equal(store.ops.slice(before), [], 'nothing stored');
  assert.is(core.queues.get('q')!.depth, 0);
  core.dispatch(0);
  const t = setup();
  t.core.attachConsumer({ address: 'topic.p', handle: 1, selector: null, browse: false, preSettled: false, hint: null, subscription: { name: 'c:all', durable: true, shared: false } });
  t.core.attachConsumer({ address: 'topic.p', handle: 2, selector: "k = 'v'", browse: false, preSettled: false, hint: null, subscription: { name: 'c:sel', durable: true, shared: false } });
  const tBefore = t.store.ops.length;
  assert.throws(() => t.core.send('topic.p', null, POISON, 0), (e: unknown) => e instanceof DecodeError);
  assert.equal(t.store.ops.slice(tBefore), []);
  assert.equal([t.core.queues.get('c:all')!.depth, t.core.queues.get('c:sel')!.depth], [0, 0]);
  void c;
});

test('recovery: malformed stored messages are dead-lettered (journaled), the broker serves a selector consumer; in the DLQ they stay, never selected', () => {
  const badHeader = Buffer.from('005370c0030170ff005377a10162', 'hex');
  const { core, fx, store, consumer, logs } = recovered([['q', { address: 'q' }, [1, 2, 3]], ['DLQ', { address: 'DLQ' }, [4]]], [[1, POISON], [2, msg('good', { props: { k: 'v' } })], [3, badHeader], [4, POISON]]);
  assert.is(core.stats.dlq, 2);
  assert.equal(store.ops, ['ref DLQ 1', 'ack q 1', 'ref DLQ 3', 'ack q 3'], 'moved in the journal, bodies not copied');
  assert.ok(logs.some((l) => /recovery: queue q: message 1 has malformed sections .*dead-lettered to DLQ/.test(l)), logs.join('\n'));
  assert.ok(logs.some((l) => /recovery: queue DLQ: message 4 has malformed sections .*kept/.test(l)), logs.join('\n'));
  const sel = consumer('q', { selector: "k = 'v'" });
  core.dispatch(0);
  assert.equal(fx.bodiesFor(sel), ['good']);
  const dlqSel = consumer('DLQ', { selector: 'k IS NULL' });
  core.dispatch(0);
  assert.equal(fx.delivered.filter((d) => d.c === dlqSel), [], 'a malformed message is never selected, not even by k IS NULL');
  const dlq = consumer('DLQ');
  core.dispatch(0);
  const got = fx.delivered.filter((d) => d.c === dlq);
  assert.equal(got.map((d) => d.payload), [POISON, POISON, badHeader], 'the DLQ holds them byte for byte');
  // Redelivered, a malformed message goes out as it is (no header rewrite).
  core.redeliver(got[2].ref, true, false, dlq);
  core.dispatch(0);
  assert.equal(fx.delivered[fx.delivered.length - 1].payload, badHeader);
});

test('a decode error found only when a selector reads the message: not selected and dead-lettered (consumer, browser, topic commit), never thrown', () => {
  // Scan and decoder disagreeing is simulated by corrupting the body after the scan passed.
  const { core, fx, store, consumer } = setup();
  const body = msg('late', { props: { k: 'v' } });
  core.send('q', null, body, 0);
  core.send('q', null, msg('fine', { props: { k: 'v' } }), 0);
  body[scanBrokerMessage(body).appStart + 1 + 2] = 0xff; // inside the map (map8: size, count, then the key)
  const browser = consumer('q', { browse: true, selector: "k = 'v'" });
  core.dispatch(0);
  assert.equal(fx.bodiesFor(browser), ['fine'], 'the browser skips it (and it is dead-lettered)');
  assert.is(core.stats.dlq, 1);
  assert.ok(store.ops.includes('ref DLQ 1') && store.ops.includes('ack q 1'), store.ops.join('; '));
  const sel = consumer('q', { selector: "k = 'v'" });
  core.dispatch(0);
  assert.equal(fx.bodiesFor(sel), ['fine']);
  const dlq = consumer('DLQ');
  core.dispatch(0);
  assert.equal(fx.delivered.filter((d) => d.c === dlq).map((d) => d.payload), [body]);

  // A second queue, plain consumer after a selector one met it: the selector consumer dead-letters it.
  const s2 = setup();
  const b2 = msg('late2', { props: { k: 'v' } });
  s2.core.send('q2', null, b2, 0);
  b2[scanBrokerMessage(b2).appStart + 3] = 0xff;
  const c2 = s2.consumer('q2', { selector: "k = 'v'" });
  s2.core.dispatch(0);
  assert.equal(s2.fx.delivered, []);
  assert.is(s2.core.queues.get('q2')!.depth, 0);
  assert.is(s2.core.queues.get('DLQ')!.depth, 1);
  void c2;

  // A transactional send to a topic: committed after its producer was answered; a filter that
  // cannot read it does not select it, the unfiltered subscription gets it, nothing throws.
  const t = setup();
  const all = t.core.attachConsumer({ address: 'topic.tx', handle: 1, selector: null, browse: false, preSettled: false, hint: null, subscription: { name: 'c:all', durable: true, shared: false } });
  t.core.attachConsumer({ address: 'topic.tx', handle: 2, selector: "k = 'v'", browse: false, preSettled: false, hint: null, subscription: { name: 'c:sel', durable: true, shared: false } });
  const tx = t.core.declare();
  const tb = msg('tx', { props: { k: 'v' } });
  t.core.txSend(tx, 'topic.tx', null, tb);
  tb[scanBrokerMessage(tb).appStart + 3] = 0xff;
  t.core.discharge(tx, false, 0);
  assert.equal([t.core.queues.get('c:all')!.depth, t.core.queues.get('c:sel')!.depth], [1, 0]);
  void all;
});

// Tear-down cost: a connection closing with thousands of consumers on one queue

/** A Map that counts the entries its iterators yield (a scan of every group per consumer shows up). */
class CountingMap<K, V> extends Map<K, V> {
  steps = 0;
  override *entries(): IterableIterator<[K, V]> {
    for (const e of super.entries()) {
      this.steps++;
      yield e;
    }
  }
  override [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }
}

test('tear-down is linear: N consumers owning N message groups leave one queue in O(N)', () => {
  //  producer --> [broker: queue g] --> C1..CN (each owns one message group), then all leave.
  const n = 4096;
  const { core, consumer } = setup();
  const cs: Consumer[] = [];
  for (let i = 0; i < n; i++) cs.push(consumer('g', {}, 1));
  for (let i = 0; i < n; i++) core.send('g', null, msg(`m${i}`, { group: `grp-${i}` }), 0);
  core.dispatch(0);
  const q = cs[0].queue as unknown as { consumers: Consumer[]; groups: Map<string, Consumer> };
  assert.is(q.groups.size, n, 'every consumer owns a group');
  const moves = { n: 0 };
  q.consumers = new Proxy(q.consumers, {
    get(t, k, r) {
      if (typeof k === 'string' && /^[0-9]/.test(k)) moves.n++;
      return Reflect.get(t, k, r);
    },
    set(t, k, v, r) {
      if (typeof k === 'string' && /^[0-9]/.test(k)) moves.n++;
      return Reflect.set(t, k, v, r);
    },
  });
  const groups = new CountingMap<string, Consumer>(q.groups);
  q.groups = groups;
  // Detached without acknowledging: their messages go back to the queue; no consumer is left.
  for (const c of cs) core.detachConsumer(c, false);
  assert.is(q.consumers.length, 0);
  assert.is(q.groups.size, 0, 'the groups were released');
  assert.ok(moves.n <= 20 * n, `${moves.n} consumer-array operations for ${n} consumers`);
  assert.ok(groups.steps <= 4 * n, `${groups.steps} group-map steps for ${n} consumers`);
});

test('tear-down: 65,536 consumers on one queue are removed; the remaining ones keep getting messages', () => {
  const n = 65536;
  const { core, fx, consumer } = setup();
  const cs: Consumer[] = [];
  for (let i = 0; i < n; i++) cs.push(consumer('big', {}, 1));
  for (let i = 0; i < n - 1; i++) core.detachConsumer(cs[i], false);
  core.send('big', null, msg('to the last one'), 0);
  core.dispatch(0);
  assert.equal(fx.bodiesFor(cs[n - 1]), ['to the last one']);
});

test.run();
