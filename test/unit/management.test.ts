// AMQP Management requests and replies without sockets.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Described, Reader, Writer, long } from '../../amqp/codec';
import { D } from '../../amqp/performatives';
import { ENTITY_TYPES, answer } from '../../router/io/management';
import { ManagementError, decodeRequest, encodeReply } from '../../amqp/management';

function request(appProps: Record<string, unknown>, body: unknown = { attributeNames: [] }): Buffer {
  const w = new Writer(256);
  w.descriptor(D.Properties);
  const p = w.beginList();
  w.string('id-1');
  w.null();
  w.null();
  w.null();
  w.string('reply.here');
  w.endList(p, 5);
  w.descriptor(D.ApplicationProperties);
  w.value(appProps);
  w.descriptor(D.AmqpValue);
  w.value(body);
  return w.take();
}

const src = { entities: (t: string) => (t === ENTITY_TYPES.autoLink ? [{ name: 'a1', address: 'queue.x', operStatus: 'active' }, { name: 'a2', address: 'queue.y', operStatus: 'failed' }] : null) };

test('QUERY: attribute names (all, or the ones asked) and one row per entity; the reply correlates', () => {
  const req = decodeRequest(request({ operation: 'QUERY', entityType: ENTITY_TYPES.autoLink, type: 'org.amqp.management' }, { attributeNames: ['name', 'operStatus'] }));
  assert.is(req.replyTo, 'reply.here');
  const res = answer(req, src);
  assert.equal(res, { statusCode: 200, statusDescription: 'OK', body: { attributeNames: ['name', 'operStatus'], results: [['a1', 'active'], ['a2', 'failed']] } });
  const reply = encodeReply(req, res);
  const r = new Reader(reply);
  const props = r.read() as Described;
  assert.is((props.value as unknown[])[2], 'reply.here', 'to');
  assert.is((props.value as unknown[])[5], 'id-1', 'correlation-id');
  const ap = r.read() as Described;
  assert.is((ap.value as Record<string, unknown>).statusCode, 200);
});

test('the reply correlates by the request\'s correlation-id when it has no message-id (qdstat, qdmanage); paging is read', () => {
  const w = new Writer(256);
  w.descriptor(D.Properties);
  const p = w.beginList();
  for (let i = 0; i < 4; i++) w.null();
  w.string('amqp:/_topo/0/R/temp.x');
  w.string('1');
  w.endList(p, 6);
  w.descriptor(D.ApplicationProperties);
  w.value({ name: 'self', type: 'org.amqp.management', operation: 'QUERY', entityType: ENTITY_TYPES.autoLink, offset: long(0), count: long(500) });
  w.descriptor(D.AmqpValue);
  w.value({ attributeNames: [] });
  const req = decodeRequest(w.take());
  assert.is(req.messageId, null);
  assert.is(req.correlationId, '1');
  assert.is(req.offset, 0);
  assert.is(req.count, 500);
  const props = new Reader(encodeReply(req, { statusCode: 200, statusDescription: 'OK', body: null })).read() as Described;
  assert.is((props.value as unknown[])[2], 'amqp:/_topo/0/R/temp.x', 'to = reply-to');
  assert.is((props.value as unknown[])[5], '1', 'correlation-id');
});

test('refusals: unknown entity type 404, unknown operation 400, CREATE 501, READ of a missing name 404; a non-message is a ManagementError', () => {
  assert.is(answer(decodeRequest(request({ operation: 'QUERY', entityType: 'org.example.nope' })), src).statusCode, 404);
  assert.is(answer(decodeRequest(request({ operation: 'FROB' })), src).statusCode, 400);
  assert.is(answer(decodeRequest(request({ operation: 'CREATE', type: ENTITY_TYPES.autoLink })), src).statusCode, 501);
  assert.is(answer(decodeRequest(request({ operation: 'READ', name: 'zzz' })), src).statusCode, 404);
  assert.is(answer(decodeRequest(request({ operation: 'READ', name: 'a2' })), src).statusCode, 200);
  assert.throws(() => decodeRequest(Buffer.from([0x40])), (e: unknown) => e instanceof ManagementError);
});

test.run();
