// Meshes of amqp-mesh router processes on 127.0.0.1 (inter-router listeners on port 0; each
// connector is written once its peer listens).
// @runs-alone: a frozen router is declared dead by the HELLO max age; traffic resumes within 10 s.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RunningRouter, startRouter } from '../support/router';
import { runProton } from '../support/proton';
import { waitFor } from '../support/wait';

function interior(id: string, connectTo: number[] = [], cost: number | number[] = 1): string {
  const costOf = (i: number) => (Array.isArray(cost) ? cost[i] : cost);
  return [
    `router {\n    mode: interior\n    id: ${id}\n}`,
    'listener {\n    host: 127.0.0.1\n    port: 0\n}',
    'listener {\n    host: 127.0.0.1\n    port: 0\n    role: inter-router\n}',
    ...connectTo.map((p, i) => `connector {\n    host: 127.0.0.1\n    port: ${p}\n    role: inter-router\n    cost: ${costOf(i)}\n}`),
    'address {\n    prefix: balanced\n    distribution: balanced\n}',
    'address {\n    prefix: multicast\n    distribution: multicast\n}',
    'address {\n    prefix: closest\n    distribution: closest\n}',
    'log {\n    module: ROUTER_MA\n    enable: debug+\n}',
  ].join('\n') + '\n';
}

/** Boots routers in order; `links[i]` lists the earlier routers router i connects to. */
async function mesh(ids: string[], links: number[][]): Promise<RunningRouter[]> {
  const rs: RunningRouter[] = [];
  for (let i = 0; i < ids.length; i++) {
    rs.push(await startRouter(interior(ids[i], links[i].map((j) => rs[j].ports[1])), { listeners: 2 }));
  }
  return rs;
}

/** Waits until every router has logged a route to every other. */
async function converged(rs: RunningRouter[], ids: string[]): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (let i = 0; i < rs.length; i++) {
    for (const other of ids.filter((x) => x !== ids[i])) {
      while (!rs[i].log.some((l) => l.includes('routes:') && l.includes(`${other} via`))) {
        if (Date.now() > deadline) throw new Error(`${ids[i]} has no route to ${other}:\n${rs[i].log.slice(-20).join('\n')}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }
}

// A line:  [A] <-- [B] <-- [C]     proton receive on A, proton send on C (two hops).
test('far consumer on a line: messages cross two hops and outcomes come back', async () => {
  const ids = ['LA', 'LB', 'LC'];
  const rs = await mesh(ids, [[], [0], [1]]);
  try {
    await converged(rs, ids);
    const recv = runProton('receive.py', ['--url', `amqp://127.0.0.1:${rs[0].port}`, '--address', 'closest.far', '--count', '5', '--timeout', '15']);
    // The receiver's address reaches C by MAU; the sender gets credit only then.
    const sent = await runProton('send.py', ['--url', `amqp://127.0.0.1:${rs[2].port}`, '--address', 'closest.far', '--count', '5', '--timeout', '15']);
    const got = (await recv).result as { received: number };
    assert.is(got.received, 5);
    assert.is((sent.result as { accepted: number }).accepted, 5);
  } finally {
    for (const r of rs) await r.stop();
  }
});

// A triangle:  [A] <-- [B]
//                ^      ^
//                 \-- [C]        a receiver on each router; multicast sent at A: one copy each.
test('multicast in a triangle: every consumer gets every message once', async () => {
  const ids = ['TA', 'TB', 'TC'];
  const rs = await mesh(ids, [[], [0], [0, 1]]);
  try {
    await converged(rs, ids);
    const recvs = rs.map((r) => runProton('receive.py', ['--url', `amqp://127.0.0.1:${r.port}`, '--address', 'multicast.tri', '--count', '0', '--timeout', '8']));
    // Every router must have learned the other two consumers (MAU) before the first send.
    await waitFor(() => rs.every((r) => r.log.filter((l) => l.includes('+[M0multicast.tri')).length >= 2), 10_000, 'consumers advertised');
    const sent = await runProton('send.py', ['--url', `amqp://127.0.0.1:${rs[0].port}`, '--address', 'multicast.tri', '--count', '10', '--timeout', '10']);
    assert.is((sent.result as { accepted: number }).accepted, 10);
    const got = await Promise.all(recvs);
    assert.equal(got.map((g) => (g.result as { received: number }).received), [10, 10, 10]);
  } finally {
    for (const r of rs) await r.stop();
  }
});



// A square:   [A] <-- [B]
//              ^       ^
//             [D] <-- [C]      C connects to B and D; A is reached from C via B or D (cost 2 each;
// ties go to the smaller id, B). Sender on C, receiver on A.
async function square(prefix: string): Promise<RunningRouter[]> {
  const ids = [`${prefix}A`, `${prefix}B`, `${prefix}C`, `${prefix}D`];
  // A listens; B and D connect to A; C connects to B and D.
  const rs = await mesh([ids[0], ids[1], ids[3]], [[], [0], [0]]);
  const c = await startRouter(interior(ids[2], [rs[1].ports[1], rs[2].ports[1]]), { listeners: 2 });
  const all = [rs[0], rs[1], c, rs[2]];
  await converged(all, ids);
  return all;
}

async function sendAndCount(r: RunningRouter, address: string, count: number): Promise<{ accepted: number; modified: number; released: number }> {
  const out = await runProton('send.py', ['--url', `amqp://127.0.0.1:${r.port}`, '--address', address, '--count', String(count), '--timeout', '15']);
  return out.result as { accepted: number; modified: number; released: number };
}

test('killed router in a square: traffic resumes through the other path', async () => {
  const [a, b, c, d] = await square('K');
  try {
    const recv = runProton('receive.py', ['--url', `amqp://127.0.0.1:${a.port}`, '--address', 'closest.sq', '--count', '10', '--timeout', '20']);
    await waitFor(() => c.log.some((l) => l.includes('+[M0closest.sq')), 10_000, 'C learns the consumer');
    assert.is((await sendAndCount(c, 'closest.sq', 5)).accepted, 5);
    b.proc.kill('SIGKILL');
    const started = Date.now();
    // Like a real producer, resend what comes back released or modified until all are accepted.
    let accepted = 0;
    let retried = 0;
    while (accepted < 5) {
      assert.ok(Date.now() - started < 10_000, `traffic did not resume (accepted ${accepted})`);
      const r = await sendAndCount(c, 'closest.sq', 5 - accepted);
      accepted += r.accepted;
      retried += r.released + r.modified;
    }
    process.stdout.write(`  (5 accepted ${Date.now() - started} ms after B was killed; ${retried} released/modified and resent)\n`);
    assert.is(((await recv).result as { received: number }).received, 10);
  } finally {
    for (const r of [a, c, d]) await r.stop();
    await b.exited;
  }
});

test('frozen router in a square: declared dead after the HELLO max age, its deliveries come back modified, traffic resumes', async () => {
  const [a, b, c, d] = await square('F');
  try {
    const recv = runProton('receive.py', ['--url', `amqp://127.0.0.1:${a.port}`, '--address', 'closest.fz', '--count', '0', '--timeout', '9']);
    await waitFor(() => c.log.some((l) => l.includes('+[M0closest.fz')), 10_000, 'C learns the consumer');
    b.proc.kill('SIGSTOP');
    // Sent while C still routes through B: stuck there until C declares B dead.
    const stuck = await sendAndCount(c, 'closest.fz', 5);
    assert.is(stuck.accepted + stuck.modified + stuck.released, 5, `every delivery got an outcome: ${JSON.stringify(stuck)}`);
    process.stdout.write(`  (sent while B frozen: ${stuck.accepted} accepted, ${stuck.modified} modified, ${stuck.released} released)\n`);
    assert.ok(c.log.some((l) => l.includes('silent on open connection') || l.includes('lost')), 'C noticed');
    // Afterwards everything goes through D.
    assert.is((await sendAndCount(c, 'closest.fz', 5)).accepted, 5);
    b.proc.kill('SIGCONT');
    await recv;
  } finally {
    b.proc.kill('SIGCONT');
    for (const r of [a, b, c, d]) await r.stop();
  }
});
// Multicast in the square (a loop of four): one receiver on each router, sent at C.
test('multicast in a square: every consumer gets every message exactly once', async () => {
  const routers = await square('M');
  try {
    const recvs = routers.map((r) => runProton('receive.py', ['--url', `amqp://127.0.0.1:${r.port}`, '--address', 'multicast.sq', '--count', '0', '--timeout', '8']));
    await waitFor(() => routers.every((r) => r.log.filter((l) => l.includes('+[M0multicast.sq')).length >= 3), 10_000, 'consumers advertised');
    const sent = await runProton('send.py', ['--url', `amqp://127.0.0.1:${routers[2].port}`, '--address', 'multicast.sq', '--count', '10', '--timeout', '10']);
    assert.is((sent.result as { accepted: number }).accepted, 10);
    const got = await Promise.all(recvs);
    assert.equal(got.map((g) => (g.result as { received: number }).received), [10, 10, 10, 10]);
  } finally {
    for (const r of routers) await r.stop();
  }
});

// A restarted router rejoins:   [RA] <-- [RB]     (RB connects to RA; RB is killed and started
// again from the same config; its new consumer becomes reachable from RA).
test('a restarted router rejoins the mesh and its consumers are reachable again', async () => {
  const a = await startRouter(interior('RA'), { listeners: 2 });
  const cfg = interior('RB', [a.ports[1]]);
  let b = await startRouter(cfg, { listeners: 2 });
  try {
    await converged([a, b], ['RA', 'RB']);
    b.proc.kill('SIGKILL');
    await b.exited;
    await waitFor(() => a.log.some((l) => l.includes('neighbour RB lost')), 5000, 'RA notices');
    b = await startRouter(cfg, { listeners: 2 });
    const mark = a.log.length;
    await waitFor(() => a.log.slice(mark).some((l) => l.includes('neighbour RB up')), 10_000, 'RB rejoins');
    const recv = runProton('receive.py', ['--url', `amqp://127.0.0.1:${b.port}`, '--address', 'closest.again', '--count', '3', '--timeout', '15']);
    const sent = await runProton('send.py', ['--url', `amqp://127.0.0.1:${a.port}`, '--address', 'closest.again', '--count', '3', '--timeout', '15']);
    assert.is((sent.result as { accepted: number }).accepted, 3);
    assert.is(((await recv).result as { received: number }).received, 3);
  } finally {
    await b.stop();
    await a.stop();
  }
});

// Two paths of different cost:   [X] <--1-- [S] --10--> [Y]     consumers on X and Y, sender on S.
test('closest chooses the consumer on the cheaper path', async () => {
  const x = await startRouter(interior('CX'), { listeners: 2 });
  const y = await startRouter(interior('CY'), { listeners: 2 });
  const s = await startRouter(interior('CS', [x.ports[1], y.ports[1]], [1, 10]), { listeners: 2 });
  try {
    await converged([x, y, s], ['CX', 'CY', 'CS']);
    const rx = runProton('receive.py', ['--url', `amqp://127.0.0.1:${x.port}`, '--address', 'closest.cheap', '--count', '0', '--timeout', '6']);
    const ry = runProton('receive.py', ['--url', `amqp://127.0.0.1:${y.port}`, '--address', 'closest.cheap', '--count', '0', '--timeout', '6']);
    await waitFor(() => s.log.filter((l) => l.includes('+[M0closest.cheap')).length >= 2, 10_000, 'both consumers advertised');
    const sent = await runProton('send.py', ['--url', `amqp://127.0.0.1:${s.port}`, '--address', 'closest.cheap', '--count', '10', '--timeout', '10']);
    assert.is((sent.result as { accepted: number }).accepted, 10);
    const [gx, gy] = await Promise.all([rx, ry]);
    assert.is((gx.result as { received: number }).received, 10, 'all to the cost-1 consumer');
    assert.is((gy.result as { received: number }).received, 0, 'none to the cost-10 consumer');
  } finally {
    for (const r of [s, x, y]) await r.stop();
  }
});

// Balanced across routers:   [P] <-- [S] --> [Q]     consumers keep deliveries unsettled, so
// outstanding deliveries grow on each path and the sender's messages spread over both.
test('balanced spreads across routers by outstanding deliveries', async () => {
  const p = await startRouter(interior('BP'), { listeners: 2 });
  const q = await startRouter(interior('BQ'), { listeners: 2 });
  const s = await startRouter(interior('BS', [p.ports[1], q.ports[1]]), { listeners: 2 });
  try {
    await converged([p, q, s], ['BP', 'BQ', 'BS']);
    const args = (r: RunningRouter) => ['--url', `amqp://127.0.0.1:${r.port}`, '--address', 'balanced.spread', '--count', '0', '--timeout', '6', '--no-settle'];
    const rp = runProton('receive.py', args(p));
    const rq = runProton('receive.py', args(q));
    await waitFor(() => s.log.filter((l) => l.includes('+[M0balanced.spread')).length >= 2, 10_000, 'both consumers advertised');
    await runProton('send.py', ['--url', `amqp://127.0.0.1:${s.port}`, '--address', 'balanced.spread', '--count', '20', '--timeout', '4']);
    const [gp, gq] = await Promise.all([rp, rq]);
    const np = (gp.result as { received: number }).received, nq = (gq.result as { received: number }).received;
    assert.is(np + nq, 20, `every message once (${np} + ${nq})`);
    assert.ok(np >= 5 && nq >= 5, `spread over both routers (${np} / ${nq})`);
  } finally {
    for (const r of [s, p, q]) await r.stop();
  }
});

test.run();
