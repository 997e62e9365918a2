/**
 * RouterCore (router/core/core.ts) driven through its on* actions with a recording CoreEffects
 * fake. The fake tracks credit per link the way the I/O layer does:
 *  - an incoming (sender's) link has the credit the core last granted; each message the test
 *    sends consumes one and is reported back with onCreditConsumed;
 *  - an outgoing (consumer's) link has the credit the test gives it; canSend() is credit > 0
 *    (and not blocked); each transmit consumes one.
 *
 * Each test draws its topology: S = sending client (link into the router), C = consumer.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AddressRule, AddressTable } from '../../router/core/addresses';
import { Copy, CoreEffects, CoreLink, Delivery, Made, RouterCore, State } from '../../router/core/core';

// Encoded delivery states (as a consumer would send them; the core passes the bytes through).
const ACCEPTED = Buffer.from([0x00, 0x53, 0x24, 0x45]);
/** rejected{error{condition 'amqp:xx'}} */
const REJECTED = Buffer.from('005325c01001' + '00531dc00a01a307' + Buffer.from('amqp:xx').toString('hex'), 'hex');
const RELEASED = Buffer.from([0x00, 0x53, 0x26, 0x45]);
const MODIFIED = Buffer.from([0x00, 0x53, 0x27, 0xc0, 0x03, 0x02, 0x41, 0x42]);
const RECEIVED = Buffer.from([0x00, 0x53, 0x23, 0xc0, 0x03, 0x02, 0x43, 0x44]);

interface Settlement {
  d: Delivery;
  state: Buffer | null;
  made: Made | 0;
}

class Fx implements CoreEffects {
  readonly outCredit = new Map<CoreLink, number>();
  readonly inCredit = new Map<CoreLink, number>();
  readonly blocked = new Set<CoreLink>();
  readonly grants: { link: CoreLink; credit: number }[] = [];
  readonly transmits: { copy: Copy; settled: boolean }[] = [];
  readonly settles: Settlement[] = [];
  readonly settleOuts: Copy[] = [];
  /** Unsettled states reported to senders (3-ack outcomes, non-terminal states). */
  readonly updates: Settlement[] = [];
  readonly drains: CoreLink[] = [];

  grantCredit(link: CoreLink, credit: number): void {
    assert.is(link.dir, 'in', 'credit is only granted to incoming links');
    this.grants.push({ link, credit });
    this.inCredit.set(link, credit);
  }
  canSend(link: CoreLink): boolean {
    assert.is(link.dir, 'out');
    return (this.outCredit.get(link) ?? 0) > 0 && !this.blocked.has(link);
  }
  transmit(copy: Copy, settled: boolean): unknown {
    const c = this.outCredit.get(copy.out) ?? 0;
    assert.ok(c > 0 && !this.blocked.has(copy.out), 'transmit only when canSend');
    this.outCredit.set(copy.out, c - 1);
    this.transmits.push({ copy, settled });
    return { tag: this.transmits.length };
  }
  settleIn(d: Delivery, state: Buffer | null, made: Made | 0): void {
    this.settles.push({ d, state, made });
  }
  settleOut(copy: Copy): void {
    this.settleOuts.push(copy);
  }
  readonly drainAsks: CoreLink[] = [];
  readonly drainCredits: number[] = [];
  drainCredit(link: CoreLink, credit: number): void {
    this.drainAsks.push(link);
    this.drainCredits.push(credit);
  }
  updateIn(d: Delivery, state: Buffer | null, made: Made | 0): void {
    this.updates.push({ d, state, made });
  }
  drainComplete(link: CoreLink): void {
    this.drains.push(link);
    this.outCredit.set(link, 0);
  }

  /** Copies transmitted on `out`. */
  sentOn(out: CoreLink): Copy[] {
    return this.transmits.filter((t) => t.copy.out === out).map((t) => t.copy);
  }
  settlesOf(d: Delivery): Settlement[] {
    return this.settles.filter((s) => s.d === d);
  }
  lastGrant(link: CoreLink): number | undefined {
    const g = this.grants.filter((x) => x.link === link);
    return g.length ? g[g.length - 1].credit : undefined;
  }
}

class World {
  readonly fx = new Fx();
  readonly core: RouterCore;
  constructor(rules: AddressRule[] = []) {
    this.core = new RouterCore(new AddressTable(rules), this.fx);
  }
  sender(key: string | null, capacity = 10): CoreLink {
    const l = this.core.onSenderAttached(key, capacity, { name: 'S' });
    this.core.flush();
    return l;
  }
  consumer(key: string, credit = 0, capacity = 10, presettled = false): CoreLink {
    const l = this.core.onConsumerAttached(key, capacity, presettled, { name: 'C' });
    if (credit > 0) this.credit(l, credit);
    this.core.flush();
    return l;
  }
  /** The consumer grants `n` more credit. */
  credit(c: CoreLink, n: number, drain = false): void {
    this.fx.outCredit.set(c, (this.fx.outCredit.get(c) ?? 0) + n);
    this.core.onConsumerFlow(c, drain);
    this.core.flush();
  }
  /** The sending client sends one message; requires credit unless `force`. */
  send(s: CoreLink, settled = false, to: string | null = null, force = false): Delivery {
    const c = this.fx.inCredit.get(s) ?? 0;
    if (!force) assert.ok(c > 0, 'sender has credit');
    const left = Math.max(0, c - 1);
    this.fx.inCredit.set(s, left);
    this.core.onCreditConsumed(s, left);
    const d = this.core.onDelivery(s, settled, to, { n: 'msg' });
    assert.ok(d);
    this.core.flush();
    return d;
  }
  outcome(c: Copy, code: number, state: Buffer | null, settled = true): void {
    this.core.onCopyOutcome(c, code, state, settled);
    this.core.flush();
  }
  gone(l: CoreLink): void {
    this.core.onLinkGone(l);
    this.core.flush();
  }
}

const MC: AddressRule[] = [{ prefix: 'mc', distribution: 'multicast' }];
const RR: AddressRule[] = [{ prefix: 'rr', distribution: 'closest' }];

// ---------------------------------------------------------------------------------------------
// Addresses learnt from the mesh

test('an address no rule here covers takes the treatment another router advertises; a rule here wins', () => {
  //   R2 advertises mcx (multicast) and rr.x (multicast) --> [this router: rule rr.* closest]
  const w = new World(RR);
  w.core.onRemoteAddress('R2', 'mcx', 'multicast', true);
  w.core.onRemoteAddress('R2', 'rr.x', 'multicast', true);
  const by = new Map(w.core.queryAddresses().map((a) => [a.key, a.distribution]));
  assert.is(by.get('mcx'), 'multicast', 'the hint, where this router has no rule');
  assert.is(by.get('rr.x'), 'closest', 'this router\'s rule');
});

// ---------------------------------------------------------------------------------------------
// Credit for senders

test('sender gets no credit without a consumer, capacity once one attaches', () => {
  // S1 --> [router] --> (nobody) ... then C1 attaches: S1 --> [router] --> C1
  const w = new World();
  const s = w.sender('q', 25);
  assert.is(w.fx.grants.filter((g) => g.credit > 0).length, 0, 'no credit without a consumer');
  w.consumer('q');
  assert.equal(w.fx.grants.map((g) => [g.link, g.credit]), [[s, 25]]);
  // a second consumer does not grant again
  w.consumer('q');
  assert.is(w.fx.grants.length, 1);
});

test('sender attaching after the consumer gets capacity at once', () => {
  // C1 first, then S1 --> [router] --> C1
  const w = new World();
  w.consumer('q');
  const s = w.sender('q', 7);
  assert.is(w.fx.lastGrant(s), 7);
});

test('credit stays when the last consumer leaves; a delivery that finds none drains it; a consumer brings it back', () => {
  // S1 --> [router] --> C1, C2 ; C1 leaves ; C2 leaves (credit stays) ; S1 sends (released, drain) ; C3 returns
  const w = new World();
  const s = w.sender('q', 10);
  const c1 = w.consumer('q');
  const c2 = w.consumer('q');
  assert.is(w.fx.lastGrant(s), 10);
  w.gone(c1);
  w.gone(c2);
  assert.is(w.fx.grants.length, 1, 'no consumer: the credit stays (qdrouterd\'s)');
  assert.equal(w.fx.drainAsks, []);
  const d1 = w.send(s);
  const d2 = w.send(s);
  assert.equal(w.fx.settles.map((x) => [x.d, x.made]), [[d1, Made.Released], [d2, Made.Released]], 'no consumer: released');
  assert.equal(w.fx.drainAsks, [s], 'asked once to drain');
  assert.equal(w.fx.drainCredits, [9], 'the credit it holds, the deliveries that left counted back (qdrouterd\'s)');
  // The sender drained: its credit is gone.
  w.fx.inCredit.set(s, 0);
  w.core.onCreditConsumed(s, 0);
  w.core.flush();
  w.consumer('q');
  assert.is(w.fx.lastGrant(s), 10, 'a consumer came back');
  w.gone(w.consumer('q'));
});

test('senders on other addresses are not affected by a consumer', () => {
  // S1(a) --> [router] --> C1(b)
  const w = new World();
  const sa = w.sender('a', 10);
  w.consumer('b');
  assert.is(w.fx.lastGrant(sa), undefined);
});

test('anonymous sender (no target address) gets credit without consumers', () => {
  // S1(anonymous) --> [router]
  const w = new World();
  const s = w.sender(null, 12);
  assert.is(w.fx.lastGrant(s), 12);
});

test('credit is topped up to capacity as messages leave, once half is used', () => {
  // S1 --> [router] --> C1 (plenty of credit)
  const w = new World();
  const s = w.sender('q', 10);
  const c = w.consumer('q', 100);
  for (let i = 0; i < 4; i++) w.send(s);
  assert.is(w.fx.grants.length, 1, 'no flow before half the credit is used');
  w.send(s);
  assert.is(w.fx.grants.length, 2);
  assert.is(w.fx.lastGrant(s), 10, 'topped up to capacity (nothing held)');
  assert.is(w.fx.sentOn(c).length, 5);
});

test('held messages bound credit: grant = capacity - held', () => {
  // S1 (capacity 4) --> [router] --> C1 (no credit yet)
  const w = new World();
  const s = w.sender('q', 4);
  const c = w.consumer('q', 0);
  assert.is(w.fx.lastGrant(s), 4);
  for (let i = 0; i < 4; i++) w.send(s);
  assert.is(s.held, 4);
  assert.is(w.fx.inCredit.get(s), 0);
  assert.ok(w.fx.grants.every((g) => g.credit <= 4), 'never more than capacity');
  // total credit the sender could still use never lets held + credit exceed capacity
  assert.ok((w.fx.inCredit.get(s) ?? 0) + s.held <= 4);
  w.credit(c, 1);
  assert.is(w.fx.sentOn(c).length, 1);
  assert.is(s.held, 3);
  assert.is(w.fx.lastGrant(s), 1, 'capacity 4 - held 3');
  w.credit(c, 3);
  assert.is(s.held, 0);
  assert.is(w.fx.lastGrant(s), 4);
});

// ---------------------------------------------------------------------------------------------
// Anycast

test('anycast (balanced): each message goes to exactly one consumer', () => {
  // S1 --> [router] --> C1, C2, C3
  const w = new World();
  const s = w.sender('q', 100);
  const cs = [w.consumer('q', 100), w.consumer('q', 100), w.consumer('q', 100)];
  const ds: Delivery[] = [];
  for (let i = 0; i < 30; i++) ds.push(w.send(s));
  assert.is(w.fx.transmits.length, 30);
  for (const d of ds) assert.is(w.fx.transmits.filter((t) => t.copy.delivery === d).length, 1);
  for (const c of cs) assert.is(w.fx.sentOn(c).length, 10, 'even spread when all settle nothing');
});

test('anycast (closest): each message goes to exactly one consumer, round robin', () => {
  // S1 --> [router] --> C1, C2, C3   (closest)
  const w = new World(RR);
  const s = w.sender('rr', 100);
  const cs = [w.consumer('rr', 100), w.consumer('rr', 100), w.consumer('rr', 100)];
  for (let i = 0; i < 9; i++) w.send(s);
  const order = w.fx.transmits.map((t) => cs.indexOf(t.copy.out));
  assert.equal(order, [0, 1, 2, 0, 1, 2, 0, 1, 2]);
});

test('closest skips a consumer without credit while another can take the message', () => {
  // S1 --> [router] --> C1 (no credit), C2 (credit)
  const w = new World(RR);
  const s = w.sender('rr', 100);
  const c1 = w.consumer('rr', 0);
  const c2 = w.consumer('rr', 10);
  for (let i = 0; i < 4; i++) w.send(s);
  assert.is(w.fx.sentOn(c2).length, 4);
  assert.is(c1.undeliveredCount, 0, 'nothing parked on the consumer without credit');
});

test('closest with no consumer able to take a message now: queued round robin', () => {
  // S1 --> [router] --> C1, C2, C3   (closest, nobody has credit)
  const w = new World(RR);
  const s = w.sender('rr', 100);
  const cs = [w.consumer('rr', 0), w.consumer('rr', 0), w.consumer('rr', 0)];
  for (let i = 0; i < 6; i++) w.send(s);
  assert.equal(cs.map((c) => c.undeliveredCount), [2, 2, 2]);
  w.credit(cs[1], 5);
  assert.is(w.fx.sentOn(cs[1]).length, 2, 'each consumer sends what was queued for it');
});

test('balanced prefers the consumer with fewer outstanding (unsettled) deliveries', () => {
  // S1 --> [router] --> C1 (3 unsettled), C2 (0)
  const w = new World();
  const s = w.sender('q', 100);
  const c1 = w.consumer('q', 100);
  for (let i = 0; i < 3; i++) w.send(s);
  assert.is(c1.unsettled, 3);
  const c2 = w.consumer('q', 100);
  for (let i = 0; i < 3; i++) w.send(s);
  assert.is(w.fx.sentOn(c2).length, 3, 'the idle consumer gets the next three');
  assert.is(w.fx.sentOn(c1).length, 3);
  // now 3 vs 3: alternate
  for (let i = 0; i < 4; i++) w.send(s);
  assert.is(w.fx.sentOn(c1).length, 5);
  assert.is(w.fx.sentOn(c2).length, 5);
});

test('balanced counts undelivered copies (waiting for credit) as outstanding', () => {
  // S1 --> [router] --> C1 (no credit, 2 queued), C2 (credit)
  const w = new World();
  const s = w.sender('q', 100);
  const c1 = w.consumer('q', 0);
  w.send(s);
  w.send(s);
  assert.is(c1.undeliveredCount, 2);
  const c2 = w.consumer('q', 100);
  for (let i = 0; i < 2; i++) w.send(s);
  assert.is(w.fx.sentOn(c2).length, 2);
  assert.is(c1.undeliveredCount, 2);
});

test('balanced: settling frees a consumer to get more', () => {
  // S1 --> [router] --> C1, C2
  const w = new World();
  const s = w.sender('q', 100);
  const c1 = w.consumer('q', 100);
  const c2 = w.consumer('q', 100);
  for (let i = 0; i < 4; i++) w.send(s); // 2 each
  for (const cp of w.fx.sentOn(c1)) w.outcome(cp, State.Accepted, ACCEPTED, true);
  assert.is(c1.unsettled, 0);
  w.send(s);
  w.send(s);
  assert.is(w.fx.sentOn(c1).length, 4);
  assert.is(w.fx.sentOn(c2).length, 2);
});

test('anycast outcome passes through with the consumer\'s exact state bytes', () => {
  // S1 --> [router] --> C1
  for (const [code, state] of [[State.Accepted, ACCEPTED], [State.Rejected, REJECTED], [State.Released, RELEASED], [State.Modified, MODIFIED]] as const) {
    const w = new World();
    const s = w.sender('q');
    const c = w.consumer('q', 10);
    const d = w.send(s);
    const cp = w.fx.sentOn(c)[0];
    assert.is(w.fx.transmits[0].settled, false);
    w.outcome(cp, code, state, false);
    // The consumer has not settled: the sender gets the outcome unsettled (qdrouterd's 3-ack).
    assert.is(w.fx.settles.length, 0);
    assert.is(w.fx.updates.length, 1);
    assert.is(w.fx.updates[0].d, d);
    assert.is(w.fx.updates[0].state, state, 'same bytes, not a re-encoding');
    assert.is(w.fx.updates[0].made, 0);
    assert.equal(w.fx.settleOuts, [], 'the copy waits for the sender');
    w.core.onDeliverySettled(d);
    assert.equal(w.fx.settleOuts, [cp], 'the sender settled: the router settles the copy');
    assert.is(c.unsettled, 0);
  }
});

test('3-ack: an unsettled outcome reaches the sender unsettled; whichever side settles first settles the other', () => {
  // S1 --> [router] --> C1 (outcome unsettled, then C1 settles: the sender's delivery settles)
  const w = new World();
  const s = w.sender('q');
  const c = w.consumer('q', 10);
  const d1 = w.send(s);
  const cp1 = w.fx.sentOn(c)[0];
  w.outcome(cp1, State.Accepted, ACCEPTED, false);
  assert.equal(w.fx.updates.map((u) => u.d), [d1]);
  w.outcome(cp1, State.Accepted, ACCEPTED, true);
  assert.equal(w.fx.settles.map((x) => [x.d, x.state]), [[d1, ACCEPTED]], 'the consumer settled: the sender\'s delivery settles with the same outcome');
  assert.equal(w.fx.settleOuts, []);
  // The sender leaves while an outcome waits for its settle: the copy is settled for it.
  const d2 = w.send(s);
  const cp2 = w.fx.sentOn(c)[1];
  w.outcome(cp2, State.Released, RELEASED, false);
  assert.is(w.fx.updates.at(-1)?.d, d2);
  w.gone(s);
  assert.equal(w.fx.settleOuts, [cp2]);
  assert.is(c.unsettled, 0);
});

test('3-ack multicast: the sender hears once every copy has an outcome, and its settle settles them all', () => {
  //   S1 --> [router mc.t] --> C1, C2, C3 (C3 settles its outcome, C1 and C2 do not)
  const w = new World(MC);
  const s = w.sender('mc.t');
  const cs = [w.consumer('mc.t', 10), w.consumer('mc.t', 10), w.consumer('mc.t', 10)];
  const d = w.send(s);
  const cps = cs.map((c) => w.fx.sentOn(c)[0]);
  w.outcome(cps[0], State.Released, RELEASED, false);
  w.outcome(cps[1], State.Modified, MODIFIED, false);
  assert.is(w.fx.updates.length + w.fx.settles.length, 0, 'not before the last outcome');
  w.outcome(cps[2], State.Released, RELEASED, true);
  assert.equal(w.fx.updates.map((u) => [u.d, u.state]), [[d, MODIFIED]], 'modified over released, unsettled');
  w.core.onDeliverySettled(d);
  assert.equal(w.fx.settleOuts, [cps[0], cps[1]]);
  assert.equal(cs.map((c) => c.unsettled), [0, 0, 0]);
});

test('non-terminal states of a single copy reach the sender unsettled; multicast ignores them', () => {
  //   S1 --> [router] --> C1 : C1 says received (non-terminal), then accepts
  const w = new World(MC);
  const s = w.sender('q');
  const c = w.consumer('q', 10);
  const d = w.send(s);
  const cp = w.fx.sentOn(c)[0];
  w.outcome(cp, State.Received, RECEIVED, false);
  assert.equal(w.fx.updates.map((u) => [u.d, u.state]), [[d, RECEIVED]]);
  w.outcome(cp, State.Accepted, ACCEPTED, true);
  assert.equal(w.fx.settles.map((x) => x.d), [d]);
  const ms = w.sender('mc.u');
  const m1 = w.consumer('mc.u', 10);
  w.consumer('mc.u', 10);
  w.send(ms);
  w.outcome(w.fx.sentOn(m1)[0], State.Received, RECEIVED, false);
  assert.is(w.fx.updates.length, 1, 'nothing new for the multicast');
});

test('consumer settling with its outcome: no settleOut; duplicates ignored', () => {
  // S1 --> [router] --> C1
  const w = new World();
  const s = w.sender('q');
  const c = w.consumer('q', 10);
  w.send(s);
  const cp = w.fx.sentOn(c)[0];
  w.outcome(cp, State.Accepted, ACCEPTED, true);
  w.outcome(cp, State.Rejected, REJECTED, true);
  assert.is(w.fx.settles.length, 1);
  assert.is(w.fx.settles[0].state, ACCEPTED);
  assert.is(w.fx.settleOuts.length, 0);
  assert.is(c.unsettled, 0);
});

test('received (non-terminal, unsettled) is not an outcome', () => {
  // S1 --> [router] --> C1
  const w = new World();
  const s = w.sender('q');
  const c = w.consumer('q', 10);
  w.send(s);
  const cp = w.fx.sentOn(c)[0];
  w.outcome(cp, State.Received, RECEIVED, false);
  assert.is(w.fx.settles.length, 0);
  assert.is(c.unsettled, 1);
  w.outcome(cp, State.Accepted, ACCEPTED, true);
  assert.is(w.fx.settles.length, 1);
});

// ---------------------------------------------------------------------------------------------
// Multicast

test('multicast: one copy per consumer; the sender is settled once, after all copies', () => {
  // S1 --> [router] --> C1, C2, C3   (multicast)
  const w = new World(MC);
  const s = w.sender('mc');
  const cs = [w.consumer('mc', 10), w.consumer('mc', 10), w.consumer('mc', 10)];
  const d = w.send(s);
  assert.is(w.fx.transmits.length, 3);
  for (const c of cs) assert.is(w.fx.sentOn(c).length, 1);
  const copies = cs.map((c) => w.fx.sentOn(c)[0]);
  for (const cp of copies) assert.is(cp.delivery, d);
  w.outcome(copies[0], State.Accepted, ACCEPTED);
  w.outcome(copies[1], State.Accepted, ACCEPTED);
  assert.is(w.fx.settles.length, 0, 'not before the last copy');
  w.outcome(copies[2], State.Accepted, ACCEPTED);
  assert.is(w.fx.settlesOf(d).length, 1);
  w.outcome(copies[2], State.Rejected, REJECTED);
  assert.is(w.fx.settlesOf(d).length, 1, 'exactly once');
});

const PAIRS: [string, number, Buffer, string, number, Buffer][] = [
  ['rejected', State.Rejected, REJECTED, 'accepted', State.Accepted, ACCEPTED],
  ['rejected', State.Rejected, REJECTED, 'modified', State.Modified, MODIFIED],
  ['rejected', State.Rejected, REJECTED, 'released', State.Released, RELEASED],
  ['accepted', State.Accepted, ACCEPTED, 'modified', State.Modified, MODIFIED],
  ['accepted', State.Accepted, ACCEPTED, 'released', State.Released, RELEASED],
  ['modified', State.Modified, MODIFIED, 'released', State.Released, RELEASED],
];

for (const [hiName, hiCode, hiState, loName, loCode, loState] of PAIRS) {
  test(`multicast priority: ${hiName} > ${loName}, whichever copy reports first`, () => {
    // S1 --> [router] --> C1, C2   (multicast)
    for (const hiFirst of [true, false]) {
      const w = new World(MC);
      const s = w.sender('mc');
      const c1 = w.consumer('mc', 10);
      const c2 = w.consumer('mc', 10);
      const d = w.send(s);
      const [a, b] = [w.fx.sentOn(c1)[0], w.fx.sentOn(c2)[0]];
      if (hiFirst) {
        w.outcome(a, hiCode, hiState);
        w.outcome(b, loCode, loState);
      } else {
        w.outcome(a, loCode, loState);
        w.outcome(b, hiCode, hiState);
      }
      const st = w.fx.settlesOf(d);
      assert.is(st.length, 1);
      assert.is(st[0].state, hiState, `${hiName} wins (${hiFirst ? 'first' : 'second'})`);
      assert.is(st[0].made, 0);
    }
  });
}

test('multicast with three outcomes: rejected beats everything in any position', () => {
  // S1 --> [router] --> C1, C2, C3   (multicast)
  const outcomes: [number, Buffer][] = [[State.Released, RELEASED], [State.Rejected, REJECTED], [State.Accepted, ACCEPTED]];
  const w = new World(MC);
  const s = w.sender('mc');
  const cs = [w.consumer('mc', 10), w.consumer('mc', 10), w.consumer('mc', 10)];
  const d = w.send(s);
  cs.forEach((c, i) => w.outcome(w.fx.sentOn(c)[0], outcomes[i][0], outcomes[i][1]));
  assert.is(w.fx.settlesOf(d)[0].state, REJECTED);
});

test('multicast: a copy stuck without credit holds the settlement; released when its consumer leaves', () => {
  // S1 --> [router] --> C1 (credit), C2 (no credit)   (multicast)
  const w = new World(MC);
  const s = w.sender('mc');
  const c1 = w.consumer('mc', 10);
  const c2 = w.consumer('mc', 0);
  const d = w.send(s);
  w.outcome(w.fx.sentOn(c1)[0], State.Modified, MODIFIED);
  assert.is(w.fx.settles.length, 0);
  assert.is(c2.undeliveredCount, 1);
  w.gone(c2);
  const st = w.fx.settlesOf(d);
  assert.is(st.length, 1);
  assert.is(st[0].state, MODIFIED, 'the consumer\'s modified beats the router-made released');
});

test('multicast presettled: copies to all, no settlement', () => {
  // S1 (presettled) --> [router] --> C1, C2   (multicast)
  const w = new World(MC);
  const s = w.sender('mc');
  const c1 = w.consumer('mc', 10);
  const c2 = w.consumer('mc', 10);
  w.send(s, true);
  assert.is(w.fx.transmits.length, 2);
  assert.ok(w.fx.transmits.every((t) => t.settled));
  assert.is(c1.unsettled + c2.unsettled, 0);
  assert.is(w.fx.settles.length, 0);
});

// ---------------------------------------------------------------------------------------------
// Consumers leaving

test('consumer leaving: undelivered -> released, unsettled (onCopyLost) -> modified(delivery-failed)', () => {
  // S1 --> [router] --> C1 (credit 1): m1 sent unsettled, m2 and m3 queued; C1 leaves
  const w = new World();
  const s = w.sender('q');
  const c = w.consumer('q', 1);
  const d1 = w.send(s);
  const d2 = w.send(s);
  const d3 = w.send(s);
  assert.is(w.fx.sentOn(c).length, 1);
  assert.is(c.undeliveredCount, 2);
  // the I/O reports copies it had sent first (as the server does), then the link
  w.core.onCopyLost(w.fx.sentOn(c)[0]);
  w.gone(c);
  assert.equal(w.fx.settlesOf(d1).map((x) => [x.state, x.made]), [[null, Made.ModifiedFailed]]);
  assert.equal(w.fx.settlesOf(d2).map((x) => [x.state, x.made]), [[null, Made.Released]]);
  assert.equal(w.fx.settlesOf(d3).map((x) => [x.state, x.made]), [[null, Made.Released]]);
  assert.is(s.held, 0, 'released messages no longer held');
});

test('consumer leaving: its queued messages are not re-routed nor sent later', () => {
  // S1 --> [router] --> C1 (no credit, 2 queued), C2 attaches later
  const w = new World();
  const s = w.sender('q');
  const c1 = w.consumer('q', 0);
  w.send(s);
  w.send(s);
  w.gone(c1);
  const c2 = w.consumer('q', 10);
  assert.is(w.fx.sentOn(c2).length, 0);
  assert.is(w.fx.settles.length, 2);
  w.credit(c1, 5);
  assert.is(w.fx.transmits.length, 0, 'a gone link never transmits');
});

test('onCopyLost after the copy was settled is ignored', () => {
  // S1 --> [router] --> C1
  const w = new World();
  const s = w.sender('q');
  const c = w.consumer('q', 5);
  const d = w.send(s);
  const cp = w.fx.sentOn(c)[0];
  w.outcome(cp, State.Accepted, ACCEPTED, true);
  w.core.onCopyLost(cp);
  w.gone(c);
  assert.equal(w.fx.settlesOf(d).map((x) => x.state), [ACCEPTED]);
  assert.is(c.unsettled, 0);
});

test('presettled deliveries never produce settleIn (sent, queued and dropped alike)', () => {
  // S1 (presettled) --> [router] --> C1 (credit 1)
  const w = new World();
  const s = w.sender('q');
  const c = w.consumer('q', 1);
  w.send(s, true);
  w.send(s, true);
  assert.is(w.fx.transmits[0].settled, true);
  assert.is(c.unsettled, 0);
  w.gone(c);
  assert.is(w.fx.settles.length, 0);
});

test('consumer wanting presettled deliveries: unsettled message is settled upstream without an outcome', () => {
  // S1 (unsettled) --> [router] --> C1 (snd-settle-mode settled)
  const w = new World();
  const s = w.sender('q');
  const c = w.consumer('q', 5, 10, true);
  const d = w.send(s);
  assert.is(w.fx.transmits[0].settled, true);
  assert.is(c.unsettled, 0);
  assert.equal(w.fx.settlesOf(d).map((x) => [x.state, x.made]), [[null, 0]]);
});

// ---------------------------------------------------------------------------------------------
// No route

test('no route: unsettled -> released (settleIn with Made.Released), settled -> dropped', () => {
  // S1(anonymous) --> [router] -/-> 'nowhere'
  const w = new World();
  const s = w.sender(null);
  const d = w.send(s, false, 'nowhere');
  assert.equal(w.fx.settlesOf(d).map((x) => [x.state, x.made]), [[null, Made.Released]]);
  assert.is(w.core.stats.releasedNoRoute, 1);
  const d2 = w.send(s, true, 'nowhere');
  assert.is(w.fx.settlesOf(d2).length, 0);
  assert.is(w.core.stats.droppedPresettled, 1);
  assert.is(w.fx.transmits.length, 0);
  assert.is(s.held, 0);
});

test('unavailable address: an anonymous client delivery is rejected (Made.RejectedUnavailable); settled -> dropped', () => {
  // S1(anonymous, to=closed.q) --> [router] -x (address unavailable)
  const w = new World([{ prefix: 'closed', distribution: 'unavailable' }]);
  const s = w.sender(null);
  const d = w.send(s, false, 'closed.q');
  assert.equal(w.fx.settlesOf(d).map((x) => [x.state, x.made]), [[null, Made.RejectedUnavailable]]);
  assert.is(w.core.stats.rejectedDeliveries, 1);
  assert.is(w.core.stats.releasedNoRoute, 0);
  assert.is(s.rejectedCount, 1);
  const d2 = w.send(s, true, 'closed.q');
  assert.is(w.fx.settlesOf(d2).length, 0);
  assert.is(w.core.stats.droppedPresettled, 1);
  assert.is(s.held, 0);
  // Other addresses still route, and the sender keeps its credit.
  const c = w.consumer('open', 5);
  const d3 = w.send(s, false, 'open');
  assert.is(w.fx.sentOn(c)[0].delivery, d3);
});

test('anonymous sender routes by `to` to an existing consumer', () => {
  // S1(anonymous, to=q) --> [router] --> C1(q)
  const w = new World();
  const s = w.sender(null);
  const c = w.consumer('q', 5);
  const d = w.send(s, false, 'q');
  assert.is(w.fx.sentOn(c)[0].delivery, d);
});

test('message arriving after the last consumer left (credit in flight): released', () => {
  // S1 --> [router] --> C1 ; C1 leaves while S1 still has credit
  const w = new World();
  const s = w.sender('q');
  const c = w.consumer('q', 5);
  w.gone(c);
  const d = w.send(s, false, null, true);
  assert.equal(w.fx.settlesOf(d).map((x) => x.made), [Made.Released]);
});

// ---------------------------------------------------------------------------------------------
// Drain

test('drain completes at once when nothing is queued', () => {
  // S1 --> [router] --> C1 (drain)
  const w = new World();
  w.sender('q');
  const c = w.consumer('q', 0);
  w.credit(c, 5, true);
  assert.equal(w.fx.drains, [c]);
  assert.is(c.drain, false);
});

test('drain sends what is queued first, then completes', () => {
  // S1 --> [router] --> C1 (2 queued, then credit 5 + drain)
  const w = new World();
  const s = w.sender('q');
  const c = w.consumer('q', 0);
  w.send(s);
  w.send(s);
  w.credit(c, 5, true);
  assert.is(w.fx.sentOn(c).length, 2);
  assert.equal(w.fx.drains, [c]);
});

test('drain does not complete while messages wait for credit', () => {
  // S1 --> [router] --> C1 (3 queued, credit 1 + drain)
  const w = new World();
  const s = w.sender('q');
  const c = w.consumer('q', 0);
  for (let i = 0; i < 3; i++) w.send(s);
  w.credit(c, 1, true);
  assert.is(w.fx.sentOn(c).length, 1);
  assert.is(w.fx.drains.length, 0);
  w.credit(c, 2, true);
  assert.is(w.fx.sentOn(c).length, 3);
  assert.equal(w.fx.drains, [c]);
});

test('a blocked connection queues; onWritable resumes sending', () => {
  // S1 --> [router] --> C1 (credit, socket blocked)
  const w = new World();
  const s = w.sender('q');
  const c = w.consumer('q', 10);
  w.fx.blocked.add(c);
  w.send(s);
  w.send(s);
  assert.is(w.fx.transmits.length, 0);
  assert.is(c.undeliveredCount, 2);
  w.fx.blocked.delete(c);
  w.core.onWritable(c);
  w.core.flush();
  assert.is(w.fx.sentOn(c).length, 2);
});

// ---------------------------------------------------------------------------------------------
// Bookkeeping

test('addresses are created on attach and dropped when their last link leaves', () => {
  // S1 --> [router] --> C1
  const w = new World(MC);
  const s = w.sender('mc.x');
  const c = w.consumer('mc.x');
  assert.equal(w.core.readAddress('mc.x'), { key: 'mc.x', distribution: 'multicast', consumers: 1, senders: 1 });
  w.gone(c);
  assert.equal(w.core.readAddress('mc.x'), { key: 'mc.x', distribution: 'multicast', consumers: 0, senders: 1 });
  w.gone(s);
  assert.is(w.core.readAddress('mc.x'), null);
});

test('stats count deliveries in and out (multicast counts each copy)', () => {
  // S1 --> [router] --> C1, C2   (multicast)
  const w = new World(MC);
  const s = w.sender('mc');
  w.consumer('mc', 10);
  w.consumer('mc', 10);
  w.send(s);
  w.send(s);
  assert.is(w.core.stats.deliveriesIn, 2);
  assert.is(w.core.stats.deliveriesOut, 4);
  const q = w.core.queryAddresses().find((a) => a.key === 'mc');
  assert.ok(q);
  assert.is(q.deliveriesIn, 2);
  assert.is(q.deliveriesOut, 4);
});

// ---------------------------------------------------------------------------------------------
// Tear-down cost: a connection closing with many links on one address

/** Wraps `arr` so that every element read or written through it is counted (a splice counts each element it moves). */
function counted<T>(arr: T[], counter: { n: number }): T[] {
  const isIndex = (k: string | symbol) => typeof k === 'string' && k.length > 0 && k.charCodeAt(0) >= 48 && k.charCodeAt(0) <= 57;
  return new Proxy(arr, {
    get(t, k, r) {
      if (isIndex(k)) counter.n++;
      return Reflect.get(t, k, r);
    },
    set(t, k, v, r) {
      if (isIndex(k)) counter.n++;
      return Reflect.set(t, k, v, r);
    },
    deleteProperty(t, k) {
      counter.n++;
      return Reflect.deleteProperty(t, k);
    },
  });
}

test('tear-down is linear: removing N consumers and N senders of one address touches O(N) slots', () => {
  // S1..SN --> [router: q] --> C1..CN, then every link goes, in attach order (as a connection
  // closing with all of them does). indexOf + splice from the front cost N^2/2 element moves.
  for (const n of [1024, 4096]) {
    const w = new World();
    const consumers: CoreLink[] = [];
    const senders: CoreLink[] = [];
    for (let i = 0; i < n; i++) consumers.push(w.core.onConsumerAttached('q', 10, false, { i }));
    for (let i = 0; i < n; i++) senders.push(w.core.onSenderAttached('q', 10, { i }));
    w.core.flush();
    const a = consumers[0].address as unknown as { consumers: CoreLink[]; senders: CoreLink[] };
    const ops = { n: 0 };
    a.consumers = counted(a.consumers, ops);
    a.senders = counted(a.senders, ops);
    for (let i = 0; i < n; i++) {
      w.core.onLinkGone(consumers[i]);
      w.core.onLinkGone(senders[i]);
    }
    w.core.flush();
    assert.is(w.core.readAddress('q'), null, 'the address went with its last link');
    assert.ok(ops.n <= 20 * n, `${n} links each way: ${ops.n} element operations (at most ${20 * n})`);
  }
});

test('tear-down: 65,536 consumers on one address (a full session of handles) are removed in any order', () => {
  const w = new World(RR);
  const n = 65536;
  const links: CoreLink[] = [];
  for (let i = 0; i < n; i++) links.push(w.core.onConsumerAttached('rr.big', 1, false, { i }));
  const s = w.sender('rr.big');
  // Every other one first, then the rest backwards: the remaining consumers keep routing
  // (closest: one that can take the message now).
  for (let i = 0; i < n; i += 2) w.core.onLinkGone(links[i]);
  assert.is(w.core.readAddress('rr.big')?.consumers, n / 2);
  w.credit(links[1], 1);
  w.send(s);
  assert.is(w.fx.sentOn(links[1]).length, 1, 'a remaining consumer still receives');
  for (let i = n - 1; i > 0; i -= 2) w.core.onLinkGone(links[i]);
  w.core.flush();
  assert.is(w.core.readAddress('rr.big')?.consumers, 0);
  const d = w.send(s);
  assert.equal([w.fx.settlesOf(d)[0]?.made, w.fx.drainAsks], [Made.Released, [s]], 'no consumer left: released, and the sender drained');
});

test.run();
