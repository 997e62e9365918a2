// A service that connects in on a route-container listener (qdrouterd's `listener { role:
// route-container }`): link routes naming the listener reach it, auto-links naming its
// container-id attach on its connection, management shows both live, and all of it stops when
// the service goes.
//
//   rhea client ──(listener 0, normal)──> R1 <──(listener 1 "services", route-container)── rhea service "svc1"
//     sender to svc.orders  (linkRoute prefix svc, connection services, in)   -> routed to the service
//     sender to q.auto      (autoLink q.auto out, containerId svc1)           -> the router's auto-link to the service
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import rhea = require('rhea');
import { protonAvailable } from '../support/proton';
import { ask, rows } from '../support/management';
import { rheaConnect, standaloneConfig, url, waitFor, withRouter } from './helpers';

const T = (s: string) => `org.apache.qpid.dispatch.${s}`;
const query = (entityType: string, attributeNames: string[]) => ({ properties: { operation: 'QUERY', name: 'self', type: 'org.amqp.management', entityType, offset: 0, count: 500 }, body: { attributeNames } });

const CONFIG = standaloneConfig(
  'listener {\n    name: services\n    host: 127.0.0.1\n    port: 0\n    role: route-container\n}\n' +
    'linkRoute {\n    prefix: svc\n    connection: services\n    direction: in\n}\n' +
    'autoLink {\n    name: auto-out\n    address: q.auto\n    containerId: svc1\n    direction: out\n}\n',
);

test('link routes and auto-links over a route-container listener: served while the service is connected, inactive after', async () => {
  await withRouter(async (r) => {
    // The service takes every link the router attaches to it (routed client links and auto-links),
    // echoing the terminus as a broker does (rhea's own answer would carry none: a refusal).
    const svc = rhea.create_container({ id: 'svc1' });
    const received: { link: string; body: unknown }[] = [];
    const autoLinks: string[] = [];
    svc.on('receiver_open', (ctx: rhea.EventContext) => {
      const target = (ctx.receiver as unknown as { remote: { attach: { target: { address?: string } } } }).remote.attach.target;
      ctx.receiver!.set_target({ address: target.address ?? '' });
      if (target.address === 'q.auto') autoLinks.push(ctx.receiver!.name);
    });
    svc.on('message', (ctx: rhea.EventContext) => received.push({ link: ctx.receiver!.name, body: ctx.message!.body }));
    const serviceConn = svc.connect({ host: '127.0.0.1', port: r.ports[1], reconnect: false } as rhea.ConnectionOptions);
    const service = { close: () => new Promise<void>((resolve) => { serviceConn.once('connection_close', () => resolve()); serviceConn.close(); }) };
    await waitFor(() => autoLinks.length === 1, 5000, 'the auto-link attached to the service');

    const client = await rheaConnect(r, 0);
    try {
      const routed = client.conn.open_sender({ target: { address: 'svc.orders' }, name: 'orders-link' } as rhea.SenderOptions);
      const lost = new Promise<string | undefined>((resolve) => routed.on('sender_close', (ctx: rhea.EventContext) => resolve((ctx.sender!.error as { condition?: string } | undefined)?.condition)));
      await waitFor(() => routed.sendable(), 5000, 'the routed sender to get credit from the service');
      routed.send({ body: 'routed-1' });
      const viaAuto = client.conn.open_sender('q.auto');
      await waitFor(() => viaAuto.sendable(), 5000, 'credit on q.auto (the auto-link is the consumer)');
      viaAuto.send({ body: 'auto-1' });
      await waitFor(() => received.length === 2, 5000, 'both messages at the service');
      // qdrouterd's disambiguation: the service sees NAME@CLIENT-CONTAINER-ID.
      const clientContainer = client.container.id;
      assert.equal(received.find((m) => m.body === 'routed-1')?.link, `orders-link@${clientContainer}`, 'the routed link is named after its client');
      assert.ok(received.some((m) => m.body === 'auto-1'));

      if (protonAvailable()) {
        const [lr, al, addr, conns, router] = (await ask(url(r), [
          query(T('router.config.linkRoute'), ['prefix', 'connection', 'operStatus']),
          query(T('router.config.autoLink'), ['name', 'operStatus']),
          query(T('router.address'), ['name', 'containerCount', 'distribution']),
          query(T('connection'), ['container', 'role', 'dir']),
          query(T('router'), ['deliveriesEgressRouteContainer', 'deliveriesIngressRouteContainer']),
        ])).replies;
        assert.equal(rows(router), [{ deliveriesEgressRouteContainer: 1, deliveriesIngressRouteContainer: 0 }], 'auto-1 went to the service through the auto-link');
        assert.equal(rows(lr), [{ prefix: 'svc', connection: 'services', operStatus: 'active' }]);
        assert.equal(rows(al), [{ name: 'auto-out', operStatus: 'active' }]);
        assert.equal(rows(addr).find((a) => a.name === 'Csvc'), { name: 'Csvc', containerCount: 1, distribution: 'linkBalanced' });
        assert.equal(rows(conns).find((c) => c.container === 'svc1'), { container: 'svc1', role: 'route-container', dir: 'in' });
      }

      // The service goes: the routed link is lost, the route and the auto-link are inactive.
      await service.close();
      assert.is(await lost, 'qd:routed-link-lost');
      const again = client.conn.open_sender({ target: { address: 'svc.orders' } } as rhea.SenderOptions);
      const refused = await new Promise<string | undefined>((resolve) => again.on('sender_close', (ctx: rhea.EventContext) => resolve((ctx.sender!.error as { condition?: string } | undefined)?.condition)));
      assert.is(refused, 'qd:no-route-to-dest');
      if (protonAvailable()) {
        const [lr, al] = (await ask(url(r), [query(T('router.config.linkRoute'), ['operStatus']), query(T('router.config.autoLink'), ['operStatus'])])).replies;
        assert.equal([rows(lr)[0].operStatus, rows(al)[0].operStatus], ['inactive', 'inactive']);
      }
    } finally {
      await client.close();
    }
  }, CONFIG, { listeners: 2 });
});

test.run();
