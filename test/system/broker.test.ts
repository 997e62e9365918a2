// The broker's AMQP semantics over real sockets with a real broker process and rhea clients:
//
//   rhea producers --> [broker B1, dataDir D] --> rhea consumers
//
// queues (FIFO, competing consumers), topics (subscriptions, durable, shared), browse,
// selectors, TTL, scheduled delivery, groups, redelivery and the DLQ, flow control, restart.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import rhea = require('rhea');
import * as fs from 'node:fs';
import { bodies, brokerConfig, brokerMemoryMb, connect, numbered, receiver, sendAll, startBroker, tempDir, waitFor, withBroker } from './broker-helpers';

test('queue: FIFO to one consumer; competing consumers share without duplicates', async () => {
  await withBroker(async (b) => {
    const c = await connect(b);
    try {
      assert.equal(await sendAll(c, 'orders', numbered(20)), new Array(20).fill('accepted'));
      const rx = await receiver(c, 'orders');
      await waitFor(() => rx.messages.length === 20, 5000, '20 messages');
      assert.equal(bodies(rx), numbered(20).map((m) => m.body), 'FIFO');
      await rx.close();
      const a = await receiver(c, 'work', { credit: 5 });
      const b2 = await receiver(c, 'work', { credit: 5 });
      await sendAll(c, 'work', numbered(40, 'w'));
      await waitFor(() => a.messages.length + b2.messages.length === 40, 5000, '40 work items');
      const all = [...bodies(a), ...bodies(b2)];
      assert.is(new Set(all).size, 40, 'no duplicates');
      assert.ok(a.messages.length > 0 && b2.messages.length > 0, `both consumers served: ${a.messages.length}/${b2.messages.length}`);
    } finally {
      await c.close();
    }
  });
});

test('topic: every subscriber gets every message; a durable subscription keeps messages while away and across a restart; unsubscribe deletes it', async () => {
  const dataDir = tempDir();
  const cfg = brokerConfig(dataDir, { extra: 'address {\n    prefix: news\n    routingType: multicast\n}\n' });
  let b = await startBroker(cfg);
  try {
    const c1 = await connect(b, 'client-1');
    const s1 = await receiver(c1, 'news.sport');
    const durable = await receiver(c1, { address: 'news.sport', durable: 2, expiry_policy: 'never' } as never, { name: 'sub-a' });
    await sendAll(c1, 'news.sport', numbered(5, 'n'));
    await waitFor(() => s1.messages.length === 5 && durable.messages.length === 5, 5000, 'both subscribers');
    await durable.detach(); // detach without closing: the subscription stays
    await sendAll(c1, 'news.sport', numbered(3, 'away'));
    await waitFor(() => s1.messages.length === 8, 5000);
    await c1.close();
    assert.is(await b.stop(), 0);
    b = await startBroker(cfg);
    const c2 = await connect(b, 'client-1');
    const back = await receiver(c2, { address: 'news.sport', durable: 2, expiry_policy: 'never' } as never, { name: 'sub-a' });
    await waitFor(() => back.messages.length === 3, 5000, 'messages kept for the durable subscription across a restart');
    assert.equal(bodies(back), ['away0', 'away1', 'away2']);
    await back.close(); // closed: unsubscribe
    await sendAll(c2, 'news.sport', numbered(2, 'gone'));
    const again = await receiver(c2, { address: 'news.sport', durable: 2, expiry_policy: 'never' } as never, { name: 'sub-a' });
    await sendAll(c2, 'news.sport', numbered(1, 'fresh'));
    await waitFor(() => again.messages.length === 1, 5000);
    assert.equal(bodies(again), ['fresh0'], 'a re-made subscription starts empty');
    await c2.close();
  } finally {
    assert.is(await b.stop(), 0);
  }
});

test('shared durable subscription: two consumers split one subscription', async () => {
  await withBroker(async (b) => {
    const c = await connect(b, 'app');
    try {
      const src = { address: 'events', durable: 2, expiry_policy: 'never', capabilities: ['topic', 'shared'] } as never;
      const a = await receiver(c, src, { name: 'audit', credit: 3 });
      const b2 = await receiver(c, src, { name: 'audit|2', credit: 3 });
      const own = await receiver(c, { address: 'events', capabilities: ['topic'] } as never);
      await sendAll(c, { address: 'events', capabilities: ['topic'] } as never, numbered(30, 'e'));
      await waitFor(() => a.messages.length + b2.messages.length === 30 && own.messages.length === 30, 5000, 'shared split and own copy');
      assert.is(new Set([...bodies(a), ...bodies(b2)]).size, 30);
      assert.ok(a.messages.length > 0 && b2.messages.length > 0);
    } finally {
      await c.close();
    }
  });
});

test('browse (distribution-mode copy) sees messages without taking them; selectors pick by property and header', async () => {
  await withBroker(async (b) => {
    const c = await connect(b);
    try {
      await sendAll(c, 'catalog', numbered(6, 'p', (i) => ({ application_properties: { color: i % 2 ? 'red' : 'blue', n: i }, priority: i })));
      const browser = await receiver(c, { address: 'catalog', distribution_mode: 'copy' } as never);
      await waitFor(() => browser.messages.length === 6, 5000, 'browse all');
      assert.is(browser.deliveries.every((d) => (d as any).remote_settled), true, 'browse deliveries are pre-settled');
      await browser.close();
      const red = await receiver(c, { address: 'catalog', filter: rhea.filter.selector("color = 'red' AND n >= 3") } as never);
      await waitFor(() => red.messages.length === 2, 5000, 'selector matches');
      assert.equal(bodies(red), ['p3', 'p5']);
      const hi = await receiver(c, { address: 'catalog', filter: rhea.filter.selector('JMSPriority > 3') } as never);
      await waitFor(() => hi.messages.length === 1, 5000);
      assert.equal(bodies(hi), ['p4']);
      const rest = await receiver(c, 'catalog');
      await waitFor(() => rest.messages.length === 3, 5000, 'the rest, still there after browsing');
      assert.equal(bodies(rest), ['p0', 'p1', 'p2']);
      // A selector that does not parse is refused at attach with a clear condition.
      const bad = c.conn.open_receiver({ source: { address: 'catalog', filter: rhea.filter.selector('color = ') } } as never);
      const err: any = await new Promise((resolve) => bad.on('receiver_close', (ctx: any) => resolve(ctx.receiver.error)));
      assert.is(err?.condition, 'amqp:invalid-field');
      assert.match(String(err?.description), /selector/);
    } finally {
      await c.close();
    }
  });
});

test('TTL: expired messages go to ExpiryQueue; scheduled delivery waits for x-opt-delivery-delay / x-opt-delivery-time', async () => {
  await withBroker(async (b) => {
    const c = await connect(b);
    try {
      await sendAll(c, 'short', [{ body: 'dies', ttl: 200, durable: true }, { body: 'lives', durable: true }]);
      const expiry = await receiver(c, 'ExpiryQueue');
      await waitFor(() => expiry.messages.length === 1, 5000, 'expired message moved');
      assert.equal(bodies(expiry), ['dies']);
      const live = await receiver(c, 'short');
      await waitFor(() => live.messages.length === 1, 5000);
      assert.equal(bodies(live), ['lives']);

      const sched = await receiver(c, 'later');
      const t0 = Date.now();
      await sendAll(c, 'later', [
        { body: 'delay', durable: true, message_annotations: { 'x-opt-delivery-delay': 600 } },
        { body: 'time', durable: true, message_annotations: { 'x-opt-delivery-time': Date.now() + 300 } },
        { body: 'now', durable: true },
      ]);
      await waitFor(() => sched.messages.length === 3, 5000, 'scheduled messages');
      assert.equal(bodies(sched), ['now', 'time', 'delay'], 'in due order');
      assert.ok(Date.now() - t0 >= 550, 'the delayed one waited');
    } finally {
      await c.close();
    }
  });
});

test('message groups: one consumer per group, in order; reassigned when it leaves', async () => {
  await withBroker(async (b) => {
    const c = await connect(b);
    try {
      const a = await receiver(c, 'grouped', { credit: 50 });
      const b2 = await receiver(c, 'grouped', { credit: 50 });
      const msgs = numbered(40, 'g', (i) => ({ group_id: `G${i % 4}`, application_properties: { seq: i } }));
      await sendAll(c, 'grouped', msgs);
      await waitFor(() => a.messages.length + b2.messages.length === 40, 5000);
      const owner = new Map<string, Set<string>>();
      for (const [name, rx] of [['a', a], ['b', b2]] as const) {
        const seqs = new Map<string, number[]>();
        for (const m of rx.messages) {
          const g = m.group_id as string;
          (owner.get(g) ?? owner.set(g, new Set()).get(g)!).add(name);
          (seqs.get(g) ?? seqs.set(g, []).get(g)!).push(m.application_properties!.seq);
        }
        for (const s of seqs.values()) assert.equal(s, [...s].sort((x, y) => x - y), 'in order within a group');
      }
      for (const [g, o] of owner) assert.is(o.size, 1, `group ${g} went to one consumer`);
      // The owner of G0 leaves: G0 moves to the other consumer.
      const g0Owner = [...owner.get('G0')!][0] === 'a' ? a : b2;
      const other = g0Owner === a ? b2 : a;
      await g0Owner.close();
      const before = other.messages.length;
      await sendAll(c, 'grouped', [{ body: 'late', group_id: 'G0', durable: true }]);
      await waitFor(() => other.messages.length === before + 1, 5000, 'G0 reassigned');
    } finally {
      await c.close();
    }
  });
});

test('redelivery: released returns to the head; modified counts attempts; past maxDeliveryAttempts → DLQ; undeliverable-here avoids the consumer; rejected → DLQ', async () => {
  const extra = 'address {\n    prefix: retry\n    maxDeliveryAttempts: 3\n    deadLetterAddress: retry.dlq\n}\n';
  await withBroker(async (b) => {
    const c = await connect(b);
    try {
      await sendAll(c, 'retry.a', numbered(3, 'r'));
      // First delivery of r0 is released: it comes back first, with no attempt counted.
      let released = false;
      const rx = await receiver(c, 'retry.a', {
        credit: 1,
        settle: (m) => {
          if (m.body === 'r0' && !released) {
            released = true;
            return 'release';
          }
          return 'accept';
        },
      });
      await waitFor(() => rx.messages.length === 4, 5000);
      assert.equal(bodies(rx), ['r0', 'r0', 'r1', 'r2']);
      assert.is(rx.messages[1].delivery_count ?? 0, 0, 'released does not count a delivery attempt');
      await rx.close();

      await sendAll(c, 'retry.b', numbered(1, 'poison'));
      const fails = await receiver(c, 'retry.b', { settle: () => 'modify' });
      const dlq = await receiver(c, 'retry.dlq');
      await waitFor(() => dlq.messages.length === 1, 5000, 'dead-lettered after 3 attempts');
      assert.is(fails.messages.length, 3);
      assert.equal(fails.messages.map((m) => m.delivery_count ?? 0), [0, 1, 2], 'header delivery-count counts failed attempts');
      assert.equal(fails.messages.map((m) => m.first_acquirer ?? false), [false, false, false].map((_, i) => i === 0 ? (fails.messages[0].first_acquirer ?? false) : false));
      await fails.close();

      // undeliverable-here: the consumer that refused it never sees it again; the other gets it.
      const picky = await receiver(c, 'retry.c', { settle: () => 'undeliverable' });
      await sendAll(c, 'retry.c', numbered(1, 'u'));
      await waitFor(() => picky.messages.length === 1, 5000);
      const other = await receiver(c, 'retry.c');
      await waitFor(() => other.messages.length === 1, 5000, 'the other consumer gets it');
      assert.is(picky.messages.length, 1);

      const rej = await receiver(c, 'retry.d', { settle: () => 'reject' });
      await sendAll(c, 'retry.d', numbered(1, 'bad'));
      await waitFor(() => dlq.messages.length === 2, 5000, 'rejected goes to the DLQ');
      assert.equal(bodies(dlq), ['poison0', 'bad0']);
      assert.is(rej.messages.length, 1);
    } finally {
      await c.close();
    }
  }, { extra });
});

test('flow control: BLOCK withholds credit while the address is full; FAIL rejects with amqp:resource-limit-exceeded', async () => {
  const extra = 'address {\n    prefix: blocky\n    maxSizeBytes: 2000\n    addressFullPolicy: BLOCK\n}\naddress {\n    prefix: faily\n    maxSizeBytes: 2000\n    addressFullPolicy: fail\n}\n';
  await withBroker(async (b) => {
    const c = await connect(b);
    try {
      const big = (i: number) => ({ body: Buffer.alloc(500, i), durable: true }) as rhea.Message;
      const out = await sendAll(c, 'faily.q', Array.from({ length: 8 }, (_, i) => big(i)));
      const accepted = out.filter((x) => x === 'accepted').length;
      assert.ok(accepted >= 3 && accepted <= 5, `about 2000 bytes accepted: ${accepted}`);
      assert.ok(out.slice(accepted).every((x) => x === 'rejected:amqp:resource-limit-exceeded'), out.join(','));

      // One at a time: the flow that takes credit away precedes the outcome of the message that filled the address.
      const s = c.conn.open_sender({ target: { address: 'blocky.q' } });
      let acceptedB = 0;
      s.on('accepted', () => acceptedB++);
      let sent = 0;
      for (; sent < 10; sent++) {
        const ok = await waitFor(() => s.sendable(), 500).then(() => true, () => false);
        if (!ok) break;
        s.send(big(sent));
        await waitFor(() => acceptedB === sent + 1, 5000, 'accepted');
      }
      const blockedAt = sent;
      assert.ok(blockedAt >= 3 && blockedAt <= 5, `sender blocked after ${blockedAt} messages of 500 bytes (maxSizeBytes 2000)`);
      const rest = (async () => {
        for (; sent < 10; sent++) {
          await waitFor(() => s.sendable(), 5000, 'credit again');
          s.send(big(sent));
        }
      })();
      const rx = await receiver(c, 'blocky.q');
      await rest;
      await waitFor(() => acceptedB === 10 && rx.messages.length === 10, 5000, 'consuming unblocks the producer');
    } finally {
      await c.close();
    }
  }, { extra });
});

test('persistence: accepted durable messages survive kill -9; acknowledged ones stay gone; non-durable ones do not survive', async () => {
  const dataDir = tempDir();
  const cfg = brokerConfig(dataDir);
  let b = await startBroker(cfg);
  try {
    const c = await connect(b);
    await sendAll(c, 'keep', numbered(50, 'k'));
    await sendAll(c, 'keep', [{ body: 'volatile', durable: false }]);
    const rx = await receiver(c, 'keep', { credit: 10, settle: (m) => (Number(String(m.body).slice(1)) < 10 ? 'accept' : 'none') });
    await waitFor(() => rx.messages.length >= 10, 5000);
    // A barrier: frames are handled in order, so once this durable send is accepted the broker has
    // handled the 10 acknowledgements before it, and its sync covered their journal records.
    assert.equal(await sendAll(c, 'barrier', numbered(1)), ['accepted']);
    await b.kill('SIGKILL');
    await c.close().catch(() => undefined);
    b = await startBroker(cfg);
    const c2 = await connect(b);
    const rx2 = await receiver(c2, 'keep');
    await waitFor(() => rx2.messages.length === 40, 5000, 'the 40 unacknowledged messages');
    assert.equal(bodies(rx2), numbered(40).map((_, i) => `k${i + 10}`));
    await c2.close();
  } finally {
    await b.stop();
  }
});

function rssKb(pid: number): number {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/);
  return m ? Number(m[1]) : 0;
}

test('a slow consumer: 160 MB of durable messages with a 1 MB page cache stay on disk; memory stays bounded; all are delivered intact', async () => {
  await withBroker(async (b) => {
    const c = await connect(b);
    try {
      // Round 1 warms the heap and allocator up; round 2's growth is what more queued messages cost.
      const N = 40_000;
      const body = (i: number) => Buffer.alloc(4096, i % 251);
      const batch = 2000;
      const sendRange = async (from: number, to: number) => {
        for (let i = from; i < to; i += batch) {
          const out = await sendAll(c, 'slow', Array.from({ length: batch }, (_, k) => ({ body: body(i + k), durable: true, message_id: i + k }) as rhea.Message), 30_000);
          assert.ok(out.every((x) => x === 'accepted'));
        }
      };
      await sendRange(0, N / 2);
      const before = await brokerMemoryMb(b);
      await sendRange(N / 2, N);
      const after = await brokerMemoryMb(b);
      const growthMb = after.heap + after.buffers - before.heap - before.buffers;
      process.stdout.write(`  broker after GC: heap ${before.heap} -> ${after.heap} MB, buffers ${before.buffers} -> ${after.buffers} MB for 80 MB more queued messages (page cache 1 MB; RSS ${(rssKb(b.pid) / 1024).toFixed(0)} MB)\n`);
      assert.ok(after.cached <= 1.01, `bodies cached in memory: ${after.cached} MB (page cache 1 MB)`);
      assert.ok(growthMb < 40, `memory grew ${growthMb.toFixed(0)} MB for 80 MB of messages`);
      const rx = await receiver(c, 'slow', { credit: 500 });
      await waitFor(() => rx.messages.length === N, 60_000, 'all delivered');
      for (const k of [0, 1, 7777, 31_000, N - 1]) {
        const m = rx.messages[k];
        assert.is(m.message_id, k, 'in order');
        assert.ok(Buffer.from((m.body as any).content ?? m.body).equals(body(k)), `body ${k} intact`);
      }
    } finally {
      await c.close();
    }
  }, { broker: '    pageCacheBytes: 1048576\n', nodeArgs: ['--expose-gc'] });
});

test('a non-persistent broker: 160 MB of messages with a 1 MB page cache spill to the pager; memory stays bounded; all delivered intact', async () => {
  await withBroker(async (b) => {
    const c = await connect(b);
    try {
      const N = 40_000;
      const body = (i: number) => Buffer.alloc(4096, (i * 7) % 251);
      const sendRange = async (from: number, to: number) => {
        for (let i = from; i < to; i += 2000) {
          const out = await sendAll(c, 'spill', Array.from({ length: 2000 }, (_, k) => ({ body: body(i + k), durable: false, message_id: i + k }) as rhea.Message), 30_000);
          assert.ok(out.every((x) => x === 'accepted'));
        }
      };
      await sendRange(0, N / 2);
      const before = await brokerMemoryMb(b);
      await sendRange(N / 2, N);
      const after = await brokerMemoryMb(b);
      const growthMb = after.heap + after.buffers - before.heap - before.buffers;
      process.stdout.write(`  non-persistent broker heap+buffers after GC: ${(before.heap + before.buffers).toFixed(0)} MB -> ${(after.heap + after.buffers).toFixed(0)} MB for 80 MB more queued messages\n`);
      assert.ok(growthMb < 40, `memory grew ${growthMb.toFixed(0)} MB for 80 MB of messages (bodies in memory: 80 MB or more)`);
      const rx = await receiver(c, 'spill', { credit: 500 });
      await waitFor(() => rx.messages.length === N, 60_000, 'all delivered');
      for (const k of [0, 19_999, 20_000, N - 1]) {
        assert.is(rx.messages[k].message_id, k);
        assert.ok(Buffer.from((rx.messages[k].body as any).content ?? rx.messages[k].body).equals(body(k)), `body ${k} intact`);
      }
    } finally {
      await c.close();
    }
  }, { broker: '    pageCacheBytes: 1048576\n    persistent: false\n', nodeArgs: ['--expose-gc'] });
});

test('an oversized message detaches its link with amqp:link:message-size-exceeded; other clients carry on', async () => {
  await withBroker(async (b) => {
    const c = await connect(b);
    const other = await connect(b);
    try {
      const s = c.conn.open_sender({ target: { address: 'big' } });
      await waitFor(() => s.sendable(), 5000);
      s.send({ body: Buffer.alloc(5000), durable: true });
      const err: any = await new Promise((resolve) => s.on('sender_close', (ctx: any) => resolve(ctx.sender.error)));
      assert.is(err?.condition, 'amqp:link:message-size-exceeded');
      assert.equal(await sendAll(other, 'small', numbered(3)), ['accepted', 'accepted', 'accepted']);
    } finally {
      await c.close();
      await other.close();
    }
  }, { broker: '    maxMessageSize: 4096\n' });
});

test('a torn journal tail after kill -9 is found by checksum, truncated and logged; every accepted message is recovered', async () => {
  const dataDir = tempDir();
  const cfg = brokerConfig(dataDir);
  let b = await startBroker(cfg);
  try {
    const c = await connect(b);
    assert.ok((await sendAll(c, 'torn', numbered(20, 't'))).every((x) => x === 'accepted'));
    await b.kill('SIGKILL');
    await c.close().catch(() => undefined);
    // A record half-written when the power went: a plausible length, then garbage.
    const segs = fs.readdirSync(`${dataDir}/journal`).filter((f) => f.endsWith('.seg')).sort();
    const last = `${dataDir}/journal/${segs[segs.length - 1]}`;
    const junk = Buffer.alloc(64, 0xab);
    junk.writeUInt32LE(40, 0);
    fs.appendFileSync(last, junk);
    b = await startBroker(cfg);
    assert.ok(b.log.some((l) => /truncated a torn journal tail/.test(l)), b.log.join('\n'));
    const c2 = await connect(b);
    const rx = await receiver(c2, 'torn');
    await waitFor(() => rx.messages.length === 20, 5000, 'the 20 accepted messages');
    assert.equal(bodies(rx), numbered(20, 't').map((m) => m.body));
    await c2.close();
  } finally {
    await b.stop();
  }
});

test('failover-server-list: the open frame announces the pair in Artemis form', async () => {
  const dataDir = tempDir();
  const { freePort } = await import('../support/broker');
  const [p1, p2] = [await freePort(), await freePort()];
  const live = await startBroker(brokerConfig(dataDir, { id: 'live', port: p1 }), { name: 'live' });
  const slave = await startBroker(brokerConfig(dataDir, { id: 'backup', port: p2 }), { name: 'backup', waitLive: false });
  try {
    await new Promise((r) => setTimeout(r, 1100)); // the members list is cached for 1 s
    const c = await connect(live);
    const props: any = (c.conn as any).properties;
    const list = props['failover-server-list'];
    assert.ok(Array.isArray(list), JSON.stringify(props));
    const ports = list.map((e: any) => e.port).sort();
    assert.equal(ports, [p1, p2].sort());
    for (const e of list) assert.equal(Object.keys(e).sort(), ['hostname', 'network-host', 'port', 'scheme']);
    assert.is(slave.live, false, 'the slave does not listen');
    await c.close();
  } finally {
    await live.stop();
    await slave.stop();
  }
});

test('bad config: refused with file, line and valid choices, exit 1', async () => {
  const dataDir = tempDir();
  const b = await startBroker(brokerConfig(dataDir, { extra: 'address {\n    prefix: x\n    addressFullPolicy: DROP\n}\n' }), { waitLive: false }).catch((e) => e);
  // startBroker waits for the slave log line or an exit.
  const r = b as any;
  const code = await r.exited;
  assert.is(code, 1);
  const text = r.log.join('\n');
  assert.match(text, /broker\.conf:\d+/);
  assert.match(text, /BLOCK/);
  assert.match(text, /FAIL/);
});

test.run();
