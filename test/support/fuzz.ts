/**
 * Deterministic fuzzing for the codec, engine and wire tests: a seeded PRNG, byte mutations that
 * hostile peers actually send (bit flips, truncations, huge counts and sizes, swapped format
 * codes, repeated or missing runs), and a recorded stream of valid client traffic built with
 * the codec (SASL, open, begin, attach, flow, transfers, disposition, detach, end, close).
 *
 * Everything is a function of the seed: a failing case is reproduced by its seed and index.
 */
import { Writer, fields, sym, symArray, timestamp, ubyte, uint, ulong } from '../../amqp/codec';
import { AMQP_HEADER, SASL_HEADER } from '../../amqp/frames';
import {
  D, beginFrame, endFrame, writeAttach, writeBegin, writeClose, writeDetach, writeDisposition, writeEnd, writeFlow,
  writeOpen, writeSaslInit, writeSaslResponse, STATE,
} from '../../amqp/performatives';
import { ScramClient, type StoredCredentials } from '../../amqp/sasl/scram';

/** mulberry32: a small, fast, seedable PRNG. Returns floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [0, n). */
export function pick(rand: () => number, n: number): number {
  return Math.floor(rand() * n);
}

/** Format codes a mutation may swap in: every constructor, compounds and zero-width ones included. */
const CODES = [
  0x00, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x60, 0x61,
  0x70, 0x71, 0x72, 0x73, 0x74, 0x80, 0x81, 0x82, 0x83, 0x84, 0x94, 0x98,
  0xa0, 0xa1, 0xa3, 0xb0, 0xb1, 0xb3, 0xc0, 0xc1, 0xd0, 0xd1, 0xe0, 0xf0,
];
const CODE_SET = new Set(CODES);

/** Big counts and sizes (as 4 bytes) that lie about what follows. */
const BIG = [0xffffffff, 0x7fffffff, 0x80000000, 0x00ffffff, 0x0000ffff, 0x10000];

/** Names of the mutation operators, in the order {@link mutate} picks them. */
export const MUTATIONS = ['bit-flip', 'random-byte', 'truncate', 'big-count', 'type-swap', 'repeat-run', 'drop-run', 'zero-or-ff'] as const;

/**
 * Returns a mutated copy of `input`: one to three operators applied at positions from `rand`.
 * `from` keeps the first bytes intact (e.g. the protocol headers) when set.
 */
export function mutate(input: Buffer, rand: () => number, from = 0): { bytes: Buffer; ops: string[] } {
  let b = Buffer.from(input);
  const ops: string[] = [];
  const n = 1 + pick(rand, 3);
  for (let k = 0; k < n && b.length > from; k++) {
    const op = MUTATIONS[pick(rand, MUTATIONS.length)];
    const at = from + pick(rand, b.length - from);
    ops.push(`${op}@${at}`);
    switch (op) {
      case 'bit-flip':
        b[at] ^= 1 << pick(rand, 8);
        break;
      case 'random-byte':
        b[at] = pick(rand, 256);
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'big-count': {
        const big = Buffer.alloc(4);
        big.writeUInt32BE(BIG[pick(rand, BIG.length)]);
        // Overwrite (a count or size in place) or insert (everything after shifts).
        if (rand() < 0.5 && at + 4 <= b.length) big.copy(b, at);
        else b = Buffer.concat([b.subarray(0, at), big, b.subarray(at)]);
        break;
      }
      case 'type-swap': {
        // Prefer a byte that already is a format code: a list becomes an array, a string binary...
        let p = at;
        for (let i = 0; i < 64 && !CODE_SET.has(b[p]); i++) p = from + pick(rand, b.length - from);
        b[p] = CODES[pick(rand, CODES.length)];
        break;
      }
      case 'repeat-run': {
        const len = 1 + pick(rand, Math.min(64, b.length - at));
        const times = 1 + pick(rand, 8);
        const run = b.subarray(at, at + len);
        b = Buffer.concat([b.subarray(0, at + len), ...Array.from({ length: times }, () => run), b.subarray(at + len)]);
        break;
      }
      case 'drop-run': {
        const len = 1 + pick(rand, Math.min(64, b.length - at));
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + len)]);
        break;
      }
      case 'zero-or-ff':
        b[at] = rand() < 0.5 ? 0x00 : 0xff;
        break;
    }
  }
  return { bytes: b, ops };
}

/** Writes one transfer frame (what a client sends; the engine writes its own inline). */
export function writeTransfer(
  w: Writer, channel: number, handle: number, id: number | null, payload: Buffer,
  o: { settled?: boolean; more?: boolean; aborted?: boolean; tag?: Buffer | null } = {},
): void {
  const f = beginFrame(w, 0, channel);
  w.descriptor(D.Transfer);
  const m = w.beginList();
  w.uint(handle);
  if (id === null) w.null();
  else w.uint(id);
  const tag = o.tag === undefined ? (id === null ? null : Buffer.from(`tag-${id}`)) : o.tag;
  if (tag === null) w.null();
  else w.binary(tag);
  if (id === null) w.null();
  else w.uint(0);
  w.boolean(o.settled ?? false);
  w.boolean(o.more ?? false);
  let n = 6;
  if (o.aborted) {
    w.null();
    w.null();
    w.null();
    w.boolean(true);
    n = 10;
  }
  w.endList(m, n);
  w.bytes(payload);
  endFrame(w, f);
}

/** A message with every section, so a mutation can land on any type the sections use. */
export function richMessage(to: string, i: number): Buffer {
  const w = new Writer(1024);
  w.descriptor(D.Header);
  w.value([true, ubyte(5), uint(1000)]);
  w.descriptor(D.MessageAnnotations);
  w.value(fields({ 'x-opt-app': 'annotated', 'x-opt-n': i, 'x-opt-list': symArray(['a', 'bb', 'ccc']) }));
  w.descriptor(D.Properties);
  w.value([`id-${i}`, Buffer.from('user'), to, 'subject', 'reply.here', null, sym('text/plain'), null, timestamp(1_700_000_000_000), null, 'group', uint(i)]);
  w.descriptor(D.ApplicationProperties);
  w.value({ color: 'blue', weight: i * 1.5, count: ulong(7), when: timestamp(1_700_000_000_001), tags: ['x', 'y', 'z'], nested: { deep: [1, 2, { deeper: null }] } });
  w.descriptor(i % 2 === 0 ? D.AmqpValue : D.Data);
  if (i % 2 === 0) w.value({ body: `message ${i}`, n: i, list: [true, false, null] });
  else w.binary(Buffer.from(`payload ${i} `.repeat(8)));
  return w.take();
}

/**
 * How a fuzz conversation authenticates. SCRAM needs the server's nonce and the user's stored
 * credentials to write the client-final message ahead of the server-first one (the server under
 * test is given the same nonce).
 */
export type FuzzSasl =
  | { mechanism: 'ANONYMOUS' }
  | { mechanism: 'PLAIN'; user: string; password: string }
  | { mechanism: 'SCRAM-SHA-256' | 'SCRAM-SHA-1'; user: string; password: string; serverNonce: string; credentials: StoredCredentials };

function writeSasl(w: Writer, sasl: FuzzSasl): void {
  if (sasl.mechanism === 'ANONYMOUS') return writeSaslInit(w, 'ANONYMOUS', Buffer.from('fuzz'), null);
  if (sasl.mechanism === 'PLAIN') return writeSaslInit(w, 'PLAIN', Buffer.from(`\0${sasl.user}\0${sasl.password}`), 'localhost');
  const client = new ScramClient(sasl.mechanism, sasl.user, sasl.password, 'fuzzclientnonce');
  writeSaslInit(w, sasl.mechanism, client.first(), 'localhost');
  const c = sasl.credentials;
  const serverFirst = Buffer.from(`r=fuzzclientnonce${sasl.serverNonce},s=${c.salt.toString('base64')},i=${c.iterations}`);
  writeSaslResponse(w, client.final(serverFirst));
}

/**
 * A valid client conversation as one byte stream, built with the codec: SASL ANONYMOUS, open,
 * two sessions, a receiver and a sender on `address` (and an anonymous sender), credit, single
 * and multi-frame transfers, an aborted delivery, a disposition, detaches, ends and close.
 * `maxFrameSize` bounds the multi-frame delivery's frames.
 */
export function clientTraffic(address: string, o: { maxFrameSize?: number; sasl?: FuzzSasl; hostname?: string } = {}): Buffer {
  const w = new Writer(8192);
  const max = o.maxFrameSize ?? 512;
  w.bytes(SASL_HEADER);
  writeSasl(w, o.sasl ?? { mechanism: 'ANONYMOUS' });
  w.bytes(AMQP_HEADER);
  writeOpen(w, { containerId: 'fuzz-client', hostname: o.hostname ?? 'localhost', maxFrameSize: 65536, channelMax: 7, idleTimeout: 0, offeredCapabilities: ['ANONYMOUS-RELAY'], properties: { product: 'fuzz', version: '1' } });
  writeBegin(w, 0, null, 0, 1000, 1000, 15);
  writeAttach(w, 0, { name: 'fuzz-rx', handle: 0, role: true, sndSettleMode: 0, rcvSettleMode: 0, source: { type: 'source', address, capabilities: ['queue'] }, target: { type: 'target', address: null } });
  writeFlow(w, 0, 0, 1000, 0, 1000, 0, 0, 20, false);
  writeAttach(w, 0, { name: 'fuzz-tx', handle: 1, role: false, sndSettleMode: 0, rcvSettleMode: 0, source: { type: 'source', address: null }, target: { type: 'target', address }, initialDeliveryCount: 0 });
  writeAttach(w, 0, { name: 'fuzz-anon', handle: 2, role: false, sndSettleMode: 0, rcvSettleMode: 0, source: { type: 'source', address: null }, target: null, initialDeliveryCount: 0 });
  let id = 0;
  writeTransfer(w, 0, 1, id++, richMessage(address, 0));
  writeTransfer(w, 0, 1, id++, richMessage(address, 1), { settled: true });
  // One delivery in three frames (the delivery-id repeated, then omitted), then an aborted one.
  const big = richMessage(address, 2);
  const third = Math.max(1, Math.min(max - 64, Math.ceil(big.length / 3)));
  writeTransfer(w, 0, 1, id, big.subarray(0, third), { more: true });
  writeTransfer(w, 0, 1, id, big.subarray(third, 2 * third), { more: true, tag: null });
  writeTransfer(w, 0, 1, null, big.subarray(2 * third), { tag: null });
  id++;
  writeTransfer(w, 0, 1, id++, big.subarray(0, third), { more: true });
  writeTransfer(w, 0, 1, null, Buffer.alloc(0), { aborted: true, tag: null });
  writeTransfer(w, 0, 2, id++, richMessage(address, 3));
  writeDisposition(w, 0, true, 0, 1, true, STATE.accepted);
  writeBegin(w, 1, null, 0, 100, 100, 3);
  writeAttach(w, 1, { name: 'fuzz-rx-2', handle: 0, role: true, sndSettleMode: 1, rcvSettleMode: 0, source: { type: 'source', address: `${address}.other` }, target: null });
  writeFlow(w, 1, 0, 100, 0, 100, 0, 0, 5, true, true);
  writeDetach(w, 1, 0, true, { condition: 'amqp:internal-error', description: 'fuzz', info: { k: 'v' } });
  writeEnd(w, 1, null);
  writeDetach(w, 0, 2, true, null);
  writeDetach(w, 0, 1, true, null);
  writeDetach(w, 0, 0, false, null);
  writeEnd(w, 0, null);
  writeClose(w, null);
  return w.take();
}

/** Offset of the first byte after the two protocol headers and the SASL frame in {@link clientTraffic}. */
export function afterHeaders(traffic: Buffer): number {
  // SASL header (8), sasl-init frame (its size), AMQP header (8).
  return 8 + traffic.readUInt32BE(8) + 8;
}

/** Offset of the first transfer frame in {@link clientTraffic} (where a client would wait for credit). */
export function firstTransferAt(traffic: Buffer): number {
  let off = afterHeaders(traffic);
  while (off + 8 <= traffic.length) {
    const size = traffic.readUInt32BE(off);
    const body = off + traffic[off + 4] * 4;
    if (traffic[body] === 0x00 && traffic[body + 1] === 0x53 && traffic[body + 2] === D.Transfer) return off;
    off += size;
  }
  return traffic.length;
}
