// Credit: a sender gets credit only while its address has a consumer (qdrouterd semantics).
//
//   raw sender --> [router R1] --> raw receiver
//                  listener 0: defaults (linkCapacity 250)
//                  listener 1: linkCapacity 10
//                  address closed: distribution unavailable
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { D } from '../../amqp/performatives';
import { RawClient, codeOf, conditionOf, section, terminus } from '../support/raw-client';
import { RunningRouter, startRouter, standaloneConfig } from '../support/router';
import { RELEASED, attachReply, dispositionFor, isLinkFlow, openReceiver, openSender, textMessage, waitCredit } from './helpers';

let r: RunningRouter;
let port: number, smallCapacityPort: number;
const clients: RawClient[] = [];

test.before(async () => {
  r = await startRouter(standaloneConfig('listener {\n    host: 127.0.0.1\n    port: 0\n    linkCapacity: 10\n}\naddress {\n    prefix: closed\n    distribution: unavailable\n}\n'), { listeners: 2 });
  [port, smallCapacityPort] = r.ports;
});

test.after.each(() => {
  for (const c of clients.splice(0)) c.destroy();
});

test.after(async () => {
  if (r) await r.stop();
});

async function client(p = port): Promise<RawClient> {
  const c = await RawClient.open(p, { session: true });
  clients.push(c);
  return c;
}

/** none -> linkCapacity -> kept, then drained by a delivery that finds no consumer, for a sender connected to `txPort`. */
async function creditFollowsConsumer(txPort: number, capacity: number, address: string): Promise<void> {
  const tx = await client(txPort);
  const txHandle = await openSender(tx, 0, 0, 'tx', address);
  // No consumer: no credit.
  await tx.expectNoFrame((f) => isLinkFlow(f, 0, txHandle) && (f.fields[6] as number) > 0, 300);

  // A receiver attaches and issues credit: the sender gets its link capacity.
  const rx = await client();
  const since = tx.mark;
  await openReceiver(rx, 0, 0, 'rx', address, 5);
  const credit = await waitCredit(tx, 0, txHandle, since);
  assert.is(credit.fields[6], capacity, `link-credit = linkCapacity: ${tx.describe(since)}`);
  assert.is(credit.fields[5], 0, 'delivery-count is still the initial one');

  // The receiver detaches: the sender keeps its credit (qdrouterd's) ...
  const before = tx.mark;
  rx.detach(0, 0, true);
  await rx.waitForFrame((f) => f.name === 'detach');
  await tx.expectNoFrame((f) => isLinkFlow(f, 0, txHandle), 200, before);
  // ... until a message finds no consumer: released, and a flow asks the sender to drain the rest.
  const id = tx.sendMessage(0, 0, textMessage('nobody home'));
  const released = await tx.waitForFrame((f) => f.name === 'disposition' && f.fields[1] === id, 3000, before);
  assert.equal(released.raw[4], RELEASED);
  const drain = await tx.waitForFrame((f) => isLinkFlow(f, 0, txHandle) && f.fields[8] === true, 3000, before);
  assert.equal([drain.fields[5], drain.fields[6]], [1, capacity - 1], 'drain=true, the credit it holds');

  // A consumer again: credit again.
  const again = tx.mark;
  await openReceiver(rx, 0, 1, 'rx2', address, 5);
  const renewed = await waitCredit(tx, 0, txHandle, again);
  assert.is(renewed.fields[6], capacity);
}

test('a sender gets no credit without a consumer, linkCapacity (250) with one; a delivery that finds none drains it', async () => {
  await creditFollowsConsumer(port, 250, 'closest/credit.default');
});

test('linkCapacity 10 on the sender\'s listener: credit 10', async () => {
  await creditFollowsConsumer(smallCapacityPort, 10, 'closest/credit.small');
});

test('credit comes back as deliveries leave the router', async () => {
  const address = 'closest/credit.refill';
  const rx = await client();
  const rxHandle = await openReceiver(rx, 0, 0, 'rx', address, 100);
  const tx = await client(smallCapacityPort);
  const txHandle = await openSender(tx, 0, 0, 'tx', address);
  await waitCredit(tx, 0, txHandle);
  for (let i = 0; i < 10; i++) tx.sendMessage(0, 0, textMessage(`m${i}`), { settled: true });
  await rx.waitForFrames((f) => f.name === 'transfer' && f.fields[0] === rxHandle, 10);
  // 10 used of 10: the router must have topped the sender up again.
  await tx.waitForFrame((f) => isLinkFlow(f, 0, txHandle) && (f.fields[5] as number) + (f.fields[6] as number) > 10);
});

test('a transfer after the last consumer left is released; the sender\'s link survives', async () => {
  // qdrouterd keeps the sender's credit when the consumer goes: the transfer is routed like any
  // to an address without consumers (released, then drain), never a reason to detach the link.
  const address = 'closest/credit.inflight';
  const rx = await client();
  await openReceiver(rx, 0, 0, 'rx', address, 10);
  const tx = await client();
  const txHandle = await openSender(tx, 0, 0, 'tx', address);
  await waitCredit(tx, 0, txHandle);
  const since = tx.mark;
  rx.detach(0, 0, true);
  await rx.waitForFrame((f) => f.name === 'detach');
  // The router has now processed the detach (and written the revoking flow); this transfer was
  // "sent" before our client read that flow.
  const id = tx.sendMessage(0, 0, textMessage('in flight'));
  const d = await tx.waitForFrame((f) => (f.name === 'disposition' && f.fields[1] === id) || (f.name === 'detach' && f.fields[0] === txHandle), 3000, since);
  assert.ok(d.name === 'disposition', `the sender's link was detached: ${tx.describe(since)}`);
  assert.equal(d.raw[4], RELEASED, tx.describe(since));
});

test('flows count from the sender\'s initial-delivery-count, wrapping at 2^32', async () => {
  const address = 'closest/credit.wrap';
  const rx = await client();
  const rxHandle = await openReceiver(rx, 0, 0, 'rx', address, 100);
  const tx = await client(smallCapacityPort);
  tx.attachSender(0, 0, 'tx-wrap', address, { initialDeliveryCount: 0xfffffffe });
  const a = await attachReply(tx, 'tx-wrap');
  const txHandle = a.fields[1] as number;
  const first = await waitCredit(tx, 0, txHandle);
  assert.is(first.fields[5], 0xfffffffe, 'delivery-count starts at the sender\'s initial-delivery-count');
  assert.is(first.fields[6], 10);
  const since = tx.mark;
  for (let i = 0; i < 10; i++) tx.sendMessage(0, 0, textMessage(`w${i}`), { settled: true });
  await rx.waitForFrames((f) => f.name === 'transfer' && f.fields[0] === rxHandle, 10);
  // Whatever the top-up flow says, delivery-limit = delivery-count + link-credit must be past the 10 sent.
  const refill = await tx.waitForFrame((f) => isLinkFlow(f, 0, txHandle) && ((((f.fields[5] as number) + (f.fields[6] as number)) >>> 0) - ((0xfffffffe + 10) >>> 0) | 0) > 0, 3000, since);
  const dc = refill.fields[5] as number;
  assert.ok(dc <= 8 || dc >= 0xfffffffe, `delivery-count ${dc} wrapped (RFC 1982)`);
});

test('the session incoming-window is honoured, also inside a multi-frame delivery', async () => {
  // AMQP 1.0 2.5.6: a sender must not send a transfer frame when the remote incoming-window is 0.
  const address = 'closest/credit.window';
  const rx = await RawClient.open(port, { maxFrameSize: 1024 });
  clients.push(rx);
  rx.begin(0, { incomingWindow: 2 });
  await rx.waitForFrame((f) => f.name === 'begin');
  const rxHandle = await openReceiver(rx, 0, 0, 'rx', address, 10);
  // openReceiver's link flow restated a wide window; narrow it again: next-incoming-id 0, window 2.
  rx.flow(0, { incomingWindow: 2 });
  const tx = await client();
  const txHandle = await openSender(tx, 0, 0, 'tx', address);
  await waitCredit(tx, 0, txHandle);
  const big = Buffer.concat([section(D.Data, Buffer.alloc(10_000, 7))]);
  tx.sendMessage(0, 0, big);
  await rx.waitForFrame((f) => f.name === 'transfer');
  await rx.expectNoFrame((f) => f.name === 'transfer' && rx.frames.filter((x) => x.name === 'transfer').indexOf(f) >= 2, 200)
    .catch((e: Error) => assert.unreachable(`more transfer frames than the incoming-window of 2 allows: ${rx.frames.filter((x) => x.name === 'transfer').length} frames (${e.message})`));
  // Opening the window lets the rest through, intact.
  rx.flow(0, { incomingWindow: 1000 });
  const last = await rx.waitForFrame((f) => f.name === 'transfer' && f.fields[5] !== true);
  const frames = rx.frames.slice(0, rx.frames.indexOf(last) + 1).filter((f) => f.name === 'transfer' && f.fields[0] === rxHandle);
  assert.equal(Buffer.concat(frames.map((f) => f.payload)), big);
});

test('drain on an idle address: flow back with drain=true, link-credit 0, delivery-count + 5', async () => {
  const rx = await client();
  rx.attachReceiver(0, 0, 'drainer', 'closest/credit.idle');
  const a = await attachReply(rx, 'drainer');
  assert.is(a.fields[9], 0, 'router\'s initial-delivery-count');
  const since = rx.mark;
  rx.flow(0, { handle: 0, deliveryCount: 0, linkCredit: 5, drain: true });
  const f = await rx.waitForFrame((x) => isLinkFlow(x, 0, a.fields[1] as number), 3000, since);
  assert.is(f.fields[8], true, 'drain echoed');
  assert.is(f.fields[6], 0, 'link-credit 0');
  assert.is(f.fields[5], 5, 'delivery-count advanced by the unused credit');
});

test('drain with two messages waiting: two transfers, then the drained flow', async () => {
  const address = 'closest/credit.drain2';
  const rx = await client();
  const rxHandle = await openReceiver(rx, 0, 0, 'drainer2', address, 0);
  const tx = await client();
  const txHandle = await openSender(tx, 0, 0, 'tx', address);
  await waitCredit(tx, 0, txHandle);
  tx.sendMessage(0, 0, textMessage('one'));
  tx.sendMessage(0, 0, textMessage('two'));
  // The receiver has given no credit: nothing may arrive.
  await rx.expectNoFrame((f) => f.name === 'transfer', 100);
  const since = rx.mark;
  rx.flow(0, { handle: 0, deliveryCount: 0, linkCredit: 5, drain: true });
  const f = await rx.waitForFrame((x) => isLinkFlow(x, 0, rxHandle) && x.fields[8] === true, 3000, since);
  const transfers = rx.frames.slice(since).filter((x) => x.name === 'transfer');
  assert.is(transfers.length, 2, rx.describe(since));
  assert.ok(rx.frames.indexOf(transfers[1]) < rx.frames.indexOf(f), 'the drained flow comes after the transfers');
  assert.is(f.fields[6], 0);
  assert.is(f.fields[5], 5, 'delivery-count: 2 sent + 3 drained');
});

test('anonymous relay: credit at once; no route -> released; no "to" -> rejected; routed by "to"', async () => {
  const tx = await client();
  // Target with a null address (the usual anonymous-relay form) and a null target.
  const anon = await openSender(tx, 0, 0, 'anon', terminus('target', null));
  await waitCredit(tx, 0, anon);
  tx.attach(0, { name: 'anon-null-target', handle: 1, role: false, source: terminus('source', 'x'), target: null });
  const a2 = await attachReply(tx, 'anon-null-target');
  await waitCredit(tx, 0, a2.fields[1] as number);

  const to = (addr: string) => section(D.Properties, [null, null, addr]);
  // No consumer for `to`: released.
  let since = tx.mark;
  let id = tx.sendMessage(0, 0, Buffer.concat([to('closest/credit.nobody'), textMessage('lost')]));
  let d = await dispositionFor(tx, 0, id, since);
  assert.equal(d.raw[4], RELEASED, tx.describe(since));
  assert.is(d.fields[3], true, 'settled');

  // No `to` at all: rejected (amqp:invalid-field).
  since = tx.mark;
  id = tx.sendMessage(0, 0, textMessage('where to?'));
  d = await dispositionFor(tx, 0, id, since);
  assert.is(codeOf(d.fields[4]), D.Rejected, tx.describe(since));
  const err = ((d.fields[4] as { value: unknown[] }).value)[0];
  assert.is(conditionOf(err), 'amqp:invalid-field');

  // `to` with a consumer: delivered.
  const rx = await client();
  const rxHandle = await openReceiver(rx, 0, 0, 'anon-rx', 'closest/credit.anon-target', 10);
  const msg = Buffer.concat([to('closest/credit.anon-target'), textMessage('found')]);
  tx.sendMessage(0, 1, msg, { settled: true });
  const t = await rx.waitForFrame((f) => f.name === 'transfer' && f.fields[0] === rxHandle);
  assert.equal(t.payload, msg);
});

test('unavailable address (qdrouterd 1.19): attaches refused with amqp:not-found "Node not found"; anonymous deliveries rejected', async () => {
  const c = await client();
  const cases: { name: string; receiver: boolean }[] = [
    { name: 'rx-closed', receiver: true },
    { name: 'tx-closed', receiver: false },
  ];
  let handle = 0;
  for (const k of cases) {
    const since = c.mark;
    const h = handle++;
    if (k.receiver) c.attachReceiver(0, h, k.name, 'closed/q');
    else c.attachSender(0, h, k.name, 'closed.q');
    const a = await attachReply(c, k.name);
    const d = await c.waitForFrame((f) => f.name === 'detach' && f.fields[0] === a.fields[1], 3000, since);
    assert.is(d.fields[1], true, `${k.name}: detach closed`);
    assert.is(conditionOf(d.fields[2]), 'amqp:not-found', `${k.name}: ${c.describe(since)}`);
    assert.is(((d.fields[2] as { value: unknown[] }).value)[1], 'Node not found');
    c.detach(0, h, true);
  }
  // An anonymous sender keeps its credit; its delivery to the unavailable address is rejected.
  const anon = await openSender(c, 0, 5, 'anon-closed', terminus('target', null));
  await waitCredit(c, 0, anon);
  const since = c.mark;
  const id = c.sendMessage(0, 5, Buffer.concat([section(D.Properties, [null, null, 'closed.q']), textMessage('nope')]));
  const d = await dispositionFor(c, 0, id, since);
  assert.is(codeOf(d.fields[4]), D.Rejected, c.describe(since));
  const err = ((d.fields[4] as { value: unknown[] }).value)[0];
  assert.is(conditionOf(err), 'amqp:not-found');
  assert.is((err as { value: unknown[] }).value[1], 'Deliveries cannot be sent to an unavailable address');
  assert.is(d.fields[3], true, 'settled');
  // The rest of the router is unaffected.
  const rxHandle = await openReceiver(c, 0, 6, 'rx-open', 'closest/credit.after-closed', 10);
  const msg = Buffer.concat([section(D.Properties, [null, null, 'closest/credit.after-closed']), textMessage('found')]);
  c.sendMessage(0, 5, msg, { settled: true });
  const t = await c.waitForFrame((f) => f.name === 'transfer' && f.fields[0] === rxHandle);
  assert.equal(t.payload, msg);
});

test.run();
