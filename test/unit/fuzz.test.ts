/**
 * Seeded, bounded fuzzing without sockets.
 *
 * Codec: thousands of mutated encodings (message sections, performatives, generic values) go
 * through every decoder the router and broker apply to peer bytes: Reader, skipValue,
 * scanPerformative and the performative decoders, scanMessage. The only error allowed is
 * DecodeError (InvalidStringError is one); each decode must finish, and quickly.
 *
 * Engine: mutated client conversations (test/support/fuzz.ts) go into a server-side
 * Connection in random splits. onBytes must never throw, nothing may be logged as an internal
 * error (a TypeError inside a decoder would be), and what the connection charged to the budget
 * for incomplete deliveries must all come back once the socket is gone.
 *
 *   mutated bytes --> [Connection engine] --> recording handler (accepts links, settles)
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DecodeError, Reader, Writer, skipValue } from '../../amqp/codec';
import { MessageScan, scanMessage } from '../../router/protocol/message';
import {
  STATE, decodeAttach, decodeBegin, decodeDetach, decodeEndOrClose, decodeFlow, decodeOpen, decodeSaslInit, fieldValue,
  scan, scanPerformative,
} from '../../amqp/performatives';
import { ByteBudget, Connection, ConnectionHandler, ConnectionOptions, InDelivery, Link } from '../../amqp/engine/connection';
import { clientTraffic, mutate, pick, prng, richMessage } from '../support/fuzz';
import { runCleanConversations, runPolicyFuzz } from '../support/fuzz-policy';

const SEED = 0x5eed1;

/** Frames of a byte stream after its headers: [start, end) of each frame body. */
function frameBodies(b: Buffer, from: number): Buffer[] {
  const out: Buffer[] = [];
  let off = from;
  while (off + 8 <= b.length) {
    const size = b.readUInt32BE(off);
    if (size < 8 || off + size > b.length) break;
    out.push(b.subarray(off + b[off + 4] * 4, off + size));
    off += size;
  }
  return out;
}

/** Random nested values for the generic decoders. */
function randomValue(rand: () => number, depth = 0): unknown {
  switch (pick(rand, depth > 3 ? 6 : 9)) {
    case 0: return null;
    case 1: return rand() < 0.5;
    case 2: return pick(rand, 1 << 20) - (1 << 19);
    case 3: return 'str-' + 'é€'.repeat(pick(rand, 4)) + pick(rand, 1000);
    case 4: return Buffer.from([pick(rand, 256), pick(rand, 256)]);
    case 5: return rand() * 1e6;
    case 6: return Array.from({ length: pick(rand, 5) }, () => randomValue(rand, depth + 1));
    case 7: return Object.fromEntries(Array.from({ length: pick(rand, 4) }, (_, i) => [`k${i}`, randomValue(rand, depth + 1)]));
    default: return new Map([[pick(rand, 9), randomValue(rand, depth + 1)]]);
  }
}

/** Runs `fn`; anything thrown must be a DecodeError. Returns the time it took in ms. */
function onlyDecodeErrors(fn: () => void, what: () => string): number {
  const t0 = process.hrtime.bigint();
  try {
    fn();
  } catch (e) {
    if (!(e instanceof DecodeError)) assert.unreachable(`${what()}: ${(e as Error)?.name}: ${(e as Error)?.message}\n${(e as Error)?.stack}`);
  }
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Every decoder the router and broker run over peer bytes, applied to `b`. */
function decodeAll(b: Buffer): void {
  // Generic values, one after another, as management and the broker read bodies.
  const r = new Reader(b);
  while (r.off < r.end) r.read();
}

function skipAll(b: Buffer): void {
  let off = 0;
  while (off < b.length) off = skipValue(b, off, b.length);
}

function performative(b: Buffer): void {
  const code = scanPerformative(b, 0, b.length);
  for (let i = 0; i < scan.count; i++) fieldValue(i);
  switch (code) {
    case 0x10: decodeOpen(); break;
    case 0x11: decodeBegin(); break;
    case 0x12: decodeAttach(); break;
    case 0x13: decodeFlow(); break;
    case 0x16: decodeDetach(); break;
    case 0x17: case 0x18: decodeEndOrClose(); break;
    case 0x41: decodeSaslInit(); break;
  }
}

const ms = new MessageScan();
function message(b: Buffer): void {
  scanMessage(b, 0, b.length, ms, true);
}

test('codec: 24,000 mutated encodings raise nothing but DecodeError, each decode finishing fast', () => {
  const rand = prng(SEED);
  const traffic = clientTraffic('fuzz.q');
  const seeds: { kind: 'message' | 'performative' | 'value'; b: Buffer }[] = [];
  for (let i = 0; i < 4; i++) seeds.push({ kind: 'message', b: richMessage('fuzz.q', i) });
  for (const f of frameBodies(traffic, 8)) {
    // Frame bodies: the performative, and a transfer's payload as a message.
    try {
      scanPerformative(f, 0, f.length);
      seeds.push({ kind: 'performative', b: f.subarray(0, scan.next) });
    } catch { /* the SASL header region */ }
  }
  for (let i = 0; i < 20; i++) {
    const w = new Writer(256);
    w.value(randomValue(rand));
    seeds.push({ kind: 'value', b: w.take() });
  }
  let worst = 0, worstWhat = '';
  const cases = 24_000;
  for (let i = 0; i < cases; i++) {
    const s = seeds[i % seeds.length];
    const { bytes, ops } = mutate(s.b, rand);
    const what = () => `case ${i} (${s.kind}, ${ops.join(' ')}): ${bytes.toString('hex').slice(0, 200)}`;
    for (const fn of [decodeAll, skipAll, performative, message]) {
      const t = onlyDecodeErrors(() => fn(bytes), what);
      if (t > worst) {
        worst = t;
        worstWhat = `${fn.name} ${what()}`;
      }
    }
  }
  // Generous: the point is "finishes" (no 2^32-element loop), not a speed claim.
  assert.ok(worst < 250, `slowest decode took ${worst.toFixed(1)} ms: ${worstWhat}`);
});

test('codec: the hostile shapes the fuzzer aims at, directly (big counts over zero-width types, deep arrays)', () => {
  const h = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
  const hostile = [
    h('f0 00000005 ffffffff 40'), // 2^32-1 nulls in 10 bytes
    h('f0 00000005 ffffffff 45'), // ... empty lists
    h('f0 00000007 ffffffff 00 53 01 41'), // ... described trues
    h('d0 00000004 ffffffff'), // a list claiming 2^32-1 elements in no bytes
    h('d1 00000004 fffffffe'),
    h('f0 00000009 ffffffff 70 00000001'),
    h('b1 ffffffff 41'),
    Buffer.concat([...Array.from({ length: 2000 }, () => h('e0 ff 01 e0'))]), // arrays of arrays, 2000 deep
  ];
  for (const b of hostile) {
    for (const fn of [decodeAll, skipAll, message]) {
      const t = onlyDecodeErrors(() => fn(b), () => `${fn.name} ${b.toString('hex').slice(0, 60)}`);
      assert.ok(t < 250, `${fn.name}: ${t} ms`);
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Engine

const OPTS: ConnectionOptions = {
  containerId: 'fuzz-router', maxFrameSize: 16384, channelMax: 7, idleTimeoutMs: 0, maxMessageSize: 1 << 20, handleMax: 15,
  saslMechanisms: ['ANONYMOUS', 'PLAIN'], requireSasl: false, offeredCapabilities: ['ANONYMOUS-RELAY'], properties: {}, incomingWindow: 100,
};

class Handler implements ConnectionHandler {
  errors: string[] = [];
  onOpen(): void {}
  onAttach(link: Link, a: Parameters<ConnectionHandler['onAttach']>[1]): void {
    link.accept({}, a);
    if (!link.isSender) link.conn.setCredit(link, 10);
  }
  onFlow(): void {}
  onDelivery(link: Link, d: InDelivery): void {
    if (!d.settled) link.conn.updateIn(d, STATE.accepted, true);
  }
  onOutcome(): void {}
  onSessionWritable(): void {}
  onInSettled(): void {}
  onLinkGone(): void {}
  onClosed(): void {}
  log(level: string, msg: string): void {
    if (level === 'error') this.errors.push(msg);
  }
}

test('engine: 3,000 mutated client conversations never throw, never hit an internal error, and give back every byte they charged', () => {
  const rand = prng(SEED + 1);
  const traffic = clientTraffic('fuzz.q');
  const budget = new ByteBudget(1 << 30);
  for (let i = 0; i < 3000; i++) {
    const { bytes, ops } = mutate(traffic, rand, 0);
    const h = new Handler();
    const c = new Connection({ ...OPTS, incompleteBudget: budget }, h, 0);
    const what = `case ${i} (${ops.join(' ')})`;
    try {
      // Random splits: frames straddle chunks as they do on a socket.
      let off = 0;
      while (off < bytes.length && !c.closed) {
        const n = 1 + pick(rand, 600);
        c.onBytes(bytes.subarray(off, off + n), 0);
        c.takeOutput();
        off += n;
      }
    } catch (e) {
      assert.unreachable(`${what}: onBytes threw ${(e as Error).stack}`);
    }
    assert.equal(h.errors, [], `${what}: internal errors`);
    c.onSocketClosed('socket-closed');
    assert.is(c.incompleteBytes, 0, `${what}: connection charge after close`);
    assert.is(budget.used, 0, `${what}: budget charge after close`);
  }
});

// ---------------------------------------------------------------------------------------------
// Policy and authentication

//   mutated SASL (ANONYMOUS, PLAIN, SCRAM-SHA-256/1) + opens + links + messages --> [engine] --> policy handler
test('policy and SASL: 2,000 mutated conversations never throw or leak; the clean ones all authenticate and finish', () => {
  const clean = runCleanConversations();
  assert.equal(clean.problems, []);
  assert.is(clean.completed, 4);
  const tally = runPolicyFuzz(prng(SEED + 2), 2000);
  assert.equal(tally.crashes, []);
  assert.equal(tally.hangs, []);
  assert.ok((tally.refusals.auth ?? 0) > 0 && (tally.refusals.link ?? 0) > 0 && (tally.refusals.connection ?? 0) > 0, `refusals of every kind seen: ${JSON.stringify(tally.refusals)}`);
});

test.run();
