// Anonymous relay (null target, per-message `to`) and dynamic reply addresses
// (amqp:/_topo/0/R1/temp.*) for request/reply, with Proton and rhea clients.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runProton, startProton } from '../support/proton';
import { collect, once, outcomes, range, rheaConnect, url, waitFor, withRouter } from './helpers';

const TEMP = /^amqp:\/_topo\/0\/R1\/temp\.[A-Za-z0-9_-]+$/;

test('anonymous relay reaches receivers by "to"', async () => {
  // proton send --anonymous (to closest.ra)   --> [R1] --> proton receive closest.ra
  // proton send --anonymous (to balanced.rb)  --> [R1] --> proton receive balanced.rb
  // proton send --anonymous (to multicast.rc) --> [R1] --> proton receive multicast.rc x2
  await withRouter(async (r) => {
    const N = 6;
    const targets = [['closest.ra', 'A-'], ['balanced.rb', 'B-'], ['multicast.rc', 'C-']];
    const rx = [
      startProton('receive.py', ['--url', url(r), '--address', 'closest.ra', '--count', String(N), '--timeout', '6']),
      startProton('receive.py', ['--url', url(r), '--address', 'balanced.rb', '--count', String(N), '--timeout', '6']),
      startProton('receive.py', ['--url', url(r), '--address', 'multicast.rc', '--count', String(N), '--timeout', '6']),
      startProton('receive.py', ['--url', url(r), '--address', 'multicast.rc', '--count', String(N), '--timeout', '6']),
    ];
    await Promise.all(rx.map((p) => p.ready));
    const tx = await Promise.all(targets.map(([address, prefix]) =>
      runProton('send.py', ['--url', url(r), '--address', address, '--anonymous', '--body-prefix', prefix, '--count', String(N), '--timeout', '6'])));
    for (const t of tx) {
      assert.is(t.code, 0, t.stderr);
      assert.equal({ sent: t.result.sent, accepted: t.result.accepted }, { sent: N, accepted: N });
    }
    const [a, b, c1, c2] = await Promise.all(rx.map((p) => p.done));
    assert.equal(a.result.messages, range(N, (i) => `A-${i}`));
    assert.equal(b.result.messages, range(N, (i) => `B-${i}`));
    assert.equal(c1.result.messages, range(N, (i) => `C-${i}`));
    assert.equal(c2.result.messages, range(N, (i) => `C-${i}`));
  });
});

test('one anonymous rhea sender, interleaved destinations', async () => {
  // rhea send (null target; to = closest.x1 / closest.x2 alternately) --> [R1] --> proton receive closest.x1
  //                                                                           \-> proton receive closest.x2
  await withRouter(async (r) => {
    const N = 10;
    const rx1 = startProton('receive.py', ['--url', url(r), '--address', 'closest.x1', '--count', String(N / 2), '--timeout', '6']);
    const rx2 = startProton('receive.py', ['--url', url(r), '--address', 'closest.x2', '--count', String(N / 2), '--timeout', '6']);
    await Promise.all([rx1.ready, rx2.ready]);
    const c = await rheaConnect(r);
    try {
      const caps = ([] as string[]).concat((c.conn as any).remote.open.offered_capabilities ?? []).map(String);
      assert.ok(caps.includes('ANONYMOUS-RELAY'), `the router offers ANONYMOUS-RELAY: ${caps}`);
      // As qdrouterd 1.19: offered and desired alike, streaming links included.
      const desired = ([] as string[]).concat((c.conn as any).remote.open.desired_capabilities ?? []).map(String);
      assert.equal([caps, desired], [['ANONYMOUS-RELAY', 'qd.streaming-links'], ['ANONYMOUS-RELAY', 'qd.streaming-links']]);
      const s = c.conn.open_sender({ target: {} } as any);
      const seen = outcomes(s);
      await waitFor(() => s.sendable(), 3000, 'credit for the anonymous sender');
      for (let i = 0; i < N; i++) s.send({ to: i % 2 ? 'closest.x2' : 'closest.x1', body: `m${i}` });
      const [d1, d2] = await Promise.all([rx1.done, rx2.done]);
      assert.equal(d1.result.messages, ['m0', 'm2', 'm4', 'm6', 'm8']);
      assert.equal(d2.result.messages, ['m1', 'm3', 'm5', 'm7', 'm9']);
      await waitFor(() => seen.accepted === N, 3000, 'outcomes');
    } finally {
      await c.close();
    }
  });
});

test('request/reply through a dynamic reply address (Proton)', async () => {
  // proton request_reply (dynamic receiver, reply_to = temp address) --> [R1 closest.svc] --> proton responder
  //            ^---------------------- replies to reply_to (anonymous sender) -----------------/
  // and the same with a responder that opens a sender per reply address (--no-anonymous)
  await withRouter(async (r) => {
    const N = 8;
    const run = async (service: string, extra: string[], name: string) => {
      const resp = startProton('responder.py', ['--url', url(r), '--address', service, '--count', String(N), '--name', name, '--timeout', '8', ...extra]);
      await resp.ready;
      const rr = await runProton('request_reply.py', ['--url', url(r), '--address', service, '--count', String(N), '--timeout', '8']);
      return { rr, resp: await resp.done };
    };
    const [anon, perAddress] = await Promise.all([run('closest.svc', [], 'anon'), run('balanced.svc', ['--no-anonymous'], 'named')]);
    for (const [name, { rr, resp }] of [['anon', anon], ['named', perAddress]] as const) {
      assert.is(rr.code, 0, `${name}: ${rr.stderr}`);
      assert.is(resp.code, 0, `${name}: ${resp.stderr}`);
      assert.match(rr.result.reply_to, TEMP, `${name}: the router names the reply address`);
      assert.equal({ sent: rr.result.sent, accepted: rr.result.accepted, replies: rr.result.replies, matched: rr.result.matched, unexpected: rr.result.unexpected },
        { sent: N, accepted: N, replies: N, matched: N, unexpected: 0 }, `${name}: every reply came back, matched`);
      const detail = (rr.result.replies_detail as { correlation_id: string; body: string; responder: string }[])
        .slice()
        .sort((x, y) => Number(x.correlation_id.slice(5)) - Number(y.correlation_id.slice(5)));
      assert.equal(detail, range(N, (i) => ({ correlation_id: `corr-${i}`, body: `REQUEST-${i}`, responder: name })));
      assert.equal({ handled: resp.result.handled, replied: resp.result.replied, reply_accepted: resp.result.reply_accepted },
        { handled: N, replied: N, reply_accepted: N }, `${name}: the responder's replies were accepted`);
    }
    assert.is.not(anon.rr.result.reply_to, perAddress.rr.result.reply_to, 'each dynamic receiver gets its own address');
  });
});

test('request/reply with a rhea dynamic receiver', async () => {
  // rhea send (reply_to = rhea's dynamic address) --> [R1 closest.rsvc] --> proton responder
  // rhea dynamic receive <-------------- replies (anonymous sender, to = reply_to) ------/
  await withRouter(async (r) => {
    const N = 6;
    const resp = startProton('responder.py', ['--url', url(r), '--address', 'closest.rsvc', '--count', String(N), '--name', 'svc', '--timeout', '8']);
    await resp.ready;
    const c = await rheaConnect(r);
    try {
      const rcv = c.conn.open_receiver({ source: { dynamic: true } } as any);
      const replies = collect(rcv);
      await once(rcv as any, 'receiver_open');
      const replyTo = String((rcv as any).remote.attach.source.address);
      assert.match(replyTo, TEMP);
      const s = c.conn.open_sender({ target: { address: 'closest.rsvc' } });
      const seen = outcomes(s);
      await waitFor(() => s.sendable(), 3000, 'credit');
      for (let i = 0; i < N; i++) s.send({ reply_to: replyTo, correlation_id: `rc-${i}`, message_id: `id-${i}`, body: `hello-${i}` });
      await waitFor(() => replies.messages.length === N, 5000, `${N} replies`);
      const got = replies.messages.map((m) => ({ correlation_id: m.correlation_id, body: m.body, responder: m.application_properties?.responder }));
      got.sort((x, y) => String(x.correlation_id).localeCompare(String(y.correlation_id)));
      assert.equal(got, range(N, (i) => ({ correlation_id: `rc-${i}`, body: `HELLO-${i}`, responder: 'svc' })));
      await waitFor(() => seen.accepted === N, 3000, 'request outcomes');
      const done = await resp.done;
      assert.is(done.result.reply_accepted, N, 'the replies were accepted by rhea');

      // The dynamic address is gone with its receiver: a reply now is released.
      const closed = once(rcv as any, 'receiver_close');
      rcv.close();
      await closed;
      const anon = c.conn.open_sender({ target: {} } as any);
      const late = outcomes(anon);
      await waitFor(() => anon.sendable(), 3000, 'credit');
      anon.send({ to: replyTo, body: 'too late' });
      await waitFor(() => late.released + late.accepted + late.rejected === 1, 3000, 'an outcome');
      assert.is(late.released, 1, 'a message to a dynamic address whose receiver left is released');
    } finally {
      await c.close();
    }
  });
});

test('two dynamic receivers get distinct addresses and only their own replies', async () => {
  // rhea dynamic receive D1 <--\
  // rhea dynamic receive D2 <---[R1]<-- rhea anonymous send (to = D1 / D2)
  await withRouter(async (r) => {
    const c = await rheaConnect(r);
    try {
      const d1 = c.conn.open_receiver({ source: { dynamic: true } } as any);
      const d2 = c.conn.open_receiver({ source: { dynamic: true } } as any);
      const g1 = collect(d1);
      const g2 = collect(d2);
      await Promise.all([once(d1 as any, 'receiver_open'), once(d2 as any, 'receiver_open')]);
      const a1 = String((d1 as any).remote.attach.source.address);
      const a2 = String((d2 as any).remote.attach.source.address);
      assert.match(a1, TEMP);
      assert.match(a2, TEMP);
      assert.is.not(a1, a2);
      const s = c.conn.open_sender({ target: {} } as any);
      await waitFor(() => s.sendable(), 3000, 'credit');
      s.send({ to: a1, body: 'for d1' });
      s.send({ to: a2, body: 'for d2' });
      s.send({ to: a1, body: 'for d1 again' });
      await waitFor(() => g1.messages.length === 2 && g2.messages.length === 1, 3000, 'the replies');
      assert.equal(g1.messages.map((m) => m.body), ['for d1', 'for d1 again']);
      assert.equal(g2.messages.map((m) => m.body), ['for d2']);
    } finally {
      await c.close();
    }
  });
});

test('a targeted sender routes by its target, not by the message "to"', async () => {
  // proton send (target closest.tgt, to = closest.other) --> [R1] --> proton receive closest.tgt
  //                                                            (not) proton receive closest.other
  await withRouter(async (r) => {
    const tgt = startProton('receive.py', ['--url', url(r), '--address', 'closest.tgt', '--count', '3', '--timeout', '5']);
    const other = startProton('receive.py', ['--url', url(r), '--address', 'closest.other', '--count', '0', '--timeout', '2.5']);
    await Promise.all([tgt.ready, other.ready]);
    const tx = await runProton('send.py', ['--url', url(r), '--address', 'closest.tgt', '--count', '3', '--message-properties', '{"to":"closest.other"}', '--timeout', '5']);
    assert.is(tx.result.accepted, 3, tx.stderr);
    assert.is((await tgt.done).result.received, 3);
    assert.is((await other.done).result.received, 0);
  });
});

test('a sender can attach to a dynamic address as its target', async () => {
  // proton send (target = rhea's dynamic address) --> [R1] --> rhea dynamic receive
  await withRouter(async (r) => {
    const c = await rheaConnect(r);
    try {
      const rcv = c.conn.open_receiver({ source: { dynamic: true } } as any);
      const got = collect(rcv);
      await once(rcv as any, 'receiver_open');
      const addr = String((rcv as any).remote.attach.source.address);
      const tx = await runProton('send.py', ['--url', url(r), '--address', addr, '--count', '4', '--timeout', '5']);
      assert.equal({ credit: tx.result.credit_received, accepted: tx.result.accepted }, { credit: true, accepted: 4 }, tx.stderr);
      assert.equal(got.messages.map((m) => m.body), range(4, (i) => `message-${i}`));
    } finally {
      await c.close();
    }
  });
});

test('a sender with a dynamic target gets a new mobile address (amqp:/_$temp.*, as qdrouterd); a consumer of it gets what it sends', async () => {
  // rhea sender (target dynamic) --> [R1] --> rhea receiver on the address the router chose
  await withRouter(async (r) => {
    const c = await rheaConnect(r);
    try {
      const s = c.conn.open_sender({ target: { dynamic: true } } as any);
      const address = await new Promise<string>((resolve) => s.on('sender_open', () => resolve((s as any).remote.attach.target.address)));
      assert.match(address, /^amqp:\/_\$temp\.[A-Za-z0-9_-]+$/);
      const rx = c.conn.open_receiver(address);
      const got = collect(rx);
      await waitFor(() => rx.is_open(), 3000, 'the receiver attached');
      const seen = outcomes(s);
      await waitFor(() => s.sendable(), 3000, 'credit once a consumer exists');
      s.send({ body: 'to-temp' });
      await waitFor(() => got.messages.length === 1 && seen.accepted === 1, 3000, 'the message delivered and accepted');
      assert.is(got.messages[0].body, 'to-temp');
    } finally {
      await c.close();
    }
  });
});

test.run();
