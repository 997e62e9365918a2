/**
 * `up`'s side of `amqp-mesh apply`: the state file, the run-directory pointer and the control
 * socket `up` listens on, and `apply`'s client of it (topology/apply.ts does the applying).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError } from '../config/errors';
import { loadTopologyFile } from './model';
import type { PortPlan } from './generate';
import { applyTopology } from './apply';
import type { RunningTopology } from './running';

/** The pointer `up` writes to its run directory (newest `up` wins). */
export const CURRENT_POINTER = (): string => path.join(os.tmpdir(), 'amqp-mesh-up-current');
/** Files in a run directory. */
export const STATE_FILE = 'state.json';
export const CONTROL_SOCKET = 'control.sock';


/** What `up` writes to `<runDir>/state.json` (after boot and after every apply). */
export interface UpState {
  upPid: number;
  runDir: string;
  modelFile: string;
  socket: string;
  updated: string;
  ports: PortPlan;
  components: { kind: string; name: string; pair?: string; state: string; pid: number; endpoint: string; port: number; interRouterPort?: number; configFile: string; logFile: string }[];
}

function writeAtomically(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

/** Writes `<runDir>/state.json`. */
export function writeState(t: RunningTopology, modelFile: string): void {
  const state: UpState = {
    upPid: process.pid,
    runDir: t.runDir,
    modelFile,
    socket: path.join(t.runDir, CONTROL_SOCKET),
    updated: new Date().toISOString(),
    ports: t.ports,
    components: t.components.map((c) => ({
      kind: c.kind, name: c.name, pair: c.pair, state: c.state, pid: c.pid, endpoint: c.endpoint, port: c.port,
      interRouterPort: c.interRouterPort, configFile: c.configFile, logFile: c.logFile,
    })),
  };
  writeAtomically(path.join(t.runDir, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`);
}

/** A running control endpoint of `up`. */
export interface ControlServer {
  /** The socket path, or undefined when it could not listen (see the warning printed). */
  socket: string | undefined;
  close(): Promise<void>;
}

/**
 * `up`'s side of `apply`: writes state.json and (unless `pointer` is false) the
 * `$TMPDIR/amqp-mesh-up-current` pointer, and
 * serves `{"apply": FILE}` requests on `<runDir>/control.sock` (one at a time), answering with
 * `{"line": ...}` progress lines and a final `{"done": true, "ok": ..., "error"?: ...}`.
 * @param log where `up` prints what happens (each line also goes to the requester).
 */
export async function serveControl(
  t: RunningTopology,
  opts: { modelFile: string; log?: (line: string) => void; timeoutMs?: number; pointer?: boolean },
): Promise<ControlServer> {
  let modelFile = opts.modelFile;
  writeState(t, modelFile);
  const pointer = opts.pointer === false ? undefined : CURRENT_POINTER();
  try {
    if (pointer) writeAtomically(pointer, `${t.runDir}\n`);
  } catch {
    // a read-only TMPDIR: apply still finds the run directory by name
  }
  const socketPath = path.join(t.runDir, CONTROL_SOCKET);
  let busy = false;
  const server = net.createServer((sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', () => undefined);
    const send = (o: object): void => {
      if (!sock.destroyed) sock.write(`${JSON.stringify(o)}\n`);
    };
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) {
        if (buf.length > 64 * 1024) sock.destroy();
        return;
      }
      const line = buf.slice(0, nl);
      buf = '';
      sock.removeAllListeners('data');
      let req: { apply?: unknown; drainTimeoutMs?: unknown };
      try {
        req = JSON.parse(line);
      } catch {
        send({ done: true, ok: false, error: 'bad request: not JSON' });
        sock.end();
        return;
      }
      if (typeof req.apply !== 'string' || !path.isAbsolute(req.apply)) {
        send({ done: true, ok: false, error: 'bad request: expected {"apply": "/absolute/topology.yaml"}' });
        sock.end();
        return;
      }
      if (busy) {
        send({ done: true, ok: false, error: 'another apply is in progress; try again when it is done' });
        sock.end();
        return;
      }
      busy = true;
      const file = req.apply;
      const progress = (l: string): void => {
        opts.log?.(`apply: ${l}`);
        send({ line: l });
      };
      void (async () => {
        try {
          progress(`${file}`);
          const model = loadTopologyFile(file);
          const r = await applyTopology(t, model, {
            progress,
            timeoutMs: opts.timeoutMs,
            drainTimeoutMs: typeof req.drainTimeoutMs === 'number' && req.drainTimeoutMs > 0 ? req.drainTimeoutMs : undefined,
          });
          modelFile = file;
          progress('done:');
          for (const s of r.summary) progress(`  ${s}`);
          send({ done: true, ok: true });
        } catch (e) {
          const msg = e instanceof ConfigError ? `${e.message} (nothing was changed)` : (e as Error).message;
          opts.log?.(`apply: failed: ${msg}`);
          send({ done: true, ok: false, error: msg });
        } finally {
          busy = false;
          try {
            writeState(t, modelFile);
          } catch {
            // the run directory went away
          }
          sock.end();
        }
      })();
    });
  });
  let listening = false;
  try {
    try {
      fs.unlinkSync(socketPath);
    } catch {
      // none left over
    }
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
    listening = true;
  } catch (e) {
    opts.log?.(`warning: amqp-mesh apply is unavailable: cannot listen on ${socketPath}: ${(e as Error).message}`);
  }
  return {
    socket: listening ? socketPath : undefined,
    close: async () => {
      if (listening) await new Promise<void>((r) => server.close(() => r()));
      try {
        fs.unlinkSync(socketPath);
      } catch {
        // gone
      }
      try {
        if (pointer && fs.readFileSync(pointer, 'utf8').trim() === t.runDir) fs.unlinkSync(pointer);
      } catch {
        // someone else's or gone
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The `apply` command's side.

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readState(runDir: string): UpState | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(runDir, STATE_FILE), 'utf8')) as UpState;
  } catch {
    return undefined;
  }
}

/**
 * The run directory of the running `up` to talk to: `explicit`, else the one
 * `$TMPDIR/amqp-mesh-up-current` names, else the newest `$TMPDIR/amqp-mesh-up-*` whose up lives.
 * @throws Error saying where it looked.
 */
export function findRunDir(explicit?: string): string {
  if (explicit !== undefined) {
    const s = readState(explicit);
    if (!s) throw new Error(`${explicit} has no ${STATE_FILE}: not a run directory of a running amqp-mesh up`);
    if (!alive(s.upPid)) throw new Error(`the amqp-mesh up of ${explicit} (pid ${s.upPid}) is not running`);
    return explicit;
  }
  try {
    const dir = fs.readFileSync(CURRENT_POINTER(), 'utf8').trim();
    const s = readState(dir);
    if (s && alive(s.upPid)) return dir;
  } catch {
    // no pointer
  }
  const tmp = os.tmpdir();
  const candidates: { dir: string; mtime: number }[] = [];
  let names: string[] = [];
  try {
    names = fs.readdirSync(tmp).filter((n) => n.startsWith('amqp-mesh-up-'));
  } catch {
    // unreadable
  }
  for (const n of names) {
    const dir = path.join(tmp, n);
    try {
      const st = fs.statSync(path.join(dir, STATE_FILE));
      const s = readState(dir);
      if (s && alive(s.upPid)) candidates.push({ dir, mtime: st.mtimeMs });
    } catch {
      // not a run directory
    }
  }
  candidates.sort((a, b) => b.mtime - a.mtime);
  if (candidates.length === 0) throw new Error(`no running amqp-mesh up found (looked at ${CURRENT_POINTER()} and ${path.join(tmp, 'amqp-mesh-up-*')}); start one, or pass --run-dir DIR`);
  return candidates[0].dir;
}

/**
 * Asks the `up` of `runDir` to apply `file` (made absolute), calling `onLine` for each progress line.
 * Resolves with the outcome; rejects only when `up` cannot be reached.
 */
export function requestApply(runDir: string, file: string, onLine: (line: string) => void, opts: { drainTimeoutMs?: number } = {}): Promise<{ ok: boolean; error?: string }> {
  const socketPath = readState(runDir)?.socket ?? path.join(runDir, CONTROL_SOCKET);
  return new Promise((resolve, reject) => {
    const sock = net.connect(socketPath);
    let buf = '';
    let settled = false;
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(`${JSON.stringify({ apply: path.resolve(file), drainTimeoutMs: opts.drainTimeoutMs })}\n`));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let msg: { line?: string; done?: boolean; ok?: boolean; error?: string };
        try {
          msg = JSON.parse(line);
        } catch {
          continue;
        }
        if (typeof msg.line === 'string') onLine(msg.line);
        if (msg.done && !settled) {
          settled = true;
          resolve({ ok: msg.ok === true, error: msg.error });
        }
      }
    });
    sock.on('error', (e) => {
      if (!settled) {
        settled = true;
        reject(new Error(`cannot reach amqp-mesh up at ${socketPath}: ${e.message}`));
      }
    });
    sock.on('close', () => {
      if (!settled) {
        settled = true;
        reject(new Error(`amqp-mesh up at ${socketPath} hung up before the apply finished (did it stop?)`));
      }
    });
  });
}

const APPLY_USAGE = `usage: amqp-mesh apply FILE [--run-dir DIR] [--drain-timeout SECONDS]
  changes the topology a running "amqp-mesh up" runs to FILE, without restarting the routers that stay`;

/** `amqp-mesh apply FILE [--run-dir DIR] [--drain-timeout SECONDS]`: exits 0 once applied, 1 with the reason, 2 on bad usage. */
export async function runApply(argv: string[]): Promise<void> {
  let file: string | undefined;
  let runDir: string | undefined;
  let drainTimeoutMs: number | undefined;
  const usage = (why: string): never => {
    process.stderr.write(`amqp-mesh apply: ${why}\n${APPLY_USAGE}\n`);
    process.exit(2);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') {
      process.stdout.write(`${APPLY_USAGE}\n`);
      return;
    } else if (a === '--run-dir') runDir = argv[++i] ?? usage('--run-dir needs a directory');
    else if (a === '--drain-timeout') {
      const s = Number(argv[++i]);
      if (!(s > 0)) usage('--drain-timeout needs a number of seconds');
      drainTimeoutMs = s * 1000;
    } else if (a.startsWith('-')) usage(`unknown option "${a}"`);
    else if (file === undefined) file = a;
    else usage(`unexpected argument "${a}"`);
  }
  if (file === undefined) return usage('FILE is required');
  const abs = path.resolve(file);
  // Checked here too, so a typo is reported at once, with FILE:LINE, before bothering up.
  try {
    loadTopologyFile(abs);
  } catch (e) {
    process.stderr.write(`amqp-mesh apply: ${(e as Error).message}\n`);
    process.exit(1);
  }
  let dir: string;
  try {
    dir = findRunDir(runDir);
  } catch (e) {
    process.stderr.write(`amqp-mesh apply: ${(e as Error).message}\n`);
    process.exit(1);
  }
  process.stdout.write(`amqp-mesh apply: ${abs} -> amqp-mesh up in ${dir}\n`);
  try {
    const r = await requestApply(dir, abs, (line) => process.stdout.write(`${line}\n`), { drainTimeoutMs });
    if (!r.ok) {
      process.stderr.write(`amqp-mesh apply: failed: ${r.error ?? 'unknown reason'}\n`);
      process.exit(1);
    }
  } catch (e) {
    process.stderr.write(`amqp-mesh apply: ${(e as Error).message}\n`);
    process.exit(1);
  }
  process.exit(0);
}
