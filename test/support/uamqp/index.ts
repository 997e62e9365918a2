/**
 * Run the uAMQP (Debian python3-uamqp, Azure's AMQP 1.0 C stack) test client send_receive.py
 * from tests. uAMQP speaks TLS only: amqps://HOST:PORT or wss://HOST:PORT.
 *
 *   const c = await makeCerts(dir);
 *   const r = await runUamqp({ url: `amqps://127.0.0.1:${port}`, address: 'q', count: 5, ca: c.ca });
 *   assert.equal(r.code, 0); assert.equal(r.result.accepted, 5); assert.equal(r.result.received, 5);
 *
 *   const rx = startUamqp({ url, address: 'q', count: 5, ca: c.ca, mode: 'receive' });
 *   await rx.ready;            // the receiver link is attached
 *   ...send...
 *   const done = await rx.done;
 *
 * See README.md in this folder for the options, the JSON output and what uAMQP puts on the wire
 * (addresses are `amqps://HOST/ADDRESS` unless wireAddress: 'bare').
 */
import { spawnSync } from 'node:child_process';
import { JsonChild, JsonChildRun, startJsonChild } from '../json-child';

export type { JsonChild, JsonChildRun };
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Debian's interpreter: python3-uamqp is installed for it, not for a pyenv/venv python. */
export const PYTHON = process.env.UAMQP_PYTHON || '/usr/bin/python3';

export interface UamqpOptions {
  /** amqps://HOST:PORT, or wss://HOST:PORT for AMQP over WebSocket (over TLS; uAMQP has no plain ws). */
  url: string;
  /** Address to send to (and to receive from unless receiveAddress). */
  address: string;
  receiveAddress?: string;
  count: number;
  /** both (default): send count, then receive count; send; receive. */
  mode?: 'both' | 'send' | 'receive';
  /** url (default, uAMQP's own behaviour): `amqps://HOST/ADDRESS` on the wire; bare: `ADDRESS`. */
  wireAddress?: 'url' | 'bare';
  /** CA (PEM) that verifies the server. Without it uAMQP uses certifi's public bundle (so fails here). */
  ca?: string;
  /** Client certificate and key (PEM) for TLS client authentication. */
  cert?: string;
  key?: string;
  sasl?: 'ANONYMOUS' | 'PLAIN';
  user?: string;
  password?: string;
  /** Host in the addresses' URL and in the open frame (TLS still connects to/checks the URL's host). */
  hostname?: string;
  /** value (default): amqp-value string bodies; data: one data section (uAMQP's own default for str). */
  bodyType?: 'value' | 'data';
  bodyPrefix?: string;
  /** Seconds for the whole run (default 10). */
  timeout?: number;
  /** WebSocket resource path (uAMQP's default: /$servicebus/websocket/). */
  wsPath?: string;
  /** WebSocket subprotocol (uAMQP's default: AMQPWSB10). */
  wsProtocol?: string;
  containerId?: string;
  /** uAMQP's frame trace on stderr. */
  debug?: boolean;
}

export interface UamqpResult {
  sent: number;
  /** Sends that ended accepted (uAMQP's MessageState.SendComplete). */
  accepted: number;
  send_failed: number;
  received: number;
  bodies: (string | number | boolean | null)[];
  body_types: ('value' | 'data' | 'sequence' | 'none')[];
  timed_out: boolean;
  /** The target address of the sending link's attach, as put on the wire. */
  target?: string;
  /** The source address of the receiving link's attach, as put on the wire. */
  source?: string;
  /** On failure (exit code 1): exception class and text, e.g. "TimeoutError: sender not attached within --timeout". */
  error?: string;
}

/** Folder of send_receive.py (works from test/... and from dist/test/...). */
export function uamqpDir(): string {
  let dir = __dirname;
  for (;;) {
    const candidate = path.join(dir, 'test', 'support', 'uamqp');
    if (fs.existsSync(path.join(candidate, 'send_receive.py'))) return candidate;
    if (fs.existsSync(path.join(dir, 'send_receive.py'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`test/support/uamqp/send_receive.py not found above ${__dirname}`);
    dir = parent;
  }
}

let available: boolean | undefined;
/** True when PYTHON can import uamqp (use to skip tests on machines without it). */
export function uamqpAvailable(): boolean {
  if (available === undefined) {
    const r = spawnSync(PYTHON, ['-c', 'import uamqp'], { stdio: 'ignore' });
    available = r.status === 0;
  }
  return available;
}

/** send_receive.py's command line for `o`. */
export function uamqpArgs(o: UamqpOptions): string[] {
  const a = ['--url', o.url, '--address', o.address, '--count', String(o.count)];
  const opt = (flag: string, v: string | number | undefined) => {
    if (v !== undefined) a.push(flag, String(v));
  };
  opt('--receive-address', o.receiveAddress);
  opt('--mode', o.mode);
  opt('--wire-address', o.wireAddress);
  opt('--ca', o.ca);
  opt('--cert', o.cert);
  opt('--key', o.key);
  opt('--sasl', o.sasl);
  opt('--user', o.user);
  opt('--password', o.password);
  opt('--hostname', o.hostname);
  opt('--body-type', o.bodyType);
  opt('--body-prefix', o.bodyPrefix);
  opt('--timeout', o.timeout);
  opt('--ws-path', o.wsPath);
  opt('--ws-protocol', o.wsProtocol);
  opt('--container-id', o.containerId);
  if (o.debug) a.push('--debug');
  return a;
}

/** Starts send_receive.py (options, or its raw command line); `killAfterMs` backs up its --timeout. */
export function startUamqp(opts: UamqpOptions | string[], killAfterMs = 60000): JsonChild<UamqpResult> {
  const args = Array.isArray(opts) ? opts : uamqpArgs(opts);
  return startJsonChild<UamqpResult>(PYTHON, [path.join(uamqpDir(), 'send_receive.py'), ...args], killAfterMs);
}

/** Runs send_receive.py to completion. */
export function runUamqp(opts: UamqpOptions | string[], killAfterMs = 60000): Promise<JsonChildRun<UamqpResult>> {
  return startUamqp(opts, killAfterMs).done;
}
