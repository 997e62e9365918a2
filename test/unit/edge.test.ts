/**
 * Edge mode without sockets: the address-tracking message (router/protocol/edge-protocol.ts), byte
 * for byte, and the routing core's edge rules (router/core/core.ts) driven through its actions
 * with a recording CoreEffects fake. E = the edge connection (an opaque object, as the I/O passes
 * its Connection); S = a sending client, C = a consumer.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AddressTable } from '../../router/core/addresses';
import { Copy, CoreEffects, CoreLink, Delivery, Made, RouterCore } from '../../router/core/core';
import { EdgeProtocolError, LookupStatus, decodeEdgeTracking, decodeLookupRequest, encodeEdgeTracking, encodeLookupReply } from '../../router/protocol/edge-protocol';
import { Writer, sym } from '../../amqp/codec';
import { isProxiedKey } from '../../router/io/edge-uplink';

// ------------------------------------------------------------------------ the tracking message

test('tracking message: header durable=false, amqp-value [key, present], as qdrouterd composes it', () => {
  const key = 'M0multicast/test';
  const bytes = encodeEdgeTracking({ key, present: true });
  const expected = Buffer.concat([
    Buffer.from([0x00, 0x53, 0x70, 0xc0, 0x02, 0x01, 0x42]), // header: list8 [false]
    Buffer.from([0x00, 0x53, 0x77, 0xc0, 1 + 2 + key.length + 1, 0x02, 0xa1, key.length]), // amqp-value: list8 (size: count, str8, bool) [str8 ...
    Buffer.from(key, 'utf8'),
    Buffer.from([0x41]), // true]
  ]);
  assert.equal(bytes.toString('hex'), expected.toString('hex'));
  assert.equal(decodeEdgeTracking(bytes), { key, present: true });
  assert.equal(decodeEdgeTracking(encodeEdgeTracking({ key: 'M0q', present: false })), { key: 'M0q', present: false });
});

test('tracking message: a symbol key and list32 are read too; anything else is refused with a reason', () => {
  const w = new Writer(64);
  w.descriptor(0x77);
  w.value([sym('M0a'), true]);
  assert.equal(decodeEdgeTracking(w.take()), { key: 'M0a', present: true });
  const bad = (value: unknown) => {
    const b = new Writer(64);
    b.descriptor(0x77);
    b.value(value);
    return b.take();
  };
  for (const v of [['M0a'], ['M0a', 1], [7, true], 'M0a', ['M0a', true, false]]) {
    assert.throws(() => decodeEdgeTracking(bad(v)), (e: unknown) => e instanceof EdgeProtocolError && /list of an address and a boolean/.test((e as Error).message), JSON.stringify(v));
  }
  assert.throws(() => decodeEdgeTracking(Buffer.from([0x00, 0x53, 0x77, 0xc0, 0x09])), (e: unknown) => e instanceof EdgeProtocolError && (e as Error).cause !== undefined, 'truncated');
});

test('link-route lookup: qdrouterd\'s request is read; every malformed one is refused with its reason', () => {
  const req = (props: unknown[], app: Map<string, unknown>, body: unknown): Buffer => {
    const w = new Writer(128);
    w.descriptor(0x73);
    w.value(props);
    w.descriptor(0x74);
    w.value(app);
    w.descriptor(0x77);
    w.value(body);
    return w.take();
  };
  const props = [null, null, null, null, '_edge/E1/temp.r', 'c1'];
  const ok = new Map<string, unknown>([['version', 1], ['opcode', 1]]);
  assert.equal(decodeLookupRequest(req(props, ok, ['lr.a', true])), { replyTo: '_edge/E1/temp.r', correlationId: 'c1', address: 'lr.a', receiver: true });
  const bad: [Buffer, RegExp][] = [
    [req(props, new Map<string, unknown>([['version', 2], ['opcode', 1]]), ['a', true]), /version/],
    [req(props, new Map<string, unknown>([['version', 1], ['opcode', 9]]), ['a', true]), /opcode/],
    [req([null, null, null, null, null, 'c1'], ok, ['a', true]), /reply-to/],
    [req(props, ok, ['a']), /list of an address and a boolean/],
    [req(props, ok, [1, true]), /list of an address and a boolean/],
    [Buffer.from([0x00, 0x53, 0x77, 0xd0, 0xff]), /malformed/],
  ];
  for (const [bytes, why] of bad) assert.throws(() => decodeLookupRequest(bytes), (e: unknown) => e instanceof EdgeProtocolError && why.test((e as Error).message), String(why));
  // The reply: to, correlation-id, version/opcode/status as uint, [is-link-route, has-destinations].
  const reply = encodeLookupReply({ replyTo: 'r', correlationId: 'c1' }, LookupStatus.Ok, true, false);
  assert.ok(reply.includes(Buffer.from([0xa1, 0x07, ...Buffer.from('version'), 0x52, 0x01])), 'version: uint 1 (smalluint)');
  assert.equal(reply.subarray(reply.length - 8).toString('hex'), '005377c003024142', 'amqp-value [true, false]');
});

test('an edge proxies mobile addresses only', () => {
  assert.ok(isProxiedKey('multicast/test'));
  assert.ok(isProxiedKey('_$temp.abc'));
  for (const k of ['_edge', '$management', '_topo/0/R/x', '_local/x', '_edge/E1/temp.x', '\u0001' + '1q']) assert.not.ok(isProxiedKey(k), k);
});

// ------------------------------------------------------------------------ the core

class Fx implements CoreEffects {
  readonly outCredit = new Map<CoreLink, number>();
  readonly inCredit = new Map<CoreLink, number>();
  readonly transmits: Copy[] = [];
  readonly settles: { d: Delivery; made: Made | 0 }[] = [];
  readonly presence: string[] = [];
  readonly destinations: [CoreLink, boolean][] = [];
  grantCredit(link: CoreLink, credit: number): void {
    this.inCredit.set(link, credit);
  }
  canSend(link: CoreLink): boolean {
    return (this.outCredit.get(link) ?? 0) > 0;
  }
  transmit(copy: Copy): unknown {
    this.outCredit.set(copy.out, (this.outCredit.get(copy.out) ?? 0) - 1);
    this.transmits.push(copy);
    return null;
  }
  settleIn(d: Delivery, _s: Buffer | null, made: Made | 0): void {
    this.settles.push({ d, made });
  }
  settleOut(): void {}
  drainCredit(): void {}
  updateIn(): void {}
  drainComplete(): void {}
  edgePresence(key: string, consumer: boolean, present: boolean): void {
    this.presence.push(`${present ? '+' : '-'}${consumer ? 'consumer' : 'sender'} ${key}`);
  }
  edgeDestinations(link: CoreLink, present: boolean): void {
    this.destinations.push([link, present]);
  }
}

const RULES = [{ prefix: 'mc', distribution: 'multicast' as const }];

function world(edgeId: string | null) {
  const fx = new Fx();
  const core = new RouterCore(new AddressTable(RULES), fx);
  if (edgeId !== null) core.setEdgeMode(edgeId);
  const consumer = (key: string, edgeConn: unknown = null) => {
    const l = core.onConsumerAttached(key, 10, false, { c: key }, edgeConn);
    fx.outCredit.set(l, 100);
    core.onConsumerFlow(l, false);
    core.flush();
    return l;
  };
  const sender = (key: string | null, edgeConn: unknown = null) => {
    const l = core.onSenderAttached(key, 10, { s: key }, edgeConn);
    core.flush();
    return l;
  };
  const send = (s: CoreLink, to: string | null = null) => {
    const d = core.onDelivery(s, false, to, {})!;
    core.flush();
    return d;
  };
  return { fx, core, consumer, sender, send };
}

test('interior: a delivery from an edge never goes back to that edge (anycast and multicast)', () => {
  //   E --S(q)--> [interior] --> C(q) on E (E's proxy consumer), C(q) local
  const w = world(null);
  const E = { edge: 'E' };
  const proxy = w.consumer('q', E);
  const s = w.sender('q', E);
  assert.is(w.fx.inCredit.get(s) ?? 0, 0, 'only E consumes q: no credit for E\'s sender');
  const d1 = w.send(s);
  assert.equal(w.fx.settles.map((x) => [x.d, x.made]), [[d1, Made.Released]], 'nowhere else to go: released');
  const local = w.consumer('q');
  assert.is(w.fx.inCredit.get(s), 10, 'a consumer beyond E: credit');
  for (let i = 0; i < 4; i++) w.send(s);
  assert.ok(w.fx.transmits.every((c) => c.out === local), 'every copy to the local consumer, none to E');
  void proxy;
  //   E --S(mc.x)--> [interior] --> C(mc.x) on E, C(mc.x) local, C(mc.x) on F (another edge)
  const F = { edge: 'F' };
  const m1 = w.consumer('mc.x', E), m2 = w.consumer('mc.x'), m3 = w.consumer('mc.x', F);
  const ms = w.sender('mc.x', E);
  w.fx.transmits.length = 0;
  w.send(ms);
  assert.equal(w.fx.transmits.map((c) => c.out).sort((a, b) => a.id - b.id), [m2, m3], 'copies to all but E');
  void m1;
});

test('interior: an edge\'s sender is told when its address gains and loses destinations beyond that edge', () => {
  //   E --S(q)--> [interior] ; then C(q) on E, C(q) local, C(q) local leaves
  const w = world(null);
  const E = { edge: 'E' };
  const s = w.sender('q', E);
  assert.equal(w.fx.destinations, [[s, false]], 'told at attach: none');
  w.consumer('q', E);
  assert.equal(w.fx.destinations.length, 1, 'E\'s own consumer does not count');
  const c = w.consumer('q');
  assert.equal(w.fx.destinations.at(-1), [s, true]);
  w.core.onLinkGone(c);
  w.core.flush();
  assert.equal(w.fx.destinations.at(-1), [s, false]);
  // A remote router's consumer counts too.
  w.core.onRemoteAddress('R2', 'q', 'balanced', true);
  w.core.flush();
  assert.equal(w.fx.destinations.length, 3, 'no remote view on this router: a remote router is not reachable');
  assert.equal(w.fx.destinations.filter(([l]) => l !== s), [], 'only edge senders are told');
});

test('edge: local consumers and senders are proxied; links on the uplink are not', () => {
  //   C(a), S(b) on the edge; C(x) and S(x) on the uplink connection U
  const w = world('E1');
  const U = { uplink: true };
  const ca = w.consumer('a');
  w.sender('b');
  w.consumer('x', U);
  w.sender('x', U);
  w.consumer('a');
  assert.equal(w.fx.presence, ['+consumer a', '+sender b'], 'first local ones only; nothing for links on the uplink');
  w.core.onLinkGone(ca);
  assert.equal(w.fx.presence.length, 2, 'a still has a consumer');
});

test('edge: what no local consumer takes goes up the uplink; a proxy sender binds only while the interior has destinations', () => {
  //   S(anonymous) --> [edge E1] --uplink U--> interior ; S(q) --> [edge] --proxy P(q)--> interior
  const w = world('E1');
  const U = { uplink: true };
  const up = w.core.onEdgeProxyAttached(10, { uplink: true }, U);
  w.fx.outCredit.set(up, 100);
  w.core.setEdgeUplink(up);
  const anon = w.sender(null);
  w.send(anon, 'nowhere.here');
  assert.is(w.fx.transmits.at(-1)?.out, up, 'anonymous, unknown address: up the uplink');
  const topo = w.sender('_topo/0/R9/$management');
  assert.is(w.fx.inCredit.get(topo), 10, 'another router\'s address: credit through the uplink');
  w.send(topo);
  assert.is(w.fx.transmits.at(-1)?.out, up);
  const own = w.consumer('_edge/E1/temp.1');
  w.send(anon, '_edge/E1/temp.1');
  assert.is(w.fx.transmits.at(-1)?.out, own, 'this edge\'s own dynamic address stays here');

  const s = w.sender('q');
  assert.is(w.fx.inCredit.get(s) ?? 0, 0);
  const proxy = w.core.onEdgeProxyAttached(10, { proxy: 'q' }, U);
  w.fx.outCredit.set(proxy, 100);
  w.core.bindEdgeProxy(proxy, 'q', true);
  w.core.flush();
  assert.is(w.fx.inCredit.get(s), 10, 'the interior has destinations: credit');
  w.send(s);
  assert.is(w.fx.transmits.at(-1)?.out, proxy);
  // Deliveries the interior sends down (on U) never go back up.
  const down = w.sender('q', U);
  const before = w.fx.transmits.length;
  const d = w.send(down);
  assert.is(w.fx.transmits.length, before, 'not echoed to the proxy');
  assert.equal(w.fx.settles.at(-1), { d, made: Made.Released });
  w.core.bindEdgeProxy(proxy, 'q', false);
  w.core.flush();
  const lost = w.send(s);
  assert.equal(w.fx.settles.at(-1), { d: lost, made: Made.Released }, 'destinations gone: released (the client\'s credit drains, as on any router)');
});

test('edge: an anonymous multicast goes to local consumers and up the uplink once', () => {
  //   S(anonymous) --mc.a--> [edge] --> C(mc.a) ; --> uplink U
  const w = world('E1');
  const U = { uplink: true };
  const up = w.core.onEdgeProxyAttached(10, { uplink: true }, U);
  w.fx.outCredit.set(up, 100);
  w.core.setEdgeUplink(up);
  const c = w.consumer('mc.a');
  const anon = w.sender(null);
  w.send(anon, 'mc.a');
  assert.equal(w.fx.transmits.map((x) => x.out), [c, up]);
  // With the address's proxy bound, the proxy takes it up instead of the uplink.
  const proxy = w.core.onEdgeProxyAttached(10, { proxy: 'mc.a' }, U);
  w.fx.outCredit.set(proxy, 100);
  w.core.bindEdgeProxy(proxy, 'mc.a', true);
  w.fx.transmits.length = 0;
  w.send(anon, 'mc.a');
  assert.equal(w.fx.transmits.map((x) => x.out).sort((a, b) => a.id - b.id), [c, proxy]);
});

test.run();
