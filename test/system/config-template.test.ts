// One configuration template for the whole mesh (issue 10), with real routers, a real broker and
// rhea clients. linkRoutes and autoLinks may name a `connection` the router has no connector for
// (yet), as in qdrouterd: they load, stay inactive, and activate once a route-container
// connection of that name exists.
//
//   1. [router R] linkRoutes/autoLinks naming pair1, no connector;  SIGHUP adds pair1 --> [broker]
//   2. rhea --> [router B] ==inter-router== [router A] --route-container broker--> [broker]
//      A and B load the same template (linkRoutes, autoLinks, addresses naming "broker"); only A
//      has the connector.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { brokerConfig, startBroker, tempDir } from '../support/broker';
import { startRouter } from '../support/router';
import { waitFor } from '../support/wait';
import { bodies, connect, managementQuery, numbered, receiver, sendAll } from './broker-helpers';

const routes = (connection: string) =>
  `address {\n    prefix: queue\n    waypoint: yes\n}\n` +
  `autoLink {\n    address: queue.orders\n    direction: in\n    connection: ${connection}\n}\nautoLink {\n    address: queue.orders\n    direction: out\n    connection: ${connection}\n}\n` +
  `linkRoute {\n    prefix: orders\n    direction: in\n    connection: ${connection}\n}\nlinkRoute {\n    prefix: orders\n    direction: out\n    connection: ${connection}\n}\n` +
  `log {\n    module: DEFAULT\n    enable: info+\n}\n`;

const standalone = `router {\n    mode: standalone\n    id: R\n}\nlistener {\n    host: 127.0.0.1\n    port: 0\n}\n`;
const pair1 = (port: number) => `connector {\n    name: pair1\n    host: 127.0.0.1\n    port: ${port}\n    role: route-container\n}\n`;

/** Both ends of the waypoint and of the link route, end to end through `port`. */
async function roundTrips(port: number, tag: string): Promise<void> {
  const c = await connect({ port });
  try {
    // The link route: the attach reaches the broker (refused with no-route-to-dest until the mesh knows it).
    await waitFor(async () => {
      const out = await sendAll(c, 'orders.probe', [{ body: 'probe', durable: true }], 3000).catch(() => null);
      return out !== null && out[0] === 'accepted';
    }, 10_000, 'a link route for orders');
    assert.equal(await sendAll(c, 'orders.a', numbered(3, `${tag}-lr`)), ['accepted', 'accepted', 'accepted']);
    const rx1 = await receiver(c, 'orders.a');
    await waitFor(() => rx1.messages.length === 3, 10_000, 'link-routed messages back');
    assert.equal(bodies(rx1), [`${tag}-lr0`, `${tag}-lr1`, `${tag}-lr2`]);
    // The waypoint: phase 0 to the broker through the out auto-link, phase 1 back through the in one.
    const rx2 = await receiver(c, 'queue.orders');
    await waitFor(async () => {
      const out = await sendAll(c, 'queue.orders', [{ body: `${tag}-wp`, durable: true }], 3000).catch(() => null);
      return out !== null && out[0] === 'accepted';
    }, 10_000, 'the waypoint accepts');
    await waitFor(() => bodies(rx2).includes(`${tag}-wp`), 10_000, 'waypoint message back');
  } finally {
    await c.close();
  }
}

test('autoLinks and linkRoutes naming a connector that does not exist: loaded, inactive; a SIGHUP adding it activates them', async () => {
  const b = await startBroker(brokerConfig(tempDir(), { id: 'B1' }), { name: 'b1' });
  const r = await startRouter(standalone + routes('pair1'));
  try {
    await waitFor(() => r.log.filter((l) => /connection "pair1" names no connector or listener of this router/.test(l)).length === 4, 5000, 'four infos');
    assert.ok(r.log.filter((l) => /names no connector or listener of this router/.test(l)).every((l) => /\binfo\b/i.test(l)), r.log.join('\n'));
    const c = await connect(r);
    const autoLinks = await managementQuery(c, 'org.apache.qpid.dispatch.router.config.autoLink');
    assert.equal(autoLinks.map((a) => [a.address, a.direction, a.connection, a.operStatus]), [['queue.orders', 'in', 'pair1', 'inactive'], ['queue.orders', 'out', 'pair1', 'inactive']]);
    const linkRoutes = await managementQuery(c, 'org.apache.qpid.dispatch.router.config.linkRoute');
    assert.equal(linkRoutes.map((l) => [l.prefix, l.connection, l.operStatus]), [['orders', 'pair1', 'inactive'], ['orders', 'pair1', 'inactive']]);
    // No connection yet: the link route has nowhere to go.
    const refused = await sendAll(c, 'orders.x', numbered(1), 3000).then(() => null, (e: Error) => e.message);
    assert.ok(refused !== null && refused.includes('qd:no-route-to-dest'), String(refused));
    // The connector arrives by reload.
    fs.writeFileSync(r.configFile, standalone + routes('pair1') + pair1(b.port));
    r.proc.kill('SIGHUP');
    await waitFor(() => r.log.some((l) => /SIGHUP: configuration reloaded.*route-container connector pair1 added/.test(l)), 5000, 'reloaded');
    await waitFor(() => r.log.filter((l) => /auto-link .*: active/.test(l)).length === 2, 10_000, 'auto-links active');
    await roundTrips(r.port, 'r');
    const after = await managementQuery(c, 'org.apache.qpid.dispatch.router.config.autoLink');
    assert.equal(after.map((a) => a.operStatus), ['active', 'active']);
    const lrAfter = await managementQuery(c, 'org.apache.qpid.dispatch.router.config.linkRoute');
    assert.equal(lrAfter.map((l) => l.operStatus), ['active', 'active']);
    await c.close();
  } finally {
    await r.stop();
    await b.stop();
  }
});

test('one template for a two-router mesh: only A has the "broker" connector; a client on B reaches the broker through the link route and the waypoint', async () => {
  const b = await startBroker(brokerConfig(tempDir(), { id: 'B1' }), { name: 'b1' });
  // Byte for byte the same on both routers, references before the connector they name.
  const template = `listener {\n    host: 127.0.0.1\n    port: 0\n}\n` + routes('broker');
  const a = await startRouter(template +
    `router {\n    mode: interior\n    id: A\n}\nlistener {\n    host: 127.0.0.1\n    port: 0\n    role: inter-router\n}\n` +
    `connector {\n    name: broker\n    host: 127.0.0.1\n    port: ${b.port}\n    role: route-container\n}\n`, { listeners: 2 });
  const rb = await startRouter(template + `router {\n    mode: interior\n    id: B\n}\nconnector {\n    host: 127.0.0.1\n    port: ${a.ports[1]}\n    role: inter-router\n}\n`);
  try {
    assert.ok(fs.readFileSync(a.configFile, 'utf8').startsWith(template) && fs.readFileSync(rb.configFile, 'utf8').startsWith(template));
    await waitFor(() => a.log.filter((l) => /auto-link .*: active/.test(l)).length === 2, 10_000, 'auto-links active on A');
    assert.is(a.log.filter((l) => /names no connector or listener/.test(l)).length, 0, 'A has the connector: no remark');
    assert.is(rb.log.filter((l) => /connection "broker" names no connector or listener of this router/.test(l)).length, 4, rb.log.join('\n'));
    await roundTrips(rb.port, 'b');
  } finally {
    await rb.stop();
    await a.stop();
    await b.stop();
  }
});

test.run();
