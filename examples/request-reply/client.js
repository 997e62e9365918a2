#!/usr/bin/env node
'use strict';
// Request/reply across the mesh, the client: opens a dynamic receiver (source dynamic: true) on
// its router, which names it a reply address of its own (amqp:/_topo/0/<router>/temp.*); sends
// N requests to `closest.rpc` with that reply_to and a correlation_id each; and checks that
// every request gets exactly one correct reply. The server is on another router: requests reach
// it by the mobile address, replies come back by router address; nothing is stored anywhere.
//
//   node examples/request-reply/client.js [--requests N] [--address ADDR] [--timeout SECONDS] [ROUTER]
//
// ROUTER is a URL, HOST:PORT or a port; default router A, amqp://127.0.0.1:5672 (also ROUTER=...).
// Start server.js first (on another router). Exits 0 when every reply arrived and was right.
const rhea = require('rhea');
const { describe, toUrl, parseArgs } = require('../common');

const opts = parseArgs('client', 'usage: client.js [--requests N] [--address ADDR] [--timeout SECONDS] [ROUTER]', process.argv.slice(2), { requests: 100, address: 'closest.rpc', timeout: 30 });
const url = opts.urls[0] || toUrl(process.env.ROUTER || '5672');
const N = opts.requests;
let routerId = '?';
let replyTo = null;
let done = false;
const sentAt = new Map();
const rtts = [];
const servers = new Map();
let resent = 0;
let nextRequest = 0;
const retry = [];

const u = new URL(url);
const conn = rhea.create_container({ id: `rpc-client-${process.pid}` }).connect({ host: u.hostname, port: Number(u.port || 5672), reconnect: false });
conn.on('connection_open', (ctx) => {
  routerId = (ctx.connection.remote.open && ctx.connection.remote.open.container_id) || routerId;
});
conn.on('connection_error', (ctx) => fail(`connection refused by ${url}: ${describe(ctx.connection.error)}`));
conn.on('disconnected', (ctx) => {
  if (!done) fail(`cannot reach the router at ${url}${ctx.error ? `: ${ctx.error.message || ctx.error}` : ''}`);
});

// The router picks the address of a dynamic receiver and tells us in the attach reply.
const replies = conn.open_receiver({ source: { dynamic: true }, credit_window: 200 });
replies.on('receiver_error', (ctx) => fail(`dynamic receiver refused: ${describe(ctx.receiver.error)}`));
replies.on('receiver_open', () => {
  replyTo = replies.source.address;
  console.log(`client: on router ${routerId} (${url}); reply address ${replyTo}`);
  const requests = conn.open_sender({ target: { address: opts.address } });
  const pump = () => {
    while (requests.sendable()) {
      const i = retry.length ? retry.shift() : nextRequest < N ? nextRequest++ : -1;
      if (i < 0) return;
      const correlationId = `req-${i}`;
      sentAt.set(correlationId, performance.now());
      requests.send({ message_id: `${correlationId}-${Date.now()}`, correlation_id: correlationId, reply_to: replyTo, body: { op: 'square', n: i } }).i = i;
    }
  };
  requests.on('sendable', () => {
    if (nextRequest === 0) console.log(`client: ${opts.address} has a server; sending ${N} requests`);
    pump();
  });
  // Released: no server took it (one left between credit and delivery): ask again.
  for (const outcome of ['released', 'modified']) {
    requests.on(outcome, (ctx) => {
      resent++;
      retry.push(ctx.delivery.i);
      pump();
    });
  }
  requests.on('rejected', (ctx) => fail(`request ${ctx.delivery.i} rejected: ${describe(ctx.delivery.remote_state && ctx.delivery.remote_state.error)}`));
  requests.on('sender_error', (ctx) => fail(`link to ${opts.address} refused: ${describe(ctx.sender.error)}`));
});

const answered = new Set();
replies.on('message', (ctx) => {
  const m = ctx.message;
  const id = String(m.correlation_id);
  const i = Number(id.replace(/^req-/, ''));
  if (!sentAt.has(id)) return fail(`a reply with an unknown correlation_id ${id}`);
  if (answered.has(id)) return fail(`a second reply to ${id}`);
  if (!m.body || m.body.n !== i || m.body.result !== i * i) return fail(`wrong reply to ${id}: ${JSON.stringify(m.body)}`);
  answered.add(id);
  rtts.push(performance.now() - sentAt.get(id));
  const p = m.application_properties || {};
  const who = `${p.server} on router ${p.router}`;
  servers.set(who, (servers.get(who) || 0) + 1);
  if (answered.size === N) finish();
});

function finish() {
  done = true;
  clearTimeout(deadline);
  rtts.sort((a, b) => a - b);
  const pct = (q) => rtts[Math.min(rtts.length - 1, Math.floor(q * rtts.length))].toFixed(1);
  console.log(`client: served by ${[...servers].map(([who, n]) => `${who} (${n})`).join(', ') || 'nobody'}`);
  console.log(`client: ${answered.size}/${N} replies correct, each correlated to its request, ${resent} resent; round trip p50 ${N ? pct(0.5) : '-'} ms, max ${N ? pct(1) : '-'} ms`);
  conn.close();
  conn.once('connection_close', () => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}

function fail(why) {
  if (done) return;
  done = true;
  console.error(`client: FAILED: ${why}`);
  process.exit(1);
}

const deadline = setTimeout(() => {
  fail(nextRequest === 0 && replyTo
    ? `timed out after ${opts.timeout} s: no credit on ${opts.address}, is server.js running?`
    : `timed out after ${opts.timeout} s: ${answered.size}/${N} replies`);
}, opts.timeout * 1000);
if (N === 0) replies.once('receiver_open', finish);
