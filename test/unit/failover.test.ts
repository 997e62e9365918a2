/**
 * The open frame's `failover-server-list` (amqp/failover.ts): written exactly as Apache ActiveMQ
 * Artemis writes it (qdrouterd 1.19 crashes on the string-key form amqp-mesh brokers used to
 * send), and read by the router's route-container connector in Artemis's form, in the old
 * string-key form and with a string port.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Sym, Writer, decodeValue, encodeValue, sym, int } from '../../amqp/codec';
import { decodeOpen, fieldValue, scan, scanPerformative, writeOpen } from '../../amqp/performatives';
import { FAILOVER_SERVER_LIST, failoverServerList, listenerFailoverServerList, parseFailoverServerList } from '../../amqp/failover';
import { RouteContainer, type RouteContainerHost } from '../../router/io/route-container';
import { Logger } from '../../lib/log';

/**
 * What Artemis sends for one server 127.0.0.1:5673 over plain AMQP: Proton-J 0.34.1's
 * EncoderImpl.writeObject of Arrays.asList(hostDetails), hostDetails being the HashMap<Symbol,
 * Object> AMQPConnectionContext.getConnectionPropertiesForResponse builds (NETWORK_HOST, SCHEME,
 * HOSTNAME -> String, PORT -> Integer), run through the real proton-j jar.
 */
const ARTEMIS_ONE_SERVER = Buffer.from(
  'c04b01' + // list8, size 0x4b, 1 element
  'c14808' + // map8, size 0x48, 8 elements (4 pairs), in Java HashMap order:
  'a308' + Buffer.from('hostname').toString('hex') + 'a109' + Buffer.from('127.0.0.1').toString('hex') +
  'a306' + Buffer.from('scheme').toString('hex') + 'a104' + Buffer.from('amqp').toString('hex') +
  'a304' + Buffer.from('port').toString('hex') + '7100001629' +
  'a30c' + Buffer.from('network-host').toString('hex') + 'a109' + Buffer.from('127.0.0.1').toString('hex'),
  'hex');

test('the proton-j capture is what it says', () => {
  // The hex printed by proton-j, kept verbatim next to the annotated form above.
  assert.is(ARTEMIS_ONE_SERVER.toString('hex'),
    'c04b01c14808a308686f73746e616d65a1093132372e302e302e31a306736368656d65a104616d7170a304706f72747100001629a30c6e6574776f726b2d686f7374a1093132372e302e302e31');
});

test('failoverServerList encodes byte for byte as Artemis (symbol keys, str8 values, int port)', () => {
  assert.equal(encodeValue(failoverServerList([{ host: '127.0.0.1', port: 5673 }], 'amqp')), ARTEMIS_ONE_SERVER);
  // Two entries, amqps, a port inside smallint and one past it: proton-j 0.34.1's bytes for
  // Arrays.asList(hostDetails("a", 1), hostDetails("b", 65535)) with scheme "amqps".
  const two = encodeValue(failoverServerList([{ host: 'a', port: 1 }, { host: 'b', port: 65535 }], 'amqps'));
  assert.is(two.toString('hex'),
    'c07402c13608a308686f73746e616d65a10161a306736368656d65a105616d717073a304706f72745401a30c6e6574776f726b2d686f7374a10161' +
    'c13908a308686f73746e616d65a10162a306736368656d65a105616d717073a304706f7274710000ffffa30c6e6574776f726b2d686f7374a10162');
  assert.equal(decodeValue(two), [
    { hostname: 'a', scheme: 'amqps', port: 1, 'network-host': 'a' },
    { hostname: 'b', scheme: 'amqps', port: 65535, 'network-host': 'b' },
  ]);
});

/** The decoded properties of the open frame `writeOpen` writes with `properties`. */
function openProperties(properties: Record<string, unknown>): Record<string, unknown> | null {
  const w = new Writer();
  writeOpen(w, { containerId: 'broker', maxFrameSize: 65536, channelMax: 255, idleTimeout: 0, offeredCapabilities: ['ANONYMOUS-RELAY'], properties });
  const frame = w.take();
  assert.is(scanPerformative(frame, 8, frame.length), 0x10);
  for (let i = 0; i < scan.count; i++) fieldValue(i);
  return decodeOpen().properties;
}

test('the open frame carries the Artemis bytes under the symbol key failover-server-list', () => {
  const w = new Writer();
  writeOpen(w, { containerId: 'broker', maxFrameSize: 65536, channelMax: 255, idleTimeout: 0, properties: { [FAILOVER_SERVER_LIST]: failoverServerList([{ host: '127.0.0.1', port: 5673 }], 'amqp') } });
  const frame = w.take();
  const key = Buffer.concat([Buffer.from([0xa3, FAILOVER_SERVER_LIST.length]), Buffer.from(FAILOVER_SERVER_LIST, 'latin1')]);
  const at = frame.indexOf(Buffer.concat([key, ARTEMIS_ONE_SERVER]));
  assert.ok(at > 0, frame.toString('hex'));
});

function container(): RouteContainer {
  const host: RouteContainerHost = {
    newConnection: () => { throw new Error('no dialling in a unit test'); },
    touch: () => undefined,
    autoLinkOpened: () => undefined,
    connectionLost: () => undefined,
  };
  return new RouteContainer({
    name: 'broker', host: '127.0.0.1', port: 5672, failoverUrls: [], maxFrameSize: 65536, idleTimeoutSeconds: 16,
    linkCapacity: 250, sasl: { mechanism: 'ANONYMOUS' }, autoLinks: [],
  }, host, new Logger(() => undefined));
}

const cands = (rc: RouteContainer) => rc.candidates.map((c) => `${c.host}:${c.port}`);

test('learnFailover reads the Artemis form off a real open frame', () => {
  const rc = container();
  rc.learnFailover(openProperties({ product: 'apache-activemq-artemis', [FAILOVER_SERVER_LIST]: failoverServerList([{ host: '127.0.0.1', port: 5672 }, { host: 'backup', port: 5673 }], 'amqp') }));
  assert.equal(cands(rc), ['127.0.0.1:5672', 'backup:5673']);
});

test('learnFailover reads the old string-key form (int port) of older amqp-mesh brokers', () => {
  const rc = container();
  // Plain objects: the Writer encodes their keys as strings (what server.ts used to send).
  const old = [{ 'network-host': 'old-a', port: 6000, scheme: 'amqp', hostname: 'old-a' }, { 'network-host': 'old-b', port: 6001, scheme: 'amqp', hostname: 'old-b' }];
  const bytes = encodeValue(old);
  assert.is(bytes[3], 0xc1);
  assert.is(bytes[6], 0xa1, 'the old form keys are str8');
  rc.learnFailover(openProperties({ [FAILOVER_SERVER_LIST]: old }));
  assert.equal(cands(rc), ['127.0.0.1:5672', 'old-a:6000', 'old-b:6001']);
});

test('learnFailover takes a string port (qdrouterd\'s documented :port="35000") and symbol values', () => {
  const rc = container();
  const entry = new Map<Sym, unknown>([[sym('network-host'), 'some-host'], [sym('port'), '35000']]);
  const entry2 = new Map<Sym, unknown>([[sym('network-host'), sym('sym-host')], [sym('port'), int(25000)], [sym('scheme'), sym('amqp')]]);
  rc.learnFailover(openProperties({ [FAILOVER_SERVER_LIST]: [entry, entry2] }));
  assert.equal(cands(rc), ['127.0.0.1:5672', 'some-host:35000', 'sym-host:25000']);
});

test('parseFailoverServerList: Map-shaped entries with Sym keys, hostname fallback, scheme', () => {
  assert.equal(parseFailoverServerList([
    new Map<unknown, unknown>([[sym('hostname'), 'h'], [sym('scheme'), 'amqps'], [sym('port'), 5671]]),
    new Map<unknown, unknown>([['network-host', 'n'], ['port', 5672n]]),
  ]), [{ host: 'h', port: 5671, scheme: 'amqps' }, { host: 'n', port: 5672, scheme: null }]);
});

test('learnFailover skips unusable entries and duplicates, and ignores a missing or odd list', () => {
  const rc = container();
  rc.learnFailover(null);
  rc.learnFailover({});
  rc.learnFailover({ [FAILOVER_SERVER_LIST]: 'x' });
  rc.learnFailover(openProperties({ [FAILOVER_SERVER_LIST]: [
    null, 'str', [1, 2],
    { port: 5000 }, // no host: qdrouterd 1.19 crashes on this one; we skip it
    { 'network-host': '', port: 5000 },
    { 'network-host': 'h', port: 0 },
    { 'network-host': 'h', port: 70000 },
    { 'network-host': 'h', port: 'abc' },
    { 'network-host': 'h', port: '' },
    { 'network-host': 'h', port: 1.5 },
    { 'network-host': '127.0.0.1', port: 5672 }, // the configured one
    { 'network-host': 'ok', port: '5000' },
    { 'network-host': 'ok', port: 5000 },
  ] }));
  assert.equal(cands(rc), ['127.0.0.1:5672', 'ok:5000']);
});



test("a listener's failover-server-list, qdrouterd's form: symbol keys, string values, scheme only when written", () => {
  const list = listenerFailoverServerList([{ scheme: 'amqp', host: 'h', port: 25000 }, { scheme: 'amqps', host: 't', port: 5671, schemeWritten: true }]);
  const w = new Writer(64);
  w.value(list);
  const bytes = w.take();
  // list8 of two map8s: sym8 "network-host", str8 "h", sym8 "port", str8 "25000"; then the same with sym8 "scheme" str8 "amqps".
  assert.ok(bytes.includes(Buffer.concat([Buffer.from([0xa3, 12]), Buffer.from('network-host'), Buffer.from([0xa1, 1]), Buffer.from('h')])), bytes.toString('hex'));
  assert.ok(bytes.includes(Buffer.concat([Buffer.from([0xa3, 4]), Buffer.from('port'), Buffer.from([0xa1, 5]), Buffer.from('25000')])), 'port as a string');
  assert.ok(bytes.includes(Buffer.concat([Buffer.from([0xa3, 6]), Buffer.from('scheme'), Buffer.from([0xa1, 5]), Buffer.from('amqps')])));
  assert.is(bytes.indexOf(Buffer.from('scheme')), bytes.lastIndexOf(Buffer.from('scheme')), 'only the second entry names a scheme');
  assert.is(bytes[0], 0xc0, 'a list8');
});

test('auto-links for the same address but different container-ids are different auto-links (management can add one beside the other)', () => {
  const rc = container();
  const base = { address: 'node.1', direction: 'out' as const, phase: 0 };
  rc.setAutoLinks([{ ...base, name: 'a', containerId: 'container.1' }]);
  rc.setAutoLinks([{ ...base, name: 'a', containerId: 'container.1' }, { ...base, name: 'b', containerId: 'container.new' }]);
  assert.equal(rc.autoLinks.map((x) => x.settings.name), ['a', 'b']);
});

test.run();
