// Live reconfiguration (SIGHUP) of a router: an address moves from one broker to another under
// load without any client noticing.
//
//   rhea producer --> [router R] --route-container b1--> [broker B1]   (queue.orders before)
//   rhea consumer --> [router R] --route-container b2--> [broker B2]   (queue.orders after)
//
// After the move new messages go to B2 while R drains what B1 still holds to the consumer, then
// detaches from B1's queue.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { brokerConfig, startBroker, tempDir } from '../support/broker';
import { startRouter } from '../support/router';
import { waitFor } from '../support/wait';
import { RetryingProducer, assertNoneLost, collectingConsumer, connect } from './broker-helpers';

function routerConfig(p1: number, p2: number, owner: 'b1' | 'b2'): string {
  const auto = (c: string) => `autoLink {\n    address: queue.orders\n    direction: in\n    connection: ${c}\n}\nautoLink {\n    address: queue.orders\n    direction: out\n    connection: ${c}\n}\n`;
  return `router {\n    mode: standalone\n    id: R\n}\nlistener {\n    host: 127.0.0.1\n    port: 0\n}\n` +
    `connector {\n    name: b1\n    host: 127.0.0.1\n    port: ${p1}\n    role: route-container\n}\n` +
    `connector {\n    name: b2\n    host: 127.0.0.1\n    port: ${p2}\n    role: route-container\n}\n` +
    `address {\n    prefix: queue\n    waypoint: yes\n}\n${auto(owner)}`;
}

test('moving queue.orders from broker B1 to B2 under load: nothing accepted is lost, B1 is drained, client links stay up', async () => {
  const b1 = await startBroker(brokerConfig(tempDir(), { id: 'B1' }), { name: 'b1' });
  const b2 = await startBroker(brokerConfig(tempDir(), { id: 'B2' }), { name: 'b2' });
  const r = await startRouter(routerConfig(b1.port, b2.port, 'b1'));
  const events: string[] = [];
  try {
    await waitFor(() => r.log.filter((l) => /auto-link .*: active/.test(l)).length === 2, 10_000, 'auto-links on B1');
    const pc = await connect({ port: r.port });
    const cc = await connect({ port: r.port });
    // A slow consumer, so that B1 still holds messages when the address moves.
    const received = collectingConsumer(cc, 'queue.orders', 20, events);
    const N = 3000;
    const p = new RetryingProducer(pc, 'queue.orders', N, events);
    const accepted = p.accepted;
    await waitFor(() => accepted.size >= 1000, 20_000, '1000 accepted via B1');
    fs.writeFileSync(r.configFile, routerConfig(b1.port, b2.port, 'b2'));
    r.proc.kill('SIGHUP');
    await waitFor(() => r.log.some((l) => /SIGHUP: configuration reloaded/.test(l)), 5000, 'reloaded');
    await waitFor(() => accepted.size === N, 30_000, `all ${N} accepted`);
    await waitFor(() => r.log.some((l) => /auto-link .*: drained; detaching/.test(l)), 30_000, 'B1 drained');
    await waitFor(() => new Set(received).size === N, 30_000, `every accepted message received (have ${new Set(received).size})`);
    assertNoneLost(accepted, received);
    assert.equal(events, [], 'client links never detached');
    // B1 holds nothing any more; B2 got the messages sent after the move.
    // A drained browse of B1's queue: the broker answers the drain at once when it holds nothing.
    const d1 = await connect(b1);
    const left = d1.conn.open_receiver({ source: { address: 'queue.orders', distribution_mode: 'copy' }, credit_window: 0 } as never);
    let leftCount = 0;
    left.on('message', () => leftCount++);
    await new Promise((resolve) => left.on('receiver_open', resolve));
    const drained = new Promise((resolve) => left.on('receiver_drained' as any, resolve));
    left.drain = true;
    (left as any).flow(100);
    await drained;
    assert.is(leftCount, 0, 'B1 holds nothing');
    await d1.close();
    assert.is(r.log.filter((l) => /auto-link .*: active/.test(l)).length, 4, 'auto-links attached on B1, then on B2');
    await pc.close();
    await cc.close();
  } finally {
    await r.stop();
    await b1.stop();
    await b2.stop();
  }
});

test.run();
