#!/usr/bin/env node
'use strict';
// IoT telemetry, the device side: N devices, each with its OWN AMQP connection, spread round-robin
// over the given routers. Every device sends M durable telemetry messages (JSON body
// {device, seq, temp}) to `queue.telemetry` and waits until each one is accepted, that is
// stored by the broker pair the queue is waypointed to. Released or modified messages are sent
// again (at-least-once); a rejected one fails the run.
//
//   node examples/iot-telemetry/devices.js [--devices N] [--messages M] [--address ADDR]
//                                          [--timeout SECONDS] [ROUTER ...]
//
// ROUTER is a URL (amqp://127.0.0.1:5673), HOST:PORT or a port; default: the routers of
// examples/iot-telemetry/topology.yaml, 5672 5673 5674 on 127.0.0.1 (also from ROUTERS="...").
// Exits 0 once every message of every device is accepted.
const rhea = require('rhea');
const { describe, parseArgs, deviceName } = require('../common');

const opts = parseArgs('devices', 'usage: devices.js [--devices N] [--messages M] [--address ADDR] [--timeout SECONDS] [ROUTER ...]', process.argv.slice(2), { devices: 1000, messages: 5, address: 'queue.telemetry', timeout: 60 });
const urls = opts.urls.length ? opts.urls : (process.env.ROUTERS || '5672 5673 5674').split(/[\s,]+/).filter(Boolean).map(toUrl);
const N = opts.devices;
const M = opts.messages;
/** How many connections may be opening at once (keeps the routers' accept queues short). */
const CONNECTING_WINDOW = 100;

const started = Date.now();
const perRouter = urls.map(() => 0);
const routerIds = urls.map(() => '?');
const devices = [];
let connecting = 0;
let nextToOpen = 0;
let connected = 0;
let accepted = 0;
let resent = 0;
let finishedDevices = 0;
let done = false;

console.log(`devices: ${N} devices x ${M} messages to ${opts.address}, one connection each, round-robin over ${urls.join(', ')}`);

const container = rhea.create_container({ id: `iot-devices-${process.pid}` });

function openMore() {
  while (connecting < CONNECTING_WINDOW && nextToOpen < N) openDevice(nextToOpen++);
}

function openDevice(i) {
  const r = i % urls.length;
  const u = new URL(urls[r]);
  const dev = { name: deviceName(i, N), router: r, next: 0, accepted: new Set(), retry: [], finished: false };
  devices.push(dev);
  perRouter[r]++;
  connecting++;
  const conn = container.connect({
    host: u.hostname,
    port: Number(u.port || 5672),
    container_id: dev.name,
    reconnect: false,
    idle_time_out: 30000,
  });
  dev.conn = conn;
  conn.on('connection_open', (ctx) => {
    connecting--;
    connected++;
    routerIds[r] = (ctx.connection.remote.open && ctx.connection.remote.open.container_id) || routerIds[r];
    if (connected === N) console.log(`devices: ${N} connections open after ${elapsed()} (${perRouter.map((n, k) => `${n} on router ${routerIds[k]}`).join(', ')})`);
    openMore();
  });
  conn.on('connection_error', (ctx) => fail(`${dev.name}: connection refused by ${urls[r]}: ${describe(ctx.connection.error)}`));
  conn.on('disconnected', (ctx) => {
    if (!done) fail(`${dev.name}: lost its connection to ${urls[r]}${ctx.error ? `: ${ctx.error.message || ctx.error}` : ''}`);
  });
  const sender = conn.open_sender({ target: { address: opts.address } });
  dev.sender = sender;
  const pump = () => {
    while (sender.sendable()) {
      const seq = dev.retry.length ? dev.retry.shift() : dev.next < M ? dev.next++ : -1;
      if (seq < 0) return;
      const temp = Math.round((18 + 8 * Math.sin(i + seq / 3) + Math.random()) * 10) / 10;
      const delivery = sender.send({
        durable: true,
        content_type: 'application/json',
        body: JSON.stringify({ device: dev.name, seq, temp }),
      });
      delivery.seq = seq;
    }
  };
  sender.on('sendable', pump);
  sender.on('accepted', (ctx) => {
    const seq = ctx.delivery.seq;
    if (dev.accepted.has(seq)) return;
    dev.accepted.add(seq);
    accepted++;
    if (dev.accepted.size === M && !dev.finished) {
      dev.finished = true;
      finishedDevices++;
      if (finishedDevices === N) finish();
    }
  });
  const again = (ctx) => {
    resent++;
    dev.retry.push(ctx.delivery.seq);
    pump();
  };
  sender.on('released', again);
  sender.on('modified', again);
  sender.on('rejected', (ctx) => fail(`${dev.name}: message ${ctx.delivery.seq} rejected: ${describe(ctx.delivery.remote_state && ctx.delivery.remote_state.error)}`));
  sender.on('sender_error', (ctx) => fail(`${dev.name}: link to ${opts.address} refused: ${describe(ctx.sender.error)}`));
}

function finish() {
  done = true;
  clearInterval(progress);
  clearTimeout(deadline);
  const secs = (Date.now() - started) / 1000;
  console.log(`devices: ${accepted} of ${N * M} messages accepted (${N} devices x ${M}, ${resent} resent) in ${secs.toFixed(1)} s, ${Math.round(accepted / secs)} msg/s`);
  for (const d of devices) d.conn.close();
  // Leave once the close frames are out (or after a short grace for routers that never answer).
  let open = devices.length;
  const exit = () => process.exit(0);
  for (const d of devices) d.conn.once('connection_close', () => --open === 0 && exit());
  setTimeout(exit, 2000).unref();
}

function fail(why) {
  if (done) return;
  done = true;
  console.error(`devices: FAILED: ${why}`);
  process.exit(1);
}

const progress = setInterval(() => {
  console.log(`devices: ${elapsed()}: ${connected}/${N} connected, ${accepted}/${N * M} accepted, ${finishedDevices} devices done`);
}, 2000);
const deadline = setTimeout(() => {
  const missing = devices.filter((d) => !d.finished).slice(0, 5).map((d) => `${d.name} (${d.accepted.size}/${M})`);
  fail(`timed out after ${opts.timeout} s: ${accepted}/${N * M} accepted, ${connected}/${N} connected; unfinished: ${missing.join(', ')}${N - finishedDevices > 5 ? ', ...' : ''}` +
    (accepted === 0 && connected > 0 ? ` - no credit on ${opts.address}: is it waypointed to a running broker pair?` : ''));
}, opts.timeout * 1000);

if (N === 0 || M === 0) finish();
else openMore();

function elapsed() {
  return `${((Date.now() - started) / 1000).toFixed(1)} s`;
}
