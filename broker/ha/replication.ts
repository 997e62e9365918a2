/**
 * haPolicy replication, the pure part (docs/decisions/0012-broker-replication.md): positions,
 * the election rule, the quorum rule, and the replication stream's frames.
 *
 * A group of `groupSize` members serves one logical broker. The live member's store changes are
 * numbered (`seq`, never reused across epochs) and streamed to the others; each follower applies
 * them to its own journal, syncs, and acknowledges. A change counts as durable once a quorum
 * (a majority of the group, the live included) has it on disk. Elections happen in ZooKeeper
 * (broker/io/zk-election.ts); the rule deciding who may claim is here.
 */
import type { QueueMeta, Recovered, TxOp } from '../store/types';

/** How far a member's store goes: the epoch of the live that wrote its last change, and that change's number. */
export interface Position {
  epoch: number;
  seq: number;
}

/** Orders positions: by epoch, then seq. */
export function comparePositions(a: Position, b: Position): number {
  return a.epoch !== b.epoch ? a.epoch - b.epoch : a.seq - b.seq;
}

/** A majority of the group. */
export function quorumOf(groupSize: number): number {
  return Math.floor(groupSize / 2) + 1;
}

/** A member as it announces itself in ZooKeeper. */
export interface MemberInfo {
  id: string;
  /** host:port of its replication listener. */
  repl: string;
  /** host and port of its client listener (for failover-server-list); port 0 while unknown. */
  host: string;
  port: number;
  /** `following` while it applies a live's stream, `candidate` while there is no live. */
  state: 'following' | 'candidate' | 'live';
  position: Position;
}

/** What a member does when the group has no live member. */
export type ElectionDecision =
  | { action: 'claim'; epoch: number }
  | { action: 'wait'; reason: 'no-quorum' | 'not-most-advanced'; candidates: number; leader: string | null };

/**
 * The election rule. A member may claim only when a quorum of the group stands as candidates
 * (their positions frozen: they no longer follow anyone) and it is the most advanced of them
 * (position, then id). Any change a quorum acknowledged is held by at least one member of any
 * quorum, so the most advanced candidate of a quorum holds them all. The new epoch is one more
 * than the newest the group has seen.
 */
export function decideElection(me: string, members: readonly MemberInfo[], groupSize: number, lastEpoch: number): ElectionDecision {
  const candidates = members.filter((m) => m.state === 'candidate');
  if (candidates.length < quorumOf(groupSize)) {
    return { action: 'wait', reason: 'no-quorum', candidates: candidates.length, leader: null };
  }
  let best = candidates[0];
  for (const m of candidates) {
    const c = comparePositions(m.position, best.position);
    if (c > 0 || (c === 0 && m.id < best.id)) best = m;
  }
  if (best.id === me) return { action: 'claim', epoch: lastEpoch + 1 };
  return { action: 'wait', reason: 'not-most-advanced', candidates: candidates.length, leader: best.id };
}

/**
 * The highest seq that a quorum holds, given each connected follower's acknowledged seq and the
 * live's own durable seq. Unknown members count as holding nothing.
 */
export function computeQuorumSeq(liveDurable: number, followerAcks: Iterable<number>, groupSize: number): number {
  const held = [liveDurable, ...followerAcks].sort((a, b) => b - a);
  const q = quorumOf(groupSize);
  return held.length >= q ? held[q - 1] : -1;
}

// ------------------------------------------------------------------ the stream's frames

/** One replicated store change. */
export type ReplOp =
  | { op: 'createQueue'; queue: string; meta: QueueMeta }
  | { op: 'deleteQueue'; queue: string }
  | { op: 'addMessage'; msgId: number; payload: Buffer }
  | { op: 'addRef'; queue: string; msgId: number }
  | { op: 'ack'; queue: string; msgId: number }
  | { op: 'setDeliveryCount'; queue: string; msgId: number; count: number }
  | { op: 'commitTx'; ops: TxOp[] };

/** Frame types of the replication stream. */
export const enum FrameType {
  /** follower -> live: JSON {group, id, epoch}. */
  Hello = 1,
  /** live -> follower: JSON {epoch, seq}: the follower's store is replaced by what follows up to SnapshotEnd. */
  SnapshotBegin = 2,
  /** live -> follower: one change, numbered. */
  Op = 3,
  /** live -> follower: JSON {epoch, seq}: the snapshot is complete at seq. */
  SnapshotEnd = 4,
  /** follower -> live: u64 seq durable on the follower. */
  Ack = 5,
  /** either way: JSON {reason}; the connection closes after it. */
  Refuse = 6,
}

/** Largest frame accepted (a message payload plus its header). */
export const MAX_FRAME_BYTES = 65 * 1024 * 1024 + 65536;

/** Thrown for a frame that breaks the stream's rules; the connection is closed. */
export class ReplicationProtocolError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ReplicationProtocolError';
  }
}

/** The reserved queue whose meta is the member's position; never shown to the broker core. */
export const POSITION_QUEUE = '$amqp-mesh.replication.position';

/** The position recorded in a recovered journal ({0, 0} when none), and the state without it. */
export function takePosition(rec: Recovered): Position {
  const q = rec.queues.get(POSITION_QUEUE);
  rec.queues.delete(POSITION_QUEUE);
  const m = q?.meta as { epoch?: unknown; seq?: unknown } | undefined;
  return { epoch: typeof m?.epoch === 'number' ? m.epoch : 0, seq: typeof m?.seq === 'number' ? m.seq : 0 };
}

/** A JSON frame's body, decoded; a body that is not JSON is a protocol error. */
export function decodeJsonBody(body: Buffer, what = 'frame body'): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw new ReplicationProtocolError(`${what} is not JSON`, { cause: e });
  }
}

/** A frame: u32 length (of type + body), u8 type, body. */
export function encodeFrame(type: FrameType, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out.writeUInt32BE(1 + body.length, 0);
  out[4] = type;
  body.copy(out, 5);
  return out;
}

/** A JSON frame. */
export function encodeJsonFrame(type: FrameType, value: unknown): Buffer {
  return encodeFrame(type, Buffer.from(JSON.stringify(value), 'utf8'));
}

/** An Ack frame. */
export function encodeAck(seq: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(BigInt(seq));
  return encodeFrame(FrameType.Ack, b);
}

/** How an Op frame's change is written: the frequent ones in binary, the rest as JSON. */
const enum OpKind {
  Json = 0,
  AddMessage = 1,
  AddRef = 2,
  Ack = 3,
}

/**
 * An Op frame: f64 seq, u8 kind, then by kind
 * - AddMessage: f64 msgId, the payload (the rest of the frame);
 * - AddRef, Ack: f64 msgId, u16 queue name length, the name (UTF-8);
 * - Json: u32 header length, JSON header (the op without payloads), the payloads of its
 *   messages in order.
 * Ids and seqs are safe integers, exact as f64. Bodies travel as bytes, never inside JSON.
 */
export function encodeOp(seq: number, op: ReplOp): Buffer {
  if (op.op === 'addMessage') {
    const head = Buffer.allocUnsafe(5 + 17);
    head.writeUInt32BE(1 + 17 + op.payload.length, 0);
    head[4] = FrameType.Op;
    head.writeDoubleBE(seq, 5);
    head[13] = OpKind.AddMessage;
    head.writeDoubleBE(op.msgId, 14);
    return Buffer.concat([head, op.payload], head.length + op.payload.length);
  }
  if ((op.op === 'addRef' || op.op === 'ack') && op.queue.length < 0x4000) {
    const qlen = Buffer.byteLength(op.queue, 'utf8');
    const out = Buffer.allocUnsafe(5 + 19 + qlen);
    out.writeUInt32BE(1 + 19 + qlen, 0);
    out[4] = FrameType.Op;
    out.writeDoubleBE(seq, 5);
    out[13] = op.op === 'addRef' ? OpKind.AddRef : OpKind.Ack;
    out.writeDoubleBE(op.msgId, 14);
    out.writeUInt16BE(qlen, 22);
    out.write(op.queue, 24, 'utf8');
    return out;
  }
  const payloads: Buffer[] = [];
  let header: unknown;
  if (op.op === 'commitTx') {
    header = {
      op: 'commitTx',
      ops: op.ops.map((o) => {
        if (o.op !== 'addMessage') return o;
        payloads.push(o.payload);
        return { op: 'addMessage', msgId: o.msgId, len: o.payload.length };
      }),
    };
  } else {
    header = op;
  }
  const h = Buffer.from(JSON.stringify(header), 'utf8');
  const head = Buffer.allocUnsafe(13);
  head.writeDoubleBE(seq, 0);
  head[8] = OpKind.Json;
  head.writeUInt32BE(h.length, 9);
  return encodeFrame(FrameType.Op, Buffer.concat([head, h, ...payloads]));
}

/** Decodes an Op frame's body. */
export function decodeOp(body: Buffer): { seq: number; op: ReplOp } {
  if (body.length < 9) throw new ReplicationProtocolError(`op frame of ${body.length} bytes is shorter than its 9-byte head`);
  const seq = body.readDoubleBE(0);
  if (!Number.isSafeInteger(seq) || seq < 0) throw new ReplicationProtocolError(`op seq ${seq} is not a non-negative integer`);
  const kind = body[8];
  if (kind === OpKind.AddMessage || kind === OpKind.AddRef || kind === OpKind.Ack) {
    if (body.length < 17) throw new ReplicationProtocolError(`op frame of ${body.length} bytes is shorter than its 17-byte head`);
    const msgId = body.readDoubleBE(9);
    if (!Number.isSafeInteger(msgId) || msgId < 0) throw new ReplicationProtocolError(`message id ${msgId} is not a non-negative integer`);
    if (kind === OpKind.AddMessage) return { seq, op: { op: 'addMessage', msgId, payload: Buffer.from(body.subarray(17)) } };
    if (body.length < 19) throw new ReplicationProtocolError('ref op without its queue name length');
    const qlen = body.readUInt16BE(17);
    if (19 + qlen !== body.length) throw new ReplicationProtocolError(`queue name of ${qlen} bytes does not fill the frame (${body.length - 19} bytes left)`);
    const queue = body.toString('utf8', 19, 19 + qlen);
    return { seq, op: { op: kind === OpKind.AddRef ? 'addRef' : 'ack', queue, msgId } };
  }
  if (kind !== OpKind.Json) throw new ReplicationProtocolError(`unknown op kind ${kind}`);
  if (body.length < 13) throw new ReplicationProtocolError(`op frame of ${body.length} bytes is shorter than its 13-byte head`);
  const hlen = body.readUInt32BE(9);
  if (13 + hlen > body.length) throw new ReplicationProtocolError(`op header of ${hlen} bytes overruns the frame`);
  const header = decodeJsonBody(body.subarray(13, 13 + hlen), 'op header') as Record<string, unknown>;
  let at = 13 + hlen;
  const take = (len: unknown): Buffer => {
    if (typeof len !== 'number' || !Number.isSafeInteger(len) || len < 0 || at + len > body.length) {
      throw new ReplicationProtocolError(`payload length ${String(len)} overruns the frame`);
    }
    const p = Buffer.from(body.subarray(at, at + len));
    at += len;
    return p;
  };
  let op: ReplOp;
  if (header.op === 'commitTx') {
    if (!Array.isArray(header.ops)) throw new ReplicationProtocolError('commitTx without ops');
    op = {
      op: 'commitTx',
      ops: (header.ops as Array<Record<string, unknown>>).map((o) => (o.op === 'addMessage' ? { op: 'addMessage', msgId: o.msgId as number, payload: take(o.len) } : (o as unknown as TxOp))),
    };
  } else if (['createQueue', 'deleteQueue', 'addRef', 'ack', 'setDeliveryCount'].includes(header.op as string)) {
    op = header as unknown as ReplOp;
  } else {
    throw new ReplicationProtocolError(`unknown op ${JSON.stringify(header.op)}`);
  }
  if (at !== body.length) throw new ReplicationProtocolError(`${body.length - at} bytes after the op`);
  return { seq, op };
}

/**
 * Splits a byte stream into frames. Push chunks as they arrive; complete frames come back in
 * order. A frame over MAX_FRAME_BYTES or of length 0 throws.
 */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Array<{ type: FrameType; body: Buffer }> {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Array<{ type: FrameType; body: Buffer }> = [];
    let at = 0;
    while (this.buf.length - at >= 4) {
      const len = this.buf.readUInt32BE(at);
      if (len === 0 || len > MAX_FRAME_BYTES) throw new ReplicationProtocolError(`frame length ${len} outside 1..${MAX_FRAME_BYTES}`);
      if (this.buf.length - at - 4 < len) break;
      out.push({ type: this.buf[at + 4] as FrameType, body: this.buf.subarray(at + 5, at + 4 + len) });
      at += 4 + len;
    }
    this.buf = at === this.buf.length ? Buffer.alloc(0) : this.buf.subarray(at);
    return out;
  }
}
