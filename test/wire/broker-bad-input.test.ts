// Bad input to the broker, frame by frame: each refusal names its AMQP condition and the
// connection (and everyone else) carries on.
//
//   raw client --> [broker B1]
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { D } from '../../amqp/performatives';
import { RawClient, codeOf, conditionOf, described, section, terminus, sym } from '../support/raw-client';
import { RunningBroker, brokerConfig, startBroker, tempDir } from '../support/broker';
import { attachReply, dispositionFor, openSender, textMessage, waitCredit } from './helpers';

let b: RunningBroker;
const clients: RawClient[] = [];

test.before(async () => {
  b = await startBroker(brokerConfig(tempDir()));
});

test.after.each(() => {
  for (const c of clients.splice(0)) c.destroy();
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

test.run();
