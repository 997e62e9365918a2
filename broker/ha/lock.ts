/**
 * The store lock contract: which member of a master/slave pair may write the shared store.
 * Backends (the file lease lock in broker/io/file-lock.ts, the in-process lock for tests) pass
 * the same contract suite. See docs/decisions/0004-store-lock.md.
 */

/** A handle on the shared store's lock. */
export interface StoreLock {
  /**
   * Waits, polling every `pollMs`, until this process holds the lock; resolves with the fencing
   * token (strictly greater than every token granted before). Rejects when `signal` aborts.
   */
  acquire(signal?: AbortSignal): Promise<number>;
  /**
   * Cheap check before every store write: throws FencedError (broker/store/types.ts) once another
   * holder has a newer token or our own lease has lapsed (we were frozen or could not renew).
   */
  checkFence(): void;
  /** `cb` runs once when the lock is found lost after it was held (renewal found a newer token, lapse). */
  onLost(cb: (reason: string) => void): void;
  /** Gives the lock up so a waiting peer takes over at its next poll. */
  release(): Promise<void>;
  /** The token held, or 0. */
  readonly token: number;
}

/**
 * Reports a loss to every onLost callback (each at most once per loss, as the contract says); a
 * callback that throws is logged and the others still run. Shared by every backend.
 */
export function reportLost(callbacks: readonly ((reason: string) => void)[], reason: string, log: (level: 'warning' | 'error', msg: string) => void, what: string): void {
  log('warning', `${what}: lost: ${reason}`);
  for (const cb of callbacks) {
    try {
      cb(reason);
    } catch (e) {
      log('error', `${what}: onLost callback threw: ${(e as Error).message}`);
    }
  }
}
