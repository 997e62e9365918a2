// What a link route relays, frame by frame, between a client and a route container (qdrouterd's
// behaviour, found by its own system tests): delivery tags, the refusals of what cannot be
// relayed, the detach handshake, dynamic termini, link names, and sessions the container ends.
//
//   raw client "client1" ──(listener 0, normal)──> R1 <──(listener 1 "services", route-container)── raw service "svc1"
//                                                    linkRoute prefix svc, connection services, in and out
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Described, Sym } from '../../amqp/codec';
import { D } from '../../amqp/performatives';
import { Frame, RawClient, codeOf, conditionOf, described, terminus, uint } from '../support/raw-client';
import { RunningRouter, startRouter, standaloneConfig } from '../support/router';
import { waitFor } from '../support/wait';
import { attachReply, dispositionFor, textMessage, waitCredit } from './helpers';

let r: RunningRouter;
const clients: RawClient[] = [];

test.before(async () => {
  r = await startRouter(standaloneConfig(
    'listener {\n    name: services\n    host: 127.0.0.1\n    port: 0\n    role: route-container\n}\n' +
    'linkRoute {\n    prefix: svc\n    connection: services\n    direction: in\n}\n' +
    'linkRoute {\n    prefix: svc\n    connection: services\n    direction: out\n}\n',
  ), { listeners: 2 });
});

test.after.each(() => {
  for (const c of clients.splice(0)) c.destroy();
});

test.after(async () => {
  if (r) await r.stop();
});

/** The service connected on the route-container listener, once the router uses it. */
async function service(): Promise<RawClient> {
  const mark = r.log.length;
  const svc = await RawClient.open(r.ports[1], { session: true, containerId: 'svc1' });
  clients.push(svc);
  await waitFor(() => r.log.slice(mark).some((l) => /route-container listener services: active/.test(l)), 5000, 'the service connection active');
  return svc;
}

async function client(): Promise<RawClient> {
  const c = await RawClient.open(r.ports[0], { session: true, containerId: 'client1' });
  clients.push(c);
  return c;
}

/**
 * The attach the router relays to the service for link `name`, on a session the router begins;
 * the service answers that begin (once) on a channel of its own, returned as `ch`.
 */
async function relayed(svc: RawClient, name: string, since = 0): Promise<{ attach: Frame; ch: number }> {
  const attach = await svc.waitForFrame((f) => f.name === 'attach' && f.fields[0] === name, 3000, since);
  const answered = answeredBegins.get(svc) ?? new Map<number, number>();
  answeredBegins.set(svc, answered);
  let ch = answered.get(attach.channel);
  if (ch === undefined) {
    ch = answered.size + 1;
    svc.answerBegin(ch, attach.channel);
    answered.set(attach.channel, ch);
  }
  return { attach, ch };
}
/** Per service: the router's session channels it answered → its own channel for each. */
const answeredBegins = new Map<RawClient, Map<number, number>>();

/** The error condition inside a rejected delivery-state. */
function rejectedCondition(state: unknown): string | null {
  return state instanceof Described && Array.isArray(state.value) ? conditionOf((state.value as unknown[])[0]) : null;
}

test('delivery tags pass unchanged; a tag over 32 bytes and an empty message are rejected, not relayed', async () => {
  const svc = await service();
  const c = await client();
  c.attachSender(0, 0, 'tx', 'svc.tags');
  // qdrouterd's disambiguation: the link goes on as NAME@CLIENT-CONTAINER-ID.
  const { attach: down, ch } = await relayed(svc, 'tx@client1');
  assert.is(down.fields[2], false, 'the router sends on it');
  svc.attach(ch, { name: 'tx@client1', handle: 0, role: true, source: terminus('source', 'tx'), target: terminus('target', 'svc.tags') });
  svc.flow(ch, { handle: 0, linkCredit: 10 });
  const up = await attachReply(c, 'tx');
  await waitCredit(c, 0, up.fields[1] as number);

  c.transfer(0, { handle: 0, deliveryTag: Buffer.from('client-tag-1'), payload: textMessage('one') });
  const t = await svc.waitForFrame((f) => f.name === 'transfer');
  assert.equal(t.fields[2], Buffer.from('client-tag-1'), 'the client\'s own tag');

  const since = c.mark;
  const long = c.transfer(0, { handle: 0, deliveryTag: Buffer.alloc(33, 0x58), payload: textMessage('two') }) as number;
  const d1 = await dispositionFor(c, 0, long, since);
  assert.is(codeOf(d1.fields[4]), 0x25, 'rejected');
  assert.is(rejectedCondition(d1.fields[4]), 'amqp:invalid-field');
  const empty = c.transfer(0, { handle: 0, deliveryTag: Buffer.from('e'), payload: Buffer.alloc(0) }) as number;
  const d2 = await dispositionFor(c, 0, empty, since);
  assert.is(rejectedCondition(d2.fields[4]), 'amqp:decode-error');
  // Refused deliveries give their credit back: the next one still goes.
  c.transfer(0, { handle: 0, deliveryTag: Buffer.from('client-tag-4'), payload: textMessage('four') });
  const t4 = await svc.waitForFrame((f) => f.name === 'transfer' && f !== t);
  assert.equal(t4.fields[2], Buffer.from('client-tag-4'), 'only the good deliveries reached the service');
});

test('a detach without close is answered only once the far end answers, with its closed flag', async () => {
  const svc = await service();
  const c = await client();
  c.attachReceiver(0, 1, 'rx', 'svc.detach');
  const { attach: down, ch } = await relayed(svc, 'rx@client1');
  svc.attach(ch, { name: 'rx@client1', handle: 1, role: false, source: terminus('source', 'svc.detach'), target: terminus('target', 'rx'), initialDeliveryCount: 0 });
  await attachReply(c, 'rx');
  const mark = c.mark;
  const svcMark = svc.mark;
  c.detach(0, 1, false);
  const toService = await svc.waitForFrame((f) => f.name === 'detach' && f.fields[0] === down.fields[1], 3000, svcMark);
  assert.is(toService.fields[1], false, 'relayed as the client sent it: not closed');
  await c.expectNoFrame((f) => f.name === 'detach', 200, mark);
  svc.detach(ch, 1, true);
  const answer = await c.waitForFrame((f) => f.name === 'detach', 3000, mark);
  assert.is(answer.fields[1], true, 'the service closed the link, so the client learns it is closed');
});

test('a dynamic receiver with x-opt-qd.address is link-routed; the container names its node', async () => {
  const svc = await service();
  const c = await client();
  const props = new Map([[new Sym('x-opt-qd.address'), 'svc.dynamic']]);
  c.attachReceiver(0, 2, 'dyn', described(D.Source, [null, uint(0), null, null, true, props]));
  const { attach: down, ch } = await relayed(svc, 'dyn@client1');
  const source = down.fields[5] as Described;
  assert.is((source.value as unknown[])[4], true, 'the service is asked for a dynamic node');
  svc.attach(ch, { name: 'dyn@client1', handle: 2, role: false, source: terminus('source', 'svc.node-17'), target: terminus('target', 'dyn'), initialDeliveryCount: 0 });
  const up = await attachReply(c, 'dyn');
  assert.is(((up.fields[5] as Described).value as unknown[])[0], 'svc.node-17');
});

test('an attach from the route container itself is routed to it too (as qdrouterd does)', async () => {
  const svc = await service();
  svc.attachReceiver(0, 3, 'loop', 'svc.loop');
  const { attach: back } = await relayed(svc, 'loop@svc1');
  assert.is(back.fields[2], true, 'the router receives on the routed twin');
});

test('after the container ends the session the router used, the next routed link begins a new one', async () => {
  const svc = await service();
  const c = await client();
  c.attachSender(0, 4, 'first', 'svc.s1');
  const { attach: down, ch } = await relayed(svc, 'first@client1');
  svc.attach(ch, { name: 'first@client1', handle: 4, role: true, source: terminus('source', 'first'), target: terminus('target', 'svc.s1') });
  await attachReply(c, 'first');
  const mark = svc.mark;
  svc.end(ch);
  await svc.waitForFrame((f) => f.name === 'end' && f.channel === down.channel, 3000, mark);
  c.attachSender(0, 5, 'second', 'svc.s2');
  const begin = await svc.waitForFrame((f) => f.name === 'begin' && f.fields[0] === null, 3000, mark);
  const again = await svc.waitForFrame((f) => f.name === 'attach' && f.fields[0] === 'second@client1', 3000, mark);
  assert.is(again.channel, begin.channel, 'on the session the router began anew');
  assert.ok(svc.frames.indexOf(begin) < svc.frames.indexOf(again), 'begun before the attach');
});

test.run();
