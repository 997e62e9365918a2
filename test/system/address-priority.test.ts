// An address's `priority` (qdrouterd's) decides which inter-router data link its messages cross
// the mesh on, whatever their header says; other addresses keep the message's own priority.
//
//   rhea sender (A) --> [A] ==inter-router (10 data links, one per priority)==> [B] --> rhea receiver
//   A: address { prefix: prio, priority: 7 }
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { protonAvailable } from '../support/proton';
import { ask, rows } from '../support/management';
import { RunningRouter, interiorConfig, startRouter } from '../support/router';
import { collect, rheaConnect, url, waitFor } from './helpers';

const T = (s: string) => `org.apache.qpid.dispatch.${s}`;
const router = (id: string, connectTo: number | null) => interiorConfig(id, connectTo, 'address {\n    prefix: prio\n    priority: 7\n}');

test('messages to a priority-7 address cross on the priority-7 data link; others on their own priority (4)', async () => {
  if (!protonAvailable()) return;
  const rs: RunningRouter[] = [];
  try {
    rs.push(await startRouter(router('A', null), { listeners: 2 }));
    rs.push(await startRouter(router('B', rs[0].ports[1]), { listeners: 2 }));
    const rx = await rheaConnect(rs[1]);
    const p = collect(rx.conn.open_receiver('prio.x'));
    const q = collect(rx.conn.open_receiver('plain.x'));
    const tx = await rheaConnect(rs[0]);
    const sp = tx.conn.open_sender('prio.x');
    const sq = tx.conn.open_sender('plain.x');
    await waitFor(() => sp.sendable() && sq.sendable(), 15_000, 'both addresses reachable across the mesh');
    for (let i = 0; i < 5; i++) sp.send({ body: `p${i}` });
    for (let i = 0; i < 3; i++) sq.send({ body: `q${i}` });
    await waitFor(() => p.messages.length === 5 && q.messages.length === 3, 5000, 'all delivered');
    const links = rows((await ask(url(rs[0]), [{ properties: { operation: 'QUERY', name: 'self', type: 'org.amqp.management', entityType: T('router.link'), offset: 0, count: 500 },
      body: { attributeNames: ['linkType', 'linkDir', 'priority', 'deliveryCount'] } }])).replies[0]);
    const out = (pr: number) => links.find((l) => l.linkType === 'inter-router' && l.linkDir === 'out' && l.priority === pr)?.deliveryCount;
    assert.is(out(7), 5, 'the address priority');
    assert.is(out(4), 3, "the message's own (default) priority");
    await tx.close();
    await rx.close();
  } finally {
    for (const r of rs) await r.stop();
  }
});

test.run();
