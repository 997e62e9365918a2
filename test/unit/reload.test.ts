// The typed reload diff of a router (pure): what a SIGHUP changes, from old and new settings.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { computeReloadDiff } from '../../router/reload';
import type { ConnectorSettings, RouterSettings } from '../../router/io/server';
import type { RouteContainerSettings } from '../../router/io/route-container';

const conn = (name: string, port: number, cost = 1): ConnectorSettings => ({
  role: 'inter-router', name, host: '127.0.0.1', port, cost, maxFrameSize: 16384, idleTimeoutSeconds: 16, sasl: { mechanism: 'ANONYMOUS' },
});
const rc = (name: string, port: number, autoLinks: RouteContainerSettings['autoLinks'] = []): RouteContainerSettings => ({
  name, host: '127.0.0.1', port, failoverUrls: [], maxFrameSize: 16384, idleTimeoutSeconds: 16, linkCapacity: 250, sasl: { mechanism: 'ANONYMOUS' }, autoLinks,
});
const settings = (over: Partial<RouterSettings>): RouterSettings => ({
  id: 'A', mode: 'interior', listeners: [], addresses: [], maxMessageSize: 1 << 26, maxAddressLength: 4096, ...over,
});

test('connectors: a cost change is a removal and an addition; the unchanged are kept as they were', () => {
  const a = conn('toB', 1000), b = conn('toC', 2000);
  const diff = computeReloadDiff(settings({ connectors: [a, b] }), settings({ connectors: [conn('toB', 1000), conn('toC', 2000, 5), conn('toD', 3000)] }), []);
  assert.equal(diff.connectorsKept, [a]);
  assert.equal(diff.connectorsRemoved, [b]);
  assert.equal(diff.connectorsAdded.map((c) => `${c.name}/${c.cost}`), ['toC/5', 'toD/1']);
  assert.equal(diff.needRestart, []);
});

test('route-container connectors: same endpoint keeps the connection and takes the new auto-links', () => {
  const old1 = rc('pair1', 61616), old2 = rc('pair2', 61617);
  const al = [{ name: 'q', address: 'queue.q', direction: 'in' as const, phase: 1 }];
  const next1 = rc('pair1', 61616, al), next3 = rc('pair3', 61618);
  const diff = computeReloadDiff(settings({ routeContainers: [old1, old2] }), settings({ routeContainers: [next1, next3] }), [old1, old2]);
  assert.equal(diff.routeContainersKept, [{ old: old1, next: next1 }]);
  assert.equal(diff.routeContainersRemoved, [old2]);
  assert.equal(diff.routeContainersAdded, [next3]);
});

test('id and mode changes are reported as needing a restart; a changed listener is removed and added', () => {
  const l = { name: 'l', host: '0.0.0.0', port: 5672, maxFrameSize: 16384, maxSessions: 32768, idleTimeoutSeconds: 16, linkCapacity: 250, saslMechanisms: [], authenticatePeer: false, stripAnnotations: 'both' as const };
  const kept = { ...l, name: 'k', port: 5674 };
  const moved = { ...l, port: 5673 };
  const diff = computeReloadDiff(settings({ listeners: [l, kept] }), settings({ id: 'B', listeners: [kept, moved] }), []);
  assert.equal(diff.needRestart.length, 1);
  assert.equal(diff.listenersRemoved, [l]);
  assert.equal(diff.listenersAdded, [moved]);
});

test.run();
