/**
 * The file journal: the broker's persistent {@link Store}.
 *
 * Layout: `<dir>/journal/journal-<seq, 12 digits>.seg`. Normally there is exactly one segment;
 * compaction writes its successor as `journal-<seq+1>.seg.tmp`, fsyncs it, renames it into place
 * and fsyncs the directory, then deletes its predecessor. Every segment starts with a HEADER
 * record naming the highest sequence number it supersedes, so recovery can meet any crash point:
 * a `.tmp` file is an unfinished compaction (deleted), and a segment superseded by a newer
 * segment's header is a compaction whose cleanup did not run (deleted).
 *
 * Record: `[u32 length][u32 crc32][u8 type][body]`, little-endian; `length` counts type + body,
 * the crc32 (zlib) covers the same bytes. Message ids are u64 (two u32 halves, low first), queue
 * ids u32 (a queue name is interned by its QUEUE record so REF/ACK records stay 21 bytes).
 *
 *   1 HEADER    magic "AMQPMJNL", u8 version, u32 seq, u32 supersedes, u64 nextMessageId, u32 nextQueueId
 *   2 QUEUE     u32 qid, u16 nameLen, name (UTF-8), meta (JSON, rest of body); again for a known
 *               qid it replaces the meta
 *   3 QUEUE_DEL u32 qid
 *   4 MSG       u64 msgId, payload (rest of body)
 *   5 REF       u32 qid, u64 msgId
 *   6 ACK       u32 qid, u64 msgId
 *   7 DCOUNT    u32 qid, u64 msgId, u32 count
 *   8 TX        u32 nOps, then per op u8 kind (4, 5, 6) and: 4 u64 msgId u32 len payload |
 *               5/6 u32 qid u64 msgId. One record, so one checksum makes it all-or-nothing.
 *
 * Durability: mutations are encoded synchronously into an in-memory buffer; a writer loop (one
 * `setImmediate` per batch) writes the whole buffer with one positional write, fdatasyncs when
 * anyone waits, and then runs the sync callbacks it covers (group commit). Records appended
 * while a batch is in flight form the next batch.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { FencedError, QueueMeta, Recovered, Store, StoreError, StoreOptions, TxOp } from './types';
import { MAX_TX_OPS, StoreState, TxView, acceptSync, checkPayload, checkWritable, failedRefusal, checkCount, checkMsgId, checkName, checkTxOps, encodeMeta } from './checks';

const T_HEADER = 1;
const T_QUEUE = 2;
const T_QUEUE_DEL = 3;
const T_MSG = 4;
const T_REF = 5;
const T_ACK = 6;
const T_DCOUNT = 7;
const T_TX = 8;

/** u32 length + u32 crc32 + u8 type. */
const HEAD = 9;
const MAGIC = Buffer.from('AMQPMJNL', 'latin1');
const FORMAT_VERSION = 1;
const HEADER_BODY = 8 + 1 + 4 + 4 + 8 + 4;
const HEADER_BYTES = HEAD + HEADER_BODY;
const MSG_OVERHEAD = HEAD + 8;
const REF_BYTES = HEAD + 4 + 8;
const DCOUNT_BYTES = HEAD + 4 + 8 + 4;
const QUEUE_OVERHEAD = HEAD + 4 + 2;
const TX_OVERHEAD = HEAD + 4;
const TX_MSG_OVERHEAD = 1 + 8 + 4;
const TX_REF_BYTES = 1 + 4 + 8;

const MAX_QUEUE_ID = 0xffffffff;
const MAX_SEQ = 0xffffffff;
/** Recovery warnings (records naming unknown queues or messages) logged before they are only counted. */
const MAX_RECOVERY_WARNINGS = 10;

const MiB = 1024 * 1024;
const DEFAULT_COMPACT_MIN_BYTES = 64 * MiB;
const DEFAULT_COMPACT_RATIO = 0.5;
const DEFAULT_MAX_RECORD_BYTES = 64 * MiB + 1024;
const INITIAL_BUFFER = 256 * 1024;
/** A write buffer that grew past this (a huge message) is dropped after its batch rather than kept. */
const KEEP_BUFFER_MAX = 4 * MiB;
const SCAN_CHUNK = 4 * MiB;
const SNAPSHOT_FLUSH = 1 * MiB;

const SEGMENT_RE = /^journal-(\d{12})\.seg$/;
const TMP_RE = /^journal-\d{12}\.seg\.tmp$/;

/** Options of {@link JournalStore}. */
export interface JournalOptions extends StoreOptions {
  /** The journal is compacted only once it holds at least this many bytes (default 64 MiB). */
  compactMinBytes?: number;
  /** Compact when dead bytes exceed this fraction of the journal (default 0.5; 0 < ratio < 1). */
  compactRatio?: number;
  /**
   * Largest record (type + body) written, in bytes (default 64 MiB + 1 KiB). Recovery accepts
   * records up to the larger of this and the default, so lowering it never truncates old records.
   */
  maxRecordBytes?: number;
}

interface Segment {
  seq: number;
  file: string;
  fd: number;
  /** Bytes on disk; for the active segment see JournalStore.written. */
  size: number;
}

interface MsgEntry {
  seg: Segment;
  /** Offset of the payload in `seg` (possibly still in the write buffers). */
  off: number;
  len: number;
  /** References held by queues; 0 for a message not referenced yet. */
  refs: number;
}

interface QueueState {
  id: number;
  name: string;
  nameBytes: number;
  metaJson: string;
  metaBytes: number;
  /** Size of this queue's QUEUE record. */
  recBytes: number;
  /** msgId -> delivery count, in addRef order. */
  refs: Map<number, number>;
}

interface Header {
  seq: number;
  supersedes: number;
  nextMessageId: number;
  nextQueueId: number;
}

/** A well-checksummed record whose body does not parse: a bug or a foreign file, never a torn write. */
class BadBodyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BadBodyError';
  }
}

function putU64(b: Buffer, at: number, v: number): void {
  b.writeUInt32LE(v >>> 0, at);
  b.writeUInt32LE(Math.floor(v / 0x1_0000_0000), at + 4);
}

function getU64(b: Buffer, at: number): number {
  const hi = b.readUInt32LE(at + 4);
  if (hi > 0x1fffff) throw new BadBodyError(`message id beyond 2^53 (high word ${hi})`);
  return hi * 0x1_0000_0000 + b.readUInt32LE(at);
}

/** Writes length, type and checksum of the record of `total` bytes at `at` whose body is in place. */
function seal(b: Buffer, at: number, total: number, type: number): void {
  b.writeUInt32LE(total - 8, at);
  b[at + 8] = type;
  b.writeUInt32LE(zlib.crc32(b.subarray(at + 8, at + total)), at + 4);
}

function encodeQueue(b: Buffer, at: number, q: QueueState): void {
  b.writeUInt32LE(q.id, at + HEAD);
  b.writeUInt16LE(q.nameBytes, at + HEAD + 4);
  b.write(q.name, at + HEAD + 6, q.nameBytes, 'utf8');
  b.write(q.metaJson, at + HEAD + 6 + q.nameBytes, q.metaBytes, 'utf8');
  seal(b, at, q.recBytes, T_QUEUE);
}

function encodeQueueRef(b: Buffer, at: number, type: number, qid: number, msgId: number): void {
  b.writeUInt32LE(qid, at + HEAD);
  putU64(b, at + HEAD + 4, msgId);
  seal(b, at, REF_BYTES, type);
}

function encodeCount(b: Buffer, at: number, qid: number, msgId: number, count: number): void {
  b.writeUInt32LE(qid, at + HEAD);
  putU64(b, at + HEAD + 4, msgId);
  b.writeUInt32LE(count, at + HEAD + 12);
  seal(b, at, DCOUNT_BYTES, T_DCOUNT);
}

function encodeHeader(b: Buffer, at: number, h: Header): void {
  MAGIC.copy(b, at + HEAD);
  b[at + HEAD + 8] = FORMAT_VERSION;
  b.writeUInt32LE(h.seq, at + HEAD + 9);
  b.writeUInt32LE(h.supersedes, at + HEAD + 13);
  putU64(b, at + HEAD + 17, h.nextMessageId);
  b.writeUInt32LE(h.nextQueueId, at + HEAD + 25);
  seal(b, at, HEADER_BYTES, T_HEADER);
}





function segmentName(seq: number): string {
  return `journal-${String(seq).padStart(12, '0')}.seg`;
}

/** pread until `n` bytes arrived; a short file is corruption (it changed under us). */
function readFully(fd: number, dst: Buffer, dstOff: number, n: number, pos: number): void {
  let done = 0;
  while (done < n) {
    const r = fs.readSync(fd, dst, dstOff + done, n - done, pos + done);
    if (r === 0) throw new StoreError(`journal read past end of file at ${pos + done}`, 'ERR_STORE_CORRUPT');
    done += r;
  }
}

function writeFully(fd: number, src: Buffer, n: number, pos: number): void {
  let done = 0;
  while (done < n) done += fs.writeSync(fd, src, done, n - done, pos + done);
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function errMsg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Builds a segment file outside the append path (a compaction or the first segment): records go
 * into a buffer flushed with positional writes, fencing before each.
 */
class SnapshotWriter {
  buf: Buffer = Buffer.allocUnsafe(SNAPSHOT_FLUSH + 64 * 1024);
  len = 0;
  /** File offset of buf[0]. */
  pos = 0;

  constructor(private readonly fd: number, private readonly fence: () => void) {}

  /** Room for `n` bytes; returns where they go in `buf`, which it may replace (read `buf` after). */
  reserve(n: number): number {
    if (this.len > 0 && this.len + n > SNAPSHOT_FLUSH) this.flush();
    if (n > this.buf.length) this.buf = Buffer.allocUnsafe(n);
    const at = this.len;
    this.len += n;
    return at;
  }

  flush(): void {
    if (this.len === 0) return;
    this.fence();
    writeFully(this.fd, this.buf, this.len, this.pos);
    this.pos += this.len;
    this.len = 0;
  }

  get size(): number {
    return this.pos + this.len;
  }
}

/**
 * The append-only file journal with group commit, torn-tail recovery and compaction (file format
 * in the module comment). Single-threaded like the broker; one instance per directory, guarded by
 * the broker's store lock through `opts.fence`.
 */
export class JournalStore implements Store {
  /** Where the segments live: `<dir>/journal`. */
  readonly journalDir: string;
  private readonly fence: () => void;
  private readonly log: (level: 'error' | 'warning' | 'info' | 'debug', msg: string) => void;
  private readonly compactMinBytes: number;
  private readonly compactRatio: number;
  private readonly maxRecordBytes: number;
  private readonly maxPayloadBytes: number;

  private state: StoreState = 'new';
  /** Set once a write, fsync or fence failed: the store refuses writes from then on. */
  private failure: Error | null = null;
  private failedWhileClosing = false;

  private segments: Segment[] = [];
  private active: Segment = { seq: 0, file: '', fd: -1, size: 0 };
  /** Bytes of segments other than the active one (only after an unusual recovery). */
  private otherBytes = 0;
  private readonly queues = new Map<string, QueueState>();
  private readonly messages = new Map<number, MsgEntry>();
  private nextMsgId = 1;
  private nextQueueId = 1;
  /** What a compaction would write now (exact). */
  private liveBytes = 0;
  private compactions = 0;
  private syncs = 0;
  /** No automatic compaction before the journal reaches this size (backoff after a failed one). */
  private compactRetryAt = 0;

  // Append path. `buf[0..len)` is pending at file offset `base`; `inflight` is being written.
  private buf: Buffer = Buffer.allocUnsafe(INITIAL_BUFFER);
  private len = 0;
  private base = 0;
  private spare: Buffer | null = null;
  private inflight: Buffer | null = null;
  private inflightBase = 0;
  private written = 0;
  private durable = 0;
  private writing = false;
  private scheduled = false;
  /** Sync callbacks and the end offset each waits for (non-decreasing), FIFO from wHead. */
  private wTargets: number[] = [];
  private wCbs: Array<(err: Error | null) => void> = [];
  private wHead = 0;
  private compactWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  private closePromise: Promise<void> | null = null;
  private closeResolve: (() => void) | null = null;
  private closeReject: ((e: Error) => void) | null = null;
  private readonly runBatchBound = (): void => this.runBatch();

  /**
   * @param dir the broker's data directory; the journal lives in `dir/journal` (created on recover).
   */
  constructor(readonly dir: string, opts: JournalOptions = {}) {
    this.journalDir = path.join(dir, 'journal');
    this.fence = opts.fence ?? (() => undefined);
    this.log = opts.log ?? (() => undefined);
    this.compactMinBytes = opts.compactMinBytes ?? DEFAULT_COMPACT_MIN_BYTES;
    this.compactRatio = opts.compactRatio ?? DEFAULT_COMPACT_RATIO;
    this.maxRecordBytes = opts.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
    if (!(this.compactMinBytes >= 0)) throw new RangeError('compactMinBytes must be >= 0');
    if (!(this.compactRatio > 0 && this.compactRatio < 1)) throw new RangeError('compactRatio must be between 0 and 1 (exclusive)');
    if (!(Number.isInteger(this.maxRecordBytes) && this.maxRecordBytes >= 1024 && this.maxRecordBytes <= 0x7fffffff)) {
      throw new RangeError('maxRecordBytes must be an integer between 1 KiB and 2 GiB');
    }
    this.maxPayloadBytes = this.maxRecordBytes - 1 - 8;
  }

  /** fdatasyncs issued so far (group commit makes this far smaller than the sync() calls). */
  get syncCount(): number {
    return this.syncs;
  }

  // ---------------------------------------------------------------------------------- recovery

  recover(): Recovered {
    if (this.state !== 'new') throw new StoreError('recover() may be called only once, before any mutation', 'ERR_STORE_CLOSED');
    try {
      const rec = this.recoverFiles();
      this.state = 'open';
      return rec;
    } catch (e) {
      for (const s of this.segments) this.closeQuietly(s);
      this.segments = [];
      this.state = 'closed';
      if (e instanceof FencedError || e instanceof StoreError) throw e;
      throw new StoreError(`journal ${this.journalDir}: recovery failed: ${errMsg(e)}`, 'ERR_STORE_IO', { cause: e });
    }
  }

  private recoverFiles(): Recovered {
    let created = false;
    if (!fs.existsSync(this.journalDir)) {
      this.fence();
      fs.mkdirSync(this.journalDir, { recursive: true });
      created = true;
    }
    const found: Array<{ seq: number; file: string }> = [];
    for (const name of fs.readdirSync(this.journalDir)) {
      const file = path.join(this.journalDir, name);
      if (TMP_RE.test(name)) {
        this.fence();
        fs.unlinkSync(file);
        this.log('info', `journal: removed ${file}, left by a compaction that did not finish`);
        continue;
      }
      const m = SEGMENT_RE.exec(name);
      if (m) found.push({ seq: Number(m[1]), file });
    }
    found.sort((a, b) => a.seq - b.seq);

    if (found.length === 0) {
      const { seg, size } = this.writeSegment(1, 0);
      fsyncDir(this.journalDir);
      if (created) fsyncDir(this.dir);
      this.segments = [seg];
      this.active = seg;
      this.base = this.written = this.durable = size;
      this.liveBytes = size;
      this.log('info', `journal: created ${seg.file}`);
      return { queues: new Map(), messages: new Map(), nextMessageId: this.nextMsgId, truncated: null };
    }

    const headers = found.map((f) => this.readHeader(f.file, f.seq));
    const supersededUpTo = Math.max(...headers.map((h) => h.supersedes));
    const live: Array<{ seq: number; file: string }> = [];
    for (const f of found) {
      if (f.seq <= supersededUpTo) {
        this.fence();
        fs.unlinkSync(f.file);
        this.log('info', `journal: removed ${f.file}, superseded by a compacted segment`);
      } else {
        live.push(f);
      }
    }
    for (const h of headers) {
      if (h.seq > supersededUpTo) {
        this.nextMsgId = Math.max(this.nextMsgId, h.nextMessageId);
        this.nextQueueId = Math.max(this.nextQueueId, h.nextQueueId);
      }
    }

    const byId = new Map<number, QueueState>();
    const bodies = new Map<number, Buffer>();
    const limit = Math.max(this.maxRecordBytes, DEFAULT_MAX_RECORD_BYTES);
    let truncated: Recovered['truncated'] = null;
    let warnings = 0;
    const warn = (msg: string): void => {
      if (++warnings <= MAX_RECOVERY_WARNINGS) this.log('warning', `journal: ${msg}`);
    };
    for (let i = 0; i < live.length; i++) {
      const fd = fs.openSync(live[i].file, 'r+');
      const size = fs.fstatSync(fd).size;
      const seg: Segment = { seq: live[i].seq, file: live[i].file, fd, size };
      this.segments.push(seg);
      let first = true;
      const bad = this.scan(seg, size, limit, (type, b, s, e, fileOff) => {
        if (first) {
          first = false;
          return; // the header, checked by readHeader
        }
        this.replay(type, b, s, e, fileOff, seg, byId, bodies, warn);
      });
      if (bad) {
        let dropped = size - bad.offset;
        this.fence();
        fs.ftruncateSync(fd, bad.offset);
        fs.fsyncSync(fd);
        seg.size = bad.offset;
        // Later segments were written after the corrupt record: without it they cannot be trusted.
        for (const later of live.slice(i + 1)) {
          dropped += fs.statSync(later.file).size;
          this.fence();
          fs.unlinkSync(later.file);
          this.log('warning', `journal: removed ${later.file}, written after the corrupt record`);
        }
        truncated = { file: seg.file, offset: bad.offset, droppedBytes: dropped, reason: bad.reason };
        this.log('warning', `journal: ${bad.reason} in ${seg.file} at offset ${bad.offset}; truncated ${dropped} bytes (a torn or corrupt tail; records before it are kept)`);
        break;
      }
    }
    if (warnings > MAX_RECOVERY_WARNINGS) this.log('warning', `journal: ${warnings - MAX_RECOVERY_WARNINGS} more records named unknown queues or messages`);

    // A message nobody referenced by the crash was never delivered to a queue: drop it.
    for (const [id, m] of this.messages) {
      if (m.refs === 0) {
        this.messages.delete(id);
        bodies.delete(id);
      }
    }
    this.active = this.segments[this.segments.length - 1];
    this.otherBytes = 0;
    for (const s of this.segments) if (s !== this.active) this.otherBytes += s.size;
    this.base = this.written = this.durable = this.active.size;
    this.liveBytes = this.computeLiveBytes();

    const queues: Recovered['queues'] = new Map();
    for (const q of this.queues.values()) {
      let meta: QueueMeta;
      try {
        meta = JSON.parse(q.metaJson) as QueueMeta;
      } catch (e) {
        throw new StoreError(`journal: queue ${q.name} has unreadable meta`, 'ERR_STORE_CORRUPT', { cause: e });
      }
      const refs = new Array<{ msgId: number; deliveryCount: number }>(q.refs.size);
      let i = 0;
      for (const [msgId, deliveryCount] of q.refs) refs[i++] = { msgId, deliveryCount };
      queues.set(q.name, { meta, refs });
    }
    let refCount = 0;
    for (const q of queues.values()) refCount += q.refs.length;
    this.log('info', `journal: recovered ${queues.size} queues, ${bodies.size} messages, ${refCount} references from ${this.segments.length} segment(s), ${this.fileBytes()} bytes`);
    return { queues, messages: bodies, nextMessageId: this.nextMsgId, truncated };
  }

  private readHeader(file: string, seq: number): Header {
    const b = Buffer.alloc(HEADER_BYTES);
    const fd = fs.openSync(file, 'r');
    let n: number;
    try {
      n = fs.readSync(fd, b, 0, HEADER_BYTES, 0);
    } finally {
      fs.closeSync(fd);
    }
    // Segments appear only by rename after an fsync, so a bad header is not a torn write.
    const bad = (why: string): StoreError => new StoreError(`journal segment ${file} has no valid header (${why})`, 'ERR_STORE_CORRUPT');
    if (n < HEADER_BYTES) throw bad(`${n} bytes`);
    if (b.readUInt32LE(0) !== HEADER_BYTES - 8 || b[8] !== T_HEADER) throw bad('not a header record');
    if (zlib.crc32(b.subarray(8, HEADER_BYTES)) !== b.readUInt32LE(4)) throw bad('checksum mismatch');
    if (!b.subarray(HEAD, HEAD + 8).equals(MAGIC)) throw bad('bad magic');
    if (b[HEAD + 8] !== FORMAT_VERSION) throw bad(`format version ${b[HEAD + 8]}, expected ${FORMAT_VERSION}`);
    const h: Header = {
      seq: b.readUInt32LE(HEAD + 9),
      supersedes: b.readUInt32LE(HEAD + 13),
      nextMessageId: getU64(b, HEAD + 17),
      nextQueueId: b.readUInt32LE(HEAD + 25),
    };
    if (h.seq !== seq || h.supersedes >= seq) throw bad(`seq ${h.seq} supersedes ${h.supersedes} in a file named for ${seq}`);
    return h;
  }

  /**
   * Reads every record of `seg` in order, verifying length and checksum; returns the first bad or
   * partial record, or null when the whole file is sound.
   */
  private scan(
    seg: Segment,
    size: number,
    limit: number,
    onRecord: (type: number, b: Buffer, start: number, end: number, fileOff: number) => void,
  ): { offset: number; reason: string } | null {
    let chunk = Buffer.allocUnsafe(Math.max(64, Math.min(size, SCAN_CHUNK)));
    let cStart = 0;
    let cLen = 0;
    const fill = (pos: number, need: number): void => {
      if (pos >= cStart && pos + need <= cStart + cLen) return;
      if (need > chunk.length) chunk = Buffer.allocUnsafe(need);
      const want = Math.min(chunk.length, size - pos);
      readFully(seg.fd, chunk, 0, want, pos);
      cStart = pos;
      cLen = want;
    };
    let pos = 0;
    while (pos < size) {
      if (size - pos < HEAD) return { offset: pos, reason: `partial record header (${size - pos} bytes)` };
      fill(pos, HEAD);
      let r = pos - cStart;
      const len = chunk.readUInt32LE(r);
      if (len < 1 || len > limit) return { offset: pos, reason: `bad record length ${len}` };
      if (len > size - pos - 8) return { offset: pos, reason: `partial record (${len + 8} bytes announced, ${size - pos} present)` };
      fill(pos, 8 + len);
      r = pos - cStart;
      if (zlib.crc32(chunk.subarray(r + 8, r + 8 + len)) !== chunk.readUInt32LE(r + 4)) return { offset: pos, reason: 'checksum mismatch' };
      try {
        onRecord(chunk[r + 8], chunk, r + 9, r + 8 + len, pos + 9);
      } catch (e) {
        if (e instanceof BadBodyError || e instanceof RangeError) {
          throw new StoreError(`journal ${seg.file}: record at offset ${pos} is malformed: ${e.message}`, 'ERR_STORE_CORRUPT', { cause: e });
        }
        throw e;
      }
      pos += 8 + len;
    }
    return null;
  }

  /** Applies one record read at recovery; references to unknown queues or messages are skipped. */
  private replay(
    type: number,
    b: Buffer,
    s: number,
    e: number,
    fileOff: number,
    seg: Segment,
    byId: Map<number, QueueState>,
    bodies: Map<number, Buffer>,
    warn: (msg: string) => void,
  ): void {
    const need = (n: number): void => {
      if (e - s < n) throw new BadBodyError(`record type ${type} body is ${e - s} bytes, needs ${n}`);
    };
    const addMessage = (id: number, at: number, len: number): void => {
      if (this.messages.has(id)) warn(`message ${id} stored twice; the later copy wins`);
      this.messages.set(id, { seg, off: fileOff + (at - s), len, refs: this.messages.get(id)?.refs ?? 0 });
      bodies.set(id, Buffer.from(b.subarray(at, at + len)));
      if (id >= this.nextMsgId) this.nextMsgId = id + 1;
    };
    const unref = (id: number): void => {
      const m = this.messages.get(id);
      if (m !== undefined && --m.refs <= 0) {
        this.messages.delete(id);
        bodies.delete(id);
      }
    };
    const queueRef = (kind: number, at: number): void => {
      const qid = b.readUInt32LE(at);
      const id = getU64(b, at + 4);
      const q = byId.get(qid);
      if (q === undefined) return warn(`record type ${kind} names unknown queue id ${qid}`);
      if (kind === T_REF) {
        const m = this.messages.get(id);
        if (m === undefined) return warn(`reference of queue ${q.name} to unknown message ${id}`);
        if (q.refs.has(id)) return warn(`queue ${q.name} references message ${id} twice`);
        q.refs.set(id, 0);
        m.refs++;
      } else if (q.refs.delete(id)) {
        unref(id);
      } else {
        warn(`ack of queue ${q.name} for message ${id} it does not hold`);
      }
    };
    switch (type) {
      case T_QUEUE: {
        need(6);
        const qid = b.readUInt32LE(s);
        const nameBytes = b.readUInt16LE(s + 4);
        need(6 + nameBytes);
        const name = b.toString('utf8', s + 6, s + 6 + nameBytes);
        const metaJson = b.toString('utf8', s + 6 + nameBytes, e);
        const metaBytes = e - s - 6 - nameBytes;
        let q = byId.get(qid);
        if (q !== undefined) {
          if (q.name !== name) throw new BadBodyError(`queue id ${qid} renamed from ${q.name} to ${name}`);
        } else {
          if (this.queues.has(name)) throw new BadBodyError(`queue ${name} has two ids`);
          q = { id: qid, name, nameBytes, metaJson, metaBytes, recBytes: 0, refs: new Map() };
          byId.set(qid, q);
          this.queues.set(name, q);
        }
        q.metaJson = metaJson;
        q.metaBytes = metaBytes;
        q.recBytes = QUEUE_OVERHEAD + nameBytes + metaBytes;
        if (qid >= this.nextQueueId) this.nextQueueId = qid + 1;
        return;
      }
      case T_QUEUE_DEL: {
        need(4);
        const qid = b.readUInt32LE(s);
        const q = byId.get(qid);
        if (q === undefined) return warn(`deletion of unknown queue id ${qid}`);
        byId.delete(qid);
        this.queues.delete(q.name);
        for (const id of q.refs.keys()) unref(id);
        return;
      }
      case T_MSG:
        need(8);
        return addMessage(getU64(b, s), s + 8, e - s - 8);
      case T_REF:
      case T_ACK:
        need(12);
        return queueRef(type, s);
      case T_DCOUNT: {
        need(16);
        const qid = b.readUInt32LE(s);
        const id = getU64(b, s + 4);
        const q = byId.get(qid);
        if (q === undefined || !q.refs.has(id)) return warn(`delivery count for message ${id} not held by queue id ${qid}`);
        q.refs.set(id, b.readUInt32LE(s + 12));
        return;
      }
      case T_TX: {
        need(4);
        const n = b.readUInt32LE(s);
        let at = s + 4;
        for (let i = 0; i < n; i++) {
          if (at >= e) throw new BadBodyError(`transaction announces ${n} ops, ends after ${i}`);
          const kind = b[at];
          if (kind === T_MSG) {
            if (e - at < TX_MSG_OVERHEAD) throw new BadBodyError('transaction message op cut short');
            const id = getU64(b, at + 1);
            const len = b.readUInt32LE(at + 9);
            if (e - at - TX_MSG_OVERHEAD < len) throw new BadBodyError('transaction message payload cut short');
            addMessage(id, at + TX_MSG_OVERHEAD, len);
            at += TX_MSG_OVERHEAD + len;
          } else if (kind === T_REF || kind === T_ACK) {
            if (e - at < TX_REF_BYTES) throw new BadBodyError('transaction ref op cut short');
            queueRef(kind, at + 1);
            at += TX_REF_BYTES;
          } else {
            throw new BadBodyError(`transaction op of unknown kind ${kind}`);
          }
        }
        if (at !== e) throw new BadBodyError(`transaction has ${e - at} trailing bytes`);
        return;
      }
      case T_HEADER:
        throw new BadBodyError('header record inside a segment');
      default:
        throw new BadBodyError(`unknown record type ${type}`);
    }
  }

  private computeLiveBytes(): number {
    let n = HEADER_BYTES;
    for (const q of this.queues.values()) {
      n += q.recBytes + q.refs.size * REF_BYTES;
      for (const c of q.refs.values()) if (c > 0) n += DCOUNT_BYTES;
    }
    for (const m of this.messages.values()) n += MSG_OVERHEAD + m.len;
    return n;
  }

  // ---------------------------------------------------------------------------------- mutations

  createQueue(name: string, meta: QueueMeta): void {
    this.writable();
    const nameBytes = checkName(name);
    const metaJson = encodeMeta(meta);
    const metaBytes = Buffer.byteLength(metaJson, 'utf8');
    let q = this.queues.get(name);
    if (q === undefined) {
      if (this.nextQueueId > MAX_QUEUE_ID) throw new RangeError('queue ids exhausted');
      q = { id: this.nextQueueId, name, nameBytes, metaJson, metaBytes, recBytes: 0, refs: new Map() };
    } else {
      this.liveBytes -= q.recBytes;
    }
    const recBytes = QUEUE_OVERHEAD + nameBytes + metaBytes;
    const at = this.reserve(recBytes);
    q.metaJson = metaJson;
    q.metaBytes = metaBytes;
    q.recBytes = recBytes;
    if (!this.queues.has(name)) {
      this.queues.set(name, q);
      this.nextQueueId++;
    }
    encodeQueue(this.buf, at, q);
    this.liveBytes += recBytes;
    this.kick();
  }

  deleteQueue(name: string): void {
    this.writable();
    const q = this.queues.get(name);
    if (q === undefined) return;
    const at = this.reserve(HEAD + 4);
    this.buf.writeUInt32LE(q.id, at + HEAD);
    seal(this.buf, at, HEAD + 4, T_QUEUE_DEL);
    this.queues.delete(name);
    this.liveBytes -= q.recBytes;
    for (const [id, count] of q.refs) {
      this.liveBytes -= REF_BYTES + (count > 0 ? DCOUNT_BYTES : 0);
      this.unref(id);
    }
    this.kick();
  }

  addMessage(msgId: number, payload: Buffer): void {
    this.writable();
    checkMsgId(msgId);
    checkPayload(payload, 'payload', this.maxPayloadBytes);
    const len = payload.length;
    if (this.messages.has(msgId)) throw new RangeError(`message ${msgId} is already stored`);
    const total = MSG_OVERHEAD + len;
    const at = this.reserve(total);
    const b = this.buf;
    putU64(b, at + HEAD, msgId);
    payload.copy(b, at + MSG_OVERHEAD);
    seal(b, at, total, T_MSG);
    this.messages.set(msgId, { seg: this.active, off: this.base + at + MSG_OVERHEAD, len, refs: 0 });
    if (msgId >= this.nextMsgId) this.nextMsgId = msgId + 1;
    this.liveBytes += total;
    this.kick();
  }

  addRef(queue: string, msgId: number): void {
    this.writable();
    const q = this.queueOf(queue);
    const m = this.messages.get(msgId);
    if (m === undefined) throw new RangeError(`message ${msgId} is not stored`);
    if (q.refs.has(msgId)) throw new RangeError(`queue ${queue} already references message ${msgId}`);
    const at = this.reserve(REF_BYTES);
    encodeQueueRef(this.buf, at, T_REF, q.id, msgId);
    q.refs.set(msgId, 0);
    m.refs++;
    this.liveBytes += REF_BYTES;
    this.kick();
  }

  ack(queue: string, msgId: number): void {
    this.writable();
    const q = this.queueOf(queue);
    const count = q.refs.get(msgId);
    if (count === undefined) throw new RangeError(`queue ${queue} does not reference message ${msgId}`);
    const at = this.reserve(REF_BYTES);
    encodeQueueRef(this.buf, at, T_ACK, q.id, msgId);
    q.refs.delete(msgId);
    this.liveBytes -= REF_BYTES + (count > 0 ? DCOUNT_BYTES : 0);
    this.unref(msgId);
    this.kick();
  }

  setDeliveryCount(queue: string, msgId: number, count: number): void {
    this.writable();
    const q = this.queueOf(queue);
    checkCount(count);
    const prev = q.refs.get(msgId);
    if (prev === undefined) throw new RangeError(`queue ${queue} does not reference message ${msgId}`);
    const at = this.reserve(DCOUNT_BYTES);
    encodeCount(this.buf, at, q.id, msgId, count);
    q.refs.set(msgId, count);
    this.liveBytes += (count > 0 ? DCOUNT_BYTES : 0) - (prev > 0 ? DCOUNT_BYTES : 0);
    this.kick();
  }

  commitTx(ops: TxOp[]): void {
    this.writable();
    if (!Array.isArray(ops)) throw new TypeError('ops must be an array');
    if (ops.length > MAX_TX_OPS) throw new RangeError(`transaction of ${ops.length} ops exceeds ${MAX_TX_OPS}`);
    if (ops.length === 0) return;
    const total = this.validateTx(ops);
    const at = this.reserve(total);
    const b = this.buf;
    b.writeUInt32LE(ops.length, at + HEAD);
    let p = at + HEAD + 4;
    for (const op of ops) {
      if (op.op === 'addMessage') {
        const len = op.payload.length;
        b[p] = T_MSG;
        putU64(b, p + 1, op.msgId);
        b.writeUInt32LE(len, p + 9);
        op.payload.copy(b, p + TX_MSG_OVERHEAD);
        this.messages.set(op.msgId, { seg: this.active, off: this.base + p + TX_MSG_OVERHEAD, len, refs: 0 });
        if (op.msgId >= this.nextMsgId) this.nextMsgId = op.msgId + 1;
        this.liveBytes += MSG_OVERHEAD + len;
        p += TX_MSG_OVERHEAD + len;
      } else {
        const q = this.queues.get(op.queue) as QueueState;
        b[p] = op.op === 'addRef' ? T_REF : T_ACK;
        b.writeUInt32LE(q.id, p + 1);
        putU64(b, p + 5, op.msgId);
        p += TX_REF_BYTES;
        if (op.op === 'addRef') {
          q.refs.set(op.msgId, 0);
          (this.messages.get(op.msgId) as MsgEntry).refs++;
          this.liveBytes += REF_BYTES;
        } else {
          const count = q.refs.get(op.msgId) as number;
          q.refs.delete(op.msgId);
          this.liveBytes -= REF_BYTES + (count > 0 ? DCOUNT_BYTES : 0);
          this.unref(op.msgId);
        }
      }
    }
    seal(b, at, total, T_TX);
    this.kick();
  }

  /** Checks `ops` (as every store does) and returns the size of their TX record. */
  private validateTx(ops: TxOp[]): number {
    checkTxOps(ops, this.txView, this.maxPayloadBytes);
    let total = TX_OVERHEAD;
    for (const op of ops) total += op.op === 'addMessage' ? TX_MSG_OVERHEAD + op.payload.length : TX_REF_BYTES;
    if (total - 8 > this.maxRecordBytes) throw new RangeError(`transaction exceeds the journal's record limit of ${this.maxRecordBytes} bytes`);
    return total;
  }

  private readonly txView: TxView = {
    hasMessage: (id) => this.messages.has(id),
    messageRefs: (id) => this.messages.get(id)?.refs ?? 0,
    queueRefs: (name) => this.queues.get(name)?.refs,
  };

  private queueOf(name: string): QueueState {
    const q = this.queues.get(name);
    if (q === undefined) throw new RangeError(`no queue ${String(name)}`);
    return q;
  }

  private unref(msgId: number): void {
    const m = this.messages.get(msgId) as MsgEntry;
    if (--m.refs <= 0) {
      this.messages.delete(msgId);
      this.liveBytes -= MSG_OVERHEAD + m.len;
    }
  }

  private writable(): void {
    checkWritable('journal', this.state, this.failure);
  }

  private refusal(): Error {
    return failedRefusal('journal', this.failure as Error);
  }

  /**
   * Room for `n` more bytes in the pending buffer; returns where they go. It may replace
   * `this.buf`: read `this.buf` only after calling it (never `f(this.buf, this.reserve(n))`).
   */
  private reserve(n: number): number {
    if (this.len + n > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
      this.buf.copy(next, 0, 0, this.len);
      this.buf = next;
    }
    const at = this.len;
    this.len += n;
    return at;
  }

  // ---------------------------------------------------------------------------------- reads

  readPayload(msgId: number): Buffer {
    if (this.state === 'new' || this.state === 'closed') throw new StoreError(`journal is ${this.state === 'new' ? 'not open' : 'closed'}`, 'ERR_STORE_CLOSED');
    const m = this.messages.get(msgId);
    if (m === undefined) throw new RangeError(`message ${msgId} is not stored`);
    const out = Buffer.allocUnsafe(m.len);
    this.copyPayload(m, out, 0);
    return out;
  }

  /** Copies `m`'s payload into `dst` from wherever it is now: pending buffer, in-flight batch or file. */
  private copyPayload(m: MsgEntry, dst: Buffer, at: number): void {
    if (m.seg === this.active) {
      if (m.off >= this.base) {
        this.buf.copy(dst, at, m.off - this.base, m.off - this.base + m.len);
        return;
      }
      if (this.inflight !== null && m.off >= this.inflightBase) {
        this.inflight.copy(dst, at, m.off - this.inflightBase, m.off - this.inflightBase + m.len);
        return;
      }
    }
    try {
      readFully(m.seg.fd, dst, at, m.len, m.off);
    } catch (e) {
      if (e instanceof StoreError) throw e;
      throw new StoreError(`journal ${m.seg.file}: cannot read a payload at ${m.off}`, 'ERR_STORE_IO', { cause: e });
    }
  }

  stats(): { fileBytes: number; liveBytes: number; liveMessages: number; compactions: number } {
    return { fileBytes: this.fileBytes(), liveBytes: this.liveBytes, liveMessages: this.messages.size, compactions: this.compactions };
  }

  private fileBytes(): number {
    return this.otherBytes + this.base + this.len;
  }

  // ---------------------------------------------------------------------------------- writer

  sync(cb: (err: Error | null) => void): void {
    if (!acceptSync('journal', this.state, this.failure, cb)) return;
    this.wTargets.push(this.base + this.len);
    this.wCbs.push(cb);
    this.kick();
  }

  /**
   * Compacts now (at the writer's next turn), whatever the thresholds say; resolves once the
   * compacted segment is in place. For tests and management.
   */
  compact(): Promise<void> {
    if (this.state !== 'open') return Promise.reject(new StoreError('journal is not open', 'ERR_STORE_CLOSED'));
    if (this.failure !== null) return Promise.reject(this.refusal());
    return new Promise((resolve, reject) => {
      this.compactWaiters.push({ resolve, reject });
      this.kick();
    });
  }

  close(): Promise<void> {
    if (this.closePromise !== null) return this.closePromise;
    if (this.state === 'new' || this.state === 'closed') {
      this.state = 'closed';
      this.closePromise = Promise.resolve();
      return this.closePromise;
    }
    this.state = 'closing';
    this.closePromise = new Promise<void>((resolve, reject) => {
      this.closeResolve = resolve;
      this.closeReject = reject;
    });
    this.kick();
    return this.closePromise;
  }

  private kick(): void {
    if (this.scheduled || this.writing) return;
    this.scheduled = true;
    // setImmediate, not nextTick: everything appended in this event-loop turn joins the batch.
    setImmediate(this.runBatchBound);
  }

  private waiting(): boolean {
    return this.wHead < this.wCbs.length;
  }

  /** One turn of the writer: maybe compact, then write the pending buffer and fdatasync it. */
  private runBatch(): void {
    this.scheduled = false;
    if (this.writing || this.state === 'new' || this.state === 'closed') return;
    if (this.failure !== null) {
      this.failWaiters();
      this.finishCloseIfIdle();
      return;
    }
    if (this.compactWaiters.length > 0 || this.compactionDue()) {
      this.compactGuarded();
      if (this.failure !== null) return;
    }
    const needWrite = this.len > 0;
    const wantDurable = this.state === 'closing' || (this.waiting() && this.wTargets[this.wTargets.length - 1] > this.durable);
    if (!needWrite && !(wantDurable && this.durable < this.written)) {
      this.fireWaiters();
      this.finishCloseIfIdle();
      return;
    }
    try {
      this.fence();
    } catch (e) {
      this.fail(e);
      return;
    }
    this.writing = true;
    const fd = this.active.fd;
    const end = this.base + this.len;
    const finish = (): void => {
      this.writing = false;
      const b = this.inflight;
      this.inflight = null;
      if (b !== null && b.length <= KEEP_BUFFER_MAX && this.spare === null) this.spare = b;
      this.fireWaiters();
      if (this.len > 0 || this.waiting() || this.state === 'closing' || this.compactWaiters.length > 0) this.kick();
    };
    const afterWrite = (): void => {
      this.written = end;
      if (!wantDurable) return finish();
      this.syncs++;
      fs.fdatasync(fd, (err) => {
        if (err) return this.fail(new StoreError(`journal ${this.active.file}: fdatasync failed: ${err.message}`, 'ERR_STORE_IO', { cause: err }));
        this.durable = end;
        finish();
      });
    };
    if (!needWrite) return afterWrite();
    const batch = this.buf;
    const n = this.len;
    this.inflight = batch;
    this.inflightBase = this.base;
    this.buf = this.spare ?? Buffer.allocUnsafe(INITIAL_BUFFER);
    this.spare = null;
    this.len = 0;
    this.base = end;
    this.writeAll(fd, batch, 0, n, this.written, afterWrite);
  }

  private writeAll(fd: number, b: Buffer, off: number, n: number, pos: number, done: () => void): void {
    fs.write(fd, b, off, n, pos, (err, w) => {
      if (err) return this.fail(new StoreError(`journal ${this.active.file}: write failed: ${err.message}`, 'ERR_STORE_IO', { cause: err }));
      if (w >= n) return done();
      try {
        this.fence();
      } catch (e) {
        return this.fail(e);
      }
      this.writeAll(fd, b, off + w, n - w, pos + w, done);
    });
  }

  private fireWaiters(): void {
    // Only those registered before: a callback that syncs again waits for the next turn.
    const upTo = this.wCbs.length;
    while (this.wHead < upTo && this.wTargets[this.wHead] <= this.durable) {
      const cb = this.wCbs[this.wHead];
      this.wHead++;
      this.callBack(cb, null);
    }
    this.trimWaiters();
  }

  private failWaiters(): void {
    const err = this.failure as Error;
    while (this.wHead < this.wCbs.length) this.callBack(this.wCbs[this.wHead++], err);
    this.trimWaiters();
    for (const w of this.compactWaiters.splice(0)) w.reject(this.refusal());
  }

  private trimWaiters(): void {
    if (this.wHead === this.wCbs.length) {
      this.wHead = 0;
      this.wCbs.length = 0;
      this.wTargets.length = 0;
    } else if (this.wHead > 4096 && this.wHead * 2 > this.wCbs.length) {
      this.wCbs.splice(0, this.wHead);
      this.wTargets.splice(0, this.wHead);
      this.wHead = 0;
    }
  }

  /** Runs a sync callback; one that throws must not break the writer, so its error is rethrown later. */
  private callBack(cb: (err: Error | null) => void, err: Error | null): void {
    try {
      cb(err);
    } catch (e) {
      process.nextTick(() => {
        throw e;
      });
    }
  }

  private fail(e: unknown): void {
    if (this.failure === null) {
      this.failure = e instanceof FencedError || e instanceof StoreError
        ? e
        : new StoreError(`journal ${this.journalDir}: write failed: ${errMsg(e)}`, 'ERR_STORE_IO', { cause: e });
      if (this.state === 'closing') this.failedWhileClosing = true;
      this.log('error', `journal: ${this.failure.message}; refusing further writes`);
    }
    this.writing = false;
    this.inflight = null;
    this.len = 0;
    this.failWaiters();
    this.finishCloseIfIdle();
  }

  private finishCloseIfIdle(): void {
    if (this.state !== 'closing' || this.writing) return;
    if (this.failure === null && (this.len > 0 || this.durable < this.written || this.waiting() || this.compactWaiters.length > 0)) return;
    this.state = 'closed';
    for (const s of this.segments) this.closeQuietly(s);
    const err = this.failedWhileClosing ? this.failure : null;
    if (err !== null) this.closeReject?.(err);
    else this.closeResolve?.();
    this.closeResolve = this.closeReject = null;
  }

  private closeQuietly(s: Segment): void {
    if (s.fd < 0) return;
    try {
      fs.closeSync(s.fd);
    } catch (e) {
      this.log('warning', `journal: closing ${s.file}: ${errMsg(e)}`);
    }
    s.fd = -1;
  }

  // ---------------------------------------------------------------------------------- compaction

  private compactionDue(): boolean {
    const file = this.fileBytes();
    return file >= this.compactMinBytes && file >= this.compactRetryAt && file - this.liveBytes > this.compactRatio * file;
  }

  private compactGuarded(): void {
    const waiters = this.compactWaiters.splice(0);
    try {
      this.compactNow();
      for (const w of waiters) w.resolve();
    } catch (e) {
      if (e instanceof FencedError || this.failure !== null) {
        this.fail(e);
        for (const w of waiters) w.reject(this.failure as Error);
        return;
      }
      // Not fatal: the old segment is intact and still written to; try again after more growth.
      this.compactRetryAt = this.fileBytes() + Math.max(this.compactMinBytes, 1 * MiB);
      this.log('error', `journal: compaction failed (${errMsg(e)}); retrying once the journal has grown to ${this.compactRetryAt} bytes`);
      for (const w of waiters) w.reject(e instanceof Error ? e : new StoreError(String(e), 'ERR_STORE_IO'));
    }
  }

  /**
   * Writes the live state as a new segment superseding every current one and switches to it.
   * Synchronous, between batches: the pending buffer's records are part of the state written, so
   * it is dropped and every waiting sync is satisfied by the new segment.
   */
  private compactNow(): void {
    const t0 = Date.now();
    const before = this.fileBytes();
    const seq = this.active.seq + 1;
    if (seq > MAX_SEQ) throw new StoreError('journal segment sequence exhausted', 'ERR_STORE_IO');
    const { seg, size, offsets } = this.writeSegment(seq, this.active.seq);
    // Renamed into place: from here on the new segment is the journal, whatever fails next.
    const old = this.segments;
    this.segments = [seg];
    this.active = seg;
    this.otherBytes = 0;
    let i = 0;
    for (const m of this.messages.values()) {
      m.seg = seg;
      m.off = offsets[i++];
    }
    this.len = 0;
    this.base = this.written = this.durable = size;
    this.compactions++;
    try {
      fsyncDir(this.journalDir);
    } catch (e) {
      // Without the rename on disk, a crash would bring back the old segment and lose what we append now.
      throw this.fatal(new StoreError(`journal: fsync of ${this.journalDir} after compaction failed: ${errMsg(e)}`, 'ERR_STORE_IO', { cause: e }));
    }
    for (const s of old) {
      this.closeQuietly(s);
      try {
        this.fence();
      } catch (e) {
        throw this.fatal(e);
      }
      try {
        fs.unlinkSync(s.file);
      } catch (e) {
        // Harmless: recovery deletes segments superseded by the new header.
        this.log('warning', `journal: cannot delete ${s.file} after compaction: ${errMsg(e)}`);
      }
    }
    this.log('info', `journal: compacted ${before} -> ${size} bytes (${this.messages.size} messages, ${this.queues.size} queues) into ${seg.file} in ${Date.now() - t0} ms`);
    // Every sync waiting now was registered before the snapshot, so the snapshot covers it (and
    // its target is an offset in the old segment, meaningless now). Those its callbacks register
    // wait for the next batch.
    const upTo = this.wCbs.length;
    while (this.wHead < upTo) this.callBack(this.wCbs[this.wHead++], null);
    this.trimWaiters();
  }

  private fatal(e: unknown): unknown {
    this.fail(e);
    return this.failure;
  }

  /**
   * Writes the whole live state as segment `seq` (tmp file, fsync, rename); returns it open for
   * appending with every live message's new payload offset, in `messages` order. Nothing is left
   * behind when it throws.
   */
  private writeSegment(seq: number, supersedes: number): { seg: Segment; size: number; offsets: number[] } {
    const file = path.join(this.journalDir, segmentName(seq));
    const tmp = `${file}.tmp`;
    this.fence();
    const fd = fs.openSync(tmp, 'w+');
    let renamed = false;
    try {
      const w = new SnapshotWriter(fd, this.fence);
      let at = w.reserve(HEADER_BYTES);
      encodeHeader(w.buf, at, { seq, supersedes, nextMessageId: this.nextMsgId, nextQueueId: this.nextQueueId });
      for (const q of this.queues.values()) {
        at = w.reserve(q.recBytes);
        encodeQueue(w.buf, at, q);
      }
      const offsets = new Array<number>(this.messages.size);
      let i = 0;
      for (const [id, m] of this.messages) {
        const total = MSG_OVERHEAD + m.len;
        at = w.reserve(total);
        putU64(w.buf, at + HEAD, id);
        this.copyPayload(m, w.buf, at + MSG_OVERHEAD);
        seal(w.buf, at, total, T_MSG);
        offsets[i++] = w.pos + at + MSG_OVERHEAD;
      }
      for (const q of this.queues.values()) {
        for (const [id, count] of q.refs) {
          at = w.reserve(REF_BYTES);
          encodeQueueRef(w.buf, at, T_REF, q.id, id);
          if (count > 0) {
            at = w.reserve(DCOUNT_BYTES);
            encodeCount(w.buf, at, q.id, id, count);
          }
        }
      }
      w.flush();
      fs.fsyncSync(fd);
      this.fence();
      fs.renameSync(tmp, file);
      renamed = true;
      return { seg: { seq, file, fd, size: w.size }, size: w.size, offsets };
    } catch (e) {
      if (!renamed) {
        try {
          fs.closeSync(fd);
        } catch {
          // already failing
        }
        // Fenced: the directory belongs to the new holder now, even our own tmp file (its
        // recovery deletes it).
        if (!(e instanceof FencedError)) {
          try {
            fs.unlinkSync(tmp);
          } catch {
            // recovery deletes stray tmp files
          }
        }
      }
      throw e;
    }
  }
}
