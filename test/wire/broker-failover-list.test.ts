// The broker's open frame announces its pair in `failover-server-list` exactly as Apache
// ActiveMQ Artemis does, byte for byte: qdrouterd 1.19 (route-container connector) matches only
// symbol keys and segfaults on an entry whose host it does not find.
//
//   raw client --> [pair member m1 :p1, live]   [m2 :p2, waiting on the store lock]
//                          \                     /
//                           dataDir D (members/)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { skipValue } from '../../amqp/codec';
import { RawClient } from '../support/raw-client';
import { RunningBroker, brokerConfig, freePort, startBroker, tempDir } from '../support/broker';

let m1: RunningBroker;
let m2: RunningBroker;
let p1 = 0;
let p2 = 0;
const clients: RawClient[] = [];

test.before(async () => {
  const dataDir = tempDir();
  [p1, p2] = [await freePort(), await freePort()];
  m1 = await startBroker(brokerConfig(dataDir, { id: 'm1', port: p1 }), { name: 'm1' });
  m2 = await startBroker(brokerConfig(dataDir, { id: 'm2', port: p2 }), { name: 'm2', waitLive: false });
  await new Promise((r) => setTimeout(r, 1100)); // the members list is cached for 1 s
});

test.after(async () => {
  for (const c of clients.splice(0)) c.destroy();
  if (m2) await m2.stop();
  if (m1) assert.is(await m1.stop(), 0);
});

/** sym8 / str8 as Proton-J writes them (length-prefixed, one byte). */
const sym8 = (s: string) => Buffer.concat([Buffer.from([0xa3, s.length]), Buffer.from(s, 'latin1')]);
const str8 = (s: string) => Buffer.concat([Buffer.from([0xa1, Buffer.byteLength(s)]), Buffer.from(s, 'utf8')]);
const int32 = (n: number) => { const b = Buffer.alloc(5); b[0] = 0x71; b.writeInt32BE(n, 1); return b; };
function compound8(code: number, count: number, items: Buffer[]): Buffer {
  const body = Buffer.concat(items);
  return Buffer.concat([Buffer.from([code, body.length + 1, count]), body]);
}

/**
 * Artemis's entry (AMQPConnectionContext.getConnectionPropertiesForResponse, encoded by
 * Proton-J): map8 of symbol keys in HashMap order hostname, scheme, port, network-host; the host
 * and scheme str8, the port an int.
 */
function artemisEntry(host: string, port: number, scheme: string): Buffer {
  return compound8(0xc1, 8, [sym8('hostname'), str8(host), sym8('scheme'), str8(scheme), sym8('port'), int32(port), sym8('network-host'), str8(host)]);
}

/** The open's properties map (raw field 9) split into [key bytes, value bytes] pairs. */
function entries(raw: Buffer): [Buffer, Buffer][] {
  assert.ok(raw[0] === 0xc1 || raw[0] === 0xd1, `properties is a map: ${raw.toString('hex')}`);
  let off = raw[0] === 0xc1 ? 3 : 9;
  const out: [Buffer, Buffer][] = [];
  while (off < raw.length) {
    const k = skipValue(raw, off, raw.length);
    const v = skipValue(raw, k, raw.length);
    out.push([raw.subarray(off, k), raw.subarray(k, v)]);
    off = v;
  }
  return out;
}

test('the open frame\'s failover-server-list is byte for byte the Artemis form (symbol keys, str8 host and scheme, int port)', async () => {
  const c = await RawClient.open(p1, { containerId: 'raw' });
  clients.push(c);
  const open = await c.waitForFrame((f) => f.name === 'open');
  const props = entries(open.raw[9]);
  for (const [k] of props) assert.is(k[0], 0xa3, `every properties key is a symbol: ${k.toString('hex')}`);
  const fsl = props.find(([k]) => k.equals(sym8('failover-server-list')));
  assert.ok(fsl, `failover-server-list announced: ${open.raw[9].toString('hex')}`);
  // Members in id order: m1 (live, this one), m2 (waiting).
  const expected = compound8(0xc0, 2, [artemisEntry('127.0.0.1', p1, 'amqp'), artemisEntry('127.0.0.1', p2, 'amqp')]);
  assert.is(fsl![1].toString('hex'), expected.toString('hex'));
});

test('the waiting member does not listen; the live one keeps serving after the capture', async () => {
  assert.is(m2.live, false);
  const c = await RawClient.open(p1, { containerId: 'raw2', session: true });
  clients.push(c);
  assert.ok(c.frames.some((f) => f.name === 'begin'));
});

test.run();
