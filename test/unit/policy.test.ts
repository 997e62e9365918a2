/**
 * The policy core (policy/): vhost compilation with qdrouterd's refusals, remote-host ranges,
 * link-name rules and patterns with ${user}, and the engine's decisions and counters. No sockets.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compileHostSpec, computeAddressBytes, matchesHostSpecs } from '../../policy/hosts';
import { approveName, approveNameByPattern, compilePatterns } from '../../policy/names';
import { compileVhost, PolicyError } from '../../policy/ruleset';
import { PolicyEngine, type ConnectionPolicy, type PolicySettings } from '../../policy/engine';
import { computeOptimizedPattern } from '../../policy/config';

const settings = (vhosts: Record<string, unknown>[], over: Partial<PolicySettings> = {}): PolicySettings => ({
  maxConnections: 65535, maxMessageSize: 0, enableVhostPolicy: true, enableVhostNamePatterns: false, defaultVhost: '$default',
  vhosts: vhosts.map((v) => compileVhost(v)), ...over,
});

const FLEET = {
  hostname: 'iot', maxConnections: 10, maxConnectionsPerUser: 1, allowUnknownUser: false,
  groups: {
    devices: { users: 'dev1, dev2', remoteHosts: '127.0.0.1, 10.0.0.0-10.0.255.255', sources: 'command.${user}', targets: 'telemetry.${user}', maxSenders: 1, maxSessions: 1 },
    ops: { users: 'ops', remoteHosts: '*', sources: '*', targets: 'command.*', allowAnonymousSender: true, allowDynamicSource: true },
  },
};

test('remote hosts: *, one address, a range, IPv6 and IPv4-mapped peers; names and reversed ranges refused', () => {
  const specs = ['10.0.0.0-10.0.255.255', '::1'].map(compileHostSpec);
  assert.ok(matchesHostSpecs(specs, '10.0.3.4'));
  assert.ok(matchesHostSpecs(specs, '::ffff:10.0.255.255'));
  assert.ok(matchesHostSpecs(specs, '::1'));
  assert.not.ok(matchesHostSpecs(specs, '10.1.0.0'));
  assert.not.ok(matchesHostSpecs(specs, '127.0.0.1'));
  assert.ok(matchesHostSpecs([compileHostSpec('*')], 'anything'));
  assert.equal([...computeAddressBytes('fe80::1:2')!.bytes], [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2]);
  assert.throws(() => compileHostSpec('example.com'), /not a numeric/);
  assert.throws(() => compileHostSpec('10.0.0.9-10.0.0.1'), /lower numeric address first/);
  assert.throws(() => compileHostSpec('10.0.0.1-::1'), /mixed IPv4 and IPv6/);
});

test('link names: literal, trailing *, ${user} as prefix, suffix or embedded, wildcard; empty never', () => {
  const v = compileVhost({ hostname: 'h', groups: { g: { users: 'u', sources: 'a, pre*, ${user}.in, out.${user}, x.${user}.y' } } });
  const rules = v.groups.get('g')!.sources;
  for (const ok of ['a', 'prefix', 'alice.in', 'out.alice', 'x.alice.y']) assert.ok(approveName('alice', rules, ok), ok);
  for (const no of ['b', 'pr', 'bob.in', 'out.bob', '']) assert.not.ok(approveName('alice', rules, no), no);
  assert.ok(approveName('x', [{ kind: '*', before: '', after: '' }], 'whatever'));
});

test('link name patterns: * one token, # any; ${user} only as a whole token', () => {
  const p = compilePatterns(['${user}.q.#', 'tmp.*.x', 'z.${user}']);
  assert.ok(approveNameByPattern('bob', p, 'bob.q.c.d'));
  assert.ok(approveNameByPattern('bob', p, 'bob.q'));
  assert.ok(approveNameByPattern('bob', p, 'tmp.any.x'));
  assert.ok(approveNameByPattern('bob', p, 'z.bob'));
  assert.not.ok(approveNameByPattern('bob', p, 'bobby.q'), 'user is not a whole token');
  assert.not.ok(approveNameByPattern('bob', p, 'z.xbob'));
  assert.not.ok(approveNameByPattern('bob', p, 'eve.q.c'));
  assert.not.ok(approveNameByPattern('bob', p, 'tmp.a.b.x'));
});

test('vhost compilation refuses as qdrouterd does', () => {
  const refuse = (v: Record<string, unknown>, re: RegExp) => assert.throws(() => compileVhost(v), (e: unknown) => e instanceof PolicyError && re.test(e.message));
  refuse({ hostname: 'h', maxConnections: -1 }, /^Policy 'h' is invalid: Policy vhost 'h' option 'maxConnections' has error 'Value '-1' is below minimum '0'\.'/);
  refuse({ hostname: 'h', maxConnections: 65536 }, /above maximum '65535'/);
  refuse({ hostname: 'h', allowUnknownUser: true, groups: {} }, /allows connections by default but default settings are not defined/);
  refuse({ hostname: 'h', groups: { a: { users: 'u' }, b: { users: 'u' } } }, /user 'u' is in multiple user groups 'a' and 'b'/);
  refuse({ hostname: 'h', groups: { a: { users: 'u', sources: 'x', sourcePattern: 'y' } } }, /conflicting 'sources' and 'sourcePattern'/);
  refuse({ hostname: 'h', groups: { a: { users: 'u', sourcePattern: 'a.${user}.b' } } }, /as a prefix or a suffix only/);
  refuse({ hostname: 'h', groups: { a: { users: 'u', targets: '${user}${user}' } } }, /multiple user subtitution tokens/);
  refuse({ hostname: 'h', groups: { a: { users: 'u', allowDynamicSource: 'maybe' } } }, /illegal boolean value 'maybe'/);
  refuse({ hostname: 'h', aliases: 'h' }, /duplicates vhost name/);
  refuse({ hostname: 'h', groups: { a: { users: 'u', remoteHosts: 'nohost' } } }, /connectionOption 'nohost' failed to translate/);
  const v = compileVhost({ hostname: 'h', bogus: 1, groups: { a: { users: 'u', whatever: 2 } } });
  assert.equal(v.warnings, ["Policy vhost 'h' option 'bogus' is ignored.", "Policy vhost 'h' user group 'a' option 'whatever' is ignored."]);
});

test('vhost name patterns are kept optimised as qdrouterd keeps them', () => {
  assert.is(computeOptimizedPattern('#.#.0.0'), '#.0.0');
  assert.is(computeOptimizedPattern('a.#.*.#.b'), 'a.*.#.b');
  assert.is(computeOptimizedPattern('a.b'), 'a.b');
});

test('open: vhost by name, alias, default; unknown users, remote hosts, per-user limit; counters', () => {
  const e = new PolicyEngine(settings([FLEET, { hostname: '$default', aliases: 'other', allowUnknownUser: true, groups: { $default: { remoteHosts: '*', sources: '*', targets: '*' } } }]));
  const open = (connId: number, user: string, host: string, vhost: string) => e.decideOpen({ connId, user, host, vhost });
  const a = open(1, 'dev1', '127.0.0.1', 'iot');
  assert.ok(a.ok && a.policy?.group === 'devices');
  const b = open(2, 'dev1', '127.0.0.1', 'iot');
  assert.ok(!b.ok && b.condition === 'amqp:resource-limit-exceeded' && b.description === 'connection disallowed by local policy' && /per user limit/.test(b.log));
  const c = open(3, 'dev2', '192.168.1.1', 'iot');
  assert.ok(!c.ok && /not allowed to connect from this network host/.test(c.log));
  const d = open(4, 'mallory', '127.0.0.1', 'iot');
  assert.ok(!d.ok && /not in a user group and unknown users are denied/.test(d.log));
  const f = open(5, 'anyone', '127.0.0.1', 'nosuch');
  assert.ok(f.ok && f.policy?.vhost === '$default', 'an unknown vhost falls back to the default vhost');
  const g = open(6, 'anyone', '127.0.0.1', 'other');
  assert.ok(g.ok && g.policy?.vhost === '$default', 'an alias');
  const s = e.stats.get('iot')!;
  assert.equal([s.connectionsApproved, s.connectionsDenied, s.connectionsCurrent], [1, 3, 1]);
  assert.equal({ ...e.counters, connectionsProcessed: 0, connectionsCurrent: 0 }, { connectionsProcessed: 0, connectionsDenied: 3, connectionsCurrent: 0, linksDenied: 0, maxMessageSizeDenied: 0, totalDenials: 3 });
  e.onSocketClosed(1, false);
  assert.is(s.connectionsCurrent, 0);
  assert.ok(open(7, 'dev1', '127.0.0.1', 'iot').ok, 'the per-user slot is free again');
});

test('no vhost and no default vhost: refused; vhost policy off: allowed without settings', () => {
  const e = new PolicyEngine(settings([FLEET]));
  assert.ok(!e.decideOpen({ connId: 1, user: 'dev1', host: '127.0.0.1', vhost: 'elsewhere' }).ok);
  const off = new PolicyEngine(settings([FLEET], { enableVhostPolicy: false }));
  const r = off.decideOpen({ connId: 1, user: 'x', host: '1.2.3.4', vhost: 'elsewhere' });
  assert.ok(r.ok && r.policy === null);
});

test('global maxConnections counts every accepted socket', () => {
  const e = new PolicyEngine(settings([], { maxConnections: 2 }));
  assert.equal([e.decideSocket(), e.decideSocket(), e.decideSocket()], [true, true, false]);
  assert.equal([e.counters.connectionsProcessed, e.counters.connectionsDenied, e.counters.connectionsCurrent, e.counters.totalDenials], [3, 1, 2, 1]);
  e.onSocketClosed(1, true);
  assert.ok(e.decideSocket());
});

test('links: the device sends only to telemetry.<id>, receives only from command.<id>; limits and counters', () => {
  const e = new PolicyEngine(settings([FLEET]));
  const r = e.decideOpen({ connId: 1, user: 'dev1', host: '127.0.0.1', vhost: 'iot' });
  assert.ok(r.ok && r.policy !== null);
  const p = r.policy as ConnectionPolicy;
  assert.ok(e.decideSender(p, 'telemetry.dev1', []).ok);
  const second = e.decideSender(p, 'telemetry.dev1', []);
  assert.ok(!second.ok && second.condition === 'amqp:resource-limit-exceeded' && second.description === 'link disallowed by local policy', 'maxSenders 1');
  e.onLinkClosed(p, true);
  const other = e.decideSender(p, 'telemetry.dev2', []);
  assert.ok(!other.ok && other.condition === 'amqp:unauthorized-access');
  assert.not.ok(e.decideSender(p, null, []).ok, 'no anonymous sender');
  assert.ok(e.decideReceiver(p, 'command.dev1', false, []).ok);
  assert.not.ok(e.decideReceiver(p, 'command.dev2', false, []).ok);
  assert.not.ok(e.decideReceiver(p, null, true, []).ok, 'no dynamic source');
  assert.ok(e.decideSession(p, 0).ok);
  const s2 = e.decideSession(p, 1);
  assert.ok(!s2.ok && s2.description === 'session disallowed by local policy');
  const st = e.stats.get('iot')!;
  assert.equal([st.senderDenied, st.receiverDenied, st.sessionDenied], [3, 2, 1]);
  assert.equal([e.counters.linksDenied, e.counters.totalDenials], [5, 6]);
  assert.ok(e.approveLinkName(p, 'telemetry.dev1', false));
  assert.not.ok(e.approveLinkName(p, 'telemetry.dev2', false));
});

test('waypoint and fallback capabilities refused when the group forbids them', () => {
  const e = new PolicyEngine(settings([{ hostname: 'h', allowUnknownUser: true, groups: { $default: { remoteHosts: '*', sources: '*', targets: '*', allowWaypointLinks: false, allowFallbackLinks: false } } }]));
  const r = e.decideOpen({ connId: 1, user: 'u', host: '127.0.0.1', vhost: 'h' });
  const p = (r as { policy: ConnectionPolicy }).policy;
  assert.not.ok(e.decideReceiver(p, 'q', false, ['qd.waypoint.1']).ok);
  assert.not.ok(e.decideSender(p, 'q', ['qd.fallback']).ok);
  assert.ok(e.decideSender(p, 'q', ['other']).ok);
});

test('maxMessageSize: group, else vhost, else global', () => {
  const e = new PolicyEngine(settings([
    { hostname: 'a', maxMessageSize: 200, allowUnknownUser: true, groups: { $default: { remoteHosts: '*', maxMessageSize: 100 } } },
    { hostname: 'b', maxMessageSize: 200, allowUnknownUser: true, groups: { $default: { remoteHosts: '*' } } },
    { hostname: 'c', allowUnknownUser: true, groups: { $default: { remoteHosts: '*' } } },
  ], { maxMessageSize: 300 }));
  const size = (vhost: string, id: number) => (e.decideOpen({ connId: id, user: 'u', host: '127.0.0.1', vhost }) as { policy: ConnectionPolicy }).policy.maxMessageSize;
  assert.equal([size('a', 1), size('b', 2), size('c', 3)], [100, 200, 300]);
});

test('vhost name patterns pick the most specific match', () => {
  const e = new PolicyEngine(settings([
    { hostname: '*.example.com', allowUnknownUser: true, groups: { $default: { remoteHosts: '*' } } },
    { hostname: 'a.example.com', allowUnknownUser: true, groups: { $default: { remoteHosts: '*' } } },
    { hostname: '#', allowUnknownUser: true, groups: { $default: { remoteHosts: '*' } } },
  ], { enableVhostNamePatterns: true }));
  assert.is(e.lookupVhost('a.example.com'), 'a.example.com');
  assert.is(e.lookupVhost('b.example.com'), '*.example.com');
  assert.is(e.lookupVhost('x.y.z'), '#');
});

test.run();
