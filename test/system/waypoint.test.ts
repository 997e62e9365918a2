// Waypoints and auto-links to a broker pair, with real routers, real brokers and rhea clients.
//
//   rhea producer --> [router B] ==inter-router== [router A] --route-container--> [broker M :p1] (live)
//   rhea consumer --> [router A] or [router B]                 (failoverUrls, and   [broker S :p2] (slave)
//                                                              failover-server-list) same dataDir
//
// queue.orders is a waypoint: producers send to phase 0, which the router's out auto-link carries
// to the broker; the in auto-link brings the broker's messages back as phase 1, which consumers
// receive. When the master is killed the router fails over to the slave and re-attaches its
// auto-links; client links stay attached.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RunningBroker, brokerConfig, freePort, startBroker, tempDir } from '../support/broker';
import { RunningRouter, startRouter } from '../support/router';
import { waitFor } from '../support/wait';
import { RetryingProducer, assertNoneLost, collectingConsumer, connect, managementQuery, receiver, watchConnections } from './broker-helpers';

function routerA(p1: number, p2: number, extra = ''): string {
  return `router {\n    mode: interior\n    id: A\n}\nlistener {\n    host: 127.0.0.1\n    port: 0\n}\nlistener {\n    host: 127.0.0.1\n    port: 0\n    role: inter-router\n}\n` +
    `connector {\n    name: pair1\n    host: 127.0.0.1\n    port: ${p1}\n    role: route-container\n    failoverUrls: amqp://127.0.0.1:${p2}\n}\n` +
    `address {\n    prefix: queue\n    waypoint: yes\n}\n` +
    `autoLink {\n    address: queue.orders\n    direction: in\n    connection: pair1\n}\nautoLink {\n    address: queue.orders\n    direction: out\n    connection: pair1\n}\n` +
    `log {\n    module: DEFAULT\n    enable: info+\n}\n${extra}`;
}

function routerB(aInterPort: number): string {
  return `router {\n    mode: interior\n    id: B\n}\nlistener {\n    host: 127.0.0.1\n    port: 0\n}\n` +
    `connector {\n    host: 127.0.0.1\n    port: ${aInterPort}\n    role: inter-router\n}\naddress {\n    prefix: queue\n    waypoint: yes\n}\n`;
}

interface Setup {
  m: RunningBroker;
  s: RunningBroker;
  a: RunningRouter;
  b: RunningRouter | null;
  stop(): Promise<void>;
}

async function setup(withB: boolean): Promise<Setup> {
  const dataDir = tempDir();
  const [p1, p2] = [await freePort(), await freePort()];
  const m = await startBroker(brokerConfig(dataDir, { id: 'master', port: p1 }), { name: 'master' });
  const s = await startBroker(brokerConfig(dataDir, { id: 'slave', port: p2 }), { name: 'slave', waitLive: false });
  const a = await startRouter(routerA(p1, p2), { listeners: 2 });
  const b = withB ? await startRouter(routerB(a.ports[1])) : null;
  await waitFor(() => a.log.some((l) => /auto-link .*: active/.test(l)), 10_000, 'auto-links active');
  return {
    m, s, a, b,
    async stop() {
      await b?.stop();
      await a.stop();
      await m.stop();
      await s.stop();
    },
  };
}

test('a waypointed queue: messages go through the broker (stored while no consumer) and come back to consumers on the router', async () => {
  const t = await setup(false);
  try {
    const c = await connect({ port: t.a.port });
    const sender = c.conn.open_sender({ target: { address: 'queue.orders' } });
    let accepted = 0;
    sender.on('accepted', () => accepted++);
    await waitFor(() => sender.sendable(), 5000, 'credit: the broker is the waypoint consumer');
    for (let i = 0; i < 10; i++) sender.send({ body: `o${i}`, durable: true });
    await waitFor(() => accepted === 10, 5000, 'accepted by the broker');
    // The broker holds them: a consumer straight on the broker sees them (browse, not taking).
    const direct = await connect(t.m);
    const browser = await receiver(direct, { address: 'queue.orders', distribution_mode: 'copy' } as never);
    await waitFor(() => browser.messages.length === 10, 5000, 'the broker holds the 10 messages');
    await direct.close();
    const rx = await receiver(c, 'queue.orders');
    await waitFor(() => rx.messages.length === 10, 5000, 'delivered back through the in auto-link');
    assert.equal(rx.messages.map((x) => x.body), Array.from({ length: 10 }, (_, i) => `o${i}`));
    // Visible through AMQP management, with qdrouterd's entity types and attributes.
    const links = await managementQuery(c, 'org.apache.qpid.dispatch.router.config.autoLink');
    assert.equal(links.map((l) => [l.address, l.direction, l.operStatus]).sort(), [['queue.orders', 'in', 'active'], ['queue.orders', 'out', 'active']]);
    const conns = await managementQuery(c, 'org.apache.qpid.dispatch.connector');
    const pair = conns.find((x) => x.name === 'pair1') as Record<string, unknown>;
    assert.is(pair.connectionStatus, 'SUCCESS');
    assert.is(pair.activeUrl, `127.0.0.1:${t.m.port}`);
    await c.close();
  } finally {
    await t.stop();
  }
});

test('the broker master killed: the connector fails over to the slave (visible in management) and the waypoint works again', async () => {
  const t = await setup(true);
  try {
    const cc = await connect({ port: t.a.port });
    const pc = await connect({ port: (t.b as RunningRouter).port });
    const events: string[] = [];
    watchConnections([['producer', pc], ['consumer', cc]], events);
    const received = collectingConsumer(cc, 'queue.orders', 100, events);
    const p = new RetryingProducer(pc, 'queue.orders', 500, events);
    await waitFor(() => p.accepted.size >= 100, 10_000, '100 accepted via the master');
    await t.m.kill('SIGKILL');
    await waitFor(() => t.s.live, 10_000, 'the slave goes live');
    await waitFor(() => p.done && new Set(received).size === 500, 30_000, 'all accepted and received');
    assertNoneLost(p.accepted, received);
    assert.equal(events, []);
    const pair = (await managementQuery(cc, 'org.apache.qpid.dispatch.connector')).find((x) => x.name === 'pair1') as Record<string, unknown>;
    assert.is(pair.activeUrl, `127.0.0.1:${t.s.port}`, 'the connector now uses the slave');
    assert.is(pair.connectionStatus, 'SUCCESS');
    await pc.close();
    await cc.close();
  } finally {
    await t.stop();
  }
});

test.run();
