/**
 * Argument checks every store makes the same way (the contract suite holds them to it): a caller
 * mistake throws RangeError or TypeError and changes nothing.
 */
import { FencedError, StoreError, type TxOp } from './types';

/** Longest queue name, UTF-8 bytes. */
export const MAX_NAME_BYTES = 0xffff;
/** Largest queue meta, as JSON. */
export const MAX_META_BYTES = 1 << 20;
/** Most operations in one transaction. */
export const MAX_TX_OPS = 1 << 20;

export function checkMsgId(msgId: unknown): void {
  if (typeof msgId !== 'number' || !Number.isSafeInteger(msgId) || msgId < 0) {
    throw new RangeError(`message id must be a non-negative safe integer, got ${String(msgId)}`);
  }
}

/** Validates a queue name and returns its UTF-8 length. */
export function checkName(name: unknown): number {
  if (typeof name !== 'string' || name.length === 0) throw new TypeError('queue name must be a non-empty string');
  const n = Buffer.byteLength(name, 'utf8');
  if (n > MAX_NAME_BYTES) throw new RangeError(`queue name is ${n} bytes, limit ${MAX_NAME_BYTES}`);
  // A lone surrogate would be stored as U+FFFD and come back as another name.
  if (Buffer.from(name, 'utf8').toString('utf8') !== name) throw new TypeError('queue name is not well-formed UTF-16');
  return n;
}

/** Queue meta as JSON (a plain, JSON-safe object within the limit). */
export function encodeMeta(meta: unknown): string {
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) throw new TypeError('queue meta must be a plain object');
  let json: string;
  try {
    json = JSON.stringify(meta);
  } catch (e) {
    throw new TypeError('queue meta must be JSON-safe', { cause: e });
  }
  if (Buffer.byteLength(json, 'utf8') > MAX_META_BYTES) throw new RangeError(`queue meta exceeds ${MAX_META_BYTES} bytes as JSON`);
  return json;
}

export function checkCount(count: unknown): void {
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 0 || count > 0xffffffff) {
    throw new RangeError(`delivery count must be an integer 0..2^32-1, got ${String(count)}`);
  }
}

/** What {@link checkTxOps} needs to know of a store's current state. */
export interface TxView {
  /** Whether message `id` is stored (and still referenced or just added). */
  hasMessage(id: number): boolean;
  /** How many queues reference message `id` now. */
  messageRefs(id: number): number;
  /** The refs of queue `name`, or undefined when there is no such queue. */
  queueRefs(name: string): { has(id: number): boolean } | undefined;
}

/**
 * Checks a transaction's ops against the current state as if applied in order (nothing is
 * changed); throws on the first op that would fail, naming it. Every store validates a
 * transaction here, so they refuse the same ones with the same words.
 */
export function checkTxOps(ops: readonly TxOp[], view: TxView, maxPayloadBytes: number): void {
  // Overlays: refs of messages added by this tx, refs changed by it, messages it killed.
  const added = new Map<number, number>();
  const refDelta = new Map<number, number>();
  const refState = new Map<string, boolean>();
  const dead = new Set<number>();
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i] as TxOp | undefined;
    const where = `transaction op ${i}`;
    if (op === null || typeof op !== 'object') throw new TypeError(`${where} is not an object`);
    checkMsgId(op.msgId);
    const id = op.msgId;
    if (op.op === 'addMessage') {
      checkPayload(op.payload, `${where}: payload`, maxPayloadBytes);
      if (view.hasMessage(id) || added.has(id) || dead.has(id)) throw new RangeError(`${where}: message ${id} is already stored`);
      added.set(id, 0);
    } else if (op.op === 'addRef' || op.op === 'ack') {
      const refs = view.queueRefs(op.queue);
      if (refs === undefined) throw new RangeError(`${where}: no queue ${String(op.queue)}`);
      const key = `${op.queue}\u0000${id}`;
      const has = refState.get(key) ?? refs.has(id);
      const refsNow = added.has(id) ? (added.get(id) as number) : view.messageRefs(id) + (refDelta.get(id) ?? 0);
      if (op.op === 'addRef') {
        if (dead.has(id) || (!added.has(id) && !view.hasMessage(id))) throw new RangeError(`${where}: message ${id} is not stored`);
        if (has) throw new RangeError(`${where}: queue ${op.queue} already references message ${id}`);
      } else if (!has) {
        throw new RangeError(`${where}: queue ${op.queue} does not reference message ${id}`);
      }
      const delta = op.op === 'addRef' ? 1 : -1;
      refState.set(key, delta > 0);
      if (added.has(id)) added.set(id, refsNow + delta);
      else refDelta.set(id, (refDelta.get(id) ?? 0) + delta);
      if (delta < 0 && refsNow - 1 <= 0) {
        added.delete(id);
        dead.add(id);
      }
    } else {
      throw new TypeError(`${where}: unknown op ${String((op as { op?: unknown }).op)}`);
    }
  }
}

/** A store's life: before recover(), open, closing (the journal), closed. */
export type StoreState = 'new' | 'open' | 'closing' | 'closed';

/** What a write meets once the store failed: the failure again, as a refusal naming it. */
export function failedRefusal(noun: string, failure: Error): Error {
  return failure instanceof FencedError
    ? new FencedError(`${noun} is fenced, write refused: ${failure.message}`, { cause: failure })
    : new StoreError(`${noun} failed earlier, write refused: ${failure.message}`, 'ERR_STORE_IO', { cause: failure });
}

/** The refusal a store that is not open gives. */
function notOpen(noun: string, state: StoreState): StoreError {
  return new StoreError(state === 'new' ? `${noun} not open: call recover() first` : `${noun} is closed`, 'ERR_STORE_CLOSED');
}

/** Throws what a write meets on a store that is not open, or that failed earlier. */
export function checkWritable(noun: string, state: StoreState, failure: Error | null): void {
  if (state !== 'open') throw notOpen(noun, state);
  if (failure !== null) throw failedRefusal(noun, failure);
}

/**
 * Answers a sync at once when the store cannot take one (not open, or failed: the failure itself);
 * returns false then, true when the caller should queue it.
 */
export function acceptSync(noun: string, state: StoreState, failure: Error | null, cb: unknown): cb is (err: Error | null) => void {
  if (typeof cb !== 'function') throw new TypeError('sync needs a callback');
  if (state !== 'open') {
    process.nextTick(cb, notOpen(noun, state));
    return false;
  }
  if (failure !== null) {
    process.nextTick(cb, failure);
    return false;
  }
  return true;
}

/** A payload argument: a Buffer within `max` bytes. */
export function checkPayload(payload: unknown, what: string, max: number): void {
  if (!Buffer.isBuffer(payload)) throw new TypeError(`${what} must be a Buffer`);
  if (payload.length > max) throw new RangeError(`${what} of ${payload.length} bytes exceeds ${max}`);
}
