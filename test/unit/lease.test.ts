/**
 * The store lock's lease decisions (broker/ha/lease.ts), without any file system: what a waiter
 * does after each poll, and when a holder must step down.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  LockRecord, Observation, TOKEN_DIGITS, WaitDecision, WatchState, checkTiming, decideFence, decideWait, encodeRecord,
  newestToken, parseRecord, parseTokenName, tokenName,
} from '../../broker/ha/lease';

const LEASE = 1000;

/** An observation of a live holder of `token` whose heartbeat reads `hb`. */
function seen(token: number, hb: string | null, extra: Partial<Observation> = {}): Observation {
  return { newestToken: token, heartbeat: hb, released: false, holderOnThisHost: false, holderPidDead: false, ...extra };
}

/** Runs a waiter over a list of (time, observation) polls; returns every decision. */
function run(polls: [number, Observation][], start: WatchState | null = null): WaitDecision[] {
  let watch = start;
  const out: WaitDecision[] = [];
  for (const [now, obs] of polls) {
    const d = decideWait(watch, obs, now, LEASE);
    out.push(d);
    watch = d.action === 'wait' ? d.watch : null;
  }
  return out;
}

// ------------------------------------------------------------------------------------------
// Waiting and claiming

test('no token record at all: claim token 1 at once', () => {
  const d = decideWait(null, seen(0, null), 0, LEASE);
  assert.equal(d, { action: 'claim', token: 1, reason: 'no-holder', watch: null });
});

test('a live holder whose heartbeat changes at every poll is never taken over', () => {
  const polls: [number, Observation][] = [];
  for (let i = 0; i < 50; i++) polls.push([i * 1000, seen(4, `beat ${i}`)]);
  const ds = run(polls);
  assert.ok(ds.every((d) => d.action === 'wait'), 'always waits');
  const last = ds[ds.length - 1];
  assert.is(last.action === 'wait' && last.watch?.since, 49_000, 'the watch restarts at each new heartbeat');
});

test('an unchanged heartbeat: wait through the lease, claim N+1 strictly after it', () => {
  const ds = run([
    [100, seen(4, 'b7')],
    [600, seen(4, 'b7')],
    [1100, seen(4, 'b7')], // exactly one lease after the first sighting: not yet
    [1101, seen(4, 'b7')],
  ]);
  assert.is(ds[0].action, 'wait');
  assert.is(ds[0].action === 'wait' && ds[0].lapsesInMs, 1000);
  assert.is(ds[1].action === 'wait' && ds[1].lapsesInMs, 500);
  assert.is(ds[2].action, 'wait', 'at exactly leaseMs the holder may still be in its last instant');
  assert.equal(ds[3], { action: 'claim', token: 5, reason: 'lease-lapsed', watch: null });
});

test('the lease is measured from the first sighting of the current heartbeat, not the first poll', () => {
  const ds = run([
    [0, seen(4, 'b1')],
    [900, seen(4, 'b2')], // renewed just in time
    [1500, seen(4, 'b2')],
    [1901, seen(4, 'b2')],
  ]);
  assert.equal(ds.map((d) => d.action), ['wait', 'wait', 'wait', 'claim']);
});

test('a newer token appearing while waiting restarts the watch (another waiter won)', () => {
  const ds = run([
    [0, seen(4, 'same')],
    [900, seen(5, 'same')], // byte-identical content, but a different record
    [1500, seen(5, 'same')],
    [1901, seen(5, 'same')],
  ]);
  assert.equal(ds.map((d) => d.action), ['wait', 'wait', 'wait', 'claim']);
  assert.is(ds[3].action === 'claim' && ds[3].token, 6);
});

test('released record: claim at once, even with a just-changed heartbeat', () => {
  const d = decideWait(null, seen(3, '{"released":true}', { released: true }), 0, LEASE);
  assert.equal(d, { action: 'claim', token: 4, reason: 'released', watch: null });
});

test('holder on this host with a dead pid: claim at once (kill -9 fast path)', () => {
  const d = decideWait(null, seen(3, 'x', { holderOnThisHost: true, holderPidDead: true }), 0, LEASE);
  assert.equal(d, { action: 'claim', token: 4, reason: 'holder-dead', watch: null });
});

test('a dead pid means nothing for a holder on another host (pids are per host): wait for the lease', () => {
  const d = decideWait(null, seen(3, 'x', { holderOnThisHost: false, holderPidDead: true }), 0, LEASE);
  assert.is(d.action, 'wait');
});

test('holder on this host, pid alive (a stopped process is alive): lease rules apply', () => {
  const ds = run([
    [0, seen(3, 'x', { holderOnThisHost: true })],
    [1001, seen(3, 'x', { holderOnThisHost: true })],
  ]);
  assert.equal(ds.map((d) => d.action), ['wait', 'claim']);
  assert.is(ds[1].action === 'claim' && ds[1].reason, 'lease-lapsed');
});

test('an unreadable record never counts toward a lapse and keeps the watch', () => {
  const ds = run([
    [0, seen(3, 'x')],
    [600, seen(3, null)],
    [5000, seen(3, null)],
  ]);
  assert.equal(ds.map((d) => d.action), ['wait', 'wait', 'wait']);
  assert.is(ds[2].action === 'wait' && ds[2].reason, 'unreadable');
  assert.is(ds[2].action === 'wait' && ds[2].watch?.since, 0, 'the earlier sighting is kept');
  // Readable again and byte-identical: the counter never repeats within a token, so nothing was renewed.
  const d = decideWait(ds[2].action === 'wait' ? ds[2].watch : null, seen(3, 'x'), 5001, LEASE);
  assert.is(d.action, 'claim');
});

test('an unreadable newer record drops the watch of the older one', () => {
  const d = decideWait({ token: 3, heartbeat: 'x', since: 0 }, seen(4, null), 5000, LEASE);
  assert.equal(d, { action: 'wait', watch: null, reason: 'unreadable', lapsesInMs: null });
});

test('a torn or empty record (claimant died before writing) is taken over by lease only', () => {
  // An empty record parses to nothing, so neither the released nor the dead-pid path applies.
  assert.is(parseRecord('', 7), null);
  const ds = run([
    [0, seen(7, '')],
    [1001, seen(7, '')],
  ]);
  assert.equal(ds.map((d) => d.action), ['wait', 'claim']);
});

test('a clock reading earlier than the watch (injected clocks) never lapses', () => {
  const d = decideWait({ token: 3, heartbeat: 'x', since: 5000 }, seen(3, 'x'), 0, LEASE);
  assert.is(d.action, 'wait');
});

// ------------------------------------------------------------------------------------------
// The holder's fence

test('decideFence: fresh lease -> not fenced, time left reported', () => {
  assert.equal(decideFence({ myToken: 2, newerTokenExists: false, lastRenewAt: 1000, now: 1300, leaseMs: LEASE }), { fenced: false, expiresInMs: 700 });
});

test('decideFence: not holding -> fenced (not-held)', () => {
  const d = decideFence({ myToken: 0, newerTokenExists: false, lastRenewAt: 0, now: 0, leaseMs: LEASE });
  assert.is(d.fenced && d.reason, 'not-held');
});

test('decideFence: newer token exists -> fenced even within the lease', () => {
  const d = decideFence({ myToken: 2, newerTokenExists: true, lastRenewAt: 1000, now: 1001, leaseMs: LEASE });
  assert.is(d.fenced && d.reason, 'newer-token');
  assert.match(d.fenced ? d.message : '', /token 2 superseded by token 3/);
});

test('decideFence: lapse is strict: at exactly leaseMs still holding, 1 ms later fenced', () => {
  assert.is(decideFence({ myToken: 2, newerTokenExists: false, lastRenewAt: 0, now: 1000, leaseMs: LEASE }).fenced, false);
  const d = decideFence({ myToken: 2, newerTokenExists: false, lastRenewAt: 0, now: 1001, leaseMs: LEASE });
  assert.is(d.fenced && d.reason, 'lease-lapsed');
});

test('holder and waiter agree: whenever a waiter may claim, the holder is already fenced', () => {
  // The holder renews at r (its last renewal start); the waiter first sees that heartbeat at s >= r.
  for (const [r, s] of [[0, 0], [0, 3], [100, 950], [5, 999]]) {
    for (let now = s; now <= s + 3 * LEASE; now += 7) {
      const w = decideWait({ token: 1, heartbeat: 'h', since: s }, seen(1, 'h'), now, LEASE);
      if (w.action !== 'claim') continue;
      const f = decideFence({ myToken: 1, newerTokenExists: false, lastRenewAt: r, now, leaseMs: LEASE });
      assert.ok(f.fenced, `renewed at ${r}, seen at ${s}: waiter claims at ${now} but the holder is not fenced`);
    }
  }
});

test('a stopped holder resuming past its lease steps down before writing (SIGSTOP)', () => {
  // Renewed at 0; stopped; resumes at 4000: its next checkFence, even before it sees the newer token.
  const d = decideFence({ myToken: 9, newerTokenExists: false, lastRenewAt: 0, now: 4000, leaseMs: LEASE });
  assert.is(d.fenced && d.reason, 'lease-lapsed');
});

// ------------------------------------------------------------------------------------------
// Names, records and timing

test('token names: zero-padded, sort as numbers, foreign names ignored', () => {
  assert.is(tokenName(1), '0'.repeat(TOKEN_DIGITS - 1) + '1');
  assert.is(tokenName(1234).length, TOKEN_DIGITS);
  assert.is(parseTokenName(tokenName(42)), 42);
  for (const n of ['42', '.000000000042.abc.tmp', '00000000004x', '0000000000042']) assert.is(parseTokenName(n), 0, n);
  assert.is(newestToken([tokenName(9), tokenName(10), 'readme', `.${tokenName(11)}.x.tmp`]), 10);
  assert.is(newestToken([]), 0);
  assert.throws(() => tokenName(0), RangeError);
  assert.throws(() => tokenName(1.5), RangeError);
});

test('records round-trip; a record of another token or a partial one is rejected', () => {
  const r: LockRecord = { token: 3, host: 'h/pid:[1]', pid: 77, id: 'abc', beat: 12, released: false };
  const text = encodeRecord(r);
  assert.ok(text.endsWith('\n'));
  assert.equal(parseRecord(text, 3), r);
  assert.is(parseRecord(text, 4), null, 'a record claiming another token is not trusted');
  assert.is(parseRecord(text.slice(0, text.length - 8), 3), null, 'torn');
  assert.is(parseRecord('null', 3), null);
  assert.is(parseRecord(JSON.stringify({ ...r, released: 'yes' }), 3), null);
  assert.is(parseRecord(JSON.stringify({ ...r, pid: 1.5 }), 3), null);
});

test('timing: positive values; renewal at most half a lease', () => {
  assert.is(checkTiming({ pollMs: 1000, leaseMs: 1500, renewMs: 300 }), null);
  assert.is(checkTiming({ pollMs: 1000, leaseMs: 1000, renewMs: 500 }), null);
  assert.match(checkTiming({ pollMs: 1000, leaseMs: 1000, renewMs: 501 }) ?? '', /at most half/);
  assert.match(checkTiming({ pollMs: 0, leaseMs: 1000, renewMs: 100 }) ?? '', /pollMs/);
  assert.match(checkTiming({ pollMs: 10, leaseMs: NaN, renewMs: 100 }) ?? '', /leaseMs/);
});

test.run();
