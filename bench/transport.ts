/**
 * Transport figures for `npm run bench` (`BENCH_ONLY=transport` for just these): one router with
 * three listeners, the same clients over each, 100-byte bodies, unsettled, the same window:
 *
 *   listener bench-plain   plain AMQP over TCP
 *   listener bench-tls     sslProfile + requireSsl: yes (test certificates, test/support/certs.ts)
 *   listener bench-ws      http: yes (AMQP over WebSocket, ws://, subprotocol amqp)
 *
 *   Proton-C mesh_perf   plain, TLS (amqps://, server verified against the test CA); it has no WebSocket
 *   engine (amqp/engine in client mode, bench/engine-perf.ts): plain, TLS, WebSocket
 *   rhea                 plain, TLS, WebSocket (rhea's own cost hides most of the difference)
 *
 * After an unrecorded warm-up round (a fifth of the messages; BENCH_TRANSPORT_WARMUP=0: none),
 * each round runs every client over every transport back to back, in reversed order every other
 * round (so drift hits all transports alike); the table has the median of the rounds, the median
 * of the rounds' ratios to the same client over plain TCP, and the router's CPU per message
 * (from /proc).
 *
 * Env: BENCH_TRANSPORT_RUNS (default BENCH_RUNS, 3), BENCH_TRANSPORT_WINDOW (default 1000),
 * BENCH_TRANSPORT_CLIENTS (default c,engine,rhea), message counts per run BENCH_TRANSPORT_C_MESSAGES
 * (default BENCH_MESSAGES, 500000), BENCH_TRANSPORT_ENGINE_MESSAGES (default BENCH_MESSAGES up to
 * 200000), BENCH_TRANSPORT_RHEA_MESSAGES (default BENCH_MESSAGES up to 100000), BENCH_QUIET=1
 * (before each run wait, up to 30 s, for a second in which the machine is at most 15% busy: for
 * shared machines; it adds a second or more per run), BENCH_ROUTER_BIN (another build's
 * bin/amqp-mesh.js, e.g. a snapshot from bench/ab-snapshot.sh; default this tree's).
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { makeCertsSync } from '../test/support/certs';
import { runNodePerf } from './node-perf';
import type { BenchTransport, PerfResult } from './rhea-perf';
import { QUIET_LOG, startRouterProcess, waitQuiet } from './router-proc';
import { buildCClients, runMeshPerf } from './tools';

type Client = 'c' | 'engine' | 'rhea';

const TRANSPORTS: { t: BenchTransport; name: string; listener: string }[] = [
  { t: 'tcp', name: 'plain TCP', listener: 'bench-plain' },
  { t: 'tls', name: 'TLS', listener: 'bench-tls' },
  { t: 'ws', name: 'WebSocket', listener: 'bench-ws' },
];
const CLIENT_NAME: Record<Client, string> = { c: 'Proton-C mesh_perf', engine: 'Node, amqp-mesh engine', rhea: 'rhea' };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

export function transportRouterConfig(certFile: string, keyFile: string): string {
  return [
    'router {\n  mode: standalone\n  id: BenchTransport\n}',
    `sslProfile {\n  name: bench-cert\n  certFile: ${certFile}\n  privateKeyFile: ${keyFile}\n}`,
    'listener {\n  name: bench-plain\n  host: 127.0.0.1\n  port: 0\n}',
    'listener {\n  name: bench-tls\n  host: 127.0.0.1\n  port: 0\n  sslProfile: bench-cert\n  requireSsl: yes\n}',
    'listener {\n  name: bench-ws\n  host: 127.0.0.1\n  port: 0\n  http: yes\n}',
  ].join('\n') + '\n' + QUIET_LOG;
}

export async function benchTransport(opts: { runs: number; messages: number }): Promise<void> {
  const env = process.env;
  const runs = Number(env.BENCH_TRANSPORT_RUNS ?? opts.runs);
  const window = Number(env.BENCH_TRANSPORT_WINDOW ?? 1000);
  const quiet = env.BENCH_QUIET === '1';
  const warmup = env.BENCH_TRANSPORT_WARMUP !== '0';
  const counts: Record<Client, number> = {
    c: Number(env.BENCH_TRANSPORT_C_MESSAGES ?? opts.messages),
    engine: Number(env.BENCH_TRANSPORT_ENGINE_MESSAGES ?? Math.min(opts.messages, 200_000)),
    rhea: Number(env.BENCH_TRANSPORT_RHEA_MESSAGES ?? Math.min(opts.messages, 100_000)),
  };
  let clients = (env.BENCH_TRANSPORT_CLIENTS ?? 'c,engine,rhea').split(',').map((s) => s.trim()).filter(Boolean) as Client[];
  for (const c of clients) if (!(c in CLIENT_NAME)) throw new Error(`BENCH_TRANSPORT_CLIENTS: unknown client ${c} (c, engine, rhea)`);
  let bin = '';
  if (clients.includes('c')) {
    try {
      bin = buildCClients();
    } catch (e) {
      console.log(`transport: Proton-C client skipped (${(e as Error).message})`);
      clients = clients.filter((c) => c !== 'c');
    }
  }
  const t0 = Date.now();
  const certs = makeCertsSync(path.join(os.tmpdir(), 'amqp-mesh-bench-certs'));
  const router = await startRouterProcess({
    bin: env.BENCH_ROUTER_BIN,
    config: transportRouterConfig(certs.server.cert, certs.server.key),
    listeners: TRANSPORTS.map((x) => x.listener),
  });
  console.log(`transport: one router, listeners plain ${router.ports['bench-plain']}, TLS ${router.ports['bench-tls']} (requireSsl), WebSocket ${router.ports['bench-ws']}; window ${window}, 100-byte bodies, ${runs} rounds (load ${os.loadavg()[0].toFixed(2)})`);
  const results = new Map<string, { r: PerfResult; cpuUsPerMsg: number; round: number }[]>();
  const runOne = async (client: Client, tr: (typeof TRANSPORTS)[number], messages: number, address: string): Promise<PerfResult> => {
    const port = router.ports[tr.listener];
    if (client === 'c') {
      // amqps: the server's certificate is verified against the test CA. Proton-C checks names
      // against DNS entries only, and the bench dials 127.0.0.1: the chain only ("peer").
      const url = `${tr.t === 'tls' ? 'amqps' : 'amqp'}://127.0.0.1:${port}`;
      const extra = tr.t === 'tls' ? { sslCa: certs.ca, sslVerify: 'peer' as const } : {};
      return runMeshPerf({ binary: bin, url, address, messages, bodySize: 100, credit: window, window, ...extra });
    }
    return runNodePerf({ client, transport: tr.t, port, ca: certs.ca, address, messages, bodySize: 100, credit: window, window });
  };
  const usable = (client: Client) => TRANSPORTS.filter((tr) => !(client === 'c' && tr.t === 'ws')); // Proton-C has no WebSocket client
  try {
    // A fresh router runs its first few hundred thousand messages slower (JIT, heap growth) on
    // every path: one unrecorded round with a fifth of the messages first.
    if (warmup) {
      const w0 = Date.now();
      for (const client of clients) for (const tr of usable(client)) await runOne(client, tr, Math.max(1000, Math.round(counts[client] / 5)), `bench.transport.warmup.${client}.${tr.t}`);
      console.log(`  warm-up round: ${((Date.now() - w0) / 1000).toFixed(1)} s`);
    }
    for (let round = 0; round < runs; round++) {
      for (const client of clients) {
        // Transports in turn, the order reversed every other round: what drifts within a round
        // (warming, someone else's load) is not always charged to the same transport.
        const order = round % 2 === 0 ? usable(client) : [...usable(client)].reverse();
        for (const tr of order) {
          if (quiet) await waitQuiet();
          const cpu0 = router.cpuSeconds();
          const r = await runOne(client, tr, counts[client], `bench.transport.${client}.${tr.t}.${round}`);
          const cpuUsPerMsg = ((router.cpuSeconds() - cpu0) * 1e6) / r.messages;
          const key = `${client}/${tr.t}`;
          if (!results.has(key)) results.set(key, []);
          results.get(key)!.push({ r, cpuUsPerMsg, round });
          console.log(`  round ${round + 1} ${CLIENT_NAME[client]} over ${tr.name}: ${Math.round(r.msgsPerSec).toLocaleString('en')} msg/s  p50 ${(r.p50Us / 1000).toFixed(2)} ms  p99 ${(r.p99Us / 1000).toFixed(2)} ms  router ${cpuUsPerMsg.toFixed(1)} µs CPU/msg (accepted ${r.accepted}/${r.messages})`);
        }
      }
    }
  } finally {
    await router.stop();
  }
  /** Median over rounds of (rate over `t` / rate over plain TCP in the same round): back-to-back runs share the machine's state. */
  const ratioToPlain = (client: Client, t: BenchTransport): number => {
    const plain = results.get(`${client}/tcp`) ?? [];
    const rs = results.get(`${client}/${t}`) ?? [];
    const ratios = rs.map((x) => {
      const p = plain.find((y) => y.round === x.round);
      return p ? x.r.msgsPerSec / p.r.msgsPerSec : NaN;
    }).filter((x) => !Number.isNaN(x));
    return ratios.length ? median(ratios) : NaN;
  };
  console.log(`\nThrough one router by transport (median of ${runs} rounds; "vs plain": median of the rounds' ratios; window ${window}; load ${os.loadavg()[0].toFixed(2)}; ${((Date.now() - t0) / 1000).toFixed(0)} s):\n`);
  console.log('| transport | client | msg/s | p50 | p99 | vs plain | router CPU/msg |');
  console.log('|---|---|---|---|---|---|---|');
  for (const client of clients) {
    for (const tr of TRANSPORTS) {
      const rs = results.get(`${client}/${tr.t}`);
      if (!rs) {
        console.log(`| ${tr.name} | ${CLIENT_NAME[client]} | n/a (Proton-C has no WebSocket) | | | | |`);
        continue;
      }
      const rate = median(rs.map((x) => x.r.msgsPerSec));
      const ratio = ratioToPlain(client, tr.t);
      console.log(`| ${tr.name} | ${CLIENT_NAME[client]} | ${Math.round(rate).toLocaleString('en')} | ${(median(rs.map((x) => x.r.p50Us)) / 1000).toFixed(2)} ms | ${(median(rs.map((x) => x.r.p99Us)) / 1000).toFixed(2)} ms | ${Number.isNaN(ratio) ? '' : ratio.toFixed(2)} | ${median(rs.map((x) => x.cpuUsPerMsg)).toFixed(1)} µs |`);
    }
  }
  if (results.has('c/tls') && results.has('c/tcp')) {
    console.log(`\nTLS / plain with the C client: ${ratioToPlain('c', 'tls').toFixed(2)} (goal: at least 0.60)`);
  }
}
