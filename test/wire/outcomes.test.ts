// Outcomes: the receiver's delivery state reaches the sender byte for byte; deliveries a departing
// receiver leaves behind get the outcomes AMQP prescribes.
//
//   raw sender --> [router R1] --> raw receiver
//        ^------- disposition ------'
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Described, sym, uint, ulong } from '../../amqp/codec';
import { D, withDeliveryFailed } from '../../amqp/performatives';
import { RawClient, amqpError, codeOf, described, encode } from '../support/raw-client';
import { RunningRouter, startRouter, standaloneConfig } from '../support/router';
import { ACCEPTED, dispositionFor, openReceiver, openSender, textMessage, waitCredit } from './helpers';

let r: RunningRouter;
const clients: RawClient[] = [];

test.before(async () => {
  r = await startRouter(standaloneConfig());
});

test.after.each(() => {
  for (const c of clients.splice(0)) c.destroy();
});

test.after(async () => {
  if (r) await r.stop();
});

let seq = 0;

/** A receiver (credit `credit`) and a sender on a fresh address, each on its own connection. */
async function pair(credit: number): Promise<{ tx: RawClient; rx: RawClient; rxHandle: number }> {
  const address = `closest/outcome.${++seq}`;
  const rx = await RawClient.open(r.port, { session: true, containerId: 'outcome-rx' });
  const tx = await RawClient.open(r.port, { session: true, containerId: 'outcome-tx' });
  clients.push(rx, tx);
  const rxHandle = await openReceiver(rx, 0, 0, `rx${seq}`, address, credit);
  const txHandle = await openSender(tx, 0, 0, `tx${seq}`, address);
  await waitCredit(tx, 0, txHandle);
  return { tx, rx, rxHandle };
}

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const symbolic = (name: string): Buffer => Buffer.concat([Buffer.from([0x00, 0xa3, name.length]), Buffer.from(name, 'latin1')]);

/** Delivery states as a consumer may encode them, canonical or not. */
const STATES: [string, Buffer][] = [
  ['accepted', ACCEPTED],
  ['accepted, empty list8', hex('00 53 24 c0 01 00')],
  ['accepted, ulong descriptor', hex('00 80 0000000000000024 45')],
  ['rejected with error and info', encode(described(D.Rejected, [amqpError('com.example:no-thanks', 'not today', new Map<unknown, unknown>([
    [sym('x-reason'), 42], [sym('x-nested'), new Map<unknown, unknown>([['a', [1, 'two']]])],
  ]))]))],
  ['rejected, list32, no error', hex('00 53 25 d0 00000005 00000001 40')],
  ['released', hex('00 53 26 45')],
  ['modified delivery-failed', hex('00 53 27 c0 02 01 41')],
  ['modified delivery-failed undeliverable-here', encode(described(D.Modified, [true, true]))],
  ['modified undeliverable-here with annotations', encode(described(D.Modified, [false, true, new Map<unknown, unknown>([[sym('x-opt-retry'), uint(3)]])]))],
  ['modified, symbolic descriptor', Buffer.concat([symbolic('amqp:modified:list'), hex('c0 03 02 41 42')])],
];

test('every terminal state the receiver gives reaches the sender byte for byte (settled); a modified one with delivery-failed set (qdrouterd\'s)', async () => {
  const { tx, rx, rxHandle } = await pair(100);
  const failures: string[] = [];
  for (const [what, state] of STATES) {
    const since = tx.mark;
    const rxSince = rx.mark;
    const id = tx.sendMessage(0, 0, textMessage(what));
    const t = await rx.waitForFrame((f) => f.name === 'transfer' && f.fields[0] === rxHandle, 3000, rxSince);
    assert.is(t.fields[4], false, 'forwarded unsettled');
    rx.disposition(0, { role: true, first: t.fields[1] as number, settled: true, state });
    const d = await dispositionFor(tx, 0, id, since);
    if (d.fields[0] !== true || d.fields[3] !== true) failures.push(`${what}: sender's disposition not role=receiver, settled: ${tx.describe(since)}`);
    const want = withDeliveryFailed(state);
    if (!d.raw[4] || !d.raw[4].equals(want)) failures.push(`${what}: sent ${state.toString('hex')}, sender got ${d.raw[4]?.toString('hex')}, want ${want.toString('hex')}`);
  }
  assert.ok(failures.length === 0, failures.join('\n'));
});

test('one disposition for a range of deliveries settles each of them at the sender', async () => {
  const { tx, rx, rxHandle } = await pair(10);
  const since = tx.mark;
  const rxSince = rx.mark;
  const ids = [0, 1, 2].map((i) => tx.sendMessage(0, 0, textMessage(`range ${i}`)));
  const ts = await rx.waitForFrames((f) => f.name === 'transfer' && f.fields[0] === rxHandle, 3, 3000, rxSince);
  rx.disposition(0, { role: true, first: ts[0].fields[1] as number, last: ts[2].fields[1] as number, settled: true, state: ACCEPTED });
  for (const id of ids) {
    const d = await dispositionFor(tx, 0, id, since);
    assert.equal(d.raw[4], ACCEPTED, `delivery ${id}`);
    assert.is(d.fields[3], true);
  }
});

test('a terminal state given unsettled (3-ack): the sender gets it unsettled; its settle reaches the receiver', async () => {
  // raw sender --> [router] --> raw receiver (rejects without settling)
  const { tx, rx, rxHandle } = await pair(10);
  const state = encode(described(D.Rejected, [amqpError('amqp:precondition-failed', 'nope')]));
  const since = tx.mark;
  const rxSince = rx.mark;
  const id = tx.sendMessage(0, 0, textMessage('unsettled outcome'));
  const t = await rx.waitForFrame((f) => f.name === 'transfer' && f.fields[0] === rxHandle, 3000, rxSince);
  const rxId = t.fields[1] as number;
  rx.disposition(0, { role: true, first: rxId, settled: false, state });
  const d = await dispositionFor(tx, 0, id, since);
  assert.equal(d.raw[4], state, 'state passed through');
  assert.is(d.fields[3], false, 'unsettled: the receiver has not settled');
  await rx.expectNoFrame((f) => f.name === 'disposition', 150, rxSince);
  tx.disposition(0, { role: false, first: id, settled: true, state: null });
  const settle = await dispositionFor(rx, 0, rxId, rxSince);
  assert.is(settle.fields[0], false, 'from the router as sender');
  assert.is(settle.fields[3], true, 'settled');
  assert.is(settle.raw[4], undefined, 'no state of its own: the receiver keeps its outcome');
});

test('a non-terminal state is passed on unsettled (qdrouterd\'s); the terminal one after it settles', async () => {
  // raw sender --> [router] --> raw receiver (received, then accepted and settled)
  const { tx, rx, rxHandle } = await pair(10);
  const since = tx.mark;
  const rxSince = rx.mark;
  const id = tx.sendMessage(0, 0, textMessage('progress'));
  const t = await rx.waitForFrame((f) => f.name === 'transfer' && f.fields[0] === rxHandle, 3000, rxSince);
  const received = encode(described(D.Received, [uint(0), ulong(0)]));
  rx.disposition(0, { role: true, first: t.fields[1] as number, settled: false, state: received });
  const r = await dispositionFor(tx, 0, id, since);
  assert.equal([r.raw[4], r.fields[3]], [received, false]);
  const since2 = tx.mark;
  rx.disposition(0, { role: true, first: t.fields[1] as number, settled: true, state: ACCEPTED });
  const d = await dispositionFor(tx, 0, id, since2);
  assert.equal([d.raw[4], d.fields[3]], [ACCEPTED, true]);
});

test('the sender\'s transfer state (an extension state) reaches the consumer as sent', async () => {
  // raw sender (transfer state 999:[1,2,3]) --> [router] --> raw receiver
  const { tx, rx, rxHandle } = await pair(10);
  const state = hex('00 80 00000000000003e7 c0 07 03 54 01 54 02 54 03');
  const rxSince = rx.mark;
  tx.transfer(0, { handle: 0, settled: false, state, payload: textMessage('with state') });
  const t = await rx.waitForFrame((f) => f.name === 'transfer' && f.fields[0] === rxHandle, 3000, rxSince);
  assert.equal(t.raw[7], state);
});

/** The sender's outcome for delivery `id`: its descriptor code and decoded fields. */
async function outcome(tx: RawClient, id: number, since: number): Promise<{ code: number; fields: unknown[]; settled: unknown }> {
  const d = await dispositionFor(tx, 0, id, since);
  const v = d.fields[4];
  return { code: codeOf(v), fields: v instanceof Described && Array.isArray(v.value) ? v.value : [], settled: d.fields[3] };
}

for (const how of ['detach', 'end', 'close', 'socket drop'] as const) {
  test(`receiver leaves by ${how}: unsettled -> modified(delivery-failed), undelivered -> released`, async () => {
    const { tx, rx, rxHandle } = await pair(1);
    const since = tx.mark;
    const ids = [0, 1, 2].map((i) => tx.sendMessage(0, 0, textMessage(`left behind ${i}`)));
    await rx.waitForFrame((f) => f.name === 'transfer' && f.fields[0] === rxHandle);
    // Only one credit: the other two wait in the router (or find no consumer: released too).
    if (how === 'detach') rx.detach(0, 0, true);
    else if (how === 'end') rx.end(0);
    else if (how === 'close') rx.close();
    else rx.destroy();
    const first = await outcome(tx, ids[0], since);
    assert.is(first.code, D.Modified, `delivered, unsettled: modified; sender got ${tx.describe(since)}`);
    assert.is(first.fields[0], true, 'delivery-failed');
    assert.ok(first.fields[1] !== true, 'not undeliverable-here');
    assert.is(first.settled, true);
    for (const id of ids.slice(1)) {
      const o = await outcome(tx, id, since);
      assert.is(o.code, D.Released, `undelivered ${id}: released; sender got ${tx.describe(since)}`);
      assert.is(o.settled, true);
    }
  });
}

test.run();
