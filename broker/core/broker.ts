/**
 * The broker's core: addresses, queues and topic subscriptions, routing of sent messages,
 * outcomes (accept, release, modify, reject), dead-lettering, expiry, scheduled delivery,
 * transactions, and recovery from the store. No sockets and no timers: the I/O layer feeds it
 * actions with `now` and implements {@link BrokerEffects}. Store calls only append in memory;
 * the I/O layer waits for `store.sync` before settling what must be durable.
 */
import { AmqpConditionError } from '../../amqp/errors';
import type { Pager, Recovered, Store, TxOp } from '../store/types';
import { Consumer, Msg, Queue, QueueSettings, Ref, RefState } from './queue';
import { MessageInfo, inspectMessage, scanBrokerMessage, selectorMatches, withDeliveryCount } from './message-info';
import { compileSelector, Selector } from './selector';

/** What an address's settings say (from the `address` config entity that matches it). */
export interface AddressSettings {
  multicast: boolean;
  maxDeliveryAttempts: number;
  deadLetterAddress: string | null;
  expiryAddress: string | null;
  /** -1: unlimited. */
  maxSizeBytes: number;
  addressFullPolicy: 'BLOCK' | 'FAIL';
  autoCreate: boolean;
}

/** Outbound actions the I/O layer performs. */
export interface BrokerEffects {
  /** True when the consumer's link can take one more delivery now. */
  canSend(c: Consumer): boolean;
  /** Sends `payload` for `ref` on the consumer's link (consumes one credit). */
  deliver(c: Consumer, ref: Ref, payload: Buffer): void;
  /** An address that was full (BLOCK) has room again: producers may get credit. */
  addressHasRoom(address: string): void;
  log(level: 'error' | 'warning' | 'info' | 'debug', msg: string): void;
}

/** A refusal with an AMQP condition (the I/O layer turns it into a detach or rejected outcome). */
export class BrokerError extends AmqpConditionError {
  constructor(message: string, condition: string, options?: { cause?: unknown }) {
    super(message, condition, options);
    this.name = 'BrokerError';
  }
}

/** One address: a queue (anycast) or a topic (multicast) with its subscription queues. */
export class Address {
  readonly queues = new Map<string, Queue>();
  bytes = 0;
  full = false;
  constructor(readonly name: string, readonly settings: AddressSettings) {}
}

/** How a receiver attaches to an address. */
export interface ConsumerSpec {
  address: string;
  handle: unknown;
  selector: string | null;
  browse: boolean;
  preSettled: boolean;
  /** Routing type asked for by terminus capability ('queue'/'topic'), or null for the address's own. */
  hint: 'queue' | 'topic' | null;
  /** Topic subscriptions: the subscription queue name and kind; null for an own non-durable one. */
  subscription: { name: string; durable: boolean; shared: boolean } | null;
}

/** A transaction in progress (coordinator link). */
export class Tx {
  readonly sends: { address: string; hint: 'queue' | 'topic' | null; payload: Buffer; info: MessageInfo }[] = [];
  readonly acks: Ref[] = [];
  constructor(readonly id: Buffer) {}
}

/** Tunables. */
export interface CoreOptions {
  /** Bodies of stored messages kept in memory before they are evicted (read back on delivery). */
  pageCacheBytes: number;
  resolveSettings(address: string): AddressSettings;
  /**
   * Where bodies that are not in the store (non-durable messages, or every message of a
   * non-persistent broker) go when the page cache is full. Without one they stay in memory.
   */
  pager?: Pager;
  /** false: nothing is journaled (a non-persistent broker); default true. */
  persistent?: boolean;
}

/** Result of a send: whether the producer must wait for `store.sync` before it is accepted. */
export interface SendResult {
  needsSync: boolean;
  /** Stored messages whose bodies may be evicted once the sync completes. */
  queued: number;
}

export class BrokerCore {
  readonly addresses = new Map<string, Address>();
  readonly queues = new Map<string, Queue>();
  private nextMsgId = 1;
  private nextSeq = 1;
  private nextConsumerId = 1;
  private readonly dirty = new Set<Queue>();
  readonly txs = new Map<string, Tx>();
  private nextTxId = 1;
  /** Bodies in memory of stored messages, and the ones that may be evicted, oldest first. */
  private cachedBytes = 0;
  private evictable: Msg[] = [];
  private evictHead = 0;
  /** Entries dropped from the front of `evictable` (marks are absolute counts). */
  private evictBase = 0;
  /** Bodies in the pager still referenced. */
  private pagedLive = 0;
  /** Counters for management and tests. */
  readonly stats = { dlq: 0, expired: 0, evicted: 0, reloaded: 0, paged: 0 };

  /** Records were appended since the I/O layer last asked (acknowledgements need a sync too). */
  storeDirty = false;

  constructor(readonly store: Store, readonly effects: BrokerEffects, readonly opts: CoreOptions) {}

  /** True (once) when records were appended since the last call: the I/O layer then syncs. */
  takeStoreDirty(): boolean {
    const d = this.storeDirty;
    this.storeDirty = false;
    return d;
  }

  // ------------------------------------------------------------------ recovery

  /**
   * Rebuilds queues and messages from the store (once, before serving). A stored message whose
   * sections are malformed (stored by a version that did not check them) is dead-lettered.
   */
  recover(rec: Recovered, now: number): void {
    this.nextMsgId = rec.nextMessageId;
    const msgs = new Map<number, Msg>();
    const malformed: Ref[] = [];
    for (const [name, { meta, refs }] of rec.queues) {
      const address = String(meta.address ?? name);
      const filter = typeof meta.filter === 'string' ? compileSelector(meta.filter) : null;
      const q = this.makeQueue(name, address, meta.multicast === true, true, filter, false, meta.shared === true, false);
      for (const r of refs) {
        let m = msgs.get(r.msgId);
        if (m === undefined) {
          const payload = rec.messages.get(r.msgId);
          if (payload === undefined) {
            this.effects.log('warning', `recovery: queue ${name} references message ${r.msgId}, which the store does not hold`);
            continue;
          }
          m = this.makeMsg(r.msgId, payload, address, now, true);
          m.stored = true;
          msgs.set(r.msgId, m);
        }
        // References in a dead-letter or expiry queue were moved there: they expire no more.
        const moved = name === q.settings.deadLetterAddress || name === q.settings.expiryAddress;
        const ref = this.attachRef(q, m, now, false, null, moved);
        ref.durable = true;
        ref.deliveryCount = r.deliveryCount;
        if (m.info.malformed !== null) malformed.push(ref);
      }
    }
    // Once every queue exists (a dead-letter queue recovered later must not be made twice).
    for (const ref of malformed) this.poisoned(ref, 'recovery: ');
    for (const m of msgs.values()) {
      if (m.payload !== null) this.noteCached(m);
    }
    this.evictIfNeeded();
  }

  /**
   * A new message (throws DecodeError when malformed), or a `recovered` one: malformed then
   * means `info.malformed`, and durable since the store holds it.
   */
  private makeMsg(id: number, payload: Buffer, address: string, now: number, recovered = false): Msg {
    const info = recovered ? inspectMessage(payload) : scanBrokerMessage(payload);
    if (info.malformed !== null) info.durable = true;
    let expiry = 0;
    if (info.ttl > 0) expiry = (info.creationTime || now) + info.ttl;
    if (info.absoluteExpiryTime > 0) expiry = expiry === 0 ? info.absoluteExpiryTime : Math.min(expiry, info.absoluteExpiryTime);
    return new Msg(id, payload, payload.length, info, info.durable, expiry, address);
  }

  // ------------------------------------------------------------------ addresses and queues

  /** The address, created with its settings on first use (refused when autoCreate is off). */
  address(name: string, hint: 'queue' | 'topic' | null, create: boolean): Address {
    let a = this.addresses.get(name);
    if (a === undefined) {
      const s = this.opts.resolveSettings(name);
      if (!create || !s.autoCreate) throw new BrokerError(`address ${name} does not exist`, 'amqp:not-found');
      const settings = hint === null ? s : { ...s, multicast: hint === 'topic' };
      a = new Address(name, settings);
      this.addresses.set(name, a);
    }
    return a;
  }

  private makeQueue(name: string, address: string, multicast: boolean, durable: boolean, filter: Selector | null, autoDelete: boolean, shared: boolean, persist: boolean): Queue {
    const a = this.address(address, multicast ? 'topic' : 'queue', true);
    const s = a.settings;
    const settings: QueueSettings = { maxDeliveryAttempts: s.maxDeliveryAttempts, deadLetterAddress: s.deadLetterAddress, expiryAddress: s.expiryAddress };
    const q = new Queue(name, address, multicast, durable, filter, settings, autoDelete, shared);
    this.queues.set(name, q);
    a.queues.set(name, q);
    if (persist && durable) this.store.createQueue(name, { address, multicast, filter: filter?.text ?? null, shared });
    this.storeDirty = true;
    return q;
  }

  /** The anycast queue for `address`, created on first use. */
  private anycastQueue(address: string, hint: 'queue' | 'topic' | null): Queue {
    const q = this.queues.get(address);
    if (q !== undefined) return q;
    const a = this.address(address, hint, true);
    if (a.settings.multicast) throw new BrokerError(`address ${address} is a topic`, 'amqp:not-found');
    return this.makeQueue(address, address, false, true, null, false, false, true);
  }

  /**
   * A configured queue (`queue` entity): an anycast queue, or on a multicast address a named
   * subscription queue that receives every message sent to the topic.
   */
  declareQueue(name: string, address: string, multicast: boolean, durable: boolean): Queue {
    const existing = this.queues.get(name);
    if (existing !== undefined) return existing;
    if (!multicast && name !== address) throw new BrokerError(`anycast queue ${name} must be named as its address ${address}`, 'amqp:invalid-field');
    return this.makeQueue(name, address, multicast, durable, null, false, multicast, true);
  }

  /** Deletes a queue: its references are dropped (acknowledged) and its consumers must be gone. */
  deleteQueue(q: Queue): void {
    for (const c of [...q.consumers]) this.detachConsumer(c, false);
    const drop = (ref: Ref) => {
      if (ref.state === RefState.Gone) return;
      this.finish(ref, false);
    };
    for (const ref of [...q.ready()]) drop(ref);
    for (const ref of [...q.scheduled]) drop(ref);
    this.queues.delete(q.name);
    this.addresses.get(q.address)?.queues.delete(q.name);
    if (q.durable) this.store.deleteQueue(q.name);
    this.storeDirty = true;
  }

  // ------------------------------------------------------------------ consumers

  /** Attaches a receiver; throws BrokerError (with a condition) when it cannot be served. */
  attachConsumer(spec: ConsumerSpec): Consumer {
    let selector: Selector | null = null;
    if (spec.selector !== null) {
      try {
        selector = compileSelector(spec.selector);
      } catch (e) {
        throw new BrokerError(`invalid selector: ${(e as Error).message}`, 'amqp:invalid-field', { cause: e });
      }
    }
    const a = this.address(spec.address, spec.hint, true);
    let q: Queue;
    let consumerSelector = selector;
    if (!a.settings.multicast) {
      q = this.anycastQueue(spec.address, spec.hint);
    } else {
      // A topic: the receiver gets its own subscription queue; the selector filters what enters it.
      consumerSelector = null;
      const sub = spec.subscription;
      if (spec.browse) throw new BrokerError('browsing a topic is not supported', 'amqp:not-implemented');
      if (sub !== null) {
        const existing = this.queues.get(sub.name);
        if (existing !== undefined) {
          if (existing.address !== spec.address || (existing.filter?.text ?? null) !== (selector?.text ?? null)) {
            // JMS: a durable subscription re-made with another topic or selector starts afresh.
            if (!existing.shared || existing.consumers.length === 0) {
              this.deleteQueue(existing);
              q = this.makeQueue(sub.name, spec.address, true, sub.durable, selector, !sub.durable, sub.shared, true);
            } else {
              throw new BrokerError(`shared subscription ${sub.name} is in use with another topic or selector`, 'amqp:resource-locked');
            }
          } else q = existing;
          if (!q.shared && q.consumers.length > 0) throw new BrokerError(`subscription ${sub.name} already has a consumer`, 'amqp:resource-locked');
        } else {
          q = this.makeQueue(sub.name, spec.address, true, sub.durable, selector, !sub.durable, sub.shared, true);
        }
      } else {
        q = this.makeQueue(`${spec.address}::sub-${this.nextConsumerId}`, spec.address, true, false, selector, true, false, false);
      }
    }
    const c = new Consumer(this.nextConsumerId++, q, spec.handle, consumerSelector, spec.browse, spec.preSettled);
    if (spec.browse) c.cursor = 0;
    q.addConsumer(c);
    return c;
  }

  /** Looks up a durable subscription by name (a receiver re-attaching without a source address). */
  subscription(name: string): Queue | undefined {
    const q = this.queues.get(name);
    return q !== undefined && q.multicast ? q : undefined;
  }

  /**
   * The receiver left. Unacknowledged deliveries go back (counted as a delivery attempt, as
   * Artemis does). `closed` on a durable subscription's last consumer deletes it (unsubscribe).
   */
  detachConsumer(c: Consumer, closed: boolean): void {
    const q = c.queue;
    q.removeConsumer(c);
    for (const ref of c.unacked) {
      if (ref.state === RefState.Delivering) this.redeliver(ref, true, false, c);
    }
    c.unacked.clear();
    if (q.consumers.length === 0 && this.queues.get(q.name) === q) {
      if (q.autoDelete || (closed && q.multicast && q.durable)) this.deleteQueue(q);
    }
    this.dirty.add(q);
  }

  /** The consumer's usable credit changed. */
  onCredit(c: Consumer, credit: number): void {
    c.credit = credit;
    if (credit > 0) this.dirty.add(c.queue);
  }

  /** A consumer's link can send again (socket drained, session window reopened). */
  onWritable(c: Consumer): void {
    this.dirty.add(c.queue);
  }

  // ------------------------------------------------------------------ sending

  /** True when the address is over its maxSizeBytes. */
  isFull(address: string): boolean {
    const a = this.addresses.get(address);
    return a !== undefined && a.full;
  }

  /** Address settings for `address` without creating it. */
  settingsOf(address: string): AddressSettings {
    return this.addresses.get(address)?.settings ?? this.opts.resolveSettings(address);
  }

  /**
   * Routes a message sent to `address`. Throws BrokerError when the address is full under FAIL
   * or cannot be created. The message is in memory at once; `needsSync` tells the caller to wait
   * for the store before reporting accepted.
   */
  send(address: string, hint: 'queue' | 'topic' | null, payload: Buffer, now: number, info?: MessageInfo): SendResult {
    const a = this.address(address, hint, true);
    if (a.full && a.settings.addressFullPolicy === 'FAIL') {
      throw new BrokerError(`address ${address} is full (maxSizeBytes ${a.settings.maxSizeBytes})`, 'amqp:resource-limit-exceeded');
    }
    const m = info === undefined ? this.makeMsg(this.nextMsgId++, payload, address, now) : new Msg(this.nextMsgId++, payload, payload.length, info, info.durable, this.expiryOf(info, now), address);
    if (m.durable) this.checkAvailable();
    return this.route(a, m, hint, now, null);
  }

  /** Refuses durable work while the store cannot make it durable (no quorum): an honest outcome. */
  private checkAvailable(): void {
    const why = this.opts.persistent !== false ? this.store.unavailable?.() : null;
    if (why) throw new BrokerError(why, 'amqp:resource-limit-exceeded');
  }

  private expiryOf(info: MessageInfo, now: number): number {
    let expiry = 0;
    if (info.ttl > 0) expiry = now + info.ttl;
    if (info.absoluteExpiryTime > 0) expiry = expiry === 0 ? info.absoluteExpiryTime : Math.min(expiry, info.absoluteExpiryTime);
    return expiry;
  }

  private route(a: Address, m: Msg, hint: 'queue' | 'topic' | null, now: number, ops: TxOp[] | null): SendResult {
    let needsSync = false;
    if (!a.settings.multicast) {
      const q = this.anycastQueue(a.name, hint);
      const ref = this.attachRef(q, m, now, true, ops);
      needsSync = ref.durable;
    } else {
      // Every filter first: a message a filter finds malformed is refused before anything is stored.
      const targets = [...a.queues.values()].filter((q) => q.filter === null || selectorMatches(q.filter, m.payload as Buffer, m.info, 0));
      if (m.info.malformed !== null) {
        // A send: refused at the door. A commit (its producer already answered): the filters
        // that could not read it did not select it.
        if (ops === null) throw m.info.malformed;
        this.effects.log('warning', `address ${a.name}: message ${m.id} is malformed (${m.info.malformed.message}); not selected by the filtered subscriptions`);
      }
      for (const q of targets) {
        const ref = this.attachRef(q, m, now, true, ops);
        if (ref.durable) needsSync = true;
      }
    }
    if (m.payload !== null && m.refs > 0) {
      if (!m.stored && this.opts.pager !== undefined && this.cachedBytes + m.size > this.opts.pageCacheBytes) this.pageOut(m);
      else this.noteCached(m);
    }
    return { needsSync, queued: m.refs };
  }

  /** Adds a reference of `q` to `m` (persisting it when both are durable) and queues it. */
  private attachRef(q: Queue, m: Msg, now: number, persist: boolean, ops: TxOp[] | null = null, moved = false): Ref {
    const ref = new Ref(m, q, this.nextSeq++);
    if (moved) ref.expiry = 0;
    ref.durable = m.durable && q.durable && this.opts.persistent !== false;
    if (persist && ref.durable) {
      if (!m.stored) {
        // A body moved here (DLQ, expiry) may be in the pager.
        const body = this.load(m);
        if (ops) ops.push({ op: 'addMessage', msgId: m.id, payload: body });
        else this.store.addMessage(m.id, body);
        this.storeDirty = true;
        m.stored = true;
      }
      if (ops) ops.push({ op: 'addRef', queue: q.name, msgId: m.id });
      else this.store.addRef(q.name, m.id);
      this.storeDirty = true;
    }
    m.refs++;
    q.depth++;
    q.enqueued++;
    q.bytes += m.size;
    const a = this.addresses.get(q.address);
    if (a !== undefined) {
      a.bytes += m.size;
      if (a.settings.maxSizeBytes >= 0 && a.bytes >= a.settings.maxSizeBytes) a.full = true;
    }
    const due = moved ? 0 : m.info.deliveryTime > 0 ? m.info.deliveryTime : m.info.deliveryDelay > 0 ? now + m.info.deliveryDelay : 0;
    if (due > now) {
      ref.dueAt = due;
      q.addScheduled(ref);
    } else {
      q.push(ref);
      this.dirty.add(q);
    }
    return ref;
  }

  // ------------------------------------------------------------------ dispatch

  /** Delivers what can be delivered on every queue that changed. */
  dispatch(now: number): void {
    if (this.dirty.size === 0) return;
    const queues = [...this.dirty];
    this.dirty.clear();
    for (const q of queues) this.dispatchQueue(q, now);
  }

  private readonly blocked = new Set<Consumer>();

  private dispatchQueue(q: Queue, now: number): void {
    if (q.consumers.length === 0 || q.readyCount === 0) return;
    const blocked = this.blocked;
    blocked.clear();
    const ok = (c: Consumer) => c.credit > 0 && this.effects.canSend(c);
    const onExpired = (ref: Ref) => this.expire(ref, now);
    const load = (m: Msg) => this.load(m);
    const onMalformed = (ref: Ref) => this.poisoned(ref, '');
    for (;;) {
      if (q.readyCount === 0) break;
      const c = q.nextConsumer(ok, blocked);
      if (c === null) break;
      const ref = q.nextFor(c, now, onExpired, load, onMalformed);
      if (ref === null) {
        blocked.add(c);
        continue;
      }
      this.deliver(c, ref);
    }
  }

  private deliver(c: Consumer, ref: Ref): void {
    const m = ref.msg;
    let payload = this.load(m);
    // A malformed message goes out as it is (its header may be what is malformed).
    if (ref.deliveryCount > 0 && m.info.malformed === null) payload = withDeliveryCount(payload, m.info, ref.deliveryCount);
    if (c.browse) {
      c.cursor = ref.seq;
      c.credit--;
      this.effects.deliver(c, ref, payload);
      return;
    }
    const q = ref.queue;
    q.take(ref, RefState.Delivering);
    ref.consumer = c;
    const g = m.info.groupId;
    if (g !== null && !q.groups.has(g)) q.assignGroup(g, c);
    c.credit--;
    if (c.preSettled) {
      this.effects.deliver(c, ref, payload);
      this.finish(ref, true);
      return;
    }
    c.unacked.add(ref);
    this.effects.deliver(c, ref, payload);
  }

  /** The body, read back from the store when it was evicted. */
  load(m: Msg): Buffer {
    if (m.payload !== null) return m.payload;
    this.stats.reloaded++;
    if (m.pageOffset >= 0) return (this.opts.pager as Pager).read(m.pageOffset, m.size);
    return this.store.readPayload(m.id);
  }

  /** Spills a body the store does not hold to the pager. */
  private pageOut(m: Msg): void {
    m.pageOffset = (this.opts.pager as Pager).write(m.payload as Buffer);
    m.payload = null;
    this.pagedLive++;
    this.stats.paged++;
  }

  // ------------------------------------------------------------------ outcomes

  /** accepted: the reference is done (the acknowledgement is journaled). */
  accept(ref: Ref): void {
    if (ref.state !== RefState.Delivering) return;
    ref.consumer?.unacked.delete(ref);
    this.finish(ref, true);
  }

  /**
   * released (failed=false) or modified. A failed delivery counts an attempt; past
   * maxDeliveryAttempts the message goes to the dead-letter address. undeliverable-here keeps it
   * from this consumer.
   */
  redeliver(ref: Ref, failed: boolean, undeliverableHere: boolean, c: Consumer | null): void {
    if (ref.state !== RefState.Delivering && ref.state !== RefState.TxAcked) return;
    ref.consumer?.unacked.delete(ref);
    const q = ref.queue;
    if (failed) {
      ref.deliveryCount++;
      const max = q.settings.maxDeliveryAttempts;
      if (max >= 0 && ref.deliveryCount >= max) {
        this.effects.log('info', `queue ${q.name}: message ${ref.msg.id} failed ${ref.deliveryCount} delivery attempts; dead-lettered`);
        this.deadLetter(ref);
        return;
      }
      if (ref.durable) this.store.setDeliveryCount(q.name, ref.msg.id, ref.deliveryCount);
      this.storeDirty = true;
    }
    if (undeliverableHere && c !== null) (ref.avoid ??= []).push(c);
    if (this.queues.get(q.name) !== q) {
      // The queue is gone (a subscription removed while delivering): nothing to return to.
      this.finish(ref, true);
      return;
    }
    q.putBack(ref);
    this.dirty.add(q);
  }

  /** rejected: straight to the dead-letter address (as Artemis does). */
  reject(ref: Ref): void {
    if (ref.state !== RefState.Delivering) return;
    ref.consumer?.unacked.delete(ref);
    this.deadLetter(ref);
  }

  /**
   * A ready reference whose message is malformed (found at recovery, or by a selector): to the
   * dead-letter address. One already in its dead-letter queue (or with none) stays where it is,
   * never selected: no selector consumer can take it, a plain one still can.
   */
  private poisoned(ref: Ref, context: string): void {
    const q = ref.queue;
    const dla = q.settings.deadLetterAddress;
    const why = ref.msg.info.malformed?.message ?? 'malformed';
    if (ref.state !== RefState.Ready || dla === null || dla === q.address) {
      if (context !== '') this.effects.log('warning', `${context}queue ${q.name}: message ${ref.msg.id} has malformed sections (${why}); kept`);
      return;
    }
    this.effects.log('warning', `${context}queue ${q.name}: message ${ref.msg.id} has malformed sections (${why}); dead-lettered to ${dla}`);
    this.deadLetter(ref);
  }

  private deadLetter(ref: Ref): void {
    this.stats.dlq++;
    this.moveTo(ref, ref.queue.settings.deadLetterAddress);
  }

  private expire(ref: Ref, now: number): void {
    this.stats.expired++;
    const target = ref.queue.settings.expiryAddress;
    ref.queue.take(ref, RefState.Delivering);
    // An expiry queue never expires into itself (no loop).
    this.moveTo(ref, target === ref.queue.address ? null : target, now);
  }

  /** Moves a reference to another address's queue (same body, no copy), or drops it. */
  private moveTo(ref: Ref, address: string | null, now = 0): void {
    if (address !== null && address !== ref.queue.address) {
      try {
        const q = this.anycastQueue(address, 'queue');
        // A moved message has no expiry left to honour (an expired one would loop).
        this.attachRef(q, ref.msg, now, true, null, true);
      } catch (e) {
        this.effects.log('warning', `cannot move message ${ref.msg.id} to ${address}: ${(e as Error).message}; dropped`);
      }
    } else {
      this.effects.log('info', `queue ${ref.queue.name}: message ${ref.msg.id} dropped (no ${address === null ? 'target' : 'other'} address)`);
    }
    this.finish(ref, true);
  }

  /** Removes a reference for good (journaling the acknowledgement when `journal`). */
  private finish(ref: Ref, journal: boolean, ops: TxOp[] | null = null): void {
    const q = ref.queue;
    if (ref.state === RefState.Ready) q.take(ref, RefState.Gone);
    else if (ref.state === RefState.Scheduled) {
      const i = q.scheduled.indexOf(ref);
      if (i >= 0) q.scheduled.splice(i, 1);
    }
    ref.state = RefState.Gone;
    ref.consumer = null;
    const m = ref.msg;
    if (ref.durable && journal) {
      if (ops) ops.push({ op: 'ack', queue: q.name, msgId: m.id });
      else if (this.queues.get(q.name) === q) this.store.ack(q.name, m.id);
      this.storeDirty = true;
    }
    m.refs--;
    q.depth--;
    q.acknowledged++;
    q.bytes -= m.size;
    const a = this.addresses.get(q.address);
    if (a !== undefined) {
      a.bytes -= m.size;
      if (a.full && (a.settings.maxSizeBytes < 0 || a.bytes < a.settings.maxSizeBytes)) {
        a.full = false;
        this.effects.addressHasRoom(a.name);
      }
    }
    if (m.refs === 0) {
      if (m.cached) {
        this.cachedBytes -= m.size;
        m.cached = false;
        m.payload = null;
      }
      if (m.pageOffset >= 0) {
        m.pageOffset = -1;
        if (--this.pagedLive === 0) this.opts.pager?.reset();
      }
    }
  }

  // ------------------------------------------------------------------ time

  /** Scheduled messages that are due become deliverable; expired ready ones are moved. */
  onTick(now: number): void {
    const seq = () => this.nextSeq++;
    for (const q of this.queues.values()) {
      if (q.scheduled.length > 0 && q.scheduled[0].dueAt <= now) {
        if (q.releaseDue(now, seq) > 0) this.dirty.add(q);
      }
      if (q.readyCount > 0) {
        // Expired messages nobody is consuming still leave (bounded sweep per tick).
        let n = 0;
        const expired: Ref[] = [];
        for (const ref of q.ready()) {
          if (++n > 1000) break;
          if (ref.expiry !== 0 && now >= ref.expiry) expired.push(ref);
        }
        for (const ref of expired) this.expire(ref, now);
      }
    }
  }

  /** Earliest scheduled time, for the I/O layer's timer (Infinity when none). */
  nextDue(): number {
    let t = Infinity;
    for (const q of this.queues.values()) if (q.scheduled.length > 0 && q.scheduled[0].dueAt < t) t = q.scheduled[0].dueAt;
    return t;
  }

  // ------------------------------------------------------------------ memory

  private noteCached(m: Msg): void {
    if (m.cached) return;
    m.cached = true;
    this.cachedBytes += m.size;
    this.evictable.push(m);
  }

  /** How many bodies were ever cached: taken before a sync begins, it marks what that sync covers. */
  evictionMark(): number {
    return this.evictBase + this.evictable.length;
  }

  /**
   * Drops bodies, oldest first, while over the cache budget: stored ones (only those a completed
   * sync covers: before `mark`) are read back from the store later; others go to the pager.
   */
  evictIfNeeded(mark = this.evictionMark()): void {
    const list = this.evictable;
    const pager = this.opts.pager;
    while (this.cachedBytes > this.opts.pageCacheBytes && this.evictHead < list.length && this.evictBase + this.evictHead < mark) {
      const m = list[this.evictHead];
      this.evictHead++;
      // Without a pager a body the store does not hold stays in memory.
      if (!m.stored && pager === undefined) continue;
      if (!m.cached || m.refs === 0) continue;
      m.cached = false;
      this.cachedBytes -= m.size;
      if (!m.stored) {
        this.pageOut(m);
        continue;
      }
      m.payload = null;
      this.stats.evicted++;
    }
    if (this.evictHead > 4096 && this.evictHead > list.length >>> 1) {
      this.evictable = list.slice(this.evictHead);
      this.evictBase += this.evictHead;
      this.evictHead = 0;
    }
  }

  /** In-memory bytes of stored bodies (tests: memory stays bounded). */
  get cached(): number {
    return this.cachedBytes;
  }

  // ------------------------------------------------------------------ transactions

  /** Declares a transaction; returns its id. */
  declare(): Tx {
    const id = Buffer.alloc(8);
    id.writeUInt32BE(this.nextTxId++, 4);
    const tx = new Tx(id);
    this.txs.set(id.toString('hex'), tx);
    return tx;
  }

  txOf(id: Buffer): Tx | undefined {
    return this.txs.get(id.toString('hex'));
  }

  /** A transactional send: held until discharge. */
  txSend(tx: Tx, address: string, hint: 'queue' | 'topic' | null, payload: Buffer): void {
    const a = this.address(address, hint, true);
    if (a.full && a.settings.addressFullPolicy === 'FAIL') {
      throw new BrokerError(`address ${address} is full (maxSizeBytes ${a.settings.maxSizeBytes})`, 'amqp:resource-limit-exceeded');
    }
    const info = scanBrokerMessage(payload);
    if (info.durable) this.checkAvailable();
    tx.sends.push({ address, hint, payload, info });
  }

  /** A transactional acknowledgement: the reference stays taken until discharge. */
  txAck(tx: Tx, ref: Ref): void {
    if (ref.state !== RefState.Delivering) return;
    ref.state = RefState.TxAcked;
    tx.acks.push(ref);
  }

  /**
   * Commits (fail=false) or rolls back a transaction. Commit journals every durable part as one
   * atomic record; returns whether the caller must wait for a sync before reporting success.
   */
  discharge(tx: Tx, fail: boolean, now: number): boolean {
    this.txs.delete(tx.id.toString('hex'));
    if (fail) {
      for (const ref of tx.acks) if (ref.state === RefState.TxAcked) this.redeliver(ref, true, false, null);
      return false;
    }
    const ops: TxOp[] = [];
    for (const s of tx.sends) {
      const a = this.address(s.address, s.hint, true);
      const m = new Msg(this.nextMsgId++, s.payload, s.payload.length, s.info, s.info.durable, this.expiryOf(s.info, now), s.address);
      this.route(a, m, s.hint, now, ops);
    }
    for (const ref of tx.acks) {
      if (ref.state !== RefState.TxAcked) continue;
      ref.consumer?.unacked.delete(ref);
      this.finish(ref, true, ops);
    }
    if (ops.length > 0) this.store.commitTx(ops);
    this.storeDirty = true;
    return ops.length > 0;
  }

  /** Transactions of a connection that closed are rolled back. */
  rollbackAll(ids: Buffer[], now: number): void {
    for (const id of ids) {
      const tx = this.txOf(id);
      if (tx !== undefined) this.discharge(tx, true, now);
    }
  }
}

