/**
 * A management request message as the tools send it (message-id "id-1", reply-to "reply.here",
 * the operation in the application properties, a body), for unit tests of the agent.
 */
import { Writer } from '../../amqp/codec';
import { D } from '../../amqp/performatives';

/** The encoded request. */
export function managementRequestBytes(appProps: Record<string, unknown>, body: unknown = { attributeNames: [] }): Buffer {
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
