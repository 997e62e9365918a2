/** Delivery states the router rewrites when it relays them (amqp/performatives.ts), byte by byte. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Reader, Writer } from '../../amqp/codec';
import { D, STATE, withDeliveryFailed } from '../../amqp/performatives';

/** A modified state with the given list fields, encoded by our writer (list8). */
function modified(fields: (() => void)[], w = new Writer(64)): Buffer {
  w.descriptor(D.Modified);
  const m = w.beginList();
  for (const f of fields) f.call(null);
  w.endList(m, fields.length);
  return w.take();
}

test('modified without delivery-failed gains it; undeliverable-here and annotations stay byte for byte', () => {
  assert.equal(withDeliveryFailed(Buffer.from([0x00, 0x53, 0x27, 0x45])), STATE.modifiedFailed, 'list0');
  const w = new Writer(64);
  const plain = modified([() => w.boolean(false), () => w.boolean(true), () => { const m = w.beginMap(); w.symbol('k'); w.boolean(true); w.endMap(m, 2); }], w);
  const out = withDeliveryFailed(plain);
  const fields = new Reader(out, 0, out.length).read() as { value: unknown[] };
  assert.equal(fields.value.slice(0, 2), [true, true]);
  assert.equal(out.subarray(out.length - (plain.length - 7)), plain.subarray(7), 'the rest copied as it was');
  const nullFirst = Buffer.from([0x00, 0x53, 0x27, 0xc0, 0x03, 0x02, 0x40, 0x41]);
  assert.equal([...withDeliveryFailed(nullFirst)], [0x00, 0x53, 0x27, 0xc0, 0x03, 0x02, 0x41, 0x41]);
  const long = Buffer.from([0x00, 0x53, 0x27, 0xd0, 0, 0, 0, 6, 0, 0, 0, 2, 0x42, 0x41]);
  assert.equal([...withDeliveryFailed(long)], [0x00, 0x53, 0x27, 0xd0, 0, 0, 0, 6, 0, 0, 0, 2, 0x41, 0x41], 'list32 stays list32');
});

test('modified with its descriptor as a ulong (0x80) or as the symbol amqp:modified:list gains delivery-failed too', () => {
  const fields = [0xc0, 0x03, 0x02, 0x42, 0x41];
  const ulong = Buffer.from([0x00, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x27, ...fields]);
  assert.equal([...withDeliveryFailed(ulong)], [0x00, 0x53, 0x27, 0xc0, 0x03, 0x02, 0x41, 0x41]);
  const name = Buffer.from('amqp:modified:list', 'latin1');
  const symbol = Buffer.from([0x00, 0xa3, name.length, ...name, ...fields]);
  assert.equal([...withDeliveryFailed(symbol)], [0x00, 0x53, 0x27, 0xc0, 0x03, 0x02, 0x41, 0x41]);
  const releasedLong = Buffer.from([0x00, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x26, 0x45]);
  assert.is(withDeliveryFailed(releasedLong), releasedLong, 'released in the long form: as it is');
  const truncated = Buffer.from([0x00, 0x80, 0, 0, 0, 0, 0]);
  assert.is(withDeliveryFailed(truncated), truncated, 'undecodable: as it is');
});

test('already failed, or not modified: the same buffer', () => {
  assert.is(withDeliveryFailed(STATE.modifiedUndeliverable), STATE.modifiedUndeliverable);
  assert.is(withDeliveryFailed(STATE.accepted), STATE.accepted);
  assert.is(withDeliveryFailed(STATE.released), STATE.released);
});

test.run();
