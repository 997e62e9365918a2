/**
 * haPolicy replication's pure part (broker/ha/replication.ts), without sockets or ZooKeeper: the
 * election rule, the quorum rule, and the stream's frames byte by byte.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  FrameReader, FrameType, MAX_FRAME_BYTES, MemberInfo, ReplicationProtocolError, comparePositions, computeQuorumSeq, decideElection,
  decodeOp, encodeAck, encodeFrame, encodeOp, quorumOf,
} from '../../broker/ha/replication';

const member = (id: string, epoch: number, seq: number, state: MemberInfo['state'] = 'candidate'): MemberInfo => ({
  id, repl: `127.0.0.1:${1000 + id.charCodeAt(0)}`, host: '127.0.0.1', port: 1, state, position: { epoch, seq },
});

test('quorum: a majority of the group', () => {
  assert.equal([1, 2, 3, 4, 5, 6, 7].map(quorumOf), [1, 2, 2, 3, 3, 4, 4]);
});

test('positions order by epoch, then seq', () => {
  assert.ok(comparePositions({ epoch: 2, seq: 1 }, { epoch: 1, seq: 900 }) > 0);
  assert.ok(comparePositions({ epoch: 1, seq: 5 }, { epoch: 1, seq: 6 }) < 0);
  assert.is(comparePositions({ epoch: 3, seq: 3 }, { epoch: 3, seq: 3 }), 0);
});

test('election: without a quorum of candidates nobody claims', () => {
  const d = decideElection('a', [member('a', 1, 10), member('b', 1, 5, 'following')], 3, 1);
  assert.equal(d, { action: 'wait', reason: 'no-quorum', candidates: 1, leader: null });
});

test('election: the most advanced candidate of a quorum claims epoch last + 1; the others wait for it', () => {
  const ms = [member('a', 1, 10), member('b', 1, 12), member('c', 1, 11)];
  assert.equal(decideElection('b', ms, 3, 4), { action: 'claim', epoch: 5 });
  assert.equal(decideElection('a', ms, 3, 4), { action: 'wait', reason: 'not-most-advanced', candidates: 3, leader: 'b' });
  // A newer epoch beats a longer log of an older one (that log was never all acknowledged).
  assert.equal(decideElection('a', [member('a', 2, 1), member('b', 1, 99)], 3, 2), { action: 'claim', epoch: 3 });
  // Equal positions: the smallest id, so every member reaches the same answer.
  assert.equal(decideElection('x', [member('y', 1, 1), member('x', 1, 1)], 3, 1), { action: 'claim', epoch: 2 });
});

test('election: a member still following is not a candidate (its position may still move)', () => {
  const ms = [member('a', 1, 10), member('b', 1, 50, 'following'), member('c', 1, 9)];
  assert.equal(decideElection('a', ms, 3, 1), { action: 'claim', epoch: 2 });
  assert.equal(decideElection('a', ms, 5, 1).action, 'wait');
});

test('quorum seq: the highest seq a majority (the live included) holds', () => {
  assert.is(computeQuorumSeq(100, [90, 40], 3), 90);
  assert.is(computeQuorumSeq(100, [], 3), -1, 'the live alone is not a quorum of three');
  assert.is(computeQuorumSeq(100, [], 1), 100, 'a group of one');
  assert.is(computeQuorumSeq(50, [90, 80], 3), 80, 'followers ahead of the live\'s own sync');
  assert.is(computeQuorumSeq(100, [90, 80, 10, 5], 5), 80);
});

test('frames: length, type, body, byte for byte', () => {
  assert.equal([...encodeFrame(FrameType.Hello, Buffer.from('ab'))], [0, 0, 0, 3, 1, 0x61, 0x62]);
  assert.equal([...encodeAck(258)], [0, 0, 0, 9, 5, 0, 0, 0, 0, 0, 0, 1, 2]);
});

test('op frames: f64 seq, kind, then the frequent changes in binary and the rest as JSON', () => {
  const m = encodeOp(7, { op: 'addMessage', msgId: 3, payload: Buffer.from([0xff, 0x00]) });
  assert.equal([...m.subarray(0, 5)], [0, 0, 0, 1 + 8 + 1 + 8 + 2, FrameType.Op]);
  assert.is(m.readDoubleBE(5), 7);
  assert.is(m[13], 1, 'kind AddMessage');
  assert.is(m.readDoubleBE(14), 3);
  assert.equal([...m.subarray(22)], [0xff, 0x00]);

  const r = encodeOp(8, { op: 'ack', queue: 'qé', msgId: 4 });
  assert.equal([...r.subarray(0, 5)], [0, 0, 0, 1 + 8 + 1 + 8 + 2 + 3, FrameType.Op]);
  assert.is(r[13], 3, 'kind Ack');
  assert.is(r.readDoubleBE(14), 4);
  assert.is(r.readUInt16BE(22), 3, 'queue name length in UTF-8 bytes');
  assert.is(r.subarray(24).toString('utf8'), 'qé');

  const j = encodeOp(9, { op: 'deleteQueue', queue: 'q' });
  const header = Buffer.from('{"op":"deleteQueue","queue":"q"}');
  assert.is(j[13], 0, 'kind Json');
  assert.is(j.readUInt32BE(14), header.length);
  assert.ok(j.subarray(18).equals(header));
});

test('op frames round-trip, a transaction with two bodies included', () => {
  const ops = [
    { op: 'createQueue', queue: 'q', meta: { durable: true } },
    { op: 'deleteQueue', queue: 'q' },
    { op: 'addRef', queue: 'q', msgId: 1 },
    { op: 'ack', queue: 'q', msgId: 1 },
    { op: 'setDeliveryCount', queue: 'q', msgId: 1, count: 4 },
    { op: 'addMessage', msgId: 9, payload: Buffer.from('body') },
    { op: 'commitTx', ops: [{ op: 'addMessage', msgId: 10, payload: Buffer.from('x') }, { op: 'addRef', queue: 'q', msgId: 10 }, { op: 'addMessage', msgId: 11, payload: Buffer.alloc(0) }] },
  ] as const;
  ops.forEach((op, i) => {
    const r = new FrameReader();
    const [fr] = r.push(encodeOp(i + 1, op as never));
    assert.is(fr.type, FrameType.Op);
    assert.equal(decodeOp(fr.body), { seq: i + 1, op });
  });
});

test('the reader splits a stream however it arrives: byte by byte, or many frames in one chunk', () => {
  const stream = Buffer.concat([encodeAck(1), encodeOp(2, { op: 'ack', queue: 'q', msgId: 2 }), encodeAck(3)]);
  const r = new FrameReader();
  const got: number[] = [];
  for (const b of stream) for (const f of r.push(Buffer.from([b]))) got.push(f.type);
  assert.equal(got, [FrameType.Ack, FrameType.Op, FrameType.Ack]);
  assert.equal(new FrameReader().push(stream).map((f) => f.type), [FrameType.Ack, FrameType.Op, FrameType.Ack]);
});

test('refused: a frame past the limit or of length 0, and ops that lie about their bytes', () => {
  const big = Buffer.alloc(4);
  big.writeUInt32BE(MAX_FRAME_BYTES + 1);
  assert.throws(() => new FrameReader().push(big), (e: unknown) => e instanceof ReplicationProtocolError && /frame length/.test((e as Error).message));
  assert.throws(() => new FrameReader().push(Buffer.alloc(4)), (e: unknown) => e instanceof ReplicationProtocolError);
  const tx = encodeOp(1, { op: 'commitTx', ops: [{ op: 'addMessage', msgId: 1, payload: Buffer.from('abc') }] }).subarray(5);
  assert.throws(() => decodeOp(tx.subarray(0, tx.length - 1)), /overruns/);
  assert.throws(() => decodeOp(Buffer.concat([tx, Buffer.from([0])])), /bytes after the op/);
  assert.throws(() => decodeOp(tx.subarray(0, 8)), /shorter/);
  const ref = encodeOp(1, { op: 'addRef', queue: 'q', msgId: 1 }).subarray(5);
  assert.throws(() => decodeOp(ref.subarray(0, ref.length - 1)), /does not fill the frame/);
  const kind = Buffer.from(ref);
  kind[8] = 9;
  assert.throws(() => decodeOp(kind), /unknown op kind 9/);
  const negative = Buffer.from(ref);
  negative.writeDoubleBE(-1, 9);
  assert.throws(() => decodeOp(negative), /not a non-negative integer/);
  const bad = Buffer.from(encodeOp(1, { op: 'deleteQueue', queue: 'qq' }).subarray(5));
  bad.write('{"op":"drop"', 13);
  assert.throws(() => decodeOp(bad), (e: unknown) => e instanceof ReplicationProtocolError);
});

test.run();
