/**
 * Run the Proton (python3-qpid-proton) test clients of this folder from tests.
 *
 *   const r = await runProton('send.py', ['--url', url, '--address', 'q', '--count', '5']);
 *   assert.equal(r.code, 0); assert.equal(r.result.accepted, 5);
 *
 *   const rx = startProton('receive.py', ['--url', url, '--address', 'q', '--count', '5']);
 *   await rx.ready;            // the receiver link is attached
 *   ...send...
 *   const done = await rx.done;
 *
 * See README.md in this folder for every script's options and JSON output.
 */
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

/** Debian's interpreter: python3-qpid-proton is installed for it, not for a pyenv/venv python. */
export const PYTHON = process.env.PROTON_PYTHON || '/usr/bin/python3';

export type ProtonScript =
  | 'send.py'
  | 'receive.py'
  | 'request_reply.py'
  | 'responder.py'
  | 'raw_roundtrip.py'
  | 'tx.py';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export interface ProtonRun {
  /** Exit code (0 = finished or timed out and reported; non-zero = error, see result.error). */
  code: number | null;
  /** The JSON line the script printed (undefined if it printed none). */
  result: Json;
  stderr: string;
}

export interface ProtonProcess {
  /** Resolves on the script's {"event":"ready"} stderr line (receiving scripts only). */
  ready: Promise<Json>;
  done: Promise<ProtonRun>;
  kill(): void;
}

/** Folder of the Python scripts (works from test/... and from dist/test/...). */
export function protonDir(): string {
  let dir = __dirname;
  for (;;) {
    const candidate = path.join(dir, 'test', 'support', 'proton');
    if (fs.existsSync(path.join(candidate, 'send.py'))) return candidate;
    if (fs.existsSync(path.join(dir, 'send.py')) && fs.existsSync(path.join(dir, 'amqp_common.py'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`test/support/proton/send.py not found above ${__dirname}`);
    dir = parent;
  }
}

let available: boolean | undefined;
/** True when PYTHON can import proton (use to skip tests on machines without it). */
export function protonAvailable(): boolean {
  if (available === undefined) {
    const r = spawnSync(PYTHON, ['-c', 'import proton'], { stdio: 'ignore' });
    available = r.status === 0;
  }
  return available;
}

/** Start a script; `killAfterMs` is a safety net on top of the script's own --timeout. */
export function startProton(script: ProtonScript, args: string[], killAfterMs = 60000): ProtonProcess {
  const child = spawn(PYTHON, [path.join(protonDir(), script), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  let errLine = '';
  let readyResolve: (v: Json) => void = () => undefined;
  let readyReject: (e: Error) => void = () => undefined;
  let isReady = false;
  const ready = new Promise<Json>((res, rej) => {
    readyResolve = res;
    readyReject = rej;
  });
  ready.catch(() => undefined); // callers that don't await ready must not see an unhandled rejection
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (d: string) => (out += d));
  child.stderr.on('data', (d: string) => {
    err += d;
    errLine += d;
    let nl: number;
    while ((nl = errLine.indexOf('\n')) >= 0) {
      const line = errLine.slice(0, nl).trim();
      errLine = errLine.slice(nl + 1);
      if (!isReady && line.startsWith('{')) {
        try {
          const ev = JSON.parse(line) as Json;
          if (ev && ev.event === 'ready') {
            isReady = true;
            readyResolve(ev);
          }
        } catch {
          /* not ours */
        }
      }
    }
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  const done = new Promise<ProtonRun>((resolve, reject) => {
    child.on('error', (e) => {
      clearTimeout(timer);
      readyReject(e);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').filter((l) => l.startsWith('{')).pop();
      let result: Json = undefined;
      if (line) {
        try {
          result = JSON.parse(line);
        } catch {
          result = undefined;
        }
      }
      if (!isReady) readyReject(new Error(`${script} exited (${code}) before ready: ${line ?? err.trim()}`));
      resolve({ code, result, stderr: err });
    });
  });
  return { ready, done, kill: () => child.kill('SIGKILL') };
}

/** Run a script to completion. */
export function runProton(script: ProtonScript, args: string[], killAfterMs = 60000): Promise<ProtonRun> {
  return startProton(script, args, killAfterMs).done;
}

/** Typed JSON (as printed with --dump / by raw_roundtrip.py) -> plain JSON, types dropped. */
export function plain(t: Json): Json {
  if (t === null || typeof t !== 'object' || Array.isArray(t) || typeof t.type !== 'string') return t;
  const v = t.value;
  switch (t.type) {
    case 'null':
      return null;
    case 'list':
    case 'array':
      return (v as Json[]).map(plain);
    case 'map': {
      const pairs = v as [Json, Json][];
      if (pairs.every(([k]) => k.type === 'string' || k.type === 'symbol')) {
        const o: Record<string, Json> = {};
        for (const [k, x] of pairs) o[k.value as string] = plain(x);
        return o;
      }
      return pairs.map(([k, x]) => [plain(k), plain(x)]);
    }
    case 'described':
      return { descriptor: plain(t.descriptor), value: plain(v) };
    default:
      return v;
  }
}
