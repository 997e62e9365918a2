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
import rhea = require('rhea');
import { RunningBroker, brokerConfig, freePort, startBroker, tempDir } from '../support/broker';
import { RunningRouter, startRouter } from '../support/router';
import { waitFor } from '../support/wait';
import { connect, managementQuery, receiver } from './broker-helpers';

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

test('broker master killed under load: producer on B, consumer on A, 5,000 persistent messages; nothing accepted is lost; client links never detached', async () => {
  const t = await setup(true);
  const events: string[] = [];
  try {
    const pc = await connect({ port: (t.b as RunningRouter).port });
    const cc = await connect({ port: t.a.port });
    for (const [n, cl] of [['producer', pc], ['consumer', cc]] as const) {
      for (const e of ['connection_close', 'disconnected', 'connection_error']) cl.conn.on(e as any, () => events.push(`${n} ${e}`));
    }
    const received: number[] = [];
    const r = cc.conn.open_receiver({ source: { address: 'queue.orders' }, credit_window: 200 });
    r.on('message', (ctx) => received.push(ctx.message.body as number));
    r.on('receiver_close', () => events.push('consumer link detached'));
    const s = pc.conn.open_sender({ target: { address: 'queue.orders' } });
    s.on('sender_close', () => events.push('producer link detached'));
    const N = 5000;
    const accepted = new Set<number>();
    const retry: number[] = [];
    let next = 0;
    let resent = 0;
    let lastAccept = performance.now();
    let maxGap = 0;
    const pump = () => {
      while (s.sendable()) {
        const id = retry.length > 0 ? (retry.shift() as number) : next < N ? next++ : -1;
        if (id < 0) return;
        const d = s.send({ body: id, durable: true });
        (d as any).msgId = id;
      }
    };
    s.on('sendable', pump);
    s.on('accepted', (ctx: any) => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - lastAccept);
      lastAccept = now;
      accepted.add(ctx.delivery.msgId);
    });
    for (const ev of ['released', 'modified', 'rejected']) {
      s.on(ev as any, (ctx: any) => {
        retry.push(ctx.delivery.msgId);
        resent++;
        pump();
      });
    }
    await waitFor(() => accepted.size >= 1500, 20_000, '1500 accepted through the master');
    const t0 = performance.now();
    lastAccept = t0;
    maxGap = 0;
    await t.m.kill('SIGKILL');
    await waitFor(() => t.s.live, 10_000, 'the slave goes live');
    await waitFor(() => accepted.size === N, 60_000, `all ${N} accepted (have ${accepted.size})`);
    await waitFor(() => new Set(received).size === N, 30_000, `every message received (have ${new Set(received).size})`);
    const unique = new Set(received);
    const lost = [...accepted].filter((id) => !unique.has(id));
    assert.equal(lost, [], 'nothing accepted is lost');
    assert.equal(events, [], 'client links and connections stayed up');
    process.stdout.write(`  waypoint failover: client-visible pause ${maxGap.toFixed(0)} ms (longest gap between accepted outcomes after the kill); ${resent} resent; ${received.length - unique.size} duplicates\n`);
    assert.ok(maxGap < 2000, `pause ${maxGap.toFixed(0)} ms`);
    const pair = (await managementQuery(cc, 'org.apache.qpid.dispatch.connector')).find((x) => x.name === 'pair1') as Record<string, unknown>;
    assert.is(pair.activeUrl, `127.0.0.1:${t.s.port}`, 'the connector now uses the slave');
    await pc.close();
    await cc.close();
  } finally {
    await t.stop();
  }
});

test.run();
