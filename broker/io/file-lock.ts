/**
 * The store lock of a master/slave pair sharing one data directory: a lease kept in token files,
 * `<dataDir>/lock/<token>`, claimed with O_EXCL (Node has no flock). The decisions are the pure
 * rules of broker/ha/lease.ts; this file does the I/O and the timers. Design and failure cases:
 * docs/decisions/0004-store-lock.md.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  LockOwner, Observation, WaitDecision, WatchState, checkTiming, decideFence, decideWait, encodeRecord, newestToken,
  parseRecord, tokenName,
} from '../ha/lease';
import { StoreLock, reportLost } from '../ha/lock';
import { FencedError } from '../store/types';

/** Thrown (as a rejection of acquire) for lock misuse, I/O failure at start, or an aborted wait. */
export class LockError extends Error {
  constructor(message: string, readonly code: 'ERR_LOCK_IO' | 'ERR_LOCK_ABORTED' | 'ERR_LOCK_STATE' | 'ERR_LOCK_CONFIG', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LockError';
  }
}

/**
 * Where token records live. Implementations must give: `create` succeeds for exactly one caller
 * per token; `write` replaces a record atomically (a reader sees the old or the new content);
 * records are never deleted.
 */
export interface LeaseMedium {
  /** Readies the medium (creates the lock directory); throws when it cannot be used. */
  prepare(): void;
  /** The newest token present, 0 when none. */
  newest(): number;
  /** The raw content of `token`'s record; throws when it cannot be read. */
  read(token: number): string;
  /** Creates `token`'s record holding `content`; false when it already exists. */
  create(token: number, content: string): boolean;
  /** Replaces the content of `token`'s record (ours). */
  write(token: number, content: string): void;
  /** Whether `token`'s record exists; must be cheap (it runs before every journal write batch). */
  exists(token: number): boolean;
  /** Whether process `pid` of this host is gone (only asked for owners on this host). */
  pidDead(pid: number): boolean;
}

/** Log sink, as in StoreOptions. */
export type LockLog = (level: 'error' | 'warning' | 'info' | 'debug', msg: string) => void;

/** Timing and identity of a lease lock. */
export interface LeaseLockOptions {
  /** How often a waiter looks at the lock (default 1000 ms). */
  pollMs?: number;
  /**
   * How long a heartbeat may stay unchanged before a waiter takes over, and how long after its
   * last renewal a holder fences itself (default 1500 ms). A longer lease tolerates longer event
   * loop stalls in the holder; a shorter one fails over faster when the holder is not on the
   * waiter's host (on the same host a dead pid is taken over at the next poll).
   */
  leaseMs?: number;
  /** How often the holder rewrites its heartbeat (default leaseMs / 5, at most leaseMs / 2). */
  renewMs?: number;
  /** Identity written into the record; defaults from {@link localOwner}. */
  owner?: Partial<LockOwner>;
  /** Monotonic clock in ms (default performance.now); tests inject one to simulate a frozen process. */
  clock?: () => number;
  log?: LockLog;
  /** Called after every poll while waiting (diagnostics, tests). */
  onPoll?: (d: WaitDecision) => void;
}

/** Default timing. */
export const LOCK_DEFAULTS = { pollMs: 1000, leaseMs: 1500 } as const;

/**
 * This process's identity. The host part is the hostname plus the pid namespace: containers that
 * share a hostname but not a pid namespace must not probe each other's pids (a live peer would
 * look dead).
 */
export function localOwner(): LockOwner {
  let ns = '';
  try {
    ns = fs.readlinkSync('/proc/self/ns/pid');
  } catch {
    // not Linux, or /proc not mounted: hostname alone
  }
  return { host: ns ? `${os.hostname()}/${ns}` : os.hostname(), pid: process.pid, id: randomBytes(6).toString('hex') };
}

/**
 * A lease lock over a {@link LeaseMedium}: polls while waiting, renews a heartbeat while holding,
 * and fences itself by the rules of broker/ha/lease.ts. {@link FileLeaseLock} and MemoryLock
 * (broker/io/memory-lock.ts) are this engine on two media.
 */
export class LeaseLock implements StoreLock {
  /** The resolved timing. */
  readonly pollMs: number;
  readonly leaseMs: number;
  readonly renewMs: number;
  /** The identity written into records this lock claims. */
  readonly owner: LockOwner;
  private readonly clock: () => number;
  private readonly log: LockLog;
  private readonly onPollCb?: (d: WaitDecision) => void;
  private state: 'idle' | 'acquiring' | 'held' = 'idle';
  private held = 0;
  private beat = 0;
  private lastRenewAt = 0;
  private watch: WatchState | null = null;
  private pollTimer: NodeJS.Timeout | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private pending: { reject: (e: Error) => void; cleanup: () => void } | undefined;
  private readonly lostCbs: ((reason: string) => void)[] = [];
  private endReason: string | null = null;

  constructor(protected readonly medium: LeaseMedium, opts: LeaseLockOptions = {}) {
    this.pollMs = opts.pollMs ?? LOCK_DEFAULTS.pollMs;
    this.leaseMs = opts.leaseMs ?? LOCK_DEFAULTS.leaseMs;
    this.renewMs = opts.renewMs ?? Math.max(1, Math.floor(this.leaseMs / 5));
    const bad = checkTiming(this);
    if (bad) throw new LockError(`store lock: ${bad}`, 'ERR_LOCK_CONFIG');
    const me = localOwner();
    this.owner = { host: opts.owner?.host ?? me.host, pid: opts.owner?.pid ?? me.pid, id: opts.owner?.id ?? me.id };
    this.clock = opts.clock ?? (() => performance.now());
    this.log = opts.log ?? (() => undefined);
    this.onPollCb = opts.onPoll;
  }

  /** The token held, or 0. */
  get token(): number {
    return this.state === 'held' ? this.held : 0;
  }

  /** {@inheritDoc StoreLock.acquire} */
  acquire(signal?: AbortSignal): Promise<number> {
    if (this.state !== 'idle') return Promise.reject(new LockError(`store lock: acquire while ${this.state}`, 'ERR_LOCK_STATE'));
    if (signal?.aborted) return Promise.reject(new LockError('store lock: acquire aborted', 'ERR_LOCK_ABORTED', { cause: signal.reason }));
    try {
      this.medium.prepare();
    } catch (e) {
      return Promise.reject(new LockError(`store lock: cannot use the lock: ${(e as Error).message}`, 'ERR_LOCK_IO', { cause: e }));
    }
    this.state = 'acquiring';
    this.watch = null;
    this.endReason = null;
    return new Promise<number>((resolve, reject) => {
      const onAbort = (): void => this.stopAcquiring(new LockError('store lock: acquire aborted', 'ERR_LOCK_ABORTED', { cause: signal?.reason }));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending = { reject, cleanup: () => signal?.removeEventListener('abort', onAbort) };
      const tick = (): void => {
        this.pollTimer = undefined;
        if (this.state !== 'acquiring') return;
        const token = this.pollOnce();
        if (token === 0) {
          // ref'd on purpose: a slave waiting for its turn has nothing else keeping it alive
          this.pollTimer = setTimeout(tick, this.pollMs);
          return;
        }
        this.pending?.cleanup();
        this.pending = undefined;
        this.state = 'held';
        this.renewTimer = setInterval(() => this.renew(), this.renewMs);
        // Holding alone must not keep a process alive; a process that exits frees the lock.
        this.renewTimer.unref();
        resolve(token);
      };
      tick();
    });
  }

  /** {@inheritDoc StoreLock.checkFence} */
  checkFence(): void {
    if (this.state !== 'held') throw new FencedError(this.endReason ? `store lock lost: ${this.endReason}` : 'the store lock is not held');
    const base = { myToken: this.held, lastRenewAt: this.lastRenewAt, now: this.clock(), leaseMs: this.leaseMs };
    // The lapse costs nothing to check; the one existsSync comes only after it.
    let d = decideFence({ ...base, newerTokenExists: false });
    if (!d.fenced) d = decideFence({ ...base, newerTokenExists: this.medium.exists(this.held + 1) });
    if (d.fenced) {
      this.lose(d.message);
      throw new FencedError(d.message);
    }
  }

  /** {@inheritDoc StoreLock.onLost} Callbacks stay registered: each loss of a hold runs each once. */
  onLost(cb: (reason: string) => void): void {
    this.lostCbs.push(cb);
  }

  /** {@inheritDoc StoreLock.release} A failed release marker is logged: peers then take over by lease. */
  async release(): Promise<void> {
    if (this.state === 'acquiring') {
      this.stopAcquiring(new LockError('store lock: released while acquiring', 'ERR_LOCK_ABORTED'));
      return;
    }
    if (this.state !== 'held') return;
    const token = this.held;
    this.end('released');
    // A superseded holder must not touch the record any more; only the newest one's marker matters.
    if (this.medium.exists(token + 1)) return;
    try {
      this.medium.write(token, this.record(token, ++this.beat, true));
      this.log('info', `store lock: released token ${token}`);
    } catch (e) {
      this.log('warning', `store lock: could not mark token ${token} released (a peer takes over when the lease lapses): ${(e as Error).message}`);
    }
  }

  /**
   * Renews the heartbeat now, as the renewal timer does (and, like it, steps down when fenced).
   * For long synchronous work while holding (journal recovery, compaction): the timer cannot run
   * while the event loop is blocked, and a block longer than leaseMs - renewMs fences the holder.
   */
  renewNow(): void {
    this.renew();
  }

  /** Stops every timer without a release marker or onLost: what a killed process leaves behind. */
  protected halt(): void {
    if (this.state === 'acquiring') this.stopAcquiring(new LockError('store lock: halted', 'ERR_LOCK_ABORTED'));
    if (this.state === 'held') this.end('halted');
  }

  private record(token: number, beat: number, released: boolean): string {
    return encodeRecord({ ...this.owner, token, beat, released });
  }

  /** One poll: observes, decides, and claims when the decision says so. Returns the token won or 0. */
  private pollOnce(): number {
    let obs: Observation;
    try {
      obs = this.observe();
    } catch (e) {
      this.log('warning', `store lock: poll failed, still waiting: ${(e as Error).message}`);
      return 0;
    }
    // Read the clock after the reads: a heartbeat's first sighting is then never dated before it was written.
    const d = decideWait(this.watch, obs, this.clock(), this.leaseMs);
    if (this.onPollCb) {
      try {
        this.onPollCb(d);
      } catch (e) {
        this.log('error', `store lock: onPoll callback threw: ${(e as Error).message}`);
      }
    }
    if (d.action === 'wait') {
      this.watch = d.watch;
      return 0;
    }
    this.watch = null;
    const started = this.clock();
    let won: boolean;
    try {
      won = this.medium.create(d.token, this.record(d.token, 0, false));
    } catch (e) {
      // The token may be spent (created, content not written): peers see an empty record and take
      // it over by lease; we keep waiting like them rather than going live on a lock we cannot renew.
      this.log('warning', `store lock: claim of token ${d.token} failed: ${(e as Error).message}`);
      return 0;
    }
    if (!won) {
      this.log('debug', `store lock: token ${d.token} claimed by a peer first`);
      return 0;
    }
    this.log('info', `store lock: claimed token ${d.token} (${d.reason})`);
    this.held = d.token;
    this.beat = 0;
    this.lastRenewAt = started;
    return d.token;
  }

  private observe(): Observation {
    const newest = this.medium.newest();
    if (newest === 0) return { newestToken: 0, heartbeat: null, released: false, holderOnThisHost: false, holderPidDead: false };
    let text: string | null = null;
    try {
      text = this.medium.read(newest);
    } catch (e) {
      this.log('debug', `store lock: cannot read token ${newest}: ${(e as Error).message}`);
    }
    const rec = text === null ? null : parseRecord(text, newest);
    const onHost = rec !== null && rec.host === this.owner.host;
    return {
      newestToken: newest,
      heartbeat: text,
      released: rec?.released ?? false,
      holderOnThisHost: onHost,
      holderPidDead: onHost && this.medium.pidDead(rec.pid),
    };
  }

  private renew(): void {
    if (this.state !== 'held') return;
    const started = this.clock();
    const d = decideFence({ myToken: this.held, newerTokenExists: this.medium.exists(this.held + 1), lastRenewAt: this.lastRenewAt, now: started, leaseMs: this.leaseMs });
    if (d.fenced) {
      this.lose(d.message);
      return;
    }
    try {
      this.medium.write(this.held, this.record(this.held, ++this.beat, false));
      this.lastRenewAt = started;
    } catch (e) {
      this.log('warning', `store lock: heartbeat of token ${this.held} failed (lease lapses in ${Math.round(d.expiresInMs)} ms): ${(e as Error).message}`);
    }
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

  private stopAcquiring(err: Error): void {
    if (this.state !== 'acquiring') return;
    clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    this.state = 'idle';
    const p = this.pending;
    this.pending = undefined;
    p?.cleanup();
    p?.reject(err);
  }
}

/** Token records as files in one directory. */
export class FileLeaseMedium implements LeaseMedium {
  /**
   * @param dir the lock directory (`<dataDir>/lock`)
   * @param tmpTag distinguishes this writer's temporary files from other writers'
   */
  constructor(readonly dir: string, private readonly tmpTag: string) {}

  prepare(): void {
    fs.mkdirSync(this.dir, { recursive: true });
  }

  newest(): number {
    return newestToken(fs.readdirSync(this.dir));
  }

  read(token: number): string {
    return fs.readFileSync(this.file(token), 'utf8');
  }

  create(token: number, content: string): boolean {
    let fd: number;
    try {
      // O_CREAT|O_EXCL: of all the processes creating this name, exactly one succeeds.
      fd = fs.openSync(this.file(token), 'wx');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e;
    }
    try {
      fs.writeSync(fd, content);
      // A token must survive a crash of the machine, or it could be granted twice.
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    this.syncDir();
    return true;
  }

  write(token: number, content: string): void {
    // Write aside and rename over: readers see the whole old or the whole new record, never a torn one.
    const tmp = path.join(this.dir, `.${tokenName(token)}.${this.tmpTag}.tmp`);
    fs.writeFileSync(tmp, content);
    fs.renameSync(tmp, this.file(token));
  }

  exists(token: number): boolean {
    return fs.existsSync(this.file(token));
  }

  pidDead(pid: number): boolean {
    try {
      process.kill(pid, 0);
      return false;
    } catch (e) {
      // EPERM: alive, owned by another user. Only ESRCH proves it is gone.
      return (e as NodeJS.ErrnoException).code === 'ESRCH';
    }
  }

  private file(token: number): string {
    return path.join(this.dir, tokenName(token));
  }

  private syncDir(): void {
    let fd: number | undefined;
    try {
      fd = fs.openSync(this.dir, 'r');
      fs.fsyncSync(fd);
    } catch {
      // some file systems refuse fsync on directories; the file itself is synced
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }
}

/** Options of {@link FileLeaseLock}. */
export interface FileLeaseLockOptions extends LeaseLockOptions {
  /** The broker's data directory; the lock lives in `<dir>/lock/`. */
  dir: string;
}

/**
 * The store lock of brokers sharing `dir`: token files in `<dir>/lock/`, claimed with O_EXCL,
 * a heartbeat rewritten every `renewMs`, takeover on release, on a dead pid of this host, or after
 * `leaseMs` without a heartbeat change. Token files are never deleted.
 */
export class FileLeaseLock extends LeaseLock {
  /** The directory holding the token files. */
  readonly lockDir: string;

  constructor(opts: FileLeaseLockOptions) {
    const lockDir = path.join(opts.dir, 'lock');
    const me = localOwner();
    const owner = { host: opts.owner?.host ?? me.host, pid: opts.owner?.pid ?? me.pid, id: opts.owner?.id ?? me.id };
    super(new FileLeaseMedium(lockDir, owner.id), { ...opts, owner });
    this.lockDir = lockDir;
  }
}
