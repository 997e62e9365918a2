// Link routes across two hops to a broker pair, with real routers, brokers and rhea clients.
//
//   rhea clients --> [router B] ==inter-router== [router A] --route-container pair1--> [broker M :p1] live
//                    (no linkRoute config:                  linkRoute orders in/out     [broker S :p2] slave
//                     learns the route from the mesh)
//
// The client's attach travels B → A → broker; termini (selectors, distribution-mode copy) reach
// the broker byte for byte; credit, dispositions and detach go end to end.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RunningBroker, brokerConfig, freePort, startBroker, tempDir } from '../support/broker';
import { RunningRouter, startRouter } from '../support/router';
import { waitFor } from '../support/wait';
import { runProton } from '../support/proton';
import { bodies, connect, numbered, receiver, sendAll } from './broker-helpers';

function routerA(p1: number, p2: number): string {
  return `router {\n    mode: interior\n    id: A\n}\nlistener {\n    host: 127.0.0.1\n    port: 0\n}\nlistener {\n    host: 127.0.0.1\n    port: 0\n    role: inter-router\n}\n` +
    `connector {\n    name: pair1\n    host: 127.0.0.1\n    port: ${p1}\n    role: route-container\n    failoverUrls: amqp://127.0.0.1:${p2}\n}\n` +
    `linkRoute {\n    prefix: orders\n    direction: in\n    connection: pair1\n}\nlinkRoute {\n    prefix: orders\n    direction: out\n    connection: pair1\n}\n`;
}

function routerB(aInterPort: number): string {
  return `router {\n    mode: interior\n    id: B\n}\nlistener {\n    host: 127.0.0.1\n    port: 0\n}\n` +
    `connector {\n    host: 127.0.0.1\n    port: ${aInterPort}\n    role: inter-router\n}\n`;
}

interface Setup {
  m: RunningBroker;
  s: RunningBroker;
  a: RunningRouter;
  b: RunningRouter;
  stop(): Promise<void>;
}

async function setup(): Promise<Setup> {
  const dataDir = tempDir();
  const [p1, p2] = [await freePort(), await freePort()];
  const m = await startBroker(brokerConfig(dataDir, { id: 'master', port: p1 }), { name: 'master' });
  const s = await startBroker(brokerConfig(dataDir, { id: 'slave', port: p2 }), { name: 'slave', waitLive: false });
  const a = await startRouter(routerA(p1, p2), { listeners: 2 });
  const b = await startRouter(routerB(a.ports[1]));
  return {
    m, s, a, b,
    async stop() {
      await b.stop();
      await a.stop();
      await m.stop();
      await s.stop();
    },
  };
}

/** Attaches until the route is known on `port` (the mesh needs a moment to advertise it). */
async function routedSender(c: Awaited<ReturnType<typeof connect>>, address: string): Promise<void> {
  await waitFor(async () => {
    const out = await sendAll(c, address, [{ body: 'probe', durable: true }], 3000).catch(() => null);
    return out !== null && out[0] === 'accepted';
  }, 10_000, `a link route for ${address}`);
}

test('Proton through a link route: its receiver grants credit before the attach is answered; the credit still reaches the broker', async () => {
  const t = await setup();
  try {
    const c = await connect(t.b);
    await routedSender(c, 'orders.probe');
    assert.ok((await sendAll(c, 'orders.proton', numbered(3, 'p'))).every((x) => x === 'accepted'));
    await c.close();
    const rx = await runProton('receive.py', ['--url', `amqp://127.0.0.1:${t.b.port}`, '--address', 'orders.proton', '--count', '3', '--timeout', '10']);
    assert.is(rx.code, 0, rx.stderr);
    assert.equal(rx.result.messages, ['p0', 'p1', 'p2']);
  } finally {
    await t.stop();
  }
});

test('containerId instead of connection: link routes and auto-links follow the broker that announces that container-id', async () => {
  //   rhea --> [router R] --route-container x--> [broker "inventory"]   linkRoute/autoLink containerId: inventory
  const b = await startBroker(brokerConfig(tempDir(), { id: 'inventory' }), { name: 'inventory' });
  const r = await startRouter(`router {\n    mode: standalone\n    id: R\n}\nlistener {\n    host: 127.0.0.1\n    port: 0\n}\n` +
    `connector {\n    name: x\n    host: 127.0.0.1\n    port: ${b.port}\n    role: route-container\n}\n` +
    `linkRoute {\n    prefix: stock\n    direction: in\n    containerId: inventory\n}\nlinkRoute {\n    prefix: stock\n    direction: out\n    containerId: inventory\n}\n` +
    `address {\n    prefix: wp\n    waypoint: yes\n}\nautoLink {\n    address: wp.items\n    direction: out\n    containerId: inventory\n}\nautoLink {\n    address: wp.items\n    direction: in\n    containerId: inventory\n}\n`);
  try {
    await waitFor(() => r.log.filter((l) => /auto-link .*: active/.test(l)).length === 2, 10_000, 'auto-links by containerId');
    const c = await connect(r);
    assert.equal(await sendAll(c, 'stock.a', numbered(2, 's')), ['accepted', 'accepted']);
    assert.equal(await sendAll(c, 'wp.items', numbered(2, 'w')), ['accepted', 'accepted']);
    const rx1 = await receiver(c, 'stock.a');
    const rx2 = await receiver(c, 'wp.items');
    await waitFor(() => rx1.messages.length === 2 && rx2.messages.length === 2, 5000);
    assert.equal([bodies(rx1), bodies(rx2)], [['s0', 's1'], ['w0', 'w1']]);
    await c.close();
  } finally {
    await r.stop();
    await b.stop();
  }
});

test('no broker connected: qd:no-route-to-dest; broker lost: qd:routed-link-lost, and a re-attach reaches the new live broker', async () => {
  const t = await setup();
  try {
    const c = await connect(t.b);
    await routedSender(c, 'orders.probe');
    assert.ok((await sendAll(c, 'orders.keep', numbered(5, 'k'))).every((x) => x === 'accepted'));
    const r = c.conn.open_receiver({ source: { address: 'orders.keep' }, credit_window: 0 } as never);
    await new Promise((resolve) => r.on('receiver_open', resolve));
    const lost: any = new Promise((resolve) => r.on('receiver_close', (ctx: any) => resolve(ctx.receiver.error)));
    await t.m.kill('SIGKILL');
    const e = await lost;
    assert.is(e?.condition, 'qd:routed-link-lost');
    await waitFor(() => t.s.live, 10_000, 'the slave goes live');
    // Re-attach until the router has failed over and the route is back (a refusal closes the link).
    let got: unknown[] = [];
    await waitFor(async () => {
      const rx = await receiver(c, 'orders.keep').catch(() => null);
      if (rx === null) return false;
      let closed = false;
      rx.receiver.on('receiver_close', () => (closed = true));
      await waitFor(() => closed || rx.messages.length === 5, 3000).catch(() => undefined);
      got = bodies(rx);
      return !closed && got.length === 5;
    }, 15_000, 're-attach reaches the new live broker with the 5 messages');
    const again = { messages: got };
    assert.equal(again.messages, ['k0', 'k1', 'k2', 'k3', 'k4']);
    await c.close();
  } finally {
    await t.stop();
  }
  // A router whose broker never answers has no route to offer.
  const dead = await freePort();
  const lone = await startRouter(`router {\n    mode: standalone\n    id: L\n}\nlistener {\n    host: 127.0.0.1\n    port: 0\n}\nconnector {\n    name: gone\n    host: 127.0.0.1\n    port: ${dead}\n    role: route-container\n}\nlinkRoute {\n    prefix: orders\n    direction: in\n    connection: gone\n}\n`);
  try {
    const c = await connect(lone);
    const s = c.conn.open_sender({ target: { address: 'orders.x' } });
    const err: any = await new Promise((resolve) => s.on('sender_close', (ctx: any) => resolve(ctx.sender.error)));
    assert.is(err?.condition, 'qd:no-route-to-dest');
    await c.close();
  } finally {
    await lone.stop();
  }
});

test('transactions through the router: a $coordinator link route carries the coordinator link to the broker (as qdrouterd)', async () => {
  //   proton tx.py --> [R1: linkRoute $coordinator in, txq in/out, connection b] --> [broker B]
  const dataDir = tempDir();
  const port = await freePort();
  const b = await startBroker(brokerConfig(dataDir, { id: 'B', port }), { name: 'B' });
  const routes = ['$coordinator|in', 'txq|in', 'txq|out'].map((x) => x.split('|'))
    .map(([prefix, direction]) => `linkRoute {\n    prefix: ${prefix}\n    direction: ${direction}\n    connection: b\n}\n`).join('');
  const r = await startRouter(`router {\n    mode: standalone\n    id: R1\n}\nlistener {\n    host: 127.0.0.1\n    port: 0\n}\n` +
    `connector {\n    name: b\n    host: 127.0.0.1\n    port: ${port}\n    role: route-container\n}\n${routes}`);
  try {
    const u = `amqp://127.0.0.1:${r.port}`;
    await waitFor(() => r.log.some((l) => /connector b: active/.test(l)), 10_000, 'the route-container connector up');
    const committed = await runProton('tx.py', ['--url', u, '--address', 'txq', '--mode', 'send', '--count', '3']);
    assert.is(committed.result.outcome, 'committed', JSON.stringify(committed.result));
    const rolled = await runProton('tx.py', ['--url', u, '--address', 'txq', '--mode', 'send', '--count', '2', '--rollback']);
    assert.is(rolled.result.outcome, 'aborted', JSON.stringify(rolled.result));
    const rx = await runProton('receive.py', ['--url', `amqp://127.0.0.1:${port}`, '--address', 'txq', '--count', '4', '--timeout', '2']);
    assert.equal(rx.result.messages, ['tx-0', 'tx-1', 'tx-2'], 'the broker holds the committed sends only');
  } finally {
    await r.stop();
    await b.stop();
  }
});

test.run();
