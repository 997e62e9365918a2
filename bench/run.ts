/**
 * `npm run bench`: throughput and latency through one router (C client and rhea), and the
 * router's memory per idle connection. Prints figures; asserts nothing about speed.
 *
 *   C mesh_perf --> [router] --> C mesh_perf      100-byte bodies, unsettled, 1 sender 1 receiver
 *   rhea        --> [router] --> rhea
 *   10,000 idle connections --> [router]           RSS per connection
 *
 * Env: BENCH_MESSAGES (default 500000), BENCH_RUNS (default 3), BENCH_IDLE (default 10000).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildCClients, runMeshPerf } from './tools';
import { runRheaPerf } from './rhea-perf';

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'amqp-mesh.js');

interface Router {
  pid: number;
  port: number;
  stop(): Promise<void>;
}

async function startRouter(listenerExtra = ''): Promise<Router> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amqp-mesh-bench-'));
  const file = path.join(dir, 'router.conf');
  fs.writeFileSync(file, `router {\n  mode: standalone\n  id: Bench\n}\nlistener {\n  host: 127.0.0.1\n  port: 0\n${listenerExtra}}\nlog {\n  module: DEFAULT\n  enable: warning+\n}\nlog {\n  module: SERVER\n  enable: notice+\n}\n`);
  const proc = spawn(process.execPath, [BIN, 'router', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`router did not start: ${buf}`)), 10_000);
    const on = (d: Buffer) => {
      buf += d.toString();
      const m = buf.match(/Listening on [^\s]+:(\d+)/);
      if (m) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    };
    proc.stdout.on('data', on);
    proc.stderr.on('data', on);
  });
  return {
    pid: proc.pid!,
    port,
    stop: () => new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM');
    }),
  };
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
  await benchC(messages, runs);
  await benchRhea(Math.min(messages, 200_000));
  await benchIdle(idle);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
