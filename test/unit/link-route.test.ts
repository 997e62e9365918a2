// Link-route matching and mesh keys (pure functions of router/io/link-route.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { linkRouteKey, matchesRoute } from '../../router/io/link-route';
import { Described, Reader, Writer, sym, symArray } from '../../amqp/codec';
import { decodeTerminus, withDynamicNodeAddress, withTerminusAddress } from '../../amqp/performatives';

test('prefixes match on token boundaries, with or without a trailing separator or a leading slash', () => {
  assert.ok(matchesRoute({ prefix: 'orders' }, 'orders'));
  assert.ok(matchesRoute({ prefix: 'orders' }, 'orders.eu'));
  assert.ok(matchesRoute({ prefix: 'orders.' }, 'orders/eu/north'));
  assert.ok(matchesRoute({ prefix: '/queue' }, '/queue/lr1'));
  assert.not.ok(matchesRoute({ prefix: 'orders' }, 'ordersx'));
  assert.not.ok(matchesRoute({ prefix: 'orders.eu' }, 'orders'));
});

test('patterns: * one token, # zero or more', () => {
  assert.ok(matchesRoute({ pattern: 'a.*.c' }, 'a.b.c'));
  assert.not.ok(matchesRoute({ pattern: 'a.*.c' }, 'a.c'));
  assert.ok(matchesRoute({ pattern: 'a.#' }, 'a'));
  assert.ok(matchesRoute({ pattern: 'a.#.z' }, 'a.b.c.z'));
  assert.not.ok(matchesRoute({ pattern: 'a.#.z' }, 'a.b.c'));
});

test("mesh keys use qdrouterd's classes: C/D for prefixes in/out, E/F for patterns", () => {
  assert.is(linkRouteKey({ prefix: 'orders', direction: 'in' }), 'Corders');
  assert.is(linkRouteKey({ prefix: 'orders', direction: 'out' }), 'Dorders');
  assert.is(linkRouteKey({ pattern: 'a.#', direction: 'in' }), 'Ea.#');
  assert.is(linkRouteKey({ pattern: 'a.#', direction: 'out' }), 'Fa.#');
});

test('a multi-tenant link route: the terminus keeps every field byte for byte but its address', () => {
  const w = new Writer();
  w.descriptor(0x28);
  w.value(['link.a', 1, null, 0, false, null, null, { 'apache.org:selector-filter:string': 'x = 1' }]);
  const raw = w.take();
  const spaced = withTerminusAddress(raw, 'tenant-1/link.a');
  const v = new Reader(spaced).read() as Described;
  const before = new Reader(raw).read() as Described;
  assert.equal((v.value as unknown[])[0], 'tenant-1/link.a');
  assert.equal((v.value as unknown[]).slice(1), (before.value as unknown[]).slice(1));
  // An empty list (no fields) gets the address as its one field.
  const empty = Buffer.from([0x00, 0x53, 0x29, 0x45]);
  assert.equal(((new Reader(withTerminusAddress(empty, 'x')).read() as Described).value as unknown[]), ['x']);
});

test('a multi-tenant dynamic link route: x-opt-qd.address carries the space, the rest byte for byte', () => {
  const w = new Writer();
  w.descriptor(0x28);
  const m = new Map<unknown, unknown>([[sym('lifetime-policy'), 'x'], [sym('x-opt-qd.address'), 'link.a']]);
  w.value([null, 0, null, 0, true, m, null, null, null, null, symArray(['queue'])]);
  const raw = w.take();
  const spaced = withDynamicNodeAddress(raw, 'tenant-1/link.a');
  const t = decodeTerminus(spaced)!;
  assert.equal([t.dynamic, t.dynamicAddress, t.capabilities], [true, 'tenant-1/link.a', ['queue']]);
  assert.equal(decodeTerminus(raw)!.dynamicAddress, 'link.a');
  // Without the property: unchanged.
  const w2 = new Writer();
  w2.descriptor(0x28);
  w2.value([null, 0, null, 0, true]);
  const plain = w2.take();
  assert.is(withDynamicNodeAddress(plain, 'x'), plain);
});

test.run();
