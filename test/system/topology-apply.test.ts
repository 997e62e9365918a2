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
// connection to A is re-made once the path through C is up).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import rhea = require('rhea');
import { loadTopologyFile } from '../../topology/model';
import { bootTopology, type RunningTopology } from '../../topology/up';
import { requestApply, serveControl, type ControlServer } from '../../topology/apply';
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
    control = await serveControl(t, { modelFile: before });
    assert.ok(control.socket && fs.existsSync(control.socket), 'control socket');
    const state = JSON.parse(fs.readFileSync(path.join(t.runDir, 'state.json'), 'utf8'));
    assert.is(state.upPid, process.pid);
    assert.is(state.components.length, 4);
    const a = t.router('A');
    await waitFor(() => (logOf(a.logFile).match(/auto-link \S+: active/g) ?? []).length === 2, 10_000, 'pair1 auto-links active on A');
    const pair1 = t.components.filter((c) => c.pair === 'pair1');

    // A change up cannot make live is refused with FILE:LINE, and nothing changes.
    fs.writeFileSync(bad, AFTER.replace('A: { port: 0 }', `A: { port: ${a.port === 65535 ? 65534 : a.port + 1} }`));
    const refused = await requestApply(t.runDir, bad, () => undefined);
    assert.is(refused.ok, false);
    assert.ok(refused.error?.startsWith(`${bad}:2: router A listens on`), refused.error);
    assert.match(refused.error as string, /nothing was changed/);
    assert.is(t.components.length, 4);
    assert.not.match(logOf(a.logFile), /SIGHUP/);

    // Load: a paced producer on B (resending what comes back released or modified), a paced
    // consumer on A (slower, so that the pairs hold a backlog when the address moves).
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
    timers.push(setInterval(() => {
      const c = credit(rx);
      if (paceConsumer && c < 3) rx.add_credit(3 - c);
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
      budget = 4;
      pump();
    }, 10));
    s.on('sendable', pump);
    s.on('accepted', (ctx: any) => accepted.add(ctx.delivery.msgId));
    for (const ev of ['released', 'modified']) s.on(ev as any, (ctx: any) => retry.push(ctx.delivery.msgId));
    s.on('rejected', (ctx: any) => events.push(`rejected ${ctx.delivery.msgId}`));
    for (const c of clients) for (const ev of ['disconnected', 'connection_error', 'connection_close']) c.conn.on(ev as any, () => events.push(`connection ${ev}`));

    await waitFor(() => accepted.size >= 300 && accepted.size - received.size >= 50, 20_000, 'load through pair1 with a backlog');
    const backlog = accepted.size - received.size;

    const progress: string[] = [];
    const applyStart = Date.now();
    const applyFirst = next;
    const r = await requestApply(t.runDir, after, (l) => progress.push(l));
    const applyMs = Date.now() - applyStart;
    const applyEnd = next;
    assert.ok(r.ok, `apply failed: ${r.error}\n${progress.join('\n')}`);
    assert.ok(accepted.size > 400, 'the producer kept going during the apply');

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
      const inPair2 = missing.filter((id) => seen.has(id)).length;
      throw new Error(`${e.message}: seen in pair2 browse ${inPair2}; apply ended at ${applyEnd}; ${missing.length} missing (${missing.slice(0, 40).join(' ')}); apply started at ${applyFirst}, late ${late}, next ${next}; retry ${retry.length}\n${progress.join('\n')}`);
    });
    assert.equal([...accepted].filter((id) => !received.has(id)), [], 'nothing accepted is lost');
    assert.equal(events, [], 'no client event after the apply either');
    process.stdout.write(`  apply took ${applyMs} ms (backlog ${backlog} at its start; ${accepted.size} messages in all; test ${Date.now() - started} ms)\n`);
  } finally {
    for (const tm of timers) clearInterval(tm);
    for (const cl of clients) await cl.close();
    await control?.close();
    await topo?.stop();
  }
});

test.run();
