// Multicast through one standalone router: a copy per consumer, and the outcome the sender sees
// when consumers disagree (qdrouterd 1.19: rejected > accepted > modified > released).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Json, runProton, startProton } from '../support/proton';
import { collect, once, range, rheaConnect, url, withRouter } from './helpers';

test('3 receivers each get one copy of every message, in order', async () => {
  // proton send x30 --> [R1 multicast.all] --> proton receive x3
  await withRouter(async (r) => {
    const N = 30;
    const rx = range(3, () => startProton('receive.py', ['--url', url(r), '--address', 'multicast.all', '--count', String(N), '--timeout', '8']));
    await Promise.all(rx.map((p) => p.ready));
    const tx = await runProton('send.py', ['--url', url(r), '--address', 'multicast.all', '--count', String(N), '--timeout', '8']);
    assert.is(tx.code, 0, tx.stderr);
    assert.equal({ sent: tx.result.sent, accepted: tx.result.accepted, unsettled: tx.result.unsettled }, { sent: N, accepted: N, unsettled: 0 });
    for (const p of rx) {
      const d = await p.done;
      assert.is(d.code, 0, d.stderr);
      assert.is(d.result.timed_out, false);
      assert.equal(d.result.messages, range(N, (i) => `message-${i}`), 'one copy of each, in order');
      assert.is(d.result.presettled, 0, 'unsettled sender: unsettled copies');
    }
  });
});

/** One combination of consumer outcomes and what the sender must see for each message. */
interface Case {
  outcomes: string[];
  want: Record<string, number>;
}

const N = 4;
const CASES: Case[] = [
  { outcomes: ['accept', 'reject', 'release'], want: { rejected: N } },
  { outcomes: ['release', 'accept', 'release'], want: { accepted: N } },
  { outcomes: ['modify-failed', 'accept'], want: { accepted: N } },
  { outcomes: ['release', 'modify-failed', 'release'], want: { modified: N, modified_failed: N } },
  // The producer sees modified with delivery-failed set, as qdrouterd relays every modified.
  { outcomes: ['modify-undeliverable', 'release'], want: { modified: N, modified_failed: N, undeliverable: N } },
  { outcomes: ['release', 'release'], want: { released: N } },
  { outcomes: ['modify-failed', 'reject'], want: { rejected: N } },
  { outcomes: ['accept', 'accept', 'accept'], want: { accepted: N } },
  { outcomes: ['reject'], want: { rejected: N } },
];

test('outcome priority: rejected > accepted > modified > released', async () => {
  // for each case, on its own address (all at once):
  //   proton send x4 --> [R1 multicast.caseK] --> proton receive --outcome O1
  //                                           \-> proton receive --outcome O2 (...)
  await withRouter(async (r) => {
    const runs = CASES.map(async (c, k) => {
      const address = `multicast.case${k}`;
      const rx = c.outcomes.map((o) => startProton('receive.py', ['--url', url(r), '--address', address, '--count', String(N), '--outcome', o, '--timeout', '8']));
      await Promise.all(rx.map((p) => p.ready));
      const tx = await runProton('send.py', ['--url', url(r), '--address', address, '--count', String(N), '--timeout', '8']);
      const rxDone = await Promise.all(rx.map((p) => p.done));
      return { c, tx, rxDone };
    });
    for (const { c, tx, rxDone } of await Promise.all(runs)) {
      const label = c.outcomes.join('+');
      assert.is(tx.code, 0, `${label}: ${tx.stderr}`);
      for (const d of rxDone) assert.is(d.result.received, N, `${label}: every consumer got every message`);
      const got: Record<string, number> = {};
      for (const k of ['accepted', 'rejected', 'released', 'modified', 'modified_failed', 'undeliverable', 'settled_no_outcome', 'unsettled']) {
        if (tx.result[k]) got[k] = tx.result[k];
      }
      assert.equal(got, c.want, `${label}: the sender sees ${JSON.stringify(c.want)}`);
      if (c.want.rejected) {
        // The rejecting consumer's error travels as given.
        assert.equal(tx.result.reject_conditions[0], { condition: 'test:rejected', description: 'rejected by receive.py' }, `${label}: rejected error`);
      }
    }
  });
});

test('a consumer leaving with unsettled copies counts as modified(delivery-failed)', async () => {
  // proton send x3 --> [R1 multicast.leave1] --> proton receive --no-settle (leaves) \-> proton receive --outcome release
  // proton send x3 --> [R1 multicast.leave2] --> proton receive --no-settle (leaves) \-> proton receive (accepts)
  await withRouter(async (r) => {
    const run = async (address: string, other: string) => {
      const gone = startProton('receive.py', ['--url', url(r), '--address', address, '--count', '3', '--no-settle', '--timeout', '8']);
      const stays = startProton('receive.py', ['--url', url(r), '--address', address, '--count', '3', '--outcome', other, '--timeout', '8']);
      await Promise.all([gone.ready, stays.ready]);
      const tx = await runProton('send.py', ['--url', url(r), '--address', address, '--count', '3', '--timeout', '8']);
      const [g, s] = await Promise.all([gone.done, stays.done]);
      assert.is(g.result.unsettled_kept, 3);
      assert.is(s.result.received, 3);
      return tx.result;
    };
    const [released, accepted] = await Promise.all([run('multicast.leave1', 'release'), run('multicast.leave2', 'accept')]);
    assert.equal({ modified: released.modified, failed: released.modified_failed, released: released.released }, { modified: 3, failed: 3, released: 0 }, 'modified beats released');
    assert.equal({ accepted: accepted.accepted, modified: accepted.modified }, { accepted: 3, modified: 0 }, 'accepted beats modified');
  });
});

test('presettled multicast: every consumer gets every message pre-settled', async () => {
  // proton send --settled x25 --> [R1 multicast.pre] --> proton receive x3
  await withRouter(async (r) => {
    const M = 25;
    const rx = range(3, () => startProton('receive.py', ['--url', url(r), '--address', 'multicast.pre', '--count', String(M), '--timeout', '8']));
    await Promise.all(rx.map((p) => p.ready));
    const tx = await runProton('send.py', ['--url', url(r), '--address', 'multicast.pre', '--count', String(M), '--settled', '--timeout', '8']);
    assert.is(tx.code, 0, tx.stderr);
    assert.is(tx.result.sent, M);
    for (const p of rx) {
      const d = await p.done;
      assert.is(d.code, 0, d.stderr);
      assert.is(d.result.timed_out, false, `received ${d.result.received} of ${M}`);
      assert.equal(d.result.messages, range(M, (i) => `message-${i}`));
      assert.is(d.result.presettled, M, 'copies of pre-settled messages are pre-settled');
      assert.is(d.result.accepted, 0);
    }
  });
});

test('multicast with no consumer: released (unsettled) and the sender gets no credit', async () => {
  // proton send --anonymous (to multicast.none) --> [R1] (no consumer)
  // proton send --> [R1 multicast.none] (no consumer)
  await withRouter(async (r) => {
    const [anon, plainSender] = await Promise.all([
      runProton('send.py', ['--url', url(r), '--address', 'multicast.none', '--anonymous', '--count', '3', '--timeout', '5']),
      runProton('send.py', ['--url', url(r), '--address', 'multicast.none', '--count', '3', '--timeout', '1']),
    ]);
    assert.equal({ sent: anon.result.sent, released: anon.result.released }, { sent: 3, released: 3 });
    assert.equal({ credit: plainSender.result.credit_received, sent: plainSender.result.sent }, { credit: false, sent: 0 });
  });
});

test('multicast to consumers of different speed: the slow one gets everything too', async () => {
  // proton send x60 --> [R1 multicast.speed] --> proton receive --credit 1
  //                                          \-> proton receive --credit 100
  await withRouter(async (r) => {
    const M = 60;
    const slow = startProton('receive.py', ['--url', url(r), '--address', 'multicast.speed', '--count', String(M), '--credit', '1', '--timeout', '8']);
    const fast = startProton('receive.py', ['--url', url(r), '--address', 'multicast.speed', '--count', String(M), '--timeout', '8']);
    await Promise.all([slow.ready, fast.ready]);
    const tx = await runProton('send.py', ['--url', url(r), '--address', 'multicast.speed', '--count', String(M), '--timeout', '8']);
    assert.equal({ accepted: tx.result.accepted, unsettled: tx.result.unsettled }, { accepted: M, unsettled: 0 }, tx.stderr);
    for (const p of [slow, fast]) assert.equal((await p.done).result.messages, range(M, (i) => `message-${i}`));
  });
});

test('volume: 3000 messages to 2 consumers, none lost, none duplicated', async () => {
  // proton send x3000 (2 kB Data bodies) --> [R1 multicast.vol] --> proton receive x2
  await withRouter(async (r) => {
    const M = 3000;
    const rx = range(2, () => startProton('receive.py', ['--url', url(r), '--address', 'multicast.vol', '--count', String(M), '--timeout', '15']));
    await Promise.all(rx.map((p) => p.ready));
    const tx = await runProton('send.py', ['--url', url(r), '--address', 'multicast.vol', '--count', String(M), '--body-size', '2048', '--timeout', '15']);
    assert.equal({ sent: tx.result.sent, accepted: tx.result.accepted, unsettled: tx.result.unsettled }, { sent: M, accepted: M, unsettled: 0 }, tx.stderr);
    for (const p of rx) {
      const d = await p.done;
      assert.is(d.result.received, M);
      assert.ok((d.result.messages as Json[]).every((m) => m.binary_size === 2048), 'every body complete');
    }
  });
});

test('consumers with snd-settle-mode settled count as no outcome; an accepting one still wins', async () => {
  // proton send x3 --> [R1 multicast.ps1] --> rhea receive (snd-settle-mode settled)
  //                                       \-> proton receive (accepts)
  // proton send x3 --> [R1 multicast.ps2] --> rhea receive (snd-settle-mode settled) x2
  await withRouter(async (r) => {
    const c = await rheaConnect(r);
    try {
      const open = async (address: string) => {
        const rcv = c.conn.open_receiver({ source: { address }, snd_settle_mode: 1 } as any);
        const got = collect(rcv);
        await once(rcv as any, 'receiver_open');
        return got;
      };
      const [g1, g2, g3] = await Promise.all([open('multicast.ps1'), open('multicast.ps2'), open('multicast.ps2')]);
      const acc = startProton('receive.py', ['--url', url(r), '--address', 'multicast.ps1', '--count', '3', '--timeout', '5']);
      await acc.ready;
      const [t1, t2] = await Promise.all([
        runProton('send.py', ['--url', url(r), '--address', 'multicast.ps1', '--count', '3', '--timeout', '5']),
        runProton('send.py', ['--url', url(r), '--address', 'multicast.ps2', '--count', '3', '--timeout', '5']),
      ]);
      assert.equal({ accepted: t1.result.accepted, none: t1.result.settled_no_outcome }, { accepted: 3, none: 0 }, 'accepted beats "no outcome"');
      assert.equal({ accepted: t2.result.accepted, none: t2.result.settled_no_outcome, unsettled: t2.result.unsettled }, { accepted: 0, none: 3, unsettled: 0 });
      assert.is((await acc.done).result.received, 3);
      for (const g of [g1, g2, g3]) assert.is(g.messages.length, 3);
    } finally {
      await c.close();
    }
  });
});

test('a consumer without credit holds the outcome back until it leaves (its copies: released)', async () => {
  // proton send x3 --> [R1 multicast.stuck] --> rhea receive (never grants credit, leaves later)
  //                                         \-> proton receive (accepts)
  await withRouter(async (r) => {
    const c = await rheaConnect(r);
    try {
      const stuck = c.conn.open_receiver({ source: { address: 'multicast.stuck' }, credit_window: 0 });
      await once(stuck as any, 'receiver_open');
      const acc = startProton('receive.py', ['--url', url(r), '--address', 'multicast.stuck', '--count', '3', '--timeout', '6']);
      await acc.ready;
      const tx = startProton('send.py', ['--url', url(r), '--address', 'multicast.stuck', '--count', '3', '--timeout', '6']);
      assert.is((await acc.done).result.received, 3, 'the accepting consumer got its copies');
      // The sender has no outcome yet: one consumer still has its copies undelivered.
      stuck.close();
      const t = await tx.done;
      assert.is(t.result.timed_out, false, 'outcomes came once the stuck consumer left');
      assert.equal({ accepted: t.result.accepted, released: t.result.released, modified: t.result.modified }, { accepted: 3, released: 0, modified: 0 });
    } finally {
      await c.close();
    }
  });
});

test.run();
