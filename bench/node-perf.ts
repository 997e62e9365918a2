/**
 * The Node bench clients in a process of their own, so a measurement gets a fresh heap and its own
 * core (as mesh_perf does), and prints mesh_perf-like JSON:
 *
 *   node dist/bench/node-perf.js --client engine|rhea --transport tcp|tls|ws --port PORT
 *        [--host 127.0.0.1] [--ca FILE] [--servername localhost] [--address A] [--messages N]
 *        [--body-size 100] [--credit 1000] [--window W] [--timeout 60]
 *
 *   {"client":"engine","transport":"tls","messages":200000,"seconds":1.2,"msgs_per_sec":166000,
 *    "latency_us":{"p50":900,"p99":2100,"max":5000},"accepted":200000}
 *
 * From TypeScript: runNodePerf(opts) spawns it and parses that line.
 */
import { runJsonLineTool } from './tools';
import { runEnginePerf } from './engine-perf';
import { runRheaPerf, type BenchTransport, type PerfResult } from './rhea-perf';

export type NodeClient = 'engine' | 'rhea';

export interface NodePerfOptions {
  client: NodeClient;
  transport: BenchTransport;
  port: number;
  host?: string;
  ca?: string;
  servername?: string;
  address: string;
  messages: number;
  bodySize?: number;
  credit?: number;
  window?: number;
  timeoutSec?: number;
}

/** Runs one measurement in a child process. */
export function runNodePerf(o: NodePerfOptions): Promise<PerfResult> {
  const args = [__filename, '--client', o.client, '--transport', o.transport, '--port', String(o.port), '--address', o.address, '--messages', String(o.messages)];
  if (o.host !== undefined) args.push('--host', o.host);
  if (o.ca !== undefined) args.push('--ca', o.ca);
  if (o.servername !== undefined) args.push('--servername', o.servername);
  if (o.bodySize !== undefined) args.push('--body-size', String(o.bodySize));
  if (o.credit !== undefined) args.push('--credit', String(o.credit));
  if (o.window !== undefined) args.push('--window', String(o.window));
  if (o.timeoutSec !== undefined) args.push('--timeout', String(o.timeoutSec));
  return runJsonLineTool(process.execPath, args, `${o.client} over ${o.transport}`).then((raw) => {
    const lat = (raw.latency_us ?? {}) as Record<string, number>;
    return {
      messages: Number(raw.messages), seconds: Number(raw.seconds), msgsPerSec: Number(raw.msgs_per_sec),
      p50Us: Number(lat.p50), p99Us: Number(lat.p99), maxUs: Number(lat.max), accepted: Number(raw.accepted),
    };
  });
}

async function main(argv: string[]): Promise<void> {
  const a: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (!k.startsWith('--') || i + 1 >= argv.length) throw new Error(`bad argument ${k}`);
    a[k.slice(2)] = argv[++i];
  }
  const client = (a.client ?? 'engine') as NodeClient;
  const transport = (a.transport ?? 'tcp') as BenchTransport;
  if (!['engine', 'rhea'].includes(client)) throw new Error(`--client engine|rhea, not ${client}`);
  if (!['tcp', 'tls', 'ws'].includes(transport)) throw new Error(`--transport tcp|tls|ws, not ${transport}`);
  if (!a.port) throw new Error('--port is required');
  const common = {
    transport, host: a.host, port: Number(a.port), ca: a.ca, servername: a.servername, address: a.address ?? 'node-perf',
    messages: Number(a.messages ?? 100_000), bodySize: a['body-size'] ? Number(a['body-size']) : 100,
    credit: a.credit ? Number(a.credit) : 1000, window: a.window ? Number(a.window) : undefined,
  };
  const r = client === 'engine'
    ? await runEnginePerf({ ...common, timeoutSec: a.timeout ? Number(a.timeout) : 60 })
    : await runRheaPerf(common);
  const f = (x: number) => Math.round(x * 10) / 10;
  process.stdout.write(JSON.stringify({
    client, transport, messages: r.messages, seconds: r.seconds, msgs_per_sec: f(r.msgsPerSec),
    latency_us: { p50: f(r.p50Us), p99: f(r.p99Us), max: f(r.maxUs) }, accepted: r.accepted,
    body_size: common.bodySize, credit: common.credit, window: common.window ?? null,
  }) + '\n');
  process.exit(0);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e: Error) => {
    process.stdout.write(JSON.stringify({ error: e.message }) + '\n');
    process.exit(1);
  });
}
