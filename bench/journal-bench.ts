/**
 * Journal group commit: durable appends per second of 1 KiB messages (addMessage + addRef, then
 * sync) with 1, 16 and 64 "producers", each waiting for its sync before its next append, as a
 * producer waits for its disposition. Prints figures; asserts nothing.
 *
 *   node dist/bench/journal-bench.js [seconds per run, default 3]
 *
 * Env: BENCH_DIR: where the journal goes (default the OS temp dir; fdatasync cost is the disk's).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { JournalStore } from '../broker/store/journal';

/** One run's figures. */
export interface JournalBenchResult {
  producers: number;
  appends: number;
  appendsPerSec: number;
  fdatasyncsPerSec: number;
  /** Appends covered by one fdatasync on average. */
  appendsPerSync: number;
  p50Ms: number;
  p99Ms: number;
}

/** Runs `producers` sequential producers for `seconds` against a fresh journal in `baseDir`. */
export async function journalBench(producers: number, seconds: number, baseDir = process.env.BENCH_DIR || os.tmpdir()): Promise<JournalBenchResult> {
  const dir = fs.mkdtempSync(path.join(baseDir, 'amqp-mesh-journal-bench-'));
  const store = new JournalStore(dir);
  try {
    store.recover();
    store.createQueue('bench', { address: 'bench' });
    const body = Buffer.alloc(1024, 0x61);
    const latencies: number[] = [];
    let nextId = 1;
    let appends = 0;
    let stop = false;
    let running = producers;
    let allDone: () => void = () => undefined;
    const finished = new Promise<void>((resolve) => (allDone = resolve));
    const produce = (): void => {
      if (stop) {
        if (--running === 0) allDone();
        return;
      }
      const id = nextId++;
      const t0 = process.hrtime.bigint();
      store.addMessage(id, body);
      store.addRef('bench', id);
      store.sync((err) => {
        if (err) throw err;
        appends++;
        if (latencies.length < 2_000_000) latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        produce();
      });
    };
    const syncs0 = store.syncCount;
    const started = process.hrtime.bigint();
    for (let p = 0; p < producers; p++) produce();
    const timer = setTimeout(() => (stop = true), seconds * 1000);
    await finished;
    clearTimeout(timer);
    const secs = Number(process.hrtime.bigint() - started) / 1e9;
    const syncs = store.syncCount - syncs0;
    latencies.sort((a, b) => a - b);
    const pct = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
    return {
      producers,
      appends,
      appendsPerSec: appends / secs,
      fdatasyncsPerSec: syncs / secs,
      appendsPerSync: syncs ? appends / syncs : 0,
      p50Ms: pct(0.5),
      p99Ms: pct(0.99),
    };
  } finally {
    await store.close().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 3);
  const where = process.env.BENCH_DIR || os.tmpdir();
  process.stdout.write(`journal bench: 1 KiB messages, sync'd appends, ${seconds} s per run, in ${where}\n`);
  process.stdout.write('producers   appends/s   fdatasync/s   appends/sync   p50 ms   p99 ms\n');
  for (const producers of [1, 16, 64]) {
    const r = await journalBench(producers, seconds, where);
    process.stdout.write(
      `${String(producers).padStart(9)}   ${r.appendsPerSec.toFixed(0).padStart(9)}   ${r.fdatasyncsPerSec.toFixed(0).padStart(11)}   ` +
        `${r.appendsPerSync.toFixed(1).padStart(12)}   ${r.p50Ms.toFixed(2).padStart(6)}   ${r.p99Ms.toFixed(2).padStart(6)}\n`,
    );
  }
}

if (require.main === module) {
  main().catch((e: unknown) => {
    process.stderr.write(`journal bench failed: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  });
}
