// AMQP management as qdrouterd 1.19's qdstat and qdmanage use it: the exact requests they send
// (recorded with PN_TRACE_FRM=1: correlation-id only, no message-id; offset/count as longs;
// name "self", type org.amqp.management), sent by a Proton client; the replies' status,
// correlation-id, address and columns are checked.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Json, protonAvailable, runProton, startProton } from '../support/proton';
import { ask, rows } from '../support/management';
import { RunningRouter, interiorConfig as interior, startRouter } from '../support/router';
import { sorted, url, waitFor, withRouter } from './helpers';

const T = (s: string) => `org.apache.qpid.dispatch.${s}`;
const NODE = { name: 'self', type: 'org.amqp.management' };
const GET_MGMT_NODES = { properties: { ...NODE, operation: 'GET-MGMT-NODES' }, body: {} };
const query = (entityType: string, attributeNames: string[] = []) => ({ properties: { ...NODE, operation: 'QUERY', entityType, offset: 0, count: 500 }, body: { attributeNames } });

// The columns qdstat 1.19 asks for (tools/qdstat: displayRouterLinks, displayAddresses).
const QDSTAT_L = ['linkType', 'linkDir', 'connectionId', 'identity', 'peer', 'owningAddr', 'capacity', 'undeliveredCount', 'unsettledCount', 'deliveryCount',
  'presettledCount', 'droppedPresettledCount', 'acceptedCount', 'rejectedCount', 'releasedCount', 'modifiedCount', 'deliveriesDelayed1Sec', 'deliveriesDelayed10Sec',
  'deliveriesStuck', 'creditAvailable', 'zeroCreditSeconds', 'adminStatus', 'operStatus', 'linkName', 'priority', 'settleRate'];
const QDSTAT_A = ['distribution', 'inProcess', 'subscriberCount', 'remoteCount', 'containerCount', 'deliveriesIngress', 'deliveriesEgress',
  'deliveriesRedirectedToFallback', 'deliveriesTransit', 'deliveriesToContainer', 'deliveriesFromContainer', 'name', 'priority'];

test('qdstat -g, -c, -l, -a and qdmanage query --type=address / get-mgmt-nodes, as the tools send them, on a standalone router', async () => {
  if (!protonAvailable()) return;
  await withRouter(async (r) => {
    // A consumer on q1 (staying for a second message) and one message to it, so addresses, links
    // and counters have something to show.
    const held = startProton('receive.py', ['--url', url(r), '--address', 'q1', '--count', '2', '--timeout', '8']);
    await held.ready;
    const tx = await runProton('send.py', ['--url', url(r), '--address', 'q1', '--count', '1', '--timeout', '8']);
    assert.is(tx.result.accepted, 1);

    const res = await ask(url(r), [
      GET_MGMT_NODES,
      query(T('router')),
      query(T('connection')),
      query(T('router.link'), QDSTAT_L),
      query(T('router.address'), QDSTAT_A),
      query(T('router.config.address')),
      { properties: { ...NODE, operation: 'QUERY', entityType: T('nope'), offset: 0, count: 500 }, body: { attributeNames: [] } },
      { properties: { ...NODE, operation: 'READ', name: 'nope' }, body: {} },
    ]);
    const [nodes, router, conns, links, addrs, cfg, badType, missing] = res.replies;
    assert.equal([nodes.statusCode, nodes.statusDescription, nodes.body], [200, 'OK', []], 'GET-MGMT-NODES: [] on a standalone router');

    const [g] = rows(router);
    assert.is(g.id, 'R1');
    assert.is(g.mode, 'standalone');
    assert.is(g.connectionCount, 2, 'the held receiver and this client');
    assert.is(g.acceptedDeliveries, 1);
    // q1's message and the two requests so far (GET-MGMT-NODES, this one): requests are client
    // deliveries into the router, counted as qdrouterd counts them.
    assert.is(g.deliveriesIngress, 3);
    // q1's message and the GET-MGMT-NODES reply answered before this query: replies leave on a
    // client link (egress, as qdrouterd counts them); they never count as ingress.
    assert.is(g.deliveriesEgress, 2);
    for (const k of ['version', 'area', 'linkCount', 'nodeCount', 'addrCount', 'linkRouteCount', 'autoLinkCount', 'uptimeSeconds']) assert.ok(k in g, k);

    const c = rows(conns);
    assert.is(c.length, 2);
    for (const x of c) {
      assert.equal([x.role, x.dir, x.protocol, x.opened, x.isEncrypted, x.sasl], ['normal', 'in', 'amqp', true, false, 'ANONYMOUS']);
      assert.match(String(x.host), /^127\.0\.0\.1:\d+$/);
      assert.ok(x.container);
      // Both have had deliveries (the message to q1; the requests): seconds since the last one.
      assert.ok(typeof x.lastDlvSeconds === 'number' && x.lastDlvSeconds >= 0 && x.lastDlvSeconds < 10, String(x.lastDlvSeconds));
    }

    assert.equal(links.body.attributeNames, QDSTAT_L, 'the columns asked, in order');
    const l = rows(links);
    const mgmtIn = l.find((x) => x.owningAddr === 'L$management');
    assert.ok(mgmtIn, 'the $management request link');
    assert.equal([mgmtIn?.linkType, mgmtIn?.linkDir], ['endpoint', 'in']);
    const consumer = l.find((x) => x.owningAddr === 'M0q1');
    assert.equal([consumer?.linkType, consumer?.linkDir, consumer?.capacity], ['endpoint', 'out', 250]);

    assert.equal(addrs.body.attributeNames, QDSTAT_A);
    const q1 = rows(addrs).find((x) => x.name === 'M0q1');
    assert.equal([q1?.distribution, q1?.subscriberCount, q1?.remoteCount, q1?.deliveriesIngress, q1?.deliveriesEgress], ['balanced', 1, 0, 1, 1]);
    assert.ok(rows(addrs).some((x) => String(x.name).startsWith('Ltemp.')), 'the dynamic reply address is local');

    // qdrouterd's core agent's column order, which scripts index (name, identity, type first).
    assert.equal(cfg.body.attributeNames.slice(0, 5), ['name', 'identity', 'type', 'prefix', 'distribution']);
    assert.equal([badType.statusCode, badType.statusDescription], [400, `No such entity type '${T('nope')}'`]);
    assert.equal([missing.statusCode, missing.statusDescription], [404, 'No entity with name=nope']);
    held.kill();
  });
});


test('interior: GET-MGMT-NODES names every router\'s $management (itself too, as qdrouterd); router.node shows the mesh; _topo/0/<self>/$management is the agent too', async () => {
  if (!protonAvailable()) return;
  const rs: RunningRouter[] = [];
  try {
    rs.push(await startRouter(interior('A', null), { listeners: 2 }));
    rs.push(await startRouter(interior('B', rs[0].ports[1]), { listeners: 2 }));
    const deadline = Date.now() + 15_000;
    let res: Json;
    for (;;) {
      res = await ask(url(rs[1]), [GET_MGMT_NODES, query(T('router.node'), ['id', 'nextHop', 'cost', 'linkState', 'address']), query(T('connection'), ['role', 'dir'])]);
      // Converged: B knows A and has A's link state (which names B).
      const known = res.replies[1].body.results as unknown[][];
      if ((known.length === 2 && (known[1][3] as string[]).length > 0) || Date.now() > deadline) break;
      await new Promise((ok) => setTimeout(ok, 200));
    }
    // As qdrouterd 1.19 (checked against it): every router of the mesh, this one first.
    assert.equal(res.replies[0].body, ['amqp:/_topo/0/B/$management', 'amqp:/_topo/0/A/$management']);
    assert.equal(rows(res.replies[1]).map((n) => [n.id, n.nextHop, n.cost, n.address, n.linkState]), [['B', '(self)', null, 'amqp:/_topo/0/B', ['A']], ['A', null, 1, 'amqp:/_topo/0/A', ['B']]]);
    assert.ok(rows(res.replies[2]).some((c) => c.role === 'inter-router' && c.dir === 'out'));
    // qdstat -r B / qdmanage -r B on B itself: the router's own topological management address.
    const own = await ask(url(rs[1]), [query(T('router'), ['id', 'mode', 'nodeCount'])], 'amqp:/_topo/0/B/$management');
    assert.equal(own.replies[0].body.results, [['B', 'interior', 1]]);
  } finally {
    for (const r of rs) await r.stop();
  }
});

test('across the mesh: _topo/0/<router>/$management on any router reaches that router\'s agent (qdstat -r, --all-routers, qdmanage -r); the reply comes back to the dynamic reply-to', async () => {
  if (!protonAvailable()) return;
  const rs: RunningRouter[] = [];
  try {
    // A line: C - B - A (C is two hops from A).
    rs.push(await startRouter(interior('A', null), { listeners: 2 }));
    rs.push(await startRouter(interior('B', rs[0].ports[1]), { listeners: 2 }));
    rs.push(await startRouter(interior('C', rs[1].ports[1]), { listeners: 2 }));
    let nodes: Json;
    await waitFor(async () => {
      nodes = await ask(url(rs[0]), [GET_MGMT_NODES]);
      return nodes.replies[0].body.length === 3;
    }, 15_000, 'A to know B and C');
    assert.equal(sorted(nodes.replies[0].body), ['amqp:/_topo/0/A/$management', 'amqp:/_topo/0/B/$management', 'amqp:/_topo/0/C/$management']);
    // Converged everywhere: B and C each know the two others (A may learn of C before C learns of A).
    for (const id of ['B', 'C']) {
      // Until the router named knows A, its reply has no route back: that ask times out; ask again.
      await waitFor(async () => {
        const r = await runProton('mgmt_request.py', ['--url', url(rs[0]), '--address', `amqp:/_topo/0/${id}/$management`, '--timeout', '3',
          '--requests', JSON.stringify([query(T('router'), ['nodeCount'])])]);
        return r.result.replies?.[0]?.body?.results?.[0]?.[0] === 2;
      }, 20_000, `router ${id} to know the other two`);
    }
    for (const [id, anonymous] of [['B', false], ['C', false], ['B', true], ['C', true]] as const) {
      const res = await ask(url(rs[0]), [
        query(T('router')),
        query(T('router'), ['id', 'mode', 'nodeCount']),
        query(T('router.address'), QDSTAT_A),
        GET_MGMT_NODES,
      ], `amqp:/_topo/0/${id}/$management`, anonymous);
      assert.ok(res.reply_to.startsWith('amqp:/_topo/0/A/temp.'), res.reply_to);
      assert.is(res.accepted, 4);
      assert.is(rows(res.replies[0])[0].id, id, 'answered by the router named');
      assert.equal(res.replies[1].body.results, [[id, 'interior', 2]]);
      const mgmt = rows(res.replies[2]).find((a) => a.name === 'L$management');
      assert.equal([mgmt?.inProcess, mgmt?.subscriberCount], [1, 0], 'the agent: in process, as qdrouterd');
      assert.is(res.replies[3].body[0], `amqp:/_topo/0/${id}/$management`, 'GET-MGMT-NODES from the remote router: itself first');
    }
    // A's own, through the core (an anonymous sender): still A's agent.
    const own = await ask(url(rs[0]), [query(T('router'), ['id'])], 'amqp:/_topo/0/A/$management', true);
    assert.equal(own.replies[0].body.results, [['A']]);
    // A router that is not in the mesh: released, no reply.
    const r = await runProton('mgmt_request.py', ['--url', url(rs[0]), '--address', 'amqp:/_topo/0/Z/$management', '--anonymous',
      '--requests', JSON.stringify([GET_MGMT_NODES]), '--timeout', '2']);
    assert.is(r.result.replies.length, 0);
  } finally {
    for (const r of rs) await r.stop();
  }
});

test('an anonymous sender reaches the agent at $management and _local/$management, which are never advertised to the mesh', async () => {
  if (!protonAvailable()) return;
  //   Proton (anonymous sender, to = $management | _local/$management) ──> R1
  await withRouter(async (r) => {
    for (const address of ['$management', '_local/$management', 'amqp:/_local/$management']) {
      const res = await ask(url(r), [query(T('router'), ['id'])], address, true);
      assert.is(res.accepted, 1, address);
      assert.equal(res.replies[0].body.results, [['R1']], address);
    }
    const addrs = rows((await ask(url(r), [query(T('router.address'), ['name'])])).replies[0]).map((a) => a.name);
    assert.ok(addrs.includes('L$management'), JSON.stringify(addrs));
  });
});

test.run();
