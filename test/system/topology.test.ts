// `amqp-mesh up`'s topology: the YAML model's refusals (FILE:LINE), the generated configs as the
// router and broker loaders read them, and a real boot with bootTopology.
//
// The booted topology (every port 0 or OS-picked):
//
//   rhea sender --> [B] ---- link B -> A, cost 1 ----> [A] --> rhea receiver (closest.x)
//                                                       |
//                                                route-container
//                                                       |
//                                          pair p1: p1.b1 (live) / p1.b2 (slave), one dataDir
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError, parseConfig } from '../../router/config';
import { parseBrokerConfig } from '../../broker/config';
import { loadTopologyFile, parseTopology, type Topology } from '../../topology/model';
import { assignPorts, generateConfigs, portsNeeded } from '../../topology/generate';
import { BootError, bootTopology, formatTable, type RunningTopology } from '../../topology/up';
import { collect, once, rheaConnect, waitFor } from './helpers';

const TWO_ROUTERS = `# two routers, one pair
routers:
  A: { port: 0 }
  B: { port: 0 }
links:
  - { from: B, to: A, cost: 1 }
brokerPairs:
  p1: { router: A, queues: [queue.q1] }
addresses:
  - { prefix: closest, distribution: closest }
  - { prefix: queue., waypoint: p1 }
`;

function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** True while a process with this PID exists. */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The ConfigError `text` is refused with (as file topo.yaml). */
function refusal(text: string): ConfigError {
  try {
    parseTopology(text, 'topo.yaml');
  } catch (e) {
    assert.instance(e, ConfigError);
    return e as ConfigError;
  }
  throw new assert.Assertion({ message: `accepted:\n${text}`, operator: 'throws', generated: false, actual: 'accepted', expects: 'ConfigError' });
}

test('refused: a link to an unknown router, naming file:line and the routers', () => {
  const e = refusal('routers:\n  A: {}\n  B: {}\nlinks:\n  - { from: B, to: A }\n  - { from: C, to: A }\n');
  assert.ok(e.message.startsWith('topo.yaml:6: '), e.message);
  assert.match(e.message, /no router named "C"; routers: A, B/);
});

test('refused: duplicate names (a router twice; a pair named like a router)', () => {
  const dup = refusal('routers:\n  A: {}\n  B: {}\n  A: { port: 5 }\nlinks:\n  - { from: B, to: A }\n');
  assert.ok(dup.message.startsWith('topo.yaml:4: '), dup.message);
  assert.match(dup.message, /"A" is defined twice \(first on line 2\)/);
  assert.is(dup.code, 'ERR_CONFIG_DUPLICATE');
  const clash = refusal('routers:\n  A: {}\nbrokerPairs:\n  A: { router: A }\n');
  assert.ok(clash.message.startsWith('topo.yaml:4: '), clash.message);
  assert.match(clash.message, /broker pair A has the name of router A \(line 2\)/);
});

test('refused: bad YAML, with the line of the error', () => {
  const e = refusal('routers:\n  A: {}\nlinks:\n  - { from: A, to: [B }\n');
  assert.is(e.code, 'ERR_CONFIG_SYNTAX');
  assert.ok(e.message.startsWith('topo.yaml:4: invalid YAML'), e.message);
});

test('refused: unknown settings, a disconnected router, a queue outside its pair\'s waypoints', () => {
  const typo = refusal('routers:\n  A: { prot: 5672 }\n');
  assert.ok(typo.message.startsWith('topo.yaml:2: '), typo.message);
  assert.match(typo.message, /router A has no setting "prot"; valid settings: port, host/);
  const island = refusal('routers:\n  A: {}\n  B: {}\n  C: {}\nlinks:\n  - { from: B, to: A }\n');
  assert.ok(island.message.startsWith('topo.yaml:4: router C is not linked'), island.message);
  const stray = refusal('routers:\n  A: {}\nbrokerPairs:\n  p1:\n    router: A\n    queues: [orders]\naddresses:\n  - { prefix: queue., waypoint: p1 }\n');
  assert.ok(stray.message.startsWith('topo.yaml:6: broker pair p1 queue "orders" is not under an address with "waypoint: p1"'), stray.message);
});

test('the default topology and the test topology generate configs the router and broker loaders accept', () => {
  const here = path.resolve(__dirname, '..', '..', '..', 'topology', 'default.yaml');
  for (const model of [loadTopologyFile(here), parseTopology(TWO_ROUTERS, 'two.yaml')]) {
    const ports = Array.from({ length: portsNeeded(model) }, (_, i) => 41000 + i);
    const dataDirs = Object.fromEntries(model.brokerPairs.map((p) => [p.name, `/tmp/data/${p.name}`]));
    const configs = generateConfigs(model, assignPorts(model, ports), { dataDirs });
    assert.is(configs.length, model.routers.length + 2 * model.brokerPairs.length);
    for (const c of configs) {
      const loaded = c.kind === 'router' ? parseConfig(c.text, `${c.name}.conf`) : parseBrokerConfig(c.text, `${c.name}.conf`);
      assert.equal(loaded.warnings.map((w) => w.message), [], `${c.name}: no warnings`);
    }
    const a = configs.find((c) => c.name === model.brokerPairs[0].router)!.text;
    assert.match(a, /role: route-container/);
    assert.match(a, /autoLink \{\n {4}address: queue\.\w+\n {4}direction: in\n {4}connection: \w+\n\}/);
  }
});

test('bootTopology: all up, one live and one slave broker, closest.x from B reaches A; stop() leaves no process', async () => {
  const dir = tempDir('amqp-mesh-topology-test-');
  const file = path.join(dir, 'two.yaml');
  fs.writeFileSync(file, TWO_ROUTERS);
  const model: Topology = loadTopologyFile(file);
  let topo: RunningTopology | undefined;
  let pids: number[] = [];
  try {
    topo = await bootTopology(model, { runDir: path.join(dir, 'run'), timeoutMs: 30_000 });
    pids = topo.components.map((c) => c.pid);
    assert.is(topo.components.length, 4);
    for (const c of topo.components) {
      assert.ok(running(c.pid), `${c.name} (pid ${c.pid}) runs`);
      assert.ok(fs.existsSync(c.logFile) && fs.existsSync(c.configFile), `${c.name} has its config and log`);
    }
    const [a, b] = [topo.router('A'), topo.router('B')];
    assert.is(a.state, 'listening');
    assert.is(b.state, 'listening');
    assert.ok(a.port > 0 && b.port > 0 && a.port !== b.port);
    assert.equal(topo.components.filter((c) => c.pair === 'p1').map((c) => c.state).sort(), ['live', 'slave']);
    assert.is(topo.liveBroker('p1')?.name, 'p1.b1', 'the first broker started is the live one');
    assert.match(formatTable(topo), /broker p1\.b2 +slave \(pair p1\)/);

    const rx = await rheaConnect({ port: a.port });
    const tx = await rheaConnect({ port: b.port });
    try {
      const got = collect(rx.conn.open_receiver({ source: { address: 'closest.x' } }));
      const sender = tx.conn.open_sender({ target: { address: 'closest.x' } });
      await waitFor(() => sender.sendable(), 10_000, 'credit on B for the consumer on A');
      sender.send({ body: 'across the mesh' });
      await once(sender, 'accepted', 10_000);
      await waitFor(() => got.messages.length === 1, 5000, 'the message on A');
      assert.is(got.messages[0].body, 'across the mesh');
    } finally {
      await rx.close();
      await tx.close();
    }
  } finally {
    await topo?.stop();
  }
  for (const pid of pids) assert.not.ok(running(pid), `pid ${pid} stopped`);
});

test('bootTopology: a process that cannot start fails the boot, naming it, and nothing is left running', async () => {
  // Router A's client port is taken: A exits at once; B and the pair must not outlive the failure.
  const holder = net.createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', () => r()));
  const taken = (holder.address() as net.AddressInfo).port;
  const dir = tempDir('amqp-mesh-topology-test-');
  const model = parseTopology(TWO_ROUTERS.replace('A: { port: 0 }', `A: { port: ${taken} }`), 'taken.yaml');
  try {
    const err = await bootTopology(model, { runDir: path.join(dir, 'run'), timeoutMs: 30_000 }).then(
      () => assert.unreachable('booted on a taken port'),
      (e: unknown) => e,
    );
    assert.instance(err, BootError);
    const boot = err as BootError;
    assert.match(boot.message, /^router A exited \(code 1\) during start-up/);
    assert.match(boot.message, /A\.log/);
    assert.ok(boot.components.length >= 2, 'it had started the others');
    for (const c of boot.components) assert.not.ok(running(c.pid), `${c.name} (pid ${c.pid}) stopped`);
  } finally {
    holder.close();
  }
});

test.run();
