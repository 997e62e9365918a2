// Bad input: a misbehaving client must be answered as AMQP 1.0 says and cut off, alone.
//
//   raw client (bad) ----\
//                         >--> [router R1]   listener 0: defaults
//   good peer (rx + tx) -/                   listener 1: maxFrameSize 1024
//                                             listener 2: authenticatePeer yes, saslMechanisms PLAIN
//
// Hostile input (the last tests): a decoder bomb, strings that are not UTF-8, delivery-id gaps,
// unfinished deliveries past the per-connection and process-wide limits, and a connection
// closing with 20,000 links. The router must refuse each with its condition and live on.
//
// Every case also checks that a well-behaved client connected at the same time still sends and
// receives through the router, that a new client can connect, and that the router logged it.
// @runs-alone: sends hundreds of MiB.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AMQP_HEADER, SASL_HEADER } from '../../amqp/frames';
import { D } from '../../amqp/performatives';
import { Frame, Raw, RawClient, codeOf, conditionOf, described, encode, section, terminus, uint } from '../support/raw-client';
import { RunningRouter, plainUsersDir, startRouter, standaloneConfig } from '../support/router';
import { waitFor } from '../support/wait';
import {
  ACCEPTED, GoodPeer, attachReply, dispositionFor, everyoneElseWorks, isLinkFlow, keepAlive, logSince, openReceiver, openSender,
  sendIncomplete, sendWithCredit, textMessage, waitCredit,
} from './helpers';

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
  assert.match(logSince(r, mark), /SASL X-NO-SUCH-MECH authentication failed: mechanism not offered/);
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

// ---------------------------------------------------------------------------------------------
// Hostile input

const hex = (x: string): Buffer => Buffer.from(x.replace(/\s+/g, ''), 'hex');
const MiB = 1024 * 1024;

/** Waits for the router to log `re` since `mark` (its log pipe may trail the socket). */
function logged(mark: number, re: RegExp): Promise<unknown> {
  return waitFor(() => re.test(logSince(r, mark)), 5000, `the router to log ${re}`);
}

test('decoder bomb: a 32-byte SASL connection with an array of 0xffffffff nulls is refused; the router lives', async () => {
  // sasl-init whose mechanism is an array32 of 2^32-1 nulls (0x40 takes no bytes): it used to
  // make the process build a 2^32-1 element array and die out of heap.
  const g = await good('closest/bomb');
  const mark = r.log.length;
  const c = await raw();
  c.send(hex('414d5150030100000000001802010000005341c00b01f000000005ffffffff40'));
  await c.waitClosed(5000);
  assert.equal(c.headers, [3], 'SASL header, then the socket closes');
  assert.not.ok(c.frames.some((f) => f.name === 'sasl-outcome' && f.fields[0] === 0), 'no SASL success');
  await logged(mark, /bad sasl-init: .*zero-width/);
  // The same array inside an open (offered-capabilities): close with amqp:decode-error.
  const d = await raw();
  d.header(0);
  d.performative(D.Open, 0, ['bomb', null, uint(65536), null, null, null, null, new Raw(hex('f0 00000005 ffffffff 40'))]);
  await d.waitClosed(5000);
  assert.is(closeCondition(d), 'amqp:decode-error', d.describe());
  await everyoneElseWorks(r, g);
});

test('strings that are not UTF-8: addresses refused with amqp:invalid-field (q.\\xfe no longer reaches q.\\xff), frames with decode-error', async () => {
  const g = await good('closest/utf8');
  const mark = r.log.length;
  const c = await RawClient.open(port, { session: true });
  clients.push(c);
  const addr = (last: string) => new Raw(hex(`a1 03 712e ${last}`)); // str8 "q.\xNN"
  // Before: both decoded to "q.\ufffd", so a message sent to q.\xfe reached a receiver on q.\xff.
  c.attach(0, { name: 'rx-ff', handle: 0, role: true, source: described(D.Source, [addr('ff')]), target: terminus('target', null) });
  c.attach(0, { name: 'tx-fe', handle: 1, role: false, source: terminus('source', null), target: described(D.Target, [addr('fe')]), initialDeliveryCount: 0 });
  for (const [name, field] of [['rx-ff', 5], ['tx-fe', 6]] as const) {
    const a = await attachReply(c, name);
    assert.is(a.fields[field], null, `${name}: null terminus in the reply`);
    const det = await c.waitForFrame((f) => f.name === 'detach' && f.fields[0] === a.fields[1]);
    assert.is(conditionOf(det.fields[2]), 'amqp:invalid-field', `${name}: ${c.describe()}`);
  }
  c.detach(0, 0);
  c.detach(0, 1);
  // Anonymous relay: a message whose "to" is not UTF-8 is rejected with amqp:invalid-field.
  const since = c.mark;
  const anon = await openSender(c, 0, 2, 'anon', null);
  await waitCredit(c, 0, anon, since);
  const msg = Buffer.concat([encode(described(D.Properties, [null, null, addr('fe')])), textMessage('aliased?')]);
  const id = c.sendMessage(0, 2, msg);
  const disp = await dispositionFor(c, 0, id, since);
  assert.is(codeOf(disp.fields[4]), D.Rejected);
  assert.is(conditionOf(((disp.fields[4] as { value: unknown[] }).value)[0]), 'amqp:invalid-field');
  assert.not.ok(c.frames.some((f) => f.name === 'end' || f.name === 'close'), c.describe());
  await logged(mark, /refusing link rx-ff: .*not valid UTF-8/);
  // Anywhere else in a frame (a link name) it is a decode-error: the connection closes.
  const d = await RawClient.open(port, { session: true });
  clients.push(d);
  d.performative(D.Attach, 0, [new Raw(hex('a1 02 c328')), uint(0), true, null, null, terminus('source', 'x'), null]);
  await d.waitClosed(5000);
  assert.is(closeCondition(d), 'amqp:decode-error', d.describe());
  await everyoneElseWorks(r, g);
});

test('delivery-ids: a gap or a duplicate ends the session with amqp:session:invalid-field; continuations may repeat or omit the id', async () => {
  const g = await good('closest/seq');
  const mark = r.log.length;
  const c = await RawClient.open(port, { session: true });
  clients.push(c);
  await openReceiver(c, 0, 0, 'seq-rx', 'closest/seq-x', 10);
  let since = c.mark;
  const tx = await openSender(c, 0, 1, 'seq-tx', 'closest/seq-x');
  await waitCredit(c, 0, tx, since);
  // One delivery in three frames, the id repeated (Proton, qdrouterd) then omitted (rhea).
  const body = textMessage('x'.repeat(100));
  c.transfer(0, { handle: 1, deliveryId: 0, more: true, payload: body.subarray(0, 40) });
  c.transfer(0, { handle: 1, deliveryId: 0, deliveryTag: null, more: true, payload: body.subarray(40, 80) });
  c.transfer(0, { handle: 1, deliveryId: null, deliveryTag: null, payload: body.subarray(80) });
  const t = await c.waitForFrame((f) => f.name === 'transfer' && f.session === 0);
  assert.equal(t.payload, body, 'reassembled');
  c.disposition(0, { role: true, first: t.fields[1] as number, settled: true, state: ACCEPTED });
  assert.equal((await dispositionFor(c, 0, 0)).raw[4], ACCEPTED);
  // Next must be 1: 3 is a gap.
  since = c.mark;
  c.transfer(0, { handle: 1, deliveryId: 3, payload: textMessage('gap') });
  const end = await c.waitForFrame((f) => f.name === 'end' && f.session === 0, 3000, since);
  assert.is(conditionOf(end.fields[0]), 'amqp:session:invalid-field', c.describe(since));
  assert.not.ok(c.frames.some((f) => f.name === 'close'), 'only the session ends');
  c.end(0);
  // A new session starts its own sequence; a duplicate id ends it too.
  c.begin(1);
  await c.waitForFrame((f) => f.name === 'begin' && f.session === 1);
  await openReceiver(c, 1, 0, 'seq-rx-2', 'closest/seq-y', 10);
  since = c.mark;
  const tx2 = await openSender(c, 1, 1, 'seq-tx-2', 'closest/seq-y');
  await waitCredit(c, 1, tx2, since);
  c.transfer(1, { handle: 1, deliveryId: 7, payload: textMessage('first') });
  c.transfer(1, { handle: 1, deliveryId: 7, payload: textMessage('again') });
  const end2 = await c.waitForFrame((f) => f.name === 'end' && f.session === 1, 3000, since);
  assert.is(conditionOf(end2.fields[0]), 'amqp:session:invalid-field');
  await logged(mark, /sequencing error, expected delivery-id 1, got 3/);
  await logged(mark, /sequencing error, expected delivery-id 8, got 7/);
  await everyoneElseWorks(r, g);
});

/**
 * A raw connection with a receiver on `address` (so its senders get credit) and `senders`
 * sending links (our handles 1..senders); `tx[h]` is the router's handle for our link h.
 */
async function hoarder(address: string, senders: number): Promise<{ c: RawClient; tx: number[] }> {
  const c = await RawClient.open(port, { session: true, maxFrameSize: 65536 });
  clients.push(c);
  await openReceiver(c, 0, 0, `${address}-rx`, address, 10);
  const tx: number[] = [];
  for (let h = 1; h <= senders; h++) {
    const since = c.mark;
    tx[h] = await openSender(c, 0, h, `${address}-tx-${h}`, address);
    await waitCredit(c, 0, tx[h], since);
  }
  return { c, tx };
}

/**
 * Waits until the router has read everything sent so far on link h: a flow with echo=true is
 * answered after what precedes it (or the link was detached meanwhile). Returns the detach, if any.
 */
async function routerCaughtUp(c: RawClient, h: number, routerHandle: number): Promise<Frame | undefined> {
  const since = c.mark;
  c.flow(0, { handle: h, deliveryCount: 1, linkCredit: 0, echo: true });
  // The detach may have come while we were still sending (a detached link echoes nothing).
  const isDetach = (x: Frame) => x.name === 'detach' && x.fields[0] === routerHandle;
  const f = await c.waitForFrame((x) => isDetach(x) || (isLinkFlow(x, 0, routerHandle) && c.frames.indexOf(x) >= since), 30_000);
  return isDetach(f) ? f : undefined;
}

test('unfinished deliveries: one connection holding more than 128 MiB is closed with amqp:resource-limit-exceeded', async () => {
  // raw client: 3 links, each sends 40 MiB of a delivery and never its last frame.
  const g = await good('closest/hoard-good');
  const mark = r.log.length;
  const { c } = await hoarder('closest/hoard', 3);
  await sendIncomplete(c, 0, 1, 0, 40 * MiB);
  await sendIncomplete(c, 0, 2, 1, 40 * MiB);
  await g.roundTrip();
  assert.not.ok(c.frames.some((f) => f.name === 'close'), 'two unfinished 40 MiB deliveries are within the cap');
  await sendIncomplete(c, 0, 3, 2, 40 * MiB);
  const close = await c.waitForFrame((f) => f.name === 'close', 30_000);
  assert.is(conditionOf(close.fields[0]), 'amqp:resource-limit-exceeded', c.describe());
  await logged(mark, /incomplete deliveries on this connection would hold more than 134217728 bytes/);
  await everyoneElseWorks(r, g);
});

test('unfinished deliveries: past 512 MiB for the whole router, the delivery that crosses it is dropped (detach, amqp:resource-limit-exceeded)', async () => {
  // Connections of 2 links x 40 MiB unfinished each (under the 128 MiB per-connection cap) are
  // added until the process-wide budget refuses one: that link is detached, its connection
  // stays. Once the hoarders go, the budget is free again.
  const g = await good('closest/budget-good');
  const mark = r.log.length;
  const hoarders: RawClient[] = [];
  // Hoarders stay within the idle timeout (heartbeats) while they hold their share.
  const stopKeepAlive = keepAlive(hoarders);
  try {
    let sent = 0;
    let refused: { c: RawClient; handle: number } | null = null;
    for (let i = 0; i < 16 && refused === null; i++) {
      const { c, tx } = await hoarder(`closest/budget-${i}`, 2);
      hoarders.push(c);
      for (const h of [1, 2]) {
        await sendIncomplete(c, 0, h, h - 1, 40 * MiB);
        sent += 40 * MiB;
        const det = await routerCaughtUp(c, h, tx[h]);
        if (det) {
          assert.is(conditionOf(det.fields[2]), 'amqp:resource-limit-exceeded', c.describe());
          refused = { c, handle: h };
          break;
        }
      }
    }
    assert.ok(refused !== null, 'the process-wide budget refused a delivery');
    // The budget is 512 MiB of memory held: reached after about that much data (pieces keep
    // their socket chunks alive, so a little less data than 512 MiB can reach it).
    assert.ok(sent > 400 * MiB && sent <= 560 * MiB, `refused after ${sent / MiB} MiB`);
    assert.not.ok(hoarders.some((c) => c.closed || c.frames.some((f) => f.name === 'close')), 'no connection was closed');
    await logged(mark, /incomplete deliveries of all connections would hold more than 536870912 bytes/);
    await g.roundTrip();
    // The hoarders go (all but the refused one); the router frees their share as it sees each close.
    const late = refused.c;
    const gone = r.log.length;
    const others = hoarders.filter((c) => c !== late);
    for (const c of others) c.destroy();
    await waitFor(() => (logSince(r, gone).match(/Connection closed/g) ?? []).length >= others.length, 10_000, 'the hoarders\' connections to close');
    // The budget is back: a new link of the refused connection sends a 4 MiB message in 16 kB frames.
    for (const h of [1, 2]) late.detach(0, h);
    await openReceiver(late, 0, 4, 'budget-again-rx', 'closest/budget-again', 10);
    const since = late.mark;
    const rh = await openSender(late, 0, 3, 'budget-again-tx', 'closest/budget-again');
    await waitCredit(late, 0, rh, since);
    const big = section(D.Data, Buffer.alloc(4 * MiB, 0x62));
    late.sendMessage(0, 3, big, { maxFrameSize: 16384, deliveryId: refused.handle });
    await late.waitForFrame((f) => f.name === 'transfer' && f.session === 0, 20_000, since);
    assert.not.ok(late.frames.slice(since).some((f) => f.name === 'detach' && f.fields[0] === rh), late.describe(since));
  } finally {
    stopKeepAlive();
  }
  await everyoneElseWorks(r, g);
});

test('tear-down: a connection closing with 20,000 links (each holding an unsettled delivery) does not stall the router', async () => {
  //   many (20,000 receivers on closest/many, credit 1 each) --> [router] <-- sender (other connection)
  //   good peer: its own address
  const g = await good('closest/many-good');
  const n = 20_000;
  const many = await RawClient.open(port, { session: true });
  clients.push(many);
  many.batch(() => {
    for (let h = 0; h < n; h++) {
      many.attachReceiver(0, h, `many-${h}`, 'closest/many');
      many.flow(0, { handle: h, deliveryCount: 0, linkCredit: 1 });
    }
  });
  await waitFor(() => many.frames.filter((f) => f.name === 'attach').length >= n, 60_000, 'every attach answered');
  const tx = await RawClient.open(port, { session: true });
  clients.push(tx);
  const rh = await openSender(tx, 0, 0, 'many-tx', 'closest/many');
  await sendWithCredit(tx, 0, 0, rh, n, (i) => textMessage(`m${i}`));
  await waitFor(() => many.frames.filter((f) => f.name === 'transfer').length >= n, 60_000, 'every receiver holding one unsettled delivery');
  // Close: every link goes, every unsettled delivery becomes modified(delivery-failed) for the
  // sender. The good peer and the sender keep getting service.
  const mark = many.mark;
  many.close();
  await many.waitForFrame((f) => f.name === 'close', 30_000, mark);
  await g.roundTrip();
  await waitFor(() => tx.frames.filter((f) => f.name === 'disposition').reduce((k, f) => k + ((f.fields[2] as number ?? f.fields[1]) - (f.fields[1] as number) + 1), 0) >= n, 30_000, 'the sender told of every lost delivery');
  await everyoneElseWorks(r, g);
});

test.run();
