/**
 * Runs a test client that prints {"event":"ready",...} on stderr once attached and one JSON line
 * on stdout at the end: the convention of the Proton, uAMQP and qpid-jms clients here.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';

export interface JsonChildRun<R> {
  /** Exit code (0 = done, or timed out while receiving; non-zero = error, see result.error). */
  code: number | null;
  /** The last JSON line printed on stdout (undefined if none). */
  result: R;
  stderr: string;
}

export interface JsonChild<R> {
  /** Resolves on the child's {"event":"ready"} stderr line (receiving modes only). */
  ready: Promise<Record<string, unknown>>;
  done: Promise<JsonChildRun<R>>;
  kill(): void;
}

/** Starts `cmd args`; `killAfterMs` is a safety net on top of the client's own timeout. */
export function startJsonChild<R>(cmd: string, args: string[], killAfterMs = 60000, env?: NodeJS.ProcessEnv): JsonChild<R> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
  let out = '';
  let err = '';
  let errLine = '';
  let isReady = false;
  let readyResolve: (v: Record<string, unknown>) => void = () => undefined;
  let readyReject: (e: Error) => void = () => undefined;
  const ready = new Promise<Record<string, unknown>>((res, rej) => {
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
          const ev = JSON.parse(line) as Record<string, unknown>;
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
  const done = new Promise<JsonChildRun<R>>((resolve, reject) => {
    child.on('error', (e) => {
      clearTimeout(timer);
      readyReject(e);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').filter((l) => l.startsWith('{')).pop();
      let result = undefined as unknown as R;
      if (line) {
        try {
          result = JSON.parse(line) as R;
        } catch {
          /* left undefined */
        }
      }
      if (!isReady) readyReject(new Error(`${path.basename(cmd)} exited (${code}) before ready: ${line ?? err.trim()}`));
      resolve({ code, result, stderr: err });
    });
  });
  return { ready, done, kill: () => child.kill('SIGKILL') };
}
