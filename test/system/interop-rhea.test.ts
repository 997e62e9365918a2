// Interoperability: rhea and Proton on either side of the router, with application properties
// of many AMQP types and properties-section fields surviving the trip.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import rhea = require('rhea');
import { Json, runProton, startProton } from '../support/proton';
import { collect, once, outcomes, rheaConnect, url, waitFor, withRouter } from './helpers';

const t = rhea.types;
const UUID = 'f81d4fae-7dec-11d0-a765-00a0c91e6bf6';

/** Typed application properties of a --dump message as {key: {type, value}}. */
function typedProps(m: Json): Record<string, { type: string; value: Json }> {
  const out: Record<string, { type: string; value: Json }> = {};
  for (const [k, v] of m.application_properties.value as [Json, Json][]) out[k.value] = { type: v.type, value: v.value };
  return out;
}

test('rhea sender -> router -> Proton receiver: application properties keep type and value', async () => {
  // rhea send x3 --> [R1 closest.interop1] --> proton receive --dump
  await withRouter(async (r) => {
    const rx = startProton('receive.py', ['--url', url(r), '--address', 'closest.interop1', '--count', '3', '--dump', '--timeout', '6']);
    await rx.ready;
    const c = await rheaConnect(r);
    try {
      const s = c.conn.open_sender({ target: { address: 'closest.interop1' } });
      const seen = outcomes(s);
      await waitFor(() => s.sendable(), 3000, 'credit');
      for (let i = 0; i < 3; i++) {
        s.send({
          message_id: `rhea-${i}`,
          correlation_id: t.wrap_uuid(rhea.string_to_uuid(UUID)),
          subject: 'interop',
          content_type: 'application/x-test',
          group_id: 'g',
          creation_time: new Date(1_700_000_000_000),
          application_properties: {
            index: t.wrap_uint(i),
            str: 'grüße 😀',
            int: t.wrap_int(-5),
            uint: t.wrap_uint(4_000_000_000),
            long: t.wrap_long(-(2 ** 40)),
            ulong: t.wrap_ulong(2 ** 40),
            short: t.wrap_short(-300),
            ushort: t.wrap_ushort(65535),
            byte: t.wrap_byte(-128),
            ubyte: t.wrap_ubyte(255),
            double: 3.25,
            float: t.wrap_float(1.5),
            bool: true,
            nothing: null,
            ts: new Date(1_700_000_000_123),
            uuid: t.wrap_uuid(rhea.string_to_uuid(UUID)),
            bin: Buffer.from([0, 1, 2, 255]),
            sym: t.wrap_symbol('a-symbol'),
            char: t.wrap_char(0x1f600),
          } as any,
          body: { k: 'v', n: i },
        } as any);
      }
      const d = await rx.done;
      assert.is(d.code, 0, d.stderr);
      assert.is(d.result.received, 3);
      (d.result.messages as Json[]).forEach((m, i) => {
        assert.equal(typedProps(m), {
          index: { type: 'uint', value: i },
          str: { type: 'string', value: 'grüße 😀' },
          int: { type: 'int', value: -5 },
          uint: { type: 'uint', value: 4_000_000_000 },
          long: { type: 'long', value: -(2 ** 40) },
          ulong: { type: 'ulong', value: 2 ** 40 },
          short: { type: 'short', value: -300 },
          ushort: { type: 'ushort', value: 65535 },
          byte: { type: 'byte', value: -128 },
          ubyte: { type: 'ubyte', value: 255 },
          double: { type: 'double', value: 3.25 },
          float: { type: 'float', value: 1.5 },
          bool: { type: 'boolean', value: true },
          nothing: { type: 'null', value: undefined },
          ts: { type: 'timestamp', value: 1_700_000_000_123 },
          uuid: { type: 'uuid', value: UUID },
          bin: { type: 'binary', value: 'AAEC/w==' },
          sym: { type: 'symbol', value: 'a-symbol' },
          char: { type: 'char', value: '😀' },
        }, `message ${i}: application properties`);
        const p = m.properties;
        assert.equal(p.message_id, { type: 'string', value: `rhea-${i}` });
        assert.equal(p.correlation_id, { type: 'uuid', value: UUID });
        assert.equal(p.subject, { type: 'string', value: 'interop' });
        assert.equal(p.content_type, { type: 'symbol', value: 'application/x-test' });
        assert.equal(p.group_id, { type: 'string', value: 'g' });
        assert.equal(p.creation_time, { type: 'timestamp', value: 1_700_000_000_000 });
        assert.is(m.body_section, 'amqp-value');
        assert.equal(m.body.type, 'map');
      });
      await waitFor(() => seen.accepted === 3, 3000, 'rhea outcomes');
    } finally {
      await c.close();
    }
  });
});

test('Proton sender -> router -> rhea receiver: application properties keep their values', async () => {
  // proton send x2 (typed --properties, --message-properties) --> [R1 balanced.interop2] --> rhea receive
  await withRouter(async (r) => {
    const c = await rheaConnect(r);
    try {
      const rcv = c.conn.open_receiver({ source: { address: 'balanced.interop2' } });
      const got = collect(rcv);
      await once(rcv as any, 'receiver_open');
      const props = {
        str: 'grüße 😀',
        long: 5,
        longMin: { type: 'long', value: -(2 ** 53 - 1) },
        int: { type: 'int', value: -2147483648 },
        uint: { type: 'uint', value: 4294967295 },
        ulong: { type: 'ulong', value: 2 ** 40 },
        short: { type: 'short', value: -32768 },
        ushort: { type: 'ushort', value: 65535 },
        byte: { type: 'byte', value: -128 },
        ubyte: { type: 'ubyte', value: 255 },
        double: 3.25,
        float: { type: 'float', value: 0.5 },
        bool: false,
        nothing: null,
        ts: { type: 'timestamp', value: 1_700_000_000_123 },
        uuid: { type: 'uuid', value: UUID },
        bin: { type: 'binary', value: 'AAEC/w==' },
        sym: { type: 'symbol', value: 'a-symbol' },
        char: { type: 'char', value: 'é' },
      };
      const msgProps = { message_id: 'proton-1', correlation_id: { type: 'ulong', value: 99 }, subject: 'interop', content_type: 'text/plain', reply_to: 'somewhere' };
      const tx = await runProton('send.py', ['--url', url(r), '--address', 'balanced.interop2', '--count', '2',
        '--properties', JSON.stringify(props), '--message-properties', JSON.stringify(msgProps), '--timeout', '6']);
      assert.is(tx.code, 0, tx.stderr);
      assert.is(tx.result.accepted, 2, 'rhea accepted both');
      await waitFor(() => got.messages.length === 2, 3000, 'two messages');
      got.messages.forEach((m, i) => {
        const ap = m.application_properties as Record<string, any>;
        assert.is(m.body, `message-${i}`);
        assert.equal(
          { ...ap, ts: ap.ts instanceof Date ? ap.ts.getTime() : ap.ts, uuid: Buffer.isBuffer(ap.uuid) ? rhea.uuid_to_string(ap.uuid) : ap.uuid, bin: Buffer.isBuffer(ap.bin) ? ap.bin.toString('base64') : ap.bin },
          {
            str: 'grüße 😀', long: 5, longMin: -(2 ** 53 - 1), int: -2147483648, uint: 4294967295, ulong: 2 ** 40,
            short: -32768, ushort: 65535, byte: -128, ubyte: 255, double: 3.25, float: 0.5, bool: false, nothing: null,
            ts: 1_700_000_000_123, uuid: UUID, bin: 'AAEC/w==', sym: 'a-symbol', char: 'é'.codePointAt(0),
          },
          `message ${i}: application properties as rhea decodes them`,
        );
        assert.is(m.message_id, 'proton-1');
        assert.is(m.correlation_id, 99);
        assert.is(m.subject, 'interop');
        assert.is(m.content_type, 'text/plain');
        assert.is(m.reply_to, 'somewhere');
      });
    } finally {
      await c.close();
    }
  });
});

test('rhea to rhea through the router, multicast, with a large body', async () => {
  // rhea send (300 kB binary body + properties) --> [R1 multicast.big] --> rhea receive x2
  await withRouter(async (r) => {
    const c1 = await rheaConnect(r);
    const c2 = await rheaConnect(r);
    try {
      const r1 = c1.conn.open_receiver({ source: { address: 'multicast.big' } });
      const r2 = c2.conn.open_receiver({ source: { address: 'multicast.big' } });
      const g1 = collect(r1);
      const g2 = collect(r2);
      await Promise.all([once(r1 as any, 'receiver_open'), once(r2 as any, 'receiver_open')]);
      const s = c1.conn.open_sender({ target: { address: 'multicast.big' } });
      const seen = outcomes(s);
      await waitFor(() => s.sendable(), 3000, 'credit');
      const big = Buffer.alloc(300_000);
      for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff;
      s.send({ body: rhea.message.data_section(big), application_properties: { k: 'v', n: t.wrap_long(7) } } as any);
      await waitFor(() => g1.messages.length === 1 && g2.messages.length === 1, 5000, 'one copy each');
      for (const g of [g1, g2]) {
        const m = g.messages[0] as any;
        const body: Buffer = Buffer.isBuffer(m.body) ? m.body : m.body.content;
        assert.ok(Buffer.compare(body, big) === 0, 'the 300 kB body is intact');
        assert.equal(m.application_properties, { k: 'v', n: 7 });
      }
      await waitFor(() => seen.accepted === 1, 3000, 'accepted once both copies are');
    } finally {
      await c1.close();
      await c2.close();
    }
  });
});

test('several sessions on one rhea connection route independently', async () => {
  // rhea connection: session 1 sends to closest.ses2, session 2 receives closest.ses2,
  //                  session 3 sends to balanced.ses3 --> [R1] --> proton receive balanced.ses3
  await withRouter(async (r) => {
    const rx = startProton('receive.py', ['--url', url(r), '--address', 'balanced.ses3', '--count', '3', '--timeout', '5']);
    await rx.ready;
    const c = await rheaConnect(r);
    try {
      const s1 = c.conn.create_session();
      const s2 = c.conn.create_session();
      const s3 = c.conn.create_session();
      s1.begin();
      s2.begin();
      s3.begin();
      const rcv = s2.attach_receiver({ source: { address: 'closest.ses2' } });
      const got = collect(rcv);
      await once(rcv as any, 'receiver_open');
      const a = s1.attach_sender({ target: { address: 'closest.ses2' } });
      const b = s3.attach_sender({ target: { address: 'balanced.ses3' } });
      await waitFor(() => a.sendable() && b.sendable(), 3000, 'credit on both');
      for (let i = 0; i < 3; i++) {
        a.send({ body: `s1-${i}` });
        b.send({ body: `s3-${i}` });
      }
      await waitFor(() => got.messages.length === 3, 3000, 'session 2 receives');
      assert.equal(got.messages.map((m) => m.body), ['s1-0', 's1-1', 's1-2']);
      assert.equal((await rx.done).result.messages, ['s3-0', 's3-1', 's3-2']);
    } finally {
      await c.close();
    }
  });
});

test.run();
