// Link-route matching and mesh keys (pure functions of router/io/link-route.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { linkRouteKey, matchesRoute } from '../../router/io/link-route';

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

test.run();
