/** Frames as text for protocol tracing (amqp/trace.ts), read from the encoding byte by byte. No sockets. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Writer } from '../../amqp/codec';
import { encodeRejected, writeClose, writeDisposition, writeOpen } from '../../amqp/performatives';
import { describeFrameBody, describeOutput } from '../../amqp/trace';

test('a close with an error: condition as a symbol, description as a string (as Proton prints it)', () => {
  const w = new Writer();
  writeClose(w, { condition: 'amqp:connection:forced', description: 'Message size exceeded' });
  assert.equal(describeOutput(w.take()), ['0 -> @close(24) [error=@error(29) [condition=:"amqp:connection:forced", description="Message size exceeded"]]']);
});

test('an open: null fields left out, symbol arrays and maps shown', () => {
  const w = new Writer();
  writeOpen(w, { containerId: 'R1', maxFrameSize: 16384, channelMax: 7, idleTimeout: 8000, offeredCapabilities: ['ANONYMOUS-RELAY'], properties: { product: 'amqp-mesh' } });
  const [line] = describeOutput(w.take());
  assert.match(line, /^0 -> @open\(16\) \[container-id="R1", max-frame-size=16384, channel-max=7, idle-time-out=8000, offered-capabilities=/);
  assert.match(line, /:ANONYMOUS-RELAY/);
  assert.match(line, /properties=\{:product="amqp-mesh"\}\]$/);
});

test('a disposition with a rejected outcome, and protocol headers', () => {
  const w = new Writer();
  w.bytes(Buffer.from('AMQP\x00\x01\x00\x00', 'latin1'));
  writeDisposition(w, 3, true, 5, 5, true, encodeRejected({ condition: 'amqp:link:message-size-exceeded', description: 'too big' }));
  const lines = describeOutput(w.take());
  assert.is(lines[0], '-> AMQP');
  assert.is(lines[1], '3 -> @disposition(21) [role=true, first=5, settled=true, state=@rejected(37) [error=@error(29) [condition=:"amqp:link:message-size-exceeded", description="too big"]]]');
});

test('a transfer\'s payload is counted, not shown; unreadable bytes are said so, never thrown', () => {
  // @transfer(20) [handle=0, delivery-id=1] then 5 payload bytes
  const body = Buffer.from([0x00, 0x53, 0x14, 0xc0, 0x04, 0x02, 0x43, 0x52, 0x01, 1, 2, 3, 4, 5]);
  assert.is(describeFrameBody(body, 0, body.length), '@transfer(20) [handle=0, delivery-id=1] (5 bytes of payload)');
  const cut = Buffer.from([0x00, 0x53, 0x18, 0xc0, 0x10, 0x01]);
  assert.match(describeFrameBody(cut, 0, cut.length), /^\(unreadable frame: /);
  const bad = Buffer.from([0xff]);
  assert.match(describeFrameBody(bad, 0, 1), /^\(unreadable frame: type 0xff\)/);
  let deep = Buffer.from([0x40]);
  for (let i = 0; i < 100; i++) deep = Buffer.concat([Buffer.from([0xc0, deep.length + 1, 1]), deep]);
  assert.match(describeFrameBody(deep, 0, deep.length), /nested too deep/);
});

test.run();
