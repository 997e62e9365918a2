// Meshes of amqp-mesh router processes on 127.0.0.1 (inter-router listeners on port 0; each
// connector is written once its peer listens).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RunningRouter, startRouter } from '../support/router';
import { runProton } from '../support/proton';
import { waitFor } from '../support/wait';

function interior(id: string, connectTo: number[] = [], cost = 1): string {
  return [
    `router {\n    mode: interior\n    id: ${id}\n}`,
    'listener {\n    host: 127.0.0.1\n    port: 0\n}',
    'listener {\n    host: 127.0.0.1\n    port: 0\n    role: inter-router\n}',
    ...connectTo.map((p) => `connector {\n    host: 127.0.0.1\n    port: ${p}\n    role: inter-router\n    cost: ${cost}\n}`),
    'address {\n    prefix: multicast\n    distribution: multicast\n}',
    'address {\n    prefix: closest\n    distribution: closest\n}',
    'log {\n    module: ROUTER_MA\n    enable: debug+\n}',
  ].join('\n') + '\n';
}

/** Boots routers in order; `links[i]` lists the earlier routers router i connects to. */
async function mesh(ids: string[], links: number[][]): Promise<RunningRouter[]> {
  const rs: RunningRouter[] = [];
  for (let i = 0; i < ids.length; i++) {
    rs.push(await startRouter(interior(ids[i], links[i].map((j) => rs[j].ports[1])), { listeners: 2 }));
  }
  return rs;
}

/** Waits until every router has logged a route to every other. */
async function converged(rs: RunningRouter[], ids: string[]): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (let i = 0; i < rs.length; i++) {
    for (const other of ids.filter((x) => x !== ids[i])) {
      while (!rs[i].log.some((l) => l.includes('routes:') && l.includes(`${other} via`))) {
        if (Date.now() > deadline) throw new Error(`${ids[i]} has no route to ${other}:\n${rs[i].log.slice(-20).join('\n')}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }
}

// A line:  [A] <-- [B] <-- [C]     proton receive on A, proton send on C (two hops).
test('far consumer on a line: messages cross two hops and outcomes come back', async () => {
  const ids = ['LA', 'LB', 'LC'];
  const rs = await mesh(ids, [[], [0], [1]]);
  try {
    await converged(rs, ids);
    const recv = runProton('receive.py', ['--url', `amqp://127.0.0.1:${rs[0].port}`, '--address', 'closest.far', '--count', '5', '--timeout', '15']);
    // The receiver's address reaches C by MAU; the sender gets credit only then.
    const sent = await runProton('send.py', ['--url', `amqp://127.0.0.1:${rs[2].port}`, '--address', 'closest.far', '--count', '5', '--timeout', '15']);
    const got = (await recv).result as { received: number };
    assert.is(got.received, 5);
    assert.is((sent.result as { accepted: number }).accepted, 5);
  } finally {
    for (const r of rs) await r.stop();
  }
});

// A triangle:  [A] <-- [B]
//                ^      ^
//                 \-- [C]        a receiver on each router; multicast sent at A: one copy each.
test('multicast in a triangle: every consumer gets every message once', async () => {
  const ids = ['TA', 'TB', 'TC'];
  const rs = await mesh(ids, [[], [0], [0, 1]]);
  try {
    await converged(rs, ids);
    const recvs = rs.map((r) => runProton('receive.py', ['--url', `amqp://127.0.0.1:${r.port}`, '--address', 'multicast.tri', '--count', '0', '--timeout', '8']));
    // Every router must have learned the other two consumers (MAU) before the first send.
    await waitFor(() => rs.every((r) => r.log.filter((l) => l.includes('+[M0multicast.tri')).length >= 2), 10_000, 'consumers advertised');
    const sent = await runProton('send.py', ['--url', `amqp://127.0.0.1:${rs[0].port}`, '--address', 'multicast.tri', '--count', '10', '--timeout', '10']);
    assert.is((sent.result as { accepted: number }).accepted, 10);
    const got = await Promise.all(recvs);
    assert.equal(got.map((g) => (g.result as { received: number }).received), [10, 10, 10]);
  } finally {
    for (const r of rs) await r.stop();
  }
});

test.run();
