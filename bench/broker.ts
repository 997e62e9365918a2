/**
 * Broker figures for `npm run bench`: one producer and one consumer (Proton-C mesh_perf) on one
 * queue, 1 KB bodies, persistent (durable, fsynced before accepted) and non-persistent; the same
 * client against Debian's rabbitmq-server 3.10 with rabbitmq_amqp1_0 (durable queue) when it is
 * installed.
 *
 *   mesh_perf sender --> [amqp-mesh broker | rabbitmq-server] --> mesh_perf receiver
 */
import { spawn, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MeshPerfResult, runMeshPerf } from './tools';
import { postgresBin, startPostgres } from '../test/support/postgres';
import { startRabbit } from '../test/support/rabbit';
import { startZookeeper, zookeeperInstalled } from '../test/support/zookeeper';

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'amqp-mesh.js');
const RABBIT = '/usr/lib/rabbitmq/bin/rabbitmq-server';

async function waitLine(proc: ChildProcess, re: RegExp, ms: number, log: string[]): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${re}: ${log.slice(-10).join('\n')}`)), ms);
    const on = (d: Buffer) => {
      for (const line of d.toString().split('\n')) {
        if (!line) continue;
        log.push(line);
        const m = line.match(re);
        if (m) {
          clearTimeout(t);
          resolve(m);
        }
      }
    };
    proc.stdout!.on('data', on);
    proc.stderr!.on('data', on);
    proc.on('exit', (code) => reject(new Error(`exited ${code}: ${log.slice(-10).join('\n')}`)));
  });
}

async function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null) return;
  const done = new Promise((r) => proc.on('exit', r));
  proc.kill('SIGTERM');
  const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
  await done;
  clearTimeout(t);
}

/** A broker process; `port` resolves once it listens (a member that never goes live never does). */
function spawnBroker(brokerExtra = '', id = 'Bench', listenMs = 15_000): { port: Promise<number>; proc: ChildProcess; dir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amqp-mesh-bench-broker-'));
  const file = path.join(dir, 'broker.conf');
  fs.writeFileSync(file, `broker {\n  id: ${id}\n  dataDir: ${path.join(dir, 'data')}\n${brokerExtra}}\nlistener {\n  host: 127.0.0.1\n  port: 0\n}\nlog {\n  module: DEFAULT\n  enable: notice+\n}\n`);
  const proc = spawn(process.execPath, [BIN, 'broker', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  return { port: waitLine(proc, /Listening on [^\s]+:(\d+)/, listenMs, []).then((m) => Number(m[1])), proc, dir };
}

async function startBroker(brokerExtra = ''): Promise<{ port: number; proc: ChildProcess; dir: string }> {
  const b = spawnBroker(brokerExtra);
  return { ...b, port: await b.port };
}

function fmt(r: MeshPerfResult): string {
  return `${Math.round(r.msgsPerSec).toLocaleString('en')} msg/s, p50 ${(r.p50Us / 1000).toFixed(1)} ms, p99 ${(r.p99Us / 1000).toFixed(1)} ms`;
}

/** Runs one configuration `runs` times and keeps the median-throughput run. */
async function measure(url: string, address: string, messages: number, durable: boolean, sasl: boolean, runs: number): Promise<MeshPerfResult> {
  const out: MeshPerfResult[] = [];
  for (let i = 0; i < runs; i++) {
    out.push(await runMeshPerf({ url, address: `${address}${i}`, messages, bodySize: 1024, durable, sasl, credit: 1000, window: 1000, timeoutSec: 120 }));
  }
  out.sort((a, b) => a.msgsPerSec - b.msgsPerSec);
  return out[out.length >> 1];
}

/**
 * The same client through a router in front of the broker:
 *   mesh_perf --> [router] --waypoint auto-links / link route--> [broker]
 */
async function benchThroughRouter(brokerPort: number, messages: number, runs: number): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amqp-mesh-bench-wp-'));
  const file = path.join(dir, 'router.conf');
  let conf = `router {\n  mode: standalone\n  id: BenchWP\n}\nlistener {\n  host: 127.0.0.1\n  port: 0\n}\n` +
    `connector {\n  name: b\n  role: route-container\n  host: 127.0.0.1\n  port: ${brokerPort}\n}\naddress {\n  prefix: wp\n  waypoint: yes\n}\n` +
    `linkRoute {\n  prefix: lr\n  direction: in\n  connection: b\n}\nlinkRoute {\n  prefix: lr\n  direction: out\n  connection: b\n}\n`;
  for (let i = 0; i < runs; i++) {
    for (const d of ['in', 'out']) conf += `autoLink {\n  address: wp.bench${i}\n  direction: ${d}\n  connection: b\n}\n`;
  }
  fs.writeFileSync(file, `${conf}log {\n  module: DEFAULT\n  enable: notice+\n}\n`);
  const proc = spawn(process.execPath, [BIN, 'router', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const log: string[] = [];
  try {
    const m = await waitLine(proc, /Listening on [^\s]+:(\d+)/, 15_000, log);
    await waitLine(proc, /connector b: active/, 15_000, log);
    const url = `amqp://127.0.0.1:${m[1]}`;
    const wp = await measure(url, 'wp.bench', messages, true, false, runs);
    console.log(`  through a router, waypoint (auto-links), persistent: ${fmt(wp)}`);
    const lr = await measure(url, 'lr.bench', messages, true, false, runs);
    console.log(`  through a router, link route, persistent:            ${fmt(lr)}`);
  } catch (e) {
    console.log(`  through a router: failed (${(e as Error).message})`);
  } finally {
    await stop(proc);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Prints the broker figures. */
/** The same client against a haPolicy jdbc broker (store and lock in a private PostgreSQL). */
async function benchJdbc(messages: number, runs: number, journal: MeshPerfResult | null): Promise<void> {
  if (!postgresBin()) {
    console.log('  jdbc (PostgreSQL): skipped (not installed: apt-get install postgresql)');
    return;
  }
  const pg = await startPostgres();
  try {
    const b = await startBroker(`  haPolicy: jdbc\n  haGroup: bench\n  jdbcUrl: ${pg.url}\n`);
    try {
      const r = await measure(`amqp://127.0.0.1:${b.port}`, 'bench.jdbc', messages, true, false, runs);
      console.log(`  amqp-mesh broker, haPolicy jdbc (PostgreSQL ${path.basename(path.dirname(postgresBin() as string))}), persistent: ${fmt(r)}`);
      if (journal) console.log(`  persistent throughput, jdbc / journal: ${(r.msgsPerSec / journal.msgsPerSec).toFixed(2)}x`);
    } finally {
      await stop(b.proc);
      fs.rmSync(b.dir, { recursive: true, force: true });
    }
  } finally {
    await pg.stop();
  }
}

/** The same client against the live member of a replicated group of three (private ZooKeeper). */
async function benchReplication(messages: number, runs: number, journal: MeshPerfResult | null): Promise<void> {
  if (!zookeeperInstalled()) {
    console.log('  replication (ZooKeeper): skipped (not installed: apt-get install zookeeper)');
    return;
  }
  const zk = await startZookeeper();
  const procs: ChildProcess[] = [];
  const dirs: string[] = [];
  try {
    const extra = `  haPolicy: replication\n  haGroup: bench\n  zookeeper: ${zk.connect}\n  groupSize: 3\n`;
    // All three start together; the one elected opens its listener (the others never log one).
    const members = ['r1', 'r2', 'r3'].map((id) => spawnBroker(extra, id, 30_000));
    for (const m of members) {
      procs.push(m.proc);
      dirs.push(m.dir);
    }
    const ports = members.map((m) => m.port);
    for (const p of ports) p.catch(() => undefined);
    const port = await Promise.race(ports);
    // Let the followers attach (they take a snapshot first) before measuring.
    await new Promise((r) => setTimeout(r, 1000));
    const r = await measure(`amqp://127.0.0.1:${port}`, 'bench.repl', messages, true, false, runs);
    console.log(`  amqp-mesh broker, haPolicy replication (3 members, quorum 2), persistent: ${fmt(r)}`);
    if (journal) console.log(`  persistent throughput, replication / journal: ${(r.msgsPerSec / journal.msgsPerSec).toFixed(2)}x`);
  } finally {
    for (const p of procs) await stop(p);
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
    await zk.stop();
  }
}

export async function benchBroker(messages: number, runs: number): Promise<void> {
  console.log(`broker: 1 producer + 1 consumer, ${messages.toLocaleString('en')} messages of 1 KB, window 1000, median of ${runs}`);
  const b = await startBroker();
  let ours: MeshPerfResult | null = null;
  try {
    ours = await measure(`amqp://127.0.0.1:${b.port}`, 'bench.persistent', messages, true, false, runs);
    console.log(`  amqp-mesh broker, persistent (journal; a shared-store pair's live member): ${fmt(ours)}`);
    const np = await measure(`amqp://127.0.0.1:${b.port}`, 'bench.transient', messages, false, false, runs);
    console.log(`  amqp-mesh broker, non-persistent: ${fmt(np)}`);
    await benchThroughRouter(b.port, messages, runs);
  } finally {
    await stop(b.proc);
    fs.rmSync(b.dir, { recursive: true, force: true });
  }
  await benchJdbc(messages, runs, ours);
  await benchReplication(messages, runs, ours);
  if (!fs.existsSync(RABBIT)) {
    console.log('  rabbitmq-server: skipped (not installed: apt-get install rabbitmq-server)');
    return;
  }
  const r = await startRabbit().catch((e: Error) => `rabbitmq-server did not start: ${e.message}`);
  if (typeof r === 'string') {
    console.log(`  rabbitmq-server: skipped (${r})`);
    return;
  }
  try {
    const rp = await measure(`amqp://127.0.0.1:${r.port}`, '/queue/bench.persistent', messages, true, true, runs);
    console.log(`  rabbitmq-server 3.10 (amqp1_0, durable queue), persistent:     ${fmt(rp)}`);
    const rn = await measure(`amqp://127.0.0.1:${r.port}`, '/queue/bench.transient', messages, false, true, runs);
    console.log(`  rabbitmq-server 3.10 (amqp1_0), non-persistent:                ${fmt(rn)}`);
    if (ours) console.log(`  persistent throughput, amqp-mesh / rabbitmq: ${(ours.msgsPerSec / rp.msgsPerSec).toFixed(2)}x (target: at least 2x)`);
  } finally {
    await r.stop();
  }
}
