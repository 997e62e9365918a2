// `amqp-mesh apply`: a running topology (bootTopology) changes under load, through up's control
// socket (serveControl / requestApply), without any client noticing.
//
//   before                                        after
//
//   producer                                      producer
//      |                                             |
//     [B] ---- B -> A, cost 1 ----> [A]             [B] ---- B -> A, cost 5 ----> [A] -- consumer
//                                  |   \              \                          /
//                           consumer    pair1          C -> B               C -> A
//                                       (queue.)          \                  /
//                                                          `----- [C] -----'
//                                                                   |
//                                                                 pair2 (queue.)
//
// queue.orders is a waypoint of pair1 before and of pair2 after; pair1 is removed (drained to the
// consumer, then stopped), router C and pair2 are added, and the A-B link's cost changes (B's
// connection to A is re-made once the path through C is up). The apply goes through up's control
// socket (serveControl in this process, requestApply as `amqp-mesh apply` does); a change that
// needs a restart is refused first, with FILE:LINE, and changes nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import rhea = require('rhea');
import { loadTopologyFile, parseTopology } from '../../topology/model';
import { bootTopology, type RunningTopology } from '../../topology/up';
import { applyTopology, browseCount } from '../../topology/apply';
import { requestApply, serveControl, type ControlServer } from '../../topology/control';
import { credit, once, rheaConnect, waitFor, type RheaClient } from './helpers';

const BEFORE = `routers:
  A: { port: 0 }
  B: { port: 0 }
links:
  - { from: B, to: A, cost: 1 }
brokerPairs:
  pair1: { router: A, queues: [queue.orders] }
addresses:
  - { prefix: closest, distribution: closest }
  - { prefix: queue., waypoint: pair1 }
`;

const AFTER = `routers:
  A: { port: 0 }
  B: { port: 0 }
  C: { port: 0 }
links:
  - { from: B, to: A, cost: 5 }
  - { from: C, to: A, cost: 1 }
  - { from: C, to: B, cost: 1 }
brokerPairs:
  pair2: { router: C, queues: [queue.orders] }
addresses:
  - { prefix: closest, distribution: closest }
  - { prefix: queue., waypoint: pair2 }
`;

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const logOf = (file: string): string => fs.readFileSync(file, 'utf8');

test('apply: add router C and pair2, move queue. from pair1 to pair2, remove pair1, change a cost - under load, clients untouched', async () => {
  const started = Date.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amqp-mesh-apply-test-'));
  const before = path.join(dir, 'before.yaml');
  const after = path.join(dir, 'after.yaml');
  const bad = path.join(dir, 'bad.yaml');
  fs.writeFileSync(before, BEFORE);
  fs.writeFileSync(after, AFTER);
  let topo: RunningTopology | undefined;
  let control: ControlServer | undefined;
  const clients: RheaClient[] = [];
  const timers: NodeJS.Timeout[] = [];
  try {
    topo = await bootTopology(loadTopologyFile(before), { runDir: path.join(dir, 'run'), timeoutMs: 30_000 });
    const t = topo;
    control = await serveControl(t, { modelFile: before, pointer: false });
    assert.ok(control.socket && fs.existsSync(control.socket), 'control socket');
    const state = JSON.parse(fs.readFileSync(path.join(t.runDir, 'state.json'), 'utf8'));
    assert.is(state.upPid, process.pid);
    assert.is(state.components.length, 4);
    const a = t.router('A');
    await waitFor(() => (logOf(a.logFile).match(/auto-link \S+: active/g) ?? []).length === 2, 10_000, 'pair1 auto-links active on A');
    const pair1 = t.components.filter((c) => c.pair === 'pair1');
    const pair1Port = (t.liveBroker('pair1') as { port: number }).port;

    // A change up cannot make live is refused with FILE:LINE, and nothing changes.
    fs.writeFileSync(bad, AFTER.replace('A: { port: 0 }', `A: { port: ${a.port === 65535 ? 65534 : a.port + 1} }`));
    const refused = await requestApply(t.runDir, bad, () => undefined);
    assert.is(refused.ok, false);
    assert.ok(refused.error?.startsWith(`${bad}:2: router A listens on`), refused.error);
    assert.match(refused.error as string, /nothing was changed/);
    assert.is(t.components.length, 4);
    assert.not.match(logOf(a.logFile), /SIGHUP/);

    // Load: a paced producer on B (resending what comes back released or modified) and a paced
    // consumer on A, which pauses (credit 0, still attached) while the apply adds pair2 and C, so
    // that pair1 surely holds a backlog when the address moves; from then on it is faster than
    // the producer (consumers that keep up drain the old pair).
    const events: string[] = [];
    const pc = await rheaConnect({ port: t.router('B').port });
    const cc = await rheaConnect({ port: a.port });
    clients.push(pc, cc);
    const received = new Set<number>();
    let rx = cc.conn.open_receiver({ source: { address: 'queue.orders' }, credit_window: 0 });
    const onMessage = (ctx: rhea.EventContext) => received.add(ctx.message!.body as number);
    rx.on('message', onMessage);
    rx.on('receiver_close', () => events.push('consumer detached'));
    let paceConsumer = true;
    let window = 2;
    timers.push(setInterval(() => {
      const c = credit(rx);
      if (paceConsumer && c < window) rx.add_credit(window - c);
    }, 10));
    const s = pc.conn.open_sender({ target: { address: 'queue.orders' } });
    s.on('sender_close', () => events.push('producer detached'));
    const accepted = new Set<number>();
    const retry: number[] = [];
    let next = 0;
    let limit = Infinity;
    let budget = 0;
    const pump = () => {
      while (budget > 0 && s.sendable()) {
        const id = retry.length > 0 ? (retry.shift() as number) : next < limit ? next++ : -1;
        if (id < 0) return;
        budget--;
        (s.send({ body: id, durable: true }) as any).msgId = id;
      }
    };
    timers.push(setInterval(() => {
      budget = 3;
      pump();
    }, 10));
    s.on('sendable', pump);
    s.on('accepted', (ctx: any) => accepted.add(ctx.delivery.msgId));
    for (const ev of ['released', 'modified']) s.on(ev as any, (ctx: any) => retry.push(ctx.delivery.msgId));
    s.on('rejected', (ctx: any) => events.push(`rejected ${ctx.delivery.msgId}`));
    for (const c of clients) for (const ev of ['disconnected', 'connection_error', 'connection_close']) c.conn.on(ev as any, () => events.push(`connection ${ev}`));

    await waitFor(() => accepted.size >= 300 && received.size >= 100, 20_000, 'load through pair1');

    const progress: string[] = [];
    const applyStart = Date.now();
    let pair1Held: Promise<number | undefined> | undefined;
    window = 0;
    const r = await requestApply(t.runDir, after, (l) => {
      progress.push(l);
      // Stage 1 is done (pair2 and C up, converged); stage 2 moves the address next.
      if (/^mesh: converged/.test(l) && !pair1Held) pair1Held = browseCount(pair1Port, 'queue.orders', 5000);
      if (/stage 2/.test(l)) window = 20;
    });
    const applyMs = Date.now() - applyStart;
    assert.ok(r.ok, `apply failed: ${r.error}\n${progress.join('\n')}`);
    assert.ok(accepted.size > 400, 'the producer kept going during the apply');
    const held = await pair1Held;
    assert.ok(held !== undefined && held > 0, `pair1 held messages when the address moved (${held})`);

    // Router C is up and meshed; pair2 is live; pair1 stopped only after A drained it.
    const c = t.router('C');
    assert.is(c.state, 'listening');
    assert.ok(running(c.pid), 'router C runs');
    assert.equal(t.components.filter((x) => x.pair === 'pair2').map((x) => x.state).sort(), ['live', 'slave']);
    assert.ok(t.components.every((x) => x.pair !== 'pair1'), 'pair1 is gone from the topology');
    for (const b of pair1) assert.not.ok(running(b.pid), `${b.name} (pid ${b.pid}) stopped`);
    assert.match(logOf(a.logFile), /connector pair1: removed and drained; closing/);
    const drainedAt = progress.findIndex((l) => /router A: pair1 drained/.test(l));
    const stoppedAt = progress.findIndex((l) => /broker pair pair1: stopped/.test(l));
    assert.ok(drainedAt >= 0 && stoppedAt > drainedAt, `pair1 drained, then stopped:\n${progress.join('\n')}`);
    assert.match(logOf(t.router('B').logFile), /inter-router connection \d+ to A up, cost 5/);
    assert.is(t.model.file, after);
    assert.equal(JSON.parse(fs.readFileSync(path.join(t.runDir, 'state.json'), 'utf8')).components.map((x: { name: string }) => x.name),
      ['A', 'B', 'C', 'pair2.b1', 'pair2.b2']);
    assert.equal(events, [], 'no client link or connection was closed, nothing rejected');

    // What the producer sends now goes to pair2: with the consumer away, pair2 holds all of it.
    paceConsumer = false;
    rx.close();
    await once(rx as any, 'receiver_close', 5000);
    events.length = 0;
    const late = next;
    limit = late + 100;
    await waitFor(() => {
      for (let i = late; i < limit; i++) if (!accepted.has(i)) return false;
      return true;
    }, 20_000, 'the late messages accepted');
    const browser = await rheaConnect({ port: (t.liveBroker('pair2') as { port: number }).port });
    clients.push(browser);
    const seen = new Set<number>();
    browser.conn.open_receiver({ source: { address: 'queue.orders', distribution_mode: 'copy' } } as never)
      .on('message', (ctx: rhea.EventContext) => seen.add(ctx.message!.body as number));
    await waitFor(() => {
      for (let i = late; i < limit; i++) if (!seen.has(i)) return false;
      return true;
    }, 10_000, `pair2's broker to hold every message sent after the apply (has ${seen.size})`);

    // Nothing accepted is lost: a consumer gets every one (pair1's backlog came through its drain).
    rx = cc.conn.open_receiver({ source: { address: 'queue.orders' }, credit_window: 500 });
    rx.on('message', onMessage);
    await waitFor(() => [...accepted].every((id) => received.has(id)), 30_000, 'every accepted message received').catch((e) => {
      const missing = [...accepted].filter((id) => !received.has(id)).sort((x, y) => x - y);
      throw new Error(`${e.message}: ${missing.length} missing (${missing.slice(0, 40).join(' ')}); apply progress:\n${progress.join('\n')}`);
    });
    assert.equal([...accepted].filter((id) => !received.has(id)), [], 'nothing accepted is lost');
    assert.equal(events, [], 'no client event after the apply either');
    if (process.env.APPLY_LOG) process.stdout.write(`${progress.join('\n')}\n`);
    process.stdout.write(`  apply took ${applyMs} ms (pair1 held ${held} when the address moved; ${accepted.size} messages in all; test ${Date.now() - started} ms)\n`);
  } finally {
    for (const tm of timers) clearInterval(tm);
    for (const cl of clients) await cl.close();
    await control?.close();
    await topo?.stop();
  }
});

// A slow consumer: when the router's drain of pair1 ends (the broker has nothing more to send),
// the router may still hold deliveries for the consumer; they go back to the broker as the
// connection closes. apply checks pair1's broker before stopping it and drains it again if needed.
//
//   600 messages in pair1 --> [A] --> consumer (about 100/s)      queue. moves: pair1 -> pair2
const ONE_BEFORE = `routers:
  A: { port: 0 }
brokerPairs:
  pair1: { router: A, queues: [queue.orders] }
addresses:
  - { prefix: queue., waypoint: pair1 }
`;
const ONE_AFTER = ONE_BEFORE.replace(/pair1/g, 'pair2');

test('apply: a slow consumer still gets everything pair1 held; pair1 stops only once its broker holds nothing', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amqp-mesh-apply-test-'));
  const before = path.join(dir, 'before.yaml');
  fs.writeFileSync(before, ONE_BEFORE);
  let topo: RunningTopology | undefined;
  const clients: RheaClient[] = [];
  const timers: NodeJS.Timeout[] = [];
  try {
    topo = await bootTopology(loadTopologyFile(before), { runDir: path.join(dir, 'run'), timeoutMs: 30_000 });
    const t = topo;
    const a = t.router('A');
    await waitFor(() => (logOf(a.logFile).match(/auto-link \S+: active/g) ?? []).length === 2, 10_000, 'pair1 auto-links active on A');
    const pair1 = t.components.filter((c) => c.pair === 'pair1');
    const pc = await rheaConnect({ port: a.port });
    const cc = await rheaConnect({ port: a.port });
    clients.push(pc, cc);
    const N = 600;
    const s = pc.conn.open_sender({ target: { address: 'queue.orders' } });
    const accepted = new Set<number>();
    let next = 0;
    const pump = () => {
      while (next < N && s.sendable()) (s.send({ body: next, durable: true }) as any).msgId = next++;
    };
    s.on('sendable', pump);
    s.on('accepted', (ctx: any) => accepted.add(ctx.delivery.msgId));
    await waitFor(() => accepted.size === N, 20_000, `${N} accepted by pair1`);
    const received = new Set<number>();
    const events: string[] = [];
    const rx = cc.conn.open_receiver({ source: { address: 'queue.orders' }, credit_window: 0 });
    rx.on('message', (ctx: rhea.EventContext) => received.add(ctx.message!.body as number));
    rx.on('receiver_close', () => events.push('consumer detached'));
    timers.push(setInterval(() => {
      if (credit(rx) < 1) rx.add_credit(1);
    }, 10));
    await waitFor(() => received.size >= 20, 10_000, 'the consumer under way');

    const progress: string[] = [];
    const r = await applyTopology(t, parseTopology(ONE_AFTER, path.join(dir, 'after.yaml')), { progress: (l) => progress.push(l) });
    assert.ok(r.changed);
    assert.equal(r.drains.map((d) => [d.pair, d.router, d.drained]), [['pair1', 'A', true]], progress.join('\n'));
    assert.ok(progress.some((l) => /router A: pair1 drained .*its broker holds nothing/.test(l)), progress.join('\n'));
    for (const b of pair1) assert.not.ok(running(b.pid), `${b.name} (pid ${b.pid}) stopped`);
    await waitFor(() => received.size === N, 20_000, `all ${N} received (have ${received.size})`);
    assert.equal(events, []);
    assert.equal(cc.events, [], 'the consumer connection saw nothing');
    const rounds = progress.filter((l) => /draining again/.test(l)).length;
    process.stdout.write(`  pair1 drained in ${(r.drains[0].ms / 1000).toFixed(1)} s, ${rounds + 1} round${rounds ? 's' : ''}\n`);
  } finally {
    for (const tm of timers) clearInterval(tm);
    for (const cl of clients) await cl.close();
    await topo?.stop();
  }
});

test.run();
