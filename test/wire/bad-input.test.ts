// Bad input: a misbehaving client must be answered as AMQP 1.0 says and cut off, alone.
//
//   raw client (bad) ----\
//                         >--> [router R1]   listener 0: defaults
//   good peer (rx + tx) -/                   listener 1: maxFrameSize 1024
//                                             listener 2: authenticatePeer yes, saslMechanisms PLAIN
//
// Every case also checks that a well-behaved client connected at the same time still sends and
// receives through the router, that a new client can connect, and that the router logged it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AMQP_HEADER, SASL_HEADER } from '../../amqp/frames';
import { D } from '../../amqp/performatives';
import { RawClient, conditionOf, described, encode, section, terminus, uint } from '../support/raw-client';
import { RunningRouter, plainUsersDir, startRouter, standaloneConfig } from '../support/router';
import { GoodPeer, attachReply, everyoneElseWorks, logSince, textMessage } from './helpers';

let r: RunningRouter;
let port: number, smallFramePort: number, authPort: number;
const clients: RawClient[] = [];
const peers: GoodPeer[] = [];

test.before(async () => {
  r = await startRouter(
    standaloneConfig(
      'listener {\n    host: 127.0.0.1\n    port: 0\n    maxFrameSize: 1024\n    saslMechanisms: ANONYMOUS PLAIN\n}\n' +
      'listener {\n    host: 127.0.0.1\n    port: 0\n    authenticatePeer: yes\n    saslMechanisms: PLAIN\n}\n',
      '',
      `    saslConfigDir: ${plainUsersDir({ alice: 'secret' })}\n`,
    ),
    { listeners: 3 },
  );
  [port, smallFramePort, authPort] = r.ports;
});

test.after.each(() => {
  for (const c of clients.splice(0)) c.destroy();
  for (const p of peers.splice(0)) p.close();
});

test.after(async () => {
  if (r) await r.stop();
});

async function raw(p = port): Promise<RawClient> {
  const c = await RawClient.connect(p);
  clients.push(c);
  return c;
}

async function good(address: string, p = port): Promise<GoodPeer> {
  const g = await GoodPeer.start(p, address);
  peers.push(g);
  return g;
}

const FRAMING_OR_DECODE = ['amqp:connection:framing-error', 'amqp:decode-error'];

function closeCondition(c: RawClient): string | null {
  const close = c.frames.find((f) => f.name === 'close');
  return close ? conditionOf(close.fields[0]) : null;
}

test('garbage after the AMQP header: close with framing-error, socket closed', async () => {
  const g = await good('closest/bad-garbage');
  const mark = r.log.length;
  const c = await raw();
  c.header(0);
  c.send('this is not an AMQP frame, only text!!!');
  await c.waitClosed();
  assert.equal(c.headers, [0], 'router answered with the AMQP header');
  const cond = closeCondition(c);
  assert.ok(cond !== null && FRAMING_OR_DECODE.includes(cond), `close condition ${cond}; frames ${c.describe()}`);
  assert.ok(c.frames.findIndex((f) => f.name === 'open') < c.frames.findIndex((f) => f.name === 'close'), 'open precedes close');
  assert.match(logSince(r, mark), /framing-error/);
  await everyoneElseWorks(r, g);
});

test('a well-sized frame with a garbage body, before and after open: close with decode-error', async () => {
  const g = await good('closest/bad-body');
  for (const afterOpen of [false, true]) {
    const mark = r.log.length;
    const c = await raw();
    c.header(0);
    if (afterOpen) {
      c.open();
      await c.waitForFrame((f) => f.name === 'open');
    }
    c.send(RawClient.frameBytes(0, 0, Buffer.from('garbage where a performative should be')));
    await c.waitClosed();
    const cond = closeCondition(c);
    assert.ok(cond !== null && FRAMING_OR_DECODE.includes(cond), `close condition ${cond}; frames ${c.describe()}`);
    assert.match(logSince(r, mark), /decode-error|framing-error/);
  }
  await everyoneElseWorks(r, g);
});

test('an HTTP request or another protocol\'s header: the router answers with the AMQP header and closes', async () => {
  // AMQP 1.0 2.2: a peer that cannot speak the requested protocol sends the header it supports, then closes.
  const g = await good('closest/bad-http');
  const cases: [string, Buffer | string, RegExp][] = [
    ['HTTP request line', 'GET / HTTP/1.1\r\n', /not an AMQP protocol header/],
    ['TLS header (protocol id 2)', Buffer.from([0x41, 0x4d, 0x51, 0x50, 2, 1, 0, 0]), /unsupported protocol id 2/],
    ['AMQP 0-9-1 header', Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]), /unsupported AMQP version/],
  ];
  for (const [what, bytes, logged] of cases) {
    const mark = r.log.length;
    const c = await raw();
    c.send(bytes);
    await c.waitClosed();
    assert.equal(c.allBytes, AMQP_HEADER, `${what}: exactly the AMQP header, then the socket closes`);
    assert.match(logSince(r, mark), logged);
  }
  await everyoneElseWorks(r, g);
});

test('a frame over max-frame-size (listener maxFrameSize 1024): close with framing-error', async () => {
  const g = await good('closest/bad-big-frame', smallFramePort);
  const mark = r.log.length;
  const c = await raw(smallFramePort);
  c.header(0);
  c.open({ maxFrameSize: 1024 });
  const open = await c.waitForFrame((f) => f.name === 'open');
  assert.is(open.fields[2], 1024, 'router advertises the listener max-frame-size');
  const h = Buffer.alloc(8);
  h.writeUInt32BE(2000, 0);
  h[4] = 2;
  c.send(Buffer.concat([h, Buffer.alloc(100)]));
  await c.waitClosed();
  assert.is(closeCondition(c), 'amqp:connection:framing-error', c.describe());
  assert.match(logSince(r, mark), /exceeds max-frame-size 1024/);
  await everyoneElseWorks(r, g, smallFramePort);
});

test('SASL: sasl-init with an unknown mechanism: outcome auth, socket closed', async () => {
  const g = await good('closest/bad-sasl-mech');
  const mark = r.log.length;
  const c = await raw();
  c.header(3);
  const mechs = await c.waitForFrame((f) => f.name === 'sasl-mechanisms');
  assert.ok(c.headers[0] === 3, 'SASL header first');
  assert.ok(mechs.type === 1, 'a SASL frame');
  c.saslInit('X-NO-SUCH-MECH', Buffer.from('hello'), null);
  const outcome = await c.waitForFrame((f) => f.name === 'sasl-outcome');
  assert.ok((outcome.fields[0] as number) > 0, `outcome code ${outcome.fields[0]}`);
  await c.waitClosed();
  assert.equal(c.headers, [3], 'no AMQP header after a failed SASL exchange');
  assert.match(logSince(r, mark), /X-NO-SUCH-MECH not offered/);
  await everyoneElseWorks(r, g);
});

test('SASL: a garbage SASL frame: no success, socket closed', async () => {
  const g = await good('closest/bad-sasl-garbage');
  const mark = r.log.length;
  const c = await raw();
  c.header(3);
  await c.waitForFrame((f) => f.name === 'sasl-mechanisms');
  c.send(RawClient.frameBytes(1, 0, Buffer.from([0x00, 0x53, 0x41, 0xc0, 0x10, 0x05, 0xff, 0xfe])));
  await c.waitClosed();
  for (const f of c.frames.filter((x) => x.name === 'sasl-outcome')) assert.ok((f.fields[0] as number) > 0, 'a sasl-outcome, if any, is a failure');
  assert.equal(c.headers, [3], 'no AMQP header');
  assert.match(logSince(r, mark), /malformed SASL frame/);
  await everyoneElseWorks(r, g);
});

test('SASL: PLAIN with bad credentials on an authenticatePeer listener: outcome auth, closed', async () => {
  const g = await good('closest/bad-sasl-plain');
  const mark = r.log.length;
  const c = await raw(authPort);
  c.header(3);
  const mechs = await c.waitForFrame((f) => f.name === 'sasl-mechanisms');
  const offered = mechs.fields[0];
  assert.ok((Array.isArray(offered) ? offered : [offered]).includes('PLAIN'), `PLAIN offered: ${c.describe()}`);
  c.saslInit('PLAIN', Buffer.from('\0mallory\0wrong-password'), 'localhost');
  const outcome = await c.waitForFrame((f) => f.name === 'sasl-outcome');
  assert.is(outcome.fields[0], 1, 'sasl-outcome code auth (1)');
  await c.waitClosed();
  assert.match(logSince(r, mark), /PLAIN authentication failed/);
  await everyoneElseWorks(r, g);
});

test('SASL: PLAIN with good credentials (from saslConfigDir) on an authenticatePeer listener: outcome ok, open', async () => {
  const c = await raw(authPort);
  c.header(3);
  await c.waitForFrame((f) => f.name === 'sasl-mechanisms');
  c.saslInit('PLAIN', Buffer.from('\0alice\0secret'), 'localhost');
  const outcome = await c.waitForFrame((f) => f.name === 'sasl-outcome');
  assert.is(outcome.fields[0], 0, 'sasl-outcome code ok (0)');
  c.header(0);
  c.open();
  await c.waitForFrame((f) => f.name === 'open');
});

test('SASL: plain AMQP header on an authenticatePeer listener: SASL header, then closed', async () => {
  const g = await good('closest/bad-no-sasl');
  const mark = r.log.length;
  const c = await raw(authPort);
  c.header(0);
  c.open();
  await c.waitClosed();
  assert.equal(c.allBytes, SASL_HEADER, 'only the SASL header comes back');
  assert.match(logSince(r, mark), /without SASL/);
  await everyoneElseWorks(r, g);
});

test('transfer on an unknown handle: end with unattached-handle; the connection stays usable', async () => {
  const g = await good('closest/bad-handle');
  const mark = r.log.length;
  const c = await RawClient.open(port, { session: true });
  clients.push(c);
  c.transfer(0, { handle: 7, payload: textMessage('to nowhere') });
  const end = await c.waitForFrame((f) => f.name === 'end' && f.session === 0);
  assert.is(conditionOf(end.fields[0]), 'amqp:session:unattached-handle', c.describe());
  assert.not.ok(c.frames.some((f) => f.name === 'close'), 'only the session ends');
  c.end(0);
  c.begin(1);
  await c.waitForFrame((f) => f.name === 'begin' && f.session === 1);
  const same = await GoodPeer.start(port, 'closest/bad-handle-2', c, 1);
  await same.roundTrip();
  assert.not.ok(c.closed);
  assert.match(logSince(r, mark), /unattached-handle/);
  await everyoneElseWorks(r, g);
});

test('no frame on a session after the router ends it (a disposition queued in the same batch)', async () => {
  // AMQP 1.0 2.5.5/2.7.7: once an endpoint has sent end, the channel is unmapped; nothing more
  // may be sent on it until it is begun again.
  const g = await good('closest/bad-after-end');
  const mark = r.log.length;
  const c = await RawClient.open(port, { session: true });
  clients.push(c);
  c.attachSender(0, 0, 'anon-after-end', null);
  const a = await attachReply(c, 'anon-after-end');
  await c.waitForFrame((f) => f.name === 'flow' && f.fields[4] === a.fields[1] && (f.fields[6] as number) > 0);
  const since = c.mark;
  // One write: a delivery the router releases at once (no route), then a transfer on a bad handle.
  c.batch(() => {
    c.sendMessage(0, 0, Buffer.concat([section(D.Properties, [null, null, 'closest/nobody-here']), textMessage('released')]));
    c.transfer(0, { handle: 9, payload: textMessage('bad handle') });
  });
  const end = await c.waitForFrame((f) => f.name === 'end' && f.session === 0, 3000, since);
  assert.is(conditionOf(end.fields[0]), 'amqp:session:unattached-handle');
  await c.expectNoFrame((f) => f.channel === end.channel && c.frames.indexOf(f) > c.frames.indexOf(end), 100, since)
    .catch((e: Error) => assert.unreachable(`frame after end on channel ${end.channel}: ${e.message}; all: ${c.describe(since)}`));
  assert.match(logSince(r, mark), /transfer on unattached handle 9/);
  await everyoneElseWorks(r, g);
});

test('unusual but valid framing: pipelined SASL + open + begin + attach, extended frame headers', async () => {
  const c = await raw();
  c.batch(() => {
    c.header(3);
    c.saslInit('ANONYMOUS', null, null);
    c.header(0);
    c.open();
    c.begin(0);
    c.attachReceiver(0, 0, 'pipelined', 'closest/pipelined');
  });
  await attachReply(c, 'pipelined');
  assert.equal(c.headers, [3, 0]);
  assert.equal(c.frames.map((f) => f.name), ['sasl-mechanisms', 'sasl-outcome', 'open', 'begin', 'attach'], c.describe());
  assert.is(c.frames[1].fields[0], 0, 'sasl ok');
  // A frame whose header is extended (doff 3): the 4 extra bytes must be ignored (2.3.1).
  const body = encode(described(D.Begin, [null, uint(0), uint(100), uint(100)]));
  const h = Buffer.alloc(12);
  h.writeUInt32BE(12 + body.length, 0);
  h[4] = 3;
  h.writeUInt16BE(1, 6);
  h.writeUInt32BE(0xdeadbeef, 8);
  c.send(Buffer.concat([h, body]));
  await c.waitForFrame((f) => f.name === 'begin' && f.session === 1);
  // Empty frames (heartbeats) are fine at any time.
  c.send(RawClient.frameBytes(0, 0, Buffer.alloc(0)));
  const g = await GoodPeer.start(port, 'closest/pipelined-2', c, 1);
  await g.roundTrip();
});

test('attach with an invalid address: attach with a null terminus, then detach with invalid-field', async () => {
  const g = await good('closest/bad-address');
  const mark = r.log.length;
  const c = await RawClient.open(port, { session: true });
  clients.push(c);
  const cases: { name: string; receiver: boolean; terminus: unknown }[] = [
    { name: 'rx-empty-address', receiver: true, terminus: terminus('source', '') },
    { name: 'rx-control-chars', receiver: true, terminus: terminus('source', 'closest/bad\x01\x7faddress') },
    { name: 'rx-no-source-address', receiver: true, terminus: terminus('source', null) },
    { name: 'rx-null-source', receiver: true, terminus: null },
    { name: 'tx-empty-address', receiver: false, terminus: terminus('target', '') },
    { name: 'tx-control-chars', receiver: false, terminus: terminus('target', 'closest/\nnewline') },
  ];
  let handle = 0;
  for (const k of cases) {
    const since = c.mark;
    const h = handle++;
    if (k.receiver) c.attach(0, { name: k.name, handle: h, role: true, source: k.terminus, target: terminus('target', k.name) });
    else c.attachSender(0, h, k.name, k.terminus);
    const a = await attachReply(c, k.name);
    assert.is(a.fields[2], !k.receiver, `${k.name}: router's role`);
    if (k.receiver) assert.is(a.fields[5], null, `${k.name}: null source in the reply`);
    else assert.is(a.fields[6], null, `${k.name}: null target in the reply`);
    const routerHandle = a.fields[1];
    const d = await c.waitForFrame((f) => f.name === 'detach' && f.fields[0] === routerHandle, 3000, since);
    assert.is(d.fields[1], true, `${k.name}: detach closed`);
    assert.is(conditionOf(d.fields[2]), 'amqp:invalid-field', `${k.name}: ${c.describe(since)}`);
    assert.ok(c.frames.indexOf(a) < c.frames.indexOf(d), 'attach before detach');
    c.detach(0, h, true);
  }
  assert.not.ok(c.frames.some((f) => f.name === 'end' || f.name === 'close'), c.describe());
  const same = await GoodPeer.start(port, 'closest/bad-address-2', c, 0, 100);
  await same.roundTrip();
  assert.match(logSince(r, mark), /refused link rx-empty-address: amqp:invalid-field/);
  assert.match(logSince(r, mark), /refused link tx-control-chars: amqp:invalid-field/);
  await everyoneElseWorks(r, g);
});

test('transfer without credit: detach with amqp:link:transfer-limit-exceeded', async () => {
  const g = await good('closest/bad-credit');
  const mark = r.log.length;
  const c = await RawClient.open(port, { session: true });
  clients.push(c);
  c.attachSender(0, 0, 'no-credit-sender', 'closest/nobody-listens-here');
  const a = await attachReply(c, 'no-credit-sender');
  assert.not.ok(c.frames.some((f) => f.name === 'flow' && f.fields[4] === a.fields[1] && (f.fields[6] as number) > 0), 'no credit was given');
  c.sendMessage(0, 0, textMessage('uninvited'));
  const d = await c.waitForFrame((f) => f.name === 'detach' && f.fields[0] === a.fields[1]);
  assert.is(conditionOf(d.fields[2]), 'amqp:link:transfer-limit-exceeded', c.describe());
  assert.is(d.fields[1], true, 'closed');
  c.detach(0, 0, true);
  assert.not.ok(c.frames.some((f) => f.name === 'end' || f.name === 'close'), 'session and connection survive');
  const same = await GoodPeer.start(port, 'closest/bad-credit-2', c, 0, 10);
  await same.roundTrip();
  assert.match(logSince(r, mark), /transfer without link credit/);
  await everyoneElseWorks(r, g);
});

test.run();
