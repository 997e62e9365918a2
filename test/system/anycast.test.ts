// Anycast (closest and balanced) through one standalone router with real Proton and rhea
// clients, and qdrouterd's credit rule: a sender gets credit only while its address has a
// consumer.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runProton, startProton } from '../support/proton';
import { collect, credit, once, outcomes, range, rheaConnect, sorted, standaloneConfig, url, waitFor, withRouter } from './helpers';

const DEBUG_ROUTER_LOG = standaloneConfig('log {\n    module: ROUTER\n    enable: debug+\n}\n');

test('closest: N messages to 2 receivers, each received exactly once overall', async () => {
  // proton send x40 --> [R1 closest.work] --> proton receive x2 (count 0, until timeout)
  await withRouter(async (r) => {
    const N = 40;
    const rx = range(2, () => startProton('receive.py', ['--url', url(r), '--address', 'closest.work', '--count', '0', '--timeout', '3.5']));
    await Promise.all(rx.map((p) => p.ready));
    const tx = await runProton('send.py', ['--url', url(r), '--address', 'closest.work', '--count', String(N), '--timeout', '5']);
    assert.is(tx.code, 0, tx.stderr);
    assert.equal({ sent: tx.result.sent, accepted: tx.result.accepted, unsettled: tx.result.unsettled }, { sent: N, accepted: N, unsettled: 0 });
    const [a, b] = await Promise.all(rx.map((p) => p.done));
    for (const x of [a, b]) assert.is(x.code, 0, x.stderr);
    const bodies: string[] = [...a.result.messages, ...b.result.messages];
    assert.is(bodies.length, N, `no loss, no duplicate: ${a.result.received} + ${b.result.received}`);
    assert.equal(sorted(bodies), sorted(range(N, (i) => `message-${i}`)));
    assert.is(new Set(bodies).size, N, 'no duplicate bodies');
    assert.ok(a.result.received > 0 && b.result.received > 0, `closest spreads over both consumers: ${a.result.received}/${b.result.received}`);
    // Each receiver sees its share in the order sent.
    for (const x of [a, b]) {
      const idx = (x.result.messages as string[]).map((s) => Number(s.slice('message-'.length)));
      assert.equal(idx, [...idx].sort((p, q) => p - q), 'per-consumer order follows the send order');
    }
  });
});

for (const address of ['balanced.work', 'unconfigured.work']) test(`balanced (${address}): the receiver that keeps deliveries unsettled gets no more, the other all the rest`, async () => {
  // rhea send (one at a time) --> [R1 ADDRESS] --> proton receive --no-settle (A, attached first)
  //                                            \-> proton receive, accepts  (B, attached after message 0)
  // rhea send probe ----------> [R1 closest.bprobe] --> rhea receive (same connection: ordering)
  // (ADDRESS: balanced by config, or unconfigured: balanced is the default distribution)
  // Message 0 goes to A (the only consumer) and stays unsettled there. Then each send waits for
  // the previous outcome, so B has 0 outstanding whenever a message is routed and A has 1:
  // balanced (fewest undelivered + unsettled) must send every one of them to B.
  await withRouter(async (r) => {
    const N = 20;
    const A = startProton('receive.py', ['--url', url(r), '--address', address, '--count', '0', '--no-settle', '--timeout', '3']);
    await A.ready;
    const c = await rheaConnect(r);
    try {
      const pr = c.conn.open_receiver({ source: { address: 'closest.bprobe' } });
      await once(pr as any, 'receiver_open');
      const s = c.conn.open_sender({ target: { address }, treat_modified_as_released: false } as any);
      const probe = c.conn.open_sender({ target: { address: 'closest.bprobe' } });
      const seen = outcomes(s);
      let probed = false;
      probe.on('accepted', () => (probed = true));
      await waitFor(() => s.sendable() && probe.sendable(), 5000, 'credit');
      s.send({ body: 'message-0' });
      probe.send({ body: 'probe' });
      await waitFor(() => probed, 3000, 'the probe: message-0 is routed (to A)');
      const B = startProton('receive.py', ['--url', url(r), '--address', address, '--count', String(N - 1), '--timeout', '5']);
      await B.ready;
      for (let i = 1; i < N; i++) {
        s.send({ body: `message-${i}` });
        await waitFor(() => seen.accepted === i, 3000, `the outcome of message-${i} (from B; A never settles)`);
      }
      const [a, b] = await Promise.all([A.done, B.done]);
      assert.is(a.code, 0, a.stderr);
      assert.is(b.code, 0, b.stderr);
      assert.equal(a.result.messages, ['message-0'], 'A got only the message sent while it was alone');
      assert.is(a.result.unsettled_kept, 1);
      assert.equal(b.result.messages, range(N - 1, (i) => `message-${i + 1}`), 'B got every other message');
      // A left with its message unsettled: the sender learns modified(delivery-failed).
      await waitFor(() => seen.modified === 1, 3000, 'the outcome of message-0');
      assert.is(seen.released + seen.rejected, 0);
    } finally {
      await c.close();
    }
  });
});

test('no consumer: a sender gets no credit', async () => {
  // proton send --> [R1 closest.nobody] (no consumer)
  await withRouter(async (r) => {
    const tx = await runProton('send.py', ['--url', url(r), '--address', 'closest.nobody', '--count', '3', '--timeout', '1']);
    assert.is(tx.code, 0, tx.stderr);
    assert.is(tx.result.link_opened, true, 'the router attaches the link');
    assert.is(tx.result.credit_received, false, 'but gives no credit');
    assert.is(tx.result.timed_out, true);
    assert.is(tx.result.sent, 0);
  });
});

test('credit arrives when a consumer attaches', async () => {
  // proton send (waiting, no credit) --> [R1 closest.late] <-- proton receive (attaches later)
  // rhea send   (waiting, no credit) --> [R1 balanced.late] <-- proton receive (attaches later)
  await withRouter(async (r) => {
    const tx = startProton('send.py', ['--url', url(r), '--address', 'closest.late', '--count', '5', '--timeout', '8']);
    await waitFor(() => r.log.some((l) => /sender link .* on closest\.late/.test(l)), 5000, 'the proton sender to attach');
    const c = await rheaConnect(r);
    try {
      const s = c.conn.open_sender({ target: { address: 'balanced.late' } });
      const seen = outcomes(s);
      await once(s as any, 'sender_open');
      // The router answers an attach and its credit in the same write: none came.
      assert.is(credit(s), 0, 'no credit while balanced.late has no consumer');

      const rx1 = startProton('receive.py', ['--url', url(r), '--address', 'closest.late', '--count', '5', '--timeout', '8']);
      const rx2 = startProton('receive.py', ['--url', url(r), '--address', 'balanced.late', '--count', '3', '--timeout', '8']);
      await Promise.all([rx1.ready, rx2.ready]);
      await waitFor(() => s.sendable(), 3000, 'credit for the rhea sender once a consumer attached');
      for (let i = 0; i < 3; i++) s.send({ body: `late-${i}` });

      const [t, a, b] = await Promise.all([tx.done, rx1.done, rx2.done]);
      assert.is(t.code, 0, t.stderr);
      assert.is(t.result.timed_out, false, 'the proton sender finished');
      assert.equal({ credit: t.result.credit_received, sent: t.result.sent, accepted: t.result.accepted }, { credit: true, sent: 5, accepted: 5 });
      assert.equal(a.result.messages, range(5, (i) => `message-${i}`));
      assert.equal(b.result.messages, range(3, (i) => `late-${i}`));
      await waitFor(() => seen.accepted === 3, 3000, 'rhea outcomes');
    } finally {
      await c.close();
    }
  }, DEBUG_ROUTER_LOG);
});

test('credit stays when the last consumer leaves; a message then is released and drains it (qdrouterd\'s)', async () => {
  // rhea send --> [R1 closest.leave] --> proton receive (takes 2, leaves); rhea sends 'x': released, drained
  await withRouter(async (r) => {
    const c = await rheaConnect(r);
    try {
      const rx = startProton('receive.py', ['--url', url(r), '--address', 'closest.leave', '--count', '2', '--timeout', '5']);
      await rx.ready;
      const s = c.conn.open_sender({ target: { address: 'closest.leave' } });
      const seen = outcomes(s);
      // A rhea application answers a drain by saying it has nothing more to send.
      let drainAsked = 0;
      s.on('sender_draining', () => {
        drainAsked++;
        s.set_drained(true);
      });
      await waitFor(() => s.sendable(), 3000, 'credit');
      s.send({ body: 'a' });
      s.send({ body: 'b' });
      const done = await rx.done;
      assert.equal(done.result.messages, ['a', 'b']);
      await waitFor(() => seen.accepted === 2, 3000, 'outcomes');
      assert.ok(credit(s) > 0, 'the sender keeps its credit');
      s.send({ body: 'x' });
      await waitFor(() => seen.released === 1, 3000, 'no consumer: released');
      await waitFor(() => drainAsked === 1 && credit(s) === 0, 3000, 'credit drained after the message that found no consumer');
      // And a new consumer brings it back.
      const rx2 = startProton('receive.py', ['--url', url(r), '--address', 'closest.leave', '--count', '1', '--timeout', '5']);
      await rx2.ready;
      await waitFor(() => s.sendable(), 3000, 'credit again');
      s.send({ body: 'c' });
      assert.equal((await rx2.done).result.messages, ['c']);
    } finally {
      await c.close();
    }
  });
});

test('a consumer granting one credit at a time gets every message, in order', async () => {
  // proton send x150 --> [R1 closest.trickle] --> proton receive --credit 1
  // proton send x150 --> [R1 balanced.trickle] --> proton receive --credit 1
  await withRouter(async (r) => {
    const N = 150;
    const run = async (address: string) => {
      const rx = startProton('receive.py', ['--url', url(r), '--address', address, '--count', String(N), '--credit', '1', '--timeout', '10']);
      await rx.ready;
      const tx = await runProton('send.py', ['--url', url(r), '--address', address, '--count', String(N), '--timeout', '10']);
      return { tx, rx: await rx.done };
    };
    for (const { tx, rx } of await Promise.all([run('closest.trickle'), run('balanced.trickle')])) {
      assert.equal({ accepted: tx.result.accepted, unsettled: tx.result.unsettled }, { accepted: N, unsettled: 0 }, tx.stderr);
      assert.is(rx.result.timed_out, false);
      assert.equal(rx.result.messages, range(N, (i) => `message-${i}`));
    }
  });
});

test('amqp:/ spellings of an address are the same address', async () => {
  // proton send (closest.spell) --> [R1] --> proton receive (amqp:/closest.spell)
  // proton send (amqp://127.0.0.1/balanced.spell) --> [R1] --> proton receive (balanced.spell)
  await withRouter(async (r) => {
    const rx1 = startProton('receive.py', ['--url', url(r), '--address', 'amqp:/closest.spell', '--count', '2', '--timeout', '5']);
    const rx2 = startProton('receive.py', ['--url', url(r), '--address', 'balanced.spell', '--count', '2', '--timeout', '5']);
    await Promise.all([rx1.ready, rx2.ready]);
    const [t1, t2] = await Promise.all([
      runProton('send.py', ['--url', url(r), '--address', 'closest.spell', '--count', '2', '--timeout', '5']),
      runProton('send.py', ['--url', url(r), '--address', 'amqp://127.0.0.1/balanced.spell', '--count', '2', '--timeout', '5']),
    ]);
    assert.is(t1.result.accepted, 2, JSON.stringify(t1.result));
    assert.is(t2.result.accepted, 2, JSON.stringify(t2.result));
    assert.is((await rx1.done).result.received, 2);
    assert.is((await rx2.done).result.received, 2);
  });
});

test('address prefixes match whole tokens', async () => {
  // proton send x6 --> [R1 multicastish.t] --> proton receive x2   (not the "multicast" prefix: anycast)
  // proton send x6 --> [R1 multicast/t]    --> proton receive x2   ("/" separates tokens: multicast)
  await withRouter(async (r) => {
    const run = async (address: string) => {
      const rx = range(2, () => startProton('receive.py', ['--url', url(r), '--address', address, '--count', '0', '--timeout', '3']));
      await Promise.all(rx.map((p) => p.ready));
      const tx = await runProton('send.py', ['--url', url(r), '--address', address, '--count', '6', '--timeout', '5']);
      assert.is(tx.result.accepted, 6, tx.stderr);
      const ds = await Promise.all(rx.map((p) => p.done));
      return ds.map((d) => d.result.received as number);
    };
    const [ish, slash] = await Promise.all([run('multicastish.t'), run('multicast/t')]);
    assert.is(ish[0] + ish[1], 6, `multicastish.t is anycast: ${ish}`);
    assert.equal(slash, [6, 6], 'multicast/t is multicast');
  });
});

test('backpressure: a consumer without credit holds its sender at linkCapacity', async () => {
  // rhea send (as fast as credit allows) --> [R1 closest.bp, linkCapacity 10] --> rhea receive (no credit, later 100)
  // rhea send probe ---------------------> [R1 closest.bpprobe]              --> rhea receive (same connections)
  await withRouter(async (r) => {
    const cons = await rheaConnect(r);
    const prod = await rheaConnect(r);
    try {
      const rcv = cons.conn.open_receiver({ source: { address: 'closest.bp' }, credit_window: 0 });
      const pr = cons.conn.open_receiver({ source: { address: 'closest.bpprobe' } });
      const got = collect(rcv);
      await Promise.all([once(rcv as any, 'receiver_open'), once(pr as any, 'receiver_open')]);
      const s = prod.conn.open_sender({ target: { address: 'closest.bp' } });
      const probe = prod.conn.open_sender({ target: { address: 'closest.bpprobe' } });
      const seen = outcomes(s);
      let probes = 0;
      probe.on('accepted', () => probes++);
      await waitFor(() => s.sendable() && probe.sendable(), 3000, 'credit');
      assert.is(credit(s), 10, 'linkCapacity is the credit');
      let sent = 0;
      const sendAll = () => { for (let n = credit(s); n > 0; n--) s.send({ body: `bp-${sent++}` }); };
      sendAll();
      await waitFor(() => credit(s) === 0, 3000, 'the credit used');
      probe.send({ body: 'probe' });
      await waitFor(() => probes === 1, 3000, 'the probe');
      assert.is(credit(s), 0, 'no new credit while the consumer takes nothing');
      assert.is(sent, 10);
      rcv.add_credit(100);
      await waitFor(() => got.messages.length === 10, 3000, 'the ten held messages');
      await waitFor(() => credit(s) > 0, 3000, 'credit again once they left the router');
      sendAll();
      await waitFor(() => got.messages.length === sent && seen.accepted === sent, 3000, 'the rest');
      assert.equal(got.messages.map((m) => m.body), range(sent, (i) => `bp-${i}`));
    } finally {
      await prod.close();
      await cons.close();
    }
  }, standaloneConfig('', '    linkCapacity: 10\n'));
});

test.run();
