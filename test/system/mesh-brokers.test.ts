// Broker pairs behind a mesh booted from a topology file (bootTopology, as `amqp-mesh up`):
//
//   clients --> [B] ---- link B -> A ----> [A] --route-container (failover)--> pair1: pair1.b1 (live)
//                                                                                   pair1.b2 (slave)
//   queue.  : waypoint through pair1 (autoLinks for queue.orders)
//   orders  : link-routed to pair1
//
// Link-routed send/receive/browse/selectors across two hops; a waypointed queue while the live
// broker is killed under load (producer on B, consumer on A, 5,000 persistent messages).
// @runs-alone: a failover pause under 2 s is asserted.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import rhea = require('rhea');
import { parseTopology } from '../../topology/model';
import { bootTopology, RunningTopology } from '../../topology/up';
import { waitFor } from '../support/wait';
import { RetryingProducer, assertNoneLost, bodies, collectingConsumer, connect, numbered, receiver, sendAll, watchConnections } from './broker-helpers';

const TOPOLOGY = `routers:
  A: { port: 0 }
  B: { port: 0 }
links:
  - { from: B, to: A, cost: 1 }
brokerPairs:
  pair1: { router: A, queues: [queue.orders] }
addresses:
  - { prefix: closest, distribution: closest }
  - { prefix: queue., waypoint: pair1 }
  - { prefix: orders, linkRoute: pair1 }
`;

async function boot(): Promise<RunningTopology> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amqp-mesh-mesh-brokers-'));
  const file = path.join(dir, 'topology.yaml');
  fs.writeFileSync(file, TOPOLOGY);
  const t = await bootTopology(parseTopology(TOPOLOGY, file), { runDir: path.join(dir, 'run') });
  const aLog = () => fs.readFileSync(t.router('A').logFile, 'utf8');
  await waitFor(() => (aLog().match(/auto-link .*: active/g) ?? []).length >= 2, 15_000, 'auto-links active on A');
  return t;
}

test('link-routed send, receive, browse, selectors and drain across two hops, from a client on B', async () => {
  const t = await boot();
  try {
    const c = await connect({ port: t.router('B').port });
    await waitFor(async () => (await sendAll(c, 'orders.probe', [{ body: 'p', durable: true }], 3000).catch(() => ['none']))[0] === 'accepted', 15_000, 'the link route is known on B');
    const out = await sendAll(c, 'orders.eu', numbered(6, 'e', (i) => ({ application_properties: { region: i % 2 ? 'north' : 'south' } })));
    assert.equal(out, new Array(6).fill('accepted'));
    const browser = await receiver(c, { address: 'orders.eu', distribution_mode: 'copy' } as never);
    await waitFor(() => browser.messages.length === 6, 5000, 'browse');
    const north = await receiver(c, { address: 'orders.eu', filter: rhea.filter.selector("region = 'north'") } as never);
    await waitFor(() => north.messages.length === 3, 5000, 'selector at the broker');
    assert.equal(bodies(north), ['e1', 'e3', 'e5']);
    const rest = await receiver(c, 'orders.eu');
    await waitFor(() => rest.messages.length === 3, 5000);
    assert.equal(bodies(rest), ['e0', 'e2', 'e4']);
    // Drain end to end: the broker answers it through both routers, after what it holds.
    await rest.close();
    assert.equal(await sendAll(c, 'orders.drain', numbered(2, 'd')), ['accepted', 'accepted']);
    const dr = c.conn.open_receiver({ source: { address: 'orders.drain' }, credit_window: 0, autoaccept: true } as never);
    const got: unknown[] = [];
    dr.on('message', (ctx) => got.push(ctx.message.body));
    await new Promise((resolve) => dr.on('receiver_open', resolve));
    const drained = new Promise((resolve) => dr.on('receiver_drained' as any, resolve));
    dr.drain = true;
    (dr as any).flow(10);
    await drained;
    assert.equal(got, ['d0', 'd1'], 'the held messages, then the drain answer');
    await c.close();
  } finally {
    await t.stop();
  }
});

test('a waypointed queue while the live broker is killed: producer on B, consumer on A, 5,000 persistent messages; none accepted lost; client links never detached; pause < 2 s', async () => {
  const t = await boot();
  const events: string[] = [];
  try {
    const pc = await connect({ port: t.router('B').port });
    const cc = await connect({ port: t.router('A').port });
    watchConnections([['producer', pc], ['consumer', cc]], events);
    const received = collectingConsumer(cc, 'queue.orders', 200, events);
    const N = 5000;
    const p = new RetryingProducer(pc, 'queue.orders', N, events);
    await waitFor(() => p.accepted.size >= 1500, 30_000, '1500 accepted through the first live broker');
    const live = t.liveBroker('pair1');
    assert.ok(live, 'a live broker');
    const other = t.components.find((c) => c.kind === 'broker' && c.pair === 'pair1' && c !== live)!;
    p.measure();
    process.kill(live!.pid, 'SIGKILL');
    await waitFor(() => other.state === 'live', 10_000, 'the slave goes live');
    await waitFor(() => p.done, 60_000, `all ${N} accepted (have ${p.accepted.size})`);
    await waitFor(() => new Set(received).size === N, 30_000, `every message received (have ${new Set(received).size})`);
    const duplicates = assertNoneLost(p.accepted, received);
    assert.equal(events, [], 'client links and connections stayed up');
    process.stdout.write(`  topology failover: client-visible pause ${p.maxGap.toFixed(0)} ms; ${p.resent} resent; ${duplicates} duplicates\n`);
    assert.ok(p.maxGap < 2000, `pause ${p.maxGap.toFixed(0)} ms`);
    await pc.close();
    await cc.close();
  } finally {
    await t.stop();
  }
});

test.run();
