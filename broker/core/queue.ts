/**
 * One queue: its messages in order, its consumers, and the choice of which message goes to which
 * consumer (FIFO, selectors, message groups, undeliverable-here, browsing). Pure and synchronous:
 * no I/O, time passed in; the broker core owns persistence and the I/O layer owns links.
 */
import type { MessageInfo } from './message-info';
import { selectorMatches } from './message-info';
import type { Selector } from './selector';

/** One message body, shared by every queue that references it. */
export class Msg {
  /** Evicted to disk when null (read back through the store). */
  payload: Buffer | null;
  /** Queues that still reference it. */
  refs = 0;
  /** True once the body is in the store (durable message with a durable reference). */
  stored = false;
  /** The body is in memory and counted against the page cache. */
  cached = false;
  /** Where the pager holds the body (a body the store does not have), or -1. */
  pageOffset = -1;
  constructor(
    readonly id: number,
    payload: Buffer,
    readonly size: number,
    readonly info: MessageInfo,
    readonly durable: boolean,
    /** Absolute expiry (ms), 0 = never. */
    readonly expiry: number,
    /** Address the producer sent to (kept for DLQ/expiry notes). */
    readonly address: string,
  ) {
    this.payload = payload;
  }
}

export const enum RefState {
  Ready,
  Scheduled,
  Delivering,
  /** Acknowledged inside an undischarged transaction. */
  TxAcked,
  Gone,
}

/** A queue's reference to a message. */
export class Ref {
  state = RefState.Ready;
  deliveryCount = 0;
  /** Consumers that answered modified(undeliverable-here). */
  avoid: Consumer[] | null = null;
  consumer: Consumer | null = null;
  /** When a scheduled reference becomes deliverable (ms). */
  dueAt = 0;
  /** The reference is in the store (durable message on a durable queue). */
  durable = false;
  /** Absolute expiry (ms), 0 = never: the message's, or 0 once moved to an expiry or dead-letter queue. */
  expiry: number;
  constructor(readonly msg: Msg, readonly queue: Queue, public seq: number) {
    this.expiry = msg.expiry;
  }
}

/** A receiving link attached to a queue. */
export class Consumer {
  /** Credit the peer granted and the link can use now (the I/O layer keeps it current). */
  credit = 0;
  readonly unacked = new Set<Ref>();
  /** Browsers: the last sequence number shown. */
  cursor = 0;
  /** Where it sits in its queue's `consumers`, or -1 (O(1) removal). */
  slot = -1;
  /** Message groups this consumer owns (null until it owns one), so leaving does not scan every group. */
  groups: Set<string> | null = null;
  constructor(
    readonly id: number,
    readonly queue: Queue,
    /** The I/O layer's handle (a link). */
    readonly handle: unknown,
    readonly selector: Selector | null,
    /** distribution-mode copy: sees messages without taking them. */
    readonly browse: boolean,
    /** snd-settle-mode settled: a delivery is final when sent. */
    readonly preSettled: boolean,
  ) {}
}

/** Queue settings derived from its address settings when the queue is created. */
export interface QueueSettings {
  maxDeliveryAttempts: number;
  deadLetterAddress: string | null;
  expiryAddress: string | null;
}

/** Most references a consumer's search looks at per dispatch (a selector over a deep queue). */
export const MAX_SCAN = 10_000;

/**
 * Ready references are kept ordered by sequence number in an array with a moving head; a taken
 * reference leaves a tombstone (state != Ready) so that a released one usually returns to its
 * own slot without moving anything.
 */
export class Queue {
  private items: Ref[] = [];
  private head = 0;
  /** References in state Ready. */
  readyCount = 0;
  readonly scheduled: Ref[] = [];
  readonly consumers: Consumer[] = [];
  private rr = 0;
  /** Message group owners. */
  readonly groups = new Map<string, Consumer>();
  /** Every reference not yet acknowledged (any state but Gone). */
  depth = 0;
  bytes = 0;
  /** Messages ever added (for management and tests). */
  enqueued = 0;
  acknowledged = 0;
  constructor(
    readonly name: string,
    readonly address: string,
    readonly multicast: boolean,
    readonly durable: boolean,
    /** Subscription filter (topics): decides what enters the queue. */
    readonly filter: Selector | null,
    readonly settings: QueueSettings,
    /** Non-durable subscription or temporary queue: deleted with its last consumer. */
    readonly autoDelete: boolean,
    /** Shared subscription (several consumers) rather than one consumer's own. */
    readonly shared: boolean,
  ) {}

  /** Appends a reference (a new message, or a scheduled one now due). */
  push(ref: Ref): void {
    ref.state = RefState.Ready;
    const n = this.items.length;
    if (n > this.head && this.items[n - 1].seq > ref.seq) {
      this.insertSorted(ref);
    } else this.items.push(ref);
    this.readyCount++;
  }

  /** Puts a reference back where its sequence number says (released: back at the head). */
  putBack(ref: Ref): void {
    ref.state = RefState.Ready;
    ref.consumer = null;
    this.readyCount++;
    const i = this.indexOfSeq(ref.seq);
    if (i < this.items.length && this.items[i] === ref) {
      if (i < this.head) this.head = i;
      return;
    }
    if (i < this.head) {
      // Its slot was compacted away: it goes in front.
      if (this.head > 0) this.items[--this.head] = ref;
      else this.items.unshift(ref);
      return;
    }
    this.items.splice(i, 0, ref);
  }

  private insertSorted(ref: Ref): void {
    const i = this.indexOfSeq(ref.seq);
    this.items.splice(Math.max(i, this.head), 0, ref);
  }

  /** First index in items (from head) whose seq >= `seq`. */
  private indexOfSeq(seq: number): number {
    let lo = this.head, hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.items[mid].seq < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private skipTombstones(): void {
    const items = this.items;
    while (this.head < items.length && items[this.head].state !== RefState.Ready) this.head++;
    if (this.head === items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 4096 && this.head > items.length >>> 1) {
      this.items = items.slice(this.head);
      this.head = 0;
    }
  }

  addScheduled(ref: Ref): void {
    ref.state = RefState.Scheduled;
    const s = this.scheduled;
    let i = s.length;
    while (i > 0 && s[i - 1].dueAt > ref.dueAt) i--;
    s.splice(i, 0, ref);
  }

  /** Moves scheduled references that are due to the ready list; returns how many. */
  releaseDue(now: number, nextSeq: () => number): number {
    let n = 0;
    while (this.scheduled.length > 0 && this.scheduled[0].dueAt <= now) {
      const ref = this.scheduled.shift() as Ref;
      ref.seq = nextSeq();
      this.push(ref);
      n++;
    }
    return n;
  }

  /** Takes a reference out of the ready list (it is being delivered, expired or moved). */
  take(ref: Ref, state: RefState): void {
    if (ref.state === RefState.Ready) this.readyCount--;
    ref.state = state;
    if (this.items[this.head] === ref) this.skipTombstones();
  }

  /**
   * Finds the next reference for consumer `c`, or null. Skips references owned by another
   * consumer's group, avoided by `c`, or not matching its selector; returns expired ones through
   * `onExpired` (which must take them), and ones whose message the selector found malformed
   * through `onMalformed` (which may take them; either way they are skipped).
   */
  nextFor(c: Consumer, now: number, onExpired: (ref: Ref) => void, load: (m: Msg) => Buffer, onMalformed: (ref: Ref) => void = () => {}): Ref | null {
    this.skipTombstones();
    const items = this.items;
    let looked = 0;
    let i = c.browse ? this.indexOfSeq(c.cursor + 1) : this.head;
    for (; i < items.length && looked < MAX_SCAN; i++) {
      const ref = items[i];
      if (ref.state !== RefState.Ready) continue;
      looked++;
      const m = ref.msg;
      if (ref.expiry !== 0 && now >= ref.expiry && !c.browse) {
        onExpired(ref);
        continue;
      }
      if (c.browse) {
        if (c.selector === null || selectorMatches(c.selector, load(m), m.info, ref.deliveryCount)) return ref;
        c.cursor = ref.seq;
        if (m.info.malformed !== null) onMalformed(ref);
        continue;
      }
      if (ref.avoid !== null && ref.avoid.includes(c)) continue;
      const g = m.info.groupId;
      if (g !== null) {
        const owner = this.groups.get(g);
        if (owner !== undefined && owner !== c) continue;
      }
      if (c.selector !== null && !selectorMatches(c.selector, load(m), m.info, ref.deliveryCount)) {
        if (m.info.malformed !== null) onMalformed(ref);
        continue;
      }
      return ref;
    }
    return null;
  }

  /** Next consumer in round-robin order that `ok` accepts, starting after the last one served. */
  nextConsumer(ok: (c: Consumer) => boolean, skip: Set<Consumer>): Consumer | null {
    const cs = this.consumers;
    for (let k = 0; k < cs.length; k++) {
      const c = cs[(this.rr + k) % cs.length];
      if (skip.has(c) || !ok(c)) continue;
      this.rr = (this.rr + k + 1) % cs.length;
      return c;
    }
    return null;
  }

  /** Adds a consumer (it joins the round robin). */
  addConsumer(c: Consumer): void {
    c.slot = this.consumers.length;
    this.consumers.push(c);
  }

  /** Pins message group `g` to consumer `c` (until `c` leaves). */
  assignGroup(g: string, c: Consumer): void {
    this.groups.set(g, c);
    (c.groups ??= new Set()).add(g);
  }

  /**
   * Removes a consumer in O(1) (plus the groups it owns): the last consumer takes its slot. The
   * round robin's order is no promise, and a queue losing many consumers at once (a connection
   * closing with thousands of links) must not cost consumers squared.
   */
  removeConsumer(c: Consumer): void {
    const cs = this.consumers;
    const i = c.slot;
    if (i >= 0 && i < cs.length && cs[i] === c) {
      const last = cs.pop() as Consumer;
      if (last !== c) {
        cs[i] = last;
        last.slot = i;
      }
      c.slot = -1;
    }
    if (c.groups !== null) {
      for (const g of c.groups) if (this.groups.get(g) === c) this.groups.delete(g);
      c.groups = null;
    }
  }

  /** Ready references in order (management, tests, expiry sweeps). */
  *ready(): IterableIterator<Ref> {
    for (let i = this.head; i < this.items.length; i++) if (this.items[i].state === RefState.Ready) yield this.items[i];
  }
}
