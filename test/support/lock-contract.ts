/**
 * The StoreLock contract (broker/ha/lock.ts), as one uvu suite every backend must pass. A backend
 * supplies a factory of two locks on one shared store plus a few hooks to simulate what happens
 * to a process from outside (it is frozen; someone else claims the next token).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { StoreLock } from '../../broker/ha/lock';
import { FencedError } from '../../broker/store/types';
import { waitFor } from './wait';

/** Two locks on one shared store, and the backend's hooks. */
export interface LockPair {
  a: StoreLock;
  b: StoreLock;
  /** The pair's timing (both locks use the same). */
  pollMs: number;
  leaseMs: number;
  /** Polls `lock` has made while waiting, so far (the backend counts them through onPoll). */
  polls(lock: StoreLock): number;
  /**
   * Makes `lock` experience a freeze of `ms` (SIGSTOP, a long GC pause): when it next looks at
   * its clock, `ms` more have passed than really did.
   */
  freeze(lock: StoreLock, ms: number): void;
  /**
   * A third party claims token `token` (as a peer that decided the holder was gone would). The
   * holder must be fenced within its lease: at once where it can look (a file), by its next
   * renewal where it cannot (a database row).
   */
  intrude(token: number): void | Promise<void>;
  /** Releases what is left and removes the store. */
  cleanup(): void | Promise<void>;
}

/** What a pending promise has done so far. */
interface Tracked<T> {
  settled: boolean;
  value?: T;
  error?: unknown;
  promise: Promise<void>;
}

function track<T>(p: Promise<T>): Tracked<T> {
  const t: Tracked<T> = { settled: false, promise: Promise.resolve() };
  t.promise = p.then(
    (v) => {
      t.settled = true;
      t.value = v;
    },
    (e) => {
      t.settled = true;
      t.error = e;
    },
  );
  return t;
}

function isFenced(lock: StoreLock): boolean {
  try {
    lock.checkFence();
    return false;
  } catch {
    return true;
  }
}

function assertFenced(lock: StoreLock, what: string): FencedError {
  try {
    lock.checkFence();
  } catch (e) {
    assert.ok(e instanceof FencedError, `${what}: expected FencedError, got ${(e as Error)?.name}: ${(e as Error)?.message}`);
    return e as FencedError;
  }
  assert.unreachable(`${what}: checkFence did not throw`);
  throw new Error('unreachable');
}

/**
 * Registers and runs the contract suite for one backend. Every test makes a fresh pair and
 * cleans it up, whatever happens.
 */
export function lockContract(name: string, makePair: () => LockPair): void {
  const s = suite(`StoreLock contract: ${name}`);
  /** Waits until `lock` has polled enough times to span `leases` whole leases. */
  const pollsSpanning = (p: LockPair, lock: StoreLock, leases: number): Promise<boolean> => {
    const target = p.polls(lock) + Math.ceil((leases * p.leaseMs) / p.pollMs) + 1;
    return waitFor(() => p.polls(lock) >= target, leases * p.leaseMs * 10 + 5000, `${target} polls`);
  };
  const withPair = (fn: (p: LockPair) => Promise<void>) => async () => {
    const p = makePair();
    try {
      await fn(p);
    } finally {
      await p.cleanup();
    }
  };

  s('first acquire gets a token >= 1; token reads it; checkFence passes', withPair(async (p) => {
    assert.is(p.a.token, 0, 'no token before acquire');
    assertFenced(p.a, 'before acquire');
    const t = await within(p.a.acquire(), 5000, 'acquire');
    assert.ok(Number.isSafeInteger(t) && t >= 1, `token ${t}`);
    assert.is(p.a.token, t);
    p.a.checkFence();
  }));

  s('the second waits while the first holds (for several leases), and cannot write', withPair(async (p) => {
    await within(p.a.acquire(), 5000, 'a to acquire');
    const b = track(p.b.acquire());
    await pollsSpanning(p, p.b, 3);
    assert.is(b.settled, false, 'b still waiting');
    assert.is(p.b.token, 0);
    assertFenced(p.b, 'the waiter');
    p.a.checkFence();
  }));

  s('release: the second acquires promptly (not by lease) with a strictly greater token', withPair(async (p) => {
    let lost = 0;
    p.a.onLost(() => lost++);
    const ta = await within(p.a.acquire(), 5000, 'a to acquire');
    const b = track(p.b.acquire());
    await pollsSpanning(p, p.b, 1);
    const t0 = performance.now();
    await p.a.release();
    assert.is(p.a.token, 0);
    assertFenced(p.a, 'after release');
    await waitFor(() => b.settled, 10 * p.leaseMs, 'b to acquire');
    const ms = performance.now() - t0;
    assert.is(b.error, undefined);
    assert.ok((b.value as number) > ta, `b's token ${b.value} > a's ${ta}`);
    assert.is(p.b.token, b.value);
    p.b.checkFence();
    assert.ok(ms < p.leaseMs, `took over in ${ms.toFixed(0)} ms: by the release marker, not a lapse (lease ${p.leaseMs} ms)`);
    assert.is(lost, 0, 'a clean release is not a loss');
  }));

  s('a frozen holder resumes past its lease: fenced at once, onLost fires, the waiter takes over', withPair(async (p) => {
    const reasons: string[] = [];
    p.a.onLost((r) => reasons.push(r));
    const ta = await within(p.a.acquire(), 5000, 'a to acquire');
    const b = track(p.b.acquire());
    await pollsSpanning(p, p.b, 1);
    p.freeze(p.a, 3 * p.leaseMs);
    const e = assertFenced(p.a, 'resumed after the freeze');
    assert.match(e.message, /lapsed/);
    assert.is(reasons.length, 1, 'onLost ran once');
    assert.is(p.a.token, 0);
    await waitFor(() => b.settled, 10 * p.leaseMs, 'b to take over');
    assert.ok((b.value as number) > ta, `b's token ${b.value} > ${ta}`);
    p.b.checkFence();
    assertFenced(p.a, 'still fenced');
    assert.is(reasons.length, 1, 'onLost ran only once');
  }));

  s('a newer token claimed elsewhere: checkFence throws within the lease; renewal alone also finds it', withPair(async (p) => {
    const reasons: string[] = [];
    p.a.onLost((r) => reasons.push(r));
    const t = await within(p.a.acquire(), 5000, 'a to acquire');
    p.a.checkFence();
    await p.intrude(t + 1);
    await waitFor(() => isFenced(p.a), p.leaseMs, 'the superseded holder to be fenced');
    const e = assertFenced(p.a, 'superseded holder');
    assert.match(e.message, /superseded/);
    assert.is(reasons.length, 1);

    // b: nobody calls checkFence; its renewal must notice. The intruder never heartbeats, so b
    // takes over from it by lease.
    const tb = await within(p.b.acquire(), 10 * p.leaseMs, 'b to take over from the silent intruder');
    assert.ok(tb > t + 1, `b's token ${tb} > the intruder's ${t + 1}`);
    let lostB = '';
    p.b.onLost((r) => (lostB = r));
    await p.intrude(tb + 1);
    await waitFor(() => lostB, 10 * p.leaseMs, "b's renewal to find the newer token");
    assert.match(lostB, /superseded/);
    assertFenced(p.b, 'b after its renewal found the newer token');
  }));

  s('tokens strictly increase over many handovers, in both directions and on re-acquire', withPair(async (p) => {
    const tokens: number[] = [];
    for (let i = 0; i < 4; i++) {
      for (const l of [p.a, p.b]) {
        tokens.push(await within(l.acquire(), 10 * p.leaseMs, `acquire #${tokens.length + 1}`));
        await l.release();
      }
    }
    for (let i = 1; i < tokens.length; i++) assert.ok(tokens[i] > tokens[i - 1], `tokens ${tokens.join(',')}`);
  }));

  s('both acquire at once: exactly one wins; the other waits', withPair(async (p) => {
    const a = track(p.a.acquire());
    const b = track(p.b.acquire());
    await waitFor(() => a.settled || b.settled, 10 * p.leaseMs, 'one to win');
    const loser = a.settled ? p.b : p.a;
    await pollsSpanning(p, loser, 2);
    assert.is(a.settled && b.settled, false, 'only one holds');
    assert.ok((p.a.token === 0) !== (p.b.token === 0), `tokens a=${p.a.token} b=${p.b.token}`);
  }));

  s('acquire rejects when its signal aborts; the aborted waiter never takes over', withPair(async (p) => {
    await within(p.a.acquire(), 5000, 'a to acquire');
    const ac = new AbortController();
    const b = track(p.b.acquire(ac.signal));
    await pollsSpanning(p, p.b, 1);
    ac.abort(new Error('shutting down'));
    await waitFor(() => b.settled, 5000, 'the rejection');
    assert.ok(b.error instanceof Error, 'rejected');
    const before = p.polls(p.b);
    await p.a.release();
    // a fresh waiter would take over within a few polls; the aborted one must not poll at all
    const c = track(p.a.acquire());
    await waitFor(() => c.settled, 10 * p.leaseMs, 'a to re-acquire');
    assert.is(p.b.token, 0);
    assert.is(p.polls(p.b), before, 'no polls after the abort');
    await assertRejects(p.b.acquire(AbortSignal.abort()), 'an already-aborted signal');
  }));

  s('acquire while holding or acquiring is refused; release is idempotent', withPair(async (p) => {
    await within(p.a.acquire(), 5000, 'a to acquire');
    await assertRejects(p.a.acquire(), 'a second acquire');
    await p.a.release();
    await p.a.release();
    assert.is(p.a.token, 0);
  }));

  s.run();
}

async function assertRejects(p: Promise<unknown>, what: string): Promise<void> {
  try {
    await p;
  } catch {
    return;
  }
  assert.unreachable(`${what}: expected a rejection`);
}

/** `p`, or a rejection after `ms`: a broken lock must fail the test, not hang it. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}
