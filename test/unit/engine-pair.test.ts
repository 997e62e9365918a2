// Client engine <-> server engine, bytes piped between them in memory (no sockets).
//
//   [client Connection] <==bytes==> [server Connection]
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AttachFrame } from '../../amqp/performatives';
import { Connection, ConnectionHandler, ConnectionOptions, InDelivery, Link, OutDelivery } from '../../amqp/engine/connection';
import { STATE } from '../../amqp/performatives';

class Recorder implements ConnectionHandler {
  opened = 0;
  linksOpened: Link[] = [];
  attaches: Link[] = [];
  deliveries: InDelivery[] = [];
  outcomes: { d: OutDelivery; code: number; settled: boolean }[] = [];
  flows = 0;
  closed: string[] = [];
  constructor(readonly accept = true) {}
  onOpen(): void { this.opened++; }
  onLinkOpened(link: Link): void { this.linksOpened.push(link); }
  onAttach(link: Link, a: AttachFrame): void {
    this.attaches.push(link);
    if (this.accept) link.accept({}, a);
    else link.refuse({ condition: 'amqp:not-found', description: 'no' }, a);
  }
  onFlow(): void { this.flows++; }
  onDelivery(_l: Link, d: InDelivery): void { this.deliveries.push(d); }
  onOutcome(d: OutDelivery, code: number, _s: Buffer | null, settled: boolean): void { this.outcomes.push({ d, code, settled }); }
  onSessionWritable(): void {}
  onInSettled(): void {}
  onLinkGone(): void {}
  onClosed(_c: Connection, reason: string): void { this.closed.push(reason); }
  log(): void {}
}

function opts(client?: ConnectionOptions['client']): ConnectionOptions {
  return {
    containerId: client ? 'client' : 'server', maxFrameSize: 4096, channelMax: 255, idleTimeoutMs: 0, maxMessageSize: 1 << 20,
    handleMax: 255, saslMechanisms: ['ANONYMOUS', 'PLAIN'], requireSasl: false, offeredCapabilities: [], properties: { role: client ? 'c' : 's' },
    incomingWindow: 1000, client, checkPlain: (u, p) => u === 'u' && p === 'p',
  };
}

/** Pipes output both ways until quiet. */
function pump(a: Connection, b: Connection): void {
  for (let i = 0; i < 50; i++) {
    const x = a.takeOutput();
    const y = b.takeOutput();
    if (x === null && y === null) return;
    if (x) b.onBytes(x, 0);
    if (y) a.onBytes(y, 0);
  }
}

for (const mechanism of ['ANONYMOUS', 'PLAIN', null] as const) {
  test(`client (${mechanism ?? 'no SASL'}) opens, begins, attaches a sender; message and outcome cross`, () => {
    const ch = new Recorder(), sh = new Recorder();
    const client = new Connection(opts({ mechanism, user: 'u', password: 'p' }), ch, 0);
    const server = new Connection(opts(), sh, 0);
    client.start();
    const s = client.beginSession();
    const link = client.attach(s, 'l1', true, { type: 'source', address: 'a' }, { type: 'target', address: 'q' });
    pump(client, server);
    assert.is(ch.opened, 1);
    assert.is(sh.opened, 1);
    assert.equal(client.remoteOpen?.properties, { role: 's' });
    assert.equal(server.remoteOpen?.properties, { role: 'c' });
    assert.is(ch.linksOpened.length, 1);
    assert.ok(link.attached);
    const peer = sh.attaches[0];
    server.setCredit(peer, 10);
    pump(client, server);
    assert.is(link.credit, 10);
    const payload = Buffer.alloc(10_000, 7); // spans frames at 4096
    const od = client.send(link, payload, false, null);
    pump(client, server);
    assert.is(sh.deliveries.length, 1);
    assert.ok(sh.deliveries[0].payload.equals(payload));
    server.updateIn(sh.deliveries[0], STATE.accepted, true);
    pump(client, server);
    assert.is(ch.outcomes.length, 1);
    assert.is(ch.outcomes[0].d, od);
    assert.is(ch.outcomes[0].code, 0x24);
    assert.ok(ch.outcomes[0].settled);
  });
}

test('an outcome decided before our detach goes out before it (the peer would count it lost)', () => {
  //   [client sender] --msg--> [server receiver]: server accepts, then detaches at once
  const events: string[] = [];
  const ch = new (class extends Recorder {
    override onOutcome(d: OutDelivery, code: number, st: Buffer | null, settled: boolean): void {
      events.push('outcome');
      super.onOutcome(d, code, st, settled);
    }
    override onLinkGone(): void {
      events.push('detach');
    }
  })();
  const sh = new Recorder();
  const client = new Connection(opts({ mechanism: 'ANONYMOUS' }), ch, 0);
  const server = new Connection(opts(), sh, 0);
  client.start();
  const link = client.attach(client.beginSession(), 'l1', true, { type: 'source', address: null }, { type: 'target', address: 'q' });
  pump(client, server);
  server.setCredit(sh.attaches[0], 1);
  pump(client, server);
  const od = client.send(link, Buffer.from([0x00, 0x53, 0x77, 0x40]), false, null);
  pump(client, server);
  server.updateIn(sh.deliveries[0], STATE.accepted, true);
  server.detachLink(sh.attaches[0], null);
  pump(client, server);
  assert.equal(ch.outcomes.map((o) => [o.d, o.code, o.settled]), [[od, 0x24, true]]);
  assert.equal(events, ['outcome', 'detach'], 'the disposition frame precedes the detach');
});

test('client receiver: credit from our side, deliveries from the peer', () => {
  const ch = new Recorder(), sh = new Recorder();
  const client = new Connection(opts({ mechanism: 'ANONYMOUS' }), ch, 0);
  const server = new Connection(opts(), sh, 0);
  client.start();
  const s = client.beginSession();
  const link = client.attach(s, 'r1', false, { type: 'source', address: 'q' }, { type: 'target', address: null });
  pump(client, server);
  client.setCredit(link, 5);
  pump(client, server);
  const peer = sh.attaches[0];
  assert.ok(peer.isSender);
  assert.is(peer.credit, 5);
  server.send(peer, Buffer.from([0x00, 0x53, 0x77, 0x40]), true, null);
  pump(client, server);
  assert.is(ch.deliveries.length, 1);
  assert.is(link.credit, 4);
});

test('two of our links with one name on one session (a router relaying two clients\' same-named links): each answer pairs with its own link', () => {
  const ch = new Recorder(), sh = new Recorder();
  const client = new Connection(opts({ mechanism: 'ANONYMOUS' }), ch, 0);
  const server = new Connection(opts(), sh, 0);
  client.start();
  const s = client.beginSession();
  const first = client.attach(s, 'same', false, { type: 'source', address: 'q1' }, { type: 'target', address: null });
  const second = client.attach(s, 'same', false, { type: 'source', address: 'q2' }, { type: 'target', address: null });
  pump(client, server);
  assert.equal(ch.linksOpened, [first, second], 'answered in order, each to its own link');
  assert.is(sh.attaches.length, 2);
  client.setCredit(first, 1);
  client.setCredit(second, 1);
  pump(client, server);
  server.send(sh.attaches[1], Buffer.from([0x00, 0x53, 0x77, 0x40]), true, null);
  pump(client, server);
  assert.is(ch.deliveries.length, 1);
  assert.is(ch.deliveries[0].link, second, 'the delivery arrives on the link the server attached second');
});

test('refused attach: not opened, no onLinkOpened', () => {
  const ch = new Recorder(), sh = new Recorder(false);
  const client = new Connection(opts({ mechanism: 'ANONYMOUS' }), ch, 0);
  const server = new Connection(opts(), sh, 0);
  client.start();
  const s = client.beginSession();
  const link = client.attach(s, 'x', true, { type: 'source', address: 'a' }, { type: 'target', address: 'q' });
  pump(client, server);
  assert.is(ch.linksOpened.length, 0);
  assert.not.ok(link.attached);
});

test('bad PLAIN credentials: client closes with auth-failed', () => {
  const ch = new Recorder(), sh = new Recorder();
  const o = opts();
  o.requireSasl = true;
  o.saslMechanisms = ['PLAIN'];
  const client = new Connection(opts({ mechanism: 'PLAIN', user: 'u', password: 'wrong' }), ch, 0);
  const server = new Connection(o, sh, 0);
  client.start();
  pump(client, server);
  assert.equal(ch.closed, ['auth-failed']);
  assert.equal(sh.closed, ['auth-failed']);
});

test.run();
