// Auto-links to RabbitMQ 3.10 (Debian's rabbitmq-server with the rabbitmq_amqp1_0 plugin), with a
// real router, a private RabbitMQ node and rhea clients.
//
//   rhea producer --> [router] --out auto-link /queue/rmqN--> [RabbitMQ queue rmqN]
//   rhea consumer <-- [router] <--in auto-link  /queue/rmqN--
//   rhea clients  --> [router] ==link route /queue==> RabbitMQ (last test)
//
// queue.* is a waypoint: producers send to phase 0, which the out auto-link carries to RabbitMQ;
// the in auto-link brings RabbitMQ's messages back as phase 1, which consumers receive. RabbitMQ's
// AMQP 1.0 addresses are /queue/NAME (declares the queue) or /amq/queue/NAME (an existing queue).
//
// Skipped (with the reason printed) only when rabbitmq-server is not installed and CI is unset;
// under CI a missing RabbitMQ fails.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RunningRabbit, RABBITMQ_SERVER, rabbitInstalled, startRabbit } from '../support/rabbit';
import { RunningRouter, startRouter } from '../support/router';
import { waitFor } from '../support/wait';
import { RheaClient, once, rheaConnect } from './helpers';

const skip = !rabbitInstalled() && !process.env.CI;
if (skip) process.stdout.write(`rabbitmq.test: SKIPPED: ${RABBITMQ_SERVER} is not installed (apt-get install rabbitmq-server, or run .ci/run) and CI is not set\n`);
const it = skip ? test.skip : test;

let rabbitP: Promise<RunningRabbit> | null = null;
/** The RabbitMQ node, started once (by the first test that needs it), stopped after the file. */
function rabbit(): Promise<RunningRabbit> {
  rabbitP ??= startRabbit();
  return rabbitP;
}
test.after(async () => {
  if (!rabbitP) return;
  const r = await rabbitP.catch(() => null);
  await r?.stop();
});

function routerConfig(rabbitPort: number, queues: string[]): string {
  let c = `router {\n    mode: standalone\n    id: RMQ\n}\nlistener {\n    host: 127.0.0.1\n    port: 0\n}\n` +
    `connector {\n    name: rmq\n    role: route-container\n    host: 127.0.0.1\n    port: ${rabbitPort}\n}\n` +
    `address {\n    prefix: queue\n    waypoint: yes\n}\n`;
  for (const q of queues) {
    for (const dir of ['in', 'out']) {
      c += `autoLink {\n    name: ${q}.${dir}\n    address: queue.${q}\n    externalAddress: /queue/${q}\n    direction: ${dir}\n    connection: rmq\n}\n`;
    }
  }
  return `${c}log {\n    module: DEFAULT\n    enable: info+\n}\n`;
}

/** A router whose auto-links to RabbitMQ for `queues` are all active. */
async function routerOn(r: RunningRabbit, queues: string[]): Promise<RunningRouter> {
  const router = await startRouter(routerConfig(r.port, queues));
  try {
    await waitFor(() => router.log.filter((l) => /auto-link .*: active/.test(l)).length >= 2 * queues.length || router.proc.exitCode !== null,
      15_000, `${2 * queues.length} auto-links active on RabbitMQ`);
    assert.is(router.proc.exitCode, null, 'the router is running');
  } catch (e) {
    await router.stop();
    throw withLogs(e, router, r);
  }
  return router;
}

function withLogs(e: unknown, router: RunningRouter | null, r: RunningRabbit | null): Error {
  const err = e instanceof Error ? e : new Error(String(e));
  if (router) err.message += `\n--- router log (last 30 lines) ---\n${router.log.slice(-30).join('\n')}`;
  if (r) err.message += `\n--- RabbitMQ log (last 20 lines) ---\n${r.log.slice(-20).join('\n')}`;
  return err;
}

/** Runs `fn` with a router on `queues`; stops it (exit 0 expected) and puts both logs on failure. */
async function withRouter(queues: string[], fn: (router: RunningRouter, r: RunningRabbit) => Promise<void>): Promise<void> {
  const r = await rabbit();
  const router = await routerOn(r, queues);
  let failed = true;
  try {
    await fn(router, r);
    failed = false;
  } catch (e) {
    throw withLogs(e, router, r);
  } finally {
    const code = await router.stop();
    if (!failed) assert.is(code, 0, 'router exits 0 on SIGTERM');
  }
}

/** Sends `bodies` as durable messages on one link; resolves when every one has an outcome. */
async function sendAll(c: RheaClient, address: string, bodies: string[], ms = 15_000): Promise<string[]> {
  const s = c.conn.open_sender({ target: { address } });
  const outcomes: string[] = new Array(bodies.length).fill('');
  let next = 0;
  let done = 0;
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${done}/${bodies.length} outcomes after ${ms} ms (sent ${next})`)), ms);
    const pump = () => {
      while (next < bodies.length && s.sendable()) {
        const i = next++;
        (s.send({ body: bodies[i], durable: true }) as any).index = i;
      }
    };
    const finish = (what: string) => (ctx: any) => {
      outcomes[ctx.delivery.index] = what;
      if (++done === bodies.length) {
        clearTimeout(t);
        resolve();
      }
    };
    s.on('sendable', pump);
    for (const o of ['accepted', 'rejected', 'released', 'modified']) s.on(o as any, finish(o));
    s.on('sender_error', (ctx: any) => {
      clearTimeout(t);
      reject(new Error(`sender error ${ctx.sender.error?.condition}: ${ctx.sender.error?.description}`));
    });
    pump();
  });
  s.close();
  return outcomes;
}

const bodies = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

/** RabbitMQ's view of queue `name` (rabbitmqctl list_queues). */
async function queue(r: RunningRabbit, name: string) {
  return (await r.queues()).find((q) => q.name === name);
}

/** Waits until RabbitMQ's queue `name` has `ready` and `unacked` messages (the last seen state on failure). */
async function waitQueue(r: RunningRabbit, name: string, ready: number, unacked: number, ms = 15_000): Promise<void> {
  let last: unknown = 'not yet asked';
  try {
    await waitFor(async () => {
      const q = await queue(r, name);
      last = q ?? 'no such queue';
      return q !== undefined && q.messages_ready === ready && q.messages_unacknowledged === unacked;
    }, ms, `RabbitMQ queue ${name} to have ${ready} ready and ${unacked} unacknowledged`);
  } catch (e) {
    throw new Error(`${(e as Error).message}; last seen: ${JSON.stringify(last)}`);
  }
}

/**
 * RabbitMQ log lines since `from` that mean a live channel or session broke: a crashed channel
 * process (3.10 crashes one asked to drain: function_clause in rabbit_classic_queue send_drained),
 * a channel exception or internal error. (Not the supervisor "shutdown_error" report RabbitMQ
 * sometimes writes when a connection's TCP socket closes without a close frame, as the router's
 * route-container connections do at shutdown.)
 */
function rabbitErrors(r: RunningRabbit, from: number): string[] {
  return r.log.slice(from).filter((l) => /Generic server .* terminating|CRASH REPORT|function_clause|internal error|Channel error|channel exception|precondition_failed/i.test(l));
}

it('50 durable messages through auto-links to RabbitMQ: all accepted, all received in order', async () => {
  await withRouter(['rmq1'], async (router, r) => {
    const mark = r.log.length;
    const c = await rheaConnect(router);
    try {
      const sent = bodies('a', 50);
      const outcomes = await sendAll(c, 'queue.rmq1', sent);
      assert.equal(outcomes, sent.map(() => 'accepted'), 'RabbitMQ accepted every message');
      const rx = c.conn.open_receiver({ source: { address: 'queue.rmq1' }, credit_window: 20 });
      const got: string[] = [];
      rx.on('message', (ctx) => got.push(ctx.message!.body as string));
      await waitFor(() => got.length >= 50, 15_000, '50 messages back through the in auto-link');
      assert.equal(got, sent, 'all 50, in order, once');
      // Accepted by the consumer -> acknowledged to RabbitMQ: the queue is empty.
      await waitQueue(r, 'rmq1', 0, 0);
      assert.equal(rabbitErrors(r, mark), [], 'no channel errors in the RabbitMQ log');
    } finally {
      await c.close();
    }
  });
});

it('messages sent while nobody consumes are held by RabbitMQ: a new router delivers them', async () => {
  const r = await rabbit();
  const mark = r.log.length;
  const sent = bodies('b', 20);
  await withRouter(['rmq2'], async (router) => {
    const c = await rheaConnect(router);
    try {
      const outcomes = await sendAll(c, 'queue.rmq2', sent);
      assert.equal(outcomes, sent.map(() => 'accepted'));
    } finally {
      await c.close();
    }
  });
  // The router is stopped: RabbitMQ itself holds them (asked with rabbitmqctl, not a competing
  // consumer).
  await waitQueue(r, 'rmq2', 20, 0);
  await withRouter(['rmq2'], async (router) => {
    const c = await rheaConnect(router);
    try {
      const rx = c.conn.open_receiver({ source: { address: 'queue.rmq2' }, credit_window: 10 });
      const got: string[] = [];
      rx.on('message', (ctx) => got.push(ctx.message!.body as string));
      await waitFor(() => got.length >= 20, 15_000, 'the 20 held messages through a new router');
      assert.equal(got, sent, 'all 20, in order, once');
      await waitQueue(r, 'rmq2', 0, 0);
    } finally {
      await c.close();
    }
  });
  assert.equal(rabbitErrors(r, mark), [], 'no channel errors in the RabbitMQ log');
});

it('drain on a RabbitMQ-backed queue: idle drain completes; with messages held they come first; RabbitMQ links survive', async () => {
  await withRouter(['rmq3'], async (router, r) => {
    const mark = r.log.length;
    const c = await rheaConnect(router);
    try {
      // 1. Nothing anywhere: the drain completes at once, credit 0.
      const rx = c.conn.open_receiver({ source: { address: 'queue.rmq3' }, credit_window: 0 });
      await once(rx as any, 'receiver_open');
      const got: string[] = [];
      const events: string[] = [];
      rx.on('message', (ctx) => { got.push(ctx.message!.body as string); events.push('message'); });
      rx.on('receiver_drained', () => events.push('drained'));
      let drained = once(rx as any, 'receiver_drained', 5000);
      rx.add_credit(5);
      rx.drain_credit();
      await drained;
      assert.equal(events, ['drained'], 'idle: drained, no message');
      assert.is((rx as any).credit, 0, 'no credit left after the drain');
      rx.drain = false;

      // 2. Messages held: 5 go to RabbitMQ; the router's in auto-link (credit while a consumer is
      //    attached) takes them, so RabbitMQ shows them unacknowledged; then a drain with credit 10
      //    gets the 5 first, then completes.
      const sent = bodies('c', 5);
      assert.equal(await sendAll(c, 'queue.rmq3', sent), sent.map(() => 'accepted'));
      await waitQueue(r, 'rmq3', 0, 5); // the router holds the 5 (taken from RabbitMQ, unsettled)
      events.length = 0;
      drained = once(rx as any, 'receiver_drained', 5000);
      rx.add_credit(10);
      rx.drain_credit();
      await drained;
      assert.equal(events, ['message', 'message', 'message', 'message', 'message', 'drained'], 'messages, then the drain');
      assert.equal(got, sent);
      rx.drain = false;

      // 3. The auto-links survived (RabbitMQ never saw a drain it could choke on): a new message
      //    goes round once credit comes back.
      assert.ok(!router.log.some((l) => /auto-link .*: (failed|inactive)/.test(l)), 'auto-links still active');
      assert.equal(await sendAll(c, 'queue.rmq3', ['after']), ['accepted']);
      rx.add_credit(1);
      await waitFor(() => got.length === 6, 10_000, 'a message after the drains');
      assert.is(got[5], 'after');
      await waitQueue(r, 'rmq3', 0, 0);
      assert.equal(rabbitErrors(r, mark), [], 'no channel errors in the RabbitMQ log (RabbitMQ was never asked to drain)');
    } finally {
      await c.close();
    }
  });
});

it('link routes to RabbitMQ: client links on /queue/... go to RabbitMQ itself; send, receive and acknowledge end to end', async () => {
  //   rhea producer/consumer --> [router: linkRoute /queue in+out] --> RabbitMQ /queue/lr1
  const r = await rabbit();
  const mark = r.log.length;
  const router = await startRouter(`router {\n    mode: standalone\n    id: RMQLR\n}\nlistener {\n    host: 127.0.0.1\n    port: 0\n}\n` +
    `connector {\n    name: rmq\n    role: route-container\n    host: 127.0.0.1\n    port: ${r.port}\n}\n` +
    `linkRoute {\n    prefix: /queue\n    direction: in\n    connection: rmq\n}\nlinkRoute {\n    prefix: /queue\n    direction: out\n    connection: rmq\n}\n`);
  let failed = true;
  try {
    await waitFor(() => router.log.some((l) => /connector rmq: active/.test(l)), 15_000, 'connected to RabbitMQ');
    const c = await rheaConnect(router);
    try {
      const sent = bodies('lr', 20);
      assert.equal(await sendAll(c, '/queue/lr1', sent), sent.map(() => 'accepted'), 'RabbitMQ accepted, through the routed link');
      await waitQueue(r, 'lr1', 20, 0);
      const rx = c.conn.open_receiver({ source: { address: '/queue/lr1' }, credit_window: 10 });
      const got: string[] = [];
      rx.on('message', (ctx) => got.push(ctx.message!.body as string));
      await waitFor(() => got.length >= 20, 15_000, '20 messages from RabbitMQ over the routed link');
      assert.equal(got, sent);
      await waitQueue(r, 'lr1', 0, 0);
      assert.equal(rabbitErrors(r, mark), [], 'no channel errors in the RabbitMQ log');
    } finally {
      await c.close();
    }
    failed = false;
  } catch (e) {
    throw withLogs(e, router, r);
  } finally {
    const code = await router.stop();
    if (!failed) assert.is(code, 0);
  }
});

test.run();
