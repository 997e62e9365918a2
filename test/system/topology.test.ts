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
import { execFile } from 'node:child_process';
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

const HA_GROUPS = `# one replicated group, one jdbc pair
routers:
  A: { port: 0 }
brokerPairs:
  orders: { router: A, haPolicy: replication, queues: [orders.in] }
  billing: { router: A, haPolicy: jdbc, queues: [billing.in] }
addresses:
  - { prefix: orders., waypoint: orders }
  - { prefix: billing., waypoint: billing }
`;

test('haPolicy groups: members and jdbcUrl checked (FILE:LINE); configs for 3 replicated members and a jdbc pair load', () => {
  const two = refusal('routers:\n  A: {}\nbrokerPairs:\n  g:\n    router: A\n    haPolicy: replication\n    members: 2\n');
  assert.ok(two.message.startsWith('topo.yaml:7: broker pair g members 2: a replicated group has 3 to 7 members'), two.message);
  const three = refusal('routers:\n  A: {}\nbrokerPairs:\n  g:\n    router: A\n    members: 3\n');
  assert.match(three.message, /^topo\.yaml:6: broker pair g members 3: haPolicy shared-store has exactly 2/);
  const url = refusal('routers:\n  A: {}\nbrokerPairs:\n  g:\n    router: A\n    jdbcUrl: postgresql://h/db\n');
  assert.match(url.message, /^topo\.yaml:4: broker pair g has a jdbcUrl but haPolicy shared-store/);
  const kind = refusal('routers:\n  A: {}\nbrokerPairs:\n  g:\n    router: A\n    haPolicy: colocated\n');
  assert.match(kind.message, /^topo\.yaml:6: .*not one of shared-store, replication, jdbc/);

  const zk = refusal('routers:\n  A: {}\nzookeeper: zk1\n');
  assert.match(zk.message, /^topo\.yaml:3: zookeeper "zk1": expected a connect string/);
  assert.is(parseTopology(`${HA_GROUPS}zookeeper: zk1:2181,zk2:2181\n`, 'ha.yaml').zookeeper, 'zk1:2181,zk2:2181');
  const model = parseTopology(HA_GROUPS, 'ha.yaml');
  assert.equal(model.brokerPairs.map((p) => [p.name, p.haPolicy, p.members]), [['orders', 'replication', 3], ['billing', 'jdbc', 2]]);
  const ports = Array.from({ length: portsNeeded(model) }, (_, i) => 42000 + i);
  assert.is(ports.length, 1 + 3 + 2);
  const services = { zookeeper: '127.0.0.1:2181', jdbcUrls: { billing: 'postgresql://postgres@127.0.0.1:5432/postgres' } };
  const configs = generateConfigs(model, assignPorts(model, ports), { dataDirs: { orders: '/tmp/d/orders', billing: '/tmp/d/billing' }, services });
  assert.equal(configs.map((c) => c.name), ['A', 'orders.b1', 'orders.b2', 'orders.b3', 'billing.b1', 'billing.b2']);
  for (const c of configs) {
    const loaded = c.kind === 'router' ? parseConfig(c.text, `${c.name}.conf`) : parseBrokerConfig(c.text, `${c.name}.conf`);
    assert.equal(loaded.warnings.map((w) => w.message), [], `${c.name}: no warnings`);
  }
  const b2 = parseBrokerConfig(configs[2].text, 'b2.conf').broker;
  assert.equal([b2.haPolicy, b2.haGroup, b2.zookeeper, b2.groupSize, b2.dataDir], ['replication', 'orders', '127.0.0.1:2181', 3, '/tmp/d/orders/orders.b2']);
  const j1 = parseBrokerConfig(configs[4].text, 'j1.conf').broker;
  assert.equal([j1.haPolicy, j1.haGroup, j1.jdbcUrl], ['jdbc', 'billing', services.jdbcUrls.billing]);
  assert.match(configs[0].text, /failoverUrls: "?amqp:\/\/127\.0\.0\.1:42002, amqp:\/\/127\.0\.0\.1:42003"?/);
});

test('bootTopology: a replicated group (ZooKeeper started by up) and a jdbc pair (PostgreSQL started by up); a failover inside the group; stop() leaves nothing', async () => {
  const dir = tempDir('amqp-mesh-topology-ha-');
  const runDir = path.join(dir, 'run');
  let topo: RunningTopology | undefined;
  try {
    topo = await bootTopology(parseTopology(HA_GROUPS, 'ha.yaml'), { runDir, timeoutMs: 60_000 });
    assert.equal(topo.components.filter((c) => c.pair === 'orders').map((c) => c.state).sort(), ['live', 'slave', 'slave']);
    assert.equal(topo.components.filter((c) => c.pair === 'billing').map((c) => c.state).sort(), ['live', 'slave']);
    assert.ok(topo.services.zookeeper && topo.services.jdbcUrls?.billing, JSON.stringify(topo.services));
    const a = topo.router('A');
    const c = await rheaConnect({ port: a.port });
    try {
      for (const address of ['orders.in', 'billing.in']) {
        const sender = c.conn.open_sender({ target: { address } });
        await waitFor(() => sender.sendable(), 20_000, `credit for ${address} (its waypoint auto-link)`);
        sender.send({ body: `to ${address}`, durable: true });
        await once(sender, 'accepted', 10_000);
      }
      // The replicated group's live member goes; another takes over and holds the message.
      const live = topo.liveBroker('orders')!;
      process.kill(live.pid, 'SIGKILL');
      await waitFor(() => topo!.liveBroker('orders') && topo!.liveBroker('orders') !== live, 20_000, 'another live member of orders');
      const got = collect(c.conn.open_receiver({ source: { address: 'orders.in' } }));
      await waitFor(() => got.messages.length === 1, 20_000, 'the message from the new live member');
      assert.is(got.messages[0].body, 'to orders.in');
    } finally {
      await c.close();
    }
  } finally {
    await topo?.stop();
  }
  const cluster = path.join(runDir, 'postgres', 'CLUSTER');
  for (const where of [runDir, ...(fs.existsSync(cluster) ? [fs.readFileSync(cluster, 'utf8').trim()] : [])]) {
    const left = await new Promise<string>((resolve) => execFile('pgrep', ['-af', where], (_e, out) => resolve(out)));
    assert.is(left.trim(), '', `no process of the run (brokers, ZooKeeper, PostgreSQL) is left in ${where}`);
    fs.rmSync(where, { recursive: true, force: true });
  }
});

test.run();
