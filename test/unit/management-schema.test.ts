// The GET-SCHEMA body: qdrouterd 1.19's dump() shape, generated from the config table and the entity modules.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ENTITY_MODULES } from '../../router/management/agent';
import { computeManagementSchema } from '../../router/management/schema';

type Attr = { type: unknown; default?: unknown; required?: boolean; unique?: boolean; deprecated?: boolean; graph?: boolean };
type EntityType = { attributes?: Record<string, Attr>; operations?: string[]; fullyQualifiedType: string; singleton?: boolean; deprecated?: boolean };

const schema = computeManagementSchema() as { prefix: string; entityTypes: Record<string, EntityType> };
const types = schema.entityTypes;

/** qdrouterd keys entity types by short name, with `router.config.` stripped too. */
const shortName = (name: string) => name.replace(/^router\.config\./, '');

test('prefix and top-level keys are qdrouterd dump()\'s', () => {
  assert.is(schema.prefix, 'org.apache.qpid.dispatch');
  assert.equal(Object.keys(schema), ['prefix', 'entityTypes']);
});

test('listener has host and port, port defaulting to "amqp" as a string type', () => {
  const listener = types['listener']!;
  assert.equal(listener.attributes!['port'], { type: 'string', default: 'amqp' });
  assert.equal(listener.attributes!['host'], { type: 'string' }, 'the empty default is dropped, as dump() drops falsy values');
  assert.equal(listener.operations, ['CREATE', 'DELETE', 'READ']);
  assert.is(listener.fullyQualifiedType, 'org.apache.qpid.dispatch.listener');
});

test('attributes inherited from entity come last, type is left out', () => {
  const names = Object.keys(types['listener']!.attributes!);
  assert.equal(names.slice(0, 2), ['host', 'port']);
  assert.equal(names.slice(-2), ['name', 'identity']);
  assert.not.ok(names.includes('type'));
  assert.equal(types['listener']!.attributes!['name'], { type: 'string', unique: true });
});

test('router.config.address is under "address", with CREATE', () => {
  const address = types['address']!;
  assert.is(address.fullyQualifiedType, 'org.apache.qpid.dispatch.router.config.address');
  assert.ok(address.operations!.includes('CREATE'));
  assert.is(types['router.config.address'], undefined);
  assert.ok(types['router.address'], 'the operational router.address keeps its own key');
});

test('every ENTITY_MODULES type is present under its short name, with the module\'s operations', () => {
  for (const m of ENTITY_MODULES) {
    const t = types[shortName(m.name)];
    assert.ok(t, `missing ${m.name}`);
    assert.is(t!.fullyQualifiedType, `org.apache.qpid.dispatch.${m.name}`);
    assert.equal(t!.operations, [...m.operations], m.name);
    for (const a of m.attributes) {
      if (a === 'type') continue;
      // Columns qdrouterd's agent answers but its schema does not list stay out, as there.
      assert.is(t!.attributes![a] !== undefined, !(m.unlisted ?? []).includes(a), `${m.name}.${a}`);
    }
  }
});

test('base types carry qdrouterd\'s inherited operations', () => {
  assert.is(types['entity']!.operations, undefined, 'an empty list is dropped');
  assert.equal(types['configurationEntity']!.operations, ['READ']);
  assert.equal(types['operationalEntity']!.operations, ['READ']);
  assert.equal(types['org.amqp.management']!.operations, ['QUERY', 'GET-TYPES', 'GET-ANNOTATIONS', 'GET-OPERATIONS', 'GET-ATTRIBUTES', 'GET-MGMT-NODES', 'READ']);
  assert.ok(types['management']!.operations!.includes('GET-SCHEMA'));
  assert.is(types['management']!.singleton, true);
});

test('enumerations render as arrays of their values', () => {
  assert.equal(types['router']!.attributes!['mode'], { type: ['standalone', 'interior', 'edge'], default: 'standalone' });
  assert.equal(types['listener']!.attributes!['role']!.type, ['normal', 'inter-router', 'route-container', 'edge']);
  assert.equal(types['linkRoute']!.attributes!['direction'], { type: ['in', 'out'], required: true });
});

test('config types map to qdrouterd type names; falsy values are dropped', () => {
  const router = types['router']!.attributes!;
  assert.is(router['workerThreads']!.type, 'integer');
  assert.is(router['debugDumpFile']!.type, 'path');
  assert.equal(router['allowUnsettledMulticast'], { type: 'boolean' });
  assert.equal(router['allowResumableLinkRoute'], { type: 'boolean', default: true });
  assert.equal(router['addrCount'], { type: 'integer', graph: true });
  assert.is(types['listener']!.attributes!['openProperties']!.type, 'properties');
  assert.is(types['vhost']!.attributes!['groups']!.type, 'map');
  assert.is(types['sslProfile']!.attributes!['passwordFile']!.deprecated, true);
  assert.is(types['console']!.deprecated, true);
});

test('operational attributes as qdrouterd describes them: types, enumerations, charted counters; defaults only on adminStatus', () => {
  for (const name of ['router.link', 'router.address', 'router.node', 'connection', 'allocator', 'vhostStats', 'logStats']) {
    for (const [attr, def] of Object.entries(types[name]!.attributes!)) assert.is(def.default, attr === 'adminStatus' ? 'enabled' : undefined, `${name}.${attr}`);
  }
  const link = types['router.link']!.attributes!;
  assert.equal(link['linkName'], { type: 'string' });
  assert.equal(link['deliveryCount'], { type: 'integer', graph: true });
  assert.equal(link['capacity'], { type: 'integer' }, 'a setting, not a counter: not charted');
  assert.equal(link['linkDir'], { type: ['in', 'out'] });
  assert.equal(link['adminStatus'], { type: ['enabled', 'disabled'], default: 'enabled' });
  assert.is(link['connectionId'], undefined, 'answered by QUERY, not in the schema (qdrouterd\'s too)');
  assert.equal(types['router.node']!.attributes!['linkState'], { type: 'list' });
  assert.equal(types['router.node']!.attributes!['routerLink'], { type: 'entityId' });
  assert.equal(types['connection']!.attributes!['isEncrypted'], { type: 'boolean' });
  assert.equal(types['connection']!.attributes!['uptimeSeconds'], { type: 'integer', graph: true });
  assert.equal(types['router.address']!.attributes!['distribution']!.type, ['flood', 'multicast', 'closest', 'balanced', 'linkBalanced', 'unavailable']);
  assert.equal(types['vhostStats']!.attributes!['perUserState'], { type: 'map' });
  assert.equal(types['vhostUserGroupSettings']!.attributes!['users'], { type: 'string', required: true });
  assert.equal(types['vhostUserGroupSettings']!.attributes!['allowWaypointLinks'], { type: 'boolean', default: true });
  assert.equal(types['exchange']!.attributes!['bindingCount'], { type: 'integer' }, 'an exchange\'s counters are not charted');
  assert.equal(types['listener']!.attributes!['linkCapacity'], { type: 'integer' }, 'no default: the router\'s own');
  assert.not.ok('addr' in types['autoLink']!.attributes!, 'old column names stay out');
});

test('JSON-serialisable, under 200 KB, memoised and frozen', () => {
  const json = JSON.stringify(schema);
  assert.equal(JSON.parse(json), schema);
  assert.ok(Buffer.byteLength(json) < 200 * 1024, `${Buffer.byteLength(json)} bytes`);
  assert.is(computeManagementSchema(), schema);
  assert.ok(Object.isFrozen(types['listener']!.attributes!['port']));
});

test.run();
