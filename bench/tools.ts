/**
 * Benchmark tooling: build and run the C load generator (bench/c/mesh_perf.c).
 *
 *   const bin = buildCClients();             // compiles once, returns the binary path
 *   const r = await runMeshPerf({ url: 'amqp://127.0.0.1:5672', address: 'q', messages: 100000 });
 *   console.log(r.msgsPerSec, r.p50Us, r.p99Us);
 *
 * Needs gcc and the Qpid Proton-C headers (Debian: libqpid-proton11-dev); .ci/run installs them.
 */
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export interface MeshPerfOptions {
  /**
   * amqp://HOST:PORT of the sending connection (and of the receiving one unless receiveUrl);
   * amqps://HOST:PORT for TLS.
   */
  url: string;
  address: string;
  messages: number;
  /** Body bytes (default 100, minimum 16: send timestamp + sequence number). */
  bodySize?: number;
  /** Receiver credit window (default 1000). */
  credit?: number;
  /** Receiving connection URL when it differs from url (e.g. another router). */
  receiveUrl?: string;
  /** Max unsettled deliveries in flight at the sender (default: credit; 0 = link credit only). */
  window?: number;
  /** Send pre-settled (accepted stays 0). */
  presettled?: boolean;
  /** Proactor threads in the client (default 1). */
  threads?: number;
  /** Use a SASL ANONYMOUS layer (default: plain AMQP). */
  sasl?: boolean;
  /** amqps: CA file the server's certificate must chain to (default: not verified). */
  sslCa?: string;
  /**
   * amqps: `name` (certificate and host name, the default with sslCa; Proton-C matches DNS names
   * only, so dial a host name), `peer` (certificate only) or `none`.
   */
  sslVerify?: 'name' | 'peer' | 'none';
  /** Durable messages and termini (a broker persists them). */
  durable?: boolean;
  /** Seconds before mesh_perf gives up (default 60). */
  timeoutSec?: number;
  /** Binary to run (default: buildCClients()). */
  binary?: string;
}

export interface MeshPerfResult {
  messages: number;
  seconds: number;
  msgsPerSec: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
  accepted: number;
  /** Messages the receiver got (== messages on success). */
  received: number;
  /** The JSON line mesh_perf printed. */
  raw: Record<string, unknown>;
}

/** Repository root: the nearest ancestor of this file holding bench/c/build.sh. */
function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'bench', 'c', 'build.sh'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`bench/c/build.sh not found above ${__dirname}`);
    dir = parent;
  }
}

/** Default output directory of the C build. */
export function cBuildDir(): string {
  return path.join(process.env.TMPDIR || os.tmpdir(), 'amqp-mesh-bench');
}

/**
 * Compile the C clients with bench/c/build.sh (a no-op when up to date) and
 * return the path of the mesh_perf binary. Throws with build.sh's message when
 * gcc or the Proton-C headers are missing.
 */
export function buildCClients(outDir: string = cBuildDir()): string {
  const script = path.join(repoRoot(), 'bench', 'c', 'build.sh');
  let stdout: string;
  try {
    stdout = execFileSync('bash', [script, outDir], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    const e = err as { stderr?: Buffer | string; message: string };
    const detail = e.stderr ? e.stderr.toString().trim() : e.message;
    throw new Error(`building the C benchmark clients failed: ${detail}`);
  }
  const lines = stdout.trim().split('\n');
  const bin = lines[lines.length - 1].trim();
  if (!bin || !fs.existsSync(bin)) throw new Error(`build.sh did not produce a binary (got "${bin}")`);
  return bin;
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

/** Run mesh_perf once (both sides in one process) and parse its JSON line. */
export function runMeshPerf(opts: MeshPerfOptions): Promise<MeshPerfResult> {
  const bin = opts.binary ?? buildCClients();
  const args = ['--url', opts.url, '--address', opts.address, '--messages', String(opts.messages)];
  if (opts.bodySize !== undefined) args.push('--body-size', String(opts.bodySize));
  if (opts.credit !== undefined) args.push('--credit', String(opts.credit));
  if (opts.receiveUrl !== undefined) args.push('--receive-url', opts.receiveUrl);
  if (opts.window !== undefined) args.push('--window', String(opts.window));
  if (opts.threads !== undefined) args.push('--threads', String(opts.threads));
  if (opts.timeoutSec !== undefined) args.push('--timeout', String(opts.timeoutSec));
  if (opts.presettled) args.push('--presettled');
  if (opts.sasl) args.push('--sasl');
  if (opts.sslCa !== undefined) args.push('--ssl-ca', opts.sslCa);
  if (opts.sslVerify !== undefined) args.push('--ssl-verify', opts.sslVerify);
  if (opts.durable) args.push('--durable');

  return runJsonLineTool(bin, args, 'mesh_perf').then((raw) => {
    const lat = (raw.latency_us ?? {}) as Record<string, unknown>;
    return {
      messages: num(raw.messages),
      seconds: num(raw.seconds),
      msgsPerSec: num(raw.msgs_per_sec),
      p50Us: num(lat.p50),
      p99Us: num(lat.p99),
      maxUs: num(lat.max),
      accepted: num(raw.accepted),
      received: num(raw.received),
      raw,
    };
  });
}

/**
 * Runs a load generator that prints one JSON line at the end (mesh_perf, bench/node-perf.js) and
 * resolves with it; a non-zero exit or an `error` field rejects, naming `what` and the reason.
 */
export function runJsonLineTool(bin: string, args: string[], what: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d: string) => (out += d));
    child.stderr.on('data', (d: string) => (err += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const line = out.trim().split('\n').filter((l) => l.startsWith('{')).pop();
      let raw: Record<string, unknown> | undefined;
      try {
        raw = line ? (JSON.parse(line) as Record<string, unknown>) : undefined;
      } catch {
        raw = undefined;
      }
      if (code !== 0 || !raw || typeof raw.error === 'string') {
        const why = raw && typeof raw.error === 'string' ? raw.error : err.trim() || `exit ${code ?? signal}`;
        const e = new Error(`${what} failed: ${why}`) as Error & { result?: Record<string, unknown> };
        e.result = raw;
        reject(e);
        return;
      }
      resolve(raw);
    });
  });
}
