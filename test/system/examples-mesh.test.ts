// The mesh examples (examples/iot-telemetry, examples/request-reply, examples/broadcast) run as
// child processes against a topology booted per example with bootTopology (every port 0), given
// the boot's router ports on their command lines, exactly as a user runs them after `amqp-mesh up`.
// Each must exit 0 and print its summary.
//
// iot-telemetry (triangle, broker pair on A; 200 devices x 2 messages instead of 1000 x 5):
//
//   67 devices --> [A] ------- pair telemetry: telemetry.b1 (live) / telemetry.b2 (slave), one store
//                 /   \           queue.telemetry waypoint: autoLink out (phase 0) + in (phase 1)
//                /     \
//   67 devices [B] --- [C] <-- 66 devices;  service.js (consumer of queue.telemetry)
//
// request-reply (a line: the reply crosses two hops back to the client's router; no broker):
//
//   client.js --> [A] ----- [B] ----- [C] <-- server.js on closest.rpc
//   dynamic receiver amqp:/_topo/0/A/temp.*  <== replies (anonymous sender, to = reply_to)
//
// broadcast (triangle, no broker): 6 subscribers, 2 per router, on multicast.news; publisher on B.
//
//   sub1, sub4 --> [A]
//                 /   \
//   sub2, sub5 [B] --- [C] <-- sub3, sub6
//                ^
//            publisher.js (10 messages)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadTopologyFile } from '../../topology/model';
import { bootTopology, type RunningTopology } from '../../topology/up';
import { ROOT } from '../support/router';
import { waitFor } from '../support/wait';

const IOT_TOPOLOGY = `routers:
  A: { port: 0 }
  B: { port: 0 }
  C: { port: 0 }
links:
  - { from: B, to: A }
  - { from: C, to: A }
  - { from: C, to: B }
brokerPairs:
  telemetry: { router: A, queues: [queue.telemetry] }
addresses:
  - { prefix: queue., waypoint: telemetry }
`;

const LINE_TOPOLOGY = `routers:
  A: { port: 0 }
  B: { port: 0 }
  C: { port: 0 }
links:
  - { from: B, to: A }
  - { from: C, to: B }
addresses:
  - { prefix: closest, distribution: closest }
`;

const TRIANGLE_TOPOLOGY = `routers:
  A: { port: 0 }
  B: { port: 0 }
  C: { port: 0 }
links:
  - { from: B, to: A }
  - { from: C, to: A }
  - { from: C, to: B }
addresses:
  - { prefix: multicast, distribution: multicast }
`;

/** An example script running as a child process. */
interface Script {
  name: string;
  proc: ChildProcess;
  out: string;
  exit: { code: number | null; signal: NodeJS.Signals | null } | null;
}

const running: Script[] = [];

function start(example: string, script: string, args: (string | number)[]): Script {
  const file = path.join(ROOT, 'examples', example, script);
  const proc = spawn(process.execPath, [file, ...args.map(String)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const s: Script = { name: `${example}/${script}`, proc, out: '', exit: null };
  proc.stdout!.on('data', (b: Buffer) => (s.out += b.toString('utf8')));
  proc.stderr!.on('data', (b: Buffer) => (s.out += b.toString('utf8')));
  proc.on('exit', (code, signal) => (s.exit = { code, signal }));
  running.push(s);
  return s;
}

/** Waits for the script to exit (killing it by PID past the deadline) and returns its exit code. */
async function finished(s: Script, ms: number): Promise<number | null> {
  try {
    await waitFor(() => s.exit !== null, ms, `${s.name} to exit`);
  } catch (e) {
    stopScript(s, 'SIGKILL');
    throw new Error(`${(e as Error).message}; its output:\n${s.out}`);
  }
  return (s.exit as NonNullable<Script['exit']>).code;
}

async function printed(s: Script, re: RegExp, ms: number): Promise<void> {
  await waitFor(() => re.test(s.out) || s.exit !== null, ms, `${s.name} to print ${re}`).catch((e: Error) => {
    throw new Error(`${e.message}; its output:\n${s.out}`);
  });
  assert.ok(re.test(s.out), `${s.name} exited (${JSON.stringify(s.exit)}) before printing ${re}:\n${s.out}`);
}

function stopScript(s: Script, signal: NodeJS.Signals): void {
  if (s.exit === null && s.proc.pid !== undefined) {
    try {
      process.kill(s.proc.pid, signal);
    } catch {
      // already gone
    }
  }
}

/** Boots `yaml` (written to a temp file, as `amqp-mesh up FILE` reads it), runs `fn`, stops everything. */
async function withTopology(yaml: string, fn: (ports: Record<string, number>) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amqp-mesh-examples-'));
  const file = path.join(dir, 'topology.yaml');
  fs.writeFileSync(file, yaml);
  let topo: RunningTopology | undefined;
  try {
    topo = await bootTopology(loadTopologyFile(file), { runDir: path.join(dir, 'run'), timeoutMs: 30_000 });
    const t = topo;
    await fn(Object.fromEntries(t.model.routers.map((r) => [r.name, t.router(r.name).port])));
  } finally {
    for (const s of running.splice(0)) {
      stopScript(s, 'SIGKILL');
      if (s.exit === null) await waitFor(() => s.exit !== null, 5000, `${s.name} to be killed`).catch(() => undefined);
    }
    await topo?.stop();
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

function expectExit0(s: Script, code: number | null): void {
  assert.is(code, 0, `${s.name} exit code ${code}; its output:\n${s.out}`);
}

test('examples/iot-telemetry: 200 devices (own connections, over A, B, C) x 2 durable messages through the waypointed queue; the service on C gets every device/seq', async () => {
  await withTopology(IOT_TOPOLOGY, async (p) => {
    const service = start('iot-telemetry', 'service.js', ['--devices', 200, '--messages', 2, '--timeout', 30, p.C]);
    await printed(service, /service: receiving from queue\.telemetry on router C/, 10_000);
    const devices = start('iot-telemetry', 'devices.js', ['--devices', 200, '--messages', 2, '--timeout', 30, p.A, p.B, p.C]);
    expectExit0(devices, await finished(devices, 40_000));
    assert.match(devices.out, /devices: 200 connections open after [\d.]+ s \(67 on router A, 67 on router B, 66 on router C\)/);
    assert.match(devices.out, /devices: 400 of 400 messages accepted \(200 devices x 2, \d+ resent\)/);
    expectExit0(service, await finished(service, 30_000));
    assert.match(service.out, /device-0000 2 +device-0001 2/, 'counts per device');
    assert.match(service.out, /device-0199 2/);
    assert.match(service.out, /service: \d+ messages from 200 devices in [\d.]+ s: every device\/seq arrived \(400 distinct, \d+ duplicates, 0 unexpected\)/);
  });
});

test('examples/request-reply: a client on A with a dynamic reply address, the server on C two hops away; 50 requests, 50 correlated replies', async () => {
  await withTopology(LINE_TOPOLOGY, async (p) => {
    const server = start('request-reply', 'server.js', ['--name', 'rpc-1', p.C]);
    await printed(server, /server: ready: rpc-1 serving closest\.rpc on router C/, 10_000);
    const client = start('request-reply', 'client.js', ['--requests', 50, '--timeout', 15, p.A]);
    const code = await finished(client, 25_000);
    stopScript(server, 'SIGTERM');
    const serverCode = await finished(server, 10_000);
    assert.is(code, 0, `client exit code ${code}; its output:\n${client.out}\nthe server's:\n${server.out}`);
    assert.match(client.out, /client: on router A \(.*\); reply address amqp:\/_topo\/0\/A\/temp\.\S+/);
    assert.match(client.out, /client: served by rpc-1 on router C \(50\)/);
    assert.match(client.out, /client: 50\/50 replies correct, each correlated to its request/);
    expectExit0(server, serverCode);
    assert.match(server.out, /server: SIGTERM: served 50 requests \(0 refused, 0 replies not delivered\)/);
  });
});

test('examples/broadcast: 6 subscribers over A, B, C on multicast.news; 10 messages published on B reach every subscriber exactly once', async () => {
  await withTopology(TRIANGLE_TOPOLOGY, async (p) => {
    const subscribers = start('broadcast', 'subscribers.js', ['--subscribers', 6, '--messages', 10, '--timeout', 30, p.A, p.B, p.C]);
    await printed(subscribers, /subscribers: ready: 6 subscribers \(2 on router A, 2 on router B, 2 on router C\)/, 15_000);
    const publisher = start('broadcast', 'publisher.js', ['--messages', 10, '--timeout', 15, p.B]);
    expectExit0(publisher, await finished(publisher, 20_000));
    assert.match(publisher.out, /publisher: on router B .*; publishing 10 messages to multicast\.news/);
    assert.match(publisher.out, /publisher: 10\/10 messages accepted by every subscriber/);
    expectExit0(subscribers, await finished(subscribers, 20_000));
    for (let i = 1; i <= 6; i++) assert.match(subscribers.out, new RegExp(`subscriber-${i} on router ${'ABC'[(i - 1) % 3]}: 10/10 messages\\n`));
    assert.match(subscribers.out, /subscribers: every one of 6 subscribers got all 10 messages, each exactly once/);
  });
});

test.run();
