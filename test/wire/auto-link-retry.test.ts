// An auto-link the container refuses is attached again (qdrouterd's retry: after 2 s, then every
// 5 s) while its connection stays, and shows `failed` with the container's reason meanwhile.
//
//   R1 <──(listener "services", route-container)── raw service "svc1"
//        autoLink q.retry out, connection services
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Frame, RawClient, amqpError, terminus } from '../support/raw-client';
import { ask, rows } from '../support/management';
import { RunningRouter, startRouter, standaloneConfig } from '../support/router';
import { waitFor } from '../support/wait';

let r: RunningRouter;
const clients: RawClient[] = [];

test.before(async () => {
  r = await startRouter(standaloneConfig(
    'listener {\n    name: services\n    host: 127.0.0.1\n    port: 0\n    role: route-container\n}\n' +
    'autoLink {\n    name: retry-out\n    address: q.retry\n    connection: services\n    direction: out\n}\n',
  ), { listeners: 2 });
});

test.after(async () => {
  for (const c of clients.splice(0)) c.destroy();
  if (r) await r.stop();
});

const autoLinkQuery = {
  properties: { operation: 'QUERY', name: 'self', type: 'org.amqp.management', entityType: 'org.apache.qpid.dispatch.router.config.autoLink', offset: 0, count: 10 },
  body: { attributeNames: ['name', 'operStatus', 'lastError'] },
};

test('refused, the auto-link is failed with the reason, then attached again on the same connection', async () => {
  const svc = await RawClient.open(r.ports[1], { session: true, containerId: 'svc1' });
  clients.push(svc);
  const isAutoLink = (f: Frame) => f.name === 'attach' && f.fields[0] === 'amqp-mesh.autolink.retry-out';
  const first = await svc.waitForFrame(isAutoLink, 5000);
  // The router began a session for it: answer, then refuse the link (null target, detach with an error).
  svc.answerBegin(1, first.channel);
  svc.attach(1, { name: 'amqp-mesh.autolink.retry-out', handle: 0, role: true, source: terminus('source', 'q.retry'), target: null });
  svc.detach(1, 0, true, amqpError('amqp:not-found', 'no queue q.retry yet'));
  const url = `amqp://127.0.0.1:${r.ports[0]}`;
  await waitFor(async () => {
    const row = rows((await ask(url, [autoLinkQuery])).replies[0]).find((x) => x.name === 'retry-out');
    return row?.operStatus === 'failed' && row.lastError === 'no queue q.retry yet';
  }, 3000, 'the auto-link failed, with the container\'s reason');
  const mark = svc.mark;
  const again = await svc.waitForFrame(isAutoLink, 8000, mark);
  assert.is(again.channel, first.channel, 'the same session, the same connection');
  svc.attach(1, { name: 'amqp-mesh.autolink.retry-out', handle: 1, role: true, source: terminus('source', 'q.retry'), target: terminus('target', 'q.retry') });
  await waitFor(async () => rows((await ask(url, [autoLinkQuery])).replies[0]).find((x) => x.name === 'retry-out')?.operStatus === 'active', 3000, 'active after the retry');
});

test('an answer without the node\'s address (what Proton\'s default handler sends): attaching, never used (qdrouterd\'s)', async () => {
  //   [R1] --(auto-link out, answered without a target)--> raw service "svc3"
  for (const c of clients.splice(0)) c.destroy(); // svc1's auto-link is active: only svc3's from here
  const svc = await RawClient.open(r.ports[1], { session: true, containerId: 'svc3' });
  clients.push(svc);
  const first = await svc.waitForFrame((f) => f.name === 'attach' && f.fields[0] === 'amqp-mesh.autolink.retry-out', 5000);
  svc.answerBegin(1, first.channel);
  svc.attach(1, { name: 'amqp-mesh.autolink.retry-out', handle: 0, role: true, source: terminus('source', null), target: terminus('target', null) });
  svc.flow(1, { handle: 0, deliveryCount: 0, linkCredit: 10 });
  const url = `amqp://127.0.0.1:${r.ports[0]}`;
  await waitFor(async () => r.log.some((l) => l.includes('answered without a target address')), 3000, 'the router saw the answer');
  await waitFor(async () => {
    const st = rows((await ask(url, [autoLinkQuery])).replies[0]).filter((x) => x.name === 'retry-out').map((x) => x.operStatus);
    return st.length === 1 && st[0] === 'attaching';
  }, 3000, 'svc3\'s auto-link attaching, and no other');
  const addr = rows((await ask(url, [{ properties: { operation: 'QUERY', name: 'self', type: 'org.amqp.management', entityType: 'org.apache.qpid.dispatch.router.address', offset: 0, count: 50 }, body: { attributeNames: ['name', 'subscriberCount'] } }])).replies[0]).find((x) => x.name === 'M0q.retry');
  assert.is(addr?.subscriberCount ?? 0, 0, 'not a consumer of q.retry');
  svc.detach(1, 0, true);
});

test('deleted before the container answered its attach: the container still gets the detach, and a late answer changes nothing', async () => {
  const svc = await RawClient.open(r.ports[1], { session: true, containerId: 'svc2' });
  clients.push(svc);
  const attach = await svc.waitForFrame((f) => f.name === 'attach' && f.fields[0] === 'amqp-mesh.autolink.retry-out', 5000);
  const mark = svc.mark;
  const url = `amqp://127.0.0.1:${r.ports[0]}`;
  const del = { properties: { operation: 'DELETE', type: 'org.apache.qpid.dispatch.router.config.autoLink', name: 'retry-out' }, body: {} };
  assert.is((await ask(url, [del])).replies[0].statusCode, 204);
  const detach = await svc.waitForFrame((f) => f.name === 'detach' && f.fields[0] === attach.fields[1], 3000, mark);
  assert.is(detach.fields[1], true, 'closed');
  // The answer the container was about to send, then its answer to the detach.
  svc.answerBegin(1, attach.channel);
  svc.attach(1, { name: 'amqp-mesh.autolink.retry-out', handle: 0, role: true, source: terminus('source', 'q.retry'), target: terminus('target', 'q.retry') });
  svc.detach(1, 0, true);
  assert.equal(rows((await ask(url, [autoLinkQuery])).replies[0]).filter((x) => x.name === 'retry-out'), [], 'gone from management');
  assert.not.ok(svc.closed, 'the connection lives on');
});

test.run();
