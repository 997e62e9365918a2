/**
 * Address configuration lookup (router/core/addresses.ts): qdrouterd-style prefixes and
 * patterns over tokens separated by '.' or '/', most specific match wins, address normalisation
 * and the limits on client-supplied addresses.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AddressRule, AddressTable } from '../../router/core/addresses';
import { checkAddress, normalizeAddress } from '../../amqp/address';

function table(rules: AddressRule[], dflt?: 'closest' | 'balanced' | 'multicast'): AddressTable {
  return dflt ? new AddressTable(rules, dflt) : new AddressTable(rules);
}

test('prefix matches on token boundaries: itself, ".", "/" children; not a longer token', () => {
  const t = table([{ prefix: 'queue', distribution: 'multicast' }]);
  assert.is(t.computeDistribution('queue'), 'multicast');
  assert.is(t.computeDistribution('queue.a'), 'multicast');
  assert.is(t.computeDistribution('queue/a'), 'multicast');
  assert.is(t.computeDistribution('queue.a.b/c'), 'multicast');
  assert.is(t.computeDistribution('queues'), 'balanced');
  assert.is(t.computeDistribution('queue-a'), 'balanced');
  assert.is(t.computeDistribution('queu'), 'balanced');
  assert.is(t.computeDistribution('a.queue'), 'balanced');
  assert.is(t.computeDistribution('Queue'), 'balanced', 'matching is case-sensitive');
});

test('unavailable (qdrouterd): the most specific rule decides; the distribution falls back to the default', () => {
  const t = table([
    { prefix: 'closed', distribution: 'unavailable' },
    { prefix: 'closed.open', distribution: 'multicast' },
    { pattern: 'x.*.gone', distribution: 'unavailable' },
  ], 'closest');
  assert.ok(t.isUnavailable('closed'));
  assert.ok(t.isUnavailable('closed/a'));
  assert.not.ok(t.isUnavailable('closed.open.a'), 'a longer prefix wins');
  assert.is(t.computeDistribution('closed.open.a'), 'multicast');
  assert.ok(t.isUnavailable('x.y.gone'));
  assert.not.ok(t.isUnavailable('x.y.z'));
  assert.not.ok(t.isUnavailable('closedx'));
  assert.is(t.computeDistribution('closed.a'), 'closest');
  assert.not.ok(table([{ prefix: 'q', distribution: 'closest' }]).isUnavailable('q'));
});

test('multi-token prefixes; "." and "/" are interchangeable separators', () => {
  const t = table([{ prefix: 'a.b', distribution: 'closest' }]);
  assert.is(t.computeDistribution('a.b'), 'closest');
  assert.is(t.computeDistribution('a/b'), 'closest');
  assert.is(t.computeDistribution('a/b.c'), 'closest');
  assert.is(t.computeDistribution('a.bc'), 'balanced');
  assert.is(t.computeDistribution('a'), 'balanced');
  assert.is(t.computeDistribution('a.c.b'), 'balanced');
  const t2 = table([{ prefix: 'x/y', distribution: 'multicast' }]);
  assert.is(t2.computeDistribution('x.y.z'), 'multicast');
});

test('leading and trailing slashes of a configured prefix are ignored', () => {
  const t = table([{ prefix: '/orders/', distribution: 'multicast' }]);
  assert.is(t.computeDistribution('orders'), 'multicast');
  assert.is(t.computeDistribution('orders/eu'), 'multicast');
  assert.is(t.computeDistribution('ordersx'), 'balanced');
});

test('pattern "*" matches exactly one token', () => {
  const t = table([{ pattern: 'a.*.c', distribution: 'multicast' }]);
  assert.is(t.computeDistribution('a.b.c'), 'multicast');
  assert.is(t.computeDistribution('a/x/c'), 'multicast');
  assert.is(t.computeDistribution('a.c'), 'balanced', '* is not zero tokens');
  assert.is(t.computeDistribution('a.b.b.c'), 'balanced', '* is not two tokens');
  assert.is(t.computeDistribution('a.b.c.d'), 'balanced', 'a pattern is not a prefix');
  const t2 = table([{ pattern: 'a.*', distribution: 'closest' }]);
  assert.is(t2.computeDistribution('a.b'), 'closest');
  assert.is(t2.computeDistribution('a'), 'balanced');
  assert.is(t2.computeDistribution('a.b.c'), 'balanced');
});

test('pattern "#" matches zero or more tokens', () => {
  const t = table([{ pattern: 'a.#.c', distribution: 'multicast' }]);
  assert.is(t.computeDistribution('a.c'), 'multicast');
  assert.is(t.computeDistribution('a.b.c'), 'multicast');
  assert.is(t.computeDistribution('a.b.b.b/c'), 'multicast');
  assert.is(t.computeDistribution('a.b.d'), 'balanced');
  assert.is(t.computeDistribution('a.c.d'), 'balanced');
  const t2 = table([{ pattern: 'news.#', distribution: 'multicast' }]);
  assert.is(t2.computeDistribution('news'), 'multicast');
  assert.is(t2.computeDistribution('news.eu.fr'), 'multicast');
  assert.is(t2.computeDistribution('newsx'), 'balanced');
  const t3 = table([{ pattern: '#', distribution: 'closest' }]);
  assert.is(t3.computeDistribution('anything/at.all'), 'closest');
  const t4 = table([{ pattern: '#.done', distribution: 'closest' }]);
  assert.is(t4.computeDistribution('done'), 'closest');
  assert.is(t4.computeDistribution('x.y.done'), 'closest');
  assert.is(t4.computeDistribution('x.done.y'), 'balanced');
  const t5 = table([{ pattern: '*.#.*', distribution: 'multicast' }]);
  assert.is(t5.computeDistribution('a'), 'balanced');
  assert.is(t5.computeDistribution('a.b'), 'multicast');
  assert.is(t5.computeDistribution('a.b.c.d.e'), 'multicast');
});

test('most specific wins: longer prefix beats shorter, whatever the rule order', () => {
  const rules: AddressRule[] = [
    { prefix: 'a', distribution: 'closest' },
    { prefix: 'a.b', distribution: 'multicast' },
    { prefix: 'a.b.c', distribution: 'balanced' },
  ];
  for (const rs of [rules, [...rules].reverse()]) {
    const t = table(rs, 'closest');
    assert.is(t.computeDistribution('a.x'), 'closest');
    assert.is(t.computeDistribution('a.b'), 'multicast');
    assert.is(t.computeDistribution('a.b.x'), 'multicast');
    assert.is(t.computeDistribution('a.b.c'), 'balanced');
    assert.is(t.computeDistribution('a.b.c.d'), 'balanced');
  }
});

test('the match qdrouterd\'s parse tree finds first wins: token by token, a literal before * before # (a prefix is its tokens then #)', () => {
  const rules: AddressRule[] = [
    { pattern: 'a.*.*', distribution: 'closest' },
    { pattern: 'a.b.*', distribution: 'multicast' },
    { pattern: 'a.#', distribution: 'balanced' },
  ];
  for (const rs of [rules, [...rules].reverse()]) {
    const t = table(rs, 'closest');
    assert.is(t.computeDistribution('a.b.c'), 'multicast', 'a literal b before *');
    assert.is(t.computeDistribution('a.x'), 'balanced', 'only a.# matches two tokens');
  }
  // prefix 'a.b' is qdrouterd's pattern 'a.b.#': 'a.b.*' goes first for 'a.b.c', the prefix for 'a.b.c.d'
  for (const rs of [
    [{ prefix: 'a.b', distribution: 'multicast' as const }, { pattern: 'a.b.*', distribution: 'closest' as const }],
    [{ pattern: 'a.b.*', distribution: 'closest' as const }, { prefix: 'a.b', distribution: 'multicast' as const }],
  ]) {
    const t = table(rs, 'balanced');
    assert.is(t.computeDistribution('a.b.c'), 'closest');
    assert.is(t.computeDistribution('a.b.c.d'), 'multicast');
    assert.is(t.computeDistribution('a.b'), 'multicast');
  }
  // a pattern with a literal where a shorter prefix has its # wins
  const t = table([{ prefix: 'a', distribution: 'multicast' }, { pattern: 'a.b.*', distribution: 'closest' }]);
  assert.is(t.computeDistribution('a.b.c'), 'closest');
  assert.is(t.computeDistribution('a.x.c'), 'multicast');
  // qdrouterd's own wildcard test (system_tests_two_routers test_17), in either rule order
  const wild: AddressRule[] = [
    { pattern: 'a.b.c.d', distribution: 'closest' }, { pattern: '#.b.c.d', distribution: 'multicast' }, { pattern: 'a/*/#/d', distribution: 'closest' },
    { pattern: '*/b/c/d', distribution: 'multicast' }, { pattern: 'a.x.d', distribution: 'closest' }, { pattern: 'a.*.d', distribution: 'multicast' },
  ];
  const expect: [string, string][] = [['a.b.c.d', 'closest'], ['b.c.d', 'multicast'], ['f.a.b.c.d', 'multicast'], ['a.c.d', 'multicast'],
    ['a/c/c/d', 'closest'], ['a/x/z/z/d', 'closest'], ['a/x/d', 'closest'], ['a.x.e', 'balanced'], ['m.b.c.d', 'multicast']];
  for (const rs of [wild, [...wild].reverse()]) {
    const w = table(rs, 'balanced');
    for (const [address, d] of expect) assert.is(w.computeDistribution(address), d, address);
  }
});

test('default distribution is balanced; configurable', () => {
  assert.is(table([]).computeDistribution('anything'), 'balanced');
  assert.is(table([]).defaultDistribution, 'balanced');
  assert.is(table([], 'multicast').computeDistribution('anything'), 'multicast');
  assert.is(table([{ prefix: 'q', distribution: 'closest' }], 'multicast').computeDistribution('other'), 'multicast');
});

test('results are cached, and setRules invalidates the cache', () => {
  const t = table([{ prefix: 'q', distribution: 'closest' }]);
  assert.is(t.computeDistribution('q.1'), 'closest');
  assert.is(t.computeDistribution('q.1'), 'closest');
  t.setRules([{ prefix: 'q', distribution: 'multicast' }]);
  assert.is(t.computeDistribution('q.1'), 'multicast');
  t.setRules([]);
  assert.is(t.computeDistribution('q.1'), 'balanced');
});

test('normalizeAddress strips other schemes as qdrouterd does (uAMQP sends amqps://host/queue)', () => {
  assert.is(normalizeAddress('amqps://127.0.0.1/queue.orders'), 'queue.orders');
  assert.is(normalizeAddress('amqps://myhub.example:5671/devices/d1/messages'), 'devices/d1/messages');
  assert.is(normalizeAddress('amqpws:/x'), 'x');
  assert.is(normalizeAddress('amqps://host'), 'amqps://host');
  assert.is(normalizeAddress('a:b'), 'a:b');
  assert.is(normalizeAddress('queue.orders'), 'queue.orders');
});

test('normalizeAddress strips amqp:/ and amqp://host/', () => {
  assert.is(normalizeAddress('amqp:/x'), 'x');
  assert.is(normalizeAddress('amqp://host/x'), 'x');
  assert.is(normalizeAddress('amqp://host:5672/queue/a'), 'queue/a');
  assert.is(normalizeAddress('amqp://host/a.b/c'), 'a.b/c');
  assert.is(normalizeAddress('amqp:x'), 'x');
  assert.is(normalizeAddress('amqp:///x'), 'x');
  assert.is(normalizeAddress('amqp://host'), '');
  assert.is(normalizeAddress('amqp://host/'), '');
  assert.is(normalizeAddress('amqp:/_topo/0/R/temp.abc'), '_topo/0/R/temp.abc');
  assert.is(normalizeAddress('x'), 'x');
  assert.is(normalizeAddress('queue/a'), 'queue/a');
  assert.is(normalizeAddress(''), '');
});

test('normalised spellings route alike', () => {
  const t = table([{ prefix: 'queue', distribution: 'multicast' }]);
  for (const a of ['queue/a', 'amqp:/queue/a', 'amqp://h/queue/a', 'amqp://h:1/queue.a']) {
    assert.is(t.computeDistribution(normalizeAddress(a)), 'multicast', a);
  }
});

test('checkAddress: empty, over the limit, control characters; fine at the limit', () => {
  assert.is(checkAddress('', 10), 'address is empty');
  assert.is(checkAddress('a'.repeat(10), 10), null);
  const over = checkAddress('a'.repeat(11), 10);
  assert.ok(over !== null && /11/.test(over) && /10/.test(over), String(over));
  for (const c of ['\x00', '\x01', '\n', '\r', '\x1f', '\x7f']) {
    assert.is(checkAddress(`a${c}b`, 100), 'address contains control characters', JSON.stringify(c));
  }
  assert.is(checkAddress('queue/a.b-c_d:e', 100), null);
  assert.is(checkAddress('caf\u00e9', 100), null, 'non-ASCII printable is fine');
  assert.is(checkAddress(' ', 100), null);
});

test('an address rule\'s priority overrides the message\'s; without one (or -1) the message\'s stays', () => {
  const t = table([{ prefix: 'prio', distribution: 'balanced', priority: 7 }, { prefix: 'own', distribution: 'balanced', priority: -1 }]);
  assert.is(t.computePriority('prio.x', 2), 7);
  assert.is(t.computePriority('own.x', 2), 2);
  assert.is(t.computePriority('other', 9), 9);
  assert.is(table([{ prefix: 'a', distribution: 'closest' }]).anyPriority, false);
});

test.run();
