// The router process: shutdown on signals, refusal of bad configuration files, the three
// configuration formats, and the command line.
// @runs-alone: shutdown times are asserted.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runProton, startProton } from '../support/proton';
import { BIN, RunningRouter, startRouter } from '../support/router';
import { rheaConnect, standaloneConfig, url, waitFor, withRouter } from './helpers';

interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `amqp-mesh ARGS` to completion (the router is killed if it is still up after `ms`). */
function cli(args: string[], ms = 8000): Promise<CliRun> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => p.kill('SIGKILL'), ms);
    p.on('exit', (code, signal) => {
      clearTimeout(t);
      // let the pipes finish
      p.stdout.on('end', () => undefined);
      setImmediate(() => resolve({ code, signal, stdout, stderr }));
    });
  });
}

function tmpFile(name: string, text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amqp-mesh-proc-'));
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
}

test('SIGTERM with clients connected: close frame with amqp:connection:forced, exit 0', async () => {
  // rhea client (a receiver attached)      \
  // proton receive.py (waiting, count 0)  ---> [R1]  <-- SIGTERM
  const r = await startRouter(standaloneConfig());
  try {
    const c = await rheaConnect(r);
    const rcv = c.conn.open_receiver('closest.shutdown');
    await waitFor(() => rcv.is_open(), 3000, 'rhea receiver attached');
    // Proton 0.37's handlers swallow amqp:connection:forced (they treat it as a plain disconnect
    // to allow reconnecting), so receive.py reports "disconnected": read the close frame from
    // Proton's frame trace instead.
    process.env.PN_TRACE_FRM = '1';
    const rx = startProton('receive.py', ['--url', url(r), '--address', 'closest.shutdown', '--count', '0', '--timeout', '20']);
    delete process.env.PN_TRACE_FRM;
    await rx.ready;
    const t0 = Date.now();
    const code = await r.stop();
    const ms = Date.now() - t0;
    assert.is(code, 0, 'exit code 0');
    assert.ok(ms < 4000, `stopped in ${ms} ms`);
    await waitFor(() => c.events.some((e) => e.name === 'connection_error' || e.name === 'connection_close'), 3000, 'rhea to see the close');
    const closeEv = c.events.find((e) => e.condition);
    assert.ok(closeEv, `rhea got a close with an error: ${JSON.stringify(c.events)}`);
    assert.is(closeEv!.condition, 'amqp:connection:forced');
    const d = await rx.done;
    assert.is.not(d.code, 0, 'receive.py reports the connection ended');
    assert.is(d.result.timed_out, false);
    assert.match(d.stderr, /<- @close\(24\) \[error=@error\(29\) \[condition=:"amqp:connection:forced"/, 'Proton got a close frame with amqp:connection:forced');
    assert.ok(r.log.some((l) => /SIGTERM/.test(l)), 'the router logs the signal');
  } finally {
    await r.stop();
  }
});

test('SIGINT: same as SIGTERM', async () => {
  // rhea client --> [R1] <-- SIGINT
  const r = await startRouter(standaloneConfig());
  try {
    const c = await rheaConnect(r);
    r.proc.kill('SIGINT');
    const code = await r.exited;
    assert.is(code, 0);
    await waitFor(() => c.events.some((e) => e.condition === 'amqp:connection:forced'), 3000, 'amqp:connection:forced at the client');
  } finally {
    await r.stop();
  }
});

interface BadCase {
  name: string;
  file: string;
  text: string;
  line: number;
  /** What the message must say (the valid choices). */
  says: RegExp[];
}

const BAD: BadCase[] = [
  {
    name: 'unknown attribute',
    file: 'router.conf',
    text: 'router {\n    mode: standalone\n    id: R1\n}\nlistener {\n    host: 127.0.0.1\n    prot: 0\n}\n',
    line: 7,
    says: [/"prot"/, /valid attributes: .*\bhost\b.*\bport\b/],
  },
  {
    name: 'bad port',
    file: 'router.conf',
    text: 'router {\n    id: R1\n}\nlistener {\n    host: 127.0.0.1\n    port: notaport\n}\n',
    line: 6,
    says: [/notaport/, /0 to 65535/, /"amqp"/, /"amqps"/],
  },
  {
    name: 'port out of range',
    file: 'router.conf',
    text: 'router {\n    id: R1\n}\nlistener {\n    host: 127.0.0.1\n    port: 70000\n}\n',
    line: 6,
    says: [/70000/, /0 to 65535/],
  },
  {
    name: 'unknown entity',
    file: 'router.conf',
    text: 'router {\n    id: R1\n}\nlistenr {\n    host: 127.0.0.1\n    port: 0\n}\n',
    line: 4,
    says: [/"listenr"/, /valid entities: .*\blistener\b.*\baddress\b/],
  },
  {
    name: 'YAML, a list where an integer belongs',
    file: 'router.yaml',
    text: 'router:\n  id: R1\nlistener:\n  - host: 127.0.0.1\n    port: 0\n    maxFrameSize: [1, 2]\n',
    line: 6,
    says: [/maxFrameSize/, /integer/],
  },
  {
    name: 'YAML, a value outside an enumeration',
    file: 'router.yml',
    text: '- router:\n    id: R1\n- listener:\n    host: 127.0.0.1\n    port: 0\n- address:\n    prefix: closest\n    distribution: nearest\n',
    line: 8,
    says: [/"nearest"/, /multicast/, /closest/, /balanced/],
  },
  {
    name: 'JSON, a string where an integer belongs',
    file: 'router.json',
    text: '{\n  "router": {"id": "R1"},\n  "listener": [\n    {"host": "127.0.0.1",\n     "port": 0,\n     "maxSessions": "many"}\n  ]\n}\n',
    line: 6,
    says: [/maxSessions/, /integer/],
  },
  {
    name: 'stripAnnotations outside its enumeration',
    file: 'router.conf',
    text: 'router {\n    id: R1\n}\nlistener {\n    host: 127.0.0.1\n    port: 0\n    stripAnnotations: sometimes\n}\n',
    line: 7,
    says: [/"sometimes"/, /\bin\b.*\bout\b.*\bboth\b.*\bno\b/],
  },
];

test('bad configurations: exit 1 (qdrouterd\'s) without listening; stderr names the file, the line and the valid choices', async () => {
  // amqp-mesh router -c BAD_FILE   (x8, in parallel)
  const runs = await Promise.all(BAD.map(async (b) => {
    const file = tmpFile(b.file, b.text);
    return { b, file, res: await cli(['router', '-c', file]) };
  }));
  for (const { b, file, res } of runs) {
    assert.is(res.code, 1, `${b.name}: exit 1 (got ${res.code}/${res.signal}): ${res.stderr}`);
    assert.not.match(res.stdout + res.stderr, /Listening on/, `${b.name}: never listened`);
    assert.ok(res.stderr.includes(`${file}:${b.line}:`), `${b.name}: stderr names ${file}:${b.line}: ${res.stderr}`);
    for (const re of b.says) assert.match(res.stderr, re, `${b.name}: ${res.stderr}`);
  }
});

test('a missing configuration file: exit 1, the file named', async () => {
  // amqp-mesh router -c /nonexistent
  const file = path.join(os.tmpdir(), `amqp-mesh-no-such-${process.pid}.conf`);
  const res = await cli(['router', '-c', file]);
  assert.is(res.code, 1);
  assert.ok(res.stderr.includes(file), res.stderr);
  assert.not.match(res.stdout + res.stderr, /Listening on/);
});

/** Routes one message closest and one multicast (2 consumers) through `r`. */
async function routes(r: RunningRouter, label: string): Promise<void> {
  const rx = startProton('receive.py', ['--url', url(r), '--address', 'anycast.cfg', '--count', '2', '--timeout', '6']);
  const m1 = startProton('receive.py', ['--url', url(r), '--address', 'fanout.cfg', '--count', '2', '--timeout', '6']);
  const m2 = startProton('receive.py', ['--url', url(r), '--address', 'fanout.cfg', '--count', '2', '--timeout', '6']);
  await Promise.all([rx.ready, m1.ready, m2.ready]);
  const [a, b] = await Promise.all([
    runProton('send.py', ['--url', url(r), '--address', 'anycast.cfg', '--count', '2', '--timeout', '6']),
    runProton('send.py', ['--url', url(r), '--address', 'fanout.cfg', '--count', '2', '--timeout', '6']),
  ]);
  assert.is(a.result.accepted, 2, `${label}: ${a.stderr}`);
  assert.is(b.result.accepted, 2, `${label}: ${b.stderr}`);
  for (const p of [rx, m1, m2]) assert.equal((await p.done).result.messages, ['message-0', 'message-1'], `${label}: fanout.cfg is multicast as configured`);
}

const CONF = `router {\n    mode: standalone\n    id: R1\n}\nlistener {\n    host: 127.0.0.1\n    port: 0\n}\naddress {\n    prefix: fanout\n    distribution: multicast\n}\naddress {\n    prefix: anycast\n    distribution: closest\n}\nlog {\n    module: DEFAULT\n    enable: info+\n}\n`;
const YAML_MAP = `router:\n  mode: standalone\n  id: R1\nlistener:\n  - host: 127.0.0.1\n    port: 0\naddress:\n  - prefix: fanout\n    distribution: multicast\n  - prefix: anycast\n    distribution: closest\n`;
const YAML_LIST = `- router:\n    mode: standalone\n    id: R1\n- listener:\n    host: 127.0.0.1\n    port: 0\n- address:\n    prefix: fanout\n    distribution: multicast\n- address:\n    pattern: anycast.#\n    distribution: closest\n`;
const JSON_MAP = JSON.stringify({
  router: { mode: 'standalone', id: 'R1' },
  listener: [{ host: '127.0.0.1', port: 0 }],
  address: [{ prefix: 'fanout', distribution: 'multicast' }, { prefix: 'anycast', distribution: 'closest' }],
}, null, 2);
const JSON_LIST = JSON.stringify([
  { router: { id: 'R1' } },
  { listener: { host: '127.0.0.1', port: 0 } },
  { address: { prefix: 'fanout', distribution: 'multicast' } },
], null, 2);

test('qdrouterd.conf, YAML (map and list) and JSON (map and list) configs boot and route alike', async () => {
  // proton send --> [R1 booted from FORMAT] --> proton receive (anycast.cfg)
  // proton send --> [R1 booted from FORMAT] --> proton receive x2 (fanout.cfg, multicast by config)
  const formats: [string, string, string][] = [
    ['conf', CONF, '.conf'],
    ['yaml map', YAML_MAP, '.yaml'],
    ['yaml list', YAML_LIST, '.yml'],
    ['json map', JSON_MAP, '.json'],
    ['json list', JSON_LIST, '.json'],
  ];
  await Promise.all(formats.map(([label, text, ext]) => withRouter((r) => routes(r, label), text, { ext })));
});

test('-c, --config and --config= all take the file', async () => {
  // amqp-mesh router {-c FILE | --config FILE | --config=FILE}  --> [R1] <-- rhea connects
  const file = tmpFile('router.conf', standaloneConfig());
  for (const args of [['-c', file], ['--config', file], [`--config=${file}`]]) {
    const p = spawn(process.execPath, [BIN, 'router', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => p.on('exit', (code) => resolve(code)));
    try {
      const m = await waitFor(() => out.match(/Listening on [^\s]+:(\d+)/), 8000, `${args.join(' ')}: listening`);
      const c = await rheaConnect({ port: Number(m[1]) });
      await c.close();
    } finally {
      p.kill('SIGTERM');
    }
    assert.is(await exited, 0, `${args.join(' ')}: exit 0 on SIGTERM`);
  }
});

test('command line: usage, --help, --version, unknown command, router without -c', async () => {
  // amqp-mesh [ | --help | --version | bogus | router]
  const [none, help, version, bogus, noFile, badArg] = await Promise.all([
    cli([]), cli(['--help']), cli(['--version']), cli(['bogus']), cli(['router']), cli(['router', '--nope']),
  ]);
  assert.match(none.stdout + none.stderr, /usage: amqp-mesh router -c FILE/, 'no args: usage');
  assert.is.not(none.code, 0, 'no args is not a successful run');
  assert.match(help.stdout, /usage: amqp-mesh router -c FILE/);
  assert.is(help.code, 0);
  assert.match(version.stdout.trim(), /^\d+\.\d+\.\d+/);
  assert.is(version.code, 0);
  assert.is(bogus.code, 2);
  assert.match(bogus.stderr, /unknown command "bogus"/);
  assert.match(bogus.stderr, /usage:/);
  assert.is(noFile.code, 2);
  assert.match(noFile.stderr, /-c FILE is required/);
  assert.is(badArg.code, 2);
  assert.match(badArg.stderr, /unknown argument "--nope"/);
});

test('qdrouterd attributes not implemented yet load with a warning', async () => {
  // amqp-mesh router -c FILE (router workerThreads, listener maxSessionFrames, a linkRoute) --> boots, warns
  const config = `router {\n    mode: standalone\n    id: R1\n    workerThreads: 8\n}\nlistener {\n    host: 127.0.0.1\n    port: 0\n    maxSessionFrames: 100\n}\n`;
  await withRouter(async (r) => {
    assert.ok(r.log.some((l) => /warning/.test(l) && /maxSessionFrames/.test(l)), `a warning names maxSessionFrames:\n${r.log.join('\n')}`);
    const c = await rheaConnect(r);
    await c.close();
  }, config);
});

test('a port already in use: the router exits non-zero and says which', async () => {
  // [R1 on port P] ; amqp-mesh router -c FILE (port P) --> refuses
  await withRouter(async (r) => {
    const file = tmpFile('router.conf', `router {\n    id: R2\n}\nlistener {\n    host: 127.0.0.1\n    port: ${r.port}\n}\n`);
    const res = await cli(['router', '-c', file]);
    assert.is.not(res.code, 0);
    assert.is.not(res.code, null, 'exited by itself');
    assert.ok(res.stderr.includes(String(r.port)), res.stderr);
    assert.not.match(res.stdout + res.stderr, /Listening on/);
  });
});

test('SIGTERM with a client that never reads: the router still exits 0, within seconds', async () => {
  // rhea client (socket paused: reads nothing, answers nothing) --> [R1] <-- SIGTERM
  const r = await startRouter(standaloneConfig());
  try {
    const c = await rheaConnect(r);
    c.conn.open_receiver('closest.deaf');
    await waitFor(() => r.log.some((l) => /Connection open/.test(l)), 3000, 'the connection');
    (c.conn as any).socket.pause();
    const t0 = Date.now();
    const code = await r.stop();
    const ms = Date.now() - t0;
    assert.is(code, 0);
    assert.ok(ms < 4500, `stopped in ${ms} ms`);
    // Let rhea read what the router sent (its close) so that it ends too.
    (c.conn as any).socket.resume();
    await waitFor(() => c.events.some((e) => e.condition === 'amqp:connection:forced'), 3000, 'the close frame, once the client reads');
  } finally {
    await r.stop();
  }
});

test('YAML: unquoted yes/no values (YAML 1.1 booleans) mean what they say', async () => {
  // proton send --> [R1 from YAML: stripAnnotations: no, authenticatePeer: no] --> proton receive --dump
  const yaml = 'router:\n  id: R1\nlistener:\n  - host: 127.0.0.1\n    port: 0\n    authenticatePeer: no\n    stripAnnotations: no\n';
  await withRouter(async (r) => {
    const rx = startProton('receive.py', ['--url', url(r), '--address', 'q.yaml', '--count', '1', '--dump', '--timeout', '5']);
    await rx.ready;
    const tx = await runProton('send.py', ['--url', url(r), '--address', 'q.yaml', '--count', '1', '--timeout', '5']);
    assert.is(tx.result.accepted, 1, tx.stderr);
    const m = (await rx.done).result.messages[0];
    const keys = (m.message_annotations?.value ?? []).map(([k]: [{ value: string }]) => k.value);
    assert.equal(keys, ['x-opt-qd.ingress', 'x-opt-qd.trace'], 'stripAnnotations: no is "no", not false/both');
  }, yaml, { ext: '.yaml' });
});

test.run();
