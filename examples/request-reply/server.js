#!/usr/bin/env node
'use strict';
// Request/reply across the mesh, the server: receives requests on `closest.rpc` and answers each
// one to its `reply_to` with the request's `correlation_id`. The reply address is usually a
// dynamic address on another router (amqp:/_topo/0/<router>/temp.*): the mesh routes the reply
// there by router, no broker involved. Replies go out on one anonymous sender (null target,
// per-message `to`), so one link serves every client.
//
//   node examples/request-reply/server.js [--address ADDR] [--name NAME] [--count N] [ROUTER]
//
// ROUTER is a URL, HOST:PORT or a port; default router C, amqp://127.0.0.1:5674 (also ROUTER=...).
// Serves until SIGINT/SIGTERM (or N requests with --count N), then exits 0.
// Request body {op: 'square', n}; reply body {n, result}, application properties {server, router}.
const rhea = require('rhea');
const { describe, toUrl, parseArgs } = require('../common');

const opts = parseArgs('server', 'usage: server.js [--address ADDR] [--name NAME] [--count N] [ROUTER]', process.argv.slice(2), { address: 'closest.rpc', name: `server-${process.pid}`, count: 0 });
const url = opts.urls[0] || toUrl(process.env.ROUTER || '5674');
let routerId = '?';
let served = 0;
let refused = 0;
let repliesLost = 0;
let stopping = false;

const u = new URL(url);
const conn = rhea.create_container({ id: opts.name }).connect({ host: u.hostname, port: Number(u.port || 5672), reconnect: false });
conn.on('connection_open', (ctx) => {
  routerId = (ctx.connection.remote.open && ctx.connection.remote.open.container_id) || routerId;
});
conn.on('connection_error', (ctx) => fail(`connection refused by ${url}: ${describe(ctx.connection.error)}`));
conn.on('disconnected', (ctx) => {
  if (!stopping) fail(`cannot reach the router at ${url}${ctx.error ? `: ${ctx.error.message || ctx.error}` : ''}`);
});

// One anonymous sender for every reply: the router always gives it credit.
const replies = conn.open_sender({ target: {} });
const backlog = [];
const flush = () => {
  while (backlog.length && replies.sendable()) {
    const m = backlog.shift();
    replies.send(m).to = m.to;
  }
};
replies.on('sendable', flush);
for (const outcome of ['released', 'modified', 'rejected']) {
  // The client left (its dynamic address went with its receiver) or refused the reply.
  replies.on(outcome, (ctx) => {
    if (++repliesLost <= 5) console.log(`server: a reply to ${ctx.delivery.to} was ${outcome}${repliesLost === 5 ? ' (not reporting more)' : ''}`);
  });
}

const requests = conn.open_receiver({ source: { address: opts.address }, autoaccept: false, credit_window: 100 });
requests.on('receiver_open', () => {
  console.log(`server: ready: ${opts.name} serving ${opts.address} on router ${routerId} (${url})`);
});
requests.on('receiver_error', (ctx) => fail(`link from ${opts.address} refused: ${describe(ctx.receiver.error)}`));
requests.on('message', (ctx) => {
  const req = ctx.message;
  const body = req.body && typeof req.body === 'object' ? req.body : {};
  const n = body.n;
  if (!req.reply_to || body.op !== 'square' || typeof n !== 'number') {
    refused++;
    ctx.delivery.reject({ condition: 'amqp:invalid-field', description: 'a request needs reply_to and body {op: "square", n: NUMBER}' });
    return;
  }
  const reply = {
    to: req.reply_to,
    correlation_id: req.correlation_id !== undefined ? req.correlation_id : req.message_id,
    application_properties: { server: opts.name, router: routerId },
    body: { n, result: n * n },
  };
  backlog.push(reply);
  flush();
  ctx.delivery.accept();
  served++;
  if (opts.count > 0 && served >= opts.count) stop('served --count requests');
});

function stop(why) {
  if (stopping) return;
  stopping = true;
  console.log(`server: ${why}: served ${served} requests (${refused} refused, ${repliesLost} replies not delivered)`);
  conn.close();
  conn.once('connection_close', () => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));

function fail(why) {
  if (stopping) return;
  stopping = true;
  console.error(`server: FAILED: ${why}`);
  process.exit(1);
}
