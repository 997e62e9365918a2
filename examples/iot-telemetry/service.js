#!/usr/bin/env node
'use strict';
// IoT telemetry, the service side: one consumer on one router receiving from `queue.telemetry`
// (the broker pair holds the queue; the router brings its messages back through the waypoint)
// until it has K messages and every device's every seq, or it times out. Prints the count per
// device and checks that each (device, seq) of N devices x M messages arrived at least once
// (at-least-once: a resent message may arrive twice; duplicates are counted, not an error).
//
//   node examples/iot-telemetry/service.js [--devices N] [--messages M] [--count K]
//                                          [--address ADDR] [--timeout SECONDS] [ROUTER]
//
// ROUTER is a URL, HOST:PORT or a port; default router C, amqp://127.0.0.1:5674 (also ROUTER=...):
// the broker pair is on A, so what the service gets crosses the mesh on its way back.
// N and M must be what devices.js used (defaults 1000 and 5); K defaults to N x M.
// Exits 0 when everything arrived, 1 on timeout with what is missing.
const rhea = require('rhea');
const { describe, toUrl, parseArgs, deviceName } = require('../common');

const opts = parseArgs('service', 'usage: service.js [--devices N] [--messages M] [--count K] [--address ADDR] [--timeout SECONDS] [ROUTER]', process.argv.slice(2), { devices: 1000, messages: 5, count: -1, address: 'queue.telemetry', timeout: 60 });
const url = opts.urls[0] || toUrl(process.env.ROUTER || '5674');
const N = opts.devices;
const M = opts.messages;
const K = opts.count >= 0 ? opts.count : N * M;

const names = Array.from({ length: N }, (_, i) => deviceName(i, N));
const index = new Map(names.map((n, i) => [n, i]));
/** counts[device][seq]: how often each message arrived. */
const counts = names.map(() => new Uint32Array(M));
let received = 0;
let distinct = 0;
let duplicates = 0;
let unexpected = 0;
let done = false;
const started = Date.now();

const u = new URL(url);
const conn = rhea.create_container({ id: `iot-service-${process.pid}` }).connect({ host: u.hostname, port: Number(u.port || 5672), reconnect: false });
let routerId = '?';
conn.on('connection_open', (ctx) => {
  routerId = (ctx.connection.remote.open && ctx.connection.remote.open.container_id) || routerId;
});
conn.on('connection_error', (ctx) => fail(`connection refused by ${url}: ${describe(ctx.connection.error)}`));
conn.on('disconnected', (ctx) => {
  if (!done) fail(`cannot reach the router at ${url}${ctx.error ? `: ${ctx.error.message || ctx.error}` : ''}`);
});

const receiver = conn.open_receiver({ source: { address: opts.address }, credit_window: 500 });
receiver.on('receiver_open', () => {
  console.log(`service: receiving from ${opts.address} on router ${routerId} (${url}); expecting ${N} devices x ${M} messages${K !== N * M ? `, ${K} in all` : ''}`);
  check();
});
receiver.on('receiver_error', (ctx) => fail(`link from ${opts.address} refused: ${describe(ctx.receiver.error)}`));
receiver.on('message', (ctx) => {
  // Accepted automatically once this returns (rhea's autoaccept): the queue then forgets it.
  received++;
  let t;
  try {
    t = JSON.parse(typeof ctx.message.body === 'string' ? ctx.message.body : Buffer.from(ctx.message.body.content || ctx.message.body).toString('utf8'));
  } catch {
    t = null;
  }
  const d = t && index.get(t.device);
  if (d === undefined || !Number.isInteger(t.seq) || t.seq < 0 || t.seq >= M) {
    unexpected++;
  } else if (counts[d][t.seq]++ === 0) {
    distinct++;
  } else {
    duplicates++;
  }
  check();
});

function check() {
  if (!done && received >= K && distinct === N * M) finish();
}

function finish() {
  done = true;
  clearInterval(progress);
  clearTimeout(deadline);
  const secs = (Date.now() - started) / 1000;
  printPerDevice();
  console.log(`service: ${received} messages from ${N} devices in ${secs.toFixed(1)} s: every device/seq arrived (${distinct} distinct, ${duplicates} duplicates, ${unexpected} unexpected)`);
  conn.close();
  conn.once('connection_close', () => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}

/** Count per device, ten to a line: `device-0042 5`. */
function printPerDevice() {
  console.log('service: messages per device:');
  const cells = names.map((n, d) => `${n} ${counts[d].reduce((a, b) => a + b, 0)}`);
  const width = Math.max(0, ...cells.map((c) => c.length));
  for (let i = 0; i < cells.length; i += 10) console.log(`  ${cells.slice(i, i + 10).map((c) => c.padEnd(width)).join('  ')}`);
}

function fail(why) {
  if (done) return;
  done = true;
  console.error(`service: FAILED: ${why}`);
  process.exit(1);
}

const progress = setInterval(() => {
  console.log(`service: ${((Date.now() - started) / 1000).toFixed(1)} s: ${received} received, ${distinct}/${N * M} distinct`);
}, 2000);
const deadline = setTimeout(() => {
  const missing = [];
  for (let d = 0; d < N && missing.length < 10; d++) {
    for (let s = 0; s < M && missing.length < 10; s++) if (counts[d][s] === 0) missing.push(`${names[d]}#${s}`);
  }
  printPerDevice();
  fail(`timed out after ${opts.timeout} s: ${received}/${K} received, ${N * M - distinct} of ${N * M} device/seq missing (${missing.join(', ')}${N * M - distinct > missing.length ? ', ...' : ''})`);
}, opts.timeout * 1000);
