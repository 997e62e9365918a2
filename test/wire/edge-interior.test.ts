// The interior side of qdrouterd's edge protocol, driven by a raw client playing a qdrouterd edge
// router on an edge listener (frames as qdrouterd 1.19's edge sends them).
//
//   raw "edge" E1 ==(listener role edge)==> [R1 interior] <== raw client (consumer of closest.t)
//        linkRoute prefix lr, direction in, containerId broker (no broker connected)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RawClient } from '../support/raw-client';
import { RunningRouter, startRouter } from '../support/router';
import { attachReply, openReceiver, openSender, waitCredit } from './helpers';
import { Reader, Writer, Described } from '../../amqp/codec';
import { D } from '../../amqp/performatives';
import { decodeEdgeTracking } from '../../router/protocol/edge-protocol';

let r: RunningRouter;
const clients: RawClient[] = [];

test.before(async () => {
  r = await startRouter([
    'router {\n    mode: interior\n    id: R1\n}',
    'listener {\n    host: 127.0.0.1\n    port: 0\n}',
    'listener {\n    host: 127.0.0.1\n    port: 0\n    role: edge\n}',
    'linkRoute {\n    prefix: lr\n    direction: in\n    containerId: broker\n}',
  ].join('\n') + '\n', { listeners: 2 });
});

test.after(async () => {
  for (const c of clients.splice(0)) c.destroy();
  if (r) await r.stop();
});

/** A lookup request as qdrouterd's edge composes it (address_lookup_utils.c). */
function lookupRequest(address: string, receiver: boolean, replyTo: string, cid: string, version = 1): Buffer {
  const w = new Writer(256);
  w.descriptor(D.Properties);
  w.value([null, null, null, null, replyTo, cid]);
  w.descriptor(D.ApplicationProperties);
  w.value(new Map<string, unknown>([['version', version], ['opcode', 1]]));
  w.descriptor(D.AmqpValue);
  w.value([address, receiver]);
  return w.take();
}

/** The sections of a message the router sent, decoded. */
function sections(payload: Buffer): Map<number, unknown> {
  const out = new Map<number, unknown>();
  const r = new Reader(payload);
  while (r.off < payload.length) {
    const v = r.read();
    if (v instanceof Described) out.set(Number(v.descriptor), v.value);
  }
  return out;
}

test('link-route lookups are answered as qdrouterd\'s address_lookup_server does; a bad one is rejected', async () => {
  const edge = await RawClient.open(r.ports[1], { session: true, containerId: 'E1' });
  clients.push(edge);
  // Replies go to a consumer of "lookup.replies" on the same connection.
  const rxHandle = await openReceiver(edge, 0, 0, 'replies', 'lookup.replies', 10);
  edge.attachSender(0, 1, 'lookup', '_$qd.addr_lookup');
  await attachReply(edge, 'lookup');
  await waitCredit(edge, 0, 1);
  const cases: [string, boolean, unknown[]][] = [
    ['lr.q1', true, [true, false]], // link-routed (in), no container connected
    ['lr.q1', false, [false, false]], // the route is only for senders
    ['closest.t', true, [false, false]],
  ];
  for (const [i, [address, receiver, want]] of cases.entries()) {
    const since = edge.mark;
    edge.sendMessage(0, 1, lookupRequest(address, receiver, 'lookup.replies', `cid-${i}`));
    const t = await edge.waitForFrame((f) => f.name === 'transfer' && f.fields[0] === rxHandle, 3000, since);
    const s = sections(t.payload);
    const props = s.get(D.Properties) as unknown[];
    assert.equal([props[2], props[5]], ['lookup.replies', `cid-${i}`], 'to = reply-to, the correlation-id');
    const app = s.get(D.ApplicationProperties) as Map<unknown, unknown> | Record<string, unknown>;
    const get = (k: string) => (app instanceof Map ? app.get(k) : app[k]);
    assert.equal([get('version'), get('opcode'), get('status')], [1, 1, want[0] ? 0 : 3], `${address} ${receiver}: status OK / NOT_FOUND`);
    assert.equal(s.get(D.AmqpValue), want, `${address} ${receiver}: [is-link-route, has-destinations]`);
  }
  const since = edge.mark;
  const id = edge.sendMessage(0, 1, lookupRequest('lr.q1', true, 'lookup.replies', 'cid-bad', 7));
  const d = await edge.waitForFrame((f) => f.name === 'disposition' && f.fields[1] === id, 3000, since);
  assert.is((d.fields[4] as Described).descriptor, D.Rejected as unknown as number);
  assert.not.ok(edge.closed, 'the edge connection lives on');
});

test('address tracking: the interior tells an edge\'s sender whether its address has consumers beyond that edge', async () => {
  const edge = await RawClient.open(r.ports[1], { session: true, containerId: 'E2' });
  clients.push(edge);
  const trk = await openReceiver(edge, 0, 0, 'tracking', '_$qd.edge_addr_tracking', 32);
  // The edge's proxy sender for closest.t (a client of the edge sends there).
  await openSender(edge, 0, 1, 'proxy-out', 'closest.t');
  const first = await edge.waitForFrame((f) => f.name === 'transfer' && f.fields[0] === trk, 3000);
  assert.equal(decodeEdgeTracking(first.payload), { key: 'M0closest.t', present: false });
  // A consumer appears on the interior: destinations now.
  const since = edge.mark;
  const client = await RawClient.open(r.ports[0], { session: true });
  clients.push(client);
  await openReceiver(client, 0, 0, 'c', 'closest.t', 5);
  const next = await edge.waitForFrame((f) => f.name === 'transfer' && f.fields[0] === trk, 3000, since);
  assert.equal(decodeEdgeTracking(next.payload), { key: 'M0closest.t', present: true });
  assert.equal(next.fields[4], true, 'pre-settled, as qdrouterd sends them');
});

test.run();
