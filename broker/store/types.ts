/**
 * The broker's persistence contract. Every store (the file journal, the in-memory store used for
 * non-persistent brokers and tests) implements {@link Store} and passes the same contract suite
 * (test/support/store-contract.ts).
 *
 * Model (Artemis's): a message body is stored once (`addMessage`); each queue that holds it adds
 * a reference (`addRef`); an acknowledgement removes the reference (`ack`). A message with no
 * references left is dead and is dropped at the next compaction.
 */

/** A queue (or durable subscription) as the broker describes it; opaque to the store (JSON-safe). */
export type QueueMeta = Record<string, unknown>;

/** One reference of a queue to a message, in the order it was added. */
export interface RecoveredRef {
  msgId: number;
  /** Last persisted delivery count (0 when never updated). */
  deliveryCount: number;
}

/** The exact durable state found at open. */
export interface Recovered {
  /** Queues in creation order, with their refs in `addRef` order. */
  queues: Map<string, { meta: QueueMeta; refs: RecoveredRef[] }>;
  /** Bodies of every message that still has a reference. */
  messages: Map<number, Buffer>;
  /** One more than the highest message id ever stored (ids are never reused). */
  nextMessageId: number;
  /** A torn or corrupt tail found (and truncated) during recovery, or null. */
  truncated: { file: string; offset: number; droppedBytes: number; reason: string } | null;
}

/** One operation of a transaction, applied atomically by {@link Store.commitTx}. */
export type TxOp =
  | { op: 'addMessage'; msgId: number; payload: Buffer }
  | { op: 'addRef'; queue: string; msgId: number }
  | { op: 'ack'; queue: string; msgId: number };

/** Thrown when a write is attempted after the store lock was lost (fencing). */
export class FencedError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FencedError';
  }
}

/** Thrown when the journal cannot be read or written. */
export class StoreError extends Error {
  constructor(message: string, readonly code: 'ERR_STORE_IO' | 'ERR_STORE_CORRUPT' | 'ERR_STORE_CLOSED', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
  }
}

/**
 * A persistent store. Mutations are appended in call order and are synchronous in memory;
 * {@link Store.sync} reports when everything appended so far is on disk (group commit: one
 * fdatasync covers every record appended before it started).
 */
export interface Store {
  /** Reads the durable state (once, before any mutation); truncates a torn tail. */
  recover(): Recovered;
  createQueue(name: string, meta: QueueMeta): void;
  /** Deletes a queue and every reference it holds. */
  deleteQueue(name: string): void;
  addMessage(msgId: number, payload: Buffer): void;
  addRef(queue: string, msgId: number): void;
  ack(queue: string, msgId: number): void;
  setDeliveryCount(queue: string, msgId: number, count: number): void;
  /** Applies `ops` atomically: after a crash either all of them are recovered or none. */
  commitTx(ops: TxOp[]): void;
  /** `cb` runs once every record appended before this call is durable (or with the error). */
  sync(cb: (err: Error | null) => void): void;
  /** The body of a stored message (for bodies the broker evicted from memory). */
  readPayload(msgId: number): Buffer;
  /** Sizes for management and compaction tests. */
  stats(): { fileBytes: number; liveBytes: number; liveMessages: number; compactions: number };
  /** Flushes, syncs and closes. */
  close(): Promise<void>;
  /**
   * Why durable work cannot be accepted now (a replicated store without a quorum), or null.
   * Stores that can always accept need not have it. The broker refuses durable sends meanwhile.
   */
  unavailable?(): string | null;
}

/** Options shared by store implementations. */
export interface StoreOptions {
  /**
   * Called before every physical write (append, compaction, truncation). Throws
   * {@link FencedError} when this process no longer holds the store lock.
   */
  fence?: () => void;
  /** Log sink for recovery and compaction notes. */
  log?: (level: 'error' | 'warning' | 'info' | 'debug', msg: string) => void;
}

/**
 * Append-only spill file for bodies not held in memory (contents need not survive a restart): the
 * broker's pager, and PgStore's local copy of bodies (broker/io/pager.ts's FilePager is one).
 */
export interface Pager {
  /** Writes `payload`; returns its offset. */
  write(payload: Buffer): number;
  read(offset: number, length: number): Buffer;
  /** Nothing paged is live any more: the space may be reclaimed. */
  reset(): void;
}
