/**
 * An in-process store lock: the lease engine of broker/io/file-lock.ts over token records kept in
 * memory. Several MemoryLocks sharing one MemoryLockSpace behave like brokers sharing a data
 * directory, so broker pairs can be tested in one process, and the lock contract suite runs
 * against a second backend.
 */
import { randomBytes } from 'node:crypto';
import { LeaseLock, LeaseLockOptions, LeaseMedium } from './file-lock';

/**
 * The shared "lock directory": token records by token. Records are created exclusively and never
 * deleted, as with files. Every lock in a space is on the same simulated host, with its own pid.
 */
export class MemoryLockSpace {
  /** The simulated host every lock of this space runs on. */
  readonly host = `memory-${randomBytes(4).toString('hex')}`;
  private readonly records = new Map<number, string>();
  private readonly dead = new Set<number>();
  private nextPid = 1;

  /** The newest token present, 0 when none. */
  newest(): number {
    let max = 0;
    for (const t of this.records.keys()) if (t > max) max = t;
    return max;
  }

  /** The record of `token`; throws when absent, like reading a missing file. */
  read(token: number): string {
    const r = this.records.get(token);
    if (r === undefined) throw new Error(`no record for token ${token}`);
    return r;
  }

  /** Creates `token`'s record; false when it exists (O_EXCL). Tests use it to play an intruder. */
  create(token: number, content: string): boolean {
    if (this.records.has(token)) return false;
    this.records.set(token, content);
    return true;
  }

  /** Replaces `token`'s record. */
  write(token: number, content: string): void {
    this.records.set(token, content);
  }

  exists(token: number): boolean {
    return this.records.has(token);
  }

  /** A fresh simulated pid. */
  allocatePid(): number {
    return this.nextPid++;
  }

  /** Marks a simulated pid as exited. */
  kill(pid: number): void {
    this.dead.add(pid);
  }

  pidDead(pid: number): boolean {
    return this.dead.has(pid);
  }
}

/** Options of {@link MemoryLock}: the lease timing of LeaseLockOptions (identity comes from the space). */
export type MemoryLockOptions = Omit<LeaseLockOptions, 'owner'>;

/** A store lock in a {@link MemoryLockSpace}. Same contract and timing rules as FileLeaseLock. */
export class MemoryLock extends LeaseLock {
  constructor(readonly space: MemoryLockSpace, opts: MemoryLockOptions = {}) {
    const medium: LeaseMedium = {
      prepare: () => undefined,
      newest: () => space.newest(),
      read: (t) => space.read(t),
      create: (t, c) => space.create(t, c),
      write: (t, c) => space.write(t, c),
      exists: (t) => space.exists(t),
      pidDead: (pid) => space.pidDead(pid),
    };
    super(medium, { ...opts, owner: { host: space.host, pid: space.allocatePid(), id: randomBytes(6).toString('hex') } });
  }

  /**
   * Simulates kill -9 of this lock's process: its timers stop, no release marker is written and
   * onLost does not run; waiters on the space see its pid dead and take over at their next poll.
   */
  crash(): void {
    this.space.kill(this.owner.pid);
    this.halt();
  }
}
