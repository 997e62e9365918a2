// rcv-settle-mode second on either side of the router (a sender is answered first, as qdrouterd;
// a consumer's second is honoured), and drain on consumer links.
// @runs-alone: a drain within 1 s is asserted.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runProton, startProton } from '../support/proton';
import { collect, credit, once, rheaConnect, url, waitFor, withRouter } from './helpers';

test('a sender asking for rcv-settle-mode second is answered first (as qdrouterd) and gets settled outcomes', async () => {
  // rhea send (rcv_settle_mode second) --> [R1 closest.second] --> proton receive (accepts)
  // rhea send (rcv_settle_mode second) --> [R1 balanced.rej]   --> proton receive --outcome reject
  await withRouter(async (r) => {
    const N = 10;
    const rxA = startProton('receive.py', ['--url', url(r), '--address', 'closest.second', '--count', String(N), '--timeout', '6']);
    const rxR = startProton('receive.py', ['--url', url(r), '--address', 'balanced.rej', '--count', String(N), '--outcome', 'reject', '--timeout', '6']);
    await Promise.all([rxA.ready, rxR.ready]);
    const c = await rheaConnect(r);
    try {
      const run = async (address: string, outcome: 'accepted' | 'rejected') => {
        const s = c.conn.open_sender({ target: { address }, rcv_settle_mode: 1 });
        await once(s as any, 'sender_open');
        assert.is((s as any).remote.attach.rcv_settle_mode, 0, 'the router answers rcv-settle-mode first');
        const seen = { outcome: 0, unsettledOutcome: 0, other: 0 };
        s.on(outcome, (ctx: any) => {
          seen.outcome++;
          if (!ctx.delivery.remote_settled) seen.unsettledOutcome++;
        });
        for (const other of ['accepted', 'rejected', 'released', 'modified'].filter((o) => o !== outcome)) s.on(other as any, () => seen.other++);
        await waitFor(() => s.sendable(), 3000, 'credit');
        const deliveries = [];
        for (let i = 0; i < N; i++) deliveries.push(s.send({ body: `second-${i}` }));
        await waitFor(() => seen.outcome === N, 5000, `${N} ${outcome}`);
        assert.is(seen.unsettledOutcome, 0, 'each outcome arrives settled (mode first)');
        assert.is(seen.other, 0);
        // Closing the link cleanly after settling: nothing is left hanging on either side.
        const closed = once(s as any, 'sender_close');
        s.close();
        await closed;
        assert.ok(deliveries.every((d: any) => d.remote_settled), 'all settled by the router');
      };
      await Promise.all([run('closest.second', 'accepted'), run('balanced.rej', 'rejected')]);
      const [a, rj] = await Promise.all([rxA.done, rxR.done]);
      assert.equal(a.result.messages.length, N);
      assert.is(rj.result.rejected, N);
    } finally {
      await c.close();
    }
  });
});

test('receive.py --rcv-settle-second: the outcome reaches the sender unsettled; the sender\'s settle reaches the consumer', async () => {
  // proton send x8 --> [R1 closest.rs2] --> proton receive --rcv-settle-second (accepts)
  // proton send x8 --> [R1 multicast.rs2] --> proton receive --rcv-settle-second --outcome release
  //                                       \-> proton receive --rcv-settle-second (accepts)
  await withRouter(async (r) => {
    const N = 8;
    const rx = startProton('receive.py', ['--url', url(r), '--address', 'closest.rs2', '--count', String(N), '--rcv-settle-second', '--timeout', '6']);
    const m1 = startProton('receive.py', ['--url', url(r), '--address', 'multicast.rs2', '--count', String(N), '--rcv-settle-second', '--outcome', 'release', '--timeout', '6']);
    const m2 = startProton('receive.py', ['--url', url(r), '--address', 'multicast.rs2', '--count', String(N), '--rcv-settle-second', '--timeout', '6']);
    const ready = await Promise.all([rx.ready, m1.ready, m2.ready]);
    for (const ev of ready) assert.is(ev.remote_rcv_settle_mode, 'second', 'the router echoes rcv-settle-mode second');
    const [tx, txm] = await Promise.all([
      runProton('send.py', ['--url', url(r), '--address', 'closest.rs2', '--count', String(N), '--timeout', '6']),
      runProton('send.py', ['--url', url(r), '--address', 'multicast.rs2', '--count', String(N), '--timeout', '6']),
    ]);
    assert.equal({ accepted: tx.result.accepted, unsettled: tx.result.unsettled }, { accepted: N, unsettled: 0 }, tx.stderr);
    assert.equal({ accepted: txm.result.accepted, released: txm.result.released }, { accepted: N, released: 0 }, 'multicast: accepted beats released');
    // The consumers have not settled: the senders see their outcomes unsettled and settle (3-ack),
    // and that settle is what reaches the consumers.
    assert.is(tx.result.outcome_unsettled_by_peer, N);
    assert.is(txm.result.outcome_unsettled_by_peer, N);
    for (const p of [rx, m1, m2]) {
      const d = await p.done;
      assert.is(d.code, 0, d.stderr);
      assert.is(d.result.timed_out, false, `waited for the router to settle: ${JSON.stringify(d.result).slice(0, 300)}`);
      assert.is(d.result.received, N);
      assert.is(d.result.settled_by_sender, N, 'the router settled every delivery after the outcome');
      assert.is(d.result.awaiting_sender_settle, 0);
      assert.is(d.result.remote_rcv_settle_mode, 'second');
    }
  });
});

test('drain on an idle address: drained at once, credit 0', async () => {
  // rhea receive (credit 10, then drain) <-- [R1 closest.idle] (no sender, no messages)
  await withRouter(async (r) => {
    const c = await rheaConnect(r);
    try {
      const rcv = c.conn.open_receiver({ source: { address: 'closest.idle' }, credit_window: 0 });
      await once(rcv as any, 'receiver_open');
      rcv.add_credit(10);
      const drained = once(rcv as any, 'receiver_drained', 2000);
      const t0 = Date.now();
      rcv.drain_credit();
      await drained;
      const ms = Date.now() - t0;
      assert.ok(ms < 1000, `drained after ${ms} ms`);
      assert.is(credit(rcv), 0, 'no credit left after the drain');
      rcv.drain = false;
      // The link still works after a drain.
      rcv.add_credit(1);
      const got = collect(rcv);
      const tx = await runProton('send.py', ['--url', url(r), '--address', 'closest.idle', '--count', '1', '--timeout', '5']);
      assert.is(tx.result.accepted, 1, tx.stderr);
      assert.equal(got.messages.map((m) => m.body), ['message-0']);
    } finally {
      await c.close();
    }
  });
});

test('drain with messages waiting: they come first, then the drain completes', async () => {
  // rhea send x3 ----> [R1 closest.waiting] --> rhea receive (no credit, then credit 10 + drain)
  // rhea send probe -> [R1 closest.probe2]  --> rhea receive            (same connection: ordering)
  await withRouter(async (r) => {
    const c = await rheaConnect(r);
    try {
      const rcv = c.conn.open_receiver({ source: { address: 'closest.waiting' }, credit_window: 0 });
      const probeRcv = c.conn.open_receiver({ source: { address: 'closest.probe2' } });
      const got = collect(rcv);
      await Promise.all([once(rcv as any, 'receiver_open'), once(probeRcv as any, 'receiver_open')]);
      const s = c.conn.open_sender({ target: { address: 'closest.waiting' } });
      const probe = c.conn.open_sender({ target: { address: 'closest.probe2' } });
      let accepted = 0;
      s.on('accepted', () => accepted++);
      let probed = false;
      probe.on('accepted', () => (probed = true));
      await waitFor(() => s.sendable() && probe.sendable(), 3000, 'credit (the address has a consumer, even one without credit)');
      for (let i = 0; i < 3; i++) s.send({ body: `w${i}` });
      probe.send({ body: 'probe' });
      await waitFor(() => probed, 3000, 'the probe: the router holds the three');
      assert.is(got.messages.length, 0, 'nothing sent without credit');
      const events: string[] = [];
      rcv.on('message', () => events.push('message'));
      const drained = once(rcv as any, 'receiver_drained', 2000);
      rcv.on('receiver_drained', () => events.push('drained'));
      rcv.add_credit(10);
      rcv.drain_credit();
      await drained;
      assert.equal(events, ['message', 'message', 'message', 'drained'], 'messages, then the drain');
      assert.equal(got.messages.map((m) => m.body), ['w0', 'w1', 'w2']);
      assert.is(credit(rcv), 0);
      await waitFor(() => accepted === 3, 3000, 'outcomes');
    } finally {
      await c.close();
    }
  });
});

test('rcv-settle-mode second sender to a multicast address: one settled outcome once every copy has one', async () => {
  // rhea send (rcv_settle_mode second) --> [R1 multicast.sec] --> proton receive --outcome release
  //                                                           \-> proton receive (accepts)
  await withRouter(async (r) => {
    const N = 5;
    const rel = startProton('receive.py', ['--url', url(r), '--address', 'multicast.sec', '--count', String(N), '--outcome', 'release', '--timeout', '6']);
    const acc = startProton('receive.py', ['--url', url(r), '--address', 'multicast.sec', '--count', String(N), '--timeout', '6']);
    await Promise.all([rel.ready, acc.ready]);
    const c = await rheaConnect(r);
    try {
      const s = c.conn.open_sender({ target: { address: 'multicast.sec' }, rcv_settle_mode: 1 });
      let accepted = 0;
      let unsettled = 0;
      let other = 0;
      s.on('accepted', (ctx: any) => {
        accepted++;
        if (!ctx.delivery.remote_settled) unsettled++;
      });
      s.on('released', () => other++);
      s.on('rejected', () => other++);
      await waitFor(() => s.sendable(), 3000, 'credit');
      for (let i = 0; i < N; i++) s.send({ body: `mc-${i}` });
      await waitFor(() => accepted === N, 5000, 'outcomes');
      assert.equal({ accepted, unsettled, other }, { accepted: N, unsettled: 0, other: 0 });
      await Promise.all([rel.done, acc.done]);
    } finally {
      await c.close();
    }
  });
});

test('drain with no credit at all: drained at once', async () => {
  // rhea receive (credit 0, drain) <-- [R1 balanced.nocredit]
  await withRouter(async (r) => {
    const c = await rheaConnect(r);
    try {
      const rcv = c.conn.open_receiver({ source: { address: 'balanced.nocredit' }, credit_window: 0 });
      await once(rcv as any, 'receiver_open');
      const drained = once(rcv as any, 'receiver_drained', 2000);
      rcv.drain_credit();
      await drained;
      assert.is(credit(rcv), 0);
    } finally {
      await c.close();
    }
  });
});

test('after a drain the router sends nothing until new credit comes', async () => {
  // rhea send m ------> [R1 closest.afterdrain] --> rhea receive (credit 5, drained, then credit 1)
  // rhea send probe --> [R1 closest.probe3]     --> rhea receive              (same connection)
  await withRouter(async (r) => {
    const c = await rheaConnect(r);
    try {
      const rcv = c.conn.open_receiver({ source: { address: 'closest.afterdrain' }, credit_window: 0 });
      const pr = c.conn.open_receiver({ source: { address: 'closest.probe3' } });
      const got = collect(rcv);
      await Promise.all([once(rcv as any, 'receiver_open'), once(pr as any, 'receiver_open')]);
      rcv.add_credit(5);
      const drained = once(rcv as any, 'receiver_drained', 2000);
      rcv.drain_credit();
      await drained;
      rcv.drain = false;
      const s = c.conn.open_sender({ target: { address: 'closest.afterdrain' } });
      const probe = c.conn.open_sender({ target: { address: 'closest.probe3' } });
      let probed = false;
      probe.on('accepted', () => (probed = true));
      await waitFor(() => s.sendable() && probe.sendable(), 3000, 'credit');
      s.send({ body: 'after the drain' });
      probe.send({ body: 'probe' });
      await waitFor(() => probed, 3000, 'the probe');
      assert.is(got.messages.length, 0, 'the drained credit is gone: nothing sent');
      rcv.add_credit(1);
      await waitFor(() => got.messages.length === 1, 3000, 'the message once credit is back');
      assert.is(got.messages[0].body, 'after the drain');
    } finally {
      await c.close();
    }
  });
});

test.run();
