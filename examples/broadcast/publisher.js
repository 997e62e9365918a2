#!/usr/bin/env node
'use strict';
// Broadcast over the mesh, the publisher: sends P news messages (application property kind=news,
// body {seq, headline}) to `multicast.news` on one router. The mesh copies each message to every
// subscriber on every router; the publisher's delivery settles once every copy has, so
// `accepted` means every subscriber accepted it.
//
//   node examples/broadcast/publisher.js [--messages P] [--address ADDR] [--timeout SECONDS] [ROUTER]
//
// ROUTER is a URL, HOST:PORT or a port; default router A, amqp://127.0.0.1:5672 (also ROUTER=...).
// Start subscribers.js first and wait for its `ready`. Exits 0 once all P are accepted.
const rhea = require('rhea');
const { describe, toUrl, parseArgs } = require('../common');

const opts = parseArgs('publisher', 'usage: publisher.js [--messages P] [--address ADDR] [--timeout SECONDS] [ROUTER]', process.argv.slice(2), { messages: 10, address: 'multicast.news', timeout: 30 });
const url = opts.urls[0] || toUrl(process.env.ROUTER || '5672');
const P = opts.messages;
const HEADLINES = ['Mesh converges', 'Broker pair fails over in a second', 'Router learns new address', 'Queue drained', 'Link route opens'];
let routerId = '?';
let next = 0;
let accepted = 0;
let done = false;

const u = new URL(url);
const conn = rhea.create_container({ id: `news-publisher-${process.pid}` }).connect({ host: u.hostname, port: Number(u.port || 5672), reconnect: false });
conn.on('connection_open', (ctx) => {
  routerId = (ctx.connection.remote.open && ctx.connection.remote.open.container_id) || routerId;
});
conn.on('connection_error', (ctx) => fail(`connection refused by ${url}: ${describe(ctx.connection.error)}`));
conn.on('disconnected', (ctx) => {
  if (!done) fail(`cannot reach the router at ${url}${ctx.error ? `: ${ctx.error.message || ctx.error}` : ''}`);
});

// Credit comes only while the address has a subscriber somewhere in the mesh.
const sender = conn.open_sender({ target: { address: opts.address } });
sender.on('sender_error', (ctx) => fail(`link to ${opts.address} refused: ${describe(ctx.sender.error)}`));
sender.on('sendable', () => {
  if (next === 0) console.log(`publisher: on router ${routerId} (${url}); publishing ${P} messages to ${opts.address}`);
  while (sender.sendable() && next < P) {
    const seq = next++;
    sender.send({ application_properties: { kind: 'news' }, body: { seq, headline: `${HEADLINES[seq % HEADLINES.length]} (#${seq})` } }).seq = seq;
  }
});
sender.on('accepted', () => {
  if (++accepted === P) finish();
});
// Released: no subscriber at all when it arrived; rejected/modified: a subscriber refused it.
for (const outcome of ['released', 'rejected', 'modified']) {
  sender.on(outcome, (ctx) => fail(`message ${ctx.delivery.seq} was ${outcome}${outcome === 'released' ? ' (no subscribers?)' : ''}`));
}

function finish() {
  done = true;
  clearTimeout(deadline);
  console.log(`publisher: ${accepted}/${P} messages accepted by every subscriber`);
  conn.close();
  conn.once('connection_close', () => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}

function fail(why) {
  if (done) return;
  done = true;
  console.error(`publisher: FAILED: ${why}`);
  process.exit(1);
}

const deadline = setTimeout(() => {
  fail(next === 0 ? `timed out after ${opts.timeout} s: no credit on ${opts.address}, are subscribers.js running?` : `timed out after ${opts.timeout} s: ${accepted}/${P} accepted`);
}, opts.timeout * 1000);
if (P === 0) sender.once('sender_open', finish);
