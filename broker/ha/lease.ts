/**
 * The store lock's lease rules, as pure decisions (docs/decisions/0004-store-lock.md).
 *
 * A lock is a sequence of token records (files `<dataDir>/lock/<token>` for the file backend).
 * Claiming token N+1 means creating record N+1 exclusively; records are never deleted, so a token
 * is granted once and the newest record names the current (or last) holder. The holder rewrites a
 * heartbeat counter into its record; waiters watch that record and decide here whether to keep
 * waiting or to claim the next token. The holder decides here whether it must step down.
 *
 * Every time value is a reading of the caller's own monotonic clock (milliseconds). Nothing here
 * compares one host's clock with another's: a waiter only measures how long, on its own clock, a
 * heartbeat has stayed the same.
 */

/** Who holds (or held) a token: host identity, process id, and a per-instance id. */
export interface LockOwner {
  /** Host identity; two owners with equal `host` can see each other's pids. */
  host: string;
  pid: number;
  /** Unique per lock instance (a process may hold, release and hold again). */
  id: string;
}

/** The content of one token record. */
export interface LockRecord extends LockOwner {
  token: number;
  /** Heartbeat counter: strictly increases with every renewal of this token. */
  beat: number;
  /** Set by a clean release: the next waiter may claim at once. */
  released: boolean;
}

/** Digits of a token record's name: names sort as numbers do, 10^12 failovers fit. */
export const TOKEN_DIGITS = 12;

const TOKEN_NAME = new RegExp(`^\\d{${TOKEN_DIGITS}}$`);

/** The record name of `token` (zero-padded decimal). */
export function tokenName(token: number): string {
  if (!Number.isSafeInteger(token) || token < 1) throw new RangeError(`bad lock token ${token}`);
  return String(token).padStart(TOKEN_DIGITS, '0');
}

/** The token a record name stands for, or 0 when `name` is not a token record (temp files etc.). */
export function parseTokenName(name: string): number {
  return TOKEN_NAME.test(name) ? Number(name) : 0;
}

/** The highest token among record names, 0 when there is none. */
export function newestToken(names: Iterable<string>): number {
  let max = 0;
  for (const n of names) {
    const t = parseTokenName(n);
    if (t > max) max = t;
  }
  return max;
}

/** Serialises a record (one JSON line). */
export function encodeRecord(r: LockRecord): string {
  return JSON.stringify({ token: r.token, host: r.host, pid: r.pid, id: r.id, beat: r.beat, released: r.released }) + '\n';
}

/**
 * Parses a record read back from token `token`'s file. Returns null for anything that is not a
 * complete record of that token: an empty file (a claimant that died between create and write),
 * a torn or foreign file. A null record is never trusted for the fast paths (released, dead pid);
 * the waiter falls back to watching the raw bytes for a lease.
 */
export function parseRecord(text: string, token: number): LockRecord | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  if (o.token !== token) return null;
  if (typeof o.host !== 'string' || typeof o.id !== 'string') return null;
  if (!Number.isSafeInteger(o.pid) || !Number.isSafeInteger(o.beat)) return null;
  if (typeof o.released !== 'boolean') return null;
  return { token, host: o.host, pid: o.pid as number, id: o.id, beat: o.beat as number, released: o.released };
}

/** What one poll of the lock saw. */
export interface Observation {
  /** The newest token record present, 0 when there is none. */
  newestToken: number;
  /**
   * The newest record's raw content, compared byte for byte between polls (any change, even a
   * torn read, counts as a sign of life). null when it could not be read at all.
   */
  heartbeat: string | null;
  /** The record parsed and says released (clean shutdown). */
  released: boolean;
  /** The record parsed and its owner's host is this host (so its pid can be probed). */
  holderOnThisHost: boolean;
  /** Only meaningful with `holderOnThisHost`: probing the owner's pid said it does not exist. */
  holderPidDead: boolean;
}

/** The waiter's memory between polls: which heartbeat it saw, and since when (its own clock). */
export interface WatchState {
  token: number;
  heartbeat: string;
  /** Time of the first poll that saw this exact heartbeat. */
  since: number;
}

/** Why a waiter may claim the next token. */
export type ClaimReason = 'no-holder' | 'released' | 'holder-dead' | 'lease-lapsed';

/** What a waiter does after a poll. */
export type WaitDecision =
  | { action: 'claim'; token: number; reason: ClaimReason; watch: null }
  | {
      action: 'wait';
      /** The state to pass to the next poll. */
      watch: WatchState | null;
      /** Why waiting: the holder shows signs of life, or its record cannot be read. */
      reason: 'holder-alive' | 'unreadable';
      /** How long the heartbeat may stay unchanged before the lease lapses; null when unknown. */
      lapsesInMs: number | null;
    };

/**
 * Decides, after a poll, whether to claim token `newestToken + 1` or to keep waiting.
 *
 * Claim when: there is no token yet; the newest holder released cleanly; the holder runs on this
 * host and its pid is gone (the kill -9 fast path: no need to wait out the lease); or its
 * heartbeat has stayed byte-identical for more than `leaseMs` on our clock. The last rule is what
 * makes a stopped or partitioned holder step aside: it stops renewing, and by the time we see its
 * lease lapse, its own clock says the same (see {@link decideFence}).
 *
 * An unreadable record never counts toward a lapse (we cannot tell whether it changed), so a
 * permanent read error keeps us waiting: the safe side.
 */
export function decideWait(watch: WatchState | null, obs: Observation, now: number, leaseMs: number): WaitDecision {
  const next = obs.newestToken + 1;
  if (obs.newestToken === 0) return { action: 'claim', token: next, reason: 'no-holder', watch: null };
  if (obs.heartbeat === null) {
    const kept = watch && watch.token === obs.newestToken ? watch : null;
    return { action: 'wait', watch: kept, reason: 'unreadable', lapsesInMs: null };
  }
  if (obs.released) return { action: 'claim', token: next, reason: 'released', watch: null };
  if (obs.holderOnThisHost && obs.holderPidDead) return { action: 'claim', token: next, reason: 'holder-dead', watch: null };
  if (!watch || watch.token !== obs.newestToken || watch.heartbeat !== obs.heartbeat) {
    return { action: 'wait', watch: { token: obs.newestToken, heartbeat: obs.heartbeat, since: now }, reason: 'holder-alive', lapsesInMs: leaseMs };
  }
  const unchanged = Math.max(0, now - watch.since);
  // Strictly more than leaseMs: the holder's last renewal started no later than `since`, so its own
  // decideFence (also strict) has already fenced it by now.
  if (unchanged > leaseMs) return { action: 'claim', token: next, reason: 'lease-lapsed', watch: null };
  return { action: 'wait', watch, reason: 'holder-alive', lapsesInMs: leaseMs - unchanged };
}

/** What the holder knows when it checks its fence (before a write, and at every renewal). */
export interface FenceInput {
  /** The token held, 0 when none. */
  myToken: number;
  /** Record `myToken + 1` exists: someone claimed after us. */
  newerTokenExists: boolean;
  /** Our clock when the last successful renewal (or the claim) started. */
  lastRenewAt: number;
  now: number;
  leaseMs: number;
}

/** Whether the holder may still write. */
export type FenceDecision =
  | { fenced: false; /** Time left before the lease lapses without a renewal. */ expiresInMs: number }
  | { fenced: true; reason: 'not-held' | 'newer-token' | 'lease-lapsed'; message: string };

/**
 * The holder's fence. A holder is fenced once a newer token exists, or once more than `leaseMs`
 * passed since its last successful renewal started: from then on a waiter may have seen its
 * heartbeat unchanged for a whole lease and claimed, even if the newer record is not visible yet
 * (the claim is in flight, or a network file system caches the directory). A lapse is final: the
 * caller must not renew after it, since a renewal cannot undo a takeover that may have started.
 */
export function decideFence(i: FenceInput): FenceDecision {
  if (i.myToken <= 0) return { fenced: true, reason: 'not-held', message: 'the store lock is not held' };
  if (i.newerTokenExists) {
    return { fenced: true, reason: 'newer-token', message: `store lock token ${i.myToken} superseded by token ${i.myToken + 1}` };
  }
  const age = i.now - i.lastRenewAt;
  if (age > i.leaseMs) {
    return {
      fenced: true,
      reason: 'lease-lapsed',
      message: `store lock token ${i.myToken} lapsed: last renewal ${Math.round(age)} ms ago, lease ${i.leaseMs} ms`,
    };
  }
  return { fenced: false, expiresInMs: i.leaseMs - Math.max(0, age) };
}

/** Lease timing, validated. */
export interface LeaseTiming {
  pollMs: number;
  leaseMs: number;
  renewMs: number;
}

/**
 * Checks lease timing: a renewal must fit at least twice into a lease, so one late timer tick
 * (GC, a busy event loop) does not fence a healthy holder. Returns an error message or null.
 */
export function checkTiming(t: LeaseTiming): string | null {
  for (const k of ['pollMs', 'leaseMs', 'renewMs'] as const) {
    if (!Number.isFinite(t[k]) || t[k] <= 0) return `${k} must be a positive number (got ${t[k]})`;
  }
  if (t.renewMs * 2 > t.leaseMs) return `renewMs (${t.renewMs}) must be at most half of leaseMs (${t.leaseMs})`;
  return null;
}
