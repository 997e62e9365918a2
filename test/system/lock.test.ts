/**
 * The store lock: the StoreLock contract on both backends (FileLeaseLock on a temporary
 * directory, MemoryLock), then FileLeaseLock between real processes (test/support/lock-child.ts):
 * two brokers started together, kill -9 of the live one (takeover time measured), a live one
 * frozen by SIGSTOP past its lease (it must step down without writing when it resumes), and a
 * clean SIGTERM release.
 */
// @runs-alone: takeover times are asserted.
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tokenName } from '../../broker/ha/lease';
import type { StoreLock } from '../../broker/ha/lock';
import { FileLeaseLock, LeaseLockOptions } from '../../broker/io/file-lock';
import { MemoryLock, MemoryLockSpace } from '../../broker/io/memory-lock';
import { LockPair, lockContract } from '../support/lock-contract';
import { waitFor } from '../support/wait';

const CHILD = path.join(__dirname, '..', 'support', 'lock-child.js');
const TIMING = { pollMs: 20, leaseMs: 300, renewMs: 50 };

function tmpDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `amqp-mesh-lock-${tag}-`));
}

/** Per-lock test hooks: a clock that can be pushed forward, and a poll counter. */
function hooked<L extends StoreLock>(make: (opts: LeaseLockOptions) => L, hooks: Map<StoreLock, { freeze(ms: number): void; polls(): number }>): L {
  let offset = 0;
  let polls = 0;
  const lock = make({ ...TIMING, clock: () => performance.now() + offset, onPoll: () => polls++ });
  hooks.set(lock, { freeze: (ms) => (offset += ms), polls: () => polls });
  return lock;
}

function pairHooks(hooks: Map<StoreLock, { freeze(ms: number): void; polls(): number }>) {
  return {
    ...TIMING,
    polls: (l: StoreLock) => hooks.get(l)!.polls(),
    freeze: (l: StoreLock, ms: number) => hooks.get(l)!.freeze(ms),
  };
}

lockContract('FileLeaseLock', (): LockPair => {
  const dir = tmpDir('contract');
  const hooks = new Map();
  const a = hooked((o) => new FileLeaseLock({ ...o, dir }), hooks);
  const b = hooked((o) => new FileLeaseLock({ ...o, dir }), hooks);
  return {
    a, b, ...pairHooks(hooks),
    intrude: (token) => fs.writeFileSync(path.join(dir, 'lock', tokenName(token)), '', { flag: 'wx' }),
    cleanup: async () => {
      await a.release();
      await b.release();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
});

lockContract('MemoryLock', (): LockPair => {
  const space = new MemoryLockSpace();
  const hooks = new Map();
  const a = hooked((o) => new MemoryLock(space, o), hooks);
  const b = hooked((o) => new MemoryLock(space, o), hooks);
  return {
    a, b, ...pairHooks(hooks),
    intrude: (token) => assert.ok(space.create(token, ''), `token ${token} was free`),
    cleanup: async () => {
      await a.release();
      await b.release();
    },
  };
});

test('renewNow keeps a lease alive through long synchronous work; without it the lease lapses', async () => {
  const dir = tmpDir('renewnow');
  let offset = 0;
  const lock = new FileLeaseLock({ dir, ...TIMING, clock: () => performance.now() + offset });
  try {
    await lock.acquire();
    // the clock moves on without the renewal timer running, as in a blocked event loop
    offset += 0.8 * TIMING.leaseMs;
    lock.renewNow();
    offset += 0.8 * TIMING.leaseMs;
    lock.checkFence();
    offset += 0.8 * TIMING.leaseMs;
    assert.throws(() => lock.checkFence(), /lapsed/);
  } finally {
    await lock.release();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('MemoryLock.crash: no release, no onLost; the peer sees the pid dead and takes over at its next poll', async () => {
  const space = new MemoryLockSpace();
  const a = new MemoryLock(space, { pollMs: 20, leaseMs: 60_000 });
  const b = new MemoryLock(space, { pollMs: 20, leaseMs: 60_000 });
  let lost = 0;
  a.onLost(() => lost++);
  try {
    await a.acquire();
    const got = b.acquire();
    a.crash();
    assert.is(await got, 2);
    assert.is(lost, 0);
    assert.is(a.token, 0);
  } finally {
    await a.release();
    await b.release();
  }
});

// ------------------------------------------------------------------------------------------
// Real processes

/** A running lock-child and everything it printed. */
interface Child {
  proc: ChildProcess;
  pid: number;
  lines: string[];
  /** performance.now() when each line arrived, same index as `lines`. */
  at: number[];
  exit: { code: number | null; signal: NodeJS.Signals | null } | null;
  exited: Promise<void>;
}

function startChild(dir: string, args: string[]): Child {
  const proc = spawn(process.execPath, [CHILD, dir, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const c: Child = { proc, pid: proc.pid!, lines: [], at: [], exit: null, exited: Promise.resolve() };
  let rest = '';
  proc.stdout!.on('data', (d: Buffer) => {
    const now = performance.now();
    const parts = (rest + d.toString('utf8')).split('\n');
    rest = parts.pop()!;
    for (const l of parts) {
      c.lines.push(l);
      c.at.push(now);
    }
  });
  proc.stderr!.on('data', (d: Buffer) => {
    for (const l of d.toString('utf8').split('\n')) if (l) c.lines.push(`STDERR ${l}`), c.at.push(performance.now());
  });
  c.exited = new Promise((resolve) => proc.on('exit', (code, signal) => {
    c.exit = { code, signal };
    resolve();
  }));
  return c;
}

/** The token a child went LIVE with, or 0. */
function liveToken(c: Child): number {
  const l = c.lines.find((x) => x.startsWith('LIVE '));
  return l ? Number(l.slice(5)) : 0;
}

const count = (c: Child, prefix: string): number => c.lines.filter((l) => l.startsWith(prefix)).length;

/** SIGKILLs a child by PID unless it already exited, and waits for the exit. */
async function kill(c: Child): Promise<void> {
  if (c.exit) return;
  try {
    process.kill(c.pid, 'SIGKILL');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
  await c.exited;
}

function dump(cs: Child[]): string {
  return cs.map((c, i) => `child ${i} (pid ${c.pid}, exit ${JSON.stringify(c.exit)}):\n  ${c.lines.filter((l) => !l.startsWith('WAIT')).join('\n  ')}`).join('\n');
}

test('race: two brokers started together on a fresh store, 100 times: exactly one goes live', async () => {
  const ROUNDS = 100;
  const BATCH = Number(process.env.LOCK_BATCH ?? 5);
  const args = ['poll=20', 'lease=1000', 'renew=100', 'gate=1'];
  let races = 0;
  const t0 = performance.now();
  for (let r0 = 0; r0 < ROUNDS; r0 += BATCH) {
    await Promise.all(Array.from({ length: Math.min(BATCH, ROUNDS - r0) }, async (_, i) => {
      const round = r0 + i;
      const dir = tmpDir('race');
      const cs = [startChild(dir, args), startChild(dir, args)];
      try {
        await waitFor(() => cs.every((c) => count(c, 'READY')), 20_000, `round ${round}: both children ready`);
        // Both acquire at one instant, so their first polls meet on the empty lock.
        const at = Date.now() + 15;
        for (const c of cs) c.proc.stdin!.write(`GO ${at}\n`);
        const winner = await waitFor(() => cs.find((c) => liveToken(c) > 0), 20_000, `round ${round}: a winner`);
        const loser = cs[1 - cs.indexOf(winner)];
        const wantPolls = count(loser, 'WAIT') + 10;
        await waitFor(() => count(loser, 'WAIT') >= wantPolls || liveToken(loser) || loser.exit, 20_000, `round ${round}: the loser to keep polling`);
        assert.is(liveToken(winner), 1, `round ${round}: the winner holds token 1\n${dump(cs)}`);
        assert.is(liveToken(loser), 0, `round ${round}: the loser stays a waiting slave\n${dump(cs)}`);
        assert.is(winner.exit, null, `round ${round}: the winner runs\n${dump(cs)}`);
        assert.is(loser.exit, null, `round ${round}: the loser runs\n${dump(cs)}`);
        assert.equal(fs.readdirSync(path.join(dir, 'lock')).filter((n) => !n.startsWith('.')), [tokenName(1)], `round ${round}: one token file`);
        if (loser.lines.some((l) => /claimed by a peer first/.test(l))) races++;
      } finally {
        await Promise.all(cs.map(kill));
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }));
  }
  const secs = (performance.now() - t0) / 1000;
  process.stdout.write(`\n    race: ${ROUNDS} rounds in ${secs.toFixed(1)} s; in ${races} the loser also tried O_EXCL on token 1 and lost\n`);
});

test('kill -9 of the live broker (same host, pollMs 1000): the slave takes over in under 2000 ms', async () => {
  const dir = tmpDir('kill9');
  const cs: Child[] = [];
  try {
    const a = startChild(dir, ['poll=1000']);
    cs.push(a);
    await waitFor(() => liveToken(a), 10_000, 'A live');
    const b = startChild(dir, ['poll=1000']);
    cs.push(b);
    await waitFor(() => count(b, 'WAIT'), 10_000, 'B waiting');
    const t0 = performance.now();
    process.kill(a.pid, 'SIGKILL');
    await waitFor(() => liveToken(b), 10_000, 'B live');
    const ms = b.at[b.lines.findIndex((l) => l.startsWith('LIVE '))] - t0;
    process.stdout.write(`\n    kill -9 takeover (same host, pollMs 1000): ${ms.toFixed(0)} ms\n`);
    assert.is(liveToken(b), 2);
    assert.ok(b.lines.some((l) => /claimed token 2 \(holder-dead\)/.test(l)), `by the dead-pid path\n${dump(cs)}`);
    assert.ok(ms < 2000, `takeover took ${ms.toFixed(0)} ms`);
  } finally {
    await Promise.all(cs.map(kill));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('kill -9 seen from another host (no pid probe): the slave takes over when the lease lapses', async () => {
  const dir = tmpDir('kill9x');
  const cs: Child[] = [];
  try {
    const a = startChild(dir, ['poll=1000', 'host=host-a']);
    cs.push(a);
    await waitFor(() => liveToken(a), 10_000, 'A live');
    const b = startChild(dir, ['poll=1000', 'host=host-b']);
    cs.push(b);
    await waitFor(() => count(b, 'WAIT'), 10_000, 'B waiting');
    const t0 = performance.now();
    process.kill(a.pid, 'SIGKILL');
    await waitFor(() => liveToken(b), 10_000, 'B live');
    const ms = b.at[b.lines.findIndex((l) => l.startsWith('LIVE '))] - t0;
    process.stdout.write(`    kill -9 takeover (other host, pollMs 1000, leaseMs 1500): ${ms.toFixed(0)} ms\n`);
    assert.ok(b.lines.some((l) => /claimed token 2 \(lease-lapsed\)/.test(l)), `by lease\n${dump(cs)}`);
    // unchanged for more than a lease, seen at poll granularity
    assert.ok(ms > 1500 - 300 - 1000 && ms < 1500 + 1000 + 700, `takeover took ${ms.toFixed(0)} ms`);
  } finally {
    await Promise.all(cs.map(kill));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('SIGSTOP past the lease: the slave takes over with a higher token; on SIGCONT the old master is fenced and writes nothing more', async () => {
  const dir = tmpDir('stop');
  const cs: Child[] = [];
  const args = ['poll=100', 'lease=600', 'renew=100'];
  const writes = (): string[] => (fs.existsSync(path.join(dir, 'writes.log')) ? fs.readFileSync(path.join(dir, 'writes.log'), 'utf8').split('\n').filter(Boolean) : []);
  try {
    const a = startChild(dir, args);
    cs.push(a);
    await waitFor(() => liveToken(a), 10_000, 'A live');
    const b = startChild(dir, args);
    cs.push(b);
    await waitFor(() => count(b, 'WAIT') >= 2 && writes().length >= 3, 10_000, 'B waiting, A writing');
    process.kill(a.pid, 'SIGSTOP');
    const t0 = performance.now();
    await waitFor(() => liveToken(b), 10_000, 'B live');
    const ms = b.at[b.lines.findIndex((l) => l.startsWith('LIVE '))] - t0;
    assert.is(liveToken(b), 2, 'a higher token');
    assert.ok(b.lines.some((l) => /\(lease-lapsed\)/.test(l)), 'a stopped process is alive: taken over by lease');
    await waitFor(() => writes().filter((w) => w === '2').length >= 3, 10_000, 'B writing');
    process.kill(a.pid, 'SIGCONT');
    await waitFor(() => a.exit, 10_000, 'A to step down');
    assert.is(a.exit!.code, 3, `A exits 3\n${dump(cs)}`);
    const fenced = a.lines.find((l) => l.startsWith('FENCED '));
    assert.ok(fenced, `A printed FENCED\n${dump(cs)}`);
    assert.is(a.lines[a.lines.length - 1], fenced, 'nothing after FENCED');
    const w = writes();
    const firstOfB = w.indexOf('2');
    assert.ok(w.slice(0, firstOfB).every((x) => x === '1') && w.slice(firstOfB).every((x) => x === '2'), `no write of token 1 after token 2's first: ${w.join(',')}`);
    assert.is(b.exit, null, 'B still live');
    process.stdout.write(`    SIGSTOP takeover (pollMs 100, leaseMs 600): ${ms.toFixed(0)} ms; resumed master: ${fenced}\n`);
  } finally {
    for (const c of cs) {
      if (!c.exit) {
        try {
          process.kill(c.pid, 'SIGCONT');
        } catch {
          // already gone
        }
      }
    }
    await Promise.all(cs.map(kill));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('SIGTERM of the live broker releases the lock: a slave on another host takes over at its next poll, not after the lease', async () => {
  const dir = tmpDir('term');
  const cs: Child[] = [];
  try {
    const a = startChild(dir, ['poll=100', 'lease=5000', 'host=host-a']);
    cs.push(a);
    await waitFor(() => liveToken(a), 10_000, 'A live');
    const b = startChild(dir, ['poll=100', 'lease=5000', 'host=host-b']);
    cs.push(b);
    await waitFor(() => count(b, 'WAIT'), 10_000, 'B waiting');
    const t0 = performance.now();
    process.kill(a.pid, 'SIGTERM');
    await waitFor(() => liveToken(b), 10_000, 'B live');
    const ms = performance.now() - t0;
    await waitFor(() => a.exit, 5000, 'A exit');
    assert.is(a.exit!.code, 0);
    assert.ok(b.lines.some((l) => /claimed token 2 \(released\)/.test(l)), `by the release marker\n${dump(cs)}`);
    assert.ok(ms < 2000, `took ${ms.toFixed(0)} ms (lease 5000)`);
  } finally {
    await Promise.all(cs.map(kill));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
