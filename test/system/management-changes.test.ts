// Management CREATE, UPDATE and DELETE as qdmanage 1.19 sends them (type and name in the
// application properties, the attributes as the body map), from a Proton client, taking effect
// live through the reload path: listeners, address rules, inter-router connectors, and closing a
// connection with adminStatus=deleted.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { protonAvailable, runProton, startProton } from '../support/proton';
import { ask, rows } from '../support/management';
import { freePort } from '../support/broker';
import { RunningRouter, interiorConfig, startRouter } from '../support/router';
import { url, waitFor, withRouter } from './helpers';

const T = (s: string) => `org.apache.qpid.dispatch.${s}`;
const op = (operation: string, props: Record<string, unknown>, body: unknown = {}) => ({ properties: { operation, ...props }, body });
const query = (entityType: string, attributeNames: string[] = []) => op('QUERY', { name: 'self', type: 'org.amqp.management', entityType, offset: 0, count: 500 }, { attributeNames });

/** Whether something accepts TCP connections on `port`. */
function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

test('CREATE a listener: clients connect on it; DELETE it: no more; a second DELETE is 404 with qdrouterd\'s text', async () => {
  if (!protonAvailable()) return;
  //   management client ──> R1:listener 0            R1:listener "extra" (created) <── Proton sender/receiver
  await withRouter(async (r) => {
    const port = await freePort();
    const [created] = (await ask(url(r), [op('CREATE', { type: T('listener'), name: 'extra' }, { host: '127.0.0.1', port: String(port), saslMechanisms: 'ANONYMOUS' })])).replies;
    assert.is(created.statusCode, 201, created.statusDescription);
    assert.equal([created.body.name, created.body.type, created.body.identity, created.body.port], ['extra', T('listener'), `listener/127.0.0.1:${port}:extra`, String(port)]);
    await waitFor(() => canConnect(port), 5000, 'the new listener listens');
    const held = startProton('receive.py', ['--url', `amqp://127.0.0.1:${port}`, '--address', 'closest.x', '--count', '1', '--timeout', '8']);
    await held.ready;
    const tx = await runProton('send.py', ['--url', `amqp://127.0.0.1:${port}`, '--address', 'closest.x', '--count', '1', '--timeout', '8']);
    assert.is(tx.result.accepted, 1);
    assert.is((await held.done).result.received, 1);

    const [deleted, again, listeners] = (await ask(url(r), [
      op('DELETE', { type: T('listener'), name: 'extra' }),
      op('DELETE', { type: T('listener'), name: 'extra' }),
      query(T('listener'), ['name']),
    ])).replies;
    assert.equal([deleted.statusCode, deleted.statusDescription], [204, 'No Content']);
    assert.equal([again.statusCode, again.statusDescription], [404, 'No entity with name=extra']);
    assert.equal(rows(listeners).map((l) => l.name), ['listener/127.0.0.1:0']);
    await waitFor(async () => !(await canConnect(port)), 5000, 'the deleted listener no longer listens');
  });
});

test('CREATE an address pattern (multicast): both receivers get the message; DELETE restores the default; refusals are 400 with the reason', async () => {
  if (!protonAvailable()) return;
  //   Proton sender ──> R1 ──> two Proton receivers on fan.*.out
  await withRouter(async (r) => {
    const [created, bad, both, badType] = (await ask(url(r), [
      op('CREATE', { type: T('router.config.address'), name: 'fan' }, { pattern: 'fan.*.out', distribution: 'multicast' }),
      op('CREATE', { type: T('router.config.address'), name: 'bad' }, { prefix: 'x', distribution: 'sideways' }),
      op('CREATE', { type: T('router.config.linkRoute') }, { prefix: 'abc', containerId: 'id1', connection: 'conn1', direction: 'out' }),
      op('CREATE', { type: T('nosuch'), name: 'nosuch' }),
    ])).replies;
    assert.is(created.statusCode, 201, created.statusDescription);
    assert.equal([created.body.pattern, created.body.distribution, created.body.prefix], ['fan.*.out', 'multicast', null], 'every attribute, null when unset (as qdrouterd)');
    assert.is(bad.statusCode, 400);
    assert.match(bad.statusDescription, /sideways/);
    assert.is(both.statusCode, 400);
    assert.match(both.statusDescription, /^Both connection and containerId cannot be specified/);
    assert.is(badType.statusCode, 400);
    const rx = [1, 2].map(() => startProton('receive.py', ['--url', url(r), '--address', 'fan.a.out', '--count', '1', '--timeout', '8']));
    for (const x of rx) await x.ready;
    const tx = await runProton('send.py', ['--url', url(r), '--address', 'fan.a.out', '--count', '1', '--timeout', '8']);
    assert.is(tx.result.accepted, 1);
    for (const x of rx) assert.is((await x.done).result.received, 1, 'multicast: each receiver has it');
    const [gone, read] = (await ask(url(r), [op('DELETE', { type: T('router.config.address'), name: 'fan' }), op('READ', { type: T('router.config.address'), name: 'fan' })])).replies;
    assert.is(gone.statusCode, 204);
    assert.is(read.statusCode, 404);
  });
});

test('CREATE an inter-router connector: the mesh forms; DELETE it: the other router is unreachable; adminStatus=deleted closes a connection', async () => {
  if (!protonAvailable()) return;
  //   A (no connector) ──(connector created by management)──> B:inter-router listener
  const interior = (id: string) => interiorConfig(id, null);
  const rs: RunningRouter[] = [];
  try {
    rs.push(await startRouter(interior('A'), { listeners: 2 }));
    rs.push(await startRouter(interior('B'), { listeners: 2 }));
    const [a, b] = rs;
    const [c] = (await ask(url(a), [op('CREATE', { type: T('connector'), name: 'toB' }, { host: '127.0.0.1', port: String(b.ports[1]), role: 'inter-router' })])).replies;
    assert.is(c.statusCode, 201, c.statusDescription);
    assert.is(c.body.role, 'inter-router');
    await waitFor(async () => rows((await ask(url(a), [query(T('router.node'), ['id', 'cost'])])).replies[0]).some((n) => n.id === 'B' && n.cost === 1), 15_000, 'A to route to B');
    const [status] = (await ask(url(a), [op('READ', { type: T('connector'), name: 'toB' })])).replies;
    assert.is(status.body.connectionStatus, 'SUCCESS');
    const [d] = (await ask(url(a), [op('DELETE', { type: T('connector'), name: 'toB' })])).replies;
    assert.is(d.statusCode, 204);
    // B is unreachable at once; A keeps B's last link state (and so its router.node row, cost
    // null) until remoteLsMaxAgeSeconds, as qdrouterd does.
    await waitFor(async () => !rows((await ask(url(a), [query(T('router.node'), ['id', 'cost'])])).replies[0]).some((n) => n.id === 'B' && n.cost !== null), 15_000, 'B unreachable from A');

    // A held receiver's connection, closed by an operator. Each ask is a connection of its own:
    // the held one is the normal connection two asks both see.
    // Proton 0.37 reports amqp:connection:forced as a plain disconnect: read its frame trace.
    process.env.PN_TRACE_FRM = '1';
    const held = startProton('receive.py', ['--url', url(a), '--address', 'closest.held', '--count', '1', '--timeout', '8']);
    delete process.env.PN_TRACE_FRM;
    await held.ready;
    const normal = async () => rows((await ask(url(a), [query(T('connection'), ['identity', 'role'])])).replies[0]).filter((x) => x.role === 'normal').map((x) => String(x.identity));
    const first = await normal();
    const heldId = (await normal()).filter((id) => first.includes(id));
    assert.is(heldId.length, 1);
    const [forbidden, closed, after] = (await ask(url(a), [
      op('DELETE', { type: T('connection'), identity: heldId[0] }),
      op('UPDATE', { type: T('connection'), identity: heldId[0] }, { adminStatus: 'deleted' }),
      query(T('connection'), ['identity']),
    ])).replies;
    assert.equal([forbidden.statusCode, forbidden.statusDescription], [403, 'Forbidden']);
    assert.is(closed.statusCode, 200, closed.statusDescription);
    // Gone from management at once (qdrouterd's), even before the client has answered the close.
    assert.not.ok(rows(after).some((x) => String(x.identity) === heldId[0]), 'the closed connection is not listed');
    const done = await held.done;
    assert.is(done.result.received, 0);
    assert.is(done.result.timed_out, false);
    assert.match(done.stderr, /<- @close\(24\) \[error=@error\(29\) \[condition=:"amqp:connection:forced", description="Connection closed by management"/);
  } finally {
    for (const r of rs) await r.stop();
  }
});

test('CREATE a normal connector (qdrouterd\'s default role): the router dials and keeps that connection; DELETE: it goes', async () => {
  if (!protonAvailable()) return;
  //   management client ──> A ──connector "plain" (role normal, created)──> B:listener 0
  const b = await startRouter(interiorConfig('B', null), { listeners: 2 });
  const a = await startRouter(interiorConfig('A', null), { listeners: 2 });
  try {
    const [created] = (await ask(url(a), [op('CREATE', { type: T('connector'), name: 'plain' }, { host: '127.0.0.1', port: String(b.port) })])).replies;
    assert.is(created.statusCode, 201, created.statusDescription);
    const outgoing = async () => rows((await ask(url(a), [query(T('connection'), ['role', 'dir', 'container'])])).replies[0]).filter((c) => c.dir === 'out');
    await waitFor(async () => (await outgoing()).length === 1, 5000, 'A dialled B');
    assert.equal((await outgoing()).map((c) => [c.role, c.container]), [['normal', 'B']]);
    const [status] = (await ask(url(a), [op('READ', { type: T('connector'), name: 'plain' })])).replies;
    assert.is(status.body.connectionStatus, 'SUCCESS');
    const fromA = async () => rows((await ask(url(b), [query(T('connection'), ['role', 'container'])])).replies[0]).filter((c) => c.container === 'A');
    assert.equal((await fromA()).map((c) => c.role), ['normal'], 'B sees a plain client connection, not a router');
    assert.is((await ask(url(a), [op('DELETE', { type: T('connector'), name: 'plain' })])).replies[0].statusCode, 204);
    await waitFor(async () => (await fromA()).length === 0, 5000, 'the connection gone with its connector');
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('UPDATE a log module live: its lines go to the new file at the new level; an unopenable file is refused (500) and nothing changes', async () => {
  if (!protonAvailable()) return;
  //   management client ──> R1 (log/AGENT updated to a file in a temp dir)
  await withRouter(async (r) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amqp-mesh-log-'));
    const file = path.join(dir, 'agent.log');
    const [upd] = (await ask(url(r), [op('UPDATE', { identity: 'log/AGENT' }, { identity: 'log/AGENT', enable: 'trace+', outputFile: file })])).replies;
    assert.is(upd.statusCode, 200, upd.statusDescription);
    assert.equal([upd.body.module, upd.body.enable, upd.body.outputFile], ['AGENT', 'trace+', file]);
    const [bad] = (await ask(url(r), [op('CREATE', { type: 'nosuch', name: 'nosuch' })])).replies;
    assert.is(bad.statusCode, 400);
    const text = fs.readFileSync(file, 'utf8');
    assert.match(text, /AGENT \(debug\) Agent request: operation=CREATE/);
    assert.match(text, /AGENT \(error\) Error performing CREATE: .*nosuch/);
    const [unopenable, read] = (await ask(url(r), [
      op('UPDATE', { identity: 'log/AGENT' }, { outputFile: path.join(dir, 'no', 'such', 'dir.log') }),
      op('READ', { identity: 'log/AGENT' }),
    ])).replies;
    assert.is(unopenable.statusCode, 500);
    assert.match(unopenable.statusDescription, /Failed to open log file/);
    assert.is(read.body.outputFile, file, 'the old setting stays');
    const [errorsOnly] = (await ask(url(r), [op('UPDATE', { identity: 'log/AGENT' }, { enable: 'error+' })])).replies;
    assert.is(errorsOnly.statusCode, 200);
    const before = fs.readFileSync(file, 'utf8').length;
    await ask(url(r), [query(T('router'), ['id'])]);
    assert.is(fs.readFileSync(file, 'utf8').length, before, 'no debug lines at error+');
  });
});

test.run();
