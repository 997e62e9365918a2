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
import { spawnSync } from 'child_process';
import { startJsonChild } from '../json-child';
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
  | 'tx.py'
  | 'mgmt_request.py';

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
  return startJsonChild<Json>(PYTHON, [path.join(protonDir(), script), ...args], killAfterMs);
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
