// Bad input to the broker, frame by frame: each refusal names its AMQP condition and the
// connection (and everyone else) carries on.
//
//   raw client ----------\
//                         >--> [broker B1]
//   good peer (rx + tx) -/     (the hostile-input tests: a well-behaved client on another
//                               connection keeps its round trips going)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { D } from '../../amqp/performatives';
import { Raw, RawClient, codeOf, conditionOf, described, encode, section, terminus, sym } from '../support/raw-client';
import { RunningBroker, brokerConfig, startBroker, tempDir } from '../support/broker';
import { waitFor } from '../support/wait';
import {
  GoodPeer, attachReply, dispositionFor, openReceiver, openSender, sendIncomplete, sendWithCredit, textMessage, waitCredit,
} from './helpers';

let b: RunningBroker;
const clients: RawClient[] = [];

test.before(async () => {
  b = await startBroker(brokerConfig(tempDir()));
});

const peers: GoodPeer[] = [];

test.after.each(() => {
  for (const c of clients.splice(0)) c.destroy();
  for (const p of peers.splice(0)) p.close();
});

test.after(async () => {
  if (b) assert.is(await b.stop(), 0);
});

async function client(): Promise<RawClient> {
  const c = await RawClient.open(b.port, { session: true, containerId: 'raw' });
  clients.push(c);
  return c;
}

/** The rejected outcome's error condition in a disposition, or null. */
function rejectedCondition(state: unknown): string | null {
  if (codeOf(state) !== D.Rejected) return null;
  const fields = (state as { value: unknown[] }).value;
  return conditionOf(fields[0]);
}

test('a message with malformed sections is rejected with amqp:decode-error; the link goes on', async () => {
  const c = await client();
  const h = await openSender(c, 0, 0, 'tx', 'bad.q');
  await waitCredit(c, 0, h);
  // A header section whose list claims 5 bytes but the message ends.
  const id = c.transfer(0, { handle: 0, payload: Buffer.from([0x00, 0x53, 0x70, 0xc0, 0x05, 0x01]) }) as number;
  const d = await dispositionFor(c, 0, id);
  assert.is(rejectedCondition(d.fields[4]), 'amqp:decode-error');
  const ok = c.transfer(0, { handle: 0, payload: textMessage('fine') }) as number;
  const d2 = await dispositionFor(c, 0, ok);
  assert.is(codeOf(d2.fields[4]), D.Accepted);
});

test('coordinator: a message that is neither declare nor discharge is rejected (amqp:not-implemented); an unknown transaction is amqp:transaction:unknown-id', async () => {
  const c = await client();
  c.attach(0, { name: 'coord', handle: 0, role: false, source: terminus('source', null), target: described(D.Coordinator, [[sym('amqp:local-transactions')]]) });
  const a = await attachReply(c, 'coord');
  assert.is(codeOf(a.fields[6]), D.Coordinator, 'the coordinator link is attached');
  await waitCredit(c, 0, a.fields[1] as number);
  const junk = c.transfer(0, { handle: 0, payload: section(D.AmqpValue, 'hello') }) as number;
  assert.is(rejectedCondition((await dispositionFor(c, 0, junk)).fields[4]), 'amqp:not-implemented');
  const discharge = c.transfer(0, { handle: 0, payload: section(D.AmqpValue, described(D.Discharge, [Buffer.from('nope'), false])) }) as number;
  assert.is(rejectedCondition((await dispositionFor(c, 0, discharge)).fields[4]), 'amqp:transaction:unknown-id');
  const declare = c.transfer(0, { handle: 0, payload: section(D.AmqpValue, described(D.Declare, [])) }) as number;
  const declared = await dispositionFor(c, 0, declare);
  assert.is(codeOf(declared.fields[4]), D.Declared, 'declare still works');
});

test('a too-long address and a bad selector are refused at attach with amqp:invalid-field', async () => {
  const c = await client();
  c.attachSender(0, 0, 'long', 'x'.repeat(5000));
  const detach = await c.waitForFrame((f) => f.name === 'detach' && f.fields[0] === 0, 3000);
  assert.is(conditionOf(detach.fields[2]), 'amqp:invalid-field');
  const src = described(D.Source, ['sel.q', null, null, null, null, null, null, { [`sel`]: described(0x0000468c00000004, "a = 'unterminated") }]);
  c.attach(0, { name: 'sel', handle: 1, role: true, source: src, target: terminus('target', null) });
  const d2 = await c.waitForFrame((f) => f.name === 'detach' && f.fields[0] === 1, 3000);
  assert.is(conditionOf(d2.fields[2]), 'amqp:invalid-field');
  // The connection still serves.
  const h = await openSender(c, 0, 2, 'ok', 'fine.q');
  await waitCredit(c, 0, h);
  const id = c.transfer(0, { handle: 2, payload: textMessage('x') }) as number;
  assert.is(codeOf((await dispositionFor(c, 0, id)).fields[4]), D.Accepted);
});

// ---------------------------------------------------------------------------------------------
// Hostile input: the broker shares the router's codec and engine

const hex = (x: string): Buffer => Buffer.from(x.replace(/\s+/g, ''), 'hex');
const MiB = 1024 * 1024;

async function good(address: string): Promise<GoodPeer> {
  const g = await GoodPeer.start(b.port, address);
  peers.push(g);
  return g;
}

/** The broker is alive; `g` (connected before the trouble) and a new client both round-trip. */
async function everyoneElseWorks(g: GoodPeer): Promise<void> {
  assert.is(b.exitCode, undefined, `broker exited:\n${b.log.join('\n')}`);
  await g.roundTrip();
  const fresh = await good(`${g.address}.fresh`);
  await fresh.roundTrip();
}

function closeCondition(c: RawClient): string | null {
  const close = c.frames.find((f) => f.name === 'close');
  return close ? conditionOf(close.fields[0]) : null;
}

test('decoder bomb: a 32-byte SASL connection with an array of 0xffffffff nulls is refused; the broker lives', async () => {
  const g = await good('bomb.good');
  const c = await RawClient.connect(b.port);
  clients.push(c);
  c.send(hex('414d5150030100000000001802010000005341c00b01f000000005ffffffff40'));
  await c.waitClosed(5000);
  assert.not.ok(c.frames.some((f) => f.name === 'sasl-outcome' && f.fields[0] === 0), 'no SASL success');
  await waitFor(() => b.log.some((l) => /bad sasl-init: .*zero-width/.test(l)), 5000, 'the broker to log the refusal');
  await everyoneElseWorks(g);
});

test('strings that are not UTF-8: an address is refused with amqp:invalid-field, a "to" rejected with it', async () => {
  const g = await good('utf8.good');
  const c = await client();
  c.attach(0, { name: 'rx-bad', handle: 0, role: true, source: described(D.Source, [new Raw(hex('a1 03 712eff'))]), target: terminus('target', null) });
  const a = await attachReply(c, 'rx-bad');
  assert.is(a.fields[5], null);
  const det = await c.waitForFrame((f) => f.name === 'detach' && f.fields[0] === a.fields[1]);
  assert.is(conditionOf(det.fields[2]), 'amqp:invalid-field');
  c.detach(0, 0);
  // An anonymous producer: the message's "to" decides the queue, so it must be a real string.
  const since = c.mark;
  const h = await openSender(c, 0, 1, 'anon', null);
  await waitCredit(c, 0, h, since);
  const id = c.transfer(0, { handle: 1, payload: Buffer.concat([encode(described(D.Properties, [null, null, new Raw(hex('a1 03 712efe'))])), textMessage('x')]) }) as number;
  const d = await dispositionFor(c, 0, id, since);
  assert.is(rejectedCondition(d.fields[4]), 'amqp:invalid-field');
  await everyoneElseWorks(g);
});

test('delivery-ids: a gap ends the session with amqp:session:invalid-field', async () => {
  const g = await good('seq.good');
  const c = await client();
  const h = await openSender(c, 0, 0, 'tx', 'seq.q');
  await waitCredit(c, 0, h);
  const first = c.transfer(0, { handle: 0, deliveryId: 0, payload: textMessage('0') }) as number;
  assert.is(codeOf((await dispositionFor(c, 0, first)).fields[4]), D.Accepted);
  const since = c.mark;
  c.transfer(0, { handle: 0, deliveryId: 2, payload: textMessage('gap') });
  const end = await c.waitForFrame((f) => f.name === 'end', 3000, since);
  assert.is(conditionOf(end.fields[0]), 'amqp:session:invalid-field');
  assert.not.ok(c.frames.some((f) => f.name === 'close'));
  await everyoneElseWorks(g);
});

test('unfinished deliveries: one connection holding more than 128 MiB is closed with amqp:resource-limit-exceeded', async () => {
  const g = await good('hoard.good');
  const c = await RawClient.open(b.port, { session: true, maxFrameSize: 65536 });
  clients.push(c);
  for (let h = 0; h < 3; h++) {
    const since = c.mark;
    const rh = await openSender(c, 0, h, `hoard-${h}`, 'hoard.q');
    await waitCredit(c, 0, rh, since);
  }
  for (let h = 0; h < 3 && !c.closed; h++) await sendIncomplete(c, 0, h, h, 40 * MiB);
  const close = await c.waitForFrame((f) => f.name === 'close', 30_000);
  assert.is(conditionOf(close.fields[0]), 'amqp:resource-limit-exceeded', c.describe());
  await everyoneElseWorks(g);
});

test('tear-down: a connection closing with 20,000 consumers of one queue (each holding a message) does not stall the broker', async () => {
  //   producer --> [broker: many.q] --> 20,000 receivers (credit 1 each, one connection)
  const g = await good('many.good');
  const n = 20_000;
  const tx = await client();
  const h = await openSender(tx, 0, 0, 'many-tx', 'many.q');
  await sendWithCredit(tx, 0, 0, h, n, (i) => textMessage(`m${i}`));
  const many = await RawClient.open(b.port, { session: true });
  clients.push(many);
  many.batch(() => {
    for (let k = 0; k < n; k++) {
      many.attachReceiver(0, k, `many-${k}`, 'many.q');
      many.flow(0, { handle: k, deliveryCount: 0, linkCredit: 1 });
    }
  });
  await waitFor(() => many.frames.filter((f) => f.name === 'transfer').length >= n, 60_000, 'every consumer holding one message');
  const mark = many.mark;
  many.close();
  await many.waitForFrame((f) => f.name === 'close', 30_000, mark);
  await g.roundTrip();
  // The messages went back to the queue: a new consumer gets them.
  const again = await client();
  await openReceiver(again, 0, 0, 'again', 'many.q', 10);
  await again.waitForFrames((f) => f.name === 'transfer', 10, 10_000);
  await everyoneElseWorks(g);
});

test.run();
