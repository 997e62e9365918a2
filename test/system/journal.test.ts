/**
 * The file journal (broker/store/journal.ts) on a real file system: the store contract, then
 * torn and corrupt tails, compaction (bounded size, exact state, a crash at every step of it),
 * group commit, and a real kill -9 of a process appending as fast as it can.
 */
// @runs-alone: fdatasync batching is counted, which other processes' disk writes disturb.
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { JournalStore } from '../../broker/store/journal';
import { FencedError, StoreError, TxOp } from '../../broker/store/types';
import { childPayload } from '../support/journal-child';
import { ExpectedState, assertRecovered, storeContract, synced } from '../support/store-contract';
import { waitFor } from '../support/wait';

const CHILD = path.join(__dirname, '..', 'support', 'journal-child.js');

const dirs: string[] = [];
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'amqp-mesh-journal-'));
  dirs.push(d);
  return d;
}
function removeDirs(): void {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

let contractDir = '';
storeContract('JournalStore', {
  open: (opts) => {
    contractDir = tmpDir();
    return new JournalStore(contractDir, opts);
  },
  reopen: (opts) => new JournalStore(contractDir, opts),
  cleanup: removeDirs,
});

const t = suite('JournalStore on disk');
t.after.each(removeDirs);

function files(dir: string): string[] {
  return fs.readdirSync(path.join(dir, 'journal')).sort();
}
function onlySegment(dir: string): string {
  const segs = files(dir).filter((f) => f.endsWith('.seg'));
  assert.is(segs.length, 1, `one segment, found ${files(dir).join(', ')}`);
  return path.join(dir, 'journal', segs[0]);
}
function body(id: number, size = 200): Buffer {
  return Buffer.alloc(size, id & 0xff);
}
/** Adds message `id` with a ref in `q` to the store and to the expectation. */
function put(s: JournalStore, exp: ExpectedState, q: string, id: number, size = 200): void {
  s.addMessage(id, body(id, size));
  s.addRef(q, id);
  exp.addMessage(id, body(id, size));
  exp.addRef(q, id);
}
function logger(into: string[]): (level: string, msg: string) => void {
  return (level, msg) => into.push(`${level}: ${msg}`);
}

t('torn tail: a record cut half-way is truncated, logged and reported; every earlier record is kept', async () => {
  const dir = tmpDir();
  const exp = new ExpectedState();
  let s = new JournalStore(dir);
  s.recover();
  s.createQueue('q', {});
  exp.createQueue('q', {});
  for (let id = 1; id <= 10; id++) put(s, exp, 'q', id);
  await synced(s);
  await s.close();
  const seg = onlySegment(dir);
  const good = fs.statSync(seg).size;
  s = new JournalStore(dir);
  s.recover();
  s.addMessage(11, body(11, 1000)); // its MSG record starts at `good`
  s.addRef('q', 11);
  await s.close();
  fs.truncateSync(seg, good + 500);

  const logs: string[] = [];
  s = new JournalStore(dir, { log: logger(logs) });
  const rec = s.recover();
  exp.nextMessageId = 11; // the torn record is gone, and with it id 11
  assertRecovered(rec, exp, 'after the torn tail');
  assert.ok(rec.truncated, 'truncation reported');
  assert.is(rec.truncated!.file, seg);
  assert.is(rec.truncated!.offset, good);
  assert.is(rec.truncated!.droppedBytes, 500);
  assert.match(rec.truncated!.reason, /partial record/);
  assert.is(fs.statSync(seg).size, good, 'file truncated at the torn record');
  const warn = logs.find((l) => l.startsWith('warning:') && l.includes(seg) && l.includes(`offset ${good}`) && l.includes('500 bytes'));
  assert.ok(warn, `a warning names file, offset and bytes: ${logs.join(' | ')}`);
  // Appending after the truncation point works and the next recovery is clean.
  put(s, exp, 'q', 12);
  await s.close();
  s = new JournalStore(dir);
  const rec2 = s.recover();
  assert.is(rec2.truncated, null);
  assertRecovered(rec2, exp, 'after appending past the truncation');
  await s.close();

  // A zero-filled tail (what ext4 can leave after a crash) and a partial header.
  const size = fs.statSync(seg).size;
  fs.appendFileSync(seg, Buffer.alloc(4096));
  s = new JournalStore(dir);
  let rec3 = s.recover();
  assert.is(rec3.truncated?.offset, size);
  assert.is(rec3.truncated?.droppedBytes, 4096);
  assert.match(rec3.truncated!.reason, /bad record length 0/);
  assertRecovered(rec3, exp, 'after a zero-filled tail');
  await s.close();
  fs.appendFileSync(seg, Buffer.from([1, 2, 3]));
  s = new JournalStore(dir);
  rec3 = s.recover();
  assert.match(rec3.truncated!.reason, /partial record header/);
  assertRecovered(rec3, exp, 'after a partial header');
  await s.close();
});

t('a flipped byte in a record body: checksum mismatch, truncated there, earlier records kept', async () => {
  const dir = tmpDir();
  const exp = new ExpectedState();
  let s = new JournalStore(dir);
  s.recover();
  s.createQueue('q', { x: 1 });
  exp.createQueue('q', { x: 1 });
  for (let id = 1; id <= 5; id++) put(s, exp, 'q', id);
  await synced(s);
  const mark = s.stats().fileBytes;
  for (let id = 6; id <= 10; id++) {
    s.addMessage(id, body(id));
    s.addRef('q', id);
  }
  await s.close();
  const seg = onlySegment(dir);
  const total = fs.statSync(seg).size;
  const fd = fs.openSync(seg, 'r+');
  const one = Buffer.alloc(1);
  fs.readSync(fd, one, 0, 1, mark + 9 + 8 + 50); // inside message 6's payload
  one[0] ^= 0x40;
  fs.writeSync(fd, one, 0, 1, mark + 9 + 8 + 50);
  fs.closeSync(fd);
  const logs: string[] = [];
  s = new JournalStore(dir, { log: logger(logs) });
  const rec = s.recover();
  exp.nextMessageId = 6;
  assertRecovered(rec, exp, 'records before the corrupt one');
  assert.equal(rec.truncated, { file: seg, offset: mark, droppedBytes: total - mark, reason: 'checksum mismatch' });
  assert.ok(logs.some((l) => l.startsWith('warning:') && l.includes('checksum mismatch') && l.includes(seg)), logs.join(' | '));
  await s.close();
});

t('a torn or corrupt TX record recovers none of its ops', async () => {
  for (const damage of ['cut', 'flip'] as const) {
    const dir = tmpDir();
    const exp = new ExpectedState();
    let s = new JournalStore(dir);
    s.recover();
    s.createQueue('q', {});
    s.createQueue('r', {});
    exp.createQueue('q', {});
    exp.createQueue('r', {});
    put(s, exp, 'q', 1);
    await synced(s);
    const mark = s.stats().fileBytes;
    const ops: TxOp[] = [
      { op: 'addMessage', msgId: 2, payload: body(2, 3000) },
      { op: 'addRef', queue: 'q', msgId: 2 },
      { op: 'addMessage', msgId: 3, payload: body(3) },
      { op: 'addRef', queue: 'r', msgId: 3 },
      { op: 'ack', queue: 'q', msgId: 1 },
    ];
    s.commitTx(ops);
    await s.close();
    const seg = onlySegment(dir);
    const size = fs.statSync(seg).size;
    if (damage === 'cut') {
      fs.truncateSync(seg, mark + Math.floor((size - mark) / 2));
    } else {
      const fd = fs.openSync(seg, 'r+');
      fs.writeSync(fd, Buffer.from([0xee]), 0, 1, size - 1);
      fs.closeSync(fd);
    }
    s = new JournalStore(dir);
    const rec = s.recover();
    assertRecovered(rec, exp, `${damage}: none of the tx`);
    assert.is(rec.truncated?.offset, mark, `${damage}: truncated at the TX record`);
    await s.close();
  }
});

t('a segment whose header is damaged is refused (ERR_STORE_CORRUPT), not truncated', async () => {
  const dir = tmpDir();
  const s = new JournalStore(dir);
  s.recover();
  await s.close();
  const seg = onlySegment(dir);
  const fd = fs.openSync(seg, 'r+');
  fs.writeSync(fd, Buffer.from('X'), 0, 1, 9);
  fs.closeSync(fd);
  const size = fs.statSync(seg).size;
  assert.throws(() => new JournalStore(dir).recover(), (e: unknown) => e instanceof StoreError && e.code === 'ERR_STORE_CORRUPT');
  assert.is(fs.statSync(seg).size, size, 'left alone');
});

t('compaction keeps the journal bounded and the state exact (refs order, delivery counts, ids)', async () => {
  const dir = tmpDir();
  const logs: string[] = [];
  const s = new JournalStore(dir, { compactMinBytes: 64 * 1024, log: logger(logs) });
  s.recover();
  const exp = new ExpectedState();
  s.createQueue('q', { kept: 'one in 50' });
  s.createQueue('r', {});
  exp.createQueue('q', { kept: 'one in 50' });
  exp.createQueue('r', {});
  let id = 1;
  let maxFile = 0;
  let prev: number[] = [];
  for (let round = 0; round < 200; round++) {
    const ids: number[] = [];
    for (let k = 0; k < 100; k++, id++) {
      put(s, exp, 'q', id, 1024);
      if (id % 7 === 0) {
        s.addRef('r', id);
        exp.addRef('r', id);
      }
      ids.push(id);
    }
    for (const old of prev) {
      if (old % 50 === 0) {
        s.setDeliveryCount('q', old, 3);
        exp.setDeliveryCount('q', old, 3);
        continue;
      }
      s.ack('q', old);
      exp.ack('q', old);
      if (old % 7 === 0) {
        s.ack('r', old);
        exp.ack('r', old);
      }
    }
    prev = ids;
    await synced(s);
    maxFile = Math.max(maxFile, fs.statSync(onlySegment(dir)).size);
  }
  for (const old of prev) {
    s.ack('q', old);
    exp.ack('q', old);
    if (old % 7 === 0) {
      s.ack('r', old);
      exp.ack('r', old);
    }
  }
  await synced(s);
  const st = s.stats();
  const written = 20_000 * 1024;
  assert.ok(st.compactions >= 5, `compacted ${st.compactions} times`);
  assert.ok(maxFile < 2 * 1024 * 1024, `file stayed small: at most ${maxFile} bytes of ${written} written`);
  assert.is(st.liveMessages, exp.liveIds().length);
  assert.is(st.liveMessages, 398, "ids divisible by 50, but for the last round's (acked)");
  assert.ok(logs.some((l) => l.startsWith('info:') && l.includes('compacted')), 'compactions are logged');
  assert.equal(files(dir).filter((f) => !f.endsWith('.seg')), [], 'no tmp file left');
  for (const live of exp.liveIds()) assert.ok(s.readPayload(live).equals(body(live, 1024)), `payload ${live} after compaction`);
  // Right after a compaction every byte is live: the accounting is exact.
  await s.compact();
  const after = s.stats();
  assert.is(after.liveBytes, after.fileBytes, 'liveBytes === fileBytes right after compaction');
  assert.is(after.fileBytes, fs.statSync(onlySegment(dir)).size);
  await s.close();
  const s2 = new JournalStore(dir);
  const rec = s2.recover();
  exp.restarted();
  assertRecovered(rec, exp, 'after compactions');
  assert.is(rec.nextMessageId, 20_001, 'the highest id was acked and compacted away, yet never reused');
  await s2.close();
});

t('liveBytes is exact through every kind of mutation: a compaction writes exactly that many bytes', async () => {
  const dir = tmpDir();
  const s = new JournalStore(dir, { compactMinBytes: 1 << 30 });
  s.recover();
  const exp = new ExpectedState();
  s.createQueue('a', { v: 1 });
  s.createQueue('b', {});
  s.createQueue('c', {});
  exp.createQueue('a', { v: 1 });
  exp.createQueue('b', {});
  exp.createQueue('c', {});
  for (let id = 1; id <= 60; id++) put(s, exp, ['a', 'b', 'c'][id % 3], id, id * 10);
  s.createQueue('a', { v: 2, longer: 'meta than before' }); // meta replaced
  exp.createQueue('a', { v: 2, longer: 'meta than before' });
  for (let id = 1; id <= 60; id += 4) {
    const q = ['a', 'b', 'c'][id % 3];
    s.setDeliveryCount(q, id, 2);
    s.setDeliveryCount(q, id, id % 2); // back to 0 for even ids
    exp.setDeliveryCount(q, id, id % 2);
  }
  s.addRef('a', 4); // shared between b and a
  exp.addRef('a', 4);
  s.deleteQueue('c'); // with counted refs
  exp.deleteQueue('c');
  const tx: TxOp[] = [
    { op: 'addMessage', msgId: 100, payload: body(100, 777) },
    { op: 'addRef', queue: 'a', msgId: 100 },
    { op: 'addMessage', msgId: 101, payload: body(101, 5) },
    { op: 'addRef', queue: 'b', msgId: 101 },
    { op: 'ack', queue: 'b', msgId: 101 },
    { op: 'ack', queue: 'b', msgId: 4 },
  ];
  s.commitTx(tx);
  for (const op of tx) exp.apply(op);
  const before = s.stats().liveBytes;
  await s.compact();
  const st = s.stats();
  assert.is(st.fileBytes, fs.statSync(onlySegment(dir)).size);
  assert.is(st.liveBytes, before, 'compaction does not change liveBytes');
  assert.is(st.fileBytes, st.liveBytes, 'the compacted segment is exactly liveBytes');
  await s.close();
  const s2 = new JournalStore(dir);
  assertRecovered(s2.recover(), exp, 'after the compaction');
  assert.is(s2.stats().liveBytes, before, 'recovery computes the same liveBytes');
  await s2.close();
});

t('readPayload while the batch holding the body is being written', async () => {
  const dir = tmpDir();
  const s = new JournalStore(dir);
  s.recover();
  s.createQueue('q', {});
  for (let id = 1; id <= 2000; id++) {
    s.addMessage(id, body(id, 4096));
    s.addRef('q', id);
  }
  let ok = 0;
  s.sync(() => undefined);
  // The writer starts in the next turn and its 8 MB write is still in flight right after.
  await new Promise((res) => setImmediate(res));
  for (let id = 1; id <= 2000; id++) if (s.readPayload(id).equals(body(id, 4096))) ok++;
  s.addMessage(5000, body(5000)); // pending while the batch is in flight
  s.addRef('q', 5000);
  assert.ok(s.readPayload(5000).equals(body(5000)));
  assert.is(ok, 2000);
  await synced(s);
  for (let id = 1; id <= 2000; id += 97) assert.ok(s.readPayload(id).equals(body(id, 4096)), `from disk ${id}`);
  await s.close();
});

/** A journal with live messages (refs in two queues, delivery counts), dead ones, and everything synced. */
async function buildState(dir: string, exp: ExpectedState, fence?: () => void): Promise<JournalStore> {
  const s = new JournalStore(dir, { fence, compactMinBytes: 1 << 30 });
  s.recover();
  s.createQueue('q', { n: 1 });
  s.createQueue('r', { n: 2 });
  exp.createQueue('q', { n: 1 });
  exp.createQueue('r', { n: 2 });
  for (let id = 1; id <= 3000; id++) {
    put(s, exp, id % 3 ? 'q' : 'r', id, 1000);
    if (id % 4 === 0) {
      s.ack(id % 3 ? 'q' : 'r', id);
      exp.ack(id % 3 ? 'q' : 'r', id);
    } else if (id % 5 === 0) {
      s.setDeliveryCount(id % 3 ? 'q' : 'r', id, id % 11);
      exp.setDeliveryCount(id % 3 ? 'q' : 'r', id, id % 11);
    }
  }
  await synced(s);
  return s;
}

t('crash mid-compaction at every step (simulated by the fence stopping all writes): recovery is exact', async () => {
  // The fence is called before every physical write of a compaction (tmp create, each flush,
  // rename, each delete): throwing at the k-th call stops the store exactly there.
  let outcomes = new Set<string>();
  for (let k = 1; k <= 8; k++) {
    const dir = tmpDir();
    const exp = new ExpectedState();
    let calls = -1;
    const fence = (): void => {
      if (calls >= 0 && ++calls >= k) throw new FencedError(`stop at fence call ${k}`);
    };
    const s = await buildState(dir, exp, fence);
    calls = 0;
    const res = await s.compact().then(() => 'done', (e: Error) => (e instanceof FencedError ? 'stopped' : `error ${e.message}`));
    outcomes.add(`${k}:${res}:${files(dir).join(',')}`);
    await s.close().catch(() => undefined);
    const s2 = new JournalStore(dir);
    const rec = s2.recover();
    exp.restarted();
    assertRecovered(rec, exp, `crash at fence call ${k} (${res})`);
    assert.equal(files(dir).filter((f) => !/^journal-\d{12}\.seg$/.test(f)), [], `k=${k}: stray files removed`);
    assert.is(files(dir).length, 1, `k=${k}: one segment after recovery`);
    // And the recovered journal keeps working.
    put(s2, exp, 'q', 5000);
    await s2.close();
    const s3 = new JournalStore(dir);
    assertRecovered(s3.recover(), exp, `k=${k}: after one more append`);
    await s3.close();
  }
  const list = [...outcomes].join(' | ');
  assert.ok(list.includes('.seg.tmp'), `some crash left a tmp file: ${list}`);
  assert.ok(/journal-000000000001\.seg,journal-000000000002\.seg/.test(list), `some crash left both segments: ${list}`);
  assert.ok(list.includes(':done:'), `the last runs completed: ${list}`);
  outcomes = new Set();
});

t('crash after the rename: an old segment back beside the compacted one is superseded and removed', async () => {
  const dir = tmpDir();
  const exp = new ExpectedState();
  const s = await buildState(dir, exp);
  await s.close();
  const oldSeg = onlySegment(dir);
  const oldBytes = fs.readFileSync(oldSeg);
  const logs: string[] = [];
  const s2 = new JournalStore(dir, { log: logger(logs) });
  s2.recover();
  exp.restarted();
  await s2.compact();
  assert.is(s2.stats().compactions, 1);
  put(s2, exp, 'r', 4000); // appended to the compacted segment
  await s2.close();
  assert.is.not(onlySegment(dir), oldSeg);
  fs.writeFileSync(oldSeg, oldBytes);
  // Plus a half-written tmp of a later compaction.
  fs.writeFileSync(path.join(dir, 'journal', 'journal-000000000003.seg.tmp'), oldBytes.subarray(0, 5000));
  const s3 = new JournalStore(dir, { log: logger(logs) });
  const rec = s3.recover();
  assertRecovered(rec, exp, 'old + new segments + tmp');
  assert.equal(files(dir), ['journal-000000000002.seg']);
  assert.ok(logs.some((l) => l.includes('superseded')), logs.join(' | '));
  assert.ok(logs.some((l) => l.includes('did not finish')), logs.join(' | '));
  await s3.close();
});

t('group commit: 1000 appends with a sync each, queued at once, share one fdatasync', async () => {
  const dir = tmpDir();
  const s = new JournalStore(dir);
  s.recover();
  s.createQueue('q', {});
  await synced(s);
  const before = s.syncCount;
  let done = 0;
  const errors: unknown[] = [];
  for (let id = 1; id <= 1000; id++) {
    s.addMessage(id, body(id, 1024));
    s.addRef('q', id);
    s.sync((err) => {
      if (err) errors.push(err);
      done++;
    });
  }
  await waitFor(() => done === 1000, 10_000, '1000 sync callbacks');
  assert.equal(errors, []);
  const used = s.syncCount - before;
  assert.ok(used >= 1 && used <= 2, `1000 syncs took ${used} fdatasyncs`);

  // 16 producers, each waiting for its sync before its next append: batches of ~16.
  const base = s.syncCount;
  let id = 2000;
  let finished = 0;
  const producer = (left: number): void => {
    if (left === 0) {
      finished++;
      return;
    }
    const m = id++;
    s.addMessage(m, body(m, 1024));
    s.addRef('q', m);
    s.sync((err) => {
      if (err) errors.push(err);
      producer(left - 1);
    });
  };
  for (let p = 0; p < 16; p++) producer(100);
  await waitFor(() => finished === 16, 30_000, '16 producers');
  assert.equal(errors, []);
  const batched = s.syncCount - base;
  assert.ok(batched <= 400, `1600 sequential-per-producer appends took ${batched} fdatasyncs`);
  await s.close();
});

t('acks without a sync are written without an fdatasync; a later sync covers them', async () => {
  const dir = tmpDir();
  const s = new JournalStore(dir);
  s.recover();
  s.createQueue('q', {});
  for (let id = 1; id <= 10; id++) {
    s.addMessage(id, body(id));
    s.addRef('q', id);
  }
  await synced(s);
  const n = s.syncCount;
  s.ack('q', 1);
  const seg = onlySegment(dir);
  const size = fs.statSync(seg).size;
  await waitFor(() => fs.statSync(seg).size > size, 5000, 'the ack written');
  assert.is(s.syncCount, n, 'no fdatasync nobody waits for');
  await synced(s);
  assert.is(s.syncCount, n + 1, 'sync fdatasyncs what was written');
  await s.close();
});

interface ChildRun {
  acked: number[];
  done: number[];
  counted: number[];
  ready: number;
  stderr: string;
}

/** Starts the child, SIGKILLs it once it printed `target` ACKED lines, returns what it printed. */
async function runAndKill(dir: string, target: number): Promise<ChildRun> {
  const out: ChildRun = { acked: [], done: [], counted: [], ready: 0, stderr: '' };
  let child: ChildProcess | null = null;
  try {
    const c = spawn(process.execPath, [CHILD, dir, '8', String(256 * 1024)], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    let partial = '';
    let exited = false;
    const closed = new Promise<void>((resolve) => c.on('close', () => resolve()));
    c.on('exit', () => (exited = true));
    c.stdout!.setEncoding('utf8');
    c.stderr!.setEncoding('utf8');
    c.stderr!.on('data', (d: string) => (out.stderr = (out.stderr + d).slice(-20_000)));
    c.stdout!.on('data', (d: string) => {
      const lines = (partial + d).split('\n');
      partial = lines.pop() as string;
      for (const line of lines) {
        const [word, num] = line.split(' ');
        const n = Number(num);
        if (word === 'ACKED') out.acked.push(n);
        else if (word === 'DONE') out.done.push(n);
        else if (word === 'COUNTED') out.counted.push(n);
        else if (word === 'READY') out.ready = n;
      }
    });
    await waitFor(() => out.acked.length >= target || exited, 30_000, `${target} ACKED lines`);
    assert.ok(!exited, `the child died by itself: ${out.stderr}`);
    process.kill(c.pid as number, 'SIGKILL');
    await closed;
    assert.is(c.signalCode, 'SIGKILL');
    return out;
  } finally {
    if (child && child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

t('kill -9 at random moments (5 runs): every message printed ACKED is recovered, every DONE ack stays acked', async () => {
  const dir = tmpDir();
  const acked = new Set<number>();
  const done = new Set<number>();
  const counted = new Set<number>();
  let previous: Map<number, number> | null = null;
  let truncations = 0;
  let compactions = 0;
  const runs: string[] = [];
  for (let run = 0; run < 5; run++) {
    const target = 200 + Math.floor(Math.random() * 4000);
    const r = await runAndKill(dir, target);
    for (const id of r.acked) acked.add(id);
    for (const id of r.done) done.add(id);
    for (const id of r.counted) counted.add(id);
    compactions += (r.stderr.match(/compacted/g) ?? []).length;

    const s = new JournalStore(dir);
    const rec = s.recover();
    if (rec.truncated) truncations++;
    const q = rec.queues.get('q');
    assert.ok(q, 'queue q recovered');
    const refs = new Map(q!.refs.map((x) => [x.msgId, x.deliveryCount]));
    assert.is(refs.size, q!.refs.length, 'no duplicate refs');
    for (const id of acked) {
      const where = `run ${run}, id ${id}`;
      if (done.has(id)) {
        assert.ok(!refs.has(id) && !rec.messages.has(id), `${where}: its durable ack was lost`);
      } else if (id % 4 !== 1) {
        continue; // ack in flight at the kill: either state is right
      } else {
        assert.ok(refs.has(id), `${where}: ACKED but not recovered`);
        assert.ok(rec.messages.get(id)?.equals(childPayload(id)), `${where}: payload differs`);
        const c = refs.get(id);
        if (counted.has(id)) assert.is(c, 2, `${where}: durable delivery count lost`);
        else if (id % 12 !== 1) assert.is(c, 0, `${where}: delivery count`);
      }
    }
    for (const [id] of refs) {
      assert.ok(rec.messages.get(id)?.equals(childPayload(id)), `run ${run}: recovered message ${id} has its payload`);
      assert.ok(id < rec.nextMessageId, `run ${run}: id ${id} below nextMessageId`);
    }
    assert.is(rec.messages.size, refs.size, 'every recovered body has its ref');
    assert.ok(rec.nextMessageId > Math.max(0, ...r.acked), 'nextMessageId beyond every ACKED id');
    // Ids of earlier runs are not touched by later ones: their state must not change.
    if (previous) {
      for (const [id, c] of previous) assert.is(refs.get(id), c, `run ${run}: message ${id} of an earlier run changed`);
      for (const [id] of refs) if (id < r.ready) assert.ok(previous.has(id), `run ${run}: message ${id} of an earlier run came back`);
    }
    previous = refs;
    runs.push(`${r.acked.length} acked${rec.truncated ? `, torn ${rec.truncated.droppedBytes}B` : ''}`);
    await s.close();
  }
  assert.ok(acked.size > 1000, `enough traffic: ${acked.size} ACKED`);
  process.stdout.write(`\n    kill -9 runs: ${runs.join('; ')}; ${truncations} torn tails, ${compactions} compactions in the children\n`);
});

t.run();
