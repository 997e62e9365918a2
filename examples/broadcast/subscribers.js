#!/usr/bin/env node
'use strict';
// Broadcast over the mesh, the subscriber side: S subscribers, each with its own connection,
// spread round-robin over the given routers, all receiving from `multicast.news`. A multicast
// address gives every subscriber its own copy of every message, wherever it is connected.
//
// Before it says `ready`, it proves the mesh knows every subscriber: it publishes a probe from
// each router (application property kind=probe, not counted as news) until every subscriber has
// seen a probe from every router. A subscription takes a moment to spread over the mesh; a
// message published before that would reach only the subscribers already known.
//
// Then it waits until every subscriber has received each of the P news messages exactly once
// (publisher.js, application property kind=news, body {seq, headline}) and exits 0; on timeout
// it prints what is missing and exits 1.
//
//   node examples/broadcast/subscribers.js [--subscribers S] [--messages P] [--address ADDR]
//                                          [--timeout SECONDS] [ROUTER ...]
//
// ROUTER is a URL, HOST:PORT or a port; default 5672 5673 5674 on 127.0.0.1 (also ROUTERS="...").
const rhea = require('rhea');
const { describe, parseArgs } = require('../common');

const opts = parseArgs('subscribers', 'usage: subscribers.js [--subscribers S] [--messages P] [--address ADDR] [--timeout SECONDS] [ROUTER ...]', process.argv.slice(2), { subscribers: 6, messages: 10, address: 'multicast.news', timeout: 60 });
const urls = opts.urls.length ? opts.urls : (process.env.ROUTERS || '5672 5673 5674').split(/[\s,]+/).filter(Boolean).map(toUrl);
const S = opts.subscribers;
const P = opts.messages;
const PROBE_INTERVAL_MS = 200;

const container = rhea.create_container({ id: `news-subscribers-${process.pid}` });
const routerIds = urls.map(() => '?');
const subs = [];
let done = false;
let ready = false;
let opened = 0;
let probeTimer = null;
const probers = [];

console.log(`subscribers: ${S} subscribers on ${opts.address}, round-robin over ${urls.join(', ')}`);

function connect(r, id) {
  const u = new URL(urls[r]);
  const conn = container.connect({ host: u.hostname, port: Number(u.port || 5672), container_id: id, reconnect: false });
  conn.on('connection_open', (ctx) => {
    routerIds[r] = (ctx.connection.remote.open && ctx.connection.remote.open.container_id) || routerIds[r];
  });
  conn.on('connection_error', (ctx) => fail(`${id}: connection refused by ${urls[r]}: ${describe(ctx.connection.error)}`));
  conn.on('disconnected', (ctx) => {
    if (!done) fail(`${id}: lost its connection to ${urls[r]}${ctx.error ? `: ${ctx.error.message || ctx.error}` : ''}`);
  });
  return conn;
}

for (let i = 0; i < S; i++) {
  const r = i % urls.length;
  const sub = { name: `subscriber-${i + 1}`, router: r, probesFrom: new Set(), counts: new Uint32Array(P), distinct: 0, duplicates: 0 };
  subs.push(sub);
  sub.conn = connect(r, sub.name);
  const receiver = sub.conn.open_receiver({ source: { address: opts.address }, credit_window: 100 });
  receiver.on('receiver_error', (ctx) => fail(`${sub.name}: link from ${opts.address} refused: ${describe(ctx.receiver.error)}`));
  receiver.on('receiver_open', () => {
    if (++opened === S) startProbing();
  });
  receiver.on('message', (ctx) => {
    const m = ctx.message;
    const kind = m.application_properties && m.application_properties.kind;
    if (kind === 'probe') {
      sub.probesFrom.add(m.application_properties.from);
      if (!ready && subs.length === S && subs.every((s) => s.probesFrom.size === urls.length)) onReady();
      return;
    }
    const seq = m.body && m.body.seq;
    if (kind !== 'news' || !Number.isInteger(seq) || seq < 0 || seq >= P) return;
    if (sub.counts[seq]++ === 0) sub.distinct++;
    else sub.duplicates++;
    if (subs.every((s) => s.distinct === P)) finish();
  });
}

/** One probing sender per router; each round sends a probe from every router that has credit. */
function startProbing() {
  urls.forEach((_, r) => {
    const conn = connect(r, `news-prober-${r}-${process.pid}`);
    const sender = conn.open_sender({ target: { address: opts.address }, snd_settle_mode: 1 });
    probers.push({ conn, sender });
  });
  const round = () => {
    probers.forEach(({ sender }, r) => {
      if (sender.sendable()) sender.send({ application_properties: { kind: 'probe', from: r }, body: 'probe' });
    });
  };
  probeTimer = setInterval(round, PROBE_INTERVAL_MS);
  round();
}

function onReady() {
  ready = true;
  clearInterval(probeTimer);
  for (const p of probers) p.conn.close();
  const where = urls.map((u, r) => `${subs.filter((s) => s.router === r).length} on router ${routerIds[r]}`).join(', ');
  console.log(`subscribers: ready: ${S} subscribers (${where}) each reached from every router; waiting for ${P} messages`);
}

function finish() {
  if (done) return;
  done = true;
  clearTimeout(deadline);
  for (const s of subs) console.log(`  ${s.name} on router ${routerIds[s.router]}: ${s.distinct}/${P} messages${s.duplicates ? `, ${s.duplicates} DUPLICATES` : ''}`);
  const dups = subs.reduce((a, s) => a + s.duplicates, 0);
  if (dups) {
    console.error(`subscribers: FAILED: ${dups} duplicate deliveries (a multicast copy arrives once per subscriber)`);
    process.exit(1);
  }
  console.log(`subscribers: every one of ${S} subscribers got all ${P} messages, each exactly once`);
  for (const s of subs) s.conn.close();
  setTimeout(() => process.exit(0), 300).unref();
  let open = subs.length;
  for (const s of subs) s.conn.once('connection_close', () => --open === 0 && process.exit(0));
}

function fail(why) {
  if (done) return;
  done = true;
  console.error(`subscribers: FAILED: ${why}`);
  process.exit(1);
}

const deadline = setTimeout(() => {
  for (const s of subs) {
    const missing = [];
    s.counts.forEach((c, seq) => c === 0 && missing.push(seq));
    console.log(`  ${s.name} on router ${routerIds[s.router]}: ${s.distinct}/${P} messages${missing.length ? `, missing ${missing.join(' ')}` : ''}; probes from ${s.probesFrom.size}/${urls.length} routers`);
  }
  fail(ready ? `timed out after ${opts.timeout} s waiting for ${P} messages (is publisher.js running with --messages ${P}?)` : `timed out after ${opts.timeout} s: the mesh did not carry probes from every router to every subscriber`);
}, opts.timeout * 1000);

if (S === 0) fail('--subscribers must be at least 1');
