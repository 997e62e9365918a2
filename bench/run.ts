/**
 * `npm run bench`: throughput and latency through one router (C client and rhea), and the
 * router's memory per idle connection. Prints figures; asserts nothing about speed.
 *
 *   C mesh_perf --> [router] --> C mesh_perf      100-byte bodies, unsettled, 1 sender 1 receiver
 *   rhea        --> [router] --> rhea
 *   C / engine / rhea --> [router: plain | TLS | WebSocket] --> same   (bench/transport.ts)
 *   10,000 idle connections --> [router]           RSS per connection
 *   C mesh_perf --> [R2] --> [R1] --> C mesh_perf   two routers in a chain
 *   5-router ring, one link cut                    convergence time
 *   [R1] <-- [R2]                                   connection up -> routable (bench/adjacency.ts)
 *   rhea --attach--> [edge] --lookup--> [interior]  attach latency at an edge (bench/edge-attach.ts)
 *   C mesh_perf --> [broker | rabbitmq-server] --> C mesh_perf   1 KB, persistent and not
 *
 * Env: BENCH_MESSAGES (default 500000), BENCH_RUNS (default 3), BENCH_IDLE (default 10000),
 * BENCH_BROKER_MESSAGES (default 100000), BENCH_ONLY=broker (only the broker figures),
 * BENCH_ONLY=transport (only plain vs TLS vs WebSocket; its own BENCH_TRANSPORT_* in transport.ts),
 * BENCH_ONLY=edge (only the edge attach latency; BENCH_ATTACHES, default 1000).
 */
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildCClients, runMeshPerf } from './tools';
import { interiorConfig, until } from './router-proc';
import { runRheaPerf } from './rhea-perf';
import { benchBroker } from './broker';
import { benchTransport } from './transport';
import { benchEdgeAttach } from './edge-attach';
import { benchAdjacency } from './adjacency';

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'amqp-mesh.js');

interface Router {
  pid: number;
  port: number;
  /** Every listener's port, in config order. */
  ports: number[];
  log: string[];
  stop(): Promise<void>;
}

async function startRouter(listenerExtra = '', config?: string, listeners = 1): Promise<Router> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amqp-mesh-bench-'));
  const file = path.join(dir, 'router.conf');
  fs.writeFileSync(file, config ?? `router {\n  mode: standalone\n  id: Bench\n}\nlistener {\n  host: 127.0.0.1\n  port: 0\n${listenerExtra}}\nlog {\n  module: DEFAULT\n  enable: warning+\n}\nlog {\n  module: SERVER\n  enable: notice+\n}\n`);
  const proc = spawn(process.execPath, [BIN, 'router', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const log: string[] = [];
  const ports = await new Promise<number[]>((resolve, reject) => {
    const found: number[] = [];
    const t = setTimeout(() => reject(new Error(`router did not start: ${log.join('\n')}`)), 10_000);
    const on = (d: Buffer) => {
      for (const line of d.toString().split('\n')) {
        if (!line) continue;
        log.push(line);
        const m = line.match(/Listening on [^\s]+:(\d+)/);
        if (m) found.push(Number(m[1]));
      }
      if (found.length >= listeners) {
        clearTimeout(t);
        resolve(found);
      }
    };
    proc.stdout.on('data', on);
    proc.stderr.on('data', on);
  });
  return {
    pid: proc.pid!,
    port: ports[0],
    ports,
    log,
    stop: () => new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM');
    }),
  };
}

/** Latest "routes:" line of a router's log. */
function lastRoutes(r: Router): string {
  for (let i = r.log.length - 1; i >= 0; i--) if (r.log[i].includes('routes:')) return r.log[i];
  return '';
}

/**
 *   C mesh_perf --> [R2] --> [R1] --> C mesh_perf      two routers in a chain
 */
async function benchChain(messages: number): Promise<void> {
  let bin: string;
  try {
    bin = buildCClients();
  } catch (e) {
    console.log(`chain: skipped (${(e as Error).message})`);
    return;
  }
  const r1 = await startRouter('', interiorConfig('Chain1', []), 2);
  const r2 = await startRouter('', interiorConfig('Chain2', [r1.ports[1]]), 2);
  try {
    await until(() => lastRoutes(r2).includes('Chain1 via'), 10_000, 'chain converged');
    for (const window of [250, 1000]) {
      const res = await runMeshPerf({ binary: bin, url: `amqp://127.0.0.1:${r2.port}`, receiveUrl: `amqp://127.0.0.1:${r1.port}`, address: `chain.${window}`, messages, bodySize: 100, credit: window, window });
      console.log(`C client through two routers (window ${window}): ${Math.round(res.msgsPerSec).toLocaleString('en')} msg/s, p50 ${(res.p50Us / 1000).toFixed(2)} ms, p99 ${(res.p99Us / 1000).toFixed(2)} ms (accepted ${res.accepted}/${res.messages})`);
    }
  } finally {
    await r2.stop();
    await r1.stop();
  }
}

/**
 * 5 routers in a ring, R1 -- R2 through a TCP proxy the bench cuts:
 *   R1 -(proxy)- R2 - R3 - R4 - R5 - R1
 * Convergence = time from the cut until R1 routes to R2 the long way (cost 4).
 */
async function benchConvergence(): Promise<void> {
  const r1 = await startRouter('', interiorConfig('Ring1', []), 2);
  const sockets = new Set<net.Socket>();
  const proxy = net.createServer((inbound) => {
    const outbound = net.connect(r1.ports[1], '127.0.0.1');
    sockets.add(inbound);
    sockets.add(outbound);
    inbound.pipe(outbound).pipe(inbound);
    const close = () => {
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on('error', close);
    outbound.on('error', close);
    inbound.on('close', close);
    outbound.on('close', close);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
  const proxyPort = (proxy.address() as net.AddressInfo).port;
  const r2 = await startRouter('', interiorConfig('Ring2', [proxyPort]), 2);
  const r3 = await startRouter('', interiorConfig('Ring3', [r2.ports[1]]), 2);
  const r4 = await startRouter('', interiorConfig('Ring4', [r3.ports[1]]), 2);
  const r5 = await startRouter('', interiorConfig('Ring5', [r4.ports[1], r1.ports[1]]), 2);
  const all = [r1, r2, r3, r4, r5];
  try {
    // Every router routes to the four others before the cut.
    await until(() => all.every((r) => (lastRoutes(r).match(/Ring\d via/g) ?? []).length === 4), 20_000, 'ring converged');
    // Refuse reconnection while cut: close the proxy first.
    proxy.close();
    const cut = Date.now();
    for (const s of sockets) s.destroy();
    await until(() => /Ring2 via Ring5 cost 4/.test(lastRoutes(r1)), 20_000, 'R1 routes around the cut');
    const r1ms = Date.now() - cut;
    await until(() => /Ring1 via Ring3 cost 4/.test(lastRoutes(r2)), 20_000, 'R2 routes around the cut');
    console.log(`5-router ring, link cut: R1 rerouted in ${r1ms} ms, both ends in ${Date.now() - cut} ms`);
  } finally {
    for (const r of all) await r.stop();
  }
}

function rssKb(pid: number): number {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/);
  return m ? Number(m[1]) : 0;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function benchC(messages: number, runs: number): Promise<void> {
  let bin: string;
  try {
    bin = buildCClients();
  } catch (e) {
    console.log(`C client: skipped (${(e as Error).message})`);
    return;
  }
  const r = await startRouter();
  try {
    // Two client settings: a window of 250 (the router's linkCapacity, so the client does not
    // queue more than the router would buffer) and 1000 (mesh_perf's default, deeper queues).
    for (const window of [250, 1000]) {
      const results = [];
      for (let i = 0; i < runs; i++) {
        const res = await runMeshPerf({ binary: bin, url: `amqp://127.0.0.1:${r.port}`, address: `bench.c.${window}.${i}`, messages, bodySize: 100, credit: window, window });
        results.push(res);
        console.log(`  window ${window} run ${i + 1}: ${Math.round(res.msgsPerSec).toLocaleString('en')} msg/s  p50 ${(res.p50Us / 1000).toFixed(2)} ms  p99 ${(res.p99Us / 1000).toFixed(2)} ms  (accepted ${res.accepted}/${res.messages})`);
      }
      console.log(`C client (Proton-C, window ${window}) through one router: median ${Math.round(median(results.map((x) => x.msgsPerSec))).toLocaleString('en')} msg/s, p50 ${(median(results.map((x) => x.p50Us)) / 1000).toFixed(2)} ms, p99 ${(median(results.map((x) => x.p99Us)) / 1000).toFixed(2)} ms`);
    }
  } finally {
    await r.stop();
  }
}

async function benchRhea(messages: number): Promise<void> {
  const r = await startRouter();
  try {
    const res = await runRheaPerf({ port: r.port, address: 'bench.rhea', messages });
    console.log(`rhea through one router: ${Math.round(res.msgsPerSec).toLocaleString('en')} msg/s, p50 ${(res.p50Us / 1000).toFixed(2)} ms, p99 ${(res.p99Us / 1000).toFixed(2)} ms`);
  } finally {
    await r.stop();
  }
}

async function benchIdle(count: number): Promise<void> {
  const r = await startRouter('  idleTimeoutSeconds: 0\n');
  try {
    const before = rssKb(r.pid);
    const child = spawn(process.execPath, [path.join(__dirname, 'idle-clients.js'), String(r.port), String(count)], { stdio: ['pipe', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('open') && resolve());
      child.on('exit', (code) => reject(new Error(`idle clients exited ${code}`)));
    });
    // Let the router settle (GC) before reading RSS.
    await new Promise((res) => setTimeout(res, 1500));
    const after = rssKb(r.pid);
    child.stdin.end();
    const per = ((after - before) * 1024) / count;
    console.log(`idle connections: ${count.toLocaleString('en')} open, router RSS ${(before / 1024).toFixed(1)} MB -> ${(after / 1024).toFixed(1)} MB, ${(per / 1024).toFixed(1)} KB per connection`);
  } finally {
    await r.stop();
  }
}

async function main(): Promise<void> {
  const messages = Number(process.env.BENCH_MESSAGES ?? 500_000);
  const runs = Number(process.env.BENCH_RUNS ?? 3);
  const idle = Number(process.env.BENCH_IDLE ?? 10_000);
  console.log(`amqp-mesh bench: ${os.cpus().length} cores, node ${process.version}, ${messages.toLocaleString('en')} messages of 100 bytes, unsettled`);
  if (process.env.BENCH_ONLY === 'broker') {
    await benchBroker(Number(process.env.BENCH_BROKER_MESSAGES ?? 100_000), runs);
    return;
  }
  if (process.env.BENCH_ONLY === 'edge') {
    await benchEdgeAttach(Number(process.env.BENCH_ATTACHES ?? 1000));
    return;
  }
  if (process.env.BENCH_ONLY === 'transport') {
    await benchTransport({ runs, messages });
    return;
  }
  await benchC(messages, runs);
  await benchRhea(Math.min(messages, 200_000));
  await benchTransport({ runs, messages });
  await benchIdle(idle);
  await benchChain(Math.min(messages, 300_000));
  await benchConvergence();
  await benchAdjacency(5);
  await benchEdgeAttach(Number(process.env.BENCH_ATTACHES ?? 1000));
  await benchBroker(Number(process.env.BENCH_BROKER_MESSAGES ?? 100_000), runs);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
