/**
 * Argument checks every store makes the same way (the contract suite holds them to it): a caller
 * mistake throws RangeError or TypeError and changes nothing.
 */

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
