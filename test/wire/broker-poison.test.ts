// Poison messages: a message whose application-properties section is malformed must never take
// the broker down, neither when it arrives nor when a selector consumer reaches it, nor after a
// restart on the same dataDir (the message is durable).
//
//   replayed client (the exact frames of a session that killed the broker) --> [broker B1] (dataDir D)
//   well-behaved client: selector consumer + sender on the same queue     --> [broker B1] restarted on D
//
//   journal in D written through the store API (a malformed message in a queue, as an older
//   version could have stored it) --> [broker B1] starts on D --> selector consumer; DLQ consumer
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { D } from '../../amqp/performatives';
import { Writer } from '../../amqp/codec';
import { JournalStore } from '../../broker/store/journal';
import { RawClient, Frame, codeOf, conditionOf, described, terminus } from '../support/raw-client';
import { RunningBroker, brokerConfig, startBroker, tempDir } from '../support/broker';
import { ACCEPTED, attachReply, dispositionFor, openReceiver, openSender, waitCredit } from './helpers';

const QUEUE = 'fz.sel.11000039';
const SELECTOR = "k = 'v'";
const SELECTOR_FILTER = 0x0000468c00000004;

/**
 * The client side of the session, frame by frame (hex, in order): AMQP header, open, begin,
 * attach sender "snd" (handle 1) to fz.sel.11000039, transfer delivery 0 whose
 * application-properties map holds key "k" and a value with the invalid format code 0xff,
 * attach receiver "rcv" (handle 0) with the selector k = 'v', flow 10 credits on handle 0.
 */
const POISON_SESSION = [
  '414d515000010000',
  '0000001b02000000005310c00e04a102667a4070000040006000ff',
  '0000001a02000000005311c00d04404370000008007000000800',
  '0000004602000000005312c03907a103736e645201424040005328c01201a10f667a2e73656c2e3131303030303339005329c01201a10f667a2e73656c2e3131303030303339',
  '0000002c02000000005314c00905520143a001784342005374d10000000800000002a1016bff005375a00178',
  '0000006f02000000005312c06207a10372637643414040005328c03c08a10f667a2e73656c2e3131303030303339404040404040c12202a30c6a6d732d73656c6563746f7200800000468c00000004a1076b203d20277627005329c01201a10f667a2e73656c2e3131303030303339',
  '0000001f02000000005313c01207437000000800520170000008004343520a',
].map((h) => Buffer.from(h, 'hex'));

/** The replayed transfer's message: application-properties { "k": <0xff> }, data "x". */
const POISON_MESSAGE = Buffer.from('005374d10000000800000002a1016bff005375a00178', 'hex');

const brokers: RunningBroker[] = [];
const clients: RawClient[] = [];

test.after.each(async () => {
  for (const c of clients.splice(0)) c.destroy();
  for (const b of brokers.splice(0)) if (b.exitCode === undefined) await b.stop();
});

async function broker(dataDir: string): Promise<RunningBroker> {
  const b = await startBroker(brokerConfig(dataDir));
  brokers.push(b);
  return b;
}

async function stop(b: RunningBroker): Promise<void> {
  assert.is(await b.stop(), 0, `the broker exits cleanly:\n${b.log.join('\n')}`);
}

async function client(b: RunningBroker): Promise<RawClient> {
  const c = await RawClient.open(b.port, { session: true, containerId: 'good' });
  clients.push(c);
  return c;
}

function alive(b: RunningBroker): void {
  assert.is(b.exitCode, undefined, `the broker is still running:\n${b.log.join('\n')}`);
}

/** The rejected outcome's error condition in a disposition's state, or null. */
function rejectedCondition(state: unknown): string | null {
  if (codeOf(state) !== D.Rejected) return null;
  return conditionOf((state as { value: unknown[] }).value[0]);
}

/** A durable message: header, application-properties { k }, amqp-value `body`. */
function message(body: string, k: string): Buffer {
  const w = new Writer(128);
  w.descriptor(D.Header);
  const h = w.beginList();
  w.boolean(true);
  w.endList(h, 1);
  w.descriptor(D.ApplicationProperties);
  w.value({ k });
  w.descriptor(D.AmqpValue);
  w.string(body);
  return w.take();
}

/** Attaches a receiver with a JMS selector and grants it credit; returns the broker's handle. */
async function selectorReceiver(c: RawClient, handle: number, name: string, address: string, selector: string, credit: number): Promise<number> {
  const src = described(D.Source, [address, null, null, null, null, null, null, { 'jms-selector': described(SELECTOR_FILTER, selector) }]);
  c.attach(0, { name, handle, role: true, source: src, target: terminus('target', null) });
  const a = await attachReply(c, name);
  assert.ok(a.fields[5] !== null, `the selector receiver ${name} is attached`);
  c.flow(0, { handle, deliveryCount: 0, linkCredit: credit });
  return a.fields[1] as number;
}

/** Waits for a transfer on our link `handle` (from frame index `since`). */
function transferOn(c: RawClient, handle: number, since: number, timeoutMs = 3000): Promise<Frame> {
  return c.waitForFrame((f) => f.name === 'transfer' && f.fields[0] === handle, timeoutMs, since);
}

/** Accepts a delivery we received. */
function accept(c: RawClient, t: Frame): void {
  c.disposition(0, { role: true, first: t.fields[1] as number, settled: true, state: ACCEPTED });
}

/**
 * The well-behaved client: a selector consumer on QUEUE gets the matching message and not the
 * other; a plain consumer then finds exactly the other one at the head (FIFO), so nothing else
 * (no poison message) is stored in front of it.
 */
async function wellBehavedClientWorks(b: RunningBroker, tag: string): Promise<void> {
  const c = await client(b);
  const rx = await selectorReceiver(c, 0, `rcv-${tag}`, QUEUE, SELECTOR, 10);
  let since = c.mark;
  const tx = await openSender(c, 0, 1, `snd-${tag}`, QUEUE);
  await waitCredit(c, 0, tx, since);
  const miss = message(`${tag}: not selected`, 'w');
  const hit = message(`${tag}: selected`, 'v');
  since = c.mark;
  const id1 = c.sendMessage(0, 1, miss);
  const id2 = c.sendMessage(0, 1, hit);
  assert.is(codeOf((await dispositionFor(c, 0, id1, since)).fields[4]), D.Accepted);
  assert.is(codeOf((await dispositionFor(c, 0, id2, since)).fields[4]), D.Accepted);
  const t = await transferOn(c, rx, since);
  assert.equal(t.payload, hit, 'the selector consumer gets the matching message');
  accept(c, t);
  c.detach(0, 0);
  await c.waitForFrame((f) => f.name === 'detach' && f.fields[0] === rx, 3000, since);
  since = c.mark;
  const plain = await openReceiver(c, 0, 2, `plain-${tag}`, QUEUE, 10);
  const t2 = await transferOn(c, plain, since);
  assert.equal(t2.payload, miss, 'the queue holds the unselected message at its head, nothing before it');
  accept(c, t2);
  alive(b);
}

test('the replayed poison session: the transfer is rejected with amqp:decode-error, nothing is stored, the broker stays up and serves a selector consumer after a restart', async () => {
  const dataDir = tempDir();
  const b = await broker(dataDir);
  const c = await RawClient.connect(b.port);
  clients.push(c);
  for (const frame of POISON_SESSION) c.send(frame);
  const d = await dispositionFor(c, 0, 0);
  assert.is(rejectedCondition(d.fields[4]), 'amqp:decode-error', `the transfer is rejected: ${c.describe()}`);
  // The selector receiver is attached with credit. A drain makes the broker dispatch to it and
  // answer once it has: nothing reached it, and the broker lives.
  const rcv = (await attachReply(c, 'rcv')).fields[1] as number;
  const since = c.mark;
  c.flow(0, { nextOutgoingId: 1, handle: 0, deliveryCount: 0, linkCredit: 10, drain: true });
  await c.waitForFrame((f) => f.name === 'flow' && f.fields[4] === rcv && f.fields[8] === true, 3000, since);
  alive(b);
  assert.not.ok(c.frames.some((f) => f.name === 'transfer'), 'the selector consumer got nothing');
  await wellBehavedClientWorks(b, 'first');
  c.destroy();
  await stop(b);
  const b2 = await broker(dataDir);
  await wellBehavedClientWorks(b2, 'after restart');
  await stop(b2);
});

test('a malformed message already in the journal: the broker starts, a selector consumer skips it, it ends in the DLQ, and it stays there across a restart', async () => {
  const dataDir = tempDir();
  // A message whose header list is malformed (the broker cannot read even its header).
  const badHeader = Buffer.from('005370c0030170ff005377a10162', 'hex');
  const store = new JournalStore(dataDir);
  store.recover();
  store.createQueue(QUEUE, { address: QUEUE, multicast: false, filter: null, shared: false });
  store.addMessage(1, POISON_MESSAGE);
  store.addRef(QUEUE, 1);
  store.addMessage(2, badHeader);
  store.addRef(QUEUE, 2);
  await new Promise<void>((resolve, reject) => store.sync((e) => (e ? reject(e) : resolve())));
  await store.close();

  const b = await broker(dataDir);
  alive(b);
  await wellBehavedClientWorks(b, 'over a poisoned journal');
  // Both malformed messages are in the DLQ, byte for byte, in order.
  const c = await client(b);
  let since = c.mark;
  const dlq = await openReceiver(c, 0, 5, 'dlq', 'DLQ', 1);
  const first = await transferOn(c, dlq, since);
  assert.equal(first.payload, POISON_MESSAGE, 'the poison message is in the DLQ');
  // Released: it stays in the DLQ (a restart must find it there again).
  c.disposition(0, { role: true, first: first.fields[1] as number, settled: true, state: Buffer.from([0x00, 0x53, 0x26, 0x45]) });
  c.detach(0, 5);
  await c.waitForFrame((f) => f.name === 'detach' && f.fields[0] === dlq, 3000, since);
  alive(b);
  await stop(b);

  const b2 = await broker(dataDir);
  await wellBehavedClientWorks(b2, 'restarted over a poisoned journal');
  const c2 = await client(b2);
  // A selector consumer on the DLQ itself skips them (they never match); a plain one gets both.
  since = c2.mark;
  await selectorReceiver(c2, 0, 'dlq-sel', 'DLQ', SELECTOR, 10);
  const plain = await openReceiver(c2, 0, 1, 'dlq-plain', 'DLQ', 10);
  const got = await c2.waitForFrames((f) => f.name === 'transfer' && f.fields[0] === plain, 2, 3000, since);
  assert.equal(got.map((f) => f.payload), [POISON_MESSAGE, badHeader], 'both stay in the DLQ across the restart');
  alive(b2);
  await stop(b2);
});

test('sections whose 32-bit sizes cannot hold their counts (header list, annotations map, application-properties map) are rejected with amqp:decode-error; the broker stays up', async () => {
  const b = await broker(tempDir());
  const c = await client(b);
  const h = await openSender(c, 0, 0, 'sizes', QUEUE);
  await waitCredit(c, 0, h);
  for (const hex of ['005370d000000000', '005372d100000000', '005374d100000000', '005374d10000000800000002a1016bff005375a00178']) {
    const id = c.sendMessage(0, 0, Buffer.from(hex, 'hex'));
    const d = await dispositionFor(c, 0, id);
    assert.is(rejectedCondition(d.fields[4]), 'amqp:decode-error', `${hex}: ${c.describe()}`);
  }
  alive(b);
  await wellBehavedClientWorks(b, 'after bad sizes');
  await stop(b);
});

test.run();
