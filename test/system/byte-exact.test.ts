// Byte-exact forwarding with Proton's raw_roundtrip.py (every section, every primitive type,
// multi-frame bodies, footers): the router passes what it does not own unchanged, and with
// stripAnnotations: no adds only its x-opt-qd.ingress and x-opt-qd.trace annotations.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Json, plain, runProton, startProton } from '../support/proton';
import { standaloneConfig, url, withRouter } from './helpers';

// listener 0: defaults (stripAnnotations both); listener 1: stripAnnotations no
const TWO_LISTENERS = standaloneConfig('listener {\n    host: 127.0.0.1\n    port: 0\n    stripAnnotations: no\n}\n');
const OPTS = { listeners: 2 };

/** The message-annotation map of a typed message as [key, plain value] pairs. */
function annotations(m: Json): [string, Json][] {
  const ma = m.message_annotations;
  if (!ma) return [];
  return (ma.value as [Json, Json][]).map(([k, v]) => [String(k.value), plain(v)]);
}

function routerKeys(m: Json): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const [k, v] of annotations(m)) if (k.startsWith('x-opt-qd.')) out[k] = v;
  return out;
}

test('default listener: every section of every message arrives unchanged', async () => {
  // proton raw sender --> [R1 listener 0, stripAnnotations both] --> proton raw receiver
  // (8 messages: all sections and types, several Data / amqp-sequence sections, a 100 kB body, footers)
  await withRouter(async (r) => {
    const variants: [string, string[]][] = [
      ['targeted', ['--address', 'closest.raw']],
      ['anonymous relay', ['--address', 'balanced.raw', '--anonymous']],
      ['pre-settled', ['--address', 'closest.raw2', '--settled']],
      ['multicast, 300 kB', ['--address', 'multicast.raw', '--large-size', '300000']],
    ];
    const results = await Promise.all(variants.map(([, args]) => runProton('raw_roundtrip.py', ['--url', url(r), '--summary', '--timeout', '10', ...args])));
    results.forEach((res, k) => {
      const label = variants[k][0];
      assert.is(res.code, 0, `${label}: ${res.stderr}`);
      assert.is(res.result.received_count, 8, `${label}: all 8 received`);
      assert.equal(res.result.differences, [], `${label}: no section differs`);
      assert.is(res.result.equal, true, label);
      // (with --anonymous, encoded_sizes are those before the script adds `to`: not comparable)
      if (!variants[k][1].includes('--anonymous')) assert.equal(res.result.received_sizes, res.result.encoded_sizes, `${label}: same size on the wire, byte for byte`);
      if (!variants[k][1].includes('--settled')) assert.equal(res.result.outcomes, { accepted: 8 }, label);
    });
  }, TWO_LISTENERS, OPTS);
});

test('stripAnnotations no: the only change is x-opt-qd.ingress "0/R1" and x-opt-qd.trace ["0/R1"]', async () => {
  // proton raw sender --> [R1 listener 1, stripAnnotations no] --> proton raw receiver
  await withRouter(async (r) => {
    const [ignoring, full] = await Promise.all([
      runProton('raw_roundtrip.py', ['--url', url(r, 1), '--address', 'closest.ns1', '--ignore-annotation-prefix', 'x-opt-qd.', '--summary', '--timeout', '10']),
      runProton('raw_roundtrip.py', ['--url', url(r, 1), '--address', 'closest.ns2', '--timeout', '10']),
    ]);
    assert.is(ignoring.code, 0, ignoring.stderr);
    assert.equal(ignoring.result.differences, [], 'nothing but x-opt-qd.* differs');
    assert.is(ignoring.result.equal, true);

    assert.is(full.code, 0, full.stderr);
    assert.is(full.result.received_count, 8);
    for (const d of full.result.differences) assert.is(d.section, 'message_annotations', `message ${d.index}: only message annotations differ`);
    (full.result.received as Json[]).forEach((m, i) => {
      assert.equal(routerKeys(m), { 'x-opt-qd.ingress': '0/R1', 'x-opt-qd.trace': ['0/R1'] }, `message ${i}: the router's annotations`);
      // user annotations first, unchanged and in order; the router's come after them
      const sent = annotations(full.result.sent[i]);
      const got = annotations(m);
      assert.equal(got.slice(0, sent.length), sent, `message ${i}: user annotations unchanged`);
      assert.equal(got.slice(sent.length).map(([k]) => k), ['x-opt-qd.ingress', 'x-opt-qd.trace']);
      assert.equal(m.body, full.result.sent[i].body, `message ${i}: body`);
      assert.equal(m.footer, full.result.sent[i].footer, `message ${i}: footer`);
    });
  }, TWO_LISTENERS, OPTS);
});

test('across listeners: annotations depend on the receiving listener', async () => {
  // proton raw sender (listener 0) --> [R1] --> proton raw receiver (listener 1, no strip): annotated
  // proton raw sender (listener 1) --> [R1] --> proton raw receiver (listener 0, both):     unchanged
  await withRouter(async (r) => {
    const [toNoStrip, toStrip] = await Promise.all([
      runProton('raw_roundtrip.py', ['--url', url(r, 0), '--receive-url', url(r, 1), '--address', 'closest.x01', '--timeout', '10']),
      runProton('raw_roundtrip.py', ['--url', url(r, 1), '--receive-url', url(r, 0), '--address', 'closest.x10', '--summary', '--timeout', '10']),
    ]);
    assert.is(toStrip.code, 0, toStrip.stderr);
    assert.is(toStrip.result.equal, true, JSON.stringify(toStrip.result.differences).slice(0, 500));
    assert.equal(toStrip.result.received_sizes, toStrip.result.encoded_sizes);
    assert.is(toNoStrip.code, 0, toNoStrip.stderr);
    for (const m of toNoStrip.result.received as Json[]) assert.equal(routerKeys(m), { 'x-opt-qd.ingress': '0/R1', 'x-opt-qd.trace': ['0/R1'] });
  }, TWO_LISTENERS, OPTS);
});

test('receive.py --dump shows the router annotations (no strip) and none by default', async () => {
  // proton send --> [R1] --> proton receive --dump on listener 1 (no strip)
  //                     \--> proton receive --dump on listener 0 (both)       (multicast: one copy each)
  await withRouter(async (r) => {
    const noStrip = startProton('receive.py', ['--url', url(r, 1), '--address', 'multicast.dump', '--count', '2', '--dump', '--timeout', '6']);
    const strip = startProton('receive.py', ['--url', url(r, 0), '--address', 'multicast.dump', '--count', '2', '--dump', '--timeout', '6']);
    await Promise.all([noStrip.ready, strip.ready]);
    const tx = await runProton('send.py', ['--url', url(r), '--address', 'multicast.dump', '--count', '2', '--annotations', '{"x-user":"kept"}', '--timeout', '6']);
    assert.is(tx.result.accepted, 2, tx.stderr);
    const [a, b] = await Promise.all([noStrip.done, strip.done]);
    for (const m of a.result.messages) {
      assert.equal(Object.fromEntries(annotations(m)), { 'x-user': 'kept', 'x-opt-qd.ingress': '0/R1', 'x-opt-qd.trace': ['0/R1'] });
    }
    for (const m of b.result.messages) assert.equal(Object.fromEntries(annotations(m)), { 'x-user': 'kept' });
  }, TWO_LISTENERS, OPTS);
});

test('router annotations a client injects: dropped by default, kept and appended to with no strip', async () => {
  // proton send (x-opt-qd.ingress "0/X", x-opt-qd.trace ["0/X"]) --> [R1 listener 0] --> proton receive --dump (listener 0)
  // proton send (same)                                           --> [R1 listener 1] --> proton receive --dump (listener 1)
  await withRouter(async (r) => {
    const injected = JSON.stringify({ 'x-user': 1, 'x-opt-qd.ingress': '0/X', 'x-opt-qd.trace': ['0/X'] });
    const run = async (index: number, address: string) => {
      const rx = startProton('receive.py', ['--url', url(r, index), '--address', address, '--count', '1', '--dump', '--timeout', '6']);
      await rx.ready;
      const tx = await runProton('send.py', ['--url', url(r, index), '--address', address, '--count', '1', '--annotations', injected, '--timeout', '6']);
      assert.is(tx.result.accepted, 1, tx.stderr);
      return (await rx.done).result.messages[0];
    };
    const [def, keep] = await Promise.all([run(0, 'closest.inj0'), run(1, 'closest.inj1')]);
    assert.equal(Object.fromEntries(annotations(def)), { 'x-user': 1 }, 'stripAnnotations both: the client can neither inject nor see x-opt-qd.*');
    const k = routerKeys(keep);
    assert.equal(k['x-opt-qd.trace'], ['0/X', '0/R1'], 'no strip: the trace is kept and R1 appended');
    assert.is(k['x-opt-qd.ingress'], '0/X', 'no strip: the ingress a message already has is kept');
  }, TWO_LISTENERS, OPTS);
});

test('a listener with maxFrameSize 512: a 1 MB body in thousands of frames, unchanged', async () => {
  // proton raw sender --> [R1 listener maxFrameSize 512] --> proton raw receiver (same listener)
  // proton raw sender (listener 0) --> [R1 multicast] --> proton raw receiver (listener maxFrameSize 512)
  const config = standaloneConfig('listener {\n    host: 127.0.0.1\n    port: 0\n    maxFrameSize: 512\n}\n');
  await withRouter(async (r) => {
    const [same, across] = await Promise.all([
      runProton('raw_roundtrip.py', ['--url', url(r, 1), '--address', 'closest.mf', '--large-size', '1000000', '--summary', '--timeout', '20']),
      runProton('raw_roundtrip.py', ['--url', url(r, 0), '--receive-url', url(r, 1), '--address', 'multicast.mf', '--large-size', '1000000', '--summary', '--timeout', '20']),
    ]);
    for (const res of [same, across]) {
      assert.is(res.code, 0, res.stderr);
      assert.is(res.result.equal, true, JSON.stringify(res.result.differences).slice(0, 300));
      assert.equal(res.result.received_sizes, res.result.encoded_sizes);
      assert.equal(res.result.outcomes, { accepted: 8 });
    }
  }, config, OPTS);
});

test.run();
