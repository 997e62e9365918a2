// Edge routers (qdrouterd's router mode `edge`): amqp-mesh router processes on 127.0.0.1, Proton
// clients. Each edge has one uplink, an edge connector to an interior router's edge listener.
//
//   [EA edge] ==edge==> [IA interior] <==inter-router== [IB interior] <==edge== [EB edge]
//
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RunningRouter, startRouter } from '../support/router';
import { runProton, startProton } from '../support/proton';
import { ask, rows } from '../support/management';
import { waitFor } from '../support/wait';
import { range, rheaConnect } from './helpers';
import { brokerConfig, startBroker, tempDir } from '../support/broker';
import { bodies, connect, numbered, receiver, sendAll } from './broker-helpers';

const ADDRESSES = ['multicast', 'closest', 'balanced'].map((p) => `address {\n    prefix: ${p}\n    distribution: ${p}\n}`).join('\n');

/** An interior router: client, inter-router and edge listeners (port 0, in that order). */
function interior(id: string, connectTo: number | null): string {
  return [
    `router {\n    mode: interior\n    id: ${id}\n}`,
    'listener {\n    host: 127.0.0.1\n    port: 0\n}',
    'listener {\n    host: 127.0.0.1\n    port: 0\n    role: inter-router\n}',
    'listener {\n    host: 127.0.0.1\n    port: 0\n    role: edge\n}',
    connectTo === null ? '' : `connector {\n    host: 127.0.0.1\n    port: ${connectTo}\n    role: inter-router\n}`,
    ADDRESSES,
  ].join('\n') + '\n';
}

/** An edge router: a client listener and an edge connector to `uplink`. */
function edge(id: string, uplink: number): string {
  return [
    `router {\n    mode: edge\n    id: ${id}\n}`,
    'listener {\n    host: 127.0.0.1\n    port: 0\n}',
    `connector {\n    name: uplink\n    host: 127.0.0.1\n    port: ${uplink}\n    role: edge\n}`,
    ADDRESSES,
  ].join('\n') + '\n';
}

const T = (s: string) => `org.apache.qpid.dispatch.${s}`;
const query = (entityType: string) => ({ properties: { operation: 'QUERY', entityType, type: 'org.amqp.management', name: 'self' }, body: { attributeNames: [] } });
const u = (r: RunningRouter) => `amqp://127.0.0.1:${r.port}`;

interface Net {
  ia: RunningRouter;
  ib: RunningRouter;
  ea: RunningRouter;
  eb: RunningRouter;
  all: RunningRouter[];
}

async function withNet(f: (n: Net) => Promise<void>): Promise<void> {
  const ia = await startRouter(interior('IA', null), { listeners: 3 });
  const started: RunningRouter[] = [ia];
  try {
    const ib = await startRouter(interior('IB', ia.ports[1]), { listeners: 3 });
    started.push(ib);
    const ea = await startRouter(edge('EA', ia.ports[2]));
    started.push(ea);
    const eb = await startRouter(edge('EB', ib.ports[2]));
    started.push(eb);
    await waitFor(() => ea.log.some((l) => l.includes('edge: active edge connection')) && eb.log.some((l) => l.includes('edge: active edge connection')), 10_000, 'edges to connect');
    await waitFor(() => ia.log.some((l) => l.includes('routes:') && l.includes('IB via')) && ib.log.some((l) => l.includes('routes:') && l.includes('IA via')), 15_000, 'the mesh');
    await f({ ia, ib, ea, eb, all: started });
  } finally {
    for (const r of started.reverse()) await r.stop();
  }
}

/** Address `name`'s subscriberCount on router `r` (0 when it has none). */
async function subscribers(r: RunningRouter, name: string): Promise<number> {
  const res = await ask(u(r), [query(T('router.address'))]);
  const row = rows(res.replies[0]).find((x) => x.name === `M0${name}`);
  return row === undefined ? 0 : Number(row.subscriberCount);
}

test('anycast from one edge to a consumer on another edge, two interior routers between', async () => {
  // proton send --> [EA] --> [IA] --> [IB] --> [EB] --> proton receive
  await withNet(async ({ ea, eb }) => {
    const rx = startProton('receive.py', ['--url', u(eb), '--address', 'closest.e1', '--count', '5', '--timeout', '15']);
    await rx.ready;
    // EA's sender waits for credit: EA's proxy sender gets it once IA learns of EB's consumer.
    const tx = await runProton('send.py', ['--url', u(ea), '--address', 'closest.e1', '--count', '5', '--timeout', '15']);
    assert.is(tx.code, 0, tx.stderr);
    assert.is(tx.result.accepted, 5, 'the consumer\'s outcomes come back through both interior routers');
    const got = await rx.done;
    assert.equal(got.result.messages, range(5, (i) => `message-${i}`));
  });
});

test('multicast: one copy for every consumer on every router, none echoed back to an edge', async () => {
  // proton send --> [EA] --> [IA] --> [IB] --> [EB]
  //                   |        |        |        |
  //                  rx x2    rx x1    rx x1    rx x2
  await withNet(async ({ ea, ia, ib, eb }) => {
    const N = 10;
    const where = [ea, ea, ia, ib, eb, eb];
    const rxs = where.map((r) => startProton('receive.py', ['--url', u(r), '--address', 'multicast.e2', '--count', String(N), '--timeout', '15']));
    await Promise.all(rxs.map((p) => p.ready));
    // The edges' consumers reach the interiors (a proxy consumer each), and IB's reach IA.
    await waitFor(async () => (await subscribers(ia, 'multicast.e2')) >= 2 && (await subscribers(ib, 'multicast.e2')) >= 2, 10_000, 'proxies on IA and IB');
    // A sender on EA makes EA proxy it; EA sends upward once IA says there are destinations (the
    // proxy sender then counts among EA's subscribers). Before that EA's own consumers would get
    // the messages alone, as on qdrouterd: hold a sender open until the proxy is bound.
    const primer = await rheaConnect({ port: ea.port });
    let tx;
    try {
      primer.conn.open_sender({ target: { address: 'multicast.e2' } });
      await waitFor(async () => (await subscribers(ea, 'multicast.e2')) >= 3, 10_000, 'EA\'s proxy sender bound');
      tx = await runProton('send.py', ['--url', u(ea), '--address', 'multicast.e2', '--count', String(N), '--timeout', '15']);
    } finally {
      await primer.close();
    }
    assert.is(tx.code, 0, tx.stderr);
    assert.is(tx.result.accepted, N);
    for (const [i, p] of rxs.entries()) {
      const d = await p.done;
      assert.equal(d.result.messages, range(N, (k) => `message-${k}`), `receiver ${i}: each message once, in order`);
    }
  });
});

test('a sender on an edge gets credit only while the address has a consumer somewhere', async () => {
  // proton send (anonymous) --> [EA] --> (nobody) : released; then proton receive on [EB]
  await withNet(async ({ ea, eb }) => {
    const none = await runProton('send.py', ['--url', u(ea), '--address', 'multicast.none', '--anonymous', '--count', '3', '--timeout', '10']);
    assert.is(none.result.released, 3, 'an anonymous sender is not blocked; no consumer anywhere: released');
    const rx = startProton('receive.py', ['--url', u(eb), '--address', 'closest.late', '--count', '2', '--timeout', '15']);
    await rx.ready;
    const tx = await runProton('send.py', ['--url', u(ea), '--address', 'closest.late', '--count', '2', '--timeout', '15']);
    assert.is(tx.result.accepted, 2);
    assert.is((await rx.done).result.received, 2);
  });
});

test('request/reply from an edge: the dynamic reply address is _edge/<id>/..., routed back down from any interior', async () => {
  // proton request_reply --> [EA] --> [IA] --> [IB] --> responder on IB ; replies to _edge/EA/... back the same way
  await withNet(async ({ ea, ib }) => {
    const resp = startProton('responder.py', ['--url', u(ib), '--address', 'closest.svc', '--count', '3', '--timeout', '15']);
    await resp.ready;
    const rr = await runProton('request_reply.py', ['--url', u(ea), '--address', 'closest.svc', '--count', '3', '--timeout', '15']);
    assert.is(rr.code, 0, rr.stderr);
    assert.match(rr.result.reply_to, /^amqp:\/_edge\/EA\/temp\./);
    assert.is(rr.result.matched, 3);
  });
});

test('3-ack multicast across edges: outcomes reach the sender unsettled, its settle reaches every consumer', async () => {
  // proton send --> [EA] --> [IA] --> [IB] --> [EB] --> proton receive --rcv-settle-second
  //                            \--> proton receive --rcv-settle-second --outcome release
  await withNet(async ({ ea, ia, eb }) => {
    const N = 6;
    const rxs = [
      startProton('receive.py', ['--url', u(eb), '--address', 'multicast.3ack', '--count', String(N), '--rcv-settle-second', '--timeout', '15']),
      startProton('receive.py', ['--url', u(ia), '--address', 'multicast.3ack', '--count', String(N), '--rcv-settle-second', '--outcome', 'release', '--timeout', '15']),
    ];
    await Promise.all(rxs.map((p) => p.ready));
    await waitFor(async () => (await subscribers(ia, 'multicast.3ack')) >= 1 && (await subscribers(eb, 'multicast.3ack')) >= 1, 10_000, 'consumers known');
    await waitFor(async () => {
      const res = await ask(u(ia), [query(T('router.address'))]);
      const row = rows(res.replies[0]).find((x) => x.name === 'M0multicast.3ack');
      return row !== undefined && Number(row.remoteCount) >= 1;
    }, 10_000, 'IA learns of EB\'s consumer through IB');
    const tx = await runProton('send.py', ['--url', u(ea), '--address', 'multicast.3ack', '--count', String(N), '--timeout', '15']);
    assert.equal([tx.result.accepted, tx.result.outcome_unsettled_by_peer], [N, N], 'accepted beats released; unsettled until the sender settles');
    for (const p of rxs) {
      const d = await p.done;
      assert.is(d.result.timed_out, false);
      assert.is(d.result.settled_by_sender, N, 'the sender\'s settle travelled back through every router');
    }
  });
});

test('an edge with two uplinks: when the active interior goes, the other takes over', async () => {
  //   [EC edge] ==edge==> [IA]   (active, then stopped)
  //             ==edge==> [IB]   (takes over) <-- proton receive
  await withNet(async ({ ia, ib }) => {
    const ec = await startRouter([
      'router {\n    mode: edge\n    id: EC\n}',
      'listener {\n    host: 127.0.0.1\n    port: 0\n}',
      `connector {\n    name: up-a\n    host: 127.0.0.1\n    port: ${ia.ports[2]}\n    role: edge\n}`,
      `connector {\n    name: up-b\n    host: 127.0.0.1\n    port: ${ib.ports[2]}\n    role: edge\n}`,
      ADDRESSES,
    ].join('\n') + '\n');
    try {
      await waitFor(() => ec.log.some((l) => l.includes('edge: active edge connection')), 10_000, 'an active uplink');
      const first = ec.log.find((l) => l.includes('edge: active edge connection')) ?? '';
      const other = first.includes('container IA') ? ib : ia;
      const gone = other === ib ? ia : ib;
      await gone.stop();
      await waitFor(() => ec.log.filter((l) => l.includes('edge: active edge connection')).length >= 2, 10_000, 'the other uplink to take over');
      const rx = startProton('receive.py', ['--url', u(other), '--address', 'closest.failover', '--count', '3', '--timeout', '15']);
      await rx.ready;
      const tx = await runProton('send.py', ['--url', u(ec), '--address', 'closest.failover', '--count', '3', '--timeout', '15']);
      assert.is(tx.result.accepted, 3, 'through the remaining uplink');
      assert.is((await rx.done).result.received, 3);
    } finally {
      await ec.stop();
    }
  });
});

test('a broker behind an edge: its link routes are proxied to the interior and reach it from across the mesh', async () => {
  //   rhea on IB --> [IB] --> [IA] --(proxy: connection-scoped link route)--> [ED edge] --route-container--> broker "stock"
  await withNet(async ({ ia, ib }) => {
    const b = await startBroker(brokerConfig(tempDir(), { id: 'stock' }), { name: 'stock' });
    const ed = await startRouter([
      'router {\n    mode: edge\n    id: ED\n}',
      'listener {\n    host: 127.0.0.1\n    port: 0\n}',
      `connector {\n    name: up\n    host: 127.0.0.1\n    port: ${ia.ports[2]}\n    role: edge\n}`,
      `connector {\n    name: broker\n    host: 127.0.0.1\n    port: ${b.port}\n    role: route-container\n}`,
      'linkRoute {\n    prefix: stock\n    direction: in\n    connection: broker\n}',
      'linkRoute {\n    prefix: stock\n    direction: out\n    connection: broker\n}',
    ].join('\n') + '\n');
    try {
      await waitFor(() => ed.log.filter((l) => /link route proxy CREATE .*: 201/.test(l)).length === 2, 10_000, 'both proxies made on IA');
      // IA shows them as its edge connection's routes; IB learns them from IA.
      const c = await connect({ port: ib.port });
      try {
        await waitFor(async () => (await sendAll(c, 'stock.probe', [{ body: 'p' }], 2000).catch(() => ['none']))[0] === 'accepted', 15_000, 'the route known on IB');
        assert.equal(await sendAll(c, 'stock.items', numbered(3, 's')), ['accepted', 'accepted', 'accepted']);
        const rx = await receiver(c, 'stock.items');
        await waitFor(() => rx.messages.length === 3, 5000, 'the broker\'s messages back through the edge');
        assert.equal(bodies(rx), ['s0', 's1', 's2']);
      } finally {
        await c.close();
      }
      // The broker goes: the edge withdraws the proxies.
      await b.stop();
      await waitFor(() => ed.log.filter((l) => /link route proxy DELETE .*: 204/.test(l)).length === 2, 10_000, 'both proxies dropped');
    } finally {
      await ed.stop();
      await b.stop();
    }
  });
});

test('a client on an edge reaches a broker behind an interior: the edge asks its interior (qdrouterd\'s address lookup) and relays the attach up', async () => {
  //   rhea on EC --> [EC edge: linkRoute template naming no connection of its own] --lookup, relay--> [IA] --> [IB] --route-container--> broker "stock"
  await withNet(async ({ ia, ib }) => {
    const b = await startBroker(brokerConfig(tempDir(), { id: 'stock' }), { name: 'stock' });
    const made = (await ask(u(ib), [
      { properties: { operation: 'CREATE', type: T('connector'), name: 'broker' }, body: { host: '127.0.0.1', port: String(b.port), role: 'route-container' } },
      { properties: { operation: 'CREATE', type: T('router.config.linkRoute'), name: 'stock-in' }, body: { prefix: 'stock', direction: 'in', connection: 'broker' } },
      { properties: { operation: 'CREATE', type: T('router.config.linkRoute'), name: 'stock-out' }, body: { prefix: 'stock', direction: 'out', connection: 'broker' } },
    ])).replies;
    assert.equal(made.map((r: { statusCode: number }) => r.statusCode), [201, 201, 201]);
    const ec = await startRouter([
      'router {\n    mode: edge\n    id: EC\n}',
      'listener {\n    host: 127.0.0.1\n    port: 0\n}',
      `connector {\n    name: up\n    host: 127.0.0.1\n    port: ${ia.ports[2]}\n    role: edge\n}`,
      // A template shared by the mesh: the route is this edge's too, but its connection is not here.
      'linkRoute {\n    prefix: stock\n    direction: in\n    connection: broker\n}',
      'linkRoute {\n    prefix: stock\n    direction: out\n    connection: broker\n}',
    ].join('\n') + '\n');
    try {
      await waitFor(() => ec.log.some((l) => l.includes('edge: active edge connection')), 10_000, 'EC to connect');
      const c = await connect({ port: ec.port });
      try {
        // Until IA has learnt IB's route, the lookup says "no destinations" (refused): retried.
        await waitFor(async () => (await sendAll(c, 'stock.probe', [{ body: 'p' }], 2000).catch(() => ['none']))[0] === 'accepted', 15_000, 'the route reached from EC');
        assert.equal(await sendAll(c, 'stock.items', numbered(3, 'e')), ['accepted', 'accepted', 'accepted']);
        const rx = await receiver(c, 'stock.items');
        await waitFor(() => rx.messages.length === 3, 5000, 'the broker\'s messages down to the edge');
        assert.equal(bodies(rx), ['e0', 'e1', 'e2']);
      } finally {
        await c.close();
      }
    } finally {
      await ec.stop();
      await b.stop();
    }
  });
});

test('management: the edge reports mode edge and its uplink; the interior lists the edge connection', async () => {
  await withNet(async ({ ea, ia }) => {
    const [router, conns] = (await ask(u(ea), [query(T('router')), query(T('connection'))])).replies;
    assert.is(rows(router)[0].mode, 'edge');
    const up = rows(conns).find((c) => c.role === 'edge');
    assert.ok(up, 'the uplink is listed');
    assert.is(up!.dir, 'out');
    assert.is(up!.container, 'IA');
    const [iconns] = (await ask(u(ia), [query(T('connection'))])).replies;
    const down = rows(iconns).find((c) => c.role === 'edge');
    assert.equal([down?.dir, down?.container], ['in', 'EA']);
    const [ilinks] = (await ask(u(ia), [query(T('router.link'))])).replies;
    const downlink = rows(ilinks).find((l) => l.linkType === 'edge-downlink');
    assert.equal([downlink?.linkDir, downlink?.owningAddr], ['out', 'HEA'], 'qdrouterd\'s linkType and address name for the downlink');
    // The edge's agent from the interior, through the downlink (qdstat --edge-router's address).
    const [remote] = (await ask(u(ia), [query(T('router'))], '_edge/EA/$management')).replies;
    assert.equal([rows(remote)[0].id, rows(remote)[0].mode], ['EA', 'edge']);
    // qdrouterd's refusal, over management: no inter-router connector on an edge router.
    const [bad] = (await ask(u(ea), [{ properties: { operation: 'CREATE', type: T('connector'), name: 'x' }, body: { host: '127.0.0.1', port: '1', role: 'inter-router' } }])).replies;
    assert.equal([bad.statusCode, bad.statusDescription], [400, "role='inter-router' only allowed with router mode='interior'"]);
  });
});

test.run();
