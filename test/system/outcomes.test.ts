// End-to-end outcomes: what a consumer decides reaches the producer unchanged (a modified one with
// delivery-failed set, as qdrouterd relays every modified); what the router decides itself
// (consumer gone, no route) is modified(delivery-failed) or released.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runProton, startProton } from '../support/proton';
import { collect, credit, once, outcomes, rheaConnect, startHoldProxy, url, waitFor, withRouter } from './helpers';

const N = 5;

/** The non-zero outcome counters of a send.py result. */
function counts(res: Record<string, unknown>): Record<string, number> {
  const got: Record<string, number> = {};
  for (const k of ['accepted', 'rejected', 'released', 'modified', 'modified_failed', 'undeliverable', 'settled_no_outcome', 'unsettled']) {
    if (res[k]) got[k] = res[k] as number;
  }
  return got;
}

test('reject, release, modify-failed, modify-undeliverable reach the sender as given', async () => {
  // proton send x5 --> [R1 closest.oK] --> proton receive --outcome O   (one address per outcome, all at once)
  await withRouter(async (r) => {
    const cases: [string, Record<string, number>][] = [
      ['reject', { rejected: N }],
      ['release', { released: N }],
      ['modify-failed', { modified: N, modified_failed: N }],
      // qdrouterd sets delivery-failed on every modified it relays; so do we.
      ['modify-undeliverable', { modified: N, modified_failed: N, undeliverable: N }],
      ['modify-failed-undeliverable', { modified: N, modified_failed: N, undeliverable: N }],
      ['accept', { accepted: N }],
    ];
    const results = await Promise.all(cases.map(async ([outcome], k) => {
      const address = k % 2 ? `closest.o${k}` : `balanced.o${k}`;
      const rx = startProton('receive.py', ['--url', url(r), '--address', address, '--count', String(N), '--outcome', outcome, '--timeout', '8']);
      await rx.ready;
      const tx = await runProton('send.py', ['--url', url(r), '--address', address, '--count', String(N), '--timeout', '8']);
      return { tx, rx: await rx.done };
    }));
    results.forEach(({ tx, rx }, k) => {
      const [outcome, want] = cases[k];
      assert.is(tx.code, 0, `${outcome}: ${tx.stderr}`);
      assert.is(rx.result.received, N, `${outcome}: consumer got all`);
      assert.equal(counts(tx.result), want, `${outcome}: sender sees ${JSON.stringify(want)}`);
      if (outcome === 'reject') {
        assert.is(tx.result.reject_conditions.length, N);
        for (const c of tx.result.reject_conditions) assert.equal(c, { condition: 'test:rejected', description: 'rejected by receive.py' }, 'the rejected error passes through');
      }
    });
  });
});

test('a released message is not redelivered by the router on its own', async () => {
  // proton send x3 --> [R1 closest.rel] --> proton receive --outcome release
  // The sender decides what to do with released messages; the router does not retry.
  await withRouter(async (r) => {
    const rx = startProton('receive.py', ['--url', url(r), '--address', 'closest.rel', '--count', '0', '--outcome', 'release', '--timeout', '2.5']);
    await rx.ready;
    const tx = await runProton('send.py', ['--url', url(r), '--address', 'closest.rel', '--count', '3', '--timeout', '5']);
    assert.equal(counts(tx.result), { released: 3 });
    const d = await rx.done;
    assert.is(d.result.received, 3, 'each message delivered once');
  });
});

test('a receiver that leaves with deliveries unsettled: the sender sees modified(delivery-failed)', async () => {
  // proton send x5 --> [R1 closest.gone]  --> proton receive --no-settle (link closed, then connection)
  // proton send x5 --> [R1 balanced.gone] --> proton receive --no-settle --end detach
  await withRouter(async (r) => {
    const run = async (address: string, extra: string[]) => {
      const rx = startProton('receive.py', ['--url', url(r), '--address', address, '--count', String(N), '--no-settle', '--timeout', '8', ...extra]);
      await rx.ready;
      const tx = await runProton('send.py', ['--url', url(r), '--address', address, '--count', String(N), '--timeout', '8']);
      return { tx, rx: await rx.done };
    };
    const [closeIt, detachIt] = await Promise.all([run('closest.gone', []), run('balanced.gone', ['--end', 'detach'])]);
    for (const [label, { tx, rx }] of [['close', closeIt], ['detach', detachIt]] as const) {
      assert.is(rx.result.unsettled_kept, N, `${label}: consumer kept them all unsettled`);
      assert.is(tx.code, 0, tx.stderr);
      assert.is(tx.result.timed_out, false, `${label}: the sender got every outcome`);
      assert.equal(counts(tx.result), { modified: N, modified_failed: N }, `${label}: modified(delivery-failed)`);
    }
  });
});

test('undelivered messages of a consumer that leaves are released', async () => {
  // rhea send x5 ----> [R1 closest.slow]  --> rhea receive R (credit 1, never settles, then detaches)
  // rhea send probe -> [R1 closest.probe] --> rhea receive P          (same connection and session)
  // The probe's outcome proves the router has routed the five (frames are processed in order);
  // R takes one and leaves: that one is modified(delivery-failed), the four still queued in the
  // router for R were never sent: released.
  await withRouter(async (r) => {
    const c = await rheaConnect(r);
    try {
      const R = c.conn.open_receiver({ source: { address: 'closest.slow' }, credit_window: 0, autoaccept: false });
      const P = c.conn.open_receiver({ source: { address: 'closest.probe' } });
      const got = collect(R);
      await Promise.all([once(R as any, 'receiver_open'), once(P as any, 'receiver_open')]);
      R.add_credit(1);
      const s = c.conn.open_sender({ target: { address: 'closest.slow' }, treat_modified_as_released: false } as any);
      const probe = c.conn.open_sender({ target: { address: 'closest.probe' } });
      const seen = outcomes(s);
      const probeSeen = outcomes(probe);
      await waitFor(() => s.sendable() && probe.sendable(), 3000, 'credit');
      for (let i = 0; i < N; i++) s.send({ body: `m${i}` });
      probe.send({ body: 'probe' });
      await waitFor(() => probeSeen.accepted === 1 && got.messages.length === 1, 3000, 'the probe outcome and R\'s one message');
      assert.is(got.messages[0].body, 'm0');
      R.close();
      await waitFor(() => seen.released + seen.modified === N, 3000, `every outcome (${JSON.stringify(seen)})`);
      assert.equal({ modified: seen.modified, released: seen.released, accepted: seen.accepted }, { modified: 1, released: N - 1, accepted: 0 });
    } finally {
      await c.close();
    }
  });
});

test('messages sent under credit the router just took back are released; the sender keeps its link', async () => {
  // rhea send --> [proxy: router->client bytes held] --> [R1 closest.inflight] --> rhea receive (leaves)
  //   then later                                                                --> proton receive x1
  // The consumer leaves; the sender keeps its 250 credits (qdrouterd's) and, with the proxy
  // holding the router's frames, sends 3 messages. qdrouterd 1.19 routes them like any message to
  // an address without consumers (released, credit drained: transfer.c, qdr_link_forward_CT) and
  // keeps the link for when a consumer comes back.
  await withRouter(async (r) => {
    const proxy = await startHoldProxy(r.port);
    const prod = await rheaConnect(proxy);
    const cons = await rheaConnect(r);
    try {
      const R = cons.conn.open_receiver({ source: { address: 'closest.inflight' } });
      await once(R as any, 'receiver_open');
      const s = prod.conn.open_sender({ target: { address: 'closest.inflight' }, treat_modified_as_released: false } as any);
      const seen = outcomes(s);
      const errors: string[] = [];
      s.on('sender_error', (ctx: any) => errors.push(JSON.stringify(ctx.sender.error)));
      s.on('sender_close', () => errors.push('sender_close'));
      // The router asks for its credit back (drain) once a message finds no consumer.
      s.on('sender_draining', () => s.set_drained(true));
      await waitFor(() => s.sendable(), 3000, 'credit');
      proxy.holdDown();
      const closed = once(R as any, 'receiver_close');
      R.close();
      await closed; // the router has handled the detach, and taken the credit back
      for (let i = 0; i < 3; i++) s.send({ body: `inflight-${i}` });
      proxy.releaseDown();
      await waitFor(() => errors.length > 0 || seen.released + seen.modified + seen.accepted + seen.rejected === 3, 3000, `3 outcomes (${JSON.stringify(seen)})`);
      assert.equal(errors, [], 'the router must not detach a sender for transfers sent under credit it granted');
      assert.equal({ released: seen.released, accepted: seen.accepted, modified: seen.modified, rejected: seen.rejected }, { released: 3, accepted: 0, modified: 0, rejected: 0 });
      await waitFor(() => credit(s) <= 0, 3000, 'the sender to see its credit gone');
      const rx = startProton('receive.py', ['--url', url(r), '--address', 'closest.inflight', '--count', '1', '--timeout', '5']);
      await rx.ready;
      await waitFor(() => s.sendable(), 3000, 'credit again once a consumer is back');
      s.send({ body: 'again' });
      assert.equal((await rx.done).result.messages, ['again']);
    } finally {
      await prod.close();
      await cons.close();
      await proxy.close();
    }
  });
});

test('anonymous sender to an address with no consumer: released', async () => {
  // proton send --anonymous (to closest.nowhere) --> [R1] (no consumer)
  // proton send --anonymous (to balanced.nowhere) --> [R1] (no consumer)
  await withRouter(async (r) => {
    const [a, b] = await Promise.all(['closest.nowhere', 'balanced.nowhere'].map((address) =>
      runProton('send.py', ['--url', url(r), '--address', address, '--anonymous', '--count', String(N), '--timeout', '5'])));
    for (const tx of [a, b]) {
      assert.is(tx.code, 0, tx.stderr);
      assert.is(tx.result.credit_received, true, 'anonymous senders always get credit');
      assert.equal(counts(tx.result), { released: N });
    }
  });
});

test('anonymous sender: a message without "to" is rejected, the link stays up', async () => {
  // rhea send (null target, one message without to, one with) --> [R1] --> proton receive on closest.after
  await withRouter(async (r) => {
    const rx = startProton('receive.py', ['--url', url(r), '--address', 'closest.after', '--count', '1', '--timeout', '5']);
    await rx.ready;
    const c = await rheaConnect(r);
    try {
      const s = c.conn.open_sender({ target: {} } as any);
      const seen = outcomes(s);
      await waitFor(() => s.sendable(), 3000, 'credit for an anonymous sender');
      s.send({ body: 'no address' });
      await waitFor(() => seen.rejected + seen.released + seen.accepted === 1, 3000, 'an outcome');
      assert.is(seen.rejected, 1, 'a message with no "to" on an anonymous link is rejected');
      s.send({ to: 'closest.after', body: 'with address' });
      assert.equal((await rx.done).result.messages, ['with address']);
      await waitFor(() => seen.accepted === 1, 3000, 'accepted');
    } finally {
      await c.close();
    }
  });
});

test('a consumer with snd-settle-mode settled: the sender sees a settlement with no outcome', async () => {
  // proton send x4 --> [R1 closest.presettled] --> rhea receive (snd-settle-mode settled)
  // README: "the router never reports an outcome it did not receive (a pre-settled consumer
  // yields a settlement with no state)". (qdrouterd 1.19 reports accepted here instead.)
  await withRouter(async (r) => {
    const c = await rheaConnect(r);
    try {
      const rcv = c.conn.open_receiver({ source: { address: 'closest.presettled' }, snd_settle_mode: 1 } as any);
      const got = collect(rcv);
      await once(rcv as any, 'receiver_open');
      assert.is((rcv as any).remote.attach.snd_settle_mode, 1, 'the router agrees to send settled');
      const tx = await runProton('send.py', ['--url', url(r), '--address', 'closest.presettled', '--count', '4', '--timeout', '5']);
      assert.is(tx.code, 0, tx.stderr);
      assert.equal(counts(tx.result), { settled_no_outcome: 4 });
      assert.is(got.messages.length, 4);
      assert.ok(got.deliveries.every((d: any) => d.remote_settled), 'the consumer got them pre-settled');
    } finally {
      await c.close();
    }
  });
});

test('a sender that leaves before the outcome: the later outcome is dropped, the router carries on', async () => {
  // rhea send x3 (connection closed before any outcome) --> [R1 closest.orphan] --> rhea receive (settles later)
  // then: proton send --> [R1 closest.orphan] --> same rhea receive
  await withRouter(async (r) => {
    const cons = await rheaConnect(r);
    try {
      const rcv = cons.conn.open_receiver({ source: { address: 'closest.orphan' }, autoaccept: false });
      const got = collect(rcv);
      await once(rcv as any, 'receiver_open');
      const prod = await rheaConnect(r);
      const s = prod.conn.open_sender({ target: { address: 'closest.orphan' } });
      await waitFor(() => s.sendable(), 3000, 'credit');
      for (let i = 0; i < 3; i++) s.send({ body: `orphan-${i}` });
      await waitFor(() => got.messages.length === 3, 3000, 'the three at the consumer');
      await prod.close();
      for (const d of got.deliveries) d.accept();
      const txp = startProton('send.py', ['--url', url(r), '--address', 'closest.orphan', '--count', '2', '--timeout', '5']);
      await waitFor(() => got.messages.length === 5, 3000, 'two more');
      for (const d of got.deliveries.slice(3)) d.accept();
      const tx = await txp.done;
      assert.is(tx.code, 0, tx.stderr);
      assert.is(tx.result.accepted, 2);
      assert.ok(r.proc.exitCode === null, 'the router is still running');
    } finally {
      await cons.close();
    }
  });
});

test('outcome details pass through: rejected error info, modified message-annotations', async () => {
  // proton send x2 --> [R1 closest.detail1] --> rhea receive (rejects with condition, description, info)
  // rhea send x2   --> [R1 closest.detail2] --> rhea receive (modified: failed, undeliverable, annotations)
  await withRouter(async (r) => {
    const c = await rheaConnect(r);
    try {
      const rej = c.conn.open_receiver({ source: { address: 'closest.detail1' }, autoaccept: false });
      rej.on('message', (ctx: any) => ctx.delivery.reject({ condition: 'com.example:busy', description: 'try later', info: { retry: 3 } }));
      const mod = c.conn.open_receiver({ source: { address: 'closest.detail2' }, autoaccept: false });
      mod.on('message', (ctx: any) => ctx.delivery.modified({ delivery_failed: true, undeliverable_here: true, message_annotations: { 'x-reason': 'busy' } }));
      await Promise.all([once(rej as any, 'receiver_open'), once(mod as any, 'receiver_open')]);

      const tx = await runProton('send.py', ['--url', url(r), '--address', 'closest.detail1', '--count', '2', '--timeout', '5']);
      assert.equal(counts(tx.result), { rejected: 2 }, tx.stderr);
      for (const rc of tx.result.reject_conditions) assert.equal(rc, { condition: 'com.example:busy', description: 'try later', info: { retry: 3 } });

      const s = c.conn.open_sender({ target: { address: 'closest.detail2' }, treat_modified_as_released: false } as any);
      const states: any[] = [];
      s.on('modified', (ctx: any) => states.push(ctx.delivery.remote_state));
      await waitFor(() => s.sendable(), 3000, 'credit');
      s.send({ body: 'a' });
      s.send({ body: 'b' });
      await waitFor(() => states.length === 2, 3000, 'two modified outcomes');
      for (const st of states) {
        assert.is(st.delivery_failed, true);
        assert.is(st.undeliverable_here, true);
        assert.equal(st.message_annotations, { 'x-reason': 'busy' });
      }
    } finally {
      await c.close();
    }
  });
});

test.run();
