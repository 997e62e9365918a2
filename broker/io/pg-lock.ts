/**
 * The store lock of a `haPolicy: jdbc` group: a lease row in PostgreSQL (ActiveMQ's JDBC
 * master/slave lease locker). docs/decisions/0011-broker-jdbc.md.
 *
 * - Claim: one conditional UPDATE bumps the group's token when the row is released or its lease
 *   has expired on the database's clock. The database serialises claims: one winner per token.
 * - Renew: the holder pushes `expires_at` forward, only while the row still has its token.
 *   Finding another token is a loss (superseded).
 * - Fence: the holder counts its lease from when its last successful renewal *started*, on its
 *   own monotonic clock (decideFence in broker/ha/lease.ts), so it fences itself no later than
 *   the database lets anyone claim. Every store write transaction checks the row as well
 *   (broker/store/pg.ts): a member that lost the lease commits nothing, even before it notices.
 */
import type { Client } from 'pg';
import { performance } from 'node:perf_hooks';
import { decideFence, LockOwner, WaitDecision, checkTiming } from '../ha/lease';
import { reportLost, type StoreLock } from '../ha/lock';
import { connectPg } from '../store/pg-schema';
import { FencedError } from '../store/types';
import { LOCK_DEFAULTS, LockError, LockLog, localOwner } from './file-lock';

/** Options of {@link PgLeaseLock}. */
export interface PgLeaseLockOptions {
  url: string;
  /** The haGroup: one lease row per group. */
  group: string;
  pollMs?: number;
  leaseMs?: number;
  renewMs?: number;
  owner?: Partial<LockOwner>;
  /** Monotonic clock in ms (default performance.now); tests inject one to simulate a frozen process. */
  clock?: () => number;
  log?: LockLog;
  /** Called after every poll while waiting; a claim is reported as 'claim', anything else as 'wait'. */
  onPoll?: (d: WaitDecision) => void;
}

/** Claims token $4 + 1 only if nobody claimed since we looked at token $4 (compare and set). */
const CLAIM_SQL =
  "UPDATE amqp_mesh_lease SET token = token + 1, holder = $2, released = false, expires_at = clock_timestamp() + $3 * interval '1 millisecond' " +
  'WHERE grp = $1 AND token = $4 RETURNING token';
const RENEW_SQL =
  "UPDATE amqp_mesh_lease SET expires_at = clock_timestamp() + $3 * interval '1 millisecond' WHERE grp = $1 AND token = $2 AND NOT released RETURNING token";

/** A lease lock in PostgreSQL; implements the StoreLock contract. */
export class PgLeaseLock implements StoreLock {
  readonly pollMs: number;
  readonly leaseMs: number;
  readonly renewMs: number;
  readonly owner: LockOwner;
  private readonly clock: () => number;
  private readonly log: LockLog;
  private client: Client | null = null;
  private connecting: Promise<Client> | null = null;
  private state: 'idle' | 'acquiring' | 'held' = 'idle';
  private held = 0;
  private lastRenewAt = 0;
  private superseded = false;
  private renewing = false;
  private renewTimer: NodeJS.Timeout | undefined;
  private abortWait: ((e: Error) => void) | null = null;
  private readonly lostCbs: ((reason: string) => void)[] = [];
  private endReason: string | null = null;
  /** The group's advisory lock key (the first half of (group, token)). */
  private readonly key: number;

  constructor(private readonly opts: PgLeaseLockOptions) {
    this.key = groupKey(opts.group);
    this.pollMs = opts.pollMs ?? LOCK_DEFAULTS.pollMs;
    this.leaseMs = opts.leaseMs ?? LOCK_DEFAULTS.leaseMs;
    this.renewMs = opts.renewMs ?? Math.max(1, Math.floor(this.leaseMs / 5));
    const bad = checkTiming(this);
    if (bad) throw new LockError(`store lock: ${bad}`, 'ERR_LOCK_CONFIG');
    const me = localOwner();
    this.owner = { host: opts.owner?.host ?? me.host, pid: opts.owner?.pid ?? me.pid, id: opts.owner?.id ?? me.id };
    this.clock = opts.clock ?? (() => performance.now());
    this.log = opts.log ?? (() => undefined);
  }

  get token(): number {
    return this.state === 'held' ? this.held : 0;
  }

  /** {@inheritDoc StoreLock.acquire} A database that cannot be reached is retried at every poll. */
  async acquire(signal?: AbortSignal): Promise<number> {
    if (this.state !== 'idle') throw new LockError(`store lock: acquire while ${this.state}`, 'ERR_LOCK_STATE');
    if (signal?.aborted) throw new LockError('store lock: acquire aborted', 'ERR_LOCK_ABORTED', { cause: signal.reason });
    this.state = 'acquiring';
    let aborted: Error | null = null;
    let wake: (() => void) | null = null;
    const onAbort = () => {
      aborted = new LockError('store lock: acquire aborted', 'ERR_LOCK_ABORTED', { cause: signal?.reason });
      wake?.();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    this.abortWait = (e) => {
      aborted = e;
      wake?.();
    };
    try {
      for (;;) {
        if (aborted) throw aborted;
        const started = this.clock();
        const won = await this.claimOnce();
        const token = won?.token ?? 0;
        if (aborted) {
          // Won while being aborted: give it straight back.
          if (token > 0) await this.releaseToken(token);
          throw aborted;
        }
        this.opts.onPoll?.(won
          ? { action: 'claim', token, reason: won.reason, watch: null }
          : { action: 'wait', watch: null, reason: 'holder-alive', lapsesInMs: null });
        if (won) {
          this.held = token;
          this.lastRenewAt = started;
          this.superseded = false;
          this.endReason = null;
          this.state = 'held';
          this.renewTimer = setInterval(() => void this.renew(), this.renewMs);
          this.renewTimer.unref();
          this.log('info', `store lock: claimed token ${token} of group ${this.opts.group} (${won.reason})`);
          return token;
        }
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, this.pollMs);
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        wake = null;
      }
    } catch (e) {
      if (this.state === 'acquiring') this.state = 'idle';
      throw e;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.abortWait = null;
    }
  }

  /** {@inheritDoc StoreLock.checkFence} */
  checkFence(): void {
    if (this.state !== 'held') throw new FencedError(this.endReason ? `store lock lost: ${this.endReason}` : 'the store lock is not held');
    const d = decideFence({ myToken: this.held, newerTokenExists: this.superseded, lastRenewAt: this.lastRenewAt, now: this.clock(), leaseMs: this.leaseMs });
    if (d.fenced) {
      this.lose(d.message);
      throw new FencedError(d.message);
    }
  }

  onLost(cb: (reason: string) => void): void {
    this.lostCbs.push(cb);
  }

  /** {@inheritDoc StoreLock.release} Also closes the database connection. */
  async release(): Promise<void> {
    if (this.state === 'acquiring') {
      this.abortWait?.(new LockError('store lock: released while acquiring', 'ERR_LOCK_ABORTED'));
      return;
    }
    if (this.state === 'held') {
      const token = this.held;
      const superseded = this.superseded;
      this.end('released');
      if (!superseded) await this.releaseToken(token);
    }
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => undefined);
  }

  /** Renews now, as the timer does (after long synchronous work while holding). */
  renewNow(): void {
    void this.renew();
  }

  private async releaseToken(token: number): Promise<void> {
    try {
      const c = await this.connect();
      await c.query('UPDATE amqp_mesh_lease SET released = true WHERE grp = $1 AND token = $2', [this.opts.group, token]);
      await c.query('SELECT pg_advisory_unlock($1, $2)', [this.key, token]);
      this.log('info', `store lock: released token ${token}`);
    } catch (e) {
      this.log('warning', `store lock: could not mark token ${token} released (a peer takes over when the lease lapses): ${(e as Error).message}`);
    }
  }

  /**
   * One claim attempt: the claimed token, or 0 when the lease is held by someone else (or the
   * database is unreachable). Besides the lease row, each holder keeps a session-level advisory
   * lock on (group, token) on its lock connection. When that lock is free while the lease still
   * runs, the holder's database session is gone (its process died, its connection broke): waiting
   * out the lease would only delay the takeover, since the holder cannot commit without the row
   * check anyway (broker/store/pg.ts). A frozen holder keeps its session: then the lease decides.
   */
  private async claimOnce(): Promise<{ token: number; reason: 'no-holder' | 'released' | 'holder-dead' | 'lease-lapsed' } | null> {
    try {
      const c = await this.connect();
      const g = this.opts.group;
      const look = () => c.query('SELECT token, released, expires_at < clock_timestamp() AS expired FROM amqp_mesh_lease WHERE grp = $1', [g]);
      let cur = (await look()).rows[0];
      if (cur === undefined) {
        // The group's first start: its row, released at token 0 (any member may claim token 1).
        await c.query("INSERT INTO amqp_mesh_lease (grp, token, holder, expires_at, released) VALUES ($1, 0, '', clock_timestamp(), true) ON CONFLICT (grp) DO NOTHING", [g]);
        cur = (await look()).rows[0];
      }
      const t = Number(cur.token);
      let reason: 'no-holder' | 'released' | 'holder-dead' | 'lease-lapsed' | null =
        t === 0 ? 'no-holder' : cur.released ? 'released' : cur.expired ? 'lease-lapsed' : null;
      if (reason === null) {
        const probe = await c.query('SELECT pg_try_advisory_lock($1, $2) AS free', [this.key, t]);
        if (!probe.rows[0].free) return null;
        await c.query('SELECT pg_advisory_unlock($1, $2)', [this.key, t]);
        reason = 'holder-dead';
      }
      // Our session marker first: no waiter may see token t+1 claimed without it.
      const mark = await c.query('SELECT pg_try_advisory_lock($1, $2) AS got', [this.key, t + 1]);
      if (!mark.rows[0].got) return null;
      const r = await c.query(CLAIM_SQL, [g, this.holderName(), this.leaseMs, t]);
      if (r.rowCount === 1) return { token: t + 1, reason };
      await c.query('SELECT pg_advisory_unlock($1, $2)', [this.key, t + 1]);
      return null;
    } catch (e) {
      this.log('warning', `store lock: poll of the database failed, still waiting: ${(e as Error).message}`);
      this.dropClient((e as Error).message);
      return null;
    }
  }

  private async renew(): Promise<void> {
    if (this.state !== 'held') return;
    const started = this.clock();
    const token = this.held;
    // Checked even while a renewal hangs: a database that stopped answering fences us on time.
    const d = decideFence({ myToken: token, newerTokenExists: this.superseded, lastRenewAt: this.lastRenewAt, now: started, leaseMs: this.leaseMs });
    if (d.fenced) {
      this.lose(d.message);
      return;
    }
    if (this.renewing) return;
    this.renewing = true;
    try {
      const c = await this.connect();
      const r = await c.query(RENEW_SQL, [this.opts.group, token, this.leaseMs]);
      if (this.state !== 'held' || this.held !== token) return;
      if (r.rowCount === 1) {
        this.lastRenewAt = started;
      } else {
        const now = await c.query('SELECT token FROM amqp_mesh_lease WHERE grp = $1', [this.opts.group]);
        this.superseded = true;
        this.lose(`store lock token ${token} superseded by token ${now.rows[0]?.token ?? '?'}`);
      }
    } catch (e) {
      this.log('warning', `store lock: renewal of token ${token} failed: ${(e as Error).message}`);
      this.dropClient((e as Error).message);
    } finally {
      this.renewing = false;
    }
  }

  private holderName(): string {
    return `${this.owner.host} pid ${this.owner.pid} ${this.owner.id}`;
  }

  private connect(): Promise<Client> {
    if (this.client) return Promise.resolve(this.client);
    if (!this.connecting) {
      this.connecting = connectPg(this.opts.url, (e) => {
        this.log('warning', `store lock: database connection lost: ${e.message}`);
        this.dropClient(e.message);
      }).then((c) => {
        this.client = c;
        return c;
      }).finally(() => {
        this.connecting = null;
      });
    }
    return this.connecting;
  }

  /** Ends the lock connection after a failure; holding, that is a loss (see claimOnce). */
  private dropClient(why: string): void {
    const c = this.client;
    this.client = null;
    c?.end().catch(() => undefined);
    // Our session marker went with the connection: a waiter may claim at once.
    this.lose(`the database session holding the lease was lost (${why})`);
  }

  private lose(reason: string): void {
    if (this.state !== 'held') return;
    this.end(reason);
    reportLost(this.lostCbs, reason, this.log, 'store lock');
  }

  private end(reason: string): void {
    clearInterval(this.renewTimer);
    this.renewTimer = undefined;
    this.state = 'idle';
    this.held = 0;
    this.endReason = reason;
  }
}

/** A group name as a 32-bit advisory lock key (FNV-1a). */
export function groupKey(group: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(group, 'utf8')) h = Math.imul(h ^ b, 0x01000193);
  return h | 0;
}
