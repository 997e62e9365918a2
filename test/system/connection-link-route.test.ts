// Connection-scoped link routes (qdrouterd's router.connection.linkRoute): a service creates
// them over its own connection's management link; the mesh routes matching links to it; only
// that connection sees them; they go when it closes.
//
//   rhea client ──> [router B] ══inter-router══ [router A] <── rhea service "flea-svc"
//                                                              CREATE router.connection.linkRoute
//                                                              pattern flea.*, in (and out)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import rhea = require('rhea');
import { interiorConfig, startRouter, type RunningRouter } from '../support/router';
import { waitFor } from '../support/wait';
import { once, rheaConnect } from './helpers';

const LR = 'org.apache.qpid.dispatch.router.connection.linkRoute';

/** A management client on an open rhea connection: requests go on it, replies come back to it. */
async function managementOver(conn: rhea.Connection): Promise<(props: Record<string, unknown>, body?: unknown) => Promise<{ status: number; body: unknown }>> {
  const replies = conn.open_receiver({ source: { dynamic: true } as rhea.Source });
  await once(replies as unknown as import('events').EventEmitter, 'receiver_open');
  const replyTo = (replies as unknown as { source: { address: string } }).source.address;
  const requests = conn.open_sender('$management');
  await once(requests as unknown as import('events').EventEmitter, 'sendable');
  let n = 0;
  const waiting = new Map<string, (r: { status: number; body: unknown }) => void>();
  replies.on('message', (ctx: rhea.EventContext) => {
    const m = ctx.message!;
    waiting.get(String(m.correlation_id))?.({ status: Number(m.application_properties?.statusCode), body: m.body });
  });
  return (props, body = {}) => new Promise((resolve) => {
    const id = `req-${n++}`;
    waiting.set(id, resolve);
    requests.send({ message_id: id, reply_to: replyTo, application_properties: props, body });
  });
}

async function addressRows(r: RunningRouter): Promise<string[]> {
  const c = await rheaConnect(r);
  try {
    const ask = await managementOver(c.conn);
    const reply = await ask({ operation: 'QUERY', type: 'org.amqp.management', name: 'self', entityType: 'org.apache.qpid.dispatch.router.address' }, { attributeNames: ['name'] });
    return (reply.body as { results: string[][] }).results.map((row) => row[0]);
  } finally {
    await c.close();
  }
}

test('a service routes flea.* to itself for as long as its connection lives; other connections do not see its routes', async () => {
  const a = await startRouter(interiorConfig('A', null), { listeners: 2 });
  const b = await startRouter(interiorConfig('B', a.ports[1]), { listeners: 2 });
  try {
    const svcContainer = rhea.create_container({ id: 'flea-svc' });
    const received: string[] = [];
    svcContainer.on('receiver_open', (ctx: rhea.EventContext) => {
      // Take the routed link, naming the same node (a broker would).
      const target = (ctx.receiver as unknown as { remote: { attach: { target: { address?: string } } } }).remote.attach.target;
      ctx.receiver!.set_target({ address: target.address ?? '' });
    });
    svcContainer.on('message', (ctx: rhea.EventContext) => received.push(String(ctx.message!.body)));
    const svc = svcContainer.connect({ host: '127.0.0.1', port: a.ports[0], reconnect: false } as rhea.ConnectionOptions);
    await once(svc as unknown as import('events').EventEmitter, 'connection_open');
    const ask = await managementOver(svc);
    const made = await ask({ operation: 'CREATE', type: LR, name: 'clr-in' }, { pattern: 'flea.*', direction: 'in' });
    assert.is(made.status, 201);
    assert.equal([(made.body as Record<string, unknown>).pattern, (made.body as Record<string, unknown>).containerId], ['flea.*', 'flea-svc']);
    assert.is((await ask({ operation: 'CREATE', type: LR, name: 'bad' }, { pattern: '', direction: 'in' })).status, 400);
    assert.equal(((await ask({ operation: 'QUERY', type: LR }, { attributeNames: ['name'] })).body as { results: unknown[] }).results, [['clr-in']]);

    // Another connection (on the same router) sees none of them.
    const other = await rheaConnect(a);
    const askOther = await managementOver(other.conn);
    assert.equal(((await askOther({ operation: 'QUERY', type: LR }, { attributeNames: ['name'] })).body as { results: unknown[] }).results, []);
    await other.close();

    // The mesh learns the route: a sender on B reaches the service.
    await waitFor(async () => (await addressRows(b)).includes('Eflea.*'), 10_000, 'B to learn Eflea.*');
    const client = await rheaConnect(b);
    const sender = client.conn.open_sender('flea.b');
    await waitFor(() => sender.sendable(), 5000, 'credit from the service, through the link route');
    sender.send({ body: 'to the flea service' });
    await waitFor(() => received.length === 1, 5000, 'the message at the service');
    assert.equal(received, ['to the flea service']);
    await client.close();

    // The service goes: so do its routes, here and across the mesh.
    svc.close();
    await waitFor(async () => !(await addressRows(b)).includes('Eflea.*') && !(await addressRows(a)).includes('Eflea.*'), 10_000, 'the route withdrawn');
  } finally {
    await b.stop();
    await a.stop();
  }
});

test.run();
